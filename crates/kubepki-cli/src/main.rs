//! `kubepki`: a thin command-line shell over the kubepki libraries.
#![forbid(unsafe_code)]
// Output goes through `out` (write errors are returned, never a panic).
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;
mod certs;
mod cmd;
mod flags;
mod identity;
mod init;
mod inspect;

use std::process::ExitCode;

use clap::Parser;

use crate::cmd::CliError;
use crate::out::{EXIT_BROKEN_PIPE, EXIT_BUSY, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    // The command's own outcome first; a failure to flush the last buffered output only
    // matters when the command itself succeeded.
    let result = cmd::run(cli).and_then(|()| out::flush());
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

/// clap's error text (plain, without colours) with every argument value it quotes escaped as
/// a whole, so that a value holding a newline cannot add a line of its own; what is left is
/// escaped line by line by [`out::diag`].
fn clap_message(e: &clap::Error) -> String {
    let mut text = e.render().to_string();
    for (_, value) in e.context() {
        let values: Vec<&str> = match value {
            clap::error::ContextValue::String(v) => vec![v.as_str()],
            clap::error::ContextValue::Strings(vs) => vs.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for v in values {
            if kubepki_csr::has_unsafe_chars(v) {
                text = text.replace(v, &out::esc(v));
            }
        }
    }
    text
}
