//! The guest memory layout (OSv's), the only home of these ranges.
//!
//! ```text
//! guest virtual                                   what
//! 0x0000_0000_0000_0000 .. 0x0000_0000_0020_0000  reserved, unmapped (NULL and small pointers fault)
//! 0x0000_0000_0020_0000 .. 0x0000_0000_0040_0000  core image, VA = PA (must end below CORE_IMAGE_END)
//! 0x0000_0000_0040_0000 .. 0x0000_0000_0180_0000  rest of the 22 MiB core reservation; ET_EXEC apps
//!                                                 load here at their link addresses
//! 0x0000_1000_0000_0000 PROGRAM_BASE              s_program (8 GiB), then ELF namespaces, 8 GiB each,
//!                                                 at most 32 (256 GiB); slot 1 is unused as in OSv
//! 0x0000_1002_0000_0000 VVAR_BASE, VDSO_BASE      in that unused slot: the time page, the vDSO
//! 0x0000_2000_0000_0000 MMAP_BASE                 OSv's mmap area: the application's heap arena
//!                                                 (brk + mmap, all RAM left, up to 64 GiB)
//! 0xffff_8000_0000_0000 PHYS_MEM (Main area)      all guest RAM, linear, supervisor-only, NX
//! 0xffff_9000_0000_0000 Page area                 the same RAM again
//! 0xffff_a000_0000_0000 Mempool area              the same RAM again
//! 0xffff_b000_0000_0000 .. top  Debug area        reserved, unmapped, except:
//! 0xffff_ffff_ff60_0000 VSYSCALL_BASE             Linux's legacy vsyscall page (if the platform allows)
//! ```
//!
//! Physical memory (what the monitor places where, before the first instruction):
//!
//! ```text
//! 0x0000 .. 0x1000   unused
//! 0x1000 ..          GDT, IDT, TSS, boot info, core stacks (BOOT_* below)
//! 0xF_0000 ..        vDSO time page, vDSO image, vsyscall page (VVAR_PHYS ..)
//! 0x10_0000 ..       page tables, allocated upwards
//! 0x20_0000 ..       core image (KERNEL_BASE, VA = PA), ending below PERCPU_TABLES
//! 0x2C_0000 ..       per-vCPU GDT + TSS, 256 bytes each, MAX_VCPUS of them (read-only to the CPU)
//! 0x30_0000 ..       per-vCPU exception stacks, 1 KiB each, MAX_VCPUS of them
//! 0x40_0000 ..       application memory (segments, stack, heap), allocated by the monitor
//! ```

/// Start of the core ELF (OSv's `kernel_base`).
pub const KERNEL_BASE: u64 = 0x20_0000;
/// End of the 22 MiB core reservation (OSv's `lzkernel_base`).
pub const LZKERNEL_BASE: u64 = 0x180_0000;
/// The core image must end below this address: ET_EXEC applications are linked at 0x40_0000.
pub const CORE_IMAGE_END: u64 = 0x40_0000;
/// OSv's `program_base`: the kernel's own program object, then the ELF namespaces.
pub const PROGRAM_BASE: u64 = 0x1000_0000_0000;
/// Size of `s_program` and of each ELF namespace.
pub const NAMESPACE_BYTES: u64 = 8 << 30;
/// At most this many namespaces (OSv's `max_namespaces`).
pub const MAX_NAMESPACES: u64 = 32;
/// Base of the Main area: all guest RAM mapped linearly (OSv's `phys_mem`).
pub const PHYS_MEM: u64 = 0xffff_8000_0000_0000;
/// Distance between the memory areas (16 TiB).
pub const AREA_BYTES: u64 = 1 << 44;

/// The four upper-half memory areas of OSv's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Page allocator results and large mallocs.
    Main = 0,
    /// Whole-page mallocs.
    Page = 1,
    /// Small objects from per-CPU pools.
    Mempool = 2,
    /// Debug allocator; left unmapped.
    Debug = 3,
}

