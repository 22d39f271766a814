//! The application's address space as the monitor sees it: its mappings (a tree of Linux's
//! VMAs, [`super::vma`]) over the guest RAM that backs them. The page tables are written
//! before the first instruction from the regions (image, stack, vDSO: linear); the arena, the
//! virtual range of brk and mmap, is far larger than RAM and mapped lazily: its pages get
//! frames at first touch ([`super::fault`]). What brk/mmap/munmap/mprotect/mremap change goes
//! through [`AddrSpace::apply`], and the exit that changed it brings the page tables in line
//! with the mappings and their bound frames ([`AddrSpace::plan_pt`]). Every access the monitor
//! makes for the application obeys the mappings as Linux's uaccess obeys the page tables:
//! memory no mapping holds is unmapped, and each mapping's PROT_* decides whether it may be
//! read (any of R/W/X, as on x86-64) or written.
use super::fault::Backing;
pub use super::vma::FileRef;
pub use super::vma::MAX_MAP_COUNT;
use super::vma::{page_up, Kind, OnFork, Vma, Vmas};
use super::{
    MADV_DOFORK, MADV_DONTFORK, MADV_DONTNEED_LOCKED, MADV_FREE, MADV_KEEPONFORK, MADV_WIPEONFORK,
    MS_ASYNC, MS_INVALIDATE,
};
use crate::linux::abi::mman::MADV_DONTNEED;
use crate::linux::abi::{mman, TASK_SIZE_MAX};
use crate::linux::io::mem_errno;
use crate::machine::frames::{Frames, FramesError};
use crate::machine::memory::{GuestMem, OverlayKind};
pub use crate::machine::paging::Region;
use crate::machine::paging::{Mapper, PagingError, Perm, Target, PAGE_2M, PAGE_4K};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use syscalls::Errno;
use umon_abi::layout::{
    namespace_base, CORE_IMAGE_END, FIRST_APP_NAMESPACE, NAMESPACE_BYTES, PROGRAM_BASE, VDSO_BASE,
    VVAR_BASE,
};
use umon_abi::{Gpa, Gva};

/// The page rights of PROT_* bits.
fn perm(prot: u32) -> Perm {
    Perm {
        read: prot & mman::PROT_READ != 0,
        write: prot & mman::PROT_WRITE != 0,
        exec: prot & mman::PROT_EXEC != 0,
    }
}

/// The protection `r` is mapped with (PROT_* bits).
fn region_prot(r: &Region) -> u32 {
    let mut p = mman::PROT_READ;
    if r.write {
        p |= mman::PROT_WRITE;
    }
    if r.exec {
        p |= mman::PROT_EXEC;
    }
    p
}

/// Bytes the application may read, or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read (the monitor copies out of the app, e.g. write(2)): any of PROT_READ, PROT_WRITE
    /// or PROT_EXEC, as on x86-64, where every present page is readable.
    Read,
    /// Write (the monitor copies into the app, e.g. read(2)): PROT_WRITE.
    Write,
    /// Mapped with any protection, PROT_NONE included (the monitor's own bookkeeping: filling
    /// a fresh file mapping, registering memory with KVM).
    Mapped,
}

impl Access {
    fn allowed_by(self, prot: u32) -> bool {
        match self {
            Access::Read => prot & (mman::PROT_READ | mman::PROT_WRITE | mman::PROT_EXEC) != 0,
            Access::Write => prot & mman::PROT_WRITE != 0,
            Access::Mapped => true,
        }
    }
}

/// Where mmap puts a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Anywhere; the address (rounded down to its page) if it is free.
    Hint(u64),
    /// MAP_FIXED: exactly there, replacing what is there.
    Fixed(u64),
    /// MAP_FIXED_NOREPLACE: exactly there, EEXIST if anything is.
    NoReplace(u64),
}

/// The attributes of a new mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewMap {
    /// PROT_* bits.
    pub prot: u32,
    /// MAP_SHARED.
    pub shared: bool,
    /// MAP_GROWSDOWN.
    pub growsdown: bool,
    /// MAP_LOCKED.
    pub locked: bool,
    /// MAP_NORESERVE: not charged against the commit limit.
    pub noreserve: bool,
}

/// A host file that mappings are made of ([`AddrSpace::mmap_file`]): a file of a volume, or
/// the memfd behind MAP_SHARED|MAP_ANONYMOUS memory. Its pages are overlaid on the frames
/// bound to the mapping ([`GuestMem::overlay`]), so the mapping *is* the file.
#[derive(Debug)]
pub struct MappedFile {
    /// The host file (a descriptor of its own: the application may close its fd).
    pub fd: OwnedFd,
    /// Shared with the file, or a private view (a read-only descriptor's MAP_SHARED).
    pub kind: OverlayKind,
    /// Whether mprotect may add PROT_WRITE (Linux's VM_MAYWRITE: the descriptor was opened
    /// for writing, or the mapping is private).
    pub may_write: bool,
    /// MAP_SHARED|MAP_ANONYMOUS memory (a memfd made for it): it grows with mremap.
    pub anonymous: bool,
    /// What /proc/self/maps names it: the guest path it was opened by, or Linux's
    /// `/dev/zero (deleted)` for shared anonymous memory.
    pub name: Vec<u8>,
    /// Held while it is mapped shared and writable
    /// ([`WritableAnchor`](crate::machine::memory::WritableAnchor)).
    pub anchor: Option<crate::machine::memory::WritableAnchor>,
    /// The private /tmp or /dev/shm a writable shared mapping's file lies in: its pages count
    /// against that tmpfs's size as they are bound (Linux's shmem_fault allocates them; a full
    /// tmpfs is SIGBUS).
    pub tmpfs: Option<Arc<crate::linux::fs::volume::Mount>>,
}

impl NewMap {
    /// A private anonymous mapping with `prot`.
    pub fn private(prot: u32) -> NewMap {
        NewMap {
            prot,
            shared: false,
            growsdown: false,
            locked: false,
            noreserve: false,
        }
    }
}

/// The end of the arena's virtual range (2 MiB aligned, so top-down mappings of whole 2 MiB
/// get 2 MiB leaves): the top of the user half, as Linux's mmap_base lies near it.
pub const ARENA_TOP: u64 = TASK_SIZE_MAX & !(PAGE_2M - 1);

/// The low user range: where ET_EXEC programs are linked (from 0x40_0000, right above the
/// core) up to the program namespaces, the same range `image::elf::plan` lets an ET_EXEC
/// image take. Outside the images umon placed there it is lazy memory as the arena is:
/// MAP_FIXED (and a free hint) may map files and anonymous memory there, as Linux lets
/// `ld.so` map a non-PIE program at its link address. The top-down allocator never goes
/// there (Linux's mmap_base is near the top as well); the core below it is never mappable.
pub const LOW_RANGE: (u64, u64) = (CORE_IMAGE_END, PROGRAM_BASE);

/// Writable private anonymous mappings smaller than this get their frames at mmap (one batch
/// then instead of a fault per 64 KiB later, plan §3); larger ones at first touch.
pub const EAGER_MAX_BYTES: u64 = PAGE_2M;

/// One change the page tables must follow, recorded by [`AddrSpace::apply`] (accounted, and
/// its range queued for the exit that made it: [`AddrSpace::take_pt_changes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtChange {
    /// `[start, end)` becomes mapped with `prot`: (start, end, prot).
    Map(u64, u64, u32),
    /// `[start, end)`, mapped, changes to `prot`: (start, end, prot).
    Protect(u64, u64, u32),
    /// `[start, end)` becomes unmapped: (start, end).
    Unmap(u64, u64),
}

/// What [`AddrSpace::apply`] has the page tables do at most: pages to (re)write, of which
/// present. Lazy mapping (step 7) makes `Map` of a PROT_NONE or untouched range free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PtChanges {
    /// 4 KiB entries written.
    pub pages: u64,
    /// Of which present afterwards.
    pub present: u64,
}

/// The application's mappings over its pre-mapped memory.
#[derive(Debug, Default)]
pub struct AddrSpace {
    /// Where guest RAM backs virtual memory (page tables written before start), sorted.
    regions: Vec<Region>,
    /// brk and the top-down mmap area.
    pub arena: Arena,
    /// [`LOW_RANGE`] when the arena lies above it (always, outside unit tests): lazy memory
    /// wherever no region is.
    low: (u64, u64),
    vmas: Vmas,
    /// No gap in the arena at or above this: the top-down search starts here, so packing
    /// mappings one below another costs O(1) each instead of a walk over all of them.
    search_top: u64,
    /// mlockall(MCL_FUTURE): new mappings are locked.
    lock_future: bool,
    /// Page-table work the changes so far have cost (see [`PtChange`]).
    pub pt_work: PtChanges,
    /// Ranges the page tables have not followed yet, by the host thread (vCPU) that changed
    /// them: its exit plans and applies them ([`AddrSpace::take_pt_changes`]).
    pending: Vec<(std::thread::ThreadId, u64, u64)>,
    /// The frames bound to the arena's pages. A lock of its own: the monitor's accesses for
    /// the application bind frames under the address space's read lock.
    backing: Mutex<Backing>,
    /// The last fault on a page that had its frame already, and how often in a row: a fault
    /// the tables' batch does not cure must not loop for ever.
    refault: (u64, u32),
    /// The host files mappings are made of, by [`FileRef::id`]; dropped with their last
    /// mapping.
    files: BTreeMap<u32, Arc<MappedFile>>,
    next_file: u32,
    /// Guest RAM, once a file is mapped: the monitor's own accesses bind file pages the app
    /// never touched (overlaying needs it).
    mem: Option<GuestMem>,
}

/// What binding a file mapping's page came to ([`AddrSpace::file_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileBind {
    /// Frames bound to `[start, end)` (or the page had one).
    Bound(u64, u64),
    /// The page lies past the end of the file: SIGBUS.
    PastEof,
    /// No frame left (or the file could not be mapped): the OOM path.
    NoMemory,
    /// The private tmpfs the file lies in is full (a shared mapping's new page): SIGBUS.
    Full,
}

/// Overlay `file` from `offset` (the file offset of `start`) on the bound extents, merged
/// into runs of contiguous frames (one host mmap each).
fn overlay_extents(
    mem: &GuestMem,
    file: &MappedFile,
    extents: Vec<(u64, u64, u64)>,
    start: u64,
    offset: u64,
) -> Result<(), crate::machine::memory::MemoryError> {
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for (va, gpa, n) in extents {
        match runs.last_mut() {
            Some((v, g, m)) if *v + *m == va && *g + *m == gpa => *m += n,
            _ => runs.push((va, gpa, n)),
        }
    }
    for (va, gpa, n) in runs {
        mem.overlay(
            Gpa(gpa),
            n,
            file.fd.as_fd(),
            offset + (va - start),
            file.kind,
        )?;
    }
    Ok(())
}

/// Faults in a row on one page that has its frame before it counts as the application's
/// fault (SIGSEGV). Another vCPU's batch mapping the page lands within a few retries.
const REFAULT_LIMIT: u32 = 10_000;

/// Linux's stack_guard_gap (256 pages): the space a MAP_GROWSDOWN mapping keeps free below
/// it from the next accessible mapping when it grows.
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_4K;

impl AddrSpace {
    /// An address space of `regions` (any order) with `arena` (if one of the regions, it is
    /// taken out of them), whose frames are the `arena.end - arena.start` bytes of guest RAM
    /// from `arena.pa`: every other region is a mapping from the start (image, stack, vvar,
    /// vdso).
    pub fn new(regions: Vec<Region>, arena: Arena) -> AddrSpace {
        let bytes = arena.end - arena.start;
        AddrSpace::lazy(regions, arena, bytes)
    }

