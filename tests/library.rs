//! umon as a library: the Builder API end to end on real KVM — captured output, stdin from a
//! reader, an app from bytes, 8 VMs at once on 8 threads, a kill from another thread, a timeout,
//! and typed errors with their exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;

use common::apps::{c_app, Link};
use std::time::{Duration, Instant};
use umon::{Builder, Capture, Error, ExitStatus, KillHandle, SignalError, SignalHandle};

#[test]
fn output_is_captured_and_status_returned() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::StaticPie);
    let (out, err) = (Capture::new(), Capture::new());
    let report = Builder::new(&hello)
        .args(["one", "two"])
        .env("A", "1")
        .memory(64 << 20)
        .stdout(out.clone())
        .stderr(err.clone())
        .run()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(0));
    assert_eq!(
        out.text(),
        format!(
            "argc=3\nargv[0]={}\nargv[1]=one\nargv[2]=two\nenv[0]=A=1\n",
            hello.display()
        )
    );
    assert!(err.bytes().is_empty());
}

#[test]
fn stdin_comes_from_a_reader_and_apps_from_bytes() {
    if !common::require_kvm() {
        return;
    }
    let cat = std::fs::read(c_app("cat", Link::Static)).unwrap();
    let input: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = Capture::new();
    let report = Builder::from_bytes("cat-from-bytes", cat)
        .stdin(std::io::Cursor::new(input.clone()))
        .stdout(out.clone())
        .stderr(std::io::sink())
        .run()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(0));
    assert_eq!(out.bytes(), input);
}

#[test]
fn eight_vms_run_at_once_on_eight_threads() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::StaticPie);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let hello = hello.clone();
            std::thread::spawn(move || {
                let out = Capture::new();
                let report = Builder::new(&hello)
                    .arg(format!("vm-{i}"))
                    .memory(128 << 20)
                    .stdout(out.clone())
                    .run()
                    .unwrap();
                (report.status, out.text())
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (status, text) = t.join().unwrap();
        assert_eq!(status, ExitStatus::Exited(0), "vm {i}");
        assert!(
            text.contains(&format!("argv[1]=vm-{i}\n")),
            "vm {i}: {text}"
        );
        assert_eq!(text.lines().count(), 3, "vm {i}: {text}");
    }
}

#[test]
fn a_kill_handle_stops_a_spinning_guest_from_another_thread() {
    if !common::require_kvm() {
        return;
    }
    let block = c_app("block", Link::StaticPie);
    let kill = KillHandle::new();
    let out = Capture::new();
    let vm = Builder::new(&block)
        .arg("spin")
        .stdout(out.clone())
        .kill_handle(&kill)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let killer = {
        let kill = kill.clone();
        let out = out.clone();
        std::thread::spawn(move || {
            while out.bytes().is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
            kill.kill();
        })
    };
    let report = vm.run().unwrap();
    killer.join().unwrap();
    assert_eq!(report.status.code(), 137, "{:?}", report.status);
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(out.text(), "started\n");
}

#[test]
fn a_handle_killed_before_the_run_stops_it_at_once() {
    if !common::require_kvm() {
        return;
    }
    let block = c_app("block", Link::StaticPie);
    let kill = KillHandle::new();
    let vm = Builder::new(&block)
        .arg("spin")
        .stdout(std::io::sink())
        .kill_handle(&kill)
        .build()
        .unwrap();
    kill.kill();
    assert_eq!(vm.run().unwrap().status.code(), 137);
}

#[test]
fn timeouts_are_a_status_not_an_error() {
    if !common::require_kvm() {
        return;
    }
    let block = c_app("block", Link::StaticPie);
    let report = Builder::new(&block)
        .arg("sleep")
        .stdout(std::io::sink())
        .timeout(Duration::from_millis(300))
        .run()
        .unwrap();
    assert_eq!(
        report.status,
        ExitStatus::TimedOut(Duration::from_millis(300))
    );
    assert_eq!(report.status.code(), 124);
}

