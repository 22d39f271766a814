//! A pending-signal queue (Linux's `struct sigpending`): a set of pending signal numbers and
//! the siginfo of each instance. Standard signals (1..31) coalesce: a second one sent while
//! the first is pending is dropped. Real-time signals (32..64) queue every instance, in order.
use super::super::abi::{SigInfo, SI_USER};
use super::bit;
use std::collections::{HashMap, VecDeque};

/// The first real-time signal number (the kernel's SIGRTMIN).
pub const SIGRTMIN: u64 = 32;

/// Signals that come from the instruction just executed (SEGV, BUS, ILL, TRAP, FPE, SYS):
/// dequeued before the others (Linux's SYNCHRONOUS_MASK).
pub const SYNCHRONOUS: u64 = (1 << (libc::SIGSEGV - 1))
    | (1 << (libc::SIGBUS - 1))
    | (1 << (libc::SIGILL - 1))
    | (1 << (libc::SIGTRAP - 1))
    | (1 << (libc::SIGFPE - 1))
    | (1 << (libc::SIGSYS - 1));

/// One queue: a thread's private one or the process's shared one.
#[derive(Debug, Default)]
pub struct SigQueue {
    /// The pending signals (bit `sig - 1`).
    set: u64,
    /// The queued instances, oldest first. A pending real-time signal may have none: it was
    /// sent with kill() past RLIMIT_SIGPENDING, its siginfo lost (Linux's LOSE_INFO).
    list: VecDeque<SigInfo>,
    /// POSIX timers whose signal is queued here, by timer id: the expiries folded in since,
    /// added to its si_overrun when it is taken (Linux keeps the count with the timer and
    /// fills si_overrun at delivery). A walk of the queue at every expiry made 16384 armed
    /// timers quadratic.
    timers: HashMap<u32, i64>,
}

/// The timer a queued SI_TIMER siginfo is of.
fn timer_of(info: &SigInfo) -> Option<u32> {
    (info.code == crate::linux::timer::SI_TIMER).then_some(info.fields[0] as u32)
}

/// Whether an instance was queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// Its siginfo went into the queue: a real-time one counts against RLIMIT_SIGPENDING.
    WithInfo,
    /// Only the pending bit: a standard signal already pending, or a real-time one past the
    /// limit (kill).
    BitOnly,
}

impl SigQueue {
    /// The pending set.
    pub fn pending(&self) -> u64 {
        self.set
    }

    /// Queue `info`; `room` says whether a real-time siginfo may be added (RLIMIT_SIGPENDING).
    pub fn push(&mut self, info: SigInfo, room: bool) -> Queued {
        let sig = info.signo as u64;
        let standard = sig < SIGRTMIN;
        let already = self.set & bit(sig) != 0;
        self.set |= bit(sig);
        if (standard && already) || (!standard && !room) {
            return Queued::BitOnly;
        }
        if let Some(id) = timer_of(&info) {
            self.timers.insert(id, 0);
        }
        self.list.push_back(info);
        if standard {
            Queued::BitOnly
        } else {
            Queued::WithInfo
        }
    }

    /// The next signal not in `blocked` (synchronous ones first, then the lowest number; of a
    /// real-time one the oldest instance), and whether it was a counted real-time siginfo.
    pub fn take(&mut self, blocked: u64) -> Option<(SigInfo, bool)> {
        let ready = self.set & !blocked;
        if ready == 0 {
            return None;
        }
        let pick = if ready & SYNCHRONOUS != 0 {
            ready & SYNCHRONOUS
        } else {
            ready
        };
        let sig = u64::from(pick.trailing_zeros()) + 1;
        let mut found = None;
        let mut more = false;
        for (i, info) in self.list.iter().enumerate() {
            if info.signo as u64 == sig {
                if found.is_none() {
                    found = Some(i);
                } else {
                    more = true;
                    break;
                }
            }
        }
        if !more {
            self.set &= !bit(sig);
        }
        match found.and_then(|i| self.list.remove(i)) {
            Some(mut info) => {
                if let Some(extra) = timer_of(&info).and_then(|id| self.timers.remove(&id)) {
                    let total = (i64::from((info.fields[0] >> 32) as u32) + extra)
                        .min(crate::linux::timer::DELAYTIMER_MAX);
                    info.fields[0] = (info.fields[0] & 0xffff_ffff) | ((total as u64) << 32);
                }
                Some((info, sig >= SIGRTMIN))
            }
            // Queued without its siginfo: Linux's collect_signal zeroes it, SI_USER.
            None => Some((
                SigInfo {
                    signo: sig as i32,
                    code: SI_USER,
                    ..Default::default()
                },
                false,
            )),
        }
    }

