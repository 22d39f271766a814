//! A VM from start to end: `Vm::new` acquires everything (KVM, memory, page tables, core, vCPU),
//! `run(self)` consumes it, so no half-built or re-run VM can be observed. The face: it
//! assembles the machine, the application's image and the Linux process, in named steps.
use crate::config::{AppConfig, Config, Mode};
use crate::error::SignalError;
use crate::image::place::{self, AuxFacts};
use crate::linux::fs::private::PrivateDir;
use crate::linux::fs::synthetic::SysView;
use crate::linux::fs::volume::FileSystem;
use crate::linux::mm::space::{AddrSpace, Arena, ARENA_TOP};
use crate::linux::stdio::Stdio;
use crate::linux::{LinuxThread, PrctlState, Process, Thread};
use crate::machine::core;
use crate::machine::memory::GuestMem;
use crate::machine::memslots::CHUNK;
use crate::machine::paging::{PageTables, NO_EXECUTE, PAGE_2M, PAGE_4K, USER, WRITABLE};
use crate::machine::stop::KillHandle;
use crate::machine::vcpu::Vcpu;
use crate::machine::Machine;
use crate::{Error, RunReport};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, Weak};
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

/// Sends signals to a VM's application from any thread, as a process outside it would with
/// kill(2) (`umon run` passes on the SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
/// SIGWINCH and SIGCONT it receives the same way: [`crate::linux::signal::host::claim`]). The
/// application's disposition decides: its handler runs, an
/// ignored signal is dropped, and a default action that terminates ends the VM with
/// [`crate::ExitStatus::Signaled`] and an empty report (exit 128+N, no line). A
/// [`KillHandle`] stays the hard stop that no handler can delay.
///
/// Cheap to clone. Obtained from [`Vm::signal_handle`], or made first and given to
/// [`crate::Builder::signal_handle`] (or [`Vm::attach`]); until then signals wait in the handle
/// (each number once) and arrive when the VM is attached, before the application's first
/// instruction. Once the application has ended, [`SignalHandle::send`] fails with
/// [`SignalError::Ended`].
///
/// ```no_run
/// use umon::{Builder, ExitStatus, SignalHandle};
///
/// let signals = SignalHandle::new();
/// let vm = Builder::new("target/server").signal_handle(&signals).build()?;
/// let sender = signals.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(1));
///     // Graceful shutdown: the application's SIGTERM handler runs.
///     let _ = sender.send(libc::SIGTERM);
/// });
/// let report = vm.run()?;
/// println!("{:?}", report.status);
/// # Ok::<(), umon::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct SignalHandle {
    target: Arc<Mutex<SignalTarget>>,
}

/// Where a [`SignalHandle`] sends.
#[derive(Default)]
struct SignalTarget {
    /// The application of a built VM (gone once it ended) and the kicker of its vCPUs.
    process: Option<(Weak<Process>, KillHandle)>,
    /// Before that: the signals sent so far (bit n-1 for signal n).
    waiting: u64,
}

impl SignalHandle {
    /// A handle for a VM not built yet.
    pub fn new() -> SignalHandle {
        SignalHandle::default()
    }

    /// Send signal `sig` (1..=64) to the application, process-directed, with kill's siginfo
    /// from outside its pid namespace: SI_USER, si_pid 0, si_uid umon's uid (which the
    /// application sees as its own). Returns once it is queued; the thread that takes it is
    /// interrupted at once, in guest code or a blocking call (EINTR, or restarted under
    /// SA_RESTART). Callable from any thread, signal storms included (standard signals
    /// coalesce while pending, as on Linux).
    pub fn send(&self, sig: i32) -> Result<(), Error> {
        if !(1..=crate::linux::signal::NSIG as i32).contains(&sig) {
            return Err(SignalError::Invalid(sig).into());
        }
        let mut target = crate::linux::process::locked(&self.target);
        match &target.process {
            None => {
                target.waiting |= signal_bit(sig);
                Ok(())
            }
            Some((process, kicker)) => {
                let process = process.upgrade().ok_or(SignalError::Ended)?;
                forward(&process, kicker, sig)
            }
        }
    }

