//! The application's address space as the monitor sees it: which guest virtual ranges are
//! mapped to which physical memory with which permissions, and the arena that serves brk and
//! mmap. The page tables are written once, before the first instruction, from the same regions
//! (PVM's shadow paging does not see later host edits), so the arena is mapped in full up front
//! and brk/mmap/munmap are bookkeeping plus zeroing here.
use crate::memory::{GuestMem, MemoryError};
use std::collections::BTreeMap;
use syscalls::Errno;
use umon_abi::Gpa;

/// Page size seen by the application.
pub const PAGE: u64 = 4096;
/// End of the user half of the address space (Linux's TASK_SIZE_MAX + 1 page).
pub const USER_TOP: u64 = 0x0000_7fff_ffff_f000;

/// A mapped range of application virtual memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Guest physical address of `start`; the range is physically contiguous.
    pub pa: u64,
    /// Writable by the application.
    pub write: bool,
    /// Executable by the application.
    pub exec: bool,
}

/// Bytes the application may read, or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read (the monitor copies out of the app, e.g. write(2)).
    Read,
    /// Write (the monitor copies into the app, e.g. read(2)).
    Write,
}

/// The application's mapped memory and its heap arena.
#[derive(Debug, Default)]
pub struct AddrSpace {
    /// Sorted, non-overlapping.
    regions: Vec<Region>,
    /// brk and anonymous mmap.
    pub arena: Arena,
}

