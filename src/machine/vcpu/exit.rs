//! KVM's borrowed `VcpuExit` turned at once into an owned [`Exit`], so the run loop can act on it
//! while touching the vCPU again.
use kvm_ioctls::VcpuExit;

/// What stopped the vCPU, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `out` to `port` with `data`.
    IoOut {
        /// The port.
        port: u16,
        /// First byte written.
        data: u8,
    },
    /// `in` from `port`.
    IoIn {
        /// The port.
        port: u16,
    },
    /// `hlt`.
    Hlt,
    /// Triple fault or shutdown.
    Shutdown,
    /// MMIO access to guest-physical `addr` (no device lives there).
    Mmio {
        /// The address.
        addr: u64,
        /// A store (else a load).
        write: bool,
    },
    /// KVM's instruction emulator gave up (PVM: an instruction it cannot run at CPL0).
    InternalError,
    /// VM entry failed.
    FailEntry {
        /// Hardware reason.
        reason: u64,
    },
    /// The run was interrupted by a signal (timeouts, kill).
    Interrupted,
    /// Anything else.
    Other(String),
}

impl Exit {
    /// Take the owned exit out of KVM's borrowed one.
    pub fn from_kvm(exit: VcpuExit<'_>) -> Exit {
        match exit {
            VcpuExit::IoOut(port, data) => Exit::IoOut {
                port,
                data: data.first().copied().unwrap_or(0),
            },
            VcpuExit::IoIn(port, _) => Exit::IoIn { port },
            VcpuExit::Hlt => Exit::Hlt,
            VcpuExit::Shutdown => Exit::Shutdown,
            VcpuExit::MmioRead(addr, _) => Exit::Mmio { addr, write: false },
            VcpuExit::MmioWrite(addr, _) => Exit::Mmio { addr, write: true },
            VcpuExit::InternalError => Exit::InternalError,
            VcpuExit::FailEntry(reason, _) => Exit::FailEntry { reason },
            VcpuExit::Intr => Exit::Interrupted,
            other => Exit::Other(format!("{other:?}")),
        }
    }

    /// A short name for error messages.
    pub fn name(&self) -> String {
        match self {
            Exit::IoOut { port, .. } => format!("unexpected I/O write to port {port:#x}"),
            Exit::IoIn { port } => format!("unexpected I/O read from port {port:#x}"),
            Exit::Hlt => "guest halted".into(),
            Exit::Shutdown => "guest triple fault".into(),
            Exit::Mmio { addr, .. } => {
                format!("access to unbacked guest-physical address {addr:#x}")
            }
            Exit::InternalError => {
                "KVM internal error (instruction the hypervisor cannot emulate)".into()
            }
            Exit::FailEntry { reason } => format!("VM entry failed (reason {reason:#x})"),
            Exit::Interrupted => "interrupted".into(),
            Exit::Other(s) => format!("unexpected exit {s}"),
        }
    }
}
