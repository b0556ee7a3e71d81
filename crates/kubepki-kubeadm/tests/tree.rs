//! The generated tree, field by field, against docs/init.md ("Outputs": subjects, SANs, usages,
//! validity, with kubeadm's sources cited there), for each kubernetes-version behaviour and each
//! encryption algorithm.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kubepki_ca::{CA_KEY_USAGE, Certificate, KeyIdMethod, LEAF_KEY_USAGE};
use kubepki_csr::x509::oids;
use kubepki_csr::{ExtKeyUsage, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    CertId, ClusterSpec, InitReport, Kubeconfig, KubernetesVersion, Plan, Selection, init_tree,
};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t - Duration::nanoseconds(i64::from(t.nanosecond()))
}

fn spec(dir: &Path) -> ClusterSpec {
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
    s.node_name = Some("cp1".into());
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir.to_owned();
    s
}

fn make(s: &ClusterSpec, now: OffsetDateTime) -> Res<(Plan, InitReport)> {
    let plan = Plan::new(s)?;
    let report = init_tree(&plan, &Selection::all(), now, false)?;
    Ok((plan, report))
}

fn cert(dir: &Path, id: CertId) -> Res<Certificate> {
    Ok(Certificate::from_pem(&fs::read(
        id.cert_path(&dir.join("pki")),
    )?)?)
}

fn mode(p: &Path) -> Res<u32> {
    Ok(fs::metadata(p)?.permissions().mode() & 0o777)
}

fn first_label(p: &Path) -> Res<String> {
    let text = fs::read_to_string(p)?;
    Ok(text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("-----BEGIN ")
        .trim_end_matches("-----")
        .to_owned())
}

fn sig_oid(alg: KeyAlgorithm) -> const_oid::ObjectIdentifier {
    match alg {
        KeyAlgorithm::EcdsaP256 => kubepki_keys::oids::ECDSA_WITH_SHA256,
        KeyAlgorithm::EcdsaP384 => kubepki_keys::oids::ECDSA_WITH_SHA384,
        _ => kubepki_keys::oids::SHA256_WITH_RSA,
    }
}

fn key_label(alg: KeyAlgorithm) -> &'static str {
    if alg.is_rsa() {
        "RSA PRIVATE KEY"
    } else {
        "EC PRIVATE KEY"
    }
}

/// What `docs/compatibility.md` §1–§2 say for one version and algorithm.
struct Expect {
    version: KubernetesVersion,
    alg: KeyAlgorithm,
}

impl Expect {
    fn ca_not_before(&self, now: OffsetDateTime) -> OffsetDateTime {
        if self.version.minor >= 28 {
            now - Duration::minutes(5)
        } else {
            now
        }
    }

    fn leaf_not_before(&self, now: OffsetDateTime) -> OffsetDateTime {
        if self.version.minor >= 31 {
            now - Duration::minutes(5)
        } else {
            self.ca_not_before(now)
        }
    }

    fn secondary_alg(&self) -> KeyAlgorithm {
        if self.version.minor >= 31 {
            self.alg
        } else {
            KeyAlgorithm::Rsa2048
        }
    }
}

/// (id, CN, O, DNS SANs, IP SANs, EKUs, issuer)
type Leaf<'a> = (
    CertId,
    &'a str,
    Option<&'a str>,
    Vec<String>,
    Vec<IpAddr>,
    Vec<ExtKeyUsage>,
    CertId,
);

