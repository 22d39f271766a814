//! The pipe half of the `syscall` target: structured pipe calls (an op byte in
//! `PIPE_OPS..PIPE_OPS + 8`) and the taming that keeps any pipe call, structured or raw, from
//! waiting for ever on the harness's only thread.
//!
//! A pipe op is `0xa0 | k` (k < 8), then what call `k` needs from the input: pipe2 (the fd
//! array in the data region's scratch, or anywhere; flags mostly valid), write and writev to a
//! pipe end, read and readv, splice between the pipe ends, a volume file and the other pipe
//! (offset pointers in the scratch or anywhere), tee, vmsplice either way, and the pipe fcntls
//! and ioctls (F_GETPIPE_SZ, F_SETPIPE_SZ with sizes around the limits, F_SETFL with O_NONBLOCK
//! and O_DIRECT, FIONREAD, FIONBIO), dup/close of an end.
//!
//! Taming: a call on a blocking pipe end that would wait is skipped: a read, readv, preadv,
//! vmsplice from, splice or tee from an empty pipe that still has writers; a write, writev,
//! pwritev, vmsplice to, splice or tee into a pipe with readers and not room enough (room is
//! counted as Linux fills pages: a write of up to one page when poll says POLLOUT, else what
//! is left after two partly filled pages). The call still runs whenever it would not wait.
use crate::input::Input;
use crate::machine::{Machine, AREAS, DATA};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Op bytes `PIPE_OPS..PIPE_OPS + 8` are pipe calls.
pub const PIPE_OPS: u8 = 0xa0;

/// Where in the data region the pipe ops put the fd array, offsets and iovecs.
const SCRATCH: u64 = DATA.va + 0xd000;
const PAGE: u64 = 4096;

const NR_READ: u64 = 0;
const NR_WRITE: u64 = 1;
const NR_READV: u64 = 19;
const NR_WRITEV: u64 = 20;
const NR_DUP: u64 = 32;
const NR_FCNTL: u64 = 72;
const NR_IOCTL: u64 = 16;
const NR_CLOSE: u64 = 3;
const NR_PIPE2: u64 = 293;
const NR_PREADV: u64 = 295;
const NR_PWRITEV: u64 = 296;
const NR_SPLICE: u64 = 275;
const NR_TEE: u64 = 276;
const NR_VMSPLICE: u64 = 278;
const O_NONBLOCK: u64 = 0o4000;
const SPLICE_F_NONBLOCK: u64 = 2;

/// The host fd of the pipe end behind guest fd `fd` when it is the `write` end (else the read
/// end) and blocks.
fn end(m: &Machine, fd: u64, write: bool) -> Option<i32> {
    let f = m.state.process.fds().get(fd).ok()?;
    let p = f.file.as_pipe()?;
    let blocking = f.file.status_flags().unwrap_or(0) & O_NONBLOCK == 0;
    (blocking && p.is_write() == write).then(|| p.fd().as_raw_fd())
}

fn poll_now(fd: i32, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call; timeout 0.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r < 0 {
        0
    } else {
        p.revents
    }
}

/// Whether a read from pipe fd `fd` would wait: nothing in it and a writer left.
fn read_waits(m: &Machine, fd: u64, nonblock_flag: bool) -> bool {
    match end(m, fd, false) {
        Some(h) if !nonblock_flag => poll_now(h, libc::POLLIN) == 0,
        _ => false,
    }
}

/// Whether writing `len` bytes to pipe fd `fd` would wait (see the module docs).
fn write_waits(m: &Machine, fd: u64, len: u64, nonblock_flag: bool) -> bool {
    let Some(h) = end(m, fd, true) else {
        return false;
    };
    if nonblock_flag {
        return false;
    }
    let ev = poll_now(h, libc::POLLOUT);
    if ev & libc::POLLERR != 0 {
        return false; // no reader: EPIPE at once
    }
    if ev & libc::POLLOUT == 0 {
        return true;
    }
    if len <= PAGE {
        return false;
    }
    // SAFETY: the fd is the open host pipe behind a guest fd; F_GETPIPE_SZ takes no pointer.
    let size = unsafe { libc::fcntl(h, libc::F_GETPIPE_SZ) }.max(0) as u64;
    // SAFETY: h is open for the borrow below.
    let waiting = umon::linux::fd::pipe::unread(unsafe { BorrowedFd::borrow_raw(h) })
        .unwrap_or(0)
        .max(0) as u64;
    len > size.saturating_sub(waiting).saturating_sub(2 * PAGE)
}

