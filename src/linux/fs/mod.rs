//! File-system syscalls over volumes: a guest path is read from guest memory (bytes, at most
//! PATH_MAX), made absolute against the working directory or a directory fd (their current
//! paths, found from their host handles) and normalized lexically, matched to a volume (the
//! longest guest prefix), and looked up on the host beneath that volume's root by
//! [`volume`], which keeps it inside. A path no volume covers does not exist (ENOENT).
//!
//! Calls that only read an object (open for reading, stat, access, chdir) get a handle on it in
//! one confined `openat2`. Calls that change something resolve it to a directory fd and a name
//! in it (the parent of an entry; for an object, the directory holding it once a final symlink
//! is followed), check that directory's region (read-only belongs to the host directory,
//! whatever path reached it: [`FileSystem::region`]) in the order Linux checks a read-only
//! mount, and act relative to that same fd without following the name. Where the host call has
//! no form taking an `O_PATH` fd (access, chmod), it goes through the monitor's own
//! `/proc/self/fd/N` for that handle, as glibc does: the object is already the confined one.
pub mod attrs;
pub mod private;
pub mod synthetic;
pub mod volume;

use super::abi::at::*;
use super::abi::{oflag, Statx, Timespec, Timeval};
use super::abi::{Stat, NAME_MAX, PATH_MAX};
use super::fd::{Fd, FileDescription, FileKind, HostFile, OpenFile, VolumeFile};
use super::io::{fsize_truncate, host_errno};
use super::{Args, Ctx, Process, Stop, Sys};
use crate::linux::fs::volume::{DirHandle, FileSystem, GuestPath, Located, Mount, MountId, Region};
use crate::machine::paging::PAGE_4K;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, CWD};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use syscalls::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// statfs f_flags: ST_RDONLY.
const ST_RDONLY: i64 = 1;
/// statfs f_flags: ST_NOSUID, ST_NODEV, ST_VALID (the flags are filled in), ST_RELATIME.
const ST_NOSUID: i64 = 2;
const ST_NODEV: i64 = 4;
const ST_VALID: i64 = 0x20;
const ST_RELATIME: i64 = 0x1000;

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

/// The permission bits a create or a mode change may set: never set-uid or set-gid, as on a
/// `nosuid` mount (a set-uid file made by the guest would run with umon's user's rights).
const MODE_BITS: u32 = 0o1777;

/// EFAULT if any page of `[va, va + len)` is arena memory the application does not have
/// (never mapped, or unmapped): the arena is mapped in full for the monitor, so reading there
/// succeeds and would see zeros.
fn owned(cx: &Ctx<'_, '_>, va: u64, len: u64) -> Result<(), Errno> {
    let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
    let mut page = va - va % PAGE_4K;
    while page < end {
        // The last page below 2^64 has no end address: nothing the arena holds.
        let Some(next) = page.checked_add(PAGE_4K) else {
            return Err(Errno::EFAULT);
        };
        if cx.space().arena_is_free(page, next) {
            return Err(Errno::EFAULT);
        }
        page = next;
    }
    Ok(())
}

/// A path argument, read from guest memory: at most PATH_MAX - 1 bytes (ENAMETOOLONG).
/// A component longer than NAME_MAX is ENAMETOOLONG, as Linux's path walk says. Every
/// path-taking call reads its paths here, so a bad pointer is EFAULT for all of them.
fn read_path(cx: &Ctx<'_, '_>, ptr: u64) -> Result<Vec<u8>, Errno> {
    let path = cx.space().read_cstr(cx.mem, ptr, PATH_MAX - 1)?;
    owned(cx, ptr, path.len() as u64 + 1)?;
    if path.split(|&b| b == b'/').any(|c| c.len() > NAME_MAX) {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(path)
}

/// The current guest path of the directory open as `h`: where it is now, not the path it was
/// opened by (renames move it; ENOENT once it was removed).
fn dir_path(fs: &FileSystem, h: &HostFile) -> Result<Vec<u8>, Errno> {
    host(fs.path_of(h.mount, h.fd.as_fd(), &h.path))
}

/// `name` looked up from `dirfd` (AT_FDCWD: the working directory; ignored for an absolute
/// name): the normalized guest path and where it lives. ENOENT for "" and for a path no volume
/// covers; EBADF / ENOTDIR for a bad `dirfd` with a relative name. A relative name starts at
/// the directory's current path, found from its host handle.
fn locate(cx: &Ctx<'_, '_>, dirfd: u64, name: &[u8]) -> Result<(GuestPath, Located), Errno> {
    let path = guest_path(cx, dirfd, name)?;
    let fs = &*cx.process.fs();
    if synthetic::covers(fs, &path.abs) {
        // /dev, /proc, /sys and the synthetic root change for nobody but root.
        return Err(Errno::EACCES);
    }
    let at = fs.locate(&path).ok_or(Errno::ENOENT)?;
    Ok((path, at))
}

/// Open `path` for reading as the application would see it (volumes, `--root`; a relative
/// path from the working directory), for the loader: a dynamically linked program's
/// interpreter is found here, as Linux finds it in the process's mount namespace. The
/// synthetic trees hold no executables (ENOENT there); the lookup is the volumes' confined one.
pub fn open_for_exec(fs: &FileSystem, path: &[u8]) -> std::io::Result<std::fs::File> {
    let errno = |e: Errno| std::io::Error::from_raw_os_error(e.into_raw());
    let host_err = |e: rustix::io::Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    if path.is_empty() {
        return Err(errno(Errno::ENOENT));
    }
    let cwd = fs.cwd().map_err(host_err)?;
    let at = GuestPath::new(&cwd, path);
    if synthetic::covers(fs, &at.abs) {
        return Err(errno(Errno::ENOENT));
    }
    let located = fs.locate(&at).ok_or_else(|| errno(Errno::ENOENT))?;
    let fd = fs
        .mount(located.mount)
        .open(
            &located.rel,
            OFlags::RDONLY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(host_err)?;
    Ok(std::fs::File::from(fd))
}

/// execve/execveat's path argument: the name as given (for a script's argv) and the absolute
/// guest path it names from `dirfd`. With `empty_path` and an empty name, the file open as
/// `dirfd` itself (fexecve), by the path it was opened at.
pub(crate) fn exec_path(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    ptr: u64,
    empty_path: bool,
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    let name = read_path(cx, ptr)?;
    if name.is_empty() && empty_path {
        let file = cx.process.fds().get(dirfd)?.file;
        let h = file.as_volume().ok_or(Errno::EACCES)?;
        let abs = dir_path(&cx.process.fs(), h)?;
        // Linux names the program /dev/fd/N (a script's argv shows it).
        return Ok((format!("/dev/fd/{}", dirfd as i32).into_bytes(), abs));
    }
    let path = guest_path(cx, dirfd, &name)?;
    let mut abs = path.abs;
    if path.dir_only {
        // A trailing slash: the walk wants a directory (ENOTDIR for a file, as Linux).
        abs.push(b'/');
    }
    let given = if name.starts_with(b"/") || dirfd as i32 == AT_FDCWD as i32 {
        name
    } else {
        let mut g = format!("/dev/fd/{}/", dirfd as i32).into_bytes();
        g.extend_from_slice(&name);
        g
    };
    Ok((given, abs))
}

/// A `#!` interpreter's absolute guest path (relative ones from the working directory).
pub(crate) fn exec_abs(cx: &Ctx<'_, '_>, name: &[u8]) -> Result<Vec<u8>, Errno> {
    Ok(guest_path(cx, AT_FDCWD, name)?.abs)
}

/// `name` looked up from `dirfd` as [`locate`] does, made absolute and normalized only.
fn guest_path(cx: &Ctx<'_, '_>, dirfd: u64, name: &[u8]) -> Result<GuestPath, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    Ok(if name.starts_with(b"/") {
        GuestPath::new(b"/", name)
    } else if dirfd as i32 == AT_FDCWD as i32 {
        let cwd = host(cx.process.fs().cwd())?;
        GuestPath::new(&cwd, name)
    } else {
        let file = cx.process.fds().get(dirfd)?.file;
        match (file.as_volume(), file.as_synthetic()) {
            (Some(h), _) if h.kind == FileKind::Directory => {
                GuestPath::new(&dir_path(&cx.process.fs(), h)?, name)
            }
            (_, Some(s)) if s.is_dir() => GuestPath::new(&s.path, name),
            _ => return Err(Errno::ENOTDIR),
        }
    })
}

/// The synthetic object (`/dev`, `/proc`, `/sys`, the root) the path argument at `ptr` names
/// from `dirfd`, if a synthetic tree serves it; a final symlink followed when `follow`.
fn synth_at(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    ptr: u64,
    follow: bool,
) -> Result<Option<(Vec<u8>, synthetic::Node)>, Errno> {
    let name = read_path(cx, ptr)?;
    if name.is_empty() {
        return Ok(None);
    }
    let path = guest_path(cx, dirfd, &name)?;
    synthetic::lookup(cx, &path, follow).transpose()
}

/// What an `*at` call names.
enum Target {
    /// A path in a volume.
    Path(GuestPath, Located),
    /// The volume file `dirfd` itself (an empty path with AT_EMPTY_PATH).
    Volume(Arc<HostFile>),
    /// Any other open file `dirfd` itself (a standard stream).
    Fd(OpenFile),
}

/// The target of an `*at` call: with AT_EMPTY_PATH in `flags`, "" means `dirfd` itself (or
/// the working directory for AT_FDCWD).
fn target(cx: &Ctx<'_, '_>, dirfd: u64, ptr: u64, flags: u64) -> Result<Target, Errno> {
    let name = read_path(cx, ptr)?;
    if name.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 == AT_FDCWD as i32 {
            let (p, at) = locate(cx, dirfd, b".")?;
            return Ok(Target::Path(p, at));
        }
        let file = cx.process.fds().get(dirfd)?.file;
        return Ok(match file.as_volume() {
            Some(h) => Target::Volume(h.clone()),
            None => Target::Fd(file),
        });
    }
    let (p, at) = locate(cx, dirfd, &name)?;
    Ok(Target::Path(p, at))
}

