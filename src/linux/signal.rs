//! Signals: numbers and names, the signal an exception maps to, the one line a fatal signal
//! reports, and the signal-state syscalls (dispositions, the mask, pending signals, the
//! alternate stack, kill/tgkill to itself). Delivery to handlers does not exist yet: a signal
//! whose disposition is not "ignore" ends the process here.
use super::abi::{SigAction, SigAltStack};
use super::process::Signals;
use super::{Args, Ctx, Process, Stop, Sys};
use crate::exit::ExitStatus;
use syscalls::Errno;

/// The signal Linux delivers for exception `vector`.
pub fn signal_for(vector: u64) -> i32 {
    match vector {
        0 => libc::SIGFPE,
        1 | 3 => libc::SIGTRAP,
        4 | 5 | 13 | 14 => libc::SIGSEGV,
        6 => libc::SIGILL,
        7 | 16 | 19 => libc::SIGFPE,
        12 | 17 => libc::SIGBUS,
        _ => libc::SIGSEGV,
    }
}

/// The application ends by `signal` at `rip`: "app killed by SIGSEGV: {detail}rip 0x..
/// (function+0x..)", the one line every application fault reports.
pub fn killed(process: &Process, signal: i32, detail: &str, rip: u64) -> ExitStatus {
    ExitStatus::Signaled {
        signal,
        report: format!(
            "app killed by {}: {detail}rip {rip:#x}{}",
            signal_name(signal),
            process.symbolize(rip)
        ),
    }
}

/// The name of signal `sig` ("SIGSEGV"), or "signal N".
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The highest signal number (_NSIG).
pub const NSIG: u64 = 64;
/// SIGKILL, as the syscalls take it.
pub const SIGKILL: u64 = libc::SIGKILL as u64;
/// SIGSTOP, as the syscalls take it.
pub const SIGSTOP: u64 = libc::SIGSTOP as u64;
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

fn bit(sig: u64) -> u64 {
    1 << (sig - 1)
}

pub(super) fn rt_sigaction(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (sig, act, oact, size) = (a.raw(0), a.ptr(1), a.ptr(2), a.len(3));
    if size != 8 || sig == 0 || sig > NSIG {
        return Err(Errno::EINVAL.into());
    }
    let new = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL.into());
        }
        Some(cx.read_val::<SigAction>(act)?)
    } else {
        None
    };
    if oact != 0 {
        let old = cx
            .process
            .signals()
            .actions
            .get(&sig)
            .copied()
            .unwrap_or_default();
        cx.write_val(oact, &old)?;
    }
    if let Some(n) = new {
        let mut s = cx.process.signals();
        s.actions.insert(sig, n);
        // A signal that is now ignored is dropped even while pending (Linux's do_sigaction).
        if disposition(&s, sig) == Disposition::Ignore {
            s.pending &= !bit(sig);
        }
    }
    Ok(0)
}

pub(super) fn rt_sigprocmask(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (how, set, oset, size) = (a.raw(0), a.ptr(1), a.ptr(2), a.len(3));
    if size != 8 {
        return Err(Errno::EINVAL.into());
    }
    let new = if set != 0 {
        if how > 2 {
            return Err(Errno::EINVAL.into());
        }
        Some(cx.read_val::<u64>(set)?)
    } else {
        None
    };
    let old = cx.thread.sigmask;
    if oset != 0 {
        cx.write_val(oset, &old)?;
    }
    if let Some(s) = new {
        let mask = match how {
            0 => old | s,
            1 => old & !s,
            _ => s,
        };
        cx.thread.sigmask = mask & !UNBLOCKABLE;
        deliver_unblocked(cx)?;
    }
    Ok(0)
}

/// rt_sigpending: the signals sent while blocked and not yet unblocked.
pub(super) fn rt_sigpending(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (set, size) = (a.ptr(0), a.len(1));
    if size > 8 {
        return Err(Errno::EINVAL.into());
    }
    let pending = (cx.process.signals().pending & cx.thread.sigmask).to_le_bytes();
    cx.space().write(cx.mem, set, &pending[..size as usize])?;
    Ok(0)
}

/// What a signal does when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposition {
    /// Nothing: SIG_IGN, or ignored by default.
    Ignore,
    /// Ends the process (the default action of most signals).
    Kill,
    /// Stops the process (SIGSTOP's default action).
    Stop,
    /// Runs a handler, which umon cannot do yet.
    Handler,
}

/// Signals whose default action is to do nothing.
const DEFAULT_IGNORED: [i32; 4] = [libc::SIGCHLD, libc::SIGCONT, libc::SIGURG, libc::SIGWINCH];
/// Stop signals a terminal sends (SIGTSTP, SIGTTIN, SIGTTOU). Linux discards them for a
/// process group with no parent in its session to resume it (an orphaned process group),
/// which is what the application is: its parent is outside its machine.
const TERMINAL_STOPS: [i32; 3] = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
const SIG_IGN: u64 = 1;

fn disposition(s: &Signals, sig: u64) -> Disposition {
    let handler = s.actions.get(&sig).map(|a| a.handler).unwrap_or(0);
    match handler {
        _ if sig == SIGKILL => Disposition::Kill,
        _ if sig == SIGSTOP => Disposition::Stop,
        SIG_IGN => Disposition::Ignore,
        0 if DEFAULT_IGNORED.contains(&(sig as i32)) || TERMINAL_STOPS.contains(&(sig as i32)) => {
            Disposition::Ignore
        }
        0 => Disposition::Kill,
        _ => Disposition::Handler,
    }
}

