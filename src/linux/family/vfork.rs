//! What a vfork child writes into its parent's memory. On Linux the child shares the parent's
//! memory until it execs or exits, and glibc's `posix_spawn` relies on it: the child stores the
//! errno of a failed exec in the parent's stack frame before `_exit(127)`, and the parent
//! returns it. Here the child runs on a copy-on-write copy, so when it execs or ends it sends
//! back the pages it wrote (exclusively its own in `/proc/self/pagemap`: copied on its write)
//! within a window around the parent's stack pointer at the vfork: the frames of the blocked
//! parent thread, which no other thread writes. The parent writes them into its memory before
//! it goes on.
//!
//! Each record: the page's guest virtual address (u64, little-endian) and its 4096 bytes; a
//! record with address `u64::MAX` and no bytes ends the stream.
use crate::linux::mm::space::Access;
use crate::linux::process::{locked, Process};
use crate::linux::Ctx;
use crate::machine::memory::GuestMem;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

const PAGE: u64 = 4096;
/// Pages below the parent's stack pointer (a vfork child on the parent's stack writes there)
/// and above it (the parent's frames: posix_spawn's arguments) that are sent back.
const BELOW: u64 = 8 * PAGE;
const ABOVE: u64 = 32 * PAGE;
/// pagemap: present, and mapped by this process only.
const PM_PRESENT: u64 = 1 << 63;
const PM_EXCLUSIVE: u64 = 1 << 56;
const END: u64 = u64::MAX;

/// The child's end of the link: where to send, and the window.
pub struct Link {
    fd: OwnedFd,
    lo: u64,
    hi: u64,
}

/// The window around `rsp`.
pub fn window(rsp: u64) -> (u64, u64) {
    let page = rsp & !(PAGE - 1);
    (page.saturating_sub(BELOW), page.saturating_add(ABOVE))
}

impl Link {
    /// The child's link over the pipe's write end `fd`, for the window `(lo, hi)`.
    pub fn new(fd: OwnedFd, (lo, hi): (u64, u64)) -> Link {
        Link { fd, lo, hi }
    }
}

/// The child (at its exec or end): send the pages of the window it wrote, then the end.
pub fn send_back(process: &Process, mem: &GuestMem) {
    let Some(link) = locked(&process.family.vfork).take() else {
        return;
    };
    let mut out = std::fs::File::from(link.fd);
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
    let base = mem.host_base().unwrap_or(0);
    let space = process.space();
    let mut va = link.lo;
    while va < link.hi && base != 0 {
        let page = va;
        va += PAGE;
        let Ok(chunks) = space.chunks(page, PAGE, Access::Read) else {
            continue;
        };
        let [(gpa, PAGE)] = chunks[..] else {
            continue;
        };
        let host = base + gpa.0;
        let mut entry = [0u8; 8];
        let mine = pagemap
            .as_ref()
            .and_then(|f| f.read_exact_at(&mut entry, host / PAGE * 8).ok())
            .map(|()| u64::from_le_bytes(entry))
            .is_some_and(|e| e & PM_PRESENT != 0 && e & PM_EXCLUSIVE != 0);
        if !mine {
            continue;
        }
        let mut bytes = [0u8; PAGE as usize];
        if mem.read_bytes(gpa, &mut bytes).is_err() {
            continue;
        }
        if out.write_all(&page.to_le_bytes()).is_err() || out.write_all(&bytes).is_err() {
            return;
        }
    }
    let _ = out.write_all(&END.to_le_bytes());
}

/// The parent, blocked in vfork: take the child's pages until its end record, the pipe's end
/// (the child is gone) or, with nothing left to read, the child's end.
pub fn receive(cx: &Ctx<'_, '_>, read: OwnedFd, pid: u32) {
    let Some(slot) = cx.process.family.slot(pid) else {
        return;
    };
    let mut input = std::fs::File::from(read);
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    while !cx.interrupted() {
        let mut fds = [rustix::event::PollFd::new(
            &input,
            rustix::event::PollFlags::IN,
        )];
        let readable = matches!(rustix::event::poll(&mut fds, Some(&timeout)), Ok(n) if n > 0);
        if readable {
            if !take_record(cx, &mut input) {
                return;
            }
        } else if slot.state.load(Ordering::Acquire) != super::table::state::RUNNING {
            return;
        }
    }
}

/// One record into the parent's memory; false at the end (record, EOF or error).
fn take_record(cx: &Ctx<'_, '_>, input: &mut std::fs::File) -> bool {
    let mut head = [0u8; 8];
    if input.read_exact(&mut head).is_err() {
        return false;
    }
    let va = u64::from_le_bytes(head);
    if va == END {
        return false;
    }
    let mut bytes = [0u8; PAGE as usize];
    if input.read_exact(&mut bytes).is_err() {
        return false;
    }
    let _ = cx.space().write(cx.mem, va, &bytes);
    true
}
