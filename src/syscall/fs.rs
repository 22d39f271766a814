//! File-system syscalls over volumes: a guest path is read from guest memory (bytes, at most
//! PATH_MAX), made absolute against the working directory or a directory fd and normalized
//! lexically, matched to a volume (the longest guest prefix), and looked up on the host beneath
//! that volume's root by [`crate::volume`], which keeps it inside. A path no volume covers does
//! not exist (ENOENT); any change to a read-only volume is EROFS, checked in the order Linux
//! checks a read-only mount; host errors pass through.
//!
//! Calls that act on the object a path names (open, stat, access, chmod, utimensat, truncate,
//! chdir) first get an `O_PATH` handle on it; calls that act on a directory entry (mkdir,
//! unlink, rename, link, symlink) open the parent directory and name the last component, so a
//! final symlink is never followed outside the volume. Where the host call has no form taking
//! an `O_PATH` fd (access, chmod, a following link), it goes through the monitor's own
//! `/proc/self/fd/N` for that handle, as glibc does: the object is already the confined one.
use super::fd::{Fd, FileKind, HostFile, OpenFile};
use super::io::{host_errno, stat_from, stat_of, PATH_MAX};
use super::linux::{Statx, Timespec};
use super::{Args, Ctx, Sys};
use crate::volume::{GuestPath, Located, Mount, Parent};
use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// AT_FDCWD, as the 64-bit register value a C `int` -100 arrives as.
pub const AT_FDCWD: u64 = -100i64 as u64;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// unlinkat's AT_REMOVEDIR and faccessat's AT_EACCESS share a value.
pub const AT_REMOVEDIR: u64 = 0x200;
const AT_EACCESS: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;
const STATX_RESERVED: u64 = 0x8000_0000;

/// open(2) flags (x86-64 values).
pub mod oflag {
    /// O_ACCMODE.
    pub const ACCMODE: u64 = 0o3;
    /// O_RDONLY.
    pub const RDONLY: u64 = 0o0;
    /// O_WRONLY.
    pub const WRONLY: u64 = 0o1;
    /// O_RDWR.
    pub const RDWR: u64 = 0o2;
    /// O_CREAT.
    pub const CREAT: u64 = 0o100;
    /// O_EXCL.
    pub const EXCL: u64 = 0o200;
    /// O_NOCTTY.
    pub const NOCTTY: u64 = 0o400;
    /// O_TRUNC.
    pub const TRUNC: u64 = 0o1000;
    /// O_APPEND.
    pub const APPEND: u64 = 0o2000;
    /// O_NONBLOCK.
    pub const NONBLOCK: u64 = 0o4000;
    /// O_DSYNC.
    pub const DSYNC: u64 = 0o10000;
    /// O_DIRECT.
    pub const DIRECT: u64 = 0o40000;
    /// O_LARGEFILE.
    pub const LARGEFILE: u64 = 0o100000;
    /// O_DIRECTORY.
    pub const DIRECTORY: u64 = 0o200000;
    /// O_NOFOLLOW.
    pub const NOFOLLOW: u64 = 0o400000;
    /// O_NOATIME.
    pub const NOATIME: u64 = 0o1000000;
    /// O_CLOEXEC.
    pub const CLOEXEC: u64 = 0o2000000;
    /// __O_SYNC (O_SYNC is this | O_DSYNC).
    pub const SYNC: u64 = 0o4000000;
    /// O_PATH.
    pub const PATH: u64 = 0o10000000;
    /// __O_TMPFILE (O_TMPFILE is this | O_DIRECTORY).
    pub const TMPFILE: u64 = 0o20000000;
    /// Flags passed on to the host open; others (O_ASYNC: no SIGIO may reach the monitor, and
    /// bits Linux ignores) are dropped, and O_CLOEXEC is the guest's own fd flag.
    pub const PASSED: u64 = ACCMODE
        | CREAT
        | EXCL
        | NOCTTY
        | TRUNC
        | APPEND
        | NONBLOCK
        | DSYNC
        | DIRECT
        | LARGEFILE
        | DIRECTORY
        | NOFOLLOW
        | NOATIME
        | SYNC
        | TMPFILE;
    /// The flags that mean anything with O_PATH.
    pub const PATH_PASSED: u64 = PATH | DIRECTORY | NOFOLLOW;
}

