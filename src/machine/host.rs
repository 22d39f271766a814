//! The host process umon runs in: its identity, its threads (who runs a vCPU, how to signal
//! one) and the SIGSYS reporter of the seccomp filter. Machine-level: it imports nothing above.
use std::io;

/// Host identity the application runs with.
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    /// uid.
    pub uid: u64,
    /// gid.
    pub gid: u64,
}

/// umon's own uid and gid, which the application sees as its own.
pub fn ids() -> Ids {
    Ids {
        uid: u64::from(rustix::process::getuid().as_raw()),
        gid: u64::from(rustix::process::getgid().as_raw()),
    }
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

/// SIGSYS from the seccomp filter: one line naming the syscall, then exit 125. Only
/// async-signal-safe calls (write, _exit) and a stack buffer.
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Offset of `_sigsys._syscall` in the kernel's siginfo: signo, errno, code (12 bytes),
    // padding to 16, then the call address (8 bytes).
    const SYSCALL_OFFSET: usize = 24;
    let nr = if info.is_null() {
        -1
    } else {
        let at = info.cast::<u8>().wrapping_add(SYSCALL_OFFSET).cast::<i32>();
        // SAFETY: the kernel passes a valid siginfo_t (128 bytes) to an SA_SIGINFO handler; for
        // SIGSYS the syscall number is an i32 at this offset, inside the struct.
        unsafe { at.read_unaligned() }
    };
    let mut line = [0u8; 96];
    let prefix = b"umon: seccomp: the monitor made a syscall outside its allow-list: ";
    let mut n = prefix.len();
    line[..n].copy_from_slice(prefix);
    let mut digits = [0u8; 12];
    let mut v = i64::from(nr).unsigned_abs();
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let tail = &digits[d..];
    line[n..n + tail.len()].copy_from_slice(tail);
    n += tail.len();
    line[n] = b'\n';
    n += 1;
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer lives on this stack.
    unsafe {
        libc::write(2, line.as_ptr().cast(), n);
    }
    // SAFETY: ending the process from a signal handler with _exit is async-signal-safe.
    unsafe { libc::_exit(crate::exit::EXIT_UMON_FAILED) }
}

/// Install the SIGSYS reporter (idempotent).
pub fn install_sigsys_reporter() {
    if let Err(e) = vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, on_sigsys) {
        log::warn!("cannot install the SIGSYS handler: {e}");
    }
}
