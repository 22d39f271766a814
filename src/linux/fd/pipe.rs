//! pipe, pipe2, splice, tee and vmsplice: every pipe end is one end of a real host pipe of the
//! monitor, so capacity, packet mode (O_DIRECT), EOF when the last writer goes, EPIPE when the
//! last reader goes, FIONREAD, F_GETPIPE_SZ/F_SETPIPE_SZ, fstat (S_IFIFO) and poll are the host
//! kernel's own. A blocked host read or write ends with EINTR when the vCPU thread is kicked (a
//! signal for the application, a stop), as reads of stdin do.
//!
//! A transfer whose guest buffer is one physically contiguous piece moves straight between the
//! host pipe and guest memory; one of several pieces (readv/writev, or a buffer that is not
//! contiguous in guest RAM) goes through one monitor buffer and one host call, so it stays one
//! pipe operation: atomic up to PIPE_BUF, one packet in packet mode, as Linux's single
//! pipe_read/pipe_write.
use super::file::{host_status_flags, memory_io, set_host_status_flags, FileDescription};
use super::{Fd, OpenFile, BOUNCE_BYTES};
use crate::linux::abi::{oflag, Iovec, Stat, PIPE_MAX_SIZE};
use crate::linux::io::{broken_pipe, interrupted_wait, iovecs, MAX_RW};
use crate::linux::mm::space::Access;
use crate::linux::signal::deliver::ERESTARTSYS;
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use crate::machine::paging::PAGE_4K;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use umon_abi::Gpa;

/// SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT.
const SPLICE_F_ALL: u32 = 0xf;
/// SPLICE_F_NONBLOCK.
const SPLICE_F_NONBLOCK: u32 = 0x2;

/// One end of a pipe: a host pipe end. The host end closes with the last guest fd naming it
/// (the description is shared by dup), so EOF and EPIPE come exactly when Linux's would.
#[derive(Debug)]
pub struct PipeEnd {
    fd: OwnedFd,
    write: bool,
}

impl PipeEnd {
    /// The pipe end behind a host fd received by SCM_RIGHTS (`write` for the write end).
    pub(crate) fn from_host(fd: OwnedFd, write: bool) -> PipeEnd {
        PipeEnd { fd, write }
    }

    /// The host fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether this is the write end.
    pub fn is_write(&self) -> bool {
        self.write
    }
}

impl FileDescription for PipeEnd {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        if self.write {
            return Err(super::file::ebadf());
        }
        mem.read_from(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        if !self.write {
            return Err(super::file::ebadf());
        }
        mem.write_to(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize> {
        if !self.write {
            return Err(super::file::ebadf());
        }
        if pos.is_some() {
            return Err(super::file::espipe());
        }
        super::file::write_at_offset(self.fd(), buf)
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        rustix::fs::fstat(&self.fd).map(|s| Stat::from_host(&s))
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        host_status_flags(self.fd())
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        set_host_status_flags(self.fd(), mask, bits)
    }

    fn readable(&self) -> bool {
        !self.write
    }

    fn writable(&self) -> bool {
        self.write
    }

    fn as_pipe(&self) -> Option<&PipeEnd> {
        Some(self)
    }
}

/// pipe(fds).
pub fn pipe(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    make(cx, a.ptr(0), 0)
}

/// pipe2(fds, flags).
pub fn pipe2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    make(cx, a.ptr(0), u64::from(a.uint(1)))
}

/// Linux's do_pipe2 in its order: the flags (EINVAL), two fd numbers (EMFILE), then the array
/// (EFAULT, with neither fd left open).
/// (`flags` is an int.)
fn make(cx: &mut Ctx<'_, '_>, at: u64, flags: u64) -> Sys {
    // O_NOTIFICATION_PIPE (O_EXCL) needs watch queues, which umon has not.
    if flags & !(oflag::CLOEXEC | oflag::NONBLOCK | oflag::DIRECT) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (r, w) = cx.process.fds().reserve_pair()?;
    let give_back = |cx: &Ctx<'_, '_>| {
        let mut fds = cx.process.fds();
        fds.unreserve(r);
        fds.unreserve(w);
    };
    let host = (flags & (oflag::NONBLOCK | oflag::DIRECT)) as i32 | libc::O_CLOEXEC;
    let mut raw = [0i32; 2];
    // SAFETY: pipe2 writes two ints into `raw`, which has room for them.
    if unsafe { libc::pipe2(raw.as_mut_ptr(), host) } < 0 {
        give_back(cx);
        let e = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENFILE);
        return Err(Errno::new(e).into());
    }
    // SAFETY: pipe2 succeeded: a new fd that nothing else owns.
    let rfd = unsafe { OwnedFd::from_raw_fd(raw[0]) };
    // SAFETY: as above, the other end.
    let wfd = unsafe { OwnedFd::from_raw_fd(raw[1]) };
    let pair = [r as i32, w as i32];
    if let Err(e) = cx.write_val(at, &pair) {
        give_back(cx);
        return Err(e.into());
    }
    let cloexec = flags & oflag::CLOEXEC != 0;
    let end = |fd, write| Fd {
        file: Arc::new(PipeEnd { fd, write }) as OpenFile,
        cloexec,
    };
    let mut fds = cx.process.fds();
    fds.install(r, end(rfd, false));
    fds.install(w, end(wfd, true));
    Ok(0)
}

