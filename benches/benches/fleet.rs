//! A fleet: N complete kubeadm trees for N different clusters (distinct cluster names, node
//! names and addresses), made through the library in memory (`decide` + `apply` into a
//! `Tree`, no file system) on all cores, for ECDSA-P256 and RSA-2048, N = 1, 10, 100; next to
//! "the limit", key generation and signing alone for the same work (16 keys and 15 signatures
//! of a ~1 KB TBSCertificate per tree) with the same parallelism. Criterion reports elements
//! per second, here trees per second; the ratio fleet / limit is what the rest (certificate
//! building, DER and PEM, kubeconfig YAML, the self-checks) costs.
//!
//! Parallelism, the same for both: one worker per core takes the next cluster from a shared
//! counter; inside a tree the 16 keys are made by `generate_many` (all cores), as `apply` does.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kubepki_keys::{KeyAlgorithm, generate_many};
use kubepki_kubeadm::{ClusterSpec, Plan, Selection, Tree, apply, decide};
use time::OffsetDateTime;

/// The spec of cluster `i` of a fleet: its own name, node name and address. Its folders are
/// never created: decide and apply read and write none.
fn spec(i: usize, alg: KeyAlgorithm) -> ClusterSpec {
    let mut s =
        ClusterSpec::with_advertise_address([10, (i / 250) as u8, (i % 250) as u8, 10].into());
    s.node_name = Some(format!("cp-{i}"));
    s.cluster_name = format!("cluster-{i}");
    s.encryption_algorithm = alg;
    let dir = std::path::PathBuf::from(format!("/nonexistent/kubepki-fleet/{i}"));
    s.cert_dir = dir.join("pki");
    s.kubeconfig_dir = dir;
    s
}

/// Runs `job(i)` for every `i < n` on one worker per core.
fn on_all_cores(n: usize, job: impl Fn(usize) + Sync) {
    let workers = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1)
        .min(n);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    job(i);
                }
            });
        }
    });
}

fn fleet(c: &mut Criterion) {
    let tbs = vec![0x5au8; 1024];
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let mut g = c.benchmark_group(format!("fleet/{}", alg.name()));
        // Ten samples of equal size: a sample of RSA-2048 x 100 trees takes about a minute.
        g.sample_size(10);
        g.sampling_mode(SamplingMode::Flat);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(match alg {
            KeyAlgorithm::Rsa2048 => 20,
            _ => 5,
        }));
        for n in [1usize, 10, 100] {
            g.throughput(Throughput::Elements(n as u64));
            let specs: Vec<ClusterSpec> = (0..n).map(|i| spec(i, alg)).collect();
            g.bench_function(format!("trees/{n}"), |b| {
                b.iter(|| {
                    on_all_cores(n, |i| {
                        let plan = Plan::new(&specs[i]).expect("plan");
                        let now = OffsetDateTime::now_utc();
                        let d =
                            decide(&plan, &Selection::all(), &Tree::new(), now).expect("decide");
                        let applied = apply(&plan, d).expect("apply");
                        assert_eq!(applied.files.len(), 27);
                    })
                })
            });
            g.bench_function(format!("limit/{n}"), |b| {
                b.iter(|| {
                    on_all_cores(n, |_| {
                        let keys = generate_many(&[alg; 16]).expect("keys");
                        // 15 signatures: 3 self-signed CAs, 7 leaves, 5 kubeconfig client
                        // certificates, each by one of the three CA keys.
                        for k in 0..15 {
                            keys[k % 3].sign(&tbs).expect("sign");
                        }
                    })
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, fleet);
criterion_main!(benches);
