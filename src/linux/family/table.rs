//! The pid table every monitor of one application shares: one anonymous MAP_SHARED mapping made
//! by the first monitor (pid 1's) before anything forks, inherited by every host fork. It is
//! the kernel's pid map of the guest's pid namespace: who is alive, who is whose parent, the
//! groups and sessions, how a process ended, and the mailbox through which one monitor sends a
//! signal to another. A monitor writes its own slot and its children's (and, at exit, its
//! orphans' parent); the others only read, or set bits with atomics.
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Pids (and tids, which share the number space as on Linux) are 1 ..= MAX_PIDS - 1.
pub const MAX_PIDS: u32 = 4096;

/// What a slot holds.
pub mod state {
    /// Free for the next pid.
    pub const FREE: u32 = 0;
    /// A thread's tid (not a process).
    pub const THREAD: u32 = 1;
    /// A live process.
    pub const RUNNING: u32 = 2;
    /// A process that ended, not yet waited for.
    pub const ZOMBIE: u32 = 3;
    /// Taken by a wait that is reading it (never found by another).
    pub const REAPING: u32 = 4;
}

/// One pid's entry.
#[repr(C, align(64))]
#[derive(Default)]
pub struct Slot {
    /// See [`state`].
    pub state: AtomicU32,
    /// The monitor process serving it (host pid).
    pub host_pid: AtomicI32,
    /// Parent pid (0 for pid 1).
    pub ppid: AtomicU32,
    /// Process group.
    pub pgid: AtomicU32,
    /// Session.
    pub sid: AtomicU32,
    /// The wait status once a zombie (as wait4 writes it).
    pub wstatus: AtomicI32,
    /// The signal the parent gets at its end (clone's exit signal; 0: none).
    pub exit_signal: AtomicU32,
    /// Bumped at every event for this process's mailbox (signal, a child's end, vfork
    /// release): the futex word its mailbox and vfork waiters sleep on.
    pub events: AtomicU32,
    /// Signals other processes sent it (bit n-1 for signal n), taken by its mailbox.
    pub pending: AtomicU64,
    /// The pid of the last process that sent it a signal (si_pid).
    pub sender: AtomicU32,
    /// 1 once it exec'd or ended: a vfork parent goes on.
    pub released: AtomicU32,
    /// SIGCHLD for its end was sent (once).
    pub notified: AtomicU32,
    /// PR_SET_PDEATHSIG: the signal it gets when its parent ends (0: none).
    pub pdeathsig: AtomicU32,
}

/// Table header: the pid allocator.
#[repr(C, align(64))]
struct Header {
    /// The next pid to try.
    next: AtomicU32,
    /// Live processes (RUNNING), for RLIMIT_NPROC and the process limit.
    processes: AtomicU32,
}

/// The shared table.
pub struct PidTable {
    base: NonNull<u8>,
}

// SAFETY: the mapping holds only atomics, valid for the table's lifetime (unmapped in Drop);
// every access goes through them.
unsafe impl Send for PidTable {}
// SAFETY: as above.
unsafe impl Sync for PidTable {}

const BYTES: usize =
    std::mem::size_of::<Header>() + MAX_PIDS as usize * std::mem::size_of::<Slot>();

impl PidTable {
    /// A table with pid 1 (served by this host process) the only process, leading its own
    /// group and session.
    pub fn new() -> std::io::Result<PidTable> {
        // SAFETY: a fresh anonymous mapping, placed by the kernel; zero-filled, which is every
        // slot FREE and the allocator at 0.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                BYTES,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )
        }?;
        let base = NonNull::new(p.cast::<u8>()).ok_or(std::io::ErrorKind::Other)?;
        let t = PidTable { base };
        t.header().next.store(2, Ordering::Relaxed);
        if let Some(one) = t.slot(1) {
            let host = rustix::process::getpid().as_raw_nonzero().get();
            one.host_pid.store(host, Ordering::Relaxed);
            one.pgid.store(1, Ordering::Relaxed);
            one.sid.store(1, Ordering::Relaxed);
            one.state.store(state::RUNNING, Ordering::Release);
        }
        t.header().processes.store(1, Ordering::Relaxed);
        Ok(t)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header (zero is a valid value of its atomics) and
        // lives as long as `self`.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// The slot of `pid`, if in range.
    pub fn slot(&self, pid: u32) -> Option<&Slot> {
        if pid == 0 || pid >= MAX_PIDS {
            return None;
        }
        let at = std::mem::size_of::<Header>() + pid as usize * std::mem::size_of::<Slot>();
        // SAFETY: in bounds of the mapping (pid < MAX_PIDS).
        let p = unsafe { self.base.as_ptr().add(at) }.cast::<Slot>();
        // SAFETY: aligned (Header and Slot are 64-byte multiples and mmap returns a page),
        // mapped as long as `self`, and all-zero is a valid Slot.
        Some(unsafe { &*p })
    }

