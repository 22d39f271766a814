//! `umon run APP`: real static Linux programs (tests/apps/, built on demand with gcc and rustc)
//! run in the micro-VM. Each behaviour is checked for both C link modes (static-pie and static
//! ET_EXEC) where it applies, and against the same binary run natively where that is the
//! reference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{
    bigout_byte, c_app, hello_text, native, run_with_stdout, rust_app, s, umon_run, umon_run_cmd,
    Link,
};
use common::{stderr, stdout};
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};

const NO_ARGS: [&str; 0] = [];

/// Arguments that look like umon options (and odd ones): all must reach the app untouched.
const TRICKY_ARGS: [&str; 10] = [
    "-e",
    "X=1",
    "--memory",
    "16M",
    "--verbose",
    "-",
    "two words",
    "",
    "ünïcödé",
    "-v",
];

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// Asserts `o` is a clean exit `want` with nothing on stderr.
fn assert_clean_exit(o: &Output, want: i32, what: &str) {
    assert_eq!(
        code(o),
        Some(want),
        "{what}: exit status\nstderr: {}",
        stderr(o)
    );
    assert_eq!(stderr(o), "", "{what}: stderr should be empty");
}

/// `got == want`, reporting the first differing line before both texts.
fn assert_same_text(got: &str, want: &str, what: &str) {
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "{what}: output differs from line {}: got {:?}, want {:?}\n--- got:\n{got}--- want:\n{want}",
            line + 1,
            got.lines().nth(line),
            want.lines().nth(line)
        );
    }
}

/// stderr is exactly one line, starting with `prefix`; returns it.
fn one_stderr_line(o: &Output, prefix: &str, what: &str) -> String {
    let err = stderr(o);
    assert!(
        err.ends_with('\n') && err.lines().count() == 1,
        "{what}: want exactly one stderr line, got {err:?}"
    );
    assert!(
        err.starts_with(prefix),
        "{what}: stderr should start with {prefix:?}: {err:?}"
    );
    err.trim_end().to_owned()
}

// ---- argv, environment, native parity --------------------------------------------------------

#[test]
fn hello_gets_exact_argv_and_only_the_requested_environment() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("hello", link);
        let mut cmd = umon_run_cmd(&["-e", "A=1", "-e", "B"], &app, &TRICKY_ARGS);
        // B is copied from umon's own environment; nothing else of it may reach the app.
        cmd.env("B", "copied from umon").env("NOT_PASSED", "secret");
        let out = common::apps::run(&mut cmd, b"");
        assert_clean_exit(&out, 0, &format!("{link:?}"));
        let mut argv = vec![s(&app)];
        argv.extend(TRICKY_ARGS);
        assert_eq!(
            stdout(&out),
            hello_text(&argv, &["A=1", "B=copied from umon"]),
            "{link:?}"
        );
    }
}

#[test]
fn environment_is_empty_by_default() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("hello", link);
        let mut cmd = umon_run_cmd(&[], &app, &NO_ARGS);
        cmd.env("NOT_PASSED", "secret");
        let out = common::apps::run(&mut cmd, b"");
        assert_clean_exit(&out, 0, &format!("{link:?}"));
        assert_eq!(stdout(&out), hello_text(&[s(&app)], &[]), "{link:?}");
    }
}

#[test]
fn env_values_may_contain_equals_signs_or_be_empty() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("hello", Link::StaticPie);
    let out = umon_run(
        &["-e", "X=a=b", "-e", "EMPTY=", "-e", "SPACE=two words"],
        &app,
        &NO_ARGS,
        b"",
    );
    assert_clean_exit(&out, 0, "hello");
    assert_eq!(
        stdout(&out),
        hello_text(&[s(&app)], &["X=a=b", "EMPTY=", "SPACE=two words"])
    );
}

#[test]
fn argv0_is_the_app_path_exactly_as_given() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("hello", link);
        let dir = app.parent().unwrap();
        let name = format!("./{}", app.file_name().unwrap().to_str().unwrap());
        let mut cmd = umon_run_cmd(&[], &name, &["x"]);
        cmd.current_dir(dir);
        let out = common::apps::run(&mut cmd, b"");
        assert_clean_exit(&out, 0, &name);
        assert_eq!(stdout(&out), hello_text(&[&name, "x"], &[]));
    }
}

