//! The external-CA flow against the plan (issue 14): `sign_csrs` issues exactly the plan's
//! identity for the configured version and node and refuses every CSR that asks for anything
//! else (a matrix over every leaf and kubeconfig), checks each CA's role, can be done in parts
//! (as can `generate_csrs`), and `init` in external-CA mode refuses certificates that are not the
//! plan's and lists every CSR still awaiting signing.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec, LEAF_KEY_USAGE, Window};
use kubepki_csr::{BasicConstraints, CsrBuilder, ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    CertId, ClusterSpec, Error, Kept, Kubeconfig, KubeconfigId, KubernetesVersion, Plan, Selection,
    Signed, SigningCas, csr_path, generate_csrs, init_tree, kubeconfig_csr_path, sign_csrs, verify,
};
use time::Duration;

mod common;
use common::{
    CAS, assert_no_verify_failure, load_ca, now, openssl_req_config, openssl_verify, signing_cas,
    snapshot, spec_in,
};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn spec(dir: &Path, version: KubernetesVersion) -> ClusterSpec {
    let mut s = spec_in(dir, "n1");
    s.kubernetes_version = version;
    s
}

/// The three CAs, made where the CA keys live.
struct CaSide {
    dir: tempfile::TempDir,
}

impl CaSide {
    fn new() -> Res<CaSide> {
        let dir = tempfile::tempdir()?;
        let plan = Plan::new(&spec(dir.path(), KubernetesVersion::DEFAULT))?;
        let cas = Selection {
            certs: vec![CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa],
            ..Selection::none()
        };
        init_tree(&plan, &cas, now(), false)?;
        Ok(CaSide { dir })
    }

    fn cert_path(&self, id: CertId) -> PathBuf {
        id.cert_path(&self.dir.path().join("pki"))
    }

    fn load(&self, id: CertId) -> Res<CertificateAuthority> {
        load_ca(&self.dir.path().join("pki"), id, now())
    }

    fn all(&self) -> Res<SigningCas> {
        signing_cas(&self.dir.path().join("pki"), now())
    }

    /// Copies the CA certificates (not the keys) into a node's tree.
    fn copy_certs_to(&self, plan: &Plan) -> R {
        for id in CAS {
            fs::copy(self.cert_path(id), id.cert_path(&plan.cert_dir))?;
        }
        Ok(())
    }
}

/// A node after `generate_csrs`.
fn node(version: KubernetesVersion) -> Res<(tempfile::TempDir, Plan)> {
    let dir = tempfile::tempdir()?;
    let plan = Plan::new(&spec(dir.path(), version))?;
    generate_csrs(&plan)?;
    Ok((dir, plan))
}

/// One item of the plan whose CSR is tampered with.
#[derive(Clone, Copy, Debug)]
enum Target {
    Leaf(CertId),
    Kubeconfig(KubeconfigId),
}

impl Target {
    fn all(plan: &Plan) -> Vec<Target> {
        plan.certs
            .iter()
            .filter(|c| !c.id.is_ca())
            .map(|c| Target::Leaf(c.id))
            .chain(plan.kubeconfigs.iter().map(|k| Target::Kubeconfig(k.id)))
            .collect()
    }

    fn csr_file(self, plan: &Plan) -> PathBuf {
        match self {
            Target::Leaf(id) => csr_path(&plan.cert_dir, id),
            Target::Kubeconfig(id) => kubeconfig_csr_path(&plan.kubeconfig_dir, id),
        }
    }

    /// The plan's subject, SANs and EKU.
    fn identity(self, plan: &Plan) -> Res<(Subject, SubjectAltNames, Vec<ExtKeyUsage>)> {
        Ok(match self {
            Target::Leaf(id) => {
                let c = plan.cert(id).ok_or("no such leaf")?;
                (
                    c.subject.clone(),
                    c.subject_alt_names.clone(),
                    c.ext_key_usage.clone(),
                )
            }
            Target::Kubeconfig(id) => {
                let k = plan.kubeconfig(id).ok_or("no such kubeconfig")?;
                (
                    k.subject.clone(),
                    SubjectAltNames::default(),
                    vec![ExtKeyUsage::ClientAuth],
                )
            }
        })
    }

    /// The key the node made for it.
    fn key(self, plan: &Plan) -> Res<PrivateKey> {
        match self {
            Target::Leaf(id) => Ok(PrivateKey::from_pem(&fs::read(
                id.key_path(&plan.cert_dir),
            )?)?),
            Target::Kubeconfig(id) => {
                let p = plan.kubeconfig_path(id);
                let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
                let pem = kc.current_client_key_pem(&p)?.ok_or("no client key")?;
                Ok(PrivateKey::from_pem(&pem)?)
            }
        }
    }
}

/// A CSR edited in one way, and the difference the refusal must name.
struct Tamper {
    what: &'static str,
    builder: CsrBuilder,
    expect: String,
}