/// The guest pieces of `iovs` (at most MAX_RW bytes in all), each checked for `access`:
/// EFAULT before anything moves when any is bad.
fn pieces(cx: &Ctx<'_, '_>, iovs: &[Iovec], access: Access) -> Result<Vec<(Gpa, u64)>, Errno> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for iov in iovs {
        let len = iov.len.min(MAX_RW - total);
        out.extend(cx.space().chunks(iov.base, len, access)?);
        total += len;
        if total >= MAX_RW {
            break;
        }
    }
    out.retain(|&(_, n)| n > 0);
    Ok(out)
}

/// Run a host pipe call that may block, again after a kick with nothing to take; EINTR or a
/// restart errno when the kick was a stop or a signal to take.
fn blocking<T>(cx: &Ctx<'_, '_>, mut call: impl FnMut() -> io::Result<T>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => interrupted_wait(cx, ERESTARTSYS)?,
            Err(e) => return Err(Errno::new(e.raw_os_error().unwrap_or(libc::EIO))),
            Ok(v) => return Ok(v),
        }
    }
}

/// read/readv on a pipe's read end: one host read.
pub fn read(cx: &mut Ctx<'_, '_>, p: &PipeEnd, iovs: &[Iovec]) -> Sys {
    if p.write {
        return Err(Errno::EBADF.into());
    }
    let pieces = pieces(cx, iovs, Access::Write)?;
    let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
    if total == 0 {
        return Ok(0);
    }
    let mem = cx.mem;
    if let [(gpa, n)] = pieces[..] {
        let got = blocking(cx, || mem.read_from(gpa, n, &mut &p.fd).map_err(memory_io))?;
        return Ok(got as u64);
    }
    let mut buf = vec![0u8; total.min(BOUNCE_BYTES) as usize];
    let got = blocking(cx, || Ok(rustix::io::read(&p.fd, &mut buf[..])?))?;
    scatter(mem, &pieces, &buf[..got])?;
    Ok(got as u64)
}

/// Copy `bytes` into the guest pieces, in order.
fn scatter(mem: &GuestMem, pieces: &[(Gpa, u64)], mut bytes: &[u8]) -> Result<(), Errno> {
    for &(gpa, n) in pieces {
        if bytes.is_empty() {
            break;
        }
        let take = (n as usize).min(bytes.len());
        mem.write_bytes(gpa, &bytes[..take])
            .map_err(|_| Errno::EFAULT)?;
        bytes = &bytes[take..];
    }
    Ok(())
}

/// write/writev on a pipe's write end: one host write per monitor buffer of bytes.
pub fn write(cx: &mut Ctx<'_, '_>, p: &PipeEnd, iovs: &[Iovec]) -> Sys {
    if !p.write {
        return Err(Errno::EBADF.into());
    }
    let pieces = pieces(cx, iovs, Access::Read)?;
    write_pieces(cx, p, &pieces)
}

