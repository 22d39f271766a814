//! Signals: numbers and names, the signal an exception maps to, the one line a fatal signal
//! reports, and the signal-state syscalls (dispositions, the mask, pending signals, the
//! alternate stack, kill/tgkill to itself). A signal with a handler is queued on the thread
//! and its handler runs when the syscall returns (`sigframe`).
use super::abi::{
    SigAction, SigAltStack, SigInfo, SI_TKILL, SI_USER, SS_AUTODISARM, SS_DISABLE, SS_ONSTACK,
};
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
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
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
pub(super) const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub(super) fn bit(sig: u64) -> u64 {
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
            s.pending_info.remove(&sig);
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
    /// Runs a handler.
    Handler,
}

/// Signals whose default action is to do nothing.
const DEFAULT_IGNORED: [i32; 4] = [libc::SIGCHLD, libc::SIGCONT, libc::SIGURG, libc::SIGWINCH];
/// Stop signals a terminal sends (SIGTSTP, SIGTTIN, SIGTTOU). Linux discards them for a
/// process group with no parent in its session to resume it (an orphaned process group),
/// which is what the application is: its parent is outside its machine.
const TERMINAL_STOPS: [i32; 3] = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
const SIG_IGN: u64 = 1;

/// The disposition of `sig` as set with rt_sigaction.
pub(super) fn action(cx: &Ctx<'_, '_>, sig: u64) -> SigAction {
    cx.process
        .signals()
        .actions
        .get(&sig)
        .copied()
        .unwrap_or_default()
}

/// Whether `sig` has a handler.
pub(super) fn has_handler(cx: &Ctx<'_, '_>, sig: u64) -> bool {
    disposition(&cx.process.signals(), sig) == Disposition::Handler
}

/// SA_RESETHAND: back to the default action once delivered.
pub(super) fn reset_handler(cx: &Ctx<'_, '_>, sig: u64) {
    if let Some(a) = cx.process.signals().actions.get_mut(&sig) {
        a.handler = 0;
    }
}

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
fn deliver(cx: &mut Ctx<'_, '_>, sig: u64, origin: &str, code: i32) -> Sys {
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
            let info = info_for(cx, sig, code);
            cx.thread.due.push_back(info);
            return Ok(0);
        }
    };
    let name = signal_name(sig as i32);
    Err(Stop::Exit(ExitStatus::Signaled {
        signal: sig as i32,
        report: format!("app killed by {name} ({how})"),
    }))
}

/// The siginfo of a signal the application sent itself: its pid and uid.
fn info_for(cx: &Ctx<'_, '_>, sig: u64, code: i32) -> SigInfo {
    let uid = crate::machine::host::ids().uid;
    let mut info = SigInfo {
        signo: sig as i32,
        code,
        ..Default::default()
    };
    info.fields[0] = u64::from(cx.process.tgid) | (uid << 32);
    info
}

/// Hold a blocked signal until it is unblocked; a standard signal already pending is not
/// queued again.
pub(super) fn hold(cx: &Ctx<'_, '_>, info: &SigInfo) {
    let sig = info.signo as u64;
    let mut s = cx.process.signals();
    s.pending |= bit(sig);
    s.pending_info.entry(sig).or_insert(*info);
}

/// After the mask changed: pending signals no longer blocked arrive, lowest number first.
pub(super) fn deliver_unblocked(cx: &mut Ctx<'_, '_>) -> Result<(), Stop> {
    loop {
        let ready = cx.process.signals().pending & !cx.thread.sigmask;
        if ready == 0 {
            return Ok(());
        }
        let sig = u64::from(ready.trailing_zeros()) + 1;
        let info = {
            let mut s = cx.process.signals();
            s.pending &= !bit(sig);
            s.pending_info.remove(&sig)
        };
        let code = info.map_or(SI_USER, |i| i.code);
        deliver(cx, sig, "pending, then unblocked", code)?;
    }
}

/// A signal the kernel sends the application (SIGXFSZ) for `why`.
pub(super) fn raise(cx: &mut Ctx<'_, '_>, sig: u64, why: &str) -> Sys {
    send(cx, sig, why, SI_USER)
}

