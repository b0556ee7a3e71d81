//! CA rotation (docs/rotation.md): each phase on a whole tree through the folders (`rotate`:
//! read, decide, make, one crash-safe batch), for RSA-2048 and ECDSA-P256, next to `init` of
//! the same tree in the same run. `reissue` makes a new key for every leaf and kubeconfig (15,
//! plus the new CA keys made at `start`), so it should cost about what `init` costs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    ClusterSpec, Plan, RotateOptions, RotationPhase, Selection, init_tree, rotate,
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

/// A tree at the stage before `phase` (init, then the phases before it), in a fresh folder.
fn tree_before(alg: KeyAlgorithm, phase: RotationPhase) -> (tempfile::TempDir, ClusterSpec) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(dir.path(), alg);
    let now = OffsetDateTime::now_utc();
    init_tree(&Plan::new(&s).expect("plan"), &Selection::all(), now, false).expect("init");
    let opts = RotateOptions::default();
    for p in [RotationPhase::Start, RotationPhase::Reissue] {
        if p >= phase {
            break;
        }
        rotate(&s, p, &opts, now).expect("earlier phase");
    }
    (dir, s)
}

fn rotation(c: &mut Criterion) {
    let mut g = c.benchmark_group("rotation");
    g.sample_size(10);
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        g.bench_function(format!("init/{}", alg.name()), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let plan = Plan::new(&spec(dir.path(), alg)).expect("plan");
                    init_tree(&plan, &Selection::all(), OffsetDateTime::now_utc(), false)
                        .expect("init");
                    dir
                },
                BatchSize::PerIteration,
            )
        });
        for phase in [
            RotationPhase::Start,
            RotationPhase::Reissue,
            RotationPhase::Finish,
        ] {
            g.bench_function(format!("{phase}/{}", alg.name()), |b| {
                b.iter_batched(
                    || tree_before(alg, phase),
                    |(dir, s)| {
                        let r = rotate(
                            &s,
                            phase,
                            &RotateOptions::default(),
                            OffsetDateTime::now_utc(),
                        )
                        .expect("phase");
                        assert!(!r.unchanged());
                        dir
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, rotation);
criterion_main!(benches);
