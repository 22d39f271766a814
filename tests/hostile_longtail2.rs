//! Hostile arguments to the long-tail families, one C app each (`tests/apps/hostile_*.c`),
//! compared with Linux byte for byte in every C library variant: bad pointers (NULL, the kernel
//! half, non-canonical, pages without access, read-only pages for outputs), bad sizes, flags
//! and ids, objects of the wrong kind, and threads racing on one object. umon must answer
//! Linux's errnos, exit as the native run does, and never panic.
//!
//! Known differences, not compared (each app says where it leaves them out): an inotify read
//! of 0 bytes (EINVAL on Linux) and reads of an inotify into NULL or a page without access
//! (Linux dequeues the event and answers EFAULT, or EAGAIN with none); FIONREAD; a
//! signalfd read with a length past the user half (EFAULT on Linux: umon clamps the length
//! first); fallocate and sched_rr_get_interval (not served); PR_SET_TIMERSLACK (EINVAL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{s, umon_run_cmd};
use common::require_kvm;
use std::path::PathBuf;
use threads_common::{
    assert_no_differences, c_thread_app, differences, same_in_every_variant, status, variants,
    Stdin,
};

/// A fresh, empty directory for one run.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("hostile_longtail2", name)
}

/// `NAME MODE DIR` natively and under umon with DIR a read-write volume at the same path (a
/// fresh empty directory for each run), in every C variant; fails with every difference.
fn in_a_volume(name: &str, mode: &str) {
    if !require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app(name, v);
        let dir = scratch(&format!("{name}-{mode}-{v:?}"));
        let args = [mode, s(&dir)];
        let linux = threads_common::native(&app, &args, Stdin::Empty);
        let what = format!("{name} {mode} ({v:?})");
        assert_eq!(status(&linux), 0, "{what} natively: {linux:?}");
        let text = String::from_utf8_lossy(&linux.stdout);
        assert!(!text.contains("FAIL"), "{what} natively:\n{text}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let volume = format!("{}:{}:rw", s(&dir), s(&dir));
        let umon = common::apps::run(
            &mut umon_run_cmd(
                &["--timeout", threads_common::UMON_TIMEOUT, "-v", &volume],
                &app,
                &args,
            ),
            b"",
        );
        diffs.extend(differences(&what, &linux, &umon));
    }
    assert_no_differences(&diffs);
}

#[test]
fn timers_bad_pointers_values_ids_and_deleted_timers() {
    same_in_every_variant("hostile_timers", &["calls"], Stdin::Empty, 0);
}

#[test]
fn timers_deleted_while_other_threads_arm_them() {
    same_in_every_variant("hostile_timers", &["race"], Stdin::Empty, 0);
}

#[test]
fn inotify_bad_masks_paths_fds_and_reads() {
    in_a_volume("hostile_inotify", "calls");
}

#[test]
fn inotify_closed_while_read_and_watched() {
    in_a_volume("hostile_inotify", "race");
}

#[test]
fn memfd_bad_flags_names_seals_and_io() {
    same_in_every_variant("hostile_memfd", &["calls"], Stdin::Empty, 0);
}

#[test]
fn memfd_sealed_while_another_thread_writes() {
    same_in_every_variant("hostile_memfd", &["race"], Stdin::Empty, 0);
}

#[test]
fn signalfd_bad_buffers_sizes_fds_and_calls() {
    same_in_every_variant("hostile_signalfd", &["calls"], Stdin::Empty, 0);
}

#[test]
fn signalfd_closed_or_changed_while_read() {
    same_in_every_variant("hostile_signalfd", &["race"], Stdin::Empty, 0);
}

#[test]
fn xattr_and_chown_bad_paths_names_sizes_flags_and_fds() {
    in_a_volume("hostile_attrs", "calls");
}

#[test]
fn sched_priority_prctl_rusage_membarrier_and_lock_bad_arguments() {
    in_a_volume("hostile_info", "calls");
}
