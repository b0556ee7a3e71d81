//! A Rust program that gives a user access to a cluster: a client certificate and kubeconfig
//! issued offline by the cluster CA (`client_credentials`, `user_kubeconfig`), and the online
//! alternative, a `CertificateSigningRequest` manifest for the user (`user_request`) signed the
//! way kube-controller-manager signs it (`kubepki_ca::sign_request`).
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example user_credentials
//! ```
//!
//! The CA is made in memory for the example; an installer would load its own
//! (`CertificateAuthority::load`). The kubeconfig holds the user's private key and is not
//! printed. The same body runs in the test suite
//! (`cargo test -p kubepki-kubeadm --example user_credentials`).

use kubepki_ca::{CaExpiry, CaSpec, CertificateAuthority, Window, rfc3339, sign_request};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{ClusterAccess, UserSpec, client_credentials, user_kubeconfig, user_request};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// What the program hands out.
struct Handed {
    ca: CertificateAuthority,
    /// `jane`'s kubeconfig (certificate and key embedded).
    kubeconfig: Zeroizing<String>,
    /// `bob`'s key (kept by bob) and his CSR manifest after signing, as YAML.
    bob_key: PrivateKey,
    bob_signed_manifest: String,
}

fn hand_out(now: OffsetDateTime) -> Result<Handed, Box<dyn std::error::Error>> {
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::days(3650)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?;

    // Offline: jane in the group `dev`, for 24 hours.
    let jane = UserSpec {
        name: "jane".into(),
        groups: vec!["dev".into()],
    };
    let (cert, key) = client_credentials(
        &ca,
        &jane.subject()?,
        KeyAlgorithm::EcdsaP256,
        Window::kubeadm(now, Duration::hours(24)),
        CaExpiry::Refuse,
    )?;
    let cluster = ClusterAccess {
        cluster_name: "kubernetes".into(),
        server: "https://cp.example.test:6443".into(),
    };
    let kubeconfig = user_kubeconfig(
        &cluster,
        std::slice::from_ref(ca.certificate()),
        &cert,
        &key,
    )?;

    // Online: bob's CSR manifest (what `kubectl apply -f` takes), signed as the
    // kube-apiserver-client signer would, for 12 hours, and written back into its status.
    let bob = UserSpec {
        name: "bob".into(),
        groups: vec!["ops".into()],
    };
    let (bob_key, _csr, mut manifest) = user_request(&bob, KeyAlgorithm::EcdsaP256, None)?;
    let bob_cert = sign_request(&ca, &manifest, Duration::hours(12), now)?;
    manifest.set_issued(
        &bob_cert.to_pem(),
        "user_credentials example",
        &rfc3339(now),
    );
    let bob_signed_manifest = manifest.to_yaml()?;
    Ok(Handed {
        ca,
        kubeconfig,
        bob_key,
        bob_signed_manifest,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let h = hand_out(OffsetDateTime::now_utc())?;
    eprintln!(
        "signed by {}; jane: a kubeconfig of {} bytes (secret, not printed); bob keeps his {} key; bob's signed request:",
        h.ca.certificate().display_name(),
        h.kubeconfig.len(),
        h.bob_key.algorithm().name()
    );
    print!("{}", h.bob_signed_manifest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_ca::Certificate;
    use kubepki_csr::ExtKeyUsage;
    use kubepki_csr::KubeCsr;
    use kubepki_kubeadm::Kubeconfig;
    use std::path::Path;

    #[test]
    fn both_users_are_signed_by_the_cluster_ca() -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let h = hand_out(now)?;

        // jane's kubeconfig parses back; its CA is the cluster CA, its client certificate is
        // jane in `dev`, signed by that CA, valid for 24 hours, and matches the embedded key.
        let path = Path::new("jane.conf");
        let kc = Kubeconfig::from_slice(path, h.kubeconfig.as_bytes())?;
        assert_eq!(kc.current_context, "jane@kubernetes");
        let (cluster, _) = kc.current(path)?;
        assert_eq!(cluster.cluster.server, "https://cp.example.test:6443");
        assert_eq!(
            kc.current_ca_pem(path)?,
            h.ca.certificate().to_pem().into_bytes()
        );
        let cert = Certificate::from_pem(&kc.current_client_cert_pem(path)?.ok_or("no cert")?)?;
        assert_eq!(cert.common_name(), Some("jane"));
        assert_eq!(cert.organizations(), ["dev"]);
        h.ca.verify(&cert, Some(&ExtKeyUsage::ClientAuth), now)?;
        assert!(cert.not_after() - now <= Duration::hours(24));
        let key = PrivateKey::from_pem(&kc.current_client_key_pem(path)?.ok_or("no key")?)?;
        assert_eq!(key.public_key_der(), cert.public_key_der());

        // bob's manifest parses back with the issued certificate in its status.
        let manifest = KubeCsr::from_slice(h.bob_signed_manifest.as_bytes())?;
        assert_eq!(
            manifest.spec.signer_name,
            "kubernetes.io/kube-apiserver-client"
        );
        let issued = manifest.issued_certificate_pem()?.ok_or("not issued")?;
        let bob = Certificate::from_pem(&issued)?;
        assert_eq!(bob.common_name(), Some("bob"));
        assert_eq!(bob.organizations(), ["ops"]);
        assert_eq!(bob.public_key_der(), h.bob_key.public_key_der());
        h.ca.verify(&bob, Some(&ExtKeyUsage::ClientAuth), now)?;
        // Signed once: the signer refuses to sign it again.
        assert!(sign_request(&h.ca, &manifest, Duration::hours(12), now).is_err());
        Ok(())
    }
}
