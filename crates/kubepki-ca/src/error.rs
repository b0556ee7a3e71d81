use thiserror::Error;

/// Errors from certificates, CAs and issuance.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A key, PEM or signature problem.
    #[error(transparent)]
    Key(#[from] kubepki_keys::Error),
    /// A CSR or X.509 encoding problem.
    #[error(transparent)]
    Csr(#[from] kubepki_csr::Error),
    /// PEM without a `CERTIFICATE` block.
    #[error("no certificate found: expected a PEM block \"CERTIFICATE\", found {found}")]
    NoCertificate {
        /// Labels found instead.
        found: String,
    },
    /// DER that does not decode as an X.509 certificate (or a value `der` cannot encode): the
    /// cause is `der`'s error.
    #[error("invalid certificate: {}", kubepki_csr::der_message(.context.as_deref(), .source))]
    Der {
        /// What was being read or written (`public key`, `serial number`, ...), if named.
        context: Option<String>,
        /// `der`'s error.
        #[source]
        source: der::Error,
    },
    /// A certificate that decodes but breaks a rule of its own (two signature algorithms, a time
    /// out of range).
    #[error("invalid certificate: {}", kubepki_csr::escape_text(.0))]
    Malformed(String),
    /// A certificate used as a CA that is not one.
    #[error("\"{subject}\" is not a CA certificate (BasicConstraints CA:TRUE is missing)")]
    NotACa {
        /// The certificate's subject.
        subject: String,
    },
    /// A CA whose KeyUsage lacks keyCertSign.
    #[error("CA \"{subject}\" may not sign certificates: its KeyUsage lacks keyCertSign")]
    NoKeyCertSign {
        /// The CA's subject.
        subject: String,
    },
    /// A private key that does not belong to the certificate.
    #[error("the private key does not match the certificate \"{subject}\"")]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// A certificate outside its validity window.
    #[error("certificate \"{subject}\" has expired (not after {not_after})")]
    Expired {
        /// Subject.
        subject: String,
        /// NotAfter, RFC 3339.
        not_after: String,
    },
    /// A certificate not valid yet.
    #[error("certificate \"{subject}\" is not valid yet (not before {not_before})")]
    NotYetValid {
        /// Subject.
        subject: String,
        /// NotBefore, RFC 3339.
        not_before: String,
    },
    /// A CA without its private key asked to sign.
    #[error("CA \"{subject}\" has no private key here (external CA); it can verify but not sign")]
    NoCaKey {
        /// The CA's subject.
        subject: String,
    },
    /// A CA common name with a character outside printable ASCII: kubeadm's CA profile puts the
    /// CN into a DNS SAN, an IA5String.
    #[error(
        "CA common name \"{}\" must be printable ASCII: kubeadm's CA profile also puts it into the certificate's DNS SAN, which holds ASCII only (Go's x509, which kubeadm uses, refuses it too)",
        kubepki_csr::escape_text(cn)
    )]
    CaNameNotAscii {
        /// The common name.
        cn: String,
    },
    /// A request with neither CN nor O.
    #[error("refusing to issue a certificate with an empty subject")]
    EmptySubject,
    /// A leaf profile asked for CA powers.
    #[error(
        "refusing to issue: the request asks for {what}, which a {profile} certificate may not have"
    )]
    CaPowersRequested {
        /// What was asked for (CA:TRUE, keyCertSign, ...).
        what: &'static str,
        /// The profile.
        profile: String,
    },
    /// A leaf that would outlive its CA, under [`crate::CaExpiry::Refuse`].
    #[error("the certificate would expire at {leaf_not_after}, after its CA ({ca_not_after})")]
    OutlivesCa {
        /// Requested NotAfter.
        leaf_not_after: String,
        /// The CA's NotAfter.
        ca_not_after: String,
    },
    /// An empty or inverted validity window.
    #[error(
        "invalid validity window: not before {not_before} is not earlier than not after {not_after}"
    )]
    InvalidWindow {
        /// NotBefore.
        not_before: String,
        /// NotAfter.
        not_after: String,
    },
    /// A certificate not issued by this CA (issuer name or key identifier differs).
    #[error("certificate \"{subject}\" was not issued by CA \"{ca}\" ({reason})")]
    WrongIssuer {
        /// The certificate's subject.
        subject: String,
        /// The CA's subject.
        ca: String,
        /// Which link failed.
        reason: &'static str,
    },
    /// A certificate whose signature does not verify with the CA's key.
    #[error("certificate \"{subject}\" has a signature that does not verify with CA \"{ca}\"")]
    BadSignature {
        /// The certificate's subject.
        subject: String,
        /// The CA's subject.
        ca: String,
    },
    /// A certificate whose ExtendedKeyUsage does not allow the usage.
    #[error("certificate \"{subject}\" is not valid for {usage} (its ExtendedKeyUsage: {found})")]
    UsageNotAllowed {
        /// The certificate's subject.
        subject: String,
        /// The usage asked for.
        usage: String,
        /// What it has.
        found: String,
    },
    /// A leaf profile name that is not one of [`crate::Profile::ALL`].
    #[error(
        "unknown profile \"{}\" (valid: client, server, peer)",
        kubepki_csr::escape_text(given)
    )]
    UnknownProfile {
        /// What was given.
        given: String,
    },
    /// The CA's signing key ([`crate::CaSigningKey`]) could not sign.
    #[error("CA \"{ca}\" could not sign: {source}")]
    Signing {
        /// The signing CA's subject.
        ca: String,
        /// Why.
        #[source]
        source: crate::SigningError,
    },
    /// A CSR-API request refused by its signer's policy; `rule` names the rule.
    #[error(
        "refused by the signer policy ({rule}): {}",
        kubepki_csr::escape_text(detail)
    )]
    Policy {
        /// The rule: `signer`, `usages`, `organization`, `common-name`, `subject-alt-names`,
        /// `no-ca`, `signer-expired`.
        rule: &'static str,
        /// What failed.
        detail: String,
    },
}
