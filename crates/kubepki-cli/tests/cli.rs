//! The CLI end to end: the README flow, the manifest it writes, and bad input (one line naming
//! the file, exit 1, nothing written).

use std::fs;
use std::path::Path;

use base64::Engine as _;
use kubepki_csr::KubeCsr;

type R = Result<(), Box<dyn std::error::Error>>;

mod cfssl;
mod common;
use common::kubepki;

fn ok(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let r = kubepki(dir, args)?;
    if r.code != 0 {
        return Err(format!("kubepki {} failed: {}", args.join(" "), r.stderr).into());
    }
    Ok(r.stdout)
}

fn vector(name: &str) -> String {
    format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn readme_flow_ca_keygen_csr_sign() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(
        d,
        &[
            "ca",
            "create",
            "--cn",
            "kubernetes",
            "--out-dir",
            "pki",
            "--algorithm",
            "ECDSA-P256",
        ],
    )?;
    ok(
        d,
        &[
            "keygen",
            "--algorithm",
            "RSA-2048",
            "--out",
            "jane.key",
            "--pub-out",
            "jane.pub",
        ],
    )?;
    ok(
        d,
        &[
            "csr",
            "--key",
            "jane.key",
            "--cn",
            "jane",
            "--org",
            "dev",
            "--org",
            "ops",
            "--out",
            "jane.csr",
            "--k8s-manifest",
            "jane.yaml",
            "--expiration-seconds",
            "86400",
        ],
    )?;
    ok(
        d,
        &[
            "sign",
            "--ca-cert",
            "pki/ca.crt",
            "--ca-key",
            "pki/ca.key",
            "--csr",
            "jane.csr",
            "--profile",
            "client",
            "--out",
            "jane.crt",
        ],
    )?;
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        fs::metadata(d.join(p))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode("pki/ca.key"), 0o600);
    assert_eq!(mode("pki/ca.crt"), 0o644);
    assert_eq!(mode("jane.key"), 0o600);
    assert_eq!(mode("jane.pub"), 0o600);
    assert_eq!(mode("jane.crt"), 0o644);

    // The manifest: base64 -> PEM -> PKCS#10, valid under the API server's rules.
    let m = KubeCsr::from_slice(&fs::read(d.join("jane.yaml"))?)?;
    assert_eq!(m.spec.signer_name, "kubernetes.io/kube-apiserver-client");
    assert_eq!(m.spec.expiration_seconds, Some(86400));
    assert_eq!(
        m.spec.usages,
        ["digital signature", "key encipherment", "client auth"]
    );
    let pem = base64::engine::general_purpose::STANDARD.decode(&m.spec.request)?;
    assert_eq!(pem, fs::read(d.join("jane.csr"))?);
    let csr = m.validate()?;
    assert_eq!(csr.common_name(), Some("jane"));
    assert_eq!(csr.organizations(), ["dev", "ops"]);

    let cert = kubepki_ca::Certificate::from_pem(&fs::read(d.join("jane.crt"))?)?;
    let ca = kubepki_ca::CertificateAuthority::from_certificate(
        kubepki_ca::Certificate::from_pem(&fs::read(d.join("pki/ca.crt"))?)?,
    )?;
    ca.verify(
        &cert,
        Some(&kubepki_csr::ExtKeyUsage::ClientAuth),
        time::OffsetDateTime::now_utc(),
    )?;

    // inspect, text and JSON.
    let text = ok(d, &["inspect", "jane.crt"])?;
    assert!(
        text.contains("subject: O = dev, O = ops, CN = jane"),
        "{text}"
    );
    let json = ok(d, &["inspect", "-o", "json", "jane.key"])?;
    assert!(json.contains("\"algorithm\": \"RSA-2048\""), "{json}");
    let key_body = fs::read_to_string(d.join("jane.key"))?;
    let secret_line = key_body.lines().nth(2).unwrap_or("x");
    assert!(!json.contains(secret_line) && !text.contains(secret_line));
    Ok(())
}

