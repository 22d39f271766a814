//! Opening /dev/kvm and checking that it can run umon guests.
use kvm_ioctls::{Cap, Kvm};

/// Why KVM cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    /// /dev/kvm does not exist.
    #[error("/dev/kvm does not exist: load the kvm module (kvm_intel, kvm_amd or kvm_pvm) or run on a host with virtualization")]
    Missing,
    /// No permission to open /dev/kvm.
    #[error("no permission to open /dev/kvm: add your user to the 'kvm' group (sudo usermod -aG kvm $USER) or run as root")]
    Permission,
    /// Opening /dev/kvm failed otherwise.
    #[error("cannot open /dev/kvm")]
    Open(#[source] std::io::Error),
    /// The KVM API version is not 12.
    #[error("unsupported KVM API version {0} (need 12)")]
    ApiVersion(i32),
    /// A capability umon relies on is missing.
    #[error("KVM lacks a required capability: {0}")]
    MissingCap(&'static str),
    /// A KVM ioctl failed.
    #[error("{what} failed")]
    Ioctl {
        /// Which call.
        what: &'static str,
        /// The errno.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// The kind of KVM behind /dev/kvm. PVM runs guest supervisor code in an emulator and delivers a
/// user-mode `syscall` differently; see `docs/architecture.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// VMX or SVM: every guest instruction runs natively.
    Hardware,
    /// `kvm_pvm`: pagetable-based virtualization.
    Pvm,
}

impl Platform {
    /// Which KVM this host has. `UMON_PLATFORM=pvm|hardware` overrides the detection.
    pub fn detect() -> Platform {
        match std::env::var("UMON_PLATFORM").as_deref() {
            Ok("pvm") => return Platform::Pvm,
            Ok("hardware") => return Platform::Hardware,
            _ => {}
        }
        if std::path::Path::new("/sys/module/kvm_pvm").exists() {
            Platform::Pvm
        } else {
            Platform::Hardware
        }
    }
}

/// Open /dev/kvm and check the API version and capabilities umon needs.
pub fn open() -> Result<Kvm, KvmError> {
    let kvm = match Kvm::new() {
        Ok(k) => k,
        Err(e) if e.errno() == libc::ENOENT => return Err(KvmError::Missing),
        Err(e) if e.errno() == libc::EACCES || e.errno() == libc::EPERM => {
            return Err(KvmError::Permission)
        }
        Err(e) => return Err(KvmError::Open(std::io::Error::from_raw_os_error(e.errno()))),
    };
    let version = kvm.get_api_version();
    if version != 12 {
        return Err(KvmError::ApiVersion(version));
    }
    for (cap, name) in [
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
        (Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmError::MissingCap(name));
        }
    }
    Ok(kvm)
}
