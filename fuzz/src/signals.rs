//! The signal half of the `syscall` target: structured signal calls (an op byte in
//! `SIGNAL_OPS`), the real delivery after every call (`LinuxThread::before_run`, with the
//! harness's fake FPU), and the invariants checked after it.
//!
//! A signal op is `0xb0 | k`, then what call `k` needs from the input: rt_sigaction with a
//! sigaction built from the input (handler SIG_DFL, SIG_IGN, in the text, or any value; flags
//! from the SA_* bits; restorer in the text), rt_sigprocmask, rt_sigpending, sigaltstack (a
//! stack in any region or anywhere), kill, tgkill/tkill, rt_sigqueueinfo/rt_tgsigqueueinfo with
//! an input siginfo, rt_sigreturn as the handler's `ret` to its restorer would make it (rsp + 8)
//! or at any rsp (forged frames, from the input's pokes), rt_sigsuspend, rt_sigtimedwait with a
//! short timeout, signalfd4, and a read or poll of the fd it returned.
//!
//! Checked after every delivery, besides "no panic": the application resumes at CPL3 (CS and
//! SS), with IOPL 0, IF set and no VM flag; a handler starts with rsp % 16 == 8 on a frame
//! inside a writable region (frames are written only through the address space; the canary
//! and text checks at the end see any stray write). A handler entered with one frame and left
//! at once with rt_sigreturn gives back exactly the registers, the mask and the FPU image it
//! interrupted.
use crate::input::Input;
use crate::machine::{Machine, AREAS, DATA, STACK, TEXT};
use umon::linux::abi::{SigAction, SigAltStack, SA_NODEFER, SA_ONSTACK, SA_RESETHAND};
use umon::linux::abi::{SA_RESTART, SA_RESTORER, SA_SIGINFO, SS_AUTODISARM, SS_DISABLE};

/// Op bytes `SIGNAL_OPS..SIGNAL_OPS + 16` are signal calls.
pub const SIGNAL_OPS: u8 = 0xb0;

/// Where in the data region the signal ops put their structures.
const SCRATCH: u64 = DATA.va + 0xe000;

/// rt_sigframe up to uc_mcontext: pretcode, uc_flags, uc_link, uc_stack.
const FRAME_MCONTEXT: u64 = 8 + 8 + 8 + 24;

/// The state a delivery interrupted, kept to check a handler that returns at once.
#[derive(Clone)]
pub struct Interrupted {
    regs: kvm_bindings::kvm_regs,
    /// None when the call itself changed the mask.
    mask: Option<u64>,
    fpu: Vec<u8>,
    /// rsp at the handler's entry (its frame).
    frame: u64,
}

/// A signal number: mostly valid ones, sometimes 0 or past 64.
fn sig(input: &mut Input<'_>) -> u64 {
    match input.u8() {
        b @ 0..=199 => u64::from(b % 64) + 1,
        b @ 200..=249 => u64::from(b - 200) % 8 + 10, // SIGUSR1..: handled, ignorable, default
        250 => 0,
        251 => 65,
        _ => input.u64(),
    }
}

/// An fd: the last call's result (a signalfd just made), or 3.. by the input.
fn fd(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() {
        0 => m.last_fd(),
        b => u64::from(b) + 2,
    }
}

/// A pointer for an output or input structure: the scratch area mostly, else an argument.
fn ptr(m: &Machine, input: &mut Input<'_>, at: u64) -> u64 {
    match input.u8() % 8 {
        0 => 0,
        1 => m.arg(input),
        _ => at,
    }
}

fn write<T: zerocopy::IntoBytes + zerocopy::Immutable>(m: &mut Machine, va: u64, v: &T) {
    let space = m.state.process.space();
    let _ = space.write_val(&m.state.machine.mem, va, v);
}