    /// Point this handle at `process`, and send it what waited.
    fn attach(&self, process: &Arc<Process>, kicker: &KillHandle) -> Result<(), Error> {
        let mut target = crate::linux::process::locked(&self.target);
        target.process = Some((Arc::downgrade(process), kicker.clone()));
        let waiting = std::mem::take(&mut target.waiting);
        (1..=crate::linux::signal::NSIG as i32)
            .filter(|sig| waiting & signal_bit(*sig) != 0)
            .try_for_each(|sig| forward(process, kicker, sig))
    }
}

fn signal_bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// kill(2) from a process outside the application's pid namespace (Linux gives it si_pid 0).
fn forward(process: &Process, kicker: &KillHandle, sig: i32) -> Result<(), Error> {
    let mut info = crate::linux::abi::SigInfo {
        signo: sig,
        code: crate::linux::abi::SI_USER,
        ..Default::default()
    };
    info.fields[0] = crate::machine::host::ids().uid << 32;
    crate::linux::signal::send_to_process(process, kicker, info)
        .map_err(|_| SignalError::Invalid(sig).into())
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
        let exitless = config.mode == Mode::Run && config.exitless.resolve();
        let core = load_core(&machine, config.kernel.as_deref(), exitless)?;
        let mut pt = machine.page_tables(&core)?;
        phase("core loaded, CPUID, page tables");

        let mut info = boot_info(config.mode, &machine.mem);
        let mut process = Process::with_stdio(stdio);
        process.boot = crate::linux::process::BootEnv {
            memory_bytes: config.memory_bytes,
            kernel: config.kernel.clone(),
            run_forked: Some(run_forked),
            exitless: exitless && core.exitless.is_some(),
            net: crate::linux::net::NetEnv::new(
                config
                    .app
                    .as_ref()
                    .map(|a| a.net.clone())
                    .unwrap_or_default(),
            ),
        };
        if process.boot.exitless {
            process.exitless = Some(Default::default());
        }
        // Guest RAM the placement below hands out, reserved in the machine's frame allocator.
        let mut placed = Vec::new();
        let mut table_reserve = None;
        match config.mode {
            Mode::Run => {
                let app = config
                    .app
                    .as_ref()
                    .ok_or_else(|| Error::Config("no application to run".into()))?;
                (placed, table_reserve) =
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
                placed.push((Gpa(APP_PHYS_BASE), LOOP_STACK_BYTES));
                process.echo_enabled = true;
            }
            _ => {}
        }
        process.cpus = config.cpus();
        process.trace = config
            .trace
            .map(|mode| crate::linux::trace::Tracer::new(mode).into());
        let vcpu = start_machine(
            &machine,
            &core,
            &pt,
            &placed,
            table_reserve,
            &mut info,
            config.mode == Mode::Run,
        )?;
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

    /// A handle that sends signals to this VM's application from another thread.
    pub fn signal_handle(&self) -> SignalHandle {
        let handle = SignalHandle::new();
        // Nothing waits in a new handle, so nothing can fail.
        let _ = handle.attach(&self.process, &self.machine.stop);
        handle
    }

    /// Make `signals` (a handle made before this VM) send to this VM's application; what it
    /// was sent meanwhile is sent now, to arrive before the application's first instruction.
    pub fn attach(&self, signals: &SignalHandle) -> Result<(), Error> {
        signals.attach(&self.process, &self.machine.stop)
    }

    /// Run the guest to its end (or until the time limit or a [`Vm::kill_handle`] stops it).
    pub fn run(self) -> Result<RunReport, Error> {
        let Vm {
            vcpu,
            thread,
            process,
            machine,
            timeout,
            seccomp,
        } = self;
        let handle = machine.stop.clone();
        let _timer = timeout.map(|limit| crate::machine::stop::Timer::start(&handle, limit));
        // The kick handler is installed at the first entry, before the filter forbids it.
        drop(handle.enter(thread.parker.clone()));
        if seccomp {
            // Every further vCPU thread (and forked monitor) is started by a vCPU thread, so
            // it inherits the filter from its first instruction.
            crate::machine::seccomp::confine()?;
        }
        // Signals to umon (`umon run`'s): the intake thread is confined like this one.
        crate::linux::signal::host::start(&process, &machine.stop)?;
        let (ran, last) = match run_images(machine, &process, vcpu, thread) {
            Ok((selftest, last)) => (Ok(selftest), Some(last)),
            Err(e) => (Err(e), None),
        };
        // Its mappings of shared files go now, as a dead process's do.
        if let Some(last) = &last {
            last.mem.drop_overlays();
        }
        // pid 1 ended: so does every process it started.
        process.end_family();
        // The private /tmp goes now, not with the last reference to the process: a signal
        // watcher may hold one for a moment while umon exits.
        drop(process.fs_mut().private.take());
        // The VM and its RAM are torn down off the way of the report (see `retire`); the file
        // view goes with the process, here: a library caller finds every host fd of the VM's
        // closed once `run` returns.
        retire(last);
        // Kicked again if stopped: umon's own last lines must not outlive a stop.
        let _last = handle.enter(Arc::default());
        let selftest = ran?;
        let status = process.exit.take()?;
        if let Some(tracer) = &process.trace {
            let text = crate::linux::process::locked(tracer)
                .summary()
                .unwrap_or_else(|| crate::linux::trace::ending(&status));
            let _ = process.stdio.stderr.write_all(text.as_bytes());
        }
        let exitless_served = process.exitless.as_ref().map_or(0, |s| s.served());
        Ok(RunReport {
            status,
            selftest,
            exitless_served,
        })
    }
}

