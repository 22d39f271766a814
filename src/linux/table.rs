//! The syscall table: one row per Linux syscall umon serves, carrying its handler, how
//! `--trace` shows its arguments, and a support note. Dispatch, `--trace` and the list
//! `umon syscalls` prints (the README's list) all come from here, so adding a syscall is one
//! row plus its handler. A call without a row gets ENOSYS and one note (see `unsupported`).
//!
//! Handlers are `fn(&mut Ctx, &Args) -> Sys`; the legacy forms of the `*at` calls (open,
//! access, mkdir, rename, …) are small wrappers that supply AT_FDCWD, so each row names one
//! function.
use super::abi::at::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use super::abi::{mman, oflag};
use super::trace::args::Kind;
use super::{
    family, fd, fs, futex, info, io, mm, net, proc, sigframe, signal, task, time, timer, Args, Ctx,
    Sys,
};
use std::sync::OnceLock;
use syscalls::{Errno, Sysno};

/// A syscall handler.
pub type Handler = for<'a, 'b, 'c> fn(&'a mut Ctx<'b, 'c>, &Args) -> Sys;

/// One served syscall.
pub struct Row {
    /// Its number (and name).
    pub nr: Sysno,
    /// What serves it.
    pub handler: Handler,
    /// How `--trace` shows each argument (as strace does).
    pub args: &'static [Kind],
    /// What is partial about it ("" when it behaves as on Linux).
    pub note: &'static str,
}

macro_rules! rows {
    ($( $nr:ident => $h:expr, [$($k:ident $(($n:literal))?),*], $note:expr; )*) => {
        /// Every syscall umon serves.
        pub static ROWS: &[Row] = &[
            $( Row {
                nr: Sysno::$nr,
                handler: $h,
                args: &[$(Kind::$k $(($n))?),*],
                note: $note,
            }, )*
        ];
    };
}