/// Every way the matrix edits the CSR of `target`: wrong CN, an extra O `system:masters` (or,
/// where the plan's O is `system:masters`, another group), missing O, extra OU, extra DNS SAN,
/// extra IP SAN (on a client certificate both are "a SAN on a client cert"), a URI SAN, a
/// missing SAN, another EKU, CA:TRUE.
fn tampers(target: Target, plan: &Plan) -> Res<Vec<Tamper>> {
    let (subject, sans, eku) = target.identity(plan)?;
    let with = |s: Subject, n: SubjectAltNames| CsrBuilder::new(s).subject_alt_names(n);
    let mut out = Vec::new();
    let mut wrong_cn = subject.clone();
    let bad_cn = match target {
        Target::Kubeconfig(KubeconfigId::Kubelet) => "system:node:other",
        Target::Leaf(CertId::EtcdServer | CertId::EtcdPeer) => "root",
        _ => "kube-apiserver",
    };
    let bad_cn = if subject.common_name.as_deref() == Some(bad_cn) {
        "root"
    } else {
        bad_cn
    };
    wrong_cn.common_name = Some(bad_cn.into());
    out.push(Tamper {
        what: "wrong CN",
        builder: with(wrong_cn, sans.clone()),
        expect: format!("CN is \"{bad_cn}\""),
    });
    let group = if subject.organizations.iter().any(|o| o == "system:masters") {
        "kubeadm:cluster-admins"
    } else {
        "system:masters"
    };
    out.push(Tamper {
        what: "extra O",
        builder: with(subject.clone().with_organizations([group]), sans.clone()),
        expect: format!("extra O \"{group}\""),
    });
    if let Some(o) = subject.organizations.first() {
        let mut s = subject.clone();
        s.organizations.clear();
        out.push(Tamper {
            what: "missing O",
            builder: with(s, sans.clone()),
            expect: format!("missing O \"{o}\""),
        });
    }
    let mut ou = subject.clone();
    ou.organizational_units.push("system:masters".into());
    out.push(Tamper {
        what: "extra OU",
        builder: with(ou, sans.clone()),
        expect: "extra OU \"system:masters\"".into(),
    });
    out.push(Tamper {
        what: "extra DNS SAN",
        builder: with(subject.clone(), sans.clone()).dns("evil.example.com"),
        expect: "extra SAN DNS:evil.example.com".into(),
    });
    let ip: IpAddr = [203, 0, 113, 7].into();
    out.push(Tamper {
        what: "extra IP SAN",
        builder: with(subject.clone(), sans.clone()).ip(ip),
        expect: "extra SAN IP:203.0.113.7".into(),
    });
    out.push(Tamper {
        what: "URI SAN",
        builder: with(subject.clone(), sans.clone()).uri("spiffe://evil/admin"),
        expect: "extra SAN URI:spiffe://evil/admin".into(),
    });
    if let Some(d) = sans.dns.first() {
        let mut fewer = sans.clone();
        fewer.dns.remove(0);
        out.push(Tamper {
            what: "missing SAN",
            builder: with(subject.clone(), fewer),
            expect: format!("missing SAN DNS:{d}"),
        });
    }
    let other_eku = if eku == [ExtKeyUsage::ClientAuth] {
        vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth]
    } else {
        vec![ExtKeyUsage::ClientAuth]
    };
    out.push(Tamper {
        what: "other EKU",
        builder: with(subject.clone(), sans.clone()).ext_key_usage(other_eku),
        expect: "EKU is".into(),
    });
    out.push(Tamper {
        what: "CA:TRUE",
        builder: with(subject, sans).basic_constraints(BasicConstraints {
            ca: true,
            path_len: None,
        }),
        expect: "BasicConstraints CA:TRUE".into(),
    });
    Ok(out)
}

/// Signs with `cas` and expects exactly one refusal, of `csr_file`, naming `expect`; nothing
/// may be written.
fn expect_refusal(plan: &Plan, cas: &SigningCas, csr_file: &Path, expect: &str, case: &str) -> R {
    let root = plan.kubeconfig_dir.clone();
    let before = snapshot(&root)?;
    match sign_csrs(plan, cas, now()) {
        Ok(signed) => return Err(format!("{case}: signed: {signed:?}").into()),
        Err(Error::Refused { refused }) => {
            assert_eq!(refused.len(), 1, "{case}: {refused:?}");
            assert_eq!(refused[0].0, csr_file, "{case}: {refused:?}");
            assert!(refused[0].1.contains(expect), "{case}: {}", refused[0].1);
        }
        Err(e) => return Err(format!("{case}: unexpected error: {e}").into()),
    }
    assert_eq!(snapshot(&root)?, before, "{case}: something was written");
    Ok(())
}

