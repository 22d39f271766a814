//! The guest's view of a system without volumes (issue 14): the synthetic `/dev`, `/proc`,
//! `/sys` and root directory, and the private `/tmp` and `/dev/shm`. tests/apps/sysview_probe.c
//! (glibc static-pie, static and musl) prints one line per fact: compared with the native run
//! where Linux's answer is the same everywhere (/dev semantics, errnos), else checked against
//! the guest's own values (pid 1, -m, --cpus). Path tricks never reach the host; the private
//! directory is gone after the run, also after --timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{native, rust_app, s, umon_run, umon_run_cmd};
use common::{stderr, stdout};
use std::path::{Path, PathBuf};
use threads_common::{c_thread_app, variants};

fn probes() -> Vec<PathBuf> {
    variants()
        .into_iter()
        .map(|v| c_thread_app("sysview_probe", v))
        .collect()
}

/// A fresh, empty directory for one test under CARGO_TARGET_TMPDIR.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("sysview", name)
}

fn lines(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().map(str::to_owned).collect()
}

#[test]
fn dev_files_behave_as_on_linux() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let linux = native(&app, &["dev"], &[], b"");
        let umon = umon_run(&[], &app, &["dev"], b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        assert_eq!(stdout(&umon), stdout(&linux), "{}", app.display());
        assert!(stdout(&umon).contains("stat /dev/null ok chr 1 1:3"));
    }
}

#[test]
fn changes_in_the_synthetic_trees_are_refused() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let out = umon_run(&[], &app, &["refused"], b"");
        assert_eq!(
            lines(&out),
            [
                "create in /proc Permission denied",
                "write /proc/self/status Permission denied",
                "unlink /dev/null Permission denied",
                "mkdir /dev/x Permission denied",
            ],
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn proc_and_sys_report_the_guests_own_values() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        for (cpus, mem, kb) in [("1", "128M", 131072), ("3", "256M", 262144)] {
            let out = umon_run(
                &["--cpus", cpus, "-m", mem, "-e", "SYSVIEW_MARK=42"],
                &app,
                &["proc"],
                b"",
            );
            assert!(out.status.success(), "{}", stderr(&out));
            let n: u32 = cpus.parse().unwrap();
            let online = if n == 1 {
                "0".to_owned()
            } else {
                format!("0-{}", n - 1)
            };
            assert_eq!(
                lines(&out),
                [
                    "status pid 1 getpid 1".to_owned(),
                    format!("memtotal kb {kb}"),
                    format!("cpuinfo processors {n}"),
                    format!("online {online}"),
                    format!("nprocs_conf {n}"),
                    "self link 1".to_owned(),
                    "exe link ok 1".to_owned(),
                    "fd0 link ok 1".to_owned(),
                    "fd devnull link /dev/null".to_owned(),
                    format!("cmdline len ok 1 first {}", s(&app)),
                    "environ mark 1".to_owned(),
                    "maps code 1 stack 1".to_owned(),
                    "stat pid 1".to_owned(),
                    "uptime ok 1".to_owned(),
                ],
                "{}",
                app.display()
            );
        }
    }
}

