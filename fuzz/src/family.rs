//! The process half of the `syscall` target: structured process calls (an op byte in
//! `FAMILY_OPS..FAMILY_OPS + 8`): wait4 and waitid with pids, id types, options and output
//! pointers from the input; execve and execveat of the fixture's paths, /proc/self/exe and
//! any pointer, with argv/envp arrays built in the scratch (strings, NULL, bad and kernel
//! pointers, unterminated arrays, long strings); kill of pids, groups, -1 and INT_MIN with
//! any signal number; the process-group and session calls; fork, vfork, clone and clone3
//! process requests with flag, TLS and stack combinations.
//!
//! The harness has no KVM, so no process is ever created (fork answers EAGAIN) and no exec
//! gets past its checks into a new image unless a fixture file is a runnable ELF (none is):
//! what is fuzzed is every check before those points, and that nothing blocks (a wait with no
//! child is ECHILD at once).
use crate::input::Input;
use crate::machine::{Machine, DATA, EDGES, PATHS, PATHS_OFFSET, TEXT};

/// Op bytes `FAMILY_OPS..FAMILY_OPS + 8` are process calls.
pub const FAMILY_OPS: u8 = 0xa8;

/// Where in the data region these ops build their arrays and strings (net uses 0xb000.., longtail 0xc000..,
/// pipes 0xd000.., signals 0xe000..).
const SCRATCH: u64 = DATA.va + 0xa000;
const ARGV: u64 = SCRATCH;
const ENVP: u64 = SCRATCH + 0x100;
const STRINGS: u64 = SCRATCH + 0x200;
const OUT: u64 = SCRATCH + 0x800;
/// The kernel half.
const KERNEL: u64 = EDGES[7];

const NR_WAIT4: u64 = 61;
const NR_WAITID: u64 = 247;
const NR_EXECVE: u64 = 59;
const NR_EXECVEAT: u64 = 322;
const NR_KILL: u64 = 62;
const NR_SETPGID: u64 = 109;
const NR_GETPGID: u64 = 121;
const NR_GETSID: u64 = 124;
const NR_SETSID: u64 = 112;
const NR_GETPGRP: u64 = 111;
const NR_GETPPID: u64 = 110;
const NR_FORK: u64 = 57;
const NR_VFORK: u64 = 58;
const NR_CLONE: u64 = 56;
const NR_CLONE3: u64 = 435;

fn write(m: &Machine, va: u64, bytes: &[u8]) {
    let space = m.state.process.space();
    let _ = space.write(&m.state.machine.mem, va, bytes);
}

/// An output pointer: the scratch mostly, else NULL, the kernel half, the read-only text or
/// any argument.
fn out(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 8 {
        0 => 0,
        1 => KERNEL,
        2 => TEXT.va + u64::from(input.u16()) % TEXT.len,
        3 => m.arg(input),
        _ => OUT,
    }
}

/// A pid: self, pid 1, -1, 0, a group, INT_MIN, a small one, or any value.
fn pid(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 9 {
        0 => 0,
        1 => 1,
        2 => u64::from(u32::MAX),
        3 => (-1i64 - i64::from(input.u8() % 4)) as u64,
        4 => i32::MIN as u32 as u64,
        5 => u64::from(input.u8() % 8),
        6 => u64::from(input.u16()),
        7 => m.arg(input),
        _ => u64::from(input.u32()),
    }
}

/// A path: the fixture's table, /proc/self/exe, a script-like or empty string, or any argument.
fn path(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() {
        b @ 0..=199 => {
            let i = usize::from(b) % PATHS.len();
            let before: usize = PATHS[..i].iter().map(|p| p.len() + 1).sum();
            TEXT.va + PATHS_OFFSET + before as u64
        }
        200..=219 => string(m, input, b"/proc/self/exe"),
        220..=229 => string(m, input, b""),
        230..=239 => string(m, input, b"/proc/self/exe/"),
        _ => m.arg(input),
    }
}

/// `s` (NUL-terminated) at the next place in the string area; its address.
fn string(m: &Machine, input: &mut Input<'_>, s: &[u8]) -> u64 {
    let at = STRINGS + u64::from(input.u8() % 8) * 0x40;
    let mut bytes = s.to_vec();
    bytes.push(0);
    write(m, at, &bytes);
    at
}

/// A NULL-terminated string array at `at` (or NULL, a bad pointer, an unterminated run): its
/// address.
fn array(m: &Machine, input: &mut Input<'_>, at: u64) -> u64 {
    match input.u8() % 10 {
        0 => return 0,
        1 => return KERNEL,
        2 => return m.arg(input),
        _ => {}
    }
    let count = u64::from(input.u8() % 6);
    for i in 0..count {
        let p = match input.u8() % 8 {
            0 => KERNEL,
            1 => m.arg(input),
            2 => {
                // A long string: past MAX_ARG_STRLEN when it reaches the data's end unended.
                let at = STRINGS + 0x200;
                let len = usize::from(input.u16()) % 0x400;
                write(m, at, &vec![b'a'; len]);
                at
            }
            _ => string(m, input, b"arg"),
        };
        write(m, at + i * 8, &p.to_le_bytes());
    }
    // Terminated mostly; else whatever follows (the next op's data).
    if !input.u8().is_multiple_of(8) {
        write(m, at + count * 8, &0u64.to_le_bytes());
    }
    at
}

