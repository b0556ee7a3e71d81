use std::path::PathBuf;

use thiserror::Error;

use crate::rules::RuleFailure;

/// Errors from the kubeadm layout: inputs, config files, the tree on disk.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A key or PEM problem.
    #[error(transparent)]
    Key(#[from] kubepki_keys::Error),
    /// A file that cannot be written, locked, recovered or read.
    #[error(transparent)]
    Files(#[from] kubepki_files::Error),
    /// A CSR or X.509 encoding problem.
    #[error(transparent)]
    Csr(#[from] kubepki_csr::Error),
    /// A certificate or CA problem.
    #[error(transparent)]
    Ca(#[from] kubepki_ca::Error),
    /// An input value (flag or library field) that is not valid.
    #[error("{field}: {}", kubepki_csr::escape_text(&reason.to_string()))]
    Invalid {
        /// The field, in kubeadm's config spelling (`networking.serviceSubnet`).
        field: String,
        /// What is wrong: the cause, or a sentence.
        #[source]
        reason: Reason,
    },
    /// A kubeadm config file that cannot be used.
    #[error(
        "{}: {}",
        kubepki_csr::escape_path(path),
        kubepki_csr::escape_text(&reason.to_string())
    )]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong (names the document and field).
        #[source]
        reason: Reason,
    },
    /// A file the work needs that is not in the tree: a CA for the certificates it signs, the
    /// key next to its certificate, a file asked for by path.
    #[error(
        "{}: {}",
        kubepki_csr::escape_path(path),
        kubepki_csr::escape_text(reason)
    )]
    MissingFile {
        /// The file that is missing.
        path: PathBuf,
        /// What needs it, and what to do.
        reason: String,
    },
    /// A file whose bytes are not what its place in the tree holds: not PEM, another PEM type,
    /// not a certificate or a private key.
    #[error("{}: {source}", kubepki_csr::escape_path(path))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        #[source]
        source: Box<Error>,
    },
    /// An existing file that fails rules a reused file must meet (the rules `verify` checks):
    /// for example its SANs are not the plan's ([`crate::Rule::Sans`]).
    #[error(
        "{}: cannot be reused: {}; {}",
        kubepki_csr::escape_path(path),
        kubepki_csr::escape_text(&failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
        kubepki_csr::escape_text(remedy)
    )]
    NotReusable {
        /// The file.
        path: PathBuf,
        /// Every rule it fails.
        failures: Vec<RuleFailure>,
        /// What to do about it.
        remedy: String,
    },
    /// A file of the tree that exists but cannot be used, for another reason than those above.
    #[error(
        "{}: {}",
        kubepki_csr::escape_path(path),
        kubepki_csr::escape_text(&reason.to_string())
    )]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong: the cause, or a sentence.
        #[source]
        reason: Reason,
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
    /// External-CA mode after `certs generate-csr`: keys whose CSRs the CA holder has not signed
    /// yet (deleting those keys would orphan the CSRs at the CA).
    #[error(
        "external CA mode ({}): these CSRs await signing by the CA holder: {}; keep their keys (removing one orphans its CSR), have the CSRs signed where the CA keys are (`kubepki certs sign-csrs --ca-cert ca.crt --ca-key ca.key [--front-proxy-ca-cert ... --etcd-ca-cert ...]` with this node's flags), bring the results back and run init again{}",
        cas.join(", "),
        csrs.iter().map(|p| kubepki_csr::escape_path(p).into_owned()).collect::<Vec<_>>().join(", "),
        if missing.is_empty() { String::new() } else { format!("; also missing: {}", missing.join("; ")) }
    )]
    AwaitingSignature {
        /// The keyless CA certificates.
        cas: Vec<String>,
        /// The CSR files whose certificates are not there yet.
        csrs: Vec<PathBuf>,
        /// Other items missing in this mode (as in [`Error::ExternalCaIncomplete`]).
        missing: Vec<String>,
    },
    /// `sign_csrs` found CSRs (or already issued certificates) that are not what the plan says
    /// for their file; nothing was written.
    #[error(
        "refusing to sign, nothing was written: {}",
        refused.iter().map(|(p, why)| format!("{}: {}", kubepki_csr::escape_path(p), kubepki_csr::escape_text(why))).collect::<Vec<_>>().join("; ")
    )]
    Refused {
        /// Each refused file, with its differences from the plan.
        refused: Vec<(PathBuf, String)>,
    },
    /// Renewal through an external CA (`renew --csr-only`, `sign-csrs --csr-dir`,
    /// `renew --from-csr-dir`) refused files; nothing was written (docs/certs.md, "Renewal
    /// through an external CA").
    #[error(
        "refusing the renewal, nothing was written: {}",
        refused.iter().map(|(p, why)| format!("{}: {}", kubepki_csr::escape_path(p), kubepki_csr::escape_text(why))).collect::<Vec<_>>().join("; ")
    )]
    RenewalRefused {
        /// Each refused file, with why.
        refused: Vec<(PathBuf, String)>,
    },
    /// A CA given to `sign_csrs` for a role whose subject is not that role's.
    #[error(
        "given as {role}, but it is \"{subject}\"{}; {role} must be \"{want}\"",
        match is { Some(r) => format!(" (the subject of {r})"), None => String::new() }
    )]
    CaRole {
        /// The role it was given for (`ca`, `front-proxy-ca`, `etcd-ca`).
        role: &'static str,
        /// Its subject.
        subject: String,
        /// The subject the plan gives that role.
        want: String,
        /// The role whose subject it has, if any.
        is: Option<&'static str>,
    },
    /// Existing files that cannot be reused, every one of them: `init` reports them all in one
    /// run (a single one is reported as its own error).
    #[error(
        "{} existing files cannot be reused: {}",
        problems.len(),
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")
    )]
    Unusable {
        /// One error per file (or per external-CA summary).
        problems: Vec<Error>,
    },
    /// No advertise address was given (`localAPIEndpoint.advertiseAddress`) and none could be
    /// derived from this machine.
    #[error("no advertise address: set localAPIEndpoint.advertiseAddress; {reason}")]
    NoAdvertiseAddress {
        /// Why derivation failed.
        reason: String,
    },
    /// No node name was given (`nodeRegistration.name`) and none could be derived from this
    /// machine's hostname.
    #[error("no node name: set nodeRegistration.name; {reason}")]
    NoNodeName {
        /// Why derivation failed.
        reason: String,
    },
    /// A kubepki process was killed while writing this tree, and its batch is not completed
    /// yet: a read-only command reports it instead of changing the tree.
    #[error(
        "{}: an interrupted kubepki left a batch of files half moved into place; run a command that writes this tree (`kubepki init`, or `kubepki certs renew` for a renewal) to complete it",
        kubepki_csr::escape_path(journal)
    )]
    RecoveryPending {
        /// The journal of the unfinished batch.
        journal: PathBuf,
    },
    /// A CA rotation phase that cannot run at a target's stage (docs/rotation.md): the phases
    /// go start, reissue, finish; nothing was written.
    #[error(
        "{target}: the rotation is at stage {stage}; phase {phase} cannot run now: {}",
        match next { Some(n) => format!("the next phase is {n}"), None => "no rotation is in progress".to_owned() }
    )]
    RotationOrder {
        /// What is being rotated.
        target: crate::rotate::RotationTarget,
        /// Its stage, read from its files.
        stage: crate::rotate::RotationStage,
        /// The phase asked for.
        phase: crate::rotate::RotationPhase,
        /// The phase to run next.
        next: Option<crate::rotate::RotationPhase>,
    },
    /// A CA rotation phase refused for several reasons (each target's, each file's); nothing
    /// was written.
    #[error(
        "phase {phase} refused, nothing was written: {}",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")
    )]
    RotationRefused {
        /// The phase.
        phase: crate::rotate::RotationPhase,
        /// One error per target or file.
        problems: Vec<Error>,
    },
    /// An unknown phase name.
    #[error(
        "unknown {kind} \"{}\"; valid: {valid}",
        kubepki_csr::escape_text(given)
    )]
    UnknownName {
        /// `certificate` or `kubeconfig`.
        kind: &'static str,
        /// What was given.
        given: String,
        /// The valid names.
        valid: String,
    },
}

