//! A hostile guest: `tests/apps/hostile.c` attacks its kernel through raw `syscall` instructions
//! (bad pointers, wrapping lengths, 2^63 sizes, random numbers and arguments, memory exhaustion,
//! privileged instructions, the core's memory and ports), and a hand-assembled guest core
//! triple-faults or exits in ways umon has no meaning for. Whatever the guest does, umon answers
//! like Linux or ends the VM with one line and the documented code; it never panics.
//!
//! Where Linux can be asked, it is: the same program runs natively and must print the same
//! verdicts. The random-syscall run is umon-only (natively it would run random syscalls on the
//! host). The `bug` tests replay calls that once broke the monitor (panics, monitor stack
//! copied to the guest, exit 125 for an app's fault); a bug found later gets its test here,
//! `#[ignore = "umon bug: ..."]` until it is fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, s, umon_run, Link};
use common::{stderr, stdout};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the app's read checks find on stdin.
const STDIN: &[u8] = b"hostile stdin\n";

fn hostile() -> PathBuf {
    c_app("hostile", Link::StaticPie)
}

/// `umon run OPTS... hostile ARGS...` with [`STDIN`]; the monitor must not have panicked.
fn under_umon(opts: &[&str], args: &[&str]) -> Output {
    let out = umon_run(opts, hostile(), args, STDIN);
    let err = stderr(&out);
    assert!(
        !err.contains("panicked"),
        "umon panicked on hostile {args:?}: {err}"
    );
    out
}

/// `hostile ARGS...` natively, with [`STDIN`].
fn on_linux(args: &[&str]) -> Output {
    native(hostile(), args, &[], STDIN)
}

