//! Sockets as real host sockets of the monitor: AF_UNIX (stream, datagram, seqpacket) and
//! AF_INET/AF_INET6 (TCP, UDP). Data, queues, blocking, shutdown, poll and fstat are the host
//! kernel's; the monitor checks arguments in Linux's order, applies the network policy
//! ([`super::policy`]) to every address the application names, and translates AF_UNIX names
//! ([`super::addr`]). A blocked accept, connect, send or receive blocks only its own thread and
//! ends with EINTR when the vCPU thread is kicked (a signal, a stop, `--timeout`).
//!
//! With `--net none`, an AF_INET/AF_INET6 socket bound to the wildcard (or an IPv4 loopback)
//! address on a port nobody published is bound "nowhere": the host socket stays unbound, the
//! monitor remembers the address for getsockname, `listen` succeeds and `accept` waits for
//! ever, as in an empty network namespace where no peer can exist. On a published port, a
//! wildcard bind binds the host address `-p` names, a loopback bind that loopback address of
//! the host.
use super::addr::{self, Use, SOCKADDR_IN, SOCKADDR_IN6_MIN, SOCKADDR_MAX};
use super::policy::{NetMode, NetPolicy, Proto};
use crate::linux::abi::{oflag, Iovec, Stat};
use crate::linux::fd::file::{host_status_flags, memory_io, set_host_status_flags};
use crate::linux::fd::{Fd, FileDescription, OpenFile, BOUNCE_BYTES};
use crate::linux::io::{broken_pipe, interrupted_wait, iovecs, MAX_RW};
use crate::linux::mm::space::Access;
use crate::linux::process::locked;
use crate::linux::signal::deliver::ERESTARTSYS;
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use syscalls::Errno;
use umon_abi::Gpa;

/// AF_MAX of Linux 6.1: families at or above it are EAFNOSUPPORT before anything else.
const AF_MAX: i32 = 46;
/// SOCK_PACKET + 1: the socket types Linux knows.
const SOCK_MAX: i32 = 11;
/// The type bits that are the type (the rest are SOCK_CLOEXEC / SOCK_NONBLOCK).
const SOCK_TYPE_MASK: i32 = 0xf;
/// The send/recv flags passed to the host; others (MSG_ZEROCOPY, MSG_FASTOPEN, …) are dropped
/// (MSG_FASTOPEN would connect without the policy's say).
const MSG_PASSED: i32 = libc::MSG_OOB
    | libc::MSG_PEEK
    | libc::MSG_DONTROUTE
    | libc::MSG_TRUNC
    | libc::MSG_DONTWAIT
    | libc::MSG_EOR
    | libc::MSG_WAITALL
    | libc::MSG_CONFIRM
    | libc::MSG_ERRQUEUE
    | libc::MSG_NOSIGNAL
    | libc::MSG_MORE;
/// UIO_MAXIOV: more iovecs in a msghdr is EMSGSIZE.
const MAX_MSG_IOV: u64 = 1024;
/// The most option bytes copied either way (the options passed through are all smaller).
const OPT_MAX: usize = 512;
/// SOCK_PACKET (obsolete): an INET socket of it needs CAP_NET_RAW.
const SOCK_PACKET: i32 = 10;
/// The first port handed out by a bind to port 0 that binds nowhere.
const FAKE_EPHEMERAL: u16 = 32768;

/// `struct msghdr` of x86-64.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad0: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
    flags: i32,
    _pad1: u32,
}

/// What the monitor keeps of a socket beyond the host's.
#[derive(Debug, Default)]
struct State {
    /// getsockname's answer where the guest's differs from the host's (a path name, a
    /// prefixed abstract name, a published or nowhere-bound address).
    name: Option<Vec<u8>>,
    /// Bound nowhere (`--net none`, see the module comment).
    nowhere: bool,
    /// Listening nowhere.
    listening: bool,
    /// A published port: (host port, guest port), for the local name of accepted sockets.
    ports: Option<(u16, u16)>,
}

/// A socket: a host socket of the monitor.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    domain: i32,
    ty: i32,
    state: Mutex<State>,
    /// Listening nowhere: what poll and epoll watch instead of the unbound host socket (which
    /// polls as hung up), a pipe's read end whose write end stays open, so never ready, as a
    /// listener nobody can reach.
    never: OnceLock<(OwnedFd, OwnedFd)>,
}

impl FileDescription for Socket {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        mem.read_from(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    fn write_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        _pos: Option<u64>,
    ) -> io::Result<usize> {
        mem.write_to(gpa, len, &mut &self.fd).map_err(memory_io)
    }

    fn write_bytes(&self, buf: &[u8], pos: Option<&mut u64>) -> io::Result<usize> {
        if pos.is_some() {
            return Err(crate::linux::fd::file::espipe());
        }
        crate::linux::fd::file::write_at_offset(self.fd.as_fd(), buf)
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        if let Some((r, _)) = self.never.get() {
            return Some(r.as_fd());
        }
        Some(self.fd.as_fd())
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        rustix::fs::fstat(&self.fd).map(|s| Stat::from_host(&s))
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        host_status_flags(self.fd.as_fd())
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        set_host_status_flags(self.fd.as_fd(), mask, bits)
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        true
    }

    fn as_socket(&self) -> Option<&Socket> {
        Some(self)
    }
}

fn last() -> io::Error {
    io::Error::last_os_error()
}

fn errno(e: io::Error) -> Errno {
    Errno::new(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A host call that may block, again after a spurious kick; EINTR or a restart when the kick
/// was a stop or a signal to take.
fn blocking<T>(cx: &Ctx<'_, '_>, mut call: impl FnMut() -> io::Result<T>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => interrupted_wait(cx, ERESTARTSYS)?,
            Err(e) => return Err(errno(e)),
            Ok(v) => return Ok(v),
        }
    }
}

/// The socket behind `fd`: EBADF, else ENOTSOCK for any other open file.
macro_rules! sock {
    ($cx:expr, $fd:expr, $file:ident, $s:ident) => {
        let $file = $cx.process.fds().get($fd)?.file;
        let $s = $file.as_socket().ok_or(Errno::ENOTSOCK)?;
    };
}

fn policy<'a>(cx: &'a Ctx<'_, '_>) -> &'a NetPolicy {
    &cx.process.boot.net.policy
}

/// The host prefix of abstract names under `--net none`, None with `--net host`.
fn isolation<'a>(cx: &'a Ctx<'_, '_>) -> Option<&'a [u8]> {
    (policy(cx).mode == NetMode::None).then(|| cx.process.boot.net.prefix())
}

fn inet(domain: i32) -> bool {
    domain == libc::AF_INET || domain == libc::AF_INET6
}

impl Socket {
    fn new(fd: OwnedFd, domain: i32, ty: i32) -> Socket {
        Socket {
            fd,
            domain,
            ty,
            state: Mutex::new(State::default()),
            never: OnceLock::new(),
        }
    }