#[test]
fn existing_files_are_never_overwritten_without_force() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "a.key"],
    )?;
    let before = fs::read(d.join("a.key"))?;
    let r = kubepki(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "a.key"],
    )?;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("a.key: already exists"), "{}", r.stderr);
    assert_eq!(fs::read(d.join("a.key"))?, before);
    ok(
        d,
        &[
            "keygen",
            "--algorithm",
            "ECDSA-P256",
            "--out",
            "a.key",
            "--force",
        ],
    )?;
    assert_ne!(fs::read(d.join("a.key"))?, before);
    assert_eq!(files(d), ["a.key"]);
    Ok(())
}

/// Each bad input: exit 1 (never 101, a panic), one line naming the file, no output file.
#[test]
fn bad_input_is_one_clear_line_and_writes_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(
        d,
        &[
            "ca",
            "create",
            "--cn",
            "kubernetes",
            "--out-dir",
            "ca",
            "--algorithm",
            "ECDSA-P256",
        ],
    )?;
    ok(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "good.key"],
    )?;
    ok(
        d,
        &["csr", "--key", "good.key", "--cn", "x", "--out", "good.csr"],
    )?;
    ok(
        d,
        &[
            "ca",
            "create",
            "--cn",
            "other",
            "--out-dir",
            "other",
            "--algorithm",
            "ECDSA-P256",
        ],
    )?;
    ok(
        d,
        &[
            "sign",
            "--ca-cert",
            "ca/ca.crt",
            "--ca-key",
            "ca/ca.key",
            "--csr",
            "good.csr",
            "--profile",
            "client",
            "--out",
            "leaf.crt",
        ],
    )?;
    fs::write(d.join("garbage.der"), [0x30, 0x82, 0xff, 0xff, 0x01, 0x02])?;
    let v = |n: &str| vector(n);
    let (trunc, wrong, enc, small, tampered) = (
        v("keys/rsa2048-truncated.key"),
        v("keys/cert-not-a-key.crt"),
        v("keys/rsa2048-encrypted-pkcs8.key"),
        v("keys/rsa1024-pkcs1.key"),
        v("csr/tampered-signature.csr"),
    );
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["csr", "--key", &trunc, "--cn", "x", "--out", "o.csr"],
            "rsa2048-truncated.key",
            "truncated",
        ),
        (
            vec!["csr", "--key", &wrong, "--cn", "x", "--out", "o.csr"],
            "cert-not-a-key.crt",
            "no private key found",
        ),
        (
            vec!["csr", "--key", "garbage.der", "--cn", "x", "--out", "o.csr"],
            "garbage.der",
            "no PEM block",
        ),
        (
            vec!["csr", "--key", &enc, "--cn", "x", "--out", "o.csr"],
            "rsa2048-encrypted-pkcs8.key",
            "encrypted",
        ),
        (
            vec!["csr", "--key", &small, "--cn", "x", "--out", "o.csr"],
            "rsa1024-pkcs1.key",
            "1024 bits",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "ca/ca.crt",
                "--ca-key",
                "ca/ca.key",
                "--csr",
                &tampered,
                "--profile",
                "client",
                "--out",
                "o.crt",
            ],
            "tampered-signature.csr",
            "signature does not verify",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "ca/ca.crt",
                "--ca-key",
                "other/ca.key",
                "--csr",
                "good.csr",
                "--profile",
                "client",
                "--out",
                "o.crt",
            ],
            "other/ca.key",
            "does not match",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "leaf.crt",
                "--ca-key",
                "good.key",
                "--csr",
                "good.csr",
                "--profile",
                "client",
                "--out",
                "o.crt",
            ],
            "leaf.crt",
            "not a CA",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "garbage.der",
                "--ca-key",
                "ca/ca.key",
                "--csr",
                "good.csr",
                "--profile",
                "client",
                "--out",
                "o.crt",
            ],
            "garbage.der",
            "no PEM block",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "ca/ca.crt",
                "--ca-key",
                "ca/ca.key",
                "--csr",
                "missing.csr",
                "--profile",
                "client",
                "--out",
                "o.crt",
            ],
            "missing.csr",
            "No such file",
        ),
        (
            vec!["inspect", "garbage.der"],
            "garbage.der",
            "not a certificate",
        ),
        (
            vec!["inspect", &trunc],
            "rsa2048-truncated.key",
            "truncated",
        ),
        (
            vec!["keygen", "--algorithm", "RSA-1024", "--out", "o.key"],
            "--algorithm",
            "valid: RSA-2048",
        ),
        (
            vec![
                "sign",
                "--ca-cert",
                "ca/ca.crt",
                "--ca-key",
                "ca/ca.key",
                "--csr",
                "good.csr",
                "--profile",
                "client",
                "--out",
                "o.crt",
                "--validity",
                "100000d",
            ],
            "o.crt",
            "after its CA",
        ),
    ];
    let before = files(d);
    for (args, file, cause) in cases {
        let r = kubepki(d, &args)?;
        // A flag value is a usage error (64, as clap's own); a file's content is 1.
        let want = if file.starts_with("--") { 64 } else { 1 };
        assert_eq!(r.code, want, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("kubepki: error: "), "{}", r.stderr);
        assert!(r.stderr.contains(cause), "{args:?}: {}", r.stderr);
        if file != "o.crt" {
            assert!(r.stderr.contains(file), "{args:?}: {}", r.stderr);
        }
        assert_eq!(files(d), before, "{args:?} wrote something");
    }
    Ok(())
}

