//! The shared-memory half of the `syscall` target: structured calls (an op byte in
//! `SHARED_OPS..SHARED_OPS + 8`) that build MAP_SHARED memory and use it as an application
//! does, with adversarial arguments at every step:
//!
//! - `0`: files to map: memfd_create, open of the volumes' files (O_RDWR, O_RDONLY, O_TRUNC,
//!   O_CREAT, O_PATH, /dev/zero, the read-only volumes), ftruncate to sizes around 0, a page
//!   and huge, F_ADD_SEALS/F_GET_SEALS, fallocate (punch hole, collapse, insert), close, dup;
//! - `1`: mmap of those fds and of anonymous memory, MAP_SHARED, MAP_SHARED_VALIDATE or
//!   MAP_PRIVATE, odd lengths, offsets (past the end of the file too) and protections, hints,
//!   MAP_FIXED over existing mappings, MAP_FIXED_NOREPLACE, and flags Linux refuses;
//! - `2`: stores and loads through a mapping as the application's instructions make them
//!   (the monitor's access; where the CPU would fault, the page fault goes through umon's
//!   fault handler first: a frame is bound, or SIGBUS/SIGSEGV is delivered);
//! - `3`: read, write, pread64, pwrite64 with a mapping as the buffer (of the mapped file
//!   itself too), and pread64 of the file into the data region;
//! - `4`: msync with every flag combination;
//! - `5`: mremap: grow, shrink, move, old size 0 (an alias of shared pages), MREMAP_FIXED
//!   over other mappings, MREMAP_DONTUNMAP;
//! - `6`: madvise (DONTNEED, REMOVE, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK, FREE, ...),
//!   mprotect, munmap of parts;
//! - `7`: futex WAKE, WAKE_BITSET, WAKE_OP, REQUEUE, CMP_REQUEUE on words in shared mappings
//!   (the host's futexes), and WAIT/WAIT_BITSET there tamed: with a short timeout or a value
//!   the word does not hold.
//!
//! Checked besides the harness's checks ([`check`], after every op here and at the end of the
//! input): every page of a file mapping that has a frame lies before the end of the file
//! (past it, a touch must be SIGBUS); the pages of a shared mapping (sampled) hold what the
//! file holds there, and bytes stored through one are what pread of the file returns; a
//! successful munmap leaves nothing mapped in its range, a successful mremap nothing of the
//! old range outside the new one (unless MREMAP_DONTUNMAP or an alias), a successful mmap
//! maps its whole range, at the address MAP_FIXED asked for.
//!
//! Taming ([`may_run`], for every call, structured or raw): a FUTEX_WAIT or FUTEX_WAIT_BITSET
//! without a timeout on a shared word that holds the expected value is skipped. Such a wait
//! is the host's futex, which another process could wake, so umon has no deadlock check for
//! it: on the harness's only thread it would wait for ever.
use crate::input::Input;
use crate::machine::{Machine, ARENA, DATA, EDGES, TEXT};
use std::os::fd::AsRawFd;
use umon::linux::mm::space::Access;
use umon::machine::hypercall::Cpu;
use umon::machine::memory::OverlayKind;
use umon::machine::vcpu::{AppFault, ExitHandler};

/// Op bytes `SHARED_OPS..SHARED_OPS + 8` are shared-memory calls.
pub const SHARED_OPS: u8 = 0x78;

/// Where in the data region these ops keep their state and structures (family uses
/// 0xa000.., net 0xb000.., longtail 0xc000.., pipes 0xd000.., signals 0xe000.., events
/// 0xf000..).
const SCRATCH: u64 = DATA.va + 0x9000;
/// The fds the last memfd_create and the last open returned (u32 each; the input's pokes
/// may change them).
const MEMFD_SLOT: u64 = SCRATCH;
const FILE_SLOT: u64 = SCRATCH + 4;
/// A timespec for the futex waits.
const TIMESPEC: u64 = SCRATCH + 0x10;
/// Paths and names.
const NAME: u64 = SCRATCH + 0x40;
/// Where pread64 of a file lands (up to the end of the scratch).
const BUF: u64 = SCRATCH + 0x200;
const BUF_LEN: u64 = 0xe00;

const PAGE: u64 = 4096;

