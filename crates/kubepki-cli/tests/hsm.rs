//! CA keys in a PKCS#11 token from the command line (issue 18), against SoftHSM2 with a fresh
//! token per test: `ca create --key-uri` for every algorithm (only the certificate written, the
//! private key object sensitive and not extractable), `sign`, `sign-request`, `user create`,
//! `node kubelet-*` and `certs sign-csrs` with key URIs, every output accepted by `openssl
//! verify -x509_strict`; wrong PIN, missing module, unknown token, ambiguous URI, a certificate
//! of another key: one line naming the URI without the PIN, exit 1, nothing written.
//!
//! Without SoftHSM2 the tests are skipped, except under CI (`CI` set), where that fails.
#![cfg(feature = "pkcs11")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_kubeadm::Kubeconfig;

mod common;
use common::{BIN, Run, TREE, TREE_P256, files_under, side_flags};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MODULE: &str = kubepki_interop::SOFTHSM_MODULE;
const PIN: &str = kubepki_interop::SOFTHSM_PIN;
const WRONG_PIN: &str = "wr0ng-PIN-1166";

/// A folder with its own SoftHSM2 configuration and one fresh token `T` (user PIN [`PIN`]).
struct Token {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Token {
    /// `None` when SoftHSM2 is not installed (a failure under CI).
    fn new() -> Res<Option<Token>> {
        if !kubepki_interop::softhsm_installed() {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let conf = kubepki_interop::softhsm_token(dir.path())?;
        Ok(Some(Token { dir, conf }))
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, p: &str) -> String {
        self.root().join(p).display().to_string()
    }

    /// `kubepki args...` in the folder, with the PIN in KUBEPKI_PKCS11_PIN.
    fn run(&self, args: &[&str]) -> Res<Run> {
        self.run_with_pin(args, Some(PIN))
    }

    fn run_with_pin(&self, args: &[&str], pin: Option<&str>) -> Res<Run> {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.root())
            .env("SOFTHSM2_CONF", &self.conf)
            .env_remove("KUBEPKI_PKCS11_PIN");
        if let Some(pin) = pin {
            cmd.env("KUBEPKI_PKCS11_PIN", pin);
        }
        let out = cmd.output()?;
        Ok(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn ok(&self, args: &[&str]) -> Res<Run> {
        let r = self.run(args)?;
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        Ok(r)
    }

    /// `ca create --key-uri pkcs11:token=T;object=OBJECT` into DIR/NAME.crt.
    fn ca_in_token(&self, cn: &str, out_dir: &str, name: &str, object: &str, alg: &str) -> R {
        let uri = format!("pkcs11:token=T;object={object}");
        let r = self.ok(&[
            "ca",
            "create",
            "--cn",
            cn,
            "--out-dir",
            out_dir,
            "--name",
            name,
            "--algorithm",
            alg,
            "--key-uri",
            &uri,
            "--pkcs11-module",
            MODULE,
        ])?;
        assert!(r.stdout.contains("its key is in the token"), "{}", r.stdout);
        let written: Vec<_> = files_under(&self.root().join(out_dir))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(name))
            })
            .collect();
        assert_eq!(
            written,
            vec![self.root().join(out_dir).join(format!("{name}.crt"))]
        );
        Ok(())
    }

    /// A software key and a CSR for CN `cn` (`cn.key`, `cn.csr`).
    fn csr(&self, cn: &str) -> R {
        self.ok(&[
            "keygen",
            "--algorithm",
            "ECDSA-P256",
            "--out",
            &format!("{cn}.key"),
        ])?;
        self.ok(&[
            "csr",
            "--key",
            &format!("{cn}.key"),
            "--cn",
            cn,
            "--out",
            &format!("{cn}.csr"),
        ])?;
        Ok(())
    }
}

