//! The socket half of the `syscall` target: structured socket calls (an op byte in
//! `NET_OPS..NET_OPS + 8`) with hostile addresses, lengths and options, and the taming that
//! keeps any socket call, structured or raw, from waiting for ever on the harness's only
//! thread.
//!
//! A net op is `0x88 | k` (k < 8), then what call `k` needs: socket/socketpair (families and
//! types mostly valid, flags mostly SOCK_NONBLOCK), bind and connect with an address built from
//! the input (AF_UNIX paths from the fixture's table, abstract names, the autobind length,
//! INET/INET6 wildcard, loopback and any address, any family, lengths around each structure's
//! size, negative and past sockaddr_storage), listen/accept4, sendto/recvfrom and
//! sendmsg/recvmsg (msghdr, iovecs, control and name from the input, flags mostly
//! MSG_DONTWAIT), get/setsockopt (levels and names around the passed-through ones, lengths
//! around 4, negative), getsockname/getpeername/shutdown, the interface ioctls (hostile
//! names, `struct ifconf` lengths and buffers). Every structure sits in the scratch
//! area; a pointer may instead be NULL, the kernel half, the read-only text or any argument.
//!
//! Taming: on a socket without O_NONBLOCK a call that could wait is skipped unless poll says
//! it would not: a read, receive or accept without POLLIN (or a hang-up or error), a write or
//! send without POLLOUT or of more than a page, any connect (a unix listener's full backlog
//! waits), a splice or sendfile touching one.
use crate::input::Input;
use crate::machine::{Machine, DATA, EDGES, PATHS, TEXT};
use std::os::fd::AsRawFd;

/// Op bytes `NET_OPS..NET_OPS + 8` are socket calls.
pub const NET_OPS: u8 = 0x88;

/// Where the net ops put addresses, msghdrs, iovecs and option values.
const SCRATCH: u64 = DATA.va + 0xb000;
const ADDR: u64 = SCRATCH;
const LEN: u64 = SCRATCH + 0x100;
const MSG: u64 = SCRATCH + 0x140;
const IOV: u64 = SCRATCH + 0x180;
const OPT: u64 = SCRATCH + 0x200;
const BUF: u64 = SCRATCH + 0x400;
const KERNEL: u64 = EDGES[7];
const PAGE: u64 = 4096;

const NR_READ: u64 = 0;
const NR_WRITE: u64 = 1;
const NR_IOCTL: u64 = 16;
const NR_READV: u64 = 19;
const NR_WRITEV: u64 = 20;
const NR_SENDFILE: u64 = 40;
const NR_SOCKET: u64 = 41;
const NR_CONNECT: u64 = 42;
const NR_ACCEPT: u64 = 43;
const NR_SENDTO: u64 = 44;
const NR_RECVFROM: u64 = 45;
const NR_SENDMSG: u64 = 46;
const NR_RECVMSG: u64 = 47;
const NR_SHUTDOWN: u64 = 48;
const NR_BIND: u64 = 49;
const NR_LISTEN: u64 = 50;
const NR_GETSOCKNAME: u64 = 51;
const NR_GETPEERNAME: u64 = 52;
const NR_SOCKETPAIR: u64 = 53;
const NR_SETSOCKOPT: u64 = 54;
const NR_GETSOCKOPT: u64 = 55;
const NR_SPLICE: u64 = 275;
const NR_ACCEPT4: u64 = 288;
const NR_PREADV: u64 = 295;
const NR_PWRITEV: u64 = 296;
const O_NONBLOCK: u64 = 0o4000;
const MSG_DONTWAIT: u64 = 0x40;

fn write(m: &Machine, va: u64, bytes: &[u8]) {
    let space = m.state.process.space();
    let _ = space.write(&m.state.machine.mem, va, bytes);
}

fn ptr(m: &Machine, input: &mut Input<'_>, at: u64) -> u64 {
    match input.u8() % 10 {
        0 => 0,
        1 => KERNEL,
        2 => TEXT.va + u64::from(input.u16()) % TEXT.len,
        3 => m.arg(input),
        _ => at,
    }
}

fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() {
        0 => m.last_fd(),
        254 => u64::MAX,
        255 => m.arg(input),
        b => u64::from(b % 16) + 2,
    }
}

