//! CA rotation (docs/rotation.md) through the library: every stage on folders and in memory,
//! what init, renew, verify and node control-plane make of a tree mid-rotation, the refusals
//! (out of order, a foreign CA, a lost key, a leaf of the old CA before finish) with nothing
//! written, several nodes, and a rotation that moves a tree from RSA to ECDSA.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::Certificate;
use kubepki_keys::{KeyAlgorithm, public_key_algorithm};
use kubepki_kubeadm::{
    CertId, CheckStatus, ClusterSpec, Error, Generation, Kubeconfig, Plan, RenewTarget,
    RotateOptions, RotationPhase, RotationStage, RotationTarget, Selection, Tree, build,
    control_plane_node, decide, init_tree, renew_in, rotate, rotate_in, rotation_status,
    rotation_status_in, verify,
};
use time::OffsetDateTime;

mod common;
use common::snapshot;

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const PHASES: [RotationPhase; 3] = [
    RotationPhase::Start,
    RotationPhase::Reissue,
    RotationPhase::Finish,
];

fn spec(dir: &Path, node: &str, ip: [u8; 4], alg: KeyAlgorithm) -> ClusterSpec {
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from(ip));
    s.node_name = Some(node.into());
    s.encryption_algorithm = alg;
    s.control_plane_endpoint = Some("cp.example.test:6443".into());
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir.to_owned();
    s
}

fn init(dir: &Path, alg: KeyAlgorithm) -> Res<ClusterSpec> {
    let s = spec(dir, "cp1", [192, 0, 2, 10], alg);
    init_tree(
        &Plan::new(&s)?,
        &Selection::all(),
        OffsetDateTime::now_utc(),
        false,
    )?;
    Ok(s)
}

fn stages(s: &ClusterSpec) -> Res<Vec<Option<RotationStage>>> {
    Ok(rotation_status(s)?
        .targets
        .iter()
        .map(|t| t.stage)
        .collect())
}

fn certs(p: &Path) -> Res<Vec<Certificate>> {
    Ok(Certificate::chain_from_pem(&fs::read(p)?)?)
}

fn kubeconfig_trust(p: &Path) -> Res<Vec<Certificate>> {
    let kc = Kubeconfig::from_slice(p, &fs::read(p)?)?;
    Ok(Certificate::chain_from_pem(&kc.current_ca_pem(p)?)?)
}

fn kubeconfig_client(p: &Path) -> Res<Certificate> {
    let kc = Kubeconfig::from_slice(p, &fs::read(p)?)?;
    Ok(Certificate::from_pem(
        &kc.current_client_cert_pem(p)?.ok_or("no client cert")?,
    )?)
}

fn signed_by(cert: &Certificate, ca: &Certificate) -> bool {
    cert.verify_signature(ca.public_key_der()).is_ok()
}

