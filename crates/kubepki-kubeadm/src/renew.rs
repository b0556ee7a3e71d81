//! `certs renew` (`docs/compatibility.md` §6.1): a new key and certificate for a leaf or a kubeconfig's client
//! certificate, copying CN, O, DNS/IP SANs and EKU from the old one; kubeconfigs are edited in
//! place, by structure, so that every other byte stays as it was (`kubeconfig_edit`).

use std::path::{Path, PathBuf};

use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec, rfc3339};
use kubepki_csr::{Subject, SubjectAltNames};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, generate_many, public_key_algorithm};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err};
use crate::kubeconfig_edit::{self, NewCredentials, same_file};
use crate::memtree::Tree;
use crate::plan::{CertId, KubeconfigId};
use crate::spec::ClusterSpec;
use crate::tree::{Source, tree_path};

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
            )
            .into(),
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
    /// It could not be renewed; none of its files was changed (the others were renewed).
    Failed {
        /// Why, naming the file at fault.
        reason: String,
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
/// each old key's algorithm when `None`; validity from `spec`.
///
/// Each target is all or nothing (docs/certs.md, "renew"): it is renewed with every file it
/// consists of (key and certificate; a kubeconfig and the certificate and key files its current
/// user references), or it is reported as [`RenewStatus::Failed`] with none of its files changed,
/// and the other targets are still renewed. Everything renewed is written as one batch of atomic
/// replacements; an error while writing (the `Err` case) leaves every file as it was. Returns one
/// entry per target and the warnings.
pub fn renew(
    spec: &ClusterSpec,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    now: OffsetDateTime,
) -> Result<(Vec<Renewed>, Vec<String>), Error> {
    renew_with_ca_keys(spec, targets, algorithm, &[], now)
}

/// [`renew`] with CA keys held outside the folders (a token, a KMS): a CA in `ca_keys` whose
/// key file is absent signs through its held key instead of being reported as an external CA.
pub fn renew_with_ca_keys(
    spec: &ClusterSpec,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    ca_keys: &[crate::memtree::HeldCaKey],
    now: OffsetDateTime,
) -> Result<(Vec<Renewed>, Vec<String>), Error> {
    let (_lock, _) = crate::tree::lock_for_writing(spec)?;
    let planned = plan_renewal(
        spec,
        &Source::Folder { held: ca_keys },
        targets,
        algorithm,
        now,
    )?;
    // Each folder of the batch gets its own journal (`kubepki_files`), so the next
    // writer of any of them completes the batch if this one is interrupted.
    // The tree's folders were recovered together (`lock_for_writing` above).
    let mut batch = FileBatch::overwriting()
        .keeping_owner_and_mode()
        .recovered_together();
    for (p, contents, mode) in &planned.writes {
        batch.stage(p, contents, *mode)?;
    }
    batch.commit()?;
    Ok((planned.renewed, planned.warnings))
}

/// [`renew`] over a tree held in memory: the same decisions and the same new certificates,
/// returned as a tree of the replaced files (each with the mode it had in `current`) instead
/// of written. A kubeconfig whose current user names its certificate or key as files is
/// [`RenewStatus::Failed`] here: only embedded credentials (kubeadm's shape) are renewed in
/// memory.
///
/// ```
/// use kubepki_kubeadm::{ClusterSpec, Plan, RenewStatus, Selection, Tree, build, renew_in, renew_targets};
/// use time::{Duration, OffsetDateTime};
///
/// let mut spec = ClusterSpec::with_advertise_address("192.0.2.10".parse()?);
/// spec.node_name = Some("cp1".into());
/// spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
/// let made = OffsetDateTime::now_utc() - Duration::days(300);
/// let tree = build(&Plan::new(&spec)?, &Selection::all(), &Tree::new(), made)?.files;
///
/// let now = OffsetDateTime::now_utc();
/// let (renewed, report, _warnings) = renew_in(&spec, &tree, &renew_targets(&spec), None, now)?;
/// assert!(report.iter().all(|r| matches!(r.status, RenewStatus::Renewed { .. })));
/// assert!(renewed.get("pki/apiserver.crt").is_some() && renewed.get("admin.conf").is_some());
/// assert!(renewed.get("pki/ca.crt").is_none()); // CAs are not renewed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn renew_in(
    spec: &ClusterSpec,
    current: &Tree,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    now: OffsetDateTime,
) -> Result<(Tree, Vec<Renewed>, Vec<String>), Error> {
    let src = Source::Tree {
        spec,
        tree: current,
    };
    let planned = plan_renewal(spec, &src, targets, algorithm, now)?;
    let mut files = Tree::new();
    for (p, contents, mode) in planned.writes {
        let rel = tree_path(spec, &p)
            .ok_or_else(|| file_err(&p, "is outside the certificate and kubeconfig folders"))?;
        let mode = current.get(&rel).map_or(mode, |f| f.mode);
        files.insert(rel, contents.to_vec(), mode)?;
    }
    Ok((files, planned.renewed, planned.warnings))
}

