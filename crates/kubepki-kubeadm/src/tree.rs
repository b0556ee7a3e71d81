//! Reading the files of a tree, with errors that name the file.

use std::path::Path;

use kubepki_ca::Certificate;
use kubepki_keys::files::read_limited;
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Error, file_err};

/// Reads a file of the tree (bounded size).
pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_limited(path).map_err(|e| match e {
        kubepki_keys::Error::Io { path, reason } => Error::File { path, reason },
        other => file_err(path, other),
    })
}

/// Reads the first certificate of a PEM file.
pub(crate) fn read_cert(path: &Path) -> Result<Certificate, Error> {
    Certificate::from_pem(&read_file(path)?).map_err(|e| file_err(path, e))
}

/// Reads a private key that Kubernetes components accept (RSA or ECDSA).
pub(crate) fn read_key(path: &Path) -> Result<PrivateKey, Error> {
    let key = PrivateKey::from_pem(&read_file(path)?).map_err(|e| file_err(path, e))?;
    match key.algorithm() {
        KeyAlgorithm::Ed25519 => Err(file_err(
            path,
            "is an Ed25519 key; Kubernetes components take RSA or ECDSA keys only",
        )),
        _ => Ok(key),
    }
}

/// Completes writes an interrupted kubepki left in the tree's folders (see
/// `kubepki_keys::files::recover`).
pub(crate) fn recover(spec: &crate::ClusterSpec) -> Result<(), Error> {
    let etcd = spec.cert_dir.join("etcd");
    kubepki_keys::files::recover(&[&spec.cert_dir, &etcd, &spec.kubeconfig_dir])?;
    Ok(())
}
