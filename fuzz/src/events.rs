//! The event-loop half of the `syscall` target: structured calls (an op byte in
//! `EVENT_OPS..EVENT_OPS + 8`) to epoll, eventfd and timerfd, and the taming that keeps any of
//! them, structured or raw, from waiting for ever on the harness's only thread.
//!
//! An event op is `0x80 | k` (k < 8): epoll_create1/epoll_create, epoll_ctl (an epoll_event
//! with mostly valid bits in the scratch, or any pointer; op and fds mostly valid),
//! epoll_wait/epoll_pwait/epoll_pwait2 (maxevents around the limits, an events array in a
//! region or anywhere, a sigset and its size, a timespec), eventfd2, a read or write of an
//! eventfd or timerfd (values around the overflow), timerfd_create (every clock id and more),
//! timerfd_settime (a setting in the scratch with short times, abstime/cancel flags, the old
//! one anywhere) and timerfd_gettime, and fcntl/dup/close of those fds.
//!
//! Taming ([`may_run`]): an epoll wait that could sleep runs only when its instance already
//! has an event (or with a timeout of at most a millisecond); a read of a blocking eventfd or
//! timerfd only when it is readable; a write to a blocking eventfd only when the value fits
//! (it would wait for a reader otherwise). Everything that fails at once still runs.
use crate::input::Input;
use crate::machine::{Machine, AREAS, DATA, EDGES};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Op bytes `EVENT_OPS..EVENT_OPS + 8` are event-loop calls.
pub const EVENT_OPS: u8 = 0x80;

/// Where in the data region these ops put their structures (the pipe ops use 0xd000..,
/// the signal ops 0xe000..).
const SCRATCH: u64 = DATA.va + 0xf000;
const EVENT: u64 = SCRATCH;
const SIGSET: u64 = SCRATCH + 0x20;
const TIMESPEC: u64 = SCRATCH + 0x40;
const NEW: u64 = SCRATCH + 0x60;
const OUT: u64 = SCRATCH + 0x100;

const NR_READ: u64 = 0;
const NR_WRITE: u64 = 1;
const NR_CLOSE: u64 = 3;
const NR_READV: u64 = 19;
const NR_WRITEV: u64 = 20;
const NR_DUP: u64 = 32;
const NR_FCNTL: u64 = 72;
const NR_EPOLL_CREATE: u64 = 213;
const NR_EPOLL_WAIT: u64 = 232;
const NR_EPOLL_CTL: u64 = 233;
const NR_TIMERFD_CREATE: u64 = 283;
const NR_TIMERFD_SETTIME: u64 = 286;
const NR_TIMERFD_GETTIME: u64 = 287;
const NR_EPOLL_PWAIT: u64 = 281;
const NR_EVENTFD2: u64 = 290;
const NR_EPOLL_CREATE1: u64 = 291;
const NR_PREADV: u64 = 295;
const NR_PWRITEV: u64 = 296;
const NR_EPOLL_PWAIT2: u64 = 441;
const O_NONBLOCK: u64 = 0o4000;

/// Whether the host fd behind guest fd `fd` has any of `events` now.
fn host_ready(fd: BorrowedFd<'_>, events: i16) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call; timeout 0.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & events != 0
}

/// What kind of event fd guest fd `fd` is, and whether it blocks.
#[derive(PartialEq)]
enum Kind {
    Epoll,
    EventFd,
    TimerFd,
}

fn kind(m: &Machine, fd: u64) -> Option<(Kind, bool)> {
    let f = m.state.process.fds().get(fd).ok()?;
    let blocking = f.file.status_flags().unwrap_or(0) & O_NONBLOCK == 0;
    let link = umon::linux::fs::synthetic::fd_link_text(&f.file);
    let k = if f.file.as_epoll().is_some() {
        Kind::Epoll
    } else if f.file.as_timerfd().is_some() {
        Kind::TimerFd
    } else if link == b"anon_inode:[eventfd]" {
        Kind::EventFd
    } else {
        return None;
    };
    Some((k, blocking))
}

