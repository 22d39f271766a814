//! Volumes (`-v HOST:GUEST[:ro|:rw]`, `--workdir`): real programs (tests/apps/files.c for both
//! C link modes, tests/apps/files.rs) create, write, read back, rename, list and delete files in
//! a read-write volume, and must do exactly what they do natively on a host directory; the host
//! sees the result. A read-only volume refuses every change; escape attempts (`..`, absolute and
//! relative symlinks, a symlink swapped during the open, /proc magic links, over-long paths)
//! fail and leave the host untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, rust_app, s, umon_run, Link};
use common::{stderr, stdout};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A fresh, empty directory for one test under CARGO_TARGET_TMPDIR.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("volumes", name)
}

/// Everything about a directory tree that a guest could change: for each entry (relative path
/// as bytes, symlinks not followed) its type, permissions, mtime, link count and contents or
/// link target.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let what = if meta.file_type().is_symlink() {
                format!("link -> {:?}", std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                walk(root, &path, out);
                "dir".to_owned()
            } else {
                format!("file {:?}", std::fs::read(&path).unwrap())
            };
            let facts = format!(
                "{what} mode {:o} mtime {}.{} nlink {}",
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.mtime_nsec(),
                meta.nlink()
            );
            out.insert(rel, facts);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The shape of a tree without times: names, types, sizes, link targets, modes.
fn shape(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_iter()
        .map(|(k, v)| {
            let v = v.split(" mtime").next().unwrap_or_default().to_owned();
            format!("{}: {v}", String::from_utf8_lossy(&k))
        })
        .collect()
}

/// Exit 0 and nothing on stderr.
fn assert_clean(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: exit status; stderr: {}",
        stderr(o)
    );
    assert_eq!(stderr(o), "", "{what}: stderr");
}

/// `got == want`, showing the first differing line.
fn assert_lines(got: &str, want: &str, what: &str) {
    if got != want {
        let i = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "{what}: line {} differs: got {:?}, want {:?}\n--- got:\n{got}--- want:\n{want}",
            i + 1,
            got.lines().nth(i),
            want.lines().nth(i)
        );
    }
}

fn vol(host: &Path, guest: &str, mode: &str) -> String {
    format!("{}:{guest}{mode}", s(host))
}

// ---- read-write volumes: real programs, compared with Linux ---------------------------------

