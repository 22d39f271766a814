//! Running signal handlers as Linux does (arch/x86/kernel/signal.c, signal_64.c,
//! fpu/signal.c): the `rt_sigframe` built on the user stack (or the alternate stack) at the end
//! of the syscall that made a signal deliverable, and `rt_sigreturn`, which takes it back.
use super::abi::{
    FpxSwBytes, RtSigFrame, SigAltStack, SigContext, SigInfo, UContext, FP_XSTATE_MAGIC1,
    FP_XSTATE_MAGIC2, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTORER, SA_SIGINFO, SI_KERNEL,
    SS_AUTODISARM, SS_DISABLE, UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS,
};
use super::signal::{self, bit, UNBLOCKABLE};
use super::{Args, Ctx, Stop, Sys};
use crate::machine::vcpu::cpu::XSAVE_IMAGE;
use kvm_bindings::kvm_regs;
use std::mem::{offset_of, size_of};
use umon_abi::layout::selector;

/// The red zone below the user rsp that a frame skips.
const RED_ZONE: u64 = 128;
/// rflags bits a handler starts with cleared: DF, RF, TF.
const HANDLER_CLEARS: u64 = 0x400 | 0x1_0000 | 0x100;
/// rflags bits sigreturn takes from the frame (FIX_EFLAGS): AC OF DF TF SF ZF AF PF CF RF.
const FIX_EFLAGS: u64 = 0x50DD5;
/// Where the software-reserved bytes lie in the fxsave area.
const SW_BYTES: usize = 464;
/// The legacy (fxsave) area.
const FXSAVE: usize = 512;
/// MXCSR in the fxsave area, and its mask.
const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
/// XSTATE_BV in the XSAVE header.
const XSTATE_BV: usize = 512;
/// The XSAVE header's end.
const XSAVE_HEADER_END: usize = 576;
/// FP and SSE in XSTATE_BV.
const FP_SSE: u64 = 3;

/// The user registers where the application resumes after the syscall just completed: at
/// CPL3 on PVM; on hardware the vCPU waits at the stub's `sysretq` with rip in rcx and rflags
/// in r11.
fn user_regs(cx: &Ctx<'_, '_>) -> kvm_regs {
    let mut r = *cx.cpu.regs;
    if cx.cpu.sregs.cs.dpl != 3 {
        r.rip = r.rcx;
        r.rflags = (r.r11 & !0x3000) | 0x2;
    }
    r
}

/// `__on_sig_stack`: `sp` within the alternate stack, whatever its flags.
fn on_stack(alt: &Option<SigAltStack>, sp: u64) -> bool {
    alt.is_some_and(|a| sp > a.sp && sp - a.sp <= a.size)
}

/// Run `sig`'s handler: a frame on top of the user stack (or the alternate stack) and the
/// registers to enter it, as Linux's exit to user mode does (`signal::deliver` calls this
/// for each signal it takes, so several make nested frames, the last on top).
pub(super) fn run_handler(cx: &mut Ctx<'_, '_>, sig: u64, info: &SigInfo) -> Result<(), Stop> {
    if let Err(why) = setup_frame(cx, sig, info) {
        force_sigsegv(cx, sig, why)?;
    }
    Ok(())
}

/// Make the frame just built restore `mask` (rt_sigsuspend's saved mask: `sigmask_to_save`).
pub(super) fn set_frame_mask(cx: &mut Ctx<'_, '_>, mask: u64) {
    let frame = cx.cpu.regs.rsp;
    let uc = frame + offset_of!(RtSigFrame, uc) as u64;
    let _ = cx.write_val(uc + offset_of!(UContext, sigmask) as u64, &mask);
    let old = uc + (offset_of!(UContext, mcontext) + offset_of!(SigContext, oldmask)) as u64;
    let _ = cx.write_val(old, &mask);
}