/// statfs f_flags: ST_RDONLY.
const ST_RDONLY: i64 = 1;

/// struct statfs (x86-64).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
#[allow(missing_docs)] // the kernel's field names say it all
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

const _: () = assert!(std::mem::size_of::<Statfs>() == 120);

/// A path argument, read from guest memory: at most PATH_MAX - 1 bytes (ENAMETOOLONG).
/// A component longer than NAME_MAX is ENAMETOOLONG, as Linux's path walk says.
fn read_path(cx: &Ctx<'_, '_>, ptr: u64) -> Result<Vec<u8>, Errno> {
    const NAME_MAX: usize = 255;
    let path = cx.space().read_cstr(cx.mem, ptr, PATH_MAX - 1)?;
    if path.split(|&b| b == b'/').any(|c| c.len() > NAME_MAX) {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(path)
}

/// `name` looked up from `dirfd` (AT_FDCWD: the working directory; ignored for an absolute
/// name): the normalized guest path and where it lives. ENOENT for "" and for a path no volume
/// covers; EBADF / ENOTDIR for a bad `dirfd` with a relative name.
fn locate(cx: &Ctx<'_, '_>, dirfd: u64, name: &[u8]) -> Result<(GuestPath, Located), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = if name.starts_with(b"/") || dirfd as i32 == -100 {
        GuestPath::new(cx.state.process.fs.cwd(), name)
    } else {
        match cx.state.process.fds.get(dirfd)?.file {
            OpenFile::Host(h) if h.kind == FileKind::Directory => GuestPath::new(&h.path, name),
            _ => return Err(Errno::ENOTDIR),
        }
    };
    let at = cx.state.process.fs.locate(&path).ok_or(Errno::ENOENT)?;
    Ok((path, at))
}

/// What an `*at` call names.
enum Target {
    /// A path in a volume.
    Path(GuestPath, Located),
    /// The open file `dirfd` itself (an empty path with AT_EMPTY_PATH).
    Fd(OpenFile),
}

/// The target of an `*at` call: with AT_EMPTY_PATH in `flags`, "" means `dirfd` itself (or
/// the working directory for AT_FDCWD).
fn target(cx: &Ctx<'_, '_>, dirfd: u64, ptr: u64, flags: u64) -> Result<Target, Errno> {
    let name = read_path(cx, ptr)?;
    if name.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 == -100 {
            let (p, at) = locate(cx, dirfd, b".")?;
            return Ok(Target::Path(p, at));
        }
        return Ok(Target::Fd(cx.state.process.fds.get(dirfd)?.file));
    }
    let (p, at) = locate(cx, dirfd, &name)?;
    Ok(Target::Path(p, at))
}

fn mount<'c>(cx: &'c Ctx<'_, '_>, at: &Located) -> &'c Mount {
    cx.state.process.fs.mount(at.mount)
}

fn host<T>(r: rustix::io::Result<T>) -> Result<T, Errno> {
    r.map_err(host_errno)
}

/// `/proc/self/fd/N` for the monitor's own fd: how to name an `O_PATH` handle to calls that
/// take only a path.
fn proc_fd(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// A host fd looked up for one call, or one the application holds open.
enum Handle {
    Own(OwnedFd),
    Open(Arc<HostFile>),
}

impl AsFd for Handle {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Handle::Own(fd) => fd.as_fd(),
            Handle::Open(h) => h.fd.as_fd(),
        }
    }
}

/// Why creating `rel` on a read-only volume fails, in Linux's order: a missing parent is
/// ENOENT, an existing entry EEXIST, anything else EROFS.
fn refuse_create(m: &Mount, rel: &[u8]) -> Errno {
    match m.handle(rel, true) {
        Ok(_) => Errno::EEXIST,
        Err(rustix::io::Errno::NOENT) => match m.parent(rel) {
            Ok(_) => Errno::EROFS,
            Err(e) => host_errno(e),
        },
        Err(e) => host_errno(e),
    }
}

// ---- open ---------------------------------------------------------------------------------

