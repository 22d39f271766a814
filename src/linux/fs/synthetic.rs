//! The synthetic trees of the guest's system view: `/dev`, `/proc`, `/sys` and, when no volume
//! is mounted at `/`, the root directory itself. Everything here is generated from the
//! monitor's own state when it is opened; nothing is a host passthrough. Volumes mount over
//! these trees: a volume whose guest path is at least as long as the tree's wins (so a volume
//! at `/dev/shm` serves that directory, a volume at `/` does not hide `/proc`).
use super::volume::{FileSystem, GuestPath};
use crate::linux::abi::{mode, oflag, Stat};
use crate::linux::fd::file::{ebadf, memory_io, FileDescription, OpenFile};
use crate::linux::{proc, Ctx};
use crate::machine::memory::GuestMem;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;
use syscalls::Errno;
use umon_abi::Gpa;

/// The synthetic trees, by guest path.
const TREES: [&[u8]; 3] = [b"/dev", b"/proc", b"/sys"];

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// d_type values.
const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// Device numbers the synthetic trees report as st_dev (as Linux's devtmpfs, proc, sysfs).
const DEV_DEVFS: u64 = 5;
const DEV_PROC: u64 = 22;
const DEV_SYS: u64 = 23;
const DEV_ROOT: u64 = 24;

/// /proc/sys/kernel/pid_max: Linux's default on x86-64 with few CPUs.
const PID_MAX: u32 = 32768;

/// /dev/tty: (major, minor) of Linux's tty driver.
const TTY_NUMBER: (u64, u64) = (5, 0);

/// mnt_id (fdinfo) of the synthetic root; `/dev`, `/proc`, `/sys` follow in [`TREES`] order,
/// then the volumes in their order.
const MNT_ID_BASE: u64 = 20;
/// mnt_id of what no mount holds (anonymous inodes, pipes, umon's own streams): Linux's
/// internal anon_inodefs/pipefs mounts have small ids of this kind.
const MNT_ID_INTERNAL: u64 = 15;

/// open(2) flags a description does not keep (do_dentry_open drops them from f_flags;
/// O_CLOEXEC belongs to the fd).
const NOT_KEPT: u64 = oflag::CLOEXEC | oflag::CREAT | oflag::EXCL | oflag::NOCTTY | oflag::TRUNC;

/// Most symlinks one lookup follows (Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// The character devices of `/dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    /// /dev/null.
    Null,
    /// /dev/zero.
    Zero,
    /// /dev/full.
    Full,
    /// /dev/random.
    Random,
    /// /dev/urandom.
    Urandom,
}

impl Dev {
    /// (major, minor), as Linux's mem driver.
    fn number(self) -> (u64, u64) {
        match self {
            Dev::Null => (1, 3),
            Dev::Zero => (1, 5),
            Dev::Full => (1, 7),
            Dev::Random => (1, 8),
            Dev::Urandom => (1, 9),
        }
    }
}

/// glibc's makedev.
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// What a synthetic path names.
pub enum Node {
    /// A directory and its entries (name, d_type), without "." and "..".
    Dir(Vec<(Vec<u8>, u8)>),
    /// A generated read-only file.
    Text(Vec<u8>),
    /// A character device.
    Dev(Dev),
    /// A symlink and its target.
    Link(Vec<u8>),
    /// `/proc/<pid>/fd/N`: a link to an open file (following it reaches that very file).
    Fd(OpenFile, Vec<u8>),
    /// `/dev/tty`: the terminal umon's stdin is, if it is one (opening it without one is
    /// ENXIO, as on Linux without a controlling terminal).
    Tty(Option<OpenFile>),
}

/// The tree `abs` lies in, if a synthetic one serves it (no volume mounted over it).
fn tree_of(fs: &FileSystem, abs: &[u8]) -> Option<u64> {
    let prefix: Option<(&[u8], u64)> = TREES
        .iter()
        .zip([DEV_DEVFS, DEV_PROC, DEV_SYS])
        .find(|(t, _)| {
            abs.strip_prefix(**t)
                .is_some_and(|r| r.is_empty() || r[0] == b'/')
        })
        .map(|(t, d)| (*t, d))
        .or_else(|| (abs == b"/").then_some((&b"/"[..], DEV_ROOT)));
    let Some((prefix, dev)) = prefix else {
        // /etc (passwd and group only) when no volume, root included, provides it.
        let etc = abs
            .strip_prefix(b"/etc")
            .is_some_and(|r| r.is_empty() || r[0] == b'/');
        return (etc && fs.locate(&GuestPath::new(b"/", abs)).is_none()).then_some(DEV_ROOT);
    };
    match fs.locate(&GuestPath::new(b"/", abs)) {
        Some(at) if fs.mount_guest(at.mount).len() >= prefix.len() => None,
        _ => Some(dev),
    }
}

/// Whether a synthetic tree serves `abs`.
pub fn covers(fs: &FileSystem, abs: &[u8]) -> bool {
    tree_of(fs, abs).is_some()
}

/// The guest's uid and gid: the host's (umon maps none).
fn ids() -> (u32, u32) {
    let ids = crate::machine::host::ids();
    (ids.uid as u32, ids.gid as u32)
}

/// The text `/proc/<pid>/fd/N` reads as.
pub fn fd_link_text(file: &OpenFile) -> Vec<u8> {
    if let Some(h) = file.as_volume() {
        return h.path.clone();
    }
    if let Some(s) = file.as_synthetic() {
        return s.path.clone();
    }
    // The monitor serves a signalfd itself (no host fd to ask): Linux's anon inode name.
    if file.as_signalfd().is_some() {
        return b"anon_inode:[signalfd]".to_vec();
    }
    // /dev/tty's description: the terminal behind it is umon's, its name the guest's.
    if file.stat().is_ok_and(|st| {
        st.rdev == makedev(TTY_NUMBER.0, TTY_NUMBER.1) && st.mode & libc::S_IFMT == mode::S_IFCHR
    }) {
        return b"/dev/tty".to_vec();
    }
    // A standard stream: umon's own fd. Pipes, sockets and devices read as on the host; a
    // host file's path is not the guest's to see.
    if let Some(fd) = file.host_fd() {
        let own = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        if let Ok(t) = rustix::fs::readlink(own, Vec::new()) {
            let t = t.into_bytes();
            if [&b"pipe:"[..], b"socket:", b"anon_inode:", b"/dev/"]
                .iter()
                .any(|p| t.starts_with(p))
            {
                return t;
            }
        }
    }
    b"pipe:[0]".to_vec()
}

