//! Pipes within one process compared with Linux: `tests/apps/pipe_ops.c` in glibc static-pie,
//! glibc static and musl static, natively and under umon; stdout, stderr and the exit status
//! must agree byte for byte. Producer/consumer threads with checksums, EOF, EPIPE and SIGPIPE,
//! O_NONBLOCK, capacity and F_SETPIPE_SZ, packet mode, poll, splice/tee/vmsplice, signals
//! interrupting blocked reads and writes, fstat/dup/pipe2 flags; a read blocked forever ended
//! by --timeout; busybox sh reading a here-document through a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use threads_common::{same_in_every_variant, Stdin};

fn everywhere(mode: &str) {
    same_in_every_variant("pipe_ops", &[mode], Stdin::Empty, 0);
}

#[test]
fn threads_stream_16_mib_through_a_pipe_in_64_kib_writes_with_matching_checksums() {
    everywhere("stream");
}

#[test]
fn eof_comes_when_every_write_end_is_closed_and_readv_writev_move_across_buffers() {
    everywhere("eof");
}

#[test]
fn a_write_without_reader_is_epipe_when_sigpipe_is_ignored_handled_or_blocked() {
    everywhere("epipe");
}

#[test]
fn a_write_without_reader_kills_with_sigpipe_by_default() {
    same_in_every_variant("pipe_ops", &["sigpipe"], Stdin::Empty, 128 + 13);
}

#[test]
fn nonblocking_ends_answer_eagain_and_fcntl_fionbio_switch_it() {
    everywhere("nonblock");
}

#[test]
fn capacity_and_f_setpipe_sz_round_and_limit_as_linux() {
    everywhere("capacity");
}

#[test]
fn packet_mode_keeps_one_packet_per_write() {
    everywhere("packet");
}

#[test]
fn poll_reports_pipe_readiness_hangup_and_error_as_linux() {
    everywhere("poll");
}

#[test]
fn select_and_pselect6_on_pipe_ends_as_linux() {
    everywhere("select");
}

#[test]
fn splice_tee_and_vmsplice_move_bytes_and_fail_as_linux() {
    everywhere("splice");
}

#[test]
fn a_blocked_pipe_read_is_cut_short_by_a_handled_signal_or_restarted() {
    everywhere("intr");
}

#[test]
fn fstat_dup_and_pipe2_flags_as_linux() {
    everywhere("misc");
}

/// A read nobody will ever satisfy: --timeout still ends the VM (124), promptly.
#[test]
fn a_read_blocked_forever_is_ended_by_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    let app = common::apps::c_app("pipe_ops", common::apps::Link::StaticPie);
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
            panic!("umon did not end a blocked pipe read within 30 s");
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

/// busybox ash writes a small here-document into a pipe itself (no fork below PIPE_BUF) and
/// the builtin `read` takes it from there.
#[test]
fn busybox_sh_reads_a_here_document_through_a_pipe() {
    if !common::require_kvm() {
        return;
    }
    let Some(busybox) = common::real::program("/bin/busybox", "busybox-static") else {
        return;
    };
    let script = "n=0\nwhile read -r l; do n=$((n + 1)); echo \"$n: $l\"; done <<EOF\n\
                  first line\nsecond $((6 * 7))\n  third\nEOF\necho done $n";
    let args = ["sh", "-c", script];
    let linux = common::real::native("heredoc", &busybox, &args, b"");
    let (umon, notes) = common::real::under_umon("heredoc", &busybox, &args, b"");
    assert!(notes.is_empty(), "unsupported calls: {notes:?}");
    assert_eq!(
        String::from_utf8_lossy(&linux.stdout),
        String::from_utf8_lossy(&umon.stdout)
    );
    assert_eq!(linux.stderr, umon.stderr);
    assert_eq!((linux.status, umon.status), (0, 0));
    assert!(String::from_utf8_lossy(&umon.stdout).contains("2: second 42\n3: third\ndone 3"));
}
