//! signalfd(2): an fd whose reads take the reading thread's pending signals of a mask (its own
//! queue first, then the process's) as `struct signalfd_siginfo` records (fs/signalfd.c).
//! What it reads depends on who reads, so read and poll are served here with the caller's
//! context ([`read`], [`ready`]); the [`FileDescription`] half covers what is the same for
//! every reader (fstat, the status flags, no writes).
use super::file::FileDescription;
use super::Fd;
use crate::linux::abi::{oflag, SigInfo, Stat, TASK_SIZE_MAX};
use crate::linux::signal::deliver::{self, dequeue, pending_set, signal_pending};
use crate::linux::signal::UNBLOCKABLE;
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use syscalls::Errno;
use umon_abi::Gpa;
use zerocopy::{Immutable, IntoBytes};

/// SFD_NONBLOCK (O_NONBLOCK).
const SFD_NONBLOCK: u64 = oflag::NONBLOCK;
/// SFD_CLOEXEC (O_CLOEXEC).
const SFD_CLOEXEC: u64 = oflag::CLOEXEC;

/// struct signalfd_siginfo (uapi/linux/signalfd.h), 128 bytes.
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub pad: [u8; 28],
}

/// Its size: a read needs room for one.
pub const SIGINFO_SIZE: u64 = std::mem::size_of::<SignalfdSiginfo>() as u64;
const _: () = assert!(SIGINFO_SIZE == 128);

/// Which union member of a siginfo is valid (kernel/signal.c `siginfo_layout`).
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    Kill,
    Timer,
    Poll,
    Fault,
    Chld,
    Rt,
    Sys,
}

/// `siginfo_layout(sig, code)`: a positive code below SI_KERNEL names a member by signal (up
/// to that signal's count of codes), SI_TIMER a timer, SI_SIGIO a poll event, any other
/// negative code (sigqueue, tkill, mq, async I/O) the real-time member.
fn layout(sig: i32, code: i32) -> Layout {
    const SI_TIMER: i32 = -2;
    const SI_SIGIO: i32 = -5;
    // NSIGPOLL: the codes POLL_IN..POLL_HUP of any signal without its own set.
    const NSIGPOLL: i32 = 6;
    if code > crate::linux::abi::SI_USER && code < crate::linux::abi::SI_KERNEL {
        let own = match sig {
            libc::SIGILL => Some((11, Layout::Fault)),
            libc::SIGFPE => Some((15, Layout::Fault)),
            libc::SIGSEGV => Some((10, Layout::Fault)),
            libc::SIGBUS => Some((5, Layout::Fault)),
            libc::SIGTRAP => Some((6, Layout::Fault)),
            libc::SIGCHLD => Some((6, Layout::Chld)),
            libc::SIGPOLL => Some((6, Layout::Poll)),
            libc::SIGSYS => Some((2, Layout::Sys)),
            _ => None,
        };
        match own {
            Some((limit, l)) if code <= limit => l,
            _ if code <= NSIGPOLL => Layout::Poll,
            _ => Layout::Kill,
        }
    } else if code == SI_TIMER {
        Layout::Timer
    } else if code == SI_SIGIO {
        Layout::Poll
    } else if code < 0 {
        Layout::Rt
    } else {
        Layout::Kill
    }
}

/// A siginfo as signalfd reports it (fs/signalfd.c `signalfd_copyinfo`): only the members
/// its layout makes valid, the rest zero.
pub fn to_signalfd(info: &SigInfo) -> SignalfdSiginfo {
    let f = &info.fields;
    let lo = |w: u64| w as u32;
    let hi = |w: u64| (w >> 32) as u32;
    let mut s = SignalfdSiginfo {
        ssi_signo: info.signo as u32,
        ssi_errno: info.errno,
        ssi_code: info.code,
        ..Default::default()
    };
    match layout(info.signo, info.code) {
        Layout::Kill => (s.ssi_pid, s.ssi_uid) = (lo(f[0]), hi(f[0])),
        Layout::Timer => {
            (s.ssi_tid, s.ssi_overrun) = (lo(f[0]), hi(f[0]));
            (s.ssi_ptr, s.ssi_int) = (f[1], lo(f[1]) as i32);
        }
        Layout::Rt => {
            (s.ssi_pid, s.ssi_uid) = (lo(f[0]), hi(f[0]));
            (s.ssi_ptr, s.ssi_int) = (f[1], lo(f[1]) as i32);
        }
        // si_band is a long; signalfd keeps its low 32 bits.
        Layout::Poll => (s.ssi_band, s.ssi_fd) = (lo(f[0]), lo(f[1]) as i32),
        // SIGSYS's si_call_addr shares si_addr's place; signalfd copies it as a fault's.
        Layout::Fault | Layout::Sys => s.ssi_addr = f[0],
        Layout::Chld => {
            (s.ssi_pid, s.ssi_uid) = (lo(f[0]), hi(f[0]));
            s.ssi_status = lo(f[1]) as i32;
            (s.ssi_utime, s.ssi_stime) = (f[2], f[3]);
        }
    }
    s
}