fn dir(names: &[(&str, u8)]) -> Node {
    Node::Dir(
        names
            .iter()
            .map(|(n, t)| (n.as_bytes().to_vec(), *t))
            .collect(),
    )
}

/// `abs` itself, a final symlink not followed; None: no such entry.
fn node_at(cx: &Ctx<'_, '_>, fs: &FileSystem, abs: &[u8]) -> Option<Node> {
    let pid = cx.process.tgid.to_string();
    let s = std::str::from_utf8(abs).ok()?;
    let parts: Vec<&str> = s.split('/').filter(|c| !c.is_empty()).collect();
    let text = |t: String| Some(Node::Text(t.into_bytes()));
    let line = |t: &[u8]| {
        let mut v = t.to_vec();
        v.push(b'\n');
        Some(Node::Text(v))
    };
    match parts.as_slice() {
        [] => {
            let mut names: Vec<(Vec<u8>, u8)> =
                TREES.iter().map(|t| (t[1..].to_vec(), DT_DIR)).collect();
            if tree_of(fs, b"/etc").is_some() {
                names.push((b"etc".to_vec(), DT_DIR));
            }
            for m in fs.mount_points() {
                let first = m[1..].split(|&b| b == b'/').next().unwrap_or(b"");
                if !first.is_empty() && !names.iter().any(|(n, _)| n == first) {
                    names.push((first.to_vec(), DT_DIR));
                }
            }
            Some(Node::Dir(names))
        }
        ["dev"] => {
            let mut d = vec![
                ("null", DT_CHR),
                ("zero", DT_CHR),
                ("full", DT_CHR),
                ("random", DT_CHR),
                ("urandom", DT_CHR),
                ("tty", DT_CHR),
                ("fd", DT_LNK),
                ("stdin", DT_LNK),
                ("stdout", DT_LNK),
                ("stderr", DT_LNK),
            ];
            if fs.mount_points().any(|m| m == b"/dev/shm") {
                d.push(("shm", DT_DIR));
            }
            Some(dir(&d))
        }
        ["etc"] => Some(dir(&[("passwd", DT_REG), ("group", DT_REG)])),
        ["etc", "passwd"] => {
            let (uid, gid) = ids();
            let user = &fs.view.user;
            text(format!("{user}:x:{uid}:{gid}:{user}:/:/bin/sh\n"))
        }
        ["etc", "group"] => {
            let (_, gid) = ids();
            text(format!("{}:x:{gid}:\n", fs.view.group))
        }
        ["dev", "null"] => Some(Node::Dev(Dev::Null)),
        ["dev", "zero"] => Some(Node::Dev(Dev::Zero)),
        ["dev", "full"] => Some(Node::Dev(Dev::Full)),
        ["dev", "random"] => Some(Node::Dev(Dev::Random)),
        ["dev", "urandom"] => Some(Node::Dev(Dev::Urandom)),
        ["dev", "tty"] => Some(Node::Tty(
            crate::linux::tty::TtyFile::open(
                &cx.process.stdio,
                stat_of(abs, &Node::Tty(None)).ok()?,
            )
            .map(|f| -> OpenFile { std::sync::Arc::new(f) }),
        )),
        ["dev", "fd"] => Some(Node::Link(b"/proc/self/fd".to_vec())),
        ["dev", "stdin"] => Some(Node::Link(b"/proc/self/fd/0".to_vec())),
        ["dev", "stdout"] => Some(Node::Link(b"/proc/self/fd/1".to_vec())),
        ["dev", "stderr"] => Some(Node::Link(b"/proc/self/fd/2".to_vec())),
        ["proc"] => {
            let mut d = vec![
                ("self", DT_LNK),
                ("thread-self", DT_LNK),
                ("cpuinfo", DT_REG),
                ("meminfo", DT_REG),
                ("uptime", DT_REG),
                ("loadavg", DT_REG),
                ("mounts", DT_LNK),
                ("stat", DT_REG),
                ("swaps", DT_REG),
                ("sys", DT_DIR),
            ];
            d.push((pid.as_str(), DT_DIR));
            Some(dir(&d))
        }
        ["proc", "self"] => Some(Node::Link(pid.clone().into_bytes())),
        ["proc", "thread-self"] => Some(Node::Link(
            format!("{pid}/task/{}", cx.thread.tid).into_bytes(),
        )),
        ["proc", "mounts"] => Some(Node::Link(b"self/mounts".to_vec())),
        ["proc", "cpuinfo"] => text(cpuinfo(cx.process.cpus)),
        ["proc", "meminfo"] => text(meminfo(cx)),
        ["proc", "uptime"] => {
            let t = fs.view.started.elapsed().as_secs_f64();
            text(format!("{t:.2} {:.2}\n", 0.0))
        }
        ["proc", "loadavg"] => text(format!(
            "0.00 0.00 0.00 1/{} {}\n",
            cx.process.live_threads(),
            cx.process.tgid
        )),
        // No swap: only the header (e2fsck reads it to refuse checking an active swap file).
        ["proc", "swaps"] => line(b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"),
        ["proc", p, rest @ ..] if *p == pid => proc_pid(cx, fs, cx.process.tgid, false, rest),
        ["proc", "sys"] => Some(dir(&[("kernel", DT_DIR), ("vm", DT_DIR)])),
        ["proc", "sys", "kernel"] => Some(dir(&[
            ("hostname", DT_REG),
            ("osrelease", DT_REG),
            ("ostype", DT_REG),
            ("pid_max", DT_REG),
        ])),
        ["proc", "sys", "kernel", "hostname"] => line(proc::HOSTNAME),
        ["proc", "sys", "kernel", "osrelease"] => line(proc::OSRELEASE),
        ["proc", "sys", "kernel", "ostype"] => line(b"Linux"),
        ["proc", "sys", "kernel", "pid_max"] => text(format!("{}\n", PID_MAX)),
        ["proc", "sys", "vm"] => Some(dir(&[("overcommit_memory", DT_REG)])),
        // Heuristic overcommit, Linux's default.
        ["proc", "sys", "vm", "overcommit_memory"] => line(b"0"),
        ["proc", "stat"] => {
            let mut t = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
            for n in 0..cx.process.cpus.max(1) {
                t += &format!("cpu{n} 0 0 0 0 0 0 0 0 0 0\n");
            }
            let boot = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_sub(fs.view.started.elapsed());
            t += &format!(
                "intr 0\nctxt 0\nbtime {}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n",
                boot.as_secs()
            );
            text(t)
        }
        ["sys"] => Some(dir(&[("devices", DT_DIR)])),
        ["sys", "devices"] => Some(dir(&[("system", DT_DIR)])),
        ["sys", "devices", "system"] => Some(dir(&[("cpu", DT_DIR)])),
        ["sys", "devices", "system", "cpu"] => {
            Some(dir(&[("online", DT_REG), ("possible", DT_REG)]))
        }
        ["sys", "devices", "system", "cpu", "online" | "possible"] => {
            text(cpu_list(cx.process.cpus))
        }
        // Another thread's tid: not listed in /proc, yet there, as on Linux.
        ["proc", p, rest @ ..] => {
            let tid = thread_id(cx, p)?;
            proc_pid(cx, fs, tid, false, rest)
        }
        _ => None,
    }
}

/// A /proc entry name as a number, as Linux's name_to_int reads it: decimal digits only, no
/// leading zero, at most i32::MAX ("01", "+1", "-1" name nothing).
fn proc_number(name: &str) -> Option<u32> {
    let n: u32 = name.parse().ok()?;
    (n <= i32::MAX as u32 && n.to_string() == name).then_some(n)
}

/// `name` as the tid of a live thread of the process.
fn thread_id(cx: &Ctx<'_, '_>, name: &str) -> Option<u32> {
    let tid = proc_number(name)?;
    cx.process.has_thread(tid).then_some(tid)
}

/// `/proc/<pid>/mounts`: the synthetic trees (those no volume hides) and the volumes.
fn mounts(fs: &FileSystem) -> String {
    let mut out = String::new();
    let synthetic = [
        ("/", "none", "tmpfs", "ro"),
        ("/dev", "devtmpfs", "devtmpfs", "rw"),
        ("/proc", "proc", "proc", "rw"),
        ("/sys", "sysfs", "sysfs", "ro"),
    ];
    for (at, what, kind, mode) in synthetic {
        if tree_of(fs, at.as_bytes()).is_some() {
            out += &format!("{what} {at} {kind} {mode},nosuid 0 0\n");
        }
    }
    let mut points: Vec<(&[u8], (bool, bool))> = fs.mount_points().zip(fs.mount_kinds()).collect();
    points.sort_by_key(|(p, _)| p.len());
    for (p, (w, tmpfs)) in points {
        let mode = if w { "rw" } else { "ro" };
        let p = String::from_utf8_lossy(p);
        // The private /tmp and /dev/shm are tmpfs mounts to the app (statfs says so too), with
        // Linux's options for them; the other volumes are umon's own kind.
        out += &match tmpfs {
            true => format!("tmpfs {p} tmpfs {mode},nosuid,nodev 0 0\n"),
            false => format!("umon {p} umon {mode},nosuid 0 0\n"),
        };
    }
    out
}

/// "0" or "0-N".
fn cpu_list(cpus: u32) -> String {
    match cpus {
        0 | 1 => "0\n".into(),
        n => format!("0-{}\n", n - 1),
    }
}

fn cpuinfo(cpus: u32) -> String {
    let cpuid = std::arch::x86_64::__cpuid;
    let v = cpuid(0);
    let mut vendor = Vec::with_capacity(12);
    for r in [v.ebx, v.edx, v.ecx] {
        vendor.extend_from_slice(&r.to_le_bytes());
    }
    let mut model = Vec::with_capacity(48);
    if cpuid(0x8000_0000).eax >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004 {
            let r = cpuid(leaf);
            for x in [r.eax, r.ebx, r.ecx, r.edx] {
                model.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    let model = String::from_utf8_lossy(&model)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    let vendor = String::from_utf8_lossy(&vendor).to_string();
    let sig = cpuid(1).eax;
    let mut out = String::new();
    for n in 0..cpus.max(1) {
        out += &format!(
            "processor\t: {n}\nvendor_id\t: {vendor}\ncpu family\t: {}\nmodel\t\t: {}\n\
             model name\t: {model}\nstepping\t: {}\nphysical id\t: 0\nsiblings\t: {cpus}\n\
             core id\t\t: {n}\ncpu cores\t: {cpus}\napicid\t\t: {n}\n\n",
            ((sig >> 8) & 0xf) + ((sig >> 20) & 0xff),
            ((sig >> 4) & 0xf) | ((sig >> 12) & 0xf0),
            sig & 0xf,
        );
    }
    out
}

fn meminfo(cx: &Ctx<'_, '_>) -> String {
    let total = cx.mem.bytes() >> 10;
    let free = cx.process.space().free_bytes() >> 10;
    let free = free.min(total);
    format!(
        "MemTotal:       {total:>8} kB\nMemFree:        {free:>8} kB\nMemAvailable:   {free:>8} kB\n\
         Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n\
         SwapFree:              0 kB\n"
    )
}

/// `/proc/<pid>/...` for the process (`id` its tgid) or `/proc/<tid>/...` and
/// `/proc/<pid>/task/<tid>/...` for one of its threads (`in_task`: reached through `task/`,
/// which has no `task` of its own).
fn proc_pid(
    cx: &Ctx<'_, '_>,
    fs: &FileSystem,
    id: u32,
    in_task: bool,
    rest: &[&str],
) -> Option<Node> {
    let p = cx.process;
    let text = |t: String| Some(Node::Text(t.into_bytes()));
    match rest {
        [] => {
            let mut d = vec![
                ("exe", DT_LNK),
                ("fd", DT_DIR),
                ("fdinfo", DT_DIR),
                ("cmdline", DT_REG),
                ("comm", DT_REG),
                ("environ", DT_REG),
                ("auxv", DT_REG),
                ("limits", DT_REG),
                ("status", DT_REG),
                ("stat", DT_REG),
                ("statm", DT_REG),
                ("maps", DT_REG),
                ("cgroup", DT_REG),
                ("mounts", DT_REG),
            ];
            if !in_task {
                d.push(("task", DT_DIR));
            }
            Some(dir(&d))
        }
        ["task"] if !in_task => {
            let mut tids: Vec<u32> = p.thread_sigs().iter().map(|t| t.tid).collect();
            tids.sort_unstable();
            Some(Node::Dir(
                tids.iter()
                    .map(|t| (t.to_string().into_bytes(), DT_DIR))
                    .collect(),
            ))
        }
        ["task", t, more @ ..] if !in_task => {
            let tid = thread_id(cx, t)?;
            proc_pid(cx, fs, tid, true, more)
        }
        ["exe"] => Some(Node::Link(p.exe().clone())),
        ["fd"] | ["fdinfo"] => {
            let fds = p.fds();
            let t = if rest[0] == "fd" { DT_LNK } else { DT_REG };
            let names = (0..fds.limit)
                .filter(|&n| fds.get(n).is_ok())
                .map(|n| (n.to_string().into_bytes(), t))
                .collect();
            Some(Node::Dir(names))
        }
        ["fd", n] => {
            let n = u64::from(proc_number(n)?);
            let file = p.fds().get(n).ok()?.file;
            let t = fd_link_text(&file);
            Some(Node::Fd(file, t))
        }
        ["fdinfo", n] => {
            let n = u64::from(proc_number(n)?);
            let fd = p.fds().get(n).ok()?;
            let mut t = fdinfo(&fd);
            t += &fd.file.fdinfo(&|host| guest_fd_of(p, host));
            text(t)
        }
        ["cmdline"] => Some(Node::Text(fs.view.cmdline.clone())),
        ["comm"] => text(format!("{}\n", comm(p))),
        ["environ"] => Some(Node::Text(fs.view.environ.clone())),
        ["auxv"] => Some(Node::Text(fs.view.auxv.clone())),
        ["limits"] => text(proc::limits_text(cx)),
        // cgroup v2 with the process at the root of its hierarchy: what a program that looks
        // for its limits there finds when nothing limits it.
        ["cgroup"] => Some(Node::Text(b"0::/\n".to_vec())),
        ["mounts"] => text(mounts(fs)),
        ["status"] => {
            let (uid, gid) = ids();
            let name = comm(p);
            text(format!(
                "Name:\t{name}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{id}\n\
                 PPid:\t{ppid}\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
                 Gid:\t{gid}\t{gid}\t{gid}\t{gid}\nFDSize:\t{}\nThreads:\t{}\n\
                 Cpus_allowed_list:\t{}",
                fs.umask(),
                p.fds().limit,
                p.live_threads(),
                cpu_list(p.cpus),
                pid = p.tgid,
                ppid = p.ppid(),
            ))
        }
        ["stat"] => text(stat_line(cx, id)),
        ["statm"] => {
            let m = Statm::of(cx);
            text(format!(
                "{} {} {} {} 0 {} 0\n",
                m.size, m.resident, m.shared, m.text, m.data
            ))
        }
        ["maps"] => text(maps(cx)),
        _ => None,
    }
}

/// The guest fd whose file is host fd `host` (the lowest, if several).
fn guest_fd_of(p: &crate::linux::process::Process, host: i32) -> Option<u64> {
    let fds = p.fds();
    (0..fds.capacity()).find(|&n| {
        fds.get(n).is_ok_and(|f| {
            f.file
                .host_fd()
                .is_some_and(|h| std::os::fd::AsRawFd::as_raw_fd(&h) == host)
        })
    })
}

/// `/proc/<pid>/fdinfo/N`: as Linux's seq_show (fs/proc/fd.c), then what the kind adds.
fn fdinfo(fd: &crate::linux::fd::Fd) -> String {
    let file = &fd.file;
    let pos = match (file.as_synthetic(), file.host_fd()) {
        (Some(s), _) => s.pos(),
        (None, Some(h)) => rustix::fs::seek(h, rustix::fs::SeekFrom::Current(0)).unwrap_or(0),
        (None, None) => 0,
    };
    let mut flags = file.status_flags().unwrap_or(0);
    if fd.cloexec {
        flags |= oflag::CLOEXEC;
    }
    let ino = file.stat().map_or(0, |st| st.ino);
    let mnt = match (file.as_volume(), file.as_synthetic()) {
        (Some(h), _) => MNT_ID_BASE + TREES.len() as u64 + 1 + h.mount as u64,
        (None, Some(s)) => {
            let tree = TREES.iter().position(|t| {
                s.path
                    .strip_prefix(*t)
                    .is_some_and(|r| r.is_empty() || r[0] == b'/')
            });
            MNT_ID_BASE + tree.map_or(0, |i| i as u64 + 1)
        }
        (None, None) => MNT_ID_INTERNAL,
    };
    let mut out = format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n");
    if let Some(sfd) = file.as_signalfd() {
        // signalfd_show_fdinfo: the mask as render_sigset_t prints it, highest signal first.
        out += &format!("sigmask:\t{:016x}\n", sfd.mask());
    }
    out
}

/// The numbers of `/proc/<pid>/statm`, in pages, from the mapping tree as Linux counts them
/// from its mm: every mapping's size; resident, the frames the guest uses; shared mappings;
/// the executable's code; data, the private writable mappings (the stack's included).
struct Statm {
    size: u64,
    resident: u64,
    shared: u64,
    text: u64,
    data: u64,
}

impl Statm {
    fn of(cx: &Ctx<'_, '_>) -> Statm {
        use crate::linux::abi::mman::{PROT_EXEC, PROT_WRITE};
        use crate::linux::mm::vma::Kind;
        let space = cx.process.space();
        let mut m = Statm {
            size: 0,
            resident: 0,
            shared: 0,
            text: 0,
            data: 0,
        };
        for (start, v) in space.vmas() {
            let pages = (v.end - start) / 4096;
            m.size += pages;
            if v.shared {
                m.shared += pages;
            } else if v.prot & PROT_WRITE != 0 {
                m.data += pages;
            }
            if v.kind == Kind::Image && v.prot & PROT_EXEC != 0 {
                m.text += pages;
            }
        }
        let used = cx.mem.bytes() - space.free_bytes().min(cx.mem.bytes());
        m.resident = (used / 4096).min(m.size);
        m
    }
}

/// `/proc/<pid>/stat` (`id` the thread's tid, or the pid): Linux's 52 fields (do_task_stat),
/// from what the monitor knows; what it does not track (faults, times, wait channel) is 0.
fn stat_line(cx: &Ctx<'_, '_>, id: u32) -> String {
    use crate::linux::abi::mman::PROT_EXEC;
    use crate::linux::mm::vma::Kind;
    let p = cx.process;
    let m = Statm::of(cx);
    let (start_code, end_code, start_brk) = {
        let space = p.space();
        let code: Vec<(u64, u64)> = space
            .vmas()
            .filter(|(_, v)| v.kind == Kind::Image && v.prot & PROT_EXEC != 0)
            .map(|(s, v)| (s, v.end))
            .collect();
        let start = code.iter().map(|c| c.0).min().unwrap_or(0);
        let end = code.iter().map(|c| c.1).max().unwrap_or(0);
        (start, end, space.arena.brk_start)
    };
    let rsslim = proc::rlimit(cx, proc::RLIMIT_RSS).cur;
    // SIGCHLD: what the parent is told at exit.
    let exit_signal = libc::SIGCHLD;
    let (ppid, pgrp, session) = (p.ppid(), p.pgid(), p.sid());
    format!(
        "{id} ({}) R {ppid} {pgrp} {session} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 {} 0 0 {} {} {rsslim} \
         {start_code} {end_code} 0 0 0 0 0 0 0 0 0 0 {exit_signal} 0 0 0 0 0 0 0 0 {start_brk} \
         0 0 0 0 0\n",
        comm(p),
        p.live_threads(),
        m.size * 4096,
        m.resident,
    )
}

/// The command name: the thread name PR_SET_NAME gives, at start the executable's base name
/// cut to 15 bytes.
fn comm(p: &crate::linux::Process) -> String {
    let name = p.prctl().name;
    let n = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..n]).into_owned()
}

/// An image (the executable or its interpreter) as `maps` shows it: its pieces, and the name,
/// device and inode its file lines carry.
struct ImageLines {
    pieces: Vec<crate::image::place::ImagePiece>,
    name: Vec<u8>,
    id: (u64, u64),
}

/// The images of the process's program: the executable named as `/proc/self/exe`, the
/// interpreter by where its file is now in the guest's view (symlinks resolved, as d_path).
fn image_lines(cx: &Ctx<'_, '_>) -> Vec<ImageLines> {
    use std::os::fd::AsFd;
    let symbols = cx
        .process
        .symbols
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(symbols) = symbols else {
        return Vec::new();
    };
    let exe = cx.process.exe().clone();
    let fs = cx.process.fs();
    let fstat_id = |f: BorrowedFd<'_>| {
        rustix::fs::fstat(f)
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
            .unwrap_or((0, 0))
    };
    symbols
        .images()
        .iter()
        .map(|im| {
            let name = match &im.interp {
                None => exe.clone(),
                Some(path) => {
                    let base = fs.cwd().unwrap_or_else(|_| b"/".to_vec());
                    let at = GuestPath::new(&base, path);
                    im.file
                        .as_ref()
                        .and_then(|f| {
                            let located = fs.locate(&at)?;
                            fs.path_of(located.mount, f.as_fd(), &at.abs).ok()
                        })
                        .unwrap_or(at.abs)
                }
            };
            // An image given as bytes (an exec'd program): the file at its path now.
            let id = im.id.unwrap_or_else(|| {
                super::open_for_exec(&fs, &name).map_or((0, 0), |f| fstat_id(f.as_fd()))
            });
            ImageLines {
                pieces: im.pieces.clone(),
                name,
                id,
            }
        })
        .collect()
}