fn check_tree(dir: &Path, e: &Expect, now: OffsetDateTime, report: &InitReport) -> R {
    let pki = dir.join("pki");
    let v = e.version;
    let cas = [
        (CertId::Ca, "kubernetes"),
        (CertId::FrontProxyCa, "front-proxy-ca"),
        (CertId::EtcdCa, "etcd-ca"),
    ];
    for (id, cn) in cas {
        let c = cert(dir, id)?;
        assert_eq!(c.subject_der(), Subject::cn(cn).to_der()?, "{cn}");
        assert_eq!(c.issuer_der(), c.subject_der());
        assert!(c.is_ca());
        let x = c.extensions();
        assert_eq!(x.key_usage, Some((CA_KEY_USAGE, true)));
        assert!(x.ext_key_usage.is_none());
        let (bc, critical) = x.basic_constraints.ok_or("no BC")?;
        assert!(bc.ca && bc.path_len.is_none() && critical);
        // kubeadm leaves the SKI to Go: SHA-1 up to 1.34, truncated SHA-256 from 1.35 (the
        // methods are checked against independent values in kubepki-ca's tests).
        let method = if v.minor >= 35 {
            KeyIdMethod::Sha256Truncated
        } else {
            KeyIdMethod::Sha1
        };
        assert_eq!(
            c.subject_key_id(),
            Some(method.key_id(c.public_key_der())?.as_slice()),
            "{cn} on {v}"
        );
        assert!(c.authority_key_id().is_none());
        assert_eq!(c.subject_alt_names().dns, vec![cn.to_owned()]);
        assert!(c.subject_alt_names().ips.is_empty());
        let order: Vec<_> = x.all.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            order,
            [
                oids::KEY_USAGE,
                oids::BASIC_CONSTRAINTS,
                oids::SUBJECT_KEY_ID,
                oids::SUBJECT_ALT_NAME
            ]
        );
        assert_eq!(c.not_before(), e.ca_not_before(now), "{cn} NotBefore");
        assert_eq!(c.not_after(), now + Duration::hours(87600), "{cn} NotAfter");
        assert_eq!(c.signature_algorithm(), sig_oid(e.alg));
        assert_eq!(mode(&id.cert_path(&pki))?, 0o644);
        assert_eq!(mode(&id.key_path(&pki))?, 0o600);
        assert_eq!(first_label(&id.cert_path(&pki))?, "CERTIFICATE");
        assert_eq!(first_label(&id.key_path(&pki))?, key_label(e.alg));
        let key = PrivateKey::from_pem(&fs::read(id.key_path(&pki))?)?;
        assert_eq!(key.algorithm(), e.alg);
        assert!(key.matches_public_key(c.public_key_der()));
    }

    let masters_until_128 = (v.minor < 29).then_some("system:masters");
    let kubelet_client_org = if v.minor < 29 {
        Some("system:masters")
    } else if v.drops_kubelet_client_org() {
        None
    } else {
        Some("kubeadm:cluster-admins")
    };
    let dns = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ips = |l: &[&str]| -> Vec<IpAddr> { l.iter().filter_map(|s| s.parse().ok()).collect() };
    let server = vec![ExtKeyUsage::ServerAuth];
    let client = vec![ExtKeyUsage::ClientAuth];
    let both = vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth];
    let etcd_dns = dns(&["cp1", "localhost"]);
    let etcd_ips = ips(&["192.0.2.10", "127.0.0.1", "::1"]);
    let leaves: Vec<Leaf> = vec![
        (
            CertId::Apiserver,
            "kube-apiserver",
            None,
            dns(&[
                "cp.example.com",
                "cp1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]),
            ips(&["10.96.0.1", "192.0.2.10"]),
            server,
            CertId::Ca,
        ),
        (
            CertId::ApiserverKubeletClient,
            "kube-apiserver-kubelet-client",
            kubelet_client_org,
            vec![],
            vec![],
            client.clone(),
            CertId::Ca,
        ),
        (
            CertId::FrontProxyClient,
            "front-proxy-client",
            None,
            vec![],
            vec![],
            client.clone(),
            CertId::FrontProxyCa,
        ),
        (
            CertId::EtcdServer,
            "cp1",
            None,
            etcd_dns.clone(),
            etcd_ips.clone(),
            both.clone(),
            CertId::EtcdCa,
        ),
        (
            CertId::EtcdPeer,
            "cp1",
            None,
            etcd_dns,
            etcd_ips,
            both,
            CertId::EtcdCa,
        ),
        (
            CertId::EtcdHealthcheckClient,
            "kube-etcd-healthcheck-client",
            masters_until_128,
            vec![],
            vec![],
            client.clone(),
            CertId::EtcdCa,
        ),
        (
            CertId::ApiserverEtcdClient,
            "kube-apiserver-etcd-client",
            masters_until_128,
            vec![],
            vec![],
            client,
            CertId::EtcdCa,
        ),
    ];
    for (id, cn, org, dns, ips, ekus, issuer) in leaves {
        let c = cert(dir, id)?;
        let ca = cert(dir, issuer)?;
        let want = Subject::cn(cn).with_organizations(org);
        assert_eq!(c.subject_der(), want.to_der()?, "{} subject", id.name());
        assert_eq!(c.issuer_der(), ca.subject_der(), "{} issuer", id.name());
        let x = c.extensions();
        assert_eq!(x.key_usage, Some((LEAF_KEY_USAGE, true)), "{}", id.name());
        assert_eq!(
            x.ext_key_usage.as_deref(),
            Some(ekus.as_slice()),
            "{}",
            id.name()
        );
        let (bc, critical) = x.basic_constraints.ok_or("no BC")?;
        assert!(!bc.ca && critical);
        assert!(c.subject_key_id().is_none(), "{} has an SKI", id.name());
        assert_eq!(c.authority_key_id(), ca.subject_key_id());
        let sans = c.subject_alt_names();
        assert_eq!(sans.dns, dns, "{} DNS SANs", id.name());
        assert_eq!(sans.ips, ips, "{} IP SANs", id.name());
        let mut order = vec![
            oids::KEY_USAGE,
            oids::EXT_KEY_USAGE,
            oids::BASIC_CONSTRAINTS,
            oids::AUTHORITY_KEY_ID,
        ];
        if !dns.is_empty() {
            order.push(oids::SUBJECT_ALT_NAME);
        }
        assert_eq!(
            x.all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            order,
            "{}",
            id.name()
        );
        assert_eq!(
            c.not_before(),
            e.leaf_not_before(now),
            "{} NotBefore",
            id.name()
        );
        assert_eq!(
            c.not_after(),
            now + Duration::hours(8760),
            "{} NotAfter",
            id.name()
        );
        assert!(c.serial().len() <= 8 && c.serial()[0] & 0x80 == 0);
        assert_eq!(c.signature_algorithm(), sig_oid(e.alg));
        c.verify_signature(ca.public_key_der())?;
        assert_eq!(mode(&id.cert_path(&pki))?, 0o644);
        assert_eq!(mode(&id.key_path(&pki))?, 0o600);
        assert_eq!(first_label(&id.key_path(&pki))?, key_label(e.alg));
        let key = PrivateKey::from_pem(&fs::read(id.key_path(&pki))?)?;
        assert!(key.matches_public_key(c.public_key_der()));
        assert_eq!(
            fs::read_to_string(id.cert_path(&pki))?
                .matches("BEGIN")
                .count(),
            1
        );
    }

    // sa.key / sa.pub (`docs/compatibility.md` §1.5): both 0600, PUBLIC KEY; the main algorithm in every version
    // (issue 19 item 2: ECDSA-P256 on 1.30 with PublicKeysECDSA, only kubeconfig keys were RSA).
    let sa = PrivateKey::from_pem(&fs::read(pki.join("sa.key"))?)?;
    assert_eq!(sa.algorithm(), e.alg);
    assert_eq!(mode(&pki.join("sa.key"))?, 0o600);
    assert_eq!(mode(&pki.join("sa.pub"))?, 0o600);
    assert_eq!(fs::read_to_string(pki.join("sa.pub"))?, sa.public_key_pem());

    // Kubeconfigs (`docs/compatibility.md` §2).
    let ca_pem = fs::read(pki.join("ca.crt"))?;
    let ca = cert(dir, CertId::Ca)?;
    let admin_org = if v.minor < 29 {
        "system:masters"
    } else {
        "kubeadm:cluster-admins"
    };
    let local = "https://192.0.2.10:6443";
    let cp = "https://cp.example.com:6443";
    let kubelet_server = if v.minor >= 33 { local } else { cp };
    let mut want = vec![("admin.conf", "kubernetes-admin", Some(admin_org), cp)];
    if v.minor >= 29 {
        want.push((
            "super-admin.conf",
            "kubernetes-super-admin",
            Some("system:masters"),
            cp,
        ));
    } else {
        assert!(!dir.join("super-admin.conf").exists());
    }
    want.push((
        "kubelet.conf",
        "system:node:cp1",
        Some("system:nodes"),
        kubelet_server,
    ));
    want.push((
        "controller-manager.conf",
        "system:kube-controller-manager",
        None,
        local,
    ));
    want.push(("scheduler.conf", "system:kube-scheduler", None, local));
    for (file, user, org, server) in want {
        let p = dir.join(file);
        assert_eq!(mode(&p)?, 0o600, "{file}");
        let text = fs::read_to_string(&p)?;
        let top: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            top,
            [
                "apiVersion",
                "clusters",
                "contexts",
                "current-context",
                "kind",
                "preferences",
                "users"
            ],
            "{file}"
        );
        assert!(text.contains("\npreferences: {}\n") && text.ends_with('\n'));
        let kc = Kubeconfig::from_slice(&p, text.as_bytes())?;
        assert_eq!(kc.current_context, format!("{user}@kubernetes"));
        assert_eq!(kc.clusters[0].name, "kubernetes");
        assert_eq!(kc.users[0].name, user);
        assert_eq!(kc.clusters[0].cluster.server, server, "{file}");
        assert_eq!(
            kc.current_ca_pem(&p)?,
            ca_pem,
            "{file}: CA data is ca.crt's PEM"
        );
        let c = Certificate::from_pem(&kc.current_client_cert_pem(&p)?.ok_or("no cert")?)?;
        assert_eq!(
            c.subject_der(),
            Subject::cn(user).with_organizations(org).to_der()?,
            "{file}"
        );
        assert_eq!(c.ext_key_usage(), Some(&[ExtKeyUsage::ClientAuth][..]));
        assert!(c.subject_alt_names().is_empty());
        assert_eq!(c.not_before(), e.leaf_not_before(now));
        assert_eq!(c.not_after(), now + Duration::hours(8760));
        c.verify_signature(ca.public_key_der())?;
        let key_pem = kc.current_client_key_pem(&p)?.ok_or("no key")?;
        let key = PrivateKey::from_pem(&key_pem)?;
        assert_eq!(key.algorithm(), e.secondary_alg(), "{file}");
        assert!(key.matches_public_key(c.public_key_der()));
    }
    // Everything written is listed once; no temp files remain.
    let mut all = Vec::new();
    for d in [dir.to_owned(), pki.clone(), pki.join("etcd")] {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                all.push(entry.path());
            }
        }
    }
    all.sort();
    let mut written = report.written.clone();
    written.sort();
    assert_eq!(all, written);
    Ok(())
}

