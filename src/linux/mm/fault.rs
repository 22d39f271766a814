//! Demand paging of anonymous memory (issue 13, steps 7-9): the frames behind the arena's
//! mappings are bound at first touch, by the application's page fault (`populate`, from
//! sigfault's `UserFault`) or by the monitor's own access on its behalf (uaccess, as Linux's
//! `copy_to_user` faults a page in). A reservation that is never touched costs no frame and
//! no table: Go reserves hundreds of MiB PROT_NONE at start.
//!
//! Policy (measured costs in docs/design/address-space-plan.md §3): a fault binds a 2 MiB
//! frame (one PDE) where the mapping covers the aligned 2 MiB around it, nothing there is
//! bound yet and more than a quarter of the memory is free; else the 4 KiB page and the unbound pages of its mapping in the same 32 KiB
//! ("fault-around": ~100 us per fault on PVM makes one fault per page too dear).
use super::space::{Access, FileBind};
use crate::linux::abi::TASK_SIZE_MAX;
use crate::linux::{signal, Ctx, Stop};
use crate::machine::frames::{Frames, FramesError};
use crate::machine::memory::GuestMem;
use crate::machine::paging::{PAGE_2M, PAGE_4K};
use std::collections::BTreeMap;
use std::thread::ThreadId;
use umon_abi::Gpa;

/// Pages bound together around a 4 KiB fault: at most `paging::REPLACE_THRESHOLD` entries,
/// so that a fault's batch stores into the live table instead of replacing it (each
/// replacement uses up a frame that can never be a table again).
const FAULT_AROUND_BYTES: u64 = 8 * PAGE_4K;

/// The page-fault error code's bits: a write, an instruction fetch.
const PF_WRITE: u64 = 1 << 1;
const PF_INSTR: u64 = 1 << 4;

/// The frames behind anonymous memory: which virtual page has which frame, and the allocator
/// they come from (the arena's share of guest RAM, `-m`'s limit).
pub struct Backing {
    frames: Frames,
    /// Bound extents by first address: (frame, bytes), 4 KiB or 2 MiB, never overlapping.
    bound: BTreeMap<u64, (u64, u64)>,
    /// With several vCPUs: frames given back but perhaps still mapped by a page-table entry
    /// until the giving thread's batch is in (`turn`), by that host thread. Freed then
    /// ([`Backing::free_quarantined`]): a frame is never another page's while any vCPU may
    /// still reach it through the old one.
    quarantine: Option<Vec<(ThreadId, u64, u64)>>,
}

impl Default for Backing {
    /// No frames at all.
    fn default() -> Backing {
        Backing::new(Frames::range(0, 0, 0))
    }
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backing")
            .field("extents", &self.bound.len())
            .field("in_use", &self.in_use_bytes())
            .finish()
    }
}

/// A bound extent: (first address, frame, bytes).
pub type Extent = (u64, u64, u64);

impl Backing {
    /// Frames from `frames`, nothing bound.
    pub fn new(frames: Frames) -> Backing {
        Backing {
            frames,
            bound: BTreeMap::new(),
            quarantine: None,
        }
    }

    /// From now on given-back frames wait in quarantine for the giver's batch.
    pub fn quarantine_frees(&mut self) {
        self.quarantine.get_or_insert_with(Vec::new);
    }

    /// Free the frames this host thread gave back: its batch is in the tables.
    pub fn free_quarantined(&mut self, mem: &GuestMem) {
        let me = std::thread::current().id();
        let Some(q) = self.quarantine.as_mut() else {
            return;
        };
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(q)
            .into_iter()
            .partition(|&(t, _, _)| t == me);
        *q = others;
        for (_, gpa, len) in mine {
            if let Err(e) = self.frames.free(mem, Gpa(gpa), len) {
                log::warn!("cannot give guest memory back: {e}");
            }
        }
    }

    /// This host thread has frames in quarantine.
    pub fn quarantined(&self) -> bool {
        let me = std::thread::current().id();
        self.quarantine
            .as_ref()
            .is_some_and(|q| q.iter().any(|&(t, _, _)| t == me))
    }

    /// Back to one vCPU (a forked child): frees go straight back again, the quarantine too
    /// (the child's one vCPU applies its batch before the application runs on).
    pub fn end_quarantine(&mut self, mem: &GuestMem) {
        for (_, gpa, len) in self.quarantine.take().into_iter().flatten() {
            if let Err(e) = self.frames.free(mem, Gpa(gpa), len) {
                log::warn!("cannot give guest memory back: {e}");
            }
        }
    }

