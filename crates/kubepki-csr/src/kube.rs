//! The Kubernetes `certificates.k8s.io/v1` `CertificateSigningRequest` manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{Csr, Error, ManifestProblem, NotSignable, SubdomainProblem, ValidationRule};

/// The API version this module reads and writes.
pub const API_VERSION: &str = "certificates.k8s.io/v1";
/// The kind.
pub const KIND: &str = "CertificateSigningRequest";
/// Minimum `spec.expirationSeconds` the API server accepts.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// A key usage as named in `spec.usages` (the API's closed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Usage {
    /// signing
    Signing,
    /// digital signature
    DigitalSignature,
    /// content commitment
    ContentCommitment,
    /// key encipherment
    KeyEncipherment,
    /// key agreement
    KeyAgreement,
    /// data encipherment
    DataEncipherment,
    /// cert sign
    CertSign,
    /// crl sign
    CrlSign,
    /// encipher only
    EncipherOnly,
    /// decipher only
    DecipherOnly,
    /// any
    Any,
    /// server auth
    ServerAuth,
    /// client auth
    ClientAuth,
    /// code signing
    CodeSigning,
    /// email protection
    EmailProtection,
    /// s/mime
    SMime,
    /// ipsec end system
    IpsecEndSystem,
    /// ipsec tunnel
    IpsecTunnel,
    /// ipsec user
    IpsecUser,
    /// timestamping
    Timestamping,
    /// ocsp signing
    OcspSigning,
    /// microsoft sgc
    MicrosoftSgc,
    /// netscape sgc
    NetscapeSgc,
}

impl Usage {
    /// Every usage, in the API's order.
    pub const ALL: [Usage; 23] = [
        Usage::Signing,
        Usage::DigitalSignature,
        Usage::ContentCommitment,
        Usage::KeyEncipherment,
        Usage::KeyAgreement,
        Usage::DataEncipherment,
        Usage::CertSign,
        Usage::CrlSign,
        Usage::EncipherOnly,
        Usage::DecipherOnly,
        Usage::Any,
        Usage::ServerAuth,
        Usage::ClientAuth,
        Usage::CodeSigning,
        Usage::EmailProtection,
        Usage::SMime,
        Usage::IpsecEndSystem,
        Usage::IpsecTunnel,
        Usage::IpsecUser,
        Usage::Timestamping,
        Usage::OcspSigning,
        Usage::MicrosoftSgc,
        Usage::NetscapeSgc,
    ];

    /// The API name, e.g. `client auth`.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Signing => "signing",
            Usage::DigitalSignature => "digital signature",
            Usage::ContentCommitment => "content commitment",
            Usage::KeyEncipherment => "key encipherment",
            Usage::KeyAgreement => "key agreement",
            Usage::DataEncipherment => "data encipherment",
            Usage::CertSign => "cert sign",
            Usage::CrlSign => "crl sign",
            Usage::EncipherOnly => "encipher only",
            Usage::DecipherOnly => "decipher only",
            Usage::Any => "any",
            Usage::ServerAuth => "server auth",
            Usage::ClientAuth => "client auth",
            Usage::CodeSigning => "code signing",
            Usage::EmailProtection => "email protection",
            Usage::SMime => "s/mime",
            Usage::IpsecEndSystem => "ipsec end system",
            Usage::IpsecTunnel => "ipsec tunnel",
            Usage::IpsecUser => "ipsec user",
            Usage::Timestamping => "timestamping",
            Usage::OcspSigning => "ocsp signing",
            Usage::MicrosoftSgc => "microsoft sgc",
            Usage::NetscapeSgc => "netscape sgc",
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Usage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|u| u.name() == s)
            .ok_or_else(|| Error::Validation {
                field: "spec.usages",
                rule: ValidationRule::UnsupportedUsage(s.to_owned()),
            })
    }
}

/// `metadata` of the manifest: the name, and every other field kept as it was.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    /// metadata.name
    #[serde(default)]
    pub name: String,
    /// Other metadata (labels, annotations, ...), preserved.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `spec` of the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Base64 of the PEM `CERTIFICATE REQUEST`.
    #[serde(default)]
    pub request: String,
    /// The signer, e.g. `kubernetes.io/kube-apiserver-client`.
    #[serde(default)]
    pub signer_name: String,
    /// Requested lifetime in seconds (an int32 in the API: a number, never a string; checked
    /// against the API's range by [`KubeCsr::validate`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "integer_only"
    )]
    pub expiration_seconds: Option<i64>,
    /// Requested usages (API names).
    #[serde(default)]
    pub usages: Vec<String>,
    /// The requester's user name (set by the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The requester's groups (set by the API server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The requester's UID (set by the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The requester's extra attributes (set by the API server).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `spec.expirationSeconds` as the API server decodes it: an integer (JSON number or plain YAML