/// A CA common name outside printable ASCII is refused before a key is made, with a usage error
/// that says why (kubeadm's CA profile puts the CN into a DNS SAN, an IA5String; Go refuses it
/// too), and nothing is written; a CN with a space is fine.
#[test]
fn ca_create_refuses_a_non_ascii_common_name_before_making_a_key() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let r = kubepki(
        d,
        &[
            "ca",
            "create",
            "--cn",
            "Jürgen CA",
            "--out-dir",
            "pki",
            "--algorithm",
            "RSA-4096",
        ],
    )?;
    assert_eq!(r.code, 64, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--cn") && r.stderr.contains("Jürgen CA") && r.stderr.contains("ASCII"),
        "{}",
        r.stderr
    );
    assert!(files(d).is_empty(), "{:?}", files(d));
    ok(
        d,
        &["ca", "create", "--cn", "My Cluster CA", "--out-dir", "pki"],
    )?;
    let crt = std::fs::read(d.join("pki/ca.crt"))?;
    let cert = kubepki_ca::Certificate::from_pem(&crt)?;
    assert_eq!(cert.subject_alt_names().dns, ["My Cluster CA"]);
    Ok(())
}

/// `init` gives a CA the SubjectKeyIdentifier of the version modelled
/// (truncated SHA-256 from 1.35, the default v1.37.0), while `ca create` — documented for
/// making a kubeadm tree's CAs (docs/hsm.md) — always used SHA-1, so the same default run made
/// CAs of two kinds. `ca create` now follows the default version as `init` does.
#[test]
fn ca_create_derives_the_key_identifier_as_init_does_by_default() -> R {
    let d = tempfile::tempdir()?;
    let r = kubepki(
        d.path(),
        &["ca", "create", "--cn", "kubernetes", "--out-dir", "o"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut init = vec!["init"];
    init.extend(common::TREE);
    let r = kubepki(d.path(), &init)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let made = kubepki_ca::Certificate::from_pem(&fs::read(d.path().join("o/ca.crt"))?)?;
    let tree = kubepki_ca::Certificate::from_pem(&fs::read(d.path().join("t/pki/ca.crt"))?)?;
    let sha256 = |c: &kubepki_ca::Certificate| {
        kubepki_ca::KeyIdMethod::Sha256Truncated.key_id(c.public_key_der())
    };
    assert_eq!(
        tree.subject_key_id(),
        Some(&sha256(&tree)?[..]),
        "init, v1.37.0"
    );
    assert_eq!(
        made.subject_key_id(),
        Some(&sha256(&made)?[..]),
        "ca create: SHA-1 ({:?})",
        kubepki_ca::KeyIdMethod::Sha1.key_id(made.public_key_der())?
    );
    Ok(())
}

/// `inspect` on a kubeconfig (issue 23, item 5): for each of a tree's five kubeconfigs the
/// user's identity, groups and expiry, whether its certificate chains to the cluster's CA data
/// and its key belongs to it, and the CA's fingerprint (checked against `openssl x509
/// -fingerprint`); files a kubeconfig names are read relative to it; no key material or token
/// ever appears.
#[test]
fn inspect_describes_kubeconfigs_without_key_material() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &common::INIT_TREE)?;
    let fingerprint = {
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(d.join("t/pki/ca.crt"))
            .output()?;
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout)?;
        text.trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .replace(':', "")
            .to_lowercase()
    };
    for (file, cn, groups) in [
        (
            "admin.conf",
            "kubernetes-admin",
            vec!["kubeadm:cluster-admins"],
        ),
        (
            "super-admin.conf",
            "kubernetes-super-admin",
            vec!["system:masters"],
        ),
        ("kubelet.conf", "system:node:cp1", vec!["system:nodes"]),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            vec![],
        ),
        ("scheduler.conf", "system:kube-scheduler", vec![]),
    ] {
        let path = format!("t/{file}");
        let k = kubepki_kubeadm::Kubeconfig::parse(&fs::read(d.join(&path))?)?;
        let cert = kubepki_ca::Certificate::from_pem(
            &base64::engine::general_purpose::STANDARD.decode(
                k.users[0]
                    .user
                    .client_certificate_data
                    .as_deref()
                    .unwrap_or_default(),
            )?,
        )?;
        let key_data = k.users[0].user.client_key_data.clone().unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(&ok(d, &["inspect", "-o", "json", &path])?)?;
        assert_eq!(json["type"], "kubeconfig", "{file}");
        let user = &json["users"][0];
        assert_eq!(user["commonName"], cn, "{file}");
        assert_eq!(user["groups"], serde_json::json!(groups), "{file}");
        assert_eq!(
            user["notAfter"],
            kubepki_ca::rfc3339(cert.not_after()),
            "{file}"
        );
        assert_eq!(user["chainsTo"][0]["chains"], true, "{file}");
        assert_eq!(user["keyMatchesCertificate"], true, "{file}");
        assert_eq!(
            json["clusters"][0]["certificateAuthorities"][0]["sha256Fingerprint"],
            fingerprint.as_str(),
            "{file}"
        );
        let text = ok(d, &["inspect", &path])?;
        assert!(text.contains(&format!("commonName: {cn}")), "{text}");
        for out in [&text, &json.to_string()] {
            assert!(
                !out.contains("PRIVATE KEY") && !out.contains(&key_data[..40]),
                "{file}: {out}"
            );
        }
    }
    // A kubeconfig elsewhere naming files relative to itself, a token user, and a cluster
    // whose CA did not issue the certificate.
    fs::create_dir(d.join("k"))?;
    fs::write(
        d.join("k/user.conf"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://192.0.2.10:6443\n    certificate-authority: ../t/pki/ca.crt\n- name: other\n  cluster:\n    server: https://192.0.2.11:6443\n    certificate-authority: ../t/pki/front-proxy-ca.crt\ncontexts:\n- name: a\n  context: {cluster: c, user: client}\n- name: b\n  context: {cluster: other, user: client}\n- name: t\n  context: {cluster: c, user: bot, namespace: ci}\ncurrent-context: a\nusers:\n- name: client\n  user:\n    client-certificate: ../t/pki/apiserver-kubelet-client.crt\n    client-key: ../t/pki/apiserver-kubelet-client.key\n- name: bot\n  user:\n    token: s3cr3t-t0ken-value\n",
    )?;
    let out = ok(d, &["inspect", "-o", "json", "k/user.conf"])?;
    assert!(
        !out.contains("s3cr3t") && !out.contains("PRIVATE KEY"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(json["currentContext"], "a");
    let client = &json["users"][0];
    assert_eq!(client["commonName"], "kube-apiserver-kubelet-client");
    assert_eq!(
        client["chainsTo"],
        serde_json::json!([{"cluster": "c", "chains": true}, {"cluster": "other", "chains": false}])
    );
    assert_eq!(client["keyMatchesCertificate"], true);
    assert_eq!(json["users"][1]["credential"], "token");
    assert_eq!(json["contexts"][2]["namespace"], "ci");
    assert_eq!(
        json["clusters"][1]["certificateAuthorities"][0]["subject"],
        "CN = front-proxy-ca"
    );
    Ok(())
}

/// A kubeconfig kubectl could not use (a context naming a missing user, a key of another
/// certificate) is described, then refused: exit 1, one line naming the file and the problems.
#[test]
fn inspect_refuses_an_unusable_kubeconfig_after_describing_it() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &common::INIT_TREE)?;
    fs::write(
        d.join("bad.conf"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://192.0.2.10:6443\n    certificate-authority: t/pki/ca.crt\ncontexts:\n- name: a\n  context: {cluster: c, user: client}\n- name: b\n  context: {cluster: c, user: ghost}\ncurrent-context: a\nusers:\n- name: client\n  user:\n    client-certificate: t/pki/apiserver-kubelet-client.crt\n    client-key: t/pki/front-proxy-client.key\n",
    )?;
    let r = kubepki(d, &["inspect", "bad.conf"])?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("commonName: kube-apiserver-kubelet-client"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .starts_with("kubepki: error: bad.conf: kubeconfig not usable: ")
            && r.stderr
                .contains("context \"b\": user \"ghost\" is missing")
            && r.stderr.contains(
                "user \"client\": the client key does not belong to the client certificate"
            ),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("PRIVATE KEY") && !r.stderr.contains("PRIVATE KEY"));
    Ok(())
}

/// `--algorithm` is a typed clap value, and a refused one keeps the library's message byte for
/// byte (`kubepki_keys::Error::UnknownAlgorithm`), as before it was typed; a name with spaces
/// around it is read as before (the library's parser trims it) (issue 20).
#[test]
fn algorithm_values_keep_their_message_and_their_spelling() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let valid = "RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384, Ed25519";
    for (args, given) in [
        (
            vec!["keygen", "--algorithm", "RSA-1024", "--out", "o.key"],
            "RSA-1024",
        ),
        (
            vec![
                "ca",
                "create",
                "--cn",
                "x",
                "--out-dir",
                "o",
                "--algorithm",
                "DSA",
            ],
            "DSA",
        ),
        (
            vec!["keygen", "--out", "o.key", "--algorithm=\x1b[31mEd448"],
            "\\x1b[31mEd448",
        ),
    ] {
        let r = kubepki(d, &args)?;
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "kubepki: error: --algorithm: unknown key algorithm \"{given}\" (valid: {valid})\n"
            ),
            "{args:?}"
        );
    }
    assert!(files(d).is_empty(), "{:?}", files(d));
    ok(
        d,
        &["keygen", "--algorithm", " ecdsa-p256 ", "--out", "o.key"],
    )?;
    assert!(fs::read_to_string(d.join("o.key"))?.contains("PRIVATE KEY-----"));
    let r = kubepki(d, &["keygen", "--help"])?;
    assert!(r.stdout.contains(valid), "{}", r.stdout);
    Ok(())
}
