//! Untrusted names never reach the terminal raw (issue 22), on the hostile-name corpus
//! (`tests/data/hostile/names/`, made by its `make.py` with OpenSSL and by hand): ESC and OSC
//! sequences, CR, LF, backspace, NUL, DEL, the C1 CSI, bidi overrides and isolates, invalid
//! UTF-8 in a UTF8String and a 64 KB name, in CSRs, certificates, manifests, kubeadm configs
//! and a kubeconfig.
//!
//! For every command that prints such input, standard output and standard error are checked
//! byte by byte (independently of kubepki's own escaping function): valid UTF-8, no byte below
//! 0x20 but the newline ending a line (no format uses tabs), no DEL, no C1 control (C2 80..C2
//! 9F), no bidirectional formatting character; and each record still starts on its own line.
//! Creating commands refuse each name with nothing written; `sign` and `sign-request` refuse to
//! issue for them.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{BIN, INIT_CLUSTER, INIT_TREE, TREE, files_under};

type R = Result<(), Box<dyn std::error::Error>>;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/hostile/names")
}

/// Every corpus file whose name starts with `prefix`, sorted.
fn corpus(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

/// One run with the raw bytes of both streams.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `kubepki args...` in `dir` and checks that both streams are safe on a terminal.
fn run<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Out, Box<dyn std::error::Error>> {
    let out = Command::new(BIN).args(args).current_dir(dir).output()?;
    let what = args
        .iter()
        .map(|a| format!("{:?}", a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Out {
        code: out.status.code().unwrap_or(-1),
        stdout: terminal_safe(&format!("stdout of {what}"), &out.stdout)?,
        stderr: terminal_safe(&format!("stderr of {what}"), &out.stderr)?,
    })
}

/// The property itself, on the bytes: valid UTF-8; no C0 control but `\n`, no DEL, no C1 (as
/// UTF-8: C2 80..C2 9F), no bidirectional formatting character (U+061C, U+200E, U+200F,
/// U+202A..U+202E, U+2066..U+2069) nor line/paragraph separator (U+2028, U+2029).
fn terminal_safe(what: &str, bytes: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "{what}: not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    })?;
    for (i, b) in bytes.iter().enumerate() {
        if (*b < 0x20 && *b != b'\n') || *b == 0x7f {
            return Err(format!("{what}: byte {b:#04x} at {i}: {text:?}").into());
        }
        if *b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) {
            return Err(format!("{what}: a C1 control at {i}: {text:?}").into());
        }
    }
    for c in text.chars() {
        let bidi = matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if bidi {
            return Err(format!("{what}: U+{:04X} shown raw: {text:?}", u32::from(c)).into());
        }
    }
    Ok(text)
}

/// An error is one line: `kubepki: error: ...` and nothing else.
fn one_error_line(what: &str, stderr: &str) {
    assert!(
        stderr.starts_with("kubepki: error: ")
            && stderr.ends_with('\n')
            && stderr.matches('\n').count() == 1,
        "{what}: not one error line: {stderr:?}"
    );
}

/// No line of `text` starts with what a hostile name tried to inject as a line of its own.
fn no_injected_line(what: &str, text: &str) {
    for l in text.lines() {
        assert!(
            !l.trim_start().starts_with("Injected") && !l.starts_with("[8m"),
            "{what}: a line of the name's own: {l:?}"
        );
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `inspect` text is `key: value` records, nested by two spaces, and `-` list markers.
fn inspect_record_lines(what: &str, text: &str) {
    for l in text.lines() {
        let body = l.trim_start_matches(' ');
        let indent = l.len() - body.len();
        let key_ok = body.split_once(':').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric())
                && (v.is_empty() || v.starts_with(' '))
        });
        assert!(
            indent % 2 == 0 && (key_ok || body == "-"),
            "{what}: not a record line: {l:?}"
        );
    }
}

