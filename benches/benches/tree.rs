//! The whole kubeadm tree (`init`: 16 keys, 15 certificates, 5 kubeconfigs, 27 fsynced files)
//! per algorithm, next to key generation alone for the same 16 keys so the share of everything
//! that is not key generation can be read off; and the read-only commands on a full tree
//! (`check_expiration`, `verify`, a dry run).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kubepki_keys::{KeyAlgorithm, generate_many};
use kubepki_kubeadm::{ClusterSpec, Plan, Selection, check_expiration, run, verify};
use time::OffsetDateTime;

fn spec(dir: &std::path::Path, alg: KeyAlgorithm) -> ClusterSpec {
    let mut s = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    s.node_name = Some("cp1".into());
    s.encryption_algorithm = alg;
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir.to_owned();
    s
}

fn tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree");
    g.sample_size(10);
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::EcdsaP256,
    ] {
        g.bench_function(format!("generate_many_16/{}", alg.name()), |b| {
            b.iter(|| generate_many(&[alg; 16]).expect("keys"))
        });
        g.bench_function(format!("init/{}", alg.name()), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let plan = Plan::new(&spec(dir.path(), alg)).expect("plan");
                    let r = run(&plan, &Selection::all(), OffsetDateTime::now_utc(), false)
                        .expect("init");
                    assert_eq!(r.written.len(), 27);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn read_only(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), KeyAlgorithm::Rsa2048);
    let plan = Plan::new(&s).expect("plan");
    run(&plan, &Selection::all(), OffsetDateTime::now_utc(), false).expect("init");
    let mut g = c.benchmark_group("read_only");
    g.bench_function("check_expiration", |b| {
        b.iter(|| check_expiration(&s, OffsetDateTime::now_utc()))
    });
    g.bench_function("verify", |b| {
        b.iter(|| assert!(verify(&plan, OffsetDateTime::now_utc()).passed()))
    });
    g.bench_function("dry_run", |b| {
        b.iter(|| run(&plan, &Selection::all(), OffsetDateTime::now_utc(), true).expect("dry run"))
    });
    g.finish();
}

criterion_group!(benches, tree, read_only);
criterion_main!(benches);
