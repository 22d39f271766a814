//! memfd_create: an anonymous file in memory, backed by a host memfd of the monitor (so its
//! size, reads and writes, seals and fstat are the host kernel's own), served as a regular file
//! with no volume behind it: read, write, lseek, ftruncate, fstat, the fcntl seals, and mmap
//! as a private copy (as any file mapping today).
//!
//! It belongs to no volume: the calls that change metadata through an fd (fchmod, fchown,
//! utimensat, the xattr sets) answer EROFS for it, and linkat cannot put it into a volume.
use super::{Fd, FileKind, HostFile, VolumeFile};
use crate::linux::{Args, Ctx, Sys};
use std::sync::Arc;
use syscalls::Errno;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_ALL_FLAGS: u32 =
    MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// The huge page size bits MFD_HUGETLB may carry (MFD_HUGE_MASK << MFD_HUGE_SHIFT).
const MFD_HUGE_BITS: u32 = 0x3f << 26;
/// MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" prefix.
const NAME_MAX_LEN: usize = 255 - 6;

/// fcntl(F_ADD_SEALS) and fcntl(F_GET_SEALS): passed to the host file (a host memfd keeps
/// them; any other file answers EINVAL there, as on Linux).
pub const F_ADD_SEALS: u64 = 1033;
/// See [`F_ADD_SEALS`].
pub const F_GET_SEALS: u64 = 1034;

/// memfd_create(name, flags), Linux's checks in its order: flags, then the name (EFAULT,
/// EINVAL beyond 249 bytes), then an fd number (EMFILE).
pub fn memfd_create(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = a.uint(1);
    let allowed = if flags & MFD_HUGETLB != 0 {
        MFD_ALL_FLAGS | MFD_HUGE_BITS
    } else {
        MFD_ALL_FLAGS
    };
    if flags & !allowed != 0 || (flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0) {
        return Err(Errno::EINVAL.into());
    }
    let name = match cx.process.space().read_cstr(cx.mem, a.ptr(0), NAME_MAX_LEN) {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL.into()),
        r => r?,
    };
    cx.process.fds().lowest_free(0)?;
    // Never executable on the host: the application cannot exec it anyway.
    let host_flags = rustix::fs::MemfdFlags::from_bits_retain(flags & !MFD_CLOEXEC)
        | rustix::fs::MemfdFlags::CLOEXEC;
    let fd =
        rustix::fs::memfd_create(&name[..], host_flags).map_err(crate::linux::io::host_errno)?;
    let mut path = b"/memfd:".to_vec();
    path.extend_from_slice(&name);
    path.extend_from_slice(b" (deleted)");
    let file = Arc::new(HostFile {
        fd,
        path,
        // No volume: fd_region then never looks a mount up, and linkat sees another
        // file system (EXDEV).
        mount: usize::MAX,
        writable_volume: false,
        kind: FileKind::Regular,
        path_only: false,
        readable: true,
        writable: true,
    });
    let entry = Fd {
        file: Arc::new(VolumeFile(file)),
        cloexec: flags & MFD_CLOEXEC != 0,
    };
    Ok(cx.process.fds().alloc(0, entry)?)
}
