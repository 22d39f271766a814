//! What an fd refers to, behind one trait: the operations that differ between kinds of open
//! file. The syscalls in `linux/io.rs` and `linux/fs/` are written once against it; a new kind
//! (pipe, eventfd, socket, epoll, timerfd) is one more impl here, touching no existing `match`.
//!
//! Today's kinds: [`VolumeFile`] (a file or directory opened in a volume: a host fd) and
//! [`StdioFile`] (the application's stdin, stdout or stderr: umon's own fd or a caller's
//! reader/writer).
use super::{FileKind, HostFile};
use crate::linux::abi::{mode, oflag, Stat};
use crate::linux::stdio::Stdio;
use crate::machine::memory::{GuestMem, MemoryError};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use umon_abi::Gpa;

/// An open file description: shared by every fd dup'ed from it, as on Linux.
pub type OpenFile = Arc<dyn FileDescription>;

/// The operations that differ between kinds of open file.
pub trait FileDescription: Send + Sync + std::fmt::Debug {
    /// Read into one piece of guest memory, at the file offset or at `pos` (pread). A short
    /// count ends the call.
    fn read_piece(&self, mem: &GuestMem, gpa: Gpa, len: u64, pos: Option<u64>)
        -> io::Result<usize>;

    /// Write one piece of guest memory, at the file offset (or its end, O_APPEND) or at `pos`.
    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize>;

    /// Write host bytes (sendfile's output), at `*pos` (advanced) or the file offset: the count
    /// written; EPIPE when nobody reads.
    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize>;

    /// Whether a transfer continues past the first guest buffer piece in one call (a regular
    /// file); a stream stops after the first so it never blocks again once something moved.
    fn regular(&self) -> bool {
        false
    }

    /// Whether a read or write of it never waits (a regular file, the memory devices): the
    /// exit-less server may run it (`linux::exitless`), a call that can block never.
    fn never_blocks(&self) -> bool {
        self.regular()
    }

    /// Whether the object is a regular file on the host: Linux copies such a transfer page by
    /// page, so a buffer that turns bad part-way moves the bytes before the fault.
    fn partial_copies(&self) -> bool {
        self.regular()
    }

    /// The host fd behind it, when there is one: poll, RLIMIT_FSIZE, locks.
    fn host_fd(&self) -> Option<BorrowedFd<'_>>;