/// A device number as `/proc/self/maps` prints it (`%02x:%02x` of major and minor).
fn dev_text(dev: u64) -> String {
    let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & !0xff));
    format!("{major:02x}:{minor:02x}")
}

/// One line of `maps`.
struct MapsLine {
    start: u64,
    end: u64,
    prot: u32,
    shared: bool,
    offset: u64,
    dev: u64,
    ino: u64,
    name: Vec<u8>,
    /// For a file line of an image: (the image, its segment's flags), so that two pieces
    /// Linux would have mapped as one line become one.
    image: Option<(usize, u32)>,
}

/// `/proc/<pid>/maps` from the mapping tree, in Linux's format: the executable's and the
/// interpreter's pages as Linux's ELF loader maps them (a line per segment's file part with its
/// offset, device and inode, its zeroed part beyond the file an anonymous line), file
/// mappings by their files, `[heap]` (anonymous memory over the break's range), `[stack]`,
/// `[vvar]`, `[vdso]`, the legacy vsyscall page.
fn maps(cx: &Ctx<'_, '_>) -> String {
    use crate::linux::mm::vma::Kind;
    let images = image_lines(cx);
    let space = cx.process.space();
    let (brk_start, brk) = (space.arena.brk_start, space.arena.brk);
    let mut lines: Vec<MapsLine> = Vec::new();
    for (start, v) in space.vmas() {
        let line = |start: u64, end: u64| MapsLine {
            start,
            end,
            prot: v.prot,
            shared: v.shared,
            offset: 0,
            dev: 0,
            ino: 0,
            name: Vec::new(),
            image: None,
        };
        // A file mapping: its file's name, offset, device and inode, as Linux shows them.
        if let Some((offset, f)) = v
            .file
            .and_then(|f| Some((f.offset, space.mapped_file(f.id)?)))
        {
            let st = rustix::fs::fstat(&f.fd).ok();
            lines.push(MapsLine {
                offset,
                dev: st.map_or(0, |st| st.st_dev),
                ino: st.map_or(0, |st| st.st_ino),
                name: f.name.clone(),
                ..line(start, v.end)
            });
            continue;
        }
        let name: &[u8] = match v.kind {
            Kind::Image => {
                image_vma(&images, start, v.end, &line, &mut lines);
                continue;
            }
            // Linux's vma_is_initial_heap: anonymous memory that overlaps the break's range,
            // however it was made (brk, or an mmap/mprotect over part of it).
            Kind::Heap | Kind::Anon if start < brk && v.end > brk_start => b"[heap]",
            Kind::Heap | Kind::Anon => b"",
            Kind::Stack => b"[stack]",
            Kind::Vvar => b"[vvar]",
            Kind::Vdso => b"[vdso]",
        };
        lines.push(MapsLine {
            name: name.to_vec(),
            ..line(start, v.end)
        });
    }
    drop(space);
    // Pieces of one image Linux would have mapped as one (same segment flags, offsets that
    // continue) and that umon's tree cut apart or the pieces split.
    let mut merged: Vec<MapsLine> = Vec::with_capacity(lines.len());
    for l in lines {
        if let Some(p) = merged.last_mut() {
            if l.image.is_some()
                && p.image == l.image
                && p.end == l.start
                && p.prot == l.prot
                && p.offset + (p.end - p.start) == l.offset
            {
                p.end = l.end;
                continue;
            }
        }
        merged.push(l);
    }
    let mut out = String::new();
    for l in merged {
        let bit = |b: u32, c: char| if l.prot & b != 0 { c } else { '-' };
        let line = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} {} {}",
            l.start,
            l.end,
            bit(crate::linux::abi::mman::PROT_READ, 'r'),
            bit(crate::linux::abi::mman::PROT_WRITE, 'w'),
            bit(crate::linux::abi::mman::PROT_EXEC, 'x'),
            if l.shared { 's' } else { 'p' },
            l.offset,
            dev_text(l.dev),
            l.ino,
        );
        if l.name.is_empty() {
            // Linux ends every header with a space, so a line without a name has one last.
            out += &line;
            out += " \n";
        } else {
            // Linux pads the name to column 74 (73 characters, then the name).
            out += &format!("{line:<72} {}\n", String::from_utf8_lossy(&l.name));
        }
    }
    out += "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
    out
}

