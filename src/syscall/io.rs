//! File-descriptor syscalls. Until volumes exist the only files are the standard streams; a path
//! lookup finds nothing (ENOENT).
use super::fd::{Fd, OpenFile};
use super::linux::{
    fcntl, ioctl as tio, mode, Iovec, PollFd, Stat, Statx, Timespec, TERMIOS_BYTES,
};
use super::{Args, Ctx, Stop, Sys};
use crate::addrspace::Access;
use crate::ExitStatus;
use std::os::fd::BorrowedFd;
use std::time::Duration;
use syscalls::Errno;

/// Largest single transfer, as Linux caps it (MAX_RW_COUNT).
const MAX_RW: u64 = 0x7fff_f000;
/// Longest path accepted (PATH_MAX including the NUL).
pub const PATH_MAX: usize = 4096;
/// Most iovecs in one readv/writev (UIO_MAXIOV).
const MAX_IOV: u64 = 1024;

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::EIO)
}

pub fn read(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    read_into(cx, file, a.0[1], a.0[2].min(MAX_RW))
}

/// One read(2): only into the first physically contiguous piece, so a read never blocks for more
/// input once some has arrived.
fn read_into(cx: &mut Ctx<'_, '_>, file: OpenFile, buf: u64, len: u64) -> Sys {
    if file != OpenFile::Stdin {
        return Err(Errno::EBADF.into());
    }
    let chunks = cx.space().chunks(buf, len, Access::Write)?;
    let Some(&(gpa, n)) = chunks.first() else {
        return Ok(0);
    };
    let got = cx
        .state
        .stdio
        .stdin
        .read_guest(cx.mem, gpa, n)
        .map_err(io_errno)?;
    Ok(got as u64)
}

pub fn write(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    write_from(cx, file, a.0[1], a.0[2].min(MAX_RW))
}

