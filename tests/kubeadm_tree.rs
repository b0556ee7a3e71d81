//! A whole kubeadm tree made by kubepki, consumed by real implementations: OpenSSL and GnuTLS
//! verify every chain; a real etcd cluster (two members, client and peer TLS with client-cert
//! auth) accepts the etcd certificates; a real TLS server with apiserver.crt accepts every
//! kubeconfig's client certificate and refuses one from the front-proxy CA.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubepki_interop::{
    SOFTHSM_MODULE, SOFTHSM_PIN, TlsServer, etcd_member_args, extract_client, free_port,
    openssl_verify_ok, run, run_ok, spawn, wait_listening, with_softhsm_token,
};
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{CertId, ClusterSpec, KubeconfigId, Plan, Selection};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn tree(dir: &Path, alg: KeyAlgorithm) -> Res<Plan> {
    let mut s = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
    s.node_name = Some("cp1".into());
    s.encryption_algorithm = alg;
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir.to_owned();
    s.cert_sans = vec!["api.example.com".into(), "2001:db8::10".into()];
    let plan = Plan::new(&s)?;
    kubepki_kubeadm::init_tree(
        &plan,
        &Selection::all(),
        time::OffsetDateTime::now_utc(),
        false,
    )?;
    Ok(plan)
}

/// Writes a kubeconfig's embedded client certificate and key to `<name>.crt`/`<name>.key`.
fn extract(dir: &Path, id: KubeconfigId) -> Res<(PathBuf, PathBuf)> {
    let crt = dir.join(format!("{}.client.crt", id.name()));
    let key = dir.join(format!("{}.client.key", id.name()));
    extract_client(&dir.join(id.file_name()), &crt, &key)?;
    Ok((crt, key))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn openssl_and_gnutls_verify_every_chain() -> R {
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP384] {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let plan = tree(d, alg)?;
        let pki = d.join("pki");
        for c in &plan.certs {
            let crt = c.id.cert_path(&pki);
            let key = c.id.key_path(&pki);
            run_ok(d, "openssl", &["pkey", "-in", s(&key), "-noout"])?;
            let ca = c.id.issuer().unwrap_or(c.id).cert_path(&pki);
            let purposes: &[&str] = match c.id {
                CertId::Apiserver => &["sslserver"],
                CertId::EtcdServer | CertId::EtcdPeer => &["sslserver", "sslclient"],
                id if id.is_ca() => &["any"],
                _ => &["sslclient"],
            };
            for purpose in purposes {
                let out = openssl_verify_ok(d, purpose, s(&ca), s(&crt))?;
                assert!(out.contains(": OK"), "{}: {out}", c.id.name());
            }
            let out = run_ok(
                d,
                "certtool",
                &[
                    "--verify",
                    "--load-ca-certificate",
                    s(&ca),
                    "--infile",
                    s(&crt),
                ],
            )?;
            assert!(
                out.contains("Chain verification output: Verified"),
                "{}: {out}",
                c.id.name()
            );
        }
        run_ok(
            d,
            "openssl",
            &["pkey", "-pubin", "-in", s(&pki.join("sa.pub")), "-noout"],
        )?;
        // A leaf does not verify under another of the tree's CAs.
        let wrong = run(
            d,
            "openssl",
            &[
                "verify",
                "-CAfile",
                s(&pki.join("front-proxy-ca.crt")),
                s(&pki.join("apiserver.crt")),
            ],
        )?;
        assert!(!wrong.ok, "{}", wrong.output);
        // kubeconfig client certificates chain to ca.crt as clients.
        for k in &plan.kubeconfigs {
            let (crt, _) = extract(d, k.id)?;
            let out = openssl_verify_ok(d, "sslclient", s(&pki.join("ca.crt")), s(&crt))?;
            assert!(out.contains(": OK"), "{out}");
        }
    }
    Ok(())
}

#[test]
fn real_etcd_cluster_uses_the_etcd_certificates() -> R {
    let dir = tempfile::tempdir()?;
    tree(dir.path(), KeyAlgorithm::EcdsaP256)?;
    etcd_cluster_works(dir.path())
}