fn mount(cx: &Ctx<'_, '_>, at: &Located) -> Arc<Mount> {
    cx.process.fs().mount_shared(at.mount)
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

/// Why creating `leaf` in the read-only directory `dir` fails, in Linux's order: an existing
/// entry is EEXIST, anything else EROFS.
fn refuse_create(dir: BorrowedFd<'_>, leaf: &[u8]) -> Errno {
    match rustix::fs::statat(dir, leaf, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Errno::EEXIST,
        Err(rustix::io::Errno::NOENT) => Errno::EROFS,
        Err(e) => host_errno(e),
    }
}

/// Give the object open as `fd` (created by the guest) exactly `mode`: the host also applied
/// umon's own umask, and a set-gid parent directory may have added S_ISGID. Only the guest's
/// umask counts; done on the fd, since changing the process-wide umask would race.
fn fix_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let st = host(rustix::fs::fstat(fd))?;
    if st.st_mode & 0o7777 != mode {
        host(rustix::fs::chmodat(
            CWD,
            proc_fd(fd),
            Mode::from_bits_retain(mode),
            AtFlags::empty(),
        ))?;
    }
    Ok(())
}

/// Fix the mode of `leaf`, just created in `dir` (see [`fix_mode`]); never follows a symlink.
fn fix_mode_at(dir: BorrowedFd<'_>, leaf: &[u8], mode: u32) -> Result<(), Errno> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = host(rustix::fs::openat(dir, leaf, flags, Mode::empty()))?;
    fix_mode(fd.as_fd(), mode)
}

/// The region of the volume file open as `h` (see [`FileSystem::region`]): a directory's own,
/// a file's that of the directory holding it now. A file no directory holds (removed) is its
/// volume's.
fn fd_region(fs: &FileSystem, h: &HostFile) -> Region {
    let plain = Region {
        volume: h.mount,
        writable: h.writable_volume,
    };
    if !h.writable_volume || !fs.mixed() {
        return plain;
    }
    if h.kind == FileKind::Directory {
        return fs.region(h.mount, h.fd.as_fd());
    }
    let ro = Region {
        volume: h.mount,
        writable: false,
    };
    match rustix::fs::fstat(&h.fd) {
        Ok(st) if st.st_nlink == 0 => return plain,
        Ok(_) => {}
        Err(_) => return ro,
    }
    let m = fs.mount(h.mount);
    let Ok(rel) = m.rel_of(h.fd.as_fd(), m.rel_in(&h.path).as_deref()) else {
        return ro;
    };
    match m.parent(&rel) {
        Ok((parent, _)) => fs.region(h.mount, parent.as_fd()),
        Err(_) => ro,
    }
}

/// An `O_PATH` handle on the object `rel` names in volume `via` (a final symlink followed if
/// `follow`), and the region deciding whether it may change: found from the directory that
/// holds it, whatever path led there.
fn object(
    fs: &FileSystem,
    via: MountId,
    rel: &[u8],
    follow: bool,
) -> Result<(OwnedFd, Region), Errno> {
    let m = fs.mount(via);
    let root = |fs: &FileSystem| -> Result<(OwnedFd, Region), Errno> {
        let fd = host(m.handle(b"", false))?;
        let region = fs.region(via, fd.as_fd());
        Ok((fd, region))
    };
    if rel.is_empty() {
        return root(fs);
    }
    let (parent, leaf) = match m.entry(rel, follow) {
        // The path (or the symlink it ends in) names the volume root.
        Err(rustix::io::Errno::BUSY) => return root(fs),
        r => host(r)?,
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = host(rustix::fs::openat(&parent, &leaf[..], flags, Mode::empty()))?;
    let region = fs.object_region(via, parent.as_fd(), &leaf);
    Ok((fd, region))
}

// ---- open ---------------------------------------------------------------------------------

/// openat(dirfd, path, flags, mode); open and creat come here with AT_FDCWD.
pub(crate) fn open(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, flags: u64, mode: u64) -> Sys {
    let name = read_path(cx, path)?;
    // EMFILE before anything happens on the host (O_CREAT must not create then fail); the
    // number is reserved so no racing open or dup takes it meanwhile.
    let slot = cx.process.fds().reserve(0)?;
    let entry = open_file(cx, dirfd, &name, flags, mode);
    let mut fds = cx.process.fds();
    match entry {
        Ok(entry) => {
            fds.install(slot, entry);
            Ok(slot)
        }
        Err(e) => {
            fds.unreserve(slot);
            Err(e)
        }
    }
}

/// For the exit-less server, which must never wait: whether opening `at` might (a FIFO
/// waits for its other end, a device may wait too). Looked up through an O_PATH handle,
/// which never waits; a missing entry cannot (O_CREAT makes a regular file). Renaming a FIFO
/// over the path between this look and the open would still make the server wait until the
/// other end comes (a stop ends it): a race no program relies on.
fn open_might_wait(fs: &FileSystem, at: &Located, flags: u64) -> bool {
    let follow = flags & oflag::NOFOLLOW == 0;
    match object(fs, at.mount, &at.rel, follow) {
        Ok((fd, _)) => !matches!(
            rustix::fs::fstat(&fd).map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode)),
            Ok(rustix::fs::FileType::RegularFile
                | rustix::fs::FileType::Directory
                | rustix::fs::FileType::Symlink)
        ),
        Err(_) => false,
    }
}

