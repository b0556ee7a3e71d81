//! `kubepki`: a thin command-line shell over the kubepki libraries.
#![forbid(unsafe_code)]

mod certs;
mod cmd;
mod flags;
mod identity;
mod init;
mod inspect;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cmd::CliError::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("kubepki: error: {e}");
            ExitCode::FAILURE
        }
    }
}
