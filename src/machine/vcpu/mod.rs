//! The vCPU run loop. Only this module calls `VcpuFd::run`; exits become owned [`Exit`]s. The
//! core's own hypercalls are served by [`crate::machine::hypercall`]; everything that concerns the
//! application (its syscalls, its faults) goes to an [`ExitHandler`], the seam to the layer
//! above: the machine defines the trait and never imports what implements it.
pub mod cpu;
pub mod exit;
pub mod setup;

pub use exit::Exit;

use crate::exit::ExitStatus;
use crate::machine::hypercall::{self, HypercallError};
use crate::machine::memory::GuestMem;
use cpu::{Cpu, ExtendedState, Flow, Xstate, DIRTY_REGS, DIRTY_SREGS, XSAVE_IMAGE};
use kvm_ioctls::{SyncReg, VcpuFd};
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
    /// An exception at CPL3, as the core reported it.
    Exception {
        /// The vector.
        vector: u64,
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
    /// Checked before every guest entry: Some ends the run (a stop was requested).
    fn before_run(&mut self) -> Option<Flow>;
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
}

/// [`ExtendedState`] through a vCPU fd.
struct FdXstate<'a> {
    fd: &'a VcpuFd,
    xsave: bool,
    settable: bool,
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
        if !self.xsave {
            // No XSAVE in the guest: the legacy (fxsave) state is all there is.
            let f = self.fd.get_fpu().ok()?;
            return Some(Xstate {
                image: fx_from_fpu(&f),
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
        if !self.xsave {
            return self.fd.set_fpu(&fpu_from_fx(image)).is_ok();
        }
        if !self.settable {
            return false;
        }
        let mut x = kvm_bindings::kvm_xsave::default();
        for (word, chunk) in x.region.iter_mut().zip(image.chunks_exact(4)) {
            *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
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
        }
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
            .set_fpu(&start.fpu.unwrap_or_else(setup::initial_fpu))
            .map_err(|source| VcpuError::Setup {
                what: "KVM_SET_FPU",
                source,
            })?;
        let sync = self.fd.sync_regs_mut();
        sync.regs = regs;
        sync.sregs = sregs;
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        Ok(())
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
    pub fn run(
        &mut self,
        mem: &GuestMem,
        handler: &mut dyn ExitHandler,
    ) -> Result<RunEnd, RunError> {
        let mut selftest = None;
        loop {
            match handler.before_run() {
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
            let exit = match self.fd.run() {
                Ok(e) => Exit::from_kvm(e),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    Exit::Interrupted
                }
                Err(e) => return Err(VcpuError::Run(e).into()),
            };
            let flow = match exit {
                Exit::IoOut { port, .. }
                    if (HYPERCALL_PORT..=HYPERCALL_PORT + HYPERCALL_MAX).contains(&port) =>
                {
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
                    };
                    let nr = port - HYPERCALL_PORT;
                    let flow = hypercall::dispatch(nr, &mut cpu, mem, handler, &mut selftest)?;
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
                    flow
                }
                Exit::Interrupted => Flow::Continue,
                // At CPL3 these are the application's faults.
                Exit::IoIn { .. } | Exit::Mmio { .. } if self.fd.sync_regs().sregs.cs.dpl == 3 => {
                    let sync = self.fd.sync_regs_mut();
                    let rip = sync.regs.rip;
                    let mut cpu = Cpu {
                        regs: &mut sync.regs,
                        sregs: &mut sync.sregs,
                        dirty: 0,
                        xstate: None,
                    };
                    let gpa = match exit {
                        Exit::Mmio { addr } => Some(addr),
                        _ => None,
                    };
                    handler.app_fault(&mut cpu, AppFault::StrayAccess { rip, gpa })
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
