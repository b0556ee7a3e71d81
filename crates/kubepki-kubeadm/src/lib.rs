//! The kubeadm PKI layout for kubepki: the certificates, keys and kubeconfig files kubeadm
//! writes under `/etc/kubernetes`, made offline, byte-compatible with what kubeadm makes.
//!
//! The tree is a value ([`Tree`]: files under kubeadm's relative paths, `pki/ca.crt`,
//! `pki/etcd/ca.key`, `admin.conf`, with their bytes and modes). The engine works on trees in
//! memory; the folders are one place to read them from and one sink to write them to.
//!
//! ```
//! use kubepki_kubeadm::{CaSet, ClusterSpec, Plan, Selection, Tree, build};
//! use time::OffsetDateTime;
//!
//! let now = OffsetDateTime::now_utc();
//! let mut spec = ClusterSpec::default();
//! spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
//!
//! // The CAs and sa.key/sa.pub, made once: no node name, no address, nothing read or probed.
//! let cas = CaSet::generate(&spec, now)?;
//!
//! // A node's files from them, in memory.
//! spec.node_name = Some("cp1".into());
//! spec.advertise_address = Some("192.0.2.10".parse()?);
//! let plan = Plan::new(&spec)?;
//! let node = build(&plan, &Selection::all(), cas.tree(), now)?;
//! assert!(node.files.get("pki/apiserver.crt").is_some());
//!
//! // The whole tree (CAs and node files), as a tar an installer ships; or JSON, or the
//! // Secrets Cluster API expects, or the folders (`write_folder`).
//! let tar = node.full_tree(cas.tree()).to_tar(now)?;
//! assert!(tar.len() > 27 * 512);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`ClusterSpec`]: kubeadm's inputs with kubeadm's defaults; [`apply_config_file`] reads
//!   kubeadm's own `InitConfiguration`/`ClusterConfiguration` files onto it.
//! - [`Plan`]: every certificate and kubeconfig with its subject, SANs, usages and paths.
//! - [`decide`] → [`apply`] → a sink: decide per item from the current tree (read from the
//!   folders, kept in memory, or empty) whether to reuse, create or refuse it, without a key or
//!   a file; make the new keys (in parallel) and certificates in memory; then write them as one
//!   crash-safe batch ([`write_folder`]) or export them ([`Tree::to_tar`],
//!   [`Tree::to_capi_secrets`], [`Tree::to_json`]). [`build`] is the first two.
//!   `docs/architecture.md`, "Decide, apply, sinks".
//! - The rest of the lifecycle, in memory and on folders: [`generate_csrs_in`] /
//!   [`sign_csrs_in`] (external CA), [`renew_in`], [`Expiration::of_tree`]; users and nodes
//!   ([`client_credentials`], [`user_kubeconfig`], [`user_request`], [`control_plane_node`]).
//! - Errors are values to match ([`Error::MissingFile`], [`Error::Malformed`],
//!   [`Error::NotReusable`] with its [`Rule`]s, [`Error::problems`]).
//! - [`init_tree`]: all of it on the plan's folders under the tree's lock; or, with `dry_run`, only
//!   the decision.
//!
//! ```
//! use kubepki_kubeadm::{ClusterSpec, Plan, Selection, init_tree};
//!
//! let dir = tempfile::tempdir()?;
//! let mut spec = ClusterSpec::with_advertise_address("192.0.2.10".parse()?);
//! spec.node_name = Some("cp1".into());
//! spec.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
//! spec.cert_dir = dir.path().join("pki");
//! spec.kubeconfig_dir = dir.path().to_owned();
//!
//! let plan = Plan::new(&spec)?;
//! let report = init_tree(&plan, &Selection::all(), time::OffsetDateTime::now_utc(), false)?;
//! assert_eq!(report.written.len(), 10 * 2 + 2 + 5); // certs + keys, sa.key/sa.pub, kubeconfigs
//! assert!(dir.path().join("pki/etcd/server.crt").exists());
//!
//! // A second run reuses everything and writes nothing.
//! let again = init_tree(&plan, &Selection::all(), time::OffsetDateTime::now_utc(), false)?;
//! assert!(again.unchanged());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod caset;
mod config;
mod error;
mod expiration;
mod export;
mod external;
mod identity;
mod init;
mod kind;
mod kubeconfig;
mod kubeconfig_edit;
mod kubeconfig_report;
mod memtree;
pub mod net;
mod plan;
mod rbac;
mod renew;
mod renew_csr;
mod rotate;
mod rules;
mod spec;
mod tree;
mod verify;
mod version;

pub use caset::CaSet;
pub use config::{apply_config, apply_config_file};
pub use error::{Error, Reason, VersionProblem};
pub use expiration::{
    Expiration, ExpirationEntry, Urgency, check_expiration, check_expiration_with_ca_keys,
    kubeadm_date, short_human_duration,
};
pub use export::CapiSecrets;
pub use external::{
    Generated, Kept, Signed, SigningCas, check_ca_role, csr_path, generate_csrs, generate_csrs_in,
    kubeconfig_csr_path, sign_csrs, sign_csrs_in,
};
pub use identity::{
    ClusterAccess, RbacGrant, RbacSubject, UserSpec, client_credentials, control_plane_node,
    control_plane_node_with_ca_keys, kubelet_kubeconfig, kubelet_serving, rbac_binding_yaml,
    shared_files, user_kubeconfig, user_request,
};
pub use init::{
    Action, Applied, Decision, InitItem, InitItemKind, InitReport, Selection, apply, build, decide,
    init_tree, init_tree_with_ca_keys, kubeconfig_yaml, write_folder,
};
pub use kind::{FileKind, file_kind};
pub use kubeconfig::{
    Cluster, Context, Kubeconfig, NamedCluster, NamedContext, NamedUser, Preferences, User,
    resolve_reference,
};
pub use kubeconfig_report::{
    CaReport, Chain, ClusterReport, ContextReport, KubeconfigReport, UserReport,
    describe_kubeconfig,
};
pub use memtree::{HeldCaKey, PKI_PREFIX, Tree, TreeFile, ca_paths, disk_path};
pub use plan::{CertId, CertSpec, KubeconfigId, KubeconfigSpec, Plan};
pub use rbac::{ClusterRoleBinding, SubjectKind, cluster_role_bindings, rbac_yaml};
pub use renew::{
    RenewStatus, RenewTarget, Renewed, parse_renew_name, renew, renew_in, renew_targets,
    renew_with_ca_keys,
};
pub use renew_csr::{
    CLOCK_SKEW, CsrStatus, InstallStatus, Installed, RenewalCsr, RenewalFiles, install_renewal,
    renewal_files, sign_renewal_csrs, write_renewal_csrs,
};
pub use rotate::{
    FileRole, Generation, RotateOptions, Rotation, RotationFile, RotationPhase, RotationStage,
    RotationStatus, RotationTarget, SIGNER_CERT, TargetChange, TargetStatus, ca_trust_bundle,
    rotate, rotate_in, rotation_status, rotation_status_in,
};
pub use rules::{KUBERNETES_KEYS_ONLY, Rule, RuleFailure, kubernetes_takes_key};
pub use spec::{
    ClusterSpec, DEFAULT_BIND_PORT, DEFAULT_CERT_DIR, DEFAULT_CLUSTER_NAME, DEFAULT_DNS_DOMAIN,
    DEFAULT_KUBECONFIG_DIR, DEFAULT_SERVICE_SUBNET,
};
pub use verify::{Check, CheckStatus, Verification, verify};
pub use version::{KubernetesVersion, NEWEST_KNOWN_MINOR, OLDEST_KNOWN};

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
