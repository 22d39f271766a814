//! The machine: KVM, guest RAM and its memory slots, page tables, the guest core, the vCPU
//! and its run loop, the core's hypercalls, stopping a running VM, and the monitor's own
//! confinement (seccomp). It knows nothing of Linux or of the application's image: the run
//! loop hands everything that concerns the application to a [`vcpu::ExitHandler`] the layer
//! above implements. It imports only [`crate::exit`].
pub mod core;
pub mod exitless;
pub mod frames;
#[allow(unsafe_code)] // pthread_self/pthread_kill, the SIGSYS reporter
pub(crate) mod host;
pub mod hypercall;
pub mod kvm;
pub mod memory;
pub mod memslots;
pub mod paging;
pub mod seccomp;
pub mod stop;
pub mod turn;
pub mod vcpu;

use crate::machine::core::{CoreError, CoreImage};
use crate::machine::frames::{Frames, FramesError};
use crate::machine::kvm::{KvmError, Platform};
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::memslots::{MemSlots, CHUNK};
use crate::machine::paging::{
    Mapper, PageTables, PagingError, Perm, PtBatch, Target, NO_EXECUTE, PAGE_1G, PAGE_2M, PAGE_4K,
    USER, WRITABLE,
};
use crate::machine::stop::{KillHandle, Parker};
use crate::machine::vcpu::cpu::{Cpu, PtApplyError, PtArea, PT_STACK_BATCH_OPS};
use crate::machine::vcpu::setup::{self, CpuFeatures, PerCpuError, UserStart, VcpuTemplate};
use crate::machine::vcpu::{Vcpu, VcpuError};
use kvm_bindings::{kvm_regs, CpuId};
use kvm_ioctls::{Kvm, VmFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use umon_abi::boot::{BootInfo, BootMode};
use umon_abi::layout::BOOT_INFO;
use umon_abi::layout::MAX_VCPUS;
use umon_abi::{Gpa, Gva};

/// Why the machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// KVM is missing or refused a call.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// Guest memory could not be set up or written.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The page tables did not fit.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// The guest core could not be loaded.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The vCPU could not be set up.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// Why a page-table change after start failed.
#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    /// The change is not possible (range, overlap, no frame for a table).
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// Frames could not be reserved or freed.
    #[error(transparent)]
    Frames(#[from] FramesError),
    /// Reading the tables failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The batch could not be handed to the core.
    #[error(transparent)]
    Apply(#[from] PtApplyError),
    /// The page tables were not adopted ([`Machine::adopt_tables`]).
    #[error("the application's page tables are not adopted yet")]
    NotAdopted,
}

/// The application half's page tables once the VM runs: the [`Mapper`] (the mirror of the
/// tables and the edits being planned) and the [`Frames`] it takes table pages from, which
/// the layer above allocates application memory from too.
pub struct AppTables {
    /// The tables.
    pub mapper: Mapper,
    /// Application RAM.
    pub frames: Frames,
    /// The core's `umon_pt_apply`.
    routine: u64,
    /// Table frames the last batch of each vCPU (by its TSS) unlinks: free once that vCPU
    /// exits again, when the routine has run.
    retired: std::collections::HashMap<u64, Vec<Gpa>>,
}

/// Why no further vCPU could be had.
#[derive(Debug, thiserror::Error)]
pub enum NewVcpuError {
    /// Every vCPU KVM allows (or the layout has room for) is in use.
    #[error("all {0} vCPUs are in use")]
    Limit(u32),
    /// No KVM VM behind this machine (fuzzing, unit tests), or vCPU 0 was never set up.
    #[error("this machine cannot run further vCPUs")]
    Unavailable,
    /// KVM refused to create one.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// Setting it up failed.
    #[error(transparent)]
    Setup(#[from] PerCpuError),
    /// No host thread could be started for it.
    #[error("cannot start a host thread for a vCPU")]
    Spawn(#[source] std::io::Error),
}

/// The KVM side of a machine.
struct KvmVm {
    // Field order is drop order: the VM fd goes before /dev/kvm.
    vm: Arc<VmFd>,
    _kvm: Kvm,
    cpuid: CpuId,
    features: CpuFeatures,
    /// The most vCPUs this VM may have (KVM's limit and the layout's).
    max_vcpus: u32,
    /// KVM_CAP_XSAVE2 (0 where the legacy size is all there is) is at most `kvm_xsave`'s
    /// size, asked once before the monitor confines itself.
    xsave_fits: bool,
}

impl KvmVm {
    /// KVM's XSAVE image fits `struct kvm_xsave`, so KVM_SET_XSAVE with one is sound.
    fn xsave_fits(&self) -> bool {
        self.xsave_fits
    }
}

/// vCPUs beyond the first: KVM cannot destroy a vCPU, so one whose thread ended waits for the
/// next thread, with its host thread for a while ([`Machine::start_thread`]), then alone.
#[derive(Default)]
struct VcpuPool {
    /// vCPUs with no host thread.
    idle: Vec<Vcpu>,
    /// Host threads with a vCPU, waiting for a thread to run.
    workers: Vec<(u64, std::sync::mpsc::Sender<Job>)>,
    next_worker: u64,
    /// The VM is ending: no host thread waits any more.
    closing: bool,
    /// vCPUs created so far, vCPU 0 included: the next index.
    created: u32,
    /// The host threads running vCPUs beyond the first (joined by [`Machine::join_threads`]).
    threads: Vec<JoinHandle<()>>,
}

/// One VM: guest RAM, KVM's view of it, and the stop handle. Shared (`Arc`) by everything that
/// runs in it; what changes after start (the memory slots) is behind a lock.
pub struct Machine {
    // Field order is drop order: the vCPU fds, the VM fd and the slots holding it go before the
    // RAM they map.
    vcpus: Mutex<VcpuPool>,
    /// How vCPUs beyond the first are set up (from [`Machine::first_vcpu`]).
    template: OnceLock<VcpuTemplate>,
    kvm: Option<KvmVm>,
    /// None when KVM knows all of guest RAM (self-test) or there is no KVM VM.
    slots: Option<Mutex<MemSlots>>,
    /// The platform the VM runs on.
    pub platform: Platform,
    /// Stops the VM from outside (kill handle, timeout, signals to umon).
    pub stop: KillHandle,
    /// Guest RAM.
    pub mem: GuestMem,
    /// The application's page tables after start ([`Machine::adopt_tables`]).
    tables: OnceLock<Mutex<AppTables>>,
    /// What [`Machine::tables`] builds them from at the first use.
    adopt: Mutex<Option<Adoption>>,
    /// The order of batches once several vCPUs apply them ([`turn`]).
    pub pt_turn: turn::PtTurn,
    /// The TLB shootdown's generations, log and waiting place ([`Tlb`]).
    tlb: Tlb,
    /// Exit-less syscalls: the stub's layout when used, the channels' busy flags.
    pub exitless: Arc<exitless::Exitless>,
}

/// What the TLB shootdown keeps per machine (`Machine::took_away`, `Machine::flush_tlb`,
/// `Machine::tlb_lock`, `Machine::tlb_notify`).
pub struct Tlb {
    /// Bumped by every batch that took translations away while several vCPUs run: a vCPU
    /// that has not flushed since the last bump must before it runs application code again
    /// (the layer above tracks each vCPU's and does the shootdown). Starts at 1, so that a
    /// vCPU starts with a flush (a reused one may hold an ended thread's translations).
    pub gen: std::sync::atomic::AtomicU64,
    /// What each recent generation took away (its pages, or None: everything), so that a
    /// vCPU catching up flushes those pages instead of reloading CR3 (on PVM a reload makes
    /// every vCPU rebuild its shadow translations: milliseconds per takeaway, measured).
    log: Mutex<std::collections::VecDeque<(u64, Option<Vec<Gva>>)>>,
    /// Where a shootdown waits for the other vCPUs ([`TlbWait::sleep`]); vCPUs that leave
    /// the guest or flush wake it ([`Machine::tlb_notify`]).
    wait: Mutex<()>,
    cv: std::sync::Condvar,
    waiters: std::sync::atomic::AtomicU32,
}

impl Default for Tlb {
    fn default() -> Tlb {
        Tlb {
            gen: std::sync::atomic::AtomicU64::new(1),
            log: Mutex::default(),
            wait: Mutex::new(()),
            cv: std::sync::Condvar::new(),
            waiters: std::sync::atomic::AtomicU32::new(0),
        }
    }
}

/// A shootdown's hold on [`Machine::tlb_lock`].
pub struct TlbWait<'a> {
    machine: &'a Machine,
    guard: Option<MutexGuard<'a, ()>>,
}

impl TlbWait<'_> {
    /// Sleep until a vCPU notifies or `timeout` passes.
    pub fn sleep(&mut self, timeout: std::time::Duration) {
        if let Some(g) = self.guard.take() {
            let (g, _) = self
                .machine
                .tlb
                .cv
                .wait_timeout(g, timeout)
                .unwrap_or_else(|e| e.into_inner());
            self.guard = Some(g);
        }
    }
}

impl Drop for TlbWait<'_> {
    fn drop(&mut self) {
        self.machine
            .tlb
            .waiters
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Generations [`Tlb::log`] remembers.
const TLB_LOG: usize = 16;

/// The page tables to adopt at the first use.
#[derive(Clone)]
struct Adoption {
    root: Gpa,
    routine: u64,
    placed: Vec<(Gpa, u64)>,
}

impl Machine {
    /// A KVM VM with `memory_bytes` of guest RAM, of which KVM knows nothing yet (the first
    /// chunk, with the boot area, core and page tables, from [`Machine::first_vcpu`] on) or,
    /// with `register_all`, everything.
    pub fn new(
        memory_bytes: u64,
        register_all: bool,
        stop: KillHandle,
    ) -> Result<Machine, MachineError> {
        let kvm = kvm::open()?;
        let platform = Platform::detect();
        let vm = kvm.create_vm().map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VM",
            source,
        })?;
        let vm = Arc::new(vm);
        let mem = GuestMem::new(memory_bytes)?;
        let mut slots = MemSlots::new(vm.clone(), &mem, kvm.get_nr_memslots() as u32)?;
        // Without `register_all`, the first chunk is registered with the first vCPU, together
        // with what the placement asked for by then: one slot, not two.
        if register_all {
            slots.ensure(0, mem.bytes())?;
        }
        let (cpuid, features) = setup::guest_cpuid(&kvm, platform)?;
        let max_vcpus = (kvm.get_max_vcpus() as u32).min(MAX_VCPUS);
        let xsave2 = vm.check_extension_int(kvm_ioctls::Cap::Xsave2);
        let xsave_fits =
            usize::try_from(xsave2).is_ok_and(|s| s <= crate::machine::vcpu::cpu::XSAVE_IMAGE);
        Ok(Machine {
            vcpus: Mutex::default(),
            template: OnceLock::new(),
            kvm: Some(KvmVm {
                vm,
                _kvm: kvm,
                cpuid,
                features,
                max_vcpus,
                xsave_fits,
            }),
            slots: (!register_all).then(|| Mutex::new(slots)),
            platform,
            exitless: Arc::new(exitless::Exitless::new(stop.clone())),
            stop,
            mem,
            tables: OnceLock::new(),
            adopt: Mutex::new(None),
            pt_turn: turn::PtTurn::default(),
            tlb: Tlb::default(),
        })
    }

    /// A machine of guest RAM only, with no KVM VM behind it: handlers run against it without
    /// KVM (fuzzing, unit tests); every byte counts as known to KVM.
    pub fn without_kvm(mem: GuestMem, stop: KillHandle) -> Machine {
        Machine {
            vcpus: Mutex::default(),
            template: OnceLock::new(),
            kvm: None,
            slots: None,
            platform: Platform::Hardware,
            exitless: Arc::new(exitless::Exitless::new(stop.clone())),
            stop,
            mem,
            tables: OnceLock::new(),
            adopt: Mutex::new(None),
            pt_turn: turn::PtTurn::default(),
            tlb: Tlb::default(),
        }
    }

    /// Take over the page tables built before start (rooted at `root`, with the core `core`)
    /// for edits after start: a [`Mapper`] over their application half, and [`Frames`] over
    /// application RAM with `placed` (what the image, stack and arena occupy) reserved. Call
    /// once, after placement and before the first vCPU runs; from then on every change goes
    /// through [`Machine::map`]/[`Machine::protect`]/[`Machine::unmap`] and
    /// [`Machine::apply_pt`], never through host writes (PVM would not see them). The
    /// mirror is read at the first use, not here: an application that never changes its
    /// tables pays nothing at start (about 60 us at 1 GiB, measured).
    pub fn adopt_tables(&self, root: Gpa, core: &CoreImage, placed: &[(Gpa, u64)]) {
        let mut pending = self.adopt.lock().unwrap_or_else(|e| e.into_inner());
        *pending = Some(Adoption {
            root,
            routine: setup::pt_apply_entry(core),
            placed: placed.to_vec(),
        });
    }

    /// The application's page tables and frames, once adopted.
    pub fn tables(&self) -> Result<MutexGuard<'_, AppTables>, TablesError> {
        if self.tables.get().is_none() {
            // Held while building: a racing caller waits here, then finds the tables set.
            let mut pending = self.adopt.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = pending.take() {
                let mut mapper = Mapper::adopt(&self.mem, a.root)?;
                mapper.set_live();
                let ram = self.mem.bytes();
                let mut frames = Frames::new(ram, ram);
                for &(gpa, len) in &a.placed {
                    frames.reserve(gpa, len)?;
                }
                let tables = AppTables {
                    mapper,
                    frames,
                    routine: a.routine,
                    retired: Default::default(),
                };
                let _ = self.tables.set(Mutex::new(tables));
            }
        }
        let t = self.tables.get().ok_or(TablesError::NotAdopted)?;
        Ok(t.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Plan several changes as one batch (`f` gets the tables and the frames; e.g. MAP_FIXED
    /// over a mapping is an unmap and a map): what `f` returned and the batch, to apply even
    /// when `f` failed, since its earlier changes are in the mirror already. A vCPU applies
    /// one batch per exit.
    pub fn plan<R>(
        &self,
        f: impl FnOnce(&mut Mapper, &mut Frames) -> Result<R, PagingError>,
    ) -> Result<(Result<R, PagingError>, PtBatch), TablesError> {
        let mut t = self.tables()?;
        let AppTables { mapper, frames, .. } = &mut *t;
        let r = f(mapper, frames);
        Ok((r, mapper.commit_within(frames, PT_STACK_BATCH_OPS)))
    }

    /// Map `[va, va + len)` (unmapped so far) to `target` with `perm`: the batch that does it,
    /// for [`Machine::apply_pt`].
    pub fn map(
        &self,
        va: Gva,
        len: u64,
        target: Target<'_>,
        perm: Perm,
    ) -> Result<PtBatch, TablesError> {
        let mut t = self.tables()?;
        let AppTables { mapper, frames, .. } = &mut *t;
        mapper.map(va, len, target, perm, frames)?;
        Ok(mapper.commit_within(frames, PT_STACK_BATCH_OPS))
    }

    /// Give the mapped pages of `[va, va + len)` the rights `perm`: the batch.
    pub fn protect(&self, va: Gva, len: u64, perm: Perm) -> Result<PtBatch, TablesError> {
        let mut t = self.tables()?;
        let AppTables { mapper, frames, .. } = &mut *t;
        mapper.protect(va, len, perm, frames)?;
        Ok(mapper.commit_within(frames, PT_STACK_BATCH_OPS))
    }

    /// Unmap `[va, va + len)`: the batch, and the frames that were mapped there ((address,
    /// bytes), for the caller to free those it owns once the batch is applied).
    pub fn unmap(&self, va: Gva, len: u64) -> Result<(PtBatch, Vec<(Gpa, u64)>), TablesError> {
        let mut t = self.tables()?;
        let AppTables { mapper, frames, .. } = &mut *t;
        let gone = mapper.unmap(va, len, frames)?;
        Ok((mapper.commit_within(frames, PT_STACK_BATCH_OPS), gone))
    }

    /// Have the vCPU whose exit `cpu` serves apply `batch` before the application goes on
    /// (see [`Cpu::apply_pt`]: call it last, after the syscall's result is set). The batch
    /// goes on the vCPU's exception stack ([`PtArea::on_exception_stack`]). Table frames it
    /// unlinks are freed at this vCPU's next batch: by then the routine has run. Other vCPUs
    /// need nothing on PVM (KVM flushes them inside the trapped store, measured); hardware
    /// KVM needs a shootdown that is not built yet (issue 13's plan, step 14). With `notify`
    /// the routine exits with `Hypercall::PtApplied` once the batch is in ([`turn`]). True
    /// if the vCPU enters the routine (false: nothing for the guest to do, all done).
    pub fn apply_pt(
        &self,
        cpu: &mut Cpu<'_>,
        batch: PtBatch,
        notify: bool,
    ) -> Result<bool, TablesError> {
        let top = cpu.exception_stack(&self.mem)?;
        let mut t = self.tables()?;
        let area = PtArea::on_exception_stack(t.routine, top);
        let AppTables {
            frames, retired, ..
        } = &mut *t;
        for gpa in retired.remove(&top).unwrap_or_default() {
            frames.free(&self.mem, gpa, PAGE_4K)?;
        }
        let entered = cpu.apply_pt(&self.mem, &area, &batch, notify)?;
        if !batch.retired.is_empty() {
            retired.insert(top, batch.retired);
        }
        Ok(entered)
    }

    /// The shootdown generation now (see [`Tlb::gen`]).
    pub fn tlb_gen(&self) -> u64 {
        self.tlb.gen.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Hold while waiting for other vCPUs' flushes: [`TlbWait::sleep`] on it, and every
    /// [`Machine::tlb_notify`] meanwhile wakes the sleeper (none is lost: notifiers take the
    /// same lock).
    pub fn tlb_lock(&self) -> TlbWait<'_> {
        self.tlb
            .waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TlbWait {
            machine: self,
            guard: Some(self.tlb.wait.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    /// A vCPU left the guest or flushed: wake a shootdown that waits for it.
    pub fn tlb_notify(&self) {
        if self.tlb.waiters.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let _g = self.tlb.wait.lock().unwrap_or_else(|e| e.into_inner());
            self.tlb.cv.notify_all();
        }
    }

    /// A batch took away the translations `flush` names, with several vCPUs: the new
    /// generation every other vCPU must catch up with ([`Machine::flush_tlb`]).
    pub fn took_away(&self, flush: &paging::Flush) -> u64 {
        let pages = match flush {
            paging::Flush::Pages(p) => Some(p.clone()),
            _ => None,
        };
        let mut log = self.tlb.log.lock().unwrap_or_else(|e| e.into_inner());
        let gen = self
            .tlb
            .gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        log.push_back((gen, pages));
        while log.len() > TLB_LOG {
            log.pop_front();
        }
        gen
    }

    /// Have the vCPU whose exit `cpu` serves drop what the generations after `seen` up to
    /// `gen` took away before the application runs on: their pages through `invlpg`, or a
    /// CR3 reload when they are many, unknown or everything; only where
    /// [`Machine::apply_pt`] may be called. True if the vCPU enters the routine.
    pub fn flush_tlb(&self, cpu: &mut Cpu<'_>, seen: u64, gen: u64) -> Result<bool, TablesError> {
        let flush = {
            let log = self.tlb.log.lock().unwrap_or_else(|e| e.into_inner());
            let mut pages: Vec<Gva> = Vec::new();
            let mut missed = 0;
            let mut all = false;
            for (_, p) in log.iter().filter(|(g, _)| *g > seen && *g <= gen) {
                missed += 1;
                match p {
                    Some(p) => pages.extend(p.iter().copied()),
                    None => all = true,
                }
            }
            pages.sort_unstable_by_key(|g| g.0);
            pages.dedup();
            if all || missed != gen.saturating_sub(seen) || pages.len() > paging::INVLPG_MAX {
                paging::Flush::All
            } else {
                paging::Flush::Pages(pages)
            }
        };
        let batch = PtBatch {
            fills: Vec::new(),
            stores: Vec::new(),
            flush,
            retired: Vec::new(),
        };
        self.apply_pt(cpu, batch, false)
    }

    /// Make `[gpa, gpa + len)` of guest RAM known to KVM (brk, mmap and the image hand it out).
    pub fn ensure_backed(&self, gpa: u64, len: u64) -> Result<(), KvmError> {
        let Some(slots) = &self.slots else {
            return Ok(());
        };
        // With other vCPUs running, each registration costs about 1-2 ms (KVM waits for every
        // vCPU: measured on PVM with spinning threads, against ~40 us with one vCPU), so grow
        // KVM's view in bigger steps once a second vCPU exists. The price: an access to RAM
        // registered early but not yet handed out is no longer caught as a stray access.
        let threaded = self.pool().created > 1;
        let len = if threaded {
            gpa.saturating_add(len)
                .checked_next_multiple_of(THREADED_CHUNK)
                .map_or(len, |end| end - gpa)
        } else {
            len
        };
        let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.ensure(gpa, len)
    }

    /// CPUID(1).EDX as the guest sees it (AT_HWCAP); 0 without KVM.
    pub fn hwcap(&self) -> u64 {
        self.kvm
            .as_ref()
            .and_then(|k| k.cpuid.as_slice().iter().find(|e| e.function == 1))
            .map(|e| u64::from(e.edx))
            .unwrap_or(0)
    }

    /// The page tables with the core and the physical windows mapped, already in guest memory.
    /// A caller that adds mappings (the application, the self-test stack) writes them again
    /// ([`PageTables::write`]) before [`Machine::adopt_tables`].
    pub fn page_tables(&self, core: &CoreImage) -> Result<PageTables, MachineError> {
        let gib_pages = self.kvm.as_ref().is_some_and(|k| k.features.gib_pages);
        let window_page = if gib_pages { PAGE_1G } else { PAGE_2M };
        let mut pt = PageTables::new(&self.mem)?;
        map_core(&mut pt, &self.mem, core)?;
        if let Some(layout) = core.exitless {
            map_exitless(&mut pt, &self.mem, layout)?;
            self.exitless.enable(layout);
        }
        paging::map_windows(&mut pt, &self.mem, window_page)?;
        pt.write(&self.mem)?;
        Ok(pt)
    }

    /// vCPU 0, configured to enter the core with `info` (its TSC rate filled in here) and the
    /// page tables rooted at `pt_root`.
    pub fn first_vcpu(
        &self,
        core: &CoreImage,
        pt_root: Gpa,
        info: &mut BootInfo,
    ) -> Result<Vcpu, MachineError> {
        let k = self.kvm.as_ref().ok_or(KvmError::Missing)?;
        self.ensure_backed(0, CHUNK)?;
        setup::write_tables(&self.mem, core, self.platform)?;
        let fd = k.vm.create_vcpu(0).map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VCPU",
            source,
        })?;
        info.tsc_khz = fd.get_tsc_khz().map(u64::from).unwrap_or(0);
        self.mem.write(Gpa(BOOT_INFO), info)?;
        // An application is entered at CPL3 directly, where the built-in core's boot would
        // leave it (it only checks the boot info and asks to enter); the self-tests and a
        // core given with --kernel boot the core.
        let direct = core.builtin && info.mode == BootMode::RunApp as u32;
        let user = direct.then(|| kvm_regs {
            rip: info.app_entry,
            rsp: info.app_stack,
            rflags: 0x202,
            ..Default::default()
        });
        let (regs, sregs) = setup::configure(&fd, &k.cpuid, k.features, core, pt_root, user)?;
        let template = VcpuTemplate::new(&k.cpuid, k.features, core, pt_root, self.platform);
        let _ = self.template.set(template);
        let mut pool = self.pool();
        pool.created = pool.created.max(1);
        drop(pool);
        let mut vcpu = Vcpu::new(fd, 0, k.features.xsave, k.xsave_fits());
        if self.exitless.layout().is_some() {
            vcpu.set_exitless(self.exitless.clone());
        }
        if user.is_some() {
            vcpu.prime(regs, sregs);
        }
        Ok(vcpu)
    }

    fn pool(&self) -> MutexGuard<'_, VcpuPool> {
        self.vcpus.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A further vCPU with no host thread, set up to start at CPL3 with `start`: an idle one
    /// if there is one, else a new one, up to KVM's limit.
    fn new_vcpu(&self, start: &UserStart) -> Result<Vcpu, NewVcpuError> {
        let (Some(k), Some(template)) = (&self.kvm, self.template.get()) else {
            return Err(NewVcpuError::Unavailable);
        };
        let reused = self.pool().idle.pop();
        if let Some(mut vcpu) = reused {
            return match vcpu.restart(start) {
                Ok(()) => Ok(vcpu),
                Err(e) => {
                    self.pool().idle.push(vcpu);
                    Err(PerCpuError::from(e).into())
                }
            };
        }
        let index = {
            let mut pool = self.pool();
            if pool.created >= k.max_vcpus {
                return Err(NewVcpuError::Limit(k.max_vcpus));
            }
            pool.created += 1;
            pool.created - 1
        };
        let fd =
            k.vm.create_vcpu(u64::from(index))
                .map_err(|source| KvmError::Ioctl {
                    what: "KVM_CREATE_VCPU",
                    source,
                })?;
        // On failure the index is not reused: a vCPU whose CPUID was refused cannot be fixed.
        setup::configure_secondary(&fd, &self.mem, index, template, start)?;
        let mut vcpu = Vcpu::new(fd, index, k.features.xsave, k.xsave_fits());
        if self.exitless.layout().is_some() {
            vcpu.set_exitless(self.exitless.clone());
        }
        vcpu.keep_user_sregs().map_err(PerCpuError::from)?;
        if let Some(image) = &start.xstate {
            vcpu.set_xstate(image).map_err(PerCpuError::from)?;
        }
        Ok(vcpu)
    }

    /// Run `body` on a further vCPU started at CPL3 with `start` (a new thread), on a host
    /// thread of its own, registered for kicks (which unpark `parker`) while `body` runs. A
    /// vCPU whose thread ended keeps its host thread for a while (`WORKER_IDLE`) and takes
    /// the next thread with one ioctl and no host thread creation. A new host thread inherits
    /// the caller's seccomp filter, so call this from a confined thread. `body` gets the vCPU,
    /// or why a reused one could not restart (after this returned Ok).
    pub fn start_thread(
        self: &Arc<Self>,
        start: UserStart,
        parker: Arc<Parker>,
        body: ThreadBody,
    ) -> Result<(), NewVcpuError> {
        let mut job = Job {
            start,
            parker,
            body,
            ready: false,
        };
        loop {
            let worker = self.pool().workers.pop();
            let Some(worker) = worker else {
                break;
            };
            match worker.1.send(job) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::SendError(j)) => job = j,
            }
        }
        let vcpu = self.new_vcpu(&job.start)?;
        job.ready = true;
        let machine = self.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vcpu{}", vcpu.index()))
            .stack_size(VCPU_THREAD_STACK)
            .spawn(move || worker(&machine, vcpu, job))
            .map_err(NewVcpuError::Spawn)?;
        let finished = {
            let mut pool = self.pool();
            pool.threads.push(thread);
            let (done, running) = std::mem::take(&mut pool.threads)
                .into_iter()
                .partition(|t| t.is_finished());
            pool.threads = running;
            done
        };
        for t in finished {
            let _ = t.join();
        }
        Ok(())
    }

    /// Wait for every vCPU thread started by [`Machine::start_thread`] (and those they
    /// started); idle ones end at once.
    pub fn join_threads(&self) {
        loop {
            let threads = {
                let mut pool = self.pool();
                pool.closing = true;
                pool.workers.clear();
                std::mem::take(&mut pool.threads)
            };
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// What a forked monitor rebuilds its machine from, taken by the parent just before the host
/// fork (under the locks, so no other thread is half-way through a change).
pub struct ForkSnapshot {
    tables: Option<(Mapper, Frames, u64)>,
    adopt: Option<Adoption>,
    slots: Option<MemSlots>,
}

impl Machine {
    /// The parts of this machine a forked child keeps: the page-table mirror and frames, the
    /// memory registrations. None without KVM.
    pub fn fork_snapshot(&self) -> Option<ForkSnapshot> {
        self.kvm.as_ref()?;
        let tables = self.tables.get().map(|t| {
            let t = t.lock().unwrap_or_else(|e| e.into_inner());
            (t.mapper.clone(), t.frames.clone(), t.routine)
        });
        let adopt = self.adopt.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let slots = self
            .slots
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone());
        Some(ForkSnapshot {
            tables,
            adopt,
            slots,
        })
    }

    /// In a forked monitor (the host fork's child): a new KVM VM over this process's copy of
    /// guest RAM, as `snap` describes it, with no vCPU yet ([`Machine::fork_vcpu`]). KVM refuses
    /// the parent's VM and vCPU fds in a child process, so everything KVM holds is made again;
    /// the guest's own state (page tables, core data) is in the copied RAM.
    pub fn forked(&self, snap: ForkSnapshot, stop: KillHandle) -> Result<Machine, MachineError> {
        let k = self.kvm.as_ref().ok_or(KvmError::Missing)?;
        let vm = k._kvm.create_vm().map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VM",
            source,
        })?;
        let vm = Arc::new(vm);
        let slots = match &snap.slots {
            Some(s) => Some(Mutex::new(s.rebuilt(vm.clone())?)),
            None => None,
        };
        if slots.is_none() {
            // Registered whole (self-test machines).
            MemSlots::new(vm.clone(), &self.mem, u32::MAX)?.ensure(0, self.mem.bytes())?;
        }
        let tables = OnceLock::new();
        if let Some((mapper, frames, routine)) = snap.tables {
            let _ = tables.set(Mutex::new(AppTables {
                mapper,
                frames,
                routine,
                retired: Default::default(),
            }));
        }
        let template = OnceLock::new();
        if let Some(t) = self.template.get() {
            let _ = template.set(t.clone());
        }
        let kvm = KvmVm {
            vm,
            _kvm: kvm::open()?,
            cpuid: k.cpuid.clone(),
            features: k.features,
            max_vcpus: k.max_vcpus,
            xsave_fits: k.xsave_fits,
        };
        Ok(Machine {
            vcpus: Mutex::default(),
            template,
            kvm: Some(kvm),
            slots,
            platform: self.platform,
            exitless: Arc::new(self.exitless.forked(&self.mem, stop.clone())),
            stop,
            mem: self.mem.clone(),
            tables,
            adopt: Mutex::new(snap.adopt),
            pt_turn: turn::PtTurn::default(),
            tlb: Tlb::default(),
        })
    }

    /// A forked machine's first vCPU, starting at CPL3 with `start` (the forking thread's
    /// registers with the child's return value).
    pub fn fork_vcpu(&self, start: &UserStart) -> Result<Vcpu, NewVcpuError> {
        let (Some(k), Some(template)) = (&self.kvm, self.template.get()) else {
            return Err(NewVcpuError::Unavailable);
        };
        self.pool().created = 1;
        let fd = k.vm.create_vcpu(0).map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VCPU",
            source,
        })?;
        setup::configure_secondary(&fd, &self.mem, 0, template, start)?;
        let sregs = fd.get_sregs().map_err(|source| KvmError::Ioctl {
            what: "KVM_GET_SREGS",
            source,
        })?;
        let mut vcpu = Vcpu::new(fd, 0, k.features.xsave, k.xsave_fits());
        if self.exitless.layout().is_some() {
            vcpu.set_exitless(self.exitless.clone());
        }
        vcpu.keep_user_sregs().map_err(PerCpuError::from)?;
        if let Some(image) = &start.xstate {
            vcpu.set_xstate(image).map_err(PerCpuError::from)?;
        }
        // The run loop sees the registers before the first entry, so a signal sent to the
        // child before it ran is delivered before its first instruction.
        let mut regs = start.regs;
        regs.rflags = (regs.rflags & !0x3000) | 0x2;
        vcpu.prime(regs, sregs);
        Ok(vcpu)
    }

    /// The guest TSC rate KVM gives a vCPU (0 if unknown).
    pub fn tsc_khz(vcpu: &Vcpu) -> u64 {
        vcpu.fd().get_tsc_khz().map(u64::from).unwrap_or(0)
    }
}

