//! The machine: KVM, guest RAM and its memory slots, page tables, the guest core, the vCPU
//! and its run loop, the core's hypercalls, stopping a running VM, and the monitor's own
//! confinement (seccomp). It knows nothing of Linux or of the application's image: the run
//! loop hands everything that concerns the application to a [`vcpu::ExitHandler`] the layer
//! above implements. It imports only [`crate::exit`].
pub mod core;
#[allow(unsafe_code)] // pthread_self/pthread_kill, the SIGSYS reporter
pub(crate) mod host;
pub mod hypercall;
pub mod kvm;
pub mod memory;
pub mod memslots;
pub mod paging;
pub mod seccomp;
pub mod stop;
pub mod vcpu;

use crate::machine::core::{CoreError, CoreImage};
use crate::machine::kvm::{KvmError, Platform};
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::memslots::{MemSlots, CHUNK};
use crate::machine::paging::{
    PageTables, PagingError, NO_EXECUTE, PAGE_1G, PAGE_2M, PAGE_4K, USER, WRITABLE,
};
use crate::machine::stop::KillHandle;
use crate::machine::vcpu::setup::{self, CpuFeatures};
use crate::machine::vcpu::{Vcpu, VcpuError};
use kvm_bindings::CpuId;
use kvm_ioctls::{Kvm, VmFd};
use std::sync::{Arc, Mutex};
use umon_abi::boot::BootInfo;
use umon_abi::layout::BOOT_INFO;
use umon_abi::{Gpa, Gva};

/// Why the machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// KVM is missing or refused a call.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// Guest memory could not be set up or written.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The page tables did not fit.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// The guest core could not be loaded.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The vCPU could not be set up.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// The KVM side of a machine.
struct KvmVm {
    // Field order is drop order: the VM fd goes before /dev/kvm.
    vm: Arc<VmFd>,
    _kvm: Kvm,
    cpuid: CpuId,
    features: CpuFeatures,
}

/// One VM: guest RAM, KVM's view of it, and the stop handle. Shared (`Arc`) by everything that
/// runs in it; what changes after start (the memory slots) is behind a lock.
pub struct Machine {
    // Field order is drop order: the VM fd and the slots holding it go before the RAM they map.
    kvm: Option<KvmVm>,
    /// None when KVM knows all of guest RAM (self-test) or there is no KVM VM.
    slots: Option<Mutex<MemSlots>>,
    /// The platform the VM runs on.
    pub platform: Platform,
    /// Stops the VM from outside (kill handle, timeout, signals to umon).
    pub stop: KillHandle,
    /// Guest RAM.
    pub mem: GuestMem,
}

impl Machine {
    /// A KVM VM with `memory_bytes` of guest RAM, of which KVM knows the first chunk (boot area,
    /// core, page tables) or, with `register_all`, everything.
    pub fn new(
        memory_bytes: u64,
        register_all: bool,
        stop: KillHandle,
    ) -> Result<Machine, MachineError> {
        let kvm = kvm::open()?;
        let platform = Platform::detect();
        let vm = kvm.create_vm().map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VM",
            source,
        })?;
        let vm = Arc::new(vm);
        let mem = GuestMem::new(memory_bytes)?;
        let mut slots = MemSlots::new(vm.clone(), &mem, kvm.get_nr_memslots() as u32)?;
        slots.ensure(0, CHUNK)?;
        if register_all {
            slots.ensure(0, mem.bytes())?;
        }
        let (cpuid, features) = setup::guest_cpuid(&kvm, platform)?;
        Ok(Machine {
            kvm: Some(KvmVm {
                vm,
                _kvm: kvm,
                cpuid,
                features,
            }),
            slots: (!register_all).then(|| Mutex::new(slots)),
            platform,
            stop,
            mem,
        })
    }

    /// A machine of guest RAM only, with no KVM VM behind it: handlers run against it without
    /// KVM (fuzzing, unit tests); every byte counts as known to KVM.
    pub fn without_kvm(mem: GuestMem, stop: KillHandle) -> Machine {
        Machine {
            kvm: None,
            slots: None,
            platform: Platform::Hardware,
            stop,
            mem,
        }
    }

    /// Make `[gpa, gpa + len)` of guest RAM known to KVM (brk, mmap and the image hand it out).
    pub fn ensure_backed(&self, gpa: u64, len: u64) -> Result<(), KvmError> {
        let Some(slots) = &self.slots else {
            return Ok(());
        };
        let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.ensure(gpa, len)
    }

    /// CPUID(1).EDX as the guest sees it (AT_HWCAP); 0 without KVM.
    pub fn hwcap(&self) -> u64 {
        self.kvm
            .as_ref()
            .and_then(|k| k.cpuid.as_slice().iter().find(|e| e.function == 1))
            .map(|e| u64::from(e.edx))
            .unwrap_or(0)
    }

    /// The page tables with the core and the physical windows mapped (the application and the
    /// self-test stack are added by the caller before the first vCPU starts).
    pub fn page_tables(&self, core: &CoreImage) -> Result<PageTables, MachineError> {
        let gib_pages = self.kvm.as_ref().is_some_and(|k| k.features.gib_pages);
        let window_page = if gib_pages { PAGE_1G } else { PAGE_2M };
        let mut pt = PageTables::new(&self.mem)?;
        map_core(&mut pt, &self.mem, core)?;
        paging::map_windows(&mut pt, &self.mem, window_page)?;
        Ok(pt)
    }

    /// vCPU 0, configured to enter the core with `info` (its TSC rate filled in here) and the
    /// page tables rooted at `pt_root`.
    pub fn first_vcpu(
        &self,
        core: &CoreImage,
        pt_root: Gpa,
        info: &mut BootInfo,
    ) -> Result<Vcpu, MachineError> {
        let k = self.kvm.as_ref().ok_or(KvmError::Missing)?;
        setup::write_tables(&self.mem, core, self.platform)?;
        let fd = k.vm.create_vcpu(0).map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VCPU",
            source,
        })?;
        info.tsc_khz = fd.get_tsc_khz().map(u64::from).unwrap_or(0);
        self.mem.write(Gpa(BOOT_INFO), info)?;
        setup::configure(&fd, &k.cpuid, k.features, core, pt_root)?;
        Ok(Vcpu::new(fd))
    }
}

/// Map the core VA = PA with 4 KiB pages and each segment's permissions; only the syscall stub
/// page is user-visible (PVM enters it at CPL3).
fn map_core(pt: &mut PageTables, mem: &GuestMem, core: &CoreImage) -> Result<(), PagingError> {
    for seg in &core.segments {
        let mut page = seg.start;
        while page < seg.end {
            let mut flags = 0;
            if seg.write {
                flags |= WRITABLE;
            }
            if !seg.exec {
                flags |= NO_EXECUTE;
            }
            if (core.user_text.0..core.user_text.1).contains(&page) {
                flags |= USER;
            }
            pt.map(mem, Gva(page), Gpa(page), PAGE_4K, PAGE_4K, flags)?;
            page += PAGE_4K;
        }
    }
    Ok(())
}
