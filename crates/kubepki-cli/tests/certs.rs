//! `kubepki certs ...` and `kubepki verify` end to end, including the external-CA round trip
//! with OpenSSL checking the result.

use std::fs;
use std::path::Path;

mod common;
use common::{files_under, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

const NODE: [&str; 6] = [
    "--apiserver-advertise-address",
    "192.0.2.10",
    "--node-name",
    "cp1",
    "--encryption-algorithm",
    "ECDSA-P256",
];

fn args<'a>(cmd: &[&'a str], dirs: &'a [String; 4]) -> Vec<&'a str> {
    let mut a = cmd.to_vec();
    a.extend(dirs.iter().map(String::as_str));
    a.extend_from_slice(&NODE);
    a
}

fn dirs(root: &Path) -> [String; 4] {
    [
        "--cert-dir".into(),
        root.join("pki").display().to_string(),
        "--kubeconfig-dir".into(),
        root.display().to_string(),
    ]
}

#[test]
fn check_expiration_text_json_and_warn_within() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    let r = kubepki(d, &args(&["certs", "check-expiration"], &dd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("CERTIFICATE  ") && first.ends_with("EXTERNALLY MANAGED"),
        "{first}"
    );
    assert!(
        r.stdout.contains("364d") && r.stdout.contains("9y"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("kubelet.conf"));
    let r = kubepki(d, &args(&["certs", "check-expiration", "-o", "json"], &dd))?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(v["certificates"].as_array().map(Vec::len), Some(11));
    assert!(
        r.stdout
            .starts_with("{\n    \"kind\": \"CertificateExpirationInfo\""),
        "{}",
        r.stdout
    );
    let r = kubepki(d, &args(&["certs", "check-expiration", "-o", "yaml"], &dd))?;
    assert!(
        r.stdout
            .starts_with("apiVersion: output.kubeadm.k8s.io/v1alpha3\ncertificateAuthorities:\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        kubepki(
            d,
            &args(&["certs", "check-expiration", "--warn-within", "30d"], &dd)
        )?
        .code,
        0
    );
    assert_eq!(
        kubepki(
            d,
            &args(&["certs", "check-expiration", "--warn-within", "400d"], &dd)
        )?
        .code,
        1
    );
    let r = kubepki(
        d,
        &args(&["certs", "check-expiration", "--warn-within", "soon"], &dd),
    )?;
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("--warn-within"), "{}", r.stderr);

    // A tree made two years ago: expired leaves give exit 2.
    let old = tempfile::tempdir()?;
    let mut s = kubepki_kubeadm::ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    s.node_name = Some("cp1".into());
    s.encryption_algorithm = kubepki_keys_alg();
    s.cert_dir = old.path().join("pki");
    s.kubeconfig_dir = old.path().to_owned();
    let plan = kubepki_kubeadm::Plan::new(&s)?;
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(730);
    kubepki_kubeadm::init_tree(&plan, &kubepki_kubeadm::Selection::all(), then, false)?;
    let od = dirs(old.path());
    let r = kubepki(
        d,
        &args(&["certs", "check-expiration", "--warn-within", "1d"], &od),
    )?;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("<invalid>"), "{}", r.stdout);
    // Expired is a finding with or without --warn-within.
    let r = kubepki(d, &args(&["certs", "check-expiration"], &od))?;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    Ok(())
}

/// The exit-code table of docs/certs.md: missing certificates, usage errors and results never
/// share a code.
/// Issue 19 item 4: `-o json|yaml` write kubeadm's `Certificate` rows as Go does: every field
/// but `caName` always (zero values too), in the struct's order for JSON, and a missing file as
/// its name and `missing: true` alone (no `caName`).
#[test]
fn check_expiration_json_and_yaml_rows_are_kubeadms() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    fs::remove_file(d.join("super-admin.conf"))?;
    let r = kubepki(d, &args(&["certs", "check-expiration", "-o", "json"], &dd))?;
    let missing = "        {\n            \"name\": \"super-admin.conf\",\n            \"expirationDate\": null,\n            \"residualTime\": 0,\n            \"externallyManaged\": false,\n            \"missing\": true\n        }";
    assert!(r.stdout.contains(missing), "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let api = v["certificates"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "apiserver"))
        .ok_or("apiserver")?;
    let keys: Vec<&str> = api
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "name",
            "expirationDate",
            "residualTime",
            "externallyManaged",
            "caName",
            "missing"
        ]
    );
    assert_eq!(api["missing"], false);
    let r = kubepki(d, &args(&["certs", "check-expiration", "-o", "yaml"], &dd))?;
    assert!(
        r.stdout.contains(
            "- expirationDate: null\n  externallyManaged: false\n  missing: true\n  name: super-admin.conf\n  residualTime: 0\n"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches("missing: false").count(),
        13,
        "{}",
        r.stdout
    );
    Ok(())
}

