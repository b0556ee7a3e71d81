use std::path::PathBuf;

use thiserror::Error;

/// Errors from the kubeadm layout: inputs, config files, the tree on disk.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A key, PEM or file-writing problem.
    #[error(transparent)]
    Key(#[from] kubepki_keys::Error),
    /// A CSR or X.509 encoding problem.
    #[error(transparent)]
    Csr(#[from] kubepki_csr::Error),
    /// A certificate or CA problem.
    #[error(transparent)]
    Ca(#[from] kubepki_ca::Error),
    /// An input value (flag or library field) that is not valid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, in kubeadm's config spelling (`networking.serviceSubnet`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A kubeadm config file that cannot be used.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong (names the document and field).
        reason: String,
    },
    /// A file of the tree that exists but cannot be used.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// External-CA mode (a CA certificate without its key) with files that are not supplied.
    #[error(
        "external CA mode ({}): these must already exist and be signed by their CA: {}",
        cas.join(", "), missing.join("; ")
    )]
    ExternalCaIncomplete {
        /// The keyless CA certificates.
        cas: Vec<String>,
        /// What is missing or wrong, one entry per file.
        missing: Vec<String>,
    },
    /// No advertise address was given and none could be derived.
    #[error(
        "no advertise address: pass --apiserver-advertise-address (or localAPIEndpoint.advertiseAddress); {reason}"
    )]
    NoAdvertiseAddress {
        /// Why derivation failed.
        reason: String,
    },
    /// A kubepki process was killed while writing this tree, and its batch is not completed
    /// yet: a read-only command reports it instead of changing the tree.
    #[error(
        "{}: an interrupted kubepki left a batch of files half moved into place; run a command that writes this tree (`kubepki init`, or `kubepki certs renew` for a renewal) to complete it",
        journal.display()
    )]
    RecoveryPending {
        /// The journal of the unfinished batch.
        journal: PathBuf,
    },
    /// An unknown phase name.
    #[error("unknown {kind} \"{given}\"; valid: {valid}")]
    UnknownName {
        /// `certificate` or `kubeconfig`.
        kind: &'static str,
        /// What was given.
        given: String,
        /// The valid names.
        valid: String,
    },
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(crate) fn file_err(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.into(),
        reason: reason.to_string(),
    }
}
