//! Clocks and sleeping, from the host's clocks.
use super::abi::{Timespec, Timeval};
use super::signal::{deliver, SIGKILL};
use super::thread::RestartBlock;
use super::{Args, Ctx, Sys};
use rustix::time::ClockId;
use std::time::Duration;
use std::time::Instant;
use syscalls::Errno;

/// TIMER_ABSTIME for clock_nanosleep.
const TIMER_ABSTIME: u64 = 1;

/// A valid relative timespec as a Duration (EINVAL like Linux otherwise).
pub fn duration(t: Timespec) -> Result<Duration, Errno> {
    if t.sec < 0 || !(0..1_000_000_000).contains(&t.nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(t.sec as u64, t.nsec as u32))
}

/// Why a sleep ended early.
enum Cut {
    /// A stop request or the end of the process (EINTR; the run loop then ends the thread).
    Stopped,
    /// A signal not blocked is pending.
    Signal,
}

/// Park until `until` (None: no end), a stop or, if `signals`, a signal to take.
fn park_until(cx: &Ctx<'_, '_>, until: Option<Instant>, signals: bool) -> Result<(), Cut> {
    loop {
        if cx.interrupted() {
            return Err(Cut::Stopped);
        }
        if signals && deliver::signal_pending(cx) {
            return Err(Cut::Signal);
        }
        if until.is_some_and(|t| Instant::now() >= t) {
            return Ok(());
        }
        cx.thread.parker.park(until);
    }
}

/// Sleep for `d` on the vCPU thread, parked so that only this thread waits. A stop request
/// (kill, timeout, signal to umon) or the end of the process (another thread's exit_group)
/// cuts it short with EINTR, so a sleeping guest ends as promptly as a running one; a signal
/// with ERESTARTNOHAND (EINTR after a handler, else the call again: poll's way).
pub fn sleep(cx: &Ctx<'_, '_>, d: Duration) -> Result<(), Errno> {
    match park_until(cx, Instant::now().checked_add(d), true) {
        Ok(()) => Ok(()),
        Err(Cut::Stopped) => Err(Errno::EINTR),
        Err(Cut::Signal) => Err(deliver::restart(deliver::ERESTARTNOHAND)),
    }
}

/// nanosleep's sleep to `until`: cut short by a signal, the remaining time goes to `rem` (if
/// not 0) and the call ends with ERESTART_RESTARTBLOCK: EINTR after a handler, else
/// restart_syscall sleeps on to the same end.
pub fn sleep_to(cx: &mut Ctx<'_, '_>, until: Instant, rem: u64) -> Result<(), Errno> {
    match park_until(cx, Some(until), true) {
        Ok(()) => Ok(()),
        Err(Cut::Stopped) => Err(Errno::EINTR),
        Err(Cut::Signal) => {
            if rem != 0 {
                let left = until.saturating_duration_since(Instant::now());
                let t = Timespec {
                    sec: left.as_secs() as i64,
                    nsec: i64::from(left.subsec_nanos()),
                };
                cx.write_val(rem, &t)?;
            }
            cx.thread.restart_block = Some(RestartBlock::Sleep { until, rem });
            Err(deliver::restart(deliver::ERESTART_RESTARTBLOCK))
        }
    }
}

/// `d` from now; a time too far for the host clock is about a century.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// A stopped process's thread: parked until a SIGCONT resumes the process, a SIGKILL is
/// pending, or a stop request (kill, timeout, signal to umon) ends it with EINTR. Other
/// signals stay pending meanwhile.
pub fn sleep_while_stopped(cx: &Ctx<'_, '_>) -> Result<(), Errno> {
    loop {
        if cx.interrupted() {
            return Err(Errno::EINTR);
        }
        let killed = deliver::pending_set(cx.process, &cx.thread.sig) & (1 << (SIGKILL - 1)) != 0;
        if killed || !cx.process.signals().stopped {
            return Ok(());
        }
        cx.thread.parker.park(None);
    }
}

/// Wait for a signal (poll with nothing to poll and no timeout): ERESTARTNOHAND.
pub fn sleep_until_signal(cx: &Ctx<'_, '_>) -> Result<(), Errno> {
    match park_until(cx, None, true) {
        Ok(()) => Ok(()),
        Err(Cut::Stopped) => Err(Errno::EINTR),
        Err(Cut::Signal) => Err(deliver::restart(deliver::ERESTARTNOHAND)),
    }
}

