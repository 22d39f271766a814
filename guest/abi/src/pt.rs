//! Page-table edits after start: the batch the monitor writes and the core's `umon_pt_apply`
//! applies at CPL0 (PVM's shadow MMU sees only the guest's own stores into page tables).
//!
//! Protocol: the monitor writes a [`PtBatchHeader`] and its [`PtOp`]s into a batch area of
//! guest RAM the application cannot reach (supervisor-only in the Main window), a
//! [`PtReturn`] frame on the vCPU's exception stack, and enters `umon_pt_apply` at CPL0 with
//! rsp = that frame and rdi = the batch's virtual address. The routine makes the stores and
//! `invlpg`s in order, flushes as the header says, restores rdi and its scratch registers and
//! returns to the application with `iretq`: no exit of its own, unless the batch asks for a
//! [`PT_NOTIFY`] (the monitor orders the batches of several vCPUs with it).
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Nothing to flush beyond the ops' own `invlpg`s.
pub const FLUSH_NONE: u32 = 0;
/// Reload CR3 after the ops (CR4.PGE is off: that flushes every translation).
pub const FLUSH_ALL: u32 = 1;

/// Flag in [`PtBatchHeader::flush`]: after the ops and the flush, exit with
/// `Hypercall::PtApplied` before returning to the application.
pub const PT_NOTIFY: u32 = 2;

/// Ops of a batch that fit one 4 KiB page after its header.
pub const PT_BATCH_OPS_PER_PAGE: usize = 255;

/// The start of a batch; `len` [`PtOp`]s follow it contiguously.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PtBatchHeader {
    /// in: number of ops.
    pub len: u64,
    /// in: [`FLUSH_NONE`] or [`FLUSH_ALL`], with [`PT_NOTIFY`] or'd in when the monitor
    /// wants to know that the batch is done.
    pub flush: u64,
}

/// One op: store `value` at virtual address `entry` (a page-table entry in the Main window),
/// or, with `entry` = 0, `invlpg` the address `value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PtOp {
    /// in: virtual address of the entry; 0 = invalidate `value`.
    pub entry: u64,
    /// in: the new entry, or the address to invalidate.
    pub value: u64,
}

/// What `umon_pt_apply` finds at rsp: the application's rdi (the routine's argument register
/// while it runs), then the `iretq` frame back to the application.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PtReturn {
    /// in: rdi to restore.
    pub rdi: u64,
    /// in: where the application resumes.
    pub rip: u64,
    /// in: its code selector.
    pub cs: u64,
    /// in: its rflags.
    pub rflags: u64,
    /// in: its stack pointer.
    pub rsp: u64,
    /// in: its stack selector.
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<PtBatchHeader>() == 16);
const _: () = assert!(core::mem::size_of::<PtOp>() == 16);
const _: () = assert!(16 + PT_BATCH_OPS_PER_PAGE * 16 == 4096);
const _: () = assert!(core::mem::size_of::<PtReturn>() == 48);