/// The lines of an image's mapping `[start, end)`: cut where the image's pieces begin and end,
/// each a view of its file at the piece's offset or anonymous; a part no piece covers is
/// anonymous too.
fn image_vma(
    images: &[ImageLines],
    start: u64,
    end: u64,
    line: &dyn Fn(u64, u64) -> MapsLine,
    lines: &mut Vec<MapsLine>,
) {
    let mut at = start;
    while at < end {
        // The first piece that ends after `at`, of any image.
        let next = images
            .iter()
            .enumerate()
            .filter_map(|(i, im)| {
                let k = im.pieces.partition_point(|p| p.end <= at);
                im.pieces.get(k).map(|p| (i, im, *p))
            })
            .min_by_key(|(_, _, p)| p.start);
        match next {
            Some((i, im, p)) if p.start <= at => {
                let to = p.end.min(end);
                let mut l = line(at, to);
                if let Some(offset) = p.offset {
                    l.offset = offset + (at - p.start);
                    (l.dev, l.ino) = im.id;
                    l.name.clone_from(&im.name);
                    l.image = Some((i, p.prot));
                }
                lines.push(l);
                at = to;
            }
            Some((_, _, p)) if p.start < end => {
                lines.push(line(at, p.start));
                at = p.start;
            }
            _ => {
                lines.push(line(at, end));
                at = end;
            }
        }
    }
}

