//! Every key, CSR and certificate kubepki makes, checked by OpenSSL and GnuTLS, and the exact
//! X.509 shape of kubeadm's CA and leaf profiles (docs/init.md, "Outputs").

use std::fs;
use std::path::Path;

use kubepki_ca::{CaExpiry, CaSpec, Certificate, CertificateAuthority, Profile, Window};
use kubepki_csr::{CsrBuilder, KeyUsage, Subject};
use kubepki_interop::{openssl_verify, openssl_verify_ok, run_ok};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;

fn write(dir: &Path, name: &str, data: &[u8]) -> R {
    fs::write(dir.join(name), data)?;
    Ok(())
}

fn ca(
    alg: KeyAlgorithm,
    now: OffsetDateTime,
) -> Result<CertificateAuthority, Box<dyn std::error::Error>> {
    Ok(CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(alg)?,
    )?)
}

#[test]
fn every_algorithm_is_accepted_by_openssl_and_gnutls() -> R {
    let now = OffsetDateTime::now_utc();
    for alg in KeyAlgorithm::ALL {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let ca = ca(alg, now)?;
        write(d, "ca.crt", ca.certificate().to_pem().as_bytes())?;
        let key = PrivateKey::generate(alg)?;
        write(d, "leaf.key", key.to_pem()?.as_bytes())?;
        write(d, "leaf.pub", key.public_key_pem().as_bytes())?;
        let csr = CsrBuilder::new(Subject::cn("node1").with_organizations(["system:nodes"]))
            .dns("node1")
            .dns("localhost")
            .ip("127.0.0.1".parse()?)
            .ip("::1".parse()?)
            .sign(&key)?;
        write(d, "leaf.csr", csr.to_pem().as_bytes())?;

        // The key parses in OpenSSL and has the public key we say it has.
        run_ok(d, "openssl", &["pkey", "-in", "leaf.key", "-noout"])?;
        let pubout = run_ok(d, "openssl", &["pkey", "-in", "leaf.key", "-pubout"])?;
        assert_eq!(pubout, key.public_key_pem(), "{alg}");
        // The CSR's self-signature verifies in OpenSSL.
        let v = run_ok(
            d,
            "openssl",
            &["req", "-in", "leaf.csr", "-verify", "-noout"],
        )?;
        assert!(v.contains("verify OK"), "{alg}: {v}");

        for (profile, purposes) in [
            (Profile::Client, &["sslclient"][..]),
            (Profile::Server, &["sslserver"][..]),
            (Profile::Peer, &["sslclient", "sslserver"][..]),
        ] {
            let cert = ca.issue_from_csr(
                &csr,
                profile,
                Window::kubeadm(now, Duration::hours(8760)),
                CaExpiry::Refuse,
            )?;
            let name = format!("{}.crt", profile.name());
            write(d, &name, cert.to_pem().as_bytes())?;
            for p in purposes {
                let out = openssl_verify_ok(d, p, "ca.crt", &name)?;
                assert!(out.contains(": OK"), "{alg} {p}: {out}");
            }
            // The wrong purpose is refused.
            if profile == Profile::Client {
                let o = openssl_verify(d, "sslserver", "ca.crt", &name)?;
                assert!(!o.ok, "{alg}: a client cert passed as server");
            }
            // GnuTLS, a second independent implementation.
            let chain = format!("{}{}", cert.to_pem(), ca.certificate().to_pem());
            write(d, "chain.pem", chain.as_bytes())?;
            let out = run_ok(d, "certtool", &["--verify-chain", "--infile", "chain.pem"])?;
            assert!(
                out.contains("Chain verification output: Verified"),
                "{alg}: {out}"
            );
            let out = run_ok(
                d,
                "certtool",
                &[
                    "--verify",
                    "--load-ca-certificate",
                    "ca.crt",
                    "--infile",
                    &name,
                ],
            )?;
            assert!(out.contains("Verified"), "{alg}: {out}");
        }
    }
    Ok(())
}

