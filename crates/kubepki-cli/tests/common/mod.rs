//! Running the `kubepki` binary from the CLI tests (each test file uses part of it).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kubepki");

/// One run: exit code and output.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kubepki args...` in `dir`.
pub fn kubepki(dir: &Path, args: &[&str]) -> Result<Run, Box<dyn std::error::Error>> {
    let out = Command::new(BIN).args(args).current_dir(dir).output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
