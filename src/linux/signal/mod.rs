//! Signals: numbers and names, the signal an exception maps to, the one line a fatal signal
//! reports, and the signal syscalls (dispositions, the mask, pending signals, the alternate
//! stack, kill/tgkill/sigqueue, sigsuspend, pause, sigtimedwait). Signals wait in per-thread
//! and per-process queues ([`queue`]); [`deliver`] sends them from any host thread and takes
//! them at the thread's delivery points, where handlers get their frames (`sigframe`).
pub mod deliver;
pub mod host;
pub mod queue;

use super::abi::{
    SigAction, SigAltStack, SigInfo, Timespec, SI_TKILL, SI_USER, SS_AUTODISARM, SS_DISABLE,
    SS_ONSTACK,
};
use super::process::Signals;
use super::{Args, Ctx, Process, Stop, Sys};
use crate::exit::ExitStatus;
pub use deliver::{dequeue, send_to_process, send_to_thread};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use syscalls::Errno;

/// RLIMIT_SIGPENDING: how many real-time siginfos may be queued.
pub const RLIMIT_SIGPENDING: u64 = 11;

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

/// The name of signal `sig` ("SIGSEGV"; real-time ones as strace names them, "SIGRT_2"), or
/// "signal N".
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[sig as usize - 1].to_string(),
        32..=64 => format!("SIGRT_{}", sig - 32),
        _ => format!("signal {sig}"),
    }
}

