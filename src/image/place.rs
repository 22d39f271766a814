//! Placing the application in guest memory: its image (from a [`LoadPlan`]), its stack and its
//! heap arena, all mapped in the page tables before the first instruction.
//!
//! Physical memory from `APP_PHYS_BASE` holds, in order: the image, the interpreter's image (a
//! dynamically linked program's `ld.so`), the 8 MiB stack, the arena (all remaining RAM).
//! Virtually, a position-independent image sits at the base of the first program namespace and
//! the stack at its top, with an unmapped guard below it; the interpreter at the base of the
//! next namespace ([`INTERP_NAMESPACE`]), which loads the libraries itself through
//! open/mmap/mprotect; the arena starts at
//! `MMAP_BASE` (OSv's mmap area), outside the 8 GiB namespace, so every byte of RAM is usable
//! by brk and mmap whatever `-m` says.
use crate::image::elf::{self, LoadPlan};
use crate::image::stack::{self, at, StackSpec};
use crate::image::LoaderError;
use crate::machine::memory::{GuestMem, OverlayKind};
use crate::machine::paging::{PageTables, Region, NO_EXECUTE, PAGE_2M, PAGE_4K, USER, WRITABLE};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use umon_abi::layout::{
    namespace_base, APP_PHYS_BASE, FIRST_APP_NAMESPACE, MMAP_BASE, NAMESPACE_BYTES, VDSO_BASE,
    VDSO_MAX_BYTES, VDSO_PHYS, VSYSCALL_BASE, VSYSCALL_PHYS, VVAR_BASE, VVAR_BYTES, VVAR_PHYS,
};
use umon_abi::{Gpa, Gva};

/// The application's stack size (RLIMIT_STACK as Linux defaults it).
pub const STACK_BYTES: u64 = 8 << 20;
/// Unmapped space below the stack: an overflow faults instead of running into the arena.
pub const STACK_GUARD_BYTES: u64 = 2 << 20;
/// The smallest arena umon starts an application with.
pub const MIN_ARENA_BYTES: u64 = 2 << 20;

/// The vDSO (built by build.rs from `guest/vdso`): an ELF shared object whose file is its
/// image (one PT_LOAD from offset 0, no relocations), mapped as is at `VDSO_BASE`.
pub const VDSO_IMAGE: &[u8] = include_bytes!(env!("UMON_VDSO"));
const _: () = assert!(VDSO_IMAGE.len() as u64 <= VDSO_MAX_BYTES);

/// The legacy vsyscall page's entries (Linux's `VSYSCALL_ADDR` + 0, 0x400, 0x800):
/// gettimeofday, time, getcpu, each `mov eax, NR; syscall; ret`, which is what Linux's
/// `vsyscall=xonly` emulation does for a call there. The rest of the page is int3.
const VSYSCALL_ENTRIES: [(usize, syscalls::Sysno); 3] = [
    (0x000, syscalls::Sysno::gettimeofday),
    (0x400, syscalls::Sysno::time),
    (0x800, syscalls::Sysno::getcpu),
];

/// The program to place: its file (or bytes), argv and environment.
#[derive(Clone, Copy, Debug)]
pub struct Program<'a> {
    /// Host path of the executable.
    pub path: &'a Path,
    /// argv, including `argv[0]`.
    pub args: &'a [OsString],
    /// The environment, as "KEY=VALUE".
    pub env: &'a [OsString],
    /// The executable's bytes, when the caller holds them instead of a file at `path` (`path`
    /// is then only its name, for argv\[0\] and /proc/self/exe).
    pub bytes: Option<&'a Arc<[u8]>>,
}

/// An application in guest memory, ready to enter.
pub struct LoadedApp {
    /// Entry point.
    pub entry: u64,
    /// Initial stack pointer.
    pub rsp: u64,
    /// Its mapped regions (image, stack, arena), as the page tables map them.
    pub regions: Vec<Region>,
    /// The heap arena (brk and mmap), one of `regions`.
    pub arena: Region,

    /// What readlink("/proc/self/exe") returns.
    pub exe: Vec<u8>,
    /// Its function symbols, from the executable as opened at load time.
    pub symbols: super::symbols::Symbols,
}

