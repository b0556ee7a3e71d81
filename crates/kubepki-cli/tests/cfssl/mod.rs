//! `kubepki cfssl gencert` (issue 23, item 4; docs/cfssl.md): the mutual-TLS flow of the
//! source document with cfssl's files (`tests/data/cfssl/`), piped into Debian's real
//! `cfssljson` and checked by an `openssl s_server`/`s_client` handshake; the same files signed
//! by Debian's real `cfssl` and by kubepki, compared field by field with openssl; refusals.
//!
//! Needs `cfssl` and `cfssljson` (Debian: golang-cfssl); skipped without them, except under CI
//! (`CI` set), where that fails.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kubepki_interop::{TlsServer, run_ok};

use crate::common::kubepki;

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cfssl")
        .join(name)
}

/// Whether Debian's `cfssl` and `cfssljson` are installed (under CI they must be).
fn have_cfssl() -> bool {
    let ok = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok();
    if ok("cfssl", "version") && ok("cfssljson", "-h") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install golang-cfssl (cfssl, cfssljson)"
    );
    eprintln!("skipped: cfssl/cfssljson are not installed (Debian: golang-cfssl)");
    false
}

/// `cfssljson -bare NAME` in `dir`, fed `json`.
fn cfssljson(dir: &Path, json: &[u8], name: &str) -> R {
    let mut child = Command::new("cfssljson")
        .args(["-bare", name])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(json)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "cfssljson -bare {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// `kubepki cfssl gencert ARGS | cfssljson -bare NAME` in `dir`.
fn kubepki_bare(dir: &Path, args: &[&str], name: &str) -> R {
    let mut a = vec!["cfssl", "gencert"];
    a.extend_from_slice(args);
    let r = kubepki(dir, &a)?;
    if r.code != 0 {
        return Err(format!("kubepki {}: {}", a.join(" "), r.stderr).into());
    }
    cfssljson(dir, r.stdout.as_bytes(), name)
}

/// `cfssl gencert ARGS | cfssljson -bare NAME` in `dir` (Debian's cfssl).
fn cfssl_bare(dir: &Path, args: &[&str], name: &str) -> R {
    let out = Command::new("cfssl")
        .arg("gencert")
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cfssl gencert {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    cfssljson(dir, &out.stdout, name)
}

/// A file of the vectors as a path string.
fn v(name: &str) -> String {
    data(name).display().to_string()
}

#[test]
fn cfssl_mtls_flow_of_the_source_document() -> R {
    if !have_cfssl() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let dir = d.path();
    let (config, root) = (v("rootCA-config.json"), v("rootCA-csr.json"));
    kubepki_bare(dir, &["--initca", &root], "rootCA")?;
    let signed = |csr: &str, name: &str| {
        kubepki_bare(
            dir,
            &[
                "--ca",
                "rootCA.pem",
                "--ca-key",
                "rootCA-key.pem",
                "--config",
                &config,
                "--profile",
                "root-ca",
                &v(csr),
            ],
            name,
        )
    };
    signed("server-csr.json", "server")?;
    signed("client-csr.json", "client")?;
    for f in ["rootCA", "server", "client"] {
        run_ok(
            dir,
            "openssl",
            &["req", "-in", &format!("{f}.csr"), "-noout", "-verify"],
        )?;
        let key = fs::read_to_string(dir.join(format!("{f}-key.pem")))?;
        assert!(
            key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            "{f}: {key:.40}"
        );
    }
    let verified = run_ok(
        dir,
        "openssl",
        &[
            "verify",
            "-CAfile",
            "rootCA.pem",
            "server.pem",
            "client.pem",
        ],
    )?;
    assert!(verified.contains("server.pem: OK") && verified.contains("client.pem: OK"));

    // The handshake: the server asks for a client certificate from rootCA and verifies it.
    let server = TlsServer::start(
        dir,
        &dir.join("server.pem"),
        &dir.join("server-key.pem"),
        &dir.join("rootCA.pem"),
    )?;
    let o = server.connect(&dir.join("client.pem"), &dir.join("client-key.pem"), &[])?;
    assert!(o.ok, "{}", o.output);
    assert!(
        o.output.contains("Verify return code: 0 (ok)"),
        "{}",
        o.output
    );
    assert!(
        server
            .verified_clients()
            .iter()
            .any(|s| s == "O = client-group, CN = localhost"),
        "{:?}",
        server.verified_clients()
    );

    // A client of another CA (made with --bare, kubepki's own writer) is turned away.
    let other = kubepki(
        dir,
        &["cfssl", "gencert", "--initca", "--bare", "other", &root],
    )?;
    assert_eq!(other.code, 0, "{}", other.stderr);
    let mode = fs::metadata(dir.join("other-key.pem"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let stranger = kubepki(
        dir,
        &[
            "cfssl",
            "gencert",
            "--ca",
            "other.pem",
            "--ca-key",
            "other-key.pem",
            "--config",
            &config,
            "--profile",
            "root-ca",
            "--bare",
            "stranger",
            &v("client-csr.json"),
        ],
    )?;
    assert_eq!(stranger.code, 0, "{}", stranger.stderr);
    for (f, mode) in [
        ("stranger.pem", 0o644),
        ("stranger-key.pem", 0o600),
        ("stranger.csr", 0o644),
    ] {
        assert_eq!(
            fs::metadata(dir.join(f))?.permissions().mode() & 0o777,
            mode,
            "{f}"
        );
    }
    let o = server.connect(
        &dir.join("stranger.pem"),
        &dir.join("stranger-key.pem"),
        &[],
    )?;
    assert!(!o.ok, "a client of another CA was accepted: {}", o.output);
    Ok(())
}

/// What openssl shows of a certificate that cfssl and kubepki must agree on: subject, SANs,
/// KeyUsage, EKU, BasicConstraints, key and signature algorithms, and whether the key
/// identifiers are there (their values differ with the keys).
fn fields(dir: &Path, file: &str) -> Res<String> {
    let ext = run_ok(
        dir,
        "openssl",
        &[
            "x509",
            "-in",
            file,
            "-noout",
            "-subject",
            "-issuer",
            "-nameopt",
            "RFC2253",
            "-ext",
            "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
        ],
    )?;
    let text = run_ok(dir, "openssl", &["x509", "-in", file, "-noout", "-text"])?;
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Public-Key:")
                || l.starts_with("ASN1 OID:")
                || l.starts_with("Signature Algorithm:")
                || l.starts_with("X509v3 Subject Key Identifier")
                || l.starts_with("X509v3 Authority Key Identifier")
                || l.starts_with("Version:")
        })
        .collect();
    Ok(format!("{ext}{}", kept.join("\n")))
}

/// NotBefore and NotAfter as openssl prints them, read back as seconds since the epoch.
fn window(dir: &Path, file: &str) -> Res<(i64, i64)> {
    let pem = fs::read(dir.join(file))?;
    let c = kubepki_ca::Certificate::from_pem(&pem)?;
    // Cross-check the library's reading of the window with openssl's.
    let dates = run_ok(
        dir,
        "openssl",
        &[
            "x509", "-in", file, "-noout", "-enddate", "-dateopt", "iso_8601",
        ],
    )?;
    let end = kubepki_ca::rfc3339(c.not_after()).replace('T', " ");
    assert!(
        dates.contains(end.trim_end_matches('Z')),
        "{dates} vs {end}"
    );
    Ok((
        c.not_before().unix_timestamp(),
        c.not_after().unix_timestamp(),
    ))
}

#[test]
fn cfssl_and_kubepki_sign_the_same_files_alike() -> R {
    if !have_cfssl() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let (a, b) = (d.path().join("cfssl"), d.path().join("kubepki"));
    fs::create_dir(&a)?;
    fs::create_dir(&b)?;
    let signing =
        |name: &str, csr: &str, config: &str, profile: Option<&str>, host: Option<&str>| {
            let mut go = vec![
                "-ca=rootCA.pem".to_owned(),
                "-ca-key=rootCA-key.pem".to_owned(),
                format!("-config={}", v(config)),
            ];
            let mut rs: Vec<String> = [
                "--ca",
                "rootCA.pem",
                "--ca-key",
                "rootCA-key.pem",
                "--config",
            ]
            .map(str::to_owned)
            .to_vec();
            rs.push(v(config));
            if let Some(p) = profile {
                go.push(format!("-profile={p}"));
                rs.extend(["--profile".to_owned(), p.to_owned()]);
            }
            if let Some(h) = host {
                go.push(format!("-hostname={h}"));
                rs.extend(["--hostname".to_owned(), h.to_owned()]);
            }
            go.push(v(csr));
            rs.push(v(csr));
            (name.to_owned(), go, rs)
        };
    let cases = [
        (
            "rootCA".to_owned(),
            vec!["-initca".to_owned(), v("rootCA-csr.json")],
            vec!["--initca".to_owned(), v("rootCA-csr.json")],
        ),
        (
            "pathlen".to_owned(),
            vec!["-initca".to_owned(), v("ca-pathlen-csr.json")],
            vec!["--initca".to_owned(), v("ca-pathlen-csr.json")],
        ),
        signing(
            "server",
            "server-csr.json",
            "rootCA-config.json",
            Some("root-ca"),
            None,
        ),
        signing(
            "client",
            "client-csr.json",
            "rootCA-config.json",
            Some("root-ca"),
            None,
        ),
        signing(
            "names",
            "names-csr.json",
            "peer-config.json",
            Some("peer"),
            None,
        ),
        signing("default", "names-csr.json", "peer-config.json", None, None),
        signing(
            "hostname",
            "server-csr.json",
            "rootCA-config.json",
            Some("root-ca"),
            Some("api.example.com,10.1.2.3,ops@example.com"),
        ),
        // An empty -hostname is no -hostname: the request's hosts stay.
        signing(
            "empty-hostname",
            "server-csr.json",
            "rootCA-config.json",
            Some("root-ca"),
            Some(""),
        ),
        // An IPv4-mapped IPv6 address: Go writes the 4 bytes of the IPv4 address.
        signing(
            "mapped",
            "server-csr.json",
            "rootCA-config.json",
            Some("root-ca"),
            Some("::ffff:10.1.2.3,api.example.com"),
        ),
    ];
    for (name, go, rs) in &cases {
        let go: Vec<&str> = go.iter().map(String::as_str).collect();
        let rs: Vec<&str> = rs.iter().map(String::as_str).collect();
        cfssl_bare(&a, &go, name)?;
        kubepki_bare(&b, &rs, name)?;
        let file = format!("{name}.pem");
        let (fa, fb) = (fields(&a, &file)?, fields(&b, &file)?);
        assert_eq!(fa, fb, "{name}: cfssl (left) and kubepki (right) differ");
        let ((nb_a, na_a), (nb_b, na_b)) = (window(&a, &file)?, window(&b, &file)?);
        assert_eq!(na_a - nb_a, na_b - nb_b, "{name}: validity length");
        assert!(
            (nb_a - nb_b).abs() <= 60,
            "{name}: NotBefore {nb_a} vs {nb_b}"
        );
        assert_eq!(nb_b % 60, 0, "{name}: cfssl's NotBefore is on the minute");
        let key = |dir: &Path| -> Res<String> {
            let k = fs::read_to_string(dir.join(format!("{name}-key.pem")))?;
            Ok(k.lines().next().unwrap_or_default().to_owned())
        };
        assert_eq!(key(&a)?, key(&b)?, "{name}: key PEM type");
        let req = |dir: &Path| {
            run_ok(
                dir,
                "openssl",
                &[
                    "req",
                    "-in",
                    &format!("{name}.csr"),
                    "-noout",
                    "-verify",
                    "-subject",
                    "-nameopt",
                    "RFC2253",
                ],
            )
        };
        let (ra, rb) = (req(&a)?, req(&b)?);
        assert_eq!(ra.lines().last(), rb.lines().last(), "{name}: CSR subject");
        // The extensions the request asks for (SANs; a CA's BasicConstraints).
        let asked = |dir: &Path| -> Res<String> {
            let text = run_ok(
                dir,
                "openssl",
                &["req", "-in", &format!("{name}.csr"), "-noout", "-text"],
            )?;
            Ok(text
                .lines()
                .skip_while(|l| !l.contains("Requested Extensions"))
                .take_while(|l| !l.contains("Signature Algorithm"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n"))
        };
        assert_eq!(asked(&a)?, asked(&b)?, "{name}: CSR extensions");
    }
    Ok(())
}

/// `kubepki cfssl gencert ARGS` in `dir` fails with exit `code` and one line on stderr naming
/// `file` and saying `says` (a usage error, 64, is clap's: its first line); nothing on stdout.
fn refused(dir: &Path, args: &[&str], code: i32, file: &str, says: &str) -> R {
    let mut a = vec!["cfssl", "gencert"];
    a.extend_from_slice(args);
    let r = kubepki(dir, &a)?;
    assert_eq!(r.code, code, "{a:?}: {}", r.stderr);
    if code != 64 {
        assert_eq!(r.stderr.lines().count(), 1, "{a:?}: {}", r.stderr);
    }
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(file),
        "{a:?}: {} should name {file}",
        r.stderr
    );
    assert!(
        first.contains(says),
        "{a:?}: {} should say {says}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{a:?}: {}", r.stdout);
    Ok(())
}

#[test]
fn cfssl_files_that_cannot_be_used_are_refused_in_one_line() -> R {
    let d = tempfile::tempdir()?;
    let dir = d.path();
    let ok = kubepki(
        dir,
        &[
            "cfssl",
            "gencert",
            "--initca",
            "--bare",
            "ca",
            &v("ca-pathlen-csr.json"),
        ],
    )?;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let sign = |config: &str, profile: &str| -> Vec<String> {
        [
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            &v(config),
            "--profile",
            profile,
            &v("client-csr.json"),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec!["--initca".into(), v("bad-syntax-csr.json")],
            "bad-syntax-csr.json",
            "EOF while parsing",
        ),
        (
            vec!["--initca".into(), v("unknown-field-csr.json")],
            "unknown-field-csr.json",
            "unknown field `hots`",
        ),
        (
            sign("unknown-field-config.json", "root-ca"),
            "unknown-field-config.json",
            "unknown field `auth_key`",
        ),
        (
            sign("unknown-usage-config.json", "root-ca"),
            "unknown-usage-config.json",
            "signing.profiles.root-ca.usages: unknown usage \"server auht\"",
        ),
        (
            sign("ca-profile-config.json", "ca"),
            "ca-profile-config.json",
            "profile \"ca\" asks for the usage \"cert sign\"",
        ),
        (
            sign("ca-profile-config.json", "is-ca"),
            "ca-profile-config.json",
            "ca_constraint.is_ca",
        ),
        (
            sign("rootCA-config.json", "nope"),
            "rootCA-config.json",
            "no profile \"nope\" in the signing config (profiles: root-ca)",
        ),
        (
            sign("rootCA-config.json", "default"),
            "rootCA-config.json",
            "no profile \"default\"",
        ),
    ];
    for (args, file, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(dir, &args, 1, file, says)?;
    }
    // The default profile of rootCA-config.json has no usages: cfssl refuses it too.
    let no_usage: Vec<String> = [
        "--ca",
        "ca.pem",
        "--ca-key",
        "ca-key.pem",
        "--config",
        &v("rootCA-config.json"),
        &v("client-csr.json"),
    ]
    .map(str::to_owned)
    .to_vec();
    let no_usage: Vec<&str> = no_usage.iter().map(String::as_str).collect();
    refused(
        dir,
        &no_usage,
        1,
        "rootCA-config.json",
        "signing.default.usages: no usage",
    )?;
    // A key cfssl's request asks for that kubepki does not make.
    fs::write(
        dir.join("p521.json"),
        r#"{"CN": "x", "key": {"algo": "ecdsa", "size": 521}}"#,
    )?;
    refused(
        dir,
        &["--initca", "p521.json"],
        1,
        "p521.json",
        "key.size: 521 is not supported",
    )?;
    // An expiry that is over before the certificate is made (NotBefore is 5 minutes back):
    // cfssl issues an expired certificate; kubepki names the setting and makes no file.
    fs::write(
        dir.join("short-config.json"),
        r#"{"signing": {"default": {"usages": ["server auth"], "expiry": "1s"}}}"#,
    )?;
    refused(
        dir,
        &[
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "short-config.json",
            "--bare",
            "short",
            &v("client-csr.json"),
        ],
        1,
        "short-config.json",
        "signing.default.expiry: \"1s\" ends at ",
    )?;
    fs::write(
        dir.join("short-ca.json"),
        r#"{"CN": "x", "ca": {"expiry": "1m"}}"#,
    )?;
    refused(
        dir,
        &["--initca", "short-ca.json"],
        1,
        "short-ca.json",
        "ca.expiry: \"1m\" ends at ",
    )?;
    assert!(!dir.join("short.pem").exists());
    // Usage errors (64): a new root and a signing CA at once; a leaf without a CA.
    refused(
        dir,
        &["--initca", "--ca", "ca.pem", "p521.json"],
        64,
        "--ca",
        "cannot be used",
    )?;
    refused(
        dir,
        &[&v("client-csr.json")],
        64,
        "required arguments",
        "not provided",
    )?;
    // --bare names files, not a folder: "sub/" or "sub/." would write sub.pem beside it.
    fs::create_dir(dir.join("sub"))?;
    for bare in ["sub/", "sub/.", ".", "sub/.."] {
        refused(
            dir,
            &["--initca", "--bare", bare, &v("rootCA-csr.json")],
            64,
            "--bare",
            "must end in a file name",
        )?;
    }
    assert!(!dir.join("sub.pem").exists());
    // --bare never replaces a file unless --force is given.
    refused(
        dir,
        &["--initca", "--bare", "ca", &v("rootCA-csr.json")],
        1,
        "ca.pem",
        "already exists",
    )?;
    let before = fs::read(dir.join("ca.pem"))?;
    assert!(
        fs::read_to_string(dir.join("ca-key.pem"))?.starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let forced = kubepki(
        dir,
        &[
            "cfssl",
            "gencert",
            "--initca",
            "--bare",
            "ca",
            "--force",
            &v("rootCA-csr.json"),
        ],
    )?;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_ne!(fs::read(dir.join("ca.pem"))?, before);
    Ok(())
}
