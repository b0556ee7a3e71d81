//! `kubepki`: a thin command-line shell over the kubepki libraries.
#![forbid(unsafe_code)]
// Output goes through `out` (write errors are returned, never a panic).
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;
#[cfg(test)]
mod build_commit;
mod certs;
mod cfssl;
mod cmd;
mod errors;
mod flags;
mod hsm;
mod identity;
mod init;
mod inspect;
mod meta;
mod progress;
mod renew_csr;
mod rotate;

use std::process::ExitCode;

use clap::Parser;

use crate::out::{EXIT_BROKEN_PIPE, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    // The command's own outcome first; a failure to flush the last buffered output only
    // matters when the command itself succeeded.
    let result = cmd::run(cli).and_then(|()| out::flush());
    errors::exit_code(result)
}

/// `--help` and `--version` print to standard output and exit 0; a command line that cannot be
/// used is reported on standard error with [`EXIT_USAGE`] (clap's own default, 2, is a result
/// code of `certs check-expiration`).
fn clap_exit(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        diag!("{}", clap_message(e).trim_end_matches('\n'));
        return ExitCode::from(EXIT_USAGE);
    }
    match e.print() {
        Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(_) => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

/// clap's error text (plain, without colours). When an argument holds a control or
/// bidirectional formatting character, clap would quote it with its escape sequences stripped
/// but its newlines kept, so a value could add lines of its own: the message is then made here
/// from clap's error kind and context, every value escaped, on one line.
fn clap_message(e: &clap::Error) -> String {
    if let Some(line) = invalid_value_line(e) {
        return line;
    }
    if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
        return invalid_utf8_line(std::env::args_os().skip(1));
    }
    let hostile = std::env::args_os()
        .skip(1)
        .any(|a| kubepki_csr::has_unsafe_chars(&a.to_string_lossy()));
    if !hostile {
        return e.render().to_string();
    }
    let context: Vec<String> = e
        .context()
        .filter(|(kind, _)| *kind != clap::error::ContextKind::Usage)
        .map(|(kind, value)| format!("{kind}: {}", out::esc(&value.to_string())))
        .collect();
    let what = e
        .kind()
        .as_str()
        .unwrap_or("the command line cannot be used");
    let why = std::error::Error::source(e)
        .map(|s| format!(": {}", out::esc(&s.to_string())))
        .unwrap_or_default();
    format!(
        "error: {what} ({}){why}; values shown escaped\n\nFor more information, try '--help'.",
        context.join("; ")
    )
}

/// A value outside a flag's list (`--algorithm RSA-1024`, `--profile bogus`) is one line, like
/// every other bad input: `kubepki: error: --algorithm: invalid value 'RSA-1024' (valid: …)`,
/// the value escaped. A value the library's parser refuses (`--validity 5x`, a typed value
/// parser) is the library's message: `kubepki: error: --validity: invalid duration "5x"`.
fn invalid_value_line(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() == clap::error::ErrorKind::ValueValidation {
        let arg = e.get(ContextKind::InvalidArg).map(ToString::to_string)?;
        let flag = arg.split_whitespace().next().unwrap_or(&arg);
        let why = std::error::Error::source(e)?;
        return Some(format!(
            "kubepki: error: {}",
            out::esc(&format!("{flag}: {why}"))
        ));
    }
    if e.kind() != clap::error::ErrorKind::InvalidValue {
        return None;
    }
    let mut arg = None;
    let mut value = None;
    let mut valid = Vec::new();
    for (kind, v) in e.context() {
        match (kind, v) {
            (ContextKind::InvalidArg, ContextValue::String(s)) => arg = Some(s.clone()),
            (ContextKind::InvalidValue, ContextValue::String(s)) => value = Some(s.clone()),
            (ContextKind::ValidValue, ContextValue::Strings(list)) => valid.clone_from(list),
            _ => {}
        }
    }
    // "--algorithm <ALGORITHM>" names the flag by its first word.
    let arg = arg?;
    let flag = arg.split_whitespace().next().unwrap_or(&arg);
    let value = value?;
    let valid = if valid.is_empty() {
        String::new()
    } else {
        format!(" (valid: {})", valid.join(", "))
    };
    Some(format!(
        "kubepki: error: {flag}: invalid value '{}'{valid}",
        out::esc(&value)
    ))
}

/// An argument that is not UTF-8 where clap wants text (a typed flag's value, `--algorithm`):
/// one line, like every other bad value, that shows the argument escaped (clap's own message
/// names none): `kubepki: error: invalid UTF-8 was detected in argument 'RSA\xff'`.
fn invalid_utf8_line(mut args: impl Iterator<Item = std::ffi::OsString>) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    match args.find(|a| a.to_str().is_none()) {
        Some(a) => format!(
            "kubepki: error: invalid UTF-8 was detected in argument '{}'",
            kubepki_csr::escape_bytes(a.as_bytes())
        ),
        None => "kubepki: error: invalid UTF-8 was detected in one or more arguments".to_owned(),
    }
}
