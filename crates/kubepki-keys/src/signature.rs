use std::fmt;

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use der::Decode;
use der::asn1::ObjectIdentifier;

use crate::error::der_err;
use crate::{Error, oids};

/// The signature algorithms kubepki signs with (one per key type, as Go's `crypto/x509` chooses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// sha256WithRSAEncryption (PKCS#1 v1.5).
    RsaPkcs1Sha256,
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// Ed25519 (pure).
    Ed25519,
}

impl SignatureAlgorithm {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => oids::SHA256_WITH_RSA,
            SignatureAlgorithm::EcdsaSha256 => oids::ECDSA_WITH_SHA256,
            SignatureAlgorithm::EcdsaSha384 => oids::ECDSA_WITH_SHA384,
            SignatureAlgorithm::Ed25519 => oids::ED25519,
        }
    }

    /// Whether the `AlgorithmIdentifier` carries an explicit NULL parameter (RSA only, RFC 4055).
    pub fn has_null_parameters(self) -> bool {
        matches!(self, SignatureAlgorithm::RsaPkcs1Sha256)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&oids::name(&self.oid()))
    }
}

/// Verifies `signature` over `msg` with a DER `SubjectPublicKeyInfo` and the signature
/// algorithm OID found in a certificate or CSR.
///
/// Supported: RSA PKCS#1 v1.5 with SHA-256/384/512 (2048 to 8192 bits), ECDSA P-256/P-384 with
/// SHA-256/384/512, Ed25519. RSA-PSS and anything else is refused with
/// [`Error::UnsupportedSignatureAlgorithm`]. Public-key work only: no secret is involved.
pub fn verify_signature(
    spki_der: &[u8],
    signature_alg: &ObjectIdentifier,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(der_err("public key"))?;
    let key_oid = spki.algorithm.oid;
    let key_bytes = spki.subject_public_key.as_bytes().ok_or(Error::Der {
        what: "public key",
        problem: crate::DerProblem::UnusedBits,
    })?;
    let curve = spki
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let mismatch = || Error::SignatureAlgorithmMismatch {
        alg: oids::name(signature_alg),
        key: match curve {
            Some(c) => format!("{} {}", oids::name(&key_oid), oids::name(&c)),
            None => oids::name(&key_oid),
        },
    };
    let alg: &'static dyn VerificationAlgorithm = match (*signature_alg, key_oid) {
        (oids::SHA256_WITH_RSA, oids::RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (oids::SHA384_WITH_RSA, oids::RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (oids::SHA512_WITH_RSA, oids::RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (oids::ED25519, oids::ED25519) => &sig::ED25519,
        (
            oids::ECDSA_WITH_SHA256 | oids::ECDSA_WITH_SHA384 | oids::ECDSA_WITH_SHA512,
            oids::EC_PUBLIC_KEY,
        ) => match (curve, *signature_alg) {
            (Some(oids::SECP256R1), oids::ECDSA_WITH_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
            (Some(oids::SECP256R1), oids::ECDSA_WITH_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
            (Some(oids::SECP256R1), _) => &sig::ECDSA_P256_SHA512_ASN1,
            (Some(oids::SECP384R1), oids::ECDSA_WITH_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
            (Some(oids::SECP384R1), oids::ECDSA_WITH_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
            (Some(oids::SECP384R1), _) => &sig::ECDSA_P384_SHA512_ASN1,
            (Some(other), _) => return Err(Error::UnsupportedCurve(Some(other))),
            (None, _) => return Err(mismatch()),
        },
        (
            oids::SHA256_WITH_RSA
            | oids::SHA384_WITH_RSA
            | oids::SHA512_WITH_RSA
            | oids::ED25519
            | oids::ECDSA_WITH_SHA256
            | oids::ECDSA_WITH_SHA384
            | oids::ECDSA_WITH_SHA512,
            _,
        ) => return Err(mismatch()),
        (other, _) => return Err(Error::UnsupportedSignatureAlgorithm(other)),
    };
    UnparsedPublicKey::new(alg, key_bytes)
        .verify(msg, signature)
        .map_err(|_| Error::BadSignature)
}
