//! Renewal through an external CA end to end (issue 19, item 10): `certs renew all --csr-only
//! --csr-dir` on a node without CA keys, `certs sign-csrs --csr-dir` where the CA keys are,
//! `certs renew all --from-csr-dir` back on the node; `openssl verify` of every installed leaf
//! and `kubepki verify` on the tree; the refusals (another CA, another identity, another key)
//! leave every byte of the tree as it was.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_ca::Certificate;
use kubepki_keys::PrivateKey;
use kubepki_kubeadm::Kubeconfig;

mod common;
use common::{Run, files_under, kubepki, kubepki_side};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The leaves and kubeconfigs `renew all` renews, with the CA file each chains to.
const ITEMS: [(&str, &str); 11] = [
    ("admin.conf", "ca.crt"),
    ("apiserver", "ca.crt"),
    ("apiserver-etcd-client", "etcd/ca.crt"),
    ("apiserver-kubelet-client", "ca.crt"),
    ("controller-manager.conf", "ca.crt"),
    ("etcd-healthcheck-client", "etcd/ca.crt"),
    ("etcd-peer", "etcd/ca.crt"),
    ("etcd-server", "etcd/ca.crt"),
    ("front-proxy-client", "front-proxy-ca.crt"),
    ("scheduler.conf", "ca.crt"),
    ("super-admin.conf", "ca.crt"),
];

/// A node (`node/`) made by init, whose CA keys were moved to the CA side (`ca/pki`), and a CSR
/// folder (`csrs/`), in one temporary folder.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Res<Setup> {
        let s = Setup {
            dir: tempfile::tempdir()?,
        };
        let r = s.run("node", &["init"])?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        fs::create_dir_all(s.root().join("ca/pki/etcd"))?;
        for base in ["ca", "front-proxy-ca", "etcd/ca"] {
            for ext in ["crt", "key"] {
                let f = format!("{base}.{ext}");
                fs::copy(s.pki().join(&f), s.root().join("ca/pki").join(&f))?;
            }
            fs::remove_file(s.pki().join(format!("{base}.key")))?;
        }
        Ok(s)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn node_dir(&self) -> PathBuf {
        self.root().join("node")
    }

    fn pki(&self) -> PathBuf {
        self.node_dir().join("pki")
    }

    fn csrs(&self) -> PathBuf {
        self.root().join("csrs")
    }

    /// `kubepki <args> --cert-dir <which>/pki --kubeconfig-dir <which> <node flags>`.
    fn run(&self, which: &str, args: &[&str]) -> Res<Run> {
        kubepki_side(self.root(), which, args)
    }

    fn node(&self, args: &[&str]) -> Res<Run> {
        self.run("node", args)
    }

    /// `certs renew all --csr-only --csr-dir csrs` on the node, then `certs sign-csrs
    /// --csr-dir csrs` on the CA side (its --cert-dir holds the CAs).
    fn csrs_signed(&self) -> R {
        let r = self.node(&["certs", "renew", "all", "--csr-only", "--csr-dir", "csrs"])?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = self.run("ca", &["certs", "sign-csrs", "--csr-dir", "csrs"])?;
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        Ok(())
    }

    fn snapshot(&self) -> Res<BTreeMap<PathBuf, Vec<u8>>> {
        files_under(&self.node_dir())
            .into_iter()
            .map(|f| Ok((f.clone(), fs::read(&f)?)))
            .collect()
    }

    /// The certificate `name` has in the node's tree (PEM).
    fn live_pem(&self, name: &str) -> Res<Vec<u8>> {
        if name.ends_with(".conf") {
            let p = self.node_dir().join(name);
            let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
            return Ok(kc.current_client_cert_pem(&p)?.ok_or("no client cert")?);
        }
        let base = match name.strip_prefix("etcd-") {
            Some(rest) => format!("etcd/{rest}"),
            None => name.to_owned(),
        };
        Ok(fs::read(self.pki().join(format!("{base}.crt")))?)
    }
}

