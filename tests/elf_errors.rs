//! `umon run` on files that are not usable static x86-64 executables: each must be refused with
//! exit status 126, exactly one `umon: ` line on stderr and nothing on stdout. The bad files are
//! made here, by damaging a real built `hello` or by writing ELF bytes by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, umon_run, Link};
use common::{stderr, stdout};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

const NO_ARGS: [&str; 0] = [];

/// Writes `bytes` as an executable file `name` (unique per test) in this suite's scratch
/// directory. Written under a temporary name and renamed, so a concurrent run of this suite
/// (which writes the same bytes) never sees a partial file; reused names keep the directory
/// from growing run after run.
fn write_app(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("elf-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Runs `umon run PATH` and checks the refusal: 126, one `umon: ` line, empty stdout. Returns
/// the line.
fn assert_refused(name: &str, bytes: &[u8]) -> String {
    let path = write_app(name, bytes);
    let out = umon_run(&[], &path, &NO_ARGS, b"");
    assert_refused_output(name, &out)
}

fn assert_refused_output(what: &str, out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(126), "{what}: stderr {err:?}");
    assert_eq!(stdout(out), "", "{what}: nothing may run");
    assert!(
        err.ends_with('\n') && err.lines().count() == 1 && err.starts_with("umon: "),
        "{what}: want exactly one `umon: ` line, got {err:?}"
    );
    err.trim_end().to_owned()
}

fn real_hello(link: Link) -> Vec<u8> {
    std::fs::read(c_app("hello", link)).unwrap()
}

/// `hello` with the section header table dropped from its ELF header (e_shoff, e_shnum and
/// e_shstrndx zero), which an executable does not need: cutting such a file short damages only
/// what the loader uses.
fn hello_without_sections(link: Link) -> Vec<u8> {
    let mut b = real_hello(link);
    put_u64(&mut b, 40, 0);
    b[60..64].fill(0);
    b
}

// ---- ELF64 little-endian field access --------------------------------------------------------

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

const PT_LOAD: u32 = 1;
// Offsets inside an Elf64_Phdr.
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

/// File offsets of the PT_LOAD program headers of an ELF64 file, in table order.
fn load_headers(b: &[u8]) -> Vec<usize> {
    let phoff = u64_at(b, 32) as usize;
    let phentsize = u16_at(b, 54) as usize;
    let phnum = u16_at(b, 56) as usize;
    assert_eq!(phentsize, 56, "an ELF64 program header table");
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u32_at(b, ph) == PT_LOAD)
        .collect()
}

// ---- a minimal hand-made ELF ---------------------------------------------------------------------

/// `exit_group(42)`: mov edi, 42; mov eax, 231; syscall.
const EXIT_42: [u8; 12] = [0xbf, 0x2a, 0, 0, 0, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05];

/// (p_vaddr, p_memsz) of a PT_LOAD that maps the whole file from offset 0, read+execute.
type Seg = (u64, u64);

/// An ET_EXEC x86-64 ELF: header, program headers, then [`EXIT_42`], whose address is the
/// entry point when the first segment starts at 0x400000.
fn handmade(segs: &[Seg]) -> Vec<u8> {
    let code_off = 64 + 56 * segs.len();
    let len = (code_off + EXIT_42.len()) as u64;
    let mut b = Vec::new();
    b.extend_from_slice(b"\x7fELF\x02\x01\x01\x00"); // ELF64, little endian, version 1, SysV
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    b.extend_from_slice(&62u16.to_le_bytes()); // e_machine x86-64
    b.extend_from_slice(&1u32.to_le_bytes()); // e_version
    b.extend_from_slice(&(0x40_0000 + code_off as u64).to_le_bytes()); // e_entry
    b.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b.extend_from_slice(&(segs.len() as u16).to_le_bytes()); // e_phnum
    b.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(b.len(), 64);
    for &(vaddr, memsz) in segs {
        b.extend_from_slice(&PT_LOAD.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
        b.extend_from_slice(&0u64.to_le_bytes()); // p_offset
        b.extend_from_slice(&vaddr.to_le_bytes()); // p_vaddr
        b.extend_from_slice(&vaddr.to_le_bytes()); // p_paddr
        b.extend_from_slice(&len.to_le_bytes()); // p_filesz
        b.extend_from_slice(&memsz.to_le_bytes()); // p_memsz
        b.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    }
    b.extend_from_slice(&EXIT_42);
    b
}

// ---- controls: the material the bad files are made from is good -------------------------------

#[test]
fn controls_the_handmade_elf_and_a_copy_of_hello_run() {
    if !common::require_kvm() {
        return;
    }
    let good = write_app("handmade-good", &handmade(&[(0x40_0000, 0x1000)]));
    assert_eq!(native(&good, &NO_ARGS, &[], b"").status.code(), Some(42));
    let out = umon_run(&[], &good, &NO_ARGS, b"");
    assert_eq!(out.status.code(), Some(42), "stderr: {}", stderr(&out));

    let copy = write_app("hello-copy", &real_hello(Link::StaticPie));
    let out = umon_run(&[], &copy, &NO_ARGS, b"");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).starts_with("argc=1\n"), "{}", stdout(&out));

    for link in Link::RUNNABLE {
        let name = format!("hello-no-sections-{link:?}");
        let copy = write_app(&name, &hello_without_sections(link));
        assert_eq!(native(&copy, &NO_ARGS, &[], b"").status.code(), Some(0));
        let out = umon_run(&[], &copy, &NO_ARGS, b"");
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("argc=1\n"), "{}", stdout(&out));
    }
}

