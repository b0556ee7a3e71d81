//! Signatures per second through a PKCS#11 token (SoftHSM2) next to the software key: RSA-3072
//! and ECDSA P-256 signing a ~1 KB TBSCertificate through `CaSigningKey::sign`, a full leaf
//! issuance with the CA key in the token, and a whole kubeadm tree (`build`, in memory: 3 CA
//! certificates, 7 leaves, 5 kubeconfigs, 15 signatures) with the three CA keys in the token
//! next to the same tree with software CA keys.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once per process, so the bench runs itself again as a child
//! process with a fresh token directory (`cargo bench -p kubepki-benches --bench hsm`). Without
//! SoftHSM2 (`/usr/lib/softhsm/libsofthsm2.so`, `softhsm2-util`) it prints why and does nothing.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use kubepki_ca::{CaExpiry, CaSigningKey, CaSpec, CertificateAuthority, IssueSpec, Window};
use kubepki_csr::{ExtKeyUsage, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_pkcs11::{Pin, Pkcs11Options, Pkcs11Provider, Pkcs11Uri};
use time::{Duration, OffsetDateTime};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "bench-pin-1234";
const CHILD: &str = "KUBEPKI_BENCH_SOFTHSM_CHILD";

fn provider() -> Pkcs11Provider {
    Pkcs11Provider::new(
        Pkcs11Options::new()
            .with_module(MODULE)
            .with_pin(Pin::new(PIN.into())),
    )
}

fn sign(c: &mut Criterion, provider: &Pkcs11Provider) {
    let mut g = c.benchmark_group("hsm_sign");
    g.throughput(Throughput::Elements(1));
    let tbs = vec![0x5au8; 1024];
    for alg in [KeyAlgorithm::Rsa3072, KeyAlgorithm::EcdsaP256] {
        let uri =
            Pkcs11Uri::parse(&format!("pkcs11:token=B;object=sign-{}", alg.name())).expect("uri");
        let token: Arc<dyn CaSigningKey> = provider.generate(&uri, alg).expect("token key");
        let software: Arc<dyn CaSigningKey> = Arc::new(PrivateKey::generate(alg).expect("key"));
        g.bench_function(format!("{}/softhsm2", alg.name()), |b| {
            b.iter(|| token.sign(&tbs).expect("sign"))
        });
        g.bench_function(format!("{}/software", alg.name()), |b| {
            b.iter(|| software.sign(&tbs).expect("sign"))
        });
    }
    g.finish();
}

fn issue(c: &mut Criterion, provider: &Pkcs11Provider) {
    let now = OffsetDateTime::now_utc();
    let mut g = c.benchmark_group("hsm_issue_leaf");
    g.throughput(Throughput::Elements(1));
    let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("leaf key");
    let spec = IssueSpec::new(
        Subject::cn("kube-apiserver-kubelet-client").with_organizations(["kubeadm:cluster-admins"]),
        leaf_key.public_key_der(),
        Window::kubeadm(now, Duration::hours(8760)),
        CaExpiry::Refuse,
    )
    .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]);
    for alg in [KeyAlgorithm::Rsa3072, KeyAlgorithm::EcdsaP256] {
        let uri =
            Pkcs11Uri::parse(&format!("pkcs11:token=B;object=ca-{}", alg.name())).expect("uri");
        let spec_ca = CaSpec::kubeadm("kubernetes", now, Duration::hours(87600));
        let token = CertificateAuthority::create_root_with_signing_key(
            &spec_ca,
            provider.generate(&uri, alg).expect("token key"),
        )
        .expect("ca");
        let software =
            CertificateAuthority::create_root(&spec_ca, PrivateKey::generate(alg).expect("key"))
                .expect("ca");
        g.bench_function(format!("{}/softhsm2", alg.name()), |b| {
            b.iter(|| token.issue(&spec).expect("issue"))
        });
        g.bench_function(format!("{}/software", alg.name()), |b| {
            b.iter(|| software.issue(&spec).expect("issue"))
        });
    }
    g.finish();
}

fn tree(c: &mut Criterion, provider: &Pkcs11Provider) {
    use kubepki_kubeadm::{CertId, ClusterSpec, HeldCaKey, Plan, Selection, Tree, build};
    let mut g = c.benchmark_group("hsm_tree");
    g.sample_size(20);
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa3072] {
        let mut spec = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
        spec.node_name = Some("cp1".into());
        spec.encryption_algorithm = alg;
        let plan = Plan::new(&spec).expect("plan");
        let mut token = Tree::new();
        let mut software = Tree::new();
        for id in [CertId::Ca, CertId::FrontProxyCa, CertId::EtcdCa] {
            let uri = Pkcs11Uri::parse(&format!(
                "pkcs11:token=B;object=tree-{}-{}",
                alg.name(),
                id.name()
            ))
            .expect("uri");
            let held: HeldCaKey = (id, provider.generate(&uri, alg).expect("token key"));
            token.set_ca_key(held.0, held.1).expect("held");
            let soft: Arc<dyn CaSigningKey> = Arc::new(PrivateKey::generate(alg).expect("key"));
            software.set_ca_key(id, soft).expect("held");
        }
        // The leaf and kubeconfig keys are new in every iteration (as in init); only where the
        // CA keys sign differs.
        let now = OffsetDateTime::now_utc();
        g.bench_function(format!("{}/softhsm2", alg.name()), |b| {
            b.iter(|| build(&plan, &Selection::all(), &token, now).expect("build"))
        });
        g.bench_function(format!("{}/software", alg.name()), |b| {
            b.iter(|| build(&plan, &Selection::all(), &software, now).expect("build"))
        });
    }
    g.finish();
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let provider = provider();
        let mut c = Criterion::default().configure_from_args();
        sign(&mut c, &provider);
        issue(&mut c, &provider);
        tree(&mut c, &provider);
        c.final_summary();
        return;
    }
    let available = Path::new(MODULE).exists()
        && Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok();
    if !available {
        eprintln!("hsm bench skipped: SoftHSM2 is not installed ({MODULE}, softhsm2-util)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("token dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "B",
            "--pin",
            PIN,
            "--so-pin",
            "so-5678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .env("SOFTHSM2_CONF", &conf)
        .status()
        .expect("bench child");
    assert!(status.success(), "bench child failed: {status}");
}
