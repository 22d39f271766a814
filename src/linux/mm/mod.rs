//! Memory syscalls over the mappings of [`space`]. The arena's pages get frames at first
//! touch ([`fault`]); every buffer the monitor touches for the application obeys the
//! mappings' protections (EFAULT as on Linux), and the page tables follow
//! mprotect/munmap/mmap and faults through one batch per exit (`follow_page_tables`); with
//! several threads the batches take turns (`machine::turn`) and one that takes translations
//! away is shot down on every other vCPU before it counts (`task::tlb_shootdown`).
pub mod fault;
pub mod space;
pub mod vma;

use super::abi::mman;
use super::abi::TASK_SIZE_MAX;
use super::{Args, Ctx, Sys};
use crate::linux::mm::space::{MappedFile, NewMap, Place, Remap};
use crate::linux::process::Process;
use crate::linux::thread::Thread;
use crate::machine::memory::OverlayKind;
use crate::machine::paging::{Flush, PAGE_4K};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use syscalls::Errno;

/// MAP_LOCKED.
pub const MAP_LOCKED: u64 = 0x2000;
/// MADV_FREE.
pub const MADV_FREE: u64 = 8;
/// MADV_WIPEONFORK.
pub const MADV_WIPEONFORK: u64 = 18;
/// MADV_KEEPONFORK.
pub const MADV_KEEPONFORK: u64 = 19;
/// MADV_DONTFORK.
pub const MADV_DONTFORK: u64 = 10;
/// MADV_DOFORK.
pub const MADV_DOFORK: u64 = 11;
/// MADV_DONTNEED_LOCKED.
pub const MADV_DONTNEED_LOCKED: u64 = 24;
/// MS_ASYNC.
pub const MS_ASYNC: u64 = 1;
/// MS_INVALIDATE.
pub const MS_INVALIDATE: u64 = 2;
/// MS_SYNC.
pub const MS_SYNC: u64 = 4;
/// MCL_CURRENT.
const MCL_CURRENT: u64 = 1;
/// MCL_FUTURE.
const MCL_FUTURE: u64 = 2;
/// MCL_ONFAULT.
const MCL_ONFAULT: u64 = 4;
/// MLOCK_ONFAULT (mlock2).
const MLOCK_ONFAULT: u64 = 1;

/// After a syscall failed with EFAULT: grow the MAP_GROWSDOWN mapping whose space an access
/// of it found unmapped (see `AddrSpace::note_below_growsdown`), as Linux's uaccess fault
/// would have; true if it grew (the call may run again).
pub(crate) fn grow_for_access(cx: &Ctx<'_, '_>) -> bool {
    let Some(va) = space::take_grow_wanted() else {
        return false;
    };
    let limit = crate::linux::proc::rlimit(cx, crate::linux::proc::RLIMIT_STACK).cur;
    cx.process.space_mut().grow_for_access(va, limit)
}

/// Make the page tables follow the mappings the exit being served changed: one batch,
/// applied by this vCPU before the application runs on. Call it last, once the application's
/// registers are final (after the syscall's result and any signal delivery). Other vCPUs
/// need nothing on PVM (KVM flushes them inside the trapped stores, measured); hardware KVM
/// needs a shootdown (issue 13 plan, step 14). A change the tables cannot follow (no frame
/// left for a table) is logged: the mappings stay right for the monitor's own accesses.
pub(crate) fn follow_page_tables(cx: &mut Ctx<'_, '_>) {
    if let Err(e) = follow(cx) {
        log::warn!("page tables do not follow a mapping change: {e}");
    }
}

