//! The private writable directories the guest sees as `/tmp` and `/dev/shm` when no volume
//! provides them: subdirectories of one host directory umon creates (mkdtemp in `$TMPDIR`,
//! mode 0700) and removes with everything in it when the VM's file system is dropped.
//!
//! Each is a tmpfs to the guest, and as on Linux a tmpfs has a size: the application's memory
//! (`-m`). [`Usage`] keeps the count that holds writes to it (ENOSPC past it, as a full tmpfs
//! answers), shared by every monitor of the application.
#![allow(unsafe_code)] // the shared page of the usage counts (an anonymous MAP_SHARED mapping)

use super::volume::{normalize_guest, VolumeSpec};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The guest paths served privately, and the subdirectory of each.
const PRIVATE: [(&str, &str); 2] = [("/tmp", "tmp"), ("/dev/shm", "shm")];

/// A host directory removed (recursively) on drop.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    /// The host directories served as tmpfs mounts, each registered with its [`Usage`] (see
    /// [`usage_of`]) until this is dropped.
    served: Vec<PathBuf>,
}

impl PrivateDir {
    /// Create the directory and return it with the volumes to add for the guest paths no
    /// volume in `specs` provides (none: no directory is created).
    pub fn create(specs: &[VolumeSpec]) -> std::io::Result<Option<(PrivateDir, Vec<VolumeSpec>)>> {
        let taken = |guest: &str| {
            specs.iter().any(|s| {
                let g = normalize_guest(&s.guest);
                // A writable root provides its own /tmp; /dev/shm lies in the synthetic /dev,
                // which mounts over any root.
                g.as_deref() == Some(guest)
                    || (g.as_deref() == Some("/") && s.writable && guest == "/tmp")
            })
        };
        let wanted: Vec<_> = PRIVATE.iter().filter(|(g, _)| !taken(g)).collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let base = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        // mkdtemp's way, without its unsafe C interface: a random name, created exclusively.
        let path = loop {
            let mut r = [0u8; 8];
            rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty())?;
            let path = base.join(format!("umon.{:016x}", u64::from_ne_bytes(r)));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let mut dir = PrivateDir {
            path,
            served: Vec::new(),
        };
        let mut volumes = Vec::new();
        for (guest, sub) in wanted {
            let host = dir.path.join(sub);
            std::fs::create_dir(&host)?;
            // As Linux's /tmp and /dev/shm: world-writable, sticky (the parent stays 0700).
            std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o1777))?;
            mount_points(&host, guest, specs)?;
            let usage = Arc::new(Usage::new()?);
            registry().push((host.clone(), usage));
            dir.served.push(host.clone());
            volumes.push(VolumeSpec {
                host,
                guest: (*guest).to_owned(),
                writable: true,
            });
        }
        Ok(Some((dir, volumes)))
    }

    /// The host directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Create, in the private directory `host` served at `guest`, the directory each volume of
/// `specs` below `guest` is mounted on, with its parents: Linux mounts only on an existing
/// directory, so the mount point and the directories leading to it are there in the file
/// system beneath (`stat`, `getdents` and path walks such as git's repository search see
/// them). Nothing but umon has written in the fresh directory, so no symlink can be met.
fn mount_points(host: &Path, guest: &str, specs: &[VolumeSpec]) -> std::io::Result<()> {
    for spec in specs {
        let Some(g) = normalize_guest(&spec.guest) else {
            continue;
        };
        let Some(rel) = g
            .strip_prefix(guest)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty())
        else {
            continue;
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(host.join(rel))?;
    }
    Ok(())
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        registry().retain(|(host, _)| !self.served.contains(host));
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {e}", self.path.display());
        }
    }
}

/// The private directories of every VM of this host process (an embedder may run several):
/// host path -> its usage, from [`PrivateDir::create`] until the directory is dropped.
type Registry = Vec<(PathBuf, Arc<Usage>)>;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: Mutex<Registry> = Mutex::new(Vec::new());
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The usage count of the private directory at `host`, when it is one: the volume made of it
/// is a tmpfs to the guest.
pub fn usage_of(host: &Path) -> Option<Arc<Usage>> {
    registry()
        .iter()
        .find(|(h, _)| h == host)
        .map(|(_, u)| u.clone())
}

