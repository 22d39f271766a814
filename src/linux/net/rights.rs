//! SCM_RIGHTS of any open file, as Linux passes them between the application's sockets: the
//! sender's host fd travels in the host message, so the receiver's new fd is the same host
//! open file description (offset, status flags, pipe buffer, eventfd counter, epoll items are
//! the host's and shared), and the monitor makes it the same kind of open file again from
//! what the host says of it: a socket, a pipe end (its direction from the access mode), an
//! eventfd, timerfd, epoll or inotify instance (`/proc/self/fd`'s `anon_inode:` name), a memfd,
//! or a file in a volume (its guest path found beneath the volume that holds it now).
//!
//! A file the monitor serves without a host fd (a signalfd, a `/proc` file) travels as a
//! carrier: a host pipe's read end whose inode the sending monitor remembers with the file, so
//! a receiver in the same process gets that very open file. A carrier received by another
//! process, or a host fd of no kind above (the shared standard streams when they are not
//! pipes) that this process did not send itself, is closed and the message gets MSG_CTRUNC, as
//! Linux does when it cannot install a file.
use super::socket;
use crate::linux::fd::epoll::EpollFile;
use crate::linux::fd::eventfd::EventFd;
use crate::linux::fd::inotify::InotifyFile;
use crate::linux::fd::pipe::PipeEnd;
use crate::linux::fd::timerfd::TimerFd;
use crate::linux::fd::{FileKind, HostFile, OpenFile, VolumeFile};
use crate::linux::process::locked;
use crate::linux::Ctx;
use rustix::fs::FileType;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

/// The most sent files remembered (carriers in flight, host fds of other kinds): the oldest
/// go first, so a peer that never reads cannot make the monitor grow.
const REMEMBERED: usize = 1024;

/// A file this process sent: by the (device, inode) of the host fd that carried it.
enum Sent {
    /// A carrier: the file itself, and the carrier pipe's write end that keeps its inode (and
    /// so the key) unique while it is in flight.
    Carrier { file: OpenFile, _write_end: OwnedFd },
    /// A file that travelled as its own host fd; not kept open by this.
    Host(Weak<dyn crate::linux::fd::FileDescription>),
}

static SENT: Mutex<VecDeque<((u64, u64), Sent)>> = Mutex::new(VecDeque::new());

fn ident(fd: impl AsFd) -> Option<((u64, u64), FileType)> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some(((st.st_dev, st.st_ino), FileType::from_raw_mode(st.st_mode)))
}

fn remember(key: (u64, u64), s: Sent) {
    let mut sent = locked(&SENT);
    if sent.len() >= REMEMBERED {
        sent.pop_front();
    }
    sent.push_back((key, s));
}

/// The host fd that carries `file` in a message: its own, or a new carrier's. None when the
/// monitor cannot make a carrier (no fds left).
pub(super) fn carrier(file: &OpenFile) -> Option<OwnedFd> {
    let host = match file.as_socket() {
        Some(s) => Some(s.sock_fd()),
        None => file.host_fd(),
    };
    if let Some(fd) = host {
        let own = fd.try_clone_to_owned().ok()?;
        if let Some((key, ty)) = ident(&own) {
            // Sockets, pipes and anonymous inodes come back by their kind; the rest (the
            // standard streams) by what this process sent.
            if !matches!(ty, FileType::Socket | FileType::Fifo | FileType::Unknown) {
                remember(key, Sent::Host(Arc::downgrade(file)));
            }
        }
        return Some(own);
    }
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
    let (key, _) = ident(&r)?;
    remember(
        key,
        Sent::Carrier {
            file: file.clone(),
            _write_end: w,
        },
    );
    Some(r)
}

fn link(fd: &OwnedFd) -> Option<Vec<u8>> {
    rustix::fs::readlinkat(
        rustix::fs::CWD,
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        Vec::new(),
    )
    .ok()
    .map(std::ffi::CString::into_bytes)
}

/// A host fd a message brought as the application's open file; None when it is none the
/// application may have (closed).
pub(super) fn received(cx: &Ctx<'_, '_>, fd: OwnedFd) -> Option<OpenFile> {
    let (key, ty) = ident(&fd)?;
    if ty == FileType::Socket {
        return socket::from_host(fd);
    }
    // A carrier, or a file of another kind this process sent.
    {
        let mut sent = locked(&SENT);
        if let Some(i) = sent.iter().position(|(k, s)| {
            *k == key && (matches!(s, Sent::Carrier { .. }) == (ty == FileType::Fifo))
        }) {
            match &sent[i].1 {
                Sent::Carrier { file, .. } => {
                    let f = file.clone();
                    sent.remove(i);
                    return Some(f);
                }
                Sent::Host(w) => {
                    if let Some(f) = w.upgrade() {
                        if f.as_volume().is_none() {
                            return Some(f);
                        }
                    }
                }
            }
        }
    }
    let acc = rustix::fs::fcntl_getfl(&fd).ok()?.bits() & libc::O_ACCMODE as u32;
    let name = link(&fd)?;
    if ty == FileType::Fifo && name.starts_with(b"pipe:") {
        return Some(Arc::new(PipeEnd::from_host(
            fd,
            acc == libc::O_WRONLY as u32,
        )));
    }
    let file: OpenFile = match &name[..] {
        b"anon_inode:[eventfd]" => Arc::new(EventFd::from_host(fd)),
        b"anon_inode:[timerfd]" => Arc::new(TimerFd::from_host(fd)),
        b"anon_inode:[eventpoll]" => Arc::new(EpollFile::from_host(fd)),
        b"anon_inode:inotify" => Arc::new(InotifyFile::from_host(fd)),
        _ => Arc::new(VolumeFile(Arc::new(host_file(cx, fd, ty, acc, name)?))),
    };
    Some(file)
}

/// A memfd, or a file in one of the volumes, as the HostFile an open would have made.
fn host_file(
    cx: &Ctx<'_, '_>,
    fd: OwnedFd,
    ty: FileType,
    acc: u32,
    name: Vec<u8>,
) -> Option<HostFile> {
    let fl = rustix::fs::fcntl_getfl(&fd).ok()?;
    let path_only = fl.contains(rustix::fs::OFlags::PATH);
    let kind = match ty {
        FileType::RegularFile => FileKind::Regular,
        FileType::Directory => FileKind::Directory,
        _ => FileKind::Other,
    };
    let readable = !path_only && acc != libc::O_WRONLY as u32;
    let writable = !path_only && acc != libc::O_RDONLY as u32;
    let nlink = rustix::fs::fstat(&fd).ok()?.st_nlink;
    if name.starts_with(b"/memfd:") && nlink == 0 && kind == FileKind::Regular {
        // As memfd_create made it: no volume.
        return Some(HostFile {
            fd,
            path: name,
            mount: usize::MAX,
            writable_volume: false,
            kind,
            path_only,
            readable,
            writable,
        });
    }
    let fs = cx.process.fs();
    // The innermost volume holding it: the one mounted deepest in the guest's tree.
    let (mount, path) = (0..)
        .map_while(|i| fs.get_mount(i).map(|_| i))
        .filter_map(|i| fs.path_of(i, fd.as_fd(), b"").ok().map(|p| (i, p)))
        .max_by_key(|(i, _)| fs.mount_guest(*i).len())?;
    let writable_volume = fs.mount(mount).writable();
    Some(HostFile {
        fd,
        path,
        mount,
        writable_volume,
        kind,
        path_only,
        readable,
        writable,
    })
}
