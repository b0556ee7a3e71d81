//! Reading the files of a tree, with errors that name the file.

use std::path::{Path, PathBuf};

use kubepki_ca::Certificate;
use kubepki_keys::files::{FolderLock, LockMode, lock_folder, read_limited};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Error, file_err, malformed};

/// Reads a file of the tree (bounded size).
pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_limited(path).map_err(|e| match e {
        kubepki_keys::Error::Io { path, reason } => Error::File { path, reason },
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

/// Reads a private key that Kubernetes components accept (RSA or ECDSA).
pub(crate) fn read_key(path: &Path) -> Result<PrivateKey, Error> {
    parse_key(path, &read_file(path)?)
}

/// A private key that Kubernetes components accept (RSA or ECDSA) from the PEM `bytes` of the
/// file at `path`.
pub(crate) fn parse_key(path: &Path, bytes: &[u8]) -> Result<PrivateKey, Error> {
    let key = PrivateKey::from_pem(bytes).map_err(|e| malformed(path, e))?;
    match key.algorithm() {
        KeyAlgorithm::Ed25519 => Err(file_err(
            path,
            "is an Ed25519 key; Kubernetes components take RSA or ECDSA keys only",
        )),
        _ => Ok(key),
    }
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
    let recovered = kubepki_keys::files::recover(&[&spec.cert_dir, &etcd, &spec.kubeconfig_dir])?;
    Ok((TreeLock { _held: held }, recovered))
}

/// Takes the shared lock on the tree's folders (so no writer is halfway through a batch while
/// this command reads) and refuses a tree with an unfinished batch, naming its journal:
/// read-only commands never change the tree, so they report instead of recovering.
pub(crate) fn lock_for_reading(spec: &crate::ClusterSpec) -> Result<TreeLock, Error> {
    let mut held = Vec::new();
    let etcd = spec.cert_dir.join("etcd");
    for dir in tree_dirs(spec).into_iter().chain([etcd.as_path()]) {
        held.extend(kubepki_keys::files::lock_for_reading(dir)?);
    }
    for dir in [spec.cert_dir.as_path(), &etcd, &spec.kubeconfig_dir] {
        if let Some(journal) = kubepki_keys::files::pending(dir)?.into_iter().next() {
            return Err(Error::RecoveryPending { journal });
        }
    }
    Ok(TreeLock { _held: held })
}