fn openssl_verify(dir: &Path, ca: &str, cert: &str) -> R {
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile", ca, cert])
        .current_dir(dir)
        .output()?;
    assert!(
        out.status.success(),
        "{cert}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The client certificate of a kubeconfig, written next to it as `<kubeconfig>.crt`.
fn kubeconfig_cert(dir: &Path, kubeconfig: &str) -> Res<String> {
    let p = dir.join(kubeconfig);
    let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
    let pem = kc
        .current_client_cert_pem(&p)?
        .ok_or("no client certificate")?;
    let out = format!("{kubeconfig}.crt");
    fs::write(dir.join(&out), pem)?;
    Ok(out)
}

/// A refusal: exit 1, one line on stderr naming `uri`, no PIN anywhere, nothing on stdout.
fn assert_refused(r: &Run, uri: &str, what: &str) {
    assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{what}: {}", r.stderr);
    assert!(
        r.stderr.contains(uri),
        "{what}: {} does not name {uri}",
        r.stderr
    );
    for pin in [PIN, WRONG_PIN] {
        assert!(
            !r.stderr.contains(pin) && !r.stdout.contains(pin),
            "{what}: {}",
            r.stderr
        );
    }
}

#[test]
fn ca_create_with_key_uri_for_each_algorithm_and_sign() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.csr("jane")?;
    for alg in [
        "RSA-2048",
        "RSA-3072",
        "RSA-4096",
        "ECDSA-P256",
        "ECDSA-P384",
        "Ed25519",
    ] {
        let dir = format!("out-{alg}");
        t.ca_in_token("kubernetes", &dir, "ca", &format!("ca-{alg}"), alg)?;
        let r = t.ok(&["inspect", &format!("{dir}/ca.crt")])?;
        let shown = match alg {
            "ECDSA-P256" => "P-256",
            "ECDSA-P384" => "P-384",
            "Ed25519" => "Ed25519",
            rsa => &rsa[4..],
        };
        assert!(r.stdout.contains(shown), "{alg}: {}", r.stdout);
        let leaf = format!("jane-{alg}.crt");
        t.ok(&[
            "sign",
            "--ca-cert",
            &format!("{dir}/ca.crt"),
            "--ca-key-uri",
            &format!("pkcs11:token=T;object=ca-{alg}"),
            "--pkcs11-module",
            MODULE,
            "--csr",
            "jane.csr",
            "--profile",
            "client",
            "--out",
            &leaf,
        ])?;
        openssl_verify(t.root(), &format!("{dir}/ca.crt"), &leaf)?;
    }
    // The private keys, seen by an independent PKCS#11 client when it is installed.
    if Command::new("pkcs11-tool").arg("--help").output().is_ok() {
        let out = Command::new("pkcs11-tool")
            .args([
                "--module",
                MODULE,
                "--token-label",
                "T",
                "--login",
                "--pin",
                PIN,
            ])
            .args(["--list-objects", "--type", "privkey"])
            .env("SOFTHSM2_CONF", &t.conf)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objects: Vec<&str> = text.split("Private Key Object").skip(1).collect();
        assert_eq!(objects.len(), 6, "{text}");
        for o in objects {
            assert!(
                o.contains("sensitive") && o.contains("never extractable"),
                "{o}"
            );
            assert!(
                o.contains("Usage:      sign") || o.contains("Usage: sign"),
                "{o}"
            );
            assert!(!o.contains("decrypt") && !o.contains("unwrap"), "{o}");
        }
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install opensc (pkcs11-tool)"
        );
    }
    Ok(())
}