/// integer), never a quoted string or a fraction; `null` is absent.
fn integer_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Int;
    impl<'de> serde::de::Visitor<'de> for Int {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer number of seconds (the API field is an int32)")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v).map(Some).map_err(|_| {
                E::custom(format!(
                    "spec.expirationSeconds: {v} is out of range (the API field is an int32)"
                ))
            })
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Int)
        }
    }
    d.deserialize_any(Int)
}

/// One status condition.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Approved, Denied or Failed.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always "True" for the three built-in types.
    pub status: String,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time of the last update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
}

/// `status` of the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// Base64 of the issued certificate PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A `CertificateSigningRequest` manifest.
///
/// ```
/// use kubepki_csr::{CsrBuilder, KubeCsr, Subject, Usage};
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
///
/// let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
/// let csr = CsrBuilder::new(Subject::cn("jane").with_organizations(["dev"])).sign(&key)?;
/// let manifest = KubeCsr::new("jane", &csr, "kubernetes.io/kube-apiserver-client",
///     &[Usage::DigitalSignature, Usage::ClientAuth], Some(86400));
/// let yaml = manifest.to_yaml()?;
/// let back = KubeCsr::from_slice(yaml.as_bytes())?;
/// assert_eq!(back.validate()?.common_name(), Some("jane"));
/// # Ok::<(), kubepki_csr::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubeCsr {
    /// apiVersion
    #[serde(default)]
    pub api_version: String,
    /// kind
    #[serde(default)]
    pub kind: String,
    /// metadata
    #[serde(default)]
    pub metadata: Metadata,
    /// spec
    #[serde(default)]
    pub spec: Spec,
    /// status
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl KubeCsr {
    /// A new manifest for `csr`.
    pub fn new(
        name: &str,
        csr: &Csr,
        signer_name: &str,
        usages: &[Usage],
        expiration_seconds: Option<i64>,
    ) -> Self {
        KubeCsr {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: Metadata {
                name: name.into(),
                other: BTreeMap::new(),
            },
            spec: Spec {
                request: STANDARD.encode(csr.to_pem()),
                signer_name: signer_name.into(),
                expiration_seconds,
                usages: usages.iter().map(|u| u.name().to_owned()).collect(),
                ..Spec::default()
            },
            status: None,
        }
    }

    /// Reads YAML or JSON (one document).
    pub fn from_slice(input: &[u8]) -> Result<Self, Error> {
        kubepki_keys::pem::check_len(input.len())?;
        let text =
            std::str::from_utf8(input).map_err(|_| Error::Manifest(ManifestProblem::NotUtf8))?;
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with('{') {
            serde_json::from_str(trimmed).map_err(|e| Error::Manifest(ManifestProblem::Json(e)))
        } else {
            crate::yaml::from_str(trimmed).map_err(|m| Error::Manifest(ManifestProblem::Yaml(m)))
        }
    }

    /// YAML text.
    pub fn to_yaml(&self) -> Result<String, Error> {
        crate::yaml::to_string(self).map_err(|m| Error::Manifest(ManifestProblem::Yaml(m)))
    }

    /// Pretty JSON text with a trailing newline.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::Manifest(ManifestProblem::Json(e)))
    }

    /// The usages, parsed (fails on an unknown name).
    pub fn usages(&self) -> Result<Vec<Usage>, Error> {
        self.spec.usages.iter().map(|u| u.parse()).collect()
    }

    /// Validates as the API server does on create (see the kubeadm-pki reference, 7.1) and
    /// returns the decoded, signature-checked PKCS#10 request.
    pub fn validate(&self) -> Result<Csr, Error> {
        let v = |field: &'static str, rule: ValidationRule| Error::Validation { field, rule };
        if self.api_version != API_VERSION {
            return Err(v(
                "apiVersion",
                ValidationRule::Mismatch {
                    want: API_VERSION,
                    found: self.api_version.clone(),
                },
            ));
        }
        if self.kind != KIND {
            return Err(v(
                "kind",
                ValidationRule::Mismatch {
                    want: KIND,
                    found: self.kind.clone(),
                },
            ));
        }
        if let Err(problem) = check_dns_subdomain(&self.metadata.name) {
            return Err(v("metadata.name", ValidationRule::Name(problem)));
        }
        validate_signer_name(&self.spec.signer_name)?;
        if self.spec.usages.is_empty() {
            return Err(v("spec.usages", ValidationRule::NoUsages));
        }
        let mut seen = std::collections::BTreeSet::new();
        for u in &self.spec.usages {
            let usage: Usage = u.parse()?;
            if !seen.insert(usage) {
                return Err(v("spec.usages", ValidationRule::DuplicateUsage(u.clone())));
            }
        }
        if let Some(secs) = self.spec.expiration_seconds {
            if secs > i64::from(i32::MAX) {
                return Err(v(
                    "spec.expirationSeconds",
                    ValidationRule::ExpirationOutOfRange(secs),
                ));
            }
            if secs < MIN_EXPIRATION_SECONDS {
                return Err(v(
                    "spec.expirationSeconds",
                    ValidationRule::ExpirationTooShort(secs),
                ));
            }
        }
        if self.spec.request.is_empty() {
            return Err(v("spec.request", ValidationRule::Required));
        }
        let pem_bytes = STANDARD
            .decode(self.spec.request.trim())
            .map_err(|e| v("spec.request", ValidationRule::Base64(e)))?;
        // Exactly one block: the API server reads the first block Go's `pem.Decode` finds, and
        // a second block (or a header line that makes a reader skip the first) could make it
        // read another request than the one checked here.
        let block = match kubepki_keys::pem::decode_one(&pem_bytes) {
            Ok(b) => b,
            Err(kubepki_keys::Error::NoPemBlock) => {
                return Err(v("spec.request", ValidationRule::NoPemBlock));
            }
            Err(e) => return Err(v("spec.request", ValidationRule::Pem(e))),
        };
        if block.label() != crate::LABEL_CSR {
            return Err(v(
                "spec.request",
                ValidationRule::PemLabel(block.label().to_owned()),
            ));
        }
        Csr::from_der(block.contents())
            .map_err(|e| v("spec.request", ValidationRule::Request(Box::new(e))))
    }

    /// The issued certificate PEM in `status.certificate`, decoded from base64.
    pub fn issued_certificate_pem(&self) -> Result<Option<Vec<u8>>, Error> {
        match self.status.as_ref().and_then(|s| s.certificate.as_ref()) {
            None => Ok(None),
            Some(b64) => STANDARD
                .decode(b64.trim())
                .map(Some)
                .map_err(|e| Error::Validation {
                    field: "status.certificate",
                    rule: ValidationRule::Base64(e),
                }),
        }
    }

    /// Refuses a manifest that kube-controller-manager's signer would not sign: one with a
    /// `Denied` condition, a `Failed` condition of status `True`, or a `status.certificate`
    /// already set.
    pub fn check_signable(&self) -> Result<(), Error> {
        let Some(status) = &self.status else {
            return Ok(());
        };
        if let Some(c) = status.conditions.iter().find(|c| c.kind == "Denied") {
            return Err(Error::NotSignable(NotSignable::Denied {
                reason: c.reason.clone(),
            }));
        }
        if let Some(c) = status
            .conditions
            .iter()
            .find(|c| c.kind == "Failed" && c.status == "True")
        {
            return Err(Error::NotSignable(NotSignable::Failed {
                reason: c.reason.clone(),
            }));
        }
        if status
            .certificate
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
        {
            return Err(Error::NotSignable(NotSignable::AlreadyIssued));
        }
        Ok(())
    }

    /// Whether the manifest carries any requester field (`spec.username`, `groups`, `uid`,
    /// `extra`). The API server sets these from the authenticated requester and ignores what a
    /// manifest says; offline, nothing authenticated the requester.
    pub fn has_requester_fields(&self) -> bool {
        self.spec.username.is_some()
            || !self.spec.groups.is_empty()
            || self.spec.uid.is_some()
            || !self.spec.extra.is_empty()
    }

    /// Removes the requester fields (see [`KubeCsr::has_requester_fields`]).
    pub fn clear_requester_fields(&mut self) {
        self.spec.username = None;
        self.spec.groups.clear();
        self.spec.uid = None;
        self.spec.extra.clear();
    }

    /// Sets `status.certificate` and an `Approved` condition, and removes the requester fields
    /// (they were written by the requester, not set by an API server; see
    /// [`KubeCsr::clear_requester_fields`]).
    pub fn set_issued(&mut self, cert_pem: &str, approved_by: &str, now_rfc3339: &str) {
        self.clear_requester_fields();
        let status = self.status.get_or_insert_with(Status::default);
        status.certificate = Some(STANDARD.encode(cert_pem));
        if !status.conditions.iter().any(|c| c.kind == "Approved") {
            status.conditions.push(Condition {
                kind: "Approved".into(),
                status: "True".into(),
                reason: Some("KubepkiApprove".into()),
                message: Some(format!("approved and signed offline by {approved_by}")),
                last_update_time: Some(now_rfc3339.into()),
            });
        }
    }
}