/// The same tree with the three CA keys in a PKCS#11 token (SoftHSM2): the CA certificates are
/// made with the token's keys and every certificate is signed through it (no `*ca.key` file
/// anywhere); the real etcd cluster and the TLS server with client-certificate auth accept it
/// as they accept a tree with key files.
#[test]
fn real_etcd_and_tls_server_with_the_ca_keys_in_a_token() -> R {
    with_softhsm_token(
        "real_etcd_and_tls_server_with_the_ca_keys_in_a_token",
        || {
            use kubepki_pkcs11::{Pin, Pkcs11Options, Pkcs11Provider, Pkcs11Uri};
            let provider = Pkcs11Provider::new(
                Pkcs11Options::new()
                    .with_module(SOFTHSM_MODULE)
                    .with_pin(Pin::new(SOFTHSM_PIN.into())),
            );
            let mut held: Vec<kubepki_kubeadm::HeldCaKey> = Vec::new();
            for (id, object) in [
                (CertId::Ca, "ca"),
                (CertId::FrontProxyCa, "front-proxy-ca"),
                (CertId::EtcdCa, "etcd-ca"),
            ] {
                let uri = Pkcs11Uri::parse(&format!("pkcs11:token=T;object={object}"))?;
                held.push((id, provider.generate(&uri, KeyAlgorithm::EcdsaP256)?));
            }
            let dir = tempfile::tempdir()?;
            let d = dir.path();
            let mut s = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
            s.node_name = Some("cp1".into());
            s.encryption_algorithm = KeyAlgorithm::EcdsaP256;
            s.cert_dir = d.join("pki");
            s.kubeconfig_dir = d.to_owned();
            let plan = Plan::new(&s)?;
            kubepki_kubeadm::init_tree_with_ca_keys(
                &plan,
                &Selection::all(),
                &held,
                time::OffsetDateTime::now_utc(),
                false,
            )?;
            for ca in [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa] {
                assert!(!ca.key_path(&plan.cert_dir).exists(), "{}", ca.name());
                assert!(ca.cert_path(&plan.cert_dir).exists(), "{}", ca.name());
            }
            let ca = kubepki_ca::Certificate::from_pem(&fs::read(d.join("pki/etcd/ca.crt"))?)?;
            assert_eq!(ca.public_key_der(), held[2].1.public_key_der());
            etcd_cluster_works(d)?;
            tls_server_works(d, &plan)
        },
    )
}

