use std::sync::Arc;

use der::DateTime;
use der::{Decode, Encode, Sequence};
use kubepki_csr::{
    BasicConstraints, Csr, ExtKeyUsage, Extension, KeyUsage, Subject, SubjectAltNames,
    algorithm_identifier, wrap_signed,
};
use kubepki_keys::{PrivateKey, SignatureAlgorithm};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use time::{Duration, OffsetDateTime};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::certificate::rfc3339;
use crate::signing::check_algorithm;
use crate::{CaSigningKey, Certificate, Error};

/// kubeadm's backdate: NotBefore = now - 5 minutes, for every certificate (v1.31+).
pub const BACKDATE: Duration = Duration::minutes(5);
/// kubeadm's default leaf validity, 8760h.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::hours(8760);
/// kubeadm's default CA validity, 87600h.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::hours(87600);

/// KeyUsage kubeadm gives every leaf: digitalSignature + keyEncipherment (for every key type).
pub const LEAF_KEY_USAGE: KeyUsage = KeyUsage::DIGITAL_SIGNATURE.union(KeyUsage::KEY_ENCIPHERMENT);
/// KeyUsage kubeadm gives every CA: digitalSignature + keyEncipherment + keyCertSign.
pub const CA_KEY_USAGE: KeyUsage = LEAF_KEY_USAGE.union(KeyUsage::KEY_CERT_SIGN);

/// A validity window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
}

impl Window {
    /// kubeadm's rule (v1.31+): NotBefore = `now` - 5 min, NotAfter = `now` + `validity`.
    /// Times are cut to whole seconds, the precision certificates carry.
    pub fn kubeadm(now: OffsetDateTime, validity: Duration) -> Self {
        Window::new(now - BACKDATE, now + validity)
    }

    /// An explicit window (cut to whole seconds).
    pub fn new(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        let whole = |t: OffsetDateTime| t - Duration::nanoseconds(i64::from(t.nanosecond()));
        Window {
            not_before: whole(not_before),
            not_after: whole(not_after),
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.not_before >= self.not_after {
            return Err(Error::InvalidWindow {
                not_before: rfc3339(self.not_before),
                not_after: rfc3339(self.not_after),
            });
        }
        Ok(())
    }
}

/// What to do when a certificate would outlive the CA that signs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaExpiry {
    /// Cut NotAfter down to the CA's NotAfter (what the Kubernetes CSR signer does).
    Clamp,
    /// Refuse with [`Error::OutlivesCa`].
    Refuse,
}

/// Leaf profiles for issuing from a CSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// TLS client: EKU clientAuth.
    Client,
    /// TLS server: EKU serverAuth.
    Server,
    /// Both ends, as etcd peers: EKU serverAuth, clientAuth (this order, as kubeadm).
    Peer,
}

impl Profile {
    /// The EKUs of the profile.
    pub fn ext_key_usage(self) -> Vec<ExtKeyUsage> {
        match self {
            Profile::Client => vec![ExtKeyUsage::ClientAuth],
            Profile::Server => vec![ExtKeyUsage::ServerAuth],
            Profile::Peer => vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
        }
    }

    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Client, Profile::Server, Profile::Peer];

    /// The profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Client => "client",
            Profile::Server => "server",
            Profile::Peer => "peer",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::UnknownProfile {
                given: s.to_owned(),
            })
    }
}

/// What a new CA certificate says.
#[derive(Clone, Debug)]
pub struct CaSpec {
    /// Subject; kubeadm's CAs have just a CN (`kubernetes`, `etcd-ca`, `front-proxy-ca`).
    pub subject: Subject,
    /// Validity window.
    pub window: Window,
    /// pathLenConstraint (kubeadm's roots have none).
    pub path_len: Option<u8>,
    /// How the SubjectKeyIdentifier is derived from the public key.
    pub key_id: KeyIdMethod,
}

/// How a CA's SubjectKeyIdentifier is derived from its public key: over the subjectPublicKey
/// BIT STRING contents, as Go's `x509.CreateCertificate` does when the template has none (and
/// kubeadm never sets one; `docs/compatibility.md`, "Key identifiers").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyIdMethod {
    /// SHA-1 (RFC 5280 §4.2.1.2, method 1): Go up to 1.24, and Go 1.25+ with
    /// `GODEBUG=x509sha256skid=0` (kubeadm up to 1.34).
    #[default]
    Sha1,
    /// The first 160 bits of SHA-256 (RFC 7093 §2, method 1): Go 1.25+ (kubeadm 1.35+).
    Sha256Truncated,
}

