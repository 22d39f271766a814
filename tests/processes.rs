//! Processes (issue 15) compared with Linux: fork, vfork, posix_spawn, execve, wait4/waitid,
//! exit statuses, SIGCHLD, process groups and sessions, popen/system and `#!` scripts from
//! `tests/apps/proc_ops.c` in every C library variant; and real shells (Debian's
//! busybox-static and bash-static) running pipelines, command substitution, here-documents,
//! `xargs`, `find -exec`, 500 child processes, background jobs and traps. Each runs natively
//! and under `umon run` with the same argv, environment and directory layout; stdout, stderr,
//! the exit status and the files written must agree byte for byte. Then what only umon has:
//! the exit status is pid 1's, `--timeout` and SIGTERM end the whole tree with no host process
//! left behind, `--trace` follows children, and a fork bomb under RLIMIT_NPROC ends with EAGAIN.
//!
//! The guest's file view: a copy of busybox and a relative symlink per applet are a volume at
//! /bin with PATH=/bin (the native run gets PATH pointing at the same directory), so `sh`,
//! `/bin/true` and the rest resolve in the guest. busybox runs the applets of a pipeline as
//! `execve("/proc/self/exe", ["cat"])`: that must re-exec the running program even though
//! umon's /proc/self/exe names the host path umon was given, which the guest cannot open. The
//! C program execs itself through argv[0], so its directory is a volume at its own path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{self, s};
use common::real::{self, Outcome};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use threads_common::{assert_no_differences, differences, variants, Stdin, UMON_TIMEOUT};

// ---- the guest's /bin ----

/// A directory holding a copy of busybox and a relative symlink per applet (`sh -> busybox`),
/// made once per test process; `None` when busybox-static is missing (and not required).
fn bin_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let busybox = real::program("/bin/busybox", "busybox-static")?;
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_bin_dirs(tmp);
        let dir = tmp.join(format!("proc-bin-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&busybox, dir.join("busybox")).unwrap();
        let list = Command::new(&busybox).arg("--list").output().unwrap();
        assert!(list.status.success(), "busybox --list failed");
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if !applet.is_empty() && applet != "busybox" {
                symlink("busybox", dir.join(applet)).unwrap();
            }
        }
        Some(dir)
    })
    .as_deref()
}

/// The applet directories of earlier test processes that are gone (2 MB each).
fn remove_stale_bin_dirs(tmp: &Path) {
    for entry in std::fs::read_dir(tmp).unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("proc-bin-")) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            std::fs::remove_dir_all(entry.path()).ok();
        }
    }
}

fn bash() -> Option<PathBuf> {
    real::program("/bin/bash-static", "bash-static")
}

// ---- the C program ----

/// The host directory `name` under the target's temporary directory, empty.
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("proc-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `umon run` of the C app: its own directory at the same guest path (it execs itself through
/// argv[0]), the busybox applets at /bin (popen, system and `#!/bin/sh` need /bin/sh), `rw`
/// (if any) writable at its own path.
fn c_under_umon(app: &Path, args: &[&str], rw: Option<&Path>) -> Output {
    let apps_dir = s(app.parent().unwrap()).to_owned();
    let bin = s(bin_dir().expect("checked by the caller")).to_owned();
    let own = format!("{apps_dir}:{apps_dir}:ro");
    let slash_bin = format!("{bin}:/bin:ro");
    let mut opts = vec!["--timeout", UMON_TIMEOUT, "-v", &own, "-v", &slash_bin];
    let rw_spec;
    if let Some(rw) = rw {
        rw_spec = format!("{0}:{0}:rw", s(rw));
        opts.extend(["-v", &rw_spec]);
    }
    apps::run(&mut apps::umon_run_cmd(&opts, app, args), b"")
}

/// `proc_ops ARGS` natively and under umon in every C variant: stdout, stderr and the exit
/// status must agree, and the native run must exit `status` without a FAIL line. A `{dir}`
/// argument becomes a fresh writable directory (per variant), the same path in both runs.
fn c_everywhere(args: &[&str], status: i32) {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = threads_common::c_thread_app("proc_ops", v);
        let what = format!("proc_ops {args:?} ({v:?})");
        let dir = args
            .contains(&"{dir}")
            .then(|| scratch(&format!("{}-{v:?}", args[0])));
        let args: Vec<&str> = args
            .iter()
            .map(|&a| {
                if a == "{dir}" {
                    s(dir.as_ref().unwrap())
                } else {
                    a
                }
            })
            .collect();
        let linux = threads_common::native(&app, &args, Stdin::Empty);
        let text = String::from_utf8_lossy(&linux.stdout);
        assert_eq!(
            threads_common::status(&linux),
            status,
            "{what} natively: unexpected status; stdout:\n{text}stderr:\n{}",
            String::from_utf8_lossy(&linux.stderr)
        );
        assert!(
            !text.contains("FAIL"),
            "{what}: the app's own checks fail natively:\n{text}"
        );
        let umon = c_under_umon(&app, &args, dir.as_deref());
        diffs.extend(differences(&what, &linux, &umon));
        if let Some(dir) = dir {
            std::fs::remove_dir_all(dir).ok();
        }
    }
    assert_no_differences(&diffs);
}

