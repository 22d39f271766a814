//! Regressions for the review of main at 1dbdd53: hostile symbol tables, the running
//! executable opened for writing, the memory map's bounds, file-system locking, and syscall
//! arguments Linux reads as 32-bit ints. Inputs (patched ELFs, volumes) are built here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)] // each test file uses part of the shared helpers
mod common;

use common::apps::{c_app, Link};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Longest any one run here may take before the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(120);

fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("review-findings-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bounded_umon(args: &[&str]) -> Command {
    common::bounded_umon(args)
}

fn finish(child: Child) -> (i32, String) {
    common::finish_within(child, DEADLINE)
}

fn run_bounded(args: &[&str]) -> (i32, String) {
    let child = bounded_umon(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child)
}

fn u16_at(b: &[u8], o: usize) -> usize {
    usize::from(u16::from_le_bytes(b[o..o + 2].try_into().unwrap()))
}
fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// One ELF64 section header: (offset of the header, sh_type, sh_link, sh_offset, sh_size).
fn sections(b: &[u8]) -> Vec<(usize, u32, usize, usize, usize)> {
    let shoff = u64_at(b, 0x28) as usize;
    let (entsize, num) = (u16_at(b, 0x3a), u16_at(b, 0x3c));
    (0..num)
        .map(|i| {
            let h = shoff + i * entsize;
            (
                h,
                u32_at(b, h + 4) as u32,
                u32_at(b, h + 40),
                u64_at(b, h + 24) as usize,
                u64_at(b, h + 32) as usize,
            )
        })
        .collect()
}

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;

/// Calls `f(bytes, offset of the entry, name)` for every STT_FUNC symbol of the ELF `b`.
fn for_each_func(b: &mut Vec<u8>, mut f: impl FnMut(&mut Vec<u8>, usize, &[u8])) {
    let secs = sections(b);
    let (_, _, link, off, size) = *secs.iter().find(|s| s.1 == SHT_SYMTAB).unwrap();
    let strtab = secs[link].3;
    for j in 0..size / SYM_SIZE {
        let o = off + j * SYM_SIZE;
        if b[o + 4] & 0xf != STT_FUNC {
            continue;
        }
        let start = strtab + u32_at(b, o);
        let end = start + b[start..].iter().position(|&c| c == 0).unwrap();
        let name = b[start..end].to_vec();
        f(b, o, &name);
    }
}

fn write_exe(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The fault line names the function; the run ends like the native SIGILL (132).
fn assert_one_sigill_line(code: i32, err: &str, what: &str) {
    assert_eq!(code, 132, "{what}: {err}");
    assert!(!err.contains("panic"), "{what}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line: {err}");
    assert!(
        lines[0].contains("umon: app killed by SIGILL"),
        "{what}: {err}"
    );
}

#[test]
fn a_function_symbol_of_size_all_ones_does_not_overflow_the_fault_report() {
    if !common::require_kvm() {
        return;
    }
    let dir = scratch("bigsize");
    for link in Link::RUNNABLE {
        let mut b = std::fs::read(c_app("fault", link)).unwrap();
        let mut patched = 0;
        for_each_func(&mut b, |b, o, name| {
            if name == b"fault_ud" {
                b[o + 16..o + 24].copy_from_slice(&u64::MAX.to_le_bytes());
                patched += 1;
            }
        });
        assert_eq!(patched, 1);
        let exe = write_exe(&dir, &format!("fault-{link:?}"), &b);
        let native = Command::new(&exe).arg("ud").output().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&native.status),
            Some(4),
            "natively SIGILL"
        );
        let (code, err) = run_bounded(&[
            "run",
            "-m",
            "64M",
            "--timeout",
            "30s",
            exe.to_str().unwrap(),
            "ud",
        ]);
        assert_one_sigill_line(code, &err, &format!("{link:?}"));
        assert!(err.contains("(fault_ud+0x"), "{link:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unterminated_string_table_is_not_copied_once_per_symbol() {
    if !common::require_kvm() {
        return;
    }
    let dir = scratch("bigstr");
    let mut b = std::fs::read(c_app("fault", Link::StaticPie)).unwrap();
    // A 60 MiB string table without a terminator, every function's name at its start.
    let n = 60 << 20;
    let newoff = b.len();
    b.resize(newoff + n, b'A');
    let secs = sections(&b);
    let symtab = *secs.iter().find(|s| s.1 == SHT_SYMTAB).unwrap();
    let strhdr = secs[symtab.2].0;
    b[strhdr + 24..strhdr + 32].copy_from_slice(&(newoff as u64).to_le_bytes());
    b[strhdr + 32..strhdr + 40].copy_from_slice(&(n as u64).to_le_bytes());
    for j in 0..symtab.4 / SYM_SIZE {
        let o = symtab.3 + j * SYM_SIZE;
        if b[o + 4] & 0xf == STT_FUNC {
            b[o..o + 4].copy_from_slice(&0u32.to_le_bytes());
        }
    }
    let exe = write_exe(&dir, "fault-bigstr", &b);
    let (code, err) = run_bounded(&[
        "run",
        "-m",
        "64M",
        "--timeout",
        "30s",
        exe.to_str().unwrap(),
        "ud",
    ]);
    assert_one_sigill_line(code, &err, "bigstr");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory holding a copy of `rev_calls` (`link`), for a writable volume.
fn dir_with_calls(tag: &str, link: Link) -> (PathBuf, PathBuf) {
    let dir = scratch(tag);
    let exe = dir.join("rev_calls");
    std::fs::copy(c_app("rev_calls", link), &exe).unwrap();
    (dir, exe)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// ETXTBSY on the running executable, mremap to the same size, RLIMIT_FSIZE for sendfile,
/// copy_file_range and (f)truncate, futimens' flags, readlinkat(AT_FDCWD, ""), and int
/// arguments with a dirty upper half: line for line as natively.
#[test]
fn review_findings_behave_as_natively() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let (ndir, nexe) = dir_with_calls(&format!("calls-native-{link:?}"), link);
        let native = common::apps::native(
            &nexe,
            &[common::apps::s(&nexe), common::apps::s(&ndir)],
            &[],
            b"",
        );
        assert!(native.status.success(), "native: {native:?}");
        let (udir, uexe) = dir_with_calls(&format!("calls-umon-{link:?}"), link);
        let vol = format!("{}:/d:rw", common::apps::s(&udir));
        let under = common::apps::umon_run(&["-v", &vol], &uexe, &["/d/rev_calls", "/d"], b"");
        assert_eq!(
            text(&under),
            text(&native),
            "{link:?}: stderr {}",
            String::from_utf8_lossy(&under.stderr)
        );
        assert!(under.status.success(), "{link:?}: {under:?}");
        assert!(
            text(&native).contains("open O_RDWR: ETXTBSY"),
            "{}",
            text(&native)
        );
        std::fs::remove_dir_all(&ndir).unwrap();
        std::fs::remove_dir_all(&udir).unwrap();
    }
}
