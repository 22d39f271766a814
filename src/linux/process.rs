//! The Linux process the application sees, shared by all its threads: the address space, the
//! fd table, the file-system view, signal dispositions, limits, identity, the standard streams
//! and the tracer. Everything that changes after start is behind its own lock, so a handler
//! borrows the process shared (`&Process`) and locks only what it touches, for as long as it
//! touches it; nothing is held `&mut` for a whole run.
use super::abi::{Rlimit, SigAction};
use super::fd::FdTable;
use super::fs::volume::FileSystem;
use super::info::PrctlState;
use super::mm::space::AddrSpace;
use super::stdio::Stdio;
use super::thread::FIRST_TID;
use super::trace::Tracer;
use crate::image::symbols::Symbols;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use syscalls::Sysno;

/// The lock's value even if a holder panicked: the monitor keeps serving the guest (its
/// state is plain data, valid between any two statements).
pub fn locked<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Signal state shared by the threads: dispositions and process-directed pending signals.
#[derive(Default)]
pub struct Signals {
    /// Dispositions set with rt_sigaction, by signal number.
    pub actions: HashMap<u64, SigAction>,
    /// Signals sent while blocked, waiting to be unblocked (bit `sig - 1`).
    pub pending: u64,
    /// The siginfo of each pending signal (the first sent: standard signals coalesce).
    pub pending_info: HashMap<u64, super::abi::SigInfo>,
}

/// Which unsupported syscalls were already reported (once each; see `linux::unsupported`).
#[derive(Default)]
pub struct Notes {
    /// Syscalls Linux knows that were reported.
    pub seen: HashSet<Sysno>,
    /// Numbers Linux does not know that were reported (at most `MAX_UNKNOWN_NOTES`).
    pub unknown_seen: Vec<u64>,
    /// The note that further unknown numbers are not reported was given.
    pub unknown_silenced: bool,
}

/// The Linux process the application sees.
pub struct Process {
    /// Its pid (and the first thread's tid).
    pub tgid: u32,
    /// The application's function symbols (None in the self-test and the fuzz harness).
    pub symbols: Option<Symbols>,
    /// Whether `SYS_UMON_ECHO` answers (syscall-trap self-test only).
    pub echo_enabled: bool,
    /// readlink("/proc/self/exe").
    pub exe: Vec<u8>,
    /// The application's standard streams (each with its own lock where it needs one), shared
    /// with the fds that refer to them.
    pub stdio: Arc<Stdio>,
    /// `--trace`: every syscall of the application, strace-style.
    pub trace: Option<Mutex<Tracer>>,
    /// The application's memory: read-locked to translate pointers, write-locked by
    /// brk/mmap/munmap/mremap/mprotect.
    pub space: RwLock<AddrSpace>,
    /// Open files.
    pub fds: Mutex<FdTable>,
    /// The granted host directories, the working directory and the umask.
    pub fs: RwLock<FileSystem>,
    /// What `prctl` sets (name, parent-death signal, dumpable, no_new_privs).
    pub prctl: Mutex<PrctlState>,
    /// Dispositions and pending signals.
    pub signals: Mutex<Signals>,
    /// Resource limits changed by the application (others have their defaults).
    pub rlimits: Mutex<HashMap<u64, Rlimit>>,
    /// Unsupported syscalls already reported.
    pub notes: Mutex<Notes>,
    /// The live threads and the next tid.
    pub threads: Mutex<super::task::Threads>,
    /// A second thread was ever created (`--trace` then names threads, as strace -f).
    pub multi_threaded: AtomicBool,
    /// Threads waiting on futexes.
    pub futexes: super::futex::Table,
    /// How the process ends.
    pub exit: super::task::ExitState,
    /// The CPUs the application is told it has (`--cpus`).
    pub cpus: u32,
}

impl Default for Process {
    /// A process with its standard streams closed.
    fn default() -> Self {
        Process::with_stdio(Stdio::default())
    }
}

impl Process {
    /// A process whose fds 0, 1 and 2 are `stdio`; nothing else set up yet.
    pub fn with_stdio(stdio: Stdio) -> Process {
        let stdio = Arc::new(stdio);
        Process {
            tgid: FIRST_TID,
            symbols: None,
            echo_enabled: false,
            exe: Vec::new(),
            fds: Mutex::new(FdTable::new(&stdio)),
            stdio,
            trace: None,
            space: RwLock::default(),
            fs: RwLock::default(),
            prctl: Mutex::default(),
            signals: Mutex::default(),
            rlimits: Mutex::default(),
            notes: Mutex::default(),
            threads: Mutex::default(),
            multi_threaded: AtomicBool::new(false),
            futexes: super::futex::Table::default(),
            exit: super::task::ExitState::default(),
            cpus: 1,
        }
    }

    /// The address space, for reading (pointer translation, copies).
    pub fn space(&self) -> RwLockReadGuard<'_, AddrSpace> {
        self.space.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The address space, for changing the mappings.
    pub fn space_mut(&self) -> RwLockWriteGuard<'_, AddrSpace> {
        self.space.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The fd table. Never held across host I/O: take what you need (`Fd` is cheap to
    /// clone) and let it go.
    pub fn fds(&self) -> MutexGuard<'_, FdTable> {
        locked(&self.fds)
    }

    /// The file-system view, for lookups.
    pub fn fs(&self) -> RwLockReadGuard<'_, FileSystem> {
        self.fs.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The file-system view, for chdir and umask.
    pub fn fs_mut(&self) -> RwLockWriteGuard<'_, FileSystem> {
        self.fs.write().unwrap_or_else(|e| e.into_inner())
    }

    /// prctl's state.
    pub fn prctl(&self) -> MutexGuard<'_, PrctlState> {
        locked(&self.prctl)
    }

    /// Dispositions and pending signals.
    pub fn signals(&self) -> MutexGuard<'_, Signals> {
        locked(&self.signals)
    }

    /// Changed resource limits.
    pub fn rlimits(&self) -> MutexGuard<'_, HashMap<u64, Rlimit>> {
        locked(&self.rlimits)
    }

    /// " (name+0xoff)" for an address inside a known function, else "".
    pub fn symbolize(&self, addr: u64) -> String {
        self.symbols
            .as_ref()
            .map(|s| s.describe(addr))
            .unwrap_or_default()
    }
}
