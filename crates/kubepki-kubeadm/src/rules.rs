//! The rules an existing file must meet: one set, applied by `verify` (which reports each as a
//! check) and by `init` (which reuses a file only when it meets all of them, and otherwise
//! names every file and rule that failed in one error). docs/init.md, "Existing files", and
//! docs/certs.md, `verify`, describe them.

use std::path::Path;

use kubepki_ca::{Certificate, CertificateAuthority, LEAF_KEY_USAGE, rfc3339};
use kubepki_csr::{ExtKeyUsage, SubjectAltNames};
use kubepki_keys::{PrivateKey, spki_equal};
use time::OffsetDateTime;

use crate::plan::{CertId, CertSpec, KubeconfigSpec, san_differences, subject_differences};

/// Why Kubernetes refuses an Ed25519 key: its components (the API server's client-certificate
/// authentication, kubelet, etcd through Go's TLS stack as Kubernetes configures it) take RSA and
/// ECDSA keys only, and kubeadm's `encryptionAlgorithm` offers no other.
pub const KUBERNETES_KEYS_ONLY: &str = "Kubernetes components take RSA or ECDSA keys only";

/// Whether Kubernetes components take a key of `algorithm` (every RSA and ECDSA size kubepki
/// makes; not Ed25519): the one place this rule is written, for every tree, renewal, rotation,
/// CSR and identity command. The reason to print is [`KUBERNETES_KEYS_ONLY`].
///
/// ```
/// use kubepki_keys::KeyAlgorithm;
/// assert!(kubepki_kubeadm::kubernetes_takes_key(KeyAlgorithm::EcdsaP256));
/// assert!(!kubepki_kubeadm::kubernetes_takes_key(KeyAlgorithm::Ed25519));
/// ```
pub fn kubernetes_takes_key(algorithm: kubepki_keys::KeyAlgorithm) -> bool {
    algorithm != kubepki_keys::KeyAlgorithm::Ed25519
}

/// A rule an existing file must meet to be reused (and that `verify` checks): the `check`
/// column of `verify`, and what [`crate::Error::NotReusable`] lists per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The certificate's key usages and extended key usages are the plan's.
    Usages,
    /// The subject is exactly the plan's (no attribute the plan does not give).
    Subject,
    /// A kubeconfig's client certificate carries the plan's identity.
    Identity,
    /// The SANs are exactly the plan's (none on a client certificate).
    Sans,
    /// Valid now: not expired, not yet to come.
    Validity,
    /// The file holding private key material is not readable by group or others.
    Mode,
    /// Signed by the CA it must be signed by.
    Chain,
    /// The private key belongs to the certificate.
    Key,
}

impl Rule {
    /// The rule's name as `verify` prints it: `usages`, `subject`, `identity`, `sans`,
    /// `validity`, `mode`, `chain`, `key`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Usages => "usages",
            Rule::Subject => "subject",
            Rule::Identity => "identity",
            Rule::Sans => "sans",
            Rule::Validity => "validity",
            Rule::Mode => "mode",
            Rule::Chain => "chain",
            Rule::Key => "key",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule an existing file fails, with what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleFailure {
    /// The rule.
    pub rule: Rule,
    /// What is wrong (`extra SAN DNS:cp1`, `expired at ...`).
    pub reason: String,
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.reason)
    }
}

/// One rule's outcome: `Ok(what holds)` or `Err(what is wrong)`, under the rule.
pub(crate) type Outcome = (Rule, Result<String, String>);

/// The failed rules of `outcomes`.
pub(crate) fn failures(outcomes: Vec<Outcome>) -> Vec<RuleFailure> {
    outcomes
        .into_iter()
        .filter_map(|(rule, r)| r.err().map(|reason| RuleFailure { rule, reason }))
        .collect()
}