// ---- the refusals ---------------------------------------------------------------------------------

#[test]
fn truncated_elf_is_refused() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let full = hello_without_sections(link);
        let phdrs_end = u64_at(&full, 32) as usize + 56 * u16_at(&full, 56) as usize;
        let data_end = load_headers(&full)
            .iter()
            .map(|&ph| (u64_at(&full, ph + P_OFFSET) + u64_at(&full, ph + P_FILESZ)) as usize)
            .max()
            .unwrap();
        assert!(data_end <= full.len());
        for (why, len) in [
            ("part of the magic", 3),
            ("only e_ident", 16),
            ("half the ELF header", 40),
            ("ELF header without its last byte", 63),
            ("ELF header only", 64),
            ("program header table cut short", phdrs_end - 1),
            ("half the file", full.len() / 2),
            ("the last segment's data cut short", data_end - 1),
        ] {
            assert_refused(&format!("truncated-{link:?}-{len}"), &full[..len]);
            eprintln!("{link:?} {why} ({len} bytes): refused");
        }
    }
    // By hand: the segment claims more file bytes than there are.
    let mut b = handmade(&[(0x40_0000, 0x1000)]);
    let len = b.len() as u64;
    put_u64(&mut b, 64 + P_FILESZ, len + 0x100);
    assert_refused("handmade-filesz-past-eof", &b);
}

#[test]
fn arm_machine_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let mut b = real_hello(Link::Static);
    b[18..20].copy_from_slice(&40u16.to_le_bytes()); // EM_ARM
    assert_refused("arm", &b);
}

#[test]
fn elf32_class_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let mut b = real_hello(Link::StaticPie);
    b[4] = 1; // ELFCLASS32
    assert_refused("elf32", &b);
}

#[test]
fn big_endian_data_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let mut b = real_hello(Link::StaticPie);
    b[5] = 2; // ELFDATA2MSB
    assert_refused("big-endian", &b);
}

#[test]
fn relocatable_object_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let mut b = real_hello(Link::Static);
    b[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    assert_refused("et-rel", &b);
}

#[test]
fn text_files_are_refused() {
    if !common::require_kvm() {
        return;
    }
    // A script is runnable by execve but not by umon, which runs ELF executables only.
    assert_refused("script.sh", b"#!/bin/sh\necho hello\n");
    assert_refused("notes.txt", b"just some text, not a program\n");
}

#[test]
fn empty_file_is_refused() {
    if !common::require_kvm() {
        return;
    }
    assert_refused("empty", b"");
}

#[test]
fn dynamically_linked_executable_is_refused_with_the_reason() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("hello", Link::Dynamic);
    let b = std::fs::read(&app).unwrap();
    let phnum = u16_at(&b, 56) as usize;
    let phoff = u64_at(&b, 32) as usize;
    let interp = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&ph| u32_at(&b, ph) == 3)
        .expect("plain gcc output has PT_INTERP");
    let (off, len) = (
        u64_at(&b, interp + 8) as usize,
        u64_at(&b, interp + 32) as usize,
    );
    let name = std::str::from_utf8(&b[off..off + len - 1])
        .unwrap()
        .to_owned();
    // No volume, no --root: the interpreter is not in the guest's file view.
    let out = umon_run(&[], &app, &NO_ARGS, b"");
    let line = assert_refused_output("dynamic", &out);
    assert!(
        line.contains(&format!(
            "its interpreter {name} is not in the guest's file view"
        )) && line.ends_with("(grant it with --root / or -v)"),
        "{line}"
    );
    // A volume that does not hold it changes nothing.
    let dir = app.parent().unwrap().to_str().unwrap().to_owned();
    let out = umon_run(&["-v", &format!("{dir}:/apps")], &app, &NO_ARGS, b"");
    let line = assert_refused_output("dynamic-with-a-volume", &out);
    assert!(line.contains(&format!("its interpreter {name} ")), "{line}");
}