/// Tear an ended machine down on a thread of its own: closing the VM fd (KVM frees its shadow
/// pages and memslots and waits out an SRCU grace period) and unmapping guest RAM take 0.5-3 ms
/// on PVM, which the caller of [`Vm::run`] need not wait for. If no thread can be started, the
/// failed spawn drops it here. At process exit the kernel finishes what the thread has not.
fn retire(machine: Option<Arc<Machine>>) {
    let Some(machine) = machine else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("old-vm".into())
        .stack_size(64 << 10)
        .spawn(move || drop(machine));
}

/// After placement: the page tables written and adopted (from here on they change only
/// through the machine, by edits the core applies), the table reserve set aside, vCPU 0 set
/// up, and for an application the vDSO's time page (anchored to the guest TSC, which needs a
/// vCPU).
fn start_machine(
    machine: &Machine,
    core: &core::CoreImage,
    pt: &PageTables,
    placed: &[(Gpa, u64)],
    table_reserve: TableReserve,
    info: &mut BootInfo,
    app: bool,
) -> Result<Vcpu, Error> {
    pt.write(&machine.mem)?;
    machine.adopt_tables(pt.root(), core, placed);
    reserve_tables(machine, table_reserve)?;
    let vcpu = machine.first_vcpu(core, pt.root(), info)?;
    if app {
        crate::linux::vdso::publish(&machine.mem, vcpu.fd(), info.tsc_khz)?;
    }
    Ok(vcpu)
}