impl KeyIdMethod {
    /// The key identifier of the DER `SubjectPublicKeyInfo` `spki_der`.
    ///
    /// ```
    /// use kubepki_ca::KeyIdMethod;
    /// let key = kubepki_keys::PrivateKey::generate(kubepki_keys::KeyAlgorithm::EcdsaP256)?;
    /// let sha1 = KeyIdMethod::Sha1.key_id(key.public_key_der())?;
    /// let sha256 = KeyIdMethod::Sha256Truncated.key_id(key.public_key_der())?;
    /// assert_eq!((sha1.len(), sha256.len()), (20, 20));
    /// assert_ne!(sha1, sha256);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key_id(self, spki_der: &[u8]) -> Result<Vec<u8>, Error> {
        use der::Decode;
        let spki =
            spki::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|source| Error::Der {
                context: Some("public key".into()),
                source,
            })?;
        let key = spki.subject_public_key.raw_bytes();
        Ok(match self {
            KeyIdMethod::Sha1 => kubepki_keys::sha1_for_key_identifier(key).to_vec(),
            KeyIdMethod::Sha256Truncated => {
                let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
                d.as_ref()[..20].to_vec()
            }
        })
    }
}

impl CaSpec {
    /// kubeadm's CA: CN only, NotBefore `now` - 5 min, NotAfter `now` + `validity`, a SHA-1
    /// key identifier (set [`CaSpec::key_id`] for kubeadm 1.35+'s).
    pub fn kubeadm(common_name: &str, now: OffsetDateTime, validity: Duration) -> Self {
        CaSpec {
            subject: Subject::cn(common_name),
            window: Window::kubeadm(now, validity),
            path_len: None,
            key_id: KeyIdMethod::Sha1,
        }
    }

    /// Checks what a CA certificate made from this spec needs of its subject: a CN (kubeadm's
    /// CA profile also puts it into the certificate's DNS SAN), printable ASCII in it (a DNS SAN
    /// is an IA5String; Go's `x509.CreateCertificate`, which kubeadm uses, refuses anything
    /// else too), and every attribute valid ([`Subject::validate`]).
    ///
    /// ```
    /// # use kubepki_ca::CaSpec;
    /// let now = time::OffsetDateTime::now_utc();
    /// assert!(CaSpec::kubeadm("My CA", now, time::Duration::days(1)).validate().is_ok());
    /// assert!(CaSpec::kubeadm("Jürgen CA", now, time::Duration::days(1)).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let Some(cn) = self.subject.common_name.as_deref() else {
            return Err(Error::EmptySubject);
        };
        self.subject.validate()?;
        if !cn.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::CaNameNotAscii { cn: cn.to_owned() });
        }
        Ok(())
    }
}

/// The extensions of a CA's own certificate that differ between the tools kubepki follows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaProfile {
    /// kubeadm's: KeyUsage (critical) digitalSignature + keyEncipherment + keyCertSign, SAN
    /// `DNS:<CN>` (the CN must then be printable ASCII, [`CaSpec::validate`]).
    #[default]
    Kubeadm,
    /// cfssl's `gencert -initca`: KeyUsage (critical) keyCertSign + cRLSign, and the SANs of
    /// the request's `hosts` (none when empty) (docs/cfssl.md).
    Cfssl {
        /// The SANs (`hosts` of the request).
        subject_alt_names: SubjectAltNames,
    },
}

/// What a new leaf certificate says.
#[derive(Clone, Debug)]
pub struct IssueSpec {
    /// Subject.
    pub subject: Subject,
    /// SANs.
    pub subject_alt_names: SubjectAltNames,
    /// KeyUsage (critical); kubeadm's leaves: [`LEAF_KEY_USAGE`].
    pub key_usage: KeyUsage,
    /// ExtendedKeyUsage, in order; empty leaves the extension out.
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// The subject's public key, DER `SubjectPublicKeyInfo`.
    pub public_key: Vec<u8>,
    /// Validity window.
    pub window: Window,
    /// What to do if the window ends after the CA's.
    pub ca_expiry: CaExpiry,
    /// An explicit serial (big-endian, positive, at most 20 octets as encoded: RFC 5280
    /// 4.1.2.2); `None` draws a random one in [1, 2^63 - 1].
    pub serial: Option<Vec<u8>>,
    /// A SubjectKeyIdentifier derived from the public key this way; `None` (kubeadm's leaves)
    /// leaves the extension out. cfssl's leaves carry one (docs/cfssl.md).
    pub subject_key_id: Option<KeyIdMethod>,
}

