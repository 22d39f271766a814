//! The vCPU registers as an exit handler sees them, and what the run loop does next. These are
//! the run loop's own types: handlers above the machine (the hypercall layer, the Linux
//! personality) import them from here, never the other way round.
use crate::exit::ExitStatus;
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::paging::{Flush, PtBatch};
use crate::machine::vcpu::setup::{kernel_segments, user_segments};
use kvm_bindings::{kvm_regs, kvm_sregs};
use umon_abi::hypercall::EnterUser;
use umon_abi::layout::{selector, PERCPU_STACK_BYTES, PHYS_MEM};
use umon_abi::pt::{
    PtReturn, PT_FLUSH, PT_INVLPGS_END, PT_INVLPG_BYTES, PT_NOTIFY_AT, PT_RETURN, PT_STORES_END,
    PT_STORE_BYTES, PT_UNROLL,
};
use umon_abi::Gpa;

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
    /// The vCPU's index: the CPU number the guest sees (getcpu, TSC_AUX).
    pub index: u32,
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

/// Where a vCPU's page-table batches go: `bytes` of guest RAM from `batch` for the stream
/// (umon_abi::pt), the return frame right after them, all reachable by the core through the
/// Main window and by nothing at CPL3, and the core's routine (`setup::pt_apply_entry`).
#[derive(Clone, Copy, Debug)]
pub struct PtArea {
    /// `umon_pt_apply`.
    pub routine: u64,
    /// The stream area's first byte.
    pub batch: Gpa,
    /// Its length; the [`PtReturn`] frame follows.
    pub bytes: u64,
}

/// What the stream may not use of the exception stack: the return frame at its top and a
/// spare line at its bottom.
const PT_STACK_USE: u64 = std::mem::size_of::<PtReturn>() as u64 + 16;

/// Words of the stream for `stores` stores and `invlpgs` invalidations with the flush and the
/// notifying exit (each section's entry is a word; the first one's is not pushed, but
/// counting it keeps this an upper bound).
const fn stream_words(stores: u64, invlpgs: u64) -> u64 {
    2 * stores + invlpgs + stores.div_ceil(PT_UNROLL) + invlpgs.div_ceil(PT_UNROLL) + 3
}

/// The most ops (stores, the costliest) a stream area of `bytes` holds.
const fn ops_in(bytes: u64) -> usize {
    let mut n = 0;
    while stream_words(n + 1, 0) * 8 <= bytes {
        n += 1;
    }
    n as usize
}

impl PtArea {
    /// The most ops one batch in this area holds.
    pub fn capacity(&self) -> usize {
        ops_in(self.bytes)
    }

    /// The bottom of the vCPU's own exception stack, whose top is `stack_top` (a Main window
    /// address): the smallest stack (`PERCPU_STACK_BYTES`) less what the routine uses at its
    /// top. Every vCPU has one, the application cannot reach it, and nothing else uses it
    /// between the exit that prepares a batch and the routine's `iretq` (an exception there
    /// would be the core's own crash). Holds [`PT_STACK_BATCH_OPS`] ops.
    pub fn on_exception_stack(routine: u64, stack_top: u64) -> PtArea {
        PtArea {
            routine,
            batch: Gpa(stack_top - PHYS_MEM - PERCPU_STACK_BYTES + 16),
            bytes: PERCPU_STACK_BYTES - PT_STACK_USE,
        }
    }

    /// Whether `rip` (at CPL0) is inside the routine: a batch entered and not yet returned.
    fn runs(&self, rip: u64) -> bool {
        (self.routine..self.routine + PT_RETURN + 3).contains(&rip)
    }
}

/// Ops a batch on the exception stack holds ([`PtArea::on_exception_stack`]).
pub const PT_STACK_BATCH_OPS: usize = ops_in(PERCPU_STACK_BYTES - PT_STACK_USE);

