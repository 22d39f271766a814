//! Threads: clone/clone3 for the flag sets C libraries and language runtimes use for threads,
//! each thread on its own vCPU and host thread; exit of one thread (CLONE_CHILD_CLEARTID, the
//! robust list), exit_group and the end of the process; the CPUs the application is told about.
use super::abi::TASK_SIZE_MAX;
use super::process::locked;
use super::thread::ThreadSig;
use super::{Args, Ctx, LinuxThread, Process, Stop, Sys, Thread};
use crate::exit::ExitStatus;
use crate::machine::memory::GuestMem;
use crate::machine::stop::Parker;
use crate::machine::vcpu::cpu::Cpu;
use crate::machine::vcpu::setup::UserStart;
use crate::machine::vcpu::{RunEnd, RunError, Vcpu, VcpuError};
use crate::machine::{Machine, NewVcpuError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use syscalls::Errno;

const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_NEWNS: u64 = 0x20000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_DETACHED: u64 = 0x40_0000;
const CLONE_UNTRACED: u64 = 0x80_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// CLONE_NEWTIME shares its bit with CSIGNAL's (clone3 only).
const CLONE_NEWTIME: u64 = 0x80;

/// What a thread must share: the address space, the file-system view, the fd table and the
/// signal handlers, in one thread group.
const THREAD_REQUIRED: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
/// What a thread may add: ignored ones (SYSVSEM: no System V semaphores; DETACHED, PTRACE,
/// UNTRACED, PARENT: meaningless for a thread) and the tid/TLS requests served.
const THREAD_OPTIONAL: u64 = CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_PTRACE
    | CLONE_UNTRACED
    | CLONE_PARENT;

/// sizeof(struct clone_args) of the first and the latest version.
const CLONE_ARGS_SIZE_VER0: u64 = 64;
const CLONE_ARGS_SIZE_VER2: u64 = 88;
/// _NSIG.
const NSIG: u64 = 64;
/// Most tids (Linux's default /proc/sys/kernel/pid_max).
const PID_MAX: u32 = 4_194_304;

/// What other threads may see of a live thread.
#[derive(Default)]
pub struct Peer {
    /// Wakes it.
    parker: Arc<Parker>,
    /// Its signal queue, mask mirror and kick.
    sig: Arc<ThreadSig>,
    /// Its set_robust_list head (get_robust_list of another thread).
    robust_head: AtomicU64,
}

/// The threads of the process.
pub struct Threads {
    /// Next tid to try.
    next_tid: u32,
    /// Live threads by tid.
    live: HashMap<u32, Peer>,
}

impl Default for Threads {
    fn default() -> Self {
        Threads {
            next_tid: super::thread::FIRST_TID + 1,
            live: HashMap::new(),
        }
    }
}

/// How the process ends: the first exit_group's status (or a fatal signal's, or a stop's),
/// else the last thread's exit status; or an error of the monitor.
#[derive(Default)]
pub struct ExitState {
    exiting: AtomicBool,
    status: Mutex<Option<ExitStatus>>,
    fatal: Mutex<Option<RunError>>,
}

impl ExitState {
    /// Whether the process is ending (its threads leave at their next check).
    pub fn exiting(&self) -> bool {
        self.exiting.load(Ordering::SeqCst)
    }

    fn set(&self, status: ExitStatus) {
        locked(&self.status).get_or_insert(status);
        self.exiting.store(true, Ordering::SeqCst);
    }

    /// Clear an end that was an exec's (every thread left for the new image).
    pub fn reset(&self) {
        *locked(&self.status) = None;
        self.exiting.store(false, Ordering::SeqCst);
    }

    /// The process's end, once every thread has left.
    pub fn take(&self) -> Result<ExitStatus, RunError> {
        if let Some(e) = locked(&self.fatal).take() {
            return Err(e);
        }
        Ok(locked(&self.status).take().unwrap_or(ExitStatus::Exited(0)))
    }
}

impl Process {
    /// Register the first thread (the one `Vm::run` runs).
    pub fn add_first_thread(&self, thread: &Thread) {
        let peer = Peer {
            parker: thread.parker.clone(),
            sig: thread.sig.clone(),
            robust_head: AtomicU64::new(0),
        };
        locked(&self.threads).live.insert(thread.tid, peer);
    }

    /// A thread's tid back to the pid table (the main thread's is the pid, freed by the wait
    /// that reaps the process).
    pub fn free_tid(&self, tid: u32) {
        if tid != self.tgid {
            if let Some(t) = &self.family.table {
                t.free(tid);
            }
        }
    }

    /// The signal half of live thread `tid`.
    pub fn thread_sig(&self, tid: u32) -> Option<Arc<ThreadSig>> {
        locked(&self.threads).live.get(&tid).map(|p| p.sig.clone())
    }

    /// The signal halves of the live threads.
    pub fn thread_sigs(&self) -> Vec<Arc<ThreadSig>> {
        locked(&self.threads)
            .live
            .values()
            .map(|p| p.sig.clone())
            .collect()
    }

    /// Record `tid`'s robust list head for get_robust_list from other threads.
    pub fn set_robust_head(&self, tid: u32, head: u64) {
        if let Some(p) = locked(&self.threads).live.get(&tid) {
            p.robust_head.store(head, Ordering::Relaxed);
        }
    }

    /// Whether `tid` is a live thread of the process.
    pub fn has_thread(&self, tid: u32) -> bool {
        locked(&self.threads).live.contains_key(&tid)
    }

    /// How many threads are alive.
    pub fn live_threads(&self) -> usize {
        locked(&self.threads).live.len()
    }

    /// The whole process ends with `status` (the first one wins): every thread is kicked out of
    /// its guest code or its wait, and leaves.
    pub fn exit_group(&self, machine: &Machine, status: ExitStatus) {
        self.exit.set(status);
        for peer in locked(&self.threads).live.values() {
            peer.parker.unpark();
        }
        machine.stop.kick_all();
    }
}

/// After a batch that took translations away, with several vCPUs: every other vCPU that may
/// be running application code drops its translations (kicked out of the guest; it flushes
/// before its next entry, `LinuxThread::enter_guest`) before this returns, so the change
/// holds for every thread and the frames it freed can be reused. Gives up only when the VM or
/// the process ends.
pub(crate) fn tlb_shootdown(
    machine: &Machine,
    process: &Process,
    me: &ThreadSig,
    flush: &crate::machine::paging::Flush,
) {
    let gen = machine.took_away(flush);
    me.tlb_seen.store(gen, Ordering::SeqCst);
    let mut wait = machine.tlb_lock();
    loop {
        let waiting: Vec<Arc<ThreadSig>> = locked(&process.threads)
            .live
            .values()
            .filter(|p| {
                p.sig.tid != me.tid
                    && p.sig.tlb_in_guest.load(Ordering::SeqCst)
                    && p.sig.tlb_seen.load(Ordering::SeqCst) < gen
            })
            .map(|p| p.sig.clone())
            .collect();
        if waiting.is_empty() || machine.stop.requested().is_some() || process.exit.exiting() {
            return;
        }
        for s in &waiting {
            s.kick_vcpu();
        }
        // Woken by each vCPU that leaves the guest or flushes (`Machine::tlb_notify`); the
        // timeout re-kicks one a kick missed (it was on its way into the guest).
        wait.sleep(std::time::Duration::from_millis(1));
    }
}

impl LinuxThread {
    /// Last thing before the vCPU enters the guest, with several vCPUs: mark it as running
    /// application code, then flush its translations if a shootdown happened since its last
    /// flush (the order — mark, then look — pairs with `tlb_shootdown`'s bump, then look).
    /// Only at CPL3 (the application's own registers; `cpu` None: not to be looked at): in
    /// the core the vCPU gets there first and the shootdown's next kick finds it there.
    pub(crate) fn enter_guest(&mut self, cpu: Option<&mut Cpu<'_>>) {
        if !self.process.threaded.load(Ordering::Relaxed) {
            return;
        }
        let sig = &self.thread.sig;
        sig.tlb_in_guest.store(true, Ordering::SeqCst);
        let gen = self.machine.tlb_gen();
        if sig.tlb_seen.load(Ordering::SeqCst) >= gen {
            return;
        }
        let Some(cpu) = cpu.filter(|c| c.sregs.cs.dpl == 3) else {
            return;
        };
        let seen = sig.tlb_seen.load(Ordering::SeqCst);
        match self.machine.flush_tlb(cpu, seen, gen) {
            Ok(true) => {
                sig.tlb_seen.store(gen, Ordering::SeqCst);
                self.machine.tlb_notify();
            }
            Ok(false) => {}
            Err(e) => log::warn!("cannot flush a vCPU's translations: {e}"),
        }
    }

    /// After this thread's run loop returned: a process end becomes the group's, a monitor
    /// error ends the process, and the last thread to leave decides the status if nobody did.
    pub fn finish(mut self, end: Result<RunEnd, RunError>) {
        // A batch this vCPU will never finish must not hold the others up, nor a shootdown.
        self.thread.sig.tlb_in_guest.store(false, Ordering::SeqCst);
        self.machine.tlb_notify();
        self.machine.pt_turn.release();
        match end {
            Ok(RunEnd {
                status: Some(status),
                ..
            }) => self.process.exit_group(&self.machine, status),
            Ok(_) => {}
            Err(e) => {
                let status = ExitStatus::Signaled {
                    signal: libc::SIGKILL,
                    report: String::new(),
                };
                locked(&self.process.exit.fatal).get_or_insert(e);
                self.process.exit_group(&self.machine, status);
            }
        }
        // Ended by another thread's exit_group, a fatal signal or a stop: its robust list, as
        // its do_exit would (exit and exit_group walked it already).
        walk_robust_list(&self.machine.mem, &self.process, &mut self.thread);
        let last = {
            let mut t = locked(&self.process.threads);
            t.live.remove(&self.thread.tid);
            t.live.is_empty()
        };
        super::signal::deliver::thread_gone(&self.process, &self.thread.sig);
        if let Some(server) = &self.process.exitless {
            server.unregister(&self.machine, &self.thread.sig);
        }
        self.process.free_tid(self.thread.tid);
        if last {
            self.process
                .exit
                .set(ExitStatus::Exited(self.thread.exit_code));
        }
    }
}

/// clone(2): `clone(flags, stack, parent_tid, child_tid, tls)` on x86-64.
pub fn clone(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = a.0[0] & 0xffff_ffff;
    let req = Request {
        flags: flags & !CSIGNAL,
        exit_signal: flags & CSIGNAL,
        stack: a.0[1],
        parent_tid: a.0[2],
        child_tid: a.0[3],
        tls: a.0[4],
        pidfd: a.0[2],
    };
    // kernel_clone: the pidfd and the parent tid would share the one pointer.
    if req.flags & CLONE_PIDFD != 0 && req.flags & CLONE_PARENT_SETTID != 0 {
        return Err(Errno::EINVAL.into());
    }
    create(cx, req)
}

/// `struct clone_args` (clone3).
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3(2): the checks of copy_clone_args_from_user and clone3_args_valid, in their order.
pub fn clone3(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (uargs, size) = (a.0[0], a.0[1]);
    if size > crate::machine::paging::PAGE_4K {
        return Err(Errno::E2BIG.into());
    }
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL.into());
    }
    let mut raw = [0u8; CLONE_ARGS_SIZE_VER2 as usize];
    let n = size.min(CLONE_ARGS_SIZE_VER2);
    if size > CLONE_ARGS_SIZE_VER2 {
        // copy_struct_from_user: a bigger struct must be zero past what the kernel knows.
        let mut tail = vec![0u8; (size - CLONE_ARGS_SIZE_VER2) as usize];
        cx.space()
            .read(cx.mem, uargs.wrapping_add(CLONE_ARGS_SIZE_VER2), &mut tail)?;
        if tail.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG.into());
        }
    }
    cx.space().read(cx.mem, uargs, &mut raw[..n as usize])?;
    let args: CloneArgs =
        zerocopy::FromBytes::read_from_bytes(&raw[..]).map_err(|_| Errno::EINVAL)?;
    // copy_clone_args_from_user.
    if args.set_tid_size > 32
        || (args.set_tid == 0 && args.set_tid_size > 0)
        || (args.set_tid != 0 && args.set_tid_size == 0)
    {
        return Err(Errno::EINVAL.into());
    }
    if args.exit_signal & !CSIGNAL != 0 || args.exit_signal > NSIG {
        return Err(Errno::EINVAL.into());
    }
    if args.flags & CLONE_INTO_CGROUP != 0
        && (args.cgroup > i32::MAX as u64 || size < CLONE_ARGS_SIZE_VER2)
    {
        return Err(Errno::EINVAL.into());
    }
    // clone3_args_valid.
    let f = args.flags;
    if f & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0
        || f & (CLONE_DETACHED | (CSIGNAL & !CLONE_NEWTIME)) != 0
        || f & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND
        || (f & (CLONE_THREAD | CLONE_PARENT) != 0 && args.exit_signal != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    let stack = if args.stack == 0 {
        if args.stack_size > 0 {
            return Err(Errno::EINVAL.into());
        }
        0
    } else {
        let end = args.stack.checked_add(args.stack_size);
        if args.stack_size == 0 || end.is_none_or(|e| e > TASK_SIZE_MAX) {
            return Err(Errno::EINVAL.into());
        }
        args.stack + args.stack_size
    };
    create(
        cx,
        Request {
            flags: f,
            exit_signal: args.exit_signal,
            stack,
            parent_tid: args.parent_tid,
            child_tid: args.child_tid,
            tls: args.tls,
            pidfd: args.pidfd,
        },
    )
}

