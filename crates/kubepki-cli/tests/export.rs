//! `kubepki init --export` (docs/init.md, "Exports"): the tar extracted by the system `tar`
//! passes `kubepki verify` and `openssl verify`; the Cluster API Secrets parse, are named and
//! labelled as Cluster API expects, and each key pair matches; the JSON round-trips; nothing is
//! written under the tree's folders, and an export is never written over a file.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

mod common;
use common::{Run, TREE, files_under, kubepki};

const ECDSA: [&str; 2] = ["--encryption-algorithm", "ECDSA-P256"];

fn init(dir: &Path, extra: &[&str]) -> Res<Run> {
    let mut a = vec!["init"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&TREE);
    a.extend_from_slice(&ECDSA);
    kubepki(dir, &a)
}

fn ok(r: &Run) -> R {
    if r.code == 0 {
        Ok(())
    } else {
        Err(format!("exit {}: {}{}", r.code, r.stdout, r.stderr).into())
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Res<String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn tar_extracts_to_a_tree_that_verifies() -> R {
    let dir = tempfile::tempdir()?;
    let r = init(
        dir.path(),
        &["--export", "tar", "--export-file", "tree.tar"],
    )?;
    ok(&r)?;
    // Nothing under the tree's folders; the report on stderr, stdout empty.
    assert!(!dir.path().join("t").exists());
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("private keys"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[certs] Generating \"ca\" certificate and key"),
        "{}",
        r.stderr
    );
    let tar = dir.path().join("tree.tar");
    assert_eq!(fs::metadata(&tar)?.permissions().mode() & 0o777, 0o600);

    let x = dir.path().join("x");
    fs::create_dir(&x)?;
    let out = Command::new("tar")
        .args(["-xf", "../tree.tar"])
        .current_dir(&x)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_under(&x).len(), 27);
    for (f, mode) in [
        ("pki/ca.crt", 0o644),
        ("pki/etcd/ca.key", 0o600),
        ("pki/sa.pub", 0o600),
        ("admin.conf", 0o600),
    ] {
        assert_eq!(
            fs::metadata(x.join(f))?.permissions().mode() & 0o777,
            mode,
            "{f}"
        );
    }
    let v = kubepki(
        dir.path(),
        &[
            "verify",
            "--cert-dir",
            "x/pki",
            "--kubeconfig-dir",
            "x",
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "192.0.2.10",
        ],
    )?;
    ok(&v)?;
    assert!(v.stdout.contains("0 failed"), "{}", v.stdout);
    for (leaf, ca) in [
        ("apiserver", "ca"),
        ("apiserver-kubelet-client", "ca"),
        ("front-proxy-client", "front-proxy-ca"),
        ("etcd/server", "etcd/ca"),
        ("etcd/peer", "etcd/ca"),
        ("etcd/healthcheck-client", "etcd/ca"),
        ("apiserver-etcd-client", "etcd/ca"),
    ] {
        openssl(
            &x,
            &[
                "verify",
                "-CAfile",
                &format!("pki/{ca}.crt"),
                &format!("pki/{leaf}.crt"),
            ],
        )?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Secret {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(rename = "type")]
    kind_of_secret: String,
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    labels: BTreeMap<String, String>,
}

#[test]
fn capi_secrets_are_what_cluster_api_expects() -> R {
    let dir = tempfile::tempdir()?;
    let r = init(
        dir.path(),
        &["--export", "capi-secrets", "--cluster-name", "prod-eu1"],
    )?;
    ok(&r)?;
    assert!(!dir.path().join("t").exists());
    assert!(r.stderr.contains("private keys"), "{}", r.stderr);
    let secrets: Vec<Secret> = serde_saphyr::from_multiple(&r.stdout)?;
    let names: Vec<&str> = secrets.iter().map(|s| s.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prod-eu1-ca",
            "prod-eu1-etcd",
            "prod-eu1-proxy",
            "prod-eu1-sa",
            "prod-eu1-kubeconfig"
        ]
    );
    let mut by_name = BTreeMap::new();
    for s in &secrets {
        assert_eq!((s.api_version.as_str(), s.kind.as_str()), ("v1", "Secret"));
        assert_eq!(s.kind_of_secret, "cluster.x-k8s.io/secret");
        assert_eq!(
            s.metadata.labels.get("cluster.x-k8s.io/cluster-name"),
            Some(&"prod-eu1".to_owned())
        );
        let mut data = BTreeMap::new();
        for (k, v) in &s.data {
            data.insert(k.clone(), B64.decode(v)?);
        }
        by_name.insert(s.metadata.name.clone(), data);
    }
    let tmp = dir.path();
    for name in [
        "prod-eu1-ca",
        "prod-eu1-etcd",
        "prod-eu1-proxy",
        "prod-eu1-sa",
    ] {
        let data = &by_name[name];
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["tls.crt", "tls.key"], "{name}");
        fs::write(tmp.join("tls.crt"), &data["tls.crt"])?;
        fs::write(tmp.join("tls.key"), &data["tls.key"])?;
        let from_key = openssl(tmp, &["pkey", "-in", "tls.key", "-pubout"])?;
        let from_crt = if name.ends_with("-sa") {
            // The service-account pair: tls.crt is sa.pub, a public key.
            openssl(tmp, &["pkey", "-pubin", "-in", "tls.crt", "-pubout"])?
        } else {
            openssl(tmp, &["x509", "-in", "tls.crt", "-noout", "-pubkey"])?
        };
        assert_eq!(from_key, from_crt, "{name}: tls.key does not match tls.crt");
    }
    // The kubeconfig Secret holds admin.conf: kubernetes-admin, trusting the cluster CA,
    // with a client certificate that CA signed.
    let kc = kubepki_kubeadm::Kubeconfig::from_slice(
        Path::new("value"),
        &by_name["prod-eu1-kubeconfig"]["value"],
    )?;
    let value = Path::new("value");
    assert_eq!(
        kc.current_ca_pem(value)?.as_slice(),
        by_name["prod-eu1-ca"]["tls.crt"].as_slice()
    );
    let client = kc
        .current_client_cert_pem(value)?
        .ok_or("no client certificate")?;
    fs::write(tmp.join("client.crt"), &client)?;
    fs::write(tmp.join("ca.crt"), &by_name["prod-eu1-ca"]["tls.crt"])?;
    openssl(tmp, &["verify", "-CAfile", "ca.crt", "client.crt"])?;
    let subject = openssl(tmp, &["x509", "-in", "client.crt", "-noout", "-subject"])?;
    assert!(subject.contains("kubernetes-admin"), "{subject}");
    assert!(
        String::from_utf8(by_name["prod-eu1-kubeconfig"]["value"].clone())?
            .contains("cluster: prod-eu1"),
        "the kubeconfig's cluster is not named prod-eu1"
    );
    Ok(())
}

