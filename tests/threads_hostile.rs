//! Hostile thread and futex use (`tests/apps/thr_hostile.c`), in every C variant: whatever the
//! app does, umon gives Linux's answers and never panics or outlives its `--timeout`.
//!
//! - `thread_storm`: 30 000 raw clone calls for threads that exit at once (at most 64 alive),
//!   each joined through CLONE_CHILD_CLEARTID (100 000 took ~45 s alone and passed the 60 s
//!   limit on a loaded machine).
//! - `clone_bad_flags_and_args`: clone flag sets Linux refuses (THREAD without SIGHAND, SIGHAND
//!   without VM, FS with NEWNS/NEWUSER, PIDFD misuse, TLS in kernel space or non-canonical) and
//!   clone3 with bad sizes, pointers and argument combinations: the same errno, byte for byte.
//! - `clone_process_flags`: flag sets that make processes (fork, vfork, CLONE_VM without
//!   CLONE_THREAD) and a thread with a pidfd: Linux creates them; until umon has processes each
//!   answer must be Linux's or ENOSYS/EINVAL (documented there), never something else.
//! - `futex_bad_addresses`: every futex op on NULL, unmapped, kernel, non-canonical, read-only,
//!   PROT_NONE and unaligned words, bad timeout pointers: Linux's answers exactly.
//! - `thread_on_unmapped_stack`: the thread's first push faults; the process dies of SIGSEGV
//!   (natively a signal, umon exits 139 with its one `app killed by SIGSEGV` line).
//! - `concurrent_mmap_munmap`: 8 threads map, write, partly unmap, protect and check at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::require_kvm;
use threads_common::{
    assert_no_differences, c_thread_app, compare, native, status, under_umon, variants, Stdin,
};

fn hostile_everywhere(args: &[&str], expect_status: i32) {
    if !require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("thr_hostile", v);
        diffs.extend(compare(
            &format!("thr_hostile {args:?} ({v:?})"),
            &app,
            args,
            Stdin::Empty,
            expect_status,
        ));
    }
    assert_no_differences(&diffs);
}

#[test]
fn thread_storm() {
    hostile_everywhere(&["storm", "30000"], 0);
}

#[test]
fn clone_bad_flags_and_args() {
    hostile_everywhere(&["flags"], 0);
}

#[test]
fn futex_bad_addresses() {
    hostile_everywhere(&["futex"], 0);
}

#[test]
fn concurrent_mmap_munmap() {
    hostile_everywhere(&["mmap"], 0);
}

/// Processes are not part of the thread work: where Linux creates one, umon may answer ENOSYS
/// or EINVAL instead (and must say nothing else); where it creates one, the line is Linux's.
#[test]
fn clone_process_flags() {
    if !require_kvm() {
        return;
    }
    for v in variants() {
        let app = c_thread_app("thr_hostile", v);
        let linux = native(&app, &["forklike"], Stdin::Empty);
        assert_eq!(status(&linux), 0, "{v:?} natively");
        let umon = under_umon(&app, &["forklike"], Stdin::Empty);
        let (l, u) = (
            String::from_utf8_lossy(&linux.stdout).into_owned(),
            String::from_utf8_lossy(&umon.stdout).into_owned(),
        );
        let uerr = String::from_utf8_lossy(&umon.stderr);
        assert!(
            !uerr.contains("panicked at"),
            "{v:?}: umon panicked: {uerr}"
        );
        assert_eq!(status(&umon), 0, "{v:?} under umon: {u}{uerr}");
        assert_eq!(l.lines().count(), u.lines().count(), "{v:?}:\n{l}---\n{u}");
        for (a, b) in l.lines().zip(u.lines()) {
            let (case, _) = a.split_once(": ").expect("CASE: ANSWER");
            let allowed = [
                a.to_owned(),
                format!("{case}: ENOSYS"),
                format!("{case}: EINVAL"),
            ];
            assert!(
                allowed.iter().any(|x| x == b),
                "{v:?}: linux `{a}`, umon `{b}`"
            );
        }
    }
}

#[test]
fn thread_on_unmapped_stack() {
    if !require_kvm() {
        return;
    }
    for v in variants() {
        let app = c_thread_app("thr_hostile", v);
        let linux = native(&app, &["badstack"], Stdin::Empty);
        assert_eq!(status(&linux), 128 + 11, "{v:?} natively dies of SIGSEGV");
        let umon = under_umon(&app, &["badstack"], Stdin::Empty);
        let uerr = String::from_utf8_lossy(&umon.stderr);
        assert_eq!(status(&umon), 128 + 11, "{v:?}: {uerr}");
        assert_eq!(linux.stdout, umon.stdout, "{v:?}");
        let lines: Vec<&str> = uerr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("umon: app killed by SIGSEGV"),
            "{v:?}: umon should say one line about the fault: {uerr}"
        );
    }
}