rows! {
    read => io::read, [Int, Out(2), Size], "";
    write => io::write, [Int, In(2), Size], "";
    readv => io::readv, [Int, Hex, Int], "";
    writev => io::writev, [Int, Hex, Int], "";
    pread64 => io::pread64, [Int, Out(2), Size, Int], "ESPIPE on streams";
    pwrite64 => io::pwrite64, [Int, In(2), Size, Int], "ESPIPE on streams";
    preadv => io::preadv, [Int, Hex, Int, Int], "ESPIPE on streams";
    pwritev => io::pwritev, [Int, Hex, Int, Int], "ESPIPE on streams";
    preadv2 => io::preadv2, [Int, Hex, Int, Int, Int, Hex],
        "RWF_HIPRI, DSYNC, SYNC; the others EOPNOTSUPP";
    pwritev2 => io::pwritev2, [Int, Hex, Int, Int, Int, Hex],
        "RWF_HIPRI, DSYNC, SYNC; the others EOPNOTSUPP";
    lseek => io::lseek, [Int, Int, Int], "";
    close => io::close, [Int], "";
    fstat => io::fstat, [Int, Hex], "";
    newfstatat => fs::newfstatat, [DirFd, Path, Hex, Hex], "";
    statx => fs::statx, [DirFd, Path, Hex, Hex, Hex], "";
    stat => stat, [Path, Hex], "";
    lstat => lstat, [Path, Hex], "";
    statfs => fs::statfs, [Path, Hex], "";
    fstatfs => fs::fstatfs, [Int, Hex], "";
    access => access, [Path, Oct], "";
    faccessat => faccessat, [DirFd, Path, Oct, Hex], "";
    faccessat2 => faccessat2, [DirFd, Path, Oct, Hex], "";
    open => open, [Path, OpenFlags, Oct], "in volumes";
    openat => openat, [DirFd, Path, OpenFlags, Oct], "in volumes";
    creat => creat, [Path, Oct], "in volumes";
    getdents64 => fs::getdents64, [Int, Hex, Size], "";
    getdents => fs::getdents, [Int, Hex, Size], "";
    mkdir => mkdir, [Path, Oct], "";
    mkdirat => mkdirat, [DirFd, Path, Oct], "";
    mknod => mknod, [Path, Oct, Hex], "FIFOs, sockets and regular files";
    mknodat => mknodat, [DirFd, Path, Oct, Hex], "FIFOs, sockets and regular files";
    unlink => unlink, [Path], "";
    rmdir => rmdir, [Path], "";
    unlinkat => unlinkat, [DirFd, Path, Hex], "";
    rename => rename, [Path, Path], "";
    renameat => renameat, [DirFd, Path, DirFd, Path], "";
    renameat2 => renameat2, [DirFd, Path, DirFd, Path, Hex], "";
    link => link, [Path, Path], "";
    linkat => linkat, [DirFd, Path, DirFd, Path, Hex], "";
    symlink => symlink, [Path, Path], "";
    symlinkat => symlinkat, [Path, DirFd, Path], "";
    readlink => readlink, [Path, Out(2), Size], "";
    readlinkat => readlinkat, [DirFd, Path, Out(3), Size], "";
    chmod => chmod, [Path, Oct], "";
    fchmodat => fchmodat, [DirFd, Path, Oct], "";
    fchmodat2 => fchmodat2, [DirFd, Path, Oct, Hex], "";
    fchmod => fs::fchmod, [Int, Oct], "";
    utimensat => fs::utimensat, [DirFd, Path, Hex, Hex], "";
    utime => fs::utime, [Path, Hex], "";
    utimes => fs::utimes, [Path, Hex], "";
    futimesat => fs::futimesat, [DirFd, Path, Hex], "";
    chown => chown, [Path, Int, Int], "to the own ids";
    lchown => lchown, [Path, Int, Int], "to the own ids";
    fchownat => fchownat, [DirFd, Path, Int, Int, Hex], "to the own ids";
    fchown => fs::attrs::fchown, [Int, Int, Int], "to the own ids";
    getxattr => fs::attrs::getxattr, [Path, Path, Hex, Size], "none exist (ENODATA)";
    lgetxattr => fs::attrs::lgetxattr, [Path, Path, Hex, Size], "none exist (ENODATA)";
    fgetxattr => fs::attrs::fgetxattr, [Int, Path, Hex, Size], "none exist (ENODATA)";
    listxattr => fs::attrs::listxattr, [Path, Hex, Size], "an empty list";
    llistxattr => fs::attrs::llistxattr, [Path, Hex, Size], "an empty list";
    flistxattr => fs::attrs::flistxattr, [Int, Hex, Size], "an empty list";
    setxattr => fs::attrs::setxattr, [Path, Path, Hex, Size, Hex], "EOPNOTSUPP";
    lsetxattr => fs::attrs::lsetxattr, [Path, Path, Hex, Size, Hex], "EOPNOTSUPP";
    fsetxattr => fs::attrs::fsetxattr, [Int, Path, Hex, Size, Hex], "EOPNOTSUPP";
    removexattr => fs::attrs::removexattr, [Path, Path], "ENODATA";
    lremovexattr => fs::attrs::lremovexattr, [Path, Path], "ENODATA";
    fremovexattr => fs::attrs::fremovexattr, [Int, Path], "ENODATA";
    truncate => fs::truncate, [Path, Size], "";
    ftruncate => fs::ftruncate, [Int, Size], "";
    fallocate => fs::fallocate, [Int, Hex, Size, Size], "volume files";
    fsync => fsync, [Int], "";
    fdatasync => fdatasync, [Int], "";
    fadvise64 => fs::fadvise64, [Int, Int, Size, Int], "";
    readahead => fs::readahead, [Int, Int, Size], "a hint, checked";
    sync => fs::sync, [], "the writable volumes' file systems";
    syncfs => fs::syncfs, [Int], "";
    sync_file_range => fs::sync_file_range, [Int, Int, Int, Hex],
        "a write-back is the whole file's (fdatasync)";
    chdir => fs::chdir, [Path], "";
    fchdir => fs::fchdir, [Int], "";
    getcwd => fs::getcwd, [Out(1), Size], "";
    umask => fs::umask, [Oct], "";
    sendfile => io::sendfile, [Int, Int, Hex, Size], "";
    copy_file_range => io::copy_file_range, [Int, Hex, Int, Hex, Size, Hex], "";
    ioctl => io::ioctl, [Int, Hex, Hex], "TCGETS, TCSETS*, TIOCGWINSZ, FIONBIO, FIONREAD, SIOCGIF* for the guest's view";
    poll => io::poll, [Hex, Int, Int], "";
    ppoll => io::ppoll, [Hex, Int, Hex, Hex, Size], "";
    select => io::select, [Int, Hex, Hex, Hex, Hex], "";
    pselect6 => io::pselect6, [Int, Hex, Hex, Hex, Hex, Hex], "";
    epoll_create => fd::epoll::epoll_create, [Int], "";
    epoll_create1 => fd::epoll::epoll_create1, [Hex], "";
    epoll_ctl => fd::epoll::epoll_ctl, [Int, Int, Int, Hex], "signalfd, /proc and /sys items kept by the monitor; supplied streams EPERM; items keyed by file, not fd number";
    epoll_wait => fd::epoll::epoll_wait, [Int, Hex, Int, Int], "";
    epoll_pwait => fd::epoll::epoll_pwait, [Int, Hex, Int, Int, Hex, Size], "";
    epoll_pwait2 => fd::epoll::epoll_pwait2, [Int, Hex, Int, Hex, Hex, Size], "";
    dup => io::dup, [Int], "";
    dup2 => io::dup2, [Int, Int], "";
    dup3 => io::dup3, [Int, Int, OpenFlags], "";
    fcntl => io::fcntl, [Int, Int, Hex], "record locks and the OFD forms on the host file";
    flock => io::flock, [Int, Int], "";
    inotify_init => fd::inotify::inotify_init, [], "host inotify on volume paths";
    inotify_init1 => fd::inotify::inotify_init1, [Hex], "host inotify on volume paths";
    inotify_add_watch => fd::inotify::inotify_add_watch, [Int, Path, Hex], "";
    inotify_rm_watch => fd::inotify::inotify_rm_watch, [Int, Int], "";
    memfd_create => fd::memfd::memfd_create, [Path, Hex], "a host memfd; mmap as a private copy";
    pipe => fd::pipe::pipe, [FdPair], "a host pipe";
    pipe2 => fd::pipe::pipe2, [FdPair, PipeFlags], "a host pipe; O_NOTIFICATION_PIPE is EINVAL";
    splice => fd::pipe::splice, [Int, Hex, Int, Hex, Size, Hex], "";
    tee => fd::pipe::tee, [Int, Int, Size, Hex], "";
    vmsplice => fd::pipe::vmsplice, [Int, Hex, Int, Hex], "copies (as readv/writev)";
    brk => mm::brk, [Hex], "";
    mmap => mmap, [Hex, Size, Prot, MapFlags, Int, Hex],
        "anonymous and volume files; MAP_SHARED is the file's pages (shared with read/write, \
         other mappings and forked processes; MAP_SHARED|MAP_ANONYMOUS too), MAP_PRIVATE a \
         copy; MAP_FIXED and MAP_FIXED_NOREPLACE over the heap arena (brk's included), image \
         data and stack (elsewhere ENOMEM), PROT_NONE; MAP_GROWSDOWN grows to the app's faults \
         and syscall accesses below it (stack guard gap, RLIMIT_STACK)";
    munmap => mm::munmap, [Hex, Size], "";
    mprotect => mm::mprotect, [Hex, Size, Prot], "in the page tables, every thread's; \
        PROT_WRITE of a read-only descriptor's shared mapping is EACCES";
    pkey_mprotect => mm::pkey_mprotect, [Hex, Size, Prot, Int], "key -1 only (no OSPKE)";
    pkey_alloc => mm::pkey_alloc, [Hex, Hex], "EINVAL, as Linux without OSPKE";
    pkey_free => mm::pkey_free, [Int], "EINVAL: no key is allocated";
    mremap => mm::mremap, [Hex, Size, Size, Hex, Hex], "MAYMOVE, FIXED, DONTUNMAP";
    madvise => mm::madvise, [Hex, Size, Int], "DONTNEED zeroes private anonymous \
        memory (shared mappings keep their file's pages); FREE keeps it; REMOVE punches the file";
    mincore => mm::mincore, [Hex, Size, Hex], "every mapped page is resident";
    msync => mm::msync, [Hex, Size, Hex], "writes shared file mappings back \
        (MS_SYNC waits)";
    mlock => mm::mlock, [Hex, Size], "recorded; memory is never paged out";
    mlock2 => mm::mlock2, [Hex, Size, Hex], "recorded; memory is never paged out";
    munlock => mm::munlock, [Hex, Size], "";
    mlockall => mm::mlockall, [Hex], "recorded; RLIMIT_MEMLOCK is unlimited";
    munlockall => mm::munlockall, [], "";
    exit => exit, [Int], "ends the calling thread";
    exit_group => exit_group, [Int], "";
    clone => task::clone, [Hex, Hex, Hex, Hex, Hex],
        "threads, and processes without shared files or handlers";
    clone3 => task::clone3, [Hex, Size], "threads, and processes as clone";
    fork => task::fork, [], "a monitor process and VM per process, memory copy-on-write";
    vfork => task::vfork, [], "the child runs on a copy of the parent's memory";
    execve => family::exec::execve, [Path, Hex, Hex], "ELF and #! scripts; a new VM";
    execveat => family::exec::execveat, [DirFd, Path, Hex, Hex, Hex], "as execve";
    wait4 => family::wait::wait4, [Int, Hex, Hex, Hex], "no stops, rusage zero";
    waitid => family::wait::waitid, [Int, Int, Hex, Hex, Hex], "no stops, rusage zero";
    get_robust_list => task::get_robust_list, [Int, Hex, Hex], "";
    arch_prctl => proc::arch_prctl, [ArchCode, Hex], "";
    set_tid_address => set_tid_address, [Hex], "";
    set_robust_list => proc::set_robust_list, [Hex, Size], "";
    rseq => not_built_in, [Hex, Size, Hex, Hex], "ENOSYS, silently (glibc copes)";
    io_uring_setup => not_built_in, [Int, Hex], "ENOSYS, silently: a kernel without io_uring";
    io_uring_enter => not_built_in, [Int, Int, Int, Hex, Hex, Size], "ENOSYS, silently";
    io_uring_register => not_built_in, [Int, Int, Hex, Int], "ENOSYS, silently";
    prlimit64 => proc::prlimit64, [Int, Int, Hex, Hex],
        "RLIMIT_NOFILE and RLIMIT_FSIZE enforced";
    getrlimit => proc::getrlimit, [Int, Hex], "";
    setrlimit => proc::setrlimit, [Int, Hex], "RLIMIT_NOFILE and RLIMIT_FSIZE enforced";
    rt_sigaction => signal::rt_sigaction, [Int, Hex, Hex, Size],
        "handlers for signals sent by the app (any thread, any target); faults and timers not yet";
    rt_sigreturn => sigframe::rt_sigreturn, [SigMask], "";
    rt_sigprocmask => signal::rt_sigprocmask, [Int, Hex, Hex, Size], "";
    rt_sigpending => signal::rt_sigpending, [Hex, Size], "";
    sigaltstack => signal::sigaltstack, [Hex, Hex], "";
    rt_sigsuspend => signal::rt_sigsuspend, [Hex, Size], "";
    pause => signal::pause, [], "";
    rt_sigtimedwait => signal::rt_sigtimedwait, [Hex, Hex, Hex, Size], "";
    rt_sigqueueinfo => signal::rt_sigqueueinfo, [Int, Int, Hex], "";
    rt_tgsigqueueinfo => signal::rt_tgsigqueueinfo, [Int, Int, Int, Hex], "";
    restart_syscall => signal::restart_syscall, [], "";
    signalfd4 => super::fd::signalfd::signalfd4, [Int, Hex, Size, Hex], "";
    signalfd => super::fd::signalfd::signalfd, [Int, Hex, Size], "";
    eventfd2 => fd::eventfd::eventfd2, [Int, Hex], "";
    eventfd => fd::eventfd::eventfd, [Int], "";
    timerfd_create => fd::timerfd::timerfd_create, [Int, Hex], "alarm clocks: EPERM (no CAP_WAKE_ALARM)";
    timerfd_settime => fd::timerfd::timerfd_settime, [Int, Hex, Hex, Hex], "";
    timerfd_gettime => fd::timerfd::timerfd_gettime, [Int, Hex], "";
    getpid => getpid, [], "";
    gettid => gettid, [], "";
    getppid => getppid, [], "";
    getpgrp => family::getpgrp, [], "";
    getpgid => family::getpgid, [Int], "";
    getsid => family::getsid, [Int], "";
    setpgid => family::setpgid, [Int, Int], "no check that a child has not exec'd yet";
    setsid => family::setsid, [], "";
    kill => kill, [Int, Int], "the app's own processes only";
    tkill => tkill, [Int, Int], "";
    tgkill => tgkill, [Int, Int, Int], "";
    getuid => getuid, [], "";
    geteuid => getuid, [], "";
    getgid => getgid, [], "";
    getegid => getgid, [], "";
    getgroups => info::getgroups, [Int, Hex], "";
    setgroups => info::setgroups, [Int, Hex], "EPERM (no CAP_SETGID)";
    setuid => info::setuid, [Int], "umon's own uid only (no CAP_SETUID)";
    setgid => info::setgid, [Int], "umon's own gid only (no CAP_SETGID)";
    setreuid => info::setreuid, [Int, Int], "umon's own uid only (no CAP_SETUID)";
    setregid => info::setregid, [Int, Int], "umon's own gid only (no CAP_SETGID)";
    setresuid => info::setresuid, [Int, Int, Int], "umon's own uid only (no CAP_SETUID)";
    setresgid => info::setresgid, [Int, Int, Int], "umon's own gid only (no CAP_SETGID)";
    getresuid => info::getresuid, [Hex, Hex, Hex], "";
    getresgid => info::getresgid, [Hex, Hex, Hex], "";
    setfsuid => info::setfsuid, [Int], "umon's own uid only (no CAP_SETUID)";
    setfsgid => info::setfsgid, [Int], "umon's own gid only (no CAP_SETGID)";
    getcpu => info::getcpu, [Hex, Hex, Hex], "node 0";
    getrusage => info::getrusage, [Int, Hex], "CPU times";
    times => info::times, [Hex], "";
    sysinfo => info::sysinfo, [Hex], "";
    prctl => info::prctl, [Int, Hex, Hex, Hex, Hex],
        "PR_SET/GET_NAME, PDEATHSIG, DUMPABLE, NO_NEW_PRIVS, CHILD_SUBREAPER, CAPBSET_READ, \
         GET_SECCOMP";
    getpriority => info::getpriority, [Int, Int], "";
    setpriority => info::setpriority, [Int, Int, Int], "kept per thread; EACCES to lower";
    sched_getscheduler => info::sched_getscheduler, [Int], "";
    sched_setscheduler => info::sched_setscheduler, [Int, Int, Hex],
        "OTHER, BATCH, IDLE; real-time EPERM";
    sched_getparam => info::sched_getparam, [Int, Hex], "";
    sched_setparam => info::sched_setparam, [Int, Hex], "";
    sched_get_priority_max => info::sched_get_priority_max, [Int], "";
    sched_get_priority_min => info::sched_get_priority_min, [Int], "";
    sched_rr_get_interval => info::sched_rr_get_interval, [Int, Hex], "0 (fair-class threads)";
    ioprio_get => info::ioprio_get, [Int, Int], "";
    ioprio_set => info::ioprio_set, [Int, Int, Hex], "kept per thread; RT class EPERM";
    personality => info::personality, [Hex], "";
    membarrier => info::membarrier, [Int, Hex, Int], "no rseq commands";
    uname => proc::uname, [Hex], "";
    getrandom => proc::getrandom, [Hex, Size, Hex], "";
    sched_getaffinity => task::sched_getaffinity, [Int, Size, Hex], "the --cpus CPUs";
    sched_setaffinity => task::sched_setaffinity, [Int, Size, Hex], "checked, then accepted";
    sched_yield => sched_yield, [], "";
    futex => futex::futex, [Hex, Int, Int, Hex, Hex, Int], "";
    clock_gettime => time::clock_gettime, [Int, Hex], "CPU-time clocks are the host CPU time of the vCPU threads";
    clock_getres => time::clock_getres, [Int, Hex], "";
    gettimeofday => time::gettimeofday, [Hex, Hex], "";
    time => time::time, [Hex], "";
    nanosleep => time::nanosleep, [Hex, Hex], "";
    clock_nanosleep => time::clock_nanosleep, [Int, Int, Hex, Hex], "";
    alarm => timer::alarm, [Size], "";
    setitimer => timer::setitimer, [Int, Hex, Hex], "VIRTUAL and PROF count the vCPU threads' host CPU time";
    getitimer => timer::getitimer, [Int, Hex], "";
    timer_create => timer::timer_create, [Int, Hex, Hex], "CPU-time clocks are the host's CPU time of the vCPU threads; at most 65536 timers";
    timer_settime => timer::timer_settime, [Int, Int, Hex, Hex], "";
    timer_gettime => timer::timer_gettime, [Int, Hex], "";
    timer_getoverrun => timer::timer_getoverrun, [Int], "";
    timer_delete => timer::timer_delete, [Int], "";
    getpeername => net::socket::getpeername, [Int, SockAddrOut(2), Hex], "";
    getsockname => net::socket::getsockname, [Int, SockAddrOut(2), Hex], "";
    getsockopt => net::socket::getsockopt, [Int, Int, Int, Hex, Hex], "common SOL_SOCKET, TCP, IP and IPv6 options; others ENOPROTOOPT";
    setsockopt => net::socket::setsockopt, [Int, Int, Int, Hex, Size], "common SOL_SOCKET, TCP, IP and IPv6 options; others ENOPROTOOPT";
    shutdown => net::socket::shutdown, [Int, Int], "";
    listen => net::socket::listen, [Int, Int], "";
    accept => net::socket::accept, [Int, SockAddrOut(2), Hex], "";
    accept4 => net::socket::accept4, [Int, SockAddrOut(2), Hex, Hex], "";
    bind => net::socket::bind, [Int, SockAddr(2), Size], "AF_UNIX paths only in volumes; INET under --net/--publish";
    connect => net::socket::connect, [Int, SockAddr(2), Size], "INET only with --net host";
    sendto => net::socket::sendto, [Int, In(2), Size, Hex, SockAddr(5), Size], "";
    recvfrom => net::socket::recvfrom, [Int, Out(2), Size, Hex, SockAddrOut(5), Hex], "";
    sendmsg => net::socket::sendmsg, [Int, Hex, Hex], "SCM_RIGHTS and SCM_CREDENTIALS on unix sockets; other control messages EINVAL";
    recvmsg => net::socket::recvmsg, [Int, Hex, Hex], "SCM_RIGHTS passes sockets only (other files are dropped: MSG_CTRUNC)";
    sendmmsg => net::socket::sendmmsg, [Int, Hex, Int, Hex], "sendmsg per message, at most 1024";
    recvmmsg => net::socket::recvmmsg, [Int, Hex, Int, Hex, Hex],
        "recvmsg per message, at most 1024; MSG_WAITFORONE; the timeout looked at after each message";
    socket => net::socket::socket, [Int, Hex, Int], "AF_UNIX, AF_INET, AF_INET6; others EAFNOSUPPORT";
    socketpair => net::socket::socketpair, [Int, Hex, Int, Hex], "AF_UNIX";
    capget => info::capget, [Hex, Hex], "no capabilities: every set empty";
    capset => info::capset, [Hex, Hex], "only to empty sets";
    get_mempolicy => info::get_mempolicy, [Hex, Hex, Int, Hex, Hex], "one node";
    set_mempolicy => info::set_mempolicy, [Int, Hex, Int], "one node; per process";
    mbind => info::mbind, [Hex, Size, Int, Hex, Int, Hex], "one node; checked, not kept";
    migrate_pages => info::migrate_pages, [Int, Int, Hex, Hex], "one node";
    close_range => info::close_range, [Int, Int, Hex], "CLOSE_RANGE_UNSHARE: EINVAL once a second thread exists (one fd table)";
}

