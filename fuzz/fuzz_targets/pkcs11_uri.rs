//! Fuzz target `pkcs11_uri`: see `tests/fuzz_bodies.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kubepki_interop::fuzz::pkcs11_uri(data));
