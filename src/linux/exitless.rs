//! Exit-less syscalls, the personality's half (`machine::exitless` has the channel, the
//! stub and the hand-off at exits): one server thread per VM answers, with no VM exit, the
//! calls the stub publishes on each vCPU's channel, running the same handlers, traces and
//! checks as the exit path (`super::run_call`).
//!
//! What it serves ([`EXITLESS_CALLS`], and [`may_serve`] per call): calls that never block
//! and need nothing of the vCPU but their arguments: identity and clock queries, stat-like
//! path lookups, opens of what cannot wait (anything but a FIFO or a device), transfers on
//! files that never wait (regular files, /dev/null and the other memory devices) or that the
//! app made non-blocking (sockets, pipes, eventfds of an event loop), socket queries, futex
//! wakes, epoll_ctl, sigaction, sigprocmask. Everything else (a blocking read of a terminal or
//! pipe, a futex wait, mmap, kill, clone) goes to the exit path, where blocking is safe: the
//! stub sees it in the bitmap and exits at once, and the server gives back (`FALLBACK`)
//! anything it is asked that it may not run. A handler here runs on a copy of the thread's
//! signal-visible state (tid, mask, queue): the one per-thread state a served call changes is
//! the mask (rt_sigprocmask), through its shared mirror, which the vCPU takes back at its next
//! exit.
//!
//! When it polls: a server starts asleep; two calls the stub could have published, taken on
//! the exit path within [`IDLE`] of each other, wake it (and the stub then publishes); it
//! polls every channel in use while requests keep coming and sleeps after [`IDLE`] without
//! one, so an idle or compute-bound guest costs no host CPU. `--exitless off` makes no
//! server and keeps the plain stub; `auto` (the default) uses it when the host has a CPU to
//! spare for the server (more than one).
use super::process::locked;
use super::thread::ThreadSig;
use super::{Ctx, Process, Stop, Thread};
use crate::machine::exitless::{Exitless, Request};
use crate::machine::kvm::Platform;
use crate::machine::stop::Parker;
use crate::machine::vcpu::cpu::{Cpu, DIRTY_SREGS};
use crate::machine::Machine;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syscalls::Sysno;
use umon_abi::exitless::{BITMAP_CALLS, EXITLESS_VCPUS, REQ};

/// How long the server polls after the last request before it sleeps; also the window in
/// which two exit-path calls wake it. About ten exits' worth on PVM: a program making calls
/// in a loop keeps it awake, one that sleeps or computes between calls does not.
pub const IDLE: Duration = Duration::from_micros(300);

/// How long the stub waits for the server before it takes the exit itself: a fraction of
/// an exit's cost (26 us on PVM, 1-2 us on hardware KVM), so that a server that is not
/// running costs at most that much more than no server.
fn spin_budget(platform: Platform) -> Duration {
    match platform {
        Platform::Pvm => Duration::from_micros(8),
        Platform::Hardware => Duration::from_micros(2),
    }
}

/// [`spin_budget`] in the stub's `pause` rounds, measured once on this host (a `pause`
/// takes from a few to 140 cycles depending on the CPU).
fn spin_rounds(platform: Platform) -> u32 {
    static PAUSE_NS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ns = *PAUSE_NS.get_or_init(|| {
        let t = Instant::now();
        for _ in 0..4096 {
            std::hint::spin_loop();
        }
        (t.elapsed().as_nanos() as f64 / 4096.0).max(1.0)
    });
    ((spin_budget(platform).as_nanos() as f64 / ns) as u32).clamp(32, 1 << 16)
}