#[test]
fn user_create_sign_request_and_node_commands_with_a_key_uri() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ca_in_token("kubernetes", "pki", "ca", "kubernetes-ca", "ECDSA-P256")?;
    // The PIN from a file named in the URI, the module from the URI: no flag, no environment.
    fs::write(t.root().join("hsm.pin"), format!("{PIN}\n"))?;
    let uri = format!(
        "pkcs11:token=T;object=kubernetes-ca?module-path={MODULE}&pin-source={}",
        t.path("hsm.pin")
    );
    let no_pin = |args: &[&str]| -> Res<Run> {
        let r = t.run_with_pin(args, None)?;
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        Ok(r)
    };
    no_pin(&[
        "user",
        "create",
        "jane",
        "--group",
        "dev",
        "--ca-cert",
        "pki/ca.crt",
        "--ca-key-uri",
        &uri,
        "--cluster-server",
        "https://192.0.2.10:6443",
        "--out-kubeconfig",
        "jane.conf",
    ])?;
    openssl_verify(
        t.root(),
        "pki/ca.crt",
        &kubeconfig_cert(t.root(), "jane.conf")?,
    )?;

    no_pin(&["user", "create", "bob", "--csr-only", "--out-dir", "req"])?;
    no_pin(&[
        "sign-request",
        "req/bob-csr.yaml",
        "--ca-cert",
        "pki/ca.crt",
        "--ca-key-uri",
        &uri,
        "--out",
        "bob.crt",
    ])?;
    openssl_verify(t.root(), "pki/ca.crt", "bob.crt")?;

    no_pin(&[
        "node",
        "kubelet-serving",
        "--node-name",
        "n1",
        "--cert-dir",
        "pki",
        "--ca-key-uri",
        &uri,
        "--ip",
        "192.0.2.21",
        "--out-dir",
        "kubelet",
    ])?;
    openssl_verify(t.root(), "pki/ca.crt", "kubelet/kubelet.crt")?;
    no_pin(&[
        "node",
        "kubelet-kubeconfig",
        "--node-name",
        "n1",
        "--cert-dir",
        "pki",
        "--ca-key-uri",
        &uri,
        "--cluster-server",
        "https://192.0.2.10:6443",
        "--out",
        "kubelet.conf",
    ])?;
    openssl_verify(
        t.root(),
        "pki/ca.crt",
        &kubeconfig_cert(t.root(), "kubelet.conf")?,
    )?;

    // With the key in the token there must be no ca.key.
    fs::write(t.root().join("pki/ca.key"), "stray")?;
    let r = t.run_with_pin(
        &[
            "node",
            "kubelet-serving",
            "--node-name",
            "n2",
            "--cert-dir",
            "pki",
            "--ca-key-uri",
            &uri,
            "--out-dir",
            "kubelet2",
        ],
        None,
    )?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("ca.key: exists"), "{}", r.stderr);
    assert!(!t.root().join("kubelet2").exists());
    Ok(())
}

#[test]
fn certs_sign_csrs_with_all_three_ca_keys_in_the_token() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ca_in_token("kubernetes", "ca/pki", "ca", "kubernetes-ca", "ECDSA-P256")?;
    t.ca_in_token(
        "front-proxy-ca",
        "ca/pki",
        "front-proxy-ca",
        "front-proxy-ca",
        "ECDSA-P256",
    )?;
    t.ca_in_token("etcd-ca", "ca/pki/etcd", "ca", "etcd-ca", "RSA-2048")?;
    let node = side_flags(Path::new("node"));
    let with_node = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(node.iter().cloned())
            .collect()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        t.ok(&a)
    };
    run(with_node(&["certs", "generate-csr"]))?;
    let r = run(with_node(&[
        "certs",
        "sign-csrs",
        "--pkcs11-module",
        MODULE,
        "--ca-cert",
        "ca/pki/ca.crt",
        "--ca-key-uri",
        "pkcs11:token=T;object=kubernetes-ca",
        "--front-proxy-ca-cert",
        "ca/pki/front-proxy-ca.crt",
        "--front-proxy-ca-key-uri",
        "pkcs11:token=T;object=front-proxy-ca",
        "--etcd-ca-cert",
        "ca/pki/etcd/ca.crt",
        "--etcd-ca-key-uri",
        "pkcs11:token=T;object=etcd-ca",
    ]))?;
    assert!(r.stdout.contains("12 certificates signed"), "{}", r.stdout);
    for (ca, leaf) in [
        ("ca/pki/ca.crt", "node/pki/apiserver.crt"),
        ("ca/pki/ca.crt", "node/pki/apiserver-kubelet-client.crt"),
        (
            "ca/pki/front-proxy-ca.crt",
            "node/pki/front-proxy-client.crt",
        ),
        ("ca/pki/etcd/ca.crt", "node/pki/etcd/server.crt"),
        ("ca/pki/etcd/ca.crt", "node/pki/etcd/peer.crt"),
        ("ca/pki/etcd/ca.crt", "node/pki/apiserver-etcd-client.crt"),
    ] {
        openssl_verify(t.root(), ca, leaf)?;
    }
    openssl_verify(
        t.root(),
        "ca/pki/ca.crt",
        &kubeconfig_cert(t.root(), "node/admin.conf")?,
    )?;
    for f in ["ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"] {
        fs::copy(
            t.root().join("ca/pki").join(f),
            t.root().join("node/pki").join(f),
        )?;
    }
    run(with_node(&["init"]))?;
    run(with_node(&["verify"]))?;
    let ca_keys: Vec<_> = files_under(t.root())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("ca.key"))
        .collect();
    assert!(ca_keys.is_empty(), "{ca_keys:?}");
    Ok(())
}