impl IssueSpec {
    /// A kubeadm-shaped leaf: KeyUsage digitalSignature + keyEncipherment, no EKU or SANs yet.
    pub fn new(subject: Subject, public_key: &[u8], window: Window, ca_expiry: CaExpiry) -> Self {
        IssueSpec {
            subject,
            subject_alt_names: SubjectAltNames::default(),
            key_usage: LEAF_KEY_USAGE,
            ext_key_usage: Vec::new(),
            public_key: public_key.to_vec(),
            window,
            ca_expiry,
            serial: None,
            subject_key_id: None,
        }
    }

    /// Sets the EKUs.
    pub fn with_ext_key_usage(mut self, ekus: Vec<ExtKeyUsage>) -> Self {
        self.ext_key_usage = ekus;
        self
    }

    /// Sets the SANs.
    pub fn with_subject_alt_names(mut self, san: SubjectAltNames) -> Self {
        self.subject_alt_names = san;
        self
    }
}

/// A certificate authority: its certificate and, unless it is external, its signing key.
///
/// The key is held as a [`CaSigningKey`] trait object and every signature this CA makes goes
/// through it: the software key ([`PrivateKey`], what the constructors taking one use) or
/// another implementation ([`Self::create_root_with_signing_key`],
/// [`Self::with_signing_key`]). Cloning shares the key.
///
/// ```
/// use kubepki_ca::{CaExpiry, CaSpec, CertificateAuthority, IssueSpec, Profile, Window};
/// use kubepki_csr::{CsrBuilder, Subject};
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::now_utc();
/// let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
/// let ca = CertificateAuthority::create_root(
///     &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)), ca_key)?;
///
/// let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
/// let csr = CsrBuilder::new(Subject::cn("jane").with_organizations(["dev"])).sign(&key)?;
/// let cert = ca.issue_from_csr(&csr, Profile::Client,
///     Window::kubeadm(now, Duration::hours(8760)), CaExpiry::Refuse)?;
/// ca.verify(&cert, Some(&kubepki_csr::ExtKeyUsage::ClientAuth), now)?;
/// # Ok::<(), kubepki_ca::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CertificateAuthority {
    cert: Certificate,
    key: Option<Arc<dyn CaSigningKey>>,
}

impl CertificateAuthority {
    /// Creates a self-signed root with kubeadm's CA profile: KeyUsage (critical)
    /// digitalSignature + keyEncipherment + keyCertSign, BasicConstraints (critical) CA:TRUE,
    /// SubjectKeyIdentifier, SAN `DNS:<CN>`.
    pub fn create_root(spec: &CaSpec, key: PrivateKey) -> Result<Self, Error> {
        Self::create_root_with_signing_key(spec, Arc::new(key))
    }

    /// [`Self::create_root`] with any [`CaSigningKey`]: the certificate is self-signed through
    /// `key`. Refused when the key's signature algorithm does not fit its public key.
    pub fn create_root_with_signing_key(
        spec: &CaSpec,
        key: Arc<dyn CaSigningKey>,
    ) -> Result<Self, Error> {
        Self::create_root_with_profile(spec, key, &CaProfile::Kubeadm)
    }

    /// [`Self::create_root_with_signing_key`] with the CA extensions of `profile` (kubeadm's or
    /// cfssl's).
    pub fn create_root_with_profile(
        spec: &CaSpec,
        key: Arc<dyn CaSigningKey>,
        profile: &CaProfile,
    ) -> Result<Self, Error> {
        check_algorithm(key.as_ref())?;
        let cert = build_ca(spec, key.as_ref(), None, profile)?;
        Ok(CertificateAuthority {
            cert,
            key: Some(key),
        })
    }

    /// Creates an intermediate CA signed by `parent`.
    pub fn create_intermediate(
        parent: &CertificateAuthority,
        spec: &CaSpec,
        key: PrivateKey,
    ) -> Result<Self, Error> {
        Self::create_intermediate_with_signing_key(parent, spec, Arc::new(key))
    }