/// The whole rotation on folders: each phase moves every target on, writes what the issue
/// says, `verify` passes at every stage, `init` (decide) reuses everything at every stage, a
/// phase run again writes nothing.
#[test]
fn every_stage_on_folders() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = init(d, KeyAlgorithm::EcdsaP256)?;
    let pki = d.join("pki");
    let old_ca = certs(&pki.join("ca.crt"))?.remove(0);
    let old_sa = fs::read(pki.join("sa.key"))?;
    let old_apiserver = Certificate::from_pem(&fs::read(pki.join("apiserver.crt"))?)?;
    let opts = RotateOptions::default();
    let plan = Plan::new(&s)?;
    for phase in PHASES {
        let done = rotate(&s, phase, &opts, OffsetDateTime::now_utc())?;
        assert!(!done.unchanged(), "{phase}");
        assert!(
            stages(&s)?.iter().all(|st| *st == Some(phase.result())),
            "{phase}: {:?}",
            stages(&s)?
        );
        let v = verify(&plan, OffsetDateTime::now_utc());
        let failed: Vec<_> = v
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .collect();
        assert!(failed.is_empty(), "{phase}: verify: {failed:?}");
        assert!(
            v.checks.iter().any(|c| c.check == "rotation"),
            "verify reports the rotation"
        );
        let current = Tree::read_folder(&plan)?;
        let again = decide(
            &plan,
            &Selection::all(),
            &current,
            OffsetDateTime::now_utc(),
        )?;
        assert!(
            again.creates_nothing(),
            "{phase}: init would change {again:?}"
        );
        let twice = rotate(&s, phase, &opts, OffsetDateTime::now_utc())?;
        assert!(
            twice.unchanged(),
            "{phase} run again changed {:?}",
            twice.files
        );

        let ca = certs(&pki.join("ca.crt"))?;
        // kube-controller-manager's signing certificate: the signer alone, at every stage.
        let signer = certs(&pki.join(kubepki_kubeadm::SIGNER_CERT))?;
        assert_eq!(signer.len(), 1, "{phase}");
        assert_eq!(signer[0].to_der(), ca[0].to_der(), "{phase}");
        let admin_trust = kubeconfig_trust(&d.join("admin.conf"))?;
        let apiserver = Certificate::from_pem(&fs::read(pki.join("apiserver.crt"))?)?;
        let sa_pub = kubepki_keys::pem::decode_all(&fs::read(pki.join("sa.pub"))?)?;
        match phase {
            RotationPhase::Start => {
                assert_eq!(ca.len(), 2);
                assert_eq!(ca[0].to_der(), old_ca.to_der(), "the old CA stays first");
                assert_eq!(ca[1].subject(), old_ca.subject(), "same name, new key");
                assert_ne!(ca[1].public_key_der(), old_ca.public_key_der());
                assert_eq!(admin_trust.len(), 2);
                assert_eq!(
                    apiserver.to_der(),
                    old_apiserver.to_der(),
                    "leaves untouched"
                );
                assert_eq!(
                    fs::read(pki.join("sa.key"))?,
                    old_sa,
                    "the old sa.key signs"
                );
                assert_eq!(sa_pub.len(), 2);
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: PathBuf| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
                assert_eq!(mode(pki.join("rotation"))?, 0o700);
                for t in ["ca", "front-proxy-ca", "etcd-ca", "sa"] {
                    assert_eq!(mode(pki.join(format!("rotation/{t}.key")))?, 0o600, "{t}");
                }
            }
            RotationPhase::Reissue => {
                assert_eq!(ca.len(), 2);
                assert_eq!(ca[1].to_der(), old_ca.to_der(), "the new CA comes first");
                assert!(signed_by(&apiserver, &ca[0]) && !signed_by(&apiserver, &old_ca));
                assert_eq!(apiserver.subject(), old_apiserver.subject());
                assert_eq!(
                    apiserver.subject_alt_names(),
                    old_apiserver.subject_alt_names()
                );
                assert_ne!(apiserver.public_key_der(), old_apiserver.public_key_der());
                for k in ["admin.conf", "kubelet.conf", "scheduler.conf"] {
                    assert!(signed_by(&kubeconfig_client(&d.join(k))?, &ca[0]), "{k}");
                    assert_eq!(kubeconfig_trust(&d.join(k))?.len(), 2, "{k}");
                }
                assert_ne!(fs::read(pki.join("sa.key"))?, old_sa);
                assert_eq!(sa_pub.len(), 2);
                for t in ["ca", "front-proxy-ca", "etcd-ca", "sa"] {
                    assert!(
                        !pki.join(format!("rotation/{t}.key")).exists(),
                        "{t}: waiting key"
                    );
                }
                // The record of the rotation stays until finish.
                assert_eq!(certs(&pki.join("rotation/ca.crt"))?.len(), 2);
            }
            _ => {
                assert_eq!(ca.len(), 1);
                assert_ne!(ca[0].to_der(), old_ca.to_der());
                assert_eq!(admin_trust.len(), 1);
                assert_eq!(admin_trust[0].to_der(), ca[0].to_der());
                assert_eq!(sa_pub.len(), 1);
                assert!(
                    !pki.join("rotation").exists(),
                    "the rotation folder is gone"
                );
            }
        }
    }
    Ok(())
}