/// Whether guest fd `fd` (with a host fd) has any of `events`.
fn ready(m: &Machine, fd: u64, events: i16) -> bool {
    let Ok(f) = m.state.process.fds().get(fd) else {
        return true;
    };
    f.file.host_fd().is_none_or(|h| host_ready(h, events))
}

fn read_u64(m: &Machine, va: u64) -> Option<u64> {
    let space = m.state.process.space();
    space.read_val::<u64>(&m.state.machine.mem, va).ok()
}

/// The counter of the eventfd behind guest fd `fd`, from the host's fdinfo.
fn eventfd_count(m: &Machine, fd: u64) -> Option<u64> {
    let f = m.state.process.fds().get(fd).ok()?;
    let h = f.file.host_fd()?;
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", h.as_raw_fd())).ok()?;
    let line = text.lines().find(|l| l.starts_with("eventfd-count:"))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

/// Whether an epoll wait of instance `fd` with timeout `short` (at most a millisecond) ends
/// at once: a bad fd or kind fails, a ready instance returns.
fn wait_ends(m: &Machine, fd: u64, short: bool) -> bool {
    match kind(m, fd) {
        Some((Kind::Epoll, _)) => short || ready(m, fd, libc::POLLIN),
        _ => true,
    }
}

/// Whether syscall `nr` with arguments `a` may run: false when it is an event-loop call that
/// could wait for ever (see the module docs).
pub fn may_run(m: &Machine, nr: u64, a: [u64; 6]) -> bool {
    match nr {
        NR_EPOLL_WAIT | NR_EPOLL_PWAIT => {
            let ms = a[3] as i32;
            wait_ends(m, a[0], (0..=1).contains(&ms))
        }
        NR_EPOLL_PWAIT2 => {
            let short = a[3] != 0
                && match m
                    .state
                    .process
                    .space()
                    .read_val::<[i64; 2]>(&m.state.machine.mem, a[3])
                {
                    Ok([s, ns]) => {
                        s < 0 || !(0..1_000_000_000).contains(&ns) || (s == 0 && ns <= 1_000_000)
                    }
                    Err(_) => true,
                };
            wait_ends(m, a[0], short)
        }
        NR_READ | NR_READV | NR_PREADV => match kind(m, a[0]) {
            Some((Kind::EventFd | Kind::TimerFd, true)) => ready(m, a[0], libc::POLLIN),
            _ => true,
        },
        NR_WRITE => match kind(m, a[0]) {
            Some((Kind::EventFd, true)) if a[2] >= 8 => match read_u64(m, a[1]) {
                // u64::MAX is EINVAL at once; anything else waits unless it fits.
                Some(v) if v != u64::MAX => {
                    eventfd_count(m, a[0]).is_some_and(|c| v < u64::MAX - c)
                }
                _ => true,
            },
            _ => true,
        },
        // writev of a blocking eventfd: its value is harder to find; skipped.
        NR_WRITEV | NR_PWRITEV => !matches!(kind(m, a[0]), Some((Kind::EventFd, true))),
        _ => true,
    }
}

/// Write `bytes` at `va` in the data region.
fn put(m: &mut Machine, va: u64, bytes: &[u8]) {
    m.poke(1, va - DATA.va, bytes);
}

/// An fd: the last result, a small number, or any byte.
fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 8 {
        0..=3 => m.last_fd(),
        4..=6 => u64::from(input.u8() % 16),
        _ => u64::from(input.u32()),
    }
}

/// A pointer: a scratch slot (usually), a region, the kernel half, or any argument.
fn ptr(m: &Machine, input: &mut Input<'_>, slot: u64) -> u64 {
    match input.u8() % 8 {
        0..=4 => slot,
        5 => AREAS[usize::from(input.u8() % 4)].va + u64::from(input.u16()),
        6 => EDGES[usize::from(input.u8()) % EDGES.len()],
        _ => m.arg(input),
    }
}