    /// [`Self::create_intermediate`] with any [`CaSigningKey`] for the new CA (`parent` signs
    /// through its own).
    pub fn create_intermediate_with_signing_key(
        parent: &CertificateAuthority,
        spec: &CaSpec,
        key: Arc<dyn CaSigningKey>,
    ) -> Result<Self, Error> {
        check_algorithm(key.as_ref())?;
        let cert = build_ca(spec, key.as_ref(), Some(parent), &CaProfile::Kubeadm)?;
        Ok(CertificateAuthority {
            cert,
            key: Some(key),
        })
    }

    /// Loads a CA from its certificate and key PEM, checking that the certificate is a CA that
    /// may sign certificates, that the key belongs to it, and that it is valid at `now`.
    pub fn load(cert_pem: &[u8], key_pem: &[u8], now: OffsetDateTime) -> Result<Self, Error> {
        let cert = Certificate::from_pem(cert_pem)?;
        let key = PrivateKey::from_pem(key_pem)?;
        Self::from_parts(cert, Some(key), now)
    }

    /// A CA from parts; `key` `None` gives a keyless (external) CA that verifies but cannot sign.
    pub fn from_parts(
        cert: Certificate,
        key: Option<PrivateKey>,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let ca = Self::from_certificate(cert)?;
        let ca = match key {
            Some(k) => ca.with_key(k)?,
            None => ca,
        };
        ca.cert.check_time(now)?;
        Ok(ca)
    }

    /// A keyless CA: certificate only. It verifies but cannot sign. Expiry is not checked here
    /// (verification checks it at the time asked).
    pub fn from_certificate(cert: Certificate) -> Result<Self, Error> {
        check_ca_cert(&cert)?;
        Ok(CertificateAuthority { cert, key: None })
    }

    /// Adds the private key to a CA loaded with [`Self::from_certificate`], checking that it
    /// belongs to the certificate. Validity times are not checked (callers decide whether an
    /// expired CA is an error or a warning).
    pub fn with_key(self, key: PrivateKey) -> Result<Self, Error> {
        self.with_signing_key(Arc::new(key))
    }

