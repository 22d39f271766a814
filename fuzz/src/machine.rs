//! `syscall` and `hypercall`: a small guest (no KVM) shaped like a real `umon run` — a
//! read-only text region, a data region, a stack and a heap arena in one program namespace —
//! driven by a program decoded from the fuzz input: raw writes into guest RAM, then syscalls
//! (`ExitHandler::syscall` of `umon::linux::LinuxGuest`) or hypercalls (`umon::machine::hypercall::dispatch`) with decoded registers.
//!
//! The application has two volumes (see [`crate::volume`]): a writable one at `/data` (also the
//! working directory), recreated for every input, and a read-only one at `/ro`, both holding
//! symlinks that point outside them.
//!
//! Checked after every step, besides "no panic": a syscall that returns goes back with a value
//! or an errno in -4095..=-1 (the Linux ABI), and at the end no syscall wrote guest RAM it was not
//! given (the read-only text and the canary pages around every region are unchanged) and nothing
//! outside the writable volume changed on the host (the read-only volume and the directory next
//! to the volumes are as they were).
//!
//! Calls that would sleep are tamed so an input runs in microseconds: a valid timespec given to
//! nanosleep, clock_nanosleep, ppoll or a futex wait is rewritten in guest memory to less than
//! 1 ms (seconds 0, nanoseconds mod 1 ms; an absolute time becomes one long past), and a
//! positive poll timeout becomes 1 ms. The call still runs, with every check it makes. When the
//! timespec cannot be rewritten (read-only memory) the call is skipped. A poll without a
//! timeout gets 1 ms, a ppoll without one is skipped, and so is a signal to itself that would
//! stop it (SIGSTOP: stopped until umon is stopped, as on Linux); lock waits (F_SETLKW,
//! F_OFD_SETLKW, flock without LOCK_NB) become their non-blocking forms, since two open files of
//! one volume file can hold conflicting locks; an mprotect making the text writable is skipped
//! (the text check below relies on it staying read-only). Reading stdin cannot
//! block: the harness's stdin is an empty reader. getrandom lengths above 256 KiB are cut to
//! 256 KiB plus `len % 4096` (every 64 KiB is one more host call, nothing new). Writes to volume
//! files (write, pwrite64, sendfile, copy_file_range; writev/pwritev by their total) are cut to
//! 1 MiB the same way, so an input cannot fill the host's disk.
//!
//! Threads: the machine has no KVM VM behind it, so it has no vCPU to give a new thread, and
//! clone/clone3 with a thread's flags answer EAGAIN after every argument check has run (the
//! checks are what is fuzzed); `exit` ends the one thread and with it the run, as the last
//! thread's exit ends a process. A futex wait with no timeout on the only thread ends the run
//! (the monitor's deadlock error), and PI locks can only be held by this thread.
use crate::input::Input;
use crate::volume::Fixture;
use kvm_bindings::{kvm_regs, kvm_sregs};
use std::sync::{Arc, Mutex};
use umon::linux::abi::Timespec;
use umon::linux::mm::space::{AddrSpace, Arena, Region};
use umon::linux::stdio::Stdio;
use umon::linux::trace::{TraceMode, Tracer};
use umon::linux::{LinuxThread, Thread};
use umon::machine::hypercall::{Cpu, Flow};
use umon::machine::memory::GuestMem;
use umon::machine::paging::PAGE_4K;
use umon::machine::vcpu::cpu::{ExtendedState, Xstate, XSAVE_IMAGE};
use umon::machine::vcpu::ExitHandler;
use umon::ExitStatus;
use umon_abi::hypercall::SYS_UMON_ECHO;
use umon_abi::layout::{
    namespace_base, BOOT_SCRATCH, FIRST_APP_NAMESPACE, NAMESPACE_BYTES, PHYS_MEM,
};
use umon_abi::Gpa;

/// Guest RAM of the harness VM.
pub const RAM_BYTES: u64 = 24 << 20;
/// The namespace the application lives in, as in `umon run`.
pub const NS: u64 = namespace_base(FIRST_APP_NAMESPACE);

/// One application region: virtual start, physical start, length, writable.
#[derive(Clone, Copy)]
pub struct Area {
    /// First virtual address.
    pub va: u64,
    /// Its guest-physical address.
    pub pa: u64,
    /// Bytes.
    pub len: u64,
    /// Writable by the application.
    pub write: bool,
}

/// Program text: read-only, executable.
pub const TEXT: Area = Area {
    va: NS,
    pa: 0x40_0000,
    len: 64 << 10,
    write: false,
};
/// Data and bss, right after the text.
pub const DATA: Area = Area {
    va: NS + (64 << 10),
    pa: 0x41_0000,
    len: 64 << 10,
    write: true,
};
/// SIGSTOP, F_SETLKW, F_OFD_SETLKW (each one less is its non-blocking form), LOCK_NB.
const SIGSTOP: u64 = umon::linux::signal::SIGSTOP;
/// SIGKILL and SIGSTOP, which no mask blocks.
const UNBLOCKABLE: u64 = (1 << (SIGSTOP - 1)) | (1 << (umon::linux::signal::SIGKILL - 1));
const F_SETLKW: u64 = 7;
const F_OFD_SETLKW: u64 = 38;
const LOCK_NB: u64 = 4;
/// PROT_WRITE.
const PROT_WRITE: u64 = 2;
/// rt_sigreturn.
const NR_RT_SIGRETURN: u64 = 15;

