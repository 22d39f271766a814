//! Application ELFs: parse and validate with goblin, produce a [`LoadPlan`] (where every segment
//! goes, with which permissions). Pure: no guest memory is touched here, so every failure is a
//! [`AppError`] before anything is allocated, and the plan can be inspected or fuzzed alone.
use crate::machine::paging::PAGE_4K;
use goblin::elf::{header, program_header, sym, Elf, ProgramHeader};
use umon_abi::layout::{CORE_IMAGE_END, PROGRAM_BASE};

/// The largest span an application image may cover (text + data + bss). Its heap, mmap area
/// and stack are separate.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;
/// The most PT_LOAD segments accepted.
pub const MAX_LOAD_SEGMENTS: usize = 64;

/// How the executable is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// ET_DYN (static-pie, or a PIE with an interpreter): placed in a program namespace.
    StaticPie,
    /// ET_EXEC: loaded at its link address.
    Static,
}

/// One PT_LOAD segment, at its final guest virtual address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the segment starts (not page-aligned in general).
    pub vaddr: u64,
    /// Bytes in memory (file part + zeroed part).
    pub memsz: u64,
    /// Offset of the file part in the ELF.
    pub offset: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// PF_R.
    pub read: bool,
    /// PF_W.
    pub write: bool,
    /// PF_X.
    pub exec: bool,
}

/// A validated application and where it goes.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Static-pie or static.
    pub kind: AppKind,
    /// Added to every link-time address (0 for ET_EXEC).
    pub bias: u64,
    /// Segments sorted by address, non-overlapping.
    pub segments: Vec<Segment>,
    /// First page of the image.
    pub start: u64,
    /// End of the last page of the image.
    pub end: u64,
    /// Entry point.
    pub entry: u64,
    /// Address of the program headers in guest memory (AT_PHDR), 0 if not loaded.
    pub phdr: u64,
    /// Size of one program header (AT_PHENT).
    pub phent: u64,
    /// Number of program headers (AT_PHNUM).
    pub phnum: u64,
    /// Where PT_INTERP's path lies in the file (offset, length with its NUL), for a
    /// dynamically linked executable; read with [`interp_path`].
    pub interp: Option<(u64, u64)>,
}

/// The interpreter path from PT_INTERP's bytes: NUL-terminated, not empty, no NUL inside, as
/// Linux's `load_elf_binary` insists (ENOEXEC otherwise).
pub fn interp_path(bytes: &[u8]) -> Result<Vec<u8>, AppError> {
    match bytes.split_last() {
        Some((0, path)) if !path.is_empty() && !path.contains(&0) => Ok(path.to_vec()),
        _ => Err(AppError::BadInterp(
            String::from_utf8_lossy(bytes)
                .chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
                .to_string(),
        )),
    }
}

/// The longest PT_INTERP accepted (Linux: PATH_MAX with its NUL).
pub const MAX_INTERP_BYTES: u64 = 4096;

/// Function symbols of a whole ELF file (address, size, name), sorted by address and moved by
/// `bias`; empty when the file has none or cannot be parsed. Only fault reports need them, so
/// they are read then, not at start.
pub fn symbols(bytes: &[u8], bias: u64) -> Vec<(u64, u64, String)> {
    symbols_with(
        |offset, n| {
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(usize::try_from(n).ok()?)?;
            bytes.get(start..end).map(<[u8]>::to_vec)
        },
        bias,
    )
}

/// The most bytes of section headers, symbol table or string table [`symbols_with`] reads.
pub const MAX_SYMBOL_BYTES: u64 = 64 << 20;

/// Longest symbol name kept for the fault line; longer ones are cut.
pub const MAX_SYMBOL_NAME: usize = 1024;

/// Most bytes of symbol names kept in all; symbols past it are not named in the fault line.
pub const MAX_SYMBOL_NAME_BYTES: usize = 16 << 20;

/// [`symbols`] for an ELF read piecewise: `read(offset, n)` gives exactly `n` bytes at `offset`
/// or None. Only the ELF header, the section headers, `.symtab` and its string table are read,
/// each at most [`MAX_SYMBOL_BYTES`].
pub fn symbols_with(
    read: impl Fn(u64, u64) -> Option<Vec<u8>>,
    bias: u64,
) -> Vec<(u64, u64, String)> {
    symbols_read(&read, bias).unwrap_or_default()
}

