//! Console output from the core (diagnostics); the application's output goes through write(2).
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::vcpu::ExitHandler;
use umon_abi::hypercall::ConsoleWrite;
use umon_abi::Gpa;

/// Copy the guest's bytes to stdout or stderr; the result goes back into the args struct.
pub fn write(mem: &GuestMem, handler: &mut dyn ExitHandler, at: Gpa) -> Result<(), MemoryError> {
    let mut args: ConsoleWrite = mem.read(at)?;
    mem.check_range(Gpa(args.data), args.len)?;
    if args.fd != 1 && args.fd != 2 {
        args.ret = -i64::from(libc::EBADF);
        return mem.write(at, &args);
    }
    let mut buf = vec![0u8; args.len.min(1 << 20) as usize];
    mem.read_bytes(Gpa(args.data), &mut buf)?;
    args.ret = match handler.console(args.fd, &buf) {
        Ok(()) => buf.len() as i64,
        Err(e) => -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    mem.write(at, &args)
}
