//! The `umon` command: clap turns the command line into a `Config`, errors become one line on
//! stderr and an exit code. Nothing else lives here.
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use umon::config::AppConfig;
use umon::config::{format_duration, format_size, parse_duration, parse_size};
use umon::error::EXIT_UMON_FAILED;
use umon::linux::trace::TraceMode;
use umon::{Config, ExitStatus, Mode, Vm};

/// The exit-code table of every command's help (a macro: `concat!` takes only literals).
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  N      the application's own exit status, passed straight through
  128+N  the application was killed by signal N (a fault: SIGSEGV=139, SIGILL=132, SIGFPE=136)
  125    umon itself failed (no /dev/kvm, guest crash, bad option)
  126    the application cannot be executed (not a usable ELF)
  127    the application was not found"
    };
}

const EXIT_CODES: &str = exit_codes!();

/// The signals umon passes on to the app (`umon run`); SIGINT, SIGTERM and SIGHUP first: the
/// ones that end the other commands.
const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

const RUN_HELP: &str = concat!(
    "\
Signals:
  SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGCONT sent to umon go to
  the app as kill(2) from outside would send them: its handler runs (a SIGTERM handler can shut
  down gracefully and exit 0), an ignored one is dropped (SIGWINCH, SIGCONT by default), and one
  whose default action ends the app makes umon exit 128+N without a line. An app that handles or
  ignores them keeps running: SIGKILL to umon or --timeout end it regardless. SIGSTOP and SIGTSTP
  stop umon itself, VM and all; SIGCONT resumes it.

",
    exit_codes!()
);

#[derive(Parser)]
#[command(name = "umon", version, about = "Run one Linux program in a KVM micro-VM", after_help = EXIT_CODES)]
struct Cli {
    /// Print a register dump with guest crashes.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct VmArgs {
    /// Guest RAM, with an optional K/M/G suffix (backed lazily: only touched memory costs).
    #[arg(long, short = 'm', default_value = "1G", value_parser = parse_size)]
    memory: u64,
    /// Use this guest core ELF instead of the built-in one.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Do not confine the monitor with its seccomp filter (for debugging the monitor).
    #[arg(long)]
    no_seccomp: bool,
    /// End the VM after this long and exit 124, like timeout(1) (e.g. 10s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Tell the app it has N CPUs (sched_getaffinity); default: the host CPUs umon may use.
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// Serve frequent syscalls that cannot block (getpid, clock and stat calls, reads and writes
    /// of regular files, /dev/null and non-blocking sockets and pipes, futex wakes) through
    /// memory shared with a polling monitor thread instead of a VM exit. The thread polls only
    /// while calls keep coming and sleeps after 300us without one. auto: on when the host has
    /// more than one CPU.
    #[arg(long, value_name = "on|off|auto", default_value = "auto")]
    exitless: umon::config::Exitless,
}

