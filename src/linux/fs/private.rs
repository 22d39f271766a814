//! The private writable directories the guest sees as `/tmp` and `/dev/shm` when no volume
//! provides them: subdirectories of one host directory umon creates (mkdtemp in `$TMPDIR`,
//! mode 0700) and removes with everything in it when the VM's file system is dropped.
use super::volume::{normalize_guest, VolumeSpec};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The guest paths served privately, and the subdirectory of each.
const PRIVATE: [(&str, &str); 2] = [("/tmp", "tmp"), ("/dev/shm", "shm")];

/// A host directory removed (recursively) on drop.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
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
        let dir = PrivateDir { path };
        let mut volumes = Vec::new();
        for (guest, sub) in wanted {
            let host = dir.path.join(sub);
            std::fs::create_dir(&host)?;
            // As Linux's /tmp and /dev/shm: world-writable, sticky (the parent stays 0700).
            std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o1777))?;
            mount_points(&host, guest, specs)?;
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
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {e}", self.path.display());
        }
    }
}
