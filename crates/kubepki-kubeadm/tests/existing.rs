//! Existing files (`docs/compatibility.md` §4): reuse, external-CA mode, re-run idempotence, refusals, and
//! failures that leave nothing behind.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::Certificate;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    Action, CertId, ClusterSpec, Error, InitReport, KubeconfigId, Plan, Selection, init_tree,
};
use time::OffsetDateTime;

mod common;
use common::{openssl_req_config, snapshot_with_dirs, spec_in};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn spec(dir: &Path) -> ClusterSpec {
    spec_in(dir, "cp1")
}

fn init(s: &ClusterSpec) -> Result<InitReport, Error> {
    init_tree(
        &Plan::new(s)?,
        &Selection::all(),
        OffsetDateTime::now_utc(),
        false,
    )
}

#[test]
fn second_run_changes_no_byte() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let first = init(&s)?;
    assert_eq!(first.written.len(), 27);
    let before = snapshot_with_dirs(dir.path())?;
    let again = init(&s)?;
    assert!(again.unchanged());
    assert!(again.items.iter().all(|i| i.action == Action::Reuse));
    assert_eq!(snapshot_with_dirs(dir.path())?, before);
    Ok(())
}

#[test]
fn missing_leaf_is_made_with_the_existing_ca() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let pki = dir.path().join("pki");
    fs::remove_file(pki.join("apiserver.crt"))?;
    fs::remove_file(pki.join("apiserver.key"))?;
    fs::remove_file(dir.path().join("scheduler.conf"))?;
    let before = snapshot_with_dirs(dir.path())?;
    let r = init(&s)?;
    let mut written = r.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            dir.path().join("pki/apiserver.crt"),
            dir.path().join("pki/apiserver.key"),
            dir.path().join("scheduler.conf")
        ]
    );
    let after = snapshot_with_dirs(dir.path())?;
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
    let ca = Certificate::from_pem(&fs::read(pki.join("ca.crt"))?)?;
    let api = Certificate::from_pem(&fs::read(pki.join("apiserver.crt"))?)?;
    api.verify_signature(ca.public_key_der())?;
    Ok(())
}

#[test]
fn external_ca_needs_every_leaf_and_lists_what_is_missing() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let pki = dir.path().join("pki");
    fs::remove_file(pki.join("ca.key"))?;
    // Complete tree without ca.key: accepted, nothing written, the CA reported as external.
    let r = init(&s)?;
    assert!(r.unchanged());
    assert!(r.items.iter().any(|i| i.name == "ca" && i.external));
    // Now take away a leaf, a kubeconfig and sa.pub+sa.key: one error listing the leaf and the
    // kubeconfig (sa keys need no CA, so they would be made).
    for f in ["apiserver.crt", "apiserver.key", "sa.key", "sa.pub"] {
        fs::remove_file(pki.join(f))?;
    }
    fs::remove_file(dir.path().join("admin.conf"))?;
    let before = snapshot_with_dirs(dir.path())?;
    let e = init(&s)
        .err()
        .ok_or("accepted an incomplete external-CA tree")?;
    let msg = e.to_string();
    assert!(matches!(e, Error::ExternalCaIncomplete { .. }), "{msg}");
    assert!(!msg.contains("sa.key"), "{msg}");
    for needle in ["apiserver.crt", "admin.conf", "ca.crt"] {
        assert!(msg.contains(needle), "{needle} not in: {msg}");
    }
    assert!(!msg.contains("front-proxy-client"), "{msg}");
    assert_eq!(snapshot_with_dirs(dir.path())?, before);
    Ok(())
}

#[test]
fn external_etcd_ca_alone_is_fine() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    fs::remove_file(dir.path().join("pki/etcd/ca.key"))?;
    let r = init(&s)?;
    assert!(r.unchanged());
    assert!(r.items.iter().any(|i| i.name == "etcd-ca" && i.external));
    fs::remove_file(dir.path().join("pki/etcd/peer.crt"))?;
    fs::remove_file(dir.path().join("pki/etcd/peer.key"))?;
    let msg = init(&s).err().ok_or("accepted")?.to_string();
    assert!(
        msg.contains("etcd/peer.crt") && msg.contains("etcd/ca.crt"),
        "{msg}"
    );
    Ok(())
}