#[test]
fn check_expiration_exit_codes_are_unambiguous() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    let code =
        |extra: &[&str], dirs: &[String; 4]| -> Result<(i32, String), Box<dyn std::error::Error>> {
            let mut a = vec!["certs", "check-expiration"];
            a.extend_from_slice(extra);
            let r = kubepki(d, &args(&a, dirs))?;
            Ok((r.code, r.stderr))
        };
    // A wrong --cert-dir: every row !MISSING!, which is a finding (3), not "fine".
    let wrong = dirs(&d.join("nowhere"));
    let (c, err) = code(&["--warn-within", "1m"], &wrong)?;
    assert_eq!(c, 3, "{err}");
    assert!(
        err.contains("missing under") && err.contains("apiserver") && err.contains("ca"),
        "{err}"
    );
    assert_eq!(code(&[], &wrong)?.0, 3);
    // One missing leaf in a good tree.
    fs::remove_file(d.join("pki/front-proxy-client.crt"))?;
    let (c, err) = code(&["--warn-within", "1m"], &dd)?;
    assert_eq!(c, 3, "{err}");
    assert!(err.contains(": front-proxy-client\n"), "{err}");
    // Usage errors: 64, whatever the value (bad, negative spelled either way, unknown flag).
    for bad in [
        &["--warn-within", "soon"][..],
        &["--warn-within", "-5d"],
        &["--warn-within=-5d"],
        &["--warn-within", "0s"],
        &["--no-such-flag"],
        &["--output", "xml"],
    ] {
        let (c, err) = code(bad, &dd)?;
        assert_eq!(c, 64, "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (_, err) = code(&["--warn-within", "-5d"], &dd)?;
    assert!(err.contains("\"-5d\" is negative"), "{err}");
    // super-admin.conf exists only on the init node: its absence alone is not a finding.
    let full = tempfile::tempdir()?;
    let fd = dirs(full.path());
    assert_eq!(kubepki(full.path(), &args(&["init"], &fd))?.code, 0);
    fs::remove_file(full.path().join("super-admin.conf"))?;
    let (c, err) = code(&["--warn-within", "1d"], &fd)?;
    assert_eq!(c, 0, "{err}");
    // --help states the table.
    let r = kubepki(d, &["certs", "check-expiration", "--help"])?;
    assert_eq!(r.code, 0);
    for row in [
        "  2   a certificate has expired",
        "  3   a certificate is missing",
        "  64  the command line",
    ] {
        assert!(r.stdout.contains(row), "{row}: {}", r.stdout);
    }
    Ok(())
}

fn kubepki_keys_alg() -> kubepki_keys::KeyAlgorithm {
    kubepki_keys::KeyAlgorithm::EcdsaP256
}

#[test]
fn renew_all_then_verify() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    let before = fs::read(d.join("pki/apiserver.key"))?;
    let r = kubepki(d, &args(&["certs", "renew", "all"], &dd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches(" renewed: ").count(), 11, "{}", r.stdout);
    assert!(r.stdout.contains(
        "You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd"
    ));
    assert_ne!(fs::read(d.join("pki/apiserver.key"))?, before);
    let r = kubepki(d, &args(&["verify"], &dd))?;
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = kubepki(d, &args(&["certs", "renew", "ca"], &dd))?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("kubepki: error: ca: ca is a certificate authority"),
        "{}",
        r.stderr
    );
    Ok(())
}

