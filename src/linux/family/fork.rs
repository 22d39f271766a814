//! fork, vfork and clone without CLONE_THREAD: a host fork of this monitor. The child monitor
//! keeps a copy-on-write copy of everything, guest RAM included, and the host fds (so open
//! file descriptions, offsets and pipes are shared as on Linux); KVM refuses the parent's VM
//! in the child, so the child makes a new VM over its copy of RAM ([`crate::machine::Machine::forked`]) and
//! runs the forking thread's registers there on a fresh host thread. Only the forking thread
//! goes on in the child, as on Linux.
//!
//! Cost: the host fork (page tables of the monitor and of guest RAM as touched), a KVM VM and
//! one vCPU; no byte of guest RAM is copied until written.
use super::table::state;
use super::{Family, DEFAULT_MAX_PROCESSES};
use crate::linux::abi::Rlimit;
use crate::linux::process::{locked, Process};
use crate::linux::task::ExitState;
use crate::linux::thread::{Thread, ThreadSig};
use crate::linux::{Ctx, Sys};
use crate::machine::stop::{KillHandle, Parker};
use crate::machine::vcpu::setup::UserStart;
use crate::machine::ForkSnapshot;
use crate::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use syscalls::Errno;

/// CLONE_VFORK.
pub const CLONE_VFORK: u64 = 0x4000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
/// Host stack of the thread that runs a forked process's first thread (as a main thread's).
const CHILD_STACK: usize = 8 << 20;
/// PR_SET_CHILD_SUBREAPER.
const PR_SET_CHILD_SUBREAPER: i32 = 36;

/// A new process's clone arguments.
pub struct Request {
    /// clone flags (without the exit signal).
    pub flags: u64,
    /// Signal to the parent at the child's end.
    pub exit_signal: u64,
    /// The child's stack pointer (0: the parent's).
    pub stack: u64,
    /// CLONE_PARENT_SETTID's pointer.
    pub parent_tid: u64,
    /// CLONE_CHILD_SETTID/CLEARTID's pointer.
    pub child_tid: u64,
    /// CLONE_SETTLS's FS base.
    pub tls: u64,
}

/// What the child takes from the parent's process, taken while the parent's locks are held.
struct Taken {
    space: crate::linux::mm::space::AddrSpace,
    fds: crate::linux::fd::FdTable,
    fs: crate::linux::fs::volume::FileSystem,
    signals: crate::linux::process::Signals,
    rlimits: std::collections::HashMap<u64, Rlimit>,
    notes: crate::linux::process::Notes,
    prctl: crate::linux::PrctlState,
}

/// The most processes at once: the soft RLIMIT_NPROC (at most [`DEFAULT_MAX_PROCESSES`], its
/// default and hard limit).
fn process_limit(cx: &Ctx<'_, '_>) -> u32 {
    let soft = crate::linux::proc::rlimit(cx, crate::linux::proc::RLIMIT_NPROC).cur;
    soft.min(u64::from(DEFAULT_MAX_PROCESSES)) as u32
}

