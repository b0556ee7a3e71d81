//! Renewal through an external CA (docs/certs.md, "Renewal through an external CA"): the node
//! writes a new key and a CSR per item with the identity of the certificate it replaces
//! ([`write_renewal_csrs`], `certs renew --csr-only`), the CA holder signs them with the
//! kubeadm profile of each item ([`sign_renewal_csrs`], `certs sign-csrs --csr-dir`), and the
//! node installs the results as one batch after checking each ([`install_renewal`],
//! `certs renew --from-csr-dir`).
//!
//! The CSR folder holds, per item, kubeadm's names (`<name>.key`, `<name>.csr`, and the signed
//! `<name>.crt`): `apiserver.key`, `etcd-server.csr`, `admin.conf.crt`.

use std::path::{Path, PathBuf};

use kubepki_ca::{Certificate, rfc3339};
use kubepki_csr::{Csr, CsrBuilder, Subject, SubjectAltNames};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, PrivateKey, generate_many, public_key_algorithm, spki_equal};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err, invalid};
use crate::external::{Signed, SigningCas, csr_differences, issue};
use crate::kubeconfig_edit::{self, NewCredentials, same_file};
use crate::plan::{CertId, Plan, identity_differences};
use crate::renew::{RenewTarget, TreeFiles, old_identity, renew_targets, target_path};
use crate::spec::ClusterSpec;
use crate::tree::{Source, parse_cert, parse_key, read_file};

/// How far in the future a signed certificate's NotBefore may lie (clocks of the node and the
/// CA holder differ): beyond that it is refused as not valid yet.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The files of one item in the CSR folder: kubeadm's names, `<name>.key`, `<name>.csr` and
/// the signed `<name>.crt` (`apiserver.key`, `etcd-server.csr`, `admin.conf.crt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalFiles {
    /// The new private key (0600), made by `--csr-only`.
    pub key: PathBuf,
    /// The CSR, made by `--csr-only`.
    pub csr: PathBuf,
    /// The signed certificate, written by `sign-csrs --csr-dir`.
    pub crt: PathBuf,
}

/// The files of `target` in the CSR folder `csr_dir`.
pub fn renewal_files(csr_dir: &Path, target: RenewTarget) -> RenewalFiles {
    let f = |ext: &str| csr_dir.join(format!("{}.{ext}", target.name()));
    RenewalFiles {
        key: f("key"),
        csr: f("csr"),
        crt: f("crt"),
    }
}

/// What `--csr-only` did for one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsrStatus {
    /// A new key and its CSR were written.
    Written {
        /// The new key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// The certificate (or kubeconfig) to renew does not exist; nothing was written for it.
    Missing,
}

/// One item of [`write_renewal_csrs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalCsr {
    /// The item.
    pub target: RenewTarget,
    /// Its files in the CSR folder.
    pub files: RenewalFiles,
    /// What happened.
    pub status: CsrStatus,
}

/// Refuses a CSR folder that is the certificate or kubeconfig folder: the new keys would take
/// the names of the live ones (`apiserver.key`) and the signed certificates those of the live
/// certificates.
fn check_csr_dir(spec: &ClusterSpec, csr_dir: &Path, flag: &str) -> Result<(), Error> {
    for (dir, what) in [
        (&spec.cert_dir, "certificate"),
        (&spec.kubeconfig_dir, "kubeconfig"),
    ] {
        if same_file(csr_dir, dir) {
            return Err(invalid(
                flag,
                format!(
                    "{} is the {what} folder; the new keys and certificates would take the names of the live files (apiserver.key, apiserver.crt): give a folder of their own",
                    csr_dir.display()
                ),
            ));
        }
    }
    // The folder holds the new private keys until they are installed: nobody else may be able
    // to swap a key and its CSR for their own (a CA would sign it; the identity is right).
    kubepki_files::check_private_folder(csr_dir).map_err(|e| match e {
        e @ (kubepki_files::Error::Io { .. }
        | kubepki_files::Error::Step { .. }
        | kubepki_files::Error::Refused { .. }) => invalid(
            flag,
            Reason::within(csr_dir.display().to_string(), Reason::Read(Box::new(e))),
        ),
        other => file_err(csr_dir, other),
    })?;
    Ok(())
}

