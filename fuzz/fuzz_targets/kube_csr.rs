//! Fuzz target `kube_csr`: see `tests/fuzz_bodies.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kubepki_interop::fuzz::kube_csr(data));