/// [`follow_page_tables`], with what kept the tables from following.
pub(crate) fn follow(cx: &mut Ctx<'_, '_>) -> Result<(), crate::machine::TablesError> {
    if cx.process.threaded.load(Ordering::Relaxed) {
        return follow_in_turn(cx);
    }
    let mut space = cx.process.space_mut();
    let changes = space.take_pt_changes();
    if changes.is_empty() {
        return Ok(());
    }
    let planned = cx
        .machine
        .plan(|mapper, frames| space.plan_pt(&changes, mapper, frames));
    let high_water = space.backing_high_water();
    // Planned under the address space's lock: the tables follow the mappings as they are.
    drop(space);
    // KVM learns of RAM as frames are handed out (a registration costs about 0.5 ms per GiB
    // at start; with other vCPUs running each costs milliseconds, so it grows in steps).
    if let Err(e) = cx.machine.ensure_backed(0, high_water) {
        log::warn!("cannot register guest RAM with KVM: {e}");
    }
    let (planned, batch) = match planned {
        Ok(p) => p,
        // No tables to follow (a machine without KVM: fuzzing, unit tests).
        Err(crate::machine::TablesError::NotAdopted) => return Ok(()),
        Err(e) => return Err(e),
    };
    // Even a plan that failed half-way is applied: its earlier changes are in the mirror.
    cx.machine.apply_pt(cx.cpu, batch, false)?;
    Ok(planned?)
}

/// [`follow`] with several vCPUs on PVM: this vCPU takes the turn (`machine::turn`) before
/// it plans, so that its batch lands after every batch planned before it and before every
/// batch planned after; the core reports the batch in (`Hypercall::PtApplied`,
/// [`batch_applied`]), which gives the turn back. Other vCPUs need no flush of their own on
/// PVM: KVM drops their translations inside each trapped store (measured). Frames this
/// thread gave back are freed only then.
fn follow_in_turn(cx: &mut Ctx<'_, '_>) -> Result<(), crate::machine::TablesError> {
    if !cx.process.space().has_pt_work() {
        return Ok(());
    }
    let (machine, process) = (cx.machine, cx.process);
    // A turn never comes while the VM or the process ends (its holder may never finish).
    if !machine
        .pt_turn
        .take(|| machine.stop.requested().is_some() || process.exit.exiting())
    {
        return Ok(());
    }
    let mut space = process.space_mut();
    let changes = space.take_pt_changes();
    let planned = machine.plan(|mapper, frames| {
        mapper.replace_to_save = false;
        space.plan_pt(&changes, mapper, frames)
    });
    let high_water = space.backing_high_water();
    drop(space);
    if let Err(e) = machine.ensure_backed(0, high_water) {
        log::warn!("cannot register guest RAM with KVM: {e}");
    }
    // Even a plan that failed half-way is applied: its earlier changes are in the mirror.
    let (entered, result) = match planned {
        Ok((planned, batch)) => {
            // Translations taken away: the other vCPUs' go too before the batch counts.
            let takes = (batch.flush != Flush::None).then(|| batch.flush.clone());
            match machine.apply_pt(cx.cpu, batch, true) {
                Ok(entered) => {
                    cx.thread.shootdown = takes.filter(|_| entered);
                    (entered, planned.map_err(Into::into))
                }
                Err(e) => (false, Err(e)),
            }
        }
        Err(e) => (false, Err(e)),
    };
    if !entered {
        // No tables at all (a machine without KVM: fuzzing, unit tests) count as followed.
        let no_tables = matches!(result, Err(crate::machine::TablesError::NotAdopted));
        if result.is_ok() || no_tables {
            // Nothing for the guest to store: the tables are right already.
            batch_applied(machine, process, cx.thread);
        } else {
            // Frames stay quarantined: entries may still reach them.
            machine.pt_turn.release();
        }
    }
    match result {
        Err(crate::machine::TablesError::NotAdopted) => Ok(()),
        r => r,
    }
}

/// The core's routine reported this vCPU's batch in the tables: the frames the thread gave
/// back are free, and the next vCPU may plan.
pub(crate) fn batch_applied(
    machine: &crate::machine::Machine,
    process: &Process,
    thread: &mut Thread,
) {
    if let Some(flush) = thread.shootdown.take() {
        crate::linux::task::tlb_shootdown(machine, process, &thread.sig, &flush);
    }
    process.space().free_quarantined(&machine.mem);
    machine.pt_turn.release();
}

pub(crate) fn brk(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    Ok(cx.process.space_mut().brk(mem, a.ptr(0)))
}

