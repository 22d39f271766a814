//! Terminal ioctls on umon's own stdio, on behalf of the application (so isatty, line
//! buffering and window size behave as on the host). They have no safe wrapper.
use super::abi::TERMIOS_BYTES;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

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
