//! Key round trips, foreign key formats (made by OpenSSL, see tests/data/make-vectors.sh) and
//! refusals.

use kubepki_keys::{Error, KeyAlgorithm, PrivateKey, generate_many, verify_signature};

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/data/keys/", $name)).as_slice()
    };
}

type R = Result<(), Error>;

#[test]
fn every_algorithm_round_trips_through_pem_and_signs() -> R {
    for alg in KeyAlgorithm::ALL {
        let key = PrivateKey::generate(alg)?;
        assert_eq!(key.algorithm(), alg);
        let pem = key.to_pem()?;
        let expected_label = match alg {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => "EC PRIVATE KEY",
            KeyAlgorithm::Ed25519 => "PRIVATE KEY",
            _ => "RSA PRIVATE KEY",
        };
        assert!(
            pem.starts_with(&format!("-----BEGIN {expected_label}-----\n")),
            "{alg}"
        );
        let back = PrivateKey::from_pem(pem.as_bytes())?;
        assert_eq!(back.public_key_der(), key.public_key_der(), "{alg}");
        assert_eq!(back.algorithm(), alg);
        let p8 = PrivateKey::from_pem(key.to_pkcs8_pem()?.as_bytes())?;
        assert_eq!(p8.public_key_der(), key.public_key_der());
        let msg = b"a TBSCertificate stand-in";
        let sig = key.sign(msg)?;
        verify_signature(
            back.public_key_der(),
            &key.signature_algorithm().oid(),
            msg,
            &sig,
        )?;
        assert!(matches!(
            verify_signature(
                key.public_key_der(),
                &key.signature_algorithm().oid(),
                b"other",
                &sig
            ),
            Err(Error::BadSignature)
        ));
        assert!(
            key.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        if let Some(bits) = alg.rsa_bits() {
            // RSA-N signature is N bits long.
            assert_eq!(sig.len() * 8, bits);
        }
    }
    Ok(())
}

#[test]
fn ec_key_is_sec1_with_named_curve_and_public_key() -> R {
    // SEC1 ECPrivateKey: SEQUENCE { 1, OCTET STRING, [0] OID, [1] BIT STRING }.
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let der = key.to_der()?;
    let p256_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    assert!(der.windows(p256_oid.len()).any(|w| w == p256_oid));
    assert!(
        der.windows(2).any(|w| w == [0xa1, 0x44]),
        "public key [1] present"
    );
    Ok(())
}

#[test]
fn reads_keys_written_by_openssl() -> R {
    let cases: [(&[u8], KeyAlgorithm); 7] = [
        (vector!("rsa2048-pkcs1.key"), KeyAlgorithm::Rsa2048),
        (vector!("rsa2048-pkcs8.key"), KeyAlgorithm::Rsa2048),
        (vector!("p256-with-params.key"), KeyAlgorithm::EcdsaP256),
        (vector!("p256-pkcs8.key"), KeyAlgorithm::EcdsaP256),
        (vector!("p384-pkcs8.key"), KeyAlgorithm::EcdsaP384),
        (vector!("p384-sec1.key"), KeyAlgorithm::EcdsaP384),
        (vector!("ed25519-pkcs8.key"), KeyAlgorithm::Ed25519),
    ];
    for (pem, alg) in cases {
        let key = PrivateKey::from_pem(pem)?;
        assert_eq!(key.algorithm(), alg);
    }
    // PKCS#1 and PKCS#8 forms of one key have one public key, equal to OpenSSL's `-pubout`.
    let a = PrivateKey::from_pem(vector!("rsa2048-pkcs1.key"))?;
    let b = PrivateKey::from_pem(vector!("rsa2048-pkcs8.key"))?;
    assert_eq!(a.public_key_der(), b.public_key_der());
    assert_eq!(a.public_key_pem().as_bytes(), vector!("rsa2048.pub"));
    let c = PrivateKey::from_der(vector!("rsa2048-pkcs8.der"))?;
    assert_eq!(c.public_key_der(), a.public_key_der());
    // Re-encoding OpenSSL's PKCS#1 key gives OpenSSL's bytes back.
    assert_eq!(a.to_pem()?.as_bytes(), vector!("rsa2048-pkcs1.key"));
    Ok(())
}

#[test]
fn refusals_are_typed() {
    let err = |pem: &[u8]| PrivateKey::from_pem(pem).err();
    assert!(matches!(
        err(vector!("rsa1024-pkcs1.key")),
        Some(Error::RsaTooSmall { bits: 1024 })
    ));
    assert!(matches!(
        err(vector!("rsa2048-encrypted-pkcs8.key")),
        Some(Error::EncryptedKey)
    ));
    assert!(matches!(
        err(vector!("rsa2048-legacy-encrypted.key")),
        Some(Error::EncryptedKey)
    ));
    assert!(
        matches!(err(vector!("p521-pkcs8.key")), Some(Error::UnsupportedCurve(Some(c))) if c.to_string() == "1.3.132.0.35")
    );
    assert!(matches!(
        err(vector!("ed448-pkcs8.key")),
        Some(Error::UnsupportedKeyType(_))
    ));
    assert!(matches!(
        err(vector!("rsa2048-truncated.key")),
        Some(Error::Pem(kubepki_keys::PemProblem::NoEnd { .. }))
    ));
    assert!(
        matches!(err(vector!("cert-not-a-key.crt")), Some(Error::NoPrivateKey { found }) if found == "\"CERTIFICATE\"")
    );
    assert!(matches!(err(b"hello"), Some(Error::NoPemBlock)));
    assert!(matches!(
        err(b"-----BEGIN RSA PRIVATE KEY-----\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n"),
        Some(Error::Der { .. })
    ));
    assert!(matches!(
        PrivateKey::from_der(&[0x30, 0x03, 1, 2, 3]),
        Err(Error::Der { .. })
    ));
    let huge = vec![b'A'; (1 << 20) + 1];
    assert!(matches!(err(&huge), Some(Error::TooLarge { .. })));
}

#[test]
fn debug_and_errors_never_show_key_material() -> R {
    let key = PrivateKey::from_pem(vector!("rsa2048-pkcs1.key"))?;
    let dbg = format!("{key:?} {key}");
    let pem = key.to_pem()?;
    let body_line = pem.lines().nth(1).unwrap_or_default();
    assert!(!dbg.contains(body_line));
    assert!(dbg.contains("Rsa2048"));
    Ok(())
}

#[test]
fn generate_many_keeps_order_and_uses_distinct_keys() -> R {
    let algs = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
    ];
    let keys = generate_many(&algs)?;
    assert_eq!(keys.iter().map(|k| k.algorithm()).collect::<Vec<_>>(), algs);
    assert_ne!(keys[1].public_key_der(), keys[4].public_key_der());
    Ok(())
}

