//! The decision step alone, over in-memory trees (no file system: the plan's folders do not
//! exist), one test per reuse or refuse rule of docs/init.md ("Existing files"); and an
//! in-memory CA set reused for another node (docs/init.md, "Trees in memory").

use std::path::Path;
use std::process::Command;

use kubepki_ca::Certificate;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    Action, CaSet, CertId, ClusterSpec, Error, Kubeconfig, Plan, Rule, Selection, Tree, build,
    decide,
};
use time::{Duration, OffsetDateTime};

mod common;
use common::{bytes, node_spec, now_whole_seconds};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Folders that do not exist: the decision step must not need them.
const NOWHERE: &str = "/nonexistent/kubepki-decide-test";

fn now() -> OffsetDateTime {
    now_whole_seconds()
}

fn spec(node: &str, ip: [u8; 4]) -> ClusterSpec {
    node_spec(node, ip, Path::new(NOWHERE).join("pki"), NOWHERE.into())
}

fn plan() -> Res<Plan> {
    Ok(Plan::new(&spec("cp1", [192, 0, 2, 10]))?)
}

/// A complete tree for `plan`, made in memory.
fn full(plan: &Plan, at: OffsetDateTime) -> Res<Tree> {
    Ok(build(plan, &Selection::all(), &Tree::new(), at)?.files)
}

/// The one refusal `decide` returns for `tree`, as text.
fn refusal(plan: &Plan, tree: &Tree, at: OffsetDateTime) -> Res<String> {
    match decide(plan, &Selection::all(), tree, at) {
        Ok(d) => Err(format!("accepted: {d:?}").into()),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn empty_tree_creates_everything() -> R {
    let plan = plan()?;
    let d = decide(&plan, &Selection::all(), &Tree::new(), now())?;
    assert!(d.items().all(|i| i.action == Action::Create));
    assert_eq!(d.items().count(), 10 + 1 + 5);
    assert!(!d.creates_nothing());
    assert!(!Path::new(NOWHERE).exists());
    Ok(())
}

#[test]
fn complete_tree_is_reused_and_apply_makes_nothing() -> R {
    let plan = plan()?;
    let tree = full(&plan, now())?;
    assert_eq!(tree.len(), 27);
    let d = decide(&plan, &Selection::all(), &tree, now())?;
    assert!(d.items().all(|i| i.action == Action::Reuse), "{d:?}");
    assert!(d.creates_nothing());
    let applied = kubepki_kubeadm::apply(&plan, d)?;
    assert!(applied.files.is_empty());
    // The full tree of a run that reused everything is the tree it was given.
    assert_eq!(applied.full_tree(&tree).len(), 27);
    Ok(())
}

#[test]
fn missing_leaf_is_created_the_rest_reused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/apiserver.crt");
    tree.remove("pki/apiserver.key");
    let d = decide(&plan, &Selection::all(), &tree, now())?;
    for i in d.items() {
        let want = if i.name == "apiserver" {
            Action::Create
        } else {
            Action::Reuse
        };
        assert_eq!(i.action, want, "{}", i.name);
    }
    let applied = kubepki_kubeadm::apply(&plan, d)?;
    let paths: Vec<&str> = applied.files.files().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["pki/apiserver.crt", "pki/apiserver.key"]);
    let ca = Certificate::from_pem(&bytes(&tree, "pki/ca.crt")?)?;
    let api = Certificate::from_pem(&bytes(&applied.files, "pki/apiserver.crt")?)?;
    api.verify_signature(ca.public_key_der())?;
    Ok(())
}

#[test]
fn key_without_certificate_is_refused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/apiserver.crt");
    let msg = refusal(&plan, &tree, now())?;
    assert!(msg.contains("apiserver.key: exists without"), "{msg}");
    Ok(())
}