/// One image (the executable or its interpreter) as Linux's ELF loader maps it, for
/// `/proc/self/maps`: which pages are a view of which file offset and which are anonymous.
#[derive(Debug)]
pub struct ImageMap {
    /// The interpreter's path as PT_INTERP gives it (its name is where that file is now in the
    /// guest's view); None for the executable (named as `/proc/self/exe`).
    pub interp: Option<Vec<u8>>,
    /// The interpreter's file as opened at load time, kept to find its current path.
    pub file: Option<File>,
    /// (st_dev, st_ino) of the file as loaded (None for an image given as bytes).
    pub id: Option<(u64, u64)>,
    /// Its pages, sorted and disjoint ([`linux_pieces`]).
    pub pieces: Vec<ImagePiece>,
}

/// A run of an image's pages mapped one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImagePiece {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// The file offset of `start`; None for the anonymous memory past a segment's file part.
    pub offset: Option<u64>,
    /// The segment's PF_R/PF_W/PF_X as PROT_* bits: Linux merges two segments' mappings only
    /// when their flags match and their offsets continue.
    pub prot: u32,
}

/// How Linux's `elf_load` maps `plan`'s segments: a segment's file part is a private mapping
/// of its whole pages from its page-aligned offset; the zeroed part beyond its file's last
/// page is anonymous memory (`vm_brk_flags`; a segment without file bytes is all anonymous).
/// A later segment replaces what an earlier one mapped on a shared page (MAP_FIXED).
pub fn linux_pieces(plan: &LoadPlan) -> Vec<ImagePiece> {
    let down = |a: u64| a & !(PAGE_4K - 1);
    let up = |a: u64| a.next_multiple_of(PAGE_4K);
    let mut pieces: Vec<ImagePiece> = Vec::new();
    let mut add = |new: ImagePiece| {
        if new.end <= new.start {
            return;
        }
        let mut kept = Vec::with_capacity(pieces.len() + 2);
        for p in pieces.drain(..) {
            if p.end <= new.start || new.end <= p.start {
                kept.push(p);
                continue;
            }
            if p.start < new.start {
                kept.push(ImagePiece {
                    end: new.start,
                    ..p
                });
            }
            if new.end < p.end {
                kept.push(ImagePiece {
                    start: new.end,
                    offset: p.offset.map(|o| o + (new.end - p.start)),
                    ..p
                });
            }
        }
        kept.push(new);
        kept.sort_by_key(|p| p.start);
        pieces = kept;
    };
    for s in &plan.segments {
        let prot = u32::from(s.read) | u32::from(s.write) << 1 | u32::from(s.exec) << 2;
        let start = down(s.vaddr);
        let zero_start = if s.filesz > 0 {
            let end = up(s.vaddr + s.filesz);
            add(ImagePiece {
                start,
                end,
                offset: Some(s.offset - (s.vaddr - start)),
                prot,
            });
            end
        } else {
            start
        };
        add(ImagePiece {
            start: zero_start,
            end: up(s.vaddr + s.memsz),
            offset: None,
            prot,
        });
    }
    pieces
}

/// Machine facts that go into the auxiliary vector.
pub struct AuxFacts {
    /// CPUID(1).EDX as the guest sees it.
    pub hwcap: u64,
}

/// Where an application's pieces go, physically and virtually.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The program namespace used (its index).
    pub namespace: u64,
    /// Physical address of the image.
    pub pa_image: u64,
    /// Physical address of the interpreter's image (right after the image; nothing there
    /// without one).
    pub pa_interp: u64,
    /// Physical address of the stack.
    pub pa_stack: u64,
    /// Physical address of the arena.
    pub pa_arena: u64,
    /// Lowest stack address.
    pub stack_bottom: u64,
    /// Initial top of the stack (exclusive).
    pub stack_top: u64,
    /// First arena address.
    pub arena_start: u64,
    /// Arena bytes (brk + mmap).
    pub arena_len: u64,
}