/// Run a process's first thread (on `vcpu`) and the others to the end, and again in a new
/// VM after every exec: what the last run's first thread brought back (the self-test report),
/// and the last machine, for the caller to drop once the end is reported.
fn run_images(
    mut machine: Arc<Machine>,
    process: &Arc<Process>,
    mut vcpu: Vcpu,
    mut thread: Thread,
) -> Result<(Option<crate::SelftestReport>, Arc<Machine>), Error> {
    loop {
        let running = machine.stop.enter(thread.parker.clone());
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
        if let Some(server) = &process.exitless {
            server.end(&machine);
        }
        // A vfork child's writes into its parent's frames go back before the parent goes on.
        crate::linux::family::vfork::send_back(process, &machine.mem);
        let Some(request) = process.take_exec() else {
            return Ok((selftest, machine));
        };
        if let Some(reason) = machine.stop.requested() {
            // Stopped while leaving for the new image: the stop decides the end.
            process.exit.reset();
            process.exit_group(&machine, reason.status());
            return Ok((selftest, machine));
        }
        drop(vcpu);
        (machine, vcpu, thread) = exec_image(machine, process, request)?;
    }
}

/// The core (built-in, or `kernel`), placed in `machine`'s RAM; without `exitless` its
/// exit-less stub is left unused (no window mapped, every vCPU enters the plain stub).
fn load_core(
    machine: &Machine,
    kernel: Option<&std::path::Path>,
    exitless: bool,
) -> Result<core::CoreImage, Error> {
    let mut core = core::load(&machine.mem, kernel)?;
    if !exitless {
        core.exitless = None;
    }
    Ok(core)
}

/// exec: the same process in a new VM running `req`'s program (the old VM gone first).
fn exec_image(
    old: Arc<Machine>,
    process: &Arc<Process>,
    req: crate::linux::family::exec::ExecRequest,
) -> Result<(Arc<Machine>, Vcpu, Thread), Error> {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| log::debug!("exec: {what} after {:?}", t0.elapsed());
    process.reset_for_exec(&req);
    let stop = old.stop.clone();
    stop.settle();
    // Tearing the old VM down (its fd, its RAM) takes about 0.4 ms on PVM: not on the way.
    let _ = std::thread::Builder::new()
        .name("old-vm".into())
        .stack_size(64 << 10)
        .spawn(move || drop(old));
    phase("old VM handed off");
    let boot = process.boot.clone();
    let machine = Machine::new(boot.memory_bytes, false, stop)?;
    phase("KVM VM and guest RAM");
    let core = load_core(&machine, boot.kernel.as_deref(), boot.exitless)?;
    let mut pt = machine.page_tables(&core)?;
    phase("core and page tables");
    let mut info = boot_info(Mode::Run, &machine.mem);
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&req.path));
    let program = crate::image::place::Program {
        path: &path,
        args: &req.args,
        env: &req.env,
        bytes: Some(&req.bytes),
    };
    let placed = {
        let fs = process.fs();
        place_program(&machine, &mut pt, program, &fs, &mut info)?
    };
    phase("program placed");
    *process.space_mut() = placed.space;
    *process.symbols.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(placed.symbols));
    *process.exe.write().unwrap_or_else(|e| e.into_inner()) = placed.exe;
    *process.image.write().unwrap_or_else(|e| e.into_inner()) =
        crate::linux::process::Image::Bytes(req.bytes.clone());
    {
        let mut fs = process.fs_mut();
        fs.view = SysView::new(&req.args, &req.env);
        fs.view.auxv = placed.auxv;
    }
    let vcpu = start_machine(
        &machine,
        &core,
        &pt,
        &placed.placed,
        placed.tables,
        &mut info,
        true,
    )?;
    let thread = Thread::main(process.tgid, req.sigmask);
    process.add_first_thread(&thread);
    phase("vCPU configured");
    Ok((Arc::new(machine), vcpu, thread))
}

