//! Reading the files of a tree, with errors that name the file.

use std::path::{Path, PathBuf};

use kubepki_ca::Certificate;
use kubepki_files::{FolderLock, LockMode, lock_folder, read_limited};
use kubepki_keys::PrivateKey;
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err, malformed};
use crate::kubeconfig::Kubeconfig;
use crate::memtree::Tree;
use crate::spec::ClusterSpec;

/// Reads a file of the tree (bounded size).
pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_limited(path).map_err(|e| match e {
        e @ (kubepki_files::Error::Io { .. }
        | kubepki_files::Error::Step { .. }
        | kubepki_files::Error::Refused { .. }) => Error::File {
            path: e.path().to_owned(),
            reason: Reason::Read(Box::new(e)),
        },
        other => file_err(path, other),
    })
}

/// Reads the first certificate of a PEM file.
pub(crate) fn read_cert(path: &Path) -> Result<Certificate, Error> {
    parse_cert(path, &read_file(path)?)
}

/// The first certificate of the PEM `bytes` of the file at `path`.
pub(crate) fn parse_cert(path: &Path, bytes: &[u8]) -> Result<Certificate, Error> {
    Certificate::from_pem(bytes).map_err(|e| malformed(path, e))
}

/// The certificates of a CA file as clients embed them (`certificate-authority-data`): each
/// certificate's PEM, in file order.
pub(crate) fn bundle_pem(certs: &[Certificate]) -> String {
    certs.iter().map(Certificate::to_pem).collect()
}

/// Reads a private key that Kubernetes components accept (RSA or ECDSA).
pub(crate) fn read_key(path: &Path) -> Result<PrivateKey, Error> {
    parse_key(path, &read_file(path)?)
}

/// A private key that Kubernetes components accept (RSA or ECDSA) from the PEM `bytes` of the
/// file at `path`.
pub(crate) fn parse_key(path: &Path, bytes: &[u8]) -> Result<PrivateKey, Error> {
    let key = PrivateKey::from_pem(bytes).map_err(|e| malformed(path, e))?;
    if !crate::kubernetes_takes_key(key.algorithm()) {
        return Err(file_err(
            path,
            format!(
                "is an {} key; {}",
                key.algorithm(),
                crate::KUBERNETES_KEYS_ONLY
            ),
        ));
    }
    Ok(key)
}

/// Where a command reads a tree's files from: the folders (the caller holds the tree's lock),
/// or a tree in memory, named by where `spec`'s folders would hold them.
pub(crate) enum Source<'a> {
    /// The folders, with the CA keys held outside them (a token).
    Folder {
        held: &'a [crate::memtree::HeldCaKey],
    },
    Tree {
        spec: &'a ClusterSpec,
        tree: &'a Tree,
    },
}

impl Source<'_> {
    pub(crate) fn exists(&self, p: &Path) -> bool {
        match self {
            Source::Folder { .. } => p.exists(),
            Source::Tree { spec, tree } => {
                tree_path(spec, p).is_some_and(|r| tree.get(&r).is_some())
            }
        }
    }

    pub(crate) fn read(&self, p: &Path) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
        match self {
            Source::Folder { .. } => read_file(p),
            Source::Tree { spec, tree } => tree_path(spec, p)
                .and_then(|r| tree.get(&r))
                .map(|f| f.bytes.clone())
                .ok_or_else(|| crate::error::missing(p, "is not in the tree")),
        }
    }

    /// The key of CA `id` held outside the tree ([`Tree::set_ca_key`]); never for folders.
    pub(crate) fn held_ca_key(
        &self,
        id: crate::CertId,
    ) -> Option<&std::sync::Arc<dyn kubepki_ca::CaSigningKey>> {
        match self {
            Source::Folder { held } => held.iter().find(|(i, _)| *i == id).map(|(_, k)| k),
            Source::Tree { tree, .. } => tree.ca_key(id),
        }
    }

    pub(crate) fn cert(&self, p: &Path) -> Result<Certificate, crate::Error> {
        parse_cert(p, &self.read(p)?)
    }

    pub(crate) fn key(&self, p: &Path) -> Result<PrivateKey, crate::Error> {
        parse_key(p, &self.read(p)?)
    }

    /// The client certificate of a kubeconfig's current user: embedded, or in the file it
    /// names (read by the one kubeconfig reader, [`Kubeconfig::current_client_cert_pem`], or
    /// from the tree).
    pub(crate) fn kubeconfig_cert(&self, path: &Path) -> Result<Certificate, crate::Error> {
        let kc = Kubeconfig::from_slice(path, &self.read(path)?)?;
        let pem = match self {
            Source::Folder { .. } => kc.current_client_cert_pem(path)?,
            Source::Tree { .. } => {
                let (_, user) = kc.current(path)?;
                match crate::kubeconfig::set(user.user.client_certificate.as_deref()) {
                    Some(f)
                        if crate::kubeconfig::set(user.user.client_certificate_data.as_deref())
                            .is_none() =>
                    {
                        let named = crate::kubeconfig::resolve_reference(path, f);
                        Some(self.read(&named)?.to_vec())
                    }
                    _ => kc.current_client_cert_pem(path)?,
                }
            }
        };
        let pem = pem.ok_or_else(|| kc.no_client_cert(path))?;
        Certificate::from_pem(&pem)
            .map_err(|e| crate::error::file_err(path, Reason::within("client certificate", e)))
    }
}