pub(crate) fn mmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (addr, len, prot, flags, fd) = (a.ptr(0), a.len(1), a.raw(2), a.flags(3), a.int(4));
    // x86-64's sys_mmap checks the offset first, whatever the mapping.
    if a.off(5) % PAGE_4K != 0 {
        return Err(Errno::EINVAL.into());
    }
    if flags & mman::MAP_ANONYMOUS == 0 {
        // File mappings need a file system (volumes); the only files are streams.
        return Err(if cx.process.fds().get(fd as u64).is_ok() {
            Errno::ENODEV
        } else {
            Errno::EBADF
        }
        .into());
    }
    if len == 0 {
        return Err(Errno::EINVAL.into());
    }
    // Unknown flags are ignored, as Linux does for the legacy types; an anonymous mapping
    // must be shared, private or droppable (MAP_SHARED_VALIDATE is for files).
    if !matches!(
        flags & mman::MAP_TYPE,
        mman::MAP_SHARED | mman::MAP_PRIVATE | mman::MAP_DROPPABLE
    ) {
        return Err(Errno::EINVAL.into());
    }
    let (place, how) = placement(addr, prot, flags);
    let mem = cx.mem;
    if how.shared {
        // Shared memory never grows down (Linux: VM_GROWSDOWN with VM_SHARED is EINVAL).
        if how.growsdown {
            return Err(Errno::EINVAL.into());
        }
        // Shared anonymous memory is a memfd's pages, so that a forked child's monitor (a
        // host fork: private memory copied on write) shares them.
        let bytes = len.checked_next_multiple_of(PAGE_4K).ok_or(Errno::ENOMEM)?;
        let fd = rustix::fs::memfd_create("umon-shared", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(crate::linux::io::host_errno)?;
        rustix::fs::ftruncate(&fd, bytes).map_err(|_| Errno::ENOMEM)?;
        let file = Arc::new(MappedFile {
            fd,
            kind: OverlayKind::Shared,
            may_write: true,
            anonymous: true,
            name: b"/dev/zero (deleted)".to_vec(),
            anchor: None,
            tmpfs: None,
        });
        return Ok(cx
            .process
            .space_mut()
            .mmap_file(mem, place, len, how, file, 0)?);
    }
    Ok(cx.process.space_mut().mmap(mem, place, len, how)?)
}

/// Where mmap(2)'s `addr`, `prot` and `flags` place a mapping, and its attributes.
pub(crate) fn placement(addr: u64, prot: u64, flags: u64) -> (Place, NewMap) {
    // NOREPLACE wins over MAP_FIXED given with it, as Linux's do_mmap.
    let place = if flags & mman::MAP_FIXED_NOREPLACE != 0 {
        Place::NoReplace(addr)
    } else if flags & mman::MAP_FIXED != 0 {
        Place::Fixed(addr)
    } else {
        Place::Hint(addr)
    };
    let how = NewMap {
        prot: (prot & mman::PROT_BITS) as u32,
        shared: matches!(
            flags & mman::MAP_TYPE,
            mman::MAP_SHARED | mman::MAP_SHARED_VALIDATE
        ),
        growsdown: flags & mman::MAP_GROWSDOWN != 0,
        locked: flags & MAP_LOCKED != 0,
        noreserve: flags & mman::MAP_NORESERVE != 0,
    };
    (place, how)
}

pub(crate) fn munmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    cx.process.space_mut().munmap(mem, a.ptr(0), a.len(1))?;
    Ok(0)
}

/// mprotect(2), checked in Linux's order. The protection is recorded per mapping (see the
/// module comment). As on Linux, the mapped stretch before a hole is changed before the hole's
/// ENOMEM.
pub(crate) fn mprotect(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    mprotect_pkey(cx, a.ptr(0), a.len(1), a.raw(2), -1)
}

// ---- protection keys ----------------------------------------------------------------------
// The guest runs without CR4.PKE (its CPUID says no OSPKE), so it gets what Linux gives a
// process on a CPU without usable protection keys (arch/x86: arch_max_pkey() is 1 and the
// allocation map is empty): no key can be allocated, freed or named, and pkey_mprotect with
// key -1 is mprotect. Runtimes (V8, glibc's tests) take the EINVAL as "no pkeys".

