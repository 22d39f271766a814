//! Exit-less syscalls, the machine's half (the protocol is `umon_abi::exitless`): the stub's
//! layout read from the core, the window's page-table entries, each vCPU's MSR_LSTAR, the
//! channel words as host atomics, and [`Exitless::settle`]: what the run loop does with an
//! exit taken inside the stub, so that everything above it sees the application either
//! before its `syscall` instruction or after the call returned, never in between.
//!
//! Who serves a request is the layer above's business (`linux::exitless`); this module only
//! makes sure each one is served once: the server claims with [`Exitless::claim`], the vCPU's
//! own thread with the compare-and-swap in `settle`, and a host-side `busy` flag per channel
//! (set before the server's claim, cleared after its reply) tells the vCPU's thread whether a
//! `CLAIMED` in guest memory is the server's or a forgery.
use crate::machine::memory::GuestMem;
use crate::machine::stop::KillHandle;
use crate::machine::vcpu::cpu::Cpu;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use umon_abi::exitless::{
    channel_phys, stub_page, CH_AWAKE, CH_BITMAP, CH_NR, CH_RET, CH_SPIN, CH_STATE, CLAIMED, DONE,
    DONE_EXIT, EXITLESS_VCPUS, FALLBACK, IDLE, REQ,
};
use umon_abi::Gpa;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Where the core's exit-less stub is (its link address, VA = PA) and its sites, as offsets
/// in its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubLayout {
    /// The page's address in the core image.
    pub page: u64,
    /// MSR_LSTAR's offset.
    pub entry: u64,
    /// Just past the publish: from here on the request is in the channel.
    pub published: u64,
    /// The `sysretq` of a served call (hardware KVM).
    pub sysret: u64,
    /// The `out` of a request not served here (registers restored as at entry).
    pub fallback: u64,
    /// The `out` of a call never published (registers untouched).
    pub plain: u64,
    /// End of the stub's code.
    pub end: u64,
}

/// Bytes of `out imm8, al`: a `sysretq` follows each `out`.
const OUT_BYTES: u64 = 2;

impl StubLayout {
    /// The layout from the core's symbols, if it has the stub and its sites are in order.
    pub fn from_symbols(sym: impl Fn(&str) -> Option<u64>) -> Option<StubLayout> {
        let page = sym("umon_exitless_page")?;
        let at = |name: &str| sym(name)?.checked_sub(page);
        let l = StubLayout {
            page,
            entry: at("umon_exitless_entry")?,
            published: at("umon_exitless_published")?,
            sysret: at("umon_exitless_sysret")?,
            fallback: at("umon_exitless_fallback")?,
            plain: at("umon_exitless_plain")?,
            end: at("umon_exitless_end")?,
        };
        let ordered = l.entry < l.published
            && l.published < l.sysret
            && l.sysret < l.fallback
            && l.fallback + OUT_BYTES < l.plain
            && l.plain + OUT_BYTES < l.end
            && l.end <= 0x1000;
        ordered.then_some(l)
    }

    /// Offsets of the `sysretq`s: reached only with the call's result in rax.
    fn returns(&self, off: u64) -> bool {
        off == self.sysret || off == self.fallback + OUT_BYTES || off == self.plain + OUT_BYTES
    }
}

/// The request as the stub stored it, from `CH_NR` on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Request {
    /// rax: the syscall number.
    pub nr: u64,
    /// rdi, rsi, rdx, r10, r8, r9.
    pub args: [u64; 6],
    /// The return address.
    pub rcx: u64,
    /// The application's rflags.
    pub r11: u64,
    /// Its rsp.
    pub rsp: u64,
}

/// What [`Exitless::settle`] made of an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Not in this vCPU's stub: the exit is handled as usual.
    Outside,
    /// The stub's `out` with the call's entry registers, and the call is this thread's to
    /// run: serve it as any syscall exit.
    Dispatch,
    /// The registers were moved to the application's side of the call: before its
    /// `syscall` (to run again) or, with `served`, after the server's answer.
    Moved {
        /// The server ran it (it may want the exit path's follow-up: a page-table batch).
        served: bool,
    },
}

/// The machine's exit-less state.
pub struct Exitless {
    /// The stub's layout when this VM uses it (`umon run --exitless`), set before the page
    /// tables and vCPU 0 are made.
    layout: OnceLock<StubLayout>,
    /// Per channel: the server claimed it and has not answered yet.
    busy: [AtomicBool; EXITLESS_VCPUS as usize],
    /// See [`Exitless::timeouts`].
    timeouts: AtomicU64,
    /// The VM's stop: a vCPU waiting for the server's answer gives up once it is requested.
    stop: KillHandle,
}

impl Exitless {
    /// No stub in use yet; `stop` is the VM's.
    pub fn new(stop: KillHandle) -> Exitless {
        Exitless {
            layout: OnceLock::new(),
            busy: [const { AtomicBool::new(false) }; EXITLESS_VCPUS as usize],
            timeouts: AtomicU64::new(0),
            stop,
        }
    }