/// The top 1 MiB of the stack, at the top of the namespace.
pub const STACK: Area = Area {
    va: NS + NAMESPACE_BYTES - (1 << 20),
    pa: 0x50_0000,
    len: 1 << 20,
    write: true,
};
/// The heap arena (brk and anonymous mmap), 1 GiB into the namespace.
pub const ARENA: Area = Area {
    va: NS + (1 << 30),
    pa: 0x60_0000,
    len: 16 << 20,
    write: true,
};
/// The application regions, in the order region numbers in the input refer to them.
pub const AREAS: [Area; 4] = [TEXT, DATA, STACK, ARENA];
/// Physical pages right next to the regions that no syscall may write.
pub const CANARIES: [u64; 4] = [
    TEXT.pa - PAGE_4K,
    DATA.pa + DATA.len,
    STACK.pa - PAGE_4K,
    ARENA.pa + ARENA.len,
];
const CANARY_BYTE: u8 = 0xA5;

/// Values that tend to find edges: zero, all ones, the sign bit, the non-canonical hole, the
/// kernel half, the core's pages, page and size boundaries, region ends.
pub const EDGES: [u64; 24] = [
    0,
    1,
    u64::MAX,
    i64::MAX as u64,
    1 << 63,
    0x0000_8000_0000_0000,
    0x0000_7fff_ffff_f000,
    PHYS_MEM,
    0xffff_ffff_ffff_f000,
    PAGE_4K,
    PAGE_4K - 1,
    0x7fff_f000,
    u32::MAX as u64,
    i32::MAX as u64,
    0x20_0000,
    0x40_0000,
    RAM_BYTES,
    NS,
    NS - 1,
    TEXT.va + TEXT.len,
    DATA.va + DATA.len - 8,
    STACK.va - 8,
    ARENA.va + ARENA.len,
    ARENA.va - PAGE_4K,
];

/// Where in the text the harness writes [`PATHS`] (the input may overwrite them).
pub const PATHS_OFFSET: u64 = 0xf000;
/// Paths an argument can point to (tag 16): the volumes, symlinks out of them, `..` games,
/// the file system outside the volumes, names that exist and names that do not.
pub const PATHS: [&[u8]; 24] = [
    b"/data/file",
    b"/data/dir",
    b"/data/dir/inner",
    b"/data/new",
    b"/data/dir/new",
    b"/data/link-out",
    b"/data/abs-out",
    b"/data/dir/up/..",
    b"/data/../outside/secret",
    b"/data/dir/../../outside",
    b"/ro/file",
    b"/ro/dir/inner",
    b"/ro/link-out",
    b"/ro/new",
    b"/ro",
    b"/data",
    b"/",
    b".",
    b"..",
    b"file",
    b"dir/../file",
    b"",
    b"/proc/self/exe",
    b"/etc/passwd",
];

/// A fresh harness VM.
pub struct Machine {
    /// What the monitor keeps for the VM.
    pub state: LinuxThread,
    /// The core's self-check report, once sent.
    pub selftest: Option<umon_abi::hypercall::SelftestReport>,
    /// General registers.
    pub regs: kvm_regs,
    /// System registers.
    pub sregs: kvm_sregs,
    /// The text as it must stay (only the input's own writes change it).
    text: Vec<u8>,
    /// rax after the last call (arguments may reuse it, e.g. munmap of what mmap returned).
    /// The last syscall was left out by the taming (it would have waited for ever): nothing
    /// ran, so there is nothing to check after it.
    skipped: bool,
    last: u64,
    /// Whether SYS_UMON_ECHO answers (its result is not an errno).
    echo: bool,
    /// The start of what the application wrote to stdout (see [`Capture`]).
    pub stdout: Arc<Mutex<Vec<u8>>>,
    /// The start of stderr: the application's, umon's notes and the `--trace` lines.
    pub stderr: Arc<Mutex<Vec<u8>>>,
    /// How the run ended, when it did.
    pub ended: Option<Ended>,
    /// The vCPU's FPU state, kept across calls (signal frames save and restore it).
    fpu: FuzzFpu,
    /// The state the handler just entered interrupted, when it was entered with one frame.
    pub handler: Option<crate::signals::Interrupted>,
    /// Set by a return from that handler: rt_sigreturn must give this state back.
    pub expect_return: Option<crate::signals::Interrupted>,
    /// How many such returns were checked.
    pub returns_checked: u32,
}

/// How a harness run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The process exited or was killed.
    Status(ExitStatus),
    /// The monitor ended the VM with this error.
    Error(String),
}