/// epoll event bits: mostly the valid ones, sometimes anything.
fn events(input: &mut Input<'_>) -> u32 {
    const VALID: u32 =
        0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x2000 | (1 << 28) | (1 << 29) | (1 << 30) | (1 << 31);
    match input.u8() % 4 {
        0 => input.u32(),
        _ => input.u32() & VALID,
    }
}

/// A setting with short times (a timer that fires while the input runs, or never).
fn itimerspec(input: &mut Input<'_>) -> [i64; 4] {
    let mut t = [0i64; 4];
    for v in t.iter_mut() {
        *v = match input.u8() % 8 {
            0 => 0,
            1 => i64::from(input.u32() % 2_000_000),
            2 => 1_000_000_000,
            3 => -1,
            4 => input.u64() as i64,
            _ => i64::from(input.u16()),
        };
    }
    // Seconds short (or negative, EINVAL): at most one.
    t[0] = t[0].clamp(-1, 1);
    t[2] = t[2].clamp(-1, 1);
    t
}

/// Run event op `k` (`op & 7`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let (nr, args): (u64, [u64; 6]) = match k {
        0 => match input.u8() % 3 {
            0 => (NR_EPOLL_CREATE, [u64::from(input.u32()), 0, 0, 0, 0, 0]),
            1 => (NR_EPOLL_CREATE1, [0o2000000, 0, 0, 0, 0, 0]),
            _ => (NR_EPOLL_CREATE1, [u64::from(input.u32()), 0, 0, 0, 0, 0]),
        },
        1 => {
            let mut ev = events(input).to_le_bytes().to_vec();
            ev.extend_from_slice(&input.u64().to_le_bytes());
            put(m, EVENT, &ev);
            let (ep, target) = (fd(m, input), fd(m, input));
            let op = match input.u8() % 8 {
                0..=2 => 1,
                3 | 4 => 3,
                5 | 6 => 2,
                _ => u64::from(input.u32()),
            };
            (NR_EPOLL_CTL, [ep, op, target, ptr(m, input, EVENT), 0, 0])
        }
        2 => {
            let ep = fd(m, input);
            let max = match input.u8() % 6 {
                0 => 0,
                1 => 1,
                2 => 64,
                3 => u64::from(i32::MAX as u32 / 12),
                4 => u64::from(i32::MAX as u32 / 12 + 1),
                _ => u64::from(input.u32()),
            };
            let out = ptr(m, input, OUT);
            put(m, SIGSET, &input.u64().to_le_bytes());
            let size = if input.u8().is_multiple_of(4) {
                u64::from(input.u8())
            } else {
                8
            };
            let sigset = if input.u8() & 1 == 0 {
                0
            } else {
                ptr(m, input, SIGSET)
            };
            match input.u8() % 3 {
                0 => (NR_EPOLL_WAIT, [ep, out, max, 0, 0, 0]),
                1 => (NR_EPOLL_PWAIT, [ep, out, max, 0, sigset, size]),
                _ => {
                    let ts = [0i64, i64::from(input.u32() % 1_100_000_000)];
                    let mut b = ts[0].to_le_bytes().to_vec();
                    b.extend_from_slice(&ts[1].to_le_bytes());
                    put(m, TIMESPEC, &b);
                    let at = if input.u8().is_multiple_of(4) {
                        0
                    } else {
                        ptr(m, input, TIMESPEC)
                    };
                    (NR_EPOLL_PWAIT2, [ep, out, max, at, sigset, size])
                }
            }
        }
        3 => {
            let flags = match input.u8() % 4 {
                0 => 0,
                1 => 0o4000 | 1,
                2 => 0o2000000 | 0o4000,
                _ => u64::from(input.u32()),
            };
            (NR_EVENTFD2, [u64::from(input.u32()), flags, 0, 0, 0, 0])
        }
        4 => {
            let f = fd(m, input);
            let v = match input.u8() % 4 {
                0 => u64::MAX,
                1 => u64::MAX - 1,
                2 => u64::from(input.u8()),
                _ => input.u64(),
            };
            put(m, OUT, &v.to_le_bytes());
            let len = match input.u8() % 4 {
                0 => 4,
                1 => u64::from(input.u16()),
                _ => 8,
            };
            let b = ptr(m, input, OUT);
            let nr = if input.u8() & 1 == 0 {
                NR_READ
            } else {
                NR_WRITE
            };
            (nr, [f, b, len, 0, 0, 0])
        }
        5 => {
            let clock = match input.u8() % 4 {
                0 => u64::from(input.u8() % 16),
                1 => 1,
                2 => u64::from(input.u32()),
                _ => 0,
            };
            let flags = match input.u8() % 3 {
                0 => 0o4000,
                1 => 0,
                _ => u64::from(input.u32()),
            };
            (NR_TIMERFD_CREATE, [clock, flags, 0, 0, 0, 0])
        }
        6 => {
            let f = fd(m, input);
            let t = itimerspec(input);
            let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            put(m, NEW, &bytes);
            let flags = match input.u8() % 4 {
                0 => 1,
                1 => 3,
                2 => u64::from(input.u32()),
                _ => 0,
            };
            let old = if input.u8() & 1 == 0 {
                0
            } else {
                ptr(m, input, OUT)
            };
            if input.u8().is_multiple_of(4) {
                (NR_TIMERFD_GETTIME, [f, ptr(m, input, OUT), 0, 0, 0, 0])
            } else {
                (
                    NR_TIMERFD_SETTIME,
                    [f, flags, ptr(m, input, NEW), old, 0, 0],
                )
            }
        }
        _ => {
            let f = fd(m, input);
            match input.u8() % 4 {
                0 => (NR_CLOSE, [f, 0, 0, 0, 0, 0]),
                1 => (NR_DUP, [f, 0, 0, 0, 0, 0]),
                2 => (
                    NR_FCNTL,
                    [f, 4, u64::from(input.u8() & 1) * O_NONBLOCK, 0, 0, 0],
                ),
                _ => (NR_FCNTL, [f, 3, 0, 0, 0, 0]),
            }
        }
    };
    m.syscall(nr, args)
}