/// A length around `size`: exact, off by one, 0, negative, past sockaddr_storage, any.
fn len_around(input: &mut Input<'_>, size: u64) -> u64 {
    match input.u8() % 9 {
        0..=2 => size,
        3 => size.saturating_sub(1),
        4 => size + 1,
        5 => 0,
        6 => u64::from(u32::MAX),
        7 => 129,
        _ => u64::from(input.u8()),
    }
}

/// A socket address in the scratch: (its natural length).
fn address(m: &Machine, input: &mut Input<'_>) -> u64 {
    let mut a = [0u8; 128];
    let natural = match input.u8() % 8 {
        // AF_UNIX path: one of the fixture's paths
        0 | 1 => {
            a[..2].copy_from_slice(&1u16.to_ne_bytes());
            let p = PATHS[usize::from(input.u8()) % PATHS.len()];
            let n = p.len().min(107);
            a[2..2 + n].copy_from_slice(&p[..n]);
            (2 + n + 1) as u64
        }
        // AF_UNIX abstract, or autobind
        2 => {
            a[..2].copy_from_slice(&1u16.to_ne_bytes());
            let n = usize::from(input.u8() % 108);
            let name = input.bytes(n);
            a[3..3 + name.len().min(107)].copy_from_slice(&name[..name.len().min(107)]);
            if input.u8() & 1 == 0 {
                2
            } else {
                (3 + n).min(110) as u64
            }
        }
        // AF_INET: wildcard, loopback or any address
        3 | 4 => {
            a[..2].copy_from_slice(&2u16.to_ne_bytes());
            a[2..4].copy_from_slice(&input.u16().to_be_bytes());
            let ip = match input.u8() % 3 {
                0 => [0; 4],
                1 => [127, 0, 0, 1],
                _ => input.u32().to_be_bytes(),
            };
            a[4..8].copy_from_slice(&ip);
            16
        }
        // AF_INET6
        5 => {
            a[..2].copy_from_slice(&10u16.to_ne_bytes());
            a[2..4].copy_from_slice(&input.u16().to_be_bytes());
            if input.u8() & 1 == 0 {
                a[23] = 1;
            }
            28
        }
        // any family and bytes
        _ => {
            let b = input.bytes(32);
            a[..b.len()].copy_from_slice(b);
            32
        }
    };
    write(m, ADDR, &a);
    len_around(input, natural)
}