    /// The host socket itself (`host_fd` may be a stand-in for polling).
    pub(super) fn sock_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The address family.
    pub fn domain(&self) -> i32 {
        self.domain
    }

    /// Whether the network policy stands between this socket and the host network.
    fn filtered(&self, cx: &Ctx<'_, '_>) -> bool {
        inet(self.domain) && policy(cx).mode == NetMode::None
    }

    fn proto(&self) -> Option<Proto> {
        match self.ty {
            libc::SOCK_STREAM => Some(Proto::Tcp),
            libc::SOCK_DGRAM => Some(Proto::Udp),
            _ => None,
        }
    }

    /// The host's getsockname or getpeername.
    fn host_name(&self, peer: bool) -> Result<Vec<u8>, Errno> {
        let mut buf = [0u8; SOCKADDR_MAX];
        let mut len = SOCKADDR_MAX as libc::socklen_t;
        let p = buf.as_mut_ptr().cast::<libc::sockaddr>();
        let r = if peer {
            // SAFETY: `buf` has `len` writable bytes; `len` is a local the call updates.
            unsafe { libc::getpeername(self.raw(), p, &mut len) }
        } else {
            // SAFETY: as above.
            unsafe { libc::getsockname(self.raw(), p, &mut len) }
        };
        if r < 0 {
            return Err(errno(last()));
        }
        Ok(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec())
    }

    /// A host address as the application sees it.
    fn to_guest(&self, cx: &Ctx<'_, '_>, host: Vec<u8>, local: bool) -> Vec<u8> {
        if self.domain == libc::AF_UNIX {
            return addr::unix_to_guest(&host, cx.process.boot.net.prefix());
        }
        let ports = locked(&self.state).ports;
        match ports {
            Some((h, g)) if local && host.len() >= 4 && host[2..4] == h.to_be_bytes() => {
                let mut v = host;
                v[2..4].copy_from_slice(&g.to_be_bytes());
                v
            }
            _ => host,
        }
    }
}

fn host_bind(fd: i32, a: &[u8]) -> io::Result<()> {
    // SAFETY: `a` is a readable buffer of `a.len()` bytes for the call.
    let r = unsafe { libc::bind(fd, a.as_ptr().cast(), a.len() as libc::socklen_t) };
    if r < 0 {
        return Err(last());
    }
    Ok(())
}

fn host_connect(fd: i32, a: &[u8]) -> io::Result<()> {
    // SAFETY: as host_bind.
    let r = unsafe { libc::connect(fd, a.as_ptr().cast(), a.len() as libc::socklen_t) };
    if r < 0 {
        return Err(last());
    }
    Ok(())
}

/// socket(domain, type, protocol): `__sys_socket`'s checks (unknown flags EINVAL, family out of
/// range EAFNOSUPPORT, type out of range EINVAL); AF_UNIX, AF_INET and AF_INET6 are host
/// sockets, every other family is EAFNOSUPPORT (no netlink, no packet sockets); raw INET
/// sockets are EPERM (the application has no CAP_NET_RAW).
pub fn socket(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (domain, ty, proto) = (a.int(0), a.int(1), a.int(2));
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL.into());
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT.into());
    }
    let base = ty & SOCK_TYPE_MASK;
    if !(0..SOCK_MAX).contains(&base) {
        return Err(Errno::EINVAL.into());
    }
    if domain != libc::AF_UNIX && !inet(domain) {
        return Err(Errno::EAFNOSUPPORT.into());
    }
    if inet(domain) && (base == libc::SOCK_RAW || base == SOCK_PACKET) {
        return Err(Errno::EPERM.into());
    }
    let host_ty = base | (flags & libc::SOCK_NONBLOCK) | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointer.
    let raw = unsafe { libc::socket(domain, host_ty, proto) };
    if raw < 0 {
        return Err(errno(last()).into());
    }
    // SAFETY: a new fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // A unix SOCK_RAW is a datagram socket (unix_create).
    let base = if domain == libc::AF_UNIX && base == libc::SOCK_RAW {
        libc::SOCK_DGRAM
    } else {
        base
    };
    install(
        cx,
        Socket::new(fd, domain, base),
        flags & libc::SOCK_CLOEXEC != 0,
    )
}

fn install(cx: &Ctx<'_, '_>, s: Socket, cloexec: bool) -> Sys {
    let file: OpenFile = Arc::new(s);
    Ok(cx.process.fds().alloc(0, Fd { file, cloexec })?)
}

/// socketpair(domain, type, protocol, sv): AF_UNIX only (EOPNOTSUPP for INET, as Linux's).
pub fn socketpair(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (domain, ty, proto, sv) = (a.int(0), a.int(1), a.int(2), a.ptr(3));
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL.into());
    }
    // __sys_socketpair takes both numbers and writes them out before it makes the sockets.
    let (r0, r1) = cx.process.fds().reserve_pair()?;
    let give_back = |cx: &Ctx<'_, '_>| {
        let mut fds = cx.process.fds();
        fds.unreserve(r0);
        fds.unreserve(r1);
    };
    let base = ty & SOCK_TYPE_MASK;
    let checked = cx.write_val(sv, &[r0 as i32, r1 as i32]).and_then(|()| {
        if !(0..AF_MAX).contains(&domain) {
            return Err(Errno::EAFNOSUPPORT);
        }
        if !(0..SOCK_MAX).contains(&base) {
            return Err(Errno::EINVAL);
        }
        if inet(domain) {
            return Err(Errno::EOPNOTSUPP);
        }
        if domain != libc::AF_UNIX {
            return Err(Errno::EAFNOSUPPORT);
        }
        Ok(())
    });
    if let Err(e) = checked {
        give_back(cx);
        return Err(e.into());
    }
    let mut raw = [0i32; 2];
    let host_ty = base | (flags & libc::SOCK_NONBLOCK) | libc::SOCK_CLOEXEC;
    // SAFETY: socketpair writes two ints into `raw`.
    if unsafe { libc::socketpair(domain, host_ty, proto, raw.as_mut_ptr()) } < 0 {
        give_back(cx);
        return Err(errno(last()).into());
    }
    // SAFETY: a new fd nothing else owns.
    let f0 = unsafe { OwnedFd::from_raw_fd(raw[0]) };
    // SAFETY: as above, the other end.
    let f1 = unsafe { OwnedFd::from_raw_fd(raw[1]) };
    let base = if base == libc::SOCK_RAW {
        libc::SOCK_DGRAM
    } else {
        base
    };
    let cloexec = flags & libc::SOCK_CLOEXEC != 0;
    let end = |fd| Fd {
        file: Arc::new(Socket::new(fd, domain, base)) as OpenFile,
        cloexec,
    };
    let mut fds = cx.process.fds();
    fds.install(r0, end(f0));
    fds.install(r1, end(f1));
    Ok(0)
}

