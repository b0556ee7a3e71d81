//! After day one: check-expiration (golden tables at fixed times), renew, the external-CA round
//! trip (generate-csr → sign-csrs → init), and verify on good and deliberately broken trees.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec, Window};
use kubepki_csr::{ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    CertId, CheckStatus, ClusterSpec, Kubeconfig, KubeconfigId, Plan, RenewStatus, RenewTarget,
    Selection, SigningCas, Urgency, check_expiration, generate_csrs, init_tree, kubeconfig_yaml,
    renew, sign_csrs, verify,
};
use time::{Duration, OffsetDateTime, macros::datetime};

mod common;
use common::{load_ca, snapshot, spec_in};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const T0: OffsetDateTime = datetime!(2026-08-19 09:08:30 UTC);

fn spec(dir: &Path) -> ClusterSpec {
    spec_in(dir, "cp1")
}

fn init_at(s: &ClusterSpec, now: OffsetDateTime) -> Res<Plan> {
    let plan = Plan::new(s)?;
    init_tree(&plan, &Selection::all(), now, false)?;
    Ok(plan)
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Compares with a committed golden file; `UPDATE_GOLDEN=1` rewrites it (that is how it was
/// made; review the diff).
fn check_golden(name: &str, actual: &str) -> R {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, actual)?;
    }
    let want = fs::read_to_string(&path)?;
    assert_eq!(actual, want, "differs from {}", path.display());
    Ok(())
}

#[test]
fn check_expiration_golden_tables_and_output_api() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init_at(&s, T0)?;
    fs::remove_file(dir.path().join("super-admin.conf"))?;
    fs::remove_file(dir.path().join("pki/front-proxy-ca.key"))?;
    let now = datetime!(2026-09-01 12:00:00 UTC);
    let e = check_expiration(&s, now);
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    check_golden("check-expiration.golden", &e.to_table())?;
    // kubelet.conf is never listed.
    assert!(!e.certificates.iter().any(|c| c.name == "kubelet.conf"));

    let v = e.to_output_api();
    assert_eq!(v["kind"], "CertificateExpirationInfo");
    assert_eq!(v["apiVersion"], "output.kubeadm.k8s.io/v1alpha3");
    let certs = v["certificates"].as_array().ok_or("certificates")?;
    let api = certs
        .iter()
        .find(|c| c["name"] == "apiserver")
        .ok_or("apiserver")?;
    assert_eq!(api["expirationDate"], "2027-08-19T09:08:30Z");
    let residual = (T0 + Duration::hours(8760) - now).whole_seconds();
    assert_eq!(api["residualTime"], residual);
    assert_eq!(api["caName"], "ca");
    assert_eq!(api["externallyManaged"], false);
    let fp = certs
        .iter()
        .find(|c| c["name"] == "front-proxy-client")
        .ok_or("fp")?;
    assert_eq!(fp["externallyManaged"], true);
    let sa = certs
        .iter()
        .find(|c| c["name"] == "super-admin.conf")
        .ok_or("super-admin")?;
    assert_eq!(sa["missing"], true);
    assert!(sa["expirationDate"].is_null());
    let cas = v["certificateAuthorities"].as_array().ok_or("cas")?;
    assert!(cas.iter().all(|c| c.get("caName").is_none()));
    assert_eq!(cas.len(), 3);

    // --warn-within semantics.
    assert_eq!(e.urgency(Duration::days(30)), Urgency::Fine);
    assert_eq!(e.urgency(Duration::days(400)), Urgency::Soon);
    assert_eq!(
        check_expiration(&s, T0 + Duration::days(366)).urgency(Duration::days(1)),
        Urgency::Expired
    );
    Ok(())
}

