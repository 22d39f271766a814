//! Host directories granted to the guest (`-v HOST_DIR:GUEST_PATH[:ro|:rw]`) and the guest's
//! view of files built from them: the mount table, the working directory, guest path
//! normalization, and confined resolution on the host.
//!
//! Confinement is the kernel's job, not this module's: every host lookup is one `openat2`
//! relative to the volume's directory fd with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`
//! (`RESOLVE_IN_ROOT` instead for a volume mounted at the guest's `/`, where an absolute symlink
//! means the volume's own root), so `..`, absolute and relative symlinks pointing outside, /proc
//! magic links and renames racing the lookup cannot leave the volume. Operations on a final
//! component that must not follow it (mkdir, unlink, rename, link, symlink) run against the
//! parent directory opened that way. Guest paths are bytes throughout, never `String`: any name
//! the host file system allows works. Nothing here opens a host path by name except the volume
//! roots, once, at start.
//!
//! Read-only belongs to the host directory: each volume root is known by its (st_dev, st_ino),
//! and [`FileSystem::region`] walks up from the directory a change is made in to the first
//! volume root it meets. Directories the guest holds (its working directory, directory fds)
//! are host handles whose current guest path [`Mount::rel_of`] finds and verifies. A final
//! symlink that a change follows is followed here ([`Mount::entry`]), one link at a time and
//! confined the same way, so the change is made in the directory that was checked.
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

/// One granted directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it: absolute, normalized, no trailing slash (except "/").
    pub guest: String,
    /// Whether the guest may write (`:rw`); volumes are read-only by default.
    pub writable: bool,
}

/// Parse `HOST_DIR:GUEST_PATH[:ro|:rw]` (docker's syntax). The host directory must exist.
pub fn parse_spec(text: &str) -> Result<VolumeSpec, String> {
    let mut parts: Vec<&str> = text.split(':').collect();
    let writable = match parts.last() {
        Some(&"rw") if parts.len() == 3 => {
            parts.pop();
            true
        }
        Some(&"ro") if parts.len() == 3 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let [host, guest] = parts[..] else {
        return Err(format!("'{text}' is not HOST_DIR:GUEST_PATH[:ro|:rw]"));
    };
    if host.is_empty() {
        return Err(format!("'{text}': empty host directory"));
    }
    let guest = normalize_guest(guest)
        .ok_or_else(|| format!("'{text}': the guest path must be absolute and without '..'"))?;
    let host = PathBuf::from(host);
    match std::fs::metadata(&host) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("'{}' is not a directory", host.display())),
        Err(e) => return Err(format!("'{}': {e}", host.display())),
    }
    Ok(VolumeSpec {
        host,
        guest,
        writable,
    })
}

/// Parse `--root DIR[:ro|:rw]`: DIR as the guest's `/`, read-only unless `:rw`.
pub fn parse_root(text: &str) -> Result<VolumeSpec, String> {
    let (host, mode) = match text.rsplit_once(':') {
        Some((host, m @ ("ro" | "rw"))) => (host, m),
        _ => (text, "ro"),
    };
    parse_spec(&format!("{host}:/:{mode}"))
}

/// `/a//b/./c/` -> `/a/b/c`; None for relative paths or `..` components.
pub fn normalize_guest(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The volumes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The host directory cannot be opened.
    #[error("cannot open volume directory {}", host.display())]
    Open {
        /// The host directory.
        host: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A volume's guest path is not absolute or contains `..`.
    #[error("volume guest path {guest} must be absolute and without '..'")]
    GuestPath {
        /// The guest path given.
        guest: String,
    },
    /// Two volumes claim the same guest path.
    #[error("two volumes are mounted at guest path {guest}")]
    Duplicate {
        /// The guest path.
        guest: String,
    },
    /// The working directory is not a guest path inside a volume.
    #[error("working directory {path}: {reason}")]
    Workdir {
        /// The guest path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The working directory cannot be opened as a directory in its volume.
    #[error("working directory {path} cannot be opened")]
    WorkdirOpen {
        /// The guest path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Tries of a lookup that the kernel reports as raced by a rename (EAGAIN) before giving up.
const LOOKUP_TRIES: usize = 64;

/// Most symlinks followed in one lookup (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;
/// Most directories walked up from a directory to find the volume root holding it; a deeper
/// tree is treated as read-only (the walk cannot prove it writable).
const MAX_DEPTH: usize = 4096;
/// Tries to find a directory's current path before giving up (it keeps moving, or it was
/// removed).
const PATH_TRIES: usize = 4;

/// A host object's identity: (st_dev, st_ino).
pub type Ident = (u64, u64);

fn ident_of(fd: impl AsFd) -> Result<Ident, Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// A volume as the running guest sees it.
#[derive(Debug)]
pub struct Mount {
    /// Guest path, normalized ("/" or "/a/b").
    guest: Vec<u8>,
    /// The host directory, opened `O_PATH | O_DIRECTORY` at start.
    dir: OwnedFd,
    /// `dir`'s identity: how the volume's root is recognized whatever path reaches it.
    root: Ident,
    writable: bool,
    /// How lookups beneath `dir` are confined.
    resolve: ResolveFlags,
    /// A private `/tmp` or `/dev/shm` (a tmpfs to the guest): what it holds, against its size.
    tmpfs: Option<Arc<super::private::Usage>>,
}

/// Which volume's host directory holds a directory, found by walking up from it (see
/// [`FileSystem::region`]): writes there follow that volume's `:ro`/`:rw`, whatever path
/// reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The volume whose host directory holds it (the mount it was reached through when no
    /// other volume's root is on the way up).
    pub volume: MountId,
    /// Whether the guest may change it.
    pub writable: bool,
}

/// Index of a volume in the mount table.
pub type MountId = usize;

/// The directory holding a path's last component, opened beneath the volume root.
#[derive(Debug)]
pub enum Parent<'m> {
    /// The volume root itself.
    Root(BorrowedFd<'m>),
    /// A directory below it.
    Dir(OwnedFd),
}

impl AsFd for Parent<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Parent::Root(fd) => *fd,
            Parent::Dir(fd) => fd.as_fd(),
        }
    }
}

