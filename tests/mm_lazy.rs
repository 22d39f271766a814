//! Lazily mapped memory (issue 13 steps 7-9): `tests/apps/mm_lazy.c` natively and under umon
//! with a small `-m`. Reservations far larger than `-m` cost nothing, frames come at first
//! touch and go back at munmap/MADV_DONTNEED, a private writable mapping larger than `-m` is
//! ENOMEM (Linux's heuristic overcommit), and touching more than `-m` ends the application as
//! Linux's OOM killer would (SIGKILL, 137) with one line that says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{c_app, native, umon_run, Link};
use std::process::Output;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `mm_lazy ARGS` under umon with `-m MEM` (and stdin).
fn under(mem: &str, args: &[&str], stdin: &[u8]) -> Output {
    let app = c_app("mm_lazy", Link::StaticPie);
    umon_run(&["--timeout", "120s", "-m", mem], &app, args, stdin)
}

/// `mm_lazy ARGS` under umon at `-m MEM` and natively (both linkings): the same output, status 0.
fn same_as_linux(mem: &str, args: &[&str], stdin: &[u8]) {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("mm_lazy", link);
        let linux = native(&app, args, &[], stdin);
        assert_eq!(
            linux.status.code(),
            Some(0),
            "{args:?} natively: {}",
            text(&linux.stdout)
        );
        let umon = umon_run(&["--timeout", "120s", "-m", mem], &app, args, stdin);
        assert_eq!(
            text(&umon.stdout),
            text(&linux.stdout),
            "{args:?} at -m {mem} ({link:?}); umon's stderr: {}",
            text(&umon.stderr)
        );
        assert_eq!(umon.status.code(), Some(0), "{}", text(&umon.stderr));
        assert!(umon.stderr.is_empty(), "{}", text(&umon.stderr));
    }
}

#[test]
fn reserve_4g_prot_none_at_64m() {
    same_as_linux("64M", &["reserve"], b"");
}

/// Go >= 1.20's start: a 1.2 GiB PROT_NONE arena reservation, then 64 MiB pieces of it made
/// read-write with MAP_FIXED and used.
#[test]
fn go_style_arena_at_256m() {
    same_as_linux("256M", &["go"], b"");
}

#[test]
fn madvise_dontneed_zeroes_and_mincore_follows() {
    same_as_linux("64M", &["dontneed"], b"");
}

/// The monitor's own write into a page never touched (read(2) into a fresh lazy mapping)
/// populates it, as Linux's uaccess faults it in; a write(2) from an untouched page works.
#[test]
fn read_into_a_lazy_mapping() {
    same_as_linux("64M", &["read"], b"into a lazy mapping");
}

/// munmap gives the frames back: 60 cycles of mmap/touch/munmap of 16 MiB touch 960 MiB in
/// all, fifteen times what `-m 64M` holds.
#[test]
fn munmap_remap_cycles_do_not_leak() {
    same_as_linux("64M", &["cycles", "60", "16"], b"");
}

#[test]
fn mapping_larger_than_memory_is_enomem() {
    if !common::require_kvm() {
        return;
    }
    let out = under("64M", &["big", "1024"], b"");
    assert_eq!(
        text(&out.stdout),
        "rw private: ENOMEM\nrw noreserve: ok\nnone: ok\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn touching_more_than_memory_is_killed_like_the_oom_killer() {
    if !common::require_kvm() {
        return;
    }
    let out = under("128M", &["touch", "256"], b"");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("umon: app killed by SIGKILL: out of memory") && err.contains("-m"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("touched"));
}

/// The Go program of the thread tests at `-m 256M`, where its start-up reservations exceed
/// guest RAM: the same output as natively.
#[test]
fn go_program_at_256m() {
    if !common::require_kvm() || !threads_common::tool_present("go", "golang-go") {
        return;
    }
    let app = threads_common::go_app();
    let linux = native(&app, &["threads"], &[], b"");
    assert_eq!(linux.status.code(), Some(0));
    let umon = umon_run(
        &["--timeout", "120s", "-m", "256M"],
        &app,
        &["threads"],
        b"",
    );
    assert_eq!(
        text(&umon.stdout),
        text(&linux.stdout),
        "{}",
        text(&umon.stderr)
    );
    assert_eq!(umon.status.code(), Some(0), "{}", text(&umon.stderr));
}