const NR_READ: u64 = 0;
const NR_WRITE: u64 = 1;
const NR_OPEN: u64 = 2;
const NR_CLOSE: u64 = 3;
const NR_MMAP: u64 = 9;
const NR_MPROTECT: u64 = 10;
const NR_MUNMAP: u64 = 11;
const NR_PREAD64: u64 = 17;
const NR_PWRITE64: u64 = 18;
const NR_MREMAP: u64 = 25;
const NR_MSYNC: u64 = 26;
const NR_MINCORE: u64 = 27;
const NR_MADVISE: u64 = 28;
const NR_DUP: u64 = 32;
const NR_FCNTL: u64 = 72;
const NR_FTRUNCATE: u64 = 77;
const NR_FUTEX: u64 = 202;
const NR_FALLOCATE: u64 = 285;
const NR_MEMFD_CREATE: u64 = 319;

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 1;
const MAP_PRIVATE: u64 = 2;
const MAP_SHARED_VALIDATE: u64 = 3;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// Pages of shared mappings compared with their file per [`check`].
const CHECK_PAGES: usize = 64;

/// Whether syscall `nr` with arguments `a` may run: false for a futex wait that would wait
/// for ever on a shared word (see the module docs).
pub fn may_run(m: &Machine, nr: u64, a: [u64; 6]) -> bool {
    if nr != NR_FUTEX {
        return true;
    }
    let (uaddr, op, val, timeout) = (a[0], a[1], a[2], a[3]);
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    // Timed waits are shortened by the harness; the others fail at once (ENOSYS for
    // FUTEX_WAIT with CLOCK_REALTIME, EINVAL for an empty bitset, EINVAL/EFAULT for a bad
    // word), or are private (the harness's deadlock check ends them).
    if !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET)
        || timeout != 0
        || op & FUTEX_PRIVATE_FLAG != 0
        || (cmd == FUTEX_WAIT && op & FUTEX_CLOCK_REALTIME != 0)
        || (cmd == FUTEX_WAIT_BITSET && a[5] as u32 == 0)
        || uaddr % 4 != 0
    {
        return true;
    }
    let space = m.state.process.space();
    let Some(gpa) = space.shared_futex_word(uaddr) else {
        return true;
    };
    if space.chunks(uaddr, 4, Access::Write).is_err() {
        return true; // EFAULT at once
    }
    match m.state.machine.mem.read::<u32>(gpa) {
        Ok(now) => now != val as u32,
        Err(_) => true,
    }
}

fn put(m: &Machine, va: u64, bytes: &[u8]) {
    let space = m.state.process.space();
    let _ = space.write(&m.state.machine.mem, va, bytes);
}

fn get_u32(m: &Machine, va: u64) -> Option<u32> {
    let space = m.state.process.space();
    space.read_val::<u32>(&m.state.machine.mem, va).ok()
}

/// Whether the last call succeeded.
fn ok(m: &Machine) -> bool {
    (m.last() as i64) >= 0 || (m.last() as i64) < -4095
}

/// Remember the last result in `slot` when it is an fd.
fn keep_fd(m: &Machine, slot: u64) {
    if m.last() < 1024 {
        put(m, slot, &(m.last() as u32).to_le_bytes());
    }
}

/// An fd: the last memfd, the last opened file, the last result, a small number, -1, any.
fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 8 {
        0..=2 => get_u32(m, MEMFD_SLOT).map_or(3, u64::from),
        3..=5 => get_u32(m, FILE_SLOT).map_or(3, u64::from),
        6 => u64::from(input.u8() % 16),
        _ => match input.u8() % 4 {
            0 => m.last_fd(),
            1 => u64::MAX,
            2 => u64::from(u32::MAX),
            _ => m.arg(input),
        },
    }
}

/// A size or length around the edges: 0, a byte, pages and a bit, huge, negative.
fn size(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() % 12 {
        0 => 0,
        1 => 1,
        2 => PAGE - 1,
        3 => PAGE,
        4 => PAGE + 1,
        5 => u64::from(input.u8() % 16 + 1) * PAGE,
        6 => u64::from(input.u8() % 16) * PAGE + u64::from(input.u16() % 4096),
        7 => 1 << 20,
        8 => 1 << (input.u8() % 64),
        9 => (i64::MAX as u64) - u64::from(input.u8()),
        10 => u64::from(input.u8()).wrapping_neg(),
        _ => m.arg(input),
    }
}

