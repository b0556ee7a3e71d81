//! CA rotation of a kubeadm tree, offline, in three phases that each leave a cluster in which
//! every component still talks to every other (docs/rotation.md):
//!
//! - `start`: a new CA (same subject, new key) next to each old one. Every file that *trusts*
//!   the CA becomes old + new (`ca.crt`, `front-proxy-ca.crt`, `etcd/ca.crt`, the kubeconfigs'
//!   `certificate-authority-data`; `sa.pub` holds both public keys). The old CA still signs: it
//!   stays first, its key stays in the key file, and the new key waits in `pki/rotation/`.
//! - `reissue`: the new CA signs: its key takes the key file, its certificate goes first, and
//!   every leaf and kubeconfig client certificate it owns is issued again by it (same
//!   identities, new keys); `sa.key` becomes the new key, `sa.pub` new + old.
//! - `finish`: the old CA and the old service-account key leave every file.
//!
//! The stage of each target is read from the files themselves, never from a state file
//! ([`rotation_status_in`]). Each phase is decided and made in memory ([`rotate_in`]) and
//! written as one crash-safe batch ([`rotate`]); a phase run again changes nothing, and phases
//! out of order are refused ([`Error::RotationOrder`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kubepki_ca::{CaSpec, Certificate, CertificateAuthority, LABEL_CERTIFICATE};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, LABEL_PUBLIC_KEY, PrivateKey, spki_equal};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err, malformed, missing};
use crate::kubeconfig::{Kubeconfig, set};
use crate::memtree::{PKI_PREFIX, Tree};
use crate::plan::{CertId, KubeconfigId, Plan};
use crate::renew::{RenewStatus, RenewTarget, renew_in};
use crate::spec::ClusterSpec;

/// The folder under the certificate folder where the new keys wait between `start` and
/// `reissue` (mode 0700, keys 0600).
pub(crate) const ROTATION_DIR: &str = "rotation";

/// The cluster CA's signing certificate alone, relative to the certificate folder, for
/// kube-controller-manager's `--cluster-signing-cert-file`: its CSR signer refuses a file with
/// more than one certificate, so during a rotation it cannot read `ca.crt` (docs/rotation.md,
/// "kube-controller-manager").
pub const SIGNER_CERT: &str = "ca-signer.crt";

fn signer_rel() -> String {
    format!("{PKI_PREFIX}{SIGNER_CERT}")
}

/// What a rotation rotates: one of the three CAs, or the service-account key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[non_exhaustive]
pub enum RotationTarget {
    /// The cluster CA (`ca.crt`/`ca.key`; the kubeconfigs trust it).
    #[serde(rename = "ca")]
    Ca,
    /// The front-proxy CA (`front-proxy-ca.crt`/`front-proxy-ca.key`).
    #[serde(rename = "front-proxy-ca")]
    FrontProxyCa,
    /// The etcd CA (`etcd/ca.crt`/`etcd/ca.key`).
    #[serde(rename = "etcd-ca")]
    EtcdCa,
    /// The service-account key pair (`sa.key`/`sa.pub`).
    #[serde(rename = "sa")]
    ServiceAccount,
}

impl RotationTarget {
    /// Every target, in the order the phases take them.
    pub const ALL: [RotationTarget; 4] = [
        RotationTarget::Ca,
        RotationTarget::FrontProxyCa,
        RotationTarget::EtcdCa,
        RotationTarget::ServiceAccount,
    ];

    /// The name `--ca` takes: `ca`, `front-proxy-ca`, `etcd-ca`, `sa`.
    pub fn name(self) -> &'static str {
        match self {
            RotationTarget::Ca => "ca",
            RotationTarget::FrontProxyCa => "front-proxy-ca",
            RotationTarget::EtcdCa => "etcd-ca",
            RotationTarget::ServiceAccount => "sa",
        }
    }

    /// The CA this target is, if it is one.
    pub fn ca_id(self) -> Option<CertId> {
        match self {
            RotationTarget::Ca => Some(CertId::Ca),
            RotationTarget::FrontProxyCa => Some(CertId::FrontProxyCa),
            RotationTarget::EtcdCa => Some(CertId::EtcdCa),
            RotationTarget::ServiceAccount => None,
        }
    }

    /// The targets `spec`'s tree has (no `etcd-ca` with external etcd).
    pub fn of(spec: &ClusterSpec) -> Vec<RotationTarget> {
        let ids = spec.cert_ids();
        RotationTarget::ALL
            .into_iter()
            .filter(|t| t.ca_id().is_none_or(|id| ids.contains(&id)))
            .collect()
    }

    /// `all` or one name, for `spec`'s tree.
    pub fn parse_for(spec: &ClusterSpec, name: &str) -> Result<Vec<RotationTarget>, Error> {
        if name == "all" {
            return Ok(RotationTarget::of(spec));
        }
        let t: RotationTarget = name.parse()?;
        if !RotationTarget::of(spec).contains(&t) {
            return Err(crate::error::invalid(
                name,
                "this cluster has no such CA (external etcd: its CA is not kubeadm's to rotate)",
            ));
        }
        Ok(vec![t])
    }

    /// The pending key's path relative to the certificate folder (`rotation/ca.key`).
    pub(crate) fn pending_key_rel(self) -> String {
        format!("{ROTATION_DIR}/{}.key", self.name())
    }

    fn pending_key(self) -> String {
        format!("{PKI_PREFIX}{}", self.pending_key_rel())
    }

    /// The record of a rotation in progress, relative to the certificate folder: the old and
    /// the new CA (or public key) as `start` made them (`rotation/ca.crt`, `rotation/sa.pub`).
    pub(crate) fn record_rel(self) -> String {
        match self.ca_id() {
            Some(_) => format!("{ROTATION_DIR}/{}.crt", self.name()),
            None => format!("{ROTATION_DIR}/{}.pub", self.name()),
        }
    }

    fn record(self) -> String {
        format!("{PKI_PREFIX}{}", self.record_rel())
    }

    /// The file that holds what is trusted (`pki/ca.crt`, `pki/sa.pub`).
    fn trust_file(self) -> String {
        match self.ca_id() {
            Some(id) => crate::memtree::ca_paths(id).0,
            None => format!("{PKI_PREFIX}sa.pub"),
        }
    }

    /// The signing key's file (`pki/ca.key`, `pki/sa.key`).
    fn key_file(self) -> String {
        match self.ca_id() {
            Some(id) => crate::memtree::ca_paths(id).1,
            None => format!("{PKI_PREFIX}sa.key"),
        }
    }

    fn label(self) -> &'static str {
        if self.ca_id().is_some() {
            LABEL_CERTIFICATE
        } else {
            LABEL_PUBLIC_KEY
        }
    }
}

impl fmt::Display for RotationTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RotationTarget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        RotationTarget::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "rotation target",
                given: s.to_owned(),
                valid: "ca, front-proxy-ca, etcd-ca, sa, all".into(),
            })
    }
}

/// A phase of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RotationPhase {
    /// New CAs next to the old ones; everything trusts both; the old ones still sign.
    Start,
    /// The new CAs sign; every leaf is issued again by them.
    Reissue,
    /// The old CAs leave every file.
    Finish,
}

impl RotationPhase {
    /// Every phase, in the order a rotation runs them.
    pub const ALL: [RotationPhase; 3] = [
        RotationPhase::Start,
        RotationPhase::Reissue,
        RotationPhase::Finish,
    ];

    /// `start`, `reissue`, `finish`.
    pub fn name(self) -> &'static str {
        match self {
            RotationPhase::Start => "start",
            RotationPhase::Reissue => "reissue",
            RotationPhase::Finish => "finish",
        }
    }

    /// The stage a target is at once this phase has run.
    pub fn result(self) -> RotationStage {
        match self {
            RotationPhase::Start => RotationStage::Started,
            RotationPhase::Reissue => RotationStage::Reissued,
            RotationPhase::Finish => RotationStage::Idle,
        }
    }
}

impl fmt::Display for RotationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RotationPhase {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        RotationPhase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "rotation phase",
                given: s.to_owned(),
                valid: "start, reissue, finish".into(),
            })
    }
}

/// Where a target is in its rotation, read from its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RotationStage {
    /// One CA (or key), which signs: no rotation in progress (or the last one finished).
    Idle,
    /// Old and new are trusted; the old one signs; the new key waits in `pki/rotation/`.
    Started,
    /// New and old are trusted; the new one signs and has issued every leaf.
    Reissued,
}

