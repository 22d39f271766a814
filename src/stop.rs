//! Ending a running VM from outside: a [`KillHandle`] (another thread, a timeout, SIGINT/SIGTERM
//! to umon) records why and kicks the vCPU thread out of KVM_RUN or a blocking host call with a
//! real-time signal whose handler does nothing; the run loop sees the reason and ends the VM.
use crate::ExitStatus;
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

    /// End the VM for `reason` (the first reason wins).
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.shared.reason.lock() {
            r.get_or_insert(reason);
        }
        self.shared.requested.store(true, Ordering::SeqCst);
        // The vCPU thread may be between its check and KVM_RUN; kick until it has left run().
        for _ in 0..1000 {
            let Ok(runner) = self.shared.runner.lock() else {
                return;
            };
            let Some(thread) = *runner else {
                return;
            };
            let _ = crate::host::signal_thread(thread, kick_signal());
            drop(runner);
            std::thread::sleep(Duration::from_millis(1));
        }
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
            *r = Some(crate::host::current_thread());
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