/// `certs renew --csr-only`: for each target whose certificate exists, a new private key
/// (0600) and a CSR carrying the identity of the certificate it replaces (the same subject,
/// CN, every O, OU, C, ST and L, and the same DNS and IP SANs; the usages are the signer's
/// business, as in the CSRs of `generate-csr`), written to `csr_dir` under kubeadm's names
/// ([`renewal_files`]). The key is of `algorithm`, or of the old key's algorithm when `None`.
///
/// Nothing of the tree is written. Files already in `csr_dir` (a key, a CSR, or a signed
/// certificate of an earlier round) are never replaced unless `overwrite`; without it every
/// such file is refused in one [`Error::RenewalRefused`] and nothing is written. With it, keys
/// and CSRs are replaced, and a signed certificate of an earlier round is still refused (it
/// belongs to the key being replaced). A missing
/// certificate is reported [`CsrStatus::Missing`]; any other problem with an item refuses the
/// whole call. The files are written as one crash-safe batch.
pub fn write_renewal_csrs(
    spec: &ClusterSpec,
    targets: &[RenewTarget],
    algorithm: Option<KeyAlgorithm>,
    csr_dir: &Path,
    overwrite: bool,
) -> Result<Vec<RenewalCsr>, Error> {
    check_csr_dir(spec, csr_dir, "--csr-dir")?;
    // The tree is only read, under the shared lock, which is let go before the CSR folder is
    // written (it may lie inside the tree's folders, e.g. `pki/etcd`).
    let lock = crate::tree::lock_for_reading(spec)?;
    let src = Source::Folder { held: &[] };
    let mut out = Vec::new();
    let mut jobs: Vec<(usize, Subject, SubjectAltNames, KeyAlgorithm)> = Vec::new();
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    for &target in targets {
        let files = renewal_files(csr_dir, target);
        let Some(old) = old_certificate(spec, &src, target)? else {
            out.push(RenewalCsr {
                target,
                files,
                status: CsrStatus::Missing,
            });
            continue;
        };
        if !overwrite {
            for p in [&files.key, &files.csr, &files.crt] {
                if std::fs::symlink_metadata(p).is_ok() {
                    refused.push((
                        p.clone(),
                        "exists; kubepki does not replace it unless --overwrite is given".into(),
                    ));
                }
            }
        } else if std::fs::symlink_metadata(&files.crt).is_ok() {
            // The new key replaces the one it was signed for: left there, it would only make
            // `sign-csrs` and `--from-csr-dir` refuse the item later.
            refused.push((
                files.crt.clone(),
                "is signed for the key --overwrite would replace; remove it first".into(),
            ));
        }
        let alg = match algorithm {
            Some(a) => a,
            None => public_key_algorithm(old.public_key_der())
                .map_err(|e| file_err(target_path(spec, target), e))?,
        };
        let (subject, sans) = old_identity(&old);
        jobs.push((out.len(), subject, sans, alg));
        out.push(RenewalCsr {
            target,
            files,
            status: CsrStatus::Written { algorithm: alg },
        });
    }
    drop(lock);
    if !refused.is_empty() {
        return Err(Error::RenewalRefused { refused });
    }
    let keys = generate_many(&jobs.iter().map(|j| j.3).collect::<Vec<_>>())?;
    let mut batch = if overwrite {
        FileBatch::overwriting()
    } else {
        FileBatch::new()
    }
    // A new CSR folder is 0700, as kubeadm makes it (docs/certs.md, "The CSR folder").
    .with_dir_mode(0o700);
    for ((i, subject, sans, _), key) in jobs.into_iter().zip(keys) {
        let files = &out[i].files;
        let csr = CsrBuilder::new(subject)
            .subject_alt_names(sans)
            .sign(&key)?;
        batch.stage(&files.key, key.to_pem()?.as_bytes(), MODE_SECRET)?;
        batch.stage(&files.csr, csr.to_pem().as_bytes(), MODE_SECRET)?;
    }
    batch.commit()?;
    Ok(out)
}