/// An INET address's port and whether an empty network namespace has its address (the
/// wildcard, or IPv4 loopback, configured on the down lo); EINVAL for a short one,
/// EAFNOSUPPORT for another family (AF_UNSPEC with the IPv4 wildcard binds as AF_INET, as
/// inet_bind allows for old programs).
fn inet_addr(domain: i32, a: &[u8], bind: bool) -> Result<(u16, bool), Errno> {
    if domain == libc::AF_INET {
        if a.len() < SOCKADDR_IN {
            return Err(Errno::EINVAL);
        }
        let any = a[4..8] == [0; 4];
        let local = any || a[4] == 127;
        let fam = addr::family(a);
        if fam != libc::AF_INET && !(bind && fam == libc::AF_UNSPEC && any) {
            return Err(Errno::EAFNOSUPPORT);
        }
        return Ok((u16::from_be_bytes([a[2], a[3]]), local));
    }
    if a.len() < SOCKADDR_IN6_MIN {
        return Err(Errno::EINVAL);
    }
    if addr::family(a) != libc::AF_INET6 {
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok((u16::from_be_bytes([a[2], a[3]]), a[8..24] == [0; 16]))
}

/// The host address of a published port for a socket of `domain`.
fn published_host_addr(domain: i32, ip: Option<std::net::IpAddr>, port: u16) -> Option<Vec<u8>> {
    use std::net::IpAddr;
    let p = port.to_be_bytes();
    if domain == libc::AF_INET {
        let ip = match ip {
            None => [0; 4],
            Some(IpAddr::V4(v4)) => v4.octets(),
            Some(IpAddr::V6(_)) => return None,
        };
        let mut v = vec![0u8; SOCKADDR_IN];
        v[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v[2..4].copy_from_slice(&p);
        v[4..8].copy_from_slice(&ip);
        return Some(v);
    }
    let ip = match ip {
        None => [0; 16],
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(v6)) => v6.octets(),
    };
    let mut v = vec![0u8; 28];
    v[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&p);
    v[8..24].copy_from_slice(&ip);
    Some(v)
}

/// bind(fd, addr, addrlen).
pub fn bind(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    let guest = addr::read_addr(cx, a.ptr(1), a.len(2))?;
    if s.domain == libc::AF_UNIX {
        let t = addr::unix_target(cx, &guest, Use::Bind, isolation(cx))?;
        host_bind(s.raw(), &t.host).map_err(errno)?;
        locked(&s.state).name = t.guest;
        return Ok(0);
    }
    if !s.filtered(cx) {
        host_bind(s.raw(), &guest).map_err(errno)?;
        return Ok(0);
    }
    let (port, local) = inet_addr(s.domain, &guest, true)?;
    let any = match s.domain {
        libc::AF_INET => guest[4..8] == [0; 4],
        _ => guest[8..24] == [0; 16],
    };
    let mut st = locked(&s.state);
    if st.nowhere || st.name.is_some() {
        return Err(Errno::EINVAL.into());
    }
    if !local {
        // An empty network namespace has no address but the wildcard (lo is down).
        return Err(Errno::EADDRNOTAVAIL.into());
    }
    // A published port bound on the wildcard listens where `-p` says; bound on an IPv4
    // loopback address, on that address of the host: never wider than the app asked for.
    let loopback = s.domain == libc::AF_INET && guest[4] == 127;
    let published = s
        .proto()
        .filter(|_| any || loopback)
        .and_then(|p| policy(cx).published(p, port))
        .copied();
    if let Some(p) = published {
        let ip = if any {
            p.host_ip
        } else {
            Some(std::net::IpAddr::from([
                guest[4], guest[5], guest[6], guest[7],
            ]))
        };
        let host = published_host_addr(s.domain, ip, p.host_port).ok_or(Errno::EADDRNOTAVAIL)?;
        host_bind(s.raw(), &host).map_err(errno)?;
        st.ports = Some((p.host_port, p.guest_port));
        st.name = Some(guest);
        return Ok(0);
    }
    st.nowhere = true;
    st.name = Some(nowhere_name(s.domain, &guest, port));
    Ok(0)
}

/// The address a socket bound nowhere answers getsockname with: the wildcard and its port (an
/// ephemeral one for port 0).
fn nowhere_name(domain: i32, guest: &[u8], port: u16) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let port = if port == 0 {
        FAKE_EPHEMERAL + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 28000
    } else {
        port
    };
    let len = if domain == libc::AF_INET {
        SOCKADDR_IN
    } else {
        28
    };
    let mut v = vec![0u8; len];
    v[..2].copy_from_slice(&(domain as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    if domain == libc::AF_INET && guest.len() >= SOCKADDR_IN {
        v[4..8].copy_from_slice(&guest[4..8]);
    }
    if domain == libc::AF_INET6 && guest.len() >= 28 {
        v[24..28].copy_from_slice(&guest[24..28]);
    }
    v
}

/// listen(fd, backlog). With `--net none` a socket the policy did not bind on the host listens
/// nowhere (the host's listen would bind an ephemeral port on the host network).
pub fn listen(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    let backlog = a.int(1);
    if s.filtered(cx) {
        let mut st = locked(&s.state);
        if st.ports.is_none() {
            if s.ty != libc::SOCK_STREAM {
                return Err(Errno::EOPNOTSUPP.into());
            }
            if !st.nowhere {
                st.nowhere = true;
                st.name = Some(nowhere_name(s.domain, &[], 0));
            }
            st.listening = true;
            if let Ok(p) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
                let _ = s.never.set(p);
            }
            return Ok(0);
        }
    }
    // SAFETY: listen takes no pointer.
    if unsafe { libc::listen(s.raw(), backlog) } < 0 {
        return Err(errno(last()).into());
    }
    Ok(0)
}

/// accept(fd, addr, addrlen).
pub fn accept(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    accept_with(cx, a.fd(0), a.ptr(1), a.ptr(2), 0)
}

/// accept4(fd, addr, addrlen, flags).
pub fn accept4(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    accept_with(cx, a.fd(0), a.ptr(1), a.ptr(2), a.int(3))
}

/// Wait for nothing but a kick: a listener bound nowhere never gets a connection.
fn park(cx: &Ctx<'_, '_>) -> Result<(), Errno> {
    blocking(cx, || {
        rustix::event::poll(&mut [], None)?;
        Ok(())
    })
    .map(|_| ())
}

/// `__sys_accept4`: flags (EINVAL), the fd (EBADF, ENOTSOCK), a number for the new fd
/// (EMFILE), the host's accept; then the peer's address (EFAULT drops the connection).
fn accept_with(cx: &mut Ctx<'_, '_>, fd: u64, uaddr: u64, ulen: u64, flags: i32) -> Sys {
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL.into());
    }
    sock!(cx, fd, file, s);
    let nowhere = {
        let st = locked(&s.state);
        (st.nowhere, st.listening)
    };
    if nowhere.0 {
        if !nowhere.1 {
            return Err(Errno::EINVAL.into());
        }
        let nonblock = file.status_flags().unwrap_or(0) & oflag::NONBLOCK != 0;
        if nonblock {
            return Err(Errno::EAGAIN.into());
        }
        loop {
            park(cx)?;
        }
    }
    let n = cx.process.fds().reserve(0)?;
    let host_flags = (flags & libc::SOCK_NONBLOCK) | libc::SOCK_CLOEXEC;
    let mut buf = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    let got = blocking(cx, || {
        len = SOCKADDR_MAX as libc::socklen_t;
        // SAFETY: `buf` has `len` writable bytes; `len` is a local.
        let r = unsafe { libc::accept4(s.raw(), buf.as_mut_ptr().cast(), &mut len, host_flags) };
        if r < 0 {
            return Err(last());
        }
        // SAFETY: a new fd nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    });
    let new = match got {
        Ok(fd) => fd,
        Err(e) => {
            cx.process.fds().unreserve(n);
            return Err(e.into());
        }
    };
    let child = Socket::new(new, s.domain, s.ty);
    locked(&child.state).ports = locked(&s.state).ports;
    if uaddr != 0 {
        let peer = child.to_guest(cx, buf[..(len as usize).min(SOCKADDR_MAX)].to_vec(), false);
        if let Err(e) = addr::write_addr(cx, uaddr, ulen, &peer) {
            cx.process.fds().unreserve(n);
            return Err(e.into());
        }
    }
    cx.process.fds().install(
        n,
        Fd {
            file: Arc::new(child),
            cloexec: flags & libc::SOCK_CLOEXEC != 0,
        },
    );
    Ok(n)
}

/// The host address `guest` reaches through socket `s`, under the policy: a unix name
/// resolved, an INET one checked (ENETUNREACH with `--net none`). `stream_send` is a
/// sendto's address on a stream socket, which the host ignores.
fn reach(cx: &Ctx<'_, '_>, s: &Socket, guest: &[u8]) -> Result<addr::UnixTarget, Errno> {
    let plain = |host: &[u8]| addr::UnixTarget {
        host: host.to_vec(),
        _hold: None,
        guest: None,
    };
    if s.domain == libc::AF_UNIX {
        // AF_UNSPEC dissolves a datagram association.
        if addr::family(guest) == libc::AF_UNSPEC && guest.len() >= 2 && s.ty == libc::SOCK_DGRAM {
            return Ok(plain(guest));
        }
        return addr::unix_target(cx, guest, Use::Reach, isolation(cx));
    }
    if !s.filtered(cx) {
        return Ok(plain(guest));
    }
    if guest.len() < 2 {
        return Err(Errno::EINVAL);
    }
    if addr::family(guest) == libc::AF_UNSPEC {
        return Ok(plain(guest));
    }
    inet_addr(s.domain, guest, false)?;
    // IPv6 has no address at all while lo is down: no source for ::1.
    if s.domain == libc::AF_INET6 && guest[8..24] == std::net::Ipv6Addr::LOCALHOST.octets() {
        return Err(Errno::EADDRNOTAVAIL);
    }
    Err(Errno::ENETUNREACH)
}

/// connect(fd, addr, addrlen).
pub fn connect(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    let guest = addr::read_addr(cx, a.ptr(1), a.len(2))?;
    let t = reach(cx, s, &guest)?;
    if locked(&s.state).nowhere && addr::family(&guest) != libc::AF_UNSPEC {
        return Err(Errno::ENETUNREACH.into());
    }
    match host_connect(s.raw(), &t.host) {
        Ok(()) => Ok(0),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
            // The host goes on connecting: wait for it as Linux's inet_wait_for_connect does
            // (a signal to take ends the wait; the connection goes on in the background).
            interrupted_wait(cx, ERESTARTSYS)?;
            blocking(cx, || {
                use rustix::event::{PollFd, PollFlags};
                let mut p = [PollFd::new(&s.fd, PollFlags::OUT)];
                rustix::event::poll(&mut p, None)?;
                Ok(())
            })?;
            let mut err = 0i32;
            let mut len = 4 as libc::socklen_t;
            // SAFETY: SO_ERROR writes one int to `err`, a local of `len` bytes.
            let r = unsafe {
                libc::getsockopt(
                    s.raw(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut i32).cast(),
                    &mut len,
                )
            };
            if r < 0 {
                return Err(errno(last()).into());
            }
            if err != 0 {
                return Err(Errno::new(err).into());
            }
            Ok(0)
        }
        Err(e) => Err(errno(e).into()),
    }
}