/// Keeps the first [`Capture::LIMIT`] bytes written, so the seed tests can check them.
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Bytes kept.
    pub const LIMIT: usize = 64 << 10;
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = Self::LIMIT.saturating_sub(v.len());
        v.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Machine {
    /// A VM with the regions mapped; `flags` bit 0/1 turn on `--trace` / `--trace=summary`,
    /// bit 2 the echo syscall, bit 3 the PVM return path (CS at CPL3 in the exit).
    pub fn new(flags: u8) -> Machine {
        Fixture::get().reset();
        crate::longtail::ignore_kicks();
        let mem = GuestMem::new(RAM_BYTES).expect("map guest RAM");
        for pa in CANARIES {
            mem.write_bytes(Gpa(pa), &[CANARY_BYTE; PAGE_4K as usize])
                .expect("canary inside RAM");
        }
        let regions = AREAS
            .iter()
            .map(|a| Region {
                start: a.va,
                end: a.va + a.len,
                pa: a.pa,
                write: a.write,
                exec: !a.write,
            })
            .collect();
        let arena = Arena::new(ARENA.va, ARENA.va + ARENA.len, ARENA.pa);
        let echo = flags & 4 != 0;
        let trace = match flags & 3 {
            1 => Some(Tracer::new(TraceMode::Calls).into()),
            2 => Some(Tracer::new(TraceMode::Summary).into()),
            _ => None,
        };
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let process = umon::linux::Process {
            space: AddrSpace::new(regions, arena).into(),
            exe: b"/fuzz/app".to_vec().into(),
            fs: Fixture::get().file_system().into(),
            echo_enabled: echo,
            trace,
            exitless: Some(Arc::new(umon::linux::exitless::Server::without_thread())),
            ..umon::linux::Process::with_stdio(Stdio::capture(
                Box::new(Capture(stdout.clone())),
                Box::new(Capture(stderr.clone())),
            ))
        };
        let thread = Thread::first();
        // The thread table knows it, as `Vm::run` registers it: signals find it by tid.
        process.add_first_thread(&thread);
        let state = LinuxThread {
            machine: Arc::new(umon::machine::Machine::without_kvm(
                mem,
                umon::machine::stop::KillHandle::new(),
            )),
            process: Arc::new(process),
            thread,
        };
        // The exit-less channel of vCPU 0, as `umon run` has it (the built-in core's stub
        // layout, read from a scratch copy: this RAM's core area is not the core).
        if let Some(layout) = exitless_layout() {
            state.machine.exitless.enable(layout);
            if let Some(server) = &state.process.exitless {
                server.register(&state.machine, 0, &state.thread.sig);
            }
        }
        let mut sregs = kvm_sregs::default();
        if flags & 8 != 0 {
            sregs.cs.dpl = 3;
        }
        let mut m = Machine {
            state,
            selftest: None,
            regs: kvm_regs::default(),
            sregs,
            text: vec![0; TEXT.len as usize],
            last: 0,
            echo,
            stdout,
            stderr,
            ended: None,
            fpu: FuzzFpu::default(),
            handler: None,
            expect_return: None,
            skipped: false,
            returns_checked: 0,
        };
        // A stack to build signal frames on, as the initial stack of a real run.
        m.regs.rsp = STACK.va + STACK.len - 4096;
        // This host thread is the application's only thread from now on (signals it sends
        // itself need no kick).
        let _ = m.state.before_run(None);
        let mut at = PATHS_OFFSET;
        for p in PATHS {
            m.poke(0, at, p);
            m.poke(0, at + p.len() as u64, &[0]);
            at += p.len() as u64 + 1;
        }
        m
    }

    /// Write input bytes into region `area` at `offset` (wrapped into the region), as the
    /// application would have (the text too: that is the program's own code and rodata).
    pub fn poke(&mut self, area: usize, offset: u64, bytes: &[u8]) {
        let a = AREAS[area % AREAS.len()];
        let at = offset % a.len;
        let bytes = &bytes[..bytes.len().min((a.len - at) as usize)];
        self.state
            .machine
            .mem
            .write_bytes(Gpa(a.pa + at), bytes)
            .expect("region inside RAM");
        // The frame may have changed: returning from it proves nothing.
        self.handler = None;
        if a.pa == TEXT.pa {
            self.text[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// A syscall argument from the input: a tag byte (mod 18), then what the tag needs.
    pub fn arg(&self, input: &mut Input<'_>) -> u64 {
        match input.u8() % 18 {
            16 => {
                let i = usize::from(input.u8()) % PATHS.len();
                let before: usize = PATHS[..i].iter().map(|p| p.len() + 1).sum();
                TEXT.va + PATHS_OFFSET + before as u64
            }
            17 => u64::from(input.u8() % 16) + 3,
            0 => input.u64(),
            1 => TEXT.va + u64::from(input.u16()) % TEXT.len,
            2 => DATA.va + u64::from(input.u16()) % DATA.len,
            3 => STACK.va + STACK.len - u64::from(input.u16()) % STACK.len - 1,
            4 => ARENA.va + u64::from(input.u32()) % ARENA.len,
            5 => ARENA.va + ARENA.len - u64::from(input.u16()),
            6 => u64::from(input.u8()),
            7 => u64::from(input.u8()).wrapping_neg(),
            8 => EDGES[usize::from(input.u8()) % EDGES.len()],
            9 => DATA.va + DATA.len - u64::from(input.u8()),
            10 => 1u64 << (input.u8() % 64),
            11 => (1u64 << (input.u8() % 64)) - 1,
            12 => u64::from(input.u8() % 8),
            13 => self.last,
            14 => self.last.wrapping_add(u64::from(input.u16())),
            _ => u64::from(input.u32()),
        }
    }

    /// Run syscall `nr` with `args` from the application; false when the process is over.
    pub fn syscall(&mut self, nr: u64, args: [u64; 6]) -> bool {
        let r = &mut self.regs;
        (r.rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (nr, args[0], args[1], args[2], args[3], args[4], args[5]);
        r.rcx = TEXT.va + 0x100;
        r.r11 = 0x202;
        let expect = self.expect_return.take();
        let (pre, mask, fpu) = (self.regs, self.state.thread.sigmask, self.fpu_image());
        if !self.trap(true, |cpu, mem, state, _| state.syscall(cpu, mem)) {
            return false;
        }
        if self.skipped {
            // Never made: the application did not return from anything (its registers are
            // the harness's, rflags included, until a call really runs).
            self.expect_return = expect;
            return true;
        }
        if let Some(h) = expect {
            self.check_return(&h);
        }
        self.deliver(nr & 0xffff_ffff, &pre, mask, fpu)
    }

    /// rax after the last call.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The last call's result as an fd when it looks like one, else fd 3.
    pub fn last_fd(&self) -> u64 {
        if self.last < 1024 {
            self.last
        } else {
            3
        }
    }

    /// The FPU image now.
    pub fn fpu_image(&self) -> Vec<u8> {
        self.fpu.image.borrow().to_vec()
    }

    /// The run loop's call before a guest entry, with the current registers.
    pub fn before_run(&mut self) -> Option<Flow> {
        let mut cpu = Cpu {
            regs: &mut self.regs,
            sregs: &mut self.sregs,
            dirty: 0,
            xstate: Some(&self.fpu),
            index: 0,
        };
        self.state.before_run(Some(&mut cpu))
    }

    /// Record how `flow` ended the run; false (over) unless it continues.
    pub fn ended_by(&mut self, flow: Flow) -> bool {
        match flow {
            Flow::Continue => true,
            Flow::EndProcess(status) => {
                let _ = status.code();
                self.ended = Some(Ended::Status(status));
                false
            }
            Flow::EndThread => {
                let code = self.state.thread.exit_code;
                self.ended = Some(Ended::Status(ExitStatus::Exited(code)));
                false
            }
        }
    }

    /// Hypercall `nr` with the current registers; false when the VM is over.
    pub fn hypercall(&mut self, nr: u16) -> bool {
        let is_syscall = nr == umon_abi::hypercall::Hypercall::Syscall as u16;
        self.trap(is_syscall, |cpu, mem, state, selftest| {
            umon::machine::hypercall::dispatch(nr, cpu, mem, state, selftest)
        })
    }

    /// Run one trap; `is_syscall` says the registers hold a syscall (tamed, result checked).
    fn trap(
        &mut self,
        is_syscall: bool,
        call: impl FnOnce(
            &mut Cpu<'_>,
            &GuestMem,
            &mut LinuxThread,
            &mut Option<umon_abi::hypercall::SelftestReport>,
        ) -> Result<Flow, umon::machine::hypercall::HypercallError>,
    ) -> bool {
        let nr = self.regs.rax & 0xffff_ffff;
        self.skipped = is_syscall && !self.tame();
        if self.skipped {
            return true;
        }
        let mut cpu = Cpu {
            regs: &mut self.regs,
            sregs: &mut self.sregs,
            dirty: 0,
            xstate: Some(&self.fpu),
            index: 0,
        };
        let machine = self.state.machine.clone();
        match call(&mut cpu, &machine.mem, &mut self.state, &mut self.selftest) {
            Ok(Flow::Continue) => {
                let ret = self.regs.rax;
                let echoed = self.echo && nr == SYS_UMON_ECHO;
                // rt_sigreturn gives back the interrupted rax, whatever it was.
                let resumed = nr == NR_RT_SIGRETURN;
                assert!(
                    !is_syscall || echoed || resumed || (ret as i64) >= -4095,
                    "syscall {nr} returned {ret:#x}, neither a value nor an errno"
                );
                self.last = ret;
                true
            }
            Ok(Flow::EndProcess(status)) => {
                let _ = status.code();
                self.ended = Some(Ended::Status(status));
                false
            }
            Ok(Flow::EndThread) => {
                let code = self.state.thread.exit_code;
                self.ended = Some(Ended::Status(ExitStatus::Exited(code)));
                false
            }
            Err(e) => {
                self.ended = Some(Ended::Error(e.to_string()));
                false
            }
        }
    }

    /// Keep the syscall in the registers from sleeping (see the module docs); false to skip it.
    fn tame(&mut self) -> bool {
        let g = self.regs;
        let args = [g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9];
        if !crate::pipes::may_run(self, u64::from(g.rax as u32), args)
            || !crate::events::may_run(self, u64::from(g.rax as u32), args)
        {
            return false;
        }
        if !crate::net::may_run(self, u64::from(g.rax as u32), args)
            || !crate::shared::may_run(self, u64::from(g.rax as u32), args)
        {
            return false;
        }
        let r = &mut self.regs;
        // Like Linux, umon takes the number from eax: rax's high bits do not matter.
        let (nr, a) = (u64::from(r.rax as u32), [r.rdi, r.rsi, r.rdx, r.r10]);
        if known_bug(nr, a) {
            return false;
        }
        match nr {
            // nanosleep(req, rem)
            35 => self.short_timespec(a[0]),
            // clock_nanosleep(clock, flags, req, rem)
            230 => self.short_timespec(a[2]),
            // ppoll(fds, nfds, timeout, sigmask, size): without a timeout it may never end
            271 if a[2] != 0 => self.short_timespec(a[2]),
            271 => false,
            // select(nfds, r, w, e, timeval) and pselect6(…, timespec, sigmask): the same (a
            // timeval has a timespec's layout; the shortened one is valid as either)
            23 | 270 if g.r8 != 0 => self.short_timespec(g.r8),
            23 | 270 => false,
            // pause: only when a signal it lets through is pending (else it waits for ever)
            34 => self.pending() & !self.state.thread.sigmask != 0,
            // rt_sigsuspend(mask, 8): the same with its mask
            130 if a[1] == 8 => match self.read_u64(a[0]) {
                Some(mask) => self.pending() & !mask & !UNBLOCKABLE != 0,
                None => true, // EFAULT, at once
            },
            // rt_sigtimedwait(set, info, timeout, 8): a short timeout, or one of `set` pending
            128 if a[3] == 8 && a[2] != 0 => self.short_timespec(a[2]),
            128 if a[3] == 8 => match self.read_u64(a[0]) {
                Some(set) => {
                    let pending = self.pending();
                    pending & set != 0 || pending & !self.state.thread.sigmask != 0
                }
                None => true,
            },
            // read/readv/preadv of a blocking signalfd: only with a signal of its mask pending;
            // of a blocking inotify instance: only with an event queued
            0 | 19 | 295 => !self.blocking_signalfd(a[0]) && !crate::longtail::blocks(self, a[0]),
            // kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig) with SIGSTOP
            62 | 200 if a[1] == SIGSTOP => false,
            234 if a[2] == SIGSTOP => false,
            // mprotect(addr, len, prot) making the text writable: allowed (as on Linux), but the
            // text check after every step assumes only the input's pokes change it.
            10 if a[2] & PROT_WRITE != 0
                && a[0] < TEXT.va + TEXT.len
                && a[0].saturating_add(a[1]) > TEXT.va =>
            {
                false
            }
            // fcntl(fd, F_SETLKW / F_OFD_SETLKW, lock)
            72 if a[1] == F_SETLKW || a[1] == F_OFD_SETLKW => {
                r.rsi = a[1] - 1;
                true
            }
            // flock(fd, op)
            73 => {
                r.rsi |= LOCK_NB;
                true
            }
            // futex(uaddr, op, val, timeout): FUTEX_WAIT, FUTEX_WAIT_BITSET
            202 if matches!(a[1] & 0x7f, 0 | 9) && a[3] != 0 => self.short_timespec(a[3]),
            // getrandom(buf, len, flags): every 64 KiB chunk costs a host getrandom; more than
            // a few chunks only repeat the loop.
            318 if a[1] > MAX_RANDOM => {
                r.rsi = MAX_RANDOM + a[1] % PAGE_4K;
                true
            }
            // write, pwrite64 to a volume file (fd >= 3)
            1 | 18 if a[0] >= 3 && a[2] > MAX_FILE_WRITE => {
                r.rdx = MAX_FILE_WRITE + a[2] % PAGE_4K;
                true
            }
            // sendfile(out, in, offset, count)
            40 if a[3] > MAX_FILE_WRITE => {
                r.r10 = MAX_FILE_WRITE + a[3] % PAGE_4K;
                true
            }
            // copy_file_range(in, off_in, out, off_out, len, flags)
            326 if r.r8 > MAX_FILE_WRITE => {
                r.r8 = MAX_FILE_WRITE + r.r8 % PAGE_4K;
                true
            }
            // writev, pwritev to a volume file: skipped when the iovecs add up to more
            20 | 296 if a[0] >= 3 => self.iovecs_total(a[1], a[2]) <= MAX_FILE_WRITE,
            // poll(fds, nfds, timeout_ms): the low 32 bits are the timeout
            7 => {
                if (a[2] as i32) > 1 || (a[2] as i32) < 0 {
                    r.rdx = (a[2] & !0xffff_ffff) | 1;
                }
                true
            }
            _ => true,
        }
    }

    /// The signals pending for the thread (its own and the process's).
    fn pending(&self) -> u64 {
        umon::linux::signal::deliver::pending_set(&self.state.process, &self.state.thread.sig)
    }

    fn read_u64(&self, va: u64) -> Option<u64> {
        let space = self.state.process.space();
        space.read_val::<u64>(&self.state.machine.mem, va).ok()
    }

    /// Whether `fd` is a signalfd whose read would wait: blocking, none of its signals pending.
    fn blocking_signalfd(&self, fd: u64) -> bool {
        let Ok(f) = self.state.process.fds().get(fd) else {
            return false;
        };
        let Some(sfd) = f.file.as_signalfd() else {
            return false;
        };
        let nonblock = f.file.status_flags().unwrap_or(0) & 0o4000 != 0;
        !nonblock && self.pending() & sfd.mask() == 0
    }

    /// What the iovecs at `va` add up to (0 when unreadable or too many: the call fails anyway).
    fn iovecs_total(&self, va: u64, count: u64) -> u64 {
        let space = self.state.process.space();
        (0..count.min(1024))
            .map(|i| {
                space
                    .read_val::<[u64; 2]>(&self.state.machine.mem, va.wrapping_add(i * 16))
                    .map(|iov| iov[1])
                    .unwrap_or(0)
            })
            .fold(0u64, u64::saturating_add)
    }

    fn short_timespec(&mut self, va: u64) -> bool {
        let space = self.state.process.space();
        let Ok(t) = space.read_val::<Timespec>(&self.state.machine.mem, va) else {
            return true; // EFAULT, at once
        };
        if t.sec < 0 || !(0..1_000_000_000).contains(&t.nsec) {
            return true; // EINVAL, at once
        }
        let short = Timespec {
            sec: 0,
            nsec: t.nsec % 1_000_000,
        };
        space.write_val(&self.state.machine.mem, va, &short).is_ok()
    }

    /// Panic if a syscall wrote memory outside what it was given.
    pub fn check(&self) {
        // Whole-slice comparisons (memcmp): a byte loop here would be traced by the coverage
        // instrumentation and cost more than the syscalls.
        let mut page = [0u8; PAGE_4K as usize];
        for pa in CANARIES {
            self.state
                .machine
                .mem
                .read_bytes(Gpa(pa), &mut page)
                .expect("in RAM");
            assert!(
                page == [CANARY_BYTE; PAGE_4K as usize],
                "guest page {pa:#x} outside every region was written"
            );
        }
        let mut text = vec![0u8; TEXT.len as usize];
        self.state
            .machine
            .mem
            .read_bytes(Gpa(TEXT.pa), &mut text)
            .expect("in RAM");
        if text != self.text {
            let i = text.iter().zip(&self.text).position(|(a, b)| a != b);
            panic!(
                "read-only text was written at {:#x}",
                TEXT.va + i.unwrap_or(0) as u64
            );
        }
    }

    /// End of the run: the summary table (exercised, not shown), and the checks.
    pub fn finish(&self) {
        if let Some(t) = &self.state.process.trace {
            let _ = umon::linux::process::locked(t).summary();
        }
        self.check();
        Fixture::get().check_outside();
    }
}

/// Most bytes one call may write to a volume file (longer writes are cut to this plus a bit).
const MAX_FILE_WRITE: u64 = 1 << 20;

/// Longest getrandom the harness lets through (longer requests are cut to this plus a bit).
const MAX_RANDOM: u64 = 256 << 10;

/// Whether the inputs of umon bugs already reported are skipped, so a long run finds new ones
/// (default); `UMON_FUZZ_KNOWN_BUGS=1` runs them, to check a fix.
fn skip_known_bugs() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("UMON_FUZZ_KNOWN_BUGS").is_none_or(|v| v != "1"))
}

/// A syscall that hits a reported, still open umon bug (see fuzz/README.md, "Findings"): while
/// one is open, its inputs are matched here so a long run finds new bugs rather than the same
/// one again.
fn known_bug(nr: u64, a: [u64; 4]) -> bool {
    skip_known_bugs() && OPEN_BUGS.iter().any(|bug| bug(nr, a))
}

/// One predicate per open bug, on the syscall number and its first four arguments, e.g.
/// `|nr, a| nr == 25 && a[1] > u64::MAX - 4095` (mremap with a huge old_len, fixed in f07557f).
/// None is open: mremap with old_len 0 below the arena, the last one, was fixed in 0d88a98.
const OPEN_BUGS: &[fn(u64, [u64; 4]) -> bool] = &[];

/// Most calls one input makes.
pub const MAX_CALLS: usize = 64;
/// Syscall-number selectors at or above this pick a special number instead of `% 512`.
const SPECIAL_NR: u16 = 0xff00;
/// Numbers beyond Linux's table: umon's echo call, huge values, a Linux number with high bits.
const SPECIAL_NRS: [u64; 6] = [
    SYS_UMON_ECHO,
    u64::MAX,
    1 << 32,
    (1 << 32) | 1,
    0x4000_0000,
    512,
];

/// The syscall number an input picks.
pub fn syscall_nr(input: &mut Input<'_>) -> u64 {
    let pick = input.u16();
    if pick >= SPECIAL_NR {
        SPECIAL_NRS[usize::from(pick - SPECIAL_NR) % SPECIAL_NRS.len()]
    } else {
        u64::from(pick % 512)
    }
}

/// A memory write from the input: area selector already read in `op`; offset, length, bytes.
pub fn poke(m: &mut Machine, op: u8, input: &mut Input<'_>) {
    let offset = u64::from(input.u32());
    let len = usize::from(input.u8());
    let bytes = input.bytes(len);
    m.poke(usize::from(op & 3), offset, bytes);
}

/// The `syscall` target. Input: a flags byte ([`Machine::new`]), then steps until the input
/// ends or [`MAX_CALLS`] calls ran: an op byte >= 0xc0 writes memory (area = op & 3, u32 offset,
/// u8 length, bytes); any other op is a syscall: u16 number selector, six tagged arguments
/// ([`Machine::arg`]).
pub fn syscall(data: &[u8]) {
    end_input(run_syscall(data));
}

/// After an input: the machine is dropped (its thread's state with it, with no run loop's
/// end to mark the thread gone), its timer threads end, and then no kicker of its VM may still
/// run. One that did would kick a thread nobody will ever see again, every millisecond, for
/// ever: the fuzzer's own thread, which each leaked kicker interrupts a thousand times a
/// second (64 of them stalled a fuzz run, left by timers that fired after an input's last
/// delivery).
pub fn end_input(m: Machine) {
    let stop = m.state.machine.stop.clone();
    drop(m);
    crate::longtail::wait_for_timer_threads();
    // A kicker looks every millisecond; two seconds leave room for a loaded host.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while stop.kicking() {
        assert!(
            std::time::Instant::now() < deadline,
            "a vCPU kicker outlived the input's machine"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// [`syscall`], returning the machine for inspection.
pub fn run_syscall(data: &[u8]) -> Machine {
    let mut input = Input::new(data);
    let mut m = Machine::new(input.u8());
    let mut calls = 0;
    while !input.is_empty() && calls < MAX_CALLS {
        let op = input.u8();
        if op >= 0xc0 {
            poke(&mut m, op, &mut input);
            continue;
        }
        if (crate::events::EVENT_OPS..crate::events::EVENT_OPS + 8).contains(&op) {
            calls += 1;
            if !crate::events::op(&mut m, op & 7, &mut input) {
                break;
            }
            continue;
        }
        if (crate::shared::SHARED_OPS..crate::shared::SHARED_OPS + 8).contains(&op) {
            calls += 1;
            if !crate::shared::op(&mut m, op & 7, &mut input) {
                break;
            }
            continue;
        }
        if (crate::pipes::PIPE_OPS..crate::pipes::PIPE_OPS + 8).contains(&op) {
            calls += 1;
            if !crate::pipes::op(&mut m, op & 7, &mut input) {
                break;
            }
            continue;
        }
        if (crate::family::FAMILY_OPS..crate::family::FAMILY_OPS + 8).contains(&op) {
            calls += 1;
            if !crate::family::op(&mut m, op & 7, &mut input) {
                break;
            }
            continue;
        }
        if (crate::net::NET_OPS..crate::net::NET_OPS + 8).contains(&op) {
            calls += 1;
            if !crate::net::op(&mut m, op & 7, &mut input) {
                break;
            }
            continue;
        }
        if op >= crate::signals::SIGNAL_OPS {
            calls += 1;
            if !crate::signals::op(&mut m, op & 15, &mut input) {
                break;
            }
            continue;
        }
        // ---- long-tail ops (fuzz/src/longtail.rs): timers, memfd, inotify, xattr, chown,
        // sched/prctl/info, locks ----
        if (crate::longtail::LONGTAIL_OPS..crate::longtail::LONGTAIL_OPS + 16).contains(&op) {
            calls += 1;
            if !crate::longtail::op(&mut m, op & 15, &mut input) {
                break;
            }
            continue;
        }
        // ---- end of the long-tail ops ----
        let nr = syscall_nr(&mut input);
        let args = std::array::from_fn(|_| m.arg(&mut input));
        calls += 1;
        if !m.syscall(nr, args) {
            break;
        }
    }
    crate::shared::check(&m);
    m.finish();
    m
}

/// A guest-physical address from the input (hypercall argument structs live anywhere in RAM).
fn gpa(m: &Machine, input: &mut Input<'_>) -> u64 {
    match input.u8() & 7 {
        0 => input.u64(),
        1 => u64::from(input.u32()) % RAM_BYTES,
        2 | 3 => BOOT_SCRATCH + u64::from(input.u8()) * 8,
        4 => RAM_BYTES - u64::from(input.u8()),
        5 => AREAS[usize::from(input.u8()) % AREAS.len()].pa + u64::from(input.u16()),
        6 => EDGES[usize::from(input.u8()) % EDGES.len()],
        _ => m.arg(input),
    }
}

/// The `hypercall` target. Input: a flags byte, then steps: an op byte >= 0xc0 writes memory
/// at a guest-physical address ([`gpa`], u8 length, bytes); an op byte below 0xa0 is hypercall
/// `op % 10` (0, 8, 9 are unknown numbers), one in 0xa0..0xc0 takes a u16 number from the input;
/// then rdi as a guest-physical address and rax (a syscall number) plus the six syscall argument
/// registers, for `Syscall`.
pub fn hypercall(data: &[u8]) {
    end_input(run_hypercall(data));
}

/// [`hypercall`], returning the machine for inspection.
pub fn run_hypercall(data: &[u8]) -> Machine {
    let mut input = Input::new(data);
    let mut m = Machine::new(input.u8());
    let mut calls = 0;
    while !input.is_empty() && calls < MAX_CALLS {
        let op = input.u8();
        if op >= 0xc0 {
            let at = gpa(&m, &mut input);
            let len = usize::from(input.u8());
            let bytes = input.bytes(len);
            let _ = m.state.machine.mem.write_bytes(Gpa(at), bytes);
            continue;
        }
        if (0x90..0xa0).contains(&op) {
            calls += 1;
            if !exitless_step(&mut m, op, &mut input) {
                break;
            }
            continue;
        }
        let nr = if op >= 0xa0 {
            input.u16()
        } else {
            // Every hypercall number (PtApplied included), and 0, which is none.
            u16::from(op) % (umon_abi::hypercall::HYPERCALL_MAX + 1)
        };
        m.regs.rax = syscall_nr(&mut input);
        let args: [u64; 6] = std::array::from_fn(|_| m.arg(&mut input));
        let r = &mut m.regs;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        if nr != 6 {
            m.regs.rdi = gpa(&m, &mut input);
        }
        calls += 1;
        if !m.hypercall(nr) {
            break;
        }
    }
    // Hypercalls take guest-physical addresses and may legitimately write anywhere in RAM (a
    // ConsoleWrite writes its result back), so only the syscall target checks the canaries.
    if let Some(t) = &m.state.process.trace {
        let _ = umon::linux::process::locked(t).summary();
    }
    Fixture::get().check_outside();
    m
}

/// The built-in core's exit-less stub layout (once per process).
fn exitless_layout() -> Option<umon::machine::exitless::StubLayout> {
    static LAYOUT: std::sync::OnceLock<Option<umon::machine::exitless::StubLayout>> =
        std::sync::OnceLock::new();
    *LAYOUT.get_or_init(|| {
        let scratch = GuestMem::new(8 << 20).ok()?;
        umon::machine::core::load(&scratch, None).ok()?.exitless
    })
}

/// Ops 0x90..=0x9f of the `hypercall` target: the exit-less channel of vCPU 0, whose page
/// the input also writes with raw writes (channel 0 is at `CHANNEL_PHYS`).
/// - 0x90..=0x97: an exit taken at byte `off` of the vCPU's stub (CPL3 or 0, the stub's
///   `out` or any other exit), settled as the run loop does; a call it hands back is served
///   as the exit path would (tamed), one it completes gets the run loop's follow-up.
/// - 0x98..=0x9f: the server takes what the channel holds (its arguments tamed first).
///
/// Checked: no panic, and a request the server took is never left claimed.
fn exitless_step(m: &mut Machine, op: u8, input: &mut Input) -> bool {
    use umon::machine::exitless::{Exitless, Request, Settled};
    use umon_abi::exitless::{channel_phys, stub_page, CH_NR, CLAIMED};
    let machine = m.state.machine.clone();
    let mem = &machine.mem;
    if machine.exitless.layout().is_none() {
        return true;
    }
    if op < 0x98 {
        let off = u64::from(input.u8());
        let kind = input.u8();
        m.regs.rip = stub_page(0) + off;
        m.sregs.cs.dpl = if kind & 1 != 0 { 3 } else { 0 };
        let at_out = kind & 2 != 0;
        let mut cpu = Cpu {
            regs: &mut m.regs,
            sregs: &mut m.sregs,
            dirty: 0,
            xstate: Some(&m.fpu),
            index: 0,
        };
        let settled = machine.exitless.settle(0, &mut cpu, mem, at_out);
        let go_on = match settled {
            Settled::Dispatch => m.hypercall(umon_abi::hypercall::Hypercall::Syscall as u16),
            Settled::Moved { served: true } => {
                let mut cpu = Cpu {
                    regs: &mut m.regs,
                    sregs: &mut m.sregs,
                    dirty: 0,
                    xstate: Some(&m.fpu),
                    index: 0,
                };
                matches!(m.state.exitless_served(&mut cpu), Flow::Continue)
            }
            _ => true,
        };
        return go_on;
    }
    let Ok(req) = mem.read::<Request>(Gpa(channel_phys(0) + CH_NR)) else {
        return true;
    };
    // Tame it as a syscall of the exit path is tamed, and put the tamed arguments back.
    let saved = m.regs;
    let [rdi, rsi, rdx, r10, r8, r9] = req.args;
    (m.regs.rax, m.regs.rdi, m.regs.rsi, m.regs.rdx) = (req.nr, rdi, rsi, rdx);
    (m.regs.r10, m.regs.r8, m.regs.r9) = (r10, r8, r9);
    let tamed = m.tame();
    let r = m.regs;
    m.regs = saved;
    if !tamed {
        return true;
    }
    let back = Request {
        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
        ..req
    };
    let _ = mem.write(Gpa(channel_phys(0) + CH_NR), &back);
    let published = Exitless::state(mem, 0) == umon_abi::exitless::REQ;
    if let Some(server) = m.state.process.exitless.clone() {
        server.poll_once(&machine, &m.state.process);
    }
    if published {
        assert_ne!(
            Exitless::state(mem, 0),
            CLAIMED,
            "the server left the channel claimed"
        );
    }
    !m.state.process.exit.exiting()
}

/// The FPU state of the fuzz machine's one vCPU, without KVM: a legacy (fxsave) image, as on a
/// guest without XSAVE, so signal frames and rt_sigreturn run their FPU paths under the fuzzer.
/// A restore is refused when MXCSR has reserved bits set, as KVM_SET_FPU would fail.
struct FuzzFpu {
    image: std::cell::RefCell<Box<[u8; XSAVE_IMAGE]>>,
}

impl Default for FuzzFpu {
    fn default() -> Self {
        let mut image = Box::new([0u8; XSAVE_IMAGE]);
        // FCW 0x37f and MXCSR 0x1f80: the state after FNINIT/reset.
        image[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        image[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        FuzzFpu {
            image: std::cell::RefCell::new(image),
        }
    }
}

impl ExtendedState for FuzzFpu {
    fn get(&self) -> Option<Xstate> {
        Some(Xstate {
            image: self.image.borrow().clone(),
            xcr0: 0,
            size: 512,
        })
    }

    fn set(&self, image: &[u8; XSAVE_IMAGE]) -> bool {
        let mxcsr = u32::from_le_bytes([image[24], image[25], image[26], image[27]]);
        if mxcsr & !0xffff != 0 {
            return false;
        }
        self.image.borrow_mut().copy_from_slice(image);
        true
    }
}
