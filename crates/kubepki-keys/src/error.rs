use thiserror::Error;

/// Everything that can go wrong with keys, PEM and signatures.
///
/// Messages never contain key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A key algorithm name that kubepki does not know.
    #[error("unknown key algorithm \"{}\" (valid: {})", crate::escape::escape(given), crate::KeyAlgorithm::NAMES.join(", "))]
    UnknownAlgorithm {
        /// What was given.
        given: String,
    },
    /// The input is larger than any real key, certificate or CSR.
    #[error("input is {len} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Malformed PEM text.
    #[error("malformed PEM: {}", crate::escape::escape(.0))]
    Pem(String),
    /// PEM text without any block.
    #[error("no PEM block found")]
    NoPemBlock,
    /// No private-key block in otherwise valid PEM.
    #[error(
        "no private key found: expected a PEM block \"RSA PRIVATE KEY\", \"EC PRIVATE KEY\" or \"PRIVATE KEY\", found {found}"
    )]
    NoPrivateKey {
        /// The labels that were found.
        found: String,
    },
    /// An encrypted private key (PKCS#8 `ENCRYPTED PRIVATE KEY` or legacy `Proc-Type: 4,ENCRYPTED`).
    #[error(
        "the private key is encrypted; kubepki reads unencrypted keys only (decrypt it first, e.g. `openssl pkey -in KEY -out PLAIN`)"
    )]
    EncryptedKey,
    /// DER that does not decode as the expected structure.
    #[error("invalid {what}: {reason}")]
    Der {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// An RSA key below 2048 bits.
    #[error("RSA key has {bits} bits; at least 2048 are required")]
    RsaTooSmall {
        /// The modulus size.
        bits: usize,
    },
    /// An RSA key size kubepki does not support.
    #[error("unsupported RSA key size {bits} bits (supported: 2048, 3072, 4096)")]
    UnsupportedRsaSize {
        /// The modulus size.
        bits: usize,
    },
    /// An elliptic curve other than P-256 or P-384.
    #[error("unsupported elliptic curve {0} (supported: P-256, P-384)")]
    UnsupportedCurve(String),
    /// A key type other than RSA, ECDSA or Ed25519.
    #[error("unsupported key type {0} (supported: RSA, ECDSA P-256/P-384, Ed25519)")]
    UnsupportedKeyType(String),
    /// The crypto backend refused the key (inconsistent components, bad point, ...).
    #[error("private key rejected: {0}")]
    Rejected(String),
    /// Key generation failed in the backend.
    #[error("key generation failed")]
    Generation,
    /// Signing failed in the backend.
    #[error("signing failed")]
    Signing,
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A signature algorithm kubepki cannot verify.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// A signature algorithm that does not fit the key (e.g. ECDSA on an RSA key).
    #[error("signature algorithm {alg} does not match the {key} key")]
    SignatureAlgorithmMismatch {
        /// The signature algorithm.
        alg: String,
        /// The key type.
        key: String,
    },
}

pub(crate) fn der_err(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |e| Error::Der {
        what,
        reason: e.to_string(),
    }
}