fn symbols_read(
    read: &dyn Fn(u64, u64) -> Option<Vec<u8>>,
    bias: u64,
) -> Option<Vec<(u64, u64, String)>> {
    use goblin::elf::section_header::{SectionHeader, SHT_SYMTAB};
    let read_bounded = |offset: u64, n: u64| (n <= MAX_SYMBOL_BYTES).then(|| read(offset, n))?;
    let ehdr = read(0, header::header64::SIZEOF_EHDR as u64)?;
    check_ident(&ehdr).ok()?;
    let h = Elf::parse_header(&ehdr).ok()?;
    if usize::from(h.e_shentsize) != goblin::elf::section_header::section_header64::SIZEOF_SHDR {
        return None;
    }
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let table = read_bounded(h.e_shoff, u64::from(h.e_shnum) * u64::from(h.e_shentsize))?;
    if h.e_shoff == 0 || h.e_shnum == 0 {
        return None;
    }
    let sections = SectionHeader::parse_from(&table, 0, usize::from(h.e_shnum), ctx).ok()?;
    let symtab = sections.iter().find(|s| s.sh_type == SHT_SYMTAB)?;
    let strtab = sections.get(usize::try_from(symtab.sh_link).ok()?)?;
    let entry = sym::sym64::SIZEOF_SYM as u64;
    let count = symtab.sh_size / entry;
    let sym_bytes = read_bounded(symtab.sh_offset, count * entry)?;
    let str_bytes = read_bounded(strtab.sh_offset, strtab.sh_size)?;
    let syms = sym::Symtab::parse(&sym_bytes, 0, usize::try_from(count).ok()?, ctx).ok()?;
    // Each name is cut at MAX_SYMBOL_NAME, all names together at MAX_SYMBOL_NAME_BYTES: a hostile
    // string table (one unterminated 60 MiB name shared by every symbol) is not copied per symbol.
    let mut symbols: Vec<(u64, u64, String)> = Vec::new();
    let mut name_bytes = 0usize;
    for s in syms.iter() {
        if s.st_type() != sym::STT_FUNC || s.st_value == 0 {
            continue;
        }
        let (Some(start), Some(tail)) = (s.st_value.checked_add(bias), str_bytes.get(s.st_name..))
        else {
            continue;
        };
        let tail = &tail[..tail.len().min(MAX_SYMBOL_NAME)];
        let name = &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())];
        name_bytes += name.len();
        if name_bytes > MAX_SYMBOL_NAME_BYTES {
            break;
        }
        symbols.push((start, s.st_size, String::from_utf8_lossy(name).into_owned()));
    }
    symbols.sort();
    Some(symbols)
}

/// Why a file cannot be executed. Each message completes "cannot execute APP: ...".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppError {
    /// Empty file.
    #[error("the file is empty")]
    Empty,
    /// No ELF magic.
    #[error("not an ELF executable")]
    NotElf,
    /// ELFCLASS32.
    #[error("32-bit ELF; umon runs x86-64 (64-bit) executables only")]
    Class32,
    /// Bad class byte.
    #[error("unknown ELF class {0}")]
    BadClass(u8),
    /// Big-endian data.
    #[error("big-endian ELF; umon runs little-endian x86-64 executables only")]
    BigEndian,
    /// Shorter than its headers say.
    #[error("truncated ELF: {0}")]
    Truncated(String),
    /// goblin could not parse it.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// Another architecture.
    #[error("ELF for {0}; umon runs x86-64 executables only")]
    Machine(String),
    /// ET_REL, ET_CORE, ...
    #[error("ELF type {0} is not an executable (need ET_EXEC or static-pie ET_DYN)")]
    Type(String),
    /// PT_INTERP that is no usable path.
    #[error("malformed PT_INTERP \"{0}\" (need a NUL-terminated path of at most {MAX_INTERP_BYTES} bytes)")]
    BadInterp(String),
    /// More than one PT_INTERP.
    #[error("more than one PT_INTERP")]
    TwoInterps,
    /// Nothing to load.
    #[error("no PT_LOAD segment")]
    NoSegments,
    /// Too many segments.
    #[error("{0} PT_LOAD segments (at most {MAX_LOAD_SEGMENTS})")]
    TooManySegments(usize),
    /// p_filesz > p_memsz.
    #[error("segment at {vaddr:#x} has p_filesz {filesz:#x} > p_memsz {memsz:#x}")]
    FileszOverMemsz {
        /// p_vaddr.
        vaddr: u64,
        /// p_filesz.
        filesz: u64,
        /// p_memsz.
        memsz: u64,
    },
    /// File part past EOF.
    #[error("segment at {vaddr:#x} reads past the end of the file (offset {offset:#x} + {filesz:#x} > {len:#x})")]
    PastEof {
        /// p_vaddr.
        vaddr: u64,
        /// p_offset.
        offset: u64,
        /// p_filesz.
        filesz: u64,
        /// File length.
        len: u64,
    },
    /// Address arithmetic overflows.
    #[error("segment at {0:#x} wraps around the address space")]
    Wraps(u64),
    /// Two segments share bytes.
    #[error("PT_LOAD segments overlap at {0:#x}")]
    Overlap(u64),
    /// The image is too big.
    #[error("image spans {0:#x} bytes (at most {MAX_IMAGE_BYTES:#x})")]
    TooLarge(u64),
    /// ET_EXEC segment in a reserved range.
    #[error("segment {start:#x}..{end:#x} overlaps memory reserved by umon (static executables must lie in {CORE_IMAGE_END:#x}..{PROGRAM_BASE:#x})")]
    Reserved {
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
    /// Entry point not in executable memory.
    #[error("entry point {0:#x} is not inside an executable segment")]
    Entry(u64),
}