#[cfg(test)]
mod tests {
    use crate::machine::{run_syscall, Ended};

    #[test]
    fn event_ops_create_add_wait_and_read() {
        let mut data = vec![1u8]; // --trace
        data.extend([0x80, 1]); // epoll_create1(EPOLL_CLOEXEC)
        data.extend([0x83, 1, 2, 0, 0, 0]); // eventfd2(2, EFD_NONBLOCK | EFD_SEMAPHORE)
                                            // epoll_ctl(ep, ADD, efd, {EPOLLIN, 7})
        data.extend([
            0x81, 1, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 4, 3, 4, 4, 0, 0,
        ]);
        // epoll_wait(ep, OUT, 64, 0)
        data.extend([0x82, 4, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        for _ in 0..3 {
            data.extend([0x84, 4, 4, 2, 0, 2, 0, 0]); // read(efd, OUT, 8)
        }
        // A raw epoll_wait(3, DATA + 0xf100, 1, -1): nothing ready, so the harness skips it.
        data.extend([0, 0xe8, 0, 17, 0, 2, 0, 0xf1, 6, 1, 7, 1, 6, 0, 6, 0]);
        let m = run_syscall(&data);
        assert!(!matches!(m.ended, Some(Ended::Error(_))), "{:?}", m.ended);
        let t = String::from_utf8_lossy(&m.stderr.lock().unwrap()).into_owned();
        for line in [
            "epoll_create1(EPOLL_CLOEXEC) = 3",
            "eventfd2(2, 0x801) = 4",
            "epoll_ctl(3, EPOLL_CTL_ADD, 4, {events=EPOLLIN, ",
            "epoll_wait(3, ",
            ", 64, 0) = 1",
            "read(4, ",
            "= -1 EAGAIN",
        ] {
            assert!(t.contains(line), "no {line:?} in the trace:\n{t}");
        }
        assert_eq!(t.matches(", 8) = 8").count(), 2, "{t}");
        assert!(!t.contains(", 1, -1)"), "a wait for ever ran:\n{t}");
    }
}