#[test]
fn double_dash_after_the_app_is_an_app_argument() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("hello", Link::Static);
    let out = umon_run(&[], &app, &["--", "-e", "--"], b"");
    assert_clean_exit(&out, 0, "hello -- -e --");
    assert_eq!(stdout(&out), hello_text(&[s(&app), "--", "-e", "--"], &[]));
}

#[test]
fn hello_output_and_status_match_native_execution() {
    if !common::require_kvm() {
        return;
    }
    let apps = [
        c_app("hello", Link::StaticPie),
        c_app("hello", Link::Static),
        rust_app("hello"),
    ];
    for app in apps {
        let mut cmd = umon_run_cmd(&["-e", "A=1", "-e", "B"], &app, &TRICKY_ARGS);
        cmd.env("B", "from the host");
        let under = common::apps::run(&mut cmd, b"");
        let natively = native(
            &app,
            &TRICKY_ARGS,
            &[("A", "1"), ("B", "from the host")],
            b"",
        );
        assert_eq!(code(&natively), Some(0), "{app:?} natively");
        assert_eq!(code(&under), code(&natively), "{app:?}: {}", stderr(&under));
        assert_eq!(stdout(&under), stdout(&natively), "{app:?}");
        assert_eq!(stderr(&under), stderr(&natively), "{app:?}");
    }
}

// ---- exit status -------------------------------------------------------------------------------

#[test]
fn exit_status_passes_through() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("exit", link);
        for (args, want) in [
            (&["0"][..], 0),
            (&["3"][..], 3),
            (&["255"][..], 255),
            // The bare `exit` syscall instead of exit_group.
            (&["7", "raw"][..], 7),
        ] {
            let out = umon_run(&[], &app, args, b"");
            assert_clean_exit(&out, want, &format!("{link:?} exit {args:?}"));
            assert_eq!(stdout(&out), "");
        }
    }
}

#[test]
fn exit_status_keeps_the_low_8_bits_like_linux() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("exit", Link::Static);
    for (arg, want) in [("256", 0), ("300", 44), ("-1", 255)] {
        let natively = native(&app, &[arg], &[], b"");
        assert_eq!(code(&natively), Some(want), "exit({arg}) natively");
        let out = umon_run(&[], &app, &[arg], b"");
        assert_clean_exit(&out, want, &format!("exit({arg})"));
    }
}

// ---- stdio -------------------------------------------------------------------------------------

/// Deterministic bytes covering all values.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[test]
fn stdin_round_trips_10_mib_byte_exact() {
    if !common::require_kvm() {
        return;
    }
    let input = noise(10 << 20, 0x1234_5678_9abc_def1);
    for link in Link::RUNNABLE {
        let out = umon_run(&[], c_app("cat", link), &NO_ARGS, &input);
        assert_clean_exit(&out, 0, &format!("{link:?} cat"));
        assert_eq!(out.stdout.len(), input.len(), "{link:?}: output length");
        assert_eq!(
            first_difference(&out.stdout, &input),
            None,
            "{link:?}: first differing byte"
        );
    }
}

#[test]
fn empty_stdin_is_end_of_file() {
    if !common::require_kvm() {
        return;
    }
    let out = umon_run(&[], c_app("cat", Link::StaticPie), &NO_ARGS, b"");
    assert_clean_exit(&out, 0, "cat < empty");
    assert_eq!(out.stdout, b"");
}

#[test]
fn stdout_of_50_mib_arrives_complete_and_in_order() {
    if !common::require_kvm() {
        return;
    }
    const LEN: usize = 50 << 20;
    let expected: Vec<u8> = (0..LEN as u64).map(bigout_byte).collect();
    for link in Link::RUNNABLE {
        let out = umon_run(&[], c_app("bigout", link), &[LEN.to_string()], b"");
        assert_eq!(code(&out), Some(0), "{link:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("bigout: wrote {LEN} bytes\n"));
        assert_eq!(out.stdout.len(), LEN, "{link:?}: output length");
        assert_eq!(
            first_difference(&out.stdout, &expected),
            None,
            "{link:?}: first differing byte"
        );
    }
}

// ---- memory ------------------------------------------------------------------------------------

#[test]
fn malloc_512_mib_touch_free_and_again() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let out = umon_run(&[], c_app("malloc", link), &["512"], b"");
        assert_clean_exit(&out, 0, &format!("{link:?} malloc 512"));
        assert_eq!(stdout(&out), "ok\n", "{link:?}");
    }
}

