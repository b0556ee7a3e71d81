//! Release chores behind cargo aliases (`.cargo/config.toml`; docs/install.md):
//!
//! * `cargo dist-static [--profile NAME]`: `kubepki` for x86_64 Linux as a statically linked
//!   executable (glibc `crt-static`, without the `pkcs11` feature: docs/hsm.md) at
//!   `target/dist/kubepki-VERSION-x86_64-linux`, with `.sha256` (the `sha256sum -c` format) and
//!   `.build-info` (the toolchain, aws-lc-rs and AWS-LC it was built with) next to it.
//! * `cargo dist-man`: the man pages, one per command and subcommand, in `target/dist/man/`.
//!
//! Not published; it runs cargo and the built binary, and writes through `kubepki_files`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use kubepki_files::{FileBatch, MODE_PUBLIC};

/// The one target of the release binary.
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The one definition of how the static binary is built (`benches/compare.sh` uses it too).
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["dist-static"] => dist_static("release"),
        ["dist-static", "--profile", profile] => dist_static(profile),
        ["dist-man"] => dist_man(),
        _ => Err("usage: cargo dist-static [--profile NAME] | cargo dist-man".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn run(cmd: &mut Command) -> Res<()> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {status}"))
    }
}

fn output(cmd: &mut Command) -> Res<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{cmd:?}: {e}"))
}

fn dist_static(profile: &str) -> Res<()> {
    let root = root();
    run(Command::new(cargo())
        .current_dir(&root)
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .args([
            "build",
            "--locked",
            "--profile",
            profile,
            "-p",
            "kubepki-cli",
        ])
        .args([
            "--bin",
            "kubepki",
            "--no-default-features",
            "--target",
            TARGET,
        ]))?;
    let dir = if profile == "dev" { "debug" } else { profile };
    let built = target_dir().join(TARGET).join(dir).join("kubepki");
    let bin = std::fs::read(&built).map_err(|e| format!("{}: {e}", built.display()))?;
    check_static(&bin).map_err(|e| format!("{}: {e}", built.display()))?;

    let info = output(
        Command::new(&built)
            .args(["version", "-o", "json"])
            .env_clear(),
    )?;
    let version = json_field(&info, "version").ok_or("kubepki version: no version")?;
    let name = format!("kubepki-{version}-x86_64-linux");
    let dist = target_dir().join("dist");
    let path = dist.join(&name);
    let hex = kubepki_keys::sha256_hex(&bin);
    // One crash-safe batch (docs/architecture.md, "Writing files"), replacing an earlier build.
    let mut batch = FileBatch::overwriting();
    let mut stage = |file: &Path, contents: &[u8], mode: u32| {
        batch.stage(file, contents, mode).map_err(|e| e.to_string())
    };
    stage(&path, &bin, 0o755)?;
    // sha256sum's format: the digest, two spaces (text mode), the file name.
    stage(
        &dist.join(format!("{name}.sha256")),
        format!("{hex}  {name}\n").as_bytes(),
        MODE_PUBLIC,
    )?;

    let rustc = output(Command::new("rustc").arg("-vV"))?;
    let cargo_v = output(Command::new(cargo()).arg("-V"))?;
    let build_info = format!(
        "file: {name}\nsha256: {hex}\nprofile: {profile}\nrustflags: {STATIC_RUSTFLAGS}\nfeatures: no default features (no pkcs11)\n{cargo_v}{rustc}\nkubepki version -o json:\n{info}"
    );
    stage(
        &dist.join(format!("{name}.build-info")),
        build_info.as_bytes(),
        MODE_PUBLIC,
    )?;
    batch.commit().map_err(|e| e.to_string())?;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "wrote {} (static, sha256 {hex})", path.display());
    let _ = writeln!(
        o,
        "verify: cd {} && sha256sum -c {name}.sha256",
        dist.display()
    );
    Ok(())
}

/// `"key": "value"` from `kubepki version -o json` (one field per line).
fn json_field(json: &str, key: &str) -> Option<String> {
    let prefix = format!("\"{key}\": \"");
    json.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&prefix)?
            .split('"')
            .next()
            .map(str::to_owned)
    })
}

/// Refuses an executable the kernel would hand to a dynamic loader: an ELF64 program header
/// table with PT_INTERP, or a dynamic section naming a shared library (DT_NEEDED). A static-pie
/// keeps a dynamic section for relocating itself, with no DT_NEEDED.
fn check_static(elf: &[u8]) -> Res<()> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    // Every read is bounds-checked: a malformed file is an error, never a panic.
    let bytes = |o: usize, n: usize| o.checked_add(n).and_then(|end| elf.get(o..end));
    let u16_at = |o: usize| {
        bytes(o, 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let u32_at = |o: usize| {
        bytes(o, 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let usize_at = |o: usize| {
        bytes(o, 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .and_then(|v| usize::try_from(v).ok())
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err("not a little-endian ELF64 file".into());
    }
    let bad = || "malformed ELF headers".to_string();
    let phoff = usize_at(0x20).ok_or_else(bad)?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        let ph = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(bad)?;
        match u32_at(ph).ok_or_else(bad)? {
            PT_INTERP => return Err("has a program interpreter (dynamically linked)".into()),
            PT_DYNAMIC => {
                let off = usize_at(ph.saturating_add(8)).ok_or_else(bad)?;
                let size = usize_at(ph.saturating_add(32)).ok_or_else(bad)?;
                let table = bytes(off, size).ok_or_else(bad)?;
                // Elf64_Dyn: d_tag (8 bytes), d_un (8 bytes).
                for entry in table.chunks_exact(16) {
                    if entry.get(..8) == Some(DT_NEEDED.to_le_bytes().as_slice()) {
                        return Err("needs a shared library (DT_NEEDED)".into());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn dist_man() -> Res<()> {
    let out = target_dir().join("dist").join("man");
    run(Command::new(cargo())
        .current_dir(root())
        .args([
            "run",
            "--locked",
            "--quiet",
            "-p",
            "kubepki-cli",
            "--bin",
            "kubepki",
            "--",
        ])
        .arg("man-pages")
        .arg("--out-dir")
        .arg(&out))
}

#[cfg(test)]
mod tests {
    use super::check_static;

    /// The test executable itself is dynamically linked (cargo's default): refused. The static
    /// case is checked on the real binary by crates/kubepki-cli/tests/release.rs with readelf.
    #[test]
    fn a_dynamic_executable_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let me = std::fs::read(std::env::current_exe()?)?;
        let Err(e) = check_static(&me) else {
            return Err("a dynamic executable passed".into());
        };
        assert!(e.contains("interpreter"), "{e}");
        assert!(check_static(b"#!/bin/sh\n").is_err());
        assert!(check_static(&me[..0x30]).is_err());
        Ok(())
    }
}
