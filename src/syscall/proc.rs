//! Process-level syscalls: identity, limits, signal bookkeeping, TLS, futex on one thread.
use super::fd::HARD_MAX_FDS;
use super::linux::{Rlimit, SigAction, SigAltStack, Timespec, Utsname};
use super::{Args, Ctx, Stop, Sys};
use crate::hypercall::{HypercallError, DIRTY_SREGS};
use std::time::Duration;
use syscalls::Errno;

/// The application's pid and tid: it is the first and only process of its machine.
pub const TID: u64 = 1;

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

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
/// Lowest non-canonical address: FS/GS bases must be below it.
const USER_TOP: u64 = 0x0000_8000_0000_0000;

pub fn arch_prctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (code, addr) = (a.0[0], a.0[1]);
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= USER_TOP {
                return Err(Errno::EPERM.into());
            }
            let s = &mut *cx.cpu.sregs;
            if code == ARCH_SET_FS {
                s.fs.base = addr;
            } else {
                s.gs.base = addr;
            }
            cx.cpu.dirty |= DIRTY_SREGS;
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let s = &*cx.cpu.sregs;
            let base = if code == ARCH_GET_FS {
                s.fs.base
            } else {
                s.gs.base
            };
            cx.write_val(addr, &base)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

pub fn set_robust_list(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    // sizeof(struct robust_list_head)
    if a.0[1] != 24 {
        return Err(Errno::EINVAL.into());
    }
    cx.proc().robust_list = a.0[0];
    Ok(0)
}

const RLIMIT_CORE: u64 = 4;
const RLIMIT_STACK: u64 = 3;
const RLIMIT_NOFILE: u64 = 7;
const RLIM_NLIMITS: u64 = 16;
const RLIM_INFINITY: u64 = u64::MAX;

fn rlimit(cx: &Ctx<'_, '_>, res: u64) -> Rlimit {
    if res == RLIMIT_NOFILE {
        return Rlimit {
            cur: cx.state.process.fds.limit,
            max: HARD_MAX_FDS,
        };
    }
    if let Some(r) = cx.state.process.rlimits.get(&res) {
        return *r;
    }
    let cur = match res {
        RLIMIT_STACK => crate::app::STACK_BYTES,
        RLIMIT_CORE => 0,
        _ => RLIM_INFINITY,
    };
    Rlimit {
        cur,
        max: RLIM_INFINITY,
    }
}

fn set_rlimit(cx: &mut Ctx<'_, '_>, res: u64, new: Rlimit) -> Result<(), Errno> {
    if new.cur > new.max {
        return Err(Errno::EINVAL);
    }
    if new.max > rlimit(cx, res).max {
        return Err(Errno::EPERM);
    }
    if res == RLIMIT_NOFILE {
        cx.proc().fds.limit = new.cur.max(3);
    } else {
        cx.proc().rlimits.insert(res, new);
    }
    Ok(())
}

pub fn prlimit64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, res, new, old) = (a.0[0], a.0[1], a.0[2], a.0[3]);
    if pid != 0 && pid != TID {
        return Err(Errno::ESRCH.into());
    }
    if res >= RLIM_NLIMITS {
        return Err(Errno::EINVAL.into());
    }
    let new = if new != 0 {
        Some(cx.read_val::<Rlimit>(new)?)
    } else {
        None
    };
    if old != 0 {
        cx.write_val(old, &rlimit(cx, res))?;
    }
    if let Some(n) = new {
        set_rlimit(cx, res, n)?;
    }
    Ok(0)
}

pub fn getrlimit(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.0[0] >= RLIM_NLIMITS {
        return Err(Errno::EINVAL.into());
    }
    cx.write_val(a.0[1], &rlimit(cx, a.0[0]))?;
    Ok(0)
}

pub fn setrlimit(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.0[0] >= RLIM_NLIMITS {
        return Err(Errno::EINVAL.into());
    }
    let n: Rlimit = cx.read_val(a.0[1])?;
    set_rlimit(cx, a.0[0], n)?;
    Ok(0)
}

const NSIG: u64 = 64;
const SIGKILL: u64 = 9;
const SIGSTOP: u64 = 19;
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn rt_sigaction(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (sig, act, oact, size) = (a.0[0], a.0[1], a.0[2], a.0[3]);
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
            .state
            .process
            .sigactions
            .get(&sig)
            .copied()
            .unwrap_or_default();
        cx.write_val(oact, &old)?;
    }
    if let Some(n) = new {
        cx.proc().sigactions.insert(sig, n);
    }
    Ok(0)
}

pub fn rt_sigprocmask(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (how, set, oset, size) = (a.0[0], a.0[1], a.0[2], a.0[3]);
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
    let old = cx.state.process.sigmask;
    if oset != 0 {
        cx.write_val(oset, &old)?;
    }
    if let Some(s) = new {
        let mask = match how {
            0 => old | s,
            1 => old & !s,
            _ => s,
        };
        cx.proc().sigmask = mask & !UNBLOCKABLE;
    }
    Ok(0)
}

const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const MINSIGSTKSZ: u64 = 2048;

pub fn sigaltstack(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (ss, old) = (a.0[0], a.0[1]);
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
        let cur = cx.state.process.altstack.unwrap_or(SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        });
        cx.write_val(old, &cur)?;
    }
    if let Some(n) = new {
        cx.proc().altstack = (n.flags & SS_DISABLE == 0).then_some(n);
    }
    Ok(0)
}