#[test]
fn refusals_name_the_uri_never_the_pin_and_write_nothing() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ca_in_token("kubernetes", "pki", "ca", "a", "ECDSA-P256")?;
    t.ca_in_token("other", "pki2", "ca", "b", "ECDSA-P256")?;
    t.ok(&[
        "ca",
        "create",
        "--cn",
        "soft",
        "--out-dir",
        "soft",
        "--algorithm",
        "RSA-2048",
    ])?;
    t.csr("jane")?;
    let sign = |ca: &str, uri: &str, module: &str, pin: Option<&str>| {
        t.run_with_pin(
            &[
                "sign",
                "--ca-cert",
                ca,
                "--ca-key-uri",
                uri,
                "--pkcs11-module",
                module,
                "--csr",
                "jane.csr",
                "--profile",
                "client",
                "--out",
                "out.crt",
            ],
            pin,
        )
    };
    let cases: [(&str, &str, &str, Option<&str>, &str); 7] = [
        (
            "wrong PIN",
            "pki/ca.crt",
            "pkcs11:token=T;object=a",
            Some(WRONG_PIN),
            "login",
        ),
        (
            "no PIN",
            "pki/ca.crt",
            "pkcs11:token=T;object=a",
            None,
            "no PIN",
        ),
        (
            "unknown token",
            "pki/ca.crt",
            "pkcs11:token=Nope;object=a",
            Some(PIN),
            "no token",
        ),
        (
            "two keys",
            "pki/ca.crt",
            "pkcs11:token=T",
            Some(PIN),
            "2 private keys",
        ),
        (
            "no key",
            "pki/ca.crt",
            "pkcs11:token=T;object=zzz",
            Some(PIN),
            "no private key",
        ),
        (
            "another key",
            "pki2/ca.crt",
            "pkcs11:token=T;object=a",
            Some(PIN),
            "not the key of",
        ),
        (
            "another algorithm",
            "soft/ca.crt",
            "pkcs11:token=T;object=a",
            Some(PIN),
            "RSA 2048",
        ),
    ];
    for (what, ca, uri, pin, says) in cases {
        let r = sign(ca, uri, MODULE, pin)?;
        assert_refused(&r, uri, what);
        assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
        assert!(!t.root().join("out.crt").exists(), "{what}");
    }
    let r = sign(
        "pki/ca.crt",
        "pkcs11:token=T;object=a",
        "/nonexistent/libpkcs11.so",
        Some(PIN),
    )?;
    assert_refused(&r, "pkcs11:token=T;object=a", "missing module");
    assert!(
        r.stderr.contains("/nonexistent/libpkcs11.so"),
        "{}",
        r.stderr
    );

    // A PIN on the command line is refused (usage, exit 64) without echoing it.
    let r = sign(
        "pki/ca.crt",
        &format!("pkcs11:token=T;object=a?pin-value={PIN}"),
        MODULE,
        None,
    )?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        !r.stderr.contains(PIN) && r.stderr.contains("pin-value"),
        "{}",
        r.stderr
    );

    // sign-csrs: a CA certificate without a key file or URI is a usage error.
    let r = t.run(&[
        "certs",
        "sign-csrs",
        "--ca-cert",
        "pki/ca.crt",
        "--cert-dir",
        "node/pki",
    ])?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("needs its key: --ca-key FILE or --ca-key-uri URI"),
        "{}",
        r.stderr
    );

    // A key that exists is not replaced, and no certificate is written.
    let r = t.run(&[
        "ca",
        "create",
        "--cn",
        "again",
        "--out-dir",
        "again",
        "--key-uri",
        "pkcs11:token=T;object=a",
        "--pkcs11-module",
        MODULE,
    ])?;
    assert_refused(&r, "pkcs11:token=T;object=a", "existing key");
    assert!(!t.root().join("again").exists());
    // Wrong PIN at creation: nothing written either.
    let r = t.run_with_pin(
        &[
            "ca",
            "create",
            "--cn",
            "x",
            "--out-dir",
            "x",
            "--key-uri",
            "pkcs11:token=T;object=x",
            "--pkcs11-module",
            MODULE,
        ],
        Some(WRONG_PIN),
    )?;
    assert_refused(&r, "pkcs11:token=T;object=x", "wrong PIN at creation");
    assert!(!t.root().join("x").exists());
    Ok(())
}