fn expect_file_error(s: &ClusterSpec, file: &str, needle: &str) -> R {
    let root = s.kubeconfig_dir.clone();
    let before = snapshot_with_dirs(&root)?;
    match init(s) {
        Err(e) if e.path().is_some() && !matches!(e, Error::Unusable { .. }) => {
            let (path, reason) = (e.path().unwrap_or(Path::new("")), e.to_string());
            assert!(
                path.ends_with(file),
                "{} vs {file}: {reason}",
                path.display()
            );
            assert!(reason.contains(needle), "{reason}");
        }
        other => return Err(format!("expected a file error on {file}, got {other:?}").into()),
    }
    assert_eq!(snapshot_with_dirs(&root)?, before, "something was written");
    Ok(())
}

#[test]
fn refusals_name_the_file() -> R {
    // A kubeconfig made for another CA.
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    init(&spec(b.path()))?;
    fs::copy(b.path().join("admin.conf"), a.path().join("admin.conf"))?;
    expect_file_error(&spec(a.path()), "admin.conf", "another CA")?;

    // A leaf signed by another CA.
    let a = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    for f in ["front-proxy-client.crt", "front-proxy-client.key"] {
        fs::copy(b.path().join("pki").join(f), a.path().join("pki").join(f))?;
    }
    expect_file_error(&spec(a.path()), "front-proxy-client.crt", "not signed by")?;

    // A key that is not the certificate's.
    let a = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    fs::copy(
        b.path().join("pki/apiserver.key"),
        a.path().join("pki/apiserver.key"),
    )?;
    expect_file_error(&spec(a.path()), "apiserver.key", "does not belong")?;

    // An existing apiserver cert without a SAN the configuration now asks for.
    let a = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    let mut s = spec(a.path());
    s.cert_sans = vec!["api.example.com".into()];
    expect_file_error(&s, "apiserver.crt", "DNS:api.example.com")?;

    // A key without its certificate; a CA key without the CA certificate.
    let a = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    fs::remove_file(a.path().join("pki/apiserver.crt"))?;
    expect_file_error(&spec(a.path()), "apiserver.key", "without")?;
    let a = tempfile::tempdir()?;
    fs::create_dir_all(a.path().join("pki"))?;
    fs::copy(b.path().join("pki/ca.key"), a.path().join("pki/ca.key"))?;
    expect_file_error(&spec(a.path()), "ca.key", "ca.crt does not")?;

    // sa.pub that is not sa.key's; garbage in a certificate; a non-CA as CA.
    let a = tempfile::tempdir()?;
    init(&spec(a.path()))?;
    fs::copy(b.path().join("pki/sa.pub"), a.path().join("pki/sa.pub"))?;
    expect_file_error(&spec(a.path()), "sa.pub", "public key of")?;
    // (init names every unusable file at once: take this one away for the next cases.)
    fs::remove_file(a.path().join("pki/sa.pub"))?;
    fs::write(
        a.path().join("pki/front-proxy-ca.crt"),
        b"not a certificate",
    )?;
    expect_file_error(&spec(a.path()), "front-proxy-ca.crt", "CERTIFICATE")?;
    fs::copy(
        b.path().join("pki/apiserver.crt"),
        a.path().join("pki/front-proxy-ca.crt"),
    )?;
    expect_file_error(&spec(a.path()), "front-proxy-ca.crt", "not a CA")?;
    Ok(())
}

#[test]
fn sa_pub_is_rebuilt_from_an_existing_sa_key() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let pki = dir.path().join("pki");
    let want = fs::read(pki.join("sa.pub"))?;
    let key = fs::read(pki.join("sa.key"))?;
    fs::remove_file(pki.join("sa.pub"))?;
    let r = init(&s)?;
    assert_eq!(r.written, [pki.join("sa.pub")]);
    assert_eq!(fs::read(pki.join("sa.pub"))?, want);
    assert_eq!(fs::read(pki.join("sa.key"))?, key);
    Ok(())
}

