//! MAP_SHARED memory compared with Linux: anonymous shared memory across fork (children and
//! grandchildren, next to private memory that stays private), process-shared semaphores,
//! mutexes, condition variables and raw futexes between processes (requeued waiters asleep
//! over a second, signals, stops and exit_group ending shared futex waits, robust mutexes of
//! any thread of an ending process), shared file mappings in a writable volume (coherent with
//! read/write, across mappings, offsets, mprotect, munmap, mremap, msync, end of file,
//! errors), `tests/apps/mm_shared.c` in every C library variant;
//! then real programs nobody here wrote: Python's multiprocessing (Pool, Value and Lock, Queue,
//! SharedMemory) and SQLite in WAL mode (its WAL index is a MAP_SHARED mapping of the -shm file)
//! from `tests/apps/mm_shared.py` under `--root /`.
//!
//! --timeout and SIGTERM to umon end processes whose threads all wait on a shared futex.
//!
//! Each case runs natively and under `umon run --timeout 60s` (a hang ends the run, not the
//! suite); stdout, stderr, the exit status and the files written must agree byte for byte. The
//! C program prints only from its first process, so its output does not depend on scheduling,
//! and gives up a wait that never ends after a few seconds, saying where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;
#[path = "common/threads.rs"]
mod threads_common;

use common::apps::{self, s};
use common::real;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use threads_common::{
    assert_no_differences, differences, same_in_every_variant, variants, Stdin, UMON_TIMEOUT,
};

const APP: &str = "mm_shared";

/// A fresh empty host directory for one run; the same path every time in one test process.
fn scratch(name: &str) -> PathBuf {
    common::fresh_dir("mm_shared", name)
}

/// Fails the test when the native run did not exit 0 or reports a failed check of its own.
fn check_native(what: &str, linux: &Output) {
    let text = String::from_utf8_lossy(&linux.stdout);
    assert_eq!(
        threads_common::status(linux),
        0,
        "{what} natively: unexpected status; stdout:\n{text}stderr:\n{}",
        String::from_utf8_lossy(&linux.stderr)
    );
    assert!(
        !text.contains("FAIL"),
        "{what}: the app's own checks fail natively:\n{text}"
    );
}

/// The difference between the files the two runs left, if any: each entry that differs, shown
/// from a little before the first character where the two descriptions part.
fn tree_difference(what: &str, linux: &Path, umon: &Path) -> Option<String> {
    let (l, u) = (real::tree(linux), real::tree(umon));
    if l == u {
        return None;
    }
    let missing = String::from("(missing)");
    let mut text = format!("{what}: the files written differ");
    for name in l.keys().chain(u.keys().filter(|k| !l.contains_key(*k))) {
        let (a, b) = (
            l.get(name).unwrap_or(&missing),
            u.get(name).unwrap_or(&missing),
        );
        if a != b {
            let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
            let from = same.saturating_sub(40);
            let window = |t: &str| t.chars().skip(from).take(200).collect::<String>();
            text.push_str(&format!(
                "\n{name} (from character {from} of its description):\n  linux {}\n  umon  {}",
                window(a),
                window(b)
            ));
        }
    }
    Some(text)
}

// ---- memory only --------------------------------------------------------------------------

/// `mm_shared MODE` in every variant: same output and status as Linux.
fn memory_case(mode: &str) {
    same_in_every_variant(APP, &[mode], Stdin::Empty, 0);
}

#[test]
fn anonymous_shared_memory_is_shared_with_children_and_grandchildren_and_private_stays_private() {
    memory_case("anon");
}

#[test]
fn anonymous_shared_memory_madvise_mremap_and_flag_errors_as_linux() {
    memory_case("anon_edges");
}

#[test]
fn dev_zero_mapped_shared_is_shared_anonymous_memory() {
    memory_case("devzero");
}

#[test]
fn memfd_mapped_shared_is_one_memory_across_mappings_fork_and_seals() {
    memory_case("memfd");
}

