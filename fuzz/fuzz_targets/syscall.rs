//! cargo-fuzz target `syscall`: see `umon_fuzz::syscall` and fuzz/README.md.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umon_fuzz::syscall(data));
