//! Calls real programs make that umon answered with ENOSYS until session 11 (found by running
//! make, javac and node under umon): the user and group id family, getcpu, utime/utimes/
//! futimesat, sync/syncfs/sync_file_range, readahead, preadv2/pwritev2, the old getdents
//! (`tests/apps/more_calls.c`, glibc static-pie and static, musl), compared with the native
//! run byte for byte in a read-write volume at the same path, bad pointers, flags and fds
//! included; and what only umon answers: an unprivileged process's refusals whatever the host
//! user, and the protection-key calls of a CPU without OSPKE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{s, umon_run_cmd};
use common::require_kvm;
use std::path::{Path, PathBuf};
use threads_common::{assert_no_differences, c_thread_app, differences, status, variants};

/// A fresh, empty directory for one run.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("more_calls", name)
}

/// `umon run --timeout 60s -v DIR:DIR:rw APP MODE DIR`.
fn umon_in(dir: &Path, app: &Path, mode: &str) -> std::process::Output {
    let volume = format!("{}:{}:rw", s(dir), s(dir));
    common::apps::run(
        &mut umon_run_cmd(&["--timeout", "60s", "-v", &volume], app, &[mode, s(dir)]),
        b"",
    )
}

#[test]
fn ids_getcpu_times_syncs_rw2_and_getdents_match_linux() {
    if !require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("more_calls", v);
        let dir = scratch(&format!("compare-{v:?}"));
        let args = ["compare", s(&dir)];
        let linux = threads_common::native(&app, &args, threads_common::Stdin::Empty);
        assert_eq!(status(&linux), 0, "natively ({v:?}): {linux:?}");
        let native_out = String::from_utf8_lossy(&linux.stdout).into_owned();
        assert!(
            !native_out.contains("FAIL"),
            "natively ({v:?}): {native_out}"
        );
        // The native run really made the calls (no ENOSYS, the file times set).
        assert!(!native_out.contains("= -38\n"), "{native_out}");
        assert!(
            native_out.contains("atime 1200000000.250000000 mtime 1300000000.999999000"),
            "{native_out}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let umon = umon_in(&dir, &app, "compare");
        diffs.extend(differences(&format!("compare ({v:?})"), &linux, &umon));
    }
    assert_no_differences(&diffs);
}

/// An unprivileged process (umon gives the application no capabilities, even as root) may
/// set only the ids it has; a CPU without OSPKE has no protection keys; the RWF_* flags umon
/// does not take are EOPNOTSUPP.
#[test]
fn other_ids_are_refused_and_there_are_no_protection_keys() {
    if !require_kvm() {
        return;
    }
    let expected = [
        "setuid other = -1",
        "setgid other = -1",
        "setreuid other = -1",
        "setresuid other saved = -1",
        "setresgid other real = -1",
        "setfsuid other is old 1",
        "fsuid unchanged 1",
        "pkey_alloc = -22",
        "pkey_alloc disable write = -22",
        "pkey_alloc bad flags = -22",
        "pkey_alloc bad rights = -22",
        "pkey_free 0 = -22",
        "pkey_free 1 = -22",
        "pkey_mprotect -1 = 0",
        "pkey_mprotect 0 = -22",
        "pkey_mprotect 1 = -22",
        "pkey_mprotect len 0 key 5 = 0",
        "pkey_mprotect unaligned = -22",
        "pkey_mprotect bad prot = -22",
        "readable 1",
        "preadv2 nowait = -95",
        "pwritev2 append = -95",
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    for v in variants() {
        let app = c_thread_app("more_calls", v);
        let dir = scratch(&format!("guest-{v:?}"));
        let out = umon_in(&dir, &app, "guest");
        assert_eq!(status(&out), 0, "{v:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{v:?}");
        assert!(out.stderr.is_empty(), "{v:?}: {}", common::stderr(&out));
    }
}