#[test]
fn a_failure_midway_leaves_nothing_new() -> R {
    // A folder where the last kubeconfig should go: every earlier file was staged first.
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    fs::create_dir(dir.path().join("scheduler.conf"))?;
    let before = snapshot_with_dirs(dir.path())?;
    let e = init(&s).err().ok_or("wrote over a folder")?;
    assert!(e.to_string().contains("scheduler.conf"), "{e}");
    assert_eq!(snapshot_with_dirs(dir.path())?, before);
    assert!(!dir.path().join("pki").exists(), "pki/ left behind");

    // A file where the etcd folder should be.
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    fs::create_dir(dir.path().join("pki"))?;
    fs::write(dir.path().join("pki/etcd"), b"in the way")?;
    let before = snapshot_with_dirs(dir.path())?;
    assert!(init(&s).is_err());
    assert_eq!(snapshot_with_dirs(dir.path())?, before);

    // A symlink planted at a target is never followed.
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    fs::create_dir(dir.path().join("pki"))?;
    std::os::unix::fs::symlink(dir.path().join("stolen"), dir.path().join("pki/sa.key"))?;
    assert!(init(&s).is_err());
    assert!(!dir.path().join("stolen").exists());
    Ok(())
}

#[test]
fn phases_and_dry_run() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let plan = Plan::new(&s)?;
    let now = OffsetDateTime::now_utc();
    // Dry run: every item planned with subject and validity; nothing written.
    let r = init_tree(&plan, &Selection::all(), now, true)?;
    assert!(r.dry_run && r.written.is_empty());
    assert_eq!(r.items.len(), 16);
    let api = r
        .items
        .iter()
        .find(|i| i.name == "apiserver")
        .ok_or("no apiserver")?;
    assert_eq!(
        api.subject.as_ref().map(ToString::to_string).as_deref(),
        Some("CN = kube-apiserver")
    );
    // Typed values: the window around now, the advertise address as an address.
    let (nb, na) = (api.not_before.ok_or("nb")?, api.not_after.ok_or("na")?);
    assert!(
        nb <= now && now + time::Duration::days(364) < na,
        "{nb} {na}"
    );
    assert!(
        api.ip_addresses.contains(&IpAddr::from([192, 0, 2, 10])),
        "{:?}",
        api.ip_addresses
    );
    assert!(fs::read_dir(dir.path())?.next().is_none());

    // A leaf phase needs its CA on disk.
    let one = |c: CertId| Selection {
        certs: vec![c],
        ..Selection::none()
    };
    let e = init_tree(&plan, &one(CertId::Apiserver), now, false)
        .err()
        .ok_or("no CA, yet signed")?;
    assert!(e.to_string().contains("ca.crt"), "{e}");
    init_tree(&plan, &one(CertId::Ca), now, false)?;
    let r = init_tree(&plan, &one(CertId::Apiserver), now, false)?;
    assert_eq!(r.written.len(), 2);
    let k = Selection {
        kubeconfigs: vec![KubeconfigId::Kubelet],
        ..Selection::none()
    };
    assert_eq!(
        init_tree(&plan, &k, now, false)?.written,
        [dir.path().join("kubelet.conf")]
    );
    let sa = Selection {
        sa: true,
        ..Selection::none()
    };
    assert_eq!(init_tree(&plan, &sa, now, false)?.written.len(), 2);
    // The rest of the tree completes around what exists.
    let r = init_tree(&plan, &Selection::all(), now, false)?;
    assert_eq!(
        r.items.iter().filter(|i| i.action == Action::Reuse).count(),
        4
    );
    Ok(())
}

/// The files named by an `init` refusal (one error per file, or all of them in `Unusable`).
fn refused_files(e: &Error) -> Vec<PathBuf> {
    match e {
        Error::Unusable { problems } => problems.iter().flat_map(refused_files).collect(),
        e => e.path().map(Path::to_owned).into_iter().collect(),
    }
}