fn write_pieces(cx: &mut Ctx<'_, '_>, p: &PipeEnd, pieces: &[(Gpa, u64)]) -> Sys {
    let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
    if total == 0 {
        return Ok(0);
    }
    let mem = cx.mem;
    let wrote = if let [(gpa, n)] = pieces[..] {
        blocking(cx, || mem.write_to(gpa, n, &mut &p.fd).map_err(memory_io)).map(|w| w as u64)
    } else {
        write_gathered(cx, p, pieces, total)
    };
    match wrote {
        Err(Errno::EPIPE) => Err(broken_pipe(cx)),
        r => Ok(r?),
    }
}

/// Several pieces: gathered into monitor buffers of up to BOUNCE_BYTES, one host write each
/// (the first carries all of a write up to PIPE_BUF, so it stays atomic, and one packet).
fn write_gathered(
    cx: &Ctx<'_, '_>,
    p: &PipeEnd,
    pieces: &[(Gpa, u64)],
    total: u64,
) -> Result<u64, Errno> {
    let mut buf = Vec::with_capacity(total.min(BOUNCE_BYTES) as usize);
    let mut done = 0u64;
    let mut rest = pieces
        .iter()
        .copied()
        .collect::<std::collections::VecDeque<_>>();
    while !rest.is_empty() {
        buf.clear();
        while let Some((gpa, n)) = rest.pop_front() {
            let room = BOUNCE_BYTES - buf.len() as u64;
            let take = n.min(room);
            let at = buf.len();
            buf.resize(at + take as usize, 0);
            cx.mem
                .read_bytes(gpa, &mut buf[at..])
                .map_err(|_| Errno::EFAULT)?;
            if take < n {
                rest.push_front((Gpa(gpa.0 + take), n - take));
                break;
            }
        }
        let w = match blocking(cx, || Ok(rustix::io::write(&p.fd, &buf)?)) {
            Ok(w) => w,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += w as u64;
        if w < buf.len() {
            break;
        }
    }
    Ok(done)
}

/// FIONREAD: the bytes waiting in the pipe.
pub fn unread(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer, which is `n`, valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(n)
}

fn last_errno() -> Errno {
    Errno::new(
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// F_GETPIPE_SZ (1032) and F_SETPIPE_SZ (1031) on the host pipe.
fn host_pipe_size(fd: BorrowedFd<'_>, set: Option<u32>) -> Result<u64, Errno> {
    let r = match set {
        // SAFETY: F_GETPIPE_SZ takes no argument and no pointer.
        None => unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) },
        // SAFETY: F_SETPIPE_SZ takes an int, no pointer.
        Some(n) => unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, n as libc::c_int) },
    };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(r as u64)
}

/// The host fd of a pipe: a pipe end, or a FIFO opened in a volume; else None.
fn pipe_fd(file: &OpenFile) -> Option<BorrowedFd<'_>> {
    if let Some(p) = file.as_pipe() {
        return Some(p.fd());
    }
    let fd = file.as_volume()?.fd.as_fd();
    is_fifo(fd).then_some(fd)
}

fn is_fifo(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .is_ok_and(|s| rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Fifo)
}

/// Linux's round_pipe_size: a page at least, else the next power of two; 0 (EINVAL) above 2^31.
fn round_pipe_size(size: u32) -> u64 {
    match size {
        s if s > 1 << 31 => 0,
        s if u64::from(s) < PAGE_4K => PAGE_4K,
        s => u64::from(s.next_power_of_two()),
    }
}

/// fcntl F_GETPIPE_SZ / F_SETPIPE_SZ (`set`): EBADF on anything but a pipe, as Linux's
/// pipe_fcntl. The application has no CAP_SYS_RESOURCE, so growing past
/// /proc/sys/fs/pipe-max-size is EPERM whatever the monitor may do; shrinking below the
/// bytes held is the host's EBUSY.
pub fn pipe_size(file: &OpenFile, set: Option<u64>) -> Sys {
    let fd = pipe_fd(file).ok_or(Errno::EBADF)?;
    let Some(arg) = set else {
        return Ok(host_pipe_size(fd, None)?);
    };
    // The argument is an unsigned int in pipe_fcntl.
    let size = round_pipe_size(arg as u32);
    if size == 0 {
        return Err(Errno::EINVAL.into());
    }
    if size > PIPE_MAX_SIZE && size > host_pipe_size(fd, None)? {
        return Err(Errno::EPERM.into());
    }
    Ok(host_pipe_size(fd, Some(size as u32))?)
}

