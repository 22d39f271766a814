//! signalfd4/signalfd compared with Linux: `tests/apps/sig_fd.c` in glibc static-pie, glibc
//! static and musl static, natively and under umon; stdout, stderr and the exit status must
//! agree byte for byte. Several records per read in Linux's order with their siginfo, EAGAIN,
//! EINVAL for a short buffer, EFAULT, poll readiness, mask updates, the errors of the calls,
//! a reader blocked in another thread woken by kill/sigqueue/tgkill, EINTR and SA_RESTART.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use threads_common::Stdin;

fn everywhere(mode: &str) {
    same_in_every_variant("sig_fd", &[mode], Stdin::Empty, 0);
}

#[test]
fn read_takes_several_in_order_with_their_siginfo_eagain_einval_efault() {
    everywhere("read");
}

#[test]
fn poll_is_ready_exactly_when_a_signal_of_the_mask_is_pending() {
    everywhere("poll");
}

#[test]
fn signalfd_on_the_same_fd_changes_the_mask_and_bad_arguments_fail_as_linux() {
    everywhere("mask");
}

#[test]
fn a_reader_blocked_in_a_thread_wakes_when_another_thread_sends() {
    everywhere("thread");
}

#[test]
fn a_blocked_read_is_cut_short_by_a_handled_signal_or_restarted() {
    everywhere("intr");
}