#[test]
fn overlapping_load_segments_are_refused() {
    if !common::require_kvm() {
        return;
    }
    // By hand: the second segment starts inside the first.
    assert_refused(
        "handmade-overlap",
        &handmade(&[(0x40_0000, 0x2000), (0x40_1000, 0x1000)]),
    );

    // In a real executable: the first PT_LOAD's memory (its zero-filled tail) grows one page
    // into the second. Sharing a page is normal (RELRO does it); sharing bytes is not.
    let mut b = real_hello(Link::Static);
    let loads = load_headers(&b);
    let (first, second) = (loads[0], loads[1]);
    let grown = u64_at(&b, second + P_VADDR) - u64_at(&b, first + P_VADDR) + 0x1000;
    put_u64(&mut b, first + P_MEMSZ, grown);
    assert_refused("hello-overlap", &b);
}

#[test]
fn huge_memsz_is_refused() {
    if !common::require_kvm() {
        return;
    }
    assert_refused("handmade-huge", &handmade(&[(0x40_0000, 1 << 40)]));

    for link in Link::RUNNABLE {
        let mut b = real_hello(link);
        let last = *load_headers(&b).last().unwrap();
        put_u64(&mut b, last + P_MEMSZ, 1 << 40);
        assert_refused(&format!("hello-huge-{link:?}"), &b);
    }
}

// ---- the table: at least 30 corrupt files, each made here from the hand-made ELF --------------

// Offsets inside the ELF64 header.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_VERSION: usize = 6;
const E_TYPE: usize = 16;
const E_MACHINE: usize = 18;
const E_VERSION: usize = 20;
const E_ENTRY: usize = 24;
const E_PHOFF: usize = 32;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
/// The first program header of [`handmade`].
const PH0: usize = 64;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The good one-segment hand-made ELF (it exits 42), changed by `f`.
fn patched(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = handmade(&[(0x40_0000, 0x1000)]);
    f(&mut b);
    b
}

/// One corrupt file: a name, its bytes, and a word or two the refusal line must contain (so
/// the line says why, not just that it failed).
struct Corrupt {
    name: String,
    bytes: Vec<u8>,
    why: &'static str,
}

fn corrupt(name: impl Into<String>, bytes: Vec<u8>, why: &'static str) -> Corrupt {
    Corrupt {
        name: name.into(),
        bytes,
        why,
    }
}