fn matrix(version: KubernetesVersion) -> R {
    let ca_side = CaSide::new()?;
    let cas = ca_side.all()?;
    let (_dir, plan) = node(version)?;
    let targets = Target::all(&plan);
    let n_targets = targets.len();
    assert_eq!(n_targets, 7 + plan.kubeconfigs.len());
    let mut cases = 0;
    for target in targets {
        let csr_file = target.csr_file(&plan);
        let original = fs::read(&csr_file)?;
        let key = target.key(&plan)?;
        for t in tampers(target, &plan)? {
            fs::write(&csr_file, t.builder.sign(&key)?.to_pem())?;
            let case = format!("{version} {target:?} {}", t.what);
            expect_refusal(&plan, &cas, &csr_file, &t.expect, &case)?;
            cases += 1;
        }
        fs::write(&csr_file, &original)?;
    }
    // At least the 8 edits every item gets (missing O and missing SAN come on top where the
    // plan has an O or SANs).
    assert!(cases > 8 * n_targets, "only {cases} cases");
    // The untouched output still signs.
    let signed = sign_csrs(&plan, &cas, now())?;
    assert!(signed.iter().all(|s| matches!(s, Signed::Written(_))));
    Ok(())
}

#[test]
fn sign_csrs_refuses_every_wrong_subject_and_san_set_for_every_leaf_and_kubeconfig() -> R {
    matrix(KubernetesVersion::DEFAULT)
}

#[test]
fn sign_csrs_matrix_under_an_older_version_uses_that_versions_identities() -> R {
    // 1.28: system:masters is the plan's O for admin.conf and the client certificates, and
    // kubeadm:cluster-admins is wrong there.
    matrix(KubernetesVersion::new(28, 0))
}

fn tamper_and_expect(
    plan: &Plan,
    cas: &SigningCas,
    target: Target,
    builder: CsrBuilder,
    expect: &str,
) -> R {
    let csr_file = target.csr_file(plan);
    let original = fs::read(&csr_file)?;
    fs::write(&csr_file, builder.sign(&target.key(plan)?)?.to_pem())?;
    let e = sign_csrs(plan, cas, now())
        .err()
        .ok_or_else(|| format!("{target:?}: signed"))?;
    let msg = e.to_string();
    let name = csr_file.display().to_string();
    assert!(
        msg.contains(&name) && msg.contains(expect),
        "{target:?}: {msg}"
    );
    for c in &plan.certs {
        assert!(
            !c.id.cert_path(&plan.cert_dir).exists(),
            "{target:?}: {} written",
            c.id.name()
        );
    }
    fs::write(&csr_file, original)?;
    Ok(())
}

#[test]
fn sign_csrs_refuses_each_escalation_of_issue_14() -> R {
    let ca_side = CaSide::new()?;
    let cas = ca_side.all()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let masters = |cn: &str| Subject::cn(cn).with_organizations(["system:masters"]);
    for (target, cn) in [
        (Target::Kubeconfig(KubeconfigId::Admin), "kubernetes-admin"),
        (
            Target::Leaf(CertId::ApiserverKubeletClient),
            "kube-apiserver-kubelet-client",
        ),
        (
            Target::Leaf(CertId::ApiserverEtcdClient),
            "kube-apiserver-etcd-client",
        ),
        (
            Target::Leaf(CertId::EtcdHealthcheckClient),
            "kube-etcd-healthcheck-client",
        ),
    ] {
        tamper_and_expect(
            &plan,
            &cas,
            target,
            CsrBuilder::new(masters(cn)),
            "O \"system:masters\"",
        )?;
    }
    tamper_and_expect(
        &plan,
        &cas,
        Target::Kubeconfig(KubeconfigId::Kubelet),
        CsrBuilder::new(Subject::cn("system:node:other").with_organizations(["system:nodes"])),
        "CN is \"system:node:other\", must be \"system:node:n1\"",
    )?;
    let server = plan.cert(CertId::EtcdServer).ok_or("etcd-server")?;
    tamper_and_expect(
        &plan,
        &cas,
        Target::Leaf(CertId::EtcdServer),
        CsrBuilder::new(Subject::cn("root")).subject_alt_names(server.subject_alt_names.clone()),
        "CN is \"root\", must be \"n1\"",
    )?;
    let api = plan.cert(CertId::Apiserver).ok_or("apiserver")?;
    tamper_and_expect(
        &plan,
        &cas,
        Target::Leaf(CertId::Apiserver),
        CsrBuilder::new(api.subject.clone())
            .subject_alt_names(api.subject_alt_names.clone())
            .dns("evil.example.com"),
        "extra SAN DNS:evil.example.com",
    )?;
    tamper_and_expect(
        &plan,
        &cas,
        Target::Leaf(CertId::ApiserverKubeletClient),
        CsrBuilder::new(
            plan.cert(CertId::ApiserverKubeletClient)
                .ok_or("kubelet client")?
                .subject
                .clone(),
        )
        .dns("kubernetes"),
        "extra SAN DNS:kubernetes",
    )?;
    // Every refused CSR is named in one error; nothing is written.
    let admin = Target::Kubeconfig(KubeconfigId::Admin);
    let kc = Target::Leaf(CertId::ApiserverKubeletClient);
    for t in [admin, kc] {
        let (s, _, _) = t.identity(&plan)?;
        let evil = CsrBuilder::new(s.with_organizations(["system:masters"]));
        fs::write(t.csr_file(&plan), evil.sign(&t.key(&plan)?)?.to_pem())?;
    }
    let before = snapshot(dir.path())?;
    match sign_csrs(&plan, &cas, now()) {
        Err(Error::Refused { refused }) => {
            let files: Vec<_> = refused.iter().map(|(p, _)| p.clone()).collect();
            assert_eq!(files, [kc.csr_file(&plan), admin.csr_file(&plan)]);
        }
        other => return Err(format!("{other:?}").into()),
    }
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

fn purpose(eku: &ExtKeyUsage) -> &'static str {
    match eku {
        ExtKeyUsage::ServerAuth => "sslserver",
        _ => "sslclient",
    }
}