/// The guest pieces of `iovs` (at most MAX_RW bytes), each checked for `access`.
fn pieces(cx: &Ctx<'_, '_>, iovs: &[Iovec], access: Access) -> Result<Vec<(Gpa, u64)>, Errno> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for iov in iovs {
        let len = iov.len.min(MAX_RW - total);
        out.extend(cx.process.space().chunks(iov.base, len, access)?);
        total += len;
        if total >= MAX_RW {
            break;
        }
    }
    out.retain(|&(_, n)| n > 0);
    Ok(out)
}

/// Send the bytes of `pieces` as one message (to `to`, a host address) through a monitor
/// buffer: one host sendmsg, so a datagram stays one.
fn send_pieces(
    cx: &mut Ctx<'_, '_>,
    s: &Socket,
    pieces: &[(Gpa, u64)],
    to: Option<&[u8]>,
    flags: i32,
    control: &[u8],
) -> Sys {
    let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
    let mut buf = vec![0u8; total.min(BOUNCE_BYTES) as usize];
    let mut at = 0usize;
    for &(gpa, n) in pieces {
        if at >= buf.len() {
            break;
        }
        let take = (n as usize).min(buf.len() - at);
        cx.mem
            .read_bytes(gpa, &mut buf[at..at + take])
            .map_err(|_| Errno::EFAULT)?;
        at += take;
    }
    let host_flags = (flags & MSG_PASSED) | libc::MSG_NOSIGNAL;
    let sent = blocking(cx, || {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (no name, no control).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        if let Some(to) = to {
            m.msg_name = to.as_ptr() as *mut libc::c_void;
            m.msg_namelen = to.len() as libc::socklen_t;
        }
        if !control.is_empty() {
            m.msg_control = control.as_ptr() as *mut libc::c_void;
            m.msg_controllen = control.len();
        }
        // SAFETY: every pointer in `m` points at a live local buffer of the length given.
        let r = unsafe { libc::sendmsg(s.raw(), &m, host_flags) };
        if r < 0 {
            return Err(last());
        }
        Ok(r as u64)
    });
    match sent {
        Err(Errno::EPIPE) if flags & libc::MSG_NOSIGNAL == 0 => Err(broken_pipe(cx)),
        r => Ok(r?),
    }
}

