//! epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait and epoll_pwait2: every
//! guest epoll instance is a host epoll instance of the monitor, and an fd the guest adds is
//! registered there by its host fd with the guest's own `epoll_data` as the host's data. So
//! level and edge triggering, EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLRDHUP/HUP/ERR, nested
//! instances and their ELOOP, the removal of an item when the last fd of its file is closed,
//! and an instance shared with a forked child (a host fork of the monitor) are the host
//! kernel's own. A blocking wait is a host epoll wait the vCPU kick interrupts.
//!
//! A file without a host fd that polls on Linux is an item the monitor keeps beside the host's
//! (`Virtual`): a signalfd (ready while one of its signals is pending for the waiting thread,
//! whose senders kick the wait) and the synthetic `/proc` and `/sys` files Linux can poll
//! (always ready); level, edge and one-shot are the monitor's, and such an item is not seen by
//! an epoll instance nested around this one.
//!
//! What is not exact: other kinds without a host fd (a process's own `/proc` files, `/dev`, a
//! standard stream the caller supplied as a reader or writer) cannot be added (EPERM, as Linux
//! answers for a file that cannot poll, which is right for the first two); an item is keyed by
//! the host fd, so two guest fds dup'ed from one file name the same item (Linux keys by file
//! and fd number); with EPOLLWAKEUP dropped as for a caller without CAP_BLOCK_SUSPEND.
use super::eventfd::{anon_stat, host_fdinfo_lines};
use super::file::{host_status_flags, set_host_status_flags, FileDescription};
use super::{Fd, OpenFile};
use crate::linux::abi::{oflag, Stat, Timespec, TASK_SIZE_MAX};
use crate::linux::io::{host_errno, interrupted_wait};
use crate::linux::mm::space::Access;
use crate::linux::process::locked;
use crate::linux::signal::deliver::{self, signal_pending, ERESTARTNOHAND};
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
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
    /// The items the host cannot poll, kept by the monitor (see [`Virtual`]).
    virt: Mutex<Vec<Virtual>>,
}

impl EpollFile {
    fn new(fd: OwnedFd) -> EpollFile {
        EpollFile {
            fd,
            virt: Mutex::new(Vec::new()),
        }
    }

    /// The epoll instance behind a host fd received by SCM_RIGHTS (its items are the host's).
    pub(crate) fn from_host(fd: OwnedFd) -> EpollFile {
        EpollFile::new(fd)
    }
}

/// How an item the host cannot poll is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    /// A signalfd: EPOLLIN while one of its signals is pending for the waiting thread.
    Signals,
    /// A synthetic file whose Linux counterpart polls as always ready: these events.
    Always(u32),
}

/// An item of a file without a host fd: a signalfd, or a synthetic `/proc` or `/sys` file that
/// polls on Linux. Its readiness is looked at on each wait; senders of a signalfd's signals
/// kick the waiting thread. Gone with the last fd of its file, as Linux's.
#[derive(Debug)]
struct Virtual {
    file: Weak<dyn FileDescription>,
    how: Readiness,
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: nothing more until EPOLL_CTL_MOD.
    disabled: bool,
    /// EPOLLET: reported while it stayed ready.
    reported: bool,
}

/// EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDNORM, EPOLLWRNORM.
const EPOLLIN: u32 = 0x1;
const EPOLLPRI: u32 = 0x2;
const EPOLLOUT: u32 = 0x4;
const EPOLLERR: u32 = 0x8;
const EPOLLHUP: u32 = 0x10;
const EPOLLRDNORM: u32 = 0x40;
const EPOLLWRNORM: u32 = 0x100;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;
/// DEFAULT_POLLMASK: what a file that polls as always ready answers.
const DEFAULT_POLLMASK: u32 = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM;
/// The events EPOLLEXCLUSIVE may come with (EPOLLEXCLUSIVE_OK_BITS).
const EXCLUSIVE_OK: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

/// How a file without a host fd polls on Linux, if it does: a signalfd; the /proc entries
/// that are not a process's (proc_reg_poll answers DEFAULT_POLLMASK), /proc/sys (proc_sys_poll)
/// and a process's mounts, mountinfo and mountstats (EPOLLIN|EPOLLRDNORM while nothing
/// changes); sysfs attributes (kernfs: DEFAULT_POLLMASK|EPOLLERR|EPOLLPRI). Others (a process's
/// other /proc files, /dev) cannot poll: EPERM.
fn readiness(file: &OpenFile) -> Option<Readiness> {
    if file.as_signalfd().is_some() {
        return Some(Readiness::Signals);
    }
    let sf = file.as_synthetic()?;
    if sf.is_dir() {
        return None;
    }
    let path = &sf.path[..];
    if path.starts_with(b"/sys/") {
        return Some(Readiness::Always(DEFAULT_POLLMASK | EPOLLERR | EPOLLPRI));
    }
    let rest = path.strip_prefix(b"/proc/")?;
    if rest.starts_with(b"sys/") {
        return Some(Readiness::Always(DEFAULT_POLLMASK));
    }
    let first = rest.split(|&c| c == b'/').next().unwrap_or(&[]);
    let per_process = first == b"self"
        || first == b"thread-self"
        || (!first.is_empty() && first.iter().all(u8::is_ascii_digit));
    if !per_process {
        return Some(Readiness::Always(DEFAULT_POLLMASK));
    }
    let leaf = rest.rsplit(|&c| c == b'/').next().unwrap_or(&[]);
    matches!(leaf, b"mounts" | b"mountinfo" | b"mountstats")
        .then_some(Readiness::Always(EPOLLIN | EPOLLRDNORM))
}