impl Area {
    /// Every area, in address order.
    pub const ALL: [Area; 4] = [Area::Main, Area::Page, Area::Mempool, Area::Debug];
    /// The three areas that map all RAM linearly.
    pub const LINEAR: [Area; 3] = [Area::Main, Area::Page, Area::Mempool];

    /// First virtual address of the area.
    pub const fn base(self) -> u64 {
        PHYS_MEM | ((self as u64) << 44)
    }

    /// The area's name as in OSv.
    pub const fn name(self) -> &'static str {
        match self {
            Area::Main => "Main",
            Area::Page => "Page",
            Area::Mempool => "Mempool",
            Area::Debug => "Debug",
        }
    }

    /// The area a virtual address falls in, if any (OSv's `get_mem_area`).
    pub const fn of(va: u64) -> Option<Area> {
        if va < PHYS_MEM {
            return None;
        }
        match (va >> 44) & 7 {
            0 => Some(Area::Main),
            1 => Some(Area::Page),
            2 => Some(Area::Mempool),
            _ => Some(Area::Debug),
        }
    }
}

/// The virtual base of ELF namespace `index` (1..MAX_NAMESPACES), as OSv computes it:
/// `program_base + (index + 1) * 8 GiB`. Index 0 is `s_program` itself.
pub const fn namespace_base(index: u64) -> u64 {
    PROGRAM_BASE + (index + 1) * NAMESPACE_BYTES
}

/// The namespace the first application goes into (OSv pre-sets bit 0, so the first app namespace
/// is index 1, at program_base + 16 GiB).
pub const FIRST_APP_NAMESPACE: u64 = 1;

/// End of the last namespace.
pub const PROGRAM_END: u64 = PROGRAM_BASE + (MAX_NAMESPACES + 1) * NAMESPACE_BYTES;

/// OSv's mmap area (`core/mmu.cc`): umon puts the application's heap arena here, outside the
/// 8 GiB namespace, so it can hold all the RAM the VM was given.
pub const MMAP_BASE: u64 = 0x2000_0000_0000;

/// The vDSO's time page ("vvar", Linux's name), read-only and NX for the application, at the
/// base of the namespace slot OSv leaves unused (`PROGRAM_BASE + NAMESPACE_BYTES`): outside the
/// application's namespace (its image and stack) and the arena, so no brk/mmap can ever hand it
/// out, yet a low-half user address any page-table layout may map.
pub const VVAR_BASE: u64 = PROGRAM_BASE + NAMESPACE_BYTES;
/// The vDSO image (AT_SYSINFO_EHDR), one page above the time page (the vDSO finds the page at
/// this fixed distance below its own ELF header, position-independently).
pub const VDSO_BASE: u64 = VVAR_BASE + VVAR_BYTES;
/// Bytes of the time page.
pub const VVAR_BYTES: u64 = 0x1000;
/// Most bytes the vDSO image may have (build.rs fails above it).
pub const VDSO_MAX_BYTES: u64 = 0x4000;
/// Physical home of the time page: the free gap between the boot stacks and the page tables,
/// which costs no application RAM and which the linear windows map read-only (the core cannot
/// write it; the monitor writes it with host stores).
pub const VVAR_PHYS: u64 = 0xF_0000;
/// Physical home of the vDSO image, right after the time page.
pub const VDSO_PHYS: u64 = VVAR_PHYS + VVAR_BYTES;
/// Linux's legacy vsyscall page (`VSYSCALL_ADDR`): fixed, at the top of the address space.
pub const VSYSCALL_BASE: u64 = 0xffff_ffff_ff60_0000;
/// Physical home of the vsyscall page's code, after the vDSO's room.
pub const VSYSCALL_PHYS: u64 = VDSO_PHYS + VDSO_MAX_BYTES;

