//! Certificates and a request made by Go's crypto/x509 (`tests/data/go-certs`, with the Go
//! program that made them) from the keys in `tests/data/keys`: given the same keys, serial,
//! window, names and extensions, kubepki writes the same bytes. Ed25519 signatures are
//! deterministic, so whole DER files compare; only the CA's serial (random in kubepki) differs.

use der::{Decode, Encode};
use kubepki_ca::{CaExpiry, KeyIdMethod};
use kubepki_ca::{CaSpec, Certificate, CertificateAuthority, IssueSpec, Window};
use kubepki_csr::{CsrBuilder, ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::PrivateKey;
use time::macros::datetime;

type R = Result<(), Box<dyn std::error::Error>>;

fn data(path: &str) -> Result<Vec<u8>, std::io::Error> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data")
            .join(path),
    )
}

fn ca_key() -> Result<PrivateKey, Box<dyn std::error::Error>> {
    Ok(PrivateKey::from_pem(&data("keys/ed25519-pkcs8.key")?)?)
}

#[test]
fn a_leaf_is_byte_for_byte_what_go_writes() -> R {
    let ca =
        CertificateAuthority::from_certificate(Certificate::from_der(&data("go-certs/ca.der")?)?)?
            .with_key(ca_key()?)?;
    let leaf_key = PrivateKey::from_pem(&data("keys/p256-pkcs8.key")?)?;
    let mut subject =
        Subject::cn("jane").with_organizations(["system:masters", "dev", "a*b", "Ölmühle"]);
    subject.organizational_units = vec!["ops".into()];
    subject.countries = vec!["DE".into()];
    subject.provinces = vec!["Berlin".into()];
    subject.localities = vec!["Berlin_Mitte".into()];
    let san = SubjectAltNames {
        dns: vec!["jane.example.com".into(), "*.jane.example.com".into()],
        emails: vec!["jane@example.com".into()],
        ips: vec!["10.96.0.1".parse()?, "fd00::1".parse()?],
        uris: vec!["spiffe://cluster.local/ns/default/sa/jane".into()],
        others: Vec::new(),
    };
    let window = Window::new(
        datetime!(2049-12-31 23:55:00 UTC),
        datetime!(2050-12-31 23:59:59 UTC),
    );
    let mut spec = IssueSpec::new(subject, leaf_key.public_key_der(), window, CaExpiry::Refuse)
        .with_ext_key_usage(vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth])
        .with_subject_alt_names(san);
    spec.serial = Some(vec![0x80, 1, 2, 3, 4, 5, 6, 7]);
    let cert = ca.issue(&spec)?;
    assert_eq!(cert.to_der(), data("go-certs/leaf.der")?);
    Ok(())
}

#[test]
fn a_ca_is_what_go_writes_but_for_its_random_serial() -> R {
    let go = data("go-certs/ca.der")?;
    let spec = CaSpec {
        subject: Subject::cn("kubernetes"),
        window: Window::new(
            datetime!(2026-01-01 00:00:00 UTC),
            datetime!(2060-01-01 00:00:00 UTC),
        ),
        path_len: None,
        key_id: KeyIdMethod::Sha1,
    };
    let ours = CertificateAuthority::create_root(&spec, ca_key()?)?;
    let ours = x509_cert::Certificate::from_der(ours.certificate().to_der())?;
    let go = x509_cert::Certificate::from_der(&go)?;
    let (a, b) = (ours.tbs_certificate(), go.tbs_certificate());
    assert_eq!(a.signature().to_der()?, b.signature().to_der()?);
    assert_eq!(a.issuer().to_der()?, b.issuer().to_der()?);
    assert_eq!(a.validity().to_der()?, b.validity().to_der()?);
    assert_eq!(a.subject().to_der()?, b.subject().to_der()?);
    assert_eq!(
        a.subject_public_key_info().to_der()?,
        b.subject_public_key_info().to_der()?
    );
    assert_eq!(
        a.extensions().cloned().to_der()?,
        b.extensions().cloned().to_der()?
    );
    assert!(a.extensions().is_some_and(|e| e.len() == 4));
    assert_ne!(a.serial_number(), b.serial_number());
    Ok(())
}

#[test]
fn a_request_is_byte_for_byte_what_go_writes() -> R {
    let csr = CsrBuilder::new(Subject::cn("system:node:n1").with_organizations(["system:nodes"]))
        .dns("n1.example.com")
        .ip("192.168.1.10".parse()?)
        .sign(&ca_key()?)?;
    assert_eq!(csr.to_der(), data("go-certs/request.der")?);
    Ok(())
}
