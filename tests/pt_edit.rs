//! Page-table edits after start, on the real KVM (issue 13, step 1): a CPL3 loop reads one
//! page and exits with what it read; at each exit the monitor retargets that page through the
//! `Mapper` and `Cpu::apply_pt` (the core's `umon_pt_apply` makes the stores) to one of two
//! frames with different contents, every 10th time to "not present", so the loop's next read
//! faults and the fault exit maps it again. Any stale read or missed fault fails the test.
//! The same loop with host writes instead of the routine reads stale data: that variant is
//! asserted stale, the reason the routine exists (PVM's shadow MMU does not see host writes
//! to a page table after start; on hardware KVM they would be seen, so it is skipped there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Instant;
use umon::exit::ExitStatus;
use umon::machine::hypercall::HypercallError;
use umon::machine::kvm::Platform;
use umon::machine::memory::GuestMem;
use umon::machine::paging::{Flush, Perm, PtBatch, Target, INVLPG_MAX, PAGE_4K, WRITABLE};
use umon::machine::stop::KillHandle;
use umon::machine::vcpu::cpu::{Cpu, Flow, PtArea};
use umon::machine::vcpu::setup::pt_apply_entry;
use umon::machine::vcpu::{AppFault, ExitHandler};
use umon::machine::{core, Machine};
use umon_abi::boot::{BootInfo, BootMode, MemRegion, BOOT_MAGIC, CMDLINE_BYTES, MAX_MEM_REGIONS};
use umon_abi::layout::{namespace_base, FIRST_APP_NAMESPACE};
use umon_abi::{Gpa, Gva, ABI_VERSION};

const RAM: u64 = 64 << 20;
/// The loop's code page and the page it reads, in the first application namespace.
const CODE_VA: u64 = namespace_base(FIRST_APP_NAMESPACE);
const PROBE_VA: u64 = CODE_VA + 0x10_0000;
/// 512 pages the bench edits, 2 MiB-aligned (one PT).
const BENCH_VA: u64 = CODE_VA + 0x4000_0000;
/// The batch area's size.
const BATCH_PAGES: u64 = 5;
/// The loop's syscall number (the handler here is the test's own).
const NR_PROBE: u32 = 0x0ff0_0077;
/// Offset of the load in the loop (where a fault on the probe page is).
const LOAD_AT: u64 = 0x19;
/// Contents of the two frames the probe page alternates between.
const WORDS: [u64; 2] = [0x1111_aaaa_2222_bbbb, 0x3333_cccc_4444_dddd];

/// The CPL3 loop, which also checks that the routine keeps every application register: rsi
/// counts iterations (the handler checks it at each syscall, and returns it as the result,
/// which the loop checks in rax); rdx, rcx, r8 and rdi (the routine's own registers) are set
/// from it before the load that faults and compared after; rdi (the syscall's argument) is
/// compared after the syscall. Any mismatch is `ud2`, an unexpected #UD.
/// ```text
///  0: movabs rax, PROBE_VA     19: mov r9, [rax]      30: mov rdi, r9
///  a: inc rsi                  1c: cmp rdx, rsi; jne  33: mov eax, NR_PROBE
///  d: mov rdx, rsi             21: cmp rcx, rsi; jne  38: syscall
/// 10: mov rcx, rsi             26: cmp r8, rsi; jne   3a: cmp rax, rsi; jne
/// 13: mov r8, rsi              2b: cmp rdi, rsi; jne  3f: cmp rdi, r9; jne
/// 16: mov rdi, rsi                                    44: jmp 0        46: ud2
/// ```
fn probe_loop() -> Vec<u8> {
    let mut c = vec![0x48, 0xb8];
    c.extend_from_slice(&PROBE_VA.to_le_bytes());
    c.extend_from_slice(&[
        0x48, 0xff, 0xc6, 0x48, 0x89, 0xf2, 0x48, 0x89, 0xf1, 0x49, 0x89, 0xf0, 0x48, 0x89, 0xf7,
    ]);
    assert_eq!(c.len() as u64, LOAD_AT);
    c.extend_from_slice(&[
        0x4c, 0x8b, 0x08, 0x48, 0x39, 0xf2, 0x75, 0x25, 0x48, 0x39, 0xf1, 0x75, 0x20, 0x49, 0x39,
        0xf0, 0x75, 0x1b, 0x48, 0x39, 0xf7, 0x75, 0x16, 0x4c, 0x89, 0xcf, 0xb8,
    ]);
    c.extend_from_slice(&NR_PROBE.to_le_bytes());
    c.extend_from_slice(&[
        0x0f, 0x05, 0x48, 0x39, 0xf0, 0x75, 0x07, 0x4c, 0x39, 0xcf, 0x75, 0x02, 0xeb, 0xba, 0x0f,
        0x0b,
    ]);
    assert_eq!(c.len(), 0x48);
    c
}

