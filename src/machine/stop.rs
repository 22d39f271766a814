//! Ending a running VM from outside: a [`KillHandle`] (another thread, a timeout, SIGINT/SIGTERM
//! to umon) records why and kicks every vCPU thread out of KVM_RUN or a blocking host call with
//! a real-time signal whose handler does nothing, and unparks its [`Parker`] (a wait the signal
//! cannot cut short: a futex wait, a sleep); the run loops see the reason and end the VM. The
//! layer above uses the same kick ([`KillHandle::kick_all`]) when the process ends itself
//! (exit_group) while other threads run or wait.
use crate::exit::ExitStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, Weak};
use std::time::{Duration, Instant};

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

/// Where one thread waits when no host call of its own blocks: a futex wait, a sleep. Unparked
/// by whoever wakes it and by every kick, so the waiter re-checks why it waits.
#[derive(Default, Debug)]
pub struct Parker {
    notified: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    /// Wake the thread parked here (or make its next park return at once).
    pub fn unpark(&self) {
        let mut n = self.notified.lock().unwrap_or_else(|e| e.into_inner());
        *n = true;
        self.cv.notify_one();
    }

    /// Wait until unparked or `deadline` (None: no limit) passed. Returns early for any
    /// unpark, including one from before the call: the caller re-checks its condition.
    pub fn park(&self, deadline: Option<Instant>) {
        let mut n = self.notified.lock().unwrap_or_else(|e| e.into_inner());
        while !*n {
            match deadline {
                None => n = self.cv.wait(n).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    n = self
                        .cv
                        .wait_timeout(n, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *n = false;
    }
}

/// One thread kicked until it acknowledges: a guest thread a signal was sent to (the layer
/// above implements it). The kicker holds it weakly: once its owner drops it, nobody is left
/// to acknowledge, and the kicker forgets it.
pub trait KickTarget: Send + Sync {
    /// Kick it once (signal its host thread, unpark it). False once it has acknowledged or is
    /// gone: the kicker then forgets it.
    fn kick(&self) -> bool;
}

/// The threads running a vCPU of the VM, while they do: kicks go to them.
#[derive(Default)]
struct Runners {
    threads: HashMap<u64, (libc::pthread_t, Arc<Parker>)>,
    next: u64,
    /// A kicker thread runs (it ends when nothing is left to kick).
    kicking: bool,
    /// Every runner is kicked (a stop, or the process ending).
    all: bool,
    /// Single threads kicked until they acknowledge ([`KillHandle::kick_until_acked`]). Weak:
    /// a thread whose state was dropped without its run loop's end (`gone`) would otherwise
    /// be kicked for ever, its kicker outliving the VM and signalling a host thread that has
    /// moved on to other work.
    targets: Vec<Weak<dyn KickTarget>>,
}

#[derive(Default)]
struct Shared {
    requested: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    runners: Mutex<Runners>,
}

impl Shared {
    fn runners(&self) -> MutexGuard<'_, Runners> {
        self.runners.lock().unwrap_or_else(|e| e.into_inner())
    }
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

/// Start the thread that kicks every runner until none is left (one at a time per VM).
fn start_kicker(shared: &Arc<Shared>) {
    {
        let mut r = shared.runners();
        if r.kicking || ((!r.all || r.threads.is_empty()) && r.targets.is_empty()) {
            return;
        }
        r.kicking = true;
    }
    let for_thread = shared.clone();
    let kicker = std::thread::Builder::new()
        .name("umon-kick".into())
        .stack_size(64 << 10)
        .spawn(move || kick_until_gone(&for_thread, None));
    if kicker.is_err() {
        // No thread to spare: kick from here, for a bounded time.
        kick_until_gone(shared, Some(1000));
    }
}

/// Kick every runner (when all are to be) and every target every millisecond until all have
/// left their run loops and every target acknowledged (or `limit` rounds were sent). A kick
/// that lands between a check and a blocking host call is lost; the next one is not.
fn kick_until_gone(shared: &Shared, limit: Option<u32>) {
    let me = crate::machine::host::current_thread();
    let mut sent = 0u32;
    loop {
        // The targets kicked this round, dropped once the lock is released: the last
        // reference may be this one, and a target's drop must not run under the lock.
        let mut held = Vec::new();
        {
            let mut r = shared.runners();
            let all = r.all && !r.threads.is_empty();
            if (!all && r.targets.is_empty()) || limit.is_some_and(|l| sent >= l) {
                r.kicking = false;
                r.targets.clear();
                return;
            }
            if all {
                for (thread, parker) in r.threads.values() {
                    parker.unpark();
                    if *thread != me {
                        let _ = crate::machine::host::signal_thread(*thread, kick_signal());
                    }
                }
            }
            r.targets.retain(|t| {
                let Some(t) = t.upgrade() else {
                    return false;
                };
                let more = t.kick();
                held.push(t);
                more
            });
        }
        drop(held);
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

thread_local! {
    /// This host thread's vCPU `kvm_run.immediate_exit` while it runs one, else null.
    static IMMEDIATE_EXIT: std::cell::Cell<*mut u8> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// While alive, a kick of this host thread sets its vCPU's `immediate_exit`, so a kick that
/// arrives just before KVM_RUN still makes it return at once (EINTR) instead of being lost
/// while the guest spins.
pub struct ImmediateExit(());

impl ImmediateExit {
    /// Arm kicks of the calling thread to write 1 at `flag` (the `immediate_exit` byte of the
    /// vCPU's kvm_run page, which must outlive the returned guard).
    pub fn arm(flag: *mut u8) -> ImmediateExit {
        IMMEDIATE_EXIT.with(|c| c.set(flag));
        ImmediateExit(())
    }
}

impl Drop for ImmediateExit {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.with(|c| c.set(std::ptr::null_mut()));
    }
}

#[allow(unsafe_code)]
extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A const-initialised thread local without a destructor: no lazy set-up or teardown, safe
    // in a signal handler.
    let _ = IMMEDIATE_EXIT.try_with(|c| {
        let p = c.get();
        if !p.is_null() {
            // SAFETY: `ImmediateExit::arm`'s caller keeps the kvm_run page mapped while the
            // guard lives, and the guard lives on this very thread; a byte store is atomic.
            unsafe { p.write_volatile(1) };
        }
    });
}

impl KillHandle {
    /// A handle for a VM that has not started.
    pub fn new() -> KillHandle {
        KillHandle::default()
    }

    /// End the VM: the application is reported as killed by SIGKILL (exit 137).
    pub fn kill(&self) {
        self.stop(StopReason::Killed);
    }

    /// End the VM for `reason` (the first reason wins). Returns at once; every vCPU thread is
    /// kicked until it has left its run loop, so no blocking host call it makes after the
    /// request (KVM_RUN, a write to a reader that never reads, umon's own last lines) outlives
    /// it.
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.shared.reason.lock() {
            r.get_or_insert(reason);
        }
        self.shared.requested.store(true, Ordering::SeqCst);
        self.kick_all();
    }

    /// Kick one thread now, then every millisecond until `target.kick()` says it has
    /// acknowledged: a signal sent to a thread running guest code, blocked in a host call or
    /// parked.
    pub fn kick_until_acked(&self, target: Arc<dyn KickTarget>) {
        if !target.kick() {
            return;
        }
        self.shared.runners().targets.push(Arc::downgrade(&target));
        start_kicker(&self.shared);
    }

    /// Whether a kicker thread runs for this VM (it ends once every runner it kicks has left
    /// and every target has acknowledged or is gone).
    pub fn kicking(&self) -> bool {
        self.shared.runners().kicking
    }

    /// Kick every vCPU thread (signal and unpark) every millisecond until all have left their
    /// run loops: what ends the others when the process ends from inside (exit_group). Those
    /// not running yet check before their first guest entry.
    pub fn kick_all(&self) {
        let only_me = {
            let r = self.shared.runners();
            let me = crate::machine::host::current_thread();
            r.threads.values().all(|(t, _)| *t == me)
        };
        if only_me {
            // Not running yet (`enter` starts the kicker), or stopped from inside the only run
            // loop (an output callback): the run loop checks the request before every entry.
            return;
        }
        self.shared.runners().all = true;
        start_kicker(&self.shared);
    }

    /// Every runner left after an exit from inside (exec): the next run loop on this handle
    /// (the new image's) is not kicked for it.
    pub fn settle(&self) {
        self.shared.runners().all = false;
    }

    /// Whether a stop was requested, and why.
    pub fn requested(&self) -> Option<StopReason> {
        if !self.shared.requested.load(Ordering::SeqCst) {
            return None;
        }
        self.shared.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Whether a stop was requested (cheap: one atomic load).
    pub fn is_requested(&self) -> bool {
        self.shared.requested.load(Ordering::SeqCst)
    }

    /// Register the calling thread as one running a vCPU of the VM (until the guard drops);
    /// kicks unpark `parker`.
    pub fn enter(&self, parker: Arc<Parker>) -> RunGuard<'_> {
        HANDLER.call_once(|| {
            if let Err(e) = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick) {
                log::warn!("cannot install the vCPU kick handler: {e}");
            }
        });
        let key = {
            let mut r = self.shared.runners();
            let key = r.next;
            r.next += 1;
            r.threads
                .insert(key, (crate::machine::host::current_thread(), parker));
            key
        };
        if self.shared.requested.load(Ordering::SeqCst) {
            // Stopped while the VM was being built: kick the run's last writes too.
            self.shared.runners().all = true;
            start_kicker(&self.shared);
        }
        RunGuard { handle: self, key }
    }
}

/// Removes the registered runner thread when its run loop returns, under the lock, so a kick
/// never targets a thread that left.
pub struct RunGuard<'a> {
    handle: &'a KillHandle,
    key: u64,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.handle.shared.runners().threads.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A thread that never acknowledges: counts its kicks.
    struct Deaf(Arc<AtomicU32>);

    impl KickTarget for Deaf {
        fn kick(&self) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            true
        }
    }

