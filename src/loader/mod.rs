//! Parsing and placing ELF images: the core (through linux-loader) and applications (goblin).
//! Loaders are pure: they parse and plan, then write through [`crate::memory::GuestMem`].
pub mod app;
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
    /// The application file does not exist.
    #[error("cannot run '{path}': no such file")]
    AppNotFound {
        /// As given.
        path: String,
    },
    /// The application file exists but cannot be read.
    #[error("cannot execute '{path}'")]
    AppRead {
        /// As given.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The application is not a usable executable.
    #[error("cannot execute '{path}'")]
    App {
        /// As given.
        path: String,
        /// What is wrong with it.
        #[source]
        source: app::AppError,
    },
    /// Guest RAM is too small for the image, its stack and a minimal heap.
    #[error("cannot run '{path}': it needs at least {need} bytes of guest RAM, the VM has {ram} (raise --memory)")]
    NoRoom {
        /// As given.
        path: String,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        ram: u64,
    },
    /// Arguments and environment do not fit on the initial stack.
    #[error("argument list too long (arguments and environment exceed {max} bytes)")]
    ArgsTooLong {
        /// The limit.
        max: u64,
    },
}

impl LoaderError {
    /// The exit code for this failure: 127 for a missing application, 126 for one that cannot
    /// be executed, 125 for a bad core.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoaderError::AppNotFound { .. } => crate::exit::EXIT_NOT_FOUND,
            LoaderError::AppRead { .. }
            | LoaderError::App { .. }
            | LoaderError::ArgsTooLong { .. } => crate::exit::EXIT_CANNOT_EXECUTE,
            _ => crate::exit::EXIT_UMON_FAILED,
        }
    }
}