/// A signalfd's open file description: its mask (changed by signalfd() on the same fd) and
/// O_NONBLOCK.
#[derive(Debug)]
pub struct SignalFd {
    mask: AtomicU64,
    nonblock: AtomicBool,
}

impl SignalFd {
    /// The signals it takes (never SIGKILL or SIGSTOP).
    pub fn mask(&self) -> u64 {
        self.mask.load(Ordering::SeqCst)
    }
}

/// EINVAL as an I/O error: a signalfd has no write (and only [`read`] reads it).
fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

impl FileDescription for SignalFd {
    fn read_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(einval())
    }

    fn write_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(einval())
    }

    fn write_bytes(&self, _: &[u8], _: Option<&mut u64>) -> io::Result<usize> {
        Err(einval())
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// An anonymous inode: mode 0600, owned by the caller.
    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        let ids = crate::machine::host::ids();
        Ok(Stat {
            mode: 0o600,
            nlink: 1,
            uid: ids.uid as u32,
            gid: ids.gid as u32,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        let nb = if self.nonblock.load(Ordering::SeqCst) {
            oflag::NONBLOCK
        } else {
            0
        };
        Ok(oflag::RDWR | nb)
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        let nb = oflag::NONBLOCK as u32;
        if mask & nb != 0 {
            self.nonblock.store(bits & nb != 0, Ordering::SeqCst);
        }
        Ok(())
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        true
    }

    fn as_signalfd(&self) -> Option<&SignalFd> {
        Some(self)
    }
}

/// signalfd4(fd, mask, sizemask, flags): a new signalfd taking the signals of `mask` (fd -1),
/// or a new mask for signalfd `fd`.
pub fn signalfd4(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    create_or_update(cx, a, u64::from(a.uint(3)))
}

/// signalfd(fd, mask, sizemask): signalfd4 without flags.
pub fn signalfd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    create_or_update(cx, a, 0)
}

fn create_or_update(cx: &mut Ctx<'_, '_>, a: &Args, flags: u64) -> Sys {
    if a.len(2) != 8 {
        return Err(Errno::EINVAL.into());
    }
    let mask = cx.read_val::<u64>(a.ptr(1))?;
    if flags & !(SFD_NONBLOCK | SFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mask = mask & !UNBLOCKABLE;
    let ufd = a.int(0);
    if ufd == -1 {
        let file = std::sync::Arc::new(SignalFd {
            mask: AtomicU64::new(mask),
            nonblock: AtomicBool::new(flags & SFD_NONBLOCK != 0),
        });
        let fd = cx.process.fds().alloc(
            0,
            Fd {
                file,
                cloexec: flags & SFD_CLOEXEC != 0,
            },
        )?;
        return Ok(fd);
    }
    let file = cx.process.fds().get(ufd as u32 as u64)?.file;
    // Linux's fdget refuses an O_PATH fd (EBADF) before the kind is looked at.
    if file.status_flags().is_ok_and(|f| f & oflag::PATH != 0) {
        return Err(Errno::EBADF.into());
    }
    let sfd = file.as_signalfd().ok_or(Errno::EINVAL)?;
    sfd.mask.store(mask, Ordering::SeqCst);
    // A reader of this fd on another thread looks again with the new mask.
    for t in cx.process.thread_sigs() {
        t.parker.unpark();
    }
    Ok(ufd as u64)
}

/// Whether the calling thread could read a signal from `sfd` now (POLLIN).
pub fn ready(cx: &Ctx<'_, '_>, sfd: &SignalFd) -> bool {
    pending_set(cx.process, &cx.thread.sig) & sfd.mask() != 0
}

/// read(2) of a signalfd: as many records as fit in `len` (EINVAL if not one), the first
/// waited for unless O_NONBLOCK (EAGAIN), the others only if pending. A record that cannot be
/// written ends the read (EFAULT if it was the first); its signal is gone, as on Linux.
pub fn read(cx: &mut Ctx<'_, '_>, sfd: &SignalFd, buf: u64, len: u64) -> Sys {
    // vfs_read's access_ok comes first: a buffer reaching into the kernel half is EFAULT
    // before any signal is taken off the queue.
    if buf.checked_add(len).is_none_or(|end| end > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT.into());
    }
    let count = len / SIGINFO_SIZE;
    if count == 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut done = 0u64;
    while done < count {
        let info = match dequeue(cx.process, &cx.thread.sig, !sfd.mask()) {
            Some(info) => info,
            None if done > 0 => break,
            None => wait(cx, sfd)?,
        };
        let rec = to_signalfd(&info);
        if let Err(e) = cx.write_val(buf + done * SIGINFO_SIZE, &rec) {
            if done == 0 {
                return Err(e.into());
            }
            break;
        }
        done += 1;
    }
    Ok(done * SIGINFO_SIZE)
}