#[test]
fn fork_and_waitpid_report_exits_signals_cow_memory_and_echild_as_linux() {
    c_everywhere(&["fork_wait"], 0);
}

#[test]
fn vfork_then_execve_runs_a_program_and_a_failed_exec_ends_with_127() {
    c_everywhere(&["vfork_exec"], 0);
}

#[test]
fn posix_spawn_with_file_actions_env_and_sigmask_as_linux() {
    c_everywhere(&["posix_spawn"], 0);
}

#[test]
fn popen_pclose_and_system_report_the_shell_status() {
    c_everywhere(&["popen"], 0);
}

#[test]
fn execve_keeps_pid_plain_fds_ignored_signals_mask_cwd_and_drops_cloexec_fds_and_handlers() {
    c_everywhere(&["exec_keep"], 0);
}

#[test]
fn sigchld_siginfo_and_waitid_wnowait_wnohang_p_all_as_linux() {
    c_everywhere(&["sigchld"], 0);
}

#[test]
fn execve_of_hashbang_scripts_and_their_errors_as_linux() {
    c_everywhere(&["script", "{dir}"], 0);
}

#[test]
fn process_groups_sessions_group_kill_subreaper_and_pdeathsig_as_linux() {
    c_everywhere(&["pgrp"], 0);
}

/// A fork bomb under RLIMIT_NPROC 20 ends with EAGAIN and every child reaped. Natively root
/// ignores RLIMIT_NPROC (CAP_SYS_RESOURCE), so with the tests running as root the native run
/// forks all 1000 children and cannot be the reference: umon bounds the app's own process tree
/// whatever uid the guest believes it has (its root is not the host's), so under umon the
/// expected lines are checked directly. As another user the native run is compared as well.
#[test]
fn a_fork_bomb_under_rlimit_nproc_ends_with_eagain_and_every_child_reaped() {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let expected =
        "eagain seen: yes\nat most 20 children before it: yes\nevery child reaped: yes\n";
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    for v in variants() {
        let app = threads_common::c_thread_app("proc_ops", v);
        let linux = threads_common::native(&app, &["nproc"], Stdin::Empty);
        assert_eq!(
            threads_common::status(&linux),
            0,
            "nproc ({v:?}) natively: {}",
            common::stdout(&linux)
        );
        assert!(
            !common::stdout(&linux).contains("FAIL"),
            "{}",
            common::stdout(&linux)
        );
        let umon = c_under_umon(&app, &["nproc"], None);
        if !root {
            assert_no_differences(&differences(&format!("nproc ({v:?})"), &linux, &umon));
        }
        assert_eq!(
            (
                common::stdout(&umon).as_str(),
                common::stderr(&umon).as_str(),
                threads_common::status(&umon)
            ),
            (expected, "", 0),
            "nproc ({v:?}) under umon"
        );
    }
}

// ---- shells ----

/// One shell command line natively (PATH = the applet directory) and under umon (the applet
/// directory at /bin, PATH=/bin), in a fresh fixture directory (tests/common/real.rs) that is
/// the working directory and, under umon, a writable volume at the same path.
fn shell_runs(case: &str, program: &Path, args: &[&str]) -> (Outcome, Outcome, Vec<String>) {
    let bin = bin_dir().expect("checked by the caller");
    let dir = real::fixture_path(case);

    real::make_fixture(&dir);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(real::ENV.iter().copied())
        .env("PATH", bin)
        .current_dir(&dir);
    let linux = finish(apps::run(&mut cmd, b""), None, &dir);

    real::make_fixture(&dir);
    let d = s(&dir);
    let volume = format!("{d}:{d}:rw");
    let slash_bin = format!("{}:/bin:ro", s(bin));
    let mut opts = vec![
        "--timeout",
        UMON_TIMEOUT,
        "-v",
        &volume,
        "-v",
        &slash_bin,
        "-v",
        "/etc:/etc:ro",
        "-w",
        d,
        "-e",
        "PATH=/bin",
    ];
    let env: Vec<String> = real::ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for e in &env {
        opts.extend(["-e", e.as_str()]);
    }
    let out = apps::run(&mut apps::umon_run_cmd(&opts, program, args), b"");
    let (stderr, notes) = real::split_notes(&out.stderr);
    let umon = finish(out, Some(stderr), &dir);
    std::fs::remove_dir_all(&dir).ok();
    (linux, umon, notes)
}

