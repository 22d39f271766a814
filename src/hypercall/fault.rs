//! Exceptions the application took: turned into the signal Linux would have sent.
use super::{Flow, HostState, HypercallError};
use crate::memory::{GuestMem, MemoryError};
use crate::ExitStatus;
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

/// The signal Linux delivers for exception `vector`, with its name.
pub fn signal_for(vector: u64) -> (i32, &'static str) {
    match vector {
        0 => (libc::SIGFPE, "SIGFPE"),
        1 | 3 => (libc::SIGTRAP, "SIGTRAP"),
        4 | 5 | 13 | 14 => (libc::SIGSEGV, "SIGSEGV"),
        6 => (libc::SIGILL, "SIGILL"),
        7 | 16 | 19 => (libc::SIGFPE, "SIGFPE"),
        12 | 17 => (libc::SIGBUS, "SIGBUS"),
        _ => (libc::SIGSEGV, "SIGSEGV"),
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
    let (signal, name) = signal_for(f.vector);
    let place = state.process.symbolize(f.rip);
    let detail = match f.vector {
        14 => format!("fault address {:#x}, rip {:#x}{place}", f.cr2, f.rip),
        _ => format!("rip {:#x}{place}", f.rip),
    };
    Ok(Flow::Exit(ExitStatus::Signaled {
        signal,
        report: format!("app killed by {name}: {detail}"),
    }))
}

/// The name of signal `sig` ("SIGSEGV"), or "signal N".
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
