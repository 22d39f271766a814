//! File-descriptor I/O: read, write and their vectored and positioned forms, lseek, fstat,
//! ioctl, poll, dup and fcntl, sendfile and copy_file_range, and private file mappings, on the
//! standard streams and on host files opened in volumes. Bytes move straight between the host fd
//! and guest memory (vm-memory's volatile I/O), never through a bounce buffer; a large transfer
//! is one host call per physically contiguous piece of the guest buffer. Paths are `fs.rs`'s.
use super::abi::{fcntl, ioctl as tio, mman, oflag, Flock, Iovec, PollFd, Timespec, TERMIOS_BYTES};
use super::fd::{memfd, Fd, FileKind, HostFile, OpenFile};
use super::fs::synthetic::SynthFile;
use super::signal::deliver::{pending_set, restart, signal_pending, ERESTARTNOHAND, ERESTARTSYS};
use super::{Args, Ctx, Stop, Sys};
use crate::exit::ExitStatus;
use crate::linux::mm::space::Access;
use crate::machine::memory::MemoryError;
use crate::machine::paging::PAGE_4K;
use rustix::fs::SeekFrom;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;
use syscalls::Errno;

/// Largest single transfer, as Linux caps it (MAX_RW_COUNT).
pub(crate) const MAX_RW: u64 = 0x7fff_f000;
pub use super::abi::PATH_MAX;
/// Most iovecs in one readv/writev (UIO_MAXIOV).
const MAX_IOV: u64 = 1024;

/// FIONCLEX / FIOCLEX: clear / set close-on-exec.
const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;
/// SEEK_DATA / SEEK_HOLE.
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;
/// fcntl(F_SETFL) flags a host file may change (the rest are fixed at open, as on Linux).
/// O_ASYNC is not among them: no SIGIO may reach the monitor.
const SETFL_MASK: u32 = (oflag::APPEND | oflag::NONBLOCK | oflag::DIRECT | oflag::NOATIME) as u32;

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::EIO)
}

/// A host errno, passed through to the application.
pub(crate) fn host_errno(e: rustix::io::Errno) -> Errno {
    Errno::new(e.raw_os_error())
}

/// A guest-memory failure as the application sees it: the host's errno for host I/O, else
/// EFAULT.
pub(crate) fn mem_errno(e: MemoryError) -> Errno {
    io_errno(crate::linux::fd::file::memory_io(e))
}

/// A blocking host call returned EINTR: the kick of a stop (EINTR; the run loop then ends
/// the thread) or of a signal (`kind`: ERESTARTSYS for reads and writes, ERESTARTNOHAND for
/// poll), else spurious (Ok: the caller tries again).
pub(crate) fn interrupted_wait(cx: &Ctx<'_, '_>, kind: i32) -> Result<(), Errno> {
    if cx.interrupted() {
        return Err(Errno::EINTR);
    }
    // Acknowledged here, so the kicker stops kicking a call that goes on; a signal to take
    // still ends it.
    cx.thread
        .sig
        .hint
        .store(false, std::sync::atomic::Ordering::SeqCst);
    if signal_pending(cx) {
        return Err(restart(kind));
    }
    Ok(())
}

pub fn read(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    whole_count_ok(file.readable(), a.ptr(1), a.len(2))?;
    read_into(cx, &file, a.ptr(1), a.len(2).min(MAX_RW), None)
}

/// vfs_read/vfs_write's first checks: EBADF for a file not open for the transfer, then
/// access_ok on the count the caller passed, before it is cut to MAX_RW (a small buffer with a
/// count reaching past the user half is EFAULT even if fewer bytes would move).
fn whole_count_ok(open_for_it: bool, buf: u64, count: u64) -> Result<(), Errno> {
    if !open_for_it {
        return Err(Errno::EBADF);
    }
    access_ok(buf, count)
}

/// The part of `[buf, buf + len)` a transfer may use (see
/// [`crate::linux::fd::FileDescription::partial_copies`]).
fn usable(
    cx: &Ctx<'_, '_>,
    file: &OpenFile,
    buf: u64,
    len: u64,
    access: Access,
) -> Result<u64, Errno> {
    if !file.partial_copies() {
        cx.space().chunks(buf, len, access)?;
        return Ok(len);
    }
    access_ok(buf, len)?;
    Ok(cx.space().accessible(buf, len, access))
}

