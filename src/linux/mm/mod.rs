//! Memory syscalls over the arena of [`space`]. The arena is mapped read-write in
//! full before the application starts and the page tables never change, so protections are
//! bookkeeping: every buffer the monitor touches for the application obeys them (EFAULT as on
//! Linux), but the application's own loads and stores do not (see the README's limitations).
pub mod space;

use super::abi::mman;
use super::abi::TASK_SIZE_MAX;
use super::{Args, Ctx, Sys};
use crate::linux::mm::space::{Access, Remap};
use crate::machine::paging::PAGE_4K;
use syscalls::Errno;

/// Make the guest RAM behind `[va, va + len)` known to KVM (see [`crate::machine::memslots`]).
fn back(cx: &mut Ctx<'_, '_>, va: u64, len: u64) -> Result<(), Errno> {
    let chunks = cx.space().chunks(va, len, Access::Mapped)?;
    for (gpa, n) in chunks {
        cx.machine.ensure_backed(gpa.0, n).map_err(|e| {
            log::warn!("cannot register guest RAM with KVM: {e}");
            Errno::ENOMEM
        })?;
    }
    Ok(())
}

pub(crate) fn brk(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    let old = cx.space().arena.brk;
    let new = cx.process.space_mut().brk(mem, a.ptr(0));
    if new > old && back(cx, old, new - old).is_err() {
        return Ok(cx.process.space_mut().brk(mem, old));
    }
    Ok(new)
}

/// Register a fresh mapping with KVM, or undo it.
fn backed(cx: &mut Ctx<'_, '_>, va: u64, len: u64) -> Sys {
    if let Err(e) = back(cx, va, len) {
        let mem = cx.mem;
        let _ = cx.process.space_mut().munmap(mem, va, len);
        return Err(e.into());
    }
    Ok(va)
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
    let prot = (prot & mman::PROT_BITS) as u32;
    let mem = cx.mem;
    let va = {
        // Released before `backed`, which translates the new range under a read lock.
        let mut space = cx.process.space_mut();
        if flags & mman::MAP_FIXED_NOREPLACE != 0 {
            let end = addr
                .checked_add(len)
                .and_then(|e| e.checked_next_multiple_of(PAGE_4K))
                .ok_or(Errno::ENOMEM)?;
            if !space.arena_is_free(addr, end) {
                return Err(Errno::EEXIST.into());
            }
            space.mmap(mem, addr, len, prot, true)?
        } else {
            space.mmap(mem, addr, len, prot, flags & mman::MAP_FIXED != 0)?
        }
    };
    backed(cx, va, len)
}

pub(crate) fn munmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    cx.process.space_mut().munmap(mem, a.ptr(0), a.len(1))?;
    Ok(0)
}

/// mprotect(2), checked in Linux's order. The protection is recorded page by page (see the
/// module comment). As on Linux, the mapped stretch before a hole is changed before the hole's
/// ENOMEM. PROT_GROWSDOWN/PROT_GROWSUP are EINVAL: no mapping here grows.
pub(crate) fn mprotect(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (start, len, prot) = (a.ptr(0), a.len(1), a.raw(2));
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
    if prot & !(mman::PROT_BITS | mman::PROT_SEM | grows) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let pieces = cx.space().mapped_pieces(start, end.min(TASK_SIZE_MAX));
    let Some(&(first, _)) = pieces.first().filter(|p| p.0 == start) else {
        return Err(Errno::ENOMEM.into());
    };
    if grows != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut reached = first;
    for (s, e) in pieces {
        if s != reached {
            break;
        }
        reached = e;
    }
    cx.process
        .space_mut()
        .mprotect(start, reached, (prot & mman::PROT_BITS) as u32)?;
    if reached < end {
        return Err(Errno::ENOMEM.into());
    }
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
    let va = cx
        .process
        .space_mut()
        .mremap(mem, old, old_len, new_len, how)?;
    backed(cx, va, new_len)
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
    let pieces = cx.space().mapped_pieces(start, end.min(TASK_SIZE_MAX));
    // MADV_REMOVE needs a shared file mapping; every mapping here is private.
    if advice == mman::MADV_REMOVE && !pieces.is_empty() {
        return Err(Errno::EINVAL.into());
    }
    let covered: u64 = pieces.iter().map(|(s, e)| e - s).sum();
    if advice == mman::MADV_DONTNEED {
        let mem = cx.mem;
        for (s, e) in pieces {
            cx.process.space_mut().munmap_contents(mem, s, e)?;
        }
    }
    if covered < end - start {
        return Err(Errno::ENOMEM.into());
    }
    Ok(0)
}
