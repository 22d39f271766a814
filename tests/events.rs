//! Event loops compared with Linux: `tests/apps/events.c` (epoll, eventfd, timerfd) in glibc
//! static-pie, glibc static and musl static, natively and under umon; stdout, stderr and the
//! exit status must agree byte for byte. Level and edge triggering, one-shot re-arming, hang-ups,
//! many fds, nested sets and ELOOP, every error in Linux's order, eventfd counters and
//! semaphores, timerfd expirations, signals cutting a blocked wait short, an epoll fd shared
//! with a forked child; a wait blocked forever ended by --timeout; Go's netpoller (pipes,
//! deadlines, timers, os/exec) and Python's selectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use threads_common::{assert_no_differences, differences, same_in_every_variant, Stdin};

fn everywhere(mode: &str) {
    same_in_every_variant("events", &[mode], Stdin::Empty, 0);
}

#[test]
fn epoll_level_edge_and_oneshot_rearmed_with_mod_on_a_pipe() {
    everywhere("level");
}

#[test]
fn epoll_reports_hangup_and_error_and_drops_an_item_with_its_last_fd() {
    everywhere("hup");
}

#[test]
fn epoll_of_300_pipes_reports_exactly_the_ready_ones() {
    everywhere("many");
}

#[test]
fn epoll_of_an_epoll_fd_eloop_and_epollexclusive_rules() {
    everywhere("nested");
}

#[test]
fn epoll_ctl_errors_in_linux_order_and_the_epoll_fd_itself() {
    everywhere("ctlerr");
}

#[test]
fn epoll_wait_rejects_bad_counts_pointers_sigsets_and_timeouts() {
    everywhere("waiterr");
}

#[test]
fn eventfd_counter_semaphore_eagain_overflow_poll_and_proc() {
    everywhere("eventfd");
}

#[test]
fn timerfd_periodic_abstime_gettime_and_errors() {
    everywhere("timerfd");
}

#[test]
fn a_blocked_epoll_wait_is_cut_short_by_a_handled_signal_unless_pwait_blocks_it() {
    everywhere("intr");
}

#[test]
fn an_epoll_fd_inherited_by_a_forked_child_works_there() {
    everywhere("fork");
}

/// An epoll_wait nobody will ever satisfy: --timeout still ends the VM (124), promptly.
#[test]
fn an_epoll_wait_blocked_forever_is_ended_by_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    let app = common::apps::c_app("events", common::apps::Link::StaticPie);
    let t0 = Instant::now();
    let mut child = common::apps::umon_run_cmd(&["--timeout", "1s"], &app, &["block"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("umon did not end a blocked epoll_wait within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(124), "stdout {out} stderr {err}");
    assert_eq!(out, "blocking\n");
    assert_eq!(err, "umon: app timed out after 1s\n");
}

fn go_events() -> Option<PathBuf> {
    if !common::require_kvm() || !threads_common::tool_present("go", "golang-go") {
        return None;
    }
    Some(threads_common::go_build(
        "events_go",
        ".",
        "umontest-events-go",
    ))
}

/// Go's netpoller: os.Pipe ends parked in epoll, read deadlines, time.After and a ticker.
#[test]
fn go_pipes_deadlines_and_timers_through_the_netpoller() {
    let Some(app) = go_events() else {
        return;
    };
    let linux = threads_common::native(&app, &[], Stdin::Empty);
    let umon = threads_common::under_umon(&app, &[], Stdin::Empty);
    assert!(
        String::from_utf8_lossy(&linux.stdout).contains("then read: hello"),
        "{linux:?}"
    );
    assert_no_differences(&differences("go events", &linux, &umon));
}

/// os/exec: fork+exec of /bin/echo and /bin/sh (busybox in a volume at /bin) with their
/// output and input through pipes the netpoller waits on.
#[test]
fn go_os_exec_runs_programs_and_reads_their_output() {
    let Some(app) = go_events() else {
        return;
    };
    let Some(busybox) = common::real::program("/bin/busybox", "busybox-static") else {
        return;
    };
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("events-bin");
    let _ = std::fs::remove_dir_all(&bin);
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    for name in ["echo", "sh"] {
        std::os::unix::fs::symlink("busybox", bin.join(name)).unwrap();
    }
    let linux = threads_common::native(&app, &["exec"], Stdin::Empty);
    let vol = format!("{}:/bin", bin.display());
    let mut cmd = common::apps::umon_run_cmd(
        &["--timeout", threads_common::UMON_TIMEOUT, "-v", &vol],
        &app,
        &["exec"],
    );
    let umon = common::apps::run(&mut cmd, b"");
    assert!(
        String::from_utf8_lossy(&linux.stdout).contains("exit status 3"),
        "{linux:?}"
    );
    assert_no_differences(&differences("go os/exec", &linux, &umon));
}

/// Python's selectors.DefaultSelector is an EpollSelector: a timed-out select, a ready pipe, a
/// modified registration and a hang-up.
#[test]
fn python_selectors_epoll_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let python = Path::new("/usr/bin/python3.11");
    if !python.exists() {
        eprintln!("skipping: this host has no {}", python.display());
        return;
    }
    let script = "import selectors, os, time\n\
        sel = selectors.DefaultSelector()\n\
        print(type(sel).__name__)\n\
        r, w = os.pipe()\n\
        sel.register(r, selectors.EVENT_READ, 'pipe')\n\
        t = time.monotonic()\n\
        print('empty:', sel.select(0.05), time.monotonic() - t >= 0.05)\n\
        os.write(w, b'x')\n\
        print('ready:', [(k.data, e) for k, e in sel.select(1)])\n\
        sel.modify(r, selectors.EVENT_READ, 'again')\n\
        os.close(w)\n\
        print('hup:', [(k.data, e) for k, e in sel.select(1)])\n";
    let linux = Command::new(python)
        .args(["-c", script])
        .env_clear()
        .output()
        .unwrap();
    let mut cmd = common::apps::umon_run_cmd(
        &["--root", "/", "--timeout", "60s"],
        python,
        &["-c", script],
    );
    let umon = common::apps::run(&mut cmd, b"");
    assert!(
        String::from_utf8_lossy(&linux.stdout).contains("EpollSelector"),
        "{linux:?}"
    );
    assert_no_differences(&differences("python selectors", &linux, &umon));
}

/// The `epoll_*` lines of a trace, with addresses (stack pointers differ between runs) made
/// `ADDR` and strace's padding before ` = ` taken out.
fn epoll_lines(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| l.starts_with("epoll_"))
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find("0x") {
                out.push_str(&rest[..i]);
                let hex = rest[i + 2..]
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(rest.len() - i - 2);
                // Short hex (flags, small pointers) stays; addresses go.
                if hex >= 6 {
                    out.push_str("ADDR");
                } else {
                    out.push_str(&rest[i..i + 2 + hex]);
                }
                rest = &rest[i + 2 + hex..];
            }
            out.push_str(rest);
            match out.find(") ") {
                Some(i) if out[i + 1..].trim_start().starts_with("= ") => {
                    format!("{}) {}", &out[..i], out[i + 1..].trim_start())
                }
                _ => out,
            }
        })
        .collect()
}

