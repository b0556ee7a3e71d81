//! Helpers for the interop tests: run real external tools and report their output.
//!
//! The tools (`openssl`, GnuTLS `certtool`) are required: `.ci/run` installs them, and a test
//! that needs a missing tool fails with the install hint instead of skipping.

use std::path::Path;
use std::process::Command;

/// The result of one external command.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it exited 0.
    pub ok: bool,
    /// stdout + stderr.
    pub output: String,
}

/// Runs `tool` with `args` in `dir`. A missing tool is an error naming the Debian package.
pub fn run(dir: &Path, tool: &str, args: &[&str]) -> Result<Outcome, String> {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{tool}` ({e}); install it (Debian: apt-get install openssl gnutls-bin)"
            )
        })?;
    Ok(Outcome {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Runs and requires success.
pub fn run_ok(dir: &Path, tool: &str, args: &[&str]) -> Result<String, String> {
    let o = run(dir, tool, args)?;
    if o.ok {
        Ok(o.output)
    } else {
        Err(format!("`{tool} {}` failed:\n{}", args.join(" "), o.output))
    }
}