/// The page size a tmpfs counts in.
const PAGE: u64 = 4096;

fn round_up(n: u64) -> u64 {
    n.saturating_add(PAGE - 1) & !(PAGE - 1)
}

fn round_down(n: u64) -> u64 {
    n & !(PAGE - 1)
}

/// What one private directory holds, as its tmpfs counts it (pages of file data), against the
/// size of that tmpfs.
///
/// The count is an upper bound kept in a page every monitor of the application shares (an
/// anonymous MAP_SHARED mapping made before any fork): the last walk of the directory plus
/// every write since, each as the whole pages it spans. A write that fits under the bound
/// costs no host call; one that does not walks the directory for what its files hold now
/// (overwrites, truncations and removals make the bound too high, never too low) and is cut
/// at the size, ENOSPC when no byte fits.
///
/// A walk cannot see writes admitted but not made yet (another process's, between its admission
/// and its host write): those are counted in flight from the admission to the end of the
/// syscall that made it ([`settle`]), and a walk adds them. A walk's new bound replaces the
/// old one only if no admission came meanwhile (else it walks again).
#[derive(Debug)]
pub struct Usage {
    /// The shared page: the bound, then the bytes in flight, in bytes.
    page: NonNull<[AtomicU64; 2]>,
}

// SAFETY: the page holds atomics only; the mapping stays until `drop`.
unsafe impl Send for Usage {}
// SAFETY: as Send: all access is through the atomics.
unsafe impl Sync for Usage {}

thread_local! {
    /// The admissions of the calling thread's current syscall: (usage, bytes in flight).
    static ADMITTED: std::cell::RefCell<Vec<(Arc<Usage>, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The end of a syscall: the writes it was admitted for are made (or failed), so their bytes
/// are no longer in flight (a later walk sees what they wrote).
pub fn settle() {
    let done = ADMITTED.with(|a| std::mem::take(&mut *a.borrow_mut()));
    for (usage, bytes) in done {
        let _ = usage
            .inflight()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            });
    }
}

/// Walks that may lose to concurrent admissions before one takes its result anyway.
const WALK_TRIES: usize = 8;

impl Usage {
    fn new() -> std::io::Result<Usage> {
        // SAFETY: a fresh anonymous mapping, placed by the kernel, zero-filled (counts of 0).
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                PAGE as usize,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )
        }?;
        let page = NonNull::new(p.cast::<[AtomicU64; 2]>()).ok_or(std::io::ErrorKind::Other)?;
        Ok(Usage { page })
    }

    fn bound(&self) -> &AtomicU64 {
        // SAFETY: page-aligned, mapped as long as `self`, and zero is a valid AtomicU64.
        unsafe { &self.page.as_ref()[0] }
    }

    fn inflight(&self) -> &AtomicU64 {
        // SAFETY: as `bound`.
        unsafe { &self.page.as_ref()[1] }
    }

    /// `bytes` more in flight until the calling thread's syscall ends.
    fn admitted(self: &Arc<Self>, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.inflight().fetch_add(bytes, Ordering::AcqRel);
        ADMITTED.with(|a| a.borrow_mut().push((self.clone(), bytes)));
    }

    /// Add `bytes` to the bound if it stays within `size`.
    fn reserve(&self, bytes: u64, size: u64) -> bool {
        self.bound()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_add(bytes).filter(|&n| n <= size)
            })
            .is_ok()
    }

    /// The bytes of a write of `len` at `pos` to `file` (in the directory `root`) that fit a
    /// tmpfs of `size` bytes: all of them, or those up to the last free page, ENOSPC when
    /// none fits. `whole`: all or nothing (fallocate), ENOSPC unless every byte fits.
    pub fn admit(
        self: &Arc<Self>,
        root: BorrowedFd<'_>,
        file: BorrowedFd<'_>,
        pos: u64,
        len: u64,
        size: u64,
        whole: bool,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let end = round_up(pos.saturating_add(len));
        let spans = end - round_down(pos);
        if self.reserve(spans, size) {
            self.admitted(spans);
            return Ok(len);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let before = self.bound().load(Ordering::Acquire);
            let flying = self.inflight().load(Ordering::Acquire);
            let held = held(root).map_or(u64::MAX, |h| h.bytes);
            let used = held.saturating_add(flying);
            // The pages the write adds: those past the file's last one, or every page it
            // spans when the file has holes (a write into one allocates).
            let st = rustix::fs::fstat(file)?;
            let file_end = round_up(st.st_size.max(0) as u64);
            let first_new = if (st.st_blocks.max(0) as u64).saturating_mul(512) >= file_end {
                file_end.max(round_down(pos))
            } else {
                round_down(pos)
            };
            let adds = end.saturating_sub(first_new);
            let free = round_down(size.saturating_sub(used));
            let fits = if adds <= free {
                len
            } else if whole {
                0
            } else {
                (first_new + free).saturating_sub(pos).min(len)
            };
            let taken = adds.min(free);
            let bound = used.saturating_add(taken);
            // An admission since `before` is not in the walk: walk again (or, tried enough,
            // add to the bound as it is now, which only over-counts).
            let stored =
                self.bound()
                    .compare_exchange(before, bound, Ordering::AcqRel, Ordering::Acquire);
            if stored.is_err() {
                if tries < WALK_TRIES {
                    continue;
                }
                self.bound().fetch_add(taken, Ordering::AcqRel);
            }
            if fits == 0 {
                return Err(Errno::NOSPC);
            }
            self.admitted(taken);
            return Ok(fits);
        }
    }
}

