//! The Linux personality: the system-call ABI as the application sees it, served by the
//! monitor. [`LinuxThread`] implements the machine's [`ExitHandler`]: the syscall entry stub
//! exits with the application's registers; `handle` decodes the call, runs it against the
//! [`Process`] and guest memory, and arranges the return. Every pointer the application passes
//! goes through [`AddrSpace`], so a bad one is EFAULT, exactly as on Linux. It imports the
//! machine (and nothing of the face).
pub mod abi;
pub mod args;
pub mod fd;
pub mod fs;
pub mod futex;
mod info;
#[allow(unsafe_code)] // fcntl byte-range locks
mod io;
pub mod mm;
mod proc;
pub mod process;
mod sigframe;
pub mod signal;
pub mod stdio;
pub mod table;
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
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};
use syscalls::{Errno, Sysno};
use umon_abi::hypercall::{ECHO_XOR, SYS_UMON_ECHO};

pub use args::Args;
pub use info::PrctlState;
pub use process::Process;
pub use thread::Thread;

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
    /// The call set every register itself (rt_sigreturn): no return value to put in rax.
    Resumed,
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
        Ok(v) => Some(v as i64),
        Err(Stop::Errno(e)) => Some(-i64::from(e.into_raw())),
        Err(Stop::Exit(status)) => return Ok(Flow::EndProcess(status)),
        Err(Stop::ExitThread) => return Ok(Flow::EndThread),
        Err(Stop::Fatal(e)) => return Err(e),
        Err(Stop::Resumed) => None,
    };
    if let Some(ret) = ret {
        cx.cpu.complete_syscall(ret);
    }
    if !cx.thread.due.is_empty() {
        if let Err(stop) = sigframe::deliver_due(cx) {
            return match stop {
                Stop::Exit(status) => Ok(Flow::EndProcess(status)),
                Stop::Fatal(e) => Err(e),
                _ => Ok(Flow::Continue),
            };
        }
    }
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
        Err(Stop::Resumed) => crate::linux::trace::Outcome::Returned(cx.cpu.regs.rax as i64),
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
        return Ok(a.raw(0) ^ ECHO_XOR);
    }
    match table::row(nr) {
        Some(row) => (row.handler)(cx, a),
        None => unsupported(cx, nr),
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