/// Lay out `plan` (and the interpreter's `interp`, right after it physically) in `ram` bytes
/// of guest RAM; Err(bytes needed) when it does not fit.
pub fn layout(plan: &LoadPlan, interp: Option<&LoadPlan>, ram: u64) -> Result<Layout, u64> {
    let ns = namespace_base(FIRST_APP_NAMESPACE);
    let pa_image = APP_PHYS_BASE;
    let pa_interp = pa_image + (plan.end - plan.start);
    let interp_bytes = interp.map_or(0, |i| i.end - i.start);
    let pa_stack = (pa_interp + interp_bytes).next_multiple_of(PAGE_2M);
    let pa_arena = pa_stack + STACK_BYTES;
    let need = pa_arena + MIN_ARENA_BYTES;
    if need > ram {
        return Err(need);
    }
    let stack_top = ns + NAMESPACE_BYTES;
    let stack_bottom = stack_top - STACK_BYTES;
    let arena_start = MMAP_BASE;
    Ok(Layout {
        namespace: FIRST_APP_NAMESPACE,
        pa_image,
        pa_interp,
        pa_stack,
        pa_arena,
        stack_bottom,
        stack_top,
        arena_start,
        arena_len: (ram - pa_arena) & !(PAGE_2M - 1),
    })
}

/// The executable's bytes: the host file opened at load time (read piecewise, never past the
/// length it had then) or bytes the caller holds. The app may rewrite, truncate or replace its
/// file through a writable volume; reading from this handle, bounded by the load-time length,
/// never opens a host path again and never reads more than the file had.
pub enum ExeImage {
    /// A regular file and its length when it was loaded.
    File {
        /// The open file.
        file: File,
        /// Its length at load time.
        len: u64,
    },
    /// Bytes the caller holds.
    Bytes(Arc<[u8]>),
}

impl ExeImage {
    /// Put `len` bytes at `offset` into guest RAM at `gpa`. From a file, the whole pages are
    /// a private mapping of the file laid over the frames (no copy: pages are read from the
    /// page cache at first touch, so start-up does not grow with the image), and only the
    /// partial pages at either end are read.
    fn copy(&mut self, mem: &GuestMem, gpa: Gpa, offset: u64, len: u64) -> Result<(), PlaceError> {
        if let ExeImage::File { file, .. } = self {
            let end = gpa.0 + len;
            let first = gpa.0.next_multiple_of(PAGE_4K).min(end);
            let last = (end & !(PAGE_4K - 1)).max(first);
            // ELF puts p_offset and p_vaddr at the same place in a page, so the file's pages
            // line up with the frames'.
            let file_at = offset + (first - gpa.0);
            if last > first && file_at % PAGE_4K == 0 {
                let fd = std::os::fd::AsFd::as_fd(file);
                if mem
                    .overlay(Gpa(first), last - first, fd, file_at, OverlayKind::Private)
                    .is_ok()
                {
                    self.read_into(mem, gpa, offset, first - gpa.0)?;
                    return self.read_into(mem, Gpa(last), offset + (last - gpa.0), end - last);
                }
            }
        }
        self.read_into(mem, gpa, offset, len)
    }

