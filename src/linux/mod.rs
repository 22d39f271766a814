//! The Linux personality: the system-call ABI as the application sees it, served by the
//! monitor. [`LinuxThread`] implements the machine's [`ExitHandler`]: the syscall entry stub
//! exits with the application's registers; `handle` decodes the call, runs it against the
//! [`Process`] and guest memory, and arranges the return. Every pointer the application passes
//! goes through [`AddrSpace`], so a bad one is EFAULT, exactly as on Linux. It imports the
//! machine (and nothing of the face).
pub mod abi;
pub mod args;
pub mod exitless;
#[allow(unsafe_code)] // the shared pid table's mapping, fork(2), _exit(2)
pub mod family;
mod fault;
pub mod fd;
pub mod fs;
pub mod futex;
mod info;
#[allow(unsafe_code)] // fcntl byte-range locks
mod io;
pub mod mm;
#[allow(unsafe_code)] // host socket calls with raw sockaddr buffers (no rustix net feature here)
pub mod net;
mod proc;
pub mod process;
mod sigframe;
pub mod signal;
pub mod stdio;
pub mod table;
pub mod task;
pub mod thread;
mod time;
#[allow(unsafe_code)] // reading the host's encoded CPU-time clocks
mod timer;
pub mod trace;
#[allow(unsafe_code)] // terminal ioctls
mod tty;
pub mod vdso;

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
    /// Only when [`Ctx::served`]: the call would wait (an open that meets a FIFO), so the
    /// server hands it back untouched and the exit path runs it from the start.
    GiveBack,
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
    /// The exit-less server runs this call, which must not wait: a handler that finds it
    /// would returns [`Stop::GiveBack`] before it changes anything.
    pub served: bool,
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
        self.left_guest();
        if let Some(server) = &self.process.exitless {
            let r = &*cpu.regs;
            let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
            server.exit_taken(&self.machine, &self.process, r.rax, &args);
        }
        let mut cx = Ctx {
            mem,
            machine: &self.machine,
            process: &self.process,
            thread: &mut self.thread,
            cpu,
            served: false,
        };
        handle(&mut cx)
    }

    fn app_fault(&mut self, cpu: &mut Cpu<'_>, fault: AppFault) -> Flow {
        self.left_guest();
        self.with_ctx(cpu, |cx| Self::fault_flow(cx, fault))
    }

    fn console(&mut self, fd: u32, bytes: &[u8]) -> std::io::Result<()> {
        match fd {
            1 => self.process.stdio.stdout.write_all(bytes),
            _ => self.process.stdio.stderr.write_all(bytes),
        }
    }

    fn pt_applied(&mut self, _cpu: &mut Cpu<'_>) -> Flow {
        self.left_guest();
        mm::batch_applied(&self.machine, &self.process, &mut self.thread);
        Flow::Continue
    }

    fn started(&mut self, index: u32) {
        if let Some(server) = &self.process.exitless {
            server.register(&self.machine, index, &self.thread.sig);
        }
    }

    fn exitless_served(&mut self, cpu: &mut Cpu<'_>) -> Flow {
        self.left_guest();
        self.with_ctx(cpu, mm::follow_page_tables);
        Flow::Continue
    }

    fn signal_waiting(&self) -> bool {
        self.thread.sig.hint.load(Ordering::SeqCst)
            || !self.thread.due.is_empty()
            // A flush changes the registers as a signal frame does (`enter_guest`).
            || (self.process.threaded.load(Ordering::Relaxed)
                && self.thread.sig.tlb_seen.load(Ordering::SeqCst)
                    < self.machine.tlb_gen())
    }

    fn before_run(&mut self, cpu: Option<&mut Cpu<'_>>) -> Option<Flow> {
        self.left_guest();
        match cpu {
            None => {
                let flow = self.look_before_run(None);
                if flow.is_none() {
                    self.enter_guest(None);
                }
                flow
            }
            Some(cpu) => {
                let flow = self.look_before_run(Some(&mut *cpu));
                if flow.is_none() {
                    self.enter_guest(Some(cpu));
                }
                flow
            }
        }
    }
}

