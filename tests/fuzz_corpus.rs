//! Replays every committed seed and regression input (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`), and the locally grown corpus `fuzz/corpus/<target>/` where one
//! exists (it is not in git), through the fuzz target bodies (`fuzz_bodies.rs`), so a crash the
//! fuzzer once found stays fixed without libFuzzer in the loop. Both tests run the bodies on a
//! thread with a fixed stack, so that `RUST_MIN_STACK` cannot hide a stack overflow.

use std::fs;
use std::path::Path;

use kubepki_interop::fuzz::TARGETS;

type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The stack Rust gives a spawned thread by default, and so a `cargo test` thread.
const THREAD_STACK: usize = 2 << 20;

/// Runs `f` on a thread with `stack` bytes of stack. A stack overflow aborts the whole process.
fn on_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> R<T> {
    let handle = std::thread::Builder::new().stack_size(stack).spawn(f)?;
    handle
        .join()
        .map_err(|_| "a fuzz body panicked on this thread".into())
}

#[test]
fn every_corpus_and_regression_input_runs_clean() -> R {
    on_stack(THREAD_STACK, replay_everything)?
}

fn replay_everything() -> R {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, body) in TARGETS {
        // Inputs from committed files (seeds, regressions), and from the local corpus.
        let (mut committed, mut local) = (0, 0);
        for sub in ["seeds", "regressions", "corpus"] {
            let dir = root.join(sub).join(name);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd {
                let p = e?.path();
                if p.is_file() {
                    body(&fs::read(&p)?);
                    *(if sub == "corpus" {
                        &mut local
                    } else {
                        &mut committed
                    }) += 1;
                }
            }
        }
        assert!(committed > 0, "no committed seed for fuzz target {name}");
        // Regression inputs must also be fast: the YAML bomb took 6.5 s before the budget.
        for e in fs::read_dir(root.join("regressions").join(name))
            .into_iter()
            .flatten()
            .flatten()
        {
            let data = fs::read(e.path())?;
            let start = std::time::Instant::now();
            body(&data);
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{} took {:?}",
                e.path().display(),
                start.elapsed()
            );
        }
        total += committed;
        eprintln!("{name}: {committed} committed inputs, {local} from fuzz/corpus");
    }
    assert!(total >= 100, "only {total} committed inputs");
    Ok(())
}

/// The deepest YAML that the parser budget lets through (`kubepki_csr::yaml::MAX_DEPTH`), in every
/// nesting shape, fits in half a default thread stack even in this debug build: the deserializer
/// recurses once per level, and a complex key (`? `) is the dearest level, about 40 KiB here.
/// The fuzzer found 51 nested complex keys that overflowed 2 MiB when the cap was 64.
#[test]
fn the_deepest_yaml_allowed_fits_in_half_a_thread_stack() -> R {
    use kubepki_interop::fuzz::{inspect, kubeadm_config, kubeconfig};
    let cap = kubepki_csr::yaml::MAX_DEPTH;
    // Every shape at every depth up to one level past the cap.
    let shapes = |n: usize| {
        [
            format!("[{}1{}]", "[".repeat(n - 1), "]".repeat(n - 1)),
            format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)),
            (0..n)
                .map(|i| format!("\n{}-", "  ".repeat(i + 1)))
                .collect::<String>()
                + " 1",
            format!("\n  {}b", "? ".repeat(n)),
            format!("\n  {}b", "? - ".repeat(n.div_ceil(2))),
        ]
        .map(|v| format!("apiVersion: v1\nkind: Config\njunk: {v}\n"))
    };
    let inputs: Vec<String> = (1..=cap + 1).flat_map(shapes).collect();
    // `inspect` runs the manifest reader too.
    on_stack(THREAD_STACK / 2, move || {
        for text in &inputs {
            for body in [kubeconfig, kubeadm_config, inspect] {
                body(text.as_bytes());
            }
        }
    })?;
    // The cap is really applied to each shape: one level past it is refused.
    for text in shapes(cap + 1) {
        let e = kubepki_kubeadm::Kubeconfig::from_slice(Path::new("deep.conf"), text.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains(&format!("nest deeper than {cap} levels")),
            "{e}\n{text}"
        );
    }
    Ok(())
}
