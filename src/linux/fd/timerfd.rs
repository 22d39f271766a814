//! timerfd_create, timerfd_settime and timerfd_gettime: every timerfd is a host timerfd of the
//! monitor on the same clock (the guest's clocks are the host's), so expirations, overruns,
//! TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET (ECANCELED), poll and epoll readiness are the
//! host kernel's own. A blocking read is a host read the vCPU kick interrupts, served by the
//! generic read path.
//!
//! The alarm clocks need CAP_WAKE_ALARM, which the application never has: EPERM, as Linux
//! answers an unprivileged caller.
use super::eventfd::{anon_stat, host_fdinfo_lines};
use super::file::{host_status_flags, memory_io, set_host_status_flags, FileDescription};
use super::{Fd, OpenFile};
use crate::linux::abi::{oflag, Stat, Timespec};
use crate::linux::io::host_errno;
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use umon_abi::Gpa;

/// TFD_CLOEXEC | TFD_NONBLOCK.
const TFD_CREATE_FLAGS: u64 = oflag::CLOEXEC | oflag::NONBLOCK;
/// TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET.
const TFD_SETTIME_FLAGS: u64 = 1 | 2;

/// A timerfd: a host timerfd.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// The timerfd behind a host fd received by SCM_RIGHTS.
    pub(crate) fn from_host(fd: OwnedFd) -> TimerFd {
        TimerFd { fd }
    }
}

impl FileDescription for TimerFd {
    fn read_piece(&self, mem: &GuestMem, gpa: Gpa, len: u64, _: Option<u64>) -> io::Result<usize> {
        mem.read_from(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    /// timerfd has no write: EINVAL.
    fn write_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn write_bytes(&self, _: &[u8], _: Option<&mut u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    anon_host_fd_methods!();

    fn as_timerfd(&self) -> Option<&TimerFd> {
        Some(self)
    }

    /// timerfd_show: the clock, ticks, settime flags and the setting, as the host shows them.
    fn fdinfo(&self, _: &dyn Fn(i32) -> Option<u64>) -> String {
        host_fdinfo_lines(
            self.fd.as_fd(),
            &[
                "clockid:",
                "ticks:",
                "settime flags:",
                "it_value:",
                "it_interval:",
            ],
            &|l| Some(l.to_string()),
        )
    }
}

/// timerfd_create(clockid, flags).
pub fn timerfd_create(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = u64::from(a.uint(1));
    let clock = match a.int(0) {
        libc::CLOCK_REALTIME => Some(TimerfdClockId::Realtime),
        libc::CLOCK_MONOTONIC => Some(TimerfdClockId::Monotonic),
        libc::CLOCK_BOOTTIME => Some(TimerfdClockId::Boottime),
        libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM => None,
        _ => return Err(Errno::EINVAL.into()),
    };
    if flags & !TFD_CREATE_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let Some(clock) = clock else {
        return Err(Errno::EPERM.into());
    };
    let host =
        TimerfdFlags::from_bits_retain((flags & oflag::NONBLOCK) as u32) | TimerfdFlags::CLOEXEC;
    let fd = rustix::time::timerfd_create(clock, host).map_err(host_errno)?;
    let file: OpenFile = Arc::new(TimerFd { fd });
    let n = cx.process.fds().alloc(
        0,
        Fd {
            file,
            cloexec: flags & oflag::CLOEXEC != 0,
        },
    )?;
    Ok(n)
}

/// The timerfd behind guest fd `fd`: EBADF, or EINVAL for another kind (timerfd_fget).
fn timerfd_of(cx: &Ctx<'_, '_>, fd: u64) -> Result<OpenFile, Errno> {
    let file = cx.process.fds().get(fd)?.file;
    if file.status_flags().is_ok_and(|f| f & oflag::PATH != 0) {
        return Err(Errno::EBADF);
    }
    if file.as_timerfd().is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(file)
}

fn to_guest(t: &Itimerspec) -> [Timespec; 2] {
    let ts = |t: &rustix::time::Timespec| Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    };
    [ts(&t.it_interval), ts(&t.it_value)]
}

/// timerfd_settime(fd, flags, new, old): Linux's order: the new setting is read (EFAULT),
/// the flags and the setting checked (EINVAL), the fd looked up, the timer set, then the old
/// setting written (EFAULT with the new one in place).
pub fn timerfd_settime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let new: [Timespec; 2] = cx.read_val(a.ptr(2))?;
    let flags = u64::from(a.uint(1));
    if flags & !TFD_SETTIME_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    for t in &new {
        crate::linux::time::duration(*t)?;
    }
    let file = timerfd_of(cx, a.fd(0))?;
    let tfd = file.as_timerfd().ok_or(Errno::EINVAL)?;
    let ts = |t: Timespec| rustix::time::Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec,
    };
    let spec = Itimerspec {
        it_interval: ts(new[0]),
        it_value: ts(new[1]),
    };
    let old = rustix::time::timerfd_settime(
        &tfd.fd,
        TimerfdTimerFlags::from_bits_retain(flags as u32),
        &spec,
    )
    .map_err(host_errno)?;
    if a.ptr(3) != 0 {
        cx.write_val(a.ptr(3), &to_guest(&old))?;
    }
    Ok(0)
}

/// timerfd_gettime(fd, cur).
pub fn timerfd_gettime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = timerfd_of(cx, a.fd(0))?;
    let tfd = file.as_timerfd().ok_or(Errno::EINVAL)?;
    let cur = rustix::time::timerfd_gettime(&tfd.fd).map_err(host_errno)?;
    cx.write_val(a.ptr(1), &to_guest(&cur))?;
    Ok(0)
}
