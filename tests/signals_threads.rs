//! Signals between threads, compared with Linux: `tests/apps/sig_threads.c` in glibc
//! static-pie, glibc static and musl static, natively and under umon; stdout, stderr and the
//! exit status must agree byte for byte. Process-directed signals land on a thread that does
//! not block them, a thread spinning in guest code is kicked, blocking calls are interrupted
//! (EINTR, or restarted with SA_RESTART), real-time signals queue in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use common::require_kvm;
use threads_common::{assert_no_differences, c_thread_app, compare, variants, Stdin};

fn everywhere(mode: &str, stdin: Stdin) {
    same_in_every_variant("sig_threads", &[mode], stdin, 0);
}

#[test]
fn kill_to_the_process_lands_on_the_thread_not_blocking_it() {
    everywhere("target", Stdin::Empty);
}

#[test]
fn tgkill_to_a_thread_spinning_in_guest_code_runs_its_handler() {
    everywhere("spin", Stdin::Empty);
}

#[test]
fn read_of_stdin_interrupted_eintr_or_restarted() {
    everywhere("read", Stdin::HeldOpen);
}

#[test]
fn futex_wait_interrupted_eintr_or_restarted() {
    everywhere("futex", Stdin::Empty);
}

#[test]
fn nanosleep_interrupted_with_remaining_time_and_not_by_ignored_signals() {
    everywhere("sleep", Stdin::Empty);
}

#[test]
fn realtime_signals_queue_lowest_first_in_order_standard_coalesce() {
    everywhere("rtorder", Stdin::Empty);
}

#[test]
fn sigsuspend_ping_pong_and_pause() {
    everywhere("suspend", Stdin::Empty);
}

#[test]
fn ppoll_mask_lets_a_signal_through_and_is_restored() {
    everywhere("ppoll", Stdin::HeldOpen);
}

#[test]
fn storm_coalesces_limits_queueing_and_counts_every_delivery() {
    everywhere("storm", Stdin::Empty);
}

/// `tests/apps/sig_go_preempt` built with `go build` (CGO_ENABLED=0), offline, as the thread
/// tests build their Go app.
fn go_preempt_app() -> std::path::PathBuf {
    threads_common::go_build("sig_go_preempt", ".", "sig-go-preempt")
}

/// Go preempts a goroutine spinning without calls by SIGURG tgkill'd to its thread: with one P
/// the main goroutine runs again only through that signal's handler.
#[test]
fn go_preempts_a_spinning_goroutine_with_sigurg() {
    if !require_kvm() || !threads_common::tool_present("go", "golang-go") {
        return;
    }
    let app = go_preempt_app();
    assert_no_differences(&compare("go preempt", &app, &[], Stdin::Empty, 0));
}

/// `--trace` shows a delivery and the sigreturn as strace does:
/// `--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=1, si_uid=N} ---` and
/// `rt_sigreturn({mask=[]}) = -1 EINTR` (what the interrupted sleep returns), on the thread
/// that ran the handler.
#[test]
fn trace_shows_deliveries_and_sigreturn_like_strace() {
    if !require_kvm() {
        return;
    }
    let app = c_thread_app("sig_threads", variants()[0]);
    let out = common::apps::umon_run(
        &["--trace", "--timeout", threads_common::UMON_TIMEOUT],
        &app,
        &["target"],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let uid = rustix::process::getuid().as_raw();
    let delivery =
        format!("--- SIGUSR1 {{si_signo=SIGUSR1, si_code=SI_USER, si_pid=1, si_uid={uid}}} ---");
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&delivery))
        .unwrap_or_else(|| panic!("no line `{delivery}` in:\n{err}"));
    // The worker (tid 2) took it, then returned from the handler with its empty mask.
    assert!(lines[at].starts_with("[pid     2] "), "{}", lines[at]);
    assert!(
        lines[at + 1..]
            .iter()
            .any(|l| l.starts_with("[pid     2] rt_sigreturn({mask=[]}) = ")),
        "no sigreturn line after the delivery:\n{err}"
    );
}
