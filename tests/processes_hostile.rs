//! Hostile arguments to the process calls, compared with Linux: `tests/apps/proc_hostile.c` in
//! every C variant, natively and under umon, byte for byte. wait4/waitid with bad pointers,
//! options and ids; execve/execveat of every kind of file that cannot run, with bad arrays
//! and strings (each errno Linux gives before the point of no return); kill of bad pids,
//! zombies and groups; setpgid/setsid/getpgid/getsid edge cases; bad clone/clone3 process
//! requests; and forks of a process whose other threads write memory, mmap and munmap while
//! it forks (each child must see whole pages).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;
use threads_common::{same_in_every_variant, Stdin};

fn everywhere(mode: &str) {
    same_in_every_variant("proc_hostile", &[mode], Stdin::Empty, 0);
}

#[test]
fn wait4_and_waitid_with_bad_pointers_options_and_ids_fail_as_linux() {
    everywhere("wait");
}

#[test]
fn execve_of_files_that_cannot_run_and_bad_arrays_fail_before_the_point_of_no_return() {
    everywhere("exec");
}

#[test]
fn kill_of_bad_pids_zombies_children_and_groups_answers_as_linux() {
    everywhere("kill");
}

#[test]
fn process_groups_and_sessions_follow_linux_rules() {
    everywhere("groups");
}

#[test]
fn bad_clone_and_clone3_process_requests_fail_and_good_ones_fork() {
    everywhere("clone");
}

#[test]
fn forks_of_a_process_whose_threads_write_and_remap_memory_see_whole_pages() {
    everywhere("race");
}
