//! The Kubernetes CSR-API signers, offline: the API server's validation (`docs/compatibility.md` §7.1), the policy of
//! each well-known signer (`docs/compatibility.md` §7.2) and kube-controller-manager's issuance rules (§7.3).

use std::fmt;
use std::str::FromStr;

use kubepki_csr::{Csr, ExtKeyUsage, KeyUsage, KubeCsr, SubjectAltNames, Usage};
use time::{Duration, OffsetDateTime};

use crate::authority::{BACKDATE, CaExpiry, CertificateAuthority, IssueSpec, Window};
use crate::{Certificate, Error, rfc3339};

/// kube-controller-manager's default `--cluster-signing-duration`.
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::hours(8760);

/// The well-known Kubernetes CSR signers kube-controller-manager implements, by their
/// `signerName` (`kubernetes.io/...`) — a name and a policy, not a key: the key a CA signs with is
/// a [`crate::CaSigningKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignerName {
    /// `kubernetes.io/kube-apiserver-client`: client certificates for the API server (users).
    KubeApiserverClient,
    /// `kubernetes.io/kube-apiserver-client-kubelet`: kubelet client certificates.
    KubeApiserverClientKubelet,
    /// `kubernetes.io/kubelet-serving`: kubelet serving certificates.
    KubeletServing,
}

impl SignerName {
    /// Every signer kubepki implements.
    pub const ALL: [SignerName; 3] = [
        SignerName::KubeApiserverClient,
        SignerName::KubeApiserverClientKubelet,
        SignerName::KubeletServing,
    ];

    /// The `signerName`.
    pub fn name(self) -> &'static str {
        match self {
            SignerName::KubeApiserverClient => "kubernetes.io/kube-apiserver-client",
            SignerName::KubeApiserverClientKubelet => "kubernetes.io/kube-apiserver-client-kubelet",
            SignerName::KubeletServing => "kubernetes.io/kubelet-serving",
        }
    }

    /// The usages a request for this signer normally carries (for bare PKCS#10 input).
    pub fn default_usages(self) -> Vec<Usage> {
        let last = match self {
            SignerName::KubeletServing => Usage::ServerAuth,
            _ => Usage::ClientAuth,
        };
        vec![Usage::DigitalSignature, Usage::KeyEncipherment, last]
    }
}

impl fmt::Display for SignerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignerName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(signer) = SignerName::ALL.into_iter().find(|n| n.name() == s) {
            return Ok(signer);
        }
        match s {
            "kubernetes.io/legacy-unknown" => Err(policy(
                "signer",
                "kubernetes.io/legacy-unknown cannot be used with certificates.k8s.io/v1 and has no policy to enforce",
            )),
            other => Err(policy(
                "signer",
                format!(
                    "\"{other}\" is not a signer kubepki implements (kubernetes.io/kube-apiserver-client, kubernetes.io/kube-apiserver-client-kubelet, kubernetes.io/kubelet-serving)"
                ),
            )),
        }
    }
}

fn policy(rule: &'static str, detail: impl Into<String>) -> Error {
    Error::Policy {
        rule,
        detail: detail.into(),
    }
}

