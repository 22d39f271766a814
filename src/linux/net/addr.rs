//! Socket addresses between the application and the host: copied in and out with Linux's
//! checks (move_addr_to_kernel / move_addr_to_user), and AF_UNIX names translated between the
//! guest's view and the host's.
//!
//! AF_UNIX path names are the guest's file view, so they resolve only inside volumes. The
//! monitor never hands the host kernel a path the guest wrote: it opens the directory that
//! holds the name (or, to connect, the socket file itself) with the volume's confined lookup
//! (`openat2` beneath the volume root, see `fs::volume::Mount`), and names it to `bind` or
//! `connect` as `/proc/self/fd/N[/leaf]`, where `leaf` is a single component without a slash
//! (bind creates it with mknod semantics, never following a symlink). Abstract names get a
//! per-application prefix on the host with `--net none` ([`super::NetEnv`]), so the
//! application sees its own abstract names and no one else's.
use crate::linux::fs::synthetic;
use crate::linux::fs::volume::{GuestPath, Parent};
use crate::linux::io::host_errno;
use crate::linux::Ctx;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};
use syscalls::Errno;

/// sizeof(struct sockaddr_storage): the largest address a call takes.
pub const SOCKADDR_MAX: usize = 128;
/// offsetof(struct sockaddr_un, sun_path).
const SUN_PATH: usize = 2;
/// sizeof(struct sockaddr_un).
const SOCKADDR_UN: usize = 110;
/// sizeof(struct sockaddr_in).
pub const SOCKADDR_IN: usize = 16;
/// SIN6_LEN_RFC2133: the shortest sockaddr_in6 Linux takes.
pub const SOCKADDR_IN6_MIN: usize = 24;

/// The address family in the first two bytes of a sockaddr (0 for a shorter one).
pub fn family(addr: &[u8]) -> i32 {
    match addr {
        [a, b, ..] => i32::from(u16::from_ne_bytes([*a, *b])),
        _ => 0,
    }
}

/// move_addr_to_kernel: a length past sockaddr_storage (or negative) is EINVAL, an unreadable
/// buffer EFAULT.
pub fn read_addr(cx: &Ctx<'_, '_>, ptr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = len as u32 as i32;
    if len < 0 || len as usize > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; len as usize];
    if len > 0 {
        cx.process.space().read(cx.mem, ptr, &mut buf)?;
    }
    Ok(buf)
}

/// move_addr_to_user: the caller's length (an int at `len_ptr`, EINVAL when negative) bounds
/// the bytes copied; the address's whole length is written back.
pub fn write_addr(cx: &Ctx<'_, '_>, ptr: u64, len_ptr: u64, addr: &[u8]) -> Result<(), Errno> {
    let given: i32 = cx.process.space().read_val(cx.mem, len_ptr)?;
    write_addr_len(cx, ptr, given, addr)?;
    cx.process
        .space()
        .write_val(cx.mem, len_ptr, &(addr.len() as i32))
}

/// The copy half of [`write_addr`], for a length the caller already read (recvmsg's
/// msg_namelen).
pub fn write_addr_len(cx: &Ctx<'_, '_>, ptr: u64, given: i32, addr: &[u8]) -> Result<(), Errno> {
    if given < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (given as usize).min(addr.len());
    if n > 0 {
        cx.process.space().write(cx.mem, ptr, &addr[..n])?;
    }
    Ok(())
}

/// Host names of path-bound sockets (`/proc/self/fd/N/leaf`) -> the guest's address, so
/// getpeername, accept and recvfrom show the application the names it bound.
fn names() -> &'static Mutex<HashMap<Vec<u8>, Vec<u8>>> {
    static NAMES: OnceLock<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// A host AF_UNIX address as the application sees it.
pub fn unix_to_guest(host: &[u8], prefix: &[u8]) -> Vec<u8> {
    if host.len() > SUN_PATH && host[SUN_PATH] == 0 {
        let rest = &host[SUN_PATH + 1..];
        if let Some(name) = rest.strip_prefix(prefix) {
            let mut g = host[..SUN_PATH + 1].to_vec();
            g.extend_from_slice(name);
            return g;
        }
        return host.to_vec();
    }
    let map = crate::linux::process::locked(names());
    map.get(host).cloned().unwrap_or_else(|| host.to_vec())
}

/// What to hand the host for an AF_UNIX address: its bytes, the handle the name goes through
/// (kept open for the call), and the guest's own form of the address (getsockname).
pub struct UnixTarget {
    /// The host sockaddr_un.
    pub host: Vec<u8>,
    /// The directory or socket file `host` names through /proc/self/fd.
    pub _hold: Option<OwnedFd>,
    /// The address as the guest gave it (None: the host's is the guest's).
    pub guest: Option<Vec<u8>>,
}

/// Why an AF_UNIX address is looked up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// bind: the name is created.
    Bind,
    /// connect or sendto: the name must exist.
    Reach,
}