impl Mount {
    /// Whether the guest may write here (`:rw`).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The volume's root directory (`O_PATH`).
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// What the volume holds, when it is a private directory (a tmpfs the size of the
    /// application's memory to the guest).
    pub fn tmpfs(&self) -> Option<&Arc<super::private::Usage>> {
        self.tmpfs.as_ref()
    }

    /// The guest path of the object at `rel` (relative to the root) in this volume.
    pub fn guest_path(&self, rel: &[u8]) -> Vec<u8> {
        let rel = rel.strip_suffix(b"/").unwrap_or(rel);
        let mut p = self.guest.clone();
        if !rel.is_empty() {
            if p != b"/" {
                p.push(b'/');
            }
            p.extend_from_slice(rel);
        }
        p
    }

    /// `guest` (absolute, normalized) relative to this volume's root, if it is inside.
    pub fn rel_in(&self, guest: &[u8]) -> Option<Vec<u8>> {
        if self.guest == b"/" {
            return guest.strip_prefix(b"/").map(<[u8]>::to_vec);
        }
        let rest = guest.strip_prefix(&self.guest[..])?;
        if rest.is_empty() {
            return Some(Vec::new());
        }
        rest.strip_prefix(b"/").map(<[u8]>::to_vec)
    }

    /// Whether `rel`, looked up without following any symlink, is the object `fd` is open on.
    fn names(&self, rel: &[u8], want: Ident) -> bool {
        let path: &[u8] = if rel.is_empty() { b"." } else { rel };
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let how = self.resolve | ResolveFlags::NO_SYMLINKS;
        rustix::fs::openat2(&self.dir, path, flags, Mode::empty(), how)
            .and_then(ident_of)
            .is_ok_and(|id| id == want)
    }

