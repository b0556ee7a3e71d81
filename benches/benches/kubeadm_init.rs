//! The whole kubeadm tree (`kubepki init`: 16 keys, 15 certificates, 5 kubeconfigs, 27 files
//! fsynced) against key generation alone for the same 16 keys, so the share of everything that
//! is not key generation can be read off directly. Also the dry run (planning and disk checks).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use kubepki_keys::{KeyAlgorithm, generate_many};
use kubepki_kubeadm::{ClusterSpec, Plan, Selection, run};
use time::OffsetDateTime;

fn tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("kubeadm_init");
    g.sample_size(10);
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        g.bench_function(format!("generate_many_16/{}", alg.name()), |b| {
            b.iter(|| generate_many(&[alg; 16]).expect("keys"))
        });
        g.bench_function(format!("init_tree/{}", alg.name()), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let mut s = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
                    s.node_name = Some("cp1".into());
                    s.encryption_algorithm = alg;
                    s.cert_dir = dir.path().join("pki");
                    s.kubeconfig_dir = dir.path().to_owned();
                    let plan = Plan::new(&s).expect("plan");
                    let r = run(&plan, &Selection::all(), OffsetDateTime::now_utc(), false)
                        .expect("init");
                    assert_eq!(r.written.len(), 27);
                    dir
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = ClusterSpec::with_advertise_address([192, 0, 2, 10].into());
    s.node_name = Some("cp1".into());
    s.cert_dir = dir.path().join("pki");
    s.kubeconfig_dir = dir.path().to_owned();
    g.bench_function("dry_run", |b| {
        b.iter(|| {
            let plan = Plan::new(&s).expect("plan");
            run(&plan, &Selection::all(), OffsetDateTime::now_utc(), true).expect("dry run")
        })
    });
    g.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