/// Issue 19 item 4: the rows are kubeadm's `output.kubeadm.k8s.io/v1alpha3` `Certificate` as Go
/// writes it: fields in the struct's order, `residualTime` and `missing` always written (zero
/// too), `caName` only when set, and a missing file as its name and `missing: true` alone.
#[test]
fn check_expiration_output_api_rows_have_kubeadms_shape() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init_at(&s, T0)?;
    fs::remove_file(dir.path().join("super-admin.conf"))?;
    // At the leaves' exact NotAfter, so their residual time is 0 and still written.
    let now = T0 + Duration::hours(8760);
    let v = check_expiration(&s, now).to_output_api();
    let keys = |row: &serde_json::Value| -> Vec<String> {
        row.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let top: Vec<String> = keys(&v);
    assert_eq!(
        top,
        [
            "kind",
            "apiVersion",
            "certificates",
            "certificateAuthorities"
        ]
    );
    let certs = v["certificates"].as_array().ok_or("certificates")?;
    let row = |name: &str| -> Res<&serde_json::Value> {
        Ok(certs
            .iter()
            .find(|c| c["name"] == name)
            .ok_or(format!("no row {name}"))?)
    };
    let api = row("apiserver")?;
    assert_eq!(
        keys(api),
        [
            "name",
            "expirationDate",
            "residualTime",
            "externallyManaged",
            "caName",
            "missing"
        ]
    );
    assert_eq!(api["residualTime"], 0);
    assert_eq!(api["missing"], false);
    assert_eq!(
        *row("super-admin.conf")?,
        serde_json::json!({
            "name": "super-admin.conf",
            "expirationDate": null,
            "residualTime": 0,
            "externallyManaged": false,
            "missing": true,
        })
    );
    assert_eq!(
        keys(row("super-admin.conf")?),
        [
            "name",
            "expirationDate",
            "residualTime",
            "externallyManaged",
            "missing"
        ]
    );
    let cas = v["certificateAuthorities"].as_array().ok_or("cas")?;
    for ca in cas {
        assert_eq!(
            keys(ca),
            [
                "name",
                "expirationDate",
                "residualTime",
                "externallyManaged",
                "missing"
            ]
        );
        assert_eq!(ca["missing"], false);
        assert!(ca["residualTime"].as_i64().is_some_and(|r| r > 0));
    }
    // A missing CA: its name and `missing` only, even though its leaves name it.
    fs::remove_file(dir.path().join("pki/front-proxy-ca.crt"))?;
    fs::remove_file(dir.path().join("pki/front-proxy-ca.key"))?;
    let v = check_expiration(&s, now).to_output_api();
    let fp = v["certificateAuthorities"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "front-proxy-ca"))
        .ok_or("front-proxy-ca")?;
    assert_eq!(
        *fp,
        serde_json::json!({
            "name": "front-proxy-ca",
            "expirationDate": null,
            "residualTime": 0,
            "externallyManaged": false,
            "missing": true,
        })
    );
    Ok(())
}

#[test]
fn check_expiration_reports_bad_files_and_goes_on() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init_at(&s, T0)?;
    fs::write(
        dir.path().join("pki/apiserver.crt"),
        b"-----BEGIN CERTIFICATE-----\nnope\n",
    )?;
    fs::write(dir.path().join("admin.conf"), b"{ not yaml")?;
    fs::remove_file(dir.path().join("pki/etcd/ca.key"))?;
    fs::remove_file(dir.path().join("pki/etcd/peer.crt"))?;
    let e = check_expiration(&s, T0);
    let text = e.to_table();
    assert!(text.contains("!INVALID! apiserver"), "{text}");
    assert!(text.contains("!INVALID! admin.conf"), "{text}");
    assert!(text.contains("!MISSING! etcd-peer"), "{text}");
    assert!(text.contains("scheduler.conf "), "{text}");
    assert_eq!(e.problems.len(), 3, "{:#?}", e.problems);
    assert!(e.problems.iter().any(|p| p.contains("apiserver.crt")));
    assert!(e.problems.iter().any(|p| p.contains("admin.conf")));
    assert!(
        e.problems
            .iter()
            .any(|p| p.contains("external CA") && p.contains("etcd/peer.crt"))
    );
    Ok(())
}

fn lines(p: &Path) -> Res<Vec<String>> {
    Ok(fs::read_to_string(p)?.lines().map(str::to_owned).collect())
}