/// How the monitor makes its edits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Editor {
    /// Through the core's routine.
    Guest,
    /// With host writes into the live table (what PVM does not see).
    Host,
    /// No edit at all (the cost baseline).
    Nothing,
    /// `n` stores into the bench region's live PT (toggling WRITABLE), with their flush.
    Raw(usize),
    /// Reprotect the first `n` pages of the bench region through the `Mapper` (which
    /// replaces the PT above `REPLACE_THRESHOLD` stores).
    Protect(usize),
}

/// What the loop should see next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Word(usize),
    Fault,
}

#[derive(Default, Debug)]
struct Tally {
    reads: u64,
    stale: u64,
    faults: u64,
    spurious_faults: u64,
    missed_faults: u64,
    /// Time spent in the monitor's part of the edits (planning, host writes).
    host_time: std::time::Duration,
    /// Reads of each frame's word.
    saw: [u64; 2],
    /// Batches that asked the routine to report, and its reports (at CPL0).
    notified: u64,
    applied: u64,
    errors: Vec<String>,
}

struct Probe {
    machine: Arc<Machine>,
    editor: Editor,
    data: [Gpa; 2],
    area: PtArea,
    expect: Expect,
    step: u64,
    steps: u64,
    tally: Tally,
}

impl Probe {
    /// Retarget the probe page for step `self.step` and apply the batch.
    fn edit(&mut self, cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<(), String> {
        self.step += 1;
        match self.editor {
            Editor::Guest | Editor::Host => {}
            Editor::Nothing => return Ok(()),
            Editor::Raw(n) => {
                let root = self
                    .machine
                    .tables()
                    .map_err(|e| e.to_string())?
                    .mapper
                    .root();
                let pt = bench_pt(mem, root);
                let stores: Vec<(Gpa, u64)> = (0..n as u64)
                    .map(|i| {
                        let e: u64 = mem.read(Gpa(pt + 8 * i)).unwrap();
                        (Gpa(pt + 8 * i), e ^ WRITABLE)
                    })
                    .collect();
                let flush = if n > INVLPG_MAX {
                    Flush::All
                } else {
                    Flush::Pages((0..n as u64).map(|i| Gva(BENCH_VA + i * PAGE_4K)).collect())
                };
                // The host's copy follows the guest's stores (read back above next time).
                let batch = PtBatch {
                    fills: Vec::new(),
                    stores: stores.clone(),
                    flush,
                    retired: Vec::new(),
                };
                cpu.apply_pt(mem, &self.area, &batch, false)
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            Editor::Protect(n) => {
                let perm = Perm {
                    read: true,
                    write: self.step % 2 == 1,
                    exec: false,
                };
                let batch = self
                    .machine
                    .protect(Gva(BENCH_VA), n as u64 * PAGE_4K, perm)
                    .map_err(|e| e.to_string())?;
                return self
                    .machine
                    .apply_pt(cpu, batch, false)
                    .map(drop)
                    .map_err(|e| e.to_string());
            }
        }
        let va = Gva(PROBE_VA);
        let step = self.step;
        let data = self.data;
        // One batch per exit: the unmap and the map are planned together.
        let (planned, batch) = self
            .machine
            .plan(|mapper, frames| {
                if mapper.frame(va).is_some() {
                    mapper.unmap(va, PAGE_4K, frames)?;
                }
                if step % 10 == 0 {
                    return Ok(Expect::Fault);
                }
                let which = (step % 2) as usize;
                let ro = Perm {
                    read: true,
                    ..Perm::NONE
                };
                mapper.map(va, PAGE_4K, Target::Pages(&[data[which]]), ro, frames)?;
                Ok(Expect::Word(which))
            })
            .map_err(|e| e.to_string())?;
        self.expect = planned.map_err(|e| e.to_string())?;
        if self.editor == Editor::Host {
            batch.apply_host(mem).map_err(|e| e.to_string())
        } else {
            // Every third batch reports back (the order several vCPUs' batches need).
            let notify = step % 3 == 0;
            let entered = self
                .machine
                .apply_pt(cpu, batch, notify)
                .map_err(|e| e.to_string())?;
            if notify && entered {
                self.tally.notified += 1;
            }
            Ok(())
        }
    }

    fn finish(&mut self, err: Result<(), String>) -> Flow {
        if let Err(e) = err {
            self.tally.errors.push(e);
            return Flow::EndProcess(ExitStatus::Exited(1));
        }
        if self.step >= self.steps {
            return Flow::EndProcess(ExitStatus::Exited(0));
        }
        Flow::Continue
    }
}

impl ExitHandler for Probe {
    fn syscall(&mut self, cpu: &mut Cpu<'_>, mem: &GuestMem) -> Result<Flow, HypercallError> {
        if cpu.regs.rax != u64::from(NR_PROBE) {
            self.tally
                .errors
                .push(format!("unexpected syscall {}", cpu.regs.rax));
            return Ok(Flow::EndProcess(ExitStatus::Exited(2)));
        }
        let read = cpu.regs.rdi;
        self.tally.reads += 1;
        if cpu.regs.rsi != self.tally.reads {
            self.tally
                .errors
                .push(format!("rsi {} at read {}", cpu.regs.rsi, self.tally.reads));
            return Ok(Flow::EndProcess(ExitStatus::Exited(2)));
        }
        for (n, w) in self.tally.saw.iter_mut().zip(WORDS) {
            *n += u64::from(read == w);
        }
        match self.expect {
            Expect::Word(w) if read == WORDS[w] => {}
            Expect::Word(_) => self.tally.stale += 1,
            Expect::Fault => self.tally.missed_faults += 1,
        }
        cpu.complete_syscall(self.tally.reads as i64);
        let t = Instant::now();
        let r = self.edit(cpu, mem);
        self.tally.host_time += t.elapsed();
        Ok(self.finish(r))
    }

    fn app_fault(&mut self, cpu: &mut Cpu<'_>, fault: AppFault) -> Flow {
        let AppFault::Exception {
            vector: 14,
            rip,
            cr2: PROBE_VA,
            ..
        } = fault
        else {
            self.tally
                .errors
                .push(format!("unexpected fault {fault:?}"));
            return Flow::EndProcess(ExitStatus::Exited(3));
        };
        if rip != CODE_VA + LOAD_AT {
            self.tally.errors.push(format!("fault at {rip:#x}"));
            return Flow::EndProcess(ExitStatus::Exited(3));
        }
        self.tally.faults += 1;
        if self.expect != Expect::Fault {
            self.tally.spurious_faults += 1;
        }
        // The fault exit's registers are the application's at the load, which runs again.
        let machine = self.machine.clone();
        let r = self.edit(cpu, &machine.mem);
        self.finish(r)
    }

    fn console(&mut self, _fd: u32, bytes: &[u8]) -> std::io::Result<()> {
        eprint!("{}", String::from_utf8_lossy(bytes));
        Ok(())
    }

    fn before_run(&mut self, _cpu: Option<&mut Cpu<'_>>) -> Option<Flow> {
        None
    }

    fn pt_applied(&mut self, cpu: &mut Cpu<'_>) -> Flow {
        if cpu.sregs.cs.dpl != 0 {
            self.tally.errors.push("PtApplied from CPL3".into());
        }
        self.tally.applied += 1;
        Flow::Continue
    }
}

/// A VM whose vCPU 0 boots the core and enters the probe loop at CPL3 (the core's `RunApp`
/// mode with the loop as the application), the probe page mapped to the first frame.
fn probe_vm(editor: Editor, steps: u64) -> (umon::machine::vcpu::Vcpu, Probe) {
    let machine = Machine::new(RAM, true, KillHandle::new()).unwrap();
    let mem = &machine.mem;
    let core = core::load(mem, None).unwrap();
    let pt = machine.page_tables(&core).unwrap();
    // Everything through the machine's tables, as the layers above use them.
    machine.adopt_tables(pt.root(), &core, &[]);
    let mut tables = machine.tables().unwrap();
    let frames = &mut tables.frames;
    let code = frames.alloc_4k().unwrap();
    mem.write_bytes(code, &probe_loop()).unwrap();
    let data = [frames.alloc_4k().unwrap(), frames.alloc_4k().unwrap()];
    for (frame, word) in data.iter().zip(WORDS) {
        mem.write(*frame, &[word; 512]).unwrap();
    }
    // Room for a batch of 512 stores and 512 invalidations (the bench's raw batches).
    let batch_area = frames.alloc_2m().unwrap();
    // The bench region: 512 pages in one PT (frames in reverse order, so no 2 MiB leaf).
    let bench: Vec<Gpa> = (0..512).map(|_| frames.alloc_4k().unwrap()).rev().collect();
    drop(tables);
    let rx = Perm {
        read: true,
        exec: true,
        ..Perm::NONE
    };
    let ro = Perm {
        read: true,
        ..Perm::NONE
    };
    // Before the first run the batches may be host-written.
    for (va, len, target, perm) in [
        (CODE_VA, PAGE_4K, Target::Pages(&[code]), rx),
        (PROBE_VA, PAGE_4K, Target::Pages(&data[..1]), ro),
        (BENCH_VA, 512 * PAGE_4K, Target::Pages(&bench), ro),
    ] {
        let batch = machine.map(Gva(va), len, target, perm).unwrap();
        batch.apply_host(mem).unwrap();
    }
    let mut info = boot_info(CODE_VA);
    let vcpu = machine.first_vcpu(&core, pt.root(), &mut info).unwrap();
    let area = PtArea {
        routine: pt_apply_entry(&core),
        batch: batch_area,
        bytes: BATCH_PAGES * PAGE_4K,
    };
    let probe = Probe {
        machine: Arc::new(machine),
        editor,
        data,
        area,
        expect: Expect::Word(0),
        step: 0,
        steps,
        tally: Tally::default(),
    };
    (vcpu, probe)
}

fn boot_info(entry: u64) -> BootInfo {
    BootInfo {
        magic: BOOT_MAGIC,
        abi_version: ABI_VERSION,
        mode: BootMode::RunApp as u32,
        ram_bytes: RAM,
        tsc_khz: 0,
        app_entry: entry,
        // The loop touches no stack; an exception's frame goes to the core's stack.
        app_stack: entry,
        loop_count: 0,
        mem_map_len: 0,
        _pad: 0,
        mem_map: [MemRegion::default(); MAX_MEM_REGIONS],
        cmdline: [0; CMDLINE_BYTES],
    }
}

fn run_probe(editor: Editor, steps: u64) -> (Tally, Option<ExitStatus>) {
    let (mut vcpu, mut probe) = probe_vm(editor, steps);
    let machine = probe.machine.clone();
    let end = vcpu.run(&machine.mem, &mut probe).unwrap();
    (probe.tally, end.status)
}

#[test]
fn guest_edits_are_seen_at_every_exit_and_fault() {
    if !common::require_kvm() {
        return;
    }
    let steps = 2000;
    let (t, status) = run_probe(Editor::Guest, steps);
    assert!(t.errors.is_empty(), "{t:?}");
    assert_eq!(status, Some(ExitStatus::Exited(0)), "{t:?}");
    assert_eq!(t.stale, 0, "{t:?}");
    assert_eq!(t.missed_faults, 0, "{t:?}");
    assert_eq!(t.spurious_faults, 0, "{t:?}");
    // Every 10th edit unmaps the page: its fault is the next exit (the last edit's is not
    // run).
    assert_eq!(t.faults, (steps - 1) / 10, "{t:?}");
    assert!(t.saw[0] > 0 && t.saw[1] > 0, "{t:?}");
    assert_eq!(t.reads + t.faults, steps, "{t:?}");
    // Each batch that asked reported once, from the routine (the last one's is not run).
    assert!(t.notified > steps / 4, "{t:?}");
    assert!(
        t.applied + 1 >= t.notified && t.applied <= t.notified,
        "{t:?}"
    );
}

#[test]
fn host_edits_after_start_are_not_seen_on_pvm() {
    if !common::require_kvm() || Platform::detect() != Platform::Pvm {
        return;
    }
    let (t, status) = run_probe(Editor::Host, 200);
    assert!(t.errors.is_empty(), "{t:?}");
    assert_eq!(status, Some(ExitStatus::Exited(0)), "{t:?}");
    // Stale forever: the loop keeps reading the first frame and never faults.
    assert_eq!(t.faults, 0, "{t:?}");
    assert_eq!(t.saw, [200, 0], "{t:?}");
    assert!(t.stale > 0 && t.missed_faults > 0, "{t:?}");
}

/// The guest-physical address of the bench region's PT (a walk of the live tables).
fn bench_pt(mem: &GuestMem, root: Gpa) -> u64 {
    let mut table = root.0;
    for level in [3u32, 2, 1] {
        let i = (BENCH_VA >> (12 + 9 * level)) & 511;
        let e: u64 = mem.read(Gpa(table + 8 * i)).unwrap();
        table = e & 0x000f_ffff_ffff_f000;
    }
    table
}

/// Cost of one batch on this host, per exit, against an exit with no edit. Numbers only
/// (no timing assertion); run with `cargo test --test pt_edit -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_batch_costs() {
    if !common::require_kvm() {
        return;
    }
    let per_exit = |editor: Editor, steps: u64| {
        let (mut vcpu, mut probe) = probe_vm(editor, steps);
        let machine = probe.machine.clone();
        let t = Instant::now();
        let end = vcpu.run(&machine.mem, &mut probe).unwrap();
        let us = t.elapsed().as_secs_f64() * 1e6 / steps as f64;
        let host = probe.tally.host_time.as_secs_f64() * 1e6 / steps as f64;
        println!("  {editor:?}: monitor side {host:.1} us per exit");
        assert!(probe.tally.errors.is_empty(), "{:?}", probe.tally);
        assert_eq!(end.status, Some(ExitStatus::Exited(0)), "{:?}", probe.tally);
        assert_eq!(probe.tally.stale, 0, "{:?}", probe.tally);
        us
    };
    for round in 0..2 {
        let base = per_exit(Editor::Nothing, 2000);
        println!("round {round}: exit with no edit: {base:.1} us");
        for (editor, steps) in [
            (Editor::Raw(1), 1000),
            (Editor::Raw(16), 500),
            (Editor::Raw(512), 50),
            (Editor::Protect(1), 1000),
            (Editor::Protect(16), 500),
            (Editor::Protect(512), 200),
        ] {
            let us = per_exit(editor, steps);
            println!(
                "round {round}: {editor:?}: {us:.1} us per exit, {:.1} us over the bare exit",
                us - base
            );
        }
    }
}
