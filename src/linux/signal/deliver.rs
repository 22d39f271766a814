//! Sending signals and taking them. The send half ([`send_to_process`], [`send_to_thread`])
//! may run on any host thread (another vCPU's, a timer's, a host-signal forwarder's): it queues
//! the signal (Linux's `__send_signal`), picks the thread that takes a process-directed one
//! (`complete_signal`) and kicks it. The take half runs on the receiving thread at its delivery
//! points, after every syscall and before every guest entry (`deliver`, Linux's
//! `arch_do_signal_or_restart`), and in waits ([`dequeue`], sigtimedwait; signalfd to come).
use super::super::abi::{SigInfo, SA_RESTART, SI_USER};
use super::super::process::{locked, Signals};
use super::super::thread::ThreadSig;
use super::super::{Ctx, Process, Stop};
use super::queue::{Queued, SigQueue, SIGRTMIN};
use super::{
    bit, disposition, signal_name, Disposition, RLIMIT_SIGPENDING, SIGCONT, SIGKILL, STOP_MASK,
    UNBLOCKABLE,
};
use crate::exit::ExitStatus;
use crate::machine::stop::KillHandle;
use crate::machine::vcpu::cpu::DIRTY_REGS;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use syscalls::Errno;

/// The most real-time siginfos queued at once whatever RLIMIT_SIGPENDING says: a guest that
/// raises its limit cannot grow the monitor's memory without bound.
const MAX_QUEUED: usize = 1 << 18;

/// The restart kinds a syscall cut short by a signal returns, as Linux's kernel-internal
/// errnos (never seen by the application: the delivery that follows turns them into EINTR or
/// a restart). ERESTARTSYS: restart if the handler has SA_RESTART (or there is none).
pub const ERESTARTSYS: i32 = 512;
/// Always restart (with or without a handler).
pub const ERESTARTNOINTR: i32 = 513;
/// EINTR if a handler runs, else restart.
pub const ERESTARTNOHAND: i32 = 514;
/// EINTR if a handler runs, else restart_syscall(2) continues (`Thread::restart_block`).
pub const ERESTART_RESTARTBLOCK: i32 = 516;
/// restart_syscall's number.
const NR_RESTART_SYSCALL: u64 = 219;

/// `kind` as the errno a handler returns.
pub fn restart(kind: i32) -> Errno {
    Errno::new(kind)
}

/// Whether `e` is one of the restart kinds.
pub fn is_restart(e: Errno) -> bool {
    matches!(
        e.into_raw(),
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
    )
}

/// Whether another real-time siginfo may be queued.
fn room(process: &Process) -> bool {
    let limit = process
        .rlimits()
        .get(&RLIMIT_SIGPENDING)
        .map_or(process.sigpending_default.cur, |r| r.cur);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_QUEUED);
    process.sig_queued.load(Ordering::Relaxed) < limit
}