/// What the iovecs at `va` add up to (0 when unreadable).
fn iov_total(m: &Machine, va: u64, count: u64) -> u64 {
    let space = m.state.process.space();
    (0..(count & 0xffff_ffff).min(1024))
        .map(|i| {
            space
                .read_val::<[u64; 2]>(&m.state.machine.mem, va.wrapping_add(i * 16))
                .map(|iov| iov[1])
                .unwrap_or(0)
        })
        .fold(0u64, u64::saturating_add)
}

/// Whether syscall `nr` with arguments `a` (rdi, rsi, rdx, r10, r8, r9) may run: false when
/// it is a pipe call that would wait for ever.
pub fn may_run(m: &Machine, nr: u64, a: [u64; 6]) -> bool {
    let nb = |flags: u64| flags & SPLICE_F_NONBLOCK != 0;
    match nr {
        NR_READ | NR_READV | NR_PREADV => !read_waits(m, a[0], false),
        NR_WRITE => !write_waits(m, a[0], a[2], false),
        NR_WRITEV | NR_PWRITEV => !write_waits(m, a[0], iov_total(m, a[1], a[2]), false),
        NR_VMSPLICE => {
            !(read_waits(m, a[0], nb(a[3]))
                || write_waits(m, a[0], iov_total(m, a[1], a[2]), nb(a[3])))
        }
        NR_SPLICE | NR_TEE => {
            let (fin, fout, len, flags) = if nr == NR_SPLICE {
                (a[0], a[2], a[4], a[5])
            } else {
                (a[0], a[1], a[2], a[3])
            };
            // A pipe's own O_NONBLOCK counts too for splice; only SPLICE_F_NONBLOCK is sure.
            let n = nb(flags);
            // Into a pipe: one page of room is all a move needs to start.
            !(read_waits(m, fin, n) || write_waits(m, fout, len.min(PAGE), n))
        }
        _ => true,
    }
}

/// A pipe fd: one of the last pipe2's (in the scratch), the last result, or 3.. by the input.
fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    let space = m.state.process.space();
    let pair = space
        .read_val::<[i32; 2]>(&m.state.machine.mem, SCRATCH)
        .unwrap_or([3, 4]);
    drop(space);
    match input.u8() % 8 {
        0..=2 => pair[0] as u32 as u64,
        3..=5 => pair[1] as u32 as u64,
        6 => m.last_fd(),
        _ => u64::from(input.u8()),
    }
}

/// A guest buffer: in a region (data, stack, arena; sometimes the read-only text) or any
/// argument the main decoder would make.
fn buf(m: &mut Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 4 {
        0 => m.arg(input),
        b => AREAS[usize::from(b)].va + u64::from(input.u16()),
    }
}

fn len(input: &mut Input<'_>) -> u64 {
    match input.u8() % 8 {
        0 => 0,
        1 => 1,
        2 => PAGE,
        3 => PAGE + 1,
        4 => 65536,
        5 => u64::from(input.u32()),
        6 => input.u64(),
        _ => u64::from(input.u16()),
    }
}

/// Write `bytes` at `va` in the data region.
fn put(m: &mut Machine, va: u64, bytes: &[u8]) {
    m.poke(1, va - DATA.va, bytes);
}

/// An offset pointer: none, the scratch (with an input value written there), or anything.
fn offset(m: &mut Machine, input: &mut Input<'_>, slot: u64) -> u64 {
    match input.u8() % 4 {
        0 | 1 => 0,
        2 => {
            let at = SCRATCH + 0x10 + slot * 8;
            let v = input.u64() % 8192;
            put(m, at, &v.to_le_bytes());
            at
        }
        _ => m.arg(input),
    }
}

