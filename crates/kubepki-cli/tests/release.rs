//! What operators get besides the commands (docs/install.md): `version`, the shell completion
//! scripts loaded by the real shells, the man pages rendered by groff and man without a warning,
//! and the static release binary (`cargo dist-static`, which `.ci/run` builds before the tests):
//! no program interpreter, no shared library, and a whole tree written with an empty
//! environment that `verify` and OpenSSL accept.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type R = Result<(), Box<dyn std::error::Error>>;

mod common;
use common::{TREE, kubepki};

/// `true` when `tool` runs; otherwise a failure under CI (`.ci/run` installs it), a skip
/// elsewhere.
fn have(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install {tool} (.ci/run)"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

/// Runs `cmd`; an error with its output unless it succeeded.
fn run(cmd: &mut Command) -> Result<Output, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn version_reports_the_build() -> R {
    let d = tempfile::tempdir()?;
    let r = kubepki(d.path(), &["version", "-o", "json"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["cryptoBackend"], "aws-lc-rs");
    let Some(awslc) = v["awsLcVersion"].as_str() else {
        return Err("no awsLcVersion".into());
    };
    assert!(awslc.split('.').count() == 3, "AWS-LC version {awslc}");
    let Some(commit) = v["gitCommit"].as_str() else {
        return Err("no gitCommit".into());
    };
    // A clean clone (CI) has git: the commit is known there.
    assert!(
        commit.len() == 40 || (commit == "unknown" && std::env::var_os("CI").is_none()),
        "git commit {commit}"
    );
    // The test build is the ordinary dynamically linked one, with PKCS#11.
    assert_eq!(v["staticLinked"], false);
    assert_eq!(v["pkcs11"], true);

    let text = kubepki(d.path(), &["version"])?;
    let long = kubepki(d.path(), &["--version"])?;
    assert_eq!((text.code, long.code), (0, 0));
    assert_eq!(text.stdout, long.stdout, "--version is `kubepki version`");
    for want in [
        format!("kubepki {}\n", env!("CARGO_PKG_VERSION")),
        format!("git commit: {commit}\n"),
        format!(
            "crypto: aws-lc-rs {} (AWS-LC {awslc})\n",
            v["awsLcRsVersion"].as_str().unwrap_or("?")
        ),
        "linkage: dynamic\n".into(),
    ] {
        assert!(text.stdout.contains(&want), "{want:?} in {}", text.stdout);
    }
    let short = kubepki(d.path(), &["-V"])?;
    assert_eq!(
        short.stdout,
        format!("kubepki {}\n", env!("CARGO_PKG_VERSION"))
    );
    Ok(())
}

/// Each script written to a file, checked and really loaded by its shell: a completion asked
/// for `kubepki cert<TAB>` offers `certs`.
#[test]
fn completion_scripts_load_in_their_shells() -> R {
    let d = tempfile::tempdir()?;
    let script = |shell: &str, file: &str| -> Result<PathBuf, Box<dyn std::error::Error>> {
        let r = kubepki(d.path(), &["completion", shell])?;
        assert_eq!(r.code, 0, "completion {shell}: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{}", r.stderr);
        let path = d.path().join(file);
        fs::write(&path, r.stdout)?;
        Ok(path)
    };
    let bash = script("bash", "kubepki.bash")?;
    let zsh_dir = d.path().join("zsh");
    fs::create_dir(&zsh_dir)?;
    let zsh = script("zsh", "zsh/_kubepki")?;
    let fish = script("fish", "kubepki.fish")?;
    script("powershell", "kubepki.ps1")?;
    assert!(kubepki(d.path(), &["completion", "tcsh"])?.code == 64);

    if have("bash", "--version") {
        run(Command::new("bash").arg("-n").arg(&bash))?;
        let out = run(Command::new("bash").arg("-c").arg(
            "set -e; source \"$1\"; COMP_WORDS=(kubepki cert); COMP_CWORD=1; COMP_LINE='kubepki cert'; COMP_POINT=12; _kubepki kubepki cert kubepki; printf '%s\\n' \"${COMPREPLY[@]}\"",
        ).arg("bash").arg(&bash))?;
        assert!(
            text(&out).lines().any(|l| l == "certs"),
            "bash: {}",
            text(&out)
        );
    }
    if have("zsh", "--version") {
        run(Command::new("zsh").arg("-n").arg(&zsh))?;
        // Installed as zsh finds completions: `_kubepki` in a folder of $fpath, registered by
        // compinit from its #compdef line, then loaded.
        let out = run(Command::new("zsh").arg("-f").arg("-c").arg(
            "fpath=(\"$1\" $fpath); autoload -U compinit; compinit -u -D; autoload -Uz +X _kubepki; print -r -- $_comps[kubepki] $+functions[_kubepki]",
        ).arg("zsh").arg(&zsh_dir))?;
        assert_eq!(text(&out), "_kubepki 1\n", "zsh: {:?}", out);
    }
    if have("fish", "--version") {
        run(Command::new("fish").arg("-n").arg(&fish))?;
        let out = run(Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; and complete -C 'kubepki cert'")
            .arg(&fish))?;
        assert!(
            text(&out).lines().any(|l| l.starts_with("certs\t")),
            "fish: {}",
            text(&out)
        );
    }
    Ok(())
}

/// One page per command and subcommand, each rendered by groff (all warnings on) and by
/// `man -l --warnings` without a word on standard error.
#[test]
fn man_pages_render_without_warnings() -> R {
    let d = tempfile::tempdir()?;
    let man_dir = d.path().join("man");
    let r = kubepki(d.path(), &["man-pages", "--out-dir", "man"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut pages: Vec<String> = fs::read_dir(&man_dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    for want in [
        "kubepki.1",
        "kubepki-init.1",
        "kubepki-init-phase-certs.1",
        "kubepki-certs-renew.1",
        "kubepki-ca-rotate.1",
        "kubepki-node-kubelet-serving.1",
        "kubepki-user-create.1",
        "kubepki-completion.1",
        "kubepki-version.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} in {pages:?}");
    }
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("man-pages") || p.contains("help"))
    );
    // Every subcommand `kubepki --help` lists has its page.
    let help = kubepki(d.path(), &["--help"])?;
    for line in help
        .stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
    {
        let Some(name) = line.split_whitespace().next() else {
            break;
        };
        if name != "help" {
            assert!(
                pages.contains(&format!("kubepki-{name}.1")),
                "page of {name}"
            );
        }
    }
    if !have("groff", "--version") || !have("man", "--version") {
        return Ok(());
    }
    for page in &pages {
        let path = man_dir.join(page);
        let out = run(Command::new("groff")
            .args(["-man", "-T", "utf8", "-w", "all"])
            .arg(&path))?;
        assert!(
            out.stderr.is_empty(),
            "groff {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat"))?;
        assert!(
            out.stderr.is_empty(),
            "man {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = page.trim_end_matches(".1");
        assert!(text(&out).contains(name), "man {page} names {name}");
    }
    Ok(())
}

/// The static binary `cargo dist-static` wrote, if any (under CI it must be there).
/// Whether the tests run as root (`id -u`), as CI does.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

fn static_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let bin = target.join("dist").join(format!(
        "kubepki-{}-x86_64-linux",
        env!("CARGO_PKG_VERSION")
    ));
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{}: missing; CI builds it with `cargo dist-static` first (.ci/run)",
        bin.display()
    );
    eprintln!("skipped: no {} (run cargo dist-static)", bin.display());
    None
}

