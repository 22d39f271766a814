//! The umon vDSO: Linux's x86-64 vDSO entry points, served at CPL3 without leaving the guest.
//!
//! Time comes from `rdtsc` scaled with the parameters the monitor publishes in the time page
//! ([`vvar::Vvar`]) one page below this image; a clock the page does not serve (CPU-time clocks,
//! TAI, bad ids) and getcpu without `rdtscp` fall back to the real syscall, so every answer is
//! the one the syscall would give. Built as a static archive and linked by the monitor's
//! build.rs with `vdso.ld` and `vdso.map` (no relocations, the `LINUX_2.6` version node).
#![no_std]
#![allow(clippy::missing_safety_doc)] // the entry points have libc's contracts

use core::arch::{asm, global_asm};
use core::ptr::{addr_of, read_volatile};
use core::sync::atomic::{compiler_fence, Ordering};
use umon_abi::layout::{VDSO_BASE, VVAR_BASE};

#[allow(dead_code)] // the monitor uses the rest of the shared definition
mod vvar;
use vvar::{nr, Vvar, CLOCKS, CLOCK_REALTIME, FLAG_GETCPU_RDTSCP};

/// Distance from the image's ELF header down to the time page.
const VVAR_BELOW: u64 = VDSO_BASE - VVAR_BASE;

#[repr(C)]
pub struct Timespec {
    sec: i64,
    nsec: i64,
}

#[repr(C)]
pub struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
pub struct Timezone {
    minuteswest: i32,
    dsttime: i32,
}

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// The time page, found relative to this image's own header (the image is position-independent
/// and has no relocations, so no GOT entry can hold the address).
#[inline(always)]
fn page() -> *const Vvar {
    let p: *const Vvar;
    // SAFETY: only computes an address (rip-relative lea of the linker-defined image start).
    unsafe {
        asm!("lea {p}, [rip + __ehdr_start - {below}]", p = out(reg) p, below = const VVAR_BELOW,
             options(nomem, nostack, preserves_flags, pure));
    }
    p
}