/// The certificate `target` has in the tree (a kubeconfig's client certificate), `None` when
/// its file does not exist.
fn old_certificate(
    spec: &ClusterSpec,
    src: &Source,
    target: RenewTarget,
) -> Result<Option<Certificate>, Error> {
    let path = target_path(spec, target);
    if !src.exists(&path) {
        return Ok(None);
    }
    Ok(Some(match target {
        RenewTarget::Cert(_) => src.cert(&path)?,
        RenewTarget::Kubeconfig(_) => src.kubeconfig_cert(&path)?,
    }))
}

/// `certs sign-csrs --csr-dir`, on the CA holder's side: signs every renewal CSR found in
/// `csr_dir` (`<name>.csr` for each item `renew` knows in `plan`) with the kubeadm profile of
/// that item for the node's configuration, and writes `<name>.crt` beside the CSR.
///
/// The rule is the one of [`crate::sign_csrs`] (one comparison,
/// [`crate::CertSpec::identity_differences`]): a CSR whose subject, SANs, requested EKU or any
/// other requested extension differs from what the configuration gives that item is refused;
/// what is issued is the plan's subject, SANs, usages and validity, never anything taken from
/// the request. An Ed25519 key is refused (Kubernetes components take RSA or ECDSA); any other
/// key algorithm is signed, since a renewal keeps the old key's algorithm. A `<name>.crt`
/// already there is kept ([`Signed::AlreadySigned`]) when it belongs to the CSR's key and was
/// issued by the given CA, and refused otherwise. An item whose CA is not given is
/// [`Signed::NoCa`]. Every refusal is collected into one [`Error::RenewalRefused`]; on any, nothing is
/// written. No CSR at all in `csr_dir` is an error.
pub fn sign_renewal_csrs(
    plan: &Plan,
    cas: &SigningCas,
    csr_dir: &Path,
    now: OffsetDateTime,
) -> Result<Vec<(RenewTarget, Signed)>, Error> {
    cas.check(plan)?;
    let mut out = Vec::new();
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    let context = format!("Kubernetes {}, node {}", plan.version, plan.node_name);
    for target in renew_targets(&plan.spec) {
        let files = renewal_files(csr_dir, target);
        if std::fs::symlink_metadata(&files.csr).is_err() {
            continue;
        }
        let csr = Csr::from_pem(&read_file(&files.csr)?)
            .map_err(|e| crate::error::malformed(&files.csr, e))?;
        let (issuer, subject, sans, ekus, diffs) = match target {
            RenewTarget::Cert(id) => {
                let c = plan.cert(id).ok_or_else(|| {
                    file_err(&files.csr, "this configuration has no such certificate")
                })?;
                (
                    id.issuer().unwrap_or(CertId::Ca),
                    c.subject.clone(),
                    c.subject_alt_names.clone(),
                    c.ext_key_usage.clone(),
                    csr_differences(&csr, |s, n, e| c.identity_differences(s, n, e)),
                )
            }
            RenewTarget::Kubeconfig(k) => {
                let kc = plan.kubeconfig(k).ok_or_else(|| {
                    file_err(&files.csr, "this configuration has no such kubeconfig")
                })?;
                (
                    CertId::Ca,
                    kc.subject.clone(),
                    SubjectAltNames::default(),
                    vec![kubepki_csr::ExtKeyUsage::ClientAuth],
                    csr_differences(&csr, |s, n, e| kc.identity_differences(s, n, e)),
                )
            }
        };
        let mut problems = Vec::new();
        if let Ok(have) = public_key_algorithm(csr.public_key_der())
            && !crate::kubernetes_takes_key(have)
        {
            problems.push(format!(
                "has an {have} key; {}",
                crate::KUBERNETES_KEYS_ONLY
            ));
        }
        problems.extend(diffs);
        if !problems.is_empty() {
            refused.push((
                files.csr.clone(),
                format!(
                    "is not what {} must be ({context}): {}",
                    target.name(),
                    problems.join(", ")
                ),
            ));
            continue;
        }
        let ca = cas.get(issuer);
        if std::fs::symlink_metadata(&files.crt).is_ok() {
            let kept = crate::tree::read_cert(&files.crt).and_then(|cert| {
                if !spki_equal(cert.public_key_der(), csr.public_key_der()) {
                    return Err(file_err(&files.crt, "is not for the key of the CSR"));
                }
                if let Some(ca) = ca {
                    ca.check_issued(&cert)
                        .map_err(|e| file_err(&files.crt, e))?;
                }
                Ok(())
            });
            match kept {
                Ok(()) => out.push((target, Signed::AlreadySigned(files.crt))),
                Err(e) => refused.push((
                    files.crt.clone(),
                    format!("exists and cannot be kept ({e}); remove it to have the CSR signed"),
                )),
            }
            continue;
        }
        let Some(ca) = ca else {
            out.push((
                target,
                Signed::NoCa {
                    name: target.name().into(),
                    ca: issuer.name(),
                },
            ));
            continue;
        };
        let cert = issue(plan, ca, csr.public_key_der(), &subject, &sans, &ekus, now)?;
        writes.push((files.crt.clone(), cert.to_pem()));
        out.push((target, Signed::Written(files.crt)));
    }
    if !refused.is_empty() {
        return Err(Error::RenewalRefused { refused });
    }
    if out.is_empty() {
        return Err(invalid(
            "--csr-dir",
            format!(
                "{} holds no renewal CSR (<name>.csr, as `certs renew --csr-only` writes them)",
                csr_dir.display()
            ),
        ));
    }
    let mut batch = FileBatch::new();
    for (p, pem) in &writes {
        batch.stage(p, pem.as_bytes(), MODE_PUBLIC)?;
    }
    batch.commit()?;
    Ok(out)
}

