//! Linux's mmap semantics over umon's address space (issue 13 step 5 and the page-table-free
//! parts of step 9), compared with Linux: each test runs one section of `tests/apps/mm_semantics.c`
//! (glibc static-pie, glibc static, musl static) natively and under umon, and stdout, stderr and
//! the exit status must agree byte for byte. The app prints only deterministic facts: errno
//! names, contents, and addresses relative to the ones involved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use threads_common::Stdin;

fn section(name: &str) {
    same_in_every_variant("mm_semantics", &[name], Stdin::Empty, 0);
}

/// MAP_FIXED over memory brk handed out (musl's malloc guard page), NOREPLACE there, and brk
/// growing past, shrinking over and growing back over those mappings.
#[test]
fn mmap_fixed_over_brk() {
    section("fixed_over_brk");
}

/// A free hint is honoured (an unaligned one rounded down to its page); a taken one is not.
#[test]
fn mmap_hint() {
    section("hint");
}

/// MAP_FIXED_NOREPLACE: EEXIST over a mapping, EINVAL unaligned first, exact when free.
#[test]
fn fixed_noreplace() {
    section("noreplace");
}

/// mprotect and munmap split mappings (mremap cannot cross the pieces; protections hold for
/// the kernel's own copies), merge back, and stop at holes as Linux does; PROT_GROWSDOWN.
#[test]
fn munmap_mprotect_split() {
    section("split");
}

/// mremap: grow in place, shrink, blocked, move with contents, FIXED over a mapping,
/// DONTUNMAP, a page of the image, and the errors.
#[test]
fn mremap_grow_shrink_move() {
    section("remap");
}

/// madvise: DONTNEED zeroes anonymous memory (arena and main stack), FREE and WILLNEED
/// accepted, REMOVE on shared anonymous memory, holes ENOMEM.
#[test]
fn madvise_dontneed_zeroes() {
    section("dontneed");
}

/// mincore on touched pages, holes, unaligned starts, bad vectors, huge lengths.
#[test]
fn mincore_answers() {
    section("mincore");
}

/// msync's checks: flags, alignment, holes (MS_ASYNC stops at the first), wrap-around.
#[test]
fn msync_errors() {
    section("msync");
}

/// mlock, mlock2, munlock, mlockall, munlockall and MAP_LOCKED: accepted, recorded (locked
/// memory refuses MADV_DONTNEED and MS_INVALIDATE as on Linux), holes ENOMEM, bad flags EINVAL.
#[test]
fn mlock_family() {
    section("mlock");
}

/// EINVAL for unaligned addresses and bad flags, ENOMEM for holes and huge lengths.
#[test]
fn mm_error_cases() {
    section("errors");
}
