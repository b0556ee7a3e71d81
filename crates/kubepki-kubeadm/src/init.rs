//! `init` in three steps (docs/architecture.md, "Decide, apply, sinks"): [`decide`] looks at
//! the current tree and decides per item whether to reuse or create it (`docs/compatibility.md` §4); [`apply`]
//! generates every new key in parallel and signs, returning the new files as a [`Tree`]; a sink
//! writes them: the crash-safe folder batch ([`write_folder`], [`init_tree`]) or an export.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use kubepki_ca::{
    CaExpiry, CaSigningKey, CaSpec, Certificate, CertificateAuthority, IssueSpec, rfc3339,
};
use kubepki_csr::{ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, PrivateKey, generate_many};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err, missing};
use crate::kubeconfig::Kubeconfig;
use crate::memtree::{PKI_PREFIX, Tree, cert_rel, kubeconfig_rel};
use crate::plan::{CertId, CertSpec, KubeconfigId, KubeconfigSpec, Plan};
use crate::rules::{self, Rule, RuleFailure};

/// Which parts of the tree to make: everything (`init`) or single phases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Certificates (CAs and leaves).
    pub certs: Vec<CertId>,
    /// `sa.key` / `sa.pub`.
    pub sa: bool,
    /// Kubeconfig files.
    pub kubeconfigs: Vec<KubeconfigId>,
}

impl Selection {
    /// The whole tree: every certificate, the service-account keys and every kubeconfig.
    pub fn all() -> Self {
        Selection {
            certs: CertId::ALL.to_vec(),
            sa: true,
            kubeconfigs: KubeconfigId::ALL.to_vec(),
        }
    }

    /// What `init phase certs NAME` makes: `all` (every certificate and the service-account
    /// keys), `sa`, or one certificate by kubeadm's name (`apiserver`, `etcd-ca`, `etcd/ca`).
    ///
    /// ```
    /// use kubepki_kubeadm::{CertId, Selection};
    /// assert_eq!(Selection::certs_phase("etcd-ca")?.certs, [CertId::EtcdCa]);
    /// assert!(Selection::certs_phase("sa")?.sa);
    /// assert!(Selection::certs_phase("admin.conf").is_err());
    /// # Ok::<(), kubepki_kubeadm::Error>(())
    /// ```
    pub fn certs_phase(name: &str) -> Result<Self, Error> {
        match name {
            "all" => Ok(Selection::all_certs()),
            "sa" => Ok(Selection {
                sa: true,
                ..Selection::none()
            }),
            _ => CertId::from_name(name)
                .map(|id| Selection {
                    certs: vec![id],
                    ..Selection::none()
                })
                .map_err(|e| also_valid(e, "all, sa")),
        }
    }

    /// What `init phase kubeconfig NAME` makes: `all`, or one kubeconfig by phase or file name
    /// (`admin`, `admin.conf`).
    pub fn kubeconfig_phase(name: &str) -> Result<Self, Error> {
        if name == "all" {
            return Ok(Selection::all_kubeconfigs());
        }
        KubeconfigId::from_name(name)
            .map(|id| Selection {
                kubeconfigs: vec![id],
                ..Selection::none()
            })
            .map_err(|e| also_valid(e, "all"))
    }

    /// Every certificate and the service-account keys (`init phase certs all`).
    pub fn all_certs() -> Self {
        Selection {
            kubeconfigs: Vec::new(),
            ..Selection::all()
        }
    }

    /// Every kubeconfig (`init phase kubeconfig all`).
    pub fn all_kubeconfigs() -> Self {
        Selection {
            certs: Vec::new(),
            sa: false,
            kubeconfigs: KubeconfigId::ALL.to_vec(),
        }
    }

    /// Nothing; add to it with the public fields.
    pub fn none() -> Self {
        Selection {
            certs: Vec::new(),
            sa: false,
            kubeconfigs: Vec::new(),
        }
    }
}

/// What happens to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Made by this run.
    Create,
    /// Already on disk and valid; left untouched.
    Reuse,
}

/// What kind of item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitItemKind {
    /// A CA certificate and key.
    CertificateAuthority,
    /// A leaf certificate and key.
    Certificate,
    /// `sa.key` / `sa.pub`.
    ServiceAccountKeys,
    /// A kubeconfig file.
    Kubeconfig,
}

/// An unknown-name error that also lists the phase's own names (`all`, `sa`).
fn also_valid(e: Error, extra: &str) -> Error {
    match e {
        Error::UnknownName { kind, given, valid } => Error::UnknownName {
            kind,
            given,
            valid: format!("{valid}, {extra}"),
        },
        other => other,
    }
}

/// One entry of a [`InitReport`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitItem {
    /// kubeadm's name: `ca`, `etcd-server`, `sa`, `admin.conf`.
    pub name: String,
    /// What it is.
    pub kind: InitItemKind,
    /// Create or reuse.
    pub action: Action,
    /// A CA whose key is absent (external CA mode).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// The files.
    pub files: Vec<PathBuf>,
    /// Subject (shown and serialized as `O = a, CN = b`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_subject"
    )]
    pub subject: Option<Subject>,
    /// The signing CA's name (`ca`, `etcd-ca`, ...); absent for CAs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// DNS SANs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// IP SANs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddr>,
    /// NotBefore (serialized as RFC 3339).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// NotAfter (serialized as RFC 3339).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// Key algorithm of a new key, or of the existing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<String>,
    /// The server URL (kubeconfigs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

fn serialize_subject<S: serde::Serializer>(v: &Option<Subject>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(subject) => s.collect_str(subject),
        None => s.serialize_none(),
    }
}

fn serialize_time<S: serde::Serializer>(
    v: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

impl InitItem {
    fn new(name: &str, kind: InitItemKind, action: Action, files: Vec<PathBuf>) -> InitItem {
        InitItem {
            name: name.into(),
            kind,
            action,
            external: false,
            files,
            subject: None,
            issuer: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            not_before: None,
            not_after: None,
            key_algorithm: None,
            server: None,
        }
    }
}

/// What a run did, or would do (dry run).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Items in kubeadm's order.
    pub items: Vec<InitItem>,
    /// Files written by this run (empty for a dry run or when everything was reused).
    pub written: Vec<PathBuf>,
    /// Files that an earlier kubepki, killed while writing, had left half moved into place and
    /// that this run completed before deciding anything (see `docs/architecture.md`).
    pub recovered: Vec<PathBuf>,
    /// Warnings (kubeadm warns about the same things).
    pub warnings: Vec<String>,
    /// What the operator still has to do on the cluster (RBAC that kubeadm creates online).
    pub notes: Vec<String>,
}

