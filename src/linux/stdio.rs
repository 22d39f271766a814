//! The application's standard streams. A stream is either one of umon's own host fds (the
//! CLI case: bytes go straight between the fd and guest memory, unbuffered, and isatty, fstat
//! and poll see the real file), a caller-supplied reader/writer (the library case), or closed
//! (umon's own fd was closed: the application's is too, as it would be after execve).
//!
//! No read or write here retries EINTR: on the thread that runs the VM the only signal that
//! interrupts a host call is a kick ([`crate::machine::stop`]), of a stop request (which must
//! end a write to a reader that never reads) or of a signal sent to the application's thread.
//! The syscall decides (`io::interrupted_wait`): a stop ends the call, a signal to take makes it
//! ERESTARTSYS (EINTR, or restarted with SA_RESTART), a kick with nothing to take retries.
use crate::machine::memory::GuestMem;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use umon_abi::Gpa;

/// Where the application's output goes.
pub enum Sink {
    /// A host file descriptor (a dup of umon's own stdout/stderr).
    Fd(File),
    /// Any writer; flushed after every write so ordering is kept. Behind a lock: the streams
    /// are shared by the process's threads.
    Writer(Mutex<Box<dyn Write + Send>>),
    /// umon's own fd was closed: the application's is closed too (EBADF).
    Closed,
}

/// Where the application's input comes from.
pub enum Source {
    /// A host file descriptor (a dup of umon's own stdin).
    Fd(File),
    /// Any reader (behind a lock, as [`Sink::Writer`]).
    Reader(Mutex<Box<dyn Read + Send>>),
    /// umon's own stdin was closed: the application's is closed too (EBADF).
    Closed,
}

use crate::linux::fd::file::{ebadf, memory_io as mem_io};
use crate::linux::fd::BOUNCE_BYTES;
use crate::linux::process::locked;

/// All of `buf`, short writes continued; EINTR ends it (see the module comment).
fn write_all(w: &mut impl Write, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Sink {
    /// umon's own fd `fd` (1 or 2), or nothing when it is closed.
    pub fn host(fd: BorrowedFd<'_>) -> Sink {
        match fd.try_clone_to_owned() {
            Ok(owned) => Sink::Fd(File::from(owned)),
            Err(_) => Sink::Closed,
        }
    }

    /// A stream to `w`.
    pub fn writer(w: Box<dyn Write + Send>) -> Sink {
        Sink::Writer(Mutex::new(w))
    }

    /// Write guest bytes; returns how many were taken (maybe short, like write(2)).
    pub fn write_guest(&self, mem: &GuestMem, gpa: Gpa, len: u64) -> io::Result<usize> {
        match self {
            Sink::Fd(f) => mem.write_to(gpa, len, &mut &*f).map_err(mem_io),
            Sink::Writer(w) => {
                let mut buf = vec![0u8; len.min(BOUNCE_BYTES) as usize];
                mem.read_bytes(gpa, &mut buf).map_err(mem_io)?;
                let mut w = locked(w);
                write_all(&mut *w, &buf)?;
                w.flush()?;
                Ok(buf.len())
            }
            Sink::Closed => Err(ebadf()),
        }
    }

    /// Write host bytes (the core's console, umon's own notes, trace lines). Unlike std's
    /// `write_all`, an interrupted write is not retried: it ends with
    /// [`io::ErrorKind::Interrupted`] (a stop request), never blocks again.
    pub fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Fd(f) => write_all(&mut &*f, buf),
            Sink::Writer(w) => {
                let mut w = locked(w);
                write_all(&mut *w, buf).and_then(|_| w.flush())
            }
            Sink::Closed => Err(ebadf()),
        }
    }

    /// The host fd, when there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Sink::Fd(f) => Some(f.as_fd()),
            Sink::Writer(_) | Sink::Closed => None,
        }
    }

    /// Whether the stream is closed (umon's own fd was).
    pub fn is_closed(&self) -> bool {
        matches!(self, Sink::Closed)
    }
}

