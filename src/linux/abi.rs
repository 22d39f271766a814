//! Linux x86-64 user ABI structures and constants, as the application lays them out in its
//! memory. Plain `zerocopy` types: the monitor copies them in and out of guest memory, never
//! references them in place.
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// struct timespec.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: i64,
}

/// struct timeval.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct Timeval {
    /// Seconds.
    pub sec: i64,
    /// Microseconds.
    pub usec: i64,
}

/// struct iovec.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct Iovec {
    /// Buffer.
    pub base: u64,
    /// Length.
    pub len: u64,
}

/// struct pollfd.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct PollFd {
    /// File descriptor.
    pub fd: i32,
    /// Requested events.
    pub events: i16,
    /// Returned events.
    pub revents: i16,
}

/// struct rlimit64.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, PartialEq, Eq)]
#[repr(C)]
pub struct Rlimit {
    /// Soft limit.
    pub cur: u64,
    /// Hard limit.
    pub max: u64,
}

/// struct stat (x86-64).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub pad0: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: i64,
    pub atime_nsec: i64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub unused: [i64; 3],
}

/// struct statx_timestamp.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct StatxTimestamp {
    pub sec: i64,
    pub nsec: u32,
    pub reserved: i32,
}

/// struct statx.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub spare0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    pub atime: StatxTimestamp,
    pub btime: StatxTimestamp,
    pub ctime: StatxTimestamp,
    pub mtime: StatxTimestamp,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mnt_id: u64,
    pub dio_mem_align: u32,
    pub dio_offset_align: u32,
    pub spare3: [u64; 12],
}

impl Statx {
    /// The statx view of a stat (the fields stat has: STATX_BASIC_STATS).
    pub fn from_stat(s: &Stat) -> Statx {
        let ts = |sec: i64, nsec: i64| StatxTimestamp {
            sec,
            nsec: nsec as u32,
            reserved: 0,
        };
        Statx {
            mask: STATX_BASIC_STATS,
            blksize: s.blksize as u32,
            nlink: s.nlink as u32,
            uid: s.uid,
            gid: s.gid,
            mode: s.mode as u16,
            ino: s.ino,
            size: s.size as u64,
            blocks: s.blocks as u64,
            atime: ts(s.atime, s.atime_nsec),
            ctime: ts(s.ctime, s.ctime_nsec),
            mtime: ts(s.mtime, s.mtime_nsec),
            rdev_major: major(s.rdev),
            rdev_minor: minor(s.rdev),
            dev_major: major(s.dev),
            dev_minor: minor(s.dev),
            ..Default::default()
        }
    }
}

fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

/// STATX_BASIC_STATS.
pub const STATX_BASIC_STATS: u32 = 0x7ff;

/// struct utsname.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct Utsname {
    /// sysname, nodename, release, version, machine, domainname.
    pub fields: [[u8; 65]; 6],
}

/// struct sigaltstack (stack_t).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, PartialEq, Eq)]
#[repr(C)]
pub struct SigAltStack {
    /// Base.
    pub sp: u64,
    /// SS_ONSTACK / SS_DISABLE.
    pub flags: i32,
    /// Padding.
    pub pad: i32,
    /// Size.
    pub size: u64,
}

/// struct sigaction as the kernel takes it (rt_sigaction).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, PartialEq, Eq)]
#[repr(C)]
pub struct SigAction {
    /// Handler or SIG_DFL/SIG_IGN.
    pub handler: u64,
    /// SA_* flags.
    pub flags: u64,
    /// Restorer.
    pub restorer: u64,
    /// Blocked during the handler.
    pub mask: u64,
}

/// struct flock (fcntl record locks).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub pad0: u32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub pad1: u32,
}

/// The `*at` calls' dirfd and flags.
pub mod at {
    /// AT_FDCWD, as the 64-bit register value a C `int` -100 arrives as.
    pub const AT_FDCWD: u64 = -100i64 as u64;
    /// Do not follow a final symlink.
    pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    /// unlinkat's AT_REMOVEDIR and faccessat's AT_EACCESS share a value.
    pub const AT_REMOVEDIR: u64 = 0x200;
    /// faccessat: check with the effective ids.
    pub const AT_EACCESS: u64 = 0x200;
    /// linkat: follow a final symlink.
    pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
    /// Do not trigger an automount.
    pub const AT_NO_AUTOMOUNT: u64 = 0x800;
    /// "" means dirfd itself.
    pub const AT_EMPTY_PATH: u64 = 0x1000;
    /// statx: the sync-type bits.
    pub const AT_STATX_SYNC_TYPE: u64 = 0x6000;
    /// statx: the reserved mask bit.
    pub const STATX_RESERVED: u64 = 0x8000_0000;
}

