//! The long-tail half of the `syscall` target: structured calls (an op byte in
//! `LONGTAIL_OPS..LONGTAIL_OPS + 16`) to the families whose arguments are structures or
//! handles a random argument rarely gets right: POSIX timers (a sigevent and an itimerspec
//! built from the input, the id timer_create wrote), setitimer/getitimer and alarm,
//! memfd_create and its seals, inotify (instances, watches on the fixture's paths, masks),
//! the xattr family, the chown family, sched_*/priorities/ioprio, prctl/personality,
//! getrusage/times/sysinfo/membarrier, and flock and fcntl record locks with a struct flock
//! from the input. Every structure sits in a scratch area of the data region; each pointer
//! may instead be NULL, any argument, the kernel half, or the read-only text.
//!
//! The harness's checks apply unchanged (a value or an errno, no stray write to guest RAM, no
//! host change outside the writable volume, the real signal delivery after every call, which
//! timers now feed from their own thread). A read of a blocking inotify instance with nothing
//! queued is skipped ([`blocks`]): it would wait for ever on the only thread.
use crate::input::Input;
use crate::machine::{Machine, DATA, EDGES, PATHS, PATHS_OFFSET, TEXT};
use std::os::fd::AsFd;

/// Op bytes `LONGTAIL_OPS..LONGTAIL_OPS + 16` are long-tail calls.
pub const LONGTAIL_OPS: u8 = 0x90;

/// Where in the data region these ops put their structures (the signal ops use 0xe000..).
const SCRATCH: u64 = DATA.va + 0xc000;
/// Offsets in the scratch area: a sigevent, the id timer_create writes, an itimerspec and
/// the old one, a name, a sched_param, a struct flock, and an output area.
const SEVP: u64 = SCRATCH;
const TIMER_ID: u64 = SCRATCH + 0x80;
const NEW: u64 = SCRATCH + 0x100;
const OLD: u64 = SCRATCH + 0x140;
const NAME: u64 = SCRATCH + 0x200;
const PARAM: u64 = SCRATCH + 0x400;
const FLOCK: u64 = SCRATCH + 0x440;
const OUT: u64 = SCRATCH + 0x800;
/// The kernel half (EDGES[7]).
const KERNEL: u64 = EDGES[7];

fn write(m: &Machine, va: u64, bytes: &[u8]) {
    let space = m.state.process.space();
    let _ = space.write(&m.state.machine.mem, va, bytes);
}

/// A pointer to a structure: the scratch `at` mostly, else NULL, the kernel half, the
/// read-only text (an output there is EFAULT) or any argument.
fn ptr(m: &Machine, input: &mut Input<'_>, at: u64) -> u64 {
    match input.u8() % 10 {
        0 => 0,
        1 => KERNEL,
        2 => TEXT.va + u64::from(input.u16()) % TEXT.len,
        3 => m.arg(input),
        _ => at,
    }
}

/// An fd: the last call's result, 3.., or -1 / any value.
fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() {
        0 => m.last_fd(),
        254 => u64::MAX,
        255 => m.arg(input),
        b => u64::from(b % 16) + 2,
    }
}

/// A path: one of the fixture's table mostly, else any argument.
fn path(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() {
        b @ 0..=239 => {
            let i = usize::from(b) % PATHS.len();
            let before: usize = PATHS[..i].iter().map(|p| p.len() + 1).sum();
            TEXT.va + PATHS_OFFSET + before as u64
        }
        _ => m.arg(input),
    }
}

/// A small set of interesting i64 values for times, offsets and lengths.
fn i64v(input: &mut Input<'_>) -> i64 {
    match input.u8() % 10 {
        0 => 0,
        1 => i64::from(input.u16()),
        2 => i64::from(input.u8()).wrapping_neg(),
        3 => i64::MAX,
        4 => i64::MIN,
        5 => 999_999_999,
        6 => 1_000_000_000,
        7 => i64::from(input.u32()) * 1_000_000,
        _ => input.u64() as i64,
    }
}