/// What `--from-csr-dir` did for one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallStatus {
    /// Installed: the new key and certificate replaced the old ones.
    Installed {
        /// The new certificate's NotAfter, RFC 3339.
        not_after: String,
        /// The new certificate's serial number, hex.
        serial: String,
        /// The new key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// `all` only: nothing for this item in the CSR folder (no key, CSR or certificate); left
    /// as it was.
    NotInCsrDir,
    /// The signed certificate is already the tree's (an earlier run installed it, or completed
    /// an interrupted batch); left as it was. Running `--from-csr-dir` again is safe.
    AlreadyInstalled,
}

/// One item of [`install_renewal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The item.
    pub target: RenewTarget,
    /// The files of the tree it replaced (a certificate and its key, or a kubeconfig and the
    /// files its current user references).
    pub files: Vec<PathBuf>,
    /// What happened.
    pub status: InstallStatus,
}

/// `certs renew NAME|all --from-csr-dir`: installs the certificates the CA signed, with the
/// keys `--csr-only` made, in place of the tree's, as one crash-safe batch (the writer of
/// `renew`: each folder journals the batch, an interrupted one is completed by the next
/// writer). Kubeconfigs get the new client certificate and key in place, edited by structure
/// (docs/certs.md, "Editing a kubeconfig"), with the cluster CA of `ca.crt`.
///
/// Each signed certificate `<name>.crt` is checked before anything is written, and any failure
/// refuses the whole batch ([`Error::RenewalRefused`], naming each file):
/// * its public key is the one of `<name>.key`, and not the old certificate's;
/// * it was issued by the CA the tree holds for that item (`ca.crt`, `front-proxy-ca.crt`,
///   `etcd/ca.crt`; any certificate of `ca.crt` during a CA rotation);
/// * it has the identity of the certificate it replaces: the same subject and SANs (the rules
///   of [`crate::CertSpec::identity_differences`], with the old certificate as the wanted
///   identity) and the same ExtendedKeyUsage;
/// * it is not a CA (BasicConstraints CA:TRUE), has the old certificate's KeyUsage, and no
///   critical extension other than those kubeadm's leaves carry;
/// * its serial number differs from the old one's;
/// * it is valid at `now` (NotBefore at most [`CLOCK_SKEW`] ahead, NotAfter after `now`).
///
/// With `all`, an item with nothing in the CSR folder is [`InstallStatus::NotInCsrDir`]; an item
/// named alone, or one with a key or CSR but no signed certificate, is refused. An item whose
/// signed certificate is already the tree's (with the key of the CSR folder) is
/// [`InstallStatus::AlreadyInstalled`] when its CSR is for that key too: running it again after
/// a success or an interruption is safe.
pub fn install_renewal(
    spec: &ClusterSpec,
    targets: &[RenewTarget],
    all: bool,
    csr_dir: &Path,
    now: OffsetDateTime,
) -> Result<Vec<Installed>, Error> {
    check_csr_dir(spec, csr_dir, "--from-csr-dir")?;
    let (_lock, _) = crate::tree::lock_for_writing(spec)?;
    let src = Source::Folder { held: &[] };
    let dir = &spec.cert_dir;
    let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    let mut out = Vec::new();
    let mut writes: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
    let tree_files = TreeFiles::of(spec, &src);
    let ca_bundle = crate::rotate::ca_trust_bundle(&CertId::Ca.cert_path(dir))
        .map(|certs| crate::tree::bundle_pem(&certs));
    for &target in targets {
        let files = renewal_files(csr_dir, target);
        let live = target_path(spec, target);
        if !present(&files.crt) {
            if all && !present(&files.key) && !present(&files.csr) {
                out.push(Installed {
                    target,
                    files: Vec::new(),
                    status: InstallStatus::NotInCsrDir,
                });
            } else {
                refused.push((
                    files.crt.clone(),
                    format!(
                        "does not exist: {} has not been signed (`kubepki certs sign-csrs --csr-dir` where the CA keys are)",
                        target.name()
                    ),
                ));
            }
            continue;
        }
        let checked = (|| -> Result<_, Error> {
            let Some(old) = old_certificate(spec, &src, target)? else {
                return Err(file_err(
                    &live,
                    format!(
                        "does not exist: {} has nothing to replace",
                        files.crt.display()
                    ),
                ));
            };
            let key = parse_key(&files.key, &read_file(&files.key)?)?;
            // `--csr-only` writes it 0600; readable by others, it may be known to them, and
            // installed it would be the live key (whose mode the tree keeps).
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&files.key)
                    .map_err(|e| file_err(&files.key, e))?
                    .permissions()
                    .mode();
                if mode & 0o007 != 0 {
                    return Err(file_err(
                        &files.key,
                        format!(
                            "is readable by others (mode {:o}): the key may be known outside; make new ones with --csr-only --overwrite",
                            mode & 0o7777
                        ),
                    ));
                }
            }
            let cert = parse_cert(&files.crt, &read_file(&files.crt)?)?;
            if old.to_der() == cert.to_der()
                && key.matches_public_key(old.public_key_der())
                && csr_is_for(&files.csr, &cert)
            {
                // Installed by an earlier run (one batch: its key went in with it). The CSR
                // `--csr-only` made for that key tells it from the old certificate and key
                // copied into the folder, which is refused below.
                return Ok(None);
            }
            let mut problems = signed_problems(spec, &src, target, &old, &key, &cert, now)?;
            if !problems.is_empty() {
                problems.dedup();
                return Err(file_err(&files.crt, problems.join(", ")));
            }
            Ok(Some((key, cert)))
        })();
        let (key, cert) = match checked {
            Ok(Some(kc)) => kc,
            Ok(None) => {
                out.push(Installed {
                    target,
                    files: Vec::new(),
                    status: InstallStatus::AlreadyInstalled,
                });
                continue;
            }
            Err(e) => {
                refused.push(refusal(e, &files.crt));
                continue;
            }
        };
        let key_pem = key.to_pem()?;
        let cert_pem = cert.to_pem();
        let mut item_files = Vec::new();
        let item: Result<(), Error> = (|| {
            match target {
                RenewTarget::Cert(c) => {
                    for (p, bytes, mode) in [
                        (c.key_path(dir), key_pem.as_bytes(), MODE_SECRET),
                        (c.cert_path(dir), cert_pem.as_bytes(), MODE_PUBLIC),
                    ] {
                        item_files.push(p.clone());
                        writes.push((p, Zeroizing::new(bytes.to_vec()), mode));
                    }
                }
                RenewTarget::Kubeconfig(_) => {
                    let ca_pem = ca_bundle.as_ref().map_err(|e| {
                        file_err(
                            &live,
                            format!("its CA data would come from ca.crt, which is refused: {e}"),
                        )
                    })?;
                    let planned = kubeconfig_edit::plan(
                        &live,
                        &src.read(&live)?,
                        &NewCredentials {
                            cert_pem: &cert_pem,
                            key_pem: key_pem.as_str(),
                            ca_pem,
                        },
                    )?;
                    tree_files.check(&live, target, &planned.files)?;
                    for f in planned.files {
                        let mode = if f.secret { MODE_SECRET } else { MODE_PUBLIC };
                        item_files.push(f.path.clone());
                        writes.push((f.path, f.contents, mode));
                    }
                    if let Some(text) = planned.kubeconfig {
                        item_files.push(live.clone());
                        writes.push((
                            live.clone(),
                            Zeroizing::new(text.as_bytes().to_vec()),
                            MODE_SECRET,
                        ));
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = item {
            refused.push(refusal(e, &live));
            continue;
        }
        out.push(Installed {
            target,
            files: item_files,
            status: InstallStatus::Installed {
                not_after: rfc3339(cert.not_after()),
                serial: cert.serial_hex(),
                algorithm: key.algorithm(),
            },
        });
    }
    for (i, (p, _, _)) in writes.iter().enumerate() {
        if writes[..i].iter().any(|(q, _, _)| same_file(p, q)) {
            refused.push((p.clone(), "would be written twice in one batch".into()));
        }
    }
    if !refused.is_empty() {
        return Err(Error::RenewalRefused { refused });
    }
    // The tree's folders were recovered together (`lock_for_writing` above).
    let mut batch = FileBatch::overwriting()
        .keeping_owner_and_mode()
        .recovered_together();
    for (p, contents, mode) in &writes {
        batch.stage(p, contents, *mode)?;
    }
    batch.commit()?;
    Ok(out)
}

/// Whether the CSR at `path` exists, reads, and is for `cert`'s public key.
fn csr_is_for(path: &Path, cert: &Certificate) -> bool {
    read_file(path)
        .ok()
        .and_then(|b| Csr::from_pem(&b).ok())
        .is_some_and(|csr| spki_equal(csr.public_key_der(), cert.public_key_der()))
}

/// An error as a (file, reason) refusal, naming `default` when the error names no file.
fn refusal(e: Error, default: &Path) -> (PathBuf, String) {
    match e {
        Error::File { path, reason } => (path, reason.to_string()),
        other => (default.to_owned(), other.to_string()),
    }
}

/// Everything wrong with `cert`, signed for `target` to replace `old` with `key` (see
/// [`install_renewal`]).
fn signed_problems(
    spec: &ClusterSpec,
    src: &Source,
    target: RenewTarget,
    old: &Certificate,
    key: &PrivateKey,
    cert: &Certificate,
    now: OffsetDateTime,
) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    let key_file = format!("{}.key", target.name());
    if !key.matches_public_key(cert.public_key_der()) {
        problems.push(format!("its public key is not the one of {key_file}"));
    }
    if spki_equal(cert.public_key_der(), old.public_key_der()) {
        problems.push("has the key of the certificate it replaces, not a new one".into());
    }
    let ca_id = match target {
        RenewTarget::Cert(c) => c.issuer().unwrap_or(CertId::Ca),
        RenewTarget::Kubeconfig(_) => CertId::Ca,
    };
    let ca_file = ca_id.cert_path(&spec.cert_dir);
    let cas = Certificate::chain_from_pem(&src.read(&ca_file)?)
        .map_err(|e| crate::error::malformed(&ca_file, e))?;
    let issued_by = |ca: &Certificate| {
        kubepki_ca::CertificateAuthority::from_certificate(ca.clone())
            .is_ok_and(|a| a.check_issued(cert).is_ok())
    };
    if !cas.iter().any(issued_by) {
        problems.push(format!(
            "was not issued by the {} of this tree ({})",
            ca_id.name(),
            ca_file.display()
        ));
    }
    let (subject, sans) = old_identity(old);
    let old_eku = old.ext_key_usage().unwrap_or(&[]);
    let diffs = identity_differences(
        (&subject, &sans, old_eku),
        cert.subject(),
        &cert.subject_alt_names(),
        Some(cert.ext_key_usage().unwrap_or(&[])),
    );
    if !diffs.is_empty() {
        problems.push(format!(
            "is not the identity of the certificate it replaces: {}",
            diffs.join(", ")
        ));
    }
    // A leaf stays a leaf with the old key usages: a CA certificate (or keyCertSign) in place of
    // a component's certificate is what `verify` fails ("usages") and `sign-csrs` refuses to
    // issue; an external CA may add them whatever the CSR asked.
    if cert.is_ca() {
        problems.push("is a CA certificate (BasicConstraints CA:TRUE), not a leaf".into());
    }
    if cert.key_usage() != old.key_usage() {
        let names = |k: Option<kubepki_csr::KeyUsage>| {
            k.map_or_else(|| "none".to_owned(), |k| k.names().join(", "))
        };
        problems.push(format!(
            "its KeyUsage is {}, the certificate it replaces has {}",
            names(cert.key_usage()),
            names(old.key_usage())
        ));
    }
    // A critical extension a client does not know makes it refuse the certificate (Go's
    // `x509.UnhandledCriticalExtension`): only the ones kubeadm's leaves carry may be critical.
    {
        use kubepki_csr::x509::oids;
        for (oid, critical) in &cert.extensions().all {
            let known = matches!(
                *oid,
                oids::KEY_USAGE
                    | oids::BASIC_CONSTRAINTS
                    | oids::EXT_KEY_USAGE
                    | oids::SUBJECT_ALT_NAME
                    | oids::SUBJECT_KEY_ID
                    | oids::AUTHORITY_KEY_ID
            );
            if *critical && !known {
                problems.push(format!(
                    "has a critical extension {oid} that Kubernetes components do not handle"
                ));
            }
        }
    }
    if cert.serial() == old.serial() {
        problems.push("has the serial number of the certificate it replaces".into());
    }
    if cert.not_after() <= cert.not_before() {
        problems.push("its validity period is empty".into());
    } else if cert.not_after() <= now {
        problems.push(format!("expired at {}", rfc3339(cert.not_after())));
    } else if cert.not_before() > now + CLOCK_SKEW {
        problems.push(format!(
            "is not valid before {} (is a clock wrong?)",
            rfc3339(cert.not_before())
        ));
    }
    Ok(problems)
}
