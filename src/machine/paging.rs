//! The guest page tables the monitor installs before the first instruction, built from
//! `umon_abi::layout`, and a software walk of them (Gva -> Gpa) for the monitor's own use.
//!
//! Tables are never changed after the vCPU first runs: PVM shadows them, and host writes made
//! behind its back would not be seen. Everything the application may touch is mapped up front.
use crate::machine::memory::{GuestMem, MemoryError};
use umon_abi::layout::{
    Area, APP_PHYS_BASE, BOOT_SCRATCH, CORE_EXCEPTION_STACK_TOP, PAGE_TABLES_BASE, PAGE_TABLES_END,
};
use umon_abi::{Gpa, Gva};

/// Present.
pub const PRESENT: u64 = 1 << 0;
/// Writable.
pub const WRITABLE: u64 = 1 << 1;
/// Reachable from CPL3.
pub const USER: u64 = 1 << 2;
/// Large page (2 MiB in a PD, 1 GiB in a PDPT).
pub const HUGE: u64 = 1 << 7;
/// Not executable.
pub const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// 4 KiB.
pub const PAGE_4K: u64 = 1 << 12;
/// 2 MiB.
pub const PAGE_2M: u64 = 1 << 21;
/// 1 GiB.
pub const PAGE_1G: u64 = 1 << 30;

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

/// Why a mapping could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    /// The page-table area is full.
    #[error("guest page tables need more than {max_bytes} bytes (too much guest RAM or too many mappings)")]
    OutOfTables {
        /// Size of the page-table area.
        max_bytes: u64,
    },
    /// A mapping overlaps one that exists.
    #[error("guest address {va:#x} is mapped twice")]
    Overlap {
        /// The address.
        va: u64,
    },
    /// Address or size not aligned to the page size.
    #[error("mapping {va:#x} -> {pa:#x} is not aligned to {page:#x}")]
    Misaligned {
        /// Virtual address.
        va: u64,
        /// Physical address.
        pa: u64,
        /// Page size.
        page: u64,
    },
    /// Guest memory access failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

/// Builds 4-level page tables in guest memory, allocating table pages from a fixed area.
pub struct PageTables {
    root: Gpa,
    next: u64,
    end: u64,
}

impl PageTables {
    /// Start with an empty PML4 at the bottom of the page-table area.
    pub fn new(mem: &GuestMem) -> Result<PageTables, PagingError> {
        Self::with_area(mem, PAGE_TABLES_BASE, PAGE_TABLES_END)
    }

    /// Start with an empty PML4 in `[start, end)` (tests use small areas).
    pub fn with_area(mem: &GuestMem, start: u64, end: u64) -> Result<PageTables, PagingError> {
        let mut pt = PageTables {
            root: Gpa(0),
            next: start,
            end,
        };
        pt.root = pt.alloc(mem)?;
        Ok(pt)
    }

    /// Physical address of the PML4, for CR3.
    pub fn root(&self) -> Gpa {
        self.root
    }

    /// Bytes of table pages used so far.
    pub fn used_bytes(&self) -> u64 {
        self.next - PAGE_TABLES_BASE.min(self.next)
    }

    fn alloc(&mut self, mem: &GuestMem) -> Result<Gpa, PagingError> {
        if self.next + PAGE_4K > self.end {
            return Err(PagingError::OutOfTables {
                max_bytes: PAGE_TABLES_END - PAGE_TABLES_BASE,
            });
        }
        let gpa = Gpa(self.next);
        mem.zero(gpa, PAGE_4K)?;
        self.next += PAGE_4K;
        Ok(gpa)
    }

