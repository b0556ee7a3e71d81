//! `kubepki sign-request` on the hostile request corpus (`tests/data/hostile/requests/`, made by
//! its `make.py`): requests that OpenSSL verifies but shows differently than a lenient reader
//! would sign, PEM tricks, manifests whose status forbids signing or that carry requester
//! fields, and badly typed `expirationSeconds` (issue 15, defects 2, 3, 6; issue 14, item 7).
//! Also: outputs that exist, `--force`, and Go durations on the command line.

use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::{init_cluster, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/hostile/requests")
        .join(name)
}

fn copy(d: &Path, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    fs::copy(corpus(name), d.join(name))?;
    Ok(name.to_owned())
}

/// `openssl ARGS` in `dir`: whether it succeeded, and its standard output and error.
fn openssl(args: &[&str], dir: &Path) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let o = kubepki_interop::run(dir, "openssl", args)?;
    Ok((o.ok, o.output))
}

const CA: [&str; 4] = ["--ca-cert", "c/pki/ca.crt", "--ca-key", "c/pki/ca.key"];

/// Runs `sign-request` with the tree's CA and `--out x.crt`; expects exit 1 with exactly
/// `FILE: message` and nothing written.
fn refused(d: &Path, args: &[&str], file: &str, message: &str) -> R {
    let stderr = refusal(d, args, file)?;
    assert_eq!(
        stderr.trim_end(),
        format!("kubepki: error: {file}: {message}"),
        "{file}"
    );
    Ok(())
}

/// `sign-request ARGS` with the cluster CA and `--out x.crt`: exit 1 and nothing written; its
/// standard error.
fn refusal(d: &Path, args: &[&str], file: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut a = vec!["sign-request"];
    a.extend_from_slice(args);
    a.extend_from_slice(&CA);
    a.extend_from_slice(&["--out", "x.crt"]);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1, "{file}: {}", r.stderr);
    assert!(!d.join("x.crt").exists(), "{file}: x.crt written");
    Ok(r.stderr)
}

#[test]
fn ambiguous_extension_requests_that_openssl_verifies_are_refused() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let serving = ["--signer-name", "kubernetes.io/kubelet-serving"];
    for (file, message) in [
        (
            "csr--two-extension-request-values.csr",
            "the certificate request's extensionRequest attribute has 2 values; exactly one is allowed (readers disagree on which one counts)",
        ),
        (
            "csr--two-extension-request-attributes.csr",
            "the certificate request has 2 extensionRequest attributes; exactly one is allowed (readers disagree on which one counts)",
        ),
        (
            "csr--duplicate-extension.csr",
            "extension 2.5.29.17 appears more than once",
        ),
    ] {
        let f = copy(d, file)?;
        // Validly signed (only the rule under test refuses it), and OpenSSL shows the SAN a
        // reviewer would approve.
        let (ok, text) = openssl(&["req", "-in", &f, "-verify", "-noout"], d)?;
        assert!(ok, "{f}: {text}");
        let (_, text) = openssl(&["req", "-in", &f, "-noout", "-text"], d)?;
        assert!(text.contains("DNS:n1.example"), "{f}: {text}");
        refused(d, &[&f, serving[0], serving[1]], &f, message)?;
    }
    for file in [
        "manifest--two-extension-request-values.yaml",
        "manifest--two-extension-request-attributes.yaml",
    ] {
        let f = copy(d, file)?;
        let stderr = refusal(d, &[&f], &f)?;
        assert!(
            stderr.starts_with(&format!(
                "kubepki: error: {f}: invalid CertificateSigningRequest: spec.request: the certificate request"
            )),
            "{stderr}"
        );
    }
    // Duplicate challengePassword attributes are ignored, as Go ignores them: the request is
    // signed for exactly the SAN OpenSSL shows.
    let f = copy(d, "csr--two-challenge-passwords.csr")?;
    let mut a = vec!["sign-request", &f, serving[0], serving[1], "--out", "y.crt"];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cert = kubepki_ca::Certificate::from_pem(&fs::read(d.join("y.crt"))?)?;
    assert_eq!(cert.subject_alt_names().dns, ["n1.example"]);
    assert!(cert.subject_alt_names().ips.is_empty());
    Ok(())
}