/// The open file description `open` installs.
fn open_file(cx: &Ctx<'_, '_>, dirfd: u64, name: &[u8], flags: u64, mode: u64) -> Result<Fd, Stop> {
    let guest = guest_path(cx, dirfd, name)?;
    match synthetic::lookup(cx, &guest, flags & oflag::NOFOLLOW == 0) {
        Some(Ok((abs, node))) => {
            return Ok(Fd {
                file: synthetic::open(abs, node, flags)?,
                cloexec: flags & oflag::CLOEXEC != 0,
            })
        }
        // Nobody but root creates entries there.
        Some(Err(Errno::ENOENT)) if flags & oflag::CREAT != 0 => return Err(Errno::EACCES.into()),
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    let (p, at) = locate(cx, dirfd, name)?;
    if cx.served && flags & oflag::PATH == 0 && open_might_wait(&cx.process.fs(), &at, flags) {
        return Err(Stop::GiveBack);
    }
    let (fd, writable_volume) = open_in(cx.process, &at, flags, mode)?;
    let st = host(rustix::fs::fstat(&fd))?;
    let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::RegularFile => FileKind::Regular,
        rustix::fs::FileType::Directory => FileKind::Directory,
        _ => FileKind::Other,
    };
    let path_only = flags & oflag::PATH != 0;
    let acc = flags & oflag::ACCMODE;
    let writable = !path_only && (acc == oflag::WRONLY || acc == oflag::RDWR);
    if writable {
        refuse_running_exe(cx.process, &st)?;
    }
    // O_TRUNC emptied a file the process may have mapped (also opened read-only: Linux
    // truncates then too): its pages are past the end now.
    if kind == FileKind::Regular && flags & oflag::TRUNC != 0 {
        truncated_under_mappings(cx, fd.as_fd(), 0);
    }
    let file = HostFile {
        fd,
        path: p.abs,
        mount: at.mount,
        writable_volume,
        kind,
        path_only,
        readable: !path_only && (acc == oflag::RDONLY || acc == oflag::RDWR),
        writable,
    };
    Ok(Fd {
        file: Arc::new(VolumeFile(Arc::new(file))),
        cloexec: flags & oflag::CLOEXEC != 0,
    })
}

/// ETXTBSY if `st` is the running executable: Linux denies writes to it (open for writing,
/// truncate) while it runs.
fn refuse_running_exe(process: &Process, st: &rustix::fs::Stat) -> Result<(), Errno> {
    let running = process
        .symbols
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|s| s.file_id());
    if running == Some((st.st_dev, st.st_ino)) {
        return Err(Errno::ETXTBSY);
    }
    Ok(())
}

/// [`refuse_running_exe`] for `leaf` in `dir`, if it exists (a final symlink not followed).
fn refuse_running_exe_at(process: &Process, dir: BorrowedFd<'_>, leaf: &[u8]) -> Result<(), Errno> {
    match rustix::fs::statat(dir, leaf, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => refuse_running_exe(process, &st),
        Err(_) => Ok(()),
    }
}

/// Open `at` on the host; also says whether the file may change (its region is writable).
/// Reads open by path beneath the volume root in one `openat2`; anything that may write,
/// truncate or create opens the entry in the directory that holds it (a final symlink
/// followed by [`Mount::entry`]), after checking that directory's region. The file-system
/// lock is taken only for the region checks: never across the host open, which blocks on a
/// FIFO until a writer comes.
fn open_in(
    process: &Process,
    at: &Located,
    flags: u64,
    mode: u64,
) -> Result<(OwnedFd, bool), Errno> {
    let (m, umask) = {
        let fs = process.fs();
        (fs.mount_shared(at.mount), fs.umask())
    };
    let rel = &at.rel[..];
    let of = |bits: u64| OFlags::from_bits_retain(bits as u32);
    if flags & oflag::PATH != 0 {
        let fd = host(m.open(rel, of(flags & oflag::PATH_PASSED), Mode::empty()))?;
        return Ok((fd, m.writable()));
    }
    let acc = flags & oflag::ACCMODE;
    let tmpfile = flags & oflag::TMPFILE != 0;
    let creates = flags & oflag::CREAT != 0 || tmpfile;
    let excl = creates && flags & oflag::EXCL != 0;
    let nofollow = flags & oflag::NOFOLLOW != 0;
    let mut pass = (flags & oflag::PASSED) | oflag::NOCTTY;
    let want = (mode as u32) & MODE_BITS & !umask;
    if acc == oflag::RDONLY && flags & oflag::TRUNC == 0 && !creates {
        return Ok((host(m.open(rel, of(pass), Mode::empty()))?, m.writable()));
    }
    if tmpfile {
        // O_TMPFILE names the directory the unnamed file goes in.
        let dir = host(m.open(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()))?;
        if !process.fs().region(at.mount, dir.as_fd()).writable {
            return Err(Errno::EROFS);
        }
        let fd = host(rustix::fs::openat(
            &dir,
            ".",
            of(pass) | OFlags::CLOEXEC,
            Mode::from_bits_retain(want),
        ))?;
        fix_mode(fd.as_fd(), want)?;
        return Ok((fd, true));
    }
    // O_CREAT | O_EXCL never follows a final symlink (EEXIST), as on Linux.
    let (parent, leaf) = match m.entry(rel, !nofollow && !excl) {
        // The volume root: a directory, which no write-type open may open (may_open's EISDIR
        // comes before any read-only check).
        Err(rustix::io::Errno::BUSY) => return Err(Errno::EISDIR),
        r => host(r)?,
    };
    let region = process.fs().object_region(at.mount, parent.as_fd(), &leaf);
    if !region.writable {
        // As on a read-only mount: a missing file is still ENOENT (EROFS when it would be
        // created), O_EXCL still EEXIST, and an existing file opens read-only with O_CREAT.
        match rustix::fs::statat(&parent, &leaf[..], AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) if excl => return Err(Errno::EEXIST),
            Ok(st) if nofollow && rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink() => {
                return Err(Errno::ELOOP)
            }
            Ok(_) if acc != oflag::RDONLY || flags & oflag::TRUNC != 0 => return Err(Errno::EROFS),
            Ok(_) => pass &= !(oflag::CREAT | oflag::EXCL),
            Err(rustix::io::Errno::NOENT) if creates => return Err(Errno::EROFS),
            Err(e) => return Err(host_errno(e)),
        }
    }
    if flags & oflag::TRUNC != 0 {
        // Before the open, which would already have truncated it.
        refuse_running_exe_at(process, parent.as_fd(), &leaf)?;
    }
    // The entry is not a symlink (followed above) unless the guest said O_NOFOLLOW; one that
    // appears now is not followed (`open_leaf`).
    let fd = if pass & oflag::CREAT != 0 {
        create_at(parent.as_fd(), &leaf, of(pass) | OFlags::CLOEXEC, want)?
    } else {
        host(open_leaf(
            parent.as_fd(),
            &leaf,
            of(pass) | OFlags::CLOEXEC,
            Mode::empty(),
        ))?
    };
    Ok((fd, region.writable))
}

/// Open the entry `leaf` of `dir` with `flags`, never following a symlink there (ELOOP, as
/// O_NOFOLLOW says) nor anywhere on the way. The refusal is openat2's RESOLVE_NO_SYMLINKS
/// rather than an added O_NOFOLLOW, which the open file would keep in its status flags: F_GETFL
/// shows only the flags the application gave, as on Linux.
fn open_leaf(
    dir: BorrowedFd<'_>,
    leaf: &[u8],
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::openat2(dir, leaf, flags, mode, ResolveFlags::NO_SYMLINKS)
}

/// Open `leaf` in `dir` with O_CREAT in `flags`; a file this call creates gets exactly `mode`
/// (see [`fix_mode`]), an existing one keeps its own.
fn create_at(dir: BorrowedFd<'_>, leaf: &[u8], flags: OFlags, mode: u32) -> Result<OwnedFd, Errno> {
    let perm = Mode::from_bits_retain(mode);
    if flags.contains(OFlags::EXCL) {
        let fd = host(open_leaf(dir, leaf, flags, perm))?;
        fix_mode(fd.as_fd(), mode)?;
        return Ok(fd);
    }
    // Open it if it exists, else create it exclusively: only then is it ours to fix up. A
    // racing create or unlink of the same name sends us round again.
    let mut last = Errno::EAGAIN;
    for _ in 0..64 {
        match open_leaf(dir, leaf, flags - OFlags::CREATE, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) => {}
            other => return host(other),
        }
        match open_leaf(dir, leaf, flags | OFlags::EXCL, perm) {
            Ok(fd) => {
                fix_mode(fd.as_fd(), mode)?;
                return Ok(fd);
            }
            Err(rustix::io::Errno::EXIST) => last = Errno::EEXIST,
            Err(e) => return Err(host_errno(e)),
        }
    }
    Err(last)
}

