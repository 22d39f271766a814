//! The guest page tables: the ones the monitor installs before the first instruction, built
//! from `umon_abi::layout` ([`PageTables`]), a software walk of them (Gva -> Gpa) for the
//! monitor's own use, and the [`Mapper`], which plans changes to the application half.
//!
//! After the vCPU first runs, the host must not write a table PVM shadows: such writes are not
//! seen. So the `Mapper` only plans: it keeps a mirror of the tables and turns each change into
//! a [`PtBatch`] of host-filled *fresh* table pages (frames that never were tables) and entry
//! stores the guest core makes into live tables, plus the TLB flush they need (measured costs:
//! docs/architecture.md and issue 13's plan). Before the first run a batch may be applied with
//! host writes ([`PtBatch::apply_host`]).
use crate::machine::frames::{Frames, FramesError};
use crate::machine::memory::{GuestMem, MemoryError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use umon_abi::layout::{
    Area, APP_PHYS_BASE, BOOT_SCRATCH, CORE_EXCEPTION_STACK_TOP, CORE_IMAGE_END, KERNEL_BASE,
    PAGE_TABLES_BASE, PAGE_TABLES_END, PERCPU_END, PERCPU_STACKS,
};
use umon_abi::{Gpa, Gva};
use zerocopy::IntoBytes;

/// Present.
pub const PRESENT: u64 = 1 << 0;
/// Writable.
pub const WRITABLE: u64 = 1 << 1;
/// Reachable from CPL3.
pub const USER: u64 = 1 << 2;
/// Accessed: set by the CPU at the first use of an entry (or here, in advance).
pub const ACCESSED: u64 = 1 << 5;
/// Dirty (leaves): set by the CPU at the first write through it (or here, in advance).
pub const DIRTY: u64 = 1 << 6;
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
    /// The range is not the application's to map: outside the lower half, or over the core.
    #[error("guest range {va:#x}+{len:#x} is not application address space")]
    NotApplication {
        /// First address.
        va: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The target frames do not cover the range.
    #[error("{pages} target frames for a mapping of {len:#x} bytes")]
    TargetLength {
        /// Frames given.
        pages: usize,
        /// Bytes to map.
        len: u64,
    },
    /// No frame for a new table.
    #[error(transparent)]
    Frames(#[from] FramesError),
}

/// Builds 4-level page tables before start, allocating table pages from a fixed area of guest
/// RAM. The pages are built in host memory and reach the guest in one copy
/// ([`PageTables::write`]): entry by entry through vm-memory's address translation, the build
/// was about a tenth of `umon run hello`'s start-up (issue 13 plan §6).
pub struct PageTables {
    /// Guest-physical address of `pages[0]` (the PML4).
    base: u64,
    /// End of the area the pages may take.
    end: u64,
    /// The table pages, `pages[i]` at `base + i * 4 KiB`.
    pages: Vec<[u64; ENTRIES]>,
}

impl PageTables {
    /// Start with an empty PML4 at the bottom of the page-table area.
    pub fn new(mem: &GuestMem) -> Result<PageTables, PagingError> {
        Self::with_area(mem, PAGE_TABLES_BASE, PAGE_TABLES_END)
    }

    /// Start with an empty PML4 in `[start, end)` (tests use small areas), which must be guest
    /// RAM.
    pub fn with_area(mem: &GuestMem, start: u64, end: u64) -> Result<PageTables, PagingError> {
        mem.check_range(Gpa(start), end.saturating_sub(start))?;
        let mut pt = PageTables {
            base: start,
            end,
            pages: Vec::with_capacity(16),
        };
        pt.alloc()?;
        Ok(pt)
    }

    /// Physical address of the PML4, for CR3.
    pub fn root(&self) -> Gpa {
        Gpa(self.base)
    }

    /// Bytes of table pages used so far.
    pub fn used_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE_4K
    }

    /// Copy the tables into guest memory: what is mapped so far becomes what the guest sees.
    pub fn write(&self, mem: &GuestMem) -> Result<(), MemoryError> {
        mem.write_bytes(Gpa(self.base), self.pages.as_slice().as_bytes())
    }

    fn alloc(&mut self) -> Result<u64, PagingError> {
        let gpa = self.base + self.used_bytes();
        if gpa + PAGE_4K > self.end {
            return Err(PagingError::OutOfTables {
                max_bytes: PAGE_TABLES_END - PAGE_TABLES_BASE,
            });
        }
        self.pages.push([0; ENTRIES]);
        Ok(gpa)
    }

    /// The host copy of the table page at `gpa` (one this builder allocated).
    fn page(&mut self, gpa: u64) -> &mut [u64; ENTRIES] {
        &mut self.pages[((gpa - self.base) / PAGE_4K) as usize]
    }

    /// Map `[va, va + len)` to `[pa, pa + len)` with pages of `page` bytes (4K, 2M or 1G) and the
    /// leaf `flags` (PRESENT is implied). Intermediate entries are permissive; leaves decide.
    /// The guest sees the result after [`PageTables::write`]; `_mem` is not used (the tables are
    /// in host memory until then).
    pub fn map(
        &mut self,
        _mem: &GuestMem,
        va: Gva,
        pa: Gpa,
        len: u64,
        page: u64,
        flags: u64,
    ) -> Result<(), PagingError> {
        self.map_range(va, pa, len, page, flags)
    }

    fn map_range(
        &mut self,
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
        let huge = if leaf_level > 0 { HUGE } else { 0 };
        let mut off = 0;
        while off < len {
            let v = va.0 + off;
            let mut table = self.base;
            for level in (leaf_level + 1..4).rev() {
                let i = index(v, level) as usize;
                let entry = self.page(table)[i];
                table = if entry & PRESENT == 0 {
                    let next = self.alloc()?;
                    self.page(table)[i] = next | LINK;
                    next
                } else if entry & HUGE != 0 {
                    return Err(PagingError::Overlap { va: v });
                } else {
                    entry & ADDR_MASK
                };
            }
            // One table's run of leaves at a time.
            let leaves = self.page(table);
            let first = index(v, leaf_level) as usize;
            let n = ((len - off) / page).min((ENTRIES - first) as u64) as usize;
            for (k, slot) in leaves[first..first + n].iter_mut().enumerate() {
                if *slot & PRESENT != 0 {
                    return Err(PagingError::Overlap {
                        va: v + k as u64 * page,
                    });
                }
                // Accessed (and dirty where writable) in advance: nothing here reads them, and
                // the CPU (or PVM's shadow MMU) need not set them at the first use.
                let dirty = if flags & WRITABLE != 0 { DIRTY } else { 0 };
                *slot = (pa.0 + off + k as u64 * page) | flags | PRESENT | ACCESSED | dirty | huge;
            }
            off += n as u64 * page;
        }
        Ok(())
    }

    /// Make the PML4 slots of `[to, to + len)` link to the same lower tables as those of
    /// `[from, from + len)`: the same mappings at another address, without more tables. Both
    /// must be 512 GiB-aligned and the target slots empty.
    fn share(&mut self, from: u64, to: u64, len: u64) -> Result<(), PagingError> {
        let slot = span(3);
        if from % slot != 0 || to % slot != 0 {
            return Err(PagingError::Misaligned {
                va: to,
                pa: from,
                page: slot,
            });
        }
        let base = self.base;
        let pml4 = self.page(base);
        for k in 0..len.div_ceil(slot) {
            let (src, dst) = (
                index(from + k * slot, 3) as usize,
                index(to + k * slot, 3) as usize,
            );
            if pml4[dst] & PRESENT != 0 {
                return Err(PagingError::Overlap { va: to + k * slot });
            }
            pml4[dst] = pml4[src];
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

/// The PML4 of the boot-time tables: the first page [`PageTables::new`] takes.
pub const PML4: u64 = PAGE_TABLES_BASE;

/// Guest-physical ranges the linear windows map read-only: below the scratch page the GDT, IDT,
/// TSS and boot info; above the boot stacks the page tables, the core image and the per-vCPU
/// GDTs and TSSs. The core writes only its stacks (the boot ones and the per-vCPU exception
/// stacks from `PERCPU_STACKS`, which end at the application's memory), the scratch page and
/// the PML4 through the windows (its own data goes through the VA = PA mapping), so nothing that
/// runs at CPL0 can rewrite its own code or the tables below a PML4 slot through them. The PML4
/// is writable for `umon_pt_apply` (`umon_abi::pt`): a new application PML4 slot (one per
/// 512 GiB) is one store there; the application's lower tables come from `Frames`.
pub const WINDOW_READ_ONLY: [(u64, u64); 3] = [
    (0, BOOT_SCRATCH),
    (CORE_EXCEPTION_STACK_TOP, PML4),
    (PML4 + PAGE_4K, PERCPU_STACKS),
];

const _: () = assert!(PERCPU_END == APP_PHYS_BASE);

/// Map all of guest RAM into each linear window (Main, Page, Mempool): supervisor-only, NX,
/// read-only over [`WINDOW_READ_ONLY`], with the largest pages up to `page` that fit. The Debug
/// area stays unmapped. The windows map the same RAM with the same flags, so the first one's
/// tables serve all three: the others' PML4 slots link to them (the tables lie in the
/// read-only area, so no window can change what another maps; accessed and dirty bits are
/// shared, which nothing reads).
pub fn map_windows(pt: &mut PageTables, mem: &GuestMem, page: u64) -> Result<(), PagingError> {
    let ram = mem.bytes();
    let [first, others @ ..] = Area::LINEAR;
    let mut at = 0;
    for (start, end) in WINDOW_READ_ONLY {
        let (start, end) = (start.min(ram), end.min(ram));
        map_largest(pt, first.base(), (at, start), page, WRITABLE | NO_EXECUTE)?;
        map_largest(pt, first.base(), (start, end), page, NO_EXECUTE)?;
        at = end;
    }
    map_largest(pt, first.base(), (at, ram), page, WRITABLE | NO_EXECUTE)?;
    for area in others {
        pt.share(first.base(), area.base(), ram)?;
    }
    Ok(())
}

/// Map guest-physical `[start, end)` at `base + start` with the largest pages (up to
/// `max_page`) that are aligned and fit.
fn map_largest(
    pt: &mut PageTables,
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
        pt.map_range(Gva(base + pa), Gpa(pa), size, size, flags)?;
        pa += size;
    }
    Ok(())
}

/// End of the lower canonical half: the application's virtual addresses are below it.
pub const LOWER_HALF_END: u64 = 1 << 47;
/// Entries per table page.
const ENTRIES: usize = 512;
/// The flags of a link to a lower table: permissive, the leaves decide.
const LINK: u64 = PRESENT | WRITABLE | USER | ACCESSED;
/// The leaf bits a [`Perm`] decides.
const PERM_BITS: u64 = PRESENT | WRITABLE | USER | NO_EXECUTE;
/// A live table receiving more stores than this in one batch is replaced instead: a fresh copy
/// filled by the host and linked with one store (each guest store into a shadowed table costs
/// about 7 us on PVM, the link about as much as one; measured, issue 13 plan M3/M17).
pub const REPLACE_THRESHOLD: usize = 8;
/// Table frames below which a live table is no longer replaced just to save stores.
pub const REPLACE_SPARE_BYTES: u64 = 64 * PAGE_4K;
/// A batch invalidating more pages than this reloads CR3 instead (invlpg about 1.6 us each on
/// PVM, a CR3 reload no measurable cost; CR4.PGE is off, so the reload flushes everything).
pub const INVLPG_MAX: usize = 32;

/// What the application may do with a page. x86 cannot refuse reads of a present page, so
/// write or exec imply read; no right at all is PROT_NONE: the entry keeps its frame with the
/// present bit clear, as Linux's PROT_NONE entries do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perm {
    /// PROT_READ.
    pub read: bool,
    /// PROT_WRITE.
    pub write: bool,
    /// PROT_EXEC.
    pub exec: bool,
}

impl Perm {
    /// PROT_NONE.
    pub const NONE: Perm = Perm {
        read: false,
        write: false,
        exec: false,
    };

    /// The leaf bits. USER is always set, so even a PROT_NONE leaf is never 0 (0 = no page).
    pub fn leaf_bits(self) -> u64 {
        let mut bits = USER;
        if self.read || self.write || self.exec {
            bits |= PRESENT;
        }
        if self.write {
            bits |= WRITABLE;
        }
        if !self.exec {
            bits |= NO_EXECUTE;
        }
        bits
    }

    /// A new leaf's bits: [`Perm::leaf_bits`], accessed (and dirty where writable) in
    /// advance. Nothing reads them, and the CPU (on PVM, the shadow MMU, at ~5-15 us a first
    /// touch) need not set them at the first use; measured 2-5% off the start of a hello or
    /// python3 under umon on PVM.
    pub fn entry_bits(self) -> u64 {
        let bits = self.leaf_bits();
        match bits & PRESENT != 0 {
            true if self.write => bits | ACCESSED | DIRTY,
            true => bits | ACCESSED,
            false => bits,
        }
    }
}

/// The frames a mapping uses.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Physically contiguous from this address: 2 MiB leaves where a 2 MiB-aligned piece
    /// lands on a 2 MiB-aligned frame.
    Contiguous(Gpa),
    /// One 4 KiB frame per page, in order (2 MiB leaves where 512 of them are contiguous and
    /// aligned).
    Pages(&'a [Gpa]),
}

impl Target<'_> {
    /// Frame of the page `off` bytes into the mapping.
    fn pa(&self, off: u64) -> u64 {
        match self {
            Target::Contiguous(pa) => pa.0 + off,
            Target::Pages(pages) => pages[(off / PAGE_4K) as usize].0,
        }
    }

    /// Whether the 2 MiB from `off` are one aligned, contiguous frame range.
    fn huge_at(&self, off: u64) -> bool {
        let first = self.pa(off);
        if first % PAGE_2M != 0 {
            return false;
        }
        match self {
            Target::Contiguous(_) => true,
            Target::Pages(pages) => {
                let i = (off / PAGE_4K) as usize;
                pages[i..i + ENTRIES]
                    .iter()
                    .enumerate()
                    .all(|(k, p)| p.0 == first + k as u64 * PAGE_4K)
            }
        }
    }
}

/// How the TLBs must be flushed after a batch's stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Nothing: only entries that were not present changed (x86 caches no such entries).
    None,
    /// `invlpg` each of these addresses (one per changed present leaf or link).
    Pages(Vec<Gva>),
    /// Reload CR3.
    All,
}