/// Physical address of the GDT the monitor writes.
pub const BOOT_GDT: u64 = 0x1000;
/// Physical address of the IDT (256 gates of 16 bytes).
pub const BOOT_IDT: u64 = 0x2000;
/// Physical address of the TSS.
pub const BOOT_TSS: u64 = 0x3000;
/// Physical address of [`crate::boot::BootInfo`].
pub const BOOT_INFO: u64 = 0x4000;
/// Scratch page the self-test uses (vCPU 0 only; fault reports live on each vCPU's own stack).
pub const BOOT_SCRATCH: u64 = 0x5000;
/// Core stack: grows down from here (16 KiB below it).
pub const CORE_STACK_TOP: u64 = 0xA000;
/// Exception stack (TSS.RSP0): grows down from here.
pub const CORE_EXCEPTION_STACK_TOP: u64 = 0xE000;
/// Page tables are allocated from here upwards, below the core image.
pub const PAGE_TABLES_BASE: u64 = 0x10_0000;
/// End of the page-table region.
pub const PAGE_TABLES_END: u64 = KERNEL_BASE;
/// Application memory starts here (physical).
pub const APP_PHYS_BASE: u64 = CORE_IMAGE_END;

/// Most vCPUs a VM can have: KVM_CAP_MAX_VCPUS of the hosts umon runs on (1024). The per-vCPU
/// blocks for all of them are reserved up front (1.25 MiB, below), so adding a vCPU never needs
/// a page-table edit (PVM does not see host edits after start) nor takes RAM from the app.
pub const MAX_VCPUS: u32 = 1024;

/// vCPU `i`'s GDT (same selectors as the boot GDT) is at `PERCPU_TABLES + i * PERCPU_TABLE_BYTES`,
/// its TSS [`PERCPU_TSS_OFFSET`] further on. Where: the unused tail of the core's 2 MiB
/// reservation, which costs no application RAM (a fixed region below the app would take up to
/// 16 MiB from `-m 16M` runs, carving from the arena would put the machine layer in the Linux
/// layer's allocator) and which the linear windows already map, read-only here, before the first
/// instruction. The monitor writes a block with host stores before that vCPU first runs; the CPU
/// only reads it (descriptor loads, RSP0/IST1 and the I/O bitmap at exception and `out` time).
/// vCPU 0 keeps the boot GDT/TSS ([`BOOT_GDT`], [`BOOT_TSS`]); block 0 is spare.
pub const PERCPU_TABLES: u64 = 0x2C_0000;
/// Bytes per vCPU in the table array: a 64-byte GDT and a 0x89-byte TSS.
pub const PERCPU_TABLE_BYTES: u64 = 0x100;
/// Offset of the TSS in a vCPU's table block.
pub const PERCPU_TSS_OFFSET: u64 = 0x40;
/// vCPU `i`'s exception stack (TSS.RSP0 and IST1) is the `PERCPU_STACK_BYTES` from
/// `PERCPU_STACKS + i * PERCPU_STACK_BYTES`, reached through the Main window, writable. 1 KiB:
/// the core's deepest use is one exception frame plus `fault()` with its report (about 200
/// bytes); every gate uses IST1, so a nested exception restarts at the top instead of growing
/// the stack.
pub const PERCPU_STACKS: u64 = 0x30_0000;
/// Bytes of one per-vCPU exception stack.
pub const PERCPU_STACK_BYTES: u64 = 0x400;
/// End of the per-vCPU region.
pub const PERCPU_END: u64 = PERCPU_STACKS + MAX_VCPUS as u64 * PERCPU_STACK_BYTES;

/// Physical address of vCPU `index`'s GDT.
pub const fn percpu_gdt(index: u32) -> u64 {
    PERCPU_TABLES + index as u64 * PERCPU_TABLE_BYTES
}

/// Physical address of vCPU `index`'s TSS.
pub const fn percpu_tss(index: u32) -> u64 {
    percpu_gdt(index) + PERCPU_TSS_OFFSET
}

/// Physical address just past vCPU `index`'s exception stack (its TSS.RSP0 and IST1, in Main).
pub const fn percpu_stack_top(index: u32) -> u64 {
    PERCPU_STACKS + (index as u64 + 1) * PERCPU_STACK_BYTES
}

/// The size of the mapped core region: one 2 MiB page from KERNEL_BASE.
pub const CORE_MAPPED_BYTES: u64 = CORE_IMAGE_END - KERNEL_BASE;

