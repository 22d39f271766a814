//! Every instruction the core needs that Rust cannot express: entry, exception vectors, the
//! syscall stub, port I/O, control registers, the drop to CPL3. Nothing else in the core uses
//! `asm!`. The core runs at CPL0, which PVM emulates instruction by instruction, so each path here
//! is as short as it can be.
use core::arch::{asm, global_asm};
use umon_abi::hypercall::{Hypercall, ECHO_XOR, SYS_UMON_ECHO};
use umon_abi::layout::selector;

// Entry: the monitor starts the vCPU here in long mode with rsp on the core stack and rdi = the
// virtual address of BootInfo.
global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "    call {main}",
    "    ud2",
    main = sym crate::core_main,
);

// 32 exception vectors, 16 bytes apart from `umon_vectors` (the monitor writes the IDT from that
// symbol), then the compatibility-mode syscall stub in slot 32. Vectors without a CPU error code
// push a zero so the frame is uniform: [vector, error, rip, cs, rflags, rsp, ss].
global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 16",
    ".global umon_vectors",
    "umon_vectors:",
    ".set vec, 0",
    ".rept 32",
    "    .balign 16",
    "    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)",
    "    .else",
    "    push 0",
    "    .endif",
    "    push vec",
    "    jmp {common}",
    "    .set vec, vec + 1",
    ".endr",
    // MSR_CSTAR, the slot after the 32 vectors: a compatibility-mode `syscall` enters here at
    // CPL0 on the application's rsp (AMD hardware; PVM too, measured, where an `iretq` to the
    // host's 32-bit user selector gives the app compatibility mode). Never touch the stack:
    // exit at once, and the monitor ends the application.
    "    .balign 16",
    ".global umon_compat_syscall_entry",
    "umon_compat_syscall_entry:",
    "    out {compat}, al",
    "    ud2",
    // The slot after it (vectors + 16 * 33): `umon_pt_apply`, the page-table edit routine
    // (umon_abi::pt has the protocol and the offsets, which the monitor checks at load). The
    // monitor enters it at CPL0 with rsp = a stream on this vCPU's exception stack and rip =
    // the first section's entry; each section ends in `ret`, which pops the next one's
    // entry. Every instruction here is emulated on PVM (about 1 us each, a store into a
    // shadowed table more), so a store is two instructions and nothing is tested or counted:
    // the monitor picks how far into an unrolled section to enter. Only rdx is used (restored
    // from the frame), so rax (a syscall's result) and every other application register
    // survive.
    "    .balign 16",
    ".global umon_pt_apply",
    "umon_pt_apply:",
    "    .rept {unroll}",
    "    pop rdx",
    "    pop qword ptr [rdx]",
    "    .endr",
    ".global umon_pt_stores_end",
    "umon_pt_stores_end:",
    "    ret",
    "    .rept {unroll}",
    "    pop rdx",
    "    invlpg [rdx]",
    "    .endr",
    ".global umon_pt_invlpgs_end",
    "umon_pt_invlpgs_end:",
    "    ret",
    ".global umon_pt_flush",
    "umon_pt_flush:",
    "    mov rdx, cr3",
    "    mov cr3, rdx",
    "    ret",
    // Several vCPUs: tell the monitor the batch is in (it orders their batches). `out imm8,
    // al` reads al only: the application's rax survives.
    ".global umon_pt_notify",
    "umon_pt_notify:",
    "    out {applied}, al",
    "    ret",
    ".global umon_pt_return",
    "umon_pt_return:",
    "    pop rdx",
    "    iretq",
    common = sym exception_common,
    compat = const Hypercall::CompatSyscall.port(),
    applied = const Hypercall::PtApplied.port(),
    unroll = const umon_abi::pt::PT_UNROLL,
);

/// Marks a running probe: a probe puts it in r10 and its recovery address in r11 before the
/// access. Registers, not statics: the fault path reads no shared memory, so any number of
/// vCPUs can take exceptions at once.
const PROBE_MARK: u32 = 0x756d_7072;