/// Issue 19 item 5: kubeadm renews with the cluster configuration's algorithm, so `--config`
/// (like `--encryption-algorithm`) decides the new key's algorithm; with neither, each item
/// keeps its old key's algorithm.
#[test]
fn renew_takes_the_algorithm_from_config_or_flag_else_the_old_key() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0); // ECDSA-P256
    let label = |file: &str| -> Result<String, Box<dyn std::error::Error>> {
        Ok(fs::read_to_string(d.join(file))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned())
    };
    let renew = |name: &str, extra: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        let mut a = vec!["certs", "renew", name];
        a.extend(dd.iter().map(String::as_str));
        a.extend_from_slice(extra);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        Ok(r.stdout)
    };
    let cfg = d.join("kubeadm.yaml");
    fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.34.7\nencryptionAlgorithm: RSA-3072\n",
    )?;
    let cfg = cfg.display().to_string();
    // --config: the file's algorithm.
    let out = renew("apiserver", &["--config", &cfg])?;
    assert!(out.contains("apiserver renewed: new RSA-3072 key"), "{out}");
    assert_eq!(
        label("pki/apiserver.key")?,
        "-----BEGIN RSA PRIVATE KEY-----"
    );
    // A file without encryptionAlgorithm: kubeadm's default.
    let bare = d.join("bare.yaml");
    fs::write(
        &bare,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n",
    )?;
    let out = renew(
        "front-proxy-client",
        &["--config", &bare.display().to_string()],
    )?;
    assert!(out.contains("new RSA-2048 key"), "{out}");
    // --encryption-algorithm wins over the file.
    let out = renew(
        "admin.conf",
        &["--config", &cfg, "--encryption-algorithm", "ECDSA-P384"],
    )?;
    assert!(out.contains("new ECDSA-P384 key"), "{out}");
    // Neither: the old key's algorithm (apiserver is RSA-3072 now, etcd-server still P-256).
    let out = renew("apiserver", &[])?;
    assert!(out.contains("new RSA-3072 key"), "{out}");
    let out = renew("etcd-server", &[])?;
    assert!(out.contains("new ECDSA-P256 key"), "{out}");
    assert_eq!(
        label("pki/etcd/server.key")?,
        "-----BEGIN EC PRIVATE KEY-----"
    );
    Ok(())
}

#[test]
fn renew_all_goes_on_past_an_item_it_cannot_renew() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    // scheduler.conf's current user authenticates with a token: nothing to renew there.
    let sched = d.join("scheduler.conf");
    let token = fs::read_to_string(&sched)?
        .lines()
        .filter(|l| !l.contains("client-key-data"))
        .map(|l| {
            if l.contains("client-certificate-data") {
                "    token: abcdef.0123456789abcdef".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&sched, &token)?;
    let before = fs::read(d.join("pki/apiserver.key"))?;
    let r = kubepki(d, &args(&["certs", "renew", "all"], &dd))?;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches(" renewed: ").count(), 10, "{}", r.stdout);
    assert!(r.stdout.contains("FAILED! scheduler.conf"), "{}", r.stdout);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "kubepki: error: {}: the current user \"system:kube-scheduler\" authenticates with a token, not a client certificate",
            sched.display()
        )
    );
    assert_eq!(fs::read_to_string(&sched)?, token);
    assert_ne!(fs::read(d.join("pki/apiserver.key"))?, before);
    Ok(())
}