#[test]
fn untouched_csrs_sign_to_exactly_the_plan_and_pass_openssl_verify() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let signed = sign_csrs(&plan, &ca_side.all()?, now())?;
    assert_eq!(signed.len(), 12);
    assert!(signed.iter().all(|s| matches!(s, Signed::Written(_))));
    for c in plan.certs.iter().filter(|c| !c.id.is_ca()) {
        let path = c.id.cert_path(&plan.cert_dir);
        let cert = Certificate::from_pem(&fs::read(&path)?)?;
        assert_eq!(cert.subject(), &c.subject, "{}", c.id.name());
        assert_eq!(
            cert.subject_alt_names(),
            c.subject_alt_names,
            "{}",
            c.id.name()
        );
        assert_eq!(
            cert.ext_key_usage(),
            Some(c.ext_key_usage.as_slice()),
            "{}",
            c.id.name()
        );
        assert_eq!(cert.key_usage(), Some(LEAF_KEY_USAGE));
        assert!(!cert.is_ca());
        let issuer = ca_side.cert_path(c.id.issuer().ok_or("leaf without issuer")?);
        for eku in &c.ext_key_usage {
            openssl_verify(&issuer, &path, purpose(eku))?;
        }
    }
    for k in &plan.kubeconfigs {
        let p = plan.kubeconfig_path(k.id);
        let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
        let pem = kc.current_client_cert_pem(&p)?.ok_or("no client cert")?;
        let cert = Certificate::from_pem(&pem)?;
        assert_eq!(cert.subject(), &k.subject, "{}", k.id.file_name());
        assert!(cert.subject_alt_names().is_empty());
        assert_eq!(cert.ext_key_usage(), Some(&[ExtKeyUsage::ClientAuth][..]));
        let ca = Certificate::from_pem(&kc.current_ca_pem(&p)?)?;
        assert_eq!(
            ca.to_der(),
            Certificate::from_pem(&fs::read(ca_side.cert_path(CertId::Ca))?)?.to_der()
        );
        let out = dir.path().join(format!("{}.crt", k.id.name()));
        fs::write(&out, &pem)?;
        openssl_verify(&ca_side.cert_path(CertId::Ca), &out, "sslclient")?;
        fs::remove_file(out)?;
    }
    Ok(())
}

#[test]
fn sign_csrs_refuses_a_ca_given_for_another_role() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let before = snapshot(dir.path())?;
    for (ca, front_proxy, etcd, role, is) in [
        (CertId::FrontProxyCa, None, None, "ca", "front-proxy-ca"),
        (CertId::EtcdCa, None, None, "ca", "etcd-ca"),
        (
            CertId::Ca,
            Some(CertId::Ca),
            None,
            "front-proxy-ca",
            "of ca)",
        ),
        (
            CertId::Ca,
            Some(CertId::FrontProxyCa),
            Some(CertId::FrontProxyCa),
            "etcd-ca",
            "front-proxy-ca",
        ),
    ] {
        let cas = SigningCas {
            ca: Some(ca_side.load(ca)?),
            front_proxy: front_proxy.map(|id| ca_side.load(id)).transpose()?,
            etcd: etcd.map(|id| ca_side.load(id)).transpose()?,
        };
        match sign_csrs(&plan, &cas, now()) {
            Err(e @ Error::CaRole { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("given as {role}")) && msg.contains(is),
                    "{msg}"
                );
            }
            other => return Err(format!("{role}: {other:?}").into()),
        }
        assert_eq!(snapshot(dir.path())?, before);
    }
    // Without any CA: an error too.
    let none = SigningCas {
        ca: None,
        front_proxy: None,
        etcd: None,
    };
    assert!(sign_csrs(&plan, &none, now()).is_err());
    Ok(())
}