/// The interface ioctls (SIOCGIFNAME, SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFMTU,
/// SIOCGIFHWADDR, SIOCGIFINDEX) and one unknown: a `struct ifreq` with a known, alias, empty,
/// unknown or unterminated name and any index or address, or a `struct ifconf` whose length is
/// around one entry and whose buffer may be anything `ptr` gives.
fn interface_query(m: &Machine, input: &mut Input<'_>, s: u64) -> [u64; 6] {
    let req = [
        0x8910u64, 0x8912, 0x8913, 0x8915, 0x8921, 0x8927, 0x8933, 0x8914,
    ][usize::from(input.u8() % 8)];
    if req == 0x8912 {
        let len = match input.u8() % 4 {
            0 => 40,
            1 => 79,
            2 => u64::from(u32::MAX - 39),
            _ => u64::from(input.u16()),
        };
        let buf = ptr(m, input, BUF);
        let mut c = [0u8; 16];
        c[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        c[8..].copy_from_slice(&buf.to_ne_bytes());
        write(m, MSG, &c);
    } else {
        let mut r = [0u8; 40];
        let name: &[u8] = match input.u8() % 6 {
            0 | 1 => b"lo",
            2 => b"lo:0",
            3 => b"",
            4 => b"nosuch0",
            _ => input.bytes(16),
        };
        r[..name.len().min(16)].copy_from_slice(&name[..name.len().min(16)]);
        let rest = input.bytes(24);
        r[16..16 + rest.len()].copy_from_slice(rest);
        write(m, MSG, &r);
    }
    [s, req, ptr(m, input, MSG), 0, 0, 0]
}

/// Run net op `k` (`op & 7`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let (nr, args): (u64, [u64; 6]) = match k {
        // socket / socketpair
        0 => {
            let family = [1u64, 2, 10, 1, 16, 17, 0, 46][usize::from(input.u8() % 8)];
            let ty = [1u64, 2, 5, 3, 1, 2, 10, 11][usize::from(input.u8() % 8)];
            let flags = match input.u8() % 4 {
                0 => 0x800,
                1 => 0x80800,
                2 => u64::from(input.u32()),
                _ => 0x800,
            };
            let proto = if input.u8().is_multiple_of(4) {
                u64::from(input.u8())
            } else {
                0
            };
            if input.u8() & 1 == 0 {
                (NR_SOCKET, [family, ty | flags, proto, 0, 0, 0])
            } else {
                let sv = ptr(m, input, BUF);
                (NR_SOCKETPAIR, [family, ty | flags, proto, sv, 0, 0])
            }
        }
        // bind / connect
        1 => {
            let s = fd(m, input);
            let len = address(m, input);
            let at = ptr(m, input, ADDR);
            let nr = if input.u8() & 1 == 0 {
                NR_BIND
            } else {
                NR_CONNECT
            };
            (nr, [s, at, len, 0, 0, 0])
        }
        // listen / accept4
        2 => {
            let s = fd(m, input);
            if input.u8() & 1 == 0 {
                (NR_LISTEN, [s, u64::from(input.u16()), 0, 0, 0, 0])
            } else {
                write(m, LEN, &(len_around(input, 16) as u32).to_ne_bytes());
                let (a, l) = (ptr(m, input, ADDR), ptr(m, input, LEN));
                let flags = if input.u8().is_multiple_of(4) {
                    u64::from(input.u32())
                } else {
                    0x800
                };
                (NR_ACCEPT4, [s, a, l, flags, 0, 0])
            }
        }
        // sendto / recvfrom
        3 => {
            let s = fd(m, input);
            let len = u64::from(input.u16() % 2048);
            let flags = if input.u8().is_multiple_of(4) {
                u64::from(input.u32())
            } else {
                MSG_DONTWAIT
            };
            let buf = ptr(m, input, BUF);
            if input.u8() & 1 == 0 {
                let alen = address(m, input);
                let to = if input.u8() & 1 == 0 {
                    0
                } else {
                    ptr(m, input, ADDR)
                };
                (NR_SENDTO, [s, buf, len, flags, to, alen])
            } else {
                write(m, LEN, &(len_around(input, 16) as u32).to_ne_bytes());
                let (a, l) = (ptr(m, input, ADDR), ptr(m, input, LEN));
                (NR_RECVFROM, [s, buf, len, flags, a, l])
            }
        }
        // sendmsg / recvmsg
        4 => {
            let s = fd(m, input);
            let namelen = address(m, input);
            let n = u64::from(input.u8() % 4);
            for i in 0..n {
                let iov = [BUF + i * 256, u64::from(input.u16() % 512)];
                write(
                    m,
                    IOV + i * 16,
                    iov.as_ref()
                        .iter()
                        .flat_map(|v| v.to_ne_bytes())
                        .collect::<Vec<_>>()
                        .as_slice(),
                );
            }
            let iovlen = if input.u8().is_multiple_of(8) {
                u64::from(input.u16())
            } else {
                n
            };
            let name = if input.u8() & 1 == 0 {
                0
            } else {
                ptr(m, input, ADDR)
            };
            let (control, controllen) = if input.u8().is_multiple_of(4) {
                (ptr(m, input, OPT), u64::from(input.u8()))
            } else {
                (0, 0)
            };
            let mut hdr = Vec::with_capacity(56);
            for v in [name, namelen, IOV, iovlen, control, controllen, 0] {
                hdr.extend_from_slice(&v.to_ne_bytes());
            }
            write(m, MSG, &hdr);
            let at = ptr(m, input, MSG);
            let flags = if input.u8().is_multiple_of(4) {
                u64::from(input.u32())
            } else {
                MSG_DONTWAIT
            };
            let nr = if input.u8() & 1 == 0 {
                NR_SENDMSG
            } else {
                NR_RECVMSG
            };
            (nr, [s, at, flags, 0, 0, 0])
        }
        // setsockopt / getsockopt
        5 => {
            let s = fd(m, input);
            let level = [1u64, 6, 0, 41, 17, 0xffff][usize::from(input.u8() % 6)];
            let name = match input.u8() % 4 {
                0 => u64::from(input.u8()),
                _ => u64::from(input.u8() % 70),
            };
            write(m, OPT, input.bytes(16));
            let len = len_around(input, 4);
            if input.u8() & 1 == 0 {
                (NR_SETSOCKOPT, [s, level, name, ptr(m, input, OPT), len, 0])
            } else {
                write(m, LEN, &(len as u32).to_ne_bytes());
                (
                    NR_GETSOCKOPT,
                    [s, level, name, ptr(m, input, OPT), ptr(m, input, LEN), 0],
                )
            }
        }
        // getsockname / getpeername
        6 => {
            let s = fd(m, input);
            write(m, LEN, &(len_around(input, 16) as u32).to_ne_bytes());
            let nr = if input.u8() & 1 == 0 {
                NR_GETSOCKNAME
            } else {
                NR_GETPEERNAME
            };
            (nr, [s, ptr(m, input, ADDR), ptr(m, input, LEN), 0, 0, 0])
        }
        // shutdown, or an interface query
        _ => {
            let s = fd(m, input);
            if input.u8() & 1 == 0 {
                (NR_SHUTDOWN, [s, u64::from(input.u8() % 4), 0, 0, 0, 0])
            } else {
                (NR_IOCTL, interface_query(m, input, s))
            }
        }
    };
    if !may_run(m, nr, args) {
        return true;
    }
    m.syscall(nr, args)
}