impl InitReport {
    /// Whether the run changed nothing on disk.
    pub fn unchanged(&self) -> bool {
        self.written.is_empty() && self.recovered.is_empty()
    }
}

enum CaState {
    /// On disk (with or without key).
    Loaded(Box<CertificateAuthority>),
    /// To be created by this run.
    New,
}

enum LeafChoice {
    Reuse(Box<InitItem>),
    Create,
    /// External-CA mode: the key and its CSR (`certs generate-csr`) are there, the certificate
    /// is not yet.
    AwaitingSignature(PathBuf),
}

/// What [`decide`] found: per selected item, reuse or create (a refusal is the error
/// [`decide`] returns, naming every file and rule at once). It holds the loaded CAs (and their
/// keys) that [`apply`] signs with; `Debug` shows the items only.
pub struct Decision {
    items: Vec<(InitItem, Option<Todo>)>,
    cas: BTreeMap<CertId, CaState>,
    /// What new kubeconfigs trust: every certificate of `ca.crt` (two during a CA rotation:
    /// docs/rotation.md); empty when the cluster CA is made by this run.
    ca_trust: Vec<Certificate>,
    warnings: Vec<String>,
    notes: Vec<String>,
    now: OffsetDateTime,
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field(
                "items",
                &self.items.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            )
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Decision {
    /// The items in kubeadm's order, each with its action (`Create` items carry the planned
    /// subject, SANs and validity window).
    pub fn items(&self) -> impl Iterator<Item = &InitItem> {
        self.items.iter().map(|(i, _)| i)
    }

    /// The item named `name` (`ca`, `apiserver`, `sa`, `admin.conf`).
    pub fn item(&self, name: &str) -> Option<&InitItem> {
        self.items().find(|i| i.name == name)
    }

    /// Warnings so far (the plan's, and kubeconfigs whose server differs).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether every selected item is reused ([`apply`] would make nothing).
    pub fn creates_nothing(&self) -> bool {
        self.items.iter().all(|(_, t)| t.is_none())
    }

    /// The decision as a dry-run [`InitReport`] (what `--dry-run` prints).
    pub fn into_report(self) -> InitReport {
        InitReport {
            dry_run: true,
            items: self.items.into_iter().map(|(i, _)| i).collect(),
            written: Vec::new(),
            recovered: Vec::new(),
            warnings: self.warnings,
            notes: self.notes,
        }
    }
}

/// What [`apply`] made: the items (with the validity of what was issued), and the new and
/// changed files as a [`Tree`], for a sink: the folder writer ([`write_folder`], what [`init_tree`]
/// uses) or an export ([`Tree::to_tar`], [`Tree::to_json`], [`Tree::to_capi_secrets`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Applied {
    /// Items in kubeadm's order.
    pub items: Vec<InitItem>,
    /// The files this run made, in the order the folder writer stages them.
    pub files: Tree,
    /// Warnings (kubeadm warns about the same things).
    pub warnings: Vec<String>,
    /// What the operator still has to do on the cluster (RBAC that kubeadm creates online).
    pub notes: Vec<String>,
    /// Per item, the tree paths of its files.
    paths: Vec<Vec<String>>,
}

impl Applied {
    /// The whole selected tree: every item's files, the new ones from this run and the reused
    /// ones from `current` (the tree [`decide`] was given), in kubeadm's order. This is what an
    /// export holds, so that it is complete on its own.
    pub fn full_tree(&self, current: &Tree) -> Tree {
        let mut out = Tree::new();
        for path in self.paths.iter().flatten() {
            if let Some(f) = self.files.get(path).or_else(|| current.get(path))
                && out.get(path).is_none()
            {
                out.push_file(f.clone());
            }
        }
        out
    }

    /// The report of a run that wrote `written` (after recovery completed `recovered`).
    pub fn into_report(self, written: Vec<PathBuf>, recovered: Vec<PathBuf>) -> InitReport {
        InitReport {
            dry_run: false,
            items: self.items,
            written,
            recovered,
            warnings: self.warnings,
            notes: self.notes,
        }
    }
}

/// The tree paths of `item`'s files (certificate-folder files under `pki/`).
fn item_paths(plan: &Plan, item: &InitItem) -> Vec<String> {
    item.files
        .iter()
        .filter_map(|f| match item.kind {
            InitItemKind::Kubeconfig => kubeconfig_rel(plan, f),
            _ => cert_rel(plan, f),
        })
        .collect()
}

