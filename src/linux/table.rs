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
use super::{fs, futex, info, io, mm, proc, sigframe, signal, task, time, Args, Ctx, Sys};
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
    chown => chown, [Path, Int, Int], "";
    lchown => lchown, [Path, Int, Int], "";
    fchownat => fchownat, [DirFd, Path, Int, Int, Hex], "";
    fchown => fs::fchown, [Int, Int, Int], "";
    truncate => fs::truncate, [Path, Size], "";
    ftruncate => fs::ftruncate, [Int, Size], "";
    fsync => fsync, [Int], "";
    fdatasync => fdatasync, [Int], "";
    fadvise64 => fs::fadvise64, [Int, Int, Size, Int], "";
    chdir => fs::chdir, [Path], "";
    fchdir => fs::fchdir, [Int], "";
    getcwd => fs::getcwd, [Out(1), Size], "";
    umask => fs::umask, [Oct], "";
    sendfile => io::sendfile, [Int, Int, Hex, Size], "";
    copy_file_range => io::copy_file_range, [Int, Hex, Int, Hex, Size, Hex], "";
    ioctl => io::ioctl, [Int, Hex, Hex], "TCGETS, TCSETS*, TIOCGWINSZ, FIONBIO";
    poll => io::poll, [Hex, Int, Int], "";
    ppoll => io::ppoll, [Hex, Int, Hex, Hex, Size], "";
    dup => io::dup, [Int], "";
    dup2 => io::dup2, [Int, Int], "";
    dup3 => io::dup3, [Int, Int, OpenFlags], "";
    fcntl => io::fcntl, [Int, Int, Hex], "record locks and the OFD forms on the host file";
    flock => io::flock, [Int, Int], "";
    brk => mm::brk, [Hex], "";
    mmap => mmap, [Hex, Size, Prot, MapFlags, Int, Hex],
        "anonymous, MAP_FIXED, MAP_FIXED_NOREPLACE, PROT_NONE; files MAP_PRIVATE \
         (writable MAP_SHARED is ENODEV)";
    munmap => mm::munmap, [Hex, Size], "";
    mprotect => mm::mprotect, [Hex, Size, Prot], "recorded, not in the page tables";
    mremap => mm::mremap, [Hex, Size, Size, Hex, Hex], "MAYMOVE, FIXED, DONTUNMAP";
    madvise => mm::madvise, [Hex, Size, Int], "";
    exit => exit, [Int], "ends the calling thread";
    exit_group => exit_group, [Int], "";
    clone => task::clone, [Hex, Hex, Hex, Hex, Hex],
        "threads (CLONE_VM|CLONE_THREAD and friends); processes are not supported yet";
    clone3 => task::clone3, [Hex, Size], "threads; processes are not supported yet";
    get_robust_list => task::get_robust_list, [Int, Hex, Hex], "";
    arch_prctl => proc::arch_prctl, [ArchCode, Hex], "";
    set_tid_address => set_tid_address, [Hex], "";
    set_robust_list => proc::set_robust_list, [Hex, Size], "";
    rseq => rseq, [Hex, Size, Hex, Hex], "ENOSYS, silently (glibc copes)";
    prlimit64 => proc::prlimit64, [Int, Int, Hex, Hex],
        "RLIMIT_NOFILE and RLIMIT_FSIZE enforced";
    getrlimit => proc::getrlimit, [Int, Hex], "";
    setrlimit => proc::setrlimit, [Int, Hex], "RLIMIT_NOFILE and RLIMIT_FSIZE enforced";
    rt_sigaction => signal::rt_sigaction, [Int, Hex, Hex, Size],
        "handlers run for signals sent by the app to itself; faults and timers not yet";
    rt_sigreturn => sigframe::rt_sigreturn, [], "";
    rt_sigprocmask => signal::rt_sigprocmask, [Int, Hex, Hex, Size], "";
    rt_sigpending => signal::rt_sigpending, [Hex, Size], "";
    sigaltstack => signal::sigaltstack, [Hex, Hex], "";
    getpid => getpid, [], "";
    gettid => gettid, [], "";
    getppid => getppid, [], "";
    getpgrp => getpid, [], "";
    getpgid => group_of, [Int], "";
    getsid => group_of, [Int], "";
    kill => kill, [Int, Int], "to itself";
    tkill => tkill, [Int, Int], "to itself";
    tgkill => tgkill, [Int, Int, Int], "to itself";
    getuid => getuid, [], "";
    geteuid => getuid, [], "";
    getgid => getgid, [], "";
    getegid => getgid, [], "";
    getgroups => info::getgroups, [Int, Hex], "";
    getrusage => info::getrusage, [Int, Hex], "";
    sysinfo => info::sysinfo, [Hex], "";
    prctl => info::prctl, [Int, Hex, Hex, Hex, Hex],
        "PR_SET/GET_NAME, PDEATHSIG, DUMPABLE, NO_NEW_PRIVS";
    uname => proc::uname, [Hex], "";
    getrandom => proc::getrandom, [Hex, Size, Hex], "";
    sched_getaffinity => task::sched_getaffinity, [Int, Size, Hex], "the --cpus CPUs";
    sched_setaffinity => task::sched_setaffinity, [Int, Size, Hex], "checked, then accepted";
    sched_yield => sched_yield, [], "";
    futex => futex::futex, [Hex, Int, Int, Hex, Hex, Int], "";
    clock_gettime => time::clock_gettime, [Int, Hex], "";
    clock_getres => time::clock_getres, [Int, Hex], "";
    gettimeofday => time::gettimeofday, [Hex, Hex], "";
    time => time::time, [Hex], "";
    nanosleep => time::nanosleep, [Hex, Hex], "";
    clock_nanosleep => time::clock_nanosleep, [Int, Int, Hex, Hex], "";
    getpeername => not_a_socket, [Int, Hex, Hex], "ENOTSOCK (no sockets)";
    getsockname => not_a_socket, [Int, Hex, Hex], "ENOTSOCK (no sockets)";
    getsockopt => not_a_socket, [Int, Int, Int, Hex, Hex], "ENOTSOCK (no sockets)";
    setsockopt => not_a_socket, [Int, Int, Int, Hex, Size], "ENOTSOCK (no sockets)";
    shutdown => not_a_socket, [Int, Int], "ENOTSOCK (no sockets)";
    listen => not_a_socket, [Int, Int], "ENOTSOCK (no sockets)";
    accept => not_a_socket, [Int, Hex, Hex], "ENOTSOCK (no sockets)";
    accept4 => not_a_socket, [Int, Hex, Hex, Hex], "ENOTSOCK (no sockets)";
    bind => not_a_socket, [Int, Hex, Size], "ENOTSOCK (no sockets)";
    connect => not_a_socket, [Int, Hex, Size], "ENOTSOCK (no sockets)";
    sendto => not_a_socket, [Int, In(2), Size, Hex, Hex, Size], "ENOTSOCK (no sockets)";
    recvfrom => not_a_socket, [Int, Hex, Size, Hex, Hex, Hex], "ENOTSOCK (no sockets)";
    sendmsg => not_a_socket, [Int, Hex, Hex], "ENOTSOCK (no sockets)";
    recvmsg => not_a_socket, [Int, Hex, Hex], "ENOTSOCK (no sockets)";
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
    fs::chown(cx, AT_FDCWD, a.ptr(0), [a.raw(1), a.raw(2)], 0)
}

