//! Expiry as data. `check_expiration` reads a tree from its folders (under the tree's shared
//! lock, reporting rather than completing an interrupted batch) and returns an `Expiration`
//! value: NotBefore/NotAfter per certificate and CA, problems, and an `Urgency` for a window.
//! There is no `check_expiration` over bytes or a `Tree` yet; from bytes, the expiry of each
//! certificate is what `Certificate::from_pem(..).not_after()` returns, and for a kubeconfig
//! that of its embedded client certificate. This example does it from bytes for a tree made
//! in memory, then writes the same tree to a temporary folder and checks that
//! `check_expiration` reports the same dates.
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example expiry_as_data
//! ```
//!
//! The same body runs in the test suite (`cargo test -p kubepki-kubeadm --example expiry_as_data`).

use std::path::Path;

use kubepki_ca::Certificate;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{ClusterSpec, Kubeconfig, Plan, Selection, Tree, build};
use time::OffsetDateTime;

/// When one certificate of a tree expires, read from its bytes.
#[derive(Debug, PartialEq, Eq)]
struct Expiry {
    /// The tree path (`pki/apiserver.crt`, `admin.conf`).
    path: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// The expiry of every certificate of `tree`: each `.crt`, and each kubeconfig's client
/// certificate. Nothing is read from disk.
fn expiry_from_bytes(tree: &Tree) -> Result<Vec<Expiry>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for f in tree.files() {
        let cert = if f.path.ends_with(".crt") {
            Certificate::from_pem(&f.bytes)?
        } else if f.path.ends_with(".conf") {
            let path = Path::new(&f.path);
            let kc = Kubeconfig::from_slice(path, &f.bytes)?;
            match kc.current_client_cert_pem(path)? {
                Some(pem) => Certificate::from_pem(&pem)?,
                None => continue,
            }
        } else {
            continue;
        };
        out.push(Expiry {
            path: f.path.clone(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
        });
    }
    Ok(out)
}

/// A node's tree, made in memory; its folders are only named.
fn node_tree(
    folder: &Path,
    now: OffsetDateTime,
) -> Result<(ClusterSpec, Plan, Tree), kubepki_kubeadm::Error> {
    let mut spec = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    spec.node_name = Some("cp1".into());
    spec.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    spec.cert_dir = folder.join("pki");
    spec.kubeconfig_dir = folder.to_owned();
    let plan = Plan::new(&spec)?;
    let tree = build(&plan, &Selection::all(), &Tree::new(), now)?.files;
    Ok((spec, plan, tree))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = OffsetDateTime::now_utc();
    let (_, _, tree) = node_tree(Path::new("/nonexistent/kubepki-example"), now)?;
    for e in expiry_from_bytes(&tree)? {
        println!(
            "{:<40} expires {} ({} days)",
            e.path,
            kubepki_kubeadm::kubeadm_date(e.not_after),
            (e.not_after - now).whole_days()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_kubeadm::{Urgency, check_expiration, write_folder};
    use time::Duration;

    #[test]
    fn bytes_and_check_expiration_agree() -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let dir = tempfile::tempdir()?;
        let (spec, plan, tree) = node_tree(dir.path(), now)?;
        let from_bytes = expiry_from_bytes(&tree)?;
        // 10 certificates and 5 kubeconfig client certificates.
        assert_eq!(from_bytes.len(), 15);
        for e in &from_bytes {
            assert!(e.not_before <= now && now < e.not_after, "{e:?}");
            let want = if e.path.ends_with("ca.crt") {
                3650
            } else {
                365
            };
            assert!(
                ((e.not_after - now).whole_days() - want).abs() <= 1,
                "{e:?}"
            );
        }

        // The folder API on the same tree reports the same dates.
        write_folder(&plan, &tree)?;
        let exp = check_expiration(&spec, now);
        assert!(exp.problems.is_empty(), "{:?}", exp.problems);
        let listed: Vec<_> = exp.certificates.iter().chain(&exp.authorities).collect();
        assert_eq!(listed.len(), 14); // check-expiration never lists kubelet.conf, as kubeadm
        for entry in listed {
            let rel = entry
                .path
                .strip_prefix(dir.path())?
                .to_string_lossy()
                .into_owned();
            let e = from_bytes
                .iter()
                .find(|e| e.path == rel)
                .ok_or(rel.clone())?;
            assert_eq!(entry.expires, Some(e.not_after), "{rel}");
            assert_eq!(entry.not_before, Some(e.not_before), "{rel}");
        }
        // As data: nothing is due within 30 days now; in 400 days the leaves have expired.
        assert_eq!(exp.urgency(Duration::days(30)), Urgency::Fine);
        let later = check_expiration(&spec, now + Duration::days(400));
        assert_eq!(later.urgency(Duration::days(30)), Urgency::Expired);
        Ok(())
    }
}