#[test]
fn signing_in_parts_then_init_and_verify() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    // Only the cluster CA: its 2 leaves and the 5 kubeconfigs; the others are skipped as such.
    let only_ca = SigningCas {
        ca: Some(ca_side.load(CertId::Ca)?),
        front_proxy: None,
        etcd: None,
    };
    let first = sign_csrs(&plan, &only_ca, now())?;
    let written = first
        .iter()
        .filter(|s| matches!(s, Signed::Written(_)))
        .count();
    assert_eq!(written, 2 + 5, "{first:?}");
    let no_ca: Vec<_> = first
        .iter()
        .filter_map(|s| match s {
            Signed::NoCa { name, ca } => Some((name.as_str(), *ca)),
            _ => None,
        })
        .collect();
    assert_eq!(
        no_ca,
        [
            ("front-proxy-client", "front-proxy-ca"),
            ("etcd-server", "etcd-ca"),
            ("etcd-peer", "etcd-ca"),
            ("etcd-healthcheck-client", "etcd-ca"),
            ("apiserver-etcd-client", "etcd-ca"),
        ]
    );
    assert!(first.iter().any(Signed::is_skipped));
    // The rest, without the cluster CA: what is signed is kept, the rest is signed.
    let rest = SigningCas {
        ca: None,
        front_proxy: Some(ca_side.load(CertId::FrontProxyCa)?),
        etcd: Some(ca_side.load(CertId::EtcdCa)?),
    };
    let api_before = fs::read(plan.cert_dir.join("apiserver.crt"))?;
    let second = sign_csrs(&plan, &rest, now())?;
    let already = second
        .iter()
        .filter(|s| matches!(s, Signed::AlreadySigned(_)))
        .count();
    let new = second
        .iter()
        .filter(|s| matches!(s, Signed::Written(_)))
        .count();
    assert_eq!((already, new), (7, 5), "{second:?}");
    assert!(!second.iter().any(Signed::is_skipped));
    assert_eq!(fs::read(plan.cert_dir.join("apiserver.crt"))?, api_before);
    // A third run with all CAs changes nothing.
    let before = snapshot(dir.path())?;
    let third = sign_csrs(&plan, &ca_side.all()?, now())?;
    assert!(
        third.iter().all(|s| matches!(s, Signed::AlreadySigned(_))),
        "{third:?}"
    );
    assert_eq!(snapshot(dir.path())?, before);
    // An already signed certificate with another identity is refused, not kept.
    let key = PrivateKey::from_pem(&fs::read(plan.cert_dir.join("apiserver.key"))?)?;
    let api = plan.cert(CertId::Apiserver).ok_or("apiserver")?;
    let mut sans = api.subject_alt_names.clone();
    sans.dns.push("evil.example.com".into());
    let evil = ca_side.load(CertId::Ca)?.issue(
        &IssueSpec::new(
            api.subject.clone(),
            key.public_key_der(),
            Window::kubeadm(now(), Duration::hours(8760)),
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![ExtKeyUsage::ServerAuth])
        .with_subject_alt_names(sans),
    )?;
    fs::write(plan.cert_dir.join("apiserver.crt"), evil.to_pem())?;
    let msg = sign_csrs(&plan, &ca_side.all()?, now())
        .err()
        .ok_or("kept a wrong apiserver.crt")?
        .to_string();
    assert!(
        msg.contains("apiserver.crt") && msg.contains("extra SAN DNS:evil.example.com"),
        "{msg}"
    );
    fs::write(plan.cert_dir.join("apiserver.crt"), &api_before)?;

    ca_side.copy_certs_to(&plan)?;
    init_tree(&plan, &Selection::all(), now(), false)?;
    assert_no_verify_failure(&plan, now());
    Ok(())
}

