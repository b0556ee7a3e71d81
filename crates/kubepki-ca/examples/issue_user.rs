//! Issue a Kubernetes user's client certificate from a CA made in memory.
//!
//! Kubernetes reads a client certificate as an identity: the CN is the user name and each O is
//! a group. This makes a throwaway cluster CA (nothing is written to disk), issues `jane` in
//! the groups `dev` and `ops` for 24 hours, and prints the user's certificate as PEM on standard output. The
//! private keys stay in memory and are never printed.
//!
//! ```sh
//! cargo run -p kubepki-ca --example issue_user | openssl x509 -noout -subject
//! ```
//!
//! The same body runs in the test suite (`cargo test -p kubepki-ca --example issue_user`).

use kubepki_ca::{CaExpiry, CaSpec, Certificate, CertificateAuthority, IssueSpec, Window};
use kubepki_csr::{ExtKeyUsage, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

/// The cluster CA (kubeadm's profile, 10 years) and `jane`'s client certificate in `dev` and
/// `ops`, valid for 24 hours. The user's private key is returned for the caller to store.
fn issue_user(
    now: OffsetDateTime,
) -> Result<(CertificateAuthority, Certificate, PrivateKey), kubepki_ca::Error> {
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?;
    let user_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let spec = IssueSpec::new(
        Subject::cn("jane").with_organizations(["dev", "ops"]),
        user_key.public_key_der(),
        Window::kubeadm(now, Duration::hours(24)),
        CaExpiry::Refuse,
    )
    .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]);
    let cert = ca.issue(&spec)?;
    Ok((ca, cert, user_key))
}

fn main() -> Result<(), kubepki_ca::Error> {
    let (ca, cert, _user_key) = issue_user(OffsetDateTime::now_utc())?;
    eprintln!(
        "issued {} (groups as O), signed by {}",
        cert.display_name(),
        ca.certificate().display_name()
    );
    print!("{}", cert.to_pem());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_user_certificate_carries_two_groups_and_verifies()
    -> Result<(), Box<dyn std::error::Error>> {
        let now = OffsetDateTime::now_utc();
        let (ca, cert, key) = issue_user(now)?;
        assert_eq!(cert.subject().common_name.as_deref(), Some("jane"));
        assert_eq!(cert.subject().organizations, ["dev", "ops"]);
        assert_eq!(cert.public_key_der(), key.public_key_der());
        ca.verify(&cert, Some(&ExtKeyUsage::ClientAuth), now)?;
        // The PEM the example prints, checked by OpenSSL.
        let dir = tempfile::tempdir()?;
        let (ca_file, cert_file) = (dir.path().join("ca.crt"), dir.path().join("jane.crt"));
        std::fs::write(&ca_file, ca.certificate().to_pem())?;
        std::fs::write(&cert_file, cert.to_pem())?;
        let out = Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(&ca_file)
            .arg(&cert_file)
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}
