//! Shared helpers for the integration tests: the KVM gate and running the `umon` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A fresh, empty directory `NAME-PID` under `AREA` in the target's temporary directory (at
/// the same host path for a native and a umon run of one test).
pub fn fresh_dir(area: &str, name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(area)
        .join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether KVM tests can run. When `/dev/kvm` is unusable this panics if `UMON_REQUIRE_KVM=1`
/// (CI), and otherwise says why the test is skipped.
pub fn require_kvm() -> bool {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    match usable {
        Ok(_) => true,
        Err(e) if std::env::var("UMON_REQUIRE_KVM").as_deref() == Ok("1") => {
            panic!("UMON_REQUIRE_KVM=1 but /dev/kvm is unusable: {e}")
        }
        Err(e) => {
            eprintln!(
                "skipping: /dev/kvm is unusable ({e}); set UMON_REQUIRE_KVM=1 to fail instead"
            );
            false
        }
    }
}

/// Run `umon` with `args` the way a user would.
pub fn umon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(args)
        .output()
        .expect("spawn the umon binary")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the shell command `cmd` on a fresh pseudo-terminal (`script`: its stdin, stdout and
/// controlling terminal) and returns what came back on the terminal, carriage returns dropped.
pub fn on_pty(cmd: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn script");
    stdout(&out).replace('\r', "")
}

pub mod apps;
pub mod real;

/// `umon ARGS` under `ulimit -v` (1 GiB of address space): a monitor that reads or copies
/// without bound fails instead of eating the machine's memory.
pub fn bounded_umon(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -v 1048576 && exec \"$@\"", "sh"]);
    cmd.arg(env!("CARGO_BIN_EXE_umon")).args(args);
    cmd
}

/// Wait for `child`, killing it and failing after `deadline`; its exit code and stderr.
pub fn finish_within(mut child: Child, deadline: Duration) -> (i32, String) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            return (status.code().unwrap_or(-1), err);
        }
        if t0.elapsed() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("umon did not end within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