#[test]
fn memory_option_sizes_the_guest() {
    if !common::require_kvm() {
        return;
    }
    let hello = c_app("hello", Link::Static);
    for size in ["64M", "262144K", "1G"] {
        let out = umon_run(&["--memory", size], &hello, &NO_ARGS, b"");
        assert_clean_exit(&out, 0, &format!("--memory {size}"));
        assert_eq!(stdout(&out), hello_text(&[s(&hello)], &[]), "{size}");
    }
    // 1100 MiB cannot fit the default 1 GiB guest (malloc fails cleanly), but fits a 2 GiB one.
    let malloc = c_app("malloc", Link::StaticPie);
    let out = umon_run(&[], &malloc, &["1100"], b"");
    assert_clean_exit(&out, 12, "default memory, malloc 1100");
    assert_eq!(stdout(&out), "ENOMEM\n");
    let out = umon_run(&["--memory", "2G"], &malloc, &["1100"], b"");
    assert_clean_exit(&out, 0, "--memory 2G, malloc 1100");
    assert_eq!(stdout(&out), "ok\n");
}

// ---- registers ---------------------------------------------------------------------------------

#[test]
fn simd_registers_survive_syscalls() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("simd", link);
        let natively = native(&app, &NO_ARGS, &[], b"");
        assert_eq!(code(&natively), Some(0), "natively: {}", stdout(&natively));
        let out = umon_run(&[], &app, &NO_ARGS, b"");
        assert_clean_exit(&out, 0, &format!("{link:?} simd: {}", stdout(&out)));
        assert!(stdout(&out).ends_with("simd ok\n"), "{}", stdout(&out));
        // Same "avx=" line: the guest offers AVX exactly when the host does.
        assert_eq!(stdout(&out), stdout(&natively), "{link:?}");
    }
}

// ---- faults ------------------------------------------------------------------------------------

/// `fault KIND` natively dies by `signal`; under umon it exits 128+signal with one line
/// `umon: app killed by SIGNAME...` that names `function` (the ELF has symbols: both link modes
/// are built with -g and not stripped).
fn check_fault(kind: &str, signal: i32, name: &str, function: &str) {
    for link in Link::RUNNABLE {
        let app = c_app("fault", link);
        let what = format!("{link:?} fault {kind}");
        let natively = native(&app, &[kind], &[], b"");
        assert_eq!(natively.status.signal(), Some(signal), "{what} natively");

        let out = umon_run(&[], &app, &[kind], b"");
        assert_eq!(
            code(&out),
            Some(128 + signal),
            "{what}: stderr {}",
            stderr(&out)
        );
        // What the app wrote before the fault is not lost.
        assert_eq!(stdout(&out), format!("fault: {kind}\n"), "{what}");
        let line = one_stderr_line(&out, &format!("umon: app killed by {name}"), &what);
        assert!(line.contains("rip 0x"), "{what}: {line}");
        assert!(
            line.contains(&format!("({function}")),
            "{what}: should name {function}: {line}"
        );
        if kind == "null" {
            assert!(line.contains("fault address 0x0,"), "{what}: {line}");
        }
    }
}

#[test]
fn null_pointer_write_is_sigsegv() {
    if common::require_kvm() {
        check_fault("null", 11, "SIGSEGV", "fault_null");
    }
}

#[test]
fn non_canonical_address_is_sigsegv() {
    if common::require_kvm() {
        check_fault("gp", 11, "SIGSEGV", "fault_gp");
    }
}

#[test]
fn ud2_is_sigill() {
    if common::require_kvm() {
        check_fault("ud", 4, "SIGILL", "fault_ud");
    }
}

#[test]
fn integer_divide_by_zero_is_sigfpe() {
    if common::require_kvm() {
        check_fault("de", 8, "SIGFPE", "fault_de");
    }
}

#[test]
fn stack_overflow_is_sigsegv() {
    if common::require_kvm() {
        check_fault("stack", 11, "SIGSEGV", "recurse_forever");
    }
}