fn tree_for(version: KubernetesVersion, alg: KeyAlgorithm) -> R {
    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.kubernetes_version = version;
    s.encryption_algorithm = alg;
    s.control_plane_endpoint = Some("cp.example.com".into());
    let now = now();
    let (_, report) = make(&s, now)?;
    check_tree(dir.path(), &Expect { version, alg }, now, &report)
        .map_err(|e| format!("{version} {alg}: {e}").into())
}

#[test]
fn default_version_every_algorithm() -> R {
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
    ] {
        tree_for(KubernetesVersion::DEFAULT, alg)?;
    }
    Ok(())
}

#[test]
fn every_version_behaviour() -> R {
    for (minor, patch) in [
        (27, 3),
        (28, 9),
        (30, 4),
        (31, 0),
        (33, 11),
        (33, 12),
        (34, 8),
        (36, 1),
    ] {
        let alg = if minor >= 31 {
            KeyAlgorithm::EcdsaP256
        } else {
            KeyAlgorithm::Rsa2048
        };
        tree_for(KubernetesVersion::new(minor, patch), alg)?;
    }
    // Before 1.31 kubeconfig client keys are RSA-2048 even with ECDSA-P256 (kubeadm#3072); sa.key
    // follows the algorithm.
    tree_for(KubernetesVersion::new(30, 4), KeyAlgorithm::EcdsaP256)
}