    /// Map `[va, va + len)` to `[pa, pa + len)` with pages of `page` bytes (4K, 2M or 1G) and the
    /// leaf `flags` (PRESENT is implied). Intermediate entries are permissive; leaves decide.
    pub fn map(
        &mut self,
        mem: &GuestMem,
        va: Gva,
        pa: Gpa,
        len: u64,
        page: u64,
        flags: u64,
    ) -> Result<(), PagingError> {
        let misaligned = PagingError::Misaligned {
            va: va.0,
            pa: pa.0,
            page,
        };
        if !matches!(page, PAGE_4K | PAGE_2M | PAGE_1G)
            || va.0 % page != 0
            || pa.0 % page != 0
            || len % page != 0
        {
            return Err(misaligned);
        }
        let leaf_level = match page {
            PAGE_1G => 2,
            PAGE_2M => 1,
            _ => 0,
        };
        let mut off = 0;
        while off < len {
            let v = va.0 + off;
            let mut table = self.root;
            for level in (leaf_level + 1..4).rev() {
                let slot = Gpa(table.0 + index(v, level) * 8);
                let entry: u64 = mem.read(slot)?;
                table = if entry & PRESENT == 0 {
                    let next = self.alloc(mem)?;
                    mem.write(slot, &(next.0 | PRESENT | WRITABLE | USER))?;
                    next
                } else if entry & HUGE != 0 {
                    return Err(PagingError::Overlap { va: v });
                } else {
                    Gpa(entry & ADDR_MASK)
                };
            }
            let slot = Gpa(table.0 + index(v, leaf_level) * 8);
            if mem.read::<u64>(slot)? & PRESENT != 0 {
                return Err(PagingError::Overlap { va: v });
            }
            let huge = if leaf_level > 0 { HUGE } else { 0 };
            mem.write(slot, &((pa.0 + off) | flags | PRESENT | huge))?;
            off += page;
        }
        Ok(())
    }
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * level)) & 0x1ff
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address.
    pub gpa: Gpa,
    /// The leaf's flags (with USER/WRITABLE folded over all levels, NX or-ed).
    pub flags: u64,
    /// Bytes from `gpa` to the end of its page.
    pub page_left: u64,
}

/// Walk the tables at `root` for `va`; `None` if it is not mapped.
pub fn translate(mem: &GuestMem, root: Gpa, va: Gva) -> Result<Option<Translation>, MemoryError> {
    let canonical = ((va.0 << 16) as i64 >> 16) as u64 == va.0;
    if !canonical {
        return Ok(None);
    }
    let mut table = root;
    let mut flags = WRITABLE | USER;
    let mut nx = 0;
    for level in (0..4).rev() {
        let entry: u64 = mem.read(Gpa(table.0 + index(va.0, level) * 8))?;
        if entry & PRESENT == 0 {
            return Ok(None);
        }
        flags &= entry | !(WRITABLE | USER);
        nx |= entry & NO_EXECUTE;
        let leaf = level == 0 || (entry & HUGE != 0 && level <= 2);
        if leaf {
            let size = 1u64 << (12 + 9 * level);
            let off = va.0 & (size - 1);
            return Ok(Some(Translation {
                gpa: Gpa((entry & ADDR_MASK & !(size - 1)) + off),
                flags: (flags & (WRITABLE | USER)) | PRESENT | nx,
                page_left: size - off,
            }));
        }
        table = Gpa(entry & ADDR_MASK);
    }
    Ok(None)
}

/// Guest-physical ranges the linear windows map read-only: below the scratch page the GDT, IDT,
/// TSS and boot info; above the core's stacks its page tables and its image. The core writes
/// only its stacks and the scratch page through the windows (its own data goes through the VA =
/// PA mapping), so nothing that runs at CPL0 can rewrite its own code or tables through them.
pub const WINDOW_READ_ONLY: [(u64, u64); 2] =
    [(0, BOOT_SCRATCH), (CORE_EXCEPTION_STACK_TOP, APP_PHYS_BASE)];

/// Map all of guest RAM into each linear window (Main, Page, Mempool): supervisor-only, NX,
/// read-only over [`WINDOW_READ_ONLY`], with the largest pages up to `page` that fit. The Debug
/// area stays unmapped.
pub fn map_windows(pt: &mut PageTables, mem: &GuestMem, page: u64) -> Result<(), PagingError> {
    let ram = mem.bytes();
    for area in Area::LINEAR {
        let mut at = 0;
        for (start, end) in WINDOW_READ_ONLY {
            let (start, end) = (start.min(ram), end.min(ram));
            map_largest(
                pt,
                mem,
                area.base(),
                (at, start),
                page,
                WRITABLE | NO_EXECUTE,
            )?;
            map_largest(pt, mem, area.base(), (start, end), page, NO_EXECUTE)?;
            at = end;
        }
        map_largest(pt, mem, area.base(), (at, ram), page, WRITABLE | NO_EXECUTE)?;
    }
    Ok(())
}