/// The files `verify` fails, for the rules `init` shares with it (everything but the
/// distinct-keys rule and lifetimes beyond the CA's).
fn verify_failures(s: &ClusterSpec, now: OffsetDateTime) -> Res<Vec<PathBuf>> {
    let plan = Plan::new(s)?;
    let v = kubepki_kubeadm::verify(&plan, now);
    let mut files: Vec<PathBuf> = v
        .checks
        .iter()
        .filter(|c| c.status == kubepki_kubeadm::CheckStatus::Fail)
        .filter(|c| c.check != "distinct keys")
        .map(|c| match CertId::from_name(&c.item) {
            Ok(id) => id.cert_path(&s.cert_dir),
            Err(_) => s.kubeconfig_dir.join(&c.item),
        })
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

#[test]
fn expired_leaves_are_refused_all_in_one_run_as_verify_fails_them() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    // A tree made two years ago: the CAs (10 years) are fine, every leaf (1 year) has expired.
    let then = OffsetDateTime::now_utc() - time::Duration::days(730);
    init_tree(&Plan::new(&s)?, &Selection::all(), then, false)?;
    let before = snapshot_with_dirs(dir.path())?;
    let now = OffsetDateTime::now_utc();
    for dry_run in [true, false] {
        let e = init_tree(&Plan::new(&s)?, &Selection::all(), now, dry_run)
            .err()
            .ok_or("an expired tree was reused")?;
        let msg = e.to_string();
        assert!(
            msg.starts_with("12 existing files cannot be reused: "),
            "{msg}"
        );
        assert!(msg.contains("has expired"), "{msg}");
        assert!(msg.contains("kubepki certs renew apiserver`"), "{msg}");
        assert!(msg.contains("kubepki certs renew admin.conf`"), "{msg}");
        let mut files = refused_files(&e);
        files.sort();
        // init and verify name exactly the same files.
        assert_eq!(files, verify_failures(&s, now)?, "{msg}");
        assert_eq!(files.len(), 12, "{files:?}");
    }
    assert_eq!(
        snapshot_with_dirs(dir.path())?,
        before,
        "something was written"
    );
    Ok(())
}

