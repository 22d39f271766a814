//! The process-information calls programs make at start-up (getgroups, getrusage, getpgrp,
//! getpgid, getsid, prctl, sysinfo, socket calls on files, the chown family) give the native
//! answers: the same C program run natively and under umon prints the same lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, s, umon_run, Link};
use common::{require_kvm, stderr, stdout};
use std::path::Path;

#[test]
fn process_information_calls_answer_as_linux() {
    if !require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("info", link);
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("process_info-{link:?}-{}", std::process::id()));
        let (host_dir, guest_dir) = (base.join("native"), base.join("guest"));
        for d in [&host_dir, &guest_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        let want = native(&app, &[s(&host_dir)], &[], b"");
        let volume = format!("{}:/work:rw", s(&guest_dir));
        let got = umon_run(&["-v", &volume], &app, &["/work"], b"");
        assert_eq!(got.status.code(), want.status.code(), "{}", stderr(&got));
        assert_eq!(stdout(&got), stdout(&want), "{link:?}: {}", stderr(&got));
        assert_eq!(stderr(&got), "", "{link:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