/// open(2) flags (x86-64 values).
pub mod oflag {
    /// O_ACCMODE.
    pub const ACCMODE: u64 = 0o3;
    /// O_RDONLY.
    pub const RDONLY: u64 = 0o0;
    /// O_WRONLY.
    pub const WRONLY: u64 = 0o1;
    /// O_RDWR.
    pub const RDWR: u64 = 0o2;
    /// O_CREAT.
    pub const CREAT: u64 = 0o100;
    /// O_EXCL.
    pub const EXCL: u64 = 0o200;
    /// O_NOCTTY.
    pub const NOCTTY: u64 = 0o400;
    /// O_TRUNC.
    pub const TRUNC: u64 = 0o1000;
    /// O_APPEND.
    pub const APPEND: u64 = 0o2000;
    /// O_NONBLOCK.
    pub const NONBLOCK: u64 = 0o4000;
    /// O_DSYNC.
    pub const DSYNC: u64 = 0o10000;
    /// O_DIRECT.
    pub const DIRECT: u64 = 0o40000;
    /// O_LARGEFILE.
    pub const LARGEFILE: u64 = 0o100000;
    /// O_DIRECTORY.
    pub const DIRECTORY: u64 = 0o200000;
    /// O_NOFOLLOW.
    pub const NOFOLLOW: u64 = 0o400000;
    /// O_NOATIME.
    pub const NOATIME: u64 = 0o1000000;
    /// O_CLOEXEC.
    pub const CLOEXEC: u64 = 0o2000000;
    /// __O_SYNC (O_SYNC is this | O_DSYNC).
    pub const SYNC: u64 = 0o4000000;
    /// O_PATH.
    pub const PATH: u64 = 0o10000000;
    /// __O_TMPFILE (O_TMPFILE is this | O_DIRECTORY).
    pub const TMPFILE: u64 = 0o20000000;
    /// Flags passed on to the host open; others (O_ASYNC: no SIGIO may reach the monitor, and
    /// bits Linux ignores) are dropped, and O_CLOEXEC is the guest's own fd flag.
    pub const PASSED: u64 = ACCMODE
        | CREAT
        | EXCL
        | NOCTTY
        | TRUNC
        | APPEND
        | NONBLOCK
        | DSYNC
        | DIRECT
        | LARGEFILE
        | DIRECTORY
        | NOFOLLOW
        | NOATIME
        | SYNC
        | TMPFILE;
    /// The flags that mean anything with O_PATH.
    pub const PATH_PASSED: u64 = PATH | DIRECTORY | NOFOLLOW;
}

/// The end of the user half of the address space, Linux's TASK_SIZE_MAX (2^47 - one page):
/// user pointers, mappings and FS/GS bases stay below it.
pub const TASK_SIZE_MAX: u64 = 0x0000_7fff_ffff_f000;

/// arch_prctl(2) codes.
pub mod arch {
    /// ARCH_SET_GS.
    pub const ARCH_SET_GS: u64 = 0x1001;
    /// ARCH_SET_FS.
    pub const ARCH_SET_FS: u64 = 0x1002;
    /// ARCH_GET_FS.
    pub const ARCH_GET_FS: u64 = 0x1003;
    /// ARCH_GET_GS.
    pub const ARCH_GET_GS: u64 = 0x1004;
}

/// Kernel `struct termios` (TCGETS/TCSETS), opaque bytes to umon.
pub const TERMIOS_BYTES: usize = 36;

/// File type bits of st_mode.
pub mod mode {
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
}

