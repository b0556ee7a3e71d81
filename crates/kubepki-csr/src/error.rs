use kubepki_keys::escape::escape;
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
    /// DER that does not decode (or a value `der` cannot encode): the cause is `der`'s error.
    #[error("invalid certificate request: {}", der_message(.context.as_deref(), .source))]
    Der {
        /// What was being read, when it is not the request itself (e.g. `certificate`).
        context: Option<String>,
        /// `der`'s error.
        #[source]
        source: der::Error,
    },
    /// A structure that decodes but breaks a rule of its own (a signature with unused bits).
    #[error("invalid certificate request: {}", escape(.0))]
    Malformed(String),
    /// The CSR's self-signature does not verify.
    #[error("the certificate request's signature does not verify (tampered or corrupt)")]
    BadSignature,
    /// A PKCS#10 request with more than one `extensionRequest` attribute. Readers disagree on
    /// which counts (Go merges them, others take one), so the request is ambiguous.
    #[error(
        "the certificate request has {count} extensionRequest attributes; exactly one is allowed (readers disagree on which one counts)"
    )]
    ExtensionRequestAttributes {
        /// How many there are.
        count: usize,
    },
    /// An `extensionRequest` attribute with more than one value. Go and OpenSSL read the first
    /// value only, so a second could make kubepki issue what no reviewer saw.
    #[error(
        "the certificate request's extensionRequest attribute has {count} values; exactly one is allowed (readers disagree on which one counts)"
    )]
    ExtensionRequestValues {
        /// How many there are.
        count: usize,
    },
    /// The same extension twice (in a request or a certificate).
    #[error("extension {oid} appears more than once")]
    DuplicateExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// A manifest whose `status` says it must not be signed (kube-controller-manager's signer
    /// skips these too).
    #[error("{0}")]
    NotSignable(NotSignable),
    /// A value that cannot be encoded or is not allowed.
    #[error("{}", escape(.0))]
    Invalid(String),
    /// A subject attribute or SAN holding a control character (C0, DEL, C1) or a bidirectional
    /// formatting character ([`kubepki_keys::escape::is_unsafe_char`]): kubepki never requests
    /// or issues such a name, since every terminal that shows it could be made to show
    /// something else. The value is shown escaped.
    #[error(
        "{field} \"{}\" holds a control or bidirectional formatting character (shown escaped); kubepki never requests or issues a name with one",
        escape(value)
    )]
    UnsafeName {
        /// Which attribute: `subject CN`, `subject O`, `DNS SAN`, ...
        field: String,
        /// The value as given (unescaped).
        value: String,
    },
    /// A manifest that is not valid YAML/JSON or does not have the expected shape.
    #[error("malformed CertificateSigningRequest manifest: {}", escape(.0))]
    Manifest(String),
    /// A manifest that parses but fails the API server's validation.
    #[error("invalid CertificateSigningRequest: {field}: {}", escape(reason))]
    Validation {
        /// The field path, e.g. `spec.signerName`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Why a `CertificateSigningRequest` manifest must not be signed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NotSignable {
    /// A `Denied` condition: a reviewer refused it.
    #[error("the request was denied (status.conditions has Denied{}); a denied request is never signed", reason_note(.reason))]
    Denied {
        /// The condition's reason, if any.
        reason: Option<String>,
    },
    /// A `Failed` condition with status `True`: signing already failed for good.
    #[error("the request has failed (status.conditions has Failed{}); a failed request is never signed", reason_note(.reason))]
    Failed {
        /// The condition's reason, if any.
        reason: Option<String>,
    },
    /// `status.certificate` is already set.
    #[error(
        "the request was already issued (status.certificate is set); signing again would replace that certificate"
    )]
    AlreadyIssued,
}

fn reason_note(reason: &Option<String>) -> String {
    match reason {
        Some(r) if !r.is_empty() => format!(", reason {}", escape(r)),
        _ => String::new(),
    }
}

/// `[context: ]der error`, escaped: the text of [`Error::Der`] (and of `kubepki-ca`'s).
pub fn der_message(context: Option<&str>, e: &der::Error) -> String {
    match context {
        Some(c) => escape(&format!("{c}: {e}")).into_owned(),
        None => escape(&e.to_string()).into_owned(),
    }
}
