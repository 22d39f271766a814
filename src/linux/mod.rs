//! The Linux personality: the system-call ABI as the application sees it, served by the
//! monitor. [`LinuxGuest`] implements the machine's [`ExitHandler`]: the syscall entry stub
//! exits with the application's registers; `handle` decodes the call, runs it against the
//! [`Process`] and guest memory, and arranges the return. Every pointer the application passes
//! goes through [`AddrSpace`], so a bad one is EFAULT, exactly as on Linux. It imports the
//! machine (and nothing of the face).
pub mod abi;
pub mod fd;
pub mod fs;
mod info;
#[allow(unsafe_code)] // fcntl byte-range locks
mod io;
pub mod mm;
mod proc;
pub mod signal;
pub mod stdio;
mod time;
pub mod trace;
#[allow(unsafe_code)] // terminal ioctls
mod tty;

use crate::exit::ExitStatus;
use crate::linux::mm::space::AddrSpace;
use crate::linux::stdio::Stdio;
use crate::machine::hypercall::HypercallError;
use crate::machine::memory::GuestMem;
use crate::machine::vcpu::cpu::{Cpu, Flow};
use crate::machine::vcpu::{AppFault, ExitHandler};
use abi::at::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use abi::oflag;
use std::collections::{HashMap, HashSet};
use syscalls::{Errno, Sysno};
use umon_abi::hypercall::{ECHO_XOR, SYS_UMON_ECHO};

pub use info::PrctlState;

/// The Linux process the application sees.
#[derive(Default)]
pub struct Process {
    /// The application's function symbols (None in the self-test and the fuzz harness).
    pub symbols: Option<crate::image::symbols::Symbols>,
    /// Syscalls Linux knows that were already reported as unsupported (reported once each:
    /// at most one note per Linux syscall).
    pub unsupported_seen: HashSet<Sysno>,
    /// Numbers Linux does not know that were reported: only the first
    /// [`MAX_UNKNOWN_NOTES`] are (there are 2^32), then one note says the rest are not.
    pub unknown_seen: Vec<u64>,
    /// The note that further unknown numbers are not reported was given.
    pub unknown_silenced: bool,
    /// Whether [`SYS_UMON_ECHO`] answers (syscall-trap self-test only).
    pub echo_enabled: bool,
    /// What `prctl` sets (thread name, parent-death signal, dumpable, no_new_privs).
    pub prctl: info::PrctlState,
    /// The application's memory.
    pub space: AddrSpace,
    /// Open files.
    pub fds: fd::FdTable,
    /// The granted host directories, the working directory and the umask.
    pub fs: crate::linux::fs::volume::FileSystem,
    /// readlink("/proc/self/exe").
    pub exe: Vec<u8>,
    /// Signal dispositions set with rt_sigaction, by signal number.
    pub sigactions: HashMap<u64, abi::SigAction>,
    /// The blocked-signal mask.
    pub sigmask: u64,
    /// Signals sent while blocked, waiting to be unblocked (bit `sig - 1`).
    pub sigpending: u64,
    /// The alternate signal stack.
    pub altstack: Option<abi::SigAltStack>,
    /// Resource limits changed by the application (others have their defaults).
    pub rlimits: HashMap<u64, abi::Rlimit>,
    /// set_tid_address pointer.
    pub clear_child_tid: u64,
    /// set_robust_list head.
    pub robust_list: u64,
}

impl Process {
    /// " (name+0xoff)" for an address inside a known function, else "".
    pub fn symbolize(&self, addr: u64) -> String {
        self.symbols
            .as_ref()
            .map(|s| s.describe(addr))
            .unwrap_or_default()
    }
}

/// The six argument registers: rdi, rsi, rdx, r10, r8, r9.
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 6]);

/// Why a syscall does not simply return a value.
pub enum Stop {
    /// Return -errno to the application.
    Errno(Errno),
    /// The process ends (exit, or killed by a signal).
    Exit(ExitStatus),
    /// The monitor cannot go on.
    Fatal(HypercallError),
}