/// fcntl(2) commands.
pub mod fcntl {
    /// F_DUPFD.
    pub const F_DUPFD: u64 = 0;
    /// F_GETFD.
    pub const F_GETFD: u64 = 1;
    /// F_SETFD.
    pub const F_SETFD: u64 = 2;
    /// F_GETFL.
    pub const F_GETFL: u64 = 3;
    /// F_SETFL.
    pub const F_SETFL: u64 = 4;
    /// F_GETLK.
    pub const F_GETLK: u64 = 5;
    /// F_SETLK.
    pub const F_SETLK: u64 = 6;
    /// F_SETLKW.
    pub const F_SETLKW: u64 = 7;
    /// F_OFD_GETLK.
    pub const F_OFD_GETLK: u64 = 36;
    /// F_OFD_SETLK.
    pub const F_OFD_SETLK: u64 = 37;
    /// F_OFD_SETLKW.
    pub const F_OFD_SETLKW: u64 = 38;
    /// F_UNLCK.
    pub const F_UNLCK: i16 = 2;
    /// F_DUPFD_CLOEXEC.
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    /// FD_CLOEXEC.
    pub const FD_CLOEXEC: u64 = 1;
    /// F_SETPIPE_SZ.
    pub const F_SETPIPE_SZ: u64 = 1031;
    /// F_GETPIPE_SZ.
    pub const F_GETPIPE_SZ: u64 = 1032;
}

/// /proc/sys/fs/pipe-max-size: the largest pipe an unprivileged process may ask for (Linux's
/// default).
pub const PIPE_MAX_SIZE: u64 = 1 << 20;

/// mmap(2) and friends.
pub mod mman {
    /// PROT_READ.
    pub const PROT_READ: u32 = 1;
    /// PROT_WRITE.
    pub const PROT_WRITE: u32 = 2;
    /// PROT_EXEC.
    pub const PROT_EXEC: u32 = 4;
    /// PROT_READ | PROT_WRITE | PROT_EXEC.
    pub const PROT_BITS: u64 = 7;
    /// PROT_SEM (accepted and ignored, as on x86-64).
    pub const PROT_SEM: u64 = 0x8;
    /// PROT_GROWSDOWN.
    pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
    /// PROT_GROWSUP.
    pub const PROT_GROWSUP: u64 = 0x0200_0000;
    /// MAP_SHARED.
    pub const MAP_SHARED: u64 = 0x01;
    /// MAP_PRIVATE.
    pub const MAP_PRIVATE: u64 = 0x02;
    /// MAP_SHARED_VALIDATE.
    pub const MAP_SHARED_VALIDATE: u64 = 0x03;
    /// MAP_DROPPABLE (anonymous only).
    pub const MAP_DROPPABLE: u64 = 0x08;
    /// The mapping-type bits of the flags.
    pub const MAP_TYPE: u64 = 0x0f;
    /// MAP_FIXED.
    pub const MAP_FIXED: u64 = 0x10;
    /// MAP_ANONYMOUS.
    pub const MAP_ANONYMOUS: u64 = 0x20;
    /// MAP_FIXED_NOREPLACE.
    pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
    /// MAP_GROWSDOWN.
    pub const MAP_GROWSDOWN: u64 = 0x100;
    /// MAP_NORESERVE.
    pub const MAP_NORESERVE: u64 = 0x4000;
    /// MAP_POPULATE.
    pub const MAP_POPULATE: u64 = 0x8000;
    /// MAP_STACK.
    pub const MAP_STACK: u64 = 0x2_0000;
    /// MREMAP_MAYMOVE.
    pub const MREMAP_MAYMOVE: u64 = 1;
    /// MREMAP_FIXED.
    pub const MREMAP_FIXED: u64 = 2;
    /// MREMAP_DONTUNMAP.
    pub const MREMAP_DONTUNMAP: u64 = 4;
    /// MADV_DONTNEED.
    pub const MADV_DONTNEED: u64 = 4;
    /// MADV_REMOVE.
    pub const MADV_REMOVE: u64 = 9;
    /// MADV_HWPOISON.
    pub const MADV_HWPOISON: u64 = 100;
    /// MADV_SOFT_OFFLINE.
    pub const MADV_SOFT_OFFLINE: u64 = 101;
}

/// ioctl requests on terminals.
pub mod ioctl {
    /// TCGETS.
    pub const TCGETS: u64 = 0x5401;
    /// TCSETS.
    pub const TCSETS: u64 = 0x5402;
    /// TCSETSW.
    pub const TCSETSW: u64 = 0x5403;
    /// TCSETSF.
    pub const TCSETSF: u64 = 0x5404;
    /// TIOCGWINSZ.
    pub const TIOCGWINSZ: u64 = 0x5413;
    /// TIOCSWINSZ.
    pub const TIOCSWINSZ: u64 = 0x5414;
    /// FIONBIO.
    pub const FIONBIO: u64 = 0x5421;
    /// FIONREAD.
    pub const FIONREAD: u64 = 0x541b;
}

