//! The kubeadm tree as a value: every file under kubeadm's relative path (`pki/ca.crt`,
//! `pki/etcd/ca.key`, `admin.conf`), its bytes and its mode. [`crate::decide`] reads the
//! current tree from one, [`crate::apply`] returns the new files as one, and the sinks (the
//! folder writer, [`Tree::to_tar`], [`Tree::to_json`], [`Tree::to_capi_secrets`]) take one;
//! `docs/architecture.md`, "Decide, apply, sinks".

use std::fmt;
use std::path::{Path, PathBuf};

use kubepki_files::{MODE_PUBLIC, MODE_SECRET};
use std::sync::Arc;

use kubepki_ca::CaSigningKey;
use zeroize::Zeroizing;

use crate::error::{Error, file_err, invalid};
use crate::plan::{CertId, KubeconfigId, Plan};

/// A CA key held outside the tree (in a token, a KMS), for the CA it signs for: what
/// [`Tree::set_ca_key`] takes, and the folder commands' `ca_keys` (`init_tree_with_ca_keys`, ...).
pub type HeldCaKey = (CertId, Arc<dyn CaSigningKey>);

/// The prefix of the certificate folder's files in a [`Tree`] (kubeadm's `/etc/kubernetes/pki`).
pub const PKI_PREFIX: &str = "pki/";

/// One file of a [`Tree`]. `Debug` shows the path, mode and size, never the bytes (they may
/// be a private key).
#[derive(Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// kubeadm's relative path: `pki/ca.crt`, `pki/etcd/ca.key`, `admin.conf`.
    pub path: String,
    /// Permission bits: 0644 for certificates, 0600 for keys, `sa.pub` and kubeconfigs (the
    /// modes the folder writer gives them; docs/init.md).
    pub mode: u32,
    /// The contents (PEM or kubeconfig YAML).
    pub bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TreeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl TreeFile {
    /// Whether the file holds private key material: a `.key` file, a PEM private key, or a
    /// kubeconfig with a client key.
    pub fn is_secret(&self) -> bool {
        let has = |needle: &[u8]| self.bytes.windows(needle.len()).any(|w| w == needle);
        self.path.ends_with(".key") || has(b"PRIVATE KEY-----") || has(b"client-key-data")
    }
}

/// A kubeadm tree in memory: files in insertion order (the order the folder writer stages
/// them), at most one per path.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    files: Vec<TreeFile>,
    /// Files that exist in the folder the tree was read from but could not be read (path in
    /// the tree, reason); they are reported when the decision step needs them.
    unreadable: Vec<(String, String)>,
    /// CA keys held outside the tree (an HSM, a KMS), by CA.
    ca_keys: Vec<(CertId, Arc<dyn CaSigningKey>)>,
    /// Read from the plan's folders ([`Tree::read_folder`]): a kubeconfig's file references
    /// (`client-certificate: /var/lib/kubelet/pki/...`) are followed on that host. A tree
    /// given in memory holds all it has: nothing it names is read from the file system.
    from_folder: bool,
}

impl PartialEq for Tree {
    fn eq(&self, other: &Tree) -> bool {
        self.files == other.files && self.unreadable == other.unreadable
    }
}

impl Eq for Tree {}

impl Tree {
    /// An empty tree (nothing exists yet).
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Adds `bytes` at `path` with `mode`, replacing a file already at `path`. The path is
    /// relative, `/`-separated, of letters, digits, `.`, `-` and `_`, at most 100 bytes (what
    /// a tar header holds); the mode at most 0777.
    pub fn insert(
        &mut self,
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), Error> {
        let path = path.into();
        check_path(&path)?;
        if mode > 0o777 {
            return Err(invalid(
                path,
                format!("mode {mode:o} is not a permission mode (at most 0777)"),
            ));
        }
        let file = TreeFile {
            path,
            mode,
            bytes: Zeroizing::new(bytes.into()),
        };
        self.unreadable.retain(|(p, _)| *p != file.path);
        match self.files.iter_mut().find(|f| f.path == file.path) {
            Some(old) => *old = file,
            None => self.files.push(file),
        }
        Ok(())
    }

    /// Adds `bytes` at `path` with the mode the folder writer gives such a file
    /// ([`Tree::default_mode`]).
    pub fn insert_file(
        &mut self,
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        let path = path.into();
        let mode = Tree::default_mode(&path);
        self.insert(path, bytes, mode)
    }

