//! Small process-information calls programs make at start-up (shells, busybox, C libraries):
//! supplementary groups, resource usage, process group and session, `prctl`, `sysinfo`,
//! scheduling priorities and policies, I/O priorities, `personality` and `membarrier`.
//!
//! The application runs with umon's uid and gid but no capabilities: what needs privilege on
//! Linux (setgroups, lowering the nice value past RLIMIT_NICE, real-time policies, the RT I/O
//! class) is refused as Linux refuses an unprivileged process, even when umon runs as root.
use super::abi::{Rusage, Sysinfo, Timeval};
use super::{Args, Ctx, Sys};
use std::collections::HashMap;
use std::time::Instant;
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

/// setgroups(size, list): changing groups needs CAP_SETGID, which the application never has;
/// Linux checks that before anything else.
pub fn setgroups(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Err(Errno::EPERM.into())
}

// ---- user and group ids -------------------------------------------------------------------
// The real, effective, saved and filesystem ids are all umon's, and without CAP_SETUID or
// CAP_SETGID a process may only set an id to one it already has (kernel/sys.c): so a change
// to umon's own id succeeds and changes nothing, any other is EPERM, and -1 means "unchanged"
// except in setuid/setgid, where it is no valid id (EINVAL).

/// An id argument (uid_t/gid_t: the low 32 bits).
fn id_arg(a: &Args, i: usize) -> u32 {
    a.raw(i) as u32
}

/// setuid/setgid(id): the one id must be `own`.
fn set_one(id: u32, own: u64) -> Sys {
    match id {
        u32::MAX => Err(Errno::EINVAL.into()),
        id if u64::from(id) == own => Ok(0),
        _ => Err(Errno::EPERM.into()),
    }
}

/// setre*id/setres*id: each id given (not -1) must be `own`.
fn set_some(ids: &[u32], own: u64) -> Sys {
    if ids.iter().all(|&id| id == u32::MAX || u64::from(id) == own) {
        Ok(0)
    } else {
        Err(Errno::EPERM.into())
    }
}

/// getresuid/getresgid(r, e, s): the three ids written in order; the first unwritable pointer
/// ends the call with EFAULT (what came before it stays written), as Linux's put_user chain.
fn get_res(cx: &mut Ctx<'_, '_>, a: &Args, own: u64) -> Sys {
    for i in 0..3 {
        cx.write_val(a.ptr(i), &(own as u32))?;
    }
    Ok(0)
}

pub fn setuid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_one(id_arg(a, 0), crate::machine::host::ids().uid)
}

pub fn setgid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_one(id_arg(a, 0), crate::machine::host::ids().gid)
}

pub fn setreuid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_some(
        &[id_arg(a, 0), id_arg(a, 1)],
        crate::machine::host::ids().uid,
    )
}

pub fn setregid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_some(
        &[id_arg(a, 0), id_arg(a, 1)],
        crate::machine::host::ids().gid,
    )
}

pub fn setresuid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ids = [id_arg(a, 0), id_arg(a, 1), id_arg(a, 2)];
    set_some(&ids, crate::machine::host::ids().uid)
}

pub fn setresgid(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ids = [id_arg(a, 0), id_arg(a, 1), id_arg(a, 2)];
    set_some(&ids, crate::machine::host::ids().gid)
}

pub fn getresuid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    get_res(cx, a, crate::machine::host::ids().uid)
}

pub fn getresgid(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    get_res(cx, a, crate::machine::host::ids().gid)
}

/// setfsuid/setfsgid(id): never fails; returns the old filesystem id, which no call can
/// change here (see above).
pub fn setfsuid(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(crate::machine::host::ids().uid)
}

pub fn setfsgid(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(crate::machine::host::ids().gid)
}

/// getcpu(cpu, node, cache): the calling vCPU's number (as `rdtscp`'s TSC_AUX says) and node 0;
/// both pointers are tried, and either one unwritable is EFAULT (kernel/sys.c).
pub fn getcpu(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (cpu, node) = (a.ptr(0), a.ptr(1));
    let mut ok = true;
    if cpu != 0 {
        ok &= cx.write_val(cpu, &cx.cpu.index).is_ok();
    }
    if node != 0 {
        ok &= cx.write_val(node, &0u32).is_ok();
    }
    if ok {
        Ok(0)
    } else {
        Err(Errno::EFAULT.into())
    }
}

/// A CPU clock of the host as a timeval: the monitor process's (RUSAGE_SELF: its vCPU threads
/// run all the application's code) or the calling vCPU's host thread (RUSAGE_THREAD). Guest
/// code and the monitor's service of its calls are not told apart: it is all user time.
fn cpu_time(clock: rustix::time::ClockId) -> Timeval {
    let t = rustix::time::clock_gettime(clock);
    Timeval {
        sec: t.tv_sec,
        usec: t.tv_nsec / 1000,
    }
}

