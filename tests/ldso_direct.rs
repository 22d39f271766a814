//! glibc's `ld.so` run as the program (`umon run --root / /lib64/ld-linux-x86-64.so.2 prog`):
//! `ld.so` maps a non-PIE program (`gcc -no-pie`: ET_EXEC linked at 0x400000) itself, with
//! MAP_FIXED at its link address, as it does natively. So the low user range where ET_EXEC
//! programs load takes MAP_FIXED (and MAP_FIXED_NOREPLACE) file and anonymous mappings, with
//! the arena's demand paging, protections and `/proc/self/maps` lines. Each case is compared
//! with its native run byte for byte (stdout, stderr, exit status); `/proc/self/maps` lines of
//! the low range are compared with their addresses, which are the link address and fixed
//! addresses in both runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{built, c_app, native, run, s, umon_run, umon_run_cmd, Link};
use common::{stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// glibc's interpreter, as its programs' PT_INTERP names it.
const GLIBC_LDSO: &str = "/lib64/ld-linux-x86-64.so.2";

/// The environment of both runs.
const ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("TZ", "UTC")];

/// Whether the host has glibc's ld.so (the tests skip without it, saying so).
fn have_ldso() -> bool {
    let there = Path::new(GLIBC_LDSO).exists();
    if !there {
        eprintln!("skipping: this host has no {GLIBC_LDSO}");
    }
    there
}

/// `tests/apps/NAME.c` built as `gcc -O2 -no-pie` (ET_EXEC at 0x400000, PT_INTERP) or, with
/// `pie`, as gcc's default PIE.
fn dynamic_app(name: &str, pie: bool) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/apps/{name}.c"));
    let key = format!("{name}-ldso-{}", if pie { "pie" } else { "no-pie" });
    let app = built(&key, |out| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O2", "-g", "-Wall"]);
        cmd.arg(if pie { "-pie" } else { "-no-pie" });
        cmd.arg("-o").arg(out).arg(&src);
        cmd
    });
    // What the test is about: check the build gave the ELF type it means.
    let bytes = std::fs::read(&app).unwrap();
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert_eq!(e_type, if pie { 3 } else { 2 }, "{name}: ELF type");
    app
}

