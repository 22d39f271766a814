//! The application's address space as the monitor sees it: which guest virtual ranges are
//! mapped to which physical memory with which permissions, and the arena that serves brk and
//! mmap. The page tables are written once, before the first instruction, from the same regions
//! (PVM's shadow paging does not see later host edits), so the arena is mapped in full up front
//! and brk/mmap/munmap/mprotect are bookkeeping plus zeroing here. Every access the monitor
//! makes for the application obeys that bookkeeping as Linux's uaccess obeys the page tables:
//! arena memory brk or mmap never handed out is unmapped, and each 4 KiB page's recorded
//! PROT_* decides whether it may be read (any of R/W/X, as on x86-64) or written.
use crate::linux::abi::{mman, TASK_SIZE_MAX};
use crate::linux::io::mem_errno;
use crate::machine::memory::GuestMem;
pub use crate::machine::paging::Region;
use crate::machine::paging::PAGE_4K;
use std::collections::BTreeMap;
use syscalls::Errno;
use umon_abi::Gpa;

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

/// Linux's default vm.max_map_count: the most mappings a process may have (mmap, mprotect,
/// mremap and a munmap that would split one past it fail with ENOMEM), so a hostile application
/// cannot make the monitor's bookkeeping grow without bound.
pub const MAX_MAP_COUNT: usize = 65530;

/// Most protection ranges the address space keeps (see [`MAX_MAP_COUNT`]).
pub const MAX_PROT_RANGES: usize = MAX_MAP_COUNT;

/// The application's mapped memory and its heap arena.
#[derive(Debug, Default)]
pub struct AddrSpace {
    /// Sorted, non-overlapping.
    regions: Vec<Region>,
    /// brk and anonymous mmap.
    pub arena: Arena,
    /// Protections set by mmap and mprotect that differ from their region's, page-aligned:
    /// start -> (end, PROT_* bits). Sorted, non-overlapping, adjacent equal ranges merged. The
    /// page tables keep the region's permissions (PVM's shadow MMU does not see later edits);
    /// this is what every checked access of the monitor obeys.
    prot: BTreeMap<u64, (u64, u32)>,
}

impl AddrSpace {
    /// An address space of `regions` (any order) with `arena`, which must be one of them.
    pub fn new(mut regions: Vec<Region>, arena: Arena) -> AddrSpace {
        regions.sort_by_key(|r| r.start);
        AddrSpace {
            regions,
            arena,
            prot: BTreeMap::new(),
        }
    }

    /// Arena bytes neither the break nor a mapping holds: the guest's free memory (sysinfo).
    pub fn free_bytes(&self) -> u64 {
        let a = &self.arena;
        let mapped: u64 = a.maps.iter().map(|(s, e)| e - s).sum();
        (a.end - a.start).saturating_sub(a.brk - a.start + mapped)
    }

