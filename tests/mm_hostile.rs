//! Hostile address-space use (`tests/apps/mm_hostile.c`), compared with Linux byte for byte:
//! huge and wrapping lengths for every memory call, 100k map/mprotect/unmap cycles (the
//! monitor's bookkeeping must stay bounded: the count of mappings is what it keeps), and a
//! fragmentation storm that splits one mapping page by page until vm.max_map_count's ENOMEM,
//! after which whole pieces still unmap and new mappings still work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::Link;
use common::require_kvm;
use threads_common::{assert_no_differences, c_thread_app, compare, Stdin, Variant};

fn hostile(section: &str) {
    if !require_kvm() {
        return;
    }
    let app = c_thread_app("mm_hostile", Variant::Glibc(Link::StaticPie));
    let diffs = compare(
        &format!("mm_hostile {section}"),
        &app,
        &[section],
        Stdin::Empty,
        0,
    );
    assert_no_differences(&diffs);
}

/// Lengths of 2^64-1, -4096, -4097, 2^62 and 2^47 to mmap, MAP_FIXED, munmap, mremap, madvise,
/// mincore, msync, mlock, munlock, mprotect; addresses past the user half.
#[test]
fn huge_lengths_answer_as_linux() {
    hostile("huge");
}

/// 30k cycles of mmap (1..7 pages), mprotect of every third, munmap: none fails.
#[test]
fn map_unmap_cycles() {
    hostile("cycles");
}

/// Split one mapping page by page until ENOMEM (within vm.max_map_count); at the limit a
/// split fails and an unmap that would split fails; unmapping it all then mapping works.
#[test]
fn fragmentation_storm_stops_at_max_map_count() {
    hostile("storm");
}
