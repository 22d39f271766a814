//! Regression tests for the file-system findings of issue 10: read-only belongs to the host
//! directory whatever path reaches it (symlinks, `..` in a symlink, a renamed parent, an
//! absolute symlink in a volume at `/`, the working directory, directory fds); no set-uid or
//! set-gid bits and no device nodes on the host; the guest's umask alone decides modes; FIFOs
//! and sockets by mknod; directory fds and the working directory follow renames and getcwd
//! says where the directory is; bad path pointers are EFAULT for every path-taking call and
//! getdents64 keeps its entries after an EFAULT.
//!
//! Where the host can run the same program the same way (directory renames, umask, EFAULT),
//! the output is compared with the native run. Bind mounts are not available to the tests, so
//! the read-only routes are compared with the errnos Linux gives with bind mounts (docker
//! `-v`), written out below with the reason for each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, run, s, umon_run, Link};
use common::{stderr, stdout};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("volume_findings", name)
}

/// Every entry under `root` (symlinks not followed): type, mode, size, mtime.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
            }
            let facts = format!(
                "{:?} {:o} {} {}.{} {}",
                m.file_type(),
                m.mode(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.nlink()
            );
            out.insert(p.strip_prefix(root).unwrap().to_owned(), facts);
        }
    }
    out
}

fn clean(o: &Output, what: &str) -> String {
    assert_eq!(o.status.code(), Some(0), "{what}: stderr {}", stderr(o));
    assert_eq!(stderr(o), "", "{what}: stderr");
    stdout(o)
}

fn assert_text(got: &str, want: &str, what: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(
            g,
            w,
            "{what}: line {}\n--- got:\n{got}--- want:\n{want}",
            i + 1
        );
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{what}\n--- got:\n{got}--- want:\n{want}"
    );
}

// ---- item 1: read-only by host directory ---------------------------------------------------

/// What each call in `vol_ro` gets on Linux when the read-only directory is a read-only bind
/// mount reached through the writable one: every change EROFS; a link or rename with one side
/// inside and one outside EXDEV (different mounts, checked before the read-only one), except a
/// link *into* it, where Linux checks the new name's mount for writing first (EROFS).
const RO_WANT: &str = "\
open_wronly: EROFS
open_rdwr: EROFS
open_trunc: EROFS
open_creat: EROFS
open_creat_excl: EROFS
creat: EROFS
openat_creat: EROFS
tmpfile: EROFS
truncate: EROFS
chmod: EROFS
fchmodat: EROFS
utimensat: EROFS
access_w: EROFS
fchmod: EROFS
futimens: EROFS
fchmod_dir: EROFS
mkdirat_fd: EROFS
unlinkat_missing: EROFS
mkdir: EROFS
mknod_fifo: EROFS
symlink: EROFS
link_out: EXDEV
link_in: EROFS
rename_in: EROFS
rename_out: EXDEV
rename_into: EXDEV
unlink: EROFS
rmdir: EROFS
chmod_root: EROFS
";

/// With the read-only directory named by a path through the writable volume, removing or
/// renaming it is removing a mount point: EBUSY.
const ROOT_WANT: &str = "\
rmdir_root: EBUSY
rename_root: EBUSY
";

/// The read-only volume's host directory: file, f_ren, f_mv, f_unl, dir/.
fn ro_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("dir")).unwrap();
    for f in ["file", "f_ren", "f_mv", "f_unl"] {
        std::fs::write(dir.join(f), b"read-only\n").unwrap();
    }
}

/// Run `vol_ro ROUTE GUEST_ROOT` with the volumes `vols` and check its lines and that the
/// read-only directory (at `ro` on the host, `ro_after` once the guest ran) did not change.
fn ro_route(
    route: &str,
    vols: &[String],
    guest_root: &str,
    ro: &Path,
    ro_after: &Path,
    want: &str,
) {
    let before = snapshot(ro);
    let mut opts: Vec<&str> = Vec::new();
    for v in vols {
        opts.extend(["-v", v.as_str()]);
    }
    let out = umon_run(
        &opts,
        c_app("vol_ro", Link::StaticPie),
        &[route, guest_root],
        b"",
    );
    assert_text(&clean(&out, route), want, route);
    assert_eq!(
        snapshot(ro_after),
        before,
        "{route}: the read-only directory changed"
    );
}

