//! `kubepki`: a thin command-line shell over the kubepki libraries.
#![forbid(unsafe_code)]
// Output goes through `out` (write errors are returned, never a panic).
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;
mod certs;
mod cmd;
mod flags;
mod hsm;
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
            diag!("kubepki: error: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Busy(msg)) => {
            diag!("kubepki: error: {msg}");
            ExitCode::from(EXIT_BUSY)
        }
        Err(e) => {
            diag!("kubepki: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` print to standard output and exit 0; a command line that cannot be
/// used is reported on standard error with [`EXIT_USAGE`] (clap's own default, 2, is a result
/// code of `certs check-expiration`).
fn clap_exit(e: &clap::Error) -> ExitCode {
    let printed = e.print();
    if !e.use_stderr() {
        return match printed {
            Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::from(EXIT_BROKEN_PIPE)
            }
            Err(_) => ExitCode::FAILURE,
            Ok(()) => ExitCode::SUCCESS,
        };
    }
    ExitCode::from(EXIT_USAGE)
}
