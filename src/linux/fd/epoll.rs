//! epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait and epoll_pwait2: every
//! guest epoll instance is a host epoll instance of the monitor, and an fd the guest adds is
//! registered there by its host fd with the guest's own `epoll_data` as the host's data. So
//! level and edge triggering, EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLRDHUP/HUP/ERR, nested
//! instances and their ELOOP, the removal of an item when the last fd of its file is closed,
//! and an instance shared with a forked child (a host fork of the monitor) are the host
//! kernel's own. A blocking wait is a host epoll wait the vCPU kick interrupts.
//!
//! What is not exact: an fd kind without a host fd (a signalfd, a synthetic `/proc` or `/dev`
//! file, a standard stream the caller supplied as a reader or writer) cannot be added (EPERM,
//! as Linux answers for a file that cannot poll); an item is keyed by the host fd, so two guest
//! fds dup'ed from one file name the same item (Linux keys by file and fd number); with
//! EPOLLWAKEUP dropped as for a caller without CAP_BLOCK_SUSPEND.
use super::eventfd::{anon_stat, host_fdinfo_lines};
use super::file::{host_status_flags, set_host_status_flags, FileDescription};
use super::{Fd, OpenFile};
use crate::linux::abi::{oflag, Stat, Timespec, TASK_SIZE_MAX};
use crate::linux::io::{host_errno, interrupted_wait};
use crate::linux::signal::deliver::{self, signal_pending, ERESTARTNOHAND};
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscalls::Errno;
use umon_abi::Gpa;

/// EPOLL_CLOEXEC (O_CLOEXEC).
const EPOLL_CLOEXEC: u64 = oflag::CLOEXEC;
/// EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD.
const CTL_ADD: i32 = 1;
const CTL_DEL: i32 = 2;
const CTL_MOD: i32 = 3;
/// EPOLLWAKEUP: kept only for a caller with CAP_BLOCK_SUSPEND.
const EPOLLWAKEUP: u32 = 1 << 29;
/// struct epoll_event on x86-64: packed, a u32 mask then the u64 data.
const EVENT_SIZE: u64 = 12;
/// EP_MAX_EVENTS: the most events one wait may ask for.
const EP_MAX_EVENTS: i32 = i32::MAX / EVENT_SIZE as i32;
/// The most events taken from the host per wait: a wait may return fewer than are ready, as
/// Linux's may when its buffer is full; more than the fd limit are never ready at once.
const HOST_BATCH: usize = super::HARD_MAX_FDS as usize;

/// An epoll instance: a host epoll fd.
#[derive(Debug)]
pub struct EpollFile {
    fd: OwnedFd,
}

impl EpollFile {
    /// The epoll instance behind a host fd received by SCM_RIGHTS (its items are the host's).
    pub(crate) fn from_host(fd: OwnedFd) -> EpollFile {
        EpollFile { fd }
    }
}

