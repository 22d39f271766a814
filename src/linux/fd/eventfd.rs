//! eventfd(2) and eventfd2(2): every eventfd is a host eventfd of the monitor, so the counter,
//! semaphore mode, EAGAIN, the overflow EINVAL, poll and epoll readiness are the host kernel's
//! own. A read or write that blocks is a host call the vCPU kick interrupts (a signal, a stop),
//! served by the generic read/write path as a pipe's.
//!
//! What is not exact: a guest buffer of 8 bytes split across two pieces of guest RAM that are
//! not contiguous is read or written as two host calls, so the host answers EINVAL (as for a
//! short buffer); guest stacks and heaps are contiguous in practice.
use super::file::{host_status_flags, memory_io, set_host_status_flags, FileDescription};
use super::{Fd, OpenFile};
use crate::linux::abi::{oflag, Stat};
use crate::linux::io::host_errno;
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use rustix::event::EventfdFlags;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use umon_abi::Gpa;

/// EFD_SEMAPHORE.
const EFD_SEMAPHORE: u64 = 1;
/// EFD_NONBLOCK (O_NONBLOCK).
const EFD_NONBLOCK: u64 = oflag::NONBLOCK;
/// EFD_CLOEXEC (O_CLOEXEC).
const EFD_CLOEXEC: u64 = oflag::CLOEXEC;

/// An eventfd: a host eventfd.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// The eventfd behind a host fd received by SCM_RIGHTS.
    pub(crate) fn from_host(fd: OwnedFd) -> EventFd {
        EventFd { fd }
    }
}

/// The fstat of an anonymous inode (eventfd, epoll, timerfd, signalfd): mode 0600 with no
/// file type bits, owned by the caller (fs/anon_inodes.c).
pub fn anon_stat() -> Stat {
    let ids = crate::machine::host::ids();
    Stat {
        mode: 0o600,
        nlink: 1,
        uid: ids.uid as u32,
        gid: ids.gid as u32,
        blksize: 4096,
        ..Default::default()
    }
}

/// The lines of the host's `/proc/self/fdinfo/N` for host fd `fd` that start with one of
/// `keys` (what an anonymous inode kind adds to the generic ones), each passed through `map`
/// (None drops the line).
pub fn host_fdinfo_lines(
    fd: BorrowedFd<'_>,
    keys: &[&str],
    map: &dyn Fn(&str) -> Option<String>,
) -> String {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    text.lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .filter_map(map)
        .map(|l| l + "\n")
        .collect()
}

impl FileDescription for EventFd {
    fn read_piece(&self, mem: &GuestMem, gpa: Gpa, len: u64, _: Option<u64>) -> io::Result<usize> {
        mem.read_from(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    fn write_piece(&self, mem: &GuestMem, gpa: Gpa, len: u64, _: Option<u64>) -> io::Result<usize> {
        mem.write_to(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    /// sendfile's output: an eventfd has no splice_write, so Linux refuses it (EINVAL).
    fn write_bytes(&self, _: &[u8], _: Option<&mut u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    anon_host_fd_methods!();

    /// eventfd_show_fdinfo: the counter, the id and the mode, as the host shows them.
    fn fdinfo(&self, _: &dyn Fn(i32) -> Option<u64>) -> String {
        host_fdinfo_lines(self.fd.as_fd(), &["eventfd-"], &|l| Some(l.to_string()))
    }
}

/// eventfd2(initval, flags).
pub fn eventfd2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    create(cx, a.uint(0), u64::from(a.uint(1)))
}

/// eventfd(initval): eventfd2 without flags.
pub fn eventfd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    create(cx, a.uint(0), 0)
}

fn create(cx: &mut Ctx<'_, '_>, count: u32, flags: u64) -> Sys {
    if flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    // The host fd is always close-on-exec: the guest's FD_CLOEXEC is the table's.
    let host =
        EventfdFlags::from_bits_retain((flags & !EFD_CLOEXEC) as u32) | EventfdFlags::CLOEXEC;
    let fd = rustix::event::eventfd(count, host).map_err(host_errno)?;
    let file: OpenFile = Arc::new(EventFd { fd });
    let n = cx.process.fds().alloc(
        0,
        Fd {
            file,
            cloexec: flags & EFD_CLOEXEC != 0,
        },
    )?;
    Ok(n)
}
