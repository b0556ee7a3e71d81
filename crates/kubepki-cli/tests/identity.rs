//! `kubepki user`, `sign-request` and `node` end to end: the source documents' user flow on the
//! command line, signer refusals that write nothing, node credentials, an extra control plane.

use std::fs;
use std::path::Path;

mod common;
use common::{CP2, P256, init_cluster, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

const CA: [&str; 4] = ["--ca-cert", "c/pki/ca.crt", "--ca-key", "c/pki/ca.key"];

#[test]
fn user_flow_csr_only_then_sign_request_then_kubeconfig() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let r = kubepki(
        d,
        &[
            "user",
            "create",
            "jane",
            "--group",
            "dev",
            "--group",
            "ops",
            "--csr-only",
            "--out-dir",
            "jane",
            "--expiration-seconds",
            "86400",
            "--rbac-clusterrole",
            "view",
            "--rbac-group",
            "dev",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest = fs::read_to_string(d.join("jane/jane-csr.yaml"))?;
    assert!(manifest.contains("signerName: kubernetes.io/kube-apiserver-client"));
    assert!(manifest.contains("expirationSeconds: 86400"));
    let rbac = fs::read_to_string(d.join("jane/jane-rbac.yaml"))?;
    assert!(
        rbac.contains("kind: ClusterRoleBinding")
            && rbac.contains("kind: Group")
            && rbac.contains("name: dev"),
        "{rbac}"
    );

    let mut a = vec![
        "sign-request",
        "jane/jane-csr.yaml",
        "--out-manifest",
        "jane/jane-approved.yaml",
    ];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let approved = kubepki_csr::KubeCsr::from_slice(&fs::read(d.join("jane/jane-approved.yaml"))?)?;
    let pem = approved
        .issued_certificate_pem()?
        .ok_or("no status.certificate")?;
    let status = approved.status.as_ref().ok_or("no status")?;
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.kind == "Approved" && c.status == "True")
    );
    fs::write(d.join("jane/jane.crt"), &pem)?;
    let cert = kubepki_ca::Certificate::from_pem(&pem)?;
    assert_eq!(cert.common_name(), Some("jane"));
    assert_eq!(cert.organizations(), ["dev", "ops"]);

    let r = kubepki(
        d,
        &[
            "user",
            "kubeconfig",
            "--key",
            "jane/jane.key",
            "--cert",
            "jane/jane.crt",
            "--ca-cert",
            "c/pki/ca.crt",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out-kubeconfig",
            "jane/jane.conf",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let conf = fs::read_to_string(d.join("jane/jane.conf"))?;
    assert!(conf.contains("current-context: jane@kubernetes"), "{conf}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.join("jane/jane.conf"))?.permissions().mode() & 0o777,
        0o600
    );

    // Direct mode: a kubeconfig in one step, with a RoleBinding.
    let mut a = vec![
        "user",
        "create",
        "bob",
        "--cluster-server",
        "https://192.0.2.10:6443",
        "--out-kubeconfig",
        "bob.conf",
        "--rbac-role",
        "edit",
        "--namespace",
        "team",
    ];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fs::read_to_string(d.join("bob-rbac.yaml"))?.contains("namespace: team"));
    Ok(())
}

#[test]
fn sign_request_refusals_name_the_rule_and_write_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    // A node identity asked of the user signer is fine; of the kubelet-serving signer without
    // SANs it is not.
    let r = kubepki(
        d,
        &[
            "user",
            "create",
            "system:node:w1",
            "--group",
            "system:nodes",
            "--csr-only",
            "--out-dir",
            "w",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let csr = "w/system-node-w1.csr";
    for (signer, needle) in [
        ("kubernetes.io/kubelet-serving", "(subject-alt-names)"),
        ("kubernetes.io/legacy-unknown", "legacy-unknown"),
    ] {
        let mut a = vec![
            "sign-request",
            csr,
            "--signer-name",
            signer,
            "--out",
            "w.crt",
        ];
        a.extend_from_slice(&CA);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains(needle), "{signer}: {}", r.stderr);
        assert!(!d.join("w.crt").exists());
    }
    // Two inputs, the second refused: nothing is written for the first either.
    let yaml = fs::read_to_string(d.join("w/system-node-w1-csr.yaml"))?;
    fs::write(
        d.join("bad.yaml"),
        yaml.replace("- client auth", "- server auth"),
    )?;
    let mut a = vec![
        "sign-request",
        "w/system-node-w1-csr.yaml",
        "bad.yaml",
        "--out-dir",
        "out",
    ];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("kubepki: error: bad.yaml: refused by the signer policy (usages)"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out").exists());
    // A bare PEM CSR with the client signer: issued to stdout.
    let mut a = vec![
        "sign-request",
        csr,
        "--signer-name",
        "kubernetes.io/kube-apiserver-client-kubelet",
    ];
    a.extend_from_slice(&CA);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("-----BEGIN CERTIFICATE-----"));
    Ok(())
}

#[test]
fn node_credentials_and_an_extra_control_plane() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let r = kubepki(
        d,
        &[
            "node",
            "kubelet-kubeconfig",
            "--node-name",
            "worker1",
            "--cert-dir",
            "c/pki",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out",
            "w1/kubelet.conf",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fs::read_to_string(d.join("w1/kubelet.conf"))?.contains("name: system:node:worker1"));
    let r = kubepki(
        d,
        &[
            "node",
            "kubelet-serving",
            "--node-name",
            "worker1",
            "--cert-dir",
            "c/pki",
            "--ip",
            "10.0.0.21",
            "--out-dir",
            "w1/pki",
        ],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let serving = kubepki_ca::Certificate::from_pem(&fs::read(d.join("w1/pki/kubelet.crt"))?)?;
    assert_eq!(
        serving.subject().to_string(),
        "O = system:nodes, CN = system:node:worker1"
    );
    assert_eq!(
        serving.ext_key_usage(),
        Some(&[kubepki_csr::ExtKeyUsage::ServerAuth][..])
    );
    let r = kubepki(
        d,
        &[
            "node",
            "kubelet-serving",
            "--node-name",
            "Bad_Name",
            "--cert-dir",
            "c/pki",
            "--out-dir",
            "x",
        ],
    )?;
    assert_eq!(r.code, 1);
    assert!(!d.join("x").exists());

    let cp2 = CP2;
    let mut a = vec!["node", "control-plane", "--from-cert-dir", "c/pki"];
    a.extend_from_slice(&cp2);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!d.join("cp2/super-admin.conf").exists());
    // A joined node has no super-admin.conf: a warning, not a failure.
    let mut a = vec!["verify"];
    a.extend_from_slice(&cp2);
    let r = kubepki(d, &a)?;
    assert_eq!(r.code, 0, "{}", r.stdout);
    let warns: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("WARN")).collect();
    assert_eq!(warns.len(), 1, "{}", r.stdout);
    assert!(warns[0].contains("super-admin.conf"), "{}", warns[0]);
    Ok(())
}