/// Linux's access_ok: the whole range lies in the user half.
fn access_ok(buf: u64, len: u64) -> Result<(), Errno> {
    match buf.checked_add(len) {
        Some(end) if end <= super::abi::TASK_SIZE_MAX => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Whether a regular file's position (`pos`, else its offset) is at or past its end (a read
/// there copies nothing, so a bad buffer is never noticed).
fn at_eof(h: &HostFile, pos: Option<u64>) -> bool {
    let pos = match pos {
        Some(p) => Ok(p),
        None => rustix::fs::seek(&h.fd, SeekFrom::Current(0)),
    };
    let size = rustix::fs::fstat(&h.fd).map(|s| s.st_size.max(0) as u64);
    matches!((pos, size), (Ok(p), Ok(s)) if p >= s)
}

/// One read(2) at the file's current position, or one pread(2) at `pos`.
fn read_into(cx: &mut Ctx<'_, '_>, file: &OpenFile, buf: u64, len: u64, pos: Option<u64>) -> Sys {
    if let Some(s) = file.as_synthetic() {
        s.refresh(cx, pos);
    }
    if let Some(sfd) = file.as_signalfd() {
        return match pos {
            None => super::fd::signalfd::read(cx, sfd, buf, len),
            Some(_) => Err(Errno::ESPIPE.into()),
        };
    }
    if let Some(p) = file.as_pipe() {
        return super::fd::pipe::read(cx, p, &[Iovec { base: buf, len }]);
    }
    if let Some(s) = file.as_socket() {
        return super::net::socket::read(cx, s, &[Iovec { base: buf, len }]);
    }
    if let (Some(ino), 0) = (file.as_inotify(), len) {
        return loop {
            match ino.read_nothing() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    interrupted_wait(cx, ERESTARTSYS)?;
                }
                r => break r.map(|n| n as u64).map_err(|e| io_errno(e).into()),
            }
        };
    }
    let n = usable(cx, file, buf, len, Access::Write)?;
    if n == 0 && len > 0 {
        if let Some(h) = file.as_volume() {
            if at_eof(h, pos) {
                return Ok(0);
            }
        }
        return Err(Errno::EFAULT.into());
    }
    let chunks = cx.space().chunks(buf, n, Access::Write)?;
    let mut done = 0u64;
    for (gpa, n) in chunks {
        let at = pos.map(|p| p.saturating_add(done));
        let got = loop {
            match file.read_piece(cx.mem, gpa, n, at) {
                Err(e) if done == 0 && e.raw_os_error() == Some(libc::EINTR) => {
                    interrupted_wait(cx, ERESTARTSYS)?;
                }
                r => break r,
            }
        };
        match got {
            Ok(got) => {
                done += got as u64;
                if (got as u64) < n || !file.regular() {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(io_errno(e).into()),
        }
    }
    Ok(done)
}

pub fn write(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    whole_count_ok(file.writable(), a.ptr(1), a.len(2))?;
    write_from(cx, &file, a.ptr(1), a.len(2).min(MAX_RW), None)
}

/// A write of `total` bytes to /dev/null, /dev/zero or /dev/full open for writing, answered as
/// Linux's mem driver does without reading the buffers: null and zero take the whole count
/// (write_null), full refuses with ENOSPC (write_full; a `vectored` write with nothing to
/// write calls it for no segment: 0). None for any other file.
fn mem_device_write(file: &OpenFile, total: u64, vectored: bool) -> Option<Sys> {
    let s = file.as_synthetic().filter(|_| file.writable())?;
    if s.discards_writes() {
        Some(Ok(total.min(MAX_RW)))
    } else if !s.is_full() {
        None
    } else if vectored && total == 0 {
        Some(Ok(0))
    } else {
        Some(Err(Errno::ENOSPC.into()))
    }
}

/// One write(2) at the file's current position (or its end, with O_APPEND), or one pwrite(2)
/// at `pos`.
fn write_from(cx: &mut Ctx<'_, '_>, file: &OpenFile, buf: u64, len: u64, pos: Option<u64>) -> Sys {
    if let Some(p) = file.as_pipe() {
        return super::fd::pipe::write(cx, p, &[Iovec { base: buf, len }]);
    }
    if let Some(s) = file.as_socket() {
        return super::net::socket::write(cx, s, &[Iovec { base: buf, len }]);
    }
    access_ok(buf, len)?;
    if let Some(answer) = mem_device_write(file, len, false) {
        return answer;
    }
    let len = if len > 0 && file.partial_copies() {
        fsize_limit(cx, file, len, pos)?
    } else {
        len
    };
    let n = usable(cx, file, buf, len, Access::Read)?;
    if n == 0 && len > 0 {
        return Err(Errno::EFAULT.into());
    }
    let chunks = cx.space().chunks(buf, n, Access::Read)?;
    let mut done = 0u64;
    for (gpa, n) in chunks {
        let wrote = loop {
            match file.write_piece(cx.mem, gpa, n, pos.map(|p| p.saturating_add(done))) {
                Err(e) if done == 0 && e.raw_os_error() == Some(libc::EINTR) => {
                    interrupted_wait(cx, ERESTARTSYS)?;
                }
                r => break r,
            }
        };
        match wrote {
            Ok(w) => {
                done += w as u64;
                if (w as u64) < n {
                    break;
                }
            }
            Err(e) if done > 0 => {
                log::debug!("short write after {done} bytes: {e}");
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(broken_pipe(cx)),
            Err(e) => return Err(io_errno(e).into()),
        }
    }
    Ok(done)
}

/// RLIMIT_FSIZE for a write of `len` bytes at the file's position (its end with O_APPEND), as
/// Linux's generic_write_check_limits: at or past the limit the process gets SIGXFSZ (which
/// kills it by default; held while blocked) and the write fails with EFBIG; short of it, the
/// write is cut at the limit.
/// The file is a regular one: a volume file, or a standard stream umon was given as a file.
/// Then a memfd's cap ([`super::fd::file::memory_file_cap`]): cut at it, ENOSPC past it; and
/// a private `/tmp` or `/dev/shm`'s size ([`super::fs::tmpfs_admit`]): cut at its last free
/// page, ENOSPC when it is full.
pub(crate) fn fsize_limit(
    cx: &mut Ctx<'_, '_>,
    file: &OpenFile,
    len: u64,
    at: Option<u64>,
) -> Result<u64, Stop> {
    let limit = super::proc::file_size_limit(cx);
    let cap = super::fd::file::memory_file_cap(cx, &**file);
    let tmpfs = super::fs::in_tmpfs(cx, &**file);
    if limit == u64::MAX && cap.is_none() && tmpfs.is_none() {
        return Ok(len);
    }
    let Some(fd) = file.host_fd() else {
        return Ok(len);
    };
    let append = rustix::fs::fcntl_getfl(fd)
        .map_err(host_errno)?
        .contains(rustix::fs::OFlags::APPEND);
    let pos = match at {
        _ if append => rustix::fs::fstat(fd).map_err(host_errno)?.st_size.max(0) as u64,
        Some(p) => p,
        None => rustix::fs::seek(fd, SeekFrom::Current(0)).map_err(host_errno)?,
    };
    if pos >= limit {
        super::signal::raise(cx, libc::SIGXFSZ as u64, "file size limit exceeded")?;
        return Err(Errno::EFBIG.into());
    }
    let len = super::fd::file::within_cap(pos, len.min(limit - pos), cap)?;
    match tmpfs {
        Some(m) => Ok(super::fs::tmpfs_admit(cx, &m, &**file, pos, len, false)?),
        None => Ok(len),
    }
}

/// RLIMIT_FSIZE for truncating a file to `size`, as Linux's inode_newsize_ok: past the limit
/// SIGXFSZ and EFBIG (a truncate is never cut short).
pub(super) fn fsize_truncate(cx: &mut Ctx<'_, '_>, size: u64) -> Result<(), Stop> {
    if size > super::proc::file_size_limit(cx) {
        super::signal::raise(cx, libc::SIGXFSZ as u64, "file size limit exceeded")?;
        return Err(Errno::EFBIG.into());
    }
    Ok(())
}

/// Writing to a pipe nobody reads: Linux sends SIGPIPE to the writing thread, which kills the
/// process when its action is the default and it is not blocked; otherwise the write fails with
/// EPIPE (and a handler runs on the way out).
pub(crate) fn broken_pipe(cx: &mut Ctx<'_, '_>) -> Stop {
    match super::signal::raise(cx, libc::SIGPIPE as u64, "broken pipe") {
        // Like a shell, say nothing: a reader that went away is normal (`app | head`).
        Err(Stop::Exit(ExitStatus::Signaled { signal, .. })) => Stop::Exit(ExitStatus::Signaled {
            signal,
            report: String::new(),
        }),
        Err(e) => e,
        Ok(_) => Errno::EPIPE.into(),
    }
}

pub(crate) fn iovecs(cx: &Ctx<'_, '_>, at: u64, count: u64) -> Result<Vec<Iovec>, Errno> {
    if count > MAX_IOV {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(count as usize);
    for i in 0..count {
        let iov: Iovec = cx.read_val(at + i * 16)?;
        // Linux: a negative ssize_t length is EINVAL; a huge one is clamped to MAX_RW and then
        // fails its address check (EFAULT).
        if iov.len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

pub fn readv(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    readv_into(cx, &file, a.ptr(1), a.len(2), None)
}

/// For an all-or-nothing object (see [`partial_copies`]), EFAULT before anything moves if any
/// buffer of the transfer (up to MAX_RW bytes) is bad.
fn check_all(
    cx: &Ctx<'_, '_>,
    file: &OpenFile,
    iovs: &[Iovec],
    access: Access,
) -> Result<(), Errno> {
    if file.partial_copies() {
        return Ok(());
    }
    let mut total = 0u64;
    for iov in iovs {
        let len = iov.len.min(MAX_RW - total);
        cx.space().chunks(iov.base, len, access)?;
        total += len;
        if total >= MAX_RW {
            break;
        }
    }
    Ok(())
}

fn readv_into(cx: &mut Ctx<'_, '_>, file: &OpenFile, at: u64, count: u64, pos: Option<u64>) -> Sys {
    let whole = file.regular();
    // vfs_readv checks the mode before the iovecs.
    if file.as_pipe().is_some_and(|p| p.is_write()) {
        return Err(Errno::EBADF.into());
    }
    let iovs = iovecs(cx, at, count)?;
    if let Some(p) = file.as_pipe() {
        return super::fd::pipe::read(cx, p, &iovs);
    }
    if let Some(s) = file.as_socket() {
        return super::net::socket::read(cx, s, &iovs);
    }
    check_all(cx, file, &iovs, Access::Write)?;
    let mut done = 0;
    for iov in iovs {
        if iov.len == 0 {
            continue;
        }
        let want = iov.len.min(MAX_RW - done);
        let n = match read_into(cx, file, iov.base, want, pos.map(|p| p + done)) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        // A stream never blocks again once something arrived.
        if n < want || done >= MAX_RW || (n > 0 && !whole) {
            break;
        }
    }
    Ok(done)
}

pub fn writev(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    writev_from(cx, &file, a.ptr(1), a.len(2), None)
}

fn writev_from(
    cx: &mut Ctx<'_, '_>,
    file: &OpenFile,
    at: u64,
    count: u64,
    pos: Option<u64>,
) -> Sys {
    // vfs_writev checks the mode before the iovecs.
    let files = file.as_volume().is_some() || file.as_synthetic().is_some();
    if file.as_pipe().is_some_and(|p| !p.is_write()) || (files && !file.writable()) {
        return Err(Errno::EBADF.into());
    }
    let iovs = iovecs(cx, at, count)?;
    if let Some(p) = file.as_pipe() {
        return super::fd::pipe::write(cx, p, &iovs);
    }
    let total = iovs.iter().fold(0u64, |t, iov| t.saturating_add(iov.len));
    if let Some(answer) = mem_device_write(file, total, true) {
        return answer;
    }
    if let Some(s) = file.as_socket() {
        return super::net::socket::write(cx, s, &iovs);
    }
    check_all(cx, file, &iovs, Access::Read)?;
    let mut done = 0;
    for iov in iovs {
        let want = iov.len.min(MAX_RW - done);
        let n = match write_from(cx, file, iov.base, want, pos.map(|p| p + done)) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if n < want || done >= MAX_RW {
            break;
        }
    }
    Ok(done)
}

/// The file behind a positioned call at `offset`: EINVAL for a negative offset (before the
/// fd, as ksys_pread64), ESPIPE for what has no file position (the standard streams, pipes,
/// signalfd and inotify fds). Volume files and the synthetic /dev, /proc and /sys files take
/// positioned calls, as Linux's (FMODE_PREAD).
fn seekable(cx: &Ctx<'_, '_>, fd: u64, offset: u64) -> Result<OpenFile, Errno> {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let file = cx.process.fds().get(fd)?.file;
    if file.as_volume().is_some() || file.as_synthetic().is_some() {
        Ok(file)
    } else {
        Err(Errno::ESPIPE)
    }
}

/// Linux's rw_verify_area for a positioned call: the end must not pass 2^63.
fn verify_area(offset: u64, count: u64) -> Result<(), Errno> {
    if (offset.wrapping_add(count) as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// pread64: a real positional read (pread(2) on the host), so the file offset, shared with
/// every other thread using the fd, never moves.
pub fn pread64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = seekable(cx, a.fd(0), a.off(3))?;
    whole_count_ok(file.readable(), a.ptr(1), a.len(2))?;
    let (buf, len) = (a.ptr(1), a.len(2).min(MAX_RW));
    verify_area(a.off(3), a.len(2))?;
    read_into(cx, &file, buf, len, Some(a.off(3)))
}

/// pwrite64: a real positional write (see [`pread64`]).
pub fn pwrite64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = seekable(cx, a.fd(0), a.off(3))?;
    if file.as_synthetic().is_some_and(seq_file) {
        return Err(Errno::ESPIPE.into());
    }
    whole_count_ok(file.writable(), a.ptr(1), a.len(2))?;
    let (buf, len) = (a.ptr(1), a.len(2).min(MAX_RW));
    verify_area(a.off(3), a.len(2))?;
    write_from(cx, &file, buf, len, Some(a.off(3)))
}

/// preadv/pwritev: on x86-64 the whole offset is in the low half (argument 3).
pub fn preadv(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = seekable(cx, a.fd(0), a.off(3))?;
    readv_into(cx, &file, a.ptr(1), a.len(2), Some(a.off(3)))
}

/// pwritev: see [`preadv`].
pub fn pwritev(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = seekable(cx, a.fd(0), a.off(3))?;
    writev_from(cx, &file, a.ptr(1), a.len(2), Some(a.off(3)))
}

/// preadv2/pwritev2's flags (RWF_*) umon takes: HIPRI (a polling hint for O_DIRECT), DSYNC
/// and SYNC (a write is written back before the call returns; no effect on a read).
const RWF_HIPRI: u64 = 0x1;
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;

/// The file of a preadv2/pwritev2 at `pos` (-1: the file position, as readv/writev), with its
/// flags checked: EINVAL below -1, EBADF, ESPIPE for a positioned call on a stream, then
/// EOPNOTSUPP for the flags umon does not take (NOWAIT, APPEND, NOAPPEND, ATOMIC, DONTCACHE:
/// Linux's answer where a file cannot do them; unknown bits get it too).
fn rw2_file(cx: &Ctx<'_, '_>, fd: u64, pos: u64, flags: u64) -> Result<OpenFile, Errno> {
    let file = match pos as i64 {
        -1 => cx.process.fds().get(fd)?.file,
        _ => seekable(cx, fd, pos)?,
    };
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(file)
}

/// preadv2(fd, iov, iovcnt, pos_l, pos_h, flags): on x86-64 the offset is pos_l.
pub fn preadv2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pos, flags) = (a.off(3), u64::from(a.uint(5)));
    let file = rw2_file(cx, a.fd(0), pos, flags)?;
    let at = (pos as i64 != -1).then_some(pos);
    readv_into(cx, &file, a.ptr(1), a.len(2), at)
}

/// pwritev2: see [`preadv2`]; RWF_DSYNC/RWF_SYNC write a volume file back before returning.
pub fn pwritev2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pos, flags) = (a.off(3), u64::from(a.uint(5)));
    let file = rw2_file(cx, a.fd(0), pos, flags)?;
    let at = (pos as i64 != -1).then_some(pos);
    let n = writev_from(cx, &file, a.ptr(1), a.len(2), at)?;
    if let Some(h) = file.as_volume().filter(|_| n > 0) {
        if flags & RWF_SYNC != 0 {
            rustix::fs::fsync(&h.fd).map_err(host_errno)?;
        } else if flags & RWF_DSYNC != 0 {
            rustix::fs::fdatasync(&h.fd).map_err(host_errno)?;
        }
    }
    Ok(n)
}

pub fn lseek(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let (offset, whence) = (a.off(1), u64::from(a.uint(2)));
    if file.as_signalfd().is_some() {
        // Its fops' noop_llseek: the position stays 0, for any whence up to SEEK_HOLE.
        return if whence <= SEEK_HOLE {
            Ok(0)
        } else {
            Err(Errno::EINVAL.into())
        };
    }
    if let Some(sf) = file.as_synthetic() {
        return synthetic_lseek(&file, sf, offset, whence);
    }
    let pos = match whence {
        0 => SeekFrom::Start(offset),
        1 => SeekFrom::Current(offset as i64),
        2 => SeekFrom::End(offset as i64),
        SEEK_DATA if file.as_volume().is_some() => SeekFrom::Data(offset),
        SEEK_HOLE if file.as_volume().is_some() => SeekFrom::Hole(offset),
        _ => return Err(Errno::EINVAL.into()),
    };
    let Some(fd) = file.host_fd() else {
        return Err(Errno::ESPIPE.into());
    };
    rustix::fs::seek(fd, pos).map_err(|e| host_errno(e).into())
}

/// lseek on a synthetic file, as Linux's llseek of each: the memory devices (null_lseek,
/// full_lseek, noop_llseek) always answer 0; /proc's seq files (seq_lseek) take SEEK_SET and
/// SEEK_CUR only; directories, /proc/<pid>/{cmdline,environ,auxv}, /proc/sys and /sys are
/// generic_file_llseek with the size fstat reports. An O_PATH handle is EBADF (fdget_pos).
fn synthetic_lseek(file: &OpenFile, sf: &SynthFile, offset: u64, whence: u64) -> Sys {
    if !file.readable() && !file.writable() {
        return Err(Errno::EBADF.into());
    }
    // ksys_lseek: a whence past SEEK_MAX never reaches the file's llseek.
    if whence > SEEK_HOLE {
        return Err(Errno::EINVAL.into());
    }
    let st = file.stat().map_err(host_errno)?;
    if st.mode & libc::S_IFMT == super::abi::mode::S_IFCHR {
        return Ok(0);
    }
    let pos = sf.pos() as i64;
    let offset = offset as i64;
    let seq = seq_file(sf);
    let eof = st.size;
    let to = match whence {
        0 => Some(offset),
        1 if !seq && offset == 0 => return Ok(pos as u64),
        1 => pos.checked_add(offset),
        2 if !seq => eof.checked_add(offset),
        SEEK_DATA | SEEK_HOLE if !seq => {
            if offset < 0 || offset >= eof {
                return Err(Errno::ENXIO.into());
            }
            Some(if whence == SEEK_DATA { offset } else { eof })
        }
        _ => return Err(Errno::EINVAL.into()),
    };
    match to {
        Some(to) if to >= 0 => {
            sf.set_pos(to as u64);
            Ok(to as u64)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// Whether a synthetic file is one of /proc's seq files (seq_lseek, and seq_open takes away
/// FMODE_PWRITE): every generated /proc file but cmdline, environ, auxv and /proc/sys.
fn seq_file(sf: &SynthFile) -> bool {
    let path = &sf.path;
    path.starts_with(b"/proc/")
        && !path.starts_with(b"/proc/sys/")
        && !sf.is_dir()
        && ![&b"/cmdline"[..], b"/environ", b"/auxv"]
            .iter()
            .any(|n| path.ends_with(n))
}

pub fn close(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    cx.process.fds().close(a.fd(0))?;
    Ok(0)
}

pub fn fstat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let st = file.stat().map_err(host_errno)?;
    cx.write_val(a.ptr(1), &st)?;
    Ok(0)
}

pub fn ioctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let fd = a.fd(0);
    let file = cx.process.fds().get(fd)?.file;
    let (req, arg) = (u64::from(a.uint(1)), a.raw(2));
    match req {
        tio::FIONBIO => {
            let on: i32 = cx.read_val(arg)?;
            // A volume file gets the flag (it matters for FIFOs); the shared host streams
            // stay as they are.
            let nonblock = rustix::fs::OFlags::NONBLOCK.bits();
            file.set_status_flags(nonblock, if on != 0 { nonblock } else { 0 })
                .map_err(host_errno)?;
            return Ok(0);
        }
        // The bytes of the queued events, for an inotify instance as for a pipe; a socket's
        // unread bytes (SIOCINQ).
        tio::FIONREAD
            if file.as_pipe().is_some()
                || file.as_inotify().is_some()
                || file.as_socket().is_some() =>
        {
            let fd = file.host_fd().ok_or(Errno::EBADF)?;
            let n = super::fd::pipe::unread(fd)?;
            cx.write_val(arg, &n)?;
            return Ok(0);
        }
        FIOCLEX | FIONCLEX => {
            cx.process.fds().get_mut(fd)?.cloexec = req == FIOCLEX;
            return Ok(0);
        }
        // The interface queries, answered for the application's view of the network.
        _ if super::net::ifreq::is_query(req) => {
            if let Some(s) = file.as_socket() {
                return super::net::ifreq::ioctl(cx, s.domain(), req, arg);
            }
        }
        _ => {}
    }
    let Some(fd) = file.tty() else {
        return Err(Errno::ENOTTY.into());
    };
    let os = |e: std::io::Error| Stop::from(io_errno(e));
    match req {
        tio::TCGETS => {
            let t = super::tty::tcgets(fd).map_err(os)?;
            cx.write_val(arg, &t)?;
        }
        tio::TCSETS | tio::TCSETSW | tio::TCSETSF => {
            let t: [u8; TERMIOS_BYTES] = cx.read_val(arg)?;
            super::tty::tcsets(fd, req, &t).map_err(os)?;
        }
        tio::TIOCGWINSZ => {
            let w = rustix::termios::tcgetwinsize(fd).map_err(|e| Stop::from(host_errno(e)))?;
            let bytes: [u16; 4] = [w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel];
            cx.write_val(arg, &bytes)?;
        }
        tio::TIOCSWINSZ => {
            cx.read_val::<[u16; 4]>(arg)?;
        }
        // The terminal is the process's controlling one and the process (pid 1, see info.rs)
        // leads its session and the terminal's foreground group: both ids are its pid.
        libc::TIOCGPGRP | libc::TIOCGSID => {
            cx.write_val(arg, &(cx.process.tgid as i32))?;
        }
        // tiocspgrp: EINVAL for a negative group; the one group of the pid namespace is the
        // process's own, any other names nothing (ESRCH).
        libc::TIOCSPGRP => {
            let pgrp: i32 = cx.read_val(arg)?;
            if pgrp < 0 {
                return Err(Errno::EINVAL.into());
            }
            if pgrp as u32 != cx.process.tgid {
                return Err(Errno::ESRCH.into());
            }
        }
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}

pub fn poll(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ms = a.int(2);
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    poll_fds(cx, a.ptr(0), a.len(1), timeout)
}

/// ppoll(fds, nfds, timeout, sigmask, sigsetsize): poll with `sigmask` in place meanwhile.
/// Cut short by a signal, the handler's frame restores the mask from before (as
/// rt_sigsuspend); otherwise it is restored at once.
pub fn ppoll(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = if a.ptr(2) == 0 {
        None
    } else {
        Some(super::time::duration(cx.read_val::<Timespec>(a.ptr(2))?)?)
    };
    if a.ptr(3) == 0 {
        return poll_fds(cx, a.ptr(0), a.len(1), timeout);
    }
    if a.len(4) != 8 {
        return Err(Errno::EINVAL.into());
    }
    let mask: u64 = cx.read_val(a.ptr(3))?;
    let old = cx.thread.sigmask;
    cx.thread.sigmask = mask & !super::signal::UNBLOCKABLE;
    super::signal::deliver::mask_changed(cx);
    let r = poll_fds(cx, a.ptr(0), a.len(1), timeout);
    match &r {
        Err(Stop::Errno(e)) if super::signal::deliver::is_restart(*e) => {
            cx.thread.saved_mask = Some(old);
        }
        _ => {
            cx.thread.sigmask = old;
            super::signal::deliver::mask_changed(cx);
        }
    }
    r
}

fn poll_fds(cx: &mut Ctx<'_, '_>, at: u64, nfds: u64, timeout: Option<Duration>) -> Sys {
    // nfds is an unsigned int in the kernel's prototype.
    let nfds = nfds & 0xffff_ffff;
    if nfds > cx.process.fds().limit {
        return Err(Errno::EINVAL.into());
    }
    let mut fds: Vec<PollFd> = (0..nfds)
        .map(|i| cx.read_val(at + i * 8))
        .collect::<Result<_, _>>()?;
    let count = poll_list(cx, &mut fds, timeout)?;
    for (i, p) in fds.iter().enumerate() {
        cx.write_val(at + i as u64 * 8, p)?;
    }
    Ok(count)
}

/// Poll `fds` (revents filled in) until one is ready, `timeout` passes, a signal is to be
/// taken (ERESTARTNOHAND) or a stop; the count of fds with events.
fn poll_list(cx: &mut Ctx<'_, '_>, fds: &mut [PollFd], timeout: Option<Duration>) -> Sys {
    use rustix::event::{PollFd as HostPoll, PollFlags};
    // Looked up first, so the host fds borrowed below outlive the poll.
    let files: Vec<Option<OpenFile>> = fds
        .iter()
        .map(|p| {
            (p.fd >= 0)
                .then(|| cx.process.fds().get(p.fd as u64).ok().map(|f| f.file))
                .flatten()
        })
        .collect();
    // Streams that are not host fds (captured output, supplied input) are always ready.
    let mut host: Vec<(usize, BorrowedFd<'_>)> = Vec::new();
    let mut ready_now = false;
    // The signals the signalfds among them take: waiting, a sender of one wakes the poll.
    let mut sigfds = 0u64;
    for (i, (p, file)) in fds.iter_mut().zip(&files).enumerate() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        match file {
            None => p.revents = libc::POLLNVAL,
            Some(file) => match (file.as_signalfd(), file.host_fd()) {
                (Some(sfd), _) => {
                    sigfds |= sfd.mask();
                    if super::fd::signalfd::ready(cx, sfd) {
                        p.revents = p.events & libc::POLLIN;
                    }
                }
                (None, Some(fd)) => host.push((i, fd)),
                (None, None) => p.revents = p.events & (libc::POLLIN | libc::POLLOUT),
            },
        }
        ready_now |= p.revents != 0;
    }
    let wait = if ready_now {
        Some(Duration::ZERO)
    } else {
        timeout
    };
    if host.is_empty() && sigfds != 0 && wait != Some(Duration::ZERO) {
        super::fd::signalfd::wait_ready(cx, sigfds, wait)?;
    } else if host.is_empty() {
        match wait {
            Some(d) => super::time::sleep(cx, d)?,
            // Nothing to wait for and no timeout: Linux sleeps until a signal.
            None => super::time::sleep_until_signal(cx)?,
        }
    } else {
        let mut polls: Vec<HostPoll<'_>> = host
            .iter()
            .map(|&(i, fd)| {
                HostPoll::from_borrowed_fd(fd, PollFlags::from_bits_truncate(fds[i].events as u16))
            })
            .collect();
        let end = wait.and_then(|d| std::time::Instant::now().checked_add(d));
        if wait != Some(Duration::ZERO) && signal_pending(cx) {
            // A signal the ppoll mask lets through is already pending: do_poll's first check.
            return Err(restart(ERESTARTNOHAND).into());
        }
        // Senders of the signalfds' signals kick this thread meanwhile (see wait_ready).
        cx.thread.sig.blocked.store(
            cx.thread.sigmask & !sigfds,
            std::sync::atomic::Ordering::SeqCst,
        );
        let polled = loop {
            let left = end.map(|e| e.saturating_duration_since(std::time::Instant::now()));
            let ts = left.or(wait).map(|d| rustix::time::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            match rustix::event::poll(&mut polls, ts.as_ref()) {
                Ok(_) => break Ok(()),
                // A kick: a stop, a signal (EINTR after a handler, else the call again), a
                // signal for a signalfd polled (ready), or spurious (poll on with the time left).
                Err(rustix::io::Errno::INTR) => {
                    if let Err(e) = interrupted_wait(cx, ERESTARTNOHAND) {
                        break Err(e);
                    }
                    if pending_set(cx.process, &cx.thread.sig) & sigfds != 0 {
                        break Ok(());
                    }
                }
                Err(e) => break Err(host_errno(e)),
            }
        };
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask, std::sync::atomic::Ordering::SeqCst);
        polled?;
        for (p, &(i, _)) in polls.iter().zip(&host) {
            fds[i].revents = p.revents().bits() as i16;
        }
    }
    for (p, file) in fds.iter_mut().zip(&files) {
        if let Some(sfd) = file.as_ref().and_then(|f| f.as_signalfd()) {
            if p.fd >= 0 && super::fd::signalfd::ready(cx, sfd) {
                p.revents = p.events & libc::POLLIN;
            }
        }
    }
    Ok(fds.iter().map(|p| u64::from(p.revents != 0)).sum())
}

/// Linux's POLLIN_SET, POLLOUT_SET and POLLEX_SET: the poll events that make an fd ready in
/// select's read, write and exception sets.
const SELECT_SETS: [(i16, i16); 3] = [
    (
        libc::POLLIN,
        libc::POLLIN | libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLHUP | libc::POLLERR,
    ),
    (
        libc::POLLOUT,
        libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND | libc::POLLERR,
    ),
    (libc::POLLPRI, libc::POLLPRI),
];

/// select(nfds, readfds, writefds, exceptfds, timeval).
pub fn select(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tv = a.ptr(4);
    let timeout = if tv == 0 {
        None
    } else {
        let t: super::abi::Timeval = cx.read_val(tv)?;
        // Linux carries whole seconds out of tv_usec; a negative part is EINVAL.
        let ts = Timespec {
            sec: t.sec.saturating_add(t.usec / 1_000_000),
            nsec: (t.usec % 1_000_000).saturating_mul(1000),
        };
        Some(super::time::duration(ts)?)
    };
    let start = std::time::Instant::now();
    let r = select_sets(cx, a, timeout);
    let left = |d: Duration| d.saturating_sub(start.elapsed());
    match timeout {
        Some(d) if !d.is_zero() => {
            let l = left(d);
            let t = super::abi::Timeval {
                sec: l.as_secs() as i64,
                usec: i64::from(l.subsec_micros()),
            };
            remaining_written(cx, tv, &t, r)
        }
        _ => r,
    }
}

/// pselect6(nfds, readfds, writefds, exceptfds, timespec, {sigmask, size}): select with the
/// mask in place meanwhile (see [`ppoll`]).
pub fn pselect6(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ts = a.ptr(4);
    let timeout = if ts == 0 {
        None
    } else {
        Some(super::time::duration(cx.read_val::<Timespec>(ts)?)?)
    };
    let mut mask = None;
    if a.ptr(5) != 0 {
        let [set, size]: [u64; 2] = cx.read_val(a.ptr(5))?;
        if set != 0 {
            if size != 8 {
                return Err(Errno::EINVAL.into());
            }
            mask = Some(cx.read_val::<u64>(set)?);
        }
    }
    let old = cx.thread.sigmask;
    if let Some(m) = mask {
        cx.thread.sigmask = m & !super::signal::UNBLOCKABLE;
        super::signal::deliver::mask_changed(cx);
    }
    let start = std::time::Instant::now();
    let r = select_sets(cx, a, timeout);
    if mask.is_some() {
        match &r {
            Err(Stop::Errno(e)) if super::signal::deliver::is_restart(*e) => {
                cx.thread.saved_mask = Some(old);
            }
            _ => {
                cx.thread.sigmask = old;
                super::signal::deliver::mask_changed(cx);
            }
        }
    }
    match timeout {
        Some(d) if !d.is_zero() => {
            let l = d.saturating_sub(start.elapsed());
            let t = Timespec {
                sec: l.as_secs() as i64,
                nsec: i64::from(l.subsec_nanos()),
            };
            remaining_written(cx, ts, &t, r)
        }
        _ => r,
    }
}

/// Linux writes the time left back; when it cannot, the call is not restarted (EINTR).
fn remaining_written<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    cx: &mut Ctx<'_, '_>,
    at: u64,
    left: &T,
    r: Sys,
) -> Sys {
    if cx.write_val(at, left).is_err() {
        if let Err(Stop::Errno(e)) = &r {
            if e.into_raw() == ERESTARTNOHAND {
                return Err(Errno::EINTR.into());
            }
        }
    }
    r
}

/// The fd sets of select/pselect6 (arguments 0..=3) polled: Linux's core_sys_select. nfds is
/// capped at the size of the fd table (bits past it are ignored), every set bit must name an
/// open fd (EBADF), and the sets come back with only the ready bits.
fn select_sets(cx: &mut Ctx<'_, '_>, a: &Args, timeout: Option<Duration>) -> Sys {
    let n = a.int(0);
    if n < 0 {
        return Err(Errno::EINVAL.into());
    }
    let n = (n as u64).min(cx.process.fds().capacity());
    let words = n.div_ceil(64);
    let mut sets = [Vec::new(), Vec::new(), Vec::new()];
    for (k, set) in sets.iter_mut().enumerate() {
        let at = a.ptr(1 + k);
        if at != 0 {
            *set = (0..words)
                .map(|w| cx.read_val::<u64>(at + w * 8))
                .collect::<Result<_, _>>()?;
        }
    }
    let bit = |set: &Vec<u64>, fd: u64| {
        set.get((fd / 64) as usize)
            .is_some_and(|w| w >> (fd % 64) & 1 != 0)
    };
    let mut fds = Vec::new();
    for fd in 0..n {
        let events = SELECT_SETS
            .iter()
            .zip(&sets)
            .filter(|(_, set)| bit(set, fd))
            .fold(0, |e, ((ask, _), _)| e | ask);
        if events != 0 {
            cx.process.fds().get(fd)?;
            fds.push(PollFd {
                fd: fd as i32,
                events,
                revents: 0,
            });
        }
    }
    poll_list(cx, &mut fds, timeout)?;
    let mut count = 0;
    let mut out = [
        vec![0u64; words as usize],
        vec![0u64; words as usize],
        vec![0u64; words as usize],
    ];
    for p in &fds {
        let fd = p.fd as u64;
        for (k, (_, ready)) in SELECT_SETS.iter().enumerate() {
            if bit(&sets[k], fd) && p.revents & ready != 0 {
                out[k][(fd / 64) as usize] |= 1 << (fd % 64);
                count += 1;
            }
        }
    }
    for (k, set) in out.iter().enumerate() {
        let at = a.ptr(1 + k);
        if at != 0 {
            for (w, v) in set.iter().enumerate() {
                cx.write_val(at + w as u64 * 8, v)?;
            }
        }
    }
    Ok(count)
}

pub fn dup(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let fd = cx.process.fds().get(a.fd(0))?;
    Ok(cx.process.fds().alloc(
        0,
        Fd {
            cloexec: false,
            ..fd
        },
    )?)
}

pub fn dup2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (old, new) = (a.fd(0), a.fd(1));
    let fd = cx.process.fds().get(old)?;
    if old != new {
        cx.process.fds().set(
            new,
            Fd {
                cloexec: false,
                ..fd
            },
        )?;
    }
    Ok(new)
}

pub fn dup3(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (old, new, flags) = (a.fd(0), a.fd(1), a.flags(2));
    if old == new || flags & !oflag::CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    let fd = cx.process.fds().get(old)?;
    cx.process.fds().set(
        new,
        Fd {
            cloexec: flags != 0,
            ..fd
        },
    )?;
    Ok(new)
}

pub fn fcntl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (n, cmd, arg) = (a.fd(0), u64::from(a.uint(1)), a.raw(2));
    let fd = cx.process.fds().get(n)?;
    match cmd {
        fcntl::F_DUPFD | fcntl::F_DUPFD_CLOEXEC if arg >= cx.process.fds().limit => {
            Err(Errno::EINVAL.into())
        }
        fcntl::F_GETLK
        | fcntl::F_SETLK
        | fcntl::F_SETLKW
        | fcntl::F_OFD_GETLK
        | fcntl::F_OFD_SETLK
        | fcntl::F_OFD_SETLKW => record_lock(cx, &fd.file, cmd, arg),
        memfd::F_ADD_SEALS => {
            let host = lock_fd(&fd.file)?.ok_or(Errno::EINVAL)?;
            let seals = rustix::fs::SealFlags::from_bits_retain(arg as u32);
            rustix::fs::fcntl_add_seals(host, seals).map_err(host_errno)?;
            Ok(0)
        }
        memfd::F_GET_SEALS => {
            let host = lock_fd(&fd.file)?.ok_or(Errno::EINVAL)?;
            Ok(u64::from(
                rustix::fs::fcntl_get_seals(host)
                    .map_err(host_errno)?
                    .bits(),
            ))
        }
        fcntl::F_DUPFD | fcntl::F_DUPFD_CLOEXEC => Ok(cx.process.fds().alloc(
            arg,
            Fd {
                cloexec: cmd == fcntl::F_DUPFD_CLOEXEC,
                ..fd
            },
        )?),
        fcntl::F_GETFD => Ok(if fd.cloexec { fcntl::FD_CLOEXEC } else { 0 }),
        fcntl::F_SETFD => {
            cx.process.fds().get_mut(n)?.cloexec = arg & fcntl::FD_CLOEXEC != 0;
            Ok(0)
        }
        fcntl::F_GETFL => Ok(fd.file.status_flags().map_err(host_errno)?),
        fcntl::F_GETPIPE_SZ => super::fd::pipe::pipe_size(&fd.file, None),
        fcntl::F_SETPIPE_SZ => super::fd::pipe::pipe_size(&fd.file, Some(arg)),
        fcntl::F_SETFL => {
            // Status flags of the shared host streams stay as they are.
            fd.file
                .set_status_flags(SETFL_MASK, arg as u32)
                .map_err(host_errno)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// The host fd behind a guest fd's lock calls: a volume file's, or umon's own standard stream.
fn lock_fd(file: &OpenFile) -> Result<Option<BorrowedFd<'_>>, Errno> {
    match file.as_volume() {
        Some(h) if h.path_only => Err(Errno::EBADF),
        _ => Ok(file.host_fd()),
    }
}

/// Run a lock call that may block until it is done, a stop request arrives or a signal is to
/// be taken (ERESTARTSYS, as Linux's interruptible lock waits); the kick interrupts it, a kick
/// with nothing to take retries.
fn blocking_lock(cx: &Ctx<'_, '_>, mut call: impl FnMut() -> Result<(), Errno>) -> Sys {
    loop {
        match call() {
            Ok(()) => return Ok(0),
            Err(Errno::EINTR) => interrupted_wait(cx, ERESTARTSYS)?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// fcntl record locks (POSIX and open-file-description), on the host file itself, so they
/// hold against other processes on the host as they would against other processes on Linux.
/// The monitor is one host process, as the application is one Linux process.
fn record_lock(cx: &mut Ctx<'_, '_>, file: &OpenFile, cmd: u64, arg: u64) -> Sys {
    let mut lock: Flock = cx.read_val(arg)?;
    let tgid = cx.process.tgid;
    let Some(fd) = lock_fd(file)? else {
        // A stream that is a caller's reader or writer: nobody else can hold a lock on it.
        if matches!(cmd, fcntl::F_GETLK | fcntl::F_OFD_GETLK) {
            lock.l_type = fcntl::F_UNLCK;
            cx.write_val(arg, &lock)?;
        }
        return Ok(0);
    };
    let call = |lock: &mut Flock| -> Result<(), Errno> {
        let mut host = libc::flock {
            l_type: lock.l_type,
            l_whence: lock.l_whence,
            l_start: lock.l_start,
            l_len: lock.l_len,
            l_pid: lock.l_pid,
        };
        host_lock(fd, cmd, &mut host)?;
        lock.l_type = host.l_type;
        lock.l_whence = host.l_whence;
        lock.l_start = host.l_start;
        lock.l_len = host.l_len;
        // A POSIX holder is the monitor (the application itself: its pid) or another host
        // process, outside the application's pid namespace, which Linux reports as 0. OFD
        // locks report -1 either way.
        lock.l_pid = match host.l_pid {
            p if p > 0 && p as u32 == std::process::id() => tgid as i32,
            p if p > 0 => 0,
            p => p,
        };
        Ok(())
    };
    if matches!(cmd, fcntl::F_SETLKW | fcntl::F_OFD_SETLKW) {
        return blocking_lock(cx, || call(&mut lock.clone()));
    }
    call(&mut lock)?;
    if matches!(cmd, fcntl::F_GETLK | fcntl::F_OFD_GETLK) {
        cx.write_val(arg, &lock)?;
    }
    Ok(0)
}

/// fcntl(fd, F_*LK, lock) on the host: neither rustix nor std has byte-range locks.
fn host_lock(fd: BorrowedFd<'_>, cmd: u64, lock: &mut libc::flock) -> Result<(), Errno> {
    // SAFETY: every F_*LK command takes a pointer to a struct flock, which `lock` is, valid
    // for the call; the fd is open for the borrow.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd as i32, lock as *mut libc::flock) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Errno::new(e.raw_os_error().unwrap_or(libc::EIO)));
    }
    Ok(())
}

/// LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN, LOCK_MAND.
const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const LOCK_UN: u64 = 8;
const LOCK_MAND: u64 = 32;

/// flock(2) on the host file (see [`record_lock`]).
pub fn flock(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    use rustix::fs::FlockOperation as Op;
    let (n, op) = (u64::from(a.uint(0)), u64::from(a.uint(1)));
    // Linux 6.1 warns about the removed LOCK_MAND and does nothing.
    if op & LOCK_MAND != 0 {
        return Ok(0);
    }
    let nb = op & LOCK_NB != 0;
    let how = match op & !LOCK_NB {
        LOCK_SH if nb => Op::NonBlockingLockShared,
        LOCK_SH => Op::LockShared,
        LOCK_EX if nb => Op::NonBlockingLockExclusive,
        LOCK_EX => Op::LockExclusive,
        LOCK_UN => Op::Unlock,
        _ => return Err(Errno::EINVAL.into()),
    };
    let file = cx.process.fds().get(n)?.file;
    let Some(fd) = lock_fd(&file)? else {
        return Ok(0);
    };
    blocking_lock(cx, || rustix::fs::flock(fd, how).map_err(host_errno))
}

use super::fd::BOUNCE_BYTES as PUMP_BYTES;

/// Write all of `buf` to `out` (at `*at` when given, advancing it); the count written.
fn put(cx: &mut Ctx<'_, '_>, out: &OpenFile, at: Option<&mut u64>, buf: &[u8]) -> Sys {
    match out.write_bytes(buf, at) {
        Ok(n) => Ok(n as u64),
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(broken_pipe(cx)),
        Err(e) => Err(io_errno(e).into()),
    }
}

/// Move up to `len` bytes from the volume file `input` (at `*in_at`, else its offset) to `out`
/// (at `*out_at`, else its offset) through a monitor buffer: one guest call, and the host calls
/// stay plain reads and writes. Bytes read but not written are given back to the input.
fn pump(
    cx: &mut Ctx<'_, '_>,
    input: &HostFile,
    mut in_at: Option<&mut u64>,
    out: &OpenFile,
    mut out_at: Option<&mut u64>,
    len: u64,
) -> Sys {
    let mut buf = vec![0u8; len.clamp(1, PUMP_BYTES) as usize];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let got = match in_at.as_deref() {
            Some(&pos) => rustix::io::pread(&input.fd, &mut buf[..want], pos),
            None => rustix::io::read(&input.fd, &mut buf[..want]),
        };
        let n = match got {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(host_errno(e).into()),
        };
        let wrote = match put(cx, out, out_at.as_deref_mut(), &buf[..n]) {
            Ok(w) => w as usize,
            Err(e) if done == 0 => {
                if in_at.is_none() {
                    let _ = rustix::fs::seek(&input.fd, SeekFrom::Current(-(n as i64)));
                }
                return Err(e);
            }
            Err(_) => 0,
        };
        match in_at.as_deref_mut() {
            Some(pos) => *pos += wrote as u64,
            None if wrote < n => {
                let _ = rustix::fs::seek(&input.fd, SeekFrom::Current(-((n - wrote) as i64)));
            }
            None => {}
        }
        done += wrote as u64;
        if wrote < n || n < want {
            break;
        }
    }
    Ok(done)
}

/// An optional `loff_t *` argument, read in as is (EFAULT first, as Linux reads it first).
fn raw_offset(cx: &Ctx<'_, '_>, ptr: u64) -> Result<Option<u64>, Errno> {
    if ptr == 0 {
        return Ok(None);
    }
    cx.read_val(ptr).map(Some)
}

/// Whether a volume file was opened O_APPEND (status flags live on the host open file).
fn appends(h: &HostFile) -> Result<bool, Errno> {
    let flags = rustix::fs::fcntl_getfl(&h.fd).map_err(host_errno)?;
    Ok(flags.contains(rustix::fs::OFlags::APPEND))
}

/// sendfile(out, in, offset, count): from a volume file to a volume file or a standard output
/// stream (whatever it is: umon's own fd or a caller's writer). Checked in Linux's order.
pub fn sendfile(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (out_fd, in_fd, off_ptr, count) = (a.fd(0), a.fd(1), a.ptr(2), a.len(3));
    let mut off = raw_offset(cx, off_ptr)?;
    let input = cx.process.fds().get(in_fd)?.file;
    if !input.readable() {
        return Err(Errno::EBADF.into());
    }
    let Some(input) = input.as_volume().cloned() else {
        return Err(Errno::EINVAL.into());
    };
    if off.is_some() && input.kind != FileKind::Regular {
        return Err(Errno::ESPIPE.into());
    }
    if off.is_some_and(|o| (o as i64) < 0) {
        return Err(Errno::EINVAL.into());
    }
    let out = cx.process.fds().get(out_fd)?.file;
    if !out.writable() {
        return Err(Errno::EBADF.into());
    }
    if let Some(h) = out.as_volume() {
        if appends(h)? {
            return Err(Errno::EINVAL.into());
        }
    }
    let mut count = count.min(MAX_RW);
    if count > 0 && out.partial_copies() {
        count = fsize_limit(cx, &out, count, None)?;
    }
    let n = pump(cx, &input, off.as_mut(), &out, None, count)?;
    if let Some(pos) = off {
        cx.write_val(off_ptr, &pos)?;
    }
    Ok(n)
}

/// The host identity (device, inode) of a volume file.
fn identity(h: &HostFile) -> Result<(u64, u64, i64), Errno> {
    let st = rustix::fs::fstat(&h.fd).map_err(host_errno)?;
    Ok((st.st_dev, st.st_ino, st.st_size))
}

/// copy_file_range between two volume files, checked in Linux's order (generic_file_rw_checks,
/// then generic_copy_file_checks: no copy onto an overlapping range of the same file).
pub fn copy_file_range(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (in_fd, in_ptr, out_fd, out_ptr, len, flags) =
        (a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.len(4), a.flags(5));
    let input = cx.process.fds().get(in_fd)?.file;
    let output = cx.process.fds().get(out_fd)?.file;
    let in_off = raw_offset(cx, in_ptr)?;
    let out_off = raw_offset(cx, out_ptr)?;
    if flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (Some(input), Some(out)) = (input.as_volume(), output.as_volume()) else {
        return Err(Errno::EINVAL.into());
    };
    if input.kind == FileKind::Directory || out.kind == FileKind::Directory {
        return Err(Errno::EISDIR.into());
    }
    if input.kind != FileKind::Regular || out.kind != FileKind::Regular {
        return Err(Errno::EINVAL.into());
    }
    if !input.readable || !out.writable || appends(out)? {
        return Err(Errno::EBADF.into());
    }
    let here = |h: &HostFile| rustix::fs::seek(&h.fd, SeekFrom::Current(0)).map_err(host_errno);
    let pos_in = match in_off {
        Some(p) => p,
        None => here(input)?,
    };
    let pos_out = match out_off {
        Some(p) => p,
        None => here(out)?,
    };
    if pos_in.checked_add(len).is_none() || pos_out.checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW.into());
    }
    // rw_verify_area.
    if (pos_in as i64) < 0 || (pos_out as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let (in_dev, in_ino, size) = identity(input)?;
    let (out_dev, out_ino, _) = identity(out)?;
    let size = size.max(0) as u64;
    let count = if pos_in >= size {
        0
    } else {
        len.min(size - pos_in)
    };
    if (in_dev, in_ino) == (out_dev, out_ino)
        && pos_out + count > pos_in
        && pos_out < pos_in + count
    {
        return Err(Errno::EINVAL.into());
    }
    let mut count = count.min(MAX_RW);
    if count > 0 {
        // generic_copy_file_checks: the output's RLIMIT_FSIZE, as a write there.
        count = fsize_limit(cx, &output, count, Some(pos_out))?;
    }
    let mut in_off = in_off;
    let mut out_off = out_off;
    let n = pump(cx, input, in_off.as_mut(), &output, out_off.as_mut(), count)?;
    if let Some(pos) = in_off {
        cx.write_val(in_ptr, &pos)?;
    }
    if let Some(pos) = out_off {
        cx.write_val(out_ptr, &pos)?;
    }
    Ok(n)
}

/// mmap of a file (called for any mapping without MAP_ANONYMOUS). A private mapping is a
/// private view of the file (its pages until written, as Linux's; a copy where the view cannot
/// be placed). A MAP_SHARED mapping is the
/// file's own pages ([`crate::linux::mm::space::AddrSpace::mmap_file`]): coherent with
/// read/write, other mappings and other processes; of a descriptor opened read-only it is a
/// private view of the file that can never be made writable (EACCES), as Linux's.
pub fn mmap_file(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    use mman::{MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE};
    let prot_write = u64::from(mman::PROT_WRITE);
    let (addr, len, prot, flags, fd, offset) =
        (a.ptr(0), a.len(1), a.raw(2), a.flags(3), a.fd(4), a.off(5));
    let file = cx.process.fds().get(u64::from(fd as u32))?.file;
    // An O_PATH descriptor is no file to map (Linux's fget refuses it).
    if file.as_volume().is_some_and(|h| h.path_only) {
        return Err(Errno::EBADF.into());
    }
    let shared = matches!(flags & MAP_TYPE, mman::MAP_SHARED | MAP_SHARED_VALIDATE);
    if !shared && flags & MAP_TYPE != MAP_PRIVATE {
        return Err(Errno::EINVAL.into());
    }
    if len == 0 || offset % PAGE_4K != 0 {
        return Err(Errno::EINVAL.into());
    }
    // Linux's do_mmap order: the length, the placement, then the file's own checks.
    let pages_len = len
        .checked_next_multiple_of(PAGE_4K)
        .filter(|&l| l <= crate::linux::abi::TASK_SIZE_MAX)
        .ok_or(Errno::ENOMEM)?;
    let st = file.stat().map_err(host_errno)?;
    let regular = st.mode & libc::S_IFMT == libc::S_IFREG;
    // file_mmap_ok: a regular file's offsets end at MAX_LFS_FILESIZE.
    if regular && (offset >> 12) > ((i64::MAX as u64) - pages_len) >> 12 {
        return Err(Errno::EOVERFLOW.into());
    }
    if shared {
        // MAP_SYNC needs DAX; MAP_SHARED_VALIDATE refuses every flag it does not know.
        if flags & MAP_SYNC != 0
            || (flags & MAP_TYPE == MAP_SHARED_VALIDATE && flags & !SHARED_VALIDATE_KNOWN != 0)
        {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if prot & prot_write != 0 && !file.writable() {
            return Err(Errno::EACCES.into());
        }
    }
    if !file.readable() {
        return Err(Errno::EACCES.into());
    }
    // /dev/zero maps anonymous memory, shared or private.
    if st.mode & libc::S_IFMT == libc::S_IFCHR && st.rdev == libc::makedev(1, 5) {
        let anon = Args([addr, len, prot, flags | mman::MAP_ANONYMOUS, u64::MAX, 0]);
        return super::mm::mmap(cx, &anon);
    }
    let Some(h) = file.as_volume() else {
        return Err(Errno::ENODEV.into());
    };
    if h.kind != FileKind::Regular {
        return Err(Errno::ENODEV.into());
    }
    if shared {
        // A sealed memfd: no writable shared mapping (EPERM), and a read-only one can never
        // become writable.
        let seals = rustix::fs::fcntl_get_seals(&h.fd).unwrap_or(rustix::fs::SealFlags::empty());
        let sealed =
            seals.intersects(rustix::fs::SealFlags::WRITE | rustix::fs::SealFlags::FUTURE_WRITE);
        if sealed && prot & prot_write != 0 {
            return Err(Errno::EPERM.into());
        }
        let writable = h.writable && !sealed;
        let fd = h.fd.try_clone().map_err(io_errno)?;
        let anchor = (writable && prot & prot_write != 0)
            .then(|| crate::machine::memory::WritableAnchor::new(h.fd.as_fd()))
            .flatten();
        let file = std::sync::Arc::new(crate::linux::mm::space::MappedFile {
            fd,
            kind: if writable {
                crate::machine::memory::OverlayKind::Shared
            } else {
                crate::machine::memory::OverlayKind::Private
            },
            may_write: writable,
            anonymous: false,
            name: mapped_name(cx, h),
            anchor,
            tmpfs: writable.then(|| super::fs::in_tmpfs(cx, &*file)).flatten(),
        });
        let (place, how) = super::mm::placement(addr, prot, flags);
        let mem = cx.mem;
        return Ok(cx
            .process
            .space_mut()
            .mmap_file(mem, place, len, how, file, offset)?);
    }
    // A private mapping is a private view of the file laid over its frames too: the pages are
    // the file's until written (copy-on-write in the host), read at first touch, and named in
    // /proc/self/maps. Outside the heap arena (a MAP_FIXED over the image) it is a copy.
    let view = std::sync::Arc::new(crate::linux::mm::space::MappedFile {
        fd: h.fd.try_clone().map_err(io_errno)?,
        kind: crate::machine::memory::OverlayKind::Private,
        may_write: true,
        anonymous: false,
        name: mapped_name(cx, h),
        anchor: None,
        tmpfs: None,
    });
    let (place, how) = super::mm::placement(addr, prot, flags);
    let mem = cx.mem;
    let viewed = cx
        .process
        .space_mut()
        .mmap_file(mem, place, len, how, view, offset);
    match viewed {
        Err(Errno::ENOMEM) => {}
        r => return Ok(r?),
    }
    let size = rustix::fs::fstat(&h.fd).map_err(host_errno)?.st_size.max(0) as u64;
    let anon = Args([
        addr,
        len,
        prot,
        (flags & !MAP_TYPE) | MAP_PRIVATE | mman::MAP_ANONYMOUS,
        u64::MAX,
        0,
    ]);
    let va = super::mm::mmap(cx, &anon)?;
    let want = size.saturating_sub(offset).min(len);
    let filled = fill_from(cx, h, va, want, offset);
    if let Err(e) = filled {
        let mem = cx.mem;
        let _ = cx.process.space_mut().munmap(mem, va, len);
        return Err(e.into());
    }
    Ok(va)
}

/// The name /proc/self/maps gives a mapping of `h`: its guest path with symlinks resolved, as
/// Linux's d_path (the host's resolution of the file under its volume's root), else the path
/// it was opened by.
fn mapped_name(cx: &Ctx<'_, '_>, h: &HostFile) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    let fs = cx.process.fs();
    let Some(mount) = fs.get_mount(h.mount) else {
        return h.path.clone();
    };
    // readlinkat: the one the monitor's seccomp allows.
    let link = |fd: i32| {
        rustix::fs::readlinkat(rustix::fs::CWD, format!("/proc/self/fd/{fd}"), Vec::new())
            .map(|c| c.into_bytes())
    };
    match (link(h.fd.as_raw_fd()), link(mount.root_fd().as_raw_fd())) {
        (Ok(file), Ok(root)) => {
            let root = if root == b"/" { &b""[..] } else { &root[..] };
            match file.strip_prefix(root) {
                Some(rel) if rel.first() == Some(&b'/') || rel.is_empty() => {
                    mount.guest_path(rel.strip_prefix(b"/").unwrap_or(rel))
                }
                _ => h.path.clone(),
            }
        }
        _ => h.path.clone(),
    }
}

/// MAP_SYNC.
const MAP_SYNC: u64 = 0x8_0000;
/// The flags MAP_SHARED_VALIDATE accepts: Linux's LEGACY_MAP_MASK and MAP_FIXED_NOREPLACE.
const SHARED_VALIDATE_KNOWN: u64 = 0x3 // the mapping type
    | mman::MAP_FIXED
    | mman::MAP_ANONYMOUS
    | 0x0800 // MAP_DENYWRITE
    | 0x1000 // MAP_EXECUTABLE
    | 0x400_0000 // MAP_UNINITIALIZED
    | mman::MAP_GROWSDOWN
    | 0x2000 // MAP_LOCKED
    | mman::MAP_NORESERVE
    | 0x8000 // MAP_POPULATE
    | 0x1_0000 // MAP_NONBLOCK
    | 0x2_0000 // MAP_STACK
    | 0x4_0000 // MAP_HUGETLB
    | mman::MAP_FIXED_NOREPLACE;

/// Read `len` bytes of `h` from `offset` into fresh guest memory at `va`; fewer at end of file.
fn fill_from(
    cx: &mut Ctx<'_, '_>,
    h: &HostFile,
    va: u64,
    len: u64,
    offset: u64,
) -> Result<(), Errno> {
    // The monitor fills the mapping whatever its protection, as the kernel does.
    let chunks = cx.space().chunks(va, len, Access::Mapped)?;
    // Positional reads: the file's offset is shared with every dup of the fd (and other
    // threads), so it is neither used nor moved.
    let mut at = offset;
    for (gpa, n) in chunks {
        let got = cx
            .mem
            .read_from_at(gpa, n, h.fd.as_fd(), at)
            .map_err(mem_errno)? as u64;
        at += got;
        if got < n {
            break;
        }
    }
    Ok(())
}