/// An open mapping in the arena: its start and end. Mappings of files come first (most
/// picks), then any mapping; (arena start, + a page) when there is none.
fn mapping(m: &Machine, input: &mut Input<'_>) -> (u64, u64) {
    let pick = input.u8();
    let space = m.state.process.space();
    let arena = |s: u64| (ARENA.va..ARENA.va + ARENA.len).contains(&s);
    let files: Vec<(u64, u64)> = space
        .vmas()
        .filter(|(s, v)| v.file.is_some() && arena(*s))
        .map(|(s, v)| (s, v.end))
        .collect();
    let all: Vec<(u64, u64)> = space
        .vmas()
        .filter(|(s, _)| arena(*s))
        .map(|(s, v)| (s, v.end))
        .collect();
    let from = if pick < 192 && !files.is_empty() {
        files
    } else {
        all
    };
    if from.is_empty() {
        return (ARENA.va, ARENA.va + PAGE);
    }
    from[usize::from(pick) % from.len()]
}

/// An address in or around a mapping: its start mostly, a page in it, an odd byte in it,
/// its last page, its end, or any argument.
fn addr(m: &Machine, input: &mut Input<'_>, (s, e): (u64, u64)) -> u64 {
    let pages = ((e - s) / PAGE).max(1);
    match input.u8() % 10 {
        0..=3 => s,
        4 | 5 => s + (u64::from(input.u16()) % pages) * PAGE,
        6 => s + u64::from(input.u16()) % (e - s).max(1),
        7 => e.saturating_sub(PAGE),
        8 => e,
        _ => m.arg(input),
    }
}

/// A length for a range in mapping `(s, e)` from `at`: to its end mostly, a page, a few
/// pages, an odd length, 0, past its end, or any size.
fn range_len(m: &Machine, input: &mut Input<'_>, at: u64, (_, e): (u64, u64)) -> u64 {
    let rest = e.saturating_sub(at);
    match input.u8() % 8 {
        0..=2 => rest,
        3 => PAGE,
        4 => u64::from(input.u8() % 8 + 1) * PAGE,
        5 => u64::from(input.u16()),
        6 => rest + PAGE,
        _ => size(m, input),
    }
}

/// Protections: mostly valid combinations, sometimes any bits.
fn prot(input: &mut Input<'_>) -> u64 {
    match input.u8() % 8 {
        0..=2 => PROT_READ | PROT_WRITE,
        3 => PROT_READ,
        4 => 0,
        5 => PROT_WRITE,
        6 => PROT_READ | PROT_WRITE | PROT_EXEC,
        _ => u64::from(input.u32()),
    }
}

/// op 0: files to map.
fn files(m: &mut Machine, input: &mut Input<'_>) -> bool {
    match input.u8() % 10 {
        // memfd_create(name, flags), then maybe ftruncate to a size
        0..=2 => {
            put(m, NAME, b"shm\0");
            let flags = match input.u8() % 6 {
                0 | 1 => 1, // MFD_CLOEXEC
                2 => 3,     // MFD_CLOEXEC | MFD_ALLOW_SEALING
                3 => 0,
                4 => 0x8 | 2, // MFD_NOEXEC_SEAL | MFD_ALLOW_SEALING
                _ => u64::from(input.u32()),
            };
            if !m.syscall(NR_MEMFD_CREATE, [NAME, flags, 0, 0, 0, 0]) {
                return false;
            }
            keep_fd(m, MEMFD_SLOT);
            if !ok(m) || input.u8().is_multiple_of(4) {
                return true;
            }
            let fd = m.last();
            let len = size(m, input);
            m.syscall(NR_FTRUNCATE, [fd, len, 0, 0, 0, 0])
        }
        // open(path, flags)
        3..=5 => {
            const FILES: [&[u8]; 8] = [
                b"/data/file\0",
                b"/data/new\0",
                b"/data/dir/inner\0",
                b"/ro/file\0",
                b"/data/ref/file\0",
                b"/dev/zero\0",
                b"/data/link-out\0",
                b"/data\0",
            ];
            let path = FILES[usize::from(input.u8()) % FILES.len()];
            put(m, NAME, path);
            let flags = match input.u8() % 10 {
                0..=3 => O_RDWR,
                4 => 0, // O_RDONLY
                5 => 1, // O_WRONLY
                6 => O_RDWR | O_CREAT,
                7 => O_RDWR | O_TRUNC,
                8 => 0o10000000,                         // O_PATH
                _ => u64::from(input.u32()) & !0o200000, // not O_DIRECTORY... mostly
            };
            if !m.syscall(NR_OPEN, [NAME, flags, 0o644, 0, 0, 0]) {
                return false;
            }
            keep_fd(m, FILE_SLOT);
            true
        }
        // ftruncate(fd, size): shrinking and growing under the mappings
        6 => {
            let (f, len) = (fd(m, input), size(m, input));
            m.syscall(NR_FTRUNCATE, [f, len, 0, 0, 0, 0])
        }
        // fcntl(fd, F_ADD_SEALS / F_GET_SEALS, seals)
        7 => {
            let f = fd(m, input);
            let (cmd, seals) = match input.u8() % 4 {
                0 => (1034, 0),
                1 => (1033, 8),    // F_SEAL_WRITE
                2 => (1033, 0x10), // F_SEAL_FUTURE_WRITE
                _ => (1033, u64::from(input.u8() % 32)),
            };
            m.syscall(NR_FCNTL, [f, cmd, seals, 0, 0, 0])
        }
        // fallocate(fd, mode, offset, len)
        8 => {
            let f = fd(m, input);
            let mode = match input.u8() % 6 {
                0 | 1 => 3, // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                2 => 0,
                3 => 8,    // FALLOC_FL_COLLAPSE_RANGE
                4 => 0x20, // FALLOC_FL_INSERT_RANGE
                _ => u64::from(input.u8()),
            };
            let (off, len) = (size(m, input) & !(PAGE - 1), size(m, input));
            m.syscall(NR_FALLOCATE, [f, mode, off, len, 0, 0])
        }
        // close(fd) or dup(fd): the mappings keep their files
        _ => {
            let f = fd(m, input);
            let nr = if input.u8() & 1 == 0 {
                NR_CLOSE
            } else {
                NR_DUP
            };
            m.syscall(nr, [f, 0, 0, 0, 0, 0])
        }
    }
}

