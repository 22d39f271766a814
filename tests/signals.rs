//! Signal handlers, compared with Linux: `tests/apps/sig_handlers.c` in glibc static-pie,
//! glibc static and musl static runs natively and under umon; stdout and the exit status must
//! agree (and stderr where the app is not killed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use common::require_kvm;
use threads_common::{c_thread_app, native, status, under_umon, variants, Stdin};

fn handled(mode: &str) {
    same_in_every_variant("sig_handlers", &[mode], Stdin::Empty, 0);
}

/// The app dies of `sig`: same stdout and status as Linux, and umon's one line.
fn killed(mode: &str, sig: &str, code: i32) {
    if !require_kvm() {
        return;
    }
    for v in variants() {
        let app = c_thread_app("sig_handlers", v);
        let linux = native(&app, &[mode], Stdin::Empty);
        let umon = under_umon(&app, &[mode], Stdin::Empty);
        let what = format!("{mode} ({v:?})");
        assert_eq!(status(&linux), code, "{what} natively");
        assert_eq!(status(&umon), code, "{what} under umon: {umon:?}");
        assert_eq!(linux.stdout, umon.stdout, "{what}: stdout");
        let err = String::from_utf8_lossy(&umon.stderr);
        assert!(
            err.contains(&format!("app killed by {sig}")),
            "{what}: {err}"
        );
    }
}

#[test]
fn siginfo_handler_from_raise_kill_tgkill_and_unblock() {
    handled("info");
}

#[test]
fn resethand_second_raise_kills() {
    killed("resethand", "SIGUSR1", 128 + libc::SIGUSR1);
}

#[test]
fn nodefer_nests_default_defers() {
    handled("nodefer");
}

#[test]
fn mask_inside_handler_and_restored() {
    handled("mask");
}

#[test]
fn xmm_registers_survive_a_clobbering_handler() {
    handled("xmm");
}

#[test]
fn sigreturn_accepts_linux_user_code_selector() {
    handled("linux-cs");
}

#[test]
fn mxcsr_reset_for_the_handler_and_restored_after() {
    handled("mxcsr");
}

#[test]
fn sigaltstack_onstack_handler_runs_there() {
    handled("altstack");
}

#[test]
fn altstack_flags_autodisarm_and_uc_stack() {
    handled("altstack-flags");
}

#[test]
fn handler_changes_uc_mcontext_rip() {
    handled("mcontext-rip");
}

#[test]
fn handler_at_a_non_canonical_address_is_sigsegv() {
    killed("badhandler", "SIGSEGV", 128 + libc::SIGSEGV);
}

#[test]
fn sigreturn_garbage_frame_is_sigsegv() {
    killed("badframe", "SIGSEGV", 128 + libc::SIGSEGV);
    // The restored mask (the garbage) blocks SIGSEGV: Linux kills even with a handler.
    killed("badframe-handled", "SIGSEGV", 128 + libc::SIGSEGV);
}

#[test]
fn rlimit_nice_and_rtprio_are_what_linux_starts_a_process_with() {
    if !require_kvm() {
        return;
    }
    let app = common::apps::c_app("sig_rlimit", common::apps::Link::StaticPie);
    let native = std::process::Command::new(&app).output().unwrap();
    let umon = std::process::Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(["run", "--timeout", "60s"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(native.status.success());
    assert_eq!(
        (String::from_utf8_lossy(&umon.stdout), umon.status.code()),
        (String::from_utf8_lossy(&native.stdout), Some(0))
    );
}