#[test]
fn external_ca_round_trip_on_the_command_line() -> R {
    let ca_side = tempfile::tempdir()?;
    let node = tempfile::tempdir()?;
    let (a, n) = (ca_side.path(), node.path());
    let ad = dirs(a);
    let nd = dirs(n);
    for ca in ["ca", "front-proxy-ca", "etcd-ca"] {
        let r = kubepki(a, &args(&["init", "phase", "certs", ca], &ad))?;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = kubepki(n, &args(&["certs", "generate-csr"], &nd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(n.join("pki/etcd/server.csr").exists() && n.join("admin.conf.csr").exists());
    // Again: every item awaits signing; nothing is written.
    let key = fs::read(n.join("pki/apiserver.key"))?;
    let r = kubepki(n, &args(&["certs", "generate-csr"], &nd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Wrote"), "{}", r.stdout);
    assert_eq!(
        fs::read(n.join("pki/apiserver.key"))?,
        key,
        "generate-csr overwrote"
    );

    let p = |s: &str| a.join("pki").join(s).display().to_string();
    let (c, k, fc, fk, ec, ek) = (
        p("ca.crt"),
        p("ca.key"),
        p("front-proxy-ca.crt"),
        p("front-proxy-ca.key"),
        p("etcd/ca.crt"),
        p("etcd/ca.key"),
    );
    let sign = [
        "certs",
        "sign-csrs",
        "--ca-cert",
        &c,
        "--ca-key",
        &k,
        "--front-proxy-ca-cert",
        &fc,
        "--front-proxy-ca-key",
        &fk,
        "--etcd-ca-cert",
        &ec,
        "--etcd-ca-key",
        &ek,
    ];
    let r = kubepki(n, &args(&sign, &nd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("12 certificates signed"), "{}", r.stdout);

    fs::copy(a.join("pki/ca.crt"), n.join("pki/ca.crt"))?;
    fs::copy(
        a.join("pki/front-proxy-ca.crt"),
        n.join("pki/front-proxy-ca.crt"),
    )?;
    fs::copy(a.join("pki/etcd/ca.crt"), n.join("pki/etcd/ca.crt"))?;
    let r = kubepki(n, &args(&["init"], &nd))?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("Using existing ca keyless certificate authority"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Generating \"sa\" key and public key"),
        "{}",
        r.stdout
    );
    let r = kubepki(n, &args(&["verify"], &nd))?;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("0 failed"));
    for f in files_under(n) {
        assert!(
            !f.to_string_lossy().ends_with("ca.key"),
            "CA key on the node: {}",
            f.display()
        );
    }
    // OpenSSL agrees.
    let out = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(n.join("pki/ca.crt"))
        .arg(n.join("pki/apiserver.crt"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn verify_fails_with_one_line_per_problem_and_reports_the_rest() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        d.join("pki/apiserver.key"),
        fs::Permissions::from_mode(0o644),
    )?;
    fs::write(d.join("controller-manager.conf"), b"not: [yaml")?;
    let r = kubepki(d, &args(&["verify"], &dd))?;
    assert_eq!(r.code, 1);
    let fails: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fails.len(), 2, "{}", r.stdout);
    assert!(
        fails[0].contains("apiserver") && fails[0].contains("mode") && fails[0].contains("0644")
    );
    assert!(fails[1].contains("controller-manager.conf") && fails[1].contains("parses"));
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("PASS  scheduler.conf"))
    );
    let r = kubepki(d, &args(&["verify", "-o", "json"], &dd))?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let n_fail = v["checks"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["status"] == "FAIL").count());
    assert_eq!(n_fail, Some(2));
    Ok(())
}

/// A certificate whose notBefore is in the future is a finding of its own (4), ahead of
/// missing files (3) and behind expired ones (2).
#[test]
fn check_expiration_reports_a_certificate_not_valid_yet() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    let pki = d.join("pki");
    let ca = kubepki_ca::CertificateAuthority::load(
        &fs::read(pki.join("front-proxy-ca.crt"))?,
        &fs::read(pki.join("front-proxy-ca.key"))?,
        time::OffsetDateTime::now_utc(),
    )?;
    let key = kubepki_keys::PrivateKey::from_pem(&fs::read(pki.join("front-proxy-client.key"))?)?;
    let from = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let cert = ca.issue(
        &kubepki_ca::IssueSpec::new(
            kubepki_csr::Subject::cn("front-proxy-client"),
            key.public_key_der(),
            kubepki_ca::Window::new(from, from + time::Duration::days(300)),
            kubepki_ca::CaExpiry::Clamp,
        )
        .with_ext_key_usage(vec![kubepki_csr::ExtKeyUsage::ClientAuth]),
    )?;
    fs::write(pki.join("front-proxy-client.crt"), cert.to_pem())?;
    let r = kubepki(d, &args(&["certs", "check-expiration"], &dd))?;
    assert_eq!(r.code, 4, "{}", r.stderr);
    let want = format!(
        "kubepki: error: not valid yet (is this machine's clock behind?): front-proxy-client (valid from {})\n",
        kubepki_ca::rfc3339(cert.not_before())
    );
    assert!(r.stderr.contains(&want), "{want}{}", r.stderr);
    // A missing file as well: still 4 (the list's order), both named.
    fs::remove_file(pki.join("apiserver.crt"))?;
    let r = kubepki(d, &args(&["certs", "check-expiration"], &dd))?;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains(": apiserver\n"), "{}", r.stderr);
    let help = kubepki(d, &["certs", "check-expiration", "--help"])?;
    for row in [
        "  4   a certificate is not valid yet",
        "  75  another kubepki process held the tree",
    ] {
        assert!(help.stdout.contains(row), "{row}: {}", help.stdout);
    }
    Ok(())
}