/// The effect of [`Mapper`] changes, to apply in this order: write `fills` (host), make
/// `stores` (the guest core, or the host before the first run), `flush`, and once every vCPU
/// has flushed, give `retired` back to [`Frames`] (as data frames: they were tables).
#[derive(Debug)]
pub struct PtBatch {
    /// Fresh table pages and their whole contents: frames that never were tables, linked only
    /// by this batch's stores, so host writes to them are seen.
    pub fills: Vec<(Gpa, Box<[u64; ENTRIES]>)>,
    /// Entries of live tables: (address of the entry, value), in order.
    pub stores: Vec<(Gpa, u64)>,
    /// The flush after the stores.
    pub flush: Flush,
    /// [`Frames`]' table frames the stores unlink.
    pub retired: Vec<Gpa>,
}

impl PtBatch {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.fills.is_empty()
            && self.stores.is_empty()
            && self.flush == Flush::None
            && self.retired.is_empty()
    }

    /// The guest's part, as the core's routine takes it (umon_abi::pt): the stores as (GVA of
    /// the entry in the Main window, value), and the addresses to `invlpg`; a CR3 reload goes
    /// with `flush`.
    pub fn guest_ops(&self) -> (Vec<(u64, u64)>, Vec<u64>) {
        let stores = self
            .stores
            .iter()
            .map(|&(entry, value)| (Area::Main.base() + entry.0, value))
            .collect();
        let invlpgs = match &self.flush {
            Flush::Pages(pages) => pages.iter().map(|va| va.0).collect(),
            _ => Vec::new(),
        };
        (stores, invlpgs)
    }

    /// Apply the fills and stores with host writes: only while no vCPU has run (PVM would not
    /// see them later). One write per table page.
    pub fn apply_host(&self, mem: &GuestMem) -> Result<(), MemoryError> {
        for (gpa, entries) in &self.fills {
            mem.write(*gpa, &**entries)?;
        }
        for (entry, value) in &self.stores {
            mem.write(*entry, value)?;
        }
        Ok(())
    }
}

/// One table page in the mirror.
#[derive(Clone)]
struct Table {
    /// 0 = PT, 1 = PD, 2 = PDPT, 3 = PML4.
    level: u32,
    /// First virtual address it covers.
    va: u64,
    entries: Box<[u64; ENTRIES]>,
}