/// Every corrupt file of the table.
fn corrupt_table() -> Vec<Corrupt> {
    let good = handmade(&[(0x40_0000, 0x1000)]);
    let mut t = Vec::new();

    // Truncated at every boundary of the ELF header's fields and of the program header's,
    // and inside the code: each cut keeps a prefix of a good file.
    let header_cuts = [
        1, 4, 5, 6, 7, 16, 18, 20, 24, 32, 40, 48, 52, 54, 56, 58, 60, 62, 64,
    ];
    for cut in header_cuts {
        let why = match cut {
            1..=3 => "not an ELF",
            4 => "truncated",
            5 => "data encoding",
            _ => "truncated",
        };
        t.push(corrupt(format!("cut-{cut}"), good[..cut].to_vec(), why));
    }
    for field_end in [4, 8, 16, 24, 32, 40, 48, 55] {
        let cut = PH0 + field_end;
        t.push(corrupt(
            format!("cut-phdr-{field_end}"),
            good[..cut].to_vec(),
            "truncated",
        ));
    }
    t.push(corrupt(
        "cut-in-code",
        good[..good.len() - 1].to_vec(),
        "past the end of the file",
    ));

    // Identification and header fields.
    t.push(corrupt(
        "elfclass32",
        patched(|b| b[EI_CLASS] = 1),
        "32-bit",
    ));
    t.push(corrupt(
        "elfclass-none",
        patched(|b| b[EI_CLASS] = 0),
        "class",
    ));
    t.push(corrupt("elfclass-3", patched(|b| b[EI_CLASS] = 3), "class"));
    t.push(corrupt(
        "big-endian",
        patched(|b| b[EI_DATA] = 2),
        "big-endian",
    ));
    t.push(corrupt(
        "data-none",
        patched(|b| b[EI_DATA] = 0),
        "data encoding",
    ));
    t.push(corrupt("bad-magic", patched(|b| b[3] = b'G'), "not an ELF"));
    for (machine, name) in [
        (3u16, "i386"),
        (40, "arm"),
        (183, "aarch64"),
        (243, "riscv"),
    ] {
        t.push(corrupt(
            format!("machine-{name}"),
            patched(|b| put_u16(b, E_MACHINE, machine)),
            "x86-64 executables only",
        ));
    }
    for (ty, name) in [(0u16, "none"), (1, "rel"), (4, "core"), (0xfe00, "os")] {
        t.push(corrupt(
            format!("type-{name}"),
            patched(|b| put_u16(b, E_TYPE, ty)),
            "not an executable",
        ));
    }

    // The program header table itself.
    t.push(corrupt(
        "phentsize-32",
        patched(|b| put_u16(b, E_PHENTSIZE, 32)),
        "program header size",
    ));
    t.push(corrupt(
        "phentsize-64",
        patched(|b| put_u16(b, E_PHENTSIZE, 64)),
        "program header size",
    ));
    t.push(corrupt(
        "phnum-huge",
        patched(|b| put_u16(b, E_PHNUM, 0xffff)),
        "truncated",
    ));
    t.push(corrupt(
        "phnum-zero",
        patched(|b| put_u16(b, E_PHNUM, 0)),
        "no PT_LOAD",
    ));
    t.push(corrupt(
        "phoff-past-eof",
        patched(|b| put_u64(b, E_PHOFF, 0x10_0000)),
        "truncated",
    ));
    t.push(corrupt(
        "phoff-max",
        patched(|b| put_u64(b, E_PHOFF, u64::MAX - 8)),
        "truncated",
    ));

    // The one segment.
    t.push(corrupt(
        "offset-past-eof",
        patched(|b| put_u64(b, PH0 + P_OFFSET, 0x10_0000)),
        "past the end of the file",
    ));
    t.push(corrupt(
        "offset-wraps",
        patched(|b| put_u64(b, PH0 + P_OFFSET, u64::MAX - 16)),
        "past the end of the file",
    ));
    t.push(corrupt(
        "filesz-over-memsz",
        patched(|b| put_u64(b, PH0 + P_MEMSZ, 16)),
        "p_filesz",
    ));
    t.push(corrupt(
        "memsz-huge",
        patched(|b| put_u64(b, PH0 + P_MEMSZ, 1 << 40)),
        "spans",
    ));
    t.push(corrupt(
        "memsz-max",
        patched(|b| put_u64(b, PH0 + P_MEMSZ, u64::MAX)),
        "wraps",
    ));
    t.push(corrupt(
        "vaddr-wraps",
        patched(|b| put_u64(b, PH0 + P_VADDR, u64::MAX - 0xfff)),
        "wraps",
    ));
    t.push(corrupt(
        "static-in-the-core",
        patched(|b| {
            put_u64(b, PH0 + P_VADDR, 0x20_0000);
            put_u64(b, E_ENTRY, 0x20_0000 + 120);
        }),
        "reserved by umon",
    ));
    t.push(corrupt(
        "static-at-page-zero",
        patched(|b| {
            put_u64(b, PH0 + P_VADDR, 0);
            put_u64(b, E_ENTRY, 120);
        }),
        "reserved by umon",
    ));
    t.push(corrupt(
        "static-in-the-namespaces",
        patched(|b| {
            put_u64(b, PH0 + P_VADDR, 0x1000_0000_0000);
            put_u64(b, E_ENTRY, 0x1000_0000_0000 + 120);
        }),
        "reserved by umon",
    ));
    t.push(corrupt(
        "static-in-the-kernel-half",
        patched(|b| {
            put_u64(b, PH0 + P_VADDR, 0xffff_8000_0000_0000);
            put_u64(b, E_ENTRY, 0xffff_8000_0000_0000 + 120);
        }),
        "reserved by umon",
    ));
    t.push(corrupt(
        "no-load-segment",
        patched(|b| put_u32(b, PH0, PT_NOTE)),
        "no PT_LOAD",
    ));
    t.push(corrupt(
        "memsz-zero",
        patched(|b| {
            put_u64(b, PH0 + P_FILESZ, 0);
            put_u64(b, PH0 + P_MEMSZ, 0);
        }),
        "no PT_LOAD",
    ));
    t.push(corrupt(
        "interp",
        patched(|b| put_u32(b, PH0, PT_INTERP)),
        "PT_INTERP",
    ));
    t.push(corrupt(
        "entry-outside",
        patched(|b| put_u64(b, E_ENTRY, 0x50_0000)),
        "entry point",
    ));
    t.push(corrupt(
        "entry-zero",
        patched(|b| put_u64(b, E_ENTRY, 0)),
        "entry point",
    ));
    t.push(corrupt(
        "entry-not-executable",
        patched(|b| put_u32(b, PH0 + 4, 6)), // PF_R | PF_W
        "entry point",
    ));
    t.push(corrupt(
        "static-pie-entry-outside",
        patched(|b| {
            put_u16(b, E_TYPE, 3); // ET_DYN
            put_u64(b, PH0 + P_VADDR, 0);
            put_u64(b, E_ENTRY, 0x10_0000);
        }),
        "entry point",
    ));

    // Several segments.
    t.push(corrupt(
        "overlap-same-address",
        handmade(&[(0x40_0000, 0x1000), (0x40_0000, 0x1000)]),
        "overlap",
    ));
    t.push(corrupt(
        "overlap-by-one-byte",
        handmade(&[(0x40_0000, 0x1001), (0x40_1000, 0x1000)]),
        "overlap",
    ));
    t.push(corrupt(
        "span-over-1g",
        handmade(&[(0x40_0000, 0x1000), (0x40_0000 + (2 << 30), 0x1000)]),
        "spans",
    ));
    let many: Vec<Seg> = (0..65).map(|i| (0x40_0000 + i * 0x1000, 0x1000)).collect();
    t.push(corrupt("65-segments", handmade(&many), "at most 64"));
    t
}