/// Put `info` in `queue`. A real-time signal past RLIMIT_SIGPENDING is EAGAIN unless it is
/// kill()'s (SI_USER), which is queued without its siginfo.
fn enqueue(process: &Process, queue: &mut SigQueue, info: SigInfo) -> Result<(), Errno> {
    let rt = info.signo as u64 >= SIGRTMIN;
    let room = room(process);
    if rt && !room && info.code != SI_USER {
        return Err(Errno::EAGAIN);
    }
    if queue.push(info, room) == Queued::WithInfo {
        process.sig_queued.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The signal number of `info`: 1..=64, else EINVAL.
fn number(info: &SigInfo) -> Result<u64, Errno> {
    match info.signo {
        s @ 1..=64 => Ok(s as u64),
        _ => Err(Errno::EINVAL),
    }
}

/// Tell `t` a signal may be deliverable: set its hint and, unless it is the caller itself (it
/// looks after its syscall), kick it until it acknowledges.
fn wake(kicker: &KillHandle, t: &Arc<ThreadSig>) {
    if t.is_current() {
        t.hint.store(true, Ordering::SeqCst);
        return;
    }
    if !t.hint.swap(true, Ordering::SeqCst) {
        kicker.kick_until_acked(t.clone());
    } else {
        t.parker.unpark();
    }
}

/// Whether `sig` is dropped at once: ignored, and not blocked by the thread it is sent to
/// (Linux's `sig_ignored`: a blocked signal stays pending, its handler may change meanwhile).
fn dropped(s: &Signals, sig: u64, target: Option<&ThreadSig>) -> bool {
    disposition(s, sig) == Disposition::Ignore && !target.is_some_and(|t| t.blocks(bit(sig)))
}

/// Send `info` (its `signo` in 1..=64) to the process, as kill(2) does: queued on the shared
/// queue and taken by the main thread if it does not block it, else by the first thread (by
/// tid) that does not; if all block it, it stays pending until one unblocks it. Callable from
/// any host thread. EAGAIN: a real-time signal past RLIMIT_SIGPENDING (not SI_USER).
pub fn send_to_process(process: &Process, kicker: &KillHandle, info: SigInfo) -> Result<(), Errno> {
    let sig = number(&info)?;
    // One hold of the signal lock, as Linux's siglock: a SIGCONT's discarding of stop signals,
    // its queueing and its resume are one step to a stop being taken ([`take_next`]), so it
    // can neither be discarded by an earlier stop nor resume a later one.
    let mut s = process.signals();
    prepare(process, &mut s, sig);
    let sent = queue_for_process(process, &mut s, kicker, sig, info);
    resume(process, &mut s, sig);
    sent
}

/// Linux's `prepare_signal`, before `sig` is queued (or dropped): a stop signal discards a
/// pending SIGCONT; SIGCONT discards pending stop signals, whatever its disposition.
fn prepare(process: &Process, s: &mut Signals, sig: u64) {
    if STOP_MASK & bit(sig) != 0 {
        discard_everywhere(process, s, bit(SIGCONT));
    } else if sig == SIGCONT {
        discard_everywhere(process, s, STOP_MASK);
    }
}

/// SIGCONT (even ignored) resumes a stopped process, and SIGKILL ends it: every thread looks
/// again. After the queueing, so a SIGCONT handler runs as the process goes on, as on Linux.
fn resume(process: &Process, s: &mut Signals, sig: u64) {
    if sig != SIGCONT && sig != SIGKILL {
        return;
    }
    if sig == SIGCONT {
        s.stopped = false;
    }
    for t in process.thread_sigs() {
        t.parker.unpark();
    }
}

/// [`send_to_process`] once [`prepare`]d.
fn queue_for_process(
    process: &Process,
    s: &mut Signals,
    kicker: &KillHandle,
    sig: u64,
    info: SigInfo,
) -> Result<(), Errno> {
    let mut threads = process.thread_sigs();
    threads.sort_by_key(|t| t.tid);
    let main = threads.iter().find(|t| t.tid == process.tgid);
    if dropped(s, sig, main.map(|t| &**t)) {
        return Ok(());
    }
    enqueue(process, &mut s.shared, info)?;
    let wants = |t: &&Arc<ThreadSig>| !t.blocks(bit(sig));
    if let Some(t) = main.filter(wants).or_else(|| threads.iter().find(wants)) {
        wake(kicker, t);
    }
    Ok(())
}

/// Send `info` to thread `tid` only, as tgkill(2) does (ESRCH: no such live thread; EAGAIN as
/// [`send_to_process`]). Callable from any host thread.
pub fn send_to_thread(
    process: &Process,
    kicker: &KillHandle,
    tid: u32,
    info: SigInfo,
) -> Result<(), Errno> {
    let sig = number(&info)?;
    let t = process.thread_sig(tid).ok_or(Errno::ESRCH)?;
    let mut s = process.signals();
    prepare(process, &mut s, sig);
    if !dropped(&s, sig, Some(&t)) {
        enqueue(process, &mut locked(&t.private), info)?;
        if !t.blocks(bit(sig)) {
            wake(kicker, &t);
        }
    }
    resume(process, &mut s, sig);
    Ok(())
}

/// Take the next signal not in `blocked` for thread `t`: its private queue first, then the
/// process's (Linux's `dequeue_signal`). For sigtimedwait and signalfd, and delivery.
pub fn dequeue(process: &Process, t: &ThreadSig, blocked: u64) -> Option<SigInfo> {
    let got = locked(&t.private).take(blocked);
    let got = got.or_else(|| process.signals().shared.take(blocked));
    let (info, counted) = got?;
    if counted {
        process.sig_queued.fetch_sub(1, Ordering::Relaxed);
    }
    Some(info)
}

/// The delivery's [`dequeue`]: a stop signal whose action is to stop stops the process in the
/// same hold of the signal lock, so a SIGCONT sent meanwhile either discarded it or comes after
/// the stop and resumes it (Linux dequeues and stops under its siglock too).
fn take_next(process: &Process, t: &ThreadSig, blocked: u64) -> Option<SigInfo> {
    let mut s = process.signals();
    let got = locked(&t.private).take(blocked);
    let (info, counted) = got.or_else(|| s.shared.take(blocked))?;
    if counted {
        process.sig_queued.fetch_sub(1, Ordering::Relaxed);
    }
    let sig = info.signo as u64;
    if (1..=super::NSIG).contains(&sig) && disposition(&s, sig) == Disposition::Stop {
        s.stopped = true;
    }
    Some(info)
}

/// The signals pending for thread `t`, blocked or not (its own and the process's).
pub fn pending_set(process: &Process, t: &ThreadSig) -> u64 {
    let private = locked(&t.private).pending();
    private | process.signals().shared.pending()
}

/// Whether the calling thread has a signal to take now: what ends an interruptible wait.
pub(in crate::linux) fn signal_pending(cx: &Ctx<'_, '_>) -> bool {
    !cx.thread.due.is_empty() || pending_set(cx.process, &cx.thread.sig) & !cx.thread.sigmask != 0
}

/// Drop every pending instance of the signals in `mask`, in every queue (a signal that became
/// ignored); `s` is the process's, locked.
pub(super) fn discard_everywhere(process: &Process, s: &mut Signals, mask: u64) {
    let mut gone = s.shared.discard(mask);
    for t in process.thread_sigs() {
        gone += locked(&t.private).discard(mask);
    }
    process.sig_queued.fetch_sub(gone, Ordering::Relaxed);
}

/// A thread ends: its private queue goes with it.
pub fn thread_gone(process: &Process, t: &ThreadSig) {
    t.gone();
    let gone = locked(&t.private).clear();
    process.sig_queued.fetch_sub(gone, Ordering::Relaxed);
}

/// The mask changed: copy it where senders look, look for signals it unblocked, and hand
/// process-directed signals it now blocks to another thread.
pub(in crate::linux) fn mask_changed(cx: &Ctx<'_, '_>) {
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    if pending_set(cx.process, &cx.thread.sig) & !cx.thread.sigmask != 0 {
        cx.thread.sig.hint.store(true, Ordering::SeqCst);
    }
    retarget(cx);
}

/// Process-directed signals pending that this thread blocks go to a thread that does not
/// (Linux's `retarget_shared_pending`), which may have been passed over when it was sent.
fn retarget(cx: &Ctx<'_, '_>) {
    let mut left = cx.process.signals().shared.pending() & cx.thread.sigmask;
    if left == 0 {
        return;
    }
    let mut threads = cx.process.thread_sigs();
    threads.sort_by_key(|t| t.tid);
    for t in threads.iter().filter(|t| t.tid != cx.thread.tid) {
        let wanted = left & !t.blocked.load(Ordering::SeqCst);
        if wanted != 0 {
            wake(&cx.machine.stop, t);
            left &= !wanted;
            if left == 0 {
                return;
            }
        }
    }
}

/// Whether the calling thread must run [`deliver`] before it returns to the application.
pub(in crate::linux) fn wanted(cx: &Ctx<'_, '_>, mask_before: u64) -> bool {
    cx.thread.sig.hint.load(Ordering::SeqCst)
        || !cx.thread.due.is_empty()
        || cx.thread.restart.is_some()
        || cx.thread.sigmask != mask_before
}

/// Restart the syscall just completed: its number back in rax, the application's rip back
/// on the `syscall` instruction (2 bytes), on PVM's CPL3 return as on hardware's `sysretq`
/// (whose rip is rcx).
fn rewind(cx: &mut Ctx<'_, '_>, nr: u64) {
    let user = cx.cpu.sregs.cs.dpl == 3;
    let r = &mut *cx.cpu.regs;
    r.rax = nr;
    if user {
        r.rip = r.rip.wrapping_sub(2);
    } else {
        r.rcx = r.rcx.wrapping_sub(2);
    }
    cx.cpu.dirty |= DIRTY_REGS;
}

/// Where the application is about to resume (after a syscall or before a guest entry at
/// CPL3): take the forced signals, then every pending one not blocked, and do what each's
/// disposition says; a handler gets a frame on top of the last (the last queued runs first,
/// as on Linux). Then settle the interrupted syscall, if any: EINTR if a handler ran (or a
/// restart by its SA_RESTART), else restarted.
pub(in crate::linux) fn deliver(cx: &mut Ctx<'_, '_>) -> Result<(), Stop> {
    // The acknowledgement comes first: a signal sent from here on sets the hint again.
    cx.thread.sig.hint.store(false, Ordering::SeqCst);
    cx.thread
        .sig
        .blocked
        .store(cx.thread.sigmask, Ordering::SeqCst);
    let mut first = true;
    while !cx.process.exit.exiting() {
        if cx.process.signals().stopped {
            super::super::time::sleep_while_stopped(cx)?;
        }
        let (info, forced) = match cx.thread.due.pop_front() {
            Some(i) => {
                unblock_forced(cx, i.signo as u64);
                (i, true)
            }
            None => match take_next(cx.process, &cx.thread.sig, cx.thread.sigmask) {
                Some(i) => (i, false),
                None => break,
            },
        };
        let sig = info.signo as u64;
        if sig == 0 || sig > super::NSIG {
            continue;
        }
        let disp = disposition(&cx.process.signals(), sig);
        match disp {
            Disposition::Ignore => continue,
            Disposition::Stop => {
                // A group stop: every thread stops at its next delivery point (a sleeping one
                // sleeps on) until a SIGCONT, from umon's host or from a thread that was
                // asleep, resumes them all. ([`take_next`] stopped it for a queued one.)
                if forced {
                    cx.process.signals().stopped = true;
                }
                for t in cx.process.thread_sigs() {
                    if t.tid != cx.thread.tid {
                        wake(&cx.machine.stop, &t);
                    }
                }
                continue;
            }
            Disposition::Kill => {
                // A signal from outside the application (umon's own, forwarded: kill's siginfo
                // with no pid the app can see) ends it without a line, as it ends a process on
                // Linux: whoever sent it knows.
                let outside = info.code == SI_USER && info.fields[0] as u32 == 0;
                let report = match outside {
                    true => String::new(),
                    false => format!(
                        "app killed by {} ({})",
                        signal_name(sig as i32),
                        origin(&info)
                    ),
                };
                return Err(Stop::Exit(ExitStatus::Signaled {
                    signal: sig as i32,
                    report,
                }));
            }
            Disposition::Handler => {}
        }
        if let Some((kind, nr)) = cx.thread.restart.take() {
            let act = super::action(cx, sig);
            let again =
                kind == ERESTARTNOINTR || (kind == ERESTARTSYS && act.flags & SA_RESTART != 0);
            if again {
                rewind(cx, nr);
            }
        }
        super::super::trace::signal_delivered(cx.process, cx.thread.tid, &info);
        let saved = if first {
            cx.thread.saved_mask.take()
        } else {
            None
        };
        first = false;
        super::super::sigframe::run_handler(cx, sig, &info)?;
        if let Some(mask) = saved {
            // rt_sigsuspend: the frame restores the mask from before the call.
            super::super::sigframe::set_frame_mask(cx, mask);
        }
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask, Ordering::SeqCst);
    }
    if let Some(mask) = cx.thread.saved_mask.take() {
        cx.thread.sigmask = mask & !UNBLOCKABLE;
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask, Ordering::SeqCst);
    }
    // A handler's mask may block what others could take.
    retarget(cx);
    if let Some((kind, nr)) = cx.thread.restart.take() {
        let nr = if kind == ERESTART_RESTARTBLOCK {
            NR_RESTART_SYSCALL
        } else {
            nr
        };
        rewind(cx, nr);
    }
    Ok(())
}

