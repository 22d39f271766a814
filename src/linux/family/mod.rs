//! Processes: the application (pid 1) and the processes it forks, each served by its own
//! monitor process (a host fork of this one) with its own KVM VM over a copy-on-write copy of
//! guest RAM. What ties them together is the shared [`table::PidTable`] (pids, parents, groups,
//! sessions, exit statuses, signal mailboxes); a monitor's [`Family`] is its view of it.
//!
//! - fork/vfork/clone without CLONE_THREAD: [`fork`].
//! - execve/execveat: [`exec`] checks the file and asks the run loop for a new VM.
//! - wait4/waitid: [`wait`].
//! - kill of another process: a bit in its slot and a futex wake; its mailbox thread queues
//!   the signal as kill(2) would.
//! - The tree never outlives pid 1: pid 1's monitor holds the only write end of the lifeline
//!   pipe, each other monitor watches the read end and ends when it hangs up (pid 1's monitor
//!   ended, even by SIGKILL); pid 1's end also kills every monitor in the table.
pub mod exec;
pub mod fork;
pub mod table;
pub mod vfork;
pub mod wait;

use super::abi::SigInfo;
use super::process::{locked, Process};
use super::{Args, Ctx, Sys};
use crate::machine::stop::KillHandle;
use crate::ExitStatus;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use syscalls::Errno;
use table::{state, PidTable};

/// CLD_* codes of SIGCHLD's si_code.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
/// SIGCHLD.
pub const SIGCHLD: u32 = 17;
/// SIG_IGN.
const SIG_IGN: u64 = 1;
/// SA_NOCLDWAIT.
const SA_NOCLDWAIT: u64 = 2;
/// The processes one application may have at once unless RLIMIT_NPROC is lower: every one is
/// a monitor process with a KVM VM on the host.
pub const DEFAULT_MAX_PROCESSES: u32 = 512;

/// A process's place among the others.
pub struct Family {
    /// The shared table (None only if it could not be mapped: then nothing forks).
    pub table: Option<Arc<PidTable>>,
    /// Host children: guest pid → pidfd of the monitor serving it (forked by this one).
    pub children: Mutex<std::collections::HashMap<u32, OwnedFd>>,
    /// pid 1's monitor: the lifeline's write end, dropped when pid 1 ends.
    lifeline_write: Mutex<Option<OwnedFd>>,
    /// The lifeline's read end (every monitor; pid 1's creates it at its first fork).
    lifeline_read: Mutex<Option<OwnedFd>>,
    /// The mailbox thread runs.
    mailbox: OnceLock<()>,
    /// A vfork child: where the pages it writes in its parent's stack go back.
    pub vfork: Mutex<Option<vfork::Link>>,
    /// Host pids of reaped children's monitors that may still be ending.
    lingering: Mutex<Vec<rustix::process::Pid>>,
}

impl Default for Family {
    fn default() -> Self {
        Family {
            table: PidTable::new().ok().map(Arc::new),
            children: Mutex::default(),
            lifeline_write: Mutex::default(),
            lifeline_read: Mutex::default(),
            mailbox: OnceLock::new(),
            vfork: Mutex::default(),
            lingering: Mutex::default(),
        }
    }
}

impl Family {
    /// The family of a forked child: the same table and lifeline read end; no children.
    fn for_child(parent: &Family) -> Family {
        // The write end stays with pid 1's monitor alone.
        drop(locked(&parent.lifeline_write).take());
        Family {
            table: parent.table.clone(),
            children: Mutex::default(),
            lifeline_write: Mutex::default(),
            lifeline_read: Mutex::new(locked(&parent.lifeline_read).take()),
            mailbox: OnceLock::new(),
            vfork: Mutex::default(),
            lingering: Mutex::default(),
        }
    }

    /// Reap the monitors of reaped children that have ended since (a monitor that is not this
    /// one's host child, an orphan on its way to pid 1's, is its host parent's to reap).
    pub fn reap_lingering(&self) {
        locked(&self.lingering).retain(|&h| {
            matches!(
                rustix::process::waitpid(Some(h), rustix::process::WaitOptions::NOHANG),
                Ok(None)
            )
        });
    }

