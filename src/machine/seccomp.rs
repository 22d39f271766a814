//! The monitor's own sandbox: before the first guest instruction, the thread that runs the vCPU
//! (and so handles everything the guest asks for) confines itself with a seccomp filter. Only
//! the syscalls the run loop and the syscall handlers make are allowed; `ioctl` only with
//! KVM_RUN and the terminal requests forwarded for the app. Any other syscall raises SIGSYS,
//! whose handler prints one line and exits 125: a compromised or buggy monitor stops instead of
//! doing something new. `--no-seccomp` turns it off.
//!
//! The filter is a binary search over the syscall number ([`program`]): about 7 compares per
//! call and a third of the length of `seccompiler`'s linear chain, which the kernel checks and
//! JIT-compiles at every start (issue 13 plan §6); `seccompiler` installs it.
use seccompiler::{sock_filter, BpfProgram};
use syscalls::Sysno;

/// The filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The allow-list does not fit classic BPF's 8-bit forward jumps.
    #[error("cannot build the seccomp filter: a jump of {0} instructions is too long")]
    Build(usize),
    /// Installing failed.
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
    // inotify: the application's instances and watches are the monitor's
    Sysno::inotify_init1,
    Sysno::inotify_add_watch,
    Sysno::inotify_rm_watch,
    // memfd_create: the application's anonymous files are host memfds
    Sysno::memfd_create,
    // pipes: the application's pipes are host pipes of the monitor
    Sysno::pipe2,
    // the application's sockets (linux::net): host sockets of the monitor
    Sysno::socket,
    Sysno::socketpair,
    Sysno::bind,
    Sysno::listen,
    Sysno::accept4,
    Sysno::connect,
    Sysno::sendto,
    Sysno::recvfrom,
    Sysno::sendmsg,
    Sysno::recvmsg,
    Sysno::shutdown,
    Sysno::getsockname,
    Sysno::getpeername,
    Sysno::getsockopt,
    Sysno::setsockopt,
    Sysno::splice,
    Sysno::tee,
    // epoll, eventfd, timerfd: the application's are the host's on the monitor
    Sysno::epoll_create1,
    Sysno::epoll_ctl,
    Sysno::epoll_wait,
    Sysno::epoll_pwait,
    Sysno::epoll_pwait2,
    Sysno::eventfd2,
    Sysno::timerfd_create,
    Sysno::timerfd_settime,
    Sysno::timerfd_gettime,
    // membarrier: the application's barriers are the host's on the monitor
    Sysno::membarrier,
    Sysno::utimensat,
    Sysno::ftruncate,
    Sysno::fallocate,
    Sysno::flock,
    Sysno::fsync,
    Sysno::fdatasync,
    Sysno::syncfs,
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
    // MAP_SHARED memory: its file's dirty pages written back
    Sysno::msync,
    Sysno::mprotect,
    Sysno::brk,
    // time, randomness, waiting
    Sysno::clock_gettime,
    Sysno::clock_getres,
    Sysno::gettimeofday,
    Sysno::nanosleep,
    Sysno::clock_nanosleep,
    Sysno::futex,
    // The kernel makes a thread whose timed wait (a futex or sleep with a timeout) was cut by
    // a stop of umon (SIGSTOP, then SIGCONT) continue it with restart_syscall: found with the
    // exit-less server's timed park.
    Sysno::restart_syscall,
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
    // processes (linux::family): the pid table's mailbox and lifeline threads, reaping and
    // ending the monitors of the application's other processes, exec's new VM
    Sysno::pidfd_open,
    Sysno::rt_sigtimedwait,
    // signals to umon that the application takes (linux::signal::host): every syscall looks
    Sysno::rt_sigpending,
    Sysno::wait4,
    Sysno::waitid,
    Sysno::kill,
    Sysno::exit,
    Sysno::getpid,
];

