//! Telling failures apart by matching on error variants: a missing CA (absent, or present
//! without its key), an existing certificate whose SANs are not the plan's, and bytes that are
//! not PEM. Everything happens in memory.
//!
//! How each one comes back:
//! - a CA that is absent when a leaf it signs is asked for: `Error::MissingFile` naming the CA
//!   file; a CA certificate without its key (external CA mode) and leaves it must sign:
//!   `Error::ExternalCaIncomplete`; signing directly with a CA that has no key:
//!   `kubepki_ca::Error::NoCaKey` (inside `Error::Ca` when it comes through this crate);
//! - a SAN mismatch: `Error::NotReusable` for that file, with a `RuleFailure` for `Rule::Sans`
//!   naming the extra and missing SANs; several files that cannot be reused come together as
//!   `Error::Unusable` (`Error::problems` walks them);
//! - bad PEM: `kubepki_ca::Error::NoCertificate` from `Certificate::from_pem`, and
//!   `Error::Malformed` for the file (with that error as its source) when it is part of a tree.
//!
//! ```sh
//! cargo run -p kubepki-kubeadm --example error_variants
//! ```
//!
//! The same body runs in the test suite (`cargo test -p kubepki-kubeadm --example error_variants`).

use kubepki_ca::{Certificate, CertificateAuthority, Window};
use kubepki_csr::Subject;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    CertId, ClusterSpec, Error, Plan, Rule, Selection, Tree, build, client_credentials, decide,
};
use time::{Duration, OffsetDateTime};

/// Where the plans' files would be; nothing is read or written there.
const FOLDER: &str = "/nonexistent/kubepki-example";

fn plan(node: &str) -> Result<Plan, Error> {
    let mut spec = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    spec.node_name = Some(node.into());
    spec.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    spec.cert_dir = format!("{FOLDER}/pki").into();
    spec.kubeconfig_dir = FOLDER.into();
    Plan::new(&spec)
}

/// The failures, one per case, as the library returns them.
struct Failures {
    ca_absent: Error,
    ca_keyless: Error,
    ca_keyless_signing: Error,
    san_mismatch: Error,
    bad_pem_bytes: kubepki_ca::Error,
    bad_pem_in_tree: Error,
}

fn provoke(now: OffsetDateTime) -> Result<Failures, Box<dyn std::error::Error>> {
    let cp1 = plan("cp1")?;
    let full = build(&cp1, &Selection::all(), &Tree::new(), now)?.files;
    let ca_pem = full.get("pki/ca.crt").ok_or("ca.crt")?.bytes.to_vec();
    let mut only_apiserver = Selection::none();
    only_apiserver.certs = vec![CertId::Apiserver];
    let unexpected = |what: &str| format!("{what}: expected an error");

    // The API server certificate without its CA.
    let ca_absent = decide(&cp1, &only_apiserver, &Tree::new(), now)
        .err()
        .ok_or(unexpected("ca_absent"))?;
    // ... with the CA certificate but not its key.
    let mut keyless = Tree::new();
    keyless.insert_file("pki/ca.crt", ca_pem.clone())?;
    let ca_keyless = decide(&cp1, &only_apiserver, &keyless, now)
        .err()
        .ok_or(unexpected("ca_keyless"))?;
    let ca = CertificateAuthority::from_certificate(Certificate::from_pem(&ca_pem)?)?;
    let ca_keyless_signing = client_credentials(
        &ca,
        &Subject::cn("jane"),
        KeyAlgorithm::EcdsaP256,
        Window::kubeadm(now, Duration::hours(1)),
        kubepki_ca::CaExpiry::Refuse,
    )
    .err()
    .ok_or(unexpected("ca_keyless_signing"))?;

    // cp1's tree offered to node cp2: its serving certificates name cp1.
    let san_mismatch = decide(&plan("cp2")?, &Selection::all(), &full, now)
        .err()
        .ok_or(unexpected("san_mismatch"))?;

    // Bytes that are not PEM.
    let bad_pem_bytes = Certificate::from_pem(b"not a certificate")
        .err()
        .ok_or(unexpected("bad_pem_bytes"))?;
    let mut broken = full.clone();
    broken.insert_file("pki/ca.crt", b"not a certificate".to_vec())?;
    let bad_pem_in_tree = decide(&cp1, &Selection::all(), &broken, now)
        .err()
        .ok_or(unexpected("bad_pem_in_tree"))?;

    Ok(Failures {
        ca_absent,
        ca_keyless,
        ca_keyless_signing,
        san_mismatch,
        bad_pem_bytes,
        bad_pem_in_tree,
    })
}

