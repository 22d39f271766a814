//! inotify on volume paths: each instance is a host inotify fd of the monitor, each watch a
//! host watch on the object the guest path names in its volume (reached through the confined
//! O_PATH handle the lookup gives, as `/proc/self/fd/N`, never through a host path the guest
//! chose). The event records pass through unchanged: watch descriptors are the instance's
//! own (numbered from 1 as on Linux), names are leaf names inside the watched directory, and
//! the masks are Linux's. read blocks (interruptibly) or not as IN_NONBLOCK/O_NONBLOCK say;
//! poll sees the host fd.
use super::file::memory_io;
use super::{Fd, FileDescription};
use crate::linux::abi::{oflag, Stat};
use crate::linux::fs::attrs::{watch_target, WatchTarget};
use crate::linux::{Args, Ctx, Sys};
use crate::machine::memory::GuestMem;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use umon_abi::Gpa;

const IN_NONBLOCK: u32 = oflag::NONBLOCK as u32;
const IN_CLOEXEC: u32 = oflag::CLOEXEC as u32;
/// ALL_INOTIFY_BITS less the flags: the events a watch may ask for.
const IN_ALL_EVENTS: u32 = 0xfff;
/// Event bits the kernel reports but a watch cannot ask for; Linux still accepts them in a
/// mask (they count in its "at least one known bit" check and are then dropped).
const IN_UNMOUNT: u32 = 0x2000;
const IN_Q_OVERFLOW: u32 = 0x4000;
const IN_IGNORED: u32 = 0x8000;
const IN_ISDIR: u32 = 0x4000_0000;
const IN_ONLYDIR: u32 = 0x0100_0000;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
const IN_EXCL_UNLINK: u32 = 0x0400_0000;
const IN_MASK_CREATE: u32 = 0x1000_0000;
const IN_MASK_ADD: u32 = 0x2000_0000;
const IN_ONESHOT: u32 = 0x8000_0000;
const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ISDIR
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ONESHOT;

/// An inotify instance.
#[derive(Debug)]
pub struct InotifyFile(OwnedFd);

impl InotifyFile {
    /// The inotify instance behind a host fd received by SCM_RIGHTS.
    pub(crate) fn from_host(fd: OwnedFd) -> InotifyFile {
        InotifyFile(fd)
    }
}

impl FileDescription for InotifyFile {
    fn read_piece(
        &self,
        mem: &GuestMem,
        gpa: Gpa,
        len: u64,
        pos: Option<u64>,
    ) -> io::Result<usize> {
        if pos.is_some() {
            return Err(super::file::espipe());
        }
        let fd = &self.0;
        mem.read_from(gpa, len, &mut &*fd).map_err(memory_io)
    }

    fn write_piece(&self, _: &GuestMem, _: Gpa, _: u64, _: Option<u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }

    fn write_bytes(&self, _: &[u8], _: Option<&mut u64>) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    fn stat(&self) -> Result<Stat, rustix::io::Errno> {
        rustix::fs::fstat(&self.0).map(|s| Stat::from_host(&s))
    }

    fn status_flags(&self) -> Result<u64, rustix::io::Errno> {
        super::file::host_status_flags(self.0.as_fd())
    }

    fn set_status_flags(&self, mask: u32, bits: u32) -> Result<(), rustix::io::Errno> {
        super::file::set_host_status_flags(self.0.as_fd(), mask, bits)
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        false
    }

    fn as_inotify(&self) -> Option<&InotifyFile> {
        Some(self)
    }
}

impl InotifyFile {
    /// A read of 0 bytes: Linux's inotify_read still waits for an event (EAGAIN without one
    /// under O_NONBLOCK) and then finds it does not fit (EINVAL). The host instance is the
    /// same code, so the host read of nothing answers exactly that.
    pub fn read_nothing(&self) -> io::Result<usize> {
        rustix::io::read(&self.0, &mut [0u8; 0][..])
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))
    }
}

/// inotify_init1(flags): IN_NONBLOCK and IN_CLOEXEC only.
pub fn inotify_init1(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    init(cx, a.uint(0))
}

/// inotify_init(): inotify_init1(0).
pub fn inotify_init(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    init(cx, 0)
}

fn init(cx: &mut Ctx<'_, '_>, flags: u32) -> Sys {
    use rustix::fs::inotify::CreateFlags;
    if flags & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    cx.process.fds().lowest_free(0)?;
    let mut host = CreateFlags::CLOEXEC;
    if flags & IN_NONBLOCK != 0 {
        host |= CreateFlags::NONBLOCK;
    }
    let fd = rustix::fs::inotify::init(host).map_err(crate::linux::io::host_errno)?;
    let entry = Fd {
        file: Arc::new(InotifyFile(fd)),
        cloexec: flags & IN_CLOEXEC != 0,
    };
    Ok(cx.process.fds().alloc(0, entry)?)
}

/// The host inotify fd behind guest fd `n`: EBADF for none or an O_PATH fd (Linux's fdget
/// refuses those before looking at the kind), EINVAL for another kind of file (a volume file;
/// a standard stream's host fd is refused by the host itself).
fn instance(cx: &Ctx<'_, '_>, n: u64) -> Result<OwnedFd, Errno> {
    let file = cx.process.fds().get(n)?.file;
    if file.status_flags().is_ok_and(|f| f & oflag::PATH != 0) {
        return Err(Errno::EBADF);
    }
    if file.as_volume().is_some() {
        return Err(Errno::EINVAL);
    }
    let fd = file.host_fd().ok_or(Errno::EINVAL)?;
    // Kept open past the fd table's lock, even if the guest closes it meanwhile.
    fd.try_clone_to_owned()
        .map_err(|e| Errno::new(e.raw_os_error().unwrap_or(libc::EBADF)))
}

/// inotify_add_watch(fd, path, mask): Linux's order: the mask (EINVAL), the fd (EBADF,
/// EINVAL), then the path in the guest's view (IN_DONT_FOLLOW: the last component is not
/// followed).
pub fn inotify_add_watch(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    use rustix::fs::inotify::WatchFlags;
    let mask = a.uint(2);
    if mask & ALL_INOTIFY_BITS == 0 || (mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0) {
        return Err(Errno::EINVAL.into());
    }
    let inot = instance(cx, a.fd(0))?;
    let follow = mask & IN_DONT_FOLLOW == 0;
    let WatchTarget(object) = watch_target(cx, a.ptr(1), follow)?;
    // The object itself: its O_PATH handle, through the host's fd link (which the host
    // follows to the object, a symlink included when it was not followed above).
    let link = format!("/proc/self/fd/{}", object.as_raw_fd());
    // IN_IGNORED keeps the host's own "a known bit" check passing when the guest's mask had
    // only IN_DONT_FOLLOW (not given to the host: it would watch the fd link itself); the
    // host drops it from the watch as Linux does.
    let flags = WatchFlags::from_bits_retain((mask & !IN_DONT_FOLLOW) | IN_IGNORED);
    let wd = rustix::fs::inotify::add_watch(&inot, link.as_str(), flags)
        .map_err(crate::linux::io::host_errno)?;
    Ok(wd as u64)
}

/// inotify_rm_watch(fd, wd).
pub fn inotify_rm_watch(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let inot = instance(cx, a.fd(0))?;
    rustix::fs::inotify::remove_watch(&inot, a.int(1)).map_err(crate::linux::io::host_errno)?;
    Ok(0)
}