    /// The slot of `pid`.
    pub fn slot(&self, pid: u32) -> Option<&table::Slot> {
        self.table.as_ref()?.slot(pid)
    }

    /// Make the lifeline (pid 1, at its first fork).
    fn ensure_lifeline(&self) -> std::io::Result<()> {
        let mut w = locked(&self.lifeline_write);
        let mut r = locked(&self.lifeline_read);
        if w.is_none() && r.is_none() {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            *r = Some(read);
            *w = Some(write);
        }
        Ok(())
    }

    /// A child monitor: end this host process when pid 1's monitor is gone.
    fn watch_lifeline(&self) {
        let Some(read) = locked(&self.lifeline_read)
            .as_ref()
            .and_then(|f| f.try_clone().ok())
        else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("lifeline".into())
            .stack_size(64 << 10)
            .spawn(move || loop {
                let fd = read.as_fd();
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, None) {
                    Err(rustix::io::Errno::INTR) => continue,
                    // Hung up (or the fd broke): pid 1 ended, so does this process.
                    _ => std::process::exit(crate::exit::EXIT_SIGNAL_BASE + libc::SIGKILL),
                }
            });
    }

    /// Start the mailbox thread of `process` (once): signals from other processes and the
    /// ends of children.
    pub fn start_mailbox(&self, process: &Arc<Process>, pid: u32, stop: &KillHandle) {
        let Some(table) = self.table.clone() else {
            return;
        };
        if self.mailbox.set(()).is_err() {
            return;
        }
        let weak = Arc::downgrade(process);
        let stop = stop.clone();
        let _ = std::thread::Builder::new()
            .name("mailbox".into())
            .stack_size(256 << 10)
            .spawn(move || mailbox(&weak, &table, pid, &stop));
    }
}

/// The mailbox: take what other processes posted, until the process is gone.
fn mailbox(process: &Weak<Process>, table: &PidTable, pid: u32, stop: &KillHandle) {
    let Some(slot) = table.slot(pid) else {
        return;
    };
    loop {
        let seen = slot.events.load(Ordering::Acquire);
        let Some(p) = process.upgrade() else {
            return;
        };
        let bits = slot.pending.swap(0, Ordering::AcqRel);
        for sig in 1..=64u32 {
            if bits & (1 << (sig - 1)) == 0 {
                continue;
            }
            if sig == SIGCHLD && notify_children(&p, table, pid, stop) {
                continue;
            }
            let mut info = SigInfo {
                signo: sig as i32,
                code: super::abi::SI_USER,
                ..Default::default()
            };
            info.fields[0] = u64::from(slot.sender.load(Ordering::Relaxed))
                | (crate::machine::host::ids().uid << 32);
            let _ = super::signal::send_to_process(&p, stop, info);
        }
        // A child's end or a vfork release: the waiters look again.
        p.wake_all();
        drop(p);
        table::futex_wait(&slot.events, seen, std::time::Duration::from_millis(500));
    }
}

