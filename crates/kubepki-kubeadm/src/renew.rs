//! `certs renew` (spec §6.1): a new key and certificate for a leaf or a kubeconfig's client
//! certificate, copying CN, O, DNS/IP SANs and EKU from the old one; kubeconfigs are edited in
//! place so that every other byte stays as it was.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec, rfc3339};
use kubepki_csr::SubjectAltNames;
use kubepki_keys::files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, generate_many, public_key_algorithm};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, file_err};
use crate::kubeconfig::Kubeconfig;
use crate::plan::{CertId, KubeconfigId};
use crate::spec::ClusterSpec;
use crate::tree::{read_cert, read_file, read_key};

/// Something `certs renew` can renew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RenewTarget {
    /// A leaf certificate under the certificates folder.
    Cert(CertId),
    /// The client certificate embedded in a kubeconfig file.
    Kubeconfig(KubeconfigId),
}

impl RenewTarget {
    /// kubeadm's name (`apiserver`, `admin.conf`).
    pub fn name(self) -> &'static str {
        match self {
            RenewTarget::Cert(c) => c.name(),
            RenewTarget::Kubeconfig(k) => k.file_name(),
        }
    }
}

/// Every renewable item of the tree `spec` describes, sorted by name as `renew all` goes
/// (kubelet.conf is not renewable: the kubelet rotates its own client certificate).
pub fn renew_targets(spec: &ClusterSpec) -> Vec<RenewTarget> {
    let mut v: Vec<RenewTarget> = spec
        .cert_ids()
        .into_iter()
        .filter(|c| !c.is_ca())
        .map(RenewTarget::Cert)
        .chain(
            spec.kubeconfig_ids()
                .into_iter()
                .filter(|k| *k != KubeconfigId::Kubelet)
                .map(RenewTarget::Kubeconfig),
        )
        .collect();
    v.sort_by_key(|t| t.name());
    v
}

/// Resolves a name given to `certs renew` (`all`, `apiserver`, `admin.conf`).
pub fn parse_renew_name(spec: &ClusterSpec, name: &str) -> Result<Vec<RenewTarget>, Error> {
    if name == "all" {
        return Ok(renew_targets(spec));
    }
    let valid = || {
        let mut v: Vec<&str> = renew_targets(spec).iter().map(|t| t.name()).collect();
        v.push("all");
        v.join(", ")
    };
    if let Ok(c) = CertId::from_name(name)
        && c.is_ca()
    {
        return Err(Error::Invalid {
            field: name.into(),
            reason: format!(
                "{} is a certificate authority; CAs are not renewed by `certs renew` (kubeadm cannot either): every certificate it signed would have to change with it",
                c.base_name()
            ),
        });
    }
    if name == "kubelet.conf" || name == "kubelet" {
        return Err(Error::Invalid {
            field: name.into(),
            reason: "kubelet.conf is not renewable: the kubelet rotates its own client certificate"
                .into(),
        });
    }
    renew_targets(spec)
        .into_iter()
        .find(|t| t.name() == name)
        .map(|t| vec![t])
        .ok_or_else(|| Error::UnknownName {
            kind: "certificate",
            given: name.into(),
            valid: valid(),
        })
}

/// What happened to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewStatus {
    /// Renewed; the new certificate's NotAfter.
    Renewed {
        /// RFC 3339.
        not_after: String,
        /// The new key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// The file does not exist (kubeadm prints `MISSING!` and goes on).
    Missing,
    /// The signing CA has no key here: it cannot be renewed here.
    ExternalCa {
        /// The CA's certificate file.
        ca: PathBuf,
    },
}

/// One line of a renew report.
#[derive(Clone, Debug)]
pub struct Renewed {
    /// The target.
    pub target: RenewTarget,
    /// The file(s) it concerns.
    pub files: Vec<PathBuf>,
    /// What happened.
    pub status: RenewStatus,
}

