//! The external-CA flow: `certs generate-csr` on the node (`docs/compatibility.md` §6.2) and `certs sign-csrs`
//! where the CA keys live, the half kubeadm leaves to the user.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec, LEAF_KEY_USAGE};
use kubepki_csr::x509::oids;
use kubepki_csr::{Csr, CsrBuilder, ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, PrivateKey, generate_many, spki_equal};
use time::OffsetDateTime;

use crate::error::{Error, Reason, file_err, invalid};
use crate::init::{Current, commit_with};
use crate::kubeconfig::Kubeconfig;
use crate::memtree::Tree;
use crate::plan::{CertId, CertSpec, KubeconfigId, KubeconfigSpec, Plan};

/// `<dir>/<base>.csr`.
pub fn csr_path(dir: &Path, id: CertId) -> PathBuf {
    dir.join(format!("{}.csr", id.base_name()))
}

/// `<kubeconfig dir>/<file>.csr`.
pub fn kubeconfig_csr_path(dir: &Path, id: KubeconfigId) -> PathBuf {
    dir.join(format!("{}.csr", id.file_name()))
}

/// What [`generate_csrs`] left as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// The key and its CSR exist (and the CSR is what the plan asks for): awaiting signing.
    AwaitingSignature {
        /// The item (`apiserver`, `admin.conf`).
        name: String,
        /// The CSR file.
        csr: PathBuf,
    },
    /// Already signed: the certificate (or the kubeconfig's client certificate) belongs to its
    /// key and carries the plan's identity.
    Signed {
        /// The item.
        name: String,
        /// The certificate file, or the kubeconfig.
        file: PathBuf,
    },
}

/// What [`generate_csrs`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generated {
    /// The files written (keys, CSRs, kubeconfigs holding only a client key).
    pub written: Vec<PathBuf>,
    /// The items already generated or signed, left untouched.
    pub kept: Vec<Kept>,
}

/// What to do for one item of `generate_csrs`.
enum Todo {
    /// Nothing there: a new key and its CSR.
    Make,
    /// The key is there, its CSR is not: a CSR for that key.
    CsrFor(Box<PrivateKey>),
    /// Nothing to do.
    Keep(Kept),
}

