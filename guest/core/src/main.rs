//! umon-core: the guest side of umon. The monitor does the byte work (page tables, GDT/IDT/TSS,
//! MSRs, loading the application, building its stack) before the first instruction, because every
//! CPL0 instruction is emulated on PVM. The core checks the boot info, optionally verifies the
//! memory layout from inside, and enters the application at CPL3 (the monitor skips this boot
//! and enters an application itself when the core is the built-in one). Exceptions the application
//! takes come back here and go to the monitor at once, registers untouched
//! (`Hypercall::UserFault`); the core's own are reported by [`fault`].
#![no_std]
#![no_main]

mod arch;
mod mem;
mod selftest;

use umon_abi::boot::{BootInfo, BootMode, BOOT_MAGIC};
use umon_abi::hypercall::{Abort, EnterUser, FaultReport, Hypercall};
use umon_abi::ABI_VERSION;

/// Called from `_start` with the virtual address of the boot info (in the Main window).
pub extern "C" fn core_main(boot_info: u64) -> ! {
    let info = boot_info as *const BootInfo;
    // Field by field, not the whole struct: every load is emulated on PVM, and a whole-struct
    // volatile copy is hundreds of byte loads.
    macro_rules! field {
        ($f:ident) => {
            // SAFETY: the monitor wrote a BootInfo at this address, in the Main window, before
            // start; every field is a plain integer, so any bit pattern is valid.
            unsafe { core::ptr::addr_of!((*info).$f).read_volatile() }
        };
    }
    if field!(magic) != BOOT_MAGIC {
        abort("bad boot info magic");
    }
    if field!(abi_version) != ABI_VERSION {
        abort("boot info ABI version mismatch");
    }
    match BootMode::from_raw(field!(mode)) {
        Some(BootMode::RunApp) => enter_user(field!(app_entry), field!(app_stack), 0),
        Some(BootMode::Selftest) => selftest::run(field!(ram_bytes)),
        Some(BootMode::ExitAtOnce) => exit(0),
        Some(BootMode::SyscallLoop) => enter_user(
            arch::echo_loop_entry(),
            field!(app_stack),
            field!(loop_count),
        ),
        None => abort("unknown boot mode"),
    }
}

/// Leave the core for good; the monitor installs the CPL3 state.
fn enter_user(rip: u64, rsp: u64, rdi: u64) -> ! {
    let args = EnterUser { rip, rsp, rdi };
    arch::hypercall(
        Hypercall::EnterUser,
        mem::gpa_of(core::ptr::addr_of!(args) as u64),
    );
    abort("the monitor did not enter user mode")
}

/// End the VM with `code`.
pub fn exit(code: u64) -> ! {
    arch::hypercall(Hypercall::Exit, code);
    arch::halt()
}

/// Give up with a reason the monitor prints.
pub fn abort(reason: &'static str) -> ! {
    let args = Abort {
        reason: mem::gpa_of(reason.as_ptr() as u64),
        len: reason.len() as u64,
    };
    arch::hypercall(
        Hypercall::Abort,
        mem::gpa_of(core::ptr::addr_of!(args) as u64),
    );
    arch::halt()
}

/// An exception the core itself took (at CPL0; the application's never get here): report it. `frame` points at [vector, error, rip, cs, rflags,
/// rsp, ss] on this vCPU's own exception stack (TSS.RSP0/IST1 of its own TSS), and the report is
/// a local on that same stack, passed by address as `enter_user` and `abort` pass theirs: several
/// vCPUs may fault at once, so nothing here is shared.
pub extern "C" fn fault(frame: *const u64) -> ! {
    let at = |i: usize| {
        // SAFETY: `exception_common` passes the 7-word frame it just built on the exception stack.
        unsafe { frame.add(i).read_volatile() }
    };
    let report = FaultReport {
        vector: at(0),
        error_code: at(1),
        rip: at(2),
        cs: at(3),
        rflags: at(4),
        rsp: at(5),
        ss: at(6),
        cr2: arch::cr2(),
    };
    arch::hypercall(
        Hypercall::Fault,
        mem::gpa_of(core::ptr::addr_of!(report) as u64),
    );
    arch::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    abort("core panic")
}