#[test]
fn process_shared_semaphores_ping_pong_1000_times_between_parent_and_child() {
    memory_case("sem");
}

#[test]
fn process_shared_mutex_and_condition_variable_work_across_fork() {
    memory_case("mutex");
}

#[test]
fn a_robust_process_shared_mutex_whose_owner_dies_is_eownerdead() {
    memory_case("robust");
}

#[test]
fn raw_futex_wait_wake_and_requeue_cross_processes_and_private_ones_do_not() {
    memory_case("futex");
}

#[test]
fn requeued_shared_futex_waiters_asleep_over_a_second_wake_on_the_target_and_time_out_on_time() {
    memory_case("requeue_late");
}

#[test]
fn shared_futex_waits_end_for_signals_stop_and_continue_and_exit_group_as_on_linux() {
    memory_case("stops");
}

#[test]
fn a_robust_shared_mutex_held_by_a_second_thread_is_eownerdead_after_exit_group_or_its_exit() {
    memory_case("robust_threads");
}

// ---- files in a volume --------------------------------------------------------------------

/// `mm_shared MODE DIR` in every variant: natively with DIR a fresh host directory, under umon
/// with another fresh host directory as a writable volume at /data. Output, status and the
/// files left in the directory must agree.
fn file_case(mode: &str) {
    if !common::require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = threads_common::c_thread_app(APP, v);
        let what = format!("{APP} {mode} ({v:?})");
        let (linux_dir, umon_dir) = (
            scratch(&format!("{mode}-{v:?}-linux")),
            scratch(&format!("{mode}-{v:?}-umon")),
        );
        let linux = threads_common::native(&app, &[mode, s(&linux_dir)], Stdin::Empty);
        check_native(&what, &linux);
        let volume = format!("{}:/data:rw", s(&umon_dir));
        let umon = apps::run(
            &mut apps::umon_run_cmd(
                &["--timeout", UMON_TIMEOUT, "-v", &volume],
                &app,
                &[mode, "/data"],
            ),
            b"",
        );
        diffs.extend(differences(&what, &linux, &umon));
        diffs.extend(tree_difference(&what, &linux_dir, &umon_dir));
        std::fs::remove_dir_all(&linux_dir).ok();
        std::fs::remove_dir_all(&umon_dir).ok();
    }
    assert_no_differences(&diffs);
}

#[test]
fn a_shared_file_mapping_is_coherent_with_read_write_other_mappings_and_msync() {
    file_case("file");
}

#[test]
fn an_inherited_file_mapping_is_shared_with_children_grandchildren_and_their_own_mappings() {
    file_case("file_fork");
}

#[test]
fn shared_file_mappings_at_offsets_under_mprotect_munmap_and_mremap_stay_the_file() {
    file_case("file_layout");
}

#[test]
fn shared_file_mappings_past_end_of_file_fault_sigbus_and_follow_ftruncate() {
    file_case("file_eof");
}

#[test]
fn a_4_gib_file_mapped_shared_and_private_costs_only_the_pages_touched() {
    file_case("large");
}

#[test]
fn shared_mapping_errors_eacces_enodev_ebadf_as_linux() {
    file_case("errors");
}

#[test]
fn hostile_shared_mappings_lengths_offsets_addresses_and_msync_as_linux() {
    file_case("hostile");
}