/// SIGCHLD for each child of `pid` that ended and was not announced yet; false if none. A
/// process that ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT) leaves no zombies: they are reaped
/// here, as Linux's do_notify_parent does.
fn notify_children(p: &Process, table: &PidTable, pid: u32, stop: &KillHandle) -> bool {
    let auto_reap = p
        .signals()
        .actions
        .get(&u64::from(SIGCHLD))
        .is_some_and(|a| a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0);
    let mut any = false;
    for (child, s) in table.each() {
        if s.ppid.load(Ordering::Relaxed) != pid
            || s.state.load(Ordering::Acquire) != state::ZOMBIE
            || s.notified.swap(1, Ordering::AcqRel) != 0
        {
            continue;
        }
        any = true;
        if auto_reap {
            let taken = s.state.compare_exchange(
                state::ZOMBIE,
                state::REAPING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if taken.is_ok() {
                reap_host(p, table, child);
            }
            continue;
        }
        let info = chld_info(child, s.wstatus.load(Ordering::Relaxed));
        let _ = super::signal::send_to_process(p, stop, info);
    }
    any
}

/// Child `pid` reaped: its pid freed, and its monitor reaped on the host once it is gone. The
/// guest's wait does not wait for that: the status is in the table before the monitor starts
/// to tear its VM down (about a millisecond), so a monitor still ending is reaped at a later
/// wait, fork or end ([`Family::reap_lingering`]).
pub fn reap_host(p: &Process, table: &PidTable, pid: u32) {
    let host = table
        .slot(pid)
        .map_or(0, |s| s.host_pid.load(Ordering::Relaxed));
    drop(locked(&p.family.children).remove(&pid));
    if let Some(h) = rustix::process::Pid::from_raw(host) {
        locked(&p.family.lingering).push(h);
    }
    table.free(pid);
    p.family.reap_lingering();
}

/// SIGCHLD's siginfo for `pid` ending with `wstatus`: si_pid, si_uid, si_status.
pub fn chld_info(pid: u32, wstatus: i32) -> SigInfo {
    let (code, status) = decode(wstatus);
    let mut info = SigInfo {
        signo: SIGCHLD as i32,
        code,
        ..Default::default()
    };
    info.fields[0] = u64::from(pid) | (crate::machine::host::ids().uid << 32);
    info.fields[1] = status as u32 as u64;
    info
}

/// The wait status Linux reports for `status`.
pub fn encode(status: &ExitStatus) -> i32 {
    match status {
        ExitStatus::Exited(c) => (c & 0xff) << 8,
        ExitStatus::Signaled { signal, .. } => signal & 0x7f,
        ExitStatus::TimedOut(_) => libc::SIGKILL,
    }
}

/// (si_code, si_status) of a wait status.
pub fn decode(wstatus: i32) -> (i32, i32) {
    if wstatus & 0x7f == 0 {
        (CLD_EXITED, (wstatus >> 8) & 0xff)
    } else {
        (CLD_KILLED, wstatus & 0x7f)
    }
}

impl Process {
    /// Unpark every thread (a child ended: waits look again).
    pub fn wake_all(&self) {
        for sig in self.thread_sigs() {
            sig.parker.unpark();
        }
    }

    /// This process's parent pid (0 for pid 1).
    pub fn ppid(&self) -> u32 {
        self.family
            .slot(self.tgid)
            .map_or(0, |s| s.ppid.load(Ordering::Relaxed))
    }

    /// This process's group.
    pub fn pgid(&self) -> u32 {
        self.family
            .slot(self.tgid)
            .map_or(self.tgid, |s| s.pgid.load(Ordering::Relaxed))
    }

    /// This process's session.
    pub fn sid(&self) -> u32 {
        self.family
            .slot(self.tgid)
            .map_or(self.tgid, |s| s.sid.load(Ordering::Relaxed))
    }

    /// A forked child's end: the status in the table, children to pid 1, SIGCHLD (or a wake)
    /// to the parent.
    pub fn report_end(&self, status: &ExitStatus) {
        let Some(table) = &self.family.table else {
            return;
        };
        let me = self.tgid;
        let parent = self.ppid();
        let mut orphans = false;
        for (child, s) in table.each() {
            if s.ppid.load(Ordering::Relaxed) == me
                && s.compare_state_any(&[state::RUNNING, state::ZOMBIE])
            {
                s.ppid.store(1, Ordering::Relaxed);
                orphans = true;
                // PR_SET_PDEATHSIG: the orphan is told its parent is gone.
                let sig = s.pdeathsig.load(Ordering::Relaxed);
                if sig != 0 && s.state.load(Ordering::Acquire) == state::RUNNING {
                    table.post(child, sig, me);
                }
            }
        }
        if orphans {
            table.post(1, SIGCHLD, me);
        }
        let exit_signal = table
            .slot(me)
            .map_or(SIGCHLD, |s| s.exit_signal.load(Ordering::Relaxed));
        table.ended(me, encode(status));
        if exit_signal != 0 {
            table.post(parent, exit_signal, me);
        } else {
            table.poke(parent);
        }
    }

    /// pid 1 ended: every other monitor of the application ends now.
    pub fn end_family(&self) {
        let Some(table) = &self.family.table else {
            return;
        };
        drop(locked(&self.family.lifeline_write).take());
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut hosts = Vec::new();
        for (pid, s) in table.each() {
            let host = s.host_pid.load(Ordering::Relaxed);
            if pid != 1
                && host > 0
                && host != me
                && s.state.load(Ordering::Acquire) == state::RUNNING
            {
                if let Some(pid) = rustix::process::Pid::from_raw(host) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    hosts.push(pid);
                }
            }
        }
        // Reap what is ours (direct children; orphans reparented to this subreaper), and the
        // monitors of reaped children still ending.
        hosts.extend(locked(&self.family.lingering).drain(..));
        for host in hosts {
            let _ = rustix::process::waitpid(Some(host), rustix::process::WaitOptions::empty());
        }
        for fd in locked(&self.family.children).drain() {
            drop(fd);
        }
    }
}

