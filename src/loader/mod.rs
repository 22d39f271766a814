//! Parsing and placing ELF images: the core (through linux-loader) and, later, applications.
//! Loaders are pure: they parse and plan, then write through [`crate::memory::GuestMem`].
pub mod core;

pub use self::core::{load_core, CoreImage};

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The core ELF is unusable.
    #[error("guest core {what}: {reason}")]
    Core {
        /// Which core (built-in or a path).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The core ELF could not be read.
    #[error("cannot read guest core {path}")]
    CoreRead {
        /// The path given with --kernel.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl LoaderError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        crate::error::EXIT_UMON_FAILED
    }
}