/// The kubeadm tree with all three CA keys in the token: `init --ca-key-uri
/// --front-proxy-ca-key-uri --etcd-ca-key-uri` makes the CA certificates with the token's keys
/// and signs every leaf and kubeconfig through them, with no `*ca.key` file anywhere; `openssl
/// verify -x509_strict` accepts the leaves; `init` again reuses everything; `certs
/// check-expiration` does not call those CAs externally managed; `certs renew all` renews
/// through the token; `node control-plane` makes a second node from the first one's files with
/// the same URIs; a `ca.key` next to a key URI is refused.
#[test]
fn init_renew_and_check_expiration_with_the_ca_keys_in_the_token() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    // The three key pairs, generated inside the token (the certificates `ca create` writes
    // here are not used: init makes the kubeadm CA certificates with the same keys).
    for (cn, object) in [("k", "ca"), ("f", "front-proxy-ca"), ("e", "etcd-ca")] {
        t.ca_in_token(cn, "side", object, object, "ECDSA-P256")?;
    }
    let uri = |object: &str| format!("pkcs11:token=T;object={object};type=private");
    let (ca, fp, etcd) = (uri("ca"), uri("front-proxy-ca"), uri("etcd-ca"));
    let keys = [
        "--ca-key-uri",
        ca.as_str(),
        "--front-proxy-ca-key-uri",
        fp.as_str(),
        "--etcd-ca-key-uri",
        etcd.as_str(),
        "--pkcs11-module",
        MODULE,
    ];
    let with = |cmd: &[&str], keys: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(TREE_P256.iter())
            .chain(keys.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };

    t.ok(&strs(&with(&["init"], &keys)))?;
    let made = files_under(&t.root().join("t"));
    assert!(
        !made.iter().any(|p| p.to_string_lossy().ends_with("ca.key")),
        "{made:?}"
    );
    assert_eq!(made.len(), 27 - 3, "{made:?}");
    // The CA certificates carry the token's public keys (those of the side certificates).
    let pubkey = |file: &str| -> Res<Vec<u8>> {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-pubkey", "-in", file])
            .current_dir(t.root())
            .output()?;
        assert!(out.status.success());
        Ok(out.stdout)
    };
    assert_eq!(pubkey("t/pki/ca.crt")?, pubkey("side/ca.crt")?);
    assert_eq!(pubkey("t/pki/etcd/ca.crt")?, pubkey("side/etcd-ca.crt")?);
    // Every leaf of the tree under its CA.
    for (ca_file, leaf) in [
        ("t/pki/ca.crt", "t/pki/apiserver.crt"),
        ("t/pki/ca.crt", "t/pki/apiserver-kubelet-client.crt"),
        ("t/pki/front-proxy-ca.crt", "t/pki/front-proxy-client.crt"),
        ("t/pki/etcd/ca.crt", "t/pki/etcd/server.crt"),
        ("t/pki/etcd/ca.crt", "t/pki/etcd/peer.crt"),
        ("t/pki/etcd/ca.crt", "t/pki/etcd/healthcheck-client.crt"),
        ("t/pki/etcd/ca.crt", "t/pki/apiserver-etcd-client.crt"),
    ] {
        openssl_verify(t.root(), ca_file, leaf)?;
    }
    // verify checks the tree as it is (a CA without its key file is not a failure).
    let v = t.run(&strs(&with(&["verify"], &[])))?;
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let admin = kubeconfig_cert(&t.root().join("t"), "admin.conf")?;
    openssl_verify(t.root(), "t/pki/ca.crt", &format!("t/{admin}"))?;

    // Again: everything is reused, nothing written.
    let again = t.ok(&strs(&with(&["init"], &keys)))?;
    assert_eq!(files_under(&t.root().join("t")).len(), made.len() + 1); // + admin.conf.crt
    assert!(!again.stdout.contains("Generating"), "{}", again.stdout);

    // check-expiration: with the key URIs no CA is externally managed; without, all are.
    let check = |keys: &[&str]| -> Res<String> {
        let r = t.ok(&strs(&with(
            &["certs", "check-expiration", "-o", "json"],
            keys,
        )))?;
        Ok(r.stdout)
    };
    let managed = check(&keys)?;
    assert!(
        !managed.contains("\"externallyManaged\": true"),
        "{managed}"
    );
    let unmanaged = check(&[])?;
    assert!(
        unmanaged.contains("\"externallyManaged\": true"),
        "{unmanaged}"
    );

    // renew all through the token.
    let before = fs::read(t.root().join("t/pki/apiserver.crt"))?;
    t.ok(&strs(&with(&["certs", "renew", "all"], &keys)))?;
    assert_ne!(fs::read(t.root().join("t/pki/apiserver.crt"))?, before);
    openssl_verify(t.root(), "t/pki/ca.crt", "t/pki/apiserver.crt")?;
    assert!(
        !files_under(&t.root().join("t"))
            .iter()
            .any(|p| p.to_string_lossy().ends_with("ca.key"))
    );

    // A second control-plane node from the first one's files, the CA keys in the token: the
    // certificates are copied, no key file is needed or made, its leaves chain to the CAs.
    let mut node = vec![
        "node",
        "control-plane",
        "--from-cert-dir",
        "t/pki",
        "--cert-dir",
        "t2/pki",
        "--kubeconfig-dir",
        "t2",
        "--node-name",
        "cp2",
        "--apiserver-advertise-address",
        "192.0.2.11",
        "--control-plane-endpoint",
        "cp.example.test:6443",
        "--encryption-algorithm",
        "ECDSA-P256",
    ];
    node.extend(keys);
    t.ok(&node)?;
    let second = files_under(&t.root().join("t2"));
    assert!(
        !second
            .iter()
            .any(|p| p.to_string_lossy().ends_with("ca.key")),
        "{second:?}"
    );
    assert_eq!(
        fs::read(t.root().join("t2/pki/ca.crt"))?,
        fs::read(t.root().join("t/pki/ca.crt"))?
    );
    openssl_verify(t.root(), "t/pki/ca.crt", "t2/pki/apiserver.crt")?;
    openssl_verify(t.root(), "t/pki/etcd/ca.crt", "t2/pki/etcd/peer.crt")?;

    // A key file as well as the URI: refused, nothing changed.
    fs::copy(
        t.root().join("t/pki/apiserver.key"),
        t.root().join("t/pki/ca.key"),
    )?;
    let r = t.run(&strs(&with(&["init"], &keys)))?;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("ca.key") && r.stderr.contains("held outside"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(PIN));
    Ok(())
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `ca create --key-uri` checks the CN before it makes a key in the token: a bad CN is a usage
/// error (exit 64, as without --key-uri) that leaves no key behind, so the same URI works on
/// the next try.
#[test]
fn ca_create_with_a_bad_cn_leaves_no_key_in_the_token() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    for cn in ["", "evil\u{1b}[31m", "a\u{202e}b"] {
        let r = t.run(&[
            "ca",
            "create",
            "--cn",
            cn,
            "--out-dir",
            "pki",
            "--algorithm",
            "ECDSA-P256",
            "--key-uri",
            "pkcs11:token=T;object=ca",
            "--pkcs11-module",
            MODULE,
        ])?;
        assert_eq!(r.code, 64, "{cn:?}: {}", r.stderr);
        assert!(!t.root().join("pki").exists(), "{cn:?}");
    }
    // No key named "ca" was left: creating it now works.
    t.ca_in_token("kubernetes", "pki", "ca", "ca", "ECDSA-P256")?;
    Ok(())
}