/// The calls the stub may publish. Each never blocks when [`may_serve`] accepts it.
pub const EXITLESS_CALLS: &[Sysno] = &[
    // Identity, limits, clocks: no fd, no waiting.
    Sysno::getpid,
    Sysno::getppid,
    Sysno::gettid,
    Sysno::getuid,
    Sysno::geteuid,
    Sysno::getgid,
    Sysno::getegid,
    Sysno::getresuid,
    Sysno::getresgid,
    Sysno::getgroups,
    Sysno::getpgrp,
    Sysno::getpgid,
    Sysno::getsid,
    Sysno::uname,
    Sysno::getcwd,
    Sysno::umask,
    Sysno::getrlimit,
    Sysno::getrusage,
    Sysno::times,
    Sysno::sysinfo,
    Sysno::sched_getaffinity,
    Sysno::getcpu,
    Sysno::getpriority,
    Sysno::clock_gettime,
    Sysno::clock_getres,
    Sysno::gettimeofday,
    Sysno::time,
    Sysno::getrandom,
    // Wakes only (checked per call): a mutex unlock or condvar signal with waiters.
    Sysno::futex,
    // Path lookups (stat-like: no open, so no FIFO to wait on).
    Sysno::newfstatat,
    Sysno::statx,
    Sysno::stat,
    Sysno::lstat,
    Sysno::access,
    Sysno::faccessat,
    Sysno::faccessat2,
    Sysno::readlink,
    Sysno::readlinkat,
    // Opens (not O_TRUNC, checked per call): one that would wait (a FIFO, a device) is
    // given back to the exit path before it starts (`Stop::GiveBack`).
    Sysno::open,
    Sysno::openat,
    // On an fd that never blocks (checked per call).
    Sysno::read,
    Sysno::write,
    Sysno::pread64,
    Sysno::pwrite64,
    Sysno::readv,
    Sysno::writev,
    Sysno::preadv,
    Sysno::pwritev,
    Sysno::lseek,
    Sysno::fstat,
    Sysno::fstatfs,
    Sysno::getdents64,
    Sysno::close,
    // Sockets: the queries always, the transfers when they cannot wait (O_NONBLOCK or
    // MSG_DONTWAIT), as event loops and Go's netpoller make them.
    Sysno::recvfrom,
    Sysno::sendto,
    Sysno::recvmsg,
    Sysno::sendmsg,
    Sysno::getsockname,
    Sysno::getpeername,
    Sysno::getsockopt,
    Sysno::epoll_ctl,
    // A look at an epoll set that does not wait (timeout 0, no signal mask): Go's netpoller
    // and event loops make it between runs of their own work.
    Sysno::epoll_wait,
    Sysno::epoll_pwait,
    // Dispositions: process state only (a runtime's start sets dozens: python3 66); a new
    // SIG_IGN drops what is pending, under the signal lock, as on the exit path.
    Sysno::rt_sigaction,
    // The mask: the server sets the thread's blocked-mask mirror, which the vCPU takes as
    // its mask at its next exit (`LinuxThread::left_guest`); a signal it unblocks makes the
    // stub exit after the call, to be delivered there.
    Sysno::rt_sigprocmask,
];