/// A leaf certificate against its plan entry: usages, subject (no attribute the plan does not
/// give), SANs (exactly the plan's: none on a client certificate) and validity at `now`. (Chain,
/// key and file mode are checked by the callers, which know where the CA and key come from.)
pub(crate) fn leaf(spec: &CertSpec, cert: &Certificate, now: OffsetDateTime) -> Vec<Outcome> {
    let mut out = vec![
        (Rule::Usages, leaf_usages(&spec.ext_key_usage, cert)),
        (Rule::Subject, subject(cert, spec)),
        (Rule::Sans, sans(spec.id, &spec.subject_alt_names, cert)),
    ];
    out.push((Rule::Validity, validity(cert, now)));
    out
}

/// A kubeconfig's client certificate and key against its plan entry: the key is the
/// certificate's, signed by `ca` (when known), the identity is the plan's (for `kubelet.conf`,
/// this node's name), client usages, valid at `now`.
pub(crate) fn kubeconfig(
    spec: &KubeconfigSpec,
    cert: &Certificate,
    key: &PrivateKey,
    ca: Option<&CertificateAuthority>,
    now: OffsetDateTime,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    if let Some(ca) = ca {
        out.push((
            Rule::Chain,
            ca.check_issued(cert)
                .map(|()| "client certificate signed by ca".into())
                .map_err(|e| e.to_string()),
        ));
    }
    out.push((
        Rule::Key,
        if key.matches_public_key(cert.public_key_der()) {
            Ok("the client key matches the client certificate".into())
        } else {
            Err("the client key does not belong to the client certificate".into())
        },
    ));
    let diffs = subject_differences(&spec.subject, cert.subject());
    out.push((
        Rule::Identity,
        if diffs.is_empty() {
            Ok(spec.subject.to_string())
        } else {
            Err(format!(
                "client certificate is \"{}\", must be \"{}\"{}",
                cert.subject(),
                spec.subject,
                differences_note(&diffs)
            ))
        },
    ));
    out.push((Rule::Sans, client_sans(cert)));
    out.push((
        Rule::Usages,
        if cert.ext_key_usage() == Some(&[ExtKeyUsage::ClientAuth][..])
            && cert.key_usage() == Some(LEAF_KEY_USAGE)
        {
            Ok("EKU clientAuth".into())
        } else {
            Err(format!(
                "EKU {} / KeyUsage {:?}; must be clientAuth / digitalSignature, keyEncipherment",
                eku_names(cert.ext_key_usage().unwrap_or(&[])),
                cert.key_usage()
            ))
        },
    ));
    out.push((Rule::Validity, validity(cert, now)));
    out
}

/// `sa.pub` (PEM) holds the public key of `key` (read from `key_path`).
pub(crate) fn sa_pair(key: &PrivateKey, key_path: &Path, pub_pem: &[u8]) -> Result<(), String> {
    let blocks = kubepki_keys::pem::decode_all(pub_pem).map_err(|e| e.to_string())?;
    let Some(block) = blocks
        .iter()
        .find(|b| b.label() == kubepki_keys::LABEL_PUBLIC_KEY)
    else {
        return Err(format!(
            "no \"PUBLIC KEY\" block (found {})",
            kubepki_keys::pem::describe_labels(&blocks)
        ));
    };
    if spki_equal(block.contents(), key.public_key_der()) {
        Ok(())
    } else {
        Err(format!(
            "does not hold the public key of {}",
            key_path.display()
        ))
    }
}

/// A file holding a secret (a private key, a kubeconfig with its client key) is readable by its
/// owner only: no permission bit for group or others. The error says how to fix it.
pub(crate) fn secret_mode(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    secret_mode_bits(path, mode)
}

/// [`secret_mode`] on the permission bits `mode` of the file at `path`.
pub(crate) fn secret_mode_bits(path: &Path, mode: u32) -> Result<String, String> {
    let mode = mode & 0o777;
    if mode & 0o077 == 0 {
        Ok(format!("{} is {mode:04o}", path.display()))
    } else {
        Err(format!(
            "{} is {mode:04o}; secrets must not be readable by group or others: chmod 600 {}",
            path.display(),
            path.display()
        ))
    }
}

