//! The time page ("vvar") the monitor publishes and the vDSO reads: the one definition of its
//! layout, compiled into both (the monitor includes this file with `#[path]`). Pure `core`.
//!
//! A clock `c` the page serves reads, at TSC value `tsc`,
//! `base_ns[c] + ((tsc - tsc_base) * mult) >> shift` nanoseconds. `seq` is a seqlock: odd while
//! the monitor rewrites the page; a reader retries until it sees the same even value before and
//! after its reads.

/// Clock ids (include/uapi/linux/time.h) the page can serve: the ones below
/// [`CLOCKS`]; CPU-time clocks (2, 3) are never set in `clocks`.
pub const CLOCK_REALTIME: u32 = 0;
/// CLOCK_MONOTONIC.
pub const CLOCK_MONOTONIC: u32 = 1;
/// CLOCK_MONOTONIC_RAW.
pub const CLOCK_MONOTONIC_RAW: u32 = 4;
/// CLOCK_REALTIME_COARSE.
pub const CLOCK_REALTIME_COARSE: u32 = 5;
/// CLOCK_MONOTONIC_COARSE.
pub const CLOCK_MONOTONIC_COARSE: u32 = 6;
/// CLOCK_BOOTTIME.
pub const CLOCK_BOOTTIME: u32 = 7;
/// Number of `base_ns`/`res_ns` slots (clock ids 0..CLOCKS).
pub const CLOCKS: usize = 8;

/// `flags`: `rdtscp` works and its TSC_AUX holds the CPU number (the vCPU index), so getcpu
/// needs no syscall.
pub const FLAG_GETCPU_RDTSCP: u32 = 1;

/// Syscall numbers the vDSO falls back to, and the legacy vsyscall page's entries call.
pub mod nr {
    /// gettimeofday(2).
    pub const GETTIMEOFDAY: u32 = 96;
    /// time(2).
    pub const TIME: u32 = 201;
    /// clock_gettime(2).
    pub const CLOCK_GETTIME: u32 = 228;
    /// clock_getres(2).
    pub const CLOCK_GETRES: u32 = 229;
    /// getcpu(2).
    pub const GETCPU: u32 = 309;
}

/// The page's contents (at its start; the rest of the page is zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vvar {
    /// Seqlock counter: odd while being rewritten.
    pub seq: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Bit `c` set: clock `c` is served from the TSC; others go to the syscall.
    pub clocks: u32,
    /// Right shift applied to `delta * mult`.
    pub shift: u32,
    /// Guest TSC value the bases are taken at.
    pub tsc_base: u64,
    /// Nanoseconds per TSC tick, scaled by 2^shift.
    pub mult: u64,
    /// Each clock's reading at `tsc_base`, in nanoseconds.
    pub base_ns: [u64; CLOCKS],
    /// clock_getres's answer per clock in nanoseconds (0: ask the syscall).
    pub res_ns: [u64; CLOCKS],
}

/// Byte offset of `seq` in the page.
pub const SEQ_OFFSET: usize = 0;
/// Byte offset of `clocks` in the page.
pub const CLOCKS_OFFSET: usize = 8;
/// Byte offset of `base_ns[0]` in the page.
pub const BASE_NS_OFFSET: usize = 32;

/// Byte offset of `base_ns[clock]` in the page.
pub const fn base_offset(clock: u32) -> usize {
    BASE_NS_OFFSET + 8 * clock as usize
}

/// Bytes of [`Vvar`] as [`Vvar::to_bytes`] lays it out.
pub const VVAR_BYTES: usize = 32 + 16 * CLOCKS;

impl Vvar {
    /// The nanoseconds clock `clock` reads at `tsc`, if the page serves it. A TSC below the
    /// base (read on a CPU a hair behind) counts as the base, so readings never go below it.
    #[inline(always)]
    pub fn ns(&self, clock: u32, tsc: u64) -> Option<u64> {
        if clock as usize >= CLOCKS || self.clocks & (1 << clock) == 0 {
            return None;
        }
        let delta = tsc.saturating_sub(self.tsc_base);
        let scaled = ((delta as u128 * self.mult as u128) >> self.shift) as u64;
        Some(self.base_ns[clock as usize].wrapping_add(scaled))
    }

    /// The page as the guest reads it (little-endian, `repr(C)` order).
    pub fn to_bytes(self) -> [u8; VVAR_BYTES] {
        let mut out = [0u8; VVAR_BYTES];
        let words32 = [self.seq, self.flags, self.clocks, self.shift];
        for (i, w) in words32.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let mut words64 = [0u64; 2 + 2 * CLOCKS];
        words64[0] = self.tsc_base;
        words64[1] = self.mult;
        words64[2..2 + CLOCKS].copy_from_slice(&self.base_ns);
        words64[2 + CLOCKS..].copy_from_slice(&self.res_ns);
        for (i, w) in words64.iter().enumerate() {
            out[16 + i * 8..24 + i * 8].copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

const _: () = {
    assert!(core::mem::size_of::<Vvar>() == VVAR_BYTES);
    assert!(core::mem::offset_of!(Vvar, seq) == SEQ_OFFSET);
    assert!(core::mem::offset_of!(Vvar, clocks) == CLOCKS_OFFSET);
    assert!(core::mem::offset_of!(Vvar, base_ns) == BASE_NS_OFFSET);
};
