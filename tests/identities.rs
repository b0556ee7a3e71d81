//! Kubernetes identities made offline, checked by a real TLS server: the source documents'
//! user flow (key → CSR → CertificateSigningRequest → signed → kubeconfig) authenticates as the
//! user with its groups; a worker's kubelet.conf authenticates as system:node:NAME; a kubelet
//! serving certificate passes OpenSSL's hostname check; a second control-plane node's tree
//! passes `verify` and chains to the same CAs.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::{CertificateAuthority, sign_request};
use kubepki_csr::KubeCsr;
use kubepki_interop::{TlsServer, cn_and_orgs, extract_client, run, run_ok};
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    CertId, CheckStatus, ClusterAccess, ClusterSpec, Plan, Selection, UserSpec, control_plane_node,
    kubelet_kubeconfig, kubelet_serving, user_kubeconfig, user_request, verify,
};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn spec(dir: &Path, node: &str, addr: [u8; 4]) -> ClusterSpec {
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from(addr));
    s.node_name = Some(node.into());
    s.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    s.control_plane_endpoint = Some("api.example.com".into());
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir.to_owned();
    s
}

fn cluster_ca(pki: &Path) -> Res<CertificateAuthority> {
    Ok(CertificateAuthority::load(
        &fs::read(pki.join("ca.crt"))?,
        &fs::read(pki.join("ca.key"))?,
        OffsetDateTime::now_utc(),
    )?)
}

/// Writes a kubeconfig's client cert and key to files for s_client.
fn client_files(dir: &Path, name: &str, kubeconfig: &str) -> Res<(PathBuf, PathBuf)> {
    let p = dir.join(format!("{name}.conf"));
    fs::write(&p, kubeconfig)?;
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    extract_client(&p, &crt, &key)?;
    Ok((crt, key))
}

#[test]
fn users_and_nodes_authenticate_at_a_real_tls_server() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let s = spec(d, "cp1", [192, 0, 2, 10]);
    let plan = Plan::new(&s)?;
    kubepki_kubeadm::init_tree(&plan, &Selection::all(), OffsetDateTime::now_utc(), false)?;
    let pki = d.join("pki");
    let ca = cluster_ca(&pki)?;

    // The seed documents' flow, offline: key -> CSR -> manifest (as YAML, as kubectl would send
    // it) -> signed by the kube-apiserver-client signer -> kubeconfig.
    let user = UserSpec {
        name: "jane".into(),
        groups: vec!["dev".into(), "ops".into()],
    };
    let (key, _csr, manifest) = user_request(&user, KeyAlgorithm::EcdsaP256, Some(86400))?;
    let sent = KubeCsr::from_slice(manifest.to_yaml()?.as_bytes())?;
    let now = OffsetDateTime::now_utc();
    let cert = sign_request(&ca, &sent, Duration::hours(8760), now)?;
    assert!(cert.not_after() <= now + Duration::seconds(86400));
    let conf = user_kubeconfig(
        &cluster(),
        std::slice::from_ref(ca.certificate()),
        &cert,
        &key,
    )?;
    let (jane_crt, jane_key) = client_files(d, "jane", &conf)?;

    let worker = worker_kubeconfig(&ca)?;
    let (w_crt, w_key) = client_files(d, "worker1", &worker)?;

    let server = TlsServer::start(
        d,
        &pki.join("apiserver.crt"),
        &pki.join("apiserver.key"),
        &pki.join("ca.crt"),
    )?;
    for (crt, key) in [(&jane_crt, &jane_key), (&w_crt, &w_key)] {
        let o = server.connect(crt, key, &["-verify_hostname", "kubernetes"])?;
        assert!(o.output.contains("HTTP/1.0 200 ok"), "{}", o.output);
    }
    let seen: Vec<(String, Vec<String>)> = server
        .verified_clients()
        .iter()
        .map(|s| cn_and_orgs(s))
        .collect();
    assert!(
        seen.contains(&("jane".into(), vec!["dev".into(), "ops".into()])),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("system:node:worker1".into(), vec!["system:nodes".into()])),
        "{seen:?}"
    );
    drop(server);

    // A kubelet serving certificate: OpenSSL accepts it for its node name and IP.
    let (serving, skey) = kubelet_serving(
        &ca,
        "worker1",
        &[IpAddr::from([10, 0, 0, 21])],
        &["worker1.example.com".into()],
        KeyAlgorithm::EcdsaP256,
        kubepki_ca::Window::kubeadm(now, Duration::hours(8760)),
        kubepki_ca::CaExpiry::Refuse,
    )?;
    fs::write(d.join("kubelet.crt"), serving.to_pem())?;
    fs::write(d.join("kubelet.key"), skey.to_pem()?.as_bytes())?;
    let ca_file = pki.join("ca.crt").display().to_string();
    for check in [
        ["-verify_hostname", "worker1.example.com"],
        ["-verify_ip", "10.0.0.21"],
    ] {
        let out = run_ok(
            d,
            "openssl",
            &[
                "verify",
                "-purpose",
                "sslserver",
                check[0],
                check[1],
                "-CAfile",
                &ca_file,
                "kubelet.crt",
            ],
        )?;
        assert!(out.contains("OK"), "{out}");
    }
    let wrong = run(
        d,
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            &ca_file,
            "kubelet.crt",
        ],
    )?;
    assert!(
        !wrong.ok,
        "a serving certificate passed as a client: {}",
        wrong.output
    );
    Ok(())
}

