//! Memory syscalls over the arena of [`crate::addrspace`]. The arena is mapped read-write in
//! full before the application starts, so protections requested later are recorded but not
//! enforced (see the README's limitations).
use super::linux::mman;
use super::{Args, Ctx, Sys};
use crate::addrspace::{Access, PAGE};
use syscalls::Errno;

/// Make the guest RAM behind `[va, va + len)` known to KVM (see [`crate::memslots`]).
fn back(cx: &mut Ctx<'_, '_>, va: u64, len: u64) -> Result<(), Errno> {
    let chunks = cx.space().chunks(va, len, Access::Read)?;
    if let Some(slots) = cx.state.process.slots.as_mut() {
        for (gpa, n) in chunks {
            slots.ensure(gpa.0, n).map_err(|e| {
                log::warn!("cannot register guest RAM with KVM: {e}");
                Errno::ENOMEM
            })?;
        }
    }
    Ok(())
}

pub fn brk(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    let old = cx.space().arena.brk;
    let new = cx.proc().space.brk(mem, a.0[0]);
    if new > old && back(cx, old, new - old).is_err() {
        return Ok(cx.proc().space.brk(mem, old));
    }
    Ok(new)
}

/// Register a fresh mapping with KVM, or undo it.
fn backed(cx: &mut Ctx<'_, '_>, va: u64, len: u64) -> Sys {
    if let Err(e) = back(cx, va, len) {
        let mem = cx.mem;
        let _ = cx.proc().space.munmap(mem, va, len);
        return Err(e.into());
    }
    Ok(va)
}

pub fn mmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (addr, len, _prot, flags, fd) = (a.0[0], a.0[1], a.0[2], a.0[3], a.0[4] as i32);
    if flags & mman::MAP_ANONYMOUS == 0 {
        // File mappings need a file system (volumes); the only files are streams.
        return Err(if cx.state.process.fds.get(fd as u64).is_ok() {
            Errno::ENODEV
        } else {
            Errno::EBADF
        }
        .into());
    }
    let mem = cx.mem;
    let space = &mut cx.proc().space;
    if flags & mman::MAP_FIXED_NOREPLACE != 0 {
        let end = addr
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(PAGE))
            .ok_or(Errno::ENOMEM)?;
        if !space.arena_is_free(addr, end) {
            return Err(Errno::EEXIST.into());
        }
        let va = space.mmap(mem, addr, len, true)?;
        return backed(cx, va, len);
    }
    let va = space.mmap(mem, addr, len, flags & mman::MAP_FIXED != 0)?;
    backed(cx, va, len)
}

pub fn munmap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let mem = cx.mem;
    cx.proc().space.munmap(mem, a.0[0], a.0[1])?;
    Ok(0)
}

/// Checked like Linux (alignment, mapped range); the protection itself is not applied.
pub fn mprotect(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (addr, len) = (a.0[0], a.0[1]);
    if addr % PAGE != 0 {
        return Err(Errno::EINVAL.into());
    }
    let len = len.checked_next_multiple_of(PAGE).ok_or(Errno::ENOMEM)?;
    if !cx.space().is_mapped(addr, len) {
        return Err(Errno::ENOMEM.into());
    }
    Ok(0)
}

pub fn mremap(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (old, old_len, new_len, flags) = (a.0[0], a.0[1], a.0[2], a.0[3]);
    if flags & !(mman::MREMAP_MAYMOVE | mman::MREMAP_FIXED) != 0 || flags & mman::MREMAP_FIXED != 0
    {
        return Err(Errno::EINVAL.into());
    }
    let mem = cx.mem;
    let va = cx.proc().space.mremap(
        mem,
        old,
        old_len,
        new_len,
        flags & mman::MREMAP_MAYMOVE != 0,
    )?;
    backed(cx, va, new_len)
}

pub fn madvise(cx: &mut Ctx<'_, '_>, a: &Args) -> Sys {
    let (addr, len, advice) = (a.0[0], a.0[1], a.0[2]);
    if addr % PAGE != 0 {
        return Err(Errno::EINVAL.into());
    }
    if advice == mman::MADV_DONTNEED {
        let mem = cx.mem;
        cx.proc().space.munmap_contents(mem, addr, len)?;
    }
    Ok(0)
}
