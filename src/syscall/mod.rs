//! The Linux system-call ABI as the application sees it, served by the monitor. The syscall entry
//! stub exits with the application's registers; [`handle`] runs the call and arranges the return.
use crate::hypercall::{Cpu, Flow, HostState, HypercallError, DIRTY_REGS};
use crate::memory::GuestMem;
use crate::ExitStatus;
use std::collections::HashSet;
use umon_abi::hypercall::{ECHO_XOR, SYS_UMON_ECHO};

/// Linux syscall numbers used here.
pub mod nr {
    /// exit
    pub const EXIT: u64 = 60;
    /// exit_group
    pub const EXIT_GROUP: u64 = 231;
}

/// The Linux process the application sees.
#[derive(Default)]
pub struct Process {
    /// Function symbols of the application, sorted by address: (address, size, name).
    pub symbols: Vec<(u64, u64, String)>,
    /// Syscalls already reported as unsupported (reported once each).
    pub unsupported_seen: HashSet<u64>,
    /// Whether [`SYS_UMON_ECHO`] answers (syscall-trap self-test only).
    pub echo_enabled: bool,
}

impl Process {
    /// " (name+0xoff)" for an address inside a known function, else "".
    pub fn symbolize(&self, addr: u64) -> String {
        let i = self.symbols.partition_point(|s| s.0 <= addr);
        match i.checked_sub(1).map(|i| &self.symbols[i]) {
            Some((start, size, name)) if addr < start + (*size).max(1) => {
                format!(" ({name}+{:#x})", addr - start)
            }
            _ => String::new(),
        }
    }
}

/// Run the system call in the vCPU's registers and set up the return to the application.
pub fn handle(
    cpu: &mut Cpu<'_>,
    mem: &GuestMem,
    state: &mut HostState,
) -> Result<Flow, HypercallError> {
    let _ = mem;
    let r = &*cpu.regs;
    let (number, a0) = (r.rax, r.rdi);
    let ret: i64 = match number {
        nr::EXIT | nr::EXIT_GROUP => return Ok(Flow::Exit(ExitStatus::Exited((a0 & 0xff) as i32))),
        SYS_UMON_ECHO if state.process.echo_enabled => (a0 ^ ECHO_XOR) as i64,
        other => {
            if state.process.unsupported_seen.insert(other) {
                let _ = writeln!(state.stderr, "umon: unsupported syscall {other}");
            }
            -i64::from(libc::ENOSYS)
        }
    };
    complete(cpu, ret);
    Ok(Flow::Continue)
}

use std::io::Write;

/// Put the result in rax and return to the application. On hardware KVM the stub's `sysretq`
/// does the return. On PVM a user-mode `syscall` reaches the stub still at CPL3, where `sysretq`
/// would fault, so the monitor performs the return itself: rip = rcx, rflags = r11.
pub fn complete(cpu: &mut Cpu<'_>, ret: i64) {
    cpu.regs.rax = ret as u64;
    if cpu.sregs.cs.dpl == 3 {
        cpu.regs.rip = cpu.regs.rcx;
        cpu.regs.rflags = (cpu.regs.r11 & !0x3000) | 0x2;
    }
    cpu.dirty |= DIRTY_REGS;
}