#[derive(Subcommand)]
enum Command {
    /// List the Linux syscalls umon serves, one per line, with what is partial about each
    /// (the README's list; any other syscall is ENOSYS with one note).
    Syscalls,
    /// Run a static Linux x86-64 executable (static-pie or static) in a micro-VM.
    ///
    /// The app gets umon's stdin, stdout and stderr, an empty environment unless -e is given,
    /// and a small generated system (/dev, /proc, /sys, /etc/passwd, a private /tmp) plus the
    /// host directories granted with -v or --root; its exit status becomes umon's.
    #[command(after_help = RUN_HELP, override_usage = "umon run [OPTIONS] APP [ARGS]...")]
    Run {
        #[command(flatten)]
        vm: VmArgs,
        /// Print every syscall of the app on stderr like strace (`--trace`), or a count/time
        /// table at exit like `strace -c` (`--trace=summary`).
        #[arg(
            long,
            value_name = "MODE",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "calls",
            value_parser = ["calls", "summary"]
        )]
        trace: Option<String>,
        /// Grant a host directory: HOST_DIR:GUEST_PATH[:ro|:rw], read-only unless :rw
        /// (repeatable; the longest matching guest path wins). Without any, the app sees no files.
        #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro|:rw]", value_parser = umon::linux::fs::volume::parse_spec)]
        volumes: Vec<umon::linux::fs::volume::VolumeSpec>,
        /// A host directory as the app's `/` (read-only unless :rw), confined like a volume:
        /// `--root /` runs the host's own static programs. The synthetic /dev, /proc and /sys
        /// and any -v volumes mount over it; a read-only root gets a private writable /tmp.
        #[arg(long, value_name = "DIR[:rw]", value_parser = umon::linux::fs::volume::parse_root)]
        root: Option<umon::linux::fs::volume::VolumeSpec>,
        /// The network: `none` (default: AF_UNIX inside volumes, socketpairs and the app's own
        /// abstract names; INET sockets reach nothing, as in an empty network namespace) or
        /// `host` (the host's network, unfiltered).
        #[arg(long, value_name = "none|host", default_value = "none", value_parser = umon::linux::net::policy::parse_net)]
        net: umon::linux::net::policy::NetMode,
        /// Publish a port (with --net none): the app's wildcard bind of GUEST_PORT binds
        /// HOST_IP:HOST_PORT on the host (all addresses by default); the app still sees
        /// GUEST_PORT. Repeatable; nothing else is reachable and nothing goes out.
        #[arg(short = 'p', long = "publish", value_name = "[HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|udp]", value_parser = umon::linux::net::policy::parse_publish)]
        publish: Vec<umon::linux::net::policy::Publish>,
        /// The app's initial working directory, a guest path.
        #[arg(long, short = 'w', value_name = "GUEST_PATH", default_value = "/")]
        workdir: String,
        /// Set KEY=VALUE in the app's environment, or copy KEY from umon's own (repeatable).
        #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
        env: Vec<OsString>,
        /// The executable (a host path; a name without a slash is looked up in umon's own PATH,
        /// as a shell would), then its arguments: everything from APP on goes to the app
        /// untouched, options included (argv[0] stays as given).
        #[arg(
            value_name = "APP",
            required = true,
            num_args = 1..,
            trailing_var_arg = true
        )]
        command: Vec<OsString>,
    },
    /// Show where an application would be placed and how it would start, without running it.
    Inspect {
        /// Guest RAM to lay it out in, with an optional K/M/G suffix.
        #[arg(long, short = 'm', default_value = "1G", value_parser = parse_size)]
        memory: u64,
        /// The executable, a host path (a name without a slash is looked up in PATH).
        #[arg(value_name = "APP")]
        app: PathBuf,
    },
    /// Print the guest memory map for a given RAM size.
    Layout {
        /// Guest RAM, with an optional K/M/G suffix.
        #[arg(long, short = 'm', default_value = "1G", value_parser = parse_size)]
        memory: u64,
    },
    /// Boot the core and let it verify the memory layout from inside the guest.
    Selftest {
        #[command(flatten)]
        vm: VmArgs,
        /// Instead, run N syscall round trips from CPL3 and check every result.
        #[arg(long, value_name = "N")]
        syscall_loop: Option<u64>,
        /// Test hook: confine umon with its seccomp filter, then make a forbidden syscall.
        #[arg(long, hide = true)]
        seccomp_violation: bool,
    },
    /// Boot the core and exit at once (measures start-up).
    Boot {
        #[command(flatten)]
        vm: VmArgs,
    },
}

/// Which of fds 0, 1, 2 were closed when umon started (bit n for fd n). Recorded before Rust's
/// runtime starts, because that opens /dev/null on a closed standard fd; the app must see such
/// an fd closed (EBADF), as after execve.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

extern "C" fn record_closed_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the fd's flags; any fd number is a valid argument.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED_AT_START.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
}

// Runs from the C runtime's constructors, before `main` and Rust's fd sanitizing.
#[used]
#[link_section = ".init_array"]
static RECORD_CLOSED_STD_FDS: extern "C" fn() = record_closed_std_fds;

/// One line (or more) of umon's own on stderr. Never panics and never changes the exit status:
/// a closed or broken stderr loses the text, and a reader that does not take it within
/// [`SAY_PATIENCE`] loses it too, so a stalled reader cannot keep umon alive after its VM ended.
fn say(text: &str) {
    let mut buf = text.as_bytes();
    let stderr = rustix::stdio::stderr();
    while !buf.is_empty() {
        let mut fds = [rustix::event::PollFd::new(
            &stderr,
            rustix::event::PollFlags::OUT,
        )];
        let patience = rustix::time::Timespec {
            tv_sec: SAY_PATIENCE.as_secs() as i64,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&patience)) {
            Ok(1) if !fds[0].revents().intersects(rustix::event::PollFlags::ERR) => {}
            _ => return,
        }
        // At most PIPE_BUF bytes: a pipe that polls writable takes them without blocking.
        let part = &buf[..buf.len().min(libc::PIPE_BUF)];
        match rustix::io::write(stderr, part) {
            Ok(n) if n > 0 => buf = &buf[n..],
            _ => return,
        }
    }
}

/// How long [`say`] waits for stderr to take a line.
const SAY_PATIENCE: Duration = Duration::from_secs(1);