impl LinuxThread {
    /// Run `f` on a handler's context for this thread and `cpu`.
    fn with_ctx<R>(&mut self, cpu: &mut Cpu<'_>, f: impl FnOnce(&mut Ctx<'_, '_>) -> R) -> R {
        let machine = Arc::clone(&self.machine);
        let mut cx = Ctx {
            mem: &machine.mem,
            machine: &machine,
            process: &self.process,
            thread: &mut self.thread,
            cpu,
            served: false,
        };
        f(&mut cx)
    }

    /// A fault's signal, or the end it brings.
    fn fault_flow(cx: &mut Ctx<'_, '_>, fault: AppFault) -> Flow {
        match fault::take(cx, fault) {
            Ok(()) => Flow::Continue,
            Err(Stop::Exit(status)) => Flow::EndProcess(status),
            Err(Stop::ExitThread) => Flow::EndThread,
            // Delivery ends in a status or resumes the application; nothing else is possible
            // here, and a fault must never resume at the faulting instruction unhandled.
            Err(_) => Flow::EndProcess(signal::killed(
                cx.process,
                libc::SIGSEGV,
                "",
                cx.cpu.regs.rip,
            )),
        }
    }

    /// The vCPU left the guest: it uses no translation until [`LinuxThread::enter_guest`].
    /// Every exit the personality handles starts here.
    fn left_guest(&mut self) {
        self.thread.sig.tlb_in_guest.store(false, Ordering::SeqCst);
        self.machine.tlb_notify();
        if self.thread.sig.mask_served.swap(false, Ordering::SeqCst) {
            // The exit-less server ran this thread's rt_sigprocmask on its mirror.
            self.thread.sigmask = self.thread.sig.blocked.load(Ordering::SeqCst);
        }
    }

    /// [`ExitHandler::before_run`]'s checks and signal delivery.
    fn look_before_run(&mut self, cpu: Option<&mut Cpu<'_>>) -> Option<Flow> {
        if let Some(r) = self.machine.stop.requested() {
            return Some(Flow::EndProcess(r.status()));
        }
        if self.process.exit.exiting() {
            return Some(Flow::EndThread);
        }
        let Some(cpu) = cpu else {
            // Before the first entry: from now on kicks reach this host thread.
            self.thread.sig.started();
            return None;
        };
        // A forked child's first entry: its MADV_DONTFORK/WIPEONFORK memory first.
        let forked = self.thread.forked && cpu.sregs.cs.dpl == 3;
        let quiet = !self.thread.sig.hint.load(Ordering::SeqCst) && self.thread.due.is_empty();
        // A signal lands where the application runs: at CPL3 (on hardware KVM a vCPU stopped
        // in the core is left to reach user mode; the kicker kicks again).
        if !forked && (quiet || cpu.sregs.cs.dpl != 3) {
            return None;
        }
        self.thread.forked = false;
        let machine = self.machine.clone();
        let mut cx = Ctx {
            mem: &machine.mem,
            machine: &self.machine,
            process: &self.process,
            thread: &mut self.thread,
            cpu,
            served: false,
        };
        if forked {
            let mem = cx.mem;
            if cx.process.space_mut().fork_child(mem) {
                // The vCPU now enters the core's batch routine; signals wait for the next
                // entry at CPL3.
                mm::follow_page_tables(&mut cx);
                return None;
            }
            if quiet {
                return None;
            }
        }
        match signal::deliver::deliver(&mut cx) {
            Ok(()) => None,
            Err(Stop::Exit(status)) => Some(Flow::EndProcess(status)),
            Err(Stop::ExitThread) => Some(Flow::EndThread),
            Err(Stop::Fatal(e)) => {
                log::warn!("signal delivery: {e}");
                Some(Flow::EndProcess(ExitStatus::Signaled {
                    signal: libc::SIGKILL,
                    report: format!("umon: {e}"),
                }))
            }
            Err(_) => None,
        }
    }
}

