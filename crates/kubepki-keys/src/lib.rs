//! Private keys for kubepki: generation, reading and writing in kubeadm's formats, signing.
//!
//! Every private-key operation runs in [aws-lc-rs] (AWS-LC, constant-time). The RustCrypto
//! `der`/`pkcs1`/`pkcs8`/`sec1`/`spki` crates only encode and decode.
//!
//! ```
//! use kubepki_keys::{KeyAlgorithm, PrivateKey, verify_signature};
//!
//! let alg: KeyAlgorithm = "ecdsa-p256".parse()?;
//! let key = PrivateKey::generate(alg)?;
//! let pem = key.to_pem()?; // "-----BEGIN EC PRIVATE KEY-----" as kubeadm writes it
//! let again = PrivateKey::from_pem(pem.as_bytes())?;
//! assert_eq!(key.public_key_der(), again.public_key_der());
//!
//! let sig = key.sign(b"hello")?;
//! verify_signature(key.public_key_der(), &key.signature_algorithm().oid(), b"hello", &sig)?;
//! # Ok::<(), kubepki_keys::Error>(())
//! ```
//!
//! [aws-lc-rs]: https://docs.rs/aws-lc-rs
#![forbid(unsafe_code)]

mod algorithm;
mod error;
pub mod escape;
pub mod oids;
mod parallel;
pub mod pem;
mod private_key;
pub mod progress;
mod signature;

pub use algorithm::KeyAlgorithm;
pub use error::{DerProblem, Error, PemProblem};
pub use escape::{escape, escape_bytes, escape_path, has_unsafe_chars, is_unsafe_char};
pub use parallel::generate_many;
pub use private_key::{
    LABEL_EC, LABEL_PKCS8, LABEL_PKCS8_ENCRYPTED, LABEL_PUBLIC_KEY, LABEL_RSA, PrivateKey,
};
pub use signature::{SignatureAlgorithm, verify_signature};

/// Lower-case hex SHA-256 of `data` (fingerprints; public data only).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-1 of `data`: only for RFC 5280 key identifiers (method 1), as Go and kubeadm compute them.
pub fn sha1_for_key_identifier(data: &[u8]) -> [u8; 20] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whether two DER `SubjectPublicKeyInfo`s hold the same key (compares algorithm and key bits,
/// so an RSA key with or without explicit NULL parameters still compares equal).
pub fn spki_equal(a: &[u8], b: &[u8]) -> bool {
    use der::Decode;
    match (
        spki::SubjectPublicKeyInfoRef::from_der(a),
        spki::SubjectPublicKeyInfoRef::from_der(b),
    ) {
        (Ok(x), Ok(y)) => {
            x.algorithm.oid == y.algorithm.oid && x.subject_public_key == y.subject_public_key
        }
        _ => false,
    }
}

/// What a DER `SubjectPublicKeyInfo` holds: its algorithm OID, the RSA modulus size and the EC
/// curve where they apply.
struct SpkiFacts {
    oid: der::asn1::ObjectIdentifier,
    rsa_bits: usize,
    curve: Option<der::asn1::ObjectIdentifier>,
}

fn spki_facts(spki_der: &[u8]) -> Result<SpkiFacts, Error> {
    use der::Decode;
    let spki =
        spki::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(error::der_err("public key"))?;
    let rsa_bits = spki
        .subject_public_key
        .as_bytes()
        .filter(|_| spki.algorithm.oid == oids::RSA_ENCRYPTION)
        .and_then(|b| pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(b).ok())
        .map(|k| private_key::uint_bits(k.modulus.as_bytes()))
        .unwrap_or(0);
    let curve = spki
        .algorithm
        .parameters
        .filter(|_| spki.algorithm.oid == oids::EC_PUBLIC_KEY)
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    Ok(SpkiFacts {
        oid: spki.algorithm.oid,
        rsa_bits,
        curve,
    })
}

/// The algorithm of a DER `SubjectPublicKeyInfo` (an error for keys kubepki cannot generate).
pub fn public_key_algorithm(spki_der: &[u8]) -> Result<KeyAlgorithm, Error> {
    let f = spki_facts(spki_der)?;
    match f.oid {
        oids::RSA_ENCRYPTION => KeyAlgorithm::from_rsa_bits(f.rsa_bits),
        oids::EC_PUBLIC_KEY => match f.curve {
            Some(oids::SECP256R1) => Ok(KeyAlgorithm::EcdsaP256),
            Some(oids::SECP384R1) => Ok(KeyAlgorithm::EcdsaP384),
            other => Err(Error::UnsupportedCurve(other)),
        },
        oids::ED25519 => Ok(KeyAlgorithm::Ed25519),
        other => Err(Error::UnsupportedKeyType(other)),
    }
}

/// Describes a DER `SubjectPublicKeyInfo`: `RSA 2048 bits`, `ECDSA P-256`, `Ed25519`.
pub fn describe_public_key(spki_der: &[u8]) -> Result<String, Error> {
    let f = spki_facts(spki_der)?;
    Ok(match f.oid {
        oids::RSA_ENCRYPTION => format!("RSA {} bits", f.rsa_bits),
        oids::EC_PUBLIC_KEY => match f.curve {
            Some(c) => format!("ECDSA {}", oids::name(&c)),
            None => "ECDSA (no curve)".into(),
        },
        other => oids::name(&other),
    })
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
