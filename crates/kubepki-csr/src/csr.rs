use std::net::IpAddr;

use der::{Decode, Encode};
use kubepki_keys::{PrivateKey, pem};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use crate::signed::{SignedData, sign_and_wrap};
use crate::x509::{
    BasicConstraints, ExtKeyUsage, Extension, Extensions, KeyUsage, Subject, SubjectAltNames,
    der_error, oids,
};
use crate::{Error, InvalidValue};

/// PEM label of a PKCS#10 request.
pub const LABEL_CSR: &str = "CERTIFICATE REQUEST";
const LABEL_CSR_OLD: &str = "NEW CERTIFICATE REQUEST";

/// Builds and signs a PKCS#10 certificate signing request.
///
/// ```
/// use kubepki_csr::{CsrBuilder, Subject};
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
///
/// let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
/// let csr = CsrBuilder::new(Subject::cn("jane").with_organizations(["dev"]))
///     .dns("jane.example.com")
///     .sign(&key)?;
/// assert_eq!(csr.subject().organizations, ["dev"]);
/// # Ok::<(), kubepki_csr::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CsrBuilder {
    subject: Subject,
    san: SubjectAltNames,
    key_usage: Option<KeyUsage>,
    ext_key_usage: Vec<ExtKeyUsage>,
    basic_constraints: Option<BasicConstraints>,
}

impl CsrBuilder {
    /// Starts a request for `subject`.
    pub fn new(subject: Subject) -> Self {
        CsrBuilder {
            subject,
            ..CsrBuilder::default()
        }
    }

    /// Adds a DNS SAN.
    pub fn dns(mut self, name: impl Into<String>) -> Self {
        self.san.dns.push(name.into());
        self
    }

    /// Adds an IP SAN.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.san.ips.push(ip);
        self
    }

    /// Adds a URI SAN.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.san.uris.push(uri.into());
        self
    }

    /// Adds an email SAN.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.san.emails.push(email.into());
        self
    }

    /// Replaces all SANs.
    pub fn subject_alt_names(mut self, san: SubjectAltNames) -> Self {
        self.san = san;
        self
    }

    /// Requests a KeyUsage extension.
    pub fn key_usage(mut self, ku: KeyUsage) -> Self {
        self.key_usage = Some(ku);
        self
    }

    /// Requests an ExtendedKeyUsage extension.
    pub fn ext_key_usage(mut self, ekus: Vec<ExtKeyUsage>) -> Self {
        self.ext_key_usage = ekus;
        self
    }

    /// Requests a BasicConstraints extension.
    pub fn basic_constraints(mut self, bc: BasicConstraints) -> Self {
        self.basic_constraints = Some(bc);
        self
    }

    /// Signs the request with `key` (whose public key it carries).
    pub fn sign(&self, key: &PrivateKey) -> Result<Csr, Error> {
        if self.subject.is_empty() && self.san.encodes_nothing() {
            return Err(Error::Invalid(InvalidValue::Empty));
        }
        self.subject.validate()?;
        self.san.validate()?;
        let mut exts = Vec::new();
        if let Some(ku) = self.key_usage {
            exts.push(Extension::key_usage(ku)?);
        }
        if !self.ext_key_usage.is_empty() {
            exts.push(Extension::ext_key_usage(&self.ext_key_usage)?);
        }
        if let Some(bc) = self.basic_constraints {
            exts.push(Extension::basic_constraints(bc)?);
        }
        if !self.san.encodes_nothing() {
            exts.push(Extension::subject_alt_name(
                &self.san,
                self.subject.is_empty(),
            )?);
        }
        // One extensionRequest attribute with one value when there is an extension, no
        // attribute at all otherwise (`[0]` empty), as Go writes it.
        let mut attributes = Attributes::new();
        if !exts.is_empty() {
            let req = ExtensionReq(
                exts.iter()
                    .map(Extension::to_x509)
                    .collect::<Result<_, _>>()?,
            );
            attributes
                .insert(Attribute::try_from(req).map_err(der_error)?)
                .map_err(der_error)?;
        }
        let info = CertReqInfo {
            version: Version::V1,
            subject: self.subject.to_name()?,
            public_key: SubjectPublicKeyInfoOwned::from_der(key.public_key_der())
                .map_err(der_error)?,
            attributes,
        }
        .to_der()
        .map_err(der_error)?;
        let der = sign_and_wrap(&info, key)?;
        Csr::from_der(&der)
    }
}

/// A parsed PKCS#10 request whose self-signature has been verified.
#[derive(Clone, Debug)]
pub struct Csr {
    der: Vec<u8>,
    subject: Subject,
    public_key: Vec<u8>,
    signature_algorithm: const_oid::ObjectIdentifier,
    extensions: Extensions,
}

