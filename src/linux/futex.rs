//! futex(2) between the application's threads. The key is the word's virtual address: the
//! application is one process with one address space, so private and shared futexes coincide
//! (as gVisor keys private futexes). Waiters queue in one of `BUCKETS` buckets by key, like
//! Linux's futex_queues; the word is compared with the expected value under the bucket lock,
//! so a wake between the compare and the sleep is never lost. A waiter sleeps on its own
//! thread's [`Parker`], holding no lock: only its own vCPU waits.
//!
//! PI futexes keep Linux's word protocol (owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED) and
//! hand the lock to the first waiter on unlock, without priority boosting (the guest's threads
//! have no host scheduling classes; gVisor makes the same simplification).
use super::abi::Timespec;
use super::abi::TASK_SIZE_MAX;
use super::mm::space::Access;
use super::process::locked;
use super::{Args, Ctx, Process, Stop, Sys};
use crate::machine::hypercall::HypercallError;
use crate::machine::memory::GuestMem;
use crate::machine::memory::HostWait;
use crate::machine::stop::Parker;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use syscalls::Errno;
use umon_abi::Gpa;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_UNLOCK_PI: u64 = 7;
const FUTEX_TRYLOCK_PI: u64 = 8;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
const FUTEX_CMP_REQUEUE_PI: u64 = 12;
const FUTEX_LOCK_PI2: u64 = 13;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_CMD_MASK: u64 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
/// Any bit: what FUTEX_WAIT and FUTEX_WAKE match with.
const BITSET_MATCH_ANY: u32 = u32::MAX;

/// The owner's tid in a PI or robust futex word.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Someone waits in the kernel: unlock through FUTEX_UNLOCK_PI.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// The owner died holding it.
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;

/// Buckets of the waiter table (Linux sizes its table by CPUs; this is plenty for a VM).
const BUCKETS: usize = 256;

/// One thread waiting on a futex.
struct Waiter {
    /// The word's address; FUTEX_REQUEUE changes it (under both buckets' locks).
    key: AtomicU64,
    bitset: u32,
    tid: u32,
    /// A LOCK_PI waiter (woken only by UNLOCK_PI's hand-over, never by FUTEX_WAKE).
    pi: bool,
    /// Set (under the bucket lock) by the waker that dequeued it.
    woken: AtomicBool,
    parker: Arc<Parker>,
}

/// One locked bucket.
type Queue<'a> = MutexGuard<'a, Vec<Arc<Waiter>>>;

