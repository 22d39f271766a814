//! Exit-less syscalls (issue 17) on real KVM: the calls the server answers give Linux's
//! answers byte for byte (compared with the native run and with `--exitless off`), from one
//! thread and from several, with signals arriving while the guest spins in the stub, mixed
//! with calls that must fall back, futex wakes of contended mutexes and condition variables; `--trace` prints the same lines either way; the server
//! really answers (the library's `RunReport::exitless_served`); and a guest that corrupts its
//! own channel gets Linux's answers or its own crash, never a monitor panic or hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;
#[path = "common/threads.rs"]
mod threads;

use common::apps::{self, c_app, Link};
use std::path::Path;
use std::process::Output;
use threads::{assert_no_differences, c_thread_app, differences, status, variants};

/// A directory of this test's own under the target's temporary directory, removed at the end.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "exitless-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `exitless ARGS` natively (TMPDIR = `dir`) and under umon with `--exitless MODE` (`dir` as
/// the volume /data, TMPDIR=/data).
fn runs(app: &Path, args: &[&str], dir: &Path) -> (Output, Output, Output) {
    let d = dir.to_str().unwrap();
    let linux = apps::native(app, args, &[("TMPDIR", d)], b"");
    let vol = format!("{d}:/data:rw");
    let umon = |mode: &str| {
        apps::umon_run(
            &[
                "--timeout",
                "60s",
                "--exitless",
                mode,
                "-v",
                &vol,
                "-e",
                "TMPDIR=/data",
            ],
            app,
            args,
            b"",
        )
    };
    (linux, umon("on"), umon("off"))
}

fn check_all_variants(args: &[&str]) {
    if !common::require_kvm() {
        return;
    }
    let dir = Scratch::new();
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("exitless", v);
        let (linux, on, off) = runs(&app, args, dir.path());
        assert_eq!(
            status(&linux),
            0,
            "exitless {args:?} ({v:?}) natively:\n{}{}",
            String::from_utf8_lossy(&linux.stdout),
            String::from_utf8_lossy(&linux.stderr)
        );
        diffs.extend(differences(
            &format!("{args:?} {v:?} --exitless on"),
            &linux,
            &on,
        ));
        diffs.extend(differences(
            &format!("{args:?} {v:?} --exitless off"),
            &linux,
            &off,
        ));
    }
    assert_no_differences(&diffs);
}

#[test]
fn served_calls_give_linuxs_answers() {
    check_all_variants(&["mix", "500"]);
}

#[test]
fn threads_each_use_their_own_channel() {
    check_all_variants(&["threads", "4", "300"]);
}

#[test]
fn signals_arrive_while_calls_are_served() {
    check_all_variants(&["signals", "100"]);
}

#[test]
fn nonblocking_sockets_pipes_and_eventfds_are_served_as_linux_answers() {
    check_all_variants(&["nonblock", "300"]);
}

#[test]
fn mutex_and_condvar_wakes_are_served_and_their_waits_are_not() {
    check_all_variants(&["mutex", "4", "3000"]);
}

#[test]
fn signal_masks_are_served_and_unblocking_delivers_at_once() {
    check_all_variants(&["masks", "200"]);
}

#[test]
fn opens_are_served_and_a_fifo_open_that_waits_is_given_back() {
    check_all_variants(&["opens", "200"]);
}

#[test]
fn calls_the_server_gives_back_run_on_the_exit_path() {
    check_all_variants(&["fallback", "200"]);
}

/// The library's report says how many calls the server answered: many with `Exitless::On`,
/// none with `Off`, and the app's output is the same. The server backs off when it does not
/// get a CPU in time (a loaded host), so a run may serve few; three tries must serve some.
#[test]
fn the_server_answers_calls_and_off_means_none() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("exitless", Link::StaticPie);
    let dir = Scratch::new();
    let run = |mode: umon::Exitless| {
        let out = umon::Capture::new();
        let report = umon::Builder::new(&app)
            .args(["mix", "3000"])
            .env("TMPDIR", "/data")
            .volume(
                umon::linux::fs::volume::parse_spec(&format!("{}:/data:rw", dir.path().display()))
                    .unwrap(),
            )
            .exitless(mode)
            .stdout(out.clone())
            .run()
            .unwrap();
        assert_eq!(report.status, umon::ExitStatus::Exited(0));
        (out.text(), report.exitless_served)
    };
    let d = dir.path().to_str().unwrap();
    let linux = apps::native(&app, &["mix", "3000"], &[("TMPDIR", d)], b"");
    let text_linux = String::from_utf8(linux.stdout).unwrap();
    let (text_off, served_off) = run(umon::Exitless::Off);
    assert_eq!(text_off, text_linux);
    assert_eq!(served_off, 0, "--exitless off served calls");
    let mut served = 0;
    for _ in 0..3 {
        let (text, s) = run(umon::Exitless::On);
        assert_eq!(text, text_off);
        served = s;
        if served > 0 {
            break;
        }
    }
    assert!(
        served > 0,
        "the exit-less server answered no call in three runs"
    );
}

/// `--trace` shows every call the same way whoever answers it.
#[test]
fn trace_is_the_same_exitless_or_not() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("exitless", Link::StaticPie);
    let dir = Scratch::new();
    let vol = format!("{}:/data:rw", dir.path().display());
    let trace = |mode: &str| {
        let o = apps::umon_run(
            &[
                "--exitless",
                mode,
                "--trace",
                "-v",
                &vol,
                "-e",
                "TMPDIR=/data",
            ],
            &app,
            &["mix", "50"],
            b"",
        );
        assert_eq!(status(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stderr).unwrap()
    };
    let (on, off) = (trace("on"), trace("off"));
    assert!(on.contains("getppid() = "), "no trace lines:\n{on}");
    assert_eq!(on, off, "--trace differs between --exitless on and off");
}

/// A guest that corrupts its own channel: umon only (the page is not there natively).
fn hostile(mode: &str) -> Output {
    let app = c_app("exitless_hostile", Link::StaticPie);
    apps::umon_run(
        &["--timeout", "60s", "--exitless", "on"],
        &app,
        &[mode],
        b"",
    )
}

fn no_monitor_failure(mode: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{mode}: umon panicked:\n{err}");
    assert!(
        status(o) != 124 && status(o) != 125,
        "{mode}: umon hung or failed ({}):\n{err}",
        status(o)
    );
}

#[test]
fn a_forged_bitmap_or_spin_still_gets_linuxs_answers() {
    if !common::require_kvm() {
        return;
    }
    for (mode, want) in [
        ("bitmap", "bitmap: bad 0\n"),
        ("spin0", "spin0: bad 0\n"),
        ("forge", "forge: bad 0, then 0\n"),
    ] {
        let o = hostile(mode);
        no_monitor_failure(mode, &o);
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{mode}");
        assert_eq!(
            status(&o),
            0,
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_thread_scribbling_over_a_channel_cannot_hang_or_crash_umon() {
    if !common::require_kvm() {
        return;
    }
    let o = hostile("scribble");
    no_monitor_failure("scribble", &o);
}

#[test]
fn entering_the_stub_with_a_made_up_return_address_is_the_apps_segfault() {
    if !common::require_kvm() {
        return;
    }
    let o = hostile("jump");
    no_monitor_failure("jump", &o);
    assert_eq!(status(&o), 139, "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("SIGSEGV") && err.lines().count() == 1, "{err}");
    assert!(o.stdout.is_empty());
}
