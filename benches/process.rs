//! Processes in umon against native execution, all in the same run (ratios in the README),
//! each a mode of `tests/apps/proc_ops.c` (static-pie) that times its own loop and prints
//! `ns_per_iter N`:
//! - `process/*fork_exit_wait_x1000`: 1000 times fork, `_exit(0)` in the child, waitpid.
//! - `process/*spawn_hello_x200`: 200 times posix_spawn of a static hello (stdout to
//!   /dev/null) and waitpid.
//! - `process/*pipe_256mib`: 256 MiB from a forked child to its parent through a pipe in
//!   64 KiB writes and reads.
//!
//! Criterion times whole runs (umon's VM start included); the `process/per_iteration` lines
//! printed at the end give the apps' own time per iteration, the best of 5 runs, natively and
//! under umon, and their ratio. A umon run that fails (as before processes were served) is
//! reported as not measured instead of ending the benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::c_app;
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FORKS: &str = "1000";
const SPAWNS: &str = "200";
const PIPE_MIB: &str = "256";
/// One 64 KiB write of `bench_pipe`, in MiB.
const MIB_PER_CHUNK: f64 = 1.0 / 16.0;

struct Apps {
    proc_ops: PathBuf,
    hello: PathBuf,
}

fn apps() -> Apps {
    Apps {
        proc_ops: c_app("proc_ops"),
        hello: c_app("hello"),
    }
}

/// The directory both apps are built into: granted to the guest at the same path, so the
/// spawned hello has the same path in both runs.
fn tmpdir() -> &'static str {
    env!("CARGO_TARGET_TMPDIR")
}

fn command(umon: bool, app: &Path, args: &[&str]) -> Command {
    let mut cmd = if umon {
        let volume = format!("{0}:{0}:ro", tmpdir());
        let mut c = Command::new(env!("CARGO_BIN_EXE_umon"));
        c.args(["run", "--timeout", "600s", "-v", &volume]).arg(app);
        c
    } else {
        Command::new(app)
    };
    cmd.args(args).env_clear().stdin(Stdio::null());
    cmd
}

/// One run: its exit code, and the `ns_per_iter` it printed.
fn run(umon: bool, app: &Path, args: &[&str]) -> Result<f64, String> {
    let out = command(umon, app, args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    match (out.status.code(), text.strip_prefix("ns_per_iter ")) {
        (Some(0), Some(n)) => Ok(n.trim().parse().unwrap()),
        (code, _) => Err(format!(
            "exit {code:?}: {} / {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The three measurements: name, arguments.
fn cases(a: &Apps) -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "fork_exit_wait_x1000",
            vec!["bench_fork".into(), FORKS.into()],
        ),
        (
            "spawn_hello_x200",
            vec![
                "bench_spawn".into(),
                SPAWNS.into(),
                a.hello.to_str().unwrap().into(),
            ],
        ),
        ("pipe_256mib", vec!["bench_pipe".into(), PIPE_MIB.into()]),
    ]
}

fn whole_runs(c: &mut Criterion) {
    let a = apps();
    let mut g = c.benchmark_group("process");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, args) in cases(&a) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(false, &a.proc_ops, &args).expect("proc_ops runs natively");
        for umon in [true, false] {
            let who = if umon { "umon" } else { "native" };
            // Criterion would abort every later benchmark on a failing run: probe once.
            if let Err(e) = run(umon, &a.proc_ops, &args) {
                println!("process/{who}_{name}: not measured ({e})");
                continue;
            }
            g.bench_function(format!("{who}_{name}"), |b| {
                b.iter(|| {
                    let status = command(umon, &a.proc_ops, &args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(status.success());
                })
            });
        }
    }
    g.finish();
}

/// The best (least disturbed) of 5 runs' own time per iteration.
fn best_of_5(umon: bool, app: &Path, args: &[&str]) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        best = best.min(run(umon, app, args)?);
    }
    Ok(best)
}

/// Criterion reports whole runs: this prints the per-iteration times the apps measured.
fn per_iteration(_: &mut Criterion) {
    let a = apps();
    for (name, args) in cases(&a) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let native = best_of_5(false, &a.proc_ops, &args).expect("proc_ops runs natively");
        match best_of_5(true, &a.proc_ops, &args) {
            Ok(umon) if name.starts_with("pipe") => println!(
                "process/per_iteration {name} (64 KiB writes): native {:.0} MiB/s, umon {:.0} \
                 MiB/s, umon/native time {:.2}",
                MIB_PER_CHUNK / (native / 1e9),
                MIB_PER_CHUNK / (umon / 1e9),
                umon / native
            ),
            Ok(umon) => println!(
                "process/per_iteration {name}: native {:.1} µs, umon {:.1} µs, umon/native {:.2}",
                native / 1e3,
                umon / 1e3,
                umon / native
            ),
            Err(e) => println!(
                "process/per_iteration {name}: native {:.1} µs, umon not measured ({e})",
                native / 1e3
            ),
        }
    }
}

criterion_group!(benches, whole_runs, per_iteration);
criterion_main!(benches);
