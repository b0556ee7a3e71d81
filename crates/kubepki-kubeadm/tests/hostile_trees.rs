//! Hostile and unusual trees: path mapping between the folders and the tree when the folders
//! nest or coincide, the in-memory commands reading nothing from the host file system, what
//! `CaSet::from_tree` refuses, and links to nothing in the folders.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    Action, CaSet, CertId, ClusterSpec, Plan, Selection, Tree, build, decide, init_tree,
};
use time::OffsetDateTime;

mod common;
use common::{bytes, node_spec, now_whole_seconds};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NOWHERE: &str = "/nonexistent/kubepki-hostile-trees";

fn now() -> OffsetDateTime {
    now_whole_seconds()
}

fn spec(cert_dir: PathBuf, kubeconfig_dir: PathBuf) -> ClusterSpec {
    node_spec("cp1", [192, 0, 2, 10], cert_dir, kubeconfig_dir)
}

/// Replaces the line starting (after indentation) with `field:` in `text` by `field: value`.
fn set_field(text: &str, field: &str, new_field: &str, value: &str) -> Res<String> {
    let key = format!("{field}:");
    let start = text.find(&key).ok_or_else(|| format!("no {field}"))?;
    let end = start + text[start..].find('\n').ok_or("eol")?;
    Ok(format!(
        "{}{new_field}: {value}{}",
        &text[..start],
        &text[end..]
    ))
}

fn field_value(text: &str, field: &str) -> Res<String> {
    let key = format!("{field}:");
    let start = text.find(&key).ok_or_else(|| format!("no {field}"))? + key.len();
    let end = start + text[start..].find('\n').ok_or("eol")?;
    Ok(text[start..end].trim().to_owned())
}

fn b64(s: &str) -> Res<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

/// A kubeconfig folder that is the certificate folder (`--cert-dir X --kubeconfig-dir X`):
/// init, run again, must reuse every file. Current::rel maps `X/admin.conf` to the tree path
/// `pki/admin.conf` (certificate folder first) while the tree read from the folder (and the
/// files apply makes) hold it as `admin.conf`: the kubeconfigs look missing, init decides to
/// create them and the no-clobber writer fails on the existing files.
#[test]
fn init_twice_with_one_folder_for_both_reuses_everything() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("k");
    let plan = Plan::new(&spec(dir.clone(), dir.clone()))?;
    init_tree(&plan, &Selection::all(), now(), false)?;
    let again = init_tree(&plan, &Selection::all(), now(), false)?;
    let created: Vec<_> = again
        .items
        .iter()
        .filter(|i| i.action != Action::Reuse)
        .map(|i| i.name.clone())
        .collect();
    assert!(created.is_empty(), "made again: {created:?}");
    Ok(())
}

/// The same, for a kubeconfig folder inside the certificate folder.
#[test]
fn init_twice_with_kubeconfigs_inside_the_cert_dir_reuses_everything() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("pki");
    let plan = Plan::new(&spec(dir.clone(), dir.join("kc")))?;
    init_tree(&plan, &Selection::all(), now(), false)?;
    let again = init_tree(&plan, &Selection::all(), now(), false)?;
    assert!(
        again.items.iter().all(|i| i.action == Action::Reuse),
        "{:?}",
        again.items
    );
    Ok(())
}

/// In memory, for those layouts: what `build` returns must be what `decide` reuses, and
/// `renew_in` must find the kubeconfigs where `build` put them.
#[test]
fn in_memory_tree_round_trips_when_the_folders_nest() -> R {
    for (c, k) in [
        (PathBuf::from(NOWHERE), PathBuf::from(NOWHERE)),
        (PathBuf::from(NOWHERE), Path::new(NOWHERE).join("kc")),
    ] {
        let s = spec(c.clone(), k.clone());
        let plan = Plan::new(&s)?;
        let tree = build(&plan, &Selection::all(), &Tree::new(), now())?.files;
        assert!(tree.get("admin.conf").is_some(), "{c:?} {k:?}: {tree:?}");
        let d = decide(&plan, &Selection::all(), &tree, now())?;
        assert!(d.creates_nothing(), "{c:?} {k:?}: {d:?}");
        let (_, report, _) = kubepki_kubeadm::renew_in(
            &s,
            &tree,
            &[kubepki_kubeadm::RenewTarget::Kubeconfig(
                kubepki_kubeadm::KubeconfigId::Admin,
            )],
            None,
            now(),
        )?;
        assert!(
            matches!(
                report[0].status,
                kubepki_kubeadm::RenewStatus::Renewed { .. }
            ),
            "{c:?} {k:?}: {report:?}"
        );
    }
    Ok(())
}