fn write_from(cx: &mut Ctx<'_, '_>, file: OpenFile, buf: u64, len: u64) -> Sys {
    let chunks = cx.space().chunks(buf, len, Access::Read)?;
    let mut done = 0u64;
    for (gpa, n) in chunks {
        let sink = match file {
            OpenFile::Stdout => &mut cx.state.stdio.stdout,
            OpenFile::Stderr => &mut cx.state.stdio.stderr,
            OpenFile::Stdin => return Err(Errno::EBADF.into()),
        };
        match sink.write_guest(cx.mem, gpa, n) {
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

/// Writing to a pipe nobody reads: Linux sends SIGPIPE, which kills the process unless it
/// ignores or handles the signal (then the write fails with EPIPE).
fn broken_pipe(cx: &Ctx<'_, '_>) -> Stop {
    let handled = cx
        .state
        .process
        .sigactions
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
    let mut total = 0u64;
    for i in 0..count {
        let iov: Iovec = cx.read_val(at + i * 16)?;
        total = total.checked_add(iov.len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

pub fn readv(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    let mut done = 0;
    for iov in iovecs(cx, a.0[1], a.0[2])? {
        if iov.len == 0 {
            continue;
        }
        let n = read_into(cx, file, iov.base, iov.len.min(MAX_RW - done))?;
        done += n;
        // Never block again once something arrived.
        if n < iov.len || done >= MAX_RW || n > 0 {
            break;
        }
    }
    Ok(done)
}

pub fn writev(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    let mut done = 0;
    for iov in iovecs(cx, a.0[1], a.0[2])? {
        let want = iov.len.min(MAX_RW - done);
        let n = match write_from(cx, file, iov.base, want) {
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

/// pread64/pwrite64/preadv/pwritev: the standard streams are not seekable.
pub fn positioned(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    cx.state.process.fds.get(a.0[0])?;
    Err(Errno::ESPIPE.into())
}

pub fn lseek(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    let Some(fd) = cx.state.stdio.host_fd(file.stream()) else {
        return Err(Errno::ESPIPE.into());
    };
    let pos = match a.0[2] {
        0 => rustix::fs::SeekFrom::Start(a.0[1]),
        1 => rustix::fs::SeekFrom::Current(a.0[1] as i64),
        2 => rustix::fs::SeekFrom::End(a.0[1] as i64),
        _ => return Err(Errno::EINVAL.into()),
    };
    rustix::fs::seek(fd, pos).map_err(|e| Errno::new(e.raw_os_error()).into())
}

pub fn close(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    cx.proc().fds.close(a.0[0])?;
    Ok(0)
}

/// The stat of an open file: the host's view of umon's own stream, or a pipe when the stream
/// is a caller-supplied reader/writer.
fn stat_of(cx: &Ctx<'_, '_>, file: OpenFile) -> Stat {
    let ids = super::ids();
    let synthetic = Stat {
        mode: mode::S_IFIFO | 0o600,
        nlink: 1,
        uid: ids.uid as u32,
        gid: ids.gid as u32,
        blksize: 4096,
        ..Default::default()
    };
    let Some(fd) = cx.state.stdio.host_fd(file.stream()) else {
        return synthetic;
    };
    match rustix::fs::fstat(fd) {
        Ok(s) => Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            nlink: s.st_nlink,
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            pad0: 0,
            rdev: s.st_rdev,
            size: s.st_size,
            blksize: s.st_blksize,
            blocks: s.st_blocks,
            atime: s.st_atime,
            atime_nsec: s.st_atime_nsec as i64,
            mtime: s.st_mtime,
            mtime_nsec: s.st_mtime_nsec as i64,
            ctime: s.st_ctime,
            ctime_nsec: s.st_ctime_nsec as i64,
            unused: [0; 3],
        },
        Err(_) => synthetic,
    }
}

pub fn fstat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    let st = stat_of(cx, file);
    cx.write_val(a.0[1], &st)?;
    Ok(0)
}

/// The file an `*at` call with `path` names: only "" with AT_EMPTY_PATH finds one for now.
fn at_file(cx: &Ctx<'_, '_>, dirfd: u64, path: u64, flags: u64) -> Result<OpenFile, Errno> {
    let name = cx.space().read_cstr(cx.mem, path, PATH_MAX - 1)?;
    if name.is_empty() && flags & fcntl::AT_EMPTY_PATH != 0 {
        if dirfd as i32 == fcntl::AT_FDCWD {
            return Err(Errno::ENOENT);
        }
        return Ok(cx.state.process.fds.get(dirfd)?.file);
    }
    Err(Errno::ENOENT)
}

pub fn newfstatat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = at_file(cx, a.0[0], a.0[1], a.0[3])?;
    let st = stat_of(cx, file);
    cx.write_val(a.0[2], &st)?;
    Ok(0)
}

pub fn statx(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = at_file(cx, a.0[0], a.0[1], a.0[2])?;
    let st = Statx::from_stat(&stat_of(cx, file));
    cx.write_val(a.0[4], &st)?;
    Ok(0)
}

/// A path-based call with no file system behind it: EFAULT for a bad pointer, ENOENT otherwise.
pub fn path_lookup(cx: &mut Ctx<'_, '_>, path: u64) -> Sys {
    cx.space().read_cstr(cx.mem, path, PATH_MAX - 1)?;
    Err(Errno::ENOENT.into())
}

fn tty<'s>(cx: &'s Ctx<'_, '_>, file: OpenFile) -> Option<BorrowedFd<'s>> {
    cx.state
        .stdio
        .host_fd(file.stream())
        .filter(|fd| rustix::termios::isatty(fd))
}

pub fn ioctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    let (req, arg) = (a.0[1] & 0xffff_ffff, a.0[2]);
    if req == tio::FIONBIO {
        cx.read_val::<i32>(arg)?;
        return Ok(0);
    }
    let Some(fd) = tty(cx, file) else {
        return Err(Errno::ENOTTY.into());
    };
    let os = |e: std::io::Error| Stop::from(io_errno(e));
    match req {
        tio::TCGETS => {
            let t = crate::host::tcgets(fd).map_err(os)?;
            cx.write_val(arg, &t)?;
        }
        tio::TCSETS | tio::TCSETSW | tio::TCSETSF => {
            let t: [u8; TERMIOS_BYTES] = cx.read_val(arg)?;
            crate::host::tcsets(fd, req, &t).map_err(os)?;
        }
        tio::TIOCGWINSZ => {
            let w = rustix::termios::tcgetwinsize(fd)
                .map_err(|e| Stop::from(Errno::new(e.raw_os_error())))?;
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
    let ms = a.0[2] as i32;
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    poll_fds(cx, a.0[0], a.0[1], timeout)
}

pub fn ppoll(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let timeout = if a.0[2] == 0 {
        None
    } else {
        Some(super::time::duration(cx.read_val::<Timespec>(a.0[2])?)?)
    };
    poll_fds(cx, a.0[0], a.0[1], timeout)
}

fn poll_fds(cx: &mut Ctx<'_, '_>, at: u64, nfds: u64, timeout: Option<Duration>) -> Sys {
    use rustix::event::{PollFd as HostPoll, PollFlags};
    if nfds > cx.state.process.fds.limit {
        return Err(Errno::EINVAL.into());
    }
    let mut fds: Vec<PollFd> = (0..nfds)
        .map(|i| cx.read_val(at + i * 8))
        .collect::<Result<_, _>>()?;
    // Streams that are not host fds (captured output, supplied input) are always ready.
    let mut host: Vec<(usize, BorrowedFd<'_>)> = Vec::new();
    let mut ready_now = false;
    for (i, p) in fds.iter_mut().enumerate() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        match cx.state.process.fds.get(p.fd as u64) {
            Err(_) => p.revents = libc::POLLNVAL,
            Ok(Fd { file, .. }) => match cx.state.stdio.host_fd(file.stream()) {
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
        if let Some(d) = wait {
            std::thread::sleep(d);
        } else if !ready_now {
            return Err(Errno::EINTR.into());
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
        rustix::event::poll(&mut polls, ts.as_ref())
            .map_err(|e| Stop::from(Errno::new(e.raw_os_error())))?;
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
    let fd = cx.state.process.fds.get(a.0[0])?;
    Ok(cx.proc().fds.alloc(
        0,
        Fd {
            cloexec: false,
            ..fd
        },
    )?)
}

pub fn dup2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (old, new) = (a.0[0], a.0[1]);
    let fd = cx.state.process.fds.get(old)?;
    if old != new {
        cx.proc().fds.set(
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
    let (old, new, flags) = (a.0[0], a.0[1], a.0[2]);
    if old == new || flags & !fcntl::O_CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    let fd = cx.state.process.fds.get(old)?;
    cx.proc().fds.set(
        new,
        Fd {
            cloexec: flags != 0,
            ..fd
        },
    )?;
    Ok(new)
}

pub fn fcntl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (n, cmd, arg) = (a.0[0], a.0[1], a.0[2]);
    let fd = cx.state.process.fds.get(n)?;
    match cmd {
        fcntl::F_DUPFD | fcntl::F_DUPFD_CLOEXEC => Ok(cx.proc().fds.alloc(
            arg,
            Fd {
                cloexec: cmd == fcntl::F_DUPFD_CLOEXEC,
                ..fd
            },
        )?),
        fcntl::F_GETFD => Ok(if fd.cloexec { fcntl::FD_CLOEXEC } else { 0 }),
        fcntl::F_SETFD => {
            cx.proc().fds.get_mut(n)?.cloexec = arg & fcntl::FD_CLOEXEC != 0;
            Ok(0)
        }
        fcntl::F_GETFL => Ok(match cx.state.stdio.host_fd(fd.file.stream()) {
            Some(h) => rustix::fs::fcntl_getfl(h)
                .map(|f| u64::from(f.bits()))
                .unwrap_or(0),
            None if fd.file == OpenFile::Stdin => 0,
            None => fcntl::O_WRONLY,
        }),
        // Status flags of the shared host streams stay as they are.
        fcntl::F_SETFL => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}
