//! Clock reads through the vDSO, umon against native, in the same run (ratio in the README):
//! `vdso/*_loop_x1M` runs `tests/apps/vdso_clock.c loop 1000000` (each round: clock_gettime
//! MONOTONIC and REALTIME twice, gettimeofday and time through glibc, plus its checks) under
//! umon and natively. The `clock_round` line printed at the end is the cost of one round with
//! the process start taken out ((t(1M) - t(0)) / 1M, medians of 7 runs each) and umon's speed
//! as a fraction of native's (the goal: >= 0.5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, native_run, umon_run};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 1_000_000;

fn loops(c: &mut Criterion) {
    let app = c_app("vdso_clock");
    let rounds = ROUNDS.to_string();
    let mut g = c.benchmark_group("vdso");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("umon_loop_x1M", |b| {
        b.iter(|| assert_eq!(umon_run(&app, &["loop", &rounds]), 0))
    });
    g.bench_function("native_loop_x1M", |b| {
        b.iter(|| assert_eq!(native_run(&app, &["loop", &rounds]), 0))
    });
    g.finish();
    per_round(&app);
}

fn median(run: impl Fn() -> i32) -> Duration {
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let t0 = Instant::now();
            assert_eq!(run(), 0);
            t0.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Nanoseconds per round, start-up taken out.
fn round_ns(run: impl Fn(&[&str]) -> i32) -> f64 {
    let rounds = ROUNDS.to_string();
    let full = median(|| run(&["loop", &rounds]));
    let empty = median(|| run(&["loop", "0"]));
    full.saturating_sub(empty).as_nanos() as f64 / f64::from(ROUNDS)
}

fn per_round(app: &Path) {
    let umon = round_ns(|args| umon_run(app, args));
    let native = round_ns(|args| native_run(app, args));
    println!(
        "clock_round: umon {umon:.1} ns, native {native:.1} ns per round of 6 clock reads; \
         umon speed {:.2}x native",
        native / umon.max(f64::MIN_POSITIVE)
    );
}

criterion_group!(benches, loops);
criterion_main!(benches);