#[unsafe(naked)]
unsafe extern "C" fn exception_common() -> ! {
    core::arch::naked_asm!(
        // From CPL3 (the frame's cs): exit at once with every application register as it
        // was; the monitor reads this frame off the exception stack and runs the handler or
        // ends the application. Nothing before the `out` writes a register (`test` and the
        // branch change only the core's flags; the application's rflags are in the frame).
        "test qword ptr [rsp + 24], 3",
        "jnz 3f",
        // A #PF at CPL0 inside a probe (r10 = PROBE_MARK): resume at r11 with r10 = 0. Only
        // the core runs at CPL0, so the application cannot fake a probe with its registers.
        "cmp qword ptr [rsp], 14",
        "jne 2f",
        "cmp r10, {mark}",
        "jne 2f",
        "mov [rsp + 16], r11",
        "xor r10d, r10d",
        "add rsp, 16",
        "iretq",
        "2:",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {report}",
        "ud2",
        // The monitor never resumes here: it enters the application's handler at CPL3 or
        // ends it. Should it ever, the `ud2` is a core fault, not a loop.
        "3:",
        "out {user_fault}, al",
        "ud2",
        mark = const PROBE_MARK,
        report = sym crate::fault,
        user_fault = const Hypercall::UserFault.port(),
    );
}

// The syscall entry stub, alone in a user-visible page. On hardware KVM, `syscall` enters it at
// CPL0; the monitor writes rax and `sysretq` returns. On PVM a user-mode `syscall` arrives here
// still at CPL3 (which is why this page is user-visible), and the monitor completes the return
// itself (rip = rcx, rflags = r11), so `sysretq` is never reached there.
// `umon_echo_loop` is the CPL3 code of BootMode::SyscallLoop: rdi = count; exits 0 when every
// result was right, 1 at the first wrong one.
global_asm!(
    ".section .user_text, \"ax\"",
    ".balign 16",
    ".global umon_syscall_entry",
    "umon_syscall_entry:",
    "    out {port}, al",
    "    sysretq",
    ".balign 16",
    ".global umon_echo_loop",
    "umon_echo_loop:",
    "    mov rbx, rdi",
    "    movabs r12, {xor}",
    "3:  mov rdi, rbx",
    "    mov eax, {echo}",
    "    syscall",
    "    mov rdx, rbx",
    "    xor rdx, r12",
    "    cmp rax, rdx",
    "    jne 4f",
    "    dec rbx",
    "    jnz 3b",
    "    mov edi, 0",
    "    mov eax, 231",
    "    syscall",
    "4:  mov edi, 1",
    "    mov eax, 231",
    "    syscall",
    "    ud2",
    port = const Hypercall::Syscall.port(),
    echo = const SYS_UMON_ECHO,
    xor = const ECHO_XOR,
);

