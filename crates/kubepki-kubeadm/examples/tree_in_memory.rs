//! An installer's view: the whole kubeadm tree of a control-plane node made in memory
//! (decide, then apply) and shipped as a tar, without a folder being read or written.
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example tree_in_memory > tree.tar && tar -tvf tree.tar
//! ```
//!
//! The tar holds private keys (secret material): store it as such. The same body runs in the
//! test suite (`cargo test -p kubepki-kubeadm --example tree_in_memory`), which reads the archive
//! back in memory and checks every leaf against its CA.

use std::io::Write;
use std::path::PathBuf;

use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{Action, ClusterSpec, Plan, Selection, Tree, apply, decide};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Folders that are named in the plan (and in its report) but never created: decide and apply
/// read and write no file.
fn untouched_folder() -> PathBuf {
    std::env::temp_dir().join(format!("kubepki-tree-in-memory-{}", std::process::id()))
}

/// The tree of node `cp1` (ECDSA-P256) from nothing, and its tar.
fn installer_tar(
    now: OffsetDateTime,
) -> Result<(Tree, Zeroizing<Vec<u8>>), kubepki_kubeadm::Error> {
    let folder = untouched_folder();
    let mut spec = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    spec.node_name = Some("cp1".into());
    spec.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    spec.cert_dir = folder.join("pki");
    spec.kubeconfig_dir = folder;
    let plan = Plan::new(&spec)?;
    // Nothing exists yet: the current tree is empty, so every item is created.
    let decision = decide(&plan, &Selection::all(), &Tree::new(), now)?;
    assert!(decision.items().all(|i| i.action == Action::Create));
    let applied = apply(&plan, decision)?;
    let tar = applied.files.to_tar(now)?;
    Ok((applied.files, tar))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tree, tar) = installer_tar(OffsetDateTime::now_utc())?;
    eprintln!(
        "{} files in memory; the tar on standard output holds private keys",
        tree.len()
    );
    std::io::stdout().lock().write_all(&tar)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_ca::{Certificate, CertificateAuthority};
    use kubepki_csr::ExtKeyUsage;

    /// A regular file of an archive: path, mode, bytes.
    type Entry = (String, u32, Vec<u8>);

    /// The regular files of a ustar archive.
    fn read_tar(mut tar: &[u8]) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
        let field = |h: &[u8], r: std::ops::Range<usize>| -> Result<String, std::str::Utf8Error> {
            let s = std::str::from_utf8(&h[r])?;
            Ok(s.trim_matches(|c: char| c == '\0' || c == ' ').to_owned())
        };
        let mut out = Vec::new();
        while tar.len() >= 512 && tar[..512].iter().any(|b| *b != 0) {
            let h = &tar[..512];
            assert_eq!(&h[257..262], b"ustar", "a POSIX ustar header");
            let (prefix, name) = (field(h, 345..500)?, field(h, 0..100)?);
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let mode = u32::from_str_radix(&field(h, 100..108)?, 8)?;
            let size = usize::from_str_radix(&field(h, 124..136)?, 8)?;
            let body = &tar[512..];
            if h[156] == b'0' {
                out.push((path, mode, body[..size].to_vec()));
            }
            tar = &body[size.div_ceil(512) * 512..];
        }
        Ok(out)
    }

    #[test]
    fn the_tar_is_the_tree_and_every_leaf_chains_to_its_ca()
    -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let (tree, tar) = installer_tar(now)?;
        assert!(!untouched_folder().exists(), "no folder was created");
        assert_eq!(tree.len(), 27); // 10 certificates + keys, sa.key/sa.pub, 5 kubeconfigs

        // The archive holds exactly the tree: paths, modes and bytes.
        let entries = read_tar(&tar)?;
        assert_eq!(entries.len(), tree.len());
        for (path, mode, bytes) in &entries {
            let f = tree.get(path).ok_or(format!("{path} not in the tree"))?;
            assert_eq!(
                (*mode, bytes.as_slice()),
                (f.mode, f.bytes.as_slice()),
                "{path}"
            );
            let want = if path.ends_with(".crt") { 0o644 } else { 0o600 };
            assert_eq!(*mode, want, "{path}");
        }

        // Every leaf parses back and verifies against its CA from the same archive.
        let pem = |p: &str| -> Result<Certificate, Box<dyn std::error::Error>> {
            let (_, _, b) = entries
                .iter()
                .find(|(q, _, _)| q == p)
                .ok_or(p.to_owned())?;
            Ok(Certificate::from_pem(b)?)
        };
        for (ca, leaves, usage) in [
            (
                "pki/ca.crt",
                &["pki/apiserver.crt"][..],
                ExtKeyUsage::ServerAuth,
            ),
            (
                "pki/ca.crt",
                &["pki/apiserver-kubelet-client.crt"][..],
                ExtKeyUsage::ClientAuth,
            ),
            (
                "pki/front-proxy-ca.crt",
                &["pki/front-proxy-client.crt"][..],
                ExtKeyUsage::ClientAuth,
            ),
            (
                "pki/etcd/ca.crt",
                &["pki/etcd/server.crt", "pki/etcd/peer.crt"][..],
                ExtKeyUsage::ServerAuth,
            ),
            (
                "pki/etcd/ca.crt",
                &[
                    "pki/etcd/healthcheck-client.crt",
                    "pki/apiserver-etcd-client.crt",
                ][..],
                ExtKeyUsage::ClientAuth,
            ),
        ] {
            let ca = CertificateAuthority::from_certificate(pem(ca)?)?;
            for leaf in leaves {
                ca.verify(&pem(leaf)?, Some(&usage), now)?;
            }
        }
        let apiserver = pem("pki/apiserver.crt")?;
        let san = apiserver.subject_alt_names();
        assert!(format!("{san:?}").contains("cp1"), "{san:?}");
        Ok(())
    }
}