    /// [`Self::with_key`] with any [`CaSigningKey`]: checks that its public key is the
    /// certificate's and that its signature algorithm fits that key.
    pub fn with_signing_key(mut self, key: Arc<dyn CaSigningKey>) -> Result<Self, Error> {
        if !kubepki_keys::spki_equal(key.public_key_der(), self.cert.public_key_der()) {
            return Err(Error::KeyMismatch {
                subject: self.cert.display_name(),
            });
        }
        check_algorithm(key.as_ref())?;
        self.key = Some(key);
        Ok(self)
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The software private key, if this CA has one that can be written out: `None` for a
    /// keyless (external) CA and for a signing key that never leaves its device (see
    /// [`CaSigningKey::private_key`]); [`Self::can_sign`] tells whether the CA can sign.
    pub fn key(&self) -> Option<&PrivateKey> {
        self.key.as_deref().and_then(CaSigningKey::private_key)
    }

    /// The signing key, if this CA has one.
    pub fn signing_key(&self) -> Option<&dyn CaSigningKey> {
        self.key.as_deref()
    }

    /// Whether this CA can sign (has its key).
    pub fn can_sign(&self) -> bool {
        self.key.is_some()
    }

    fn require_key(&self) -> Result<&dyn CaSigningKey, Error> {
        self.key.as_deref().ok_or_else(|| Error::NoCaKey {
            subject: self.cert.display_name(),
        })
    }

    /// Issues a leaf as kubeadm shapes it: KeyUsage (critical), EKU, BasicConstraints
    /// (critical) CA:FALSE, AuthorityKeyIdentifier = this CA's SKI, SANs; no SKI; random serial
    /// in [1, 2^63 - 1]; signature algorithm from the CA key.
    pub fn issue(&self, spec: &IssueSpec) -> Result<Certificate, Error> {
        let key = self.require_key()?;
        if spec.subject.is_empty() {
            return Err(Error::EmptySubject);
        }
        if spec.key_usage.contains(KeyUsage::KEY_CERT_SIGN) {
            return Err(Error::CaPowersRequested {
                what: "keyCertSign",
                profile: "leaf".into(),
            });
        }
        spec.subject.validate()?;
        spec.subject_alt_names.validate()?;
        let window = self.fit_window(spec.window, spec.ca_expiry)?;
        let mut exts = Vec::new();
        // Go writes no KeyUsage extension when no bit is set.
        if spec.key_usage != KeyUsage::default() {
            exts.push(Extension::key_usage(spec.key_usage)?);
        }
        if !spec.ext_key_usage.is_empty() {
            exts.push(Extension::ext_key_usage(&spec.ext_key_usage)?);
        }
        exts.push(Extension::basic_constraints(BasicConstraints::default())?);
        if let Some(method) = spec.subject_key_id {
            exts.push(Extension::subject_key_id(
                &method.key_id(&spec.public_key)?,
            )?);
        }
        if let Some(ski) = self.cert.subject_key_id() {
            exts.push(Extension::authority_key_id(ski)?);
        }
        if !spec.subject_alt_names.encodes_nothing() {
            exts.push(Extension::subject_alt_name(
                &spec.subject_alt_names,
                spec.subject.is_empty(),
            )?);
        }
        let serial = match &spec.serial {
            Some(s) => s.clone(),
            None => random_serial()?,
        };
        let tbs = tbs(
            &serial,
            key.signature_algorithm(),
            self.cert.subject_der(),
            window,
            spec.subject.to_name()?,
            &spec.public_key,
            &exts,
        )?;
        sign_certificate(&tbs, key, || self.cert.display_name())
    }

    /// Issues from a verified CSR with a leaf profile: subject and SANs copied from the request,
    /// KeyUsage digitalSignature + keyEncipherment, the profile's EKU. Requested extensions are
    /// not copied; a request for CA:TRUE or keyCertSign is refused.
    pub fn issue_from_csr(
        &self,
        csr: &Csr,
        profile: Profile,
        window: Window,
        ca_expiry: CaExpiry,
    ) -> Result<Certificate, Error> {
        let requested = csr.requested_extensions();
        if requested.basic_constraints.is_some_and(|(bc, _)| bc.ca) {
            return Err(Error::CaPowersRequested {
                what: "CA:TRUE",
                profile: profile.name().into(),
            });
        }
        if requested
            .key_usage
            .is_some_and(|(ku, _)| ku.contains(KeyUsage::KEY_CERT_SIGN))
        {
            return Err(Error::CaPowersRequested {
                what: "keyCertSign",
                profile: profile.name().into(),
            });
        }
        if csr.subject().is_empty() {
            return Err(Error::EmptySubject);
        }
        let spec = IssueSpec::new(
            csr.subject().clone(),
            csr.public_key_der(),
            window,
            ca_expiry,
        )
        .with_ext_key_usage(profile.ext_key_usage())
        .with_subject_alt_names(csr.subject_alt_names());
        self.issue(&spec)
    }

    /// Verifies that `cert` was issued by this CA and is usable at `at`: issuer name (and key
    /// identifier when both are present), signature, both validity windows, and — when `usage`
    /// is given — that the EKU lists it (or anyExtendedKeyUsage). No network, no system store.
    pub fn verify(
        &self,
        cert: &Certificate,
        usage: Option<&ExtKeyUsage>,
        at: time::OffsetDateTime,
    ) -> Result<(), Error> {
        self.check_issued(cert)?;
        self.cert.check_time(at)?;
        cert.check_time(at)?;
        if let Some(u) = usage {
            let ekus = cert.ext_key_usage().unwrap_or(&[]);
            if !ekus.iter().any(|e| e == u || *e == ExtKeyUsage::Any) {
                return Err(Error::UsageNotAllowed {
                    subject: cert.display_name(),
                    usage: u.name(),
                    found: if ekus.is_empty() {
                        "none".into()
                    } else {
                        ekus.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
                    },
                });
            }
        }
        Ok(())
    }

    /// Checks that `cert` was issued by this CA: issuer name, key identifier (when both are
    /// present) and signature. Validity times are not looked at (see [`Self::verify`]).
    pub fn check_issued(&self, cert: &Certificate) -> Result<(), Error> {
        let wrong = |reason| Error::WrongIssuer {
            subject: cert.display_name(),
            ca: self.cert.display_name(),
            reason,
        };
        if cert.issuer_der() != self.cert.subject_der() {
            return Err(wrong("issuer name differs from the CA's subject"));
        }
        if let (Some(aki), Some(ski)) = (cert.authority_key_id(), self.cert.subject_key_id())
            && aki != ski
        {
            return Err(wrong("authority key identifier differs from the CA's"));
        }
        cert.verify_signature(self.cert.public_key_der())
            .map_err(|e| match e {
                kubepki_keys::Error::BadSignature => Error::BadSignature {
                    subject: cert.display_name(),
                    ca: self.cert.display_name(),
                },
                other => Error::Key(other),
            })?;
        Ok(())
    }

    fn fit_window(&self, window: Window, policy: CaExpiry) -> Result<Window, Error> {
        window.check()?;
        let ca_end = self.cert.not_after();
        if window.not_after <= ca_end {
            return Ok(window);
        }
        match policy {
            CaExpiry::Clamp => {
                let clamped = Window::new(window.not_before, ca_end);
                clamped.check()?;
                Ok(clamped)
            }
            CaExpiry::Refuse => Err(Error::OutlivesCa {
                leaf_not_after: rfc3339(window.not_after),
                ca_not_after: rfc3339(ca_end),
            }),
        }
    }
}

fn check_ca_cert(cert: &Certificate) -> Result<(), Error> {
    if !cert.is_ca() {
        return Err(Error::NotACa {
            subject: cert.display_name(),
        });
    }
    // RFC 5280 4.2.1.3: an absent KeyUsage does not restrict; a present one must allow signing.
    if cert
        .key_usage()
        .is_some_and(|ku| !ku.contains(KeyUsage::KEY_CERT_SIGN))
    {
        return Err(Error::NoKeyCertSign {
            subject: cert.display_name(),
        });
    }
    Ok(())
}

fn build_ca(
    spec: &CaSpec,
    key: &dyn CaSigningKey,
    parent: Option<&CertificateAuthority>,
    profile: &CaProfile,
) -> Result<Certificate, Error> {
    let (key_usage, san) = match profile {
        CaProfile::Kubeadm => {
            spec.validate()?;
            let Some(cn) = spec.subject.common_name.as_deref() else {
                return Err(Error::EmptySubject);
            };
            let san = SubjectAltNames {
                dns: vec![cn.to_owned()],
                ..SubjectAltNames::default()
            };
            (CA_KEY_USAGE, san)
        }
        CaProfile::Cfssl { subject_alt_names } => {
            if spec.subject.is_empty() {
                return Err(Error::EmptySubject);
            }
            spec.subject.validate()?;
            subject_alt_names.validate()?;
            (
                KeyUsage::KEY_CERT_SIGN.union(KeyUsage::CRL_SIGN),
                subject_alt_names.clone(),
            )
        }
    };
    spec.window.check()?;
    let ski = spec.key_id.key_id(key.public_key_der())?;
    let mut exts = vec![
        Extension::key_usage(key_usage)?,
        Extension::basic_constraints(BasicConstraints {
            ca: true,
            path_len: spec.path_len,
        })?,
        Extension::subject_key_id(&ski)?,
    ];
    let subject = spec.subject.to_name()?;
    let self_issued;
    let (issuer_der, signer, window) = match parent {
        Some(p) => {
            let window = p.fit_window(spec.window, CaExpiry::Refuse)?;
            if let Some(aki) = p.cert.subject_key_id() {
                exts.push(Extension::authority_key_id(aki)?);
            }
            (p.cert.subject_der(), p.require_key()?, window)
        }
        None => {
            self_issued = subject.to_der().map_err(|source| Error::Der {
                context: Some("subject name".into()),
                source,
            })?;
            (self_issued.as_slice(), key, spec.window)
        }
    };
    if !san.encodes_nothing() {
        exts.push(Extension::subject_alt_name(&san, spec.subject.is_empty())?);
    }
    let tbs = tbs(
        &random_serial()?,
        signer.signature_algorithm(),
        issuer_der,
        window,
        subject,
        key.public_key_der(),
        &exts,
    )?;
    sign_certificate(&tbs, signer, || match parent {
        Some(p) => p.cert.display_name(),
        None => spec.subject.to_string(),
    })
}

/// The one place a CA key signs: `SEQUENCE { tbs, algorithm, BIT STRING signature }` with the
/// signature from [`CaSigningKey::sign`]; a failure names the signing CA (`ca`).
fn sign_certificate(
    tbs: &[u8],
    key: &dyn CaSigningKey,
    ca: impl FnOnce() -> String,
) -> Result<Certificate, Error> {
    let signature = key
        .sign(tbs)
        .map_err(|source| Error::Signing { ca: ca(), source })?;
    kubepki_keys::progress::certificate_signed();
    Certificate::from_der(&wrap_signed(tbs, key.signature_algorithm(), &signature)?)
}

fn random_serial() -> Result<Vec<u8>, Error> {
    loop {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| kubepki_keys::Error::Generation)?;
        b[0] &= 0x7f; // [0, 2^63 - 1]
        if b.iter().any(|&x| x != 0) {
            return Ok(b.to_vec());
        }
    }
}