#[test]
fn inspect_shows_every_hostile_request_certificate_and_manifest_escaped() -> R {
    let d = tempfile::tempdir()?;
    let mut files = corpus("csr--");
    files.extend(corpus("cert--"));
    files.extend(corpus("manifest--"));
    files.push(corpus_dir().join("corpus-ca.crt"));
    assert!(files.len() >= 45, "{files:?}");
    let mut shown = 0;
    let mut refused = Vec::new();
    for f in &files {
        let what = name(f);
        let r = run(d.path(), &[OsStr::new("inspect"), f.as_os_str()])?;
        inspect_record_lines(&what, &r.stdout);
        no_injected_line(&what, &r.stdout);
        no_injected_line(&what, &r.stderr);
        if r.code == 0 {
            shown += 1;
            assert!(r.stderr.is_empty(), "{what}: {}", r.stderr);
        } else {
            one_error_line(&what, &r.stderr);
            refused.push(what.clone());
        }
        let j = run(
            d.path(),
            &[
                OsStr::new("inspect"),
                OsStr::new("-o"),
                OsStr::new("json"),
                f.as_os_str(),
            ],
        )?;
        if j.code == 0 || what.starts_with("manifest--") && !j.stdout.is_empty() {
            serde_json::from_str::<serde_json::Value>(&j.stdout)
                .map_err(|e| format!("{what}: JSON: {e}: {}", j.stdout))?;
        }
    }
    // The invalid UTF-8 request and certificate cannot be described (their error shows the
    // bytes escaped); manifests the API server would reject are described, then refused.
    refused.sort();
    assert_eq!(
        refused,
        [
            "cert--invalid-utf8.crt",
            "csr--invalid-utf8.csr",
            "manifest--invalid-utf8.yaml",
            "manifest--name.yaml",
            "manifest--usage.yaml"
        ]
    );
    assert_eq!(shown + refused.len(), files.len());
    let r = run(
        d.path(),
        &[
            OsStr::new("inspect"),
            corpus_dir().join("csr--invalid-utf8.csr").as_os_str(),
        ],
    )?;
    assert!(
        r.stderr
            .contains(r#""jane\xff\xfe\xc0\x80\x1b[31m" is not a valid UTF8String"#),
        "{}",
        r.stderr
    );
    // What a reviewer sees of each trick.
    let cases = [
        ("csr--esc-colour.csr", r"commonName: evil\x1b[31mRED\x1b[0m"),
        (
            "csr--esc-hide.csr",
            r"subject: L = Berlin\x1b[8m, O = system:masters, CN = jane",
        ),
        (
            "csr--osc-title.csr",
            r"commonName: \x1b]0;kubepki: all good\x07jane",
        ),
        (
            "csr--carriage-return.csr",
            r"commonName: system:masters\rjane",
        ),
        ("csr--newline.csr", r"commonName: jane\nInjected: line"),
        ("csr--backspace.csr", r"commonName: system:masters\x08\x08"),
        ("csr--nul.csr", r"commonName: jane\x00system:masters"),
        ("csr--del.csr", r"commonName: jane\x7fadmin"),
        ("csr--c1-csi.csr", r"commonName: \u{9b}31mjane"),
        (
            "csr--bidi-override.csr",
            r"commonName: jane\u{202e}sretsam:metsys",
        ),
        (
            "csr--bidi-isolate.csr",
            r"organizations: \u{2067}system:masters\u{2069}",
        ),
        ("csr--san-esc.csr", r"dns: evil\x1b[31m.example"),
        ("csr--san-newline.csr", r"dns: n1.example\nInjected: line"),
        ("cert--newline.crt", r"commonName: jane\nInjected: line"),
        (
            "cert--bidi-override.crt",
            r"subject: CN = jane\u{202e}sretsam:metsys",
        ),
        ("manifest--name.yaml", r"name: n1\x1b[31m\nInjected: line"),
        (
            "manifest--signer-name.yaml",
            r"signerName: kubernetes.io/kube-apiserver-client\x1b[8m",
        ),
        (
            "manifest--usage.yaml",
            r"usages: digital signature, client auth\u{202e}",
        ),
        (
            "manifest--esc-hide.yaml",
            r"    subject: L = Berlin\x1b[8m, O = system:masters",
        ),
    ];
    for (file, line) in cases {
        let r = run(
            d.path(),
            &[OsStr::new("inspect"), corpus_dir().join(file).as_os_str()],
        )?;
        assert!(
            r.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(line.trim_start())),
            "{file}: no line {line:?} in\n{}",
            r.stdout
        );
    }
    // The 64 KB name is one line too.
    let r = run(
        d.path(),
        &[
            OsStr::new("inspect"),
            corpus_dir().join("csr--64k.csr").as_os_str(),
        ],
    )?;
    let cn = r
        .stdout
        .lines()
        .find(|l| l.starts_with("commonName: "))
        .unwrap_or_default();
    assert!(cn.len() > 65536, "{}", cn.len());
    Ok(())
}