/// `decide` (and `build`, `CaSet::build_node`) over a tree in memory reads a kubeconfig's
/// `client-certificate`/`client-key` file references from the host file system: an in-memory
/// tree (an installer's store, an upload) makes the library open any path it names, and
/// material on the host decides whether the tree is reused. In memory, only what the tree
/// holds may be read (as `renew_in` and `Expiration::of_tree` already do).
#[test]
fn decide_in_memory_does_not_read_kubeconfig_references_from_the_host() -> R {
    let s = spec(PathBuf::from(NOWHERE).join("pki"), PathBuf::from(NOWHERE));
    let plan = Plan::new(&s)?;
    let mut tree = build(&plan, &Selection::all(), &Tree::new(), now())?.files;
    let text = String::from_utf8(bytes(&tree, "admin.conf")?)?;
    // The admin credentials, put on the host (not in the tree).
    let host = tempfile::tempdir()?;
    let (crt, key) = (host.path().join("admin.crt"), host.path().join("admin.key"));
    std::fs::write(&crt, b64(&field_value(&text, "client-certificate-data")?)?)?;
    std::fs::write(&key, b64(&field_value(&text, "client-key-data")?)?)?;
    let text = set_field(
        &text,
        "client-certificate-data",
        "client-certificate",
        &crt.display().to_string(),
    )?;
    let text = set_field(
        &text,
        "client-key-data",
        "client-key",
        &key.display().to_string(),
    )?;
    tree.insert_file("admin.conf", text.into_bytes())?;
    let d = decide(&plan, &Selection::all(), &tree, now());
    // Reused today, from the host's files.
    assert!(
        d.is_err(),
        "admin.conf was reused from host files {} and {}",
        crt.display(),
        key.display()
    );
    let msg = d.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("admin.conf"), "{msg}");

    // The same through the CA set.
    let cas = CaSet::from_tree(&s, &tree, now())?;
    let mut node = cas.tree().clone();
    node.insert_file("admin.conf", bytes(&tree, "admin.conf")?)?;
    let e = decide(&plan, &Selection::all(), &node, now());
    assert!(e.is_err(), "reused from host files");
    Ok(())
}

/// `sign_csrs_in` (the CA holder signing a node's tree received in memory) reads the client
/// key a node's kubeconfig names (`client-key: /path`) from the CA holder's file system and
/// signs it: the node decides which file of the CA holder's machine is read (and tested
/// against its CSR), and the CA holder signs a credential whose key is not in the tree.
#[test]
fn sign_csrs_in_does_not_read_client_keys_from_the_host() -> R {
    let s = spec(PathBuf::from(NOWHERE).join("pki"), PathBuf::from(NOWHERE));
    let plan = Plan::new(&s)?;
    let (mut csrs, _) = kubepki_kubeadm::generate_csrs_in(&plan, &Tree::new())?;
    let text = String::from_utf8(bytes(&csrs, "admin.conf")?)?;
    let host = tempfile::tempdir()?;
    let key = host.path().join("admin.key");
    std::fs::write(&key, b64(&field_value(&text, "client-key-data")?)?)?;
    let text = set_field(
        &text,
        "client-key-data",
        "client-key",
        &key.display().to_string(),
    )?;
    csrs.insert_file("admin.conf", text.into_bytes())?;

    let cas = CaSet::generate(&s, now())?;
    let signing = kubepki_kubeadm::SigningCas {
        ca: Some(cas.authority(CertId::Ca)?),
        front_proxy: Some(cas.authority(CertId::FrontProxyCa)?),
        etcd: Some(cas.authority(CertId::EtcdCa)?),
    };
    let r = kubepki_kubeadm::sign_csrs_in(&plan, &csrs, &signing, now());
    let signed_admin = r.as_ref().is_ok_and(|(_, report)| {
        report
            .iter()
            .any(|x| matches!(x, kubepki_kubeadm::Signed::Written(p) if p.ends_with("admin.conf")))
    });
    assert!(
        !signed_admin,
        "admin.conf signed with its key read from the host file {}",
        key.display()
    );
    Ok(())
}