impl Error {
    /// The errors this one stands for: the problems of [`Error::Unusable`] (every file `init`
    /// found unusable), or this error alone.
    ///
    /// ```
    /// # use kubepki_kubeadm::{Error, Rule};
    /// fn san_mismatches(e: &Error) -> usize {
    ///     e.problems()
    ///         .filter(|p| matches!(p, Error::NotReusable { failures, .. }
    ///             if failures.iter().any(|f| f.rule == Rule::Sans)))
    ///         .count()
    /// }
    /// # let _ = san_mismatches;
    /// ```
    pub fn problems(&self) -> impl Iterator<Item = &Error> {
        let many = match self {
            Error::Unusable { problems } | Error::RotationRefused { problems, .. } => {
                problems.as_slice()
            }
            one => std::slice::from_ref(one),
        };
        many.iter()
    }

    /// The file this error is about, for the errors that name one file (a missing, malformed,
    /// unusable or not reusable file, a config file).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::MissingFile { path, .. }
            | Error::Malformed { path, .. }
            | Error::NotReusable { path, .. }
            | Error::File { path, .. }
            | Error::Config { path, .. } => Some(path),
            Error::Files(e) => Some(e.path()).filter(|p| !p.as_os_str().is_empty()),
            Error::RecoveryPending { journal } => Some(journal),
            _ => None,
        }
    }

    /// `problems` as one error: the error itself when there is one.
    pub(crate) fn unusable(mut problems: Vec<Error>) -> Error {
        if problems.len() == 1
            && let Some(one) = problems.pop()
        {
            return one;
        }
        Error::Unusable { problems }
    }
}