    /// The terminal behind it, for the tty ioctls (only umon's own streams forward them).
    fn tty(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// fstat.
    fn stat(&self) -> Result<Stat, rustix::io::Errno>;

    /// F_GETFL: the status flags (without O_CLOEXEC, an fd flag).
    fn status_flags(&self) -> Result<u64, rustix::io::Errno>;

    /// F_SETFL / FIONBIO: change the status flags in `mask` to `bits`; the shared standard
    /// streams stay as they are.
    fn set_status_flags(&self, _mask: u32, _bits: u32) -> Result<(), rustix::io::Errno> {
        Ok(())
    }

    /// Opened for reading (sendfile's input side).
    fn readable(&self) -> bool;

    /// Opened for writing (sendfile's output side).
    fn writable(&self) -> bool;

    /// The volume file, for the calls only a file in a volume serves (paths relative to it,
    /// seeking, truncation, metadata, mmap).
    fn as_volume(&self) -> Option<&Arc<HostFile>> {
        None
    }

    /// The signalfd, whose read and poll depend on the calling thread.
    fn as_signalfd(&self) -> Option<&super::signalfd::SignalFd> {
        None
    }

    /// The pipe end, for the calls only a pipe serves (F_GETPIPE_SZ, FIONREAD, vmsplice) and
    /// its own read and write paths.
    fn as_pipe(&self) -> Option<&super::pipe::PipeEnd> {
        None
    }

    /// The socket, for the socket calls.
    fn as_socket(&self) -> Option<&crate::linux::net::socket::Socket> {
        None
    }

    /// The inotify instance, for its zero-length read and FIONREAD.
    fn as_inotify(&self) -> Option<&super::inotify::InotifyFile> {
        None
    }

    /// The synthetic file (`/dev`, `/proc`, `/sys`), for getdents and lookups relative to it.
    fn as_synthetic(&self) -> Option<&crate::linux::fs::synthetic::SynthFile> {
        None
    }

    /// The epoll instance, for epoll_ctl and epoll_wait.
    fn as_epoll(&self) -> Option<&super::epoll::EpollFile> {
        None
    }

    /// The timerfd, for timerfd_settime and timerfd_gettime.
    fn as_timerfd(&self) -> Option<&super::timerfd::TimerFd> {
        None
    }

    /// The lines the kind adds to `/proc/<pid>/fdinfo/N` (`guest_fd_of` names a host fd by
    /// the guest's number, for lines that list other fds).
    fn fdinfo(&self, _guest_fd_of: &dyn Fn(i32) -> Option<u64>) -> String {
        String::new()
    }
}

/// A guest-memory failure as an I/O error: host I/O's own, else EFAULT.
pub(crate) fn memory_io(e: MemoryError) -> io::Error {
    match e {
        MemoryError::Io(io) => io,
        _ => io::Error::from_raw_os_error(libc::EFAULT),
    }
}

/// EBADF as an I/O error.
pub(crate) fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// ESPIPE as an I/O error: a position given for a file that has none (pipe, terminal, event
/// queue).
pub(crate) fn espipe() -> io::Error {
    io::Error::from_raw_os_error(libc::ESPIPE)
}

/// `write_bytes` without a position: as much of `buf` as the host fd takes at its own offset
/// (short writes continued); an error after some bytes ends it with the count, as Linux's
/// write returns what it moved.
pub(crate) fn write_at_offset(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::write(fd, &buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// The most bytes `file` may hold when it is memory umon made for the application outside
/// every volume (a memfd): its pages are the host's memory, so it is a file on a tmpfs the size
/// of the application's memory (`-m`, the bytes its anonymous memory may occupy). A write or
/// fallocate that would go past it is cut short there, ENOSPC when no byte fits. (Linux's
/// memfds have no such limit; a tmpfs counts blocks rather than the file's length, which here
/// bounds both.) None for a file in a volume and for every other kind.
pub(crate) fn memory_file_cap(
    cx: &crate::linux::Ctx<'_, '_>,
    file: &dyn FileDescription,
) -> Option<u64> {
    let h = file.as_volume()?;
    if h.kind != FileKind::Regular || cx.process.fs().get_mount(h.mount).is_some() {
        return None;
    }
    Some(cx.process.space().backing_limit_bytes())
}

/// A write of `len` bytes at `pos` to a file that holds at most `cap` bytes
/// ([`memory_file_cap`]): the bytes that fit, ENOSPC when none does.
pub(crate) fn within_cap(pos: u64, len: u64, cap: Option<u64>) -> Result<u64, syscalls::Errno> {
    match cap {
        Some(cap) if len > 0 && pos >= cap => Err(syscalls::Errno::ENOSPC),
        Some(cap) => Ok(len.min(cap.saturating_sub(pos))),
        None => Ok(len),
    }
}

/// The status flags of a host fd as the guest sees them. The host adds O_CLOEXEC to every fd it
/// opens for the guest; that is an fd flag, never a status flag the guest sees.
pub(crate) fn host_status_flags(fd: BorrowedFd<'_>) -> Result<u64, rustix::io::Errno> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    Ok(u64::from(flags.bits()) & !oflag::CLOEXEC)
}

/// F_SETFL on a host fd: the bits in `mask` become `bits`, the others stay.
pub(crate) fn set_host_status_flags(
    fd: BorrowedFd<'_>,
    mask: u32,
    bits: u32,
) -> Result<(), rustix::io::Errno> {
    let keep = rustix::fs::fcntl_getfl(fd)?;
    let want = rustix::fs::OFlags::from_bits_retain((keep.bits() & !mask) | (bits & mask));
    rustix::fs::fcntl_setfl(fd, want)
}

/// A file or directory opened in a volume.
#[derive(Debug)]
pub struct VolumeFile(pub Arc<HostFile>);

impl FileDescription for VolumeFile {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        let fd = &self.0.fd;
        match pos {
            None => mem.read_from(gpa, len, &mut &*fd),
            Some(p) => mem.read_from_at(gpa, len, fd.as_fd(), p),
        }
        .map_err(memory_io)
    }

    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        let fd = &self.0.fd;
        match pos {
            None => mem.write_to(gpa, len, &mut &*fd),
            Some(p) => mem.write_to_at(gpa, len, fd.as_fd(), p),
        }
        .map_err(memory_io)
    }

    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize> {
        let fd = &self.0.fd;
        let mut done = 0;
        match pos {
            Some(pos) => {
                while done < buf.len() {
                    let n = rustix::io::pwrite(fd, &buf[done..], *pos)?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                    *pos += n as u64;
                }
            }
            None => done = write_at_offset(fd.as_fd(), buf)?,
        }
        Ok(done)
    }

    fn regular(&self) -> bool {
        self.0.kind == FileKind::Regular
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.fd.as_fd())
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        rustix::fs::fstat(&self.0.fd).map(|s| Stat::from_host(&s))
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        host_status_flags(self.0.fd.as_fd())
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        set_host_status_flags(self.0.fd.as_fd(), mask, bits)
    }