/// Runs `init` (or the phases in `selection`) for `plan` at time `now` on the folders of the
/// plan: [`decide`] against the tree read from them, then (unless `dry_run`) [`apply`] and the
/// crash-safe folder writer, all under the tree's lock (docs/architecture.md, "Decide, apply,
/// sinks"). With `dry_run`, decides everything and returns the report without generating a key
/// or writing a file.
///
/// Selected items the plan does not have (the etcd certificates with external etcd,
/// `super-admin.conf` before 1.29) are skipped; see [`Plan::cert`] and [`Plan::kubeconfig`].
pub fn init_tree(
    plan: &Plan,
    selection: &Selection,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<InitReport, Error> {
    init_tree_with_ca_keys(plan, selection, &[], now, dry_run)
}

/// [`init_tree`] with CA keys held outside the folders (a token, a KMS: [`Tree::set_ca_key`]): the
/// CAs in `ca_keys` sign through them, a missing CA certificate is made with its held key, and
/// no key file is written for them (a key file for such a CA is refused).
pub fn init_tree_with_ca_keys(
    plan: &Plan,
    selection: &Selection,
    ca_keys: &[crate::memtree::HeldCaKey],
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<InitReport, Error> {
    // Readers (a dry run) report an unfinished batch; writers complete it first.
    let (_lock, recovered) = if dry_run {
        (crate::tree::lock_for_reading(&plan.spec)?, Vec::new())
    } else {
        crate::tree::lock_for_writing(&plan.spec)?
    };
    let mut current = Tree::read_unlocked(plan);
    for (id, key) in ca_keys {
        current.set_ca_key(*id, key.clone())?;
    }
    let decision = decide(plan, selection, &current, now)?;
    if dry_run {
        return Ok(decision.into_report());
    }
    let applied = apply(plan, decision)?;
    let written = stage_and_commit(plan, &applied.files)?;
    Ok(applied.into_report(written, recovered))
}

/// Decides, for `plan` and the phases in `selection` at time `now`, what to do with every item
/// given the `current` tree ([`Tree::read_folder`], a tree kept in memory, or
/// [`Tree::new`] for nothing): reuse what meets every rule of `rules.rs` (the rules `verify`
/// checks), create what is missing, and refuse, in one error naming every file and rule, what
/// exists but cannot be reused (docs/init.md, "Existing files"). It generates no key, signs
/// nothing and touches no file: `--dry-run` is this step alone.
///
/// Files are named in errors and items by where they are (or would be) on disk for `plan`.
pub fn decide(
    plan: &Plan,
    selection: &Selection,
    current: &Tree,
    now: OffsetDateTime,
) -> Result<Decision, Error> {
    let cur = Current {
        plan,
        tree: current,
    };
    let mut warnings = plan.warnings.clone();
    let selection = &Selection {
        certs: selection
            .certs
            .iter()
            .copied()
            .filter(|id| plan.cert(*id).is_some())
            .collect(),
        sa: selection.sa,
        kubeconfigs: selection
            .kubeconfigs
            .iter()
            .copied()
            .filter(|id| plan.kubeconfig(*id).is_some())
            .collect(),
    };
    let dir = &plan.cert_dir;

    // 1. The CAs that are selected or sign something selected.
    let mut needed: Vec<CertId> = Vec::new();
    for id in &selection.certs {
        let ca = id.issuer().unwrap_or(*id);
        if !needed.contains(&ca) {
            needed.push(ca);
        }
    }
    if !selection.kubeconfigs.is_empty() && !needed.contains(&CertId::Ca) {
        needed.push(CertId::Ca);
    }
    let mut cas: BTreeMap<CertId, CaState> = BTreeMap::new();
    let mut problems: Vec<Error> = Vec::new();
    // A CA that cannot be used is one problem; what it signs is then not looked at.
    let mut unusable_cas: Vec<CertId> = Vec::new();
    for ca in needed {
        let state = match load_ca(&cur, ca) {
            Ok(state) => state,
            Err(e) => {
                problems.push(e);
                unusable_cas.push(ca);
                continue;
            }
        };
        let state = match state {
            Some(loaded) => {
                // An expired CA signs nothing a client accepts, and kubepki cannot renew a CA
                // in place (docs/init.md, "Existing files").
                if let Err(e) = rules::validity(loaded.certificate(), now) {
                    problems.push(file_err(
                        ca.cert_path(dir),
                        format!(
                            "cannot be used: {e}; a CA cannot be renewed in place (every certificate it signed changes with it): make a new tree"
                        ),
                    ));
                }
                let kp = ca.key_path(dir);
                if loaded.can_sign()
                    && let Err(m) = cur.secret_mode(&kp)
                {
                    problems.push(file_err(&kp, format!("cannot be used: mode: {m}")));
                }
                CaState::Loaded(Box::new(loaded))
            }
            None if selection.certs.contains(&ca) => CaState::New,
            None => {
                problems.push(missing(
                    ca.cert_path(dir),
                    format!(
                        "missing; create the CA first (`kubepki init phase certs {}`)",
                        ca.name()
                    ),
                ));
                unusable_cas.push(ca);
                continue;
            }
        };
        cas.insert(ca, state);
    }
    // kubeadm's CAs have distinct keys (`verify`: "distinct keys"): a held key that is another
    // CA's, held or in its certificate, is refused before anything is made with it.
    for (msg, unusable) in shared_held_keys(&cur) {
        problems.push(msg);
        unusable_cas.extend(unusable);
    }
    let external_cas: Vec<String> = cas
        .iter()
        .filter_map(|(id, s)| match s {
            CaState::Loaded(ca) if !ca.can_sign() => Some(display(&id.cert_path(dir))),
            _ => None,
        })
        .collect();

    // 2. Decide every item; every existing file that cannot be reused is collected.
    let mut missing: Vec<String> = Vec::new();
    let mut awaiting: Vec<PathBuf> = Vec::new();
    let mut items: Vec<(InitItem, Option<Todo>)> = Vec::new();
    for spec in plan
        .certs
        .iter()
        .filter(|c| selection.certs.contains(&c.id))
    {
        if unusable_cas.contains(&spec.id.issuer().unwrap_or(spec.id)) {
            continue;
        }
        if spec.id.is_ca() {
            match cas.get(&spec.id) {
                Some(CaState::Loaded(ca)) => items.push((
                    cert_item(spec, Action::Reuse, dir, ca.certificate(), !ca.can_sign()),
                    None,
                )),
                _ => {
                    let window = plan.ca_window(now);
                    let mut item = planned_item(spec, dir, plan.algorithm);
                    item.not_before = Some(window.not_before);
                    item.not_after = Some(window.not_after);
                    // A key held outside the tree: the certificate is made with it, no key file.
                    let held = current.ca_key(spec.id).cloned();
                    if let Some(k) = &held {
                        item.files.retain(|f| *f != spec.id.key_path(dir));
                        item.key_algorithm =
                            kubepki_keys::describe_public_key(k.public_key_der()).ok();
                    }
                    items.push((item, Some(Todo::Ca(spec.clone(), held))));
                }
            }
            continue;
        }
        let Some(issuer) = spec.id.issuer() else {
            continue;
        };
        let ca_state = cas.get(&issuer);
        let decision = match decide_leaf(&cur, spec, ca_state, now) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match decision {
            LeafChoice::Reuse(item) => items.push((*item, None)),
            LeafChoice::AwaitingSignature(csr) => awaiting.push(csr),
            LeafChoice::Create => match ca_state {
                Some(CaState::Loaded(ca)) if !ca.can_sign() => missing.push(format!(
                    "{} and {} (signed by {})",
                    display(&spec.id.cert_path(dir)),
                    display(&spec.id.key_path(dir)),
                    display(&issuer.cert_path(dir))
                )),
                _ => {
                    let mut item = planned_item(spec, dir, plan.algorithm);
                    let ca_nb = match ca_state {
                        Some(CaState::Loaded(ca)) => ca.certificate().not_before(),
                        _ => plan.ca_window(now).not_before,
                    };
                    let w = plan.leaf_window(now, ca_nb);
                    item.not_before = Some(w.not_before);
                    item.not_after = Some(w.not_after);
                    items.push((item, Some(Todo::Leaf(spec.clone()))));
                }
            },
        }
    }
    if selection.sa {
        // sa.key/sa.pub need no CA: they are made even in external-CA mode (kubeadm wants them
        // supplied there; making them is what the external-CA flow in docs/init.md relies on).
        match decide_sa(&cur) {
            Err(e) => problems.push(e),
            Ok(SaState::Complete(item)) => items.push((*item, None)),
            Ok(SaState::NeedPub(key)) => {
                let item = sa_item(plan, Action::Create, Some(key.algorithm()));
                items.push((item, Some(Todo::SaPub(Box::new(key)))));
            }
            Ok(SaState::Missing) => items.push((
                sa_item(plan, Action::Create, Some(plan.algorithm)),
                Some(Todo::Sa),
            )),
        }
    }
    let ca_for_kubeconfigs: Option<&CertificateAuthority> = match cas.get(&CertId::Ca) {
        Some(CaState::Loaded(ca)) => Some(ca),
        _ => None,
    };
    let ca_cert_for_kubeconfigs = ca_for_kubeconfigs.map(|ca| ca.certificate());
    for spec in plan
        .kubeconfigs
        .iter()
        .filter(|k| selection.kubeconfigs.contains(&k.id))
        .filter(|_| !unusable_cas.contains(&CertId::Ca))
    {
        let path = plan.kubeconfig_path(spec.id);
        let external_ca =
            matches!(cas.get(&CertId::Ca), Some(CaState::Loaded(ca)) if !ca.can_sign());
        if cur.exists(&path) {
            let csr = crate::external::kubeconfig_csr_path(&plan.kubeconfig_dir, spec.id);
            match has_client_cert(&cur, &path) {
                Ok(false) if external_ca && cur.exists(&csr) => {
                    awaiting.push(csr);
                    continue;
                }
                Err(e) => {
                    problems.push(e);
                    continue;
                }
                _ => {}
            }
            match check_kubeconfig(&cur, &path, spec, ca_for_kubeconfigs, now, &mut warnings) {
                Ok(item) => items.push((item, None)),
                Err(e) => problems.push(e),
            }
            continue;
        }
        if external_ca {
            missing.push(format!(
                "{} (client certificate signed by {})",
                display(&path),
                display(&CertId::Ca.cert_path(dir))
            ));
            continue;
        }
        let ca_nb = ca_cert_for_kubeconfigs
            .map(|c| c.not_before())
            .unwrap_or_else(|| plan.ca_window(now).not_before);
        let w = plan.leaf_window(now, ca_nb);
        let mut item = InitItem::new(
            spec.id.file_name(),
            InitItemKind::Kubeconfig,
            Action::Create,
            vec![path],
        );
        item.subject = Some(spec.subject.clone());
        item.issuer = Some(CertId::Ca.name().into());
        item.not_before = Some(w.not_before);
        item.not_after = Some(w.not_after);
        item.key_algorithm = Some(plan.secondary_algorithm.name().into());
        item.server = Some(spec.server.clone());
        items.push((item, Some(Todo::Kubeconfig(spec.clone()))));
    }
    if !awaiting.is_empty() {
        problems.push(Error::AwaitingSignature {
            cas: external_cas.clone(),
            csrs: awaiting,
            missing: std::mem::take(&mut missing),
        });
    }
    if !missing.is_empty() {
        problems.push(Error::ExternalCaIncomplete {
            cas: external_cas,
            missing,
        });
    }
    // Everything that stands in the way, in one error (one run reports it all).
    if !problems.is_empty() {
        return Err(Error::unusable(problems));
    }

    let notes = notes(plan, selection);
    let ca_trust = match cas.get(&CertId::Ca) {
        Some(CaState::Loaded(_)) => {
            let p = CertId::Ca.cert_path(dir);
            crate::rotate::tree_trust(current, &p)?
        }
        _ => Vec::new(),
    };
    Ok(Decision {
        items,
        cas,
        ca_trust,
        warnings,
        notes,
        now,
    })
}

/// Makes what `decision` decided to create: every new key at once (in parallel,
/// [`generate_many`]), then the certificates and kubeconfigs signed by the CAs the decision
/// loaded or this step makes. Returns the new and changed files as a [`Tree`]; nothing is
/// written (a sink does that).
pub fn apply(plan: &Plan, decision: Decision) -> Result<Applied, Error> {
    let Decision {
        mut items,
        mut cas,
        ca_trust,
        mut warnings,
        notes,
        now,
    } = decision;
    let dir = &plan.cert_dir;
    // 3. Every new key at once, on every core.
    let algs: Vec<KeyAlgorithm> = items
        .iter()
        .filter_map(|(_, t)| match t {
            Some(Todo::Ca(_, None) | Todo::Leaf(_) | Todo::Sa) => Some(plan.algorithm),
            Some(Todo::Ca(_, Some(_))) => None,
            Some(Todo::Kubeconfig(_)) => Some(plan.secondary_algorithm),
            Some(Todo::SaPub(_)) | None => None,
        })
        .collect();
    let mut keys = generate_many(&algs)?.into_iter();
    let mut next_key = || keys.next().ok_or(kubepki_keys::Error::Generation);

    // 4. Sign and stage.
    let mut files = Tree::new();
    let kubeconfig_paths: Vec<PathBuf> = plan
        .kubeconfigs
        .iter()
        .map(|k| plan.kubeconfig_path(k.id))
        .collect();
    let stage = |files: &mut Tree, path: PathBuf, bytes: &[u8], mode: u32| {
        let rel = if kubeconfig_paths.contains(&path) {
            kubeconfig_rel(plan, &path)
        } else {
            cert_rel(plan, &path)
        };
        let rel = rel
            .ok_or_else(|| file_err(&path, "is outside the certificate and kubeconfig folders"))?;
        files.insert(rel, bytes, mode)
    };
    for (item, todo) in &mut items {
        let Some(todo) = todo.take() else { continue };
        match todo {
            Todo::Ca(spec, held) => {
                let ca_spec = CaSpec {
                    subject: spec.subject.clone(),
                    window: plan.ca_window(now),
                    path_len: None,
                    key_id: plan.version.ca_key_id(),
                };
                let ca = match held {
                    Some(k) => CertificateAuthority::create_root_with_signing_key(&ca_spec, k)?,
                    None => CertificateAuthority::create_root(&ca_spec, next_key()?)?,
                };
                let key_pem = ca.key().map(|k| k.to_pem()).transpose()?;
                stage(
                    &mut files,
                    spec.id.cert_path(dir),
                    ca.certificate().to_pem().as_bytes(),
                    MODE_PUBLIC,
                )?;
                if let Some(k) = key_pem {
                    stage(&mut files, spec.id.key_path(dir), k.as_bytes(), MODE_SECRET)?;
                }
                fill_times(item, ca.certificate());
                cas.insert(spec.id, CaState::Loaded(Box::new(ca)));
            }
            Todo::Leaf(spec) => {
                let key = next_key()?;
                let Some(CaState::Loaded(ca)) = spec.id.issuer().and_then(|i| cas.get(&i)) else {
                    return Err(Error::Invalid {
                        field: spec.id.name().into(),
                        reason: "its CA is not available".into(),
                    });
                };
                let cert = issue(
                    plan,
                    ca,
                    &key,
                    &spec.subject,
                    &spec.subject_alt_names,
                    &spec.ext_key_usage,
                    now,
                    spec.id.name(),
                    &mut warnings,
                )?;
                stage(
                    &mut files,
                    spec.id.cert_path(dir),
                    cert.to_pem().as_bytes(),
                    MODE_PUBLIC,
                )?;
                stage(
                    &mut files,
                    spec.id.key_path(dir),
                    key.to_pem()?.as_bytes(),
                    MODE_SECRET,
                )?;
                fill_times(item, &cert);
            }
            Todo::Sa => {
                let key = next_key()?;
                stage(
                    &mut files,
                    plan.sa_key_path(),
                    key.to_pem()?.as_bytes(),
                    MODE_SECRET,
                )?;
                stage(
                    &mut files,
                    plan.sa_pub_path(),
                    key.public_key_pem().as_bytes(),
                    MODE_SECRET,
                )?;
            }
            Todo::SaPub(key) => {
                stage(
                    &mut files,
                    plan.sa_pub_path(),
                    key.public_key_pem().as_bytes(),
                    MODE_SECRET,
                )?;
            }
            Todo::Kubeconfig(spec) => {
                let key = next_key()?;
                let Some(CaState::Loaded(ca)) = cas.get(&CertId::Ca) else {
                    return Err(Error::Invalid {
                        field: spec.id.file_name().into(),
                        reason: "the cluster CA is not available".into(),
                    });
                };
                let cert = issue(
                    plan,
                    ca,
                    &key,
                    &spec.subject,
                    &SubjectAltNames::default(),
                    &[ExtKeyUsage::ClientAuth],
                    now,
                    spec.id.file_name(),
                    &mut warnings,
                )?;
                let trusted = if ca_trust.is_empty() {
                    std::slice::from_ref(ca.certificate())
                } else {
                    ca_trust.as_slice()
                };
                let yaml = kubeconfig_yaml(&spec, trusted, &cert, &key)?;
                stage(
                    &mut files,
                    plan.kubeconfig_path(spec.id),
                    yaml.as_bytes(),
                    MODE_SECRET,
                )?;
                fill_times(item, &cert);
            }
        }
    }
    let items: Vec<InitItem> = items.into_iter().map(|(i, _)| i).collect();
    let paths = items.iter().map(|i| item_paths(plan, i)).collect();
    Ok(Applied {
        items,
        files,
        warnings,
        notes,
        paths,
    })
}

/// [`decide`] then [`apply`]: the new files for `plan` given `current`, for a caller that needs
/// no look at the decision in between (an installer keeping its CAs in memory: docs/init.md).
pub fn build(
    plan: &Plan,
    selection: &Selection,
    current: &Tree,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    apply(plan, decide(plan, selection, current, now)?)
}

/// The folder sink: writes `files` under `plan`'s certificate and kubeconfig folders as one
/// crash-safe batch (journal, no-clobber links, modes from the first byte, fsyncs; see
/// docs/architecture.md), holding the tree's exclusive lock and completing an interrupted
/// batch first. Returns the files written.
pub fn write_folder(plan: &Plan, files: &Tree) -> Result<Vec<PathBuf>, Error> {
    let (_lock, _recovered) = crate::tree::lock_for_writing(&plan.spec)?;
    stage_and_commit(plan, files)
}

/// The folder sink for a caller that holds the tree's exclusive lock. Returns the files
/// written, in the tree's order.
///
/// The batch's journals (one per folder, each with its files' digests) let recovery complete
/// the batch in all its folders or drop it whole (docs/architecture.md, "Journals and
/// recovery"). The folders are still staged in the order their files depend on each other —
/// `etcd/` (the etcd CA and what it signs), then the certificate folder, then the kubeconfig
/// folder — so that even a batch recovered in one folder alone (by a command writing only
/// there) leaves a tree whose CAs are all there.
pub(crate) fn stage_and_commit(plan: &Plan, files: &Tree) -> Result<Vec<PathBuf>, Error> {
    commit_with(plan, files, FileBatch::new())
}

/// The folder sink with `batch`'s options (new folders' mode; replacing existing files): the
/// files of `files` staged into it in the writer's order, then committed. Returns the files
/// written, in the tree's order.
pub(crate) fn commit_with(
    plan: &Plan,
    files: &Tree,
    batch: FileBatch,
) -> Result<Vec<PathBuf>, Error> {
    commit_files(&plan.cert_dir, &plan.kubeconfig_dir, files, batch)
}

/// [`commit_with`] for the folders `cert_dir` and `kubeconfig_dir`.
pub(crate) fn commit_files(
    cert_dir: &Path,
    kubeconfig_dir: &Path,
    files: &Tree,
    batch: FileBatch,
) -> Result<Vec<PathBuf>, Error> {
    // Every caller holds the tree lock and recovered the tree's folders together
    // (`tree::lock_for_writing`): one flush fewer for a batch over several of them.
    let mut batch = batch.recovered_together();
    let disk_path = |p: &str| crate::memtree::disk_path_in(cert_dir, kubeconfig_dir, p);
    let etcd = format!("{PKI_PREFIX}etcd/");
    let rank = |path: &str| {
        if path.starts_with(&etcd) {
            0
        } else if path.starts_with(PKI_PREFIX) {
            1
        } else {
            2
        }
    };
    let mut order: Vec<_> = files.files().collect();
    order.sort_by_key(|f| rank(&f.path));
    for f in order {
        batch.stage(&disk_path(&f.path), &f.bytes, f.mode)?;
    }
    batch.commit()?;
    Ok(files.files().map(|f| disk_path(&f.path)).collect())
}

/// The current tree as [`decide`] (and the external-CA steps) look at it: files named by their
/// place on disk for the plan.
pub(crate) struct Current<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) tree: &'a Tree,
}