/// The frame could not be written: Linux's `force_sigsegv`.
fn force_sigsegv(cx: &mut Ctx<'_, '_>, sig: u64, why: &str) -> Result<(), Stop> {
    let segv = libc::SIGSEGV as u64;
    let handled = signal::has_handler(cx, segv) && cx.thread.sigmask & bit(segv) == 0;
    if sig != segv && handled {
        signal::deliver::force(
            cx,
            SigInfo {
                signo: segv as i32,
                code: SI_KERNEL,
                ..Default::default()
            },
        );
        return Ok(());
    }
    let rip = user_regs(cx).rip;
    Err(Stop::Exit(signal::killed(
        cx.process,
        libc::SIGSEGV,
        &format!("{why}, "),
        rip,
    )))
}

fn setup_frame(cx: &mut Ctx<'_, '_>, sig: u64, info: &SigInfo) -> Result<(), &'static str> {
    let act = signal::action(cx, sig);
    if act.flags & SA_RESTORER == 0 {
        return Err("signal handler without SA_RESTORER");
    }
    // Linux's IRET to a non-canonical handler faults in user mode (SIGSEGV); KVM would refuse
    // to enter the vCPU there.
    if !canonical(act.handler) {
        return Err("signal handler at a non-canonical address");
    }
    let regs = user_regs(cx);
    let alt = cx.thread.altstack;
    let mut sp = regs.rsp.wrapping_sub(RED_ZONE);
    let entering = act.flags & SA_ONSTACK != 0 && signal::altstack_mode(alt, sp) == 0;
    if let (true, Some(a)) = (entering, alt) {
        sp = a.sp.wrapping_add(a.size);
    }
    let xstate = cx.cpu.xstate.and_then(|x| x.get());
    // With XSAVE the image is followed by FP_XSTATE_MAGIC2; without, it is the bare fxsave
    // area.
    let fp = match &xstate {
        Some(x) if x.xcr0 != 0 => (sp.wrapping_sub(x.size as u64 + 4)) & !63,
        Some(x) => (sp.wrapping_sub(x.size as u64)) & !63,
        None => sp,
    };
    let frame = ((fp.wrapping_sub(size_of::<RtSigFrame>() as u64)) & !15).wrapping_sub(8);
    if entering && !on_stack(&alt, frame) {
        return Err("signal frame does not fit the alternate stack");
    }
    let bad = "cannot write the signal frame";
    let mut uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    if let Some(x) = xstate.as_ref().filter(|x| x.xcr0 == 0) {
        cx.space()
            .write(cx.mem, fp, &x.image[..x.size])
            .map_err(|_| bad)?;
    } else if let Some(x) = &xstate {
        uc_flags |= UC_FP_XSTATE;
        let mut img = x.image[..x.size].to_vec();
        let bv = u64::from_le_bytes(img[XSTATE_BV..XSTATE_BV + 8].try_into().unwrap_or([0; 8]));
        img[XSTATE_BV..XSAVE_HEADER_END].fill(0);
        img[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&(bv | FP_SSE).to_le_bytes());
        let sw = FpxSwBytes {
            magic1: FP_XSTATE_MAGIC1,
            extended_size: x.size as u32 + 4,
            xfeatures: x.xcr0,
            xstate_size: x.size as u32,
            padding: [0; 7],
        };
        img[SW_BYTES..SW_BYTES + size_of::<FpxSwBytes>()]
            .copy_from_slice(zerocopy::IntoBytes::as_bytes(&sw));
        img.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        cx.space().write(cx.mem, fp, &img).map_err(|_| bad)?;
    }
    let old_mask = cx.thread.sigmask;
    // What sigreturn sets the alternate stack back to: the stored one, flags as given.
    let stack = alt.unwrap_or_default();
    let f = RtSigFrame {
        pretcode: act.restorer,
        uc: UContext {
            flags: uc_flags,
            link: 0,
            stack,
            mcontext: SigContext {
                r8: regs.r8,
                r9: regs.r9,
                r10: regs.r10,
                r11: regs.r11,
                r12: regs.r12,
                r13: regs.r13,
                r14: regs.r14,
                r15: regs.r15,
                rdi: regs.rdi,
                rsi: regs.rsi,
                rbp: regs.rbp,
                rbx: regs.rbx,
                rdx: regs.rdx,
                rax: regs.rax,
                rcx: regs.rcx,
                rsp: regs.rsp,
                rip: regs.rip,
                eflags: regs.rflags,
                cs: selector::USER_CS,
                ss: selector::USER_DS,
                err: cx.thread.last_fault.err,
                trapno: cx.thread.last_fault.trapno,
                cr2: cx.thread.last_fault.cr2,
                oldmask: old_mask,
                fpstate: if xstate.is_some() { fp } else { 0 },
                ..Default::default()
            },
            sigmask: old_mask,
        },
        info: if act.flags & SA_SIGINFO != 0 {
            *info
        } else {
            SigInfo::default()
        },
    };
    let bytes = zerocopy::IntoBytes::as_bytes(&f);
    // Without SA_SIGINFO Linux leaves the siginfo bytes of the stack as they were.
    let len = if act.flags & SA_SIGINFO != 0 {
        bytes.len()
    } else {
        offset_of!(RtSigFrame, info)
    };
    cx.space()
        .write(cx.mem, frame, &bytes[..len])
        .map_err(|_| bad)?;
    if stack.flags & SS_AUTODISARM != 0 {
        cx.thread.altstack = Some(SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        });
    }
    // The handler starts with the FPU in its initial state (fpu__clear_user_states).
    if let (Some(x), Some(access)) = (&xstate, cx.cpu.xstate) {
        let mut init = Box::new([0u8; XSAVE_IMAGE]);
        init[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        init[MXCSR..MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        init[MXCSR_MASK..MXCSR_MASK + 4].copy_from_slice(&x.image[MXCSR_MASK..MXCSR_MASK + 4]);
        access.set(&init);
    }
    let mut new_mask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        new_mask |= bit(sig);
    }
    cx.thread.sigmask = new_mask & !UNBLOCKABLE;
    if act.flags & SA_RESETHAND != 0 {
        signal::reset_handler(cx, sig);
    }
    let handler_regs = kvm_regs {
        rip: act.handler,
        rsp: frame,
        rdi: sig,
        rsi: frame + offset_of!(RtSigFrame, info) as u64,
        rdx: frame + offset_of!(RtSigFrame, uc) as u64,
        rax: 0,
        rflags: regs.rflags & !HANDLER_CLEARS,
        ..regs
    };
    cx.cpu.resume_user(handler_regs);
    Ok(())
}

