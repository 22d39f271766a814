//! Exit-less syscalls: the request/reply channel between the core's syscall stub and the
//! monitor's server thread, defined once.
//!
//! Every vCPU below [`EXITLESS_VCPUS`] has its own 8 KiB slot in the exit-less window at
//! [`EXITLESS_BASE`]: the first page maps the core's exit-less stub page (the same physical
//! page for every vCPU, user-visible and executable), the second this vCPU's channel page
//! (user-visible, writable, NX). The vCPU's MSR_LSTAR names the stub's entry in its own slot,
//! so the stub reaches its channel with `rip`-relative addresses and needs no register, no
//! stack and no per-CPU lookup, at CPL3 (PVM) and at CPL0 (hardware KVM) alike.
//!
//! Protocol, one request at a time per channel:
//! 1. The stub reads [`CH_AWAKE`]; zero (no server polling) or a number the bitmap at
//!    [`CH_BITMAP`] does not list: exit at once as before (`plain`, registers untouched).
//! 2. It stores the number, the six arguments, rcx, r11 and rsp, then [`REQ`] into
//!    [`CH_STATE`] (the publish: one store of an immediate).
//! 3. It spins on [`CH_STATE`]: [`DONE`] -> return [`CH_RET`] to the application itself
//!    (CPL3: `popfq` of r11 on a scratch stack inside the channel, `jmp rcx`; CPL0:
//!    `sysretq`); [`DONE_EXIT`], [`FALLBACK`] or a spin of [`CH_SPIN`] rounds that runs out
//!    -> restore rax and rcx and exit (`fallback`), where the monitor decides.
//! 4. The server claims a request by compare-and-swap [`REQ`] -> [`CLAIMED`], copies it once,
//!    validates it as any syscall, and writes the result then [`DONE`] (or [`DONE_EXIT`] when
//!    something waits for the exit path: a signal, a page-table batch), or gives it back with
//!    [`FALLBACK`]. The vCPU's own thread, at any exit whose rip is in the stub, claims the
//!    same way ([`REQ`] -> [`IDLE`]); so each request runs exactly once, on the server or on
//!    the exit path, and a request the guest rewrites afterwards is a new call, as another
//!    `syscall` would be.

/// Virtual base of the exit-less window: in the namespace slot OSv leaves unused (where the
/// vDSO lives), 2 MiB above the time page, outside the application's namespace and arena.
pub const EXITLESS_BASE: u64 = crate::layout::VVAR_BASE + (2 << 20);
/// Bytes of one vCPU's slot: the stub page, then the channel page.
pub const EXITLESS_SLOT_BYTES: u64 = 0x2000;
/// vCPUs with a channel; a thread on a further vCPU takes the exit path for every call.
pub const EXITLESS_VCPUS: u32 = 64;
/// Physical home of channel 0; channel `i` is `i` pages further. In the free gap between the
/// boot stacks and the vDSO's pages, which costs no application RAM.
pub const CHANNEL_PHYS: u64 = 0x1_0000;
/// Bytes of one channel.
pub const CHANNEL_BYTES: u64 = 0x1000;

/// u32: the request's state (below).
pub const CH_STATE: u64 = 0x00;
/// u32: nonzero while the server polls this channel.
pub const CH_AWAKE: u64 = 0x04;
/// u64: the syscall number (rax at the `syscall`).
pub const CH_NR: u64 = 0x08;
/// u64 x 6: rdi, rsi, rdx, r10, r8, r9.
pub const CH_ARGS: u64 = 0x10;
/// u64: rcx at entry (the return address).
pub const CH_RCX: u64 = 0x40;
/// u64: r11 at entry (the application's rflags).
pub const CH_R11: u64 = 0x48;
/// u64: rsp at entry.
pub const CH_RSP: u64 = 0x50;
/// u64: the result the server wrote.
pub const CH_RET: u64 = 0x58;
/// u32: pause-loop rounds the stub spins before it gives up on the server (the monitor
/// sets it from the host's `pause` latency: about a third of an exit's cost on PVM).
pub const CH_SPIN: u64 = 0x60;
/// 64 bytes: bit n set = syscall n may be served without an exit (n < [`BITMAP_CALLS`]).
pub const CH_BITMAP: u64 = 0x80;
/// Syscall numbers the bitmap covers.
pub const BITMAP_CALLS: u64 = 512;
/// Top of the stub's 64-byte scratch stack (CPL3 return: `push r11; popfq`).
pub const CH_STACK_TOP: u64 = 0x100;

/// No request.
pub const IDLE: u32 = 0;
/// Published by the stub.
pub const REQ: u32 = 1;
/// Taken by the server, which is running it.
pub const CLAIMED: u32 = 2;
/// Served: the result is in [`CH_RET`].
pub const DONE: u32 = 3;
/// Served, and the monitor wants the exit path before the application goes on.
pub const DONE_EXIT: u32 = 4;
/// Given back unserved: the stub exits and the call runs on the exit path.
pub const FALLBACK: u32 = 5;

/// Virtual address of vCPU `index`'s stub page (its MSR_LSTAR is there plus the entry's
/// offset in the page).
pub const fn stub_page(index: u32) -> u64 {
    EXITLESS_BASE + index as u64 * EXITLESS_SLOT_BYTES
}

/// Virtual address of vCPU `index`'s channel page.
pub const fn channel_va(index: u32) -> u64 {
    stub_page(index) + 0x1000
}

/// Physical address of vCPU `index`'s channel page.
pub const fn channel_phys(index: u32) -> u64 {
    CHANNEL_PHYS + index as u64 * CHANNEL_BYTES
}

const _: () = {
    assert!(EXITLESS_BASE.is_multiple_of(2 << 20));
    assert!(
        EXITLESS_BASE + EXITLESS_VCPUS as u64 * EXITLESS_SLOT_BYTES
            <= crate::layout::VVAR_BASE + crate::layout::NAMESPACE_BYTES
    );
    assert!(crate::layout::VDSO_BASE + crate::layout::VDSO_MAX_BYTES <= EXITLESS_BASE);
    assert!(crate::layout::CORE_EXCEPTION_STACK_TOP <= CHANNEL_PHYS);
    assert!(channel_phys(EXITLESS_VCPUS) <= crate::layout::VVAR_PHYS);
    assert!(CH_RET + 8 <= CH_BITMAP && CH_BITMAP + BITMAP_CALLS / 8 <= CH_STACK_TOP - 64);
};