/// `node kubelet-serving` and `node kubelet-kubeconfig` refuse a validity past the CA's as
/// `sign` does (same message), unless `--clamp-to-ca`.
#[test]
fn node_certificates_outliving_the_ca_are_refused_like_sign() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let ca = kubepki_ca::Certificate::from_pem(&fs::read(d.join("c/pki/ca.crt"))?)?;
    let serving = |extra: &[&str]| {
        let mut a = vec![
            "node",
            "kubelet-serving",
            "--node-name",
            "worker1",
            "--cert-dir",
            "c/pki",
            "--encryption-algorithm",
            "ECDSA-P256",
            "--validity",
            "100000h",
            "--out-dir",
            "w1",
        ];
        a.extend_from_slice(extra);
        kubepki(d, &a)
    };
    let kubeconfig = |extra: &[&str]| {
        let mut a = vec![
            "node",
            "kubelet-kubeconfig",
            "--node-name",
            "worker1",
            "--cert-dir",
            "c/pki",
            "--encryption-algorithm",
            "ECDSA-P256",
            "--validity",
            "100000h",
            "--cluster-server",
            "https://192.0.2.10:6443",
            "--out",
            "w1.conf",
        ];
        a.extend_from_slice(extra);
        kubepki(d, &a)
    };
    let r = kubepki(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "u.key"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = kubepki(d, &["csr", "--key", "u.key", "--cn", "u", "--out", "u.csr"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut sign = vec![
        "sign",
        "--csr",
        "u.csr",
        "--profile",
        "client",
        "--validity",
        "100000h",
        "--out",
        "u.crt",
    ];
    sign.extend(CA);
    let want = "kubepki: error: --validity 100000h: the certificate would expire at ";
    let tail = format!(
        ", after its CA c/pki/ca.crt ({}); pass --clamp-to-ca to end it with the CA, or give a shorter --validity\n",
        kubepki_ca::rfc3339(ca.not_after())
    );
    for r in [serving(&[])?, kubeconfig(&[])?, kubepki(d, &sign)?] {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.starts_with(want) && r.stderr.ends_with(&tail),
            "{}",
            r.stderr
        );
    }
    assert!(!d.join("w1").exists() && !d.join("w1.conf").exists());
    assert!(!d.join("u.crt").exists());
    // With --clamp-to-ca: issued, ending with the CA.
    let r = serving(&["--clamp-to-ca"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = kubepki_ca::Certificate::from_pem(&fs::read(d.join("w1/kubelet.crt"))?)?;
    assert_eq!(c.not_after(), ca.not_after());
    let r = kubeconfig(&["--clamp-to-ca"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    Ok(())
}

/// `node control-plane` needs a controlPlaneEndpoint (as `kubeadm join --control-plane`) and
/// the shared CA keys; without either it says so, naming the flag or the file, and writes nothing.
#[test]
fn node_control_plane_refusals_say_what_to_do() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let cp2 = |extra: &[&str], from: &str| {
        // CP2 without its --control-plane-endpoint.
        let a = [
            &["node", "control-plane", "--from-cert-dir", from][..],
            &CP2[..8],
            &P256,
            extra,
        ]
        .concat();
        kubepki(d, &a)
    };
    let r = cp2(&[], "c/pki")?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("kubepki: error: controlPlaneEndpoint: not set;")
            && r.stderr
                .contains("pass --control-plane-endpoint HOST[:PORT]"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(!d.join("cp2").exists());

    // The first node's tree uses an external CA: no ca.key to copy.
    fs::create_dir_all(d.join("ext"))?;
    for e in fs::read_dir(d.join("c/pki"))? {
        let e = e?;
        if e.file_type()?.is_file() && e.file_name() != "ca.key" {
            fs::copy(e.path(), d.join("ext").join(e.file_name()))?;
        }
    }
    fs::create_dir_all(d.join("ext/etcd"))?;
    for f in ["ca.crt", "ca.key"] {
        fs::copy(d.join("c/pki/etcd").join(f), d.join("ext/etcd").join(f))?;
    }
    let r = cp2(&["--control-plane-endpoint", "192.0.2.10"], "ext")?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("kubepki: error: ext/ca.key: missing: ext has the CA certificates without their keys (ca.key): an external CA")
            && r.stderr.contains("kubepki certs generate-csr")
            && !r.stderr.contains("No such file"),
        "{}",
        r.stderr
    );
    assert!(!d.join("cp2").exists());
    // A folder that is not a tree at all: every missing shared file is named.
    fs::create_dir_all(d.join("empty"))?;
    let r = cp2(&["--control-plane-endpoint", "192.0.2.10"], "empty")?;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("kubepki: error: empty/ca.crt: missing;")
            && r.stderr
                .contains("ca.crt, ca.key, sa.key, sa.pub, front-proxy-ca.crt"),
        "{}",
        r.stderr
    );
    Ok(())
}

/// `metadata.name` of the manifest at `path`.
fn manifest_name(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let m = kubepki_csr::KubeCsr::from_slice(&fs::read(path)?)?;
    Ok(m.metadata.name)
}

/// The three commands that make a CertificateSigningRequest object name from a common name give
/// the same name, and it is one the API server accepts (docs/identities.md, "Object names").
#[test]
fn awkward_common_names_get_one_valid_object_name_from_every_command() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    init_cluster(d)?;
    let r = kubepki(
        d,
        &["keygen", "--algorithm", "ECDSA-P256", "--out", "k.key"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The longest CN kubepki signs (256 bytes): one label, cut to 63.
    let long = "Ab".repeat(128);
    // 64 labels, 255 characters: cut to 253 at a label boundary (63 labels, 251).
    let dotted = "abc.".repeat(64);
    let table: [(&str, &str); 10] = [
        ("Jane/Doe", "jane-doe"),
        ("JANE", "jane"),
        ("system:node:Worker_1", "system-node-worker-1"),
        ("jane@example.com", "jane-example.com"),
        ("  spaced  out  ", "spaced-out"),
        ("Jöhn Dœ", "j-hn-d"),
        ("日本語", "request"),
        ("..a..b..", "a.b"),
        (&long, ""),
        (&dotted, ""),
    ];
    for (i, (cn, want)) in table.iter().enumerate() {
        let csr = format!("r{i}.csr");
        let m1 = format!("m{i}.yaml");
        let r = kubepki(
            d,
            &[
                "csr",
                "--key",
                "k.key",
                "--cn",
                cn,
                "--out",
                &csr,
                "--k8s-manifest",
                &m1,
            ],
        )?;
        assert_eq!(r.code, 0, "csr --cn {cn:?}: {}", r.stderr);
        let from_csr = manifest_name(&d.join(&m1))?;

        let m2 = format!("s{i}.yaml");
        let mut a = vec![
            "sign-request",
            &csr,
            "--signer-name",
            "kubernetes.io/kube-apiserver-client",
            "--out-manifest",
            &m2,
        ];
        a.extend_from_slice(&CA);
        let r = kubepki(d, &a)?;
        assert_eq!(r.code, 0, "sign-request for {cn:?}: {}", r.stderr);
        let from_sign = manifest_name(&d.join(&m2))?;

        let out = format!("u{i}");
        let r = kubepki(d, &["user", "create", cn, "--csr-only", "--out-dir", &out])?;
        assert_eq!(r.code, 0, "user create {cn:?}: {}", r.stderr);
        let yaml = fs::read_dir(d.join(&out))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-csr.yaml"))
            .ok_or("user create wrote no manifest")?;
        let from_user = manifest_name(&yaml)?;

        assert_eq!(from_csr, from_sign, "{cn:?}");
        assert_eq!(from_csr, from_user, "{cn:?}");
        kubepki_csr::check_dns_subdomain(&from_csr).map_err(|e| format!("{cn:?}: {e}"))?;
        if want.is_empty() {
            let cut = if cn.contains('.') {
                "abc.".repeat(63).trim_end_matches('.').to_owned()
            } else {
                "ab".repeat(32)[..63].to_owned()
            };
            assert_eq!(from_csr, cut, "{cn:?}");
        } else {
            assert_eq!(from_csr, *want, "{cn:?}");
        }
    }
    // 300 characters is over the 256 bytes a subject attribute may have: every command refuses
    // it the same way, before any name is made, and writes nothing.
    let too_long = "c".repeat(300);
    let runs = [
        kubepki(
            d,
            &[
                "csr",
                "--key",
                "k.key",
                "--cn",
                &too_long,
                "--out",
                "t.csr",
                "--k8s-manifest",
                "t.yaml",
            ],
        )?,
        kubepki(
            d,
            &["user", "create", &too_long, "--csr-only", "--out-dir", "t"],
        )?,
    ];
    for r in runs {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("must have 1 to 256 bytes"),
            "{}",
            r.stderr
        );
    }
    assert!(!d.join("t.csr").exists() && !d.join("t.yaml").exists() && !d.join("t").exists());
    Ok(())
}
