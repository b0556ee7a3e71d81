//! CA loading, intermediates, issuance refusals and verification failures.

use kubepki_ca::{
    CaExpiry, CaSpec, Certificate, CertificateAuthority, Error, IssueSpec, KeyIdMethod, Profile,
    Window,
};
use kubepki_csr::{BasicConstraints, CsrBuilder, ExtKeyUsage, KeyUsage, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

type R = Result<(), Error>;

fn root(cn: &str, now: OffsetDateTime) -> Result<CertificateAuthority, Error> {
    CertificateAuthority::create_root(
        &CaSpec::kubeadm(cn, now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )
}

fn leaf(ca: &CertificateAuthority, now: OffsetDateTime, p: Profile) -> Result<Certificate, Error> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let csr = CsrBuilder::new(Subject::cn("x")).sign(&key)?;
    ca.issue_from_csr(
        &csr,
        p,
        Window::kubeadm(now, Duration::hours(8760)),
        CaExpiry::Refuse,
    )
}

#[test]
fn load_checks_ca_flag_key_match_and_time() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = root("kubernetes", now)?;
    let pem = ca.certificate().to_pem();
    let key_pem = ca
        .key()
        .map(|k| k.to_pem())
        .transpose()?
        .unwrap_or_default();
    let loaded = CertificateAuthority::load(pem.as_bytes(), key_pem.as_bytes(), now)?;
    assert!(loaded.can_sign());

    let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?.to_pem()?;
    assert!(matches!(
        CertificateAuthority::load(pem.as_bytes(), other.as_bytes(), now),
        Err(Error::KeyMismatch { .. })
    ));
    let l = leaf(&ca, now, Profile::Client)?;
    assert!(matches!(
        CertificateAuthority::from_certificate(l),
        Err(Error::NotACa { .. })
    ));
    let later = now + Duration::hours(87601);
    assert!(matches!(
        CertificateAuthority::load(pem.as_bytes(), key_pem.as_bytes(), later),
        Err(Error::Expired { .. })
    ));
    // A keyless CA verifies but refuses to sign.
    let keyless = CertificateAuthority::from_certificate(ca.certificate().clone())?;
    assert!(matches!(
        leaf(&keyless, now, Profile::Client),
        Err(Error::NoCaKey { .. })
    ));
    Ok(())
}

#[test]
fn verify_reports_each_failure() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = root("kubernetes", now)?;
    let other = root("front-proxy-ca", now)?;
    let client = leaf(&ca, now, Profile::Client)?;
    ca.verify(&client, Some(&ExtKeyUsage::ClientAuth), now)?;
    assert!(matches!(
        ca.verify(&client, Some(&ExtKeyUsage::ServerAuth), now),
        Err(Error::UsageNotAllowed { .. })
    ));
    assert!(matches!(
        other.verify(&client, None, now),
        Err(Error::WrongIssuer { .. })
    ));
    // Same name, different key: the key identifier (or the signature) gives it away.
    let twin = root("kubernetes", now)?;
    assert!(matches!(
        twin.verify(&client, None, now),
        Err(Error::WrongIssuer { .. } | Error::BadSignature { .. })
    ));
    assert!(matches!(
        ca.verify(&client, None, now + Duration::hours(8761)),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        ca.verify(&client, None, now - Duration::hours(1)),
        Err(Error::NotYetValid { .. })
    ));
    Ok(())
}

#[test]
fn issuance_refusals_and_ca_expiry_choice() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("short", now, Duration::hours(10)),
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
    )?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let window = Window::kubeadm(now, Duration::hours(8760));
    let ca_req = CsrBuilder::new(Subject::cn("evil"))
        .basic_constraints(BasicConstraints {
            ca: true,
            path_len: None,
        })
        .sign(&key)?;
    assert!(matches!(
        ca.issue_from_csr(&ca_req, Profile::Client, window, CaExpiry::Clamp),
        Err(Error::CaPowersRequested {
            what: "CA:TRUE",
            ..
        })
    ));
    let certsign_req = CsrBuilder::new(Subject::cn("evil"))
        .key_usage(KeyUsage::KEY_CERT_SIGN)
        .sign(&key)?;
    assert!(matches!(
        ca.issue_from_csr(&certsign_req, Profile::Server, window, CaExpiry::Clamp),
        Err(Error::CaPowersRequested {
            what: "keyCertSign",
            ..
        })
    ));
    let only_san = CsrBuilder::new(Subject::default())
        .dns("a.example")
        .sign(&key)?;
    assert!(matches!(
        ca.issue_from_csr(&only_san, Profile::Server, window, CaExpiry::Clamp),
        Err(Error::EmptySubject)
    ));
    let ok = CsrBuilder::new(Subject::cn("x")).sign(&key)?;
    assert!(matches!(
        ca.issue_from_csr(&ok, Profile::Client, window, CaExpiry::Refuse),
        Err(Error::OutlivesCa { .. })
    ));
    let clamped = ca.issue_from_csr(&ok, Profile::Client, window, CaExpiry::Clamp)?;
    assert_eq!(clamped.not_after(), ca.certificate().not_after());
    let spec = IssueSpec::new(
        Subject::cn("x"),
        key.public_key_der(),
        Window::new(now, now),
        CaExpiry::Refuse,
    );
    assert!(matches!(ca.issue(&spec), Err(Error::InvalidWindow { .. })));
    Ok(())
}