/// Linux's 64-bit user code selector (`__USER_CS`, GDT entry 6, RPL 3).
const LINUX_USER_CS: u16 = 0x33;

fn canonical(va: u64) -> bool {
    ((va as i64) << 16 >> 16) as u64 == va
}

/// rt_sigreturn(2): back to where the handler interrupted, from the frame at rsp - 8. A frame
/// that cannot be read or restored is Linux's badframe: SIGSEGV.
pub(super) fn rt_sigreturn(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    let cur = user_regs(cx);
    let uc_at = cur.rsp;
    let uc: UContext = match cx.read_val(uc_at) {
        Ok(uc) => uc,
        Err(_) => return badframe(cx, cur),
    };
    cx.thread.sigmask = uc.sigmask & !UNBLOCKABLE;
    let sc = uc.mcontext;
    let regs = kvm_regs {
        r8: sc.r8,
        r9: sc.r9,
        r10: sc.r10,
        r11: sc.r11,
        r12: sc.r12,
        r13: sc.r13,
        r14: sc.r14,
        r15: sc.r15,
        rdi: sc.rdi,
        rsi: sc.rsi,
        rbp: sc.rbp,
        rbx: sc.rbx,
        rdx: sc.rdx,
        rax: sc.rax,
        rcx: sc.rcx,
        rsp: sc.rsp,
        rip: sc.rip,
        // Only the flags a program may change: IF stays set, IOPL stays 0.
        rflags: (((cur.rflags & !FIX_EFLAGS) | (sc.eflags & FIX_EFLAGS)) & !0x3000) | 0x202,
    };
    // Linux's own user code selector (__USER_CS, 0x33) names the same 64-bit user segment to a
    // program that writes it into a context: accepted as umon's.
    let cs_ok = sc.cs | 3 == selector::USER_CS || sc.cs | 3 == LINUX_USER_CS;
    if !cs_ok || !canonical(sc.rip) || !canonical(sc.rsp) {
        return badframe(cx, regs);
    }
    if restore_fpstate(cx, sc.fpstate).is_err() {
        return badframe(cx, regs);
    }
    // Only a fault reading it would be fatal, and it was read already; EPERM/EINVAL/ENOMEM
    // are ignored as Linux's restore_altstack does.
    let _ = signal::set_altstack(cx, uc.stack, regs.rsp);
    cx.cpu.resume_user(regs);
    signal::deliver_unblocked(cx)?;
    Err(Stop::Resumed)
}