#[test]
fn pem_tricks_in_a_request_are_refused() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    // OpenSSL refuses the raw text too; Go would read block B, a lenient reader block A.
    let f = copy(d, "csr--header-in-body-then-second-block.pem")?;
    let (ok, _) = openssl(&["req", "-in", &f, "-noout"], d)?;
    assert!(!ok, "OpenSSL read {f}");
    refused(
        d,
        &[&f, "--signer-name", "kubernetes.io/kubelet-serving"],
        &f,
        "malformed PEM: line 3: block \"CERTIFICATE REQUEST\" has a header line inside its body (headers are allowed only directly after BEGIN)",
    )?;
    let f = copy(d, "manifest--header-in-body-then-second-block.yaml")?;
    refused(
        d,
        &[&f],
        &f,
        "invalid CertificateSigningRequest: spec.request: malformed PEM: line 3: block \"CERTIFICATE REQUEST\" has a header line inside its body (headers are allowed only directly after BEGIN)",
    )?;
    let f = copy(d, "manifest--two-blocks.yaml")?;
    refused(
        d,
        &[&f],
        &f,
        "invalid CertificateSigningRequest: spec.request: malformed PEM: 2 blocks (\"CERTIFICATE REQUEST\", \"CERTIFICATE REQUEST\") where exactly one is expected",
    )?;
    Ok(())
}

#[test]
fn denied_failed_and_issued_manifests_are_refused_and_requester_fields_cleared() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    for (file, message) in [
        (
            "manifest--denied.yaml",
            "the request was denied (status.conditions has Denied, reason NotOurUser); a denied request is never signed",
        ),
        (
            "manifest--failed.yaml",
            "the request has failed (status.conditions has Failed, reason SignerValidationFailure); a failed request is never signed",
        ),
        (
            "manifest--issued.yaml",
            "the request was already issued (status.certificate is set); signing again would replace that certificate",
        ),
    ] {
        let f = copy(d, file)?;
        let before = fs::read(d.join(&f))?;
        refused(d, &[&f], &f, message)?;
        // --out-manifest onto the input itself (with --force) is refused the same way and
        // leaves it as it was.
        let mut a = vec!["sign-request", &f, "--out-manifest", &f, "--force"];
        a.extend_from_slice(&CA);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(fs::read(d.join(&f))?, before, "{f} changed");
    }
    let f = copy(d, "manifest--requester-fields.yaml")?;
    let mut a = vec!["sign-request", &f, "--out-manifest", "out.yaml"];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "[sign-request] {f}: removed spec.username/groups/uid/extra as written by the requester"
        )),
        "{}",
        r.stderr
    );
    let text = fs::read_to_string(d.join("out.yaml"))?;
    for gone in [
        "username",
        "groups",
        "uid:",
        "extra",
        "system:masters",
        "cluster-admin",
    ] {
        assert!(!text.contains(gone), "{gone} in:\n{text}");
    }
    let out = kubepki_csr::KubeCsr::from_slice(text.as_bytes())?;
    assert!(!out.has_requester_fields());
    let status = out.status.as_ref().ok_or("no status")?;
    assert_eq!(status.conditions.len(), 1);
    assert_eq!(status.conditions[0].kind, "Approved");
    let cert = kubepki_ca::Certificate::from_pem(&out.issued_certificate_pem()?.ok_or("no cert")?)?;
    // The identity is the request's subject, never the claimed requester.
    assert_eq!(cert.common_name(), Some("jane"));
    assert_eq!(cert.organizations(), ["dev"]);
    Ok(())
}

