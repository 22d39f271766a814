//! Timers: alarm, setitimer/getitimer and the POSIX timers (timer_create and friends), and
//! the CPU-time clocks (pthread_getcpuclockid's encoded ids), as Linux's kernel/time/itimer.c,
//! posix-timers.c and posix-cpu-timers.c behave.
//!
//! One host thread per process ("umon-timer") fires them: spawned lazily by the first call
//! that arms a timer, from a vCPU thread (so it inherits the monitor's seccomp filter: it only
//! waits on a condition variable, reads clocks and sends signals, which kick vCPU threads with
//! tgkill). It waits for the nearest deadline, at least every `IDLE` to notice the end of the
//! VM or of the process, and ends when nothing is armed (the next arm spawns it again), so it
//! never outlives the VM for long nor holds up `--timeout`: nobody waits for it.
//!
//! Approximations, documented: the CPU-time clocks are the host's CPU time of the vCPU threads
//! (a thread clock) and of the whole umon process (the process clock, ITIMER_VIRTUAL and
//! ITIMER_PROF, which are the same clock here: user and system time are not told apart), so
//! they include the monitor's work for the guest; CPU-time timers are polled every `CPU_POLL`
//! at most. Timers on the wall clocks keep their deadline on their clock, so an absolute
//! CLOCK_REALTIME timer follows a step of the host's clock at its next wake-up. ITIMER_REAL is
//! re-armed at expiry (Linux re-arms it when SIGALRM is dequeued; with the signal coalesced
//! the count the application sees is the same). A periodic timer never wakes more often than
//! every `MIN_REARM`: the expiries in between count as overruns.
use super::abi::{SigInfo, Timespec, Timeval, SI_KERNEL};
use super::process::locked;
use super::signal::deliver;
use super::signal::queue::{SigQueue, SIGRTMIN};
use super::{Args, Ctx, Process, Sys};
use crate::machine::stop::KillHandle;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;
use syscalls::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The most POSIX timers a process has at once (EAGAIN beyond): Linux is limited by memory
/// only; the monitor's memory is bounded here.
pub const MAX_TIMERS: usize = 1 << 16;
/// The most timers one round of the timer thread fires (each may look through a signal queue
/// under the timer lock): the others wait for the next round.
const FIRE_BUDGET: usize = 256;
/// The most queued siginfos one round looks through (finding timers' queued signals).
const WORK_BUDGET: usize = 1 << 16;
/// The shortest wait of the timer thread between two wake-ups.
const MIN_REARM: Duration = Duration::from_micros(10);
/// The longest wait of the timer thread: how soon it sees that the VM or process ended.
const IDLE: Duration = Duration::from_millis(20);
/// How often a CPU-time deadline is looked at (a CPU clock cannot be waited for).
const CPU_POLL: Duration = Duration::from_millis(2);
/// The largest overrun count reported (DELAYTIMER_MAX).
pub(crate) const DELAYTIMER_MAX: i64 = i32::MAX as i64;
/// si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;

/// sigev_notify values.
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
/// timer_settime flags.
const TIMER_ABSTIME: u64 = 1;

/// setitimer's `which`.
const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

/// Clock ids (uapi/linux/time.h).
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CLOCK_TAI: i32 = 11;
/// A CPU clock id's "per thread" bit and its `which` field (PROF, VIRT, SCHED; 3 is invalid).
const CPUCLOCK_PERTHREAD: i32 = 4;
const CPUCLOCK_WHICH: i32 = 3;
const CPUCLOCK_SCHED: i32 = 2;

/// struct sigevent (64 bytes): the fields the kernel reads.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [u32; 11],
}

/// struct itimerspec.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct ItimerSpec {
    interval: Timespec,
    value: Timespec,
}

/// struct itimerval.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct ItimerVal {
    interval: Timeval,
    value: Timeval,
}

/// The clock a timer runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Clock {
    Real,
    Mono,
    Boot,
    Tai,
    /// A host CPU-time clock (a vCPU thread's or the umon process's), by its host id.
    Cpu(libc::clockid_t),
}

