//! Threads, compared with Linux: every program in `tests/apps/thr_*` (C in glibc static-pie,
//! glibc static and musl static; Rust std; Go) runs natively and under `umon run --timeout 60s`,
//! and stdout, stderr and the exit status must agree byte for byte. The programs print only
//! deterministic lines (counts, sums, errno names; no ids, no timing), ordered by joins.
//!
//! - `pthread_basics`: create/join with values, detach, mutex, condvar (queue, broadcast,
//!   timedwait), rwlock, barrier, semaphores, pthread_once (`thr_pthread.c`).
//! - `tls_and_key_destructors`: `__thread` data per thread, pthread_key destructors, including a
//!   second round (`thr_tls.c`).
//! - `ids_signals_affinity_cleartid`: distinct gettid, tgkill/tkill with ignored signals,
//!   ESRCH/EINVAL, sched_getaffinity in every thread, raw clone with PARENT_SETTID,
//!   CHILD_SETTID and CHILD_CLEARTID (`thr_ids.c`).
//! - `thousand_threads`: 1000 joined and 1000 detached threads, at most ~64 alive (`thr_many.c`).
//! - `futex_operations`: raw futex ping-pong, timeouts, WAIT_BITSET absolute on both clocks,
//!   REQUEUE, CMP_REQUEUE, WAKE_OP, bitsets, PI ops and a PRIO_INHERIT mutex (`thr_futex.c`).
//! - `robust_mutex_owner_death`: EOWNERDEAD, ENOTRECOVERABLE, a raw robust list walked at
//!   thread death, get/set_robust_list (`thr_robust.c`).
//! - `exit_*`: exit of one thread, of the leader, pthread_exit from main, exit_group with threads
//!   blocked in futex, read(stdin), nanosleep and poll (`thr_exit.c`).
//! - `rust_std_threads` (`thr_rust.rs`) and `go_goroutines` (`go/`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::same_in_every_variant;

use common::apps::rust_app;
use common::require_kvm;
use threads_common::{assert_no_differences, compare, go_app, tool_present, Stdin};

/// `thr_NAME ARGS` in every C variant; returns every difference from Linux.
fn c_everywhere(name: &str, args: &[&str], stdin: Stdin, expect_status: i32) {
    same_in_every_variant(name, args, stdin, expect_status);
}

#[test]
fn pthread_basics() {
    c_everywhere("thr_pthread", &[], Stdin::Empty, 0);
}

#[test]
fn new_threads_inherit_the_fpu_control_state() {
    c_everywhere("thr_fpu", &[], Stdin::Empty, 0);
}

#[test]
fn tls_and_key_destructors() {
    c_everywhere("thr_tls", &[], Stdin::Empty, 0);
}

#[test]
fn ids_signals_affinity_cleartid() {
    c_everywhere("thr_ids", &[], Stdin::Empty, 0);
}

#[test]
fn thousand_threads() {
    c_everywhere("thr_many", &[], Stdin::Empty, 0);
}

#[test]
fn futex_operations() {
    c_everywhere("thr_futex", &[], Stdin::Empty, 0);
}

#[test]
fn robust_mutex_owner_death() {
    c_everywhere("thr_robust", &[], Stdin::Empty, 0);
}

#[test]
fn exit_of_one_thread() {
    c_everywhere("thr_exit", &["thread-exit"], Stdin::Empty, 0);
}

/// The main thread's exit(2) leaves the process running; the last thread's status is the
/// process's (9 on Linux).
#[test]
fn exit_of_the_leader() {
    c_everywhere("thr_exit", &["leader-exit"], Stdin::Empty, 9);
}

#[test]
fn exit_pthread_exit_from_main() {
    c_everywhere("thr_exit", &["main-pthread-exit"], Stdin::Empty, 0);
}

#[test]
fn exit_group_ends_blocked_threads() {
    c_everywhere("thr_exit", &["exit-group"], Stdin::Empty, 4);
}

/// Threads asleep in read() on an open, silent stdin (and futex, nanosleep, poll) end with
/// another thread's exit_group: umon must not wait for the read.
#[test]
fn exit_group_ends_a_read_on_stdin() {
    c_everywhere("thr_exit", &["blocked"], Stdin::HeldOpen, 6);
}

#[test]
fn rust_std_threads() {
    if !require_kvm() {
        return;
    }
    let app = rust_app("thr_rust");
    assert_no_differences(&compare("thr_rust", &app, &[], Stdin::Empty, 0));
}

#[test]
fn go_goroutines() {
    if !require_kvm() || !tool_present("go", "golang-go") {
        return;
    }
    let app = go_app();
    assert_no_differences(&compare(
        "go umontest threads",
        &app,
        &["threads"],
        Stdin::Empty,
        0,
    ));
}

/// Go's timers sleep in its netpoller (epoll_pwait with a timeout, woken through a pipe or
/// eventfd): the same as natively.
#[test]
fn go_timers_through_the_netpoller() {
    if !require_kvm() || !tool_present("go", "golang-go") {
        return;
    }
    let app = go_app();
    assert_no_differences(&compare(
        "go umontest timers",
        &app,
        &["timers"],
        Stdin::Empty,
        0,
    ));
}
