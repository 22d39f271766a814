//! A VM from start to end: `Vm::new` acquires everything (KVM, memory, page tables, core, vCPU),
//! `run(self)` consumes it, so no half-built or re-run VM can be observed. The face: it
//! assembles the machine, the application's image and the Linux process, in named steps.
use crate::config::{AppConfig, Config, Mode};
use crate::image::place::{self, AuxFacts};
use crate::linux::fs::volume::FileSystem;
use crate::linux::mm::space::{AddrSpace, Arena};
use crate::linux::stdio::Stdio;
use crate::linux::{LinuxThread, PrctlState, Process, Thread};
use crate::machine::core;
use crate::machine::memory::GuestMem;
use crate::machine::memslots::CHUNK;
use crate::machine::paging::{PageTables, NO_EXECUTE, PAGE_4K, USER, WRITABLE};
use crate::machine::stop::KillHandle;
use crate::machine::vcpu::Vcpu;
use crate::machine::Machine;
use crate::{Error, RunReport};
use std::io::Write;
use std::sync::Arc;
use umon_abi::boot::{
    region_kind, BootInfo, MemRegion, BOOT_MAGIC, CMDLINE_BYTES, MAX_MEM_REGIONS,
};
use umon_abi::layout::{
    namespace_base, APP_PHYS_BASE, BOOT_GDT, CORE_IMAGE_END, FIRST_APP_NAMESPACE, KERNEL_BASE,
    NAMESPACE_BYTES, PAGE_TABLES_END,
};
use umon_abi::{Gpa, Gva, ABI_VERSION};

/// Stack of the CPL3 syscall loop (Mode::SyscallLoop).
const LOOP_STACK_BYTES: u64 = 64 << 10;

/// A VM ready to run.
pub struct Vm {
    // Field order is drop order: the vCPU fd goes before the machine (VM fd, then RAM).
    vcpu: Vcpu,
    thread: Thread,
    process: Arc<Process>,
    machine: Arc<Machine>,
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
        Self::build(config, stdio, KillHandle::new())
    }

    /// Build a VM with the given standard streams, stopped by `kill` (see [`crate::Builder`]):
    /// the machine and its core, the page tables, the boot information, then what the mode
    /// runs (the application, or the self-test's stack), then vCPU 0.
    pub fn build(config: &Config, stdio: Stdio, kill: KillHandle) -> Result<Vm, Error> {
        config.validate().map_err(Error::Config)?;
        let t0 = std::time::Instant::now();
        let phase = |what: &str| log::debug!("{what} after {:?}", t0.elapsed());
        // The self-check reads the end of RAM through the windows: KVM must know all of it.
        let register_all = config.mode == Mode::Selftest;
        let machine = Machine::new(config.memory_bytes, register_all, kill)?;
        phase("KVM VM and guest RAM");
        let core = core::load(&machine.mem, config.kernel.as_deref())?;
        let mut pt = machine.page_tables(&core)?;
        phase("core loaded, CPUID, page tables");

        let mut info = boot_info(config, &machine.mem);
        let mut process = Process::with_stdio(stdio);
        match config.mode {
            Mode::Run => {
                let app = config
                    .app
                    .as_ref()
                    .ok_or_else(|| Error::Config("no application to run".into()))?;
                place_app(&machine, &mut pt, app, &mut info, &mut process)?;
                for n in 0..3u8 {
                    if process.stdio.is_closed(n) {
                        // As after execve with that fd closed: the app's fd n is free.
                        let _ = process.fds().close(u64::from(n));
                    }
                }
                phase("app loaded");
            }
            Mode::SyscallLoop(count) => {
                selftest_stack(&machine.mem, &mut pt, &mut info, count)?;
                process.echo_enabled = true;
            }
            _ => {}
        }
        process.cpus = config.cpus();
        process.trace = config
            .trace
            .map(|mode| crate::linux::trace::Tracer::new(mode).into());

        let vcpu = machine.first_vcpu(&core, pt.root(), &mut info)?;
        phase("vCPU configured");
        log::debug!(
            "platform {:?}, {} bytes of guest RAM",
            machine.platform,
            machine.mem.bytes()
        );
        let machine = Arc::new(machine);
        let thread = Thread::first();
        process.add_first_thread(&thread);
        Ok(Vm {
            vcpu,
            thread,
            process: Arc::new(process),
            machine,
            timeout: config.timeout,
            seccomp: config.seccomp,
        })
    }

    /// A handle that ends this VM from another thread while it runs.
    pub fn kill_handle(&self) -> KillHandle {
        self.machine.stop.clone()
    }

    /// Run the guest to its end (or until the time limit or a [`Vm::kill_handle`] stops it).
    pub fn run(self) -> Result<RunReport, Error> {
        let Vm {
            mut vcpu,
            thread,
            process,
            machine,
            timeout,
            seccomp,
        } = self;
        let handle = machine.stop.clone();
        let running = handle.enter(thread.parker.clone());
        let _timer = timeout.map(|limit| crate::machine::stop::Timer::start(&handle, limit));
        if seccomp {
            // Every further vCPU thread is started by a vCPU thread, so it inherits the filter
            // from its first instruction.
            crate::machine::seccomp::confine()?;
        }
        let mut first = LinuxThread {
            machine: machine.clone(),
            process: process.clone(),
            thread,
        };
        let end = vcpu.run(&machine.mem, &mut first);
        drop(running);
        let selftest = end.as_ref().ok().and_then(|e| e.selftest);
        first.finish(end);
        machine.join_threads();
        // Kicked again if stopped: umon's own last lines must not outlive a stop.
        let _last = handle.enter(Arc::default());
        let status = process.exit.take()?;
        if let Some(tracer) = &process.trace {
            let text = crate::linux::process::locked(tracer)
                .summary()
                .unwrap_or_else(|| crate::linux::trace::ending(&status));
            let _ = process.stdio.stderr.write_all(text.as_bytes());
        }
        Ok(RunReport { status, selftest })
    }
}