#[test]
fn read_only_volume_stays_read_only_by_every_route() {
    if !common::require_kvm() {
        return;
    }
    let both = format!("{RO_WANT}{ROOT_WANT}");
    for route in ["symlink", "dotdot", "cwd"] {
        let d = scratch(&format!("ro-{route}"));
        ro_layout(&d.join("ref"));
        let vols = [
            format!("{}:/data:rw", s(&d)),
            format!("{}:/data/ref:ro", s(&d.join("ref"))),
        ];
        let want = if route == "dotdot" { &both } else { RO_WANT };
        ro_route(route, &vols, "/data", &d.join("ref"), &d.join("ref"), want);
    }
    // ref's parent renamed by the guest: /data/b/ref is no longer the mount point's path.
    let d = scratch("ro-renamed");
    ro_layout(&d.join("a/ref"));
    let vols = [
        format!("{}:/data:rw", s(&d)),
        format!("{}:/data/a/ref:ro", s(&d.join("a/ref"))),
    ];
    ro_route(
        "renamed",
        &vols,
        "/data",
        &d.join("a/ref"),
        &d.join("b/ref"),
        &both,
    );
    // A writable volume at / and an absolute symlink to the read-only one.
    let d = scratch("ro-abs");
    ro_layout(&d.join("ref"));
    let vols = [
        format!("{}:/:rw", s(&d)),
        format!("{}:/ref:ro", s(&d.join("ref"))),
    ];
    ro_route("abs", &vols, "", &d.join("ref"), &d.join("ref"), RO_WANT);
}

#[test]
fn the_same_calls_work_in_a_writable_directory() {
    if !common::require_kvm() {
        return;
    }
    // The control for the test above: vol_ro's calls succeed where writing is allowed (the
    // missing name stays ENOENT), so its EROFS lines come from the read-only directory.
    let d = scratch("ro-control");
    ro_layout(&d.join("ctl"));
    std::fs::create_dir_all(d.join("ref")).unwrap();
    let vols = [
        "-v".to_owned(),
        format!("{}:/data:rw", s(&d)),
        "-v".to_owned(),
        format!("{}:/data/ref:ro", s(&d.join("ref"))),
    ];
    let opts: Vec<&str> = vols.iter().map(String::as_str).collect();
    let out = umon_run(
        &opts,
        c_app("vol_ro", Link::StaticPie),
        &["control", "/data"],
        b"",
    );
    let want: String = RO_WANT
        .lines()
        .map(|l| {
            let name = l.split(':').next().unwrap();
            let r = if name == "unlinkat_missing" {
                "ENOENT"
            } else {
                "ok"
            };
            format!("{name}: {r}\n")
        })
        .collect();
    assert_text(&clean(&out, "control"), &want, "control");
}

// ---- item 4 and umask: modes -----------------------------------------------------------------

/// `vol_modes CASE DIR` under umon with umon's own umask set to `umask`.
fn modes_in_umon(case: &str, dir: &Path, umask: &str) -> Output {
    let app = c_app("vol_modes", Link::StaticPie);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_umon"))
        .arg("run")
        .arg("-v")
        .arg(format!("{}:/d:rw", s(dir)))
        .arg(&app)
        .arg(case)
        .arg("/d");
    run(&mut cmd, b"")
}

#[test]
fn the_guest_umask_alone_decides_modes() {
    if !common::require_kvm() {
        return;
    }
    for umask in ["077", "022", "0"] {
        let (u, n) = (scratch("umask-umon"), scratch("umask-native"));
        let got = clean(&modes_in_umon("umask", &u, umask), "umask");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .arg(c_app("vol_modes", Link::StaticPie))
            .arg("umask")
            .arg(&n);
        let want = clean(&run(&mut cmd, b""), "native");
        assert_text(&got, &want, &format!("umon's umask {umask}"));
        assert!(got.starts_with("creat 0777: file 0777\n"), "{got}");
    }
}

/// What `vol_modes setid` prints: on Linux (without `nosuid`) the bits would stay; umon strips
/// S_ISUID and S_ISGID from every create and mode change, keeping the sticky bit.
const SETID_WANT: &str = "\
open O_CREAT 06777: file 0777
open O_CREAT|O_EXCL 04700: file 0700
creat 02755: file 0755
openat O_CREAT 06755: file 0755
mkdir 07777: dir 1777
mknod S_IFREG 06777: file 0777
mknod S_IFIFO 04666: fifo 0666
chmod 04755: file 0755
chmod 01777 (sticky kept): dir 1777
fchmod 02755: file 0755
fchmodat 06711: file 0711
fchmodat2 AT_EMPTY_PATH 04777: file 0777
O_TMPFILE 06777: file 0777
";