/// `rdtsc`, ordered after the loads before it (Linux's rdtsc_ordered), so a reading is never
/// taken before the seqlock's first load.
#[inline(always)]
fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc touch no memory; CR4.TSD is clear (the monitor checked that
    // the vDSO's readings work before publishing clocks).
    unsafe {
        asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

#[inline(always)]
unsafe fn syscall2(nr: u32, a: u64, b: u64) -> i64 {
    let ret: i64;
    asm!("syscall", inlateout("rax") i64::from(nr) => ret, in("rdi") a, in("rsi") b,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

#[inline(always)]
unsafe fn syscall3(nr: u32, a: u64, b: u64, c: u64) -> i64 {
    let ret: i64;
    asm!("syscall", inlateout("rax") i64::from(nr) => ret, in("rdi") a, in("rsi") b, in("rdx") c,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// Clock `clock` (below [`CLOCKS`]) in nanoseconds, or None when the page does not serve it.
#[inline(always)]
fn read_ns(clock: u32) -> Option<u64> {
    let v = page();
    let slot = clock as usize % CLOCKS;
    loop {
        // SAFETY (all reads): the time page is mapped readable for the whole life of the
        // process; a torn set of fields is thrown away by the second seq check.
        let seq = unsafe { read_volatile(addr_of!((*v).seq)) };
        if seq & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        compiler_fence(Ordering::Acquire);
        let mut snap = Vvar::default();
        unsafe {
            snap.clocks = read_volatile(addr_of!((*v).clocks));
            snap.shift = read_volatile(addr_of!((*v).shift));
            snap.tsc_base = read_volatile(addr_of!((*v).tsc_base));
            snap.mult = read_volatile(addr_of!((*v).mult));
            snap.base_ns[slot] = read_volatile(addr_of!((*v).base_ns[slot]));
        }
        let tsc = rdtsc();
        compiler_fence(Ordering::Acquire);
        if unsafe { read_volatile(addr_of!((*v).seq)) } == seq {
            return snap.ns(clock, tsc);
        }
    }
}

fn clock_id(clock: i32) -> Option<u32> {
    u32::try_from(clock).ok().filter(|&c| (c as usize) < CLOCKS)
}

#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_gettime(clock: i32, ts: *mut Timespec) -> i64 {
    if let Some(ns) = clock_id(clock).and_then(read_ns) {
        // An unwritable `ts` faults here, where Linux's vDSO faults too.
        ts.write(Timespec {
            sec: (ns / NSEC_PER_SEC) as i64,
            nsec: (ns % NSEC_PER_SEC) as i64,
        });
        return 0;
    }
    syscall2(nr::CLOCK_GETTIME, clock as i64 as u64, ts as u64)
}

#[no_mangle]
pub unsafe extern "C" fn __vdso_gettimeofday(tv: *mut Timeval, tz: *mut Timezone) -> i64 {
    let Some(ns) = read_ns(CLOCK_REALTIME) else {
        return syscall2(nr::GETTIMEOFDAY, tv as u64, tz as u64);
    };
    if !tv.is_null() {
        tv.write(Timeval {
            sec: (ns / NSEC_PER_SEC) as i64,
            usec: ((ns % NSEC_PER_SEC) / 1000) as i64,
        });
    }
    if !tz.is_null() {
        // The monitor's gettimeofday answers UTC with no DST too.
        tz.write(Timezone {
            minuteswest: 0,
            dsttime: 0,
        });
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn __vdso_time(t: *mut i64) -> i64 {
    let Some(ns) = read_ns(CLOCK_REALTIME) else {
        return syscall2(nr::TIME, t as u64, 0);
    };
    let sec = (ns / NSEC_PER_SEC) as i64;
    if !t.is_null() {
        t.write(sec);
    }
    sec
}

#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_getres(clock: i32, res: *mut Timespec) -> i64 {
    let v = page();
    if let Some(c) = clock_id(clock) {
        // SAFETY: the page is mapped; res_ns never changes after the start.
        let r = read_volatile(addr_of!((*v).res_ns[c as usize]));
        let served = read_volatile(addr_of!((*v).clocks)) & (1 << c) != 0;
        if served && r != 0 {
            if !res.is_null() {
                res.write(Timespec {
                    sec: (r / NSEC_PER_SEC) as i64,
                    nsec: (r % NSEC_PER_SEC) as i64,
                });
            }
            return 0;
        }
    }
    syscall2(nr::CLOCK_GETRES, clock as i64 as u64, res as u64)
}

#[no_mangle]
pub unsafe extern "C" fn __vdso_getcpu(cpu: *mut u32, node: *mut u32, cache: *mut u8) -> i64 {
    let v = page();
    if read_volatile(addr_of!((*v).flags)) & FLAG_GETCPU_RDTSCP == 0 {
        return syscall3(nr::GETCPU, cpu as u64, node as u64, cache as u64);
    }
    let aux: u32;
    // SAFETY: the monitor sets the flag only where the CPU offers rdtscp.
    asm!("rdtscp", out("eax") _, out("edx") _, out("ecx") aux, options(nomem, nostack, preserves_flags));
    // Linux's TSC_AUX encoding: node above bit 12, CPU below.
    if !cpu.is_null() {
        cpu.write(aux & 0xfff);
    }
    if !node.is_null() {
        node.write(aux >> 12);
    }
    0
}

// Linux's unprefixed names are weak aliases of the same code.
global_asm!(
    ".weak clock_gettime",
    ".set clock_gettime, __vdso_clock_gettime",
    ".weak gettimeofday",
    ".set gettimeofday, __vdso_gettimeofday",
    ".weak time",
    ".set time, __vdso_time",
    ".weak clock_getres",
    ".set clock_getres, __vdso_clock_getres",
    ".weak getcpu",
    ".set getcpu, __vdso_getcpu",
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing here can panic (no indexing, no unwrap); should it, fault like bad code would.
    // SAFETY: ud2 raises #UD, which ends the app with SIGILL.
    unsafe { asm!("ud2", options(noreturn)) }
}
