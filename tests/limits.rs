//! Ending runaway guests from outside: `--timeout` (exit 124) from a CPL3 spin loop, a sleep and a
//! blocking read; SIGINT/SIGTERM to umon (exit 130/143). The guest never ends by itself here, so
//! every pass proves umon ended it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;

use common::apps::{c_app, Link};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn block() -> std::path::PathBuf {
    c_app("block", Link::StaticPie)
}

/// Run `umon run [opts] block MODE` with stdin a pipe kept open and silent.
fn spawn(opts: &[&str], mode: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_umon"))
        .arg("run")
        .args(opts)
        .arg(block())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for the guest's "started" line, so the signal hits a running guest.
fn wait_started(child: &mut std::process::Child) {
    let out = child.stdout.as_mut().unwrap();
    let mut buf = [0u8; 8];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"started\n");
}

fn finish(mut child: std::process::Child, limit: Duration) -> (i32, String) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if t0.elapsed() > limit {
            child.kill().unwrap();
            panic!("umon did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn timeout_ends_every_kind_of_runaway_guest() {
    if !common::require_kvm() {
        return;
    }
    for mode in ["spin", "sleep", "read"] {
        let t0 = Instant::now();
        let child = spawn(&["--timeout", "1s"], mode);
        let (code, err) = finish(child, Duration::from_secs(20));
        assert_eq!(code, 124, "{mode}: stderr {err}");
        assert_eq!(err, "umon: app timed out after 1s\n", "{mode}");
        assert!(t0.elapsed() >= Duration::from_secs(1), "{mode} ended early");
    }
}

#[test]
fn sigint_and_sigterm_end_the_guest_cleanly() {
    if !common::require_kvm() {
        return;
    }
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        for mode in ["spin", "read"] {
            let mut child = spawn(&[], mode);
            wait_started(&mut child);
            // SAFETY: sending a signal to our own child process, which is still running.
            let r = unsafe { libc::kill(child.id() as i32, signal) };
            assert_eq!(r, 0);
            let (got, err) = finish(child, Duration::from_secs(20));
            assert_eq!(got, code, "signal {signal} in {mode}: stderr {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn a_generous_timeout_does_not_change_a_normal_run() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::StaticPie);
    let out = Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(["run", "--timeout", "60s"])
        .arg(&hello)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
}

#[test]
fn bad_timeout_values_are_refused() {
    for bad in ["0", "-1s", "soon", "1x"] {
        let out = Command::new(env!("CARGO_BIN_EXE_umon"))
            .args(["run", "--timeout", bad, "/bin/true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
}

#[test]
fn seccomp_stops_a_forbidden_syscall_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(["selftest", "--seccomp-violation"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "stderr: {err}");
    // getppid is syscall 110 on x86-64.
    assert_eq!(
        err,
        "umon: seccomp: the monitor made a syscall outside its allow-list: 110\n"
    );
}

#[test]
fn apps_run_confined_and_unconfined_alike() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::StaticPie);
    let mut outs = Vec::new();
    for opts in [&[][..], &["--no-seccomp"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_umon"))
            .arg("run")
            .args(opts)
            .arg(&hello)
            .arg("x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{opts:?}");
        assert!(out.stderr.is_empty(), "{opts:?}");
        outs.push(out.stdout);
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn touching_memory_never_allocated_is_sigsegv() {
    if !common::require_kvm() {
        return;
    }
    let wild = c_app("wild", Link::StaticPie);
    for args in [&[][..], &["memset"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_umon"))
            .arg("run")
            .arg(&wild)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(139), "{args:?}: {err}");
        assert!(
            err.starts_with("umon: app killed by SIGSEGV: access to memory it never allocated"),
            "{err}"
        );
        assert!(err.contains("(main+0x"), "{err}");
        assert_eq!(err.lines().count(), 1);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    }
}
