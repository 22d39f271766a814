//! Synchronous faults as Linux turns them into signals (arch/x86/kernel/traps.c,
//! arch/x86/mm/fault.c, arch/x86/kernel/fpu/core.c): the signal, si_code and si_addr of each
//! exception, the trap number, error code and CR2 the handler's frame carries, and
//! `force_sig_fault`'s rule that a fault whose signal is blocked or ignored kills.
use super::abi::{SigInfo, SI_KERNEL, TASK_SIZE_MAX};
use super::mm::{self, fault::Outcome};
use super::signal::{self, bit};
use super::{Ctx, Stop};
use crate::machine::vcpu::AppFault;

/// si_code of SIGSEGV: no mapping at the address.
pub const SEGV_MAPERR: i32 = 1;
/// si_code of SIGSEGV: a mapping whose protection forbids the access.
pub const SEGV_ACCERR: i32 = 2;
/// si_code of SIGILL: illegal operand (#UD).
pub const ILL_ILLOPN: i32 = 2;
/// si_code of SIGFPE: integer divide by zero (#DE).
pub const FPE_INTDIV: i32 = 1;
/// si_code of SIGFPE for the x87/SSE exceptions (`fpu__exception_code`).
const FPE_FLTDIV: i32 = 3;
const FPE_FLTOVF: i32 = 4;
const FPE_FLTUND: i32 = 5;
const FPE_FLTRES: i32 = 6;
const FPE_FLTINV: i32 = 7;
/// The page-fault error code's "protection violation" bit (X86_PF_PROT).
const PF_PROT: u64 = 1;
/// The #PF error code of a user store, and load, to a page that is not present: what an
/// access to guest RAM never handed out would have been on Linux.
const PF_USER_WRITE: u64 = 6;
const PF_USER_READ: u64 = 4;
/// MXCSR in the fxsave area of an XSAVE image.
const FX_MXCSR: usize = 24;

const VEC_DE: u64 = 0;
const VEC_DB: u64 = 1;
const VEC_UD: u64 = 6;
const VEC_NP: u64 = 11;
const VEC_SS: u64 = 12;
const VEC_GP: u64 = 13;
const VEC_PF: u64 = 14;
const VEC_MF: u64 = 16;
const VEC_AC: u64 = 17;
const VEC_XM: u64 = 19;

/// What the last fault left in the thread (Linux's `thread.trap_nr`, `error_code`, `cr2`):
/// every signal frame's sigcontext carries it, as Linux's does, until the next fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultRecord {
    /// The vector.
    pub trapno: u64,
    /// The error code.
    pub err: u64,
    /// The last page fault's address (left as it was by other faults).
    pub cr2: u64,
}

/// One fault, decided: the signal, its siginfo, the record for the frame, and what umon's line
/// says if it kills.
struct Decided {
    info: SigInfo,
    trapno: u64,
    err: u64,
    cr2: Option<u64>,
    detail: String,
    rip: u64,
}

fn info(signo: i32, code: i32, addr: u64) -> SigInfo {
    let mut i = SigInfo {
        signo,
        code,
        ..Default::default()
    };
    i.fields[0] = addr;
    i
}

/// The signal Linux sends for `fault`; None for a floating-point exception none of whose
/// flags is unmasked (Linux sends nothing and the instruction runs again).
fn decide(cx: &Ctx<'_, '_>, fault: AppFault) -> Option<Decided> {
    let d = match fault {
        AppFault::Exception {
            vector,
            error_code,
            rip,
            cr2,
        } => {
            let sig = signal::signal_for(vector);
            let (code, addr) = match vector {
                VEC_DE => (FPE_INTDIV, rip),
                VEC_DB => (libc::TRAP_TRACE, rip),
                VEC_UD => (ILL_ILLOPN, rip),
                VEC_AC => (libc::BUS_ADRALN, 0),
                VEC_PF => (segv_code(cx, cr2), cr2),
                VEC_MF | VEC_XM => (fpu_code(cx, vector)?, rip),
                // int3 (rip is already past it), #OF, #BR, #NP, #SS, #GP: force_sig, no
                // address.
                _ => (SI_KERNEL, 0),
            };
            let never_allocated = vector == VEC_PF && {
                let space = cx.space();
                cr2 >= space.arena.start && cr2 < space.arena.end && !space.is_mapped(cr2, 1)
            };
            let err = match vector {
                // sanitize_error_code: a kernel address reads as a protection fault.
                VEC_PF if cr2 >= TASK_SIZE_MAX => error_code | PF_PROT,
                VEC_GP | VEC_NP | VEC_SS | VEC_PF | VEC_AC => error_code,
                _ => 0,
            };
            Decided {
                info: info(sig, code, addr),
                trapno: vector,
                err,
                cr2: (vector == VEC_PF).then_some(cr2),
                detail: match vector {
                    // The heap area brk and mmap hand out, where nothing is mapped: what a
                    // wild pointer into the heap reaches.
                    VEC_PF if never_allocated => {
                        format!("access to memory it never allocated (fault address {cr2:#x}), ")
                    }
                    VEC_PF => format!("fault address {cr2:#x}, "),
                    _ => String::new(),
                },
                rip,
            }
        }
        AppFault::CompatSyscall { rip } => Decided {
            info: info(libc::SIGILL, ILL_ILLOPN, rip),
            trapno: VEC_UD,
            err: 0,
            cr2: None,
            detail: "syscall from 32-bit code (no IA32 emulation), ".into(),
            rip,
        },
        // `in` at CPL3 is a #GP on Linux (IOPL 0, no I/O bitmap).
        AppFault::StrayAccess { rip, gpa: None, .. } => Decided {
            info: info(libc::SIGSEGV, SI_KERNEL, 0),
            trapno: VEC_GP,
            err: 0,
            cr2: None,
            detail: String::new(),
            rip,
        },
        AppFault::StrayAccess {
            rip,
            gpa: Some(gpa),
            write,
        } => {
            let va = virtual_of(cx, gpa);
            Decided {
                info: info(libc::SIGSEGV, SEGV_MAPERR, va),
                trapno: VEC_PF,
                err: if write { PF_USER_WRITE } else { PF_USER_READ },
                cr2: Some(va),
                detail: format!("access to memory it never allocated (guest-physical {gpa:#x}), "),
                rip,
            }
        }
    };
    Some(d)
}

