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
use crate::machine::vcpu::{AppFault, ExitHandler};
use umon_abi::hypercall::{Abort, EnterUser, FaultReport, Hypercall, SelftestReport};
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
                rip: f.rip,
                cr2: f.cr2,
            };
            Ok(handler.app_fault(cpu, fault))
        }
        // rcx is where the CPU would return to, just after the 2-byte `syscall`.
        Hypercall::CompatSyscall => {
            let rip = cpu.regs.rcx.wrapping_sub(2);
            Ok(handler.app_fault(cpu, AppFault::CompatSyscall { rip }))
        }
        _ => Err(HypercallError::Unknown { nr }),
    }
}
