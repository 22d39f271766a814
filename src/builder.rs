//! The embedding API: build a VM for one application step by step, run it, get its status and
//! output. No global state: every [`Builder`] makes an independent VM, and VMs run concurrently
//! on as many threads as the caller likes.
//!
//! ```no_run
//! use umon::{Builder, Capture};
//!
//! let out = Capture::new();
//! let report = Builder::new("target/hello")
//!     .arg("world")
//!     .env("GREETING", "hi")
//!     .memory(256 << 20)
//!     .timeout(std::time::Duration::from_secs(10))
//!     .stdout(out.clone())
//!     .run()?;
//! println!("exit {}: {}", report.status.code(), out.text());
//! # Ok::<(), umon::Error>(())
//! ```
use crate::config::AppConfig;
use crate::config::{Config, Exitless, Mode};
use crate::linux::fs::volume::VolumeSpec;
use crate::linux::stdio::{Sink, Source, Stdio};
use crate::linux::trace::TraceMode;
use crate::machine::stop::KillHandle;
use crate::{Error, RunReport, SignalHandle, Vm};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Configures one VM running one application.
pub struct Builder {
    config: Config,
    app: AppConfig,
    stdin: Option<Source>,
    stdout: Option<Sink>,
    stderr: Option<Sink>,
    kill: Option<KillHandle>,
    signals: Option<SignalHandle>,
}

impl Builder {
    /// Run the executable at `path` (a host path; it is also argv\[0\]).
    pub fn new(path: impl Into<PathBuf>) -> Builder {
        let path = path.into();
        Builder {
            config: Config::default(),
            app: AppConfig {
                args: vec![path.clone().into_os_string()],
                path,
                ..Default::default()
            },
            stdin: None,
            stdout: None,
            stderr: None,
            kill: None,
            signals: None,
        }
    }

    /// Run an executable the caller holds in memory; `name` is its argv\[0\].
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: impl Into<Arc<[u8]>>) -> Builder {
        let mut b = Builder::new(name);
        b.app.bytes = Some(bytes.into());
        b
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Builder {
        self.app.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.app.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable (the environment starts empty).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Builder {
        let mut entry = key.into();
        entry.push("=");
        entry.push(value.into());
        self.app.env.push(entry);
        self
    }

    /// Guest RAM in bytes (default 1 GiB, backed lazily).
    pub fn memory(mut self, bytes: u64) -> Builder {
        self.config.memory_bytes = bytes;
        self
    }

    /// Grant a host directory.
    pub fn volume(mut self, volume: VolumeSpec) -> Builder {
        self.app.volumes.push(volume);
        self
    }

    /// Whether the guest gets a private writable `/tmp` and `/dev/shm` where no volume provides
    /// them (default: yes): a host temporary directory umon creates and removes at the end.
    pub fn private_dirs(mut self, on: bool) -> Builder {
        self.app.no_private_dirs = !on;
        self
    }

    /// What the application may reach of the network (default: [`NetMode::None`] with nothing
    /// published: AF_UNIX inside volumes only).
    ///
    /// [`NetMode::None`]: crate::linux::net::policy::NetMode::None
    pub fn net(mut self, policy: crate::linux::net::NetPolicy) -> Builder {
        self.app.net = policy;
        self
    }

    /// The initial working directory (a guest path).
    pub fn workdir(mut self, path: impl Into<String>) -> Builder {
        self.app.workdir = Some(path.into());
        self
    }

    /// End the VM after `limit` ([`crate::exit::ExitStatus::TimedOut`]).
    pub fn timeout(mut self, limit: Duration) -> Builder {
        self.config.timeout = Some(limit);
        self
    }

    /// Trace the application's syscalls on its stderr.
    pub fn trace(mut self, mode: TraceMode) -> Builder {
        self.config.trace = Some(mode);
        self
    }

    /// Tell the application it has `n` CPUs (sched_getaffinity; default: the host CPUs this
    /// process may use).
    pub fn cpus(mut self, n: u32) -> Builder {
        self.config.cpus = Some(n);
        self
    }

    /// Serve frequent non-blocking syscalls without a VM exit (default: [`Exitless::Auto`],
    /// on when the host has more than one CPU).
    pub fn exitless(mut self, mode: Exitless) -> Builder {
        self.config.exitless = mode;
        self
    }

    /// Confine the thread that calls `run` with umon's seccomp filter (for good).
    pub fn seccomp(mut self, on: bool) -> Builder {
        self.config.seccomp = on;
        self
    }

    /// The application's stdout goes to `w` (default: umon's own stdout).
    pub fn stdout(mut self, w: impl Write + Send + 'static) -> Builder {
        self.stdout = Some(Sink::writer(Box::new(w)));
        self
    }

    /// The application's stderr goes to `w` (default: umon's own stderr).
    pub fn stderr(mut self, w: impl Write + Send + 'static) -> Builder {
        self.stderr = Some(Sink::writer(Box::new(w)));
        self
    }

    /// The application reads its stdin from `r` (default: umon's own stdin).
    pub fn stdin(mut self, r: impl Read + Send + 'static) -> Builder {
        self.stdin = Some(Source::reader(Box::new(r)));
        self
    }

    /// Stop this VM with `handle` (from any thread, before or while it runs).
    pub fn kill_handle(mut self, handle: &KillHandle) -> Builder {
        self.kill = Some(handle.clone());
        self
    }

    /// Send signals to this VM's application with `handle` (from any thread, before or while it
    /// runs; see [`SignalHandle`]).
    pub fn signal_handle(mut self, handle: &SignalHandle) -> Builder {
        self.signals = Some(handle.clone());
        self
    }

    /// Create the VM (KVM, memory, the core, the application), ready to run.
    pub fn build(self) -> Result<Vm, Error> {
        let config = Config {
            mode: Mode::Run,
            app: Some(self.app),
            ..self.config
        };
        let inherit = Stdio::inherit;
        let stdio = match (self.stdin, self.stdout, self.stderr) {
            (None, None, None) => inherit(),
            (stdin, stdout, stderr) => {
                let host = inherit();
                Stdio {
                    stdin: stdin.unwrap_or(host.stdin),
                    stdout: stdout.unwrap_or(host.stdout),
                    stderr: stderr.unwrap_or(host.stderr),
                    quiet: Default::default(),
                }
            }
        };
        let vm = Vm::build(&config, stdio, self.kill.unwrap_or_default())?;
        if let Some(signals) = &self.signals {
            vm.attach(signals)?;
        }
        Ok(vm)
    }

    /// Build and run to the end.
    pub fn run(self) -> Result<RunReport, Error> {
        self.build()?.run()
    }
}

/// A writer that keeps what it is given, shared between clones: hand one clone to
/// [`Builder::stdout`] and read the output from another after the run.
#[derive(Clone, Default)]
pub struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Capture {
        Capture::default()
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.bytes.lock() {
            Ok(mut b) => {
                b.extend_from_slice(buf);
                Ok(buf.len())
            }
            Err(_) => Err(std::io::Error::other("capture poisoned")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