/// SEGV_MAPERR where nothing is mapped at `addr` (or it is a kernel address), SEGV_ACCERR
/// where a mapping forbids the access (`bad_area` vs `access_error` in do_user_addr_fault).
fn segv_code(cx: &Ctx<'_, '_>, addr: u64) -> i32 {
    if addr < TASK_SIZE_MAX && cx.space().is_mapped(addr, 1) {
        SEGV_ACCERR
    } else {
        SEGV_MAPERR
    }
}

/// The application's address of guest-physical `gpa` (the arena and image are linear), or 0.
fn virtual_of(cx: &Ctx<'_, '_>, gpa: u64) -> u64 {
    cx.space()
        .regions()
        .iter()
        .find(|r| gpa >= r.pa && gpa - r.pa < r.end - r.start)
        .map_or(0, |r| r.start + (gpa - r.pa))
}

/// `fpu__exception_code`: the first unmasked x87 (#MF, from FSW and FCW) or SIMD (#XM, from
/// MXCSR) exception flag.
fn fpu_code(cx: &Ctx<'_, '_>, vector: u64) -> Option<i32> {
    // Unreadable state (KVM refused): a signal all the same, rather than the same fault forever.
    let Some(x) = cx.cpu.xstate.and_then(|x| x.get()) else {
        return Some(FPE_FLTINV);
    };
    let u16_at = |o: usize| u32::from(u16::from_le_bytes([x.image[o], x.image[o + 1]]));
    let err = if vector == VEC_MF {
        let (cwd, swd) = (u16_at(0), u16_at(2));
        swd & !cwd
    } else {
        let m = u16_at(FX_MXCSR) | (u16_at(FX_MXCSR + 2) << 16);
        !(m >> 7) & m
    };
    fpe_code(err)
}

/// The si_code of the first exception in `err` (unmasked flags, x87 and MXCSR share the low
/// six bits), in Linux's order; None if there is none.
fn fpe_code(err: u32) -> Option<i32> {
    Some(if err & 0x1 != 0 {
        FPE_FLTINV
    } else if err & 0x4 != 0 {
        FPE_FLTDIV
    } else if err & 0x8 != 0 {
        FPE_FLTOVF
    } else if err & 0x12 != 0 {
        FPE_FLTUND
    } else if err & 0x20 != 0 {
        FPE_FLTRES
    } else {
        return None;
    })
}

/// The application took `fault`; `cx.cpu` holds its registers at the fault. Its handler runs
/// (the vCPU resumes there), or the process ends with umon's one line.
pub(super) fn take(cx: &mut Ctx<'_, '_>, fault: AppFault) -> Result<(), Stop> {
    log::debug!("app fault {fault:?}");
    if let AppFault::Exception {
        vector: VEC_PF,
        error_code,
        rip,
        cr2,
    } = fault
    {
        // A lazy mapping's first touch: the instruction runs again once the frame is there.
        match mm::fault::populate(cx, cr2, error_code, rip)? {
            Outcome::Retry => return Ok(()),
            Outcome::Bus => {
                let rec = &mut cx.thread.last_fault;
                rec.trapno = VEC_PF;
                rec.err = error_code;
                rec.cr2 = cr2;
                let detail =
                    format!("access past the end of a mapped file (fault address {cr2:#x}), ");
                return force(cx, info(libc::SIGBUS, libc::BUS_ADRERR, cr2), &detail, rip);
            }
            Outcome::Signal => {}
        }
    }
    let Some(d) = decide(cx, fault) else {
        return Ok(());
    };
    let rec = &mut cx.thread.last_fault;
    rec.trapno = d.trapno;
    rec.err = d.err;
    if let Some(cr2) = d.cr2 {
        rec.cr2 = cr2;
    }
    force(cx, d.info, &d.detail, d.rip)
}

/// Linux's `force_sig_info_to_task`: a fault's signal cannot be blocked or ignored; then it is
/// SIG_DFL, whose action for every fault signal ends the process (with umon's line, which names
/// the fault). With a handler, it runs now.
fn force(cx: &mut Ctx<'_, '_>, info: SigInfo, detail: &str, rip: u64) -> Result<(), Stop> {
    let sig = info.signo as u64;
    if cx.thread.sigmask & bit(sig) != 0 || !signal::has_handler(cx, sig) {
        return Err(Stop::Exit(signal::killed(
            cx.process, info.signo, detail, rip,
        )));
    }
    signal::deliver::force(cx, info);
    signal::deliver::deliver(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpe_codes_follow_linux_priority() {
        assert_eq!(fpe_code(0), None);
        assert_eq!(fpe_code(0x3f), Some(FPE_FLTINV));
        assert_eq!(fpe_code(0x04 | 0x20), Some(FPE_FLTDIV));
        assert_eq!(fpe_code(0x08), Some(FPE_FLTOVF));
        assert_eq!(fpe_code(0x02), Some(FPE_FLTUND));
        assert_eq!(fpe_code(0x10), Some(FPE_FLTUND));
        assert_eq!(fpe_code(0x20), Some(FPE_FLTRES));
    }
}
