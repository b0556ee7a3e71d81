use kubepki_keys::escape::{escape, escape_bytes};
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
    /// A signed structure whose signature `BIT STRING` has unused bits.
    #[error("invalid certificate request: {}", escape(&format!("{context}: signature has unused bits")))]
    SignatureUnusedBits {
        /// What was being read (`certificate request`, `certificate`).
        context: String,
    },
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
    /// A name, SAN or extension that cannot be encoded or is not allowed: the rule it breaks.
    #[error("{}", escape(&.0.to_string()))]
    Invalid(InvalidValue),
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
    #[error("malformed CertificateSigningRequest manifest: {}", escape(&.0.to_string()))]
    Manifest(#[source] ManifestProblem),
    /// A manifest that parses but fails the API server's validation.
    #[error("invalid CertificateSigningRequest: {field}: {}", escape(&rule.to_string()))]
    Validation {
        /// The field path, e.g. `spec.signerName`.
        field: &'static str,
        /// The rule it breaks.
        #[source]
        rule: ValidationRule,
    },
}

/// The rule a subject, SAN or extension breaks ([`Error::Invalid`]). Values are shown
/// escaped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InvalidValue {
    /// A request with neither a subject nor a SAN.
    #[error("a certificate request needs a subject or at least one SAN")]
    Empty,
    /// A subject with two CNs.
    #[error("subject has more than one CN")]
    SeveralCommonNames,
    /// A subject attribute other than CN, O, OU, C, ST and L, which kubepki never issues.
    #[error(
        "subject attribute {attribute} = \"{}\" cannot be issued: kubepki issues CN, O, OU, C, ST and L only",
        escape(value)
    )]
    AttributeNotIssued {
        /// The attribute's short name or dotted OID.
        attribute: String,
        /// Its value.
        value: String,
    },
    /// A subject attribute that is empty or longer than 256 bytes.
    #[error("subject attribute \"{}\" must have 1 to 256 bytes", escape(.0))]
    AttributeLength(String),
    /// A country that is not two letters.
    #[error("country \"{}\" must be a two-letter code", escape(.0))]
    Country(String),
    /// A subject attribute whose string type does not hold its bytes.
    #[error(
        "subject attribute \"{}\" is not a valid {tag} (shown escaped)",
        escape_bytes(bytes)
    )]
    NotAString {
        /// The value's bytes.
        bytes: Vec<u8>,
        /// Its ASN.1 string type.
        tag: der::Tag,
    },
    /// A DNS SAN that is empty, longer than 253 bytes, or not printable ASCII without spaces.
    #[error("invalid DNS name \"{}\"", escape(.0))]
    DnsName(String),
    /// An email SAN without `@` or not printable ASCII without spaces.
    #[error("invalid email address \"{}\"", escape(.0))]
    Email(String),
    /// A URI SAN without a scheme or not printable ASCII without spaces.
    #[error("invalid URI \"{}\"", escape(.0))]
    Uri(String),
    /// An IP address SAN of neither 4 nor 16 bytes.
    #[error("IP address SAN has {0} bytes")]
    IpAddressLength(usize),
    /// A known extension whose value does not decode.
    #[error("bad {extension} extension: {source}")]
    Extension {
        /// The extension (`KeyUsage`, `ExtendedKeyUsage`, ...).
        extension: &'static str,
        /// `der`'s error.
        #[source]
        source: der::Error,
    },
}

/// Why a `CertificateSigningRequest` manifest cannot be read or written ([`Error::Manifest`]),
/// its source; the parsers' messages, which may quote the input, are shown escaped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// Bytes that are not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// JSON that does not parse or has another shape.
    #[error("{}", escape(&.0.to_string()))]
    Json(#[source] serde_json::Error),
    /// YAML that does not parse or has another shape: the reader's one-line message with the
    /// position ([`crate::yaml::from_str`]).
    #[error("{}", escape(.0))]
    Yaml(String),
}