/// The highest signal number (_NSIG).
pub const NSIG: u64 = 64;
/// SIGKILL, as the syscalls take it.
pub const SIGKILL: u64 = libc::SIGKILL as u64;
/// SIGSTOP, as the syscalls take it.
pub const SIGSTOP: u64 = libc::SIGSTOP as u64;
/// SIGCONT, as the syscalls take it.
pub const SIGCONT: u64 = libc::SIGCONT as u64;
/// The stop signals (Linux's SIG_KERNEL_STOP_MASK): SIGSTOP and the terminal ones.
pub(super) const STOP_MASK: u64 = (1 << (SIGSTOP - 1))
    | (1 << (libc::SIGTSTP - 1))
    | (1 << (libc::SIGTTIN - 1))
    | (1 << (libc::SIGTTOU - 1));
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
        // A signal that is now ignored is dropped even while pending, from every queue
        // (Linux's do_sigaction), in the same hold of the lock as a send's check.
        if disposition(&s, sig) == Disposition::Ignore {
            deliver::discard_everywhere(cx.process, &mut s, bit(sig));
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

/// rt_sigpending: the signals sent while blocked and not yet unblocked, the thread's own and
/// the process's.
pub(super) fn rt_sigpending(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (set, size) = (a.ptr(0), a.len(1));
    if size > 8 {
        return Err(Errno::EINVAL.into());
    }
    let all = deliver::pending_set(cx.process, &cx.thread.sig);
    let pending = (all & cx.thread.sigmask).to_le_bytes();
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

/// The siginfo of a signal the application sent with kill/tgkill: its pid and uid.
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

/// After the mask changed: pending signals no longer blocked arrive when the syscall returns.
pub(super) fn deliver_unblocked(cx: &mut Ctx<'_, '_>) -> Result<(), Stop> {
    deliver::mask_changed(cx);
    Ok(())
}

/// A signal the kernel sends the application for `why` (SIGXFSZ, as Linux's send_sig: kill's
/// siginfo). Its default action ends the process at once with `why` in umon's line.
pub(super) fn raise(cx: &mut Ctx<'_, '_>, sig: u64, why: &str) -> Sys {
    let blocked = cx.thread.sigmask & bit(sig) != 0;
    if !blocked && disposition(&cx.process.signals(), sig) == Disposition::Kill {
        let name = signal_name(sig as i32);
        return Err(Stop::Exit(ExitStatus::Signaled {
            signal: sig as i32,
            report: format!("app killed by {name} ({why})"),
        }));
    }
    let info = info_for(cx, sig, SI_USER);
    deliver::send_to_thread(cx.process, &cx.machine.stop, cx.thread.tid, info)?;
    Ok(0)
}

/// A signal number the syscalls accept: 1..=64, or 0 to check the target only (None).
fn valid(sig: u64) -> Result<Option<u64>, Errno> {
    match sig {
        0 => Ok(None),
        s if s <= NSIG => Ok(Some(s)),
        _ => Err(Errno::EINVAL),
    }
}

/// kill(2): to this process (whichever of its threads does not block it), another, a group,
/// or every process but pid 1 and the caller (-1).
pub(super) fn kill(cx: &mut Ctx<'_, '_>, target: u64, sig: u64) -> Sys {
    if target as i32 == i32::MIN {
        return Err(Errno::ESRCH.into());
    }
    // Linux checks the signal number once it has a target.
    let targets = crate::linux::family::kill_targets(cx, target as i32)?;
    let sig = valid(sig)?;
    let me = cx.process.tgid;
    if let Some(sig) = sig {
        // Other processes get it through their mailboxes.
        for &pid in targets.iter().filter(|&&p| p != me) {
            crate::linux::family::post(cx, pid, sig as u32);
        }
    }
    if !targets.contains(&me) {
        return Ok(0);
    }
    if let Some(sig) = sig {
        let info = info_for(cx, sig, SI_USER);
        deliver::send_to_process(cx.process, &cx.machine.stop, info)?;
    }
    Ok(0)
}

/// tgkill(2) (and tkill(2), with the thread group of the caller): to one thread.
pub(super) fn tgkill(cx: &mut Ctx<'_, '_>, tgid: u64, tid: u64, sig: u64) -> Sys {
    let (tgid, tid) = (tgid as i32, tid as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if tgid as u64 != u64::from(cx.process.tgid) || !cx.process.has_thread(tid as u32) {
        return Err(Errno::ESRCH.into());
    }
    let sig = valid(sig)?;
    if let Some(sig) = sig {
        let info = info_for(cx, sig, SI_TKILL);
        deliver::send_to_thread(cx.process, &cx.machine.stop, tid as u32, info)?;
    }
    Ok(0)
}

/// The siginfo rt_(tg)sigqueueinfo sends: the application's own, which may claim to come from
/// the kernel or from kill/tgkill only when sent to itself (kernel/signal.c
/// do_rt_sigqueueinfo: "Not even root can pretend to send signals from the kernel").
fn user_info(cx: &Ctx<'_, '_>, at: u64, sig: u64, to_self: bool) -> Result<SigInfo, Errno> {
    let mut info: SigInfo = cx.read_val(at)?;
    if (info.code >= 0 || info.code == SI_TKILL) && !to_self {
        return Err(Errno::EPERM);
    }
    // The queues key on it; Linux delivers the number it was sent as.
    info.signo = sig as i32;
    Ok(info)
}

/// rt_sigqueueinfo(tgid, sig, info): to the process (the only one there is).
pub(super) fn rt_sigqueueinfo(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, sig, uinfo) = (a.raw(0) as i32, a.raw(1) as i32 as u64, a.ptr(2));
    // The caller is "itself" only by its thread id (task_pid_vnr(current)).
    let to_self = pid as u32 == cx.thread.tid && pid > 0;
    let info = user_info(cx, uinfo, sig, to_self)?;
    if pid <= 0 || pid as u32 != cx.process.tgid {
        return Err(Errno::ESRCH.into());
    }
    let sig = valid(sig)?;
    if let Some(sig) = sig {
        deliver::send_to_process(
            cx.process,
            &cx.machine.stop,
            SigInfo {
                signo: sig as i32,
                ..info
            },
        )?;
    }
    Ok(0)
}

/// rt_tgsigqueueinfo(tgid, tid, sig, info): to one thread.
pub(super) fn rt_tgsigqueueinfo(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (tgid, tid, sig, uinfo) = (
        a.raw(0) as i32,
        a.raw(1) as i32,
        a.raw(2) as i32 as u64,
        a.ptr(3),
    );
    let info = cx.read_val::<SigInfo>(uinfo)?;
    if tid <= 0 || tgid <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if (info.code >= 0 || info.code == SI_TKILL) && tid as u32 != cx.thread.tid {
        return Err(Errno::EPERM.into());
    }
    if tgid as u32 != cx.process.tgid || !cx.process.has_thread(tid as u32) {
        return Err(Errno::ESRCH.into());
    }
    let sig = valid(sig)?;
    if let Some(sig) = sig {
        let info = SigInfo {
            signo: sig as i32,
            ..info
        };
        deliver::send_to_thread(cx.process, &cx.machine.stop, tid as u32, info)?;
    }
    Ok(0)
}

/// Park until a signal not blocked arrives (or the process or VM ends: EINTR, the run loop
/// then ends the thread), then `kind`.
fn wait_for_signal(cx: &Ctx<'_, '_>, kind: i32) -> Sys {
    loop {
        if cx.interrupted() {
            return Err(Errno::EINTR.into());
        }
        if deliver::signal_pending(cx) {
            return Err(deliver::restart(kind).into());
        }
        cx.thread.parker.park(None);
    }
}

/// rt_sigsuspend(mask, size): wait for a signal with `mask` in place; the handler's frame
/// restores the mask from before (ERESTARTNOHAND: EINTR after a handler).
pub(super) fn rt_sigsuspend(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.len(1) != 8 {
        return Err(Errno::EINVAL.into());
    }
    let mask: u64 = cx.read_val(a.ptr(0))?;
    cx.thread.saved_mask = Some(cx.thread.sigmask);
    cx.thread.sigmask = mask & !UNBLOCKABLE;
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    wait_for_signal(cx, deliver::ERESTARTNOHAND)
}

/// pause(2): wait for a signal (ERESTARTNOHAND).
pub(super) fn pause(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    wait_for_signal(cx, deliver::ERESTARTNOHAND)
}

/// rt_sigtimedwait(set, info, timeout, size): take a pending signal of `set` (blocked or
/// not), waiting up to `timeout` (None: for ever) for one; EAGAIN when it passes, EINTR when a
/// signal outside `set` arrives first.
pub(super) fn rt_sigtimedwait(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (set, uinfo, uts, size) = (a.ptr(0), a.ptr(1), a.ptr(2), a.len(3));
    if size != 8 {
        return Err(Errno::EINVAL.into());
    }
    let want = cx.read_val::<u64>(set)? & !UNBLOCKABLE;
    let deadline = if uts != 0 {
        let t: Timespec = cx.read_val(uts)?;
        let d = super::time::duration(t)?;
        // A timeout too far for the host clock is a wait of about a century.
        Some(
            Instant::now()
                .checked_add(d)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400)),
        )
    } else {
        None
    };
    // While it waits, senders see the signals of `set` as unblocked (Linux's real_blocked).
    let blocked_while = cx.thread.sigmask & !want;
    cx.thread.sig.blocked.store(blocked_while, Ordering::SeqCst);
    let got = loop {
        if let Some(info) = dequeue(cx.process, &cx.thread.sig, !want) {
            break Ok(info);
        }
        if cx.interrupted() {
            break Err(Errno::EINTR);
        }
        let others = deliver::pending_set(cx.process, &cx.thread.sig) & !cx.thread.sigmask;
        if others != 0 || !cx.thread.due.is_empty() {
            break Err(Errno::EINTR);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Err(Errno::EAGAIN);
        }
        cx.thread.parker.park(deadline);
    };
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    let info = got?;
    if uinfo != 0 {
        cx.write_val(uinfo, &info)?;
    }
    Ok(info.signo as u64)
}

/// restart_syscall(2): continue what a signal without a handler cut short
/// (ERESTART_RESTARTBLOCK); with nothing to continue, EINTR (Linux's do_no_restart_syscall).
pub(super) fn restart_syscall(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    match cx.thread.restart_block.take() {
        Some(super::thread::RestartBlock::Sleep { until, rem }) => {
            super::time::sleep_to(cx, until, rem)?;
            Ok(0)
        }
        None => Err(Errno::EINTR.into()),
    }
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
