//! Linux conformance of the read/write/lseek/ioctl dispatch (src/linux/io.rs): small gaps found
//! by comparing with Linux, each checked by tests/apps/io_conf.c against the native run, line
//! by line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{c_app, native, s, umon_run, Link};
use common::{stderr, stdout};
use std::path::PathBuf;

/// A fresh, empty directory for one run.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("io_conformance", name)
}

/// Run `io_conf MODE` natively and under umon (both link modes): the same lines.
fn same_as_linux(mode: &str) {
    same_as_linux_in(mode, false);
}

/// [`same_as_linux`], with a fresh directory as the last argument when `dir` (under umon a
/// read-write volume at the same path).
fn same_as_linux_in(mode: &str, dir: bool) {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("io_conf", link);
        let place = scratch(&format!("{mode}-{link:?}"));
        let volume = format!("{}:{}:rw", s(&place), s(&place));
        let (args, opts): (Vec<&str>, Vec<&str>) = if dir {
            (vec![mode, s(&place)], vec!["-v", &volume])
        } else {
            (vec![mode], vec![])
        };
        let linux = native(&app, &args, &[], b"");
        assert!(linux.status.success(), "native: {}", stderr(&linux));
        let umon = umon_run(&opts, &app, &args, b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        assert_eq!(stdout(&umon), stdout(&linux), "{mode} ({link:?})");
    }
}

/// pread/pwrite/lseek on the synthetic /proc and /dev files: positioned reads as a seq file's
/// (EOF far out, the offset untouched), seq_lseek (no SEEK_END), pwrite ESPIPE on seq files,
/// the memory devices' lseek always 0.
#[test]
fn synthetic_files_take_positioned_calls_and_lseek() {
    same_as_linux("synth");
}

/// The count is address-checked whole before MAX_RW_COUNT cuts it: a small buffer with a count
/// past the user half is EFAULT, EBADF still first.
#[test]
fn the_whole_count_is_address_checked() {
    same_as_linux("count");
}

/// inotify: a zero-length read waits for an event (EAGAIN without one, non-blocking) and then
/// is EINVAL; FIONREAD answers the bytes queued.
#[test]
fn inotify_zero_reads_and_fionread() {
    same_as_linux_in("inotify", true);
}

/// access(2) on /dev/tty: a 0666 node, writable (it was EACCES for W_OK).
#[test]
fn dev_tty_is_writable_for_access() {
    same_as_linux("access");
}

/// The terminal's foreground group and session (on a pseudo-terminal from `script`, as
/// tests/sysview.rs does): the process's own, tcsetpgrp to it succeeds, to a group that does
/// not exist is ESRCH; ENOTTY on what is not a terminal.
#[test]
fn terminal_process_group_and_session() {
    if !common::require_kvm() || !threads_common::tool_present("script", "bsdutils") {
        return;
    }
    let on_pty = |cmd: String| common::on_pty(&cmd);
    for link in Link::RUNNABLE {
        let app = c_app("io_conf", link);
        let linux = on_pty(format!("{} pgrp", s(&app)));
        let umon = on_pty(format!(
            "{} run {} pgrp",
            env!("CARGO_BIN_EXE_umon"),
            s(&app)
        ));
        assert!(linux.contains("foreground group is own: yes"), "{linux}");
        assert_eq!(umon, linux, "{link:?}");
    }
}

/// fallocate: the modes reach the volume's file (size grows or not, a punched hole reads 0),
/// and Linux's argument and object checks come first (EOPNOTSUPP, EINVAL, EBADF, ESPIPE,
/// ENODEV, EFBIG).
#[test]
fn fallocate_on_volume_files_and_other_objects() {
    same_as_linux_in("falloc", true);
}

/// sched_rr_get_interval of a SCHED_OTHER thread (what the native run reports), EINVAL,
/// ESRCH, EFAULT.
#[test]
fn sched_rr_get_interval_of_a_fair_thread() {
    same_as_linux("rr");
}

/// `--trace` shows pipe/pipe2's fd array as strace does (`pipe2([3, 4], O_CLOEXEC) = 0`): the
/// pipe lines of `umon run --trace` are strace's for the native run.
#[test]
fn trace_shows_the_pipe_fds_as_strace() {
    if !common::require_kvm() || !threads_common::tool_present("strace", "strace") {
        return;
    }
    let pipe_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("pipe"))
            // strace pads to a column before " = ".
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    for link in Link::RUNNABLE {
        let app = c_app("io_conf", link);
        let linux = common::apps::run(
            std::process::Command::new("strace").args(["-e", "trace=pipe,pipe2", s(&app), "pipes"]),
            b"",
        );
        let umon = umon_run(&["--trace"], &app, &["pipes"], b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        let want = pipe_lines(&stderr(&linux));
        assert_eq!(want.len(), 5, "{}", stderr(&linux));
        assert_eq!(pipe_lines(&stderr(&umon)), want, "{link:?}");
    }
}
