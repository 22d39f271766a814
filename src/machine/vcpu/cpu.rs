//! The vCPU registers as an exit handler sees them, and what the run loop does next. These are
//! the run loop's own types: handlers above the machine (the hypercall layer, the Linux
//! personality) import them from here, never the other way round.
use crate::exit::ExitStatus;
use kvm_bindings::{kvm_regs, kvm_sregs};
use umon_abi::hypercall::EnterUser;
use umon_abi::layout::selector;

/// Registers were changed and must go back to KVM.
pub const DIRTY_REGS: u32 = 1;
/// Segment/system registers were changed.
pub const DIRTY_SREGS: u32 = 2;

/// The vCPU registers as a handler sees them.
pub struct Cpu<'a> {
    /// General registers.
    pub regs: &'a mut kvm_regs,
    /// System registers.
    pub sregs: &'a mut kvm_sregs,
    /// Which of the two were changed ([`DIRTY_REGS`], [`DIRTY_SREGS`]).
    pub dirty: u32,
    /// The FPU/SSE/AVX state, for signal frames; None where the exit has no access to it.
    pub xstate: Option<&'a dyn ExtendedState>,
}

/// The size of KVM's legacy XSAVE image (`struct kvm_xsave`).
pub const XSAVE_IMAGE: usize = 4096;

/// The extended (XSAVE) register state of the vCPU, in the standard (non-compacted) format
/// Linux puts in a signal frame.
pub struct Xstate {
    /// The image as KVM_GET_XSAVE gives it.
    pub image: Box<[u8; XSAVE_IMAGE]>,
    /// XCR0: the components enabled; 0 where the guest has no XSAVE and only the legacy
    /// (fxsave) area is valid.
    pub xcr0: u64,
    /// The bytes of the image the enabled components cover (leaf 0xD.0 EBX; 512 without
    /// XSAVE).
    pub size: usize,
}

/// Reads and writes a vCPU's extended state (KVM_GET_XSAVE / KVM_SET_XSAVE).
pub trait ExtendedState {
    /// The current state, or None if KVM refused.
    fn get(&self) -> Option<Xstate>;
    /// Load `image`; false if KVM refused it (a state XRSTOR would fault on).
    fn set(&self, image: &[u8; XSAVE_IMAGE]) -> bool;
}

/// What the run loop does after an exit was handled.
#[derive(Debug)]
pub enum Flow {
    /// Resume the guest.
    Continue,
    /// The process (and with it the VM) is over.
    EndProcess(ExitStatus),
    /// This vCPU's thread is over; the others go on.
    EndThread,
}

impl Cpu<'_> {
    /// Put a syscall's result in rax and return to the application. On hardware KVM the stub's
    /// `sysretq` does the return. On PVM a user-mode `syscall` reaches the stub still at CPL3,
    /// where `sysretq` would fault, so the monitor performs the return itself: rip = rcx,
    /// rflags = r11.
    pub fn complete_syscall(&mut self, ret: i64) {
        self.regs.rax = ret as u64;
        if self.sregs.cs.dpl == 3 {
            self.regs.rip = self.regs.rcx;
            self.regs.rflags = (self.regs.r11 & !0x3000) | 0x2;
        }
        self.dirty |= DIRTY_REGS;
    }

    /// Return to CPL3 with the registers in `regs` (a signal handler, or after sigreturn):
    /// user code and data selectors, never `sysretq`, which would clobber rcx and r11.
    pub fn resume_user(&mut self, regs: kvm_regs) {
        *self.regs = regs;
        let s = &mut *self.sregs;
        s.cs.selector = selector::USER_CS;
        s.cs.dpl = 3;
        for seg in [&mut s.ss, &mut s.ds, &mut s.es] {
            seg.selector = selector::USER_DS;
            seg.dpl = 3;
        }
        self.dirty |= DIRTY_REGS | DIRTY_SREGS;
    }

    /// Install the CPL3 state: user code and data selectors, the entry registers, IF set, IOPL 0.
    pub fn enter_user(&mut self, args: &EnterUser) {
        *self.regs = kvm_regs {
            rip: args.rip,
            rsp: args.rsp,
            rdi: args.rdi,
            rflags: 0x202,
            ..Default::default()
        };
        let regs = *self.regs;
        self.resume_user(regs);
    }
}
