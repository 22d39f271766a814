//! Exit-less syscalls (issue 17) against the exit path and native execution, in the same run
//! (ratios in the README):
//! - `exitless_call/*`: 10 000 getppid calls (no work behind them: the channel's own cost)
//!   and 10 000 one-byte writes to /dev/null, in umon with `Exitless::On` and `Off`, and
//!   natively.
//! - `exitless_compute/*`: the CPU-bound loop (no syscalls) with the server enabled, and
//!   natively: the server must cost nothing to a guest that makes no calls.
//! - `exitless/idle_cpu` (printed): host CPU time umon spends per second while the guest
//!   sleeps after a burst of calls: the server's polling after its idle period (goal ~0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, native_run, umon_run_exitless};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use umon::Exitless;

const CALLS: &str = "10000";
const SPIN_ROUNDS: &str = "200000000";

fn calls(c: &mut Criterion) {
    let getppid = c_app("getppid");
    let writes = c_app("writes");
    let mut g = c.benchmark_group("exitless_call");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, app) in [("getppid", &getppid), ("write_null", &writes)] {
        g.bench_function(format!("umon_on_{name}_x10000"), |b| {
            b.iter(|| assert_eq!(umon_run_exitless(app, &[CALLS], Exitless::On).0, 0))
        });
        g.bench_function(format!("umon_off_{name}_x10000"), |b| {
            b.iter(|| assert_eq!(umon_run_exitless(app, &[CALLS], Exitless::Off).0, 0))
        });
        g.bench_function(format!("native_{name}_x10000"), |b| {
            b.iter(|| assert_eq!(native_run(app, &[CALLS]), 0))
        });
    }
    g.finish();
}

fn compute(c: &mut Criterion) {
    let spin = c_app("spin");
    let mut g = c.benchmark_group("exitless_compute");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("umon_on_spin", |b| {
        b.iter(|| assert_eq!(umon_run_exitless(&spin, &[SPIN_ROUNDS], Exitless::On).0, 0))
    });
    g.bench_function("native_spin", |b| {
        b.iter(|| assert_eq!(native_run(&spin, &[SPIN_ROUNDS]), 0))
    });
    g.finish();
}

/// This process's CPU time (user + system) in clock ticks, from /proc/self/stat.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// CPU umon spends while its guest sleeps 2 s after 20 000 calls (the server woke for them),
/// less the same burst without the sleep: the idle server's cost per second.
fn idle_cpu(_: &mut Criterion) {
    let app = c_app("getppid");
    let ticks = |args: &[&str]| {
        let t0 = cpu_ticks();
        let (code, served) = umon_run_exitless(&app, args, Exitless::On);
        assert_eq!(code, 0);
        (cpu_ticks() - t0, served)
    };
    let (burst, served) = ticks(&["20000"]);
    let (slept, _) = ticks(&["20000", "2000"]);
    let hz = 100.0; // USER_HZ on Linux x86-64
    let per_sec_ms = (slept.saturating_sub(burst) as f64 / hz) * 1000.0 / 2.0;
    println!(
        "exitless/idle_cpu: {per_sec_ms:.0} ms of host CPU per second of an idle guest \
         (burst: {served} of 20000 calls served exit-less)"
    );
}

criterion_group!(benches, calls, compute, idle_cpu);
criterion_main!(benches);
