//! Small gaps real programs hit: the process group and session calls, capget/capset, the NUMA
//! memory-policy calls, and the directories a volume mounted inside the private `/tmp` needs
//! above it. C apps (tests/apps/sm_*.c) print what the calls answer and are compared with their
//! native run byte for byte where the native answer is the same by construction; host programs
//! (`ps`, `git`, `stat`, `ls`) run with `--root /` are compared with native runs where that is
//! meaningful.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, run, s, umon_run, umon_run_cmd, Link};
use common::{require_kvm, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Run `app args` natively (under `wrapper` when given) and under umon; require the same
/// stdout and exit status and a quiet umon.
fn same_as_native(what: &str, app: &Path, args: &[&str], wrapper: &[&str]) {
    let want = match wrapper.split_first() {
        Some((prog, rest)) => {
            let mut a: Vec<&str> = rest.to_vec();
            a.push(s(app));
            a.extend_from_slice(args);
            native(prog, &a, &[], b"")
        }
        None => native(app, args, &[], b""),
    };
    assert_eq!(stderr(&want), "", "{what}: native run");
    let got = umon_run(&[], app, args, b"");
    assert_eq!(stderr(&got), "", "{what}: stdout {}", stdout(&got));
    assert_eq!(stdout(&got), stdout(&want), "{what}");
    assert_eq!(got.status.code(), want.status.code(), "{what}: exit status");
}

/// The app is its own session and group leader (pid 1 after setsid): compared with the native
/// run made a session leader by `setsid -w`, printing relations, not pids.
#[test]
fn session_and_group_calls_answer_as_for_a_session_leader() {
    if !require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("sm_session", link);
        same_as_native(
            &format!("sm_session {link:?}"),
            &app,
            &[],
            &["setsid", "-w"],
        );
    }
}

/// capget/capset: the app has no capabilities; the native run drops all of its own first, so
/// both answer alike (versions, write-back of the preferred version, pids, raising EPERM).
#[test]
fn capabilities_answer_as_linux_for_a_process_without_any() {
    if !require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("sm_caps", link);
        same_as_native(&format!("sm_caps {link:?}"), &app, &[], &[]);
    }
}

/// capget/capset with unmapped, half-mapped and read-only headers and data.
#[test]
fn capabilities_with_bad_pointers_fail_as_on_linux() {
    if !require_kvm() {
        return;
    }
    let app = c_app("sm_caps", Link::StaticPie);
    same_as_native("sm_caps hostile", &app, &["hostile"], &[]);
}

/// Whether the host has one memory node (the machine the guest is shown), so the native run's
/// answers are the ones umon must give.
fn host_has_one_node() -> bool {
    let possible = std::fs::read_to_string("/sys/devices/system/node/possible");
    let one = possible.is_ok_and(|p| p.trim() == "0");
    if !one {
        eprintln!("skipping: the host has more than one possible memory node");
    }
    one
}

/// get_mempolicy/set_mempolicy/mbind/migrate_pages as a one-node machine answers them.
#[test]
fn memory_policy_calls_answer_as_a_one_node_machine() {
    if !require_kvm() || !host_has_one_node() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("sm_mempolicy", link);
        same_as_native(&format!("sm_mempolicy {link:?}"), &app, &[], &[]);
    }
}

/// The memory-policy calls with bad pointers, huge node counts and lengths.
#[test]
fn memory_policy_calls_with_bad_arguments_fail_as_on_linux() {
    if !require_kvm() || !host_has_one_node() {
        return;
    }
    let app = c_app("sm_mempolicy", Link::StaticPie);
    same_as_native("sm_mempolicy hostile", &app, &["hostile"], &[]);
}