/// The host fd of the socket behind guest fd `fd`, when it blocks.
fn blocking_socket(m: &Machine, fd: u64) -> Option<i32> {
    let f = m.state.process.fds().get(fd).ok()?;
    f.file.as_socket()?;
    let blocking = f.file.status_flags().unwrap_or(0) & O_NONBLOCK == 0;
    blocking
        .then(|| f.file.host_fd().map(|h| h.as_raw_fd()))
        .flatten()
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

fn read_waits(m: &Machine, fd: u64) -> bool {
    blocking_socket(m, fd).is_some_and(|h| {
        poll_now(h, libc::POLLIN) & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0
    })
}

fn write_waits(m: &Machine, fd: u64, len: u64) -> bool {
    blocking_socket(m, fd)
        .is_some_and(|h| len > PAGE || poll_now(h, libc::POLLOUT) & libc::POLLOUT == 0)
}

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

/// Whether syscall `nr` with arguments `a` may run: false when it could wait on a blocking
/// socket (see the module docs).
pub fn may_run(m: &Machine, nr: u64, a: [u64; 6]) -> bool {
    let dontwait = |flags: u64| flags & MSG_DONTWAIT != 0;
    match nr {
        NR_READ | NR_READV | NR_PREADV => !read_waits(m, a[0]),
        NR_RECVFROM => dontwait(a[3]) || !read_waits(m, a[0]),
        NR_RECVMSG => dontwait(a[2]) || !read_waits(m, a[0]),
        NR_ACCEPT | NR_ACCEPT4 => !read_waits(m, a[0]),
        NR_WRITE => !write_waits(m, a[0], a[2]),
        NR_SENDTO => dontwait(a[3]) || !write_waits(m, a[0], a[2]),
        NR_WRITEV | NR_PWRITEV => !write_waits(m, a[0], iov_total(m, a[1], a[2])),
        NR_SENDMSG => {
            dontwait(a[2]) || {
                let hdr = m
                    .state
                    .process
                    .space()
                    .read_val::<[u64; 4]>(&m.state.machine.mem, a[1])
                    .unwrap_or([0; 4]);
                !write_waits(m, a[0], iov_total(m, hdr[2], hdr[3]))
            }
        }
        NR_CONNECT => blocking_socket(m, a[0]).is_none(),
        NR_SENDFILE => blocking_socket(m, a[0]).is_none() && blocking_socket(m, a[1]).is_none(),
        NR_SPLICE => blocking_socket(m, a[0]).is_none() && blocking_socket(m, a[2]).is_none(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    /// Inputs made only of net ops (and their bytes) run to the end: no panic, no broken
    /// harness check, no call left waiting.
    #[test]
    fn random_net_ops_replay_cleanly() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut sockets = 0;
        for _ in 0..40 {
            let mut data = vec![0u8];
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push(super::NET_OPS | (x as u8 & 7));
                data.extend_from_slice(&x.to_le_bytes());
                data.extend_from_slice(&x.rotate_left(29).to_le_bytes());
            }
            let m = crate::machine::run_syscall(&data);
            let fds = m.state.process.fds();
            sockets += (0..64)
                .filter(|&fd| fds.get(fd).is_ok_and(|f| f.file.as_socket().is_some()))
                .count();
        }
        assert!(sockets > 0, "the ops made no socket at all");
    }
}
