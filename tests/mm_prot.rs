//! Page protections enforced in the page tables (issue 13 step 6): `tests/apps/mm_prot.c`
//! (glibc static-pie, glibc static, musl static) run natively and under umon; its own loads,
//! stores and calls must fault, or not, exactly as on Linux, with the same si_code and si_addr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use threads_common::Stdin;

/// `mm_prot ARGS` in every variant: same output and status as Linux.
fn same_as_linux(args: &[&str]) {
    same_in_every_variant("mm_prot", args, Stdin::Empty, 0);
}

#[test]
fn mprotect_none_faults() {
    same_as_linux(&["none"]);
}

#[test]
fn jit_rwx() {
    same_as_linux(&["jit"]);
}

#[test]
fn munmap_faults() {
    same_as_linux(&["unmap"]);
}

#[test]
fn read_only_page_write_is_segv_accerr() {
    same_as_linux(&["ro"]);
}

/// 10k mprotect/access cycles and 1k munmap/mmap cycles, the faults counted by kind.
#[test]
fn mprotect_stress() {
    same_as_linux(&["stress", "10000"]);
}

/// The same rules with several threads (vCPUs) changing mappings at once: three threads each
/// run the stress on their own pages while the main thread changes a page that a fourth
/// touches after every change, then runs threads on stacks it maps and unmaps each time.
#[test]
fn mprotect_stress_threaded() {
    same_as_linux(&["threads", "3000"]);
}

/// MAP_GROWSDOWN: a fault below grows the mapping, the guard gap to an accessible mapping
/// below stops it (a PROT_NONE one does not), RLIMIT_STACK bounds it and new mappings keep
/// out of the gap; sizes from /proc/self/maps.
#[test]
fn growsdown_grows_to_a_fault_below_it() {
    same_as_linux(&["grows"]);
}
