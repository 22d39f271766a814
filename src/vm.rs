//! A VM from start to end: `Vm::new` acquires everything (KVM, memory, page tables, core, vCPU),
//! `run(self)` consumes it, so no half-built or re-run VM can be observed. Only this module
//! registers memory with KVM.
use crate::config::{Config, Mode};
use crate::image::place::{self, AuxFacts};
use crate::linux::fs::volume::FileSystem;
use crate::linux::mm::space::{AddrSpace, Arena};
use crate::linux::stdio::Stdio;
use crate::linux::LinuxGuest;
use crate::machine::core::{self, CoreError, CoreImage};
use crate::machine::kvm::{self, KvmError, Platform};
use crate::machine::memory::GuestMem;
use crate::machine::memslots::{MemSlots, CHUNK};
use crate::machine::paging::{
    self, PageTables, NO_EXECUTE, PAGE_1G, PAGE_2M, PAGE_4K, USER, WRITABLE,
};
use crate::machine::vcpu::{setup, Vcpu};
use crate::{Error, RunReport};
use kvm_bindings::CpuId;
use kvm_ioctls::{Kvm, VmFd};
use std::io::Write;
use std::sync::Arc;
use umon_abi::boot::{
    region_kind, BootInfo, MemRegion, BOOT_MAGIC, CMDLINE_BYTES, MAX_MEM_REGIONS,
};
use umon_abi::layout::{
    namespace_base, APP_PHYS_BASE, BOOT_GDT, BOOT_INFO, CORE_IMAGE_END, FIRST_APP_NAMESPACE,
    KERNEL_BASE, NAMESPACE_BYTES, PAGE_TABLES_END,
};
use umon_abi::{Gpa, Gva, ABI_VERSION};

/// Stack of the CPL3 syscall loop (Mode::SyscallLoop).
const LOOP_STACK_BYTES: u64 = 64 << 10;

/// A VM ready to run.
pub struct Vm {
    // Field order is drop order: the vCPU and VM fds go before the memory they map.
    vcpu: Vcpu,
    state: LinuxGuest,
    _vm: Arc<VmFd>,
    _kvm: Kvm,
    mem: GuestMem,
    /// The platform the VM runs on.
    pub platform: Platform,
    timeout: Option<std::time::Duration>,
    seccomp: bool,
}

impl Vm {
    /// Build a VM from `config` whose application uses umon's own stdin, stdout and stderr.
    pub fn new(config: &Config) -> Result<Vm, Error> {
        Self::with_stdio(config, Stdio::inherit())
    }

    /// Build a VM whose guest output goes to the given writers (and reads no input).
    pub fn with_output(
        config: &Config,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Result<Vm, Error> {
        Self::with_stdio(config, Stdio::capture(stdout, stderr))
    }

    /// Build a VM with the given standard streams.
    pub fn with_stdio(config: &Config, stdio: Stdio) -> Result<Vm, Error> {
        Self::build(config, stdio, crate::machine::stop::KillHandle::new())
    }

    /// Build a VM with the given standard streams, stopped by `kill` (see [`crate::Builder`]).
    pub fn build(
        config: &Config,
        stdio: Stdio,
        kill: crate::machine::stop::KillHandle,
    ) -> Result<Vm, Error> {
        config.validate().map_err(Error::Config)?;
        let t0 = std::time::Instant::now();
        let phase = |what: &str| log::debug!("{what} after {:?}", t0.elapsed());
        let kvm = kvm::open()?;
        let platform = Platform::detect();
        let vm = kvm.create_vm().map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VM",
            source,
        })?;
        let vm = Arc::new(vm);
        let mem = GuestMem::new(config.memory_bytes)?;
        let mut slots = MemSlots::new(vm.clone(), &mem, kvm.get_nr_memslots() as u32)?;
        // The boot area, core, page tables and (for the self-test loop) its stack.
        slots.ensure(0, CHUNK)?;
        if config.mode == Mode::Selftest {
            // The self-check reads the end of RAM through the windows.
            slots.ensure(0, mem.bytes())?;
        }

        phase("KVM VM and guest RAM");
        let core = load_core(config, &mem)?;
        let (cpuid, features) = setup::guest_cpuid(&kvm, platform)?;
        let window_page = if features.gib_pages { PAGE_1G } else { PAGE_2M };

        let mut pt = PageTables::new(&mem)?;
        map_core(&mut pt, &mem, &core)?;
        paging::map_windows(&mut pt, &mem, window_page)?;
        phase("core loaded, CPUID, page tables");

        let mut info = BootInfo {
            magic: BOOT_MAGIC,
            abi_version: ABI_VERSION,
            mode: config.mode.boot_mode() as u32,
            ram_bytes: mem.bytes(),
            tsc_khz: 0,
            app_entry: 0,
            app_stack: 0,
            loop_count: 0,
            mem_map_len: 0,
            _pad: 0,
            mem_map: [MemRegion::default(); MAX_MEM_REGIONS],
            cmdline: [0; CMDLINE_BYTES],
        };
        let map = [
            (BOOT_GDT, PAGE_TABLES_END, region_kind::BOOT),
            (KERNEL_BASE, CORE_IMAGE_END, region_kind::CORE),
            (APP_PHYS_BASE, mem.bytes(), region_kind::RAM),
        ];
        for (i, (start, end, kind)) in map.iter().enumerate() {
            info.mem_map[i] = MemRegion {
                start: *start,
                len: end - start,
                kind: *kind,
                _pad: 0,
            };
        }
        info.mem_map_len = map.len() as u32;