fn finish(out: Output, stderr: Option<Vec<u8>>, dir: &Path) -> Outcome {
    Outcome {
        status: threads_common::status(&out),
        stdout: out.stdout,
        stderr: stderr.unwrap_or(out.stderr),
        tree: real::tree(dir),
    }
}

/// `SHELL -c SCRIPT` must do the same natively and under umon; the native run must exit
/// `status` (so a script that breaks natively is caught as a test bug).
fn shell_same(case: &str, program: &Path, argv: &[&str], status: i32) {
    let (linux, umon, notes) = shell_runs(case, program, argv);
    // What the scenario does, for `-- --nocapture`.
    eprintln!(
        "{case} natively ({}):\n{}{}",
        linux.status,
        String::from_utf8_lossy(&linux.stdout),
        String::from_utf8_lossy(&linux.stderr)
    );
    assert_eq!(
        linux.status,
        status,
        "{case} natively: stdout\n{}stderr\n{}",
        String::from_utf8_lossy(&linux.stdout),
        String::from_utf8_lossy(&linux.stderr)
    );
    assert!(
        notes.is_empty(),
        "{case}: umon does not serve {notes:?}; its stderr:\n{}",
        String::from_utf8_lossy(&umon.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&umon.stdout),
        String::from_utf8_lossy(&linux.stdout),
        "{case}: stdout (left umon, right linux); umon's stderr:\n{}",
        String::from_utf8_lossy(&umon.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&umon.stderr),
        String::from_utf8_lossy(&linux.stderr),
        "{case}: stderr (left umon, right linux)"
    );
    assert_eq!(
        umon.status, linux.status,
        "{case}: exit status (umon, linux)"
    );
    assert_eq!(
        umon.tree, linux.tree,
        "{case}: the files left (umon, linux)"
    );
}

/// busybox `sh -c SCRIPT`.
fn busybox_sh(case: &str, script: &str, status: i32) {
    if !common::require_kvm() {
        return;
    }
    let Some(bin) = bin_dir() else { return };
    shell_same(
        &format!("bb-{case}"),
        &bin.join("busybox"),
        &["sh", "-c", script],
        status,
    );
}

/// bash-static `-c SCRIPT` (its external commands are the busybox applets).
fn bash_c(case: &str, script: &str, status: i32) {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let Some(bash) = bash() else { return };
    shell_same(&format!("bash-{case}"), &bash, &["-c", script], status);
}

const SUBST_PIPE: &str = "echo $(echo hi) | tr a-z A-Z; x=$(echo one; echo two); echo \"[$x]\"";
const PIPELINE5: &str = "cat words.txt | grep -v kiwi | sort | uniq -c | sort -rn > counts.txt; \
                         cat counts.txt; cut -f3 table.txt | tr a-z A-Z | sort | head -n 3 | wc -l";
/// A small here-document, a here-document bigger than a pipe's capacity (written by a child of
/// the shell), and one quoted (no expansion).
const HEREDOC: &str = "cat <<EOF\nfirst $((6 * 7))\n  second\nEOF\n\
                       big=$(i=0; while [ $i -lt 9000 ]; do echo line$i; i=$((i+1)); done)\n\
                       cat <<EOF | wc -lc\n$big\nEOF\n\
                       tr a-z A-Z <<'EOF'\nkept $HOME as is\nEOF\n";
const WHILE_READ: &str = "sort -n nums.txt | while read n; do echo \"n=$n\"; done; \
                          n=0; while read -r l; do n=$((n+1)); done < words.txt; echo \"$n lines\"; \
                          cat table.txt | while read name age city; do echo \"$city:$name:$age\"; done";
const XARGS: &str = "printf 'a\\nb c\\nd\\n' | xargs -n 1 echo arg:; \
                     cd d && ls | xargs wc -c; echo words.txt | (cd .. && xargs cat) | sort -u";