/// Load the extended state the frame at `fp` holds (`fpu__restore_sig`).
fn restore_fpstate(cx: &mut Ctx<'_, '_>, fp: u64) -> Result<(), ()> {
    let (Some(access), Some(cur)) = (cx.cpu.xstate, cx.cpu.xstate.and_then(|x| x.get())) else {
        return Ok(());
    };
    let mut img = Box::new([0u8; XSAVE_IMAGE]);
    if fp == 0 {
        img[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        img[MXCSR..MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
    } else {
        let sw: FpxSwBytes = cx.read_val(fp + SW_BYTES as u64).map_err(|_| ())?;
        let size = sw.xstate_size as usize;
        let full = sw.magic1 == FP_XSTATE_MAGIC1
            && size >= XSAVE_HEADER_END
            && size <= cur.size
            && size as u64 + 4 <= u64::from(sw.extended_size);
        let full = full && {
            let m2: u32 = cx.read_val(fp + size as u64).map_err(|_| ())?;
            m2 == FP_XSTATE_MAGIC2
        };
        if full {
            cx.space()
                .read(cx.mem, fp, &mut img[..size])
                .map_err(|_| ())?;
            let bv = u64::from_le_bytes(img[XSTATE_BV..XSTATE_BV + 8].try_into().map_err(|_| ())?);
            // What XRSTOR faults on: components outside XCR0, the compacted format, reserved
            // header bytes.
            if bv & !cur.xcr0 != 0 || img[XSTATE_BV + 8..XSAVE_HEADER_END].iter().any(|&b| b != 0) {
                return Err(());
            }
        } else {
            // Not an XSAVE frame: the legacy area only, the rest in its initial state.
            cx.space()
                .read(cx.mem, fp, &mut img[..FXSAVE])
                .map_err(|_| ())?;
            img[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&FP_SSE.to_le_bytes());
        }
        img[SW_BYTES..FXSAVE].fill(0);
    }
    let mask = u32::from_le_bytes(
        cur.image[MXCSR_MASK..MXCSR_MASK + 4]
            .try_into()
            .map_err(|_| ())?,
    );
    let mxcsr = u32::from_le_bytes(img[MXCSR..MXCSR + 4].try_into().map_err(|_| ())?);
    let mask = if mask == 0 { 0xffbf } else { mask };
    if mxcsr & !mask != 0 {
        return Err(());
    }
    img[MXCSR_MASK..MXCSR_MASK + 4].copy_from_slice(&cur.image[MXCSR_MASK..MXCSR_MASK + 4]);
    if access.set(&img) {
        Ok(())
    } else {
        Err(())
    }
}

/// A frame rt_sigreturn cannot restore: SIGSEGV, with the registers restored so far.
fn badframe(cx: &mut Ctx<'_, '_>, regs: kvm_regs) -> Sys {
    cx.cpu.resume_user(regs);
    force_sigsegv(cx, 0, "rt_sigreturn with a bad signal frame")?;
    Err(Stop::Resumed)
}