/// A timespec (or timeval: the same 16 bytes) from the input, mostly valid and short.
fn time_pair(input: &mut Input<'_>) -> [i64; 2] {
    match input.u8() % 6 {
        0 => [0, 0],
        1 => [0, i64::from(input.u16())],
        2 => [0, i64::from(input.u16()) * 1000],
        3 => [i64::from(input.u8() % 4), 0],
        _ => [i64v(input), i64v(input)],
    }
}

fn pairs(a: [i64; 2], b: [i64; 2]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, v) in a.iter().chain(&b).enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// A POSIX timer id: the one timer_create last wrote, a small one, or any value.
fn timer_id(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 4 {
        0 | 1 => {
            let space = m.state.process.space();
            u64::from(
                space
                    .read_val::<u32>(&m.state.machine.mem, TIMER_ID)
                    .unwrap_or(0),
            )
        }
        2 => u64::from(input.u8() % 8),
        _ => m.arg(input),
    }
}

/// A uid or gid: unchanged (-1), root, nobody, or any value.
fn id(input: &mut Input<'_>) -> u64 {
    match input.u8() % 5 {
        0 | 1 => u64::from(u32::MAX),
        2 => 0,
        3 => 65534,
        _ => u64::from(input.u32()),
    }
}

/// A pid or tid for the scheduling calls: self, the first thread, -1, none, or any value.
fn pid(input: &mut Input<'_>) -> u64 {
    match input.u8() % 5 {
        0 | 1 => 0,
        2 => 1,
        3 => u64::MAX,
        _ => u64::from(input.u32()),
    }
}