/// clone as glibc calls it: pthread_create's fallback when clone3 is refused, and fork(3)
/// (a forked monitor serves a guest process: linux::family::fork).
const CLONES: &[u64] = &[
    0x003d_0f00, // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    0x0120_0011, // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
];

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
    0x8040_ae9f, // KVM_GET_VCPU_EVENTS: no signal frame over a half-delivered exception
    0x5401,      // TCGETS
    0x5402,      // TCSETS
    0x5403,      // TCSETSW
    0x5404,      // TCSETSF
    0x5413,      // TIOCGWINSZ
    0x541b,      // FIONREAD: the bytes in an application's pipe
    // a new VM: a forked monitor's over its copy of guest RAM, or exec's
    0xae01,      // KVM_CREATE_VM
    0xae03,      // KVM_CHECK_EXTENSION
    0xae04,      // KVM_GET_VCPU_MMAP_SIZE
    0xc008_ae05, // KVM_GET_SUPPORTED_CPUID
    0xaea3,      // KVM_GET_TSC_KHZ
    0xc008_ae91, // KVM_GET_CPUID2
    0xc008_ae88, // KVM_GET_MSRS
    0x8090_ae81, // KVM_GET_REGS
    0x4040_aea0, // KVM_SET_VCPU_EVENTS
    0xae00,      // KVM_GET_API_VERSION
];

/// prctl requests allowed (argument 0): rustix reads the auxiliary vector this way to find
/// the vDSO.
const PRCTLS: &[u64] = &[
    0x4155_5856, // PR_GET_AUXV
    15,          // PR_SET_NAME: std names its vCPU threads
    36,          // PR_SET_CHILD_SUBREAPER: pid 1's monitor reaps orphaned monitors
];

/// rt_sigaction signals allowed (argument 0): glibc installs its SIGSETXID handler at the
/// process's first pthread_create, which may be a confined vCPU thread's (the first guest
/// thread, the exit-less server, the intake of signals to umon).
const SIGACTIONS: &[u64] = &[
    33, // glibc's SIGSETXID (SIGRTMIN + 1)
];

/// `seccomp_data.arch` of x86-64 (`AUDIT_ARCH_X86_64`).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Offsets into `struct seccomp_data`: nr, arch, then args[6] of 8 bytes (the low half first).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

/// What a syscall number gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    /// Allowed if the low 32 bits of argument `arg` are one of `values`.
    ArgIn {
        arg: u32,
        values: &'static [u64],
    },
}

