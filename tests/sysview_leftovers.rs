//! The leftovers of issue 14, each compared with the native run byte for byte:
//! - F_GETFL of a file opened in a volume shows only the application's flags (umon opens the
//!   host file without an added O_NOFOLLOW);
//! - `/proc/self/fd/N` of each anonymous-inode kind and of a memfd reads as on Linux;
//! - `e2fsck` (a dynamic glibc PIE, run with `--root /`) on image files in a volume, read-only
//!   with `-n` and repairing with `-y` in an `:rw` volume (the repaired image is compared too),
//!   and the `/proc/swaps` it reads;
//! - the private `/tmp` and `/dev/shm` are a tmpfs the size of the application's memory (`-m`):
//!   compared with a real tmpfs of that size, mounted natively in a user namespace.
//!
//! tests/apps/sysview_leftovers.c is the probe (glibc static-pie, static and musl).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{native, run, s, umon_run, umon_run_cmd};
use common::{stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use threads_common::{c_thread_app, variants};

fn probes() -> Vec<PathBuf> {
    variants()
        .into_iter()
        .map(|v| c_thread_app("sysview_leftovers", v))
        .collect()
}

/// A fresh, empty directory for one test under CARGO_TARGET_TMPDIR.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("sysview_leftovers", name)
}

/// stdout, stderr and the exit status of both runs must be equal.
fn assert_same(what: &str, linux: &Output, umon: &Output) {
    assert_eq!(
        stdout(umon),
        stdout(linux),
        "{what}: stdout differs\numon stderr:\n{}",
        stderr(umon)
    );
    assert_eq!(stderr(umon), stderr(linux), "{what}: stderr differs");
    assert_eq!(
        umon.status.code(),
        linux.status.code(),
        "{what}: exit status"
    );
}

#[test]
fn getfl_shows_only_the_applications_flags() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let dir = scratch("getfl-native");
        let linux = native(&app, &["getfl", s(&dir)], &[], b"");
        assert!(linux.status.success(), "{}", stderr(&linux));
        assert!(
            stdout(&linux).contains("rdwr|append 102002\n"),
            "the native run shows O_RDWR|O_APPEND|O_LARGEFILE:\n{}",
            stdout(&linux)
        );
        // A volume.
        let vol = scratch("getfl-volume");
        let spec = format!("{}:/data:rw", s(&vol));
        let umon = umon_run(&["-v", &spec], &app, &["getfl", "/data"], b"");
        assert_same(&format!("{} in a volume", app.display()), &linux, &umon);
        // The private /tmp.
        let umon = umon_run(&[], &app, &["getfl", "/tmp"], b"");
        assert_same(&format!("{} in /tmp", app.display()), &linux, &umon);
    }
}

#[test]
fn proc_fd_names_each_anonymous_inode_kind_as_linux() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let linux = native(&app, &["anon"], &[], b"");
        assert!(linux.status.success(), "{}", stderr(&linux));
        assert!(stdout(&linux).contains("signalfd: anon_inode:[signalfd] flags 2\n"));
        let umon = umon_run(&[], &app, &["anon"], b"");
        assert_same(&app.display().to_string(), &linux, &umon);
    }
}

/// e2fsck reads /proc/swaps: the guest has no swap, so it is Linux's header line alone (the
/// same bytes as the host's first line, whatever swap the host has).
#[test]
fn proc_swaps_is_linuxs_header_without_swap() {
    if !common::require_kvm() {
        return;
    }
    let host = std::fs::read_to_string("/proc/swaps").unwrap();
    let header = format!("{}\n", host.lines().next().unwrap());
    for app in probes() {
        let umon = umon_run(&[], &app, &["cat", "/proc/swaps"], b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        assert_eq!(stdout(&umon), header, "{}", app.display());
    }
}

/// `path` if the host has it, else None after saying why the test is skipped.
fn host_program(path: &str) -> Option<PathBuf> {
    if Path::new(path).exists() {
        Some(PathBuf::from(path))
    } else {
        eprintln!("skipping: this host has no {path}");
        None
    }
}

/// The environment of both e2fsck runs: a fixed clock, so a repair writes the same bytes.
const E2FSCK_ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("E2FSCK_TIME", "1612325106")];