#[test]
fn certificate_without_key_is_refused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/front-proxy-client.key");
    let msg = refusal(&plan, &tree, now())?;
    assert!(
        msg.contains("front-proxy-client.key: missing (the certificate"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn a_key_of_another_certificate_is_refused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    let other = bytes(&tree, "pki/etcd/peer.key")?;
    tree.insert_file("pki/etcd/server.key", other)?;
    let msg = refusal(&plan, &tree, now())?;
    assert!(msg.contains("server.key: does not belong to"), "{msg}");
    Ok(())
}

#[test]
fn leaf_lacking_a_san_is_refused() -> R {
    let plan = plan()?;
    let tree = full(&plan, now())?;
    let mut s = spec("cp1", [192, 0, 2, 10]);
    s.cert_sans = vec!["api.example.com".into()];
    let wider = Plan::new(&s)?;
    let msg = refusal(&wider, &tree, now())?;
    assert!(msg.contains("apiserver.crt: cannot be reused"), "{msg}");
    assert!(
        msg.contains("sans: missing SAN DNS:api.example.com"),
        "{msg}"
    );
    // As a value: the file, the rule it fails and nothing else.
    let e = decide(&wider, &Selection::all(), &tree, now())
        .err()
        .ok_or("accepted")?;
    let Error::NotReusable { path, failures, .. } = &e else {
        return Err(format!("{e:?}").into());
    };
    assert!(path.ends_with("pki/apiserver.crt"), "{}", path.display());
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].rule, Rule::Sans);
    Ok(())
}

#[test]
fn leaf_of_another_ca_is_refused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    let other = full(&plan, now())?;
    for f in ["pki/apiserver.crt", "pki/apiserver.key"] {
        tree.insert_file(f, bytes(&other, f)?)?;
    }
    let msg = refusal(&plan, &tree, now())?;
    assert!(msg.contains("apiserver.crt: not signed by"), "{msg}");
    Ok(())
}

#[test]
fn expired_leaf_is_refused_with_renew_advice() -> R {
    let plan = plan()?;
    let made = now() - Duration::days(400);
    let tree = full(&plan, made)?;
    let msg = refusal(&plan, &tree, now())?;
    assert!(msg.contains("validity:"), "{msg}");
    assert!(msg.contains("kubepki certs renew apiserver"), "{msg}");
    Ok(())
}