#[test]
fn expiration_seconds_as_a_string_or_above_int32_is_refused() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let f = copy(d, "manifest--expiration-seconds-above-int32.yaml")?;
    refused(
        d,
        &[&f],
        &f,
        "invalid CertificateSigningRequest: spec.expirationSeconds: 2147483648 is out of range (the API field is an int32: at most 2147483647)",
    )?;
    for file in [
        "manifest--expiration-seconds-string.yaml",
        "manifest--expiration-seconds-string.json",
    ] {
        let f = copy(d, file)?;
        let stderr = refusal(d, &[&f], &f)?;
        assert!(
            stderr.starts_with(&format!(
                "kubepki: error: {f}: malformed CertificateSigningRequest manifest: "
            )) && stderr
                .contains("expected an integer number of seconds (the API field is an int32)"),
            "{stderr}"
        );
    }
    Ok(())
}

#[test]
fn existing_outputs_are_named_and_force_replaces_them() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let r = kubepki(
        d,
        &["user", "create", "jane", "--csr-only", "--out-dir", "u"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = "u/jane-csr.yaml";
    let cert_of = |p: &str| -> Result<kubepki_ca::Certificate, Box<dyn std::error::Error>> {
        Ok(kubepki_ca::Certificate::from_pem(&fs::read(d.join(p))?)?)
    };

    // sign-request --out, --out-manifest, --out-dir.
    fs::write(d.join("x.crt"), "old")?;
    fs::write(d.join("x.yaml"), "old")?;
    fs::create_dir(d.join("out"))?;
    fs::write(d.join("out/jane.crt"), "old")?;
    for (flag, target, shown) in [
        ("--out", "x.crt", "x.crt"),
        ("--out-manifest", "x.yaml", "x.yaml"),
        ("--out-dir", "out", "out/jane.crt"),
    ] {
        let mut a = vec!["sign-request", m, flag, target];
        a.extend_from_slice(&CA);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 1, "{flag}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end(),
            format!("kubepki: error: {shown}: already exists (use --force to replace it)")
        );
        assert_eq!(fs::read_to_string(d.join(shown))?, "old");
        a.push("--force");
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 0, "{flag} --force: {}", r.stderr);
    }
    assert_eq!(cert_of("x.crt")?.common_name(), Some("jane"));
    assert_eq!(cert_of("out/jane.crt")?.common_name(), Some("jane"));
    assert!(fs::read_to_string(d.join("x.yaml"))?.contains("type: Approved"));
    // Two inputs that would write the same NAME.crt.
    let mut a = vec!["sign-request", m, m, "--out-dir", "out2"];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim_end(),
        "kubepki: error: u/jane-csr.yaml: another input is also named \"jane\" (metadata.name); both would be written to out2/jane.crt"
    );
    assert!(!d.join("out2").exists());

    // user create --out-kubeconfig: refused before a key is made; --force replaces.
    fs::write(d.join("bob.conf"), "old")?;
    let mut a = vec![
        "user",
        "create",
        "bob",
        "--cluster-server",
        "https://192.0.2.10:6443",
        "--out-kubeconfig",
        "bob.conf",
    ];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim_end(),
        "kubepki: error: bob.conf: already exists (use --force to replace it)"
    );
    assert_eq!(fs::read_to_string(d.join("bob.conf"))?, "old");
    a.push("--force");
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fs::read_to_string(d.join("bob.conf"))?.contains("current-context: bob@kubernetes"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.join("bob.conf"))?.permissions().mode() & 0o777,
        0o600
    );

    // node kubelet-serving onto its own earlier output.
    let a = [
        "node",
        "kubelet-serving",
        "--node-name",
        "w1",
        "--cert-dir",
        "c/pki",
        "--out-dir",
        "w1",
    ];
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = fs::read(d.join("w1/kubelet.key"))?;
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim_end(),
        "kubepki: error: w1/kubelet.crt: already exists (use --force to replace it)"
    );
    let mut forced = a.to_vec();
    forced.push("--force");
    let r = kubepki(d, &forced)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(fs::read(d.join("w1/kubelet.key"))?, first);

    // user create --csr-only onto its own earlier output.
    let r = kubepki(
        d,
        &["user", "create", "jane", "--csr-only", "--out-dir", "u"],
    )?;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim_end(),
        "kubepki: error: u/jane.key: already exists (use --force to replace it)"
    );
    Ok(())
}