/// Whether the server may run call `nr` with arguments `args` now: one of
/// [`EXITLESS_CALLS`], and for the calls on an fd, an fd whose file never waits.
pub fn may_serve(process: &Process, nr: u64, args: &[u64; 6]) -> bool {
    let bits = bitmap();
    let listed = usize::try_from(nr)
        .ok()
        .and_then(|n| bits.get(n / 8).map(|b| b & (1 << (n % 8)) != 0));
    let (Some(true), Some(call)) = (listed, usize::try_from(nr).ok().and_then(Sysno::new)) else {
        return false;
    };
    match call {
        Sysno::read
        | Sysno::write
        | Sysno::pread64
        | Sysno::pwrite64
        | Sysno::readv
        | Sysno::writev
        | Sysno::preadv
        | Sysno::pwritev
        | Sysno::lseek
        | Sysno::fstat
        | Sysno::fstatfs
        | Sysno::getdents64
        | Sysno::close => locked(&process.fds)
            .get(args[0])
            .is_ok_and(|fd| fd.file.never_blocks() || nonblocking_transfer(call, &fd.file)),
        Sysno::recvfrom | Sysno::sendto | Sysno::recvmsg | Sysno::sendmsg => {
            // recvfrom/sendto take the flags in the fourth argument, the msg calls in the third.
            let flags = if matches!(call, Sysno::recvfrom | Sysno::sendto) {
                args[3]
            } else {
                args[2]
            };
            locked(&process.fds).get(args[0]).is_ok_and(|fd| {
                fd.file.as_socket().is_some()
                    && (flags & libc::MSG_DONTWAIT as u64 != 0
                        || nonblocking_transfer(call, &fd.file))
            })
        }
        // GRND_RANDOM may wait for entropy on old kernels; the default pool does not once
        // the host booted.
        Sysno::getrandom => args[2] & 2 == 0,
        Sysno::futex => super::futex::never_waits(args[1]),
        Sysno::epoll_wait => args[3] as i32 == 0,
        Sysno::epoll_pwait => args[3] as i32 == 0 && args[4] == 0,
        // O_TRUNC may cut pages out of the process's own mappings: page-table work.
        Sysno::open => args[1] & super::abi::oflag::TRUNC == 0,
        Sysno::openat => args[2] & super::abi::oflag::TRUNC == 0,
        _ => true,
    }
}

/// Whether a transfer `call` on `file` returns at once because the open file is O_NONBLOCK (a
/// socket, pipe, eventfd or timerfd of an event loop). Not a signalfd (its reads take the
/// calling thread's signals) nor a close or seek (nothing to transfer). A thread that clears
/// O_NONBLOCK while another's transfer is being served leaves that transfer waiting on the
/// server, not interruptible by the thread's signals (a stop still ends it): the one way
/// this differs from the exit path.
fn nonblocking_transfer(call: Sysno, file: &super::fd::file::OpenFile) -> bool {
    matches!(
        call,
        Sysno::read
            | Sysno::write
            | Sysno::readv
            | Sysno::writev
            | Sysno::recvfrom
            | Sysno::sendto
            | Sysno::recvmsg
            | Sysno::sendmsg
    ) && file.as_signalfd().is_none()
        && file
            .status_flags()
            .is_ok_and(|f| f & super::abi::oflag::NONBLOCK != 0)
}

/// The stub's bitmap: bit n set for each call in [`EXITLESS_CALLS`] (made once).
pub fn bitmap() -> &'static [u8; 64] {
    static BITS: std::sync::OnceLock<[u8; 64]> = std::sync::OnceLock::new();
    BITS.get_or_init(|| {
        let mut bits = [0u8; (BITMAP_CALLS / 8) as usize];
        for call in EXITLESS_CALLS {
            let n = call.id() as usize;
            if let Some(b) = bits.get_mut(n / 8) {
                *b |= 1 << (n % 8);
            }
        }
        bits
    })
}

/// One thread a channel serves: what the server runs its calls with.
struct Slot {
    sig: Arc<ThreadSig>,
    /// Its vCPU's host thread: page-table changes a served call makes are handed to it.
    host: std::thread::ThreadId,
}