/// Checks a request against its signer's policy (`docs/compatibility.md` §7.2) and refuses CA powers.
pub fn check_policy(signer: SignerName, csr: &Csr, usages: &[Usage]) -> Result<(), Error> {
    let req = csr.requested_extensions();
    if req.basic_constraints.is_some_and(|(bc, _)| bc.ca) {
        return Err(policy(
            "no-ca",
            "the request asks for BasicConstraints CA:TRUE",
        ));
    }
    if req
        .key_usage
        .is_some_and(|(ku, _)| ku.contains(KeyUsage::KEY_CERT_SIGN))
    {
        return Err(policy("no-ca", "the request asks for KeyUsage keyCertSign"));
    }
    let has = |u: Usage| usages.contains(&u);
    let set = |allowed: &[Usage]| usages.iter().all(|u| allowed.contains(u));
    let names = |u: &[Usage]| u.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ");
    let sans = csr.subject_alt_names();
    let orgs = csr.organizations();
    let cn = csr.common_name().unwrap_or_default();
    match signer {
        SignerName::KubeApiserverClient => {
            if !has(Usage::ClientAuth)
                || !set(&[
                    Usage::ClientAuth,
                    Usage::DigitalSignature,
                    Usage::KeyEncipherment,
                ])
            {
                return Err(policy(
                    "usages",
                    format!(
                        "{signer} needs \"client auth\" and allows only \"digital signature\" and \"key encipherment\" besides; got [{}]",
                        names(usages)
                    ),
                ));
            }
        }
        SignerName::KubeApiserverClientKubelet | SignerName::KubeletServing => {
            let auth = if signer == SignerName::KubeletServing {
                Usage::ServerAuth
            } else {
                Usage::ClientAuth
            };
            let mut sorted = usages.to_vec();
            sorted.sort();
            let mut a = vec![Usage::DigitalSignature, Usage::KeyEncipherment, auth];
            let mut b = vec![Usage::DigitalSignature, auth];
            a.sort();
            b.sort();
            if sorted != a && sorted != b {
                return Err(policy(
                    "usages",
                    format!(
                        "{signer} allows exactly [digital signature, key encipherment, {auth}] or [digital signature, {auth}]; got [{}]",
                        names(usages)
                    ),
                ));
            }
            if orgs != ["system:nodes"] {
                return Err(policy(
                    "organization",
                    format!("{signer} needs O exactly [system:nodes]; got {orgs:?}"),
                ));
            }
            if !cn.starts_with("system:node:") || cn.len() == "system:node:".len() {
                return Err(policy(
                    "common-name",
                    format!("{signer} needs a CN of the form system:node:<name>; got \"{cn}\""),
                ));
            }
            if !sans.emails.is_empty() || !sans.uris.is_empty() {
                return Err(policy(
                    "subject-alt-names",
                    format!("{signer} allows no email or URI SANs"),
                ));
            }
            if signer == SignerName::KubeApiserverClientKubelet
                && (!sans.dns.is_empty() || !sans.ips.is_empty())
            {
                return Err(policy(
                    "subject-alt-names",
                    format!("{signer} allows no DNS or IP SANs"),
                ));
            }
            if signer == SignerName::KubeletServing && sans.dns.is_empty() && sans.ips.is_empty() {
                return Err(policy(
                    "subject-alt-names",
                    format!("{signer} needs at least one DNS or IP SAN"),
                ));
            }
        }
    }
    Ok(())
}

/// KeyUsage and ExtendedKeyUsage from `spec.usages`, as the built-in signer derives them
/// (`signing` and `digital signature` both give digitalSignature; `s/mime` is
/// emailProtection; EKUs de-duplicated and in Go's order).
pub fn usages_to_extensions(usages: &[Usage]) -> (KeyUsage, Vec<ExtKeyUsage>) {
    let mut ku = KeyUsage::default();
    let mut ekus: Vec<(u8, ExtKeyUsage)> = Vec::new();
    let mut eku = |order: u8, e: ExtKeyUsage| {
        if !ekus.iter().any(|(_, x)| *x == e) {
            ekus.push((order, e));
        }
    };
    for u in usages {
        match u {
            Usage::Signing | Usage::DigitalSignature => ku = ku.union(KeyUsage::DIGITAL_SIGNATURE),
            Usage::ContentCommitment => ku = ku.union(KeyUsage::CONTENT_COMMITMENT),
            Usage::KeyEncipherment => ku = ku.union(KeyUsage::KEY_ENCIPHERMENT),
            Usage::KeyAgreement => ku = ku.union(KeyUsage::KEY_AGREEMENT),
            Usage::DataEncipherment => ku = ku.union(KeyUsage::DATA_ENCIPHERMENT),
            Usage::CertSign => ku = ku.union(KeyUsage::KEY_CERT_SIGN),
            Usage::CrlSign => ku = ku.union(KeyUsage::CRL_SIGN),
            Usage::EncipherOnly => ku = ku.union(KeyUsage::ENCIPHER_ONLY),
            Usage::DecipherOnly => ku = ku.union(KeyUsage::DECIPHER_ONLY),
            // Go's x509.ExtKeyUsage numbering gives the sort order.
            Usage::Any => eku(0, ExtKeyUsage::Any),
            Usage::ServerAuth => eku(1, ExtKeyUsage::ServerAuth),
            Usage::ClientAuth => eku(2, ExtKeyUsage::ClientAuth),
            Usage::CodeSigning => eku(3, ExtKeyUsage::CodeSigning),
            Usage::EmailProtection | Usage::SMime => eku(4, ExtKeyUsage::EmailProtection),
            Usage::IpsecEndSystem => eku(5, ExtKeyUsage::IpsecEndSystem),
            Usage::IpsecTunnel => eku(6, ExtKeyUsage::IpsecTunnel),
            Usage::IpsecUser => eku(7, ExtKeyUsage::IpsecUser),
            Usage::Timestamping => eku(8, ExtKeyUsage::TimeStamping),
            Usage::OcspSigning => eku(9, ExtKeyUsage::OcspSigning),
            Usage::MicrosoftSgc => eku(10, ExtKeyUsage::MicrosoftSgc),
            Usage::NetscapeSgc => eku(11, ExtKeyUsage::NetscapeSgc),
            _ => {}
        }
    }
    ekus.sort_by_key(|(o, _)| *o);
    (ku, ekus.into_iter().map(|(_, e)| e).collect())
}