/// Renews `targets` at `now`: new keys (all generated at once, in parallel) of `algorithm`, or of
/// each old key's algorithm when `None`; validity from `spec`. Everything is written as one
/// batch of atomic replacements: on any error no file has changed. Returns one entry per target
/// and the warnings.
pub fn renew(
    spec: &ClusterSpec,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    now: OffsetDateTime,
) -> Result<(Vec<Renewed>, Vec<String>), Error> {
    let (_lock, _) = crate::tree::lock_for_writing(spec)?;
    let dir = &spec.cert_dir;
    let mut warnings = Vec::new();
    let mut cas: std::collections::BTreeMap<CertId, Option<CertificateAuthority>> =
        Default::default();
    struct Job {
        target: RenewTarget,
        old: Certificate,
        ca: CertId,
        alg: KeyAlgorithm,
        files: Vec<PathBuf>,
        kubeconfig: Option<(Zeroizing<Vec<u8>>, Kubeconfig)>,
    }
    let mut out = Vec::new();
    let mut jobs = Vec::new();
    for &target in targets {
        let (path, ca_id) = match target {
            RenewTarget::Cert(c) => (c.cert_path(dir), c.issuer().unwrap_or(CertId::Ca)),
            RenewTarget::Kubeconfig(k) => (spec.kubeconfig_dir.join(k.file_name()), CertId::Ca),
        };
        let files = match target {
            RenewTarget::Cert(c) => vec![c.cert_path(dir), c.key_path(dir)],
            RenewTarget::Kubeconfig(_) => vec![path.clone()],
        };
        if !path.exists() {
            out.push(Renewed {
                target,
                files,
                status: RenewStatus::Missing,
            });
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = cas.entry(ca_id) {
            let cp = ca_id.cert_path(dir);
            let kp = ca_id.key_path(dir);
            let ca = CertificateAuthority::from_certificate(read_cert(&cp)?)
                .map_err(|e| file_err(&cp, e))?;
            slot.insert(if kp.exists() {
                Some(ca.with_key(read_key(&kp)?).map_err(|e| file_err(&kp, e))?)
            } else {
                None
            });
        }
        if !matches!(cas.get(&ca_id), Some(Some(_))) {
            out.push(Renewed {
                target,
                files,
                status: RenewStatus::ExternalCa {
                    ca: ca_id.cert_path(dir),
                },
            });
            continue;
        }
        let (old, kubeconfig) = match target {
            RenewTarget::Cert(_) => (read_cert(&path)?, None),
            RenewTarget::Kubeconfig(_) => {
                let bytes = read_file(&path)?;
                let kc = Kubeconfig::from_slice(&path, &bytes)?;
                let (_, user) = kc.current(&path)?;
                if user.user.client_certificate_data.is_none() {
                    return Err(file_err(
                        &path,
                        "its user references certificate files instead of embedding them; renew those files instead",
                    ));
                }
                (
                    crate::expiration::kubeconfig_client_cert(&path)?,
                    Some((bytes, kc)),
                )
            }
        };
        let alg = match algorithm {
            Some(a) => a,
            None => public_key_algorithm(old.public_key_der()).map_err(|e| file_err(&path, e))?,
        };
        jobs.push(Job {
            target,
            old,
            ca: ca_id,
            alg,
            files,
            kubeconfig,
        });
    }

    let keys = generate_many(&jobs.iter().map(|j| j.alg).collect::<Vec<_>>())?;
    let mut batch = FileBatch::overwriting();
    for (job, key) in jobs.into_iter().zip(keys) {
        let Some(Some(ca)) = cas.get(&job.ca) else {
            continue;
        };
        let window = spec.leaf_window(now, ca.certificate().not_before());
        if window.not_after > ca.certificate().not_after() {
            warnings.push(format!(
                "{}: cut to expire with its CA at {}",
                job.target.name(),
                rfc3339(ca.certificate().not_after())
            ));
        }
        let old_sans = job.old.subject_alt_names();
        let sans = SubjectAltNames {
            dns: old_sans.dns,
            ips: old_sans.ips,
            ..SubjectAltNames::default()
        };
        let issue = IssueSpec::new(
            job.old.subject().clone(),
            key.public_key_der(),
            window,
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(job.old.ext_key_usage().unwrap_or(&[]).to_vec())
        .with_subject_alt_names(sans);
        let cert = ca.issue(&issue)?;
        match (job.target, &job.kubeconfig) {
            (RenewTarget::Cert(c), _) => {
                batch.stage(&c.key_path(dir), key.to_pem()?.as_bytes(), MODE_SECRET)?;
                batch.stage(&c.cert_path(dir), cert.to_pem().as_bytes(), MODE_PUBLIC)?;
            }
            (RenewTarget::Kubeconfig(k), Some((bytes, kc))) => {
                let path = spec.kubeconfig_dir.join(k.file_name());
                let (cluster, user) = kc.current(&path)?;
                let mut edits = vec![
                    Edit::new(
                        "client-certificate-data",
                        user.user.client_certificate_data.as_deref(),
                        B64.encode(cert.to_pem()),
                    ),
                    Edit::new(
                        "client-key-data",
                        user.user.client_key_data.as_deref(),
                        B64.encode(key.to_pem()?.as_bytes()),
                    ),
                ];
                if cluster.cluster.certificate_authority_data.is_some() {
                    edits.push(Edit::new(
                        "certificate-authority-data",
                        cluster.cluster.certificate_authority_data.as_deref(),
                        B64.encode(ca.certificate().to_pem()),
                    ));
                }
                let text = edit_in_place(&path, bytes, &edits)?;
                batch.stage(&path, text.as_bytes(), MODE_SECRET)?;
            }
            (RenewTarget::Kubeconfig(_), None) => continue,
        }
        out.push(Renewed {
            target: job.target,
            files: job.files,
            status: RenewStatus::Renewed {
                not_after: rfc3339(cert.not_after()),
                algorithm: job.alg,
            },
        });
    }
    batch.commit()?;
    out.sort_by_key(|r| r.target.name());
    Ok((out, warnings))
}

struct Edit<'a> {
    key: &'static str,
    old: Option<&'a str>,
    new: Zeroizing<String>,
}

impl<'a> Edit<'a> {
    fn new(key: &'static str, old: Option<&'a str>, new: String) -> Self {
        Edit {
            key,
            old,
            new: Zeroizing::new(new),
        }
    }
}

/// Replaces the one-line values of `key: <old>` with the new values, keeping every other byte.
fn edit_in_place(
    path: &Path,
    input: &[u8],
    edits: &[Edit<'_>],
) -> Result<Zeroizing<String>, Error> {
    let text = std::str::from_utf8(input).map_err(|_| file_err(path, "is not UTF-8 text"))?;
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 1024));
    let mut done = vec![false; edits.len()];
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim_start();
        let indent = &body[..body.len() - trimmed.len()];
        let mut replaced = false;
        for (i, e) in edits.iter().enumerate() {
            let Some(old) = e.old else { continue };
            let Some(value) = trimmed
                .strip_prefix(e.key)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim)
            else {
                continue;
            };
            if value.trim_matches(['"', '\'']) == old {
                out.push_str(indent);
                out.push_str(e.key);
                out.push_str(": ");
                out.push_str(&e.new);
                out.push_str(ending);
                done[i] = true;
                replaced = true;
                break;
            }
        }
        if !replaced {
            out.push_str(line);
        }
    }
    for (e, ok) in edits.iter().zip(done) {
        if e.old.is_some() && !ok {
            return Err(file_err(
                path,
                format!(
                    "cannot update {} in place (it is not a one-line value); the file was not changed",
                    e.key
                ),
            ));
        }
    }
    Ok(out)
}