const FIND_EXEC: &str = "find d -type f -exec wc -c {} \\; | sort; find . -name '*.txt' -exec \
                         grep -l apple {} + ; find d -type f -exec sh -c 'echo \"$1\" >> found.txt' \
                         sh {} \\; ; sort found.txt > sorted.txt; rm found.txt; cat sorted.txt";
/// `/bin/true` by its path, so the shell runs it as an external program every time.
const CHILDREN_500: &str =
    "i=0; while [ $i -lt 500 ]; do /bin/true; i=$((i+1)); done; echo \"done $i\"";
/// The child killed by SIGKILL is reaped by an inner busybox sh (which says `Killed`): bash
/// would name its pid, which differs between the runs.
const EXIT_STATUS: &str = "false; echo $?; sh -c 'exit 3'; echo $?; (exit 4); echo $?; \
                           /bin/false; echo $?; true | false; echo $?; false | true; echo $?; \
                           sh -c 'sh -c \"kill -9 \\$\\$\"; echo $?'; sh -c 'exit 300'; echo $?; \
                           if /bin/false; then echo yes; else echo no; fi; \
                           x=$(exit 6); echo $?; sh -c 'exit 9'";
const WAIT_BG: &str = "sleep 0.1 & sleep 0.1 & wait; echo ok; (exit 7) & p=$!; wait $p; \
                       echo \"bg status $?\"; (sleep 0.05; echo from bg) & wait; echo after";
const TRAP_EXIT: &str = "trap 'echo bye' EXIT; (trap 'echo sub bye' EXIT; echo in sub); \
                         x=$(trap 'echo subst bye' EXIT; echo in subst); echo \"[$x]\"; \
                         echo hi; exit 2";

#[test]
fn busybox_sh_command_substitution_into_a_pipe() {
    busybox_sh("subst", SUBST_PIPE, 0);
}

#[test]
fn busybox_sh_five_stage_pipeline_over_a_volume_file() {
    busybox_sh("pipeline5", PIPELINE5, 0);
}

#[test]
fn busybox_sh_here_documents_small_big_and_quoted() {
    busybox_sh("heredoc", HEREDOC, 0);
}

#[test]
fn busybox_sh_while_read_loops_over_pipes_and_files() {
    busybox_sh("while", WHILE_READ, 0);
}

#[test]
fn busybox_xargs_runs_commands() {
    busybox_sh("xargs", XARGS, 0);
}

#[test]
fn busybox_find_exec_runs_commands() {
    busybox_sh("find", FIND_EXEC, 0);
}

#[test]
fn busybox_sh_runs_500_child_processes() {
    busybox_sh("children500", CHILDREN_500, 0);
}

#[test]
fn busybox_sh_exit_statuses_propagate() {
    busybox_sh("status", EXIT_STATUS, 9);
}

#[test]
fn busybox_sh_waits_for_background_jobs() {
    busybox_sh("wait", WAIT_BG, 0);
}

#[test]
fn busybox_sh_trap_exit_runs_in_shell_subshell_and_substitution() {
    busybox_sh("trap", TRAP_EXIT, 2);
}

/// A child still running when pid 1 exits does not change umon's status: it is pid 1's.
#[test]
fn busybox_sh_exit_status_is_pid_1s_with_a_child_left_running() {
    busybox_sh("orphan", "sleep 0.3 & sh -c 'exit 9'; exit 4", 4);
}

#[test]
fn bash_command_substitution_into_a_pipe() {
    bash_c("subst", SUBST_PIPE, 0);
}

#[test]
fn bash_five_stage_pipeline_over_a_volume_file() {
    bash_c("pipeline5", PIPELINE5, 0);
}

#[test]
fn bash_here_documents_small_big_and_quoted() {
    bash_c("heredoc", HEREDOC, 0);
}

#[test]
fn bash_while_read_loops_over_pipes_and_files() {
    bash_c("while", WHILE_READ, 0);
}

#[test]
fn bash_exit_statuses_propagate() {
    bash_c("status", EXIT_STATUS, 9);
}

#[test]
fn bash_waits_for_background_jobs() {
    bash_c("wait", WAIT_BG, 0);
}

#[test]
fn bash_trap_exit_runs_in_shell_subshell_and_substitution() {
    bash_c("trap", TRAP_EXIT, 2);
}

#[test]
fn bash_runs_500_child_processes() {
    bash_c("children500", CHILDREN_500, 0);
}

// ---- the tree as a whole ----

/// A string no other process has on its command line.
fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("umon-proctest-{what}-{}-{nanos}", std::process::id())
}

