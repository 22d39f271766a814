//! The boot issue's behaviour, shown by real guests on real KVM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
use common::{require_kvm, stderr, stdout, umon};

#[test]
fn selftest_verifies_layout_from_inside_the_guest() {
    if !require_kvm() {
        return;
    }
    let out = umon(&["selftest"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("9 layout checks passed"), "{text}");
    // page 0, the low boot page, the Debug area and one past RAM in each of the three windows
    // (6); stores to the core's image at its own address and, in each window, to its GDT, IDT,
    // TSS, page tables and image (16): nothing at CPL0 can rewrite the core.
    assert!(text.contains("22 expected faults caught"), "{text}");
}

#[test]
fn selftest_holds_for_other_memory_sizes() {
    if !require_kvm() {
        return;
    }
    for size in ["16M", "130M", "3G"] {
        let out = umon(&["selftest", "--memory", size]);
        assert_eq!(out.status.code(), Some(0), "{size}: {}", stderr(&out));
        assert!(stdout(&out).contains("layout checks passed"), "{size}");
    }
}

#[test]
fn a_million_syscall_round_trips_from_cpl3_all_return_the_right_value() {
    if !require_kvm() {
        return;
    }
    let out = umon(&["selftest", "--syscall-loop", "1000000"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("1000000 syscall round trips from CPL3, every result correct"));
}

#[test]
fn boot_only_exits_zero() {
    if !require_kvm() {
        return;
    }
    let out = umon(&["boot"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn layout_prints_the_osv_windows_for_the_given_size() {
    let out = umon(&["layout", "--memory", "2G"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "0x0000000000200000 .. 0x0000000000400000  core image",
        "0x0000100000000000 .. 0x0000100200000000  s_program",
        "0xffff800000000000 .. 0xffff800080000000  Main area",
        "0xffff900000000000 .. 0xffff900080000000  Page area",
        "0xffffa00000000000 .. 0xffffa00080000000  Mempool area",
        "0xffffb00000000000 .. 0xffffffffffffffff  Debug area",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn bad_memory_size_is_one_line_and_exit_2() {
    let out = umon(&["selftest", "--memory", "lots"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");
    assert!(stderr(&out).contains("invalid size 'lots'"));
    let out = umon(&["selftest", "--memory", "1M"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("umon: invalid configuration: memory size 1M"),
        "{err}"
    );
}

#[test]
fn corrupt_or_missing_kernel_is_one_line_and_exit_125() {
    if !require_kvm() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("umon-test-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("not-elf");
    std::fs::write(&text, b"this is not an ELF file\n").unwrap();
    for (path, needle) in [
        (text.to_str().unwrap(), "not a valid ELF"),
        (
            "/nonexistent/core.elf",
            "cannot read guest core /nonexistent/core.elf",
        ),
        ("/bin/true", "is outside"),
    ] {
        let out = umon(&["selftest", "--kernel", path]);
        assert_eq!(out.status.code(), Some(125), "{path}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{path}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
