//! Every file of `tests/data/malformed/` (made by its `make.py`; plus a 20 MB file written here)
//! fed to every command that reads a file of its kind: a non-zero exit that is not a panic
//! (101), a message naming the file, done within a few seconds, and no file written (`renew all`:
//! the file and its item left as they were, the other items renewed).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{BIN, TREE_P256};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(10);

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/malformed")
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = fs::read(&p).unwrap_or_default();
                out.insert(p, bytes);
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) -> R {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// Runs `kubepki args` in `dir` and checks the contract; `names` is how the file may be named in
/// the message (its path as given or as placed in the tree).
fn check(dir: &Path, args: &[&str], names: &[&str], label: &str) -> R {
    let before = snapshot(dir);
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            return Err(format!("{label}: still running after {DEADLINE:?}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = status.code().unwrap_or(-1);
    if code == 0 || code == 101 || code < 0 {
        return Err(format!("{label}: exit {code}:\n{text}").into());
    }
    if !names.iter().any(|n| text.contains(n)) {
        return Err(format!("{label}: the message does not name {names:?}:\n{text}").into());
    }
    let after = snapshot(dir);
    if args.windows(2).any(|w| w == ["renew", "all"]) {
        // `renew all` renews every other item (docs/certs.md: each item is all or nothing); the
        // malformed file itself, and its item, must be left as they were.
        let changed: Vec<&PathBuf> = before
            .iter()
            .filter(|(p, b)| after.get(*p) != Some(*b))
            .map(|(p, _)| p)
            .collect();
        let named = |p: &PathBuf| {
            p.file_name()
                .is_some_and(|f| names.iter().any(|n| *n == f.to_string_lossy()))
        };
        if changed.iter().any(|p| named(p)) || after.len() != before.len() {
            return Err(format!("{label}: the malformed file changed").into());
        }
    } else if after != before {
        return Err(format!("{label}: files changed").into());
    }
    Ok(())
}

struct Fixture {
    _root: tempfile::TempDir,
    tree: PathBuf,
    good_csr: PathBuf,
    good_manifest: PathBuf,
}

fn fixture() -> Res<Fixture> {
    let root = tempfile::tempdir()?;
    let d = root.path().to_owned();
    let mut a = vec!["init"];
    a.extend(TREE_P256);
    let out = Command::new(BIN).args(&a).current_dir(&d).output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["user", "create", "jane", "--csr-only", "--out-dir", "u"])
        .current_dir(&d)
        .output()?;
    assert!(out.status.success());
    Ok(Fixture {
        tree: d.join("t"),
        good_csr: d.join("u/jane.csr"),
        good_manifest: d.join("u/jane-csr.yaml"),
        _root: root,
    })
}

/// A copy of the good tree with `file` placed at `rel` (relative to the tree's root `t/`).
fn tree_with(fx: &Fixture, file: &Path, rel: &str) -> Res<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    copy_dir(&fx.tree, &dir.path().join("t"))?;
    fs::copy(file, dir.path().join("t").join(rel))?;
    Ok(dir)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn cases(fx: &Fixture, file: &Path, role: &str, name: &str) -> R {
    let work = tempfile::tempdir()?;
    let w = work.path();
    let local = w.join(name);
    fs::copy(file, &local)?;
    let ca = s(&fx.tree.join("pki/ca.crt"));
    let ca_key = s(&fx.tree.join("pki/ca.key"));
    let (csr, manifest) = (s(&fx.good_csr), s(&fx.good_manifest));
    let any = role == "any";
    let direct = |args: &[&str]| check(w, args, &[name], &format!("{name}: {}", args.join(" ")));
    // `inspect` reads anything; a file that is a valid something else in disguise is only bad
    // in the role its name gives.
    if !name.contains("-instead") && name != "key--public-key-only.pem" {
        direct(&["inspect", name])?;
    }
    // The file as the CA certificate, then as the CA key, of both signing commands.
    for (as_role, ca_cert, ca_key) in [("cert", name, ca_key.as_str()), ("key", &ca, name)] {
        if !(any || role == as_role) {
            continue;
        }
        let ca_flags = ["--ca-cert", ca_cert, "--ca-key", ca_key];
        let out = ["--out", "x.crt"];
        direct(
            &[
                &["sign", "--csr", &csr, "--profile", "client"][..],
                &ca_flags,
                &out,
            ]
            .concat(),
        )?;
        direct(&[&["sign-request", &manifest][..], &ca_flags, &out].concat())?;
    }
    if any || role == "csr" {
        direct(&[
            "sign",
            "--ca-cert",
            &ca,
            "--ca-key",
            &ca_key,
            "--csr",
            name,
            "--profile",
            "client",
            "--out",
            "x.crt",
        ])?;
        direct(&[
            "sign-request",
            name,
            "--signer-name",
            "kubernetes.io/kube-apiserver-client",
            "--ca-cert",
            &ca,
            "--ca-key",
            &ca_key,
            "--out",
            "x.crt",
        ])?;
    }
    if any || role == "manifest" {
        direct(&[
            "sign-request",
            name,
            "--ca-cert",
            &ca,
            "--ca-key",
            &ca_key,
            "--out",
            "x.crt",
        ])?;
    }
    if any || role == "config" {
        for cmd in [
            &["init"][..],
            &["verify"],
            &["certs", "check-expiration"],
            &["certs", "renew", "all"],
            &["certs", "generate-csr"],
        ] {
            let dir = tree_with(fx, file, "config.yaml")?;
            let mut a = cmd.to_vec();
            a.extend(TREE_P256);
            a.extend(["--config", "t/config.yaml"]);
            check(
                dir.path(),
                &a,
                &["config.yaml"],
                &format!("{name}: {}", cmd.join(" ")),
            )?;
        }
    }
    // Placed inside a tree: the commands that read that file.
    let placements: Vec<(&str, Vec<&[&str]>)> = match role {
        "cert" => vec![
            (
                "pki/apiserver.crt",
                vec![
                    &["verify"][..],
                    &["certs", "check-expiration"],
                    &["certs", "renew", "all"],
                ],
            ),
            ("pki/ca.crt", vec![&["init"][..]]),
        ],
        "key" => vec![(
            "pki/ca.key",
            vec![&["init"][..], &["verify"], &["certs", "renew", "all"]],
        )],
        "kubeconfig" => vec![(
            "admin.conf",
            vec![
                &["init"][..],
                &["verify"],
                &["certs", "check-expiration"],
                &["certs", "renew", "all"],
            ],
        )],
        "any" => vec![
            (
                "pki/apiserver.crt",
                vec![
                    &["verify"][..],
                    &["certs", "check-expiration"],
                    &["certs", "renew", "all"],
                ],
            ),
            ("pki/ca.key", vec![&["init"][..]]),
            (
                "admin.conf",
                vec![&["verify"][..], &["certs", "check-expiration"]],
            ),
        ],
        _ => vec![],
    };
    for (rel, cmds) in placements {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        for cmd in cmds {
            let dir = tree_with(fx, file, rel)?;
            let mut a = cmd.to_vec();
            a.extend(TREE_P256);
            check(
                dir.path(),
                &a,
                &[base],
                &format!("{name} as {rel}: {}", cmd.join(" ")),
            )?;
        }
    }
    Ok(())
}

#[test]
fn every_malformed_file_is_refused_cleanly_by_every_reader() -> R {
    let fx = fixture()?;
    let mut files: Vec<PathBuf> = fs::read_dir(corpus())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("--"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 50, "corpus has {} files", files.len());
    // The 20 MB file is made here rather than committed.
    let big = tempfile::tempdir()?;
    let huge = big.path().join("any--20mb.bin");
    fs::write(&huge, vec![b'A'; 20 << 20])?;
    files.push(huge);
    let mut failures = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let role = name.split("--").next().unwrap_or_default().to_owned();
        if let Err(e) = cases(&fx, f, &role, &name) {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
    Ok(())
}