    /// Use the core's stub in this VM (before `Machine::page_tables`).
    pub fn enable(&self, layout: StubLayout) {
        let _ = self.layout.set(layout);
    }

    /// The stub's layout, when this VM uses it.
    pub fn layout(&self) -> Option<StubLayout> {
        self.layout.get().copied()
    }

    /// A forked child's copy: the same layout, every channel idle and unwatched (the
    /// parent's server did not come along).
    pub fn forked(&self, mem: &GuestMem, stop: KillHandle) -> Exitless {
        let child = Exitless::new(stop);
        if let Some(l) = self.layout() {
            child.enable(l);
            for ch in 0..EXITLESS_VCPUS {
                Self::word(mem, ch, CH_STATE, |w| w.store(IDLE, Ordering::SeqCst));
                Self::set_awake(mem, ch, false);
            }
        }
        child
    }

    /// vCPU `index`'s channel, if it has one.
    pub fn channel(&self, index: u32) -> Option<u32> {
        (self.layout.get().is_some() && index < EXITLESS_VCPUS).then_some(index)
    }

    /// MSR_LSTAR for vCPU `index`: its own copy of the exit-less stub, or `plain`.
    pub fn syscall_entry(layout: Option<StubLayout>, index: u32, plain: u64) -> u64 {
        match layout {
            Some(l) if index < EXITLESS_VCPUS => stub_page(index) + l.entry,
            _ => plain,
        }
    }

    fn word<R>(
        mem: &GuestMem,
        ch: u32,
        off: u64,
        f: impl FnOnce(&std::sync::atomic::AtomicU32) -> R,
    ) -> Option<R> {
        mem.with_atomic_u32(Gpa(channel_phys(ch) + off), f).ok()
    }

    /// The channel's state word.
    pub fn state(mem: &GuestMem, ch: u32) -> u32 {
        Self::word(mem, ch, CH_STATE, |w| w.load(Ordering::Acquire)).unwrap_or(IDLE)
    }

    /// Tell the stub whether a server polls (`CH_AWAKE`).
    pub fn set_awake(mem: &GuestMem, ch: u32, on: bool) {
        Self::word(mem, ch, CH_AWAKE, |w| {
            w.store(u32::from(on), Ordering::Release)
        });
    }

    /// The calls the stub may publish (bit n: syscall n) and how long it waits for the
    /// server (`pause` rounds).
    pub fn set_params(mem: &GuestMem, ch: u32, bits: &[u8; 64], spin: u32) {
        let _ = mem.write(Gpa(channel_phys(ch) + CH_BITMAP), bits);
        let _ = mem.write(Gpa(channel_phys(ch) + CH_SPIN), &spin);
    }