impl RotationStage {
    /// `idle`, `started`, `reissued`.
    pub fn name(self) -> &'static str {
        match self {
            RotationStage::Idle => "idle",
            RotationStage::Started => "started",
            RotationStage::Reissued => "reissued",
        }
    }

    /// The phase that moves a target on from this stage (`None` when idle: a rotation begins
    /// with [`RotationPhase::Start`] when wanted).
    pub fn next(self) -> Option<RotationPhase> {
        match self {
            RotationStage::Idle => None,
            RotationStage::Started => Some(RotationPhase::Reissue),
            RotationStage::Reissued => Some(RotationPhase::Finish),
        }
    }
}

impl fmt::Display for RotationStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of a rotation's CAs (or service-account keys) a file holds or is signed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Generation {
    /// The CA being replaced (or the only one, when idle).
    Old,
    /// The CA replacing it.
    New,
    /// Neither: not a CA of this tree.
    Other,
}

/// The role a file plays for a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FileRole {
    /// Holds what clients trust (`ca.crt`, a kubeconfig's `certificate-authority-data`,
    /// `sa.pub`).
    Trusts,
    /// A certificate the CA signed (a leaf, a kubeconfig's client certificate).
    SignedBy,
    /// The signing key (`ca.key`, `sa.key`).
    Key,
    /// The new key waiting for `reissue` (`pki/rotation/*.key`).
    PendingKey,
    /// The signing certificate alone (`pki/ca-signer.crt`, for kube-controller-manager).
    SigningCert,
    /// The record of the rotation in progress (`pki/rotation/*.crt`, `pki/rotation/sa.pub`):
    /// the old and the new CA as `start` made them.
    Record,
}

/// One file of a target in [`RotationStatus`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RotationFile {
    /// The file on disk (for a tree in memory: where the folders would hold it).
    pub path: PathBuf,
    /// What it is for the target.
    pub role: FileRole,
    /// The CAs (keys) it holds, in order, or the one that signed it.
    pub holds: Vec<Generation>,
    /// Whether it is what the target's stage wants.
    pub ok: bool,
    /// What is wrong, or worth knowing (a certificate kept in a file outside the tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One target in [`RotationStatus`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TargetStatus {
    /// What is rotated.
    pub target: RotationTarget,
    /// Its stage (absent when its files could not be read: see `problem`).
    pub stage: Option<RotationStage>,
    /// The phase to run next: the next one, or the current one again when a file lags behind.
    pub next: Option<RotationPhase>,
    /// SHA-256 fingerprint of the old CA's certificate (or of the old public key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// SHA-256 fingerprint of the new CA's certificate (or of the new public key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// Every file of the target.
    pub files: Vec<RotationFile>,
    /// Why the stage could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Whether kubepki rotates this target here: `false` for a CA whose key is not in the tree
    /// (external CA, token) or that is not a self-signed root (`problem` says which).
    pub rotatable: bool,
}

/// The rotation stage of every target of a tree, from its files.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RotationStatus {
    /// In [`RotationTarget::ALL`]'s order.
    pub targets: Vec<TargetStatus>,
}

/// What [`rotate_in`] and [`rotate`] are given beyond the phase.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RotateOptions {
    /// The targets. None named (empty, the default): `start` takes every target the tree has
    /// (with [`RotateOptions::from_cert_dir`], those the other node rotates), `reissue` and
    /// `finish` those being rotated; a named target at the wrong stage is refused.
    pub targets: Vec<RotationTarget>,
    /// The new keys' algorithm (`start`) and the reissued leaves' (`reissue`). Without it the
    /// new CA keeps the old one's algorithm, and reissued leaves take the new CA's algorithm
    /// when it differs from the old one's, else their own.
    pub algorithm: Option<KeyAlgorithm>,
    /// Another control-plane node's certificate folder, rotated first: `start` takes its new
    /// CAs instead of making new ones, and every phase checks that both nodes rotate to the
    /// same CAs.
    pub from_cert_dir: Option<PathBuf>,
}

/// What one target went through in a phase.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TargetChange {
    /// The target.
    pub target: RotationTarget,
    /// Its stage before the phase.
    pub before: RotationStage,
    /// Its stage after.
    pub after: RotationStage,
    /// The certificates issued again (`apiserver`, `admin.conf`).
    pub reissued: Vec<String>,
}

/// The result of a phase: the files to write and remove, and what changed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Rotation {
    /// The phase.
    pub phase: RotationPhase,
    /// New and changed files (each with its mode).
    pub files: Tree,
    /// Tree paths to remove once `files` are in place (the pending keys after `reissue`).
    pub removed: Vec<String>,
    /// Per target.
    pub changes: Vec<TargetChange>,
    /// Warnings (a leaf cut to its CA's end, ...).
    pub warnings: Vec<String>,
    /// Files written by [`rotate`] (on disk); empty from [`rotate_in`].
    pub written: Vec<PathBuf>,
    /// Files removed by [`rotate`] (the waiting keys after `reissue`, the record after
    /// `finish`); empty from [`rotate_in`].
    pub deleted: Vec<PathBuf>,
}