/// Phases out of order are refused with the next phase named and nothing written; `status`
/// names it too.
#[test]
fn out_of_order_is_refused_and_writes_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    let opts = RotateOptions::default();
    let now = OffsetDateTime::now_utc();
    let before = snapshot(dir.path())?;
    let e = rotate(&s, RotationPhase::Reissue, &opts, now)
        .err()
        .ok_or("reissue before start")?;
    assert!(
        e.problems().all(|p| matches!(
            p,
            Error::RotationOrder {
                stage: RotationStage::Idle,
                phase: RotationPhase::Reissue,
                next: Some(RotationPhase::Start),
                ..
            }
        )),
        "{e}"
    );
    assert_eq!(snapshot(dir.path())?, before);
    // finish on an idle tree has nothing to do (a finished rotation looks the same).
    assert!(rotate(&s, RotationPhase::Finish, &opts, now)?.unchanged());

    rotate(&s, RotationPhase::Start, &opts, now)?;
    let before = snapshot(dir.path())?;
    let e = rotate(&s, RotationPhase::Finish, &opts, now)
        .err()
        .ok_or("finish before reissue")?;
    assert!(e.to_string().contains("the next phase is reissue"), "{e}");
    assert_eq!(snapshot(dir.path())?, before);
    let status = rotation_status(&s)?;
    assert!(
        status
            .targets
            .iter()
            .all(|t| t.next == Some(RotationPhase::Reissue))
    );

    rotate(&s, RotationPhase::Reissue, &opts, now)?;
    let before = snapshot(dir.path())?;
    let e = rotate(&s, RotationPhase::Start, &opts, now)
        .err()
        .ok_or("start while reissued")?;
    assert!(e.to_string().contains("the next phase is finish"), "{e}");
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

/// A hostile or broken tree: each problem names its file and nothing is written.
#[test]
fn foreign_material_is_refused_naming_the_file() -> R {
    type Break = fn(&Path) -> Res<()>;
    let cases: [(&str, Break, &str); 5] = [
        (
            "a foreign CA appended to ca.crt",
            |d| {
                let other = fs::read(d.join("pki/front-proxy-ca.crt"))?;
                let mut ca = fs::read(d.join("pki/ca.crt"))?;
                ca.extend(other);
                Ok(fs::write(d.join("pki/ca.crt"), ca)?)
            },
            "ca.crt",
        ),
        (
            "a private key inside ca.crt",
            |d| {
                let key = fs::read(d.join("pki/ca.key"))?;
                let mut ca = fs::read(d.join("pki/ca.crt"))?;
                ca.extend(key);
                Ok(fs::write(d.join("pki/ca.crt"), ca)?)
            },
            "ca.crt",
        ),
        (
            "three CAs in etcd/ca.crt",
            |d| {
                let one = fs::read(d.join("pki/etcd/ca.crt"))?;
                Ok(fs::write(d.join("pki/etcd/ca.crt"), one.repeat(3))?)
            },
            "etcd/ca.crt",
        ),
        (
            "a waiting key of nothing",
            |d| {
                fs::create_dir_all(d.join("pki/rotation"))?;
                Ok(
                    fs::copy(d.join("pki/apiserver.key"), d.join("pki/rotation/ca.key"))
                        .map(|_| ())?,
                )
            },
            "rotation/ca.key",
        ),
        (
            "a waiting key readable by others",
            |d| {
                use std::os::unix::fs::PermissionsExt;
                let k = kubepki_keys::PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
                fs::create_dir_all(d.join("pki/rotation"))?;
                fs::write(d.join("pki/rotation/sa.key"), k.to_pem()?.as_bytes())?;
                Ok(fs::set_permissions(
                    d.join("pki/rotation/sa.key"),
                    fs::Permissions::from_mode(0o644),
                )?)
            },
            "rotation/sa.key",
        ),
    ];
    for (what, breaks, file) in cases {
        let dir = tempfile::tempdir()?;
        let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
        breaks(dir.path())?;
        let before = snapshot(dir.path())?;
        let e = rotate(
            &s,
            RotationPhase::Start,
            &RotateOptions::default(),
            OffsetDateTime::now_utc(),
        )
        .err()
        .ok_or(what)?;
        assert!(e.to_string().contains(file), "{what}: {e}");
        assert_eq!(
            snapshot(dir.path())?,
            before,
            "{what}: something was written"
        );
        let status = rotation_status(&s)?;
        assert!(
            status
                .targets
                .iter()
                .any(|t| t.problem.as_deref().is_some_and(|p| p.contains(file))),
            "{what}: status does not name {file}"
        );
    }
    Ok(())
}

