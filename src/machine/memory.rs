//! Guest RAM. Only [`GuestMem`] touches it, and only through vm-memory's bounds-checked accessors:
//! nobody holds a reference or raw pointer into guest RAM, because the guest may change it at any
//! moment (see hyperlight's `HostSharedMemory` for why that would be undefined behaviour).
use crate::machine::paging::PAGE_4K;
use std::os::fd::BorrowedFd;
use umon_abi::Gpa;
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, ReadVolatile, WriteVolatile,
};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A guest memory access that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The range is not inside guest RAM.
    #[error("guest range {gpa:#x}+{len:#x} is outside guest RAM")]
    OutOfRange {
        /// First address.
        gpa: u64,
        /// Length in bytes.
        len: u64,
    },
    /// Creating the anonymous mapping failed.
    #[error("cannot map {bytes} bytes of guest RAM")]
    Map {
        /// Requested size.
        bytes: u64,
        /// Cause.
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    /// Host I/O into or out of guest memory failed.
    #[error("I/O on guest memory failed")]
    Io(#[source] std::io::Error),
}

/// The host buffer of positioned I/O (pread/pwrite), which cannot go straight to guest RAM.
const BOUNCE_BYTES: u64 = 256 << 10;

/// Guest RAM: one anonymous, lazily backed mapping from guest physical address 0. A clone
/// shares the mapping (a forked monitor's rebuilt machine uses its copy of it).
#[derive(Clone)]
pub struct GuestMem {
    mmap: GuestMemoryMmap,
    bytes: u64,
}

impl GuestMem {
    /// Map `bytes` of guest RAM. Pages are backed only when touched.
    pub fn new(bytes: u64) -> Result<GuestMem, MemoryError> {
        let mmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), bytes as usize)])
            .map_err(|source| MemoryError::Map { bytes, source })?;
        Ok(GuestMem { mmap, bytes })
    }

    /// Run `f` on the aligned 32-bit word at `gpa` as an atomic (futex words: the guest's other
    /// vCPUs change them concurrently, so reads and read-modify-writes must be atomic). The
    /// reference cannot escape `f`.
    pub fn with_atomic_u32<R>(
        &self,
        gpa: Gpa,
        f: impl FnOnce(&std::sync::atomic::AtomicU32) -> R,
    ) -> Result<R, MemoryError> {
        use vm_memory::VolatileMemory;
        let out_of_range = || MemoryError::OutOfRange { gpa: gpa.0, len: 4 };
        if gpa.0 % 4 != 0 {
            return Err(out_of_range());
        }
        self.check_range(gpa, 4)?;
        let slice = self
            .mmap
            .get_slice(GuestAddress(gpa.0), 4)
            .map_err(|_| out_of_range())?;
        let word = slice
            .get_atomic_ref::<std::sync::atomic::AtomicU32>(0)
            .map_err(|_| out_of_range())?;
        Ok(f(word))
    }

    /// Size of guest RAM in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The vm-memory object, for KVM slot registration and linux-loader.
    pub(crate) fn mmap(&self) -> &GuestMemoryMmap {
        &self.mmap
    }

    /// Host address of the start of RAM, for KVM_SET_USER_MEMORY_REGION only.
    pub(crate) fn host_base(&self) -> Result<u64, MemoryError> {
        self.mmap
            .iter()
            .next()
            .map(|r| r.as_ptr() as u64)
            .ok_or(MemoryError::OutOfRange { gpa: 0, len: 0 })
    }

    /// Check that `[gpa, gpa + len)` is inside RAM; returns the end.
    pub fn check_range(&self, gpa: Gpa, len: u64) -> Result<u64, MemoryError> {
        let end = gpa
            .0
            .checked_add(len)
            .ok_or(MemoryError::OutOfRange { gpa: gpa.0, len })?;
        if end > self.bytes {
            return Err(MemoryError::OutOfRange { gpa: gpa.0, len });
        }
        Ok(end)
    }

    /// Copy a `T` out of guest memory.
    pub fn read<T: FromBytes + IntoBytes>(&self, gpa: Gpa) -> Result<T, MemoryError> {
        let mut value = T::new_zeroed();
        self.read_bytes(gpa, value.as_mut_bytes())?;
        Ok(value)
    }

    /// Copy a `T` into guest memory.
    pub fn write<T: IntoBytes + Immutable>(&self, gpa: Gpa, value: &T) -> Result<(), MemoryError> {
        self.write_bytes(gpa, value.as_bytes())
    }

    /// Copy bytes out of guest memory.
    pub fn read_bytes(&self, gpa: Gpa, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check_range(gpa, buf.len() as u64)?;
        self.mmap
            .read_slice(buf, GuestAddress(gpa.0))
            .map_err(|_| MemoryError::OutOfRange {
                gpa: gpa.0,
                len: buf.len() as u64,
            })
    }

    /// Copy bytes into guest memory.
    pub fn write_bytes(&self, gpa: Gpa, buf: &[u8]) -> Result<(), MemoryError> {
        self.check_range(gpa, buf.len() as u64)?;
        self.mmap
            .write_slice(buf, GuestAddress(gpa.0))
            .map_err(|_| MemoryError::OutOfRange {
                gpa: gpa.0,
                len: buf.len() as u64,
            })
    }

    /// Fill `[gpa, gpa + len)` with zeros.
    pub fn zero(&self, gpa: Gpa, len: u64) -> Result<(), MemoryError> {
        self.check_range(gpa, len)?;
        let zeros = [0u8; 4096];
        let mut at = gpa.0;
        while at < gpa.0 + len {
            let n = (gpa.0 + len - at).min(zeros.len() as u64);
            self.write_bytes(Gpa(at), &zeros[..n as usize])?;
            at += n;
        }
        Ok(())
    }

    /// Give `[gpa, gpa + len)` back to the host: afterwards it reads as zeros and costs no host
    /// memory until touched again. Whole pages are dropped with madvise; partial edges are zeroed.
    #[allow(unsafe_code)]
    pub fn discard(&self, gpa: Gpa, len: u64) -> Result<(), MemoryError> {
        let end = self.check_range(gpa, len)?;
        let first = gpa.0.next_multiple_of(PAGE_4K).min(end);
        let last = (end & !(PAGE_4K - 1)).max(first);
        self.zero(gpa, first - gpa.0)?;
        self.zero(Gpa(last), end - last)?;
        if last > first {
            let slice = self
                .mmap
                .get_slice(GuestAddress(first), (last - first) as usize)
                .map_err(|_| MemoryError::OutOfRange { gpa: first, len })?;
            let ptr = slice.ptr_guard_mut().as_ptr();
            // SAFETY: the range is whole pages inside our own anonymous private mapping of guest
            // RAM (checked above); MADV_DONTNEED only replaces their contents with zero pages,
            // which is the intended effect. No Rust reference into guest RAM exists, and the vCPU
            // is stopped in an exit while the monitor runs this.
            let r = unsafe {
                rustix::mm::madvise(
                    ptr.cast(),
                    (last - first) as usize,
                    rustix::mm::Advice::LinuxDontNeed,
                )
            };
            if r.is_err() {
                self.zero(Gpa(first), last - first)?;
            }
        }
        Ok(())
    }

    /// Copy `len` bytes from `src` to a non-overlapping `dst`, both in guest RAM.
    pub fn copy(&self, src: Gpa, dst: Gpa, len: u64) -> Result<(), MemoryError> {
        self.check_range(src, len)?;
        self.check_range(dst, len)?;
        if src.0 < dst.0 + len && dst.0 < src.0 + len {
            return Err(MemoryError::OutOfRange { gpa: dst.0, len });
        }
        let from = self
            .mmap
            .get_slice(GuestAddress(src.0), len as usize)
            .map_err(|_| MemoryError::OutOfRange { gpa: src.0, len })?;
        let to = self
            .mmap
            .get_slice(GuestAddress(dst.0), len as usize)
            .map_err(|_| MemoryError::OutOfRange { gpa: dst.0, len })?;
        from.copy_to_volatile_slice(to);
        Ok(())
    }

    /// Write guest bytes `[gpa, gpa + len)` straight to `dst` (no bounce buffer).
    /// Returns the number of bytes written, which may be short.
    pub fn write_to<W: WriteVolatile>(
        &self,
        gpa: Gpa,
        len: u64,
        dst: &mut W,
    ) -> Result<usize, MemoryError> {
        self.check_range(gpa, len)?;
        let slice = self
            .mmap
            .get_slice(GuestAddress(gpa.0), len as usize)
            .map_err(|_| MemoryError::OutOfRange { gpa: gpa.0, len })?;
        dst.write_volatile(&slice).map_err(|e| match e {
            vm_memory::VolatileMemoryError::IOError(io) => MemoryError::Io(io),
            _ => MemoryError::OutOfRange { gpa: gpa.0, len },
        })
    }

    /// pread(2) from `fd` at file offset `offset` into guest bytes `[gpa, gpa + len)`, leaving
    /// the file's own offset alone. Through a bounded host buffer (vm-memory has no positional
    /// volatile I/O); continues short reads until `len` or end of file, like one regular-file
    /// read. Returns the count read.
    pub fn read_from_at(
        &self,
        gpa: Gpa,
        len: u64,
        fd: BorrowedFd<'_>,
        offset: u64,
    ) -> Result<usize, MemoryError> {
        self.check_range(gpa, len)?;
        let mut buf = vec![0u8; len.min(BOUNCE_BYTES) as usize];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(BOUNCE_BYTES) as usize;
            let n = match rustix::io::pread(fd, &mut buf[..want], offset.saturating_add(done)) {
                Ok(n) => n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(MemoryError::Io(e.into())),
            };
            self.write_bytes(Gpa(gpa.0 + done), &buf[..n])?;
            done += n as u64;
            if n < want {
                break;
            }
        }
        Ok(done as usize)
    }

    /// pwrite(2) of guest bytes `[gpa, gpa + len)` to `fd` at file offset `offset`, leaving
    /// the file's own offset alone (see [`GuestMem::read_from_at`]). Returns the count
    /// written, which may be short.
    pub fn write_to_at(
        &self,
        gpa: Gpa,
        len: u64,
        fd: BorrowedFd<'_>,
        offset: u64,
    ) -> Result<usize, MemoryError> {
        self.check_range(gpa, len)?;
        let mut buf = vec![0u8; len.min(BOUNCE_BYTES) as usize];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(BOUNCE_BYTES) as usize;
            self.read_bytes(Gpa(gpa.0 + done), &mut buf[..want])?;
            let n = match rustix::io::pwrite(fd, &buf[..want], offset.saturating_add(done)) {
                Ok(n) => n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(MemoryError::Io(e.into())),
            };
            done += n as u64;
            if n < want {
                break;
            }
        }
        Ok(done as usize)
    }

    /// Read from `src` straight into guest bytes `[gpa, gpa + len)`. Returns the count read.
    pub fn read_from<R: ReadVolatile>(
        &self,
        gpa: Gpa,
        len: u64,
        src: &mut R,
    ) -> Result<usize, MemoryError> {
        self.check_range(gpa, len)?;
        let mut slice = self
            .mmap
            .get_slice(GuestAddress(gpa.0), len as usize)
            .map_err(|_| MemoryError::OutOfRange { gpa: gpa.0, len })?;
        src.read_volatile(&mut slice).map_err(|e| match e {
            vm_memory::VolatileMemoryError::IOError(io) => MemoryError::Io(io),
            _ => MemoryError::OutOfRange { gpa: gpa.0, len },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_past_ram_is_out_of_range() {
        let mem = GuestMem::new(1 << 20).unwrap();
        assert!(mem.read::<u64>(Gpa((1 << 20) - 8)).is_ok());
        assert!(matches!(
            mem.read::<u64>(Gpa((1 << 20) - 4)),
            Err(MemoryError::OutOfRange { .. })
        ));
        assert!(matches!(
            mem.read::<u64>(Gpa(u64::MAX - 2)),
            Err(MemoryError::OutOfRange { .. })
        ));
        assert!(mem.zero(Gpa(0), u64::MAX).is_err());
    }

    #[test]
    fn write_then_read_round_trips() {
        let mem = GuestMem::new(1 << 20).unwrap();
        mem.write(Gpa(0x100), &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(mem.read::<u64>(Gpa(0x100)).unwrap(), 0x1122_3344_5566_7788);
    }
}