/// `ld.so args` under `umon run --root /`, with `dir` (the apps' directory) granted at its own
/// host path (the private `/tmp` would hide it otherwise).
fn under_umon(args: &[&str], dir: Option<&Path>) -> Output {
    let mut opts: Vec<String> = ["--root", "/", "--timeout", "60s"].map(String::from).into();
    if let Some(d) = dir {
        opts.push("-v".into());
        opts.push(format!("{}:{}", s(d), s(d)));
    }
    for (k, v) in ENV {
        opts.push("-e".into());
        opts.push(format!("{k}={v}"));
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    run(&mut umon_run_cmd(&opts, GLIBC_LDSO, args), b"")
}

/// Run `ld.so args` natively and under umon and require the same stdout, stderr and exit
/// status; returns the native run.
fn same(what: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let linux = native(GLIBC_LDSO, args, ENV, b"");
    let umon = under_umon(args, dir);
    assert_eq!(
        stderr(&umon),
        stderr(&linux),
        "{what}: stderr differs (stdout under umon: {:?})",
        stdout(&umon)
    );
    assert_eq!(stdout(&umon), stdout(&linux), "{what}: stdout differs");
    assert_eq!(
        umon.status.code(),
        linux.status.code(),
        "{what}: exit status"
    );
    linux
}

/// `text` with every `(0x...)` load address blanked (ASLR natively, umon's places under umon).
fn blank(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("(0x") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(')').map_or(rest.len(), |e| i + e + 1);
        out.push_str("(ADDR)");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn a_non_pie_program_run_through_ld_so_runs_as_natively() {
    if !common::require_kvm() || !have_ldso() {
        return;
    }
    let app = dynamic_app("hello", false);
    let dir = app.parent();
    let out = same("ld.so hello", &[s(&app), "one", "two words"], dir);
    assert!(stdout(&out).contains("argv[2]=two words"), "{out:?}");
    // `ld.so --list` of it: the same libraries, load addresses aside.
    let args = ["--list", s(&app)];
    let linux = native(GLIBC_LDSO, &args, ENV, b"");
    let umon = under_umon(&args, dir);
    assert_eq!(stderr(&umon), stderr(&linux), "--list: stderr");
    assert_eq!(umon.status.code(), linux.status.code(), "--list: status");
    assert_eq!(
        blank(&stdout(&umon)),
        blank(&stdout(&linux)),
        "--list: stdout"
    );
    assert!(stdout(&linux).contains("libc.so.6 => "), "{linux:?}");
}

#[test]
fn a_pie_program_run_through_ld_so_still_runs_as_natively() {
    if !common::require_kvm() || !have_ldso() {
        return;
    }
    let app = dynamic_app("hello", true);
    let dir = app.parent();
    let out = same("ld.so pie hello", &[s(&app), "a", "b"], dir);
    assert!(stdout(&out).contains("argv[1]=a"), "{out:?}");
}

/// The non-PIE program's own lines in `/proc/self/maps` (where ld.so mapped it, at its link
/// address), MAP_FIXED anonymous and file mappings beside it, NOREPLACE, a hint, mprotect,
/// munmap and the SIGSEGV after it: all the same as natively, addresses included.
#[test]
fn low_range_mappings_of_a_non_pie_program_under_ld_so_match_natively() {
    if !common::require_kvm() || !have_ldso() {
        return;
    }
    let app = dynamic_app("low_fixed", false);
    let dir = app.parent();
    let out = same("ld.so low_fixed", &[s(&app), s(&app)], dir);
    let text = stdout(&out);
    assert!(
        text.contains("maps: 00400000-00401000 r--p 00000000 "),
        "{text}"
    );
    assert!(text.contains("file starts ELF"), "{text}");
    assert!(text.contains("signal 11 code 1 addr 0x1001000"), "{text}");
}

/// A static program maps the low range with MAP_FIXED itself (nothing of the static-pie lies
/// there natively either: the kernel puts a PIE far above it), as natively; MAP_FIXED below
/// 0x400000 stays ENOMEM under umon.
#[test]
fn map_fixed_into_the_low_range_works_for_a_static_program() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("low_fixed", Link::StaticPie);
    let dir = app.parent().unwrap();
    let vol = format!("{}:{}", s(dir), s(dir));
    let linux = native(&app, &[s(&app)], ENV, b"");
    let umon = umon_run(&["-v", &vol], &app, &[s(&app)], b"");
    assert_eq!(stderr(&umon), stderr(&linux), "stderr");
    assert_eq!(stdout(&umon), stdout(&linux), "stdout");
    assert_eq!(umon.status.code(), linux.status.code(), "status");
    let text = stdout(&linux);
    assert!(text.contains("fixed: 0x1000000\n"), "{text}");
    assert!(text.contains("signal 11 code 1 addr 0x1001000"), "{text}");
    // Natively 0x200000 is free user memory (mmap_min_addr is 64 KiB), so Linux maps it; under
    // umon it is the core's own 2 MiB, which no mapping may ever take: not compared, umon's
    // answer asserted.
    let umon = umon_run(&[], &app, &["core"], b"");
    assert_eq!(stdout(&umon), "core: Cannot allocate memory\n", "{umon:?}");
    assert_eq!(umon.status.code(), Some(0));
}

/// The host's Python is a non-PIE program on Debian: run through ld.so it is mapped at
/// 0x400000 by ld.so, and runs as natively (skipped without /usr/bin/python3).
#[test]
fn the_hosts_python_run_through_ld_so_runs_as_natively() {
    if !common::require_kvm() || !have_ldso() {
        return;
    }
    let python = "/usr/bin/python3";
    if !Path::new(python).exists() {
        eprintln!("skipping: this host has no {python}");
        return;
    }
    let code =
        "import json, hashlib; print(json.dumps({'a': [1, 2]}), hashlib.sha256(b'x').hexdigest())";
    same("ld.so python3", &[python, "-c", code], None);
}