/// The PIN from a `pin-source` file with a CRLF line ending, from one without a line ending
/// and through a symlink, with no PIN in the environment: each a fresh process and login.
#[test]
fn pin_source_line_endings_and_symlinks_log_in() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    fs::write(t.root().join("crlf.pin"), format!("{PIN}\r\n"))?;
    fs::write(t.root().join("bare.pin"), PIN)?;
    std::os::unix::fs::symlink(t.root().join("crlf.pin"), t.root().join("link.pin"))?;
    for (i, pin_file) in ["crlf.pin", "bare.pin", "link.pin"].into_iter().enumerate() {
        let uri = format!("pkcs11:token=T;object=k{i}?pin-source={}", t.path(pin_file));
        let r = t.run_with_pin(
            &[
                "ca",
                "create",
                "--cn",
                "kubernetes",
                "--out-dir",
                &format!("pki{i}"),
                "--algorithm",
                "ECDSA-P256",
                "--key-uri",
                &uri,
                "--pkcs11-module",
                MODULE,
            ],
            None,
        )?;
        assert_eq!(r.code, 0, "{pin_file}: {}", r.stderr);
    }
    Ok(())
}

/// A token whose public key object (same label and id) belongs to another key pair than the
/// private key: the CA certificate matches the public object, so only checking the signature
/// finds out. Refused, exit 1, nothing written (no certificate that does not verify).
#[test]
fn a_public_key_object_of_another_key_pair_gives_no_broken_certificate() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ok(&[
        "ca",
        "create",
        "--cn",
        "mixed",
        "--out-dir",
        "soft",
        "--algorithm",
        "ECDSA-P256",
    ])?;
    let sh = |program: &str, args: &[&str]| -> R {
        let out = Command::new(program)
            .args(args)
            .current_dir(t.root())
            .env("SOFTHSM2_CONF", &t.conf)
            .output()?;
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    sh(
        "openssl",
        &[
            "pkey",
            "-in",
            "soft/ca.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "b.pub.der",
        ],
    )?;
    sh(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-outform",
            "DER",
            "-out",
            "a.der",
        ],
    )?;
    for (file, kind) in [("a.der", "privkey"), ("b.pub.der", "pubkey")] {
        sh(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--login",
                "--pin",
                PIN,
                "--write-object",
                file,
                "--type",
                kind,
                "--label",
                "mix",
                "--id",
                "07",
            ],
        )?;
    }
    t.csr("jane")?;
    let r = t.run(&[
        "sign",
        "--ca-cert",
        "soft/ca.crt",
        "--ca-key-uri",
        "pkcs11:token=T;object=mix",
        "--pkcs11-module",
        MODULE,
        "--csr",
        "jane.csr",
        "--profile",
        "client",
        "--out",
        "out.crt",
    ])?;
    assert_refused(
        &r,
        "pkcs11:token=T;object=mix",
        "mismatched public key object",
    );
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
    assert!(!t.root().join("out.crt").exists());
    Ok(())
}