#[test]
fn expired_ca_is_refused() -> R {
    let plan = plan()?;
    let made = now() - Duration::days(11 * 366);
    let tree = full(&plan, made)?;
    let msg = refusal(&plan, &tree, now())?;
    assert!(
        msg.contains("ca.crt: cannot be used") && msg.contains("make a new tree"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn leaf_without_its_ca_is_refused() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/front-proxy-ca.crt");
    tree.remove("pki/front-proxy-ca.key");
    let mut only_client = Selection::none();
    only_client.certs.push(CertId::FrontProxyClient);
    let e = decide(&plan, &only_client, &tree, now())
        .err()
        .ok_or("accepted a leaf whose CA is missing")?;
    assert!(
        matches!(&e, Error::MissingFile { path, .. } if path.ends_with("pki/front-proxy-ca.crt")),
        "{e:?}"
    );
    assert!(e.to_string().contains("create the CA first"), "{e}");
    Ok(())
}

#[test]
fn bad_pem_is_refused_naming_the_file() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.insert_file("pki/apiserver.crt", b"not a certificate".to_vec())?;
    let msg = refusal(&plan, &tree, now())?;
    assert!(
        msg.contains(&format!("{NOWHERE}/pki/apiserver.crt")),
        "{msg}"
    );
    let e = decide(&plan, &Selection::all(), &tree, now())
        .err()
        .ok_or("accepted")?;
    assert!(
        matches!(&e, Error::Malformed { path, source }
            if path.ends_with("pki/apiserver.crt")
                && matches!(**source, Error::Ca(kubepki_ca::Error::NoCertificate { .. }))),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn service_account_rules() -> R {
    let plan = plan()?;
    let tree = full(&plan, now())?;
    // sa.pub without sa.key: refused.
    let mut t = tree.clone();
    t.remove("pki/sa.key");
    let msg = refusal(&plan, &t, now())?;
    assert!(msg.contains("sa.pub: exists without"), "{msg}");
    // sa.key alone: sa.pub is made from it.
    let mut t = tree.clone();
    t.remove("pki/sa.pub");
    let d = decide(&plan, &Selection::all(), &t, now())?;
    assert_eq!(d.item("sa").map(|i| i.action), Some(Action::Create));
    let applied = kubepki_kubeadm::apply(&plan, d)?;
    assert_eq!(
        bytes(&applied.files, "pki/sa.pub")?,
        bytes(&tree, "pki/sa.pub")?
    );
    assert!(applied.files.get("pki/sa.key").is_none());
    // sa.pub of another key: refused.
    let mut t = tree.clone();
    let other = full(&plan, now())?;
    t.insert_file("pki/sa.pub", bytes(&other, "pki/sa.pub")?)?;
    let msg = refusal(&plan, &t, now())?;
    assert!(msg.contains("does not hold the public key"), "{msg}");
    Ok(())
}

#[test]
fn kubeconfig_rules() -> R {
    let plan = plan()?;
    let tree = full(&plan, now())?;
    // Made for another CA: refused.
    let mut t = tree.clone();
    let other = full(&plan, now())?;
    t.insert_file("admin.conf", bytes(&other, "admin.conf")?)?;
    let msg = refusal(&plan, &t, now())?;
    assert!(msg.contains("admin.conf: was made for another CA"), "{msg}");
    // Another node's kubelet.conf: refused on identity.
    let node2 = Plan::new(&spec("worker2", [192, 0, 2, 10]))?;
    let msg = refusal(&node2, &tree, now())?;
    assert!(msg.contains("kubelet.conf: cannot be reused"), "{msg}");
    assert!(msg.contains("system:node:worker2"), "{msg}");
    // Another server: reused, with a warning (as kubeadm).
    let mut s = spec("cp1", [192, 0, 2, 10]);
    s.control_plane_endpoint = Some("lb.example.com:6443".into());
    let moved = Plan::new(&s)?;
    let mut leaves_only = Selection::all_kubeconfigs();
    leaves_only.certs.clear();
    let d = decide(&moved, &leaves_only, &tree, now())?;
    assert!(d.items().all(|i| i.action == Action::Reuse));
    assert!(
        d.warnings()
            .iter()
            .any(|w| w.contains("admin.conf: server is")),
        "{:?}",
        d.warnings()
    );
    Ok(())
}

#[test]
fn several_problems_are_reported_at_once() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/apiserver.crt");
    tree.remove("pki/etcd/peer.key");
    let e = decide(&plan, &Selection::all(), &tree, now())
        .err()
        .ok_or("accepted")?;
    match e {
        Error::Unusable { problems } => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => return Err(format!("not Unusable: {other}").into()),
    }
    Ok(())
}

#[test]
fn tree_paths_are_checked() {
    let mut t = Tree::new();
    for bad in [
        "",
        "/etc/passwd",
        "pki/../x",
        "pki//ca.crt",
        "a b",
        "pki/./ca.crt",
    ] {
        assert!(t.insert(bad, b"x".to_vec(), 0o600).is_err(), "{bad:?}");
    }
    assert!(t.insert("pki/ca.crt", b"x".to_vec(), 0o1777).is_err());
    assert!(t.insert("pki/etcd/ca.crt", b"x".to_vec(), 0o644).is_ok());
    let shown = format!("{:?}", t.get("pki/etcd/ca.crt"));
    assert!(shown.contains("0644") && !shown.contains("120"), "{shown}");
}

fn openssl_verify(dir: &Path, ca: &[u8], leaf: &[u8]) -> R {
    std::fs::write(dir.join("ca.pem"), ca)?;
    std::fs::write(dir.join("leaf.pem"), leaf)?;
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", "ca.pem", "leaf.pem"])
        .current_dir(dir)
        .output()?;
    assert!(
        out.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// An installer keeps only the CA material (docs/init.md, "Trees in memory"); a new node's
/// files are made from it, signed by those CAs, and the CAs are not made again.
#[test]
fn in_memory_ca_set_gives_a_new_nodes_files() -> R {
    let plan = plan()?;
    let first = full(&plan, now())?;
    let mut cas = Tree::new();
    for id in [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa] {
        let (crt, key) = kubepki_kubeadm::ca_paths(id);
        for p in [crt, key] {
            cas.insert_file(p.clone(), bytes(&first, &p)?)?;
        }
    }
    for p in ["pki/sa.key", "pki/sa.pub"] {
        cas.insert_file(p, bytes(&first, p)?)?;
    }
    assert!(cas.has_secrets());

    let node2 = Plan::new(&spec("cp2", [192, 0, 2, 11]))?;
    let applied = build(&node2, &Selection::all(), &cas, now())?;
    for i in &applied.items {
        let reused =
            i.kind == kubepki_kubeadm::InitItemKind::CertificateAuthority || i.name == "sa";
        let want = if reused {
            Action::Reuse
        } else {
            Action::Create
        };
        assert_eq!(i.action, want, "{}", i.name);
    }
    assert!(applied.files.get("pki/ca.crt").is_none());
    assert!(applied.files.get("pki/sa.key").is_none());
    assert_eq!(applied.files.len(), 27 - 8);

    let tmp = tempfile::tempdir()?;
    for (leaf, ca) in [
        ("pki/apiserver.crt", "pki/ca.crt"),
        ("pki/apiserver-kubelet-client.crt", "pki/ca.crt"),
        ("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt"),
        ("pki/etcd/server.crt", "pki/etcd/ca.crt"),
        ("pki/etcd/peer.crt", "pki/etcd/ca.crt"),
        ("pki/apiserver-etcd-client.crt", "pki/etcd/ca.crt"),
    ] {
        openssl_verify(tmp.path(), &bytes(&cas, ca)?, &bytes(&applied.files, leaf)?)?;
    }
    let api = Certificate::from_pem(&bytes(&applied.files, "pki/apiserver.crt")?)?;
    assert!(api.subject_alt_names().dns.contains(&"cp2".to_owned()));
    let kubelet = Kubeconfig::from_slice(
        Path::new("kubelet.conf"),
        &bytes(&applied.files, "kubelet.conf")?,
    )?;
    let client = kubelet
        .current_client_cert_pem(Path::new("kubelet.conf"))?
        .ok_or("no client certificate")?;
    openssl_verify(tmp.path(), &bytes(&cas, "pki/ca.crt")?, &client)?;
    assert!(
        Certificate::from_pem(&client)?
            .subject()
            .to_string()
            .contains("system:node:cp2")
    );
    // The whole tree for node 2: the CAs it was given plus its own files.
    let whole = applied.full_tree(&cas);
    assert_eq!(whole.len(), 27);
    let again = decide(&node2, &Selection::all(), &whole, now())?;
    assert!(again.creates_nothing());
    Ok(())
}

#[test]
fn keyless_ca_is_external_and_needs_every_leaf() -> R {
    let plan = plan()?;
    let mut tree = full(&plan, now())?;
    tree.remove("pki/ca.key");
    let d = decide(&plan, &Selection::all(), &tree, now())?;
    assert!(d.creates_nothing());
    assert!(d.item("ca").is_some_and(|i| i.external));
    // Without a leaf and a kubeconfig it signs: one error naming both, nothing created.
    tree.remove("pki/apiserver.crt");
    tree.remove("pki/apiserver.key");
    tree.remove("admin.conf");
    let e = decide(&plan, &Selection::all(), &tree, now())
        .err()
        .ok_or("accepted an incomplete external-CA tree")?;
    let msg = e.to_string();
    assert!(matches!(e, Error::ExternalCaIncomplete { .. }), "{msg}");
    assert!(
        msg.contains("apiserver.crt") && msg.contains("admin.conf"),
        "{msg}"
    );
    Ok(())
}

/// The in-memory result through the folder sink: the files land with the folder writer's
/// modes, and `run` on that folder then reuses everything.
#[test]
fn in_memory_tree_through_the_folder_sink() -> R {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let mut s = spec("cp1", [192, 0, 2, 10]);
    s.cert_dir = dir.path().join("pki");
    s.kubeconfig_dir = dir.path().to_owned();
    let plan = Plan::new(&s)?;
    let applied = build(&plan, &Selection::all(), &Tree::new(), now())?;
    let written = kubepki_kubeadm::write_folder(&plan, &applied.files)?;
    assert_eq!(written.len(), 27);
    for (f, mode) in [
        ("pki/ca.crt", 0o644),
        ("pki/etcd/ca.key", 0o600),
        ("admin.conf", 0o600),
    ] {
        let m = std::fs::metadata(dir.path().join(f))?.permissions().mode() & 0o777;
        assert_eq!(m, mode, "{f}");
        assert_eq!(
            std::fs::read(dir.path().join(f))?,
            bytes(&applied.files, f)?
        );
    }
    let again = kubepki_kubeadm::init_tree(&plan, &Selection::all(), now(), false)?;
    assert!(again.unchanged());
    // The folder read back is the tree that was written.
    let read = Tree::read_folder(&plan)?;
    assert_eq!(read.len(), 27);
    assert_eq!(
        bytes(&read, "pki/sa.pub")?,
        bytes(&applied.files, "pki/sa.pub")?
    );
    // Writing it again clobbers nothing: every file exists.
    assert!(kubepki_kubeadm::write_folder(&plan, &applied.files).is_err());
    Ok(())
}

/// What recovery can leave after a kill between two folders' journals (the folder sink
/// journals `pki/etcd/`, then `pki/`, then the kubeconfig folder: docs/architecture.md,
/// "Journals and recovery"): every such prefix is a tree the next `init` finishes. A
/// certificate folder without the etcd folder would not be.
#[test]
fn every_folder_prefix_the_sink_can_leave_is_finished_by_init() -> R {
    for (prefixes, finishes) in [
        (&["pki/etcd/"][..], true),
        (&["pki/etcd/", "pki/"][..], true),
        (&["pki/"][..], false),
    ] {
        let dir = tempfile::tempdir()?;
        let mut s = spec("cp1", [192, 0, 2, 10]);
        s.cert_dir = dir.path().join("pki");
        s.kubeconfig_dir = dir.path().to_owned();
        let plan = Plan::new(&s)?;
        let applied = build(&plan, &Selection::all(), &Tree::new(), now())?;
        let mut part = Tree::new();
        for f in applied.files.files() {
            // The folder a file is in: `pki/etcd/`, `pki/`, or the kubeconfig folder.
            let keep = if f.path.starts_with("pki/etcd/") {
                prefixes.contains(&"pki/etcd/")
            } else if f.path.starts_with("pki/") {
                prefixes.contains(&"pki/")
            } else {
                false
            };
            if keep {
                part.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
            }
        }
        kubepki_kubeadm::write_folder(&plan, &part)?;
        let r = kubepki_kubeadm::init_tree(&plan, &Selection::all(), now(), false);
        assert_eq!(r.is_ok(), finishes, "{prefixes:?}: {:?}", r.err());
        if finishes {
            let again = kubepki_kubeadm::init_tree(&plan, &Selection::all(), now(), false)?;
            assert!(again.unchanged());
        }
    }
    Ok(())
}

/// A CA set is made without node inputs: no node name, no advertise address (the library
/// would otherwise probe the hostname and the default route), nothing read or written.
#[test]
fn ca_set_needs_no_node_inputs() -> R {
    let mut s = ClusterSpec::default();
    s.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    s.cert_dir = Path::new(NOWHERE).join("pki");
    s.kubeconfig_dir = NOWHERE.into();
    assert_eq!((s.node_name.as_ref(), s.advertise_address), (None, None));
    let cas = CaSet::generate(&s, now())?;
    let paths: Vec<&str> = cas.tree().files().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "pki/ca.crt",
            "pki/ca.key",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-ca.key",
            "pki/etcd/ca.crt",
            "pki/etcd/ca.key",
            "pki/sa.key",
            "pki/sa.pub",
        ]
    );
    for (id, cn) in [
        (CertId::Ca, "CN = kubernetes"),
        (CertId::FrontProxyCa, "CN = front-proxy-ca"),
        (CertId::EtcdCa, "CN = etcd-ca"),
    ] {
        let ca = cas.authority(id)?;
        assert!(ca.can_sign());
        assert_eq!(ca.certificate().subject().to_string(), cn);
    }
    assert!(!Path::new(NOWHERE).exists());

    // External etcd: no etcd CA.
    s.external_etcd = true;
    let cas = CaSet::generate(&s, now())?;
    assert!(cas.tree().get("pki/etcd/ca.crt").is_none());
    assert_eq!(cas.tree().len(), 6);

    // Inputs are still checked (here: an algorithm kubeadm 1.30 does not have).
    s.kubernetes_version = "v1.30.0".parse()?;
    s.encryption_algorithm = KeyAlgorithm::EcdsaP384;
    let e = CaSet::generate(&s, now())
        .err()
        .ok_or("accepted P-384 for 1.30")?;
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "encryptionAlgorithm"),
        "{e:?}"
    );
    Ok(())
}