        let mut state = LinuxGuest {
            stdio,
            process: Default::default(),
            stop: kill,
            trace: config.trace.map(crate::linux::trace::Tracer::new),
        };
        if config.mode == Mode::Run {
            let app_config = config
                .app
                .as_ref()
                .ok_or_else(|| Error::Config("no application to run".into()))?;
            let facts = AuxFacts {
                hwcap: hwcap(&cpuid),
            };
            let app = place::load(&mem, &mut pt, app_config.program(), &facts)?;
            // Image, stack and the first heap chunk; brk/mmap register the rest as handed out.
            slots.ensure(0, app.arena_pa + CHUNK)?;
            log::debug!(
                "app {} entry {:#x} stack {:#x}",
                app_config.path.display(),
                app.entry,
                app.rsp
            );
            phase("app loaded");
            info.app_entry = app.entry;
            info.app_stack = app.rsp;
            let p = &mut state.process;
            p.space = AddrSpace::new(
                app.regions,
                Arena::new(app.arena.start, app.arena.end, app.arena.pa),
            );
            p.bias = app.bias;
            p.exe_image = Some(app.image);
            p.slots = Some(slots);
            p.prctl = crate::linux::PrctlState::new(app_config.path.as_os_str().as_encoded_bytes());
            p.exe = app.exe;
            for n in 0..3u8 {
                if state.stdio.is_closed(n) {
                    // As after execve with that fd closed: the app's fd n is free.
                    let _ = p.fds.close(u64::from(n));
                }
            }
            p.fs = FileSystem::new(&app_config.volumes, app_config.workdir.as_deref()).map_err(
                |e| match std::error::Error::source(&e) {
                    Some(cause) => Error::Config(format!("{e}: {cause}")),
                    None => Error::Config(e.to_string()),
                },
            )?;
        }
        if let Mode::SyscallLoop(count) = config.mode {
            // A small CPL3 stack in the first application namespace; the loop itself lives in
            // the core's user-visible page.
            let top = namespace_base(FIRST_APP_NAMESPACE) + NAMESPACE_BYTES;
            pt.map(
                &mem,
                Gva(top - LOOP_STACK_BYTES),
                Gpa(APP_PHYS_BASE),
                LOOP_STACK_BYTES,
                PAGE_4K,
                USER | WRITABLE | NO_EXECUTE,
            )?;
            info.app_stack = top;
            info.loop_count = count.max(1);
            state.process.echo_enabled = true;
        }

        setup::write_tables(&mem, &core, platform)?;
        let vcpu_fd = vm.create_vcpu(0).map_err(|source| KvmError::Ioctl {
            what: "KVM_CREATE_VCPU",
            source,
        })?;
        info.tsc_khz = vcpu_fd.get_tsc_khz().map(u64::from).unwrap_or(0);
        mem.write(Gpa(BOOT_INFO), &info)?;
        setup::configure(&vcpu_fd, &cpuid, features, &core, pt.root())?;
        phase("vCPU configured");
        log::debug!("platform {platform:?}, {} bytes of guest RAM", mem.bytes());

        Ok(Vm {
            vcpu: Vcpu::new(vcpu_fd),
            _vm: vm,
            _kvm: kvm,
            mem,
            state,
            platform,
            timeout: config.timeout,
            seccomp: config.seccomp,
        })
    }

    /// A handle that ends this VM from another thread while it runs.
    pub fn kill_handle(&self) -> crate::machine::stop::KillHandle {
        self.state.stop.clone()
    }

    /// Run the guest to its end (or until the time limit or a [`Vm::kill_handle`] stops it).
    pub fn run(mut self) -> Result<RunReport, Error> {
        let handle = self.state.stop.clone();
        let _running = handle.enter();
        let _timer = self
            .timeout
            .map(|limit| crate::machine::stop::Timer::start(&handle, limit));
        if self.seccomp {
            crate::machine::seccomp::confine()?;
        }
        let end = self.vcpu.run(&self.mem, &mut self.state)?;
        let status = end.status;
        if let Some(tracer) = &self.state.trace {
            let text = tracer
                .summary()
                .unwrap_or_else(|| crate::linux::trace::ending(&status));
            let _ = self.state.stdio.stderr.write_all(text.as_bytes());
        }
        Ok(RunReport {
            status,
            selftest: end.selftest,
        })
    }
}

fn load_core(config: &Config, mem: &GuestMem) -> Result<CoreImage, CoreError> {
    match &config.kernel {
        None => core::load_core(mem, core::BUILTIN_CORE, "(built-in)"),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| CoreError::CoreRead {
                path: path.display().to_string(),
                source,
            })?;
            core::load_core(mem, &bytes, &path.display().to_string())
        }
    }
}

/// Map the core VA = PA with 4 KiB pages and each segment's permissions; only the syscall stub
/// page is user-visible (PVM enters it at CPL3).
fn map_core(pt: &mut PageTables, mem: &GuestMem, core: &CoreImage) -> Result<(), Error> {
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

/// CPUID(1).EDX as the guest sees it: AT_HWCAP.
fn hwcap(cpuid: &CpuId) -> u64 {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 1)
        .map(|e| u64::from(e.edx))
        .unwrap_or(0)
}
