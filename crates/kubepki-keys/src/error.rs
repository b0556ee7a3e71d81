use const_oid::ObjectIdentifier;
use thiserror::Error;

use crate::escape::escape as esc;

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
    /// Malformed PEM text: which rule of [`crate::pem::decode_all`] it breaks.
    #[error("malformed PEM: {}", crate::escape::escape(&.0.to_string()))]
    Pem(#[source] PemProblem),
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
    #[error("invalid {what}: {problem}")]
    Der {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong with it.
        #[source]
        problem: DerProblem,
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
    /// An elliptic curve other than P-256 or P-384 (`None`: an EC key without a named curve).
    #[error("unsupported elliptic curve {} (supported: P-256, P-384)", .0.as_ref().map_or_else(|| "(none)".to_owned(), crate::oids::name))]
    UnsupportedCurve(Option<ObjectIdentifier>),
    /// A key type other than RSA, ECDSA or Ed25519: the key's algorithm OID.
    #[error("unsupported key type {} (supported: RSA, ECDSA P-256/P-384, Ed25519)", crate::oids::name(.0))]
    UnsupportedKeyType(ObjectIdentifier),
    /// The crypto backend refused the key (inconsistent components, bad point, ...).
    #[error("private key rejected: {0}")]
    Rejected(#[source] aws_lc_rs::error::KeyRejected),
    /// The crypto backend could not encode a key it holds.
    #[error("private key rejected: cannot encode {what}")]
    Unencodable {
        /// What was being encoded: `the public key`, `the EC key`, `the key as PKCS#8`.
        what: &'static str,
        /// The backend's error.
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },
    /// Key generation failed in the backend.
    #[error("key generation failed")]
    Generation,
    /// Signing failed in the backend.
    #[error("signing failed")]
    Signing,
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A signature algorithm kubepki cannot verify: its OID.
    #[error("unsupported signature algorithm {}", crate::oids::name(.0))]
    UnsupportedSignatureAlgorithm(ObjectIdentifier),
    /// A signature algorithm that does not fit the key (e.g. ECDSA on an RSA key).
    #[error("signature algorithm {alg} does not match the {key} key")]
    SignatureAlgorithmMismatch {
        /// The signature algorithm.
        alg: String,
        /// The key type.
        key: String,
    },
}

/// Why DER is not the structure expected ([`Error::Der`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DerProblem {
    /// `der` could not decode (or encode) it.
    #[error("{0}")]
    Decode(#[source] der::Error),
    /// An EC key without named-curve parameters.
    #[error("no named-curve parameters")]
    NoNamedCurve,
    /// A private key in none of the formats kubepki reads.
    #[error("not PKCS#8, PKCS#1 or SEC1")]
    UnknownKeyFormat,
    /// A public key `BIT STRING` with unused bits.
    #[error("unused bits in the key BIT STRING")]
    UnusedBits,
}

/// Which rule of [`crate::pem::decode_all`] (or of a reader wanting one block) PEM text
/// breaks ([`Error::Pem`]), its source. Labels came from the input: each is shown through
/// [`crate::escape::escape`], so that a caller who prints the source chain shows them as
/// [`Error::Pem`] does (escaping is idempotent: [`Error::Pem`]'s text is unchanged).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PemProblem {
    /// A `BEGIN` line whose label is not UTF-8.
    #[error("BEGIN line label is not valid UTF-8")]
    LabelNotUtf8,
    /// A block closed by the `END` line of another label.
    #[error("block \"{}\" is closed by END \"{}\"", esc(label), esc(end))]
    MismatchedEnd {
        /// The block's label.
        label: String,
        /// The label of the `END` line (lossily decoded).
        end: String,
    },
    /// Headers and then `END`, without a body.
    #[error("block \"{}\" has headers but no body", esc(label))]
    HeadersWithoutBody {
        /// The block's label.
        label: String,
    },
    /// A `BEGIN` line inside a block.
    #[error(
        "line {line}: a BEGIN line inside block \"{}\" (its END line is missing)",
        esc(label)
    )]
    NestedBegin {
        /// The line number (from 1).
        line: usize,
        /// The enclosing block's label.
        label: String,
    },
    /// A header in a format that has none (RFC 7468).
    #[error(
        "line {line}: block \"{}\" has a header line; this format has none (RFC 7468)",
        esc(label)
    )]
    HeaderNotAllowed {
        /// The line number (from 1).
        line: usize,
        /// The block's label.
        label: String,
    },
    /// A header line after the body started.
    #[error(
        "line {line}: block \"{}\" has a header line inside its body (headers are allowed only directly after BEGIN)",
        esc(label)
    )]
    HeaderInBody {
        /// The line number (from 1).
        line: usize,
        /// The block's label.
        label: String,
    },
    /// Headers not followed by a blank line.
    #[error(
        "line {line}: the headers of block \"{}\" must be followed by a blank line",
        esc(label)
    )]
    NoBlankAfterHeaders {
        /// The line number (from 1).
        line: usize,
        /// The block's label.
        label: String,
    },
    /// A `BEGIN` line without its `END` line.
    #[error("block \"{}\" has no END line (truncated?)", esc(label))]
    NoEnd {
        /// The block's label.
        label: String,
    },
    /// A body that is not base64.
    #[error("block \"{}\": invalid base64: {source}", esc(label))]
    Base64 {
        /// The block's label.
        label: String,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// A block with an empty body.
    #[error("block \"{}\" is empty", esc(label))]
    Empty {
        /// The block's label.
        label: String,
    },
    /// More than one block where exactly one is expected ([`crate::pem::decode_one`]).
    #[error("{count} blocks ({labels}) where exactly one is expected")]
    SeveralBlocks {
        /// How many blocks.
        count: usize,
        /// Their labels ([`crate::pem::describe_labels`]).
        labels: String,
    },
    /// More than one block of a kind a file holds one of (several certificate requests).
    #[error("several {what} in one file ({labels}); exactly one is expected")]
    SeveralOfOneKind {
        /// What there are several of, plural (`certificate requests`).
        what: &'static str,
        /// The labels of every block ([`crate::pem::describe_labels`]).
        labels: String,
    },
}

pub(crate) fn der_err(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |e| Error::Der {
        what,
        problem: DerProblem::Decode(e),
    }
}