/// A signal to the application itself: held while blocked (SIGKILL and SIGSTOP never are),
/// else delivered.
fn send_self(cx: &mut Ctx<'_, '_>, sig: u64, code: i32) -> Sys {
    send(cx, sig, "sent by itself", code)
}

fn send(cx: &mut Ctx<'_, '_>, sig: u64, origin: &str, code: i32) -> Sys {
    if sig > NSIG {
        return Err(Errno::EINVAL.into());
    }
    if sig == 0 {
        return Ok(0);
    }
    if cx.thread.sigmask & bit(sig) != 0 {
        hold(cx, &info_for(cx, sig, code));
        return Ok(0);
    }
    deliver(cx, sig, origin, code)?;
    Ok(0)
}

/// kill(2): the only process is the application itself (pid 1, its own process group). There
/// is no signal delivery to handlers yet: a signal it sends itself is held while blocked, does
/// nothing when ignored, stops it (SIGSTOP) or ends it the way the default action would.
/// kill(-1) signals every process but the caller and init: there is none (ESRCH).
pub(super) fn kill(cx: &mut Ctx<'_, '_>, target: u64, sig: u64) -> Sys {
    match target as i32 {
        0 => send_self(cx, sig, SI_USER),
        t if t as u64 == u64::from(cx.process.tgid) => send_self(cx, sig, SI_USER),
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
        return send_self(cx, sig, SI_TKILL);
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
    deliver(cx, sig, "sent by another thread", SI_TKILL)?;
    Ok(0)
}

const MINSIGSTKSZ: u64 = 2048;

pub(super) fn sigaltstack(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (ss, old) = (a.ptr(0), a.ptr(1));
    // A syscall leaves rsp as the application had it.
    let sp = cx.cpu.regs.rsp;
    let cur = altstack_report(cx.thread.altstack, sp);
    if ss != 0 {
        let n: SigAltStack = cx.read_val(ss)?;
        set_altstack(cx, n, sp)?;
    }
    if old != 0 {
        cx.write_val(old, &cur)?;
    }
    Ok(0)
}

/// Whether `sp` is on the alternate stack (`on_sig_stack`): never with SS_AUTODISARM, whose
/// handlers each start at its top. `None` is a thread's initial state: no stack, flags 0.
pub(super) fn on_altstack(alt: Option<SigAltStack>, sp: u64) -> bool {
    alt.is_some_and(|a| a.flags & SS_AUTODISARM == 0 && sp > a.sp && sp - a.sp <= a.size)
}

/// `sas_ss_flags`: SS_DISABLE without a stack, SS_ONSTACK while `sp` is on it, else 0.
pub(super) fn altstack_mode(alt: Option<SigAltStack>, sp: u64) -> i32 {
    match alt {
        Some(a) if a.size != 0 => {
            if on_altstack(alt, sp) {
                SS_ONSTACK
            } else {
                0
            }
        }
        _ => SS_DISABLE,
    }
}

/// The alternate stack as sigaltstack reports it at `sp`.
fn altstack_report(alt: Option<SigAltStack>, sp: u64) -> SigAltStack {
    let a = alt.unwrap_or_default();
    SigAltStack {
        flags: altstack_mode(alt, sp) | (a.flags & SS_AUTODISARM),
        ..a
    }
}

/// Set the alternate stack from `n` while the application's stack pointer is `sp`
/// (kernel/signal.c `do_sigaltstack`).
pub(super) fn set_altstack(cx: &mut Ctx<'_, '_>, n: SigAltStack, sp: u64) -> Result<(), Errno> {
    if on_altstack(cx.thread.altstack, sp) {
        return Err(Errno::EPERM);
    }
    let mode = n.flags & !SS_AUTODISARM;
    if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
        return Err(Errno::EINVAL);
    }
    let (base, size) = if mode == SS_DISABLE {
        (0, 0)
    } else if n.size < MINSIGSTKSZ {
        return Err(Errno::ENOMEM);
    } else {
        (n.sp, n.size)
    };
    cx.thread.altstack = Some(SigAltStack {
        sp: base,
        size,
        ..n
    });
    Ok(())
}
