//! The CLI's inspection tools: `umon inspect` (no KVM needed) and `umon run --trace`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;

use common::apps::{c_app, Link};
use std::process::Command;

fn umon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(args)
        .output()
        .unwrap()
}

/// e_entry straight from the ELF header, to check inspect against.
fn elf_entry(path: &std::path::Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    u64::from_le_bytes(b[24..32].try_into().unwrap())
}

#[test]
fn inspect_shows_placement_without_running() {
    let pie = c_app("hello", Link::StaticPie);
    let out = umon(&["inspect", pie.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("kind:         static-pie"), "{text}");
    let ns = 0x1004_0000_0000u64;
    assert!(
        text.contains(&format!("entry:        {:#x}\n", ns + elf_entry(&pie))),
        "{text}"
    );
    assert!(text.contains(" r-x "), "{text}");
    assert!(text.contains(" rw- "), "{text}");
    assert!(
        text.contains("stack:        0x1005ff800000..0x100600000000 (8M)"),
        "{text}"
    );

    let st = c_app("hello", Link::Static);
    let out = umon(&["inspect", "-m", "64M", st.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("kind:         static (ET_EXEC)"), "{text}");
    assert!(
        text.contains(&format!("entry:        {:#x}\n", elf_entry(&st))),
        "{text}"
    );
    assert!(text.contains("of 64M guest RAM"), "{text}");
}

#[test]
fn inspect_refuses_like_run() {
    let dynamic = c_app("hello", Link::Dynamic);
    let out = umon(&["inspect", dynamic.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("its interpreter /") && err.contains("is not in the guest's file view"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    assert_eq!(umon(&["inspect", "/nonexistent"]).status.code(), Some(127));
}

#[test]
fn trace_prints_syscalls_like_strace() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::StaticPie);
    let out = umon(&["run", "--trace", hello.to_str().unwrap(), "x"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(err.contains("\narch_prctl(ARCH_SET_FS, 0x"), "{err}");
    assert!(err.contains("write(1, \"argc=2\\nargv[0]="), "{err}");
    assert!(
        err.contains("rseq(") && err.contains("= -1 ENOSYS"),
        "{err}"
    );
    assert_eq!(lines.last(), Some(&"+++ exited with 0 +++"), "{err}");
    assert!(
        lines.iter().any(|l| l.starts_with("exit_group(0) = ?")),
        "{err}"
    );
    // The app's own output is untouched.
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("argc=2\n"));
}

#[test]
fn trace_summary_counts_calls() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::Static);
    let out = umon(&["run", "--trace=summary", hello.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("% time     seconds  usecs/call     calls    errors syscall\n"));
    let write = err
        .lines()
        .find(|l| l.ends_with(" write"))
        .expect("a write row");
    let calls: u64 = write.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(calls, 1, "{err}");
    assert!(err.lines().last().unwrap().ends_with(" total"), "{err}");
}

#[test]
fn syscalls_lists_the_served_calls_from_the_table() {
    let out = umon(&["syscalls"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, umon::linux::table::render());
    let names: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    for name in ["read", "openat", "futex", "exit_group"] {
        assert!(names.contains(&name), "{name} missing from:\n{text}");
    }
    assert!(!names.contains(&"kexec_load"), "kexec_load is not served");
}

/// An APP without a slash is looked up in umon's PATH as a shell would; argv[0] stays as
/// given; a name found nowhere fails with exit 127 and one line.
#[test]
fn run_finds_a_bare_name_in_path() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("hello", Link::StaticPie);
    let dir = app.parent().unwrap();
    let name = app.file_name().unwrap().to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(["run", name, "x"])
        .env("PATH", format!("/nonexistent:{}", dir.display()))
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("argv[0]={name}\n")), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_umon"))
        .args(["run", "no-such-program-anywhere"])
        .env("PATH", dir)
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "umon: cannot run 'no-such-program-anywhere': no such file\n"
    );
}