    /// The regions, sorted.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    fn region_at(&self, va: u64) -> Option<&Region> {
        let i = self.regions.partition_point(|r| r.end <= va);
        self.regions.get(i).filter(|r| r.start <= va)
    }

    /// The physical pieces of `[va, va + len)`; EFAULT if any byte is unmapped or its page's
    /// protection does not allow `access`. Arena memory counts as mapped only where brk or a
    /// mapping handed it out.
    pub fn chunks(&self, va: u64, len: u64, access: Access) -> Result<Vec<(Gpa, u64)>, Errno> {
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        // Linux's access_ok: even an empty range must lie in the user half.
        if end > TASK_SIZE_MAX {
            return Err(Errno::EFAULT);
        }
        let mut out: Vec<(Gpa, u64)> = Vec::new();
        let mut at = va;
        while at < end {
            let (r, piece_end) = self.mapped_at(at).ok_or(Errno::EFAULT)?;
            let piece_end = piece_end.min(end);
            if !self.prot_allows(r, at, piece_end, access) {
                return Err(Errno::EFAULT);
            }
            let gpa = r.pa + (at - r.start);
            let n = piece_end - at;
            match out.last_mut() {
                Some(last) if last.0 .0 + last.1 == gpa => last.1 += n,
                _ => out.push((Gpa(gpa), n)),
            }
            at = piece_end;
        }
        Ok(out)
    }

    /// How many bytes from `va` (at most `len`) allow `access`: where a copy of the whole range
    /// would stop at the first fault.
    pub fn accessible(&self, va: u64, len: u64, access: Access) -> u64 {
        let end = va.saturating_add(len).min(TASK_SIZE_MAX);
        let mut at = va;
        while at < end {
            let Some((r, piece_end)) = self.mapped_at(at) else {
                break;
            };
            let piece_end = piece_end.min(end);
            if self.prot_allows(r, at, piece_end, access) {
                at = piece_end;
                continue;
            }
            // Page by page: protections change at page boundaries.
            let mut page = at;
            while page < piece_end {
                let next = (page / PAGE_4K + 1).saturating_mul(PAGE_4K).min(piece_end);
                if !self.prot_allows(r, page, next, access) {
                    return page - va;
                }
                page = next;
            }
            at = piece_end;
        }
        at - va
    }

    /// The region holding `va` and the end of the mapped stretch from `va` within it.
    fn mapped_at(&self, va: u64) -> Option<(&Region, u64)> {
        let r = self.region_at(va)?;
        let a = &self.arena;
        if va >= a.start && va < a.end {
            let e = a.handed_out_until(va)?;
            return Some((r, e.min(r.end)));
        }
        Some((r, r.end))
    }

    /// Whether every page of `[start, end)` (inside `r`) allows `access`.
    fn prot_allows(&self, r: &Region, start: u64, end: u64, access: Access) -> bool {
        if access == Access::Mapped {
            return true;
        }
        let default = access.allowed_by(region_prot(r));
        let mut at = start;
        for (s, e, p) in self.prot_ranges(start, end) {
            if (at < s && !default) || !access.allowed_by(p) {
                return false;
            }
            at = e.min(end);
        }
        at >= end || default
    }

    /// The recorded protection ranges meeting `[start, end)`, ascending.
    fn prot_ranges(&self, start: u64, end: u64) -> Vec<(u64, u64, u32)> {
        let mut v: Vec<(u64, u64, u32)> = self
            .prot
            .range(..end)
            .rev()
            .take_while(|(_, &(e, _))| e > start)
            .map(|(&s, &(e, p))| (s, e, p))
            .collect();
        v.reverse();
        v
    }

    /// Forget recorded protections in `[start, end)`: the pages get their region's again.
    fn clear_prot(&mut self, start: u64, end: u64) {
        for (s, e, p) in self.prot_ranges(start, end) {
            self.prot.remove(&s);
            if s < start {
                self.prot.insert(s, (start, p));
            }
            if e > end {
                self.prot.insert(end, (e, p));
            }
        }
    }

    /// Record `prot` for the page-aligned `[start, end)`, which must be mapped. ENOMEM when the
    /// bookkeeping would pass [`MAX_PROT_RANGES`].
    fn set_prot(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        if start >= end {
            return Ok(());
        }
        if self.prot.len() + 2 > MAX_PROT_RANGES {
            return Err(Errno::ENOMEM);
        }
        self.clear_prot(start, end);
        let (mut s, mut e) = (start, end);
        if let Some((&ps, &(pe, pp))) = self.prot.range(..s).next_back() {
            if pe == s && pp == prot {
                self.prot.remove(&ps);
                s = ps;
            }
        }
        if let Some(&(ne, np)) = self.prot.get(&e) {
            if np == prot {
                self.prot.remove(&e);
                e = ne;
            }
        }
        self.prot.insert(s, (e, prot));
        Ok(())
    }

    /// mprotect(2) after its argument checks: ENOMEM unless all of `[start, end)` is mapped.
    pub fn mprotect(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        if end > TASK_SIZE_MAX || !self.is_mapped(start, end - start) {
            return Err(Errno::ENOMEM);
        }
        self.set_prot(start, end, prot)
    }

    /// The mapped stretches of `[start, end)` (madvise works on those and reports the rest).
    pub fn mapped_pieces(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            match self.mapped_at(at) {
                Some((_, e)) => {
                    out.push((at, e.min(end)));
                    at = e.min(end);
                }
                None => {
                    // Skip to the next region or arena piece.
                    let next_region = self
                        .regions
                        .iter()
                        .map(|r| r.start)
                        .find(|&s| s > at)
                        .unwrap_or(end);
                    let next = if at >= self.arena.start && at < self.arena.end {
                        self.arena.next_handed_out(at).unwrap_or(self.arena.end)
                    } else {
                        next_region
                    };
                    at = next.max(at + 1).min(end);
                }
            }
        }
        out
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

    /// Zero the arena's `[va, va + len)` (pages given back or handed out afresh) and forget
    /// its recorded protections.
    fn discard(&mut self, mem: &GuestMem, va: u64, len: u64) -> Result<(), Errno> {
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        if va < self.arena.start || end > self.arena.end {
            return Err(Errno::EFAULT);
        }
        self.clear_prot(va, end);
        mem.discard(self.arena.pa_of(va), len).map_err(mem_errno)
    }

    /// Whether every byte of `[va, va + len)` is mapped (any permission).
    pub fn is_mapped(&self, va: u64, len: u64) -> bool {
        self.chunks(va, len, Access::Mapped).is_ok()
    }

    /// Whether `[start, end)` is inside the arena and not in use by brk or a mapping.
    pub fn arena_is_free(&self, start: u64, end: u64) -> bool {
        self.arena.is_free(start, end)
    }

    /// MADV_DONTNEED on the mapped `[va, end)`: the arena part reads as zeros afterwards,
    /// still mapped with its protection.
    pub fn munmap_contents(&mut self, mem: &GuestMem, va: u64, end: u64) -> Result<(), Errno> {
        let (lo, hi) = (va.max(self.arena.start), end.min(self.arena.end));
        if lo < hi {
            mem.discard(self.arena.pa_of(lo), hi - lo)
                .map_err(mem_errno)?;
        }
        Ok(())
    }

    /// brk(2): returns the new break, or the old one when the request cannot be met.
    pub fn brk(&mut self, mem: &GuestMem, want: u64) -> u64 {
        let a = &self.arena;
        let old = a.brk;
        if want < a.brk_start || want > a.brk_limit() {
            return old;
        }
        let (old_top, new_top) = (page_up(old), page_up(want));
        if new_top < old_top && self.discard(mem, new_top, old_top - new_top).is_err() {
            return old;
        }
        if new_top > old_top {
            self.clear_prot(old_top, new_top);
        }
        self.arena.brk = want;
        want
    }

    /// Anonymous mmap(2) of `len` bytes with protection `prot`; `addr` is a hint unless
    /// `fixed`.
    pub fn mmap(
        &mut self,
        mem: &GuestMem,
        addr: u64,
        len: u64,
        prot: u32,
        fixed: bool,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = len.checked_next_multiple_of(PAGE_4K).ok_or(Errno::ENOMEM)?;
        // The arena region's own protection is read-write.
        let special = prot != mman::PROT_READ | mman::PROT_WRITE;
        if special && self.prot.len() + 2 > MAX_PROT_RANGES {
            return Err(Errno::ENOMEM);
        }
        let at = if fixed {
            if addr % PAGE_4K != 0 {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if addr < page_up(self.arena.brk) || end > self.arena.end {
                return Err(Errno::ENOMEM);
            }
            if !self.arena.room_for(addr, end) {
                return Err(Errno::ENOMEM);
            }
            self.arena.remove(addr, end);
            self.discard(mem, addr, len)?;
            addr
        } else {
            let at = self.arena.find(addr, len).ok_or(Errno::ENOMEM)?;
            if !self.arena.room_for(at, at + len) {
                return Err(Errno::ENOMEM);
            }
            at
        };
        self.arena.insert(at, at + len);
        self.clear_prot(at, at + len);
        if special {
            self.set_prot(at, at + len, prot)?;
        }
        Ok(at)
    }

    /// munmap(2).
    pub fn munmap(&mut self, mem: &GuestMem, addr: u64, len: u64) -> Result<(), Errno> {
        if addr % PAGE_4K != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(len.checked_next_multiple_of(PAGE_4K).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        if end > TASK_SIZE_MAX {
            return Err(Errno::EINVAL);
        }
        let (lo, hi) = (addr.max(page_up(self.arena.brk)), end.min(self.arena.end));
        if lo < hi {
            if self.arena.splits(lo, hi) && self.arena.maps.len() >= MAX_MAP_COUNT {
                return Err(Errno::ENOMEM);
            }
            self.arena.remove(lo, hi);
            self.discard(mem, lo, hi - lo)?;
        }
        Ok(())
    }

    /// The protection ranges of `[start, end)` relative to `start` (what a move carries).
    fn prot_of(&self, start: u64, end: u64) -> Vec<(u64, u64, u32)> {
        self.prot_ranges(start, end)
            .into_iter()
            .map(|(s, e, p)| (s.max(start) - start, e.min(end) - start, p))
            .collect()
    }

    /// Move the arena mapping `[old, old + len)` to the free `[new, new + new_len)`: contents,
    /// protections (the grown tail gets the last page's), and the old range unmapped.
    fn move_mapping(
        &mut self,
        mem: &GuestMem,
        old: u64,
        len: u64,
        new: u64,
        new_len: u64,
    ) -> Result<(), Errno> {
        let prots = self.prot_of(old, old + len);
        let last = self
            .prot_ranges(old + len - PAGE_4K, old + len)
            .first()
            .map(|r| r.2);
        let (src, dst) = (self.arena.pa_of(old), self.arena.pa_of(new));
        mem.copy(src, dst, len.min(new_len)).map_err(mem_errno)?;
        self.munmap(mem, old, len)?;
        self.clear_prot(new, new + new_len);
        for (s, e, p) in prots {
            if s < new_len {
                self.set_prot(new + s, new + e.min(new_len), p)?;
            }
        }
        if let Some(p) = last.filter(|_| new_len > len) {
            self.set_prot(new + len, new + new_len, p)?;
        }
        Ok(())
    }

    /// mremap(2) of an arena mapping (the flags' combinations checked by the caller).
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
        let old_len = old_len
            .checked_next_multiple_of(PAGE_4K)
            .ok_or(Errno::EINVAL)?;
        let new_len = new_len
            .checked_next_multiple_of(PAGE_4K)
            .ok_or(Errno::EINVAL)?;
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if how.fixed.is_some() || how.keep_old {
            return self.mremap_to(mem, old, old_len, new_len, how);
        }
        // old_len 0 duplicates a shared mapping on Linux; every arena mapping is private.
        if old_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        if !self.arena.covered(old, old_end) {
            return Err(Errno::EFAULT);
        }
        if new_len <= old_len {
            // The same page-rounded size changes nothing (munmap of 0 bytes would be EINVAL).
            if new_len < old_len {
                self.munmap(mem, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if grow_end <= self.arena.end && self.arena.is_free(old_end, grow_end) {
            let last = self
                .prot_ranges(old_end - PAGE_4K, old_end)
                .first()
                .map(|r| r.2);
            self.arena.insert(old_end, grow_end);
            if let Some(p) = last {
                self.set_prot(old_end, grow_end, p)?;
            }
            return Ok(old);
        }
        if !how.may_move {
            return Err(Errno::ENOMEM);
        }
        let new = self.arena.find(0, new_len).ok_or(Errno::ENOMEM)?;
        if !self.arena.room_for(new, new + new_len) {
            return Err(Errno::ENOMEM);
        }
        self.arena.insert(new, new + new_len);
        self.move_mapping(mem, old, old_len, new, new_len)?;
        Ok(new)
    }

    /// A move to MREMAP_FIXED's address (whatever is there is unmapped first) or, for
    /// MREMAP_DONTUNMAP alone, to a free one; with MREMAP_DONTUNMAP the old range stays mapped
    /// with its protections, empty (zeros), as Linux leaves an anonymous one.
    fn mremap_to(
        &mut self,
        mem: &GuestMem,
        old: u64,
        old_len: u64,
        new_len: u64,
        how: Remap,
    ) -> Result<u64, Errno> {
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        if let Some(new) = how.fixed {
            if new % PAGE_4K != 0 || new_len > TASK_SIZE_MAX || new > TASK_SIZE_MAX - new_len {
                return Err(Errno::EINVAL);
            }
            if new < old_end && old < new + new_len {
                return Err(Errno::EINVAL);
            }
        }
        if old_len == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.arena.covered(old, old_end) {
            return Err(Errno::EFAULT);
        }
        let new = match how.fixed {
            Some(new) => {
                if new < page_up(self.arena.brk) || new + new_len > self.arena.end {
                    return Err(Errno::ENOMEM);
                }
                self.munmap(mem, new, new_len)?;
                new
            }
            None => self.arena.find(0, new_len).ok_or(Errno::ENOMEM)?,
        };
        if !self.arena.room_for(new, new + new_len) {
            return Err(Errno::ENOMEM);
        }
        let kept = self.prot_ranges(old, old_end);
        self.arena.insert(new, new + new_len);
        self.move_mapping(mem, old, old_len, new, new_len)?;
        if how.keep_old {
            self.arena.insert(old, old_end);
            for (s, e, p) in kept {
                self.set_prot(s.max(old), e.min(old_end), p)?;
            }
        }
        Ok(new)
    }
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

/// The linear heap area: brk grows up from its start, mmap allocates top-down from its end.
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
    /// Live mmap ranges, start -> end, page-aligned, above the break.
    maps: BTreeMap<u64, u64>,
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
            maps: BTreeMap::new(),
        }
    }

    fn pa_of(&self, va: u64) -> Gpa {
        Gpa(self.pa + (va - self.start))
    }

    /// The break may grow up to the lowest mapping.
    fn brk_limit(&self) -> u64 {
        self.maps.keys().next().copied().unwrap_or(self.end)
    }

    /// Where the handed-out stretch holding `va` (brk or a mapping) ends, if `va` is in one.
    fn handed_out_until(&self, va: u64) -> Option<u64> {
        if va >= self.brk_start && va < page_up(self.brk) {
            return Some(page_up(self.brk));
        }
        match self.maps.range(..=va).next_back() {
            Some((_, &e)) if e > va => Some(e),
            _ => None,
        }
    }

    /// The start of the first mapping above `va`.
    fn next_handed_out(&self, va: u64) -> Option<u64> {
        self.maps.range(va + 1..).next().map(|(&s, _)| s)
    }

    fn is_free(&self, start: u64, end: u64) -> bool {
        if start < page_up(self.brk) || end > self.end {
            return false;
        }
        match self.maps.range(..end).next_back() {
            Some((_, &e)) => e <= start,
            None => true,
        }
    }

    fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.maps.range(..=at).next_back() {
                Some((_, &e)) if e > at => at = e,
                _ => return false,
            }
        }
        true
    }

    /// Free space for `len` bytes: the hint if it is free, else the highest gap.
    fn find(&self, hint: u64, len: u64) -> Option<u64> {
        if hint != 0 && hint % PAGE_4K == 0 {
            if let Some(end) = hint.checked_add(len) {
                if self.is_free(hint, end) {
                    return Some(hint);
                }
            }
        }
        let floor = page_up(self.brk);
        let mut top = self.end;
        for (&s, &e) in self.maps.iter().rev() {
            if top >= e && top - e >= len {
                return Some(top - len);
            }
            top = s;
        }
        (top >= floor && top - floor >= len).then(|| top - len)
    }

    /// Add `[start, end)` (free) to the mapping set, merged with the mappings it touches: all
    /// arena mappings are alike (anonymous, private; protections are kept apart), so adjacent
    /// ones are one, and the set stays as small as the address space's holes allow.
    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.maps.range(..=start).next_back() {
            if e >= start {
                self.maps.remove(&s);
                start = s;
                end = end.max(e);
            }
        }
        while let Some((&s, &e)) = self.maps.range(start..=end).next() {
            self.maps.remove(&s);
            end = end.max(e);
        }
        self.maps.insert(start, end);
    }

    /// Whether mapping `[start, end)` keeps the count within [`MAX_MAP_COUNT`]: it adds an
    /// entry only when it touches no mapping.
    fn room_for(&self, start: u64, end: u64) -> bool {
        let touches = matches!(self.maps.range(..=end).next_back(), Some((_, &e)) if e >= start);
        touches || self.maps.len() < MAX_MAP_COUNT
    }

    /// Whether removing `[start, end)` splits one mapping in two.
    fn splits(&self, start: u64, end: u64) -> bool {
        matches!(self.maps.range(..start).next_back(), Some((_, &e)) if e > end)
    }

    /// Drop `[start, end)` from the mapping set, splitting ranges that straddle it.
    fn remove(&mut self, start: u64, end: u64) {
        let hit: Vec<(u64, u64)> = self
            .maps
            .range(..end)
            .rev()
            .take_while(|(_, &e)| e > start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in hit {
            self.maps.remove(&s);
            if s < start {
                self.maps.insert(s, start);
            }
            if e > end {
                self.maps.insert(end, e);
            }
        }
    }
}

