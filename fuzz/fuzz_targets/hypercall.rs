//! cargo-fuzz target `hypercall`: see `umon_fuzz::hypercall` and fuzz/README.md.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umon_fuzz::hypercall(data));