    /// The current path, relative to the root and without symlinks, of the object open as
    /// `fd` in this volume: `hint` if it still names that object, else what the host says the
    /// object's path is now (`/proc/self/fd`), checked the same way. ENOENT when the object was
    /// removed or is no longer inside the volume.
    pub fn rel_of(&self, fd: BorrowedFd<'_>, hint: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let want = ident_of(fd)?;
        if let Some(h) = hint {
            let h = h.strip_suffix(b"/").unwrap_or(h);
            if self.names(h, want) {
                return Ok(h.to_vec());
            }
        }
        if want == self.root {
            return Ok(Vec::new());
        }
        let host_path = |fd: BorrowedFd<'_>| {
            rustix::fs::readlinkat(
                rustix::fs::CWD,
                format!("/proc/self/fd/{}", fd.as_raw_fd()),
                Vec::new(),
            )
            .map(std::ffi::CString::into_bytes)
        };
        for _ in 0..PATH_TRIES {
            let (me, root) = (host_path(fd)?, host_path(self.dir.as_fd())?);
            let rel = if root == b"/" {
                me.strip_prefix(b"/")
            } else {
                me.strip_prefix(&root[..])
                    .and_then(|r| r.strip_prefix(b"/"))
            };
            let Some(rel) = rel else {
                return Err(Errno::NOENT);
            };
            if self.names(rel, want) {
                return Ok(rel.to_vec());
            }
        }
        Err(Errno::NOENT)
    }

    /// `target` (a symlink's text) read in the directory `base` (relative to the root): the
    /// path it names relative to the root, lexically (`base` has no symlinks, so its `..` is
    /// the real parent). Leaving the volume is ENOENT, except in a volume at `/`, where `/` and
    /// `..` stop at the root as in a container.
    fn follow(&self, base: &[u8], target: &[u8]) -> Result<Vec<u8>, Errno> {
        let in_root = self.resolve.contains(ResolveFlags::IN_ROOT);
        let mut parts: Vec<&[u8]> = Vec::new();
        if target.starts_with(b"/") {
            if !in_root {
                return Err(Errno::NOENT);
            }
        } else {
            parts.extend(base.split(|&b| b == b'/').filter(|c| !c.is_empty()));
        }
        for c in target.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    if parts.pop().is_none() && !in_root {
                        return Err(Errno::NOENT);
                    }
                }
                other => parts.push(other),
            }
        }
        let mut rel = parts.join(&b'/');
        if target.ends_with(b"/") && !rel.is_empty() {
            rel.push(b'/');
        }
        Ok(rel)
    }

    /// The directory entry that `rel` names once a final symlink is followed (when `follow`,
    /// or when `rel` ends in `/`): its parent directory, opened beneath the root, and its name
    /// there, which is not a symlink (unless `follow` is false). Calls that change an object
    /// act on this pair, so the directory checked for read-only-ness is the one changed.
    /// EBUSY when it is the volume root itself.
    pub fn entry(&self, rel: &[u8], follow: bool) -> Result<(Parent<'_>, Vec<u8>), Errno> {
        let mut rel = rel.to_vec();
        for _ in 0..=MAX_SYMLINKS {
            let (parent, leaf) = self.parent(&rel)?;
            let name = leaf.strip_suffix(b"/").unwrap_or(leaf);
            if !follow && !leaf.ends_with(b"/") {
                let leaf = leaf.to_vec();
                return Ok((parent, leaf));
            }
            let target = match rustix::fs::readlinkat(&parent, name, Vec::new()) {
                // Not a symlink, or nothing there yet.
                Err(Errno::INVAL | Errno::NOENT) => {
                    let leaf = leaf.to_vec();
                    return Ok((parent, leaf));
                }
                Err(e) => return Err(e),
                Ok(t) => t.into_bytes(),
            };
            // A /proc magic link is ELOOP, as for any other lookup (its text is not a path).
            if let Err(Errno::LOOP) = self.open(&rel, OFlags::PATH, Mode::empty()) {
                return Err(Errno::LOOP);
            }
            let dir_rel = match &parent {
                Parent::Root(_) => Vec::new(),
                Parent::Dir(fd) => {
                    let hint = rel[..rel.len() - leaf.len()].strip_suffix(b"/");
                    self.rel_of(fd.as_fd(), hint)?
                }
            };
            let mut next = self.follow(&dir_rel, &target)?;
            if leaf.ends_with(b"/") && !next.ends_with(b"/") && !next.is_empty() {
                next.push(b'/');
            }
            rel = next;
        }
        Err(Errno::LOOP)
    }

    /// `openat2` of `rel` (relative to the volume root; "" is the root) confined beneath the
    /// root. A path that would leave the volume does not exist (ENOENT); a symlink loop or a
    /// /proc magic link is ELOOP. `O_CLOEXEC` is always added.
    pub fn open(&self, rel: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        let path: &[u8] = if rel.is_empty() { b"." } else { rel };
        let mut last = Errno::AGAIN;
        for _ in 0..LOOKUP_TRIES {
            match rustix::fs::openat2(&self.dir, path, flags | OFlags::CLOEXEC, mode, self.resolve)
            {
                // A rename or mount raced a `..` in the lookup: the kernel asks to retry.
                Err(Errno::AGAIN) => last = Errno::AGAIN,
                // The path leads outside the volume: from the guest's view it does not exist.
                Err(Errno::XDEV) => return Err(Errno::NOENT),
                other => return other,
            }
        }
        Err(last)
    }

    /// An `O_PATH` handle on `rel`, following a final symlink unless `nofollow`.
    pub fn handle(&self, rel: &[u8], nofollow: bool) -> Result<OwnedFd, Errno> {
        let mut flags = OFlags::PATH;
        if nofollow {
            flags |= OFlags::NOFOLLOW;
        }
        self.open(rel, flags, Mode::empty())
    }

    /// The directory that holds `rel`'s last component (opened beneath the root, following
    /// symlinks in between), and that component; a trailing slash stays on the component.
    /// EBUSY for the volume root itself, which has no parent inside the volume.
    pub fn parent<'r>(&self, rel: &'r [u8]) -> Result<(Parent<'_>, &'r [u8]), Errno> {
        let trimmed = rel.strip_suffix(b"/").unwrap_or(rel);
        if trimmed.is_empty() {
            return Err(Errno::BUSY);
        }
        match trimmed.iter().rposition(|&b| b == b'/') {
            None => Ok((Parent::Root(self.dir.as_fd()), rel)),
            Some(slash) => {
                let dir = self.open(
                    &rel[..slash],
                    OFlags::PATH | OFlags::DIRECTORY,
                    Mode::empty(),
                )?;
                Ok((Parent::Dir(dir), &rel[slash + 1..]))
            }
        }
    }
}

