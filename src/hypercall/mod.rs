//! Hypercall dispatch: the monitor's side of `umon_abi::hypercall`. Handlers see guest memory,
//! the host state and the vCPU registers, never KVM. Guest input is hostile: every pointer and
//! length is checked by [`GuestMem`]; a protocol violation ends the VM with a
//! [`HypercallError`], a guest-level failure returns a negative errno in band.
mod console;
mod fault;

pub use crate::syscall::signal::{killed, signal_name};

use crate::exit::ExitStatus;
use crate::memory::{GuestMem, MemoryError};
use crate::stdio::Stdio;
use crate::syscall;
pub use crate::vcpu::cpu::{Cpu, Flow};
use umon_abi::hypercall::{Abort, EnterUser, Hypercall, SelftestReport};
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

/// Everything the monitor keeps for one VM between exits.
pub struct HostState {
    /// The application's standard streams.
    pub stdio: Stdio,
    /// The self-check result, once reported.
    pub selftest: Option<SelftestReport>,
    /// The Linux process the application sees.
    pub process: syscall::Process,
    /// Stops the VM from outside (kill handle, timeout, signals to umon).
    pub stop: crate::stop::KillHandle,
    /// `--trace`: every syscall of the application, strace-style.
    pub trace: Option<crate::trace::Tracer>,
}

impl HostState {
    /// The status to end with when something outside the guest asked the VM to stop.
    pub fn stop_requested(&self) -> Option<ExitStatus> {
        self.stop.requested().map(|r| r.status())
    }
}

/// Handle hypercall `nr`.
pub fn dispatch(
    nr: u16,
    cpu: &mut Cpu<'_>,
    mem: &GuestMem,
    state: &mut HostState,
) -> Result<Flow, HypercallError> {
    let call = Hypercall::try_from(nr).map_err(|nr| HypercallError::Unknown { nr })?;
    let arg = cpu.regs.rdi;
    let bad = |source| HypercallError::BadArgument { call, source };
    match call {
        Hypercall::Syscall => syscall::handle(cpu, mem, state),
        Hypercall::ConsoleWrite => {
            console::write(mem, state, Gpa(arg)).map_err(bad)?;
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
            state.selftest = Some(mem.read(Gpa(arg)).map_err(bad)?);
            Ok(Flow::Continue)
        }
        Hypercall::EnterUser => {
            let args: EnterUser = mem.read(Gpa(arg)).map_err(bad)?;
            cpu.enter_user(&args);
            Ok(Flow::Continue)
        }
        Hypercall::Fault => fault::report(mem, state, Gpa(arg)).map_err(|e| match e {
            fault::FaultError::Memory(source) => bad(source),
            fault::FaultError::Core(e) => e,
        }),
        // rcx is where the CPU would return to, just after the 2-byte `syscall`.
        Hypercall::CompatSyscall => Ok(Flow::EndProcess(killed(
            &state.process,
            libc::SIGILL,
            "syscall from 32-bit code (no IA32 emulation), ",
            cpu.regs.rcx.wrapping_sub(2),
        ))),
        _ => Err(HypercallError::Unknown { nr }),
    }
}
