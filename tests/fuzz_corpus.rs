//! Replays every committed fuzz corpus file and every regression input (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the fuzz target bodies (`fuzz_bodies.rs`), so a crash
//! the fuzzer once found stays fixed without libFuzzer in the loop.

use std::fs;
use std::path::Path;

use kubepki_interop::fuzz::TARGETS;

#[test]
fn every_corpus_and_regression_input_runs_clean() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, body) in TARGETS {
        let mut n = 0;
        for sub in ["corpus", "regressions"] {
            let dir = root.join(sub).join(name);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd {
                let p = e?.path();
                if p.is_file() {
                    body(&fs::read(&p)?);
                    n += 1;
                }
            }
        }
        assert!(n > 0, "no corpus for fuzz target {name}");
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
        total += n;
    }
    assert!(total >= 100, "only {total} corpus inputs");
    Ok(())
}