pub fn uname(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut u = Utsname {
        fields: [[0; 65]; 6],
    };
    let values: [&[u8]; 6] = [
        b"Linux",
        b"umon",
        b"6.1.0-umon",
        concat!("#1 umon ", env!("CARGO_PKG_VERSION")).as_bytes(),
        b"x86_64",
        b"(none)",
    ];
    for (field, v) in u.fields.iter_mut().zip(values) {
        field[..v.len()].copy_from_slice(v);
    }
    cx.write_val(a.0[0], &u)?;
    Ok(0)
}

const GRND_FLAGS: u64 = 0x7;
/// Most bytes one getrandom call returns (Linux: 32 MiB - 1).
const GRND_MAX: u64 = (32 << 20) - 1;

pub fn getrandom(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (buf, len, flags) = (a.0[0], a.0[1].min(GRND_MAX), a.0[2]);
    if flags & !GRND_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut chunk = vec![0u8; len.min(64 << 10) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        rustix::rand::getrandom(&mut chunk[..n], rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Stop::from(Errno::new(e.raw_os_error())))?;
        cx.space().write(cx.mem, buf + done, &chunk[..n])?;
        done += n as u64;
    }
    Ok(done)
}

pub fn readlink(cx: &mut Ctx<'_, '_>, path: u64, buf: u64, size: u64) -> Sys {
    let name = cx
        .space()
        .read_cstr(cx.mem, path, super::io::PATH_MAX - 1)?;
    if name != b"/proc/self/exe" {
        return Err(Errno::ENOENT.into());
    }
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL.into());
    }
    let exe = cx.state.process.exe.clone();
    let n = exe.len().min(size as usize);
    cx.space().write(cx.mem, buf, &exe[..n])?;
    Ok(n as u64)
}

pub fn getcwd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let cwd = b"/\0";
    if a.0[1] < cwd.len() as u64 {
        return Err(Errno::ERANGE.into());
    }
    cx.space().write(cx.mem, a.0[0], cwd)?;
    Ok(cwd.len() as u64)
}

pub fn sched_getaffinity(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, len, mask) = (a.0[0], a.0[1], a.0[2]);
    if pid != 0 && pid != TID {
        return Err(Errno::ESRCH.into());
    }
    if len < 8 || len % 8 != 0 {
        return Err(Errno::EINVAL.into());
    }
    // One vCPU: CPU 0.
    cx.write_val(mask, &1u64)?;
    Ok(8)
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_CMD_MASK: u64 = 0x7f;

/// futex with one thread: a wake finds no waiter; a wait on a matching value can only end by
/// its timeout, and without one the application would hang forever, so the VM ends instead.
pub fn futex(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (uaddr, op, val, timeout) = (a.0[0], a.0[1], a.0[2], a.0[3]);
    match op & FUTEX_CMD_MASK {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if uaddr % 4 != 0 {
                return Err(Errno::EINVAL.into());
            }
            let cur: u32 = cx.read_val(uaddr)?;
            if cur != val as u32 {
                return Err(Errno::EAGAIN.into());
            }
            if timeout == 0 {
                return Err(Stop::Fatal(HypercallError::Deadlock { what: "futex wait" }));
            }
            let t: Timespec = cx.read_val(timeout)?;
            let d = super::time::duration(t)?;
            let d = if op & FUTEX_CMD_MASK == FUTEX_WAIT_BITSET {
                // Absolute on CLOCK_MONOTONIC (or REALTIME with FUTEX_CLOCK_REALTIME).
                let clock = if op & 256 != 0 {
                    rustix::time::ClockId::Realtime
                } else {
                    rustix::time::ClockId::Monotonic
                };
                let n = rustix::time::clock_gettime(clock);
                d.saturating_sub(Duration::new(n.tv_sec.max(0) as u64, n.tv_nsec as u32))
            } else {
                d
            };
            super::time::sleep(cx, d)?;
            Err(Errno::ETIMEDOUT.into())
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP => {
            // No waiter can exist, but the address is checked as Linux checks it.
            if uaddr % 4 != 0 {
                return Err(Errno::EINVAL.into());
            }
            cx.read_val::<u32>(uaddr)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS.into()),
    }
}

/// Signals whose default action is to do nothing.
const DEFAULT_IGNORED: [u64; 4] = [17, 18, 23, 28]; // SIGCHLD, SIGCONT, SIGURG, SIGWINCH
const SIG_IGN: u64 = 1;

/// kill/tkill/tgkill: the only process (and thread) is the application itself. There is no
/// signal delivery yet, so a signal it sends itself either does nothing (signal 0, ignored, or
/// ignored by default) or ends it the way the default action would: `abort()` ends with SIGABRT.
pub fn kill(cx: &mut Ctx<'_, '_>, target: u64, sig: u64) -> Sys {
    let target = target as i64 as i32;
    if !(-1..=1).contains(&target) {
        return Err(Errno::ESRCH.into());
    }
    if sig > NSIG {
        return Err(Errno::EINVAL.into());
    }
    let handler = cx
        .state
        .process
        .sigactions
        .get(&sig)
        .map(|a| a.handler)
        .unwrap_or(0);
    if sig == 0 || handler == SIG_IGN || (handler == 0 && DEFAULT_IGNORED.contains(&sig)) {
        return Ok(0);
    }
    let name = crate::hypercall::signal_name(sig as i32);
    let how = if handler == 0 {
        "sent by itself"
    } else {
        "sent by itself; its handler was not run: umon does not deliver signals yet"
    };
    Err(Stop::Exit(crate::ExitStatus::Signaled {
        signal: sig as i32,
        report: format!("app killed by {name} ({how})"),
    }))
}
