//! cfssl's JSON files: the certificate request (`csr.json`: `CN`, `hosts`, `key`, `names`,
//! `ca`) and the signing config (`signing.default`, `signing.profiles.NAME`), read strictly
//! (an unknown field is an error naming it) and mapped onto kubepki's subjects, SANs, usages
//! and validity the way `cfssl gencert` maps them; [`init_ca`] and [`gencert`] make what
//! `cfssl gencert -initca` and `cfssl gencert -ca ... -profile NAME` make, and [`Issued::to_json`]
//! prints cfssl's result (`cert`, `csr`, `key`) for `cfssljson -bare`. The mapping and what is
//! not supported: docs/cfssl.md.
//!
//! ```
//! use kubepki_ca::cfssl::{CsrRequest, SigningConfig, gencert, init_ca};
//!
//! let now = time::OffsetDateTime::now_utc();
//! let ca_req = CsrRequest::from_json(br#"{"CN": "rootCA", "names": [{"O": "Kubernetes"}]}"#)?;
//! let root = init_ca(&ca_req, now)?;
//! let config = SigningConfig::from_json(br#"{"signing": {"default": {"expiry": "8760h"},
//!     "profiles": {"root-ca": {"usages": ["signing", "key encipherment", "server auth",
//!     "client auth"], "expiry": "8760h"}}}}"#)?;
//! let policy = config.policy(Some("root-ca"))?;
//! let req = CsrRequest::from_json(br#"{"CN": "localhost", "hosts": ["localhost", "127.0.0.1"]}"#)?;
//! let server = gencert(&req, &root.authority, &policy, now)?;
//! assert_eq!(server.certificate.subject_alt_names().ips.len(), 1);
//! assert!(server.to_json()?.starts_with("{\"cert\":"));
//! # Ok::<(), kubepki_ca::cfssl::CfsslError>(())
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use kubepki_csr::{
    BasicConstraints, Csr, CsrBuilder, ExtKeyUsage, KeyUsage, Subject, SubjectAltNames,
};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use serde::Deserialize;
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::{
    CaExpiry, CaProfile, CaSpec, Certificate, CertificateAuthority, IssueSpec, KeyIdMethod, Window,
    parse_duration,
};

/// cfssl's backdate: NotBefore is the current time rounded to the minute, less 5 minutes.
pub const CFSSL_BACKDATE: Duration = Duration::minutes(5);
/// cfssl's default CA validity for `-initca` without `ca.expiry`: 43800h (5 years).
pub const CFSSL_CA_VALIDITY: Duration = Duration::hours(43800);
/// cfssl's default leaf validity (its built-in default profile, and a profile without
/// `expiry` whose default has none either): 8760h.
pub const CFSSL_LEAF_VALIDITY: Duration = Duration::hours(8760);

/// cfssl's key-usage names (its `config.KeyUsage` table), in KeyUsage bit terms.
pub const KEY_USAGES: [(&str, KeyUsage); 10] = [
    ("signing", KeyUsage::DIGITAL_SIGNATURE),
    ("digital signature", KeyUsage::DIGITAL_SIGNATURE),
    ("content commitment", KeyUsage::CONTENT_COMMITMENT),
    ("key encipherment", KeyUsage::KEY_ENCIPHERMENT),
    ("key agreement", KeyUsage::KEY_AGREEMENT),
    ("data encipherment", KeyUsage::DATA_ENCIPHERMENT),
    ("cert sign", KeyUsage::KEY_CERT_SIGN),
    ("crl sign", KeyUsage::CRL_SIGN),
    ("encipher only", KeyUsage::ENCIPHER_ONLY),
    ("decipher only", KeyUsage::DECIPHER_ONLY),
];

/// cfssl's extended-key-usage names (its `config.ExtKeyUsage` table).
pub const EXT_KEY_USAGES: [(&str, ExtKeyUsage); 13] = [
    ("any", ExtKeyUsage::Any),
    ("server auth", ExtKeyUsage::ServerAuth),
    ("client auth", ExtKeyUsage::ClientAuth),
    ("code signing", ExtKeyUsage::CodeSigning),
    ("email protection", ExtKeyUsage::EmailProtection),
    ("s/mime", ExtKeyUsage::EmailProtection),
    ("ipsec end system", ExtKeyUsage::IpsecEndSystem),
    ("ipsec tunnel", ExtKeyUsage::IpsecTunnel),
    ("ipsec user", ExtKeyUsage::IpsecUser),
    ("timestamping", ExtKeyUsage::TimeStamping),
    ("ocsp signing", ExtKeyUsage::OcspSigning),
    ("microsoft sgc", ExtKeyUsage::MicrosoftSgc),
    ("netscape sgc", ExtKeyUsage::NetscapeSgc),
];