/// pkey_alloc(flags, access_rights): EINVAL for bad arguments, and EINVAL for good ones
/// (mm_pkey_alloc hands out key 0, then arch_set_user_pkey_access refuses it without OSPKE).
pub(crate) fn pkey_alloc(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Err(Errno::EINVAL.into())
}

/// pkey_free(key): no key is allocated.
pub(crate) fn pkey_free(_cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    Err(Errno::EINVAL.into())
}

/// pkey_mprotect(start, len, prot, key): mprotect's checks, then EINVAL for any key but -1.
pub(crate) fn pkey_mprotect(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    mprotect_pkey(cx, a.ptr(0), a.len(1), a.raw(2), a.int(3))
}

/// do_mprotect_pkey: `pkey` -1 is plain mprotect; no other key is allocated (see above).
fn mprotect_pkey(cx: &mut Ctx<'_, '_>, start: u64, len: u64, prot: u64, pkey: i32) -> Sys {
    let grows = prot & (mman::PROT_GROWSDOWN | mman::PROT_GROWSUP);
    if grows == mman::PROT_GROWSDOWN | mman::PROT_GROWSUP || start % PAGE_4K != 0 {
        return Err(Errno::EINVAL.into());
    }
    if len == 0 {
        return Ok(0);
    }
    let end = len
        .checked_next_multiple_of(PAGE_4K)
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e > start)
        .ok_or(Errno::ENOMEM)?;
    if prot & !(mman::PROT_BITS | mman::PROT_SEM | grows) != 0 || pkey != -1 {
        return Err(Errno::EINVAL.into());
    }
    // No mapping grows up on x86-64.
    if grows == mman::PROT_GROWSUP {
        return Err(match cx.space().is_mapped(start, 1) {
            true => Errno::EINVAL,
            false => Errno::ENOMEM,
        }
        .into());
    }
    cx.process.space_mut().mprotect(
        start,
        end,
        (prot & mman::PROT_BITS) as u32,
        grows == mman::PROT_GROWSDOWN,
    )?;
    Ok(0)
}

pub(crate) fn mremap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (old, old_len, new_len, flags, new_addr) =
        (a.ptr(0), a.len(1), a.len(2), a.flags(3), a.ptr(4));
    let may_move = flags & mman::MREMAP_MAYMOVE != 0;
    let fixed = flags & mman::MREMAP_FIXED != 0;
    let keep_old = flags & mman::MREMAP_DONTUNMAP != 0;
    let known = mman::MREMAP_MAYMOVE | mman::MREMAP_FIXED | mman::MREMAP_DONTUNMAP;
    // MREMAP_DONTUNMAP is always a move, without resizing.
    if flags & !known != 0
        || (fixed && !may_move)
        || (keep_old && (!may_move || old_len != new_len))
    {
        return Err(Errno::EINVAL.into());
    }
    let how = Remap {
        may_move,
        fixed: fixed.then_some(new_addr),
        keep_old,
    };
    let mem = cx.mem;
    Ok(cx
        .process
        .space_mut()
        .mremap(mem, old, old_len, new_len, how)?)
}

/// The advice values Linux 6.1 (the kernel umon reports) knows.
fn advice_known(advice: u64) -> bool {
    matches!(advice, 0..=4 | 8..=25 | mman::MADV_HWPOISON | mman::MADV_SOFT_OFFLINE)
}

pub(crate) fn madvise(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (start, len, advice) = (a.ptr(0), a.len(1), u64::from(a.uint(2)));
    if !advice_known(advice) || start % PAGE_4K != 0 {
        return Err(Errno::EINVAL.into());
    }
    let end = len
        .checked_next_multiple_of(PAGE_4K)
        .and_then(|l| start.checked_add(l))
        .ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(0);
    }
    // Poisoning memory needs CAP_SYS_ADMIN, which the application never has.
    if matches!(advice, mman::MADV_HWPOISON | mman::MADV_SOFT_OFFLINE) {
        return Err(Errno::EPERM.into());
    }
    let mem = cx.mem;
    cx.process.space_mut().madvise(mem, start, end, advice)?;
    Ok(0)
}