/// What the current batch has done so far.
#[derive(Clone, Default)]
struct Pending {
    /// Tables created in this batch: filled by the host at commit.
    fresh: BTreeSet<u64>,
    /// Those of them that split a 2 MiB leaf: their first entries were reachable before.
    split: BTreeSet<u64>,
    /// Entry address -> value, for entries of live tables.
    stores: BTreeMap<u64, u64>,
    /// Entry address -> (value when the batch began, the address the entry maps), for every
    /// entry changed: what decides the invalidations at commit.
    orig: BTreeMap<u64, (u64, u64)>,
    flush_all: bool,
    retired: Vec<Gpa>,
}

/// The application half's page tables (lower-half PML4 slots): a mirror of every table page,
/// and the changes since the last [`Mapper::commit`]. Plans only; the caller applies the
/// [`PtBatch`]. The core's own 2 MiB (`KERNEL_BASE..CORE_IMAGE_END`) is never touched.
///
/// Tables are not freed when they empty (as Linux keeps them until the VMA goes), except an
/// empty PT a 2 MiB leaf replaces: that bounds their cost to one page per 2 MiB of virtual
/// memory ever mapped in 4 KiB pages and keeps recycled table frames (never refillable,
/// [`Frames`]) rare.
#[derive(Clone)]
pub struct Mapper {
    root: Gpa,
    tables: HashMap<u64, Table>,
    /// A vCPU has run: stores are made by the guest, so batch them (replacement tables).
    live: bool,
    /// Replace a table a batch stores into often (REPLACE_THRESHOLD) to save stores. Off
    /// with several vCPUs: each replacement uses up a frame that can never be a table again,
    /// and many threads churning mappings ran the table frames out (tests/threads_hostile.rs).
    pub replace_to_save: bool,
    pending: Pending,
}

/// Index of `va`'s entry in its table at `level`.
fn slot(va: u64, level: u32) -> usize {
    index(va, level) as usize
}

/// Bytes one entry at `level` covers.
fn span(level: u32) -> u64 {
    1 << (12 + 9 * level)
}

/// Whether a nonzero entry at `level` is a leaf (a held PROT_NONE leaf has no PRESENT bit).
fn is_leaf(entry: u64, level: u32) -> bool {
    level == 0 || entry & PRESENT == 0 || entry & HUGE != 0
}

impl Mapper {
    /// A mapper over the tables at `root`, reading the lower half of what is there already
    /// (the tables built before start). Tables read here count as live.
    pub fn adopt(mem: &GuestMem, root: Gpa) -> Result<Mapper, MemoryError> {
        let mut m = Mapper {
            root,
            tables: HashMap::new(),
            live: false,
            replace_to_save: true,
            pending: Pending::default(),
        };
        let mut todo = vec![(root.0, 3u32, 0u64)];
        while let Some((gpa, level, va)) = todo.pop() {
            if m.tables.contains_key(&gpa) {
                // Shared or looping tables are not something the builder makes; read each once.
                continue;
            }
            let entries: Box<[u64; ENTRIES]> = Box::new(mem.read(Gpa(gpa))?);
            if level > 0 {
                let upto = if level == 3 { ENTRIES / 2 } else { ENTRIES };
                for (i, &e) in entries.iter().enumerate().take(upto) {
                    if e != 0 && !is_leaf(e, level) {
                        todo.push((e & ADDR_MASK, level - 1, va + i as u64 * span(level)));
                    }
                }
            }
            m.tables.insert(gpa, Table { level, va, entries });
        }
        Ok(m)
    }

    /// The PML4 (CR3).
    pub fn root(&self) -> Gpa {
        self.root
    }

    /// From now on the guest makes the stores: replace tables that a batch would store into
    /// too often, and flush.
    pub fn set_live(&mut self) {
        self.live = true;
    }

    /// The leaf entry for `va` and its level, PROT_NONE leaves included.
    fn leaf(&self, va: u64) -> Option<(u64, u32)> {
        let mut table = self.tables.get(&self.root.0)?;
        loop {
            let e = table.entries[slot(va, table.level)];
            if e == 0 {
                return None;
            }
            if is_leaf(e, table.level) {
                return Some((e, table.level));
            }
            table = self.tables.get(&(e & ADDR_MASK))?;
        }
    }

    /// Where `va` goes and with what rights, as the guest's walk will see it once the
    /// committed batches are applied; `None` if not present (PROT_NONE included).
    pub fn translate(&self, va: Gva) -> Option<Translation> {
        let (e, level) = self.leaf(va.0)?;
        if e & PRESENT == 0 {
            return None;
        }
        let size = span(level);
        let off = va.0 & (size - 1);
        Some(Translation {
            gpa: Gpa((e & ADDR_MASK & !(size - 1)) + off),
            flags: e & PERM_BITS,
            page_left: size - off,
        })
    }

    /// The frame behind `va` if a page is there, PROT_NONE or not (mincore, munmap).
    pub fn frame(&self, va: Gva) -> Option<Gpa> {
        let (e, level) = self.leaf(va.0)?;
        let size = span(level);
        Some(Gpa(
            (e & ADDR_MASK & !(size - 1)) + (va.0 & (size - 1) & !(PAGE_4K - 1))
        ))
    }

    fn check_range(va: Gva, len: u64) -> Result<u64, PagingError> {
        let not_app = PagingError::NotApplication { va: va.0, len };
        let end =
            va.0.checked_add(len)
                .ok_or(PagingError::NotApplication { va: va.0, len })?;
        if va.0 % PAGE_4K != 0 || len % PAGE_4K != 0 || len == 0 {
            return Err(PagingError::Misaligned {
                va: va.0,
                pa: 0,
                page: PAGE_4K,
            });
        }
        if end > LOWER_HALF_END || (va.0 < CORE_IMAGE_END && end > KERNEL_BASE) {
            return Err(not_app);
        }
        Ok(end)
    }

    /// The table at `level` covering `va`, if the walk gets there.
    fn table_at(&self, va: u64, level: u32) -> Option<u64> {
        let mut gpa = self.root.0;
        for l in (level + 1..4).rev() {
            let e = self.tables.get(&gpa)?.entries[slot(va, l)];
            if e == 0 || is_leaf(e, l) {
                return None;
            }
            gpa = e & ADDR_MASK;
        }
        Some(gpa)
    }

    fn entry(&self, table: u64, i: usize) -> u64 {
        self.tables.get(&table).map_or(0, |t| t.entries[i])
    }

    /// Change one entry, recording the store (live table) and the invalidation (it was
    /// present).
    fn set(&mut self, table: u64, i: usize, value: u64) {
        let Some(t) = self.tables.get_mut(&table) else {
            return;
        };
        let old = std::mem::replace(&mut t.entries[i], value);
        if old == value {
            return;
        }
        let fresh = self.pending.fresh.contains(&table);
        if fresh && !self.pending.split.contains(&table) {
            // Unreachable when the batch began: nothing to store, nothing to invalidate.
            return;
        }
        let va = t.va + i as u64 * span(t.level);
        self.pending
            .orig
            .entry(table + i as u64 * 8)
            .or_insert((old, va));
        if !fresh {
            self.pending.stores.insert(table + i as u64 * 8, value);
        }
    }

    /// A fresh table at `level` for `va` with `entries`, linked from `parent[i]`.
    fn add_table(
        &mut self,
        gpa: Gpa,
        level: u32,
        va: u64,
        entries: Box<[u64; ENTRIES]>,
        (parent, i): (u64, usize),
    ) {
        let va = va & !(span(level + 1) - 1);
        self.tables.insert(gpa.0, Table { level, va, entries });
        self.pending.fresh.insert(gpa.0);
        self.set(parent, i, gpa.0 | LINK);
    }

    /// Unlink-to-be table `gpa`: out of the mirror, its pending stores dropped, its frame
    /// retired.
    fn retire(&mut self, gpa: u64) {
        self.tables.remove(&gpa);
        self.pending.fresh.remove(&gpa);
        self.pending.split.remove(&gpa);
        self.drop_stores(gpa);
        self.retire_frame(gpa);
    }