/// A signal arrives (it is not blocked): do what its disposition says. `origin` says where it
/// came from, for umon's line when it ends the process.
fn deliver(cx: &mut Ctx<'_, '_>, sig: u64, origin: &str) -> Sys {
    let disposition = disposition(&cx.process.signals(), sig);
    let how = match disposition {
        Disposition::Ignore => return Ok(0),
        Disposition::Stop => {
            // Stopped: only SIGCONT or SIGKILL from another process could go on, and there is
            // none, so the process stays stopped until umon is stopped (--timeout, a signal).
            super::time::sleep_until_stopped(cx)?;
            return Ok(0);
        }
        Disposition::Kill => origin.to_owned(),
        Disposition::Handler => {
            format!("{origin}; its handler was not run: umon does not deliver signals yet")
        }
    };
    let name = signal_name(sig as i32);
    Err(Stop::Exit(ExitStatus::Signaled {
        signal: sig as i32,
        report: format!("app killed by {name} ({how})"),
    }))
}

/// After the mask changed: pending signals no longer blocked arrive, lowest number first.
fn deliver_unblocked(cx: &mut Ctx<'_, '_>) -> Result<(), Stop> {
    loop {
        let ready = cx.process.signals().pending & !cx.thread.sigmask;
        if ready == 0 {
            return Ok(());
        }
        let sig = u64::from(ready.trailing_zeros()) + 1;
        cx.process.signals().pending &= !bit(sig);
        deliver(cx, sig, "pending, then unblocked")?;
    }
}

/// A signal the kernel sends the application (SIGXFSZ) for `why`.
pub(super) fn raise(cx: &mut Ctx<'_, '_>, sig: u64, why: &str) -> Sys {
    send(cx, sig, why)
}

/// A signal to the application itself: held while blocked (SIGKILL and SIGSTOP never are),
/// else delivered.
fn send_self(cx: &mut Ctx<'_, '_>, sig: u64) -> Sys {
    send(cx, sig, "sent by itself")
}

fn send(cx: &mut Ctx<'_, '_>, sig: u64, origin: &str) -> Sys {
    if sig > NSIG {
        return Err(Errno::EINVAL.into());
    }
    if sig == 0 {
        return Ok(0);
    }
    if cx.thread.sigmask & bit(sig) != 0 {
        cx.process.signals().pending |= bit(sig);
        return Ok(0);
    }
    deliver(cx, sig, origin)?;
    Ok(0)
}

/// kill(2): the only process is the application itself (pid 1, its own process group). There
/// is no signal delivery to handlers yet: a signal it sends itself is held while blocked, does
/// nothing when ignored, stops it (SIGSTOP) or ends it the way the default action would.
/// kill(-1) signals every process but the caller and init: there is none (ESRCH).
pub(super) fn kill(cx: &mut Ctx<'_, '_>, target: u64, sig: u64) -> Sys {
    match target as i32 {
        0 => send_self(cx, sig),
        t if t as u64 == u64::from(cx.process.tgid) => send_self(cx, sig),
        _ => Err(Errno::ESRCH.into()),
    }
}

/// tgkill(2) (and tkill(2), with the thread group of the caller).
pub(super) fn tgkill(cx: &mut Ctx<'_, '_>, tgid: u64, tid: u64, sig: u64) -> Sys {
    let (tgid, tid) = (tgid as i32, tid as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if tgid as u64 != u64::from(cx.process.tgid) {
        return Err(Errno::ESRCH.into());
    }
    if tid as u64 == u64::from(cx.thread.tid) {
        return send_self(cx, sig);
    }
    if !cx.process.has_thread(tid as u32) {
        return Err(Errno::ESRCH.into());
    }
    // Another thread: its mask is its own (umon does not see it from here), so the signal
    // takes its disposition's effect at once.
    if sig > NSIG {
        return Err(Errno::EINVAL.into());
    }
    if sig == 0 {
        return Ok(0);
    }
    if disposition(&cx.process.signals(), sig) == Disposition::Handler {
        // A handler umon cannot run yet, on a thread that is not the sender: dropped rather
        // than fatal, as runtimes send these for optional work (Go preempts goroutines with
        // SIGURG) and go on without it.
        return Ok(0);
    }
    deliver(cx, sig, "sent by another thread")?;
    Ok(0)
}

const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const MINSIGSTKSZ: u64 = 2048;

pub(super) fn sigaltstack(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (ss, old) = (a.ptr(0), a.ptr(1));
    let new = if ss != 0 {
        let n: SigAltStack = cx.read_val(ss)?;
        if n.flags & !(SS_DISABLE | SS_ONSTACK) != 0 {
            return Err(Errno::EINVAL.into());
        }
        if n.flags & SS_DISABLE == 0 && n.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM.into());
        }
        Some(n)
    } else {
        None
    };
    if old != 0 {
        let cur = cx.thread.altstack.unwrap_or(SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        });
        cx.write_val(old, &cur)?;
    }
    if let Some(n) = new {
        cx.thread.altstack = (n.flags & SS_DISABLE == 0).then_some(n);
    }
    Ok(0)
}
