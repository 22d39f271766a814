//! Hypercall dispatch: the monitor's side of `umon_abi::hypercall`. The core's own calls
//! (console, exit, abort, self-test report, entering user mode) are served here; the
//! application's syscalls and faults go to the run loop's [`ExitHandler`]. Handlers see guest
//! memory and the vCPU registers, never KVM. Guest input is hostile: every pointer and length
//! is checked by [`GuestMem`]; a protocol violation ends the VM with a [`HypercallError`], a
//! guest-level failure returns a negative errno in band.
mod console;

use crate::exit::ExitStatus;
use crate::machine::memory::{GuestMem, MemoryError};
pub use crate::machine::vcpu::cpu::{Cpu, Flow};
use crate::machine::vcpu::setup::user_segments;
use crate::machine::vcpu::{AppFault, ExitHandler};
use umon_abi::hypercall::{
    Abort, EnterUser, FaultReport, Hypercall, SelftestReport, USER_FAULT_FRAME_WORDS,
};
use umon_abi::layout::PHYS_MEM;
use umon_abi::Gpa;

/// The guest broke the hypercall protocol.
#[derive(Debug, thiserror::Error)]
pub enum HypercallError {
    /// No such hypercall.
    #[error("guest issued unknown hypercall {nr}")]
    Unknown {
        /// The number.
        nr: u16,
    },
    /// An argument struct or buffer is not inside guest RAM.
    #[error("hypercall {call:?} with bad argument")]
    BadArgument {
        /// Which call.
        call: Hypercall,
        /// The range check that failed.
        #[source]
        source: MemoryError,
    },
    /// The core aborted.
    #[error("guest core aborted: {reason}")]
    Aborted {
        /// What it said.
        reason: String,
    },
    /// The single-threaded application waits for something nothing can bring.
    #[error(
        "the application blocked forever in a {what} (it is single-threaded: nothing can wake it)"
    )]
    Deadlock {
        /// Which call.
        what: &'static str,
    },
    /// A user-fault exit without the exception frame of a CPL3 exception at rsp.
    #[error(
        "guest core reported an application fault with no user exception frame (rsp {rsp:#x})"
    )]
    UserFaultFrame {
        /// The core's rsp at the exit.
        rsp: u64,
    },
    /// The core itself faulted.
    #[error("guest core crashed: exception {vector} at rip {rip:#x} (cr2 {cr2:#x})")]
    CoreFault {
        /// Vector.
        vector: u64,
        /// Where.
        rip: u64,
        /// CR2.
        cr2: u64,
    },
}

/// Handle hypercall `nr`; the application's calls go to `handler`, a self-check report is kept
/// in `selftest`.
pub fn dispatch(
    nr: u16,
    cpu: &mut Cpu<'_>,
    mem: &GuestMem,
    handler: &mut dyn ExitHandler,
    selftest: &mut Option<SelftestReport>,
) -> Result<Flow, HypercallError> {
    let call = Hypercall::try_from(nr).map_err(|nr| HypercallError::Unknown { nr })?;
    let arg = cpu.regs.rdi;
    let bad = |source| HypercallError::BadArgument { call, source };
    match call {
        Hypercall::Syscall => handler.syscall(cpu, mem),
        Hypercall::ConsoleWrite => {
            console::write(mem, handler, Gpa(arg)).map_err(bad)?;
            Ok(Flow::Continue)
        }
        Hypercall::Exit => Ok(Flow::EndProcess(ExitStatus::Exited((arg & 0xff) as i32))),
        Hypercall::Abort => {
            let args: Abort = mem.read(Gpa(arg)).map_err(bad)?;
            let mut text = vec![0u8; args.len.min(256) as usize];
            mem.read_bytes(Gpa(args.reason), &mut text).map_err(bad)?;
            Err(HypercallError::Aborted {
                reason: String::from_utf8_lossy(&text).into_owned(),
            })
        }
        Hypercall::SelftestReport => {
            *selftest = Some(mem.read(Gpa(arg)).map_err(bad)?);
            Ok(Flow::Continue)
        }
        Hypercall::EnterUser => {
            let args: EnterUser = mem.read(Gpa(arg)).map_err(bad)?;
            cpu.enter_user(&args);
            Ok(Flow::Continue)
        }
        Hypercall::Fault => {
            let f: FaultReport = mem.read(Gpa(arg)).map_err(bad)?;
            log::debug!("fault report: {f:x?}");
            if f.cs & 3 != 3 {
                return Err(HypercallError::CoreFault {
                    vector: f.vector,
                    rip: f.rip,
                    cr2: f.cr2,
                });
            }
            let fault = AppFault::Exception {
                vector: f.vector,
                error_code: f.error_code,
                rip: f.rip,
                cr2: f.cr2,
            };
            Ok(handler.app_fault(cpu, fault))
        }
        Hypercall::UserFault => {
            let fault = user_fault(cpu, mem)?;
            Ok(handler.app_fault(cpu, fault))
        }
        // rcx is where the CPU would return to, just after the 2-byte `syscall`.
        // The stub ran no instruction before the exit, so the rest is the application's state
        // (rflags in r11, as `syscall` saved them).
        Hypercall::CompatSyscall => {
            let rip = cpu.regs.rcx.wrapping_sub(2);
            let mut regs = *cpu.regs;
            regs.rip = rip;
            regs.rflags = (regs.r11 & !0x3000) | 0x2;
            user_segments(cpu.sregs);
            cpu.resume_user(regs);
            Ok(handler.app_fault(cpu, AppFault::CompatSyscall { rip }))
        }
        // Only the core's routine reports (an `out` at CPL3 is a #GP with IOPL 0).
        Hypercall::PtApplied if cpu.sregs.cs.dpl == 0 => Ok(handler.pt_applied(cpu)),
        Hypercall::PtApplied => Ok(Flow::Continue),
        _ => Err(HypercallError::Unknown { nr }),
    }
}

/// The application's exception, from the frame the core's entry left at rsp: the registers in
/// `cpu` become the application's state at the fault (the general registers are still its
/// own; rip, rsp and rflags come from the frame; user segments), so a signal frame saves, and
/// `rt_sigreturn` resumes, exactly what was interrupted.
fn user_fault(cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<AppFault, HypercallError> {
    let rsp = cpu.regs.rsp;
    let bad = HypercallError::UserFaultFrame { rsp };
    // Only the core's entry, at CPL0 on its exception stack (in the Main window), issues it.
    if cpu.sregs.cs.dpl != 0 || rsp < PHYS_MEM {
        return Err(bad);
    }
    let frame: [u64; USER_FAULT_FRAME_WORDS] = mem
        .read(Gpa(rsp - PHYS_MEM))
        .map_err(|_| HypercallError::UserFaultFrame { rsp })?;
    let [vector, error_code, rip, cs, rflags, user_rsp, _ss] = frame;
    if cs & 3 != 3 {
        return Err(bad);
    }
    let mut regs = *cpu.regs;
    regs.rip = rip;
    regs.rsp = user_rsp;
    // As the CPU pushed them; IOPL 0 and the reserved bit whatever the stack says.
    regs.rflags = (rflags & !0x3000) | 0x2;
    user_segments(cpu.sregs);
    cpu.resume_user(regs);
    Ok(AppFault::Exception {
        vector,
        error_code,
        rip,
        cr2: cpu.sregs.cr2,
    })
}