/// openat(dirfd, path, flags, mode); open and creat come here with AT_FDCWD.
pub fn open(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, flags: u64, mode: u64) -> Sys {
    let name = read_path(cx, path)?;
    // EMFILE before anything happens on the host (O_CREAT must not create then fail).
    let slot = cx.state.process.fds.lowest_free(0)?;
    let (p, at) = locate(cx, dirfd, &name)?;
    let m = mount(cx, &at);
    let fd = open_in(m, &at.rel, flags, mode, cx.state.process.fs.umask())?;
    let st = host(rustix::fs::fstat(&fd))?;
    let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::RegularFile => FileKind::Regular,
        rustix::fs::FileType::Directory => FileKind::Directory,
        _ => FileKind::Other,
    };
    let path_only = flags & oflag::PATH != 0;
    let acc = flags & oflag::ACCMODE;
    let file = HostFile {
        fd,
        path: p.abs,
        mount: at.mount,
        writable_volume: m.writable(),
        kind,
        path_only,
        readable: !path_only && (acc == oflag::RDONLY || acc == oflag::RDWR),
        writable: !path_only && (acc == oflag::WRONLY || acc == oflag::RDWR),
    };
    cx.proc().fds.set(
        slot,
        Fd {
            file: OpenFile::Host(Arc::new(file)),
            cloexec: flags & oflag::CLOEXEC != 0,
        },
    )?;
    Ok(slot)
}

fn open_in(m: &Mount, rel: &[u8], flags: u64, mode: u64, umask: u32) -> Result<OwnedFd, Errno> {
    let of = |bits: u64| OFlags::from_bits_retain(bits as u32);
    if flags & oflag::PATH != 0 {
        return host(m.open(rel, of(flags & oflag::PATH_PASSED), Mode::empty()));
    }
    let acc = flags & oflag::ACCMODE;
    let tmpfile = flags & oflag::TMPFILE != 0;
    let creates = flags & oflag::CREAT != 0 || tmpfile;
    let mut pass = (flags & oflag::PASSED) | oflag::NOCTTY;
    if !m.writable() && (acc != oflag::RDONLY || flags & oflag::TRUNC != 0 || creates) {
        // As on a read-only mount: a missing file is still ENOENT (EROFS when it would be
        // created), O_EXCL still EEXIST, and an existing file opens read-only with O_CREAT.
        let excl = creates && flags & oflag::EXCL != 0;
        match m.handle(rel, excl || flags & oflag::NOFOLLOW != 0) {
            Ok(_) if excl && !tmpfile => return Err(Errno::EEXIST),
            Ok(_) if acc != oflag::RDONLY || flags & oflag::TRUNC != 0 || tmpfile => {
                return Err(Errno::EROFS)
            }
            Ok(_) => pass &= !(oflag::CREAT | oflag::EXCL),
            Err(rustix::io::Errno::NOENT) if creates => return Err(refuse_create(m, rel)),
            Err(e) => return Err(host_errno(e)),
        }
    }
    let mode = if pass & (oflag::CREAT | oflag::TMPFILE) != 0 {
        (mode as u32 & 0o7777) & !umask
    } else {
        0
    };
    host(m.open(rel, of(pass), Mode::from_bits_retain(mode)))
}

// ---- stat ---------------------------------------------------------------------------------

/// The host stat of what an `*at` call names; a final symlink is followed unless NOFOLLOW.
fn stat_target(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    path: u64,
    flags: u64,
) -> Result<super::linux::Stat, Errno> {
    match target(cx, dirfd, path, flags)? {
        Target::Fd(file) => stat_of(cx, &file),
        Target::Path(_, at) => {
            let fd = host(mount(cx, &at).handle(&at.rel, flags & AT_SYMLINK_NOFOLLOW != 0))?;
            Ok(stat_from(&host(rustix::fs::fstat(&fd))?))
        }
    }
}

pub fn newfstatat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = a.0[3];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let st = stat_target(cx, a.0[0], a.0[1], flags)?;
    cx.write_val(a.0[2], &st)?;
    Ok(0)
}

/// stat(path, buf) and lstat (`nofollow`).
pub fn stat(cx: &mut Ctx<'_, '_>, a: &Args, nofollow: bool) -> Sys {
    let flags = if nofollow { AT_SYMLINK_NOFOLLOW } else { 0 };
    let st = stat_target(cx, AT_FDCWD, a.0[0], flags)?;
    cx.write_val(a.0[1], &st)?;
    Ok(0)
}