/// What a new process may ask for: fork's and vfork's own flags and the tid reports
/// (CLONE_PTRACE, CLONE_UNTRACED, CLONE_DETACHED and CLONE_SYSVSEM have nothing to act on).
const PROCESS_FLAGS: u64 = CLONE_VM
    | CLONE_VFORK
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_PTRACE
    | CLONE_UNTRACED
    | CLONE_DETACHED
    | CLONE_SYSVSEM;

/// fork(2).
pub fn fork(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    create(cx, Request::process(0))
}

/// vfork(2).
pub fn vfork(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    create(cx, Request::process(CLONE_VM | CLONE_VFORK))
}

impl Request {
    fn process(flags: u64) -> Request {
        Request {
            flags,
            exit_signal: u64::from(super::family::SIGCHLD),
            stack: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
            pidfd: 0,
        }
    }
}

/// One clone request, from either call.
struct Request {
    flags: u64,
    exit_signal: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
    #[allow(dead_code)] // no pidfds yet
    pidfd: u64,
}

/// copy_process's flag checks, then a new thread (other requests: ENOSYS, once noted).
fn create(cx: &mut Ctx<'_, '_>, r: Request) -> Sys {
    let f = r.flags;
    let both = |x: u64| f & x == x;
    if both(CLONE_NEWNS | CLONE_FS)
        || both(CLONE_NEWUSER | CLONE_FS)
        || (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0)
        || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0)
        || (f & CLONE_THREAD != 0 && f & (CLONE_NEWUSER | CLONE_NEWPID) != 0)
        || (f & CLONE_PIDFD != 0 && f & CLONE_DETACHED != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    if f & CLONE_THREAD == 0
        && f & !PROCESS_FLAGS == 0
        && (f & CLONE_VM == 0 || f & CLONE_VFORK != 0)
    {
        // A process: fork (its own copy of memory) or vfork (the parent waits for its exec
        // or end; the child runs on a copy too, which well-behaved vfork children cannot tell).
        if f & CLONE_SETTLS != 0 && r.tls >= TASK_SIZE_MAX {
            return Err(Errno::EPERM.into());
        }
        return super::family::fork::fork(
            cx,
            super::family::fork::Request {
                flags: f,
                exit_signal: r.exit_signal,
                stack: r.stack,
                parent_tid: r.parent_tid,
                child_tid: r.child_tid,
                tls: r.tls,
            },
        );
    }
    if !both(THREAD_REQUIRED) || f & !(THREAD_REQUIRED | THREAD_OPTIONAL) != 0 {
        let what = if f & CLONE_THREAD == 0 {
            "processes that share files, directories or handlers with their parent \
             (CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_VM without CLONE_VFORK) are not supported"
        } else {
            "only threads (CLONE_VM|FS|FILES|SIGHAND|THREAD) are supported"
        };
        note_once(cx, what);
        return Err(Errno::ENOSYS.into());
    }
    // copy_thread: the TLS is the new FS base, which must be a user address.
    if f & CLONE_SETTLS != 0 && r.tls >= TASK_SIZE_MAX {
        return Err(Errno::EPERM.into());
    }
    if cx.process.exit.exiting() {
        // Linux's copy_process: a group exit under way.
        return Err(Errno::EINTR.into());
    }

    // The child: the parent's registers at the return from this syscall, with rax = 0.
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
        fs_base: if f & CLONE_SETTLS != 0 {
            r.tls
        } else {
            cx.cpu.sregs.fs.base
        },
        gs_base: cx.cpu.sregs.gs.base,
        xstate: cx.cpu.xstate.and_then(|x| x.get()).map(|x| x.image),
    };
    let parker = Arc::new(Parker::default());
    let new_sig;
    // Tids come from the pid table, where processes take their pids: one number space.
    let shared = match &cx.process.family.table {
        Some(table) => Some(
            table
                .alloc(super::family::table::state::THREAD)
                .ok_or(Errno::EAGAIN)?,
        ),
        None => None,
    };
    let tid = {
        let mut t = locked(&cx.process.threads);
        let tid = match shared {
            Some(tid) => tid,
            None => {
                let mut tid = t.next_tid;
                while t.live.contains_key(&tid) {
                    tid = if tid + 1 >= PID_MAX { 2 } else { tid + 1 };
                }
                t.next_tid = if tid + 1 >= PID_MAX { 2 } else { tid + 1 };
                tid
            }
        };
        // Its private queue starts empty; senders see the mask it inherits.
        let sig = Arc::new(ThreadSig::new(tid, parker.clone()));
        sig.blocked.store(cx.thread.sigmask, Ordering::SeqCst);
        new_sig = sig.clone();
        let peer = Peer {
            parker: parker.clone(),
            sig,
            robust_head: AtomicU64::new(0),
        };
        t.live.insert(tid, peer);
        tid
    };
    cx.process.multi_threaded.store(true, Ordering::Relaxed);
    cx.process.threaded.store(true, Ordering::Relaxed);
    // Before the new vCPU can run: from here on frees wait for their batch.
    cx.process.space_mut().several_vcpus();
    // Linux ignores a failed write of either tid.
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = cx.write_val(r.parent_tid, &tid);
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = cx.write_val(r.child_tid, &tid);
    }
    // Linux's copy_process: CLONE_VM without CLONE_VFORK starts with no alternate stack.
    let thread = Thread {
        tid,
        sigmask: cx.thread.sigmask,
        altstack: None,
        clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 {
            r.child_tid
        } else {
            0
        },
        robust_list: (0, 0),
        parker: parker.clone(),
        exit_code: 0,
        forked: false,
        shootdown: None,
        due: Default::default(),
        last_fault: Default::default(),
        sig: new_sig,
        restart: None,
        saved_mask: None,
        restart_block: None,
    };
    let child = LinuxThread {
        machine: cx.machine.clone(),
        process: cx.process.clone(),
        thread,
    };
    let body = Box::new(move |vcpu: Result<&mut Vcpu, VcpuError>| {
        let machine = child.machine.clone();
        let mut child = child;
        let end = match vcpu {
            Ok(vcpu) => vcpu.run(&machine.mem, &mut child),
            Err(e) => Err(RunError::Vcpu(e)),
        };
        child.finish(end);
    });
    if let Err(e) = cx.machine.start_thread(start, parker, body) {
        if !matches!(e, NewVcpuError::Limit(_) | NewVcpuError::Unavailable) {
            log::warn!("clone: {e}");
        }
        if let Some(t) = locked(&cx.process.threads).live.remove(&tid) {
            super::signal::deliver::thread_gone(cx.process, &t.sig);
        }
        cx.process.free_tid(tid);
        return Err(Errno::EAGAIN.into());
    }
    Ok(tid.into())
}

