//! `umon run --trace`: the application's syscalls on stderr in strace's format, or a count/time
//! table at exit (`--trace=summary`, like `strace -c`).
use crate::linux::mm::space::AddrSpace;
use crate::linux::stdio::Sink;
use crate::machine::memory::GuestMem;
use std::collections::BTreeMap;
use std::time::Duration;
use syscalls::{Errno, Sysno};

/// What to trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// One line per syscall.
    Calls,
    /// A table at exit.
    Summary,
}

/// How a call ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// It returned this (negative errno on failure).
    Returned(i64),
    /// The process ended in it (exit, fatal signal).
    Ended,
}

/// One finished syscall.
pub struct Call {
    /// Number.
    pub nr: u64,
    /// Argument registers.
    pub args: [u64; 6],
    /// Result.
    pub result: Outcome,
    /// Time spent in the monitor.
    pub took: Duration,
    /// The calling thread's tid, once the process has more than one thread (strace -f's
    /// `[pid  N] ` prefix).
    pub tid: Option<u32>,
}

/// Per-syscall totals for the summary.
#[derive(Default, Clone, Copy)]
struct Totals {
    calls: u64,
    errors: u64,
    time: Duration,
}

/// The summary's key for every number Linux does not know: one row for all of them, so the
/// table stays bounded whatever numbers the guest tries.
const UNKNOWN: u64 = u64::MAX;

/// The tracer of one VM.
pub struct Tracer {
    mode: TraceMode,
    /// Keyed by syscall number ([`UNKNOWN`] for the rest): at most one row per Linux syscall.
    totals: BTreeMap<u64, Totals>,
}

impl Tracer {
    /// A tracer in `mode`.
    pub fn new(mode: TraceMode) -> Tracer {
        Tracer {
            mode,
            totals: BTreeMap::new(),
        }
    }

    /// A tracer in the same mode with nothing counted (a forked child's).
    pub fn fresh(&self) -> Tracer {
        Tracer::new(self.mode)
    }

    /// Account for (and in [`TraceMode::Calls`], print) a finished call.
    pub fn record(&mut self, call: &Call, mem: &GuestMem, space: &AddrSpace, out: &Sink) {
        let known = usize::try_from(call.nr).ok().and_then(Sysno::new).is_some();
        let t = self
            .totals
            .entry(if known { call.nr } else { UNKNOWN })
            .or_default();
        t.calls += 1;
        t.time += call.took;
        if matches!(call.result, Outcome::Returned(r) if r < 0) {
            t.errors += 1;
        }
        if self.mode == TraceMode::Calls {
            let line = match call.tid {
                Some(tid) => format!("[pid {tid:>5}] {}\n", render(call, mem, space)),
                None => format!("{}\n", render(call, mem, space)),
            };
            let _ = out.write_all(line.as_bytes());
        }
    }

    /// A line that is not a call (a signal's delivery), in [`TraceMode::Calls`] only.
    pub fn note(&mut self, line: &str, tid: Option<u32>, out: &Sink) {
        if self.mode != TraceMode::Calls {
            return;
        }
        let line = match tid {
            Some(tid) => format!("[pid {tid:>5}] {line}\n"),
            None => format!("{line}\n"),
        };
        let _ = out.write_all(line.as_bytes());
    }

    /// The `strace -c` table, in [`TraceMode::Summary`]; None otherwise.
    pub fn summary(&self) -> Option<String> {
        if self.mode != TraceMode::Summary {
            return None;
        }
        let total: Duration = self.totals.values().map(|t| t.time).sum();
        let mut rows: Vec<(&u64, &Totals)> = self.totals.iter().collect();
        rows.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(b.0)));
        let mut s = String::from(
            "% time     seconds  usecs/call     calls    errors syscall\n\
             ------ ----------- ----------- --------- --------- ----------------\n",
        );
        let (mut calls, mut errors) = (0, 0);
        for (nr, t) in rows {
            let pct = if total.is_zero() {
                0.0
            } else {
                100.0 * t.time.as_secs_f64() / total.as_secs_f64()
            };
            let per = t.time.as_micros() as u64 / t.calls.max(1);
            let errs = if t.errors > 0 {
                t.errors.to_string()
            } else {
                String::new()
            };
            s.push_str(&format!(
                "{pct:6.2} {:11.6} {per:11} {:9} {errs:>9} {}\n",
                t.time.as_secs_f64(),
                t.calls,
                if *nr == UNKNOWN {
                    "(unknown numbers)".to_string()
                } else {
                    name(*nr)
                }
            ));
            calls += t.calls;
            errors += t.errors;
        }
        s.push_str(&format!(
            "------ ----------- ----------- --------- --------- ----------------\n\
             100.00 {:11.6} {:11} {calls:9} {errors:9} total\n",
            total.as_secs_f64(),
            total.as_micros() as u64 / calls.max(1),
        ));
        Some(s)
    }
}