/// `--trace` decodes epoll_ctl's op and event and the events epoll_wait returns as strace
/// does: checked against the lines strace itself prints for the native run (when strace is
/// installed), and against lines written out here.
#[test]
fn trace_decodes_epoll_events_and_ops_as_strace_does() {
    if !common::require_kvm() {
        return;
    }
    let app = common::apps::c_app("events", common::apps::Link::StaticPie);
    for mode in ["level", "hup", "waiterr"] {
        let out = common::apps::umon_run(&["--trace"], &app, &[mode], b"");
        assert!(out.status.success(), "{mode}: {out:?}");
        let ours = epoll_lines(&String::from_utf8_lossy(&out.stderr));
        assert!(!ours.is_empty(), "{mode}: no epoll lines");
        if mode == "level" {
            for want in [
                "epoll_create1(0) = 5",
                "epoll_ctl(5, EPOLL_CTL_ADD, 3, {events=EPOLLIN, data={u32=7, u64=7}}) = 0",
                "epoll_wait(5, [], 16, 0) = 0",
                "epoll_wait(5, [{events=EPOLLIN, data={u32=7, u64=7}}], 16, 0) = 1",
                "epoll_ctl(5, EPOLL_CTL_MOD, 3, {events=EPOLLIN|EPOLLET, data={u32=8, u64=8}}) = 0",
                "epoll_ctl(5, EPOLL_CTL_DEL, 4, ADDR) = -1 ENOENT (No such file or directory)",
            ] {
                assert!(ours.iter().any(|l| l == want), "no {want:?} in {ours:#?}");
            }
        }
        if mode == "waiterr" {
            for want in [
                "epoll_wait(999, ADDR, 4, 0) = -1 EBADF (Bad file descriptor)",
                "epoll_wait(3, 0x10, 4, 0) = -1 EFAULT (Bad address)",
                "epoll_pwait(3, ADDR, 4, 0, ADDR, 4) = -1 EINVAL (Invalid argument)",
                "epoll_pwait2(3, ADDR, 4, 0x10, NULL, 8) = -1 EFAULT (Bad address)",
            ] {
                assert!(ours.iter().any(|l| l == want), "no {want:?} in {ours:#?}");
            }
            assert!(
                ours.iter()
                    .any(|l| l.starts_with("epoll_pwait2(3, [{events=")
                        && l.ends_with("}], 4, {tv_sec=0, tv_nsec=1000}, [], 8) = 2")),
                "{ours:#?}"
            );
        }
        let strace = Command::new("strace")
            .args([
                "-e",
                "trace=epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,epoll_pwait2",
            ])
            .arg(&app)
            .arg(mode)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let Ok(native) = strace else { continue };
        if !native.status.success() {
            continue;
        }
        let theirs = epoll_lines(&String::from_utf8_lossy(&native.stderr));
        assert_eq!(ours, theirs, "{mode}: umon --trace vs strace");
    }
}

#[test]
fn a_signalfd_in_epoll_level_edge_oneshot_and_woken_by_another_thread_s_kill() {
    same_in_every_variant("events_virtual", &["sigfd"], Stdin::Empty, 0);
}

#[test]
fn proc_files_in_epoll_poll_as_on_linux_or_are_eperm() {
    same_in_every_variant("events_virtual", &["proc"], Stdin::Empty, 0);
}

#[test]
fn an_events_array_epoll_cannot_write_leaves_edge_and_oneshot_events_queued() {
    same_in_every_variant("events_virtual", &["efault"], Stdin::Empty, 0);
}