#[test]
fn sign_csrs_replaces_a_ca_file_reference_by_the_data_kubectl_accepts() -> R {
    // A cluster with `certificate-authority: FILE` and `certificate-authority-data` is refused
    // by kubectl; sign-csrs writes kubeadm's shape (data only) and leaves the file alone.
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let conf = dir.path().join("admin.conf");
    let bundle = dir.path().join("ca-bundle.crt");
    fs::write(&bundle, fs::read(ca_side.cert_path(CertId::FrontProxyCa))?)?;
    let text = fs::read_to_string(&conf)?;
    let edited = text.replacen(
        "    server: ",
        "    certificate-authority: ca-bundle.crt\n    server: ",
        1,
    );
    assert_ne!(edited, text);
    fs::write(&conf, &edited)?;
    // An empty reference elsewhere (not set, for client-go) is dropped too.
    let sched = dir.path().join("scheduler.conf");
    let text = fs::read_to_string(&sched)?;
    let edited = text.replacen(
        "    server: ",
        "    certificate-authority: \"\"\n    server: ",
        1,
    );
    assert_ne!(edited, text);
    fs::write(&sched, &edited)?;
    let bundle_before = fs::read(&bundle)?;

    let signed = sign_csrs(&plan, &ca_side.all()?, now())?;
    assert!(
        signed.iter().all(|s| matches!(s, Signed::Written(_))),
        "{signed:?}"
    );
    let ca_pem = fs::read(ca_side.cert_path(CertId::Ca))?;
    for conf in [&conf, &sched] {
        let out = fs::read(conf)?;
        assert!(
            !String::from_utf8_lossy(&out).contains("certificate-authority:"),
            "{}",
            conf.display()
        );
        let kc = Kubeconfig::from_slice(conf, &out)?;
        let (cluster, _) = kc.current(conf)?;
        assert_eq!(cluster.cluster.certificate_authority, None);
        // Readable as kubectl reads it: CA data only, the client certificate chains to it and
        // belongs to the key.
        assert_eq!(kc.current_ca_pem(conf)?, ca_pem);
        let cert = Certificate::from_pem(&kc.current_client_cert_pem(conf)?.ok_or("cert")?)?;
        let key = PrivateKey::from_pem(&kc.current_client_key_pem(conf)?.ok_or("key")?)?;
        assert!(key.matches_public_key(cert.public_key_der()));
        ca_side.load(CertId::Ca)?.check_issued(&cert)?;
    }
    assert_eq!(fs::read(&bundle)?, bundle_before);
    // The result is what sign-csrs keeps on a second run.
    let again = sign_csrs(&plan, &ca_side.all()?, now())?;
    assert!(
        again.iter().all(|s| matches!(s, Signed::AlreadySigned(_))),
        "{again:?}"
    );
    Ok(())
}