/// PEM out, PEM in: a stored CA set is taken back under the rules `init` applies before it
/// reuses a CA, and a node made from it is signed by those CAs (`openssl verify`).
#[test]
fn ca_set_round_trips_and_signs_a_node() -> R {
    let mut s = spec("cp1", [192, 0, 2, 10]);
    s.node_name = None;
    s.advertise_address = None;
    let cas = CaSet::generate(&s, now())?;
    let back = CaSet::from_tree(&s, &Tree::from_json(&cas.tree().to_json()?)?, now())?;
    for f in cas.tree().files() {
        assert_eq!(back.tree().get(&f.path).map(|b| &b.bytes), Some(&f.bytes));
    }
    // Extra files in the tree are left out of the set.
    let node1 = Plan::new(&spec("cp1", [192, 0, 2, 10]))?;
    let applied = back.build_node(&node1, &Selection::all(), now())?;
    let whole = applied.full_tree(back.tree());
    assert_eq!(whole.len(), 27);
    assert_eq!(CaSet::from_tree(&s, &whole, now())?.tree().len(), 8);

    let tmp = tempfile::tempdir()?;
    for (leaf, ca) in [
        ("pki/apiserver.crt", "pki/ca.crt"),
        ("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt"),
        ("pki/etcd/peer.crt", "pki/etcd/ca.crt"),
    ] {
        openssl_verify(
            tmp.path(),
            &bytes(cas.tree(), ca)?,
            &bytes(&applied.files, leaf)?,
        )?;
    }
    Ok(())
}

