//! What the monitor does around threads (`tests/apps/thr_mon.c`, glibc static-pie):
//! - `cpus_flag_sets_the_cpu_count`: `--cpus N` is what sched_getaffinity (and with it
//!   sysconf(_SC_NPROCESSORS_ONLN)) reports on every thread; the default is the host CPUs umon
//!   may use, i.e. what the same program sees natively.
//! - `trace_names_threads`: once a second thread exists, `--trace` lines carry strace -f's
//!   `[pid  N] ` prefix.
//! - `timeout_and_sigterm_end_blocked_threads`: threads blocked in futex, nanosleep and a read
//!   on a silent stdin (and main in pthread_join) end with `--timeout` (124) and with SIGTERM to
//!   umon (143).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{self, c_app, umon_run, Link};
use common::{require_kvm, stderr, stdout};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn app() -> std::path::PathBuf {
    c_app("thr_mon", Link::StaticPie)
}

#[test]
fn cpus_flag_sets_the_cpu_count() {
    if !require_kvm() {
        return;
    }
    let app = app();
    for n in ["1", "3", "70"] {
        let out = umon_run(&["--cpus", n], &app, &["cpus"], b"");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // glibc's sched_getaffinity returns 0 (the kernel's byte count stays inside).
        let want = format!(
            "main: sched_getaffinity 0, {n} cpus, nprocessors_onln {n}\n\
             thread: sched_getaffinity 0, {n} cpus, nprocessors_onln {n}\n"
        );
        assert_eq!(stdout(&out), want, "--cpus {n}");
    }
    // The default: what the program sees natively (the CPUs this process may use).
    let native = apps::native(&app, &["cpus"], &[], b"");
    let default = umon_run(&[], &app, &["cpus"], b"");
    let count = |s: &str| {
        s.lines()
            .map(|l| l.split(", ").nth(1).unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&stdout(&default)), count(&stdout(&native)));
    let bad = umon_run(&["--cpus", "0"], &app, &["cpus"], b"");
    assert_ne!(bad.status.code(), Some(0), "--cpus 0 is refused");
}

#[test]
fn trace_names_threads() {
    if !require_kvm() {
        return;
    }
    let out = umon_run(&["--trace"], app(), &["trace"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let clone = err
        .lines()
        .position(|l| l.starts_with("clone3(") || l.starts_with("clone("))
        .unwrap_or_else(|| panic!("no clone line in\n{err}"));
    let tid: u32 = err
        .lines()
        .nth(clone)
        .unwrap()
        .rsplit("= ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let prefix = format!("[pid {tid:>5}] ");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("{prefix}getppid() = "))),
        "the new thread's getppid line has the prefix {prefix:?}:\n{err}"
    );
    // The clone line is written when the call returns, and the new thread may have made calls
    // by then (strace -f shows the same race as `<unfinished ...>`): lines before it are the
    // first thread's, unprefixed, or the new thread's.
    let before: Vec<&str> = err.lines().take(clone).collect();
    assert!(
        before
            .iter()
            .all(|l| !l.starts_with("[pid") || l.starts_with(&prefix)),
        "no prefix while there is one thread:\n{err}"
    );
}

/// Start `umon run OPTS thr_mon hang` with a stdin nobody writes, wait for "waiting", then
/// `after` (send a signal, or nothing) and return the exit code.
fn hang(opts: &[&str], signal: Option<i32>) -> Option<i32> {
    let mut cmd: Command = apps::umon_run_cmd(opts, app(), &["hang"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let _stdin = child.stdin.take();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "waiting\n");
    if let Some(sig) = signal {
        let sent = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("umon {opts:?} did not end its blocked threads");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn timeout_and_sigterm_end_blocked_threads() {
    if !require_kvm() {
        return;
    }
    assert_eq!(hang(&["--timeout", "1s"], None), Some(124));
    assert_eq!(hang(&[], Some(libc::SIGTERM)), Some(128 + libc::SIGTERM));
}