/// The stream (umon_abi::pt) that makes `stores` (entry's Main-window address, value), then
/// the `invlpg`s, the CR3 reload if `flush_all`, the notifying exit if `notify`, and returns
/// through `ret` (the frame is the caller's to append): where to enter the routine and the
/// words to put at rsp.
fn pt_stream(
    routine: u64,
    stores: &[(u64, u64)],
    invlpgs: &[u64],
    flush_all: bool,
    notify: bool,
) -> (u64, Vec<u64>) {
    let mut sections: Vec<(u64, Vec<u64>)> = Vec::new();
    for chunk in stores.chunks(PT_UNROLL as usize) {
        let entry = routine + PT_STORES_END - PT_STORE_BYTES * chunk.len() as u64;
        sections.push((entry, chunk.iter().flat_map(|&(e, v)| [e, v]).collect()));
    }
    for chunk in invlpgs.chunks(PT_UNROLL as usize) {
        let entry = routine + PT_INVLPGS_END - PT_INVLPG_BYTES * chunk.len() as u64;
        sections.push((entry, chunk.to_vec()));
    }
    if flush_all {
        sections.push((routine + PT_FLUSH, Vec::new()));
    }
    if notify {
        sections.push((routine + PT_NOTIFY_AT, Vec::new()));
    }
    sections.push((routine + PT_RETURN, Vec::new()));
    let rip = sections[0].0;
    let mut words = std::mem::take(&mut sections[0].1);
    for (entry, data) in sections.into_iter().skip(1) {
        words.push(entry);
        words.extend(data);
    }
    (rip, words)
}

/// Why a page-table batch could not be handed to the core.
#[derive(Debug, thiserror::Error)]
pub enum PtApplyError {
    /// More guest stores and invalidations than the batch area holds.
    #[error("a page-table batch of {ops} ops does not fit its area ({capacity})")]
    TooLarge {
        /// Ops in the batch.
        ops: usize,
        /// What the area holds.
        capacity: usize,
    },
    /// The vCPU's TSS names no exception stack in the Main window.
    #[error("the vCPU's TSS at {tss:#x} names no exception stack")]
    NoStack {
        /// TR's base.
        tss: u64,
    },
    /// This exit already has a batch to apply (one per exit: plan several changes as one).
    #[error("a page-table batch is already pending on this vCPU")]
    Pending,
    /// Writing the batch, the fresh tables or the return frame failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
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

    /// Apply `batch` before the application runs on: the host fills its fresh tables, and the
    /// next KVM_RUN enters the core's `umon_pt_apply` at CPL0, which makes the guest stores
    /// and flushes (PVM's shadow MMU sees only those, not host writes) and `iretq`s to the
    /// application state this `Cpu` holds now. Call it last while serving an exit, after
    /// [`Cpu::complete_syscall`] (a syscall's result is in rax and stays there) or at a user
    /// fault (the registers are the application's), nowhere else. On hardware KVM a syscall
    /// exit is at CPL0 in the stub, before its `sysretq`: the routine's `iretq` replaces it,
    /// returning to rcx with r11's flags (the same routine works there; not testable on the
    /// PVM hosts umon is developed on). A batch with no guest ops enters nothing. With
    /// `notify` the routine exits with `Hypercall::PtApplied` once the stores and the flush are
    /// made. True if the next KVM_RUN enters the routine.
    pub fn apply_pt(
        &mut self,
        mem: &GuestMem,
        area: &PtArea,
        batch: &PtBatch,
        notify: bool,
    ) -> Result<bool, PtApplyError> {
        if self.sregs.cs.dpl == 0 && area.runs(self.regs.rip) {
            return Err(PtApplyError::Pending);
        }
        let (stores, invlpgs) = batch.guest_ops();
        let ops = stores.len() + invlpgs.len();
        if ops > area.capacity() {
            return Err(PtApplyError::TooLarge {
                ops,
                capacity: area.capacity(),
            });
        }
        for (gpa, entries) in &batch.fills {
            mem.write(*gpa, &**entries)?;
        }
        let flush_all = batch.flush == Flush::All;
        if ops == 0 && !flush_all {
            return Ok(false);
        }
        let (entry, mut words) = pt_stream(area.routine, &stores, &invlpgs, flush_all, notify);
        // Where the application goes on: a syscall at CPL0 (hardware) has not returned yet.
        let (rip, rflags) = if self.sregs.cs.dpl == 3 {
            (self.regs.rip, self.regs.rflags)
        } else {
            (self.regs.rcx, self.regs.r11)
        };
        let ret = PtReturn {
            rdx: self.regs.rdx,
            rip,
            cs: u64::from(selector::USER_CS),
            rflags: (rflags & !0x3000) | 0x2,
            rsp: self.regs.rsp,
            ss: u64::from(selector::USER_DS),
        };
        words.extend_from_slice(zerocopy::transmute_ref!(&ret) as &[u64; 6]);
        // The frame ends the area: the stream sits right below it.
        let end = area.batch.0 + area.bytes + std::mem::size_of::<PtReturn>() as u64;
        let start = end - 8 * words.len() as u64;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.write_bytes(Gpa(start), &bytes)?;
        // iretq loads CS and SS only: DS and ES stay the application's, as user_segments
        // makes them (usable again after an exception left them null).
        user_segments(self.sregs);
        kernel_segments(self.sregs);
        self.regs.rip = entry;
        self.regs.rsp = PHYS_MEM + start;
        // IF off: nothing may interrupt the routine (there is no interrupt source, but the
        // routine is not reentrant); IOPL 0.
        self.regs.rflags = 0x2;
        self.dirty |= DIRTY_REGS | DIRTY_SREGS;
        Ok(true)
    }