/// How `--trace` shows the arguments of calls that have no row but that strace shows
/// without arguments (so they read as on Linux while they are unsupported).
pub const NO_ARGS_UNSERVED: &[Sysno] = &[Sysno::fork, Sysno::vfork];

/// The row of syscall `nr`, if umon serves it.
pub fn row(nr: u64) -> Option<&'static Row> {
    static INDEX: OnceLock<Vec<Option<u16>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let top = ROWS.iter().map(|r| r.nr.id() as usize).max().unwrap_or(0);
        let mut index = vec![None; top + 1];
        for (i, r) in ROWS.iter().enumerate() {
            index[r.nr.id() as usize] = Some(i as u16);
        }
        index
    });
    let i = (*index.get(usize::try_from(nr).ok()?)?)?;
    ROWS.get(usize::from(i))
}

/// The list of served syscalls, one per line ("name" or "name: note"), sorted by name: what
/// `umon syscalls` prints and the README lists.
pub fn render() -> String {
    let mut rows: Vec<&Row> = ROWS.iter().collect();
    rows.sort_by_key(|r| r.nr.name());
    let mut s = String::new();
    for r in rows {
        s.push_str(r.nr.name());
        if !r.note.is_empty() {
            s.push_str(": ");
            s.push_str(r.note);
        }
        s.push('\n');
    }
    s
}