/// op 1: mmap.
fn map(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let ty = match input.u8() % 8 {
        0..=3 => MAP_SHARED,
        4 => MAP_SHARED_VALIDATE,
        5 | 6 => MAP_PRIVATE,
        _ => u64::from(input.u8() % 16),
    };
    let anon = input.u8().is_multiple_of(4);
    let extra = match input.u8() % 12 {
        0..=5 => 0,
        6 => 0x8000,    // MAP_POPULATE
        7 => 0x4000,    // MAP_NORESERVE
        8 => 0x2000,    // MAP_LOCKED
        9 => 0x100,     // MAP_GROWSDOWN
        10 => 0x8_0000, // MAP_SYNC
        _ => u64::from(input.u32()) & !(MAP_FIXED | MAP_FIXED_NOREPLACE | 3),
    };
    let (place, addr) = match input.u8() % 8 {
        0..=3 => (0, 0),
        // a hint: in the arena, or where a mapping is
        4 => (0, ARENA.va + (u64::from(input.u16()) << 12) % ARENA.len),
        5 => {
            let r = mapping(m, input);
            (MAP_FIXED, addr(m, input, r))
        }
        6 => {
            let r = mapping(m, input);
            (MAP_FIXED_NOREPLACE, addr(m, input, r))
        }
        _ => (MAP_FIXED, m.arg(input)),
    };
    let len = match input.u8() % 4 {
        0 => u64::from(input.u8() % 8 + 1) * PAGE,
        1 => u64::from(input.u16()),
        _ => size(m, input),
    };
    let p = prot(input);
    let f = if anon { u64::MAX } else { fd(m, input) };
    let offset = match input.u8() % 8 {
        0..=4 => 0,
        5 => u64::from(input.u8() % 16) * PAGE,
        6 => u64::from(input.u16()),
        _ => size(m, input),
    };
    let flags = ty | extra | place | if anon { MAP_ANONYMOUS } else { 0 };
    if !m.syscall(NR_MMAP, [addr, len, p, flags, f, offset]) {
        return false;
    }
    if ok(m) {
        let at = m.last();
        if place != 0 {
            assert_eq!(
                at, addr,
                "mmap with flags {flags:#x} placed the mapping elsewhere"
            );
        }
        let space = m.state.process.space();
        assert!(
            space.is_mapped(at, len.checked_next_multiple_of(PAGE).unwrap_or(u64::MAX)),
            "mmap({addr:#x}, {len:#x}, {p:#x}, {flags:#x}, {f}, {offset:#x}) = {at:#x}, not all mapped"
        );
    }
    true
}

/// How the page fault of an access ended ([`fault`]).
enum Faulted {
    /// umon bound the page: the instruction runs again.
    Again,
    /// A signal handler runs now.
    Handler,
    /// The signal ended the process.
    Over,
}

