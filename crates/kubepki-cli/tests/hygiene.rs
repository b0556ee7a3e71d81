//! Secrets hygiene: modes exact whatever the umask, no key material in any output, symlinks
//! never followed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

mod common;
use common::{BIN, INIT_TREE, TREE, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[test]
fn modes_are_exact_under_any_umask() -> R {
    for umask in ["000", "022", "077"] {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let cmd = format!("umask {umask} && exec \"$0\" \"$@\"");
        let mut args = vec![
            "-c",
            &cmd,
            BIN,
            "init",
            "--encryption-algorithm",
            "ECDSA-P256",
        ];
        args.extend(TREE);
        let out = Command::new("sh").args(&args).current_dir(d).output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in [
            "t/pki/ca.key",
            "t/pki/etcd/peer.key",
            "t/pki/sa.key",
            "t/pki/sa.pub",
            "t/admin.conf",
            "t/kubelet.conf",
        ] {
            assert_eq!(mode(&d.join(f)), 0o600, "{f} under umask {umask}");
        }
        for f in ["t/pki/ca.crt", "t/pki/apiserver.crt"] {
            // Public files are 0644, or narrower when the umask says so (never wider).
            let want = if umask == "077" { 0o600 } else { 0o644 };
            assert!(
                mode(&d.join(f)) == 0o644 || mode(&d.join(f)) == want,
                "{f}: {:o}",
                mode(&d.join(f))
            );
        }
    }
    Ok(())
}

#[test]
fn no_output_ever_contains_key_material() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut outputs = vec![kubepki(d, &INIT_TREE)?];
    // The base64 bodies of every private key in the tree, and of the kubeconfig key data.
    let mut secrets = Vec::new();
    for f in ["t/pki/ca.key", "t/pki/apiserver.key", "t/pki/sa.key"] {
        let text = fs::read_to_string(d.join(f))?;
        secrets.extend(
            text.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    let conf = fs::read_to_string(d.join("t/admin.conf"))?;
    let key_data = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data: "))
        .ok_or("no key data")?
        .to_owned();
    secrets.push(key_data[..40].to_owned());
    // Normal use, -o json, and errors that concern key files.
    fs::copy(
        d.join("t/pki/front-proxy-client.key"),
        d.join("t/pki/apiserver.key"),
    )?;
    let runs: Vec<Vec<&str>> = vec![
        vec!["inspect", "t/pki/ca.key"],
        vec!["inspect", "-o", "json", "t/pki/sa.key"],
        vec!["inspect", "t/admin.conf"],
        vec!["verify"],
        vec!["verify", "-o", "json"],
        vec!["certs", "check-expiration", "-o", "yaml"],
        vec!["init"],
        vec![
            "sign",
            "--ca-cert",
            "t/pki/ca.crt",
            "--ca-key",
            "t/pki/front-proxy-ca.key",
            "--csr",
            "nope.csr",
            "--profile",
            "client",
            "--out",
            "x.crt",
        ],
        vec![
            "sign",
            "--ca-cert",
            "t/pki/ca.crt",
            "--ca-key",
            "t/pki/ca.crt",
            "--csr",
            "nope.csr",
            "--profile",
            "client",
            "--out",
            "x.crt",
        ],
    ];
    for r in runs {
        let mut a = r.clone();
        if !matches!(r[0], "inspect" | "sign") {
            a.extend(TREE);
        }
        outputs.push(kubepki(d, &a)?);
    }
    for o in &outputs {
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(!all.contains("PRIVATE KEY-----"), "{all}");
        for s in &secrets {
            assert!(!all.contains(s.as_str()), "key material in output:\n{all}");
        }
    }
    Ok(())
}

#[test]
fn a_symlink_in_the_target_folder_is_refused_not_followed() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fs::create_dir_all(d.join("t/pki"))?;
    std::os::unix::fs::symlink("/tmp/kubepki-stolen-ca-key", d.join("t/pki/ca.key"))?;
    let a = INIT_TREE;
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ca.key"), "{}", r.stderr);
    assert!(!Path::new("/tmp/kubepki-stolen-ca-key").exists());
    std::os::unix::fs::symlink("/tmp/kubepki-stolen-admin", d.join("t/admin.conf"))?;
    fs::remove_file(d.join("t/pki/ca.key"))?;
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert!(!Path::new("/tmp/kubepki-stolen-admin").exists());
    // Nothing else was created.
    assert_eq!(fs::read_dir(d.join("t/pki"))?.count(), 0);
    Ok(())
}
