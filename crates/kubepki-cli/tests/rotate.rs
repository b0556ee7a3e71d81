//! `kubepki ca rotate` from the command line (docs/rotation.md): status as text and JSON, the
//! exit codes and messages of refusals with nothing written, and the kubeconfigs other commands
//! write mid-rotation trusting both CAs.

use std::fs;
use std::path::Path;

mod common;
use common::{TREE, files_under, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

fn with(cmd: &[&'static str]) -> Vec<&'static str> {
    let mut a = cmd.to_vec();
    a.extend(TREE);
    a.extend(["--encryption-algorithm", "ECDSA-P256"]);
    a
}

fn snapshot(d: &Path) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, std::io::Error> {
    let mut v = Vec::new();
    for f in files_under(d) {
        let b = fs::read(&f)?;
        v.push((f, b));
    }
    v.sort();
    Ok(v)
}

fn status(d: &Path) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let r = kubepki(d, &with(&["ca", "rotate", "status", "-o", "json"]))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(serde_json::from_str(&r.stdout)?)
}

fn trusted_certs(kubeconfig: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let kc = kubepki_kubeadm::Kubeconfig::from_slice(kubeconfig, &fs::read(kubeconfig)?)?;
    Ok(kubepki_ca::Certificate::chain_from_pem(&kc.current_ca_pem(kubeconfig)?)?.len())
}

#[test]
fn status_phases_and_refusals() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    assert_eq!(kubepki(d, &with(&["init"]))?.code, 0);
    let s = status(d)?;
    let targets = s["targets"].as_array().ok_or("targets")?;
    let names: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(names, ["ca", "front-proxy-ca", "etcd-ca", "sa"]);
    assert!(
        targets
            .iter()
            .all(|t| t["stage"] == "idle" && t["next"].is_null())
    );

    // Out of order: exit 1, the next phase named, nothing written.
    let before = snapshot(d)?;
    let r = kubepki(d, &with(&["ca", "rotate", "reissue"]))?;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the next phase is start"), "{}", r.stderr);
    assert_eq!(snapshot(d)?, before);
    // A bad target or phase is a usage error.
    let r = kubepki(d, &with(&["ca", "rotate", "start", "--ca", "kubelet-ca"]))?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("kubelet-ca") && r.stderr.contains("front-proxy-ca"));
    assert_eq!(kubepki(d, &with(&["ca", "rotate", "begin"]))?.code, 64);
    // This node's own folder as the other node's.
    let r = kubepki(
        d,
        &with(&["ca", "rotate", "start", "--from-cert-dir", "t/pki"]),
    )?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--from-cert-dir") && r.stderr.contains("own"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(d)?, before);
    // finish on an idle tree: nothing to do.
    let r = kubepki(d, &with(&["ca", "rotate", "finish"]))?;
    assert!(
        r.code == 0 && r.stdout.contains("Nothing to do"),
        "{}",
        r.stdout
    );

    // start: the signer file is announced; every target started; the text status shows it.
    let r = kubepki(d, &with(&["ca", "rotate", "start"]))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("ca-signer.crt") && r.stderr.contains("--cluster-signing-cert-file"));
    assert!(
        r.stdout.contains("[rotate] ca: idle -> started"),
        "{}",
        r.stdout
    );
    let s = status(d)?;
    for t in s["targets"].as_array().ok_or("targets")? {
        assert_eq!(t["stage"], "started", "{t}");
        assert_eq!(t["next"], "reissue", "{t}");
        assert!(t["old"].is_string() && t["new"].is_string() && t["old"] != t["new"]);
    }
    let r = kubepki(d, &with(&["ca", "rotate", "status"]))?;
    assert!(
        r.stdout.contains("waiting key") && r.stdout.contains("old+new"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("LAG"), "{}", r.stdout);

    // Kubeconfigs made mid-rotation trust both CAs: a worker's kubelet.conf, a user's.
    let r = kubepki(
        d,
        &[
            "node",
            "kubelet-kubeconfig",
            "--node-name",
            "worker1",
            "--cert-dir",
            "t/pki",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out",
            "w1/kubelet.conf",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(trusted_certs(&d.join("w1/kubelet.conf"))?, 2);
    let r = kubepki(
        d,
        &[
            "user",
            "create",
            "jane",
            "--ca-cert",
            "t/pki/ca.crt",
            "--ca-key",
            "t/pki/ca.key",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out-kubeconfig",
            "jane.conf",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(trusted_certs(&d.join("jane.conf"))?, 2);
    // A copy of ca.crt alone (two CAs, no record): refused rather than trust the old CA only.
    fs::create_dir(d.join("copy"))?;
    for f in ["ca.crt", "ca.key"] {
        fs::copy(d.join("t/pki").join(f), d.join("copy").join(f))?;
    }
    let r = kubepki(
        d,
        &[
            "node",
            "kubelet-kubeconfig",
            "--node-name",
            "worker2",
            "--cert-dir",
            "copy",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out",
            "w2/kubelet.conf",
        ],
    )?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("rotation/ca.crt"), "{}", r.stderr);
    assert!(!d.join("w2/kubelet.conf").exists());

    // The rest of the rotation; -o json of a phase.
    let r = kubepki(d, &with(&["ca", "rotate", "reissue", "-o", "json"]))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(v["phase"], "reissue");
    assert_eq!(v["changed"], true);
    let ca = &v["targets"][0];
    assert_eq!(
        (ca["before"].as_str(), ca["after"].as_str()),
        (Some("started"), Some("reissued"))
    );
    assert!(
        ca["reissued"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == "apiserver"))
    );
    let r = kubepki(d, &with(&["ca", "rotate", "finish"]))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(trusted_certs(&d.join("t/admin.conf"))?, 1);
    assert!(kubepki(d, &with(&["verify"]))?.code == 0);
    Ok(())
}

/// A tree with an external front-proxy CA (its key elsewhere): `status` shows it as not rotated
/// here and exits 0; the default phases rotate the rest.
#[test]
fn external_ca_is_left_out() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    assert_eq!(kubepki(d, &with(&["init"]))?.code, 0);
    fs::rename(
        d.join("t/pki/front-proxy-ca.key"),
        d.join("front-proxy-ca.key"),
    )?;
    let r = kubepki(d, &with(&["ca", "rotate", "status"]))?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("front-proxy-ca: not rotated here"),
        "{}",
        r.stdout
    );
    for phase in ["start", "reissue", "finish"] {
        let r = kubepki(d, &with(&["ca", "rotate", phase]))?;
        assert_eq!(r.code, 0, "{phase}: {}", r.stderr);
        assert!(
            !r.stdout.contains("front-proxy-ca:"),
            "{phase}: {}",
            r.stdout
        );
    }
    let r = kubepki(
        d,
        &with(&["ca", "rotate", "start", "--ca", "front-proxy-ca"]),
    )?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("front-proxy-ca.key"), "{}", r.stderr);
    Ok(())
}