/// The allow-list as (syscall number, verdict), sorted, every other number trapping.
fn verdicts() -> Vec<(u32, Verdict)> {
    let mut list: Vec<(u32, Verdict)> = ALLOWED
        .iter()
        .map(|s| (s.id() as u32, Verdict::Allow))
        .collect();
    list.push((
        Sysno::ioctl.id() as u32,
        Verdict::ArgIn {
            arg: 1,
            values: IOCTLS,
        },
    ));
    list.push((
        Sysno::prctl.id() as u32,
        Verdict::ArgIn {
            arg: 0,
            values: PRCTLS,
        },
    ));
    list.push((
        Sysno::rt_sigaction.id() as u32,
        Verdict::ArgIn {
            arg: 0,
            values: SIGACTIONS,
        },
    ));
    list.push((
        Sysno::clone.id() as u32,
        Verdict::ArgIn {
            arg: 0,
            values: CLONES,
        },
    ));
    list.sort_unstable_by_key(|&(nr, _)| nr);
    list.dedup_by_key(|&mut (nr, _)| nr);
    list
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A program under construction whose jumps name instruction indexes, resolved at the end.
struct Asm {
    code: Vec<sock_filter>,
    /// (instruction, jt target, jf target) of each conditional jump.
    jumps: Vec<(usize, usize, usize)>,
}

impl Asm {
    fn jump(&mut self, op: u32, k: u32, jt: usize, jf: usize) {
        self.jumps.push((self.code.len(), jt, jf));
        self.code.push(stmt(libc::BPF_JMP | op | libc::BPF_K, k));
    }

    /// Decide among `runs` (each: its first syscall number and the target of the numbers up
    /// to the next run), `at` being where this node goes; returns the index after the subtree.
    /// A node compares with the middle run's first number: classic BPF jumps only forward, so
    /// both subtrees follow their node.
    fn search(&mut self, runs: &[(u32, usize)]) -> usize {
        let at = self.code.len();
        if let [(_, target)] = runs {
            return *target;
        }
        let mid = runs.len() / 2;
        self.code.push(stmt(0, 0));
        let below = self.search(&runs[..mid]);
        let above = self.search(&runs[mid..]);
        self.jumps.push((at, above, below));
        self.code[at] = stmt(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, runs[mid].0);
        at
    }

    fn finish(mut self) -> Result<BpfProgram, SeccompError> {
        for (at, jt, jf) in self.jumps {
            let offset = |to: usize| {
                let off = to.checked_sub(at + 1).ok_or(SeccompError::Build(0))?;
                u8::try_from(off).map_err(|_| SeccompError::Build(off))
            };
            self.code[at].jt = offset(jt)?;
            self.code[at].jf = offset(jf)?;
        }
        Ok(self.code)
    }
}

/// The filter as BPF: a wrong architecture kills the process, then a binary search over the
/// runs of equally treated syscall numbers leads to allow, trap or one of the argument checks.
pub fn program() -> Result<BpfProgram, SeccompError> {
    let list = verdicts();
    // Targets are placeholders until the search tree's length is known: ALLOW, TRAP, and the
    // argument checks in list order (CHECK0, CHECK0 - 1, ...).
    const ALLOW: usize = usize::MAX;
    const TRAP: usize = usize::MAX - 1;
    const CHECK0: usize = usize::MAX - 2;
    let checks: Vec<Verdict> = list
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| *v != Verdict::Allow)
        .collect();
    let target = |v: Verdict| match v {
        Verdict::Allow => ALLOW,
        other => checks
            .iter()
            .position(|&c| c == other)
            .map_or(TRAP, |i| CHECK0 - i),
    };
    // Runs: where the treatment changes, from number 0 up.
    let mut runs: Vec<(u32, usize)> = Vec::new();
    let mut next = 0u32;
    for &(nr, v) in &list {
        if nr > next {
            push_run(&mut runs, next, TRAP);
        }
        push_run(&mut runs, nr, target(v));
        next = nr + 1;
    }
    push_run(&mut runs, next, TRAP);

    let mut asm = Asm {
        code: vec![
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_ARCH),
            stmt(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                AUDIT_ARCH_X86_64,
            ),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, DATA_NR),
        ],
        jumps: Vec::new(),
    };
    asm.code[1].jt = 1;
    let root = asm.search(&runs);
    if root != 4 {
        // One run only (never so: the list allows something): an always-true compare to it.
        asm.jump(libc::BPF_JGE, 0, root, root);
    }
    // The shared returns and the argument checks follow the tree.
    let allow = asm.code.len();
    asm.code
        .push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    let trap = asm.code.len();
    asm.code
        .push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRAP));
    // Each check ends in its own returns (jumps only go forward): trap, then allow.
    let mut check_at = Vec::new();
    for check in &checks {
        check_at.push(asm.code.len());
        let (arg, compares) = match *check {
            Verdict::ArgIn { arg, values } => (arg, values.len()),
            Verdict::Allow => continue,
        };
        asm.code.push(stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            DATA_ARGS + 8 * arg,
        ));
        let deny = asm.code.len() + compares;
        match *check {
            Verdict::ArgIn { values, .. } => {
                for &v in values {
                    let next = asm.code.len() + 1;
                    asm.jump(libc::BPF_JEQ, v as u32, deny + 1, next);
                }
            }
            Verdict::Allow => {}
        }
        asm.code
            .push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRAP));
        asm.code
            .push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    }
    // Resolve the placeholders.
    let first_check = CHECK0 + 1 - checks.len();
    for (_, jt, jf) in asm.jumps.iter_mut() {
        for t in [jt, jf] {
            *t = match *t {
                ALLOW => allow,
                TRAP => trap,
                i if i >= first_check => check_at[CHECK0 - i],
                i => i,
            };
        }
    }
    asm.finish()
}