/// stderr without umon's notes about unsupported syscalls (they go with the numbers tried).
fn stderr_without_notes(o: &Output) -> String {
    stderr(o)
        .lines()
        .filter(|l| !l.starts_with("umon: unsupported syscall "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The verdict lines both runs must agree on, and that every check passed.
fn assert_same_verdicts(what: &str, linux: &Output, umon: &Output) {
    let (l, u) = (stdout(linux), stdout(umon));
    assert_eq!(
        linux.status.code(),
        Some(0),
        "{what} natively:\n{l}{}",
        stderr(linux)
    );
    assert!(
        !l.contains("FAIL"),
        "{what}: the app's own expectations are wrong on Linux:\n{l}"
    );
    let diff: Vec<String> = l
        .lines()
        .zip(u.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  linux: {a}\n  umon:  {b}"))
        .collect();
    assert!(
        diff.is_empty() && l.lines().count() == u.lines().count(),
        "{what}: umon differs from Linux:\n{}\n(umon: exit {:?}, stderr {})",
        diff.join("\n"),
        umon.status.code(),
        stderr(umon)
    );
    assert_eq!(umon.status.code(), Some(0), "{what}: {}", stderr(umon));
}

#[test]
fn bad_pointers_lengths_and_sizes_get_linux_answers() {
    if !common::require_kvm() {
        return;
    }
    let linux = on_linux(&["checks"]);
    let umon = under_umon(&[], &["checks", "umon"]);
    assert_same_verdicts("checks", &linux, &umon);
    // The same with the monitor's seccomp filter off: the filter changes nothing the app sees.
    let unconfined = under_umon(&["--no-seccomp"], &["checks", "umon"]);
    assert_eq!(stdout(&unconfined), stdout(&umon));
    let last = stdout(&umon).lines().last().unwrap_or_default().to_owned();
    let run: u32 = last
        .strip_prefix("checks: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {last:?}"));
    assert!(run >= 140, "only {run} checks ran: {last}");
    assert_eq!(last, format!("checks: {run} run, 0 failed"));
    // The only stderr lines: the notes for the three syscall numbers Linux does not have.
    assert_eq!(
        stderr(&umon),
        "umon: unsupported syscall 500\n\
         umon: unsupported syscall 4294967295\n\
         umon: unsupported syscall 1073741824\n"
    );
}

#[test]
fn answers_that_differ_from_linux() {
    if !common::require_kvm() {
        return;
    }
    // munmap/madvise in the kernel half succeed; futex wake checks neither the address nor its
    // alignment; writev of two 2^62 lengths is EINVAL, not EFAULT; a 298-byte path component is
    // not ENAMETOOLONG; poll's nfds keeps its high bits; a syscall number with high bits in rax
    // is not the number in eax; write of 0 bytes at a kernel address is not EFAULT.
    let linux = on_linux(&["divergent"]);
    let umon = under_umon(&[], &["divergent"]);
    assert_same_verdicts("divergent", &linux, &umon);
}

#[test]
fn mmap_until_enomem_then_free_and_map_again() {
    if !common::require_kvm() {
        return;
    }
    let linux = on_linux(&["exhaust"]);
    let umon = under_umon(&["-m", "64M"], &["exhaust", "umon"]);
    let mapped = stdout(&umon)
        .lines()
        .find_map(|l| l.strip_prefix("exhaust: umon mapped "))
        .and_then(|l| l.strip_suffix(" MiB"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no total: {}", stdout(&umon)));
    // MAP_NORESERVE mappings cost no memory until touched: like Linux, umon runs out of
    // address space, far beyond the guest's 64 MiB.
    assert!(
        mapped > 1 << 20,
        "a 64 MiB guest mapped only {mapped} MiB before ENOMEM"
    );
    // Everything else is the same as on Linux.
    let mut u = umon;
    u.stdout = stdout(&u)
        .lines()
        .filter(|l| !l.starts_with("exhaust: umon mapped"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes();
    assert_same_verdicts("exhaust", &linux, &u);
    assert_eq!(stderr(&u), "");
}

/// How many random syscalls: `UMON_HOSTILE_CALLS`, else 100 000 (about 3 s; a million takes
/// about 35 s with a debug build and works the same).
fn random_calls() -> u64 {
    std::env::var("UMON_HOSTILE_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

fn assert_random_run(seed: &str, calls: u64) {
    let n = calls.to_string();
    let out = under_umon(&[], &["random", &n, seed]);
    assert_eq!(
        stdout(&out),
        format!("random: {calls} calls, all results valid\n"),
        "seed {seed}: exit {:?}, stderr {}",
        out.status.code(),
        stderr_without_notes(&out)
    );
    assert_eq!(out.status.code(), Some(0), "seed {seed}");
    assert_eq!(
        stderr_without_notes(&out),
        "",
        "seed {seed}: only unsupported-syscall notes may appear"
    );
    let notes = stderr(&out).lines().count();
    eprintln!("seed {seed}: {calls} random syscalls, {notes} unsupported numbers noted");
}

#[test]
fn random_syscalls_never_break_the_monitor() {
    if !common::require_kvm() {
        return;
    }
    assert_random_run("1", random_calls());
    assert_random_run("0x5eed", random_calls() / 10);
}

/// Every file, directory and symlink under `dir`: path, mode, contents or target.
fn tree(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_dir() {
                todo.push(p.clone());
                Vec::new()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.push((p, m.permissions().mode(), data));
        }
    }
    out.sort();
    out
}

/// Give back what a random chmod took, so the directory can be removed.
fn restore_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            restore_permissions(&e.path());
        }
    }
}

#[test]
fn random_syscalls_on_volumes_stay_inside_them() {
    if !common::require_kvm() {
        return;
    }
    // A writable volume at /data and a read-only one at /ro, with symlinks pointing out of
    // them, next to a directory the guest must never change. The random run's path arguments
    // name these files (see hostile.c).
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-volumes-{}", std::process::id()));
    let (vol, ro, outside) = (root.join("vol"), root.join("ro"), root.join("outside"));
    std::fs::create_dir_all(vol.join("dir")).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"outside every volume\n").unwrap();
    std::fs::write(vol.join("file"), b"hello volume\n").unwrap();
    std::fs::write(vol.join("dir/inner"), b"inner\n").unwrap();
    std::fs::write(ro.join("file"), b"read-only\n").unwrap();
    std::os::unix::fs::symlink("..", vol.join("dir/up")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", vol.join("link-out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), vol.join("abs-out")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", ro.join("link-out")).unwrap();
    let (outside_before, ro_before) = (tree(&outside), tree(&ro));

    let calls = random_calls().to_string();
    let (v, r) = (format!("{}:/data:rw", s(&vol)), format!("{}:/ro", s(&ro)));
    // Files may not grow past 64 MiB (EFBIG instead of SIGXFSZ), so no input fills the disk.
    let mut cmd = Command::new("prlimit");
    cmd.args(["--fsize=67108864", "env", "--ignore-signal=XFSZ"])
        .arg(env!("CARGO_BIN_EXE_umon"))
        .args(["run", "-v", &v, "-v", &r, "-w", "/data"])
        .arg(hostile())
        .args(["random", &calls, "0xf11e"]);
    let out = common::apps::run(&mut cmd, b"");

    assert_eq!(
        tree(&outside),
        outside_before,
        "the guest changed files outside"
    );
    assert_eq!(
        tree(&ro),
        ro_before,
        "the guest changed the read-only volume"
    );
    let err = stderr_without_notes(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        stdout(&out),
        format!("random: {calls} calls, all results valid\n"),
        "exit {:?}, stderr {err}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(err, "", "only unsupported-syscall notes may appear");
    restore_permissions(&root);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
#[ignore = "slow (about 35 s): a million random syscalls; run with --ignored"]
fn a_million_random_syscalls() {
    if !common::require_kvm() {
        return;
    }
    assert_random_run("7", 1_000_000);
}

/// `hostile probe KIND ARG` dies of `signal` natively and under umon, where the status is
/// 128 + signal and stderr is one line naming the signal.
fn assert_killed(kind: &str, arg: &str, signal: i32, name: &str) {
    let args = ["probe", kind, arg];
    let linux = on_linux(&args);
    assert_eq!(
        linux.status.signal(),
        Some(signal),
        "probe {kind} {arg} natively: {:?} {}",
        linux.status,
        stdout(&linux)
    );
    let umon = under_umon(&[], &args);
    let err = stderr(&umon);
    assert_eq!(
        umon.status.code(),
        Some(128 + signal),
        "probe {kind} {arg}: {err}"
    );
    assert!(
        err.starts_with(&format!("umon: app killed by {name}: ")) && err.lines().count() == 1,
        "probe {kind} {arg}: want one line naming {name}, got {err:?}"
    );
    assert_eq!(stdout(&umon), format!("probe: {kind} {arg}\n"));
    assert_eq!(stdout(&linux), stdout(&umon));
}

#[test]
fn the_core_the_kernel_half_and_own_text_are_out_of_reach() {
    if !common::require_kvm() {
        return;
    }
    let segv = (libc::SIGSEGV, "SIGSEGV");
    for (kind, addr) in [
        ("read", "0"),
        ("write", "0"),
        ("exec", "0"),
        ("read", "1000"),             // GDT (guest-physical page 1)
        ("write", "4000"),            // BootInfo
        ("write", "100000"),          // page tables
        ("read", "200000"),           // the core's text
        ("write", "200000"),          //
        ("exec", "200000"),           //
        ("read", "ffff800000000000"), // Main window: all guest RAM
        ("write", "ffff800000001000"),
        ("exec", "ffff800000200000"),
        ("read", "ffff900000000000"), // Page window
        ("read", "ffffa00000000000"), // Mempool window
        ("read", "ffffb00000000000"), // Debug area
        ("read", "800000000000"),     // non-canonical (#GP)
        ("write", "text"),            // the program's own text and rodata are read-only
        ("write", "rodata"),
    ] {
        assert_killed(kind, addr, segv.0, segv.1);
    }
}

#[test]
fn privileged_instructions_and_hypercall_ports_fault_like_on_linux() {
    if !common::require_kvm() {
        return;
    }
    for insn in ["hlt", "cli", "rdmsr", "sysret", "kernel-ds"] {
        assert_killed("insn", insn, libc::SIGSEGV, "SIGSEGV");
    }
    assert_killed("insn", "ud2", libc::SIGILL, "SIGILL");
    assert_killed("insn", "int3", libc::SIGTRAP, "SIGTRAP");
    // The single-step trap of a syscall made with TF set lands after the syscall, in the app.
    assert_killed("insn", "tf-syscall", libc::SIGTRAP, "SIGTRAP");
    // The core's hypercalls (exit, abort, enter-user, ...) are not the app's to make. 0xe6, the
    // syscall port, is left out: on PVM it is open to CPL3 by design (the syscall stub runs
    // there), so an `out` to it is a syscall; `in` from it is tested below.
    for port in ["e0", "e1", "e2", "e3", "e4", "e5", "e7", "e8", "80"] {
        assert_killed("out", port, libc::SIGSEGV, "SIGSEGV");
        assert_killed("in", port, libc::SIGSEGV, "SIGSEGV");
    }
}

#[test]
fn in_from_the_syscall_port_is_the_apps_fault() {
    if !common::require_kvm() {
        return;
    }
    assert_killed("in", "e6", libc::SIGSEGV, "SIGSEGV");
}

/// `hostile bug NAME` prints Linux's answer natively and must print the same under umon.
fn assert_bug_fixed(name: &str) {
    let linux = on_linux(&["bug", name]);
    let umon = under_umon(&[], &["bug", name]);
    assert_eq!(stdout(&umon), stdout(&linux), "{}", stderr(&umon));
    assert_eq!(umon.status.code(), Some(0));
}

#[test]
fn mremap_of_a_huge_old_length_is_einval() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("mremap-old-len-max");
}

#[test]
fn mremap_of_zero_bytes_below_the_heap_is_einval() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("mremap-old-len-0");
}

#[test]
fn mmap_fixed_noreplace_near_the_top_is_enomem() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("mmap-noreplace-near-top");
}

#[test]
fn alarm_clocks_are_served_or_refused_never_a_panic() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("clock-gettime-alarm");
    assert_bug_fixed("clock-nanosleep-alarm");
}

#[test]
fn clock_getres_of_an_alarm_clock_never_returns_monitor_stack() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("clock-getres-alarm");
}

#[test]
fn clock_tai_reads_like_on_linux() {
    if !common::require_kvm() {
        return;
    }
    assert_bug_fixed("clock-tai");
}

// ---- a hostile guest core ---------------------------------------------------------------------

/// A guest core in GNU assembler: what `umon` needs of a core (the vector and syscall-stub
/// symbols, a page-aligned `.user_text`), and an entry point that does what MODE says.
const CORE_S: &str = r#"
    .section .text
    .globl _start
_start:
.if MODE == 0           # no IDT: the first exception is a triple fault
    lidt zero_idt(%rip)
    ud2
.elseif MODE == 1
    hlt
.elseif MODE == 2
    inb $0x80, %al
.elseif MODE == 3       # hypercall 0 does not exist
    outb %al, $0xe0
.elseif MODE == 4       # one past the hypercall ports (0xe0 + HYPERCALL_MAX)
    outb %al, $0xeb
.elseif MODE == 5       # exception 6 with umon's IDT: the vector is a hlt
    ud2
.elseif MODE == 6       # the same on an unmapped stack: the IST stack takes the frame
    xor %esp, %esp
    ud2
.endif
    jmp _start
    .balign 16
    .globl umon_vectors
umon_vectors:
    .rept 32
    hlt
    .balign 16
    .endr
    .section .user_text, "ax"
    .globl umon_syscall_entry
umon_syscall_entry:
    ud2
    .section .data
zero_idt:
    .word 0
    .quad 0
"#;

const CORE_LD: &str = r#"
ENTRY(_start)
SECTIONS
{
  . = 0x200000;
  .text : { *(.text) }
  . = ALIGN(4096);
  .user_text : { umon_user_text_start = .; *(.user_text) . = ALIGN(4096); umon_user_text_end = .; }
  .data : ALIGN(4096) { *(.data) }
  /DISCARD/ : { *(.note*) }
}
"#;

fn run_tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (binutils' as and ld are needed)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The core of [`CORE_S`] for `mode`, assembled and linked into this suite's scratch directory.
fn hostile_core(mode: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-core-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, script) = (dir.join("core.S"), dir.join("core.ld"));
    let (obj, elf) = (dir.join("core.o"), dir.join("core.elf"));
    std::fs::write(&src, CORE_S).unwrap();
    std::fs::write(&script, CORE_LD).unwrap();
    run_tool(
        Command::new("as")
            .arg("--defsym")
            .arg(format!("MODE={mode}"))
            .arg("-o")
            .arg(&obj)
            .arg(&src),
    );
    run_tool(
        Command::new("ld")
            .args(["-static", "-nostdlib", "--build-id=none", "-T"])
            .arg(&script)
            .arg("-o")
            .arg(&elf)
            .arg(&obj),
    );
    elf
}

#[test]
fn triple_fault_and_unexpected_exits_are_exit_125_and_one_line() {
    if !common::require_kvm() {
        return;
    }
    let app = hostile();
    use umon_abi::hypercall::{HYPERCALL_MAX, HYPERCALL_PORT};
    assert_eq!(
        HYPERCALL_PORT + HYPERCALL_MAX + 1,
        0xeb,
        "mode 4's port is one past them"
    );
    for (mode, want) in [
        (0, "umon: guest triple fault at rip 0x"),
        (1, "umon: guest halted at rip 0x200001"),
        (
            2,
            "umon: unexpected I/O read from port 0x80 at rip 0x200000",
        ),
        (3, "umon: guest issued unknown hypercall 0"),
        (4, "umon: unexpected I/O write to port 0xeb at rip 0x200002"),
        (5, "umon: guest halted at rip 0x"),
        // A CPL0 exception never pushes its frame where rsp points (as hardware `syscall`
        // leaves it: the app's): every gate switches to the IST stack. Without that, rsp 0
        // is a #PF, then a #DF, then a triple fault.
        (6, "umon: guest halted at rip 0x"),
    ] {
        let core = hostile_core(mode);
        for opts in [
            &["--kernel", s(&core)][..],
            &["--no-seccomp", "--kernel", s(&core)],
        ] {
            let out = umon_run(opts, &app, &["checks"], b"");
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(125), "mode {mode} {opts:?}: {err}");
            assert!(
                err.starts_with(want) && err.lines().count() == 1,
                "mode {mode} {opts:?}: want one line starting {want:?}, got {err:?}"
            );
            assert_eq!(stdout(&out), "", "mode {mode}: the app never ran");
        }
        std::fs::remove_dir_all(core.parent().unwrap()).ok();
    }
}
