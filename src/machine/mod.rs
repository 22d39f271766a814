//! The machine: KVM, guest RAM and its memory slots, page tables, the guest core, the vCPU
//! and its run loop, the core's hypercalls, stopping a running VM, and the monitor's own
//! confinement (seccomp). It knows nothing of Linux or of the application's image: the run
//! loop hands everything that concerns the application to a [`vcpu::ExitHandler`] the layer
//! above implements. It imports only [`crate::exit`].
pub mod core;
#[allow(unsafe_code)] // pthread_self/pthread_kill, the SIGSYS reporter
pub(crate) mod host;
pub mod hypercall;
pub mod kvm;
pub mod memory;
pub mod memslots;
pub mod paging;
pub mod seccomp;
pub mod stop;
pub mod vcpu;

use crate::machine::core::{CoreError, CoreImage};
use crate::machine::kvm::{KvmError, Platform};
use crate::machine::memory::{GuestMem, MemoryError};
use crate::machine::memslots::{MemSlots, CHUNK};
use crate::machine::paging::{
    PageTables, PagingError, NO_EXECUTE, PAGE_1G, PAGE_2M, PAGE_4K, USER, WRITABLE,
};
use crate::machine::stop::{KillHandle, Parker};
use crate::machine::vcpu::setup::{self, CpuFeatures, PerCpuError, UserStart, VcpuTemplate};
use crate::machine::vcpu::{Vcpu, VcpuError};
use kvm_bindings::CpuId;
use kvm_ioctls::{Kvm, VmFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use umon_abi::boot::BootInfo;
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
}

impl Machine {
    /// A KVM VM with `memory_bytes` of guest RAM, of which KVM knows the first chunk (boot area,
    /// core, page tables) or, with `register_all`, everything.
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
        slots.ensure(0, CHUNK)?;
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
            stop,
            mem,
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
            stop,
            mem,
        }
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

    /// The page tables with the core and the physical windows mapped (the application and the
    /// self-test stack are added by the caller before the first vCPU starts).
    pub fn page_tables(&self, core: &CoreImage) -> Result<PageTables, MachineError> {
        let gib_pages = self.kvm.as_ref().is_some_and(|k| k.features.gib_pages);
        let window_page = if gib_pages { PAGE_1G } else { PAGE_2M };
        let mut pt = PageTables::new(&self.mem)?;
        map_core(&mut pt, &self.mem, core)?;
        paging::map_windows(&mut pt, &self.mem, window_page)?;
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
        setup::write_tables(&self.mem, core, self.platform)?;
        let fd = k.vm.create_vcpu(0).map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VCPU",
            source,
        })?;
        info.tsc_khz = fd.get_tsc_khz().map(u64::from).unwrap_or(0);
        self.mem.write(Gpa(BOOT_INFO), info)?;
        setup::configure(&fd, &k.cpuid, k.features, core, pt_root)?;
        let template = VcpuTemplate::new(&k.cpuid, k.features, core, pt_root, self.platform);
        let _ = self.template.set(template);
        let mut pool = self.pool();
        pool.created = pool.created.max(1);
        drop(pool);
        Ok(Vcpu::new(fd, 0, k.features.xsave, k.xsave_fits()))
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
        vcpu.keep_user_sregs().map_err(PerCpuError::from)?;
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