    /// Copy `len` bytes at `offset` into guest RAM at `gpa`.
    fn read_into(
        &mut self,
        mem: &GuestMem,
        gpa: Gpa,
        offset: u64,
        len: u64,
    ) -> Result<(), PlaceError> {
        if len == 0 {
            return Ok(());
        }
        match self {
            ExeImage::File { file, .. } => {
                file.seek(SeekFrom::Start(offset)).map_err(PlaceError::Io)?;
                let mut done = 0;
                while done < len {
                    let n = mem.read_from(Gpa(gpa.0 + done), len - done, file)?;
                    if n == 0 {
                        return Err(PlaceError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                    done += n as u64;
                }
                Ok(())
            }
            ExeImage::Bytes(bytes) => {
                let part = bytes
                    .get(offset as usize..(offset + len) as usize)
                    .ok_or_else(|| PlaceError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
                mem.write_bytes(gpa, part)?;
                Ok(())
            }
        }
    }

    /// `len` bytes at `offset` (a short file is UnexpectedEof).
    fn read(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        match self {
            ExeImage::File { file, .. } => {
                let mut buf = vec![0u8; usize::try_from(len).map_err(|_| eof())?];
                file.read_exact_at(&mut buf, offset)?;
                Ok(buf)
            }
            ExeImage::Bytes(bytes) => {
                let start = usize::try_from(offset).map_err(|_| eof())?;
                let end = start
                    .checked_add(usize::try_from(len).map_err(|_| eof())?)
                    .ok_or_else(eof)?;
                bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(eof)
            }
        }
    }

    /// (st_dev, st_ino) of the file (None for bytes, or when fstat fails).
    pub fn file_id(&self) -> Option<(u64, u64)> {
        match self {
            ExeImage::File { file, .. } => {
                use std::os::unix::fs::MetadataExt;
                let meta = file.metadata().ok()?;
                Some((meta.dev(), meta.ino()))
            }
            ExeImage::Bytes(_) => None,
        }
    }

    /// The function symbols, rebased by `bias` (see [`elf::symbols_with`]); empty when the
    /// file no longer holds what its headers promise.
    pub fn symbols(&self, bias: u64) -> Vec<(u64, u64, String)> {
        match self {
            ExeImage::File { file, len } => elf::symbols_with(
                |offset, n| {
                    let end = offset.checked_add(n)?;
                    if end > *len {
                        return None;
                    }
                    let mut buf = vec![0u8; usize::try_from(n).ok()?];
                    file.read_exact_at(&mut buf, offset).ok()?;
                    Some(buf)
                },
                bias,
            ),
            ExeImage::Bytes(bytes) => elf::symbols(bytes, bias),
        }
    }
}

/// The program namespace the interpreter of a dynamically linked program goes into: the one
/// after the program's, as OSv gives every ELF object a namespace of its own.
pub const INTERP_NAMESPACE: u64 = FIRST_APP_NAMESPACE + 1;

/// Opens a path in the guest's file view (volumes, `--root`, as the application would see it)
/// for reading: how the loader finds a program's interpreter.
pub type GuestOpen<'a> = &'a dyn Fn(&[u8]) -> std::io::Result<File>;

/// Why a file could not be planned: reading it, or its contents.
enum PlanError {
    Io(std::io::Error),
    Elf(elf::AppError),
}

/// Check that `file` may be executed as execve would (a regular file with execute permission
/// for umon's effective ids; `exec_ok` checks that), read its headers and plan its load with a
/// position-independent image at `base`.
fn plan_file(
    file: File,
    exec_ok: impl FnOnce(&File) -> std::io::Result<()>,
    base: u64,
) -> Result<(ExeImage, LoadPlan), PlanError> {
    let meta = file.metadata().map_err(PlanError::Io)?;
    if meta.is_dir() {
        return Err(PlanError::Io(std::io::Error::from_raw_os_error(
            libc::EISDIR,
        )));
    }
    if !meta.is_file() {
        return Err(PlanError::Io(std::io::Error::from_raw_os_error(
            libc::EACCES,
        )));
    }
    exec_ok(&file).map_err(PlanError::Io)?;
    let file_len = meta.len();
    let mut head = vec![0u8; 64.min(file_len) as usize];
    file.read_exact_at(&mut head, 0).map_err(PlanError::Io)?;
    head.resize(elf::head_len(&head, file_len) as usize, 0);
    file.read_exact_at(&mut head, 0).map_err(PlanError::Io)?;
    let plan = elf::plan(&head, file_len, base).map_err(PlanError::Elf)?;
    Ok((
        ExeImage::File {
            file,
            len: file_len,
        },
        plan,
    ))
}

/// Open `cfg`'s executable and plan its load: the parts of [`load`] that need no VM.
fn open_and_plan(cfg: Program<'_>) -> Result<(ExeImage, LoadPlan), LoaderError> {
    let shown = cfg.path.display().to_string();
    let unreadable = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => LoaderError::AppNotFound {
            path: shown.clone(),
        },
        _ => LoaderError::AppRead {
            path: shown.clone(),
            source,
        },
    };
    let ns = namespace_base(FIRST_APP_NAMESPACE);
    if let Some(bytes) = cfg.bytes {
        let plan = elf::plan(bytes, bytes.len() as u64, ns).map_err(|source| LoaderError::App {
            path: shown.clone(),
            source,
        })?;
        return Ok((ExeImage::Bytes(bytes.clone()), plan));
    }
    // Only the headers are read up front; segments go straight from the file into guest RAM.
    // Non-blocking, so a FIFO (or a device) at the path cannot stall the open; only a regular
    // file is read, as execve insists.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(cfg.path)
        .map_err(unreadable)?;
    // execve's check: execute permission for umon's effective ids (root: any x bit).
    let exec_ok = |_: &File| {
        rustix::fs::accessat(
            rustix::fs::CWD,
            cfg.path,
            rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::EACCESS,
        )
        .map_err(std::io::Error::from)
    };
    plan_file(file, exec_ok, ns).map_err(|e| match e {
        PlanError::Io(e) => unreadable(e),
        PlanError::Elf(source) => LoaderError::App {
            path: shown.clone(),
            source,
        },
    })
}

/// A dynamically linked program's interpreter, opened in the guest's file view and planned.
struct Interp {
    /// Its guest path, for messages.
    name: String,
    /// Its path as PT_INTERP gives it.
    path: Vec<u8>,
    image: ExeImage,
    plan: LoadPlan,
}

/// Find and plan the interpreter `plan` names (PT_INTERP): opened through `open`, so in the
/// guest's file view, as Linux opens it in the process's mount namespace; executable as
/// execve requires (`open_exec`); placed in [`INTERP_NAMESPACE`] when position-independent.
fn open_interp(
    cfg: Program<'_>,
    source: &ExeImage,
    plan: &LoadPlan,
    open: GuestOpen<'_>,
) -> Result<Option<Interp>, LoaderError> {
    let Some((offset, len)) = plan.interp else {
        return Ok(None);
    };
    let shown = cfg.path.display().to_string();
    let bytes = source
        .read(offset, len)
        .map_err(|source| LoaderError::AppRead {
            path: shown.clone(),
            source,
        })?;
    let path = elf::interp_path(&bytes).map_err(|source| LoaderError::App {
        path: shown.clone(),
        source,
    })?;
    // The name comes from the file: escaped so the message stays one line.
    let name = String::from_utf8_lossy(&path).escape_debug().to_string();
    let file = open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoaderError::InterpNotFound {
            path: shown.clone(),
            interp: name.clone(),
        },
        _ => LoaderError::InterpRead {
            path: shown.clone(),
            interp: name.clone(),
            source: e,
        },
    })?;
    let exec_ok = |f: &File| {
        use std::os::fd::AsRawFd;
        // The handle's own /proc entry: the object already opened, not the path again.
        rustix::fs::accessat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", f.as_raw_fd()),
            rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::EACCESS,
        )
        .map_err(std::io::Error::from)
    };
    let (image, interp_plan) =
        plan_file(file, exec_ok, namespace_base(INTERP_NAMESPACE)).map_err(|e| match e {
            PlanError::Io(source) => LoaderError::InterpRead {
                path: shown.clone(),
                interp: name.clone(),
                source,
            },
            PlanError::Elf(source) => LoaderError::Interp {
                path: shown.clone(),
                interp: name.clone(),
                source,
            },
        })?;
    // An ET_EXEC interpreter goes to its link address, which may be the program's.
    if interp_plan.start < plan.end && plan.start < interp_plan.end {
        return Err(LoaderError::Interp {
            path: shown,
            interp: name,
            source: elf::AppError::Overlap(interp_plan.start.max(plan.start)),
        });
    }
    Ok(Some(Interp {
        name,
        path,
        image,
        plan: interp_plan,
    }))
}