/// The tree path of `p` for `spec`'s folders (`pki/...` under the certificate folder, the rest
/// under the kubeconfig folder).
pub(crate) fn tree_path(spec: &ClusterSpec, p: &Path) -> Option<String> {
    crate::memtree::rel_path(&spec.cert_dir, &spec.kubeconfig_dir, p)
}

/// The locks a command holds on the tree's folders (the certificate folder and the kubeconfig
/// folder) for as long as it reads or writes them; see `docs/architecture.md` ("Locks").
pub(crate) struct TreeLock {
    _held: Vec<FolderLock>,
}

fn tree_dirs(spec: &crate::ClusterSpec) -> Vec<&Path> {
    let mut dirs = vec![spec.cert_dir.as_path(), spec.kubeconfig_dir.as_path()];
    // One order for every process, so two writers never wait for each other in a circle.
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Takes the exclusive lock on the tree's existing folders (waiting for other kubepki
/// processes to finish), then completes what an interrupted kubepki left there. Returns the
/// lock, to hold until the command has written, and the files recovery put in place.
pub(crate) fn lock_for_writing(
    spec: &crate::ClusterSpec,
) -> Result<(TreeLock, Vec<PathBuf>), Error> {
    let mut held = Vec::new();
    for dir in tree_dirs(spec) {
        match lock_folder(dir, LockMode::Exclusive) {
            Ok(l) => held.push(l),
            // A folder that does not exist yet is locked by the batch that creates it.
            Err(_) if !dir.exists() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let etcd = spec.cert_dir.join("etcd");
    let rotation = spec.cert_dir.join(crate::rotate::ROTATION_DIR);
    let recovered =
        kubepki_files::recover(&[&spec.cert_dir, &etcd, &rotation, &spec.kubeconfig_dir])?;
    Ok((TreeLock { _held: held }, recovered))
}

/// Takes the shared lock on the tree's folders (so no writer is halfway through a batch while
/// this command reads) and refuses a tree with an unfinished batch, naming its journal:
/// read-only commands never change the tree, so they report instead of recovering.
pub(crate) fn lock_for_reading(spec: &crate::ClusterSpec) -> Result<TreeLock, Error> {
    let mut held = Vec::new();
    let etcd = spec.cert_dir.join("etcd");
    let rotation = spec.cert_dir.join(crate::rotate::ROTATION_DIR);
    for dir in tree_dirs(spec)
        .into_iter()
        .chain([etcd.as_path(), rotation.as_path()])
    {
        held.extend(kubepki_files::lock_for_reading(dir)?);
    }
    for dir in [
        spec.cert_dir.as_path(),
        &etcd,
        &rotation,
        &spec.kubeconfig_dir,
    ] {
        if let Some(journal) = kubepki_files::pending(dir)?.into_iter().next() {
            return Err(Error::RecoveryPending { journal });
        }
    }
    Ok(TreeLock { _held: held })
}
