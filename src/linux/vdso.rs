//! The vDSO's time page ("vvar"): what the monitor publishes so that clock_gettime,
//! gettimeofday, time and clock_getres run in the guest without an exit.
//!
//! The page (layout in `guest/vdso/src/vvar.rs`, shared with the vDSO) says how to turn the
//! guest's TSC into each clock: a base reading per clock taken at one guest TSC value, and the
//! TSC rate KVM reports (`KVM_GET_TSC_KHZ`) as a multiplier. The guest TSC at the anchor is read
//! through the vCPU (`KVM_GET_MSRS` of IA32_TSC), bracketed by host CLOCK_MONOTONIC readings,
//! so the relation holds whatever offset or scaling KVM applies; on PVM, where `rdtsc` at CPL3
//! is the host's own instruction, the read value equals the host TSC (measured; see
//! docs/architecture.md). The page is written with host stores before the first instruction
//! (host writes to guest RAM are seen; only page-table edits are not) and never changes after,
//! so readings are monotonic across vCPUs as far as the TSCs are synchronised (constant,
//! nonstop TSC, as on the hosts umon runs on). What it does not follow: a step of the host's
//! realtime clock (settimeofday, a large NTP correction) after the start, and NTP's frequency
//! trim (a few ppm: microseconds per second of run time) — unless someone calls [`refresh`],
//! which re-bases REALTIME (and BOOTTIME) on the host's current offsets from CLOCK_MONOTONIC.
//! Without a TSC rate (0 kHz) or a readable guest TSC, no clock is served and the vDSO falls
//! back to the syscalls.
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::vcpu::setup::has_tsc_aux;
use kvm_bindings::{kvm_msr_entry, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::VcpuFd;
use rustix::time::{clock_getres, clock_gettime, ClockId, Timespec};
use std::sync::atomic::{fence, Ordering};
use std::sync::Mutex;
use umon_abi::layout::VVAR_PHYS;
use umon_abi::Gpa;

#[path = "../../guest/vdso/src/vvar.rs"]
#[allow(dead_code)] // the syscall numbers are the vDSO's
mod vvar;
pub use vvar::Vvar;
use vvar::{
    base_offset, CLOCKS, CLOCKS_OFFSET, CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE,
    CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, CLOCK_REALTIME_COARSE, FLAG_GETCPU_RDTSCP, SEQ_OFFSET,
};

/// IA32_TIME_STAMP_COUNTER.
const MSR_IA32_TSC: u32 = 0x10;
/// Anchor attempts; the one with the tightest bracket wins.
const ANCHOR_TRIES: usize = 5;
/// Shift of the TSC multiplier: 2^32 keeps ~0.2 ppb of precision at GHz rates, and the
/// vDSO multiplies in 128 bits, so no delta can overflow.
const SHIFT: u32 = 32;

fn ns(t: Timespec) -> u64 {
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

fn now(id: ClockId) -> u64 {
    ns(clock_gettime(id))
}

/// The guest's TSC as the vCPU reads it now.
fn guest_tsc(vcpu: &VcpuFd) -> Option<u64> {
    let entry = kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    };
    let mut msrs = Msrs::from_entries(&[entry]).ok()?;
    match vcpu.get_msrs(&mut msrs) {
        Ok(1) => msrs.as_slice().first().map(|e| e.data),
        _ => None,
    }
}

/// (guest TSC, host CLOCK_MONOTONIC at that moment), from the tightest of a few brackets.
fn anchor(vcpu: &VcpuFd) -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64, u64)> = None;
    for _ in 0..ANCHOR_TRIES {
        let before = now(ClockId::Monotonic);
        let tsc = guest_tsc(vcpu)?;
        let after = now(ClockId::Monotonic);
        let width = after.saturating_sub(before);
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, tsc, before + width / 2));
        }
    }
    best.map(|(_, tsc, mono)| (tsc, mono))
}

/// `clock`'s offset from CLOCK_MONOTONIC now (its reading between two monotonic ones).
fn offset_from_monotonic(clock: ClockId) -> u64 {
    let before = now(ClockId::Monotonic);
    let t = now(clock);
    let after = now(ClockId::Monotonic);
    t.wrapping_sub(before + after.saturating_sub(before) / 2)
}

/// Whole seconds of the host's monotonic clock: how often the page is refreshed is counted in
/// these.
pub fn monotonic_secs() -> u64 {
    now(ClockId::Monotonic) / 1_000_000_000
}

/// The page's contents for a guest whose TSC runs at `tsc_khz`, anchored through `vcpu`.
pub fn compute(vcpu: &VcpuFd, tsc_khz: u64) -> Vvar {
    let mut page = Vvar::default();
    let cpuid = vcpu.get_cpuid2(KVM_MAX_CPUID_ENTRIES);
    if cpuid.is_ok_and(|c| has_tsc_aux(&c)) {
        page.flags |= FLAG_GETCPU_RDTSCP;
    }
    let Some((tsc, mono)) = anchor(vcpu).filter(|_| tsc_khz != 0) else {
        log::debug!("vdso: no TSC rate or guest TSC; every clock goes to the syscall");
        return page;
    };
    page.tsc_base = tsc;
    page.shift = SHIFT;
    page.mult = (1_000_000u64 << SHIFT) / tsc_khz;
    let real = mono.wrapping_add(offset_from_monotonic(ClockId::Realtime));
    let boot = mono.wrapping_add(offset_from_monotonic(ClockId::Boottime));
    let raw = mono.wrapping_add(offset_from_monotonic(ClockId::MonotonicRaw));
    for (clock, base, id) in [
        (CLOCK_REALTIME, real, ClockId::Realtime),
        (CLOCK_MONOTONIC, mono, ClockId::Monotonic),
        (CLOCK_MONOTONIC_RAW, raw, ClockId::MonotonicRaw),
        (CLOCK_REALTIME_COARSE, real, ClockId::RealtimeCoarse),
        (CLOCK_MONOTONIC_COARSE, mono, ClockId::MonotonicCoarse),
        (CLOCK_BOOTTIME, boot, ClockId::Boottime),
    ] {
        let slot = clock as usize;
        if slot < CLOCKS {
            page.clocks |= 1 << clock;
            page.base_ns[slot] = base;
            page.res_ns[slot] = ns(clock_getres(id));
        }
    }
    log::debug!("vdso: guest TSC {tsc} at monotonic {mono} ns, {tsc_khz} kHz");
    page
}