impl Csr {
    /// Reads the first `CERTIFICATE REQUEST` block of PEM text.
    pub fn from_pem(input: &[u8]) -> Result<Self, Error> {
        let blocks = pem::decode_all(input)?;
        if blocks.is_empty() {
            return Err(kubepki_keys::Error::NoPemBlock.into());
        }
        let mut csrs = blocks
            .iter()
            .filter(|b| b.label() == LABEL_CSR || b.label() == LABEL_CSR_OLD);
        match (csrs.next(), csrs.next()) {
            (Some(b), None) => Csr::from_der(b.contents()),
            // Readers disagree on which of several requests a file holds (Go's pem.Decode skips
            // a block it cannot parse and takes the next): one request a file.
            (Some(_), Some(_)) => Err(kubepki_keys::Error::Pem(
                kubepki_keys::PemProblem::SeveralOfOneKind {
                    what: "certificate requests",
                    labels: pem::describe_labels(&blocks),
                },
            )
            .into()),
            (None, _) => Err(Error::NoCsr {
                found: pem::describe_labels(&blocks),
            }),
        }
    }

    /// Reads PEM or DER, whichever `input` is.
    pub fn from_pem_or_der(input: &[u8]) -> Result<Self, Error> {
        if pem::looks_like_pem(input) {
            Csr::from_pem(input)
        } else {
            Csr::from_der(input)
        }
    }

    /// Reads DER and verifies the self-signature.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        pem::check_len(der.len())?;
        let signed = SignedData::parse(der, "PKCS#10")?;
        let req = CertReq::from_der(der).map_err(crate::x509::der_error)?;
        let public_key = req
            .info
            .public_key
            .to_der()
            .map_err(crate::x509::der_error)?;
        // A key too small to use is named as such, before its signature is looked at (the
        // verifier refuses RSA below 2048 bits as "does not verify").
        if let Err(e @ kubepki_keys::Error::RsaTooSmall { .. }) =
            kubepki_keys::public_key_algorithm(&public_key)
        {
            return Err(Error::Key(e));
        }
        signed.verify(&public_key).map_err(|e| match e {
            kubepki_keys::Error::BadSignature => Error::BadSignature,
            other => Error::Key(other),
        })?;
        let subject = Subject::from_name(&req.info.subject)?;
        // Exactly one extensionRequest attribute with exactly one value, or none: Go merges
        // several attributes and reads the first value of each, OpenSSL shows the first, and
        // `der` sorts a SET OF on decoding, so any other shape could be read differently by the
        // reviewer's tools and by kubepki. Duplicate extensions are refused in
        // `Extensions::parse`, as Go refuses them. Other attributes (challengePassword, ...) are
        // ignored, duplicates included, as Go ignores them: nothing is issued from them.
        let ext_attrs: Vec<_> = req
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oids::EXTENSION_REQUEST)
            .collect();
        if ext_attrs.len() > 1 {
            return Err(Error::ExtensionRequestAttributes {
                count: ext_attrs.len(),
            });
        }
        let mut extensions = Extensions::default();
        if let Some(attr) = ext_attrs.first() {
            let values: Vec<_> = attr.values.iter().collect();
            if values.len() > 1 {
                return Err(Error::ExtensionRequestValues {
                    count: values.len(),
                });
            }
            if let Some(value) = values.first() {
                let bytes = value.to_der().map_err(crate::x509::der_error)?;
                let req_exts = ExtensionReq::from_der(&bytes).map_err(crate::x509::der_error)?;
                extensions = Extensions::parse(&req_exts.0)?;
            }
        }
        Ok(Csr {
            der: der.to_vec(),
            subject,
            public_key,
            signature_algorithm: signed.algorithm,
            extensions,
        })
    }

    /// DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM encoding (`CERTIFICATE REQUEST`).
    pub fn to_pem(&self) -> String {
        pem::encode(LABEL_CSR, &self.der).to_string()
    }

    /// The subject.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The subject CN.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.common_name.as_deref()
    }

    /// The subject O values (Kubernetes groups).
    pub fn organizations(&self) -> &[String] {
        &self.subject.organizations
    }

    /// The requested SANs (empty when none were requested).
    pub fn subject_alt_names(&self) -> SubjectAltNames {
        self.extensions
            .subject_alt_names
            .clone()
            .unwrap_or_default()
    }

    /// The requested public key (DER `SubjectPublicKeyInfo`).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    /// The signature algorithm OID of the self-signature.
    pub fn signature_algorithm(&self) -> const_oid::ObjectIdentifier {
        self.signature_algorithm
    }

    /// The requested extensions.
    pub fn requested_extensions(&self) -> &Extensions {
        &self.extensions
    }
}