/// A guest path made absolute against a base directory and normalized lexically: `.` and empty
/// components dropped, `..` removes the previous component and stops at `/` (so `..` across a
/// mount point behaves like the guest expects, and never reaches the host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestPath {
    /// Absolute, without `.`, `..`, empty components or a trailing slash ("/" for the root).
    pub abs: Vec<u8>,
    /// The path names a directory explicitly: it ended in `/`, `/.` or `/..` (or was `.`).
    pub dir_only: bool,
    /// Its last component was `.` or `..`: calls that create, remove or rename an entry refuse
    /// it, as Linux does.
    pub dot_last: bool,
}

impl GuestPath {
    /// `path` as seen from the directory `base` (absolute and normalized; ignored when `path`
    /// is absolute). `path` is not empty.
    pub fn new(base: &[u8], path: &[u8]) -> GuestPath {
        let mut parts: Vec<&[u8]> = Vec::new();
        if !path.starts_with(b"/") {
            parts.extend(base.split(|&b| b == b'/').filter(|c| !c.is_empty()));
        }
        let mut last: &[u8] = b"";
        for c in path.split(|&b| b == b'/') {
            match c {
                b"" => {}
                b"." => {}
                b".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
            last = c;
        }
        let dot_last = last == b"." || last == b"..";
        let mut abs = Vec::with_capacity(path.len() + base.len() + 1);
        for p in &parts {
            abs.push(b'/');
            abs.extend_from_slice(p);
        }
        if abs.is_empty() {
            abs.push(b'/');
        }
        GuestPath {
            abs,
            dir_only: last.is_empty() || dot_last,
            dot_last,
        }
    }
}

/// Where a guest path lives: a volume and the path relative to its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The volume.
    pub mount: MountId,
    /// Relative to the volume root, "" for the root itself; ends in `/` when the guest path
    /// named a directory explicitly (so the host checks it is one).
    pub rel: Vec<u8>,
}

/// A host directory handle the guest holds (its working directory).
pub type DirHandle = Arc<dyn AsFd + Send + Sync>;

/// The working directory: a host directory handle in a volume, so renaming it (or any
/// directory above it) keeps it working as on Linux; or `/` outside every volume.
struct Cwd {
    /// The volume and the directory; None for `/` when no volume is mounted there.
    dir: Option<(MountId, DirHandle)>,
    /// Its guest path when last seen: a hint, checked against the handle before each use.
    path: Vec<u8>,
}

impl std::fmt::Debug for Cwd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cwd")
            .field("mount", &self.dir.as_ref().map(|d| d.0))
            .field("path", &String::from_utf8_lossy(&self.path))
            .finish()
    }
}

/// What the guest sees of files: the mount table, its working directory and its umask.
#[derive(Debug)]
pub struct FileSystem {
    /// Longest guest path first, so the first match is the longest matching prefix.
    /// Shared: the mounts never change after start, so a lookup may keep one while the file
    /// system's lock is released.
    mounts: Vec<Arc<Mount>>,
    cwd: Cwd,
    umask: u32,
    /// What `/proc` says of the program's start.
    pub view: super::synthetic::SysView,
    /// The private host directory behind `/tmp` and `/dev/shm`, removed when this is dropped.
    pub private: Option<super::private::PrivateDir>,
}

impl Default for FileSystem {
    /// No volumes: every lookup fails with ENOENT; cwd "/".
    fn default() -> Self {
        FileSystem {
            mounts: Vec::new(),
            cwd: Cwd {
                dir: None,
                path: b"/".to_vec(),
            },
            umask: 0o022,
            view: Default::default(),
            private: None,
        }
    }
}