    /// An address space of `regions` with `arena`, whose virtual range may be far larger than
    /// the `ram` bytes of guest RAM from `arena.pa` that back its pages once touched.
    pub fn lazy(mut regions: Vec<Region>, arena: Arena, ram: u64) -> AddrSpace {
        regions.retain(|r| r.start != arena.start || arena.end == arena.start);
        regions.sort_by_key(|r| r.start);
        let frames = Frames::range(arena.pa, ram, ram);
        let stack_top = namespace_base(FIRST_APP_NAMESPACE) + NAMESPACE_BYTES;
        let mut vmas = Vmas::default();
        for r in &regions {
            let kind = match r.start {
                VVAR_BASE => Kind::Vvar,
                VDSO_BASE => Kind::Vdso,
                _ if r.end == stack_top => Kind::Stack,
                _ => Kind::Image,
            };
            vmas.insert(
                r.start,
                Vma {
                    end: r.end,
                    prot: region_prot(r),
                    kind,
                    shared: false,
                    growsdown: kind == Kind::Stack,
                    locked: false,
                    file: None,
                    onfork: OnFork::Copy,
                },
            );
        }
        let search_top = arena.end;
        let low = if arena.start >= LOW_RANGE.1 {
            LOW_RANGE
        } else {
            (0, 0)
        };
        AddrSpace {
            regions,
            arena,
            low,
            vmas,
            search_top,
            lock_future: false,
            pt_work: PtChanges::default(),
            pending: Vec::new(),
            backing: Mutex::new(Backing::new(frames)),
            refault: (0, 0),
            files: BTreeMap::new(),
            next_file: 0,
            mem: None,
        }
    }

    fn backing(&self) -> MutexGuard<'_, Backing> {
        self.backing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes of guest RAM the application's anonymous memory may occupy at once.
    pub fn backing_limit_bytes(&self) -> u64 {
        self.backing().limit_bytes()
    }

    /// One past the highest frame ever bound (see [`Backing::high_water`]).
    pub fn backing_high_water(&self) -> u64 {
        self.backing().high_water()
    }

    /// Bytes of anonymous memory with frames (touched, or mapped eagerly).
    pub fn backed_bytes(&self) -> u64 {
        self.backing().in_use_bytes()
    }

    fn in_arena(&self, va: u64) -> bool {
        va >= self.arena.start && va < self.arena.end
    }

    /// The stretch of lazy memory (pages that get frames from [`Backing`] at first touch)
    /// holding `va`: the arena, or the part of the low range between two regions.
    fn lazy_span(&self, va: u64) -> Option<(u64, u64)> {
        if self.in_arena(va) {
            return Some((self.arena.start, self.arena.end));
        }
        let (lo, hi) = self.low;
        if va < lo || va >= hi {
            return None;
        }
        let i = self.regions.partition_point(|r| r.end <= va);
        let next = self.regions.get(i);
        if next.is_some_and(|r| r.start <= va) {
            return None;
        }
        let start = i.checked_sub(1).map_or(lo, |p| self.regions[p].end.max(lo));
        Some((start, next.map_or(hi, |r| r.start.min(hi))))
    }

    /// Whether `va`'s page is lazy memory (see [`AddrSpace::lazy_span`]).
    fn is_lazy(&self, va: u64) -> bool {
        self.lazy_span(va).is_some()
    }

    /// Whether all of `[start, end)` is one stretch of lazy memory (where file mappings go:
    /// their pages are frames from [`Backing`]).
    fn all_lazy(&self, start: u64, end: u64) -> bool {
        self.lazy_span(start).is_some_and(|(_, e)| end <= e)
    }

    /// A page fault at `va` (`access`, an instruction fetch if `fetch`): Ok(true) when the
    /// mapping there allows it and frames are bound (now, or already: the tables just have not
    /// followed yet), queued for this exit's batch; Ok(false) for a fault that is the
    /// application's (a signal); Err when no frame is left.
    pub fn fault(
        &mut self,
        va: u64,
        access: Access,
        fetch: bool,
        stack_limit: u64,
    ) -> Result<bool, FramesError> {
        if self.vmas.get(va).is_none() && !self.grow_down(va, stack_limit) {
            return Ok(false);
        }
        let Some((start, v)) = self.vmas.get(va).map(|(s, v)| (s, *v)) else {
            return Ok(false);
        };
        let Some((lo, hi)) = self.lazy_span(va) else {
            return Ok(false);
        };
        if !access.allowed_by(v.prot) || (fetch && v.prot & mman::PROT_EXEC == 0) {
            return Ok(false);
        }
        let page = va & !(PAGE_4K - 1);
        let bound = self.backing().lookup(va);
        let (a, e) = match bound {
            Some((s, _, len)) => {
                self.refault = match self.refault {
                    (p, n) if p == page => (p, n + 1),
                    _ => (page, 1),
                };
                if self.refault.1 > REFAULT_LIMIT {
                    log::warn!("page {page:#x} faults again and again: a signal");
                    self.refault = (0, 0);
                    return Ok(false);
                }
                (s, s + len)
            }
            // A file mapping's pages are bound while it exists (`attach`).
            None if v.file.is_some() => return Ok(false),
            None => self.backing().populate(va, start.max(lo), v.end.min(hi))?,
        };
        self.pending.push((std::thread::current().id(), a, e));
        Ok(true)
    }

    /// A monitor access at `at` found no mapping: if a MAP_GROWSDOWN mapping lies above, the
    /// syscall making it may be run again after [`AddrSpace::grow_for_access`] (Linux's
    /// uaccess faults grow such a mapping as the application's own faults do; only GUP does
    /// not). Noted per host thread, lowest address first; taken by [`take_grow_wanted`].
    fn note_below_growsdown(&self, at: u64) {
        if self
            .vmas
            .find(at)
            .is_some_and(|(s, v)| s > at && v.growsdown && v.file.is_none())
        {
            GROW_WANTED.with(|w| w.set(Some(w.get().map_or(at, |x| x.min(at)))));
        }
    }

    /// Grow the MAP_GROWSDOWN mapping above `va` down to it, as a fault there would
    /// (`grow_down`'s checks: the guard gap, RLIMIT_STACK `stack_limit`); false if it may not.
    pub fn grow_for_access(&mut self, va: u64, stack_limit: u64) -> bool {
        self.vmas.get(va).is_none() && self.grow_down(va, stack_limit)
    }

    /// Linux's expand_downwards for a fault at `va` in no mapping: the MAP_GROWSDOWN mapping
    /// just above grows down to `va`'s page, unless that leaves less than the stack guard
    /// gap above an accessible mapping below (one that grows down itself is no obstacle) or
    /// makes it larger than `stack_limit` (RLIMIT_STACK). The application's own faults, and a
    /// syscall's access (see [`AddrSpace::note_below_growsdown`]).
    fn grow_down(&mut self, va: u64, stack_limit: u64) -> bool {
        let address = va & !(PAGE_4K - 1);
        let Some((start, v)) = self.vmas.find(va).map(|(s, v)| (s, *v)) else {
            return false;
        };
        if start <= va || !v.growsdown || v.file.is_some() || !self.is_lazy(address) {
            return false;
        }
        if let Some((_, p)) = self.vmas.prev(start) {
            if !p.growsdown
                && p.prot & (mman::PROT_READ | mman::PROT_WRITE | mman::PROT_EXEC) != 0
                && address - p.end < STACK_GUARD_GAP
            {
                return false;
            }
        }
        if v.end - address > stack_limit {
            return false;
        }
        self.vmas.grow_down(start, address);
        // Its guard gap moved down: the top-down search must meet it again.
        self.search_top = self.search_top.max(v.end.min(self.arena.end));
        true
    }

    /// A second vCPU runs the process: batches go one at a time (`machine::turn`), and
    /// given-back frames wait until the giver's batch is in every vCPU's tables.
    pub fn several_vcpus(&mut self) {
        self.backing().quarantine_frees();
    }

    /// This host thread has page-table work: ranges to follow or frames waiting for a batch.
    pub fn has_pt_work(&self) -> bool {
        let me = std::thread::current().id();
        self.pending.iter().any(|&(t, _, _)| t == me) || self.backing().quarantined()
    }

    /// The exit-less server ran a call for the thread on host thread `to`: the page-table
    /// changes it made are that thread's to follow (its vCPU runs the batch). True if `to`
    /// has page-table work now.
    pub fn hand_pt_changes(&mut self, to: std::thread::ThreadId) -> bool {
        let me = std::thread::current().id();
        for p in &mut self.pending {
            if p.0 == me {
                p.0 = to;
            }
        }
        self.pending.iter().any(|&(t, _, _)| t == to) || self.backing().quarantined()
    }

    /// This host thread's batch is in the tables: the frames it gave back are free.
    pub fn free_quarantined(&self, mem: &GuestMem) {
        self.backing().free_quarantined(mem);
    }