#[test]
fn a_node_name_change_is_reported_whole_and_kubelet_conf_is_not_reused() -> R {
    let dir = tempfile::tempdir()?;
    init(&spec(dir.path()))?;
    let mut s = spec(dir.path());
    s.node_name = Some("cp2".into());
    let before = snapshot_with_dirs(dir.path())?;
    let now = OffsetDateTime::now_utc();
    let e = init(&s)
        .err()
        .ok_or("reused the files of node cp1 for cp2")?;
    let msg = e.to_string();
    let mut files = refused_files(&e);
    files.sort();
    let pki = dir.path().join("pki");
    let mut want = vec![
        pki.join("apiserver.crt"),
        pki.join("etcd/peer.crt"),
        pki.join("etcd/server.crt"),
        dir.path().join("kubelet.conf"),
    ];
    want.sort();
    assert_eq!(files, want, "{msg}");
    assert_eq!(files, verify_failures(&s, now)?, "{msg}");
    for needle in [
        "sans: extra SAN DNS:cp1, missing SAN DNS:cp2",
        "client certificate is \"O = system:nodes, CN = system:node:cp1\", must be \"O = system:nodes, CN = system:node:cp2\"",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    assert_eq!(
        snapshot_with_dirs(dir.path())?,
        before,
        "something was written"
    );
    // Once those four are removed, the rest is reused and the tree verifies for cp2.
    for f in &want {
        fs::remove_file(f)?;
        if f.extension().is_some_and(|e| e == "crt") {
            fs::remove_file(f.with_extension("key"))?;
        }
    }
    let r = init(&s)?;
    assert_eq!(
        r.items
            .iter()
            .filter(|i| i.action == Action::Create)
            .count(),
        4
    );
    assert!(verify_failures(&s, now)?.is_empty());
    Ok(())
}

#[test]
fn an_unusable_ca_and_a_stale_leaf_are_reported_together() -> R {
    let dir = tempfile::tempdir()?;
    init(&spec(dir.path()))?;
    let pki = dir.path().join("pki");
    fs::write(pki.join("front-proxy-ca.crt"), b"not a certificate")?;
    let other = kubepki_keys::PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    fs::write(pki.join("sa.pub"), other.public_key_pem())?;
    let mut s = spec(dir.path());
    s.cert_sans = vec!["api.example.com".into()];
    let before = snapshot_with_dirs(dir.path())?;
    let e = init(&s).err().ok_or("accepted")?;
    let mut files = refused_files(&e);
    files.sort();
    // The CA's own leaf (front-proxy-client) is not looked at: its CA is the problem.
    let mut want = vec![
        pki.join("apiserver.crt"),
        pki.join("front-proxy-ca.crt"),
        pki.join("sa.pub"),
    ];
    want.sort();
    assert_eq!(files, want, "{e}");
    assert!(
        e.to_string()
            .starts_with("3 existing files cannot be reused: "),
        "{e}"
    );
    assert_eq!(snapshot_with_dirs(dir.path())?, before);
    Ok(())
}

/// The tree's cluster CA, with its key.
fn tree_ca(plan: &Plan) -> Res<kubepki_ca::CertificateAuthority> {
    let dir = &plan.cert_dir;
    Ok(kubepki_ca::CertificateAuthority::load(
        &fs::read(CertId::Ca.cert_path(dir))?,
        &fs::read(CertId::Ca.key_path(dir))?,
        OffsetDateTime::now_utc(),
    )?)
}

/// Has the cluster CA issue `id` again for its key, with the plan's subject and usages and
/// `sans`.
fn reissue(plan: &Plan, id: CertId, sans: kubepki_csr::SubjectAltNames) -> R {
    let ca = tree_ca(plan)?;
    let spec = plan.cert(id).ok_or("no such certificate")?;
    let key = kubepki_keys::PrivateKey::from_pem(&fs::read(id.key_path(&plan.cert_dir))?)?;
    let now = OffsetDateTime::now_utc();
    let cert = ca.issue(
        &kubepki_ca::IssueSpec::new(
            spec.subject.clone(),
            key.public_key_der(),
            kubepki_ca::Window::kubeadm(now, time::Duration::hours(8760)),
            kubepki_ca::CaExpiry::Clamp,
        )
        .with_ext_key_usage(spec.ext_key_usage.clone())
        .with_subject_alt_names(sans),
    )?;
    fs::write(id.cert_path(&plan.cert_dir), cert.to_pem())?;
    Ok(())
}

/// init refuses, and names the same files verify fails (modes included).
fn refused_as_verify_fails(s: &ClusterSpec) -> Res<(String, Vec<PathBuf>)> {
    let before = snapshot_with_dirs(&s.kubeconfig_dir)?;
    let now = OffsetDateTime::now_utc();
    let e = init(s).err().ok_or("init reused the tree")?;
    let msg = e.to_string();
    let mut files = refused_files(&e);
    files.sort();
    assert_eq!(files, verify_failures(s, now)?, "{msg}");
    assert_eq!(
        snapshot_with_dirs(&s.kubeconfig_dir)?,
        before,
        "something was written"
    );
    Ok((msg, files))
}

#[test]
fn extra_sans_fail_init_and_verify_alike() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let plan = Plan::new(&s)?;
    let pki = dir.path().join("pki");
    let good_client = fs::read(pki.join("apiserver-kubelet-client.crt"))?;
    // A client-only certificate with a DNS name; the serving certificate with a wildcard and a
    // URI besides the plan's names.
    reissue(
        &plan,
        CertId::ApiserverKubeletClient,
        kubepki_csr::SubjectAltNames {
            dns: vec!["evil.example.com".into()],
            ..Default::default()
        },
    )?;
    let api = plan.cert(CertId::Apiserver).ok_or("apiserver")?;
    let mut sans = api.subject_alt_names.clone();
    sans.dns.push("*.evil.example.com".into());
    sans.uris.push("spiffe://x".into());
    reissue(&plan, CertId::Apiserver, sans)?;
    let (msg, files) = refused_as_verify_fails(&s)?;
    assert_eq!(
        files,
        [
            pki.join("apiserver-kubelet-client.crt"),
            pki.join("apiserver.crt")
        ],
        "{msg}"
    );
    for needle in [
        "apiserver-kubelet-client.crt: cannot be reused: sans: a client certificate carries no SAN: extra SAN DNS:evil.example.com;",
        "apiserver.crt: cannot be reused: sans: extra SAN DNS:*.evil.example.com, extra SAN URI:spiffe://x (a name the API server must also answer to belongs in --apiserver-cert-extra-sans or certSANs);",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }

    // A name of the configuration (--apiserver-cert-extra-sans) is the plan's: reused.
    fs::write(pki.join("apiserver-kubelet-client.crt"), good_client)?;
    let mut sans = api.subject_alt_names.clone();
    sans.dns.push("*.evil.example.com".into());
    reissue(&plan, CertId::Apiserver, sans)?;
    let (msg, files) = refused_as_verify_fails(&s)?;
    assert_eq!(files, [pki.join("apiserver.crt")], "{msg}");
    let mut with_extra = spec(dir.path());
    with_extra.cert_sans = vec!["*.evil.example.com".into()];
    assert!(init(&with_extra)?.unchanged());
    assert!(verify_failures(&with_extra, OffsetDateTime::now_utc())?.is_empty());
    Ok(())
}