// ---- syscalls ----------------------------------------------------------------------------------

/// What `sys` prints on Linux and under umon when stdin and stdout are pipes and stdin carries
/// [`SYS_STDIN`].
const SYS_COMMON: &str = "\
write ok
writev ok
isatty(0)=0 ENOTTY
isatty(1)=0 ENOTTY
isatty(2)=0 ENOTTY
TIOCGWINSZ(1)=-1 ENOTTY
poll(0) POLLIN
poll(1) POLLOUT
ppoll(1) POLLOUT
ppoll no fds, 1 ms timeout: 0
readv(0) 17 bytes: hello from stdin
read(0) at end of input: 0
pread64(0)=-1 ESPIPE
pwrite64(1)=-1 ESPIPE
lseek(1)=-1 ESPIPE
fstat newfstatat statx (1) ok
st_mode agrees
fcntl(1, F_GETFD) ok
fcntl(1, F_GETFL) ok
dup ok
close ok
close again EBADF
dup2 ok
dup3 ok
dup3 O_CLOEXEC gives FD_CLOEXEC
close dups ok
brk grow, touch, shrink ok
mmap 4 MiB ok
mmap memory is zeroed
mprotect ok
mremap grow keeps contents
madvise ok
munmap ok
getpid ok
gettid == getpid
getppid ok
getuid geteuid getgid getegid ok
set_tid_address returns the tid
set_robust_list ok
arch_prctl(ARCH_GET_FS) ok
uname ok
uname sysname=Linux machine=x86_64
getrlimit(RLIMIT_STACK) ok
prlimit64(RLIMIT_NOFILE) ok
rt_sigaction ok
rt_sigprocmask ok
sigaltstack ok
sched_getaffinity ok
sched_yield ok
readlink /proc/self/exe names this program
clock_gettime(CLOCK_MONOTONIC) never goes back
clock_getres ok
nanosleep 2 ms ok
clock_nanosleep 2 ms ok
clock_nanosleep TIMER_ABSTIME ok
clock_gettime(CLOCK_REALTIME) is after 2020
gettimeofday agrees with CLOCK_REALTIME
time agrees with CLOCK_REALTIME
getrandom returns 16 bytes
getrandom: two calls differ
futex wake, nobody waiting: 0
futex wait, value differs: EAGAIN
futex wait 1 ms: ETIMEDOUT
getcwd ok
";

/// The extra lines of `sys umon`: no volumes (only the system view's synthetic /etc/passwd),
/// kexec_load unsupported.
const SYS_UMON_ONLY: &str = "\
getcwd=/
openat /etc/passwd=3
openat relative.txt=-1 ENOENT
kexec_load=-1 ENOSYS
";

const SYS_STDIN: &[u8] = b"hello from stdin\n";

#[test]
fn sys_app_checks_hold_natively() {
    // Checks the test program and SYS_COMMON against Linux itself; needs no KVM.
    for link in Link::RUNNABLE {
        let out = native(c_app("sys", link), &["native"], &[], SYS_STDIN);
        assert_clean_exit(&out, 0, &format!("{link:?} sys natively"));
        let want = format!("{SYS_COMMON}0 failures\n");
        assert_same_text(&stdout(&out), &want, &format!("{link:?} sys natively"));
    }
}

#[test]
fn syscalls_behave_like_linux() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let out = umon_run(&[], c_app("sys", link), &["umon"], SYS_STDIN);
        assert_eq!(code(&out), Some(0), "{link:?}: {}", stderr(&out));
        let want = format!("{SYS_COMMON}{SYS_UMON_ONLY}0 failures\n");
        assert_same_text(&stdout(&out), &want, &format!("{link:?} sys umon"));
        // Every syscall the app made is implemented, except the deliberate kexec_load.
        assert_eq!(
            stderr(&out),
            "umon: unsupported syscall 246 (kexec_load)\n",
            "{link:?}"
        );
    }
}