/// The host fd behind a splice or tee side: EINVAL for a file without one (a caller's stream).
fn splice_fd(file: &OpenFile) -> Result<BorrowedFd<'_>, Errno> {
    if file.as_signalfd().is_some() || file.as_synthetic().is_some() {
        return Err(Errno::EINVAL);
    }
    file.host_fd().ok_or(Errno::EINVAL)
}

/// splice(fd_in, off_in, fd_out, off_out, len, flags) between host fds, in Linux's order:
/// len 0, flags, the fds (EBADF, also for the wrong direction), ESPIPE for an offset on a pipe,
/// then the offsets (EFAULT). The host checks the rest (EINVAL when neither is a pipe, or for an
/// O_APPEND output) and moves the bytes. The output's RLIMIT_FSIZE is the application's.
pub fn splice(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (fd_in, in_ptr, fd_out, out_ptr, len, flags) =
        (a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.len(4), a.uint(5));
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL.into());
    }
    let input = cx.process.fds().get(fd_in)?.file;
    let out = cx.process.fds().get(fd_out)?.file;
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF.into());
    }
    let (in_fd, out_fd) = (splice_fd(&input)?, splice_fd(&out)?);
    if (in_ptr != 0 && is_fifo(in_fd)) || (out_ptr != 0 && is_fifo(out_fd)) {
        return Err(Errno::ESPIPE.into());
    }
    let read_off = |ptr: u64| -> Result<Option<i64>, Errno> {
        Ok(if ptr == 0 {
            None
        } else {
            Some(cx.read_val(ptr)?)
        })
    };
    let mut off_out = read_off(out_ptr)?;
    let mut off_in = read_off(in_ptr)?;
    // Passed on whole: the host's rw_verify_area answers EINVAL for a negative ssize_t, as
    // Linux's, and caps the rest at MAX_RW_COUNT.
    let mut len = len;
    if (len as i64) > 0 && out.partial_copies() && !is_fifo(out_fd) {
        len = crate::linux::io::fsize_limit(cx, &out, len, off_out.map(|o| o as u64))?;
    }
    let moved = blocking(cx, || {
        let pin = off_in
            .as_mut()
            .map_or(std::ptr::null_mut(), |o| o as *mut i64);
        let pout = off_out
            .as_mut()
            .map_or(std::ptr::null_mut(), |o| o as *mut i64);
        // SAFETY: both fds are open for the borrow; each offset pointer is null or points at
        // a local loff_t that outlives the call.
        let r = unsafe {
            libc::splice(
                in_fd.as_raw_fd(),
                pin,
                out_fd.as_raw_fd(),
                pout,
                len as usize,
                flags,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as u64)
    });
    let moved = match moved {
        Err(Errno::EPIPE) => return Err(broken_pipe(cx)),
        r => r?,
    };
    if let Some(o) = off_out {
        cx.write_val(out_ptr, &o)?;
    }
    if let Some(o) = off_in {
        cx.write_val(in_ptr, &o)?;
    }
    Ok(moved)
}

/// tee(fd_in, fd_out, len, flags): Linux's order (flags, len 0, EBADF), then the host's tee,
/// which answers EINVAL unless both are distinct pipes.
pub fn tee(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (fd_in, fd_out, len, flags) = (a.fd(0), a.fd(1), a.len(2), a.uint(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL.into());
    }
    if len == 0 {
        return Ok(0);
    }
    let input = cx.process.fds().get(fd_in)?.file;
    let out = cx.process.fds().get(fd_out)?.file;
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF.into());
    }
    let (in_fd, out_fd) = (splice_fd(&input)?, splice_fd(&out)?);
    let moved = blocking(cx, || {
        // SAFETY: both fds are open for the borrow; tee takes no pointer.
        let r = unsafe { libc::tee(in_fd.as_raw_fd(), out_fd.as_raw_fd(), len as usize, flags) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as u64)
    });
    match moved {
        Err(Errno::EPIPE) => Err(broken_pipe(cx)),
        r => Ok(r?),
    }
}