/// Compute the time page for vCPU `vcpu` (any vCPU of the VM: their TSCs agree) and write it
/// into guest RAM, before the first instruction.
pub fn publish(mem: &GuestMem, vcpu: &VcpuFd, tsc_khz: u64) -> Result<Vvar, MemoryError> {
    let page = compute(vcpu, tsc_khz);
    mem.write_bytes(Gpa(VVAR_PHYS), &page.to_bytes())?;
    Ok(page)
}

/// Writers of any time page take turns (the seqlock allows one writer at a time).
static WRITER: Mutex<()> = Mutex::new(());

/// Follow the host's realtime clock again: re-base REALTIME, REALTIME_COARSE and BOOTTIME on
/// the page's own CLOCK_MONOTONIC base plus the host's current offsets from CLOCK_MONOTONIC,
/// under the seqlock (readers in the guest retry while it is odd). MONOTONIC and RAW are left
/// alone, so they never go back; REALTIME steps as the host's did, as on Linux. Cheap (a few
/// host clock reads, no ioctl): meant to be called now and then from an exit the guest makes
/// anyway (e.g. at most once a second from the syscall path). A page that serves no clock is
/// left as it is.
pub fn refresh(mem: &GuestMem) -> Result<(), MemoryError> {
    let _writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let mut bytes = [0u8; vvar::VVAR_BYTES];
    mem.read_bytes(Gpa(VVAR_PHYS), &mut bytes)?;
    let word32 =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (seq, clocks) = (word32(SEQ_OFFSET), word32(CLOCKS_OFFSET));
    if clocks & (1 << CLOCK_REALTIME) == 0 {
        return Ok(());
    }
    let mono_at = base_offset(CLOCK_MONOTONIC);
    let mut mono = [0u8; 8];
    mono.copy_from_slice(&bytes[mono_at..mono_at + 8]);
    let mono_base = u64::from_le_bytes(mono);
    let real = mono_base.wrapping_add(offset_from_monotonic(ClockId::Realtime));
    let boot = mono_base.wrapping_add(offset_from_monotonic(ClockId::Boottime));
    let seq = seq | 1;
    mem.write(Gpa(VVAR_PHYS + SEQ_OFFSET as u64), &seq)?;
    fence(Ordering::SeqCst);
    for (clock, base) in [
        (CLOCK_REALTIME, real),
        (CLOCK_REALTIME_COARSE, real),
        (CLOCK_BOOTTIME, boot),
    ] {
        mem.write(Gpa(VVAR_PHYS + base_offset(clock) as u64), &base)?;
    }
    fence(Ordering::SeqCst);
    mem.write(Gpa(VVAR_PHYS + SEQ_OFFSET as u64), &seq.wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_rebases_realtime_and_keeps_monotonic() {
        let mem = GuestMem::new(16 << 20).unwrap();
        let mut page = Vvar {
            seq: 6,
            clocks: (1 << CLOCK_REALTIME) | (1 << CLOCK_MONOTONIC) | (1 << CLOCK_BOOTTIME),
            shift: SHIFT,
            mult: 1 << SHIFT,
            tsc_base: 1000,
            ..Vvar::default()
        };
        let mono = now(ClockId::Monotonic);
        page.base_ns[CLOCK_MONOTONIC as usize] = mono;
        // A realtime base far off, as after a host clock step.
        page.base_ns[CLOCK_REALTIME as usize] = 12345;
        mem.write_bytes(Gpa(VVAR_PHYS), &page.to_bytes()).unwrap();
        refresh(&mem).unwrap();
        let mut bytes = [0u8; vvar::VVAR_BYTES];
        mem.read_bytes(Gpa(VVAR_PHYS), &mut bytes).unwrap();
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        assert_eq!(
            u32::from_le_bytes(bytes[0..4].try_into().unwrap()),
            8,
            "seq: odd, then even"
        );
        assert_eq!(
            word(base_offset(CLOCK_MONOTONIC)),
            mono,
            "monotonic untouched"
        );
        let host_offset = offset_from_monotonic(ClockId::Realtime);
        let got = word(base_offset(CLOCK_REALTIME)) - mono;
        assert!(
            got.abs_diff(host_offset) < 1_000_000,
            "{got} vs {host_offset}"
        );
        assert_eq!(
            word(base_offset(CLOCK_REALTIME_COARSE)),
            word(base_offset(CLOCK_REALTIME))
        );
    }

    #[test]
    fn refresh_leaves_a_page_without_clocks_alone() {
        let mem = GuestMem::new(16 << 20).unwrap();
        let page = Vvar {
            seq: 2,
            ..Vvar::default()
        };
        mem.write_bytes(Gpa(VVAR_PHYS), &page.to_bytes()).unwrap();
        refresh(&mem).unwrap();
        let mut bytes = [0u8; vvar::VVAR_BYTES];
        mem.read_bytes(Gpa(VVAR_PHYS), &mut bytes).unwrap();
        assert_eq!(bytes, page.to_bytes());
    }
}
