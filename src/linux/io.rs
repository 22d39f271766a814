//! File-descriptor I/O: read, write and their vectored and positioned forms, lseek, fstat,
//! ioctl, poll, dup and fcntl, sendfile and copy_file_range, and private file mappings, on the
//! standard streams and on host files opened in volumes. Bytes move straight between the host fd
//! and guest memory (vm-memory's volatile I/O), never through a bounce buffer; a large transfer
//! is one host call per physically contiguous piece of the guest buffer. Paths are `fs.rs`'s.
use super::abi::{fcntl, ioctl as tio, mman, oflag, Flock, Iovec, PollFd, Timespec, TERMIOS_BYTES};
use super::fd::{Fd, FileKind, HostFile, OpenFile};
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
const MAX_RW: u64 = 0x7fff_f000;
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

pub fn read(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    read_into(cx, &file, a.ptr(1), a.len(2).min(MAX_RW), None)
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
        match file.read_piece(cx.mem, gpa, n, at) {
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
    write_from(cx, &file, a.ptr(1), a.len(2).min(MAX_RW), None)
}

/// One write(2) at the file's current position (or its end, with O_APPEND), or one pwrite(2)
/// at `pos`.
fn write_from(cx: &mut Ctx<'_, '_>, file: &OpenFile, buf: u64, len: u64, pos: Option<u64>) -> Sys {
    access_ok(buf, len)?;
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
        let wrote = file.write_piece(cx.mem, gpa, n, pos.map(|p| p.saturating_add(done)));
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
fn fsize_limit(
    cx: &mut Ctx<'_, '_>,
    file: &OpenFile,
    len: u64,
    at: Option<u64>,
) -> Result<u64, Stop> {
    let limit = super::proc::file_size_limit(cx);
    if limit == u64::MAX {
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
    Ok(len.min(limit - pos))
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

/// Writing to a pipe nobody reads: Linux sends SIGPIPE, which kills the process unless it
/// ignores or handles the signal (then the write fails with EPIPE).
fn broken_pipe(cx: &Ctx<'_, '_>) -> Stop {
    let handled = cx
        .process
        .signals()
        .actions
        .get(&(libc::SIGPIPE as u64))
        .is_some_and(|s| s.handler != 0);
    if handled {
        Errno::EPIPE.into()
    } else {
        // Like a shell, say nothing: a reader that went away is normal (`app | head`).
        Stop::Exit(ExitStatus::Signaled {
            signal: libc::SIGPIPE,
            report: String::new(),
        })
    }
}

fn iovecs(cx: &Ctx<'_, '_>, at: u64, count: u64) -> Result<Vec<Iovec>, Errno> {
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
    let iovs = iovecs(cx, at, count)?;
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
    let iovs = iovecs(cx, at, count)?;
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

/// The host file behind a positioned call at `offset`: ESPIPE for the standard streams (they
/// are not seekable), EINVAL for a negative offset.
fn seekable(cx: &Ctx<'_, '_>, fd: u64, offset: u64) -> Result<OpenFile, Errno> {
    let file = cx.process.fds().get(fd)?.file;
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match file.as_volume() {
        Some(_) => Ok(file),
        None => Err(Errno::ESPIPE),
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
    let (buf, len) = (a.ptr(1), a.len(2).min(MAX_RW));
    access_ok(buf, len)?;
    verify_area(a.off(3), a.len(2))?;
    read_into(cx, &file, buf, len, Some(a.off(3)))
}

/// pwrite64: a real positional write (see [`pread64`]).
pub fn pwrite64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = seekable(cx, a.fd(0), a.off(3))?;
    let (buf, len) = (a.ptr(1), a.len(2).min(MAX_RW));
    access_ok(buf, len)?;
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

pub fn lseek(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let (offset, whence) = (a.off(1), u64::from(a.uint(2)));
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
        FIOCLEX | FIONCLEX => {
            cx.process.fds().get_mut(fd)?.cloexec = req == FIOCLEX;
            return Ok(0);
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
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}

pub fn poll(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ms = a.int(2);
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    poll_fds(cx, a.ptr(0), a.len(1), timeout)
}

pub fn ppoll(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = if a.ptr(2) == 0 {
        None
    } else {
        Some(super::time::duration(cx.read_val::<Timespec>(a.ptr(2))?)?)
    };
    poll_fds(cx, a.ptr(0), a.len(1), timeout)
}

fn poll_fds(cx: &mut Ctx<'_, '_>, at: u64, nfds: u64, timeout: Option<Duration>) -> Sys {
    use rustix::event::{PollFd as HostPoll, PollFlags};
    // nfds is an unsigned int in the kernel's prototype.
    let nfds = nfds & 0xffff_ffff;
    if nfds > cx.process.fds().limit {
        return Err(Errno::EINVAL.into());
    }
    let mut fds: Vec<PollFd> = (0..nfds)
        .map(|i| cx.read_val(at + i * 8))
        .collect::<Result<_, _>>()?;
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
    for (i, (p, file)) in fds.iter_mut().zip(&files).enumerate() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        match file {
            None => p.revents = libc::POLLNVAL,
            Some(file) => match file.host_fd() {
                Some(fd) => host.push((i, fd)),
                None => p.revents = p.events & (libc::POLLIN | libc::POLLOUT),
            },
        }
        ready_now |= p.revents != 0;
    }
    let wait = if ready_now {
        Some(Duration::ZERO)
    } else {
        timeout
    };
    if host.is_empty() {
        match wait {
            Some(d) => super::time::sleep(cx, d)?,
            // Nothing to wait for and no timeout: Linux sleeps until a signal, which only a
            // stop request (--timeout, a signal to umon) can be here.
            None => super::time::sleep_until_stopped(cx)?,
        }
    } else {
        let mut polls: Vec<HostPoll<'_>> = host
            .iter()
            .map(|&(i, fd)| {
                HostPoll::from_borrowed_fd(fd, PollFlags::from_bits_truncate(fds[i].events as u16))
            })
            .collect();
        let ts = wait.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        rustix::event::poll(&mut polls, ts.as_ref()).map_err(|e| Stop::from(host_errno(e)))?;
        for (p, &(i, _)) in polls.iter().zip(&host) {
            fds[i].revents = p.revents().bits() as i16;
        }
    }
    let mut count = 0;
    for (i, p) in fds.iter().enumerate() {
        cx.write_val(at + i as u64 * 8, p)?;
        count += u64::from(p.revents != 0);
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

/// Run a lock call that may block until it is done or a stop request arrives (the kick
/// signal interrupts it; a bare EINTR is retried).
fn blocking_lock(cx: &Ctx<'_, '_>, mut call: impl FnMut() -> Result<(), Errno>) -> Sys {
    loop {
        match call() {
            Ok(()) => return Ok(0),
            Err(Errno::EINTR) if !cx.interrupted() => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// fcntl record locks (POSIX and open-file-description), on the host file itself, so they
/// hold against other processes on the host as they would against other processes on Linux.
/// The monitor is one host process, as the application is one Linux process.
fn record_lock(cx: &mut Ctx<'_, '_>, file: &OpenFile, cmd: u64, arg: u64) -> Sys {
    let mut lock: Flock = cx.read_val(arg)?;
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
        // A POSIX holder is another host process, outside the application's pid namespace:
        // Linux reports such a pid as 0. OFD locks report -1 either way.
        lock.l_pid = if host.l_pid > 0 { 0 } else { host.l_pid };
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

/// mmap of a file (called for any mapping without MAP_ANONYMOUS). A private mapping is fresh
/// arena memory with the file's bytes read into it: later writes to the file do not show
/// through, and neither do the application's writes to the file. A writable MAP_SHARED mapping
/// cannot be kept in sync with the file that way, so it is refused with ENODEV ("this file does
/// not support the mapping"); a read-only MAP_SHARED mapping is served like a private one.
pub fn mmap_file(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    use mman::{MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE};
    let prot_write = u64::from(mman::PROT_WRITE);
    let (addr, len, prot, flags, fd, offset) =
        (a.ptr(0), a.len(1), a.raw(2), a.flags(3), a.fd(4), a.off(5));
    let file = cx.process.fds().get(u64::from(fd as u32))?.file;
    let Some(h) = file.as_volume() else {
        return Err(Errno::ENODEV.into());
    };
    let shared = matches!(flags & MAP_TYPE, mman::MAP_SHARED | MAP_SHARED_VALIDATE);
    if !shared && flags & MAP_TYPE != MAP_PRIVATE {
        return Err(Errno::EINVAL.into());
    }
    if len == 0 || offset % PAGE_4K != 0 || (offset as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    if h.path_only {
        return Err(Errno::EBADF.into());
    }
    if h.kind != FileKind::Regular {
        return Err(Errno::ENODEV.into());
    }
    if !h.readable || (shared && prot & prot_write != 0 && !h.writable) {
        return Err(Errno::EACCES.into());
    }
    if shared && prot & prot_write != 0 {
        return Err(Errno::ENODEV.into());
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