// The exit-less syscall stub (umon_abi::exitless), alone in its own page. The monitor maps
// this page once per vCPU at `exitless::stub_page(i)`, each copy followed by that vCPU's
// channel page, and points the vCPU's MSR_LSTAR at `umon_exitless_entry` in its own copy:
// every `[rip + CH + x]` below (CH = one page past this page's start) is then that vCPU's
// channel, with no register or stack used to find it. Until the publish the stub writes
// only the channel (and flags: the application's are in r11); after it, only rax and rcx
// change before the return, and an exit anywhere in here is settled by the monitor from
// the channel (`machine::exitless`). On PVM this runs at CPL3 (the return is `popfq` of
// r11 on a scratch stack in the channel, then `jmp rcx`); on hardware KVM at CPL0, where
// `sysretq` returns.
global_asm!(
    ".section .exitless_text, \"ax\"",
    ".balign 4096",
    ".global umon_exitless_page",
    "umon_exitless_page:",
    ".global umon_exitless_entry",
    "umon_exitless_entry:",
    "    cmp dword ptr [rip + umon_exitless_page + {page} + {awake}], 0",
    "    je 8f",
    "    cmp rax, {calls}",
    "    jae 8f",
    "    bt qword ptr [rip + umon_exitless_page + {page} + {bitmap}], rax",
    "    jnc 8f",
    "    mov [rip + umon_exitless_page + {page} + {nr}], rax",
    "    mov [rip + umon_exitless_page + {page} + {args}], rdi",
    "    mov [rip + umon_exitless_page + {page} + {args} + 8], rsi",
    "    mov [rip + umon_exitless_page + {page} + {args} + 16], rdx",
    "    mov [rip + umon_exitless_page + {page} + {args} + 24], r10",
    "    mov [rip + umon_exitless_page + {page} + {args} + 32], r8",
    "    mov [rip + umon_exitless_page + {page} + {args} + 40], r9",
    "    mov [rip + umon_exitless_page + {page} + {rcx}], rcx",
    "    mov [rip + umon_exitless_page + {page} + {r11}], r11",
    "    mov [rip + umon_exitless_page + {page} + {rsp}], rsp",
    "    mov dword ptr [rip + umon_exitless_page + {page} + {state}], {req}",
    ".global umon_exitless_published",
    "umon_exitless_published:",
    "    mov ecx, dword ptr [rip + umon_exitless_page + {page} + {spin}]",
    "    or ecx, 1",
    "2:  mov eax, dword ptr [rip + umon_exitless_page + {page} + {state}]",
    "    cmp eax, {done}",
    "    je 4f",
    "    cmp eax, {claimed}",
    "    je 3f",
    "    cmp eax, {req}",
    "    jne 5f",
    "    pause",
    "    dec ecx",
    "    jnz 2b",
    "    jmp 5f",
    // Claimed: the server is running the call; wait for it without counting (a kick ends
    // the wait through the monitor, which waits for the server itself).
    "3:  pause",
    "    jmp 2b",
    "4:  mov rcx, [rip + umon_exitless_page + {page} + {rcx}]",
    "    mov eax, cs",
    "    test al, 3",
    "    mov rax, [rip + umon_exitless_page + {page} + {ret}]",
    "    jz 6f",
    "    lea rsp, [rip + umon_exitless_page + {page} + {stack}]",
    "    push r11",
    "    popfq",
    "    mov rsp, [rip + umon_exitless_page + {page} + {rsp}]",
    "    jmp rcx",
    ".global umon_exitless_sysret",
    "umon_exitless_sysret:",
    "6:  sysretq",
    // Not served here (done-and-exit, given back, or the spin ran out): the entry
    // registers again, and the exit; the monitor serves or completes it.
    "5:  mov rax, [rip + umon_exitless_page + {page} + {nr}]",
    "    mov rcx, [rip + umon_exitless_page + {page} + {rcx}]",
    ".global umon_exitless_fallback",
    "umon_exitless_fallback:",
    "    out {port}, al",
    "    sysretq",
    // No server, or a call it never serves: today's exit, registers untouched.
    ".global umon_exitless_plain",
    "umon_exitless_plain:",
    "8:  out {port}, al",
    "    sysretq",
    ".global umon_exitless_end",
    "umon_exitless_end:",
    ".balign 4096, 0xcc",
    page = const umon_abi::exitless::CHANNEL_BYTES,
    awake = const umon_abi::exitless::CH_AWAKE,
    calls = const umon_abi::exitless::BITMAP_CALLS,
    bitmap = const umon_abi::exitless::CH_BITMAP,
    nr = const umon_abi::exitless::CH_NR,
    args = const umon_abi::exitless::CH_ARGS,
    rcx = const umon_abi::exitless::CH_RCX,
    r11 = const umon_abi::exitless::CH_R11,
    rsp = const umon_abi::exitless::CH_RSP,
    ret = const umon_abi::exitless::CH_RET,
    stack = const umon_abi::exitless::CH_STACK_TOP,
    state = const umon_abi::exitless::CH_STATE,
    req = const umon_abi::exitless::REQ,
    claimed = const umon_abi::exitless::CLAIMED,
    done = const umon_abi::exitless::DONE,
    spin = const umon_abi::exitless::CH_SPIN,
    port = const Hypercall::Syscall.port(),
);