/// fork/vfork/clone(2) of a process.
pub fn fork(cx: &mut Ctx<'_, '_>, r: Request) -> Sys {
    let family = &cx.process.family;
    let table = family.table.clone().ok_or(Errno::EAGAIN)?;
    let run = cx.process.boot.run_forked.ok_or(Errno::EAGAIN)?;
    if table.processes() >= process_limit(cx) {
        return Err(Errno::EAGAIN.into());
    }
    if cx.process.exit.exiting() {
        return Err(Errno::EINTR.into());
    }
    // No other vCPU's batch in flight from the snapshot of the tables' mirror to the host
    // fork: the child's mirror is what its copy of the tables holds.
    let machine = cx.machine;
    let turn = machine
        .pt_turn
        .hold(|| machine.stop.requested().is_some() || cx.process.exit.exiting())
        .ok_or(Errno::EINTR)?;
    // Without KVM (the fuzzing harness) nothing forks.
    let snap = cx.machine.fork_snapshot().ok_or(Errno::EAGAIN)?;
    let me = cx.process.tgid;
    if me == 1 && family.ensure_lifeline().is_err() {
        return Err(Errno::EAGAIN.into());
    }
    if me == 1 {
        // Orphaned monitors come to pid 1's, which reaps them (host level), as orphans come
        // to pid 1 in the guest.
        // SAFETY: prctl with integer arguments only.
        #[allow(unsafe_code)]
        unsafe {
            libc::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        };
    }
    family.start_mailbox(cx.process, me, &cx.machine.stop);
    family.reap_lingering();
    let pid = table.alloc(state::RUNNING).ok_or(Errno::EAGAIN)?;
    let slot = table.slot(pid).ok_or(Errno::EAGAIN)?;
    slot.ppid.store(me, Ordering::Relaxed);
    slot.pgid.store(cx.process.pgid(), Ordering::Relaxed);
    slot.sid.store(cx.process.sid(), Ordering::Relaxed);
    slot.exit_signal
        .store(r.exit_signal as u32, Ordering::Relaxed);
    slot.host_pid.store(0, Ordering::Relaxed);

    let parent = &*cx.cpu.regs;
    let mut regs = *parent;
    regs.rax = 0;
    regs.rip = parent.rcx;
    regs.rflags = parent.r11;
    if r.stack != 0 {
        regs.rsp = r.stack;
    }
    let start = UserStart {
        regs,
        fs_base: if r.flags & CLONE_SETTLS != 0 {
            r.tls
        } else {
            cx.cpu.sregs.fs.base
        },
        gs_base: cx.cpu.sregs.gs.base,
        xstate: cx.cpu.xstate.and_then(|x| x.get()).map(|x| x.image),
    };
    // A vfork child sends back what it writes near the parent's stack pointer (vfork.rs).
    let back = if r.flags & CLONE_VFORK != 0 {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()
    } else {
        None
    };
    let window = super::vfork::window(parent.rsp);
    // From now on the trace names every process's calls, as strace -f.
    cx.process.multi_threaded.store(true, Ordering::Relaxed);

    // Hold what the parent's other threads (vCPUs, timers, the mailbox) might be changing, so
    // the child's copy is whole; the child takes the values out of its copy of these guards.
    let host = {
        let mut space = cx.process.space_mut();
        let mut fds = cx.process.fds();
        let mut fs = cx.process.fs_mut();
        let signals = cx.process.signals();
        let rlimits = cx.process.rlimits();
        let notes = locked(&cx.process.notes);
        let prctl = cx.process.prctl();
        let tracer = cx.process.trace.as_ref().map(locked);
        // SAFETY: fork(2) of a multi-threaded process: in the child only this thread runs; it
        // touches only state it holds the locks of (above) or makes anew, and glibc's fork
        // leaves malloc usable there.
        #[allow(unsafe_code)]
        let host = unsafe { libc::fork() };
        if host == 0 {
            let mut fs_taken = std::mem::take(&mut *fs);
            // The private /tmp belongs to pid 1's monitor, which removes it at the end.
            std::mem::forget(fs_taken.private.take());
            let taken = Taken {
                space: std::mem::take(&mut *space),
                fds: std::mem::take(&mut *fds),
                fs: fs_taken,
                signals: crate::linux::process::Signals {
                    actions: signals.actions.clone(),
                    ..Default::default()
                },
                rlimits: rlimits.clone(),
                notes: crate::linux::process::Notes {
                    seen: notes.seen.clone(),
                    unknown_seen: notes.unknown_seen.clone(),
                    unknown_silenced: notes.unknown_silenced,
                },
                prctl: prctl.clone(),
            };
            let trace = tracer.as_ref().map(|t| t.fresh());
            drop((space, fds, fs, signals, rlimits, notes, prctl, tracer));
            let link = back.map(|(read, write)| {
                drop(read);
                super::vfork::Link::new(write, window)
            });
            child_main(cx, taken, trace, pid, (start, run, link), snap, &r);
        }
        host
    };
    drop(turn);
    if host < 0 {
        table.free(pid);
        return Err(Errno::EAGAIN.into());
    }
    slot.host_pid.store(host, Ordering::Relaxed);
    if let Some(pidfd) = rustix::process::Pid::from_raw(host)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
    {
        locked(&family.children).insert(pid, pidfd);
    }
    if r.flags & CLONE_PARENT_SETTID != 0 {
        let _ = cx.write_val(r.parent_tid, &pid);
    }
    if let Some((read, write)) = back {
        drop(write);
        super::vfork::receive(cx, read, pid);
    }
    if r.flags & CLONE_VFORK != 0 {
        // The parent waits until the child exec'd or ended.
        while slot.released.load(Ordering::Acquire) == 0
            && slot.state.load(Ordering::Acquire) == state::RUNNING
            && !cx.interrupted()
        {
            let seen = slot.events.load(Ordering::Acquire);
            if slot.released.load(Ordering::Acquire) != 0 {
                break;
            }
            super::table::futex_wait(&slot.events, seen, std::time::Duration::from_millis(50));
        }
    }
    Ok(pid.into())
}