fn cluster() -> ClusterAccess {
    ClusterAccess {
        cluster_name: "kubernetes".into(),
        server: "https://api.example.com:6443".into(),
    }
}

fn worker_kubeconfig(ca: &CertificateAuthority) -> Res<String> {
    Ok(kubelet_kubeconfig(
        ca,
        std::slice::from_ref(ca.certificate()),
        "worker1",
        &cluster(),
        KeyAlgorithm::EcdsaP256,
        kubepki_ca::Window::kubeadm(OffsetDateTime::now_utc(), Duration::hours(8760)),
        kubepki_ca::CaExpiry::Refuse,
    )?
    .to_string())
}

#[test]
fn second_control_plane_node_from_the_shared_files() -> R {
    let first = tempfile::tempdir()?;
    let s1 = spec(first.path(), "cp1", [192, 0, 2, 10]);
    kubepki_kubeadm::init_tree(
        &Plan::new(&s1)?,
        &Selection::all(),
        OffsetDateTime::now_utc(),
        false,
    )?;
    let second = tempfile::tempdir()?;
    let s2 = spec(second.path(), "cp2", [192, 0, 2, 11]);
    let plan2 = Plan::new(&s2)?;
    let r = control_plane_node(&plan2, &first.path().join("pki"), OffsetDateTime::now_utc())?;
    assert!(!second.path().join("super-admin.conf").exists());
    assert!(r.written.iter().any(|p| p.ends_with("admin.conf")));
    // Shared material is identical; per-node material is this node's.
    for shared in [
        "ca.crt",
        "ca.key",
        "sa.key",
        "sa.pub",
        "front-proxy-ca.key",
        "etcd/ca.crt",
    ] {
        assert_eq!(
            fs::read(first.path().join("pki").join(shared))?,
            fs::read(second.path().join("pki").join(shared))?,
            "{shared}"
        );
    }
    let api2 = kubepki_ca::Certificate::from_pem(&fs::read(
        CertId::Apiserver.cert_path(&second.path().join("pki")),
    )?)?;
    assert!(api2.subject_alt_names().dns.contains(&"cp2".to_owned()));
    assert!(
        api2.subject_alt_names()
            .ips
            .contains(&IpAddr::from([192, 0, 2, 11]))
    );
    let v = verify(&plan2, OffsetDateTime::now_utc());
    let bad: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // OpenSSL: node 2's apiserver certificate verifies under node 1's CA.
    let out = run_ok(
        second.path(),
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            &first.path().join("pki/ca.crt").display().to_string(),
            &CertId::Apiserver
                .cert_path(&second.path().join("pki"))
                .display()
                .to_string(),
        ],
    )?;
    assert!(out.contains("OK"));
    // A different CA already in the target folder is refused, and nothing is left behind.
    let third = tempfile::tempdir()?;
    let s3 = spec(third.path(), "cp3", [192, 0, 2, 12]);
    let other = tempfile::tempdir()?;
    kubepki_kubeadm::init_tree(
        &Plan::new(&spec(other.path(), "x", [192, 0, 2, 99]))?,
        &Selection::all(),
        OffsetDateTime::now_utc(),
        false,
    )?;
    fs::create_dir_all(third.path().join("pki"))?;
    fs::copy(
        other.path().join("pki/ca.crt"),
        third.path().join("pki/ca.crt"),
    )?;
    let e = control_plane_node(
        &Plan::new(&s3)?,
        &first.path().join("pki"),
        OffsetDateTime::now_utc(),
    )
    .err()
    .ok_or("mixed CAs accepted")?;
    assert!(
        e.to_string().contains("ca.crt") && e.to_string().contains("differs"),
        "{e}"
    );
    assert_eq!(fs::read_dir(third.path().join("pki"))?.count(), 1);
    Ok(())
}
