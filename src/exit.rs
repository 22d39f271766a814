//! How a VM ended and the exit codes umon reports: the one leaf every layer may import (the
//! machine, the image, the Linux personality and the face). It must import nothing of umon.

/// The time limit passed (timeout(1)'s convention).
pub const EXIT_TIMED_OUT: i32 = 124;
/// umon failed (the docker/env convention).
pub const EXIT_UMON_FAILED: i32 = 125;
/// The application cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The application was not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// Added to a signal number when the application was killed by it.
pub const EXIT_SIGNAL_BASE: i32 = 128;

/// How a VM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The application (or core) exited with this code.
    Exited(i32),
    /// The application was killed by a signal; `report` is the one-line explanation.
    Signaled {
        /// The signal number (Linux numbering).
        signal: i32,
        /// What happened, e.g. "app killed by SIGSEGV: fault address 0x0, rip 0x401234 (main+0x14)".
        report: String,
    },
    /// The time limit passed before the application ended.
    TimedOut(std::time::Duration),
}

impl ExitStatus {
    /// The process exit code umon passes on: the code itself, or 128 + signal.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) => *c,
            ExitStatus::Signaled { signal, .. } => EXIT_SIGNAL_BASE + signal,
            ExitStatus::TimedOut(_) => EXIT_TIMED_OUT,
        }
    }
}