impl FileSystem {
    /// Open every volume's host directory and check `workdir` (default "/"): it must be "/" or
    /// a directory inside a volume.
    pub fn new(specs: &[VolumeSpec], workdir: Option<&str>) -> Result<FileSystem, VolumeError> {
        let mut mounts: Vec<Mount> = Vec::with_capacity(specs.len());
        for spec in specs {
            let guest = normalize_guest(&spec.guest).ok_or_else(|| VolumeError::GuestPath {
                guest: spec.guest.clone(),
            })?;
            if mounts.iter().any(|m| m.guest == guest.as_bytes()) {
                return Err(VolumeError::Duplicate { guest });
            }
            let dir = rustix::fs::open(
                &spec.host,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| VolumeError::Open {
                host: spec.host.clone(),
                source: e.into(),
            })?;
            let root = ident_of(&dir).map_err(|e| VolumeError::Open {
                host: spec.host.clone(),
                source: e.into(),
            })?;
            let confine = if guest == "/" {
                ResolveFlags::IN_ROOT
            } else {
                ResolveFlags::BENEATH
            };
            mounts.push(Mount {
                guest: guest.into_bytes(),
                dir,
                root,
                writable: spec.writable,
                resolve: confine | ResolveFlags::NO_MAGICLINKS,
                tmpfs: super::private::usage_of(&spec.host),
            });
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.guest.len()));
        let mounts = mounts.into_iter().map(Arc::new).collect();
        let mut fs = FileSystem {
            mounts,
            ..Default::default()
        };
        let workdir = workdir.unwrap_or("/");
        let bad = |reason| VolumeError::Workdir {
            path: workdir.to_owned(),
            reason,
        };
        let cwd = normalize_guest(workdir).ok_or_else(|| bad("not an absolute guest path"))?;
        let at = fs.locate(&GuestPath::new(b"/", cwd.as_bytes()));
        if cwd != "/" && at.is_none() {
            return Err(bad("not inside a volume"));
        }
        if let Some(at) = at {
            let open_err = |e: Errno| VolumeError::WorkdirOpen {
                path: workdir.to_owned(),
                source: e.into(),
            };
            let m = fs.mount(at.mount);
            let dir = m
                .open(&at.rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
                .map_err(open_err)?;
            let rel = m.rel_of(dir.as_fd(), Some(&at.rel)).map_err(open_err)?;
            fs.cwd = Cwd {
                path: m.guest_path(&rel),
                dir: Some((at.mount, Arc::new(dir))),
            };
        }
        Ok(fs)
    }

    /// Whether some volume is read-only while another is writable: only then can a path
    /// through a writable volume reach a read-only volume's host directory.
    pub fn mixed(&self) -> bool {
        self.mounts.iter().any(|m| !m.writable) && self.mounts.iter().any(|m| m.writable)
    }

    /// The volume whose root is the host object `id` (a read-only one first when several
    /// share it).
    pub fn volume_root(&self, id: Ident) -> Option<MountId> {
        let mut found = None;
        for (i, m) in self.mounts.iter().enumerate() {
            if m.root == id && (found.is_none() || !m.writable) {
                found = Some(i);
            }
        }
        found
    }

    /// Which volume's host directory holds the directory `dir`, reached through volume `via`,
    /// and whether the guest may change things in it. Read-only belongs to the host directory,
    /// not to the path: walking up from `dir` with `..`, the first volume root met decides
    /// (`via`'s own root: `via`'s mode; another volume's: read-only if either is). A directory
    /// held open cannot be moved into or out of a read-only volume's directory by the guest
    /// (such renames are refused here), so the answer for a held fd stays true while the call
    /// that asked uses it.
    pub fn region(&self, via: MountId, dir: BorrowedFd<'_>) -> Region {
        let m = &self.mounts[via];
        let plain = Region {
            volume: via,
            writable: m.writable,
        };
        if !m.writable || !self.mixed() {
            return plain;
        }
        let ro = Region {
            volume: via,
            writable: false,
        };
        let Ok(mut id) = ident_of(dir) else {
            return ro;
        };
        let mut up: Option<OwnedFd> = None;
        for _ in 0..MAX_DEPTH {
            if id == m.root {
                return plain;
            }
            if let Some(v) = self.volume_root(id) {
                return Region {
                    volume: v,
                    writable: self.mounts[v].writable,
                };
            }
            let here = up.as_ref().map_or(dir, |fd| fd.as_fd());
            let Ok(parent) = rustix::fs::openat(
                here,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                return ro;
            };
            let Ok(pid) = ident_of(&parent) else {
                return ro;
            };
            if pid == id {
                // The host's `/`: no volume root above, so the volume it was reached by decides.
                return plain;
            }
            (id, up) = (pid, Some(parent));
        }
        ro
    }

