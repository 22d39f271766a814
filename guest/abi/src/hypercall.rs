//! Hypercall numbers and argument structs.
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Base I/O port: hypercall `nr` is an `out` to `HYPERCALL_PORT + nr`. It is below 0x100 so that
/// `out imm8, al` reaches every hypercall without clobbering `dx` (the third syscall argument).
pub const HYPERCALL_PORT: u16 = 0xE0;

/// A umon-private syscall number (outside Linux's range) that returns `rdi ^ ECHO_XOR`; the
/// syscall-trap self-test uses it to check every round trip's result.
pub const SYS_UMON_ECHO: u64 = 0x0ff0_0001;
/// What [`SYS_UMON_ECHO`] mixes into its argument.
pub const ECHO_XOR: u64 = 0x5a5a_a5a5_0f0f_f0f0;

/// Hypercall numbers.
#[repr(u16)]
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Write bytes to the host's stdout or stderr. `rdi` = [`ConsoleWrite`] args.
    ConsoleWrite = 1,
    /// End the VM with an exit code. `rdi` = the code (0..=255), not a pointer.
    Exit = 2,
    /// The core gave up. `rdi` = [`Abort`] args.
    Abort = 3,
    /// Result of the layout self-check. `rdi` = [`SelftestReport`] args.
    SelftestReport = 4,
    /// The core took an exception it cannot handle (at CPL0; the application's go through
    /// [`Hypercall::UserFault`]). `rdi` = [`FaultReport`] args.
    Fault = 5,
    /// A Linux system call from the application, issued by the syscall entry stub with the
    /// application's registers (rax = number, rdi, rsi, rdx, r10, r8, r9 = arguments,
    /// rcx = return rip, r11 = rflags). The result is written to rax.
    Syscall = 6,
    /// Leave the core for good and start user code at CPL3. `rdi` = [`EnterUser`] args. The
    /// monitor installs the CPL3 state itself, which costs no emulated CPL0 instructions on PVM.
    EnterUser = 7,
    /// A `syscall` from compatibility mode reached the core (MSR_CSTAR) at CPL0, on the
    /// application's stack. umon has no 32-bit ABI: the monitor ends the application with
    /// SIGILL (what `syscall` outside 64-bit mode is on Intel). No argument: rcx is the return
    /// address the CPU saved.
    CompatSyscall = 8,
    /// The application took an exception at CPL3. Issued by the core's exception entry before
    /// it touches any register, so every general register is the application's; rsp points at
    /// the exception frame on this vCPU's exception stack, `[vector, error code, rip, cs,
    /// rflags, rsp, ss]` ([`USER_FAULT_FRAME_WORDS`] words), and CR2 holds a page fault's
    /// address. The monitor enters a signal handler at CPL3 or ends the application; it never
    /// returns to the core.
    UserFault = 9,
    /// The core's `umon_pt_apply` made a batch's stores and flush (the batch chained the
    /// section at [`crate::pt::PT_NOTIFY_AT`]). Issued at CPL0 inside the routine, before it returns to
    /// the application; no argument. The monitor learns that the batch is in the tables (and,
    /// on PVM, out of every vCPU's translations), so batches of several vCPUs land in the
    /// order they were planned.
    PtApplied = 10,
}

/// The words of the exception frame a [`Hypercall::UserFault`] leaves on the exception stack.
pub const USER_FAULT_FRAME_WORDS: usize = 7;

impl Hypercall {
    /// The I/O port this hypercall is issued on.
    pub const fn port(self) -> u16 {
        HYPERCALL_PORT + self as u16
    }
}

impl TryFrom<u16> for Hypercall {
    type Error = u16;
    fn try_from(nr: u16) -> Result<Self, u16> {
        Ok(match nr {
            1 => Hypercall::ConsoleWrite,
            2 => Hypercall::Exit,
            3 => Hypercall::Abort,
            4 => Hypercall::SelftestReport,
            5 => Hypercall::Fault,
            6 => Hypercall::Syscall,
            7 => Hypercall::EnterUser,
            8 => Hypercall::CompatSyscall,
            9 => Hypercall::UserFault,
            10 => Hypercall::PtApplied,
            other => return Err(other),
        })
    }
}

/// Highest hypercall number, for the port range check.
pub const HYPERCALL_MAX: u16 = 10;

const _: () = assert!(HYPERCALL_PORT + HYPERCALL_MAX < 0x100);

/// [`Hypercall::ConsoleWrite`] arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ConsoleWrite {
    /// in: 1 = stdout, 2 = stderr.
    pub fd: u32,
    /// reserved, zero.
    pub _pad: u32,
    /// in: guest physical address of the bytes.
    pub data: u64,
    /// in: number of bytes.
    pub len: u64,
    /// out: bytes written, or a negative errno.
    pub ret: i64,
}

/// [`Hypercall::EnterUser`] arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EnterUser {
    /// in: user instruction pointer.
    pub rip: u64,
    /// in: user stack pointer.
    pub rsp: u64,
    /// in: value for rdi (every other general register starts at zero).
    pub rdi: u64,
}

/// [`Hypercall::Abort`] arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Abort {
    /// in: guest physical address of a UTF-8 reason.
    pub reason: u64,
    /// in: its length in bytes (the monitor reads at most 256).
    pub len: u64,
}

/// Outcome bits of [`SelftestReport::failed`]: each is one layout check that failed.
pub mod selftest {
    /// A value written through Main did not read back through Page and Mempool (and vice versa).
    pub const WINDOWS_ALIAS: u64 = 1 << 0;
    /// The core region is not mapped VA = PA.
    pub const CORE_IDENTITY: u64 = 1 << 1;
    /// Reading page 0 did not fault.
    pub const PAGE0_MAPPED: u64 = 1 << 2;
    /// Reading the Debug area did not fault.
    pub const DEBUG_MAPPED: u64 = 1 << 3;
    /// The last byte of RAM is not reachable through the Main window.
    pub const RAM_END: u64 = 1 << 4;
    /// Reading just past the end of RAM through the Main window did not fault.
    pub const PAST_RAM_MAPPED: u64 = 1 << 5;
    /// A store to the core's descriptor tables, page tables or image did not fault.
    pub const CORE_WRITABLE: u64 = 1 << 6;
}

/// [`Hypercall::SelftestReport`] arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SelftestReport {
    /// in: number of checks run.
    pub checks: u64,
    /// in: bit set of failed checks ([`selftest`]).
    pub failed: u64,
    /// in: number of page faults the core caught (expected ones).
    pub faults_caught: u64,
}

/// [`Hypercall::Fault`] arguments: the exception frame as the CPU pushed it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FaultReport {
    /// in: exception vector.
    pub vector: u64,
    /// in: error code (0 if the vector has none).
    pub error_code: u64,
    /// in: faulting rip.
    pub rip: u64,
    /// in: cs at the fault.
    pub cs: u64,
    /// in: rflags at the fault.
    pub rflags: u64,
    /// in: rsp at the fault.
    pub rsp: u64,
    /// in: ss at the fault.
    pub ss: u64,
    /// in: CR2 (the faulting address for #PF).
    pub cr2: u64,
}

const _: () = assert!(core::mem::size_of::<ConsoleWrite>() == 32);
const _: () = assert!(core::mem::size_of::<FaultReport>() == 64);