/// An address for a handler, restorer or stack: text, a writable region, or any value.
fn place(input: &mut Input<'_>) -> u64 {
    match input.u8() % 6 {
        0 | 1 => TEXT.va + u64::from(input.u16()) % TEXT.len,
        2 => {
            let a = AREAS[usize::from(input.u8()) % AREAS.len()];
            a.va + u64::from(input.u32()) % a.len
        }
        3 => STACK.va + u64::from(input.u16()) % STACK.len,
        _ => input.u64(),
    }
}

/// Run signal op `k` (`op & 15`); false when the process is over.
pub fn op(m: &mut Machine, k: u8, input: &mut Input<'_>) -> bool {
    let s0 = SCRATCH;
    let (nr, args): (u64, [u64; 6]) = match k {
        0 => {
            let handler = match input.u8() % 4 {
                0 => 0,
                1 => 1,
                2 => TEXT.va + u64::from(input.u16()) % TEXT.len,
                _ => place(input),
            };
            let bits = input.u8();
            let mut flags = [SA_SIGINFO, SA_RESTART, SA_ONSTACK, SA_NODEFER, SA_RESETHAND]
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .fold(0, |f, (_, b)| f | b);
            if bits & 0x20 == 0 {
                flags |= SA_RESTORER;
            }
            if bits & 0x40 != 0 {
                flags |= u64::from(input.u32());
            }
            let act = SigAction {
                handler,
                flags,
                restorer: place(input),
                mask: input.u64(),
            };
            write(m, s0, &act);
            let a = ptr(m, input, s0);
            let o = ptr(m, input, s0 + 0x40);
            (13, [sig(input), a, o, 8, 0, 0])
        }
        1 => {
            let set = input.u64();
            write(m, s0, &set);
            let how = u64::from(input.u8() % 4);
            let a = ptr(m, input, s0);
            let o = ptr(m, input, s0 + 0x40);
            (14, [how, a, o, 8, 0, 0])
        }
        2 => (127, [ptr(m, input, s0), 8, 0, 0, 0, 0]),
        3 => {
            let flags = match input.u8() % 4 {
                0 => 0,
                1 => SS_DISABLE,
                2 => SS_AUTODISARM,
                _ => input.u32() as i32,
            };
            let ss = SigAltStack {
                sp: place(input),
                flags,
                pad: 0,
                size: u64::from(input.u16()) * 4,
            };
            write(m, s0, &ss);
            let a = ptr(m, input, s0);
            let o = ptr(m, input, s0 + 0x40);
            (131, [a, o, 0, 0, 0, 0])
        }
        4 => {
            let pid = match input.u8() % 4 {
                0 => 1,
                1 => 0,
                2 => u64::MAX,
                _ => m.arg(input),
            };
            (62, [pid, sig(input), 0, 0, 0, 0])
        }
        5 => match input.u8() % 3 {
            0 => (200, [1, sig(input), 0, 0, 0, 0]),
            1 => (234, [1, 1, sig(input), 0, 0, 0]),
            _ => (234, [m.arg(input), m.arg(input), sig(input), 0, 0, 0]),
        },
        6 | 7 => {
            let signo = sig(input);
            let code = match input.u8() % 6 {
                0 => -1i32,
                1 => -6,
                2 => 0,
                3 => 0x80,
                4 => 1,
                _ => input.u32() as i32,
            };
            let mut info = umon::linux::abi::SigInfo {
                signo: signo as i32,
                code,
                ..Default::default()
            };
            info.fields[0] = input.u64();
            info.fields[1] = input.u64();
            write(m, s0, &info);
            let p = ptr(m, input, s0);
            if k == 6 {
                (129, [1, signo, p, 0, 0, 0])
            } else {
                (297, [1, 1, signo, p, 0, 0])
            }
        }
        8 => {
            // The handler's `ret` into its restorer pops pretcode.
            m.regs.rsp = m.regs.rsp.wrapping_add(8);
            m.expect_return = m.handler.take();
            (15, [0; 6])
        }
        9 => {
            m.regs.rsp = match input.u8() % 3 {
                0 => STACK.va + u64::from(input.u16()) % STACK.len,
                1 => DATA.va + u64::from(input.u16()) % DATA.len,
                _ => m.arg(input),
            };
            (15, [0; 6])
        }
        10 => {
            let mask = input.u64();
            write(m, s0, &mask);
            (130, [ptr(m, input, s0), 8, 0, 0, 0, 0])
        }
        11 => {
            let set = input.u64();
            write(m, s0, &set);
            let ts = umon::linux::abi::Timespec {
                sec: 0,
                nsec: i64::from(input.u16()),
            };
            write(m, s0 + 0x10, &ts);
            let t = if input.u8() & 1 == 0 { s0 + 0x10 } else { 0 };
            (
                128,
                [ptr(m, input, s0), ptr(m, input, s0 + 0x40), t, 8, 0, 0],
            )
        }
        12 => {
            let mask = input.u64();
            write(m, s0, &mask);
            let flags = match input.u8() % 4 {
                0 => 0,
                1 => 0o4000,
                2 => 0o2004000,
                _ => u64::from(input.u32()),
            };
            let fd = match input.u8() % 3 {
                0 => u64::MAX,
                1 => m.last(),
                _ => m.arg(input),
            };
            (289, [fd, ptr(m, input, s0), 8, flags, 0, 0])
        }
        13 => {
            let fd = fd(m, input);
            let len = u64::from(input.u16() % 1024);
            (0, [fd, ptr(m, input, s0 + 0x100), len, 0, 0, 0])
        }
        14 => {
            let fd = fd(m, input);
            write(m, s0, &(fd as u32 as u64 | (1 << 32)));
            (7, [ptr(m, input, s0), 1, 0, 0, 0, 0])
        }
        _ => (34, [0; 6]),
    };
    m.syscall(nr, args)
}

