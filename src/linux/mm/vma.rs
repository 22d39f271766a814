//! The application's mappings (Linux's VMAs): a sorted tree of non-overlapping ranges, each
//! with its protection and kind. Splits and merges follow Linux's rules for what a caller can
//! observe: adjacent mappings alike in every attribute are one (mremap cannot cross a mapping's
//! end, so this decides its EFAULT), and a split past [`MAX_MAP_COUNT`] is ENOMEM.
use crate::machine::paging::PAGE_4K;
use std::collections::BTreeMap;
use syscalls::Errno;

/// Linux's default vm.max_map_count: the most mappings a process may have (mmap, mprotect,
/// mremap and a munmap that would split one past it fail with ENOMEM), so a hostile application
/// cannot make the monitor's bookkeeping grow without bound.
pub const MAX_MAP_COUNT: usize = 65530;

/// What a mapping holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The executable's segments, placed before start.
    Image,
    /// The main thread's stack (grows down).
    Stack,
    /// Memory brk handed out.
    Heap,
    /// Anonymous mmap.
    Anon,
    /// The vDSO's time page (Linux's VM_PFNMAP `[vvar]`).
    Vvar,
    /// The vDSO (`[vdso]`, a special mapping).
    Vdso,
}

impl Kind {
    /// Anonymous memory: MADV_DONTNEED zeroes it, MADV_FREE applies.
    pub fn is_anon(self) -> bool {
        matches!(self, Kind::Stack | Kind::Heap | Kind::Anon)
    }

    /// Linux's VM_SPECIAL mappings (vvar, vdso): never locked, never grown by mremap.
    pub fn is_special(self) -> bool {
        matches!(self, Kind::Vvar | Kind::Vdso)
    }
}

/// One mapping; its start is its key in [`Vmas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// PROT_* bits.
    pub prot: u32,
    /// What it holds.
    pub kind: Kind,
    /// MAP_SHARED (anonymous shared memory: with one process it behaves as private, but
    /// MADV_REMOVE and the flags tell them apart).
    pub shared: bool,
    /// MAP_GROWSDOWN (or the main stack): mprotect(PROT_GROWSDOWN) extends to its start.
    pub growsdown: bool,
    /// mlock'ed (VM_LOCKED): MADV_DONTNEED is EINVAL, msync(MS_INVALIDATE) EBUSY.
    pub locked: bool,
    /// The host file whose pages back it (shared mappings: of a file, or of the memfd behind
    /// MAP_SHARED|MAP_ANONYMOUS memory), and where in it the mapping starts.
    pub file: Option<FileRef>,
    /// What a forked child gets of it (MADV_DONTFORK, MADV_WIPEONFORK).
    pub onfork: OnFork,
}

/// What a forked child gets of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFork {
    /// A copy (or, shared, the same pages).
    #[default]
    Copy,
    /// Nothing: it is unmapped in the child (MADV_DONTFORK).
    Drop,
    /// Zeros (MADV_WIPEONFORK).
    Wipe,
}

/// A mapping's place in a host file: which one (an id in the address space's table of
/// mapped files) and the byte offset its first page maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// The file, in `AddrSpace`'s table.
    pub id: u32,
    /// Offset of the mapping's first byte in the file.
    pub offset: u64,
}

impl Vma {
    /// The part of this mapping (which starts at `start`) from `at` on: a file mapping's
    /// offset moves with it.
    pub fn from(&self, start: u64, at: u64) -> Vma {
        Vma {
            file: self.file.map(|f| FileRef {
                offset: f.offset + (at - start),
                ..f
            }),
            ..*self
        }
    }

    /// Whether `next`, starting at `self.end`, can be one mapping with `self` (which starts
    /// at `start`): alike, and a file mapping continuing in the same file.
    fn merges_with(&self, start: u64, next_start: u64, next: &Vma) -> bool {
        let file_continues = match (self.file, next.file) {
            (None, None) => true,
            (Some(a), Some(b)) => a.id == b.id && b.offset == a.offset + (next_start - start),
            _ => false,
        };
        file_continues
            && self.end == next_start
            && self.prot == next.prot
            && self.kind == next.kind
            && !self.kind.is_special()
            && self.shared == next.shared
            && self.growsdown == next.growsdown
            && self.locked == next.locked
            && self.onfork == next.onfork
    }
}

/// The mapping tree.
#[derive(Debug, Default)]
pub struct Vmas {
    map: BTreeMap<u64, Vma>,
}