/// The host address a send names, under the policy (None: no address given).
fn send_target(
    cx: &Ctx<'_, '_>,
    s: &Socket,
    guest: &[u8],
    flags: i32,
) -> Result<Option<addr::UnixTarget>, Errno> {
    if guest.is_empty() {
        return Ok(None);
    }
    // A stream socket ignores the address (no TCP Fast Open through the policy).
    if s.ty == libc::SOCK_STREAM && inet(s.domain) && flags & libc::MSG_FASTOPEN == 0 {
        return Ok(None);
    }
    let t = reach(cx, s, guest)?;
    if locked(&s.state).nowhere {
        return Err(Errno::ENETUNREACH);
    }
    Ok(Some(t))
}

/// sendto(fd, buf, len, flags, addr, addrlen).
pub fn sendto(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (buf, len, flags, uaddr, alen) =
        (a.ptr(1), a.len(2).min(MAX_RW), a.int(3), a.ptr(4), a.len(5));
    sock!(cx, a.fd(0), file, s);
    let guest = if uaddr != 0 {
        addr::read_addr(cx, uaddr, alen)?
    } else {
        Vec::new()
    };
    let to = send_target(cx, s, &guest, flags)?;
    let pieces = pieces(cx, &[Iovec { base: buf, len }], Access::Read)?;
    send_pieces(cx, s, &pieces, to.as_ref().map(|t| &t.host[..]), flags, &[])
}

/// sendmsg(fd, msg, flags): the name, the iovecs and, on a unix socket, SCM_RIGHTS (the
/// app's files as host fds that carry them, [`super::rights`]) and SCM_CREDENTIALS (the app's pid as the monitor's).
pub fn sendmsg(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = a.int(2);
    sock!(cx, a.fd(0), file, s);
    let m: MsgHdr = cx.read_val(a.ptr(1))?;
    // Linux's copy_msghdr_from_user reads the name before it imports the iovecs.
    let guest = if m.name != 0 {
        addr::read_addr(cx, m.name, u64::from(m.namelen))?
    } else {
        Vec::new()
    };
    if m.iovlen > MAX_MSG_IOV {
        return Err(Errno::EMSGSIZE.into());
    }
    let iovs = iovecs(cx, m.iov, m.iovlen)?;
    // The host fds that carry the files passed stay open until the host call has taken them.
    let mut passed: Vec<OwnedFd> = Vec::new();
    let control = if m.controllen > 0 {
        send_control(cx, s, m.control, m.controllen, &mut passed)?
    } else {
        Vec::new()
    };
    let to = send_target(cx, s, &guest, flags)?;
    let pieces = pieces(cx, &iovs, Access::Read)?;
    send_pieces(
        cx,
        s,
        &pieces,
        to.as_ref().map(|t| &t.host[..]),
        flags,
        &control,
    )
}

/// One host recvmsg into a monitor buffer scattered over `pieces`: (bytes, host name, flags).
fn recv_pieces(
    cx: &Ctx<'_, '_>,
    s: &Socket,
    pieces: &[(Gpa, u64)],
    flags: i32,
) -> Result<(u64, Vec<u8>, i32), Errno> {
    let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
    recv_room(cx, s, pieces, total, flags, None)
}

/// A receive into `iovs`: as Linux, a buffer that is bad beyond access_ok is only noticed
/// when bytes are copied to it (EFAULT then, the bytes lost), so the socket's own errors come
/// first.
fn recv_iovs(
    cx: &Ctx<'_, '_>,
    s: &Socket,
    iovs: &[Iovec],
    flags: i32,
) -> Result<(u64, Vec<u8>, i32), Errno> {
    match pieces(cx, iovs, Access::Write) {
        Ok(p) => recv_pieces(cx, s, &p, flags),
        Err(Errno::EFAULT) => {
            let mut total = 0u64;
            for v in iovs {
                match v.base.checked_add(v.len) {
                    Some(end) if end <= crate::linux::abi::TASK_SIZE_MAX => {}
                    _ => return Err(Errno::EFAULT),
                }
                total = total.saturating_add(v.len);
            }
            let (got, name, fl) = recv_room(cx, s, &[], total.min(BOUNCE_BYTES), flags, None)?;
            if got > 0 {
                return Err(Errno::EFAULT);
            }
            Ok((got, name, fl))
        }
        Err(e) => Err(e),
    }
}

/// One host recvmsg of up to `total` bytes, scattered over `pieces`.
fn recv_room(
    cx: &Ctx<'_, '_>,
    s: &Socket,
    pieces: &[(Gpa, u64)],
    total: u64,
    flags: i32,
    mut control: Option<&mut Vec<u8>>,
) -> Result<(u64, Vec<u8>, i32), Errno> {
    let mut buf = vec![0u8; total.min(BOUNCE_BYTES) as usize];
    let mut name = [0u8; SOCKADDR_MAX];
    let host_flags = flags & MSG_PASSED & !libc::MSG_NOSIGNAL;
    let want_control = control.as_ref().map_or(0, |c| c.len());
    let (got, namelen, mflags, clen) = blocking(cx, || {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid; no control buffer, so the host drops any fds
        // or credentials a peer sends instead of installing them in the monitor.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_name = name.as_mut_ptr().cast();
        m.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
        let mut host_flags = host_flags;
        if let Some(c) = control.as_mut() {
            m.msg_control = c.as_mut_ptr().cast();
            m.msg_controllen = want_control;
            host_flags |= libc::MSG_CMSG_CLOEXEC;
        }
        // SAFETY: every pointer in `m` points at a live local buffer of the length given.
        let r = unsafe { libc::recvmsg(s.raw(), &mut m, host_flags) };
        if r < 0 {
            return Err(last());
        }
        Ok((
            r as u64,
            m.msg_namelen as usize,
            m.msg_flags,
            m.msg_controllen,
        ))
    })?;
    if let Some(c) = control {
        c.truncate(clen.min(want_control));
    }
    let mut rest = &buf[..(got as usize).min(buf.len())];
    for &(gpa, n) in pieces {
        if rest.is_empty() {
            break;
        }
        let take = (n as usize).min(rest.len());
        cx.mem
            .write_bytes(gpa, &rest[..take])
            .map_err(|_| Errno::EFAULT)?;
        rest = &rest[take..];
    }
    Ok((got, name[..namelen.min(SOCKADDR_MAX)].to_vec(), mflags))
}