/// What an embedder would do with each: a short classification by variant.
fn classify(e: &Error) -> &'static str {
    match e {
        Error::MissingFile { .. } => "missing file",
        Error::NotReusable { failures, .. } if failures.iter().any(|f| f.rule == Rule::Sans) => {
            "SAN mismatch"
        }
        Error::NotReusable { .. } => "not reusable",
        Error::Malformed { .. } => "not PEM",
        Error::ExternalCaIncomplete { .. } => "CA without key",
        Error::Ca(kubepki_ca::Error::NoCaKey { .. }) => "CA without key",
        Error::Unusable { .. } => "several unusable files",
        _ => "other",
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let f = provoke(OffsetDateTime::now_utc())?;
    for (case, e) in [
        ("CA absent", &f.ca_absent),
        ("CA certificate without key", &f.ca_keyless),
        ("signing with a keyless CA", &f.ca_keyless_signing),
        ("another node's tree", &f.san_mismatch),
        ("bad PEM in a tree", &f.bad_pem_in_tree),
    ] {
        println!("{case}: {} — {e}", classify(e));
    }
    println!("bad PEM bytes: {}", f.bad_pem_bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_failure_has_its_variant() -> Result<(), Box<dyn std::error::Error>> {
        let f = provoke(OffsetDateTime::now_utc())?;
        let ca_crt = Path::new(FOLDER).join("pki/ca.crt");

        match &f.ca_absent {
            Error::MissingFile { path, reason } => {
                assert_eq!(path, &ca_crt);
                assert!(reason.starts_with("missing"), "{reason}");
            }
            e => return Err(format!("ca_absent: {e:?}").into()),
        }
        match &f.ca_keyless {
            Error::ExternalCaIncomplete { cas, missing } => {
                assert_eq!(cas, &[ca_crt.display().to_string()]);
                assert!(
                    missing.iter().any(|m| m.contains("apiserver.crt")),
                    "{missing:?}"
                );
            }
            e => return Err(format!("ca_keyless: {e:?}").into()),
        }
        assert!(
            matches!(&f.ca_keyless_signing, Error::Ca(kubepki_ca::Error::NoCaKey { subject }) if subject == "CN = kubernetes"),
            "{:?}",
            f.ca_keyless_signing
        );

        // Every file of cp1's tree that names the node is refused, each with its reason.
        let Error::Unusable { problems } = &f.san_mismatch else {
            return Err(format!("san_mismatch: {:?}", f.san_mismatch).into());
        };
        let apiserver = f
            .san_mismatch
            .problems()
            .find(|p| p.path().is_some_and(|p| p.ends_with("pki/apiserver.crt")))
            .ok_or("apiserver.crt not refused")?;
        let Error::NotReusable { failures, .. } = apiserver else {
            return Err(format!("apiserver.crt: {apiserver:?}").into());
        };
        let sans = failures
            .iter()
            .find(|f| f.rule == Rule::Sans)
            .ok_or("no SAN failure")?;
        assert!(sans.reason.contains("extra SAN DNS:cp1"), "{sans}");
        assert!(sans.reason.contains("missing SAN DNS:cp2"), "{sans}");
        assert_eq!(classify(apiserver), "SAN mismatch");
        assert!(problems.len() > 1, "{problems:?}");

        assert!(
            matches!(f.bad_pem_bytes, kubepki_ca::Error::NoCertificate { .. }),
            "{:?}",
            f.bad_pem_bytes
        );
        match &f.bad_pem_in_tree {
            Error::Malformed { path, source } => {
                assert_eq!(path, &ca_crt);
                assert!(
                    matches!(**source, Error::Ca(kubepki_ca::Error::NoCertificate { .. })),
                    "{source:?}"
                );
            }
            e => return Err(format!("bad_pem_in_tree: {e:?}").into()),
        }
        assert_eq!(classify(&f.ca_absent), "missing file");
        assert_eq!(classify(&f.ca_keyless), "CA without key");
        assert_eq!(classify(&f.bad_pem_in_tree), "not PEM");
        Ok(())
    }
}