/// umon's output on stdout (inspect, layout, selftest); a closed or broken stdout loses it.
fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            say(&format!("umon: {}\n", chain(&e)));
            if let (true, umon::Error::Vcpu(v)) = (cli.verbose, &e) {
                if let Some(dump) = v.dump() {
                    say(&format!("umon: registers: {dump}\n"));
                }
            }
            e.exit_code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The host file `name` runs: itself if it has a slash, else the first executable regular
/// file of that name in umon's PATH (execvp's search), else `name` unchanged (a file of that
/// name in the working directory, or "no such file").
fn find_app(name: &std::ffi::OsStr) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    if name.as_bytes().contains(&b'/') || name.is_empty() {
        return PathBuf::from(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(cli: &Cli) -> Result<i32, umon::Error> {
    match &cli.command {
        Command::Run {
            vm,
            env,
            command,
            trace,
            volumes,
            root,
            workdir,
            net,
            publish,
        } => {
            let net = umon::linux::net::NetPolicy {
                mode: *net,
                publish: publish.clone(),
            };
            let config = Config {
                trace: trace.as_deref().map(|t| match t {
                    "summary" => TraceMode::Summary,
                    _ => TraceMode::Calls,
                }),
                app: Some(AppConfig {
                    path: find_app(&command[0]),
                    args: command.clone(),
                    env: environment(env),
                    volumes: volumes.iter().chain(root).cloned().collect(),
                    workdir: Some(workdir.clone()),
                    net,
                    ..Default::default()
                }),
                ..vm_config(vm, Mode::Run)
            };
            let report = run_vm(&config)?;
            if let ExitStatus::Signaled { report, .. } = &report.status {
                if !report.is_empty() {
                    say(&format!("umon: {report}\n"));
                }
            }
            Ok(report.status.code())
        }
        Command::Inspect { memory, app } => {
            let cfg = AppConfig {
                path: find_app(app.as_os_str()),
                ..Default::default()
            };
            let (plan, lay) =
                umon::image::place::inspect(cfg.program(), *memory).map_err(umon::Error::from)?;
            out(&umon::inspect::render(
                &app.display().to_string(),
                &plan,
                &lay,
                *memory,
            ));
            Ok(0)
        }
        Command::Syscalls => {
            out(&umon::linux::table::render());
            Ok(0)
        }
        Command::Layout { memory } => {
            let config = Config {
                memory_bytes: *memory,
                ..Default::default()
            };
            config.validate().map_err(umon::Error::Config)?;
            out(&umon::layout_map::render(*memory));
            Ok(0)
        }
        Command::Selftest {
            seccomp_violation: true,
            ..
        } => {
            umon::machine::seccomp::confine()?;
            // getppid is not on the list: the filter must end umon before it returns.
            let _ = rustix::process::getppid();
            say("umon: selftest: the seccomp filter let a forbidden syscall through\n");
            Ok(1)
        }
        Command::Selftest {
            vm, syscall_loop, ..
        } => {
            let mode = match syscall_loop {
                Some(n) => Mode::SyscallLoop(*n),
                None => Mode::Selftest,
            };
            let report = run_vm(&vm_config(vm, mode))?;
            if let Some(n) = syscall_loop {
                return Ok(match report.status {
                    ExitStatus::Exited(0) => {
                        out(&format!(
                            "selftest: {n} syscall round trips from CPL3, every result correct\n"
                        ));
                        0
                    }
                    other => {
                        say(&format!(
                            "umon: selftest: syscall loop failed ({other:?})\n"
                        ));
                        1
                    }
                });
            }
            match report.selftest {
                Some(r) if r.failed == 0 => {
                    out(&format!(
                        "selftest: {} layout checks passed ({} of RAM, {} expected faults caught)\n",
                        r.checks,
                        format_size(vm.memory),
                        r.faults_caught
                    ));
                    Ok(0)
                }
                Some(r) => {
                    say(&format!(
                        "umon: selftest: layout checks failed: {}\n",
                        describe_failures(r.failed)
                    ));
                    Ok(1)
                }
                None => {
                    say("umon: selftest: the core exited without a report\n");
                    Ok(EXIT_UMON_FAILED)
                }
            }
        }
        Command::Boot { vm } => Ok(run_vm(&vm_config(vm, Mode::BootOnly))?.status.code()),
    }
}

/// How long past `--timeout` umon waits for its VM to stop before it exits regardless.
const WATCHDOG_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Build and run one VM. The signals of [`FORWARDED`] to umon go to the app (the other modes
/// end at SIGINT/SIGTERM/SIGHUP with exit 128+N); a time limit that passes is one line and
/// exit 124. Both are armed before the VM is built, so a slow start is covered too.
fn run_vm(config: &Config) -> Result<umon::RunReport, umon::Error> {
    // First, before anything here opens an fd that could be mistaken for a standard one.
    let mut stdio = umon::linux::stdio::Stdio::inherit();
    let closed = CLOSED_AT_START.load(Ordering::Relaxed);
    if closed & 1 != 0 {
        stdio.stdin = umon::linux::stdio::Source::Closed;
    }
    if closed & 2 != 0 {
        stdio.stdout = umon::linux::stdio::Sink::Closed;
    }
    if closed & 4 != 0 {
        stdio.stderr = umon::linux::stdio::Sink::Closed;
    }
    // Before the time limit's thread exists: a thread that does not block these would take
    // them itself.
    if config.mode == Mode::Run {
        umon::linux::signal::host::claim(&FORWARDED)?;
    }
    let handle = umon::machine::stop::KillHandle::new();
    let _timer = config
        .timeout
        .map(|limit| umon::machine::stop::Timer::start(&handle, limit));
    if let Some(limit) = config.timeout {
        // The last resort, should a monitor thread itself be stuck: the VM stops within
        // microseconds of the limit, so this thread normally dies with the process.
        std::thread::spawn(move || {
            std::thread::sleep(limit + WATCHDOG_GRACE);
            say(&format!(
                "umon: app timed out after {} (the monitor did not stop within {} s more)\n",
                format_duration(limit),
                WATCHDOG_GRACE.as_secs()
            ));
            std::process::exit(umon::exit::EXIT_TIMED_OUT);
        });
    }
    // The other modes end at SIGINT, SIGTERM and SIGHUP, with exit 128+N.
    if config.mode != Mode::Run {
        let ends = &FORWARDED[..3];
        match signal_hook::iterator::Signals::new(ends) {
            Ok(mut incoming) => {
                let stopper = handle.clone();
                std::thread::spawn(move || {
                    if let Some(sig) = incoming.forever().next() {
                        stopper.stop(umon::machine::stop::StopReason::Signal(sig));
                    }
                });
            }
            Err(e) => log::warn!("cannot watch for signals: {e}"),
        }
        // From here on they go to the watcher thread, never to this (vCPU) thread or those it
        // starts, which the seccomp filter keeps from running signal-hook's handler.
        for &sig in ends {
            if let Err(e) = vmm_sys_util::signal::block_signal(sig) {
                log::warn!("cannot block signal {sig} on the vCPU thread: {e}");
            }
        }
    }
    let vm = Vm::build(
        &Config {
            timeout: None,
            ..config.clone()
        },
        stdio,
        handle,
    )?;
    // What arrived while the VM was built is still pending, and reaches the app at its first
    // syscall (or sooner: linux::signal::host).
    let report = vm.run()?;
    if let ExitStatus::TimedOut(limit) = report.status {
        say(&format!(
            "umon: app timed out after {}\n",
            format_duration(limit)
        ));
    }
    Ok(report)
}

fn vm_config(args: &VmArgs, mode: Mode) -> Config {
    Config {
        memory_bytes: args.memory,
        kernel: args.kernel.clone(),
        mode,
        app: None,
        trace: None,
        timeout: args.timeout,
        seccomp: !args.no_seccomp,
        cpus: args.cpus,
        exitless: args.exitless,
    }
}

/// `-e KEY=VALUE` as given; `-e KEY` takes KEY from umon's own environment (left out if unset).
fn environment(specs: &[OsString]) -> Vec<OsString> {
    specs
        .iter()
        .filter_map(|spec| {
            if spec.as_bytes().contains(&b'=') {
                return Some(spec.clone());
            }
            let value = std::env::var_os(spec)?;
            let mut entry = spec.clone();
            entry.push("=");
            entry.push(value);
            Some(entry)
        })
        .collect()
}

fn describe_failures(bits: u64) -> String {
    use umon_abi::hypercall::selftest::*;
    let names = [
        (WINDOWS_ALIAS, "phys_mem windows do not alias"),
        (CORE_IDENTITY, "core region is not VA = PA"),
        (PAGE0_MAPPED, "page 0 is mapped"),
        (DEBUG_MAPPED, "Debug area is mapped"),
        (RAM_END, "end of RAM unreachable"),
        (PAST_RAM_MAPPED, "memory past RAM is mapped"),
        (CORE_WRITABLE, "core tables or image writable"),
    ];
    let hit: Vec<_> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    hit.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