    /// The region of the object named `leaf` in the directory `dir`: a volume root (a
    /// directory reached by another path) is its own volume's, anything else `dir`'s.
    pub fn object_region(&self, via: MountId, dir: BorrowedFd<'_>, leaf: &[u8]) -> Region {
        let m = &self.mounts[via];
        if m.writable && self.mixed() {
            let name = leaf.strip_suffix(b"/").unwrap_or(leaf);
            match rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    if let Some(v) = self.volume_root((st.st_dev, st.st_ino)) {
                        return Region {
                            volume: v,
                            writable: self.mounts[v].writable,
                        };
                    }
                }
                // No such entry: nothing to be a volume root; the directory decides.
                Err(rustix::io::Errno::NOENT) => {}
                // Unknown (the guest took search permission away from the directory, which
                // umon's user does not override): it might be a read-only volume's root, so
                // it is read-only (found by the fuzzer running as an unprivileged user).
                Err(_) => {
                    return Region {
                        volume: via,
                        writable: false,
                    }
                }
            }
        }
        self.region(via, dir)
    }

    /// Whether the entry `leaf` in `dir` is some volume's root: a mount point, which cannot be
    /// removed or renamed (EBUSY).
    pub fn is_volume_root(&self, dir: BorrowedFd<'_>, leaf: &[u8]) -> bool {
        if self.mounts.len() < 2 {
            return false;
        }
        let name = leaf.strip_suffix(b"/").unwrap_or(leaf);
        rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| self.volume_root((st.st_dev, st.st_ino)).is_some())
    }

    /// The current guest path of the directory (or file) open as `fd` in volume `via`, which
    /// was opened by the guest path `hint`.
    pub fn path_of(&self, via: MountId, fd: BorrowedFd<'_>, hint: &[u8]) -> Result<Vec<u8>, Errno> {
        let m = &self.mounts[via];
        let rel = m.rel_of(fd, m.rel_in(hint).as_deref())?;
        Ok(m.guest_path(&rel))
    }

    /// Volume `id`.
    pub fn mount(&self, id: MountId) -> &Mount {
        &self.mounts[id]
    }

    /// Volume `id`, if it is one (a memfd's `HostFile` names none).
    pub fn get_mount(&self, id: MountId) -> Option<&Mount> {
        self.mounts.get(id).map(|m| &**m)
    }

    /// Mount `id`, kept beyond the borrow of the file system.
    pub fn mount_shared(&self, id: MountId) -> Arc<Mount> {
        self.mounts[id].clone()
    }

    /// The guest path volume `id` is mounted at.
    pub fn mount_guest(&self, id: MountId) -> &[u8] {
        &self.mounts[id].guest
    }

    /// sync(2) of what the guest can write: each writable volume's host file system
    /// (syncfs), so the app's sync reaches its own files and no more of the host.
    pub fn sync_writable(&self) {
        for m in self.mounts.iter().filter(|m| m.writable) {
            // sync(2) cannot fail; neither does the guest's.
            let _ = rustix::fs::syncfs(m.root_fd());
        }
    }

    /// The guest paths of every volume.
    pub fn mount_points(&self) -> impl Iterator<Item = &[u8]> {
        self.mounts.iter().map(|m| &m.guest[..])
    }

    /// Whether each volume is writable, and whether it is a private tmpfs (`/tmp`,
    /// `/dev/shm`), in [`FileSystem::mount_points`]'s order.
    pub fn mount_kinds(&self) -> impl Iterator<Item = (bool, bool)> + '_ {
        self.mounts.iter().map(|m| (m.writable, m.tmpfs.is_some()))
    }

    /// The volume holding `path` (the longest matching guest prefix), or None: no volume
    /// covers it and it does not exist.
    pub fn locate(&self, path: &GuestPath) -> Option<Located> {
        let abs = &path.abs[..];
        self.mounts.iter().enumerate().find_map(|(i, m)| {
            let rest = abs.strip_prefix(&m.guest[..])?;
            let rel = if m.guest == b"/" {
                &abs[1..]
            } else if rest.is_empty() {
                rest
            } else {
                rest.strip_prefix(b"/")?
            };
            let mut rel = rel.to_vec();
            if path.dir_only && !rel.is_empty() {
                rel.push(b'/');
            }
            Some(Located { mount: i, rel })
        })
    }

    /// The working directory's current guest path, absolute and normalized: where its
    /// directory is now (ENOENT once it was removed).
    pub fn cwd(&self) -> Result<Vec<u8>, Errno> {
        match &self.cwd.dir {
            None => Ok(self.cwd.path.clone()),
            Some((via, dir)) => self.path_of(*via, dir.as_fd(), &self.cwd.path),
        }
    }

    /// [`FileSystem::cwd`], remembered as the hint for the next time.
    pub fn refresh_cwd(&mut self) -> Result<Vec<u8>, Errno> {
        let path = self.cwd()?;
        self.cwd.path.clone_from(&path);
        Ok(path)
    }

    /// Change the working directory to the directory `dir` in volume `via`, whose guest path
    /// is `path`; None: `/` outside every volume.
    pub fn set_cwd(&mut self, dir: Option<(MountId, DirHandle)>, path: Vec<u8>) {
        self.cwd = Cwd { dir, path };
    }

    /// The file mode creation mask.
    pub fn umask(&self) -> u32 {
        self.umask
    }

    /// Set the umask; returns the old one.
    pub fn set_umask(&mut self, mask: u32) -> u32 {
        std::mem::replace(&mut self.umask, mask & 0o777)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn specs() {
        let tmp = std::env::temp_dir();
        let t = tmp.display();
        let v = parse_spec(&format!("{t}:/data")).unwrap();
        assert_eq!((v.guest.as_str(), v.writable), ("/data", false));
        let v = parse_spec(&format!("{t}:/data//x/:rw")).unwrap();
        assert_eq!((v.guest.as_str(), v.writable), ("/data/x", true));
        assert!(parse_spec(&format!("{t}:/")).is_ok());
        assert!(parse_spec(&format!("{t}:data")).is_err());
        assert!(parse_spec(&format!("{t}:/a/../b")).is_err());
        assert!(parse_spec("/nonexistent-umon-dir:/x").is_err());
        assert!(parse_spec(&format!("{t}:/x:rx")).is_err());
        assert!(parse_spec(&format!("{t}")).is_err());
    }

    fn gp(base: &str, path: &str) -> (String, bool, bool) {
        let p = GuestPath::new(base.as_bytes(), path.as_bytes());
        (String::from_utf8(p.abs).unwrap(), p.dir_only, p.dot_last)
    }

    #[test]
    fn guest_paths_normalize_lexically_and_stop_at_the_root() {
        let s = |a: &str, d, l| (a.to_owned(), d, l);
        assert_eq!(gp("/", "a/b"), s("/a/b", false, false));
        assert_eq!(gp("/x/y", "a//./b/"), s("/x/y/a/b", true, false));
        assert_eq!(gp("/x/y", "../../../../etc"), s("/etc", false, false));
        assert_eq!(gp("/x/y", "/abs/./p"), s("/abs/p", false, false));
        assert_eq!(gp("/x/y", "."), s("/x/y", true, true));
        assert_eq!(gp("/x/y", "z/.."), s("/x/y", true, true));
        assert_eq!(gp("/", ".."), s("/", true, true));
        assert_eq!(gp("/", "/"), s("/", true, false));
        assert_eq!(gp("/", "a/..."), s("/a/...", false, false));
        let odd = GuestPath::new(b"/", b"/d/\xff\xfe");
        assert_eq!(odd.abs, b"/d/\xff\xfe");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("umon-volume-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn spec(host: &std::path::Path, guest: &str, writable: bool) -> VolumeSpec {
        VolumeSpec {
            host: host.to_owned(),
            guest: guest.into(),
            writable,
        }
    }

    #[test]
    fn longest_prefix_wins_and_prefixes_are_whole_components() {
        let root = scratch("locate");
        std::fs::create_dir_all(root.join("inner")).unwrap();
        let fs = FileSystem::new(
            &[
                spec(&root, "/data", true),
                spec(&root.join("inner"), "/data/in", false),
            ],
            Some("/data/in"),
        )
        .unwrap();
        let cwd = fs.cwd().unwrap();
        let at = |p: &str| fs.locate(&GuestPath::new(&cwd, p.as_bytes()));
        let inner = at("x").unwrap();
        assert!(!fs.mount(inner.mount).writable());
        assert_eq!(inner.rel, b"x");
        let outer = at("../y/").unwrap();
        assert!(fs.mount(outer.mount).writable());
        assert_eq!(outer.rel, b"y/");
        assert_eq!(at("/data").unwrap().rel, b"");
        assert_eq!(at("/database"), None);
        assert_eq!(at("/"), None);
        assert_eq!(at("/etc/passwd"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn setup_errors() {
        let root = scratch("setup");
        std::fs::write(root.join("file"), b"x").unwrap();
        let dup = FileSystem::new(&[spec(&root, "/a", false), spec(&root, "/a/", false)], None);
        assert!(matches!(dup, Err(VolumeError::Duplicate { .. })));
        for bad in ["/nowhere", "/a/file", "/a/missing", "rel"] {
            let r = FileSystem::new(&[spec(&root, "/a", false)], Some(bad));
            assert!(
                matches!(
                    r,
                    Err(VolumeError::Workdir { .. } | VolumeError::WorkdirOpen { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            FileSystem::new(&[], Some("/")).unwrap().cwd().unwrap(),
            b"/"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lookups_cannot_leave_the_volume() {
        let root = scratch("confine");
        let vol = root.join("vol");
        std::fs::create_dir_all(vol.join("sub")).unwrap();
        std::fs::write(root.join("secret"), b"secret").unwrap();
        std::fs::write(vol.join("inside"), b"inside").unwrap();
        symlink("/etc/passwd", vol.join("abs")).unwrap();
        symlink("../secret", vol.join("up")).unwrap();
        symlink("sub/../inside", vol.join("fine")).unwrap();
        symlink("loop", vol.join("loop")).unwrap();
        let fs = FileSystem::new(&[spec(&vol, "/v", true)], None).unwrap();
        let m = fs.mount(0);
        let open = |p: &[u8]| m.open(p, OFlags::RDONLY, Mode::empty()).map(|_| ());
        assert_eq!(open(b"inside"), Ok(()));
        assert_eq!(open(b"fine"), Ok(()));
        assert_eq!(open(b"abs"), Err(Errno::NOENT));
        assert_eq!(open(b"up"), Err(Errno::NOENT));
        assert_eq!(open(b"sub/../../secret"), Err(Errno::NOENT));
        assert_eq!(open(b"loop"), Err(Errno::LOOP));
        let (parent, name) = m.parent(b"sub/new/").unwrap();
        assert!(matches!(parent, Parent::Dir(_)));
        assert_eq!(name, b"new/");
        assert_eq!(m.parent(b"up").unwrap().1, b"up");
        assert!(matches!(m.parent(b""), Err(Errno::BUSY)));
        assert!(matches!(m.parent(b"up/x"), Err(Errno::NOENT)));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_root_volume_keeps_absolute_symlinks_inside() {
        let vol = scratch("inroot");
        std::fs::create_dir_all(vol.join("etc")).unwrap();
        std::fs::write(vol.join("etc/passwd"), b"mine").unwrap();
        symlink("/etc/passwd", vol.join("abs")).unwrap();
        symlink("../../../../etc/passwd", vol.join("climb")).unwrap();
        let fs = FileSystem::new(&[spec(&vol, "/", false)], None).unwrap();
        let read = |p: &[u8]| {
            let fd = fs.mount(0).open(p, OFlags::RDONLY, Mode::empty()).unwrap();
            std::fs::read_to_string(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap()
        };
        assert_eq!(read(b"abs"), "mine");
        assert_eq!(read(b"climb"), "mine");
        std::fs::remove_dir_all(&vol).unwrap();
    }

    #[test]
    fn read_only_belongs_to_the_host_directory() {
        let d = scratch("region");
        std::fs::create_dir_all(d.join("ref/dir")).unwrap();
        std::fs::create_dir_all(d.join("own/deep")).unwrap();
        symlink("ref", d.join("r2")).unwrap();
        symlink("own/..", d.join("up")).unwrap();
        let fs = FileSystem::new(
            &[
                spec(&d, "/data", true),
                spec(&d.join("ref"), "/data/ref", false),
            ],
            None,
        )
        .unwrap();
        let rw = fs.locate(&GuestPath::new(b"/", b"/data")).unwrap().mount;
        let m = fs.mount(rw);
        let region = |rel: &[u8]| {
            let (parent, leaf) = m.entry(rel, true).unwrap();
            fs.object_region(rw, parent.as_fd(), &leaf).writable
        };
        assert!(region(b"own/deep/x"));
        assert!(region(b"own/x"));
        assert!(!region(b"r2/x"), "through a symlink");
        assert!(!region(b"r2/dir/x"));
        assert!(!region(b"up/ref/x"), "through a symlink with ..");
        assert!(!region(b"r2"), "the read-only root itself, by another name");
        let (parent, leaf) = m.parent(b"up/ref").unwrap();
        assert!(fs.is_volume_root(parent.as_fd(), leaf));
        // A symlink that leaves the volume leads nowhere; a loop is ELOOP.
        symlink("../..", d.join("own/out")).unwrap();
        symlink("loop", d.join("loop")).unwrap();
        assert!(matches!(m.entry(b"own/out", true), Err(Errno::NOENT)));
        assert!(matches!(m.entry(b"loop", true), Err(Errno::LOOP)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_handle_knows_where_it_is_now() {
        let d = scratch("relof");
        std::fs::create_dir_all(d.join("a/sub")).unwrap();
        symlink("a", d.join("link")).unwrap();
        let fs = FileSystem::new(&[spec(&d, "/v", true)], Some("/v/link/sub")).unwrap();
        assert_eq!(
            fs.cwd().unwrap(),
            b"/v/a/sub",
            "the directory's path, not the symlink's"
        );
        let m = fs.mount(0);
        let h = m
            .open(b"a/sub", OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
            .unwrap();
        std::fs::rename(d.join("a"), d.join("b")).unwrap();
        std::fs::create_dir_all(d.join("a/sub")).unwrap();
        assert_eq!(m.rel_of(h.as_fd(), Some(b"a/sub")).unwrap(), b"b/sub");
        assert_eq!(fs.cwd().unwrap(), b"/v/b/sub");
        std::fs::remove_dir_all(d.join("b")).unwrap();
        assert_eq!(m.rel_of(h.as_fd(), Some(b"a/sub")), Err(Errno::NOENT));
        assert_eq!(fs.cwd(), Err(Errno::NOENT));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