/// The certificate or kubeconfig file of `target` in the tree.
pub(crate) fn target_path(spec: &ClusterSpec, target: RenewTarget) -> PathBuf {
    match target {
        RenewTarget::Cert(c) => c.cert_path(&spec.cert_dir),
        RenewTarget::Kubeconfig(k) => spec.kubeconfig_dir.join(k.file_name()),
    }
}

/// The identity a renewal keeps: the subject without attributes kubepki does not issue (CN, O,
/// OU, C, ST and L only; any other attribute of the old certificate, one `verify` fails, is left
/// out of the renewed one), and the DNS and IP SANs.
pub(crate) fn old_identity(old: &Certificate) -> (Subject, SubjectAltNames) {
    let sans = old.subject_alt_names();
    (
        Subject {
            others: Vec::new(),
            ..old.subject().clone()
        },
        SubjectAltNames {
            dns: sans.dns,
            ips: sans.ips,
            ..SubjectAltNames::default()
        },
    )
}

/// What a renewal writes (path, contents, mode), and its report.
struct Planned {
    writes: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)>,
    renewed: Vec<Renewed>,
    warnings: Vec<String>,
}

/// Decides and makes a renewal from the files of `src`, in memory.
fn plan_renewal(
    spec: &ClusterSpec,
    src: &Source,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    now: OffsetDateTime,
) -> Result<Planned, Error> {
    let dir = &spec.cert_dir;
    let mut warnings = Vec::new();
    let mut cas: BTreeMap<CertId, Result<Option<CertificateAuthority>, String>> = BTreeMap::new();
    struct Job {
        target: RenewTarget,
        old: Certificate,
        ca: CertId,
        alg: KeyAlgorithm,
        files: Vec<PathBuf>,
        kubeconfig: Option<(PathBuf, Zeroizing<Vec<u8>>)>,
    }
    let mut out = Vec::new();
    let mut jobs = Vec::new();
    for &target in targets {
        let path = target_path(spec, target);
        let ca_id = match target {
            RenewTarget::Cert(c) => c.issuer().unwrap_or(CertId::Ca),
            RenewTarget::Kubeconfig(_) => CertId::Ca,
        };
        let files = match target {
            RenewTarget::Cert(c) => vec![c.cert_path(dir), c.key_path(dir)],
            RenewTarget::Kubeconfig(_) => vec![path.clone()],
        };
        let mut report = |status| {
            out.push(Renewed {
                target,
                files: files.clone(),
                status,
            })
        };
        if !src.exists(&path) {
            report(RenewStatus::Missing);
            continue;
        }
        let ca = cas
            .entry(ca_id)
            .or_insert_with(|| load_ca(src, dir, ca_id).map_err(|e| e.to_string()));
        match ca {
            Err(reason) => {
                report(RenewStatus::Failed {
                    reason: reason.clone(),
                });
                continue;
            }
            Ok(None) => {
                report(RenewStatus::ExternalCa {
                    ca: ca_id.cert_path(dir),
                });
                continue;
            }
            Ok(Some(_)) => {}
        }
        let prepared = (|| -> Result<_, Error> {
            let (old, kubeconfig) = match target {
                RenewTarget::Cert(_) => (src.cert(&path)?, None),
                RenewTarget::Kubeconfig(_) => {
                    let bytes = src.read(&path)?;
                    if let Source::Tree { .. } = src {
                        refuse_file_references(&path, &bytes)?;
                    }
                    // The current context, its user's credentials and how they can be replaced
                    // are checked again with the new values; the old certificate comes from the
                    // reader every command shares (embedded data or the file referenced).
                    (src.kubeconfig_cert(&path)?, Some((path.clone(), bytes)))
                }
            };
            let alg = match algorithm {
                Some(a) => a,
                None => {
                    public_key_algorithm(old.public_key_der()).map_err(|e| file_err(&path, e))?
                }
            };
            Ok((old, kubeconfig, alg))
        })();
        match prepared {
            Ok((old, kubeconfig, alg)) => jobs.push(Job {
                target,
                old,
                ca: ca_id,
                alg,
                files,
                kubeconfig,
            }),
            Err(e) => report(RenewStatus::Failed {
                reason: e.to_string(),
            }),
        }
    }

    let keys = generate_many(&jobs.iter().map(|j| j.alg).collect::<Vec<_>>())?;
    let tree_files = TreeFiles::of(spec, src);
    let mut writes: Vec<(RenewTarget, PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
    // Kubeconfigs trust every certificate of ca.crt (two during a CA rotation:
    // docs/rotation.md), in its order.
    let ca_file = CertId::Ca.cert_path(dir);
    let ca_bundle = match src {
        Source::Folder { .. } => crate::rotate::ca_trust_bundle(&ca_file),
        Source::Tree { tree, .. } => crate::rotate::tree_trust(tree, &ca_file),
    }
    .map(|certs| crate::tree::bundle_pem(&certs));
    for (job, key) in jobs.into_iter().zip(keys) {
        let Some(Ok(Some(ca))) = cas.get(&job.ca) else {
            continue;
        };
        let window = spec.leaf_window(now, ca.certificate().not_before());
        let (subject, sans) = old_identity(&job.old);
        let issue = IssueSpec::new(subject, key.public_key_der(), window, CaExpiry::Clamp)
            .with_ext_key_usage(job.old.ext_key_usage().unwrap_or(&[]).to_vec())
            .with_subject_alt_names(sans);
        let item = (|| -> Result<_, Error> {
            let cert = ca.issue(&issue)?;
            let key_pem = key.to_pem()?;
            let cert_pem = cert.to_pem();
            let mut w: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
            let mut files = job.files.clone();
            match (job.target, &job.kubeconfig) {
                (RenewTarget::Cert(c), _) => {
                    w.push((
                        c.key_path(dir),
                        Zeroizing::new(key_pem.as_bytes().to_vec()),
                        MODE_SECRET,
                    ));
                    w.push((
                        c.cert_path(dir),
                        Zeroizing::new(cert_pem.as_bytes().to_vec()),
                        MODE_PUBLIC,
                    ));
                }
                (RenewTarget::Kubeconfig(_), Some((path, bytes))) => {
                    let ca_pem = match &ca_bundle {
                        Ok(b) => b.clone(),
                        Err(e) => {
                            return Err(file_err(
                                path,
                                format!(
                                    "its CA data would come from ca.crt, which is refused: {e}"
                                ),
                            ));
                        }
                    };
                    let planned = kubeconfig_edit::plan(
                        path,
                        bytes,
                        &NewCredentials {
                            cert_pem: &cert_pem,
                            key_pem: key_pem.as_str(),
                            ca_pem: &ca_pem,
                        },
                    )?;
                    tree_files.check(path, job.target, &planned.files)?;
                    for f in planned.files {
                        files.push(f.path.clone());
                        let mode = if f.secret { MODE_SECRET } else { MODE_PUBLIC };
                        w.push((f.path, f.contents, mode));
                    }
                    if let Some(text) = planned.kubeconfig {
                        w.push((
                            path.clone(),
                            Zeroizing::new(text.as_bytes().to_vec()),
                            MODE_SECRET,
                        ));
                    }
                }
                (RenewTarget::Kubeconfig(_), None) => {}
            }
            for (p, _, _) in &w {
                if let Some((other, _, _, _)) = writes.iter().find(|x| same_file(&x.1, p)) {
                    return Err(file_err(
                        p,
                        format!(
                            "would be written for both {} and {}",
                            other.name(),
                            job.target.name()
                        ),
                    ));
                }
            }
            Ok((cert, w, files))
        })();
        match item {
            Ok((cert, w, files)) => {
                if window.not_after > ca.certificate().not_after() {
                    warnings.push(format!(
                        "{}: cut to expire with its CA at {}",
                        job.target.name(),
                        rfc3339(ca.certificate().not_after())
                    ));
                }
                writes.extend(w.into_iter().map(|(p, c, m)| (job.target, p, c, m)));
                out.push(Renewed {
                    target: job.target,
                    files,
                    status: RenewStatus::Renewed {
                        not_after: rfc3339(cert.not_after()),
                        algorithm: job.alg,
                    },
                });
            }
            Err(e) => out.push(Renewed {
                target: job.target,
                files: job.files,
                status: RenewStatus::Failed {
                    reason: e.to_string(),
                },
            }),
        }
    }
    out.sort_by_key(|r| r.target.name());
    Ok(Planned {
        writes: writes.into_iter().map(|(_, p, c, m)| (p, c, m)).collect(),
        renewed: out,
        warnings,
    })
}

/// In memory, a kubeconfig is renewed only with embedded credentials: files it names are not
/// part of the tree.
fn refuse_file_references(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let kc = crate::kubeconfig::Kubeconfig::from_slice(path, bytes)?;
    let (_, user) = kc.current(path)?;
    let named = [
        user.user.client_certificate.as_deref(),
        user.user.client_key.as_deref(),
    ]
    .into_iter()
    .filter_map(crate::kubeconfig::set)
    .collect::<Vec<_>>();
    if named.is_empty() {
        return Ok(());
    }
    Err(file_err(
        path,
        format!(
            "its current user names files ({}); renewing a tree in memory handles embedded credentials only",
            named.join(", ")
        ),
    ))
}

/// The files of the tree that exist (certificates, keys, `sa.key`/`sa.pub`, kubeconfigs): a
/// kubeconfig whose user names its certificate or key in a file must not name one of these,
/// or renewing it would overwrite a file of the tree.
pub(crate) struct TreeFiles(Vec<PathBuf>);

impl TreeFiles {
    pub(crate) fn of(spec: &ClusterSpec, src: &Source) -> Self {
        let dir = &spec.cert_dir;
        let mut files: Vec<PathBuf> = spec
            .cert_ids()
            .into_iter()
            .flat_map(|c| [c.cert_path(dir), c.key_path(dir)])
            .chain([dir.join("sa.key"), dir.join("sa.pub")])
            .chain(
                spec.kubeconfig_ids()
                    .into_iter()
                    .map(|k| spec.kubeconfig_dir.join(k.file_name())),
            )
            .collect();
        files.retain(|p| src.exists(p));
        TreeFiles(files)
    }

    /// Refuses the edit of `kubeconfig` (for `target`) when a file it would write is one of
    /// the tree's.
    pub(crate) fn check(
        &self,
        kubeconfig: &Path,
        target: RenewTarget,
        planned: &[kubeconfig_edit::FileWrite],
    ) -> Result<(), Error> {
        for f in planned {
            if let Some(t) = self.0.iter().find(|t| same_file(t, &f.path)) {
                return Err(file_err(
                    kubeconfig,
                    format!(
                        "its current user's certificate or key is {}, a file of the tree; kubepki will not write {} there",
                        t.display(),
                        target.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A CA of the tree: `None` when its key is not here (external CA).
fn load_ca(src: &Source, dir: &Path, id: CertId) -> Result<Option<CertificateAuthority>, Error> {
    let cp = id.cert_path(dir);
    let kp = id.key_path(dir);
    let ca =
        CertificateAuthority::from_certificate(src.cert(&cp)?).map_err(|e| file_err(&cp, e))?;
    if src.exists(&kp) && src.held_ca_key(id).is_some() {
        Err(file_err(
            &kp,
            "exists, and this CA's key is also given as held outside the tree (a token); remove the key file, or do not give the key",
        ))
    } else if src.exists(&kp) {
        Ok(Some(
            ca.with_key(src.key(&kp)?).map_err(|e| file_err(&kp, e))?,
        ))
    } else if let Some(k) = src.held_ca_key(id) {
        Ok(Some(ca.with_signing_key(k.clone()).map_err(|e| {
            file_err(&cp, Reason::within("with the key held outside the tree", e))
        })?))
    } else {
        Ok(None)
    }
}
