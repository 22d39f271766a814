//! Clocks and sleeping, from the host's clocks.
use super::abi::{Timespec, Timeval};
use super::{Args, Ctx, Sys};
use rustix::time::ClockId;
use std::time::Duration;
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

/// Sleep for `d` on the vCPU thread, parked so that only this thread waits. A stop request
/// (kill, timeout, signal to umon) or the end of the process (another thread's exit_group)
/// cuts it short with EINTR, so a sleeping guest ends as promptly as a running one.
pub fn sleep(cx: &Ctx<'_, '_>, d: Duration) -> Result<(), Errno> {
    let deadline = std::time::Instant::now().checked_add(d);
    loop {
        if cx.interrupted() {
            return Err(Errno::EINTR);
        }
        if deadline.is_some_and(|t| std::time::Instant::now() >= t) {
            return Ok(());
        }
        cx.thread.parker.park(deadline);
    }
}

/// Sleep until a stop request (kill, timeout, signal to umon) ends it with EINTR: what a
/// Linux process waiting for a signal nobody can send does.
pub fn sleep_until_stopped(cx: &Ctx<'_, '_>) -> Result<(), Errno> {
    loop {
        sleep(cx, Duration::from_secs(3600))?;
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

pub fn clock_gettime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let t = now_any(a.raw(0))?;
    cx.write_val(a.ptr(1), &t)?;
    Ok(0)
}

pub fn clock_getres(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
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
    sleep(cx, d)?;
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
    let d = if flags & TIMER_ABSTIME != 0 {
        let target = duration(t)?;
        let n = now_any(id)?;
        let now = Duration::new(n.sec.max(0) as u64, n.nsec as u32);
        target.saturating_sub(now)
    } else {
        duration(t)?
    };
    sleep(cx, d)?;
    Ok(0)
}