// ---- the legacy and alias forms, each one function -----------------------------------------

fn stat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::stat(cx, a, false)
}

fn lstat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::stat(cx, a, true)
}

fn access(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::access(cx, AT_FDCWD, a.ptr(0), u64::from(a.uint(1)), 0)
}

fn faccessat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::access(cx, a.dirfd(0), a.ptr(1), u64::from(a.uint(2)), 0)
}

fn faccessat2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::access(
        cx,
        a.dirfd(0),
        a.ptr(1),
        u64::from(a.uint(2)),
        u64::from(a.uint(3)),
    )
}

fn open(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::open(cx, AT_FDCWD, a.ptr(0), u64::from(a.uint(1)), a.raw(2))
}

fn openat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::open(cx, a.dirfd(0), a.ptr(1), u64::from(a.uint(2)), a.raw(3))
}

fn creat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = oflag::CREAT | oflag::WRONLY | oflag::TRUNC;
    fs::open(cx, AT_FDCWD, a.ptr(0), flags, a.raw(1))
}

fn mkdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::mkdir(cx, AT_FDCWD, a.ptr(0), a.raw(1))
}

fn mkdirat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::mkdir(cx, a.dirfd(0), a.ptr(1), a.raw(2))
}

fn mknod(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::mknod(cx, AT_FDCWD, a.ptr(0), a.raw(1))
}