/// Host processes (pid, command line) whose command line contains `marker`: umon and every
/// monitor process it forked for a guest child carry umon's command line.
fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(marker) {
            found.push((pid, text));
        }
    }
    found
}

/// Fails if a process carrying `marker` is still there 2 s after umon ended.
fn assert_none_survive(marker: &str) {
    let t0 = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        if t0.elapsed() > Duration::from_secs(2) {
            panic!("host processes of umon survived it: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `umon run OPTS busybox sh -c SCRIPT MARKER` (the marker is the script's $0), started.
fn spawn_tree(opts: &[&str], script: &str, marker: &str) -> std::process::Child {
    let bin = bin_dir().expect("checked by the caller");
    let slash_bin = format!("{}:/bin:ro", s(bin));
    let mut all = vec!["-v", &slash_bin, "-e", "PATH=/bin"];
    all.extend_from_slice(opts);
    apps::umon_run_cmd(&all, bin.join("busybox"), &["sh", "-c", script, marker])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// --timeout ends a tree whose children sleep forever: 124, and nothing of umon is left.
#[test]
fn timeout_ends_the_whole_process_tree() {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let mark = marker("timeout");
    let child = spawn_tree(&["--timeout", "2s"], "sleep 1000 & sleep 1000", &mark);
    let (code, err) = common::finish_within(child, Duration::from_secs(30));
    assert_eq!(code, 124, "stderr: {err}");
    assert_eq!(err, "umon: app timed out after 2s\n");
    assert_none_survive(&mark);
}

/// SIGTERM to umon ends pid 1 (a shell, SIGTERM's default action: 128+15) and every child.
#[test]
fn sigterm_to_umon_ends_the_whole_process_tree() {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let mark = marker("sigterm");
    let child = spawn_tree(
        &["--timeout", UMON_TIMEOUT],
        "sleep 1000 & sleep 1000",
        &mark,
    );
    // Wait until the children exist (a monitor process each besides umon's own), or give up
    // after 10 s and signal anyway.
    let t0 = Instant::now();
    while processes_with(&mark).len() < 3 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (code, err) = common::finish_within(child, Duration::from_secs(30));
    assert_eq!(code, 128 + 15, "stderr: {err}");
    assert_none_survive(&mark);
}

/// `--trace` follows children like `strace -f`: a child's calls carry `[pid N]`.
#[test]
fn trace_prefixes_a_childs_syscalls_with_its_pid() {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let mark = marker("trace");
    let child = spawn_tree(
        &["--timeout", UMON_TIMEOUT, "--trace"],
        "/bin/true; echo traced",
        &mark,
    );
    let out = child.wait_with_output().unwrap();
    let err = common::stderr(&out);
    assert_eq!(
        (common::stdout(&out).as_str(), out.status.code()),
        ("traced\n", Some(0)),
        "stderr:\n{err}"
    );
    // strace -f's form: the pid right-aligned in five columns, `[pid     2] `.
    let followed = err.match_indices("[pid ").any(|(i, m)| {
        err[i + m.len()..]
            .trim_start_matches(' ')
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    });
    assert!(followed, "no `[pid N]` in the trace:\n{err}");
}

/// Rust's std::process::Command (glibc's posix_spawn underneath): output, status, a child
/// between two pipes, and a missing program's NotFound, as natively.
#[test]
fn rust_std_process_command_as_linux() {
    if !common::require_kvm() || bin_dir().is_none() {
        return;
    }
    let bin = bin_dir().expect("checked above");
    let app = apps::rust_app("proc_rs");
    // The app runs natively with the applet directory as /bin: it names /bin/echo etc.
    // absolutely, so natively those are the host's; the outputs are the same either way.
    let native = Command::new(&app).output().unwrap();
    let slash_bin = format!("{}:/bin:ro", s(bin));
    let umon = apps::umon_run_cmd(
        &["--timeout", UMON_TIMEOUT, "-v", &slash_bin],
        &app,
        &[] as &[&str],
    )
    .output()
    .unwrap();
    assert_eq!(
        (
            umon.status.code(),
            String::from_utf8_lossy(&umon.stdout),
            String::from_utf8_lossy(&umon.stderr)
        ),
        (
            native.status.code(),
            String::from_utf8_lossy(&native.stdout),
            String::from_utf8_lossy(&native.stderr)
        )
    );
    assert!(String::from_utf8_lossy(&umon.stdout).contains("no-such-program: NotFound"));
}
