//! The monitor's own robustness (issue 10): a guest that swaps its executable, output nobody
//! reads, a closed stderr, unusable executables, a flood of unknown syscall numbers, RAM above
//! one namespace, the command line, and closed standard fds. Each test ends umon from outside if
//! it hangs, so a regression fails instead of stalling the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;

use common::apps::{c_app, Link};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any one umon run here may take before the test fails (each one should end within a
/// second or two of its --timeout).
const DEADLINE: Duration = Duration::from_secs(60);

fn probe() -> PathBuf {
    c_app("mon_probe", Link::StaticPie)
}

fn umon_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_umon"))
}

fn bounded_umon(args: &[&str]) -> Command {
    common::bounded_umon(args)
}

fn finish(child: Child) -> (i32, String) {
    common::finish_within(child, DEADLINE)
}

/// A fresh directory holding a copy of the probe, for a writable volume.
fn volume_with_probe(tag: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monitor-findings-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("probe");
    std::fs::copy(probe(), &exe).unwrap();
    (dir, exe)
}

fn assert_symbolized_segv(code: i32, err: &str, what: &str) {
    assert_eq!(code, 139, "{what}: {err}");
    assert!(
        err.contains("umon: app killed by SIGSEGV") && err.contains("(mon_fault_here+0x"),
        "{what}: the report names the function from the file as it was loaded: {err}"
    );
}