#[test]
fn errors_are_typed_with_exit_codes() {
    if !common::require_kvm() {
        return;
    }
    let e = Builder::new("/nonexistent/app").run().err().unwrap();
    assert!(matches!(
        e,
        umon::Error::Loader(umon::image::LoaderError::AppNotFound { .. })
    ));
    assert_eq!(e.exit_code(), 127);
    let e = Builder::from_bytes("text", b"hello".to_vec())
        .run()
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 126);
    assert_eq!(e.to_string(), "cannot execute 'text'");
    let hello = c_app("hello", Link::StaticPie);
    let e = Builder::new(&hello).memory(3 << 20).run().err().unwrap();
    assert_eq!(e.exit_code(), 125);
}

#[test]
fn a_signal_handle_reaches_the_handler_of_an_embedded_app() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sig_host", Link::StaticPie);
    let signals = SignalHandle::new();
    let out = Capture::new();
    let sigusr2 = libc::SIGUSR2.to_string();
    let vm = Builder::new(&app)
        .args(["count", &sigusr2, "1", "5"])
        .stdout(out.clone())
        .timeout(Duration::from_secs(60))
        .signal_handle(&signals)
        .build()
        .unwrap();
    let sender = {
        let (signals, out) = (signals.clone(), out.clone());
        std::thread::spawn(move || {
            // Once its handler is in place.
            while out.text() != "ready\n" {
                std::thread::sleep(Duration::from_millis(10));
            }
            signals.send(libc::SIGUSR2)
        })
    };
    let report = vm.run().unwrap();
    sender.join().unwrap().unwrap();
    assert_eq!(report.status, ExitStatus::Exited(5));
    assert_eq!(out.text(), "ready\ngot 1\n");
    assert!(matches!(
        signals.send(libc::SIGUSR2),
        Err(Error::Signal(SignalError::Ended))
    ));
    assert!(matches!(
        signals.send(65),
        Err(Error::Signal(SignalError::Invalid(65)))
    ));
}

#[test]
fn a_signal_sent_before_the_build_arrives_before_the_first_instruction() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sig_host", Link::StaticPie);
    let signals = SignalHandle::new();
    signals.send(libc::SIGUSR2).unwrap();
    let out = Capture::new();
    let vm = Builder::new(&app)
        .arg("default")
        .stdout(out.clone())
        .timeout(Duration::from_secs(60))
        .signal_handle(&signals)
        .build()
        .unwrap();
    let own = vm.signal_handle();
    let report = vm.run().unwrap();
    // Its default action, before the app could print anything; a signal from outside adds no
    // report.
    assert_eq!(
        report.status,
        ExitStatus::Signaled {
            signal: libc::SIGUSR2,
            report: String::new()
        }
    );
    assert_eq!(out.text(), "");
    assert!(matches!(
        own.send(libc::SIGUSR2),
        Err(Error::Signal(SignalError::Ended))
    ));
}

/// An embedder whose process keeps SIGPIPE's default action (a C or C++ main, a fuzzer): a
/// guest writing to a pipe nobody reads must get its own SIGPIPE/EPIPE, not kill the host
/// process (it did: exit status 141, silently). The test runs itself again as that process.
#[test]
fn a_guest_broken_pipe_does_not_kill_an_embedder_that_keeps_sigpipe_default() {
    const CHILD: &str = "UMON_TEST_SIGPIPE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // SAFETY: restoring the default action runs no code; this process only runs this.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        let app = common::apps::c_app("exitless", Link::StaticPie);
        let out = Capture::new();
        let report = Builder::new(&app)
            .args(["nonblock", "3"])
            .stdout(out.clone())
            .run()
            .unwrap();
        assert_eq!(report.status, ExitStatus::Exited(0));
        print!("{}", out.text());
        return;
    }
    if !common::require_kvm() {
        return;
    }
    // Built here, so the child only runs it.
    common::apps::c_app("exitless", Link::StaticPie);
    let me = std::env::current_exe().unwrap();
    let child = std::process::Command::new(me)
        .args([
            "--exact",
            "a_guest_broken_pipe_does_not_kill_an_embedder_that_keeps_sigpipe_default",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "the embedding process ended with {:?}: {text}",
        child.status
    );
    assert!(
        text.contains("nonblock: sigpipes 2\nnonblock: bad 0\n"),
        "{text}"
    );
}