#[test]
fn version_limits_on_algorithms_and_validity() -> R {
    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.kubernetes_version = KubernetesVersion::new(33, 0);
    s.encryption_algorithm = KeyAlgorithm::EcdsaP384;
    let e = Plan::new(&s).err().ok_or("P-384 accepted for 1.33")?;
    assert!(e.to_string().contains("encryptionAlgorithm"), "{e}");
    s.encryption_algorithm = KeyAlgorithm::Ed25519;
    s.kubernetes_version = KubernetesVersion::DEFAULT;
    assert!(Plan::new(&s).is_err());
    s.encryption_algorithm = KeyAlgorithm::Rsa3072;
    s.kubernetes_version = KubernetesVersion::new(30, 0);
    assert!(Plan::new(&s).is_err());
    s.kubernetes_version = KubernetesVersion::new(30, 0);
    s.encryption_algorithm = KeyAlgorithm::Rsa2048;
    s.certificate_validity = Some(Duration::hours(100));
    let e = Plan::new(&s).err().ok_or("validity accepted for 1.30")?;
    assert!(e.to_string().contains("certificateValidityPeriod"), "{e}");
    Ok(())
}

#[test]
fn configured_validity_and_warnings() -> R {
    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.certificate_validity = Some(Duration::hours(24));
    s.ca_certificate_validity = Some(Duration::hours(2 * 87600));
    let now = now();
    let (plan, _) = make(&s, now)?;
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("caCertificateValidityPeriod"))
    );
    assert_eq!(
        cert(dir.path(), CertId::Ca)?.not_after(),
        now + Duration::hours(2 * 87600)
    );
    assert_eq!(
        cert(dir.path(), CertId::Apiserver)?.not_after(),
        now + Duration::hours(24)
    );
    // A field left unset is kubeadm's default, counted from the creation time as a set one
    // (kubeadm never leaves it nil: v1beta4 defaults it, the v1beta3 conversion fills it).
    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.certificate_validity = None;
    s.ca_certificate_validity = None;
    make(&s, now)?;
    let c = cert(dir.path(), CertId::Apiserver)?;
    assert_eq!(c.not_after(), now + Duration::hours(8760));
    assert_eq!(
        cert(dir.path(), CertId::Ca)?.not_after(),
        now + Duration::hours(87600)
    );
    Ok(())
}

