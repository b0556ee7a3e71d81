//! Every byte the CLI prints goes through here. Writing to standard output returns an error
//! instead of panicking as `println!` does: a reader that went away (`kubepki ... | head`)
//! ends the command quietly with [`EXIT_BROKEN_PIPE`] (docs/certs.md, "Exit codes").
//!
//! Text reaches the terminal only through [`kubepki_csr::escape`]: every value that came from
//! an input file or a flag is escaped where it is formatted ([`esc`], [`esc_path`]), so that a
//! name holding a newline cannot start a line of its own; and [`line()`], [`text()`] and [`diag()`]
//! escape whatever control or bidirectional formatting character is left in what they write,
//! except the newlines that end lines (docs/security.md, "What a reviewer sees is what the file says"). Exports
//! ([`bytes`]) are data and go out as they are, except the JSON export, which goes through
//! [`json`] as every JSON output does (the same value, safe on a terminal).

use std::borrow::Cow;
use std::fmt::{Arguments, Write as _};
use std::io::Write;
use std::path::Path;

use kubepki_csr::escape::{escape, escape_path, is_unsafe_char};

use crate::errors::CliError;

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

/// An untrusted value (a name, a SAN, a value read from a file or given as a flag) as shown
/// in text output: control and bidirectional formatting characters escaped.
pub fn esc(s: &str) -> Cow<'_, str> {
    escape(s)
}

/// A path as shown in text output ([`esc`] of its bytes).
pub fn esc_path(p: &Path) -> Cow<'_, str> {
    escape_path(p)
}

/// `s` with every line's content escaped, the newlines between lines kept: what [`line()`],
/// [`text()`] and [`diag()`] write.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

/// JSON text (from `serde_json`, which escapes C0 controls) with DEL, C1 controls and the
/// bidirectional formatting characters also written as `\uXXXX` escapes: the same JSON value,
/// safe on a terminal.
pub fn json(text: &str) -> Cow<'_, str> {
    // C0 controls occur only as the layout's newlines: serde_json escapes them in strings.
    let escaped = |c: char| c > '\u{7e}' && is_unsafe_char(c);
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    // Sized exactly, so that the text (an export may hold private keys) is never copied into
    // a buffer that is then given back unzeroed.
    let extra: usize = text
        .chars()
        .filter(|c| escaped(*c))
        .map(|c| 6 - c.len_utf8())
        .sum();
    let mut out = String::with_capacity(text.len() + extra);
    for c in text.chars() {
        if escaped(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `args` to standard output.
pub fn text(args: Arguments<'_>) -> Result<(), CliError> {
    let s = args.to_string();
    std::io::stdout()
        .lock()
        .write_all(terminal_safe(&s).as_bytes())
        .map_err(CliError::Stdout)
}

/// Writes `args` and a newline to standard output.
pub fn line(args: Arguments<'_>) -> Result<(), CliError> {
    let s = args.to_string();
    let mut o = std::io::stdout().lock();
    o.write_all(terminal_safe(&s).as_bytes())
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
    let s = args.to_string();
    let _ = writeln!(std::io::stderr().lock(), "{}", terminal_safe(&s));
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
