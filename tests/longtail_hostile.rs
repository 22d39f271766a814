//! Hostile arguments to the long-tail calls (`tests/apps/longtail_calls.c hostile`), compared
//! with Linux in every C library variant: bad pointers, sizes, flags, fds and names for the
//! record locks, flock, getgroups, sysinfo, getrusage, times, prctl, sched_*, memfd_create,
//! the xattr family, membarrier, statfs, getpriority and ioprio. umon must answer Linux's
//! errno, never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{s, umon_run_cmd};
use common::require_kvm;
use std::path::PathBuf;
use threads_common::{assert_no_differences, c_thread_app, differences, status, variants};

fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("longtail_hostile", name)
}

#[test]
fn bad_pointers_sizes_flags_and_fds_get_linux_errnos() {
    if !require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("longtail_calls", v);
        let dir = scratch(&format!("{v:?}"));
        let args = ["hostile", s(&dir)];
        let linux = threads_common::native(&app, &args, threads_common::Stdin::Empty);
        assert_eq!(status(&linux), 0, "natively ({v:?}): {linux:?}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let volume = format!("{}:{}:rw", s(&dir), s(&dir));
        let umon = common::apps::run(
            &mut umon_run_cmd(&["--timeout", "60s", "-v", &volume], &app, &args),
            b"",
        );
        diffs.extend(differences(&format!("hostile ({v:?})"), &linux, &umon));
    }
    assert_no_differences(&diffs);
}