/// `TBSCertificate` (RFC 5280 4.1), v3, no unique identifiers, of `x509-cert`'s types. Only
/// this outer SEQUENCE is kubepki's: `x509-cert` 0.3 keeps the fields of its own
/// `TbsCertificate` private to the crate and makes one only in its `builder` feature, which
/// wants a `signature::Signer` and brings new dependencies (docs/architecture.md, "X.509").
#[derive(Sequence)]
struct Tbs<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: x509_cert::Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierRef<'a>,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoRef<'a>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<x509_cert::ext::Extension>,
}

/// A certificate time: UTCTime up to 2049, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5,
/// `x509-cert`'s `Time::from(DateTime)`, as Go writes them), whole seconds. Refused outside
/// 1970-9999, which `der` cannot represent (and kubepki could not read back).
fn x509_time(t: OffsetDateTime) -> Result<Time, Error> {
    let u = t.to_offset(time::UtcOffset::UTC);
    let context = || Some(format!("validity time {}", rfc3339(t)));
    let year = u16::try_from(u.year())
        .map_err(|e| Error::Malformed(format!("validity time {}: {e}", rfc3339(t))))?;
    let dt = DateTime::new(
        year,
        u.month().into(),
        u.day(),
        u.hour(),
        u.minute(),
        u.second(),
    )
    .map_err(|source| Error::Der {
        context: context(),
        source,
    })?;
    Ok(Time::from(dt))
}

