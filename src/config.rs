//! Validated plain configuration with sane defaults.
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use umon_abi::boot::BootMode;

/// Default guest RAM: 1 GiB (backed lazily, so only what the guest touches costs host memory).
pub const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;
/// Smallest guest RAM umon accepts.
pub const MIN_MEMORY_BYTES: u64 = 16 << 20;
/// Largest guest RAM umon accepts. The 1 MiB page-table area holds the tables of the three
/// linear windows and of the application's heap arena, all of them the size of RAM and built
/// from 2 MiB pages where the platform has no 1 GiB pages (PVM): 48 GiB leaves room for an
/// image of about 100 MiB.
pub const MAX_MEMORY_BYTES: u64 = 48 << 30;
/// Guest RAM is a whole number of these (the windows use 2 MiB pages).
pub const MEMORY_GRANULE: u64 = 2 << 20;

/// What the core does once booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run the application.
    Run,
    /// Verify the memory layout from inside the guest.
    Selftest,
    /// Boot and exit at once (boot benchmarks).
    BootOnly,
    /// Run `n` syscall round trips from CPL3 and check every result.
    SyscallLoop(u64),
}

impl Mode {
    pub(crate) fn boot_mode(self) -> BootMode {
        match self {
            Mode::Run => BootMode::RunApp,
            Mode::Selftest => BootMode::Selftest,
            Mode::BootOnly => BootMode::ExitAtOnce,
            Mode::SyscallLoop(_) => BootMode::SyscallLoop,
        }
    }
}

/// How to build one VM.
#[derive(Clone, Debug)]
pub struct Config {
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// A core ELF to use instead of the built-in one.
    pub kernel: Option<PathBuf>,
    /// What the core does.
    pub mode: Mode,
    /// The application ([`Mode::Run`]).
    pub app: Option<AppConfig>,
    /// Trace the application's syscalls on its stderr.
    pub trace: Option<crate::linux::trace::TraceMode>,
    /// End the VM after this long (exit status 124, like timeout(1)).
    pub timeout: Option<std::time::Duration>,
    /// Confine the thread that runs the VM with a seccomp filter before the first guest
    /// instruction ([`crate::machine::seccomp`]). It stays confined after `run` returns, so a library
    /// user should run the VM on a thread of its own. The CLI turns this on.
    pub seccomp: bool,
    /// How many CPUs the application is told it has (sched_getaffinity); None: the host CPUs
    /// umon itself may use.
    pub cpus: Option<u32>,
    /// Exit-less syscalls (`--exitless`): serve frequent non-blocking calls through shared
    /// memory instead of a VM exit.
    pub exitless: Exitless,
}

/// Whether a VM serves syscalls exit-less (`linux::exitless`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exitless {
    /// On when the host has a CPU to spare for the server (more than one available).
    #[default]
    Auto,
    /// Always (even on one CPU, where the server competes with the guest).
    On,
    /// Never: every syscall is a VM exit, as with no server.
    Off,
}

impl Exitless {
    /// On or off for a VM started now.
    pub fn resolve(self) -> bool {
        match self {
            Exitless::On => true,
            Exitless::Off => false,
            Exitless::Auto => std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        }
    }
}

impl std::str::FromStr for Exitless {
    type Err = String;
    fn from_str(s: &str) -> Result<Exitless, String> {
        match s {
            "auto" => Ok(Exitless::Auto),
            "on" => Ok(Exitless::On),
            "off" => Ok(Exitless::Off),
            other => Err(format!("--exitless {other}: expected on, off or auto")),
        }
    }
}

/// Most CPUs `--cpus` may name: KVM's vCPU limit on the hosts umon runs on.
pub const MAX_CPUS: u32 = umon_abi::layout::MAX_VCPUS;

impl Config {
    /// The CPUs the application is told it has.
    pub fn cpus(&self) -> u32 {
        self.cpus.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
                .min(MAX_CPUS)
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            kernel: None,
            mode: Mode::Run,
            app: None,
            trace: None,
            timeout: None,
            seccomp: false,
            cpus: None,
            exitless: Exitless::Auto,
        }
    }
}

