//! Expiry as data, from bytes. `Expiration::of_tree` reads a tree held in memory (made by
//! `build`, read back from an export or a secret store) and returns the same `Expiration`
//! value `check_expiration` returns for the folders: NotBefore/NotAfter per certificate, CA and
//! kubeconfig client certificate, problems, and an `Urgency` for a window. This example makes
//! a tree in memory and prints when each certificate expires; its test writes the same tree to
//! a temporary folder and checks that `check_expiration` reports the same dates.
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example expiry_as_data
//! ```
//!
//! The same body runs in the test suite (`cargo test -p kubepki-kubeadm --example expiry_as_data`).

use std::path::Path;

use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{ClusterSpec, Expiration, Plan, Selection, Tree, Urgency, build};
use time::{Duration, OffsetDateTime};

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
    let (spec, _, tree) = node_tree(Path::new("/nonexistent/kubepki-example"), now)?;
    let exp = Expiration::of_tree(&spec, &tree, now);
    for e in exp.authorities.iter().chain(&exp.certificates) {
        let Some(until) = e.expires else { continue };
        println!(
            "{:<26} expires {} ({} days)",
            e.name,
            kubepki_kubeadm::kubeadm_date(until),
            (until - now).whole_days()
        );
    }
    println!(
        "renewal due within 30 days: {}",
        exp.urgency(Duration::days(30)) != Urgency::Fine
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_ca::Certificate;
    use kubepki_kubeadm::{check_expiration, write_folder};

    #[test]
    fn memory_and_folder_agree() -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let dir = tempfile::tempdir()?;
        let (spec, plan, tree) = node_tree(dir.path(), now)?;
        let in_memory = Expiration::of_tree(&spec, &tree, now);
        assert!(in_memory.problems.is_empty(), "{:?}", in_memory.problems);
        // 3 CAs; 7 leaves and 4 kubeconfigs (never kubelet.conf, as kubeadm).
        assert_eq!(in_memory.authorities.len(), 3);
        assert_eq!(in_memory.certificates.len(), 11);
        for e in in_memory.authorities.iter().chain(&in_memory.certificates) {
            let until = e.expires.ok_or(e.name.clone())?;
            let want = if e.ca_name.is_none() { 3650 } else { 365 };
            assert!(((until - now).whole_days() - want).abs() <= 1, "{e:?}");
        }
        // Each date is the certificate's own, read from its bytes.
        let api = Certificate::from_pem(&tree.get("pki/apiserver.crt").ok_or("apiserver")?.bytes)?;
        let entry = in_memory
            .certificates
            .iter()
            .find(|e| e.name == "apiserver");
        assert_eq!(entry.and_then(|e| e.expires), Some(api.not_after()));

        // The folder API on the same tree reports the same entries.
        write_folder(&plan, &tree)?;
        let on_disk = check_expiration(&spec, now);
        assert!(on_disk.problems.is_empty(), "{:?}", on_disk.problems);
        assert_eq!(on_disk.certificates, in_memory.certificates);
        assert_eq!(on_disk.authorities, in_memory.authorities);

        // As data: nothing is due within 30 days now; in 400 days the leaves have expired.
        assert_eq!(in_memory.urgency(Duration::days(30)), Urgency::Fine);
        let later = Expiration::of_tree(&spec, &tree, now + Duration::days(400));
        assert_eq!(later.urgency(Duration::days(30)), Urgency::Expired);
        // A tree without its CA key: that CA is reported as externally managed.
        let mut keyless = tree.clone();
        keyless.remove("pki/front-proxy-ca.key");
        let ext = Expiration::of_tree(&spec, &keyless, now);
        let fp = ext.authorities.iter().find(|e| e.name == "front-proxy-ca");
        assert_eq!(fp.map(|e| e.externally_managed), Some(true));
        // A file missing from the tree is reported missing, not read from disk.
        let mut partial = tree.clone();
        partial.remove("admin.conf");
        let part = Expiration::of_tree(&spec, &partial, now);
        assert_eq!(
            part.missing().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["admin.conf"]
        );
        Ok(())
    }
}
