//! Shared helpers for the integration tests: the KVM gate and running the `umon` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

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

pub mod apps;
pub mod real;
