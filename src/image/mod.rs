//! The application's image: ELF plans from headers alone ([`elf`]), placement in guest memory
//! and the page tables ([`place`]), and the initial stack ([`stack`]). Plans are pure; placing
//! writes through [`crate::machine::memory::GuestMem`]. It imports the machine, never the
//! Linux personality or the face.
pub mod elf;
pub mod place;
pub mod stack;
pub mod symbols;

/// Why the application's image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
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
        source: elf::AppError,
    },
    /// The interpreter PT_INTERP names is not in the guest's file view.
    #[error("cannot execute '{path}': its interpreter {interp} is not in the guest's file view (grant it with --root / or -v)")]
    InterpNotFound {
        /// The application, as given.
        path: String,
        /// The interpreter's guest path (escaped: it comes from the file).
        interp: String,
    },
    /// The interpreter exists but cannot be read or executed.
    #[error("cannot execute '{path}': its interpreter {interp}")]
    InterpRead {
        /// The application, as given.
        path: String,
        /// The interpreter's guest path.
        interp: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter is not a usable ELF executable.
    #[error("cannot execute '{path}': its interpreter {interp}")]
    Interp {
        /// The application, as given.
        path: String,
        /// The interpreter's guest path.
        interp: String,
        /// What is wrong with it.
        #[source]
        source: elf::AppError,
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
    /// Guest memory refused the image or its stack.
    #[error(transparent)]
    Memory(#[from] crate::machine::memory::MemoryError),
    /// The page tables could not map it.
    #[error(transparent)]
    Paging(#[from] crate::machine::paging::PagingError),
}

impl LoaderError {
    /// The exit code for this failure: 127 for a missing application, 126 for one that cannot
    /// be executed, 125 for anything else (guest memory, page tables).
    pub fn exit_code(&self) -> i32 {
        match self {
            LoaderError::AppNotFound { .. } => crate::exit::EXIT_NOT_FOUND,
            LoaderError::AppRead { .. }
            | LoaderError::App { .. }
            | LoaderError::InterpNotFound { .. }
            | LoaderError::InterpRead { .. }
            | LoaderError::Interp { .. }
            | LoaderError::ArgsTooLong { .. } => crate::exit::EXIT_CANNOT_EXECUTE,
            _ => crate::exit::EXIT_UMON_FAILED,
        }
    }
}