/// Run long-tail op `k` (`op & 15`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let (nr, args): (u64, [u64; 6]) = match k {
        // timer_create(clock, sevp, idp)
        0 => {
            let clock = match input.u8() % 8 {
                c @ 0..=3 => [0, 1, 7, 2][usize::from(c)],
                4 => 3,
                5 => 11,
                6 => u64::from(input.u32()),
                // A thread CPU clock (pthread_getcpuclockid's encoding) of tid 1 or any.
                _ => {
                    let tid = if input.u8() & 1 == 0 { 1 } else { input.u32() };
                    u64::from(((!tid) << 3) | 6)
                }
            };
            let notify: u32 = match input.u8() % 6 {
                0 | 1 => 0,
                2 => 1,
                3 => 2,
                4 => 4,
                _ => input.u32(),
            };
            let signo: u32 = match input.u8() {
                b @ 0..=199 => u32::from(b % 64) + 1,
                b => u32::from(b),
            };
            let tid: u32 = if input.u8() & 1 == 0 { 1 } else { input.u32() };
            let mut sev = [0u8; 64];
            sev[0..8].copy_from_slice(&input.u64().to_le_bytes());
            sev[8..12].copy_from_slice(&signo.to_le_bytes());
            sev[12..16].copy_from_slice(&notify.to_le_bytes());
            sev[16..20].copy_from_slice(&tid.to_le_bytes());
            write(m, SEVP, &sev);
            (
                222,
                [clock, ptr(m, input, SEVP), ptr(m, input, TIMER_ID), 0, 0, 0],
            )
        }
        // timer_settime(id, flags, new, old)
        1 => {
            let id = timer_id(m, input);
            let flags = match input.u8() % 3 {
                0 => 0,
                1 => 1,
                _ => u64::from(input.u32()),
            };
            let spec = pairs(time_pair(input), time_pair(input));
            write(m, NEW, &spec);
            (
                223,
                [id, flags, ptr(m, input, NEW), ptr(m, input, OLD), 0, 0],
            )
        }
        // timer_gettime(id, out), timer_getoverrun(id), timer_delete(id)
        2 => {
            let which = input.u8() % 3;
            let id = timer_id(m, input);
            match which {
                0 => (224, [id, ptr(m, input, OLD), 0, 0, 0, 0]),
                1 => (225, [id, 0, 0, 0, 0, 0]),
                _ => (226, [id, 0, 0, 0, 0, 0]),
            }
        }
        // setitimer(which, new, old), getitimer(which, out)
        3 => {
            let set = input.u8() & 1 == 0;
            let which = match input.u8() % 5 {
                w @ 0..=3 => u64::from(w),
                _ => m.arg(input),
            };
            if set {
                let val = pairs(time_pair(input), time_pair(input));
                write(m, NEW, &val);
                (38, [which, ptr(m, input, NEW), ptr(m, input, OLD), 0, 0, 0])
            } else {
                (36, [which, ptr(m, input, OLD), 0, 0, 0, 0])
            }
        }
        // alarm(seconds)
        4 => {
            let secs = match input.u8() % 4 {
                0 => 0,
                1 => 1,
                2 => u64::from(u32::MAX),
                _ => m.arg(input),
            };
            (37, [secs, 0, 0, 0, 0, 0])
        }
        // memfd_create(name, flags)
        5 => {
            let len = usize::from(input.u8()) % 300;
            let mut name: Vec<u8> = input.bytes(len).to_vec();
            name.resize(len, b'n');
            name.push(0);
            write(m, NAME, &name);
            let flags = match input.u8() % 7 {
                0 => 0,
                1 => 3,              // MFD_CLOEXEC | MFD_ALLOW_SEALING
                2 => 4 | (21 << 26), // MFD_HUGETLB | MFD_HUGE_2MB
                3 => 0x10,           // MFD_EXEC
                4 => 0x8 | 2,        // MFD_NOEXEC_SEAL | MFD_ALLOW_SEALING
                5 => 0x18,           // both: EINVAL
                _ => u64::from(input.u32()),
            };
            (319, [ptr(m, input, NAME), flags, 0, 0, 0, 0])
        }
        // fcntl(fd, F_ADD_SEALS / F_GET_SEALS, seals)
        6 => {
            let fd = fd(m, input);
            let cmd = if input.u8() & 1 == 0 { 1033 } else { 1034 };
            let seals = match input.u8() {
                b @ 0..=191 => u64::from(b % 64),
                _ => m.arg(input),
            };
            (72, [fd, cmd, seals, 0, 0, 0])
        }
        // inotify_init1(flags)
        7 => {
            let flags = match input.u8() % 4 {
                0 | 1 => 0o4000,
                2 => 0o2004000,
                _ => u64::from(input.u32()),
            };
            (294, [flags, 0, 0, 0, 0, 0])
        }
        // inotify_add_watch(fd, path, mask)
        8 => {
            let fd = fd(m, input);
            let p = path(m, input);
            let mask = match input.u8() % 8 {
                0 => 0x100 | 0x2,         // IN_CREATE | IN_MODIFY
                1 => 0xfff,               // IN_ALL_EVENTS
                2 => 0x0100_0000 | 0x200, // IN_ONLYDIR | IN_DELETE
                3 => 0x3000_0000 | 0x100, // IN_MASK_ADD | IN_MASK_CREATE: EINVAL
                4 => 0x0200_0000,         // IN_DONT_FOLLOW alone
                5 => 0x8000_0000 | 0x4,   // IN_ONESHOT | IN_ATTRIB
                6 => 0x1000_0000 | 0x100, // IN_MASK_CREATE
                _ => u64::from(input.u32()),
            };
            (254, [fd, p, mask, 0, 0, 0])
        }
        // inotify_rm_watch(fd, wd)
        9 => {
            let fd = fd(m, input);
            let wd = match input.u8() % 3 {
                0 => 1,
                1 => u64::from(input.u8()),
                _ => m.arg(input),
            };
            (255, [fd, wd, 0, 0, 0, 0])
        }
        // the xattr family: 188..=199 (set, lset, fset, get, lget, fget, list, llist, flist,
        // remove, lremove, fremove)
        10 => {
            let nr = 188 + u64::from(input.u8() % 12);
            let on_fd = matches!(nr, 190 | 193 | 196 | 199);
            let target = if on_fd { fd(m, input) } else { path(m, input) };
            let name: &[u8] = match input.u8() % 6 {
                0 | 1 => b"user.a\0",
                2 => b"security.selinux\0",
                3 => b"\0",
                4 => b"other.a\0",
                _ => &[b'u'; 300],
            };
            write(m, NAME, name);
            write(m, NAME + name.len() as u64, &[0]);
            let name = ptr(m, input, NAME);
            let value = ptr(m, input, OUT);
            let size = match input.u8() % 5 {
                0 => 0,
                1 => 4,
                2 => 65536,
                3 => 65537,
                _ => m.arg(input),
            };
            let flags = match input.u8() % 4 {
                f @ 0..=2 => u64::from(f),
                _ => m.arg(input),
            };
            match nr {
                188..=190 => (nr, [target, name, value, size, flags, 0]),
                191..=193 => (nr, [target, name, value, size, 0, 0]),
                194..=196 => (nr, [target, value, size, 0, 0, 0]),
                _ => (nr, [target, name, 0, 0, 0, 0]),
            }
        }
        // chown(path, uid, gid), fchown(fd, ..), lchown(path, ..), fchownat(dirfd, path, .., flags)
        11 => match input.u8() % 4 {
            0 => (92, [path(m, input), id(input), id(input), 0, 0, 0]),
            1 => (93, [fd(m, input), id(input), id(input), 0, 0, 0]),
            2 => (94, [path(m, input), id(input), id(input), 0, 0, 0]),
            _ => {
                let dirfd = if input.u8() & 1 == 0 {
                    (-100i64) as u64
                } else {
                    fd(m, input)
                };
                let p = path(m, input);
                let flags = match input.u8() % 4 {
                    0 => 0,
                    1 => 0x100,  // AT_SYMLINK_NOFOLLOW
                    2 => 0x1000, // AT_EMPTY_PATH
                    _ => u64::from(input.u32()),
                };
                (260, [dirfd, p, id(input), id(input), flags, 0])
            }
        },
        // sched_*, getpriority/setpriority, ioprio_get/ioprio_set
        12 => {
            let prio = i64v(input) as i32;
            write(m, PARAM, &prio.to_le_bytes());
            let policy = match input.u8() % 8 {
                p @ 0..=6 => u64::from(p),
                _ => 0x4000_0000 | u64::from(input.u8() % 7), // SCHED_RESET_ON_FORK
            };
            let param = ptr(m, input, PARAM);
            match input.u8() % 10 {
                0 => (142, [pid(input), param, 0, 0, 0, 0]),
                1 => (143, [pid(input), param, 0, 0, 0, 0]),
                2 => (144, [pid(input), policy, param, 0, 0, 0]),
                3 => (145, [pid(input), 0, 0, 0, 0, 0]),
                4 => (146, [policy, 0, 0, 0, 0, 0]),
                5 => (147, [policy, 0, 0, 0, 0, 0]),
                6 => (140, [u64::from(input.u8() % 4), pid(input), 0, 0, 0, 0]),
                7 => (
                    141,
                    [u64::from(input.u8() % 4), pid(input), prio as u64, 0, 0, 0],
                ),
                8 => (252, [u64::from(input.u8() % 5), pid(input), 0, 0, 0, 0]),
                _ => (
                    251,
                    [
                        u64::from(input.u8() % 5),
                        pid(input),
                        u64::from(input.u16()),
                        0,
                        0,
                        0,
                    ],
                ),
            }
        }
        // prctl(option, arg2..5), personality(persona)
        13 => {
            if input.u8().is_multiple_of(5) {
                let persona = match input.u8() % 3 {
                    0 => 0xffff_ffff,
                    1 => 0,
                    _ => m.arg(input),
                };
                (135, [persona, 0, 0, 0, 0, 0])
            } else {
                let option = match input.u8() {
                    b @ 0..=63 => u64::from(b),
                    _ => m.arg(input),
                };
                let arg2 = match input.u8() % 3 {
                    0 => ptr(m, input, OUT),
                    1 => u64::from(input.u8()),
                    _ => m.arg(input),
                };
                (
                    157,
                    [option, arg2, m.arg(input), m.arg(input), m.arg(input), 0],
                )
            }
        }
        // getrusage(who, out), times(out), sysinfo(out), membarrier(cmd, flags, cpu)
        14 => match input.u8() % 4 {
            0 => {
                let who = match input.u8() % 4 {
                    0 => 0,
                    1 => 1,
                    2 => u64::MAX,
                    _ => m.arg(input),
                };
                (98, [who, ptr(m, input, OUT), 0, 0, 0, 0])
            }
            1 => (100, [ptr(m, input, OUT), 0, 0, 0, 0, 0]),
            2 => (99, [ptr(m, input, OUT), 0, 0, 0, 0, 0]),
            _ => {
                let cmd = match input.u8() % 4 {
                    0 => 0,
                    1 => 1u64 << (input.u8() % 10),
                    2 => u64::from(input.u8()),
                    _ => m.arg(input),
                };
                (324, [cmd, u64::from(input.u8() % 3), m.arg(input), 0, 0, 0])
            }
        },
        // flock(fd, op), fcntl(fd, lock cmd, struct flock)
        _ => {
            let fd = fd(m, input);
            if input.u8().is_multiple_of(4) {
                (73, [fd, u64::from(input.u8()), 0, 0, 0, 0])
            } else {
                let kind: i16 = match input.u8() % 5 {
                    t @ 0..=2 => i16::from(t),
                    _ => input.u16() as i16,
                };
                let whence: i16 = i16::from(input.u8() % 4);
                let mut fl = [0u8; 32];
                fl[0..2].copy_from_slice(&kind.to_le_bytes());
                fl[2..4].copy_from_slice(&whence.to_le_bytes());
                fl[8..16].copy_from_slice(&i64v(input).to_le_bytes());
                fl[16..24].copy_from_slice(&i64v(input).to_le_bytes());
                fl[24..28].copy_from_slice(&(input.u8() as i32).to_le_bytes());
                write(m, FLOCK, &fl);
                // F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW
                let cmd = [5, 6, 7, 36, 37, 38][usize::from(input.u8() % 6)];
                (72, [fd, cmd, ptr(m, input, FLOCK), 0, 0, 0])
            }
        }
    };
    m.syscall(nr, args)
}