#[test]
fn go_durations_are_accepted_for_validity_flags() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    // Go's forms, and whole days (kubepki's documented extension on its own flags).
    for (validity, secs) in [("1.5h", 5400), ("10m0.5s", 600), ("1d12h", 129_600)] {
        let out = format!("u-{secs}.conf");
        let mut a = vec![
            "user",
            "create",
            "bob",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--validity",
            validity,
            "--out-kubeconfig",
            &out,
        ];
        a.extend_from_slice(&CA);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 0, "{validity}: {}", r.stderr);
        let path = d.join(&out);
        let kc = kubepki_kubeadm::Kubeconfig::from_slice(&path, &fs::read(&path)?)?;
        let pem = kc.current_client_cert_pem(&path)?.ok_or("no cert")?;
        let cert = kubepki_ca::Certificate::from_pem(&pem)?;
        // NotBefore is backdated 5 minutes (kubeadm's rule); NotAfter = now + validity.
        let span = (cert.not_after() - cert.not_before()).whole_seconds();
        assert!(
            (secs + 300..=secs + 301).contains(&span),
            "{validity}: {span}s"
        );
    }
    for (validity, message) in [
        (
            "1y",
            "--validity: unknown unit \"y\" in duration \"1y\" (units: ns, us, µs, ms, s, m, h, d)",
        ),
        ("-1h", "--validity: duration \"-1h\" must be positive"),
    ] {
        let flag = format!("--validity={validity}");
        let a = [
            "node",
            "kubelet-serving",
            "--node-name",
            "w1",
            "--cert-dir",
            "c/pki",
            &flag,
            "--out-dir",
            "w1",
        ];
        let r = kubepki(d, &a)?;
        // A flag value that cannot be used: a usage error, as clap's.
        assert_eq!(r.code, 64, "{validity}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{}", r.stderr);
    }
    Ok(())
}

#[test]
fn a_bare_pem_file_with_two_requests_is_refused() -> R {
    // Go's pem.Decode skips a block whose END line is followed by a form feed and reads the
    // next one; OpenSSL reads the first. One request a file, and END lines trimmed as Go does.
    let d = tempfile::tempdir()?;
    let d = d.path();
    init_cluster(d)?;
    for (name, cn, org) in [("a", "evil-admin", "system:masters"), ("b", "jane", "dev")] {
        let key = format!("{name}.key");
        let r = kubepki(d, &["keygen", "--algorithm", "ECDSA-P256", "--out", &key])?;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let out = format!("{name}.csr");
        let r = kubepki(
            d,
            &[
                "csr", "--key", &key, "--cn", cn, "--org", org, "--out", &out,
            ],
        )?;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let a = fs::read_to_string(d.join("a.csr"))?;
    let b = fs::read_to_string(d.join("b.csr"))?;
    let ff = a.replace(
        "-----END CERTIFICATE REQUEST-----\n",
        "-----END CERTIFICATE REQUEST-----\x0c\n",
    );
    for (file, text) in [("ab.csr", a.clone() + &b), ("ff.csr", ff + &b)] {
        fs::write(d.join(file), text)?;
        let r = kubepki(
            d,
            &[
                "sign-request",
                file,
                "--ca-cert",
                "c/pki/ca.crt",
                "--ca-key",
                "c/pki/ca.key",
                "--signer-name",
                "kubernetes.io/kube-apiserver-client",
                "--out",
                "x.crt",
            ],
        )?;
        assert_eq!(r.code, 1, "{file}: {}", r.stderr);
        assert!(r.stderr.contains(file), "{file}: {}", r.stderr);
        assert!(!d.join("x.crt").exists());
    }
    Ok(())
}
