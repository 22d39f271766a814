//! Small process-information calls programs make at start-up (shells, busybox, C libraries):
//! supplementary groups, resource usage, process group and session, `prctl`, `sysinfo`, and
//! the socket calls a program makes on an fd to ask whether it is a socket.
use super::abi::{Rusage, Sysinfo, Timeval};
use super::{Args, Ctx, Sys};
use syscalls::Errno;

/// Linux's NGROUPS_MAX: getgroups never returns more.
const NGROUPS_MAX: usize = 65536;

/// getgroups(size, list): umon's own supplementary groups, since the app runs with umon's
/// identity (as its uid and gid already are).
pub fn getgroups(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (size, list) = (a.int(0), a.ptr(1));
    if size < 0 {
        return Err(Errno::EINVAL.into());
    }
    let groups = rustix::process::getgroups().map_err(super::io::host_errno)?;
    let groups: Vec<u32> = groups
        .iter()
        .take(NGROUPS_MAX)
        .map(|g| g.as_raw())
        .collect();
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL.into());
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
    cx.space().write(cx.mem, list, &bytes)?;
    Ok(groups.len() as u64)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// getrusage(who, usage): the app's CPU time is the CPU time of the host thread that runs its
/// vCPU (guest code runs inside KVM_RUN on that thread), counted as user time; a process
/// without children has used nothing for RUSAGE_CHILDREN.
pub fn getrusage(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut usage = Rusage::default();
    match a.int(0) {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
            usage.utime = Timeval {
                sec: t.tv_sec,
                usec: t.tv_nsec / 1000,
            };
        }
        RUSAGE_CHILDREN => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    cx.write_val(a.ptr(1), &usage)?;
    Ok(0)
}

/// getpgid(pid) and getsid(pid): the app is pid 1, leader of its own group and session.
pub fn group_of(cx: &mut Ctx<'_, '_>, pid: u64) -> Sys {
    let tgid = u64::from(cx.process.tgid);
    match pid as i32 {
        0 => Ok(tgid),
        p if p as u64 == tgid => Ok(tgid),
        // No other process exists (a negative pid names none either, as in find_vpid).
        _ => Err(Errno::ESRCH.into()),
    }
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
/// TASK_COMM_LEN: a thread name with its NUL.
const COMM_LEN: usize = 16;

/// What `prctl` keeps for the app.
#[derive(Clone, Debug)]
pub struct PrctlState {
    /// PR_SET_NAME: the thread's name (`comm`), NUL-padded.
    pub name: [u8; COMM_LEN],
    /// PR_SET_PDEATHSIG.
    pub pdeathsig: u64,
    /// PR_SET_DUMPABLE.
    pub dumpable: u64,
    /// PR_SET_NO_NEW_PRIVS (once set, stays set).
    pub no_new_privs: bool,
}

impl PrctlState {
    /// Linux's initial state for an executable called `exe` (its base name, cut to 15 bytes).
    pub fn new(exe: &[u8]) -> PrctlState {
        let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
        let mut name = [0; COMM_LEN];
        let n = base.len().min(COMM_LEN - 1);
        name[..n].copy_from_slice(&base[..n]);
        PrctlState {
            name,
            pdeathsig: 0,
            dumpable: 1,
            no_new_privs: false,
        }
    }
}

impl Default for PrctlState {
    fn default() -> Self {
        PrctlState::new(b"")
    }
}

/// prctl(option, ...): the options C libraries, shells and runtimes use at start; any other
/// is EINVAL, Linux's answer for an option it does not know.
pub fn prctl(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let arg = a.raw(1);
    match u64::from(a.uint(0)) {
        PR_SET_NAME => {
            // Linux copies at most 15 bytes and cuts a longer name there.
            let mut name = [0u8; COMM_LEN];
            for (i, byte) in name.iter_mut().take(COMM_LEN - 1).enumerate() {
                *byte = cx.read_val::<u8>(arg.wrapping_add(i as u64))?;
                if *byte == 0 {
                    break;
                }
            }
            cx.process.prctl().name = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let name = cx.process.prctl().name;
            cx.write_val(arg, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            if arg > 64 {
                return Err(Errno::EINVAL.into());
            }
            cx.process.prctl().pdeathsig = arg;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = cx.process.prctl().pdeathsig as i32;
            cx.write_val(arg, &sig)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(cx.process.prctl().dumpable),
        PR_SET_DUMPABLE => {
            if arg > 1 {
                return Err(Errno::EINVAL.into());
            }
            cx.process.prctl().dumpable = arg;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if arg != 1 || (2..5).map(|i| a.raw(i)).any(|v| v != 0) {
                return Err(Errno::EINVAL.into());
            }
            cx.process.prctl().no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if (1..5).map(|i| a.raw(i)).any(|v| v != 0) {
                return Err(Errno::EINVAL.into());
            }
            Ok(u64::from(cx.process.prctl().no_new_privs))
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// sysinfo(info): the guest's RAM as total, what brk/mmap have not handed out as free; the
/// host's uptime and load averages (as a container sees them); one process.
pub fn sysinfo(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let host = rustix::system::sysinfo();
    let total = cx.mem.bytes();
    let info = Sysinfo {
        uptime: host.uptime,
        loads: host.loads,
        totalram: total,
        freeram: cx.space().free_bytes().min(total),
        procs: 1,
        mem_unit: 1,
        ..Default::default()
    };
    cx.write_val(a.ptr(0), &info)?;
    Ok(0)
}

/// A socket call on `fd`: umon has no sockets yet, so any open fd is not one (ENOTSOCK), as
/// Linux answers for a file or pipe (bash asks `getpeername(0)` to learn whether its input is
/// a network connection).
pub fn not_a_socket(cx: &mut Ctx<'_, '_>, fd: u64) -> Sys {
    cx.process.fds().get(fd)?;
    Err(Errno::ENOTSOCK.into())
}