#[test]
fn inspect_json_keeps_the_real_value() -> R {
    let d = tempfile::tempdir()?;
    let cases = [
        ("csr--esc-colour.csr", "evil\x1b[31mRED\x1b[0m"),
        ("csr--newline.csr", "jane\nInjected: line"),
        ("csr--nul.csr", "jane\0system:masters"),
        ("csr--del.csr", "jane\x7fadmin"),
        ("csr--c1-csi.csr", "\u{9b}31mjane"),
        ("csr--bidi-override.csr", "jane\u{202e}sretsam:metsys"),
        ("cert--carriage-return.crt", "system:masters\rjane"),
    ];
    for (file, cn) in cases {
        let r = run(
            d.path(),
            &[
                OsStr::new("inspect"),
                OsStr::new("-o"),
                OsStr::new("json"),
                corpus_dir().join(file).as_os_str(),
            ],
        )?;
        assert_eq!(r.code, 0, "{file}: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
        assert_eq!(v["commonName"], serde_json::json!(cn), "{file}");
    }
    Ok(())
}

/// A CA made by kubepki in `d`.
fn ca(d: &Path) -> R {
    let r = run(
        d,
        &[
            "ca",
            "create",
            "--cn",
            "kubernetes",
            "--algorithm",
            "ECDSA-P256",
            "--out-dir",
            ".",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(())
}

#[test]
fn sign_and_sign_request_refuse_to_issue_for_every_hostile_name() -> R {
    let d = tempfile::tempdir()?;
    ca(d.path())?;
    fs::create_dir(d.path().join("out"))?;
    let common: [&OsStr; 4] = ["--ca-cert", "ca.crt", "--ca-key", "ca.key"].map(OsStr::new);
    let rule = "holds a control or bidirectional formatting character";
    let csrs = corpus("csr--");
    assert_eq!(csrs.len(), 15);
    for csr in &csrs {
        let what = name(csr);
        let mut sign: Vec<&OsStr> = vec![OsStr::new("sign")];
        sign.extend(common);
        sign.extend(["--profile", "client", "--out", "out/x.crt", "--csr"].map(OsStr::new));
        sign.push(csr.as_os_str());
        let mut bare: Vec<&OsStr> = vec![OsStr::new("sign-request")];
        bare.extend(common);
        bare.extend(
            [
                "--signer-name",
                "kubernetes.io/kube-apiserver-client",
                "--out-dir",
                "out",
            ]
            .map(OsStr::new),
        );
        bare.push(csr.as_os_str());
        let manifest =
            corpus_dir().join(what.replace("csr--", "manifest--").replace(".csr", ".yaml"));
        let mut by_manifest: Vec<&OsStr> = vec![OsStr::new("sign-request")];
        by_manifest.extend(common);
        by_manifest.extend(["--out-dir", "out"].map(OsStr::new));
        by_manifest.push(manifest.as_os_str());
        for args in [&sign, &bare, &by_manifest] {
            let r = run(d.path(), args)?;
            assert_eq!(r.code, 1, "{what} {args:?}: {}", r.stderr);
            one_error_line(&what, &r.stderr);
            assert!(r.stdout.is_empty(), "{what}: {}", r.stdout);
            let expected = if what.contains("invalid-utf8") {
                "is not a valid UTF8String"
            } else {
                rule
            };
            assert!(r.stderr.contains(expected), "{what} {args:?}: {}", r.stderr);
        }
    }
    // Hostile values elsewhere in a manifest are refused by its validation, shown escaped.
    for m in [
        "manifest--name.yaml",
        "manifest--signer-name.yaml",
        "manifest--usage.yaml",
    ] {
        let mut args: Vec<&OsStr> = vec![OsStr::new("sign-request")];
        args.extend(common);
        args.extend(["--out-dir", "out"].map(OsStr::new));
        let p = corpus_dir().join(m);
        args.push(p.as_os_str());
        let r = run(d.path(), &args)?;
        assert_eq!(r.code, 1, "{m}: {}", r.stderr);
        one_error_line(m, &r.stderr);
    }
    assert!(files_under(&d.path().join("out")).is_empty());
    Ok(())
}

/// Hostile names that can be passed as arguments (NUL cannot).
fn argv_names() -> Vec<OsString> {
    [
        "evil\x1b[31mRED\x1b[0m",
        "jane\x1b[8m",
        "\x1b]0;title\x07jane",
        "system:masters\rjane",
        "jane\nInjected: line",
        "system:masters\x08\x08jane",
        "jane\x7f",
        "\u{9b}31mjane",
        "jane\u{202e}nimda",
        "\u{2066}jane\u{2069}",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([OsString::from_vec(b"jane\xff\xfe".to_vec())])
    .collect()
}

#[test]
fn creation_commands_refuse_each_hostile_name_with_nothing_written() -> R {
    let d = tempfile::tempdir()?;
    let r = run(
        d.path(),
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "k.key"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A tree for the node commands, away from where the refused commands would write.
    let r = run(d.path(), &INIT_CLUSTER)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = files_under(d.path()).len();
    let o = |s: &str| OsString::from(s);
    let mut refused = 0;
    for n in argv_names() {
        let csr = |flag: &str, value: OsString| -> Vec<OsString> {
            let mut v = [
                "csr",
                "--key",
                "k.key",
                "--out",
                "out/x.csr",
                "--k8s-manifest",
                "out/x.yaml",
            ]
            .map(o)
            .to_vec();
            if flag != "--cn" {
                v.extend([o("--cn"), o("ok")]);
            }
            v.extend([o(flag), value]);
            v
        };
        let mut san = o("*.");
        san.push(&n);
        let commands: Vec<Vec<OsString>> = vec![
            csr("--cn", n.clone()),
            csr("--org", n.clone()),
            csr("--ou", n.clone()),
            csr("--dns", n.clone()),
            csr("--uri", {
                let mut u = o("https://x/");
                u.push(&n);
                u
            }),
            csr("--email", {
                let mut u = n.clone();
                u.push("@example.com");
                u
            }),
            vec![
                o("user"),
                o("create"),
                n.clone(),
                o("--csr-only"),
                o("--out-dir"),
                o("out"),
            ],
            vec![
                o("user"),
                o("create"),
                o("jane"),
                o("--group"),
                n.clone(),
                o("--csr-only"),
                o("--out-dir"),
                o("out"),
            ],
            {
                let mut v = csr("--cn", o("ok"));
                v.extend([o("--signer-name"), n.clone()]);
                v
            },
            vec![
                o("user"),
                o("create"),
                o("jane"),
                o("--cluster-name"),
                n.clone(),
                o("--ca-cert"),
                o("c/pki/ca.crt"),
                o("--ca-key"),
                o("c/pki/ca.key"),
                o("--cluster-server"),
                o("https://192.0.2.10:6443"),
                o("--out-kubeconfig"),
                o("out/jane.conf"),
            ],
            vec![
                o("user"),
                o("create"),
                o("jane"),
                o("--rbac-clusterrole"),
                n.clone(),
                o("--csr-only"),
                o("--out-dir"),
                o("out"),
            ],
            vec![
                o("node"),
                o("kubelet-kubeconfig"),
                o("--cert-dir"),
                o("c/pki"),
                o("--out"),
                o("out/k.conf"),
                o("--cluster-server"),
                o("https://192.0.2.10:6443"),
                o("--node-name"),
                o("n1"),
                o("--cluster-name"),
                n.clone(),
            ],
            vec![
                o("ca"),
                o("create"),
                o("--cn"),
                n.clone(),
                o("--out-dir"),
                o("out"),
                o("--algorithm"),
                o("RSA-4096"),
            ],
            vec![
                o("init"),
                o("--cert-dir"),
                o("out/pki"),
                o("--kubeconfig-dir"),
                o("out"),
                o("--apiserver-advertise-address"),
                o("192.0.2.10"),
                o("--node-name"),
                n.clone(),
            ],
            vec![
                o("init"),
                o("--cert-dir"),
                o("out/pki"),
                o("--kubeconfig-dir"),
                o("out"),
                o("--apiserver-advertise-address"),
                o("192.0.2.10"),
                o("--node-name"),
                o("cp1"),
                o("--apiserver-cert-extra-sans"),
                san.clone(),
            ],
            vec![
                o("init"),
                o("--cert-dir"),
                o("out/pki"),
                o("--kubeconfig-dir"),
                o("out"),
                o("--apiserver-advertise-address"),
                o("192.0.2.10"),
                o("--node-name"),
                o("cp1"),
                o("--control-plane-endpoint"),
                n.clone(),
            ],
            vec![
                o("node"),
                o("kubelet-serving"),
                o("--cert-dir"),
                o("c/pki"),
                o("--out-dir"),
                o("out"),
                o("--node-name"),
                n.clone(),
            ],
            vec![
                o("node"),
                o("kubelet-serving"),
                o("--cert-dir"),
                o("c/pki"),
                o("--out-dir"),
                o("out"),
                o("--node-name"),
                o("n1"),
                o("--dns"),
                n.clone(),
            ],
            vec![
                o("node"),
                o("kubelet-kubeconfig"),
                o("--cert-dir"),
                o("c/pki"),
                o("--out"),
                o("out/k.conf"),
                o("--cluster-server"),
                o("https://192.0.2.10:6443"),
                o("--node-name"),
                n.clone(),
            ],
        ];
        for args in &commands {
            fs::create_dir_all(d.path().join("out"))?;
            let r = run(d.path(), args)?;
            let what = format!("{args:?}");
            assert!(
                r.code == 64 || r.code == 1,
                "{what}: exit {}: {}",
                r.code,
                r.stderr
            );
            assert!(r.stdout.is_empty(), "{what}: {}", r.stdout);
            no_injected_line(&what, &r.stderr);
            if r.stderr.starts_with("kubepki: error: ") {
                one_error_line(&what, &r.stderr);
            } else {
                // clap's own message: the value quoted on one line.
                assert!(r.stderr.starts_with("error: "), "{what}: {}", r.stderr);
            }
            assert!(
                files_under(&d.path().join("out")).is_empty(),
                "{what}: wrote {:?}",
                files_under(&d.path().join("out"))
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 11 * 19);
    // kubeadm configs with a hostile node name, SAN, endpoint or cluster name.
    for cfg in corpus("config--") {
        let what = name(&cfg);
        let r = run(
            d.path(),
            &[
                OsStr::new("init"),
                OsStr::new("--cert-dir"),
                OsStr::new("out/pki"),
                OsStr::new("--kubeconfig-dir"),
                OsStr::new("out"),
                OsStr::new("--config"),
                cfg.as_os_str(),
            ],
        )?;
        assert_eq!(r.code, 64, "{what}: {}", r.stderr);
        one_error_line(&what, &r.stderr);
        assert!(files_under(&d.path().join("out")).is_empty(), "{what}");
    }
    assert_eq!(files_under(d.path()).len(), before);
    Ok(())
}

#[test]
fn a_name_is_refused_before_its_key_is_generated() -> R {
    // RSA-4096 generation takes far longer than a refusal; the name is checked first.
    let d = tempfile::tempdir()?;
    let start = std::time::Instant::now();
    for _ in 0..5 {
        let r = run(
            d.path(),
            &[
                "ca",
                "create",
                "--cn",
                "ca\x1b[8m",
                "--algorithm",
                "RSA-4096",
                "--out-dir",
                ".",
            ],
        )?;
        assert_eq!(r.code, 64, "{}", r.stderr);
        let r = run(
            d.path(),
            &[
                "user",
                "create",
                "jane\n",
                "--encryption-algorithm",
                "RSA-4096",
                "--csr-only",
                "--out-dir",
                ".",
            ],
        )?;
        assert_eq!(r.code, 64, "{}", r.stderr);
    }
    let each = start.elapsed() / 10;
    assert!(
        each < std::time::Duration::from_millis(300),
        "{each:?} a refusal"
    );
    assert!(files_under(d.path()).is_empty());
    Ok(())
}

/// A tree in `d/t` with hostile files planted: a certificate whose subject hides with ESC[8m
/// as `apiserver.crt`, one with invalid UTF-8 as `front-proxy-client.crt`, a bidi override as
/// `etcd/peer.crt`, and an `admin.conf` naming its certificate and key by hostile paths.
fn hostile_tree(d: &Path) -> R {
    let r = run(d, &INIT_TREE)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = corpus_dir();
    fs::copy(c.join("cert--esc-hide.crt"), d.join("t/pki/apiserver.crt"))?;
    fs::copy(
        c.join("cert--invalid-utf8.crt"),
        d.join("t/pki/front-proxy-client.crt"),
    )?;
    fs::copy(
        c.join("cert--bidi-override.crt"),
        d.join("t/pki/etcd/peer.crt"),
    )?;
    fs::copy(
        c.join("cert--newline.crt"),
        d.join("t/pki/apiserver-kubelet-client.crt"),
    )?;
    fs::copy(
        c.join("kubeconfig--client-certificate-path.conf"),
        d.join("t/admin.conf"),
    )?;
    Ok(())
}

#[test]
fn tree_commands_show_hostile_files_escaped() -> R {
    let d = tempfile::tempdir()?;
    hostile_tree(d.path())?;
    let snapshot = |d: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<_> = files_under(d)
            .into_iter()
            .map(|p| {
                let b = fs::read(&p).unwrap_or_default();
                (p, b)
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(d.path());

    // verify: one row per check, each starting with its status.
    let r = run(d.path(), &[&["verify"][..], &TREE].concat())?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    for l in r.stdout.lines() {
        assert!(
            l.is_empty()
                || ["PASS  ", "WARN  ", "FAIL  "]
                    .iter()
                    .any(|t| l.starts_with(t))
                || l.contains(" checks: "),
            "verify: not a row: {l:?}"
        );
    }
    no_injected_line("verify", &r.stdout);
    assert!(
        r.stdout.contains(r"\x1b[8m") || r.stdout.contains(r"\x1b[31m"),
        "{}",
        r.stdout
    );
    let j = run(d.path(), &[&["verify", "-o", "json"][..], &TREE].concat())?;
    serde_json::from_str::<serde_json::Value>(&j.stdout)?;

    // check-expiration: kubeadm's table, aligned; problems on stderr, one line each.
    let r = run(
        d.path(),
        &[&["certs", "check-expiration"][..], &TREE].concat(),
    )?;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let mut table = r.stdout.split("\n\n");
    let t1 = table.next().unwrap_or_default();
    let mut lines = t1.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.find("EXPIRES").unwrap_or(0);
    let ca_col = header.find("CERTIFICATE AUTHORITY").unwrap_or(0);
    assert!(col > 0 && ca_col > col, "{header}");
    let mut rows = 0;
    for l in lines {
        if l.starts_with('!') {
            continue;
        }
        rows += 1;
        let cells_at = |i: usize| {
            l.as_bytes().get(i - 1) == Some(&b' ')
                && l.as_bytes().get(i).is_some_and(|b| *b != b' ')
        };
        assert!(
            cells_at(col) && cells_at(ca_col),
            "check-expiration: misaligned {l:?} under {header:?}"
        );
    }
    assert!(rows >= 8, "{t1}");
    assert!(
        r.stdout.contains("!INVALID! front-proxy-client"),
        "{}",
        r.stdout
    );
    for l in r.stderr.lines() {
        assert!(
            l.starts_with("kubepki: error: "),
            "check-expiration stderr: {l:?}"
        );
    }
    no_injected_line("check-expiration", &r.stderr);
    assert!(
        r.stderr.contains(r"\x1b[31mclient\nInjected: line.crt"),
        "{}",
        r.stderr
    );
    for fmt in ["json", "yaml"] {
        let j = run(
            d.path(),
            &[&["certs", "check-expiration", "-o", fmt][..], &TREE].concat(),
        )?;
        assert_eq!(j.code, 3, "{}", j.stderr);
        if fmt == "json" {
            serde_json::from_str::<serde_json::Value>(&j.stdout)?;
        }
    }

    // init --dry-run shows the subjects of the files it would reuse or refuse.
    let r = run(d.path(), &[&["init", "--dry-run"][..], &TREE].concat())?;
    for l in r.stdout.lines() {
        assert!(
            l.is_empty() || l.starts_with('[') || l.starts_with("          "),
            "init --dry-run: {l:?}"
        );
    }
    no_injected_line("init --dry-run", &r.stdout);
    no_injected_line("init --dry-run", &r.stderr);
    if r.code != 0 {
        one_error_line("init --dry-run", &r.stderr);
    }
    // The read-only commands changed nothing.
    assert!(
        snapshot(d.path()) == before,
        "a read-only command changed the tree"
    );
    // init and renew refuse or fail on the planted files; their messages stay lines.
    let r = run(d.path(), &[&["init"][..], &TREE].concat())?;
    assert_ne!(r.code, 0);
    one_error_line("init", &r.stderr);
    let r = run(d.path(), &[&["certs", "renew", "all"][..], &TREE].concat())?;
    for l in r.stdout.lines() {
        assert!(!l.starts_with("Injected"), "renew: {l:?}");
    }
    for l in r.stderr.lines() {
        assert!(
            l.starts_with("kubepki: error: ") || l.starts_with("warning: "),
            "renew: {l:?}"
        );
    }
    Ok(())
}

#[test]
fn reports_of_init_user_and_node_escape_the_paths_they_name() -> R {
    let d = tempfile::tempdir()?;
    let dir = "out\x1b[31m\nInjected: line\u{202e}";
    let r = run(
        d.path(),
        &[
            "init",
            "--cert-dir",
            &format!("{dir}/pki"),
            "--kubeconfig-dir",
            dir,
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "192.0.2.10",
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for l in r.stdout.lines() {
        assert!(
            l.is_empty()
                || l.starts_with('[')
                || l.starts_with("Wrote ")
                || l.starts_with("Note: "),
            "init: {l:?}"
        );
    }
    assert!(
        r.stdout.contains(
            r#"[certs] Using certificateDir folder "out\x1b[31m\nInjected: line\u{202e}/pki""#
        ),
        "{}",
        r.stdout
    );
    let r = run(
        d.path(),
        &["user", "create", "jane", "--csr-only", "--out-dir", dir],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    for l in r.stdout.lines() {
        assert!(
            l.starts_with(r"[user] Wrote out\x1b[31m\nInjected: line\u{202e}/jane"),
            "{l:?}"
        );
    }
    let pki = format!("{dir}/pki");
    let r = run(
        d.path(),
        &[
            "node",
            "kubelet-serving",
            "--cert-dir",
            &pki,
            "--node-name",
            "n1",
            "--out-dir",
            dir,
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let out = format!("{dir}/n1.conf");
    let r = run(
        d.path(),
        &[
            "node",
            "kubelet-kubeconfig",
            "--cert-dir",
            &pki,
            "--node-name",
            "n1",
            "--out",
            &out,
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // keygen: the key path.
    let r = run(
        d.path(),
        &[
            "keygen",
            "--algorithm",
            "ECDSA-P256",
            "--out",
            &format!("{dir}/u.key"),
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    Ok(())
}

#[test]
fn argument_values_and_file_names_in_errors_stay_on_one_line() -> R {
    let d = tempfile::tempdir()?;
    // clap's echo of a value it cannot parse.
    for args in [
        &[
            "csr",
            "--key",
            "k",
            "--cn",
            "x",
            "--out",
            "o",
            "--ip",
            "1.2.3.4\nInjected: line\x1b[8m",
        ][..],
        &["inspect", "-o", "json\x1b]0;t\x07\nInjected: line", "x"][..],
        &["sign", "--profile", "client\u{202e}\nInjected: line"][..],
        &[
            "certs",
            "check-expiration",
            "--warn-within",
            "\x1b[31m30d\nInjected: line",
        ][..],
    ] {
        let r = run(d.path(), args)?;
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        no_injected_line(&format!("{args:?}"), &r.stderr);
    }
    // A file name in an error.
    let r = run(
        d.path(),
        &["inspect", "missing\x1b[31m\nInjected: line\u{9b}.csr"],
    )?;
    assert_eq!(r.code, 1);
    one_error_line("inspect missing", &r.stderr);
    assert!(
        r.stderr
            .contains(r"missing\x1b[31m\nInjected: line\u{9b}.csr"),
        "{}",
        r.stderr
    );
    let bad = OsString::from_vec(b"bad\xff\x1b.csr".to_vec());
    let r = run(d.path(), &[OsStr::new("inspect"), &bad])?;
    one_error_line("inspect bad", &r.stderr);
    assert!(r.stderr.contains(r"bad\xff\x1b.csr"), "{}", r.stderr);
    Ok(())
}

#[test]
fn ordinary_names_non_ascii_included_print_exactly_as_before() -> R {
    let d = tempfile::tempdir()?;
    let r = run(
        d.path(),
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "k.key"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        d.path(),
        &[
            "csr",
            "--key",
            "k.key",
            "--cn",
            "Zoë Ångström 李小龍",
            "--org",
            "dév",
            "--out",
            "z.csr",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "wrote certificate request z.csr for O = dév, CN = Zoë Ångström 李小龍\n"
    );
    let r = run(d.path(), &["inspect", "z.csr"])?;
    assert!(
        r.stdout
            .contains("\nsubject: O = dév, CN = Zoë Ångström 李小龍\n"),
        "{}",
        r.stdout
    );
    ca(d.path())?;
    let r = run(
        d.path(),
        &[
            "sign",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--csr",
            "z.csr",
            "--profile",
            "client",
            "--out",
            "z.crt",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(
            "wrote client certificate z.crt for O = dév, CN = Zoë Ångström 李小龍 (serial "
        ),
        "{}",
        r.stdout
    );
    Ok(())
}

/// attack22: `init --export json` writes to standard output by default, and the export holds
/// the text of every file it reuses. A kubeconfig in the tree may hold characters YAML allows
/// raw (a bidi override, an isolate, NEL in a comment or a value): serde_json leaves them
/// raw, so they reached the terminal. They must be written as JSON escapes (the same value).
#[test]
fn init_export_json_escapes_what_reused_files_hold() -> R {
    let d = tempfile::tempdir()?;
    let r = run(
        d.path(),
        &[
            &["init"][..],
            &TREE,
            &["--encryption-algorithm", "ECDSA-P256"],
        ]
        .concat(),
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let admin = d.path().join("t/admin.conf");
    let mut text = fs::read_to_string(&admin)?;
    text.push_str("# note \u{202e}gnp.exe \u{2066}isolate\u{2069} nel\u{85}\n");
    fs::write(&admin, &text)?;
    let r = run(
        d.path(),
        &[&["init", "--export", "json"][..], &TREE].concat(),
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The same JSON value: the file's text, the characters included.
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    let files = v["files"].as_array().cloned().unwrap_or_default();
    let exported = files
        .iter()
        .find(|f| f["path"] == "admin.conf")
        .and_then(|f| f["text"].as_str())
        .unwrap_or_default();
    assert_eq!(exported, text);
    Ok(())
}

/// attack22: a kubeconfig's server URL is a value kubepki writes; its host was checked, the
/// rest of it was not, so `user create` and `node kubelet-kubeconfig` wrote a path holding ESC
/// and a bidi override into the kubeconfig. Refused like the cluster name, nothing written.
#[test]
fn a_server_url_with_a_hostile_path_is_refused() -> R {
    let d = tempfile::tempdir()?;
    ca(d.path())?;
    let server = "https://x.example:6443/\x1b[8m\u{202e}";
    let r = run(
        d.path(),
        &[
            "user",
            "create",
            "jane",
            "--ca-cert",
            "ca.crt",
            "--ca-key",
            "ca.key",
            "--encryption-algorithm",
            "ECDSA-P256",
            "--cluster-server",
            server,
            "--out-kubeconfig",
            "jane.conf",
        ],
    )?;
    assert_ne!(r.code, 0, "{}", r.stdout);
    one_error_line("user create --cluster-server", &r.stderr);
    assert!(r.stderr.contains(r"\x1b[8m\u{202e}"), "{}", r.stderr);
    assert!(!d.path().join("jane.conf").exists());
    let pki = d.path().join("pki");
    fs::create_dir(&pki)?;
    fs::copy(d.path().join("ca.crt"), pki.join("ca.crt"))?;
    fs::copy(d.path().join("ca.key"), pki.join("ca.key"))?;
    let r = run(
        d.path(),
        &[
            "node",
            "kubelet-kubeconfig",
            "--cert-dir",
            "pki",
            "--node-name",
            "n1",
            "--encryption-algorithm",
            "ECDSA-P256",
            "--cluster-server",
            server,
            "--out",
            "n1.conf",
        ],
    )?;
    assert_ne!(r.code, 0, "{}", r.stdout);
    one_error_line("node kubelet-kubeconfig --cluster-server", &r.stderr);
    assert!(!d.path().join("n1.conf").exists());
    Ok(())
}

/// attack22: `init -o json` with a folder whose name is not UTF-8 wrote the whole tree, then
/// failed to encode its report ("path contains invalid UTF-8 characters", exit 1, nothing on
/// standard output): a script saw a failure for a tree that was written. A JSON report cannot
/// hold such a path, so the command is refused before anything is written.
#[test]
fn init_json_report_with_a_non_utf8_folder_is_refused_before_writing() -> R {
    let d = tempfile::tempdir()?;
    let dir = OsString::from_vec(b"t\xff\x1b".to_vec());
    let mut pki = dir.clone();
    pki.push("/pki");
    let args: Vec<OsString> = [
        "init",
        "-o",
        "json",
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "192.0.2.10",
        "--encryption-algorithm",
        "ECDSA-P256",
        "--kubeconfig-dir",
    ]
    .iter()
    .map(OsString::from)
    .chain([dir.clone(), OsString::from("--cert-dir"), pki])
    .collect();
    let r = run(d.path(), &args)?;
    if r.code == 0 {
        serde_json::from_str::<serde_json::Value>(&r.stdout)?;
    } else {
        one_error_line("init -o json", &r.stderr);
        assert_eq!(r.code, 64, "{}", r.stderr);
        assert!(
            files_under(&d.path().join(&dir)).is_empty(),
            "refused, yet files were written"
        );
    }
    Ok(())
}

/// attack22: `init --export json --export-file DIR/x.json` with a DIR whose name is not
/// UTF-8 wrote the export (private keys) to the file, and the report said "Exported ... to
/// standard output". The report names the file, escaped.
#[test]
fn an_export_to_a_file_in_a_non_utf8_folder_names_that_file() -> R {
    let d = tempfile::tempdir()?;
    let out_dir = OsString::from_vec(b"d\xff\x1b".to_vec());
    fs::create_dir(d.path().join(&out_dir))?;
    let mut file = out_dir.clone();
    file.push("/exp.json");
    let args: Vec<OsString> = [&["init", "--export", "json"][..], &TREE]
        .concat()
        .iter()
        .map(OsString::from)
        .chain([OsString::from("--export-file"), file.clone()])
        .collect();
    let r = run(d.path(), &args)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.path().join(&file).exists());
    assert_eq!(r.stdout, "");
    assert!(!r.stderr.contains("standard output"), "{}", r.stderr);
    assert!(
        r.stderr.contains(r"to d\xff\x1b/exp.json ("),
        "{}",
        r.stderr
    );
    Ok(())
}

/// Every flag whose value clap parses with a typed parser (`--algorithm`, `--profile`,
/// `--usage`, `--validity`, `--kubernetes-version`) refuses a hostile value — a newline, ESC, a
/// bidi override, a C1 control, 64 KiB of text, invalid UTF-8 — with one escaped line naming
/// the flag, exit 64 and nothing written (issue 20).
#[test]
fn typed_flags_refuse_hostile_values_on_one_line_with_nothing_written() -> R {
    let d = tempfile::tempdir()?;
    let commands: [(&str, &[&str]); 9] = [
        ("--algorithm", &["keygen", "--out", "o.key"]),
        (
            "--algorithm",
            &["ca", "create", "--cn", "x", "--out-dir", "o"],
        ),
        (
            "--validity",
            &["ca", "create", "--cn", "x", "--out-dir", "o"],
        ),
        (
            "--profile",
            &[
                "sign",
                "--ca-cert",
                "ca.crt",
                "--ca-key",
                "ca.key",
                "--csr",
                "x.csr",
                "--out",
                "x.crt",
            ],
        ),
        (
            "--validity",
            &[
                "sign",
                "--ca-cert",
                "ca.crt",
                "--ca-key",
                "ca.key",
                "--csr",
                "x.csr",
                "--out",
                "x.crt",
                "--profile",
                "client",
            ],
        ),
        (
            "--usage",
            &[
                "csr",
                "--key",
                "k.key",
                "--cn",
                "x",
                "--out",
                "x.csr",
                "--k8s-manifest",
                "x.yaml",
            ],
        ),
        ("--kubernetes-version", &["init", "--cert-dir", "t/pki"]),
        ("--kubernetes-version", &["certs", "check-expiration"]),
        ("--kubernetes-version", &["certs", "renew", "all"]),
    ];
    let long = format!("{}\x1b[31m", "A".repeat(64 * 1024));
    let mut values: Vec<OsString> = [
        "RSA-2048\nInjected: line",
        "\x1b[8mhidden",
        "client\u{202e}gnp",
        "v1.31\u{9b}31m",
        long.as_str(),
    ]
    .map(OsString::from)
    .to_vec();
    values.push(OsString::from_vec(b"RSA-2048\xff\x1b[31m".to_vec()));
    for (flag, args) in commands {
        for value in &values {
            let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            argv.push(OsStr::new(flag));
            argv.push(value);
            let what = format!("{flag} {value:?}");
            let r = run(d.path(), &argv)?;
            assert_eq!(r.code, 64, "{what}: {}", r.stderr);
            one_error_line(&what, &r.stderr);
            no_injected_line(&what, &r.stderr);
            assert!(r.stdout.is_empty(), "{what}: {}", r.stdout);
            if value.to_str().is_some() {
                assert!(
                    r.stderr.starts_with(&format!("kubepki: error: {flag}: ")),
                    "{what}: {}",
                    r.stderr
                );
            } else {
                assert!(r.stderr.contains(r"\xff\x1b[31m"), "{what}: {}", r.stderr);
            }
            assert!(files_under(d.path()).is_empty(), "{what} wrote something");
        }
    }
    Ok(())
}