/// The validity the built-in signer gives (`docs/compatibility.md` §7.3): TTL = the signing duration, or
/// `expirationSeconds` when shorter (at least 10 minutes); NotBefore = now − 5 min; NotAfter =
/// now + TTL − 5 min for TTLs of 8 h or more, else now + TTL.
pub fn signer_window(
    now: OffsetDateTime,
    signing_duration: Duration,
    expiration_seconds: Option<i64>,
) -> Window {
    let mut ttl = signing_duration;
    if let Some(s) = expiration_seconds {
        let asked = Duration::seconds(s).max(Duration::minutes(10));
        if asked < ttl {
            ttl = asked;
        }
    }
    if ttl >= Duration::hours(8) {
        Window::new(now - BACKDATE, now + ttl - BACKDATE)
    } else {
        Window::new(now - BACKDATE, now + ttl)
    }
}

/// Refuses a denied, failed or already issued `req` ([`KubeCsr::check_signable`]), validates
/// it as the API server does, applies its signer's policy, and issues the
/// certificate as kube-controller-manager's signer does: subject and DNS/IP/email/URI SANs
/// copied, KeyUsage/EKU from `spec.usages`, CA:FALSE, AKI = the CA's SKI, a random 128-bit
/// serial, NotAfter clamped to the CA's. Every refusal names its rule.
///
/// ```
/// use kubepki_ca::{CaSpec, CertificateAuthority, Certificate, SignerName, sign_request};
/// use kubepki_csr::{CsrBuilder, ExtKeyUsage, KubeCsr, Subject};
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::now_utc();
/// let ca = CertificateAuthority::create_root(
///     &CaSpec::kubeadm("kubernetes", now, Duration::days(3650)),
///     PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
/// )?;
/// // The manifest a user applies: jane in `dev`, for kube-apiserver-client.
/// let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
/// let csr = CsrBuilder::new(Subject::cn("jane").with_organizations(["dev"])).sign(&key)?;
/// let signer = SignerName::KubeApiserverClient;
/// let mut req = KubeCsr::new("jane", &csr, signer.name(), &signer.default_usages(), None);
///
/// let cert = sign_request(&ca, &req, Duration::hours(24), now)?;
/// assert_eq!(cert.common_name(), Some("jane"));
/// assert_eq!(cert.public_key_der(), key.public_key_der());
/// ca.verify(&cert, Some(&ExtKeyUsage::ClientAuth), now)?;
///
/// // Written back into the manifest, it is issued and is not signed twice.
/// req.set_issued(&cert.to_pem(), "example", &kubepki_ca::rfc3339(now));
/// let back = KubeCsr::from_slice(req.to_yaml()?.as_bytes())?;
/// let issued = back.issued_certificate_pem()?.expect("issued");
/// assert_eq!(Certificate::from_pem(&issued)?.to_der(), cert.to_der());
/// assert!(sign_request(&ca, &back, Duration::hours(24), now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sign_request(
    ca: &CertificateAuthority,
    req: &KubeCsr,
    signing_duration: Duration,
    now: OffsetDateTime,
) -> Result<Certificate, Error> {
    req.check_signable()?;
    let csr = req.validate()?;
    // A name no reviewer's terminal shows as it is is never issued, whatever the signer.
    csr.subject().check_characters()?;
    csr.subject_alt_names().check_characters()?;
    let signer: SignerName = req.spec.signer_name.parse()?;
    let usages = req.usages()?;
    check_policy(signer, &csr, &usages)?;
    if ca.certificate().not_after() <= now - BACKDATE {
        return Err(policy(
            "signer-expired",
            format!(
                "the CA expired at {}",
                rfc3339(ca.certificate().not_after())
            ),
        ));
    }
    let (ku, ekus) = usages_to_extensions(&usages);
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| kubepki_keys::Error::Generation)?;
    if serial.iter().all(|b| *b == 0) {
        serial[15] = 1;
    }
    let sans = csr.subject_alt_names();
    let mut spec = IssueSpec::new(
        csr.subject().clone(),
        csr.public_key_der(),
        signer_window(now, signing_duration, req.spec.expiration_seconds),
        CaExpiry::Clamp,
    )
    .with_ext_key_usage(ekus)
    .with_subject_alt_names(SubjectAltNames {
        dns: sans.dns,
        ips: sans.ips,
        uris: sans.uris,
        emails: sans.emails,
        others: Vec::new(),
    });
    spec.key_usage = ku;
    spec.serial = Some(serial.to_vec());
    ca.issue(&spec)
}
