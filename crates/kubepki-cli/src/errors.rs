//! The one mapping from the libraries' errors to what the CLI prints and how it exits: every
//! command reports through [`CliError`], made here from `kubepki_keys`, `kubepki_csr`,
//! `kubepki_ca`, `kubepki_kubeadm`, `kubepki_files` and `kubepki_pkcs11` errors, and
//! [`exit_code`] prints it on one line (`kubepki: error: ...`) with its exit status: 64 for a
//! command line that cannot be used ([`EXIT_USAGE`]), 75 when another kubepki holds the tree
//! ([`EXIT_BUSY`]), 141 for a closed standard output ([`EXIT_BROKEN_PIPE`]), 1 otherwise
//! (docs/certs.md, "Exit codes").

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::out::{self, EXIT_BROKEN_PIPE, EXIT_BUSY, EXIT_USAGE};

/// Errors the CLI reports: always one line, naming the file when there is one.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A problem with one file.
    #[error("{}: {msg}", crate::out::esc_path(path))]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
    /// A result already reported on stdout/stderr; only the exit code is left to set.
    #[error("exit status {0}")]
    Exit(u8),
    /// A command line that cannot be used (a flag value, a combination of flags, `--config`),
    /// in every command: exits [`crate::out::EXIT_USAGE`], as clap's own usage errors do.
    #[error("{0}")]
    Usage(String),
    /// Another kubepki process held the tree's lock for longer than kubepki waits: exits
    /// [`crate::out::EXIT_BUSY`].
    #[error("{0}")]
    Busy(String),
    /// Standard output could not be written (a closed pipe: see [`crate::out`]).
    #[error("writing to standard output: {0}")]
    Stdout(std::io::Error),
}

/// Prints `result`'s error, if any, on one line and gives the exit status for it.
pub fn exit_code(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => {
            let _ = out::flush();
            ExitCode::from(code)
        }
        Err(CliError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(EXIT_BROKEN_PIPE)
        }
        Err(CliError::Usage(msg)) => {
            diag!("kubepki: error: {}", out::esc(&msg));
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Busy(msg)) => {
            diag!("kubepki: error: {}", out::esc(&msg));
            ExitCode::from(EXIT_BUSY)
        }
        Err(e) => {
            // One line: whatever the message quotes is escaped, newlines included.
            diag!("kubepki: error: {}", out::esc(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A flag problem as a CLI error: a usage error (exit [`EXIT_USAGE`]), as clap's.
pub(crate) fn flag_err(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Anything else (a library error about no one file, an output that cannot be encoded, ...):
/// exit 1.
pub(crate) fn other_err(e: impl std::fmt::Display) -> CliError {
    CliError::Other(e.to_string())
}

/// A library error about the file at `path` (a certificate, key, request or config that
/// cannot be used): `path: message`.
pub(crate) fn in_file<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError::File {
        path: path.to_owned(),
        msg: e.to_string(),
    }
}

/// The message for an output file that exists before anything is written.
pub(crate) fn exists_err(path: &Path) -> CliError {
    CliError::File {
        path: path.to_owned(),
        msg: EXISTS.into(),
    }
}

const EXISTS: &str = "already exists (use --force to replace it)";

/// The one message for a certificate that would outlive its CA (`sign`, `node kubelet-*`).
pub fn outlives_ca(
    validity: &str,
    ca_cert: &Path,
    leaf_not_after: &str,
    ca_not_after: &str,
) -> CliError {
    CliError::Other(format!(
        "--validity {validity}: the certificate would expire at {leaf_not_after}, after its CA {} ({ca_not_after}); pass --clamp-to-ca to end it with the CA, or give a shorter --validity",
        ca_cert.display()
    ))
}

/// Writes a command's output files' errors ([`files_err`] for [`Writing::Output`]).
pub(crate) fn write_err(e: kubepki_files::Error) -> CliError {
    files_err(e, Writing::Output)
}

/// Who wrote the files a [`kubepki_files::Error`] is about, for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writing {
    /// A command's own output or input files (`--force` replaces an output).
    Output,
    /// The kubeadm tree, written by the library (`kubepki_kubeadm`).
    Tree,
}

/// The one mapping of file errors (`kubepki_files::Error`) to CLI errors: the file first, then
/// what is wrong with it; another process holding the tree is [`CliError::Busy`].
pub(crate) fn files_err(e: kubepki_files::Error, writing: Writing) -> CliError {
    use kubepki_files::Error as F;
    match e {
        F::Io { .. } | F::Step { .. } | F::Refused { .. } => CliError::File {
            path: e.path().to_owned(),
            msg: e.detail(),
        },
        F::Exists { path } => CliError::File {
            path,
            msg: match writing {
                Writing::Output => EXISTS,
                Writing::Tree => "appeared while kubepki was writing; nothing was changed",
            }
            .into(),
        },
        F::Symlink { path } if writing == Writing::Tree => CliError::File {
            path,
            msg: "is a symbolic link; kubepki never writes through links".into(),
        },
        e @ F::Busy { .. } if writing == Writing::Tree => CliError::Busy(e.to_string()),
        other => CliError::Other(other.to_string()),
    }
}

/// Library errors as CLI errors (file errors keep the file first).
pub(crate) fn lib_err(e: kubepki_kubeadm::Error) -> CliError {
    match e {
        kubepki_kubeadm::Error::File { path, reason }
        | kubepki_kubeadm::Error::Config { path, reason } => CliError::File {
            path,
            msg: reason.to_string(),
        },
        kubepki_kubeadm::Error::Files(e) => files_err(e, Writing::Tree),
        // The library names its inputs as fields; here they came from flags.
        kubepki_kubeadm::Error::Invalid { field, reason } => {
            let flag = match field.as_str() {
                "server" => "--cluster-server",
                "nodeName" => "--node-name",
                "namespace" => "--namespace",
                "dnsNames" => "--dns",
                "fromCertDir" => "--from-cert-dir",
                other => other,
            };
            CliError::Other(format!("{flag}: {reason}"))
        }
        kubepki_kubeadm::Error::NoAdvertiseAddress { reason } => CliError::Other(format!(
            "no advertise address: pass --apiserver-advertise-address (or localAPIEndpoint.advertiseAddress); {reason}"
        )),
        kubepki_kubeadm::Error::NoNodeName { reason } => {
            CliError::Other(format!("nodeRegistration.name: {reason}; pass --node-name"))
        }
        other => CliError::Other(other.to_string()),
    }
}

/// A value the configuration gives (a flag, or the `--config` file `config`) that cannot be
/// used is a usage error (exit [`EXIT_USAGE`]), named after the file when there is one.
pub(crate) fn config_err(config: Option<&Path>, e: kubepki_kubeadm::Error) -> CliError {
    match (config, e) {
        (Some(cfg), kubepki_kubeadm::Error::Invalid { field, reason }) => {
            CliError::Usage(format!("{}: {field}: {reason}", cfg.display()))
        }
        (None, e @ kubepki_kubeadm::Error::Invalid { .. }) => CliError::Usage(e.to_string()),
        (_, e) => lib_err(e),
    }
}

/// What is wrong with a value, without the library's field name (the CLI names the flag).
pub(crate) fn strip_field(e: &kubepki_kubeadm::Error) -> String {
    match e {
        kubepki_kubeadm::Error::Invalid { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}