/// A file in a read-only volume, opened O_RDONLY: a writable shared mapping is EACCES, a
/// read-only one works, a private writable one works and stays private. Natively the directory
/// is writable, which an O_RDONLY descriptor cannot tell.
#[test]
fn a_file_in_a_read_only_volume_maps_shared_read_only_and_not_writable() {
    if !common::require_kvm() {
        return;
    }
    let dir = scratch("ro");
    std::fs::write(dir.join("ro.txt"), b"read-only volume file\n").unwrap();
    let before = real::tree(&dir);
    let mut diffs = Vec::new();
    for v in variants() {
        let app = threads_common::c_thread_app(APP, v);
        let what = format!("{APP} ro_volume ({v:?})");
        let linux = threads_common::native(&app, &["ro_volume", s(&dir)], Stdin::Empty);
        check_native(&what, &linux);
        let volume = format!("{}:/ro:ro", s(&dir));
        let umon = apps::run(
            &mut apps::umon_run_cmd(
                &["--timeout", UMON_TIMEOUT, "-v", &volume],
                &app,
                &["ro_volume", "/ro"],
            ),
            b"",
        );
        diffs.extend(differences(&what, &linux, &umon));
        assert_eq!(
            real::tree(&dir),
            before,
            "{what}: the read-only volume changed"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_no_differences(&diffs);
}

/// What a run of `mm_shared msync_hold DIR` showed: its output, and the host file
/// DIR/held.dat as it was when the program said "synced" (still running, mapping still there).
struct Held {
    out: Output,
    at_sync: Option<Vec<u8>>,
}

/// Runs `cmd` (mm_shared msync_hold, natively or under umon) with its stdin held open until
/// it has printed "synced", reads `file` on the host then, and lets it finish. Bounded: a run
/// that never says "synced" is waited for until it ends (umon's own --timeout), at most
/// [`apps::TIMEOUT`].
fn run_held(mut cmd: Command, file: &Path) -> Held {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = apps::spawn_retrying_busy_text(&mut cmd);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (synced_tx, synced_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut all = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            all.extend_from_slice(&line);
            if line == b"synced\n" {
                synced_tx.send(()).ok();
            }
        }
        all
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let deadline = Instant::now() + apps::TIMEOUT;
    let at_sync = match synced_rx.recv_timeout(apps::TIMEOUT) {
        Ok(()) => std::fs::read(file).ok(),
        Err(_) => None,
    };
    drop(stdin);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            // Only this child, which this test started.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {:?}; killed it",
                apps::TIMEOUT
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    Held {
        out: Output {
            status,
            stdout: reader.join().unwrap(),
            stderr: err.join().unwrap(),
        },
        at_sync,
    }
}

/// After msync(MS_SYNC) the host file holds what the program stored through its shared
/// mapping, while the program still runs; the stores after it reach the file by munmap.
#[test]
fn after_msync_the_host_file_holds_the_bytes_stored_through_the_mapping() {
    if !common::require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = threads_common::c_thread_app(APP, v);
        let what = format!("{APP} msync_hold ({v:?})");
        let (linux_dir, umon_dir) = (
            scratch(&format!("hold-{v:?}-linux")),
            scratch(&format!("hold-{v:?}-umon")),
        );
        let mut native = Command::new(&app);
        native.args(["msync_hold", s(&linux_dir)]).env_clear();
        let linux = run_held(native, &linux_dir.join("held.dat"));
        check_native(&what, &linux.out);
        assert!(
            linux.at_sync.is_some(),
            "{what}: natively held.dat was not there at msync"
        );
        let volume = format!("{}:/data:rw", s(&umon_dir));
        let umon = run_held(
            apps::umon_run_cmd(
                &["--timeout", UMON_TIMEOUT, "-v", &volume],
                &app,
                &["msync_hold", "/data"],
            ),
            &umon_dir.join("held.dat"),
        );
        diffs.extend(differences(&what, &linux.out, &umon.out));
        if linux.at_sync != umon.at_sync {
            diffs.push(format!(
                "{what}: the host file right after msync differs: linux {}, umon {}",
                describe(linux.at_sync.as_deref()),
                describe(umon.at_sync.as_deref())
            ));
        }
        diffs.extend(tree_difference(&what, &linux_dir, &umon_dir));
        std::fs::remove_dir_all(&linux_dir).ok();
        std::fs::remove_dir_all(&umon_dir).ok();
    }
    assert_no_differences(&diffs);
}

/// A file's bytes in brief: its length, how many bytes are zero, its first 40 bytes.
fn describe(data: Option<&[u8]>) -> String {
    match data {
        None => "missing (or never synced)".to_owned(),
        Some(d) => format!(
            "{} bytes, {} zero, starting {:?}",
            d.len(),
            d.iter().filter(|&&b| b == 0).count(),
            String::from_utf8_lossy(&d[..d.len().min(40)])
        ),
    }
}

// ---- real programs: Python ----------------------------------------------------------------

const PYTHON: &str = "/usr/bin/python3";

/// Python 3, or `None` after saying why the test is skipped.
fn python() -> Option<&'static Path> {
    let p = Path::new(PYTHON);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: this host has no {PYTHON}");
        None
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/mm_shared.py")
}