/// iovecs in the scratch: count from the input, each a buffer and a length.
fn iovecs(m: &mut Machine, input: &mut Input<'_>) -> (u64, u64) {
    let count = u64::from(input.u8() % 5);
    for i in 0..count {
        let base = buf(m, input);
        let n = len(input) % 70_000;
        let mut bytes = base.to_le_bytes().to_vec();
        bytes.extend_from_slice(&n.to_le_bytes());
        put(m, SCRATCH + 0x100 + i * 16, &bytes);
    }
    let at = if input.u8().is_multiple_of(8) {
        m.arg(input)
    } else {
        SCRATCH + 0x100
    };
    (at, count)
}

/// Run pipe op `k` (`op & 7`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let (nr, args): (u64, [u64; 6]) = match k {
        0 => {
            let at = if input.u8().is_multiple_of(8) {
                m.arg(input)
            } else {
                SCRATCH
            };
            let flags = match input.u8() % 4 {
                0 => 0,
                1 => O_NONBLOCK,
                2 => (u64::from(input.u8() & 0x7) * 0o2000) | (0o40000 * u64::from(input.u8() & 1)),
                _ => u64::from(input.u32()),
            };
            (NR_PIPE2, [at, flags, 0, 0, 0, 0])
        }
        1 => {
            let (f, b, n) = (fd(m, input), buf(m, input), len(input));
            if input.u8() & 1 == 0 {
                (NR_WRITE, [f, b, n, 0, 0, 0])
            } else {
                let (at, c) = iovecs(m, input);
                (NR_WRITEV, [f, at, c, 0, 0, 0])
            }
        }
        2 => {
            let (f, b, n) = (fd(m, input), buf(m, input), len(input));
            if input.u8() & 1 == 0 {
                (NR_READ, [f, b, n, 0, 0, 0])
            } else {
                let (at, c) = iovecs(m, input);
                (NR_READV, [f, at, c, 0, 0, 0])
            }
        }
        3 => {
            let (fin, fout) = (fd(m, input), fd(m, input));
            let (oin, oout) = (offset(m, input, 0), offset(m, input, 1));
            let flags = u64::from(input.u8() & 0x1f);
            (NR_SPLICE, [fin, oin, fout, oout, len(input), flags])
        }
        4 => {
            let (fin, fout) = (fd(m, input), fd(m, input));
            (
                NR_TEE,
                [fin, fout, len(input), u64::from(input.u8() & 0x1f), 0, 0],
            )
        }
        5 => {
            let f = fd(m, input);
            let (at, c) = iovecs(m, input);
            (NR_VMSPLICE, [f, at, c, u64::from(input.u8() & 0x1f), 0, 0])
        }
        6 => {
            let f = fd(m, input);
            match input.u8() % 6 {
                0 => (NR_FCNTL, [f, 1032, 0, 0, 0, 0]),
                1 => {
                    let size = match input.u8() % 4 {
                        0 => u64::from(input.u32()),
                        1 => 1 << (input.u8() % 34),
                        2 => (1 << 20) + 1,
                        _ => input.u64(),
                    };
                    (NR_FCNTL, [f, 1031, size, 0, 0, 0])
                }
                2 => (NR_FCNTL, [f, 4, u64::from(input.u8()) << 11, 0, 0, 0]),
                3 => (NR_IOCTL, [f, 0x541b, buf(m, input), 0, 0, 0]),
                4 => (NR_IOCTL, [f, 0x5421, buf(m, input), 0, 0, 0]),
                _ => (NR_FCNTL, [f, 3, 0, 0, 0, 0]),
            }
        }
        _ => {
            let f = fd(m, input);
            if input.u8() & 1 == 0 {
                (NR_CLOSE, [f, 0, 0, 0, 0, 0])
            } else {
                (NR_DUP, [f, 0, 0, 0, 0, 0])
            }
        }
    };
    m.syscall(nr, args)
}