/// What `CaSet::from_tree` refuses, each naming the file: a missing CA, a CA key of another
/// CA, an expired CA, a half service-account pair.
#[test]
fn ca_set_from_a_bad_tree_is_refused() -> R {
    let s = spec("cp1", [192, 0, 2, 10]);
    let good = CaSet::generate(&s, now())?.into_tree();

    let mut t = good.clone();
    t.remove("pki/front-proxy-ca.crt");
    t.remove("pki/front-proxy-ca.key");
    let e = CaSet::from_tree(&s, &t, now()).err().ok_or("accepted")?;
    assert!(
        matches!(&e, Error::MissingFile { path, .. } if path.ends_with("pki/front-proxy-ca.crt")),
        "{e:?}"
    );

    let mut t = good.clone();
    t.insert_file("pki/etcd/ca.key", bytes(&good, "pki/ca.key")?)?;
    let e = CaSet::from_tree(&s, &t, now()).err().ok_or("accepted")?;
    assert_eq!(
        e.path().map(|p| p.ends_with("pki/etcd/ca.key")),
        Some(true),
        "{e:?}"
    );

    let old = CaSet::generate(&s, now() - Duration::days(11 * 366))?.into_tree();
    let e = CaSet::from_tree(&s, &old, now()).err().ok_or("accepted")?;
    assert!(e.to_string().contains("make a new tree"), "{e}");

    let mut t = good.clone();
    t.remove("pki/sa.pub");
    let e = CaSet::from_tree(&s, &t, now()).err().ok_or("accepted")?;
    assert!(
        matches!(&e, Error::MissingFile { path, .. } if path.ends_with("pki/sa.pub")),
        "{e:?}"
    );
    Ok(())
}