impl Source {
    /// umon's own stdin, or an empty stream when it is closed.
    pub fn host(fd: BorrowedFd<'_>) -> Source {
        match fd.try_clone_to_owned() {
            Ok(owned) => Source::Fd(File::from(owned)),
            Err(_) => Source::Closed,
        }
    }

    /// A stream from `r`.
    pub fn reader(r: Box<dyn Read + Send>) -> Source {
        Source::Reader(Mutex::new(r))
    }

    /// Read into guest bytes; returns the count (0 at end of input).
    pub fn read_guest(&self, mem: &GuestMem, gpa: Gpa, len: u64) -> io::Result<usize> {
        match self {
            Source::Fd(f) => mem.read_from(gpa, len, &mut &*f).map_err(mem_io),
            Source::Reader(r) => {
                let mut buf = vec![0u8; len.min(BOUNCE_BYTES) as usize];
                let n = locked(r).read(&mut buf)?;
                mem.write_bytes(gpa, &buf[..n]).map_err(mem_io)?;
                Ok(n)
            }
            Source::Closed => Err(ebadf()),
        }
    }

    /// The host fd, when there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Source::Fd(f) => Some(f.as_fd()),
            Source::Reader(_) | Source::Closed => None,
        }
    }

    /// Whether the stream is closed (umon's own fd was).
    pub fn is_closed(&self) -> bool {
        matches!(self, Source::Closed)
    }
}

/// The three standard streams.
pub struct Stdio {
    /// fd 0.
    pub stdin: Source,
    /// fd 1.
    pub stdout: Sink,
    /// fd 2.
    pub stderr: Sink,
    /// Per stream, once asked: a host regular file or memory device (never blocks).
    pub quiet: [std::sync::OnceLock<bool>; 3],
}

impl Default for Stdio {
    /// All three closed.
    fn default() -> Self {
        Stdio {
            stdin: Source::Closed,
            stdout: Sink::Closed,
            stderr: Sink::Closed,
            quiet: Default::default(),
        }
    }
}

impl Stdio {
    /// umon's own stdin, stdout and stderr.
    pub fn inherit() -> Stdio {
        Stdio {
            stdin: Source::host(rustix::stdio::stdin()),
            stdout: Sink::host(rustix::stdio::stdout()),
            stderr: Sink::host(rustix::stdio::stderr()),
            quiet: Default::default(),
        }
    }

    /// Output to the given writers, no input.
    pub fn capture(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Stdio {
        Stdio {
            stdin: Source::reader(Box::new(io::empty())),
            stdout: Sink::writer(stdout),
            stderr: Sink::writer(stderr),
            quiet: Default::default(),
        }
    }

    /// Whether stream `n` (0, 1, 2) is closed.
    pub fn is_closed(&self, n: u8) -> bool {
        match n {
            0 => self.stdin.is_closed(),
            1 => self.stdout.is_closed(),
            2 => self.stderr.is_closed(),
            _ => false,
        }
    }

    /// Whether a transfer on stream `n` never waits: a host regular file, or one of Linux's
    /// memory devices (1:3, 1:5, 1:7, 1:8, 1:9: /dev/null, zero, full, random, urandom). A terminal, pipe,
    /// socket or caller's writer may block. Asked once per stream.
    pub fn never_blocks(&self, n: u8) -> bool {
        let Some(cell) = self.quiet.get(usize::from(n)) else {
            return false;
        };
        *cell.get_or_init(|| {
            self.host_fd(n)
                .and_then(|fd| rustix::fs::fstat(fd).ok())
                .is_some_and(|st| {
                    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
                    kind == rustix::fs::FileType::RegularFile
                        || (kind == rustix::fs::FileType::CharacterDevice
                            && rustix::fs::major(st.st_rdev) == 1
                            && [3, 5, 7, 8, 9].contains(&rustix::fs::minor(st.st_rdev)))
                })
        })
    }

    /// The host fd behind stream `n` (0, 1, 2), when there is one.
    pub fn host_fd(&self, n: u8) -> Option<BorrowedFd<'_>> {
        match n {
            0 => self.stdin.fd(),
            1 => self.stdout.fd(),
            2 => self.stderr.fd(),
            _ => None,
        }
    }
}