impl Vmas {
    /// How many mappings there are (Linux's map_count).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The mapping holding `va`.
    pub fn get(&self, va: u64) -> Option<(u64, &Vma)> {
        self.map
            .range(..=va)
            .next_back()
            .filter(|(_, v)| v.end > va)
            .map(|(&s, v)| (s, v))
    }

    /// The first mapping ending above `va` (Linux's find_vma).
    pub fn find(&self, va: u64) -> Option<(u64, &Vma)> {
        self.get(va)
            .or_else(|| self.map.range(va..).next().map(|(&s, v)| (s, v)))
    }

    /// Whether any mapping meets `[start, end)`.
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        self.find(start).is_some_and(|(s, _)| s < end)
    }

    /// The mappings starting below `end`, highest first (the top-down search).
    pub fn below(&self, end: u64) -> impl Iterator<Item = (u64, &Vma)> {
        self.map.range(..end).rev().map(|(&s, v)| (s, v))
    }

    /// The mappings meeting `[start, end)`, ascending.
    pub fn iter_from(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Vma)> {
        let from = self.get(start).map_or(start, |(s, _)| s);
        self.map
            .range(from..end)
            .map(|(&s, v)| (s, v))
            .filter(move |(_, v)| v.end > start)
    }

    /// Every mapping, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Vma)> {
        self.map.iter().map(|(&s, v)| (s, v))
    }

    /// Split the mapping strictly containing `at` (if any) in two.
    fn split(&mut self, at: u64) {
        if let Some((s, v)) = self.get(at).map(|(s, v)| (s, *v)) {
            if s < at {
                self.map.insert(s, Vma { end: at, ..v });
                self.map.insert(at, v.from(s, at));
            }
        }
    }

    /// Add `vma` at the free `start`, merged with the neighbours it continues.
    pub fn insert(&mut self, start: u64, vma: Vma) {
        debug_assert!(!self.intersects(start, vma.end));
        let end = vma.end;
        self.map.insert(start, vma);
        self.merge_around(start, end);
    }

    /// Merge the alike neighbours among the mappings meeting `[start, end]`.
    fn merge_around(&mut self, start: u64, end: u64) {
        let from = self
            .map
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        let mut at = from;
        while let Some((&s, &v)) = self.map.range(at..).next() {
            if s > end {
                break;
            }
            match self.map.range(v.end..).next().map(|(&n, &nv)| (n, nv)) {
                Some((n, nv)) if v.merges_with(s, n, &nv) => {
                    self.map.remove(&n);
                    self.map.insert(s, Vma { end: nv.end, ..v });
                }
                _ => at = s + 1,
            }
        }
    }

    /// Remove `[start, end)` from every mapping; returns the removed pieces. ENOMEM (nothing
    /// changed) when that would split one mapping in two at the count limit, as Linux's munmap.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<Vec<(u64, Vma)>, Errno> {
        if let Some((s, v)) = self.get(start) {
            if s < start && end < v.end && self.len() >= MAX_MAP_COUNT {
                return Err(Errno::ENOMEM);
            }
        }
        self.split(start);
        self.split(end);
        let hit: Vec<u64> = self.map.range(start..end).map(|(&s, _)| s).collect();
        Ok(hit
            .into_iter()
            .filter_map(|s| self.map.remove(&s).map(|v| (s, v)))
            .collect())
    }

    /// Change every mapping of `[start, end)` with `change`, walking as Linux's mprotect and
    /// mlock do: the mapping holding `start` must exist (else ENOMEM, nothing changed), each
    /// one is changed in turn (split where the range cuts it; ENOMEM at the count limit) and a
    /// hole stops the walk with ENOMEM, the pieces before it changed.
    pub fn update(&mut self, start: u64, end: u64, change: impl Fn(&mut Vma)) -> Result<(), Errno> {
        let mut at = start;
        let result = loop {
            let Some((s, v)) = self.get(at).map(|(s, v)| (s, *v)) else {
                break Err(Errno::ENOMEM);
            };
            let mut new = v;
            change(&mut new);
            let piece_end = v.end.min(end);
            if new != v {
                // One split at a time, each refused at the limit, as Linux's split_vma: a
                // change cut at both ends may leave the first cut made.
                for cut in [at, piece_end] {
                    if s < cut && cut < v.end {
                        if self.len() >= MAX_MAP_COUNT {
                            // Left unmerged, as Linux leaves them, so the count stays.
                            return Err(Errno::ENOMEM);
                        }
                        self.split(cut);
                    }
                }
                // The splits left the piece at `at` ending at `piece_end`, its file offset
                // moved with it.
                if let Some(piece) = self.map.get_mut(&at) {
                    change(piece);
                }
            }
            at = piece_end;
            if at >= end {
                break Ok(());
            }
        };
        self.merge_around(start, at);
        result
    }

    /// Change every mapping with `change` (which never splits one), merging as needed.
    pub fn update_all(&mut self, change: impl Fn(&mut Vma)) {
        for v in self.map.values_mut() {
            change(v);
        }
        self.merge_around(0, u64::MAX);
    }

    /// Move the end of the mapping at `start` to `new_end` (the space up to it free).
    pub fn extend(&mut self, start: u64, new_end: u64) {
        if let Some(v) = self.map.get_mut(&start) {
            v.end = new_end;
        }
        self.merge_around(start, new_end);
    }

    /// Move the start of the (anonymous) mapping at `start` down to `new_start` (the space
    /// down to it free): a MAP_GROWSDOWN mapping grown by a fault below it.
    pub fn grow_down(&mut self, start: u64, new_start: u64) {
        if let Some(v) = self.map.remove(&start) {
            self.map.insert(new_start, v);
            self.merge_around(new_start, v.end);
        }
    }

    /// The mapping below `va` that no mapping separates from it (Linux's vma_prev of the
    /// mapping above a hole at `va`).
    pub fn prev(&self, va: u64) -> Option<(u64, &Vma)> {
        self.map.range(..va).next_back().map(|(&s, v)| (s, v))
    }

    /// Bytes of mappings inside `[start, end)`.
    pub fn bytes_in(&self, start: u64, end: u64) -> u64 {
        self.map
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(&s, v)| v.end.min(end) - s.max(start))
            .sum()
    }
}