/// Why a cfssl file cannot be used, or a certificate not made from it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CfsslError {
    /// Not JSON, or JSON of the wrong shape (an unknown field, a missing one, a wrong type):
    /// serde_json's one-line message, with line and column.
    #[error("{0}")]
    Json(String),
    /// A value that cannot be used; `field` is its path (`key.size`,
    /// `signing.profiles.root-ca.usages`).
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--profile` the signing config does not have.
    #[error("no profile \"{name}\" in the signing config (profiles: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// A profile that asks for CA powers, used to sign a leaf.
    #[error(
        "profile \"{profile}\" asks for {what}, which a leaf certificate may not have (make CAs with --initca)"
    )]
    CaPowers {
        /// The profile.
        profile: String,
        /// What it asks for.
        what: &'static str,
    },
    /// An expiry so short that the certificate would have expired when it is made: NotBefore is
    /// the minute rounded, less 5 minutes ([`CFSSL_BACKDATE`]), so about 5 minutes or less end
    /// before now (cfssl makes such a certificate).
    #[error(
        "{field}: \"{expiry}\" ends at {not_after}, before the certificate is made (NotBefore is 5 minutes back, as cfssl's)"
    )]
    ExpiresAtOnce {
        /// Where the expiry was set (`ca.expiry`, `signing.profiles.NAME.expiry`).
        field: String,
        /// The expiry, in Go's notation.
        expiry: String,
        /// The NotAfter it gives (RFC 3339).
        not_after: String,
    },
    /// Key generation, CSR or issuance failed.
    #[error(transparent)]
    Ca(#[from] crate::Error),
}

impl From<kubepki_keys::Error> for CfsslError {
    fn from(e: kubepki_keys::Error) -> Self {
        CfsslError::Ca(crate::Error::Key(e))
    }
}

impl From<kubepki_csr::Error> for CfsslError {
    fn from(e: kubepki_csr::Error) -> Self {
        CfsslError::Ca(crate::Error::Csr(e))
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CfsslError {
    CfsslError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn from_json<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, CfsslError> {
    serde_json::from_slice(json).map_err(|e| CfsslError::Json(e.to_string()))
}

/// cfssl's certificate request (`csr.json`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    /// `CN`.
    #[serde(rename = "CN", default)]
    pub common_name: String,
    /// `hosts`: each becomes an IP, email, URI or DNS SAN ([`split_hosts`]).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// `key`: the key to generate (absent: ECDSA P-256, cfssl's default).
    #[serde(default)]
    pub key: Option<KeyRequest>,
    /// `names`: subject attributes; several entries add up.
    #[serde(default)]
    pub names: Option<Vec<NameEntry>>,
    /// `ca`: the CA's validity and path length, for `-initca`.
    #[serde(default)]
    pub ca: Option<CaRequest>,
}

/// `key` of a request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// `algo`: `rsa` or `ecdsa` (default `ecdsa`).
    #[serde(default)]
    pub algo: Option<String>,
    /// `size`: RSA 2048, 3072, 4096 (default 2048); ECDSA 256, 384 (default 256).
    #[serde(default)]
    pub size: Option<u32>,
}

/// One entry of `names`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameEntry {
    /// Country.
    #[serde(rename = "C", default)]
    pub country: String,
    /// State or province.
    #[serde(rename = "ST", default)]
    pub province: String,
    /// Locality.
    #[serde(rename = "L", default)]
    pub locality: String,
    /// Organization (a Kubernetes group).
    #[serde(rename = "O", default)]
    pub organization: String,
    /// Organizational unit.
    #[serde(rename = "OU", default)]
    pub organizational_unit: String,
}

/// `ca` of a request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaRequest {
    /// `expiry`: a Go duration (default 43800h).
    #[serde(default)]
    pub expiry: Option<String>,
    /// `pathlen`: pathLenConstraint; 0 is written only with `pathlenzero` (as cfssl).
    #[serde(default)]
    pub pathlen: Option<u8>,
    /// `pathlenzero`: write a pathLenConstraint of 0.
    #[serde(default)]
    pub pathlenzero: Option<bool>,
}

impl CsrRequest {
    /// Reads a request, refusing unknown fields (the error names the field, line and column).
    pub fn from_json(json: &[u8]) -> Result<Self, CfsslError> {
        from_json(json)
    }

    /// `cfssl gencert -hostname`: the comma-separated list replaces `hosts`; an empty one
    /// leaves `hosts` as it is, as in cfssl (`-hostname ""` is no `-hostname`).
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        if !hostname.is_empty() {
            self.hosts = Some(hostname.split(',').map(str::to_owned).collect());
        }
        self
    }

    /// The key algorithm `key` names.
    pub fn key_algorithm(&self) -> Result<KeyAlgorithm, CfsslError> {
        let key = self.key.clone().unwrap_or_default();
        let algo = key.algo.as_deref().unwrap_or("ecdsa");
        match (algo, key.size) {
            ("rsa", None | Some(2048)) => Ok(KeyAlgorithm::Rsa2048),
            ("rsa", Some(3072)) => Ok(KeyAlgorithm::Rsa3072),
            ("rsa", Some(4096)) => Ok(KeyAlgorithm::Rsa4096),
            ("ecdsa", None | Some(256)) => Ok(KeyAlgorithm::EcdsaP256),
            ("ecdsa", Some(384)) => Ok(KeyAlgorithm::EcdsaP384),
            ("rsa", Some(n)) => Err(invalid(
                "key.size",
                format!("{n} is not supported for rsa (2048, 3072, 4096)"),
            )),
            ("ecdsa", Some(n)) => Err(invalid(
                "key.size",
                format!("{n} is not supported for ecdsa (256, 384)"),
            )),
            (other, _) => Err(invalid(
                "key.algo",
                format!("\"{other}\" is not supported (rsa, ecdsa)"),
            )),
        }
    }

    /// The subject: `C`, `ST`, `L`, `O`, `OU` of every `names` entry (empty values skipped),
    /// then `CN`; encoded in Go's order (C, ST, L, O, OU, CN).
    pub fn subject(&self) -> Subject {
        let mut s = Subject::default();
        let push = |v: &mut Vec<String>, x: &str| {
            if !x.is_empty() {
                v.push(x.to_owned());
            }
        };
        for n in self.names.iter().flatten() {
            push(&mut s.countries, &n.country);
            push(&mut s.provinces, &n.province);
            push(&mut s.localities, &n.locality);
            push(&mut s.organizations, &n.organization);
            push(&mut s.organizational_units, &n.organizational_unit);
        }
        if !self.common_name.is_empty() {
            s.common_name = Some(self.common_name.clone());
        }
        s
    }

    /// The SANs of `hosts` ([`split_hosts`]).
    pub fn subject_alt_names(&self) -> SubjectAltNames {
        split_hosts(self.hosts.as_deref().unwrap_or(&[]))
    }

    /// The CA validity and path length of `ca` (defaults: 43800h, none).
    fn ca_params(&self) -> Result<(Duration, Option<u8>), CfsslError> {
        let Some(ca) = &self.ca else {
            return Ok((CFSSL_CA_VALIDITY, None));
        };
        let expiry = match &ca.expiry {
            Some(e) => parse_duration(e).map_err(|err| invalid("ca.expiry", err.to_string()))?,
            None => CFSSL_CA_VALIDITY,
        };
        let path_len = match ca.pathlen {
            Some(0) | None if ca.pathlenzero == Some(true) => Some(0),
            Some(0) | None => None,
            Some(n) => Some(n),
        };
        Ok((expiry, path_len))
    }

    /// Generates the key and signs the request with it; `ca` adds a BasicConstraints request
    /// (CA:TRUE with the path length), as cfssl's request of a CA has.
    fn key_and_csr(&self, ca: Option<BasicConstraints>) -> Result<(PrivateKey, Csr), CfsslError> {
        let alg = self.key_algorithm()?;
        let key = PrivateKey::generate(alg)?;
        let mut builder =
            CsrBuilder::new(self.subject()).subject_alt_names(self.subject_alt_names());
        if let Some(bc) = ca {
            builder = builder.basic_constraints(bc);
        }
        let csr = builder.sign(&key)?;
        Ok((key, csr))
    }
}

/// cfssl's split of `hosts` into SANs: an IP address (an IPv4-mapped IPv6 one as IPv4, as Go
/// writes it), else an email address (`local@domain`), else a URI (`scheme:...`), else a DNS
/// name.
pub fn split_hosts(hosts: &[String]) -> SubjectAltNames {
    let mut san = SubjectAltNames::default();
    for h in hosts {
        if let Ok(ip) = h.parse::<IpAddr>() {
            // An IPv4-mapped IPv6 address is the IPv4 address, as Go's x509 writes it
            // (`ip.To4()`): 4 bytes, which a TLS client checking 10.0.0.1 compares.
            san.ips.push(ip.to_canonical());
        } else if is_email(h) {
            san.emails.push(h.clone());
        } else if is_uri(h) {
            san.uris.push(h.clone());
        } else {
            san.dns.push(h.clone());
        }
    }
    san
}

fn is_email(h: &str) -> bool {
    match h.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !h.contains(|c: char| c.is_whitespace() || "<>()[]\\,;:\"".contains(c))
        }
        None => false,
    }
}

/// A scheme (a letter, then letters, digits, `+`, `-`, `.`), a colon and something after it.
fn is_uri(h: &str) -> bool {
    let Some((scheme, rest)) = h.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !h.contains(char::is_whitespace)
}

/// cfssl's signing config (`config.json`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// `signing`.
    pub signing: Signing,
}

/// `signing` of a config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// `default`: the profile used without `--profile`.
    #[serde(default)]
    pub default: Option<SigningProfile>,
    /// `profiles`: named profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, SigningProfile>,
}

/// One profile of a signing config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningProfile {
    /// `usages`: cfssl's names ([`KEY_USAGES`], [`EXT_KEY_USAGES`]).
    #[serde(default)]
    pub usages: Vec<String>,
    /// `expiry`: a Go duration.
    #[serde(default)]
    pub expiry: Option<String>,
    /// `ca_constraint`: asks for a CA certificate (refused for the leaves `gencert` makes).
    #[serde(default)]
    pub ca_constraint: Option<CaConstraint>,
}

/// `ca_constraint` of a profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConstraint {
    /// `is_ca`.
    #[serde(default)]
    pub is_ca: bool,
    /// `max_path_len`.
    #[serde(default)]
    pub max_path_len: i64,
    /// `max_path_len_zero`.
    #[serde(default)]
    pub max_path_len_zero: bool,
}

/// A resolved profile: what a certificate signed with it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningPolicy {
    /// The profile's name (`default` for the default profile).
    pub name: String,
    /// KeyUsage bits.
    pub key_usage: KeyUsage,
    /// ExtendedKeyUsage, in the order of `usages`.
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// Validity.
    pub expiry: Duration,
    /// Where `expiry` was set (`signing.profiles.NAME.expiry`, `signing.default.expiry`, or
    /// `cfssl's default` when neither has one).
    pub expiry_field: String,
    /// Whether the profile asks for CA:TRUE (`ca_constraint.is_ca`).
    pub is_ca: bool,
}

