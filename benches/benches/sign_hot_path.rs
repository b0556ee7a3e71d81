//! Signing hot path: a preloaded key signs a realistic ~1 KB TBSCertificate, for every
//! algorithm; full leaf issuance (build TBS, sign, DER, PEM) with an RSA-3072 CA; and issuance
//! from a PEM CSR (parse, verify its signature, issue).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubepki_ca::{CaExpiry, CaSpec, CertificateAuthority, IssueSpec, Profile, Window};
use kubepki_csr::{ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::{Duration, OffsetDateTime};

fn sign(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign_hot_path");
    g.throughput(Throughput::Elements(1));
    let tbs = vec![0x5au8; 1024];
    for alg in KeyAlgorithm::ALL {
        let key = PrivateKey::generate(alg).expect("key");
        g.bench_function(alg.name(), |b| b.iter(|| key.sign(&tbs).expect("sign")));
    }
    g.finish();
}

fn issue_leaf(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::Rsa3072).expect("ca key"),
    )
    .expect("ca");
    let subject_key = PrivateKey::generate(KeyAlgorithm::Rsa3072).expect("leaf key");
    let san = SubjectAltNames {
        dns: [
            "cp1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from)
        .to_vec(),
        ips: vec![
            "10.96.0.1".parse().expect("ip"),
            "192.168.1.10".parse().expect("ip"),
        ],
        ..SubjectAltNames::default()
    };
    let spec = IssueSpec::new(
        Subject::cn("kube-apiserver"),
        subject_key.public_key_der(),
        Window::kubeadm(now, Duration::hours(8760)),
        CaExpiry::Refuse,
    )
    .with_ext_key_usage(vec![ExtKeyUsage::ServerAuth])
    .with_subject_alt_names(san);
    let mut g = c.benchmark_group("issue_leaf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("RSA-3072", |b| {
        b.iter(|| ca.issue(&spec).expect("issue").to_pem())
    });
    g.finish();
}

fn issue_from_csr(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::create_root(
        &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
        PrivateKey::generate(KeyAlgorithm::Rsa3072).expect("ca key"),
    )
    .expect("ca");
    let key = PrivateKey::generate(KeyAlgorithm::Rsa3072).expect("key");
    let pem = kubepki_csr::CsrBuilder::new(Subject::cn("jane").with_organizations(["dev", "ops"]))
        .sign(&key)
        .expect("csr")
        .to_pem();
    let mut g = c.benchmark_group("issue_from_csr");
    g.throughput(Throughput::Elements(1));
    g.bench_function("RSA-3072", |b| {
        b.iter(|| {
            let csr = kubepki_csr::Csr::from_pem(pem.as_bytes()).expect("parse + verify");
            ca.issue_from_csr(
                &csr,
                Profile::Client,
                Window::kubeadm(now, Duration::hours(8760)),
                CaExpiry::Clamp,
            )
            .expect("issue")
            .to_pem()
        })
    });
    g.finish();
}

criterion_group!(benches, sign, issue_leaf, issue_from_csr);
criterion_main!(benches);
