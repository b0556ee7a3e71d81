use thiserror::Error;

/// Errors from CSR and manifest handling.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A key or PEM problem.
    #[error(transparent)]
    Key(#[from] kubepki_keys::Error),
    /// PEM without a `CERTIFICATE REQUEST` block.
    #[error(
        "no certificate request found: expected a PEM block \"CERTIFICATE REQUEST\", found {found}"
    )]
    NoCsr {
        /// Labels found instead.
        found: String,
    },
    /// DER that does not decode as PKCS#10.
    #[error("invalid certificate request: {0}")]
    Der(String),
    /// The CSR's self-signature does not verify.
    #[error("the certificate request's signature does not verify (tampered or corrupt)")]
    BadSignature,
    /// A value that cannot be encoded or is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// A manifest that is not valid YAML/JSON or does not have the expected shape.
    #[error("malformed CertificateSigningRequest manifest: {0}")]
    Manifest(String),
    /// A manifest that parses but fails the API server's validation.
    #[error("invalid CertificateSigningRequest: {field}: {reason}")]
    Validation {
        /// The field path, e.g. `spec.signerName`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}
