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
use std::sync::atomic::{AtomicBool, AtomicUsize};
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
    /// Signals sent to the process (kill), taken by whichever thread does not block them.
    pub shared: super::signal::queue::SigQueue,
    /// Stopped by a stop signal until a SIGCONT (or SIGKILL).
    pub stopped: bool,
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
    /// The application's function symbols (None in the self-test and the fuzz harness);
    /// exec replaces them.
    pub symbols: RwLock<Option<Arc<Symbols>>>,
    /// Whether `SYS_UMON_ECHO` answers (syscall-trap self-test only).
    pub echo_enabled: bool,
    /// readlink("/proc/self/exe"); exec replaces it.
    pub exe: RwLock<Vec<u8>>,
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
    /// The task memory policy set_mempolicy set (kept for the process, not per thread).
    pub mempolicy: Mutex<super::info::MemPolicy>,
    /// Real-time siginfos queued in all the queues (RLIMIT_SIGPENDING counts them).
    pub sig_queued: AtomicUsize,
    /// RLIMIT_SIGPENDING until the application changes it: the host's, read at start.
    pub sigpending_default: Rlimit,
    /// Resource limits changed by the application (others have their defaults).
    pub rlimits: Mutex<HashMap<u64, Rlimit>>,
    /// Unsupported syscalls already reported.
    pub notes: Mutex<Notes>,
    /// The live threads and the next tid.
    pub threads: Mutex<super::task::Threads>,
    /// A second thread or a child process was ever created (`--trace` then names threads,
    /// as strace -f).
    pub multi_threaded: AtomicBool,
    /// A second thread (vCPU) was ever created: the page tables stop following mapping
    /// changes (see `mm::follow`). A fork does not set it: the child has one vCPU.
    pub threaded: AtomicBool,
    /// When the vDSO's time page was last re-based on the host's clocks (seconds of the
    /// monotonic clock umon reads), so that happens at most once a second.
    pub vdso_refreshed: std::sync::atomic::AtomicU64,
    /// Threads waiting on futexes.
    pub futexes: super::futex::Table,
    /// How the process ends.
    pub exit: super::task::ExitState,
    /// The CPUs the application is told it has (`--cpus`).
    pub cpus: u32,
    /// alarm, the itimers and the POSIX timers, and the thread that fires them.
    pub timers: super::timer::Timers,
    /// Its place among the application's processes (pid table, children, mailbox).
    pub family: super::family::Family,
    /// An exec under way: what the run loop builds the new image from.
    pub exec: Mutex<Option<super::family::exec::ExecRequest>>,
    /// What a new VM for this process (exec) is made with.
    pub boot: BootEnv,
    /// The running program's file, for an exec of /proc/self/exe.
    pub image: RwLock<Image>,
    /// The exit-less syscall server, when this process uses it (`--exitless`).
    pub exitless: Option<Arc<super::exitless::Server>>,
}

/// Where the running program's bytes are.
#[derive(Clone, Debug, Default)]
pub enum Image {
    /// None (the self-test).
    #[default]
    None,
    /// The host file umon was given.
    Host(std::path::PathBuf),
    /// Bytes: given by a library caller, or read by exec.
    Bytes(Arc<[u8]>),
}

/// What exec builds a new VM with (what the first one was built with), and how a forked
/// child's process runs: the face's run loop, which this layer cannot name.
#[derive(Clone, Debug, Default)]
pub struct BootEnv {
    /// Guest RAM.
    pub memory_bytes: u64,
    /// The core given with --kernel (None: the built-in one).
    pub kernel: Option<std::path::PathBuf>,
    /// Runs a forked child's process to its end (`vm::run_forked`); None: nothing forks.
    pub run_forked: Option<RunForked>,
    /// The network policy (`--net`, `--publish`), the same for every process of the app.
    pub net: crate::linux::net::NetEnv,
    /// Exit-less syscalls (`--exitless`, decided once for every process of the app).
    pub exitless: bool,
}

/// See [`BootEnv::run_forked`].
pub type RunForked = fn(
    Arc<crate::machine::Machine>,
    &Arc<Process>,
    super::Thread,
    &crate::machine::vcpu::setup::UserStart,
) -> crate::ExitStatus;

impl Default for Process {
    /// A process with its standard streams closed.
    fn default() -> Self {
        Process::with_stdio(Stdio::default())
    }
}

/// The host's RLIMIT_SIGPENDING (the application is one of the user's processes there).
fn host_sigpending() -> Rlimit {
    let r = rustix::process::getrlimit(rustix::process::Resource::Sigpending);
    Rlimit {
        cur: r.current.unwrap_or(u64::MAX),
        max: r.maximum.unwrap_or(u64::MAX),
    }
}

impl Process {
    /// A process whose fds 0, 1 and 2 are `stdio`; nothing else set up yet.
    pub fn with_stdio(stdio: Stdio) -> Process {
        let stdio = Arc::new(stdio);
        Process {
            tgid: FIRST_TID,
            symbols: RwLock::default(),
            echo_enabled: false,
            exe: RwLock::default(),
            fds: Mutex::new(FdTable::new(&stdio)),
            stdio,
            trace: None,
            space: RwLock::default(),
            fs: RwLock::default(),
            prctl: Mutex::default(),
            signals: Mutex::default(),
            mempolicy: Mutex::default(),
            sig_queued: AtomicUsize::new(0),
            sigpending_default: host_sigpending(),
            rlimits: Mutex::default(),
            notes: Mutex::default(),
            threads: Mutex::default(),
            multi_threaded: AtomicBool::new(false),
            threaded: AtomicBool::new(false),
            vdso_refreshed: Default::default(),
            futexes: super::futex::Table::default(),
            exit: super::task::ExitState::default(),
            cpus: 1,
            timers: super::timer::Timers::default(),
            family: super::family::Family::default(),
            exec: Mutex::default(),
            boot: BootEnv::default(),
            image: RwLock::default(),
            exitless: None,
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

    /// How umon's notes about this process begin: "umon: ", and for a process other than pid 1
    /// "umon: pid N: ", so a child's note names it.
    pub fn note_prefix(&self) -> String {
        if self.tgid == super::thread::FIRST_TID {
            "umon: ".to_string()
        } else {
            format!("umon: pid {}: ", self.tgid)
        }
    }

    /// readlink("/proc/self/exe").
    pub fn exe(&self) -> RwLockReadGuard<'_, Vec<u8>> {
        self.exe.read().unwrap_or_else(|e| e.into_inner())
    }

    /// " (name+0xoff)" for an address inside a known function, else "".
    pub fn symbolize(&self, addr: u64) -> String {
        self.symbols
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.describe(addr))
            .unwrap_or_default()
    }
}
