//! Builders and runners for the thread tests (`tests/threads.rs`, `tests/threads_hostile.rs`,
//! which include this file with `#[path]`): the C apps in every C library variant (glibc
//! static-pie and static through [`apps::c_app`], musl static through `musl-gcc`), the Go app, and
//! running an app natively and under `umon run` with stdin either empty or held open (never
//! written, never closed) until the program ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use crate::common::apps::{self, built, Link};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The `--timeout` every thread test gives umon: a hang ends the run with 124, not the suite.
pub const UMON_TIMEOUT: &str = "60s";

/// How a C thread app is built: the two glibc links umon runs, and musl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Glibc(Link),
    /// `musl-gcc -static`.
    Musl,
}

/// Every variant this machine can build: musl only where `musl-gcc` exists (.ci/run installs
/// musl-tools; with `UMON_REQUIRE_KVM=1`, as in CI, a missing musl-gcc fails the test).
pub fn variants() -> Vec<Variant> {
    let mut v: Vec<Variant> = Link::RUNNABLE.iter().map(|&l| Variant::Glibc(l)).collect();
    if tool_present("musl-gcc", "musl-tools") {
        v.push(Variant::Musl);
    }
    v
}

/// Whether `tool` runs here; if not, skips with a note, or panics under `UMON_REQUIRE_KVM=1`.
pub fn tool_present(tool: &str, package: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("UMON_REQUIRE_KVM").as_deref() == Ok("1") {
            panic!("{tool} is missing (Debian package {package}; .ci/run installs it)");
        }
        eprintln!("skipping the {tool} part: {tool} is missing (Debian package {package})");
    }
    ok
}

/// `tests/apps/NAME.c` built as `variant`.
pub fn c_thread_app(name: &str, variant: Variant) -> PathBuf {
    match variant {
        Variant::Glibc(link) => apps::c_app(name, link),
        Variant::Musl => {
            let src = sources().join(format!("{name}.c"));
            built(&format!("{name}-musl-static"), |out| {
                let mut cmd = Command::new("musl-gcc");
                cmd.args(["-static", "-O2", "-g", "-Wall", "-o"])
                    .arg(out)
                    .arg(&src);
                cmd
            })
        }
    }
}

/// `tests/apps/go` built with `go build` (CGO_ENABLED=0, so static), offline: the module has no
/// dependencies; GOCACHE and GOPATH live under the target directory.
pub fn go_app() -> PathBuf {
    go_build("go", ".", "umontest-go")
}

/// The Go package `pkg` of the module in `tests/apps/MODULE`, built as [`go_app`] is into the
/// binary `name`.
pub fn go_build(module: &str, pkg: &str, name: &str) -> PathBuf {
    let dir = sources().join(module);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    built(name, |out| {
        let mut cmd = Command::new("go");
        cmd.arg("build")
            .arg("-o")
            .arg(out)
            .arg(pkg)
            .current_dir(&dir)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", tmp.join("cache"))
            .env("GOPATH", tmp.join("path"));
        cmd
    })
}

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// What the app gets on stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdin {
    /// An empty pipe, closed at once: reads see end of file.
    Empty,
    /// A pipe held open and never written until the program ends: reads block.
    HeldOpen,
}

/// The exit status as umon reports it: the code, or 128+N for a death by signal N.
pub fn status(o: &Output) -> i32 {
    o.status
        .code()
        .or_else(|| o.status.signal().map(|s| 128 + s))
        .expect("an exit code or a signal")
}

/// `app ARGS...` natively, with an empty environment (what umon gives the app).
pub fn native(app: &Path, args: &[&str], stdin: Stdin) -> Output {
    let mut cmd = Command::new(app);
    cmd.args(args).env_clear();
    run(cmd, stdin)
}

/// `umon run --timeout 60s APP ARGS...`.
pub fn under_umon(app: &Path, args: &[&str], stdin: Stdin) -> Output {
    let cmd = apps::umon_run_cmd(&["--timeout", UMON_TIMEOUT], app, args);
    run(cmd, stdin)
}

fn run(mut cmd: Command, stdin: Stdin) -> Output {
    match stdin {
        Stdin::Empty => apps::run(&mut cmd, b""),
        Stdin::HeldOpen => run_stdin_open(cmd),
    }
}

/// Runs `cmd` with a stdin pipe nobody writes to and that stays open until the program has
/// ended; fails the test after [`apps::TIMEOUT`].
fn run_stdin_open(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = apps::spawn_retrying_busy_text(&mut cmd);
    let input = child.stdin.take();
    let drain = |p: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                p.read_to_end(&mut buf).expect("read the child's output");
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + apps::TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        if Instant::now() > deadline {
            // Only this child, which this test started.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {:?}; killed it",
                apps::TIMEOUT
            );
        }
        thread::sleep(Duration::from_millis(2));
    };
    drop(input);
    Output {
        status,
        stdout: out.join().expect("stdout reader thread"),
        stderr: err.join().expect("stderr reader thread"),
    }
}

/// Runs `app ARGS...` natively and under umon and returns a description of every difference in
/// stdout, stderr and exit status (empty when they agree byte for byte). The native run must
/// succeed with `expect_status`; umon must never panic.
pub fn compare(
    what: &str,
    app: &Path,
    args: &[&str],
    stdin: Stdin,
    expect_status: i32,
) -> Vec<String> {
    let linux = native(app, args, stdin);
    assert_eq!(
        status(&linux),
        expect_status,
        "{what} natively: unexpected status; stdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&linux.stdout),
        String::from_utf8_lossy(&linux.stderr)
    );
    let text = String::from_utf8_lossy(&linux.stdout);
    assert!(
        !text.contains("FAIL"),
        "{what}: the app's own checks fail natively:\n{text}"
    );
    let umon = under_umon(app, args, stdin);
    differences(what, &linux, &umon)
}

/// What differs between the native run and umon's, one entry per stream.
pub fn differences(what: &str, linux: &Output, umon: &Output) -> Vec<String> {
    let uerr = String::from_utf8_lossy(&umon.stderr);
    assert!(
        !uerr.contains("panicked at")
            || String::from_utf8_lossy(&linux.stderr).contains("panicked at"),
        "{what}: umon panicked:\n{uerr}"
    );
    let mut diffs = Vec::new();
    if linux.stdout != umon.stdout {
        diffs.push(format!(
            "{what}: stdout differs\n--- linux\n{}--- umon\n{}",
            String::from_utf8_lossy(&linux.stdout),
            String::from_utf8_lossy(&umon.stdout)
        ));
    }
    if linux.stderr != umon.stderr {
        diffs.push(format!(
            "{what}: stderr differs\n--- linux\n{}--- umon\n{}",
            String::from_utf8_lossy(&linux.stderr),
            uerr
        ));
    }
    if status(linux) != status(umon) {
        diffs.push(format!(
            "{what}: exit status linux {} umon {}",
            status(linux),
            status(umon)
        ));
    }
    diffs
}

/// `tests/apps/NAME.c` with `args` in every C variant, natively and under umon: stdout, stderr
/// and the exit status (`status`) must agree; fails with every difference. Skipped without KVM
/// unless it is required.
pub fn same_in_every_variant(name: &str, args: &[&str], stdin: Stdin, status: i32) {
    if !crate::common::require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = c_thread_app(name, v);
        diffs.extend(compare(
            &format!("{name} {args:?} ({v:?})"),
            &app,
            args,
            stdin,
            status,
        ));
    }
    assert_no_differences(&diffs);
}

/// Fails the test with every difference collected.
pub fn assert_no_differences(diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "umon differs from Linux:\n{}",
        diffs.join("\n")
    );
}