/// The external-CA flow with no file system: the node makes its keys and CSRs in memory, the CA
/// holder signs them from memory, and the node's tree (CA certificates without keys) is then
/// complete: `decide` reuses every file, and OpenSSL verifies each leaf against its CA.
#[test]
fn external_ca_flow_in_memory() -> R {
    let plan = plan()?;
    let (csrs, generated) = kubepki_kubeadm::generate_csrs_in(&plan, &Tree::new())?;
    assert!(generated.written.is_empty() && generated.kept.is_empty());
    // Seven leaves (key + CSR) and five kubeconfigs (file with the key + CSR).
    assert_eq!(csrs.len(), 7 * 2 + 5 * 2);
    assert!(csrs.get("pki/apiserver.csr").is_some() && csrs.get("admin.conf.csr").is_some());
    // Asked again with those files, nothing new is made: every item awaits signing.
    let (again, kept) = kubepki_kubeadm::generate_csrs_in(&plan, &csrs)?;
    assert!(again.is_empty());
    assert_eq!(kept.kept.len(), 12);

    let cas = CaSet::generate(&plan.spec, now())?;
    let signing = kubepki_kubeadm::SigningCas {
        ca: Some(cas.authority(CertId::Ca)?),
        front_proxy: Some(cas.authority(CertId::FrontProxyCa)?),
        etcd: Some(cas.authority(CertId::EtcdCa)?),
    };
    let (signed, report) = kubepki_kubeadm::sign_csrs_in(&plan, &csrs, &signing, now())?;
    assert_eq!(report.len(), 12);
    assert!(
        report
            .iter()
            .all(|s| matches!(s, kubepki_kubeadm::Signed::Written(_))),
        "{report:?}"
    );
    // The node's tree: its keys and the signed results, the CA certificates without keys.
    let mut node = csrs.clone();
    for f in signed.files() {
        node.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
    }
    for p in [
        "pki/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/etcd/ca.crt",
        "pki/sa.key",
        "pki/sa.pub",
    ] {
        node.insert_file(p, bytes(cas.tree(), p)?)?;
    }
    let d = decide(&plan, &Selection::all(), &node, now())?;
    assert!(d.creates_nothing(), "{d:?}");
    let tmp = tempfile::tempdir()?;
    for (leaf, ca) in [
        ("pki/apiserver.crt", "pki/ca.crt"),
        ("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt"),
        ("pki/etcd/server.crt", "pki/etcd/ca.crt"),
    ] {
        openssl_verify(tmp.path(), &bytes(cas.tree(), ca)?, &bytes(&node, leaf)?)?;
    }
    Ok(())
}

