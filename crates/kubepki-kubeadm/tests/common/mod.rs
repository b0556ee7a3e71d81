//! Helpers shared by the kubepki-kubeadm tests (each test file uses part of it).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_ca::CertificateAuthority;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{CertId, CheckStatus, ClusterSpec, Plan, SigningCas, Tree, verify};
use time::{Duration, OffsetDateTime};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The three CAs of a kubeadm tree.
pub const CAS: [CertId; 3] = [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa];

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The spec of node `node` advertising `ip`, with ECDSA-P256 keys (fast to make), its
/// certificates in `cert_dir` and its kubeconfigs in `kubeconfig_dir`.
pub fn node_spec(
    node: &str,
    ip: [u8; 4],
    cert_dir: PathBuf,
    kubeconfig_dir: PathBuf,
) -> ClusterSpec {
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from(ip));
    s.node_name = Some(node.into());
    s.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    s.cert_dir = cert_dir;
    s.kubeconfig_dir = kubeconfig_dir;
    s
}

/// [`node_spec`] of `node` at 192.0.2.10 with its tree in `dir`: `dir/pki` and `dir`.
pub fn spec_in(dir: &Path, node: &str) -> ClusterSpec {
    node_spec(node, [192, 0, 2, 10], dir.join("pki"), dir.to_owned())
}

/// Every file under `dir` with its bytes.
pub fn snapshot(dir: &Path) -> Res<BTreeMap<PathBuf, Vec<u8>>> {
    walk(dir, false)
}

/// [`snapshot`] with every folder too (as `<dir>`): a folder created empty counts.
pub fn snapshot_with_dirs(dir: &Path) -> Res<BTreeMap<PathBuf, Vec<u8>>> {
    walk(dir, true)
}

fn walk(dir: &Path, dirs: bool) -> Res<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
                if dirs {
                    out.insert(e.path(), b"<dir>".to_vec());
                }
            } else {
                out.insert(e.path(), fs::read(e.path())?);
            }
        }
    }
    Ok(out)
}

/// The CA of `id` from the tree whose certificates are in `pki`.
pub fn load_ca(pki: &Path, id: CertId, at: OffsetDateTime) -> Res<CertificateAuthority> {
    Ok(CertificateAuthority::load(
        &fs::read(id.cert_path(pki))?,
        &fs::read(id.key_path(pki))?,
        at,
    )?)
}

/// All three CAs (certificate and key) of the tree whose certificates are in `pki`.
pub fn signing_cas(pki: &Path, at: OffsetDateTime) -> Res<SigningCas> {
    Ok(SigningCas {
        ca: Some(load_ca(pki, CertId::Ca, at)?),
        front_proxy: Some(load_ca(pki, CertId::FrontProxyCa, at)?),
        etcd: Some(load_ca(pki, CertId::EtcdCa, at)?),
    })
}

/// The current time without its fraction of a second (as certificates hold it).
pub fn now_whole_seconds() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// The bytes of `path` in an in-memory tree.
pub fn bytes(tree: &Tree, path: &str) -> Res<Vec<u8>> {
    Ok(tree
        .get(path)
        .ok_or_else(|| format!("{path} not in the tree"))?
        .bytes
        .to_vec())
}

/// `openssl verify -purpose PURPOSE -CAfile CA CERT` succeeds.
pub fn openssl_verify(ca: &Path, cert: &Path, purpose: &str) -> Res<()> {
    let out = Command::new("openssl")
        .args(["verify", "-purpose", purpose, "-CAfile"])
        .arg(ca)
        .arg(cert)
        .output()?;
    assert!(
        out.status.success(),
        "{} under {} ({purpose}): {}{}",
        cert.display(),
        ca.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// An `openssl req` configuration in `dir` (`req.cnf`) whose subject is the `[dn]` lines `dn`
/// (`name = value`; `kubeUID` is 1.3.6.1.4.1.57683.2).
pub fn openssl_req_config(dir: &Path, dn: &str) -> Res<PathBuf> {
    let cnf = dir.join("req.cnf");
    fs::write(
        &cnf,
        format!(
            "oid_section = new_oids\n[new_oids]\nkubeUID = 1.3.6.1.4.1.57683.2\n[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n{dn}\n"
        ),
    )?;
    Ok(cnf)
}

/// `verify` of `plan`'s tree at `at` fails no check (the failures are shown otherwise).
pub fn assert_no_verify_failure(plan: &Plan, at: OffsetDateTime) {
    let v = verify(plan, at);
    let fails: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    assert!(fails.is_empty(), "{fails:#?}");
}