/// What is wrong with a value ([`Error::Invalid`]), a config file ([`Error::Config`]) or a file
/// of the tree ([`Error::File`]): the underlying error when there is one, else a sentence.
///
/// The sentences ([`Reason::Text`]) explain why a value breaks a rule of kubeadm's or of
/// kubepki's (docs/architecture.md, "Errors"): they are for people, not for matching; every
/// cause a caller could act on is a variant of its own.
///
/// A reason's text quotes values as found (reports put it in their JSON `error` fields);
/// [`enum@Error`]'s message shows it through [`kubepki_csr::escape_text`]. A caller that shows
/// an error's source chain to a person escapes each level the same way.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Reason {
    /// Why a value breaks a rule, in words.
    #[error("{0}")]
    Text(String),
    /// A name that is not a lower-case RFC 1123 subdomain.
    #[error("{0}")]
    Name(#[source] kubepki_csr::SubdomainProblem),
    /// A key or PEM problem (boxed, as the other library errors here, to keep [`enum@Error`] small).
    #[error("{0}")]
    Key(#[source] Box<kubepki_keys::Error>),
    /// A CSR or X.509 encoding problem.
    #[error("{0}")]
    Csr(#[source] Box<kubepki_csr::Error>),
    /// A certificate or CA problem.
    #[error("{0}")]
    Ca(#[source] Box<kubepki_ca::Error>),
    /// JSON that does not parse or has another shape.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// A file that cannot be read (the file is named by the error that holds this reason, so
    /// its text is [`kubepki_files::Error::detail`]).
    #[error("{}", .0.detail())]
    Read(#[source] Box<kubepki_files::Error>),
    /// A file-writer or reader error, shown whole (it names its own file).
    #[error("{0}")]
    Files(#[source] Box<kubepki_files::Error>),
    /// A `kubernetesVersion` that cannot be used.
    #[error("\"{given}\": {problem}")]
    Version {
        /// The text given.
        given: String,
        /// What is wrong with it.
        problem: VersionProblem,
    },
    /// A file-system call that failed (on the file the error names).
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// A file-system operation that failed, and what it was.
    #[error("{action}: {source}")]
    IoStep {
        /// What was being done (`cannot remove it`).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A cause, within a part of the file or value (`client-key-data`).
    #[error("{context}: {source}")]
    Within {
        /// The part.
        context: String,
        /// The cause.
        #[source]
        source: Box<Reason>,
    },
    /// Another error of this crate, about the same file.
    #[error("{0}")]
    Nested(#[source] Box<Error>),
}

impl Reason {
    /// `cause` within `context`: shown `context: cause`.
    pub fn within(context: impl Into<String>, cause: impl Into<Reason>) -> Reason {
        Reason::Within {
            context: context.into(),
            source: Box::new(cause.into()),
        }
    }

    /// A failed file-system operation: shown `action: error`.
    pub fn io(action: &'static str, source: std::io::Error) -> Reason {
        Reason::IoStep { action, source }
    }
}

/// Why a text is not a Kubernetes version kubepki can plan for ([`Reason::Version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VersionProblem {
    /// A number too large.
    #[error("number out of range")]
    OutOfRange,
    /// Not of the form `v1.31.2`.
    #[error("expected a version like v1.31.2")]
    NotAVersion,
    /// A version older than kubepki knows ([`crate::OLDEST_KNOWN`]).
    #[error("kubepki knows kubeadm's behaviour from {} on", crate::OLDEST_KNOWN)]
    TooOld,
    /// A major version other than 1.
    #[error("only Kubernetes 1.x exists")]
    NotOneX,
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason::Text(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Reason::Text(s.to_owned())
    }
}

impl From<std::io::Error> for Reason {
    fn from(e: std::io::Error) -> Self {
        Reason::Io(e)
    }
}

impl From<kubepki_files::Error> for Reason {
    fn from(e: kubepki_files::Error) -> Self {
        Reason::Files(Box::new(e))
    }
}

impl From<kubepki_csr::SubdomainProblem> for Reason {
    fn from(e: kubepki_csr::SubdomainProblem) -> Self {
        Reason::Name(e)
    }
}

impl From<kubepki_keys::Error> for Reason {
    fn from(e: kubepki_keys::Error) -> Self {
        Reason::Key(Box::new(e))
    }
}

impl From<kubepki_csr::Error> for Reason {
    fn from(e: kubepki_csr::Error) -> Self {
        Reason::Csr(Box::new(e))
    }
}

impl From<kubepki_ca::Error> for Reason {
    fn from(e: kubepki_ca::Error) -> Self {
        Reason::Ca(Box::new(e))
    }
}

impl From<serde_json::Error> for Reason {
    fn from(e: serde_json::Error) -> Self {
        Reason::Json(e)
    }
}

impl From<Error> for Reason {
    fn from(e: Error) -> Self {
        Reason::Nested(Box::new(e))
    }
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<Reason>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(crate) fn file_err(path: impl Into<PathBuf>, reason: impl Into<Reason>) -> Error {
    Error::File {
        path: path.into(),
        reason: reason.into(),
    }
}

pub(crate) fn missing(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::MissingFile {
        path: path.into(),
        reason: reason.into(),
    }
}

pub(crate) fn malformed(path: impl Into<PathBuf>, source: impl Into<Error>) -> Error {
    Error::Malformed {
        path: path.into(),
        source: Box::new(source.into()),
    }
}
