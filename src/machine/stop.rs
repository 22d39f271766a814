//! Ending a running VM from outside: a [`KillHandle`] (another thread, a timeout, SIGINT/SIGTERM
//! to umon) records why and kicks the vCPU thread out of KVM_RUN or a blocking host call with a
//! real-time signal whose handler does nothing; the run loop sees the reason and ends the VM.
use crate::exit::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// Why a VM was stopped from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// [`KillHandle::kill`]: reported as killed by SIGKILL.
    Killed,
    /// The time limit passed.
    TimedOut(Duration),
    /// umon received this signal (SIGINT, SIGTERM): reported as killed by it.
    Signal(i32),
}

impl StopReason {
    /// The status the VM ends with.
    pub fn status(&self) -> ExitStatus {
        match self {
            StopReason::Killed => ExitStatus::Signaled {
                signal: libc::SIGKILL,
                report: String::new(),
            },
            StopReason::TimedOut(d) => ExitStatus::TimedOut(*d),
            StopReason::Signal(s) => ExitStatus::Signaled {
                signal: *s,
                report: String::new(),
            },
        }
    }
}

#[derive(Default)]
struct Shared {
    requested: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    /// The thread inside `Vm::run`, while it is there.
    runner: Mutex<Option<libc::pthread_t>>,
    /// A kicker thread was started (one per VM is enough).
    kicking: AtomicBool,
}

/// Stops a VM from any thread. Cheap to clone; stopping a VM that already ended does nothing.
#[derive(Clone, Default)]
pub struct KillHandle {
    shared: Arc<Shared>,
}

/// The signal that kicks the vCPU thread (SIGRTMIN+1; umon installs a handler that does
/// nothing, so the only effect is EINTR).
pub fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN() + 1
}

static HANDLER: Once = Once::new();

/// Start the thread that kicks the runner until it leaves, once per VM.
fn start_kicker(shared: &Arc<Shared>) {
    if shared.kicking.swap(true, Ordering::SeqCst) {
        return;
    }
    let for_thread = shared.clone();
    let kicker = std::thread::Builder::new()
        .name("umon-kick".into())
        .spawn(move || kick_until_gone(&for_thread, None));
    let runner = shared.runner.lock().ok().and_then(|r| *r);
    if kicker.is_err() && runner != Some(crate::machine::host::current_thread()) {
        // No thread to spare: kick from here, for a bounded time.
        kick_until_gone(shared, Some(1000));
    }
}

/// Kick the runner every millisecond until it has left `Vm::run` (or `limit` kicks were sent).
/// A kick that lands between a check and a blocking call is lost; the next one is not.
fn kick_until_gone(shared: &Shared, limit: Option<u32>) {
    let mut sent = 0u32;
    while limit.is_none_or(|l| sent < l) {
        let Ok(runner) = shared.runner.lock() else {
            return;
        };
        let Some(thread) = *runner else {
            return;
        };
        let _ = crate::machine::host::signal_thread(thread, kick_signal());
        drop(runner);
        sent += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops a VM with [`StopReason::TimedOut`] once `limit` has passed; dropping it first (the
/// VM ended) ends its thread.
pub struct Timer {
    _cancel: std::sync::mpsc::Sender<()>,
}

impl Timer {
    /// Start the clock for `handle`'s VM.
    pub fn start(handle: &KillHandle, limit: Duration) -> Timer {
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let handle = handle.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                handle.stop(StopReason::TimedOut(limit));
            }
        });
        Timer { _cancel: cancel }
    }
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

impl KillHandle {
    /// A handle for a VM that has not started.
    pub fn new() -> KillHandle {
        KillHandle::default()
    }

    /// End the VM: the application is reported as killed by SIGKILL (exit 137).
    pub fn kill(&self) {
        self.stop(StopReason::Killed);
    }

    /// End the VM for `reason` (the first reason wins). Returns at once; the vCPU thread is
    /// kicked until it has left `Vm::run`, so no blocking host call it makes after the request
    /// (KVM_RUN, a write to a reader that never reads, umon's own last lines) outlives it.
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.shared.reason.lock() {
            r.get_or_insert(reason);
        }
        self.shared.requested.store(true, Ordering::SeqCst);
        let runner = self.shared.runner.lock().ok().and_then(|r| *r);
        if runner.is_none() || runner == Some(crate::machine::host::current_thread()) {
            // Not running yet (`enter` starts the kicker), or stopped from inside run (an
            // output callback): the run loop checks the request before every guest entry.
            return;
        }
        start_kicker(&self.shared);
    }

    /// Whether a stop was requested, and why.
    pub fn requested(&self) -> Option<StopReason> {
        if !self.shared.requested.load(Ordering::SeqCst) {
            return None;
        }
        self.shared.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Register the calling thread as the one running the VM (until the guard drops).
    pub(crate) fn enter(&self) -> RunGuard<'_> {
        HANDLER.call_once(|| {
            if let Err(e) = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick) {
                log::warn!("cannot install the vCPU kick handler: {e}");
            }
        });
        if let Ok(mut r) = self.shared.runner.lock() {
            *r = Some(crate::machine::host::current_thread());
        }
        if self.shared.requested.load(Ordering::SeqCst) {
            // Stopped while the VM was being built: kick the run's last writes too.
            start_kicker(&self.shared);
        }
        RunGuard { handle: self }
    }
}

/// Clears the registered runner thread when `Vm::run` returns, under the lock, so a kick never
/// targets a thread that left.
pub(crate) struct RunGuard<'a> {
    handle: &'a KillHandle,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.handle.shared.runner.lock() {
            *r = None;
        }
    }
}
