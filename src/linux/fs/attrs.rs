//! Ownership and extended attributes. chown to the application's own ids only (it has no
//! capabilities). Extended attributes: the guest's file view is a file system that supports them but where
//! no file has any (getxattr ENODATA, an empty list) and none can be set (EOPNOTSUPP), so no
//! host label (`security.selinux`, ACLs) reaches the application and nothing is written on
//! the host. The checks before that come in Linux's order (fs/xattr.c): flags, the name
//! (EFAULT, ERANGE), the size (E2BIG), the path or fd, a read-only volume (EROFS).
use super::{fd_region, object, target, Target};
use crate::linux::abi::at::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::linux::abi::oflag;
use crate::linux::{Args, Ctx, Sys};
use std::os::fd::OwnedFd;
use syscalls::Errno;

/// XATTR_NAME_MAX.
const NAME_MAX: usize = 255;
/// XATTR_SIZE_MAX.
const SIZE_MAX: u64 = 65536;
const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;
/// The name spaces Linux has handlers for; any other name is EOPNOTSUPP.
const PREFIXES: &[&[u8]] = &[b"security.", b"system.", b"trusted.", b"user."];

/// import_xattr_name: an empty or too long name is ERANGE.
fn name(cx: &Ctx<'_, '_>, ptr: u64) -> Result<Vec<u8>, Errno> {
    match cx.space().read_cstr(cx.mem, ptr, NAME_MAX) {
        Ok(n) if n.is_empty() => Err(Errno::ERANGE),
        Ok(n) => Ok(n),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

/// What the call is made on: whether it exists and whether its volume is writable.
fn writable_object(cx: &Ctx<'_, '_>, path: u64, follow: bool) -> Result<bool, Errno> {
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    match target(cx, AT_FDCWD, path, flags)? {
        Target::Path(_, at) => {
            let fs = cx.process.fs();
            let (_, region) = object(&fs, at.mount, &at.rel, follow)?;
            Ok(region.writable)
        }
        Target::Volume(h) => Ok(fd_region(&cx.process.fs(), &h).writable),
        Target::Fd(_) => Err(Errno::EOPNOTSUPP),
    }
}

/// The fd an f*xattr call is made on: an O_PATH fd is EBADF; a standard stream (a pipe or
/// terminal of the host) has no attributes either way: EOPNOTSUPP.
fn writable_fd(cx: &Ctx<'_, '_>, fd: u64) -> Result<bool, Errno> {
    let file = cx.process.fds().get(fd)?.file;
    match file.as_volume() {
        Some(h) if h.path_only => Err(Errno::EBADF),
        Some(h) => Ok(fd_region(&cx.process.fs(), h).writable),
        None => Err(Errno::EOPNOTSUPP),
    }
}

/// What reading attribute `name` answers: none exists.
fn absent(name: &[u8]) -> Sys {
    if PREFIXES.iter().any(|p| name.starts_with(p)) {
        Err(Errno::ENODATA.into())
    } else {
        Err(Errno::EOPNOTSUPP.into())
    }
}

/// getxattr(path, name, value, size) and lgetxattr.
fn get_path(cx: &mut Ctx<'_, '_>, a: &Args, follow: bool) -> Sys {
    let n = name(cx, a.ptr(1))?;
    writable_object(cx, a.ptr(0), follow)?;
    absent(&n)
}

pub(crate) fn getxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    get_path(cx, a, true)
}

pub(crate) fn lgetxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    get_path(cx, a, false)
}

pub(crate) fn fgetxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let n = name(cx, a.ptr(1))?;
    writable_fd(cx, a.fd(0))?;
    absent(&n)
}

/// listxattr(path, list, size) and llistxattr: an empty list (the size is not checked then:
/// nothing is copied).
pub(crate) fn listxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    writable_object(cx, a.ptr(0), true)?;
    Ok(0)
}

pub(crate) fn llistxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    writable_object(cx, a.ptr(0), false)?;
    Ok(0)
}

pub(crate) fn flistxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    writable_fd(cx, a.fd(0))?;
    Ok(0)
}

/// setxattr_copy: flags, name, size, value.
fn set_args(cx: &Ctx<'_, '_>, a: &Args) -> Result<Vec<u8>, Errno> {
    if a.int(4) as u64 & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(cx, a.ptr(1))?;
    let size = a.raw(3);
    if size > SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    if size > 0 {
        let mut value = vec![0u8; size as usize];
        cx.space().read(cx.mem, a.ptr(2), &mut value)?;
    }
    Ok(n)
}

/// The answer to a set once the object is found: EROFS on a read-only volume, else
/// EOPNOTSUPP (this file system keeps no attributes).
fn refuse_set(writable: bool) -> Sys {
    if !writable {
        return Err(Errno::EROFS.into());
    }
    Err(Errno::EOPNOTSUPP.into())
}

