//! `umon run` against the floor and native execution, all in the same run (ratios in the README):
//! - `start/*`: start to exit of hello (static-pie) in umon (in-process, and as the CLI
//!   `umon run hello`: fork+exec of umon, seccomp on), natively (fork+exec), and the bare KVM
//!   floor VM; and of the dynamically linked hello (plain `gcc`) in umon with `--root /`
//!   (its ld.so and libc.so.6 from the host) and natively; and of a static binary of over
//!   100 MB (`benches/apps/big_image.c`) in umon and natively; and `python3 -c pass` (the
//!   host's /usr/bin/python3) under umon with `--root /` and natively (skipped without it).
//! - `syscall/*`: 10 000 one-byte writes to /dev/null forwarded by umon, the same natively, and
//!   10 000 raw exits of a bare VM (`out` in a loop): the floor for a forwarded call, and
//!   10 000 round trips through umon's CPL3 syscall trap that the monitor answers at once.
//! - `compute/*`: a CPU-bound loop with no syscalls in umon and natively.
//! - `mm/*`: mmap 512 MiB, touch every page, munmap (`tests/apps/mm_lazy.c cycles 1 512`):
//!   demand faults of lazily mapped memory in umon and natively.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, floor, native_run, umon_run, umon_run_with_volumes};
use criterion::{criterion_group, criterion_main, Criterion};
use kvm_ioctls::Kvm;
use std::time::Duration;

const CALLS: u16 = 10_000;
const SPIN_ROUNDS: &str = "200000000";
/// The host's Python, run by `start/*_python3_pass` (`python3 -c pass`).
const PYTHON3: &str = "/usr/bin/python3";

fn start(c: &mut Criterion) {
    let kvm = Kvm::new().expect("/dev/kvm");
    let hello = c_app("hello");
    let mut g = c.benchmark_group("start");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    g.bench_function("floor", |b| b.iter(|| floor(&kvm, 1)));
    g.bench_function("umon_hello", |b| {
        b.iter(|| assert_eq!(umon_run(&hello, &[]), 0))
    });
    g.bench_function("umon_cli_hello", |b| {
        b.iter(|| {
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_umon"))
                .arg("run")
                .arg(&hello)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        })
    });
    g.bench_function("native_hello", |b| {
        b.iter(|| assert_eq!(native_run(&hello, &[]), 0))
    });
    // Issue 13's goal: a >100 MB static binary starts within 1.5x of hello.
    let big = c_app("big_image");
    g.bench_function("umon_big_image", |b| {
        b.iter(|| assert_eq!(umon_run(&big, &[]), 0))
    });
    g.bench_function("native_big_image", |b| {
        b.iter(|| assert_eq!(native_run(&big, &[]), 0))
    });
    let dynamic = dynamic_hello();
    let root = umon::linux::fs::volume::parse_root("/").expect("--root /");
    g.bench_function("umon_dynamic_hello", |b| {
        b.iter(|| assert_eq!(umon_run_with_volumes(&dynamic, &[], vec![root.clone()]), 0))
    });
    g.bench_function("native_dynamic_hello", |b| {
        b.iter(|| assert_eq!(native_run(&dynamic, &[]), 0))
    });
    // Issue 14: the host's Python (its ld.so, libraries and standard library from `--root /`).
    match std::path::Path::new(PYTHON3) {
        python if python.exists() => {
            g.bench_function("umon_python3_pass", |b| {
                b.iter(|| {
                    let code = umon_run_with_volumes(python, &["-c", "pass"], vec![root.clone()]);
                    assert_eq!(code, 0)
                })
            });
            g.bench_function("native_python3_pass", |b| {
                b.iter(|| assert_eq!(native_run(python, &["-c", "pass"]), 0))
            });
        }
        _ => eprintln!("skipping start/*_python3_pass: this host has no {PYTHON3}"),
    }
    g.finish();
}

/// tests/apps/hello.c linked as gcc links by default: a PIE with PT_INTERP and libc.so.6.
fn dynamic_hello() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-hello-dynamic");
    let ok = std::process::Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(root.join("tests/apps/hello.c"))
        .status()
        .expect("run gcc")
        .success();
    assert!(ok, "gcc failed for the dynamic hello");
    out
}

fn syscall(c: &mut Criterion) {
    let kvm = Kvm::new().expect("/dev/kvm");
    let writes = c_app("writes");
    let n = CALLS.to_string();
    let mut g = c.benchmark_group("syscall");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("raw_exit_x10000", |b| b.iter(|| floor(&kvm, CALLS)));
    // umon's own trap with no work behind it: a CPL3 `syscall` that the monitor answers at once.
    g.bench_function("umon_trap_x10000", |b| {
        b.iter(|| {
            let config = umon::Config {
                mode: umon::Mode::SyscallLoop(u64::from(CALLS)),
                ..Default::default()
            };
            let report = umon::Vm::new(&config).unwrap().run().unwrap();
            assert_eq!(report.status, umon::ExitStatus::Exited(0));
        })
    });
    g.bench_function("umon_write_x10000", |b| {
        b.iter(|| assert_eq!(umon_run(&writes, &[&n]), 0))
    });
    g.bench_function("native_write_x10000", |b| {
        b.iter(|| assert_eq!(native_run(&writes, &[&n]), 0))
    });
    g.finish();
}

fn compute(c: &mut Criterion) {
    let spin = c_app("spin");
    let mut g = c.benchmark_group("compute");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("umon_spin", |b| {
        b.iter(|| assert_eq!(umon_run(&spin, &[SPIN_ROUNDS]), 0))
    });
    g.bench_function("native_spin", |b| {
        b.iter(|| assert_eq!(native_run(&spin, &[SPIN_ROUNDS]), 0))
    });
    g.finish();
}

fn mm(c: &mut Criterion) {
    let app = c_app("mm_lazy");
    let args = ["cycles", "1", "512"];
    let mut g = c.benchmark_group("mm");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("umon_touch_512m", |b| {
        b.iter(|| assert_eq!(umon_run(&app, &args), 0))
    });
    g.bench_function("native_touch_512m", |b| {
        b.iter(|| assert_eq!(native_run(&app, &args), 0))
    });
    g.finish();
}

/// Peak RSS of the `umon` process running hello with 1 GiB of guest RAM (target: <= 4 MiB).
/// Criterion measures time only, so this one prints its measurement.
fn peak_rss(_: &mut Criterion) {
    let hello = c_app("hello");
    let mut worst = 0;
    for _ in 0..5 {
        let (code, rss) = common::run_peak_rss_kib(
            std::process::Command::new(env!("CARGO_BIN_EXE_umon"))
                .args(["run", "--memory", "1G"])
                .arg(&hello)
                .stdout(std::process::Stdio::null()),
        );
        assert_eq!(code, 0);
        worst = worst.max(rss);
    }
    println!("memory/umon_hello_peak_rss: {worst} KiB (target 4096 KiB)");
}

criterion_group!(benches, start, syscall, compute, mm, peak_rss);
criterion_main!(benches);