/// A started rotation whose waiting key was lost is not taken for a reissued one; a leaf of the
/// old CA after reissue fails `verify` and stops `finish` (which would lock it out).
#[test]
fn a_lost_key_and_a_leaf_left_behind() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = init(d, KeyAlgorithm::EcdsaP256)?;
    let opts = RotateOptions::default();
    let old = d.join("old");
    fs::create_dir(&old)?;
    for f in ["apiserver.crt", "apiserver.key"] {
        fs::copy(d.join("pki").join(f), old.join(f))?;
    }
    rotate(&s, RotationPhase::Start, &opts, OffsetDateTime::now_utc())?;
    let kept = fs::read(d.join("pki/rotation/ca.key"))?;
    fs::remove_file(d.join("pki/rotation/ca.key"))?;
    let e = rotate(&s, RotationPhase::Reissue, &opts, OffsetDateTime::now_utc())
        .err()
        .ok_or("lost key")?;
    assert!(
        matches!(&e, Error::MissingFile { path, .. } if path.ends_with("rotation/ca.key")),
        "{e}"
    );
    fs::write(d.join("pki/rotation/ca.key"), kept)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        d.join("pki/rotation/ca.key"),
        fs::Permissions::from_mode(0o600),
    )?;
    rotate(&s, RotationPhase::Reissue, &opts, OffsetDateTime::now_utc())?;

    // The old apiserver certificate put back after reissue.
    for f in ["apiserver.crt", "apiserver.key"] {
        fs::copy(old.join(f), d.join("pki").join(f))?;
    }
    let v = verify(&Plan::new(&s)?, OffsetDateTime::now_utc());
    assert!(
        v.checks
            .iter()
            .any(|c| c.item == "apiserver" && c.check == "chain" && c.status == CheckStatus::Fail),
        "verify passes a leaf of the old CA after reissue"
    );
    let status = rotation_status(&s)?;
    let ca = &status.targets[0];
    assert_eq!(ca.next, Some(RotationPhase::Reissue), "{ca:?}");
    assert!(
        ca.files
            .iter()
            .any(|f| f.path.ends_with("apiserver.crt") && !f.ok && f.holds == [Generation::Old])
    );
    let before = snapshot(d)?;
    let e = rotate(&s, RotationPhase::Finish, &opts, OffsetDateTime::now_utc())
        .err()
        .ok_or("finish with an old leaf")?;
    assert!(e.to_string().contains("apiserver.crt"), "{e}");
    assert_eq!(snapshot(d)?, before);
    // Reissue again brings it along; then finish.
    let again = rotate(&s, RotationPhase::Reissue, &opts, OffsetDateTime::now_utc())?;
    assert_eq!(again.changes[0].reissued, ["apiserver"]);
    rotate(&s, RotationPhase::Finish, &opts, OffsetDateTime::now_utc())?;
    assert!(verify(&Plan::new(&s)?, OffsetDateTime::now_utc()).passed());
    Ok(())
}

/// Renewal mid-rotation keeps the kubeconfigs trusting both CAs; a kubeconfig that trusts only
/// the old CA in a started rotation shows as lagging, and `start` again brings it along.
#[test]
fn renew_and_lagging_kubeconfigs_mid_rotation() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = init(d, KeyAlgorithm::EcdsaP256)?;
    let opts = RotateOptions::default();
    let admin = d.join("admin.conf");
    let admin_before = fs::read(&admin)?;
    rotate(&s, RotationPhase::Start, &opts, OffsetDateTime::now_utc())?;
    let plan = Plan::new(&s)?;
    let tree = Tree::read_folder(&plan)?;
    let (renewed, _, _) = renew_in(
        &s,
        &tree,
        &[RenewTarget::Kubeconfig(
            kubepki_kubeadm::KubeconfigId::Admin,
        )],
        None,
        OffsetDateTime::now_utc(),
    )?;
    let text = &renewed.get("admin.conf").ok_or("not renewed")?.bytes;
    let kc = Kubeconfig::from_slice(&admin, text)?;
    assert_eq!(
        Certificate::chain_from_pem(&kc.current_ca_pem(&admin)?)?.len(),
        2,
        "renewal mid-rotation dropped the new CA from admin.conf"
    );

    fs::write(&admin, admin_before)?; // trusts the old CA only
    let status = rotation_status(&s)?;
    assert_eq!(status.targets[0].next, Some(RotationPhase::Start));
    assert!(
        status.targets[0]
            .files
            .iter()
            .any(|f| f.path == admin && !f.ok && f.holds == [Generation::Old])
    );
    let fixed = rotate(&s, RotationPhase::Start, &opts, OffsetDateTime::now_utc())?;
    assert_eq!(
        fixed
            .files
            .files()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["admin.conf"]
    );
    assert_eq!(kubeconfig_trust(&admin)?.len(), 2);
    Ok(())
}