/// Validate `cfg`'s executable and say where it would go in `ram` bytes of guest RAM, without
/// a VM (`umon inspect`); a dynamically linked one is refused (no file view to find its
/// interpreter in).
pub fn inspect(cfg: Program<'_>, ram: u64) -> Result<(LoadPlan, Layout), LoaderError> {
    let (source, plan) = open_and_plan(cfg)?;
    // Without a VM there is no file view: a dynamically linked program is refused as `run`
    // refuses it without volumes.
    let no_files = |_: &[u8]| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    open_interp(cfg, &source, &plan, &no_files)?;
    let lay = layout(&plan, None, ram).map_err(|need| LoaderError::NoRoom {
        path: cfg.path.display().to_string(),
        need,
        ram,
    })?;
    Ok((plan, lay))
}

/// Read, validate and place `cfg`'s executable, and for a dynamically linked one its
/// interpreter (found through `open`, in the guest's file view); map everything in `pt`.
pub fn load(
    mem: &GuestMem,
    pt: &mut PageTables,
    cfg: Program<'_>,
    facts: &AuxFacts,
    open: GuestOpen<'_>,
) -> Result<LoadedApp, LoaderError> {
    let (mut source, plan) = open_and_plan(cfg)?;
    let mut interp = open_interp(cfg, &source, &plan, open)?;
    let lay = layout(&plan, interp.as_ref().map(|i| &i.plan), mem.bytes()).map_err(|need| {
        LoaderError::NoRoom {
            path: cfg.path.display().to_string(),
            need,
            ram: mem.bytes(),
        }
    })?;
    let mut regions =
        place_image(mem, pt, &plan, &mut source, lay.pa_image).map_err(|e| match e {
            PlaceError::Io(source) => LoaderError::AppRead {
                path: cfg.path.display().to_string(),
                source,
            },
            PlaceError::Other(e) => e,
        })?;
    if let Some(i) = &mut interp {
        let placed =
            place_image(mem, pt, &i.plan, &mut i.image, lay.pa_interp).map_err(|e| match e {
                PlaceError::Io(source) => LoaderError::InterpRead {
                    path: cfg.path.display().to_string(),
                    interp: i.name.clone(),
                    source,
                },
                PlaceError::Other(e) => e,
            })?;
        regions.extend(placed);
    }
    for (start, len, pa) in [
        (lay.stack_bottom, STACK_BYTES, lay.pa_stack),
        (lay.arena_start, lay.arena_len, lay.pa_arena),
    ] {
        // The arena is not mapped: the Linux layer maps its pages as they are touched.
        if start != lay.arena_start {
            pt.map(
                mem,
                Gva(start),
                Gpa(pa),
                len,
                PAGE_2M,
                USER | WRITABLE | NO_EXECUTE,
            )?;
        }
        regions.push(Region {
            start,
            end: start + len,
            pa,
            write: true,
            exec: false,
        });
    }
    regions.extend(map_vdso(mem, pt)?);
    let arena = Region {
        start: lay.arena_start,
        end: lay.arena_start + lay.arena_len,
        pa: lay.pa_arena,
        write: true,
        exec: false,
    };
    let (stack_top, stack_bottom, pa_stack) = (lay.stack_top, lay.stack_bottom, lay.pa_stack);

    let args: Vec<Vec<u8>> = cfg.args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let env: Vec<Vec<u8>> = cfg.env.iter().map(|e| e.as_bytes().to_vec()).collect();
    let mut random = [0u8; 16];
    let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
    let ids = crate::machine::host::ids();
    let auxv = [
        (at::SYSINFO_EHDR, VDSO_BASE),
        (at::PHDR, plan.phdr),
        (at::PHENT, plan.phent),
        (at::PHNUM, plan.phnum),
        (at::PAGESZ, PAGE_4K),
        (at::BASE, interp.as_ref().map_or(0, |i| i.plan.bias)),
        (at::FLAGS, 0),
        (at::ENTRY, plan.entry),
        (at::UID, ids.uid),
        (at::EUID, ids.uid),
        (at::GID, ids.gid),
        (at::EGID, ids.gid),
        (at::SECURE, 0),
        (at::HWCAP, facts.hwcap),
        (at::HWCAP2, 0),
        (at::CLKTCK, 100),
    ];
    let execfn = cfg.path.as_os_str().as_bytes();
    let spec = StackSpec {
        args: &args,
        env: &env,
        execfn,
        random,
        auxv: &auxv,
    };
    let initial =
        stack::build(&spec, stack_top, STACK_BYTES / 2).ok_or(LoaderError::ArgsTooLong {
            max: STACK_BYTES / 2,
        })?;
    mem.write_bytes(Gpa(pa_stack + (initial.rsp - stack_bottom)), &initial.bytes)?;

    // Always absolute, as Linux gives it (glibc asserts so): the real file, or for an app given
    // as bytes, its name under "/".
    let real = || std::fs::canonicalize(cfg.path).ok();
    let exe = match cfg.bytes.is_none().then(real).flatten() {
        Some(p) => p.as_os_str().as_bytes().to_vec(),
        None => {
            let mut abs = b"/".to_vec();
            abs.extend_from_slice(execfn.strip_prefix(b"/").unwrap_or(execfn));
            abs
        }
    };
    let entry = interp.as_ref().map_or(plan.entry, |i| i.plan.entry);
    let mut images = vec![ImageMap {
        interp: None,
        file: None,
        id: source.file_id(),
        pieces: linux_pieces(&plan),
    }];
    if let Some(i) = interp {
        let id = i.image.file_id();
        images.push(ImageMap {
            interp: Some(i.path),
            file: match i.image {
                ExeImage::File { file, .. } => Some(file),
                ExeImage::Bytes(_) => None,
            },
            id,
            pieces: linux_pieces(&i.plan),
        });
    }
    Ok(LoadedApp {
        entry,
        rsp: initial.rsp,
        regions,
        arena,
        exe,
        symbols: super::symbols::Symbols::new(source, plan.bias).with_images(images),
    })
}

