//! A fresh SoftHSM2 token for a test, shared by the test crates: kubepki-interop exports it
//! (the CLI's tests use it from there), and `crates/kubepki-pkcs11/tests/softhsm.rs` includes
//! this file by path, since kubepki-interop depends on kubepki-pkcs11. Only `std` and
//! `tempfile` are used here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of the token [`with_softhsm_token`] makes.
pub const SOFTHSM_PIN: &str = "Us3r-PIN-4417";
const SOFTHSM_CHILD: &str = "KUBEPKI_SOFTHSM_TEST_CHILD";

/// Whether SoftHSM2 (its module and `softhsm2-util`) is installed. When it is not, says the
/// test is skipped, except under CI (`CI` set), where that is a failure.
pub fn softhsm_installed() -> bool {
    let available = Path::new(SOFTHSM_MODULE).exists()
        && Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install softhsm2 ({SOFTHSM_MODULE}, softhsm2-util)"
        );
        eprintln!("skipped: SoftHSM2 is not installed");
    }
    available
}

/// A SoftHSM2 configuration in `dir` (its tokens in `dir/tokens`) with one fresh token
/// labelled `T` (user PIN [`SOFTHSM_PIN`]); returns the configuration file, the value for
/// `SOFTHSM2_CONF`.
pub fn softhsm_token(dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let tokens = dir.join("tokens");
    fs::create_dir(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "T",
            "--pin",
            SOFTHSM_PIN,
        ])
        .args(["--so-pin", "S0-PIN-8832"])
        .env("SOFTHSM2_CONF", &conf)
        .output()?;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok(conf)
}

/// Runs `body` with a fresh SoftHSM2 token labelled `T` (user PIN [`SOFTHSM_PIN`]) in a child
/// process of this test binary running only the test `test`: SoftHSM2 reads `SOFTHSM2_CONF`
/// once per process. Without SoftHSM2 the test is skipped, except under CI (`CI` set), where
/// that is a failure.
pub fn with_softhsm_token(
    test: &str,
    body: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(SOFTHSM_CHILD).is_some() {
        return body();
    }
    if !softhsm_installed() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let conf = softhsm_token(dir.path())?;
    let out = Command::new(std::env::current_exe()?)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SOFTHSM_CHILD, "1")
        .env("SOFTHSM2_CONF", &conf)
        .output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {test} failed:\n{stdout}\n{stderr}"
    );
    Ok(())
}
