//! The whole kubeadm tree (`init`: 16 keys, 15 certificates, 5 kubeconfigs, 27 fsynced files)
//! per algorithm, next to key generation alone for the same 16 keys so the share of everything
//! that is not key generation can be read off; and the read-only commands on a full tree
//! (`check_expiration`, `verify`, a dry run). `sinks` puts the in-memory step (decide + apply,
//! no file system) next to the same ECDSA-P256 tree through the folder sink (apply +
//! `write_folder` into a fresh folder) and `write_folder` alone, so the fsync share of `init`
//! can be read off.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kubepki_keys::{KeyAlgorithm, generate_many};
use kubepki_kubeadm::{
    ClusterSpec, Plan, Selection, Tree, apply, check_expiration, decide, init_tree, verify,
    write_folder,
};
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
                    let r = init_tree(&plan, &Selection::all(), OffsetDateTime::now_utc(), false)
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
    init_tree(&plan, &Selection::all(), OffsetDateTime::now_utc(), false).expect("init");
    let mut g = c.benchmark_group("read_only");
    g.bench_function("check_expiration", |b| {
        b.iter(|| check_expiration(&s, OffsetDateTime::now_utc()))
    });
    g.bench_function("verify", |b| {
        b.iter(|| assert!(verify(&plan, OffsetDateTime::now_utc()).passed()))
    });
    g.bench_function("dry_run", |b| {
        b.iter(|| {
            init_tree(&plan, &Selection::all(), OffsetDateTime::now_utc(), true).expect("dry run")
        })
    });
    g.finish();
}

/// The ECDSA-P256 tree in memory (decide + apply into a `Tree`, nothing touches a folder) next
/// to the same tree through the folder sink (decide + apply + `write_folder` into a fresh temp
/// folder each iteration: journal, links, fsyncs).
fn sinks(c: &mut Criterion) {
    let alg = KeyAlgorithm::EcdsaP256;
    let mut g = c.benchmark_group("sinks");
    g.sample_size(20);
    // The folders of this plan are never created: decide and apply read and write none.
    let mem_plan = Plan::new(&spec(
        std::path::Path::new("/nonexistent/kubepki-bench"),
        alg,
    ))
    .expect("plan");
    g.bench_function(format!("in_memory/{}", alg.name()), |b| {
        b.iter(|| {
            let now = OffsetDateTime::now_utc();
            let d = decide(&mem_plan, &Selection::all(), &Tree::new(), now).expect("decide");
            let applied = apply(&mem_plan, d).expect("apply");
            assert_eq!(applied.files.len(), 27);
            applied
        })
    });
    g.bench_function(format!("folder_sink/{}", alg.name()), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let plan = Plan::new(&spec(dir.path(), alg)).expect("plan");
                (dir, plan)
            },
            |(dir, plan)| {
                let now = OffsetDateTime::now_utc();
                let d = decide(&plan, &Selection::all(), &Tree::new(), now).expect("decide");
                let applied = apply(&plan, d).expect("apply");
                let written = write_folder(&plan, &applied.files).expect("write");
                assert_eq!(written.len(), 27);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    // The folder sink alone: the tree is made in the setup, only `write_folder` is timed.
    g.bench_function(format!("write_folder_only/{}", alg.name()), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let plan = Plan::new(&spec(dir.path(), alg)).expect("plan");
                let d = decide(
                    &plan,
                    &Selection::all(),
                    &Tree::new(),
                    OffsetDateTime::now_utc(),
                )
                .expect("decide");
                let files = apply(&plan, d).expect("apply").files;
                (dir, plan, files)
            },
            |(dir, plan, files)| {
                assert_eq!(write_folder(&plan, &files).expect("write").len(), 27);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, tree, read_only, sinks);
criterion_main!(benches);