/// How much of the file [`plan`] needs: the ELF header and the program headers.
pub fn head_len(ehdr: &[u8], file_len: u64) -> u64 {
    let field = |at: usize, n: usize| {
        ehdr.get(at..at + n)
            .map(|b| {
                b.iter()
                    .rev()
                    .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
            })
            .unwrap_or(0)
    };
    let (phoff, phentsize, phnum) = (field(32, 8), field(54, 2), field(56, 2));
    let end = phoff.saturating_add(phentsize * phnum);
    end.max(4096).min(file_len).min(MAX_HEAD_BYTES)
}

/// The most header bytes umon reads to plan a load.
pub const MAX_HEAD_BYTES: u64 = 1 << 20;

/// Validate an x86-64 executable of `file_len` bytes, of which `head` is the start
/// (at least [`head_len`] bytes, or the whole file), and plan its placement; a static-pie image
/// starts at `pie_base`. Section headers and symbols are not needed (see [`symbols`]).
pub fn plan(head: &[u8], file_len: u64, pie_base: u64) -> Result<LoadPlan, AppError> {
    let bytes = head;
    check_ident(bytes)?;
    let h = Elf::parse_header(bytes).map_err(|e| AppError::Truncated(e.to_string()))?;
    if h.e_machine != header::EM_X86_64 {
        return Err(AppError::Machine(
            header::machine_to_str(h.e_machine).to_string(),
        ));
    }
    let kind = match h.e_type {
        header::ET_EXEC => AppKind::Static,
        header::ET_DYN => AppKind::StaticPie,
        other => return Err(AppError::Type(header::et_to_str(other).to_string())),
    };
    if h.e_phnum > 0 && usize::from(h.e_phentsize) != program_header::program_header64::SIZEOF_PHDR
    {
        return Err(AppError::Malformed(format!(
            "program header size {} (expected {})",
            h.e_phentsize,
            program_header::program_header64::SIZEOF_PHDR
        )));
    }
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    let phdrs = ProgramHeader::parse(bytes, h.e_phoff as usize, usize::from(h.e_phnum), ctx)
        .map_err(|e| AppError::Truncated(format!("program headers: {e}")))?;
    let mut interps = phdrs
        .iter()
        .filter(|p| p.p_type == program_header::PT_INTERP);
    let interp = match (interps.next(), interps.next()) {
        (Some(_), Some(_)) => return Err(AppError::TwoInterps),
        (Some(p), None) => {
            if p.p_filesz < 2 || p.p_filesz > MAX_INTERP_BYTES {
                return Err(AppError::BadInterp(format!("{} bytes", p.p_filesz)));
            }
            let end = match p.p_offset.checked_add(p.p_filesz) {
                Some(e) if e <= file_len => e,
                _ => return Err(AppError::BadInterp("past the end of the file".into())),
            };
            // Checked here when the headers read hold it, else when the loader reads it.
            if let Some(b) = bytes.get(p.p_offset as usize..end as usize) {
                interp_path(b)?;
            }
            Some((p.p_offset, p.p_filesz))
        }
        _ => None,
    };

    let len = file_len;
    let mut segments = Vec::new();
    for ph in phdrs
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD && p.p_memsz > 0)
    {
        if ph.p_filesz > ph.p_memsz {
            return Err(AppError::FileszOverMemsz {
                vaddr: ph.p_vaddr,
                filesz: ph.p_filesz,
                memsz: ph.p_memsz,
            });
        }
        match ph.p_offset.checked_add(ph.p_filesz) {
            Some(e) if e <= len => {}
            _ => {
                return Err(AppError::PastEof {
                    vaddr: ph.p_vaddr,
                    offset: ph.p_offset,
                    filesz: ph.p_filesz,
                    len,
                })
            }
        }
        if ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .and_then(|e| e.checked_add(PAGE_4K))
            .is_none()
        {
            return Err(AppError::Wraps(ph.p_vaddr));
        }
        segments.push(Segment {
            vaddr: ph.p_vaddr,
            memsz: ph.p_memsz,
            offset: ph.p_offset,
            filesz: ph.p_filesz,
            read: ph.is_read(),
            write: ph.is_write(),
            exec: ph.is_executable(),
        });
    }
    if segments.is_empty() {
        return Err(AppError::NoSegments);
    }
    if segments.len() > MAX_LOAD_SEGMENTS {
        return Err(AppError::TooManySegments(segments.len()));
    }
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        if pair[0].vaddr + pair[0].memsz > pair[1].vaddr {
            return Err(AppError::Overlap(pair[1].vaddr));
        }
    }
    let link_start = segments[0].vaddr & !(PAGE_4K - 1);
    let last = &segments[segments.len() - 1];
    let link_end = (last.vaddr + last.memsz).next_multiple_of(PAGE_4K);
    let span = link_end - link_start;
    if span > MAX_IMAGE_BYTES {
        return Err(AppError::TooLarge(span));
    }
    let bias = match kind {
        AppKind::Static => {
            if link_start < CORE_IMAGE_END || link_end > PROGRAM_BASE {
                return Err(AppError::Reserved {
                    start: link_start,
                    end: link_end,
                });
            }
            0
        }
        AppKind::StaticPie => pie_base.wrapping_sub(link_start),
    };
    for s in &mut segments {
        s.vaddr = s.vaddr.wrapping_add(bias);
    }

    let entry = h.e_entry.wrapping_add(bias);
    if !segments
        .iter()
        .any(|s| s.exec && (s.vaddr..s.vaddr + s.memsz).contains(&entry))
    {
        return Err(AppError::Entry(h.e_entry));
    }
    let phdr = phdr_address(&phdrs, h.e_phoff, &segments, bias);

    Ok(LoadPlan {
        kind,
        bias,
        start: link_start.wrapping_add(bias),
        end: link_end.wrapping_add(bias),
        segments,
        entry,
        phdr,
        phent: u64::from(h.e_phentsize),
        phnum: u64::from(h.e_phnum),
        interp,
    })
}