/// The page fault the CPU would take at `va` (a store if `write`) from an instruction in the
/// text: umon binds the page, or delivers the signal (SIGBUS past the end of a file, SIGSEGV).
fn fault(m: &mut Machine, va: u64, write: bool) -> Faulted {
    let (cs, ss) = (m.sregs.cs.dpl, m.sregs.ss.dpl);
    m.sregs.cs.dpl = 3;
    m.sregs.ss.dpl = 3;
    let rip = TEXT.va + 0x100;
    m.regs.rip = rip;
    // At CPL3 interrupts are on.
    m.regs.rflags |= 0x202;
    let rsp = m.regs.rsp;
    let flow = {
        let mut cpu = Cpu {
            regs: &mut m.regs,
            sregs: &mut m.sregs,
            dirty: 0,
            xstate: None,
            index: 0,
        };
        let fault = AppFault::Exception {
            vector: 14,
            error_code: if write { 6 } else { 4 },
            rip,
            cr2: va,
        };
        m.state.app_fault(&mut cpu, fault)
    };
    if !m.ended_by(flow) {
        return Faulted::Over;
    }
    if (m.regs.rip, m.regs.rsp) == (rip, rsp) {
        (m.sregs.cs.dpl, m.sregs.ss.dpl) = (cs, ss);
        Faulted::Again
    } else {
        // On a frame the harness did not see built: no return from it is checked.
        m.handler = None;
        Faulted::Handler
    }
}

/// The application's access to `len` bytes at `va` (the monitor's copy, as a syscall's);
/// `data` is stored when given, else the bytes are read.
fn access(m: &Machine, va: u64, data: Option<&[u8]>, len: usize) -> bool {
    let space = m.state.process.space();
    let mem = &m.state.machine.mem;
    match data {
        Some(d) => space.write(mem, va, d).is_ok(),
        None => space.read(mem, va, &mut vec![0; len]).is_ok(),
    }
}

/// Bytes stored at `va` through a shared mapping of a file: pread of the file must return
/// them (up to the end of the file).
fn stored(m: &Machine, va: u64, data: &[u8]) {
    let space = m.state.process.space();
    let Some((s, v)) = space.vmas().find(|(s, v)| *s <= va && va < v.end) else {
        return;
    };
    let Some(fref) = v.file else {
        return;
    };
    let Some(f) = space.mapped_file(fref.id) else {
        return;
    };
    if f.kind != OverlayKind::Shared {
        return;
    }
    let off = fref.offset + (va - s);
    let size = file_size(f.fd.as_raw_fd());
    if off >= size {
        return;
    }
    let n = (size - off).min(data.len() as u64) as usize;
    let file = pread(f.fd.as_raw_fd(), off, n);
    assert!(
        file == data[..n],
        "{} bytes stored at {va:#x} through a MAP_SHARED mapping of {:?} are not in the file at \
         {off:#x}: file {:02x?}, stored {:02x?}",
        n,
        String::from_utf8_lossy(&f.name),
        &file[..file.len().min(32)],
        &data[..n.min(32)]
    );
}

/// op 2: stores and loads through a mapping.
fn touch(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let at = addr(m, input, r);
    let write = !input.u8().is_multiple_of(3);
    let data: Vec<u8> = match input.u8() % 4 {
        0..=2 => {
            let n = usize::from(input.u8());
            input.bytes(n).to_vec()
        }
        // a fill of up to three pages and a bit
        _ => {
            let n = usize::from(input.u16()) % (3 * PAGE as usize + 100);
            vec![input.u8(); n]
        }
    };
    let len = data.len().max(1);
    let mut done = 0;
    while done < len {
        let va = at.wrapping_add(done as u64);
        let n = ((PAGE - va % PAGE) as usize).min(len - done);
        let piece = (write && !data.is_empty()).then(|| &data[done..done + n]);
        if !access(m, va, piece, n) {
            // The CPU faults: umon binds the page, or a signal is delivered.
            match fault(m, va, write) {
                Faulted::Over => return false,
                Faulted::Handler => return true, // the access did not happen
                Faulted::Again => {}
            }
            if !access(m, va, piece, n) {
                // umon let the instruction run again, yet it faults as before: on a CPU that
                // loops (until umon's refault limit turns it into SIGSEGV).
                let space = m.state.process.space();
                let vma = space
                    .vmas()
                    .find(|(s, v)| *s <= va && va < v.end)
                    .map(|(s, v)| (s, v.end, v.prot, v.file));
                panic!(
                    "a {} at {va:#x} faults again after umon's fault handler let it run again \
                     (mapping {vma:x?})",
                    if write { "store" } else { "load" }
                );
            }
        }
        if let Some(p) = piece {
            stored(m, va, p);
        }
        done += n;
    }
    true
}