#[test]
fn generate_csrs_makes_only_what_is_missing() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    sign_csrs(&plan, &ca_side.all()?, now())?;
    // One leaf and one kubeconfig gone entirely, one leaf's CSR and cert gone (key kept).
    for f in ["apiserver.crt", "apiserver.key", "apiserver.csr"] {
        fs::remove_file(plan.cert_dir.join(f))?;
    }
    for f in ["etcd/peer.crt", "etcd/peer.csr"] {
        fs::remove_file(plan.cert_dir.join(f))?;
    }
    fs::remove_file(dir.path().join("scheduler.conf"))?;
    fs::remove_file(dir.path().join("scheduler.conf.csr"))?;
    let peer_key = fs::read(plan.cert_dir.join("etcd/peer.key"))?;
    let before = snapshot(dir.path())?;
    let g = generate_csrs(&plan)?;
    let mut written = g.written.clone();
    written.sort();
    let mut want = vec![
        plan.cert_dir.join("apiserver.key"),
        plan.cert_dir.join("apiserver.csr"),
        plan.cert_dir.join("etcd/peer.csr"),
        dir.path().join("scheduler.conf"),
        dir.path().join("scheduler.conf.csr"),
    ];
    want.sort();
    assert_eq!(written, want);
    assert_eq!(g.kept.len(), 12 - 3);
    assert!(g.kept.iter().all(|k| matches!(k, Kept::Signed { .. })));
    // Nothing that existed changed.
    let after = snapshot(dir.path())?;
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
    // The new peer CSR is for the kept key.
    let csr = kubepki_csr::Csr::from_pem(&fs::read(plan.cert_dir.join("etcd/peer.csr"))?)?;
    assert!(PrivateKey::from_pem(&peer_key)?.matches_public_key(csr.public_key_der()));
    // Signing what is missing, then init.
    let again = sign_csrs(&plan, &ca_side.all()?, now())?;
    assert_eq!(
        again
            .iter()
            .filter(|s| matches!(s, Signed::Written(_)))
            .count(),
        3
    );
    ca_side.copy_certs_to(&plan)?;
    init_tree(&plan, &Selection::all(), now(), false)?;
    assert!(verify(&plan, now()).passed());
    // A CSR whose key is gone is refused, naming it.
    fs::remove_file(plan.cert_dir.join("front-proxy-client.crt"))?;
    fs::remove_file(plan.cert_dir.join("front-proxy-client.key"))?;
    let msg = generate_csrs(&plan)
        .err()
        .ok_or("accepted a CSR without key")?
        .to_string();
    assert!(
        msg.contains("front-proxy-client.csr") && msg.contains("without its key"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn init_in_external_ca_mode_lists_every_csr_awaiting_signing() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    ca_side.copy_certs_to(&plan)?;
    let before = snapshot(dir.path())?;
    let e = init_tree(&plan, &Selection::all(), now(), false)
        .err()
        .ok_or("init accepted unsigned CSRs")?;
    let msg = e.to_string();
    let Error::AwaitingSignature { csrs, .. } = &e else {
        return Err(format!("wrong error: {msg}").into());
    };
    assert_eq!(csrs.len(), 12, "{msg}");
    for t in Target::all(&plan) {
        assert!(
            msg.contains(&t.csr_file(&plan).display().to_string()),
            "{t:?}: {msg}"
        );
    }
    assert!(msg.contains("kubepki certs sign-csrs"), "{msg}");
    assert!(!msg.contains("remove"), "{msg}");
    assert_eq!(snapshot(dir.path())?, before);
    // The same for a dry run.
    assert!(matches!(
        init_tree(&plan, &Selection::all(), now(), true),
        Err(Error::AwaitingSignature { .. })
    ));
    Ok(())
}

#[test]
fn init_in_external_ca_mode_refuses_a_certificate_that_is_not_the_plans() -> R {
    let ca_side = CaSide::new()?;
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    sign_csrs(&plan, &ca_side.all()?, now())?;
    ca_side.copy_certs_to(&plan)?;
    let window = Window::kubeadm(now(), Duration::hours(8760));
    let ca = ca_side.load(CertId::Ca)?;
    // apiserver.crt signed by the CA, right key, with an extra SAN.
    let api_path = plan.cert_dir.join("apiserver.crt");
    let good_api = fs::read(&api_path)?;
    let key = PrivateKey::from_pem(&fs::read(plan.cert_dir.join("apiserver.key"))?)?;
    let api = plan.cert(CertId::Apiserver).ok_or("apiserver")?;
    let mut sans = api.subject_alt_names.clone();
    sans.dns.push("evil.example.com".into());
    let evil = ca.issue(
        &IssueSpec::new(
            api.subject.clone(),
            key.public_key_der(),
            window,
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![ExtKeyUsage::ServerAuth])
        .with_subject_alt_names(sans),
    )?;
    fs::write(&api_path, evil.to_pem())?;
    let before = snapshot(dir.path())?;
    let msg = init_tree(&plan, &Selection::all(), now(), false)
        .err()
        .ok_or("init reused an apiserver.crt with an extra SAN")?
        .to_string();
    assert!(
        msg.contains("apiserver.crt") && msg.contains("extra SAN DNS:evil.example.com"),
        "{msg}"
    );
    assert_eq!(snapshot(dir.path())?, before);
    fs::write(&api_path, good_api)?;

    // apiserver-kubelet-client.crt in system:masters.
    let kc_path = plan.cert_dir.join("apiserver-kubelet-client.crt");
    let key = PrivateKey::from_pem(&fs::read(
        plan.cert_dir.join("apiserver-kubelet-client.key"),
    )?)?;
    let evil = ca.issue(
        &IssueSpec::new(
            Subject::cn("kube-apiserver-kubelet-client").with_organizations(["system:masters"]),
            key.public_key_der(),
            window,
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]),
    )?;
    let good = fs::read(&kc_path)?;
    fs::write(&kc_path, evil.to_pem())?;
    let msg = init_tree(&plan, &Selection::all(), now(), false)
        .err()
        .ok_or("init reused a system:masters apiserver-kubelet-client.crt")?
        .to_string();
    assert!(
        msg.contains("apiserver-kubelet-client.crt") && msg.contains("extra O \"system:masters\""),
        "{msg}"
    );
    fs::write(&kc_path, good)?;

    // admin.conf whose client certificate is in system:masters.
    let admin = plan.kubeconfig_path(KubeconfigId::Admin);
    let good_admin = fs::read(&admin)?;
    let kc = Kubeconfig::from_slice(&admin, &good_admin)?;
    let key = PrivateKey::from_pem(&kc.current_client_key_pem(&admin)?.ok_or("key")?)?;
    let evil = ca.issue(
        &IssueSpec::new(
            Subject::cn("kubernetes-admin").with_organizations(["system:masters"]),
            key.public_key_der(),
            window,
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]),
    )?;
    let spec = plan.kubeconfig(KubeconfigId::Admin).ok_or("admin")?;
    let yaml = kubepki_kubeadm::kubeconfig_yaml(
        spec,
        std::slice::from_ref(ca.certificate()),
        &evil,
        &key,
    )?;
    fs::write(&admin, yaml.as_bytes())?;
    let msg = init_tree(&plan, &Selection::all(), now(), false)
        .err()
        .ok_or("init reused a system:masters admin.conf")?
        .to_string();
    assert!(
        msg.contains("admin.conf") && msg.contains("extra O \"system:masters\""),
        "{msg}"
    );
    fs::write(&admin, good_admin)?;
    // Restored: accepted.
    init_tree(&plan, &Selection::all(), now(), false)?;
    Ok(())
}

