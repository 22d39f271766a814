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
    common = sym exception_common,
    compat = const Hypercall::CompatSyscall.port(),
);

/// Where a page fault during a probe resumes; 0 when no probe is running.
#[no_mangle]
static mut UMON_RECOVER_RIP: u64 = 0;
/// Page faults absorbed by probes.
#[no_mangle]
static mut UMON_FAULTS_CAUGHT: u64 = 0;

#[unsafe(naked)]
unsafe extern "C" fn exception_common() -> ! {
    core::arch::naked_asm!(
        // A probe expects this #PF: resume at the recovery point.
        "cmp qword ptr [rip + UMON_RECOVER_RIP], 0",
        "je 2f",
        "cmp qword ptr [rsp], 14",
        "jne 2f",
        "push rax",
        "mov rax, [rip + UMON_RECOVER_RIP]",
        "mov [rsp + 24], rax",
        "mov qword ptr [rip + UMON_RECOVER_RIP], 0",
        "inc qword ptr [rip + UMON_FAULTS_CAUGHT]",
        "pop rax",
        "add rsp, 16",
        "iretq",
        "2:",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {report}",
        "ud2",
        report = sym crate::fault,
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
    // the recovery label because UMON_RECOVER_RIP is set; no other state changes.
    unsafe {
        asm!(
            "lea rax, [rip + 5f]",
            "mov [rip + UMON_RECOVER_RIP], rax",
            "mov rax, [{addr}]",
            "xor {f:e}, {f:e}",
            "jmp 6f",
            "5: mov {f:e}, 1",
            "6: mov qword ptr [rip + UMON_RECOVER_RIP], 0",
            addr = in(reg) addr,
            f = out(reg) faulted,
            out("rax") _,
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
            "lea rax, [rip + 5f]",
            "mov [rip + UMON_RECOVER_RIP], rax",
            "mov rax, [{addr}]",
            "mov [{addr}], rax",
            "xor {f:e}, {f:e}",
            "jmp 6f",
            "5: mov {f:e}, 1",
            "6: mov qword ptr [rip + UMON_RECOVER_RIP], 0",
            addr = in(reg) addr,
            f = out(reg) faulted,
            out("rax") _,
            options(nostack),
        );
    }
    faulted != 0
}

/// Number of page faults absorbed by [`probe_read`] and [`probe_write`].
pub fn faults_caught() -> u64 {
    // SAFETY: single vCPU; the handler that writes it does not run concurrently with this read.
    unsafe { core::ptr::addr_of!(UMON_FAULTS_CAUGHT).read_volatile() }
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
    // SAFETY: as for `read_u64`; the targets are the scratch page, which nothing else uses.
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