/// A second control-plane node: made from the first mid-rotation (it gets the waiting keys),
/// or rotated with `from_cert_dir` (it takes the first node's new CAs); a node that started
/// its own rotation is refused.
#[test]
fn several_control_plane_nodes_rotate_to_the_same_cas() -> R {
    let (one, two, three) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let s1 = init(one.path(), KeyAlgorithm::EcdsaP256)?;
    let s2 = spec(two.path(), "cp2", [192, 0, 2, 11], KeyAlgorithm::EcdsaP256);
    let s3 = spec(
        three.path(),
        "cp3",
        [192, 0, 2, 12],
        KeyAlgorithm::EcdsaP256,
    );
    let now = OffsetDateTime::now_utc();
    control_plane_node(&Plan::new(&s2)?, &s1.cert_dir, now)?;
    control_plane_node(&Plan::new(&s3)?, &s1.cert_dir, now)?;
    rotate(&s1, RotationPhase::Start, &RotateOptions::default(), now)?;

    // cp3 starts on its own: a different new CA, which reissue with cp1's folder refuses.
    rotate(&s3, RotationPhase::Start, &RotateOptions::default(), now)?;
    let mut from1 = RotateOptions::default();
    from1.from_cert_dir = Some(s1.cert_dir.clone());
    let e = rotate(&s3, RotationPhase::Reissue, &from1, now)
        .err()
        .ok_or("another rotation")?;
    assert!(e.to_string().contains("same CA"), "{e}");

    let mut o2 = RotateOptions::default();
    o2.from_cert_dir = Some(s1.cert_dir.clone());
    for phase in PHASES {
        if phase != RotationPhase::Start {
            rotate(&s1, phase, &RotateOptions::default(), now)?;
        }
        rotate(&s2, phase, &o2, now)?;
        for f in [
            "ca.crt",
            "ca.key",
            "front-proxy-ca.crt",
            "etcd/ca.crt",
            "sa.pub",
            "sa.key",
        ] {
            assert_eq!(
                fs::read(s1.cert_dir.join(f))?,
                fs::read(s2.cert_dir.join(f))?,
                "{phase}: {f} differs between the nodes"
            );
        }
        assert!(verify(&Plan::new(&s2)?, now).passed(), "{phase}");
    }
    // A fourth node made from cp1 while it is started gets the waiting keys.
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let sa = init(a.path(), KeyAlgorithm::EcdsaP256)?;
    // The new CAs are younger than the old (the stage is read from their order).
    let now = OffsetDateTime::now_utc();
    rotate(&sa, RotationPhase::Start, &RotateOptions::default(), now)?;
    let sb = spec(b.path(), "cp4", [192, 0, 2, 14], KeyAlgorithm::EcdsaP256);
    control_plane_node(&Plan::new(&sb)?, &sa.cert_dir, now)?;
    assert!(
        stages(&sb)?
            .iter()
            .all(|st| *st == Some(RotationStage::Started))
    );
    rotate(&sb, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    let v = verify(&Plan::new(&sb)?, now);
    let failed: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    Ok(())
}

/// `--encryption-algorithm` at start moves an RSA tree to ECDSA: the new CAs are ECDSA, and
/// reissue gives the leaves the new CA's algorithm. One CA alone (`etcd-ca`) rotates without
/// touching the others.
#[test]
fn rsa_to_ecdsa_and_one_ca_alone() -> R {
    let mut spec = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
    spec.node_name = Some("cp1".into());
    spec.encryption_algorithm = KeyAlgorithm::Rsa2048;
    let now = OffsetDateTime::now_utc();
    let mut tree = build(&Plan::new(&spec)?, &Selection::all(), &Tree::new(), now)?.files;
    let mut to_ecdsa = spec.clone();
    to_ecdsa.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    let mut opts = RotateOptions::default();
    opts.targets = vec![RotationTarget::EtcdCa];
    opts.algorithm = Some(KeyAlgorithm::EcdsaP256);
    for phase in PHASES {
        let r = rotate_in(&to_ecdsa, &tree, None, phase, &opts, now)?;
        assert!(
            r.files
                .files()
                .all(|f| f.path.contains("etcd") || f.path == "pki/rotation/etcd-ca.key"),
            "{phase}: {:?}",
            r.files
        );
        for f in r.files.files() {
            tree.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
        }
        for p in &r.removed {
            tree.remove(p);
        }
    }
    let alg = |p: &str| -> Res<KeyAlgorithm> {
        let c = Certificate::from_pem(&tree.get(p).ok_or(p.to_owned())?.bytes)?;
        Ok(public_key_algorithm(c.public_key_der())?)
    };
    assert_eq!(alg("pki/etcd/ca.crt")?, KeyAlgorithm::EcdsaP256);
    assert_eq!(alg("pki/etcd/server.crt")?, KeyAlgorithm::EcdsaP256);
    assert_eq!(
        alg("pki/apiserver-etcd-client.crt")?,
        KeyAlgorithm::EcdsaP256
    );
    assert_eq!(alg("pki/ca.crt")?, KeyAlgorithm::Rsa2048);
    assert_eq!(alg("pki/apiserver.crt")?, KeyAlgorithm::Rsa2048);
    let status = rotation_status_in(&spec, &tree);
    assert!(
        status
            .targets
            .iter()
            .all(|t| t.stage == Some(RotationStage::Idle))
    );
    let _ = CertId::EtcdCa;
    Ok(())
}

/// A CA of the same name appended to `ca.crt` (the attack of a review: same subject DER, older)
/// is refused by every phase and by `status` and `verify`, and never embedded by `init` or
/// `renew`; the same for a lost waiting key of the service-account rotation.
#[test]
fn a_same_name_foreign_ca_and_a_lost_sa_key() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = init(d, KeyAlgorithm::EcdsaP256)?;
    let pki = d.join("pki");
    let old = certs(&pki.join("ca.crt"))?.remove(0);
    let evil = kubepki_ca::CertificateAuthority::create_root(
        &kubepki_ca::CaSpec {
            subject: old.subject().clone(),
            window: kubepki_ca::Window::kubeadm(
                OffsetDateTime::now_utc() - time::Duration::days(30),
                time::Duration::days(3650),
            ),
            path_len: None,
            key_id: kubepki_ca::KeyIdMethod::Sha1,
        },
        kubepki_keys::PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?;
    let mut ca = fs::read(pki.join("ca.crt"))?;
    ca.extend(evil.certificate().to_pem().as_bytes());
    fs::write(pki.join("ca.crt"), &ca)?;
    let before = snapshot(d)?;
    for phase in PHASES {
        let e = rotate(
            &s,
            phase,
            &RotateOptions::default(),
            OffsetDateTime::now_utc(),
        )
        .err()
        .ok_or("foreign CA")?;
        assert!(e.to_string().contains("ca.crt"), "{phase}: {e}");
    }
    assert_eq!(snapshot(d)?, before);
    let status = rotation_status(&s)?;
    assert!(
        status.targets[0].problem.is_some(),
        "{:?}",
        status.targets[0]
    );
    let v = verify(&Plan::new(&s)?, OffsetDateTime::now_utc());
    assert!(
        v.checks
            .iter()
            .any(|c| c.item == "ca" && c.check == "rotation" && c.status == CheckStatus::Fail)
    );
    // init (a missing kubeconfig made again) and renew embed the CA alone, as kubeadm does.
    fs::remove_file(d.join("scheduler.conf"))?;
    init_tree(
        &Plan::new(&s)?,
        &Selection::all(),
        OffsetDateTime::now_utc(),
        false,
    )?;
    assert_eq!(kubeconfig_trust(&d.join("scheduler.conf"))?.len(), 1);
    kubepki_kubeadm::renew(
        &s,
        &[RenewTarget::Kubeconfig(
            kubepki_kubeadm::KubeconfigId::Admin,
        )],
        None,
        OffsetDateTime::now_utc(),
    )?;
    let admin = kubeconfig_trust(&d.join("admin.conf"))?;
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].to_der(), old.to_der());

    // The service-account key pair: a started rotation whose waiting key is lost is named,
    // never taken for a reissued one (which finish would undo to the old key).
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    let mut only_sa = RotateOptions::default();
    only_sa.targets = vec![RotationTarget::ServiceAccount];
    rotate(
        &s,
        RotationPhase::Start,
        &only_sa,
        OffsetDateTime::now_utc(),
    )?;
    fs::remove_file(dir.path().join("pki/rotation/sa.key"))?;
    for phase in [RotationPhase::Reissue, RotationPhase::Finish] {
        let e = rotate(&s, phase, &only_sa, OffsetDateTime::now_utc())
            .err()
            .ok_or("lost sa key")?;
        assert!(
            matches!(&e, Error::MissingFile { path, .. } if path.ends_with("rotation/sa.key")),
            "{phase}: {e}"
        );
    }
    Ok(())
}

