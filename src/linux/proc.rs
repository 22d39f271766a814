//! Process-level syscalls: identity, limits, TLS.
use super::abi::arch::{ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS};
use super::abi::TASK_SIZE_MAX;
use super::abi::{Rlimit, Utsname};
use super::fd::HARD_MAX_FDS;
use super::{Args, Ctx, Stop, Sys};
use crate::linux::mm::space::Access;
use crate::machine::vcpu::cpu::DIRTY_SREGS;
use syscalls::Errno;

pub fn arch_prctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (code, addr) = (a.raw(0), a.ptr(1));
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            // Linux's do_arch_prctl_64: a base at or above TASK_SIZE_MAX is EPERM.
            if addr >= TASK_SIZE_MAX {
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
    if a.len(1) != 24 {
        return Err(Errno::EINVAL.into());
    }
    cx.thread.robust_list = (a.ptr(0), a.len(1));
    cx.process.set_robust_head(cx.thread.tid, a.ptr(0));
    Ok(0)
}

const RLIMIT_FSIZE: u64 = 1;
/// RLIMIT_RSS (/proc/<pid>/stat's rsslim).
pub(crate) const RLIMIT_RSS: u64 = 5;
const RLIMIT_CORE: u64 = 4;
/// RLIMIT_STACK: how far a MAP_GROWSDOWN mapping may grow (`mm::fault`).
pub(crate) const RLIMIT_STACK: u64 = 3;
const RLIMIT_NOFILE: u64 = 7;
/// RLIMIT_NPROC: the processes fork may make (`family::fork`).
pub(crate) const RLIMIT_NPROC: u64 = 6;
/// Linux starts these at 0 for every process (INIT_RLIMITS): no raising of priority, no
/// real-time scheduling, which the setpriority checks assume.
const RLIMIT_NICE: u64 = 13;
const RLIMIT_RTPRIO: u64 = 14;
const RLIM_NLIMITS: u64 = 16;
const RLIM_INFINITY: u64 = u64::MAX;

/// The process's limit `res` (0..RLIM_NLIMITS): set by the app, else its start value.
pub(crate) fn rlimit(cx: &Ctx<'_, '_>, res: u64) -> Rlimit {
    let changed = cx.process.rlimits().get(&res).copied();
    if let Some(r) = changed {
        return r;
    }
    if res == RLIMIT_NOFILE {
        return Rlimit {
            cur: cx.process.fds().limit,
            max: HARD_MAX_FDS,
        };
    }
    if res == super::signal::RLIMIT_SIGPENDING {
        return cx.process.sigpending_default;
    }
    if res == RLIMIT_NICE || res == RLIMIT_RTPRIO {
        return Rlimit { cur: 0, max: 0 };
    }
    if res == RLIMIT_NPROC {
        // umon's own bound on the application's processes (each is a monitor and a VM).
        let n = u64::from(super::family::DEFAULT_MAX_PROCESSES);
        return Rlimit { cur: n, max: n };
    }
    let cur = match res {
        RLIMIT_STACK => crate::image::place::STACK_BYTES,
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
        // The fd table enforces the soft limit (EMFILE beyond it), as Linux does.
        cx.process.fds().limit = new.cur;
    }
    cx.process.rlimits().insert(res, new);
    Ok(())
}

pub fn prlimit64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, res, new, old) = (a.raw(0), a.raw(1), a.ptr(2), a.ptr(3));
    if pid != 0 && pid != u64::from(cx.process.tgid) {
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
    if a.raw(0) >= RLIM_NLIMITS {
        return Err(Errno::EINVAL.into());
    }
    cx.write_val(a.ptr(1), &rlimit(cx, a.raw(0)))?;
    Ok(0)
}

pub fn setrlimit(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.raw(0) >= RLIM_NLIMITS {
        return Err(Errno::EINVAL.into());
    }
    let n: Rlimit = cx.read_val(a.ptr(1))?;
    set_rlimit(cx, a.raw(0), n)?;
    Ok(0)
}

/// The soft RLIMIT_FSIZE (u64::MAX: none).
pub(super) fn file_size_limit(cx: &Ctx<'_, '_>) -> u64 {
    rlimit(cx, RLIMIT_FSIZE).cur
}

/// `/proc/<pid>/limits`: Linux's table (fs/proc/base.c proc_pid_limits), names and units by
/// resource number, values the process's own.
pub(crate) fn limits_text(cx: &Ctx<'_, '_>) -> String {
    const NAMES: [(&str, &str); RLIM_NLIMITS as usize] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let value = |v: u64| {
        if v == RLIM_INFINITY {
            "unlimited".to_owned()
        } else {
            v.to_string()
        }
    };
    let mut out = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    for (res, (name, unit)) in NAMES.iter().enumerate() {
        let r = rlimit(cx, res as u64);
        out += &format!("{name:<25} {:<20} {:<20} ", value(r.cur), value(r.max));
        if unit.is_empty() {
            out.push('\n');
        } else {
            out += &format!("{unit:<10}\n");
        }
    }
    out
}

/// The host name the guest sees (uname's nodename, /proc/sys/kernel/hostname).
pub const HOSTNAME: &[u8] = b"umon";
/// The kernel release the guest sees (uname's release, /proc/sys/kernel/osrelease).
pub const OSRELEASE: &[u8] = b"6.1.0-umon";

pub fn uname(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut u = Utsname {
        fields: [[0; 65]; 6],
    };
    let values: [&[u8]; 6] = [
        b"Linux",
        HOSTNAME,
        OSRELEASE,
        concat!("#1 umon ", env!("CARGO_PKG_VERSION")).as_bytes(),
        b"x86_64",
        b"(none)",
    ];
    for (field, v) in u.fields.iter_mut().zip(values) {
        field[..v.len()].copy_from_slice(v);
    }
    cx.write_val(a.ptr(0), &u)?;
    Ok(0)
}

const GRND_FLAGS: u64 = 0x7;
/// Most bytes one getrandom call returns (Linux: 32 MiB - 1).
const GRND_MAX: u64 = (32 << 20) - 1;

pub fn getrandom(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (buf, len, flags) = (a.ptr(0), a.len(1).min(GRND_MAX), a.flags(2));
    if flags & !GRND_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    if buf.checked_add(len).is_none_or(|e| e > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT.into());
    }
    // Linux copies block by block and returns what it copied before a bad page.
    let len = cx.space().accessible(buf, len, Access::Write);
    if len == 0 && a.len(1) != 0 {
        return Err(Errno::EFAULT.into());
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
    let exe = cx.process.exe().clone();
    let n = exe.len().min(size as usize);
    cx.space().write(cx.mem, buf, &exe[..n])?;
    Ok(n as u64)
}

pub fn getcwd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let cwd = b"/\0";
    if a.len(1) < cwd.len() as u64 {
        return Err(Errno::ERANGE.into());
    }
    cx.space().write(cx.mem, a.ptr(0), cwd)?;
    Ok(cwd.len() as u64)
}
