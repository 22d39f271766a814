//! Exceptions the application took: turned into the signal Linux would have sent.
use super::{Flow, HostState, HypercallError};
use crate::memory::{GuestMem, MemoryError};
use umon_abi::hypercall::FaultReport;
use umon_abi::Gpa;

pub enum FaultError {
    Memory(MemoryError),
    Core(HypercallError),
}

impl From<MemoryError> for FaultError {
    fn from(e: MemoryError) -> Self {
        FaultError::Memory(e)
    }
}

/// Read the report and end the VM the way Linux ends a process killed by that signal.
pub fn report(mem: &GuestMem, state: &mut HostState, at: Gpa) -> Result<Flow, FaultError> {
    let f: FaultReport = mem.read(at)?;
    log::debug!("fault report: {f:x?}");
    if f.cs & 3 != 3 {
        return Err(FaultError::Core(HypercallError::CoreFault {
            vector: f.vector,
            rip: f.rip,
            cr2: f.cr2,
        }));
    }
    let signal = crate::syscall::signal::signal_for(f.vector);
    let detail = match f.vector {
        14 => format!("fault address {:#x}, ", f.cr2),
        _ => String::new(),
    };
    Ok(Flow::EndProcess(crate::syscall::signal::killed(
        &state.process,
        signal,
        &detail,
        f.rip,
    )))
}