/// What a thread started by [`Machine::start_thread`] runs.
pub type ThreadBody = Box<dyn FnOnce(Result<&mut Vcpu, VcpuError>) + Send>;

/// A thread to run on a vCPU.
struct Job {
    start: UserStart,
    parker: Arc<Parker>,
    body: ThreadBody,
    /// The vCPU is already set up with `start`.
    ready: bool,
}

/// How long a vCPU's host thread waits for the next thread before it ends.
const WORKER_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// A vCPU's host thread: run the thread, then offer itself for the next one.
fn worker(machine: &Arc<Machine>, mut vcpu: Vcpu, first: Job) {
    let mut job = first;
    loop {
        let ready = if job.ready {
            Ok(())
        } else {
            vcpu.restart(&job.start)
        };
        {
            let _running = machine.stop.enter(job.parker);
            match ready {
                Ok(()) => (job.body)(Ok(&mut vcpu)),
                Err(e) => (job.body)(Err(e)),
            }
        }
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let id = {
            let mut pool = machine.pool();
            if pool.closing {
                pool.idle.push(vcpu);
                return;
            }
            pool.next_worker += 1;
            let id = pool.next_worker;
            pool.workers.push((id, tx));
            id
        };
        let next = match rx.recv_timeout(WORKER_IDLE) {
            Ok(j) => Some(j),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let mut pool = machine.pool();
                if let Some(i) = pool.workers.iter().position(|w| w.0 == id) {
                    pool.workers.remove(i);
                    None
                } else {
                    // Taken meanwhile: its job is on the way.
                    drop(pool);
                    rx.recv().ok()
                }
            }
        };
        match next {
            Some(j) => job = j,
            None => {
                machine.pool().idle.push(vcpu);
                return;
            }
        }
    }
}

