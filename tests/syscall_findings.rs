//! The answers of the syscalls umon serves, where a review and a conformance run found them
//! different from Linux's (issue 10): buffers in unmapped, PROT_NONE or read-only memory,
//! writev past a faulting iovec, mmap/mprotect/madvise/mremap argument checks, futex and
//! sched_getaffinity checks, blocked and stopping signals, sendfile/copy_file_range checks,
//! pwrite past the maximum file size, RLIMIT_NOFILE, poll with nothing to wait for, and
//! fcntl/flock locks. `tests/apps/sys_findings.c` makes the raw calls and prints each answer;
//! natively and under umon the lines must be the same, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, s, umon_run, umon_run_cmd, Link};
use common::{stderr, stdout};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// What the app's read checks find on stdin.
const STDIN: &[u8] = b"sys_findings stdin\n";

/// A fresh, empty directory for one test under CARGO_TARGET_TMPDIR.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("syscall_findings", name)
}

fn no_panic(o: &Output) {
    assert!(
        !stderr(o).contains("panicked"),
        "umon panicked: {}",
        stderr(o)
    );
}

/// Every line the same, reported line by line.
fn assert_same_lines(what: &str, linux: &Output, umon: &Output) {
    let (l, u) = (stdout(linux), stdout(umon));
    let diff: Vec<String> = l
        .lines()
        .zip(u.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  linux: {a}\n  umon:  {b}"))
        .collect();
    assert!(
        diff.is_empty() && l.lines().count() == u.lines().count(),
        "{what}: umon differs from Linux:\n{}\n(linux {} lines, umon {} lines; umon exit {:?}, \
         stderr {})",
        diff.join("\n"),
        l.lines().count(),
        u.lines().count(),
        umon.status.code(),
        stderr(umon)
    );
}

#[test]
fn bad_buffers_flags_signals_files_and_limits_answer_as_on_linux() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("sys_findings", link);
        let root = scratch(&format!("checks-{link:?}"));
        let (host_dir, guest_dir) = (root.join("native"), root.join("guest"));
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::create_dir_all(&guest_dir).unwrap();
        let linux = native(&app, &["checks", s(&host_dir)], &[], STDIN);
        assert_eq!(
            linux.status.code(),
            Some(0),
            "natively: {}{}",
            stdout(&linux),
            stderr(&linux)
        );
        let umon = umon_run(
            &["-v", &format!("{}:/data:rw", s(&guest_dir))],
            &app,
            &["checks", "/data"],
            STDIN,
        );
        no_panic(&umon);
        assert_same_lines(&format!("{link:?} checks"), &linux, &umon);
        assert_eq!(umon.status.code(), Some(0), "{}", stderr(&umon));
    }
}

#[test]
fn a_blocked_signal_stays_pending_and_kills_when_unblocked() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys_findings", Link::StaticPie);
    let linux = native(&app, &["term"], &[], b"");
    let umon = umon_run(&[], &app, &["term"], b"");
    no_panic(&umon);
    assert_eq!(linux.status.signal(), Some(libc::SIGTERM));
    assert_same_lines("term", &linux, &umon);
    assert_eq!(
        umon.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        stderr(&umon)
    );
    // SIGKILL is never held, whatever the mask says.
    let linux = native(&app, &["sigkill"], &[], b"");
    let umon = umon_run(&[], &app, &["sigkill"], b"");
    no_panic(&umon);
    assert_eq!(linux.status.signal(), Some(libc::SIGKILL));
    assert_same_lines("sigkill", &linux, &umon);
    assert_eq!(
        umon.status.code(),
        Some(128 + libc::SIGKILL),
        "{}",
        stderr(&umon)
    );
}

#[test]
fn rlimit_fsize_cuts_writes_and_sends_sigxfsz() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys_findings", Link::StaticPie);
    let root = scratch("fsize");
    let (host_dir, guest_dir) = (root.join("native"), root.join("guest"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::create_dir_all(&guest_dir).unwrap();
    let linux = native(&app, &["fsize", s(&host_dir)], &[], b"");
    let vol = format!("{}:/data:rw", s(&guest_dir));
    let umon = umon_run(&["-v", &vol], &app, &["fsize", "/data"], b"");
    no_panic(&umon);
    assert_eq!(
        linux.status.signal(),
        Some(libc::SIGXFSZ),
        "{}",
        stdout(&linux)
    );
    assert_same_lines("fsize", &linux, &umon);
    assert_eq!(
        umon.status.code(),
        Some(128 + libc::SIGXFSZ),
        "{}",
        stderr(&umon)
    );
    let size = |d: &Path| std::fs::metadata(d.join("fsize")).unwrap().len();
    assert_eq!(size(&guest_dir), size(&host_dir));
}

/// Calls that never return on Linux (nobody will wake them) end only with `--timeout`.
#[test]
fn poll_on_nothing_and_sigstop_wait_until_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys_findings", Link::StaticPie);
    for mode in ["poll-forever", "stop"] {
        let umon = umon_run(&["--timeout", "300ms"], &app, &[mode], b"");
        no_panic(&umon);
        assert_eq!(
            umon.status.code(),
            Some(124),
            "{mode}: {}{}",
            stdout(&umon),
            stderr(&umon)
        );
        assert_eq!(stdout(&umon), "", "{mode} returned");
    }
}

/// kill(-1) signals every process but init and the caller: under umon there is none. (Not
/// run natively: there it would signal every process of the user.)
#[test]
fn kill_minus_one_finds_no_process() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys_findings", Link::StaticPie);
    let umon = umon_run(&[], &app, &["umon-only"], b"");
    no_panic(&umon);
    assert_eq!(
        stdout(&umon),
        "kill -1 0: ESRCH\nkill -1 SIGTERM: ESRCH\nkill -1 signal 65: ESRCH\nkill -7 0: ESRCH\n\
         kill 0 0: 0\nkill 2 0: ESRCH\n"
    );
    assert_eq!(umon.status.code(), Some(0), "{}", stderr(&umon));
}

/// A host process holding a POSIX lock and a flock on a volume file: the app sees them as on
/// Linux, and a blocking wait for them gives way to `--timeout`.
#[test]
fn locks_are_the_host_files_and_waiting_for_one_can_be_stopped() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys_findings", Link::StaticPie);
    let dir = scratch("locks");
    let file = dir.join("locked");
    let mut holder = Command::new(&app)
        .args(["hold", s(&file)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "held\n");

    let linux = native(&app, &["locked", s(&file)], &[], b"");
    let vol = format!("{}:/l:rw", s(&dir));
    let umon = umon_run(&["-v", &vol], &app, &["locked", "/l/locked"], b"");
    no_panic(&umon);
    // The holder is outside the app's pid namespace: Linux reports its pid as 0 there.
    let (l, u) = (stdout(&linux), stdout(&umon));
    assert!(l.contains("pid another\n"), "{l}");
    assert_eq!(
        u,
        l.replace("pid another\n", "pid 0\n"),
        "{}",
        stderr(&umon)
    );

    for mode in ["lockw", "flockw"] {
        let out = common::apps::run(
            &mut umon_run_cmd(
                &["--timeout", "300ms", "-v", &vol],
                &app,
                &[mode, "/l/locked"],
            ),
            b"",
        );
        no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(124),
            "{mode}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{mode} returned while the lock was held");
    }
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let out = umon_run(&["-v", &vol], &app, &["lockw", "/l/locked"], b"");
    assert_eq!(stdout(&out), "F_SETLKW returned: 0\n", "{}", stderr(&out));
}
