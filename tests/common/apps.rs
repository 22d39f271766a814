//! The test programs in `tests/apps/`, built on demand, and helpers to run them under `umon run`
//! and natively.
//!
//! Each program is compiled at most once per test process, the first time a test asks for it,
//! into `CARGO_TARGET_TMPDIR/apps/`. Tests running in parallel that want the same program wait
//! for that one build; different programs build in parallel. A build writes into a private
//! temporary directory and then renames the result into place, so a concurrent test process
//! (another test binary) never sees a half-written executable. Nothing here is committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How a C test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `gcc -static-pie`: ET_DYN, no PT_INTERP, relocates itself.
    StaticPie,
    /// `gcc -static`: ET_EXEC at 0x400000.
    Static,
    /// Plain `gcc`: dynamically linked with PT_INTERP (umon rejects it).
    Dynamic,
}

impl Link {
    /// The two variants umon must run.
    pub const RUNNABLE: [Link; 2] = [Link::StaticPie, Link::Static];

    fn flag(self) -> Option<&'static str> {
        match self {
            Link::StaticPie => Some("-static-pie"),
            Link::Static => Some("-static"),
            Link::Dynamic => None,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Link::StaticPie => "static-pie",
            Link::Static => "static",
            Link::Dynamic => "dynamic",
        }
    }
}

/// Longest a single run of umon or of a native program may take before the test fails (and
/// the process is killed) instead of hanging the suite.
pub const TIMEOUT: Duration = Duration::from_secs(120);

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("apps")
}

/// `tests/apps/NAME.c`, compiled with `gcc -O2 -g` and the link mode; returns the executable.
pub fn c_app(name: &str, link: Link) -> PathBuf {
    let src = sources().join(format!("{name}.c"));
    built(&format!("{name}-{}", link.suffix()), |out| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O2", "-g", "-Wall"]);
        cmd.args(link.flag());
        cmd.arg("-o").arg(out).arg(&src);
        cmd
    })
}

/// `tests/apps/NAME.rs`, compiled with `rustc -O -C target-feature=+crt-static` (a static-pie
/// executable); `rustc` is `$RUSTC` if set, else the one on `PATH`.
pub fn rust_app(name: &str) -> PathBuf {
    let src = sources().join(format!("{name}.rs"));
    built(&format!("{name}-rs"), |out| {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let mut cmd = Command::new(rustc);
        cmd.args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ]);
        cmd.arg("-o").arg(out).arg(&src);
        cmd
    })
}

/// Builds `key` once per process with the command `compile(output_path)` returns.
pub fn built(key: &str, compile: impl FnOnce(&Path) -> Command) -> PathBuf {
    static CACHE: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_owned())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let dir = out_dir();
        // Per process and key: the compilers' own temporary files cannot collide either.
        let scratch = dir.join(format!(".build-{key}-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).expect("create the app build directory");
        let tmp = scratch.join(key);
        let mut cmd = compile(&tmp);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?} to build the test app {key}: {e}"));
        assert!(
            out.status.success(),
            "building test app {key} failed: {cmd:?}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dest = dir.join(key);
        std::fs::rename(&tmp, &dest).expect("move the built app into place");
        std::fs::remove_dir_all(&scratch).ok();
        dest
    })
    .clone()
}

/// Runs `cmd` with `stdin` fed through a pipe (from a thread, so a program that writes before
/// reading cannot deadlock), stdout and stderr captured. Fails the test after [`TIMEOUT`].
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    run_with_stdout(cmd, stdin, Stdio::piped())
}

/// Like [`run`], with stdout sent to `stdout` instead (e.g. a terminal); unless that is
/// `Stdio::piped()`, the returned `stdout` is empty.
pub fn run_with_stdout(cmd: &mut Command, stdin: &[u8], stdout: Stdio) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped());
    let mut child = spawn_retrying_busy_text(cmd);
    let input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        let mut input = input;
        // The program may exit without reading everything: a broken pipe is not our failure.
        let _ = input.write_all(&data);
    });
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_or_kill(&mut child, cmd);
    writer.join().expect("stdin writer thread");
    Output {
        status,
        stdout: out.join().expect("stdout reader thread"),
        stderr: err.join().expect("stderr reader thread"),
    }
}

/// Spawns `cmd`, retrying while exec says ETXTBSY: a test that has just written the
/// executable can race another test thread's fork, whose child holds the write descriptor
/// until its own exec closes it (O_CLOEXEC closes at exec, not at fork).
pub fn spawn_retrying_busy_text(cmd: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 200 => {
                tries += 1;
                thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            p.read_to_end(&mut buf).expect("read the child's output");
        }
        buf
    })
}

fn wait_or_kill(child: &mut Child, cmd: &Command) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() > deadline {
            // Only this child, which this test started.
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {TIMEOUT:?}; killed it");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// `umon run OPTS... APP ARGS...` as a `Command` (not started), inheriting the test's
/// environment, so `-e KEY` has something to copy.
pub fn umon_run_cmd<S: AsRef<OsStr>>(opts: &[&str], app: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_umon"));
    cmd.arg("run").args(opts).arg(app).args(args);
    cmd
}

/// Runs `umon run OPTS... APP ARGS...` with `stdin` and returns its output.
pub fn umon_run<S: AsRef<OsStr>>(
    opts: &[&str],
    app: impl AsRef<OsStr>,
    args: &[S],
    stdin: &[u8],
) -> Output {
    run(&mut umon_run_cmd(opts, app, args), stdin)
}

/// Runs `app ARGS...` directly on the host with exactly the environment `env` (KEY, VALUE)
/// and `stdin`: what the app does natively, to compare with what it does under umon.
pub fn native<S: AsRef<OsStr>>(
    app: impl AsRef<OsStr>,
    args: &[S],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut cmd = Command::new(app);
    cmd.args(args).env_clear().envs(env.iter().copied());
    run(&mut cmd, stdin)
}

/// The text `hello` (C or Rust) prints first: argc, every argv entry, every environment entry.
pub fn hello_text(argv: &[&str], env: &[&str]) -> String {
    let mut text = format!("argc={}\n", argv.len());
    for (i, a) in argv.iter().enumerate() {
        text.push_str(&format!("argv[{i}]={a}\n"));
    }
    for (i, e) in env.iter().enumerate() {
        text.push_str(&format!("env[{i}]={e}\n"));
    }
    text
}

/// Byte `i` of what `bigout` writes.
pub fn bigout_byte(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// A path as the `&str` umon gets on its command line (the test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}