/// The synthetic object `path` names (a final symlink followed when `follow`); None when no
/// synthetic tree serves it; ENOENT / ENOTDIR / ELOOP as a lookup says.
pub fn lookup(
    cx: &Ctx<'_, '_>,
    path: &GuestPath,
    follow: bool,
) -> Option<Result<(Vec<u8>, Node), Errno>> {
    let fs = cx.process.fs();
    let mut abs = path.abs.clone();
    // A trailing slash names the directory a final symlink leads to.
    let follow = follow || path.dir_only;
    tree_of(&fs, &abs)?;
    let mut hops = 0;
    'walk: loop {
        // Each proper prefix must be a directory (or a link to one, followed).
        let comps: Vec<usize> = (1..abs.len())
            .filter(|&i| abs[i] == b'/')
            .chain(std::iter::once(abs.len()))
            .collect();
        for (k, &end) in comps.iter().enumerate() {
            let prefix = if end == 0 { &b"/"[..] } else { &abs[..end] };
            let last = k + 1 == comps.len();
            if tree_of(&fs, prefix).is_none() {
                // Leads out of the synthetic trees (a link to a volume path): not served here.
                return Some(Err(Errno::ENOENT));
            }
            let node = match node_at(cx, &fs, prefix) {
                Some(n) => n,
                None => return Some(Err(Errno::ENOENT)),
            };
            if let Node::Link(target) = &node {
                if !last || follow {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return Some(Err(Errno::ELOOP));
                    }
                    let base = &prefix[..prefix.iter().rposition(|&b| b == b'/').unwrap_or(0)];
                    let base = if base.is_empty() { &b"/"[..] } else { base };
                    let mut next = GuestPath::new(base, target).abs;
                    let rest = &abs[end..];
                    if rest.len() > 1 {
                        next = GuestPath::new(&next, &rest[1..]).abs;
                    }
                    abs = next;
                    continue 'walk;
                }
            }
            if last {
                if path.dir_only && !matches!(node, Node::Dir(_) | Node::Fd(..)) {
                    return Some(Err(Errno::ENOTDIR));
                }
                return Some(Ok((abs.clone(), node)));
            }
            if !matches!(node, Node::Dir(_)) {
                return Some(Err(Errno::ENOTDIR));
            }
        }
        return Some(Err(Errno::ENOENT));
    }
}

