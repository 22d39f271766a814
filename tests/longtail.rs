//! The long tail of syscalls distribution programs make (`tests/apps/longtail_calls.c`, glibc
//! static-pie and static, musl): fcntl record locks and OFD locks with F_GETLK's report, flock,
//! getgroups, prctl, membarrier, priorities and policies, ioprio, personality, memfd with
//! seals, the xattr answers, statfs, chown to the own ids, inotify on a volume directory,
//! getrusage and times, compared with
//! the native run byte for byte in a read-write volume at the same path; the answers of an
//! unprivileged process (umon's, whatever the host user) and the guest's sysinfo against the
//! configuration; F_SETLKW cut short by signals and by `--timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{s, umon_run_cmd};
use common::require_kvm;
use std::path::{Path, PathBuf};
use threads_common::{assert_no_differences, c_thread_app, differences, status, variants, Variant};

/// A fresh, empty directory for one run.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("longtail", name)
}

/// `umon run --timeout 60s [-m MEM] -v DIR:DIR:rw APP ARGS...`.
fn umon_in(dir: &Path, mem: Option<&str>, app: &Path, args: &[&str]) -> std::process::Output {
    let volume = format!("{}:{}:rw", s(dir), s(dir));
    let mut opts = vec!["--timeout", "60s", "-v", &volume];
    if let Some(m) = mem {
        opts.extend(["-m", m]);
    }
    common::apps::run(&mut umon_run_cmd(&opts, app, args), b"")
}

/// Runs `longtail_calls MODE DIR [extra]` natively and under umon (each in a fresh directory
/// given at the same path) for every C library variant; the differences.
fn compare(mode: &str, extra: Option<&str>) -> Vec<String> {
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("longtail_calls", v);
        let dir = scratch(&format!("{mode}-{v:?}"));
        let target = |dir: &Path| match extra {
            Some(leaf) => dir.join(leaf),
            None => dir.to_path_buf(),
        };
        let mut args = vec![mode.to_string(), s(&target(&dir)).to_string()];
        if mode == "lockwait" {
            args.push("signal".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let linux = threads_common::native(&app, &args, threads_common::Stdin::Empty);
        assert_eq!(status(&linux), 0, "{mode} natively ({v:?}): {linux:?}");
        assert!(
            !String::from_utf8_lossy(&linux.stdout).contains("FAIL"),
            "{mode} natively ({v:?}): {}",
            String::from_utf8_lossy(&linux.stdout)
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let umon = umon_in(&dir, None, &app, &args);
        diffs.extend(differences(&format!("{mode} ({v:?})"), &linux, &umon));
    }
    diffs
}

#[test]
fn locks_prctl_membarrier_priorities_memfd_xattrs_statfs_chown_match_linux() {
    if !require_kvm() {
        return;
    }
    assert_no_differences(&compare("compare", None));
}

#[test]
fn setlkw_is_cut_short_by_a_signal_with_eintr() {
    if !require_kvm() {
        return;
    }
    assert_no_differences(&compare("lockwait", Some("db")));
}

#[test]
fn a_blocking_inotify_read_is_cut_short_by_a_signal_with_eintr() {
    if !require_kvm() {
        return;
    }
    assert_no_differences(&compare("inotifywait", None));
}

#[test]
fn setlkw_does_not_outlast_the_timeout() {
    if !require_kvm() {
        return;
    }
    let app = c_thread_app(
        "longtail_calls",
        Variant::Glibc(common::apps::Link::StaticPie),
    );
    let dir = scratch("lockwait-timeout");
    let file = dir.join("db");
    let volume = format!("{}:{}:rw", s(&dir), s(&dir));
    let out = common::apps::run(
        &mut umon_run_cmd(
            &["--timeout", "2s", "-v", &volume],
            &app,
            &["lockwait", s(&file)],
        ),
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "waiting\n");
    assert_eq!(status(&out), 124, "{out:?}");
    assert!(
        common::stderr(&out).contains("timed out"),
        "{}",
        common::stderr(&out)
    );
}

/// What an unprivileged Linux process is told (umon gives the application no capabilities,
/// even when it runs as root), and sysinfo's guest values for `-m 256M`.
#[test]
fn unprivileged_answers_and_the_guest_sysinfo() {
    if !require_kvm() {
        return;
    }
    let expected = [
        "setgroups = -1",
        "setgroups one = -1",
        "setpriority +2 = 0",
        "pgrp and user see only the app 1",
        "setpriority lower = -13",
        "setscheduler fifo = -1",
        "setscheduler rr = -1",
        "ioprio set rt -1",
        "chown other uid = -1",
        "chown other gid = -1",
        "fchown other uid = -1",
        "fchown own = 0",
        "setxattr = -95",
        "lsetxattr = -95",
        "fsetxattr = -95",
        "removexattr = -61",
        "fremovexattr = -61",
        "listxattr = 0",
        "llistxattr = 0",
        "flistxattr = 0",
        "listxattr size 0 = 0",
        "getxattr security = -61",
        "sysinfo = 0",
        &format!(
            "  totalram {} unit 1 procs 1 free<=total 1 uptime<=600 1",
            256u64 << 20
        ),
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    for v in variants() {
        let app = c_thread_app("longtail_calls", v);
        let dir = scratch(&format!("guest-{v:?}"));
        let out = umon_in(&dir, Some("256M"), &app, &["guest", s(&dir)]);
        assert_eq!(status(&out), 0, "{v:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{v:?}");
        let meta = std::fs::metadata(dir.join("owned")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            meta.uid(),
            rustix::process::getuid().as_raw(),
            "the refused chown left the owner"
        );
    }
}