    fn readable(&self) -> bool {
        self.0.readable && !self.0.path_only
    }

    fn writable(&self) -> bool {
        self.0.writable && !self.0.path_only
    }

    fn as_volume(&self) -> Option<&Arc<HostFile>> {
        Some(&self.0)
    }
}

/// The application's stdin (0), stdout (1) or stderr (2).
#[derive(Debug)]
pub struct StdioFile {
    /// Which stream.
    pub n: u8,
    /// The process's streams.
    pub stdio: Arc<Stdio>,
}

impl std::fmt::Debug for Stdio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stdio")
    }
}

impl FileDescription for StdioFile {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        match self.n {
            0 => self.stdio.stdin.read_guest(mem, gpa, len),
            _ => Err(ebadf()),
        }
    }

    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        match self.n {
            1 => self.stdio.stdout.write_guest(mem, gpa, len),
            2 => self.stdio.stderr.write_guest(mem, gpa, len),
            _ => Err(ebadf()),
        }
    }

    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize> {
        let sink = match (self.n, pos) {
            (1, None) => &self.stdio.stdout,
            (2, None) => &self.stdio.stderr,
            _ => return Err(ebadf()),
        };
        sink.write_all(buf).map(|()| buf.len())
    }

    /// umon's own stream when it is a regular file on the host (`umon run app > file`).
    fn partial_copies(&self) -> bool {
        self.host_fd()
            .and_then(|fd| rustix::fs::fstat(fd).ok())
            .is_some_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdio.host_fd(self.n)
    }

    fn tty(&self) -> Option<BorrowedFd<'_>> {
        self.host_fd().filter(|fd| rustix::termios::isatty(fd))
    }

    fn never_blocks(&self) -> bool {
        self.stdio.never_blocks(self.n)
    }

    /// The host's view of umon's own stream, or a pipe when the stream is a caller-supplied
    /// reader/writer.
    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        let ids = crate::machine::host::ids();
        let synthetic = Stat {
            mode: mode::S_IFIFO | 0o600,
            nlink: 1,
            uid: ids.uid as u32,
            gid: ids.gid as u32,
            blksize: 4096,
            ..Default::default()
        };
        let Some(fd) = self.host_fd() else {
            return Ok(synthetic);
        };
        Ok(rustix::fs::fstat(fd)
            .map(|s| Stat::from_host(&s))
            .unwrap_or(synthetic))
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        Ok(match self.host_fd() {
            Some(h) => rustix::fs::fcntl_getfl(h)
                .map(|f| u64::from(f.bits()))
                .unwrap_or(0),
            None if self.n == 0 => oflag::RDONLY,
            None => oflag::WRONLY,
        })
    }

    fn readable(&self) -> bool {
        self.n == 0
    }

    fn writable(&self) -> bool {
        self.n != 0
    }
}