/// A Duration from a clock reading.
fn since_epoch(t: rustix::time::Timespec) -> Duration {
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Clock {
    /// The time on it (None: it went away, the thread of a thread clock ended).
    fn now(self) -> Option<Duration> {
        use rustix::time::{clock_gettime, clock_gettime_dynamic, ClockId, DynamicClockId};
        Some(since_epoch(match self {
            Clock::Real => clock_gettime(ClockId::Realtime),
            Clock::Mono => clock_gettime(ClockId::Monotonic),
            Clock::Boot => clock_gettime_dynamic(DynamicClockId::Boottime).ok()?,
            Clock::Tai => clock_gettime_dynamic(DynamicClockId::Tai).ok()?,
            Clock::Cpu(id) => return host_cpu_clock(id, false),
        }))
    }

    fn is_cpu(self) -> bool {
        matches!(self, Clock::Cpu(_))
    }
}

/// Read (or with `res`, the resolution of) host clock `id`, which may be an encoded CPU
/// clock no rustix call takes.
fn host_cpu_clock(id: libc::clockid_t, res: bool) -> Option<Duration> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let r = if res {
        // SAFETY: `t` is a valid, writable timespec for the call's duration; the kernel
        // checks the id (EINVAL for a thread that ended) and writes nothing else.
        unsafe { libc::clock_getres(id, &mut t) }
    } else {
        // SAFETY: as above.
        unsafe { libc::clock_gettime(id, &mut t) }
    };
    (r == 0).then(|| {
        Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    })
}

/// The host CPU clock of the host thread `host_tid` (a vCPU thread of this monitor) with the
/// guest's `which` (PROF, VIRT or SCHED).
fn host_thread_clock(host_tid: i32, which: i32) -> libc::clockid_t {
    ((!host_tid) << 3) | CPUCLOCK_PERTHREAD | which
}

/// The host CPU clock of the whole umon process with `which`.
fn host_process_clock(which: i32) -> libc::clockid_t {
    ((!0) << 3) | which
}

/// The host thread id of guest thread `tid` (the caller's own at no cost).
fn host_tid(cx: &Ctx<'_, '_>, tid: u32) -> Option<i32> {
    if tid == cx.thread.tid {
        return Some(rustix::thread::gettid().as_raw_nonzero().get());
    }
    let t = cx.process.thread_sig(tid)?;
    let h = t.host_tid.load(Ordering::SeqCst);
    (h != 0).then_some(h)
}

/// A guest CPU clock id (negative: pthread_getcpuclockid / clock_getcpuclockid encodings, or
/// CLOCK_PROCESS_CPUTIME_ID / CLOCK_THREAD_CPUTIME_ID) as the host clock that approximates it
/// (EINVAL as Linux's `pid_for_clock` for a pid or tid outside the process). `gettime`: the
/// caller's tid names its process too (clock_gettime only, as Linux).
fn cpu_clock(cx: &Ctx<'_, '_>, id: i32, gettime: bool) -> Result<Clock, Errno> {
    match id {
        CLOCK_PROCESS_CPUTIME_ID => return Ok(Clock::Cpu(host_process_clock(CPUCLOCK_SCHED))),
        CLOCK_THREAD_CPUTIME_ID => {
            let h = host_tid(cx, cx.thread.tid).ok_or(Errno::EINVAL)?;
            return Ok(Clock::Cpu(host_thread_clock(h, CPUCLOCK_SCHED)));
        }
        _ => {}
    }
    let which = id & CPUCLOCK_WHICH;
    if id >= 0 || which == CPUCLOCK_WHICH {
        return Err(Errno::EINVAL);
    }
    let pid = !(id >> 3);
    if id & CPUCLOCK_PERTHREAD != 0 {
        let tid = if pid == 0 { cx.thread.tid } else { pid as u32 };
        let h = host_tid(cx, tid).ok_or(Errno::EINVAL)?;
        return Ok(Clock::Cpu(host_thread_clock(h, which)));
    }
    let ours =
        pid == 0 || pid as u32 == cx.process.tgid || (gettime && pid as u32 == cx.thread.tid);
    if !ours {
        return Err(Errno::EINVAL);
    }
    Ok(Clock::Cpu(host_process_clock(which)))
}