impl FileDescription for EpollFile {
    /// eventpoll has no read or write: EINVAL.
    fn read_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn write_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn write_bytes(&self, _: &[u8], _: Option<&mut u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    anon_host_fd_methods!();

    fn as_epoll(&self) -> Option<&EpollFile> {
        Some(self)
    }

    /// ep_show_fdinfo: one `tfd:` line per item, its host fd number as the guest's.
    fn fdinfo(&self, guest_fd_of: &dyn Fn(i32) -> Option<u64>) -> String {
        host_fdinfo_lines(self.fd.as_fd(), &["tfd:"], &|l| {
            let rest = l.strip_prefix("tfd:")?;
            let host: i32 = rest.split_whitespace().next()?.parse().ok()?;
            let guest = guest_fd_of(host)?;
            let after = rest.trim_start().strip_prefix(&host.to_string())?;
            Some(format!("tfd: {guest:>8}{after}"))
        })
    }
}

/// epoll_create(size): a positive size, otherwise ignored.
pub fn epoll_create(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.int(0) <= 0 {
        return Err(Errno::EINVAL.into());
    }
    create(cx, 0)
}

/// epoll_create1(flags).
pub fn epoll_create1(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = u64::from(a.uint(0));
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    create(cx, flags)
}

fn create(cx: &mut Ctx<'_, '_>, flags: u64) -> Sys {
    let fd = epoll::create(CreateFlags::CLOEXEC).map_err(host_errno)?;
    let file: OpenFile = Arc::new(EpollFile { fd });
    let n = cx.process.fds().alloc(
        0,
        Fd {
            file,
            cloexec: flags & EPOLL_CLOEXEC != 0,
        },
    )?;
    Ok(n)
}

/// fdget: EBADF for a closed fd or an O_PATH one.
fn fdget(cx: &Ctx<'_, '_>, fd: u64) -> Result<OpenFile, Errno> {
    let file = cx.process.fds().get(fd)?.file;
    if file.status_flags().is_ok_and(|f| f & oflag::PATH != 0) {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

/// file_can_poll, as far as the monitor can tell without asking the host to add it: a kind
/// with a host fd that is neither a regular file nor a directory.
fn can_poll(file: &OpenFile) -> bool {
    let Some(fd) = file.host_fd() else {
        return false;
    };
    rustix::fs::fstat(fd).is_ok_and(|st| {
        let t = st.st_mode & libc::S_IFMT;
        t != libc::S_IFREG && t != libc::S_IFDIR
    })
}

/// epoll_ctl(epfd, op, fd, event), in Linux's order: the event read (EFAULT, unless DEL),
/// both fds (EBADF), a target that cannot poll (EPERM), the instance itself or not an epoll
/// (EINVAL); then the host decides as Linux does (EPOLLEXCLUSIVE misuse, ELOOP, EEXIST,
/// ENOENT, an unknown op).
pub fn epoll_ctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let op = a.int(1);
    let mut event = [0u8; EVENT_SIZE as usize];
    if op != CTL_DEL {
        cx.space().read(cx.mem, a.ptr(3), &mut event)?;
    }
    let events = u32::from_le_bytes(event[..4].try_into().unwrap_or_default()) & !EPOLLWAKEUP;
    let data = u64::from_le_bytes(event[4..].try_into().unwrap_or_default());
    let epf = fdget(cx, a.fd(0))?;
    let tf = fdget(cx, a.fd(2))?;
    if !can_poll(&tf) {
        return Err(Errno::EPERM.into());
    }
    let ep = match epf.as_epoll() {
        Some(ep) if !Arc::ptr_eq(&epf, &tf) => ep,
        _ => return Err(Errno::EINVAL.into()),
    };
    let Some(target) = tf.host_fd() else {
        return Err(Errno::EPERM.into());
    };
    let flags = EventFlags::from_bits_retain(events);
    let data = EventData::new_u64(data);
    match op {
        CTL_ADD => epoll::add(&ep.fd, target, data, flags),
        CTL_MOD => epoll::modify(&ep.fd, target, data, flags),
        CTL_DEL => epoll::delete(&ep.fd, target),
        _ => return Err(Errno::EINVAL.into()),
    }
    .map_err(host_errno)?;
    Ok(0)
}

/// epoll_wait(epfd, events, maxevents, timeout_ms).
pub fn epoll_wait(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = ms_timeout(a.int(3));
    Ok(wait(cx, a, timeout)?)
}

/// epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask, sigsetsize).
pub fn epoll_pwait(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = ms_timeout(a.int(3));
    with_mask(cx, a, timeout)
}

/// epoll_pwait2(epfd, events, maxevents, timeout, sigmask, sigsetsize): the timeout a
/// timespec (NULL: none), read and checked first.
pub fn epoll_pwait2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = if a.ptr(3) == 0 {
        None
    } else {
        Some(crate::linux::time::duration(
            cx.read_val::<Timespec>(a.ptr(3))?,
        )?)
    };
    with_mask(cx, a, timeout)
}

/// A timeout in milliseconds; a negative one waits for ever.
fn ms_timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

/// do_epoll_pwait: the signal mask (argument 4, its size argument 5) in place during the
/// wait. Cut short by a signal (EINTR), the handler's frame restores the mask from before.
fn with_mask(cx: &mut Ctx<'_, '_>, a: &Args, timeout: Option<Duration>) -> Sys {
    if a.ptr(4) == 0 {
        return Ok(wait(cx, a, timeout)?);
    }
    if a.len(5) != 8 {
        return Err(Errno::EINVAL.into());
    }
    let mask: u64 = cx.read_val(a.ptr(4))?;
    let old = cx.thread.sigmask;
    cx.thread.sigmask = mask & !crate::linux::signal::UNBLOCKABLE;
    deliver::mask_changed(cx);
    let r = wait(cx, a, timeout);
    if r == Err(Errno::EINTR) && !cx.interrupted() {
        cx.thread.saved_mask = Some(old);
    } else {
        cx.thread.sigmask = old;
        deliver::mask_changed(cx);
    }
    Ok(r?)
}

/// do_epoll_wait in the order of the hosts' kernel (6.x): the fd (EBADF), maxevents
/// (EINVAL), the events array in the user half (EFAULT), the kind (EINVAL); then the host's
/// ready events, waiting for them up to `timeout`. A signal to take while waiting, or a stop,
/// ends it with EINTR: epoll waits are never restarted.
fn wait(cx: &mut Ctx<'_, '_>, a: &Args, timeout: Option<Duration>) -> Result<u64, Errno> {
    let (at, max) = (a.ptr(1), a.int(2));
    let file = fdget(cx, a.fd(0))?;
    if max <= 0 || max > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let len = max as u64 * EVENT_SIZE;
    if at.checked_add(len).is_none_or(|end| end > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT);
    }
    let ep = file.as_epoll().ok_or(Errno::EINVAL)?;
    let mut buf = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        (max as usize).min(HOST_BATCH)
    ];
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    // A first look without waiting: ready events are taken before any signal is looked at.
    let mut left = Some(Duration::ZERO);
    let n = loop {
        let ts = left.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match epoll::wait(&ep.fd, &mut buf[..], ts.as_ref()) {
            Ok(n) if n > 0 => break n,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {
                interrupted_wait(cx, ERESTARTNOHAND).map_err(|_| eintr(cx))?;
            }
            Err(e) => return Err(host_errno(e)),
        }
        if timeout == Some(Duration::ZERO) {
            break 0;
        }
        if cx.interrupted() || signal_pending(cx) {
            return Err(eintr(cx));
        }
        left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            break 0;
        }
    };
    for (i, e) in buf[..n].iter().enumerate() {
        let mut rec = [0u8; EVENT_SIZE as usize];
        let (flags, data) = (e.flags, e.data);
        rec[..4].copy_from_slice(&flags.bits().to_le_bytes());
        rec[4..].copy_from_slice(&data.u64().to_le_bytes());
        if let Err(err) = cx.space().write(cx.mem, at + i as u64 * EVENT_SIZE, &rec) {
            // ep_send_events: a fault ends the copy; only the first is an error.
            return if i == 0 { Err(err) } else { Ok(i as u64) };
        }
    }
    Ok(n as u64)
}

/// EINTR for a wait a signal ended: not a restart kind, so the signal's delivery is asked for
/// here (the kick's hint was acknowledged while waiting).
fn eintr(cx: &Ctx<'_, '_>) -> Errno {
    cx.thread
        .sig
        .hint
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Errno::EINTR
}
