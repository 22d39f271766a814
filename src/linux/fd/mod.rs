//! The application's file descriptor table: guest fd numbers are the guest's own, mapped to
//! what they refer to on the monitor's side, an open file description ([`FileDescription`]):
//! one of the standard streams, or a host fd opened in a volume. Duplicated guest fds share one host open file (offset, flags), as on Linux;
//! the host fd is closed when the last guest fd referring to it is, and all of them when the
//! VM (its [`FdTable`]) is dropped.
/// The `FileDescription` methods every anon-inode kind backed by one host fd (its `fd` field)
/// shares: the host fd (poll, epoll), an anon-inode stat, the host's status flags, open for
/// reading and writing. Used inside each kind's `impl FileDescription`.
macro_rules! anon_host_fd_methods {
    () => {
        fn host_fd(&self) -> Option<BorrowedFd<'_>> {
            Some(self.fd.as_fd())
        }

        fn stat(&self) -> Result<Stat, rustix::io::Errno> {
            Ok(anon_stat())
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
    };
}

pub mod epoll;
pub mod eventfd;
pub mod file;
pub mod inotify;
pub mod memfd;
#[allow(unsafe_code)]
// host pipe2, splice, tee, FIONREAD and the pipe-size fcntls (no rustix feature here)
pub mod pipe;
pub mod signalfd;
pub mod timerfd;

pub use file::{FileDescription, OpenFile, StdioFile, VolumeFile};

use crate::linux::fs::volume::MountId;
use crate::linux::stdio::Stdio;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;

/// What kind of object a host file is, from `fstat` at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: reads and writes may span several buffers in one call.
    Regular,
    /// A directory: a base for relative lookups, readable with getdents64.
    Directory,
    /// Anything else (FIFO, device, socket, a symlink opened with `O_PATH | O_NOFOLLOW`).
    Other,
}

/// A file or directory the application opened in a volume.
#[derive(Debug)]
pub struct HostFile {
    /// The host fd.
    pub fd: OwnedFd,
    /// The guest path it was opened by, absolute and normalized: the base of lookups relative
    /// to it, and the working directory after fchdir.
    pub path: Vec<u8>,
    /// The volume it lives in.
    pub mount: MountId,
    /// Whether that volume is writable (an fd of a read-only volume never writes, and calls that
    /// change metadata through it fail with EROFS).
    pub writable_volume: bool,
    /// What it is.
    pub kind: FileKind,
    /// Opened with `O_PATH`: a handle only, no I/O.
    pub path_only: bool,
    /// Opened for reading (`O_RDONLY` or `O_RDWR`).
    pub readable: bool,
    /// Opened for writing (`O_WRONLY` or `O_RDWR`).
    pub writable: bool,
}

impl AsFd for HostFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One slot of the table.
#[derive(Clone)]
pub struct Fd {
    /// The open file.
    pub file: OpenFile,
    /// FD_CLOEXEC: closed by exec.
    pub cloexec: bool,
}

/// Largest monitor buffer bytes move through between a host file or stream and guest memory
/// (sendfile, copy_file_range, a standard stream that is not a host fd).
pub const BOUNCE_BYTES: u64 = 1 << 20;

/// Default RLIMIT_NOFILE.
pub const DEFAULT_MAX_FDS: u64 = 1024;
/// The most fds an application may raise its limit to.
pub const HARD_MAX_FDS: u64 = 4096;

/// fd number -> open file.
pub struct FdTable {
    slots: Vec<Option<Fd>>,
    /// Numbers handed out by [`FdTable::reserve`] and not yet installed or given back: free to
    /// nobody else (as Linux's get_unused_fd_flags), yet not open (EBADF).
    reserved: Vec<u64>,
    /// Current RLIMIT_NOFILE.
    pub limit: u64,
}

impl Default for FdTable {
    /// Three closed standard streams.
    fn default() -> Self {
        FdTable::new(&Arc::new(Stdio::default()))
    }
}

impl FdTable {
    /// Fds 0, 1 and 2 on the standard streams `stdio`.
    pub fn new(stdio: &Arc<Stdio>) -> FdTable {
        let std = |n| {
            let file: OpenFile = Arc::new(StdioFile {
                n,
                stdio: stdio.clone(),
            });
            Some(Fd {
                file,
                cloexec: false,
            })
        };
        FdTable {
            slots: vec![std(0), std(1), std(2)],
            reserved: Vec::new(),
            limit: DEFAULT_MAX_FDS,
        }
    }