/// `python3 mm_shared.py CASE [DIR]` natively and under `umon run --root /` (the host's own
/// dynamically linked python3; umon gives the guest a private writable /dev/shm for
/// multiprocessing's semaphores and shared memory). With `with_dir`, a fresh directory is the
/// last argument: natively one host directory, under umon another, granted writable at its
/// own path; the files left in them must agree too.
fn python_case(case: &str, with_dir: bool) {
    if !common::require_kvm() {
        return;
    }
    let Some(python) = python() else {
        return;
    };
    let script = script();
    let script_dir = script.parent().unwrap();
    let what = format!("python3 mm_shared.py {case}");
    let dirs = with_dir.then(|| {
        (
            scratch(&format!("py-{case}-linux")),
            scratch(&format!("py-{case}-umon")),
        )
    });
    let args = |dir: Option<&PathBuf>| -> Vec<String> {
        let mut a = vec![s(&script).to_owned(), case.to_owned()];
        a.extend(dir.map(|d| s(d).to_owned()));
        a
    };
    let linux = apps::native(python, &args(dirs.as_ref().map(|d| &d.0)), &[], b"");
    check_native(&what, &linux);
    // The script's directory at its own path, in case the checkout lies under the guest's
    // private /tmp.
    let mut opts = vec![
        "--root".to_owned(),
        "/".to_owned(),
        "--timeout".to_owned(),
        UMON_TIMEOUT.to_owned(),
        "-v".to_owned(),
        format!("{0}:{0}:ro", s(script_dir)),
    ];
    if let Some((_, u)) = &dirs {
        opts.extend(["-v".to_owned(), format!("{0}:{0}:rw", s(u))]);
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let umon = apps::umon_run(&opts, python, &args(dirs.as_ref().map(|d| &d.1)), b"");
    let mut diffs = differences(&what, &linux, &umon);
    if let Some((l, u)) = &dirs {
        diffs.extend(tree_difference(&what, l, u));
        std::fs::remove_dir_all(l).ok();
        std::fs::remove_dir_all(u).ok();
    }
    assert_no_differences(&diffs);
}

#[test]
fn python_multiprocessing_pool_maps_as_natively() {
    python_case("pool", false);
}

#[test]
fn python_multiprocessing_value_and_lock_count_across_processes_as_natively() {
    python_case("value", false);
}

#[test]
fn python_multiprocessing_queue_carries_items_between_processes_as_natively() {
    python_case("queue", false);
}

#[test]
fn python_multiprocessing_shared_memory_is_shared_with_a_child_as_natively() {
    python_case("shared_memory", false);
}

#[test]
fn sqlite_in_wal_mode_with_two_connections_and_another_process_as_natively() {
    python_case("sqlite", true);
}

// ---- stops from outside -------------------------------------------------------------------

/// Starts `cmd` (mm_shared wait_forever), waits until it says "waiting" (every waiter in a
/// shared futex wait), then sends `signal` to it if given, and returns its output once it
/// ended. Bounded: a run still there 30 s after the line is killed and the test fails.
fn run_until_waiting(mut cmd: Command, signal: Option<i32>) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = apps::spawn_retrying_busy_text(&mut cmd);
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut all = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            all.extend_from_slice(&line);
            if line == b"waiting\n" {
                waiting_tx.send(()).ok();
            }
        }
        all
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let said = waiting_rx.recv_timeout(apps::TIMEOUT).is_ok();
    if let (true, Some(sig)) = (said, signal) {
        // Only the process this test started.
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        #[allow(unsafe_code)]
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill {pid}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran 30 s after it said \"waiting\"; killed it");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