#[test]
fn static_release_binary() -> R {
    let Some(bin) = static_binary() else {
        return Ok(());
    };
    let Some((dist, name)) = bin.parent().zip(bin.file_name()) else {
        return Err("no folder".into());
    };
    let name = name.to_string_lossy();
    // The checksum file is what `sha256sum -c` reads, in the folder the files are carried in.
    run(Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{name}.sha256"))
        .current_dir(dist))?;
    let info = fs::read_to_string(dist.join(format!("{name}.build-info")))?;
    for want in ["rustc ", "cargo ", "\"awsLcVersion\"", "profile: "] {
        assert!(info.contains(want), "{want} in {info}");
    }

    if have("readelf", "--version") {
        // No program interpreter: the kernel runs it without ld.so. A static-pie keeps a
        // dynamic section for its own relocations only: no shared library is named in it.
        let headers = text(&run(Command::new("readelf").arg("-lW").arg(&bin))?);
        assert!(!headers.contains("INTERP"), "{headers}");
        let dynamic = text(&run(Command::new("readelf").arg("-dW").arg(&bin))?);
        assert!(!dynamic.contains("(NEEDED)"), "{dynamic}");
        assert!(!dynamic.contains("(RUNPATH)") && !dynamic.contains("(RPATH)"));
    }
    // ldd (glibc's) says so in its own words, and exits 1.
    if let Ok(out) = Command::new("ldd").arg(&bin).output() {
        let said = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
        assert!(
            said.contains("statically linked") || said.contains("not a dynamic executable"),
            "ldd: {said}"
        );
    }

    // Run with an empty environment (`env -i`: no PATH, HOME, locale) in an empty root folder
    // (chroot: no /etc, no /lib, no /proc, no /dev): nothing is loaded or looked up at run
    // time, no NSS (/etc/nsswitch.conf), no shared library, no locale files.
    let d = tempfile::tempdir()?;
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let root = is_root();
    let Some(chroot) = chroot.filter(|_| root) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root with chroot (coreutils)"
        );
        eprintln!("skipped: the static binary is run in an empty root only as root");
        return Ok(());
    };
    fs::copy(&bin, d.path().join("kubepki"))?;
    let env_i = |args: &[&str]| {
        let mut c = Command::new("env");
        c.args(["-i", chroot])
            .arg(d.path())
            .arg("/kubepki")
            .args(args);
        c
    };
    let v: serde_json::Value =
        serde_json::from_slice(&run(&mut env_i(&["version", "-o", "json"]))?.stdout)?;
    assert_eq!(v["staticLinked"], true);
    assert_eq!(v["pkcs11"], false);
    let mut init = vec!["init"];
    init.extend(TREE);
    init.extend(["--encryption-algorithm", "ECDSA-P256"]);
    run(&mut env_i(&init))?;
    let mut verify = vec!["verify"];
    verify.extend(TREE);
    run(&mut env_i(&verify))?;
    // The tree as an independent implementation sees it.
    if have("openssl", "version") {
        let pki = d.path().join("t/pki");
        run(Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(pki.join("ca.crt"))
            .arg(pki.join("apiserver.crt")))?;
    }
    // The dynamic binary reads the tree the same way.
    let again = kubepki(d.path(), &verify)?;
    assert_eq!(again.code, 0, "{}", again.stdout);

    // Without PKCS#11 built in, a key URI is refused as a usage error that says why.
    let mut refused = vec![
        "init",
        "phase",
        "certs",
        "apiserver",
        "--ca-key-uri",
        "pkcs11:token=t;object=ca",
    ];
    refused.extend(TREE);
    let out = env_i(&refused).output()?;
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-key-uri") && err.contains("static"),
        "{err}"
    );
    Ok(())
}