impl Config {
    /// Check the values; the error says which and why.
    pub fn validate(&self) -> Result<(), String> {
        let m = self.memory_bytes;
        if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&m) {
            return Err(format!(
                "memory size {} is outside {}..={}",
                format_size(m),
                format_size(MIN_MEMORY_BYTES),
                format_size(MAX_MEMORY_BYTES)
            ));
        }
        if m % MEMORY_GRANULE != 0 {
            return Err(format!(
                "memory size {} is not a multiple of 2M",
                format_size(m)
            ));
        }
        if let Some(app) = &self.app {
            app.net.validate()?;
        }
        if let Some(n) = self.cpus {
            if !(1..=MAX_CPUS).contains(&n) {
                return Err(format!("--cpus {n} is outside 1..={MAX_CPUS}"));
            }
        }
        Ok(())
    }
}

/// Parse a duration: `1.5` or `1.5s` (seconds), `500ms`, `2m`, `1h`.
///
/// ```
/// use std::time::Duration;
/// use umon::config::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
/// assert!(parse_duration("0").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("'{text}' is not a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `1s`, `1500ms`: how umon prints a duration it was given.
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parse a size with an optional K/M/G/T suffix (binary units, case-insensitive, optional "iB"/"B").
///
/// ```
/// use umon::config::parse_size;
/// assert_eq!(parse_size("64M"), Ok(64 << 20));
/// assert_eq!(parse_size("1GiB"), Ok(1 << 30));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let stripped = lower.trim_end_matches("ib").trim_end_matches('b');
    let (digits, shift) = match stripped.chars().last() {
        Some('k') => (&stripped[..stripped.len() - 1], 10),
        Some('m') => (&stripped[..stripped.len() - 1], 20),
        Some('g') => (&stripped[..stripped.len() - 1], 30),
        Some('t') => (&stripped[..stripped.len() - 1], 40),
        _ => (stripped, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| {
        format!("invalid size '{text}': expected a number with an optional K, M, G or T suffix")
    })?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// Human-readable binary size ("1G", "512M", "4096").
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The program to run.
#[derive(Clone, Debug, Default)]
pub struct AppConfig {
    /// Host path of the executable.
    pub path: PathBuf,
    /// argv, including `argv[0]`.
    pub args: Vec<OsString>,
    /// The environment, as "KEY=VALUE".
    pub env: Vec<OsString>,
    /// The executable's bytes, when the caller holds them instead of a file at `path` (`path`
    /// is then only its name, for argv\[0\] and /proc/self/exe).
    pub bytes: Option<Arc<[u8]>>,
    /// Host directories the app may see; nothing else of the host file system is visible.
    pub volumes: Vec<crate::linux::fs::volume::VolumeSpec>,
    /// The initial working directory, a guest path (default "/").
    pub workdir: Option<String>,
    /// Give the guest no private writable `/tmp` and `/dev/shm` (by default umon provides them
    /// from a host temporary directory it removes at the end, unless a volume provides them).
    pub no_private_dirs: bool,
    /// What the application may reach of the network (`--net`, `--publish`; default: nothing
    /// but AF_UNIX inside its volumes).
    pub net: crate::linux::net::NetPolicy,
}

impl AppConfig {
    /// The part the image loader needs.
    pub fn program(&self) -> crate::image::place::Program<'_> {
        crate::image::place::Program {
            path: &self.path,
            args: &self.args,
            env: &self.env,
            bytes: self.bytes.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn memory_limits_are_checked() {
        let ok = Config::default();
        assert!(ok.validate().is_ok());
        assert!(Config {
            memory_bytes: 1 << 20,
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert!(Config {
            memory_bytes: (1 << 30) + 4096,
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert!(Config {
            memory_bytes: 1 << 40,
            ..ok
        }
        .validate()
        .is_err());
    }

    #[test]
    fn sizes_format_back() {
        assert_eq!(format_size(1 << 30), "1G");
        assert_eq!(format_size(3 << 20), "3M");
        assert_eq!(format_size(1000), "1000");
    }
}
