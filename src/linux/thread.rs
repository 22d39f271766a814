//! One thread of the application: what Linux keeps per task rather than per process. Owned by
//! the host thread that runs its vCPU, so handlers change it through `&mut` with no lock.
//! A field added here is per thread; say in the clone path how a new thread gets it.
use super::abi::{SigAltStack, SigInfo};
use crate::machine::stop::Parker;
use std::collections::VecDeque;
use std::sync::Arc;

/// The first thread's tid, which is also the process's pid: the application is the first and
/// only process of its machine.
pub const FIRST_TID: u32 = 1;

/// Per-thread state.
#[derive(Clone, Debug, Default)]
pub struct Thread {
    /// Thread id.
    pub tid: u32,
    /// The blocked-signal mask.
    pub sigmask: u64,
    /// The alternate signal stack.
    pub altstack: Option<SigAltStack>,
    /// set_tid_address: where to write 0 (and wake) when the thread ends.
    pub clear_child_tid: u64,
    /// set_robust_list: the list head and its length.
    pub robust_list: (u64, u64),
    /// Where this thread waits (futex, sleeps); kicks and wakers unpark it. A new thread gets
    /// its own.
    pub parker: Arc<Parker>,
    /// Signals whose handlers run when the current syscall returns, in order.
    pub due: VecDeque<SigInfo>,
    /// exit(2)'s status: the process's if this thread is the last to end.
    pub exit_code: i32,
}

impl Thread {
    /// The thread a process starts with.
    pub fn first() -> Thread {
        Thread {
            tid: FIRST_TID,
            ..Default::default()
        }
    }
}
