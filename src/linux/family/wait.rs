//! wait4 and waitid: a child's end is in the shared table (its monitor wrote it before leaving);
//! a wait takes it, reaps the child's monitor on the host, and frees the pid. A waiter sleeps
//! on its thread's parker, which the mailbox unparks at every child's end, and which signals
//! and stops unpark too.
use super::chld_info;
use super::table::{state, PidTable, Slot};
use crate::linux::abi::SigInfo;
use crate::linux::process::locked;
use crate::linux::signal::deliver;
use crate::linux::{Args, Ctx, Sys};
use std::sync::atomic::Ordering;
use syscalls::Errno;

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;
const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
const P_PIDFD: u64 = 3;

/// Which children a wait accepts.
#[derive(Clone, Copy)]
enum Which {
    Any,
    Pid(u32),
    Group(u32),
}

/// A child that ended: its pid and wait status.
struct Ended {
    pid: u32,
    wstatus: i32,
}

/// wait4(pid, wstatus, options, rusage).
pub fn wait4(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, status_ptr, options, rusage) = (a.int(0), a.ptr(1), a.raw(2) & 0xffff_ffff, a.ptr(3));
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL.into());
    }
    // kernel_wait4: INT_MIN is ESRCH (it has no group to negate).
    let which = match pid {
        i32::MIN => return Err(Errno::ESRCH.into()),
        -1 => Which::Any,
        0 => Which::Group(cx.process.pgid()),
        p if p < 0 => Which::Group(p.unsigned_abs()),
        p => Which::Pid(p as u32),
    };
    match wait(cx, which, options & WNOHANG != 0, false)? {
        None => Ok(0),
        Some(e) => {
            if status_ptr != 0 {
                cx.write_val(status_ptr, &e.wstatus)?;
            }
            if rusage != 0 {
                cx.write_val(rusage, &[0u64; 18])?;
            }
            Ok(e.pid.into())
        }
    }
}

/// waitid(idtype, id, infop, options, rusage).
pub fn waitid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (idtype, id, infop, options, rusage) = (
        a.raw(0) & 0xffff_ffff,
        a.raw(1) as i32,
        a.ptr(2),
        a.raw(3) & 0xffff_ffff,
        a.ptr(4),
    );
    if options & !(WNOHANG | WNOWAIT | WEXITED | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL.into());
    }
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id as u32),
        P_PGID if id > 0 => Which::Group(id as u32),
        P_PGID if id == 0 => Which::Group(cx.process.pgid()),
        P_PID | P_PGID => return Err(Errno::EINVAL.into()),
        // pidfds are not served (no pidfd_open, no CLONE_PIDFD): none can be valid.
        P_PIDFD => return Err(Errno::EBADF.into()),
        _ => return Err(Errno::EINVAL.into()),
    };
    if options & WEXITED == 0 {
        // Only stops or continues asked for: processes never stop each other here.
        if options & WNOHANG != 0 {
            if infop != 0 {
                cx.write_val(infop, &SigInfo::default())?;
            }
            return Ok(0);
        }
    }
    let ended = wait(cx, which, options & WNOHANG != 0, options & WNOWAIT != 0)?;
    if infop != 0 {
        let info = match &ended {
            Some(e) => chld_info(e.pid, e.wstatus),
            // WNOHANG with nothing to report: si_signo and si_pid zero.
            None => SigInfo::default(),
        };
        cx.write_val(infop, &info)?;
    }
    if rusage != 0 {
        cx.write_val(rusage, &[0u64; 18])?;
    }
    Ok(0)
}

/// The first ended child `which` accepts, reaped unless `keep`; None with `nohang` if some
/// match but none ended. ECHILD if none match; ERESTARTSYS if a signal comes first.
fn wait(cx: &Ctx<'_, '_>, which: Which, nohang: bool, keep: bool) -> Result<Option<Ended>, Errno> {
    let table = cx.process.family.table.clone().ok_or(Errno::ECHILD)?;
    let me = cx.process.tgid;
    loop {
        let mut any = false;
        for (pid, slot) in table.each() {
            if !is_child(slot, me) || !accepts(which, pid, slot) {
                continue;
            }
            any = true;
            if slot.state.load(Ordering::Acquire) != state::ZOMBIE {
                continue;
            }
            let wstatus = slot.wstatus.load(Ordering::Relaxed);
            if keep {
                return Ok(Some(Ended { pid, wstatus }));
            }
            if slot
                .state
                .compare_exchange(
                    state::ZOMBIE,
                    state::REAPING,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            super::reap_host(cx.process, &table, pid);
            return Ok(Some(Ended { pid, wstatus }));
        }
        if !any {
            return Err(Errno::ECHILD);
        }
        if nohang {
            return Ok(None);
        }
        if cx.interrupted() {
            return Err(Errno::EINTR);
        }
        if deliver::signal_pending(cx) {
            return Err(deliver::restart(deliver::ERESTARTSYS));
        }
        // The mailbox unparks at a child's end; the timeout covers a monitor that died
        // without writing its end.
        cx.thread.parker.park(Some(
            std::time::Instant::now() + std::time::Duration::from_millis(200),
        ));
        check_lost_children(cx, &table);
    }
}

fn is_child(slot: &Slot, me: u32) -> bool {
    slot.ppid.load(Ordering::Relaxed) == me
        && matches!(
            slot.state.load(Ordering::Acquire),
            state::RUNNING | state::ZOMBIE
        )
}

fn accepts(which: Which, pid: u32, slot: &Slot) -> bool {
    match which {
        Which::Any => true,
        Which::Pid(p) => p == pid,
        Which::Group(g) => slot.pgid.load(Ordering::Relaxed) == g,
    }
}

/// A child whose monitor died without writing its end (killed on the host): record it as
/// killed by SIGKILL so a wait ends.
fn check_lost_children(cx: &Ctx<'_, '_>, table: &PidTable) {
    let children = locked(&cx.process.family.children);
    for (pid, pidfd) in children.iter() {
        let Some(slot) = table.slot(*pid) else {
            continue;
        };
        if slot.state.load(Ordering::Acquire) != state::RUNNING {
            continue;
        }
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        let gone = matches!(rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())), Ok(n) if n > 0);
        if gone && slot.state.load(Ordering::Acquire) == state::RUNNING {
            table.ended(*pid, libc::SIGKILL);
        }
    }
}