#[test]
fn the_root_directory_exists_without_volumes() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let out = umon_run(&[], &app, &["root"], b"");
        assert_eq!(
            lines(&out),
            ["stat . ok dir 1", "statvfs / ok", "ls / dev 1 proc 1"],
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn path_tricks_and_tiny_buffers_stay_in_the_synthetic_trees() {
    if !common::require_kvm() {
        return;
    }
    for app in probes() {
        let out = umon_run(&[], &app, &["hostile"], b"");
        assert!(out.status.success(), "{}", stderr(&out));
        let got = lines(&out);
        for line in &got[..6] {
            assert!(line.ends_with("No such file or directory"), "{line}");
        }
        assert_eq!(
            &got[6..],
            [
                "tiny getdents end 0 entries>2 1",
                "getdents 8 bytes Invalid argument",
                "huge read maps 1"
            ]
        );
    }
}

/// The private directories' host directory: the only entry umon made in `tmpdir`.
fn private_dirs_in(tmpdir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmpdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn private_tmp_and_dev_shm_are_private_and_removed_at_the_end() {
    if !common::require_kvm() {
        return;
    }
    let tmpdir = scratch("private");
    let name = format!("umon-sysview-{}", std::process::id());
    for app in probes() {
        let out = umon_run_cmd(&[], &app, &[format!("tmp={name}")])
            .env("TMPDIR", &tmpdir)
            .output()
            .unwrap();
        assert_eq!(
            lines(&out)[..10],
            [
                "tmp create ok",
                "tmp write 7",
                "tmp pread 7 private",
                "tmp stat ok dir 1",
                "shm create ok",
                "shm unlink ok",
                // sem_open creates a file in /dev/shm and maps it MAP_SHARED.
                "sem_open ok",
                "sem_wait ok",
                "sem_post ok",
                "sem_unlink ok",
            ],
            "{}",
            stderr(&out)
        );
        assert!(!Path::new("/tmp").join(&name).exists());
        assert_eq!(private_dirs_in(&tmpdir), Vec::<PathBuf>::new());

        // Also when --timeout ends the VM.
        let out = umon_run_cmd(
            &["--timeout", "2s"],
            &app,
            &[format!("tmp={name}"), "hang".into()],
        )
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
        assert!(stdout(&out).contains("tmp pread 7 private"));
        assert_eq!(private_dirs_in(&tmpdir), Vec::<PathBuf>::new());
    }
}

#[test]
fn rust_available_parallelism_is_the_guests_cpus() {
    if !common::require_kvm() {
        return;
    }
    let app = rust_app("sysview_par");
    for cpus in ["1", "2", "4"] {
        let out = umon_run(&["--cpus", cpus], &app, &[] as &[&str], b"");
        assert_eq!(stdout(&out).trim(), cpus, "{}", stderr(&out));
    }
}

/// Debian's busybox-static, when installed.
fn busybox() -> Option<PathBuf> {
    common::real::program("/bin/busybox", "busybox-static")
}

#[test]
fn busybox_sees_dev_proc_and_the_root() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let out = umon_run(&[], &bb, &["ls", "-l", "/dev/null"], b"");
    assert!(
        stdout(&out).starts_with("crw-rw-rw-") && stdout(&out).contains("1,   3"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = umon_run(&[], &bb, &["cat", "/proc/self/maps"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().any(|l| l.contains("r-xp")),
        "{}",
        stdout(&out)
    );
    let out = umon_run(&[], &bb, &["stat", "-c", "%F %a", "."], b"");
    assert_eq!(stdout(&out), "directory 555\n", "{}", stderr(&out));
    let out = umon_run(&[], &bb, &["df", "/"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = umon_run(&[], &bb, &["ls", "/proc/self/"], b"");
    assert!(
        stdout(&out).lines().any(|l| l == "status"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn etc_passwd_and_group_name_the_apps_user() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    for args in [&["id", "-un"][..], &["id", "-gn"], &["id", "-u"]] {
        let linux = native(&bb, args, &[], b"");
        let umon = umon_run(&[], &bb, args, b"");
        assert_eq!(stdout(&umon), stdout(&linux), "{args:?}: {}", stderr(&umon));
    }
    // A root that has /etc provides its own.
    let out = umon_run(&["--root", "/"], &bb, &["cat", "/etc/passwd"], b"");
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string("/etc/passwd").unwrap(),
        "{}",
        stderr(&out)
    );
}

#[test]
fn root_slash_runs_host_programs_read_only() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let out = umon_run(&["--root", "/"], &bb, &["cat", "/etc/hostname"], b"");
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string("/etc/hostname").unwrap(),
        "{}",
        stderr(&out)
    );
    let name = format!("/etc/umon-sysview-{}", std::process::id());
    let out = umon_run(&["--root", "/"], &bb, &["touch", &name], b"");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&name).exists());
    // /dev and /proc are the synthetic ones, not the host's.
    let out = umon_run(&["--root", "/"], &bb, &["ls", "/proc/self/"], b"");
    assert!(
        stdout(&out).lines().any(|l| l == "maps"),
        "{}",
        stdout(&out)
    );
    let out = umon_run(&["--root", "/"], &bb, &["ls", "/dev"], b"");
    assert!(
        !stdout(&out).lines().any(|l| l == "kvm"),
        "{}",
        stdout(&out)
    );
    // A read-only root still has a writable /tmp (private), a writable root its own.
    let out = umon_run(&["--root", "/"], &bb, &["touch", "/tmp/umon-sysview"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let rw = scratch("rwroot");
    std::fs::create_dir(rw.join("tmp")).unwrap();
    let app = &probes()[0];
    let out = umon_run(&[&format!("--root={}:rw", s(&rw))], app, &["tmp=mine"], b"");
    assert!(stdout(&out).contains("shm create ok"), "{}", stdout(&out));
    assert_eq!(std::fs::read(rw.join("tmp/mine")).unwrap(), b"private");
}

#[test]
fn proc_sys_and_proc_stat_agree_with_uname_and_cpus() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let uname = umon_run(&[], &bb, &["uname", "-r", "-n"], b"");
    let sys = umon_run(
        &[],
        &bb,
        &[
            "cat",
            "/proc/sys/kernel/osrelease",
            "/proc/sys/kernel/hostname",
        ],
        b"",
    );
    let uname = stdout(&uname);
    let mut want: Vec<&str> = uname.split_whitespace().collect();
    want.reverse();
    let got = stdout(&sys);
    assert_eq!(got.lines().collect::<Vec<_>>(), want, "{}", stderr(&sys));
    for cpus in ["1", "3"] {
        let out = umon_run(&["--cpus", cpus], &bb, &["cat", "/proc/stat"], b"");
        let per_cpu = stdout(&out)
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert_eq!(per_cpu.to_string(), cpus, "{}", stdout(&out));
    }
}

/// tests/apps/sv_proc.c built in every variant.
fn sv_proc() -> Vec<PathBuf> {
    variants()
        .into_iter()
        .map(|v| c_thread_app("sv_proc", v))
        .collect()
}

#[test]
fn proc_files_hold_what_the_app_gets_from_its_own_syscalls() {
    if !common::require_kvm() {
        return;
    }
    // The app checks auxv, limits, fdinfo, task/, stat, statm, comm, the /dev links, /dev/tty
    // without a terminal, statfs and getdents against its own syscalls with Linux's format
    // strings; natively that proves the oracle, under umon the files.
    let dir = scratch("sv_proc");
    let groups = ["auxv", "limits", "task", "stat", "dev"];
    for app in sv_proc() {
        // "dev" last: its cgroup line ends the output.
        let mut args: Vec<String> = vec![format!("fdinfo={}", s(&dir))];
        args.extend(groups.iter().map(|g| g.to_string()));
        let linux = native(&app, &args, &[], b"");
        args[0] = "fdinfo=/data".into();
        let vol = format!("{}:/data:rw", s(&dir));
        let umon = umon_run(&["-v", &vol], &app, &args, b"");
        assert!(umon.status.success(), "{}", stderr(&umon));
        let (mut want, mut got) = (lines(&linux), lines(&umon));
        // The host's cgroup may be v1 (several lines); umon's is the v2 line a process at the
        // root of its hierarchy has, which Linux prints last.
        let cgroup = |l: &mut Vec<String>| {
            let at = l.iter().position(|x| x.starts_with("cgroup ")).unwrap();
            let mut c = l.split_off(at);
            c.retain(|x| !x.is_empty());
            c
        };
        let host_cgroup = cgroup(&mut want);
        let umon_cgroup = cgroup(&mut got);
        assert_eq!(got, want, "{}\n{}", app.display(), stderr(&umon));
        assert_eq!(umon_cgroup, ["cgroup 0::/".to_owned()], "{}", app.display());
        assert!(
            host_cgroup.last().unwrap().ends_with("0::/"),
            "{host_cgroup:?}"
        );
        // Each group's check must have run: a group that printed nothing proves nothing.
        for fact in [
            "auxv as getauxval 1 ends with AT_NULL 1 phdr/entry/pagesz/random 4",
            "limits as getrlimit 1",
            "signalfd fields 4 pos 0 flags 02004002 as F_GETFL 1 ino as fstat 1 rest [sigmask:",
            "task entries 2 main 1 other 1",
            "stat fields 52 pid same 1",
            "open /dev/tty No such device or address",
            "statfs /proc 0 type 9fa0",
        ] {
            assert!(stdout(&umon).contains(fact), "{fact}: {}", stdout(&umon));
        }
    }
}

#[test]
fn dev_tty_is_the_terminal_umons_stdin_is() {
    if !common::require_kvm() || !threads_common::tool_present("script", "bsdutils") {
        return;
    }
    // `script` runs the command on a fresh pseudo-terminal (its stdin, stdout and controlling
    // terminal); the app's lines and what it wrote to /dev/tty come back on script's stdout.
    let on_pty = |cmd: String| common::on_pty(&cmd);
    for app in sv_proc() {
        let linux = on_pty(format!("{} tty", s(&app)));
        let umon = on_pty(format!(
            "{} run {} tty",
            env!("CARGO_BIN_EXE_umon"),
            s(&app)
        ));
        assert_eq!(umon, linux, "{}", app.display());
        assert!(umon.contains("via /dev/tty\n"), "{umon}");
        assert!(
            umon.contains("tty isatty 1 tcgetattr 0 chr 1 5:0"),
            "{umon}"
        );
        assert!(umon.contains("tty fd link /dev/tty\n"), "{umon}");
    }
}

#[test]
fn busybox_reads_the_proc_files_in_linuxs_format() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let both = |args: &[&str]| {
        let linux = native(&bb, args, &[], b"");
        let umon = umon_run(&[], &bb, args, b"");
        assert!(umon.status.success(), "{args:?}: {}", stderr(&umon));
        (stdout(&linux), stdout(&umon))
    };
    // The limits table: the same rows, names and units; the values the C app checks.
    let (linux, umon) = both(&["cat", "/proc/self/limits"]);
    let shape = |t: &str| -> Vec<(String, String)> {
        t.lines()
            .map(|l| (l[..26].to_owned(), l.get(68..).unwrap_or("").to_owned()))
            .collect()
    };
    assert_eq!(shape(&umon), shape(&linux), "{umon}");
    // fdinfo: the same keys in the same order.
    let (linux, umon) = both(&["cat", "/proc/self/fdinfo/0"]);
    let keys = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&umon), keys(&linux), "{umon}");
    // stat has Linux's 52 fields; statm 7; task/ lists the one thread, the pid.
    for (file, n) in [("/proc/self/stat", 52), ("/proc/self/statm", 7)] {
        let (linux, umon) = both(&["cat", file]);
        assert_eq!(linux.split_whitespace().count(), n, "{linux}");
        assert_eq!(umon.split_whitespace().count(), n, "{umon}");
    }
    let (_, stat) = both(&["cat", "/proc/self/stat"]);
    let (_, task) = both(&["ls", "/proc/self/task"]);
    assert_eq!(task.trim(), stat.split(' ').next().unwrap(), "{task}");
    // Links, devices and file-system types as Linux names them.
    for args in [
        &["readlink", "/dev/stdin"][..],
        &["readlink", "/dev/stderr"],
        &["readlink", "/dev/fd"],
        &["stat", "-c", "%F %t:%T %a", "/dev/tty", "/dev/null"],
        &[
            "stat",
            "-f",
            "-c",
            "%T",
            "/proc",
            "/sys",
            "/proc/self/fdinfo",
        ],
        &[
            "stat",
            "-c",
            "%F %a",
            "/proc/self/auxv",
            "/proc/self/environ",
            "/proc/self/limits",
        ],
        &[
            "stat",
            "-L",
            "-c",
            "%F %a",
            "/proc/self/fd",
            "/proc/self/fdinfo",
            "/proc/self/task",
        ],
    ] {
        let (linux, umon) = both(args);
        assert_eq!(umon, linux, "{args:?}");
    }
}

#[test]
fn mounts_and_system_numbers_are_the_guests() {
    if !common::require_kvm() {
        return;
    }
    let Some(bb) = busybox() else { return };
    let (ro, rw) = (scratch("mounts-ro"), scratch("mounts-rw"));
    let vols = [
        "-v".to_owned(),
        format!("{}:/data", s(&ro)),
        "-v".to_owned(),
        format!("{}:/w:rw", s(&rw)),
    ];
    let vols: Vec<&str> = vols.iter().map(String::as_str).collect();
    let out = umon_run(
        &vols,
        &bb,
        &["cat", "/proc/mounts", "/proc/self/mounts"],
        b"",
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // The same table twice: the synthetic trees, the private /tmp, the two volumes.
    let (a, b) = lines.split_at(lines.len() / 2);
    assert_eq!(a, b, "{text}");
    for want in [
        "proc /proc proc rw,nosuid 0 0",
        "umon /data umon ro,nosuid 0 0",
        "umon /w umon rw,nosuid 0 0",
        // The private /tmp and /dev/shm are tmpfs mounts, as statfs says.
        "tmpfs /tmp tmpfs rw,nosuid,nodev 0 0",
        "tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0",
    ] {
        assert!(a.contains(&want), "{want}: {text}");
    }
    assert!(a.iter().all(|l| l.split(' ').count() == 6), "{text}");
    // A volume at / hides the synthetic root but not /proc.
    let out = umon_run(&["--root", "/"], &bb, &["cat", "/proc/mounts"], b"");
    assert!(!stdout(&out).contains(" / tmpfs"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("umon / umon ro,nosuid 0 0"),
        "{}",
        stdout(&out)
    );

    // loadavg: the app's threads and its pid; uptime, pid_max and overcommit in Linux's shape.
    let both = |file: &str| {
        let linux = stdout(&native(&bb, &["cat", file], &[], b""));
        let umon = stdout(&umon_run(&[], &bb, &["cat", file], b""));
        (linux, umon)
    };
    let (linux, umon) = both("/proc/loadavg");
    let fields = |t: &str| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(fields(&umon).len(), fields(&linux).len(), "{umon}");
    assert_eq!(fields(&umon)[3..], ["1/1", "1"], "{umon}");
    let (linux, umon) = both("/proc/uptime");
    assert_eq!(fields(&umon).len(), fields(&linux).len(), "{umon}");
    assert!(
        fields(&umon).iter().all(|f| f.parse::<f64>().is_ok()),
        "{umon}"
    );
    for file in ["/proc/sys/kernel/pid_max", "/proc/sys/vm/overcommit_memory"] {
        let (linux, umon) = both(file);
        assert!(linux.trim().parse::<u32>().is_ok() && umon.trim().parse::<u32>().is_ok());
        assert!(umon.ends_with('\n') && umon.lines().count() == 1, "{umon}");
    }
}