/// Renewal of a tree in memory: new keys and certificates with the same names, signed by the
/// same CAs, the kubeconfigs' embedded credentials replaced; the result is a tree `decide`
/// reuses whole, and the old certificates are not in it.
#[test]
fn renewal_in_memory() -> R {
    let plan = plan()?;
    let made = now() - Duration::days(300);
    let mut tree = full(&plan, made)?;
    // A kubeconfig mode the operator chose is kept.
    let admin = bytes(&tree, "admin.conf")?;
    tree.insert("admin.conf", admin, 0o400)?;
    let targets = kubepki_kubeadm::renew_targets(&plan.spec);
    let (renewed, report, _) = kubepki_kubeadm::renew_in(&plan.spec, &tree, &targets, None, now())?;
    assert_eq!(report.len(), targets.len());
    assert!(
        report
            .iter()
            .all(|r| matches!(r.status, kubepki_kubeadm::RenewStatus::Renewed { .. })),
        "{report:?}"
    );
    // Seven leaves (certificate + key) and four kubeconfigs (not kubelet.conf).
    assert_eq!(renewed.len(), 7 * 2 + 4);
    assert_eq!(renewed.get("admin.conf").map(|f| f.mode), Some(0o400));
    let old = Certificate::from_pem(&bytes(&tree, "pki/apiserver.crt")?)?;
    let new = Certificate::from_pem(&bytes(&renewed, "pki/apiserver.crt")?)?;
    assert_eq!(new.subject_alt_names(), old.subject_alt_names());
    assert_ne!(new.public_key_der(), old.public_key_der());
    assert!(new.not_after() > old.not_after() + Duration::days(299));
    let mut whole = tree.clone();
    for f in renewed.files() {
        whole.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
    }
    // 300 days on, the renewed tree is still reused as it is (kubelet.conf aside: the kubelet
    // rotates its own client certificate), the old one is not.
    let later = now() + Duration::days(300);
    let mut renewable = Selection::all();
    renewable
        .kubeconfigs
        .retain(|k| *k != kubepki_kubeadm::KubeconfigId::Kubelet);
    assert!(decide(&plan, &renewable, &tree, later).is_err());
    assert!(decide(&plan, &renewable, &whole, later)?.creates_nothing());

    // A kubeconfig that names its credentials as files is not renewed in memory.
    let mut referencing = tree.clone();
    let text = String::from_utf8(bytes(&tree, "scheduler.conf")?)?;
    let start = text.find("client-certificate-data:").ok_or("no data")?;
    let end = start + text[start..].find('\n').ok_or("eol")?;
    let edited = format!(
        "{}client-certificate: /etc/kubernetes/pki/scheduler.crt{}",
        &text[..start],
        &text[end..]
    );
    referencing.insert_file("scheduler.conf", edited.into_bytes())?;
    let (_, report, _) = kubepki_kubeadm::renew_in(
        &plan.spec,
        &referencing,
        &[kubepki_kubeadm::RenewTarget::Kubeconfig(
            kubepki_kubeadm::KubeconfigId::Scheduler,
        )],
        None,
        now(),
    )?;
    match &report[0].status {
        kubepki_kubeadm::RenewStatus::Failed { reason } => {
            assert!(reason.contains("embedded credentials only"), "{reason}")
        }
        other => return Err(format!("{other:?}").into()),
    }
    Ok(())
}
