//! The interface queries of `ioctl` on a socket (SIOCGIFCONF, SIOCGIFNAME, SIOCGIFINDEX,
//! SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFADDR) answered for the application's view
//! of the network: with `--net host` the host's interfaces and IPv4 addresses, read from the
//! host's routing netlink (the monitor's sandbox allows no such ioctl, and netlink gives the
//! same values: `ifi_flags` is `dev_get_flags`, as SIOCGIFFLAGS); with `--net none` an empty
//! network namespace's, a lone `lo` that is down and has no address.
//!
//! Linux's order and bytes: the whole `struct ifreq` is read first (EFAULT), the name cut at
//! its 16th byte and at a colon for the device lookup (ENODEV), an IPv4 address looked up by
//! the full label (EADDRNOTAVAIL), then the whole struct written back (EFAULT), so bytes no
//! answer touches stay the application's. SIOCGIFADDR is the INET family's (ENOTTY on other
//! sockets); SIOCGIFCONF writes back only `ifc_len`.
use super::policy::NetMode;
use crate::linux::{Ctx, Sys};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use syscalls::Errno;

/// SIOCGIFNAME: the name of an interface index.
pub const SIOCGIFNAME: u64 = 0x8910;
/// SIOCGIFCONF: the IPv4 addresses and their labels.
pub const SIOCGIFCONF: u64 = 0x8912;
/// SIOCGIFFLAGS: the interface flags (the low 16 bits).
pub const SIOCGIFFLAGS: u64 = 0x8913;
/// SIOCGIFADDR: an IPv4 address of a label.
pub const SIOCGIFADDR: u64 = 0x8915;
/// SIOCGIFMTU.
pub const SIOCGIFMTU: u64 = 0x8921;
/// SIOCGIFHWADDR: the link-layer type and address.
pub const SIOCGIFHWADDR: u64 = 0x8927;
/// SIOCGIFINDEX.
pub const SIOCGIFINDEX: u64 = 0x8933;

/// sizeof(struct ifreq).
const IFREQ: usize = 40;
/// IFNAMSIZ.
const IFNAMSIZ: usize = 16;
/// Where the union of a `struct ifreq` starts.
const U: usize = IFNAMSIZ;
/// The bytes of `sa_data` SIOCGIFHWADDR fills at most.
const HWADDR_MAX: usize = 14;
/// ARPHRD_LOOPBACK.
const ARPHRD_LOOPBACK: u16 = 772;
/// IFF_LOOPBACK.
const IFF_LOOPBACK: u32 = 0x8;

/// Whether `req` is one of the queries answered here.
pub fn is_query(req: u64) -> bool {
    matches!(
        req,
        SIOCGIFNAME
            | SIOCGIFCONF
            | SIOCGIFFLAGS
            | SIOCGIFADDR
            | SIOCGIFMTU
            | SIOCGIFHWADDR
            | SIOCGIFINDEX
    )
}

/// One network interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Link {
    index: i32,
    name: Vec<u8>,
    /// Alternative names (`ip link property add altname`): device lookups by name find them.
    alt: Vec<Vec<u8>>,
    flags: u32,
    mtu: u32,
    ty: u16,
    addr: Vec<u8>,
}

/// One IPv4 address of an interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Addr {
    label: Vec<u8>,
    index: i32,
    local: [u8; 4],
}

/// The interfaces of an empty network namespace.
fn empty_links() -> Vec<Link> {
    vec![Link {
        index: 1,
        name: b"lo".to_vec(),
        alt: Vec::new(),
        flags: IFF_LOOPBACK,
        mtu: 65536,
        ty: ARPHRD_LOOPBACK,
        addr: vec![0; 6],
    }]
}

fn host_view(cx: &Ctx<'_, '_>) -> bool {
    cx.process.boot.net.policy.mode == NetMode::Host
}

fn links(cx: &Ctx<'_, '_>) -> Result<Vec<Link>, Errno> {
    if !host_view(cx) {
        return Ok(empty_links());
    }
    let mut out = Vec::new();
    dump(RTM_GETLINK, &[0u8; 16], |ty, body| {
        if ty == RTM_NEWLINK {
            if let Some(l) = parse_link(body) {
                out.push(l);
            }
        }
    })
    .map_err(|e| {
        log::warn!("netlink RTM_GETLINK: {e}");
        Errno::new(e.raw_os_error().unwrap_or(libc::EIO))
    })?;
    Ok(out)
}