/// Who sent a signal, for umon's line when it ends the application.
fn origin(info: &SigInfo) -> &'static str {
    use super::super::abi::{SI_KERNEL, SI_QUEUE, SI_TKILL};
    match info.code {
        SI_USER => "sent with kill",
        SI_TKILL => "sent with tgkill",
        SI_QUEUE => "sent with sigqueue",
        SI_KERNEL => "sent by the kernel",
        _ => "sent",
    }
}

/// Linux's `force_sig_info`: the signal arrives even if blocked (unblocked) or ignored (its
/// handler reset to SIG_DFL), before anything queued, at the next delivery point (after the
/// syscall, or before the next guest entry after a fault). What a fault does; pushing to
/// `Thread::due` directly is the same.
pub(in crate::linux) fn force(cx: &mut Ctx<'_, '_>, info: SigInfo) {
    cx.thread.due.push_back(info);
}

/// `force_sig_info_to_task`'s effect on the state, applied when a forced signal is taken.
fn unblock_forced(cx: &mut Ctx<'_, '_>, sig: u64) {
    if sig == 0 || sig > super::NSIG {
        return;
    }
    let mut s = cx.process.signals();
    let blocked = cx.thread.sigmask & bit(sig) != 0;
    let ignored = disposition(&s, sig) == Disposition::Ignore;
    if blocked || ignored {
        if let Some(a) = s.actions.get_mut(&sig) {
            a.handler = 0;
        }
        cx.thread.sigmask &= !bit(sig);
        cx.thread
            .sig
            .blocked
            .store(cx.thread.sigmask, Ordering::SeqCst);
    }
}