/// A forked process's run, on the thread its monitor made for it: its first vCPU (the forking
/// thread's registers, `start`), the vDSO's time page anchored to the new VM's TSC, then
/// [`run_images`]. Its end (SIGKILL if its machine failed) is reported to the parent before
/// the VM is torn down, so the parent's wait does not wait for that.
fn run_forked(
    machine: Arc<Machine>,
    process: &Arc<Process>,
    thread: Thread,
    start: &crate::machine::vcpu::setup::UserStart,
) -> crate::ExitStatus {
    let ran = (|| -> Result<(crate::ExitStatus, Arc<Machine>), Error> {
        let vcpu = machine
            .fork_vcpu(start)
            .map_err(|e| Error::Config(format!("fork: the child's vCPU: {e}")))?;
        crate::linux::vdso::publish(&machine.mem, vcpu.fd(), Machine::tsc_khz(&vcpu))?;
        process.add_first_thread(&thread);
        // Signals from other processes and the host from here on: a thread exists to take
        // them (one sent before is in the table and taken now).
        process
            .family
            .start_mailbox(process, process.tgid, &machine.stop);
        crate::linux::signal::host::start(process, &machine.stop)?;
        let (_, last) = run_images(machine, process, vcpu, thread)?;
        Ok((process.exit.take()?, last))
    })();
    let (status, last) = match ran {
        Ok((status, last)) => (status, Some(last)),
        Err(e) => {
            log::warn!("pid {}: {e}", process.tgid);
            let killed = crate::ExitStatus::Signaled {
                signal: libc::SIGKILL,
                report: String::new(),
            };
            (killed, None)
        }
    };
    // The process's mappings of shared files go before its parent learns of the end (as a
    // dead process's memory is gone on Linux: F_SEAL_WRITE, for one, must then succeed).
    if let Some(machine) = &last {
        machine.mem.drop_overlays();
    }
    process.space_mut().drop_files();
    process.report_end(&status);
    drop(last);
    status
}