/// struct rusage (144 bytes).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct Rusage {
    /// User CPU time.
    pub utime: Timeval,
    /// System CPU time.
    pub stime: Timeval,
    /// ru_maxrss .. ru_nivcsw, in the kernel's order.
    pub counters: [i64; 14],
}

/// struct sysinfo (112 bytes; the padding is explicit).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub _align: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub _tail: u32,
}

const _: () = assert!(std::mem::size_of::<Rusage>() == 144);
const _: () = assert!(std::mem::size_of::<Sysinfo>() == 112);

impl Stat {
    /// The x86-64 `struct stat` of a host stat.
    pub fn from_host(s: &rustix::fs::Stat) -> Stat {
        Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            nlink: s.st_nlink,
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            pad0: 0,
            rdev: s.st_rdev,
            size: s.st_size,
            blksize: s.st_blksize,
            blocks: s.st_blocks,
            atime: s.st_atime,
            atime_nsec: s.st_atime_nsec as i64,
            mtime: s.st_mtime,
            mtime_nsec: s.st_mtime_nsec as i64,
            ctime: s.st_ctime,
            ctime_nsec: s.st_ctime_nsec as i64,
            unused: [0; 3],
        }
    }
}

/// Longest path accepted (PATH_MAX including the NUL).
pub const PATH_MAX: usize = 4096;

/// Longest path component (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// siginfo_t (128 bytes): the common head, then the union as raw words. The layouts used:
/// kill/rt {pid@0x10, uid@0x14, value@0x18}, sigfault {addr@0x10}.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, PartialEq, Eq)]
#[repr(C)]
pub struct SigInfo {
    /// si_signo.
    pub signo: i32,
    /// si_errno.
    pub errno: i32,
    /// si_code (SI_* or a fault code).
    pub code: i32,
    /// Padding before the union.
    pub pad: i32,
    /// The union, 112 bytes.
    pub fields: [u64; 14],
}

/// struct sigcontext (uapi/asm/sigcontext.h), the `uc_mcontext` of a signal frame.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct SigContext {
    /// r8..r15.
    pub r8: u64,
    /// r9.
    pub r9: u64,
    /// r10.
    pub r10: u64,
    /// r11.
    pub r11: u64,
    /// r12.
    pub r12: u64,
    /// r13.
    pub r13: u64,
    /// r14.
    pub r14: u64,
    /// r15.
    pub r15: u64,
    /// rdi.
    pub rdi: u64,
    /// rsi.
    pub rsi: u64,
    /// rbp.
    pub rbp: u64,
    /// rbx.
    pub rbx: u64,
    /// rdx.
    pub rdx: u64,
    /// rax.
    pub rax: u64,
    /// rcx.
    pub rcx: u64,
    /// rsp.
    pub rsp: u64,
    /// rip.
    pub rip: u64,
    /// rflags.
    pub eflags: u64,
    /// CS selector.
    pub cs: u16,
    /// GS selector.
    pub gs: u16,
    /// FS selector.
    pub fs: u16,
    /// SS selector.
    pub ss: u16,
    /// The fault's error code.
    pub err: u64,
    /// The fault's vector.
    pub trapno: u64,
    /// The first word of the saved mask.
    pub oldmask: u64,
    /// The fault address.
    pub cr2: u64,
    /// Where the XSAVE image is (0: none).
    pub fpstate: u64,
    /// Reserved.
    pub reserved1: [u64; 8],
}

/// struct ucontext as the kernel writes it (asm-generic/ucontext.h): a 64-bit sigmask.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct UContext {
    /// UC_* flags.
    pub flags: u64,
    /// uc_link.
    pub link: u64,
    /// The alternate stack at delivery.
    pub stack: SigAltStack,
    /// The registers.
    pub mcontext: SigContext,
    /// The mask to restore.
    pub sigmask: u64,
}

/// struct rt_sigframe (arch/x86/include/asm/sigframe.h): at the handler's rsp.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct RtSigFrame {
    /// The return address: sa_restorer.
    pub pretcode: u64,
    /// The saved context.
    pub uc: UContext,
    /// The siginfo (written with SA_SIGINFO).
    pub info: SigInfo,
}