/// CLOCK_TAI.
const CLOCK_TAI: u64 = 11;

/// The clocks umon serves: REALTIME .. BOOTTIME (0..=7) and TAI. Alarm clocks (8, 9) need an
/// RTC the host may lack, and rustix's infallible clock calls must never see an id the host
/// refuses, so TAI goes through the fallible call.
fn clock(id: u64) -> Result<ClockId, Errno> {
    if id > 7 {
        return Err(Errno::EINVAL);
    }
    ClockId::try_from(id as i32).map_err(|_| Errno::EINVAL)
}

/// The host's timespec in the guest's layout.
fn guest(t: rustix::time::Timespec) -> Timespec {
    Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    }
}

fn now(id: ClockId) -> Timespec {
    guest(rustix::time::clock_gettime(id))
}

/// The time on clock `id`, any clock umon serves.
fn now_any(id: u64) -> Result<Timespec, Errno> {
    if id == CLOCK_TAI {
        let t = rustix::time::clock_gettime_dynamic(rustix::time::DynamicClockId::Tai)
            .map_err(|e| Errno::new(e.raw_os_error()))?;
        return Ok(guest(t));
    }
    Ok(now(clock(id)?))
}

/// A CPU-time clock id: CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, or an encoded one
/// (negative as an int: pthread_getcpuclockid, clock_getcpuclockid).
fn cpu_clock_id(id: u64) -> Option<i32> {
    let id = id as i32;
    (id < 0 || id == libc::CLOCK_PROCESS_CPUTIME_ID || id == libc::CLOCK_THREAD_CPUTIME_ID)
        .then_some(id)
}

pub fn clock_gettime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let t = match cpu_clock_id(a.raw(0)) {
        Some(id) => super::timer::cpu_clock_read(cx, id, false)?,
        None => now_any(a.raw(0))?,
    };
    cx.write_val(a.ptr(1), &t)?;
    Ok(0)
}

pub fn clock_getres(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if let Some(id) = cpu_clock_id(a.raw(0)) {
        let r = super::timer::cpu_clock_read(cx, id, true)?;
        if a.ptr(1) != 0 {
            cx.write_val(a.ptr(1), &r)?;
        }
        return Ok(0);
    }
    let r = if a.raw(0) == CLOCK_TAI {
        // TAI ticks with the realtime clock.
        rustix::time::clock_getres(ClockId::Realtime)
    } else {
        rustix::time::clock_getres(clock(a.raw(0))?)
    };
    if a.ptr(1) != 0 {
        cx.write_val(a.ptr(1), &guest(r))?;
    }
    Ok(0)
}

pub fn gettimeofday(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let t = now(ClockId::Realtime);
    if a.ptr(0) != 0 {
        cx.write_val(
            a.ptr(0),
            &Timeval {
                sec: t.sec,
                usec: t.nsec / 1000,
            },
        )?;
    }
    if a.ptr(1) != 0 {
        cx.write_val(a.ptr(1), &[0u32; 2])?;
    }
    Ok(0)
}

pub fn time(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let t = now(ClockId::Realtime).sec;
    if a.ptr(0) != 0 {
        cx.write_val(a.ptr(0), &t)?;
    }
    Ok(t as u64)
}

pub fn nanosleep(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let d = duration(cx.read_val(a.ptr(0))?)?;
    sleep_to(cx, later(d), a.ptr(1))?;
    Ok(0)
}

/// CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM.
const ALARM_CLOCKS: [u64; 2] = [8, 9];

pub fn clock_nanosleep(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if ALARM_CLOCKS.contains(&a.raw(0)) {
        // What Linux answers without an alarm-capable RTC, as on these hosts.
        return Err(Errno::EOPNOTSUPP.into());
    }
    let (id, flags, req) = (a.raw(0), a.flags(1), a.raw(2));
    now_any(id)?;
    let t: Timespec = cx.read_val(req)?;
    if flags & TIMER_ABSTIME != 0 {
        let target = duration(t)?;
        let n = now_any(id)?;
        let now = Duration::new(n.sec.max(0) as u64, n.nsec as u32);
        // Cut short: the same call again after no handler (ERESTARTNOHAND), exact as the end
        // is absolute.
        sleep(cx, target.saturating_sub(now))?;
    } else {
        sleep_to(cx, later(duration(t)?), a.ptr(3))?;
    }
    Ok(0)
}