#[test]
fn secret_files_readable_by_others_fail_init_and_verify_alike() -> R {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let key = dir.path().join("pki/apiserver.key");
    let conf = dir.path().join("admin.conf");
    for f in [&key, &conf] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644))?;
    }
    let now = OffsetDateTime::now_utc();
    let e = init(&s)
        .err()
        .ok_or("init reused files readable by others")?;
    let msg = e.to_string();
    let mut files = refused_files(&e);
    files.sort();
    assert_eq!(files, [conf.clone(), key.clone()], "{msg}");
    // verify fails the same two items, on the mode rule.
    let v = kubepki_kubeadm::verify(&Plan::new(&s)?, now);
    let fails: Vec<(&str, &str)> = v
        .checks
        .iter()
        .filter(|c| c.status == kubepki_kubeadm::CheckStatus::Fail)
        .map(|c| (c.item.as_str(), c.check))
        .collect();
    assert_eq!(fails, [("apiserver", "mode"), ("admin.conf", "mode")]);
    for f in [&key, &conf] {
        let needle = format!(
            "{}: cannot be reused: mode: {} is 0644; secrets must not be readable by group or others: chmod 600 {}",
            f.display(),
            f.display(),
            f.display()
        );
        assert!(msg.contains(&needle), "{needle}: {msg}");
    }
    for f in [&key, &conf] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o600))?;
    }
    assert!(init(&s)?.unchanged());
    Ok(())
}

/// Signs `id`'s key again with openssl, the plan's subject plus `extra` (`name = value` lines of
/// an openssl `[dn]` section; `kubeUID` is 1.3.6.1.4.1.57683.2).
fn openssl_reissue(plan: &Plan, id: CertId, dn: &str, client: bool) -> R {
    let dir = &plan.cert_dir;
    let work = tempfile::tempdir()?;
    let cnf = openssl_req_config(work.path(), dn)?;
    let ext = work.path().join("ext.cnf");
    fs::write(
        &ext,
        format!(
            "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = {}\n",
            if client { "clientAuth" } else { "serverAuth" }
        ),
    )?;
    let csr = work.path().join("r.csr");
    let key = id.key_path(dir);
    let issuer = id.issuer().unwrap_or(CertId::Ca);
    let ok = std::process::Command::new("openssl")
        .args(["req", "-new", "-config"])
        .arg(&cnf)
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()?
        .status
        .success()
        && std::process::Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(issuer.cert_path(dir))
            .arg("-CAkey")
            .arg(issuer.key_path(dir))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(id.cert_path(dir))
            .output()?
            .status
            .success();
    if ok {
        Ok(())
    } else {
        Err("openssl failed".into())
    }
}

#[test]
fn subject_attributes_the_plan_does_not_give_fail_init_and_verify_alike() -> R {
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    init(&s)?;
    let plan = Plan::new(&s)?;
    let pki = dir.path().join("pki");
    let client = plan.cert(CertId::ApiserverKubeletClient).ok_or("client")?;
    // Its O as the version gives it (none from 1.33.12 / 1.34.8 / ...), then the extra UID.
    let orgs: String = client
        .subject
        .organizations
        .iter()
        .map(|o| format!("O = {o}\n"))
        .collect();
    let cn = client.subject.common_name.clone().unwrap_or_default();
    openssl_reissue(
        &plan,
        CertId::ApiserverKubeletClient,
        &format!("{orgs}CN = {cn}\nkubeUID = 0b1d-uid"),
        true,
    )?;
    openssl_reissue(
        &plan,
        CertId::EtcdHealthcheckClient,
        "O = system:masters\nCN = kube-etcd-healthcheck-client\nUID = jane\nserialNumber = 42",
        true,
    )?;
    let (msg, files) = refused_as_verify_fails(&s)?;
    assert_eq!(
        files,
        [
            pki.join("apiserver-kubelet-client.crt"),
            pki.join("etcd/healthcheck-client.crt")
        ],
        "{msg}"
    );
    for needle in [
        "apiserver-kubelet-client.crt: cannot be reused: subject: ",
        ": extra attribute 1.3.6.1.4.1.57683.2 (Kubernetes user UID) \"0b1d-uid\";",
        "extra attribute UID \"jane\", extra attribute serialNumber \"42\"",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    Ok(())
}
