//! The vDSO, the time page and the legacy vsyscall page (`tests/apps/vdso_clock.c`,
//! `tests/apps/vdso_go/`), under umon and, where the answer is Linux's, compared with the native
//! run:
//!
//! - `clock_loop_makes_no_exits`: a million rounds of clock_gettime/gettimeofday/time through
//!   glibc (static-pie, static) and musl: monotonic, within 1 ms of the syscall, and `--trace`
//!   shows only the clock syscalls the program made itself (the vDSO's calls never exit).
//! - `vdso_symbols_as_linux`: AT_SYSINFO_EHDR names an ELF with the LINUX_2.6 symbols, found
//!   the way musl finds them, and the found functions work: same output as natively.
//! - `monotonic_across_threads`: four threads reading under one lock never see it go back.
//! - `go_time_without_syscalls`: Go's runtime uses the vDSO (no clock syscall in the trace).
//! - `legacy_vsyscall_page`: calls into 0xffffffffff600000 work.
//! - `writes_to_the_time_page_and_the_vdso_fault`,
//!   `the_monitor_never_writes_the_time_page_or_the_vdso`, `map_fixed_over_the_vdso`,
//!   `getcpu_*`: hostile or odd uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{c_app, native, umon_run, Link};
use common::{require_kvm, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;
use threads_common::{c_thread_app, status, tool_present, variants, Variant};

const TIMEOUT: &str = "60s";

fn apps() -> Vec<(Variant, PathBuf)> {
    variants()
        .into_iter()
        .map(|v| (v, c_thread_app("vdso_clock", v)))
        .collect()
}

/// `umon run --timeout 60s [--trace] APP ARGS`.
fn under_umon(app: &Path, args: &[&str], trace: bool) -> std::process::Output {
    let mut opts = vec!["--timeout", TIMEOUT];
    if trace {
        opts.push("--trace");
    }
    umon_run(&opts, app, args, b"")
}

/// Trace lines of clock reads (a vDSO call served in the guest leaves none). clock_getres is
/// left out: musl never asks the vDSO for it (the symbols test calls the vDSO's directly).
fn clock_syscalls(trace: &str) -> usize {
    trace
        .lines()
        .map(|l| match l.strip_prefix("[pid") {
            Some(rest) => rest.split_once("] ").map_or(rest, |(_, call)| call),
            None => l,
        })
        .filter(|l| {
            ["clock_gettime(", "gettimeofday(", "time("]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .count()
}

#[test]
fn clock_loop_makes_no_exits() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        let o = under_umon(&app, &["loop", "1000000"], true);
        let out = stdout(&o);
        assert_eq!(status(&o), 0, "{v:?}: {out}{}", stderr(&o));
        let made: usize = out
            .split("; ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{v:?}: unexpected output {out}"));
        assert!(out.starts_with("loop 1000000: ok;"), "{v:?}: {out}");
        let seen = clock_syscalls(&stderr(&o));
        assert_eq!(
            seen, made,
            "{v:?}: the trace shows {seen} clock syscalls, the program made {made} itself"
        );
    }
}

#[test]
fn vdso_symbols_as_linux() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        let linux = native(&app, &["symbols"], &[], b"");
        let umon = under_umon(&app, &["symbols"], false);
        assert_eq!(status(&linux), 0, "{v:?} natively: {}", stdout(&linux));
        assert_eq!(stdout(&umon), stdout(&linux), "{v:?}: {}", stderr(&umon));
        assert_eq!(status(&umon), 0, "{v:?}");
    }
}

#[test]
fn monotonic_across_threads() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        let o = under_umon(&app, &["threads", "200000"], true);
        assert_eq!(
            stdout(&o),
            "threads: 200000 readings each, 0 backwards\n",
            "{v:?}: {}",
            stderr(&o)
        );
        // Four threads share the one time page: none of their readings exits.
        assert_eq!(clock_syscalls(&stderr(&o)), 0, "{v:?}");
    }
}

fn go_vdso_app() -> PathBuf {
    threads_common::go_build("vdso_go", ".", "vdso-go")
}

#[test]
fn go_time_without_syscalls() {
    if !require_kvm() || !tool_present("go", "golang-go") {
        return;
    }
    let app = go_vdso_app();
    let linux = native(&app, &[] as &[&str], &[], b"");
    let umon = under_umon(&app, &[], true);
    assert_eq!(status(&linux), 0, "natively: {}", stdout(&linux));
    assert_eq!(stdout(&umon), stdout(&linux), "{}", stderr(&umon));
    assert_eq!(status(&umon), 0);
    let seen = clock_syscalls(&stderr(&umon));
    assert_eq!(seen, 0, "Go's runtime made {seen} clock syscalls");
}