/// Validates a `signerName` as the API server does.
pub fn validate_signer_name(name: &str) -> Result<(), Error> {
    let v = |rule: ValidationRule| Error::Validation {
        field: "spec.signerName",
        rule,
    };
    if name.is_empty() {
        return Err(v(ValidationRule::Required));
    }
    if name.len() > 571 {
        return Err(v(ValidationRule::SignerNameLength(name.len())));
    }
    let Some((domain, path)) = name.split_once('/') else {
        return Err(v(ValidationRule::SignerNameForm(name.to_owned())));
    };
    if path.contains('/') {
        return Err(v(ValidationRule::SignerNameSlashes(name.to_owned())));
    }
    if path.is_empty() {
        return Err(v(ValidationRule::SignerNamePath(name.to_owned())));
    }
    if domain.len() > 253 {
        return Err(v(ValidationRule::SignerDomainLength));
    }
    check_dns_subdomain(domain).map_err(|r| v(ValidationRule::SignerDomain(r)))?;
    if name == "kubernetes.io/legacy-unknown" {
        return Err(v(ValidationRule::LegacyUnknownSigner));
    }
    Ok(())
}

/// The name given to a CertificateSigningRequest object made from a subject's common name, when
/// the user names none: the one rule `csr --k8s-manifest`, `sign-request` and
/// `user create --csr-only` share (docs/identities.md, "Object names").
///
/// Kubernetes accepts a lower-case RFC 1123 subdomain, at most 253 characters (see
/// [`check_dns_subdomain`]). Letters are lower-cased; every other character (slashes, colons,
/// spaces, `@`, non-ASCII) becomes `-`; runs of `-` shrink to one; each dot-separated label loses
/// leading and trailing `-`, empty labels are dropped and a label is cut to 63 characters; the
/// whole name is cut to 253. A common name with nothing usable gives `request`.
///
/// ```
/// use kubepki_csr::object_name;
/// assert_eq!(object_name("Jane/Doe"), "jane-doe");
/// assert_eq!(object_name("system:node:Worker-1"), "system-node-worker-1");
/// assert_eq!(object_name("..."), "request");
/// assert!(kubepki_csr::check_dns_subdomain(&object_name(&"x".repeat(300))).is_ok());
/// ```
pub fn object_name(common_name: &str) -> String {
    const FALLBACK: &str = "request";
    let mut labels: Vec<String> = Vec::new();
    for part in common_name.split('.') {
        let mut label = String::new();
        for c in part.chars().flat_map(char::to_lowercase) {
            let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            };
            if !(c == '-' && label.ends_with('-')) {
                label.push(c);
            }
        }
        let label: String = label.trim_matches('-').chars().take(63).collect();
        let label = label.trim_end_matches('-');
        if !label.is_empty() {
            labels.push(label.to_owned());
        }
    }
    let mut name = String::new();
    for label in labels {
        // Whole labels only: a label cut at 253 could end in '-'.
        let extra = usize::from(!name.is_empty()) + label.len();
        if name.len() + extra > 253 {
            break;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&label);
    }
    if name.is_empty() {
        FALLBACK.to_owned()
    } else {
        name
    }
}

/// RFC 1123 DNS subdomain check (lower-case), as Kubernetes uses for object names.
pub fn check_dns_subdomain(s: &str) -> Result<(), SubdomainProblem> {
    if s.is_empty() {
        return Err(SubdomainProblem::Empty);
    }
    if s.len() > 253 {
        return Err(SubdomainProblem::TooLong(s.to_owned()));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(SubdomainProblem::NotSubdomain(s.to_owned()));
        }
    }
    Ok(())
}