#[test]
fn renew_makes_new_keys_and_keeps_everything_else() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init_at(&s, T0)?;
    let pki = dir.path().join("pki");
    // A hand edit in admin.conf must survive renewal.
    let admin = dir.path().join("admin.conf");
    let edited = fs::read_to_string(&admin)?.replace(
        "    user: kubernetes-admin\n",
        "    namespace: dev\n    user: kubernetes-admin\n",
    );
    fs::write(&admin, format!("# managed by hand\n{edited}"))?;
    let before_admin = lines(&admin)?;
    let old_api = Certificate::from_pem(&fs::read(pki.join("apiserver.crt"))?)?;
    let old_key = fs::read(pki.join("apiserver.key"))?;
    let now = T0 + Duration::days(300);
    let targets = [
        RenewTarget::Cert(CertId::Apiserver),
        RenewTarget::Cert(CertId::FrontProxyClient),
        RenewTarget::Kubeconfig(KubeconfigId::Admin),
    ];
    let (done, _) = renew(&s, &targets, None, now)?;
    assert!(
        done.iter().all(|d| matches!(
            d.status,
            RenewStatus::Renewed {
                algorithm: KeyAlgorithm::EcdsaP256,
                ..
            }
        )),
        "{done:?}"
    );

    let ca = Certificate::from_pem(&fs::read(pki.join("ca.crt"))?)?;
    let api = Certificate::from_pem(&fs::read(pki.join("apiserver.crt"))?)?;
    assert_ne!(fs::read(pki.join("apiserver.key"))?, old_key);
    assert_ne!(api.public_key_der(), old_api.public_key_der());
    assert_ne!(api.serial(), old_api.serial());
    assert_eq!(api.subject_der(), old_api.subject_der());
    assert_eq!(api.subject_alt_names(), old_api.subject_alt_names());
    assert_eq!(api.ext_key_usage(), old_api.ext_key_usage());
    assert_eq!(api.key_usage(), old_api.key_usage());
    assert_eq!(api.not_before(), now - Duration::minutes(5));
    assert_eq!(api.not_after(), now + Duration::hours(8760));
    api.verify_signature(ca.public_key_der())?;
    let key = PrivateKey::from_pem(&fs::read(pki.join("apiserver.key"))?)?;
    assert!(key.matches_public_key(api.public_key_der()));
    assert_eq!(
        fs::metadata(pki.join("apiserver.key"))?
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // admin.conf: only the client certificate and key lines changed.
    let after_admin = lines(&admin)?;
    assert_eq!(before_admin.len(), after_admin.len());
    let changed: Vec<&str> = before_admin
        .iter()
        .zip(&after_admin)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.trim_start().split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(changed, ["client-certificate-data", "client-key-data"]);
    let kc = Kubeconfig::from_slice(&admin, fs::read(&admin)?.as_slice())?;
    let c = Certificate::from_pem(&kc.current_client_cert_pem(&admin)?.ok_or("cert")?)?;
    assert_eq!(c.not_after(), now + Duration::hours(8760));
    assert_eq!(c.organizations(), ["kubeadm:cluster-admins"]);
    let k = PrivateKey::from_pem(&kc.current_client_key_pem(&admin)?.ok_or("key")?)?;
    assert!(k.matches_public_key(c.public_key_der()));
    assert!(verify(&Plan::new(&s)?, now).passed());

    // A new algorithm on request; CAs, kubelet.conf refused; external CA and missing skipped.
    let (done, _) = renew(
        &s,
        &[RenewTarget::Cert(CertId::FrontProxyClient)],
        Some(KeyAlgorithm::Rsa2048),
        now,
    )?;
    assert!(matches!(
        done[0].status,
        RenewStatus::Renewed {
            algorithm: KeyAlgorithm::Rsa2048,
            ..
        }
    ));
    for bad in ["ca", "etcd-ca", "kubelet.conf", "bogus"] {
        assert!(kubepki_kubeadm::parse_renew_name(&s, bad).is_err(), "{bad}");
    }
    assert_eq!(kubepki_kubeadm::parse_renew_name(&s, "all")?.len(), 11);
    fs::remove_file(pki.join("etcd/ca.key"))?;
    fs::remove_file(dir.path().join("super-admin.conf"))?;
    let before = fs::read(pki.join("etcd/server.crt"))?;
    let (done, _) = renew(
        &s,
        &[
            RenewTarget::Cert(CertId::EtcdServer),
            RenewTarget::Kubeconfig(KubeconfigId::SuperAdmin),
        ],
        None,
        now,
    )?;
    assert!(
        matches!(done[0].status, RenewStatus::ExternalCa { .. }),
        "{done:?}"
    );
    assert_eq!(done[1].status, RenewStatus::Missing);
    assert_eq!(fs::read(pki.join("etcd/server.crt"))?, before);
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
}

fn no_ca_key(dir: &Path) {
    let mut files = Vec::new();
    walk(dir, &mut files);
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            !name.ends_with("ca.key"),
            "CA key on the node: {}",
            f.display()
        );
    }
}