#[test]
fn san_rules_extra_sans_endpoint_dual_stack_and_external_etcd() -> R {
    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.node_name = Some("zz-node".into());
    s.control_plane_endpoint = Some("[2001:db8::5]:6443".into());
    s.service_subnet = "fd00:10:96::/108,10.96.0.0/12".into();
    s.dns_domain = "corp.internal".into();
    s.cert_sans = vec![
        "10.0.0.7".into(),
        "*.api.example.com".into(),
        "kubernetes".into(),
        "192.0.2.10".into(),
    ];
    s.etcd_server_cert_sans = vec!["etcd.example.com".into()];
    s.etcd_peer_cert_sans = vec!["10.1.1.1".into()];
    s.cluster_name = "prod".into();
    make(&s, now())?;
    let a = cert(dir.path(), CertId::Apiserver)?.subject_alt_names();
    assert_eq!(
        a.dns,
        [
            "*.api.example.com",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.corp.internal",
            "zz-node"
        ]
    );
    let ip_strings: Vec<String> = a.ips.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        ip_strings,
        ["fd00:10:96::1", "192.0.2.10", "2001:db8::5", "10.0.0.7"]
    );
    let es = cert(dir.path(), CertId::EtcdServer)?.subject_alt_names();
    assert_eq!(es.dns, ["etcd.example.com", "localhost", "zz-node"]);
    let ep = cert(dir.path(), CertId::EtcdPeer)?.subject_alt_names();
    assert_eq!(
        ep.ips.last().map(|i| i.to_string()).as_deref(),
        Some("10.1.1.1")
    );
    let kc = Kubeconfig::from_slice(Path::new("x"), &fs::read(dir.path().join("admin.conf"))?)?;
    assert_eq!(kc.clusters[0].cluster.server, "https://[2001:db8::5]:6443");
    assert_eq!(kc.current_context, "kubernetes-admin@prod");

    let dir = tempfile::tempdir()?;
    let mut s = spec(dir.path());
    s.external_etcd = true;
    let (_, report) = make(&s, now())?;
    assert!(!dir.path().join("pki/etcd").exists());
    assert!(!dir.path().join("pki/apiserver-etcd-client.crt").exists());
    assert_eq!(report.written.len(), 5 * 2 + 2 + 5);
    Ok(())
}

