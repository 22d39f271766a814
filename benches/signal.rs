//! Signal round trips in umon against native execution, in the same run (ratio in the README):
//! - `signal/*_raise_x10000`: `benches/apps/sig_bench.c raise 10000`, each round tgkill(self,
//!   SIGUSR1) -> handler -> rt_sigreturn.
//! - `signal/*_pingpong_x2000`: two threads sending each other a signal with tgkill and taking
//!   it with sigwaitinfo, 2000 round trips.
//!
//! The `signal_round` lines printed at the end are the cost of one round with the process start
//! taken out ((t(N) - t(0)) / N, medians of 7 runs each), umon's cost as a multiple of native's,
//! and the bare-KVM floor: one `out` exit of a minimal VM, the least any round trip through the
//! monitor can cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, floor, native_run, umon_run};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::time::{Duration, Instant};

const RAISES: u32 = 10_000;
const PINGPONGS: u32 = 2_000;

fn loops(c: &mut Criterion) {
    let app = c_app("sig_bench");
    let mut g = c.benchmark_group("signal");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (mode, n) in [("raise", RAISES), ("pingpong", PINGPONGS)] {
        let rounds = n.to_string();
        g.bench_function(format!("umon_{mode}_x{n}"), |b| {
            b.iter(|| assert_eq!(umon_run(&app, &[mode, &rounds]), 0))
        });
        g.bench_function(format!("native_{mode}_x{n}"), |b| {
            b.iter(|| assert_eq!(native_run(&app, &[mode, &rounds]), 0))
        });
    }
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

/// Microseconds per round of `mode`, start-up taken out.
fn round_us(mode: &str, n: u32, run: impl Fn(&[&str]) -> i32) -> f64 {
    let rounds = n.to_string();
    let full = median(|| run(&[mode, &rounds]));
    let empty = median(|| run(&[mode, "0"]));
    full.saturating_sub(empty).as_secs_f64() * 1e6 / f64::from(n)
}

/// Microseconds per exit of the bare VM.
fn floor_exit_us() -> f64 {
    let kvm = kvm_ioctls::Kvm::new().unwrap();
    const EXITS: u16 = 10_000;
    let full = median(|| {
        floor(&kvm, EXITS);
        0
    });
    let one = median(|| {
        floor(&kvm, 1);
        0
    });
    full.saturating_sub(one).as_secs_f64() * 1e6 / f64::from(EXITS - 1)
}

fn per_round(app: &Path) {
    let floor = floor_exit_us();
    for (mode, n) in [("raise", RAISES), ("pingpong", PINGPONGS)] {
        let umon = round_us(mode, n, |args| umon_run(app, args));
        let native = round_us(mode, n, |args| native_run(app, args));
        println!(
            "signal_round {mode}: umon {umon:.2} us, native {native:.2} us per round; \
             umon/native {:.1}x; bare-KVM exit floor {floor:.2} us",
            umon / native.max(f64::MIN_POSITIVE)
        );
    }
}

criterion_group!(benches, loops);
criterion_main!(benches);