fn page_up(v: u64) -> u64 {
    v.next_multiple_of(PAGE_4K)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;
    const RW: u32 = mman::PROT_READ | mman::PROT_WRITE;

    fn mv(may_move: bool) -> Remap {
        Remap {
            may_move,
            ..Remap::default()
        }
    }

    fn space(mem: &GuestMem) -> AddrSpace {
        let _ = mem;
        let arena = Arena::new(0x1000_0000, 0x1000_0000 + 8 * MB, 0);
        AddrSpace::new(
            vec![Region {
                start: 0x1000_0000,
                end: 0x1000_0000 + 8 * MB,
                pa: 0,
                write: true,
                exec: false,
            }],
            arena,
        )
    }

    #[test]
    fn mmap_is_top_down_and_reuses_holes() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let a = s.mmap(&mem, 0, 3 * PAGE_4K, RW, false).unwrap();
        assert_eq!(a, 0x1000_0000 + 8 * MB - 3 * PAGE_4K);
        let b = s.mmap(&mem, 0, PAGE_4K, RW, false).unwrap();
        assert_eq!(b, a - PAGE_4K);
        s.munmap(&mem, a, 3 * PAGE_4K).unwrap();
        assert_eq!(
            s.mmap(&mem, 0, 2 * PAGE_4K, RW, false).unwrap(),
            a + PAGE_4K
        );
        assert_eq!(s.mmap(&mem, 0, 16 * MB, RW, false), Err(Errno::ENOMEM));
    }

    #[test]
    fn munmap_zeroes_and_brk_stops_at_mappings() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let a = s.mmap(&mem, 0, 4 * PAGE_4K, RW, false).unwrap();
        s.write(&mem, a + 10, b"hello").unwrap();
        s.munmap(&mem, a, 4 * PAGE_4K).unwrap();
        let mut buf = [1u8; 5];
        assert_eq!(s.read(&mem, a + 10, &mut buf), Err(Errno::EFAULT));
        assert_eq!(s.mmap(&mem, a, 4 * PAGE_4K, RW, true), Ok(a));
        s.read(&mem, a + 10, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
        let start = s.arena.brk;
        assert_eq!(s.brk(&mem, start + 100), start + 100);
        let m = s.mmap(&mem, 0, PAGE_4K, RW, false).unwrap();
        assert_eq!(
            s.brk(&mem, m + 1),
            start + 100,
            "brk may not pass a mapping"
        );
        assert_eq!(s.brk(&mem, start - 1), start + 100);
    }

    #[test]
    fn fixed_and_mremap() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let base = 0x1000_0000 + 4 * MB;
        assert_eq!(s.mmap(&mem, base, 2 * PAGE_4K, RW, true), Ok(base));
        assert_eq!(
            s.mmap(&mem, base + 1, PAGE_4K, RW, true),
            Err(Errno::EINVAL)
        );
        assert_eq!(s.mmap(&mem, 0x1000, PAGE_4K, RW, true), Err(Errno::ENOMEM));
        s.write(&mem, base, b"abc").unwrap();
        assert_eq!(
            s.mremap(&mem, base, 2 * PAGE_4K, 4 * PAGE_4K, mv(false)),
            Ok(base)
        );
        let blocker = s.mmap(&mem, base + 4 * PAGE_4K, PAGE_4K, RW, true).unwrap();
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
        assert!(s.arena.covered(blocker, blocker + PAGE_4K));
        assert_eq!(
            s.mremap(&mem, 0x2000_0000, PAGE_4K, PAGE_4K, mv(true)),
            Err(Errno::EFAULT)
        );
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

    #[test]
    fn protections_are_per_page_and_follow_the_mapping() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let a = s.mmap(&mem, 0, 4 * PAGE_4K, RW, false).unwrap();
        s.mprotect(a + PAGE_4K, a + 3 * PAGE_4K, mman::PROT_READ)
            .unwrap();
        s.mprotect(a + 2 * PAGE_4K, a + 3 * PAGE_4K, 0).unwrap();
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
        assert!(s.chunks(a + 3 * PAGE_4K, PAGE_4K, Access::Write).is_ok());
        assert!(s.chunks(a, 4 * PAGE_4K, Access::Mapped).is_ok());
        // Memory the arena never handed out is not mapped.
        assert_eq!(s.chunks(a - PAGE_4K, 1, Access::Read), Err(Errno::EFAULT));
        // A move carries the protections; the grown tail gets the last page's.
        let moved = s
            .mremap(
                &mem,
                a,
                4 * PAGE_4K,
                6 * PAGE_4K,
                Remap {
                    may_move: true,
                    fixed: Some(0x1000_0000 + 2 * MB),
                    keep_old: false,
                },
            )
            .unwrap();
        assert_eq!(moved, 0x1000_0000 + 2 * MB);
        assert_eq!(s.chunks(a, 1, Access::Read), Err(Errno::EFAULT));
        assert_eq!(
            s.chunks(moved + 2 * PAGE_4K, 1, Access::Read),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            s.chunks(moved + PAGE_4K, 1, Access::Write),
            Err(Errno::EFAULT)
        );
        assert!(s.chunks(moved + 5 * PAGE_4K, 1, Access::Write).is_ok());
        // Unmapping forgets them: a new mapping there is read-write again.
        s.munmap(&mem, moved, 6 * PAGE_4K).unwrap();
        assert!(s.prot.is_empty());
        let n = s
            .mmap(&mem, moved, 6 * PAGE_4K, mman::PROT_READ, true)
            .unwrap();
        assert_eq!(s.chunks(n, 1, Access::Write), Err(Errno::EFAULT));
        s.mprotect(n, n + 6 * PAGE_4K, RW).unwrap();
        assert!(s.chunks(n, 6 * PAGE_4K, Access::Write).is_ok());
        assert_eq!(s.mprotect(n, n + 7 * PAGE_4K, RW), Err(Errno::ENOMEM));
    }

    #[test]
    fn adjacent_mappings_merge_and_their_count_is_capped() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        for _ in 0..100 {
            s.mmap(&mem, 0, PAGE_4K, RW, false).unwrap();
        }
        assert_eq!(s.arena.maps.len(), 1, "top-down neighbours are one mapping");
        // The cap, reached with an arena big enough for MAX_MAP_COUNT separate mappings.
        let big = 2 * MAX_MAP_COUNT as u64 * PAGE_4K + 8 * MB;
        let mem = GuestMem::new(big).unwrap();
        let mut s = AddrSpace::new(
            vec![Region {
                start: 0x1000_0000,
                end: 0x1000_0000 + big,
                pa: 0,
                write: true,
                exec: false,
            }],
            Arena::new(0x1000_0000, 0x1000_0000 + big, 0),
        );
        let top = 0x1000_0000 + big;
        for i in 0..MAX_MAP_COUNT as u64 {
            let at = top - (2 * i + 1) * PAGE_4K;
            assert_eq!(s.mmap(&mem, at, PAGE_4K, RW, true), Ok(at));
        }
        assert_eq!(s.arena.maps.len(), MAX_MAP_COUNT);
        let next = top - (2 * MAX_MAP_COUNT as u64 + 1) * PAGE_4K;
        assert_eq!(s.mmap(&mem, next, PAGE_4K, RW, true), Err(Errno::ENOMEM));
        // One that touches mappings merges with them: allowed, and one fewer.
        let touching = top - 2 * PAGE_4K;
        assert_eq!(s.mmap(&mem, touching, PAGE_4K, RW, true), Ok(touching));
        assert_eq!(s.arena.maps.len(), MAX_MAP_COUNT - 1);
        assert_eq!(s.mmap(&mem, next, PAGE_4K, RW, true), Ok(next));
        // Splitting one in two is ENOMEM at the cap.
        assert_eq!(s.munmap(&mem, touching, PAGE_4K), Err(Errno::ENOMEM));
    }

    #[test]
    fn mremap_to_the_same_page_rounded_size_keeps_the_address() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let a = s.mmap(&mem, 0, 2 * PAGE_4K, RW, false).unwrap();
        assert_eq!(
            s.mremap(&mem, a, 2 * PAGE_4K, 2 * PAGE_4K, mv(false)),
            Ok(a)
        );
        assert_eq!(
            s.mremap(&mem, a, 2 * PAGE_4K, 2 * PAGE_4K - 100, mv(false)),
            Ok(a)
        );
    }
}