    /// Drop every instance of the signals in `mask`; returns the real-time siginfos removed
    /// (for the RLIMIT_SIGPENDING count).
    pub fn discard(&mut self, mask: u64) -> usize {
        if self.set & mask == 0 {
            return 0;
        }
        self.set &= !mask;
        let mut rt = 0;
        let timers = &mut self.timers;
        self.list.retain(|i| {
            let gone = mask & bit(i.signo as u64) != 0;
            rt += usize::from(gone && i.signo as u64 >= SIGRTMIN);
            if gone {
                if let Some(id) = timer_of(i) {
                    timers.remove(&id);
                }
            }
            !gone
        });
        rt
    }

    /// POSIX timer `id`'s signal is queued: `more` expiries join its si_overrun (capped at
    /// DELAYTIMER_MAX when it is taken). False if it is not queued.
    pub fn fold_timer(&mut self, id: u32, more: i64) -> bool {
        match self.timers.get_mut(&id) {
            Some(n) => {
                *n = n.saturating_add(more);
                true
            }
            None => false,
        }
    }

    /// Whether POSIX timer `id`'s signal is queued here.
    pub fn timer_queued(&self, id: u32) -> bool {
        self.timers.contains_key(&id)
    }

    /// Remove the first queued instance `pick` chooses (timer_delete drops its timer's
    /// signal); its signal stays pending only while another instance is queued.
    pub fn remove(&mut self, pick: impl Fn(&SigInfo) -> bool) -> Option<SigInfo> {
        let at = self.list.iter().position(pick)?;
        let info = self.list.remove(at)?;
        if let Some(id) = timer_of(&info) {
            self.timers.remove(&id);
        }
        let sig = info.signo as u64;
        if !self.list.iter().any(|i| i.signo as u64 == sig) {
            self.set &= !bit(sig);
        }
        Some(info)
    }

    /// Drop everything; returns the real-time siginfos removed.
    pub fn clear(&mut self) -> usize {
        self.discard(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sig: u64, value: u64) -> SigInfo {
        let mut i = SigInfo {
            signo: sig as i32,
            ..Default::default()
        };
        i.fields[1] = value;
        i
    }

    #[test]
    fn standard_coalesce_rt_queue_in_order() {
        let mut q = SigQueue::default();
        assert_eq!(q.push(info(10, 1), true), Queued::BitOnly);
        q.push(info(10, 2), true);
        assert_eq!(q.push(info(35, 7), true), Queued::WithInfo);
        q.push(info(34, 8), true);
        q.push(info(35, 9), true);
        q.push(info(11, 0), true);
        let order: Vec<(i32, u64)> = std::iter::from_fn(|| q.take(0))
            .map(|(i, _)| (i.signo, i.fields[1]))
            .collect();
        assert_eq!(order, [(11, 0), (10, 1), (34, 8), (35, 7), (35, 9)]);
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn blocked_stay_and_lost_info_is_si_user() {
        let mut q = SigQueue::default();
        assert_eq!(q.push(info(40, 3), false), Queued::BitOnly);
        assert!(q.take(bit(40)).is_none());
        let (i, counted) = q.take(0).unwrap_or_default();
        assert_eq!((i.signo, i.code, counted), (40, SI_USER, false));
        q.push(info(40, 3), true);
        q.push(info(40, 4), true);
        assert_eq!(q.discard(bit(40)), 2);
        assert_eq!(q.pending(), 0);
    }
}