/// vmsplice(fd, iov, nr_segs, flags): a copy, never a page reference (the host pipe must not
/// hold guest RAM): into a write end as writev, out of a read end as readv. Linux's order:
/// flags, fd (EBADF unless open for reading or writing), the iovecs (EINVAL, EFAULT), an empty
/// transfer (0), then EBADF for anything but a pipe. SPLICE_F_NONBLOCK (not the file's
/// O_NONBLOCK) makes it EAGAIN instead of waiting; a nonblocking one moves at most what fits
/// or what is there.
pub fn vmsplice(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    // import_iovec takes the count as an unsigned int.
    let (fd, at, count, flags) = (a.fd(0), a.ptr(1), u64::from(a.len(2) as u32), a.uint(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL.into());
    }
    let file = cx.process.fds().get(fd)?.file;
    let to_pipe = file.writable();
    if !to_pipe && !file.readable() {
        return Err(Errno::EBADF.into());
    }
    let iovs = iovecs(cx, at, count)?;
    if iovs.iter().all(|v| v.len == 0) {
        return Ok(0);
    }
    let Some(p) = file.as_pipe() else {
        return Err(Errno::EBADF.into());
    };
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    if to_pipe {
        let mut pieces = pieces(cx, &iovs, Access::Read)?;
        if nonblock {
            let size = host_pipe_size(p.fd(), None)?;
            let free = size.saturating_sub(unread(p.fd())?.max(0) as u64);
            if free == 0 {
                return Err(Errno::EAGAIN.into());
            }
            cut(&mut pieces, free.max(1));
        }
        return write_pieces(cx, p, &pieces);
    }
    if nonblock {
        let waiting = unread(p.fd())?.max(0) as u64;
        if waiting == 0 {
            // No writer left: the end of the data; else nothing yet.
            return if hung_up(p.fd()) {
                Ok(0)
            } else {
                Err(Errno::EAGAIN.into())
            };
        }
        let mut pieces = pieces(cx, &iovs, Access::Write)?;
        cut(&mut pieces, waiting);
        return read_pieces(cx, p, &pieces);
    }
    read(cx, p, &iovs)
}

/// Keep the first `max` bytes of `pieces`.
fn cut(pieces: &mut Vec<(Gpa, u64)>, max: u64) {
    let mut left = max;
    pieces.retain_mut(|(_, n)| {
        if left == 0 {
            return false;
        }
        *n = (*n).min(left);
        left -= *n;
        true
    });
}

fn read_pieces(cx: &mut Ctx<'_, '_>, p: &PipeEnd, pieces: &[(Gpa, u64)]) -> Sys {
    let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
    let mut buf = vec![0u8; total.min(BOUNCE_BYTES) as usize];
    let got = blocking(cx, || Ok(rustix::io::read(&p.fd, &mut buf[..])?))?;
    scatter(cx.mem, pieces, &buf[..got])?;
    Ok(got as u64)
}

/// Whether the read end's writers are all gone (POLLHUP at once).
fn hung_up(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut polls = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut polls, Some(&zero)).is_ok()
        && polls[0].revents().contains(PollFlags::HUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_sizes_round_as_linux() {
        assert_eq!(round_pipe_size(0), PAGE_4K);
        assert_eq!(round_pipe_size(1), PAGE_4K);
        assert_eq!(round_pipe_size(4097), 8192);
        assert_eq!(round_pipe_size(65536), 65536);
        assert_eq!(round_pipe_size(1 << 31), 1 << 31);
        assert_eq!(round_pipe_size((1 << 31) + 1), 0);
        assert_eq!(round_pipe_size(u32::MAX), 0);
    }

    #[test]
    fn cut_keeps_a_prefix() {
        let mut p = vec![(Gpa(0), 10), (Gpa(100), 10), (Gpa(200), 10)];
        cut(&mut p, 15);
        assert_eq!(p, vec![(Gpa(0), 10), (Gpa(100), 5)]);
    }
}
