//! Signals sent to umon itself that its application takes: `umon run`'s SIGINT, SIGTERM,
//! SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGCONT, as kill(2) from outside the
//! guest's pid namespace would send them (SI_USER, si_pid 0).
//!
//! [`claim`] blocks them on the first thread, so on every monitor thread: a signal sent to
//! umon stays pending on the host process until it is taken here, in two places:
//! - every syscall, before it returns to the application ([`take_pending`], one
//!   `rt_sigpending`): a signal sent to umon before something the application then observes
//!   (a line on its stdin, a file, the end of a child) is queued before the call that observes
//!   it returns, as kill(2) makes it pending at once on Linux;
//! - the intake thread, which waits on a signalfd (that only looks, never takes) for a
//!   guest that makes no syscall or sleeps in one, and kicks it.
//!
//! While the intake thread holds signals it took but has not queued yet, `IN_FLIGHT` says
//! so: it is raised before the take, so a syscall that saw nothing pending but sees it raised
//! waits for those to be queued. A forked monitor inherits the set, the mask and the signalfd,
//! and starts an intake thread of its own for its process ([`start`]).
#![allow(unsafe_code)] // the host's signal mask, pending set, signalfd and sigtimedwait
use super::super::abi::{SigInfo, SI_USER};
use super::super::Process;
use crate::machine::stop::KillHandle;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// The claimed signals (bit n-1 for signal n); 0: none, nothing to take.
static CLAIMED: AtomicU64 = AtomicU64::new(0);
/// The signalfd of [`CLAIMED`] the intake thread polls; -1 before the first [`claim`].
static SIGNALFD: AtomicI32 = AtomicI32::new(-1);
/// Signals the intake thread is taking or has taken and not queued yet (0 or 1).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Why signals could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum HostSignalError {
    /// Not a signal an application can take from umon (1..=31, not SIGKILL or SIGSTOP).
    #[error("signal {0} cannot be passed to the application")]
    Invalid(i32),
    /// The host refused a mask change or the signalfd.
    #[error("cannot claim host signals: {0}")]
    Host(#[source] std::io::Error),
}

/// The kernel's sigset (of `rt_sigprocmask`, `rt_sigpending`, `rt_sigtimedwait`, `signalfd4`):
/// one u64, bit n-1 for signal n, 8 bytes.
const SIGSET_SIZE: usize = 8;

/// Make `signals` umon's own, to be passed to the application of every VM that runs from now
/// on in this process: block them on the calling thread (and so on every thread it starts
/// later). Call it before any other thread exists: one that does not block them would take
/// them itself (their default action: mostly the end of umon). Standard signals only.
pub fn claim(signals: &[i32]) -> Result<(), HostSignalError> {
    let mut mask = 0u64;
    for &sig in signals {
        if !(1..=31).contains(&sig) || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            return Err(HostSignalError::Invalid(sig));
        }
        mask |= 1 << (sig - 1);
    }
    // SAFETY: `mask` is a kernel sigset of SIGSET_SIZE bytes; no old mask is asked for.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &mask,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        )
    };
    if rc != 0 {
        return Err(HostSignalError::Host(std::io::Error::last_os_error()));
    }
    let mask = CLAIMED.fetch_or(mask, Ordering::SeqCst) | mask;
    // Made here, on the first thread: the vCPU threads' seccomp filter has no signalfd4. An
    // earlier one (of a smaller set) is replaced.
    let old = SIGNALFD.load(Ordering::SeqCst);
    // SAFETY: `mask` is a kernel sigset of SIGSET_SIZE bytes; `old` is -1 or our signalfd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            old,
            &mask,
            SIGSET_SIZE,
            libc::SFD_CLOEXEC,
        )
    };
    let fd = i32::try_from(rc).unwrap_or(-1);
    if fd < 0 {
        return Err(HostSignalError::Host(std::io::Error::last_os_error()));
    }
    SIGNALFD.store(fd, Ordering::SeqCst);
    Ok(())
}

/// Start the intake thread of `process` (the first VM's, or a forked monitor's): what it
/// takes goes to `process`, and `kicker` interrupts the thread that takes it. Nothing if no
/// signal was claimed.
pub fn start(process: &Arc<Process>, kicker: &KillHandle) -> Result<(), HostSignalError> {
    let mask = CLAIMED.load(Ordering::SeqCst);
    if mask == 0 {
        return Ok(());
    }
    // A forked monitor may have been made while its parent's intake thread held a signal.
    IN_FLIGHT.store(0, Ordering::SeqCst);
    let fd = SIGNALFD.load(Ordering::SeqCst);
    let weak = Arc::downgrade(process);
    let kicker = kicker.clone();
    std::thread::Builder::new()
        .name("host-signals".into())
        .stack_size(64 << 10)
        .spawn(move || intake(fd, mask, &weak, &kicker))
        .map(drop)
        .map_err(HostSignalError::Host)
}

/// The intake thread: wait until one of `mask` is pending, then take them all, until the
/// process is gone.
fn intake(fd: i32, mask: u64, process: &Weak<Process>, kicker: &KillHandle) {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the signalfd lives as long as the process.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            log::warn!("host signals: poll: {}", std::io::Error::last_os_error());
            return;
        }
        let Some(p) = process.upgrade() else {
            return;
        };
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        take(&p, kicker, mask);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Take every pending one of `mask` and queue it for `process`.
fn take(process: &Process, kicker: &KillHandle, mask: u64) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: `mask` is a kernel sigset of SIGSET_SIZE bytes, `zero` a timespec; no
        // siginfo is asked for.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &mask,
                std::ptr::null_mut::<libc::siginfo_t>(),
                &zero,
                SIGSET_SIZE,
            )
        };
        let Ok(sig @ 1..=31) = i32::try_from(rc) else {
            return;
        };
        let mut info = SigInfo {
            signo: sig,
            code: SI_USER,
            ..Default::default()
        };
        info.fields[0] = crate::machine::host::ids().uid << 32;
        // Only a real-time signal can be refused (EAGAIN), and these are standard ones.
        let _ = super::send_to_process(process, kicker, info);
    }
}

/// Before a syscall returns to the application: queue for `process` the claimed signals sent
/// to umon so far, and wait for those the intake thread is queueing.
pub fn take_pending(process: &Process, kicker: &KillHandle) {
    let mask = CLAIMED.load(Ordering::Relaxed);
    if mask == 0 {
        return;
    }
    let mut pending = 0u64;
    // SAFETY: the kernel writes SIGSET_SIZE bytes of pending set into `pending`.
    let rc = unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut pending, SIGSET_SIZE) };
    if rc == 0 && pending & mask != 0 {
        take(process, kicker, mask);
    }
    while IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}
