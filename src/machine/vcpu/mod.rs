//! The vCPU run loop. Only this module calls `VcpuFd::run`; exits become owned [`Exit`]s. The
//! core's own hypercalls are served by [`crate::machine::hypercall`]; everything that concerns the
//! application (its syscalls, its faults) goes to an [`ExitHandler`], the seam to the layer
//! above: the machine defines the trait and never imports what implements it.
pub mod cpu;
pub mod exit;
pub mod setup;

pub use exit::Exit;

use crate::exit::ExitStatus;
use crate::machine::exitless::{Exitless, Settled};
use crate::machine::hypercall::{self, HypercallError};
use crate::machine::memory::GuestMem;
use crate::machine::stop::ImmediateExit;
use cpu::{Cpu, ExtendedState, Flow, Xstate, DIRTY_REGS, DIRTY_SREGS, XSAVE_IMAGE};
use kvm_ioctls::{SyncReg, VcpuFd};
use std::sync::Arc;
use umon_abi::hypercall::Hypercall;
use umon_abi::hypercall::SelftestReport;
use umon_abi::hypercall::{HYPERCALL_MAX, HYPERCALL_PORT};

/// Why the vCPU could not be set up or continue.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A setup ioctl failed.
    #[error("{what} failed")]
    Setup {
        /// Which ioctl.
        what: &'static str,
        /// Cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Writing the descriptor tables failed.
    #[error("cannot write the descriptor tables")]
    Tables(#[from] crate::machine::memory::MemoryError),
    /// KVM did not take every MSR.
    #[error("KVM refused one of the syscall MSRs (STAR/LSTAR/CSTAR/SFMASK/SYSENTER)")]
    Msrs,
    /// KVM_RUN failed.
    #[error("KVM_RUN failed")]
    Run(#[source] kvm_ioctls::Error),
    /// The guest stopped in a way that has no meaning for umon.
    #[error("{reason} at rip {rip:#x}")]
    UnexpectedExit {
        /// What happened.
        reason: String,
        /// Where.
        rip: u64,
        /// Register dump for --verbose.
        dump: String,
    },
}

impl VcpuError {
    /// The register dump that goes with this error, if any.
    pub fn dump(&self) -> Option<&str> {
        match self {
            VcpuError::UnexpectedExit { dump, .. } => Some(dump),
            _ => None,
        }
    }
}

/// Something the application did that the machine cannot serve: the personality above turns
/// it into the signal its OS would send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppFault {
    /// An exception at CPL3. The `Cpu` handed along holds the application's registers at the
    /// fault (rip, rsp, rflags from the exception frame), ready for a signal frame.
    Exception {
        /// The vector.
        vector: u64,
        /// The CPU's error code (0 for vectors without one).
        error_code: u64,
        /// Where.
        rip: u64,
        /// CR2 (the address, for a page fault).
        cr2: u64,
    },
    /// A `syscall` from 32-bit code; `rip` is the instruction's address.
    CompatSyscall {
        /// Where.
        rip: u64,
    },
    /// An access outside what the guest may touch at CPL3: reading the syscall port (open to
    /// CPL3 on PVM for the stub; #GP anywhere else), or guest RAM never registered with KVM
    /// (`gpa`).
    StrayAccess {
        /// Where.
        rip: u64,
        /// The guest-physical address, for a memory access.
        gpa: Option<u64>,
        /// The memory access was a store.
        write: bool,
    },
}

/// What the run loop hands to the layer above: the application's side of every exit.
pub trait ExitHandler {
    /// Hypercall::Syscall: the application's registers are in `cpu`.
    fn syscall(&mut self, cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<Flow, HypercallError>;
    /// The application did something that ends in a signal (see [`AppFault`]).
    fn app_fault(&mut self, cpu: &mut Cpu<'_>, fault: AppFault) -> Flow;
    /// The core writes diagnostics to the application's stdout (1) or stderr (2).
    fn console(&mut self, fd: u32, bytes: &[u8]) -> std::io::Result<()>;
    /// Called before every guest entry: Some ends the run (a stop was requested). `cpu` holds
    /// the registers the guest resumes with, changeable (a signal frame); None before the
    /// first entry, when they are not in the kvm_run page yet.
    fn before_run(&mut self, cpu: Option<&mut Cpu<'_>>) -> Option<Flow>;
    /// The core's page-table routine made a batch that asked for it (`notify` in
    /// [`crate::machine::Machine::apply_pt`]); `cpu` is inside the routine, at CPL0.
    fn pt_applied(&mut self, _cpu: &mut Cpu<'_>) -> Flow {
        Flow::Continue
    }
    /// The run loop of vCPU `index` begins (on its own host thread).
    fn started(&mut self, _index: u32) {}
    /// The exit-less server answered a call of this thread's and the vCPU has left the stub
    /// with the result in rax (`cpu` is the application after the call): what a syscall exit
    /// does after its handler (a page-table batch the call left) is due now.
    fn exitless_served(&mut self, _cpu: &mut Cpu<'_>) -> Flow {
        Flow::Continue
    }
    /// A signal may be waiting for this thread, or anything else for which the next
    /// [`ExitHandler::before_run`] with registers may change them (a frame, a TLB flush).
    fn signal_waiting(&self) -> bool {
        true
    }
}

/// Why a run ended early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The vCPU stopped in a way umon cannot continue from.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// The guest broke the hypercall protocol.
    #[error(transparent)]
    Hypercall(#[from] HypercallError),
}

/// How a run ended.
#[derive(Debug)]
pub struct RunEnd {
    /// The status the VM ends with; None when only this vCPU's thread ended.
    pub status: Option<ExitStatus>,
    /// The core's self-check report, if it sent one.
    pub selftest: Option<SelftestReport>,
}

/// One vCPU of a VM.
pub struct Vcpu {
    fd: VcpuFd,
    index: u32,
    /// The system registers a further vCPU starts a thread with (from its first set-up), so a
    /// reused one restarts without asking KVM.
    user_sregs: Option<kvm_bindings::kvm_sregs>,
    /// The guest has XSAVE enabled (signal frames carry the extended state).
    xsave: bool,
    /// KVM's XSAVE image fits `struct kvm_xsave` (KVM_CAP_XSAVE2 <= 4096), so KVM_SET_XSAVE
    /// reads no byte past it.
    xsave_settable: bool,
    /// The kvm_run page holds the registers of the first entry ([`Vcpu::prime`]).
    primed: bool,
    /// The machine's exit-less state, when its stub is this vCPU's MSR_LSTAR: exits taken
    /// inside the stub are settled first ([`Exitless::settle`]).
    exitless: Option<Arc<Exitless>>,
}

/// [`ExtendedState`] through a vCPU fd.
struct FdXstate<'a> {
    fd: &'a VcpuFd,
    xsave: bool,
    settable: bool,
}

/// XSTATE_BV's offset in an XSAVE image.
const XSTATE_BV: usize = 512;
/// XSTATE_BV's x87 and SSE bits.
const XSTATE_FP_SSE: u64 = 0b11;

/// The XCR0 the application really runs with when the guest has no XSAVE of its own, and the
/// XSAVE size for it (CPUID 0xd.0 EBX), when that state fits an image. PVM's supported CPUID
/// leaves XSAVE out, so umon sets no guest XCR0; KVM then loads none and the host's stays in
/// force at CPL3, where CPUID and `xgetbv` are not intercepted: the application sees and
/// uses AVX (glibc's and Go's memmove do). Its state must ride in signal frames as on Linux:
/// a frame with only the legacy area lost the upper halves of the YMM registers at every
/// handler (Go's asynchronous preemption by SIGURG corrupted copies in flight).
#[allow(unsafe_code)]
fn native_xstate() -> Option<(u64, usize)> {
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    static NATIVE: std::sync::OnceLock<Option<(u64, usize)>> = std::sync::OnceLock::new();
    *NATIVE.get_or_init(|| {
        // CPUID.1:ECX.OSXSAVE[bit 27]: the host kernel enabled XSAVE, so `xgetbv` works.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 CPU and only reads.
        let leaf1 = unsafe { __cpuid(1) };
        if leaf1.ecx & (1 << 27) == 0 {
            return None;
        }
        // SAFETY: OSXSAVE is set (checked above), so XGETBV with ECX 0 does not fault.
        let xcr0 = unsafe { _xgetbv(0) };
        #[allow(unused_unsafe)]
        // SAFETY: as above; leaf 0xd exists where OSXSAVE is set.
        let size = unsafe { __cpuid_count(0xd, 0) }.ebx as usize;
        (xcr0 & !XSTATE_FP_SSE != 0 && (FXSAVE_SIZE + 64..=XSAVE_IMAGE).contains(&size))
            .then_some((xcr0, size))
    })
}

/// Make `image` mean what XRSTOR makes of it with every component of XSTATE_BV requested: a
/// component whose bit is clear is in its initial state. KVM_SET_XSAVE instead keeps the
/// vCPU's previous MXCSR when neither SSE nor AVX is in XSTATE_BV, and a handler's initial
/// image has none of them; so x87 and SSE always go in as present, with their initial values
/// where absent.
fn x87_sse_present(image: &mut [u8; XSAVE_IMAGE]) {
    let bv = u64::from_le_bytes(image[XSTATE_BV..XSTATE_BV + 8].try_into().unwrap_or([0; 8]));
    if bv & 1 == 0 {
        // FCW 0x37f, every other x87 field and register zero (MXCSR, at 24..32, is SSE's).
        image[..24].fill(0);
        image[..2].copy_from_slice(&0x37fu16.to_le_bytes());
        image[32..160].fill(0);
    }
    if bv & 2 == 0 {
        image[160..416].fill(0);
    }
    image[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&(bv | XSTATE_FP_SSE).to_le_bytes());
}

/// The fxsave layout's fields that `kvm_fpu` carries (the legacy area of an XSAVE image).
const FX_FTW: usize = 4;
const FX_FOP: usize = 6;
const FX_FIP: usize = 8;
const FX_FDP: usize = 16;
const FX_MXCSR: usize = 24;
const FX_MXCSR_MASK: usize = 28;
const FX_ST: usize = 32;
const FX_XMM: usize = 160;
/// The legacy area's size.
const FXSAVE_SIZE: usize = 512;

/// The initial state as an XSAVE image: FCW 0x37f, MXCSR 0x1f80, every register zero, no
/// component in use (XSTATE_BV 0).
fn initial_xstate() -> [u8; XSAVE_IMAGE] {
    let mut img = [0u8; XSAVE_IMAGE];
    img[..FXSAVE_SIZE].copy_from_slice(&fx_from_fpu(&setup::initial_fpu())[..FXSAVE_SIZE]);
    img
}

fn fx_from_fpu(f: &kvm_bindings::kvm_fpu) -> Box<[u8; XSAVE_IMAGE]> {
    let mut img = Box::new([0u8; XSAVE_IMAGE]);
    img[0..2].copy_from_slice(&f.fcw.to_le_bytes());
    img[2..4].copy_from_slice(&f.fsw.to_le_bytes());
    img[FX_FTW] = f.ftwx;
    img[FX_FOP..FX_FOP + 2].copy_from_slice(&f.last_opcode.to_le_bytes());
    img[FX_FIP..FX_FIP + 8].copy_from_slice(&f.last_ip.to_le_bytes());
    img[FX_FDP..FX_FDP + 8].copy_from_slice(&f.last_dp.to_le_bytes());
    img[FX_MXCSR..FX_MXCSR + 4].copy_from_slice(&f.mxcsr.to_le_bytes());
    // KVM_GET_FPU does not carry MXCSR_MASK: every x86-64 CPU with DAZ (all of them since
    // 2002) reports this one.
    img[FX_MXCSR_MASK..FX_MXCSR_MASK + 4].copy_from_slice(&0xffffu32.to_le_bytes());
    for (i, r) in f.fpr.iter().enumerate() {
        img[FX_ST + 16 * i..FX_ST + 16 * i + 16].copy_from_slice(r);
    }
    for (i, r) in f.xmm.iter().enumerate() {
        img[FX_XMM + 16 * i..FX_XMM + 16 * i + 16].copy_from_slice(r);
    }
    img
}

fn fpu_from_fx(img: &[u8; XSAVE_IMAGE]) -> kvm_bindings::kvm_fpu {
    let u16_at = |o: usize| u16::from_le_bytes([img[o], img[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([img[o], img[o + 1], img[o + 2], img[o + 3]]);
    let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
    let mut f = kvm_bindings::kvm_fpu {
        fcw: u16_at(0),
        fsw: u16_at(2),
        ftwx: img[FX_FTW],
        last_opcode: u16_at(FX_FOP),
        last_ip: u64_at(FX_FIP),
        last_dp: u64_at(FX_FDP),
        mxcsr: u32_at(FX_MXCSR),
        ..Default::default()
    };
    for (i, r) in f.fpr.iter_mut().enumerate() {
        r.copy_from_slice(&img[FX_ST + 16 * i..FX_ST + 16 * i + 16]);
    }
    for (i, r) in f.xmm.iter_mut().enumerate() {
        r.copy_from_slice(&img[FX_XMM + 16 * i..FX_XMM + 16 * i + 16]);
    }
    f
}

/// Where each XSAVE component XCR0 may enable lies in the standard format (offset, size):
/// AVX, AVX-512 opmask, ZMM_Hi256, Hi16_ZMM; these offsets are architectural.
const XSAVE_COMPONENTS: [(u32, usize, usize); 4] = [
    (2, 576, 256),
    (5, 1088, 64),
    (6, 1152, 512),
    (7, 1664, 1024),
];
/// The legacy area and the XSAVE header.
const XSAVE_LEGACY_AND_HEADER: usize = 576;

impl ExtendedState for FdXstate<'_> {
    fn get(&self) -> Option<Xstate> {
        if let (false, true, Some((xcr0, size))) = (self.xsave, self.settable, native_xstate()) {
            let x = self.fd.get_xsave().ok()?;
            let mut image = Box::new([0u8; XSAVE_IMAGE]);
            for (chunk, word) in image.chunks_exact_mut(4).zip(x.region.iter()) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            return Some(Xstate { image, xcr0, size });
        }
        if !self.xsave {
            // No XSAVE in the guest: the legacy (fxsave) state is all there is. KVM_GET_XSAVE's
            // legacy area is the truth, XSAVE in the guest or not: KVM_GET_FPU leaves MXCSR out
            // (zero), and it copies the saved x87/SSE area as it lies, which is stale for a
            // component the host's XSAVE found in its initial state and did not write (after
            // `fldcw` of 0x37f it reported the control word from before).
            let mut image = Box::new([0u8; XSAVE_IMAGE]);
            match self.fd.get_xsave() {
                Ok(x) => {
                    for (chunk, word) in image[..FXSAVE_SIZE]
                        .chunks_exact_mut(4)
                        .zip(x.region.iter())
                    {
                        chunk.copy_from_slice(&word.to_le_bytes());
                    }
                }
                Err(_) => image = fx_from_fpu(&self.fd.get_fpu().ok()?),
            }
            return Some(Xstate {
                image,
                xcr0: 0,
                size: FXSAVE_SIZE,
            });
        }
        let x = self.fd.get_xsave().ok()?;
        let xcr0 = self.fd.get_xcrs().ok()?.xcrs[0].value;
        let mut image = Box::new([0u8; XSAVE_IMAGE]);
        for (chunk, word) in image.chunks_exact_mut(4).zip(x.region.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let size = XSAVE_COMPONENTS
            .iter()
            .filter(|(bit, ..)| xcr0 & (1 << bit) != 0)
            .map(|(_, off, len)| off + len)
            .fold(XSAVE_LEGACY_AND_HEADER, usize::max);
        Some(Xstate { image, xcr0, size })
    }

    #[allow(unsafe_code)]
    fn set(&self, image: &[u8; XSAVE_IMAGE]) -> bool {
        if !self.xsave && !self.settable {
            return self.fd.set_fpu(&fpu_from_fx(image)).is_ok();
        }
        if !self.settable {
            return false;
        }
        let mut x = kvm_bindings::kvm_xsave::default();
        if self.xsave || native_xstate().is_some() {
            let mut image = Box::new(*image);
            x87_sse_present(&mut image);
            for (word, chunk) in x.region.iter_mut().zip(image.chunks_exact(4)) {
                *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        } else {
            // No XSAVE in the guest: only the legacy area is state. It goes through
            // KVM_SET_XSAVE all the same, because KVM_SET_FPU does not load MXCSR (KVM's
            // kvm_arch_vcpu_ioctl_set_fpu copies every field but it), and a handler must start
            // with MXCSR 0x1f80 and rt_sigreturn must restore the app's.
            for (word, chunk) in x
                .region
                .iter_mut()
                .zip(image[..FXSAVE_SIZE].chunks_exact(4))
            {
                *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            // The XSAVE header's xstate_bv: x87 and SSE state present.
            x.region[FXSAVE_SIZE / 4] = 0b11;
        }
        // SAFETY: KVM_SET_XSAVE copies KVM's XSAVE size from the pointer; `settable` says that
        // size is at most `size_of::<kvm_xsave>()` (checked with KVM_CAP_XSAVE2 when the vCPU
        // was made), so the kernel reads only `x`. A state KVM does not accept is an error
        // return, not undefined behaviour.
        unsafe { self.fd.set_xsave(&x) }.is_ok()
    }
}

impl Vcpu {
    /// Wrap a configured vCPU (`index` as given to KVM_CREATE_VCPU); registers travel through
    /// the kvm_run page (sync regs), so an exit needs no extra ioctl.
    /// `xsave`: the guest has XSAVE enabled; `xsave_settable`: KVM_CAP_XSAVE2 is at most
    /// [`XSAVE_IMAGE`].
    pub fn new(mut fd: VcpuFd, index: u32, xsave: bool, xsave_settable: bool) -> Vcpu {
        fd.set_sync_valid_reg(SyncReg::Register);
        fd.set_sync_valid_reg(SyncReg::SystemRegister);
        Vcpu {
            fd,
            index,
            user_sregs: None,
            xsave,
            xsave_settable,
            primed: false,
            exitless: None,
        }
    }

    /// Settle exits taken in this vCPU's exit-less stub (its MSR_LSTAR names its copy).
    pub fn set_exitless(&mut self, exitless: Arc<Exitless>) {
        self.exitless = Some(exitless);
    }

    /// The registers KVM holds for the first entry (set with ioctls, [`setup::configure`]),
    /// copied into the kvm_run page: the handler's first look before that entry sees them, as
    /// at any later entry, so a signal sent before the start is delivered before the first
    /// instruction of an application entered directly at CPL3.
    pub fn prime(&mut self, regs: kvm_bindings::kvm_regs, sregs: kvm_bindings::kvm_sregs) {
        let sync = self.fd.sync_regs_mut();
        sync.regs = regs;
        sync.sregs = sregs;
        self.primed = true;
    }

    /// Remember the system registers of a further vCPU just set up to start at CPL3
    /// ([`setup::configure_secondary`]), for [`Vcpu::restart`].
    pub fn keep_user_sregs(&mut self) -> Result<(), VcpuError> {
        let s = self.fd.get_sregs().map_err(|source| VcpuError::Setup {
            what: "KVM_GET_SREGS",
            source,
        })?;
        self.user_sregs = Some(s);
        Ok(())
    }

    /// Start a new thread on a further vCPU that ran one before: its system registers as first
    /// set up (the application cannot change them at CPL3) with `start`'s FS and GS bases,
    /// `start`'s registers, through the kvm_run page (applied at the next KVM_RUN, no ioctl),
    /// and the FPU state (one ioctl). The per-vCPU tables and MSRs stay as written.
    pub fn restart(&mut self, start: &setup::UserStart) -> Result<(), VcpuError> {
        let Some(mut sregs) = self.user_sregs else {
            return Err(VcpuError::UnexpectedExit {
                reason: "restart of a vCPU that was never set up for a thread".into(),
                rip: 0,
                dump: String::new(),
            });
        };
        sregs.fs.base = start.fs_base;
        sregs.gs.base = start.gs_base;
        let mut regs = start.regs;
        regs.rflags = (regs.rflags & !0x3000) | 0x2;
        self.fd
            .set_fpu(&setup::initial_fpu())
            .map_err(|source| VcpuError::Setup {
                what: "KVM_SET_FPU",
                source,
            })?;
        // KVM_SET_FPU leaves MXCSR as the last thread had it: load the whole state.
        let init = initial_xstate();
        self.set_xstate(start.xstate.as_deref().unwrap_or(&init))?;
        let sync = self.fd.sync_regs_mut();
        sync.regs = regs;
        sync.sregs = sregs;
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        Ok(())
    }

    /// Load an extended-state image (a new thread's: its creator's, or the initial state).
    pub fn set_xstate(&self, image: &[u8; XSAVE_IMAGE]) -> Result<(), VcpuError> {
        let xstate = FdXstate {
            fd: &self.fd,
            xsave: self.xsave,
            settable: self.xsave_settable,
        };
        if xstate.set(image) {
            Ok(())
        } else {
            Err(VcpuError::UnexpectedExit {
                reason: "KVM refused the new thread's FPU state".into(),
                rip: 0,
                dump: String::new(),
            })
        }
    }

    /// The index KVM knows it by (the CPU number the guest sees).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The KVM fd, to set up again for reuse.
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// Run until the guest ends the VM or something goes wrong.
    #[allow(unsafe_code)]
    pub fn run(
        &mut self,
        mem: &GuestMem,
        handler: &mut dyn ExitHandler,
    ) -> Result<RunEnd, RunError> {
        let mut selftest = None;
        handler.started(self.index);
        let flag = &mut self.fd.get_kvm_run().immediate_exit as *mut u8;
        // The kvm_run page is mapped as long as the fd, which outlives this call.
        let _armed = ImmediateExit::arm(flag);
        // The sync registers are valid once KVM_RUN returned, or primed. The handler's first
        // look is without registers all the same (it learns there that it runs).
        let mut synced = false;
        let mut primed = std::mem::take(&mut self.primed);
        // The last exit left an exception half-delivered (see below): no look at the registers.
        let mut mid_event = false;
        loop {
            let before = if synced && !mid_event {
                self.with_cpu(|cpu| handler.before_run(Some(cpu)))
            } else {
                handler.before_run(None)
            };
            match before {
                Some(Flow::EndProcess(status)) => {
                    return Ok(RunEnd {
                        status: Some(status),
                        selftest,
                    })
                }
                Some(Flow::EndThread) => {
                    return Ok(RunEnd {
                        status: None,
                        selftest,
                    })
                }
                _ => {}
            }
            if primed {
                // Look again, now with the registers.
                (primed, synced) = (false, true);
                continue;
            }
            let exit = match self.fd.run() {
                Ok(e) => Exit::from_kvm(e),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    Exit::Interrupted
                }
                Err(e) => return Err(VcpuError::Run(e).into()),
            };
            synced = true;
            if matches!(exit, Exit::Interrupted) {
                // Cleared before the checks of the next `before_run`: a kick after them sets
                // it again and the entry returns at once.
                // SAFETY: `flag` points into this vCPU's kvm_run page (see above); the kick
                // handler writes the same byte on this thread only.
                unsafe { flag.write_volatile(0) };
                // A kick can stop KVM between an exception and its delivery (measured on PVM: a
                // #PF of the application at CPL3 marked injected, not yet in the core's vector).
                // The registers still look like the application's at the faulting instruction,
                // but the next entry delivers that exception whatever they hold: a signal frame
                // built now would take the fault in its place (Go's nil dereference recovery
                // killed at `runtime.sigtramp+0` with fault address 0, SIGSEGV blocked by the
                // SIGURG handler's mask). So no handler's look this time; the exception exits
                // to the monitor soon, and signals are taken there, as Linux takes them on the
                // way back to user mode. An unreadable state is taken as none pending.
                // Asked only when a frame may be built: the question is not free of effects
                // on PVM (asked at every kick, some page then faulted again and again).
                mid_event = handler.signal_waiting()
                    && self.fd.sync_regs().sregs.cs.dpl == 3
                    && self.fd.get_vcpu_events().is_ok_and(|e| {
                        e.exception.injected != 0 || e.exception.pending != 0 || e.nmi.injected != 0
                    });
            } else {
                mid_event = false;
            }
            // An exit inside the exit-less stub first becomes one at the application's side
            // of its call (not while an exception is half-delivered: that one comes back).
            let settled = match self.exitless.clone() {
                Some(x) if !mid_event => {
                    let at_out = matches!(exit, Exit::IoOut { port, .. }
                        if port == Hypercall::Syscall.port());
                    let index = self.index;
                    self.with_cpu(|cpu| x.settle(index, cpu, mem, at_out))
                }
                _ => Settled::Outside,
            };
            let flow = match exit {
                _ if matches!(settled, Settled::Moved { served: false }) => Flow::Continue,
                _ if settled == (Settled::Moved { served: true }) => {
                    self.with_cpu(|cpu| handler.exitless_served(cpu))
                }
                Exit::IoOut { port, .. }
                    if (HYPERCALL_PORT..=HYPERCALL_PORT + HYPERCALL_MAX).contains(&port) =>
                {
                    let nr = port - HYPERCALL_PORT;
                    self.with_cpu(|cpu| hypercall::dispatch(nr, cpu, mem, handler, &mut selftest))?
                }
                Exit::Interrupted => Flow::Continue,
                // At CPL3 these are the application's faults; the registers are its own, at
                // the instruction, so a handler can run as for an exception.
                Exit::IoIn { .. } | Exit::Mmio { .. } if self.fd.sync_regs().sregs.cs.dpl == 3 => {
                    let (gpa, write) = match exit {
                        Exit::Mmio { addr, write } => (Some(addr), write),
                        _ => (None, false),
                    };
                    let at_fault = self.fd.sync_regs().regs;
                    if !self.finish_pending_access() {
                        return Err(self.unexpected(exit).into());
                    }
                    self.fd.sync_regs_mut().regs = at_fault;
                    self.fd.set_sync_dirty_reg(SyncReg::Register);
                    self.with_cpu(|cpu| {
                        let rip = cpu.regs.rip;
                        handler.app_fault(cpu, AppFault::StrayAccess { rip, gpa, write })
                    })
                }
                other => return Err(self.unexpected(other).into()),
            };
            match flow {
                Flow::Continue => {}
                Flow::EndProcess(status) => {
                    return Ok(RunEnd {
                        status: Some(status),
                        selftest,
                    })
                }
                Flow::EndThread => {
                    return Ok(RunEnd {
                        status: None,
                        selftest,
                    })
                }
            }
        }
    }

    /// Let KVM finish the I/O or MMIO access it is waiting on without running a guest
    /// instruction (KVM_RUN with immediate_exit; an access split in fragments exits once per
    /// fragment). Until then KVM would complete it at the next entry and overwrite the rip and
    /// destination register a signal frame had set. False if KVM did not get there.
    fn finish_pending_access(&mut self) -> bool {
        self.fd.set_kvm_immediate_exit(1);
        let mut done = false;
        for _ in 0..4 {
            match self.fd.run() {
                Err(e) if e.errno() == libc::EINTR => {
                    done = true;
                    break;
                }
                Ok(kvm_ioctls::VcpuExit::MmioRead(..) | kvm_ioctls::VcpuExit::MmioWrite(..)) => {}
                _ => break,
            }
        }
        self.fd.set_kvm_immediate_exit(0);
        done
    }

    /// Run `f` on the registers of the exit just taken and hand back to KVM what it changed.
    fn with_cpu<R>(&mut self, f: impl FnOnce(&mut Cpu<'_>) -> R) -> R {
        // Copies, so the extended state can be reached through the fd meanwhile.
        let sync = self.fd.sync_regs();
        let (mut regs, mut sregs) = (sync.regs, sync.sregs);
        let xstate = FdXstate {
            fd: &self.fd,
            xsave: self.xsave,
            settable: self.xsave_settable,
        };
        let mut cpu = Cpu {
            regs: &mut regs,
            sregs: &mut sregs,
            dirty: 0,
            xstate: Some(&xstate as &dyn ExtendedState),
            index: self.index,
        };
        let out = f(&mut cpu);
        let dirty = cpu.dirty;
        let sync = self.fd.sync_regs_mut();
        if dirty & DIRTY_REGS != 0 {
            sync.regs = regs;
        }
        if dirty & DIRTY_SREGS != 0 {
            sync.sregs = sregs;
        }
        if dirty & DIRTY_REGS != 0 {
            self.fd.set_sync_dirty_reg(SyncReg::Register);
        }
        if dirty & DIRTY_SREGS != 0 {
            self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        }
        out
    }

    fn unexpected(&self, exit: Exit) -> VcpuError {
        let sync = self.fd.sync_regs();
        let (r, s) = (sync.regs, sync.sregs);
        let dump = format!(
            "rip={:#018x} rsp={:#018x} rflags={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} \
             rsi={:#x} rdi={:#x} rbp={:#x} r8={:#x} r9={:#x} r10={:#x} r11={:#x} r12={:#x} \
             r13={:#x} r14={:#x} r15={:#x} cs={:#x} (dpl {}) ss={:#x} cr0={:#x} cr2={:#x} \
             cr3={:#x} cr4={:#x} efer={:#x}",
            r.rip,
            r.rsp,
            r.rflags,
            r.rax,
            r.rbx,
            r.rcx,
            r.rdx,
            r.rsi,
            r.rdi,
            r.rbp,
            r.r8,
            r.r9,
            r.r10,
            r.r11,
            r.r12,
            r.r13,
            r.r14,
            r.r15,
            s.cs.selector,
            s.cs.dpl,
            s.ss.selector,
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.efer
        );
        VcpuError::UnexpectedExit {
            reason: exit.name(),
            rip: r.rip,
            dump,
        }
    }
}
