//! Guest RAM. Only [`GuestMem`] touches it, and only through vm-memory's bounds-checked accessors:
//! nobody holds a reference or raw pointer into guest RAM, because the guest may change it at any
//! moment (see hyperlight's `HostSharedMemory` for why that would be undefined behaviour).
use crate::machine::paging::PAGE_4K;
use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;
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
///
/// Frames may be *overlaid*: their host pages replaced by a mapping of a host file
/// ([`GuestMem::overlay`]), so that the guest's MAP_SHARED memory is the file's pages (the
/// page cache: coherent with read/write of the file, with other mappings, and, MAP_SHARED on
/// the host too, with a forked monitor's copy of guest RAM). [`GuestMem::discard`] puts
/// anonymous memory back first, so a freed frame reads zeros as before.
#[derive(Clone)]
pub struct GuestMem {
    mmap: GuestMemoryMmap,
    bytes: u64,
    overlays: Arc<Overlays>,
}

impl std::fmt::Debug for GuestMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMem")
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// The overlaid frames of one guest RAM, by guest-physical start: length.
#[derive(Default)]
struct Overlays {
    map: Mutex<BTreeMap<u64, u64>>,
    /// The slot in [`SIGBUS_RANGES`] of this RAM's host range, once it has an overlay.
    slot: Mutex<Option<usize>>,
}

impl Drop for Overlays {
    fn drop(&mut self) {
        if let Some(i) = *self.slot.get_mut().unwrap_or_else(|e| e.into_inner()) {
            SIGBUS_RANGES[i].1.store(0, Ordering::SeqCst);
            SIGBUS_RANGES[i].0.store(0, Ordering::SeqCst);
        }
    }
}

/// A one-page writable MAP_SHARED host mapping of a file, held while the application has a
/// writable shared mapping of it: the host kernel then refuses F_SEAL_WRITE (EBUSY) as
/// Linux does for the application's mapping, although the application's pages get their
/// host mappings only when touched. Unmapped when dropped.
#[derive(Debug)]
pub struct WritableAnchor {
    addr: usize,
}

impl WritableAnchor {
    /// Map one page of `fd` shared and writable anywhere in the monitor (never accessed).
    #[allow(unsafe_code)]
    pub fn new(fd: BorrowedFd<'_>) -> Option<WritableAnchor> {
        // SAFETY: a fresh mapping at an address the kernel picks; nothing reads or writes it,
        // so a file shorter than a page cannot fault here.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                PAGE_4K as usize,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }
        .ok()?;
        Some(WritableAnchor { addr: p as usize })
    }
}

impl Drop for WritableAnchor {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: our own mapping from `new`, never shared as a reference.
        let _ = unsafe { rustix::mm::munmap(self.addr as *mut std::ffi::c_void, PAGE_4K as usize) };
    }
}

/// How a host futex wait ended ([`GuestMem::host_futex_wait`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostWait {
    /// A wake (on the word, or on the word a FUTEX_CMP_REQUEUE moved the waiter to).
    Woken,
    /// The word did not hold the value.
    Differs,
    /// The deadline passed.
    TimedOut,
    /// A host signal (a kick) came: look at the stop conditions.
    Interrupted,
}

/// How a host file is mapped over frames ([`GuestMem::overlay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayKind {
    /// The file's pages themselves (MAP_SHARED on the host; the fd must be writable).
    Shared,
    /// A private copy-on-write view of the file: reads see the file until the page is written
    /// (a read-only descriptor's shared mapping, which the guest cannot write).
    Private,
}

/// Host ranges of guest RAM that have overlays: a host SIGBUS inside one (an access past the
/// end of a file that was truncated under its mapping) is answered with a zero page by
/// [`on_sigbus`] instead of killing the monitor. (start, end) pairs; (0, 0) is a free slot.
static SIGBUS_RANGES: [(AtomicU64, AtomicU64); 16] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 16];