    /// How many requests the stubs gave up on because no server took them in time (the
    /// server was not running: the host has no CPU to spare for it).
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// The server takes the request on channel `ch`: the request, copied once, if it was
    /// published and nobody took it first. Until [`Exitless::reply`] the vCPU's thread waits
    /// for it at any exit in the stub.
    pub fn claim(&self, mem: &GuestMem, ch: u32) -> Option<Request> {
        let busy = self.busy.get(ch as usize)?;
        busy.store(true, Ordering::SeqCst);
        let won = Self::word(mem, ch, CH_STATE, |w| {
            w.compare_exchange(REQ, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if won != Some(true) {
            busy.store(false, Ordering::SeqCst);
            return None;
        }
        match mem.read::<Request>(Gpa(channel_phys(ch) + CH_NR)) {
            Ok(r) => Some(r),
            Err(_) => {
                self.reply(mem, ch, None);
                None
            }
        }
    }

    /// The server's answer to the request it claimed: `Some((result, exit))` (`exit`: the
    /// application must pass through the exit path first), or None: given back, the exit
    /// path runs it.
    pub fn reply(&self, mem: &GuestMem, ch: u32, answer: Option<(i64, bool)>) {
        let state = match answer {
            Some((ret, exit)) => {
                let _ = mem.write(Gpa(channel_phys(ch) + CH_RET), &(ret as u64));
                if exit {
                    DONE_EXIT
                } else {
                    DONE
                }
            }
            None => FALLBACK,
        };
        Self::word(mem, ch, CH_STATE, |w| w.store(state, Ordering::SeqCst));
        if let Some(b) = self.busy.get(ch as usize) {
            b.store(false, Ordering::SeqCst);
        }
    }

    /// Bring an exit taken in vCPU `index`'s stub to the application's side of the call (see
    /// the module doc). `at_out`: the exit is the stub's syscall `out`.
    pub fn settle(&self, index: u32, cpu: &mut Cpu<'_>, mem: &GuestMem, at_out: bool) -> Settled {
        let (Some(l), Some(ch)) = (self.layout.get(), self.channel(index)) else {
            return Settled::Outside;
        };
        let page = stub_page(index);
        let rip = cpu.regs.rip;
        if !(page..page + l.end).contains(&rip) {
            return Settled::Outside;
        }
        let off = rip - page;
        // KVM reports a port exit with rip past the `out` (on the `sysretq`).
        let dispatchable = match at_out {
            true if off == l.plain + OUT_BYTES => return Settled::Dispatch,
            true if off == l.fallback + OUT_BYTES => true,
            true => return Settled::Outside,
            false => false,
        };
        if !at_out && l.returns(off) {
            // On hardware KVM, a call answered on the exit path and not yet returned: the
            // result is in rax and rcx/r11 are the application's, so do sysretq's work.
            let (rax, rcx, r11, rsp) = syscall_regs(cpu);
            return_to(cpu, rax, rcx, r11, rsp);
            return Settled::Moved { served: false };
        }
        if off < l.published || off == l.plain {
            // Nothing published: as if the signal or stop came just before the `syscall`.
            let (rax, rcx, r11, rsp) = syscall_regs(cpu);
            rewind(cpu, rax, rcx, r11, rsp);
            return Settled::Moved { served: false };
        }
        let req = mem
            .read::<Request>(Gpa(channel_phys(ch) + CH_NR))
            .unwrap_or_default();
        let mut state = Self::word(mem, ch, CH_STATE, |w| {
            match w.compare_exchange(REQ, IDLE, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    if dispatchable {
                        self.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    REQ
                }
                Err(s) => s,
            }
        })
        .unwrap_or(IDLE);
        if state == CLAIMED {
            // The server's (busy) or a forgery (not): wait out the server's call, which
            // never blocks; a stop (which kicks the server too) ends the wait, and the run.
            let mut spins = 0u32;
            while self.busy[ch as usize].load(Ordering::SeqCst) {
                if self.stop.is_requested() {
                    return Settled::Moved { served: false };
                }
                spins += 1;
                if spins < 1000 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            state = Self::state(mem, ch);
        }
        match state {
            DONE | DONE_EXIT => {
                let ret = mem.read::<u64>(Gpa(channel_phys(ch) + CH_RET)).unwrap_or(0);
                return_to(cpu, ret, req.rcx, req.r11, req.rsp);
                Settled::Moved { served: true }
            }
            REQ | FALLBACK if dispatchable => Settled::Dispatch,
            // Claimed here (or the guest rewrote the word): the call runs again.
            _ => {
                rewind(cpu, req.nr, req.rcx, req.r11, req.rsp);
                Settled::Moved { served: false }
            }
        }
    }
}

/// rflags as the application may have them (IOPL 0, the reserved bit set), as
/// `Cpu::complete_syscall` does.
fn user_flags(r11: u64) -> u64 {
    (r11 & !0x3000) | 0x2
}

/// The application at CPL3 with `rax`, `rcx`, `r11` and `rsp` as given, its flags from
/// r11 and rip `rip`; its other registers as they are.
fn resume(cpu: &mut Cpu<'_>, (rax, rcx, r11, rsp): (u64, u64, u64, u64), rip: u64) {
    let mut regs = *cpu.regs;
    (regs.rax, regs.rcx, regs.r11, regs.rsp) = (rax, rcx, r11, rsp);
    regs.rip = rip;
    regs.rflags = user_flags(r11);
    cpu.resume_user(regs);
}

/// The application just after its call returned `ret` (sysretq's work).
fn return_to(cpu: &mut Cpu<'_>, ret: u64, rcx: u64, r11: u64, rsp: u64) {
    resume(cpu, (ret, rcx, r11, rsp), rcx);
}

/// The application at its `syscall` instruction (2 bytes before the return address), about
/// to make call `nr` again.
fn rewind(cpu: &mut Cpu<'_>, nr: u64, rcx: u64, r11: u64, rsp: u64) {
    resume(cpu, (nr, rcx, r11, rsp), rcx.wrapping_sub(2));
}

/// rax, rcx, r11 and rsp as the vCPU holds them.
fn syscall_regs(cpu: &Cpu<'_>) -> (u64, u64, u64, u64) {
    let r = &*cpu.regs;
    (r.rax, r.rcx, r.r11, r.rsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_core_has_the_stub_in_order() {
        let mem = GuestMem::new(64 << 20).unwrap();
        let core = crate::machine::core::load(&mem, None).unwrap();
        let l = core
            .exitless
            .expect("the built-in core has the exit-less stub");
        assert_eq!(l.page % 4096, 0);
        assert_eq!(l.entry, 0);
        assert!(l.returns(l.sysret) && !l.returns(l.entry));
    }

    #[test]
    fn lstar_is_the_vcpus_own_copy() {
        let l = StubLayout {
            page: 0x20_2000,
            entry: 0,
            published: 0x77,
            sysret: 0xc4,
            fallback: 0xd5,
            plain: 0xda,
            end: 0xdf,
        };
        assert_eq!(Exitless::syscall_entry(Some(l), 3, 7), stub_page(3));
        assert_eq!(Exitless::syscall_entry(Some(l), EXITLESS_VCPUS, 7), 7);
        assert_eq!(Exitless::syscall_entry(None, 0, 7), 7);
    }
}
