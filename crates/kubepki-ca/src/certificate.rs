use der::{Decode, Encode};
use kubepki_csr::{ExtKeyUsage, Extensions, KeyUsage, SignedData, Subject, SubjectAltNames};
use kubepki_keys::pem;
use time::OffsetDateTime;

use crate::Error;

/// PEM label of a certificate.
pub const LABEL_CERTIFICATE: &str = "CERTIFICATE";

/// An X.509 certificate: its DER and a parsed view of the fields kubepki uses.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    signed: SignedData,
    version: u8,
    serial: Vec<u8>,
    subject: Subject,
    subject_der: Vec<u8>,
    issuer: Subject,
    issuer_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    public_key: Vec<u8>,
    extensions: Extensions,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of PEM text (later blocks, e.g. intermediates, are
    /// ignored as Go's readers ignore them).
    pub fn from_pem(input: &[u8]) -> Result<Self, Error> {
        Self::chain_from_pem(input)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NoCertificate {
                found: "nothing".into(),
            })
    }

    /// Reads every `CERTIFICATE` block of PEM text, in order (at least one).
    pub fn chain_from_pem(input: &[u8]) -> Result<Vec<Self>, Error> {
        let blocks = pem::decode_all(input)?;
        if blocks.is_empty() {
            return Err(Error::NoCertificate {
                found: "no PEM block at all".into(),
            });
        }
        let certs: Vec<_> = blocks
            .iter()
            .filter(|b| b.label() == LABEL_CERTIFICATE)
            .map(|b| Certificate::from_der(b.contents()))
            .collect::<Result<_, _>>()?;
        if certs.is_empty() {
            return Err(Error::NoCertificate {
                found: pem::describe_labels(&blocks),
            });
        }
        Ok(certs)
    }

    /// Reads PEM or DER, whichever `input` is.
    pub fn from_pem_or_der(input: &[u8]) -> Result<Self, Error> {
        if pem::looks_like_pem(input) {
            Self::from_pem(input)
        } else {
            Self::from_der(input)
        }
    }

    /// Reads DER.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        pem::check_len(der.len())?;
        let derr = |source: der::Error| Error::Der {
            context: None,
            source,
        };
        let signed = SignedData::parse(der, "certificate")?;
        let cert = x509_cert::Certificate::from_der(der).map_err(derr)?;
        let tbs = cert.tbs_certificate();
        if tbs.signature().oid != cert.signature_algorithm().oid {
            return Err(Error::Malformed(
                "the signature algorithm inside and outside the TBSCertificate differ".into(),
            ));
        }
        let extensions = match tbs.extensions() {
            Some(exts) => Extensions::parse(exts)?,
            None => Extensions::default(),
        };
        let time = |t: &x509_cert::time::Time| {
            let secs = t.to_unix_duration().as_secs();
            i64::try_from(secs)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .ok_or_else(|| Error::Malformed("validity time out of range".into()))
        };
        Ok(Certificate {
            der: der.to_vec(),
            version: match tbs.version() {
                x509_cert::certificate::Version::V1 => 1,
                x509_cert::certificate::Version::V2 => 2,
                x509_cert::certificate::Version::V3 => 3,
            },
            serial: tbs.serial_number().as_bytes().to_vec(),
            subject: Subject::from_name(tbs.subject())?,
            subject_der: tbs.subject().to_der().map_err(derr)?,
            issuer: Subject::from_name(tbs.issuer())?,
            issuer_der: tbs.issuer().to_der().map_err(derr)?,
            not_before: time(&tbs.validity().not_before)?,
            not_after: time(&tbs.validity().not_after)?,
            public_key: tbs.subject_public_key_info().to_der().map_err(derr)?,
            extensions,
            signed,
        })
    }

    /// DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM encoding (one `CERTIFICATE` block).
    pub fn to_pem(&self) -> String {
        pem::encode(LABEL_CERTIFICATE, &self.der).to_string()
    }

    /// X.509 version (1, 2 or 3).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Serial number, big-endian magnitude.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// Serial number as colon-free lower-case hex.
    pub fn serial_hex(&self) -> String {
        kubepki_keys::hex(&self.serial)
    }

    /// Subject.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Subject DER (`Name`).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// Issuer.
    pub fn issuer(&self) -> &Subject {
        &self.issuer
    }

    /// Issuer DER (`Name`).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// Subject CN.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.common_name.as_deref()
    }

    /// Subject O values (Kubernetes groups).
    pub fn organizations(&self) -> &[String] {
        &self.subject.organizations
    }

    /// A one-line description of the subject for messages, control and bidirectional
    /// formatting characters escaped ([`kubepki_csr::escape`]).
    pub fn display_name(&self) -> String {
        kubepki_csr::escape_text(&self.subject.to_string()).into_owned()
    }

    /// NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The subject public key, DER `SubjectPublicKeyInfo`.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    /// All parsed extensions.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// SANs (empty when the extension is absent).
    pub fn subject_alt_names(&self) -> SubjectAltNames {
        self.extensions
            .subject_alt_names
            .clone()
            .unwrap_or_default()
    }

    /// Whether BasicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.extensions
            .basic_constraints
            .is_some_and(|(bc, _)| bc.ca)
    }

    /// KeyUsage, if present.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.extensions.key_usage.map(|(k, _)| k)
    }

    /// ExtendedKeyUsage, if present, in encoded order.
    pub fn ext_key_usage(&self) -> Option<&[ExtKeyUsage]> {
        self.extensions.ext_key_usage.as_deref()
    }

    /// SubjectKeyIdentifier, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.extensions.subject_key_id.as_deref()
    }

    /// AuthorityKeyIdentifier keyIdentifier, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.extensions.authority_key_id.as_deref()
    }

    /// SHA-256 of the DER, lower-case hex.
    pub fn fingerprint_sha256(&self) -> String {
        kubepki_keys::sha256_hex(&self.der)
    }

    /// kubeadm's discovery hash: `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn public_key_pin(&self) -> String {
        format!("sha256:{}", kubepki_keys::sha256_hex(&self.public_key))
    }

    /// The signature algorithm OID.
    pub fn signature_algorithm(&self) -> const_oid::ObjectIdentifier {
        self.signed.algorithm
    }

    /// Whether issuer and subject names are identical.
    pub fn is_self_issued(&self) -> bool {
        self.issuer_der == self.subject_der
    }

    /// Whether `now` lies in [NotBefore, NotAfter].
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Checks the signature with `issuer_spki` (DER `SubjectPublicKeyInfo`).
    pub fn verify_signature(&self, issuer_spki: &[u8]) -> Result<(), kubepki_keys::Error> {
        self.signed.verify(issuer_spki)
    }

    /// Checks the validity window against `now`.
    pub fn check_time(&self, now: OffsetDateTime) -> Result<(), Error> {
        if now < self.not_before {
            return Err(Error::NotYetValid {
                subject: self.display_name(),
                not_before: rfc3339(self.not_before),
            });
        }
        if now > self.not_after {
            return Err(Error::Expired {
                subject: self.display_name(),
                not_after: rfc3339(self.not_after),
            });
        }
        Ok(())
    }
}

/// RFC 3339 text of a time, in UTC with second precision (`2026-08-19T09:03:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