impl table::Slot {
    fn compare_state_any(&self, states: &[u32]) -> bool {
        states.contains(&self.state.load(Ordering::Acquire))
    }
}

// ---- Process groups and sessions -------------------------------------------------------------
//
// pid 1 leads its own group and session (as an init that called setsid); a child starts in
// its parent's. They live in the pid table, so every process sees the others'.

/// The slot `pid` names for the get calls: 0 the caller, one of its threads the caller
/// (find_task_by_vpid finds threads too), else a live or zombie process; ESRCH otherwise.
fn target(cx: &Ctx<'_, '_>, pid: i32) -> Result<u32, Errno> {
    if pid == 0 || pid as u32 == cx.process.tgid || (pid > 0 && cx.process.has_thread(pid as u32)) {
        return Ok(cx.process.tgid);
    }
    let slot = (pid > 0)
        .then(|| cx.process.family.slot(pid as u32))
        .flatten()
        .ok_or(Errno::ESRCH)?;
    match slot.state.load(Ordering::Acquire) {
        state::RUNNING | state::ZOMBIE | state::REAPING => Ok(pid as u32),
        _ => Err(Errno::ESRCH),
    }
}

/// getpgid(pid).
pub fn getpgid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let pid = target(cx, a.int(0))?;
    let slot = cx.process.family.slot(pid);
    Ok(slot
        .map_or(cx.process.tgid, |s| s.pgid.load(Ordering::Relaxed))
        .into())
}

/// getsid(pid).
pub fn getsid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let pid = target(cx, a.int(0))?;
    let slot = cx.process.family.slot(pid);
    Ok(slot
        .map_or(cx.process.tgid, |s| s.sid.load(Ordering::Relaxed))
        .into())
}

/// getpgrp().
pub fn getpgrp(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.process.pgid().into())
}

/// setsid(): EPERM for a process group leader (a group with the caller's pid exists), else
/// a new session and group led by the caller.
pub fn setsid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    let me = cx.process.tgid;
    let table = cx.process.family.table.as_ref().ok_or(Errno::EPERM)?;
    let leads = table
        .each()
        .any(|(_, s)| live(s) && s.pgid.load(Ordering::Relaxed) == me);
    if leads {
        return Err(Errno::EPERM.into());
    }
    let slot = table.slot(me).ok_or(Errno::EPERM)?;
    slot.sid.store(me, Ordering::Relaxed);
    slot.pgid.store(me, Ordering::Relaxed);
    Ok(me.into())
}

