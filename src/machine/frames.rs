//! `Frames`: the guest-physical allocator of application RAM, `[APP_PHYS_BASE, ram)`, in 2 MiB
//! and 4 KiB frames, with `-m` (minus the core's reservation) as its limit.
//!
//! Two rules it keeps, both measured on PVM (docs/architecture.md, issue 13):
//! - A free frame reads as zeros: `free` gives the pages back to the host (MADV_DONTNEED through
//!   [`GuestMem::discard`]), which PVM's shadow MMU notices, so `alloc*` never needs to zero.
//! - A frame that was once a page table is never handed out as a table again (`was_table`):
//!   host writes into a page PVM once shadowed as a table are not seen after the guest relinks
//!   it, whereas a never-table frame filled by the host and then linked is. Freed tables come
//!   back as data frames only.
//!
//! It never hands out what lies below `APP_PHYS_BASE` (the boot tables, the page-table area,
//! the core and the per-vCPU blocks), and it knows nothing of virtual addresses: the
//! [`crate::machine::paging::Mapper`] and the Linux layer decide what a frame is for.
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::paging::{PAGE_2M, PAGE_4K};
use std::collections::BTreeSet;
use umon_abi::layout::APP_PHYS_BASE;
use umon_abi::Gpa;

/// 4 KiB frames per 2 MiB chunk.
const FRAMES_PER_CHUNK: usize = (PAGE_2M / PAGE_4K) as usize;
/// 64-bit words of a chunk's bitmap.
const WORDS: usize = FRAMES_PER_CHUNK / 64;