/// `e2fsck args` under `umon run --root /` with `dir` granted at its own host path (the
/// same paths in both runs), read-only unless `rw`.
fn e2fsck_under_umon(e2fsck: &Path, args: &[&str], dir: &Path, rw: bool) -> Output {
    let spec = format!("{}:{}{}", s(dir), s(dir), if rw { ":rw" } else { "" });
    let mut opts = vec!["--root", "/", "--timeout", "60s", "-v", &spec];
    let env: Vec<String> = E2FSCK_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for e in &env {
        opts.push("-e");
        opts.push(e);
    }
    run(&mut umon_run_cmd(&opts, e2fsck, args), b"")
}

#[test]
fn e2fsck_checks_and_repairs_an_image_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let (Some(e2fsck), Some(mke2fs)) = (host_program("/sbin/e2fsck"), host_program("/sbin/mke2fs"))
    else {
        return;
    };
    let dir = scratch("e2fsck");
    let clean = dir.join("clean.img");
    let made = Command::new(&mke2fs)
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&clean)
        .arg("8M")
        .env("E2FSPROGS_FAKE_TIME", "1612325106")
        .output()
        .unwrap();
    assert!(made.status.success(), "mke2fs: {}", stderr(&made));
    // Not a file system at all: e2fsck tries the backups and gives up (exit 8).
    std::fs::write(dir.join("zero.img"), vec![0u8; 1 << 20]).unwrap();
    // The root directory's link count made wrong, when debugfs is there to do it (exit 4 with
    // -n, 1 once repaired).
    let broken = dir.join("broken.img");
    std::fs::copy(&clean, &broken).unwrap();
    let debugfs = host_program("/sbin/debugfs").filter(|d| {
        Command::new(d)
            .args(["-w", "-R", "sif <2> links_count 7"])
            .arg(&broken)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let mut cases: Vec<Vec<String>> = vec![
        vec!["-n".into(), "-f".into(), s(&clean).into()],
        vec!["-n".into(), s(&clean).into()],
        vec!["-n".into(), s(&dir.join("zero.img")).into()],
        vec!["-n".into(), s(&dir.join("missing.img")).into()],
    ];
    if debugfs.is_some() {
        cases.push(vec!["-n".into(), "-f".into(), s(&broken).into()]);
    }
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let linux = native(&e2fsck, &args, E2FSCK_ENV, b"");
        let umon = e2fsck_under_umon(&e2fsck, &args, &dir, false);
        assert_same(&format!("e2fsck {}", args.join(" ")), &linux, &umon);
    }
    // A repair in an :rw volume: the same output, and the same bytes in the image after.
    let Some(_) = debugfs else {
        return;
    };
    // At the same path in both runs: the image is put back between them.
    let fix_dir = scratch("e2fsck-fix");
    let img = fix_dir.join("fix.img");
    std::fs::copy(&broken, &img).unwrap();
    let linux = native(&e2fsck, &["-f", "-y", s(&img)], E2FSCK_ENV, b"");
    assert_eq!(linux.status.code(), Some(1), "{}", stdout(&linux));
    let repaired = std::fs::read(&img).unwrap();
    std::fs::copy(&broken, &img).unwrap();
    let umon = e2fsck_under_umon(&e2fsck, &["-f", "-y", s(&img)], &fix_dir, true);
    assert_same("e2fsck -f -y", &linux, &umon);
    assert!(
        std::fs::read(&img).unwrap() == repaired,
        "the image umon's e2fsck repaired differs from the native one"
    );
}

/// The size of the tmpfs in umon's probe output ("statfs empty: ... bsize B blocks N").
fn tmpfs_size(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("statfs empty:"))
        .unwrap_or_else(|| panic!("no statfs line:\n{out}"));
    let field = |name: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap();
        words[i + 1].parse().unwrap()
    };
    field("bsize") * field("blocks")
}