#[test]
fn c_program_reads_and_writes_files_exactly_as_natively() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("files", link);
        let root = scratch(&format!("c-rw-{link:?}"));
        let (host_dir, guest_dir) = (root.join("native"), root.join("guest"));
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::create_dir_all(&guest_dir).unwrap();

        let want = native(&app, &["rw", s(&host_dir)], &[], b"");
        assert_clean(&want, &format!("{link:?} natively"));
        let got = umon_run(
            &["-v", &vol(&guest_dir, "/data", ":rw")],
            &app,
            &["rw", "/data", "umon"],
            b"",
        );
        assert_clean(&got, &format!("{link:?} in umon"));
        assert_lines(&stdout(&got), &stdout(&want), &format!("{link:?}"));
        // A few lines spelled out, so a test program that printed nothing useful cannot pass.
        for line in [
            "pread 6@6: 6 'world'",
            "offset shared with the dup: 10",
            "a.txt: HELLO world|appended",
            "list sub: ../d ./d hard/f link/l renamed.txt/f",
            "mtime: 1100000000.500000000 atime: 1000000000",
            "list DIR: ../d ./d \\xff\\xfe-odd.bin/f keep.txt/f sub/d",
        ] {
            assert!(
                stdout(&got).lines().any(|l| l == line),
                "{link:?}: missing {line:?}"
            );
        }

        // The host sees what the guest did, exactly as what the program did natively.
        assert_eq!(shape(&guest_dir), shape(&host_dir), "{link:?}: host view");
        assert_eq!(
            std::fs::read(guest_dir.join("sub/renamed.txt")).unwrap(),
            b"HELLO world\nappended\n"
        );
        assert_eq!(
            std::fs::read_link(guest_dir.join("sub/link")).unwrap(),
            Path::new("renamed.txt")
        );
        let odd = guest_dir.join(OsStr::from_bytes(b"\xff\xfe-odd.bin"));
        assert_eq!(std::fs::read(odd).unwrap(), b"bytes\n");
        let m = std::fs::metadata(guest_dir.join("sub/renamed.txt")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o600, 1_100_000_000));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn rust_program_uses_std_fs_exactly_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let app = rust_app("files");
    let root = scratch("rust-rw");
    let (host_dir, guest_dir) = (root.join("native"), root.join("guest"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::create_dir_all(&guest_dir).unwrap();
    let want = native(&app, &[s(&host_dir)], &[], b"");
    assert_clean(&want, "natively");
    let got = umon_run(
        &["-v", &vol(&guest_dir, "/work", ":rw")],
        &app,
        &["/work"],
        b"",
    );
    assert_clean(&got, "in umon");
    assert_lines(&stdout(&got), &stdout(&want), "files.rs");
    for line in [
        "copied 25 bytes",
        "moved.txt after set_len on its hard link: \"rus\"",
        "canonicalize link is a/moved.txt: true",
        "remove_dir a (not empty): DirectoryNotEmpty",
        "list DIR: \\xffrust-\\xfe/f a/d rust-keep.txt/f",
    ] {
        assert!(stdout(&got).lines().any(|l| l == line), "missing {line:?}");
    }
    assert_eq!(shape(&guest_dir), shape(&host_dir), "host view");
    assert_eq!(
        std::fs::read(guest_dir.join("rust-keep.txt")).unwrap(),
        b"from rust\n"
    );
    assert!(!guest_dir.join("a/b").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

// ---- read-only volumes --------------------------------------------------------------------

const RO_TEXT: &str = "\
read file.txt: read only
read through link: read only
list: ../d ./d dir/d file.txt/f link/l
open O_WRONLY: EROFS
open O_RDWR: EROFS
open O_CREAT new: EROFS
open O_CREAT|O_RDONLY new: EROFS
open O_TRUNC: EROFS
open O_APPEND: EROFS
open O_CREAT|O_EXCL existing: EEXIST
open O_WRONLY missing: ENOENT
open O_CREAT|O_RDONLY existing: ok
openat O_CREAT: EROFS
creat: EROFS
mkdir new: EROFS
mkdir existing: EEXIST
mkdirat: EROFS
rmdir: EROFS
unlink: EROFS
unlinkat: EROFS
unlink missing: EROFS
rename: EROFS
renameat2 RENAME_EXCHANGE: EROFS
symlink: EROFS
link: EROFS
chmod: EROFS
fchmodat: EROFS
utimensat: EROFS
truncate: EROFS
access W_OK: EROFS
access R_OK: ok
write to the O_RDONLY fd: EBADF
pwrite: EBADF
fchmod: EROFS
futimens: EROFS
ftruncate: EINVAL
mmap MAP_SHARED|PROT_WRITE: EACCES
private writable mapping: Read only
pread: 9 'read only'
fstat: file size 10
fstatfs read-only: 1
";

fn read_only_tree(root: &Path) {
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(root.join("file.txt"), "read only\n").unwrap();
    symlink("file.txt", root.join("link")).unwrap();
}

#[test]
fn read_only_volume_refuses_every_change_and_reads_work() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("ro");
    read_only_tree(&root);
    let before = snapshot(&root);
    // Read-only is the default; ":ro" says it explicitly.
    for (i, mode) in ["", ":ro"].iter().enumerate() {
        let link = Link::RUNNABLE[i];
        let out = umon_run(
            &["-v", &vol(&root, "/ro", mode)],
            c_app("files", link),
            &["ro", "/ro"],
            b"",
        );
        assert_clean(&out, &format!("{link:?} -v ...{mode}"));
        assert_lines(&stdout(&out), RO_TEXT, &format!("{link:?} -v ...{mode}"));
        assert_eq!(snapshot(&root), before, "the host directory changed");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn workdir_is_the_initial_cwd_for_relative_paths() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("workdir");
    read_only_tree(&root);
    let out = umon_run(
        &["-v", &vol(&root, "/ro", ""), "--workdir", "/ro/dir"],
        c_app("files", Link::StaticPie),
        &["ro", ".."],
        b"",
    );
    assert_clean(&out, "--workdir /ro/dir");
    assert_lines(&stdout(&out), RO_TEXT, "relative to --workdir");
    std::fs::remove_dir_all(&root).unwrap();
}

// ---- nesting, a volume at / ---------------------------------------------------------------

#[test]
fn nested_volumes_the_longest_guest_prefix_wins() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("nested");
    let (rw, ro) = (root.join("rw"), root.join("ro"));
    std::fs::create_dir_all(rw.join("ro")).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("file.txt"), "ro file\n").unwrap();
    let out = umon_run(
        &[
            "-v",
            &vol(&ro, "/data/ro", ""),
            "-v",
            &vol(&rw, "/data", ":rw"),
        ],
        c_app("files", Link::StaticPie),
        &["nested", "/data"],
        b"",
    );
    assert_clean(&out, "nested");
    assert_lines(
        &stdout(&out),
        "\
create DIR/x: ok
create DIR/ro/x: EROFS
read DIR/ro/file.txt: ro file
read DIR/ro/../x: 
rename DIR/x DIR/ro/x: EXDEV
rename DIR/ro/file.txt DIR/y: EXDEV
link DIR/ro/file.txt DIR/y: EXDEV
rmdir DIR/ro: EBUSY
rename DIR/ro DIR/y: EBUSY
mkdir DIR/ro: EEXIST
chdir DIR/ro: ok
read file.txt relative: ro file
read ../x relative: 
list .: ../d ./d file.txt/f
",
        "nested",
    );
    assert!(rw.join("x").exists() && !ro.join("x").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_volume_at_the_root_keeps_absolute_symlinks_and_dotdot_inside() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("root");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("file.txt"), "rootfile\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "not the host's\n").unwrap();
    symlink("/file.txt", root.join("abs")).unwrap();
    symlink("../../../../file.txt", root.join("climb")).unwrap();
    let out = umon_run(
        &["-v", &vol(&root, "/", "")],
        c_app("files", Link::Static),
        &["root", ""],
        b"",
    );
    assert_clean(&out, "root volume");
    assert_lines(
        &stdout(&out),
        "\
getcwd: /
read /file.txt: rootfile
read /abs -> /file.txt: rootfile
read /climb -> ../../../../file.txt: rootfile
read /../../file.txt: rootfile
read /etc/passwd (the volume's own): not the host's
chdir /dir: ok
read ../file.txt: rootfile
list /: ../d ./d abs/l climb/l dir/d etc/d file.txt/f
",
        "root volume",
    );
    std::fs::remove_dir_all(&root).unwrap();
}

// ---- escapes ------------------------------------------------------------------------------

const ESCAPE_TEXT: &str = "\
open DIR/../outside/secret.txt: ENOENT
open DIR/../../../../../../etc/shadow: ENOENT
open /etc/shadow: ENOENT
open /proc/self/root/etc/passwd: ENOENT
open abs -> /etc/passwd: ENOENT
open abs-secret -> absolute host path: ENOENT
open rel -> ../outside/secret.txt: ENOENT
open updir/outside/secret.txt: ENOENT
open sub/deeper -> ../../outside: ENOENT
open proc -> /proc/self/root: ENOENT
open loop: ELOOP
stat abs: ENOENT
lstat abs (the link itself): ok
stat rel: ENOENT
access rel: ENOENT
chmod rel: ENOENT
utimensat rel: ENOENT
truncate rel: ENOENT
chdir updir: ENOENT
opendir updir: ENOENT
create through absdir: ENOENT
create through reldir: ENOENT
create through a dangling escaping link: ENOENT
mkdir through reldir: ENOENT
symlink through reldir: ENOENT
rename into reldir: ENOENT
rename out of reldir: ENOENT
link into reldir: ENOENT
link out of reldir: ENOENT
link -L of rel: ENOENT
unlink through reldir: ENOENT
rmdir through updir: ENOENT
openat(sub, ../../outside/secret.txt): ENOENT
openat(sub, /etc/shadow): ENOENT
read hard (a hard link made on the host): HARDLINK
read through a NUL: keep
open a 4095-byte path: ENOENT
open a 4096-byte path: ENAMETOOLONG
mkdir a 4096-byte path: ENAMETOOLONG
open a 300-byte name: ENAMETOOLONG
open a bad pointer: EFAULT
stat into a bad buffer: EFAULT
getdents64 into a bad buffer: EFAULT
create a non-UTF-8 name: ok
";

#[test]
fn escapes_fail_and_leave_the_host_untouched() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("escape");
    let (v, outside) = (root.join("vol"), root.join("outside"));
    std::fs::create_dir_all(v.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "SECRET\n").unwrap();
    std::fs::write(outside.join("hard-target.txt"), "HARDLINK\n").unwrap();
    std::fs::write(v.join("keep.txt"), "keep\n").unwrap();
    symlink("/etc/passwd", v.join("abs")).unwrap();
    symlink(outside.join("secret.txt"), v.join("abs-secret")).unwrap();
    symlink("../outside/secret.txt", v.join("rel")).unwrap();
    symlink("..", v.join("updir")).unwrap();
    symlink("../../outside", v.join("sub/deeper")).unwrap();
    symlink("/proc/self/root", v.join("proc")).unwrap();
    symlink("loop", v.join("loop")).unwrap();
    symlink(&outside, v.join("absdir")).unwrap();
    symlink("../outside", v.join("reldir")).unwrap();
    symlink("../outside/new-file.txt", v.join("dangling")).unwrap();
    // Documented: a hard link the host made into a volume is the host's grant.
    std::fs::hard_link(outside.join("hard-target.txt"), v.join("hard")).unwrap();
    let outside_before = snapshot(&outside);
    let vol_before = snapshot(&v);

    for link in Link::RUNNABLE {
        let out = umon_run(
            &["-v", &vol(&v, "/vol", ":rw")],
            c_app("files", link),
            &["escape", "/vol"],
            b"",
        );
        assert_clean(&out, &format!("{link:?}"));
        assert_lines(&stdout(&out), ESCAPE_TEXT, &format!("{link:?}"));
        assert_eq!(
            snapshot(&outside),
            outside_before,
            "{link:?}: outside changed"
        );
        let invalid = v.join(OsStr::from_bytes(b"\xc3\x28-invalid"));
        assert!(invalid.exists(), "{link:?}: the non-UTF-8 name on the host");
        std::fs::remove_file(&invalid).unwrap();
        assert_eq!(snapshot(&v), vol_before, "{link:?}: the volume changed");
    }
    assert!(!root.join("outside/created.txt").exists());
    assert!(!root.join("outside/new-file.txt").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn proc_magic_links_do_not_resolve_even_in_a_granted_proc() {
    if !common::require_kvm() {
        return;
    }
    let out = umon_run(
        &["-v", "/proc/self:/p"],
        c_app("files", Link::StaticPie),
        &["magic", "/p"],
        b"",
    );
    assert_clean(&out, "magic");
    assert_lines(
        &stdout(&out),
        "\
open root/etc/passwd: ELOOP
open cwd: ELOOP
open exe: ELOOP
open fd/1: ELOOP
stat root: ELOOP
lstat root (the link itself): ok
open stat (a plain /proc file): ok
it reads: 1
",
        "magic",
    );
}

#[test]
fn a_symlink_swapped_during_the_open_never_leaks() {
    if !common::require_kvm() {
        return;
    }
    const OPENS: &str = "1500";
    let root = scratch("race");
    let (v, outside) = (root.join("vol"), root.join("outside"));
    std::fs::create_dir_all(&v).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "SECRET\n").unwrap();
    std::fs::write(v.join("inside.txt"), "inside\n").unwrap();
    symlink("inside.txt", v.join("swap")).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (v, done, secret) = (v.clone(), done.clone(), outside.join("secret.txt"));
        std::thread::spawn(move || {
            // Atomically replace `swap` (rename over it) with an inside target, a relative
            // target climbing out, and an absolute one, until the guest is done.
            let targets = [
                PathBuf::from("inside.txt"),
                PathBuf::from("../outside/secret.txt"),
                secret,
            ];
            let mut swaps = 0u64;
            while !done.load(Ordering::Relaxed) {
                let tmp = v.join("swap.tmp");
                let _ = std::fs::remove_file(&tmp);
                symlink(&targets[(swaps % 3) as usize], &tmp).unwrap();
                std::fs::rename(&tmp, v.join("swap")).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let out = umon_run(
        &["-v", &vol(&v, "/vol", "")],
        c_app("files", Link::StaticPie),
        &["race", "/vol", OPENS],
        b"",
    );
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("race: {OPENS} opens, 0 leaked, 0 neither inside nor ENOENT\n")
    );
    assert!(swaps > 0, "the host thread swapped the link");
    eprintln!("{swaps} swaps; {}", stderr(&out).trim_end());
    std::fs::remove_dir_all(&root).unwrap();
}

// ---- limits, set-up errors, clean-up --------------------------------------------------------

#[test]
fn open_files_are_limited_by_rlimit_nofile() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("fdlimit");
    let out = umon_run(
        &["-v", &vol(&root, "/d", ":rw")],
        c_app("files", Link::Static),
        &["fdlimit", "/d"],
        b"",
    );
    assert_clean(&out, "fdlimit");
    assert_lines(
        &stdout(&out),
        "\
setrlimit RLIMIT_NOFILE 16: ok
opened 13, then: EMFILE
dup at the limit: EMFILE
open after closing: ok
",
        "fdlimit",
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_volume_set_ups_are_one_line_and_exit_125() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("setup");
    std::fs::write(root.join("file"), "x").unwrap();
    let app = c_app("files", Link::StaticPie);
    let v = vol(&root, "/d", "");
    let cases: [(&[&str], &str); 4] = [
        (
            &["-v", &v, "--workdir", "/elsewhere"],
            "umon: invalid configuration: working directory /elsewhere: not inside a volume\n",
        ),
        (
            &["--workdir", "/d"],
            "umon: invalid configuration: working directory /d: not inside a volume\n",
        ),
        (
            &["-v", &v, "--workdir", "/d/file"],
            "umon: invalid configuration: working directory /d/file cannot be opened: Not a directory (os error 20)\n",
        ),
        (
            &["-v", &v, "-v", &vol(&root, "/d/", ":rw")],
            "umon: invalid configuration: two volumes are mounted at guest path /d\n",
        ),
    ];
    for (opts, want) in cases {
        let out = umon_run(opts, &app, &["ro", "/d"], b"");
        assert_eq!(out.status.code(), Some(125), "{opts:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), want, "{opts:?}");
        assert_eq!(stdout(&out), "", "{opts:?}: the app must not run");
    }
    // The host directory must exist: a usage error from the option parser.
    let out = umon_run(&["-v", "/nonexistent-umon:/d"], &app, &["ro", "/d"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    std::fs::remove_dir_all(&root).unwrap();
}

/// The host fds of this process that point into `dir`.
fn fds_into(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

#[test]
fn ending_the_vm_closes_every_host_fd_it_opened() {
    if !common::require_kvm() {
        return;
    }
    let root = scratch("close");
    let out = umon::Capture::new();
    // fdlimit leaves a file open at exit; the volume root is open all along.
    let report = umon::Builder::new(c_app("files", Link::StaticPie))
        .args(["fdlimit", "/d"])
        .volume(umon::linux::fs::volume::VolumeSpec {
            host: root.clone(),
            guest: "/d".into(),
            writable: true,
        })
        .stdout(out.clone())
        .run()
        .unwrap();
    assert_eq!(report.status, umon::ExitStatus::Exited(0), "{}", out.text());
    assert!(
        out.text().contains("opened 13, then: EMFILE"),
        "{}",
        out.text()
    );
    assert_eq!(fds_into(&root), Vec::<PathBuf>::new(), "fds left open");
    std::fs::remove_dir_all(&root).unwrap();
}