#[test]
fn external_ca_round_trip() -> R {
    // Where the CA keys live.
    let ca_side = tempfile::tempdir()?;
    let ca_spec = spec(ca_side.path());
    let ca_plan = Plan::new(&ca_spec)?;
    let cas_only = Selection {
        certs: vec![CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa],
        ..Selection::none()
    };
    init_tree(&ca_plan, &cas_only, T0, false)?;
    let load = |id: CertId| load_ca(&ca_side.path().join("pki"), id, T0);

    // The node: keys and CSRs.
    let node = tempfile::tempdir()?;
    let node_spec = spec(node.path());
    let node_plan = Plan::new(&node_spec)?;
    let generated = generate_csrs(&node_plan)?;
    assert_eq!(generated.written.len(), 7 * 2 + 5 * 2);
    assert!(generated.kept.is_empty());
    no_ca_key(node.path());
    let admin_before =
        Kubeconfig::from_slice(Path::new("a"), &fs::read(node.path().join("admin.conf"))?)?;
    assert!(
        admin_before.clusters[0]
            .cluster
            .certificate_authority_data
            .is_none()
    );
    assert!(admin_before.users[0].user.client_certificate_data.is_none());
    assert!(admin_before.users[0].user.client_key_data.is_some());
    // Again: everything awaits signing, nothing is written or changed.
    let before = snapshot(node.path())?;
    let again = generate_csrs(&node_plan)?;
    assert!(again.written.is_empty(), "{:?}", again.written);
    assert_eq!(again.kept.len(), 12);
    assert!(
        again
            .kept
            .iter()
            .all(|k| matches!(k, kubepki_kubeadm::Kept::AwaitingSignature { .. }))
    );
    assert_eq!(
        snapshot(node.path())?,
        before,
        "generate-csr changed its own files"
    );
    let csr = kubepki_csr::Csr::from_pem(&fs::read(node.path().join("pki/apiserver.csr"))?)?;
    assert!(csr.requested_extensions().key_usage.is_none());
    assert!(csr.requested_extensions().ext_key_usage.is_none());
    assert_eq!(
        csr.subject_alt_names(),
        node_plan
            .cert(CertId::Apiserver)
            .ok_or("api")?
            .subject_alt_names
    );

    // Signing, with the CA keys.
    let cas = SigningCas {
        ca: Some(load(CertId::Ca)?),
        front_proxy: Some(load(CertId::FrontProxyCa)?),
        etcd: Some(load(CertId::EtcdCa)?),
    };
    let signed = sign_csrs(&node_plan, &cas, T0 + Duration::minutes(1))?;
    assert_eq!(
        signed
            .iter()
            .filter(|s| matches!(s, kubepki_kubeadm::Signed::Written(_)))
            .count(),
        12
    );
    no_ca_key(node.path());

    // The node gets the CA certificates (not keys) and completes the tree in external-CA mode.
    for id in [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa] {
        let to = id.cert_path(&node.path().join("pki"));
        fs::copy(id.cert_path(&ca_side.path().join("pki")), to)?;
    }
    let report = init_tree(
        &node_plan,
        &Selection::all(),
        T0 + Duration::minutes(2),
        false,
    )?;
    let mut written = report.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            node.path().join("pki/sa.key"),
            node.path().join("pki/sa.pub")
        ]
    );
    assert!(report.items.iter().filter(|i| i.external).count() == 3);
    no_ca_key(node.path());
    let v = verify(&node_plan, T0 + Duration::minutes(3));
    let fails: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Pass)
        .collect();
    assert!(fails.is_empty(), "{fails:#?}");

    // The signer refuses a CSR that asks for more than its file may have.
    let node2 = tempfile::tempdir()?;
    let s2 = spec(node2.path());
    let plan2 = Plan::new(&s2)?;
    generate_csrs(&plan2)?;
    let key = PrivateKey::from_pem(&fs::read(node2.path().join("pki/apiserver.key"))?)?;
    let evil = kubepki_csr::CsrBuilder::new(
        Subject::cn("kube-apiserver").with_organizations(["system:masters"]),
    )
    .sign(&key)?;
    fs::write(node2.path().join("pki/apiserver.csr"), evil.to_pem())?;
    let e = sign_csrs(&plan2, &cas, T0)
        .err()
        .ok_or("signed an escalation")?;
    assert!(
        e.to_string().contains("apiserver.csr")
            && e.to_string().contains("refusing")
            && e.to_string().contains("extra O \"system:masters\""),
        "{e}"
    );
    assert!(!node2.path().join("pki/apiserver.crt").exists());
    assert!(
        !node2.path().join("pki/front-proxy-client.crt").exists(),
        "partial batch"
    );
    Ok(())
}

/// A good tree and the means to break it.
struct Tree {
    dir: tempfile::TempDir,
    spec: ClusterSpec,
    plan: Plan,
}

impl Tree {
    fn new() -> Res<Tree> {
        let dir = tempfile::tempdir()?;
        let spec = spec(dir.path());
        let plan = init_at(&spec, OffsetDateTime::now_utc())?;
        Ok(Tree { dir, spec, plan })
    }

    fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    fn ca(&self, id: CertId) -> Res<CertificateAuthority> {
        load_ca(&self.pki(), id, OffsetDateTime::now_utc())
    }

    /// Replaces `id`'s certificate (same key) with one issued by `signer` as described.
    fn reissue(
        &self,
        id: CertId,
        signer: CertId,
        subject: Subject,
        sans: SubjectAltNames,
        ekus: Vec<ExtKeyUsage>,
        window: Window,
    ) -> R {
        let key = PrivateKey::from_pem(&fs::read(id.key_path(&self.pki()))?)?;
        let spec = IssueSpec::new(subject, key.public_key_der(), window, CaExpiry::Clamp)
            .with_ext_key_usage(ekus)
            .with_subject_alt_names(sans);
        let cert = self.ca(signer)?.issue(&spec)?;
        fs::write(id.cert_path(&self.pki()), cert.to_pem())?;
        Ok(())
    }