/// Whether anything (a dangling link included) is at `p`.
fn present(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Writes what is missing of the external-CA flow's node side: for every leaf of the plan a key
/// and a CSR (`<base>.key`, `<base>.csr`), and for each kubeconfig a file with the cluster,
/// context and user names and the server but only `client-key-data`, plus `<file>.csr`. The CSRs
/// carry the subject and DNS/IP SANs only: the signer applies the usages.
///
/// Per item, what is on disk decides:
/// * nothing: a new key and CSR (new kubeconfig and CSR);
/// * a key without CSR or certificate (a kubeconfig without client certificate or CSR): a CSR
///   for that key;
/// * a key and its CSR (a kubeconfig with only a client key, and its CSR): kept, awaiting
///   signing; the CSR must have been made with that key and still be what the plan asks for;
/// * a certificate and its key (a kubeconfig with its client certificate): kept as signed when
///   the certificate belongs to the key and carries the plan's identity (the comparison of
///   [`CertSpec::identity_differences`]);
/// * anything else (a CSR or certificate without its key, a CSR made with another key, a
///   certificate or pending CSR with another identity, a `<file>.key` next to a kubeconfig) is an
///   error naming the file; nothing is written then.
///
/// Files are only ever added, never replaced.
pub fn generate_csrs(plan: &Plan) -> Result<Generated, Error> {
    let (_lock, _) = crate::tree::lock_for_writing(&plan.spec)?;
    for k in &plan.kubeconfigs {
        let key = plan
            .kubeconfig_dir
            .join(format!("{}.key", k.id.file_name()));
        if present(&key) {
            return Err(file_err(
                &key,
                "exists; kubepki keeps a kubeconfig's client key inside the kubeconfig, remove this file",
            ));
        }
    }
    let current = Tree::read_unlocked(plan);
    let (files, mut out) = generate_csrs_in(plan, &current)?;
    // New folders (the CA holder's side never needs to read them) are owner-only.
    out.written = commit_with(plan, &files, FileBatch::new().with_dir_mode(0o700))?;
    Ok(out)
}

/// [`generate_csrs`] over a tree in memory: what is missing of the node side of the
/// external-CA flow, decided from `current` by the same rules, made in memory. Returns the new
/// files (keys, CSRs, kubeconfigs holding only a client key) and what was kept;
/// [`Generated::written`] is left empty (nothing is written).
pub fn generate_csrs_in(plan: &Plan, current: &Tree) -> Result<(Tree, Generated), Error> {
    let cur = Current {
        plan,
        tree: current,
    };
    let dir = &plan.cert_dir;
    let leaves: Vec<&CertSpec> = plan.certs.iter().filter(|c| !c.id.is_ca()).collect();
    // Decide everything (and refuse) before spending time on keys.
    let leaf_todos = leaves
        .iter()
        .map(|c| leaf_todo(&cur, dir, c))
        .collect::<Result<Vec<_>, _>>()?;
    let kc_todos = plan
        .kubeconfigs
        .iter()
        .map(|k| kubeconfig_todo(&cur, k))
        .collect::<Result<Vec<_>, _>>()?;
    let algs: Vec<_> = leaf_todos
        .iter()
        .filter(|t| matches!(t, Todo::Make))
        .map(|_| plan.algorithm)
        .chain(
            kc_todos
                .iter()
                .filter(|t| matches!(t, Todo::Make))
                .map(|_| plan.secondary_algorithm),
        )
        .collect();
    let mut keys = generate_many(&algs)?.into_iter();
    let mut next = || keys.next().ok_or(kubepki_keys::Error::Generation);
    let mut files = Tree::new();
    let mut out = Generated::default();
    for (c, todo) in leaves.into_iter().zip(leaf_todos) {
        let (key, new) = match todo {
            Todo::Keep(k) => {
                out.kept.push(k);
                continue;
            }
            Todo::Make => (next()?, true),
            Todo::CsrFor(key) => (*key, false),
        };
        let csr = CsrBuilder::new(c.subject.clone())
            .subject_alt_names(c.subject_alt_names.clone())
            .sign(&key)?;
        if new {
            cur.put(
                &mut files,
                &c.id.key_path(dir),
                key.to_pem()?.as_bytes(),
                MODE_SECRET,
            )?;
        }
        cur.put(
            &mut files,
            &csr_path(dir, c.id),
            csr.to_pem().as_bytes(),
            MODE_SECRET,
        )?;
    }
    for (k, todo) in plan.kubeconfigs.iter().zip(kc_todos) {
        let (key, new) = match todo {
            Todo::Keep(kept) => {
                out.kept.push(kept);
                continue;
            }
            Todo::Make => (next()?, true),
            Todo::CsrFor(key) => (*key, false),
        };
        let csr = CsrBuilder::new(k.subject.clone()).sign(&key)?;
        if new {
            let key_pem = key.to_pem()?;
            let kc = Kubeconfig::new(
                &k.cluster_name,
                &k.server,
                None,
                k.user_name(),
                None,
                Some(&key_pem),
            );
            let conf = plan.kubeconfig_path(k.id);
            cur.put(&mut files, &conf, kc.to_yaml()?.as_bytes(), MODE_SECRET)?;
        }
        let csr_file = kubeconfig_csr_path(&plan.kubeconfig_dir, k.id);
        cur.put(&mut files, &csr_file, csr.to_pem().as_bytes(), MODE_SECRET)?;
    }
    Ok((files, out))
}

fn leaf_todo(cur: &Current, dir: &Path, c: &CertSpec) -> Result<Todo, Error> {
    let (kp, csr_file, crt) = (c.id.key_path(dir), csr_path(dir, c.id), c.id.cert_path(dir));
    if cur.exists(&crt) {
        if !cur.exists(&kp) {
            return Err(file_err(
                &crt,
                format!("exists without its key {}", kp.display()),
            ));
        }
        let key = cur.read_key(&kp)?;
        let cert = cur.read_cert(&crt)?;
        if !key.matches_public_key(cert.public_key_der()) {
            return Err(file_err(
                &kp,
                format!("does not belong to {}", crt.display()),
            ));
        }
        let diffs = c.identity_differences(
            cert.subject(),
            &cert.subject_alt_names(),
            Some(cert.ext_key_usage().unwrap_or(&[])),
        );
        if !diffs.is_empty() {
            return Err(file_err(
                &crt,
                format!(
                    "is not what {} must be in this configuration: {}; remove it and {} to have a new key and CSR made",
                    c.id.name(),
                    diffs.join(", "),
                    kp.display()
                ),
            ));
        }
        return Ok(Todo::Keep(Kept::Signed {
            name: c.id.name().into(),
            file: crt,
        }));
    }
    match (cur.exists(&kp), cur.exists(&csr_file)) {
        (false, false) => Ok(Todo::Make),
        (false, true) => Err(file_err(
            &csr_file,
            format!(
                "exists without its key {}; remove it to have a new key and CSR made",
                kp.display()
            ),
        )),
        (true, false) => Ok(Todo::CsrFor(Box::new(cur.read_key(&kp)?))),
        (true, true) => {
            let key = cur.read_key(&kp)?;
            let csr = read_csr(cur, &csr_file)?;
            pending_csr_check(&csr_file, &csr, &key, &kp, |s, n, e| {
                c.identity_differences(s, n, e)
            })?;
            Ok(Todo::Keep(Kept::AwaitingSignature {
                name: c.id.name().into(),
                csr: csr_file,
            }))
        }
    }
}

fn kubeconfig_todo(cur: &Current, k: &KubeconfigSpec) -> Result<Todo, Error> {
    let plan = cur.plan;
    let conf = plan.kubeconfig_path(k.id);
    let csr_file = kubeconfig_csr_path(&plan.kubeconfig_dir, k.id);
    if !cur.exists(&conf) {
        if cur.exists(&csr_file) {
            return Err(file_err(
                &csr_file,
                format!(
                    "exists without {}, which holds its key; remove it to have both made",
                    conf.display()
                ),
            ));
        }
        return Ok(Todo::Make);
    }
    let kc = cur.kubeconfig(&conf)?;
    let key = client_key(&kc, &conf)?;
    if let Some(cert) = client_cert(&kc, &conf)? {
        let mut problems = Vec::new();
        if !key.matches_public_key(cert.public_key_der()) {
            problems.push("client-key-data does not belong to client-certificate-data".to_owned());
        }
        problems.extend(k.identity_differences(
            cert.subject(),
            &cert.subject_alt_names(),
            Some(cert.ext_key_usage().unwrap_or(&[])),
        ));
        if !problems.is_empty() {
            return Err(file_err(
                &conf,
                format!(
                    "has a client certificate that is not what {} must have in this configuration: {}; remove it to have a new key and CSR made",
                    k.id.file_name(),
                    problems.join(", ")
                ),
            ));
        }
        return Ok(Todo::Keep(Kept::Signed {
            name: k.id.file_name().into(),
            file: conf,
        }));
    }
    if !cur.exists(&csr_file) {
        return Ok(Todo::CsrFor(Box::new(key)));
    }
    let csr = read_csr(cur, &csr_file)?;
    pending_csr_check(&csr_file, &csr, &key, &conf, |s, n, e| {
        k.identity_differences(s, n, e)
    })?;
    Ok(Todo::Keep(Kept::AwaitingSignature {
        name: k.id.file_name().into(),
        csr: csr_file,
    }))
}

/// A CSR kept as awaiting signing must belong to its key and still ask for what the plan says.
fn pending_csr_check(
    csr_file: &Path,
    csr: &Csr,
    key: &PrivateKey,
    key_file: &Path,
    identity: impl Fn(&Subject, &SubjectAltNames, Option<&[ExtKeyUsage]>) -> Vec<String>,
) -> Result<(), Error> {
    if !key.matches_public_key(csr.public_key_der()) {
        return Err(file_err(
            csr_file,
            format!(
                "was not made with the key in {}; remove both to have new ones made",
                key_file.display()
            ),
        ));
    }
    let diffs = csr_differences(csr, identity);
    if !diffs.is_empty() {
        return Err(file_err(
            csr_file,
            format!(
                "awaits signing but is not what this configuration asks for: {}; remove it and {} to have new ones made",
                diffs.join(", "),
                key_file.display()
            ),
        ));
    }
    Ok(())
}

/// Everything a CSR asks for that the plan does not give its file: the identity (subject, SANs,
/// requested EKU; [`CertSpec::identity_differences`]) and any other requested extension unless it
/// is what the certificate gets anyway (KeyUsage digitalSignature + keyEncipherment,
/// BasicConstraints CA:FALSE without a path length).
pub(crate) fn csr_differences(
    csr: &Csr,
    identity: impl Fn(&Subject, &SubjectAltNames, Option<&[ExtKeyUsage]>) -> Vec<String>,
) -> Vec<String> {
    let exts = csr.requested_extensions();
    let mut out = identity(
        csr.subject(),
        &csr.subject_alt_names(),
        exts.ext_key_usage.as_deref(),
    );
    for (oid, _) in &exts.all {
        match *oid {
            oids::SUBJECT_ALT_NAME | oids::EXT_KEY_USAGE => {}
            oids::KEY_USAGE => {
                if let Some((ku, _)) = exts.key_usage
                    && ku != LEAF_KEY_USAGE
                {
                    out.push(format!(
                        "requests KeyUsage {}, the certificate gets digitalSignature, keyEncipherment",
                        ku.names().join(", ")
                    ));
                }
            }
            oids::BASIC_CONSTRAINTS => {
                if let Some((bc, _)) = exts.basic_constraints
                    && (bc.ca || bc.path_len.is_some())
                {
                    out.push("requests BasicConstraints CA:TRUE or a path length".to_owned());
                }
            }
            other => out.push(format!("requests extension {other}")),
        }
    }
    out
}

/// The CSR's key is of the algorithm the configuration gives the item (`encryptionAlgorithm`;
/// kubeconfig client keys before Kubernetes 1.31: RSA-2048): never Ed25519, which Kubernetes
/// components do not take.
fn csr_key_problems(csr: &Csr, want: KeyAlgorithm) -> Vec<String> {
    match kubepki_keys::public_key_algorithm(csr.public_key_der()) {
        Ok(have) if !crate::kubernetes_takes_key(have) => {
            vec![format!(
                "has an {have} key; {}",
                crate::KUBERNETES_KEYS_ONLY
            )]
        }
        Ok(have) if have != want => vec![format!(
            "has an {have} key; the configuration's encryptionAlgorithm gives this item {want}"
        )],
        Ok(_) => Vec::new(),
        Err(e) => vec![format!("its key cannot be used: {e}")],
    }
}

fn client_key(kc: &Kubeconfig, conf: &Path) -> Result<PrivateKey, Error> {
    let pem = kc.current_client_key_pem(conf)?.ok_or_else(|| {
        file_err(
            conf,
            "the current user has no client-key-data; remove the file to have a new one made",
        )
    })?;
    PrivateKey::from_pem(&pem).map_err(|e| file_err(conf, Reason::within("client-key-data", e)))
}

fn client_cert(kc: &Kubeconfig, conf: &Path) -> Result<Option<Certificate>, Error> {
    kc.current_client_cert_pem(conf)?
        .map(|pem| {
            Certificate::from_pem(&pem)
                .map_err(|e| file_err(conf, Reason::within("client-certificate-data", e)))
        })
        .transpose()
}

/// The CAs `sign-csrs` signs with (each with its key). Items whose CA is not given are left
/// unsigned and reported ([`Signed::NoCa`]), so a signing can be done in parts.
pub struct SigningCas {
    /// The cluster CA.
    pub ca: Option<CertificateAuthority>,
    /// The front-proxy CA.
    pub front_proxy: Option<CertificateAuthority>,
    /// The etcd CA.
    pub etcd: Option<CertificateAuthority>,
}

impl SigningCas {
    pub(crate) fn get(&self, id: CertId) -> Option<&CertificateAuthority> {
        match id {
            CertId::Ca => self.ca.as_ref(),
            CertId::FrontProxyCa => self.front_proxy.as_ref(),
            CertId::EtcdCa => self.etcd.as_ref(),
            _ => None,
        }
    }

    /// Checks every given CA with [`check_ca_role`], that at least one is given, and that no
    /// two share a key pair.
    pub fn check(&self, plan: &Plan) -> Result<(), Error> {
        let given: Vec<(CertId, &CertificateAuthority)> =
            [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa]
                .into_iter()
                .filter_map(|r| self.get(r).map(|ca| (r, ca)))
                .collect();
        if given.is_empty() {
            return Err(invalid("signing CAs", "no CA was given"));
        }
        for (role, ca) in &given {
            check_ca_role(plan, *role, ca)?;
        }
        for (i, (a, ca)) in given.iter().enumerate() {
            for (b, cb) in &given[i + 1..] {
                if spki_equal(
                    ca.certificate().public_key_der(),
                    cb.certificate().public_key_der(),
                ) {
                    return Err(invalid(
                        "signing CAs",
                        format!(
                            "{} and {} have the same key pair; each CA needs its own",
                            a.name(),
                            b.name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks that `ca`, given to sign as `role` (`CertId::Ca`, `FrontProxyCa` or `EtcdCa`), is
/// that CA of the plan: its subject is the plan's subject for that role (`docs/compatibility.md` §1.1: `kubernetes`,
/// `front-proxy-ca`, `etcd-ca`), the plan has that CA at all (no etcd CA with external etcd),
/// and its key is here. Passing the front-proxy CA as the cluster CA (or any other mix-up) is
/// an [`Error::CaRole`].
pub fn check_ca_role(plan: &Plan, role: CertId, ca: &CertificateAuthority) -> Result<(), Error> {
    let Some(want) = plan.cert(role).filter(|c| c.id.is_ca()) else {
        return Err(invalid(
            role.name(),
            "this configuration has no such CA (external etcd has no etcd-ca)",
        ));
    };
    let subject = ca.certificate().subject();
    if subject != &want.subject {
        let is = plan
            .certs
            .iter()
            .find(|c| c.id.is_ca() && &c.subject == subject)
            .map(|c| c.id.name());
        return Err(Error::CaRole {
            role: role.name(),
            subject: subject.to_string(),
            want: want.subject.to_string(),
            is,
        });
    }
    if !ca.can_sign() {
        return Err(invalid(role.name(), "its key is needed to sign"));
    }
    Ok(())
}

/// What `sign-csrs` did with one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signed {
    /// Signed; the certificate was written to this file (or into this kubeconfig).
    Written(PathBuf),
    /// Already signed before (its certificate belongs to its key, carries the plan's identity
    /// and, when its CA is given, chains to it); left untouched.
    AlreadySigned(PathBuf),
    /// Neither a CSR nor a certificate for it in the folder.
    NoCsr(String),
    /// Its CA was not given.
    NoCa {
        /// The item.
        name: String,
        /// The CA it needs.
        ca: &'static str,
    },
}

impl Signed {
    /// Whether the item was left without a certificate ([`Signed::NoCsr`], [`Signed::NoCa`]).
    pub fn is_skipped(&self) -> bool {
        matches!(self, Signed::NoCsr(_) | Signed::NoCa { .. })
    }
}

/// Signs the CSRs `generate_csrs` wrote under the plan's certificate and kubeconfig folders with
/// `cas`, and issues **exactly what the plan says** for each file: the plan's subject, SANs,
/// KeyUsage and ExtendedKeyUsage for the configured Kubernetes version and node, never anything
/// taken from the request, with the plan's validity. Certificates are written next to their
/// keys (never over an existing one); kubeconfigs get their `client-certificate-data` and
/// `certificate-authority-data` (which replaces a `certificate-authority` file reference of the
/// current cluster: kubectl refuses a cluster with both).
///
/// First every given CA is checked for its role ([`SigningCas::check`]). Then per item:
/// * certificate already there: kept ([`Signed::AlreadySigned`]) if it belongs to the key (and
///   the CSR), carries the plan's identity, and chains to its CA when that CA is given;
///   otherwise refused;
/// * no CSR: [`Signed::NoCsr`];
/// * a CSR that differs from the plan in anything ([`CertSpec::identity_differences`]: subject,
///   SANs, requested EKU; any other requested extension unless it is what the certificate gets
///   anyway), or that was not made with the key next to it: refused, even when its CA is not
///   given;
/// * CA not given: [`Signed::NoCa`].
///
/// Every refusal is collected into one [`Error::Refused`] naming each file and its differences;
/// one batch: on any error nothing is written.
pub fn sign_csrs(plan: &Plan, cas: &SigningCas, now: OffsetDateTime) -> Result<Vec<Signed>, Error> {
    let (_lock, _) = crate::tree::lock_for_writing(&plan.spec)?;
    let current = Tree::read_unlocked(plan);
    let (files, out) = sign_csrs_in(plan, &current, cas, now)?;
    // A kubeconfig gets its client certificate in place: the file is replaced.
    commit_with(plan, &files, FileBatch::overwriting())?;
    Ok(out)
}

/// [`sign_csrs`] over a tree in memory (the node's files as the CA holder received them):
/// the same checks, and the new certificates and completed kubeconfigs returned as a tree
/// instead of written. [`Signed::Written`] names where each would go on disk for `plan`.
pub fn sign_csrs_in(
    plan: &Plan,
    current: &Tree,
    cas: &SigningCas,
    now: OffsetDateTime,
) -> Result<(Tree, Vec<Signed>), Error> {
    let cur = Current {
        plan,
        tree: current,
    };
    cas.check(plan)?;
    let dir = &plan.cert_dir;
    let mut out = Vec::new();
    let mut refused: Vec<(PathBuf, String)> = Vec::new();
    let mut files = Tree::new();
    let context = format!("Kubernetes {}, node {}", plan.version, plan.node_name);
    for c in plan.certs.iter().filter(|c| !c.id.is_ca()) {
        let issuer = c.id.issuer().unwrap_or(CertId::Ca);
        let ca = cas.get(issuer);
        let (csr_file, target, kp) = (csr_path(dir, c.id), c.id.cert_path(dir), c.id.key_path(dir));
        let csr = if cur.exists(&csr_file) {
            Some(read_csr(&cur, &csr_file)?)
        } else {
            None
        };
        let key = if cur.exists(&kp) {
            Some(cur.read_key(&kp)?)
        } else {
            None
        };
        if let (Some(csr), Some(key)) = (&csr, &key)
            && !key.matches_public_key(csr.public_key_der())
        {
            refused.push((csr_file, format!("was not made with {}", kp.display())));
            continue;
        }
        if cur.exists(&target) {
            let cert = cur.read_cert(&target)?;
            let mut problems = Vec::new();
            let owner = key
                .as_ref()
                .map(|k| (k.matches_public_key(cert.public_key_der()), kp.clone()))
                .or_else(|| {
                    csr.as_ref().map(|r| {
                        (
                            spki_equal(r.public_key_der(), cert.public_key_der()),
                            csr_file.clone(),
                        )
                    })
                });
            if let Some((false, of)) = owner {
                problems.push(format!("its key is not the one of {}", of.display()));
            }
            problems.extend(c.identity_differences(
                cert.subject(),
                &cert.subject_alt_names(),
                Some(cert.ext_key_usage().unwrap_or(&[])),
            ));
            if let Some(ca) = ca
                && let Err(e) = ca.check_issued(&cert)
            {
                problems.push(format!("not signed by the given {}: {e}", issuer.name()));
            }
            if problems.is_empty() {
                out.push(Signed::AlreadySigned(target));
            } else {
                refused.push((
                    target.clone(),
                    format!(
                        "exists but is not what {} must be ({context}): {}; remove it to have the CSR signed",
                        c.id.name(),
                        problems.join(", ")
                    ),
                ));
            }
            continue;
        }
        let Some(csr) = csr else {
            out.push(Signed::NoCsr(c.id.name().into()));
            continue;
        };
        let mut diffs = csr_key_problems(&csr, plan.algorithm);
        diffs.extend(csr_differences(&csr, |s, n, e| {
            c.identity_differences(s, n, e)
        }));
        if !diffs.is_empty() {
            refused.push((
                csr_file,
                format!(
                    "is not what {} must be ({context}): {}",
                    c.id.name(),
                    diffs.join(", ")
                ),
            ));
            continue;
        }
        let Some(ca) = ca else {
            out.push(Signed::NoCa {
                name: c.id.name().into(),
                ca: issuer.name(),
            });
            continue;
        };
        let cert = issue(
            plan,
            ca,
            csr.public_key_der(),
            &c.subject,
            &c.subject_alt_names,
            &c.ext_key_usage,
            now,
        )?;
        cur.put(&mut files, &target, cert.to_pem().as_bytes(), MODE_PUBLIC)?;
        out.push(Signed::Written(target));
    }
    for k in &plan.kubeconfigs {
        let csr_file = kubeconfig_csr_path(&plan.kubeconfig_dir, k.id);
        let conf = plan.kubeconfig_path(k.id);
        let name = k.id.file_name();
        if !cur.exists(&conf) {
            if cur.exists(&csr_file) {
                return Err(file_err(
                    &csr_file,
                    format!("exists without {}, which holds its key", conf.display()),
                ));
            }
            out.push(Signed::NoCsr(name.into()));
            continue;
        }
        let mut kc = cur.kubeconfig(&conf)?;
        if let Some(cert) = client_cert(&kc, &conf)? {
            let key = client_key(&kc, &conf)?;
            let mut problems = Vec::new();
            if !key.matches_public_key(cert.public_key_der()) {
                problems.push("client-key-data does not belong to client-certificate-data".into());
            }
            problems.extend(k.identity_differences(
                cert.subject(),
                &cert.subject_alt_names(),
                Some(cert.ext_key_usage().unwrap_or(&[])),
            ));
            if let Some(ca) = &cas.ca {
                if let Err(e) = ca.check_issued(&cert) {
                    problems.push(format!("not signed by the given ca: {e}"));
                }
                let same_ca = kc
                    .current_ca_pem(&conf)
                    .ok()
                    .and_then(|pem| Certificate::from_pem(&pem).ok())
                    .is_some_and(|c| c.to_der() == ca.certificate().to_der());
                if !same_ca {
                    problems.push("certificate-authority-data is not the given ca".into());
                }
            }
            if problems.is_empty() {
                out.push(Signed::AlreadySigned(conf));
            } else {
                refused.push((
                    conf.clone(),
                    format!(
                        "has a client certificate that is not what {name} must have ({context}): {}; remove the file to have a new key and CSR made",
                        problems.join(", ")
                    ),
                ));
            }
            continue;
        }
        if !cur.exists(&csr_file) {
            out.push(Signed::NoCsr(name.into()));
            continue;
        }
        let key = client_key(&kc, &conf)?;
        let csr = read_csr(&cur, &csr_file)?;
        if !key.matches_public_key(csr.public_key_der()) {
            refused.push((
                csr_file,
                format!("was not made with the client key in {}", conf.display()),
            ));
            continue;
        }
        let mut diffs = csr_key_problems(&csr, plan.secondary_algorithm);
        diffs.extend(csr_differences(&csr, |s, n, e| {
            k.identity_differences(s, n, e)
        }));
        if !diffs.is_empty() {
            refused.push((
                csr_file,
                format!(
                    "is not what {name} must be ({context}): {}",
                    diffs.join(", ")
                ),
            ));
            continue;
        }
        let Some(ca) = &cas.ca else {
            out.push(Signed::NoCa {
                name: name.into(),
                ca: CertId::Ca.name(),
            });
            continue;
        };
        let cert = issue(
            plan,
            ca,
            csr.public_key_der(),
            &k.subject,
            &SubjectAltNames::default(),
            &[ExtKeyUsage::ClientAuth],
            now,
        )?;
        let current = kc.current_context.clone();
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == current)
            .map(|c| (c.context.cluster.clone(), c.context.user.clone()))
            .ok_or_else(|| file_err(&conf, "has no current context"))?;
        // kubeadm's shape: embedded data only. A `certificate-authority` file reference next to
        // the new data would make kubectl refuse the file ("both specified"), so the reference
        // is replaced by the data (the referenced file is not touched); the same for an empty
        // `client-certificate` (a set one means the file is already signed, above).
        for c in kc.clusters.iter_mut().filter(|c| c.name == ctx.0) {
            c.cluster.certificate_authority = None;
            c.cluster.certificate_authority_data = Some(B64.encode(ca.certificate().to_pem()));
        }
        for u in kc.users.iter_mut().filter(|u| u.name == ctx.1) {
            u.user.client_certificate = None;
            u.user.client_certificate_data = Some(B64.encode(cert.to_pem()));
        }
        cur.put(&mut files, &conf, kc.to_yaml()?.as_bytes(), MODE_SECRET)?;
        out.push(Signed::Written(conf));
    }
    if !refused.is_empty() {
        return Err(Error::Refused { refused });
    }
    Ok((files, out))
}

fn read_csr(cur: &Current, path: &Path) -> Result<Csr, Error> {
    Csr::from_pem(&cur.read(path)?).map_err(|e| crate::error::malformed(path, e))
}

pub(crate) fn issue(
    plan: &Plan,
    ca: &CertificateAuthority,
    public_key: &[u8],
    subject: &Subject,
    sans: &SubjectAltNames,
    ekus: &[ExtKeyUsage],
    now: OffsetDateTime,
) -> Result<Certificate, Error> {
    let window = plan.leaf_window(now, ca.certificate().not_before());
    let issue = IssueSpec::new(subject.clone(), public_key, window, CaExpiry::Clamp)
        .with_ext_key_usage(ekus.to_vec())
        .with_subject_alt_names(sans.clone());
    Ok(ca.issue(&issue)?)
}
