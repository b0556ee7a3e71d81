//! The rules an existing file must meet: one set, applied by `verify` (which reports each as a
//! check) and by `init` (which reuses a file only when it meets all of them, and otherwise
//! names every file and rule that failed in one error). docs/init.md, "Existing files", and
//! docs/certs.md, `verify`, describe them.

use std::path::Path;

use kubepki_ca::{Certificate, CertificateAuthority, LEAF_KEY_USAGE, rfc3339};
use kubepki_csr::{ExtKeyUsage, SubjectAltNames};
use kubepki_keys::{PrivateKey, spki_equal};
use time::OffsetDateTime;

use crate::net::dns_matches;
use crate::plan::{CertSpec, KubeconfigSpec};

/// One rule's outcome: `Ok(what holds)` or `Err(what is wrong)`, under the rule's name (the
/// `check` column of `verify`).
pub(crate) type Outcome = (&'static str, Result<String, String>);

/// A leaf certificate against its plan entry: usages, subject, SANs and validity at `now`.
/// (Chain and key are checked by the callers, which know where the CA and key come from.)
pub(crate) fn leaf(spec: &CertSpec, cert: &Certificate, now: OffsetDateTime) -> Vec<Outcome> {
    let mut out = vec![
        ("usages", leaf_usages(&spec.ext_key_usage, cert)),
        ("subject", subject(cert, spec)),
    ];
    if !spec.subject_alt_names.is_empty() {
        let missing = missing_sans(&spec.subject_alt_names, cert);
        out.push((
            "sans",
            if missing.is_empty() {
                Ok(format!("has {}", names(&spec.subject_alt_names)))
            } else {
                Err(format!("lacks {}", names(&missing)))
            },
        ));
    }
    out.push(("validity", validity(cert, now)));
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
            "chain",
            ca.check_issued(cert)
                .map(|()| "client certificate signed by ca".into())
                .map_err(|e| e.to_string()),
        ));
    }
    out.push((
        "key",
        if key.matches_public_key(cert.public_key_der()) {
            Ok("the client key matches the client certificate".into())
        } else {
            Err("the client key does not belong to the client certificate".into())
        },
    ));
    out.push((
        "identity",
        if cert.subject() == &spec.subject {
            Ok(spec.subject.to_string())
        } else {
            Err(format!(
                "client certificate is \"{}\", must be \"{}\"",
                cert.subject(),
                spec.subject
            ))
        },
    ));
    out.push((
        "usages",
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
    out.push(("validity", validity(cert, now)));
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

/// Valid at `now`: neither expired nor not yet valid.
pub(crate) fn validity(cert: &Certificate, now: OffsetDateTime) -> Result<String, String> {
    cert.check_time(now)
        .map(|()| format!("valid until {}", rfc3339(cert.not_after())))
        .map_err(|e| e.to_string())
}

/// Names are compared by value (PrintableString and UTF8String spellings of the same name are
/// equal), as RFC 5280 §7.1 name matching treats them.
pub(crate) fn subject(cert: &Certificate, spec: &CertSpec) -> Result<String, String> {
    if cert.subject() == &spec.subject {
        Ok(spec.subject.to_string())
    } else {
        Err(format!(
            "\"{}\", must be \"{}\"",
            cert.subject(),
            spec.subject
        ))
    }
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

/// The SANs of `want` that `cert` does not cover (a wildcard covers one label).
fn missing_sans(want: &SubjectAltNames, cert: &Certificate) -> SubjectAltNames {
    let have = cert.subject_alt_names();
    SubjectAltNames {
        dns: want
            .dns
            .iter()
            .filter(|d| !have.dns.iter().any(|h| dns_matches(h, d)))
            .cloned()
            .collect(),
        ips: want
            .ips
            .iter()
            .filter(|i| !have.ips.contains(i))
            .copied()
            .collect(),
        ..SubjectAltNames::default()
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
