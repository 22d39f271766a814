//! cargo-fuzz target `elf_plan`: see `umon_fuzz::elf_plan` and fuzz/README.md.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| umon_fuzz::elf_plan(data));