    /// Bytes bound (frames in use).
    pub fn in_use_bytes(&self) -> u64 {
        self.frames.in_use_bytes()
    }

    /// The most bytes that may be bound at once (`-m`'s share for the application's memory).
    pub fn limit_bytes(&self) -> u64 {
        self.frames.limit_bytes()
    }

    /// One past the highest frame ever bound: what KVM must know of before the guest maps it.
    pub fn high_water(&self) -> u64 {
        self.frames.high_water()
    }

    /// Bytes that may still be bound.
    pub fn available_bytes(&self) -> u64 {
        self.frames.available_bytes()
    }

    /// The extent holding `va`.
    pub fn lookup(&self, va: u64) -> Option<Extent> {
        let (&s, &(gpa, len)) = self.bound.range(..=va).next_back()?;
        (va < s + len).then_some((s, gpa, len))
    }

    /// The extents in `[start, end)`, clipped to it, ascending.
    pub fn bound_in(&self, start: u64, end: u64) -> Vec<Extent> {
        let first = self.lookup(start).map_or(start, |(s, _, _)| s);
        self.bound
            .range(first..end)
            .filter_map(|(&s, &(gpa, len))| {
                let (a, e) = (s.max(start), (s + len).min(end));
                (a < e).then_some((a, gpa + (a - s), e - a))
            })
            .collect()
    }

    fn any_bound(&self, start: u64, end: u64) -> bool {
        self.lookup(start).is_some() || self.bound.range(start..end).next().is_some()
    }