/// The stat of a synthetic node at `abs`.
pub fn stat_of(abs: &[u8], node: &Node) -> Result<Stat, Errno> {
    let (uid, gid) = ids();
    let dev = if abs.starts_with(b"/dev") {
        DEV_DEVFS
    } else if abs.starts_with(b"/proc") {
        DEV_PROC
    } else if abs.starts_with(b"/sys") {
        DEV_SYS
    } else {
        DEV_ROOT
    };
    let ino = abs
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
        .max(2);
    let base = Stat {
        dev,
        ino,
        nlink: 1,
        uid,
        gid,
        blksize: 4096,
        ..Default::default()
    };
    // What Linux keeps to the owner under /proc/<pid>: the fd links, auxv and environ.
    let private = dev == DEV_PROC
        && [&b"/fd"[..], b"/auxv", b"/environ"]
            .iter()
            .any(|n| abs.ends_with(n));
    Ok(match node {
        Node::Dir(e) => Stat {
            mode: S_IFDIR | if private { 0o500 } else { 0o555 },
            nlink: 2 + e.iter().filter(|(_, t)| *t == DT_DIR).count() as u64,
            ino: if abs == b"/" { 1 } else { ino },
            ..base
        },
        Node::Text(_) => Stat {
            mode: S_IFREG | if private { 0o400 } else { 0o444 },
            ..base
        },
        Node::Dev(d) => {
            let (ma, mi) = d.number();
            Stat {
                mode: mode::S_IFCHR | 0o666,
                rdev: makedev(ma, mi),
                ..base
            }
        }
        Node::Tty(_) => Stat {
            mode: mode::S_IFCHR | 0o666,
            rdev: makedev(TTY_NUMBER.0, TTY_NUMBER.1),
            ..base
        },
        Node::Link(t) => Stat {
            mode: S_IFLNK | 0o777,
            size: t.len() as i64,
            ..base
        },
        Node::Fd(f, t) => Stat {
            mode: S_IFLNK | 0o700,
            size: t.len() as i64,
            ..f.stat().map(|_| base).map_err(|_| Errno::ENOENT)?
        },
    })
}