/// read/readv on a socket: one host receive, so a datagram is one (a buffer in one piece of
/// guest RAM takes the bytes straight from the host socket).
pub fn read(cx: &mut Ctx<'_, '_>, s: &Socket, iovs: &[Iovec]) -> Sys {
    let pieces = pieces(cx, iovs, Access::Write)?;
    if let [(gpa, n)] = pieces[..] {
        let mem = cx.mem;
        let got = blocking(cx, || mem.read_from(gpa, n, &mut &s.fd).map_err(memory_io))?;
        return Ok(got as u64);
    }
    Ok(recv_pieces(cx, s, &pieces, 0)?.0)
}

/// write/writev on a socket: one host send (SIGPIPE for a broken connection, as Linux's
/// sock_write_iter).
pub fn write(cx: &mut Ctx<'_, '_>, s: &Socket, iovs: &[Iovec]) -> Sys {
    let pieces = pieces(cx, iovs, Access::Read)?;
    if let [(gpa, n)] = pieces[..] {
        let mem = cx.mem;
        return match blocking(cx, || mem.write_to(gpa, n, &mut &s.fd).map_err(memory_io)) {
            Err(Errno::EPIPE) => Err(broken_pipe(cx)),
            r => Ok(r? as u64),
        };
    }
    send_pieces(cx, s, &pieces, None, 0, &[])
}

/// recvfrom(fd, buf, len, flags, addr, addrlen).
pub fn recvfrom(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (buf, len, flags, uaddr, ulen) =
        (a.ptr(1), a.len(2).min(MAX_RW), a.int(3), a.ptr(4), a.ptr(5));
    sock!(cx, a.fd(0), file, s);
    let (got, name, _) = recv_iovs(cx, s, &[Iovec { base: buf, len }], flags)?;
    if uaddr != 0 {
        addr::write_addr(cx, uaddr, ulen, &s.to_guest(cx, name, false))?;
    }
    Ok(got)
}

/// recvmsg(fd, msg, flags): the name, the iovecs, the flags and, on a unix socket, the control
/// messages: passed files become the app's fds, the same open files as the sender's
/// ([`super::rights`]); credentials carry the app's pid for its own processes.
pub fn recvmsg(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (at, flags) = (a.ptr(1), a.int(2));
    sock!(cx, a.fd(0), file, s);
    let m: MsgHdr = cx.read_val(at)?;
    if m.iovlen > MAX_MSG_IOV {
        return Err(Errno::EMSGSIZE.into());
    }
    let iovs = iovecs(cx, m.iov, m.iovlen)?;
    let unix = s.domain == libc::AF_UNIX;
    let (got, name, mflags, control) = if unix && m.control != 0 && m.controllen > 0 {
        let pieces = pieces(cx, &iovs, Access::Write)?;
        let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
        let mut c = vec![0u8; m.controllen.min(CONTROL_MAX as u64) as usize];
        let (got, name, fl) = recv_room(cx, s, &pieces, total, flags, Some(&mut c))?;
        let room = m.controllen.min(CONTROL_MAX as u64) as usize;
        let (c, trunc) = recv_control(cx, &c, room, flags & libc::MSG_CMSG_CLOEXEC != 0);
        (got, name, fl | trunc, c)
    } else {
        let (got, name, fl) = recv_iovs(cx, s, &iovs, flags)?;
        (got, name, fl, Vec::new())
    };
    let name = if name.is_empty() {
        name
    } else {
        s.to_guest(cx, name, false)
    };
    let mut out = m;
    if m.name != 0 {
        addr::write_addr_len(cx, m.name, m.namelen as i32, &name)?;
        out.namelen = name.len() as u32;
    } else {
        out.namelen = 0;
    }
    if !control.is_empty() {
        cx.process.space().write(cx.mem, m.control, &control)?;
    }
    out.controllen = control.len() as u64;
    out.flags = mflags;
    cx.write_val(at, &out)?;
    Ok(got)
}

/// Linux's UIO_MAXIOV: the most messages one sendmmsg/recvmmsg moves.
const MMSG_MAX: u64 = 1024;
/// `struct mmsghdr`: a msghdr, then the byte count of that message (and padding).
const MMSGHDR_BYTES: u64 = 64;
/// Where msg_len sits in a `struct mmsghdr`.
const MMSG_LEN_AT: u64 = 56;