fn addrs(cx: &Ctx<'_, '_>) -> Result<Vec<Addr>, Errno> {
    if !host_view(cx) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut req = [0u8; 8];
    req[0] = libc::AF_INET as u8;
    dump(RTM_GETADDR, &req, |ty, body| {
        if ty == RTM_NEWADDR {
            if let Some(a) = parse_addr(body) {
                out.push(a);
            }
        }
    })
    .map_err(|e| {
        log::warn!("netlink RTM_GETADDR: {e}");
        Errno::new(e.raw_os_error().unwrap_or(libc::EIO))
    })?;
    Ok(out)
}

/// The NUL-terminated string at the start of `b`.
fn cstr(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

fn put(r: &mut [u8], at: usize, v: &[u8]) {
    r[at..at + v.len()].copy_from_slice(v);
}

/// ioctl(fd, req, arg) for a query `is_query` accepts, on a socket of `domain`.
pub fn ioctl(cx: &mut Ctx<'_, '_>, domain: i32, req: u64, arg: u64) -> Sys {
    if req == SIOCGIFCONF {
        return ifconf(cx, arg);
    }
    let mut r: [u8; IFREQ] = cx.read_val(arg)?;
    r[IFNAMSIZ - 1] = 0;
    if req == SIOCGIFNAME {
        let index = i32::from_ne_bytes([r[U], r[U + 1], r[U + 2], r[U + 3]]);
        let all = links(cx)?;
        let l = all.iter().find(|l| l.index == index).ok_or(Errno::ENODEV)?;
        let n = l.name.len().min(IFNAMSIZ - 1);
        put(&mut r, 0, &l.name[..n]);
        r[n] = 0;
        cx.write_val(arg, &r)?;
        return Ok(0);
    }
    if req == SIOCGIFADDR && domain != libc::AF_INET {
        // Only inet_ioctl knows it; dev_ioctl does not.
        return Err(Errno::ENOTTY.into());
    }
    let name = cstr(&r[..IFNAMSIZ]).to_vec();
    let dev = name.split(|&c| c == b':').next().unwrap_or(&[]);
    let all = links(cx)?;
    let l = all
        .iter()
        .find(|l| !dev.is_empty() && (l.name == dev || l.alt.iter().any(|a| a == dev)))
        .ok_or(Errno::ENODEV)?;
    match req {
        SIOCGIFFLAGS => put(&mut r, U, &(l.flags as u16).to_ne_bytes()),
        SIOCGIFMTU => put(&mut r, U, &l.mtu.to_ne_bytes()),
        SIOCGIFINDEX => put(&mut r, U, &l.index.to_ne_bytes()),
        SIOCGIFHWADDR => {
            put(&mut r, U, &l.ty.to_ne_bytes());
            if l.addr.is_empty() {
                put(&mut r, U + 2, &[0; HWADDR_MAX]);
            } else {
                put(&mut r, U + 2, &l.addr[..l.addr.len().min(HWADDR_MAX)]);
            }
        }
        _ => {
            // devinet_ioctl: with an AF_INET address given, the label's entry with that
            // address (4.4BSD), else the label's first.
            let want = (u16::from_ne_bytes([r[U], r[U + 1]]) == libc::AF_INET as u16)
                .then(|| [r[U + 4], r[U + 5], r[U + 6], r[U + 7]]);
            let mine: Vec<Addr> = addrs(cx)?
                .into_iter()
                .filter(|a| a.index == l.index && a.label == name)
                .collect();
            let a = want
                .and_then(|w| mine.iter().find(|a| a.local == w))
                .or(mine.first())
                .ok_or(Errno::EADDRNOTAVAIL)?;
            put(&mut r, U, &[0; 16]);
            put(&mut r, U, &(libc::AF_INET as u16).to_ne_bytes());
            put(&mut r, U + 4, &a.local);
        }
    }
    cx.write_val(arg, &r)?;
    Ok(0)
}

/// SIOCGIFCONF: `dev_ifconf`. A NULL `ifc_buf` asks for the size; else one zeroed `struct
/// ifreq` per address (the label, an AF_INET sockaddr) while a whole one fits, a fault in the
/// buffer EFAULT (entries before it stay written); then `ifc_len` alone is written back.
fn ifconf(cx: &mut Ctx<'_, '_>, arg: u64) -> Sys {
    let c: [u8; 16] = cx.read_val(arg)?;
    let len = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    let buf = u64::from_ne_bytes(c[8..16].try_into().unwrap_or([0; 8]));
    let all = addrs(cx)?;
    let mut total: i32 = 0;
    for a in &all {
        if buf != 0 {
            if len.saturating_sub(total) < IFREQ as i32 {
                break;
            }
            let mut e = [0u8; IFREQ];
            let n = a.label.len().min(IFNAMSIZ - 1);
            put(&mut e, 0, &a.label[..n]);
            put(&mut e, U, &(libc::AF_INET as u16).to_ne_bytes());
            put(&mut e, U + 4, &a.local);
            cx.write_val(buf.wrapping_add(total as u64), &e)?;
        }
        total += IFREQ as i32;
    }
    cx.write_val(arg, &total)?;
    Ok(0)
}

// The host's routing netlink.
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDR: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_PROP_LIST: u16 = 52;
const IFLA_ALT_IFNAME: u16 = 53;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
/// The type bits of an attribute (without NLA_F_NESTED, NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The attributes in `b`: (type, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

fn parse_link(body: &[u8]) -> Option<Link> {
    if body.len() < 16 {
        return None;
    }
    let mut l = Link {
        ty: u16::from_ne_bytes([body[2], body[3]]),
        index: i32::from_ne_bytes(body[4..8].try_into().ok()?),
        flags: u32::from_ne_bytes(body[8..12].try_into().ok()?),
        ..Link::default()
    };
    for (ty, v) in attrs(&body[16..]) {
        match ty {
            IFLA_IFNAME => l.name = cstr(v).to_vec(),
            IFLA_MTU if v.len() >= 4 => l.mtu = u32::from_ne_bytes(v[..4].try_into().ok()?),
            IFLA_ADDRESS => l.addr = v.to_vec(),
            IFLA_PROP_LIST => {
                for (t, n) in attrs(v) {
                    if t == IFLA_ALT_IFNAME {
                        l.alt.push(cstr(n).to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    Some(l)
}

fn parse_addr(body: &[u8]) -> Option<Addr> {
    if body.len() < 8 || body[0] != libc::AF_INET as u8 {
        return None;
    }
    let mut a = Addr {
        index: u32::from_ne_bytes(body[4..8].try_into().ok()?) as i32,
        ..Addr::default()
    };
    let (mut local, mut address) = (None, None);
    for (ty, v) in attrs(&body[8..]) {
        match ty {
            IFA_LABEL => a.label = cstr(v).to_vec(),
            IFA_LOCAL if v.len() >= 4 => local = Some([v[0], v[1], v[2], v[3]]),
            IFA_ADDRESS if v.len() >= 4 => address = Some([v[0], v[1], v[2], v[3]]),
            _ => {}
        }
    }
    a.local = local.or(address)?;
    Some(a)
}

/// A dump request of type `ty` with `body` to the host's NETLINK_ROUTE; `each(type, body)` for
/// every message of the answer.
fn dump(ty: u16, body: &[u8], mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    // SAFETY: socket takes no pointer.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = Vec::with_capacity(NLMSG_HDR + body.len());
    req.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
    req.extend_from_slice(&ty.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(body);
    loop {
        // SAFETY: `req` is readable for its length.
        let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(());
        }
        let mut b = &buf[..n as usize];
        while b.len() >= NLMSG_HDR {
            let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let mty = u16::from_ne_bytes([b[4], b[5]]);
            if len < NLMSG_HDR || len > b.len() {
                return Err(io::Error::from_raw_os_error(libc::EPROTO));
            }
            match mty {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = b.get(NLMSG_HDR..NLMSG_HDR + 4).map_or(-libc::EPROTO, |c| {
                        i32::from_ne_bytes([c[0], c[1], c[2], c[3]])
                    });
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                _ => each(mty, &b[NLMSG_HDR..len]),
            }
            b = &b[align4(len).min(b.len())..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_stop_at_a_bad_length_and_skip_padding() {
        let mut b = Vec::new();
        b.extend_from_slice(&7u16.to_ne_bytes());
        b.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        b.extend_from_slice(b"lo\0\0");
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&(IFLA_MTU | 0x8000).to_ne_bytes());
        b.extend_from_slice(&1500u32.to_ne_bytes());
        b.extend_from_slice(&200u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        let a = attrs(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (IFLA_IFNAME, &b"lo\0"[..]));
        assert_eq!(a[1].0, IFLA_MTU);
    }

    #[test]
    fn a_link_message_without_its_header_is_none() {
        assert_eq!(parse_link(&[0; 15]), None);
        assert_eq!(parse_addr(&[0; 7]), None);
    }
}
