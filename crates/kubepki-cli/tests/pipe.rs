//! Every command with its standard output closed early (`kubepki ... | head -c1`, `| grep -q`):
//! never a panic, the documented exit status 141 when a write finds no reader, and commands that
//! write files (`init`, `certs renew`) leave them complete.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{BIN, CP2, TREE_P256, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The status `docs/certs.md` gives for a closed standard output (128 + SIGPIPE).
const BROKEN_PIPE: i32 = 141;

/// How the reader goes away.
#[derive(Clone, Copy, Debug)]
enum Reader {
    /// Closed before kubepki starts: its first write fails (deterministic).
    Gone,
    /// Reads one byte, then closes (`head -c1`): later writes, if any, fail.
    OneByte,
}

/// Runs `kubepki args` in `dir` with stdout a pipe that `reader` closes; exit code and stderr.
fn run(dir: &Path, args: &[&str], reader: Reader) -> Res<(i32, String)> {
    let (mut rx, tx) = std::io::pipe()?;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(tx)
        .stderr(Stdio::piped());
    if matches!(reader, Reader::Gone) {
        drop(rx);
        let out = cmd.output()?;
        return Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let child = cmd.spawn()?;
    // The write end held by `cmd` must go, or the read below could wait forever.
    drop(cmd);
    let mut one = [0u8; 1];
    let n = rx.read(&mut one)?;
    drop(rx);
    let out = child.wait_with_output()?;
    assert_eq!(n, 1, "{args:?}: nothing on stdout");
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn copy_dir(from: &Path, to: &Path) -> R {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

fn ok(d: &Path, args: &[&str]) -> R {
    let r = kubepki(d, args)?;
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    Ok(())
}

/// A folder with a complete tree `t/`, a key, a CSR and a CertificateSigningRequest manifest.
fn base() -> Res<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut a = vec!["init"];
    a.extend(TREE_P256);
    ok(d, &a)?;
    ok(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "u.key"],
    )?;
    ok(
        d,
        &[
            "csr",
            "--key",
            "u.key",
            "--cn",
            "jane",
            "--out",
            "u.csr",
            "--k8s-manifest",
            "u.yaml",
        ],
    )?;
    Ok(dir)
}

#[test]
fn every_command_with_a_closed_stdout_exits_141_without_a_panic() -> R {
    let base = base()?;
    let with_tree = |cmd: &[&'static str]| -> Vec<&'static str> {
        let mut a = cmd.to_vec();
        a.extend(TREE_P256);
        a
    };
    let fresh_tree = |cmd: &[&'static str]| -> Vec<&'static str> {
        let mut a = cmd.to_vec();
        a.extend(TREE_P256);
        a.extend(["--cert-dir", "n/pki", "--kubeconfig-dir", "n"]);
        a
    };
    let ca = ["--ca-cert", "t/pki/ca.crt", "--ca-key", "t/pki/ca.key"];
    let mut sign_csrs = vec!["certs", "sign-csrs"];
    sign_csrs.extend(ca);
    sign_csrs.extend([
        "--front-proxy-ca-cert",
        "t/pki/front-proxy-ca.crt",
        "--front-proxy-ca-key",
        "t/pki/front-proxy-ca.key",
        "--etcd-ca-cert",
        "t/pki/etcd/ca.crt",
        "--etcd-ca-key",
        "t/pki/etcd/ca.key",
    ]);
    sign_csrs.extend(TREE_P256);
    sign_csrs.extend(["--cert-dir", "g/pki", "--kubeconfig-dir", "g"]);
    let mut sign = vec!["sign"];
    sign.extend(ca);
    sign.extend(["--csr", "u.csr", "--profile", "client", "--out", "u.crt"]);
    let mut user_create = vec![
        "user",
        "create",
        "bob",
        "--encryption-algorithm",
        "ECDSA-P256",
    ];
    user_create.extend(ca);
    user_create.extend([
        "--cluster-server",
        "https://192.0.2.10:6443",
        "--out-kubeconfig",
        "bob.conf",
    ]);
    let mut sign_request = vec!["sign-request", "u.yaml"];
    sign_request.extend(ca);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("init", fresh_tree(&["init"])),
        ("init again", with_tree(&["init"])),
        ("init --dry-run", fresh_tree(&["init", "--dry-run"])),
        ("init -o json", fresh_tree(&["init", "-o", "json"])),
        ("init phase", fresh_tree(&["init", "phase", "certs", "ca"])),
        (
            "check-expiration",
            with_tree(&["certs", "check-expiration"]),
        ),
        (
            "check-expiration json",
            with_tree(&["certs", "check-expiration", "-o", "json"]),
        ),
        (
            "check-expiration yaml",
            with_tree(&["certs", "check-expiration", "-o", "yaml"]),
        ),
        ("renew all", with_tree(&["certs", "renew", "all"])),
        ("generate-csr", fresh_tree(&["certs", "generate-csr"])),
        ("sign-csrs", sign_csrs),
        ("verify", with_tree(&["verify"])),
        ("verify json", with_tree(&["verify", "-o", "json"])),
        ("inspect", vec!["inspect", "t/pki/apiserver.crt"]),
        ("inspect json", vec!["inspect", "-o", "json", "u.yaml"]),
        (
            "keygen",
            vec!["keygen", "--algorithm", "ECDSA-P256", "--out", "k.key"],
        ),
        (
            "csr",
            vec!["csr", "--key", "u.key", "--cn", "x", "--out", "x.csr"],
        ),
        (
            "ca create",
            vec![
                "ca",
                "create",
                "--cn",
                "test",
                "--algorithm",
                "ECDSA-P256",
                "--out-dir",
                "newca",
            ],
        ),
        ("sign", sign),
        ("user create", user_create),
        (
            "user kubeconfig",
            vec![
                "user",
                "kubeconfig",
                "--key",
                "t/pki/apiserver-kubelet-client.key",
                "--cert",
                "t/pki/apiserver-kubelet-client.crt",
                "--ca-cert",
                "t/pki/ca.crt",
                "--cluster-server",
                "https://192.0.2.10:6443",
                "--out-kubeconfig",
                "k.conf",
            ],
        ),
        ("sign-request to stdout", sign_request),
        (
            "node kubelet-kubeconfig",
            vec![
                "node",
                "kubelet-kubeconfig",
                "--node-name",
                "w1",
                "--cert-dir",
                "t/pki",
                "--encryption-algorithm",
                "ECDSA-P256",
                "--cluster-server",
                "https://192.0.2.10:6443",
                "--out",
                "w1.conf",
            ],
        ),
        (
            "node kubelet-serving",
            vec![
                "node",
                "kubelet-serving",
                "--node-name",
                "w1",
                "--cert-dir",
                "t/pki",
                "--encryption-algorithm",
                "ECDSA-P256",
                "--out-dir",
                "w1",
            ],
        ),
        (
            "node control-plane",
            [
                &["node", "control-plane", "--from-cert-dir", "t/pki"][..],
                &CP2,
            ]
            .concat(),
        ),
        ("--help", vec!["certs", "check-expiration", "--help"]),
        ("--version", vec!["--version"]),
    ];
    for (label, args) in &cases {
        for reader in [Reader::Gone, Reader::OneByte] {
            let dir = tempfile::tempdir()?;
            let d = dir.path();
            copy_dir(base.path(), d)?;
            if *label == "sign-csrs" {
                let mut g = vec!["certs", "generate-csr"];
                g.extend(TREE_P256);
                g.extend(["--cert-dir", "g/pki", "--kubeconfig-dir", "g"]);
                ok(d, &g)?;
            }
            let before = fs::read(d.join("t/pki/apiserver.key"))?;
            let (code, stderr) = run(d, args, reader)?;
            let what = format!("{label} ({reader:?}): exit {code}\n{stderr}");
            assert!(!stderr.contains("panicked"), "{what}");
            assert_ne!(code, 101, "{what}");
            match reader {
                // The first write fails: quietly, with the documented status.
                Reader::Gone => {
                    assert_eq!(code, BROKEN_PIPE, "{what}");
                    assert!(!stderr.contains("error"), "{what}");
                }
                // Whether a later write fails depends on timing; both outcomes are clean.
                Reader::OneByte => assert!(code == 0 || code == BROKEN_PIPE, "{what}"),
            }
            // What was written before the output is complete and usable.
            match *label {
                "init" | "init -o json" => {
                    let mut v = vec!["verify"];
                    v.extend(TREE_P256);
                    v.extend(["--cert-dir", "n/pki", "--kubeconfig-dir", "n"]);
                    ok(d, &v)?;
                }
                "renew all" => {
                    let mut v = vec!["verify"];
                    v.extend(TREE_P256);
                    ok(d, &v)?;
                    assert_ne!(fs::read(d.join("t/pki/apiserver.key"))?, before, "{what}");
                }
                "init --dry-run" => assert!(!d.join("n").exists(), "{what}"),
                _ => {}
            }
        }
    }
    Ok(())
}