#[test]
fn table_of_corrupt_elf_files_each_refused_with_one_line() {
    if !common::require_kvm() {
        return;
    }
    let table = corrupt_table();
    assert!(table.len() >= 30, "only {} corrupt files", table.len());
    let mut names = std::collections::BTreeSet::new();
    for c in &table {
        assert!(names.insert(c.name.clone()), "duplicate name {}", c.name);
        let line = assert_refused(&format!("table-{}", c.name), &c.bytes);
        assert!(
            line.contains(c.why),
            "{}: the line should say why ({:?}): {line}",
            c.name,
            c.why
        );
        assert!(!line.contains("panicked"), "{}: {line}", c.name);
    }
    eprintln!("{} corrupt files refused", table.len());
}

/// [`handmade`] with a PT_INTERP (ahead of its PT_LOAD) naming `interp`, placed after the code.
fn handmade_with_interp(interp: &[u8]) -> Vec<u8> {
    let mut b = handmade(&[(0x40_0000, 0x1000), (0x40_0000, 0x1000)]);
    let at = b.len() as u64;
    b.extend_from_slice(interp);
    let len = b.len() as u64;
    put_u32(&mut b, PH0, PT_INTERP);
    put_u64(&mut b, PH0 + P_OFFSET, at);
    put_u64(&mut b, PH0 + P_FILESZ, interp.len() as u64);
    put_u64(&mut b, PH0 + P_MEMSZ, interp.len() as u64);
    put_u64(&mut b, PH0 + 56 + P_FILESZ, len);
    put_u64(&mut b, PH0 + 56 + P_MEMSZ, len);
    b
}

#[test]
fn interpreter_name_is_reported() {
    if !common::require_kvm() {
        return;
    }
    let line = assert_refused(
        "interp-named",
        &handmade_with_interp(b"/lib64/ld-linux-x86-64.so.2\0"),
    );
    assert!(
        line.ends_with(
            "its interpreter /lib64/ld-linux-x86-64.so.2 is not in the guest's file view (grant it with --root / or -v)"
        ),
        "{line}"
    );
}

#[test]
fn interpreter_name_with_a_newline_or_controls_is_still_one_line() {
    if !common::require_kvm() {
        return;
    }
    let line = assert_refused(
        "interp-newline",
        &handmade_with_interp(b"/lib/ld.so\nsecond line\x1b[31m\0"),
    );
    assert!(
        !line.contains('\x1b'),
        "terminal escapes pass through: {line:?}"
    );
}

/// A wrong ELF version (EI_VERSION and e_version 0 or 2) is not refused: Linux's execve does
/// not check either field, and umon runs what Linux runs. Both must agree, whatever they do.
#[test]
fn bad_elf_version_is_treated_as_linux_treats_it() {
    if !common::require_kvm() {
        return;
    }
    for (name, version) in [("version-0", 0u8), ("version-2", 2)] {
        let b = patched(|b| {
            b[EI_VERSION] = version;
            put_u32(b, E_VERSION, u32::from(version));
        });
        let path = write_app(name, &b);
        let linux = native(&path, &NO_ARGS, &[], b"").status.code();
        let out = umon_run(&[], &path, &NO_ARGS, b"");
        assert_eq!(out.status.code(), linux, "{name}: {}", stderr(&out));
        assert_eq!(linux, Some(42), "{name}: Linux runs it");
    }
}