/// getrusage(who, usage): CPU times from the host threads that run the vCPUs (see
/// [`cpu_time`]); a process without children has used nothing for RUSAGE_CHILDREN.
pub fn getrusage(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut usage = Rusage::default();
    match a.int(0) {
        RUSAGE_SELF => usage.utime = cpu_time(rustix::time::ClockId::ProcessCPUTime),
        RUSAGE_THREAD => usage.utime = cpu_time(rustix::time::ClockId::ThreadCPUTime),
        RUSAGE_CHILDREN => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    cx.write_val(a.ptr(1), &usage)?;
    Ok(0)
}

/// USER_HZ: the unit of clock_t.
const USER_HZ: i64 = 100;

/// times(buf): the process's CPU times in clock ticks (children: none), and the ticks since
/// the VM started as the "arbitrary point in the past" the return value counts from.
pub fn times(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ticks = |t: Timeval| t.sec * USER_HZ + t.usec / (1_000_000 / USER_HZ);
    if a.ptr(0) != 0 {
        let user = cpu_time(rustix::time::ClockId::ProcessCPUTime);
        let tms: [i64; 4] = [ticks(user), 0, 0, 0];
        cx.write_val(a.ptr(0), &tms)?;
    }
    let up = cx.process.prctl().started.elapsed();
    Ok((up.as_millis() as u64) / (1000 / USER_HZ as u64))
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_GET_SECCOMP: u64 = 21;
const PR_CAPBSET_READ: u64 = 23;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
const PR_GET_TID_ADDRESS: u64 = 40;
/// TASK_COMM_LEN: a thread name with its NUL.
const COMM_LEN: usize = 16;
/// The highest capability number Linux knows (CAP_LAST_CAP is 40 since Linux 5.9; the host's
/// own is found at start, see [`host_capbset`]).
const CAP_SLOTS: u64 = 64;

/// A thread's scheduling settings (getpriority, sched_*, ioprio_*).
#[derive(Clone, Copy, Debug)]
pub struct Sched {
    /// Nice value, -20..=19.
    pub nice: i32,
    /// The policy with SCHED_RESET_ON_FORK, as sched_getscheduler reports it.
    pub policy: u32,
    /// The I/O priority (class << 13 | data).
    pub ioprio: u32,
}

/// What `prctl` and the other per-process settings calls here keep for the app.
#[derive(Clone, Debug)]
pub struct PrctlState {
    /// When the VM started (sysinfo's uptime, times).
    pub started: Instant,
    /// PR_SET_CHILD_SUBREAPER.
    pub child_subreaper: bool,
    /// The bounding set umon was started with (PR_CAPBSET_READ), and the number of
    /// capabilities the host knows.
    pub capbset: (u64, u64),
    /// umon's own seccomp mode before it confined itself (PR_GET_SECCOMP): a filter the app
    /// inherited from whoever started umon, as it would have natively.
    pub seccomp: u64,
    /// personality(2)'s value.
    pub personality: u32,
    /// Each thread's scheduling settings, by tid, when changed from `sched_default`.
    pub sched: HashMap<u32, Sched>,
    /// umon's own nice value at start (the app's, as a child's on Linux), I/O priority unset.
    pub sched_default: Sched,
    /// PR_SET_NAME: the thread's name (`comm`), NUL-padded.
    pub name: [u8; COMM_LEN],
    /// PR_SET_PDEATHSIG.
    pub pdeathsig: u64,
    /// PR_SET_DUMPABLE.
    pub dumpable: u64,
    /// PR_SET_NO_NEW_PRIVS (once set, stays set).
    pub no_new_privs: bool,
    /// The membarrier registrations (the REGISTER_* command bits).
    pub membarrier: u32,
}

/// `comm` for an executable called `exe`: its base name, cut to 15 bytes, NUL-padded.
fn comm_of(exe: &[u8]) -> [u8; COMM_LEN] {
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    let mut name = [0; COMM_LEN];
    let n = base.len().min(COMM_LEN - 1);
    name[..n].copy_from_slice(&base[..n]);
    name
}

impl PrctlState {
    /// exec of `exe`: its name becomes `comm`.
    pub fn set_comm(&mut self, exe: &[u8]) {
        self.name = comm_of(exe);
    }

    /// Linux's initial state for an executable called `exe` (its base name, cut to 15 bytes).
    pub fn new(exe: &[u8]) -> PrctlState {
        let name = comm_of(exe);
        PrctlState {
            started: Instant::now(),
            child_subreaper: false,
            capbset: host_capbset(),
            seccomp: rustix::thread::secure_computing_mode().map_or(0, |m| m as u64),
            personality: PER_LINUX,
            sched: HashMap::new(),
            sched_default: Sched {
                nice: rustix::process::getpriority_process(None).unwrap_or(0),
                policy: SCHED_OTHER,
                // Linux's for a task that never set one.
                ioprio: 0,
            },
            name,
            pdeathsig: 0,
            dumpable: 1,
            no_new_privs: false,
            membarrier: 0,
        }
    }

    /// Thread `tid`'s scheduling settings.
    fn sched_of(&self, tid: u32) -> Sched {
        self.sched.get(&tid).copied().unwrap_or(self.sched_default)
    }
}

/// umon's capability bounding set and how many capabilities the host knows (read before umon
/// confines itself: its seccomp filter allows no PR_CAPBSET_READ).
fn host_capbset() -> (u64, u64) {
    let (mut set, mut known) = (0u64, 0u64);
    for cap in 0..CAP_SLOTS {
        let bit = rustix::thread::CapabilitySet::from_bits_retain(1 << cap);
        match rustix::thread::capability_is_in_bounding_set(bit) {
            Err(_) => break,
            Ok(has) => {
                known = cap + 1;
                set |= u64::from(has) << cap;
            }
        }
    }
    (set, known)
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
            // The parent's monitor sends it at the parent's end (family::report_end).
            if let Some(slot) = cx.process.family.slot(cx.process.tgid) {
                slot.pdeathsig
                    .store(arg as u32, std::sync::atomic::Ordering::Relaxed);
            }
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
        PR_SET_CHILD_SUBREAPER => {
            cx.process.prctl().child_subreaper = arg != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = i32::from(cx.process.prctl().child_subreaper);
            cx.write_val(arg, &v)?;
            Ok(0)
        }
        PR_CAPBSET_READ => {
            let (set, known) = cx.process.prctl().capbset;
            if arg >= known {
                return Err(Errno::EINVAL.into());
            }
            Ok((set >> arg) & 1)
        }
        PR_GET_SECCOMP => Ok(cx.process.prctl().seccomp),
        PR_GET_TID_ADDRESS => {
            cx.write_val(arg, &cx.thread.clear_child_tid)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
const MIN_NICE: i32 = -20;
const MAX_NICE: i32 = 19;
/// RLIMIT_NICE and RLIMIT_RTPRIO: 0 unless the application raised them (an unprivileged
/// user's defaults on Linux).
const RLIMIT_NICE: u64 = 13;
const RLIMIT_RTPRIO: u64 = 14;

/// The application's current limit `res`, 0 unless it set one.
fn priv_limit(cx: &Ctx<'_, '_>, res: u64) -> u64 {
    cx.process.rlimits().get(&res).map_or(0, |r| r.cur)
}

/// `can_nice`: whether the caller may set a nice value of `nice` (20 - nice against
/// RLIMIT_NICE).
fn can_nice(cx: &Ctx<'_, '_>, nice: i32) -> bool {
    (20 - nice) as u64 <= priv_limit(cx, RLIMIT_NICE)
}

/// The tids `which`/`who` name (getpriority, setpriority, ioprio_*): one thread for
/// PRIO_PROCESS (0: the caller), every thread for the process group and the user (all of the
/// user's tasks the application can see are its own threads); empty for none (ESRCH).
fn targets(cx: &Ctx<'_, '_>, which: i32, who: i32) -> Result<Vec<u32>, Errno> {
    let all = || {
        let mut tids: Vec<u32> = cx.process.thread_sigs().iter().map(|t| t.tid).collect();
        tids.sort_unstable();
        tids
    };
    Ok(match which {
        PRIO_PROCESS if who == 0 => vec![cx.thread.tid],
        PRIO_PROCESS if who > 0 && cx.process.has_thread(who as u32) => vec![who as u32],
        PRIO_PROCESS => Vec::new(),
        PRIO_PGRP if who == 0 || who as u32 == cx.process.tgid => all(),
        PRIO_PGRP => Vec::new(),
        PRIO_USER if who == 0 || who as u64 == crate::machine::host::ids().uid => all(),
        PRIO_USER => Vec::new(),
        _ => return Err(Errno::EINVAL),
    })
}

/// getpriority(which, who): 20 - nice of the highest-priority thread named (the raw syscall's
/// form, which C libraries turn back into a nice value).
pub fn getpriority(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tids = targets(cx, a.int(0), a.int(1))?;
    let state = cx.process.prctl();
    let best = tids.iter().map(|&t| state.sched_of(t).nice).min();
    match best {
        Some(nice) => Ok((20 - nice) as u64),
        None => Err(Errno::ESRCH.into()),
    }
}

/// setpriority(which, who, nice): clamped to -20..=19; lowering the nice value past
/// RLIMIT_NICE is EACCES (set_one_prio), the other threads named still change.
pub fn setpriority(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tids = targets(cx, a.int(0), a.int(1))?;
    let nice = a.int(2).clamp(MIN_NICE, MAX_NICE);
    if tids.is_empty() {
        return Err(Errno::ESRCH.into());
    }
    let allowed = can_nice(cx, nice);
    let mut state = cx.process.prctl();
    let mut err = None;
    for tid in tids {
        let mut s = state.sched_of(tid);
        if nice < s.nice && !allowed {
            err = Some(Errno::EACCES);
            continue;
        }
        s.nice = nice;
        state.sched.insert(tid, s);
    }
    err.map_or(Ok(0), |e| Err(e.into()))
}

const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;
const SCHED_RR: u32 = 2;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
const SCHED_DEADLINE: u32 = 6;
/// sched_ext's policy: Linux's priority range calls know it whether or not it is built in.
const SCHED_EXT: u32 = 7;
const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;
/// MAX_RT_PRIO - 1.
const MAX_RT_PRIO: i32 = 99;

/// The thread a sched_* call names: 0 is the caller; a negative pid is EINVAL, an unknown one
/// ESRCH.
fn sched_target(cx: &Ctx<'_, '_>, pid: i32) -> Result<u32, Errno> {
    match pid {
        p if p < 0 => Err(Errno::EINVAL),
        0 => Ok(cx.thread.tid),
        p if cx.process.has_thread(p as u32) => Ok(p as u32),
        _ => Err(Errno::ESRCH),
    }
}

/// sched_getscheduler(pid).
pub fn sched_getscheduler(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tid = sched_target(cx, a.int(0))?;
    Ok(u64::from(cx.process.prctl().sched_of(tid).policy))
}

/// sched_getparam(pid, param): the static priority, 0 for every policy umon runs.
pub fn sched_getparam(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.ptr(1) == 0 || a.int(0) < 0 {
        return Err(Errno::EINVAL.into());
    }
    sched_target(cx, a.int(0))?;
    cx.write_val(a.ptr(1), &0i32)?;
    Ok(0)
}

/// sched_rr_get_interval(pid, tp): EINVAL for a negative pid, ESRCH for one not of the
/// process. Every guest thread is in the fair class (umon runs no real-time ones), for which
/// Linux (EEVDF, a base slice under a jiffy) reports 0 s 0 ns; only SCHED_RR has a timeslice.
pub fn sched_rr_get_interval(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sched_target(cx, a.int(0))?;
    cx.write_val(a.ptr(1), &crate::linux::abi::Timespec { sec: 0, nsec: 0 })?;
    Ok(0)
}

/// sched_setscheduler(pid, policy, param): the normal policies (OTHER, BATCH, IDLE, with
/// SCHED_RESET_ON_FORK) are kept per thread; the real-time ones need RLIMIT_RTPRIO or
/// CAP_SYS_NICE: EPERM (umon runs no real-time guest threads).
pub fn sched_setscheduler(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_sched(cx, a.int(0), Some(a.uint(1)), a.ptr(2))
}

/// sched_setparam(pid, param): the policy stays.
pub fn sched_setparam(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_sched(cx, a.int(0), None, a.ptr(1))
}

/// do_sched_setscheduler and __sched_setscheduler, in Linux's order of checks.
fn set_sched(cx: &mut Ctx<'_, '_>, pid: i32, policy: Option<u32>, param: u64) -> Sys {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL.into());
    }
    let prio: i32 = cx.read_val(param)?;
    let tid = sched_target(cx, pid)?;
    let cur = cx.process.prctl().sched_of(tid);
    let new = policy.unwrap_or(cur.policy & !SCHED_RESET_ON_FORK);
    let reset = new & SCHED_RESET_ON_FORK;
    let base = new & !SCHED_RESET_ON_FORK;
    let rt = matches!(base, SCHED_FIFO | SCHED_RR);
    if !matches!(
        base,
        SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
    ) {
        return Err(Errno::EINVAL.into());
    }
    // A deadline policy needs sched_setattr's parameters; the priority belongs to RT only.
    if base == SCHED_DEADLINE || !(0..=MAX_RT_PRIO).contains(&prio) || rt != (prio != 0) {
        return Err(Errno::EINVAL.into());
    }
    if rt && (priv_limit(cx, RLIMIT_RTPRIO) == 0 || prio as u64 > priv_limit(cx, RLIMIT_RTPRIO)) {
        return Err(Errno::EPERM.into());
    }
    if rt {
        // Within RLIMIT_RTPRIO Linux would run it real-time; umon's vCPU threads are not.
        return Err(Errno::EPERM.into());
    }
    // Leaving SCHED_IDLE is like lowering the nice value.
    let cur_base = cur.policy & !SCHED_RESET_ON_FORK;
    if cur_base == SCHED_IDLE && base != SCHED_IDLE && !can_nice(cx, cur.nice) {
        return Err(Errno::EPERM.into());
    }
    // Clearing SCHED_RESET_ON_FORK needs CAP_SYS_NICE.
    if policy.is_some() && cur.policy & SCHED_RESET_ON_FORK != 0 && reset == 0 {
        return Err(Errno::EPERM.into());
    }
    let keep_reset = if policy.is_none() {
        cur.policy & SCHED_RESET_ON_FORK
    } else {
        reset
    };
    cx.process.prctl().sched.insert(
        tid,
        Sched {
            policy: base | keep_reset,
            ..cur
        },
    );
    Ok(0)
}

/// sched_get_priority_max(policy).
pub fn sched_get_priority_max(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    match a.int(0) as u32 {
        SCHED_FIFO | SCHED_RR => Ok(MAX_RT_PRIO as u64),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE | SCHED_EXT => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}

/// sched_get_priority_min(policy).
pub fn sched_get_priority_min(_cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    match a.int(0) as u32 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE | SCHED_EXT => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}

const IOPRIO_WHO_PROCESS: i32 = 1;
const IOPRIO_WHO_PGRP: i32 = 2;
const IOPRIO_WHO_USER: i32 = 3;
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_CLASS_RT: u32 = 1;
const IOPRIO_CLASS_BE: u32 = 2;
const IOPRIO_CLASS_IDLE: u32 = 3;
const IOPRIO_CLASS_NONE: u32 = 0;
/// IOPRIO_NR_LEVELS: data values of the RT and BE classes.
const IOPRIO_LEVELS: u32 = 8;
/// The level: bits 0..=2 (bits 3..=12 are hints).
const IOPRIO_LEVEL_MASK: u32 = 0x7;

/// ioprio's "which" as getpriority's.
fn ioprio_targets(cx: &Ctx<'_, '_>, which: i32, who: i32) -> Result<Vec<u32>, Errno> {
    let which = match which {
        IOPRIO_WHO_PROCESS => PRIO_PROCESS,
        IOPRIO_WHO_PGRP => PRIO_PGRP,
        IOPRIO_WHO_USER => PRIO_USER,
        _ => return Err(Errno::EINVAL),
    };
    targets(cx, which, who)
}

/// ioprio_get(which, who): the thread's I/O priority; for a group, the first thread's.
pub fn ioprio_get(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tids = ioprio_targets(cx, a.int(0), a.int(1))?;
    let state = cx.process.prctl();
    match tids.first() {
        Some(&t) => Ok(u64::from(state.sched_of(t).ioprio)),
        None => Err(Errno::ESRCH.into()),
    }
}

/// ioprio_set(which, who, ioprio): ioprio_check_cap's checks (the RT class needs
/// CAP_SYS_NICE or CAP_SYS_ADMIN: EPERM), then kept per thread (the host's I/O scheduler does
/// not see it: all guest I/O is umon's).
pub fn ioprio_set(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ioprio = a.uint(2);
    let class = (ioprio >> IOPRIO_CLASS_SHIFT) & 0x7;
    let level = ioprio & IOPRIO_LEVEL_MASK;
    // Linux keeps 16 bits (class, hint, level).
    let ioprio = ioprio & 0xffff;
    match class {
        IOPRIO_CLASS_RT => return Err(Errno::EPERM.into()),
        IOPRIO_CLASS_BE if level >= IOPRIO_LEVELS => return Err(Errno::EINVAL.into()),
        IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE => {}
        IOPRIO_CLASS_NONE if level != 0 => return Err(Errno::EINVAL.into()),
        IOPRIO_CLASS_NONE => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    let tids = ioprio_targets(cx, a.int(0), a.int(1))?;
    if tids.is_empty() {
        return Err(Errno::ESRCH.into());
    }
    let mut state = cx.process.prctl();
    for tid in tids {
        let s = state.sched_of(tid);
        state.sched.insert(tid, Sched { ioprio, ..s });
    }
    Ok(0)
}

/// PER_LINUX.
const PER_LINUX: u32 = 0;
/// personality's "query only" argument.
const PER_QUERY: u32 = 0xffff_ffff;

/// personality(persona): the previous value; 0xffffffff only asks. The flags are kept (they
/// matter at exec, which the application cannot do).
pub fn personality(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut state = cx.process.prctl();
    let old = state.personality;
    if a.uint(0) != PER_QUERY {
        state.personality = a.uint(0);
    }
    Ok(u64::from(old))
}

const MEMBARRIER_CMD_QUERY: u32 = 0;
const MEMBARRIER_CMD_GLOBAL: u32 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: u32 = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: u32 = 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: u32 = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: u32 = 16;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 64;
const MEMBARRIER_CMD_GET_REGISTRATIONS: u32 = 512;
/// What umon serves: everything but the rseq commands (umon has no rseq, as a kernel built
/// without CONFIG_RSEQ, whose QUERY leaves them out and which answers them EINVAL).
const MEMBARRIER_SERVED: u32 = MEMBARRIER_CMD_GLOBAL
    | MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_GET_REGISTRATIONS;

/// The host's membarrier(cmd) for the commands umon passes on.
fn host_membarrier(cmd: u32) -> Result<u64, Errno> {
    use rustix::thread::MembarrierCommand as C;
    let cmd = match cmd {
        MEMBARRIER_CMD_GLOBAL => C::Global,
        MEMBARRIER_CMD_GLOBAL_EXPEDITED => C::GlobalExpedited,
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED => C::RegisterGlobalExpedited,
        MEMBARRIER_CMD_PRIVATE_EXPEDITED => C::PrivateExpedited,
        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED => C::RegisterPrivateExpedited,
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => C::PrivateExpeditedSyncCore,
        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => C::RegisterPrivateExpeditedSyncCore,
        _ => return Err(Errno::EINVAL),
    };
    rustix::thread::membarrier(cmd).map_err(super::io::host_errno)?;
    Ok(0)
}

/// membarrier(cmd, flags, cpu_id): every vCPU runs on a host thread of the monitor process,
/// in guest mode on the host's mm, so the host's own membarrier on the monitor is the real
/// barrier: its IPIs reach every CPU running one of those threads, take the guest code there
/// out to the host kernel (serializing) and run a full barrier; threads not running passed a
/// serializing exit already. The registrations are the application's, kept here; the host
/// registration follows the application's first.
pub fn membarrier(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (cmd, flags) = (a.uint(0), a.uint(1));
    if flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    // GET_REGISTRATIONS needs nothing of the host.
    let host = rustix::thread::membarrier_query().bits() | MEMBARRIER_CMD_GET_REGISTRATIONS;
    let served = MEMBARRIER_SERVED & host;
    if cmd != MEMBARRIER_CMD_QUERY && (cmd & served != cmd || cmd.count_ones() != 1) {
        return Err(Errno::EINVAL.into());
    }
    let registered = |cx: &Ctx<'_, '_>, what: u32| cx.process.prctl().membarrier & what != 0;
    match cmd {
        MEMBARRIER_CMD_QUERY => Ok(u64::from(served)),
        MEMBARRIER_CMD_GET_REGISTRATIONS => Ok(u64::from(cx.process.prctl().membarrier)),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            host_membarrier(cmd)?;
            cx.process.prctl().membarrier |= cmd;
            Ok(0)
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED
            if !registered(cx, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) =>
        {
            Err(Errno::EPERM.into())
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
            if !registered(cx, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) =>
        {
            Err(Errno::EPERM.into())
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            host_membarrier(cmd)?;
            Ok(0)
        }
        // The global forms reach every process on the host; the private one on umon is what
        // the application can observe (no other process shares its memory).
        _ => {
            if cx.process.prctl().membarrier & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED != 0 {
                host_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)?;
            } else {
                host_membarrier(cmd)?;
            }
            Ok(0)
        }
    }
}

/// sysinfo(info): the guest's RAM as total, what brk/mmap have not handed out as free; the
/// time since the VM started as uptime; the host's load averages (as a container sees them);
/// the application's threads as the tasks.
pub fn sysinfo(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let host = rustix::system::sysinfo();
    let total = cx.mem.bytes();
    // Linux rounds a part-second up.
    let up = cx.process.prctl().started.elapsed();
    let uptime = up.as_secs() + u64::from(up.subsec_nanos() != 0);
    let info = Sysinfo {
        uptime: uptime as i64,
        loads: host.loads,
        totalram: total,
        freeram: cx.space().free_bytes().min(total),
        procs: u16::try_from(cx.process.live_threads()).unwrap_or(u16::MAX),
        mem_unit: 1,
        ..Default::default()
    };
    cx.write_val(a.ptr(0), &info)?;
    Ok(0)
}

/// close_range flags (include/uapi/linux/close_range.h).
const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
/// Set FD_CLOEXEC instead of closing.
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// close_range(2): close (or, with CLOSE_RANGE_CLOEXEC, mark close-on-exec) every open fd from
/// `first` to `last`; unknown flags and `first > last` are EINVAL, as Linux checks. The fd
/// table is the process's one: CLOSE_RANGE_UNSHARE changes nothing while it has one thread
/// (nobody shares the table); with more, a private table for the caller cannot be made, so it
/// is EINVAL rather than closing the other threads' fds.
pub fn close_range(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (first, last, flags) = (u64::from(a.uint(0)), u64::from(a.uint(1)), a.uint(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL.into());
    }
    if flags & CLOSE_RANGE_UNSHARE != 0
        && cx
            .process
            .multi_threaded
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(Errno::EINVAL.into());
    }
    // No fd reaches the hard limit on open files.
    let last = last.min(super::fd::HARD_MAX_FDS - 1);
    let mut fds = cx.process.fds();
    for fd in first..=last {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            if let Ok(entry) = fds.get_mut(fd) {
                entry.cloexec = true;
            }
        } else if fds.get(fd).is_ok() {
            fds.close(fd)?;
        }
    }
    Ok(0)
}

/// Whether `pid` (a pid_t) names a task of the process: its pid or one of its threads' tids.
fn names_own_task(cx: &Ctx<'_, '_>, pid: i32) -> bool {
    pid > 0 && (pid as u64 == u64::from(cx.process.tgid) || cx.process.has_thread(pid as u32))
}

// ---- Capabilities ----------------------------------------------------------------------------

/// The header versions of `struct __user_cap_header_struct` (linux/capability.h) and how many
/// `__user_cap_data_struct`s each carries.
const CAP_VERSION_1: u32 = 0x1998_0330;
const CAP_VERSION_2: u32 = 0x2007_1026;
const CAP_VERSION_3: u32 = 0x2008_0522;

/// The data structs a header `version` at `header` asks for, as `cap_validate_magic` answers:
/// an unknown version is EINVAL after the preferred one (v3) is written back.
fn cap_words(cx: &mut Ctx<'_, '_>, header: u64) -> Result<usize, Errno> {
    let version: u32 = cx.read_val(header)?;
    match version {
        CAP_VERSION_1 => Ok(1),
        CAP_VERSION_2 | CAP_VERSION_3 => Ok(2),
        _ => {
            cx.write_val(header, &CAP_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(header, data): the application has no capabilities (see the module comment), so
/// every set is empty. Linux's order: the version (a NULL `data` with an unknown version is the
/// probe libcap makes: 0 after the version is written back), the pid (negative EINVAL, 0 or
/// any of the process's tasks itself, else ESRCH), then the sets.
pub fn capget(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (header, data) = (a.ptr(0), a.ptr(1));
    let words = match cap_words(cx, header) {
        Ok(w) => w,
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    if data == 0 {
        return Ok(0);
    }
    let pid: i32 = cx.read_val(header.wrapping_add(4))?;
    if pid < 0 {
        return Err(Errno::EINVAL.into());
    }
    if pid != 0 && !names_own_task(cx, pid) {
        return Err(Errno::ESRCH.into());
    }
    // effective, permitted, inheritable per 32-bit word.
    cx.space().write(cx.mem, data, &vec![0u8; words * 12])?;
    Ok(0)
}

/// capset(header, data): only the caller's own sets may change (another pid is EPERM); the
/// new sets, masked to the capabilities the kernel knows, must be subsets of the old ones —
/// all empty — so anything raised is EPERM and dropping to nothing succeeds.
pub fn capset(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (header, data) = (a.ptr(0), a.ptr(1));
    let words = cap_words(cx, header)?;
    let pid: i32 = cx.read_val(header.wrapping_add(4))?;
    if pid != 0 && pid as u64 != u64::from(cx.thread.tid) {
        return Err(Errno::EPERM.into());
    }
    let mut raw = vec![0u8; words * 12];
    cx.space().read(cx.mem, data, &mut raw)?;
    let known = cx.process.prctl().capbset.1;
    let valid = if known >= 64 {
        u64::MAX
    } else {
        (1u64 << known) - 1
    };
    let word = |i: usize, field: usize| {
        let at = i * 12 + field * 4;
        raw.get(at..at + 4).map_or(0, |b| {
            u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        })
    };
    let set = |field: usize| (word(0, field) | word(1, field) << 32) & valid;
    if set(0) | set(1) | set(2) != 0 {
        return Err(Errno::EPERM.into());
    }
    Ok(0)
}

// ---- NUMA memory policy ------------------------------------------------------------------------
//
// The machine the application sees has one memory node, node 0 (nr_node_ids 1), on a kernel
// built with MAX_NUMNODES 1024 (NODES_SHIFT 10, as distribution kernels). The task policy
// set_mempolicy sets is kept (for the process, not per thread); mbind checks its arguments as
// Linux does and accepts, without remembering a policy per mapping (with one node every policy
// places memory alike), so get_mempolicy(MPOL_F_ADDR) reports MPOL_DEFAULT.

/// mempolicy modes (linux/mempolicy.h).
const MPOL_DEFAULT: u32 = 0;
const MPOL_PREFERRED: u32 = 1;
const MPOL_INTERLEAVE: u32 = 3;
const MPOL_LOCAL: u32 = 4;
const MPOL_WEIGHTED_INTERLEAVE: u32 = 6;
/// One past the last mode.
const MPOL_MAX: u32 = 7;
const MPOL_F_STATIC_NODES: u32 = 1 << 15;
const MPOL_F_RELATIVE_NODES: u32 = 1 << 14;
const MPOL_F_NUMA_BALANCING: u32 = 1 << 13;
const MPOL_MODE_FLAGS: u32 = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;
const MPOL_BIND: u32 = 2;
const MPOL_PREFERRED_MANY: u32 = 5;
/// get_mempolicy flags.
const MPOL_F_NODE: u64 = 1;
const MPOL_F_ADDR: u64 = 2;
const MPOL_F_MEMS_ALLOWED: u64 = 4;
/// mbind flags (MPOL_MF_VALID).
const MPOL_MF_STRICT: u32 = 1;
const MPOL_MF_MOVE: u32 = 2;
const MPOL_MF_MOVE_ALL: u32 = 4;
/// The kernel's node count limit (1 << CONFIG_NODES_SHIFT).
const MAX_NUMNODES: u64 = 1024;
/// The memory nodes: node 0 only.
const NODES_ONLINE: u64 = 1;

/// The task memory policy: mode, mode flags, and the node mask get_mempolicy reports (only its
/// first word can ever be copied out with one node).
#[derive(Clone, Copy, Debug, Default)]
pub struct MemPolicy {
    pub mode: u32,
    pub flags: u32,
    pub nodes: u64,
}

/// `sanitize_mpol_flags`: the mode and its flags, or EINVAL.
fn mpol_mode(mode: i32) -> Result<(u32, u32), Errno> {
    let mode = mode as u32;
    let (flags, mode) = (mode & MPOL_MODE_FLAGS, mode & !MPOL_MODE_FLAGS);
    if mode >= MPOL_MAX
        || (flags & MPOL_F_STATIC_NODES != 0 && flags & MPOL_F_RELATIVE_NODES != 0)
        || (flags & MPOL_F_NUMA_BALANCING != 0 && mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY)
    {
        return Err(Errno::EINVAL);
    }
    Ok((mode, flags))
}

/// `get_nodes`: the node mask of `maxnode` bits at `nmask` (words beyond MAX_NUMNODES must be
/// zero; more than a page of bits is EINVAL), as (first word, any bit set at all, any node
/// but node 0 set).
fn mpol_nodes(cx: &Ctx<'_, '_>, nmask: u64, maxnode: u64) -> Result<(u64, bool, bool), Errno> {
    let mut bits = maxnode.wrapping_sub(1);
    if bits == 0 || nmask == 0 {
        return Ok((0, false, false));
    }
    if bits > 4096 * 8 {
        return Err(Errno::EINVAL);
    }
    let word =
        |i: u64| -> Result<u64, Errno> { cx.read_val(nmask.wrapping_add(i.wrapping_mul(8))) };
    // Linux reads the words past MAX_NUMNODES one at a time from the last, so a set bit
    // there is EINVAL before any lower word is read.
    while bits > MAX_NUMNODES {
        let n = bits.min(64);
        let mut t = word((bits - 1) / 64)?;
        if n < 64 {
            t &= (1u64 << n) - 1;
        }
        if bits - n >= MAX_NUMNODES {
            bits -= n;
        } else {
            bits = MAX_NUMNODES;
            t &= !((1u64 << (MAX_NUMNODES % 64)).wrapping_sub(1));
        }
        if t != 0 {
            return Err(Errno::EINVAL);
        }
    }
    let words = bits.div_ceil(64);
    let mut mask = Vec::with_capacity(words as usize);
    for i in 0..words {
        mask.push(word(i)?);
    }
    // Bits past maxnode are ignored.
    if bits % 64 != 0 {
        if let Some(last) = mask.last_mut() {
            *last &= (1u64 << (bits % 64)) - 1;
        }
    }
    let first = mask.first().copied().unwrap_or(0);
    let others = first & !NODES_ONLINE != 0 || mask.iter().skip(1).any(|&w| w != 0);
    Ok((first, first != 0 || others, others))
}

/// `mpol_new` and the policy's `create`: the policy for `mode` with the user's node mask
/// (`first`, `any`), or EINVAL. Nodes are intersected with the one node, except that relative
/// nodes fold onto it and static ones are reported as given.
fn mpol_new(mode: u32, flags: u32, first: u64, any: bool) -> Result<MemPolicy, Errno> {
    let relative = flags & MPOL_F_RELATIVE_NODES != 0;
    let stat = flags & MPOL_F_STATIC_NODES != 0;
    match mode {
        MPOL_DEFAULT if any => return Err(Errno::EINVAL),
        MPOL_DEFAULT => return Ok(MemPolicy::default()),
        MPOL_PREFERRED if !any && (relative || stat) => return Err(Errno::EINVAL),
        MPOL_PREFERRED if !any => {
            return Ok(MemPolicy {
                mode: MPOL_LOCAL,
                flags,
                nodes: 0,
            })
        }
        MPOL_LOCAL if any || relative || stat => return Err(Errno::EINVAL),
        MPOL_LOCAL => {
            return Ok(MemPolicy {
                mode,
                flags,
                nodes: 0,
            })
        }
        _ if !any => return Err(Errno::EINVAL),
        _ => {}
    }
    let effective = if relative {
        NODES_ONLINE
    } else {
        first & NODES_ONLINE
    };
    if effective == 0 {
        return Err(Errno::EINVAL);
    }
    let nodes = if relative || stat { first } else { effective };
    Ok(MemPolicy { mode, flags, nodes })
}

/// set_mempolicy(mode, nmask, maxnode).
pub fn set_mempolicy(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (mode, flags) = mpol_mode(a.int(0))?;
    let (first, any, _) = mpol_nodes(cx, a.ptr(1), a.raw(2))?;
    let policy = mpol_new(mode, flags, first, any)?;
    *super::process::locked(&cx.process.mempolicy) = policy;
    Ok(0)
}

/// get_mempolicy(mode, nmask, maxnode, addr, flags), in `kernel_get_mempolicy`'s order.
pub fn get_mempolicy(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (mode_ptr, nmask, maxnode, addr, flags) =
        (a.ptr(0), a.ptr(1), a.raw(2), a.raw(3), a.raw(4));
    if nmask != 0 && maxnode < 1 {
        return Err(Errno::EINVAL.into());
    }
    if flags & !(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let task = *super::process::locked(&cx.process.mempolicy);
    let (mode, nodes) = if flags & MPOL_F_MEMS_ALLOWED != 0 {
        if flags & (MPOL_F_NODE | MPOL_F_ADDR) != 0 {
            return Err(Errno::EINVAL.into());
        }
        (0, NODES_ONLINE)
    } else {
        let policy = if flags & MPOL_F_ADDR != 0 {
            let space = cx.space();
            if !space.is_mapped(addr & !0xfff, 1) {
                return Err(Errno::EFAULT.into());
            }
            // No policy is kept per mapping: the default.
            MemPolicy::default()
        } else if addr != 0 {
            return Err(Errno::EINVAL.into());
        } else {
            task
        };
        let mode = if flags & MPOL_F_NODE != 0 {
            if flags & MPOL_F_ADDR != 0 {
                // The node of the page at addr, faulted in: node 0, or EFAULT where no page
                // can be.
                if cx
                    .space()
                    .accessible(addr, 1, super::mm::space::Access::Read)
                    == 0
                {
                    return Err(Errno::EFAULT.into());
                }
                0
            } else if task.mode == MPOL_INTERLEAVE || task.mode == MPOL_WEIGHTED_INTERLEAVE {
                0
            } else {
                return Err(Errno::EINVAL.into());
            }
        } else {
            policy.mode | policy.flags
        };
        (mode, policy.nodes)
    };
    if mode_ptr != 0 {
        cx.write_val(mode_ptr, &mode)?;
    }
    if nmask != 0 {
        // copy_nodes_to_user: maxnode-1 bits rounded up to longs, of which only the first
        // (nr_node_ids is 1) holds nodes; the rest is cleared, at most a page.
        // ALIGN(maxnode - 1, 64) / 8 in unsigned long arithmetic, wrapping as the kernel's.
        let copy = (maxnode.wrapping_sub(1).wrapping_add(63) & !63) / 8;
        if copy > 8 {
            if copy > 4096 {
                return Err(Errno::EINVAL.into());
            }
            cx.space().write(
                cx.mem,
                nmask.wrapping_add(8),
                &vec![0u8; (copy - 8) as usize],
            )?;
        }
        if copy > 0 {
            cx.write_val(nmask, &nodes)?;
        }
    }
    Ok(0)
}

/// mbind(start, len, mode, nmask, maxnode, flags): checked as `kernel_mbind`/`do_mbind` check
/// (moving every process's pages needs CAP_SYS_NICE: EPERM), and a range with unmapped pages
/// is EFAULT; otherwise accepted (one node: nothing to place differently).
pub fn mbind(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (start, len, flags) = (a.raw(0), a.raw(1), a.uint(5));
    let (mode, mflags) = mpol_mode(a.raw(2) as i32)?;
    let (first, any, _) = mpol_nodes(cx, a.ptr(3), a.raw(4))?;
    if flags & !(MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL) != 0 {
        return Err(Errno::EINVAL.into());
    }
    if flags & MPOL_MF_MOVE_ALL != 0 {
        return Err(Errno::EPERM.into());
    }
    if start & 0xfff != 0 {
        return Err(Errno::EINVAL.into());
    }
    // PAGE_ALIGN wraps (a length near 2^64 becomes 0); an end before the start is EINVAL.
    let len = len.wrapping_add(0xfff) & !0xfff;
    let Some(end) = start.checked_add(len) else {
        return Err(Errno::EINVAL.into());
    };
    if end == start {
        return Ok(0);
    }
    mpol_new(mode, mflags, first, any)?;
    if !cx.space().is_mapped(start, end - start) {
        return Err(Errno::EFAULT.into());
    }
    Ok(0)
}

/// migrate_pages(pid, maxnode, old_nodes, new_nodes): with one node no page moves (0 left
/// unmoved); nodes the process may not use are EPERM (no CAP_SYS_NICE), none at all EINVAL.
pub fn migrate_pages(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (pid, maxnode) = (a.int(0), a.raw(1));
    mpol_nodes(cx, a.ptr(2), maxnode)?;
    let (new, _, others) = mpol_nodes(cx, a.ptr(3), maxnode)?;
    if pid != 0 && !names_own_task(cx, pid) {
        return Err(Errno::ESRCH.into());
    }
    if others {
        return Err(Errno::EPERM.into());
    }
    if new & NODES_ONLINE == 0 {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}