pub fn statx(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (dirfd, path, flags, mask, buf) = (a.0[0], a.0[1], a.0[2], a.0[3], a.0[4]);
    let known = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE;
    if flags & !known != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL.into());
    }
    let st = Statx::from_stat(&stat_target(cx, dirfd, path, flags)?);
    cx.write_val(buf, &st)?;
    Ok(0)
}

fn statfs_of(fd: impl AsFd, writable: bool) -> Result<Statfs, Errno> {
    let s = host(rustix::fs::fstatfs(fd))?;
    let mut flags = s.f_flags;
    if !writable {
        flags |= ST_RDONLY;
    }
    Ok(Statfs {
        f_type: s.f_type,
        f_bsize: s.f_bsize,
        f_blocks: s.f_blocks,
        f_bfree: s.f_bfree,
        f_bavail: s.f_bavail,
        f_files: s.f_files,
        f_ffree: s.f_ffree,
        f_fsid: [0; 2],
        f_namelen: s.f_namelen,
        f_frsize: s.f_frsize,
        f_flags: flags,
        f_spare: [0; 4],
    })
}

/// fstatfs: the host file system's numbers; a read-only volume says ST_RDONLY.
pub fn fstatfs(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let st = match cx.state.process.fds.get(a.0[0])?.file {
        OpenFile::Host(h) => statfs_of(&h.fd, h.writable_volume)?,
        stream => match stream.stream().and_then(|n| cx.state.stdio.host_fd(n)) {
            Some(fd) => statfs_of(fd, true)?,
            None => return Err(Errno::EINVAL.into()),
        },
    };
    cx.write_val(a.0[1], &st)?;
    Ok(0)
}

pub fn statfs(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let name = read_path(cx, a.0[0])?;
    let (_, at) = locate(cx, AT_FDCWD, &name)?;
    let m = mount(cx, &at);
    let fd = host(m.handle(&at.rel, false))?;
    let st = statfs_of(&fd, m.writable())?;
    cx.write_val(a.0[1], &st)?;
    Ok(0)
}

// ---- directories --------------------------------------------------------------------------

/// Most bytes of directory entries one getdents64 call returns.
const MAX_DIRENTS_BYTES: usize = 1 << 20;
/// Bytes of `struct linux_dirent64` before the name.
const DIRENT_HEAD: usize = 19;

/// getdents64: the host's entries, re-encoded as `struct linux_dirent64` records (d_ino, d_off,
/// d_reclen aligned to 8, d_type, NUL-terminated name). The position is the host file's own,
/// so it is shared by dup'ed fds and lseek/rewinddir work as on Linux.
pub fn getdents64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (fd, dirp, count) = (a.0[0], a.0[1], (a.0[2] as u32) as usize);
    let OpenFile::Host(h) = cx.state.process.fds.get(fd)?.file else {
        return Err(Errno::ENOTDIR.into());
    };
    if h.path_only {
        return Err(Errno::EBADF.into());
    }
    if h.kind != FileKind::Directory {
        return Err(Errno::ENOTDIR.into());
    }
    let want = count.min(MAX_DIRENTS_BYTES);
    // The host's records have the same layout, so a host buffer of `want` bytes returns no
    // more than fits the guest's, and EINVAL itself when not even one entry fits.
    let mut space = vec![MaybeUninit::<u8>::uninit(); want + 8];
    let skip = space.as_ptr().align_offset(8).min(8);
    let mut dir = rustix::fs::RawDir::new(&h.fd, &mut space[skip..skip + want]);
    let mut out: Vec<u8> = Vec::with_capacity(want.min(64 << 10));
    let mut resume: Option<u64> = None;
    let mut overflow = false;
    while let Some(entry) = dir.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if out.is_empty() => return Err(host_errno(e).into()),
            Err(_) => break,
        };
        let name = entry.file_name().to_bytes();
        let reclen = (DIRENT_HEAD + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > want {
            overflow = true;
            break;
        }
        let d_type = match entry.file_type() {
            rustix::fs::FileType::Unknown => 0u8,
            t => (t.as_raw_mode() >> 12) as u8,
        };
        out.extend_from_slice(&entry.ino().to_ne_bytes());
        out.extend_from_slice(&entry.next_entry_cookie().to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        out.push(d_type);
        out.extend_from_slice(name);
        out.resize(out.len() + reclen - DIRENT_HEAD - name.len(), 0);
        resume = Some(entry.next_entry_cookie());
        // One host batch per call: the next call continues from the host position.
        if dir.is_buffer_empty() {
            break;
        }
    }
    if overflow {
        // Entries were read past what fits: continue after the last one delivered.
        let Some(cookie) = resume else {
            return Err(Errno::EINVAL.into());
        };
        host(rustix::fs::seek(&h.fd, rustix::fs::SeekFrom::Start(cookie)))?;
    }
    cx.space().write(cx.mem, dirp, &out)?;
    Ok(out.len() as u64)
}