    /// Bind frames around `va` inside the mapping `[vma_start, vma_end)` (see the module
    /// docs); the range now bound around it. Err when not even `va`'s page has a frame.
    pub fn populate(
        &mut self,
        va: u64,
        vma_start: u64,
        vma_end: u64,
    ) -> Result<(u64, u64), FramesError> {
        let huge = va & !(PAGE_2M - 1);
        // With less than a quarter of memory left, 4 KiB frames: a 2 MiB frame for one
        // touched byte would end a sparse toucher in an OOM kill that Linux does not make.
        let roomy = self.frames.available_bytes() >= self.frames.limit_bytes() / 4;
        if roomy
            && huge >= vma_start
            && huge + PAGE_2M <= vma_end
            && !self.any_bound(huge, huge + PAGE_2M)
        {
            if let Ok(gpa) = self.frames.alloc_2m() {
                self.bound.insert(huge, (gpa.0, PAGE_2M));
                return Ok((huge, huge + PAGE_2M));
            }
        }
        let page = va & !(PAGE_4K - 1);
        let lo = (va & !(FAULT_AROUND_BYTES - 1)).max(vma_start);
        let hi = ((va & !(FAULT_AROUND_BYTES - 1)) + FAULT_AROUND_BYTES).min(vma_end);
        let mut done = (page, page + PAGE_4K);
        // The faulting page first: the others only if frames are left.
        let order = std::iter::once(page).chain(
            (lo..hi)
                .step_by(PAGE_4K as usize)
                .filter(move |&p| p != page),
        );
        for p in order {
            if self.lookup(p).is_some() {
                continue;
            }
            match self.frames.alloc_4k() {
                Ok(gpa) => {
                    self.bound.insert(p, (gpa.0, PAGE_4K));
                    done = (done.0.min(p), done.1.max(p + PAGE_4K));
                }
                Err(e) if p == page => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Bind every unbound page of `[start, end)` (eager mappings: brk, small mmaps); all or
    /// nothing.
    pub fn populate_all(
        &mut self,
        start: u64,
        end: u64,
        mem: &GuestMem,
    ) -> Result<(), FramesError> {
        let mut added = Vec::new();
        let mut at = start;
        while at < end {
            if let Some((s, _, len)) = self.lookup(at) {
                at = s + len;
                continue;
            }
            let r = self.populate(at, start, end);
            match r {
                Ok((a, e)) => {
                    added.push((a, e));
                    at = at.max(e);
                }
                Err(e) => {
                    for (a, b) in added {
                        self.release(mem, a, b, true);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Give back the frames of `[start, end)` (page-aligned): unbound and freed (with several
    /// vCPUs: quarantined, see `quarantine`) when `free`, else only zeroed (host pages
    /// dropped) and kept bound to their pages.
    pub fn release(&mut self, mem: &GuestMem, start: u64, end: u64, free: bool) {
        // Physically contiguous pieces go back in one host call each.
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (a, gpa, len) in self.bound_in(start, end) {
            match merged.last_mut() {
                Some((g, n)) if *g + *n == gpa => *n += len,
                _ => merged.push((gpa, len)),
            }
            if !free {
                continue;
            }
            let Some((s, whole_gpa, whole_len)) = self.lookup(a) else {
                continue;
            };
            self.bound.remove(&s);
            // The parts of a 2 MiB extent outside the range stay bound, page by page.
            let mut p = s;
            while p < s + whole_len {
                if p < a || p >= a + len {
                    self.bound.insert(p, (whole_gpa + (p - s), PAGE_4K));
                }
                p += PAGE_4K;
            }
        }
        let me = std::thread::current().id();
        for (gpa, len) in merged {
            if free {
                if let Some(q) = self.quarantine.as_mut() {
                    q.push((me, gpa, len));
                    continue;
                }
            }
            let r = if free {
                self.frames.free(mem, Gpa(gpa), len)
            } else {
                mem.discard(Gpa(gpa), len).map_err(FramesError::from)
            };
            if let Err(e) = r {
                log::warn!("cannot give guest memory back: {e}");
            }
        }
    }
}

/// What a page fault came to.
pub(crate) enum Outcome {
    /// Frames bound and the tables told: the instruction runs again.
    Retry,
    /// Not a fault populating fixes: the signal Linux sends.
    Signal,
    /// A file mapping's page past the end of its file: SIGBUS (BUS_ADRERR).
    Bus,
}

/// An application page fault at `va` with the error code `err`: bind the frames of a lazy
/// mapping that allows the access and have the page tables follow; Err(exit) when guest
/// memory is out (Linux's OOM killer: SIGKILL).
pub(crate) fn populate(cx: &mut Ctx<'_, '_>, va: u64, err: u64, rip: u64) -> Result<Outcome, Stop> {
    if va >= TASK_SIZE_MAX {
        return Ok(Outcome::Signal);
    }
    let access = if err & PF_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    let fetch = err & PF_INSTR != 0;
    let mem = cx.mem;
    let file = cx.process.space_mut().file_fault(mem, va, access);
    match file {
        Some(FileBind::PastEof | FileBind::Full) => return Ok(Outcome::Bus),
        Some(FileBind::NoMemory) => return Err(Stop::Exit(out_of_memory(cx, rip))),
        Some(FileBind::Bound(..)) => {
            return match super::follow(cx) {
                Ok(()) => Ok(Outcome::Retry),
                Err(e) => {
                    log::debug!("page fault at {va:#x}: {e}");
                    Err(Stop::Exit(out_of_memory(cx, rip)))
                }
            }
        }
        None => {}
    }
    let stack_limit = crate::linux::proc::rlimit(cx, crate::linux::proc::RLIMIT_STACK).cur;
    let r = cx.process.space_mut().fault(va, access, fetch, stack_limit);
    match r {
        Ok(true) => match super::follow(cx) {
            Ok(()) => Ok(Outcome::Retry),
            // Retrying would fault again forever: no frame is left for a page table.
            Err(e) => {
                log::debug!("page fault at {va:#x}: {e}");
                Err(Stop::Exit(out_of_memory(cx, rip)))
            }
        },
        Ok(false) => Ok(Outcome::Signal),
        Err(e) => {
            log::debug!("page fault at {va:#x}: {e}");
            Err(Stop::Exit(out_of_memory(cx, rip)))
        }
    }
}

/// How the process ends when a fault finds no frame: as Linux's OOM killer ends it (SIGKILL,
/// 137), with a line that names the limit.
pub(crate) fn out_of_memory(cx: &Ctx<'_, '_>, rip: u64) -> crate::exit::ExitStatus {
    let limit = cx.process.space().backing_limit_bytes();
    signal::killed(
        cx.process,
        libc::SIGKILL,
        &format!(
            "out of memory: the application touched more than the {} MiB its -m allows, ",
            limit >> 20
        ),
        rip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;
    const VA: u64 = 0x2000_0000_0000;

    fn backing(ram: u64) -> (GuestMem, Backing) {
        let mem = GuestMem::new(ram).unwrap();
        (mem, Backing::new(Frames::range(0, ram, ram)))
    }

    #[test]
    fn quarantined_frames_wait_for_their_giver() {
        let mem = GuestMem::new(8 * MB).unwrap();
        let mut b = Backing::new(Frames::range(0, 4 * MB, 4 * MB));
        b.populate_all(VA, VA + 4 * PAGE_4K, &mem).unwrap();
        let used = b.in_use_bytes();
        b.quarantine_frees();
        b.release(&mem, VA, VA + 2 * PAGE_4K, true);
        // Unbound at once, but not free until the giver's batch is in.
        assert!(b.lookup(VA).is_none());
        assert_eq!(b.in_use_bytes(), used);
        assert!(b.quarantined());
        // Another host thread's batch frees nothing of this one's.
        std::thread::scope(|s| {
            let (b, mem) = (&mut b, &mem);
            s.spawn(move || {
                assert!(!b.quarantined());
                b.free_quarantined(mem);
            });
        });
        assert_eq!(b.in_use_bytes(), used);
        b.free_quarantined(&mem);
        assert!(!b.quarantined());
        assert_eq!(b.in_use_bytes(), used - 2 * PAGE_4K);
        // Back to one vCPU: the rest go straight back.
        b.release(&mem, VA + 2 * PAGE_4K, VA + 3 * PAGE_4K, true);
        b.end_quarantine(&mem);
        assert_eq!(b.in_use_bytes(), used - 3 * PAGE_4K);
        b.release(&mem, VA + 3 * PAGE_4K, VA + 4 * PAGE_4K, true);
        assert_eq!(b.in_use_bytes(), used - 4 * PAGE_4K);
    }

    #[test]
    fn a_fault_binds_2m_where_the_mapping_covers_it_else_32k_around() {
        let (_mem, mut b) = backing(8 * MB);
        assert_eq!(
            b.populate(VA + 5, VA, VA + 4 * MB).unwrap(),
            (VA, VA + 2 * MB)
        );
        assert_eq!(b.in_use_bytes(), 2 * MB);
        assert_eq!(b.lookup(VA + 2 * MB - 1).map(|e| e.2), Some(2 * MB));
        // A mapping of 100 KiB: the 32 KiB around the page, clipped to the mapping.
        let small = VA + 16 * MB;
        let (a, e) = b
            .populate(small + 98 * 1024, small, small + 100 * 1024)
            .unwrap();
        assert_eq!((a, e), (small + 96 * 1024, small + 100 * 1024));
        assert!(b.lookup(small).is_none());
        assert_eq!(b.bound_in(small, small + MB).len(), 1);
        let (a, e) = b.populate(small + 5, small, small + 100 * 1024).unwrap();
        assert_eq!((a, e), (small, small + 32 * 1024));
    }

    #[test]
    fn releasing_part_of_a_2m_frame_keeps_the_rest_bound() {
        let (mem, mut b) = backing(8 * MB);
        b.populate(VA, VA, VA + 2 * MB).unwrap();
        b.release(&mem, VA + MB, VA + MB + 2 * PAGE_4K, true);
        assert_eq!(b.in_use_bytes(), 2 * MB - 2 * PAGE_4K);
        assert!(b.lookup(VA + MB).is_none());
        assert!(b.lookup(VA + MB - 1).is_some());
        assert!(b.lookup(VA + MB + 2 * PAGE_4K).is_some());
        // Zeroing only (frozen tables) keeps every binding.
        b.release(&mem, VA, VA + 2 * MB, false);
        assert_eq!(b.in_use_bytes(), 2 * MB - 2 * PAGE_4K);
        b.release(&mem, VA, VA + 2 * MB, true);
        assert_eq!(b.in_use_bytes(), 0);
        assert!(b.bound_in(VA, VA + 2 * MB).is_empty());
    }

    #[test]
    fn eager_population_is_all_or_nothing() {
        let (mem, mut b) = backing(4 * MB);
        assert!(b.populate_all(VA, VA + 6 * MB, &mem).is_err());
        assert_eq!(b.in_use_bytes(), 0);
        b.populate_all(VA + PAGE_4K, VA + 3 * MB, &mem).unwrap();
        assert_eq!(b.in_use_bytes(), 3 * MB - PAGE_4K);
        assert!(b.populate_all(VA + 8 * MB, VA + 10 * MB, &mem).is_err());
        assert_eq!(b.in_use_bytes(), 3 * MB - PAGE_4K);
    }
}
