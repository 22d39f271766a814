//! The layout self-check: the core verifies from inside what the monitor's page tables promise,
//! and reports one bit per failed check.
use crate::arch;
use umon_abi::hypercall::{selftest as bit, Hypercall, SelftestReport};
use umon_abi::layout::{
    Area, BOOT_GDT, BOOT_IDT, BOOT_SCRATCH, BOOT_TSS, KERNEL_BASE, PAGE_TABLES_BASE, PHYS_MEM,
};

/// The probes, counting the faults they absorb (each probe faults at most once). The count lives
/// here, not in a static the exception path would share between vCPUs.
struct Probes {
    faults: u64,
}

impl Probes {
    /// Whether reading `addr` faulted.
    fn read(&mut self, addr: u64) -> bool {
        let faulted = arch::probe_read(addr);
        self.faults += u64::from(faulted);
        faulted
    }

    /// Whether storing back to `addr` faulted.
    fn write(&mut self, addr: u64) -> bool {
        let faulted = arch::probe_write(addr);
        self.faults += u64::from(faulted);
        faulted
    }
}

pub fn run(ram_bytes: u64) -> ! {
    let mut failed = 0u64;
    let mut checks = 0u64;
    let mut p = Probes { faults: 0 };

    // A value written through each linear window reads back through the other two.
    for (i, w) in Area::LINEAR.iter().enumerate() {
        checks += 1;
        let off = BOOT_SCRATCH + 8 * i as u64;
        let value = 0x756d_6f6e_0000_0000 | (i as u64 + 1);
        arch::write_u64(w.base() + off, value);
        for other in Area::LINEAR {
            if arch::read_u64(other.base() + off) != value {
                failed |= bit::WINDOWS_ALIAS;
            }
        }
    }

    // The core region is VA = PA: the entry code reads the same through both mappings.
    checks += 1;
    if arch::read_u64(KERNEL_BASE) != arch::read_u64(PHYS_MEM + KERNEL_BASE) {
        failed |= bit::CORE_IDENTITY;
    }

    // Page 0 and the low boot pages are not mapped at their physical addresses.
    checks += 1;
    if !p.read(0) || !p.read(BOOT_SCRATCH) {
        failed |= bit::PAGE0_MAPPED;
    }

    // The Debug area is reserved.
    checks += 1;
    if !p.read(Area::Debug.base()) {
        failed |= bit::DEBUG_MAPPED;
    }

    // The core's descriptor tables, page tables and image cannot be rewritten from CPL0, neither
    // through any window nor (the image) at its own address. The PML4 (the first table page) is
    // the exception, writable for `umon_pt_apply`: probe the table after it.
    checks += 1;
    let mut core_writable = !p.write(KERNEL_BASE);
    for w in Area::LINEAR {
        for pa in [
            BOOT_GDT,
            BOOT_IDT,
            BOOT_TSS,
            PAGE_TABLES_BASE + 0x1000,
            KERNEL_BASE,
        ] {
            core_writable |= !p.write(w.base() + pa);
        }
    }
    if core_writable {
        failed |= bit::CORE_WRITABLE;
    }

    // RAM's last word is reachable in every window, the first byte past it in none.
    checks += 2;
    for w in Area::LINEAR {
        let last = w.base() + ram_bytes - 8;
        if p.read(last) {
            failed |= bit::RAM_END;
        }
        if !p.read(w.base() + ram_bytes) {
            failed |= bit::PAST_RAM_MAPPED;
        }
    }

    let report = SelftestReport {
        checks,
        failed,
        faults_caught: p.faults,
    };
    let dst = PHYS_MEM + BOOT_SCRATCH + 0x400;
    // SAFETY: this part of the scratch page is reserved for the report, mapped in Main.
    unsafe { (dst as *mut SelftestReport).write_volatile(report) };
    arch::hypercall(Hypercall::SelftestReport, BOOT_SCRATCH + 0x400);
    crate::exit(0)
}
