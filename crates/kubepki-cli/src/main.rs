//! `kubepki`: a thin command-line shell over the kubepki libraries.
#![forbid(unsafe_code)]

mod cmd;
mod init;
mod inspect;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubepki: error: {e}");
            ExitCode::FAILURE
        }
    }
}