type Mutate = Box<dyn Fn(&mut ClusterSpec)>;

#[test]
fn invalid_inputs_name_their_field() -> R {
    let d = Path::new("/nonexistent-kubepki");
    let cases: Vec<(&str, Mutate)> = vec![
        (
            "apiServer.certSANs[0]",
            Box::new(|s| s.cert_sans = vec!["Bad_Name".into()]),
        ),
        (
            "etcd.local.peerCertSANs[1]",
            Box::new(|s| s.etcd_peer_cert_sans = vec!["ok".into(), "no way".into()]),
        ),
        (
            "networking.serviceSubnet",
            Box::new(|s| s.service_subnet = "10.96.0.0/33".into()),
        ),
        (
            "networking.serviceSubnet",
            Box::new(|s| s.service_subnet = "10.0.0.0/8,10.1.0.0/16".into()),
        ),
        (
            "networking.dnsDomain",
            Box::new(|s| s.dns_domain = "Cluster.Local".into()),
        ),
        (
            "controlPlaneEndpoint",
            Box::new(|s| s.control_plane_endpoint = Some("cp:99999".into())),
        ),
        (
            "nodeRegistration.name",
            Box::new(|s| s.node_name = Some("CP_1".into())),
        ),
        ("localAPIEndpoint.bindPort", Box::new(|s| s.bind_port = 0)),
        ("clusterName", Box::new(|s| s.cluster_name = "a b".into())),
        (
            "certificateValidityPeriod",
            Box::new(|s| s.certificate_validity = Some(Duration::seconds(5))),
        ),
    ];
    for (field, f) in cases {
        let mut s = spec(d);
        f(&mut s);
        match Plan::new(&s) {
            Err(e) => assert!(e.to_string().starts_with(field), "{field}: {e}"),
            Ok(_) => return Err(format!("{field}: accepted").into()),
        }
    }
    Ok(())
}

/// Every progress event of an observed call, with the thread that reported it.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<(kubepki_keys::progress::Event, std::thread::ThreadId)>>);

impl kubepki_keys::progress::Progress for Seen {
    fn event(&self, event: kubepki_keys::progress::Event) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((event, std::thread::current().id()));
        }
    }
}

impl Seen {
    fn events(&self) -> Vec<kubepki_keys::progress::Event> {
        self.0
            .lock()
            .map(|s| s.iter().map(|(e, _)| *e).collect())
            .unwrap_or_default()
    }
}