/// After rotating one CA alone, the default target set of reissue and finish is the rotation
/// in progress (not every CA, which would ask to start the others); `finish` with the folder of
/// a node that has not reissued yet is refused; the rotation's own files are never links.
#[test]
fn one_ca_alone_other_nodes_and_links() -> R {
    let (one, two) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let s1 = init(one.path(), KeyAlgorithm::EcdsaP256)?;
    let s2 = spec(two.path(), "cp2", [192, 0, 2, 11], KeyAlgorithm::EcdsaP256);
    let now = OffsetDateTime::now_utc();
    control_plane_node(&Plan::new(&s2)?, &s1.cert_dir, now)?;
    let mut only_ca = RotateOptions::default();
    only_ca.targets = vec![RotationTarget::Ca];
    rotate(&s1, RotationPhase::Start, &only_ca, now)?;
    let mut from1 = RotateOptions::default();
    from1.from_cert_dir = Some(s1.cert_dir.clone());
    rotate(&s2, RotationPhase::Start, &from1, now)?; // all: start takes the new CA of node 1
    let r = rotate(&s2, RotationPhase::Reissue, &from1, now)?;
    assert_eq!(
        r.changes.iter().map(|c| c.target).collect::<Vec<_>>(),
        [RotationTarget::Ca],
        "reissue with no target named rotates what is in progress"
    );
    // Node 1 is still started: finishing node 2 would lock node 1's old leaves out.
    let e = rotate(&s2, RotationPhase::Finish, &from1, now)
        .err()
        .ok_or("node 1 started")?;
    assert!(e.to_string().contains("still at stage started"), "{e}");
    rotate(&s1, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    rotate(&s2, RotationPhase::Finish, &from1, now)?;
    rotate(&s1, RotationPhase::Finish, &RotateOptions::default(), now)?;
    assert!(verify(&Plan::new(&s1)?, now).passed());
    assert!(verify(&Plan::new(&s2)?, now).passed());

    // ca-signer.crt as a link to ca.crt is refused, naming it, before anything is written.
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    std::os::unix::fs::symlink("ca.crt", dir.path().join("pki/ca-signer.crt"))?;
    let before = snapshot(dir.path())?;
    let e = rotate(&s, RotationPhase::Start, &RotateOptions::default(), now)
        .err()
        .ok_or("link")?;
    assert!(e.to_string().contains("ca-signer.crt"), "{e}");
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

/// What the second review found: a lost record in the reissued stage is named (never "remove
/// the second CA"); a CA whose key is elsewhere is left out of the default targets; a kubelet
/// client certificate that cannot be read stops finish (it might be the old CA's) without
/// status recommending it; the rotation folder is made the owner's alone and verify checks it;
/// a record left by an interrupted finish does not pull its CA into a later reissue.
#[test]
fn second_review() -> R {
    let now = OffsetDateTime::now_utc();
    // A lost record while reissued.
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    rotate(&s, RotationPhase::Start, &RotateOptions::default(), now)?;
    rotate(&s, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    fs::remove_file(dir.path().join("pki/rotation/sa.pub"))?;
    let e = rotate(&s, RotationPhase::Finish, &RotateOptions::default(), now)
        .err()
        .ok_or("finish without the record")?;
    assert!(
        e.problems()
            .any(|p| matches!(p, Error::MissingFile { path, reason }
            if path.ends_with("rotation/sa.pub") && reason.contains("restore"))),
        "{e}"
    );

    // An external front-proxy CA (no key): left out by default, refused when named.
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    fs::remove_file(dir.path().join("pki/front-proxy-ca.key"))?;
    let r = rotate(&s, RotationPhase::Start, &RotateOptions::default(), now)?;
    assert!(
        !r.changes
            .iter()
            .any(|c| c.target == RotationTarget::FrontProxyCa)
    );
    rotate(&s, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    let status = rotation_status(&s)?;
    let fp = status
        .targets
        .iter()
        .find(|t| t.target == RotationTarget::FrontProxyCa)
        .ok_or("front-proxy-ca")?;
    assert!(!fp.rotatable && fp.problem.is_some(), "{fp:?}");
    let mut named = RotateOptions::default();
    named.targets = vec![RotationTarget::FrontProxyCa];
    assert!(rotate(&s, RotationPhase::Start, &named, now).is_err());

    // kubelet.conf naming a client certificate file that is not there.
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = init(d, KeyAlgorithm::EcdsaP256)?;
    rotate(&s, RotationPhase::Start, &RotateOptions::default(), now)?;
    rotate(&s, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    let kubelet = fs::read_to_string(d.join("kubelet.conf"))?;
    let mut out = String::new();
    for line in kubelet.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if t.starts_with("client-certificate-data:") {
            out.push_str(&format!(
                "{indent}client-certificate: {}\n",
                d.join("gone.pem").display()
            ));
        } else if t.starts_with("client-key-data:") {
            out.push_str(&format!(
                "{indent}client-key: {}\n",
                d.join("gone.pem").display()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    fs::write(d.join("kubelet.conf"), out)?;
    let status = rotation_status(&s)?;
    assert_eq!(
        status.targets[0].next,
        Some(RotationPhase::Finish),
        "{:?}",
        status.targets[0]
    );
    let before = snapshot(d)?;
    let e = rotate(&s, RotationPhase::Finish, &RotateOptions::default(), now)
        .err()
        .ok_or("finish with an unreadable kubelet certificate")?;
    assert!(e.to_string().contains("gone.pem"), "{e}");
    assert_eq!(snapshot(d)?, before);

    // A world-writable rotation folder is made 0700; verify flags one.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    let rot = dir.path().join("pki/rotation");
    fs::create_dir(&rot)?;
    fs::set_permissions(&rot, fs::Permissions::from_mode(0o777))?;
    rotate(&s, RotationPhase::Start, &RotateOptions::default(), now)?;
    assert_eq!(fs::metadata(&rot)?.permissions().mode() & 0o777, 0o700);
    fs::set_permissions(&rot, fs::Permissions::from_mode(0o755))?;
    let v = verify(&Plan::new(&s)?, now);
    assert!(
        v.checks
            .iter()
            .any(|c| c.item == "tree" && c.check == "mode" && c.status == CheckStatus::Fail)
    );

    // A record left by an interrupted finish (ca) and a new sa rotation: reissue takes sa only.
    let dir = tempfile::tempdir()?;
    let s = init(dir.path(), KeyAlgorithm::EcdsaP256)?;
    let mut only_ca = RotateOptions::default();
    only_ca.targets = vec![RotationTarget::Ca];
    rotate(&s, RotationPhase::Start, &only_ca, now)?;
    rotate(&s, RotationPhase::Reissue, &only_ca, now)?;
    let record = fs::read(dir.path().join("pki/rotation/ca.crt"))?;
    rotate(&s, RotationPhase::Finish, &only_ca, now)?;
    fs::create_dir_all(dir.path().join("pki/rotation"))?;
    fs::write(dir.path().join("pki/rotation/ca.crt"), record)?; // as if finish was cut short
    let mut only_sa = RotateOptions::default();
    only_sa.targets = vec![RotationTarget::ServiceAccount];
    rotate(&s, RotationPhase::Start, &only_sa, now)?;
    let r = rotate(&s, RotationPhase::Reissue, &RotateOptions::default(), now)?;
    assert_eq!(
        r.changes.iter().map(|c| c.target).collect::<Vec<_>>(),
        [RotationTarget::ServiceAccount]
    );
    let r = rotate(&s, RotationPhase::Finish, &RotateOptions::default(), now)?;
    assert!(
        r.removed.iter().any(|p| p == "pki/rotation/ca.crt"),
        "{:?}",
        r.removed
    );
    assert!(verify(&Plan::new(&s)?, now).passed());
    Ok(())
}
