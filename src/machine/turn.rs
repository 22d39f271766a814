//! The order of page-table batches across vCPUs. A batch is planned against the mirror of the
//! tables under the address space's lock but lands in the guest at its vCPU's next KVM_RUN,
//! so two vCPUs' batches could land in another order than they were planned (measured: a
//! thread's munmap of its stack landing after the next thread's stack was mapped there). With
//! several vCPUs a vCPU therefore holds the *turn* from before it plans until the core reports
//! the batch done (`Hypercall::PtApplied`): batches land one at a time, in planning order,
//! and the mirror is what the tables are whenever nobody holds the turn.
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

/// How often a waiter looks at its reasons to give up.
const RECHECK: Duration = Duration::from_millis(10);

/// Which host thread (vCPU) may plan and apply page-table batches now.
#[derive(Default)]
pub struct PtTurn {
    holder: Mutex<Option<ThreadId>>,
    freed: Condvar,
}

impl PtTurn {
    /// Wait for the turn. False, without it, once `give_up` says so (the VM or the process is
    /// ending: the holder may never finish its batch). Re-entrant: a holder has it already.
    pub fn take(&self, give_up: impl Fn() -> bool) -> bool {
        let me = std::thread::current().id();
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match *holder {
                None => {
                    *holder = Some(me);
                    return true;
                }
                Some(t) if t == me => return true,
                Some(_) if give_up() => return false,
                Some(_) => {
                    holder = self
                        .freed
                        .wait_timeout(holder, RECHECK)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// [`PtTurn::take`], given back when the guard goes (for holding it over a stretch of
    /// the monitor's own work, such as a fork).
    pub fn hold(&self, give_up: impl Fn() -> bool) -> Option<TurnGuard<'_>> {
        self.take(give_up).then_some(TurnGuard(self))
    }

    /// Give the turn back if this host thread holds it (its batch is done, never entered, or
    /// its vCPU stopped running).
    pub fn release(&self) {
        let me = std::thread::current().id();
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        if *holder == Some(me) {
            *holder = None;
            self.freed.notify_one();
        }
    }

    /// This host thread holds the turn.
    pub fn held(&self) -> bool {
        let holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        *holder == Some(std::thread::current().id())
    }
}

/// Holds the turn until dropped ([`PtTurn::hold`]).
pub struct TurnGuard<'a>(&'a PtTurn);

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn one_holder_at_a_time_and_waiters_follow() {
        let turn = Arc::new(PtTurn::default());
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (turn, inside) = (turn.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        assert!(turn.take(|| false));
                        assert!(turn.take(|| false), "re-entrant");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        turn.release();
                        assert!(!turn.held());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_waiter_gives_up_when_told() {
        let turn = Arc::new(PtTurn::default());
        assert!(turn.take(|| false));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (turn, stop) = (turn.clone(), stop.clone());
            std::thread::spawn(move || turn.take(|| stop.load(Ordering::SeqCst)))
        };
        std::thread::sleep(Duration::from_millis(30));
        stop.store(true, Ordering::SeqCst);
        assert!(!waiter.join().unwrap());
        // Someone else's release does nothing.
        let other = turn.clone();
        std::thread::spawn(move || other.release()).join().unwrap();
        assert!(turn.held());
    }
}