/// GDT selectors. SYSCALL/SYSRET derive the user selectors from STAR (user data = base + 8, user
/// code = base + 16). They deliberately differ from Linux's (0x2b/0x33): PVM treats a guest whose
/// STAR names the host's own user selectors as a PVM-aware kernel and delivers a user `syscall`
/// as a PVM event, which a non-PVM core cannot take (measured: the stub's `out` then #GPs).
pub mod selector {
    /// 64-bit kernel code.
    pub const KERNEL_CS: u16 = 0x08;
    /// Kernel data.
    pub const KERNEL_DS: u16 = 0x10;
    /// STAR[63:48] base, where 32-bit user code would be; its GDT slot holds no code segment.
    pub const USER32_CS: u16 = 0x1b;
    /// User data.
    pub const USER_DS: u16 = 0x23;
    /// 64-bit user code.
    pub const USER_CS: u16 = 0x2b;
    /// The TSS descriptor (16 bytes).
    pub const TSS: u16 = 0x30;
    /// Number of 8-byte GDT slots.
    pub const GDT_ENTRIES: usize = 8;
}

const _: () = {
    assert!(KERNEL_BASE < CORE_IMAGE_END);
    assert!(CORE_IMAGE_END < LZKERNEL_BASE);
    assert!(LZKERNEL_BASE < PROGRAM_BASE);
    assert!(PROGRAM_END <= 0x2000_0000_0000);
    assert!(PROGRAM_END < PHYS_MEM);
    assert!(PROGRAM_END <= MMAP_BASE && MMAP_BASE + (1 << 44) <= PHYS_MEM);
    assert!(Area::Main.base() == PHYS_MEM);
    assert!(Area::Page.base() == 0xffff_9000_0000_0000);
    assert!(Area::Mempool.base() == 0xffff_a000_0000_0000);
    assert!(Area::Debug.base() == 0xffff_b000_0000_0000);
    assert!(namespace_base(FIRST_APP_NAMESPACE) == PROGRAM_BASE + (16 << 30));
    assert!(BOOT_GDT < BOOT_IDT && BOOT_IDT < BOOT_TSS && BOOT_TSS < BOOT_INFO);
    assert!(BOOT_INFO < BOOT_SCRATCH && BOOT_SCRATCH < CORE_STACK_TOP - 0x4000);
    assert!(CORE_STACK_TOP <= CORE_EXCEPTION_STACK_TOP - 0x4000);
    assert!(CORE_EXCEPTION_STACK_TOP <= PAGE_TABLES_BASE);
    assert!(PAGE_TABLES_END <= KERNEL_BASE);
    assert!(selector::USER_DS == (selector::USER32_CS & !3) + 8 + 3);
    assert!(selector::USER_CS == (selector::USER32_CS & !3) + 16 + 3);
    assert!(KERNEL_BASE.is_multiple_of(2 << 20) && CORE_MAPPED_BYTES == (2 << 20));
    assert!(KERNEL_BASE < PERCPU_TABLES);
    assert!(PERCPU_TABLES + MAX_VCPUS as u64 * PERCPU_TABLE_BYTES <= PERCPU_STACKS);
    assert!(PERCPU_END <= CORE_IMAGE_END && PERCPU_END <= APP_PHYS_BASE);
    assert!(PERCPU_STACKS.is_multiple_of(4096) && PERCPU_TABLES.is_multiple_of(4096));
    assert!(PERCPU_TSS_OFFSET >= (selector::GDT_ENTRIES * 8) as u64);
    assert!(CORE_EXCEPTION_STACK_TOP <= VVAR_PHYS && VSYSCALL_PHYS + 0x1000 <= PAGE_TABLES_BASE);
    assert!(VVAR_BASE + NAMESPACE_BYTES == namespace_base(FIRST_APP_NAMESPACE));
    assert!(VDSO_BASE + VDSO_MAX_BYTES <= VVAR_BASE + NAMESPACE_BYTES);
};