#[test]
fn no_set_id_bits_on_the_host() {
    if !common::require_kvm() {
        return;
    }
    let d = scratch("setid");
    let got = clean(&modes_in_umon("setid", &d, "0"), "setid");
    assert_text(&got, SETID_WANT, "setid");
    for e in std::fs::read_dir(&d).unwrap() {
        let m = e.unwrap().metadata().unwrap();
        assert_eq!(
            m.mode() & 0o6000,
            0,
            "a set-id bit on the host: {:o}",
            m.mode()
        );
    }
}

/// What `vol_modes nodes` prints. Linux's answers for a process without CAP_MKNOD: FIFOs,
/// sockets and regular files are made; devices are EPERM, a directory type EPERM, an unknown
/// type EINVAL (may_mknod, before the lookup). Linux since 5.8 lets such a process make a
/// whiteout (a 0:0 character device, by mknod or RENAME_WHITEOUT); umon never makes a device
/// node and answers EPERM, as Linux did before and does without CAP_MKNOD for every other
/// device. RENAME_WHITEOUT with RENAME_EXCHANGE is EINVAL first.
const NODES_WANT: &str = "\
mknod S_IFIFO 0666: fifo 0644
mkfifo 0640: fifo 0640
mknodat S_IFSOCK 0777: socket 0755
mknod S_IFREG 0644: file 0644
mknod type 0 0600: file 0600
mknod existing: EEXIST
mknod S_IFCHR 1:3: EPERM
mknod S_IFCHR 0:0 (whiteout): EPERM
mknod S_IFBLK 7:0: EPERM
mknod S_IFDIR: EPERM
mknod bad type: EINVAL
mknod in missing dir: ENOENT
renameat2 RENAME_WHITEOUT: EPERM
the old name after it: file 0644
renameat2 RENAME_WHITEOUT|RENAME_EXCHANGE: EINVAL
";

#[test]
fn mknod_makes_fifos_and_sockets_and_never_devices() {
    if !common::require_kvm() {
        return;
    }
    let d = scratch("nodes");
    let got = clean(&modes_in_umon("nodes", &d, "022"), "nodes");
    assert_text(&got, NODES_WANT, "nodes");
    for e in std::fs::read_dir(&d).unwrap() {
        let t = e.unwrap().file_type().unwrap();
        assert!(
            !t.is_char_device() && !t.is_block_device(),
            "a device node on the host"
        );
    }
    assert!(std::fs::symlink_metadata(d.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(d.join("sock"))
        .unwrap()
        .file_type()
        .is_socket());
}

// ---- item 9: directory fds and the cwd are handles --------------------------------------------

#[test]
fn dirfds_and_the_cwd_follow_renames_as_on_linux() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("vol_dirs", Link::StaticPie);
    let (u, n) = (scratch("dirs-umon"), scratch("dirs-native"));
    let got = clean(
        &umon_run(&["-v", &format!("{}:/d:rw", s(&u))], &app, &["/d"], b""),
        "umon",
    );
    let want = clean(&native(&app, &[s(&n)], &[], b""), "native");
    assert_text(&got, &want, "vol_dirs");
    assert!(
        want.contains("after chdir through symlink: getcwd ROOT/c/sub\n"),
        "{want}"
    );
    assert_eq!(
        snapshot(&u).keys().collect::<Vec<_>>(),
        snapshot(&n).keys().collect::<Vec<_>>()
    );
}

// ---- EFAULT ---------------------------------------------------------------------------------

#[test]
fn bad_path_pointers_are_efault_and_getdents_keeps_entries() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("vol_efault", Link::StaticPie);
    let (u, n) = (scratch("efault-umon"), scratch("efault-native"));
    for d in [&u, &n] {
        for f in ["e1", "e2", "e3"] {
            std::fs::write(d.join(f), b"").unwrap();
        }
    }
    let got = clean(
        &umon_run(&["-v", &format!("{}:/d:rw", s(&u))], &app, &["/d"], b""),
        "umon",
    );
    let want = clean(&native(&app, &[s(&n)], &[], b""), "native");
    assert_text(&got, &want, "vol_efault");
    let (calls, last) = got.trim_end().rsplit_once('\n').unwrap();
    assert!(calls.lines().all(|l| l.ends_with(": EFAULT")), "{calls}");
    assert_eq!(last, "getdents64 retried: 3 of 3 entries");
}