#[test]
fn signature_algorithm_mismatch_is_reported() -> R {
    let rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048)?;
    let ec = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let sig = ec.sign(b"m")?;
    assert!(matches!(
        verify_signature(
            rsa.public_key_der(),
            &ec.signature_algorithm().oid(),
            b"m",
            &sig
        ),
        Err(Error::SignatureAlgorithmMismatch { .. })
    ));
    Ok(())
}

/// Every level of `e`'s source chain, as a caller walking it (`anyhow`'s `{:#}`, a log's
/// "caused by") would show it, holds no control or bidirectional formatting character.
fn chain_is_escaped(e: &(dyn std::error::Error + 'static)) -> Result<(), String> {
    let mut level = Some(e);
    let mut depth = 0;
    while let Some(l) = level {
        let text = l.to_string();
        if kubepki_keys::has_unsafe_chars(&text) {
            return Err(format!("level {depth} of {e}: {text:?}"));
        }
        level = l.source();
        depth += 1;
    }
    Ok(())
}

/// A typed PEM cause is a source of [`Error::Pem`]; the labels it quotes came from the input,
/// so it shows them escaped as the whole message does (issue 20).
#[test]
fn pem_causes_show_hostile_labels_escaped() -> Result<(), Box<dyn std::error::Error>> {
    let cases: [&[u8]; 5] = [
        b"-----BEGIN X\x1b[31m-----\nAAAA\n-----END Y\xe2\x80\xae-----\n",
        b"-----BEGIN X\x1b[31m-----\nAAAA\n",
        b"-----BEGIN X\xe2\x80\xae-----\n-----END X\xe2\x80\xae-----\n",
        b"-----BEGIN X\xc2\x9b-----\nProc-Type: 4\n-----END X\xc2\x9b-----\n",
        b"-----BEGIN X\x07-----\n!!!!\n-----END X\x07-----\n",
    ];
    for input in cases {
        match kubepki_keys::pem::decode_all(input) {
            Err(e @ Error::Pem(_)) => {
                assert!(std::error::Error::source(&e).is_some(), "{e:?}");
                chain_is_escaped(&e)?;
            }
            other => return Err(format!("not a PEM error: {other:?}").into()),
        }
    }
    Ok(())
}