#[test]
fn the_timeout_ends_processes_whose_threads_wait_on_a_shared_futex_nobody_wakes() {
    if !common::require_kvm() {
        return;
    }
    for v in variants() {
        let app = threads_common::c_thread_app(APP, v);
        let t0 = Instant::now();
        let out = run_until_waiting(
            apps::umon_run_cmd(&["--timeout", "2s"], &app, &["wait_forever"]),
            None,
        );
        let took = t0.elapsed();
        assert_eq!(threads_common::status(&out), 124, "{v:?}: {out:?}");
        assert_eq!(s_out(&out.stdout), "waiting\n", "{v:?}");
        assert_eq!(
            s_out(&out.stderr),
            "umon: app timed out after 2s\n",
            "{v:?}"
        );
        assert!(took < Duration::from_secs(15), "{v:?}: took {took:?}");
    }
}

#[test]
fn sigterm_to_umon_ends_processes_whose_threads_wait_on_a_shared_futex_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let mut diffs = Vec::new();
    for v in variants() {
        let app = threads_common::c_thread_app(APP, v);
        let what = format!("{APP} wait_forever, SIGTERM ({v:?})");
        let mut native = Command::new(&app);
        native.arg("wait_forever").env_clear();
        let linux = run_until_waiting(native, Some(libc::SIGTERM));
        assert_eq!(
            threads_common::status(&linux),
            128 + libc::SIGTERM,
            "{what}"
        );
        let umon = run_until_waiting(
            apps::umon_run_cmd(&["--timeout", UMON_TIMEOUT], &app, &["wait_forever"]),
            Some(libc::SIGTERM),
        );
        diffs.extend(differences(&what, &linux, &umon));
    }
    assert_no_differences(&diffs);
}

fn s_out(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A memfd is host memory outside every volume, so umon holds it to the size of the
/// application's memory, as a file on a full tmpfs of that size: a write, pwrite, writev,
/// copy_file_range, sendfile or splice that would go past it is cut short there, ENOSPC when
/// no byte fits, and fallocate past it is ENOSPC (`fd::file::memory_file_cap`). Linux's
/// memfds have no such limit (natively the program reports "no limit" after 128 MiB), so the
/// behaviour is asserted directly under `-m 64M`: the limit lies below 64 MiB and every call
/// answers as that rule says.
#[test]
fn a_memfd_holds_at_most_the_applications_memory_as_a_full_tmpfs() {
    if !common::require_kvm() {
        return;
    }
    let app = apps::c_app("memfd_cap", apps::Link::Static);
    let out = apps::umon_run(
        &["-m", "64M", "--timeout", UMON_TIMEOUT],
        &app,
        &[] as &[&str],
        b"",
    );
    let text = s_out(&out.stdout);
    assert!(out.status.success(), "{text}{}", s_out(&out.stderr));
    let limit: u64 = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("limit "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no limit found under -m 64M:\n{text}"));
    assert!(
        (32 << 20..=64 << 20).contains(&limit),
        "limit {limit} for -m 64M"
    );
    let expected = format!(
        "limit {limit}
write at the limit: ENOSPC
empty write at the limit: 0
size is the limit: 1
pwrite across: 1
pwrite at: ENOSPC
pwrite past: ENOSPC
pwrite below: 4096
writev across: 10
writev at: ENOSPC
pwritev across: 12
fallocate to: 0
fallocate past: ENOSPC
source: 4096
copy_file_range across: 100
copy_file_range at: ENOSPC
sendfile across: 50
sendfile at: ENOSPC
splice across: 30
splice at: ENOSPC
size is still the limit: 1
ftruncate to half: 0
write after truncation: 1048576
"
    );
    assert_eq!(text, expected);
}