/// `v` rounded up to a page; None past the top of the address space.
pub fn page_up(v: u64) -> Option<u64> {
    v.checked_next_multiple_of(PAGE_4K)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(end: u64, prot: u32) -> Vma {
        Vma {
            end,
            prot,
            kind: Kind::Anon,
            shared: false,
            growsdown: false,
            locked: false,
            file: None,
            onfork: OnFork::Copy,
        }
    }

    #[test]
    fn file_offsets_follow_splits_and_only_continuations_merge() {
        let mut t = Vmas::default();
        let file = |offset| Some(FileRef { id: 7, offset });
        t.insert(
            0x10000,
            Vma {
                file: file(0x5000),
                ..anon(0x14000, 3)
            },
        );
        t.update(0x11000, 0x12000, |v| v.prot = 1).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(0x11000).unwrap().1.file, file(0x6000));
        assert_eq!(t.get(0x13fff).unwrap().1.file, file(0x7000));
        t.update(0x11000, 0x12000, |v| v.prot = 3).unwrap();
        assert_eq!(
            t.len(),
            1,
            "the pieces continue the file: one mapping again"
        );
        let gone = t.remove(0x12000, 0x13000).unwrap();
        assert_eq!(gone[0].1.file, file(0x7000));
        // The same file at an offset that does not continue it stays apart.
        t.insert(
            0x12000,
            Vma {
                file: file(0x9000),
                ..anon(0x13000, 3)
            },
        );
        assert_eq!(t.len(), 3);
        // Another file, or anonymous memory, never merges with it.
        t.remove(0x12000, 0x13000).unwrap();
        t.insert(0x12000, anon(0x13000, 3));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn alike_neighbours_merge_and_splits_come_back_together() {
        let mut t = Vmas::default();
        t.insert(0x1000, anon(0x3000, 3));
        t.insert(0x3000, anon(0x5000, 3));
        assert_eq!(t.len(), 1);
        t.update(0x2000, 0x3000, |v| v.prot = 1).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.get(0x2800).map(|(s, v)| (s, v.end, v.prot)),
            Some((0x2000, 0x3000, 1))
        );
        t.update(0x2000, 0x3000, |v| v.prot = 3).unwrap();
        assert_eq!(t.len(), 1);
        let gone = t.remove(0x2000, 0x3000).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(t.len(), 2);
        assert!(!t.intersects(0x2000, 0x3000));
        assert_eq!(t.update(0x1000, 0x5000, |v| v.prot = 0), Err(Errno::ENOMEM));
        // The piece before the hole changed, as Linux's mprotect leaves it.
        assert_eq!(t.get(0x1000).map(|(_, v)| v.prot), Some(0));
        assert_eq!(t.get(0x3000).map(|(_, v)| v.prot), Some(3));
    }
}
