//! The boot information block the monitor writes at [`crate::layout::BOOT_INFO`] before the first
//! instruction; the core checks `magic` and `abi_version` first thing.
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"UMONBOOT"` read as a little-endian u64.
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"UMONBOOT");

/// What the core should do after checking the boot info.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// Enter the application at CPL3.
    RunApp = 0,
    /// Verify the memory layout from inside and report it with [`crate::Hypercall::SelftestReport`].
    Selftest = 1,
    /// Exit with code 0 right away (boot benchmarks).
    ExitAtOnce = 2,
    /// Drop to CPL3 and run `BootInfo::loop_count` [`crate::hypercall::SYS_UMON_ECHO`] syscalls,
    /// checking each result, then exit 0 (or exit 1 at the first wrong result).
    SyscallLoop = 3,
}

impl BootMode {
    /// Decode the raw field; `None` for an unknown mode.
    pub const fn from_raw(raw: u32) -> Option<BootMode> {
        match raw {
            0 => Some(BootMode::RunApp),
            1 => Some(BootMode::Selftest),
            2 => Some(BootMode::ExitAtOnce),
            3 => Some(BootMode::SyscallLoop),
            _ => None,
        }
    }
}

/// Kind of a [`MemRegion`].
pub mod region_kind {
    /// Usable RAM.
    pub const RAM: u32 = 1;
    /// Monitor structures (GDT, IDT, TSS, boot info, page tables).
    pub const BOOT: u32 = 2;
    /// The core image.
    pub const CORE: u32 = 3;
    /// Application memory handed out by the monitor.
    pub const APP: u32 = 4;
}

/// One entry of the physical memory map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MemRegion {
    /// in: first guest physical address.
    pub start: u64,
    /// in: length in bytes.
    pub len: u64,
    /// in: one of [`region_kind`].
    pub kind: u32,
    /// reserved, zero.
    pub _pad: u32,
}

/// Maximum number of memory map entries.
pub const MAX_MEM_REGIONS: usize = 8;
/// Size of the boot argument string.
pub const CMDLINE_BYTES: usize = 256;

/// Everything the core learns from the monitor. All fields are written by the monitor (`in:`)
/// unless marked otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BootInfo {
    /// in: [`BOOT_MAGIC`].
    pub magic: u64,
    /// in: [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// in: a [`BootMode`] value.
    pub mode: u32,
    /// in: guest RAM size in bytes.
    pub ram_bytes: u64,
    /// in: TSC frequency in kHz (0 if unknown).
    pub tsc_khz: u64,
    /// in: application entry point (virtual).
    pub app_entry: u64,
    /// in: application initial stack pointer (virtual), pointing at argc.
    pub app_stack: u64,
    /// in: iterations for [`BootMode::SyscallLoop`].
    pub loop_count: u64,
    /// in: number of valid entries in `mem_map`.
    pub mem_map_len: u32,
    /// reserved, zero.
    pub _pad: u32,
    /// in: the physical memory map.
    pub mem_map: [MemRegion; MAX_MEM_REGIONS],
    /// in: NUL-terminated boot arguments for the core.
    pub cmdline: [u8; CMDLINE_BYTES],
}

const _: () = assert!(core::mem::size_of::<MemRegion>() == 24);
const _: () = assert!(core::mem::size_of::<BootInfo>() == 64 + 8 * 24 + 256);