impl Virtual {
    /// The events it has now (none for a closed or disabled item).
    fn events_now(&self, cx: &Ctx<'_, '_>) -> u32 {
        let Some(file) = self.file.upgrade() else {
            return 0;
        };
        if self.disabled {
            return 0;
        }
        let now = match self.how {
            Readiness::Signals => match file.as_signalfd() {
                Some(sfd) if super::signalfd::ready(cx, sfd) => EPOLLIN,
                _ => 0,
            },
            Readiness::Always(m) => m,
        };
        now & (self.events | EPOLLERR | EPOLLHUP)
    }

    /// Whether a wait would report it now (nothing changed).
    fn peek(&self, cx: &Ctx<'_, '_>) -> bool {
        self.events_now(cx) != 0 && !(self.events & EPOLLET != 0 && self.reported)
    }

    /// The events to report now, updating the one-shot and edge state as reporting them does.
    fn take(&mut self, cx: &Ctx<'_, '_>) -> Option<u32> {
        let now = self.events_now(cx);
        if now == 0 {
            self.reported = false;
            return None;
        }
        if self.events & EPOLLET != 0 {
            if self.reported {
                return None;
            }
            self.reported = true;
        }
        if self.events & EPOLLONESHOT != 0 {
            self.disabled = true;
        }
        Some(now)
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
    let file: OpenFile = Arc::new(EpollFile::new(fd));
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
    let how = readiness(&tf);
    if how.is_none() && !can_poll(&tf) {
        return Err(Errno::EPERM.into());
    }
    let ep = match epf.as_epoll() {
        Some(ep) if !Arc::ptr_eq(&epf, &tf) => ep,
        _ => return Err(Errno::EINVAL.into()),
    };
    if let Some(how) = how {
        return ctl_virtual(ep, &tf, how, op, events, data);
    }
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

/// epoll_ctl on an item the monitor keeps, with ep_insert/ep_modify's checks: EPOLLEXCLUSIVE
/// only with ADD and the events it allows (EINVAL), an item added once (EEXIST), changed or
/// removed only if there (ENOENT), an exclusive one never changed (EINVAL).
fn ctl_virtual(
    ep: &EpollFile,
    tf: &OpenFile,
    how: Readiness,
    op: i32,
    events: u32,
    data: u64,
) -> Sys {
    if !matches!(op, CTL_ADD | CTL_MOD | CTL_DEL) {
        return Err(Errno::EINVAL.into());
    }
    if op != CTL_DEL
        && events & EPOLLEXCLUSIVE != 0
        && (op == CTL_MOD || events & !EXCLUSIVE_OK != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    let mut virt = locked(&ep.virt);
    virt.retain(|v| v.file.strong_count() > 0);
    let at = virt
        .iter()
        .position(|v| std::ptr::addr_eq(v.file.as_ptr(), Arc::as_ptr(tf)));
    match (op, at) {
        (CTL_ADD, Some(_)) => return Err(Errno::EEXIST.into()),
        (CTL_ADD, None) => virt.push(Virtual {
            file: Arc::downgrade(tf),
            how,
            events,
            data,
            disabled: false,
            reported: false,
        }),
        (_, None) => return Err(Errno::ENOENT.into()),
        (CTL_DEL, Some(i)) => {
            virt.remove(i);
        }
        (_, Some(i)) => {
            let v = &mut virt[i];
            if v.events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL.into());
            }
            (v.events, v.data, v.disabled, v.reported) = (events, data, false, false);
        }
    }
    Ok(0)
}

/// The events of the monitor's items ready now, at most `room`; and the signals of their
/// signalfds (whose senders must kick a waiting thread).
fn virtual_ready(cx: &Ctx<'_, '_>, ep: &EpollFile, room: usize) -> (Vec<(u32, u64)>, u64) {
    let mut virt = locked(&ep.virt);
    virt.retain(|v| v.file.strong_count() > 0);
    let mut out = Vec::new();
    let mut signals = 0;
    for v in virt.iter_mut() {
        if v.how == Readiness::Signals {
            if let Some(sfd) = v.file.upgrade().as_ref().and_then(|f| f.as_signalfd()) {
                signals |= sfd.mask();
            }
        }
        if out.len() < room {
            if let Some(ev) = v.take(cx) {
                out.push((ev, v.data));
            }
        }
    }
    (out, signals)
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
    // Only as many events are taken as the guest's array can hold from its start: Linux leaves
    // an event it cannot copy queued (ep_send_events), so a bad array neither loses an
    // edge-triggered or one-shot event nor reorders the ready list.
    let room = cx.space().accessible(at, len, Access::Write) / EVENT_SIZE;
    if room == 0 {
        return fault_when_ready(cx, ep, timeout);
    }
    let mut buf = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        (room as usize).min(HOST_BATCH)
    ];
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    // A first look without waiting: ready events are taken before any signal is looked at.
    let mut left = Some(Duration::ZERO);
    let mut ready: Vec<(u32, u64)>;
    let got = loop {
        // The monitor's items first, then the host's in the room left.
        let sigfds;
        (ready, sigfds) = virtual_ready(cx, ep, buf.len());
        let host_room = buf.len() - ready.len();
        let wait_for = if ready.is_empty() {
            left
        } else {
            Some(Duration::ZERO)
        };
        let ts = wait_for.map(timespec);
        let_signalfd_signals_kick(cx, sigfds);
        let r = if host_room == 0 {
            Ok(0)
        } else {
            epoll::wait(&ep.fd, &mut buf[..host_room], ts.as_ref())
        };
        if sigfds != 0 {
            cx.thread
                .sig
                .blocked
                .store(cx.thread.sigmask, Ordering::SeqCst);
        }
        match r {
            Ok(n) if n > 0 || !ready.is_empty() => break n,
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
    let all: Vec<(u32, u64)> = buf[..got]
        .iter()
        .map(|e| {
            let (flags, data) = (e.flags, e.data);
            (flags.bits(), data.u64())
        })
        .chain(ready)
        .collect();
    let n = all.len();
    for (i, &(flags, data)) in all.iter().enumerate() {
        let mut rec = [0u8; EVENT_SIZE as usize];
        rec[..4].copy_from_slice(&flags.to_le_bytes());
        rec[4..].copy_from_slice(&data.to_le_bytes());
        if let Err(err) = cx.space().write(cx.mem, at + i as u64 * EVENT_SIZE, &rec) {
            // ep_send_events: a fault ends the copy; only the first is an error.
            return if i == 0 { Err(err) } else { Ok(i as u64) };
        }
    }
    Ok(n as u64)
}

/// A wait whose array cannot take one event: EFAULT once an event is ready (left queued, as
/// Linux's copy fault leaves it), 0 when none came within `timeout`, EINTR for a signal.
fn fault_when_ready(
    cx: &mut Ctx<'_, '_>,
    ep: &EpollFile,
    timeout: Option<Duration>,
) -> Result<u64, Errno> {
    use rustix::event::{PollFd, PollFlags};
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    let mut left = Some(Duration::ZERO);
    loop {
        let (virt, sigfds) = {
            let mut v = locked(&ep.virt);
            v.retain(|i| i.file.strong_count() > 0);
            let ready = v.iter().any(|i| i.peek(cx));
            let sigs = v
                .iter()
                .filter_map(|i| i.file.upgrade())
                .filter_map(|f| f.as_signalfd().map(|s| s.mask()))
                .fold(0, |a, m| a | m);
            (ready, sigs)
        };
        if virt {
            return Err(Errno::EFAULT);
        }
        let ts = left.map(timespec);
        let_signalfd_signals_kick(cx, sigfds);
        // POLLIN on an epoll fd: its ready list is not empty (nothing is taken off it).
        let mut p = [PollFd::new(&ep.fd, PollFlags::IN)];
        let r = rustix::event::poll(&mut p, ts.as_ref());
        if sigfds != 0 {
            cx.thread
                .sig
                .blocked
                .store(cx.thread.sigmask, Ordering::SeqCst);
        }
        match r {
            Ok(n) if n > 0 => return Err(Errno::EFAULT),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {
                interrupted_wait(cx, ERESTARTNOHAND).map_err(|_| eintr(cx))?;
            }
            Err(e) => return Err(host_errno(e)),
        }
        if timeout == Some(Duration::ZERO) {
            return Ok(0);
        }
        if cx.interrupted() || signal_pending(cx) {
            return Err(eintr(cx));
        }
        left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(0);
        }
    }
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

/// A wait's timeout as the host's epoll and poll take it.
fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Senders of the signals in `sigfds` (the signalfds of the set) kick this thread while it
/// waits: its mirrored mask lets them through for the wait.
fn let_signalfd_signals_kick(cx: &Ctx<'_, '_>, sigfds: u64) {
    if sigfds != 0 {
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask & !sigfds, Ordering::SeqCst);
    }
}