    /// The ranges whose mappings this host thread (one vCPU) changed and the page tables
    /// have yet to follow; the caller plans them with [`AddrSpace::plan_pt`] and applies the
    /// batch before its application thread runs on. Per thread, so that a syscall never
    /// returns with its own changes left to another vCPU's next run.
    pub fn take_pt_changes(&mut self) -> Vec<(u64, u64)> {
        let me = std::thread::current().id();
        let (mine, others) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|&(t, _, _)| t == me);
        self.pending = others;
        mine.into_iter().map(|(_, s, e)| (s, e)).collect()
    }

    /// Plan page-table edits that make `ranges` what the mappings say now (not a replay of
    /// the changes: another thread may have changed them since, and whichever thread plans
    /// last leaves the tables right): no mapping → not present (SEGV_MAPERR), a mapping →
    /// its rights, PROT_NONE → not present but kept. A region's pages map its linear backing,
    /// the arena's their bound frames (pages without one stay not present: the first touch
    /// faults them in); no frame is allocated here except table pages (splitting 2 MiB
    /// leaves, replacing tables); a range already right costs no store.
    pub fn plan_pt(
        &self,
        ranges: &[(u64, u64)],
        mapper: &mut Mapper,
        frames: &mut Frames,
    ) -> Result<(), PagingError> {
        for &(start, end) in ranges {
            let mut at = start;
            while at < end {
                let (to, prot) = match self.vmas.find(at) {
                    Some((s, v)) if s <= at => (v.end.min(end), Some(v.prot)),
                    Some((s, _)) => (s.min(end), None),
                    None => (end, None),
                };
                match prot {
                    None => {
                        mapper.unmap(Gva(at), to - at, frames)?;
                    }
                    Some(prot) => self.plan_mapped(at, to, prot, mapper, frames)?,
                }
                at = to;
            }
        }
        Ok(())
    }

    /// Map the bound extent `[va, va + len)` at `gpa` with `prot`: entries that map another
    /// frame (left from before the extent was bound) go first.
    fn plan_extent(
        &self,
        va: u64,
        gpa: u64,
        len: u64,
        prot: u32,
        mapper: &mut Mapper,
        frames: &mut Frames,
    ) -> Result<(), PagingError> {
        let mut p = va;
        while p < va + len {
            if mapper.frame(Gva(p)).is_some_and(|f| f.0 != gpa + (p - va)) {
                mapper.unmap(Gva(va), len, frames)?;
                break;
            }
            // A 2 MiB leaf right at its start is right throughout.
            p += match mapper.translate(Gva(p)) {
                Some(t) if t.page_left == PAGE_2M && p % PAGE_2M == 0 => PAGE_2M,
                _ => PAGE_4K,
            };
        }
        mapper.protect(Gva(va), len, perm(prot), frames)?;
        for (hole, n) in mapper.holes(Gva(va), len) {
            let pa = Gpa(gpa + (hole.0 - va));
            mapper.map(hole, n, Target::Contiguous(pa), perm(prot), frames)?;
        }
        Ok(())
    }

    /// Give `[start, end)`, one mapping, the rights `prot`: its region's frames where it has
    /// none (a region's pages map nothing but its linear backing, so a present entry is
    /// right), in the arena its bound frames and nothing elsewhere.
    fn plan_mapped(
        &self,
        start: u64,
        end: u64,
        prot: u32,
        mapper: &mut Mapper,
        frames: &mut Frames,
    ) -> Result<(), PagingError> {
        let mut at = start;
        while at < end {
            if let Some((_, lazy_end)) = self.lazy_span(at) {
                let e = lazy_end.min(end);
                let bound = self.backing().bound_in(at, e);
                for (va, gpa, len) in bound {
                    if at < va {
                        mapper.unmap(Gva(at), va - at, frames)?;
                    }
                    self.plan_extent(va, gpa, len, prot, mapper, frames)?;
                    at = va + len;
                }
                if at < e {
                    mapper.unmap(Gva(at), e - at, frames)?;
                }
                at = e;
                continue;
            }
            let Some(r) = self.region_at(at) else {
                // No RAM behind it (placeable refuses such ranges): leave it.
                at = self
                    .regions
                    .iter()
                    .map(|r| r.start)
                    .find(|&s| s > at)
                    .unwrap_or(end)
                    .min(end);
                continue;
            };
            let e = r.end.min(end);
            mapper.protect(Gva(at), e - at, perm(prot), frames)?;
            for (va, n) in mapper.holes(Gva(at), e - at) {
                let pa = Gpa(r.pa + (va.0 - r.start));
                mapper.map(va, n, Target::Contiguous(pa), perm(prot), frames)?;
            }
            at = e;
        }
        Ok(())
    }

    /// The one place page-table changes go (see [`PtChange`]): accounted, and queued for
    /// the exit that made them to apply.
    pub fn apply(&mut self, change: PtChange) -> PtChanges {
        let (start, end, present) = match change {
            PtChange::Map(start, end, prot) | PtChange::Protect(start, end, prot) => {
                (start, end, prot != 0)
            }
            PtChange::Unmap(start, end) => (start, end, false),
        };
        let pages = end.saturating_sub(start) / PAGE_4K;
        let done = PtChanges {
            pages,
            present: if present { pages } else { 0 },
        };
        self.pt_work.pages += done.pages;
        self.pt_work.present += done.present;
        if pages > 0 {
            self.pending.push((std::thread::current().id(), start, end));
        }
        done
    }

    /// Guest RAM the application's memory may still take: the guest's free memory
    /// (sysinfo). Untouched mappings, PROT_NONE reservations above all, cost none.
    pub fn free_bytes(&self) -> u64 {
        self.backing().available_bytes()
    }

    /// The regions, sorted.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The mappings, ascending (start, mapping).
    pub fn vmas(&self) -> impl Iterator<Item = (u64, &Vma)> {
        self.vmas.iter()
    }

    /// How many mappings there are.
    pub fn map_count(&self) -> usize {
        self.vmas.len()
    }

    fn region_at(&self, va: u64) -> Option<&Region> {
        let i = self.regions.partition_point(|r| r.end <= va);
        self.regions.get(i).filter(|r| r.start <= va)
    }

    /// Whether `[start, end)` lies in memory a mapping may be placed on: lazy memory (the
    /// arena, the low range outside the images), or a writable region (image data, stack),
    /// whose page tables allow what an anonymous mapping needs.
    fn placeable(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            if let Some((_, e)) = self.lazy_span(at) {
                at = e;
                continue;
            }
            match self.region_at(at) {
                Some(r) if r.write => at = r.end,
                _ => return false,
            }
        }
        true
    }

    /// The physical pieces of `[va, va + len)`; EFAULT if any byte is unmapped or its
    /// mapping's protection does not allow `access`.
    pub fn chunks(&self, va: u64, len: u64, access: Access) -> Result<Vec<(Gpa, u64)>, Errno> {
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        // Linux's access_ok: even an empty range must lie in the user half.
        if end > TASK_SIZE_MAX {
            return Err(Errno::EFAULT);
        }
        let mut out: Vec<(Gpa, u64)> = Vec::new();
        let mut at = va;
        while at < end {
            let (gpa, piece_end) = self.piece(at, end, access, true).ok_or(Errno::EFAULT)?;
            let n = piece_end - at;
            match out.last_mut() {
                Some(last) if last.0 .0 + last.1 == gpa => last.1 += n,
                _ => out.push((Gpa(gpa), n)),
            }
            at = piece_end;
        }
        Ok(out)
    }

    /// The physical address of `at` and the end (at most `end`) of the stretch from it that
    /// is one mapping allowing `access` over one region or one bound extent. An arena page
    /// without a frame gets one first if `populate` (as Linux's uaccess faults it in).
    fn piece(&self, at: u64, end: u64, access: Access, populate: bool) -> Option<(u64, u64)> {
        let Some((start, v)) = self.vmas.get(at) else {
            self.note_below_growsdown(at);
            return None;
        };
        if !access.allowed_by(v.prot) {
            return None;
        }
        let Some((lo, hi)) = self.lazy_span(at) else {
            let r = self.region_at(at)?;
            return Some((r.pa + (at - r.start), v.end.min(r.end).min(end)));
        };
        let mut b = self.backing();
        let (s, gpa, len) = match b.lookup(at) {
            Some(x) => x,
            None if populate && v.file.is_none() => {
                b.populate(at, start.max(lo), v.end.min(hi)).ok()?;
                b.lookup(at)?
            }
            // A file page the app never touched: bound (and the file laid over it) now, as
            // Linux's uaccess faults it in; past the end of the file it is EFAULT.
            None if populate => {
                drop(b);
                let mem = self.mem.as_ref()?;
                if !matches!(self.bind_file(mem, at), FileBind::Bound(..)) {
                    return None;
                }
                b = self.backing();
                b.lookup(at)?
            }
            None => return None,
        };
        Some((gpa + (at - s), (s + len).min(v.end).min(end)))
    }

    /// The end (at most `end`) of the stretch from `at` that is one mapping allowing `access`
    /// with RAM behind it (bound or not).
    fn reach(&self, at: u64, end: u64, access: Access) -> Option<u64> {
        let (_, v) = self.vmas.get(at)?;
        if !access.allowed_by(v.prot) {
            return None;
        }
        if let Some((_, e)) = self.lazy_span(at) {
            return Some(v.end.min(e).min(end));
        }
        let r = self.region_at(at)?;
        Some(v.end.min(r.end).min(end))
    }

    /// How many bytes from `va` (at most `len`) allow `access`: where a copy of the whole range
    /// would stop at the first fault.
    pub fn accessible(&self, va: u64, len: u64, access: Access) -> u64 {
        let end = va.saturating_add(len).min(TASK_SIZE_MAX);
        let mut at = va;
        while at < end {
            match self.reach(at, end, access) {
                Some(e) => at = e,
                None => break,
            }
        }
        at.max(va) - va
    }

    /// Whether every byte of `[va, va + len)` is mapped (any permission).
    pub fn is_mapped(&self, va: u64, len: u64) -> bool {
        va.checked_add(len).is_some_and(|e| e <= TASK_SIZE_MAX)
            && self.accessible(va, len, Access::Mapped) == len
    }

    /// mincore's answer for the pages of `[start, start + n pages)` (all mapped): 1 where the
    /// page has its frame (regions always), 0 where a lazy mapping's page was never touched.
    pub fn resident(&self, start: u64, pages: u64) -> Vec<u8> {
        let b = self.backing();
        (0..pages)
            .map(|i| {
                let va = start + i * PAGE_4K;
                u8::from(!self.is_lazy(va) || b.lookup(va).is_some())
            })
            .collect()
    }

    /// Whether `[start, end)` is inside the arena and no mapping (brk's included) holds any of it.
    pub fn arena_is_free(&self, start: u64, end: u64) -> bool {
        start >= self.arena.start && end <= self.arena.end && !self.vmas.intersects(start, end)
    }

    /// Bytes mapped without a hole from `start` (at most `len`): mincore's answer.
    pub fn mapped_run(&self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        let mut at = start;
        while at < end {
            match self.vmas.get(at) {
                Some((_, v)) => at = v.end.min(end),
                None => break,
            }
        }
        at - start
    }

    /// Zero `[start, end)` (mapped memory given back or handed out afresh): the host pages
    /// are dropped, so it costs no host memory until touched again. Arena pages give their
    /// frames back (the page tables follow at this exit; with several vCPUs the frames are
    /// free once every vCPU's translations are gone) and read zeros from a fresh frame at
    /// their next touch.
    fn zero(&mut self, mem: &GuestMem, start: u64, end: u64) -> Result<(), Errno> {
        let mut at = start;
        while at < end {
            if let Some((_, e)) = self.lazy_span(at) {
                let e = e.min(end);
                self.backing().release(mem, at, e, true);
                self.pending.push((std::thread::current().id(), at, e));
                at = e;
                continue;
            }
            let r = self.region_at(at).ok_or(Errno::EFAULT)?;
            let e = r.end.min(end);
            mem.discard(Gpa(r.pa + (at - r.start)), e - at)
                .map_err(mem_errno)?;
            at = e;
        }
        Ok(())
    }

    /// Unmap `[start, end)` (page-aligned). Arena memory gives its frames back (see `zero`).
    /// Memory placed before start (image, stack) keeps its contents:
    /// the page tables still map it, so the application can still reach it, and a program
    /// that unmapped its own data (which on Linux faults) goes on as before instead of
    /// reading zeros; a new mapping there is zeroed when it is made.
    fn unmap(&mut self, mem: &GuestMem, start: u64, end: u64) -> Result<(), Errno> {
        let gone = self.vmas.remove(start, end)?;
        let files: Vec<u32> = gone
            .iter()
            .filter_map(|(_, v)| v.file.map(|f| f.id))
            .collect();
        for (s, v) in gone {
            self.zero_lazy(mem, s, v.end)?;
            self.apply(PtChange::Unmap(s, v.end));
            self.search_top = self.search_top.max(v.end.min(self.arena.end));
        }
        self.forget_files(&files);
        Ok(())
    }

    /// Give the arena pages of `[start, end)` their frames now (brk, small writable
    /// mappings: plan §3); ENOMEM (nothing bound) when guest memory is out.
    fn populate_now(&mut self, mem: &GuestMem, start: u64, end: u64) -> Result<(), Errno> {
        let parts = self.lazy_parts(start, end);
        let mut b = self.backing();
        for (i, &(a, e)) in parts.iter().enumerate() {
            if b.populate_all(a, e, mem).is_err() {
                // All or nothing: what the earlier parts bound goes back.
                for &(a, e) in &parts[..i] {
                    b.release(mem, a, e, true);
                }
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    /// The lazy stretches of `[start, end)`, clipped to it, ascending.
    fn lazy_parts(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut parts = Vec::new();
        let mut at = start;
        while at < end {
            match self.lazy_span(at) {
                Some((_, e)) => {
                    let e = e.min(end);
                    parts.push((at, e));
                    at = e;
                }
                // The next stretch begins at the end of this region, or at the arena or
                // the low range.
                None => {
                    let next = match self.region_at(at) {
                        Some(r) => r.end,
                        None if at < self.low.0 => self.low.0,
                        None if at < self.arena.start && at >= self.low.1 => self.arena.start,
                        None => end,
                    };
                    at = next.max(at + PAGE_4K);
                }
            }
        }
        parts
    }

    /// [`AddrSpace::zero`] of the lazy memory in `[start, end)` only: what regions hold
    /// stays (see `unmap`).
    fn zero_lazy(&mut self, mem: &GuestMem, start: u64, end: u64) -> Result<(), Errno> {
        for (a, e) in self.lazy_parts(start, end) {
            self.zero(mem, a, e)?;
        }
        Ok(())
    }

    /// Linux's heuristic overcommit for a new private writable mapping of `len` bytes: one
    /// larger than all the memory there is cannot be had (ENOMEM); anything else may be, as
    /// frames are taken only when touched.
    fn commit(&self, len: u64, how: &NewMap) -> Result<(), Errno> {
        let charged = how.prot & mman::PROT_WRITE != 0 && !how.shared && !how.noreserve;
        if charged && len > self.backing_limit_bytes() {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Add a mapping at the free, placeable `[start, end)`; its pages get frames at first
    /// touch, or now for a small writable one.
    fn map(&mut self, start: u64, end: u64, kind: Kind, how: NewMap, file: Option<FileRef>) {
        self.vmas.insert(
            start,
            Vma {
                end,
                prot: how.prot,
                kind,
                shared: how.shared,
                growsdown: how.growsdown,
                locked: how.locked || self.lock_future,
                file,
                onfork: OnFork::Copy,
            },
        );
        self.apply(PtChange::Map(start, end, how.prot));
    }

    /// Where a new mapping starting at the free `va` must end: below the guard gap of a
    /// MAP_GROWSDOWN mapping above it, else anywhere.
    fn gap_above(&self, va: u64) -> u64 {
        match self.vmas.find(va) {
            Some((s, v)) if s > va && v.growsdown => s.saturating_sub(STACK_GUARD_GAP),
            _ => u64::MAX,
        }
    }

    /// Free arena space for `len` bytes: the hint (rounded down to its page, as x86-64 does) if it is free and
    /// placeable, else the highest gap above the break, as Linux's top-down allocator.
    fn find(&mut self, hint: u64, len: u64) -> Result<u64, Errno> {
        if hint != 0 {
            if let Some((h, e)) =
                Some(hint - hint % PAGE_4K).and_then(|h| Some((h, h.checked_add(len)?)))
            {
                if e <= TASK_SIZE_MAX
                    && self.placeable(h, e)
                    && !self.vmas.intersects(h, e)
                    && e <= self.gap_above(h)
                {
                    return Ok(h);
                }
            }
        }
        let floor = page_up(self.arena.brk)
            .unwrap_or(self.arena.end)
            .max(self.arena.start);
        let mut top = self.search_top.min(self.arena.end);
        let mut first_gap = None;
        let mut found = None;
        for (s, v) in self.vmas.below(top) {
            let low = v.end.max(floor);
            if low < top {
                first_gap.get_or_insert(top);
                if top - low >= len {
                    found = Some(top - len);
                    break;
                }
            }
            // A MAP_GROWSDOWN mapping keeps its guard gap free (Linux's vm_start_gap).
            top = top.min(if v.growsdown {
                s.saturating_sub(STACK_GUARD_GAP)
            } else {
                s
            });
            if top <= floor {
                break;
            }
        }
        if found.is_none() && top > floor {
            first_gap.get_or_insert(top);
            if top - floor >= len {
                found = Some(top - len);
            }
        }
        self.search_top = first_gap.unwrap_or(floor);
        found.ok_or(Errno::ENOMEM)
    }

    /// brk(2): returns the new break, or the old one when the request cannot be met.
    pub fn brk(&mut self, mem: &GuestMem, want: u64) -> u64 {
        let old = self.arena.brk;
        if want < self.arena.brk_start {
            return old;
        }
        let (Some(old_top), Some(new_top)) = (page_up(old), page_up(want)) else {
            return old;
        };
        if new_top < old_top {
            if self.unmap(mem, new_top, old_top).is_err() {
                return old;
            }
        } else if new_top > old_top {
            // Linux keeps a page between the break and the next mapping.
            let clear = new_top.checked_add(PAGE_4K);
            if new_top > self.arena.end
                || clear.is_none_or(|c| self.vmas.intersects(old_top, c))
                || self.vmas.len() > MAX_MAP_COUNT
            {
                return old;
            }
            if self.populate_now(mem, old_top, new_top).is_err() {
                return old;
            }
            let rw = mman::PROT_READ | mman::PROT_WRITE;
            self.map(old_top, new_top, Kind::Heap, NewMap::private(rw), None);
        }
        self.arena.brk = want;
        want
    }

    /// Anonymous mmap(2) of `len` bytes (not 0) placed as `place` says.
    pub fn mmap(
        &mut self,
        mem: &GuestMem,
        place: Place,
        len: u64,
        how: NewMap,
    ) -> Result<u64, Errno> {
        self.mmap_with(mem, place, len, how, None)
    }

    /// mmap(2) of `len` bytes of `file` from `offset`, placed as `place` says: the mapping's
    /// frames are bound now and the file's pages overlaid on them, so the application, the
    /// monitor's accesses and every other mapping of the file (in this process or, across
    /// fork, another) see one set of pages. Only in lazy memory, the arena or the low range
    /// outside the images (ENOMEM elsewhere).
    pub fn mmap_file(
        &mut self,
        mem: &GuestMem,
        place: Place,
        len: u64,
        how: NewMap,
        file: Arc<MappedFile>,
        offset: u64,
    ) -> Result<u64, Errno> {
        self.mmap_with(mem, place, len, how, Some((file, offset)))
    }

    fn mmap_with(
        &mut self,
        mem: &GuestMem,
        place: Place,
        len: u64,
        how: NewMap,
        file: Option<(Arc<MappedFile>, u64)>,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if self.vmas.len() > MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        self.commit(len, &how)?;
        let at = match place {
            Place::Hint(hint) => {
                let mut at = self.find(hint, len)?;
                if file.is_some() && !self.all_lazy(at, at + len) {
                    at = self.find(0, len)?;
                }
                if at < self.arena.start || at + len > self.arena.end {
                    // A hint honoured outside the arena: see `unmap`.
                    self.zero(mem, at, at + len)?;
                }
                at
            }
            Place::Fixed(addr) | Place::NoReplace(addr) => {
                if addr % PAGE_4K != 0 {
                    return Err(Errno::EINVAL);
                }
                let end = addr
                    .checked_add(len)
                    .filter(|&e| e <= TASK_SIZE_MAX)
                    .ok_or(Errno::ENOMEM)?;
                if matches!(place, Place::NoReplace(_)) && self.vmas.intersects(addr, end) {
                    return Err(Errno::EEXIST);
                }
                if !self.placeable(addr, end) || (file.is_some() && !self.all_lazy(addr, end)) {
                    return Err(Errno::ENOMEM);
                }
                self.unmap(mem, addr, end)?;
                // Memory no mapping holds may still hold what the image placed there.
                self.zero(mem, addr, end)?;
                addr
            }
        };
        if let Some((f, offset)) = file {
            if self.mem.is_none() {
                self.mem = Some(mem.clone());
            }
            let id = self.next_file;
            self.next_file = self.next_file.wrapping_add(1);
            self.files.insert(id, f);
            let fref = FileRef { id, offset };
            self.map(at, at + len, Kind::Anon, how, Some(fref));
            if let Err(e) = self.attach(mem, at, at + len, fref) {
                let _ = self.unmap(mem, at, at + len);
                self.files.remove(&id);
                return Err(e);
            }
            return Ok(at);
        }
        if len < EAGER_MAX_BYTES && how.prot & mman::PROT_WRITE != 0 && !how.noreserve {
            self.populate_now(mem, at, at + len)?;
        }
        self.map(at, at + len, Kind::Anon, how, None);
        Ok(at)
    }

    /// The end of `[start, end)` of a file mapping (`fref` at `start`) that lies before the end
    /// of its file, rounded up to a page: pages past it are SIGBUS.
    fn before_eof(&self, start: u64, end: u64, fref: FileRef) -> Result<u64, Errno> {
        let f = self.files.get(&fref.id).ok_or(Errno::EINVAL)?;
        let size = rustix::fs::fstat(&f.fd)
            .map_err(crate::linux::io::host_errno)?
            .st_size;
        let eof = (size.max(0) as u64).next_multiple_of(PAGE_4K);
        Ok(end
            .min(start.saturating_add(eof.saturating_sub(fref.offset)))
            .max(start))
    }

    /// Lay the file's pages over the frames already bound in `[start, end)`, a range of a
    /// file mapping that held nothing of the file yet (a new, moved or grown mapping whose
    /// pages kept frames because the tables are frozen, or private pages just dropped). The
    /// other pages get their frames and file pages at first touch ([`AddrSpace::bind_file`]).
    fn attach(&mut self, mem: &GuestMem, start: u64, end: u64, fref: FileRef) -> Result<(), Errno> {
        let f = self.files.get(&fref.id).cloned().ok_or(Errno::EINVAL)?;
        let end = self.before_eof(start, end, fref)?;
        if end <= start {
            return Ok(());
        }
        self.pending.push((std::thread::current().id(), start, end));
        let extents = self.backing().bound_in(start, end);
        overlay_extents(mem, &f, extents, start, fref.offset).map_err(mem_errno)
    }

    /// [`Self::bind_file`]'s tmpfs count for the `fresh` extents of file mapping `f` (at
    /// `start`, file offset `offset`): all admitted, or (released but the page of `va`) that
    /// page, or None when not even that fits (everything fresh released).
    #[allow(clippy::type_complexity)]
    fn admit_tmpfs(
        &self,
        mem: &GuestMem,
        b: &mut std::sync::MutexGuard<'_, Backing>,
        f: &MappedFile,
        fresh: Vec<(u64, u64, u64)>,
        (start, offset): (u64, u64),
        va: u64,
    ) -> Option<(Vec<(u64, u64, u64)>, u64, u64)> {
        let span = |x: &[(u64, u64, u64)]| {
            let first = x.first().map_or(0, |e| e.0);
            let last = x.last().map_or(0, |e| e.0 + e.2);
            (first, last)
        };
        let (first, last) = span(&fresh);
        let Some(m) = f.tmpfs.as_ref().filter(|_| f.kind == OverlayKind::Shared) else {
            return Some((fresh, first, last));
        };
        let Some(usage) = m.tmpfs() else {
            return Some((fresh, first, last));
        };
        // `b` is the backing, locked: not `backing_limit_bytes`, which locks it again.
        let size = b.limit_bytes();
        let admit = |a: u64, e: u64| {
            usage
                .admit(
                    m.root_fd(),
                    f.fd.as_fd(),
                    offset + (a - start),
                    e - a,
                    size,
                    true,
                )
                .is_ok()
        };
        if admit(first, last) {
            return Some((fresh, first, last));
        }
        let page = va & !(PAGE_4K - 1);
        for (a, _, n) in fresh {
            b.release(mem, a, a + n, true);
        }
        b.populate(page, page, page + PAGE_4K).ok()?;
        let kept = b.bound_in(page, page + PAGE_4K);
        if !admit(page, page + PAGE_4K) {
            b.release(mem, page, page + PAGE_4K, true);
            return None;
        }
        Some((kept, page, page + PAGE_4K))
    }

    /// Give the file mapping's page at `va` (and, as for anonymous memory, the 2 MiB or the
    /// fault-around window around it that the mapping and the file cover) frames with the
    /// file's pages laid over them.
    fn bind_file(&self, mem: &GuestMem, va: u64) -> FileBind {
        let Some((s, v)) = self.vmas.get(va).map(|(s, v)| (s, *v)) else {
            return FileBind::PastEof;
        };
        let (Some(fref), Some(f)) = (v.file, v.file.and_then(|r| self.files.get(&r.id))) else {
            return FileBind::PastEof;
        };
        let Ok(end) = self.before_eof(s, v.end, fref) else {
            return FileBind::PastEof;
        };
        if va >= end {
            return FileBind::PastEof;
        }
        let mut b = self.backing();
        if b.lookup(va).is_some() {
            return FileBind::Bound(va, va + 1);
        }
        // The window populate may bind in: the 2 MiB block around `va`, within the mapping.
        let block = va & !(PAGE_2M - 1);
        let (lo, hi) = (block.max(s), (block + PAGE_2M).min(end));
        let before: std::collections::BTreeSet<u64> =
            b.bound_in(lo, hi).into_iter().map(|(a, _, _)| a).collect();
        // Code and the other segments of a library are touched all over (a C library's text,
        // its symbol tables for ld.so: a page here, a page there): the whole window at the
        // first fault, one batch that fills (or replaces) the table, instead of a fault per
        // 32 KiB at ~100 us each on PVM. Its pages are the file's (mapped, not read), so only
        // frames are spent. Mappings of data bigger than the window keep the fault-around (a
        // sparse reader of a big file must not bind 2 MiB per touch).
        let code = v.prot & mman::PROT_EXEC != 0 || v.end - s <= PAGE_2M;
        let whole = code && b.populate_all(lo, hi, mem).is_ok();
        if !whole && b.populate(va, s, end).is_err() {
            return FileBind::NoMemory;
        }
        let fresh: Vec<(u64, u64, u64)> = b
            .bound_in(lo, hi)
            .into_iter()
            .filter(|(a, _, _)| !before.contains(a))
            .collect();
        if fresh.is_empty() {
            return FileBind::Bound(va, va + 1);
        }
        // In a private tmpfs, what a shared mapping binds is the tmpfs's: admitted all at once,
        // else the faulting page alone, else the tmpfs is full and the access is SIGBUS.
        let (fresh, first, last) =
            match self.admit_tmpfs(mem, &mut b, f, fresh, (s, fref.offset), va) {
                Some(admitted) => admitted,
                None => return FileBind::Full,
            };
        if let Err(e) = overlay_extents(mem, f, fresh.clone(), s, fref.offset) {
            log::warn!("cannot map a file page at {va:#x}: {e}");
            for (a, _, n) in fresh {
                b.release(mem, a, a + n, true);
            }
            return FileBind::NoMemory;
        }
        FileBind::Bound(first, last)
    }

    /// A page fault at `va` (`access`) in a file mapping's page that has no frame: it gets its
    /// frame and file page (Some(Bound): the instruction runs again), unless it lies past
    /// the end of the file (SIGBUS) or no frame is left. None for every other fault (the
    /// anonymous path decides).
    pub fn file_fault(&mut self, mem: &GuestMem, va: u64, access: Access) -> Option<FileBind> {
        let (_, v) = self.vmas.get(va).map(|(s, v)| (s, *v))?;
        v.file?;
        if !access.allowed_by(v.prot) || self.backing().lookup(va).is_some() {
            return None;
        }
        let r = self.bind_file(mem, va);
        if let FileBind::Bound(a, e) = r {
            self.pending
                .push((std::thread::current().id(), a & !(PAGE_4K - 1), e));
        }
        Some(r)
    }

    /// The file `dev`/`ino` was truncated to `size` by this process: the pages of its
    /// mappings wholly past the new end lose their frames, so touching them is SIGBUS as on
    /// Linux (instead of a host fault under the guest).
    pub fn file_truncated(&mut self, mem: &GuestMem, dev: u64, ino: u64, size: u64) {
        let eof = size.next_multiple_of(PAGE_4K);
        let ids: Vec<u32> = self
            .files
            .iter()
            .filter(|(_, f)| {
                rustix::fs::fstat(&f.fd).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
            })
            .map(|(&id, _)| id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let cut: Vec<(u64, u64)> = self
            .vmas
            .iter()
            .filter_map(|(s, v)| {
                let f = v.file.filter(|f| ids.contains(&f.id))?;
                let from = s + eof.saturating_sub(f.offset).min(v.end - s);
                (from < v.end).then_some((from, v.end))
            })
            .collect();
        for (a, e) in cut {
            self.backing().release(mem, a, e, true);
            self.pending.push((std::thread::current().id(), a, e));
        }
    }

    /// In a forked child, before its first instruction: MADV_DONTFORK mappings are gone and
    /// MADV_WIPEONFORK ones read zeros. True if the page tables have changes to follow.
    pub fn fork_child(&mut self, mem: &GuestMem) -> bool {
        // The parent's other threads are not here: what they changed and their tables have
        // not followed yet (no batch was in flight: fork holds the turn) is this thread's.
        let me = std::thread::current().id();
        for p in &mut self.pending {
            p.0 = me;
        }
        self.backing().end_quarantine(mem);
        let inherited = !self.pending.is_empty();
        let marked: Vec<(u64, u64, OnFork)> = self
            .vmas
            .iter()
            .filter(|(_, v)| v.onfork != OnFork::Copy)
            .map(|(s, v)| (s, v.end, v.onfork))
            .collect();
        for &(s, e, what) in &marked {
            let done = match what {
                OnFork::Drop => self.unmap(mem, s, e),
                _ => {
                    let _ = self.vmas.update(s, e, |v| v.onfork = OnFork::Wipe);
                    self.zero_lazy(mem, s, e)
                }
            };
            if let Err(e) = done {
                log::warn!("fork: the child's MADV_DONTFORK/WIPEONFORK memory: {e}");
            }
        }
        inherited || !marked.is_empty()
    }

    /// The file mapped at `va`, if any, with the offset `va` maps.
    fn file_at(&self, va: u64) -> Option<(Arc<MappedFile>, u64)> {
        let (s, v) = self.vmas.get(va)?;
        let fref = v.file?;
        Some((self.files.get(&fref.id)?.clone(), fref.offset + (va - s)))
    }

    /// The guest-physical address of the futex word at `va` when its page is a page of a
    /// host file shared with others (a MAP_SHARED mapping): the futex must be the host's, so
    /// that waiters and wakers in other processes of the application meet.
    pub fn shared_futex_word(&self, va: u64) -> Option<Gpa> {
        let (f, _) = self.file_at(va)?;
        if f.kind != OverlayKind::Shared {
            return None;
        }
        let (s, gpa, _) = self.backing().lookup(va)?;
        Some(Gpa(gpa + (va - s)))
    }

    /// The file a mapping is made of ([`FileRef::id`]).
    pub fn mapped_file(&self, id: u32) -> Option<&Arc<MappedFile>> {
        self.files.get(&id)
    }

    /// Forget every mapped file (the process is ending: its host mappings of them go before
    /// its parent learns of the end).
    pub fn drop_files(&mut self) {
        self.files.clear();
    }

    /// Drop the files no mapping is made of any more among `ids`.
    fn forget_files(&mut self, ids: &[u32]) {
        for &id in ids {
            if !self
                .vmas
                .iter()
                .any(|(_, v)| v.file.is_some_and(|f| f.id == id))
            {
                self.files.remove(&id);
            }
        }
    }

    /// munmap(2).
    pub fn munmap(&mut self, mem: &GuestMem, addr: u64, len: u64) -> Result<(), Errno> {
        if addr % PAGE_4K != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .filter(|&e| e <= TASK_SIZE_MAX)
            .ok_or(Errno::EINVAL)?;
        self.unmap(mem, addr, end)
    }

    /// mprotect(2) after its argument checks, walking as Linux does: ENOMEM if nothing is
    /// mapped at `start`; the mapped stretch before a hole is changed before the hole's ENOMEM.
    /// With `growsdown` (PROT_GROWSDOWN) the change reaches down to the start of a MAP_GROWSDOWN
    /// mapping (EINVAL on another).
    pub fn mprotect(
        &mut self,
        start: u64,
        end: u64,
        prot: u32,
        growsdown: bool,
    ) -> Result<(), Errno> {
        let (first, v) = self.vmas.find(start).ok_or(Errno::ENOMEM)?;
        let start = if growsdown {
            if first >= end {
                return Err(Errno::ENOMEM);
            }
            if !v.growsdown {
                return Err(Errno::EINVAL);
            }
            first
        } else {
            if first > start {
                return Err(Errno::ENOMEM);
            }
            start
        };
        // Linux's VM_MAYWRITE: a shared mapping of a file opened read-only never becomes
        // writable (checked for the whole range first: a deviation only in which pieces a
        // failing call has changed).
        if prot & mman::PROT_WRITE != 0 {
            let denied = self.vmas.iter_from(start, end).any(|(_, v)| {
                v.file
                    .and_then(|f| self.files.get(&f.id))
                    .is_some_and(|f| !f.may_write)
            });
            if denied {
                return Err(Errno::EACCES);
            }
        }
        let done = self.vmas.update(start, end, |v| v.prot = prot);
        self.apply(PtChange::Protect(start, end, prot));
        done
    }

    /// mlock/munlock of `[start, end)`: the same walk as mprotect's. Special mappings
    /// (vvar, vdso) are never locked, as on Linux.
    pub fn mlock(&mut self, start: u64, end: u64, lock: bool) -> Result<(), Errno> {
        match self.vmas.find(start) {
            Some((s, _)) if s <= start => {}
            _ => return Err(Errno::ENOMEM),
        }
        self.vmas.update(start, end, |v| {
            if !v.kind.is_special() {
                v.locked = lock;
            }
        })
    }

    /// mlockall(2) (`current`: MCL_CURRENT; `future`: MCL_FUTURE) and munlockall(2) (both
    /// false).
    pub fn mlockall(&mut self, current: bool, future: bool) {
        self.lock_future = future;
        if current || !future {
            self.vmas
                .update_all(|v| v.locked = current && !v.kind.is_special());
        }
    }

    /// Call `visit` on each mapped piece of `[start, end)` with its mapping, as Linux's
    /// madvise and msync walk: an error from `visit` ends the walk; a hole is ENOMEM at the
    /// end (the pieces around it still visited).
    fn walk(
        &mut self,
        start: u64,
        end: u64,
        mut visit: impl FnMut(&mut Self, u64, u64, Vma) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut at = start;
        let mut hole = false;
        while at < end {
            let Some((s, v)) = self.vmas.find(at).map(|(s, v)| (s, *v)) else {
                return Err(Errno::ENOMEM);
            };
            if s > at {
                hole = true;
                at = s;
                if at >= end {
                    break;
                }
            }
            let piece_end = v.end.min(end);
            // The piece's own view: a file mapping's offset is the one at `at`.
            visit(self, at, piece_end, v.from(s, at))?;
            at = piece_end;
        }
        if hole {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// madvise(2) of the page-aligned, non-empty `[start, end)` with a known advice.
    pub fn madvise(
        &mut self,
        mem: &GuestMem,
        start: u64,
        end: u64,
        advice: u64,
    ) -> Result<(), Errno> {
        self.walk(start, end, |space, s, e, v| match advice {
            MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE => {
                let locked = v.locked && advice != MADV_DONTNEED_LOCKED;
                let private_anon = v.kind.is_anon() && !v.shared && v.file.is_none();
                if locked || v.kind == Kind::Vvar || (advice == MADV_FREE && !private_anon) {
                    return Err(Errno::EINVAL);
                }
                // A file's pages come back from the file: a shared mapping's are the file's
                // already; a private one drops what it wrote and reads the file again.
                if let Some(fref) = v.file {
                    if v.shared || advice == MADV_FREE {
                        return Ok(());
                    }
                    space.zero(mem, s, e)?;
                    return space.attach(mem, s, e, fref);
                }
                // FREE lets Linux drop the pages only under memory pressure: keeping them is
                // one of its answers. Image pages would come back from the file on Linux; they
                // keep what they hold (until images are mapped from their files, step 12).
                if advice != MADV_FREE && v.kind.is_anon() {
                    space.zero(mem, s, e)?;
                }
                Ok(())
            }
            mman::MADV_REMOVE => {
                if v.locked || !v.shared {
                    return Err(Errno::EINVAL);
                }
                if v.prot & mman::PROT_WRITE == 0 {
                    return Err(Errno::EACCES);
                }
                // The file's blocks are freed: every mapping of it reads zeros there.
                match space.file_at(s) {
                    Some((f, offset)) => rustix::fs::fallocate(
                        &f.fd,
                        rustix::fs::FallocateFlags::PUNCH_HOLE
                            | rustix::fs::FallocateFlags::KEEP_SIZE,
                        offset,
                        e - s,
                    )
                    .map_err(crate::linux::io::host_errno),
                    None => space.zero(mem, s, e),
                }
            }
            MADV_WIPEONFORK if v.shared || !v.kind.is_anon() || v.file.is_some() => {
                Err(Errno::EINVAL)
            }
            // DONTFORK wins over WIPEONFORK, as VM_DONTCOPY does on Linux.
            MADV_WIPEONFORK | MADV_KEEPONFORK | MADV_DONTFORK | MADV_DOFORK => {
                if v.kind.is_special() && matches!(advice, MADV_DONTFORK | MADV_DOFORK) {
                    return Err(Errno::EINVAL);
                }
                space.vmas.update(s, e, |v| {
                    v.onfork = match (advice, v.onfork) {
                        (MADV_DONTFORK, _) => OnFork::Drop,
                        (MADV_DOFORK, OnFork::Drop) => OnFork::Copy,
                        (MADV_WIPEONFORK, OnFork::Copy) => OnFork::Wipe,
                        (MADV_KEEPONFORK, OnFork::Wipe) => OnFork::Copy,
                        (_, o) => o,
                    }
                })
            }
            _ => Ok(()),
        })
    }

    /// msync(2) of the page-aligned `[start, end)` after its flag checks: nothing to write
    /// back (no shared file mappings yet); ENOMEM for holes, EBUSY for MS_INVALIDATE on
    /// locked memory, in Linux's order (MS_ASYNC alone stops at the first hole).
    pub fn msync(&mut self, mem: &GuestMem, start: u64, end: u64, flags: u64) -> Result<(), Errno> {
        let mut at = start;
        let mut hole = false;
        let mut files = Vec::new();
        while at < end {
            let (s, v) = self.vmas.find(at).ok_or(Errno::ENOMEM)?;
            if s > at {
                if flags == MS_ASYNC {
                    return Err(Errno::ENOMEM);
                }
                hole = true;
                at = s;
                if at >= end {
                    break;
                }
            }
            if flags & MS_INVALIDATE != 0 && v.locked {
                return Err(Errno::EBUSY);
            }
            if v.file.is_some() {
                files.push((at, v.end.min(end)));
            }
            at = v.end;
        }
        // The file's dirty pages go back to it (MS_SYNC waits for the write).
        for (s, e) in files {
            for (_, gpa, n) in self.backing().bound_in(s, e) {
                mem.sync(Gpa(gpa), n, flags).map_err(mem_errno)?;
            }
        }
        if hole {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// Copy `len` bytes from `from` to `to` (both mapped, `to` reading zeros): only what has
    /// frames, since an untouched page reads zeros at either place.
    fn copy(&self, mem: &GuestMem, from: u64, to: u64, len: u64) -> Result<(), Errno> {
        let end = from.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut src = Vec::new();
        let mut at = from;
        while at < end {
            if let Some((_, e)) = self.lazy_span(at) {
                let e = e.min(end);
                src.extend(self.backing().bound_in(at, e));
                at = e;
                continue;
            }
            let r = self.region_at(at).ok_or(Errno::EFAULT)?;
            let e = r.end.min(end);
            src.push((at, r.pa + (at - r.start), e - at));
            at = e;
        }
        for (va, gpa, n) in src {
            let mut done = 0;
            for (dst, m) in self.chunks(to + (va - from), n, Access::Mapped)? {
                mem.copy(Gpa(gpa + done), dst, m).map_err(mem_errno)?;
                done += m;
            }
        }
        Ok(())
    }

    /// Move `[old, old + len)` (inside one mapping) to the free, placeable
    /// `[new, new + new_len)`: contents and attributes; the old range unmapped unless
    /// `keep_old` (MREMAP_DONTUNMAP), which leaves it mapped and empty (zeros).
    fn move_mapping(
        &mut self,
        mem: &GuestMem,
        old: u64,
        len: u64,
        new: u64,
        new_len: u64,
        keep_old: bool,
    ) -> Result<(), Errno> {
        // Linux's move_vma: room for the splits a move can make.
        if self.vmas.len() + 3 >= MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        let (s, v) = self
            .vmas
            .get(old)
            .map(|(s, v)| (s, *v))
            .ok_or(Errno::EFAULT)?;
        // Linux's MREMAP_DONTUNMAP is for private anonymous memory.
        if keep_old && v.file.is_some() {
            return Err(Errno::EINVAL);
        }
        // A file mapping's pages are frames of lazy memory (see `mmap_file`).
        if v.file.is_some() && !self.all_lazy(new, new + new_len) {
            return Err(Errno::ENOMEM);
        }
        let kind = if v.kind.is_special() || v.kind == Kind::Image {
            Kind::Anon
        } else {
            v.kind
        };
        let moved = v.from(s, old);
        self.vmas.insert(
            new,
            Vma {
                end: new + new_len,
                kind,
                growsdown: v.growsdown && kind == Kind::Stack,
                ..moved
            },
        );
        if let Some(fref) = moved.file {
            // A file mapping moves as a view of the same file: nothing to copy.
            self.apply(PtChange::Map(new, new + new_len, v.prot));
            if let Err(e) = self.attach(mem, new, new + new_len, fref) {
                let _ = self.unmap(mem, new, new + new_len);
                return Err(e);
            }
            return self.unmap(mem, old, old + len);
        }
        self.zero(mem, new, new + len.min(new_len))?;
        self.copy(mem, old, new, len.min(new_len))?;
        if new_len > len {
            self.zero(mem, new + len, new + new_len)?;
        }
        self.apply(PtChange::Map(new, new + new_len, v.prot));
        if keep_old && v.kind.is_anon() {
            self.zero(mem, old, old + len)
        } else if keep_old {
            // File-backed on Linux: the old range reads the file again, which is what the
            // image's pages still hold unless written.
            Ok(())
        } else {
            self.unmap(mem, old, old + len)
        }
    }

    /// Move every mapping in `[old, old + len)` to the same offsets from `new` (free after
    /// MREMAP_FIXED's unmap); EFAULT (nothing moved) if one is special or `new` is not
    /// placeable.
    fn move_many(&mut self, mem: &GuestMem, old: u64, len: u64, new: u64) -> Result<u64, Errno> {
        let old_end = old + len;
        let pieces: Vec<(u64, Vma)> = self
            .vmas
            .iter_from(old, old_end)
            .map(|(s, v)| {
                let start = s.max(old);
                (
                    start,
                    Vma {
                        end: v.end.min(old_end),
                        ..v.from(s, start)
                    },
                )
            })
            .collect();
        if pieces.iter().any(|(_, v)| v.kind.is_special()) {
            return Err(Errno::EFAULT);
        }
        // A file mapping's pages are frames of lazy memory (see `mmap_file`).
        if pieces.iter().any(|(_, v)| v.file.is_some()) && !self.all_lazy(new, new + len) {
            return Err(Errno::ENOMEM);
        }
        if !self.placeable(new, new + len) {
            return Err(Errno::ENOMEM);
        }
        if self.vmas.len() + 2 * pieces.len() + 3 >= MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        self.zero(mem, new, new + len)?;
        for &(s, v) in &pieces {
            let at = new + (s - old);
            let kind = if v.kind == Kind::Image {
                Kind::Anon
            } else {
                v.kind
            };
            self.vmas.insert(
                at,
                Vma {
                    end: at + (v.end - s),
                    kind,
                    ..v
                },
            );
            match v.file {
                Some(fref) => self.attach(mem, at, at + (v.end - s), fref)?,
                None => self.copy(mem, s, at, v.end - s)?,
            }
            self.apply(PtChange::Map(at, at + (v.end - s), v.prot));
        }
        for (s, v) in pieces {
            self.unmap(mem, s, v.end)?;
        }
        Ok(new)
    }

    /// The mapping `[old, old + old_len)` must lie in (Linux's vma_to_resize).
    fn resizable(&self, old: u64, old_len: u64, new_len: u64) -> Result<Vma, Errno> {
        let (_, v) = self.vmas.get(old).ok_or(Errno::EFAULT)?;
        if old_len > v.end - old {
            return Err(Errno::EFAULT);
        }
        // old_len 0 duplicates a shared mapping on Linux (a second view of the same pages),
        // which needs page-table edits; private ones are EINVAL there too.
        if old_len == 0 {
            return Err(Errno::EINVAL);
        }
        if new_len != old_len && v.kind.is_special() {
            return Err(Errno::EFAULT);
        }
        Ok(*v)
    }

    /// mremap(2) (the flags' combinations checked by the caller).
    pub fn mremap(
        &mut self,
        mem: &GuestMem,
        old: u64,
        old_len: u64,
        new_len: u64,
        how: Remap,
    ) -> Result<u64, Errno> {
        if old % PAGE_4K != 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || new_len > TASK_SIZE_MAX {
            return Err(Errno::EINVAL);
        }
        if old_len == 0 {
            return self.alias(mem, old, new_len, how);
        }
        if how.fixed.is_some() || how.keep_old {
            return self.mremap_to(mem, old, old_len, new_len, how);
        }
        if old_len >= new_len {
            // Linux 6.18 (the native runs compared with) wants a mapping at `old` first; the
            // tail may span mappings and holes.
            if self.vmas.get(old).is_none() {
                return Err(Errno::EFAULT);
            }
            if old_len > new_len {
                self.munmap(mem, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        let v = self.resizable(old, old_len, new_len)?;
        let (old_end, grow_end) = (old + old_len, old.checked_add(new_len));
        if let Some(grow_end) = grow_end.filter(|&e| e <= TASK_SIZE_MAX) {
            if old_end == v.end
                && self.placeable(old_end, grow_end)
                && !self.vmas.intersects(old_end, grow_end)
            {
                let (start, _) = self.vmas.get(old).ok_or(Errno::EFAULT)?;
                self.zero(mem, old_end, grow_end)?;
                self.vmas.extend(start, grow_end);
                self.apply(PtChange::Map(old_end, grow_end, v.prot));
                if let Some(fref) = v.from(start, old_end).file {
                    self.attach(mem, old_end, grow_end, fref)?;
                }
                return Ok(old);
            }
        }
        if !how.may_move {
            return Err(Errno::ENOMEM);
        }
        let new = self.find(0, new_len)?;
        self.move_mapping(mem, old, old_len, new, new_len, false)?;
        Ok(new)
    }

    /// mremap with old_size 0: a second mapping of a shared mapping's pages (at a free place,
    /// or MREMAP_FIXED's), the original kept. EINVAL for private memory and without
    /// MREMAP_MAYMOVE, as Linux.
    fn alias(&mut self, mem: &GuestMem, old: u64, new_len: u64, how: Remap) -> Result<u64, Errno> {
        let (s, v) = self
            .vmas
            .get(old)
            .map(|(s, v)| (s, *v))
            .ok_or(Errno::EFAULT)?;
        let from = v.from(s, old);
        let Some(fref) = from.file.filter(|_| v.shared) else {
            return Err(Errno::EINVAL);
        };
        if !how.may_move || how.keep_old {
            return Err(Errno::EINVAL);
        }
        if self.vmas.len() + 1 >= MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        let new = match how.fixed {
            Some(new) => {
                if new % PAGE_4K != 0 || new > TASK_SIZE_MAX - new_len {
                    return Err(Errno::EINVAL);
                }
                if !self.placeable(new, new + new_len) {
                    return Err(Errno::ENOMEM);
                }
                self.munmap(mem, new, new_len)?;
                new
            }
            None => self.find(0, new_len)?,
        };
        if !self.all_lazy(new, new + new_len) {
            return Err(Errno::ENOMEM);
        }
        self.vmas.insert(
            new,
            Vma {
                end: new + new_len,
                ..from
            },
        );
        self.apply(PtChange::Map(new, new + new_len, v.prot));
        if let Err(e) = self.attach(mem, new, new + new_len, fref) {
            let _ = self.unmap(mem, new, new + new_len);
            return Err(e);
        }
        Ok(new)
    }

    /// A move to MREMAP_FIXED's address (whatever is there is unmapped first) or, for
    /// MREMAP_DONTUNMAP alone, to a free one, in Linux's mremap_to order.
    fn mremap_to(
        &mut self,
        mem: &GuestMem,
        old: u64,
        mut old_len: u64,
        new_len: u64,
        how: Remap,
    ) -> Result<u64, Errno> {
        if let Some(new) = how.fixed {
            if new % PAGE_4K != 0 || new_len > TASK_SIZE_MAX || new > TASK_SIZE_MAX - new_len {
                return Err(Errno::EINVAL);
            }
            if old.saturating_add(old_len) > new && new + new_len > old {
                return Err(Errno::EINVAL);
            }
            self.munmap(mem, new, new_len)?;
        }
        if old_len > new_len {
            let tail = old.checked_add(new_len).ok_or(Errno::EFAULT)?;
            self.munmap(mem, tail, old_len - new_len)?;
            old_len = new_len;
        }
        if let Some(new) = how.fixed {
            // A same-size move to a fixed address may take several mappings along (Linux
            // 6.17 on), gaps and all.
            let first_end = self.vmas.get(old).map(|(_, v)| v.end);
            if !how.keep_old
                && old_len == new_len
                && first_end.is_some_and(|e| e < old.saturating_add(old_len))
            {
                return self.move_many(mem, old, old_len, new);
            }
        }
        self.resizable(old, old_len, new_len)?;
        let new = match how.fixed {
            Some(new) if self.placeable(new, new + new_len) => new,
            Some(_) => return Err(Errno::ENOMEM),
            None => self.find(0, new_len)?,
        };
        self.move_mapping(mem, old, old_len, new, new_len, how.keep_old)?;
        Ok(new)
    }

    /// Copy application memory into `buf`.
    pub fn read(&self, mem: &GuestMem, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        for (gpa, n) in self.chunks(va, buf.len() as u64, Access::Read)? {
            mem.read_bytes(gpa, &mut buf[done..done + n as usize])
                .map_err(mem_errno)?;
            done += n as usize;
        }
        Ok(())
    }

    /// Copy `buf` into application memory.
    pub fn write(&self, mem: &GuestMem, va: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        for (gpa, n) in self.chunks(va, buf.len() as u64, Access::Write)? {
            mem.write_bytes(gpa, &buf[done..done + n as usize])
                .map_err(mem_errno)?;
            done += n as usize;
        }
        Ok(())
    }

    /// Read a plain value.
    pub fn read_val<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &self,
        mem: &GuestMem,
        va: u64,
    ) -> Result<T, Errno> {
        let mut v = T::new_zeroed();
        self.read(mem, va, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Write a plain value.
    pub fn write_val<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &self,
        mem: &GuestMem,
        va: u64,
        v: &T,
    ) -> Result<(), Errno> {
        self.write(mem, va, v.as_bytes())
    }

    /// A NUL-terminated string of at most `max` bytes (without the NUL); ENAMETOOLONG beyond.
    pub fn read_cstr(&self, mem: &GuestMem, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = va;
        while out.len() <= max {
            // Read up to the end of the page so a string at the end of a mapping is fine.
            let n = (PAGE_4K - at % PAGE_4K).min((max + 1 - out.len()) as u64) as usize;
            let mut buf = [0u8; PAGE_4K as usize];
            self.read(mem, at, &mut buf[..n])?;
            if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
        Err(Errno::ENAMETOOLONG)
    }
}

thread_local! {
    /// The lowest address below a MAP_GROWSDOWN mapping a monitor access on this host thread
    /// found unmapped during the current syscall (see `AddrSpace::note_below_growsdown`).
    static GROW_WANTED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// The address a failed access of this syscall wanted grown into, cleared.
pub fn take_grow_wanted() -> Option<u64> {
    GROW_WANTED.with(|w| w.take())
}

/// How mremap may move a mapping.
#[derive(Clone, Copy, Debug, Default)]
pub struct Remap {
    /// MREMAP_MAYMOVE.
    pub may_move: bool,
    /// MREMAP_FIXED's new address.
    pub fixed: Option<u64>,
    /// MREMAP_DONTUNMAP: the old range stays mapped.
    pub keep_old: bool,
}

/// The heap area: brk grows up from its start, mmap allocates top-down from its end.
#[derive(Debug, Default)]
pub struct Arena {
    /// First byte (2 MiB aligned).
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Physical address of `start`.
    pub pa: u64,
    /// Initial break.
    pub brk_start: u64,
    /// Current break.
    pub brk: u64,
}

impl Arena {
    /// An empty arena over `[start, end)` backed by physical memory from `pa`.
    pub fn new(start: u64, end: u64, pa: u64) -> Arena {
        Arena {
            start,
            end,
            pa,
            brk_start: start,
            brk: start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;
    const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;
    const BASE: u64 = 0x1000_0000;

    fn mv(may_move: bool) -> Remap {
        Remap {
            may_move,
            ..Remap::default()
        }
    }

    fn rw() -> NewMap {
        NewMap::private(RW)
    }

    /// An arena of `size` bytes at BASE over guest RAM from 0.
    fn space(size: u64) -> (GuestMem, AddrSpace) {
        let mem = GuestMem::new(size).unwrap();
        let arena = Arena::new(BASE, BASE + size, 0);
        let s = AddrSpace::new(
            vec![Region {
                start: BASE,
                end: BASE + size,
                pa: 0,
                write: true,
                exec: false,
            }],
            arena,
        );
        (mem, s)
    }

    #[test]
    fn mmap_is_top_down_and_reuses_holes() {
        let (mem, mut s) = space(8 * MB);
        let a = s.mmap(&mem, Place::Hint(0), 3 * PAGE_4K, rw()).unwrap();
        assert_eq!(a, BASE + 8 * MB - 3 * PAGE_4K);
        let b = s.mmap(&mem, Place::Hint(0), PAGE_4K, rw()).unwrap();
        assert_eq!(b, a - PAGE_4K);
        assert_eq!(s.map_count(), 1, "top-down neighbours are one mapping");
        s.munmap(&mem, a, 3 * PAGE_4K).unwrap();
        let c = s.mmap(&mem, Place::Hint(0), 2 * PAGE_4K, rw()).unwrap();
        assert_eq!(c, a + PAGE_4K);
        assert_eq!(
            s.mmap(&mem, Place::Hint(0), 16 * MB, rw()),
            Err(Errno::ENOMEM)
        );
        // A free hint is honoured, rounded down to its page; a taken one is not.
        let h = BASE + 2 * MB;
        assert_eq!(s.mmap(&mem, Place::Hint(h + 5), PAGE_4K, rw()), Ok(h));
        assert_ne!(s.mmap(&mem, Place::Hint(h), PAGE_4K, rw()), Ok(h));
    }

    #[test]
    fn the_search_finds_every_hole_after_any_unmap() {
        let (mem, mut s) = space(4 * MB);
        let mut maps = Vec::new();
        while let Ok(a) = s.mmap(
            &mem,
            Place::Hint(0),
            PAGE_4K,
            NewMap::private(maps.len() as u32 % 2),
        ) {
            maps.push(a);
        }
        assert_eq!(maps.len() as u64, 4 * MB / PAGE_4K);
        for &a in maps.iter().step_by(7) {
            s.munmap(&mem, a, PAGE_4K).unwrap();
        }
        let mut again = 0;
        while s.mmap(&mem, Place::Hint(0), PAGE_4K, rw()).is_ok() {
            again += 1;
        }
        assert_eq!(again, maps.iter().step_by(7).count());
    }

    #[test]
    fn munmap_zeroes_and_brk_keeps_a_page_from_mappings() {
        let (mem, mut s) = space(8 * MB);
        let a = s.mmap(&mem, Place::Hint(0), 4 * PAGE_4K, rw()).unwrap();
        s.write(&mem, a + 10, b"hello").unwrap();
        s.munmap(&mem, a, 4 * PAGE_4K).unwrap();
        let mut buf = [1u8; 5];
        assert_eq!(s.read(&mem, a + 10, &mut buf), Err(Errno::EFAULT));
        assert_eq!(s.mmap(&mem, Place::Fixed(a), 4 * PAGE_4K, rw()), Ok(a));
        s.read(&mem, a + 10, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
        let start = s.arena.brk;
        assert_eq!(s.brk(&mem, start + 100), start + 100);
        let m = s
            .mmap(&mem, Place::Fixed(start + 3 * PAGE_4K), PAGE_4K, rw())
            .unwrap();
        assert_eq!(
            s.brk(&mem, m - 1),
            start + 100,
            "a page stays free below a mapping"
        );
        assert_eq!(s.brk(&mem, m - PAGE_4K), m - PAGE_4K);
        assert_eq!(s.brk(&mem, start - 1), m - PAGE_4K);
    }

    #[test]
    fn fixed_over_brk_and_brk_shrinking_over_it() {
        let (mem, mut s) = space(8 * MB);
        let b = s.arena.brk;
        assert_eq!(s.brk(&mem, b + 4 * PAGE_4K), b + 4 * PAGE_4K);
        s.write(&mem, b, b"heap").unwrap();
        let g = b + PAGE_4K;
        assert_eq!(
            s.mmap(&mem, Place::Fixed(g), PAGE_4K, NewMap::private(0)),
            Ok(g)
        );
        assert_eq!(s.chunks(g, 1, Access::Read), Err(Errno::EFAULT));
        assert_eq!(
            s.mmap(&mem, Place::NoReplace(b), PAGE_4K, rw()),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            s.mmap(&mem, Place::NoReplace(b + 1), PAGE_4K, rw()),
            Err(Errno::EINVAL)
        );
        assert_eq!(s.brk(&mem, b + PAGE_4K), b + PAGE_4K);
        assert!(!s.is_mapped(g, 1));
        assert_eq!(s.brk(&mem, b + 4 * PAGE_4K), b + 4 * PAGE_4K);
        assert!(s.chunks(g, PAGE_4K, Access::Write).is_ok());
        let mut buf = [0u8; 4];
        s.read(&mem, b, &mut buf).unwrap();
        assert_eq!(&buf, b"heap");
        // Outside the memory mapped before start: page tables would have to change.
        assert_eq!(
            s.mmap(&mem, Place::Fixed(0x1000), PAGE_4K, rw()),
            Err(Errno::ENOMEM)
        );
    }

    #[test]
    fn mremap_stays_within_one_mapping() {
        let (mem, mut s) = space(8 * MB);
        let base = BASE + 4 * MB;
        assert_eq!(
            s.mmap(&mem, Place::Fixed(base), 4 * PAGE_4K, rw()),
            Ok(base)
        );
        s.write(&mem, base, b"abc").unwrap();
        s.mprotect(base + PAGE_4K, base + 2 * PAGE_4K, mman::PROT_READ, false)
            .unwrap();
        assert_eq!(s.map_count(), 3);
        assert_eq!(
            s.mremap(&mem, base, 4 * PAGE_4K, 8 * PAGE_4K, mv(true)),
            Err(Errno::EFAULT)
        );
        s.mprotect(base + PAGE_4K, base + 2 * PAGE_4K, RW, false)
            .unwrap();
        assert_eq!(s.map_count(), 1);
        let blocker = s
            .mmap(
                &mem,
                Place::Fixed(base + 4 * PAGE_4K),
                PAGE_4K,
                NewMap::private(0),
            )
            .unwrap();
        assert_eq!(
            s.mremap(&mem, base, 4 * PAGE_4K, 8 * PAGE_4K, mv(false)),
            Err(Errno::ENOMEM)
        );
        let moved = s
            .mremap(&mem, base, 4 * PAGE_4K, 8 * PAGE_4K, mv(true))
            .unwrap();
        assert_ne!(moved, base);
        let mut buf = [0u8; 3];
        s.read(&mem, moved, &mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        assert!(s.is_mapped(blocker, PAGE_4K));
        assert!(!s.is_mapped(base, 1));
        assert_eq!(
            s.mremap(&mem, 0x2000_0000, PAGE_4K, 2 * PAGE_4K, mv(true)),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            s.mremap(&mem, moved, 2 * PAGE_4K, 2 * PAGE_4K - 100, mv(false)),
            Ok(moved)
        );
    }

    #[test]
    fn protections_follow_the_mapping() {
        let (mem, mut s) = space(8 * MB);
        let a = s.mmap(&mem, Place::Hint(0), 4 * PAGE_4K, rw()).unwrap();
        s.mprotect(a + PAGE_4K, a + 3 * PAGE_4K, mman::PROT_READ, false)
            .unwrap();
        s.mprotect(a + 2 * PAGE_4K, a + 3 * PAGE_4K, 0, false)
            .unwrap();
        assert!(s.chunks(a, PAGE_4K, Access::Write).is_ok());
        assert_eq!(
            s.chunks(a + PAGE_4K - 1, 2, Access::Write),
            Err(Errno::EFAULT)
        );
        assert!(s.chunks(a + PAGE_4K, PAGE_4K, Access::Read).is_ok());
        assert_eq!(
            s.chunks(a + 3 * PAGE_4K - 1, 1, Access::Read),
            Err(Errno::EFAULT)
        );
        assert_eq!(s.accessible(a, 4 * PAGE_4K, Access::Read), 2 * PAGE_4K);
        assert!(s.chunks(a, 4 * PAGE_4K, Access::Mapped).is_ok());
        assert_eq!(s.chunks(a - PAGE_4K, 1, Access::Read), Err(Errno::EFAULT));
        // A hole: the part before it changes, then ENOMEM.
        s.munmap(&mem, a + 3 * PAGE_4K, PAGE_4K).unwrap();
        assert_eq!(
            s.mprotect(a, a + 5 * PAGE_4K, RW, false),
            Err(Errno::ENOMEM)
        );
        assert!(s.chunks(a, 3 * PAGE_4K, Access::Write).is_ok());
        assert_eq!(s.mprotect(a - PAGE_4K, a, RW, false), Err(Errno::ENOMEM));
        assert_eq!(s.mprotect(a, a + PAGE_4K, RW, true), Err(Errno::EINVAL));
    }

    #[test]
    fn splits_stop_at_the_map_count() {
        let size = 2 * MAX_MAP_COUNT as u64 * PAGE_4K + 8 * MB;
        let (mem, mut s) = space(size);
        let a = s.mmap(&mem, Place::Hint(0), size - 4 * MB, rw()).unwrap();
        let mut page = 1;
        let err = loop {
            let at = a + page * PAGE_4K;
            if let Err(e) = s.mprotect(at, at + PAGE_4K, mman::PROT_READ, false) {
                break e;
            }
            page += 2;
        };
        assert_eq!(err, Errno::ENOMEM);
        assert_eq!(s.map_count(), MAX_MAP_COUNT);
        let mid = a + (page + 3) * PAGE_4K;
        assert_eq!(s.munmap(&mem, mid, PAGE_4K), Err(Errno::ENOMEM));
        s.munmap(&mem, a, size - 4 * MB).unwrap();
        assert_eq!(s.map_count(), 0);
    }

    #[test]
    fn madvise_msync_mlock() {
        let (mem, mut s) = space(8 * MB);
        let a = s.mmap(&mem, Place::Hint(0), 4 * PAGE_4K, rw()).unwrap();
        s.write(&mem, a, b"x").unwrap();
        s.mlock(a, a + PAGE_4K, true).unwrap();
        assert_eq!(
            s.madvise(&mem, a, a + PAGE_4K, MADV_DONTNEED),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            s.msync(&mem, a, a + PAGE_4K, MS_INVALIDATE),
            Err(Errno::EBUSY)
        );
        s.mlockall(false, false);
        s.madvise(&mem, a, a + PAGE_4K, MADV_DONTNEED).unwrap();
        assert_eq!(s.read_val::<u8>(&mem, a), Ok(0));
        s.munmap(&mem, a + PAGE_4K, PAGE_4K).unwrap();
        assert_eq!(
            s.madvise(&mem, a, a + 4 * PAGE_4K, MADV_DONTNEED),
            Err(Errno::ENOMEM)
        );
        assert_eq!(s.msync(&mem, a, a + 4 * PAGE_4K, 0), Err(Errno::ENOMEM));
        assert_eq!(s.mapped_run(a, 4 * PAGE_4K), PAGE_4K);
        assert_eq!(s.mlock(a, a + 4 * PAGE_4K, true), Err(Errno::ENOMEM));
        s.mlockall(false, true);
        let b = s.mmap(&mem, Place::Hint(0), PAGE_4K, rw()).unwrap();
        assert_eq!(
            s.madvise(&mem, b, b + PAGE_4K, MADV_DONTNEED),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn mremap_near_the_top_never_overflows() {
        let (mem, mut s) = space(8 * MB);
        let top = u64::MAX - PAGE_4K + 1;
        assert_eq!(
            s.mremap(&mem, top, 2 * PAGE_4K, PAGE_4K, mv(false)),
            Err(Errno::EFAULT)
        );
        let fixed = Remap {
            may_move: true,
            fixed: Some(BASE),
            keep_old: false,
        };
        assert!(s.mremap(&mem, top, 2 * PAGE_4K, PAGE_4K, fixed).is_err());
        assert!(s
            .mremap(&mem, top, u64::MAX - 2 * PAGE_4K, PAGE_4K, fixed)
            .is_err());
    }

    #[test]
    fn faults_bind_frames_only_where_the_mapping_allows() {
        let (mem, mut s) = space(16 * MB);
        let none = s
            .mmap(&mem, Place::Hint(0), 4 * MB, NewMap::private(0))
            .unwrap();
        let a = s.mmap(&mem, Place::Hint(0), 4 * MB, rw()).unwrap();
        let ro = s
            .mmap(
                &mem,
                Place::Hint(0),
                4 * MB,
                NewMap::private(mman::PROT_READ),
            )
            .unwrap();
        assert_eq!(s.backed_bytes(), 0, "nothing bound before a touch");
        assert!(!s.fault(none, Access::Read, false, 8 << 20).unwrap());
        assert!(!s.fault(ro, Access::Write, false, 8 << 20).unwrap());
        assert!(
            !s.fault(a, Access::Read, true, 8 << 20).unwrap(),
            "no PROT_EXEC"
        );
        assert!(!s
            .fault(BASE - PAGE_4K, Access::Read, false, 8 << 20)
            .unwrap());
        assert!(s.fault(a + 5, Access::Write, false, 8 << 20).unwrap());
        assert_eq!(s.backed_bytes(), 2 * MB);
        assert_eq!(s.resident(a, 2), vec![1, 1]);
        assert_eq!(s.resident(none, 1), vec![0]);
        // A page whose fault the tables never cure ends as the application's fault.
        let mut n = 0;
        while s.fault(a, Access::Write, false, 8 << 20).unwrap() {
            n += 1;
        }
        assert_eq!(n, REFAULT_LIMIT);
        // More than all the memory there is: ENOMEM; reserving it is free.
        assert_eq!(
            s.mmap(&mem, Place::Hint(0), 32 * MB, rw()),
            Err(Errno::ENOMEM)
        );
        s.munmap(&mem, a, 4 * MB).unwrap();
        assert_eq!(s.backed_bytes(), 0, "munmap gives the frames back");
    }

    fn memfd(bytes: u64) -> Arc<MappedFile> {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, bytes).unwrap();
        Arc::new(MappedFile {
            fd,
            kind: OverlayKind::Shared,
            may_write: true,
            anonymous: true,
            name: b"t".to_vec(),
            anchor: None,
            tmpfs: None,
        })
    }

    #[test]
    fn the_low_range_is_lazy_memory_around_the_images() {
        // An ET_EXEC image at 0x40_0000 (text, then writable data), the arena far above it
        // and 16 MiB of frames from 2 MiB, as a run lays them out.
        let ram = 16 * MB;
        let mem = GuestMem::new(2 * MB + ram).unwrap();
        let text = Region {
            start: 0x40_0000,
            end: 0x40_2000,
            pa: 0,
            write: false,
            exec: true,
        };
        let data = Region {
            start: 0x40_2000,
            end: 0x40_3000,
            pa: 2 * PAGE_4K,
            write: true,
            exec: false,
        };
        let top = umon_abi::layout::MMAP_BASE;
        let mut s = AddrSpace::lazy(vec![text, data], Arena::new(top, ARENA_TOP, 2 * MB), ram);
        let low = 0x100_0000;
        // MAP_FIXED there, with the arena's demand paging.
        assert_eq!(s.mmap(&mem, Place::Fixed(low), 4 * MB, rw()), Ok(low));
        assert_eq!(s.backed_bytes(), 0);
        assert!(s.fault(low + 5, Access::Write, false, 8 << 20).unwrap());
        assert_eq!(s.backed_bytes(), 2 * MB);
        s.write(&mem, low + 2 * MB + 7, b"x").unwrap();
        let mut b = [0u8; 1];
        s.read(&mem, low + 2 * MB + 7, &mut b).unwrap();
        assert_eq!(&b, b"x");
        assert_eq!(
            s.mmap(&mem, Place::NoReplace(low + PAGE_4K), PAGE_4K, rw()),
            Err(Errno::EEXIST)
        );
        // Never the core below it, nor the image's read-only pages.
        for (at, len) in [
            (0x20_0000, PAGE_4K),
            (0x3f_f000, 2 * PAGE_4K),
            (0x40_0000, PAGE_4K),
        ] {
            assert_eq!(
                s.mmap(&mem, Place::Fixed(at), len, rw()),
                Err(Errno::ENOMEM),
                "{at:#x}"
            );
        }
        // Over the image's data and past it: the region keeps its own backing, the rest
        // gets frames, never one over the region's page.
        assert_eq!(
            s.mmap(&mem, Place::Fixed(0x40_2000), 3 * PAGE_4K, rw()),
            Ok(0x40_2000)
        );
        let before = s.backed_bytes();
        assert!(s.fault(0x40_3005, Access::Write, false, 8 << 20).unwrap());
        assert!(s.backed_bytes() - before <= 2 * PAGE_4K);
        assert_eq!(s.resident(0x40_2000, 3), vec![1, 1, 1]);
        assert_eq!(s.backing().lookup(0x40_2000), None);
        // A file mapping there too, but not over a region.
        let f = memfd(2 * PAGE_4K);
        let ro = NewMap::private(mman::PROT_READ);
        assert_eq!(
            s.mmap_file(
                &mem,
                Place::Fixed(0x200_0000),
                2 * PAGE_4K,
                ro,
                f.clone(),
                0
            ),
            Ok(0x200_0000)
        );
        assert_eq!(
            s.mmap_file(&mem, Place::Fixed(0x40_2000), PAGE_4K, ro, f, 0),
            Err(Errno::ENOMEM)
        );
        // The top-down allocator stays in the arena.
        let a = s.mmap(&mem, Place::Hint(0), PAGE_4K, rw()).unwrap();
        assert!(a >= top, "{a:#x}");
        // munmap gives the frames back, and the pages are gone.
        let before = s.backed_bytes();
        s.munmap(&mem, low, 4 * MB).unwrap();
        assert_eq!(before - s.backed_bytes(), 4 * MB);
        assert!(!s.fault(low, Access::Read, false, 8 << 20).unwrap());
    }

    #[test]
    fn file_mappings_are_the_file_through_moves_and_advice() {
        let (mem, mut s) = space(8 * MB);
        let f = memfd(4 * PAGE_4K);
        let shared = NewMap {
            shared: true,
            ..rw()
        };
        let a = s
            .mmap_file(
                &mem,
                Place::Hint(0),
                2 * PAGE_4K,
                shared,
                f.clone(),
                PAGE_4K,
            )
            .unwrap();
        s.write(&mem, a + 8, b"abc").unwrap();
        let mut b = [0u8; 3];
        rustix::io::pread(&f.fd, &mut b, PAGE_4K + 8).unwrap();
        assert_eq!(&b, b"abc");
        // A second mapping of the same page sees it.
        let a2 = s
            .mmap_file(&mem, Place::Hint(0), PAGE_4K, shared, f.clone(), PAGE_4K)
            .unwrap();
        let mut c = [0u8; 3];
        s.read(&mem, a2 + 8, &mut c).unwrap();
        assert_eq!(&c, b"abc");
        assert!(s.shared_futex_word(a2 + 8).is_some());
        // DONTNEED keeps a file's pages; moving keeps the view (grown: the memfd grows).
        s.madvise(&mem, a, a + PAGE_4K, MADV_DONTNEED).unwrap();
        s.read(&mem, a + 8, &mut c).unwrap();
        assert_eq!(&c, b"abc");
        let moved = s
            .mremap(&mem, a, 2 * PAGE_4K, 8 * PAGE_4K, mv(true))
            .unwrap();
        s.read(&mem, moved + 8, &mut c).unwrap();
        assert_eq!(&c, b"abc");
        assert!(!s.is_mapped(a, PAGE_4K));
        // Unmapping the last mappings forgets the file.
        s.munmap(&mem, moved, 8 * PAGE_4K).unwrap();
        s.munmap(&mem, a2, PAGE_4K).unwrap();
        assert!(s.files.is_empty());
        // The frames went back with zeros in them.
        let p = s.mmap(&mem, Place::Hint(0), 8 * PAGE_4K, rw()).unwrap();
        s.read(&mem, p + 8, &mut c).unwrap();
        assert_eq!(c, [0; 3]);
    }

    #[test]
    fn chunks_respect_permissions_and_holes() {
        let s = AddrSpace::new(
            vec![
                Region {
                    start: 0x1000,
                    end: 0x3000,
                    pa: 0x10000,
                    write: false,
                    exec: true,
                },
                Region {
                    start: 0x3000,
                    end: 0x4000,
                    pa: 0x20000,
                    write: true,
                    exec: false,
                },
            ],
            Arena::default(),
        );
        assert_eq!(
            s.chunks(0x2ff0, 0x20, Access::Read).unwrap(),
            vec![(Gpa(0x11ff0), 0x10), (Gpa(0x20000), 0x10)]
        );
        assert_eq!(s.chunks(0x2ff0, 0x20, Access::Write), Err(Errno::EFAULT));
        assert_eq!(s.chunks(0x3ff0, 0x20, Access::Read), Err(Errno::EFAULT));
        assert_eq!(s.chunks(u64::MAX, 2, Access::Read), Err(Errno::EFAULT));
        assert_eq!(s.chunks(0, 0, Access::Read), Ok(vec![]));
    }
}
