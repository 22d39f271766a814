//! The Linux personality: the system-call ABI as the application sees it, served by the
//! monitor. [`LinuxGuest`] implements the machine's [`ExitHandler`]: the syscall entry stub
//! exits with the application's registers; `handle` decodes the call, runs it against the
//! [`Process`] and guest memory, and arranges the return. Every pointer the application passes
//! goes through [`AddrSpace`], so a bad one is EFAULT, exactly as on Linux. It imports the
//! machine (and nothing of the face).
pub mod abi;
pub mod fd;
pub mod fs;
pub mod futex;
mod info;
#[allow(unsafe_code)] // fcntl byte-range locks
mod io;
pub mod mm;
mod proc;
pub mod process;
pub mod signal;
pub mod stdio;
pub mod task;
pub mod thread;
mod time;
pub mod trace;
#[allow(unsafe_code)] // terminal ioctls
mod tty;

use crate::exit::ExitStatus;
use crate::linux::mm::space::AddrSpace;
use crate::machine::hypercall::HypercallError;
use crate::machine::memory::GuestMem;
use crate::machine::vcpu::cpu::{Cpu, Flow};
use crate::machine::vcpu::{AppFault, ExitHandler};
use crate::machine::Machine;
use abi::at::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use abi::oflag;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};
use syscalls::{Errno, Sysno};
use umon_abi::hypercall::{ECHO_XOR, SYS_UMON_ECHO};

pub use info::PrctlState;
pub use process::Process;
pub use thread::Thread;

/// The six argument registers: rdi, rsi, rdx, r10, r8, r9.
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 6]);

/// Why a syscall does not simply return a value.
pub enum Stop {
    /// Return -errno to the application.
    Errno(Errno),
    /// The process ends (exit_group, or killed by a signal).
    Exit(ExitStatus),
    /// The calling thread ends (exit); the others go on.
    ExitThread,
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

/// What a handler works on: the machine and process shared by all threads, this thread's own
/// state, and the vCPU registers.
pub struct Ctx<'a, 'c> {
    /// Guest memory.
    pub mem: &'a GuestMem,
    /// The machine (memory slots, stop handle, further vCPUs).
    pub machine: &'a Arc<Machine>,
    /// The process, shared: lock what you touch.
    pub process: &'a Arc<Process>,
    /// The calling thread.
    pub thread: &'a mut Thread,
    /// The vCPU registers (arch_prctl changes FS).
    pub cpu: &'a mut Cpu<'c>,
}

impl Ctx<'_, '_> {
    /// Whether a blocking call must give up now: the VM is being stopped or the process is
    /// ending (the run loop then ends this thread).
    pub fn interrupted(&self) -> bool {
        self.machine.stop.is_requested() || self.process.exit.exiting()
    }