    /// The open file behind `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i).cloned().flatten())
            .ok_or(Errno::EBADF)
    }

    /// Mutable slot of an open `fd`.
    pub fn get_mut(&mut self, fd: u64) -> Result<&mut Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.as_mut())
            .ok_or(Errno::EBADF)
    }

    /// The lowest free number >= `min` below the limit (RLIMIT_NOFILE), or EMFILE. (F_DUPFD
    /// checks its own minimum against the limit: EINVAL.)
    pub fn lowest_free(&self, min: u64) -> Result<u64, Errno> {
        (min..self.limit)
            .find(|&i| {
                self.slots.get(i as usize).is_none_or(|s| s.is_none())
                    && !self.reserved.contains(&i)
            })
            .ok_or(Errno::EMFILE)
    }

    /// Take the lowest free number >= `min` for an open that completes later (without the
    /// table locked): [`FdTable::install`] fills it, [`FdTable::unreserve`] gives it back.
    pub fn reserve(&mut self, min: u64) -> Result<u64, Errno> {
        let i = self.lowest_free(min)?;
        self.reserved.push(i);
        Ok(i)
    }

    /// Install `entry` at the number [`FdTable::reserve`] gave.
    pub fn install(&mut self, fd: u64, entry: Fd) {
        self.unreserve(fd);
        let i = fd as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(entry);
    }

    /// Give back a number [`FdTable::reserve`] gave, unused.
    pub fn unreserve(&mut self, fd: u64) {
        self.reserved.retain(|&r| r != fd);
    }

    /// Install `entry` at the lowest free number >= `min`.
    pub fn alloc(&mut self, min: u64, entry: Fd) -> Result<u64, Errno> {
        let i = self.lowest_free(min)?;
        self.set(i, entry)?;
        Ok(i)
    }

    /// Install `entry` at exactly `fd`, closing what was there. EBUSY for a number an open in
    /// progress reserved, as Linux's dup2 says.
    pub fn set(&mut self, fd: u64, entry: Fd) -> Result<(), Errno> {
        if fd >= self.limit {
            return Err(Errno::EBADF);
        }
        if self.reserved.contains(&fd) {
            return Err(Errno::EBUSY);
        }
        let i = fd as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(entry);
        Ok(())
    }

    /// How many fd numbers the table has room for, as Linux's max_fds: at least 64 (its first
    /// table), else the numbers in use rounded up to a power of two. select ignores bits past it.
    pub fn capacity(&self) -> u64 {
        let used = self
            .slots
            .iter()
            .rposition(|s| s.is_some())
            .map_or(0, |i| i as u64 + 1);
        used.next_power_of_two().max(64)
    }

    /// Close `fd`.
    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        self.get(fd)?;
        self.slots[fd as usize] = None;
        Ok(())
    }

    /// Two fd numbers for a pair (pipe, socketpair), the lowest free: both or neither (EMFILE).
    pub fn reserve_pair(&mut self) -> Result<(u64, u64), Errno> {
        let first = self.reserve(0)?;
        match self.reserve(0) {
            Ok(second) => Ok((first, second)),
            Err(e) => {
                self.unreserve(first);
                Err(e)
            }
        }
    }

    /// exec: close every fd with FD_CLOEXEC.
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|f| f.cloexec) {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_and_limits() {
        let mut t = FdTable::default();
        let e = t.get(1).unwrap();
        assert_eq!(t.alloc(0, e.clone()), Ok(3));
        t.close(0).unwrap();
        assert_eq!(t.alloc(0, e.clone()), Ok(0));
        assert_eq!(t.close(0), Ok(()));
        assert_eq!(t.close(0), Err(Errno::EBADF));
        assert_eq!(t.get(u64::MAX).err(), Some(Errno::EBADF));
        t.limit = 5;
        assert_eq!(t.alloc(4, e.clone()), Ok(4));
        assert_eq!(t.alloc(4, e.clone()), Err(Errno::EMFILE));
        assert_eq!(t.lowest_free(4), Err(Errno::EMFILE));
        assert_eq!(t.alloc(9, e.clone()), Err(Errno::EMFILE));
        t.limit = 0;
        assert_eq!(t.alloc(0, e.clone()), Err(Errno::EMFILE));
        assert_eq!(t.set(7, e), Err(Errno::EBADF));
    }

    #[test]
    fn a_reserved_number_is_nobody_elses_until_installed_or_given_back() {
        let mut t = FdTable::default();
        let e = t.get(1).unwrap();
        let r = t.reserve(0).unwrap();
        assert_eq!(r, 3);
        assert_eq!(t.get(r).err(), Some(Errno::EBADF), "not open yet");
        assert_eq!(
            t.alloc(0, e.clone()),
            Ok(4),
            "a racing dup gets another number"
        );
        assert_eq!(t.set(r, e.clone()), Err(Errno::EBUSY), "dup2 onto it");
        t.install(r, e.clone());
        assert!(t.get(r).is_ok());
        let r2 = t.reserve(0).unwrap();
        t.unreserve(r2);
        assert_eq!(t.alloc(0, e), Ok(r2), "given back");
    }

    #[test]
    fn host_fds_close_with_their_last_guest_fd() {
        let fd =
            rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap();
        let file = Arc::new(HostFile {
            fd,
            path: b"/".to_vec(),
            mount: 0,
            writable_volume: false,
            kind: FileKind::Directory,
            path_only: true,
            readable: false,
            writable: false,
        });
        let weak = Arc::downgrade(&file);
        let mut t = FdTable::default();
        let n = t
            .alloc(
                0,
                Fd {
                    file: std::sync::Arc::new(VolumeFile(file)),
                    cloexec: false,
                },
            )
            .unwrap();
        let dup = t.alloc(0, t.get(n).unwrap()).unwrap();
        t.close(n).unwrap();
        assert!(weak.upgrade().is_some(), "the dup keeps it open");
        t.close(dup).unwrap();
        assert!(weak.upgrade().is_none(), "closed with the last guest fd");
        let again = t.alloc(0, t.get(1).unwrap()).unwrap();
        drop(t);
        assert_eq!(again, 3);
    }
}