/// What every call that makes a new directory entry (mkdir, symlink) checks, in Linux's order:
/// the name is not the mount point itself or a trailing ".", the volume is writable; then
/// `create` runs on the parent directory and the new entry's name.
fn create_entry(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    name: &[u8],
    create: impl FnOnce(&Parent<'_>, &[u8]) -> rustix::io::Result<()>,
) -> Sys {
    let (p, at) = locate(cx, dirfd, name)?;
    let m = mount(cx, &at);
    if at.rel.is_empty() || p.dot_last {
        return Err(Errno::EEXIST.into());
    }
    if !m.writable() {
        return Err(refuse_create(m, &at.rel).into());
    }
    let (parent, leaf) = host(m.parent(&at.rel))?;
    host(create(&parent, leaf))?;
    Ok(0)
}

pub fn mkdir(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64) -> Sys {
    let name = read_path(cx, path)?;
    let mode = (mode as u32 & 0o7777) & !cx.state.process.fs.umask();
    create_entry(cx, dirfd, &name, |parent, leaf| {
        rustix::fs::mkdirat(parent, leaf, Mode::from_bits_retain(mode))
    })
}

/// unlinkat(dirfd, path, flags); unlink and rmdir come here with AT_FDCWD.
pub fn unlink(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, flags: u64) -> Sys {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL.into());
    }
    let rmdir = flags & AT_REMOVEDIR != 0;
    let name = read_path(cx, path)?;
    let (p, at) = locate(cx, dirfd, &name)?;
    let m = mount(cx, &at);
    if at.rel.is_empty() {
        // A volume root is a mount point.
        return Err(if rmdir { Errno::EBUSY } else { Errno::EISDIR }.into());
    }
    if p.dot_last {
        return Err(if rmdir { Errno::EINVAL } else { Errno::EISDIR }.into());
    }
    let (parent, leaf) = host(m.parent(&at.rel))?;
    if !m.writable() {
        return Err(Errno::EROFS.into());
    }
    let how = if rmdir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    host(rustix::fs::unlinkat(&parent, leaf, how))?;
    Ok(0)
}

/// renameat2(olddirfd, oldpath, newdirfd, newpath, flags); rename and renameat come here.
/// Both paths must be in the same volume (EXDEV otherwise, as across Linux mounts).
pub fn rename(cx: &mut Ctx<'_, '_>, a: [u64; 5]) -> Sys {
    const KNOWN: u64 = 1 | 2 | 4; // RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT
    let [od, op, nd, np, flags] = a;
    if flags & !KNOWN != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (old_name, new_name) = (read_path(cx, op)?, read_path(cx, np)?);
    let (po, ao) = locate(cx, od, &old_name)?;
    let (pn, an) = locate(cx, nd, &new_name)?;
    // A volume root is a mount point: EBUSY, as Linux says before looking at the other path.
    if ao.rel.is_empty() || an.rel.is_empty() || po.dot_last || pn.dot_last {
        return Err(Errno::EBUSY.into());
    }
    if ao.mount != an.mount {
        return Err(Errno::EXDEV.into());
    }
    let m = mount(cx, &ao);
    let (op_dir, o_leaf) = host(m.parent(&ao.rel))?;
    let (np_dir, n_leaf) = host(m.parent(&an.rel))?;
    if !m.writable() {
        return Err(Errno::EROFS.into());
    }
    let how = rustix::fs::RenameFlags::from_bits_retain(flags as u32);
    host(rustix::fs::renameat_with(
        &op_dir, o_leaf, &np_dir, n_leaf, how,
    ))?;
    Ok(0)
}

