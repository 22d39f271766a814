//! The host directories the harness application gets as volumes, and the check that nothing
//! outside the writable one changes.
//!
//! One fixture per thread of the fuzzing process, under `$UMON_FUZZ_DIR` or the temporary directory:
//!
//! ```text
//! umon-fuzz-PID-N/
//!   outside/secret, outside/dir/   next to the volumes: must never change
//!   ro/   -> guest /ro (read-only): file, dir/inner, link-out -> ../outside/secret
//!   vol/  -> guest /data (writable, the working directory), recreated for every input:
//!            file, dir/inner, dir/up -> .., link-out -> ../outside/secret,
//!            abs-out -> (absolute path of outside/secret), ref-link -> ref, ref-up -> dir/..
//!   vol/ref/ -> guest /data/ref (read-only, inside the writable volume's host directory:
//!            reachable through ref-link, ref-up/ref or a renamed parent): file, dir/inner
//! ```
//!
//! The directory is removed when the process exits normally; a crashed fuzzer leaves it behind.
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use umon::linux::fs::volume::{FileSystem, VolumeSpec};

const SECRET: &[u8] = b"umon-fuzz: a host file outside every volume\n";

/// The host side of the volumes.
pub struct Fixture {
    root: PathBuf,
    /// What `outside/` and `ro/` hold, to compare with after every input.
    expected: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl Fixture {
    /// This thread's fixture, created on first use (one per thread, so the seed tests, which
    /// run in parallel, do not share a writable volume).
    pub fn get() -> &'static Fixture {
        thread_local! {
            static FIXTURE: &'static Fixture = Box::leak(Box::new(Fixture::create()));
        }
        FIXTURE.with(|f| *f)
    }

    fn create() -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("UMON_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("umon-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let outside = root.join("outside");
        std::fs::create_dir_all(outside.join("dir")).expect("create the fixture");
        std::fs::write(outside.join("secret"), SECRET).expect("create the fixture");
        let ro = root.join("ro");
        std::fs::create_dir_all(ro.join("dir")).expect("create the fixture");
        std::fs::write(ro.join("file"), b"read-only volume\n").expect("create the fixture");
        std::fs::write(ro.join("dir/inner"), b"inner\n").expect("create the fixture");
        symlink("../outside/secret", ro.join("link-out")).expect("create the fixture");
        let mut f = Fixture {
            root,
            expected: Vec::new(),
        };
        f.reset();
        f.expected = f.snapshot();
        register_cleanup(&f.root);
        f
    }

    /// The writable volume's host directory.
    pub fn vol(&self) -> PathBuf {
        self.root.join("vol")
    }

    /// Recreate the writable volume as it was.
    pub fn reset(&self) {
        let vol = self.vol();
        if vol.exists() {
            // The input may have taken permissions away; the fixture's owner gets them back.
            restore_permissions(&vol);
            std::fs::remove_dir_all(&vol).expect("clear the writable volume");
        }
        std::fs::create_dir_all(vol.join("dir")).expect("create the writable volume");
        std::fs::write(vol.join("file"), b"hello volume\n").expect("create the writable volume");
        std::fs::write(vol.join("dir/inner"), b"inner\n").expect("create the writable volume");
        symlink("..", vol.join("dir/up")).expect("create the writable volume");
        symlink("../outside/secret", vol.join("link-out")).expect("create the writable volume");
        symlink(self.root.join("outside/secret"), vol.join("abs-out"))
            .expect("create the writable volume");
        std::fs::create_dir_all(vol.join("ref/dir")).expect("create the writable volume");
        std::fs::write(vol.join("ref/file"), b"read-only inside\n")
            .expect("create the writable volume");
        std::fs::write(vol.join("ref/dir/inner"), b"inner\n").expect("create the writable volume");
        symlink("ref", vol.join("ref-link")).expect("create the writable volume");
        symlink("dir/..", vol.join("ref-up")).expect("create the writable volume");
    }

    /// The application's file system: `/data` (writable, the working directory), `/ro` and
    /// `/data/ref` (read-only).
    pub fn file_system(&self) -> FileSystem {
        let specs = [
            VolumeSpec {
                host: self.vol(),
                guest: "/data".into(),
                writable: true,
            },
            VolumeSpec {
                host: self.root.join("ro"),
                guest: "/ro".into(),
                writable: false,
            },
            VolumeSpec {
                host: self.vol().join("ref"),
                guest: "/data/ref".into(),
                writable: false,
            },
        ];
        FileSystem::new(&specs, Some("/data")).expect("mount the fixture")
    }

    /// Every file and directory under `outside/`, `ro/` and the read-only `vol/ref/` (which
    /// stays there: the guest cannot rename a volume root, nor the writable volume's root that
    /// holds it): path, contents, mode.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, u32)> {
        let mut out = Vec::new();
        for top in ["outside", "ro", "vol/ref"] {
            walk(&self.root.join(top), &mut out);
        }
        out.sort();
        out
    }

    /// Panic if anything outside the writable volume changed.
    pub fn check_outside(&self) {
        // The guest may take permissions away from its writable volume's root (its right); an
        // unprivileged fuzzer could then not look into the read-only `vol/ref` below it and
        // would report that as a change. Only the root's own mode is given back, never
        // anything inside `vol/ref`.
        let _ = std::fs::set_permissions(self.vol(), std::fs::Permissions::from_mode(0o700));
        let now = self.snapshot();
        if now != self.expected {
            let names = |v: &[(PathBuf, Vec<u8>, u32)]| {
                v.iter()
                    .map(|e| format!("{} {:o} {}B", e.0.display(), e.2, e.1.len()))
                    .collect::<Vec<_>>()
            };
            panic!(
                "the guest changed host files outside its writable volume:\nwas {:?}\nnow {:?}",
                names(&self.expected),
                names(&now)
            );
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>, u32)>) {
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    out.push((dir.to_path_buf(), Vec::new(), mode(dir)));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p);
        match meta {
            Ok(m) if m.is_dir() => walk(&p, out),
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).unwrap_or_default();
                out.push((p, target.into_os_string().into_encoded_bytes(), 0o777));
            }
            Ok(m) => {
                let data = std::fs::read(&p).unwrap_or_default();
                out.push((p, data, m.permissions().mode()));
            }
            Err(_) => out.push((p, Vec::new(), 0)),
        }
    }
}

fn restore_permissions(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                restore_permissions(&e.path());
            }
        }
    }
}

/// Every fixture of the process, removed at exit.
static ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn remove_fixture() {
    let roots = ROOTS.lock().map(|r| r.clone()).unwrap_or_default();
    for root in roots {
        let vol = root.join("vol");
        if vol.exists() {
            restore_permissions(&vol);
        }
        let _ = std::fs::remove_dir_all(root);
    }
}

/// Remove `root` when the process exits normally.
fn register_cleanup(root: &Path) {
    let Ok(mut roots) = ROOTS.lock() else {
        return;
    };
    if roots.is_empty() {
        // SAFETY: `remove_fixture` is a plain `extern "C" fn()` that touches only its own
        // static; registering it has no other precondition.
        unsafe {
            libc::atexit(remove_fixture);
        }
    }
    roots.push(root.to_path_buf());
}
