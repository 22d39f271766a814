//! Hostile uses of the synthetic `/proc` and `/dev` files (issue 14): bad and kernel
//! pointers, buffers that end in a page without access, reads of zero bytes, negative pread
//! offsets, writes to read-only descriptors, getdents64 with buffers down to one record and
//! below, and names Linux's /proc does not accept ("00", "+1", "-1", past i32::MAX).
//! tests/apps/sv_hostile.c prints one line per case with errno names: compared with the
//! native run, except what only an unprivileged user sees (opening /proc files for writing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{native, umon_run};
use common::{stderr, stdout};
use threads_common::{c_thread_app, variants};

#[test]
fn bad_buffers_writes_tiny_getdents_and_odd_names_answer_as_linux() {
    if !common::require_kvm() {
        return;
    }
    let args = ["reads", "writes", "getdents", "names"];
    for v in variants() {
        let app = c_thread_app("sv_hostile", v);
        let linux = native(&app, &args, &[], b"");
        let umon = umon_run(&[], &app, &args, b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        assert_eq!(stdout(&umon), stdout(&linux), "{}", app.display());
        // Every group ran (an empty output would compare equal too).
        for fact in [
            "/proc/self/auxv read NULL -1 EFAULT",
            "/proc/self/limits readv bad second 4",
            "limits read into a hole 16 ok",
            "write read-only status -1 EBADF",
            "/proc/self/task tiny buffers same 1 one record a call 1",
            "getdents after faults starts at . 1",
            "stat /proc/self/fdinfo/00 ENOENT",
            "stat /proc/self/fd/../fdinfo/1 ok",
        ] {
            assert!(stdout(&umon).contains(fact), "{fact}: {}", stdout(&umon));
        }
    }
}

#[test]
fn proc_files_refuse_writers_and_dev_tty_needs_a_terminal() {
    if !common::require_kvm() {
        return;
    }
    for v in variants() {
        let app = c_thread_app("sv_hostile", v);
        let out = umon_run(&[], &app, &["refused"], b"");
        assert!(out.status.success(), "{}", stderr(&out));
        // What Linux says to a user without privileges there; /dev/tty exists, and without a
        // controlling terminal opening it (O_CREAT without O_EXCL opens) is ENXIO.
        assert_eq!(
            stdout(&out).lines().collect::<Vec<_>>(),
            [
                "open /proc/self/auxv read-write EACCES",
                "open /proc/self/limits read-write EACCES",
                "open /proc/self/fdinfo/0 read-write EACCES",
                "open /proc/self/task/1/stat read-write EACCES",
                "open /proc/sys/kernel/pid_max read-write EACCES",
                "create /dev/tty ENXIO",
            ],
            "{}",
            app.display()
        );
    }
}