/// The probe's `MODE DIR` natively, in a tmpfs of `size` bytes mounted (nosuid, nodev, as
/// Linux's /dev/shm) on `dir` in a new user and mount namespace; None when this host allows
/// no such namespace.
fn fill_native_tmpfs(app: &Path, dir: &Path, size: u64, mode: &str) -> Option<Output> {
    let script = format!(
        "mount -t tmpfs -o size={size},nosuid,nodev tmpfs '{d}' || exit 99; exec '{a}' {mode} '{d}'",
        d = s(dir),
        a = s(app)
    );
    let out = run(
        Command::new("unshare")
            .args(["-Urm", "sh", "-c", &script])
            .env_clear(),
        b"",
    );
    if out.status.code() == Some(99) || (!out.status.success() && stdout(&out).is_empty()) {
        eprintln!(
            "skipping the native tmpfs comparison: no user namespace with a tmpfs here ({})",
            stderr(&out).trim()
        );
        return None;
    }
    Some(out)
}

#[test]
fn the_private_tmp_and_dev_shm_are_a_tmpfs_the_size_of_the_apps_memory() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        for guest_dir in ["/tmp", "/dev/shm"] {
            let umon = umon_run(
                &["-m", "64M", "--timeout", "60s"],
                &app,
                &["fill", guest_dir],
                b"",
            );
            let what = format!("{} fill {guest_dir}", app.display());
            assert!(umon.status.success(), "{what}: {}", stderr(&umon));
            let text = stdout(&umon);
            let size = tmpfs_size(&text);
            assert!(
                (32 << 20..=64 << 20).contains(&size),
                "{what}: a tmpfs of {size} bytes under -m 64M"
            );
            assert!(
                text.contains(&format!(
                    "full after {size} bytes: No space left on device\n"
                )),
                "{what}:\n{text}"
            );
            let dir = scratch("tmpfs");
            if let Some(linux) = fill_native_tmpfs(&app, &dir, size, "fill") {
                assert_same(&what, &linux, &umon);
            }
        }
    }
}

/// The probe's `MODE /tmp` under `umon -m 64M` in every variant: its output must start with
/// `first(tmpfs size)`, and be the same natively in a tmpfs of that size.
fn fill_private_tmp(mode: &str, first: impl Fn(u64) -> String) {
    for app in probes() {
        let umon = umon_run(
            &["-m", "64M", "--timeout", "60s"],
            &app,
            &[mode, "/tmp"],
            b"",
        );
        let what = format!("{} {mode} /tmp", app.display());
        assert!(umon.status.success(), "{what}: {}", stderr(&umon));
        let text = stdout(&umon);
        let size = tmpfs_size(&text.replace("statfs full:", "statfs empty:"));
        assert!(text.starts_with(&first(size)), "{what}:\n{text}");
        let dir = scratch(&format!("tmpfs-{mode}"));
        if let Some(linux) = fill_native_tmpfs(&app, &dir, size, mode) {
            assert_same(&what, &linux, &umon);
        }
    }
}

/// A shared mapping of a sparse file in the private /tmp allocates its pages in the tmpfs as
/// they are touched: window after window (each unmapped before the next) fills it, and the
/// first page past its size is SIGBUS, as on Linux's tmpfs (found: such writes were not
/// counted, so a file could grow on the host's disk past the size).
#[test]
fn shared_mappings_fill_the_private_tmp_up_to_its_size() {
    if !common::require_kvm() {
        return;
    }
    fill_private_tmp("fillmap", |size| {
        format!("SIGBUS after {n} pages of {n}\n", n = size / 4096)
    });
}

/// Two processes filling the private /tmp at once share its size: together they write what
/// one would (each monitor adds to the same count).
#[test]
fn processes_share_the_private_tmps_size() {
    if !common::require_kvm() {
        return;
    }
    fill_private_tmp("fillfork", |size| format!("together: {size}\n"));
}