fn mknodat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::mknod(cx, a.dirfd(0), a.ptr(1), a.raw(2))
}

fn unlink(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::unlink(cx, AT_FDCWD, a.ptr(0), 0)
}

fn rmdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::unlink(cx, AT_FDCWD, a.ptr(0), AT_REMOVEDIR)
}

fn unlinkat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::unlink(cx, a.dirfd(0), a.ptr(1), u64::from(a.uint(2)))
}

fn rename(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::rename(cx, [AT_FDCWD, a.ptr(0), AT_FDCWD, a.ptr(1), 0])
}

fn renameat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::rename(cx, [a.dirfd(0), a.ptr(1), a.dirfd(2), a.ptr(3), 0])
}

fn renameat2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::rename(
        cx,
        [
            a.dirfd(0),
            a.ptr(1),
            a.dirfd(2),
            a.ptr(3),
            u64::from(a.uint(4)),
        ],
    )
}

fn link(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::link(cx, [AT_FDCWD, a.ptr(0), AT_FDCWD, a.ptr(1), 0])
}

fn linkat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::link(
        cx,
        [
            a.dirfd(0),
            a.ptr(1),
            a.dirfd(2),
            a.ptr(3),
            u64::from(a.uint(4)),
        ],
    )
}

fn symlink(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::symlink(cx, a.ptr(0), AT_FDCWD, a.ptr(1))
}

