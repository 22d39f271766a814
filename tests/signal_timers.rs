//! Timers compared with Linux: `tests/apps/sig_timer.c` (alarm, setitimer/getitimer, POSIX
//! timers, CPU-time clocks) in glibc static-pie, glibc static and musl static, natively and
//! under umon; stdout and the exit status must agree byte for byte (the app prints only
//! deterministic facts). The hostile cases (a 1 ns period, 100k timers) run under umon only
//! where the native run is not deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use common::apps::umon_run_cmd;
use common::{finish_within, require_kvm};
use std::process::Stdio;
use std::time::Duration;
use threads_common::{
    assert_no_differences, c_thread_app, compare, status, under_umon, variants, Stdin, Variant,
};

/// `sig_timer MODE` in every variant, compared with its native run.
fn same_as_linux(mode: &str, stdin: Stdin) {
    same_in_every_variant("sig_timer", &[mode], stdin, 0);
}

#[test]
fn alarm_returns_rounded_seconds_and_getitimer_reads_back() {
    same_as_linux("alarm", Stdin::Empty);
}

#[test]
fn itimer_real_ticks_1000_times_into_pause() {
    same_as_linux("tick-pause", Stdin::Empty);
}

#[test]
fn itimer_real_ticks_1000_times_into_sigsuspend() {
    same_as_linux("tick-suspend", Stdin::Empty);
}

#[test]
fn alarm_during_a_blocked_read_restarts_or_interrupts_it() {
    same_as_linux("read", Stdin::HeldOpen);
}

#[test]
fn posix_timer_periodic_1ms_200_times_with_value_and_id() {
    same_as_linux("periodic", Stdin::Empty);
}

#[test]
fn sigev_none_gettime_decreases_abstime_and_expiry() {
    same_as_linux("none", Stdin::Empty);
}

#[test]
fn sigev_thread_id_reaches_the_named_thread() {
    same_as_linux("thread", Stdin::Empty);
}

#[test]
fn sigev_thread_through_the_c_library() {
    same_as_linux("sigev-thread", Stdin::Empty);
}

#[test]
fn blocked_timer_signal_counts_overruns() {
    same_as_linux("overrun", Stdin::Empty);
}

#[test]
fn timer_delete_drops_its_pending_signal() {
    same_as_linux("delete", Stdin::Empty);
}

#[test]
fn itimer_prof_fires_during_a_busy_loop() {
    same_as_linux("prof", Stdin::Empty);
}

#[test]
fn itimer_virtual_fires_during_a_busy_loop() {
    same_as_linux("virtual", Stdin::Empty);
}

#[test]
fn cpu_time_clocks_of_threads_and_the_process() {
    same_as_linux("cpu", Stdin::Empty);
}

#[test]
fn timer_errors_as_linux() {
    same_as_linux("errors", Stdin::Empty);
}

/// umon's `--timeout` for `many`, longer than [`threads_common::UMON_TIMEOUT`] and still under
/// the harness's own limit (`common::apps::TIMEOUT`, 120 s). The app makes 65 538 timer_create
/// calls before the cap, each a full exit (about 23 µs of monitor time): 2.5 s a run on an idle
/// 2-core machine, but 27–29 s measured at load 10 (2.7 s of CPU: the rest is waiting for a
/// core), and every run timed out at 30 s with four copies in parallel. Nothing hangs; 60 s
/// was too short for a loaded CI machine.
const MANY_TIMEOUT: &str = "110s";

#[test]
fn hundred_thousand_timers_hit_a_cap_or_work() {
    if !require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app("sig_timer", v);
        let linux = threads_common::native(&app, &["many"], Stdin::Empty);
        assert_eq!(status(&linux), 0, "many ({v:?}) natively: {linux:?}");
        let mut cmd = umon_run_cmd(&["--timeout", MANY_TIMEOUT], &app, &["many"]);
        let umon = common::apps::run(&mut cmd, b"");
        diffs.extend(threads_common::differences(
            &format!("many ({v:?})"),
            &linux,
            &umon,
        ));
    }
    assert_no_differences(&diffs);
}

/// 16384 timers armed at 10 ms with their signal blocked (a quarter of the cap, so the run's
/// 32k syscalls stay short under load): the timer thread's rounds are bounded, so the app's own
/// timer calls still get through and it ends.
#[test]
fn sixteen_thousand_armed_timers_do_not_starve_the_app() {
    if !require_kvm() {
        return;
    }
    let app = c_thread_app("sig_timer", Variant::Glibc(common::apps::Link::StaticPie));
    assert_no_differences(&compare(
        "many-armed",
        &app,
        &["many-armed"],
        Stdin::Empty,
        0,
    ));
}

/// A 1 ns period: overruns are counted, the app keeps running (natively a 1 ns timer can starve
/// the program, so only umon's run is checked).
#[test]
fn nanosecond_period_does_not_stop_the_app() {
    if !require_kvm() {
        return;
    }
    for v in [Variant::Glibc(common::apps::Link::StaticPie), Variant::Musl] {
        if v == Variant::Musl && !variants().contains(&v) {
            continue;
        }
        let app = c_thread_app("sig_timer", v);
        let out = under_umon(&app, &["nanosecond"], Stdin::Empty);
        assert_eq!(status(&out), 0, "{v:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "alive, signals came 1\n",
            "{v:?}"
        );
    }
}

/// A 1 ns period forever: `--timeout` still ends the VM (124), with the timer thread busy.
#[test]
fn nanosecond_period_forever_ends_at_the_timeout() {
    if !require_kvm() {
        return;
    }
    let app = c_thread_app("sig_timer", Variant::Glibc(common::apps::Link::StaticPie));
    let child = umon_run_cmd(&["--timeout", "1s"], &app, &["nanosecond-forever"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err) = finish_within(child, Duration::from_secs(60));
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("timed out"), "{err}");
}