/// `openssl verify -CAfile ca leaf`.
fn openssl_verify(ca: &Path, leaf: &Path) -> R {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(leaf)
        .output()?;
    assert!(
        out.status.success(),
        "openssl verify {}: {}{}",
        leaf.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The regression test of issue 19, item 10: on the code before it, `certs renew` knew no
/// `--csr-only`, `sign-csrs` no `--csr-dir`, `renew` no `--from-csr-dir`.
#[test]
fn external_ca_renewal_loop_end_to_end() -> R {
    let s = Setup::new()?;
    let before: BTreeMap<&str, Certificate> = ITEMS
        .iter()
        .map(|(n, _)| Ok((*n, Certificate::from_pem(&s.live_pem(n)?)?)))
        .collect::<Res<_>>()?;
    let tree = s.snapshot()?;

    // Node: keys and CSRs in csrs/, nothing of the tree touched.
    let r = s.node(&[
        "certs",
        "renew",
        "all",
        "--csr-only",
        "--csr-dir",
        "csrs",
        "-o",
        "json",
    ])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let items = v["items"].as_array().ok_or("no items")?;
    assert_eq!(items.len(), ITEMS.len());
    assert!(
        items.iter().all(|i| i["status"] == "written"),
        "{}",
        r.stdout
    );
    assert_eq!(s.snapshot()?, tree, "--csr-only changed the tree");
    for (n, _) in ITEMS {
        let key = s.csrs().join(format!("{n}.key"));
        assert_eq!(fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
        assert!(s.csrs().join(format!("{n}.csr")).exists());
    }
    // The CA keys never were on the node.
    assert!(!s.pki().join("ca.key").exists());

    // CA side.
    let r = s.run("ca", &["certs", "sign-csrs", "--csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("[certs] Signed").count(), ITEMS.len());

    // Node: install.
    let r = s.node(&["certs", "renew", "all", "--from-csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches(" installed: ").count(), ITEMS.len());
    let r = s.node(&["verify"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let scratch = tempfile::tempdir()?;
    for (n, ca) in ITEMS {
        let pem = s.live_pem(n)?;
        let new = Certificate::from_pem(&pem)?;
        let old = before.get(n).ok_or("no old")?;
        assert_ne!(new.serial(), old.serial(), "{n}: same serial");
        assert_ne!(new.public_key_der(), old.public_key_der(), "{n}: same key");
        assert_eq!(new.subject(), old.subject(), "{n}");
        assert_eq!(new.subject_alt_names(), old.subject_alt_names(), "{n}");
        assert_eq!(new.ext_key_usage(), old.ext_key_usage(), "{n}");
        let key = PrivateKey::from_pem(&fs::read(s.csrs().join(format!("{n}.key")))?)?;
        assert!(key.matches_public_key(new.public_key_der()), "{n}");
        let leaf = scratch.path().join(format!("{n}.pem"));
        fs::write(&leaf, &pem)?;
        openssl_verify(&s.root().join("ca/pki").join(ca), &leaf)?;
    }
    // Installed keys are 0600.
    assert_eq!(
        fs::metadata(s.pki().join("apiserver.key"))?
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    Ok(())
}

/// `renew all --from-csr-dir` is refused naming `file` (with `needle`), and no byte of the
/// node's tree changed.
fn refused(s: &Setup, file: &str, needle: &str) -> R {
    let tree = s.snapshot()?;
    let r = s.node(&["certs", "renew", "all", "--from-csr-dir", "csrs"])?;
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains(file) && r.stderr.contains(needle),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("installed"), "{}", r.stdout);
    assert_eq!(
        s.snapshot()?,
        tree,
        "a refused installation changed the tree"
    );
    Ok(())
}

#[test]
fn from_csr_dir_refuses_another_ca_another_identity_or_another_key() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    let csrs = s.csrs();

    // Another CA (its own ca, front-proxy-ca and etcd-ca, the same names) signs the apiserver's
    // CSR.
    let other = Setup::new()?;
    let scratch = other.root().join("csrs");
    fs::create_dir_all(&scratch)?;
    fs::copy(csrs.join("apiserver.csr"), scratch.join("apiserver.csr"))?;
    let r = other.run("ca", &["certs", "sign-csrs", "--csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let good = fs::read(csrs.join("apiserver.crt"))?;
    fs::copy(scratch.join("apiserver.crt"), csrs.join("apiserver.crt"))?;
    refused(&s, "apiserver.crt", "was not issued by the ca of this tree")?;
    fs::write(csrs.join("apiserver.crt"), &good)?;

    // Another identity: the controller manager's certificate and key offered as the scheduler's.
    let saved: Vec<(PathBuf, Vec<u8>)> = ["key", "crt"]
        .iter()
        .map(|e| {
            let p = csrs.join(format!("scheduler.conf.{e}"));
            Ok((p.clone(), fs::read(&p)?))
        })
        .collect::<Res<_>>()?;
    for ext in ["key", "crt"] {
        fs::copy(
            csrs.join(format!("controller-manager.conf.{ext}")),
            csrs.join(format!("scheduler.conf.{ext}")),
        )?;
    }
    refused(
        &s,
        "scheduler.conf.crt",
        "CN is \"system:kube-controller-manager\", must be \"system:kube-scheduler\"",
    )?;
    for (p, b) in &saved {
        fs::write(p, b)?;
    }

    // Another key.
    let k = fs::read(csrs.join("etcd-server.key"))?;
    fs::copy(csrs.join("etcd-peer.key"), csrs.join("etcd-server.key"))?;
    refused(
        &s,
        "etcd-server.crt",
        "its public key is not the one of etcd-server.key",
    )?;
    fs::write(csrs.join("etcd-server.key"), &k)?;

    // Everything put back: it installs.
    let r = s.node(&["certs", "renew", "all", "--from-csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    Ok(())
}

#[test]
fn sign_csrs_refuses_a_csr_for_another_identity_and_writes_nothing() -> R {
    let s = Setup::new()?;
    let r = s.node(&[
        "certs",
        "renew",
        "apiserver",
        "--csr-only",
        "--csr-dir",
        "csrs",
    ])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The CA side is configured for node n2: the node's CSR (for n1, 192.0.2.10) is not
    // what it gives the apiserver.
    let before: Vec<PathBuf> = files_under(&s.csrs());
    let r = kubepki(
        s.root(),
        &[
            "certs",
            "sign-csrs",
            "--csr-dir",
            "csrs",
            "--cert-dir",
            "ca/pki",
            "--kubeconfig-dir",
            "ca",
            "--node-name",
            "n2",
            "--apiserver-advertise-address",
            "192.0.2.20",
        ],
    )?;
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("apiserver.csr") && r.stderr.contains("extra SAN DNS:n1"),
        "{}",
        r.stderr
    );
    assert_eq!(
        files_under(&s.csrs()),
        before,
        "a refused signing wrote files"
    );
    Ok(())
}

#[test]
fn csr_only_keeps_what_is_in_the_csr_folder_and_the_tree() -> R {
    let s = Setup::new()?;
    let r = s.node(&["certs", "renew", "all", "--csr-only", "--csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first: Vec<Vec<u8>> = files_under(&s.csrs())
        .iter()
        .map(fs::read)
        .collect::<Result<_, _>>()?;
    let r = s.node(&["certs", "renew", "all", "--csr-only", "--csr-dir", "csrs"])?;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--overwrite"), "{}", r.stderr);
    let again: Vec<Vec<u8>> = files_under(&s.csrs())
        .iter()
        .map(fs::read)
        .collect::<Result<_, _>>()?;
    assert_eq!(first, again);
    let r = s.node(&[
        "certs",
        "renew",
        "all",
        "--csr-only",
        "--csr-dir",
        "csrs",
        "--overwrite",
    ])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // --csr-dir is required (kubeadm: "please provide a path where CSR request should be
    // stored"), and the certificate folder is refused.
    let tree = s.snapshot()?;
    let r = s.node(&["certs", "renew", "all", "--csr-only"])?;
    assert_ne!(r.code, 0);
    let pki = s.pki().display().to_string();
    let r = s.node(&["certs", "renew", "all", "--csr-only", "--csr-dir", &pki])?;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("certificate folder"), "{}", r.stderr);
    assert_eq!(s.snapshot()?, tree);
    Ok(())
}

#[test]
fn signing_in_parts_exits_3_and_an_unsigned_item_refuses_the_installation() -> R {
    let s = Setup::new()?;
    let r = s.node(&["certs", "renew", "all", "--csr-only", "--csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The cluster-CA holder only: the etcd items are left for the etcd-CA holder.
    fs::rename(
        s.root().join("ca/pki/etcd/ca.key"),
        s.root().join("etcd-ca.key"),
    )?;
    let r = s.run("ca", &["certs", "sign-csrs", "--csr-dir", "csrs"])?;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("[certs] etcd-server needs etcd-ca, which was not given; skipped"),
        "{}",
        r.stdout
    );
    assert!(!s.csrs().join("etcd-server.crt").exists());
    refused(&s, "etcd-server.crt", "has not been signed")?;
    // The etcd-CA holder signs the rest; what is signed is kept.
    fs::rename(
        s.root().join("etcd-ca.key"),
        s.root().join("ca/pki/etcd/ca.key"),
    )?;
    let r = s.run(
        "ca",
        &["certs", "sign-csrs", "--csr-dir", "csrs", "-o", "json"],
    )?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let status = |n: &str| -> Res<String> {
        let items = v["items"].as_array().ok_or("no items")?;
        let i = items.iter().find(|i| i["name"] == n).ok_or("no item")?;
        Ok(i["status"].as_str().ok_or("no status")?.to_owned())
    };
    assert_eq!(status("apiserver")?, "alreadySigned");
    assert_eq!(status("etcd-server")?, "signed");
    let r = s.node(&["certs", "renew", "all", "--from-csr-dir", "csrs"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    Ok(())
}

#[test]
fn one_item_is_installed_alone_and_reported_as_json() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    let old = Certificate::from_pem(&s.live_pem("apiserver")?)?;
    let untouched = fs::read(s.node_dir().join("admin.conf"))?;
    let r = s.node(&[
        "certs",
        "renew",
        "apiserver",
        "--from-csr-dir",
        "csrs",
        "-o",
        "json",
    ])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let items = v["items"].as_array().ok_or("no items")?;
    assert_eq!(items.len(), 1);
    let new = Certificate::from_pem(&s.live_pem("apiserver")?)?;
    assert_eq!(items[0]["name"], "apiserver");
    assert_eq!(items[0]["status"], "installed");
    assert_eq!(items[0]["serial"], new.serial_hex());
    assert_ne!(new.serial(), old.serial());
    // Only the apiserver was installed.
    assert_eq!(fs::read(s.node_dir().join("admin.conf"))?, untouched);
    let r = s.node(&["verify"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    Ok(())
}

/// A CA key URI is refused in the external-CA modes (no CA key signs on the node), naming the
/// flag, with nothing written.
#[test]
fn a_ca_key_uri_is_refused_in_the_external_modes() -> R {
    let s = Setup::new()?;
    let before = files_under(&s.node_dir());
    for (args, flag) in [
        (
            vec![
                "certs",
                "renew",
                "all",
                "--csr-only",
                "--csr-dir",
                "csrs",
                "--ca-key-uri",
                "pkcs11:token=t;object=ca",
            ],
            "--ca-key-uri",
        ),
        (
            vec![
                "certs",
                "renew",
                "all",
                "--from-csr-dir",
                "csrs",
                "--pkcs11-module",
                "/nonexistent.so",
            ],
            "--pkcs11-module",
        ),
    ] {
        let r = s.node(&args)?;
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{flag}: --csr-only and --from-csr-dir sign nothing"
            )),
            "{}",
            r.stderr
        );
    }
    assert_eq!(files_under(&s.node_dir()), before, "nothing written");
    assert!(!s.csrs().exists());
    Ok(())
}
