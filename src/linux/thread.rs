//! One thread of the application: what Linux keeps per task rather than per process. Owned by
//! the host thread that runs its vCPU, so handlers change it through `&mut` with no lock.
//! A field added here is per thread; say in the clone path how a new thread gets it.
use super::abi::{SigAltStack, SigInfo};
use super::signal::queue::SigQueue;
use crate::machine::stop::{kick_signal, KickTarget, Parker};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The first thread's tid, which is also the process's pid: the application is the first and
/// only process of its machine.
pub const FIRST_TID: u32 = 1;

/// Per-thread state.
#[derive(Clone, Debug, Default)]
pub struct Thread {
    /// Thread id.
    pub tid: u32,
    /// The blocked-signal mask.
    pub sigmask: u64,
    /// The alternate signal stack.
    pub altstack: Option<SigAltStack>,
    /// set_tid_address: where to write 0 (and wake) when the thread ends.
    pub clear_child_tid: u64,
    /// set_robust_list: the list head and its length.
    pub robust_list: (u64, u64),
    /// Where this thread waits (futex, sleeps); kicks and wakers unpark it. A new thread gets
    /// its own.
    pub parker: Arc<Parker>,
    /// Signals forced on this thread (faults, a frame that could not be written): delivered
    /// before anything queued, at the next delivery point. See `signal::force`.
    pub due: VecDeque<SigInfo>,
    /// What the last fault left for signal frames (trap number, error code, CR2); a new
    /// thread starts with none.
    pub last_fault: super::fault::FaultRecord,
    /// What other threads reach of this one to send it signals: its private queue, a mirror
    /// of its mask, the "something may be deliverable" hint and the way to kick it.
    pub sig: Arc<ThreadSig>,
    /// The syscall just interrupted by a signal (its restart kind as an ERESTART* errno, and
    /// its number), decided at the delivery that follows it.
    pub restart: Option<(i32, u64)>,
    /// The mask rt_sigsuspend replaced, restored by the handler's frame (or at once if no
    /// handler runs).
    pub saved_mask: Option<u64>,
    /// What restart_syscall continues (ERESTART_RESTARTBLOCK).
    pub restart_block: Option<RestartBlock>,
    /// exit(2)'s status: the process's if this thread is the last to end.
    pub exit_code: i32,
    /// A forked child's first thread: MADV_DONTFORK/WIPEONFORK memory is dealt with, and the
    /// page tables follow, before its first instruction.
    pub forked: bool,
    /// What the batch it is applying took away: the other vCPUs flush it before the batch
    /// counts as applied (`mm::batch_applied`).
    pub shootdown: Option<crate::machine::paging::Flush>,
}

impl Thread {
    /// The thread a process starts with.
    pub fn first() -> Thread {
        Thread::main(FIRST_TID, 0)
    }

    /// The main thread of process `pid` with the signal mask `sigmask` (a new image's).
    pub fn main(pid: u32, sigmask: u64) -> Thread {
        let parker = Arc::new(Parker::default());
        let sig = Arc::new(ThreadSig::new(pid, parker.clone()));
        sig.blocked.store(sigmask, Ordering::SeqCst);
        Thread {
            tid: pid,
            sigmask,
            sig,
            parker,
            ..Default::default()
        }
    }
}

/// What restart_syscall(2) continues after a signal without a handler cut a call short.
#[derive(Clone, Copy, Debug)]
pub enum RestartBlock {
    /// nanosleep / relative clock_nanosleep: sleep on to the same end, the remaining time
    /// written to `rem` (0: none) if cut short again.
    Sleep {
        /// When the sleep ends.
        until: std::time::Instant,
        /// Where the remaining time goes.
        rem: u64,
    },
}

/// The host thread behind a guest thread, for kicks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Host {
    /// Its run loop has not run yet: a kick only unparks (the first entry checks anyway).
    #[default]
    NotStarted,
    /// Running its vCPU on this host thread.
    Running(libc::pthread_t),
    /// Gone: nothing to kick.
    Gone,
}

/// The part of a thread other host threads (other vCPUs, timers, signal forwarders) reach
/// through the thread table to send it a signal (Linux's task_struct `pending`, `blocked`,
/// TIF_SIGPENDING and the kick of `signal_wake_up`).
#[derive(Debug, Default)]
pub struct ThreadSig {
    /// Its tid.
    pub tid: u32,
    /// Signals sent to this thread only (tgkill, faults).
    pub private: Mutex<SigQueue>,
    /// A mirror of `Thread::sigmask` for senders choosing a thread; the owner's `sigmask` is
    /// the truth and is copied here whenever it changes, except after a call the exit-less
    /// server ran changed it (see `mask_served`).
    pub blocked: AtomicU64,
    /// The exit-less server changed the mask (rt_sigprocmask): `blocked` is the truth until
    /// the owner takes it back at its next exit.
    pub mask_served: AtomicBool,
    /// Set by a sender that queued a signal this thread may take; cleared by the thread when
    /// it looks (its acknowledgement: the kicker stops kicking).
    pub hint: AtomicBool,
    /// Where it parks in waits.
    pub parker: Arc<Parker>,
    /// The host thread id of its vCPU thread once started (0 before): its CPU-time clock.
    pub host_tid: AtomicI32,
    host: Mutex<Host>,
    /// Its vCPU may be running application code (false while the monitor serves an exit).
    pub tlb_in_guest: AtomicBool,
    /// The `Machine::tlb_gen` its vCPU last flushed at (0: never).
    pub tlb_seen: AtomicU64,
}

impl ThreadSig {
    /// The shared half of thread `tid`, which parks on `parker`.
    pub fn new(tid: u32, parker: Arc<Parker>) -> ThreadSig {
        ThreadSig {
            tid,
            parker,
            ..Default::default()
        }
    }

    /// Called on the host thread that runs this thread's vCPU, before its first entry.
    pub fn started(&self) {
        let mut h = super::process::locked(&self.host);
        if *h == Host::NotStarted {
            *h = Host::Running(crate::machine::host::current_thread());
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            self.host_tid.store(tid, Ordering::SeqCst);
        }
    }

    /// The thread's run loop ended: never signal its host thread again.
    pub fn gone(&self) {
        *super::process::locked(&self.host) = Host::Gone;
    }

    /// Whether the caller is this thread's own host thread (a signal to itself needs no kick).
    pub fn is_current(&self) -> bool {
        *super::process::locked(&self.host) == Host::Running(crate::machine::host::current_thread())
    }

    /// Whether `sig`'s bit is set in the mirrored mask.
    pub fn blocks(&self, bit: u64) -> bool {
        self.blocked.load(Ordering::SeqCst) & bit != 0
    }
}

impl ThreadSig {
    /// Make its vCPU leave the guest (a TLB shootdown): signal its host thread, whatever it
    /// has acknowledged.
    pub fn kick_vcpu(&self) {
        let h = super::process::locked(&self.host);
        if let Host::Running(t) = *h {
            if t != crate::machine::host::current_thread() {
                let _ = crate::machine::host::signal_thread(t, kick_signal());
            }
        }
    }
}

impl KickTarget for ThreadSig {
    fn kick(&self) -> bool {
        if !self.hint.load(Ordering::SeqCst) {
            return false;
        }
        // Under the lock: `gone` waits for it, so the host thread is alive while signalled.
        let h = super::process::locked(&self.host);
        match *h {
            Host::Gone => return false,
            Host::Running(t) if t != crate::machine::host::current_thread() => {
                let _ = crate::machine::host::signal_thread(t, kick_signal());
            }
            _ => {}
        }
        drop(h);
        self.parker.unpark();
        true
    }
}
