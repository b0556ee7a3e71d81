//! Benchmarks only: see `benches/` (run with `cargo bench -p kubepki-benches`).
#![forbid(unsafe_code)]