    /// The address space, read-locked for the statement that uses it.
    fn space(&self) -> RwLockReadGuard<'_, AddrSpace> {
        self.process.space()
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

/// The Linux personality on one vCPU: the machine and the process it shares with the other
/// threads, and the thread it runs. It serves the run loop's [`ExitHandler`] calls.
pub struct LinuxThread {
    /// The machine it runs in: guest RAM, KVM's view of it, the stop handle.
    pub machine: Arc<Machine>,
    /// The process the application sees.
    pub process: Arc<Process>,
    /// This thread.
    pub thread: Thread,
}

impl ExitHandler for LinuxThread {
    fn syscall(&mut self, cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<Flow, HypercallError> {
        let mut cx = Ctx {
            mem,
            machine: &self.machine,
            process: &self.process,
            thread: &mut self.thread,
            cpu,
        };
        handle(&mut cx)
    }

    fn app_fault(&mut self, _cpu: &mut Cpu<'_>, fault: AppFault) -> Flow {
        let process = &*self.process;
        let status = match fault {
            AppFault::Exception { vector, rip, cr2 } => {
                let detail = match vector {
                    14 => format!("fault address {cr2:#x}, "),
                    _ => String::new(),
                };
                signal::killed(process, signal::signal_for(vector), &detail, rip)
            }
            AppFault::CompatSyscall { rip } => signal::killed(
                process,
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
                signal::killed(process, libc::SIGSEGV, &detail, rip)
            }
        };
        Flow::EndProcess(status)
    }

    fn console(&mut self, fd: u32, bytes: &[u8]) -> std::io::Result<()> {
        match fd {
            1 => self.process.stdio.stdout.write_all(bytes),
            _ => self.process.stdio.stderr.write_all(bytes),
        }
    }

    fn before_run(&mut self) -> Option<Flow> {
        if let Some(r) = self.machine.stop.requested() {
            return Some(Flow::EndProcess(r.status()));
        }
        self.process.exit.exiting().then_some(Flow::EndThread)
    }
}

/// Run the system call in the vCPU's registers and set up the return to the application.
fn handle(cx: &mut Ctx<'_, '_>) -> Result<Flow, HypercallError> {
    let r = &*cx.cpu.regs;
    // Linux takes the number from eax (do_syscall_64's `int nr`); the upper half is ignored.
    let nr = r.rax & 0xffff_ffff;
    let args = Args([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]);
    let started = cx.process.trace.is_some().then(|| {
        // strace -f names the thread once there is more than one, from the call after the
        // first clone on (the clone's own line is written at its entry).
        let multi = cx.process.multi_threaded.load(Ordering::Relaxed);
        (std::time::Instant::now(), multi.then_some(cx.thread.tid))
    });
    let outcome = dispatch(cx, nr, &args);
    if let Some((t0, tid)) = started {
        trace_call(cx, nr, &args, &outcome, t0.elapsed(), tid);
    }
    let ret = match outcome {
        Ok(v) => v as i64,
        Err(Stop::Errno(e)) => -i64::from(e.into_raw()),
        Err(Stop::Exit(status)) => return Ok(Flow::EndProcess(status)),
        Err(Stop::ExitThread) => return Ok(Flow::EndThread),
        Err(Stop::Fatal(e)) => return Err(e),
    };
    cx.cpu.complete_syscall(ret);
    Ok(Flow::Continue)
}

/// Hand a finished call to the tracer (`--trace`).
fn trace_call(
    cx: &mut Ctx<'_, '_>,
    nr: u64,
    a: &Args,
    outcome: &Sys,
    took: std::time::Duration,
    tid: Option<u32>,
) {
    let result = match outcome {
        Ok(v) => crate::linux::trace::Outcome::Returned(*v as i64),
        Err(Stop::Errno(e)) => crate::linux::trace::Outcome::Returned(-i64::from(e.into_raw())),
        Err(_) => crate::linux::trace::Outcome::Ended,
    };
    if let Some(tracer) = &cx.process.trace {
        let call = crate::linux::trace::Call {
            nr,
            args: a.0,
            result,
            took,
            tid,
        };
        let space = cx.space();
        process::locked(tracer).record(&call, cx.mem, &space, &cx.process.stdio.stderr);
    }
}

fn dispatch(cx: &mut Ctx<'_, '_>, nr: u64, a: &Args) -> Sys {
    if nr == SYS_UMON_ECHO && cx.process.echo_enabled {
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
        S::exit => task::exit_thread(cx, a.0[0]),
        S::exit_group => task::exit_group(cx, a.0[0]),
        S::clone => task::clone(cx, a),
        S::clone3 => task::clone3(cx, a),
        S::get_robust_list => task::get_robust_list(cx, a),
        S::arch_prctl => proc::arch_prctl(cx, a),
        S::set_tid_address => {
            cx.thread.clear_child_tid = a.0[0];
            Ok(cx.thread.tid.into())
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
        S::getpid => Ok(cx.process.tgid.into()),
        S::gettid => Ok(cx.thread.tid.into()),
        S::getppid => Ok(0),
        S::kill => signal::kill(cx, a.0[0], a.0[1]),
        S::tkill => {
            let tgid = cx.process.tgid.into();
            signal::tgkill(cx, tgid, a.0[0], a.0[1])
        }
        S::tgkill => signal::tgkill(cx, a.0[0], a.0[1], a.0[2]),
        S::rt_sigpending => signal::rt_sigpending(cx, a),
        S::getuid | S::geteuid => Ok(crate::machine::host::ids().uid),
        S::getgid | S::getegid => Ok(crate::machine::host::ids().gid),
        S::uname => proc::uname(cx, a),
        S::getgroups => info::getgroups(cx, a),
        S::getrusage => info::getrusage(cx, a),
        S::getpgrp => Ok(cx.process.tgid.into()),
        S::getpgid | S::getsid => info::group_of(cx, a.0[0]),
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
        S::sched_getaffinity => task::sched_getaffinity(cx, a),
        S::sched_setaffinity => task::sched_setaffinity(cx, a),
        S::sched_yield => Ok(0),
        S::futex => futex::futex(cx, a),
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
    let mut p = process::locked(&cx.process.notes);
    let note = match usize::try_from(nr).ok().and_then(Sysno::new) {
        Some(s) if p.seen.insert(s) => {
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
    drop(p);
    if let Some(note) = note {
        let _ = cx.process.stdio.stderr.write_all(note.as_bytes());
    }
    Err(Errno::ENOSYS.into())
}
