use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kubepki_keys::escape_path;
use thiserror::Error;

/// Everything that can go wrong writing, locking, recovering or reading a file.
///
/// Every variant names the file or folder at fault ([`Error::path`]); the message starts with
/// it, escaped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("{}: {source}", escape_path(path))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// A file-system call failed during a named step (opening, locking or creating a folder, ...).
    #[error("{}: {step}: {source}", escape_path(path))]
    Step {
        /// The file or folder.
        path: PathBuf,
        /// What kubepki was doing.
        step: Step,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder kubepki refuses to use as it is (see [`Refusal`]).
    #[error("{}: {reason}", escape_path(path))]
    Refused {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: Refusal,
    },
    /// A file that would be overwritten.
    #[error(
        "{}: already exists (kubepki never overwrites a file unless asked)",
        escape_path(path)
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A symbolic link where a file is to be written.
    #[error(
        "{}: is a symbolic link; kubepki does not write through links",
        escape_path(path)
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Another process holds the lock on a folder for longer than kubepki waits.
    #[error(
        "{}: another kubepki process is using this folder (waited {} s); try again when it has finished",
        escape_path(path),
        waited.as_secs()
    )]
    Busy {
        /// The folder.
        path: PathBuf,
        /// How long kubepki waited.
        waited: std::time::Duration,
    },
    /// A recovery journal that is not exactly what kubepki writes: nothing in it was acted on.
    #[error(
        "{}: refused to recover from this journal ({reason}); nothing in it was acted on. Inspect it and remove it by hand",
        escape_path(path)
    )]
    Journal {
        /// The journal.
        path: PathBuf,
        /// What is wrong with it (one of the rules of `docs/architecture.md`, "Journals and
        /// recovery").
        reason: String,
    },
    /// A recovery journal that cannot be opened or read: nothing in it was acted on.
    #[error(
        "{}: refused to recover from this journal ({step}: {source}); nothing in it was acted on. Inspect it and remove it by hand",
        escape_path(path)
    )]
    JournalUnreadable {
        /// The journal.
        path: PathBuf,
        /// What failed.
        step: JournalStep,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// The system's random generator failed (names of temporary files and journals).
    #[error("random number generation failed")]
    Random,
}

impl Error {
    /// The file or folder this error is about (empty for [`Error::Random`]).
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Step { path, .. }
            | Error::Refused { path, .. }
            | Error::Exists { path }
            | Error::Symlink { path }
            | Error::Busy { path, .. }
            | Error::Journal { path, .. }
            | Error::JournalUnreadable { path, .. } => path,
            Error::Random => Path::new(""),
        }
    }

    /// The message without the leading file name: what is wrong with [`Error::path`], for
    /// callers that print the file their own way.
    pub fn detail(&self) -> String {
        match self {
            Error::Io { source, .. } => source.to_string(),
            Error::Step { step, source, .. } => format!("{step}: {source}"),
            Error::Refused { reason, .. } => reason.to_string(),
            other => {
                let full = other.to_string();
                let prefix = format!("{}: ", escape_path(other.path()));
                match full.strip_prefix(&prefix) {
                    Some(rest) => rest.to_owned(),
                    None => full,
                }
            }
        }
    }
}

/// A step whose file-system call failed ([`Error::Step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Opening an existing folder.
    OpenFolder,
    /// Taking the lock on a folder.
    LockFolder,
    /// Creating the missing folder named here, below the one in the error.
    CreateFolder(OsString),
    /// Opening the folder named here without following a link.
    OpenFolderNoFollow(OsString),
    /// Keeping a second link to a file that is being replaced, to put it back on failure.
    KeepOld,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::OpenFolder => f.write_str("cannot open this folder"),
            Step::LockFolder => f.write_str("cannot lock this folder"),
            Step::CreateFolder(n) => write!(f, "cannot create the folder {}", n.to_string_lossy()),
            Step::OpenFolderNoFollow(n) => write!(
                f,
                "cannot open the folder {} (a link is not followed here)",
                n.to_string_lossy()
            ),
            Step::KeepOld => f.write_str("cannot keep the old file to restore on failure"),
        }
    }
}

