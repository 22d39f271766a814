//! The few host calls that have no safe wrapper: terminal ioctls on umon's own stdio, on behalf
//! of the application (so isatty, line buffering and window size behave as on the host).
use crate::syscall::linux::TERMIOS_BYTES;
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

/// The calling thread's pthread handle.
pub fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() }
}

/// Send `signal` to `thread`. The caller guarantees `thread` is alive (the stop module keeps the
/// handle only while the thread is inside `Vm::run`, under a lock).
pub fn signal_thread(thread: libc::pthread_t, signal: i32) -> io::Result<()> {
    // SAFETY: `thread` is a live thread of this process (caller's contract, enforced by
    // `stop::Shared`), and a bad signal number only makes pthread_kill return an error.
    let r = unsafe { libc::pthread_kill(thread, signal) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}