/// Put the vDSO image and the legacy vsyscall page in their physical homes and map them, with
/// the time page, for the application: the time page read-only and NX (the monitor fills it;
/// see `linux::vdso`), the vDSO and the vsyscall page read-only and executable. Returns the
/// regions the application may see (the vsyscall page is not one: like Linux's `xonly`, the
/// kernel's own accesses to it fail). All three sit outside the namespace and the arena, so no
/// brk or mmap can hand them out.
fn map_vdso(mem: &GuestMem, pt: &mut PageTables) -> Result<Vec<Region>, LoaderError> {
    let vdso_len = (VDSO_IMAGE.len() as u64).next_multiple_of(PAGE_4K);
    mem.zero(Gpa(VVAR_PHYS), VVAR_BYTES + vdso_len)?;
    mem.write_bytes(Gpa(VDSO_PHYS), VDSO_IMAGE)?;
    let mut vsyscall = vec![0xccu8; PAGE_4K as usize];
    for (at, nr) in VSYSCALL_ENTRIES {
        let mut code = vec![0xb8]; // mov eax, imm32
        code.extend_from_slice(&(nr as u32).to_le_bytes());
        code.extend_from_slice(&[0x0f, 0x05, 0xc3]); // syscall; ret
        vsyscall[at..at + code.len()].copy_from_slice(&code);
    }
    mem.write_bytes(Gpa(VSYSCALL_PHYS), &vsyscall)?;
    pt.map(
        mem,
        Gva(VVAR_BASE),
        Gpa(VVAR_PHYS),
        VVAR_BYTES,
        PAGE_4K,
        USER | NO_EXECUTE,
    )?;
    pt.map(mem, Gva(VDSO_BASE), Gpa(VDSO_PHYS), vdso_len, PAGE_4K, USER)?;
    pt.map(
        mem,
        Gva(VSYSCALL_BASE),
        Gpa(VSYSCALL_PHYS),
        PAGE_4K,
        PAGE_4K,
        USER,
    )?;
    Ok(vec![
        Region {
            start: VVAR_BASE,
            end: VVAR_BASE + VVAR_BYTES,
            pa: VVAR_PHYS,
            write: false,
            exec: false,
        },
        Region {
            start: VDSO_BASE,
            end: VDSO_BASE + vdso_len,
            pa: VDSO_PHYS,
            write: false,
            exec: true,
        },
    ])
}