#[test]
fn legacy_vsyscall_page() {
    if !require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let o = under_umon(&c_app("vdso_clock", link), &["vsyscall"], false);
        assert_eq!(
            stdout(&o),
            "vsyscall time: ok\nvsyscall gettimeofday: ok\nvsyscall getcpu: returned\n",
            "{link:?}: {}",
            stderr(&o)
        );
        assert_eq!(status(&o), 0, "{link:?}");
    }
}

/// The target address the app names on stderr, and the fault address of umon's report.
fn target_and_fault(err: &str) -> (Option<&str>, Option<&str>) {
    let target = err
        .lines()
        .find_map(|l| l.strip_prefix("target "))
        .map(str::trim);
    let fault = err
        .split("fault address ")
        .nth(1)
        .and_then(|s| s.split(',').next());
    (target, fault)
}

#[test]
fn writes_to_the_time_page_and_the_vdso_fault() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        for (mode, said) in [
            ("write-vvar", "writing below the vDSO\n"),
            ("write-vdso", "writing the vDSO\n"),
        ] {
            let linux = native(&app, &[mode], &[], b"");
            let umon = under_umon(&app, &[mode], false);
            assert_eq!(status(&linux), 128 + 11, "{v:?} {mode} natively");
            assert_eq!(stdout(&linux), said);
            assert_eq!(stdout(&umon), said, "{v:?} {mode}: {}", stderr(&umon));
            assert_eq!(status(&umon), 128 + 11, "{v:?} {mode}");
            let err = stderr(&umon);
            let (target, fault) = target_and_fault(&err);
            assert!(target.is_some() && target == fault, "{v:?} {mode}: {err}");
        }
    }
}

#[test]
fn the_monitor_never_writes_the_time_page_or_the_vdso() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        let linux = native(&app, &["sys-vvar"], &[], b"");
        let umon = under_umon(&app, &["sys-vvar"], false);
        assert_eq!(
            stdout(&linux),
            "clock_gettime into the time page: Bad address\nclock_gettime into the vDSO: Bad address\n",
            "{v:?} natively"
        );
        assert_eq!(stdout(&umon), stdout(&linux), "{v:?}: {}", stderr(&umon));
        assert_eq!(status(&umon), 0, "{v:?}");
    }
}

#[test]
fn map_fixed_over_the_vdso() {
    if !require_kvm() {
        return;
    }
    // Linux refuses too here (the vDSO is a special mapping): the call fails cleanly and the
    // clock still answers.
    for (v, app) in apps() {
        let o = under_umon(&app, &["fixed"], false);
        let out = stdout(&o);
        assert!(
            out.starts_with("mmap MAP_FIXED over the vDSO: ") && out.ends_with("clock after: ok\n"),
            "{v:?}: {out}{}",
            stderr(&o)
        );
        assert_eq!(status(&o), 0, "{v:?}");
    }
}

#[test]
fn getcpu_answers_as_the_syscall() {
    if !require_kvm() {
        return;
    }
    for (v, app) in apps() {
        let o = under_umon(&app, &["getcpu"], false);
        assert_eq!(
            stdout(&o),
            "getcpu: vDSO and syscall agree\n",
            "{v:?}: {}",
            stderr(&o)
        );
        assert_eq!(status(&o), 0, "{v:?}");
    }
}

#[test]
fn vdso_image_has_no_relocations_and_one_load() {
    // The image is mapped as is at a fixed address and nobody relocates a vDSO.
    let readelf = |flag: &str| {
        let o = Command::new("readelf")
            .args(["-W", flag, env!("UMON_VDSO")])
            .output()
            .expect("readelf (binutils)");
        stdout(&o)
    };
    let relocs = readelf("-r");
    assert!(relocs.contains("no relocations"), "{relocs}");
    let phdrs = readelf("-l");
    let loads: Vec<&str> = phdrs
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .collect();
    assert_eq!(loads.len(), 1, "{phdrs}");
    let fields: Vec<&str> = loads[0].split_whitespace().collect();
    assert_eq!(
        fields.get(1..3),
        Some(&["0x000000", "0x0000000000000000"][..]),
        "{phdrs}"
    );
    let versions = readelf("-V");
    assert!(versions.contains("Name: LINUX_2.6"), "{versions}");
}
