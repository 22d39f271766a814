//! The monitor's own sandbox: before the first guest instruction, the thread that runs the vCPU
//! (and so handles everything the guest asks for) confines itself with a seccomp filter built by
//! `seccompiler` (Firecracker's). Only the syscalls the run loop and the syscall handlers make
//! are allowed; `ioctl` only with KVM_RUN and the terminal requests forwarded for the app. Any
//! other syscall raises SIGSYS, whose handler prints one line and exits 125: a compromised or
//! buggy monitor stops instead of doing something new. `--no-seccomp` turns it off.
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use syscalls::Sysno;

/// The filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler refused the rules.
    #[error("cannot build the seccomp filter")]
    Build(#[source] seccompiler::BackendError),
    /// Compiling to BPF or installing failed.
    #[error("cannot install the seccomp filter")]
    Install(#[source] seccompiler::Error),
}

/// Syscalls allowed with any arguments.
const ALLOWED: &[Sysno] = &[
    // guest I/O and the file system of volumes
    Sysno::read,
    Sysno::write,
    Sysno::readv,
    Sysno::writev,
    Sysno::pread64,
    Sysno::pwrite64,
    Sysno::preadv,
    Sysno::pwritev,
    Sysno::lseek,
    Sysno::close,
    Sysno::fstat,
    Sysno::newfstatat,
    Sysno::statx,
    Sysno::fstatfs,
    Sysno::openat,
    Sysno::openat2,
    Sysno::getdents64,
    Sysno::mkdirat,
    Sysno::mknodat,
    Sysno::unlinkat,
    Sysno::renameat,
    Sysno::renameat2,
    Sysno::linkat,
    Sysno::symlinkat,
    Sysno::readlinkat,
    Sysno::faccessat,
    Sysno::faccessat2,
    Sysno::fchmod,
    Sysno::fchmodat,
    Sysno::fchownat,
    Sysno::getgroups,
    Sysno::sysinfo,
    Sysno::utimensat,
    Sysno::ftruncate,
    Sysno::fallocate,
    Sysno::flock,
    Sysno::fsync,
    Sysno::fdatasync,
    Sysno::fcntl,
    Sysno::dup,
    Sysno::dup3,
    Sysno::poll,
    Sysno::ppoll,
    // memory: the allocator, and giving guest pages back
    Sysno::mmap,
    Sysno::munmap,
    Sysno::mremap,
    Sysno::madvise,
    Sysno::mprotect,
    Sysno::brk,
    // time, randomness, waiting
    Sysno::clock_gettime,
    Sysno::clock_getres,
    Sysno::gettimeofday,
    Sysno::nanosleep,
    Sysno::clock_nanosleep,
    Sysno::futex,
    Sysno::sched_yield,
    Sysno::getrandom,
    // signals (the vCPU kick) and ending
    Sysno::rt_sigreturn,
    Sysno::rt_sigprocmask,
    Sysno::sigaltstack,
    Sysno::tgkill,
    Sysno::getpid,
    Sysno::gettid,
    Sysno::getuid,
    Sysno::getgid,
    Sysno::exit,
    Sysno::exit_group,
    // vCPU threads (guest threads) started from a confined vCPU thread: std::thread::spawn
    // (glibc's pthread_create: clone3, its stack and guard, rseq and the robust list; Rust's
    // std: the thread name, the stack-overflow alternate stack)
    Sysno::clone3,
    Sysno::set_robust_list,
    Sysno::rseq,
    Sysno::sched_getaffinity,
];

/// clone (glibc's fallback when clone3 is refused) only for threads: CLONE_THREAD set in
/// argument 0.
const CLONE_THREAD: u64 = 0x10000;

/// ioctl requests allowed (argument 1).
const IOCTLS: &[u64] = &[
    0xae80,      // KVM_RUN
    0x4020_ae46, // KVM_SET_USER_MEMORY_REGION: guest RAM registered as brk/mmap hand it out
    // a vCPU for a new guest thread (Machine::new_vcpu: create, or reuse and set up again)
    0xae41,      // KVM_CREATE_VCPU
    0x4008_ae90, // KVM_SET_CPUID2
    0x8138_ae83, // KVM_GET_SREGS
    0x4138_ae84, // KVM_SET_SREGS
    0x4008_ae89, // KVM_SET_MSRS
    0x41a0_ae8d, // KVM_SET_FPU
    0x4188_aea7, // KVM_SET_XCRS
    0x4090_ae82, // KVM_SET_REGS
    // the FPU/SSE/AVX state of a signal frame (delivery and rt_sigreturn)
    0x81a0_ae8c, // KVM_GET_FPU
    0x9000_aea4, // KVM_GET_XSAVE
    0x5000_aea5, // KVM_SET_XSAVE
    0x8188_aea6, // KVM_GET_XCRS
    0x5401,      // TCGETS
    0x5402,      // TCSETS
    0x5403,      // TCSETSW
    0x5404,      // TCSETSF
    0x5413,      // TIOCGWINSZ
];

/// prctl requests allowed (argument 0): rustix reads the auxiliary vector this way to find
/// the vDSO.
const PRCTLS: &[u64] = &[
    0x4155_5856, // PR_GET_AUXV
    15,          // PR_SET_NAME: std names its vCPU threads
];

/// The filter as BPF.
pub fn program() -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
        .iter()
        .map(|s| (i64::from(s.id()), Vec::new()))
        .collect();
    let ioctl_rules = IOCTLS
        .iter()
        .map(|&req| {
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(SeccompError::Build)?;
    rules.insert(i64::from(Sysno::ioctl.id()), ioctl_rules);
    let prctl_rules = PRCTLS
        .iter()
        .map(|&opt| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, opt)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(SeccompError::Build)?;
    rules.insert(i64::from(Sysno::prctl.id()), prctl_rules);
    let clone_rule = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(CLONE_THREAD),
        CLONE_THREAD,
    )
    .and_then(|c| SeccompRule::new(vec![c]))
    .map_err(SeccompError::Build)?;
    rules.insert(i64::from(Sysno::clone.id()), vec![clone_rule]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(SeccompError::Build)?;
    BpfProgram::try_from(filter).map_err(|e| SeccompError::Install(e.into()))
}

/// Confine the calling thread for good.
pub fn confine() -> Result<(), SeccompError> {
    crate::machine::host::install_sigsys_reporter();
    // rustix finds the vDSO on first use; do that now, while every syscall is still allowed.
    let _ = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let prog = program()?;
    seccompiler::apply_filter(&prog).map_err(SeccompError::Install)
}