/// The child monitor, in the forking thread right after the host fork: build the process and
/// the machine, run them on a fresh host thread, report the end, and leave.
fn child_main(
    cx: &Ctx<'_, '_>,
    taken: Taken,
    trace: Option<crate::linux::trace::Tracer>,
    pid: u32,
    (start, run, link): (
        UserStart,
        crate::linux::process::RunForked,
        Option<super::vfork::Link>,
    ),
    snap: ForkSnapshot,
    r: &Request,
) -> ! {
    let old = cx.process;
    let process = Arc::new(Process::forked(old, pid, taken, trace));
    *locked(&process.family.vfork) = link;
    process.family.watch_lifeline();
    if let Some(slot) = process.family.slot(pid) {
        slot.host_pid.store(
            rustix::process::getpid().as_raw_nonzero().get(),
            Ordering::Relaxed,
        );
    }
    let parker = Arc::new(Parker::default());
    let sig = Arc::new(ThreadSig::new(pid, parker.clone()));
    sig.blocked.store(cx.thread.sigmask, Ordering::SeqCst);
    let thread = Thread {
        tid: pid,
        sigmask: cx.thread.sigmask,
        altstack: cx.thread.altstack,
        clear_child_tid: if r.flags & CLONE_CHILD_CLEARTID != 0 {
            r.child_tid
        } else {
            0
        },
        parker,
        sig,
        forked: true,
        ..Default::default()
    };
    let stop = KillHandle::new();
    // The runner reports the end itself, before its VM is torn down.
    match cx.machine.forked(snap, stop.clone()) {
        Err(e) => {
            log::warn!("fork: the child's VM: {e}");
            process.report_end(&ExitStatus::Signaled {
                signal: libc::SIGKILL,
                report: String::new(),
            });
        }
        Ok(machine) => {
            let machine = Arc::new(machine);
            if r.flags & CLONE_CHILD_SETTID != 0 {
                let _ = process.space().write_val(&machine.mem, r.child_tid, &pid);
            }
            let runner = process.clone();
            let ran = std::thread::Builder::new()
                .name(format!("pid{pid}"))
                .stack_size(CHILD_STACK)
                .spawn(move || run(machine, &runner, thread, &start));
            if !matches!(ran.map(|h| h.join()), Ok(Ok(_))) {
                // No thread, or it panicked before its report.
                process.report_end(&ExitStatus::Signaled {
                    signal: libc::SIGKILL,
                    report: String::new(),
                });
            }
        }
    }
    // SAFETY: _exit(2): this monitor process ends here; nothing of it must run atexit
    // handlers or flush the parent's buffers a second time.
    #[allow(unsafe_code)]
    unsafe {
        libc::_exit(0)
    }
}

impl Process {
    /// The child's process: pid `pid`, the parent's memory, files, directories, dispositions
    /// and limits; no pending signals, timers, other threads or children (Linux's fork).
    fn forked(
        old: &Process,
        pid: u32,
        t: Taken,
        trace: Option<crate::linux::trace::Tracer>,
    ) -> Process {
        Process {
            tgid: pid,
            symbols: RwLock::new(old.symbols.read().map(|s| s.clone()).unwrap_or_default()),
            echo_enabled: old.echo_enabled,
            exe: RwLock::new(old.exe.read().map(|e| e.clone()).unwrap_or_default()),
            stdio: old.stdio.clone(),
            trace: trace.map(Mutex::new),
            space: RwLock::new(t.space),
            fds: Mutex::new(t.fds),
            fs: RwLock::new(t.fs),
            prctl: Mutex::new(t.prctl),
            signals: Mutex::new(t.signals),
            mempolicy: Mutex::new(*locked(&old.mempolicy)),
            sig_queued: AtomicUsize::new(0),
            sigpending_default: old.sigpending_default,
            rlimits: Mutex::new(t.rlimits),
            notes: Mutex::new(t.notes),
            threads: Mutex::default(),
            multi_threaded: AtomicBool::new(true),
            threaded: AtomicBool::new(false),
            vdso_refreshed: Default::default(),
            futexes: Default::default(),
            exit: ExitState::default(),
            cpus: old.cpus,
            timers: Default::default(),
            family: Family::for_child(&old.family),
            exec: Mutex::default(),
            boot: old.boot.clone(),
            image: RwLock::new(old.image.read().map(|i| i.clone()).unwrap_or_default()),
            exitless: old.exitless.as_ref().map(|_| Default::default()),
        }
    }
}
