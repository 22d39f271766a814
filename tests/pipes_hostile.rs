//! Hostile arguments to pipe, pipe2, read/write/readv/writev on pipes, FIONREAD, F_SETPIPE_SZ,
//! splice, tee and vmsplice, compared with Linux: `tests/apps/pipe_hostile.c` in every C
//! variant, natively and under umon, byte for byte. Bad fd arrays leave no fd open; bad
//! buffers, iovecs, offsets, lengths and flags fail as Linux's do, in Linux's order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use std::process::Command;
use threads_common::{
    assert_no_differences, c_thread_app, differences, same_in_every_variant, status, under_umon,
    variants, Stdin,
};

fn everywhere(mode: &str) {
    same_in_every_variant("pipe_hostile", &[mode], Stdin::Empty, 0);
}

#[test]
fn bad_fd_arrays_fault_and_leave_no_fd_open() {
    everywhere("fdarray");
}

#[test]
fn pipe2_takes_only_cloexec_nonblock_and_direct() {
    everywhere("flags");
}

#[test]
fn bad_buffers_counts_and_iovecs_on_pipes_fail_as_linux() {
    everywhere("rw");
}

#[test]
fn absurd_pipe_sizes_are_refused() {
    everywhere("sizes");
}

#[test]
fn splice_and_tee_with_bad_fds_offsets_lengths_and_flags_fail_as_linux() {
    everywhere("splice");
}

#[test]
fn vmsplice_with_bad_iovecs_counts_and_flags_fails_as_linux() {
    everywhere("vmsplice");
}

/// The application has no CAP_SYS_RESOURCE: growing a pipe past pipe-max-size (1 MiB) is
/// EPERM. Compared with the same program run natively as an unprivileged user (nobody).
#[test]
fn growing_a_pipe_past_pipe_max_size_is_eperm_as_for_an_unprivileged_process() {
    if !common::require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("pipe_hostile", v);
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&app)
            .arg("perm")
            .env_clear();
        let linux = common::apps::run(&mut cmd, b"");
        assert_eq!(status(&linux), 0, "natively as nobody: {linux:?}");
        let umon = under_umon(&app, &["perm"], Stdin::Empty);
        diffs.extend(differences(&format!("perm ({v:?})"), &linux, &umon));
    }
    assert_no_differences(&diffs);
}