#[test]
fn generate_csrs_refuses_a_pending_csr_the_configuration_no_longer_asks_for() -> R {
    let (dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let mut changed = spec(dir.path(), KubernetesVersion::DEFAULT);
    changed.cert_sans = vec!["api.example.com".into()];
    let plan2 = Plan::new(&changed)?;
    let before = snapshot(dir.path())?;
    let msg = generate_csrs(&plan2)
        .err()
        .ok_or("kept a stale apiserver.csr")?
        .to_string();
    assert!(
        msg.contains(
            &csr_path(&plan.cert_dir, CertId::Apiserver)
                .display()
                .to_string()
        ) && msg.contains("missing SAN DNS:api.example.com"),
        "{msg}"
    );
    assert_eq!(snapshot(dir.path())?, before);
    // sign-csrs with the changed configuration refuses it too.
    let ca_side = CaSide::new()?;
    match sign_csrs(&plan2, &ca_side.all()?, now()) {
        Err(Error::Refused { refused }) => {
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert!(refused[0].1.contains("missing SAN DNS:api.example.com"));
        }
        other => return Err(format!("{other:?}").into()),
    }
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

/// `openssl req` for `key` with the `[dn]` lines `dn` (`kubeUID` is 1.3.6.1.4.1.57683.2), or
/// with a new key of `newkey` (e.g. `rsa:1024`) when `key` is `None`.
fn openssl_csr(key: Option<&Path>, newkey: &str, dn: &str, out: &Path) -> R {
    let work = tempfile::tempdir()?;
    let cnf = openssl_req_config(work.path(), dn)?;
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-config"]).arg(&cnf);
    match key {
        Some(k) => cmd.arg("-key").arg(k),
        None => cmd
            .args(["-nodes", "-newkey", newkey, "-keyout"])
            .arg(work.path().join("k.pem")),
    };
    let o = cmd.arg("-out").arg(out).output()?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned().into())
    }
}

#[test]
fn sign_csrs_refuses_other_subject_attributes_and_key_types() -> R {
    let ca_side = CaSide::new()?;
    let cas = ca_side.all()?;
    let (_dir, plan) = node(KubernetesVersion::DEFAULT)?;
    let id = CertId::ApiserverKubeletClient;
    let csr_file = csr_path(&plan.cert_dir, id);
    let original = fs::read(&csr_file)?;
    let subject = &plan.cert(id).ok_or("client")?.subject;
    // The O lines as the version gives them (none for this certificate from 1.33.12, ...).
    let orgs: String = subject
        .organizations
        .iter()
        .map(|o| format!("O = {o}\n"))
        .collect();
    let dn = format!(
        "{orgs}CN = {}",
        subject.common_name.clone().unwrap_or_default()
    );
    let refused = |expect: &str| -> R {
        let msg = sign_csrs(&plan, &cas, now())
            .err()
            .ok_or_else(|| format!("signed ({expect})"))?
            .to_string();
        let want = format!("{}: {expect}", csr_file.display());
        assert!(msg.contains(&want), "{want}: {msg}");
        assert!(!id.cert_path(&plan.cert_dir).exists());
        Ok(())
    };
    // The plan's subject plus the Kubernetes user-UID, UID or serialNumber attribute.
    for (extra, expect) in [
        (
            "kubeUID = 0b1d",
            "extra attribute 1.3.6.1.4.1.57683.2 (Kubernetes user UID) \"0b1d\"",
        ),
        ("UID = jane", "extra attribute UID \"jane\""),
        ("serialNumber = 42", "extra attribute serialNumber \"42\""),
    ] {
        openssl_csr(
            Some(&id.key_path(&plan.cert_dir)),
            "",
            &format!("{dn}\n{extra}"),
            &csr_file,
        )?;
        refused(&format!(
            "is not what apiserver-kubelet-client must be (Kubernetes {}, node n1): {expect}",
            plan.version
        ))?;
    }
    // Keys: the CSR alone (the CA holder's side has no key), of the wrong kind.
    fs::remove_file(id.key_path(&plan.cert_dir))?;
    for (alg, expect) in [
        (
            KeyAlgorithm::Ed25519,
            "has an Ed25519 key; Kubernetes components take RSA or ECDSA keys only",
        ),
        (
            KeyAlgorithm::EcdsaP384,
            "has an ECDSA-P384 key; the configuration's encryptionAlgorithm gives this item ECDSA-P256",
        ),
        (
            KeyAlgorithm::Rsa2048,
            "has an RSA-2048 key; the configuration's encryptionAlgorithm gives this item ECDSA-P256",
        ),
    ] {
        let key = PrivateKey::generate(alg)?;
        fs::write(
            &csr_file,
            CsrBuilder::new(subject.clone()).sign(&key)?.to_pem(),
        )?;
        refused(&format!(
            "is not what apiserver-kubelet-client must be (Kubernetes {}, node n1): {expect}",
            plan.version
        ))?;
    }
    // RSA-1024: named for its size, not as a signature that does not verify.
    openssl_csr(None, "rsa:1024", &dn, &csr_file)?;
    let msg = sign_csrs(&plan, &cas, now())
        .err()
        .ok_or("signed an RSA-1024 CSR")?
        .to_string();
    assert_eq!(
        msg,
        format!(
            "{}: RSA key has 1024 bits; at least 2048 are required",
            csr_file.display()
        )
    );
    fs::write(&csr_file, original)?;
    Ok(())
}