    /// Forget the pending stores into table `gpa` (unlinked, or replaced by a copy).
    fn drop_stores(&mut self, gpa: u64) {
        let keys: Vec<u64> = self
            .pending
            .stores
            .range(gpa..gpa + PAGE_4K)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.pending.stores.remove(&k);
        }
    }

    /// The PD covering `va`, creating the PDPT and PD from `pool` where missing.
    fn ensure_pd(&mut self, va: u64, pool: &mut Vec<Gpa>) -> Option<u64> {
        let mut gpa = self.root.0;
        for level in [3, 2] {
            let i = slot(va, level);
            let e = self.entry(gpa, i);
            gpa = if e == 0 {
                let new = pool.pop()?;
                self.add_table(new, level - 1, va, Box::new([0; ENTRIES]), (gpa, i));
                new.0
            } else if is_leaf(e, level) {
                return None;
            } else {
                e & ADDR_MASK
            };
        }
        Some(gpa)
    }

    /// Replace the 2 MiB leaf at `pd[i]` by a fresh PT of 512 leaves with the same frames and
    /// rights; returns the PT.
    fn split(&mut self, pd: u64, i: usize, pool: &mut Vec<Gpa>) -> Option<u64> {
        let leaf = self.entry(pd, i);
        let va = self.tables.get(&pd)?.va + i as u64 * PAGE_2M;
        let pt = pool.pop()?;
        let base = leaf & ADDR_MASK & !(PAGE_2M - 1);
        let mut entries = Box::new([0u64; ENTRIES]);
        for (k, e) in entries.iter_mut().enumerate() {
            *e = (base + k as u64 * PAGE_4K) | (leaf & (PERM_BITS | ACCESSED | DIRTY));
        }
        self.add_table(pt, 0, va, entries, (pd, i));
        self.pending.split.insert(pt.0);
        Some(pt.0)
    }

    /// The 2 MiB slots of `[va, end)`: (slot base, first, end) of the part in each.
    fn slots(va: u64, end: u64) -> impl Iterator<Item = (u64, u64, u64)> {
        let first = va & !(PAGE_2M - 1);
        (first..end)
            .step_by(PAGE_2M as usize)
            .map(move |s| (s, s.max(va), (s + PAGE_2M).min(end)))
    }

    /// The 2 MiB slots of `[va, end)` with something in their PD entry, skipping whole
    /// 512 GiB and 1 GiB pieces without tables: a hostile munmap of the whole half costs one
    /// step per table, not per 2 MiB.
    fn populated_slots(&self, va: u64, end: u64) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        let mut s = va & !(PAGE_2M - 1);
        while s < end {
            let mut table = Some(self.root.0);
            let mut step = PAGE_2M;
            for level in [3, 2, 1] {
                let e = table.map_or(0, |t| self.entry(t, slot(s, level)));
                if e == 0 {
                    step = span(level);
                    table = None;
                    break;
                }
                if level > 1 && is_leaf(e, level) {
                    step = span(level);
                    table = None;
                    break;
                }
                table = Some(e & ADDR_MASK);
            }
            if table.is_some() {
                out.push((s, s.max(va), (s + PAGE_2M).min(end)));
            }
            s = (s & !(step - 1)) + step;
        }
        out
    }

    /// Map `[va, va + len)` to `target` with `perm`. Every page of the range must be unmapped
    /// (MAP_FIXED unmaps first). On an error nothing changed.
    pub fn map(
        &mut self,
        va: Gva,
        len: u64,
        target: Target<'_>,
        perm: Perm,
        frames: &mut Frames,
    ) -> Result<(), PagingError> {
        let end = Self::check_range(va, len)?;
        match target {
            Target::Pages(p)
                if p.len() as u64 != len / PAGE_4K || p.iter().any(|g| g.0 % PAGE_4K != 0) =>
            {
                return Err(PagingError::TargetLength {
                    pages: p.len(),
                    len,
                })
            }
            Target::Contiguous(pa) if pa.0 % PAGE_4K != 0 => {
                return Err(PagingError::Misaligned {
                    va: va.0,
                    pa: pa.0,
                    page: PAGE_4K,
                })
            }
            _ => {}
        }
        // Check and count first, so that no error leaves half a mapping.
        let huge = |s: u64, a: u64, e: u64| a == s && e == s + PAGE_2M && target.huge_at(s - va.0);
        let mut need = 0;
        let mut new_upper = BTreeSet::new();
        for (s, a, e) in Self::slots(va.0, end) {
            for level in [2, 1] {
                if self.table_at(s, level).is_none()
                    && new_upper.insert((level, s & !(span(level + 1) - 1)))
                {
                    need += 1;
                }
            }
            match self.table_at(s, 0) {
                Some(pt) => {
                    let t = &self.tables[&pt];
                    if let Some(p) = (a..e)
                        .step_by(PAGE_4K as usize)
                        .find(|&p| t.entries[slot(p, 0)] != 0)
                    {
                        return Err(PagingError::Overlap { va: p });
                    }
                }
                None if self.leaf(s).is_some() => return Err(PagingError::Overlap { va: a }),
                None if !huge(s, a, e) => need += 1,
                None => {}
            }
        }
        let mut pool = frames.alloc_tables(need)?;
        for (s, a, e) in Self::slots(va.0, end) {
            let pd = self
                .ensure_pd(s, &mut pool)
                .ok_or(PagingError::Overlap { va: a })?;
            let i = slot(s, 1);
            let pde = self.entry(pd, i);
            if huge(s, a, e) {
                if pde != 0 {
                    // An empty PT (checked): a 2 MiB leaf replaces it.
                    self.retire(pde & ADDR_MASK);
                }
                self.set(pd, i, target.pa(s - va.0) | perm.entry_bits() | HUGE);
                continue;
            }
            let pt = if pde == 0 {
                let new = pool.pop().ok_or(PagingError::Overlap { va: a })?;
                self.add_table(new, 0, s, Box::new([0; ENTRIES]), (pd, i));
                new.0
            } else {
                pde & ADDR_MASK
            };
            for p in (a..e).step_by(PAGE_4K as usize) {
                self.set(pt, slot(p, 0), target.pa(p - va.0) | perm.entry_bits());
            }
        }
        debug_assert!(pool.is_empty());
        Ok(())
    }

    /// Tables needed to split the 2 MiB leaves `[va, end)` covers only in part (but those
    /// `unchanged` says the edit leaves as they are).
    fn splits_needed(&self, va: u64, end: u64, unchanged: &impl Fn(u64) -> bool) -> usize {
        self.populated_slots(va, end)
            .into_iter()
            .filter(|&(s, a, e)| {
                (a, e) != (s, s + PAGE_2M)
                    && self.table_at(s, 0).is_none()
                    && self
                        .leaf(s)
                        .is_some_and(|(pde, level)| level == 1 && !unchanged(pde))
            })
            .count()
    }

    /// The unmapped pieces of `[va, va + len)` (no leaf, PROT_NONE leaves count as mapped),
    /// ascending and merged: a walk per table-sized step, not per page.
    pub fn holes(&self, va: Gva, len: u64) -> Vec<(Gva, u64)> {
        let end = va.0.saturating_add(len);
        let mut out: Vec<(Gva, u64)> = Vec::new();
        let mut at = va.0;
        while at < end {
            // The span of the leaf at `at`, or of the empty entry (or missing table) below
            // which nothing is mapped.
            let mut table = self.tables.get(&self.root.0);
            let (mapped, step) = loop {
                let Some(t) = table else {
                    break (false, span(0));
                };
                let e = t.entries[slot(at, t.level)];
                if e == 0 {
                    break (false, span(t.level));
                }
                if is_leaf(e, t.level) {
                    break (true, span(t.level));
                }
                table = self.tables.get(&(e & ADDR_MASK));
            };
            let next = ((at & !(step - 1)) + step).min(end);
            if !mapped {
                match out.last_mut() {
                    Some((s, n)) if s.0 + *n == at => *n += next - at,
                    _ => out.push((Gva(at), next - at)),
                }
            }
            at = next;
        }
        out
    }

    /// Apply `f` to every page leaf in `[va, end)` (holes skipped), splitting 2 MiB leaves
    /// that are covered only in part, unless `unchanged` says the edit keeps such a leaf as
    /// it is (a split table is kept for good and costs a frame). `f` gets the old leaf and
    /// its size, returns the new.
    fn edit(
        &mut self,
        va: u64,
        end: u64,
        frames: &mut Frames,
        unchanged: impl Fn(u64) -> bool,
        mut f: impl FnMut(u64, u64) -> u64,
    ) -> Result<(), PagingError> {
        let mut pool = frames.alloc_tables(self.splits_needed(va, end, &unchanged))?;
        for (s, a, e) in self.populated_slots(va, end) {
            let Some(pd) = self.table_at(s, 1) else {
                continue;
            };
            let i = slot(s, 1);
            let pde = self.entry(pd, i);
            if pde == 0 {
                continue;
            }
            let pt = if is_leaf(pde, 1) {
                if (a, e) != (s, s + PAGE_2M) && unchanged(pde) {
                    continue;
                }
                if (a, e) == (s, s + PAGE_2M) {
                    let new = f(pde, PAGE_2M);
                    self.set(pd, i, new);
                    continue;
                }
                self.split(pd, i, &mut pool)
                    .ok_or(PagingError::Overlap { va: a })?
            } else {
                pde & ADDR_MASK
            };
            for p in (a..e).step_by(PAGE_4K as usize) {
                let old = self.entry(pt, slot(p, 0));
                if old != 0 {
                    let new = f(old, PAGE_4K);
                    self.set(pt, slot(p, 0), new);
                }
            }
        }
        Ok(())
    }

    /// Give the pages of `[va, va + len)` the rights `perm` (unmapped pages stay unmapped).
    pub fn protect(
        &mut self,
        va: Gva,
        len: u64,
        perm: Perm,
        frames: &mut Frames,
    ) -> Result<(), PagingError> {
        let end = Self::check_range(va, len)?;
        let bits = perm.leaf_bits();
        self.edit(
            va.0,
            end,
            frames,
            |old| (old & !PERM_BITS) | bits == old,
            |old, _| (old & !PERM_BITS) | bits,
        )
    }

    /// Unmap `[va, va + len)`; returns the frames it mapped, (address, bytes), merged where
    /// contiguous. The caller frees those it owns after the batch is applied and flushed.
    pub fn unmap(
        &mut self,
        va: Gva,
        len: u64,
        frames: &mut Frames,
    ) -> Result<Vec<(Gpa, u64)>, PagingError> {
        let end = Self::check_range(va, len)?;
        let mut gone: Vec<(Gpa, u64)> = Vec::new();
        self.edit(
            va.0,
            end,
            frames,
            |_| false,
            |old, size| {
                let pa = old & ADDR_MASK & !(size - 1);
                match gone.last_mut() {
                    Some((last, n)) if last.0 + *n == pa => *n += size,
                    _ => gone.push((Gpa(pa), size)),
                }
                0
            },
        )?;
        Ok(gone)
    }

    /// Close the batch: once live, replace tables that would take more than
    /// [`REPLACE_THRESHOLD`] stores, and boot-time tables the core cannot write (bottom-up,
    /// fresh frames from `frames`; without one the stores stay, and for a boot-time table
    /// the core's store would fault: frames are that short only when the app is out of
    /// memory anyway), then collect the fills and choose the flush.
    pub fn commit(&mut self, frames: &mut Frames) -> PtBatch {
        self.commit_within(frames, usize::MAX)
    }

    /// [`Mapper::commit`] for a batch area that holds `max_ops` guest ops: a batch that
    /// would not fit reloads CR3 instead of its `invlpg`s and replaces every table it stores
    /// into, bottom-up, so that its stores end up in the PML4 alone (one per 512 GiB slot
    /// touched; more than `max_ops` of those only a batch over that many slots has).
    pub fn commit_within(&mut self, frames: &mut Frames, max_ops: usize) -> PtBatch {
        // A value changed back within the batch needs no store.
        let orig = std::mem::take(&mut self.pending.orig);
        self.pending
            .stores
            .retain(|e, v| orig.get(e).is_none_or(|o| o.0 != *v));
        // Invalidate what was present when the batch began and is different now (a retired
        // table's entries count as changed). The fresh PT of a split starts with the 2 MiB
        // leaf's pages, so its changed pages are invalidated too: invlpg of a page drops any
        // TLB entry translating it, of either size.
        let invalidate: BTreeSet<u64> = orig
            .iter()
            .filter(|(&entry, &(old, _))| {
                let now = self
                    .tables
                    .get(&(entry & !(PAGE_4K - 1)))
                    .map(|t| t.entries[((entry % PAGE_4K) / 8) as usize]);
                old & PRESENT != 0 && now != Some(old)
            })
            .map(|(_, &(_, va))| va)
            .collect();
        let invlpgs = if invalidate.len() > INVLPG_MAX {
            0
        } else {
            invalidate.len()
        };
        let tight = self.pending.stores.len() + invlpgs > max_ops;
        if tight {
            self.pending.flush_all = true;
        }
        let threshold = if tight { 0 } else { REPLACE_THRESHOLD };
        if self.live {
            for level in 0..3 {
                let mut per_table: BTreeMap<u64, usize> = BTreeMap::new();
                for entry in self.pending.stores.keys() {
                    let table = entry & !(PAGE_4K - 1);
                    if self.tables.get(&table).is_some_and(|t| t.level == level) {
                        *per_table.entry(table).or_default() += 1;
                    }
                }
                for (old, n) in per_table {
                    // A replaced table's frame can never be a table again (`Frames`), so
                    // the saving is skipped when table frames run short; replacing is then
                    // only for what the core cannot write or a batch too large.
                    let spare = tight || frames.available_bytes() >= REPLACE_SPARE_BYTES;
                    let save = tight || self.replace_to_save;
                    if (n > threshold && spare && save) || !self.guest_writable(old) {
                        self.replace(old, frames);
                    }
                }
            }
        }
        let p = std::mem::take(&mut self.pending);
        let fills = p
            .fresh
            .iter()
            .filter_map(|gpa| Some((Gpa(*gpa), self.tables.get(gpa)?.entries.clone())))
            .collect();
        let flush = if !self.live || (invalidate.is_empty() && !p.flush_all) {
            Flush::None
        } else if p.flush_all || invalidate.len() > INVLPG_MAX {
            Flush::All
        } else {
            Flush::Pages(invalidate.into_iter().map(Gva).collect())
        };
        PtBatch {
            fills,
            stores: p.stores.into_iter().map(|(e, v)| (Gpa(e), v)).collect(),
            flush,
            retired: p.retired,
        }
    }

    /// Whether the core can store into table `gpa` through the Main window: the boot-time
    /// tables sit in [`WINDOW_READ_ONLY`], except the PML4, which the edit protocol opens.
    fn guest_writable(&self, gpa: u64) -> bool {
        gpa == self.root.0 || !WINDOW_READ_ONLY.iter().any(|&(a, b)| (a..b).contains(&gpa))
    }

    /// Hand a table frame back once unlinked, if it is one of [`Frames`]' (the boot-time
    /// tables are not).
    fn retire_frame(&mut self, gpa: u64) {
        if gpa >= APP_PHYS_BASE {
            self.pending.retired.push(Gpa(gpa));
        }
    }

    /// Move live table `old` to a fresh frame (host-filled with the mirror's contents) and
    /// relink it with one store in its parent.
    fn replace(&mut self, old: u64, frames: &mut Frames) {
        let Some((level, va)) = self.tables.get(&old).map(|t| (t.level, t.va)) else {
            return;
        };
        let Some(parent) = self.table_at(va, level + 1) else {
            return;
        };
        let Ok(new) = frames.alloc_table() else {
            return;
        };
        let Some(t) = self.tables.remove(&old) else {
            return;
        };
        self.drop_stores(old);
        self.retire_frame(old);
        // The old frame may sit in paging-structure caches on any path below it.
        self.pending.flush_all = true;
        self.add_table(new, t.level, t.va, t.entries, (parent, slot(va, level + 1)));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use umon_abi::layout::{PHYS_MEM, PROGRAM_BASE};

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
        pt.write(&mem).unwrap();
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

    // ---- Mapper ----

    const APP: u64 = PROGRAM_BASE;

    fn rw() -> Perm {
        Perm {
            read: true,
            write: true,
            exec: false,
        }
    }

    fn ro() -> Perm {
        Perm {
            read: true,
            ..Perm::NONE
        }
    }

    /// Guest RAM with an empty PML4 from `Frames`, and a mapper over it.
    fn app_space(ram: u64) -> (GuestMem, Frames, Mapper) {
        let mem = GuestMem::new(ram).unwrap();
        let mut frames = Frames::new(ram, ram);
        let root = frames.alloc_table().unwrap();
        let mapper = Mapper::adopt(&mem, root).unwrap();
        (mem, frames, mapper)
    }

    /// The guest's side, faked: applies batches to guest RAM as the protocol says, keeps a
    /// TLB, and fails on anything the protocol forbids or a stale translation.
    struct FakeGuest {
        root: Gpa,
        /// Frames that were ever reachable as tables.
        ever_table: BTreeSet<u64>,
        /// Cached translations: page base -> (size, gpa of the base, flags).
        tlb: BTreeMap<u64, (u64, u64, u64)>,
    }

    impl FakeGuest {
        fn new(root: Gpa) -> FakeGuest {
            FakeGuest {
                root,
                ever_table: BTreeSet::from([root.0]),
                tlb: BTreeMap::new(),
            }
        }

        /// Table pages reachable from the root through the lower half.
        fn tables(&self, mem: &GuestMem) -> BTreeSet<u64> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![(self.root.0, 3u32)];
            while let Some((gpa, level)) = todo.pop() {
                seen.insert(gpa);
                if level == 0 {
                    continue;
                }
                let entries: [u64; ENTRIES] = mem.read(Gpa(gpa)).unwrap();
                let upto = if level == 3 { ENTRIES / 2 } else { ENTRIES };
                for &e in &entries[..upto] {
                    if e & PRESENT != 0 && e & HUGE == 0 {
                        todo.push((e & ADDR_MASK, level - 1));
                    }
                }
            }
            seen
        }

        fn apply(&mut self, mem: &GuestMem, batch: &PtBatch, live: bool) {
            let before = self.tables(mem);
            for (gpa, entries) in &batch.fills {
                assert!(
                    !self.ever_table.contains(&gpa.0),
                    "host fill of {gpa:?}, which was a table (stale on PVM)"
                );
                mem.write(*gpa, &**entries).unwrap();
            }
            for (entry, value) in &batch.stores {
                let table = entry.0 & !(PAGE_4K - 1);
                assert!(
                    before.contains(&table),
                    "store into {entry:?}, not a live table"
                );
                let read_only = WINDOW_READ_ONLY
                    .iter()
                    .any(|&(a, b)| (a..b).contains(&table));
                assert!(
                    !live || table == self.root.0 || !read_only,
                    "store into {entry:?}, which the core cannot write"
                );
                mem.write(*entry, value).unwrap();
            }
            match &batch.flush {
                Flush::None => {}
                Flush::All => self.tlb.clear(),
                Flush::Pages(pages) => {
                    for va in pages {
                        self.tlb.retain(|&base, &mut (size, _, _)| {
                            !(base..base + size).contains(&va.0)
                        });
                    }
                }
            }
            if !live {
                // Before the first run nothing is cached.
                self.tlb.clear();
            }
            let after = self.tables(mem);
            for (gpa, _) in &batch.fills {
                assert!(after.contains(&gpa.0), "fill {gpa:?} not linked");
            }
            for gpa in &batch.retired {
                assert!(!after.contains(&gpa.0), "retired {gpa:?} still linked");
            }
            self.ever_table.extend(after);
            for (&base, &(size, gpa, flags)) in &self.tlb {
                let t = translate(mem, self.root, Gva(base)).unwrap();
                let now = t.map(|t| (t.page_left, t.gpa.0, t.flags));
                assert_eq!(
                    now,
                    Some((size, gpa, flags)),
                    "stale TLB entry for {base:#x}"
                );
            }
        }

        /// An access to `va`: caches its translation, as the CPU may.
        fn touch(&mut self, mem: &GuestMem, va: u64) {
            if translate(mem, self.root, Gva(va)).unwrap().is_some() {
                // A 2 MiB leaf leaves 2 MiB from its base; a 4 KiB one 4 KiB.
                let huge = translate(mem, self.root, Gva(va & !(PAGE_2M - 1)))
                    .unwrap()
                    .is_some_and(|t| t.page_left == PAGE_2M);
                let size = if huge { PAGE_2M } else { PAGE_4K };
                let base = va & !(size - 1);
                let t = translate(mem, self.root, Gva(base)).unwrap().unwrap();
                self.tlb.insert(base, (t.page_left, t.gpa.0, t.flags));
            }
        }
    }

    #[test]
    fn aligned_contiguous_memory_gets_2m_leaves_and_one_link() {
        let (mem, mut frames, mut m) = app_space(64 << 20);
        let big = frames.alloc_2m().unwrap();
        m.map(
            Gva(APP),
            PAGE_2M,
            Target::Contiguous(big),
            rw(),
            &mut frames,
        )
        .unwrap();
        let b = m.commit(&mut frames);
        // PDPT and PD are fresh (host-filled); only the PML4 entry is a store.
        assert_eq!((b.fills.len(), b.stores.len()), (2, 1));
        assert_eq!(b.stores[0].0, Gpa(m.root().0 + 8 * index(APP, 3)));
        assert_eq!(b.flush, Flush::None);
        b.apply_host(&mem).unwrap();
        let t = translate(&mem, m.root(), Gva(APP + 0x1234))
            .unwrap()
            .unwrap();
        assert_eq!(t.gpa, Gpa(big.0 + 0x1234));
        assert_eq!(t.page_left, PAGE_2M - 0x1234, "one 2 MiB leaf");
        assert_eq!(t.flags, rw().leaf_bits());
        assert_eq!(m.translate(Gva(APP + 0x1234)), Some(t));
    }

    #[test]
    fn splitting_a_2m_leaf_is_one_fresh_pt_and_one_store() {
        let (mem, mut frames, mut m) = app_space(64 << 20);
        let big = frames.alloc_2m().unwrap();
        m.map(
            Gva(APP),
            PAGE_2M,
            Target::Contiguous(big),
            rw(),
            &mut frames,
        )
        .unwrap();
        m.commit(&mut frames).apply_host(&mem).unwrap();
        m.set_live();
        let page = APP + 5 * PAGE_4K;
        m.protect(Gva(page), PAGE_4K, ro(), &mut frames).unwrap();
        let b = m.commit(&mut frames);
        assert_eq!((b.fills.len(), b.stores.len()), (1, 1));
        // Made read-only, the page keeps its dirty bit (harmless, as on Linux).
        assert_eq!(
            b.fills[0].1[5],
            (big.0 + 5 * PAGE_4K) | ro().entry_bits() | DIRTY
        );
        assert_eq!(b.fills[0].1[6], (big.0 + 6 * PAGE_4K) | rw().entry_bits());
        assert_eq!(b.flush, Flush::Pages(vec![Gva(APP), Gva(page)]));
        assert!(b.retired.is_empty());
        b.apply_host(&mem).unwrap();
        let t = translate(&mem, m.root(), Gva(page)).unwrap().unwrap();
        assert_eq!(
            (t.gpa, t.flags),
            (Gpa(big.0 + 5 * PAGE_4K), ro().leaf_bits())
        );
    }

    #[test]
    fn not_present_to_present_needs_no_flush() {
        let (_mem, mut frames, mut m) = app_space(64 << 20);
        let a = frames.alloc_4k().unwrap();
        m.map(Gva(APP), PAGE_4K, Target::Pages(&[a]), rw(), &mut frames)
            .unwrap();
        m.commit(&mut frames);
        m.set_live();
        let b = frames.alloc_4k().unwrap();
        m.map(
            Gva(APP + PAGE_4K),
            PAGE_4K,
            Target::Pages(&[b]),
            rw(),
            &mut frames,
        )
        .unwrap();
        m.protect(Gva(APP + PAGE_4K), PAGE_4K, Perm::NONE, &mut frames)
            .unwrap();
        let batch = m.commit(&mut frames);
        assert_eq!(batch.stores.len(), 1);
        assert_eq!(batch.flush, Flush::None);
        // PROT_NONE keeps the frame (as Linux's entries do); unmap returns it.
        assert_eq!(m.translate(Gva(APP + PAGE_4K)), None);
        assert_eq!(m.frame(Gva(APP + PAGE_4K)), Some(b));
        let gone = m.unmap(Gva(APP), 2 * PAGE_4K, &mut frames).unwrap();
        let want = if b.0 == a.0 + PAGE_4K {
            vec![(a, 2 * PAGE_4K)]
        } else {
            vec![(a, PAGE_4K), (b, PAGE_4K)]
        };
        assert_eq!(gone, want);
        assert_eq!(m.commit(&mut frames).flush, Flush::Pages(vec![Gva(APP)]));
    }

    #[test]
    fn guest_ops_address_entries_through_main_then_invlpg() {
        let batch = PtBatch {
            fills: Vec::new(),
            stores: vec![(Gpa(0x40_1008), 0x1234 | PRESENT)],
            flush: Flush::Pages(vec![Gva(APP)]),
            retired: Vec::new(),
        };
        assert_eq!(
            batch.guest_ops(),
            (vec![(PHYS_MEM + 0x40_1008, 0x1234 | PRESENT)], vec![APP])
        );
        assert!(!batch.is_empty());
    }

    #[test]
    fn many_stores_into_one_live_pt_replace_it() {
        let (mem, mut frames, mut m) = app_space(64 << 20);
        let pages: Vec<Gpa> = (0..64).map(|_| frames.alloc_4k().unwrap()).collect();
        m.map(
            Gva(APP),
            64 * PAGE_4K,
            Target::Pages(&pages),
            rw(),
            &mut frames,
        )
        .unwrap();
        m.commit(&mut frames).apply_host(&mem).unwrap();
        let old_pt = m.table_at(APP, 0).unwrap();
        m.set_live();
        for k in 0..REPLACE_THRESHOLD as u64 + 1 {
            m.protect(Gva(APP + 2 * k * PAGE_4K), PAGE_4K, ro(), &mut frames)
                .unwrap();
        }
        let b = m.commit(&mut frames);
        assert_eq!((b.fills.len(), b.stores.len()), (1, 1), "{b:?}");
        assert_eq!(b.retired, vec![Gpa(old_pt)]);
        assert_eq!(b.flush, Flush::All);
        assert!(frames.was_table(b.fills[0].0));
        // At the threshold, stores stay stores.
        for k in 0..REPLACE_THRESHOLD as u64 {
            m.protect(Gva(APP + 2 * k * PAGE_4K), PAGE_4K, rw(), &mut frames)
                .unwrap();
        }
        let b = m.commit(&mut frames);
        assert_eq!((b.fills.len(), b.stores.len()), (0, REPLACE_THRESHOLD));
        assert!(matches!(b.flush, Flush::Pages(p) if p.len() == REPLACE_THRESHOLD));
    }

    #[test]
    fn a_batch_over_its_area_stores_into_the_pml4_only() {
        let (mem, mut frames, mut m) = app_space(256 << 20);
        let mut guest = FakeGuest::new(m.root());
        // 40 pages, each in a PT of its own (2 MiB apart), under two PDs (1 GiB apart).
        let vas: Vec<u64> = (0..40u64)
            .map(|k| APP + (k % 2) * PAGE_1G + (k / 2) * PAGE_2M)
            .collect();
        for &va in &vas {
            let f = frames.alloc_4k().unwrap();
            m.map(Gva(va), PAGE_4K, Target::Pages(&[f]), rw(), &mut frames)
                .unwrap();
        }
        guest.apply(&mem, &m.commit(&mut frames), false);
        m.set_live();
        for &va in &vas {
            guest.touch(&mem, va);
        }
        for &va in &vas {
            m.protect(Gva(va), PAGE_4K, ro(), &mut frames).unwrap();
        }
        // 40 stores and 32 or fewer invalidations would not fit in 20 ops.
        let b = m.commit_within(&mut frames, 20);
        assert_eq!(b.flush, Flush::All);
        let (stores, invlpgs) = b.guest_ops();
        assert!(stores.len() + invlpgs.len() <= 20, "{stores:?} {invlpgs:?}");
        assert!(b
            .stores
            .iter()
            .all(|(e, _)| e.0 & !(PAGE_4K - 1) == m.root().0));
        guest.apply(&mem, &b, true);
        for &va in &vas {
            let t = translate(&mem, m.root(), Gva(va)).unwrap().unwrap();
            assert_eq!(t.flags & WRITABLE, 0);
        }
    }

    #[test]
    fn the_core_the_upper_half_and_bad_ranges_are_refused() {
        let (_mem, mut frames, mut m) = app_space(64 << 20);
        let f = frames.alloc_2m().unwrap();
        for (va, len) in [
            (KERNEL_BASE, PAGE_4K),
            (KERNEL_BASE - PAGE_4K, 2 * PAGE_4K),
            (CORE_IMAGE_END - PAGE_4K, PAGE_4K),
            (LOWER_HALF_END - PAGE_4K, 2 * PAGE_4K),
            (PHYS_MEM, PAGE_4K),
            (u64::MAX - 0xfff, PAGE_4K),
        ] {
            let r = m.map(Gva(va), len, Target::Contiguous(f), rw(), &mut frames);
            assert!(
                matches!(r, Err(PagingError::NotApplication { .. })),
                "{va:#x}: {r:?}"
            );
            assert!(m.protect(Gva(va), len, ro(), &mut frames).is_err());
            assert!(m.unmap(Gva(va), len, &mut frames).is_err());
        }
        for (va, len) in [(APP + 1, PAGE_4K), (APP, 0), (APP, 100)] {
            let r = m.map(Gva(va), len, Target::Contiguous(f), rw(), &mut frames);
            assert!(matches!(r, Err(PagingError::Misaligned { .. })), "{r:?}");
        }
        let r = m.map(
            Gva(APP),
            2 * PAGE_4K,
            Target::Pages(&[f]),
            rw(),
            &mut frames,
        );
        assert!(matches!(r, Err(PagingError::TargetLength { .. })));
        // Just below the core and just above it are the application's.
        m.map(
            Gva(KERNEL_BASE - PAGE_4K),
            PAGE_4K,
            Target::Contiguous(f),
            rw(),
            &mut frames,
        )
        .unwrap();
        m.map(
            Gva(CORE_IMAGE_END),
            PAGE_4K,
            Target::Contiguous(Gpa(f.0 + PAGE_4K)),
            rw(),
            &mut frames,
        )
        .unwrap();
    }

    #[test]
    fn a_refused_map_changes_nothing() {
        let (mem, mut frames, mut m) = app_space(64 << 20);
        let a = frames.alloc_4k().unwrap();
        m.map(
            Gva(APP + PAGE_2M + PAGE_4K),
            PAGE_4K,
            Target::Pages(&[a]),
            rw(),
            &mut frames,
        )
        .unwrap();
        m.commit(&mut frames).apply_host(&mem).unwrap();
        let used = frames.in_use_bytes();
        let big = frames.alloc_2m().unwrap();
        // Over the mapped page, starting in a slot that would need new tables.
        let r = m.map(
            Gva(APP + PAGE_2M - PAGE_4K),
            3 * PAGE_4K,
            Target::Contiguous(big),
            rw(),
            &mut frames,
        );
        assert!(
            matches!(r, Err(PagingError::Overlap { va }) if va == APP + PAGE_2M + PAGE_4K),
            "{r:?}"
        );
        assert!(m.commit(&mut frames).is_empty());
        assert_eq!(frames.in_use_bytes(), used + PAGE_2M);
        // Out of frames for a table: refused, nothing taken.
        let mut tiny = Frames::new(64 << 20, 0);
        let far = APP + (1 << 39);
        let r = m.map(Gva(far), PAGE_4K, Target::Contiguous(big), rw(), &mut tiny);
        assert!(matches!(r, Err(PagingError::Frames(_))), "{r:?}");
        assert!(m.commit(&mut frames).is_empty());
        assert_eq!(m.translate(Gva(far)), None);
    }

    #[test]
    fn adopted_boot_tables_keep_the_core_and_windows() {
        let (mem, pt) = setup(64 << 20, PAGE_2M);
        let mut frames = Frames::new(64 << 20, 64 << 20);
        let mut m = Mapper::adopt(&mem, pt.root()).unwrap();
        let f = frames.alloc_2m().unwrap();
        // ET_EXEC images load right above the core, in the core's own PD.
        m.map(
            Gva(CORE_IMAGE_END),
            PAGE_2M,
            Target::Contiguous(f),
            rw(),
            &mut frames,
        )
        .unwrap();
        let b = m.commit(&mut frames);
        assert_eq!((b.fills.len(), b.stores.len()), (0, 1));
        b.apply_host(&mem).unwrap();
        let core = translate(&mem, pt.root(), Gva(KERNEL_BASE))
            .unwrap()
            .unwrap();
        assert_eq!(core.gpa, Gpa(KERNEL_BASE));
        let app = translate(&mem, pt.root(), Gva(CORE_IMAGE_END))
            .unwrap()
            .unwrap();
        assert_eq!((app.gpa, app.page_left), (f, PAGE_2M));
        let main = translate(&mem, pt.root(), Gva(PHYS_MEM + 0x1000))
            .unwrap()
            .unwrap();
        assert_eq!(main.gpa, Gpa(0x1000));
    }

    #[test]
    fn live_edits_move_boot_tables_out_of_the_read_only_area() {
        let (mem, pt) = setup(64 << 20, PAGE_2M);
        let mut frames = Frames::new(64 << 20, 64 << 20);
        let mut m = Mapper::adopt(&mem, pt.root()).unwrap();
        let mut guest = FakeGuest::new(pt.root());
        m.set_live();
        let f = frames.alloc_2m().unwrap();
        m.map(
            Gva(CORE_IMAGE_END),
            PAGE_2M,
            Target::Contiguous(f),
            rw(),
            &mut frames,
        )
        .unwrap();
        let b = m.commit(&mut frames);
        // The core's PD and the PDPT above it are copied into fresh frames; the one store
        // goes into the PML4.
        assert_eq!(b.fills.len(), 2, "{b:?}");
        assert_eq!(b.stores.len(), 1);
        assert_eq!(b.stores[0].0, pt.root());
        assert!(b.fills.iter().all(|(g, _)| g.0 >= APP_PHYS_BASE));
        assert!(b.retired.is_empty(), "boot-time tables are not Frames'");
        guest.apply(&mem, &b, true);
        let core = translate(&mem, pt.root(), Gva(KERNEL_BASE))
            .unwrap()
            .unwrap();
        assert_eq!(core.gpa, Gpa(KERNEL_BASE));
        let app = translate(&mem, pt.root(), Gva(CORE_IMAGE_END))
            .unwrap()
            .unwrap();
        assert_eq!(app.gpa, f);
        // The next edit there is one store into the copy.
        m.protect(Gva(CORE_IMAGE_END), PAGE_2M, ro(), &mut frames)
            .unwrap();
        let b = m.commit(&mut frames);
        assert_eq!((b.fills.len(), b.stores.len()), (0, 1));
        assert!(b.stores[0].0 .0 >= APP_PHYS_BASE);
    }

    #[test]
    fn unmapping_the_whole_half_skips_missing_tables() {
        let (_mem, mut frames, mut m) = app_space(64 << 20);
        let f = frames.alloc_4k().unwrap();
        m.map(Gva(APP), PAGE_4K, Target::Pages(&[f]), rw(), &mut frames)
            .unwrap();
        // 2^26 slots of 2 MiB: fast only because empty 512 GiB and 1 GiB pieces are skipped.
        let all = LOWER_HALF_END - CORE_IMAGE_END;
        assert_eq!(m.populated_slots(CORE_IMAGE_END, LOWER_HALF_END).len(), 1);
        let gone = m.unmap(Gva(CORE_IMAGE_END), all, &mut frames).unwrap();
        assert_eq!(gone, vec![(f, PAGE_4K)]);
    }

    /// A small PRNG (xorshift64*), seeded per run, so a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random map/protect/unmap sequences over 8 MiB that straddle a 1 GiB boundary (plus a
    /// page in another PML4 slot): after every batch the guest's walk of guest RAM, the
    /// mapper's mirror and a page-by-page model agree, no TLB entry is stale, no table frame is
    /// host-filled twice, and every frame unmapped is one the model had there.
    fn random_sequences(live: bool, seed: u64) {
        const WINDOW: u64 = 8 << 20;
        let base = APP + (1 << 30) - (4 << 20);
        let far = APP + (1 << 39) + PAGE_2M;
        let ram = 256 << 20;
        let (mem, mut frames, mut m) = app_space(ram);
        let mut guest = FakeGuest::new(m.root());
        let mut rng = Rng(seed);
        // Page VA -> (frame, leaf bits).
        let mut model: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        if live {
            m.set_live();
        }
        for step in 0..400 {
            let ctx = format!("seed {seed:#x} step {step}");
            let aligned = rng.below(3) == 0;
            let (va, pages) = if rng.below(20) == 0 {
                (far, 1)
            } else if aligned {
                let slots = WINDOW / PAGE_2M;
                let s = rng.below(slots);
                (base + s * PAGE_2M, (1 + rng.below(slots - s)) * 512)
            } else {
                let first = rng.below(WINDOW / PAGE_4K);
                let n = 1 + rng.below((WINDOW / PAGE_4K - first).min(700));
                (base + first * PAGE_4K, n)
            };
            let len = pages * PAGE_4K;
            let perm = Perm {
                read: rng.below(4) != 0,
                write: rng.below(2) == 0,
                exec: rng.below(3) == 0,
            };
            match rng.below(3) {
                0 => {
                    // MAP_FIXED: unmap, then map new frames.
                    for (gpa, n) in m.unmap(Gva(va), len, &mut frames).unwrap() {
                        for p in (0..n).step_by(PAGE_4K as usize) {
                            assert!(model.values().any(|&(f, _)| f == gpa.0 + p), "{ctx}");
                        }
                        frames.free(&mem, gpa, n).unwrap();
                    }
                    model.retain(|&p, _| !(va..va + len).contains(&p));
                    if aligned {
                        for k in 0..pages / 512 {
                            let at = va + k * PAGE_2M;
                            let f = frames.alloc_2m().unwrap();
                            m.map(Gva(at), PAGE_2M, Target::Contiguous(f), perm, &mut frames)
                                .unwrap();
                            for p in 0..512 {
                                model.insert(
                                    at + p * PAGE_4K,
                                    (f.0 + p * PAGE_4K, perm.leaf_bits()),
                                );
                            }
                        }
                    } else {
                        let fs: Vec<Gpa> = (0..pages).map(|_| frames.alloc_4k().unwrap()).collect();
                        m.map(Gva(va), len, Target::Pages(&fs), perm, &mut frames)
                            .unwrap();
                        for (p, f) in fs.iter().enumerate() {
                            model.insert(va + p as u64 * PAGE_4K, (f.0, perm.leaf_bits()));
                        }
                    }
                }
                1 => {
                    m.protect(Gva(va), len, perm, &mut frames).unwrap();
                    for (_, (_, bits)) in model.range_mut(va..va + len) {
                        *bits = perm.leaf_bits();
                    }
                }
                _ => {
                    let mut gone = BTreeSet::new();
                    for (gpa, n) in m.unmap(Gva(va), len, &mut frames).unwrap() {
                        gone.extend((gpa.0..gpa.0 + n).step_by(PAGE_4K as usize));
                        frames.free(&mem, gpa, n).unwrap();
                    }
                    let want: BTreeSet<u64> =
                        model.range(va..va + len).map(|(_, &(f, _))| f).collect();
                    assert_eq!(gone, want, "{ctx}");
                    model.retain(|&p, _| !(va..va + len).contains(&p));
                }
            }
            let batch = m.commit(&mut frames);
            guest.apply(&mem, &batch, live);
            for gpa in &batch.retired {
                assert!(frames.was_table(*gpa), "{ctx}");
                frames.free(&mem, *gpa, PAGE_4K).unwrap();
            }
            let check = (base..base + WINDOW).step_by(PAGE_4K as usize).chain([far]);
            for p in check {
                let want = model
                    .get(&p)
                    .filter(|(_, bits)| bits & PRESENT != 0)
                    .map(|&(f, bits)| (f, bits));
                let walked = translate(&mem, m.root(), Gva(p)).unwrap();
                let got = walked.map(|t| (t.gpa.0, t.flags));
                assert_eq!(got, want, "{ctx}: guest walk at {p:#x}");
                let mirror = m.translate(Gva(p)).map(|t| (t.gpa.0, t.flags));
                assert_eq!(mirror, want, "{ctx}: mirror at {p:#x}");
                assert_eq!(
                    m.frame(Gva(p)).map(|g| g.0),
                    model.get(&p).map(|m| m.0),
                    "{ctx}"
                );
                if rng.below(8) == 0 {
                    guest.touch(&mem, p);
                }
            }
            let tables = guest.tables(&mem);
            assert!(
                model.values().all(|(f, _)| !tables.contains(f)),
                "{ctx}: a data frame is a table"
            );
        }
        // Everything unmapped: only the tables stay allocated.
        for (gpa, n) in m.unmap(Gva(base), WINDOW, &mut frames).unwrap() {
            frames.free(&mem, gpa, n).unwrap();
        }
        for (gpa, n) in m.unmap(Gva(far), PAGE_4K, &mut frames).unwrap() {
            frames.free(&mem, gpa, n).unwrap();
        }
        let batch = m.commit(&mut frames);
        guest.apply(&mem, &batch, live);
        for gpa in &batch.retired {
            frames.free(&mem, *gpa, PAGE_4K).unwrap();
        }
        let tables = guest.tables(&mem).len() as u64;
        assert_eq!(
            frames.in_use_bytes(),
            tables * PAGE_4K,
            "seed {seed:#x}: frames leaked"
        );
    }

    fn seeds() -> Vec<u64> {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        vec![0x9e37_79b9_7f4a_7c15, t | 1]
    }

    #[test]
    fn random_edits_after_start_match_the_model() {
        for seed in seeds() {
            random_sequences(true, seed);
        }
    }

    #[test]
    fn random_edits_before_start_match_the_model() {
        for seed in seeds() {
            random_sequences(false, seed);
        }
    }
}