/// Decode the call in `cx.cpu`'s registers and run it, traced (`--trace`) and with the
/// vDSO's clocks refreshed: what the exit path and the exit-less server share.
fn run_call(cx: &mut Ctx<'_, '_>) -> Sys {
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
    mm::space::take_grow_wanted();
    let mut outcome = dispatch(cx, nr, &args);
    if matches!(outcome, Err(Stop::Errno(Errno::EFAULT))) && mm::grow_for_access(cx) {
        // It touched memory just below a MAP_GROWSDOWN mapping, which Linux's uaccess fault
        // would have grown: grown now, the call runs again (it had failed before any effect:
        // the monitor resolves guest buffers before it moves data).
        outcome = dispatch(cx, nr, &args);
    }
    if matches!(outcome, Err(Stop::GiveBack)) {
        // Not run: the exit path runs (and traces) it.
        return outcome;
    }
    // Its writes to a private /tmp are made: no longer in flight for the other processes.
    fs::private::settle();
    // What was sent to umon before the call saw its effects is taken before it returns.
    signal::host::take_pending(cx.process, &cx.machine.stop);
    refresh_clocks(cx);
    if let Some((t0, tid)) = started {
        trace_call(cx, nr, &args, &outcome, t0.elapsed(), tid);
    }
    outcome
}

/// Run the system call in the vCPU's registers and set up the return to the application.
fn handle(cx: &mut Ctx<'_, '_>) -> Result<Flow, HypercallError> {
    let nr = cx.cpu.regs.rax & 0xffff_ffff;
    let mask_before = cx.thread.sigmask;
    let outcome = run_call(cx);
    let ret = match outcome {
        Ok(v) => Some(v as i64),
        Err(Stop::Errno(e)) if signal::deliver::is_restart(e) => {
            // Cut short by a signal: EINTR unless the delivery below restarts it.
            cx.thread.restart = Some((e.into_raw(), nr));
            Some(-i64::from(Errno::EINTR.into_raw()))
        }
        Err(Stop::Errno(e)) => Some(-i64::from(e.into_raw())),
        Err(Stop::Exit(status)) => return Ok(Flow::EndProcess(status)),
        Err(Stop::ExitThread) => return Ok(Flow::EndThread),
        Err(Stop::Fatal(e)) => return Err(e),
        Err(Stop::Resumed) => None,
        // Only served calls give back (`Ctx::served` is false here); never seen.
        Err(Stop::GiveBack) => Some(-i64::from(Errno::EAGAIN.into_raw())),
    };
    if let Some(ret) = ret {
        cx.cpu.complete_syscall(ret);
    }
    if signal::deliver::wanted(cx, mask_before) {
        if let Err(stop) = signal::deliver::deliver(cx) {
            return match stop {
                Stop::Exit(status) => Ok(Flow::EndProcess(status)),
                Stop::ExitThread => Ok(Flow::EndThread),
                Stop::Fatal(e) => Err(e),
                _ => {
                    mm::follow_page_tables(cx);
                    Ok(Flow::Continue)
                }
            };
        }
    }
    // Last: the batch returns to the registers as they are now.
    mm::follow_page_tables(cx);
    Ok(Flow::Continue)
}

/// Follow steps of the host's wall clock in the vDSO's time page, at most once a second, from
/// an exit the application makes anyway (a program that never makes a syscall keeps the
/// wall-clock offset it started with).
fn refresh_clocks(cx: &Ctx<'_, '_>) {
    let now = vdso::monotonic_secs();
    let last = cx.process.vdso_refreshed.load(Ordering::Relaxed);
    if now > last
        && cx
            .process
            .vdso_refreshed
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        if let Err(e) = vdso::refresh(cx.mem) {
            log::debug!("vdso: time page not refreshed: {e}");
        }
    }
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
        let mut args = a.0;
        if nr == Sysno::rt_sigreturn as u64 {
            // strace shows the mask it restores.
            args[0] = cx.thread.sigmask;
        }
        let call = crate::linux::trace::Call {
            nr,
            args,
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
        Some(s) if p.seen.insert(s) => Some(format!(
            "{}unsupported syscall {nr} ({})\n",
            cx.process.note_prefix(),
            s.name()
        )),
        Some(_) => None,
        None if p.unknown_seen.contains(&nr) || p.unknown_silenced => None,
        None if p.unknown_seen.len() == MAX_UNKNOWN_NOTES => {
            p.unknown_silenced = true;
            Some(format!(
                "{}unsupported syscall numbers: further unknown ones are not reported\n",
                cx.process.note_prefix()
            ))
        }
        None => {
            p.unknown_seen.push(nr);
            Some(format!(
                "{}unsupported syscall {nr}\n",
                cx.process.note_prefix()
            ))
        }
    };
    drop(p);
    if let Some(note) = note {
        let _ = cx.process.stdio.stderr.write_all(note.as_bytes());
    }
    Err(Errno::ENOSYS.into())
}
