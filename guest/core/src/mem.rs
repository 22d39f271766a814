//! Address conversions and the memory primitives the compiler expects (`memcpy` and friends): the
//! core builds for the host target without its C library, so it provides them, with string
//! instructions that are one instruction each under PVM's CPL0 emulation.
use umon_abi::layout::{Area, AREA_BYTES, PHYS_MEM};

/// The guest physical address behind a core virtual address: linear windows subtract their base,
/// everything else the core touches is mapped VA = PA.
pub fn gpa_of(va: u64) -> u64 {
    match Area::of(va) {
        Some(area) if area != Area::Debug => va - area.base(),
        _ => va,
    }
}

const _: () = assert!(PHYS_MEM % AREA_BYTES == 0);

#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller (compiler-generated code) guarantees both ranges are valid for `n` bytes.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _,
                         inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is correct when dst does not start inside src.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: backward copy with the direction flag set, cleared again before returning.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                         inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                         options(nostack));
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `dst` is valid for `n` bytes.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _,
                         in("al") value as u8, options(nostack, preserves_flags));
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller guarantees both ranges are valid for `n` bytes.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
