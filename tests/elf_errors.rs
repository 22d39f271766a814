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
    assert!(
        (0..phnum).any(|i| u32_at(&b, phoff + i * 56) == 3),
        "plain gcc output has PT_INTERP"
    );
    let out = umon_run(&[], &app, &NO_ARGS, b"");
    let line = assert_refused_output("dynamic", &out);
    assert!(
        line.contains("dynamically linked executables are not supported yet"),
        "{line}"
    );
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