impl Machine {
    /// The state the application returns to from syscall `pre` (the registers it was made
    /// with) when nothing else happens: Linux's return to user mode, rax aside.
    pub fn returned(pre: &kvm_bindings::kvm_regs) -> kvm_bindings::kvm_regs {
        kvm_bindings::kvm_regs {
            rip: pre.rcx,
            rflags: (pre.r11 & 0x3c_7fd7 & !0x3000) | 2,
            ..*pre
        }
    }

    /// The registers a frame at `rsp` (a handler's entry) saved: rax, rip and all of them.
    fn saved(&self, rsp: u64) -> Option<kvm_bindings::kvm_regs> {
        let space = self.state.process.space();
        let sc: umon::linux::abi::SigContext = space
            .read_val(&self.state.machine.mem, rsp.checked_add(FRAME_MCONTEXT)?)
            .ok()?;
        Some(kvm_bindings::kvm_regs {
            rax: sc.rax,
            rbx: sc.rbx,
            rcx: sc.rcx,
            rdx: sc.rdx,
            rsi: sc.rsi,
            rdi: sc.rdi,
            rsp: sc.rsp,
            rbp: sc.rbp,
            r8: sc.r8,
            r9: sc.r9,
            r10: sc.r10,
            r11: sc.r11,
            r12: sc.r12,
            r13: sc.r13,
            r14: sc.r14,
            r15: sc.r15,
            rip: sc.rip,
            rflags: sc.eflags,
        })
    }