/// The API server's rule a `CertificateSigningRequest` manifest breaks ([`Error::Validation`]),
/// its source. Values from the manifest are shown escaped, so that a caller who prints the
/// source chain shows them as [`Error::Validation`] does (whose text is unchanged: escaping is
/// idempotent).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ValidationRule {
    /// A fixed value (`apiVersion`, `kind`) that is another.
    #[error("must be \"{want}\", found \"{}\"", escape(found))]
    Mismatch {
        /// The value required.
        want: &'static str,
        /// The value found.
        found: String,
    },
    /// A required field that is empty.
    #[error("required")]
    Required,
    /// `spec.usages` empty.
    #[error("required: at least one usage")]
    NoUsages,
    /// A usage listed twice.
    #[error("duplicate usage \"{}\"", escape(.0))]
    DuplicateUsage(String),
    /// A usage name that Kubernetes does not know.
    #[error("unsupported usage \"{}\" (allowed: {allowed})", escape(.0), allowed = crate::Usage::ALL.map(crate::Usage::name).join(", "))]
    UnsupportedUsage(String),
    /// `spec.expirationSeconds` beyond an int32.
    #[error("{0} is out of range (the API field is an int32: at most {max})", max = i32::MAX)]
    ExpirationOutOfRange(i64),
    /// `spec.expirationSeconds` below [`crate::MIN_EXPIRATION_SECONDS`].
    #[error("{0} is less than the minimum of {min}", min = crate::MIN_EXPIRATION_SECONDS)]
    ExpirationTooShort(i64),
    /// A field that is not base64.
    #[error("not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// `spec.request` without a PEM block.
    #[error("does not contain a PEM block")]
    NoPemBlock,
    /// `spec.request` whose PEM is malformed or holds several blocks.
    #[error("{0}")]
    Pem(#[source] kubepki_keys::Error),
    /// `spec.request` holding a PEM block of another type.
    #[error("PEM block type must be \"CERTIFICATE REQUEST\", found \"{}\"", escape(.0))]
    PemLabel(String),
    /// `spec.request` whose PKCS#10 request is not valid.
    #[error("{0}")]
    Request(#[source] Box<Error>),
    /// `metadata.name` that is not an object name.
    #[error("{0}")]
    Name(#[source] SubdomainProblem),
    /// A `signerName` longer than 571 characters.
    #[error("must be no more than 571 characters, has {0}")]
    SignerNameLength(usize),
    /// A `signerName` without `/`.
    #[error(
        "\"{}\" must be a fully qualified domain and path of the form 'example.com/signer-name'",
        escape(.0)
    )]
    SignerNameForm(String),
    /// A `signerName` with more than one `/`.
    #[error("\"{}\" must contain exactly one '/'", escape(.0))]
    SignerNameSlashes(String),
    /// A `signerName` with nothing after `/`.
    #[error("\"{}\": the path after '/' must not be empty", escape(.0))]
    SignerNamePath(String),
    /// A `signerName` whose domain part is longer than 253 characters.
    #[error("the domain part must be no more than 253 characters")]
    SignerDomainLength,
    /// A `signerName` whose domain part is not a DNS subdomain.
    #[error("domain part: {0}")]
    SignerDomain(#[source] SubdomainProblem),
    /// `kubernetes.io/legacy-unknown`, which `certificates.k8s.io/v1` refuses.
    #[error("kubernetes.io/legacy-unknown cannot be used in certificates.k8s.io/v1")]
    LegacyUnknownSigner,
}

/// Why a text is not a lower-case RFC 1123 DNS subdomain ([`crate::check_dns_subdomain`]).
/// Values are shown escaped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SubdomainProblem {
    /// The empty text.
    #[error("must not be empty")]
    Empty,
    /// More than 253 characters.
    #[error("\"{}\" is longer than 253 characters", escape(.0))]
    TooLong(String),
    /// A label that is empty, longer than 63, or not of a-z, 0-9 and `-` (not at either end).
    #[error("\"{}\" is not a lower-case RFC 1123 subdomain (labels of a-z, 0-9 and '-', separated by '.')", escape(.0))]
    NotSubdomain(String),
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
