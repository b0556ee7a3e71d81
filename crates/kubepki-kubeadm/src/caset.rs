//! The files every node of a cluster shares: its CAs and the service-account key pair, as one
//! value that needs no node inputs (docs/architecture.md, "Decide, apply, sinks").

use kubepki_ca::CertificateAuthority;
use time::OffsetDateTime;

use crate::error::{Error, missing};
use crate::init::{Action, Applied, Selection, build, decide};
use crate::memtree::{Tree, cert_rel};
use crate::plan::{CertId, Plan};
use crate::spec::ClusterSpec;

/// The CAs of a kubeadm cluster (`ca`, `front-proxy-ca`, `etcd-ca` unless etcd is external)
/// and `sa.key`/`sa.pub`, in memory under kubeadm's relative paths (`pki/ca.crt`, ...).
///
/// A CA set is made once ([`CaSet::generate`]: no node name, no advertise address, nothing
/// probed or read), kept as PEM wherever the caller keeps secrets ([`CaSet::tree`], and
/// [`Tree::to_json`] or [`Tree::to_tar`]), taken back ([`CaSet::from_tree`]: the same rules
/// `init` applies before it reuses a CA) and used for any number of nodes
/// ([`CaSet::build_node`]).
///
/// ```
/// use kubepki_kubeadm::{CaSet, ClusterSpec, Plan, Selection, Tree};
/// use time::OffsetDateTime;
///
/// let mut spec = ClusterSpec::default(); // no node name, no advertise address
/// spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
/// let now = OffsetDateTime::now_utc();
/// let cas = CaSet::generate(&spec, now)?;
/// assert!(cas.tree().get("pki/etcd/ca.key").is_some());
///
/// // Stored as JSON (or a tar, or files) and read back on another machine.
/// let stored = cas.tree().to_json()?;
/// let cas = CaSet::from_tree(&spec, &Tree::from_json(&stored)?, now)?;
///
/// // A node's files, signed by those CAs.
/// let mut node = spec.clone();
/// node.node_name = Some("cp2".into());
/// node.advertise_address = Some("192.0.2.12".parse()?);
/// let applied = cas.build_node(&Plan::new(&node)?, &Selection::all(), now)?;
/// assert!(applied.files.get("pki/apiserver.crt").is_some());
/// assert!(applied.files.get("pki/ca.key").is_none()); // reused, not made again
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CaSet {
    files: Tree,
}

impl std::fmt::Debug for CaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSet")
            .field(
                "files",
                &self
                    .files
                    .files()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl CaSet {
    /// New CAs and a new service-account key pair for `spec`'s cluster, made at `now` with the
    /// spec's algorithm and CA validity. Only the inputs that shape these files are checked
    /// ([`ClusterSpec::validate`]); the node name and advertise address are not needed.
    pub fn generate(spec: &ClusterSpec, now: OffsetDateTime) -> Result<CaSet, Error> {
        let plan = Plan::shared_files(spec)?;
        let applied = build(&plan, &shared_selection(&plan), &Tree::new(), now)?;
        Ok(CaSet {
            files: applied.files,
        })
    }

    /// The CA set held in `tree` (which may hold other files too; they are left out), checked
    /// as `init` checks a CA before reusing it: each of the spec's CAs is there, parses, is a
    /// CA, is valid at `now`, its key (when present: a CA without its key is an external CA)
    /// belongs to it and is owner-only; `sa.key` and `sa.pub` are one pair.
    pub fn from_tree(spec: &ClusterSpec, tree: &Tree, now: OffsetDateTime) -> Result<CaSet, Error> {
        let plan = Plan::shared_files(spec)?;
        let decision = decide(&plan, &shared_selection(&plan), tree, now)?;
        if let Some(item) = decision.items().find(|i| i.action == Action::Create) {
            let path = item
                .files
                .iter()
                .find(|p| cert_rel(&plan, p).is_some_and(|r| tree.get(&r).is_none()))
                .or(item.files.first())
                .cloned()
                .unwrap_or_default();
            return Err(missing(
                path,
                "missing; a CA set holds every CA of the cluster and sa.key/sa.pub",
            ));
        }
        let mut files = Tree::new();
        for id in plan.certs.iter().map(|c| c.id) {
            if let Some(k) = tree.ca_key(id) {
                files.set_ca_key(id, k.clone())?;
            }
        }
        for item in decision.items() {
            for path in &item.files {
                if let Some(f) = cert_rel(&plan, path).and_then(|r| tree.get(&r)) {
                    files.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
                }
            }
        }
        Ok(CaSet { files })
    }

    /// The files, under kubeadm's relative paths, with the modes the folder writer gives them.
    pub fn tree(&self) -> &Tree {
        &self.files
    }

    /// The files, taken out.
    pub fn into_tree(self) -> Tree {
        self.files
    }

    /// CA `id` (`CertId::Ca`, `CertId::FrontProxyCa`, `CertId::EtcdCa`) with its key when the
    /// set holds it (as a file, or held outside the tree: [`Tree::set_ca_key`]), for signing
    /// more certificates (users, kubelets) with it.
    pub fn authority(&self, id: CertId) -> Result<CertificateAuthority, Error> {
        let (cp, kp) = crate::memtree::ca_paths(id);
        let shown = |p: &str| std::path::PathBuf::from(p);
        let cert = self
            .files
            .get(&cp)
            .ok_or_else(|| missing(shown(&cp), "is not in this CA set"))?;
        let ca = CertificateAuthority::from_certificate(crate::tree::parse_cert(
            &shown(&cp),
            &cert.bytes,
        )?)?;
        match (self.files.get(&kp), self.files.ca_key(id)) {
            (Some(_), Some(_)) => Err(crate::error::file_err(
                shown(&kp),
                "is in this CA set, and this CA's key is also given as held outside the tree (a token); give one",
            )),
            (Some(key), None) => Ok(ca.with_key(crate::tree::parse_key(&shown(&kp), &key.bytes)?)?),
            (None, Some(held)) => Ok(ca.with_signing_key(held.clone())?),
            (None, None) => Ok(ca),
        }
    }

    /// The files `plan`'s node needs beyond this set (its certificates, keys and kubeconfigs,
    /// as `selection` says), signed by these CAs: [`build`] over this set as the current tree.
    pub fn build_node(
        &self,
        plan: &Plan,
        selection: &Selection,
        now: OffsetDateTime,
    ) -> Result<Applied, Error> {
        build(plan, selection, &self.files, now)
    }
}

fn shared_selection(plan: &Plan) -> Selection {
    let mut sel = Selection::none();
    sel.certs = plan.certs.iter().map(|c| c.id).collect();
    sel.sa = true;
    sel
}