/// `program args` under `umon run --root /` with `volumes` (host:guest:rw), in the C locale.
fn under_root(program: &str, args: &[&str], volumes: &[String]) -> Output {
    let mut opts: Vec<String> = ["--root", "/", "--timeout", "60s", "-e", "LC_ALL=C"]
        .iter()
        .map(|o| (*o).to_owned())
        .collect();
    for v in volumes {
        opts.push("-v".into());
        opts.push(v.clone());
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    run(&mut umon_run_cmd(&opts, program, args), b"")
}

/// A fresh directory under the host's /tmp (the guest's /tmp is umon's private one, so a
/// volume at the same path has parents that exist natively but not in the private /tmp).
/// Removed on drop.
struct HostTmp(PathBuf);

impl HostTmp {
    fn new(case: &str) -> HostTmp {
        let dir = Path::new("/tmp").join(format!("umon-smalls-{case}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        HostTmp(dir)
    }
}

impl Drop for HostTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host_program(path: &str) -> bool {
    let there = Path::new(path).exists();
    if !there {
        eprintln!("skipping: this host has no {path}");
    }
    there
}

/// Require the same stdout and exit status natively and under umon, and a quiet umon.
fn same_output(what: &str, native_run: &Output, umon: &Output) {
    assert_eq!(stderr(umon), stderr(native_run), "{what}: stderr");
    assert_eq!(stdout(umon), stdout(native_run), "{what}: stdout");
    assert_eq!(umon.status.code(), native_run.status.code(), "{what}");
}

/// A volume mounted at `/tmp/A/B/vol` inside the private `/tmp`: `/tmp/A` and `/tmp/A/B` are
/// directories (stat), and listing them shows the way down, as natively where the same
/// directories exist.
#[test]
fn parents_of_a_volume_inside_the_private_tmp_are_directories() {
    if !require_kvm() || !host_program("/usr/bin/stat") || !host_program("/bin/ls") {
        return;
    }
    let tmp = HostTmp::new("parents");
    let vol = tmp.0.join("a/b/vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("file"), b"x").unwrap();
    let volumes = [format!("{0}:{0}:rw", s(&vol))];
    let (a, b) = (tmp.0.join("a"), tmp.0.join("a/b"));
    let file = vol.join("file");
    let stat_args = ["-c", "%n %F", s(&tmp.0), s(&a), s(&b), s(&vol), s(&file)];
    let env = [("LC_ALL", "C")];
    let want = native("/usr/bin/stat", &stat_args, &env, b"");
    let got = under_root("/usr/bin/stat", &stat_args, &volumes);
    same_output("stat", &want, &got);
    let ls_args = ["-a", s(&tmp.0), s(&a), s(&b), s(&vol)];
    let want = native("/bin/ls", &ls_args, &env, b"");
    let got = under_root("/bin/ls", &ls_args, &volumes);
    same_output("ls -a", &want, &got);
}

/// git finds a repository in a volume mounted under the private `/tmp` and reads it as
/// natively; in a volume that holds no repository its search walks up through the parents
/// (stat-ing each for its device) and says, as natively, that there is none.
#[test]
fn git_finds_a_repository_in_a_volume_under_tmp() {
    if !require_kvm() {
        return;
    }
    let Some(git) = ["/usr/bin/git", "/usr/local/bin/git"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipping: this host has no git");
        return;
    };
    let tmp = HostTmp::new("git");
    let repo = tmp.0.join("work/repo");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    std::fs::write(repo.join("sub/f"), b"one\n").unwrap();
    let env = [
        ("LC_ALL", "C"),
        ("HOME", s(&tmp.0)),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_AUTHOR_NAME", "a"),
        ("GIT_AUTHOR_EMAIL", "a@example.com"),
        ("GIT_COMMITTER_NAME", "a"),
        ("GIT_COMMITTER_EMAIL", "a@example.com"),
        ("GIT_AUTHOR_DATE", "2021-02-03T04:05:06Z"),
        ("GIT_COMMITTER_DATE", "2021-02-03T04:05:06Z"),
    ];
    let git_here = |args: &[&str]| {
        let mut a = vec!["-C", s(&repo)];
        a.extend_from_slice(args);
        let o = native(git, &a, &env, b"");
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    };
    git_here(&["init", "-q"]);
    git_here(&["add", "."]);
    git_here(&["commit", "-qm", "first"]);
    std::fs::write(repo.join("sub/f"), b"two\n").unwrap();

    let plain = tmp.0.join("work/plain");
    std::fs::create_dir_all(&plain).unwrap();

    let sub = repo.join("sub");
    let mut opts: Vec<String> = vec![
        "--root".into(),
        "/".into(),
        "--timeout".into(),
        "60s".into(),
        "-v".into(),
        format!("{0}:{0}:rw", s(&repo)),
        "-v".into(),
        format!("{0}:{0}:rw", s(&plain)),
    ];
    for (k, v) in env {
        opts.push("-e".into());
        opts.push(format!("{k}={v}"));
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    for args in [
        &["rev-parse", "--show-toplevel", "--show-prefix"][..],
        &["status", "--porcelain"][..],
        &["log", "--format=%s %an"][..],
    ] {
        let mut a = vec!["-C", s(&sub)];
        a.extend_from_slice(args);
        let want = native(git, &a, &env, b"");
        let got = run(&mut umon_run_cmd(&opts, git, &a), b"");
        same_output(&format!("git {args:?}"), &want, &got);
    }
    let a = ["-C", s(&plain), "rev-parse", "--show-toplevel"];
    let want = native(git, &a, &env, b"");
    assert_eq!(want.status.code(), Some(128), "{}", stderr(&want));
    let got = run(&mut umon_run_cmd(&opts, git, &a), b"");
    same_output("git outside any repository", &want, &got);
}

/// `ps` (procps) asks get_mempolicy and reads the process's group and session from /proc;
/// under umon it lists the app alone, quietly, as the leader of its own group and session.
#[test]
fn ps_lists_the_app_as_its_own_group_and_session_leader() {
    if !require_kvm() || !host_program("/usr/bin/ps") {
        return;
    }
    let got = under_root("/usr/bin/ps", &["-o", "pid=,pgid=,sid=,comm="], &[]);
    assert_eq!(stderr(&got), "", "stdout: {}", stdout(&got));
    assert!(got.status.success());
    let out = stdout(&got);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let f = &lines[0];
    assert_eq!(f.len(), 4, "{out}");
    assert_eq!(f[0], f[1], "pgid is the pid: {out}");
    assert_eq!(f[0], f[2], "sid is the pid: {out}");
    assert_eq!(f[3], "ps", "{out}");
}