#[test]
fn an_executable_replaced_by_the_app_is_never_read_again() {
    if !common::require_kvm() {
        return;
    }
    // ("grow", truncating the running executable in place, is ETXTBSY now, as on Linux.)
    for mode in ["zero", "sparse"] {
        let (dir, exe) = volume_with_probe(mode);
        let vol = format!("{}:/d:rw", dir.display());
        let child = bounded_umon(&[
            "run",
            "-m",
            "64M",
            "--timeout",
            "20s",
            "-v",
            &vol,
            exe.to_str().unwrap(),
            mode,
            "/d/probe",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let (code, err) = finish(child);
        assert_symbolized_segv(code, &err, mode);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn an_executable_swapped_for_a_fifo_or_dev_zero_on_the_host_is_never_read_again() {
    if !common::require_kvm() {
        return;
    }
    for swap in ["fifo", "dev-zero"] {
        let (dir, exe) = volume_with_probe(swap);
        let mut child = bounded_umon(&[
            "run",
            "-m",
            "64M",
            "--timeout",
            "20s",
            exe.to_str().unwrap(),
            "wait",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut started = [0u8; 8];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut started)
            .unwrap();
        assert_eq!(&started, b"started\n");
        std::fs::remove_file(&exe).unwrap();
        if swap == "fifo" {
            let made = Command::new("mkfifo").arg(&exe).status().unwrap();
            assert!(made.success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &exe).unwrap();
        }
        drop(child.stdin.take()); // the app's read returns: it faults now
        let (code, err) = finish(child);
        assert_symbolized_segv(code, &err, swap);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_stalled_stdout_reader_does_not_outlive_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    // sendfile to stdout (a pipe nobody reads) goes through the monitor's own writes.
    let dir = probe().parent().unwrap().to_path_buf();
    let vol = format!("{}:/apps", dir.display());
    let guest_probe = format!("/apps/{}", probe().file_name().unwrap().to_str().unwrap());
    let child = umon_cmd()
        .args(["run", "--timeout", "1s", "-v", &vol])
        .arg(probe())
        .args(["sendfile", &guest_probe])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // kept open, never read
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err) = finish(child);
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("umon: app timed out after 1s"), "{err}");
}

#[test]
fn a_stalled_stdout_reader_does_not_outlive_sigterm() {
    if !common::require_kvm() {
        return;
    }
    // As above, with no --timeout: SIGTERM to umon must end the blocked write too.
    let dir = probe().parent().unwrap().to_path_buf();
    let vol = format!("{}:/apps", dir.display());
    let guest_probe = format!("/apps/{}", probe().file_name().unwrap().to_str().unwrap());
    let child = umon_cmd()
        .args(["run", "-v", &vol])
        .arg(probe())
        .args(["sendfile", &guest_probe])
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // kept open, never read
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the pipe to fill and the write to block.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (code, err) = finish(child);
    assert_eq!(code, 143, "{err}");
}

#[test]
fn a_stalled_stderr_reader_does_not_keep_trace_lines_alive_past_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    let mut child = umon_cmd()
        .args(["run", "--trace", "--timeout", "1s"])
        .arg(probe())
        .arg("syscalls")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped()) // kept open, never read until umon ended
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > DEADLINE {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("umon did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(124));
}

/// umon with stderr a pipe whose reader has gone (`umon ... 2>&1 | true`).
fn with_closed_stderr_pipe(args: &[&str]) -> i32 {
    // The write end of a pipe whose only reader, `true`, has exited.
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    let child = umon_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .spawn()
        .unwrap();
    finish(child).0
}

#[test]
fn umons_last_line_on_a_closed_stderr_keeps_the_exit_status() {
    if !common::require_kvm() {
        return;
    }
    let block = c_app("block", Link::StaticPie);
    let fault = c_app("fault", Link::StaticPie);
    assert_eq!(
        with_closed_stderr_pipe(&["run", "--timeout", "300ms", block.to_str().unwrap(), "spin"]),
        124
    );
    assert_eq!(
        with_closed_stderr_pipe(&["run", fault.to_str().unwrap(), "null"]),
        139
    );
    // A usage error and a missing app keep theirs too.
    assert_eq!(with_closed_stderr_pipe(&["run", "/nonexistent/app"]), 127);
}

#[test]
fn a_fifo_is_refused_at_once_as_execve_would() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mon-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("app");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let child = umon_cmd()
        .args(["run", "--timeout", "2s"])
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err) = finish(child);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_without_execute_permission_is_eacces() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mon-noexec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let app = dir.join("hello");
    std::fs::copy(c_app("hello", Link::StaticPie), &app).unwrap();
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // What execve says about it, natively.
    let native = Command::new(&app).output();
    assert_eq!(
        native.map_err(|e| e.raw_os_error()).err(),
        Some(Some(libc::EACCES))
    );
    let out = common::umon(&["run", app.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(common::stdout(&out), "");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn many_unknown_syscall_numbers_keep_notes_and_summary_bounded() {
    if !common::require_kvm() {
        return;
    }
    let out = common::umon(&["run", probe().to_str().unwrap(), "unknown", "20000"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let notes = err.lines().count();
    assert!(notes <= 16, "{notes} notes for 20000 unknown numbers");
    assert!(err.contains("umon: unsupported syscall 1000\n"), "{err}");
    assert!(
        err.lines().last().unwrap().contains("not reported"),
        "{err}"
    );

    let out = common::umon(&[
        "run",
        "--trace=summary",
        probe().to_str().unwrap(),
        "unknown",
        "20000",
    ]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let rows = err.lines().count();
    assert!(
        rows < 100,
        "{rows} lines of summary for 20000 unknown numbers"
    );
    let unknown = err
        .lines()
        .find(|l| l.ends_with("(unknown numbers)"))
        .unwrap_or_else(|| panic!("one row for all unknown numbers: {err}"));
    let calls: u64 = unknown.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(calls, 20000, "{err}");
}

#[test]
fn ram_above_one_namespace_is_usable_by_brk_and_mmap() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("mon_bigheap", Link::StaticPie);
    // 9 GiB reserved (not touched) by mmap and by brk, a few pages touched at the far end.
    let out = common::umon(&["run", "-m", "16G", app.to_str().unwrap(), "9216"]);
    assert_eq!(
        common::stdout(&out),
        "mapped 9216 MiB\nbrk 9216 MiB\n",
        "{}",
        common::stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0));

    // inspect and layout say the arena holds (nearly) all of it.
    let out = common::umon(&["inspect", "-m", "16G", app.to_str().unwrap()]);
    let text = common::stdout(&out);
    let arena = text
        .lines()
        .find_map(|l| l.strip_prefix("heap arena:   "))
        .unwrap_or_else(|| panic!("{text}"));
    let range: Vec<u64> = arena
        .split(' ')
        .next()
        .unwrap()
        .split("..")
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert!(range[1] - range[0] > 15 << 30, "{text}");
    let map = common::stdout(&common::umon(&["layout", "-m", "16G"]));
    assert!(map.contains("heap arena"), "{map}");
}

#[test]
fn ram_no_app_could_use_is_refused() {
    let out = common::umon(&["layout", "-m", "64G"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        common::stderr(&out).contains("memory size 64G is outside 16M..=48G"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn an_unknown_option_before_the_app_is_a_usage_error() {
    let hello = c_app("hello", Link::StaticPie);
    let out = common::umon(&["run", "--bogus", hello.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("unexpected argument '--bogus'"),
        "{}",
        common::stderr(&out)
    );
    if !common::require_kvm() {
        return;
    }
    // After APP everything is the app's, options included.
    let out = common::umon(&["run", hello.to_str().unwrap(), "--bogus", "-m"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("argv[1]=--bogus\nargv[2]=-m\n"),
        "{}",
        common::stdout(&out)
    );
}

#[test]
fn a_closed_stdout_is_a_closed_fd_for_the_app() {
    if !common::require_kvm() {
        return;
    }
    let closed = |prefix: &[&str]| {
        let out = Command::new("sh")
            .args(["-c", "exec \"$@\" >&-", "sh"])
            .args(prefix)
            .arg(probe())
            .arg("closed")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let native = closed(&[]);
    assert_eq!(native.1, "write(1) = -1 EBADF, fcntl(1) = -1 EBADF\n");
    let umon = closed(&[env!("CARGO_BIN_EXE_umon"), "run"]);
    assert_eq!(umon, native);
}