#[test]
fn json_round_trips() -> R {
    let dir = tempfile::tempdir()?;
    let r = init(dir.path(), &["--export", "json"])?;
    ok(&r)?;
    assert!(!dir.path().join("t").exists());
    let tree = kubepki_kubeadm::Tree::from_json(&r.stdout)?;
    assert_eq!(tree.len(), 27);
    assert_eq!(tree.to_json()?.as_str(), r.stdout);
    let key = tree.get("pki/etcd/ca.key").ok_or("no pki/etcd/ca.key")?;
    assert_eq!(key.mode, 0o600);
    assert!(key.bytes.starts_with(b"-----BEGIN "));
    assert_eq!(tree.get("pki/ca.crt").map(|f| f.mode), Some(0o644));
    assert!(tree.get("kubelet.conf").is_some_and(|f| f.is_secret()));
    Ok(())
}

/// An existing tree is read, not written: its CA is reused in the export, every file under the
/// folders stays as it was, and the export file is never written over.
#[test]
fn export_reuses_the_folder_and_writes_nothing_there() -> R {
    let dir = tempfile::tempdir()?;
    let phase = kubepki(
        dir.path(),
        &[&["init", "phase", "certs", "ca"][..], &TREE, &ECDSA].concat(),
    )?;
    ok(&phase)?;
    let t = dir.path().join("t");
    let snapshot = |d: &Path| -> Res<Vec<(String, Vec<u8>, u32)>> {
        let mut out = Vec::new();
        let mut files = files_under(d);
        files.sort();
        for f in files {
            let m = fs::metadata(&f)?;
            out.push((
                f.display().to_string(),
                fs::read(&f)?,
                m.permissions().mode(),
            ));
        }
        Ok(out)
    };
    let before = snapshot(&t)?;
    let r = init(
        dir.path(),
        &["--export", "json", "--export-file", "out.json"],
    )?;
    ok(&r)?;
    assert!(
        r.stderr.contains("Using existing ca certificate authority"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&t)?, before);
    let tree = kubepki_kubeadm::Tree::from_json(&fs::read_to_string(dir.path().join("out.json"))?)?;
    assert_eq!(
        tree.get("pki/ca.crt").map(|f| f.bytes.to_vec()),
        Some(fs::read(t.join("pki/ca.crt"))?)
    );
    assert_eq!(
        fs::metadata(dir.path().join("out.json"))?
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Never over an existing file.
    let again = init(
        dir.path(),
        &["--export", "json", "--export-file", "out.json"],
    )?;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // Never into the tree's folders.
    let inside = init(
        dir.path(),
        &["--export", "tar", "--export-file", "t/pki/x.tar"],
    )?;
    assert_eq!(
        inside.code, 64,
        "a flag value that cannot be used: {}",
        inside.stderr
    );
    assert!(!t.join("pki/x.tar").exists());
    // --export-file alone, or with --dry-run, is a usage error.
    let alone = init(dir.path(), &["--export-file", "y.tar"])?;
    assert_ne!(alone.code, 0);
    let dry = init(dir.path(), &["--export", "tar", "--dry-run"])?;
    assert_ne!(dry.code, 0);
    assert_eq!(snapshot(&t)?, before);
    Ok(())
}