impl Rotation {
    /// Whether the phase had nothing to do.
    pub fn unchanged(&self) -> bool {
        self.files.is_empty() && self.removed.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a target's stage.

/// One CA certificate (or public key) of a trust file.
#[derive(Clone)]
struct Member {
    /// The certificate's DER, or the SubjectPublicKeyInfo's.
    der: Vec<u8>,
    /// The public key (SubjectPublicKeyInfo DER).
    spki: Vec<u8>,
    cert: Option<Certificate>,
}

impl Member {
    fn pem(&self, target: RotationTarget) -> String {
        kubepki_keys::pem::encode(target.label(), &self.der).to_string()
    }

    fn fingerprint(&self) -> String {
        match &self.cert {
            Some(c) => c.fingerprint_sha256(),
            None => kubepki_keys::sha256_hex(&self.spki),
        }
    }

    fn same(&self, other: &Member) -> bool {
        self.der == other.der
    }
}

/// A key and its file's bytes (kept as they are when the key moves).
struct KeyFile {
    key: PrivateKey,
    bytes: Zeroizing<Vec<u8>>,
}

/// A target's files as read, and the stage they make.
struct State {
    target: RotationTarget,
    stage: RotationStage,
    members: Vec<Member>,
    key: KeyFile,
    /// The pending key, if its file exists.
    pending: Option<KeyFile>,
    /// The rotation's (old, new) as `start` recorded them, if the record exists.
    record: Option<(Member, Member)>,
}

impl State {
    /// (old, new) of a rotation in progress.
    fn old_new(&self) -> Option<(&Member, &Member)> {
        match (self.stage, &self.record) {
            (RotationStage::Started | RotationStage::Reissued, Some((o, n))) => Some((o, n)),
            _ => None,
        }
    }

    /// A record left by a `finish` interrupted after its batch.
    fn leftover_record(&self) -> bool {
        self.stage == RotationStage::Idle && self.record.is_some()
    }

    /// The signing member (first).
    fn signer(&self) -> Option<&Member> {
        self.members.first()
    }

    /// A pending key that is the signing key: left by a `reissue` (or `finish`) interrupted
    /// after its batch.
    fn leftover(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| {
            self.members
                .first()
                .is_some_and(|m| p.key.matches_public_key(&m.spki))
        })
    }

    fn generation(&self, spki_or_der: &Member) -> Generation {
        match self.old_new() {
            Some((old, _)) if old.same(spki_or_der) => Generation::Old,
            Some((_, new)) if new.same(spki_or_der) => Generation::New,
            None if self.members.first().is_some_and(|m| m.same(spki_or_der)) => Generation::Old,
            _ => Generation::Other,
        }
    }
}

/// Where tree path `rel` is on disk for `spec`.
fn shown(spec: &ClusterSpec, rel: &str) -> PathBuf {
    crate::memtree::disk_path_in(&spec.cert_dir, &spec.kubeconfig_dir, rel)
}

fn read_key_file(spec: &ClusterSpec, tree: &Tree, rel: &str) -> Result<KeyFile, Error> {
    let path = shown(spec, rel);
    let bytes = tree.read(rel, &path)?;
    let key = crate::tree::parse_key(&path, &bytes)?;
    if let Some(f) = tree.get(rel) {
        crate::rules::secret_mode_bits(&path, f.mode)
            .map_err(|m| file_err(&path, format!("mode: {m}")))?;
    }
    Ok(KeyFile { key, bytes })
}

/// The members of a trust file's bytes.
fn read_members(target: RotationTarget, path: &Path, bytes: &[u8]) -> Result<Vec<Member>, Error> {
    let blocks = kubepki_keys::pem::decode_all(bytes).map_err(|e| malformed(path, e))?;
    if let Some(b) = blocks.iter().find(|b| b.label() != target.label()) {
        return Err(file_err(
            path,
            format!(
                "holds a \"{}\" block; it must hold \"{}\" blocks only",
                b.label(),
                target.label()
            ),
        ));
    }
    let mut out = Vec::new();
    for b in &blocks {
        let der = b.contents().to_vec();
        match target.ca_id() {
            Some(_) => {
                let cert = Certificate::from_der(&der).map_err(|e| malformed(path, e))?;
                CertificateAuthority::from_certificate(cert.clone()).map_err(|e| {
                    file_err(
                        path,
                        Reason::within(format!("\"{}\"", cert.display_name()), e),
                    )
                })?;
                cert.verify_signature(cert.public_key_der()).map_err(|e| {
                    file_err(
                        path,
                        format!(
                            "\"{}\" is not a self-signed root ({e})",
                            cert.display_name()
                        ),
                    )
                })?;
                out.push(Member {
                    spki: cert.public_key_der().to_vec(),
                    der,
                    cert: Some(cert),
                });
            }
            None => {
                kubepki_keys::public_key_algorithm(&der).map_err(|e| malformed(path, e))?;
                out.push(Member {
                    spki: der.clone(),
                    der,
                    cert: None,
                });
            }
        }
    }
    match out.as_slice() {
        [] => Err(missing(
            path,
            format!("holds no \"{}\" block", target.label()),
        )),
        [_] => Ok(out),
        [a, b] => {
            if let (Some(ca), Some(cb)) = (&a.cert, &b.cert)
                && ca.subject_der() != cb.subject_der()
            {
                return Err(file_err(
                    path,
                    format!(
                        "holds two CAs of different names (\"{}\" and \"{}\"); in a rotation both have the CA's name: the second is not this CA's",
                        ca.display_name(),
                        cb.display_name()
                    ),
                ));
            }
            if spki_equal(&a.spki, &b.spki) {
                return Err(file_err(
                    path,
                    "holds the same key twice; a rotation's new CA has a new key",
                ));
            }
            Ok(out)
        }
        more => Err(file_err(
            path,
            format!(
                "holds {} blocks; kubepki's rotations have at most two (the old and the new)",
                more.len()
            ),
        )),
    }
}

/// The CA certificates a kubeconfig made from the cluster CA file `ca_file` trusts: its first
/// certificate (what kubeadm embeds), and the second as well while a rotation of that CA is in
/// progress, confirmed by the rotation's record next to it (`rotation/ca.crt`: docs/rotation.md).
/// Any other certificate in the file is never trusted by what kubepki writes.
pub fn ca_trust_bundle(ca_file: &Path) -> Result<Vec<Certificate>, Error> {
    let ca = crate::tree::read_file(ca_file)?;
    let record_path = ca_file
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(RotationTarget::Ca.record_rel());
    let record = match std::fs::symlink_metadata(&record_path) {
        Ok(m) if m.file_type().is_file() => Some(crate::tree::read_file(&record_path)?),
        _ => None,
    };
    let trust = confirmed_trust(ca_file, &ca, record.as_deref().map(|r| r.as_slice()))?;
    // Two CAs of one name are a rotation; without its record next to them, trusting the first
    // alone would lock the kubeconfig out once the new CA signs, and trusting both would trust
    // a CA nothing vouches for.
    if trust.len() == 1
        && read_members(RotationTarget::Ca, ca_file, &ca).is_ok_and(|m| m.len() == 2)
    {
        return Err(missing(
            record_path,
            format!(
                "missing: {} holds two CAs of one name (a CA rotation), and only the rotation's record says which to trust; use the certificate folder of a control-plane node (it holds pki/rotation/), not a copy of ca.crt alone",
                ca_file.display()
            ),
        ));
    }
    Ok(trust)
}

/// [`ca_trust_bundle`] for a tree (`pki/ca.crt`, `pki/rotation/ca.crt`); `path` names ca.crt.
pub(crate) fn tree_trust(tree: &Tree, path: &Path) -> Result<Vec<Certificate>, Error> {
    let (rel, _) = crate::memtree::ca_paths(CertId::Ca);
    let ca = tree.read(&rel, path)?;
    let record = tree
        .get(&RotationTarget::Ca.record())
        .map(|f| f.bytes.clone());
    confirmed_trust(path, &ca, record.as_deref().map(|r| r.as_slice()))
}

fn confirmed_trust(
    path: &Path,
    ca: &[u8],
    record: Option<&[u8]>,
) -> Result<Vec<Certificate>, Error> {
    let first = crate::tree::parse_cert(path, ca)?;
    if let Some(record) = record
        && let (Ok(ms), Ok(rs)) = (
            read_members(RotationTarget::Ca, path, ca),
            read_members(RotationTarget::Ca, path, record),
        )
        && let ([a, b], [o, n]) = (ms.as_slice(), rs.as_slice())
        && ((a.same(o) && b.same(n)) || (a.same(n) && b.same(o)))
    {
        return Ok(ms.into_iter().filter_map(|m| m.cert).collect());
    }
    Ok(vec![first])
}

/// Whether kubepki can rotate `target` of `tree`: its key file is here (not an external CA, not
/// a key held in a token) and, for a CA, the first certificate of its file is a self-signed root
/// (not an intermediate of another CA). `Err` says why not.
fn rotatable(spec: &ClusterSpec, tree: &Tree, target: RotationTarget) -> Result<(), String> {
    let key = target.key_file();
    if !tree.exists(&key) {
        return Err(format!(
            "{} is not here (an external CA, or a key held in a token): kubepki does not rotate it",
            shown(spec, &key).display()
        ));
    }
    if target.ca_id().is_some() {
        let rel = target.trust_file();
        let path = shown(spec, &rel);
        if let Ok(c) = tree
            .read(&rel, &path)
            .and_then(|b| crate::tree::parse_cert(&path, &b))
            && c.verify_signature(c.public_key_der()).is_err()
        {
            return Err(format!(
                "{} is not a self-signed root (an intermediate of another CA): kubepki does not rotate it",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Reads target `target` of `tree` and derives its stage.
fn read_state(spec: &ClusterSpec, tree: &Tree, target: RotationTarget) -> Result<State, Error> {
    let trust_rel = target.trust_file();
    let trust_path = shown(spec, &trust_rel);
    let members = read_members(target, &trust_path, &tree.read(&trust_rel, &trust_path)?)?;
    let key_rel = target.key_file();
    let key_path = shown(spec, &key_rel);
    if !tree.exists(&key_rel) {
        return Err(missing(
            &key_path,
            format!(
                "missing; a rotation needs the signing key here ({} without its key is an external CA, or a key held in a token: kubepki does not rotate those)",
                trust_path.display()
            ),
        ));
    }
    let key = read_key_file(spec, tree, &key_rel)?;
    let signer = &members[0];
    if !key.key.matches_public_key(&signer.spki) {
        return Err(file_err(
            &key_path,
            format!(
                "is not the key of the first {} in {} (the one that signs comes first)",
                if target.ca_id().is_some() {
                    "certificate"
                } else {
                    "public key"
                },
                trust_path.display()
            ),
        ));
    }
    let pending_rel = target.pending_key();
    let pending_path = shown(spec, &pending_rel);
    let pending = if tree.exists(&pending_rel) {
        Some(read_key_file(spec, tree, &pending_rel)?)
    } else {
        None
    };
    let record_rel = target.record();
    let record_path = shown(spec, &record_rel);
    let record = if tree.exists(&record_rel) {
        match read_members(target, &record_path, &tree.read(&record_rel, &record_path)?)?.as_slice()
        {
            [o, n] => Some((o.clone(), n.clone())),
            _ => {
                return Err(file_err(
                    &record_path,
                    format!(
                        "must hold the rotation's two {}s, old then new, as start wrote them",
                        target.label()
                    ),
                ));
            }
        }
    } else {
        None
    };
    let pending_is = |m: &Member| {
        pending
            .as_ref()
            .is_some_and(|p| p.key.matches_public_key(&m.spki))
    };
    let stray_pending = || {
        file_err(
            &pending_path,
            format!(
                "is a waiting key that does not match the rotation recorded in {} and {}: restore the rotation's files from another control-plane node (pki/rotation/) or a backup; kubepki changes nothing until they agree",
                record_path.display(),
                trust_path.display()
            ),
        )
    };
    let stage = match (members.as_slice(), &record) {
        ([s], None) => {
            if pending.is_some() && !pending_is(s) {
                return Err(stray_pending());
            }
            RotationStage::Idle
        }
        // Finished; the record (and maybe the waiting key) left by an interrupted finish.
        ([s], Some((_, n))) if n.same(s) => {
            if pending.is_some() && !pending_is(s) {
                return Err(stray_pending());
            }
            RotationStage::Idle
        }
        ([_], Some(_)) => {
            return Err(file_err(
                &record_path,
                format!(
                    "records a rotation whose new {} is not the one in {}: not this tree's; remove it",
                    target.label(),
                    trust_path.display()
                ),
            ));
        }
        ([_, _], None) => {
            return Err(missing(
                &record_path,
                format!(
                    "missing, and {} holds two {}s: if a rotation is in progress, restore its record from another control-plane node (pki/rotation/) or a backup; if the second is not yours, remove it from {}. kubepki changes nothing until then",
                    trust_path.display(),
                    target.label(),
                    trust_path.display()
                ),
            ));
        }
        ([a, b], Some((o, n))) if a.same(o) && b.same(n) => {
            if pending.is_none() {
                return Err(missing(
                    &pending_path,
                    format!(
                        "missing: the rotation is started ({} holds old, new), and this is the new key",
                        trust_path.display()
                    ),
                ));
            }
            if !pending_is(n) {
                return Err(stray_pending());
            }
            RotationStage::Started
        }
        ([a, b], Some((o, n))) if a.same(n) && b.same(o) => {
            if pending.is_some() && !pending_is(a) {
                return Err(stray_pending());
            }
            RotationStage::Reissued
        }
        (_, Some(_)) => {
            return Err(file_err(
                &trust_path,
                format!(
                    "does not hold the rotation recorded in {} (old, new or new, old): restore the rotation's files from another control-plane node or a backup; kubepki changes nothing until they agree",
                    record_path.display()
                ),
            ));
        }
        _ => unreachable_members(&trust_path)?,
    };
    let state = State {
        target,
        stage,
        members,
        key,
        pending,
        record,
    };
    if target == RotationTarget::Ca {
        signer_file(spec, tree, &state)?;
    }
    Ok(state)
}

/// The generation `pki/ca-signer.crt` holds, if it exists: exactly one certificate, one of the
/// rotation's CAs.
fn signer_file(
    spec: &ClusterSpec,
    tree: &Tree,
    state: &State,
) -> Result<Option<Generation>, Error> {
    let rel = signer_rel();
    if !tree.exists(&rel) {
        return Ok(None);
    }
    let path = shown(spec, &rel);
    let ms = read_members(RotationTarget::Ca, &path, &tree.read(&rel, &path)?)?;
    match ms.as_slice() {
        [m] => match state.generation(m) {
            Generation::Other => Err(file_err(
                &path,
                "is not a CA of this tree's ca.crt; it holds the cluster CA's signing certificate alone",
            )),
            g => Ok(Some(g)),
        },
        _ => Err(file_err(
            &path,
            "holds two certificates; kube-controller-manager's --cluster-signing-cert-file takes exactly one",
        )),
    }
}

fn unreachable_members(path: &Path) -> Result<RotationStage, Error> {
    Err(file_err(path, "holds an unexpected number of blocks"))
}

// ---------------------------------------------------------------------------------------------
// The files a target owns.

/// A file a target owns beyond its trust and key files.
enum Owned {
    /// A leaf certificate (tree paths of certificate and key).
    Leaf(CertId, String),
    /// A kubeconfig (tree path).
    Kubeconfig(KubeconfigId, String),
}

fn owned(spec: &ClusterSpec, tree: &Tree, target: RotationTarget) -> Vec<Owned> {
    let Some(ca) = target.ca_id() else {
        return Vec::new();
    };
    let mut out: Vec<Owned> = spec
        .cert_ids()
        .into_iter()
        .filter(|c| !c.is_ca() && c.issuer() == Some(ca))
        .map(|c| {
            (
                c,
                c.cert_path(Path::new("pki")).to_string_lossy().into_owned(),
            )
        })
        .filter(|(_, rel)| tree.exists(rel))
        .map(|(c, rel)| Owned::Leaf(c, rel))
        .collect();
    if ca == CertId::Ca {
        out.extend(
            spec.kubeconfig_ids()
                .into_iter()
                .map(|k| (k, k.file_name().to_owned()))
                .filter(|(_, rel)| tree.exists(rel))
                .map(|(k, rel)| Owned::Kubeconfig(k, rel)),
        );
    }
    out
}

/// What a kubeconfig of the tree trusts and which certificate it uses.
struct KcView {
    /// Embedded CA data (`None`: the cluster names a file).
    trusts: Option<Vec<Member>>,
    /// The client certificate: embedded, or (for a tree read from its folders) the file named.
    client: Option<Certificate>,
    /// The client certificate is a file outside the tree.
    client_file: Option<String>,
    /// Why that file could not be read.
    client_unreadable: Option<String>,
}

fn kubeconfig_view(spec: &ClusterSpec, tree: &Tree, rel: &str) -> Result<KcView, Error> {
    let path = shown(spec, rel);
    let bytes = tree.read(rel, &path)?;
    let kc = Kubeconfig::from_slice(&path, &bytes)?;
    let (cluster, user) = kc.current(&path)?;
    let trusts =
        match set(cluster.cluster.certificate_authority_data.as_deref()) {
            Some(d) => {
                let pem = crate::kubeconfig::decode(&path, "certificate-authority-data", d)?;
                Some(read_members(RotationTarget::Ca, &path, &pem).map_err(|e| {
                    file_err(&path, Reason::within("certificate-authority-data", e))
                })?)
            }
            None => None,
        };
    let client_file = set(user.user.client_certificate.as_deref()).map(str::to_owned);
    let mut client_unreadable = None;
    let client = match set(user.user.client_certificate_data.as_deref()) {
        Some(_) => kc.current_client_cert_pem(&path)?,
        // A file outside the tree (the kubelet's own): read on this host when it can be.
        None if client_file.is_some() && tree.is_from_folder() => {
            match kc.current_client_cert_pem(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    client_unreadable = Some(e.to_string());
                    None
                }
            }
        }
        None => None,
    }
    .map(|pem| {
        Certificate::from_pem(&pem)
            .map_err(|e| file_err(&path, Reason::within("client certificate", e)))
    })
    .transpose()?;
    Ok(KcView {
        trusts,
        client,
        client_file,
        client_unreadable,
    })
}

fn signed_by(state: &State, cert: &Certificate) -> Generation {
    let by = |m: &Member| {
        m.cert
            .as_ref()
            .is_some_and(|ca| cert.issuer_der() == ca.subject_der())
            && cert.verify_signature(&m.spki).is_ok()
    };
    match state.old_new() {
        Some((old, _)) if by(old) => Generation::Old,
        Some((_, new)) if by(new) => Generation::New,
        None if state.members.first().is_some_and(by) => Generation::Old,
        _ => Generation::Other,
    }
}

/// What a stage wants a trust file to hold, and the signer.
fn wanted(stage: RotationStage) -> (&'static [Generation], Generation) {
    match stage {
        RotationStage::Idle => (&[Generation::Old], Generation::Old),
        RotationStage::Started => (&[Generation::Old, Generation::New], Generation::Old),
        RotationStage::Reissued => (&[Generation::New, Generation::Old], Generation::New),
    }
}

fn target_files(spec: &ClusterSpec, tree: &Tree, state: &State) -> Vec<RotationFile> {
    let t = state.target;
    let (want_trust, want_signer) = wanted(state.stage);
    let mut files = Vec::new();
    let holds = |ms: &[Member]| ms.iter().map(|m| state.generation(m)).collect::<Vec<_>>();
    files.push(RotationFile {
        path: shown(spec, &t.trust_file()),
        role: FileRole::Trusts,
        holds: holds(&state.members),
        ok: true,
        note: None,
    });
    files.push(RotationFile {
        path: shown(spec, &t.key_file()),
        role: FileRole::Key,
        holds: vec![want_signer],
        ok: true,
        note: None,
    });
    if let Ok(Some(g)) = signer_file(spec, tree, state) {
        files.push(RotationFile {
            path: shown(spec, &signer_rel()),
            role: FileRole::SigningCert,
            holds: vec![g],
            ok: g == want_signer,
            note: None,
        });
    }
    if let Some((_, _)) = &state.record {
        let leftover = state.leftover_record();
        files.push(RotationFile {
            path: shown(spec, &t.record()),
            role: FileRole::Record,
            holds: vec![Generation::Old, Generation::New],
            ok: !leftover,
            note: leftover.then(|| {
                "left by an interrupted finish: running finish again removes it".to_owned()
            }),
        });
    }
    if state.pending.is_some() {
        let leftover = state.leftover();
        files.push(RotationFile {
            path: shown(spec, &t.pending_key()),
            role: FileRole::PendingKey,
            holds: vec![if leftover {
                want_signer
            } else {
                Generation::New
            }],
            ok: !leftover,
            note: leftover.then(|| {
                "the same key as the key file, left by an interrupted reissue: running the phase again removes it".to_owned()
            }),
        });
    }
    for o in owned(spec, tree, t) {
        match o {
            Owned::Leaf(_, rel) => {
                let path = shown(spec, &rel);
                match tree
                    .read(&rel, &path)
                    .and_then(|b| crate::tree::parse_cert(&path, &b))
                {
                    Ok(cert) => {
                        let g = signed_by(state, &cert);
                        files.push(RotationFile {
                            path,
                            role: FileRole::SignedBy,
                            holds: vec![g],
                            ok: g == want_signer,
                            note: None,
                        });
                    }
                    Err(e) => files.push(RotationFile {
                        path,
                        role: FileRole::SignedBy,
                        holds: Vec::new(),
                        ok: false,
                        note: Some(e.to_string()),
                    }),
                }
            }
            Owned::Kubeconfig(_, rel) => {
                let path = shown(spec, &rel);
                match kubeconfig_view(spec, tree, &rel) {
                    Ok(v) => {
                        match &v.trusts {
                            Some(ms) => {
                                let h = holds(ms);
                                files.push(RotationFile {
                                    path: path.clone(),
                                    role: FileRole::Trusts,
                                    ok: h == want_trust,
                                    holds: h,
                                    note: None,
                                });
                            }
                            None => files.push(RotationFile {
                                path: path.clone(),
                                role: FileRole::Trusts,
                                holds: Vec::new(),
                                ok: true,
                                note: Some(
                                    "names its CA file (certificate-authority), which follows that file"
                                        .into(),
                                ),
                            }),
                        }
                        match (&v.client, &v.client_file) {
                            (Some(c), file) => {
                                let g = signed_by(state, c);
                                files.push(RotationFile {
                                    path: file
                                        .as_ref()
                                        .map(|f| crate::kubeconfig::resolve_reference(&path, f))
                                        .unwrap_or_else(|| path.clone()),
                                    role: FileRole::SignedBy,
                                    holds: vec![g],
                                    ok: g == want_signer || (file.is_some() && g != Generation::Other && state.stage != RotationStage::Idle),
                                    note: file.as_ref().map(|_| {
                                        "a client certificate outside the tree (the kubelet's own): kubepki does not reissue it; before finish it must be signed by the new CA (docs/rotation.md)".to_owned()
                                    }),
                                });
                            }
                            (None, Some(f)) => files.push(RotationFile {
                                path: crate::kubeconfig::resolve_reference(&path, f),
                                role: FileRole::SignedBy,
                                holds: Vec::new(),
                                ok: true,
                                note: Some(match &v.client_unreadable {
                                    Some(e) => format!("a client certificate outside the tree that cannot be read ({e}); finish refuses until it can be, or the node has a new kubelet.conf"),
                                    None => "a client certificate outside the tree, not read".into(),
                                }),
                            }),
                            (None, None) => {}
                        }
                    }
                    Err(e) => files.push(RotationFile {
                        path,
                        role: FileRole::Trusts,
                        holds: Vec::new(),
                        ok: false,
                        note: Some(e.to_string()),
                    }),
                }
            }
        }
    }
    files
}

/// The rotation stage of every target of `current` (a tree read from its folders, or held in
/// memory), with every file's state and the phase to run next. Never fails: a target whose
/// files cannot be read says why in [`TargetStatus::problem`].
pub fn rotation_status_in(spec: &ClusterSpec, current: &Tree) -> RotationStatus {
    let mut targets = Vec::new();
    for t in RotationTarget::of(spec) {
        match read_state(spec, current, t) {
            Ok(state) => {
                let mut files = target_files(spec, current, &state);
                // Once idle, a certificate of a CA the tree no longer has is not a phase's to
                // fix: it is renewed (or made again) like any certificate of a foreign CA.
                for f in files.iter_mut().filter(|f| {
                    !f.ok && state.stage == RotationStage::Idle && f.role == FileRole::SignedBy
                }) {
                    f.note.get_or_insert_with(|| {
                        "signed by a CA this tree no longer has: renew it (`certs renew`) or make it again".into()
                    });
                }
                let lagging = files.iter().any(|f| {
                    let renew_instead =
                        state.stage == RotationStage::Idle && f.role == FileRole::SignedBy;
                    // A file that cannot be read is a problem to fix, not a phase's to redo.
                    !f.ok && !renew_instead && !f.holds.is_empty()
                });
                let next = if lagging {
                    // The phase that made this stage, run again, brings the laggards along.
                    match state.stage {
                        RotationStage::Idle => Some(RotationPhase::Finish),
                        RotationStage::Started => Some(RotationPhase::Start),
                        RotationStage::Reissued => Some(RotationPhase::Reissue),
                    }
                } else {
                    state.stage.next()
                };
                let (old, new) = match state.old_new() {
                    Some((o, n)) => (Some(o.fingerprint()), Some(n.fingerprint())),
                    None => (state.signer().map(Member::fingerprint), None),
                };
                targets.push(TargetStatus {
                    target: t,
                    stage: Some(state.stage),
                    next,
                    old,
                    new,
                    files,
                    problem: None,
                    rotatable: true,
                });
            }
            Err(e) => {
                let why = rotatable(spec, current, t);
                targets.push(TargetStatus {
                    target: t,
                    stage: None,
                    next: None,
                    old: None,
                    new: None,
                    files: Vec::new(),
                    rotatable: why.is_ok(),
                    problem: Some(why.err().unwrap_or_else(|| e.to_string())),
                });
            }
        }
    }
    RotationStatus { targets }
}

/// [`rotation_status_in`] on `spec`'s folders, under the shared lock (a folder with an
/// unfinished batch is refused, naming its journal).
pub fn rotation_status(spec: &ClusterSpec) -> Result<RotationStatus, Error> {
    let _lock = crate::tree::lock_for_reading(spec)?;
    Ok(rotation_status_in(spec, &read_tree(spec)))
}

/// The stage of `target` in `current`, for `verify`: `Ok` with a description, or why its
/// files are not a tree kubepki can be in.
pub(crate) fn stage_check(
    spec: &ClusterSpec,
    current: &Tree,
    target: RotationTarget,
) -> Result<String, String> {
    // A CA kubepki does not rotate (no key here, an intermediate): nothing to read.
    if let Err(why) = rotatable(spec, current, target) {
        return Ok(why);
    }
    let state = read_state(spec, current, target).map_err(|e| e.to_string())?;
    if state.leftover_record() {
        return Err(format!(
            "{} is left by an interrupted finish: run `kubepki ca rotate finish` again to remove it",
            shown(spec, &target.record()).display()
        ));
    }
    if state.leftover() {
        return Err(format!(
            "{} is the signing key again (left by an interrupted reissue): run `kubepki ca rotate reissue` again to remove it",
            shown(spec, &target.pending_key()).display()
        ));
    }
    Ok(match (state.stage, state.old_new()) {
        (RotationStage::Idle, _) | (_, None) => format!(
            "one {}, no rotation in progress",
            if target.ca_id().is_some() {
                "CA"
            } else {
                "public key"
            }
        ),
        (stage, Some((old, new))) => format!(
            "a rotation is in progress, stage {stage} (old {}, new {}); next phase: {}",
            old.fingerprint(),
            new.fingerprint(),
            stage.next().map_or("none", RotationPhase::name)
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// The phases.

/// Runs `phase` of a CA rotation on `current` (a tree read from its folders, or held in memory)
/// at `now`, in memory: returns the files to write and remove. `from` is another control-plane
/// node's tree, rotated first ([`RotateOptions::from_cert_dir`], read by [`rotate`]). Every
/// target is checked before anything is made; one that cannot take the phase refuses the whole
/// phase, naming every file and the next phase.
///
/// ```
/// use kubepki_kubeadm::{ClusterSpec, Plan, RotateOptions, RotationPhase, RotationStage, Selection,
///     Tree, build, rotate_in, rotation_status_in};
/// use time::OffsetDateTime;
///
/// let mut spec = ClusterSpec::with_advertise_address("192.0.2.10".parse()?);
/// spec.node_name = Some("cp1".into());
/// spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
/// let now = OffsetDateTime::now_utc();
/// let mut tree = build(&Plan::new(&spec)?, &Selection::all(), &Tree::new(), now)?.files;
///
/// for phase in [RotationPhase::Start, RotationPhase::Reissue, RotationPhase::Finish] {
///     let r = rotate_in(&spec, &tree, None, phase, &RotateOptions::default(), now)?;
///     for f in r.files.files() {
///         tree.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
///     }
///     for p in &r.removed {
///         tree.remove(p);
///     }
///     let status = rotation_status_in(&spec, &tree);
///     assert!(status.targets.iter().all(|t| t.stage == Some(phase.result())));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rotate_in(
    spec: &ClusterSpec,
    current: &Tree,
    from: Option<&Tree>,
    phase: RotationPhase,
    opts: &RotateOptions,
    now: OffsetDateTime,
) -> Result<Rotation, Error> {
    let plan = Plan::shared_files(spec)?;
    // No targets named: every target for start; for reissue and finish, those with a
    // rotation in progress (or its leftovers), so that rotating one CA alone needs no --ca later.
    let explicit = !opts.targets.is_empty();
    let targets = if explicit {
        opts.targets.clone()
    } else {
        RotationTarget::of(spec)
    };
    // 1. Every target's stage, and whether the phase may run.
    let mut problems = Vec::new();
    let mut states: Vec<State> = Vec::new();
    // No target named: only what kubepki rotates here (a CA whose key is elsewhere is left
    // out, as an external etcd is).
    let targets: Vec<RotationTarget> = targets
        .into_iter()
        .filter(|t| explicit || rotatable(spec, current, *t).is_ok())
        .collect();
    for &t in &targets {
        match read_state(spec, current, t) {
            Ok(s) => states.push(s),
            Err(e) => problems.push(e),
        }
    }
    if !explicit && phase != RotationPhase::Start {
        // Reissue takes the rotations in progress; finish also their leftovers.
        let busy = |s: &State| {
            s.stage != RotationStage::Idle
                || (phase == RotationPhase::Finish && (s.record.is_some() || s.pending.is_some()))
        };
        if states.iter().any(busy) {
            states.retain(busy);
        }
    }
    // `start` from another node with no target named: what that node rotates.
    if !explicit
        && phase == RotationPhase::Start
        && let Some(from) = from
    {
        let from_spec = from_spec(spec, opts);
        let rotating: Vec<RotationTarget> = states
            .iter()
            .map(|s| s.target)
            .filter(|t| {
                read_state(&from_spec, from, *t).is_ok_and(|src| src.stage != RotationStage::Idle)
            })
            .collect();
        if !rotating.is_empty() {
            states.retain(|s| rotating.contains(&s.target));
        }
    }
    for s in &states {
        let allowed = matches!(
            (s.stage, phase),
            (
                RotationStage::Idle,
                RotationPhase::Start | RotationPhase::Finish
            ) | (
                RotationStage::Started,
                RotationPhase::Start | RotationPhase::Reissue
            ) | (
                RotationStage::Reissued,
                RotationPhase::Reissue | RotationPhase::Finish
            )
        );
        if !allowed {
            problems.push(Error::RotationOrder {
                target: s.target,
                stage: s.stage,
                phase,
                next: s.stage.next().or(Some(RotationPhase::Start)),
            });
        }
    }
    // The other node's stage, for the same targets.
    let mut sources = Vec::new();
    if let Some(from) = from {
        let from_spec = from_spec(spec, opts);
        for s in &states {
            match read_state(&from_spec, from, s.target) {
                Ok(src) => sources.push(src),
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.len() == 1
        && let Some(one) = problems.pop()
    {
        return Err(one);
    }
    if !problems.is_empty() {
        return Err(Error::RotationRefused { phase, problems });
    }

    // 2. The material of each target after the phase.
    let mut out = Tree::new();
    let mut removed = Vec::new();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut kubeconfig_trust: Option<String> = None;
    type Algs = (Option<KeyAlgorithm>, Option<KeyAlgorithm>);
    let mut reissue_jobs: Vec<(RotationTarget, Vec<RenewTarget>, Algs)> = Vec::new();
    let mut synth = current.clone();
    for s in &states {
        let t = s.target;
        let src = sources.iter().find(|x| x.target == t);
        let after = phase.result();
        // (old, new) and the new key's bytes.
        let (old, new, new_key): (Member, Option<Member>, Option<Zeroizing<Vec<u8>>>) =
            match (s.stage, phase) {
                (RotationStage::Idle, RotationPhase::Start) => {
                    let old = s.members[0].clone();
                    let (new, key) = match src {
                        Some(src) => take_new(spec, s, src)?,
                        None => make_new(&plan, s, opts.algorithm, now)?,
                    };
                    (old, Some(new), Some(key))
                }
                (RotationStage::Idle, _) => (s.members[0].clone(), None, None),
                (_, _) => {
                    let Some((o, n)) = s.old_new() else {
                        return Err(file_err(
                            shown(spec, &t.trust_file()),
                            "holds one CA, yet a rotation is in progress",
                        ));
                    };
                    let key = match s.stage {
                        RotationStage::Started => s.pending.as_ref().map(|p| p.bytes.clone()),
                        _ => Some(s.key.bytes.clone()),
                    };
                    (o.clone(), Some(n.clone()), key)
                }
            };
        if let Some(src) = src {
            check_same_rotation(spec, opts, s, src, &old, new.as_ref(), phase)?;
            if phase == RotationPhase::Finish && src.stage == RotationStage::Started {
                return Err(file_err(
                    shown(&from_spec(spec, opts), &t.trust_file()),
                    format!(
                        "{t}: the node of --from-cert-dir is still at stage started (its leaves are the old CA's): finishing here would lock it out; run reissue there first"
                    ),
                ));
            }
        }
        let trust_path = t.trust_file();
        let key_rel = t.key_file();
        let pending_rel = t.pending_key();
        // Trust file, key file and pending key as the stage after the phase wants them.
        let (trust, key_bytes, pending): (Vec<&Member>, Zeroizing<Vec<u8>>, Option<&[u8]>) =
            match (after, &new, &new_key) {
                (RotationStage::Started, Some(n), Some(k)) => {
                    (vec![&old, n], s.key.bytes.clone(), Some(k.as_slice()))
                }
                (RotationStage::Reissued, Some(n), Some(k)) => (vec![n, &old], k.clone(), None),
                (RotationStage::Idle, Some(n), Some(k)) => (vec![n], k.clone(), None),
                (RotationStage::Idle, None, _) => (vec![&old], s.key.bytes.clone(), None),
                _ => {
                    return Err(missing(
                        shown(spec, &pending_rel),
                        "missing: the new key of a started rotation",
                    ));
                }
            };
        let trust_pem: String = trust.iter().map(|m| m.pem(t)).collect();
        put_if_changed(current, &mut out, &trust_path, trust_pem.as_bytes())?;
        put_if_changed(current, &mut out, &key_rel, &key_bytes)?;
        if let Some(p) = pending {
            put_if_changed(current, &mut out, &pending_rel, p)?;
        } else if current.exists(&pending_rel) {
            removed.push(pending_rel.clone());
        }
        // The record of the rotation (old, new) lives from start to finish.
        let record_rel = t.record();
        match (after, &new) {
            (RotationStage::Started | RotationStage::Reissued, Some(n)) => {
                let record = format!("{}{}", old.pem(t), n.pem(t));
                put_if_changed(current, &mut out, &record_rel, record.as_bytes())?;
            }
            _ if current.exists(&record_rel) => removed.push(record_rel.clone()),
            _ => {}
        }
        synth.insert(
            trust_path.clone(),
            trust_pem.as_bytes().to_vec(),
            MODE_PUBLIC,
        )?;
        synth.insert(key_rel.clone(), key_bytes.to_vec(), MODE_SECRET)?;
        if t == RotationTarget::Ca {
            kubeconfig_trust = Some(trust_pem.clone());
            // kube-controller-manager signs with the signing certificate alone.
            let signer_pem = trust[0].pem(t);
            let rel = signer_rel();
            if current.exists(&rel) || new.is_some() {
                if !current.exists(&rel) && trust.len() > 1 {
                    warnings.push(format!(
                        "{} written: point kube-controller-manager's --cluster-signing-cert-file at it before it reads the two CAs in ca.crt (its CSR signer refuses a file of two certificates): docs/rotation.md, \"kube-controller-manager\"",
                        shown(spec, &rel).display()
                    ));
                }
                put_if_changed(current, &mut out, &rel, signer_pem.as_bytes())?;
            }
        }

        // Leaves: after reissue, every one must be the new CA's; finish refuses while one
        // is still the old CA's.
        let mut reissue = Vec::new();
        if t.ca_id().is_some() {
            let mut still_old = Vec::new();
            for o in owned(spec, current, t) {
                let (name, rel, target) = match &o {
                    Owned::Leaf(id, rel) => (id.name().to_owned(), rel, RenewTarget::Cert(*id)),
                    Owned::Kubeconfig(k, rel) => {
                        (k.file_name().to_owned(), rel, RenewTarget::Kubeconfig(*k))
                    }
                };
                let path = shown(spec, rel);
                let (cert, outside) = match &o {
                    Owned::Leaf(..) => (
                        Some(crate::tree::parse_cert(&path, &current.read(rel, &path)?)?),
                        None,
                    ),
                    Owned::Kubeconfig(..) => {
                        let v = kubeconfig_view(spec, current, rel)?;
                        if let (None, Some(f), Some(why)) =
                            (&v.client, &v.client_file, &v.client_unreadable)
                            && after == RotationStage::Idle
                            && new.is_some()
                        {
                            still_old.push(format!(
                                "{} (client certificate {f} cannot be read: {why})",
                                path.display()
                            ));
                        }
                        (v.client, v.client_file)
                    }
                };
                let Some(cert) = cert else { continue };
                let by_new = new.as_ref().is_some_and(|n| {
                    n.cert
                        .as_ref()
                        .is_some_and(|c| cert.issuer_der() == c.subject_der())
                        && cert.verify_signature(&n.spki).is_ok()
                });
                match after {
                    RotationStage::Reissued if !by_new => {
                        if let Some(f) = outside {
                            warnings.push(format!(
                                "{}: its client certificate is {f}, outside the tree: kubepki does not reissue it; it stays valid while the old CA is trusted, and must be signed by the new CA before finish (docs/rotation.md, \"Kubelets\")",
                                path.display()
                            ));
                        } else {
                            reissue.push((name, target));
                        }
                    }
                    RotationStage::Idle if new.is_some() && !by_new => {
                        still_old.push(match outside {
                            Some(f) => format!("{} (client certificate {f})", path.display()),
                            None => path.display().to_string(),
                        });
                    }
                    _ => {}
                }
            }
            if !still_old.is_empty() {
                return Err(file_err(
                    shown(spec, &trust_path),
                    format!(
                        "finish would lock out what the old CA signed: {} {} still signed by it; run phase reissue (for a kubelet's own certificate: a new kubelet.conf, docs/rotation.md)",
                        still_old.join(", "),
                        if still_old.len() == 1 { "is" } else { "are" }
                    ),
                ));
            }
            if !reissue.is_empty() {
                // With an algorithm given, leaves take init's (certificates: the main one;
                // kubeconfigs: the secondary one); else the new CA's when it changed, else
                // each keeps its own.
                let changed = || {
                    let o = kubepki_keys::public_key_algorithm(&old.spki).ok()?;
                    let n = kubepki_keys::public_key_algorithm(&new.as_ref()?.spki).ok()?;
                    (o != n).then_some(n)
                };
                let algs = match opts.algorithm {
                    Some(_) => (Some(plan.algorithm), Some(plan.secondary_algorithm)),
                    None => (changed(), changed()),
                };
                reissue_jobs.push((t, reissue.iter().map(|(_, r)| *r).collect(), algs));
            }
        }
        changes.push(TargetChange {
            target: t,
            before: s.stage,
            after,
            reissued: reissue.into_iter().map(|(n, _)| n).collect(),
        });
    }

    // 3. Reissue: the same identities, new keys, signed by the new CAs (renewal over the tree
    // whose CA files are already the new ones).
    let mut reissued_kubeconfigs = Vec::new();
    for (_, targets, (cert_alg, kc_alg)) in &reissue_jobs {
        let (certs, kcs): (Vec<RenewTarget>, Vec<RenewTarget>) = targets
            .iter()
            .partition(|t| matches!(t, RenewTarget::Cert(_)));
        for (group, alg) in [(certs, *cert_alg), (kcs, *kc_alg)] {
            if group.is_empty() {
                continue;
            }
            let (files, report, w) = renew_in(spec, &synth, &group, alg, now)?;
            warnings.extend(w);
            for r in &report {
                if let RenewStatus::Failed { reason } = &r.status {
                    return Err(file_err(
                        r.files.first().cloned().unwrap_or_default(),
                        format!("cannot be issued again: {reason}"),
                    ));
                }
                if let RenewTarget::Kubeconfig(k) = r.target {
                    reissued_kubeconfigs.push(k.file_name().to_owned());
                }
            }
            for f in files.files() {
                out.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
            }
        }
    }
    // 4. The kubeconfigs not reissued trust what ca.crt now holds.
    if let Some(trust) = &kubeconfig_trust {
        for k in spec.kubeconfig_ids() {
            let rel = k.file_name();
            if !current.exists(rel) || reissued_kubeconfigs.iter().any(|r| r == rel) {
                continue;
            }
            let path = shown(spec, rel);
            let bytes = current.read(rel, &path)?;
            if let Some(text) = crate::kubeconfig_edit::plan_ca(&path, &bytes, trust)? {
                let mode = current.get(rel).map_or(MODE_SECRET, |f| f.mode);
                out.insert(rel, text.as_bytes().to_vec(), mode)?;
            }
        }
    }
    Ok(Rotation {
        phase,
        files: out,
        removed,
        changes,
        warnings,
        written: Vec::new(),
        deleted: Vec::new(),
    })
}

/// Adds `bytes` at `rel` to `out` unless `current` holds exactly them (the mode of the file it
/// replaces is kept; a new file gets the folder writer's).
fn put_if_changed(current: &Tree, out: &mut Tree, rel: &str, bytes: &[u8]) -> Result<(), Error> {
    match current.get(rel) {
        Some(f) if f.bytes.as_slice() == bytes => Ok(()),
        Some(f) => out.insert(rel, bytes.to_vec(), f.mode),
        None => out.insert_file(rel, bytes.to_vec()),
    }
}

/// A new CA (same name, new key) or service-account key for `s`.
fn make_new(
    plan: &Plan,
    s: &State,
    algorithm: Option<KeyAlgorithm>,
    now: OffsetDateTime,
) -> Result<(Member, Zeroizing<Vec<u8>>), Error> {
    // A CA and `sa.key` both take the main algorithm (docs/init.md, "Outputs").
    let alg = match algorithm {
        Some(_) => plan.algorithm,
        None => s.key.key.algorithm(),
    };
    if !crate::kubernetes_takes_key(alg) {
        return Err(crate::error::invalid(
            "encryptionAlgorithm",
            format!("{alg}: {}", crate::KUBERNETES_KEYS_ONLY),
        ));
    }
    let key = PrivateKey::generate(alg)?;
    let key_pem = Zeroizing::new(key.to_pem()?.as_bytes().to_vec());
    match &s.members[0].cert {
        Some(old) => {
            let spec = CaSpec {
                subject: old.subject().clone(),
                window: plan.ca_window(now),
                path_len: None,
                key_id: plan.version.ca_key_id(),
            };
            let ca = CertificateAuthority::create_root(&spec, key)?;
            let cert = ca.certificate().clone();
            Ok((
                Member {
                    der: cert.to_der().to_vec(),
                    spki: cert.public_key_der().to_vec(),
                    cert: Some(cert),
                },
                key_pem,
            ))
        }
        None => {
            let spki = key.public_key_der().to_vec();
            Ok((
                Member {
                    der: spki.clone(),
                    spki,
                    cert: None,
                },
                key_pem,
            ))
        }
    }
}

/// The new CA of the other node's rotation, for this node's `start`.
fn take_new(
    spec: &ClusterSpec,
    s: &State,
    src: &State,
) -> Result<(Member, Zeroizing<Vec<u8>>), Error> {
    let t = s.target;
    let Some((old, new)) = src.old_new() else {
        return Err(file_err(
            shown(spec, &t.trust_file()),
            format!(
                "--from-cert-dir: {t} is not being rotated there (stage {}); run start there first",
                src.stage
            ),
        ));
    };
    if !old.same(&s.members[0]) {
        return Err(file_err(
            shown(spec, &t.trust_file()),
            format!(
                "--from-cert-dir: {t}'s old CA there ({}) is not this node's ({}); both nodes must share their CAs",
                old.fingerprint(),
                s.members[0].fingerprint()
            ),
        ));
    }
    let key = match src.stage {
        RotationStage::Started => src.pending.as_ref().map(|p| p.bytes.clone()),
        _ => Some(src.key.bytes.clone()),
    };
    let key = key.ok_or_else(|| {
        missing(
            shown(spec, &t.pending_key()),
            "--from-cert-dir: the new key is not there",
        )
    })?;
    Ok((new.clone(), key))
}

/// Both nodes rotate `s.target` to the same CAs.
fn check_same_rotation(
    spec: &ClusterSpec,
    opts: &RotateOptions,
    s: &State,
    src: &State,
    old: &Member,
    new: Option<&Member>,
    phase: RotationPhase,
) -> Result<(), Error> {
    let t = s.target;
    let src_pair = match src.old_new() {
        Some((o, n)) => (Some(o), Some(n)),
        None => (None, src.members.first()),
    };
    // The other node's new CA (its only one once it finished) is this node's new one (its only
    // one, once this node finished), and its old one, while it has one, is this node's old.
    let consistent = match new {
        Some(n) => src_pair.1.is_some_and(|m| m.same(n)) && src_pair.0.is_none_or(|o| o.same(old)),
        None => src_pair.1.is_some_and(|m| m.same(old)),
    };
    if consistent {
        return Ok(());
    }
    let dir = opts
        .from_cert_dir
        .as_deref()
        .unwrap_or_else(|| Path::new("--from-cert-dir"));
    Err(file_err(
        shown(spec, &t.trust_file()),
        format!(
            "{phase} {t}: this node's rotation (old {}, new {}) is not the one in {} (stage {}, CAs {}); every node must rotate to the same CA: run start here with --from-cert-dir of the node that started first",
            old.fingerprint(),
            new.map_or("none".to_owned(), Member::fingerprint),
            dir.display(),
            src.stage,
            src.members
                .iter()
                .map(Member::fingerprint)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// The spec whose certificate folder is the other node's.
fn from_spec(spec: &ClusterSpec, opts: &RotateOptions) -> ClusterSpec {
    let mut s = spec.clone();
    if let Some(d) = &opts.from_cert_dir {
        s.cert_dir = d.clone();
        s.kubeconfig_dir = d.clone();
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Folders.

/// Every file of `spec`'s tree that exists under its folders (certificates, keys, `sa.*`,
/// waiting keys, kubeconfigs), read by the caller holding a lock.
pub(crate) fn read_tree(spec: &ClusterSpec) -> Tree {
    let pki = Path::new("pki");
    let mut paths: Vec<String> = Vec::new();
    for id in spec.cert_ids() {
        paths.push(id.cert_path(pki).to_string_lossy().into_owned());
        paths.push(id.key_path(pki).to_string_lossy().into_owned());
    }
    paths.push(format!("{PKI_PREFIX}sa.key"));
    paths.push(format!("{PKI_PREFIX}sa.pub"));
    paths.push(signer_rel());
    for t in RotationTarget::ALL {
        paths.push(t.pending_key());
        paths.push(t.record());
    }
    for k in spec.kubeconfig_ids() {
        paths.push(k.file_name().to_owned());
    }
    let mut tree = Tree::read_paths(
        paths
            .into_iter()
            .map(|rel| {
                let abs = shown(spec, &rel);
                (rel, abs)
            })
            .collect(),
    );
    // The rotation's own files are never read through a link (a `ca-signer.crt` linked to
    // `ca.crt` would turn into the bundle kube-controller-manager refuses).
    let own = RotationTarget::ALL
        .into_iter()
        .flat_map(|t| [t.pending_key(), t.record()])
        .chain([signer_rel()]);
    for rel in own {
        let abs = shown(spec, &rel);
        if std::fs::symlink_metadata(&abs).is_ok_and(|m| m.file_type().is_symlink()) {
            tree.mark_unreadable(
                &rel,
                "is a symbolic link; kubepki reads and writes the rotation's files only as regular files",
            );
        }
    }
    tree
}

/// Runs `phase` of a CA rotation on `spec`'s folders at `now`: under the tree's exclusive lock
/// (completing an interrupted batch first), [`rotate_in`] over the files read from them (and
/// from [`RotateOptions::from_cert_dir`], under its shared lock), then one crash-safe batch
/// (new folders 0700, replaced files keep their owner and mode), then the waiting keys the
/// phase has used are removed. A phase run again finds nothing to do and writes nothing.
pub fn rotate(
    spec: &ClusterSpec,
    phase: RotationPhase,
    opts: &RotateOptions,
    now: OffsetDateTime,
) -> Result<Rotation, Error> {
    if let Some(d) = &opts.from_cert_dir
        && let (Ok(a), Ok(b)) = (d.canonicalize(), spec.cert_dir.canonicalize())
        && a == b
    {
        return Err(crate::error::invalid(
            "fromCertDir",
            format!(
                "{} is this node's own certificate folder; give the folder of the node that ran the phase first",
                d.display()
            ),
        ));
    }
    let (_lock, _recovered) = crate::tree::lock_for_writing(spec)?;
    let current = read_tree(spec);
    let from = match &opts.from_cert_dir {
        Some(_) => {
            let fs = from_spec(spec, opts);
            let _shared = crate::tree::lock_for_reading(&fs)?;
            Some(read_tree(&fs))
        }
        None => None,
    };
    let mut rotation = rotate_in(spec, &current, from.as_ref(), phase, opts, now)?;
    if !rotation.files.is_empty() {
        let batch = FileBatch::overwriting()
            .keeping_owner_and_mode()
            .with_dir_mode(0o700);
        rotation.written = crate::init::commit_files(
            &spec.cert_dir,
            &spec.kubeconfig_dir,
            &rotation.files,
            batch,
        )?;
        // The waiting keys' folder is the owner's alone, even if it was there before.
        let dir = spec.cert_dir.join(ROTATION_DIR);
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| file_err(&dir, Reason::io("cannot make it 0700", e)))?;
        }
    }
    let dir = spec.cert_dir.join(ROTATION_DIR);
    if !rotation.removed.is_empty()
        && std::fs::symlink_metadata(&dir).is_ok_and(|m| !m.file_type().is_dir())
    {
        return Err(file_err(
            &dir,
            "is not a folder (a symbolic link?); kubepki removes nothing through links",
        ));
    }
    for rel in &rotation.removed {
        let path = shown(spec, rel);
        match std::fs::remove_file(&path) {
            Ok(()) => rotation.deleted.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_err(&path, Reason::io("cannot remove it", e))),
        }
    }
    if !rotation.removed.is_empty() {
        let sync = |d: &Path| {
            std::fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|e| file_err(d, Reason::io("cannot flush the folder", e)))
        };
        if dir.exists() {
            sync(&dir)?;
        }
        // An empty folder goes too (one holding anything else stays).
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::DirectoryNotEmpty
                ) => {}
            Err(e) => return Err(file_err(&dir, Reason::io("cannot remove it", e))),
        }
        sync(&spec.cert_dir)?;
    }
    Ok(rotation)
}