    /// After syscall `nr` made with registers `pre` (and the mask and FPU image then): the
    /// real delivery, as before every guest entry (the syscall path itself may already have
    /// built frames), and its invariants; false when the process is over.
    pub fn deliver(
        &mut self,
        nr: u64,
        pre: &kvm_bindings::kvm_regs,
        mask: u64,
        fpu: Vec<u8>,
    ) -> bool {
        let hardware = self.sregs.cs.dpl != 3;
        if hardware {
            // The stub's sysretq has not run yet: its effect first.
            self.regs.rip = self.regs.rcx;
            self.regs.rflags = (self.regs.r11 & 0x3c_7fd7) | 2;
        }
        self.sregs.cs.dpl = 3;
        self.sregs.ss.dpl = 3;
        if let Some(flow) = self.before_run() {
            return self.ended_by(flow);
        }
        let r = self.regs;
        assert!(
            self.sregs.cs.dpl == 3 && self.sregs.ss.dpl == 3,
            "resumed outside user mode: cs {:?} ss {:?}",
            self.sregs.cs,
            self.sregs.ss
        );
        assert!(
            r.rflags & 0x3000 == 0 && r.rflags & 0x200 != 0 && r.rflags & (1 << 17) == 0,
            "resumed with rflags {:#x} after syscall {nr} (made with rflags {:#x}, r11 {:#x})",
            r.rflags,
            pre.rflags,
            pre.r11
        );
        assert!(r.rflags & 2 != 0, "rflags bit 1 clear: {:#x}", r.rflags);
        self.handler = None;
        // A frame always moves rsp (a restart without a handler only moves rip back); a
        // successful rt_sigreturn sets rsp itself.
        let entered = r.rsp != pre.rsp && nr != NR_RT_SIGRETURN;
        if entered {
            assert_eq!(r.rsp % 16, 8, "handler entered with rsp {:#x}", r.rsp);
            assert!(
                AREAS
                    .iter()
                    .any(|a| a.write && r.rsp >= a.va && r.rsp < a.va + a.len),
                "frame at {:#x} outside every writable region",
                r.rsp
            );
            // One frame on the state the syscall returned to (not nested, not restarted): a
            // return from it must give that state back. Only rax, the result, is the call's.
            let want = Machine::returned(pre);
            if let Some(saved) = self.saved(r.rsp) {
                if saved.rip == want.rip && saved.rsp == want.rsp {
                    let mask = (!MASK_CALLS.contains(&nr)).then_some(mask);
                    self.handler = Some(Interrupted {
                        regs: kvm_bindings::kvm_regs {
                            rax: saved.rax,
                            ..want
                        },
                        mask,
                        fpu,
                        frame: r.rsp,
                    });
                }
            }
        }
        if hardware && !entered {
            // Keep the input's return path for the next call.
            self.sregs.cs.dpl = 0;
            self.sregs.ss.dpl = 0;
        }
        true
    }

    /// After rt_sigreturn straight out of a handler with one frame: exactly what it
    /// interrupted (or, when the restored mask let another signal in at once, a frame that
    /// saved exactly that).
    pub fn check_return(&mut self, from: &Interrupted) {
        let now = if self.regs.rsp == from.regs.rsp {
            self.regs
        } else {
            match self.saved(self.regs.rsp) {
                Some(s) if s.rip == from.regs.rip && s.rsp == from.regs.rsp => s,
                _ => return, // nested deeper: nothing exact to compare
            }
        };
        let gprs = |r: &kvm_bindings::kvm_regs| {
            [
                r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11,
                r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags,
            ]
        };
        assert_eq!(
            gprs(&now),
            gprs(&from.regs),
            "rt_sigreturn from the frame at {:#x}: registers differ",
            from.frame
        );
        if self.regs.rsp == from.regs.rsp {
            if let Some(mask) = from.mask {
                assert_eq!(self.state.thread.sigmask, mask, "mask not restored");
            }
            // The fake is an fxsave-only vCPU (XCR0 0): the legacy area up to the software-
            // reserved bytes is its state; the XSAVE header a restore sets to load it is not.
            let now = self.fpu_image();
            let differ: Vec<usize> = (0..FX_STATE).filter(|&i| now[i] != from.fpu[i]).collect();
            assert!(
                differ.is_empty(),
                "FPU image not restored: bytes {differ:?} differ"
            );
        }
        self.returns_checked += 1;
    }
}

/// The fxsave area's bytes that hold state (the rest, up to 512, is software-reserved).
const FX_STATE: usize = 464;
/// rt_sigreturn.
const NR_RT_SIGRETURN: u64 = 15;
/// Calls that change the mask themselves (rt_sigprocmask, rt_sigsuspend, rt_sigtimedwait,
/// ppoll, rt_sigaction's SA_RESETHAND aside): the frame saves their mask, not the one before.
const MASK_CALLS: [u64; 4] = [14, 130, 128, 271];