/// Give the vCPU kick signal umon's treatment, a handler that does nothing: the timers fire
/// from their own host thread and kick the application's thread, here the fuzzer's own,
/// which the signal's default action would kill.
pub fn ignore_kicks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn nothing(_: libc::c_int) {}
    ONCE.call_once(|| {
        // SAFETY: the handler does nothing (async-signal-safe); it replaces the default
        // action of a real-time signal nothing else in the fuzzer uses.
        unsafe {
            libc::signal(
                umon::machine::stop::kick_signal(),
                nothing as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    });
}

/// Wait (up to a second) until no timer thread of an ended input runs: each notices within
/// 20 ms that its process is gone. LeakSanitizer, run after an input that allocated more than
/// it freed, would otherwise report the thread-local destructor list of one still running.
pub fn wait_for_timer_threads() {
    let running = || {
        std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| {
            tasks.flatten().any(|t| {
                std::fs::read(t.path().join("comm")).is_ok_and(|c| c.starts_with(b"umon-timer"))
            })
        })
    };
    for _ in 0..200 {
        if !running() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether a read of `fd` would wait for ever: a blocking host fd (an inotify instance; no
/// volume file, no standard stream here) with nothing to read.
pub fn blocks(m: &Machine, fd: u64) -> bool {
    let Ok(f) = m.state.process.fds().get(fd) else {
        return false;
    };
    if f.file.as_volume().is_some() || f.file.as_signalfd().is_some() {
        return false;
    }
    let Some(host) = f.file.host_fd() else {
        return false;
    };
    if f.file.status_flags().unwrap_or(0) & 0o4000 != 0 {
        return false;
    }
    let mut p = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&host.as_fd()),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd for the call's duration; a zero timeout never waits.
    let n = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
    n == 0
}