/// The step at which a journal could not be read ([`Error::JournalUnreadable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalStep {
    /// Opening it.
    Open,
    /// Looking at what it is.
    Stat,
    /// Reading it.
    Read,
}

impl std::fmt::Display for JournalStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JournalStep::Open => "cannot open",
            JournalStep::Stat => "cannot stat",
            JournalStep::Read => "cannot read",
        })
    }
}

/// Why a file or folder is refused without a failing system call ([`Error::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Something other than a regular file where one is read (`kind`: "a FIFO", ...).
    NotRegularFile {
        /// What it is.
        kind: &'static str,
    },
    /// Something other than a regular file where one is written.
    WrongKind {
        /// What it is.
        kind: &'static str,
    },
    /// Something other than a folder where a private folder is expected.
    NotFolder {
        /// What it is.
        kind: &'static str,
    },
    /// The file changed between looking at it and opening it.
    Replaced,
    /// A file larger than any PKI file.
    TooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// A target path without a file name.
    NotAFileName,
    /// The same target staged twice in one batch.
    NamedTwice,
    /// A missing folder named with `..` or `.`.
    DotFolder,
    /// A missing folder without any existing folder above it.
    NoFolderAbove,
    /// A folder (named here) that was just created or found but cannot be opened.
    CannotOpenFolder(OsString),
    /// An undoable commit of a batch that replaces files.
    NotUndoable,
    /// A helper thread that made files durable panicked.
    FlushPanicked,
    /// An exclusive lock asked for a folder this process holds shared.
    HeldForReading,
    /// A private folder owned by another user.
    OwnedByOther {
        /// Its owner.
        uid: u32,
    },
    /// A private folder that its group or others can write.
    WritableByOthers {
        /// Its permission bits.
        mode: u32,
    },
    /// A file name that is not UTF-8 (journals hold UTF-8 names only).
    NonUtf8Name,
    /// A file name with a tab or newline (journals are tab- and line-separated).
    TabOrNewlineName,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotRegularFile { kind } => write!(f, "is {kind}, not a regular file"),
            Refusal::WrongKind { kind } => write!(f, "is {kind}"),
            Refusal::NotFolder { kind } => write!(f, "is {kind}, not a folder"),
            Refusal::Replaced => f.write_str("was replaced while kubepki opened it"),
            Refusal::TooLarge { max } => {
                write!(f, "larger than the {max}-byte limit for PKI files")
            }
            Refusal::NotAFileName => f.write_str("is not a file name"),
            Refusal::NamedTwice => f.write_str("named twice in one batch"),
            Refusal::DotFolder => f.write_str("cannot create a folder named with \"..\" or \".\""),
            Refusal::NoFolderAbove => f.write_str("no existing folder above it"),
            Refusal::CannotOpenFolder(n) => {
                write!(f, "cannot open the folder {}", n.to_string_lossy())
            }
            Refusal::NotUndoable => f.write_str("a batch that replaces files cannot be undone"),
            Refusal::FlushPanicked => f.write_str("a flushing thread panicked"),
            Refusal::HeldForReading => {
                f.write_str("this process holds the folder for reading; it cannot also write it")
            }
            Refusal::OwnedByOther { uid } => write!(
                f,
                "is owned by user {uid}, not by the user running kubepki: whoever owns it could swap its keys"
            ),
            Refusal::WritableByOthers { mode } => write!(
                f,
                "can be written by its group or others (mode {mode:o}): they could swap its keys; make it 0700"
            ),
            Refusal::NonUtf8Name => f.write_str("file names that are not UTF-8 are not supported"),
            Refusal::TabOrNewlineName => {
                f.write_str("file names with tabs or newlines are not supported")
            }
        }
    }
}