/// Add a run starting at `nr`, merged with the one before if it leads to the same place.
fn push_run(runs: &mut Vec<(u32, usize)>, nr: u32, target: usize) {
    if runs.last().is_none_or(|&(_, t)| t != target) {
        runs.push((nr, target));
    }
}

/// Confine the calling thread for good.
pub fn confine() -> Result<(), SeccompError> {
    crate::machine::host::install_sigsys_reporter();
    // rustix finds the vDSO on first use; do that now, while every syscall is still allowed.
    let _ = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let prog = program()?;
    seccompiler::apply_filter(&prog).map_err(SeccompError::Install)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;

    /// The filter as `seccompiler` built it before the binary search: the reference semantics.
    fn reference() -> BpfProgram {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
            .iter()
            .map(|s| (i64::from(s.id()), Vec::new()))
            .collect();
        let eq = |arg: u8, values: &[u64]| {
            values
                .iter()
                .map(|&v| {
                    let c =
                        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)
                            .unwrap();
                    SeccompRule::new(vec![c]).unwrap()
                })
                .collect::<Vec<_>>()
        };
        rules.insert(i64::from(Sysno::ioctl.id()), eq(1, IOCTLS));
        rules.insert(i64::from(Sysno::prctl.id()), eq(0, PRCTLS));
        rules.insert(i64::from(Sysno::clone.id()), eq(0, CLONES));
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Trap,
            SeccompAction::Allow,
            TargetArch::x86_64,
        )
        .unwrap();
        BpfProgram::try_from(filter).unwrap()
    }

    /// Run classic BPF as the kernel does, for the instructions these filters use.
    fn run(prog: &[sock_filter], data: &[u8; 64]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc].clone();
            let code = u32::from(i.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = i.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= i.k,
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf })
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += usize::from(if a >= i.k { i.jt } else { i.jf })
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                other => panic!("instruction {other:#x} not modelled"),
            }
        }
    }

    fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_le_bytes());
        d[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        d
    }

    /// Every syscall number, the x32 and i386 ones, and for each the argument values the checks
    /// look at (with the high halves set and not, one off, zero): the same verdict as the
    /// reference, and a program under a third of its length.
    #[test]
    fn the_search_decides_as_the_linear_chain() {
        let (ours, reference) = (program().unwrap(), reference());
        assert!(
            ours.len() * 3 < reference.len(),
            "{} vs {}",
            ours.len(),
            reference.len()
        );
        let mut values: Vec<u64> = IOCTLS.iter().chain(PRCTLS).chain(CLONES).copied().collect();
        values.extend([0, 1, 0x10000, 0x10011, !0x10000, u64::MAX]);
        let values: Vec<u64> = values
            .iter()
            .flat_map(|&v| {
                [
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v | (7 << 32),
                    v & 0xffff_0000,
                ]
            })
            .collect();
        let numbers = (0..1024).chain([0x4000_0000, 0x4000_0010, 0x7fff_ffff, u32::MAX]);
        let mut allowed = 0;
        for nr in numbers {
            for arch in [AUDIT_ARCH_X86_64, 0x4000_0003] {
                for &v in &values {
                    for args in [[v, 0, 0, 0, 0, 0], [0, v, 0, 0, 0, 0], [v, v, v, v, v, v]] {
                        let d = data(arch, nr, args);
                        let got = run(&ours, &d);
                        assert_eq!(got, run(&reference, &d), "nr {nr} arch {arch:#x} {args:x?}");
                        allowed += usize::from(got == libc::SECCOMP_RET_ALLOW);
                    }
                }
            }
        }
        assert!(allowed > 0);
    }
}