/// One note per kind of unsupported clone.
fn note_once(cx: &Ctx<'_, '_>, what: &str) {
    let first = locked(&cx.process.notes)
        .seen
        .insert(syscalls::Sysno::clone);
    if first {
        // The form of every unsupported-syscall note.
        let line = format!(
            "{}unsupported syscall 56 (clone): {what}\n",
            cx.process.note_prefix()
        );
        let _ = cx.process.stdio.stderr.write_all(line.as_bytes());
    }
}

/// The robust list's entries walked at most (ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: u32 = 2048;

/// exit(2) of one thread, in Linux's order (do_exit → exit_mm → mm_release): the robust list,
/// then CLONE_CHILD_CLEARTID (write 0, wake one).
pub fn exit_thread(cx: &mut Ctx<'_, '_>, code: u64) -> Sys {
    walk_robust_list(cx.mem, cx.process, cx.thread);
    let ctid = cx.thread.clear_child_tid;
    if ctid != 0 && ctid % 4 == 0 && cx.write_val(ctid, &0u32).is_ok() {
        cx.process.futexes.wake(ctid, 1);
    }
    cx.thread.exit_code = (code & 0xff) as i32;
    Err(Stop::ExitThread)
}

/// exit_group(2). The calling thread's robust list is walked, as its do_exit would: robust
/// mutexes in memory shared with other processes (PTHREAD_PROCESS_SHARED) it holds become
/// EOWNERDEAD for their waiters there. The process's other threads walk theirs as they leave
/// ([`LinuxThread::finish`]), as each one's do_exit does on Linux.
pub fn exit_group(cx: &mut Ctx<'_, '_>, code: u64) -> Sys {
    walk_robust_list(cx.mem, cx.process, cx.thread);
    Err(Stop::Exit(ExitStatus::Exited((code & 0xff) as i32)))
}

