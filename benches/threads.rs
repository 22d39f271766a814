//! Threads in umon against native execution, all in the same run (ratios in the README):
//! - `threads/*create_join_x1000`: 1000 pthreads created and joined one after another.
//! - `threads/*futex_pingpong_x10000`: 10 000 round trips between two threads through private
//!   futex WAIT/WAKE.
//! - `threads/*spin_*`: a CPU-bound loop on 1 thread and split over every host CPU; the
//!   `parallel_speedup` line printed at the end is each one's speed-up (1 thread / all CPUs)
//!   and umon's as a fraction of native's (goal: >= 0.9).
//! - `threads/*pipe_256mib`: 256 MiB from one thread to another through a pipe in 64 KiB
//!   writes and reads; the `pipe_throughput` line printed at the end gives MiB/s both ways.
//! - `threads/*_mprotect_x2000_{alone,spinning}`: 2000 mprotect(PROT_NONE)/mprotect(RW)
//!   round trips on a touched page, alone and with another thread spinning in guest code
//!   (every takeaway then reaches its vCPU: umon's TLB shootdown, Linux's IPI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, native_run, umon_run};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::time::{Duration, Instant};

const THREADS: &str = "1000";
const ROUND_TRIPS: &str = "10000";
const SPIN_ROUNDS: &str = "400000000";
const PIPE_MIB: &str = "256";

fn cpus() -> String {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string()
}

fn create_join(c: &mut Criterion) {
    let app = c_app("thr_create");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("umon_create_join_x1000", |b| {
        b.iter(|| assert_eq!(umon_run(&app, &[THREADS]), 0))
    });
    g.bench_function("native_create_join_x1000", |b| {
        b.iter(|| assert_eq!(native_run(&app, &[THREADS]), 0))
    });
    g.finish();
}

fn futex_pingpong(c: &mut Criterion) {
    let app = c_app("thr_pingpong");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("umon_futex_pingpong_x10000", |b| {
        b.iter(|| assert_eq!(umon_run(&app, &[ROUND_TRIPS]), 0))
    });
    g.bench_function("native_futex_pingpong_x10000", |b| {
        b.iter(|| assert_eq!(native_run(&app, &[ROUND_TRIPS]), 0))
    });
    g.finish();
}

fn mprotect_shootdown(c: &mut Criterion) {
    let app = c_app("thr_mprotect");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, threads) in [("alone", "1"), ("spinning", "2")] {
        g.bench_function(format!("umon_mprotect_x2000_{name}"), |b| {
            b.iter(|| assert_eq!(umon_run(&app, &["2000", threads]), 0))
        });
        g.bench_function(format!("native_mprotect_x2000_{name}"), |b| {
            b.iter(|| assert_eq!(native_run(&app, &["2000", threads]), 0))
        });
    }
    g.finish();
}

fn spin(c: &mut Criterion) {
    let app = c_app("thr_spin");
    let all = cpus();
    let mut g = c.benchmark_group("threads");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, threads) in [("1", "1"), ("all_cpus", all.as_str())] {
        g.bench_function(format!("umon_spin_{name}"), |b| {
            b.iter(|| assert_eq!(umon_run(&app, &[threads, SPIN_ROUNDS]), 0))
        });
        g.bench_function(format!("native_spin_{name}"), |b| {
            b.iter(|| assert_eq!(native_run(&app, &[threads, SPIN_ROUNDS]), 0))
        });
    }
    g.finish();
}

/// The best of 5 runs of `run`, in seconds (the least disturbed by other load), or the exit
/// status of a run that failed.
fn best_of_5(run: impl Fn() -> i32) -> Result<f64, i32> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        match run() {
            0 => best = best.min(t.elapsed().as_secs_f64()),
            code => return Err(code),
        }
    }
    Ok(best)
}

/// Criterion reports times, not ratios of ratios: this prints the speed-ups it implies.
fn parallel_speedup(_: &mut Criterion) {
    let app = c_app("thr_spin");
    let all = cpus();
    let speedup = |run: &dyn Fn(&Path, &[&str]) -> i32| -> Result<f64, i32> {
        let one = best_of_5(|| run(&app, &["1", SPIN_ROUNDS]))?;
        let many = best_of_5(|| run(&app, &[&all, SPIN_ROUNDS]))?;
        Ok(one / many)
    };
    let native = speedup(&native_run).expect("thr_spin runs natively");
    // Printed, not asserted: the line must say so when umon cannot run the app at all.
    match speedup(&umon_run) {
        Ok(umon) => println!(
            "threads/parallel_speedup on {all} CPUs: native {native:.2}x, umon {umon:.2}x, \
             umon/native {:.2} (goal >= 0.9)",
            umon / native
        ),
        Err(code) => println!(
            "threads/parallel_speedup on {all} CPUs: native {native:.2}x, umon not measured \
             (thr_spin exited {code} under umon)"
        ),
    }
}

fn pipe(c: &mut Criterion) {
    let app = c_app("pipe_stream");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("umon_pipe_256mib", |b| {
        b.iter(|| assert_eq!(umon_run(&app, &[PIPE_MIB]), 0))
    });
    g.bench_function("native_pipe_256mib", |b| {
        b.iter(|| assert_eq!(native_run(&app, &[PIPE_MIB]), 0))
    });
    g.finish();
}

/// The throughput the pipe runs imply (best of 5, whole runs: VM start-up included for umon).
fn pipe_throughput(_: &mut Criterion) {
    let app = c_app("pipe_stream");
    let mib: f64 = PIPE_MIB.parse().unwrap();
    let rate = |run: &dyn Fn(&Path, &[&str]) -> i32| best_of_5(|| run(&app, &[PIPE_MIB]));
    let native = rate(&native_run).expect("pipe_stream runs natively");
    match rate(&umon_run) {
        Ok(umon) => println!(
            "threads/pipe_throughput of {mib} MiB in 64 KiB writes: native {:.0} MiB/s, umon \
             {:.0} MiB/s, umon/native {:.2}",
            mib / native,
            mib / umon,
            native / umon
        ),
        Err(code) => println!(
            "threads/pipe_throughput: native {:.0} MiB/s, umon not measured (exit {code})",
            mib / native
        ),
    }
}

criterion_group!(
    benches,
    create_join,
    futex_pingpong,
    mprotect_shootdown,
    spin,
    parallel_speedup,
    pipe,
    pipe_throughput
);
criterion_main!(benches);