impl Current<'_> {
    /// The tree path of the file at `p` (certificate folder first: it may lie inside the
    /// kubeconfig folder).
    fn rel(&self, p: &Path) -> Option<String> {
        crate::memtree::rel_path(&self.plan.cert_dir, &self.plan.kubeconfig_dir, p)
    }

    /// Whether the tree has a file (readable or not) at `p`.
    pub(crate) fn exists(&self, p: &Path) -> bool {
        self.rel(p).is_some_and(|r| self.tree.exists(&r))
    }

    /// The bytes of the file at `p`.
    pub(crate) fn read(&self, p: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
        let rel = self.rel(p).unwrap_or_default();
        self.tree.read(&rel, p)
    }

    /// Adds `bytes` for the file at `p` to `out` (a tree of new files for the plan's folders).
    pub(crate) fn put(
        &self,
        out: &mut Tree,
        p: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), Error> {
        let rel = self
            .rel(p)
            .ok_or_else(|| file_err(p, "is outside the certificate and kubeconfig folders"))?;
        out.insert(rel, bytes, mode)
    }

    /// The kubeconfig at `p`. In a tree given in memory, a current user or cluster that names
    /// its credentials as files is refused: only what the tree holds is read (a tree read from
    /// the folders follows the references on this host, as kubectl does).
    pub(crate) fn kubeconfig(&self, p: &Path) -> Result<Kubeconfig, Error> {
        let kc = Kubeconfig::from_slice(p, &self.read(p)?)?;
        if !self.tree.is_from_folder() {
            let (cluster, user) = kc.current(p)?;
            let named: Vec<String> = [
                (
                    "certificate-authority",
                    cluster.cluster.certificate_authority.as_deref(),
                ),
                (
                    "client-certificate",
                    user.user.client_certificate.as_deref(),
                ),
                ("client-key", user.user.client_key.as_deref()),
            ]
            .into_iter()
            .filter_map(|(field, v)| crate::kubeconfig::set(v).map(|f| format!("{field} {f}")))
            .collect();
            if !named.is_empty() {
                return Err(file_err(
                    p,
                    format!(
                        "names files ({}); a tree in memory is read for embedded credentials only (certificate-authority-data, client-certificate-data, client-key-data)",
                        named.join(", ")
                    ),
                ));
            }
        }
        Ok(kc)
    }

    pub(crate) fn read_cert(&self, p: &Path) -> Result<Certificate, Error> {
        crate::tree::parse_cert(p, &self.read(p)?)
    }

    pub(crate) fn read_key(&self, p: &Path) -> Result<PrivateKey, Error> {
        crate::tree::parse_key(p, &self.read(p)?)
    }

    /// The mode rule `verify` checks for a secret, on the mode the tree gives the file (nothing
    /// to check for a file the tree does not hold).
    fn secret_mode(&self, p: &Path) -> Result<String, String> {
        let file = self.rel(p).and_then(|r| self.tree.get(&r));
        match file {
            Some(f) => rules::secret_mode_bits(p, f.mode),
            None => Ok(format!("{} is not in the tree", p.display())),
        }
    }
}