/// kernel/futex/core.c exit_robust_list: `struct robust_list_head { next, futex_offset,
/// list_op_pending }`; every entry (bit 0: a PI futex) names a word at entry + futex_offset.
/// A bad pointer ends the walk quietly. Once per thread: the list is forgotten after the walk
/// (exit and exit_group walk it before the thread leaves its run loop, which walks it
/// otherwise).
fn walk_robust_list(mem: &GuestMem, process: &Process, thread: &mut Thread) {
    let (head, len) = std::mem::take(&mut thread.robust_list);
    let tid = thread.tid;
    if head == 0 || len != 24 {
        return;
    }
    let read = |va: u64| process.space().read_val::<u64>(mem, va);
    let Ok(mut entry) = read(head) else {
        return;
    };
    let Ok(offset) = read(head + 8) else {
        return;
    };
    let Ok(pending) = read(head + 16) else {
        return;
    };
    let word = |e: u64| (e & !1).wrapping_add(offset);
    let mut limit = ROBUST_LIST_LIMIT;
    while entry != head {
        let Ok(next) = read(entry & !1) else {
            return;
        };
        if entry != pending {
            super::futex::owner_died(mem, process, tid, word(entry), entry & 1 != 0);
        }
        entry = next;
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending != 0 {
        super::futex::owner_died(mem, process, tid, word(pending), pending & 1 != 0);
    }
}

/// get_robust_list(pid, head_ptr, len_ptr): this thread's (pid 0) or another live one's.
pub fn get_robust_list(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, head_ptr, len_ptr) = (a.0[0] as i32, a.0[1], a.0[2]);
    let head = if pid == 0 || pid as u32 == cx.thread.tid {
        cx.thread.robust_list.0
    } else {
        let t = locked(&cx.process.threads);
        match t.live.get(&(pid as u32)) {
            Some(p) if pid > 0 => p.robust_head.load(Ordering::Relaxed),
            _ => return Err(Errno::ESRCH.into()),
        }
    };
    cx.write_val(len_ptr, &24u64)?;
    cx.write_val(head_ptr, &head)?;
    Ok(0)
}