/// Valid at `now`: neither expired nor not yet valid.
pub(crate) fn validity(cert: &Certificate, now: OffsetDateTime) -> Result<String, String> {
    cert.check_time(now)
        .map(|()| format!("valid until {}", rfc3339(cert.not_after())))
        .map_err(|e| e.to_string())
}

/// Names are compared by value (PrintableString and UTF8String spellings of the same name are
/// equal), as RFC 5280 §7.1 name matching treats them, O values in any order; any attribute the
/// plan does not give (an OU, serialNumber, UID, the Kubernetes user-UID attribute) fails
/// ([`subject_differences`]).
pub(crate) fn subject(cert: &Certificate, spec: &CertSpec) -> Result<String, String> {
    let diffs = subject_differences(&spec.subject, cert.subject());
    if diffs.is_empty() {
        Ok(spec.subject.to_string())
    } else {
        Err(format!(
            "\"{}\", must be \"{}\"{}",
            cert.subject(),
            spec.subject,
            differences_note(&diffs)
        ))
    }
}

/// `: ` and the differences one by one (`extra O "system:masters"`, `extra attribute UID "x"`).
fn differences_note(diffs: &[String]) -> String {
    format!(": {}", diffs.join(", "))
}

/// A client certificate (a client-only leaf or a kubeconfig's) carries no SAN.
fn client_sans(cert: &Certificate) -> Result<String, String> {
    let diffs = san_differences(&SubjectAltNames::default(), &cert.subject_alt_names());
    if diffs.is_empty() {
        Ok("none (client certificate)".into())
    } else {
        Err(format!(
            "a client certificate carries no SAN: {}",
            diffs.join(", ")
        ))
    }
}

/// The SANs of a leaf are exactly the plan's ([`san_differences`]): a client-only certificate
/// has none; a serving certificate has every DNS name and IP of the plan (which includes
/// `--apiserver-cert-extra-sans` / `certSANs`), no other DNS name or IP (kubeadm never issues
/// one), and no URI, email or other name.
fn sans(id: CertId, want: &SubjectAltNames, cert: &Certificate) -> Result<String, String> {
    if want.is_empty() {
        return client_sans(cert);
    }
    let diffs = san_differences(want, &cert.subject_alt_names());
    if diffs.is_empty() {
        return Ok(format!("exactly {}", names(want)));
    }
    let extra_name = diffs
        .iter()
        .any(|d| d.starts_with("extra SAN DNS:") || d.starts_with("extra SAN IP:"));
    let hint = if extra_name && id == CertId::Apiserver {
        " (a name the API server must also answer to belongs in --apiserver-cert-extra-sans or certSANs)"
    } else if extra_name {
        " (kubeadm issues only the configuration's names)"
    } else {
        ""
    };
    Err(format!("{}{hint}", diffs.join(", ")))
}

fn leaf_usages(want: &[ExtKeyUsage], cert: &Certificate) -> Result<String, String> {
    let mut have = cert.ext_key_usage().unwrap_or(&[]).to_vec();
    let mut want_sorted = want.to_vec();
    have.sort_by_key(|e| e.name());
    want_sorted.sort_by_key(|e| e.name());
    let ku_ok = cert.key_usage() == Some(LEAF_KEY_USAGE);
    if have == want_sorted && ku_ok && !cert.is_ca() {
        Ok(format!(
            "EKU {}; KeyUsage digitalSignature, keyEncipherment; CA:FALSE",
            eku_names(want)
        ))
    } else {
        Err(format!(
            "EKU {} (must be {}); KeyUsage {:?} (must be digitalSignature, keyEncipherment){}",
            eku_names(cert.ext_key_usage().unwrap_or(&[])),
            eku_names(want),
            cert.key_usage(),
            if cert.is_ca() { "; it is a CA" } else { "" }
        ))
    }
}

fn names(sans: &SubjectAltNames) -> String {
    sans.dns
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(sans.ips.iter().map(|i| format!("IP:{i}")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn eku_names(e: &[ExtKeyUsage]) -> String {
    if e.is_empty() {
        "none".into()
    } else {
        e.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
    }
}