fn symlinkat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::symlink(cx, a.ptr(0), a.dirfd(1), a.ptr(2))
}

fn readlink(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::readlink(cx, AT_FDCWD, a.ptr(0), a.ptr(1), a.len(2))
}

fn readlinkat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::readlink(cx, a.dirfd(0), a.ptr(1), a.ptr(2), a.len(3))
}

fn chmod(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::chmod(cx, AT_FDCWD, a.ptr(0), a.raw(1), 0)
}

fn fchmodat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::chmod(cx, a.dirfd(0), a.ptr(1), a.raw(2), 0)
}

fn fchmodat2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::chmod(cx, a.dirfd(0), a.ptr(1), a.raw(2), u64::from(a.uint(3)))
}

fn chown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::attrs::chown(cx, AT_FDCWD, a.ptr(0), [a.raw(1), a.raw(2)], 0)
}

fn lchown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ids = [a.raw(1), a.raw(2)];
    fs::attrs::chown(cx, AT_FDCWD, a.ptr(0), ids, AT_SYMLINK_NOFOLLOW)
}

fn fchownat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::attrs::chown(
        cx,
        a.dirfd(0),
        a.ptr(1),
        [a.raw(2), a.raw(3)],
        u64::from(a.uint(4)),
    )
}

fn fsync(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::fsync(cx, a, false)
}

