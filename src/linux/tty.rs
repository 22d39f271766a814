//! Terminal ioctls on umon's own stdio, on behalf of the application (so isatty, line
//! buffering and window size behave as on the host; they have no safe wrapper), and `/dev/tty`.
use super::abi::{oflag, Stat, TERMIOS_BYTES};
use super::fd::file::{ebadf, espipe, memory_io, FileDescription};
use super::fd::BOUNCE_BYTES;
use super::process::locked;
use super::stdio::Stdio;
use crate::machine::memory::GuestMem;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use umon_abi::Gpa;

/// TCGETS on `fd`: the kernel's `struct termios` bytes.
pub fn tcgets(fd: BorrowedFd<'_>) -> io::Result<[u8; TERMIOS_BYTES]> {
    // glibc's struct termios is larger than the kernel's; give the kernel room either way.
    let mut buf = [0u8; 64];
    // SAFETY: TCGETS writes one kernel `struct termios` (36 bytes) into the 64-byte buffer,
    // which lives across the call; `fd` is a valid open descriptor borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = [0u8; TERMIOS_BYTES];
    out.copy_from_slice(&buf[..TERMIOS_BYTES]);
    Ok(out)
}

/// TCSETS/TCSETSW/TCSETSF (`request`) on `fd` with the kernel's `struct termios` bytes.
pub fn tcsets(fd: BorrowedFd<'_>, request: u64, termios: &[u8; TERMIOS_BYTES]) -> io::Result<()> {
    let mut buf = [0u8; 64];
    buf[..TERMIOS_BYTES].copy_from_slice(termios);
    // SAFETY: the TCSETS family only reads one kernel `struct termios` from the buffer, which is
    // larger than that and lives across the call; `request` is one of the three set requests.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, buf.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `/dev/tty` opened while umon's stdin is a terminal: that terminal, read and written through
/// umon's own stdin (a terminal is opened read-write), its ioctls forwarded as the standard
/// streams' are. The status flags are the description's own; O_NONBLOCK is recorded, never
/// set on umon's terminal (which other programs share).
#[derive(Debug)]
pub struct TtyFile {
    stdio: Arc<Stdio>,
    stat: Stat,
    flags: Mutex<u64>,
}

impl TtyFile {
    /// A description of the terminal umon's stdin is, reporting `stat` (/dev/tty's own); None
    /// when stdin is no terminal.
    pub fn open(stdio: &Arc<Stdio>, stat: Stat) -> Option<TtyFile> {
        let fd = stdio.stdin.fd()?;
        if !rustix::termios::isatty(fd) {
            return None;
        }
        Some(TtyFile {
            stdio: stdio.clone(),
            stat,
            flags: Mutex::new(oflag::RDWR | oflag::LARGEFILE),
        })
    }

    fn acc(&self) -> u64 {
        *locked(&self.flags) & oflag::ACCMODE
    }

    fn write_host(&self, buf: &[u8]) -> io::Result<usize> {
        if !self.writable() {
            return Err(ebadf());
        }
        let fd = self.host_fd().ok_or_else(ebadf)?;
        Ok(rustix::io::write(fd, buf)?)
    }
}

impl FileDescription for TtyFile {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        if pos.is_some() {
            return Err(espipe());
        }
        if !self.readable() {
            return Err(ebadf());
        }
        self.stdio.stdin.read_guest(mem, gpa, len)
    }

    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        if pos.is_some() {
            return Err(espipe());
        }
        let mut buf = vec![0u8; len.min(BOUNCE_BYTES) as usize];
        mem.read_bytes(gpa, &mut buf).map_err(memory_io)?;
        self.write_host(&buf)
    }

    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize> {
        if pos.is_some() {
            return Err(espipe());
        }
        self.write_host(buf)
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdio.stdin.fd()
    }

    fn tty(&self) -> Option<BorrowedFd<'_>> {
        self.host_fd()
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        Ok(self.stat)
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        Ok(*locked(&self.flags))
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        let mut f = locked(&self.flags);
        *f = (*f & !u64::from(mask)) | u64::from(bits & mask);
        Ok(())
    }

    fn readable(&self) -> bool {
        self.acc() != oflag::WRONLY
    }

    fn writable(&self) -> bool {
        self.acc() != oflag::RDONLY
    }
}
