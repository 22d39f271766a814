//! Page-table edits after start: the stream the monitor writes and the core's `umon_pt_apply`
//! runs at CPL0 (PVM's shadow MMU sees only the guest's own stores into page tables).
//!
//! On PVM every instruction of the routine is emulated (about a microsecond each, plus a
//! guest page walk per memory operand), so the routine is a row of unrolled *sections*, each
//! ending in `ret`, and the monitor chains the ones a batch needs through the stack: a store
//! costs two instructions (`pop rdx; pop qword ptr [rdx]`), an `invlpg` two, a batch three
//! more. The monitor writes the stream on the vCPU's exception stack, ending at its top, and
//! enters the routine at CPL0 with rsp = the stream's first word and rip = the first
//! section's entry:
//!
//! | section (offset from `umon_pt_apply`) | runs | pops from the stream |
//! |---|---|---|
//! | stores, entered [`PT_STORE_BYTES`]` * n` before [`PT_STORES_END`] | n stores, n <= [`PT_UNROLL`] | n x (entry's virtual address in the Main window, value), then the next entry |
//! | invlpgs, entered [`PT_INVLPG_BYTES`]` * n` before [`PT_INVLPGS_END`] | n `invlpg`s | n addresses, then the next entry |
//! | [`PT_FLUSH`] | CR3 reload (CR4.PGE is off: every translation) | the next entry |
//! | [`PT_NOTIFY_AT`] | exit with `Hypercall::PtApplied` | the next entry |
//! | [`PT_RETURN`] | `pop rdx; iretq` back to the application | a [`PtReturn`] |
//!
//! Only rdx (saved in the frame) and rsp change, so every application register survives.
//! The monitor checks at load that the core's section symbols sit at these offsets.
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Stores (and `invlpg`s) one pass of a section makes at most; a longer batch chains the
/// section again.
pub const PT_UNROLL: u64 = 64;
/// `pop rdx; pop qword ptr [rdx]`: 5a 8f 02.
pub const PT_STORE_BYTES: u64 = 3;
/// `pop rdx; invlpg [rdx]`: 5a 0f 01 3a.
pub const PT_INVLPG_BYTES: u64 = 4;
/// Offset of the stores section's `ret` (symbol `umon_pt_stores_end`).
pub const PT_STORES_END: u64 = PT_UNROLL * PT_STORE_BYTES;
/// Offset of the invlpgs section's `ret` (symbol `umon_pt_invlpgs_end`), one `ret` after the
/// stores.
pub const PT_INVLPGS_END: u64 = PT_STORES_END + 1 + PT_UNROLL * PT_INVLPG_BYTES;
/// Offset of the CR3 reload (symbol `umon_pt_flush`): `mov rdx, cr3; mov cr3, rdx; ret`.
pub const PT_FLUSH: u64 = PT_INVLPGS_END + 1;
/// Offset of the notifying exit (symbol `umon_pt_notify`): `out PtApplied, al; ret`.
pub const PT_NOTIFY_AT: u64 = PT_FLUSH + 7;
/// Offset of the return (symbol `umon_pt_return`): `pop rdx; iretq`.
pub const PT_RETURN: u64 = PT_NOTIFY_AT + 3;

/// What the return section pops: the application's rdx (the routine's one scratch
/// register), then the `iretq` frame back to the application.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PtReturn {
    /// in: rdx to restore.
    pub rdx: u64,
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

const _: () = assert!(core::mem::size_of::<PtReturn>() == 48);
const _: () = assert!(PT_RETURN == 460);