fn fdatasync(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::fsync(cx, a, true)
}

/// mmap: anonymous memory from the arena, or a copy of a file.
fn mmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.flags(3) & mman::MAP_ANONYMOUS == 0 {
        io::mmap_file(cx, a)
    } else {
        mm::mmap(cx, a)
    }
}

fn exit(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    task::exit_thread(cx, a.raw(0))
}

fn exit_group(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    task::exit_group(cx, a.raw(0))
}

fn set_tid_address(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    cx.thread.clear_child_tid = a.ptr(0);
    Ok(cx.thread.tid.into())
}

/// A facility Linux can be built without (CONFIG_RSEQ, CONFIG_IO_URING): ENOSYS, and no note,
/// since the programs that try it fall back as expected (glibc registers rseq at start-up;
/// qemu-img, liburing users and runtimes try io_uring first).
fn not_built_in(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Err(Errno::ENOSYS.into())
}

fn getpid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.process.tgid.into())
}

fn gettid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.thread.tid.into())
}

/// pid 1's parent is outside the machine: 0.
fn getppid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.process.ppid().into())
}

fn kill(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    // pid_t and int in the kernel's prototype.
    signal::kill(cx, a.raw(0), u64::from(a.uint(1)))
}

fn tkill(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let tgid = cx.process.tgid.into();
    signal::tgkill(cx, tgid, a.raw(0), u64::from(a.uint(1)))
}