impl From<Errno> for Stop {
    fn from(e: Errno) -> Self {
        Stop::Errno(e)
    }
}

/// A syscall's outcome.
pub type Sys = Result<u64, Stop>;

/// What a handler works on.
pub struct Ctx<'a, 'c> {
    /// Guest memory.
    pub mem: &'a GuestMem,
    /// Monitor state: the process and its stdio.
    pub state: &'a mut LinuxGuest,
    /// The vCPU registers (arch_prctl changes FS).
    pub cpu: &'a mut Cpu<'c>,
}

impl Ctx<'_, '_> {
    fn space(&self) -> &AddrSpace {
        &self.state.process.space
    }

    fn proc(&mut self) -> &mut Process {
        &mut self.state.process
    }

    /// Copy a plain value from the application.
    fn read_val<T: zerocopy::FromBytes + zerocopy::IntoBytes>(&self, va: u64) -> Result<T, Errno> {
        self.space().read_val(self.mem, va)
    }

    /// Copy a plain value to the application.
    fn write_val<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &self,
        va: u64,
        v: &T,
    ) -> Result<(), Errno> {
        self.space().write_val(self.mem, va, v)
    }
}

/// The Linux personality of one VM: the process the application sees, its standard streams,
/// the stop request and the tracer. It serves the run loop's [`ExitHandler`] calls.
pub struct LinuxGuest {
    /// The application's standard streams.
    pub stdio: Stdio,
    /// The Linux process the application sees.
    pub process: Process,
    /// The machine it runs in: guest RAM, KVM's view of it, the stop handle.
    pub machine: std::sync::Arc<crate::machine::Machine>,
    /// `--trace`: every syscall of the application, strace-style.
    pub trace: Option<crate::linux::trace::Tracer>,
}

