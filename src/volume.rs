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
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

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

/// A volume as the running guest sees it.
#[derive(Debug)]
pub struct Mount {
    /// Guest path, normalized ("/" or "/a/b").
    guest: Vec<u8>,
    /// The host directory, opened `O_PATH | O_DIRECTORY` at start.
    dir: OwnedFd,
    writable: bool,
    /// How lookups beneath `dir` are confined.
    resolve: ResolveFlags,
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

/// What the guest sees of files: the mount table, its working directory and its umask.
#[derive(Debug)]
pub struct FileSystem {
    /// Longest guest path first, so the first match is the longest matching prefix.
    mounts: Vec<Mount>,
    /// Absolute, normalized guest path.
    cwd: Vec<u8>,
    umask: u32,
}

impl Default for FileSystem {
    /// No volumes: every lookup fails with ENOENT; cwd "/".
    fn default() -> Self {
        FileSystem {
            mounts: Vec::new(),
            cwd: b"/".to_vec(),
            umask: 0o022,
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
            let confine = if guest == "/" {
                ResolveFlags::IN_ROOT
            } else {
                ResolveFlags::BENEATH
            };
            mounts.push(Mount {
                guest: guest.into_bytes(),
                dir,
                writable: spec.writable,
                resolve: confine | ResolveFlags::NO_MAGICLINKS,
            });
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.guest.len()));
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
        if cwd != "/" {
            let at = fs
                .locate(&GuestPath::new(b"/", cwd.as_bytes()))
                .ok_or_else(|| bad("not inside a volume"))?;
            fs.mount(at.mount)
                .open(&at.rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
                .map_err(|e| VolumeError::WorkdirOpen {
                    path: workdir.to_owned(),
                    source: e.into(),
                })?;
        }
        fs.cwd = cwd.into_bytes();
        Ok(fs)
    }

    /// Volume `id`.
    pub fn mount(&self, id: MountId) -> &Mount {
        &self.mounts[id]
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

    /// The working directory, absolute and normalized.
    pub fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// Change the working directory to `path` (absolute and normalized, checked by the caller).
    pub fn set_cwd(&mut self, path: Vec<u8>) {
        self.cwd = path;
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
        let at = |p: &str| fs.locate(&GuestPath::new(fs.cwd(), p.as_bytes()));
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
        assert_eq!(FileSystem::new(&[], Some("/")).unwrap().cwd(), b"/");
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
}