/// Granule of KVM memory registration once the VM has more than one vCPU.
const THREADED_CHUNK: u64 = 256 << 20;

/// Host stack of a vCPU thread: the run loop and the syscall handlers (no deep recursion; the
/// biggest frames are path buffers).
const VCPU_THREAD_STACK: usize = 512 << 10;

/// The exit-less window (`umon_abi::exitless`): for each vCPU that may have a channel, the
/// core's stub page (user, executable, read-only) and its own channel page (user, writable,
/// NX). Mapped before the first instruction for all of them, so a new vCPU needs no edit.
fn map_exitless(
    pt: &mut PageTables,
    mem: &GuestMem,
    layout: exitless::StubLayout,
) -> Result<(), PagingError> {
    use umon_abi::exitless::{channel_phys, channel_va, stub_page, EXITLESS_VCPUS};
    for i in 0..EXITLESS_VCPUS {
        pt.map(
            mem,
            Gva(stub_page(i)),
            Gpa(layout.page),
            PAGE_4K,
            PAGE_4K,
            USER,
        )?;
        let data = USER | WRITABLE | NO_EXECUTE;
        pt.map(
            mem,
            Gva(channel_va(i)),
            Gpa(channel_phys(i)),
            PAGE_4K,
            PAGE_4K,
            data,
        )?;
    }
    Ok(())
}

/// Map the core VA = PA with 4 KiB pages and each segment's permissions; only the syscall stub
/// page is user-visible (PVM enters it at CPL3).
fn map_core(pt: &mut PageTables, mem: &GuestMem, core: &CoreImage) -> Result<(), PagingError> {
    for seg in &core.segments {
        let mut page = seg.start;
        while page < seg.end {
            let mut flags = 0;
            if seg.write {
                flags |= WRITABLE;
            }
            if !seg.exec {
                flags |= NO_EXECUTE;
            }
            if (core.user_text.0..core.user_text.1).contains(&page) {
                flags |= USER;
            }
            pt.map(mem, Gva(page), Gpa(page), PAGE_4K, PAGE_4K, flags)?;
            page += PAGE_4K;
        }
    }
    Ok(())
}