/// setpgid(pid, pgid) in kernel/sys.c's order: pid 0 is the caller, pgid 0 is pid; a
/// negative pgid EINVAL; the caller or one of its children (ESRCH), in its session (EPERM),
/// not a session leader (EPERM); a group other than its own must exist in the session (EPERM).
pub fn setpgid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let me = cx.process.tgid;
    let pid = match a.int(0) {
        0 => me as i32,
        p => p,
    };
    let pgid = match a.int(1) {
        0 => pid,
        g => g,
    };
    if pgid < 0 {
        return Err(Errno::EINVAL.into());
    }
    if pid < 0 {
        return Err(Errno::ESRCH.into());
    }
    let (pid, pgid) = (pid as u32, pgid as u32);
    let table = cx.process.family.table.as_ref().ok_or(Errno::ESRCH)?;
    if pid != me && cx.process.has_thread(pid) {
        // A thread that is not the group leader.
        return Err(Errno::EINVAL.into());
    }
    let slot = table.slot(pid).ok_or(Errno::ESRCH)?;
    let mine = pid == me;
    if !live(slot) || (!mine && slot.ppid.load(Ordering::Relaxed) != me) {
        return Err(Errno::ESRCH.into());
    }
    let my_sid = cx.process.sid();
    let sid = slot.sid.load(Ordering::Relaxed);
    if !mine && sid != my_sid {
        return Err(Errno::EPERM.into());
    }
    if sid == pid {
        return Err(Errno::EPERM.into());
    }
    if pgid != pid {
        let exists = table.each().any(|(_, s)| {
            live(s)
                && s.pgid.load(Ordering::Relaxed) == pgid
                && s.sid.load(Ordering::Relaxed) == my_sid
        });
        if !exists {
            return Err(Errno::EPERM.into());
        }
    }
    slot.pgid.store(pgid, Ordering::Relaxed);
    Ok(0)
}

fn live(s: &table::Slot) -> bool {
    matches!(
        s.state.load(Ordering::Acquire),
        state::RUNNING | state::ZOMBIE
    )
}

/// The processes kill(2)'s pid argument names (0: the caller's group, -1: every process but
/// pid 1 and the caller, < -1: a group): the live ones (the caller among them if named); ESRCH
/// if none matched (a zombie matches and takes nothing).
pub fn kill_targets(cx: &Ctx<'_, '_>, target: i32) -> Result<Vec<u32>, Errno> {
    let me = cx.process.tgid;
    let Some(table) = &cx.process.family.table else {
        return if target == 0 || target as u32 == me || target == -(me as i32) {
            Ok(vec![me])
        } else {
            Err(Errno::ESRCH)
        };
    };
    let running = |s: &table::Slot| s.state.load(Ordering::Acquire) == state::RUNNING;
    let mut found = false;
    let mut out = Vec::new();
    match target {
        t if t > 0 => {
            let pid = t as u32;
            if pid == me || cx.process.has_thread(pid) {
                out.push(me);
            } else {
                let s = table.slot(pid).ok_or(Errno::ESRCH)?;
                match s.state.load(Ordering::Acquire) {
                    state::RUNNING => out.push(pid),
                    state::ZOMBIE | state::REAPING => found = true,
                    _ => {}
                }
            }
        }
        -1 => out.extend(
            table
                .each()
                .filter(|&(pid, s)| pid != 1 && pid != me && running(s))
                .map(|(pid, _)| pid),
        ),
        t => {
            let group = if t == 0 {
                cx.process.pgid()
            } else {
                t.unsigned_abs()
            };
            out.extend(
                table
                    .each()
                    .filter(|&(_, s)| running(s) && s.pgid.load(Ordering::Relaxed) == group)
                    .map(|(pid, _)| pid),
            );
        }
    }
    if out.is_empty() && !found {
        return Err(Errno::ESRCH);
    }
    Ok(out)
}

/// Post `sig` from this process to process `pid`'s mailbox.
pub fn post(cx: &Ctx<'_, '_>, pid: u32, sig: u32) {
    if let Some(table) = &cx.process.family.table {
        table.post(pid, sig, cx.process.tgid);
    }
}