/// Placing the image failed: reading the file, or guest memory / page tables.
enum PlaceError {
    Io(std::io::Error),
    Other(LoaderError),
}

impl<E: Into<LoaderError>> From<E> for PlaceError {
    fn from(e: E) -> Self {
        PlaceError::Other(e.into())
    }
}

/// Copy the segments to `pa` onwards (the image is physically contiguous) and map each page
/// with the union of the permissions of the segments on it. Bytes past p_filesz stay zero:
/// this memory has never been written.
fn place_image(
    mem: &GuestMem,
    pt: &mut PageTables,
    plan: &LoadPlan,
    source: &mut ExeImage,
    pa: u64,
) -> Result<Vec<Region>, PlaceError> {
    for s in &plan.segments {
        source.copy(mem, Gpa(pa + (s.vaddr - plan.start)), s.offset, s.filesz)?;
    }
    let mut regions: Vec<Region> = Vec::new();
    let mut page = plan.start;
    while page < plan.end {
        let (mut write, mut exec, mut used) = (false, false, false);
        for s in plan
            .segments
            .iter()
            .filter(|s| s.vaddr < page + PAGE_4K && page < s.vaddr + s.memsz)
        {
            used = true;
            write |= s.write;
            exec |= s.exec;
        }
        if used {
            let mut flags = USER;
            if write {
                flags |= WRITABLE;
            }
            if !exec {
                flags |= NO_EXECUTE;
            }
            let page_pa = pa + (page - plan.start);
            pt.map(mem, Gva(page), Gpa(page_pa), PAGE_4K, PAGE_4K, flags)?;
            match regions.last_mut() {
                Some(r) if r.end == page && r.write == write && r.exec == exec => r.end += PAGE_4K,
                _ => regions.push(Region {
                    start: page,
                    end: page + PAGE_4K,
                    pa: page_pa,
                    write,
                    exec,
                }),
            }
        }
        page += PAGE_4K;
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::elf::{AppKind, Segment};

    fn seg(vaddr: u64, offset: u64, filesz: u64, memsz: u64, w: bool, x: bool) -> Segment {
        Segment {
            vaddr,
            memsz,
            offset,
            filesz,
            read: true,
            write: w,
            exec: x,
        }
    }

    fn plan(segments: Vec<Segment>) -> LoadPlan {
        LoadPlan {
            kind: AppKind::Static,
            bias: 0,
            start: segments[0].vaddr & !(PAGE_4K - 1),
            end: segments
                .iter()
                .map(|s| (s.vaddr + s.memsz).next_multiple_of(PAGE_4K))
                .max()
                .unwrap_or(0),
            segments,
            entry: 0,
            phdr: 0,
            phent: 0,
            phnum: 0,
            interp: None,
        }
    }

    fn piece(start: u64, end: u64, offset: Option<u64>, prot: u32) -> ImagePiece {
        ImagePiece {
            start,
            end,
            offset,
            prot,
        }
    }

    /// Segments on pages of their own: a file line each from the page-aligned offset, the
    /// zeroed part past the file's last page anonymous, none when it ends in that page.
    #[test]
    fn segments_map_their_whole_pages_and_the_zeroed_rest_is_anonymous() {
        let p = plan(vec![
            seg(0x40_0000, 0, 0x6c0, 0x6c0, false, false),
            seg(0x40_1000, 0x1000, 0x1c5, 0x1c5, false, true),
            seg(0x40_3dd0, 0x2dd0, 0x258, 0x6_1d10, true, false),
            seg(0x46_8000, 0x3000, 0, 0x10, true, false),
        ]);
        assert_eq!(
            linux_pieces(&p),
            [
                piece(0x40_0000, 0x40_1000, Some(0), 1),
                piece(0x40_1000, 0x40_2000, Some(0x1000), 5),
                piece(0x40_3000, 0x40_5000, Some(0x2000), 3),
                piece(0x40_5000, 0x46_6000, None, 3),
                piece(0x46_8000, 0x46_9000, None, 3),
            ]
        );
    }

    /// Two segments sharing a page: the later one's mapping replaces the earlier one's there.
    #[test]
    fn a_later_segment_replaces_an_earlier_one_on_a_shared_page() {
        let p = plan(vec![
            seg(0x1000, 0x1000, 0x2800, 0x2800, false, true),
            seg(0x3900, 0x2900, 0x100, 0x3000, true, false),
        ]);
        assert_eq!(
            linux_pieces(&p),
            [
                piece(0x1000, 0x3000, Some(0x1000), 5),
                piece(0x3000, 0x4000, Some(0x2000), 3),
                piece(0x4000, 0x7000, None, 3),
            ]
        );
    }
}