    /// The top of this vCPU's exception stack (a Main window address), as its TSS says
    /// (RSP0 at offset 4): the TSS is the monitor's, read-only to the guest in every window.
    pub fn exception_stack(&self, mem: &GuestMem) -> Result<u64, PtApplyError> {
        let tss = self.sregs.tr.base;
        let no_stack = PtApplyError::NoStack { tss };
        let rsp0_at = tss
            .checked_sub(PHYS_MEM)
            .and_then(|t| t.checked_add(4))
            .ok_or(PtApplyError::NoStack { tss })?;
        let rsp0: u64 = mem.read(Gpa(rsp0_at))?;
        rsp0.checked_sub(PHYS_MEM + PERCPU_STACK_BYTES)
            .map(|_| rsp0)
            .ok_or(no_stack)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::machine::paging::Flush;
    use umon_abi::layout::{percpu_stack_top, percpu_tss};

    /// A vCPU (index 3) stopped at CPL3 (`dpl`) or in the syscall stub at CPL0, its TSS and
    /// stack in guest RAM.
    fn stopped(mem: &GuestMem, dpl: u8) -> (kvm_regs, kvm_sregs) {
        let top = PHYS_MEM + percpu_stack_top(3);
        mem.write(Gpa(percpu_tss(3) + 4), &top).unwrap();
        let regs = kvm_regs {
            rip: 0x1000_0000_0040,
            rsp: 0x1000_7fff_f000,
            rdi: 0x1234,
            rcx: 0x1000_0000_0777,
            r11: 0x246,
            rflags: 0x3202,
            ..Default::default()
        };
        let mut sregs = kvm_sregs::default();
        sregs.tr.base = PHYS_MEM + percpu_tss(3);
        sregs.cs.dpl = dpl;
        (regs, sregs)
    }

    fn one_store() -> PtBatch {
        PtBatch {
            fills: Vec::new(),
            stores: vec![(Gpa(0x50_0000), 0x60_0067)],
            flush: Flush::Pages(vec![umon_abi::Gva(0x1000_0000_0000)]),
            retired: Vec::new(),
        }
    }

    #[test]
    fn apply_pt_enters_the_routine_with_the_return_frame_and_the_batch() {
        let mem = GuestMem::new(16 << 20).unwrap();
        for (dpl, rip, rflags) in [(3, 0x1000_0000_0040, 0x202), (0, 0x1000_0000_0777, 0x246)] {
            let (mut regs, mut sregs) = stopped(&mem, dpl);
            let before = regs;
            let mut cpu = Cpu {
                regs: &mut regs,
                sregs: &mut sregs,
                dirty: 0,
                xstate: None,
                index: 0,
            };
            let top = cpu.exception_stack(&mem).unwrap();
            let routine = 0x20_1230;
            let area = PtArea::on_exception_stack(routine, top);
            let notify = dpl == 0;
            assert!(cpu.apply_pt(&mem, &area, &one_store(), notify).unwrap());
            // One store: one pass from the last pair of the stores section.
            assert_eq!(cpu.regs.rip, routine + PT_STORES_END - PT_STORE_BYTES);
            assert_eq!((cpu.sregs.cs.dpl, cpu.sregs.ss.dpl), (0, 0));
            assert_eq!(cpu.dirty, DIRTY_REGS | DIRTY_SREGS);
            // The stream: the store, then each section's entry and words, then the frame,
            // which ends at the stack's top.
            let mut want = vec![
                PHYS_MEM + 0x50_0000,
                0x60_0067,
                routine + PT_INVLPGS_END - PT_INVLPG_BYTES,
                0x1000_0000_0000,
            ];
            if notify {
                want.push(routine + PT_NOTIFY_AT);
            }
            want.push(routine + PT_RETURN);
            let n = want.len();
            assert_eq!(cpu.regs.rsp + 8 * n as u64 + 48, top);
            let got: Vec<u64> = (0..n as u64)
                .map(|i| mem.read(Gpa(cpu.regs.rsp - PHYS_MEM + 8 * i)).unwrap())
                .collect();
            assert_eq!(got, want);
            let ret: PtReturn = mem.read(Gpa(top - PHYS_MEM - 48)).unwrap();
            assert_eq!(
                (ret.rdx, ret.rip, ret.rflags, ret.rsp),
                (before.rdx, rip, rflags, before.rsp)
            );
            assert_eq!(ret.cs, u64::from(selector::USER_CS));
            assert_eq!(ret.ss, u64::from(selector::USER_DS));
            assert!(cpu.regs.rsp >= PHYS_MEM + area.batch.0);
            assert_eq!(cpu.regs.rdi, before.rdi, "only rsp and rip change");
            // One batch per exit: a second one would return into the routine.
            assert!(matches!(
                cpu.apply_pt(&mem, &area, &one_store(), false),
                Err(PtApplyError::Pending)
            ));
        }
    }

    #[test]
    fn a_batch_larger_than_its_area_is_refused_untouched() {
        let mem = GuestMem::new(16 << 20).unwrap();
        let (mut regs, mut sregs) = stopped(&mem, 3);
        let before = regs;
        let mut cpu = Cpu {
            regs: &mut regs,
            sregs: &mut sregs,
            dirty: 0,
            xstate: None,
            index: 0,
        };
        let top = cpu.exception_stack(&mem).unwrap();
        let area = PtArea::on_exception_stack(0x20_1230, top);
        let mut big = one_store();
        big.stores = vec![(Gpa(0x50_0000), 0); PT_STACK_BATCH_OPS];
        assert!(matches!(
            cpu.apply_pt(&mem, &area, &big, false),
            Err(PtApplyError::TooLarge { .. })
        ));
        assert_eq!((cpu.regs.rip, cpu.dirty), (before.rip, 0));
    }

    #[test]
    fn the_exception_stack_area_holds_what_the_machine_plans_for() {
        let top = PHYS_MEM + 0x30_0400;
        let area = PtArea::on_exception_stack(0, top);
        assert_eq!(area.capacity(), PT_STACK_BATCH_OPS);
        // The stream, then the return frame, which ends at the top; a spare line below.
        assert_eq!(PHYS_MEM + area.batch.0 + area.bytes + 48, top);
        assert_eq!(PHYS_MEM + area.batch.0, top - PERCPU_STACK_BYTES + 16);
        // The biggest batch fits: all stores, the flush and the notifying exit.
        let stores: Vec<(u64, u64)> = vec![(PHYS_MEM, 0); PT_STACK_BATCH_OPS];
        let (_, words) = pt_stream(0, &stores, &[], true, true);
        assert!(8 * words.len() as u64 <= area.bytes);
        const { assert!(PT_STACK_BATCH_OPS >= 50) };
    }
}