/// What an open synthetic file holds.
#[derive(Debug)]
enum Body {
    Dir(Vec<(Vec<u8>, u8)>),
    Text(Vec<u8>),
    Dev(Dev),
}

/// An open synthetic file or directory: its content generated at open, as Linux's seq files
/// generate theirs at the first read.
#[derive(Debug)]
pub struct SynthFile {
    /// The guest path it was opened by (after symlinks).
    pub path: Vec<u8>,
    body: Body,
    /// A /proc file's text as generated again by the last read from its start (see
    /// [`SynthFile::refresh`]); the body's until then.
    fresh: Mutex<Option<Vec<u8>>>,
    stat: Stat,
    /// The file offset; for a directory, the index of the next entry.
    pos: Mutex<u64>,
    flags: Mutex<u64>,
}

impl SynthFile {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// /dev/null or /dev/zero: a write takes the whole count without reading the buffer
    /// (Linux's write_null), so even a bad one is no EFAULT.
    pub fn discards_writes(&self) -> bool {
        matches!(self.body, Body::Dev(Dev::Null | Dev::Zero))
    }

    /// /dev/full: every write is ENOSPC, the buffer never read (Linux's write_full).
    pub fn is_full(&self) -> bool {
        matches!(self.body, Body::Dev(Dev::Full))
    }

    /// getdents64 records from the current position that fit in `max` bytes; EINVAL when not
    /// even one does. The position moves past what is returned only once `commit` runs.
    pub fn dirents(&self, max: usize) -> Result<(Vec<u8>, u64), Errno> {
        let Body::Dir(entries) = &self.body else {
            return Err(Errno::ENOTDIR);
        };
        let start = *self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let all = [(b".".to_vec(), DT_DIR), (b"..".to_vec(), DT_DIR)]
            .into_iter()
            .chain(entries.iter().cloned());
        let mut out = Vec::new();
        let mut at = start;
        for (i, (name, t)) in all.enumerate().skip(start as usize) {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            if out.len() + reclen > max {
                break;
            }
            let ino = self.stat.ino.wrapping_add(i as u64 + 1);
            out.extend_from_slice(&ino.to_ne_bytes());
            out.extend_from_slice(&(i as u64 + 1).to_ne_bytes());
            out.extend_from_slice(&(reclen as u16).to_ne_bytes());
            out.push(t);
            out.extend_from_slice(&name);
            out.resize(out.len() + reclen - 19 - name.len(), 0);
            at = i as u64 + 1;
        }
        if out.is_empty() && (start as usize) < entries.len() + 2 {
            return Err(Errno::EINVAL);
        }
        Ok((out, at))
    }

    /// The file offset (for a directory, the index of the next entry).
    pub fn pos(&self) -> u64 {
        *self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move the position to `pos` (after a getdents64 copied its records).
    pub fn set_pos(&self, pos: u64) {
        *self.pos.lock().unwrap_or_else(|e| e.into_inner()) = pos;
    }

    /// Before a read at `pos` (None: the file position): a /proc file read from its start is
    /// generated again, as Linux's seq_file does, so it shows the process as it is now (the
    /// mappings made since the open, a rewound read of /proc/self/maps or status). A read
    /// further on continues the text the last read from the start made.
    pub fn refresh(&self, cx: &Ctx<'_, '_>, pos: Option<u64>) {
        if !matches!(self.body, Body::Text(_)) || !self.path.starts_with(b"/proc/") {
            return;
        }
        if pos.unwrap_or_else(|| self.pos()) != 0 {
            return;
        }
        let node = node_at(cx, &cx.process.fs(), &self.path);
        if let Some(Node::Text(t)) = node {
            *self.fresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        }
    }
}

/// Open the synthetic `node` at `abs` with open(2)'s `flags`: a file description, or what
/// Linux says to an unprivileged user (EACCES writing a read-only file, EISDIR writing a
/// directory, ENOTDIR for O_DIRECTORY on a file, EEXIST for O_CREAT|O_EXCL).
pub fn open(abs: Vec<u8>, node: Node, flags: u64) -> Result<OpenFile, Errno> {
    if let Node::Fd(file, _) = node {
        // Linux reopens the file; the same description is the closest without a host path.
        return Ok(file);
    }
    if let Node::Tty(tty) = &node {
        if flags & oflag::DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        if flags & oflag::PATH == 0 {
            let tty = tty.clone().ok_or(Errno::ENXIO)?;
            let kept = (flags | oflag::LARGEFILE) & !NOT_KEPT;
            tty.set_status_flags(u32::MAX, kept as u32)
                .map_err(|e| Errno::new(e.raw_os_error()))?;
            return Ok(tty);
        }
        // O_PATH: a handle on the device node itself, as below.
    }
    let acc = flags & oflag::ACCMODE;
    let writes = acc == oflag::WRONLY || acc == oflag::RDWR || flags & oflag::TRUNC != 0;
    if flags & oflag::CREAT != 0 && flags & oflag::EXCL != 0 {
        return Err(Errno::EEXIST);
    }
    let st = stat_of(&abs, &node)?;
    let body = match node {
        Node::Dir(e) => {
            if writes || flags & oflag::TMPFILE == oflag::TMPFILE {
                return Err(Errno::EISDIR);
            }
            Body::Dir(e)
        }
        _ if flags & oflag::DIRECTORY != 0 && flags & oflag::PATH == 0 => {
            return Err(Errno::ENOTDIR)
        }
        Node::Text(t) if writes && flags & oflag::PATH == 0 => {
            let _ = t;
            return Err(Errno::EACCES);
        }
        Node::Text(t) => Body::Text(t),
        Node::Dev(d) => Body::Dev(d),
        // Only reached with O_PATH|O_NOFOLLOW: a handle on the link itself.
        Node::Link(t) | Node::Fd(_, t) => Body::Text(t),
        Node::Tty(_) => Body::Text(Vec::new()),
    };
    Ok(std::sync::Arc::new(SynthFile {
        path: abs,
        body,
        fresh: Mutex::new(None),
        stat: st,
        pos: Mutex::new(0),
        // open(2) on 64-bit Linux always adds O_LARGEFILE (F_GETFL and fdinfo show it).
        flags: Mutex::new((flags | oflag::LARGEFILE) & !NOT_KEPT),
    }))
}

impl SynthFile {
    fn path_only(&self) -> bool {
        *self.flags.lock().unwrap_or_else(|e| e.into_inner()) & oflag::PATH != 0
    }
    fn acc(&self) -> u64 {
        *self.flags.lock().unwrap_or_else(|e| e.into_inner()) & oflag::ACCMODE
    }
}

impl FileDescription for SynthFile {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        if !self.readable() {
            return Err(ebadf());
        }
        match &self.body {
            Body::Dir(_) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            Body::Dev(Dev::Null) => Ok(0),
            Body::Dev(Dev::Zero | Dev::Full) => {
                mem.zero(gpa, len).map_err(memory_io)?;
                Ok(len as usize)
            }
            Body::Dev(Dev::Random | Dev::Urandom) => {
                let n = len.min(1 << 20) as usize;
                let mut buf = vec![0u8; n];
                let mut done = 0;
                while done < n {
                    done += rustix::rand::getrandom(
                        &mut buf[done..],
                        rustix::rand::GetRandomFlags::empty(),
                    )?;
                }
                mem.write_bytes(gpa, &buf).map_err(memory_io)?;
                Ok(n)
            }
            Body::Text(first) => {
                let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
                let t = fresh.as_deref().unwrap_or(first);
                let mut cur = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let at = pos.unwrap_or(*cur).min(t.len() as u64) as usize;
                let n = (t.len() - at).min(len as usize);
                mem.write_bytes(gpa, &t[at..at + n]).map_err(memory_io)?;
                if pos.is_none() {
                    *cur = (at + n) as u64;
                }
                Ok(n)
            }
        }
    }

