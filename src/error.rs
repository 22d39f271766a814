//! The top-level error and its exit codes. Each module has its own error type; this one only
//! gathers them and says which exit code a failure maps to.
use crate::image::LoaderError;
use crate::machine::hypercall::HypercallError;
use crate::machine::kvm::KvmError;
use crate::machine::memory::MemoryError;
use crate::machine::paging::PagingError;
use crate::machine::vcpu::VcpuError;

pub use crate::exit::{
    EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, EXIT_SIGNAL_BASE, EXIT_TIMED_OUT, EXIT_UMON_FAILED,
};

/// Everything that can stop umon from running an application to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// KVM is missing or unusable.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// Guest memory could not be set up or accessed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The page tables did not fit.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// The guest core could not be loaded.
    #[error(transparent)]
    Core(#[from] crate::machine::core::CoreError),
    /// The application could not be loaded.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The vCPU stopped in a way umon cannot continue from.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// The guest broke the hypercall protocol.
    #[error(transparent)]
    Hypercall(#[from] HypercallError),
    /// The monitor could not confine itself.
    #[error(transparent)]
    Seccomp(#[from] crate::machine::seccomp::SeccompError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A signal could not be sent to the application ([`crate::SignalHandle::send`]).
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// Signals to umon could not be claimed for the application.
    #[error(transparent)]
    HostSignals(#[from] crate::linux::signal::host::HostSignalError),
}

/// Why [`crate::SignalHandle::send`] did not send a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Not a signal number (1..=64), as kill(2)'s EINVAL.
    #[error("{0} is not a signal number (1..=64)")]
    Invalid(i32),
    /// The application has ended (or its VM was dropped before it ran), as kill(2)'s ESRCH.
    #[error("the application has ended")]
    Ended,
}

impl From<crate::machine::vcpu::RunError> for Error {
    fn from(e: crate::machine::vcpu::RunError) -> Self {
        match e {
            crate::machine::vcpu::RunError::Vcpu(e) => Error::Vcpu(e),
            crate::machine::vcpu::RunError::Hypercall(e) => Error::Hypercall(e),
        }
    }
}

impl From<crate::machine::MachineError> for Error {
    fn from(e: crate::machine::MachineError) -> Self {
        use crate::machine::MachineError as M;
        match e {
            M::Kvm(e) => Error::Kvm(e),
            M::Memory(e) => Error::Memory(e),
            M::Paging(e) => Error::Paging(e),
            M::Core(e) => Error::Core(e),
            M::Vcpu(e) => Error::Vcpu(e),
        }
    }
}

impl Error {
    /// The process exit code this failure maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Loader(e) => e.exit_code(),
            _ => EXIT_UMON_FAILED,
        }
    }
}