extern "C" {
    fn umon_echo_loop();
}

/// Issue hypercall `nr` with `arg` in rdi; returns rax as the monitor left it.
#[inline(always)]
pub fn hypercall(nr: Hypercall, arg: u64) -> u64 {
    let ret: u64;
    // SAFETY: `out` to a hypercall port only exits to the monitor, which validates `arg` as
    // hostile input; no guest memory is touched by the instruction itself.
    unsafe {
        asm!("out dx, al", in("dx") nr.port(), in("rdi") arg, inout("rax") 0u64 => ret,
             options(nostack));
    }
    ret
}

/// Read a u64 at `addr` and report whether it page-faulted instead.
#[inline(never)]
pub fn probe_read(addr: u64) -> bool {
    let faulted: u64;
    // SAFETY: the read either succeeds or takes #PF, which `exception_common` turns into a jump to
    // the recovery label (r11) because r10 holds PROBE_MARK; r10 is 0 afterwards either way.
    unsafe {
        asm!(
            "lea r11, [rip + 5f]",
            "mov r10d, {mark}",
            "mov rax, [{addr}]",
            "xor r10d, r10d",
            "xor {f:e}, {f:e}",
            "jmp 6f",
            "5: mov {f:e}, 1",
            "6:",
            addr = in(reg) addr,
            f = out(reg) faulted,
            mark = const PROBE_MARK,
            out("rax") _,
            out("r10") _,
            out("r11") _,
            options(nostack),
        );
    }
    faulted != 0
}

/// Store back the u64 at `addr` (read first, so a store that goes through changes nothing) and
/// report whether the store page-faulted instead. `addr` must be readable.
#[inline(never)]
pub fn probe_write(addr: u64) -> bool {
    let faulted: u64;
    // SAFETY: as for `probe_read`; the store writes the value just read, so if the page is
    // writable nothing changes, and if not the #PF resumes at the recovery label.
    unsafe {
        asm!(
            "lea r11, [rip + 5f]",
            "mov r10d, {mark}",
            "mov rax, [{addr}]",
            "mov [{addr}], rax",
            "xor r10d, r10d",
            "xor {f:e}, {f:e}",
            "jmp 6f",
            "5: mov {f:e}, 1",
            "6:",
            addr = in(reg) addr,
            f = out(reg) faulted,
            mark = const PROBE_MARK,
            out("rax") _,
            out("r10") _,
            out("r11") _,
            options(nostack),
        );
    }
    faulted != 0
}

/// Read CR2 (the faulting address of the last #PF).
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects at CPL0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack)) };
    v
}

/// Volatile read of a u64 the caller knows is mapped.
pub fn read_u64(addr: u64) -> u64 {
    // SAFETY: callers pass addresses inside windows the monitor mapped (checked by the selftest
    // against BootInfo.ram_bytes); a violation faults and is reported, it cannot corrupt state.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Volatile write of a u64 the caller knows is mapped and writable.
pub fn write_u64(addr: u64, value: u64) {
    // SAFETY: as for `read_u64`; the targets are the scratch page, which only the self-test uses.
    unsafe { (addr as *mut u64).write_volatile(value) }
}

/// Address of the CPL3 echo loop (BootMode::SyscallLoop).
pub fn echo_loop_entry() -> u64 {
    umon_echo_loop as usize as u64
}

/// Stop this vCPU after a hypercall that should have ended the VM.
pub fn halt() -> ! {
    loop {
        // SAFETY: hlt only waits; the monitor ends the VM on the hlt exit.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}