/// Why frames could not be had or given back.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// The limit (`-m`) or the physical space is exhausted.
    #[error("out of guest memory: {want_bytes} more bytes wanted, {in_use_bytes} of {limit_bytes} in use")]
    OutOfMemory {
        /// Bytes asked for.
        want_bytes: u64,
        /// Bytes in use.
        in_use_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// The range is not whole frames of application RAM, or not all of it is allocated.
    #[error("guest-physical range {gpa:#x}+{len:#x} is not an allocated range of frames")]
    NotAllocated {
        /// First address.
        gpa: u64,
        /// Length in bytes.
        len: u64,
    },
    /// Giving the pages back to the host failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

/// One 2 MiB chunk of application RAM.
#[derive(Clone, Debug)]
enum Chunk {
    /// Every frame free.
    Free,
    /// Handed out whole, as one 2 MiB frame.
    Huge,
    /// Handed out in 4 KiB frames: bit set = in use; `used` counts them.
    Split { bits: Box<[u64; WORDS]>, used: u16 },
}

/// The guest-physical frame allocator. Not thread-safe by itself: the machine keeps it behind
/// a lock.
#[derive(Clone)]
pub struct Frames {
    /// Chunk `i` starts at `base + i * 2 MiB`.
    chunks: Vec<Chunk>,
    /// The first address handed out (2 MiB aligned).
    base: u64,
    /// Frames that were page tables, per chunk (sparse: few chunks ever hold tables).
    was_table: Vec<Option<Box<[u64; WORDS]>>>,
    /// Indices of `Free` chunks: 2 MiB frames come from the lowest.
    free: BTreeSet<usize>,
    /// `(free frames, index)` of `Split` chunks with a free frame: 4 KiB frames come from the
    /// fullest, so partly used chunks fill up and whole chunks stay free for 2 MiB frames.
    partial: BTreeSet<(u16, usize)>,
    in_use_bytes: u64,
    limit_bytes: u64,
    /// One past the highest byte ever handed out.
    high_water: u64,
}

impl Frames {
    /// The application RAM of a machine with `ram_bytes` of guest RAM, all free; at most
    /// `limit_bytes` in use at once (clamped to the RAM there is). A tail shorter than 2 MiB
    /// is never handed out.
    pub fn new(ram_bytes: u64, limit_bytes: u64) -> Frames {
        Frames::range(
            APP_PHYS_BASE,
            ram_bytes.saturating_sub(APP_PHYS_BASE),
            limit_bytes,
        )
    }

    /// The frames of `[base, base + len)` only (`base` 2 MiB aligned), all free, at most
    /// `limit_bytes` in use at once: a part of application RAM some user hands out by itself
    /// (the Linux layer's anonymous memory), apart from the frames page tables come from.
    pub fn range(base: u64, len: u64, limit_bytes: u64) -> Frames {
        debug_assert!(base % PAGE_2M == 0);
        let n = (len / PAGE_2M) as usize;
        Frames {
            chunks: vec![Chunk::Free; n],
            base,
            was_table: vec![None; n],
            free: (0..n).collect(),
            partial: BTreeSet::new(),
            in_use_bytes: 0,
            limit_bytes: limit_bytes.min(n as u64 * PAGE_2M),
            high_water: base,
        }
    }

    /// Bytes handed out and not freed.
    pub fn in_use_bytes(&self) -> u64 {
        self.in_use_bytes
    }

    /// One past the highest guest-physical byte ever handed out (what KVM must know of).
    pub fn high_water(&self) -> u64 {
        self.high_water
    }

    /// The most bytes that may be in use at once.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Bytes that may still be allocated (fragmentation aside: a 2 MiB frame also needs a
    /// whole free chunk).
    pub fn available_bytes(&self) -> u64 {
        self.limit_bytes.saturating_sub(self.in_use_bytes)
    }

    fn charge(&mut self, bytes: u64) -> Result<(), FramesError> {
        if self.in_use_bytes + bytes > self.limit_bytes {
            return Err(self.out_of_memory(bytes));
        }
        self.in_use_bytes += bytes;
        Ok(())
    }

    fn out_of_memory(&self, want_bytes: u64) -> FramesError {
        FramesError::OutOfMemory {
            want_bytes,
            in_use_bytes: self.in_use_bytes,
            limit_bytes: self.limit_bytes,
        }
    }

    fn chunk_gpa(&self, index: usize) -> u64 {
        self.base + index as u64 * PAGE_2M
    }

    /// A 2 MiB frame (2 MiB-aligned), reading as zeros.
    pub fn alloc_2m(&mut self) -> Result<Gpa, FramesError> {
        let Some(&index) = self.free.iter().next() else {
            return Err(self.out_of_memory(PAGE_2M));
        };
        self.charge(PAGE_2M)?;
        self.free.remove(&index);
        self.chunks[index] = Chunk::Huge;
        let gpa = self.chunk_gpa(index);
        self.high_water = self.high_water.max(gpa + PAGE_2M);
        Ok(Gpa(gpa))
    }

    /// A 4 KiB frame, reading as zeros.
    pub fn alloc_4k(&mut self) -> Result<Gpa, FramesError> {
        self.alloc_4k_where(false)
    }

    /// A 4 KiB frame that has never been a page table, marked as one from now on: the host may
    /// fill it and the guest link it (see the module docs).
    pub fn alloc_table(&mut self) -> Result<Gpa, FramesError> {
        let gpa = self.alloc_4k_where(true)?;
        if let Some((chunk, frame)) = self.locate(gpa.0) {
            let bits = self.was_table[chunk].get_or_insert_with(|| Box::new([0; WORDS]));
            bits[frame / 64] |= 1 << (frame % 64);
        }
        Ok(gpa)
    }

    /// `n` table frames (see [`Frames::alloc_table`]), all or none.
    pub fn alloc_tables(&mut self, n: usize) -> Result<Vec<Gpa>, FramesError> {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            match self.alloc_table() {
                Ok(gpa) => got.push(gpa),
                Err(e) => {
                    for gpa in got {
                        // Never filled: nothing to give back to the host.
                        self.release(gpa.0, PAGE_4K)?;
                    }
                    return Err(e);
                }
            }
        }
        Ok(got)
    }

    /// Whether `gpa`'s frame has ever been a page table.
    pub fn was_table(&self, gpa: Gpa) -> bool {
        let Some((chunk, frame)) = self.locate(gpa.0) else {
            return false;
        };
        self.was_table[chunk]
            .as_ref()
            .is_some_and(|w| w[frame / 64] & (1 << (frame % 64)) != 0)
    }

    fn alloc_4k_where(&mut self, tables: bool) -> Result<Gpa, FramesError> {
        let Some((chunk, frame)) = self.find_4k(tables) else {
            return Err(self.out_of_memory(PAGE_4K));
        };
        self.take_4k(chunk, frame)?;
        let gpa = self.chunk_gpa(chunk) + frame as u64 * PAGE_4K;
        self.high_water = self.high_water.max(gpa + PAGE_4K);
        Ok(Gpa(gpa))
    }

    /// A free frame (for a table: one that never was a table): in the fullest partly used
    /// chunk first, else in the lowest free chunk.
    fn find_4k(&self, tables: bool) -> Option<(usize, usize)> {
        const NONE: [u64; WORDS] = [0; WORDS];
        let first_free = |chunk: usize, taken: &[u64; WORDS]| {
            let excluded = match &self.was_table[chunk] {
                Some(w) if tables => &**w,
                _ => &NONE,
            };
            (0..WORDS).find_map(|w| {
                let avail = !(taken[w] | excluded[w]);
                (avail != 0).then(|| w * 64 + avail.trailing_zeros() as usize)
            })
        };
        let partial = self
            .partial
            .iter()
            .find_map(|&(_, chunk)| match &self.chunks[chunk] {
                Chunk::Split { bits, .. } => first_free(chunk, bits).map(|f| (chunk, f)),
                _ => None,
            });
        partial.or_else(|| {
            self.free
                .iter()
                .find_map(|&chunk| first_free(chunk, &NONE).map(|f| (chunk, f)))
        })
    }

    fn take_4k(&mut self, chunk: usize, frame: usize) -> Result<(), FramesError> {
        self.charge(PAGE_4K)?;
        if matches!(self.chunks[chunk], Chunk::Free) {
            self.free.remove(&chunk);
            self.chunks[chunk] = Chunk::Split {
                bits: Box::new([0; WORDS]),
                used: 0,
            };
        }
        if let Chunk::Split { bits, used } = &mut self.chunks[chunk] {
            self.partial
                .remove(&(FRAMES_PER_CHUNK as u16 - *used, chunk));
            bits[frame / 64] |= 1 << (frame % 64);
            *used += 1;
            if (*used as usize) < FRAMES_PER_CHUNK {
                self.partial
                    .insert((FRAMES_PER_CHUNK as u16 - *used, chunk));
            }
        }
        Ok(())
    }

    /// Chunk and frame index of an application-RAM address.
    fn locate(&self, gpa: u64) -> Option<(usize, usize)> {
        let off = gpa.checked_sub(self.base)?;
        let chunk = (off / PAGE_2M) as usize;
        (chunk < self.chunks.len()).then_some((chunk, ((off % PAGE_2M) / PAGE_4K) as usize))
    }

    /// Give `[gpa, gpa + len)` back: whole 2 MiB frames and/or 4 KiB frames, each allocated
    /// (a 2 MiB frame may be freed in 4 KiB pieces). The pages go back to the host first, so
    /// they read as zeros when handed out again. Nothing changes if any part is not allocated.
    pub fn free(&mut self, mem: &GuestMem, gpa: Gpa, len: u64) -> Result<(), FramesError> {
        self.check_allocated(gpa.0, len)?;
        mem.discard(gpa, len)?;
        self.release(gpa.0, len)
    }

    fn check_allocated(&self, gpa: u64, len: u64) -> Result<(), FramesError> {
        let bad = || FramesError::NotAllocated { gpa, len };
        let end = gpa.checked_add(len).ok_or_else(bad)?;
        if len == 0 || gpa % PAGE_4K != 0 || len % PAGE_4K != 0 {
            return Err(bad());
        }
        let mut at = gpa;
        while at < end {
            let (chunk, frame) = self.locate(at).ok_or_else(bad)?;
            let used = match &self.chunks[chunk] {
                Chunk::Free => false,
                Chunk::Huge => true,
                Chunk::Split { bits, .. } => bits[frame / 64] & (1 << (frame % 64)) != 0,
            };
            if !used {
                return Err(bad());
            }
            at += PAGE_4K;
        }
        Ok(())
    }

    /// Mark a checked range free, merging a chunk whose last frame went back.
    fn release(&mut self, gpa: u64, len: u64) -> Result<(), FramesError> {
        let mut at = gpa;
        while at < gpa + len {
            let (chunk, frame) = self
                .locate(at)
                .ok_or(FramesError::NotAllocated { gpa, len })?;
            if matches!(self.chunks[chunk], Chunk::Huge) {
                if frame == 0 && gpa + len - at >= PAGE_2M {
                    self.chunks[chunk] = Chunk::Free;
                    self.free.insert(chunk);
                    self.in_use_bytes -= PAGE_2M;
                    at += PAGE_2M;
                    continue;
                }
                // Part of a 2 MiB frame goes back: it becomes 512 frames in use.
                self.chunks[chunk] = Chunk::Split {
                    bits: Box::new([u64::MAX; WORDS]),
                    used: FRAMES_PER_CHUNK as u16,
                };
            }
            if let Chunk::Split { bits, used } = &mut self.chunks[chunk] {
                self.partial
                    .remove(&(FRAMES_PER_CHUNK as u16 - *used, chunk));
                bits[frame / 64] &= !(1 << (frame % 64));
                *used -= 1;
                self.in_use_bytes -= PAGE_4K;
                if *used == 0 {
                    self.chunks[chunk] = Chunk::Free;
                    self.free.insert(chunk);
                } else {
                    self.partial
                        .insert((FRAMES_PER_CHUNK as u16 - *used, chunk));
                }
            }
            at += PAGE_4K;
        }
        Ok(())
    }

    /// Take `[gpa, gpa + len)` (whole 4 KiB frames, all free) out of the free pool: what the
    /// monitor placed at fixed addresses before the allocator existed (the image, the initial
    /// stack). Whole free chunks in the range become 2 MiB frames.
    pub fn reserve(&mut self, gpa: Gpa, len: u64) -> Result<(), FramesError> {
        let bad = || FramesError::NotAllocated { gpa: gpa.0, len };
        let end = gpa.0.checked_add(len).ok_or_else(bad)?;
        if gpa.0 % PAGE_4K != 0 || len % PAGE_4K != 0 {
            return Err(bad());
        }
        // Check first, so a refused range changes nothing.
        let mut at = gpa.0;
        while at < end {
            let (chunk, frame) = self.locate(at).ok_or_else(bad)?;
            if frame == 0 && end - at >= PAGE_2M && matches!(self.chunks[chunk], Chunk::Free) {
                // A whole free chunk in one step: all of RAM is reserved at every start.
                at += PAGE_2M;
                continue;
            }
            let free = match &self.chunks[chunk] {
                Chunk::Free => true,
                Chunk::Huge => false,
                Chunk::Split { bits, .. } => bits[frame / 64] & (1 << (frame % 64)) == 0,
            };
            if !free {
                return Err(bad());
            }
            at += PAGE_4K;
        }
        if self.in_use_bytes + len > self.limit_bytes {
            return Err(self.out_of_memory(len));
        }
        let mut at = gpa.0;
        while at < end {
            let (chunk, frame) = self.locate(at).ok_or_else(bad)?;
            if frame == 0 && end - at >= PAGE_2M && matches!(self.chunks[chunk], Chunk::Free) {
                self.charge(PAGE_2M)?;
                self.free.remove(&chunk);
                self.chunks[chunk] = Chunk::Huge;
                at += PAGE_2M;
            } else {
                self.take_4k(chunk, frame)?;
                at += PAGE_4K;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use umon_abi::layout::PAGE_TABLES_END;

    const RAM: u64 = 16 << 20;

    fn frames() -> (GuestMem, Frames) {
        (GuestMem::new(RAM).unwrap(), Frames::new(RAM, RAM))
    }

    #[test]
    fn hands_out_only_application_ram() {
        let (_, mut f) = frames();
        let chunks = (RAM - APP_PHYS_BASE) / PAGE_2M;
        let mut seen = BTreeSet::new();
        for _ in 0..chunks {
            let g = f.alloc_2m().unwrap();
            assert!(g.0 >= APP_PHYS_BASE && g.0 + PAGE_2M <= RAM, "{g:?}");
            assert!(g.0 > PAGE_TABLES_END);
            assert_eq!(g.0 % PAGE_2M, 0);
            assert!(seen.insert(g.0));
        }
        assert!(matches!(f.alloc_2m(), Err(FramesError::OutOfMemory { .. })));
        assert!(matches!(f.alloc_4k(), Err(FramesError::OutOfMemory { .. })));
        assert_eq!(f.in_use_bytes(), RAM - APP_PHYS_BASE);
    }

    #[test]
    fn alloc_free_2m_and_4k_round_trip() {
        let (mem, mut f) = frames();
        let big = f.alloc_2m().unwrap();
        let small: Vec<Gpa> = (0..600).map(|_| f.alloc_4k().unwrap()).collect();
        let distinct: BTreeSet<u64> = small.iter().map(|g| g.0).collect();
        assert_eq!(distinct.len(), 600);
        for g in &small {
            assert!(
                g.0 < big.0 || g.0 >= big.0 + PAGE_2M,
                "4 KiB frame inside the 2 MiB one"
            );
        }
        assert_eq!(f.in_use_bytes(), PAGE_2M + 600 * PAGE_4K);
        f.free(&mem, big, PAGE_2M).unwrap();
        for g in small {
            f.free(&mem, g, PAGE_4K).unwrap();
        }
        assert_eq!(f.in_use_bytes(), 0);
        // Everything merged back: every chunk is a 2 MiB frame again.
        for _ in 0..(RAM - APP_PHYS_BASE) / PAGE_2M {
            f.alloc_2m().unwrap();
        }
    }

    #[test]
    fn double_free_and_foreign_ranges_are_refused() {
        let (mem, mut f) = frames();
        let g = f.alloc_4k().unwrap();
        f.free(&mem, g, PAGE_4K).unwrap();
        assert!(matches!(
            f.free(&mem, g, PAGE_4K),
            Err(FramesError::NotAllocated { .. })
        ));
        for (gpa, len) in [
            (0, PAGE_4K),
            (PAGE_TABLES_END, PAGE_4K),
            (RAM, PAGE_4K),
            (u64::MAX - 0xfff, PAGE_4K),
        ] {
            assert!(f.free(&mem, Gpa(gpa), len).is_err(), "{gpa:#x}");
        }
        let h = f.alloc_2m().unwrap();
        assert!(f.free(&mem, Gpa(h.0 + 1), PAGE_4K).is_err());
        assert!(f.free(&mem, h, 0).is_err());
        assert!(
            f.free(&mem, h, PAGE_2M + PAGE_4K).is_err(),
            "runs past the frame"
        );
        assert_eq!(f.in_use_bytes(), PAGE_2M);
    }

    #[test]
    fn freeing_part_of_a_2m_frame_keeps_the_rest() {
        let (mem, mut f) = frames();
        let h = f.alloc_2m().unwrap();
        f.free(&mem, Gpa(h.0 + PAGE_4K), 2 * PAGE_4K).unwrap();
        assert_eq!(f.in_use_bytes(), PAGE_2M - 2 * PAGE_4K);
        // The two freed frames are the first 4 KiB frames handed out (fullest chunk first).
        let a = f.alloc_4k().unwrap();
        let b = f.alloc_4k().unwrap();
        assert_eq!(
            BTreeSet::from([a.0, b.0]),
            BTreeSet::from([h.0 + PAGE_4K, h.0 + 2 * PAGE_4K])
        );
        f.free(&mem, h, PAGE_2M).unwrap();
        assert_eq!(f.in_use_bytes(), 0);
    }

    #[test]
    fn fragmentation_fills_partial_chunks_before_splitting_free_ones() {
        let (mem, mut f) = frames();
        // Two chunks half used, then half of each freed in a checkerboard.
        let frames: Vec<Gpa> = (0..FRAMES_PER_CHUNK * 2)
            .map(|_| f.alloc_4k().unwrap())
            .collect();
        for g in frames.iter().step_by(2) {
            f.free(&mem, *g, PAGE_4K).unwrap();
        }
        let whole_chunks = (RAM - APP_PHYS_BASE) / PAGE_2M - 2;
        // The holes are refilled before any whole chunk is split...
        for _ in 0..FRAMES_PER_CHUNK {
            let g = f.alloc_4k().unwrap();
            assert!(frames.contains(&g), "{g:?} is not a hole");
        }
        // ...so every other chunk is still there for 2 MiB frames.
        for _ in 0..whole_chunks {
            f.alloc_2m().unwrap();
        }
        assert!(f.alloc_2m().is_err());
    }

    #[test]
    fn limit_counts_both_sizes() {
        let mem = GuestMem::new(RAM).unwrap();
        let mut f = Frames::new(RAM, PAGE_2M + 3 * PAGE_4K);
        let h = f.alloc_2m().unwrap();
        for _ in 0..3 {
            f.alloc_4k().unwrap();
        }
        let full = f.alloc_4k();
        assert!(
            matches!(full, Err(FramesError::OutOfMemory { .. })),
            "{full:?}"
        );
        assert!(f.alloc_2m().is_err());
        assert!(f.alloc_table().is_err());
        assert_eq!(f.available_bytes(), 0);
        f.free(&mem, h, PAGE_2M).unwrap();
        assert!(f.alloc_2m().is_ok());
        assert!(Frames::new(RAM, u64::MAX).limit_bytes() <= RAM - APP_PHYS_BASE);
    }

    #[test]
    fn a_frame_that_was_a_table_never_becomes_a_table_again() {
        let (mem, mut f) = frames();
        let t = f.alloc_table().unwrap();
        assert!(f.was_table(t));
        f.free(&mem, t, PAGE_4K).unwrap();
        assert!(f.was_table(t), "freeing keeps the mark");
        // It comes back as a data frame (it is the only hole of the fullest chunk)...
        assert_eq!(f.alloc_4k().unwrap(), t);
        f.free(&mem, t, PAGE_4K).unwrap();
        // ...but never as a table, even when it is the lowest free frame.
        let mut tables = BTreeSet::new();
        for _ in 0..(2 * FRAMES_PER_CHUNK) {
            let n = f.alloc_table().unwrap();
            assert_ne!(n, t);
            assert!(tables.insert(n.0));
        }
        // Nor does a whole chunk that merged back lose the marks.
        for g in &tables {
            f.free(&mem, Gpa(*g), PAGE_4K).unwrap();
        }
        assert_eq!(f.in_use_bytes(), 0);
        let again = f.alloc_table().unwrap();
        assert!(!tables.contains(&again.0) && again != t);
        // A 2 MiB data frame may still hold former tables.
        f.free(&mem, again, PAGE_4K).unwrap();
        let h = f.alloc_2m().unwrap();
        assert_eq!(h.0, APP_PHYS_BASE);
    }

    #[test]
    fn ram_without_a_whole_application_chunk_hands_out_nothing() {
        for ram in [
            0,
            APP_PHYS_BASE - PAGE_4K,
            APP_PHYS_BASE,
            APP_PHYS_BASE + PAGE_2M - PAGE_4K,
        ] {
            let mut f = Frames::new(ram, u64::MAX);
            assert_eq!(f.limit_bytes(), 0, "{ram:#x}");
            assert!(f.alloc_4k().is_err() && f.alloc_2m().is_err() && f.alloc_table().is_err());
            assert!(f.reserve(Gpa(APP_PHYS_BASE), PAGE_4K).is_err());
        }
        // A tail shorter than 2 MiB stays unused.
        let mut f = Frames::new(APP_PHYS_BASE + PAGE_2M + PAGE_4K, u64::MAX);
        assert_eq!(f.alloc_2m().unwrap(), Gpa(APP_PHYS_BASE));
        assert!(f.alloc_4k().is_err());
    }

    #[test]
    fn alloc_tables_is_all_or_nothing() {
        let mut f = Frames::new(RAM, 4 * PAGE_4K);
        assert!(f.alloc_tables(5).is_err());
        assert_eq!(f.in_use_bytes(), 0);
        assert_eq!(f.alloc_tables(4).unwrap().len(), 4);
    }

    #[test]
    fn freed_frames_read_as_zeros() {
        let (mem, mut f) = frames();
        let h = f.alloc_2m().unwrap();
        let s = f.alloc_4k().unwrap();
        mem.write(Gpa(h.0 + PAGE_2M - 8), &0xdead_beefu64).unwrap();
        mem.write(s, &0x1234u64).unwrap();
        f.free(&mem, h, PAGE_2M).unwrap();
        f.free(&mem, s, PAGE_4K).unwrap();
        assert_eq!(mem.read::<u64>(Gpa(h.0 + PAGE_2M - 8)).unwrap(), 0);
        assert_eq!(mem.read::<u64>(s).unwrap(), 0);
    }

    #[test]
    fn reserve_takes_fixed_ranges_out_of_the_pool() {
        let (mem, mut f) = frames();
        let image = Gpa(APP_PHYS_BASE);
        f.reserve(image, PAGE_2M + 5 * PAGE_4K).unwrap();
        assert_eq!(f.in_use_bytes(), PAGE_2M + 5 * PAGE_4K);
        assert!(
            f.reserve(Gpa(APP_PHYS_BASE + PAGE_2M), PAGE_4K).is_err(),
            "twice"
        );
        assert!(
            f.reserve(Gpa(0x1000), PAGE_4K).is_err(),
            "below application RAM"
        );
        let next = f.alloc_4k().unwrap();
        assert_eq!(next.0, APP_PHYS_BASE + PAGE_2M + 5 * PAGE_4K);
        assert_ne!(f.alloc_2m().unwrap(), image);
        f.free(&mem, image, PAGE_2M + 5 * PAGE_4K).unwrap();
        assert_eq!(f.in_use_bytes(), PAGE_2M + PAGE_4K);
    }
}
