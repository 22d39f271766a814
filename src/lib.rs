//! umon: a unikernel monitor for Linux/KVM. It boots a tiny guest core in a KVM virtual machine
//! laid out like OSv, and runs one static Linux x86-64 program in it.
//!
//! Embedding: [`Builder`] configures one VM for one application; [`Vm::run`] runs it on the
//! calling thread and returns how it ended; a [`KillHandle`] stops it from any thread, and a
//! [`SignalHandle`] sends its application a signal (a graceful SIGTERM) from any thread. Errors are
//! typed ([`Error`]) and map to the CLI's exit codes with [`Error::exit_code`].
//!
//! ```no_run
//! use umon::{Builder, Capture, ExitStatus, KillHandle};
//!
//! let out = Capture::new();
//! let kill = KillHandle::new();
//! let vm = Builder::new("target/hello").arg("one").stdout(out.clone()).kill_handle(&kill).build()?;
//! let report = vm.run()?;
//! assert_eq!(report.status, ExitStatus::Exited(0));
//! print!("{}", out.text());
//! # Ok::<(), umon::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The face: what an embedder or the CLI uses to assemble and run a VM.
pub mod builder;
pub mod config;
pub mod error;
pub mod inspect;
pub mod layout_map;
pub mod vm;

// The layers below it, each importing only those after it.
pub mod exit;
pub mod image;
pub mod linux;
pub mod machine;

pub use builder::{Builder, Capture};
pub use config::{Config, Exitless, Mode};
pub use error::{Error, SignalError};
pub use exit::ExitStatus;
pub use machine::stop::KillHandle;
pub use umon_abi::hypercall::SelftestReport;
pub use vm::{SignalHandle, Vm};

/// What a finished VM reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// How it ended.
    pub status: ExitStatus,
    /// The layout self-check result, in [`Mode::Selftest`].
    pub selftest: Option<SelftestReport>,
    /// Syscalls of the first process answered without a VM exit (`Config::exitless`).
    pub exitless_served: u64,
}