#[test]
fn unsupported_syscall_is_reported_once_per_syscall_number() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let out = umon_run(&[], c_app("sys", link), &["unsupported"], b"");
        assert_eq!(code(&out), Some(0), "{link:?}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "kexec_load=-1 ENOSYS\nkexec_load=-1 ENOSYS\nmount=-1 ENOSYS\nmount=-1 ENOSYS\n",
            "{link:?}"
        );
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "{link:?}: one note per syscall number: {err:?}"
        );
        assert_eq!(
            lines[0], "umon: unsupported syscall 246 (kexec_load)",
            "{link:?}"
        );
        assert!(
            lines[1].starts_with("umon: unsupported syscall 165"),
            "{link:?}: {err:?}"
        );
    }
}

/// A pseudo-terminal with the given size: (master, slave).
fn pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the out-pointers are valid for writes; name and termios may be null; `size` is a
    // valid winsize that openpty only reads.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: as above.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    (master, slave)
}

/// Runs `cmd` with stdout on a fresh 33x101 terminal; returns (output, terminal text with the
/// terminal's CR LF turned back into LF).
fn run_on_terminal(mut cmd: std::process::Command) -> (Output, String) {
    let (master, slave) = pty(33, 101);
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once every descriptor of the slave side is closed.
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        text
    });
    let out = run_with_stdout(&mut cmd, SYS_STDIN, Stdio::from(slave));
    drop(cmd); // closes the test's copy of the slave
    let text = reader.join().expect("terminal reader");
    (out, String::from_utf8_lossy(&text).replace("\r\n", "\n"))
}

#[test]
fn terminal_stdout_is_a_tty_with_the_hosts_window_size() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("sys", Link::StaticPie);
    let mut cmd = std::process::Command::new(&app);
    cmd.arg("native").env_clear();
    let (natively, native_text) = run_on_terminal(cmd);
    assert_clean_exit(&natively, 0, "sys natively on a terminal");
    assert!(native_text.contains("\nisatty(1)=1\n"), "{native_text}");
    assert!(
        native_text.contains("\nTIOCGWINSZ(1) rows=33 cols=101\n"),
        "{native_text}"
    );

    let (out, text) = run_on_terminal(umon_run_cmd(&[], &app, &["umon"]));
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let want = native_text.replace("0 failures\n", &format!("{SYS_UMON_ONLY}0 failures\n"));
    assert_same_text(&text, &want, "sys umon on a terminal");
}

// ---- Rust --------------------------------------------------------------------------------------

#[test]
fn rust_app_gets_args_env_and_exit_status() {
    if !common::require_kvm() {
        return;
    }
    let app = rust_app("hello");
    let args = ["5", "-x", "--memory", "ünï"];
    let env = [("A", "1"), ("B", "two words")];
    let out = umon_run(&["-e", "A=1", "-e", "B=two words"], &app, &args, b"");
    assert_eq!(code(&out), Some(5), "stderr: {}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let mut argv = vec![s(&app)];
    argv.extend(args);
    let text = stdout(&out);
    assert!(
        text.starts_with(&hello_text(&argv, &["A=1", "B=two words"])),
        "{text}"
    );
    assert!(
        text.contains("\nprimes 46 last [199, 197, 193]\n"),
        "{text}"
    );
    let natively = native(&app, &args, &env, b"");
    assert_eq!(code(&natively), Some(5));
    assert_eq!(text, stdout(&natively));
}

#[test]
fn rust_panic_unwinds_and_exits_101() {
    if !common::require_kvm() {
        return;
    }
    let app = rust_app("hello");
    let out = umon_run(&[], &app, &["panic"], b"");
    assert_eq!(code(&out), Some(101), "stderr: {}", stderr(&out));
    let natively = native(&app, &["panic"], &[], b"");
    assert_eq!(code(&natively), Some(101));
    assert_eq!(stdout(&out), stdout(&natively));
    let err = stderr(&out);
    assert!(err.contains("deliberate panic from the hello app"), "{err}");
    assert!(
        !err.contains("umon:"),
        "a panic is the app's own exit: {err}"
    );
}

// ---- not found -----------------------------------------------------------------------------------

#[test]
fn missing_app_exits_127_with_one_line() {
    if !common::require_kvm() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let missing = dir.join("no-such-app-here");
    for path in [s(&missing), "/nonexistent/dir/app"] {
        let out = umon_run(&[], path, &["arg"], b"");
        assert_eq!(code(&out), Some(127), "{path}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{path}");
        let line = one_stderr_line(&out, "umon: ", path);
        assert!(line.contains(path), "the message names the path: {line}");
    }
}