impl AddrSpace {
    /// An address space of `regions` (any order) with `arena`, which must be one of them.
    pub fn new(mut regions: Vec<Region>, arena: Arena) -> AddrSpace {
        regions.sort_by_key(|r| r.start);
        AddrSpace { regions, arena }
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

    /// The physical pieces of `[va, va + len)`; EFAULT if any byte is unmapped or lacks `access`.
    pub fn chunks(&self, va: u64, len: u64, access: Access) -> Result<Vec<(Gpa, u64)>, Errno> {
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        // Linux's access_ok: even an empty range must lie in the user half.
        if end > USER_TOP {
            return Err(Errno::EFAULT);
        }
        let mut out = Vec::new();
        let mut at = va;
        while at < end {
            let r = self.region_at(at).ok_or(Errno::EFAULT)?;
            if access == Access::Write && !r.write {
                return Err(Errno::EFAULT);
            }
            let n = (r.end.min(end)) - at;
            out.push((Gpa(r.pa + (at - r.start)), n));
            at += n;
        }
        Ok(out)
    }

    /// Copy application memory into `buf`.
    pub fn read(&self, mem: &GuestMem, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        for (gpa, n) in self.chunks(va, buf.len() as u64, Access::Read)? {
            mem.read_bytes(gpa, &mut buf[done..done + n as usize])
                .map_err(efault)?;
            done += n as usize;
        }
        Ok(())
    }

    /// Copy `buf` into application memory.
    pub fn write(&self, mem: &GuestMem, va: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        for (gpa, n) in self.chunks(va, buf.len() as u64, Access::Write)? {
            mem.write_bytes(gpa, &buf[done..done + n as usize])
                .map_err(efault)?;
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
            let n = (PAGE - at % PAGE).min((max + 1 - out.len()) as u64) as usize;
            let mut buf = [0u8; PAGE as usize];
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

    /// Zero `[va, va + len)` (arena pages given back).
    fn discard(&self, mem: &GuestMem, va: u64, len: u64) -> Result<(), Errno> {
        for (gpa, n) in self.chunks(va, len, Access::Write)? {
            mem.discard(gpa, n).map_err(efault)?;
        }
        Ok(())
    }

    /// Whether every byte of `[va, va + len)` is mapped (any permission).
    pub fn is_mapped(&self, va: u64, len: u64) -> bool {
        self.chunks(va, len, Access::Read).is_ok()
    }

    /// Whether `[start, end)` is inside the arena and not in use by brk or a mapping.
    pub fn arena_is_free(&self, start: u64, end: u64) -> bool {
        self.arena.is_free(start, end)
    }

    /// MADV_DONTNEED: the arena part of the range reads as zeros afterwards, still mapped.
    pub fn munmap_contents(&mut self, mem: &GuestMem, va: u64, len: u64) -> Result<(), Errno> {
        let end = va.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > USER_TOP {
            return Err(Errno::ENOMEM);
        }
        let (lo, hi) = (va.max(self.arena.start), end.min(self.arena.end));
        if lo < hi {
            self.discard(mem, lo, hi - lo)?;
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
        self.arena.brk = want;
        want
    }

    /// Anonymous mmap(2) of `len` bytes; `addr` is a hint unless `fixed`.
    pub fn mmap(&mut self, mem: &GuestMem, addr: u64, len: u64, fixed: bool) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = len.checked_next_multiple_of(PAGE).ok_or(Errno::ENOMEM)?;
        if fixed {
            if addr % PAGE != 0 {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if addr < page_up(self.arena.brk) || end > self.arena.end {
                return Err(Errno::ENOMEM);
            }
            self.arena.remove(addr, end);
            self.discard(mem, addr, len)?;
            self.arena.maps.insert(addr, end);
            return Ok(addr);
        }
        let at = self.arena.find(addr, len).ok_or(Errno::ENOMEM)?;
        self.arena.maps.insert(at, at + len);
        Ok(at)
    }

    /// munmap(2).
    pub fn munmap(&mut self, mem: &GuestMem, addr: u64, len: u64) -> Result<(), Errno> {
        if addr % PAGE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(len.checked_next_multiple_of(PAGE).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        if end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        let (lo, hi) = (addr.max(page_up(self.arena.brk)), end.min(self.arena.end));
        if lo < hi {
            self.arena.remove(lo, hi);
            self.discard(mem, lo, hi - lo)?;
        }
        Ok(())
    }

    /// mremap(2) of an arena mapping.
    pub fn mremap(
        &mut self,
        mem: &GuestMem,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<u64, Errno> {
        if old % PAGE != 0 || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = old_len
            .checked_next_multiple_of(PAGE)
            .ok_or(Errno::EINVAL)?;
        // old_len 0 duplicates a shared mapping on Linux; every arena mapping is private.
        if old_len == 0 {
            return Err(Errno::EINVAL);
        }
        let new_len = new_len
            .checked_next_multiple_of(PAGE)
            .ok_or(Errno::ENOMEM)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        if !self.arena.covered(old, old_end) {
            return Err(Errno::EFAULT);
        }
        if new_len <= old_len {
            self.munmap(mem, old + new_len, old_len - new_len)?;
            return Ok(old);
        }
        let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if grow_end <= self.arena.end && self.arena.is_free(old_end, grow_end) {
            self.arena.maps.insert(old_end, grow_end);
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let new = self.mmap(mem, 0, new_len, false)?;
        let (src, dst) = (self.arena.pa_of(old), self.arena.pa_of(new));
        mem.copy(src, dst, old_len).map_err(efault)?;
        self.munmap(mem, old, old_len)?;
        Ok(new)
    }
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
        if hint != 0 && hint % PAGE == 0 {
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
    v.next_multiple_of(PAGE)
}

fn efault(_: MemoryError) -> Errno {
    Errno::EFAULT
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

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
        let a = s.mmap(&mem, 0, 3 * PAGE, false).unwrap();
        assert_eq!(a, 0x1000_0000 + 8 * MB - 3 * PAGE);
        let b = s.mmap(&mem, 0, PAGE, false).unwrap();
        assert_eq!(b, a - PAGE);
        s.munmap(&mem, a, 3 * PAGE).unwrap();
        assert_eq!(s.mmap(&mem, 0, 2 * PAGE, false).unwrap(), a + PAGE);
        assert_eq!(s.mmap(&mem, 0, 16 * MB, false), Err(Errno::ENOMEM));
    }

    #[test]
    fn munmap_zeroes_and_brk_stops_at_mappings() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut s = space(&mem);
        let a = s.mmap(&mem, 0, 4 * PAGE, false).unwrap();
        s.write(&mem, a + 10, b"hello").unwrap();
        s.munmap(&mem, a, 4 * PAGE).unwrap();
        let mut buf = [1u8; 5];
        s.read(&mem, a + 10, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
        let start = s.arena.brk;
        assert_eq!(s.brk(&mem, start + 100), start + 100);
        let m = s.mmap(&mem, 0, PAGE, false).unwrap();
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
        assert_eq!(s.mmap(&mem, base, 2 * PAGE, true), Ok(base));
        assert_eq!(s.mmap(&mem, base + 1, PAGE, true), Err(Errno::EINVAL));
        assert_eq!(s.mmap(&mem, 0x1000, PAGE, true), Err(Errno::ENOMEM));
        s.write(&mem, base, b"abc").unwrap();
        assert_eq!(s.mremap(&mem, base, 2 * PAGE, 4 * PAGE, false), Ok(base));
        let blocker = s.mmap(&mem, base + 4 * PAGE, PAGE, true).unwrap();
        assert_eq!(
            s.mremap(&mem, base, 4 * PAGE, 8 * PAGE, false),
            Err(Errno::ENOMEM)
        );
        let moved = s.mremap(&mem, base, 4 * PAGE, 8 * PAGE, true).unwrap();
        assert_ne!(moved, base);
        let mut buf = [0u8; 3];
        s.read(&mem, moved, &mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        assert!(s.arena.covered(blocker, blocker + PAGE));
        assert_eq!(
            s.mremap(&mem, 0x2000_0000, PAGE, PAGE, true),
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
}