    /// The mode the folder writer gives the file at `path`: 0644 for certificates (`.crt`),
    /// 0600 for everything else (keys, `sa.pub`, kubeconfigs, CSRs are never written by init).
    pub fn default_mode(path: &str) -> u32 {
        if path.ends_with(".crt") {
            MODE_PUBLIC
        } else {
            MODE_SECRET
        }
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&TreeFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Removes and returns the file at `path`.
    pub fn remove(&mut self, path: &str) -> Option<TreeFile> {
        let i = self.files.iter().position(|f| f.path == path)?;
        Some(self.files.remove(i))
    }

    /// Every file, in insertion order.
    pub fn files(&self) -> impl Iterator<Item = &TreeFile> {
        self.files.iter()
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the tree has no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether any file holds private key material (see [`TreeFile::is_secret`]).
    pub fn has_secrets(&self) -> bool {
        self.files.iter().any(TreeFile::is_secret)
    }

    /// Reads the files of `plan`'s tree that exist under its certificate and kubeconfig
    /// folders, holding the shared lock while it reads (as read-only commands do; a folder
    /// with an unfinished batch is refused, naming its journal: docs/architecture.md). A file
    /// that exists but cannot be read is remembered and reported by [`crate::decide`] when it
    /// needs the file, so one decision still names every problem.
    pub fn read_folder(plan: &Plan) -> Result<Tree, Error> {
        let _lock = crate::tree::lock_for_reading(&plan.spec)?;
        Ok(Tree::read_unlocked(plan))
    }

    /// [`Tree::read_folder`] for a caller that already holds a lock on the tree.
    pub(crate) fn read_unlocked(plan: &Plan) -> Tree {
        Tree::read_paths(layout(plan))
    }

    /// The files at `paths` (tree path, path on disk) that exist, read by a caller holding a
    /// lock on their folders.
    pub(crate) fn read_paths(paths: Vec<(String, PathBuf)>) -> Tree {
        let mut tree = Tree {
            from_folder: true,
            ..Tree::default()
        };
        for (rel, abs) in paths {
            // One `lstat` for a name that is not there (the common case: a new tree).
            match std::fs::symlink_metadata(&abs) {
                Err(_) => continue,
                Ok(m) if m.file_type().is_symlink() && !abs.exists() => {
                    // A link to nothing is there all the same: no file may be made in its place.
                    tree.unreadable.push((
                        rel,
                        "is a symbolic link to nothing; kubepki does not write through links"
                            .into(),
                    ));
                    continue;
                }
                Ok(_) => {}
            }
            match crate::tree::read_file(&abs) {
                Ok(bytes) => {
                    // The file's own permission bits: the mode rule (`rules::secret_mode_bits`)
                    // judges a tree read from disk as `verify` does.
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(&abs)
                        .map(|m| m.permissions().mode() & 0o777)
                        .unwrap_or_else(|_| Tree::default_mode(&rel));
                    tree.files.push(TreeFile {
                        path: rel,
                        mode,
                        bytes,
                    });
                }
                Err(Error::File { reason, .. }) => {
                    tree.unreadable.push((rel, reason.to_string()));
                }
                Err(e) => tree.unreadable.push((rel, e.to_string())),
            }
        }
        tree
    }

    /// Marks the file at `path` as present but not to be read (`reason`): [`Tree::read`]
    /// reports it, naming the file.
    pub(crate) fn mark_unreadable(&mut self, path: &str, reason: &str) {
        self.files.retain(|f| f.path != path);
        self.unreadable.retain(|(p, _)| p != path);
        self.unreadable.push((path.to_owned(), reason.to_owned()));
    }

    /// Appends `file` (its path and mode were checked when it was first made).
    pub(crate) fn push_file(&mut self, file: TreeFile) {
        self.files.push(file);
    }

    /// Gives the key of CA `id` (`CertId::Ca`, `CertId::FrontProxyCa`, `CertId::EtcdCa`) as
    /// held outside the tree: in a token, a KMS, a remote signer ([`CaSigningKey`]). [`crate::decide`]
    /// signs with it when the tree holds the CA's certificate and no key file for it (a key
    /// file as well is refused), and makes the CA's certificate with it when the tree has none;
    /// the key is never a file of the tree, and no export holds it. [`crate::renew_in`] signs
    /// with it too.
    pub fn set_ca_key(&mut self, id: CertId, key: Arc<dyn CaSigningKey>) -> Result<(), Error> {
        if !id.is_ca() {
            return Err(invalid(
                id.name(),
                "is not a certificate authority; only a CA's key can be held outside the tree",
            ));
        }
        self.ca_keys.retain(|(i, _)| *i != id);
        self.ca_keys.push((id, key));
        Ok(())
    }

    /// The key of CA `id` held outside the tree, if one was given ([`Tree::set_ca_key`]).
    pub fn ca_key(&self, id: CertId) -> Option<&Arc<dyn CaSigningKey>> {
        self.ca_keys.iter().find(|(i, _)| *i == id).map(|(_, k)| k)
    }

    /// Whether the tree was read from the plan's folders (see the field).
    pub(crate) fn is_from_folder(&self) -> bool {
        self.from_folder
    }

    /// Whether a file is at `path` (readable or not).
    pub(crate) fn exists(&self, path: &str) -> bool {
        self.get(path).is_some() || self.unreadable.iter().any(|(p, _)| p == path)
    }

    /// The bytes at `path`, or the error for `shown` (the file's place on disk).
    pub(crate) fn read(&self, path: &str, shown: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
        if let Some(f) = self.get(path) {
            return Ok(f.bytes.clone());
        }
        match self.unreadable.iter().find(|(p, _)| p == path) {
            Some((_, reason)) => Err(file_err(shown, reason.as_str())),
            None => Err(crate::error::missing(shown, "does not exist")),
        }
    }
}

fn check_path(path: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(invalid(format!("tree path \"{path}\""), why));
    if path.is_empty() || path.len() > 100 {
        return bad("must be 1 to 100 bytes long");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("must be relative, without empty, \".\" or \"..\" parts");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return bad("may hold only letters, digits, '.', '-', '_' and '/'");
        }
    }
    Ok(())
}

/// The tree path of a file in the certificate folder (`pki/etcd/ca.crt` for `etcd/ca.crt`).
pub(crate) fn cert_rel(plan: &Plan, abs: &Path) -> Option<String> {
    let rest = abs.strip_prefix(&plan.cert_dir).ok()?;
    Some(format!("{PKI_PREFIX}{}", rest.to_str()?))
}

/// The tree path of a file in the kubeconfig folder (`admin.conf`).
pub(crate) fn kubeconfig_rel(plan: &Plan, abs: &Path) -> Option<String> {
    let rest = abs.strip_prefix(&plan.kubeconfig_dir).ok()?;
    Some(rest.to_str()?.to_owned())
}

/// The tree path of the file at `abs` for the folders `cert_dir` and `kubeconfig_dir`: a
/// kubeconfig or its CSR directly in the kubeconfig folder is `admin.conf`, `admin.conf.csr`
/// even when that folder is, or lies inside, the certificate folder (as [`layout`] and
/// [`disk_path`] place it); anything else under the certificate folder is `pki/...` (it may
/// lie inside the kubeconfig folder: kubeadm's layout), the rest under the kubeconfig folder.
pub(crate) fn rel_path(cert_dir: &Path, kubeconfig_dir: &Path, abs: &Path) -> Option<String> {
    if abs.parent() == Some(kubeconfig_dir)
        && let Some(name) = abs.file_name().and_then(|n| n.to_str())
        && KubeconfigId::ALL.iter().any(|k| {
            name == k.file_name()
                || name
                    .strip_suffix(".csr")
                    .is_some_and(|n| n == k.file_name())
        })
    {
        return Some(name.to_owned());
    }
    if let Ok(rest) = abs.strip_prefix(cert_dir) {
        return Some(format!("{PKI_PREFIX}{}", rest.to_str()?));
    }
    Some(abs.strip_prefix(kubeconfig_dir).ok()?.to_str()?.to_owned())
}

/// Where a tree path goes on disk for `plan`: `pki/...` under the certificate folder, the rest
/// under the kubeconfig folder.
pub fn disk_path(plan: &Plan, path: &str) -> PathBuf {
    disk_path_in(&plan.cert_dir, &plan.kubeconfig_dir, path)
}

/// [`disk_path`] for the folders `cert_dir` and `kubeconfig_dir`.
pub(crate) fn disk_path_in(cert_dir: &Path, kubeconfig_dir: &Path, path: &str) -> PathBuf {
    match path.strip_prefix(PKI_PREFIX) {
        Some(rest) => cert_dir.join(rest),
        None => kubeconfig_dir.join(path),
    }
}

/// Every file of `plan`'s layout that init or `certs generate-csr` writes, as (tree path,
/// path on disk): certificates, keys and CSRs, `sa.key`/`sa.pub`, kubeconfigs and their CSRs.
pub(crate) fn layout(plan: &Plan) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut cert_file = |abs: PathBuf| {
        if let Some(rel) = cert_rel(plan, &abs) {
            out.push((rel, abs));
        }
    };
    for c in &plan.certs {
        cert_file(c.id.cert_path(&plan.cert_dir));
        cert_file(c.id.key_path(&plan.cert_dir));
        if !c.id.is_ca() {
            cert_file(crate::external::csr_path(&plan.cert_dir, c.id));
        }
    }
    cert_file(plan.sa_key_path());
    cert_file(plan.sa_pub_path());
    // The incoming keys of a CA rotation and the cluster CA's signing certificate alone
    // (docs/rotation.md).
    cert_file(plan.cert_dir.join(crate::rotate::SIGNER_CERT));
    for target in crate::rotate::RotationTarget::ALL {
        cert_file(plan.cert_dir.join(target.record_rel()));
        cert_file(plan.cert_dir.join(target.pending_key_rel()));
    }
    for k in &plan.kubeconfigs {
        for abs in [
            plan.kubeconfig_path(k.id),
            crate::external::kubeconfig_csr_path(&plan.kubeconfig_dir, k.id),
        ] {
            if let Some(rel) = kubeconfig_rel(plan, &abs) {
                out.push((rel, abs));
            }
        }
    }
    out
}

/// The tree path of a CA's certificate and key (`pki/etcd/ca.crt`, `pki/etcd/ca.key`).
pub fn ca_paths(id: CertId) -> (String, String) {
    let base = Path::new("pki");
    (
        id.cert_path(base).to_string_lossy().into_owned(),
        id.key_path(base).to_string_lossy().into_owned(),
    )
}