/// A kubeconfig in an in-memory tree naming `/dev/stdin`-like paths must not make `decide`
/// open them: a path that does not exist shows up in the error as a host read.
#[test]
fn decide_in_memory_error_does_not_name_a_host_read() -> R {
    let s = spec(PathBuf::from(NOWHERE).join("pki"), PathBuf::from(NOWHERE));
    let plan = Plan::new(&s)?;
    let mut tree = build(&plan, &Selection::all(), &Tree::new(), now())?.files;
    let text = String::from_utf8(bytes(&tree, "admin.conf")?)?;
    let text = set_field(
        &text,
        "certificate-authority-data",
        "certificate-authority",
        "/nonexistent/host/ca.crt",
    )?;
    tree.insert_file("admin.conf", text.into_bytes())?;
    let e = decide(&plan, &Selection::all(), &tree, now())
        .err()
        .ok_or("accepted")?
        .to_string();
    assert!(
        !e.contains("No such file") && !e.contains("os error"),
        "the host file system was read: {e}"
    );
    Ok(())
}

/// `CaSet::from_tree` refuses a leaf posing as a CA, a group-readable CA key, an `sa.pub` of
/// another key; its `Debug` and its errors never show key bytes.
#[test]
fn ca_set_from_tree_refusals_and_no_key_bytes_in_debug() -> R {
    let s = spec(PathBuf::from(NOWHERE).join("pki"), PathBuf::from(NOWHERE));
    let plan = Plan::new(&s)?;
    let full = build(&plan, &Selection::all(), &Tree::new(), now())?.files;
    let good = CaSet::from_tree(&s, &full, now())?;
    let shown = format!("{good:?} {:?}", good.tree());
    assert!(
        !shown.contains("PRIVATE") && !shown.contains("BEGIN"),
        "{shown}"
    );

    let mut t = good.tree().clone();
    t.insert_file("pki/ca.crt", bytes(&full, "pki/apiserver.crt")?)?;
    t.insert_file("pki/ca.key", bytes(&full, "pki/apiserver.key")?)?;
    let e = CaSet::from_tree(&s, &t, now())
        .err()
        .ok_or("leaf accepted as CA")?;
    assert!(!format!("{e:?}{e}").contains("PRIVATE"), "{e:?}");

    let mut t = good.tree().clone();
    t.insert("pki/ca.key", bytes(&full, "pki/ca.key")?, 0o640)?;
    assert!(
        CaSet::from_tree(&s, &t, now()).is_err(),
        "0640 CA key accepted"
    );

    let mut t = good.tree().clone();
    let other = CaSet::generate(&s, now())?;
    t.insert_file("pki/sa.pub", bytes(other.tree(), "pki/sa.pub")?)?;
    assert!(
        CaSet::from_tree(&s, &t, now()).is_err(),
        "foreign sa.pub accepted"
    );

    // A key that is not a key, in an error: its bytes are not echoed.
    let mut t = good.tree().clone();
    let mut key = bytes(&full, "pki/ca.key")?;
    key.truncate(key.len() / 2);
    t.insert_file("pki/ca.key", key)?;
    let e = CaSet::from_tree(&s, &t, now())
        .err()
        .ok_or("half key accepted")?;
    let text = format!("{e:?}{e}");
    assert!(!text.contains("MII") && !text.contains("BEGIN"), "{text}");
    Ok(())
}

/// A link to nothing where a key or CSR goes is named as what it is, by `init` and by
/// `certs generate-csr`, and nothing is written.
#[test]
fn a_dangling_link_in_the_tree_is_named() -> R {
    let dir = tempfile::tempdir()?;
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
    s.node_name = Some("cp1".into());
    s.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    s.cert_dir = dir.path().join("pki");
    s.kubeconfig_dir = dir.path().to_owned();
    std::fs::create_dir(&s.cert_dir)?;
    std::os::unix::fs::symlink("/nonexistent/target", s.cert_dir.join("apiserver.key"))?;
    let plan = Plan::new(&s)?;
    // init: a key (of any kind) without its certificate is refused before anything is made.
    let e = init_tree(&plan, &Selection::all(), now(), false)
        .err()
        .ok_or("init accepted a dangling link")?;
    let msg = e.to_string();
    assert!(msg.contains("apiserver.key: exists without"), "{msg}");
    // generate-csr would make a CSR for that key: it says what the key file is.
    let e = kubepki_kubeadm::generate_csrs(&plan)
        .err()
        .ok_or("generate-csr accepted a dangling link")?;
    let msg = e.to_string();
    assert!(
        msg.contains("apiserver.key") && msg.contains("symbolic link to nothing"),
        "{msg}"
    );
    let written: Vec<PathBuf> = std::fs::read_dir(&s.cert_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    assert_eq!(written, [s.cert_dir.join("apiserver.key")]);
    Ok(())
}