/// glibc's strerror text for errnos 0..=133, which strace prints (the kernel's own comments,
/// which the `syscalls` crate has, differ: "Bad file number").
const STRERROR: [&str; 134] = [
    "Success",
    "Operation not permitted",
    "No such file or directory",
    "No such process",
    "Interrupted system call",
    "Input/output error",
    "No such device or address",
    "Argument list too long",
    "Exec format error",
    "Bad file descriptor",
    "No child processes",
    "Resource temporarily unavailable",
    "Cannot allocate memory",
    "Permission denied",
    "Bad address",
    "Block device required",
    "Device or resource busy",
    "File exists",
    "Invalid cross-device link",
    "No such device",
    "Not a directory",
    "Is a directory",
    "Invalid argument",
    "Too many open files in system",
    "Too many open files",
    "Inappropriate ioctl for device",
    "Text file busy",
    "File too large",
    "No space left on device",
    "Illegal seek",
    "Read-only file system",
    "Too many links",
    "Broken pipe",
    "Numerical argument out of domain",
    "Numerical result out of range",
    "Resource deadlock avoided",
    "File name too long",
    "No locks available",
    "Function not implemented",
    "Directory not empty",
    "Too many levels of symbolic links",
    "Unknown error 41",
    "No message of desired type",
    "Identifier removed",
    "Channel number out of range",
    "Level 2 not synchronized",
    "Level 3 halted",
    "Level 3 reset",
    "Link number out of range",
    "Protocol driver not attached",
    "No CSI structure available",
    "Level 2 halted",
    "Invalid exchange",
    "Invalid request descriptor",
    "Exchange full",
    "No anode",
    "Invalid request code",
    "Invalid slot",
    "Unknown error 58",
    "Bad font file format",
    "Device not a stream",
    "No data available",
    "Timer expired",
    "Out of streams resources",
    "Machine is not on the network",
    "Package not installed",
    "Object is remote",
    "Link has been severed",
    "Advertise error",
    "Srmount error",
    "Communication error on send",
    "Protocol error",
    "Multihop attempted",
    "RFS specific error",
    "Bad message",
    "Value too large for defined data type",
    "Name not unique on network",
    "File descriptor in bad state",
    "Remote address changed",
    "Can not access a needed shared library",
    "Accessing a corrupted shared library",
    ".lib section in a.out corrupted",
    "Attempting to link in too many shared libraries",
    "Cannot exec a shared library directly",
    "Invalid or incomplete multibyte or wide character",
    "Interrupted system call should be restarted",
    "Streams pipe error",
    "Too many users",
    "Socket operation on non-socket",
    "Destination address required",
    "Message too long",
    "Protocol wrong type for socket",
    "Protocol not available",
    "Protocol not supported",
    "Socket type not supported",
    "Operation not supported",
    "Protocol family not supported",
    "Address family not supported by protocol",
    "Address already in use",
    "Cannot assign requested address",
    "Network is down",
    "Network is unreachable",
    "Network dropped connection on reset",
    "Software caused connection abort",
    "Connection reset by peer",
    "No buffer space available",
    "Transport endpoint is already connected",
    "Transport endpoint is not connected",
    "Cannot send after transport endpoint shutdown",
    "Too many references: cannot splice",
    "Connection timed out",
    "Connection refused",
    "Host is down",
    "No route to host",
    "Operation already in progress",
    "Operation now in progress",
    "Stale file handle",
    "Structure needs cleaning",
    "Not a XENIX named type file",
    "No XENIX semaphores available",
    "Is a named type file",
    "Remote I/O error",
    "Disk quota exceeded",
    "No medium found",
    "Wrong medium type",
    "Operation canceled",
    "Required key not available",
    "Key has expired",
    "Key has been revoked",
    "Key was rejected by service",
    "Owner died",
    "State not recoverable",
    "Operation not possible due to RF-kill",
    "Memory page has hardware error",
];