/// linkat(olddirfd, oldpath, newdirfd, newpath, flags); link comes here. Both in one volume.
pub fn link(cx: &mut Ctx<'_, '_>, a: [u64; 5]) -> Sys {
    let [od, op, nd, np, flags] = a;
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let old = target(cx, od, op, flags)?;
    let new_name = read_path(cx, np)?;
    let (pn, an) = locate(cx, nd, &new_name)?;
    let old_mount = match &old {
        Target::Path(_, ao) => ao.mount,
        Target::Fd(OpenFile::Host(h)) => h.mount,
        Target::Fd(_) => return Err(Errno::EXDEV.into()),
    };
    if old_mount != an.mount {
        return Err(Errno::EXDEV.into());
    }
    let m = mount(cx, &an);
    if let Target::Path(po, ao) = &old {
        if ao.rel.is_empty() || po.dot_last {
            return Err(Errno::EPERM.into());
        }
    }
    if an.rel.is_empty() || pn.dot_last {
        return Err(Errno::EEXIST.into());
    }
    if !m.writable() {
        return Err(refuse_create(m, &an.rel).into());
    }
    let (np_dir, n_leaf) = host(m.parent(&an.rel))?;
    match old {
        Target::Fd(OpenFile::Host(h)) => host(rustix::fs::linkat(
            &h.fd,
            "",
            &np_dir,
            n_leaf,
            AtFlags::EMPTY_PATH,
        ))?,
        Target::Path(_, ao) if flags & AT_SYMLINK_FOLLOW != 0 => {
            let fd = host(m.handle(&ao.rel, false))?;
            host(rustix::fs::linkat(
                CWD,
                proc_fd(&fd),
                &np_dir,
                n_leaf,
                AtFlags::SYMLINK_FOLLOW,
            ))?
        }
        Target::Path(_, ao) => {
            let (op_dir, o_leaf) = host(m.parent(&ao.rel))?;
            host(rustix::fs::linkat(
                &op_dir,
                o_leaf,
                &np_dir,
                n_leaf,
                AtFlags::empty(),
            ))?
        }
        Target::Fd(_) => return Err(Errno::EXDEV.into()),
    }
    Ok(0)
}

/// symlinkat(target, newdirfd, linkpath); symlink comes here. The target is stored as given:
/// following it later is confined like any other lookup.
pub fn symlink(cx: &mut Ctx<'_, '_>, target_ptr: u64, dirfd: u64, path: u64) -> Sys {
    let target = read_path(cx, target_ptr)?;
    let name = read_path(cx, path)?;
    if target.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    create_entry(cx, dirfd, &name, |parent, leaf| {
        rustix::fs::symlinkat(&target[..], parent, leaf)
    })
}

/// readlinkat(dirfd, path, buf, size); readlink comes here. `/proc/self/exe` is the
/// application's executable, as before volumes.
pub fn readlink(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, buf: u64, size: u64) -> Sys {
    let name = read_path(cx, path)?;
    if name == b"/proc/self/exe" {
        return super::proc::readlink(cx, path, buf, size);
    }
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL.into());
    }
    let text = if name.is_empty() {
        // The fd itself: an O_PATH | O_NOFOLLOW handle on a symlink.
        match cx.state.process.fds.get(dirfd)?.file {
            OpenFile::Host(h) => host(rustix::fs::readlinkat(&h.fd, "", Vec::new()))?,
            _ => return Err(Errno::ENOENT.into()),
        }
    } else {
        let (_, at) = locate(cx, dirfd, &name)?;
        let fd = host(mount(cx, &at).handle(&at.rel, true))?;
        match rustix::fs::readlinkat(&fd, "", Vec::new()) {
            Ok(text) => text,
            // The kernel says ENOENT for "" naming something that is not a symlink; by name,
            // that is EINVAL.
            Err(rustix::io::Errno::NOENT) => return Err(Errno::EINVAL.into()),
            Err(e) => return Err(host_errno(e).into()),
        }
    };
    let bytes = text.as_bytes();
    let n = bytes.len().min(size as usize);
    cx.space().write(cx.mem, buf, &bytes[..n])?;
    Ok(n as u64)
}

// ---- permissions, times, sizes --------------------------------------------------------------