impl ExitHandler for LinuxGuest {
    fn syscall(&mut self, cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<Flow, HypercallError> {
        handle(cpu, mem, self)
    }

    fn app_fault(&mut self, _cpu: &mut Cpu<'_>, fault: AppFault) -> Flow {
        let status = match fault {
            AppFault::Exception { vector, rip, cr2 } => {
                let detail = match vector {
                    14 => format!("fault address {cr2:#x}, "),
                    _ => String::new(),
                };
                signal::killed(&self.process, signal::signal_for(vector), &detail, rip)
            }
            AppFault::CompatSyscall { rip } => signal::killed(
                &self.process,
                libc::SIGILL,
                "syscall from 32-bit code (no IA32 emulation), ",
                rip,
            ),
            AppFault::StrayAccess { rip, gpa } => {
                let detail = match gpa {
                    Some(addr) => {
                        format!("access to memory it never allocated (guest-physical {addr:#x}), ")
                    }
                    None => String::new(),
                };
                signal::killed(&self.process, libc::SIGSEGV, &detail, rip)
            }
        };
        Flow::EndProcess(status)
    }

    fn console(&mut self, fd: u32, bytes: &[u8]) -> std::io::Result<()> {
        match fd {
            1 => self.stdio.stdout.write_all(bytes),
            _ => self.stdio.stderr.write_all(bytes),
        }
    }

    fn before_run(&mut self) -> Option<Flow> {
        self.machine
            .stop
            .requested()
            .map(|r| Flow::EndProcess(r.status()))
    }
}

/// Run the system call in the vCPU's registers and set up the return to the application.
fn handle(
    cpu: &mut Cpu<'_>,
    mem: &GuestMem,
    state: &mut LinuxGuest,
) -> Result<Flow, HypercallError> {
    let r = &*cpu.regs;
    // Linux takes the number from eax (do_syscall_64's `int nr`); the upper half is ignored.
    let nr = r.rax & 0xffff_ffff;
    let args = Args([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]);
    let started = state.trace.is_some().then(std::time::Instant::now);
    let mut cx = Ctx { mem, state, cpu };
    let outcome = dispatch(&mut cx, nr, &args);
    if let Some(t0) = started {
        trace_call(&mut cx, nr, &args, &outcome, t0.elapsed());
    }
    let ret = match outcome {
        Ok(v) => v as i64,
        Err(Stop::Errno(e)) => -i64::from(e.into_raw()),
        Err(Stop::Exit(status)) => return Ok(Flow::EndProcess(status)),
        Err(Stop::Fatal(e)) => return Err(e),
    };
    cx.cpu.complete_syscall(ret);
    Ok(Flow::Continue)
}

/// Hand a finished call to the tracer (`--trace`).
fn trace_call(cx: &mut Ctx<'_, '_>, nr: u64, a: &Args, outcome: &Sys, took: std::time::Duration) {
    let result = match outcome {
        Ok(v) => crate::linux::trace::Outcome::Returned(*v as i64),
        Err(Stop::Errno(e)) => crate::linux::trace::Outcome::Returned(-i64::from(e.into_raw())),
        Err(_) => crate::linux::trace::Outcome::Ended,
    };
    let state = &mut *cx.state;
    if let Some(tracer) = state.trace.as_mut() {
        let call = crate::linux::trace::Call {
            nr,
            args: a.0,
            result,
            took,
        };
        tracer.record(&call, cx.mem, &state.process.space, &mut state.stdio.stderr);
    }
}

fn dispatch(cx: &mut Ctx<'_, '_>, nr: u64, a: &Args) -> Sys {
    if nr == SYS_UMON_ECHO && cx.state.process.echo_enabled {
        return Ok(a.0[0] ^ ECHO_XOR);
    }
    let Some(sysno) = usize::try_from(nr).ok().and_then(Sysno::new) else {
        return unsupported(cx, nr);
    };
    use Sysno as S;
    match sysno {
        S::read => io::read(cx, a),
        S::write => io::write(cx, a),
        S::readv => io::readv(cx, a),
        S::writev => io::writev(cx, a),
        S::pread64 => io::pread64(cx, a),
        S::pwrite64 => io::pwrite64(cx, a),
        S::preadv => io::preadv(cx, a),
        S::pwritev => io::pwritev(cx, a),
        S::lseek => io::lseek(cx, a),
        S::close => io::close(cx, a),
        S::fstat => io::fstat(cx, a),
        S::newfstatat => fs::newfstatat(cx, a),
        S::statx => fs::statx(cx, a),
        S::stat => fs::stat(cx, a, false),
        S::lstat => fs::stat(cx, a, true),
        S::statfs => fs::statfs(cx, a),
        S::fstatfs => fs::fstatfs(cx, a),
        S::access => fs::access(cx, AT_FDCWD, a.0[0], a.0[1], 0),
        S::faccessat => fs::access(cx, a.0[0], a.0[1], a.0[2], 0),
        S::faccessat2 => fs::access(cx, a.0[0], a.0[1], a.0[2], a.0[3]),
        S::open => fs::open(cx, AT_FDCWD, a.0[0], a.0[1], a.0[2]),
        S::openat => fs::open(cx, a.0[0], a.0[1], a.0[2], a.0[3]),
        S::creat => {
            let flags = oflag::CREAT | oflag::WRONLY | oflag::TRUNC;
            fs::open(cx, AT_FDCWD, a.0[0], flags, a.0[1])
        }
        S::getdents64 => fs::getdents64(cx, a),
        S::mkdir => fs::mkdir(cx, AT_FDCWD, a.0[0], a.0[1]),
        S::mkdirat => fs::mkdir(cx, a.0[0], a.0[1], a.0[2]),
        S::mknod => fs::mknod(cx, AT_FDCWD, a.0[0], a.0[1]),
        S::mknodat => fs::mknod(cx, a.0[0], a.0[1], a.0[2]),
        S::unlink => fs::unlink(cx, AT_FDCWD, a.0[0], 0),
        S::rmdir => fs::unlink(cx, AT_FDCWD, a.0[0], AT_REMOVEDIR),
        S::unlinkat => fs::unlink(cx, a.0[0], a.0[1], a.0[2]),
        S::rename => fs::rename(cx, [AT_FDCWD, a.0[0], AT_FDCWD, a.0[1], 0]),
        S::renameat => fs::rename(cx, [a.0[0], a.0[1], a.0[2], a.0[3], 0]),
        S::renameat2 => fs::rename(cx, [a.0[0], a.0[1], a.0[2], a.0[3], a.0[4]]),
        S::link => fs::link(cx, [AT_FDCWD, a.0[0], AT_FDCWD, a.0[1], 0]),
        S::linkat => fs::link(cx, [a.0[0], a.0[1], a.0[2], a.0[3], a.0[4]]),
        S::symlink => fs::symlink(cx, a.0[0], AT_FDCWD, a.0[1]),
        S::symlinkat => fs::symlink(cx, a.0[0], a.0[1], a.0[2]),
        S::readlink => fs::readlink(cx, AT_FDCWD, a.0[0], a.0[1], a.0[2]),
        S::readlinkat => fs::readlink(cx, a.0[0], a.0[1], a.0[2], a.0[3]),
        S::chmod => fs::chmod(cx, AT_FDCWD, a.0[0], a.0[1], 0),
        S::fchmodat => fs::chmod(cx, a.0[0], a.0[1], a.0[2], 0),
        S::fchmodat2 => fs::chmod(cx, a.0[0], a.0[1], a.0[2], a.0[3]),
        S::fchmod => fs::fchmod(cx, a),
        S::utimensat => fs::utimensat(cx, a),
        S::chown => fs::chown(cx, AT_FDCWD, a.0[0], [a.0[1], a.0[2]], 0),
        S::lchown => {
            let nofollow = AT_SYMLINK_NOFOLLOW;
            fs::chown(cx, AT_FDCWD, a.0[0], [a.0[1], a.0[2]], nofollow)
        }
        S::fchownat => fs::chown(cx, a.0[0], a.0[1], [a.0[2], a.0[3]], a.0[4]),
        S::fchown => fs::fchown(cx, a),
        S::truncate => fs::truncate(cx, a),
        S::ftruncate => fs::ftruncate(cx, a),
        S::fsync => fs::fsync(cx, a, false),
        S::fdatasync => fs::fsync(cx, a, true),
        S::fadvise64 => fs::fadvise64(cx, a),
        S::chdir => fs::chdir(cx, a),
        S::fchdir => fs::fchdir(cx, a),
        S::getcwd => fs::getcwd(cx, a),
        S::umask => fs::umask(cx, a),
        S::sendfile => io::sendfile(cx, a),
        S::copy_file_range => io::copy_file_range(cx, a),
        S::ioctl => io::ioctl(cx, a),
        S::poll => io::poll(cx, a),
        S::ppoll => io::ppoll(cx, a),
        S::dup => io::dup(cx, a),
        S::dup2 => io::dup2(cx, a),
        S::dup3 => io::dup3(cx, a),
        S::fcntl => io::fcntl(cx, a),
        S::flock => io::flock(cx, a),
        S::mmap if a.0[3] & abi::mman::MAP_ANONYMOUS == 0 => io::mmap_file(cx, a),
        S::brk => mm::brk(cx, a),
        S::mmap => mm::mmap(cx, a),
        S::munmap => mm::munmap(cx, a),
        S::mprotect => mm::mprotect(cx, a),
        S::mremap => mm::mremap(cx, a),
        S::madvise => mm::madvise(cx, a),
        S::exit | S::exit_group => Err(Stop::Exit(ExitStatus::Exited((a.0[0] & 0xff) as i32))),
        S::arch_prctl => proc::arch_prctl(cx, a),
        S::set_tid_address => {
            cx.proc().clear_child_tid = a.0[0];
            Ok(proc::TID)
        }
        S::set_robust_list => proc::set_robust_list(cx, a),
        // glibc registers rseq at start-up and copes with ENOSYS; no note for it.
        S::rseq => Err(Errno::ENOSYS.into()),
        S::prlimit64 => proc::prlimit64(cx, a),
        S::getrlimit => proc::getrlimit(cx, a),
        S::setrlimit => proc::setrlimit(cx, a),
        S::rt_sigaction => signal::rt_sigaction(cx, a),
        S::rt_sigprocmask => signal::rt_sigprocmask(cx, a),
        S::sigaltstack => signal::sigaltstack(cx, a),
        S::getpid | S::gettid => Ok(proc::TID),
        S::getppid => Ok(0),
        S::kill => signal::kill(cx, a.0[0], a.0[1]),
        S::tkill => signal::tgkill(cx, proc::TID, a.0[0], a.0[1]),
        S::tgkill => signal::tgkill(cx, a.0[0], a.0[1], a.0[2]),
        S::rt_sigpending => signal::rt_sigpending(cx, a),
        S::getuid | S::geteuid => Ok(crate::machine::host::ids().uid),
        S::getgid | S::getegid => Ok(crate::machine::host::ids().gid),
        S::uname => proc::uname(cx, a),
        S::getgroups => info::getgroups(cx, a),
        S::getrusage => info::getrusage(cx, a),
        S::getpgrp => Ok(proc::TID),
        S::getpgid | S::getsid => info::group_of(a.0[0]),
        S::prctl => info::prctl(cx, a),
        S::sysinfo => info::sysinfo(cx, a),
        S::getpeername
        | S::getsockname
        | S::getsockopt
        | S::setsockopt
        | S::shutdown
        | S::listen
        | S::accept
        | S::accept4
        | S::bind
        | S::connect
        | S::sendto
        | S::recvfrom
        | S::sendmsg
        | S::recvmsg => info::not_a_socket(cx, a.0[0]),
        S::getrandom => proc::getrandom(cx, a),
        S::sched_getaffinity => proc::sched_getaffinity(cx, a),
        S::sched_yield => Ok(0),
        S::futex => proc::futex(cx, a),
        S::clock_gettime => time::clock_gettime(cx, a),
        S::clock_getres => time::clock_getres(cx, a),
        S::gettimeofday => time::gettimeofday(cx, a),
        S::time => time::time(cx, a),
        S::nanosleep => time::nanosleep(cx, a),
        S::clock_nanosleep => time::clock_nanosleep(cx, a),
        _ => unsupported(cx, nr),
    }
}

/// How many distinct syscall numbers Linux does not know get a note of their own.
pub const MAX_UNKNOWN_NOTES: usize = 8;

/// ENOSYS, with a note on stderr the first time each syscall Linux knows is seen, and for the
/// first [`MAX_UNKNOWN_NOTES`] numbers it does not know, then one note for all the others: a
/// guest cannot grow umon's memory or flood its stderr by trying numbers.
fn unsupported(cx: &mut Ctx<'_, '_>, nr: u64) -> Sys {
    let p = &mut cx.state.process;
    let note = match usize::try_from(nr).ok().and_then(Sysno::new) {
        Some(s) if p.unsupported_seen.insert(s) => {
            Some(format!("umon: unsupported syscall {nr} ({})\n", s.name()))
        }
        Some(_) => None,
        None if p.unknown_seen.contains(&nr) || p.unknown_silenced => None,
        None if p.unknown_seen.len() == MAX_UNKNOWN_NOTES => {
            p.unknown_silenced = true;
            Some(
                "umon: unsupported syscall numbers: further unknown ones are not reported\n"
                    .to_string(),
            )
        }
        None => {
            p.unknown_seen.push(nr);
            Some(format!("umon: unsupported syscall {nr}\n"))
        }
    };
    if let Some(note) = note {
        let _ = cx.state.stdio.stderr.write_all(note.as_bytes());
    }
    Err(Errno::ENOSYS.into())
}