fn tbs(
    serial: &[u8],
    alg: SignatureAlgorithm,
    issuer_der: &[u8],
    window: Window,
    subject: Name,
    spki_der: &[u8],
    exts: &[Extension],
) -> Result<Vec<u8>, Error> {
    let derr = |what: &str, source: der::Error| Error::Der {
        context: Some(what.to_owned()),
        source,
    };
    Tbs {
        version: x509_cert::Version::V3,
        // No bytes is 0, as Go's big.Int writes it: `der` would write the empty INTEGER
        // `02 00`, which DER forbids and kubepki's reader refuses once the TBS is signed.
        serial_number: SerialNumber::new(if serial.is_empty() { &[0] } else { serial })
            .map_err(|e| derr("serial number", e))?,
        signature: algorithm_identifier(alg),
        issuer: Name::from_der(issuer_der).map_err(|e| derr("issuer name", e))?,
        validity: Validity::new(x509_time(window.not_before)?, x509_time(window.not_after)?),
        subject,
        subject_public_key_info: SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| derr("public key", e))?,
        extensions: exts
            .iter()
            .map(Extension::to_x509)
            .collect::<Result<_, _>>()?,
    }
    .to_der()
    .map_err(|e| derr("TBSCertificate", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_switch_to_generalized_time_in_2050_as_go_writes_them() -> Result<(), Error> {
        let cases: [(OffsetDateTime, &[u8]); 6] = [
            (datetime!(1970-01-01 00:00:00 UTC), b"\x17\x0d700101000000Z"),
            (datetime!(2049-12-31 23:59:59 UTC), b"\x17\x0d491231235959Z"),
            (
                datetime!(2050-01-01 00:00:00 UTC),
                b"\x18\x0f20500101000000Z",
            ),
            (
                datetime!(9999-12-31 23:59:59 UTC),
                b"\x18\x0f99991231235959Z",
            ),
            // Another offset is written in UTC.
            (
                datetime!(2030-06-01 01:00:00 +02:00),
                b"\x17\x0d300531230000Z",
            ),
            (
                datetime!(2050-01-01 00:30:00 +01:00),
                b"\x17\x0d491231233000Z",
            ),
        ];
        for (t, want) in cases {
            let der = x509_time(t)?.to_der().map_err(|source| Error::Der {
                context: None,
                source,
            });
            assert_eq!(der?, want, "{t}");
        }
        // der (and so kubepki's reader) has no year before 1970.
        assert!(x509_time(datetime!(1969-12-31 23:59:59 UTC)).is_err());
        Ok(())
    }
}
