//! epoll_wait wake-up latency in umon against native execution, in the same run (ratio in the
//! README): `benches/apps/ev_bench.c pingpong N`, two threads each blocked in epoll_wait on
//! its own eventfd, waking each other by an eventfd write, N round trips (2 wake-ups each).
//!
//! The `epoll_wakeup` line printed at the end is the cost of one wake-up with the process
//! start taken out ((t(N) - t(0)) / 2N, medians of 7 runs each), and umon's cost as a
//! multiple of native's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, native_run, umon_run};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 2_000;

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

/// Microseconds per wake-up, start-up taken out.
fn wakeup_us(run: impl Fn(&[&str]) -> i32) -> f64 {
    let rounds = ROUNDS.to_string();
    let full = median(|| run(&["pingpong", &rounds]));
    let empty = median(|| run(&["pingpong", "0"]));
    full.saturating_sub(empty).as_secs_f64() * 1e6 / f64::from(2 * ROUNDS)
}

fn loops(c: &mut Criterion) {
    let app = c_app("ev_bench");
    let rounds = ROUNDS.to_string();
    let mut g = c.benchmark_group("events");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function(format!("umon_epoll_pingpong_x{ROUNDS}"), |b| {
        b.iter(|| assert_eq!(umon_run(&app, &["pingpong", &rounds]), 0))
    });
    g.bench_function(format!("native_epoll_pingpong_x{ROUNDS}"), |b| {
        b.iter(|| assert_eq!(native_run(&app, &["pingpong", &rounds]), 0))
    });
    g.finish();
    let umon = wakeup_us(|args| umon_run(&app, args));
    let native = wakeup_us(|args| native_run(&app, args));
    println!(
        "epoll_wakeup: umon {umon:.2} us, native {native:.2} us per wake-up; umon/native {:.1}x",
        umon / native.max(f64::MIN_POSITIVE)
    );
}

criterion_group!(benches, loops);
criterion_main!(benches);