/// Map guest-physical `[start, end)` at `base + start` with the largest pages (up to
/// `max_page`) that are aligned and fit.
fn map_largest(
    pt: &mut PageTables,
    mem: &GuestMem,
    base: u64,
    (start, end): (u64, u64),
    max_page: u64,
    flags: u64,
) -> Result<(), PagingError> {
    let mut pa = start;
    while pa + PAGE_4K <= end {
        let size = [PAGE_1G, PAGE_2M, PAGE_4K]
            .into_iter()
            .find(|&p| p <= max_page && pa % p == 0 && pa + p <= end)
            .unwrap_or(PAGE_4K);
        pt.map(mem, Gva(base + pa), Gpa(pa), size, size, flags)?;
        pa += size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use umon_abi::layout::{KERNEL_BASE, PHYS_MEM};

    fn setup(ram: u64, page: u64) -> (GuestMem, PageTables) {
        let mem = GuestMem::new(ram).unwrap();
        let mut pt = PageTables::new(&mem).unwrap();
        map_windows(&mut pt, &mem, page).unwrap();
        pt.map(
            &mem,
            Gva(KERNEL_BASE),
            Gpa(KERNEL_BASE),
            PAGE_2M,
            PAGE_4K,
            0,
        )
        .unwrap();
        (mem, pt)
    }

    #[test]
    fn windows_map_first_last_and_ram_end() {
        for page in [PAGE_2M, PAGE_1G] {
            let ram = 2 << 30;
            let (mem, pt) = setup(ram, page);
            for area in Area::LINEAR {
                let first = translate(&mem, pt.root(), Gva(area.base()))
                    .unwrap()
                    .unwrap();
                assert_eq!(first.gpa, Gpa(0));
                assert_eq!(first.flags & USER, 0, "windows are supervisor-only");
                assert_ne!(first.flags & NO_EXECUTE, 0, "windows are NX");
                for (start, end) in WINDOW_READ_ONLY {
                    for pa in [start, end - 8] {
                        let t = translate(&mem, pt.root(), Gva(area.base() + pa));
                        assert_eq!(t.unwrap().unwrap().flags & WRITABLE, 0, "{pa:#x}");
                    }
                    let after = translate(&mem, pt.root(), Gva(area.base() + end));
                    assert_ne!(after.unwrap().unwrap().flags & WRITABLE, 0, "{end:#x}");
                }
                let last = translate(&mem, pt.root(), Gva(area.base() + ram - 1))
                    .unwrap()
                    .unwrap();
                assert_eq!(last.gpa, Gpa(ram - 1));
                let mid = translate(&mem, pt.root(), Gva(area.base() + 0x1234_5678)).unwrap();
                assert_eq!(mid.unwrap().gpa, Gpa(0x1234_5678));
                assert_eq!(
                    translate(&mem, pt.root(), Gva(area.base() + ram)).unwrap(),
                    None
                );
            }
        }
    }

    #[test]
    fn page0_debug_area_and_noncanonical_are_unmapped() {
        let (mem, pt) = setup(1 << 30, PAGE_2M);
        assert_eq!(translate(&mem, pt.root(), Gva(0)).unwrap(), None);
        assert_eq!(translate(&mem, pt.root(), Gva(0x1000)).unwrap(), None);
        assert_eq!(
            translate(&mem, pt.root(), Gva(Area::Debug.base())).unwrap(),
            None
        );
        assert_eq!(
            translate(&mem, pt.root(), Gva(u64::MAX - 0xfff)).unwrap(),
            None
        );
        assert_eq!(
            translate(&mem, pt.root(), Gva(0x0000_8000_0000_0000)).unwrap(),
            None
        );
    }

    #[test]
    fn core_region_is_identity_mapped() {
        let (mem, pt) = setup(1 << 30, PAGE_2M);
        for va in [KERNEL_BASE, KERNEL_BASE + 0x001f_ffff] {
            let t = translate(&mem, pt.root(), Gva(va)).unwrap().unwrap();
            assert_eq!(t.gpa, Gpa(va));
        }
        assert_eq!(
            translate(&mem, pt.root(), Gva(PHYS_MEM + KERNEL_BASE))
                .unwrap()
                .unwrap()
                .gpa,
            Gpa(KERNEL_BASE)
        );
    }

    #[test]
    fn overlapping_and_misaligned_mappings_are_rejected() {
        let (mem, mut pt) = setup(1 << 30, PAGE_2M);
        let again = pt.map(&mem, Gva(PHYS_MEM), Gpa(0), PAGE_2M, PAGE_2M, 0);
        assert!(matches!(again, Err(PagingError::Overlap { .. })));
        let odd = pt.map(&mem, Gva(0x1234), Gpa(0), PAGE_4K, PAGE_4K, 0);
        assert!(matches!(odd, Err(PagingError::Misaligned { .. })));
    }

    #[test]
    fn running_out_of_table_pages_is_an_error() {
        let mem = GuestMem::new(1 << 30).unwrap();
        let mut pt = PageTables::with_area(&mem, 0x1000, 0x4000).unwrap();
        let r = pt.map(&mem, Gva(0), Gpa(0), 64 * PAGE_2M * 512, PAGE_2M, 0);
        assert!(matches!(r, Err(PagingError::OutOfTables { .. })));
    }
}
