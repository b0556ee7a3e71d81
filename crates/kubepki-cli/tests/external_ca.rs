//! The external-CA commands end to end (issue 14): `certs sign-csrs` refuses every escalation
//! naming the CSR and writes nothing, refuses a CA given for another role, signs in parts (exit
//! 3 while something is left), `certs generate-csr` makes only what is missing, and `init`
//! lists every CSR still awaiting signing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_csr::{CsrBuilder, Subject};
use kubepki_keys::PrivateKey;
use kubepki_kubeadm::Kubeconfig;

mod common;
use common::{Run, files_under, kubepki_side};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A CA side (`ca/`) and a node (`node/`, node name n1) in one temporary folder.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Res<Setup> {
        let s = Setup {
            dir: tempfile::tempdir()?,
        };
        for ca in ["ca", "front-proxy-ca", "etcd-ca"] {
            let r = s.run("ca", &["init", "phase", "certs", ca])?;
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        let r = s.node(&["certs", "generate-csr"])?;
        assert_eq!(r.code, 0, "{}", r.stderr);
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

    fn ca_file(&self, f: &str) -> String {
        self.root().join("ca/pki").join(f).display().to_string()
    }

    /// `kubepki <args> --cert-dir <which>/pki --kubeconfig-dir <which> <node flags>`.
    fn run(&self, which: &str, args: &[&str]) -> Res<Run> {
        kubepki_side(self.root(), which, args)
    }

    fn node(&self, args: &[&str]) -> Res<Run> {
        self.run("node", args)
    }

    /// `certs sign-csrs` on the node's folders with the given CAs (`ca`, `front-proxy-ca`,
    /// `etcd-ca`).
    fn sign(&self, cas: &[&str]) -> Res<Run> {
        let mut owned = Vec::new();
        for ca in cas {
            let (flag, base) = match *ca {
                "ca" => ("--ca", "ca"),
                "front-proxy-ca" => ("--front-proxy-ca", "front-proxy-ca"),
                _ => ("--etcd-ca", "etcd/ca"),
            };
            owned.push(format!("{flag}-cert"));
            owned.push(self.ca_file(&format!("{base}.crt")));
            owned.push(format!("{flag}-key"));
            owned.push(self.ca_file(&format!("{base}.key")));
        }
        let mut a = vec!["certs", "sign-csrs"];
        a.extend(owned.iter().map(String::as_str));
        self.node(&a)
    }

    fn all_cas(&self) -> Res<Run> {
        self.sign(&["ca", "front-proxy-ca", "etcd-ca"])
    }

    fn copy_ca_certs(&self) -> R {
        for f in ["ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"] {
            fs::copy(self.ca_file(f), self.pki().join(f))?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Res<BTreeMap<PathBuf, Vec<u8>>> {
        files_under(&self.node_dir())
            .into_iter()
            .map(|f| Ok((f.clone(), fs::read(&f)?)))
            .collect()
    }

    /// The key of a leaf (`apiserver`) or kubeconfig (`admin.conf`) the node made.
    fn key(&self, item: &str) -> Res<PrivateKey> {
        if item.ends_with(".conf") {
            let p = self.node_dir().join(item);
            let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
            let pem = kc.current_client_key_pem(&p)?.ok_or("no client key")?;
            Ok(PrivateKey::from_pem(&pem)?)
        } else {
            Ok(PrivateKey::from_pem(&fs::read(
                self.pki().join(format!("{item}.key")),
            )?)?)
        }
    }

    fn csr_file(&self, item: &str) -> PathBuf {
        if item.ends_with(".conf") {
            self.node_dir().join(format!("{item}.csr"))
        } else {
            self.pki().join(format!("{item}.csr"))
        }
    }
}

#[test]
fn sign_csrs_refuses_each_escalation_naming_the_csr_and_writes_nothing() -> R {
    let s = Setup::new()?;
    let masters =
        |cn: &str| CsrBuilder::new(Subject::cn(cn).with_organizations(["system:masters"]));
    let api_sans = {
        let csr = kubepki_csr::Csr::from_pem(&fs::read(s.csr_file("apiserver"))?)?;
        csr.subject_alt_names()
    };
    let server_sans = {
        let csr = kubepki_csr::Csr::from_pem(&fs::read(s.csr_file("etcd/server"))?)?;
        csr.subject_alt_names()
    };
    let cases: Vec<(&str, CsrBuilder, &str)> = vec![
        (
            "admin.conf",
            masters("kubernetes-admin"),
            "extra O \"system:masters\"",
        ),
        (
            "apiserver-kubelet-client",
            masters("kube-apiserver-kubelet-client"),
            "extra O \"system:masters\"",
        ),
        (
            "apiserver-etcd-client",
            masters("kube-apiserver-etcd-client"),
            "extra O \"system:masters\"",
        ),
        (
            "etcd/healthcheck-client",
            masters("kube-etcd-healthcheck-client"),
            "extra O \"system:masters\"",
        ),
        (
            "kubelet.conf",
            CsrBuilder::new(Subject::cn("system:node:other").with_organizations(["system:nodes"])),
            "CN is \"system:node:other\", must be \"system:node:n1\"",
        ),
        (
            "etcd/server",
            CsrBuilder::new(Subject::cn("root")).subject_alt_names(server_sans),
            "CN is \"root\", must be \"n1\"",
        ),
        (
            "apiserver",
            CsrBuilder::new(Subject::cn("kube-apiserver"))
                .subject_alt_names(api_sans)
                .dns("evil.example.com"),
            "extra SAN DNS:evil.example.com",
        ),
        (
            "apiserver-kubelet-client",
            CsrBuilder::new(Subject::cn("kube-apiserver-kubelet-client")).dns("evil.example.com"),
            "extra SAN DNS:evil.example.com",
        ),
    ];
    for (item, builder, expect) in cases {
        let csr_file = s.csr_file(item);
        let original = fs::read(&csr_file)?;
        fs::write(&csr_file, builder.sign(&s.key(item)?)?.to_pem())?;
        let before = s.snapshot()?;
        let r = s.all_cas()?;
        assert_eq!(r.code, 1, "{item}: signed: {}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "{item}: {}", r.stderr);
        assert!(
            r.stderr.contains(&csr_file.display().to_string()) && r.stderr.contains(expect),
            "{item}: {}",
            r.stderr
        );
        assert_eq!(s.snapshot()?, before, "{item}: something was written");
        fs::write(&csr_file, original)?;
    }
    Ok(())
}

#[test]
fn sign_csrs_refuses_a_ca_given_for_another_role_naming_its_file() -> R {
    let s = Setup::new()?;
    let before = s.snapshot()?;
    let (fc, fk, ec, ek, c, k) = (
        s.ca_file("front-proxy-ca.crt"),
        s.ca_file("front-proxy-ca.key"),
        s.ca_file("etcd/ca.crt"),
        s.ca_file("etcd/ca.key"),
        s.ca_file("ca.crt"),
        s.ca_file("ca.key"),
    );
    for (args, file, role) in [
        (
            vec!["--ca-cert", &fc, "--ca-key", &fk],
            &fc,
            "given as ca, but it is \"CN = front-proxy-ca\"",
        ),
        (
            vec!["--ca-cert", &ec, "--ca-key", &ek],
            &ec,
            "given as ca, but it is \"CN = etcd-ca\"",
        ),
        (
            vec!["--front-proxy-ca-cert", &c, "--front-proxy-ca-key", &k],
            &c,
            "given as front-proxy-ca, but it is \"CN = kubernetes\"",
        ),
        (
            vec!["--etcd-ca-cert", &fc, "--etcd-ca-key", &fk],
            &fc,
            "given as etcd-ca",
        ),
    ] {
        let mut a = vec!["certs", "sign-csrs"];
        a.extend(args);
        let r = s.node(&a)?;
        assert_eq!(r.code, 1, "{role}: {}", r.stdout);
        assert!(
            r.stderr
                .starts_with(&format!("kubepki: error: {file}: {role}")),
            "{}",
            r.stderr
        );
        assert_eq!(s.snapshot()?, before);
    }
    Ok(())
}

fn openssl_verify(ca: &str, cert: &Path, purpose: &str) -> R {
    let out = Command::new("openssl")
        .args(["verify", "-purpose", purpose, "-CAfile", ca])
        .arg(cert)
        .output()?;
    assert!(
        out.status.success(),
        "{}: {}",
        cert.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn sign_csrs_in_parts_exits_3_until_done_then_init_and_verify_pass() -> R {
    let s = Setup::new()?;
    let r = s.sign(&["ca"])?;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("5 of 12 items left unsigned"),
        "{}",
        r.stderr
    );
    for skipped in [
        "front-proxy-client needs front-proxy-ca, which was not given; skipped",
        "etcd-server needs etcd-ca, which was not given; skipped",
        "apiserver-etcd-client needs etcd-ca, which was not given; skipped",
    ] {
        assert!(r.stdout.contains(skipped), "{}", r.stdout);
    }
    assert!(r.stdout.contains("7 certificates signed"), "{}", r.stdout);
    assert!(s.pki().join("apiserver.crt").exists());
    assert!(!s.pki().join("front-proxy-client.crt").exists());
    let api = fs::read(s.pki().join("apiserver.crt"))?;

    let r = s.sign(&["front-proxy-ca", "etcd-ca"])?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("5 certificates signed"), "{}", r.stdout);
    assert!(
        r.stdout.contains("apiserver.crt is already signed; kept"),
        "{}",
        r.stdout
    );
    assert_eq!(fs::read(s.pki().join("apiserver.crt"))?, api);

    let before = s.snapshot()?;
    let r = s.all_cas()?;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("0 certificates signed"), "{}", r.stdout);
    assert_eq!(s.snapshot()?, before);

    openssl_verify(
        &s.ca_file("front-proxy-ca.crt"),
        &s.pki().join("front-proxy-client.crt"),
        "sslclient",
    )?;
    openssl_verify(
        &s.ca_file("etcd/ca.crt"),
        &s.pki().join("etcd/server.crt"),
        "sslserver",
    )?;
    openssl_verify(
        &s.ca_file("ca.crt"),
        &s.pki().join("apiserver.crt"),
        "sslserver",
    )?;
    s.copy_ca_certs()?;
    let r = s.node(&["init"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = s.node(&["verify"])?;
    assert_eq!(r.code, 0, "{}", r.stdout);
    Ok(())
}

#[test]
fn generate_csr_makes_only_what_is_missing() -> R {
    let s = Setup::new()?;
    for f in ["apiserver.key", "apiserver.csr"] {
        fs::remove_file(s.pki().join(f))?;
    }
    let before = s.snapshot()?;
    let r = s.node(&["certs", "generate-csr"])?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let wrote: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[certs] Wrote "))
        .collect();
    let want = [
        s.pki().join("apiserver.key").display().to_string(),
        s.pki().join("apiserver.csr").display().to_string(),
    ];
    assert_eq!(wrote, want);
    assert_eq!(
        r.stdout.matches("awaiting signing; kept").count(),
        11,
        "{}",
        r.stdout
    );
    let after = s.snapshot()?;
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
    let r = s.all_cas()?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("12 certificates signed"), "{}", r.stdout);
    Ok(())
}

#[test]
fn init_after_generate_csr_lists_every_csr_awaiting_signing() -> R {
    let s = Setup::new()?;
    s.copy_ca_certs()?;
    let before = s.snapshot()?;
    let r = s.node(&["init"])?;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("these CSRs await signing by the CA holder")
            && r.stderr.contains("kubepki certs sign-csrs"),
        "{}",
        r.stderr
    );
    for item in [
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-client",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
        "apiserver-etcd-client",
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        let csr = s.csr_file(item).display().to_string();
        assert!(r.stderr.contains(&csr), "{csr} not in {}", r.stderr);
    }
    assert!(!r.stderr.contains("remove it"), "{}", r.stderr);
    assert!(!r.stderr.contains("exists without"), "{}", r.stderr);
    assert_eq!(s.snapshot()?, before);
    Ok(())
}