/// cpumask_size(): the bytes of the kernel's CPU mask (nr_cpu_ids bits, in longs).
fn cpumask_bytes(cpus: u32) -> u32 {
    cpus.div_ceil(64) * 8
}

/// sched_getaffinity: every one of the `--cpus` CPUs.
pub fn sched_getaffinity(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    // pid_t and unsigned int in the kernel's prototype; Linux checks the size first, with
    // 32-bit arithmetic.
    let (pid, len, mask) = (a.0[0] as i32, a.0[1] as u32, a.0[2]);
    let cpus = cx.process.cpus.max(1);
    if len.wrapping_mul(8) < cpus || len % 8 != 0 {
        return Err(Errno::EINVAL.into());
    }
    check_pid(cx, pid)?;
    let n = len.min(cpumask_bytes(cpus)) as usize;
    let mut bytes = vec![0u8; n];
    for cpu in 0..cpus as usize {
        bytes[cpu / 8] |= 1 << (cpu % 8);
    }
    cx.space().write(cx.mem, mask, &bytes)?;
    Ok(n as u64)
}

/// sched_setaffinity: accepted when the mask names at least one of the CPUs (the host
/// schedules the vCPU threads anyway).
pub fn sched_setaffinity(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, len, mask) = (a.0[0] as i32, a.0[1] as u32, a.0[2]);
    let cpus = cx.process.cpus.max(1);
    let n = len.min(cpumask_bytes(cpus)) as usize;
    let mut bytes = vec![0u8; n];
    cx.space().read(cx.mem, mask, &mut bytes)?;
    check_pid(cx, pid)?;
    let any = (0..cpus as usize).any(|c| bytes.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0));
    if !any {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}

fn check_pid(cx: &Ctx<'_, '_>, pid: i32) -> Result<(), Errno> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    if pid == 0 || pid as u32 == cx.thread.tid || cx.process.has_thread(pid as u32) {
        return Ok(());
    }
    Err(Errno::ESRCH)
}