/// One message of a sendmmsg/recvmmsg vector after another, as Linux's __sys_sendmmsg and
/// do_recvmmsg: each message's byte count is written to its msg_len; an error on the first
/// message is the call's, a later one ends it with the count so far (a process end or a
/// monitor failure is never swallowed). `more` decides after each message whether to go on.
fn each_message(
    cx: &mut Ctx<'_, '_>,
    fd: u64,
    vec: u64,
    vlen: u64,
    mut one: impl FnMut(&mut Ctx<'_, '_>, Args) -> Sys,
    mut more: impl FnMut(&Ctx<'_, '_>) -> bool,
) -> Sys {
    // EBADF and ENOTSOCK before any message, as Linux's sockfd_lookup.
    sock!(cx, fd, _file, _s);
    let mut done = 0;
    while done < vlen.min(MMSG_MAX) {
        let at = vec.wrapping_add(done * MMSGHDR_BYTES);
        match one(cx, Args([fd, at, 0, 0, 0, 0])) {
            Ok(n) => {
                // Linux writes msg_len with put_user: a bad pointer there is EFAULT for the call
                // (sent messages still count once one went out).
                if let Err(e) = cx.write_val(at.wrapping_add(MMSG_LEN_AT), &(n as u32)) {
                    return if done == 0 { Err(e.into()) } else { Ok(done) };
                }
                done += 1;
                if !more(cx) {
                    break;
                }
            }
            Err(crate::linux::Stop::Errno(e)) if done > 0 => {
                log::debug!("mmsg: message {done} failed with {e}; returning the count");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// sendmmsg(fd, msgvec, vlen, flags): sendmsg for each message (at most 1024).
pub fn sendmmsg(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (fd, vec, vlen, flags) = (a.fd(0), a.ptr(1), u64::from(a.uint(2)), a.raw(3) as u32);
    each_message(
        cx,
        fd,
        vec,
        vlen,
        |cx, mut args| {
            args.0[2] = u64::from(flags);
            sendmsg(cx, &args)
        },
        |_| true,
    )
}

/// recvmmsg(fd, msgvec, vlen, flags, timeout): recvmsg for each message (at most 1024);
/// MSG_WAITFORONE makes every message after the first non-blocking; the timeout, as Linux's,
/// is looked at only after each message.
pub fn recvmmsg(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (fd, vec, vlen, flags, timeout) = (
        a.fd(0),
        a.ptr(1),
        u64::from(a.uint(2)),
        a.raw(3) as u32,
        a.ptr(4),
    );
    // The timeout is read and checked before the fd is looked up, as Linux's __sys_recvmmsg.
    let deadline = if timeout != 0 {
        let t: crate::linux::abi::Timespec = cx.read_val(timeout)?;
        Some(std::time::Instant::now() + crate::linux::time::duration(t)?)
    } else {
        None
    };
    let mut first = true;
    each_message(
        cx,
        fd,
        vec,
        vlen,
        |cx, mut args| {
            let mut f = flags & !(libc::MSG_WAITFORONE as u32);
            if !first && flags & libc::MSG_WAITFORONE as u32 != 0 {
                f |= libc::MSG_DONTWAIT as u32;
            }
            first = false;
            args.0[2] = u64::from(f);
            recvmsg(cx, &args)
        },
        |_| deadline.is_none_or(|d| std::time::Instant::now() < d),
    )
}

/// shutdown(fd, how).
pub fn shutdown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    if locked(&s.state).nowhere {
        // Never connected.
        return Err(Errno::ENOTCONN.into());
    }
    // SAFETY: shutdown takes no pointer.
    if unsafe { libc::shutdown(s.raw(), a.int(1)) } < 0 {
        return Err(errno(last()).into());
    }
    Ok(0)
}

/// The most control bytes one sendmsg or recvmsg moves (Linux's optmem_max is 20 KiB).
const CONTROL_MAX: usize = 20480;
/// sizeof(struct cmsghdr).
const CMSG_HDR: usize = 16;
/// SCM_MAX_FD: the most fds one SCM_RIGHTS message passes.
const SCM_MAX_FD: usize = 253;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// The control messages of a sendmsg for the host (`__scm_send`'s checks): cmsghdr and data
/// have the same layout on both sides, so the bytes are the app's with SCM_RIGHTS fds made the
/// host fds that carry them (held in `passed`, see [`super::rights`]) and an SCM_CREDENTIALS
/// pid of the app made the
/// monitor's. Any other message, or any control on an INET socket, is EINVAL.
fn send_control(
    cx: &Ctx<'_, '_>,
    s: &Socket,
    at: u64,
    len: u64,
    passed: &mut Vec<OwnedFd>,
) -> Result<Vec<u8>, Errno> {
    if len > CONTROL_MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let mut c = vec![0u8; len as usize];
    cx.process.space().read(cx.mem, at, &mut c)?;
    if s.domain != libc::AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let mut off = 0;
    while off + CMSG_HDR <= c.len() {
        let clen = u64::from_ne_bytes(c[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
        let level = i32::from_ne_bytes(c[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = i32::from_ne_bytes(c[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        if clen < CMSG_HDR || clen > c.len() - off {
            return Err(Errno::EINVAL);
        }
        if level == libc::SOL_SOCKET {
            let data = off + CMSG_HDR..off + clen;
            match ty {
                libc::SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for i in 0..n {
                        let p = data.start + i * 4;
                        let fd = i32::from_ne_bytes(c[p..p + 4].try_into().unwrap_or([0; 4]));
                        let file = cx.process.fds().get(fd as u32 as u64)?.file;
                        let host = super::rights::carrier(&file).ok_or(Errno::ENFILE)?;
                        c[p..p + 4].copy_from_slice(&host.as_raw_fd().to_ne_bytes());
                        passed.push(host);
                    }
                }
                libc::SCM_CREDENTIALS if data.len() >= 12 => {
                    let p = data.start;
                    let pid = i32::from_ne_bytes(c[p..p + 4].try_into().unwrap_or([0; 4]));
                    if pid as u32 != cx.process.tgid {
                        return Err(Errno::EPERM);
                    }
                    c[p..p + 4].copy_from_slice(&(std::process::id() as i32).to_ne_bytes());
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += cmsg_align(clen);
    }
    Ok(c)
}

/// The host's control messages of a recvmsg for the app: SCM_RIGHTS files installed as its
/// fds (with FD_CLOEXEC for MSG_CMSG_CLOEXEC), a host fd the app may not have closed; a monitor
/// pid in SCM_CREDENTIALS as the app's. The bytes, and MSG_CTRUNC when a file was left out.
fn recv_control(cx: &Ctx<'_, '_>, c: &[u8], room: usize, cloexec: bool) -> (Vec<u8>, i32) {
    let mut out = Vec::with_capacity(c.len());
    let mut trunc = 0;
    let mut off = 0;
    while off + CMSG_HDR <= c.len() {
        let clen = (u64::from_ne_bytes(c[off..off + 8].try_into().unwrap_or([0; 8])) as usize)
            .clamp(CMSG_HDR, c.len() - off);
        let level = i32::from_ne_bytes(c[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = i32::from_ne_bytes(c[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        let data = &c[off + CMSG_HDR..off + clen];
        let start = out.len();
        out.extend_from_slice(&c[off..off + CMSG_HDR]);
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            for ch in data.chunks_exact(4) {
                let raw = i32::from_ne_bytes([ch[0], ch[1], ch[2], ch[3]]);
                // SAFETY: the host installed this fd for the monitor just now; nothing else
                // owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                match adopt(cx, fd, cloexec) {
                    Some(n) => out.extend_from_slice(&(n as i32).to_ne_bytes()),
                    None => trunc = libc::MSG_CTRUNC,
                }
            }
        } else if level == libc::SOL_SOCKET && ty == libc::SCM_CREDENTIALS && data.len() >= 4 {
            let pid = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
            let own = if pid as u32 == std::process::id() {
                cx.process.tgid as i32
            } else {
                0
            };
            out.extend_from_slice(&own.to_ne_bytes());
            out.extend_from_slice(&data[4..]);
        } else {
            out.extend_from_slice(data);
        }
        let len = (out.len() - start) as u64;
        out[start..start + 8].copy_from_slice(&len.to_ne_bytes());
        off += cmsg_align(clen);
        // Each message takes its aligned space, as far as the app's buffer goes (put_cmsg).
        out.resize(cmsg_align(out.len()).min(room), 0);
    }
    (out, trunc)
}

/// A file passed by SCM_RIGHTS as a new fd of the app ([`super::rights::received`]); None (the
/// fd closed) when it is none the app may have, or when the app has no fd number left.
fn adopt(cx: &Ctx<'_, '_>, fd: OwnedFd, cloexec: bool) -> Option<u64> {
    let file = super::rights::received(cx, fd)?;
    cx.process.fds().alloc(0, Fd { file, cloexec }).ok()
}

/// A host socket received by SCM_RIGHTS; None for a family the app cannot have.
pub(super) fn from_host(fd: OwnedFd) -> Option<OpenFile> {
    let opt = |name: i32| -> Option<i32> {
        let mut v = 0i32;
        let mut len = 4 as libc::socklen_t;
        // SAFETY: the option is one int, written to `v`, a local of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&mut v as *mut i32).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(v)
    };
    let (domain, ty) = (opt(libc::SO_DOMAIN)?, opt(libc::SO_TYPE)?);
    if domain != libc::AF_UNIX && !inet(domain) {
        return None;
    }
    Some(Arc::new(Socket::new(fd, domain, ty)))
}

/// getsockname(fd, addr, addrlen).
pub fn getsockname(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    // The state's lock is let go before to_guest takes it again.
    let kept = locked(&s.state).name.clone();
    let name = match kept {
        Some(n) => n,
        None => s.to_guest(cx, s.host_name(false)?, true),
    };
    addr::write_addr(cx, a.ptr(1), a.ptr(2), &name)?;
    Ok(0)
}

/// getpeername(fd, addr, addrlen).
pub fn getpeername(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    sock!(cx, a.fd(0), file, s);
    if locked(&s.state).nowhere {
        return Err(Errno::ENOTCONN.into());
    }
    let name = s.to_guest(cx, s.host_name(true)?, false);
    addr::write_addr(cx, a.ptr(1), a.ptr(2), &name)?;
    Ok(0)
}

/// The options passed through to the host: plain values, never a pointer (SO_ATTACH_FILTER's
/// program would make the host read the monitor's memory), never one that reaches past the
/// policy (SO_BINDTODEVICE, multicast membership).
fn option_passed(level: i32, name: i32) -> bool {
    match level {
        libc::SOL_SOCKET => matches!(
            name,
            libc::SO_REUSEADDR
                | libc::SO_TYPE
                | libc::SO_ERROR
                | libc::SO_DONTROUTE
                | libc::SO_BROADCAST
                | libc::SO_SNDBUF
                | libc::SO_RCVBUF
                | libc::SO_KEEPALIVE
                | libc::SO_OOBINLINE
                | libc::SO_NO_CHECK
                | libc::SO_PRIORITY
                | libc::SO_LINGER
                | libc::SO_REUSEPORT
                | libc::SO_PASSCRED
                | libc::SO_PEERCRED
                | libc::SO_RCVLOWAT
                | libc::SO_SNDLOWAT
                | libc::SO_RCVTIMEO
                | libc::SO_SNDTIMEO
                | libc::SO_TIMESTAMP
                | libc::SO_ACCEPTCONN
                | libc::SO_PROTOCOL
                | libc::SO_DOMAIN
                | libc::SO_INCOMING_CPU
                | 66 // SO_RCVTIMEO_NEW
                | 67 // SO_SNDTIMEO_NEW
        ),
        libc::IPPROTO_TCP => matches!(
            name,
            libc::TCP_NODELAY
                | libc::TCP_MAXSEG
                | libc::TCP_CORK
                | libc::TCP_KEEPIDLE
                | libc::TCP_KEEPINTVL
                | libc::TCP_KEEPCNT
                | libc::TCP_SYNCNT
                | libc::TCP_LINGER2
                | libc::TCP_DEFER_ACCEPT
                | libc::TCP_WINDOW_CLAMP
                | libc::TCP_INFO
                | libc::TCP_QUICKACK
                | libc::TCP_CONGESTION
                | libc::TCP_USER_TIMEOUT
                | libc::TCP_NOTSENT_LOWAT
        ),
        libc::IPPROTO_IP => matches!(
            name,
            libc::IP_TOS
                | libc::IP_TTL
                | libc::IP_PKTINFO
                | libc::IP_RECVERR
                | libc::IP_MTU_DISCOVER
                | libc::IP_RECVTOS
                | libc::IP_MTU
                | libc::IP_FREEBIND
                | libc::IP_MULTICAST_TTL
                | libc::IP_MULTICAST_LOOP
                | libc::IP_BIND_ADDRESS_NO_PORT
        ),
        libc::IPPROTO_IPV6 => matches!(
            name,
            libc::IPV6_V6ONLY
                | libc::IPV6_UNICAST_HOPS
                | libc::IPV6_MULTICAST_HOPS
                | libc::IPV6_MULTICAST_LOOP
                | libc::IPV6_RECVPKTINFO
                | libc::IPV6_TCLASS
                | libc::IPV6_MTU_DISCOVER
                | libc::IPV6_MTU
                | libc::IPV6_RECVERR
        ),
        _ => false,
    }
}

/// Why an option is refused: ENOPROTOOPT for one of a level the socket has, else the level's
/// own answer (Linux: an IP level on a unix socket is EOPNOTSUPP).
fn refused(s: &Socket, level: i32) -> Errno {
    let known = match level {
        libc::SOL_SOCKET => true,
        _ if s.domain == libc::AF_UNIX => false,
        libc::IPPROTO_TCP => s.ty == libc::SOCK_STREAM,
        libc::IPPROTO_IP => true,
        libc::IPPROTO_IPV6 => s.domain == libc::AF_INET6,
        _ => false,
    };
    if known {
        Errno::ENOPROTOOPT
    } else {
        Errno::EOPNOTSUPP
    }
}

/// getsockopt(fd, level, optname, optval, optlen).
pub fn getsockopt(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (level, name, val, ulen) = (a.int(1), a.int(2), a.ptr(3), a.ptr(4));
    sock!(cx, a.fd(0), file, s);
    let given: i32 = cx.read_val(ulen)?;
    if given < 0 {
        return Err(Errno::EINVAL.into());
    }
    if !option_passed(level, name) {
        return Err(refused(s, level).into());
    }
    let mut buf = vec![0u8; (given as usize).min(OPT_MAX)];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` has `len` writable bytes; `len` is a local.
    let r = unsafe { libc::getsockopt(s.raw(), level, name, buf.as_mut_ptr().cast(), &mut len) };
    if r < 0 {
        return Err(errno(last()).into());
    }
    let len = (len as usize).min(buf.len());
    if level == libc::SOL_SOCKET && name == libc::SO_PEERCRED && len >= 4 {
        // The peer's pid as the application's pid namespace sees it: the process itself for
        // a socket of its own, else nobody it can name.
        let pid = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let own = if pid as u32 == std::process::id() {
            cx.process.tgid as i32
        } else {
            0
        };
        buf[..4].copy_from_slice(&own.to_ne_bytes());
    }
    cx.process.space().write(cx.mem, val, &buf[..len])?;
    cx.write_val(ulen, &(len as i32))?;
    Ok(0)
}

/// setsockopt(fd, level, optname, optval, optlen).
pub fn setsockopt(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (level, name, val, len) = (a.int(1), a.int(2), a.ptr(3), a.int(4));
    sock!(cx, a.fd(0), file, s);
    if len < 0 {
        return Err(Errno::EINVAL.into());
    }
    if !option_passed(level, name) {
        return Err(refused(s, level).into());
    }
    let mut buf = vec![0u8; (len as usize).min(OPT_MAX)];
    if !buf.is_empty() {
        cx.process.space().read(cx.mem, val, &mut buf)?;
    }
    // SAFETY: `buf` has `buf.len()` readable bytes.
    let r = unsafe {
        libc::setsockopt(
            s.raw(),
            level,
            name,
            buf.as_ptr().cast(),
            buf.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(errno(last()).into());
    }
    Ok(0)
}