/// struct _fpx_sw_bytes: at byte 464 of the fxsave area of a signal frame's fpstate.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct FpxSwBytes {
    /// FP_XSTATE_MAGIC1.
    pub magic1: u32,
    /// xstate_size + FP_XSTATE_MAGIC2's 4 bytes.
    pub extended_size: u32,
    /// The XSAVE features enabled (XCR0).
    pub xfeatures: u64,
    /// The size of the XSAVE image.
    pub xstate_size: u32,
    /// Reserved.
    pub padding: [u32; 7],
}

const _: () = assert!(std::mem::size_of::<SigInfo>() == 128);
const _: () = assert!(std::mem::size_of::<SigContext>() == 256);
const _: () = assert!(std::mem::size_of::<UContext>() == 304);
const _: () = assert!(std::mem::size_of::<RtSigFrame>() == 440);
const _: () = assert!(std::mem::size_of::<FpxSwBytes>() == 48);
const _: () = assert!(std::mem::offset_of!(RtSigFrame, uc) == 8);
const _: () = assert!(std::mem::offset_of!(RtSigFrame, info) == 312);
const _: () = assert!(std::mem::offset_of!(UContext, mcontext) == 40);
const _: () = assert!(std::mem::offset_of!(UContext, sigmask) == 296);
const _: () = assert!(std::mem::offset_of!(SigContext, rip) == 128);
const _: () = assert!(std::mem::offset_of!(SigContext, fpstate) == 184);

/// sigaction flags.
pub const SA_SIGINFO: u64 = 4;
/// Let the handler run on the alternate stack.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// Restart interrupted syscalls.
pub const SA_RESTART: u64 = 0x1000_0000;
/// Do not block the signal in its own handler.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// Reset to SIG_DFL on delivery.
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// sa_restorer is valid.
pub const SA_RESTORER: u64 = 0x0400_0000;
/// sigaltstack: the thread runs on the alternate stack.
pub const SS_ONSTACK: i32 = 1;
/// sigaltstack: no alternate stack.
pub const SS_DISABLE: i32 = 2;
/// sigaltstack: disarm on handler entry.
pub const SS_AUTODISARM: i32 = 1 << 31;
/// si_code: sent by kill.
pub const SI_USER: i32 = 0;
/// si_code: sent by the kernel.
pub const SI_KERNEL: i32 = 0x80;
/// si_code: sent by sigqueue.
pub const SI_QUEUE: i32 = -1;
/// si_code: sent by tkill/tgkill.
pub const SI_TKILL: i32 = -6;
/// uc_flags: the fpstate is in XSAVE layout.
pub const UC_FP_XSTATE: u64 = 1;
/// uc_flags: the sigcontext's ss is valid.
pub const UC_SIGCONTEXT_SS: u64 = 2;
/// uc_flags: sigreturn restores ss strictly.
pub const UC_STRICT_RESTORE_SS: u64 = 4;
/// fpx_sw_bytes.magic1.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// The u32 after the XSAVE image.
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

#[cfg(test)]
mod sigframe_tests {
    use super::*;
    use std::mem::offset_of;

    /// The frame's ucontext lines up with libc's ucontext_t, which handlers read.
    #[test]
    fn ucontext_matches_libc() {
        assert_eq!(
            offset_of!(UContext, mcontext),
            offset_of!(libc::ucontext_t, uc_mcontext)
        );
        assert_eq!(
            offset_of!(UContext, sigmask),
            offset_of!(libc::ucontext_t, uc_sigmask)
        );
        assert_eq!(
            offset_of!(UContext, stack),
            offset_of!(libc::ucontext_t, uc_stack)
        );
        let greg = |i: libc::c_int| {
            offset_of!(libc::ucontext_t, uc_mcontext) + 8 * usize::try_from(i).unwrap()
        };
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, rip),
            greg(libc::REG_RIP)
        );
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, rsp),
            greg(libc::REG_RSP)
        );
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, r8),
            greg(libc::REG_R8)
        );
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, eflags),
            greg(libc::REG_EFL)
        );
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, cr2),
            greg(libc::REG_CR2)
        );
        assert_eq!(
            offset_of!(UContext, mcontext) + offset_of!(SigContext, fpstate),
            offset_of!(libc::ucontext_t, uc_mcontext) + offset_of!(libc::mcontext_t, fpregs)
        );
        assert_eq!(
            std::mem::size_of::<libc::siginfo_t>(),
            std::mem::size_of::<SigInfo>()
        );
    }
}