/// setxattr(path, name, value, size, flags) and lsetxattr.
fn set_path(cx: &mut Ctx<'_, '_>, a: &Args, follow: bool) -> Sys {
    set_args(cx, a)?;
    refuse_set(writable_object(cx, a.ptr(0), follow)?)
}

pub(crate) fn setxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_path(cx, a, true)
}

pub(crate) fn lsetxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_path(cx, a, false)
}

pub(crate) fn fsetxattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    set_args(cx, a)?;
    refuse_set(writable_fd(cx, a.fd(0))?)
}

/// removexattr(path, name) and lremovexattr: EROFS on a read-only volume, else there is
/// nothing to remove (as reading it).
fn remove_path(cx: &mut Ctx<'_, '_>, a: &Args, follow: bool) -> Sys {
    let n = name(cx, a.ptr(1))?;
    if !writable_object(cx, a.ptr(0), follow)? {
        return Err(Errno::EROFS.into());
    }
    absent(&n)
}

pub(crate) fn removexattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    remove_path(cx, a, true)
}

pub(crate) fn lremovexattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    remove_path(cx, a, false)
}

pub(crate) fn fremovexattr(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let n = name(cx, a.ptr(1))?;
    if !writable_fd(cx, a.fd(0))? {
        return Err(Errno::EROFS.into());
    }
    absent(&n)
}

/// Whether an unprivileged process may give a file the ids `ids` (chown_ok, chgrp_ok): the
/// owner only to itself (-1: unchanged), the group only to its own or a supplementary one.
/// The application has no CAP_CHOWN even when umon runs as root.
fn own_ids(ids: [u64; 2]) -> bool {
    let me = crate::machine::host::ids();
    let unchanged = |v: u64| v as u32 == u32::MAX;
    let owner_ok = unchanged(ids[0]) || u64::from(ids[0] as u32) == me.uid;
    let group_ok = unchanged(ids[1])
        || u64::from(ids[1] as u32) == me.gid
        || rustix::process::getgroups()
            .is_ok_and(|gs| gs.iter().any(|g| g.as_raw() == ids[1] as u32));
    owner_ok && group_ok
}

/// chown, lchown, fchownat: to the application's own ids as [`super::chown`] does it (a
/// no-op on the host for a file it already owns); other ids EPERM, after the lookup and the
/// read-only check as on Linux.
pub(crate) fn chown(cx: &mut Ctx<'_, '_>, dirfd: u64, path: u64, ids: [u64; 2], flags: u64) -> Sys {
    if own_ids(ids) {
        return super::chown(cx, dirfd, path, ids, flags);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let writable = match target(cx, dirfd, path, flags)? {
        Target::Path(_, at) => {
            let fs = cx.process.fs();
            object(&fs, at.mount, &at.rel, follow)?.1.writable
        }
        Target::Volume(h) => fd_region(&cx.process.fs(), &h).writable,
        Target::Fd(_) => true,
    };
    if !writable {
        return Err(Errno::EROFS.into());
    }
    Err(Errno::EPERM.into())
}

/// fchown(fd, owner, group): as [`chown`].
pub(crate) fn fchown(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let file = cx.process.fds().get(a.fd(0))?.file;
    // Linux's fdget refuses an O_PATH fd (EBADF) whatever the ids.
    if file.status_flags().is_ok_and(|f| f & oflag::PATH != 0) {
        return Err(Errno::EBADF.into());
    }
    let ids = [a.raw(1), a.raw(2)];
    if own_ids(ids) {
        return super::fchown(cx, a);
    }
    match file.as_volume() {
        Some(h) if !fd_region(&cx.process.fs(), h).writable => Err(Errno::EROFS.into()),
        _ => Err(Errno::EPERM.into()),
    }
}

/// The object an inotify watch is put on: a host O_PATH handle inside its volume.
pub(crate) struct WatchTarget(pub OwnedFd);

/// The object `path` names in the guest's view (its last component followed or not), for
/// inotify_add_watch.
pub(crate) fn watch_target(
    cx: &Ctx<'_, '_>,
    path: u64,
    follow: bool,
) -> Result<WatchTarget, Errno> {
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    match target(cx, AT_FDCWD, path, flags)? {
        Target::Path(_, at) => {
            let fs = cx.process.fs();
            Ok(WatchTarget(object(&fs, at.mount, &at.rel, follow)?.0))
        }
        // Without AT_EMPTY_PATH an empty path is ENOENT before this; nothing else is a path.
        _ => Err(Errno::ENOENT),
    }
}
