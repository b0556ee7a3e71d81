//! Every byte the CLI prints goes through here. Writing to standard output returns an error
//! instead of panicking as `println!` does: a reader that went away (`kubepki ... | head`)
//! ends the command quietly with [`EXIT_BROKEN_PIPE`] (docs/certs.md, "Exit codes").

use std::fmt::Arguments;
use std::io::Write;

use crate::cmd::CliError;

/// Exit status when standard output is a pipe whose reader has gone: 128 + SIGPIPE (13), what
/// a shell reports for a program the signal ended (`yes | head -1` under `set -o pipefail`).
/// kubepki's runtime ignores the signal, so it sees the write error and exits with the same
/// status itself.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Exit status of a command line that cannot be used (unknown flag, missing or bad value):
/// `EX_USAGE` of sysexits(3), distinct from every result code a command reports.
pub const EXIT_USAGE: u8 = 64;

/// Exit status when another kubepki process held the tree's lock for longer than kubepki waits
/// (60 s): `EX_TEMPFAIL` of sysexits(3), "try again later"; never a result code.
pub const EXIT_BUSY: u8 = 75;

/// Writes `args` to standard output.
pub fn text(args: Arguments<'_>) -> Result<(), CliError> {
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(CliError::Stdout)
}

/// Writes `args` and a newline to standard output.
pub fn line(args: Arguments<'_>) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args)
        .and_then(|()| o.write_all(b"\n"))
        .map_err(CliError::Stdout)
}

/// Writes `bytes` to standard output as they are (an export).
pub fn bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)
        .and_then(|()| o.flush())
        .map_err(CliError::Stdout)
}

/// Pushes out whatever standard output still buffers.
pub fn flush() -> Result<(), CliError> {
    std::io::stdout().lock().flush().map_err(CliError::Stdout)
}

/// A diagnostic line on standard error. A failure to write it is ignored: there is nowhere
/// left to report it, and the exit status still tells the outcome.
pub fn diag(args: Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `println!` that returns a [`CliError`] instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::out::line(format_args!($($t)*))
    };
}

/// `print!` that returns a [`CliError`] instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::out::text(format_args!($($t)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! diag {
    ($($t:tt)*) => {
        $crate::out::diag(format_args!($($t)*))
    };
}