/// `ca create --key-uri --force` over a software CA: the old NAME.key would sit beside a
/// certificate it does not match (and kubeadm would take it). Refused before the token is
/// touched; both old files stay as they were.
#[test]
fn ca_create_with_key_uri_refuses_to_leave_a_stale_key_file() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ok(&[
        "ca",
        "create",
        "--cn",
        "soft",
        "--out-dir",
        "pki",
        "--algorithm",
        "ECDSA-P256",
    ])?;
    let before = (
        fs::read(t.root().join("pki/ca.crt"))?,
        fs::read(t.root().join("pki/ca.key"))?,
    );
    let r = t.run(&[
        "ca",
        "create",
        "--cn",
        "kubernetes",
        "--out-dir",
        "pki",
        "--force",
        "--algorithm",
        "ECDSA-P256",
        "--key-uri",
        "pkcs11:token=T;object=ca",
        "--pkcs11-module",
        MODULE,
    ])?;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ca.key"), "{}", r.stderr);
    let after = (
        fs::read(t.root().join("pki/ca.crt"))?,
        fs::read(t.root().join("pki/ca.key"))?,
    );
    assert!(before == after, "the old CA files changed");
    // Nothing was made in the token: the object name is still free.
    t.ca_in_token("kubernetes", "pki2", "ca", "ca", "ECDSA-P256")?;
    Ok(())
}

/// One token key given for two kubeadm CAs: refused (kubeadm's CAs have distinct keys), exit
/// 1, nothing written, nothing signed.
#[test]
fn init_refuses_one_token_key_for_two_cas() -> R {
    let Some(t) = Token::new()? else {
        return Ok(());
    };
    t.ca_in_token("k", "side", "ca", "ca", "ECDSA-P256")?;
    let uri = "pkcs11:token=T;object=ca;type=private";
    let keys = [
        "--ca-key-uri",
        uri,
        "--etcd-ca-key-uri",
        uri,
        "--pkcs11-module",
        MODULE,
    ];
    let r = t.run(&[&["init"][..], &TREE, &keys].concat())?;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("distinct keys"), "{}", r.stderr);
    assert!(files_under(&t.root().join("t")).is_empty());
    Ok(())
}
