//! Running the `kubepki` binary from the CLI tests (each test file uses part of it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
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

/// The tree location and node flags most tests use (`t/pki`, `t`, node cp1 at 192.0.2.10).
pub const TREE: [&str; 8] = [
    "--cert-dir",
    "t/pki",
    "--kubeconfig-dir",
    "t",
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "192.0.2.10",
];

/// ECDSA-P256 keys: faster to make than the default RSA-2048.
pub const P256: [&str; 2] = ["--encryption-algorithm", "ECDSA-P256"];

/// [`TREE`] with [`P256`] keys.
pub const TREE_P256: [&str; 10] = [
    TREE[0], TREE[1], TREE[2], TREE[3], TREE[4], TREE[5], TREE[6], TREE[7], P256[0], P256[1],
];

/// `init` of the tree of [`TREE_P256`].
pub const INIT_TREE: [&str; 11] = [
    "init", TREE[0], TREE[1], TREE[2], TREE[3], TREE[4], TREE[5], TREE[6], TREE[7], P256[0],
    P256[1],
];

/// `init` of a whole tree in `c/pki` and `c` (node cp1, [`P256`]): the cluster CA of the
/// signer tests, kept apart from the `t` tree of [`TREE`].
pub const INIT_CLUSTER: [&str; 11] = [
    "init",
    "--cert-dir",
    "c/pki",
    "--kubeconfig-dir",
    "c",
    TREE[4],
    TREE[5],
    TREE[6],
    TREE[7],
    P256[0],
    P256[1],
];

/// A second control-plane node, cp2 at 192.0.2.11 behind the endpoint 192.0.2.10, its tree in
/// `cp2/pki` and `cp2`, [`P256`] keys.
pub const CP2: [&str; 12] = [
    "--cert-dir",
    "cp2/pki",
    "--kubeconfig-dir",
    "cp2",
    "--node-name",
    "cp2",
    "--apiserver-advertise-address",
    "192.0.2.11",
    "--control-plane-endpoint",
    "192.0.2.10",
    P256[0],
    P256[1],
];

/// Runs [`INIT_CLUSTER`] in `dir` and checks that it succeeds.
pub fn init_cluster(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let r = kubepki(dir, &INIT_CLUSTER)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(())
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// `kubepki <args> --cert-dir ROOT/<which>/pki --kubeconfig-dir ROOT/<which>` with the flags of
/// node n1 (192.0.2.10, ECDSA-P256), run in `root`: one side (a CA holder's folder, a node) of
/// the external-CA tests.
pub fn kubepki_side(
    root: &Path,
    which: &str,
    args: &[&str],
) -> Result<Run, Box<dyn std::error::Error>> {
    let flags = side_flags(&root.join(which));
    let mut a = args.to_vec();
    a.extend(flags.iter().map(String::as_str));
    kubepki(root, &a)
}

/// The flags of [`kubepki_side`] for the side in `base`: `--cert-dir BASE/pki
/// --kubeconfig-dir BASE` and node n1's (192.0.2.10, [`P256`]).
pub fn side_flags(base: &Path) -> Vec<String> {
    let (pki, kc) = (
        base.join("pki").display().to_string(),
        base.display().to_string(),
    );
    [
        "--cert-dir",
        &pki,
        "--kubeconfig-dir",
        &kc,
        "--node-name",
        "n1",
    ]
    .into_iter()
    .chain(["--apiserver-advertise-address", "192.0.2.10"])
    .chain(P256)
    .map(str::to_owned)
    .collect()
}