/// wait options: valid bits mostly, else any.
fn wait_options(input: &mut Input<'_>) -> u64 {
    match input.u8() % 5 {
        0 => 1,           // WNOHANG
        1 => 4 | 1,       // WEXITED | WNOHANG
        2 => 0x0100_0005, // WNOWAIT | WEXITED | WNOHANG
        3 => u64::from(input.u8()) << (input.u8() % 32),
        _ => u64::from(input.u32()),
    }
}

/// Run process op `k` (`op & 7`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let (nr, args): (u64, [u64; 6]) = match k {
        0 => {
            // Never a blocking wait: there is no child, but keep WNOHANG in the options
            // whenever the pid could name one (a harness change would not hang the fuzzer).
            let options = wait_options(input) | 1;
            (
                NR_WAIT4,
                [pid(m, input), out(m, input), options, out(m, input), 0, 0],
            )
        }
        1 => {
            let idtype = match input.u8() % 6 {
                i @ 0..=3 => u64::from(i),
                4 => u64::from(input.u8()),
                _ => m.arg(input),
            };
            let options = wait_options(input) | 1;
            (
                NR_WAITID,
                [
                    idtype,
                    pid(m, input),
                    out(m, input),
                    options,
                    out(m, input),
                    0,
                ],
            )
        }
        2 => {
            let p = path(m, input);
            let argv = array(m, input, ARGV);
            let envp = array(m, input, ENVP);
            (NR_EXECVE, [p, argv, envp, 0, 0, 0])
        }
        3 => {
            let dirfd = match input.u8() % 4 {
                0 => (-100i64) as u64,
                1 => m.last_fd(),
                2 => u64::from(input.u8() % 16),
                _ => m.arg(input),
            };
            let p = path(m, input);
            let argv = array(m, input, ARGV);
            let envp = array(m, input, ENVP);
            let flags = match input.u8() % 4 {
                0 => 0,
                1 => 0x1000, // AT_EMPTY_PATH
                2 => 0x100,  // AT_SYMLINK_NOFOLLOW
                _ => u64::from(input.u32()),
            };
            (NR_EXECVEAT, [dirfd, p, argv, envp, flags, 0])
        }
        4 => {
            let sig = match input.u8() {
                // SIGSTOP would stop the only thread for good: the harness has no SIGCONT.
                19 => 0,
                b @ 0..=199 => u64::from(b % 66),
                _ => u64::from(input.u32()),
            };
            (NR_KILL, [pid(m, input), sig, 0, 0, 0, 0])
        }
        5 => match input.u8() % 6 {
            0 => (NR_SETPGID, [pid(m, input), pid(m, input), 0, 0, 0, 0]),
            1 => (NR_GETPGID, [pid(m, input), 0, 0, 0, 0, 0]),
            2 => (NR_GETSID, [pid(m, input), 0, 0, 0, 0, 0]),
            3 => (NR_SETSID, [0; 6]),
            4 => (NR_GETPGRP, [0; 6]),
            _ => (NR_GETPPID, [0; 6]),
        },
        6 => {
            let flags = match input.u8() % 6 {
                0 => 17,                                // SIGCHLD: fork
                1 => 0x4000 | 0x100 | 17,               // CLONE_VFORK | CLONE_VM | SIGCHLD
                2 => 0x0120_0011,                       // glibc's fork
                3 => 17 | 0x80000,                      // CLONE_SETTLS
                4 => u64::from(input.u32()) & !0x10000, // not a thread
                _ => u64::from(input.u32()),
            };
            let tls = match input.u8() % 3 {
                0 => 0,
                1 => KERNEL,
                _ => m.arg(input),
            };
            match input.u8() % 3 {
                0 => (NR_FORK, [0; 6]),
                1 => (NR_VFORK, [0; 6]),
                _ => (
                    NR_CLONE,
                    [flags, m.arg(input), out(m, input), out(m, input), tls, 0],
                ),
            }
        }
        _ => {
            // clone3 with a struct clone_args built from the input (process requests mostly).
            let mut a = [0u64; 11];
            a[0] = match input.u8() % 4 {
                0 => 0,
                1 => 0x4000 | 0x100,
                2 => u64::from(input.u32()) & !0x10000,
                _ => input.u64(),
            };
            a[4] = match input.u8() % 4 {
                0 => 17,
                1 => 0,
                2 => 65,
                _ => u64::from(input.u8()),
            };
            a[5] = if input.u8() & 1 == 0 { 0 } else { m.arg(input) };
            a[6] = u64::from(input.u16());
            a[7] = if input.u8() & 1 == 0 { 0 } else { KERNEL };
            let bytes: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
            write(m, SCRATCH + 0x600, &bytes);
            let size = match input.u8() % 5 {
                0 => 64,
                1 => 80,
                2 => 88,
                3 => u64::from(input.u16()),
                _ => 88,
            };
            let at = if input.u8().is_multiple_of(8) {
                m.arg(input)
            } else {
                SCRATCH + 0x600
            };
            (NR_CLONE3, [at, size, 0, 0, 0, 0])
        }
    };
    m.syscall(nr, args)
}
