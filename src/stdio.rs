//! The application's standard streams. A stream is either one of umon's own host fds (the
//! CLI case: bytes go straight between the fd and guest memory, unbuffered, and isatty, fstat
//! and poll see the real file) or a caller-supplied reader/writer (the library case).
use crate::memory::{GuestMem, MemoryError};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use umon_abi::Gpa;

/// Where the application's output goes.
pub enum Sink {
    /// A host file descriptor (a dup of umon's own stdout/stderr).
    Fd(File),
    /// Any writer; flushed after every write so ordering is kept.
    Writer(Box<dyn Write + Send>),
}

/// Where the application's input comes from.
pub enum Source {
    /// A host file descriptor (a dup of umon's own stdin).
    Fd(File),
    /// Any reader.
    Reader(Box<dyn Read + Send>),
}

fn mem_io(e: MemoryError) -> io::Error {
    match e {
        MemoryError::Io(io) => io,
        other => io::Error::new(io::ErrorKind::InvalidInput, other),
    }
}

impl Sink {
    /// umon's own fd `fd` (1 or 2), or nothing when it is closed.
    pub fn host(fd: BorrowedFd<'_>) -> Sink {
        match fd.try_clone_to_owned() {
            Ok(owned) => Sink::Fd(File::from(owned)),
            Err(_) => Sink::Writer(Box::new(io::sink())),
        }
    }

    /// Write guest bytes; returns how many were taken (maybe short, like write(2)).
    pub fn write_guest(&mut self, mem: &GuestMem, gpa: Gpa, len: u64) -> io::Result<usize> {
        match self {
            Sink::Fd(f) => mem.write_to(gpa, len, f).map_err(mem_io),
            Sink::Writer(w) => {
                let mut buf = vec![0u8; len.min(1 << 20) as usize];
                mem.read_bytes(gpa, &mut buf).map_err(mem_io)?;
                w.write_all(&buf)?;
                w.flush()?;
                Ok(buf.len())
            }
        }
    }

    /// Write host bytes (the core's console, umon's own notes).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Fd(f) => f.write_all(buf),
            Sink::Writer(w) => w.write_all(buf).and_then(|_| w.flush()),
        }
    }

    /// The host fd, when there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Sink::Fd(f) => Some(f.as_fd()),
            Sink::Writer(_) => None,
        }
    }
}

impl Source {
    /// umon's own stdin, or an empty stream when it is closed.
    pub fn host(fd: BorrowedFd<'_>) -> Source {
        match fd.try_clone_to_owned() {
            Ok(owned) => Source::Fd(File::from(owned)),
            Err(_) => Source::Reader(Box::new(io::empty())),
        }
    }

    /// Read into guest bytes; returns the count (0 at end of input).
    pub fn read_guest(&mut self, mem: &GuestMem, gpa: Gpa, len: u64) -> io::Result<usize> {
        match self {
            Source::Fd(f) => mem.read_from(gpa, len, f).map_err(mem_io),
            Source::Reader(r) => {
                let mut buf = vec![0u8; len.min(1 << 20) as usize];
                let n = r.read(&mut buf)?;
                mem.write_bytes(gpa, &buf[..n]).map_err(mem_io)?;
                Ok(n)
            }
        }
    }

    /// The host fd, when there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Source::Fd(f) => Some(f.as_fd()),
            Source::Reader(_) => None,
        }
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
}

impl Stdio {
    /// umon's own stdin, stdout and stderr.
    pub fn inherit() -> Stdio {
        Stdio {
            stdin: Source::host(rustix::stdio::stdin()),
            stdout: Sink::host(rustix::stdio::stdout()),
            stderr: Sink::host(rustix::stdio::stderr()),
        }
    }

    /// Output to the given writers, no input.
    pub fn capture(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Stdio {
        Stdio {
            stdin: Source::Reader(Box::new(io::empty())),
            stdout: Sink::Writer(stdout),
            stderr: Sink::Writer(stderr),
        }
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