fn lchown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let ids = [a.raw(1), a.raw(2)];
    fs::chown(cx, AT_FDCWD, a.ptr(0), ids, AT_SYMLINK_NOFOLLOW)
}

fn fchownat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    fs::chown(
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

/// glibc registers rseq at start-up and copes with ENOSYS; no note for it.
fn rseq(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Err(Errno::ENOSYS.into())
}

fn getpid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.process.tgid.into())
}

fn gettid(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(cx.thread.tid.into())
}

/// The parent is outside the machine.
fn getppid(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Ok(0)
}

fn group_of(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    info::group_of(cx, a.raw(0))
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

fn not_a_socket(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    info::not_a_socket(cx, a.fd(0))
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
                if let Kind::In(i) | Kind::Out(i) = k {
                    assert!(*i < r.args.len(), "{}: length argument {i}", r.nr.name());
                }
            }
            assert!(std::ptr::eq(row(r.nr.id() as u64).unwrap(), r));
        }
        assert!(row(Sysno::fork.id() as u64).is_none());
        assert!(row(u64::MAX).is_none());
    }

    #[test]
    fn the_list_has_a_line_per_row() {
        let list = render();
        assert_eq!(list.lines().count(), ROWS.len());
        assert!(list.contains("pread64: ESPIPE on streams\n"));
    }
}