/// The text strace gives errno `e`.
fn strerror(e: i32) -> String {
    usize::try_from(e)
        .ok()
        .and_then(|i| STRERROR.get(i))
        .map_or_else(|| format!("Unknown error {e}"), |s| (*s).to_string())
}

/// strace's last line: `+++ exited with 3 +++`.
pub fn ending(status: &crate::exit::ExitStatus) -> String {
    match status {
        crate::exit::ExitStatus::Exited(c) => format!("+++ exited with {c} +++\n"),
        crate::exit::ExitStatus::Signaled { signal, .. } => {
            format!(
                "+++ killed by {} +++\n",
                crate::linux::signal::signal_name(*signal)
            )
        }
        crate::exit::ExitStatus::TimedOut(d) => format!("+++ timed out after {d:?} +++\n"),
    }
}

/// The syscall's name, or `syscall_N`.
///
/// ```
/// assert_eq!(umon::linux::trace::name(57), "fork");
/// assert_eq!(umon::linux::trace::name(100_000), "syscall_0x186a0");
/// ```
pub fn name(nr: u64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(Sysno::new)
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| format!("syscall_{nr:#x}"))
}

/// strace's text for the kernel-internal restart errnos a call cut short by a signal returns.
fn restart_name(r: i64) -> Option<&'static str> {
    use crate::linux::signal::deliver::{
        ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, ERESTART_RESTARTBLOCK,
    };
    Some(match i32::try_from(-r).ok()? {
        ERESTARTSYS => "ERESTARTSYS (To be restarted if SA_RESTART is set)",
        ERESTARTNOINTR => "ERESTARTNOINTR (To be restarted)",
        ERESTARTNOHAND => "ERESTARTNOHAND (To be restarted if no handler)",
        ERESTART_RESTARTBLOCK => "ERESTART_RESTARTBLOCK (Interrupted by signal)",
        _ => return None,
    })
}

/// strace's line for a signal delivered to a handler:
/// `--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=1, si_uid=0} ---`.
pub fn signal_line(info: &crate::linux::abi::SigInfo) -> String {
    use crate::linux::abi::{SI_KERNEL, SI_QUEUE, SI_TKILL, SI_USER};
    use crate::linux::signal::signal_name;
    let name = signal_name(info.signo);
    let (pid, uid) = (info.fields[0] as u32 as i32, info.fields[0] >> 32);
    let body = match info.code {
        SI_USER => format!("si_code=SI_USER, si_pid={pid}, si_uid={uid}"),
        SI_TKILL => format!("si_code=SI_TKILL, si_pid={pid}, si_uid={uid}"),
        SI_QUEUE => format!(
            "si_code=SI_QUEUE, si_pid={pid}, si_uid={uid}, si_int={}, si_ptr={:#x}",
            info.fields[1] as u32 as i32, info.fields[1]
        ),
        SI_KERNEL => "si_code=SI_KERNEL, si_addr=NULL".to_string(),
        c => format!("si_code={c}"),
    };
    format!("--- {name} {{si_signo={name}, {body}}} ---")
}

/// One strace-style line: `write(1, "hi\n", 3) = 3`.
pub fn render(call: &Call, mem: &GuestMem, space: &AddrSpace) -> String {
    let args = crate::linux::trace::args::decode(call, mem, space);
    let result = match call.result {
        Outcome::Ended => "?".to_string(),
        Outcome::Returned(r) if restart_name(r).is_some() => {
            format!("? {}", restart_name(r).unwrap_or_default())
        }
        Outcome::Returned(r) if (-4095..0).contains(&r) => {
            let e = Errno::new(-r as i32);
            format!("-1 {} ({})", e.name().unwrap_or("E?"), strerror(-r as i32))
        }
        Outcome::Returned(r) => crate::linux::trace::args::ret(call.nr, r),
    };
    format!("{}({}) = {}", name(call.nr), args.join(", "), result)
}

pub mod args;

/// `--trace`: a signal goes to its handler on thread `tid` (strace's `--- SIG... ---` line).
pub fn signal_delivered(
    process: &crate::linux::Process,
    tid: u32,
    info: &crate::linux::abi::SigInfo,
) {
    if let Some(tracer) = &process.trace {
        let multi = process
            .multi_threaded
            .load(std::sync::atomic::Ordering::Relaxed);
        crate::linux::process::locked(tracer).note(
            &signal_line(info),
            multi.then_some(tid),
            &process.stdio.stderr,
        );
    }
}
