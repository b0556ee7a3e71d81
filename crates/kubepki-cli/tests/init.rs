//! `kubepki init` end to end: the README command, re-runs, dry run, JSON, phases, config files
//! with flags on top, and bad input (one line, exit 1, nothing written).

use std::fs;
use std::path::Path;

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

mod common;
use common::{Run, kubepki};

const BASE: [&str; 7] = [
    "--cert-dir",
    "./out/pki",
    "--kubeconfig-dir",
    "./out",
    "--apiserver-advertise-address",
    "192.0.2.10",
    "--node-name=cp1",
];

fn init(dir: &Path, extra: &[&str]) -> Res<Run> {
    let mut a = vec!["init"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&BASE);
    kubepki(dir, &a)
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn readme_command_then_idempotent_rerun() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let r = init(d, &["--encryption-algorithm", "ECDSA-P256"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in [
        "[certs] Using certificateDir folder \"./out/pki\"",
        "[certs] Generating \"ca\" certificate and key",
        "[certs] apiserver serving cert is signed for DNS names [cp1 kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local] and IPs [10.96.0.1 192.0.2.10]",
        "[certs] Generating \"etcd/healthcheck-client\" certificate and key",
        "[certs] Generating \"sa\" key and public key",
        "[kubeconfig] Writing \"super-admin.conf\" kubeconfig file",
    ] {
        assert!(r.stdout.contains(line), "missing {line:?} in\n{}", r.stdout);
    }
    assert_eq!(count_files(&d.join("out")), 27);
    let snapshot = |p: &str| fs::read(d.join(p)).unwrap_or_default();
    let before: Vec<Vec<u8>> = ["out/pki/ca.key", "out/admin.conf", "out/pki/etcd/peer.crt"]
        .iter()
        .map(|p| snapshot(p))
        .collect();
    let r = init(d, &["--encryption-algorithm", "ECDSA-P256"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("[certs] Using existing ca certificate authority")
    );
    assert!(r.stdout.contains("Nothing to do"), "{}", r.stdout);
    let after: Vec<Vec<u8>> = ["out/pki/ca.key", "out/admin.conf", "out/pki/etcd/peer.crt"]
        .iter()
        .map(|p| snapshot(p))
        .collect();
    assert_eq!(before, after);
    Ok(())
}

#[test]
fn dry_run_text_and_json_write_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let r = init(
        d,
        &[
            "--dry-run",
            "--control-plane-endpoint",
            "api.example.com:6443",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("[dry-run] would create \"apiserver\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("SANs: DNS [api.example.com cp1 kubernetes"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("server: https://api.example.com:6443"));
    assert!(!d.join("out").exists());
    let r = init(d, &["--dry-run", "-o", "json"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(v["dryRun"], true);
    let items = v["items"].as_array().ok_or("no items")?;
    assert_eq!(items.len(), 16);
    let api = items
        .iter()
        .find(|i| i["name"] == "apiserver")
        .ok_or("no apiserver")?;
    assert_eq!(api["action"], "create");
    assert_eq!(api["issuer"], "ca");
    assert_eq!(api["ipAddresses"][0], "10.96.0.1");
    assert!(api["notAfter"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(!d.join("out").exists());
    Ok(())
}

#[test]
fn phases_write_single_pieces() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let r = init(d, &["phase", "certs", "apiserver"])?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("ca.crt") && r.stderr.contains("phase certs ca"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out").exists());
    assert_eq!(init(d, &["phase", "certs", "ca"])?.code, 0);
    let r = init(d, &["phase", "certs", "apiserver"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(count_files(&d.join("out/pki")), 4);
    let r = init(d, &["phase", "kubeconfig", "admin"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.join("out/admin.conf").exists() && !d.join("out/kubelet.conf").exists());
    assert_eq!(init(d, &["phase", "certs", "all"])?.code, 0);
    assert_eq!(init(d, &["phase", "kubeconfig", "all"])?.code, 0);
    assert_eq!(count_files(&d.join("out")), 27);
    // An unknown or unavailable name is a usage error (64).
    let r = init(d, &["phase", "certs", "etcd-bogus"])?;
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("etcd-healthcheck-client"), "{}", r.stderr);
    let r = init(
        d,
        &[
            "phase",
            "kubeconfig",
            "super-admin",
            "--kubernetes-version",
            "v1.28.3",
        ],
    )?;
    assert_eq!(r.code, 64, "{}", r.stdout);
    assert!(r.stderr.contains("super-admin.conf"), "{}", r.stderr);
    Ok(())
}

#[test]
fn config_file_with_flags_on_top() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fs::write(
        d.join("kubeadm.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.20.30.40\n  bindPort: 7443\nnodeRegistration:\n  name: from-file\n  criSocket: unix:///run/containerd/containerd.sock\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\napiServer:\n  certSANs: [api.example.com]\n",
    )?;
    let r = init(d, &["--config", "kubeadm.yaml"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("nodeRegistration.criSocket"),
        "{}",
        r.stderr
    );
    // Flags won: advertise address and node name; the file's port and SANs stayed.
    assert!(
        r.stdout
            .contains("DNS names [api.example.com cp1 kubernetes"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("IPs [10.96.0.1 192.0.2.10]"),
        "{}",
        r.stdout
    );
    let admin = fs::read_to_string(d.join("out/admin.conf"))?;
    assert!(admin.contains("server: https://192.0.2.10:7443"), "{admin}");
    assert!(admin.contains("current-context: kubernetes-admin@prod"));
    Ok(())
}

#[test]
fn bad_input_is_one_line_nothing_written() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fs::write(
        d.join("broken.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: [oops\n",
    )?;
    fs::write(
        d.join("badport.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: 99999\n",
    )?;
    let cases: &[(&[&str], &str)] = &[
        (
            &["--config", "broken.yaml"],
            "broken.yaml: is not valid YAML",
        ),
        (&["--config", "missing.yaml"], "missing.yaml"),
        (
            &["--config", "badport.yaml"],
            "badport.yaml: InitConfiguration.localAPIEndpoint.bindPort: 99999",
        ),
        (
            &["--service-cidr", "10.96.0.0/40"],
            "--service-cidr: \"10.96.0.0/40\" is not a valid CIDR",
        ),
        (
            &["--service-cidr", "10.96.0.0/8"],
            "--service-cidr: \"10.0.0.0/8\": the service subnet is too large; for IPv4 the prefix must be /12 or longer",
        ),
        (
            &["--service-cidr", "10.96.0.0/12,fd00::/64"],
            "for IPv6 the prefix must be /108 or longer",
        ),
        (
            &["--apiserver-advertise-address", "10.0.0.300"],
            "--apiserver-advertise-address: \"10.0.0.300\" is not an IP address",
        ),
        (
            &["--apiserver-bind-port", "70000"],
            "--apiserver-bind-port: \"70000\" is not a port",
        ),
        (
            &["--encryption-algorithm", "DSA-1024"],
            "--encryption-algorithm",
        ),
        (
            &["--encryption-algorithm", "Ed25519"],
            "encryptionAlgorithm: Ed25519 is not available",
        ),
        (
            &["--apiserver-cert-extra-sans", "ok.example.com,Not_Valid"],
            "\"Not_Valid\" is neither an IP address nor a valid DNS name",
        ),
        (
            &["--control-plane-endpoint", "cp.example.com:0"],
            "--control-plane-endpoint",
        ),
        (&["--kubernetes-version", "v2.0.0"], "--kubernetes-version"),
        (
            &["--service-dns-domain", "Bad_Domain"],
            "--service-dns-domain",
        ),
        (
            &["--cert-dir", "/proc/kubepki-cannot-write/pki"],
            "/proc/kubepki-cannot-write",
        ),
    ];
    for (args, needle) in cases {
        // Later flags win over BASE's, so put the case's flags last.
        let mut a = vec!["init"];
        a.extend_from_slice(&BASE);
        a.extend_from_slice(args);
        let r = kubepki(d, &a)?;
        // A flag or --config that cannot be used: 64 (usage); a folder that cannot be written: 1.
        let want = if args.contains(&"--cert-dir") { 1 } else { 64 };
        assert_eq!(r.code, want, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.starts_with("kubepki: error: "),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!d.join("out").exists(), "{args:?} wrote files");
    }
    Ok(())
}

/// A tree whose leaves have all expired is not "valid": `init` (and `--dry-run`) refuse it in
/// one line naming every expired file, and `verify` fails the same files.
#[test]
fn expired_leaves_are_not_reused_and_all_are_named_in_one_run() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut s = kubepki_kubeadm::ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    s.node_name = Some("cp1".into());
    s.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
    s.cert_dir = d.join("out/pki");
    s.kubeconfig_dir = d.join("out");
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(730);
    kubepki_kubeadm::init_tree(
        &kubepki_kubeadm::Plan::new(&s)?,
        &kubepki_kubeadm::Selection::all(),
        then,
        false,
    )?;
    let before = count_files(&d.join("out"));
    for extra in [&[][..], &["--dry-run"]] {
        let r = init(d, extra)?;
        assert_eq!(r.code, 1, "{extra:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("Nothing to do"), "{}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr
                .starts_with("kubepki: error: 12 existing files cannot be reused: "),
            "{}",
            r.stderr
        );
        for f in [
            "apiserver.crt",
            "etcd/peer.crt",
            "admin.conf",
            "kubelet.conf",
        ] {
            assert!(
                r.stderr.contains(&format!("out/{f}")) || r.stderr.contains(&format!("pki/{f}")),
                "{f}: {}",
                r.stderr
            );
        }
    }
    assert_eq!(count_files(&d.join("out")), before);
    let mut v = vec!["verify"];
    v.extend_from_slice(&BASE);
    let r = kubepki(d, &v)?;
    assert_eq!(r.code, 1);
    let expired: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL") && l.contains(" validity "))
        .collect();
    assert_eq!(expired.len(), 12, "{}", r.stdout);
    Ok(())
}

/// Issue 19 item 0: `init` then `verify` pass for one patch version of every minor kubepki
/// models (`OLDEST_KNOWN` to `NEWEST_KNOWN_MINOR`), with each key algorithm that version allows
/// (`KubernetesVersion::supported_algorithms`), except the slow RSA sizes: RSA-3072 runs on the
/// first minor that allows it (1.31) and RSA-4096 on the default version's minor only.
/// Their keys take seconds each in a debug build; with both on every minor that allows them the
/// table took 78 s on two shared cores. The runs go two at a time, the binary run directly.
#[test]
fn init_then_verify_every_known_minor_and_algorithm() -> R {
    use kubepki_kubeadm::{KubernetesVersion, NEWEST_KNOWN_MINOR, OLDEST_KNOWN};
    let mut cases: Vec<(String, &'static str)> = Vec::new();
    for minor in OLDEST_KNOWN.minor..=NEWEST_KNOWN_MINOR {
        let v = KubernetesVersion::new(minor, 3);
        for &alg in v.supported_algorithms() {
            let only_on = match alg {
                "RSA-3072" => Some(31),
                "RSA-4096" => Some(KubernetesVersion::DEFAULT.minor),
                _ => None,
            };
            if only_on.is_some_and(|m| m != minor) {
                continue;
            }
            cases.push((v.to_string(), alg));
        }
    }
    // Every minor with RSA-2048 and ECDSA-P256, ECDSA-P384 from 1.34, RSA-3072 and RSA-4096
    // once each.
    let minors = (NEWEST_KNOWN_MINOR - OLDEST_KNOWN.minor + 1) as usize;
    let p384 = (NEWEST_KNOWN_MINOR - 34 + 1) as usize;
    assert_eq!(cases.len(), 2 * minors + p384 + 2, "{cases:?}");
    let run = |version: &str, alg: &str| -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        let v = [
            "--kubernetes-version",
            version,
            "--encryption-algorithm",
            alg,
        ];
        let r = init(d, &v).map_err(|e| e.to_string())?;
        if r.code != 0 {
            return Err(format!("init exited {}: {}", r.code, r.stderr));
        }
        let mut verify = vec!["verify"];
        verify.extend_from_slice(&v);
        verify.extend_from_slice(&BASE);
        let r = kubepki(d, &verify).map_err(|e| e.to_string())?;
        if r.code != 0 {
            return Err(format!("verify exited {}: {}", r.code, r.stdout));
        }
        let label = fs::read_to_string(d.join("out/pki/ca.key"))
            .map_err(|e| e.to_string())?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let want = if alg.starts_with("RSA") {
            "-----BEGIN RSA PRIVATE KEY-----"
        } else {
            "-----BEGIN EC PRIVATE KEY-----"
        };
        if label != want {
            return Err(format!("ca.key starts with {label}"));
        }
        let minor: u32 = version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or_default();
        if d.join("out/super-admin.conf").exists() != (minor >= 29) {
            return Err("super-admin.conf present in the wrong versions".into());
        }
        Ok(())
    };
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let cases = &cases;
                let run = &run;
                s.spawn(move || {
                    cases
                        .iter()
                        .skip(w)
                        .step_by(2)
                        .filter_map(|(v, a)| run(v, a).err().map(|e| format!("{v} {a}: {e}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a worker thread panicked".to_owned()])
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// `init` with a version before 1.29 (no super-admin.conf) makes that version's tree, and
/// `verify` passes it; naming the file such a version does not write is still refused.
#[test]
fn init_before_super_admin_conf() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let v = [
        "--kubernetes-version",
        "v1.28.9",
        "--encryption-algorithm",
        "ECDSA-P256",
    ];
    let r = init(d, &v)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!d.join("out/super-admin.conf").exists());
    assert!(d.join("out/admin.conf").exists());
    let mut verify = vec!["verify"];
    verify.extend_from_slice(&v);
    verify.extend_from_slice(&BASE);
    let r = kubepki(d, &verify)?;
    assert_eq!(r.code, 0, "{}", r.stdout);
    let mut phase = vec!["init", "phase", "kubeconfig", "super-admin"];
    phase.extend_from_slice(&v);
    phase.extend_from_slice(&BASE);
    let r = kubepki(d, &phase)?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("does not write it"), "{}", r.stderr);
    Ok(())
}

/// `init phase rbac` prints the ClusterRoleBindings kubeadm init creates online, exactly, per
/// version (issue 19, item 8; docs/compatibility.md, "RBAC that init creates"): none before
/// 1.29, `kubeadm:cluster-admins` from 1.29, and `kubeadm:apiserver-kubelet-client` too where
/// apiserver-kubelet-client has no O. `--out` writes a new 0644 file and never overwrites one.
#[test]
fn init_phase_rbac_prints_what_kubeadm_creates() -> R {
    const ADMINS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:cluster-admins
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: kubeadm:cluster-admins
";
    const KUBELET: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kube-apiserver-kubelet-client
";
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let docs = |stdout: &str| -> Vec<String> {
        stdout.split("---\n").skip(1).map(str::to_owned).collect()
    };
    for (version, want) in [
        ("v1.28.9", vec![]),
        ("v1.29.0", vec![ADMINS]),
        ("v1.33.11", vec![ADMINS]),
        ("v1.33.12", vec![ADMINS, KUBELET]),
        ("v1.34.7", vec![ADMINS]),
        ("v1.34.8", vec![ADMINS, KUBELET]),
        ("v1.36.1", vec![ADMINS, KUBELET]),
    ] {
        let r = kubepki(
            d,
            &["init", "phase", "rbac", "--kubernetes-version", version],
        )?;
        assert_eq!(r.code, 0, "{version}: {}", r.stderr);
        assert_eq!(docs(&r.stdout), want, "{version}");
        if want.is_empty() {
            assert_eq!(r.stdout, "", "{version}");
            assert!(r.stderr.contains("nothing to apply"), "{}", r.stderr);
        } else {
            assert!(r.stdout.starts_with("# The ClusterRoleBindings kubeadm "));
        }
        // The objects match the identities the tree of that version has: the group is
        // admin.conf's O, the user apiserver-kubelet-client's CN.
        let tree = tempfile::tempdir()?;
        let mut a = vec![
            "--kubernetes-version",
            version,
            "--encryption-algorithm",
            "ECDSA-P256",
        ];
        a.extend_from_slice(&[
            "--cert-dir",
            "pki",
            "--kubeconfig-dir",
            ".",
            "--apiserver-advertise-address",
            "192.0.2.10",
            "--node-name=cp1",
        ]);
        let mut phase = vec!["init", "phase", "certs", "apiserver-kubelet-client"];
        phase.extend_from_slice(&a);
        let mut ca = vec!["init", "phase", "certs", "ca"];
        ca.extend_from_slice(&a);
        assert_eq!(kubepki(tree.path(), &ca)?.code, 0);
        assert_eq!(kubepki(tree.path(), &phase)?.code, 0);
        let cert = fs::read(tree.path().join("pki/apiserver-kubelet-client.crt"))?;
        let text = String::from_utf8(cert)?;
        let inspected = kubepki(
            tree.path(),
            &["inspect", "pki/apiserver-kubelet-client.crt"],
        )?;
        assert_eq!(inspected.code, 0, "{}", inspected.stderr);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
        let has_org = inspected.stdout.contains("\norganizations: ");
        assert_eq!(
            has_org,
            !want.contains(&KUBELET),
            "{version}: an O on apiserver-kubelet-client exactly when no binding is needed: {}",
            inspected.stdout
        );
    }
    let r = kubepki(
        d,
        &[
            "init",
            "phase",
            "rbac",
            "--kubernetes-version",
            "v1.34.8",
            "--out",
            "rbac.yaml",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let written = fs::read_to_string(d.join("rbac.yaml"))?;
    assert_eq!(docs(&written), vec![ADMINS, KUBELET]);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(d.join("rbac.yaml"))?.permissions().mode() & 0o777,
            0o644
        );
    }
    let again = kubepki(d, &["init", "phase", "rbac", "--out", "rbac.yaml"])?;
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("rbac.yaml: already exists"),
        "{}",
        again.stderr
    );
    assert_eq!(fs::read_to_string(d.join("rbac.yaml"))?, written);
    let json = kubepki(d, &["init", "phase", "rbac", "-o", "json"])?;
    assert_eq!(json.code, 64, "{}", json.stderr);
    Ok(())
}

/// `--kubernetes-version` is in force while `--config` is read: a v1beta3 file without a
/// version is refused on the default version (1.37, which removed v1beta3) and read with
/// `--kubernetes-version v1.36.0`; a file naming another version than the flag is refused.
#[test]
fn the_version_flag_applies_while_the_config_is_read() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    fs::write(
        d.join("v1beta3.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
    )?;
    fs::write(
        d.join("v1beta4.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.2\n",
    )?;
    let r = init(d, &["--config", "v1beta3.yaml", "--dry-run"])?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("v1beta3.yaml: kubeadm.k8s.io/v1beta3 was removed in kubeadm 1.37"),
        "{}",
        r.stderr
    );
    let r = init(
        d,
        &[
            "--config",
            "v1beta3.yaml",
            "--kubernetes-version",
            "v1.36.0",
            "--dry-run",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("v1.36.0"), "{}", r.stdout);
    let r = init(
        d,
        &[
            "--config",
            "v1beta4.yaml",
            "--kubernetes-version",
            "v1.35.0",
            "--dry-run",
        ],
    )?;
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--kubernetes-version v1.35.0: v1beta4.yaml sets kubernetesVersion v1.36.2"),
        "{}",
        r.stderr
    );
    let r = init(
        d,
        &[
            "--config",
            "v1beta4.yaml",
            "--kubernetes-version",
            "v1.36.2",
            "--dry-run",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(count_files(&d.join("out")), 0, "a dry run writes nothing");
    Ok(())
}

/// What `init` with [`BASE`] and `--kubernetes-version v1.37.0` printed on standard output
/// before it had a progress display (made by the build of the commit before it; standard
/// error was empty).
const REPORT_BEFORE_PROGRESS: &str = include_str!("data/init-report.txt");

/// `init` with [`BASE`] under a pseudo-terminal (`script` of util-linux, which CI installs):
/// everything the terminal received, standard output and standard error together.
fn init_on_a_terminal(dir: &Path, extra: &[&str], term: &str) -> Res<String> {
    let mut cmd = vec![common::BIN, "init", "--kubernetes-version", "v1.37.0"];
    cmd.extend_from_slice(extra);
    cmd.extend_from_slice(&BASE);
    // Every word is a plain path or flag here; quoted for the shell all the same.
    let line: Vec<String> = cmd.iter().map(|w| format!("'{w}'")).collect();
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .current_dir(dir)
        .env("TERM", term)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("script (util-linux) could not run: {e}"))?;
    let text = String::from_utf8(out.stdout)?;
    if out.status.code() != Some(0) {
        return Err(format!("init under script exited {:?}: {text}", out.status.code()).into());
    }
    Ok(text)
}

#[test]
fn without_a_terminal_the_output_is_what_it_was_before_progress() -> R {
    let dir = tempfile::tempdir()?;
    // TERM names a capable terminal: what keeps progress out is that stderr is a pipe.
    let mut a = vec!["init", "--kubernetes-version", "v1.37.0"];
    a.extend_from_slice(&BASE);
    let out = std::process::Command::new(common::BIN)
        .args(&a)
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout)?, REPORT_BEFORE_PROGRESS);
    assert_eq!(String::from_utf8(out.stderr)?, "");
    Ok(())
}

#[test]
fn on_a_terminal_progress_is_shown_then_wiped_before_the_same_report() -> R {
    let dir = tempfile::tempdir()?;
    let tty = init_on_a_terminal(dir.path(), &[], "xterm")?;
    // The 16 new RSA keys are counted (a redraw at most every 50 ms: not every count shows).
    assert!(tty.contains(" generating keys: "), "{tty:?}");
    assert!(tty.contains(" of 16"), "{tty:?}");
    // Each redraw and the final wipe clear the line (CR, ESC [2K); what follows the last one
    // is the report, byte for byte (the terminal turns each LF into CR LF).
    let Some(at) = tty.rfind("\r\u{1b}[2K") else {
        return Err(format!("no line was cleared: {tty:?}").into());
    };
    let report = &tty[at + "\r\u{1b}[2K".len()..];
    assert_eq!(report.replace("\r\n", "\n"), REPORT_BEFORE_PROGRESS);
    assert!(!report.contains('\u{1b}'), "{report:?}");

    // No progress with --quiet, with -o json, or on a terminal that cannot redraw a line:
    // not one escape sequence, the report exactly as without a terminal.
    for (extra, term) in [
        (&["--quiet"][..], "xterm"),
        (&["-q"][..], "xterm"),
        (&[][..], "dumb"),
    ] {
        let dir = tempfile::tempdir()?;
        let tty = init_on_a_terminal(
            dir.path(),
            &[extra, &["--encryption-algorithm", "ECDSA-P256"]].concat(),
            term,
        )?;
        assert!(!tty.contains('\u{1b}'), "{extra:?} {term}: {tty:?}");
        assert_eq!(
            tty.replace("\r\n", "\n"),
            REPORT_BEFORE_PROGRESS.replace("RSA-2048", "ECDSA-P256"),
            "{extra:?} {term}"
        );
    }
    let dir = tempfile::tempdir()?;
    let tty = init_on_a_terminal(
        dir.path(),
        &["-o", "json", "--encryption-algorithm", "ECDSA-P256"],
        "xterm",
    )?;
    assert!(!tty.contains('\u{1b}'), "{tty:?}");
    assert!(tty.starts_with('{'), "{tty:?}");
    Ok(())
}