fn tgkill(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    signal::tgkill(cx, a.raw(0), a.raw(1), u64::from(a.uint(2)))
}

fn getuid(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(crate::machine::host::ids().uid)
}

fn getgid(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(crate::machine::host::ids().gid)
}

fn sched_yield(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_syscall_and_signatures_in_range() {
        let mut seen = std::collections::HashSet::new();
        for r in ROWS {
            assert!(seen.insert(r.nr), "{} has two rows", r.nr.name());
            assert!(
                r.args.len() <= 6,
                "{}: more than six arguments",
                r.nr.name()
            );
            for k in r.args {
                if let Kind::In(i) | Kind::Out(i) | Kind::SockAddr(i) | Kind::SockAddrOut(i) = k {
                    assert!(*i < r.args.len(), "{}: length argument {i}", r.nr.name());
                }
            }
            assert!(std::ptr::eq(row(r.nr.id() as u64).unwrap(), r));
        }
        assert!(row(Sysno::kexec_load.id() as u64).is_none());
        assert!(row(u64::MAX).is_none());
    }

    #[test]
    fn the_list_has_a_line_per_row() {
        let list = render();
        assert_eq!(list.lines().count(), ROWS.len());
        assert!(list.contains("pread64: ESPIPE on streams\n"));
    }
}