impl GuestMem {
    /// Map `bytes` of guest RAM. Pages are backed only when touched.
    pub fn new(bytes: u64) -> Result<GuestMem, MemoryError> {
        let mmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), bytes as usize)])
            .map_err(|source| MemoryError::Map { bytes, source })?;
        install_signal_dispositions();
        Ok(GuestMem {
            mmap,
            bytes,
            overlays: Arc::default(),
        })
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

    /// The host address of guest-physical `gpa` (inside RAM, checked by the caller).
    fn host_addr(&self, gpa: u64) -> Result<u64, MemoryError> {
        Ok(self.host_base()? + gpa)
    }

    /// Map `len` bytes of the host file `fd` from `offset` over the frames `[gpa, gpa + len)`
    /// (whole pages): from now on those frames are the file's pages, for the guest (KVM
    /// follows the host mapping through its MMU notifier) and for the monitor's accesses.
    /// Whatever the frames held is gone. [`GuestMem::discard`] undoes it.
    #[allow(unsafe_code)]
    pub fn overlay(
        &self,
        gpa: Gpa,
        len: u64,
        fd: BorrowedFd<'_>,
        offset: u64,
        kind: OverlayKind,
    ) -> Result<(), MemoryError> {
        let end = self.check_range(gpa, len)?;
        if gpa.0 % PAGE_4K != 0 || len % PAGE_4K != 0 || len == 0 {
            return Err(MemoryError::OutOfRange { gpa: gpa.0, len });
        }
        self.watch_sigbus()?;
        let addr = self.host_addr(gpa.0)?;
        let flags = match kind {
            OverlayKind::Shared => rustix::mm::MapFlags::SHARED,
            OverlayKind::Private => rustix::mm::MapFlags::PRIVATE,
        } | rustix::mm::MapFlags::FIXED;
        let mut map = self.overlays.map.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `[addr, addr + len)` is whole pages inside this RAM's own host mapping
        // (checked above), which stays mapped (MAP_FIXED replaces pages, never unmaps the
        // range); no Rust reference into guest RAM exists (every access is volatile, through
        // vm-memory), so replacing the pages under a running vCPU changes only what it reads.
        unsafe {
            rustix::mm::mmap(
                addr as *mut std::ffi::c_void,
                len as usize,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                flags,
                fd,
                offset,
            )
        }
        .map_err(|e| MemoryError::Io(e.into()))?;
        Self::forget(&mut map, gpa.0, end);
        map.insert(gpa.0, len);
        Ok(())
    }

    /// Take `[start, end)` out of the overlay record; returns the overlaid pieces it held.
    fn forget(map: &mut BTreeMap<u64, u64>, start: u64, end: u64) -> Vec<(u64, u64)> {
        let first = map
            .range(..=start)
            .next_back()
            .filter(|(&s, &l)| s + l > start)
            .map_or(start, |(&s, _)| s);
        let hit: Vec<(u64, u64)> = map.range(first..end).map(|(&s, &l)| (s, l)).collect();
        let mut cut = Vec::new();
        for (s, l) in hit {
            map.remove(&s);
            let e = s + l;
            if s < start {
                map.insert(s, start - s);
            }
            if e > end {
                map.insert(end, e - end);
            }
            cut.push((s.max(start), e.min(end)));
        }
        cut
    }

    /// Put anonymous memory (zeros) back under the overlaid frames of `[gpa, end)`.
    #[allow(unsafe_code)]
    fn restore(&self, gpa: u64, end: u64) -> Result<(), MemoryError> {
        let mut map = self.overlays.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return Ok(());
        }
        for (s, e) in Self::forget(
            &mut map,
            gpa & !(PAGE_4K - 1),
            end.next_multiple_of(PAGE_4K),
        ) {
            let addr = self.host_addr(s)?;
            // SAFETY: as in `overlay`: whole pages of our own guest-RAM mapping, replaced by
            // fresh anonymous pages like the ones it was made of.
            unsafe {
                rustix::mm::mmap_anonymous(
                    addr as *mut std::ffi::c_void,
                    (e - s) as usize,
                    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                    rustix::mm::MapFlags::PRIVATE
                        | rustix::mm::MapFlags::FIXED
                        | rustix::mm::MapFlags::NORESERVE,
                )
            }
            .map_err(|e| MemoryError::Io(e.into()))?;
        }
        Ok(())
    }

    /// Put anonymous memory back under every overlay (the process is ending).
    pub fn drop_overlays(&self) {
        if let Err(e) = self.restore(0, self.bytes) {
            log::warn!("cannot unmap the shared files of guest RAM: {e}");
        }
    }

    /// Whether the frame at `gpa` is overlaid by a host file.
    pub fn is_overlaid(&self, gpa: Gpa) -> bool {
        let map = self.overlays.map.lock().unwrap_or_else(|e| e.into_inner());
        map.range(..=gpa.0)
            .next_back()
            .is_some_and(|(&s, &l)| gpa.0 < s + l)
    }

    /// msync(2) of the overlaid frames in `[gpa, gpa + len)` (`flags` as the application
    /// gave them: MS_ASYNC, MS_SYNC, MS_INVALIDATE).
    #[allow(unsafe_code)]
    pub fn sync(&self, gpa: Gpa, len: u64, flags: u64) -> Result<(), MemoryError> {
        let end = self.check_range(gpa, len)?;
        let pieces: Vec<(u64, u64)> = {
            let map = self.overlays.map.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .filter(|(&s, &l)| s < end && s + l > gpa.0)
                .map(|(&s, &l)| (s.max(gpa.0), (s + l).min(end)))
                .collect()
        };
        let mut how = rustix::mm::MsyncFlags::empty();
        if flags & 4 != 0 {
            how |= rustix::mm::MsyncFlags::SYNC;
        } else {
            how |= rustix::mm::MsyncFlags::ASYNC;
        }
        for (s, e) in pieces {
            let addr = self.host_addr(s)?;
            // SAFETY: msync only writes the file's dirty pages back; it reads no Rust object.
            unsafe { rustix::mm::msync(addr as *mut std::ffi::c_void, (e - s) as usize, how) }
                .map_err(|e| MemoryError::Io(e.into()))?;
        }
        Ok(())
    }

    /// FUTEX_WAIT_BITSET (shared, not private: the key is the page of the file, so waiters in
    /// other monitors that overlay the same file page meet here) on the word at `gpa` while it
    /// holds `val`, for wakes whose bitset meets `bitset` (not 0), until woken, a host signal
    /// (a kick: [`HostWait::Interrupted`]) or `deadline`: absolute, on CLOCK_REALTIME if
    /// `realtime`, else on CLOCK_MONOTONIC; None waits without a limit. A FUTEX_CMP_REQUEUE
    /// or FUTEX_REQUEUE meanwhile moves the host waiter to another word, and a wake there ends
    /// this call too ([`HostWait::Woken`]).
    #[allow(unsafe_code)]
    pub fn host_futex_wait(
        &self,
        gpa: Gpa,
        val: u32,
        bitset: u32,
        deadline: Option<Duration>,
        realtime: bool,
    ) -> Result<HostWait, MemoryError> {
        self.check_range(gpa, 4)?;
        let addr = self.host_addr(gpa.0)?;
        let ts = deadline.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let op = if realtime {
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_CLOCK_REALTIME
        } else {
            libc::FUTEX_WAIT_BITSET
        };
        // SAFETY: the kernel reads the aligned word at `addr` (inside guest RAM, checked) and
        // the timespec on our stack (or none); no Rust reference to either escapes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                addr as *const u32,
                op,
                val,
                ts_ptr,
                std::ptr::null::<u32>(),
                bitset,
            )
        };
        if r == 0 {
            return Ok(HostWait::Woken);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => Ok(HostWait::Differs),
            Some(libc::ETIMEDOUT) => Ok(HostWait::TimedOut),
            Some(libc::EINTR) => Ok(HostWait::Interrupted),
            _ => Err(MemoryError::Io(std::io::Error::last_os_error())),
        }
    }

    /// A shared host futex operation that wakes (FUTEX_WAKE, FUTEX_WAKE_BITSET,
    /// FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP) on words of guest RAM; returns the host's count.
    #[allow(unsafe_code)]
    pub fn host_futex_wake(
        &self,
        op: i32,
        gpa: Gpa,
        val: u32,
        val2: u32,
        gpa2: Option<Gpa>,
        val3: u32,
    ) -> Result<u64, MemoryError> {
        self.check_range(gpa, 4)?;
        let addr = self.host_addr(gpa.0)?;
        let addr2 = match gpa2 {
            Some(g) => {
                self.check_range(g, 4)?;
                self.host_addr(g.0)?
            }
            None => 0,
        };
        // SAFETY: the kernel reads and changes the aligned words at `addr`/`addr2` (inside
        // guest RAM, checked), as the guest's own atomics do; `val2` is passed as the count
        // the operations that take one read from the timeout argument.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                addr as *const u32,
                op,
                val,
                val2 as usize,
                addr2 as *const u32,
                val3,
            )
        };
        if r < 0 {
            return Err(MemoryError::Io(std::io::Error::last_os_error()));
        }
        Ok(r as u64)
    }

    /// Register this RAM's host range with the SIGBUS handler (once per RAM).
    #[allow(unsafe_code)]
    fn watch_sigbus(&self) -> Result<(), MemoryError> {
        let mut slot = self.overlays.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let start = self.host_base()?;
        for (i, (s, e)) in SIGBUS_RANGES.iter().enumerate() {
            if s.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                e.store(start + self.bytes, Ordering::SeqCst);
                *slot = Some(i);
                return Ok(());
            }
        }
        Err(MemoryError::Io(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        )))
    }

    /// Give `[gpa, gpa + len)` back to the host: afterwards it reads as zeros and costs no host
    /// memory until touched again. Whole pages are dropped with madvise; partial edges are zeroed.
    #[allow(unsafe_code)]
    pub fn discard(&self, gpa: Gpa, len: u64) -> Result<(), MemoryError> {
        let end = self.check_range(gpa, len)?;
        self.restore(gpa.0, end)?;
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

/// The monitor's process-wide signal dispositions, set once per process with guest RAM
/// (before the monitor confines itself with seccomp, which does not allow sigaction):
/// [`on_sigbus`], and SIGPIPE ignored unless someone handles it. The monitor's host writes
/// to pipes and sockets must fail with EPIPE (umon then sends the application its SIGPIPE);
/// with SIGPIPE's default action a guest writing to a pipe nobody reads would silently kill
/// the process umon runs in. Rust's own `main` ignores SIGPIPE, but an embedder's process
/// (or a fuzzer's C++ main) may not: the fuzz smoke run died that way (exit status 141).
#[allow(unsafe_code)]
fn install_signal_dispositions() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: sigaction is plain data; all zeros is a valid (empty) value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a query (null new action) into our own struct.
        let queried = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) };
        if queried == 0 && old.sa_sigaction == libc::SIG_DFL {
            // SAFETY: SIG_IGN runs no code; an embedder's own SIGPIPE handler is left alone.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        }
        // SAFETY: sigaction is plain data; all zeros is a valid (empty) value.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // The mask stays empty (all zeros), as sigemptyset would leave it.
        // SAFETY: an extern "C" handler that only makes raw syscalls (async-signal-safe);
        // nothing else in umon handles SIGBUS.
        unsafe { libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) };
    });
}