    fn fails(&self) -> Vec<(String, &'static str)> {
        let mut v: Vec<_> = verify(&self.plan, OffsetDateTime::now_utc())
            .checks
            .into_iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| (c.item, c.check))
            .collect();
        v.dedup();
        v
    }
}

fn now_window() -> Window {
    Window::kubeadm(OffsetDateTime::now_utc(), Duration::hours(8760))
}

#[test]
fn verify_passes_a_good_tree_and_names_each_broken_rule() -> R {
    let good = Tree::new()?;
    let v = verify(&good.plan, OffsetDateTime::now_utc());
    assert!(
        v.passed() && v.count(CheckStatus::Warn) == 0,
        "{:#?}",
        v.checks
    );
    assert!(v.checks.len() > 100);

    let fail = |t: &Tree, item: &str, check: &str| -> R {
        let f = t.fails();
        let want = vec![(item.to_owned(), check)];
        assert_eq!(
            f.iter().map(|(i, c)| (i.clone(), *c)).collect::<Vec<_>>(),
            want
        );
        Ok(())
    };
    let api = |t: &Tree| t.plan.cert(CertId::Apiserver).cloned().ok_or("api");

    // Wrong EKU.
    let t = Tree::new()?;
    let a = api(&t)?;
    t.reissue(
        CertId::Apiserver,
        CertId::Ca,
        a.subject,
        a.subject_alt_names,
        vec![ExtKeyUsage::ClientAuth],
        now_window(),
    )?;
    fail(&t, "apiserver", "usages")?;

    // A SAN missing.
    let t = Tree::new()?;
    let mut a = api(&t)?;
    a.subject_alt_names
        .dns
        .retain(|d| d != "kubernetes.default");
    t.reissue(
        CertId::Apiserver,
        CertId::Ca,
        a.subject,
        a.subject_alt_names,
        a.ext_key_usage,
        now_window(),
    )?;
    fail(&t, "apiserver", "sans")?;

    // A key that is not the certificate's.
    let t = Tree::new()?;
    fs::copy(
        t.pki().join("front-proxy-client.key"),
        t.pki().join("apiserver.key"),
    )?;
    fail(&t, "apiserver", "key")?;

    // A kubeconfig made for another CA.
    let t = Tree::new()?;
    let other = Tree::new()?;
    fs::copy(
        other.dir.path().join("admin.conf"),
        t.dir.path().join("admin.conf"),
    )?;
    let f = t.fails();
    assert!(
        f.contains(&("admin.conf".into(), "ca data"))
            && f.contains(&("admin.conf".into(), "chain")),
        "{f:?}"
    );
    assert!(f.iter().all(|(i, _)| i == "admin.conf"), "{f:?}");

    // A private key readable by others.
    let t = Tree::new()?;
    fs::set_permissions(
        t.pki().join("etcd/peer.key"),
        fs::Permissions::from_mode(0o644),
    )?;
    fail(&t, "etcd-peer", "mode")?;

    // An expired leaf.
    let t = Tree::new()?;
    let fp = t.plan.cert(CertId::FrontProxyClient).cloned().ok_or("fp")?;
    let past = OffsetDateTime::now_utc() - Duration::days(400);
    t.reissue(
        CertId::FrontProxyClient,
        CertId::FrontProxyCa,
        fp.subject,
        fp.subject_alt_names,
        fp.ext_key_usage,
        Window::new(past - Duration::days(10), past),
    )?;
    fail(&t, "front-proxy-client", "validity")?;

    // A leaf signed by the wrong CA.
    let t = Tree::new()?;
    let ec = t
        .plan
        .cert(CertId::ApiserverEtcdClient)
        .cloned()
        .ok_or("ec")?;
    t.reissue(
        CertId::ApiserverEtcdClient,
        CertId::FrontProxyCa,
        ec.subject,
        ec.subject_alt_names,
        ec.ext_key_usage,
        now_window(),
    )?;
    fail(&t, "apiserver-etcd-client", "chain")?;

    // sa.pub that is not sa.key's.
    let t = Tree::new()?;
    let other_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    fs::write(t.pki().join("sa.pub"), other_key.public_key_pem())?;
    fail(&t, "sa", "key")?;

    // A leaf without EKU.
    let t = Tree::new()?;
    let kc = t
        .plan
        .cert(CertId::ApiserverKubeletClient)
        .cloned()
        .ok_or("kc")?;
    t.reissue(
        CertId::ApiserverKubeletClient,
        CertId::Ca,
        kc.subject,
        kc.subject_alt_names,
        vec![],
        now_window(),
    )?;
    fail(&t, "apiserver-kubelet-client", "usages")?;

    // admin.conf with the wrong group.
    let t = Tree::new()?;
    let spec = t
        .plan
        .kubeconfig(KubeconfigId::Admin)
        .cloned()
        .ok_or("admin")?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let ca = t.ca(CertId::Ca)?;
    let cert = ca.issue(
        &IssueSpec::new(
            Subject::cn("kubernetes-admin").with_organizations(["system:masters"]),
            key.public_key_der(),
            now_window(),
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]),
    )?;
    let yaml = kubeconfig_yaml(&spec, std::slice::from_ref(ca.certificate()), &cert, &key)?;
    fs::write(t.dir.path().join("admin.conf"), yaml.as_bytes())?;
    fail(&t, "admin.conf", "identity")?;
    let _ = &t.spec;
    Ok(())
}