// ---- stat ---------------------------------------------------------------------------------

/// The host stat of what an `*at` call names; a final symlink is followed unless NOFOLLOW.
fn stat_target(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    path: u64,
    flags: u64,
) -> Result<super::abi::Stat, Errno> {
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    if let Some((abs, node)) = synth_at(cx, dirfd, path, follow)? {
        return match node {
            // A followed fd link: the open file's own stat.
            synthetic::Node::Fd(file, _) if follow => file.stat().map_err(host_errno),
            node => synthetic::stat_of(&abs, &node),
        };
    }
    match target(cx, dirfd, path, flags)? {
        Target::Volume(h) => Ok(Stat::from_host(&host(rustix::fs::fstat(&h.fd))?)),
        Target::Fd(file) => file.stat().map_err(host_errno),
        Target::Path(_, at) => {
            let fd = host(mount(cx, &at).handle(&at.rel, flags & AT_SYMLINK_NOFOLLOW != 0))?;
            Ok(Stat::from_host(&host(rustix::fs::fstat(&fd))?))
        }
    }
}

pub(crate) fn newfstatat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = u64::from(a.uint(3));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let st = stat_target(cx, a.dirfd(0), a.ptr(1), flags)?;
    cx.write_val(a.ptr(2), &st)?;
    Ok(0)
}

/// stat(path, buf) and lstat (`nofollow`).
pub(crate) fn stat(cx: &mut Ctx<'_, '_>, a: &Args, nofollow: bool) -> Sys {
    let flags = if nofollow { AT_SYMLINK_NOFOLLOW } else { 0 };
    let st = stat_target(cx, AT_FDCWD, a.ptr(0), flags)?;
    cx.write_val(a.ptr(1), &st)?;
    Ok(0)
}

pub(crate) fn statx(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (dirfd, path, flags, mask, buf) = (
        a.dirfd(0),
        a.ptr(1),
        u64::from(a.uint(2)),
        u64::from(a.uint(3)),
        a.ptr(4),
    );
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

/// statfs of a synthetic tree: proc's and sysfs's magic numbers, else an empty tmpfs.
fn synthetic_statfs(abs: &[u8]) -> Statfs {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let f_type = if abs.starts_with(b"/proc") {
        PROC_SUPER_MAGIC
    } else if abs.starts_with(b"/sys") {
        SYSFS_MAGIC
    } else {
        TMPFS_MAGIC
    };
    Statfs {
        f_type,
        f_bsize: PAGE_4K as i64,
        f_namelen: NAME_MAX as i64,
        f_frsize: PAGE_4K as i64,
        ..Default::default()
    }
}

/// statfs of a private `/tmp` or `/dev/shm` (`m`): a tmpfs the size of the app's memory, with
/// Linux's default inode count for that much RAM (half its pages).
fn tmpfs_statfs(cx: &Ctx<'_, '_>, m: &Mount) -> Result<Statfs, Errno> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let size = cx.process.space().backing_limit_bytes();
    let held = private::held(m.root_fd()).map_err(host_errno)?;
    let blocks = size / PAGE_4K;
    let free = blocks.saturating_sub(held.bytes.div_ceil(PAGE_4K));
    let files = blocks / 2;
    Ok(Statfs {
        f_type: TMPFS_MAGIC,
        f_bsize: PAGE_4K as i64,
        f_blocks: blocks,
        f_bfree: free,
        f_bavail: free,
        f_files: files,
        f_ffree: files.saturating_sub(held.inodes),
        f_namelen: NAME_MAX as i64,
        f_frsize: PAGE_4K as i64,
        f_flags: ST_VALID | ST_NOSUID | ST_NODEV | ST_RELATIME,
        ..Default::default()
    })
}

/// fstatfs: the host file system's numbers; a read-only volume says ST_RDONLY.
pub(crate) fn fstatfs(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let tmpfs = file.as_volume().and_then(|h| {
        let fs = cx.process.fs();
        fs.get_mount(h.mount)?.tmpfs()?;
        Some(fs.mount_shared(h.mount))
    });
    if let Some(m) = tmpfs {
        let st = tmpfs_statfs(cx, &m)?;
        cx.write_val(a.ptr(1), &st)?;
        return Ok(0);
    }
    let st = match (file.as_volume(), file.host_fd()) {
        (Some(h), _) => statfs_of(&h.fd, h.writable_volume)?,
        (None, Some(fd)) => statfs_of(fd, true)?,
        (None, None) => match file.as_synthetic() {
            Some(s) => synthetic_statfs(&s.path),
            None => return Err(Errno::EINVAL.into()),
        },
    };
    cx.write_val(a.ptr(1), &st)?;
    Ok(0)
}

pub(crate) fn statfs(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if let Some((abs, _)) = synth_at(cx, AT_FDCWD, a.ptr(0), true)? {
        cx.write_val(a.ptr(1), &synthetic_statfs(&abs))?;
        return Ok(0);
    }
    let name = read_path(cx, a.ptr(0))?;
    let (_, at) = locate(cx, AT_FDCWD, &name)?;
    let m = mount(cx, &at);
    let fd = host(m.handle(&at.rel, false))?;
    let st = match m.tmpfs() {
        Some(_) => tmpfs_statfs(cx, &m)?,
        None => statfs_of(&fd, m.writable())?,
    };
    cx.write_val(a.ptr(1), &st)?;
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
pub(crate) fn getdents64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    dents(cx, a, false)
}

/// getdents: the old `struct linux_dirent` (d_ino, d_off, d_reclen, name, NUL, d_type in the
/// record's last byte). Its records are the same size as linux_dirent64's (18 bytes before
/// the name plus NUL and type, against 19 plus NUL), so the same entries fit the same
/// buffer and each record is rewritten in place.
pub(crate) fn getdents(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    dents(cx, a, true)
}

/// Rewrite linux_dirent64 records into the old linux_dirent layout (see [`getdents`]).
fn to_old_dirents(out: &mut [u8]) {
    let mut at = 0;
    while at + DIRENT_HEAD <= out.len() {
        let reclen = usize::from(u16::from_ne_bytes([out[at + 16], out[at + 17]]));
        if reclen < DIRENT_HEAD + 1 || at + reclen > out.len() {
            return;
        }
        let rec = &mut out[at..at + reclen];
        let d_type = rec[18];
        // The name (NUL-terminated) moves down one byte over d_type; d_type goes last.
        rec.copy_within(19.., 18);
        rec[reclen - 1] = d_type;
        at += reclen;
    }
}

fn dents(cx: &mut Ctx<'_, '_>, a: &Args, old: bool) -> Sys {
    let (fd, dirp, count) = (a.fd(0), a.ptr(1), a.uint(2) as usize);
    let file = cx.process.fds().get(fd)?.file;
    if let Some(s) = file.as_synthetic() {
        if !file.readable() {
            return Err(Errno::EBADF.into());
        }
        let (mut out, next) = s.dirents(count.min(MAX_DIRENTS_BYTES))?;
        if old {
            to_old_dirents(&mut out);
        }
        owned(cx, dirp, out.len() as u64)?;
        cx.space().write(cx.mem, dirp, &out)?;
        s.set_pos(next);
        return Ok(out.len() as u64);
    }
    let Some(h) = file.as_volume() else {
        return Err(Errno::ENOTDIR.into());
    };
    if h.path_only {
        return Err(Errno::EBADF.into());
    }
    if h.kind != FileKind::Directory {
        return Err(Errno::ENOTDIR.into());
    }
    let want = count.min(MAX_DIRENTS_BYTES);
    // Where the entries this call reads start: a copy to the guest that faults puts the
    // position back there, so a retried call still returns them (Linux does not advance past
    // entries it could not copy).
    let before = host(rustix::fs::seek(&h.fd, rustix::fs::SeekFrom::Current(0)))?;
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
    if old {
        to_old_dirents(&mut out);
    }
    let copied =
        owned(cx, dirp, out.len() as u64).and_then(|()| cx.space().write(cx.mem, dirp, &out));
    if let Err(e) = copied {
        host(rustix::fs::seek(&h.fd, rustix::fs::SeekFrom::Start(before)))?;
        return Err(e.into());
    }
    Ok(out.len() as u64)
}