/// A flag value checked after clap (a node name, a service subnet, a duration) is a usage error
/// like clap's own: 64 in every command, one line, nothing written.
#[test]
fn flag_values_checked_after_parsing_exit_64_in_every_command() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    for (cmd, bad, needle) in [
        (&["verify"][..], &["--node-name", "N1"][..], "N1"),
        (
            &["init"],
            &["--service-cidr", "10.0.0.0/8"],
            "--service-cidr",
        ),
        (
            &["init", "--dry-run"],
            &["--apiserver-bind-port", "0"],
            "--apiserver-bind-port",
        ),
        (
            &["certs", "renew", "all"],
            &["--encryption-algorithm", "DSA"],
            "--encryption-algorithm",
        ),
        (
            &["certs", "generate-csr"],
            &["--kubernetes-version", "bogus"],
            "--kubernetes-version",
        ),
    ] {
        let mut a = args(cmd, &dd);
        a.extend_from_slice(bad);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 64, "{cmd:?} {bad:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.starts_with("kubepki: error: ") && r.stderr.contains(needle),
            "{}",
            r.stderr
        );
    }
    // A --config value that cannot be used is the same kind of error, naming the file.
    let cfg = d.join("bad.yaml");
    fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.0.0.0/8\n",
    )?;
    let mut a = args(&["verify"], &dd);
    a.extend_from_slice(&["--config", cfg.to_str().ok_or("path")?]);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.yaml: networking.serviceSubnet"),
        "{}",
        r.stderr
    );
    // sign --validity, ca create --validity / --algorithm.
    let r = kubepki(
        d,
        &[
            "sign",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--csr",
            "x.csr",
            "--profile",
            "client",
            "--out",
            "x.crt",
            "--validity",
            "bogus",
        ],
    )?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("kubepki: error: --validity: "),
        "{}",
        r.stderr
    );
    for bad in [["--validity", "bogus"], ["--algorithm", "DSA"]] {
        let mut a = vec!["ca", "create", "--cn", "x", "--out-dir", "o"];
        a.extend_from_slice(&bad);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 64, "{bad:?}: {}", r.stderr);
    }
    assert!(
        files_under(d).iter().all(|f| f == &cfg),
        "{:?}",
        files_under(d)
    );
    Ok(())
}

/// A tree lock held past kubepki's wait (60 s) is neither "missing" (3) nor an error of 1: 75.
/// A busy lock is not a missing file: 75 (`EX_TEMPFAIL`). `KUBEPKI_LOCK_WAIT` shortens the wait.
#[test]
fn check_expiration_on_a_busy_tree_exits_75() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    // This process plays another kubepki holding the exclusive lock on the certificate folder.
    let lock = kubepki_files::lock_folder(&d.join("pki"), kubepki_files::LockMode::Exclusive)?;
    let out = std::process::Command::new(common::BIN)
        .args(args(&["certs", "check-expiration"], &dd))
        .env("KUBEPKI_LOCK_WAIT", "2")
        .current_dir(d)
        .output()?;
    drop(lock);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("another kubepki process is using this folder (waited 2 s)")
            && !stderr.contains("missing under"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn verify_fails_and_renew_refuses_a_merge_key_overriding_the_credentials() -> R {
    // kubectl (go-yaml v2) lets a `<<` written after the explicit keys override them: this
    // admin.conf authenticates with super-admin.conf's credentials (system:masters) for kubectl.
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let dd = dirs(d);
    assert_eq!(kubepki(d, &args(&["init"], &dd))?.code, 0);
    let sup = fs::read_to_string(d.join("super-admin.conf"))?;
    let value = |field: &str| {
        sup.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{field}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    let conf = d.join("admin.conf");
    let mut text = fs::read_to_string(&conf)?;
    text.push_str(&format!(
        "    <<: {{client-certificate-data: {}, client-key-data: {}}}\n",
        value("client-certificate-data"),
        value("client-key-data")
    ));
    fs::write(&conf, &text)?;
    let r = kubepki(d, &args(&["verify"], &dd))?;
    assert_eq!(r.code, 1, "{}", r.stdout);
    let fails: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fails.len(), 1, "{}", r.stdout);
    assert!(
        fails[0].contains("admin.conf") && fails[0].contains("uses a YAML merge key (<<) at line"),
        "{}",
        fails[0]
    );
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.starts_with("PASS  admin.conf") && !l.contains("mode"))
    );
    let r = kubepki(d, &args(&["certs", "renew", "admin.conf"], &dd))?;
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("merge key"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&conf)?, text);
    Ok(())
}