#[test]
fn verify_reports_bad_files_and_checks_the_rest() -> R {
    let t = Tree::new()?;
    fs::write(t.pki().join("apiserver.crt"), vec![b'A'; 2 << 20])?;
    fs::write(
        t.pki().join("front-proxy-client.crt"),
        b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )?;
    fs::write(
        t.dir.path().join("scheduler.conf"),
        b"clusters: [unclosed\n",
    )?;
    let v = verify(&t.plan, OffsetDateTime::now_utc());
    let fails: Vec<(String, &str)> = v
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| (c.item.clone(), c.check))
        .collect();
    assert_eq!(
        fails,
        [
            ("apiserver".to_owned(), "parses"),
            ("front-proxy-client".to_owned(), "parses"),
            ("scheduler.conf".to_owned(), "parses"),
        ]
    );
    let detail = |item: &str| {
        v.checks
            .iter()
            .find(|c| c.item == item && c.status == CheckStatus::Fail)
            .map(|c| c.detail.clone())
            .unwrap_or_default()
    };
    assert!(detail("apiserver").contains("apiserver.crt") && detail("apiserver").contains("limit"));
    assert!(detail("scheduler.conf").contains("scheduler.conf"));
    // The rest of the tree was still checked.
    assert!(
        v.checks.iter().any(|c| c.item == "etcd-server"
            && c.check == "chain"
            && c.status == CheckStatus::Pass)
    );
    assert!(
        v.checks.iter().any(|c| c.item == "admin.conf"
            && c.check == "identity"
            && c.status == CheckStatus::Pass)
    );
    Ok(())
}