/// op 3: I/O with a mapping as the buffer.
fn io(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let buf = addr(m, input, r);
    let f = fd(m, input);
    let n = range_len(m, input, buf, r);
    let off = match input.u8() % 4 {
        0 | 1 => 0,
        2 => u64::from(input.u16()),
        _ => size(m, input),
    };
    let (nr, args) = match input.u8() % 6 {
        0 => (NR_READ, [f, buf, n, 0, 0, 0]),
        1 => (NR_WRITE, [f, buf, n, 0, 0, 0]),
        2 => (NR_PREAD64, [f, buf, n, off, 0, 0]),
        3 => (NR_PWRITE64, [f, buf, n, off, 0, 0]),
        // the file into the data region (what the mapping must show)
        4 => (NR_PREAD64, [f, BUF, n.min(BUF_LEN), off, 0, 0]),
        // which pages have frames
        _ => (NR_MINCORE, [r.0, r.1 - r.0, BUF, 0, 0, 0]),
    };
    m.syscall(nr, args)
}

/// op 4: msync.
fn sync(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let at = addr(m, input, r);
    let len = range_len(m, input, at, r);
    let flags = match input.u8() {
        b @ 0..=239 => u64::from(b % 8),
        _ => u64::from(input.u32()),
    };
    m.syscall(NR_MSYNC, [at, len, flags, 0, 0, 0])
}

/// op 5: mremap.
fn remap(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let old = addr(m, input, r);
    let old_len = match input.u8() % 6 {
        0..=2 => r.1.saturating_sub(old),
        3 => 0, // a second mapping of shared pages
        4 => PAGE,
        _ => size(m, input),
    };
    let new_len = match input.u8() % 8 {
        0 | 1 => old_len.wrapping_add(u64::from(input.u8() % 8 + 1) * PAGE),
        2 | 3 => old_len.saturating_sub(PAGE).max(PAGE),
        4 => old_len,
        5 => u64::from(input.u8() % 8 + 1) * PAGE,
        6 => 0,
        _ => size(m, input),
    };
    let flags = match input.u8() % 8 {
        0 => 0,
        1..=3 => MREMAP_MAYMOVE,
        4 => MREMAP_MAYMOVE | MREMAP_FIXED,
        5 => MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
        6 => MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
        _ => u64::from(input.u8()),
    };
    let new_addr = match input.u8() % 4 {
        0 => {
            let other = mapping(m, input);
            addr(m, input, other)
        }
        1 => ARENA.va + (u64::from(input.u16()) << 12) % ARENA.len,
        2 => EDGES[usize::from(input.u8()) % EDGES.len()],
        _ => m.arg(input),
    };
    let keep = flags & MREMAP_DONTUNMAP != 0;
    let args = [old, old_len, new_len, flags, new_addr, 0];
    // A call the taming skips leaves the last result as it was.
    let runs = may_run(m, NR_MREMAP, args);
    if !m.syscall(NR_MREMAP, args) {
        return false;
    }
    if runs && ok(m) && old_len != 0 && !keep {
        // The old range is gone, but for what the new one covers.
        let new = m.last();
        let up = |n: u64| n.checked_next_multiple_of(PAGE).unwrap_or(u64::MAX);
        let new_end = new.saturating_add(up(new_len));
        let old_end = old.saturating_add(up(old_len));
        let space = m.state.process.space();
        for (s, v) in space.vmas() {
            let (a, b) = (s.max(old), v.end.min(old_end));
            if a >= b {
                continue;
            }
            let left = a < new || b > new_end;
            assert!(
                !left,
                "mremap({old:#x}, {old_len:#x}, {new_len:#x}, {flags:#x}, {new_addr:#x}) = \
                 {new:#x} left [{a:#x}, {b:#x}) of the old range mapped"
            );
        }
    }
    true
}

/// op 6: madvise, mprotect, munmap.
fn advise(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let at = addr(m, input, r);
    let len = range_len(m, input, at, r);
    match input.u8() % 8 {
        0..=3 => {
            const ADVICE: [u64; 14] = [4, 9, 10, 11, 18, 19, 8, 3, 0, 20, 21, 22, 23, 24];
            let advice = match input.u8() {
                b @ 0..=223 => ADVICE[usize::from(b) % ADVICE.len()],
                _ => u64::from(input.u32()),
            };
            m.syscall(NR_MADVISE, [at, len, advice, 0, 0, 0])
        }
        4 | 5 => {
            let p = prot(input);
            m.syscall(NR_MPROTECT, [at, len, p, 0, 0, 0])
        }
        _ => {
            if !m.syscall(NR_MUNMAP, [at, len, 0, 0, 0, 0]) {
                return false;
            }
            if ok(m) {
                let up = len.checked_next_multiple_of(PAGE).unwrap_or(u64::MAX);
                let end = at.saturating_add(up);
                let space = m.state.process.space();
                let left = space
                    .vmas()
                    .find(|(s, v)| *s < end && v.end > at)
                    .map(|(s, v)| (s, v.end));
                if let Some((s, e)) = left {
                    panic!("munmap({at:#x}, {len:#x}) succeeded but [{s:#x}, {e:#x}) is mapped");
                }
            }
            true
        }
    }
}