/// faccessat2(dirfd, path, mode, flags); access and faccessat come here with flags 0.
pub fn access(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> Sys {
    const W_OK: u64 = 2;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
    let (fd, writable_volume) = match target(cx, dirfd, path, flags)? {
        Target::Path(_, at) => {
            let m = mount(cx, &at);
            (
                Handle::Own(host(m.handle(&at.rel, nofollow))?),
                m.writable(),
            )
        }
        Target::Fd(OpenFile::Host(h)) => {
            let writable = h.writable_volume;
            (Handle::Open(h), writable)
        }
        // The standard streams are umon's: always accessible to the application.
        Target::Fd(_) => return Ok(0),
    };
    if mode == 0 {
        return Ok(0);
    }
    let st = host(rustix::fs::fstat(&fd))?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    use rustix::fs::FileType as T;
    if mode & W_OK != 0
        && !writable_volume
        && matches!(kind, T::RegularFile | T::Directory | T::Symlink)
    {
        return Err(Errno::EROFS.into());
    }
    if kind == T::Symlink {
        // Only reached with AT_SYMLINK_NOFOLLOW: a symlink's own permissions are rwx for all.
        return Ok(0);
    }
    let how = if flags & AT_EACCESS != 0 {
        AtFlags::EACCESS
    } else {
        AtFlags::empty()
    };
    host(rustix::fs::accessat(
        CWD,
        proc_fd(&fd),
        rustix::fs::Access::from_bits_retain(mode as u32),
        how,
    ))?;
    Ok(0)
}

/// fchmodat2(dirfd, path, mode, flags); chmod and fchmodat come here with flags 0.
pub fn chmod(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> Sys {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mode = Mode::from_bits_retain(mode as u32 & 0o7777);
    match target(cx, dirfd, path, flags)? {
        Target::Fd(file) => chmod_file(&file, mode),
        Target::Path(_, at) => {
            let m = mount(cx, &at);
            let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
            let fd = host(m.handle(&at.rel, nofollow))?;
            if !m.writable() {
                return Err(Errno::EROFS.into());
            }
            if nofollow {
                let st = host(rustix::fs::fstat(&fd))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink() {
                    return Err(Errno::EOPNOTSUPP.into());
                }
            }
            host(rustix::fs::chmodat(
                CWD,
                proc_fd(&fd),
                mode,
                AtFlags::empty(),
            ))?;
            Ok(0)
        }
    }
}

/// chmod of an open file. The standard streams are umon's own: the application may not change
/// them (EPERM).
fn chmod_file(file: &OpenFile, mode: Mode) -> Sys {
    match file {
        OpenFile::Host(h) if !h.writable_volume => Err(Errno::EROFS.into()),
        OpenFile::Host(h) => {
            host(rustix::fs::fchmod(&h.fd, mode))?;
            Ok(0)
        }
        _ => Err(Errno::EPERM.into()),
    }
}

pub fn fchmod(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.state.process.fds.get(a.0[0])?.file;
    chmod_file(&file, Mode::from_bits_retain(a.0[1] as u32 & 0o7777))
}

/// utimensat(dirfd, path, times, flags): a NULL path means `dirfd` itself (futimens).
pub fn utimensat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let (dirfd, path, times_ptr, flags) = (a.0[0], a.0[1], a.0[2], a.0[3]);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let times: [Timespec; 2] = if times_ptr == 0 {
        [Timespec {
            sec: 0,
            nsec: UTIME_NOW,
        }; 2]
    } else {
        cx.read_val(times_ptr)?
    };
    for t in &times {
        if !(t.nsec == UTIME_NOW || t.nsec == UTIME_OMIT || (0..1_000_000_000).contains(&t.nsec)) {
            return Err(Errno::EINVAL.into());
        }
    }
    let ts = |t: &Timespec| rustix::fs::Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec,
    };
    let stamps = rustix::fs::Timestamps {
        last_access: ts(&times[0]),
        last_modification: ts(&times[1]),
    };
    if path == 0 {
        if dirfd as i32 == -100 {
            return Err(Errno::EFAULT.into());
        }
        return match cx.state.process.fds.get(dirfd)?.file {
            OpenFile::Host(h) if !h.writable_volume => Err(Errno::EROFS.into()),
            OpenFile::Host(h) => {
                host(rustix::fs::futimens(&h.fd, &stamps))?;
                Ok(0)
            }
            _ => Err(Errno::EPERM.into()),
        };
    }
    let (fd, writable) = match target(cx, dirfd, path, flags)? {
        Target::Path(_, at) => {
            let m = mount(cx, &at);
            let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
            (host(m.handle(&at.rel, nofollow))?, m.writable())
        }
        Target::Fd(OpenFile::Host(h)) => {
            if !h.writable_volume {
                return Err(Errno::EROFS.into());
            }
            host(rustix::fs::utimensat(
                &h.fd,
                "",
                &stamps,
                AtFlags::EMPTY_PATH,
            ))?;
            return Ok(0);
        }
        Target::Fd(_) => return Err(Errno::EPERM.into()),
    };
    if !writable {
        return Err(Errno::EROFS.into());
    }
    host(rustix::fs::utimensat(&fd, "", &stamps, AtFlags::EMPTY_PATH))?;
    Ok(0)
}