/// The waiters of one process.
pub struct Table {
    buckets: Box<[Mutex<Vec<Arc<Waiter>>>]>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            buckets: (0..BUCKETS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Table {
    fn index(key: u64) -> usize {
        // Fibonacci hashing of the word address (words are 4-aligned).
        ((key >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % BUCKETS
    }

    fn bucket(&self, key: u64) -> Queue<'_> {
        locked(&self.buckets[Self::index(key)])
    }

    /// Wake up to `n` non-PI waiters on `key` whose bitset meets `bitset`, from a locked bucket.
    fn wake_locked(q: &mut Vec<Arc<Waiter>>, key: u64, bitset: u32, n: u32) -> u32 {
        let mut woken = 0;
        q.retain(|w| {
            if woken >= n || w.pi || w.key.load(Ordering::Relaxed) != key || w.bitset & bitset == 0
            {
                return true;
            }
            w.woken.store(true, Ordering::Release);
            w.parker.unpark();
            woken += 1;
            false
        });
        woken
    }

    /// Wake up to `n` waiters on `key` (thread exit: CLONE_CHILD_CLEARTID, robust lists).
    pub fn wake(&self, key: u64, n: u32) -> u32 {
        Self::wake_locked(&mut self.bucket(key), key, BITSET_MATCH_ANY, n)
    }

    /// Take `w` off its queue if it is still on one; false if a waker took it first.
    fn dequeue(&self, w: &Arc<Waiter>) -> bool {
        loop {
            let key = w.key.load(Ordering::Acquire);
            let mut q = self.bucket(key);
            if w.key.load(Ordering::Acquire) != key {
                continue; // requeued meanwhile
            }
            if let Some(i) = q.iter().position(|x| Arc::ptr_eq(x, w)) {
                q.remove(i);
                return true;
            }
            return false;
        }
    }

    /// Both buckets of a requeue, locked in index order.
    fn two(&self, a: u64, b: u64) -> (Queue<'_>, Option<Queue<'_>>) {
        let (ia, ib) = (Self::index(a), Self::index(b));
        if ia == ib {
            (locked(&self.buckets[ia]), None)
        } else if ia < ib {
            let ga = locked(&self.buckets[ia]);
            (ga, Some(locked(&self.buckets[ib])))
        } else {
            let gb = locked(&self.buckets[ib]);
            (locked(&self.buckets[ia]), Some(gb))
        }
    }

    /// Whether a PI waiter other than `except` waits on `key` (locked bucket).
    fn pi_waiters(q: &[Arc<Waiter>], key: u64) -> usize {
        q.iter()
            .filter(|w| w.pi && w.key.load(Ordering::Relaxed) == key)
            .count()
    }
}

/// The guest-physical address of the futex word at `uaddr` if the page allows `access`.
fn word(cx: &Ctx<'_, '_>, uaddr: u64, access: Access) -> Result<Gpa, Errno> {
    word_in(cx.process, uaddr, access)
}

/// [`word`] in `process`'s address space.
fn word_in(process: &Process, uaddr: u64, access: Access) -> Result<Gpa, Errno> {
    let chunks = process.space().chunks(uaddr, 4, access)?;
    chunks.first().map(|c| c.0).ok_or(Errno::EFAULT)
}

/// Read the futex word atomically.
fn load(cx: &Ctx<'_, '_>, uaddr: u64) -> Result<u32, Errno> {
    load_in(cx.mem, cx.process, uaddr)
}

/// [`load`] in `process`.
fn load_in(mem: &GuestMem, process: &Process, uaddr: u64) -> Result<u32, Errno> {
    let gpa = word_in(process, uaddr, Access::Read)?;
    mem.with_atomic_u32(gpa, |a| a.load(Ordering::SeqCst))
        .map_err(|_| Errno::EFAULT)
}

/// Compare-and-exchange the futex word: Ok(previous value) whether or not it matched.
pub(super) fn cmpxchg(cx: &Ctx<'_, '_>, uaddr: u64, old: u32, new: u32) -> Result<u32, Errno> {
    cmpxchg_in(cx.mem, cx.process, uaddr, old, new)
}

/// [`cmpxchg`] in `process`.
fn cmpxchg_in(
    mem: &GuestMem,
    process: &Process,
    uaddr: u64,
    old: u32,
    new: u32,
) -> Result<u32, Errno> {
    if uaddr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let gpa = word_in(process, uaddr, Access::Write)?;
    mem.with_atomic_u32(gpa, |a| {
        match a.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(v) | Err(v) => v,
        }
    })
    .map_err(|_| Errno::EFAULT)
}

/// When a wait gives up.
#[derive(Clone, Copy)]
enum Deadline {
    Never,
    Monotonic(Instant),
    /// Absolute on CLOCK_REALTIME (since the epoch): re-read the clock at every wakeup, as the
    /// clock may be set meanwhile.
    Realtime(Duration),
}

impl Deadline {
    /// Absolute `t` on the monotonic or the real-time clock.
    fn absolute(t: Duration, realtime: bool) -> Deadline {
        if realtime {
            return Deadline::Realtime(t);
        }
        let n = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let now = Duration::new(n.tv_sec.max(0) as u64, n.tv_nsec as u32);
        Deadline::Monotonic(later(t.saturating_sub(now)))
    }

    /// None once passed; else the instant to park until.
    fn until(self) -> Option<Option<Instant>> {
        match self {
            Deadline::Never => Some(None),
            Deadline::Monotonic(d) => (Instant::now() < d).then_some(Some(d)),
            Deadline::Realtime(t) => {
                let n = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
                let now = Duration::new(n.tv_sec.max(0) as u64, n.tv_nsec as u32);
                (now < t).then(|| Some(later(t - now)))
            }
        }
    }
}

/// `d` from now; a timeout too far for the host clock is a wait of about a century.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Park the calling thread until `w` is woken (Ok), the deadline passes (ETIMEDOUT) or the
/// process or VM ends (EINTR; the run loop then ends the thread).
fn sleep(cx: &Ctx<'_, '_>, w: &Arc<Waiter>, deadline: Deadline) -> Result<(), Errno> {
    loop {
        if w.woken.load(Ordering::Acquire) {
            return Ok(());
        }
        let gone = |e| {
            if cx.process.futexes.dequeue(w) {
                Err(e)
            } else {
                Ok(()) // woken meanwhile: the wake counts
            }
        };
        if cx.interrupted() {
            return gone(Errno::EINTR);
        }
        if super::signal::deliver::signal_pending(cx) {
            // Linux: ERESTARTSYS untimed, ERESTART_RESTARTBLOCK timed (restart_syscall goes on
            // to the same end); here a timed wait is ERESTARTNOHAND: EINTR after a handler as
            // on Linux, but restarted with its whole timeout when no handler runs.
            let kind = match deadline {
                Deadline::Never => super::signal::deliver::ERESTARTSYS,
                _ => super::signal::deliver::ERESTARTNOHAND,
            };
            return gone(super::signal::deliver::restart(kind));
        }
        match deadline.until() {
            None => return gone(Errno::ETIMEDOUT),
            Some(until) => w.parker.park(until),
        }
    }
}

fn waiter(cx: &Ctx<'_, '_>, key: u64, bitset: u32, pi: bool) -> Arc<Waiter> {
    Arc::new(Waiter {
        key: AtomicU64::new(key),
        bitset,
        tid: cx.thread.tid,
        pi,
        woken: AtomicBool::new(false),
        parker: cx.thread.parker.clone(),
    })
}

/// FUTEX_WAIT(_BITSET): sleep if the word still holds `val`.
fn wait(cx: &Ctx<'_, '_>, uaddr: u64, val: u32, bitset: u32, deadline: Deadline) -> Sys {
    let w = waiter(cx, uaddr, bitset, false);
    {
        let mut q = cx.process.futexes.bucket(uaddr);
        if load(cx, uaddr)? != val {
            return Err(Errno::EAGAIN.into());
        }
        // Read after the live count: a thread ending the process marks it exiting before it
        // leaves the count, so a waiter that sees itself alone because the others are ending
        // the process leaves with them instead of reporting a deadlock.
        if matches!(deadline, Deadline::Never)
            && cx.process.live_threads() <= 1
            && !cx.process.exit.exiting()
        {
            // The only thread waits for good: no other thread can wake it and umon delivers
            // no signals from outside, so it would hang until --timeout.
            return Err(Stop::Fatal(HypercallError::Deadlock { what: "futex wait" }));
        }
        q.push(w.clone());
    }
    sleep(cx, &w, deadline)?;
    Ok(0)
}

/// Linux's get_futex_key: the address must be aligned (EINVAL) and in the user half (EFAULT);
/// a shared futex is looked up in the page tables, so its page must be mapped (EFAULT) and,
/// being anonymous memory, writable: "a RO anonymous page will never change and thus doesn't
/// make sense for futex operations" (EFAULT). A private one is just its address, not touched
/// here. (A read-only *file* mapping would be a valid shared key on Linux; umon treats it as
/// anonymous.)
fn futex_key(cx: &Ctx<'_, '_>, uaddr: u64, private: bool) -> Result<(), Errno> {
    if uaddr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    if uaddr > TASK_SIZE_MAX - 4 {
        return Err(Errno::EFAULT);
    }
    if !private {
        cx.space().chunks(uaddr, 4, Access::Write)?;
    }
    Ok(())
}

/// Whether futex operation `op` (the call's second argument) never waits: the wakes, which
/// the exit-less server may run (`linux::exitless`).
pub fn never_waits(op: u64) -> bool {
    matches!(op & FUTEX_CMD_MASK, FUTEX_WAKE | FUTEX_WAKE_BITSET) && op & FUTEX_CLOCK_REALTIME == 0
}

/// futex(2). Arguments and addresses are checked as Linux checks them, in its order.
pub fn futex(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (uaddr, op, val, timeout, uaddr2, val3) = (a.0[0], a.0[1], a.0[2], a.0[3], a.0[4], a.0[5]);
    let cmd = op & FUTEX_CMD_MASK;
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    // Linux's do_futex: only these take FUTEX_CLOCK_REALTIME; the others answer ENOSYS,
    // FUTEX_WAIT included (tests/syscall_findings).
    if realtime && ![FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2].contains(&cmd) {
        return Err(Errno::ENOSYS.into());
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let limit = if timeout != 0 {
                Some(super::time::duration(cx.read_val::<Timespec>(timeout)?)?)
            } else {
                None
            };
            if cmd == FUTEX_WAIT_BITSET && val3 as u32 == 0 {
                return Err(Errno::EINVAL.into());
            }
            futex_key(cx, uaddr, private)?;
            let deadline = match limit {
                None => Deadline::Never,
                Some(d) if cmd == FUTEX_WAIT => Deadline::Monotonic(later(d)),
                Some(t) => Deadline::absolute(t, realtime),
            };
            let bitset = if cmd == FUTEX_WAIT {
                BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if let Some(gpa) = shared_word(cx, uaddr, private) {
                return shared_wait(cx, gpa, val as u32, bitset, deadline);
            }
            wait(cx, uaddr, val as u32, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if cmd == FUTEX_WAKE_BITSET && val3 as u32 == 0 {
                return Err(Errno::EINVAL.into());
            }
            futex_key(cx, uaddr, private)?;
            let bitset = if cmd == FUTEX_WAKE {
                BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if let Some(gpa) = shared_word(cx, uaddr, private) {
                let n = at_least_one(val as u32);
                return host_wake(cx, libc::FUTEX_WAKE_BITSET, gpa, n, 0, None, bitset);
            }
            let mut q = cx.process.futexes.bucket(uaddr);
            Ok(Table::wake_locked(&mut q, uaddr, bitset, at_least_one(val as u32)).into())
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // nr_wake is val, nr_requeue the low half of the timeout argument: ints.
            if (val as i32) < 0 || (timeout as u32 as i32) < 0 {
                return Err(Errno::EINVAL.into());
            }
            futex_key(cx, uaddr, private)?;
            futex_key(cx, uaddr2, private)?;
            let cmp = (cmd == FUTEX_CMP_REQUEUE).then_some(val3 as u32);
            if let (Some(g1), Some(g2)) = (
                shared_word(cx, uaddr, private),
                shared_word(cx, uaddr2, private),
            ) {
                let op = if cmp.is_some() {
                    libc::FUTEX_CMP_REQUEUE
                } else {
                    libc::FUTEX_REQUEUE
                };
                return host_wake(
                    cx,
                    op,
                    g1,
                    val as u32,
                    timeout as u32,
                    Some(g2),
                    val3 as u32,
                );
            }
            requeue(cx, uaddr, uaddr2, val as u32, timeout as u32, cmp)
        }
        FUTEX_WAKE_OP => {
            futex_key(cx, uaddr, private)?;
            futex_key(cx, uaddr2, private)?;
            if let (Some(g1), Some(g2)) = (
                shared_word(cx, uaddr, private),
                shared_word(cx, uaddr2, private),
            ) {
                let (n1, n2) = (val as u32, timeout as u32);
                return host_wake(cx, libc::FUTEX_WAKE_OP, g1, n1, n2, Some(g2), val3 as u32);
            }
            wake_op(cx, uaddr, uaddr2, val as u32, timeout as u32, val3 as u32)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let limit = if timeout != 0 && cmd != FUTEX_TRYLOCK_PI {
                let t: Timespec = cx.read_val(timeout)?;
                Some(super::time::duration(t)?)
            } else {
                None
            };
            futex_key(cx, uaddr, private)?;
            let deadline = match limit {
                None => Deadline::Never,
                // FUTEX_LOCK_PI's timeout is absolute on CLOCK_REALTIME; LOCK_PI2 chooses.
                Some(t) => Deadline::absolute(t, cmd == FUTEX_LOCK_PI || realtime),
            };
            lock_pi(cx, uaddr, deadline, cmd == FUTEX_TRYLOCK_PI)
        }
        FUTEX_UNLOCK_PI => {
            // futex_unlock_pi reads the word (any alignment: get_user) and checks the owner
            // before it looks up the key.
            let v: u32 = cx.read_val(uaddr)?;
            if v & FUTEX_TID_MASK != cx.thread.tid {
                return Err(Errno::EPERM.into());
            }
            futex_key(cx, uaddr, private)?;
            unlock_pi(cx, uaddr)
        }
        // Used by neither glibc's nor musl's condition variables.
        FUTEX_WAIT_REQUEUE_PI | FUTEX_CMP_REQUEUE_PI => Err(Errno::ENOSYS.into()),
        _ => Err(Errno::ENOSYS.into()),
    }
}

/// The word at `uaddr` if a shared (not FUTEX_PRIVATE_FLAG) futex there is the host's: its
/// page is a file's page shared with other processes of the application (MAP_SHARED). Such
/// futexes are the host kernel's, keyed by the file page, so that waiters and wakers in
/// different monitors (forked processes) meet; the application's threads meet there too.
fn shared_word(cx: &Ctx<'_, '_>, uaddr: u64, private: bool) -> Option<Gpa> {
    if private {
        return None;
    }
    cx.space().shared_futex_word(uaddr)
}

/// FUTEX_WAIT(_BITSET) on a shared word ([`shared_word`]): one host futex wait, with no time
/// slice, until a wake, the deadline (the host's, absolute on the wait's clock, so it holds
/// however often the wait is cut short) or a kick. Every stop condition kicks the thread's
/// host thread (a host signal: EINTR) and keeps kicking until it is taken: a stop of the VM
/// (--timeout, SIGTERM to umon, a kill) and exit_group from any thread until the thread has
/// left its run loop; a signal to the thread or one it is to take for the process, and the
/// group stop of SIGSTOP & co., until the thread acknowledges its hint, which it does here
/// before it looks. So no kick is lost between a look and the wait.
///
/// A waiter a FUTEX_CMP_REQUEUE moved waits, in the host, on the other word, and a wake there
/// ends the wait (0), so the host wait is never redone while nothing calls for it: a kick
/// that finds the process ending or a signal or stop to take ends the call (EINTR, or a
/// restart that waits again on the *first* word after the handler or SIGCONT, as Linux's
/// restarted futex_wait does). Only a kick that finds nothing to do (a signal another thread
/// took first, or a kick sent just before the acknowledgement) waits again, on the first word
/// too, as Linux restarts a wait that a signal taken elsewhere interrupted. A wake in the
/// instant between the two host waits is not the waiter's (the host counts whom it woke, so
/// nothing is counted twice); if it changed the word, the second wait sees the change and
/// returns 0. No deadlock check: another process may wake it.
fn shared_wait(cx: &Ctx<'_, '_>, gpa: Gpa, val: u32, bitset: u32, deadline: Deadline) -> Sys {
    let (until, realtime) = match deadline {
        Deadline::Never => (None, false),
        Deadline::Monotonic(d) => {
            let n = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let now = Duration::new(n.tv_sec.max(0) as u64, n.tv_nsec as u32);
            (
                Some(now.saturating_add(d.saturating_duration_since(Instant::now()))),
                false,
            )
        }
        Deadline::Realtime(t) => (Some(t), true),
    };
    let mut first = true;
    loop {
        if cx.interrupted() {
            return Err(Errno::EINTR.into());
        }
        // The acknowledgement comes before the look: a signal sent from here on sets the hint
        // again and is kicked until seen.
        cx.thread.sig.hint.store(false, Ordering::SeqCst);
        if super::signal::deliver::signal_pending(cx) || cx.process.signals().stopped {
            // Linux compares the word first (EAGAIN), then sees the signal. Untimed:
            // ERESTARTSYS; timed: ERESTARTNOHAND (see [`sleep`]).
            if first && read_word(cx, gpa)? != val {
                // Still to take on the way out.
                cx.thread.sig.hint.store(true, Ordering::SeqCst);
                return Err(Errno::EAGAIN.into());
            }
            let kind = match deadline {
                Deadline::Never => super::signal::deliver::ERESTARTSYS,
                _ => super::signal::deliver::ERESTARTNOHAND,
            };
            return Err(super::signal::deliver::restart(kind).into());
        }
        match cx.mem.host_futex_wait(gpa, val, bitset, until, realtime) {
            Ok(HostWait::Woken) => return Ok(0),
            // The word differs: at the call, Linux's EAGAIN; after a kick that found nothing
            // to do, it changed meanwhile, which is what a wake follows.
            Ok(HostWait::Differs) if first => return Err(Errno::EAGAIN.into()),
            Ok(HostWait::Differs) => return Ok(0),
            Ok(HostWait::TimedOut) => return Err(Errno::ETIMEDOUT.into()),
            Ok(HostWait::Interrupted) => {}
            Err(_) => return Err(Errno::EFAULT.into()),
        }
        first = false;
    }
}

/// The word at `gpa`, read atomically.
fn read_word(cx: &Ctx<'_, '_>, gpa: Gpa) -> Result<u32, Errno> {
    cx.mem
        .with_atomic_u32(gpa, |a| a.load(Ordering::SeqCst))
        .map_err(|_| Errno::EFAULT)
}

/// A waking host futex operation on shared words (see [`shared_word`]).
fn host_wake(
    cx: &Ctx<'_, '_>,
    op: i32,
    gpa: Gpa,
    val: u32,
    val2: u32,
    gpa2: Option<Gpa>,
    val3: u32,
) -> Sys {
    cx.mem
        .host_futex_wake(op, gpa, val, val2, gpa2, val3)
        .map_err(|e| match e {
            crate::machine::memory::MemoryError::Io(io) => {
                Errno::new(io.raw_os_error().unwrap_or(libc::EFAULT)).into()
            }
            _ => Errno::EFAULT.into(),
        })
}

fn requeue(
    cx: &Ctx<'_, '_>,
    uaddr: u64,
    uaddr2: u64,
    nr_wake: u32,
    nr_requeue: u32,
    cmp: Option<u32>,
) -> Sys {
    let table = &cx.process.futexes;
    let (mut q1, mut q2) = table.two(uaddr, uaddr2);
    if let Some(expected) = cmp {
        if load(cx, uaddr)? != expected {
            return Err(Errno::EAGAIN.into());
        }
    }
    let woken = Table::wake_locked(&mut q1, uaddr, BITSET_MATCH_ANY, nr_wake);
    let mut moved = 0u32;
    let mut keep = Vec::with_capacity(q1.len());
    for w in q1.drain(..) {
        if moved < nr_requeue && !w.pi && w.key.load(Ordering::Relaxed) == uaddr {
            w.key.store(uaddr2, Ordering::Release);
            moved += 1;
            match q2.as_mut() {
                Some(q2) => q2.push(w),
                None => keep.push(w),
            }
        } else {
            keep.push(w);
        }
    }
    *q1 = keep;
    Ok(u64::from(woken + moved))
}

/// How many a wake of `nr_wake` (an int) wakes: Linux's loops count a waiter before they
/// compare (`++ret >= nr_wake`), so 0 and negative counts wake one.
fn at_least_one(nr_wake: u32) -> u32 {
    (nr_wake as i32).max(1) as u32
}

/// FUTEX_WAKE_OP: `*uaddr2 = op(*uaddr2)` atomically, wake `nr_wake` on uaddr, and if the old
/// value passes the comparison, `nr_wake2` on uaddr2 (futex_atomic_op_inuser).
fn wake_op(
    cx: &Ctx<'_, '_>,
    uaddr: u64,
    uaddr2: u64,
    nr_wake: u32,
    nr_wake2: u32,
    encoded: u32,
) -> Sys {
    let op = (encoded >> 28) & 7;
    let cmp = (encoded >> 24) & 15;
    let mut oparg = (((encoded >> 12) & 0xfff) as i32) << 20 >> 20;
    let cmparg = ((encoded & 0xfff) as i32) << 20 >> 20;
    if encoded & (8 << 28) != 0 {
        oparg = 1i32.wrapping_shl((oparg & 31) as u32);
    }
    if op > 4 {
        return Err(Errno::ENOSYS.into());
    }
    let table = &cx.process.futexes;
    let (mut q1, mut q2) = table.two(uaddr, uaddr2);
    let gpa = word(cx, uaddr2, Access::Write)?;
    let arg = oparg as u32;
    let old = cx
        .mem
        .with_atomic_u32(gpa, |a| {
            let f = |old: u32| match op {
                0 => arg,
                1 => old.wrapping_add(arg),
                2 => old | arg,
                3 => old & !arg,
                _ => old ^ arg,
            };
            match a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(f(v))) {
                Ok(v) | Err(v) => v,
            }
        })
        .map_err(|_| Errno::EFAULT)? as i32;
    let pass = match cmp {
        0 => old == cmparg,
        1 => old != cmparg,
        2 => old < cmparg,
        3 => old >= cmparg,
        4 => old <= cmparg,
        5 => old > cmparg,
        _ => return Err(Errno::ENOSYS.into()),
    };
    let mut woken = Table::wake_locked(&mut q1, uaddr, BITSET_MATCH_ANY, at_least_one(nr_wake));
    if pass {
        let q = q2.as_mut().unwrap_or(&mut q1);
        woken += Table::wake_locked(q, uaddr2, BITSET_MATCH_ANY, at_least_one(nr_wake2));
    }
    Ok(woken.into())
}

/// FUTEX_LOCK_PI / TRYLOCK_PI (kernel/futex/pi.c futex_lock_pi_atomic, without boosting).
fn lock_pi(cx: &Ctx<'_, '_>, uaddr: u64, deadline: Deadline, try_only: bool) -> Sys {
    let me = cx.thread.tid;
    let w = waiter(cx, uaddr, BITSET_MATCH_ANY, true);
    loop {
        let mut q = cx.process.futexes.bucket(uaddr);
        let v = load(cx, uaddr)?;
        let owner = v & FUTEX_TID_MASK;
        if owner == 0 {
            let mut new = me | (v & FUTEX_OWNER_DIED);
            if Table::pi_waiters(&q, uaddr) > 0 {
                new |= FUTEX_WAITERS;
            }
            if cmpxchg(cx, uaddr, v, new)? == v {
                return Ok(0);
            }
            continue;
        }
        if owner == me {
            return Err(Errno::EDEADLK.into());
        }
        if !cx.process.has_thread(owner) {
            return Err(Errno::ESRCH.into());
        }
        if try_only {
            return Err(Errno::EAGAIN.into());
        }
        if v & FUTEX_WAITERS == 0 && cmpxchg(cx, uaddr, v, v | FUTEX_WAITERS)? != v {
            continue;
        }
        q.push(w.clone());
        drop(q);
        sleep(cx, &w, deadline)?;
        return Ok(0);
    }
}

/// Hand the PI futex at `uaddr` (whose word is `v`) to its first waiter, `flags` added to the
/// new owner's word; false if none waits.
fn hand_over(
    mem: &GuestMem,
    process: &Process,
    q: &mut Vec<Arc<Waiter>>,
    uaddr: u64,
    v: u32,
    flags: u32,
) -> Result<Option<bool>, Errno> {
    let Some(i) = q
        .iter()
        .position(|w| w.pi && w.key.load(Ordering::Relaxed) == uaddr)
    else {
        return Ok(None);
    };
    // Linux's wake_futex_pi always leaves FUTEX_WAITERS set for the new owner.
    let new = q[i].tid | FUTEX_WAITERS | flags;
    if cmpxchg_in(mem, process, uaddr, v, new)? != v {
        return Ok(Some(false));
    }
    let w = q.remove(i);
    w.woken.store(true, Ordering::Release);
    w.parker.unpark();
    Ok(Some(true))
}

/// FUTEX_UNLOCK_PI: only the owner may; the lock goes to the first waiter, or is freed.
fn unlock_pi(cx: &Ctx<'_, '_>, uaddr: u64) -> Sys {
    let me = cx.thread.tid;
    loop {
        let mut q = cx.process.futexes.bucket(uaddr);
        let v = load(cx, uaddr)?;
        if v & FUTEX_TID_MASK != me {
            return Err(Errno::EPERM.into());
        }
        match hand_over(cx.mem, cx.process, &mut q, uaddr, v, 0)? {
            Some(true) => return Ok(0),
            Some(false) => continue,
            None => {
                if cmpxchg(cx, uaddr, v, 0)? == v {
                    return Ok(0);
                }
            }
        }
    }
}

/// A futex word held by dying thread `tid` (its robust list): mark it FUTEX_OWNER_DIED and wake
/// a waiter (kernel/futex/core.c handle_futex_death); a PI futex goes to its first waiter.
/// Without a syscall's context: a thread walks its list on its way out of its run loop too.
pub(super) fn owner_died(mem: &GuestMem, process: &Process, tid: u32, uaddr: u64, pi: bool) {
    for _ in 0..64 {
        let mut q = process.futexes.bucket(uaddr);
        let Ok(v) = load_in(mem, process, uaddr) else {
            return;
        };
        if v & FUTEX_TID_MASK != tid {
            return;
        }
        if pi {
            match hand_over(mem, process, &mut q, uaddr, v, FUTEX_OWNER_DIED) {
                Ok(Some(true)) | Err(_) => return,
                Ok(Some(false)) => continue,
                Ok(None) => {}
            }
        }
        let new = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match cmpxchg_in(mem, process, uaddr, v, new) {
            Ok(old) if old == v => {
                if v & FUTEX_WAITERS != 0 && !pi {
                    // A process-shared robust mutex: its waiters may be in other processes.
                    let shared = process.space().shared_futex_word(uaddr);
                    match shared {
                        Some(gpa) => {
                            let _ = mem.host_futex_wake(libc::FUTEX_WAKE, gpa, 1, 0, None, 0);
                        }
                        None => {
                            Table::wake_locked(&mut q, uaddr, BITSET_MATCH_ANY, 1);
                        }
                    }
                }
                return;
            }
            Ok(_) => continue,
            Err(_) => return,
        }
    }
}