/// A process's exit-less server: the threads by channel, whether it polls, its thread.
pub struct Server {
    slots: [Mutex<Option<Slot>>; EXITLESS_VCPUS as usize],
    /// Channels `0..used` may have a thread.
    used: AtomicU32,
    /// Polling (the stubs see `CH_AWAKE`).
    awake: AtomicBool,
    /// Wake and sleep happen under it, so neither undoes the other.
    turn: Mutex<()>,
    /// The server thread exists for this VM.
    started: AtomicBool,
    /// Asked to end (the VM's run is over).
    quit: AtomicBool,
    /// Where it sleeps; kicks (a stop, exit_group) unpark it as they do a vCPU thread.
    parker: Arc<Parker>,
    /// When the last exit-path call the stub could have published was taken (ns since
    /// `epoch`).
    last_exit: AtomicU64,
    epoch: Instant,
    /// No wake before this (ns since `epoch`): the stubs gave up on the server lately, so
    /// the host has no CPU to spare for it now.
    backoff_until: AtomicU64,
    /// The current back-off (ns), doubled at each give-up, cleared after good service.
    backoff: AtomicU64,
    /// Calls answered (every VM of the process).
    served: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Longest back-off after the stubs gave up on the server.
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// First back-off.
const MIN_BACKOFF: Duration = Duration::from_millis(2);

impl Default for Server {
    fn default() -> Server {
        Server {
            slots: std::array::from_fn(|_| Mutex::new(None)),
            used: AtomicU32::new(0),
            awake: AtomicBool::new(false),
            turn: Mutex::new(()),
            started: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            parker: Arc::default(),
            last_exit: AtomicU64::new(0),
            epoch: Instant::now(),
            backoff_until: AtomicU64::new(0),
            backoff: AtomicU64::new(0),
            served: AtomicU64::new(0),
            thread: Mutex::new(None),
        }
    }
}

impl Server {
    /// A server whose thread never starts: something else polls it ([`Server::poll_once`];
    /// the fuzz harness, which must stay single-threaded).
    pub fn without_thread() -> Server {
        let s = Server::default();
        s.started.store(true, Ordering::SeqCst);
        s
    }

    /// How many calls it answered.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Thread `sig` runs on vCPU `index` (on its own host thread, now): give its channel the
    /// bitmap and the current polling state.
    pub fn register(&self, machine: &Machine, index: u32, sig: &Arc<ThreadSig>) {
        let Some(ch) = machine.exitless.channel(index) else {
            return;
        };
        let Some(slot) = self.slots.get(ch as usize) else {
            return;
        };
        Exitless::set_params(&machine.mem, ch, bitmap(), spin_rounds(machine.platform));
        *locked(slot) = Some(Slot {
            sig: sig.clone(),
            host: std::thread::current().id(),
        });
        self.used.fetch_max(ch + 1, Ordering::SeqCst);
        let _turn = locked(&self.turn);
        Exitless::set_awake(&machine.mem, ch, self.awake.load(Ordering::SeqCst));
    }

    /// Thread `sig` ended: its channel serves nobody.
    pub fn unregister(&self, machine: &Machine, sig: &Arc<ThreadSig>) {
        for (ch, slot) in self.slots.iter().enumerate() {
            let mut s = locked(slot);
            if s.as_ref().is_some_and(|s| Arc::ptr_eq(&s.sig, sig)) {
                *s = None;
                Exitless::set_awake(&machine.mem, ch as u32, false);
            }
        }
    }