/// The page-aligned end of `[start, start + len)`; `err` on overflow or past the user half.
fn range_end(start: u64, len: u64, err: Errno) -> Result<u64, Errno> {
    len.checked_next_multiple_of(PAGE_4K)
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= TASK_SIZE_MAX)
        .ok_or(err)
}

/// mincore(2): a mapped page is resident once it has its frame (touched, or mapped eagerly).
pub(crate) fn mincore(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (start, len, vec) = (a.ptr(0), a.len(1), a.ptr(2));
    if start % PAGE_4K != 0 {
        return Err(Errno::EINVAL.into());
    }
    let end = range_end(start, len, Errno::ENOMEM)?;
    let pages = (end - start) / PAGE_4K;
    if vec.checked_add(pages).is_none_or(|e| e > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT.into());
    }
    if pages == 0 {
        return Ok(0);
    }
    let run = cx.space().mapped_run(start, end - start) / PAGE_4K;
    if run == 0 {
        return Err(Errno::ENOMEM.into());
    }
    let mut done = 0;
    while done < run {
        let n = (run - done).min(PAGE_4K);
        let flags = cx.space().resident(start + done * PAGE_4K, n);
        cx.space().write(cx.mem, vec + done, &flags)?;
        done += n;
    }
    if run < pages {
        return Err(Errno::ENOMEM.into());
    }
    Ok(0)
}

/// msync(2): a shared file mapping's dirty pages go back to the file; anonymous memory has
/// nothing to write back; the checks are Linux's.
pub(crate) fn msync(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (start, len, flags) = (a.ptr(0), a.len(1), a.flags(2));
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || start % PAGE_4K != 0
        || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    // Linux rounds the length with wrapping arithmetic: a length that wraps to 0 is a no-op.
    let end = start.wrapping_add(len.wrapping_add(PAGE_4K - 1) & !(PAGE_4K - 1));
    if end < start {
        return Err(Errno::ENOMEM.into());
    }
    if end == start {
        return Ok(0);
    }
    let mem = cx.mem;
    cx.process.space_mut().msync(mem, start, end, flags)?;
    Ok(0)
}

/// mlock(2), mlock2(2) and munlock(2) of `[start, start + len)`: the start rounded down,
/// the length up, as Linux. Locking changes nothing else here (guest RAM is never paged
/// out); RLIMIT_MEMLOCK is reported unlimited, so it is never exceeded.
fn lock_range(cx: &mut Ctx<'_, '_>, start: u64, len: u64, lock: bool) -> Sys {
    let base = start - start % PAGE_4K;
    // Linux's PAGE_ALIGN(len + offset) wraps: to 0 (a no-op) or below the start (EINVAL).
    let len = len.wrapping_add(start % PAGE_4K).wrapping_add(PAGE_4K - 1) & !(PAGE_4K - 1);
    let end = base.wrapping_add(len);
    if end < base {
        return Err(Errno::EINVAL.into());
    }
    if end == base {
        return Ok(0);
    }
    cx.process.space_mut().mlock(base, end, lock)?;
    Ok(0)
}

pub(crate) fn mlock(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    lock_range(cx, a.ptr(0), a.len(1), true)
}

pub(crate) fn mlock2(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    if a.flags(2) & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL.into());
    }
    lock_range(cx, a.ptr(0), a.len(1), true)
}

pub(crate) fn munlock(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    lock_range(cx, a.ptr(0), a.len(1), false)
}

pub(crate) fn mlockall(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let flags = a.flags(0);
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL.into());
    }
    cx.process
        .space_mut()
        .mlockall(flags & MCL_CURRENT != 0, flags & MCL_FUTURE != 0);
    Ok(0)
}

pub(crate) fn munlockall(cx: &mut Ctx<'_, '_>, _a: &Args) -> Sys {
    cx.process.space_mut().mlockall(false, false);
    Ok(0)
}