impl Drop for Usage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; nothing refers to it after.
        let _ = unsafe { rustix::mm::munmap(self.page.as_ptr().cast(), PAGE as usize) };
    }
}

/// The bytes a regular file holds in a tmpfs: its pages of data. The host's blocks say which
/// are written (a hole holds none); what the host's file system adds for its own bookkeeping
/// (an extent block past four extents) is not counted, while blocks allocated beyond the end
/// (fallocate with KEEP_SIZE) are.
fn file_bytes(st: &rustix::fs::Stat) -> u64 {
    let blocks = (st.st_blocks.max(0) as u64).saturating_mul(512);
    let data = round_up(st.st_size.max(0) as u64);
    let bookkeeping = if data > 4 * PAGE {
        PAGE + data / 256
    } else {
        0
    };
    if blocks > data.saturating_add(bookkeeping) {
        blocks
    } else {
        blocks.min(data)
    }
}

/// Most directory levels [`held`] walks down; a deeper tree counts as full.
const MAX_DEPTH: usize = 256;

/// What a private directory holds, as a tmpfs counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Bytes of file data, in whole pages (`file_bytes`).
    pub bytes: u64,
    /// Inodes, the directory itself included.
    pub inodes: u64,
}

/// What the files beneath the host directory `root` hold (each inode once), walked without
/// following symlinks; an error (a tree too deep, out of fds) is returned, for the caller to
/// count as full.
pub fn held(root: BorrowedFd<'_>) -> Result<Held, Errno> {
    let open_dir = |at: BorrowedFd<'_>, name: &std::ffi::CStr| -> Result<OwnedFd, Errno> {
        rustix::fs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut seen = HashSet::new();
    let mut total = Held {
        bytes: 0,
        inodes: 1,
    };
    let mut stack = vec![rustix::fs::Dir::new(open_dir(root, c".")?)?];
    loop {
        let depth = stack.len();
        let Some(dir) = stack.last_mut() else {
            break;
        };
        let Some(entry) = dir.read() else {
            stack.pop();
            continue;
        };
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let fd = dir.fd()?;
        total.inodes += 1;
        match entry.file_type() {
            rustix::fs::FileType::Directory => {
                if depth >= MAX_DEPTH {
                    return Err(Errno::LOOP);
                }
                match open_dir(fd, name) {
                    Ok(sub) => stack.push(rustix::fs::Dir::new(sub)?),
                    // Removed (or replaced) meanwhile.
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                    Err(e) => return Err(e),
                }
            }
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Unknown => {
                let st = match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e),
                };
                if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() {
                    continue;
                }
                if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
                    total.inodes -= 1;
                    continue;
                }
                total.bytes = total.bytes.saturating_add(file_bytes(&st));
            }
            _ => {}
        }
    }
    Ok(total)
}