pub fn truncate(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let name = read_path(cx, a.0[0])?;
    let len = a.0[1];
    if (len as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let (_, at) = locate(cx, AT_FDCWD, &name)?;
    let m = mount(cx, &at);
    if !m.writable() {
        host(m.handle(&at.rel, false))?;
        return Err(Errno::EROFS.into());
    }
    let fd = host(m.open(
        &at.rel,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    ))?;
    host(rustix::fs::ftruncate(&fd, len))?;
    Ok(0)
}

/// The volume file behind `fd`; `stream` is the error for a standard stream.
fn host_file(cx: &Ctx<'_, '_>, fd: u64, stream: Errno) -> Result<Arc<HostFile>, Errno> {
    match cx.state.process.fds.get(fd)?.file {
        OpenFile::Host(h) => Ok(h),
        _ => Err(stream),
    }
}

pub fn ftruncate(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let h = host_file(cx, a.0[0], Errno::EINVAL)?;
    if (a.0[1] as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    host(rustix::fs::ftruncate(&h.fd, a.0[1]))?;
    Ok(0)
}

/// fsync, or fdatasync (`data_only`).
pub fn fsync(cx: &mut Ctx<'_, '_>, a: &Args, data_only: bool) -> Sys {
    let h = host_file(cx, a.0[0], Errno::EINVAL)?;
    if data_only {
        host(rustix::fs::fdatasync(&h.fd))?;
    } else {
        host(rustix::fs::fsync(&h.fd))?;
    }
    Ok(0)
}

/// fadvise64: a hint, checked and accepted (the host's page cache does its own read-ahead).
pub fn fadvise64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    host_file(cx, a.0[0], Errno::ESPIPE)?;
    if a.0[3] > 5 || (a.0[2] as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}

// ---- working directory, umask -------------------------------------------------------------

/// chdir: the new working directory is the normalized guest path; "/" is always allowed, even
/// when no volume is mounted there.
pub fn chdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let name = read_path(cx, a.0[0])?;
    if name.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    let p = GuestPath::new(cx.state.process.fs.cwd(), &name);
    if p.abs != b"/" {
        let at = cx.state.process.fs.locate(&p).ok_or(Errno::ENOENT)?;
        host(mount(cx, &at).open(&at.rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()))?;
    }
    cx.proc().fs.set_cwd(p.abs);
    Ok(0)
}

pub fn fchdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    match cx.state.process.fds.get(a.0[0])?.file {
        OpenFile::Host(h) if h.kind == FileKind::Directory => {
            cx.proc().fs.set_cwd(h.path.clone());
            Ok(0)
        }
        _ => Err(Errno::ENOTDIR.into()),
    }
}

/// getcwd: the guest path of the working directory (the path it was entered by).
pub fn getcwd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if cx.state.process.fs.cwd() == b"/" {
        return super::proc::getcwd(cx, a);
    }
    let mut cwd = cx.state.process.fs.cwd().to_vec();
    cwd.push(0);
    if a.0[1] < cwd.len() as u64 {
        return Err(Errno::ERANGE.into());
    }
    cx.space().write(cx.mem, a.0[0], &cwd)?;
    Ok(cwd.len() as u64)
}

pub fn umask(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    Ok(u64::from(cx.proc().fs.set_umask(a.0[0] as u32)))
}