    /// A free pid, now in state `what` (THREAD or RUNNING), or None if every one is taken.
    pub fn alloc(&self, what: u32) -> Option<u32> {
        let span = MAX_PIDS - 2;
        for _ in 0..span {
            let n = self.header().next.fetch_add(1, Ordering::Relaxed);
            let pid = 2 + (n.wrapping_sub(2) % span);
            let slot = self.slot(pid)?;
            if slot
                .state
                .compare_exchange(state::FREE, what, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                if what == state::RUNNING {
                    self.header().processes.fetch_add(1, Ordering::Relaxed);
                }
                for word in [&slot.released, &slot.notified, &slot.pdeathsig] {
                    word.store(0, Ordering::Relaxed);
                }
                slot.pending.store(0, Ordering::Relaxed);
                slot.wstatus.store(0, Ordering::Relaxed);
                return Some(pid);
            }
        }
        None
    }

    /// Give `pid` back (a thread that ended, a zombie reaped, a fork that failed: a process
    /// that never ran leaves the count of live ones).
    pub fn free(&self, pid: u32) {
        if let Some(slot) = self.slot(pid) {
            slot.host_pid.store(0, Ordering::Relaxed);
            if slot.state.swap(state::FREE, Ordering::AcqRel) == state::RUNNING {
                self.header().processes.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// A process ended (RUNNING → ZOMBIE with `wstatus`).
    pub fn ended(&self, pid: u32, wstatus: i32) {
        if let Some(slot) = self.slot(pid) {
            slot.wstatus.store(wstatus, Ordering::Relaxed);
            slot.released.store(1, Ordering::Relaxed);
            if slot
                .state
                .compare_exchange(
                    state::RUNNING,
                    state::ZOMBIE,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.header().processes.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Live processes.
    pub fn processes(&self) -> u32 {
        self.header().processes.load(Ordering::Relaxed)
    }

    /// Every pid in use with its slot.
    pub fn each(&self) -> impl Iterator<Item = (u32, &Slot)> {
        (1..MAX_PIDS).filter_map(move |pid| {
            let s = self.slot(pid)?;
            (s.state.load(Ordering::Acquire) != state::FREE).then_some((pid, s))
        })
    }

    /// Post signal `sig` from `from` to process `pid`'s mailbox.
    pub fn post(&self, pid: u32, sig: u32, from: u32) {
        let Some(slot) = self.slot(pid) else {
            return;
        };
        slot.sender.store(from, Ordering::Relaxed);
        if (1..=64).contains(&sig) {
            slot.pending.fetch_or(1 << (sig - 1), Ordering::AcqRel);
        }
        self.poke(pid);
    }

    /// Wake what waits on `pid`'s events (its mailbox, a vfork parent).
    pub fn poke(&self, pid: u32) {
        if let Some(slot) = self.slot(pid) {
            slot.events.fetch_add(1, Ordering::AcqRel);
            futex_wake(&slot.events);
        }
    }
}

impl Drop for PidTable {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by nothing once the table is dropped.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), BYTES) };
    }
}

/// Wake every waiter on `word` in any process (a shared futex: no FUTEX_PRIVATE_FLAG).
pub fn futex_wake(word: &AtomicU32) {
    let _ =
        rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
}

/// Sleep while `word` is `seen`, at most `limit` (spurious wake-ups and EINTR return early).
pub fn futex_wait(word: &AtomicU32, seen: u32, limit: std::time::Duration) {
    let ts = rustix::time::Timespec {
        tv_sec: limit.as_secs() as i64,
        tv_nsec: i64::from(limit.subsec_nanos()),
    };
    let _ =
        rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), seen, Some(&ts));
}