enum Todo {
    /// A new CA; with a key held outside the tree, made with it.
    Ca(CertSpec, Option<Arc<dyn CaSigningKey>>),
    Leaf(CertSpec),
    Sa,
    SaPub(Box<PrivateKey>),
    Kubeconfig(KubeconfigSpec),
}

/// Builds the kubeconfig text for `spec` with a client certificate and key, trusting the CA
/// certificates `trusted` (the cluster CA's; during a CA rotation both of `ca.crt`, in its
/// order: docs/rotation.md).
pub fn kubeconfig_yaml(
    spec: &KubeconfigSpec,
    trusted: &[Certificate],
    cert: &Certificate,
    key: &PrivateKey,
) -> Result<Zeroizing<String>, Error> {
    let key_pem = key.to_pem()?;
    Kubeconfig::new(
        &spec.cluster_name,
        &spec.server,
        Some(&crate::tree::bundle_pem(trusted)),
        spec.user_name(),
        Some(&cert.to_pem()),
        Some(&key_pem),
    )
    .to_yaml()
}

#[allow(clippy::too_many_arguments)]
fn issue(
    plan: &Plan,
    ca: &CertificateAuthority,
    key: &PrivateKey,
    subject: &Subject,
    sans: &SubjectAltNames,
    ekus: &[ExtKeyUsage],
    now: OffsetDateTime,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<Certificate, Error> {
    let window = plan.leaf_window(now, ca.certificate().not_before());
    if window.not_after > ca.certificate().not_after() {
        warnings.push(format!(
            "{name}: cut to expire with its CA at {} (asked for {}); kubeadm would let it outlive the CA",
            rfc3339(ca.certificate().not_after()),
            rfc3339(window.not_after)
        ));
    }
    let spec = IssueSpec::new(
        subject.clone(),
        key.public_key_der(),
        window,
        CaExpiry::Clamp,
    )
    .with_ext_key_usage(ekus.to_vec())
    .with_subject_alt_names(sans.clone());
    Ok(ca.issue(&spec)?)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Every held CA key of `cur` that is also the key of another CA of the plan (another held
/// key, or the key in another CA's certificate): one error per pair, and the CAs concerned.
fn shared_held_keys(cur: &Current) -> Vec<(Error, Vec<CertId>)> {
    let dir = &cur.plan.cert_dir;
    let cas: Vec<CertId> = cur
        .plan
        .certs
        .iter()
        .map(|c| c.id)
        .filter(|id| id.is_ca())
        .collect();
    let mut out = Vec::new();
    for (i, &a) in cas.iter().enumerate() {
        let Some(ka) = cur.tree.ca_key(a) else {
            continue;
        };
        for &b in &cas[i + 1..] {
            if cur
                .tree
                .ca_key(b)
                .is_some_and(|kb| kb.public_key_der() == ka.public_key_der())
            {
                out.push((
                    file_err(
                        a.cert_path(dir),
                        format!(
                            "the key held outside the tree for {} is also given for {}; kubeadm's CAs have distinct keys",
                            a.name(),
                            b.name()
                        ),
                    ),
                    vec![a, b],
                ));
            }
        }
        for &b in cas.iter().filter(|&&b| b != a) {
            let cp = b.cert_path(dir);
            if cur.tree.ca_key(b).is_none()
                && cur.exists(&cp)
                && cur
                    .read_cert(&cp)
                    .is_ok_and(|c| c.public_key_der() == ka.public_key_der())
            {
                out.push((
                    file_err(
                        a.cert_path(dir),
                        format!(
                            "the key held outside the tree for {} is the key of {}; kubeadm's CAs have distinct keys",
                            a.name(),
                            cp.display()
                        ),
                    ),
                    vec![a],
                ));
            }
        }
    }
    out
}

/// A CA in the current tree: `None` when neither file exists.
fn load_ca(cur: &Current, id: CertId) -> Result<Option<CertificateAuthority>, Error> {
    let dir = &cur.plan.cert_dir;
    let (cp, kp) = (id.cert_path(dir), id.key_path(dir));
    let held = cur.tree.ca_key(id);
    match (cur.exists(&cp), cur.exists(&kp)) {
        (_, true) if held.is_some() => Err(file_err(
            &kp,
            "exists, and this CA's key is also given as held outside the tree (a token); remove the key file, or do not give the key",
        )),
        (false, false) => Ok(None),
        (false, true) => Err(file_err(
            &kp,
            format!(
                "exists but {} does not; supply both or neither",
                cp.display()
            ),
        )),
        (true, has_key) => {
            let cert = cur.read_cert(&cp)?;
            let ca = CertificateAuthority::from_certificate(cert).map_err(|e| file_err(&cp, e))?;
            if has_key {
                let key = cur.read_key(&kp)?;
                Ok(Some(ca.with_key(key).map_err(|e| file_err(&kp, e))?))
            } else if let Some(k) = held {
                Ok(Some(ca.with_signing_key(k.clone()).map_err(|e| {
                    file_err(&cp, Reason::within("with the key held outside the tree", e))
                })?))
            } else {
                Ok(Some(ca))
            }
        }
    }
}

/// Reuse an existing leaf only when it meets every rule of [`rules::leaf`] (the rules `verify`
/// checks); otherwise one error for the file naming every rule it fails, and what to do.
fn decide_leaf(
    cur: &Current,
    spec: &CertSpec,
    ca: Option<&CaState>,
    now: OffsetDateTime,
) -> Result<LeafChoice, Error> {
    let dir = &cur.plan.cert_dir;
    let (cp, kp) = (spec.id.cert_path(dir), spec.id.key_path(dir));
    let issuer = spec.id.issuer().unwrap_or(spec.id);
    let external = matches!(ca, Some(CaState::Loaded(ca)) if !ca.can_sign());
    let csr = crate::external::csr_path(dir, spec.id);
    let csr_exists = cur.exists(&csr);
    match (cur.exists(&cp), cur.exists(&kp)) {
        (false, false) => Ok(LeafChoice::Create),
        // In external-CA mode this node cannot make the certificate; removing the key would
        // orphan the CSR the CA holder has (docs/certs.md, external CA).
        (false, true) if external && csr_exists => Ok(LeafChoice::AwaitingSignature(csr)),
        (false, true) if csr_exists => Err(file_err(
            &kp,
            format!(
                "exists without {}, and its CSR {} awaits signing (`kubepki certs generate-csr`): supply {} without its key (external CA) and the signed certificate, or remove the key and the CSR to have both made here",
                cp.display(),
                csr.display(),
                issuer.cert_path(dir).display()
            ),
        )),
        (false, true) => Err(file_err(
            &kp,
            format!(
                "exists without {}; remove it to have both made, or supply the certificate",
                cp.display()
            ),
        )),
        (true, _) => {
            let Some(CaState::Loaded(ca)) = ca else {
                return Err(file_err(
                    &cp,
                    format!(
                        "exists but its CA {} does not; supply the CA, or remove the certificate and key to have everything made",
                        issuer.cert_path(dir).display()
                    ),
                ));
            };
            let cert = cur.read_cert(&cp)?;
            ca.check_issued(&cert).map_err(|e| {
                file_err(
                    &cp,
                    Reason::within(
                        format!("not signed by {}", issuer.cert_path(dir).display()),
                        e,
                    ),
                )
            })?;
            if !cur.exists(&kp) {
                return Err(missing(
                    &kp,
                    format!("missing (the certificate {} exists)", cp.display()),
                ));
            }
            let key = cur.read_key(&kp)?;
            if !key.matches_public_key(cert.public_key_der()) {
                return Err(file_err(
                    &kp,
                    format!("does not belong to {}", cp.display()),
                ));
            }
            // The rules verify checks (subject and SANs exactly the plan's, in every mode).
            let mut problems = rules::failures(rules::leaf(spec, &cert, now));
            let mode = cur.secret_mode(&kp).err().map(|reason| RuleFailure {
                rule: Rule::Mode,
                reason,
            });
            if problems.is_empty()
                && let Some(m) = mode
            {
                return Err(file_err(&kp, format!("cannot be reused: {m}")));
            }
            problems.extend(mode);
            if !problems.is_empty() {
                let only_expiry = problems.iter().all(|p| p.rule == Rule::Validity);
                let remedy = match ca {
                    ca if !ca.can_sign() => format!(
                        "its CA has no key here (external CA): have the CA issue it again ({})",
                        issuer.cert_path(dir).display()
                    ),
                    _ if only_expiry => format!(
                        "renew it (`kubepki certs renew {}`: same names, new key), or remove {} and {} to have them made again",
                        spec.id.name(),
                        cp.display(),
                        kp.display()
                    ),
                    _ => format!(
                        "remove {} and {} to have them made again",
                        cp.display(),
                        kp.display()
                    ),
                };
                return Err(Error::NotReusable {
                    path: cp,
                    failures: problems,
                    remedy,
                });
            }
            Ok(LeafChoice::Reuse(Box::new(cert_item(
                spec,
                Action::Reuse,
                dir,
                &cert,
                false,
            ))))
        }
    }
}

enum SaState {
    Complete(Box<InitItem>),
    NeedPub(PrivateKey),
    Missing,
}

fn decide_sa(cur: &Current) -> Result<SaState, Error> {
    let plan = cur.plan;
    let (kp, pp) = (plan.sa_key_path(), plan.sa_pub_path());
    match (cur.exists(&kp), cur.exists(&pp)) {
        (false, false) => Ok(SaState::Missing),
        (false, true) => Err(file_err(
            &pp,
            format!("exists without {}; supply both or neither", kp.display()),
        )),
        (true, has_pub) => {
            let key = cur.read_key(&kp)?;
            cur.secret_mode(&kp)
                .map_err(|m| file_err(&kp, format!("cannot be reused: mode: {m}")))?;
            if !has_pub {
                return Ok(SaState::NeedPub(key));
            }
            let pem = cur.read(&pp)?;
            rules::sa_pair(&key, &kp, &pem).map_err(|e| file_err(&pp, e))?;
            cur.secret_mode(&pp)
                .map_err(|m| file_err(&pp, format!("cannot be reused: mode: {m}")))?;
            Ok(SaState::Complete(Box::new(sa_item(
                plan,
                Action::Reuse,
                Some(key.algorithm()),
            ))))
        }
    }
}

/// Reuse an existing kubeconfig only when its CA data is `ca.crt` and its client certificate
/// and key meet every rule of [`rules::kubeconfig`] (the rules `verify` checks: for
/// `kubelet.conf`, the identity of this node); otherwise one error for the file naming every
/// rule it fails, and what to do. A different server is a warning, as in kubeadm.
/// Whether the kubeconfig's current user has a client certificate (`certs generate-csr` writes
/// kubeconfigs with only the client key).
fn has_client_cert(cur: &Current, path: &Path) -> Result<bool, Error> {
    let kc = cur.kubeconfig(path)?;
    Ok(kc.current_client_cert_pem(path)?.is_some())
}

fn check_kubeconfig(
    cur: &Current,
    path: &Path,
    spec: &KubeconfigSpec,
    authority: Option<&CertificateAuthority>,
    now: OffsetDateTime,
    warnings: &mut Vec<String>,
) -> Result<InitItem, Error> {
    let kc = cur.kubeconfig(path)?;
    let ca_pem = kc.current_ca_pem(path)?;
    let Some(ca) = authority.map(|a| a.certificate()) else {
        return Err(file_err(
            path,
            "exists but there is no ca.crt to check it against",
        ));
    };
    let theirs = Certificate::from_pem(&ca_pem)
        .map_err(|e| file_err(path, Reason::within("certificate-authority-data", e)))?;
    if theirs.to_der() != ca.to_der() {
        return Err(file_err(
            path,
            format!(
                "was made for another CA (\"{}\", SHA-256 {}), not this ca.crt (SHA-256 {}); remove it to have it made again",
                theirs.display_name(),
                theirs.fingerprint_sha256(),
                ca.fingerprint_sha256()
            ),
        ));
    }
    let (cluster, _) = kc.current(path)?;
    if cluster.cluster.server != spec.server {
        warnings.push(format!(
            "{}: server is {}, the configuration says {}",
            path.display(),
            cluster.cluster.server,
            spec.server
        ));
    }
    let cert = kc
        .current_client_cert_pem(path)?
        .map(|pem| {
            Certificate::from_pem(&pem)
                .map_err(|e| file_err(path, Reason::within("client-certificate-data", e)))
        })
        .transpose()?;
    let mut item = InitItem::new(
        spec.id.file_name(),
        InitItemKind::Kubeconfig,
        Action::Reuse,
        vec![path.to_owned()],
    );
    item.issuer = Some(CertId::Ca.name().into());
    item.server = Some(cluster.cluster.server.clone());
    let key = kc
        .current_client_key_pem(path)?
        .map(|pem| {
            PrivateKey::from_pem(&pem)
                .map_err(|e| file_err(path, Reason::within("client-key-data", e)))
        })
        .transpose()?;
    let external_ca = authority.is_some_and(|a| !a.can_sign());
    if external_ca && cert.is_none() {
        return Err(file_err(
            path,
            "has no client certificate, and in external CA mode this node cannot sign one",
        ));
    }
    // It holds the client key: owner only (the rule verify checks).
    let mut mode = cur.secret_mode(path).err();
    if let (Some(c), Some(k)) = (&cert, &key) {
        // The rules verify checks (the plan's identity and no SAN, in every mode).
        let mut problems = rules::failures(rules::kubeconfig(spec, c, k, authority, now));
        if let Some(m) = mode.take() {
            if problems.is_empty() {
                return Err(file_err(path, format!("cannot be reused: mode: {m}")));
            }
            problems.push(RuleFailure {
                rule: Rule::Mode,
                reason: m,
            });
        }
        if !problems.is_empty() {
            let only_expiry = problems.iter().all(|p| p.rule == Rule::Validity);
            let remedy = match authority {
                Some(a) if !a.can_sign() => {
                    "the cluster CA has no key here (external CA): have it sign a new client certificate".to_owned()
                }
                _ if only_expiry && spec.id != KubeconfigId::Kubelet => format!(
                    "renew it (`kubepki certs renew {}`), or remove it to have it made again",
                    spec.id.file_name()
                ),
                _ => "remove it to have it made again".to_owned(),
            };
            return Err(Error::NotReusable {
                path: path.to_owned(),
                failures: problems,
                remedy,
            });
        }
    }
    if let Some(m) = mode {
        return Err(file_err(path, format!("cannot be reused: mode: {m}")));
    }
    if let Some(c) = &cert {
        item.subject = Some(c.subject().clone());
        fill_times(&mut item, c);
    }
    Ok(item)
}

fn planned_item(spec: &CertSpec, dir: &Path, alg: KeyAlgorithm) -> InitItem {
    InitItem {
        name: spec.id.name().into(),
        kind: if spec.id.is_ca() {
            InitItemKind::CertificateAuthority
        } else {
            InitItemKind::Certificate
        },
        action: Action::Create,
        external: false,
        files: vec![spec.id.cert_path(dir), spec.id.key_path(dir)],
        subject: Some(spec.subject.clone()),
        issuer: spec.id.issuer().map(|i| i.name().into()),
        dns_names: if spec.id.is_ca() {
            spec.subject.common_name.iter().cloned().collect()
        } else {
            spec.subject_alt_names.dns.clone()
        },
        ip_addresses: spec.subject_alt_names.ips.clone(),
        not_before: None,
        not_after: None,
        key_algorithm: Some(alg.name().into()),
        server: None,
    }
}

fn cert_item(
    spec: &CertSpec,
    action: Action,
    dir: &Path,
    cert: &Certificate,
    external: bool,
) -> InitItem {
    let sans = cert.subject_alt_names();
    let mut files = vec![spec.id.cert_path(dir)];
    if !external {
        files.push(spec.id.key_path(dir));
    }
    let mut item = InitItem {
        name: spec.id.name().into(),
        kind: if spec.id.is_ca() {
            InitItemKind::CertificateAuthority
        } else {
            InitItemKind::Certificate
        },
        action,
        external,
        files,
        subject: Some(cert.subject().clone()),
        issuer: spec.id.issuer().map(|i| i.name().into()),
        dns_names: sans.dns,
        ip_addresses: sans.ips.clone(),
        not_before: None,
        not_after: None,
        key_algorithm: kubepki_keys::describe_public_key(cert.public_key_der()).ok(),
        server: None,
    };
    fill_times(&mut item, cert);
    item
}

fn sa_item(plan: &Plan, action: Action, alg: Option<KeyAlgorithm>) -> InitItem {
    let mut item = InitItem::new(
        "sa",
        InitItemKind::ServiceAccountKeys,
        action,
        vec![plan.sa_key_path(), plan.sa_pub_path()],
    );
    item.key_algorithm = alg.map(|a| a.name().into());
    item
}

fn fill_times(item: &mut InitItem, cert: &Certificate) {
    item.not_before = Some(cert.not_before());
    item.not_after = Some(cert.not_after());
}

fn notes(plan: &Plan, selection: &Selection) -> Vec<String> {
    let mut notes = Vec::new();
    let v = plan.version;
    if selection.kubeconfigs.contains(&KubeconfigId::Admin) && v.has_super_admin() {
        notes.push(
            format!("admin.conf's user is in group kubeadm:cluster-admins, which has no rights until the ClusterRoleBinding kubeadm:cluster-admins exists (kubeadm init creates it online): kubepki init phase rbac --kubernetes-version {v} | kubectl --kubeconfig super-admin.conf apply -f -"),
        );
    }
    if selection.certs.contains(&CertId::ApiserverKubeletClient) && v.drops_kubelet_client_org() {
        notes.push(
            format!("apiserver-kubelet-client has no O (kubeadm #138957): the API server reaches kubelets only once the ClusterRoleBinding kubeadm:apiserver-kubelet-client exists (kubepki init phase rbac --kubernetes-version {v} prints it with the others)"),
        );
    }
    notes
}
