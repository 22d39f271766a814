//! Guest RAM as KVM sees it. Registering all of guest RAM with KVM at once costs time in
//! proportion to its size (KVM allocates and later frees per-page metadata for the whole slot:
//! on these PVM machines about 1 ms each way for 1 GiB), even though an application touches a few
//! megabytes. So RAM is registered in 16 MiB chunks: at start what the core, the image, the
//! stack and the start of the heap need, later what brk and mmap hand out (the monitor serves
//! those, so it knows first). Guest RAM itself stays one lazily backed host mapping; only KVM's
//! view grows. A guest access to a chunk never handed out is a KVM MMIO exit, which the run
//! loop turns into SIGSEGV for the application.
use crate::machine::kvm::KvmError;
use crate::machine::memory::GuestMem;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use std::sync::Arc;

/// Granule of registration.
pub const CHUNK: u64 = 16 << 20;

/// Which chunks of guest RAM KVM knows.
#[derive(Clone)]
pub struct MemSlots {
    vm: Arc<VmFd>,
    host_base: u64,
    ram: u64,
    registered: Vec<bool>,
    next_slot: u32,
    max_slots: u32,
}

impl MemSlots {
    /// Nothing registered yet. `mem` must outlive `vm` (the VM's field order guarantees it).
    pub(crate) fn new(vm: Arc<VmFd>, mem: &GuestMem, max_slots: u32) -> Result<MemSlots, KvmError> {
        let host_base = mem.host_base().map_err(|_| KvmError::Ioctl {
            what: "KVM_SET_USER_MEMORY_REGION",
            source: kvm_ioctls::Error::new(libc::EINVAL),
        })?;
        Ok(MemSlots {
            vm,
            host_base,
            ram: mem.bytes(),
            registered: vec![false; mem.bytes().div_ceil(CHUNK) as usize],
            next_slot: 0,
            max_slots,
        })
    }

    /// Make `[gpa, gpa + len)` (clamped to RAM) known to KVM.
    pub fn ensure(&mut self, gpa: u64, len: u64) -> Result<(), KvmError> {
        let end = gpa.saturating_add(len).min(self.ram);
        if gpa >= end {
            return Ok(());
        }
        let (first, last) = ((gpa / CHUNK) as usize, ((end - 1) / CHUNK) as usize);
        let mut i = first;
        while i <= last {
            if self.registered[i] {
                i += 1;
                continue;
            }
            // One slot for the whole run of unregistered chunks.
            let run_end = (i..=last).find(|&j| self.registered[j]).unwrap_or(last + 1);
            self.register(i as u64 * CHUNK, (run_end as u64 * CHUNK).min(self.ram))?;
            self.registered[i..run_end].fill(true);
            i = run_end;
        }
        Ok(())
    }

    /// The same registrations in another VM over the same RAM (a forked monitor's: the host
    /// fork left this process a copy-on-write copy of guest RAM at the same address).
    pub(crate) fn rebuilt(&self, vm: Arc<VmFd>) -> Result<MemSlots, KvmError> {
        let mut slots = MemSlots {
            vm,
            host_base: self.host_base,
            ram: self.ram,
            registered: vec![false; self.registered.len()],
            next_slot: 0,
            max_slots: self.max_slots,
        };
        let mut i = 0;
        while i < self.registered.len() {
            if !self.registered[i] {
                i += 1;
                continue;
            }
            let end = (i..self.registered.len())
                .find(|&j| !self.registered[j])
                .unwrap_or(self.registered.len());
            slots.ensure(i as u64 * CHUNK, (end - i) as u64 * CHUNK)?;
            i = end;
        }
        Ok(slots)
    }

    /// Whether KVM knows guest-physical `gpa`.
    pub fn is_registered(&self, gpa: u64) -> bool {
        self.registered
            .get((gpa / CHUNK) as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Slots in use.
    pub fn slots(&self) -> u32 {
        self.next_slot
    }

    #[allow(unsafe_code)]
    fn register(&mut self, start: u64, end: u64) -> Result<(), KvmError> {
        let ioctl = |source| KvmError::Ioctl {
            what: "KVM_SET_USER_MEMORY_REGION",
            source,
        };
        if self.next_slot >= self.max_slots {
            return Err(ioctl(kvm_ioctls::Error::new(libc::ENOSPC)));
        }
        let region = kvm_userspace_memory_region {
            slot: self.next_slot,
            flags: 0,
            guest_phys_addr: start,
            memory_size: end - start,
            userspace_addr: self.host_base + start,
        };
        // SAFETY: the range lies inside the anonymous mapping of guest RAM (end <= ram), which
        // the Vm owns and drops only after the VM fd and this object (field order), so KVM never
        // sees it unmapped; slots never overlap (each chunk is registered once).
        unsafe { self.vm.set_user_memory_region(region) }.map_err(ioctl)?;
        self.next_slot += 1;
        Ok(())
    }
}