/// SIGBUS in the monitor: an access to an overlaid frame past the end of its file (the file
/// was truncated under the guest's mapping, by the application or by someone on the host).
/// Linux would send the application SIGBUS; the monitor must not die of it, so the page
/// becomes a zero page and the access completes. Anywhere else it is a real bug: one line and
/// the exit status of a SIGBUS death.
#[allow(unsafe_code)]
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let info = unsafe { &*info };
    // SAFETY: si_addr is the field SIGBUS fills (the faulting address).
    let addr = unsafe { info.si_addr() } as u64;
    let page = addr & !(PAGE_4K - 1);
    let ours = SIGBUS_RANGES.iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::SeqCst), e.load(Ordering::SeqCst));
        s != 0 && page >= s && page < e
    });
    if ours {
        // SAFETY: the page lies in a guest-RAM mapping of this process (registered above);
        // replacing it with a zero page is what `restore` does for a whole overlay.
        let r = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE_4K as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            return;
        }
    }
    let msg = b"umon: SIGBUS in the monitor\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is a static string.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(128 + libc::SIGBUS) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

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
    fn an_overlay_is_the_file_until_discarded() {
        let mem = GuestMem::new(1 << 20).unwrap();
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 3 * PAGE_4K).unwrap();
        mem.write(Gpa(0x3000), &7u64).unwrap();
        mem.overlay(
            Gpa(0x2000),
            2 * PAGE_4K,
            fd.as_fd(),
            PAGE_4K,
            OverlayKind::Shared,
        )
        .unwrap();
        assert!(mem.is_overlaid(Gpa(0x3fff)) && !mem.is_overlaid(Gpa(0x4000)));
        // The frames show the file from offset 4096, not what they held.
        assert_eq!(mem.read::<u64>(Gpa(0x3000)).unwrap(), 0);
        rustix::io::pwrite(&fd, b"file", 2 * PAGE_4K).unwrap();
        let mut b = [0u8; 4];
        mem.read_bytes(Gpa(0x3000), &mut b).unwrap();
        assert_eq!(&b, b"file");
        mem.write_bytes(Gpa(0x2000), b"mem").unwrap();
        let mut f = [0u8; 3];
        rustix::io::pread(&fd, &mut f, PAGE_4K).unwrap();
        assert_eq!(&f, b"mem");
        // Discarding one page of it puts zeros back there; the file keeps its bytes.
        mem.discard(Gpa(0x2000), PAGE_4K).unwrap();
        assert_eq!(mem.read::<u64>(Gpa(0x2000)).unwrap(), 0);
        assert!(!mem.is_overlaid(Gpa(0x2000)) && mem.is_overlaid(Gpa(0x3000)));
        rustix::io::pread(&fd, &mut f, PAGE_4K).unwrap();
        assert_eq!(&f, b"mem");
        mem.sync(Gpa(0), 1 << 20, 4).unwrap();
        // Unaligned or outside RAM: refused, nothing changed.
        assert!(mem
            .overlay(Gpa(0x2001), PAGE_4K, fd.as_fd(), 0, OverlayKind::Shared)
            .is_err());
        assert!(mem
            .overlay(Gpa(1 << 20), PAGE_4K, fd.as_fd(), 0, OverlayKind::Shared)
            .is_err());
    }

    #[test]
    fn a_read_past_the_end_of_an_overlaid_file_reads_zeros() {
        let mem = GuestMem::new(1 << 20).unwrap();
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 2 * PAGE_4K).unwrap();
        mem.overlay(Gpa(0x4000), 2 * PAGE_4K, fd.as_fd(), 0, OverlayKind::Shared)
            .unwrap();
        mem.write(Gpa(0x5000), &9u64).unwrap();
        // Truncated under the mapping: the host access would be SIGBUS.
        rustix::fs::ftruncate(&fd, PAGE_4K).unwrap();
        assert_eq!(mem.read::<u64>(Gpa(0x5000)).unwrap(), 0);
    }

    #[test]
    fn write_then_read_round_trips() {
        let mem = GuestMem::new(1 << 20).unwrap();
        mem.write(Gpa(0x100), &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(mem.read::<u64>(Gpa(0x100)).unwrap(), 0x1122_3344_5566_7788);
    }
}