/// Check the identification bytes ourselves, so the common mistakes get a precise message
/// before goblin sees the file.
fn check_ident(bytes: &[u8]) -> Result<(), AppError> {
    if bytes.is_empty() {
        return Err(AppError::Empty);
    }
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(AppError::NotElf);
    }
    match bytes.get(header::EI_CLASS) {
        Some(&header::ELFCLASS64) => {}
        Some(&header::ELFCLASS32) => return Err(AppError::Class32),
        Some(&c) => return Err(AppError::BadClass(c)),
        None => return Err(AppError::Truncated("no ELF identification".into())),
    }
    match bytes.get(header::EI_DATA) {
        Some(&header::ELFDATA2LSB) => {}
        Some(&header::ELFDATA2MSB) => return Err(AppError::BigEndian),
        _ => return Err(AppError::Malformed("bad data encoding byte".into())),
    }
    if bytes.len() < header::header64::SIZEOF_EHDR {
        return Err(AppError::Truncated(format!(
            "{} bytes, shorter than the {}-byte ELF header",
            bytes.len(),
            header::header64::SIZEOF_EHDR
        )));
    }
    Ok(())
}

/// AT_PHDR: PT_PHDR if present, else the loaded bytes that hold e_phoff.
fn phdr_address(phdrs: &[ProgramHeader], phoff: u64, segments: &[Segment], bias: u64) -> u64 {
    if let Some(p) = phdrs.iter().find(|p| p.p_type == program_header::PT_PHDR) {
        return p.p_vaddr.wrapping_add(bias);
    }
    segments
        .iter()
        .find(|s| (s.offset..s.offset + s.filesz).contains(&phoff))
        .map(|s| s.vaddr + (phoff - s.offset))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header + program headers, built by hand.
    fn elf(e_type: u16, machine: u16, phdrs: &[(u32, u32, u64, u64, u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        let entry = phdrs.first().map(|p| p.3).unwrap_or(0);
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(ty, flags, off, vaddr, filesz, memsz) in phdrs {
            let mut p = [0u8; 56];
            p[0..4].copy_from_slice(&ty.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[24..32].copy_from_slice(&vaddr.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            p[40..48].copy_from_slice(&memsz.to_le_bytes());
            p[48..56].copy_from_slice(&PAGE_4K.to_le_bytes());
            b.extend_from_slice(&p);
        }
        b.resize(8192, 0x90);
        b
    }

    const RX: u32 = 5;
    const RW: u32 = 6;

    #[test]
    fn static_exec_loads_at_link_address() {
        let b = elf(
            header::ET_EXEC,
            header::EM_X86_64,
            &[(1, RX, 0, 0x40_1000, 0x1000, 0x1000)],
        );
        let p = plan(&b, b.len() as u64, 0).unwrap();
        assert_eq!(p.kind, AppKind::Static);
        assert_eq!((p.start, p.end, p.entry), (0x40_1000, 0x40_2000, 0x40_1000));
    }

    #[test]
    fn pie_is_rebased() {
        let b = elf(
            header::ET_DYN,
            header::EM_X86_64,
            &[
                (1, RX, 0, 0, 0x1000, 0x1000),
                (1, RW, 0x1000, 0x1000, 0x10, 0x5000),
            ],
        );
        let p = plan(&b, b.len() as u64, 0x1000_0000_0000).unwrap();
        assert_eq!(p.kind, AppKind::StaticPie);
        assert_eq!(p.start, 0x1000_0000_0000);
        assert_eq!(p.end, 0x1000_0000_6000);
        assert_eq!(p.phdr, 0x1000_0000_0040);
    }

    #[test]
    fn interpreter_is_planned_and_checked() {
        const PT_INTERP: u32 = 3;
        let x = header::EM_X86_64;
        let with = |name: &[u8], extra: bool| {
            let n = if extra { 3 } else { 2 };
            let at = 64 + 56 * n as u64;
            let mut ph = vec![
                (1, RX, 0, 0, 0x1000, 0x1000),
                (PT_INTERP, 4, at, at, name.len() as u64, name.len() as u64),
            ];
            if extra {
                ph.push((PT_INTERP, 4, at, at, name.len() as u64, name.len() as u64));
            }
            let mut b = elf(header::ET_DYN, x, &ph);
            b[24..32].copy_from_slice(&0u64.to_le_bytes());
            b[at as usize..at as usize + name.len()].copy_from_slice(name);
            b
        };
        let b = with(b"/lib/ld.so\0", false);
        let p = plan(&b, b.len() as u64, 0x1000_0000_0000).unwrap();
        assert_eq!(p.kind, AppKind::StaticPie);
        let (off, len) = p.interp.unwrap();
        let name = &b[off as usize..(off + len) as usize];
        assert_eq!(interp_path(name).unwrap(), b"/lib/ld.so");
        for bad in [&b"/lib/ld.so"[..], b"\0", b"/lib\0ld\0"] {
            let b = with(bad, false);
            assert!(
                matches!(plan(&b, b.len() as u64, 0), Err(AppError::BadInterp(_))),
                "{bad:?}"
            );
            assert!(interp_path(bad).is_err());
        }
        let b = with(b"/lib/ld.so\0", true);
        assert_eq!(
            plan(&b, b.len() as u64, 0).unwrap_err(),
            AppError::TwoInterps
        );
        // Its bytes past the end of the file.
        let b = with(b"/lib/ld.so\0", false);
        assert!(matches!(
            plan(&b[..180], 180, 0),
            Err(AppError::BadInterp(_))
        ));
    }

    #[test]
    fn rejections() {
        let x = header::EM_X86_64;
        type Check = fn(&AppError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![], |e| *e == AppError::Empty),
            (b"#!/bin/sh\n".to_vec(), |e| *e == AppError::NotElf),
            (
                elf(header::ET_EXEC, 40, &[(1, RX, 0, 0x40_1000, 16, 16)]),
                |e| matches!(e, AppError::Machine(_)),
            ),
            (
                elf(header::ET_REL, x, &[(1, RX, 0, 0x40_1000, 16, 16)]),
                |e| matches!(e, AppError::Type(_)),
            ),
            (
                elf(header::ET_EXEC, x, &[(1, RX, 0, 0x1000, 16, 16)]),
                |e| matches!(e, AppError::Reserved { .. }),
            ),
            (
                elf(header::ET_EXEC, x, &[(1, RX, 0, 0x40_1000, 32, 16)]),
                |e| matches!(e, AppError::FileszOverMemsz { .. }),
            ),
            (
                elf(
                    header::ET_EXEC,
                    x,
                    &[(1, RX, 0, 0x40_1000, 1 << 20, 1 << 20)],
                ),
                |e| matches!(e, AppError::PastEof { .. }),
            ),
            (
                elf(header::ET_EXEC, x, &[(1, RX, 0, 0x40_1000, 16, 1 << 40)]),
                |e| matches!(e, AppError::TooLarge(_)),
            ),
            (
                elf(header::ET_EXEC, x, &[(1, RX, 0, u64::MAX - 8, 16, 16)]),
                |e| matches!(e, AppError::Wraps(_)),
            ),
            (
                elf(
                    header::ET_EXEC,
                    x,
                    &[
                        (1, RX, 0, 0x40_1000, 0x100, 0x2000),
                        (1, RW, 0, 0x40_2000, 16, 16),
                    ],
                ),
                |e| matches!(e, AppError::Overlap(_)),
            ),
            (
                elf(
                    header::ET_EXEC,
                    x,
                    &[(1, RW, 0, 0x40_1000, 16, 16), (4, 4, 0, 0, 0, 0)],
                ),
                |e| matches!(e, AppError::Entry(_)),
            ),
        ];
        for (i, (bytes, ok)) in cases.iter().enumerate() {
            let e = plan(bytes, bytes.len() as u64, 0).expect_err("must be rejected");
            assert!(ok(&e), "case {i}: unexpected {e:?}");
        }
        let mut b32 = elf(header::ET_EXEC, x, &[]);
        b32[4] = 1;
        assert_eq!(
            plan(&b32, b32.len() as u64, 0).unwrap_err(),
            AppError::Class32
        );
        let mut be = elf(header::ET_EXEC, x, &[]);
        be[5] = 2;
        assert_eq!(
            plan(&be, be.len() as u64, 0).unwrap_err(),
            AppError::BigEndian
        );
        let full = elf(header::ET_EXEC, x, &[(1, RX, 0, 0x40_1000, 16, 16)]);
        for cut in [5, 20, 63, 64, 100] {
            assert!(
                plan(&full[..cut], cut as u64, 0).is_err(),
                "truncated at {cut}"
            );
        }
    }
}
#[cfg(test)]
mod symbol_tests {
    use super::*;

    /// What goblin finds parsing the whole file, to compare the piecewise reader with.
    fn whole_file(bytes: &[u8], bias: u64) -> Vec<(u64, u64, String)> {
        let elf = Elf::parse(bytes).unwrap();
        let mut v: Vec<_> = elf
            .syms
            .iter()
            .filter(|s| s.st_type() == sym::STT_FUNC && s.st_value != 0)
            .map(|s| {
                let name = elf.strtab.get_at(s.st_name).unwrap().as_bytes();
                let name = &name[..name.len().min(MAX_SYMBOL_NAME)];
                let name = String::from_utf8_lossy(name).into_owned();
                (s.st_value.wrapping_add(bias), s.st_size, name)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn piecewise_symbols_match_goblin() {
        // This test binary is an ELF with a symbol table.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let ours = symbols(&bytes, 0x1000);
        assert!(!ours.is_empty());
        assert_eq!(ours, whole_file(&bytes, 0x1000));
    }

    #[test]
    fn a_file_shorter_than_its_headers_has_no_symbols() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        assert!(symbols(cut, 0).is_empty());
        // A reader that never has the bytes (the file was truncated after load).
        assert!(symbols_with(|_, _| None, 0).is_empty());
    }
}