/// The boot information the core starts from (the TSC rate and the entry follow later).
fn boot_info(mode: Mode, mem: &GuestMem) -> BootInfo {
    let mut info = BootInfo {
        magic: BOOT_MAGIC,
        abi_version: ABI_VERSION,
        mode: mode.boot_mode() as u32,
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
/// describe the Linux process it starts as. Returns the guest RAM it occupies.
fn place_app(
    machine: &Machine,
    pt: &mut PageTables,
    app_config: &AppConfig,
    info: &mut BootInfo,
    process: &mut Process,
) -> Result<(Vec<(Gpa, u64)>, TableReserve), Error> {
    let mut volumes = app_config.volumes.clone();
    let private = if app_config.no_private_dirs {
        None
    } else {
        PrivateDir::create(&volumes)
            .map_err(|e| Error::Config(format!("creating the private /tmp: {e}")))?
            .map(|(dir, extra)| {
                volumes.extend(extra);
                dir
            })
    };
    let mut fs = FileSystem::new(&volumes, app_config.workdir.as_deref()).map_err(|e| {
        match std::error::Error::source(&e) {
            Some(cause) => Error::Config(format!("{e}: {cause}")),
            None => Error::Config(e.to_string()),
        }
    })?;
    fs.private = private;
    fs.view = SysView::new(&app_config.args, &app_config.env);
    // The file system first: a dynamically linked program's interpreter is found in it.
    let placed = place_program(machine, pt, app_config.program(), &fs, info)?;
    fs.view.auxv = placed.auxv;
    process.space = placed.space.into();
    process.symbols = Some(Arc::new(placed.symbols)).into();
    process.prctl = PrctlState::new(app_config.path.as_os_str().as_encoded_bytes()).into();
    process.exe = placed.exe.into();
    process.image = match &app_config.bytes {
        Some(b) => crate::linux::process::Image::Bytes(b.clone()),
        None => crate::linux::process::Image::Host(app_config.path.clone()),
    }
    .into();
    process.fs = fs.into();
    Ok((placed.placed, placed.tables))
}

/// A program placed in a new VM: the guest RAM it occupies, the table reserve, and what the
/// process keeps of it.
struct Placed {
    placed: Vec<(Gpa, u64)>,
    tables: TableReserve,
    space: AddrSpace,
    symbols: crate::image::symbols::Symbols,
    exe: Vec<u8>,
    auxv: Vec<u8>,
}

/// Place `program` (image, stack, the start of the heap; known to KVM from here), its
/// interpreter found in `fs`.
fn place_program(
    machine: &Machine,
    pt: &mut PageTables,
    program: place::Program<'_>,
    fs: &FileSystem,
    info: &mut BootInfo,
) -> Result<Placed, Error> {
    let facts = AuxFacts {
        hwcap: machine.hwcap(),
    };
    let open = |path: &[u8]| crate::linux::fs::open_for_exec(fs, path);
    let app = place::load(&machine.mem, pt, program, &facts, &open)?;
    log::debug!(
        "app {} entry {:#x} stack {:#x}",
        program.path.display(),
        app.entry,
        app.rsp
    );
    info.app_entry = app.entry;
    info.app_stack = app.rsp;
    // The auxv the loader put on the stack, kept before the program can change it.
    let auxv = app
        .regions
        .iter()
        .find(|r| (r.start..r.end).contains(&app.rsp))
        .map(|r| {
            let sp = Gpa(r.pa + (app.rsp - r.start));
            crate::linux::fs::synthetic::auxv_on_stack(&machine.mem, sp)
        })
        .unwrap_or_default();
    // The image and the stack below the arena; the arena itself for as long as the Linux
    // layer hands its frames out by itself (not from the machine's `Frames`), but for its
    // first frames, which `Frames` keeps for page tables: splitting 2 MiB leaves takes one
    // table per 2 MiB of arena at most (1/512 of it), and every replaced table leaves a frame
    // that can never be a table again, so four times that. The arena gives up as much of its
    // virtual top (unmapped before start: the application must never reach its tables), and
    // its frames start after the reserve, so KVM learns the reserve together with the image,
    // the stack and the first heap chunk: one memslot registration at start, not two (each
    // 0.1-2 ms on PVM, an SRCU grace period).
    let mut arena = app.arena;
    let arena_bytes = arena.end - arena.start;
    let table_bytes = (arena_bytes / 128).next_multiple_of(PAGE_2M) + PAGE_2M;
    let mut tables = None;
    if arena_bytes >= 4 * table_bytes {
        arena.end -= table_bytes;
        tables = Some((Gva(arena.end), Gpa(arena.pa), table_bytes));
        arena.pa += table_bytes;
    }
    // Image, stack, the table reserve and the first heap chunk; the heap's frames register
    // the rest as handed out.
    machine.ensure_backed(0, arena.pa + CHUNK)?;
    let placed = vec![
        (Gpa(APP_PHYS_BASE), app.arena.pa - APP_PHYS_BASE),
        (Gpa(arena.pa), arena.end - arena.start),
    ];
    let regions = app
        .regions
        .into_iter()
        .map(|r| if r.start == arena.start { arena } else { r })
        .collect();
    Ok(Placed {
        placed,
        tables,
        space: AddrSpace::lazy(
            regions,
            Arena::new(arena.start, ARENA_TOP, arena.pa),
            arena.end - arena.start,
        ),
        symbols: app.symbols,
        exe: app.exe,
        auxv,
    })
}

/// Guest RAM `place_app` keeps for page tables: the virtual range that mapped it before,
/// its address and size.
type TableReserve = Option<(Gva, Gpa, u64)>;

/// Unmap the table reserve from the application (before start: host writes) and make it
/// known to KVM, where the core stores into the tables taken from it.
fn reserve_tables(machine: &Machine, reserve: TableReserve) -> Result<(), Error> {
    let Some((va, gpa, len)) = reserve else {
        return Ok(());
    };
    let (batch, _) = machine
        .unmap(va, len)
        .map_err(|e| Error::Config(format!("reserving page-table memory: {e}")))?;
    batch.apply_host(&machine.mem)?;
    machine.ensure_backed(gpa.0, len)?;
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