/// An AF_UNIX address from the guest, for the host: unix_validate_addr's checks (EINVAL), an
/// abstract name prefixed (`--net none`), a path name resolved in the volumes.
pub fn unix_target(
    cx: &Ctx<'_, '_>,
    addr: &[u8],
    why: Use,
    isolate_abstract: Option<&[u8]>,
) -> Result<UnixTarget, Errno> {
    let plain = |host: Vec<u8>| UnixTarget {
        host,
        _hold: None,
        guest: None,
    };
    // Autobind: the host picks an abstract name.
    if why == Use::Bind && addr.len() == SUN_PATH && family(addr) == libc::AF_UNIX {
        return Ok(plain(addr.to_vec()));
    }
    if addr.len() <= SUN_PATH || addr.len() > SOCKADDR_UN || family(addr) != libc::AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &addr[SUN_PATH..];
    if path[0] == 0 {
        let Some(prefix) = isolate_abstract else {
            return Ok(plain(addr.to_vec()));
        };
        let mut host = addr[..SUN_PATH + 1].to_vec();
        host.extend_from_slice(prefix);
        host.extend_from_slice(&path[1..]);
        if host.len() > SOCKADDR_UN {
            return Err(Errno::EINVAL);
        }
        return Ok(UnixTarget {
            host,
            _hold: None,
            guest: Some(addr.to_vec()),
        });
    }
    let name = path.split(|&b| b == 0).next().unwrap_or(path);
    let mut guest = addr[..SUN_PATH].to_vec();
    guest.extend_from_slice(name);
    guest.push(0);
    let fs = cx.process.fs();
    let cwd = fs.cwd().map_err(host_errno)?;
    let at = GuestPath::new(&cwd, name);
    if synthetic::covers(&fs, &at.abs) {
        return Err(if why == Use::Bind {
            Errno::EACCES
        } else {
            Errno::ENOENT
        });
    }
    let located = fs.locate(&at).ok_or(Errno::ENOENT)?;
    let mount = fs.mount(located.mount);
    let (hold, host_path) = match why {
        Use::Reach => {
            let fd = mount.handle(&located.rel, false).map_err(host_errno)?;
            let p = format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes();
            (fd, p)
        }
        Use::Bind => {
            if located.rel.is_empty() || at.dot_last {
                return Err(Errno::EADDRINUSE);
            }
            if at.dir_only {
                return Err(Errno::ENOENT);
            }
            let (parent, leaf) = mount.parent(&located.rel).map_err(host_errno)?;
            if !fs.region(located.mount, parent.as_fd()).writable {
                return Err(Errno::EROFS);
            }
            let dir = match parent {
                Parent::Root(fd) => fd.try_clone_to_owned().map_err(|_| Errno::ENFILE)?,
                Parent::Dir(fd) => fd,
            };
            let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            p.extend_from_slice(leaf);
            (dir, p)
        }
    };
    let mut host = addr[..SUN_PATH].to_vec();
    host.extend_from_slice(&host_path);
    host.push(0);
    if host.len() > SOCKADDR_UN {
        // The host's name through /proc/self/fd is longer than the guest's and does not fit.
        return Err(Errno::ENAMETOOLONG);
    }
    if why == Use::Bind {
        crate::linux::process::locked(names()).insert(host.clone(), guest.clone());
    }
    Ok(UnixTarget {
        host,
        _hold: Some(hold),
        guest: Some(guest),
    })
}

/// A socket address as strace shows it.
pub fn strace(a: &[u8]) -> String {
    let port = |a: &[u8]| u16::from_be_bytes([a[2], a[3]]);
    match family(a) {
        libc::AF_UNIX if a.len() > SUN_PATH && a[SUN_PATH] == 0 => format!(
            "{{sa_family=AF_UNIX, sun_path=@{:?}}}",
            String::from_utf8_lossy(&a[SUN_PATH + 1..])
        ),
        libc::AF_UNIX => {
            let p = &a[SUN_PATH.min(a.len())..];
            let p = p.split(|&b| b == 0).next().unwrap_or(p);
            format!(
                "{{sa_family=AF_UNIX, sun_path={:?}}}",
                String::from_utf8_lossy(p)
            )
        }
        libc::AF_INET if a.len() >= SOCKADDR_IN => format!(
            "{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}",
            port(a),
            std::net::Ipv4Addr::new(a[4], a[5], a[6], a[7])
        ),
        libc::AF_INET6 if a.len() >= SOCKADDR_IN6_MIN => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[8..24]);
            let scope = a
                .get(24..28)
                .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]));
            format!(
                "{{sa_family=AF_INET6, sin6_port=htons({}), sin6_flowinfo=htonl({}), \
                 inet_pton(AF_INET6, \"{}\", &sin6_addr), sin6_scope_id={scope}}}",
                port(a),
                u32::from_be_bytes([a[4], a[5], a[6], a[7]]),
                std::net::Ipv6Addr::from(ip)
            )
        }
        f => format!("{{sa_family={f}, sa_data={:?}}}", &a[2.min(a.len())..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_abstract_names_come_back_as_the_guest_s() {
        let mut host = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        host.push(0);
        host.extend_from_slice(b"umon.1/");
        host.extend_from_slice(b"name");
        let g = unix_to_guest(&host, b"umon.1/");
        assert_eq!(&g[2..], b"\0name");
        let other = [host[0], host[1], 0, b'x'];
        assert_eq!(unix_to_guest(&other, b"umon.1/"), other);
        assert_eq!(family(&[1]), 0);
        let mut inet = vec![2, 0, 0, 80, 127, 0, 0, 1];
        inet.resize(16, 0);
        assert_eq!(
            strace(&inet),
            "{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr(\"127.0.0.1\")}"
        );
        assert_eq!(
            strace(&[1, 0, b's', 0]),
            "{sa_family=AF_UNIX, sun_path=\"s\"}"
        );
    }
}