/// op 7: futexes on words of shared mappings.
fn futex(m: &mut Machine, input: &mut Input<'_>) -> bool {
    let r = mapping(m, input);
    let word = |m: &Machine, input: &mut Input<'_>, (s, e): (u64, u64)| -> u64 {
        match input.u8() % 8 {
            0..=5 => s + (u64::from(input.u16()) * 4) % (e - s).max(4),
            6 => s + 1 + u64::from(input.u8()),
            _ => m.arg(input),
        }
    };
    let uaddr = word(m, input, r);
    let private = if input.u8().is_multiple_of(4) {
        FUTEX_PRIVATE_FLAG
    } else {
        0
    };
    let current = get_u32(m, uaddr).map_or(0, u64::from);
    let (op, args) = match input.u8() % 8 {
        // FUTEX_WAKE(n), FUTEX_WAKE_BITSET(n, bitset)
        0 => (1, [u64::from(input.u8()), 0, 0, 0]),
        1 => (10, [u64::from(input.u8()), 0, 0, u64::from(input.u32())]),
        // FUTEX_WAKE_OP(n1, n2, uaddr2, encoded op)
        2 => {
            let other = mapping(m, input);
            let u2 = word(m, input, other);
            (5, [1, u64::from(input.u8()), u2, u64::from(input.u32())])
        }
        // FUTEX_REQUEUE / FUTEX_CMP_REQUEUE(n, n2, uaddr2, expected)
        3 | 4 => {
            let other = mapping(m, input);
            let u2 = word(m, input, other);
            let expected = if input.u8().is_multiple_of(2) {
                current
            } else {
                u64::from(input.u32())
            };
            let cmd = if input.u8().is_multiple_of(4) { 3 } else { 4 };
            (cmd, [1, u64::from(input.u8()), u2, expected])
        }
        // FUTEX_WAIT / FUTEX_WAIT_BITSET: with a short timeout (relative for WAIT, long past
        // for WAIT_BITSET: absolute), or without one on a value the word does not hold
        c => {
            let bitset = c == 7;
            let cmd = if bitset {
                FUTEX_WAIT_BITSET
            } else {
                FUTEX_WAIT
            };
            let clock = if bitset && input.u8().is_multiple_of(2) {
                FUTEX_CLOCK_REALTIME
            } else {
                0
            };
            let nsec = u64::from(input.u32()) % 1_000_000;
            let (val, timeout) = if input.u8().is_multiple_of(2) {
                let mut ts = [0u8; 16];
                ts[8..].copy_from_slice(&nsec.to_le_bytes());
                put(m, TIMESPEC, &ts);
                let val = if input.u8().is_multiple_of(2) {
                    current
                } else {
                    u64::from(input.u32())
                };
                (val, TIMESPEC)
            } else {
                (current ^ u64::from(input.u8() | 1), 0)
            };
            let mask = u64::from(input.u32()) | 1;
            (cmd | clock, [val, timeout, 0, mask])
        }
    };
    m.syscall(
        NR_FUTEX,
        [uaddr, op | private, args[0], args[1], args[2], args[3]],
    )
}

/// Run shared-memory op `k` (`op & 7`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let going = match k {
        0 => files(m, input),
        1 => map(m, input),
        2 => touch(m, input),
        3 => io(m, input),
        4 => sync(m, input),
        5 => remap(m, input),
        6 => advise(m, input),
        _ => futex(m, input),
    };
    check(m);
    going
}

fn file_size(fd: i32) -> u64 {
    // SAFETY: fstat writes the struct on our stack; fd is an open descriptor (a mapped file's).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return 0;
    }
    st.st_size.max(0) as u64
}

fn pread(fd: i32, off: u64, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut done = 0;
    while done < n {
        // SAFETY: the buffer is ours and `n - done` bytes long from `done`.
        let r = unsafe {
            libc::pread(
                fd,
                buf[done..].as_mut_ptr().cast(),
                n - done,
                (off + done as u64) as libc::off_t,
            )
        };
        if r <= 0 {
            break;
        }
        done += r as usize;
    }
    buf.truncate(done);
    buf
}

