//! Hostile signal calls (`tests/apps/sig_hostile.c`), compared with Linux in every C library
//! variant: sigqueueinfo with bad pointers, si_code >= 0 or SI_TKILL to another thread (EPERM),
//! bad tids and tgids, bad signal numbers, sigtimedwait with bad set/info/timeout pointers and
//! sizes, and signals to threads that are ending. umon must answer Linux's errno, never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use threads_common::Stdin;

fn everywhere(mode: &str) {
    same_in_every_variant("sig_hostile", &[mode], Stdin::Empty, 0);
}

#[test]
fn bad_sigqueueinfo_sigtimedwait_kill_arguments_get_linux_errnos() {
    everywhere("calls");
}

#[test]
fn signals_to_threads_that_start_and_end() {
    everywhere("exiting");
}