    /// Polls `done` for up to 2 s.
    fn within_2s(done: impl Fn() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn a_target_is_kicked_until_dropped_and_its_kicker_ends() {
        let handle = KillHandle::new();
        let kicks = Arc::new(AtomicU32::new(0));
        let target: Arc<dyn KickTarget> = Arc::new(Deaf(kicks.clone()));
        handle.kick_until_acked(target.clone());
        assert!(handle.kicking());
        assert!(within_2s(|| kicks.load(Ordering::SeqCst) >= 5));
        // Its owner drops it without acknowledging (a thread state dropped without its run
        // loop's end): the kicker must not keep it alive nor kick on.
        drop(target);
        assert!(
            within_2s(|| !handle.kicking()),
            "the kicker outlived its target"
        );
        let after = kicks.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(kicks.load(Ordering::SeqCst), after);
    }

    /// Acknowledges after `left` more kicks.
    struct Slow(AtomicU32);

    impl KickTarget for Slow {
        fn kick(&self) -> bool {
            self.0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
    }

    #[test]
    fn a_live_target_is_kicked_until_it_acknowledges() {
        let handle = KillHandle::new();
        let target = Arc::new(Slow(AtomicU32::new(10)));
        handle.kick_until_acked(target.clone());
        // Held only weakly by the kicker, yet kicked while its owner keeps it.
        assert!(within_2s(|| !handle.kicking()));
        assert_eq!(target.0.load(Ordering::SeqCst), 0);
    }
}