    /// A call taken on the exit path that the server could have answered (`nr` with
    /// arguments `args`): two within [`IDLE`] wake the server (started on first use, from
    /// this vCPU thread, so it inherits its seccomp filter). A blocking read of a pipe, which
    /// the server would give back, wakes nothing.
    pub fn exit_taken(
        self: &Arc<Self>,
        machine: &Arc<Machine>,
        process: &Arc<Process>,
        nr: u64,
        args: &[u64; 6],
    ) {
        if self.awake.load(Ordering::Relaxed) || !may_serve(process, nr & 0xffff_ffff, args) {
            return;
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        let before = self.last_exit.swap(now, Ordering::Relaxed);
        if before == 0
            || now.saturating_sub(before) > IDLE.as_nanos() as u64
            || now < self.backoff_until.load(Ordering::Relaxed)
        {
            return;
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            let (server, machine, process) = (self.clone(), machine.clone(), process.clone());
            let spawned = std::thread::Builder::new()
                .name("umon-exitless".into())
                .stack_size(512 << 10)
                .spawn(move || server.serve(&machine, &process));
            match spawned {
                Ok(h) => *locked(&self.thread) = Some(h),
                Err(e) => {
                    log::debug!("exit-less server not started: {e}");
                    return;
                }
            }
        }
        self.set_awake(machine, true);
        self.parker.unpark();
    }

    fn set_awake(&self, machine: &Machine, on: bool) {
        let _turn = locked(&self.turn);
        self.awake.store(on, Ordering::SeqCst);
        for ch in 0..self.used.load(Ordering::SeqCst) {
            let live = self
                .slots
                .get(ch as usize)
                .is_some_and(|s| locked(s).is_some());
            Exitless::set_awake(&machine.mem, ch, on && live);
        }
    }

    /// The VM's run is over (its threads ended, or an exec replaces it): the server thread
    /// ends; a next VM of the process starts its own.
    pub fn end(&self, machine: &Machine) {
        self.quit.store(true, Ordering::SeqCst);
        self.parker.unpark();
        if let Some(h) = locked(&self.thread).take() {
            let _ = h.join();
        }
        self.set_awake(machine, false);
        for slot in &self.slots {
            *locked(slot) = None;
        }
        self.used.store(0, Ordering::SeqCst);
        self.started.store(false, Ordering::SeqCst);
        self.quit.store(false, Ordering::SeqCst);
        self.last_exit.store(0, Ordering::Relaxed);
    }

    /// The server thread: poll while requests come, sleep after [`IDLE`] without one.
    fn serve(&self, machine: &Arc<Machine>, process: &Arc<Process>) {
        // Kicked with the vCPU threads at a stop or exit_group: a host call of a served
        // request ends (EINTR) and the loop sees why.
        let _kicked = machine.stop.enter(self.parker.clone());
        let mut scratch: Vec<Option<Thread>> = Vec::new();
        let mut last_work = Instant::now();
        let mut rounds = 0u32;
        let mut timeouts = machine.exitless.timeouts();
        let mut good_since = Instant::now();
        loop {
            if self.quit.load(Ordering::SeqCst)
                || machine.stop.is_requested()
                || process.exit.exiting()
            {
                break;
            }
            if !self.awake.load(Ordering::SeqCst) {
                self.parker
                    .park(Some(Instant::now() + Duration::from_millis(100)));
                last_work = Instant::now();
                continue;
            }
            if self.poll(machine, process, &mut scratch) > 0 {
                last_work = Instant::now();
                rounds = 0;
                continue;
            }
            rounds += 1;
            if rounds % 64 != 0 {
                std::hint::spin_loop();
                continue;
            }
            let seen = machine.exitless.timeouts();
            if seen != timeouts {
                // Stubs gave up waiting: this thread did not get a CPU in time. Sleep, and
                // let no wake come before a back-off that doubles while it happens again.
                timeouts = seen;
                let b = self.backoff.load(Ordering::Relaxed).saturating_mul(2);
                let b = b.clamp(MIN_BACKOFF.as_nanos() as u64, MAX_BACKOFF.as_nanos() as u64);
                self.backoff.store(b, Ordering::Relaxed);
                let now = self.epoch.elapsed().as_nanos() as u64;
                self.backoff_until.store(now + b, Ordering::Relaxed);
                good_since = Instant::now();
                self.sleep(machine, process, &mut scratch);
                continue;
            }
            if good_since.elapsed() > MAX_BACKOFF * 4 {
                self.backoff.store(0, Ordering::Relaxed);
            }
            if last_work.elapsed() > IDLE {
                self.sleep(machine, process, &mut scratch);
            }
        }
        self.set_awake(machine, false);
    }

    /// Stop polling: asleep first, then one more look, so a request published before the
    /// stubs saw the flag drop is served and none comes after it.
    fn sleep(
        &self,
        machine: &Arc<Machine>,
        process: &Arc<Process>,
        scratch: &mut Vec<Option<Thread>>,
    ) {
        self.set_awake(machine, false);
        self.poll(machine, process, scratch);
    }

    /// One look at every channel in use: serve each published request; how many there were.
    fn poll(
        &self,
        machine: &Arc<Machine>,
        process: &Arc<Process>,
        scratch: &mut Vec<Option<Thread>>,
    ) -> usize {
        let mut seen = 0;
        for ch in 0..self.used.load(Ordering::SeqCst) {
            if Exitless::state(&machine.mem, ch) == REQ {
                self.serve_one(machine, process, ch, scratch);
                seen += 1;
            }
        }
        seen
    }

    /// One look at every channel in use, as the server thread takes them, from outside that
    /// thread (the fuzz harness drives the server this way, one look at a time).
    pub fn poll_once(&self, machine: &Arc<Machine>, process: &Arc<Process>) -> usize {
        self.poll(machine, process, &mut Vec::new())
    }

    /// Claim and answer the request on channel `ch`.
    fn serve_one(
        &self,
        machine: &Arc<Machine>,
        process: &Arc<Process>,
        ch: u32,
        scratch: &mut Vec<Option<Thread>>,
    ) {
        let Some(req) = machine.exitless.claim(&machine.mem, ch) else {
            return;
        };
        let slot = self
            .slots
            .get(ch as usize)
            .and_then(|s| locked(s).as_ref().map(|s| (s.sig.clone(), s.host)));
        let answer = slot.and_then(|(sig, host)| {
            if scratch.len() <= ch as usize {
                scratch.resize_with(ch as usize + 1, || None);
            }
            let t = &mut scratch[ch as usize];
            if !t.as_ref().is_some_and(|t| Arc::ptr_eq(&t.sig, &sig)) {
                *t = Some(Thread {
                    tid: sig.tid,
                    parker: sig.parker.clone(),
                    sig: sig.clone(),
                    ..Default::default()
                });
            }
            let thread = t.as_mut()?;
            run(machine, process, thread, &req, (ch, host))
        });
        if answer.is_some() {
            self.served.fetch_add(1, Ordering::Relaxed);
        }
        machine.exitless.reply(&machine.mem, ch, answer);
    }
}

/// Run one request as thread `thread` would on the exit path: Some((result, exit first))
/// if it may run here, None to give it back.
fn run(
    machine: &Arc<Machine>,
    process: &Arc<Process>,
    thread: &mut Thread,
    req: &Request,
    // The channel is the vCPU's index (the CPU number the guest sees).
    (ch, host): (u32, std::thread::ThreadId),
) -> Option<(i64, bool)> {
    let nr = req.nr & 0xffff_ffff;
    // A signal may be deliverable: the exit path takes the call and the signal after it.
    if thread.sig.hint.load(Ordering::SeqCst) || !may_serve(process, nr, &req.args) {
        return None;
    }
    thread.sigmask = thread.sig.blocked.load(Ordering::SeqCst);
    (thread.restart, thread.saved_mask, thread.restart_block) = (None, None, None);
    let [rdi, rsi, rdx, r10, r8, r9] = req.args;
    let mut regs = kvm_bindings::kvm_regs {
        rax: req.nr,
        rdi,
        rsi,
        rdx,
        r10,
        r8,
        r9,
        rcx: req.rcx,
        r11: req.r11,
        rsp: req.rsp,
        rip: req.rcx,
        rflags: req.r11,
        ..Default::default()
    };
    let mut sregs = kvm_bindings::kvm_sregs::default();
    sregs.cs.dpl = 3;
    let mut cpu = Cpu {
        regs: &mut regs,
        sregs: &mut sregs,
        dirty: 0,
        xstate: None,
        index: ch,
    };
    let mut cx = Ctx {
        mem: &machine.mem,
        machine,
        process,
        thread,
        cpu: &mut cpu,
        served: true,
    };
    let mask_before = cx.thread.sigmask;
    let outcome = super::run_call(&mut cx);
    let ret = match outcome {
        Err(Stop::GiveBack) => {
            log::debug!("exit-less call {nr} would wait: given back");
            return None;
        }
        Ok(v) => v as i64,
        // Only a call a signal cut short restarts, and none of these waits.
        Err(Stop::Errno(e)) if super::signal::deliver::is_restart(e) => {
            -i64::from(syscalls::Errno::EINTR.into_raw())
        }
        Err(Stop::Errno(e)) => -i64::from(e.into_raw()),
        Err(Stop::Exit(status)) => {
            process.exit_group(machine, status);
            0
        }
        Err(other) => {
            let what = match other {
                Stop::Fatal(e) => e.to_string(),
                _ => "a change of thread state".into(),
            };
            log::warn!("exit-less call {nr}: {what}; the process ends");
            process.exit_group(
                machine,
                crate::ExitStatus::Signaled {
                    signal: libc::SIGKILL,
                    report: format!("umon: exit-less call {nr}: {what}"),
                },
            );
            0
        }
    };
    if cx.cpu.dirty & DIRTY_SREGS != 0 {
        log::warn!("exit-less call {nr} changed system registers: not applied");
    }
    if cx.thread.sigmask != mask_before {
        // mask_changed set the mirror; the vCPU takes it as its mask at its next exit.
        cx.thread.sig.mask_served.store(true, Ordering::SeqCst);
    }
    // Under the read lock first: most calls touch no mapping.
    let handed = process.space().has_pt_work() && process.space_mut().hand_pt_changes(host);
    let exit = handed
        // A new mask alone needs no exit (the vCPU takes it from the mirror at its next one);
        // a signal it unblocked set the hint.
        || super::signal::deliver::wanted(&cx, cx.thread.sigmask)
        || process.exit.exiting()
        || machine.stop.is_requested();
    Some((ret, exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_lists_exactly_the_served_calls() {
        let bits = bitmap();
        for n in 0..BITMAP_CALLS as usize {
            let set = bits[n / 8] & (1 << (n % 8)) != 0;
            let listed = Sysno::new(n).is_some_and(|s| EXITLESS_CALLS.contains(&s));
            assert_eq!(set, listed, "syscall {n}");
        }
        assert!(EXITLESS_CALLS
            .iter()
            .all(|c| (c.id() as u64) < BITMAP_CALLS));
    }

    #[test]
    fn every_served_call_has_a_row_in_the_syscall_table() {
        // A listed call without a row would be "served" as ENOSYS with umon's note.
        for call in EXITLESS_CALLS {
            assert!(
                super::super::table::ROWS.iter().any(|r| r.nr == *call),
                "{call} is in EXITLESS_CALLS but not in linux/table.rs"
            );
        }
    }

    #[test]
    fn calls_that_may_block_are_never_served() {
        let p = Process::default();
        for call in [Sysno::futex, Sysno::nanosleep, Sysno::mmap, Sysno::clone] {
            assert!(!may_serve(&p, call.id() as u64, &[0; 6]), "{call}");
        }
        // fd 0 of a process with its streams closed is not a file that never blocks.
        assert!(!may_serve(&p, Sysno::read.id() as u64, &[0; 6]));
        assert!(may_serve(&p, Sysno::getppid.id() as u64, &[0; 6]));
        // FUTEX_WAKE_PRIVATE wakes, FUTEX_WAIT_BITSET_PRIVATE waits.
        assert!(may_serve(
            &p,
            Sysno::futex.id() as u64,
            &[0, 129, 1, 0, 0, 0]
        ));
        assert!(!may_serve(
            &p,
            Sysno::futex.id() as u64,
            &[0, 137, 1, 0, 0, 0]
        ));
        assert!(!may_serve(
            &p,
            Sysno::getrandom.id() as u64,
            &[0, 0, 2, 0, 0, 0]
        ));
        // Opens are served (a FIFO is given back by the handler), except O_TRUNC.
        let trunc = super::super::abi::oflag::TRUNC | super::super::abi::oflag::WRONLY;
        assert!(may_serve(&p, Sysno::openat.id() as u64, &[0; 6]));
        assert!(!may_serve(
            &p,
            Sysno::openat.id() as u64,
            &[0, 0, trunc, 0, 0, 0]
        ));
        assert!(!may_serve(
            &p,
            Sysno::open.id() as u64,
            &[0, trunc, 0, 0, 0, 0]
        ));
    }
}
