//! The air-gapped flow: the CA set (the three CAs and the service-account key pair) is made on
//! one machine and stored as PEM text; another machine makes a control-plane node's files from
//! that stored material, in memory, reusing the CAs and signing with them.
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example node_from_stored_cas
//! ```
//!
//! Nothing is written to disk. The same body runs in the test suite
//! (`cargo test -p kubepki-kubeadm --example node_from_stored_cas`).

use std::path::PathBuf;

use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{CertId, ClusterSpec, Plan, Selection, Tree, build};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A spec for node `name` of the cluster behind `cp.example.test` (kubeadm adds control-plane
/// nodes only to a cluster with a controlPlaneEndpoint). Its folders are named, never used.
fn node_spec(name: &str, address: [u8; 4]) -> ClusterSpec {
    let folder = PathBuf::from("/nonexistent/kubepki-example").join(name);
    let mut spec = ClusterSpec::with_advertise_address(address.into());
    spec.node_name = Some(name.into());
    spec.control_plane_endpoint = Some("cp.example.test:6443".into());
    spec.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    spec.cert_dir = folder.join("pki");
    spec.kubeconfig_dir = folder;
    spec
}

/// Machine A: only the CA set (CAs and sa keys), stored as one JSON document of PEM text.
fn make_ca_set(now: OffsetDateTime) -> Result<Zeroizing<String>, kubepki_kubeadm::Error> {
    let plan = Plan::new(&node_spec("cp1", [192, 0, 2, 10]))?;
    let mut only_cas = Selection::none();
    only_cas.certs = vec![CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa];
    only_cas.sa = true;
    let applied = build(&plan, &only_cas, &Tree::new(), now)?;
    applied.files.to_json()
}

/// Machine B: node `cp2`'s files from the stored CA set. Returns the stored set (as read back)
/// and what was made for the node.
fn node_from_store(
    stored: &str,
    now: OffsetDateTime,
) -> Result<(Tree, Tree), kubepki_kubeadm::Error> {
    let cas = Tree::from_json(stored)?;
    let plan = Plan::new(&node_spec("cp2", [192, 0, 2, 11]))?;
    let applied = build(&plan, &Selection::all(), &cas, now)?;
    Ok((cas, applied.files))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = OffsetDateTime::now_utc();
    let stored = make_ca_set(now)?;
    let (cas, node) = node_from_store(&stored, now)?;
    eprintln!("stored CA set: {} files", cas.len());
    for f in node.files() {
        println!("{:04o} {}", f.mode, f.path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_ca::{Certificate, CertificateAuthority};
    use kubepki_csr::ExtKeyUsage;

    #[test]
    fn the_second_node_is_signed_by_the_stored_cas() -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let stored = make_ca_set(now)?;
        let (cas, node) = node_from_store(&stored, now)?;
        let paths: Vec<&str> = cas.files().map(|f| f.path.as_str()).collect();
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
                "pki/sa.pub"
            ]
        );

        // The CA set is reused, not remade: none of its files is among the node's new files.
        for f in cas.files() {
            assert!(node.get(&f.path).is_none(), "{} was made again", f.path);
        }
        // The node's leaves and kubeconfigs are new.
        assert_eq!(node.len(), 7 * 2 + 5);

        let cert = |t: &Tree, p: &str| -> Result<Certificate, Box<dyn std::error::Error>> {
            Ok(Certificate::from_pem(&t.get(p).ok_or(p.to_owned())?.bytes)?)
        };
        let ca = CertificateAuthority::from_certificate(cert(&cas, "pki/ca.crt")?)?;
        let etcd_ca = CertificateAuthority::from_certificate(cert(&cas, "pki/etcd/ca.crt")?)?;
        let proxy_ca =
            CertificateAuthority::from_certificate(cert(&cas, "pki/front-proxy-ca.crt")?)?;

        let apiserver = cert(&node, "pki/apiserver.crt")?;
        ca.verify(&apiserver, Some(&ExtKeyUsage::ServerAuth), now)?;
        let san = apiserver.subject_alt_names();
        assert!(san.dns.iter().any(|d| d == "cp2"), "{:?}", san.dns);
        assert!(
            san.dns.iter().any(|d| d == "cp.example.test"),
            "{:?}",
            san.dns
        );
        assert!(san.ips.contains(&[192, 0, 2, 11].into()), "{:?}", san.ips);
        assert!(!san.dns.iter().any(|d| d == "cp1"), "{:?}", san.dns);

        let etcd_server = cert(&node, "pki/etcd/server.crt")?;
        etcd_ca.verify(&etcd_server, Some(&ExtKeyUsage::ServerAuth), now)?;
        assert_eq!(etcd_server.common_name(), Some("cp2"));
        proxy_ca.verify(
            &cert(&node, "pki/front-proxy-client.crt")?,
            Some(&ExtKeyUsage::ClientAuth),
            now,
        )?;

        // admin.conf embeds the stored cluster CA and a client certificate it signed.
        let admin = kubepki_kubeadm::Kubeconfig::from_slice(
            std::path::Path::new("admin.conf"),
            &node.get("admin.conf").ok_or("admin.conf")?.bytes,
        )?;
        let path = std::path::Path::new("admin.conf");
        assert_eq!(
            admin.current_ca_pem(path)?,
            cas.get("pki/ca.crt").ok_or("ca")?.bytes.to_vec()
        );
        let client = Certificate::from_pem(
            &admin
                .current_client_cert_pem(path)?
                .ok_or("no client cert")?,
        )?;
        ca.verify(&client, Some(&ExtKeyUsage::ClientAuth), now)?;
        Ok(())
    }
}