/// What every call that makes a new directory entry (mkdir, mknod, symlink) checks, in
/// Linux's order: the name is not the mount point itself or a trailing ".", the parent exists,
/// the directory that gets the entry is in a writable region (else EEXIST for an existing
/// name, EROFS); then `create` runs on that directory and the new entry's name.
fn create_entry(
    cx: &Ctx<'_, '_>,
    dirfd: u64,
    name: &[u8],
    create: impl FnOnce(BorrowedFd<'_>, &[u8]) -> Result<(), Errno>,
) -> Sys {
    let (p, at) = locate(cx, dirfd, name)?;
    let fs = &*cx.process.fs();
    let m = fs.mount(at.mount);
    if at.rel.is_empty() || p.dot_last {
        return Err(Errno::EEXIST.into());
    }
    let (parent, leaf) = host(m.parent(&at.rel))?;
    if !fs.region(at.mount, parent.as_fd()).writable {
        return Err(refuse_create(parent.as_fd(), leaf).into());
    }
    create(parent.as_fd(), leaf)?;
    Ok(0)
}

pub(crate) fn mkdir(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64) -> Sys {
    let name = read_path(cx, path)?;
    let mode = (mode as u32) & MODE_BITS & !cx.process.fs().umask();
    create_entry(cx, dirfd, &name, |parent, leaf| {
        host(rustix::fs::mkdirat(
            parent,
            leaf,
            Mode::from_bits_retain(mode),
        ))?;
        fix_mode_at(parent, leaf, mode)
    })
}

/// mknodat(dirfd, path, mode, dev); mknod comes here with AT_FDCWD. FIFOs, sockets and regular
/// files are made; device nodes never (EPERM, as Linux says to a process without CAP_MKNOD).
pub(crate) fn mknod(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64) -> Sys {
    use rustix::fs::FileType as T;
    let name = read_path(cx, path)?;
    let mode = mode as u32;
    // may_mknod: the type is checked before the path is looked up.
    let kind = match T::from_raw_mode(mode) {
        _ if mode & 0o170000 == 0 => T::RegularFile,
        T::RegularFile => T::RegularFile,
        T::Fifo => T::Fifo,
        T::Socket => T::Socket,
        T::CharacterDevice | T::BlockDevice => T::Unknown,
        T::Directory => return Err(Errno::EPERM.into()),
        _ => return Err(Errno::EINVAL.into()),
    };
    let perm = mode & MODE_BITS & !cx.process.fs().umask();
    create_entry(cx, dirfd, &name, |parent, leaf| {
        if kind == T::Unknown {
            return Err(Errno::EPERM);
        }
        host(rustix::fs::mknodat(
            parent,
            leaf,
            kind,
            Mode::from_bits_retain(perm),
            0,
        ))?;
        fix_mode_at(parent, leaf, perm)
    })
}

/// unlinkat(dirfd, path, flags); unlink and rmdir come here with AT_FDCWD.
pub(crate) fn unlink(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, flags: u64) -> Sys {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL.into());
    }
    let rmdir = flags & AT_REMOVEDIR != 0;
    let name = read_path(cx, path)?;
    let (p, at) = locate(cx, dirfd, &name)?;
    let fs = &*cx.process.fs();
    let m = fs.mount(at.mount);
    // A volume root is a mount point.
    let mount_point = if rmdir { Errno::EBUSY } else { Errno::EISDIR };
    if at.rel.is_empty() {
        return Err(mount_point.into());
    }
    if p.dot_last {
        return Err(if rmdir { Errno::EINVAL } else { Errno::EISDIR }.into());
    }
    let (parent, leaf) = host(m.parent(&at.rel))?;
    if !fs.region(at.mount, parent.as_fd()).writable {
        return Err(Errno::EROFS.into());
    }
    if fs.is_volume_root(parent.as_fd(), leaf) {
        return Err(mount_point.into());
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
pub(crate) fn rename(cx: &mut Ctx<'_, '_>, a: [u64; 5]) -> Sys {
    const NOREPLACE: u64 = 1;
    const EXCHANGE: u64 = 2;
    const WHITEOUT: u64 = 4;
    let [od, op, nd, np, flags] = a;
    if flags & !(NOREPLACE | EXCHANGE | WHITEOUT) != 0
        || (flags & EXCHANGE != 0 && flags & (NOREPLACE | WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    // A whiteout is a character device: never made (EPERM, Linux's answer without CAP_MKNOD).
    if flags & WHITEOUT != 0 {
        return Err(Errno::EPERM.into());
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
    let fs = &*cx.process.fs();
    let m = fs.mount(ao.mount);
    let (op_dir, o_leaf) = host(m.parent(&ao.rel))?;
    let (np_dir, n_leaf) = host(m.parent(&an.rel))?;
    // Both directories' regions: moving an entry into or out of a read-only volume's host
    // directory is across mounts for the guest (EXDEV); within one, EROFS.
    let (ro, rn) = (
        fs.region(ao.mount, op_dir.as_fd()),
        fs.region(an.mount, np_dir.as_fd()),
    );
    if ro.volume != rn.volume {
        return Err(Errno::EXDEV.into());
    }
    if !ro.writable || !rn.writable {
        return Err(Errno::EROFS.into());
    }
    if fs.is_volume_root(op_dir.as_fd(), o_leaf) || fs.is_volume_root(np_dir.as_fd(), n_leaf) {
        return Err(Errno::EBUSY.into());
    }
    let how = rustix::fs::RenameFlags::from_bits_retain(flags as u32);
    host(rustix::fs::renameat_with(
        &op_dir, o_leaf, &np_dir, n_leaf, how,
    ))?;
    Ok(0)
}

/// linkat(olddirfd, oldpath, newdirfd, newpath, flags); link comes here. Both in one volume.
pub(crate) fn link(cx: &mut Ctx<'_, '_>, a: [u64; 5]) -> Sys {
    let [od, op, nd, np, flags] = a;
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let old = target(cx, od, op, flags)?;
    let new_name = read_path(cx, np)?;
    let (pn, an) = locate(cx, nd, &new_name)?;
    let fs = &*cx.process.fs();
    if let Target::Path(po, ao) = &old {
        if ao.rel.is_empty() || po.dot_last {
            return Err(Errno::EPERM.into());
        }
    }
    // In Linux's order: the source is looked up (a final symlink followed with
    // AT_SYMLINK_FOLLOW), then the new name (EEXIST, EROFS), and only then are the two
    // compared (EXDEV across volumes, or across a read-only volume's host directory).
    let source = match &old {
        Target::Path(_, ao) => {
            let m = fs.mount(ao.mount);
            let (dir, leaf) = host(m.entry(&ao.rel, flags & AT_SYMLINK_FOLLOW != 0))?;
            let region = fs.region(ao.mount, dir.as_fd());
            Some((dir, leaf, region))
        }
        _ => None,
    };
    if an.rel.is_empty() || pn.dot_last {
        return Err(Errno::EEXIST.into());
    }
    let (np_dir, n_leaf) = host(fs.mount(an.mount).parent(&an.rel))?;
    let rn = fs.region(an.mount, np_dir.as_fd());
    if !rn.writable {
        return Err(refuse_create(np_dir.as_fd(), n_leaf).into());
    }
    match (old, source) {
        (_, Some((dir, leaf, region))) => {
            if region.volume != rn.volume {
                return Err(Errno::EXDEV.into());
            }
            host(rustix::fs::linkat(
                &dir,
                &leaf[..],
                &np_dir,
                n_leaf,
                AtFlags::empty(),
            ))?
        }
        (Target::Volume(h), None) => {
            if h.mount != an.mount || fd_region(fs, &h).volume != rn.volume {
                return Err(Errno::EXDEV.into());
            }
            host(rustix::fs::linkat(
                &h.fd,
                "",
                &np_dir,
                n_leaf,
                AtFlags::EMPTY_PATH,
            ))?
        }
        _ => return Err(Errno::EXDEV.into()),
    }
    Ok(0)
}

/// symlinkat(target, newdirfd, linkpath); symlink comes here. The target is stored as given:
/// following it later is confined like any other lookup.
pub(crate) fn symlink(cx: &mut Ctx<'_, '_>, target_ptr: u64, dirfd: u64, path: u64) -> Sys {
    let target = read_path(cx, target_ptr)?;
    let name = read_path(cx, path)?;
    if target.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    create_entry(cx, dirfd, &name, |parent, leaf| {
        host(rustix::fs::symlinkat(&target[..], parent, leaf))
    })
}

/// readlinkat(dirfd, path, buf, size); readlink comes here. `/proc/self/exe` is the
/// application's executable, as before volumes.
pub(crate) fn readlink(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, buf: u64, size: u64) -> Sys {
    let name = read_path(cx, path)?;
    if name == b"/proc/self/exe" {
        return super::proc::readlink(cx, path, buf, size);
    }
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL.into());
    }
    if let Some((_, node)) = synth_at(cx, dirfd, path, false)? {
        let text = match node {
            synthetic::Node::Link(t) | synthetic::Node::Fd(_, t) => t,
            _ => return Err(Errno::EINVAL.into()),
        };
        let n = text.len().min(size as usize);
        cx.space().write(cx.mem, buf, &text[..n])?;
        return Ok(n as u64);
    }
    let text = if name.is_empty() {
        // The working directory: not a symlink.
        if dirfd as i32 == AT_FDCWD as i32 {
            return Err(Errno::ENOENT.into());
        }
        // The fd itself: an O_PATH | O_NOFOLLOW handle on a symlink.
        let file = cx.process.fds().get(dirfd)?.file;
        match file.as_volume() {
            Some(h) => host(rustix::fs::readlinkat(&h.fd, "", Vec::new()))?,
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
pub(crate) fn access(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> Sys {
    const W_OK: u64 = 2;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
    if let Some((_, node)) = synth_at(cx, dirfd, path, !nofollow)? {
        // The device nodes are 0666 (/dev/tty too, with or without a terminal behind it).
        let writable = matches!(
            node,
            synthetic::Node::Dev(_) | synthetic::Node::Tty(_) | synthetic::Node::Link(_)
        );
        return if mode & W_OK != 0 && !writable
            || mode & 1 != 0 && !matches!(node, synthetic::Node::Dir(_))
        {
            Err(Errno::EACCES.into())
        } else {
            Ok(0)
        };
    }
    // target() takes the file-system lock itself: taking it here first would read-lock it
    // twice, which deadlocks once a writer waits in between.
    let target = target(cx, dirfd, path, flags)?;
    let fs = &*cx.process.fs();
    let (fd, writable_volume) = match target {
        Target::Path(_, at) if mode & W_OK != 0 => {
            let (fd, region) = object(fs, at.mount, &at.rel, !nofollow)?;
            (Handle::Own(fd), region.writable)
        }
        Target::Path(_, at) => {
            let m = fs.mount_shared(at.mount);
            (
                Handle::Own(host(m.handle(&at.rel, nofollow))?),
                m.writable(),
            )
        }
        Target::Volume(h) => {
            let writable = mode & W_OK != 0 && fd_region(fs, &h).writable;
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
pub(crate) fn chmod(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> Sys {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mode = Mode::from_bits_retain(mode as u32 & MODE_BITS);
    match target(cx, dirfd, path, flags)? {
        Target::Volume(h) => chmod_file(&cx.process.fs(), Some(&h), mode),
        Target::Fd(_) => chmod_file(&cx.process.fs(), None, mode),
        Target::Path(_, at) => {
            let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
            let (fd, region) = object(&cx.process.fs(), at.mount, &at.rel, !nofollow)?;
            if !region.writable {
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
fn chmod_file(fs: &FileSystem, file: Option<&Arc<HostFile>>, mode: Mode) -> Sys {
    match file {
        Some(h) if !fd_region(fs, h).writable => Err(Errno::EROFS.into()),
        // An O_PATH handle (fchmodat2 with AT_EMPTY_PATH) has no fchmod; its /proc name does.
        Some(h) if h.path_only => {
            host(rustix::fs::chmodat(
                CWD,
                proc_fd(&h.fd),
                mode,
                AtFlags::empty(),
            ))?;
            Ok(0)
        }
        Some(h) => {
            host(rustix::fs::fchmod(&h.fd, mode))?;
            Ok(0)
        }
        _ => Err(Errno::EPERM.into()),
    }
}

pub(crate) fn fchmod(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let mode = Mode::from_bits_retain(a.uint(1) & MODE_BITS);
    chmod_file(&cx.process.fs(), file.as_volume(), mode)
}

/// chown/lchown/fchownat(dirfd, path, uid, gid, flags): the host does the change on an
/// `O_PATH` handle of the object, so the kernel applies its own rules (who may give a file
/// away, S_ISUID/S_ISGID cleared); -1 leaves an id as it is.
pub(crate) fn chown(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, ids: [u64; 2], flags: u64) -> Sys {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (owner, group) = owner_ids(ids);
    match target(cx, dirfd, path, flags)? {
        Target::Volume(h) => chown_file(&cx.process.fs(), Some(&h), owner, group),
        Target::Fd(_) => chown_file(&cx.process.fs(), None, owner, group),
        Target::Path(_, at) => {
            let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
            let (fd, region) = object(&cx.process.fs(), at.mount, &at.rel, !nofollow)?;
            if !region.writable {
                return Err(Errno::EROFS.into());
            }
            host(rustix::fs::chownat(
                &fd,
                "",
                owner,
                group,
                AtFlags::EMPTY_PATH,
            ))?;
            Ok(0)
        }
    }
}

/// The (uid, gid) arguments of the chown family: 32-bit ids, where -1 means "unchanged".
fn owner_ids(ids: [u64; 2]) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    (
        id(ids[0]).map(rustix::fs::Uid::from_raw),
        id(ids[1]).map(rustix::fs::Gid::from_raw),
    )
}

/// chown of an open file; the standard streams are umon's own (EPERM), as for chmod.
fn chown_file(
    fs: &FileSystem,
    file: Option<&Arc<HostFile>>,
    owner: Option<rustix::fs::Uid>,
    group: Option<rustix::fs::Gid>,
) -> Sys {
    match file {
        Some(h) if !fd_region(fs, h).writable => Err(Errno::EROFS.into()),
        Some(h) => {
            host(rustix::fs::chownat(
                &h.fd,
                "",
                owner,
                group,
                AtFlags::EMPTY_PATH,
            ))?;
            Ok(0)
        }
        _ => Err(Errno::EPERM.into()),
    }
}

pub(crate) fn fchown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    let (owner, group) = owner_ids([a.raw(1), a.raw(2)]);
    chown_file(&cx.process.fs(), file.as_volume(), owner, group)
}

/// utimensat's "now" for either time.
const UTIME_NOW: i64 = (1 << 30) - 1;
/// Both times "now": what a NULL times pointer means.
const BOTH_NOW: [Timespec; 2] = [Timespec {
    sec: 0,
    nsec: UTIME_NOW,
}; 2];

/// utimensat(dirfd, path, times, flags): a NULL path means `dirfd` itself (futimens).
pub(crate) fn utimensat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (dirfd, path, times_ptr, flags) = (a.dirfd(0), a.ptr(1), a.ptr(2), u64::from(a.uint(3)));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let times: [Timespec; 2] = if times_ptr == 0 {
        BOTH_NOW
    } else {
        cx.read_val(times_ptr)?
    };
    set_times(cx, dirfd, path, times, flags)
}

/// utime(path, utimbuf): whole seconds; NULL means now.
pub(crate) fn utime(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let times = match a.ptr(1) {
        0 => BOTH_NOW,
        at => {
            let [actime, modtime]: [i64; 2] = cx.read_val(at)?;
            [actime, modtime].map(|sec| Timespec { sec, nsec: 0 })
        }
    };
    set_times(cx, AT_FDCWD, a.ptr(0), times, 0)
}

/// utimes(path, timeval[2]): see [`futimesat`].
pub(crate) fn utimes(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let times = timevals(cx, a.ptr(1))?;
    set_times(cx, AT_FDCWD, a.ptr(0), times, 0)
}

/// futimesat(dirfd, path, timeval[2]): microseconds outside 0..10^6 are EINVAL (checked
/// before the multiplication that would hide them, as Linux's do_futimesat); NULL means now.
pub(crate) fn futimesat(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let times = timevals(cx, a.ptr(2))?;
    set_times(cx, a.dirfd(0), a.ptr(1), times, 0)
}

/// The times of utimes/futimesat, as utimensat's.
fn timevals(cx: &Ctx<'_, '_>, at: u64) -> Result<[Timespec; 2], Errno> {
    if at == 0 {
        return Ok(BOTH_NOW);
    }
    let tv: [Timeval; 2] = cx.read_val(at)?;
    if tv.iter().any(|t| !(0..1_000_000).contains(&t.usec)) {
        return Err(Errno::EINVAL);
    }
    Ok(tv.map(|t| Timespec {
        sec: t.sec,
        nsec: t.usec * 1000,
    }))
}

/// do_utimes: set `times` on `path` at `dirfd` (or on `dirfd` itself for a NULL path).
fn set_times(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, times: [Timespec; 2], flags: u64) -> Sys {
    const UTIME_OMIT: i64 = (1 << 30) - 2;
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
        if dirfd as i32 == AT_FDCWD as i32 {
            return Err(Errno::EFAULT.into());
        }
        // futimens takes no flags (do_utimes_fd).
        if flags != 0 {
            return Err(Errno::EINVAL.into());
        }
        let file = cx.process.fds().get(dirfd)?.file;
        return match file.as_volume() {
            Some(h) if !fd_region(&cx.process.fs(), h).writable => Err(Errno::EROFS.into()),
            Some(h) => {
                host(rustix::fs::futimens(&h.fd, &stamps))?;
                Ok(0)
            }
            _ => Err(Errno::EPERM.into()),
        };
    }
    // Before the lock: target() takes it itself (see access).
    let target = target(cx, dirfd, path, flags)?;
    let fs = &*cx.process.fs();
    let (fd, writable) = match target {
        Target::Path(_, at) => {
            let nofollow = flags & AT_SYMLINK_NOFOLLOW != 0;
            let (fd, region) = object(fs, at.mount, &at.rel, !nofollow)?;
            (fd, region.writable)
        }
        Target::Volume(h) => {
            if !fd_region(fs, &h).writable {
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

pub(crate) fn truncate(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let name = read_path(cx, a.ptr(0))?;
    let len = a.len(1);
    if (len as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let (_, at) = locate(cx, AT_FDCWD, &name)?;
    let fs = &*cx.process.fs();
    let m = fs.mount(at.mount);
    if at.rel.is_empty() {
        return Err(Errno::EISDIR.into());
    }
    let (parent, leaf) = match m.entry(&at.rel, true) {
        Err(rustix::io::Errno::BUSY) => return Err(Errno::EISDIR.into()),
        r => host(r)?,
    };
    if !fs.object_region(at.mount, parent.as_fd(), &leaf).writable {
        host(rustix::fs::statat(&parent, &leaf[..], AtFlags::empty()))?;
        return Err(Errno::EROFS.into());
    }
    refuse_running_exe_at(cx.process, parent.as_fd(), &leaf)?;
    let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW;
    let fd = host(rustix::fs::openat(
        &parent,
        &leaf[..],
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    ))?;
    if rustix::fs::FileType::from_raw_mode(host(rustix::fs::fstat(&fd))?.st_mode).is_file() {
        fsize_truncate(cx, len)?;
    }
    host(rustix::fs::ftruncate(&fd, len))?;
    truncated_under_mappings(cx, fd.as_fd(), len);
    Ok(0)
}

/// A file this process may have mapped shared was truncated to `len`: its mappings' pages past
/// the new end lose their frames (SIGBUS when touched, as on Linux).
fn truncated_under_mappings(cx: &Ctx<'_, '_>, fd: BorrowedFd<'_>, len: u64) {
    if let Ok(st) = rustix::fs::fstat(fd) {
        let mem = cx.mem;
        cx.process
            .space_mut()
            .file_truncated(mem, st.st_dev, st.st_ino, len);
    }
}

/// The volume file behind `fd`; `stream` is the error for a standard stream.
fn host_file(cx: &Ctx<'_, '_>, fd: u64, stream: Errno) -> Result<Arc<HostFile>, Errno> {
    let file = cx.process.fds().get(fd)?.file;
    file.as_volume().cloned().ok_or(stream)
}

pub(crate) fn ftruncate(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let h = host_file(cx, a.fd(0), Errno::EINVAL)?;
    if (a.off(1) as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    if h.kind == FileKind::Regular && h.writable {
        fsize_truncate(cx, a.len(1))?;
    }
    host(rustix::fs::ftruncate(&h.fd, a.len(1)))?;
    truncated_under_mappings(cx, h.fd.as_fd(), a.len(1));
    Ok(0)
}

/// fallocate(fd, mode, offset, len) in vfs_fallocate's order: EINVAL for a negative offset or
/// a length not above 0, EOPNOTSUPP for a mode outside the known ones (PUNCH_HOLE without
/// KEEP_SIZE, COLLAPSE/INSERT/WRITE_ZEROES with it), EBADF unless open for writing, ESPIPE for
/// a pipe, EISDIR for a directory, ENODEV for anything but a regular file (the /dev nodes,
/// a terminal), EFBIG past 2^63; then the host file does it (its file system may still say
/// EOPNOTSUPP). A file of a read-only volume never changes (EROFS).
pub(crate) fn fallocate(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    const KEEP_SIZE: u32 = 0x01;
    const PUNCH_HOLE: u32 = 0x02;
    const COLLAPSE_RANGE: u32 = 0x08;
    const ZERO_RANGE: u32 = 0x10;
    const INSERT_RANGE: u32 = 0x20;
    const UNSHARE_RANGE: u32 = 0x40;
    const WRITE_ZEROES: u32 = 0x80;
    const MODE_MASK: u32 =
        PUNCH_HOLE | COLLAPSE_RANGE | ZERO_RANGE | INSERT_RANGE | UNSHARE_RANGE | WRITE_ZEROES;
    let file = cx.process.fds().get(a.fd(0))?.file;
    let (mode, offset, len) = (a.uint(1), a.off(2) as i64, a.off(3) as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if mode & !(MODE_MASK | KEEP_SIZE) != 0 {
        return Err(Errno::EOPNOTSUPP.into());
    }
    let keep = mode & KEEP_SIZE != 0;
    let known = match mode & MODE_MASK {
        0 | UNSHARE_RANGE | ZERO_RANGE => true,
        PUNCH_HOLE => keep,
        COLLAPSE_RANGE | INSERT_RANGE | WRITE_ZEROES => !keep,
        _ => false,
    };
    if !known {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if !file.writable() {
        return Err(Errno::EBADF.into());
    }
    let kind = file.stat().map_err(host_errno)?.mode & libc::S_IFMT;
    match kind {
        libc::S_IFIFO => return Err(Errno::ESPIPE.into()),
        libc::S_IFDIR => return Err(Errno::EISDIR.into()),
        libc::S_IFREG => {}
        _ => return Err(Errno::ENODEV.into()),
    }
    if offset.checked_add(len).is_none() {
        return Err(Errno::EFBIG.into());
    }
    let Some(h) = file.as_volume() else {
        // A regular file that is no volume's (umon's own stream redirected to a file): it is
        // not the guest's to change.
        return Err(Errno::EOPNOTSUPP.into());
    };
    // A memfd is in no volume, and writable. Its blocks are host memory (tmpfs), which one
    // call could otherwise fill: a memfd holds at most the app's memory (-m), like a tmpfs
    // of that size (ENOSPC past it; `memory_file_cap`, as writes).
    let cap = crate::linux::fd::file::memory_file_cap(cx, &*file);
    if !h.writable_volume && cap.is_none() {
        return Err(Errno::EROFS.into());
    }
    if cap.is_some_and(|cap| (offset + len) as u64 > cap) {
        return Err(Errno::ENOSPC.into());
    }
    // A private /tmp or /dev/shm: a tmpfs the size of the app's memory (ENOSPC past it,
    // as writes; the mode's allocation is taken as all of the range).
    if mode & (PUNCH_HOLE | COLLAPSE_RANGE) == 0 {
        if let Some(m) = in_tmpfs(cx, &*file) {
            tmpfs_admit(cx, &m, &*file, offset as u64, len as u64, true)?;
        }
    }
    let flags = rustix::fs::FallocateFlags::from_bits_retain(mode);
    host(rustix::fs::fallocate(
        &h.fd,
        flags,
        offset as u64,
        len as u64,
    ))?;
    // COLLAPSE_RANGE shortens the file: mapped pages past the new end are SIGBUS.
    if let Ok(st) = rustix::fs::fstat(&h.fd) {
        truncated_under_mappings(cx, h.fd.as_fd(), st.st_size.max(0) as u64);
    }
    Ok(0)
}

/// The volume `file` lives in when it is a regular file in a private `/tmp` or `/dev/shm`,
/// which the guest sees as a tmpfs the size of its memory (`-m`; see [`private::Usage`]).
pub(crate) fn in_tmpfs(cx: &Ctx<'_, '_>, file: &dyn FileDescription) -> Option<Arc<Mount>> {
    let h = file.as_volume()?;
    if h.kind != FileKind::Regular {
        return None;
    }
    let fs = cx.process.fs();
    fs.get_mount(h.mount)?.tmpfs()?;
    Some(fs.mount_shared(h.mount))
}

/// The bytes of a write of `len` at `pos` to `file` in the tmpfs volume `m` ([`in_tmpfs`])
/// that fit it: all, those before its last free page, ENOSPC when none does (or, `whole`,
/// unless all do).
pub(crate) fn tmpfs_admit(
    cx: &Ctx<'_, '_>,
    m: &Mount,
    file: &dyn FileDescription,
    pos: u64,
    len: u64,
    whole: bool,
) -> Result<u64, Errno> {
    let (Some(usage), Some(fd)) = (m.tmpfs(), file.host_fd()) else {
        return Ok(len);
    };
    let size = cx.process.space().backing_limit_bytes();
    usage
        .admit(m.root_fd(), fd, pos, len, size, whole)
        .map_err(host_errno)
}

/// fsync, or fdatasync (`data_only`).
pub(crate) fn fsync(cx: &mut Ctx<'_, '_>, a: &Args, data_only: bool) -> Sys {
    let h = host_file(cx, a.fd(0), Errno::EINVAL)?;
    if data_only {
        host(rustix::fs::fdatasync(&h.fd))?;
    } else {
        host(rustix::fs::fsync(&h.fd))?;
    }
    Ok(0)
}

/// sync: every writable volume's file system (see `FileSystem::sync_writable`).
pub(crate) fn sync(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    cx.process.fs().sync_writable();
    Ok(0)
}

/// syncfs(fd): the host file system of a volume file; nothing to write back for the others
/// (synthetic files, pipes, sockets), which Linux also answers with 0.
pub(crate) fn syncfs(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    match file.as_volume() {
        // fdget refuses O_PATH handles.
        Some(h) if h.path_only => Err(Errno::EBADF.into()),
        Some(h) => {
            host(rustix::fs::syncfs(&h.fd))?;
            Ok(0)
        }
        None => Ok(0),
    }
}

/// sync_file_range(fd, offset, nbytes, flags) in Linux's order (EBADF, then the flags and
/// the range, then ESPIPE for what is not a regular file, directory or link); a volume file
/// asked to write is written back whole (fdatasync: more than asked, never less).
pub(crate) fn sync_file_range(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    const WAIT_BEFORE: u32 = 1;
    const WRITE: u32 = 2;
    const WAIT_AFTER: u32 = 4;
    let file = cx.process.fds().get(a.fd(0))?.file;
    if file.as_volume().is_some_and(|h| h.path_only) {
        return Err(Errno::EBADF.into());
    }
    let (offset, nbytes, flags) = (a.off(1) as i64, a.off(2) as i64, a.uint(3));
    if flags & !(WAIT_BEFORE | WRITE | WAIT_AFTER) != 0 || offset < 0 {
        return Err(Errno::EINVAL.into());
    }
    let end = offset.wrapping_add(nbytes);
    if end < 0 || end < offset {
        return Err(Errno::EINVAL.into());
    }
    let Some(h) = file.as_volume() else {
        return Err(Errno::ESPIPE.into());
    };
    if h.kind == FileKind::Other {
        return Err(Errno::ESPIPE.into());
    }
    if flags & WRITE != 0 {
        host(rustix::fs::fdatasync(&h.fd))?;
    }
    Ok(0)
}

/// readahead(fd, offset, count): a hint (the host's page cache reads ahead itself), checked
/// as Linux does: EBADF unless open for reading, EINVAL for what is not a regular file.
pub(crate) fn readahead(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    if !file.readable() {
        return Err(Errno::EBADF.into());
    }
    match file.as_volume() {
        Some(h) if h.kind == FileKind::Regular => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}

/// fadvise64: a hint, checked and accepted (the host's page cache does its own read-ahead).
pub(crate) fn fadvise64(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    host_file(cx, a.fd(0), Errno::ESPIPE)?;
    if u64::from(a.uint(3)) > 5 || (a.off(2) as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}

// ---- working directory, umask -------------------------------------------------------------

/// chdir: the working directory becomes the directory's host handle; "/" is always allowed,
/// even when no volume is mounted there.
pub(crate) fn chdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if let Some((abs, node)) = synth_at(cx, AT_FDCWD, a.ptr(0), true)? {
        if !matches!(node, synthetic::Node::Dir(_)) {
            return Err(Errno::ENOTDIR.into());
        }
        cx.process.fs_mut().set_cwd(None, abs);
        return Ok(0);
    }
    let name = read_path(cx, a.ptr(0))?;
    let (p, at) = match locate(cx, AT_FDCWD, &name) {
        Err(Errno::ENOENT) if !name.is_empty() => {
            let cwd = host(cx.process.fs().cwd())?;
            if GuestPath::new(&cwd, &name).abs != b"/" {
                return Err(Errno::ENOENT.into());
            }
            cx.process.fs_mut().set_cwd(None, b"/".to_vec());
            return Ok(0);
        }
        r => r?,
    };
    let (handle, path) = {
        // Released before set_cwd takes the file system for writing.
        let fs = &*cx.process.fs();
        let m = fs.mount(at.mount);
        let dir = host(m.open(&at.rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()))?;
        // The directory's own path: after a symlink, where it points.
        let path = host(fs.path_of(at.mount, dir.as_fd(), &p.abs))?;
        let handle: DirHandle = Arc::new(dir);
        (handle, path)
    };
    cx.process.fs_mut().set_cwd(Some((at.mount, handle)), path);
    Ok(0)
}

pub(crate) fn fchdir(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    match file.as_volume() {
        Some(h) if h.kind == FileKind::Directory => {
            let path = dir_path(&cx.process.fs(), h)?;
            let mount = h.mount;
            let handle: DirHandle = h.clone();
            cx.process.fs_mut().set_cwd(Some((mount, handle)), path);
            Ok(0)
        }
        _ => match file.as_synthetic() {
            Some(s) if s.is_dir() => {
                cx.process.fs_mut().set_cwd(None, s.path.clone());
                Ok(0)
            }
            _ => Err(Errno::ENOTDIR.into()),
        },
    }
}

/// getcwd: the working directory's current guest path, found from its handle (after renames,
/// where it is now; after chdir through a symlink, the directory's own path). ENOENT once it
/// was removed, as on Linux.
pub(crate) fn getcwd(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mut cwd = host(cx.process.fs_mut().refresh_cwd())?;
    if cwd == b"/" {
        return super::proc::getcwd(cx, a);
    }
    cwd.push(0);
    if a.len(1) < cwd.len() as u64 {
        return Err(Errno::ERANGE.into());
    }
    cx.space().write(cx.mem, a.ptr(0), &cwd)?;
    Ok(cwd.len() as u64)
}

pub(crate) fn umask(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    Ok(u64::from(cx.process.fs_mut().set_umask(a.uint(0))))
}