/// clock_gettime / clock_getres on a CPU clock (`res`: the resolution), for `linux::time`.
pub(super) fn cpu_clock_read(cx: &Ctx<'_, '_>, id: i32, res: bool) -> Result<Timespec, Errno> {
    let Clock::Cpu(host) = cpu_clock(cx, id, true)? else {
        return Err(Errno::EINVAL);
    };
    let t = host_cpu_clock(host, res).ok_or(Errno::EINVAL)?;
    Ok(timespec(t))
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        sec: d.as_secs() as i64,
        nsec: i64::from(d.subsec_nanos()),
    }
}

fn timeval(d: Duration) -> Timeval {
    Timeval {
        sec: d.as_secs() as i64,
        usec: i64::from(d.subsec_micros()),
    }
}

/// KTIME_MAX: Linux keeps timer values in signed 64-bit nanoseconds and saturates there
/// (`timespec64_to_ktime`, `ktime_add_safe`), so a longer setting reads back as about 292 years.
const KTIME_MAX: Duration = Duration::from_nanos(i64::MAX as u64);

/// A valid timespec (`timespec64_valid`) as a Duration, saturated at [`KTIME_MAX`].
fn from_timespec(t: Timespec) -> Result<Duration, Errno> {
    Ok(super::time::duration(t)?.min(KTIME_MAX))
}

/// A valid timeval (`timeval_valid`) as a Duration, saturated at [`KTIME_MAX`].
fn from_timeval(t: Timeval) -> Result<Duration, Errno> {
    if t.sec < 0 || !(0..1_000_000).contains(&t.usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(t.sec as u64, t.usec as u32 * 1000).min(KTIME_MAX))
}

/// Which timer: a POSIX timer by id, or one of the three itimers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Posix(i32),
    Itimer(u64),
}

/// Where a timer's signal goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// SIGEV_NONE: nowhere.
    None,
    /// The process (SIGEV_SIGNAL, and the itimers).
    Process,
    /// One thread (SIGEV_THREAD_ID).
    Thread(u32),
}

/// One timer.
#[derive(Debug)]
struct Timer {
    clock: Clock,
    target: Target,
    signo: i32,
    /// sigev_value.
    value: u64,
    /// The next expiry on `clock`; None: disarmed.
    deadline: Option<Duration>,
    /// The period (zero: one-shot).
    interval: Duration,
    /// Expiries folded into the signal still queued (POSIX timers).
    overrun: i64,
    /// timer_getoverrun: the overrun of the last signal delivered.
    overrun_last: i64,
    /// A signal of this timer was queued and may still be.
    queued: bool,
    /// Its latest arming (see `State::heap`).
    gen: u64,
}

impl Timer {
    fn new(clock: Clock, target: Target, signo: i32, value: u64) -> Timer {
        Timer {
            clock,
            target,
            signo,
            value,
            deadline: None,
            interval: Duration::ZERO,
            overrun: 0,
            overrun_last: 0,
            queued: false,
            gen: 0,
        }
    }

    /// What is left until the next expiry (zero: disarmed), `now` on its clock; a periodic
    /// timer whose expiry passed is forwarded (as Linux's `common_timer_get`).
    fn remaining(&self, now: Duration) -> Duration {
        let Some(mut at) = self.deadline else {
            return Duration::ZERO;
        };
        if at <= now && !self.interval.is_zero() {
            at = forward(at, now, self.interval);
        }
        at.saturating_sub(now)
    }
}