impl SigningPolicy {
    /// cfssl's built-in profile, used without a config: `signing`, `key encipherment`,
    /// `server auth`, `client auth`, 8760h.
    pub fn cfssl_default() -> Self {
        SigningPolicy {
            name: "default".into(),
            key_usage: KeyUsage::DIGITAL_SIGNATURE.union(KeyUsage::KEY_ENCIPHERMENT),
            ext_key_usage: vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
            expiry: CFSSL_LEAF_VALIDITY,
            expiry_field: "cfssl's default".into(),
            is_ca: false,
        }
    }
}

/// Maps cfssl's usage names to KeyUsage bits and EKUs (in order, without repeats); an unknown
/// name is an error naming it (`field` is the path of `usages`).
pub fn map_usages(
    field: &str,
    usages: &[String],
) -> Result<(KeyUsage, Vec<ExtKeyUsage>), CfsslError> {
    let mut ku = KeyUsage::empty();
    let mut eku: Vec<ExtKeyUsage> = Vec::new();
    for u in usages {
        if let Some((_, bit)) = KEY_USAGES.iter().find(|(n, _)| n == u) {
            ku = ku.union(*bit);
        } else if let Some((_, e)) = EXT_KEY_USAGES.iter().find(|(n, _)| n == u) {
            if !eku.contains(e) {
                eku.push(e.clone());
            }
        } else {
            return Err(invalid(
                field,
                format!(
                    "unknown usage \"{u}\" (cfssl's usages: {})",
                    KEY_USAGES
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(EXT_KEY_USAGES.iter().map(|(n, _)| *n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok((ku, eku))
}

impl SigningConfig {
    /// Reads a signing config, refusing unknown fields, and checks every profile (usages and
    /// expiry), so that an error names the profile even when another one is used.
    pub fn from_json(json: &[u8]) -> Result<Self, CfsslError> {
        let config: SigningConfig = from_json(json)?;
        if let Some(d) = &config.signing.default {
            config.resolve("signing.default", "default", d, false)?;
        }
        for (name, p) in &config.signing.profiles {
            config.resolve(&format!("signing.profiles.{name}"), name, p, false)?;
        }
        Ok(config)
    }

    /// The profile `name` (`None`: `signing.default`).
    pub fn policy(&self, name: Option<&str>) -> Result<SigningPolicy, CfsslError> {
        match name {
            None => match &self.signing.default {
                Some(d) => self.resolve("signing.default", "default", d, true),
                None => Err(invalid(
                    "signing.default",
                    "missing: give --profile or a default profile",
                )),
            },
            Some(n) => match self.signing.profiles.get(n) {
                Some(p) => self.resolve(&format!("signing.profiles.{n}"), n, p, true),
                None => Err(CfsslError::UnknownProfile {
                    name: n.to_owned(),
                    known: if self.signing.profiles.is_empty() {
                        "none".into()
                    } else {
                        self.signing
                            .profiles
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                }),
            },
        }
    }

    fn resolve(
        &self,
        field: &str,
        name: &str,
        p: &SigningProfile,
        used: bool,
    ) -> Result<SigningPolicy, CfsslError> {
        let (key_usage, ext_key_usage) = map_usages(&format!("{field}.usages"), &p.usages)?;
        if used && key_usage.is_empty() && ext_key_usage.is_empty() {
            return Err(invalid(
                format!("{field}.usages"),
                "no usage: a profile used for signing needs at least one (as cfssl)",
            ));
        }
        let expiry_text = p
            .expiry
            .as_ref()
            .map(|e| (format!("{field}.expiry"), e))
            .or_else(|| {
                self.signing
                    .default
                    .as_ref()
                    .and_then(|d| d.expiry.as_ref())
                    .map(|e| ("signing.default.expiry".to_owned(), e))
            });
        let (expiry, expiry_field) = match expiry_text {
            Some((f, e)) => (
                parse_duration(e).map_err(|err| invalid(f.clone(), err.to_string()))?,
                f,
            ),
            None => (CFSSL_LEAF_VALIDITY, "cfssl's default".to_owned()),
        };
        Ok(SigningPolicy {
            name: name.to_owned(),
            key_usage,
            ext_key_usage,
            expiry,
            expiry_field,
            is_ca: p.ca_constraint.as_ref().is_some_and(|c| c.is_ca),
        })
    }
}

/// cfssl's validity window: NotBefore = `now` rounded to the minute less 5 minutes,
/// NotAfter = NotBefore + `expiry`.
pub fn cfssl_window(now: OffsetDateTime, expiry: Duration) -> Window {
    let within = Duration::seconds(i64::from(now.second()))
        + Duration::nanoseconds(i64::from(now.nanosecond()));
    let minute = now - within;
    let rounded = if within >= Duration::seconds(30) {
        minute + Duration::minutes(1)
    } else {
        minute
    };
    let not_before = rounded - CFSSL_BACKDATE;
    Window::new(not_before, not_before + expiry)
}

/// [`cfssl_window`], refused ([`CfsslError::ExpiresAtOnce`]) when it has ended by `now`.
fn live_window(now: OffsetDateTime, expiry: Duration, field: &str) -> Result<Window, CfsslError> {
    let window = cfssl_window(now, expiry);
    if window.not_after <= now {
        return Err(CfsslError::ExpiresAtOnce {
            field: field.to_owned(),
            expiry: crate::format_duration(expiry),
            not_after: crate::rfc3339(window.not_after),
        });
    }
    Ok(window)
}

/// What `cfssl gencert` prints: the certificate, the request and the new private key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate.
    pub certificate: Certificate,
    /// The request signed with the new key.
    pub csr: Csr,
    /// The new private key, PEM (PKCS#1 for RSA, SEC1 for ECDSA, as cfssl writes them).
    pub key_pem: Zeroizing<String>,
}

impl Issued {
    /// cfssl's JSON result, `{"cert":..., "csr":..., "key":...}`, which `cfssljson -bare NAME`
    /// turns into `NAME.pem`, `NAME.csr` and `NAME-key.pem`.
    pub fn to_json(&self) -> Result<Zeroizing<String>, CfsslError> {
        let cert = self.certificate.to_pem();
        let csr = self.csr.to_pem();
        let mut out = Zeroizing::new(String::with_capacity(
            cert.len() + csr.len() + self.key_pem.len() * 2 + 64,
        ));
        out.push_str("{\"cert\":");
        push_json_string(&mut out, &cert)?;
        out.push_str(",\"csr\":");
        push_json_string(&mut out, &csr)?;
        out.push_str(",\"key\":");
        push_json_string(&mut out, &self.key_pem)?;
        out.push('}');
        Ok(out)
    }
}

/// Appends `s` as a JSON string without leaving a copy of it behind in a freed buffer.
fn push_json_string(out: &mut Zeroizing<String>, s: &str) -> Result<(), CfsslError> {
    let quoted =
        Zeroizing::new(serde_json::to_string(s).map_err(|e| CfsslError::Json(e.to_string()))?);
    out.push_str(&quoted);
    Ok(())
}

/// A CA made by [`init_ca`], and the same as [`Issued`].
#[derive(Debug)]
pub struct NewCa {
    /// The CA, with its key.
    pub authority: CertificateAuthority,
    /// Its certificate, request and key.
    pub issued: Issued,
}

/// `cfssl gencert -initca`: a new key, a request, and a self-signed CA certificate with
/// cfssl's CA extensions (KeyUsage keyCertSign + cRLSign, BasicConstraints CA:TRUE with
/// `ca.pathlen`, a SHA-1 SubjectKeyIdentifier, the SANs of `hosts`), valid for `ca.expiry`
/// (43800h) from cfssl's NotBefore.
pub fn init_ca(req: &CsrRequest, now: OffsetDateTime) -> Result<NewCa, CfsslError> {
    let (expiry, path_len) = req.ca_params()?;
    let window = live_window(now, expiry, "ca.expiry")?;
    // cfssl asks for CA:TRUE in the request only when it has a `ca` object.
    let asked = req
        .ca
        .as_ref()
        .map(|_| BasicConstraints { ca: true, path_len });
    let (key, csr) = req.key_and_csr(asked)?;
    let key_pem = key.to_pem()?;
    let spec = CaSpec {
        subject: req.subject(),
        window,
        path_len,
        key_id: KeyIdMethod::Sha1,
    };
    let profile = CaProfile::Cfssl {
        subject_alt_names: req.subject_alt_names(),
    };
    let authority = CertificateAuthority::create_root_with_profile(&spec, Arc::new(key), &profile)?;
    let certificate = authority.certificate().clone();
    Ok(NewCa {
        authority,
        issued: Issued {
            certificate,
            csr,
            key_pem,
        },
    })
}

/// `cfssl gencert -ca -ca-key -config -profile`: a new key, a request, and a leaf signed by
/// `ca` under `policy`: the request's subject and SANs, the profile's KeyUsage (critical) and
/// EKUs, BasicConstraints CA:FALSE, SHA-1 SubjectKeyIdentifier, AuthorityKeyIdentifier, a
/// 159-bit random serial, cfssl's validity window. A profile asking for CA powers
/// (`ca_constraint.is_ca`, `cert sign`) is refused, as is a certificate that would outlive `ca`.
pub fn gencert(
    req: &CsrRequest,
    ca: &CertificateAuthority,
    policy: &SigningPolicy,
    now: OffsetDateTime,
) -> Result<Issued, CfsslError> {
    if policy.is_ca {
        return Err(CfsslError::CaPowers {
            profile: policy.name.clone(),
            what: "a CA certificate (ca_constraint.is_ca)",
        });
    }
    if policy.key_usage.contains(KeyUsage::KEY_CERT_SIGN) {
        return Err(CfsslError::CaPowers {
            profile: policy.name.clone(),
            what: "the usage \"cert sign\"",
        });
    }
    if policy.key_usage.is_empty() && policy.ext_key_usage.is_empty() {
        return Err(invalid(
            format!("profile {}", policy.name),
            "no usage: a profile used for signing needs at least one (as cfssl)",
        ));
    }
    let window = live_window(now, policy.expiry, &policy.expiry_field)?;
    let (key, csr) = req.key_and_csr(None)?;
    let key_pem = key.to_pem()?;
    let mut serial = [0u8; 20];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| kubepki_keys::Error::Generation)?;
    serial[0] &= 0x7f;
    let spec = IssueSpec {
        key_usage: policy.key_usage,
        serial: Some(serial.to_vec()),
        subject_key_id: Some(KeyIdMethod::Sha1),
        ..IssueSpec::new(
            req.subject(),
            key.public_key_der(),
            window,
            CaExpiry::Refuse,
        )
    }
    .with_ext_key_usage(policy.ext_key_usage.clone())
    .with_subject_alt_names(req.subject_alt_names());
    let certificate = ca.issue(&spec)?;
    Ok(Issued {
        certificate,
        csr,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn window_is_cfssls_rounded_minute_less_five() -> R {
        let at = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339);
        for (now, nb) in [
            ("2026-12-03T20:06:38Z", "2026-12-03T20:02:00Z"),
            ("2026-12-03T20:06:29.999Z", "2026-12-03T20:01:00Z"),
            ("2026-12-03T20:06:30Z", "2026-12-03T20:02:00Z"),
        ] {
            let w = cfssl_window(at(now)?, Duration::hours(8760));
            assert_eq!(w.not_before, at(nb)?, "{now}");
            assert_eq!(w.not_after - w.not_before, Duration::hours(8760));
        }
        Ok(())
    }

    #[test]
    fn debug_output_never_shows_the_private_key() -> R {
        let req = CsrRequest::from_json(br#"{"CN": "rootCA"}"#)?;
        let ca = init_ca(&req, OffsetDateTime::now_utc())?;
        let body = ca
            .issued
            .key_pem
            .lines()
            .nth(1)
            .ok_or("a PEM key has a body")?
            .to_owned();
        for shown in [format!("{:?}", ca.issued), format!("{ca:?}")] {
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(!shown.contains(&body), "{shown}");
        }
        Ok(())
    }

    #[test]
    fn an_empty_hostname_keeps_the_hosts_of_the_request() -> R {
        // cfssl gencert: `if c.Hostname != "" { req.Hosts = signer.SplitHosts(c.Hostname) }`.
        let req = CsrRequest::from_json(br#"{"CN": "x", "hosts": ["a.example", "10.0.0.1"]}"#)?;
        let kept = req.clone().with_hostname("");
        assert_eq!(kept.hosts, req.hosts);
        let replaced = req.with_hostname("b.example");
        assert_eq!(replaced.hosts, Some(vec!["b.example".to_owned()]));
        Ok(())
    }

    #[test]
    fn ipv4_mapped_hosts_are_ipv4_addresses_as_go_writes_them() {
        // Go's x509 writes an IPv4-mapped IPv6 address as its 4 IPv4 bytes (`ip.To4()`).
        let san = split_hosts(&["::ffff:10.0.0.1".to_owned(), "::1".to_owned()]);
        assert_eq!(
            san.ips,
            [
                IpAddr::from([10, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            ]
        );
    }

    #[test]
    fn an_expiry_that_ends_before_issuance_is_refused() -> R {
        // NotBefore is 5 minutes back: an expiry of a minute is over at once.
        let now = OffsetDateTime::now_utc();
        let Err(e) = init_ca(
            &CsrRequest::from_json(br#"{"CN": "x", "ca": {"expiry": "1m"}}"#)?,
            now,
        ) else {
            return Err("a CA expired at issuance was made".into());
        };
        assert!(
            e.to_string().starts_with("ca.expiry: \"1m\" ends at "),
            "{e}"
        );
        let root = init_ca(&CsrRequest::from_json(br#"{"CN": "r"}"#)?, now)?;
        let config = SigningConfig::from_json(
            br#"{"signing": {"profiles": {"p": {"usages": ["any"], "expiry": "1s"}}}}"#,
        )?;
        let req = CsrRequest::from_json(br#"{"CN": "leaf"}"#)?;
        let Err(e) = gencert(&req, &root.authority, &config.policy(Some("p"))?, now) else {
            return Err("a leaf expired at issuance was made".into());
        };
        assert!(matches!(e, CfsslError::ExpiresAtOnce { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("signing.profiles.p.expiry: \"1s\" ends at "),
            "{e}"
        );
        // Six minutes leave about one.
        let six = SigningConfig::from_json(
            br#"{"signing": {"profiles": {"p": {"usages": ["any"], "expiry": "6m"}}}}"#,
        )?;
        gencert(&req, &root.authority, &six.policy(Some("p"))?, now)?;
        Ok(())
    }

    #[test]
    fn hosts_split_as_cfssl_splits_them() {
        let hosts: Vec<String> = [
            "localhost",
            "127.0.0.1",
            "::1",
            "jane@example.com",
            "spiffe://c/ns/x",
            "*.example.com",
        ]
        .map(str::to_owned)
        .to_vec();
        let san = split_hosts(&hosts);
        assert_eq!(san.dns, ["localhost", "*.example.com"]);
        assert_eq!(san.ips.len(), 2);
        assert_eq!(san.emails, ["jane@example.com"]);
        assert_eq!(san.uris, ["spiffe://c/ns/x"]);
    }

    #[test]
    fn request_fields_map_to_subject_key_and_ca() -> R {
        let req = CsrRequest::from_json(
            br#"{"CN": "jane", "names": [{"C": "KR", "O": "a", "OU": ""}, {"O": "b"}],
                "key": {"algo": "rsa"}, "ca": {"pathlen": 0}}"#,
        )?;
        let s = req.subject();
        assert_eq!(s.organizations, ["a", "b"]);
        assert_eq!(s.countries, ["KR"]);
        assert!(s.organizational_units.is_empty());
        assert_eq!(req.key_algorithm()?, KeyAlgorithm::Rsa2048);
        assert_eq!(req.ca_params()?, (CFSSL_CA_VALIDITY, None));
        let zero =
            CsrRequest::from_json(br#"{"CN": "x", "ca": {"pathlen": 0, "pathlenzero": true}}"#)?;
        assert_eq!(zero.ca_params()?.1, Some(0));
        assert_eq!(zero.key_algorithm()?, KeyAlgorithm::EcdsaP256);
        let Err(e) = CsrRequest::from_json(br#"{"CN": "x", "key": {"algo": "rsa", "bits": 2048}}"#)
        else {
            return Err("an unknown field was accepted".into());
        };
        assert!(e.to_string().contains("unknown field `bits`"), "{e}");
        Ok(())
    }

    #[test]
    fn profiles_resolve_usages_and_expiry() -> R {
        let c = SigningConfig::from_json(
            br#"{"signing": {"default": {"expiry": "100h"}, "profiles": {
                "a": {"usages": ["client auth", "s/mime", "email protection", "signing"]},
                "b": {"usages": ["key encipherment"], "expiry": "1h30m"}}}}"#,
        )?;
        let a = c.policy(Some("a"))?;
        assert_eq!(a.key_usage, KeyUsage::DIGITAL_SIGNATURE);
        assert_eq!(
            a.ext_key_usage,
            [ExtKeyUsage::ClientAuth, ExtKeyUsage::EmailProtection]
        );
        assert_eq!(a.expiry, Duration::hours(100));
        assert_eq!(c.policy(Some("b"))?.expiry, Duration::minutes(90));
        // The default profile has no usages: it cannot sign.
        assert!(c.policy(None).is_err());
        let bare =
            SigningConfig::from_json(br#"{"signing": {"profiles": {"p": {"usages": ["any"]}}}}"#)?;
        assert_eq!(bare.policy(Some("p"))?.expiry, CFSSL_LEAF_VALIDITY);
        Ok(())
    }
}