/// Wait for a signal of the mask (EAGAIN when nonblocking). Meanwhile senders see the mask's
/// signals as unblocked, so they wake this thread (Linux wakes signalfd readers on every
/// send); another signal ends the wait with ERESTARTSYS.
fn wait(cx: &mut Ctx<'_, '_>, sfd: &SignalFd) -> Result<SigInfo, Errno> {
    if sfd.nonblock.load(Ordering::SeqCst) {
        return Err(Errno::EAGAIN);
    }
    let got = loop {
        let mask = sfd.mask();
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask & !mask, Ordering::SeqCst);
        if let Some(info) = dequeue(cx.process, &cx.thread.sig, !mask) {
            break Ok(info);
        }
        if cx.interrupted() {
            break Err(Errno::EINTR);
        }
        if signal_pending(cx) {
            break Err(deliver::restart(deliver::ERESTARTSYS));
        }
        cx.thread.parker.park(None);
    };
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    got
}

/// poll's wait when all it polls are signalfds (taking the signals of `mask`): until one of
/// `mask` is pending for the caller or `timeout` passes (Ok either way), or another signal
/// arrives (ERESTARTNOHAND) or the VM stops (EINTR).
pub fn wait_ready(cx: &mut Ctx<'_, '_>, mask: u64, timeout: Option<Duration>) -> Result<(), Errno> {
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask & !mask, Ordering::SeqCst);
    let got = loop {
        if pending_set(cx.process, &cx.thread.sig) & mask != 0 {
            break Ok(());
        }
        if cx.interrupted() {
            break Err(Errno::EINTR);
        }
        if signal_pending(cx) {
            break Err(deliver::restart(deliver::ERESTARTNOHAND));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        cx.thread.parker.park(deadline);
    };
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_each_member() {
        let mut i = SigInfo {
            signo: libc::SIGRTMIN(),
            code: -1,
            ..Default::default()
        };
        i.fields[0] = 7 | (1000 << 32);
        i.fields[1] = 0xdead_beef_0000_002a;
        let s = to_signalfd(&i);
        assert_eq!((s.ssi_pid, s.ssi_uid, s.ssi_int), (7, 1000, 42));
        assert_eq!(s.ssi_ptr, 0xdead_beef_0000_002a);
        i.code = 0;
        let s = to_signalfd(&i);
        assert_eq!(
            (s.ssi_pid, s.ssi_uid, s.ssi_int, s.ssi_ptr),
            (7, 1000, 0, 0)
        );
        i.signo = libc::SIGSEGV;
        i.code = 1;
        let s = to_signalfd(&i);
        assert_eq!((s.ssi_addr, s.ssi_pid), (i.fields[0], 0));
        // A positive code past SIGSEGV's own and past the poll codes: kill's member.
        assert_eq!(layout(libc::SIGSEGV, 11), Layout::Kill);
        assert_eq!(
            layout(libc::SIGSEGV, crate::linux::abi::SI_KERNEL),
            Layout::Kill
        );
        assert_eq!(layout(libc::SIGUSR1, 3), Layout::Poll);
        assert_eq!(layout(libc::SIGUSR1, -2), Layout::Timer);
        assert_eq!(layout(libc::SIGCHLD, 1), Layout::Chld);
    }
}