#[test]
fn intermediate_chains_to_root() -> R {
    let now = OffsetDateTime::now_utc();
    let root = root("root", now)?;
    let spec = CaSpec {
        path_len: Some(0),
        ..CaSpec::kubeadm("intermediate", now, Duration::hours(8760))
    };
    let inter = CertificateAuthority::create_intermediate(
        &root,
        &spec,
        PrivateKey::generate(KeyAlgorithm::Rsa2048)?,
    )?;
    root.verify(inter.certificate(), None, now)?;
    assert_eq!(
        inter.certificate().authority_key_id(),
        root.certificate().subject_key_id()
    );
    assert_eq!(
        inter
            .certificate()
            .extensions()
            .basic_constraints
            .map(|b| b.0),
        Some(BasicConstraints {
            ca: true,
            path_len: Some(0)
        })
    );
    let l = leaf(&inter, now, Profile::Server)?;
    inter.verify(&l, Some(&ExtKeyUsage::ServerAuth), now)?;
    // A CA without keyCertSign cannot be used.
    let no_certsign = {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
        let spec = IssueSpec {
            key_usage: KeyUsage::DIGITAL_SIGNATURE,
            ..IssueSpec::new(
                Subject::cn("not-a-signer"),
                key.public_key_der(),
                Window::kubeadm(now, Duration::hours(1)),
                CaExpiry::Refuse,
            )
        };
        root.issue(&spec)?
    };
    assert!(matches!(
        CertificateAuthority::from_certificate(no_certsign),
        Err(Error::NotACa { .. })
    ));
    Ok(())
}

/// Both key-identifier methods against values Python's `cryptography` and hashlib computed
/// (tests/data/key-ids, with its script), and a CA carries the one its spec names: SHA-1 for
/// kubeadm up to 1.34, truncated SHA-256 (Go 1.25+) from 1.35.
#[test]
fn key_identifiers_match_independent_values() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let table = std::fs::read_to_string(data.join("key-ids/key-ids.txt"))?;
    let mut seen = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split(' ');
        let (Some(file), Some(sha1), Some(sha256), None) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(format!("bad line: {line}").into());
        };
        let pem = std::fs::read(data.join("keys").join(file))?;
        let key = PrivateKey::from_pem(&pem)?;
        let spki = key.public_key_der();
        assert_eq!(
            kubepki_keys::hex(&KeyIdMethod::Sha1.key_id(spki)?),
            sha1,
            "{file}"
        );
        assert_eq!(
            kubepki_keys::hex(&KeyIdMethod::Sha256Truncated.key_id(spki)?),
            sha256,
            "{file}"
        );
        for (method, want) in [
            (KeyIdMethod::Sha1, sha1),
            (KeyIdMethod::Sha256Truncated, sha256),
        ] {
            let spec = CaSpec {
                key_id: method,
                ..CaSpec::kubeadm("kubernetes", OffsetDateTime::now_utc(), Duration::days(1))
            };
            let ca = CertificateAuthority::create_root(&spec, PrivateKey::from_pem(&pem)?)?;
            let ski = ca.certificate().subject_key_id().map(kubepki_keys::hex);
            assert_eq!(ski.as_deref(), Some(want), "{file} {method:?}");
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
    Ok(())
}

#[test]
fn an_explicit_serial_is_a_minimal_positive_integer() -> R {
    let now = OffsetDateTime::now_utc();
    let ca = root("serials", now)?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    // No bytes is 0, as the writer before x509-cert and Go's big.Int write it (`02 01 00`),
    // never the empty INTEGER `02 00` DER forbids (and kubepki's reader refuses after signing).
    for (serial, want) in [
        (&[][..], "00"),
        (&[0][..], "00"),
        (&[0, 0, 1][..], "01"),
        (&[0xff, 1][..], "00ff01"),
    ] {
        let mut spec = IssueSpec::new(
            Subject::cn("x"),
            key.public_key_der(),
            Window::kubeadm(now, Duration::hours(1)),
            CaExpiry::Refuse,
        );
        spec.serial = Some(serial.to_vec());
        assert_eq!(ca.issue(&spec)?.serial_hex(), want, "{serial:02x?}");
    }
    Ok(())
}

#[test]
fn a_request_whose_only_san_is_an_other_name_gets_no_empty_san_extension() -> R {
    // An otherName is not copied (kubepki encodes DNS, email, IP and URI names only); the
    // certificate then carries no SubjectAltName, never an empty GeneralNames `30 00`
    // (RFC 5280 4.2.1.6: SIZE (1..MAX)), which OpenSSL shows as `<EMPTY>`.
    let now = OffsetDateTime::now_utc();
    let ca = root("others", now)?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let spec = IssueSpec::new(
        Subject::cn("jane"),
        key.public_key_der(),
        Window::kubeadm(now, Duration::hours(1)),
        CaExpiry::Refuse,
    )
    .with_subject_alt_names(kubepki_csr::SubjectAltNames {
        others: vec!["otherName".into()],
        ..Default::default()
    });
    let cert = ca.issue(&spec)?;
    assert_eq!(cert.extensions().subject_alt_names, None);
    Ok(())
}

/// Bytes that are not DER give a typed error that carries `der`'s error as its source, with the
/// message people saw before.
#[test]
fn undecodable_certificates_carry_ders_error() -> Result<(), Box<dyn std::error::Error>> {
    let e = kubepki_ca::Certificate::from_der(b"\x30\x03\x02\x01")
        .err()
        .ok_or("garbage decoded")?;
    assert!(
        matches!(&e, kubepki_ca::Error::Der { .. })
            || matches!(&e, kubepki_ca::Error::Csr(kubepki_csr::Error::Der { .. })),
        "{e:?}"
    );
    let mut source = std::error::Error::source(&e);
    let mut found = false;
    while let Some(s) = source {
        found |= s.downcast_ref::<der::Error>().is_some();
        source = s.source();
    }
    assert!(found, "no der::Error in the chain of {e}");
    assert!(e.to_string().starts_with("invalid certi"), "{e}");
    Ok(())
}