/// A two-member etcd cluster with client and peer TLS on the etcd files of the tree in `d`:
/// healthy, a write through one member read back through the other with the healthcheck
/// client certificate, and a client certificate of another CA refused.
fn etcd_cluster_works(d: &Path) -> R {
    let pki = d.join("pki");
    let e = |f: &str| s(&pki.join("etcd").join(f)).to_owned();
    let (c1, p1, c2, p2) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let cluster = format!("m1=https://127.0.0.1:{p1},m2=https://127.0.0.1:{p2}");
    let member = |name: &str, client: u16, peer: u16| {
        etcd_member_args(
            name,
            &d.join(format!("{name}.etcd")),
            (client, peer),
            &cluster,
            &pki.join("etcd"),
        )
    };
    let mut m1 = spawn(d, "etcd", &member("m1", c1, p1), "m1.log")?;
    let mut m2 = spawn(d, "etcd", &member("m2", c2, p2), "m2.log")?;
    let logs = || {
        format!(
            "m1: {}\nm2: {}",
            fs::read_to_string(d.join("m1.log")).unwrap_or_default(),
            fs::read_to_string(d.join("m2.log")).unwrap_or_default()
        )
    };
    wait_listening(c1, &mut m1, Duration::from_secs(20)).map_err(|e| format!("{e}\n{}", logs()))?;
    wait_listening(c2, &mut m2, Duration::from_secs(20)).map_err(|e| format!("{e}\n{}", logs()))?;

    let ctl = |port: u16, cert: &Path, key: &Path, args: &[&str]| {
        let ep = format!("https://127.0.0.1:{port}");
        let mut a = vec![
            "--endpoints",
            &ep,
            "--cacert",
            &e("ca.crt"),
            "--cert",
            s(cert),
            "--key",
            s(key),
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        a.extend(args.iter().map(|x| x.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run(d, "etcdctl", &refs)
    };
    // The cluster needs both members talking over peer TLS before it has a leader.
    let (api_crt, api_key) = (
        pki.join("apiserver-etcd-client.crt"),
        pki.join("apiserver-etcd-client.key"),
    );
    let start = Instant::now();
    loop {
        let h = ctl(c1, &api_crt, &api_key, &["endpoint", "health"])?;
        if h.ok {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("etcd never became healthy: {}\n{}", h.output, logs()).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let put = ctl(c1, &api_crt, &api_key, &["put", "/kubepki/probe", "hello"])?;
    assert!(put.ok && put.output.contains("OK"), "{}", put.output);
    // Read back through the other member (replicated over peer TLS) with the healthcheck cert.
    let (hc_crt, hc_key) = (
        pki.join("etcd/healthcheck-client.crt"),
        pki.join("etcd/healthcheck-client.key"),
    );
    let get = ctl(c2, &hc_crt, &hc_key, &["get", "/kubepki/probe"])?;
    assert!(get.ok && get.output.contains("hello"), "{}", get.output);
    let members = ctl(c2, &hc_crt, &hc_key, &["member", "list"])?;
    assert!(
        members.output.matches("started").count() == 2,
        "{}",
        members.output
    );
    // A client certificate from another CA (front-proxy) is refused.
    let (fp_crt, fp_key) = (
        pki.join("front-proxy-client.crt"),
        pki.join("front-proxy-client.key"),
    );
    let bad = ctl(c1, &fp_crt, &fp_key, &["get", "/kubepki/probe"])?;
    assert!(!bad.ok && !bad.output.contains("hello"), "{}", bad.output);
    drop(m1);
    drop(m2);
    Ok(())
}

#[test]
fn tls_server_with_apiserver_cert_requires_cluster_client_certs() -> R {
    let dir = tempfile::tempdir()?;
    let plan = tree(dir.path(), KeyAlgorithm::Rsa2048)?;
    tls_server_works(dir.path(), &plan)
}

/// `openssl s_server` with the tree's apiserver.crt, requiring client certificates of its CA:
/// every kubeconfig's client certificate is accepted, one of the front-proxy CA refused.
fn tls_server_works(d: &Path, plan: &Plan) -> R {
    let pki = d.join("pki");
    let server = TlsServer::start(
        d,
        &pki.join("apiserver.crt"),
        &pki.join("apiserver.key"),
        &pki.join("ca.crt"),
    )?;
    let connect = |crt: &Path, key: &Path, check: &[&str]| server.connect(crt, key, check);
    let served = |o: &kubepki_interop::Outcome| {
        o.output.contains("HTTP/1.0 200 ok") && o.output.contains("Verify return code: 0 (ok)")
    };
    for k in &plan.kubeconfigs {
        let (crt, key) = extract(d, k.id)?;
        let o = connect(&crt, &key, &["-verify_hostname", "kubernetes"])?;
        assert!(served(&o), "{}: {}", k.id.file_name(), o.output);
    }
    // Every SAN the apiserver certificate must carry passes the client's hostname/IP check.
    let (crt, key) = extract(d, KubeconfigId::Admin)?;
    let api = plan.cert(CertId::Apiserver).ok_or("no apiserver")?;
    for dns in &api.subject_alt_names.dns {
        let o = connect(&crt, &key, &["-verify_hostname", dns])?;
        assert!(served(&o), "DNS {dns}: {}", o.output);
    }
    for ip in &api.subject_alt_names.ips {
        let ip = ip.to_string();
        let o = connect(&crt, &key, &["-verify_ip", &ip])?;
        assert!(served(&o), "IP {ip}: {}", o.output);
    }
    for wrong in [
        ["-verify_hostname", "localhost"],
        ["-verify_ip", "127.0.0.1"],
    ] {
        let o = connect(&crt, &key, &wrong)?;
        assert!(!served(&o), "{wrong:?} accepted: {}", o.output);
    }
    // The apiserver's own client certificate for kubelets is a cluster client too.
    let o = connect(
        &pki.join("apiserver-kubelet-client.crt"),
        &pki.join("apiserver-kubelet-client.key"),
        &[],
    )?;
    assert!(served(&o), "{}", o.output);
    // front-proxy-client is signed by front-proxy-ca: the server refuses it.
    let o = connect(
        &pki.join("front-proxy-client.crt"),
        &pki.join("front-proxy-client.key"),
        &[],
    )?;
    assert!(!served(&o), "front-proxy-client accepted: {}", o.output);
    drop(server);
    Ok(())
}

/// The other direction: a tree written by the OpenSSL command line (benches/scripts/
/// openssl-tree.sh, the benchmark baseline) is accepted by `verify` (names compared by value:
/// OpenSSL writes UTF8String where Go writes PrintableString) and read by check-expiration.
#[test]
fn a_tree_made_by_the_openssl_cli_passes_verify() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/scripts/openssl-tree.sh");
    run_ok(d, "bash", &[s(&script), s(&d.join("t")), "p256"])?;
    let mut spec = ClusterSpec::with_advertise_address(IpAddr::from([192, 0, 2, 10]));
    spec.node_name = Some("cp1".into());
    spec.cert_dir = d.join("t/pki");
    spec.kubeconfig_dir = d.join("t");
    let plan = Plan::new(&spec)?;
    let v = kubepki_kubeadm::verify(&plan, time::OffsetDateTime::now_utc());
    let fails: Vec<_> = v
        .checks
        .iter()
        .filter(|c| c.status == kubepki_kubeadm::CheckStatus::Fail)
        .collect();
    assert!(fails.is_empty(), "{fails:#?}");
    // OpenSSL's leaves last exactly 365 days, kubeadm's 365 days + 5 minutes: a warning each.
    assert_eq!(v.count(kubepki_kubeadm::CheckStatus::Warn), 7);
    let e = kubepki_kubeadm::check_expiration(&spec, time::OffsetDateTime::now_utc());
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    assert!(e.certificates.iter().all(|c| c.expires.is_some()));
    Ok(())
}
