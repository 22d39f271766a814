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
use cpu::{Cpu, Flow, DIRTY_REGS, DIRTY_SREGS};
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
    /// The status the VM ends with.
    pub status: ExitStatus,
    /// The core's self-check report, if it sent one.
    pub selftest: Option<SelftestReport>,
}

/// The one vCPU of a VM.
pub struct Vcpu {
    fd: VcpuFd,
}

impl Vcpu {
    /// Wrap a configured vCPU; registers travel through the kvm_run page (sync regs), so an exit
    /// needs no extra ioctl.
    pub fn new(mut fd: VcpuFd) -> Vcpu {
        fd.set_sync_valid_reg(SyncReg::Register);
        fd.set_sync_valid_reg(SyncReg::SystemRegister);
        Vcpu { fd }
    }

    /// Run until the guest ends the VM or something goes wrong.
    pub fn run(
        &mut self,
        mem: &GuestMem,
        handler: &mut dyn ExitHandler,
    ) -> Result<RunEnd, RunError> {
        let mut selftest = None;
        loop {
            if let Some(Flow::EndProcess(status)) = handler.before_run() {
                return Ok(RunEnd { status, selftest });
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
                    let sync = self.fd.sync_regs_mut();
                    let mut cpu = Cpu {
                        regs: &mut sync.regs,
                        sregs: &mut sync.sregs,
                        dirty: 0,
                    };
                    let nr = port - HYPERCALL_PORT;
                    let flow = hypercall::dispatch(nr, &mut cpu, mem, handler, &mut selftest)?;
                    let dirty = cpu.dirty;
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
                Flow::EndProcess(status) => return Ok(RunEnd { status, selftest }),
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