    fn write_piece(
        &self,
        _mem: &GuestMem,
        _gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        self.write_len(len)
    }

    fn write_bytes(&self, buf: &[u8], _pos: Option<&mut u64>) -> io::Result<usize> {
        self.write_len(buf.len() as u64)
    }

    fn regular(&self) -> bool {
        matches!(self.body, Body::Text(_))
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        Ok(self.stat)
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        Ok(*self.flags.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        let mut f = self.flags.lock().unwrap_or_else(|e| e.into_inner());
        *f = (*f & !u64::from(mask)) | u64::from(bits & mask);
        Ok(())
    }

    fn readable(&self) -> bool {
        !self.path_only() && self.acc() != oflag::WRONLY
    }

    fn writable(&self) -> bool {
        !self.path_only() && self.acc() != oflag::RDONLY
    }

    fn as_synthetic(&self) -> Option<&SynthFile> {
        Some(self)
    }
}

impl SynthFile {
    /// What a write of `len` bytes does: the memory devices swallow it, /dev/full is full.
    fn write_len(&self, len: u64) -> io::Result<usize> {
        if !self.writable() {
            return Err(ebadf());
        }
        match self.body {
            Body::Dev(Dev::Full) => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            Body::Dev(_) => Ok(len as usize),
            _ => Err(ebadf()),
        }
    }
}

/// What the guest's view needs from the program's start: its argv and environment, as
/// `/proc/<pid>/cmdline` and `environ` read, and when it started (`/proc/uptime`).
#[derive(Debug)]
pub struct SysView {
    /// When the VM started.
    pub started: std::time::Instant,
    /// NUL-separated argv, each NUL-terminated.
    pub cmdline: Vec<u8>,
    /// NUL-separated environment.
    pub environ: Vec<u8>,
    /// The auxiliary vector the program started with, as `/proc/<pid>/auxv` reads it: the
    /// (key, value) pairs, native-endian, up to and including AT_NULL.
    pub auxv: Vec<u8>,
    /// The user name `/etc/passwd` gives the app's uid: the host's name for umon's uid, else
    /// "user" (read at start: the monitor opens no host file once the app runs).
    pub user: String,
    /// The group name `/etc/group` gives the app's gid, found the same way.
    pub group: String,
}

/// The name `file` (the host's /etc/passwd or /etc/group) gives `id`, if it is a plain one.
fn host_name(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let n: u32 = f.nth(1)?.parse().ok()?;
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        (n == id && plain).then(|| name.to_owned())
    })
}

impl SysView {
    /// From argv and the environment.
    pub fn new(args: &[std::ffi::OsString], env: &[std::ffi::OsString]) -> SysView {
        let join = |v: &[std::ffi::OsString]| {
            let mut out = Vec::new();
            for a in v {
                out.extend_from_slice(a.as_encoded_bytes());
                out.push(0);
            }
            out
        };
        let (uid, gid) = ids();
        SysView {
            user: host_name("/etc/passwd", uid).unwrap_or_else(|| "user".into()),
            group: host_name("/etc/group", gid).unwrap_or_else(|| "user".into()),
            started: std::time::Instant::now(),
            cmdline: join(args),
            environ: join(env),
            auxv: Vec::new(),
        }
    }
}

impl Default for SysView {
    fn default() -> Self {
        SysView {
            started: std::time::Instant::now(),
            cmdline: Vec::new(),
            environ: Vec::new(),
            auxv: Vec::new(),
            user: "user".into(),
            group: "user".into(),
        }
    }
}

/// The auxiliary vector of the initial stack whose argc is at `sp` (guest-physical), before
/// the program ran: past argv and envp, the (key, value) pairs up to and including AT_NULL.
/// Empty when the stack is not laid out so (it always is: the loader wrote it).
pub fn auxv_on_stack(mem: &GuestMem, sp: Gpa) -> Vec<u8> {
    // More words than any stack the loader accepts holds: a bound, never reached.
    const MAX_WORDS: u64 = 1 << 20;
    let word = |i: u64| mem.read::<u64>(Gpa(sp.0 + i * 8)).ok();
    let Some(argc) = word(0) else {
        return Vec::new();
    };
    let mut i = argc.saturating_add(2);
    while word(i).is_some_and(|w| w != 0) && i < MAX_WORDS {
        i += 1;
    }
    i += 1;
    let mut out = Vec::new();
    while i < MAX_WORDS {
        let (Some(k), Some(v)) = (word(i), word(i + 1)) else {
            return Vec::new();
        };
        out.extend_from_slice(&k.to_ne_bytes());
        out.extend_from_slice(&v.to_ne_bytes());
        if k == 0 {
            return out;
        }
        i += 2;
    }
    Vec::new()
}