#[test]
fn progress_counts_the_keys_signatures_and_files_of_init_and_renew() -> R {
    use kubepki_keys::progress::{Event, observe};
    use std::sync::Arc;
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let plan = Plan::new(&s)?;
    let seen = Arc::new(Seen::default());
    let caller = std::thread::current().id();
    observe(seen.clone(), || {
        init_tree(&plan, &Selection::all(), now(), false)
    })?;
    let events = seen.events();
    // The default tree: 16 RSA-2048 keys (3 CAs, 7 leaves, 5 kubeconfigs, sa.key) in one
    // batch, each counted once whichever thread made it; 15 certificates signed (the CAs'
    // own, the leaves', the kubeconfigs'); the 27 files written as one batch.
    assert_eq!(events.first(), Some(&Event::KeysStarted { total: 16 }));
    let mut done: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::KeyGenerated { done, total: 16 } => Some(*done),
            _ => None,
        })
        .collect();
    done.sort_unstable();
    assert_eq!(done, (1..=16).collect::<Vec<_>>());
    let signed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Signed { .. }))
        .collect();
    assert_eq!(signed.len(), 15);
    assert_eq!(signed.last(), Some(&&Event::Signed { done: 15 }));
    assert_eq!(events.last(), Some(&Event::Writing { files: 27 }));
    assert_eq!(events.len(), 1 + 16 + 15 + 1);
    // On two cores or more the RSA keys are made on worker threads, never on the caller's:
    // the observer is reached from them.
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    let from_workers = seen
        .0
        .lock()
        .map(|s| {
            s.iter()
                .filter(|(e, t)| matches!(e, Event::KeyGenerated { .. }) && *t != caller)
                .count()
        })
        .unwrap_or_default();
    assert_eq!(from_workers, if parallel { 16 } else { 0 });

    // Outside `observe` nothing is reported.
    kubepki_keys::generate_many(&[KeyAlgorithm::EcdsaP256; 2])?;
    assert_eq!(seen.events().len(), events.len());

    // `certs renew all`: 11 new keys (kubeadm does not renew kubelet.conf), 11 certificates,
    // 18 files replaced as one batch (7 leaves' certificate and key, 4 kubeconfigs).
    let renewing = Arc::new(Seen::default());
    let targets = kubepki_kubeadm::renew_targets(&s);
    let (renewed, _) = observe(renewing.clone(), || {
        kubepki_kubeadm::renew(&s, &targets, None, now())
    })?;
    assert_eq!(renewed.len(), 11);
    let events = renewing.events();
    assert_eq!(events.first(), Some(&Event::KeysStarted { total: 11 }));
    assert!(events.contains(&Event::KeyGenerated {
        done: 11,
        total: 11
    }));
    assert!(events.contains(&Event::Signed { done: 11 }));
    assert!(!events.contains(&Event::Signed { done: 12 }));
    assert_eq!(events.last(), Some(&Event::Writing { files: 18 }));
    Ok(())
}

/// An IPv4-mapped IPv6 address given as the advertise address or in `certSANs` is the IPv4
/// address: one 4-byte SAN, as Go writes it, so `openssl verify -verify_ip` accepts the IPv4
/// address (docs/compatibility.md §1.3).
#[test]
fn ipv4_mapped_addresses_are_written_as_ipv4() -> Result<(), Box<dyn std::error::Error>> {
    let mut spec = kubepki_kubeadm::ClusterSpec::default();
    spec.advertise_address = Some("::ffff:192.0.2.7".parse()?);
    spec.cert_sans = vec!["192.0.2.7".into(), "::ffff:198.51.100.9".into()];
    let plan = kubepki_kubeadm::Plan::new(&spec)?;
    let apiserver = plan
        .certs
        .iter()
        .find(|c| c.id == kubepki_kubeadm::CertId::Apiserver)
        .ok_or("no apiserver")?;
    let want: Vec<std::net::IpAddr> = vec![
        "10.96.0.1".parse()?,
        "192.0.2.7".parse()?,
        "198.51.100.9".parse()?,
    ];
    assert_eq!(apiserver.subject_alt_names.ips, want);
    // The servers in the kubeconfigs name the IPv4 address too, as kubeadm writes them.
    assert_eq!(plan.advertise_address, want[1]);
    let sans = kubepki_csr::SubjectAltNames {
        ips: vec!["::ffff:192.0.2.7".parse()?],
        ..Default::default()
    };
    let der = sans.to_der()?;
    // GeneralNames { [7] 4 bytes }: 30 06 87 04 c0 00 02 07.
    assert_eq!(der, [0x30, 0x06, 0x87, 0x04, 192, 0, 2, 7]);
    Ok(())
}
