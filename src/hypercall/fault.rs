//! Exceptions the application took: turned into the signal Linux would have sent.
use super::{Flow, HostState, HypercallError};
use crate::exit::ExitStatus;
use crate::memory::{GuestMem, MemoryError};
use crate::syscall::Process;
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
    let (signal, _) = signal_for(f.vector);
    let detail = match f.vector {
        14 => format!("fault address {:#x}, ", f.cr2),
        _ => String::new(),
    };
    Ok(Flow::EndProcess(killed(
        &state.process,
        signal,
        &detail,
        f.rip,
    )))
}

/// The application ends by `signal` at `rip`: "app killed by SIGSEGV: {detail}rip 0x..
/// (function+0x..)", the one line every application fault reports.
pub fn killed(process: &Process, signal: i32, detail: &str, rip: u64) -> ExitStatus {
    ExitStatus::Signaled {
        signal,
        report: format!(
            "app killed by {}: {detail}rip {rip:#x}{}",
            signal_name(signal),
            process.symbolize(rip)
        ),
    }
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