/// Rewrites a kubeconfig so its current user names `cert` and `key` files instead of embedding
/// them (as kubelet.conf after the kubelet's TLS bootstrap), writing the old credentials there.
fn to_file_references(conf: &Path, cert: &str, key: &str) -> R {
    let kc = Kubeconfig::from_slice(conf, &fs::read(conf)?)?;
    let cert_pem = kc.current_client_cert_pem(conf)?.ok_or("cert")?;
    let key_pem = kc.current_client_key_pem(conf)?.ok_or("key")?;
    let (cp, kp) = (
        kubepki_kubeadm::resolve_reference(conf, cert),
        kubepki_kubeadm::resolve_reference(conf, key),
    );
    if let Some(parent) = cp.parent() {
        fs::create_dir_all(parent)?;
    }
    if cp == kp {
        let mut both = cert_pem.clone();
        both.extend_from_slice(&key_pem);
        fs::write(&cp, both)?;
    } else {
        fs::write(&cp, &cert_pem)?;
        fs::write(&kp, key_pem.as_slice())?;
    }
    let text = fs::read_to_string(conf)?;
    let mut out = String::new();
    for line in text.lines() {
        match line.trim_start().split(':').next() {
            Some("client-certificate-data") => {
                out.push_str(&format!("    client-certificate: {cert}\n"))
            }
            Some("client-key-data") => out.push_str(&format!("    client-key: {key}\n")),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    fs::write(conf, out)?;
    Ok(())
}

#[test]
fn verify_reads_kubelet_conf_after_tls_bootstrap() -> R {
    // kubelet.conf pointing at one PEM with certificate and key, by absolute path (kubeadm's
    // /var/lib/kubelet/pki/kubelet-client-current.pem) and by a path relative to the
    // kubeconfig's folder, which kubectl resolves against that folder (not the working one).
    for path in ["ABS", "kubelet-pki/kubelet-client-current.pem"] {
        let t = Tree::new()?;
        let conf = t.dir.path().join("kubelet.conf");
        let target = if path == "ABS" {
            t.dir
                .path()
                .join("var/lib/kubelet/pki/kubelet-client-current.pem")
                .display()
                .to_string()
        } else {
            path.to_owned()
        };
        to_file_references(&conf, &target, &target)?;
        if path == "ABS" {
            // As the kubelet keeps it: a dated file and a symbolic link to the current one.
            let current = Path::new(&target);
            let dated = current.with_file_name("kubelet-client-2026-08-19-09-08-30.pem");
            fs::rename(current, &dated)?;
            std::os::unix::fs::symlink(&dated, current)?;
        }
        assert!(!fs::read_to_string(&conf)?.contains("client-key-data"));
        assert_eq!(t.fails(), [], "{path}");
        let v = verify(&t.plan, OffsetDateTime::now_utc());
        for check in ["parses", "key", "identity", "chain"] {
            assert!(
                v.checks.iter().any(|c| c.item == "kubelet.conf"
                    && c.check == check
                    && c.status == CheckStatus::Pass),
                "{path}: {check}"
            );
        }
        // A referenced file that is gone is named.
        fs::remove_file(kubepki_kubeadm::resolve_reference(&conf, &target))?;
        let v = verify(&t.plan, OffsetDateTime::now_utc());
        let fail = v
            .checks
            .iter()
            .find(|c| c.item == "kubelet.conf" && c.status == CheckStatus::Fail)
            .ok_or("no failure")?;
        assert!(
            fail.detail.contains("kubelet-client-current.pem"),
            "{}",
            fail.detail
        );
    }
    Ok(())
}

/// The `client-certificate-data` and `client-key-data` values of a kubeadm kubeconfig (one
/// user, one line each).
fn data_values(conf: &Path) -> Res<(String, String)> {
    let text = fs::read_to_string(conf)?;
    let value = |field: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{field}: ")))
            .map(str::to_owned)
            .ok_or(format!("no {field}"))
    };
    Ok((value("client-certificate-data")?, value("client-key-data")?))
}

#[test]
fn verify_fails_a_kubeconfig_whose_user_merges_other_credentials() -> R {
    // kubectl (go-yaml v2) applies a `<<` written after the explicit keys over them, so this
    // admin.conf authenticates as super-admin.conf's user (system:masters) for kubectl while a
    // reader letting explicit keys win sees a good kubernetes-admin: verify must FAIL it.
    let (super_cert, super_key) = {
        let t = Tree::new()?;
        data_values(&t.dir.path().join("super-admin.conf"))?
    };
    for (name, tail) in [
        (
            "merge after",
            format!(
                "    <<: {{client-certificate-data: {super_cert}, client-key-data: {super_key}}}\n"
            ),
        ),
        ("aliased merge", "    <<: *super\n".to_owned()),
        ("merge list", "    <<: [*super]\n".to_owned()),
    ] {
        let t = Tree::new()?;
        let conf = t.dir.path().join("admin.conf");
        assert_eq!(t.fails(), [], "{name}");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str(&tail);
        if tail.contains("*super") {
            text.push_str(&format!(
                "- name: super\n  user: &super\n    client-certificate-data: {super_cert}\n    client-key-data: {super_key}\n"
            ));
            // The anchor must come before its alias: put the extra user first.
            let (head, users) = text.split_once("users:\n").ok_or("users")?;
            let (admin, extra) = users.split_once("- name: super\n").ok_or("super")?;
            text = format!("{head}users:\n- name: super\n{extra}{admin}");
        }
        fs::write(&conf, &text)?;
        let v = verify(&t.plan, OffsetDateTime::now_utc());
        let fail = v
            .checks
            .iter()
            .find(|c| c.item == "admin.conf" && c.status == CheckStatus::Fail)
            .ok_or(format!("{name}: admin.conf did not fail"))?;
        assert_eq!(fail.check, "parses", "{name}");
        assert!(
            fail.detail
                .contains("admin.conf: uses a YAML merge key (<<) at line "),
            "{name}: {}",
            fail.detail
        );
        // Nothing about its credentials passes (only the file mode is checked).
        assert!(
            !v.checks.iter().any(|c| c.item == "admin.conf"
                && c.check != "mode"
                && c.status == CheckStatus::Pass),
            "{name}: some admin.conf check passed"
        );
    }
    Ok(())
}

#[test]
fn verify_fails_and_renew_refuses_base64_kubectl_refuses() -> R {
    for (name, blank) in [("space", " "), ("tab", "\\t")] {
        let t = Tree::new()?;
        let conf = t.dir.path().join("admin.conf");
        let (_, key) = data_values(&conf)?;
        let text = fs::read_to_string(&conf)?;
        let (a, b) = key.split_at(8);
        let bad = text.replace(
            &format!("client-key-data: {key}"),
            &format!("client-key-data: \"{a}{blank}{b}\""),
        );
        assert_ne!(bad, text);
        fs::write(&conf, &bad)?;
        let v = verify(&t.plan, OffsetDateTime::now_utc());
        let fail = v
            .checks
            .iter()
            .find(|c| c.item == "admin.conf" && c.status == CheckStatus::Fail)
            .ok_or(format!("{name}: admin.conf did not fail"))?;
        assert!(
            fail.detail.contains(&format!(
                "client-key-data is not valid base64: it holds a {name}"
            )),
            "{name}: {}",
            fail.detail
        );
        let (done, _) = renew(
            &t.spec,
            &[RenewTarget::Kubeconfig(KubeconfigId::Admin)],
            None,
            OffsetDateTime::now_utc(),
        )?;
        let status = &done.first().ok_or("no report")?.status;
        let RenewStatus::Failed { reason } = status else {
            return Err(format!("{name}: renew did not refuse: {status:?}").into());
        };
        assert!(reason.contains("is not valid base64"), "{name}: {reason}");
        assert_eq!(fs::read_to_string(&conf)?, bad, "{name}");
    }
    Ok(())
}

#[test]
fn renew_all_renews_what_it_can_and_reports_the_rest() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init_at(&s, T0)?;
    let d = dir.path();
    let now = T0 + Duration::days(300);
    let all = kubepki_kubeadm::parse_renew_name(&s, "all")?;

    // scheduler.conf with certificate files: renewed, into those files.
    let sched = d.join("scheduler.conf");
    to_file_references(&sched, "scheduler-client.crt", "scheduler-client.key")?;
    let sched_text = fs::read(&sched)?;
    let (done, _) = renew(&s, &all, None, now)?;
    assert_eq!(done.len(), 11);
    assert!(
        done.iter()
            .all(|r| matches!(r.status, RenewStatus::Renewed { .. })),
        "{done:?}"
    );
    assert_eq!(
        fs::read(&sched)?,
        sched_text,
        "scheduler.conf itself changed"
    );
    let kc = Kubeconfig::from_slice(&sched, &sched_text)?;
    let cert = Certificate::from_pem(&fs::read(d.join("scheduler-client.crt"))?)?;
    let key = PrivateKey::from_pem(&fs::read(d.join("scheduler-client.key"))?)?;
    assert_eq!(cert.not_after(), now + Duration::hours(8760));
    assert_eq!(cert.subject().to_string(), "CN = system:kube-scheduler");
    assert!(key.matches_public_key(cert.public_key_der()));
    assert_eq!(
        kc.current_client_cert_pem(&sched)?.ok_or("cert")?,
        cert.to_pem().as_bytes()
    );
    // A replaced file keeps its mode (kubeadm rewrites in place), except that a key is never
    // left readable by others: the 0644 file the test wrote becomes 0640.
    assert_eq!(
        fs::metadata(d.join("scheduler-client.key"))?
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    let sched_renew = done
        .iter()
        .find(|r| r.target.name() == "scheduler.conf")
        .ok_or("scheduler.conf")?;
    assert!(sched_renew.files.contains(&d.join("scheduler-client.key")));
    assert!(verify(&Plan::new(&s)?, now).passed());

    // A current user with a token: scheduler.conf fails with that reason, unchanged; the other
    // ten items are renewed.
    let token = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://192.0.2.10:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: system:kube-scheduler\n  name: s\ncurrent-context: s\nkind: Config\nusers:\n- name: system:kube-scheduler\n  user:\n    token: abcdef.0123456789abcdef\n";
    fs::write(&sched, token)?;
    let before_api = fs::read(s.cert_dir.join("apiserver.crt"))?;
    let later = now + Duration::days(1);
    let (done, _) = renew(&s, &all, None, later)?;
    for r in &done {
        if r.target.name() == "scheduler.conf" {
            let RenewStatus::Failed { reason } = &r.status else {
                return Err(format!("{r:?}").into());
            };
            assert!(
                reason.contains("scheduler.conf")
                    && reason.contains("authenticates with a token")
                    && !reason.contains("certificate files"),
                "{reason}"
            );
        } else {
            assert!(matches!(r.status, RenewStatus::Renewed { .. }), "{r:?}");
        }
    }
    assert_eq!(fs::read_to_string(&sched)?, token);
    assert_ne!(fs::read(s.cert_dir.join("apiserver.crt"))?, before_api);

    // A JSON kubeconfig (kubectl reads JSON too) is renewed, not refused as "not a one-line
    // value".
    let admin = d.join("admin.conf");
    let kc = Kubeconfig::from_slice(&admin, &fs::read(&admin)?)?;
    fs::write(&admin, serde_json::to_string_pretty(&kc)?)?;
    let (done, _) = renew(
        &s,
        &[RenewTarget::Kubeconfig(KubeconfigId::Admin)],
        None,
        later,
    )?;
    assert!(
        matches!(done[0].status, RenewStatus::Renewed { .. }),
        "{done:?}"
    );
    let text = fs::read_to_string(&admin)?;
    let back: serde_json::Value = serde_json::from_str(&text)?;
    let renewed = Kubeconfig::from_slice(&admin, text.as_bytes())?;
    let c = Certificate::from_pem(&renewed.current_client_cert_pem(&admin)?.ok_or("cert")?)?;
    assert_eq!(c.not_after(), later + Duration::hours(8760));
    assert_eq!(back["users"][0]["name"], "kubernetes-admin");
    Ok(())
}