/// The boot information the core starts from (the TSC rate and the entry follow later).
fn boot_info(config: &Config, mem: &GuestMem) -> BootInfo {
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
    info
}

/// Place the application (image, stack, the start of the heap; known to KVM from here) and
/// describe the Linux process it starts as.
fn place_app(
    machine: &Machine,
    pt: &mut PageTables,
    app_config: &AppConfig,
    info: &mut BootInfo,
    process: &mut Process,
) -> Result<(), Error> {
    let facts = AuxFacts {
        hwcap: machine.hwcap(),
    };
    let app = place::load(&machine.mem, pt, app_config.program(), &facts)?;
    // Image, stack and the first heap chunk; brk/mmap register the rest as handed out.
    machine.ensure_backed(0, app.arena.pa + CHUNK)?;
    log::debug!(
        "app {} entry {:#x} stack {:#x}",
        app_config.path.display(),
        app.entry,
        app.rsp
    );
    info.app_entry = app.entry;
    info.app_stack = app.rsp;
    let fs = FileSystem::new(&app_config.volumes, app_config.workdir.as_deref()).map_err(|e| {
        match std::error::Error::source(&e) {
            Some(cause) => Error::Config(format!("{e}: {cause}")),
            None => Error::Config(e.to_string()),
        }
    })?;
    process.space = AddrSpace::new(
        app.regions,
        Arena::new(app.arena.start, app.arena.end, app.arena.pa),
    )
    .into();
    process.symbols = Some(app.symbols);
    process.prctl = PrctlState::new(app_config.path.as_os_str().as_encoded_bytes()).into();
    process.exe = app.exe;
    process.fs = fs.into();
    Ok(())
}

/// The self-test's CPL3 loop: a small stack in the first application namespace (the loop itself
/// lives in the core's user-visible page).
fn selftest_stack(
    mem: &GuestMem,
    pt: &mut PageTables,
    info: &mut BootInfo,
    count: u64,
) -> Result<(), Error> {
    let top = namespace_base(FIRST_APP_NAMESPACE) + NAMESPACE_BYTES;
    pt.map(
        mem,
        Gva(top - LOOP_STACK_BYTES),
        Gpa(APP_PHYS_BASE),
        LOOP_STACK_BYTES,
        PAGE_4K,
        USER | WRITABLE | NO_EXECUTE,
    )?;
    info.app_stack = top;
    info.loop_count = count.max(1);
    Ok(())
}
