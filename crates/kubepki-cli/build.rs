//! Build facts for `kubepki version` (docs/install.md): the git commit, the aws-lc-rs and AWS-LC
//! versions and the Rust compiler, as `KUBEPKI_*` compile-time environment variables. Whatever
//! cannot be found is "unknown"; the build never fails for it (only for a
//! `KUBEPKI_GIT_COMMIT` that is not a plain word: src/build_commit.rs).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/build_commit.rs"]
mod build_commit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/build_commit.rs");
    println!("cargo:rerun-if-env-changed=KUBEPKI_GIT_COMMIT");
    let commit = match std::env::var("KUBEPKI_GIT_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => git_commit().unwrap_or_else(|| "unknown".into()),
    };
    // A value given by hand that is not a plain word fails the build: written as it is, a line
    // break in it would add cargo directives of its own (src/build_commit.rs).
    match build_commit::checked(&commit) {
        Ok(c) => println!("cargo:rustc-env=KUBEPKI_GIT_COMMIT={c}"),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::exit(1);
        }
    }

    let (rs, awslc) = aws_lc();
    println!("cargo:rustc-env=KUBEPKI_AWS_LC_RS_VERSION={rs}");
    println!("cargo:rustc-env=KUBEPKI_AWS_LC_VERSION={awslc}");

    let rustc = std::env::var_os("RUSTC")
        .and_then(|r| Command::new(r).arg("-V").output().ok())
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KUBEPKI_RUSTC_VERSION={rustc}");
    println!(
        "cargo:rustc-env=KUBEPKI_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // A checkout owned by another user (a CI container) is still read: only HEAD is asked for.
    let out = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// HEAD's commit, and the files whose change moves it watched: HEAD of this checkout (in a
/// worktree, `.git` is a file and HEAD lives in the main repository's `worktrees/NAME`), the
/// branch's ref and `packed-refs` (both in the common folder). Only files that exist are
/// watched: cargo re-runs a build script on every build when a watched file is missing.
fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let commit = git(&dir, &["rev-parse", "HEAD"])?;
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    let git_dir = abs(git(&dir, &["rev-parse", "--git-dir"])?);
    let common = abs(git(&dir, &["rev-parse", "--git-common-dir"])?);
    let mut watch = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(common.join(r));
    }
    for w in watch.iter().filter(|w| w.exists()) {
        println!("cargo:rerun-if-changed={}", w.display());
    }
    Some(commit)
}

/// aws-lc-rs's version and AWS-LC's, from the include folder aws-lc-rs exports to its direct
/// dependents (`DEP_AWS_LC_RS_<version>_SYS_INCLUDE`): `AWSLC_VERSION_NUMBER_STRING` in
/// `openssl/base.h`.
fn aws_lc() -> (String, String) {
    let unknown = || "unknown".to_owned();
    for (name, value) in std::env::vars() {
        let Some(v) = name
            .strip_prefix("DEP_AWS_LC_RS_")
            .and_then(|n| n.strip_suffix("_SYS_INCLUDE"))
        else {
            continue;
        };
        let rs = v.replace('_', ".");
        let base = Path::new(&value).join("openssl").join("base.h");
        println!("cargo:rerun-if-changed={}", base.display());
        let awslc = std::fs::read_to_string(&base)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    let rest = l.strip_prefix("#define AWSLC_VERSION_NUMBER_STRING")?;
                    Some(rest.trim().trim_matches('"').to_owned())
                })
            })
            .unwrap_or_else(unknown);
        return (rs, awslc);
    }
    (unknown(), unknown())
}