/// How many whole `interval`s fit in `late`, plus one (the expiry itself), as a u32 for
/// Duration arithmetic (capped: a count past u32::MAX only matters to the overrun cap).
fn periods(late: Duration, interval: Duration) -> u32 {
    let n = late.as_nanos() / interval.as_nanos().max(1) + 1;
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The first expiry after `now` of a timer that expired at `at` and repeats every `interval`
/// (Duration::MAX past the clock's range).
fn forward(at: Duration, now: Duration, interval: Duration) -> Duration {
    interval
        .checked_mul(periods(now.saturating_sub(at), interval))
        .and_then(|d| at.checked_add(d))
        .unwrap_or(Duration::MAX)
}

/// The process's timers.
#[derive(Default)]
struct State {
    timers: HashMap<Key, Timer>,
    /// When the thread looks at each armed timer with a signal to send: its wake-up time on
    /// CLOCK_MONOTONIC, the timer and the arming it belongs to (entries of an earlier arming,
    /// or of a deleted timer, are skipped when they come up).
    heap: BinaryHeap<Reverse<(Duration, Key, u64)>>,
    /// The number of the latest arming (any timer), for `heap`'s entries.
    gen: u64,
    /// The next POSIX timer id to try (Linux's `next_posix_timer_id`).
    next_id: i32,
    /// How many POSIX timers exist.
    posix: usize,
    /// The timer thread runs.
    running: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The timers of one process (a field of `Process`).
#[derive(Default)]
pub struct Timers {
    shared: Arc<Shared>,
}

impl Timers {
    fn state(&self) -> MutexGuard<'_, State> {
        locked(&self.shared.state)
    }
}

/// The siginfo `t` (key `key`) sends with overrun `overrun`.
fn info_of(key: Key, t: &Timer, overrun: i64) -> SigInfo {
    match key {
        Key::Itimer(_) => SigInfo {
            signo: t.signo,
            code: SI_KERNEL,
            ..Default::default()
        },
        Key::Posix(id) => {
            let mut i = SigInfo {
                signo: t.signo,
                code: SI_TIMER,
                ..Default::default()
            };
            i.fields[0] =
                u64::from(id as u32) | (u64::from(overrun.min(DELAYTIMER_MAX) as u32) << 32);
            i.fields[1] = t.value;
            i
        }
    }
}

/// Whether `info` is the signal of POSIX timer `id`.
fn is_of(id: i32, info: &SigInfo) -> bool {
    info.code == SI_TIMER && info.fields[0] as u32 == id as u32
}

/// Run `f` on the queue `target` names (None: the thread is gone).
fn with_queue<R>(
    process: &Process,
    target: Target,
    f: impl FnOnce(&mut SigQueue) -> R,
) -> Option<R> {
    match target {
        Target::None => None,
        Target::Process => Some(f(&mut process.signals().shared)),
        Target::Thread(tid) => {
            let t = process.thread_sig(tid)?;
            let mut q = locked(&t.private);
            Some(f(&mut q))
        }
    }
}

/// POSIX timer `id`'s signal still queued: add `more` to its si_overrun in place (Linux's
/// `si_overrun++` on the timer's own sigqueue); false if it is no longer queued.
fn fold_overrun(process: &Process, id: i32, t: &Timer, more: i64, work: &Cell<usize>) -> bool {
    work.set(work.get() + 1);
    with_queue(process, t.target, |q| q.fold_timer(id as u32, more)) == Some(true)
}

/// Whether POSIX timer `id`'s signal is still queued; if not, its overrun becomes the last
/// delivered one's.
fn settle(process: &Process, id: i32, t: &mut Timer) {
    if !t.queued {
        return;
    }
    let still = with_queue(process, t.target, |q| q.timer_queued(id as u32));
    if still != Some(true) {
        t.queued = false;
        t.overrun_last = t.overrun;
    }
}

/// Drop POSIX timer `id`'s queued signal (timer_delete).
fn drop_queued(process: &Process, id: i32, t: &Timer) {
    let removed = with_queue(process, t.target, |q| q.remove(|i| is_of(id, i))).flatten();
    if removed.is_some_and(|i| i.signo as u64 >= SIGRTMIN) {
        process.sig_queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Timer `key` expired `n` times (n ≥ 1): send its signal, or fold the expiries into the one
/// still queued.
fn fire(
    process: &Process,
    kicker: &KillHandle,
    key: Key,
    t: &mut Timer,
    n: u32,
    work: &Cell<usize>,
) {
    let n = i64::from(n);
    if let Key::Posix(id) = key {
        if t.queued && fold_overrun(process, id, t, n, work) {
            t.overrun = (t.overrun + n).min(DELAYTIMER_MAX);
            return;
        }
        if t.queued {
            t.overrun_last = t.overrun;
        }
    }
    t.overrun = n - 1;
    let info = info_of(key, t, t.overrun);
    let sent = match t.target {
        Target::None => Err(Errno::EINVAL),
        Target::Process => deliver::send_to_process(process, kicker, info),
        Target::Thread(tid) => deliver::send_to_thread(process, kicker, tid, info),
    };
    t.queued = sent.is_ok() && matches!(key, Key::Posix(_));
}

/// When the thread should look at timer `t` next, on CLOCK_MONOTONIC (`mono` now): at its
/// deadline for the wall clocks (looked at again then, in case the clock was stepped), within
/// `CPU_POLL` for a CPU clock; never sooner than `MIN_REARM` from now.
fn wake_at(t: &Timer, mono: Duration) -> Option<Duration> {
    let left = t.deadline?.saturating_sub(t.clock.now()?);
    let left = if t.clock.is_cpu() {
        left.min(CPU_POLL)
    } else {
        left
    };
    Some(mono.saturating_add(left.max(MIN_REARM)))
}

/// Put timer `key` (just armed or fired) on the thread's heap; a heap grown with stale entries
/// is rebuilt first.
fn schedule(st: &mut State, key: Key, mono: Duration) {
    let Some(t) = st.timers.get(&key) else { return };
    let Some(at) = wake_at(t, mono) else { return };
    let gen = t.gen;
    if st.heap.len() > 2 * st.timers.len() + 1024 {
        let timers = &st.timers;
        st.heap
            .retain(|Reverse((_, k, g))| timers.get(k).is_some_and(|t| t.gen == *g));
    }
    st.heap.push(Reverse((at, key, gen)));
}

/// The timer thread: fire what is due, sleep until the next wake-up.
fn run(shared: Arc<Shared>, process: Weak<Process>, kicker: KillHandle) {
    let mut st = locked(&shared.state);
    loop {
        let Some(p) = process.upgrade() else { break };
        if kicker.is_requested() || p.exit.exiting() || st.heap.is_empty() {
            break;
        }
        let mono = Clock::Mono.now().unwrap_or_default();
        let mut budget = FIRE_BUDGET;
        let work = Cell::new(0);
        while budget > 0 && work.get() < WORK_BUDGET {
            let Some(&Reverse((at, key, gen))) = st.heap.peek() else {
                break;
            };
            if at > mono {
                break;
            }
            st.heap.pop();
            let Some(t) = st.timers.get_mut(&key).filter(|t| t.gen == gen) else {
                continue;
            };
            let (Some(now), Some(at)) = (t.clock.now(), t.deadline) else {
                t.deadline = None;
                continue;
            };
            if now >= at {
                budget -= 1;
                let n = if t.interval.is_zero() {
                    t.deadline = None;
                    1
                } else {
                    t.deadline = Some(forward(at, now, t.interval));
                    periods(now - at, t.interval)
                };
                fire(&p, &kicker, key, t, n, &work);
            }
            schedule(&mut st, key, mono);
        }
        let next = st
            .heap
            .peek()
            .map_or(mono + IDLE, |Reverse((at, _, _))| *at);
        drop(p);
        st = shared
            .changed
            .wait_timeout(st, next.saturating_sub(mono).clamp(MIN_REARM, IDLE))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    st.running = false;
}

/// Arm `key` (already in the table) in the thread's watch list, spawning the thread if it is
/// not running (EAGAIN: no thread to spare).
fn watch(cx: &Ctx<'_, '_>, st: &mut State, key: Key) -> Result<(), Errno> {
    schedule(st, key, Clock::Mono.now().unwrap_or_default());
    let timers = &cx.process.timers;
    if !st.running {
        let shared = timers.shared.clone();
        let process = Arc::downgrade(cx.process);
        let kicker = cx.machine.stop.clone();
        std::thread::Builder::new()
            .name("umon-timer".into())
            .stack_size(128 << 10)
            .spawn(move || run(shared, process, kicker))
            .map_err(|_| Errno::EAGAIN)?;
        st.running = true;
    }
    timers.shared.changed.notify_one();
    Ok(())
}

/// Set timer `key`'s expiry to `value` from now (or at `value` on its clock when `abs`),
/// repeating every `interval`; a zero value disarms it.
fn arm(
    cx: &Ctx<'_, '_>,
    st: &mut State,
    key: Key,
    value: Duration,
    interval: Duration,
    abs: bool,
) -> Result<(), Errno> {
    st.gen += 1;
    let t = st.timers.get_mut(&key).ok_or(Errno::EINVAL)?;
    t.gen = st.gen;
    t.interval = interval;
    t.overrun_last = 0;
    if value.is_zero() {
        t.deadline = None;
        // Linux keeps the period of a disarmed ITIMER_VIRTUAL or ITIMER_PROF (set_cpu_itimer:
        // getitimer shows it) but clears ITIMER_REAL's and every POSIX timer's.
        if !matches!(key, Key::Itimer(ITIMER_VIRTUAL | ITIMER_PROF)) {
            t.interval = Duration::ZERO;
        }
        return Ok(());
    }
    let now = t.clock.now().ok_or(Errno::EINVAL)?;
    t.deadline = Some(if abs {
        value
    } else {
        now.saturating_add(value).min(KTIME_MAX)
    });
    if t.target == Target::None {
        return Ok(());
    }
    watch(cx, st, key)
}

/// A timer's current setting: its period and what is left.
fn setting(t: &Timer) -> (Duration, Duration) {
    let left = t.clock.now().map_or(Duration::ZERO, |now| t.remaining(now));
    (t.interval, left)
}

// ---- itimers and alarm ----

/// The signal and clock of itimer `which` (EINVAL for another).
fn itimer(which: u64) -> Result<(i32, Clock), Errno> {
    let cpu = Clock::Cpu(host_process_clock(CPUCLOCK_SCHED));
    match which {
        ITIMER_REAL => Ok((libc::SIGALRM, Clock::Mono)),
        ITIMER_VIRTUAL => Ok((libc::SIGVTALRM, cpu)),
        ITIMER_PROF => Ok((libc::SIGPROF, cpu)),
        _ => Err(Errno::EINVAL),
    }
}

/// itimer `which`'s setting as getitimer shows it: an armed timer whose expiry is due shows
/// 1 µs left (Linux's `itimer_get_remtime`).
fn itimer_get(st: &State, which: u64) -> ItimerVal {
    let Some(t) = st.timers.get(&Key::Itimer(which)) else {
        return ItimerVal::default();
    };
    let (interval, mut left) = setting(t);
    if t.deadline.is_some() && left < Duration::from_micros(1) {
        left = Duration::from_micros(1);
    }
    ItimerVal {
        interval: timeval(interval),
        value: timeval(left),
    }
}

/// Set itimer `which`, returning the old setting.
fn itimer_set(
    cx: &Ctx<'_, '_>,
    which: u64,
    value: Duration,
    interval: Duration,
) -> Result<ItimerVal, Errno> {
    let (signo, clock) = itimer(which)?;
    let mut st = cx.process.timers.state();
    let old = itimer_get(&st, which);
    st.timers
        .entry(Key::Itimer(which))
        .or_insert_with(|| Timer::new(clock, Target::Process, signo, 0));
    arm(cx, &mut st, Key::Itimer(which), value, interval, false)?;
    Ok(old)
}

pub fn getitimer(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let which = u64::from(a.uint(0));
    itimer(which)?;
    let v = itimer_get(&cx.process.timers.state(), which);
    cx.write_val(a.ptr(1), &v)?;
    Ok(0)
}

pub fn setitimer(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let new = if a.ptr(1) == 0 {
        ItimerVal::default()
    } else {
        cx.read_val::<ItimerVal>(a.ptr(1))?
    };
    let value = from_timeval(new.value)?;
    let interval = from_timeval(new.interval)?;
    let old = itimer_set(cx, u64::from(a.uint(0)), value, interval)?;
    if a.ptr(2) != 0 {
        cx.write_val(a.ptr(2), &old)?;
    }
    Ok(0)
}

pub fn alarm(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let secs = Duration::from_secs(u64::from(a.uint(0)));
    let old = itimer_set(cx, ITIMER_REAL, secs, Duration::ZERO)?;
    // Rounded as Linux's alarm_setitimer: never 0 while armed, else to the nearest second.
    let v = old.value;
    let up = (v.sec == 0 && v.usec != 0) || v.usec >= 500_000;
    Ok(v.sec as u64 + u64::from(up))
}

// ---- POSIX timers ----

/// timer_create's clock (EINVAL: no such clock; EOPNOTSUPP: a clock without timers).
fn timer_clock(cx: &Ctx<'_, '_>, id: i32) -> Result<Clock, Errno> {
    match id {
        CLOCK_REALTIME => Ok(Clock::Real),
        CLOCK_MONOTONIC => Ok(Clock::Mono),
        CLOCK_BOOTTIME => Ok(Clock::Boot),
        CLOCK_TAI => Ok(Clock::Tai),
        // Alarm clocks: what Linux answers without an alarm-capable RTC, as on these hosts.
        CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM => Err(Errno::EOPNOTSUPP),
        _ => cpu_clock(cx, id, false),
    }
}

/// The next free POSIX timer id (Linux's `posix_timer_add`: increasing, wrapping in the
/// positive range, skipping ids in use).
fn next_id(st: &mut State) -> Result<i32, Errno> {
    if st.posix >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    loop {
        let id = st.next_id;
        st.next_id = id.wrapping_add(1) & i32::MAX;
        if !st.timers.contains_key(&Key::Posix(id)) {
            return Ok(id);
        }
    }
}

pub fn timer_create(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (clock_id, sevp, idp) = (a.int(0), a.ptr(1), a.ptr(2));
    let event = if sevp == 0 {
        None
    } else {
        Some(cx.read_val::<SigEvent>(sevp)?)
    };
    let clock = timer_clock(cx, clock_id)?;
    let mut st = cx.process.timers.state();
    let id = next_id(&mut st)?;
    // Linux has the id before it checks the sigevent: a refused one uses an id up.
    let (target, signo, value) = match event {
        None => (Target::Process, libc::SIGALRM, id as u64),
        Some(e) => {
            let target = match e.notify {
                SIGEV_NONE => Target::None,
                SIGEV_SIGNAL | SIGEV_THREAD => Target::Process,
                SIGEV_THREAD_ID if e.tid > 0 && cx.process.has_thread(e.tid as u32) => {
                    Target::Thread(e.tid as u32)
                }
                _ => return Err(Errno::EINVAL.into()),
            };
            if target != Target::None && !(1..=64).contains(&e.signo) {
                return Err(Errno::EINVAL.into());
            }
            (target, e.signo, e.value)
        }
    };
    cx.write_val(idp, &id)?;
    st.timers
        .insert(Key::Posix(id), Timer::new(clock, target, signo, value));
    st.posix += 1;
    Ok(0)
}

pub fn timer_settime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (id, flags, newp, oldp) = (a.int(0), a.flags(1), a.ptr(2), a.ptr(3));
    if newp == 0 {
        return Err(Errno::EINVAL.into());
    }
    let new = cx.read_val::<ItimerSpec>(newp)?;
    let value = from_timespec(new.value)?;
    let interval = from_timespec(new.interval)?;
    let key = Key::Posix(id);
    let old = {
        let mut st = cx.process.timers.state();
        let t = st.timers.get_mut(&key).ok_or(Errno::EINVAL)?;
        let (oi, ov) = setting(t);
        settle(cx.process, id, t);
        arm(
            cx,
            &mut st,
            key,
            value,
            interval,
            flags & TIMER_ABSTIME != 0,
        )?;
        ItimerSpec {
            interval: timespec(oi),
            value: timespec(ov),
        }
    };
    if oldp != 0 {
        cx.write_val(oldp, &old)?;
    }
    Ok(0)
}

pub fn timer_gettime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let v = {
        let st = cx.process.timers.state();
        let t = st.timers.get(&Key::Posix(a.int(0))).ok_or(Errno::EINVAL)?;
        let (interval, mut left) = setting(t);
        // An armed timer whose signal is due but not yet sent shows 1 ns, as Linux's.
        if t.deadline.is_some() && left.is_zero() && t.target != Target::None {
            left = Duration::from_nanos(1);
        }
        ItimerSpec {
            interval: timespec(interval),
            value: timespec(left),
        }
    };
    cx.write_val(a.ptr(1), &v)?;
    Ok(0)
}

pub fn timer_getoverrun(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let id = a.int(0);
    let mut st = cx.process.timers.state();
    let t = st.timers.get_mut(&Key::Posix(id)).ok_or(Errno::EINVAL)?;
    settle(cx.process, id, t);
    Ok(t.overrun_last.clamp(0, DELAYTIMER_MAX) as u64)
}

pub fn timer_delete(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let id = a.int(0);
    let mut st = cx.process.timers.state();
    let t = st.timers.remove(&Key::Posix(id)).ok_or(Errno::EINVAL)?;
    st.posix -= 1;
    drop_queued(cx.process, id, &t);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_count_the_expiry_and_the_missed_ones() {
        let ms = Duration::from_millis(1);
        assert_eq!(periods(Duration::ZERO, ms), 1);
        assert_eq!(periods(ms / 2, ms), 1);
        assert_eq!(periods(ms * 10, ms), 11);
        assert_eq!(
            periods(Duration::from_secs(1), Duration::from_nanos(1)),
            1_000_000_001
        );
        assert_eq!(periods(Duration::MAX, Duration::from_nanos(1)), u32::MAX);
    }

    #[test]
    fn remaining_forwards_a_periodic_timer() {
        let mut t = Timer::new(Clock::Mono, Target::Process, 14, 0);
        let s = Duration::from_secs;
        assert_eq!(t.remaining(s(5)), Duration::ZERO);
        t.deadline = Some(s(10));
        assert_eq!(t.remaining(s(4)), s(6));
        assert_eq!(t.remaining(s(11)), Duration::ZERO);
        t.interval = s(3);
        assert_eq!(t.remaining(s(11)), s(2));
    }

    #[test]
    fn forward_never_overflows() {
        let s = Duration::from_secs;
        assert_eq!(forward(s(10), s(11), s(3)), s(13));
        assert_eq!(forward(s(10), s(10), s(3)), s(13));
        let huge = Duration::from_secs(i64::MAX as u64);
        assert_eq!(forward(s(1), huge, huge), s(1) + huge);
        assert_eq!(forward(s(1), Duration::MAX, huge), Duration::MAX);
        let mut t = Timer::new(Clock::Mono, Target::Process, 14, 0);
        t.deadline = Some(s(1));
        t.interval = huge;
        assert_eq!(t.remaining(Duration::MAX), Duration::ZERO);
    }

    #[test]
    fn timer_siginfo_layout() {
        let t = Timer::new(Clock::Mono, Target::Process, 34, 42);
        let i = info_of(Key::Posix(7), &t, 3);
        assert_eq!((i.signo, i.code), (34, SI_TIMER));
        assert!(is_of(7, &i) && !is_of(8, &i));
        let bytes = i.as_bytes();
        assert_eq!(&bytes[0x10..0x14], &7i32.to_ne_bytes());
        assert_eq!(&bytes[0x14..0x18], &3i32.to_ne_bytes());
        assert_eq!(&bytes[0x18..0x20], &42u64.to_ne_bytes());
    }

    #[test]
    fn cpu_clock_ids_encode_as_linux() {
        // pthread_getcpuclockid's id for tid 5 and clock_getcpuclockid(0)'s.
        assert_eq!(host_thread_clock(5, CPUCLOCK_SCHED), (!5 << 3) | 6);
        assert_eq!(host_process_clock(CPUCLOCK_SCHED), -6);
    }
}