#[test]
fn openssl_made_csrs_are_signed_and_verified() -> R {
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let ca = ca(KeyAlgorithm::Rsa3072, now)?;
    write(d, "ca.crt", ca.certificate().to_pem().as_bytes())?;
    run_ok(
        d,
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "u.key",
        ],
    )?;
    run_ok(
        d,
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "u.key",
            "-subj",
            "/O=dev/O=ops/CN=jane",
            "-out",
            "u.csr",
        ],
    )?;
    let csr = kubepki_csr::Csr::from_pem(&fs::read(d.join("u.csr"))?)?;
    let cert = ca.issue_from_csr(
        &csr,
        Profile::Client,
        Window::kubeadm(now, Duration::hours(24)),
        CaExpiry::Refuse,
    )?;
    write(d, "u.crt", cert.to_pem().as_bytes())?;
    openssl_verify_ok(d, "sslclient", "ca.crt", "u.crt")?;
    // The certificate carries OpenSSL's key: OpenSSL says key and certificate match.
    let a = run_ok(d, "openssl", &["x509", "-in", "u.crt", "-noout", "-pubkey"])?;
    let b = run_ok(d, "openssl", &["pkey", "-in", "u.key", "-pubout"])?;
    assert_eq!(a, b);
    let subj = run_ok(
        d,
        "openssl",
        &[
            "x509", "-in", "u.crt", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    )?;
    assert!(
        subj.contains("CN=jane") && subj.contains("O=dev") && subj.contains("O=ops"),
        "{subj}"
    );
    Ok(())
}

/// Extension (OID, critical) pairs in encoded order.
fn ext_order(c: &Certificate) -> Vec<(String, bool)> {
    c.extensions()
        .all
        .iter()
        .map(|(o, crit)| (o.to_string(), *crit))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ca_and_leaf_have_kubeadms_exact_shape() -> R {
    let now = OffsetDateTime::from_unix_timestamp(1_790_000_000)?; // fixed "now"
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::Rsa2048)?,
    )?;
    let c = ca.certificate();
    let s = |o: &str, crit: bool| (o.to_owned(), crit);
    assert_eq!(
        ext_order(c),
        [
            s("2.5.29.15", true),
            s("2.5.29.19", true),
            s("2.5.29.14", false),
            s("2.5.29.17", false)
        ]
    );
    assert_eq!(c.version(), 3);
    assert!(c.is_self_issued());
    assert_eq!(c.key_usage(), Some(kubepki_ca::CA_KEY_USAGE));
    assert!(
        contains(c.to_der(), &[0x03, 0x02, 0x02, 0xa4]),
        "KU bits digitalSignature+keyEncipherment+keyCertSign"
    );
    assert!(
        contains(c.to_der(), &[0x30, 0x03, 0x01, 0x01, 0xff]),
        "CA:TRUE without pathLen"
    );
    assert_eq!(c.subject_alt_names().dns, ["kubernetes"]);
    assert_eq!(c.authority_key_id(), None);
    assert_eq!(c.subject_key_id().map(<[u8]>::len), Some(20));
    assert_eq!(
        c.subject_key_id().map(<[u8]>::to_vec),
        Some(kubepki_ca::KeyIdMethod::Sha1.key_id(c.public_key_der())?)
    );
    assert_eq!(c.not_before(), now - Duration::minutes(5));
    assert_eq!(c.not_after(), now + Duration::hours(87600));
    let serial = c.serial();
    assert!(!serial.is_empty() && serial.len() <= 8 && serial[0] & 0x80 == 0);

    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let csr = CsrBuilder::new(Subject::cn("cp1"))
        .dns("cp1")
        .ip("10.96.0.1".parse()?)
        .ip("2001:db8::10".parse()?)
        .sign(&key)?;
    let leaf = ca.issue_from_csr(
        &csr,
        Profile::Peer,
        Window::kubeadm(now, Duration::hours(8760)),
        CaExpiry::Refuse,
    )?;
    assert_eq!(
        ext_order(&leaf),
        [
            s("2.5.29.15", true),
            s("2.5.29.37", false),
            s("2.5.29.19", true),
            s("2.5.29.35", false),
            s("2.5.29.17", false)
        ]
    );
    assert_eq!(
        leaf.key_usage(),
        Some(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT)
    );
    assert!(
        contains(leaf.to_der(), &[0x03, 0x02, 0x05, 0xa0]),
        "KU bits digitalSignature+keyEncipherment"
    );
    assert!(
        contains(leaf.to_der(), &[0x30, 0x00]),
        "CA:FALSE as an empty SEQUENCE"
    );
    // EKU: serverAuth then clientAuth.
    assert!(contains(
        leaf.to_der(),
        &[
            0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01, 0x06, 0x08,
            0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
        ]
    ));
    assert_eq!(leaf.authority_key_id(), c.subject_key_id());
    assert_eq!(leaf.subject_key_id(), None);
    // IPv4 as 4 bytes, IPv6 as 16.
    assert!(contains(leaf.to_der(), &[0x87, 0x04, 10, 96, 0, 1]));
    assert!(contains(
        leaf.to_der(),
        &[0x87, 0x10, 0x20, 0x01, 0x0d, 0xb8]
    ));
    assert_eq!(leaf.not_before(), now - Duration::minutes(5));
    assert_eq!(
        leaf.signature_algorithm().to_string(),
        "1.2.840.113549.1.1.11",
        "signed by the RSA CA"
    );
    Ok(())
}