/// The invariants of file mappings (see the module docs); panics when one is broken.
pub fn check(m: &Machine) {
    let space = m.state.process.space();
    let mem = &m.state.machine.mem;
    let mut budget = CHECK_PAGES;
    for (s, v) in space.vmas() {
        let Some(fref) = v.file else {
            continue;
        };
        let Some(f) = space.mapped_file(fref.id) else {
            panic!("the mapping at {s:#x} names file {} which is gone", fref.id);
        };
        let fd = f.fd.as_raw_fd();
        let size = file_size(fd);
        let eof = size.next_multiple_of(PAGE);
        let resident = space.resident(s, (v.end - s) / PAGE);
        for (i, _) in resident.iter().enumerate().filter(|(_, r)| **r != 0) {
            let va = s + i as u64 * PAGE;
            let off = fref.offset + i as u64 * PAGE;
            assert!(
                off < eof,
                "page {va:#x} of a mapping of {:?} has a frame past the end of the file \
                 (offset {off:#x}, size {size:#x}): touching it must be SIGBUS",
                String::from_utf8_lossy(&f.name)
            );
            if f.kind != OverlayKind::Shared || budget == 0 {
                continue;
            }
            budget -= 1;
            let n = (size - off).min(PAGE) as usize;
            let Ok(chunks) = space.chunks(va, n as u64, Access::Mapped) else {
                panic!("page {va:#x} has a frame the monitor cannot reach");
            };
            let mut guest = vec![0u8; n];
            let mut at = 0;
            for (gpa, len) in chunks {
                mem.read_bytes(gpa, &mut guest[at..at + len as usize])
                    .expect("a bound frame is in RAM");
                at += len as usize;
            }
            let file = pread(fd, off, n);
            if file != guest {
                let i = file
                    .iter()
                    .zip(&guest)
                    .position(|(a, b)| a != b)
                    .unwrap_or(file.len().min(guest.len()));
                panic!(
                    "page {va:#x} of a MAP_SHARED mapping of {:?} differs from the file at \
                     offset {off:#x} + {i:#x} (file {:02x?}, mapping {:02x?}; {} of {n} bytes \
                     read from the file)",
                    String::from_utf8_lossy(&f.name),
                    &file[i..file.len().min(i + 16)],
                    &guest[i..guest.len().min(i + 16)],
                    file.len()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::input::Input;
    use crate::machine::Machine;
    use umon::linux::mm::space::Access;

    /// Random programs of shared-memory ops only (every op byte is one: the harness's other
    /// ops have tests of their own) run to their end or to a signal: no panic, no broken
    /// check, no call left waiting; and they reach what the ops are for (shared file mappings
    /// with pages bound). `UMON_FUZZ_SHARED_ROUNDS` runs more.
    #[test]
    fn random_shared_ops_replay_cleanly() {
        let rounds = std::env::var("UMON_FUZZ_SHARED_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut bound = 0;
        for round in 0..rounds {
            // open("/data/file", O_RDWR); memfd_create, ftruncate to 3 pages; both mapped
            // MAP_SHARED, two pages each; then random ops.
            let mut data = vec![0, 3, 0, 0, 0, 0, 0, 1, 5, 2];
            data.extend([1, 0, 1, 0, 0, 0, 1, 0, 3, 0]);
            data.extend([1, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.extend_from_slice(&x.to_le_bytes());
            }
            if std::env::var_os("UMON_FUZZ_SHARED_SHOW").is_some() {
                eprintln!("round {round}: {data:02x?}");
            }
            let m = run(&data);
            let space = m.state.process.space();
            bound += space
                .vmas()
                .filter(|(_, v)| v.file.is_some())
                .filter(|(s, v)| space.chunks(*s, v.end - s, Access::Mapped).is_ok())
                .count();
        }
        assert!(bound > 0, "no run ended with a bound file mapping");
    }

    /// `data` as a program of shared-memory ops: each step an op byte (`& 7`) and its bytes.
    fn run(data: &[u8]) -> Machine {
        let mut input = Input::new(data);
        let mut m = Machine::new(0);
        let mut calls = 0;
        while !input.is_empty() && calls < crate::machine::MAX_CALLS {
            calls += 1;
            let k = input.u8() & 7;
            if !super::op(&mut m, k, &mut input) {
                break;
            }
        }
        super::check(&m);
        m.finish();
        m
    }
}
