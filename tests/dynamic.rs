//! Dynamically linked programs (PT_INTERP): the host's own programs run with `--root /`, each
//! compared with its native run byte for byte (stdout, stderr, exit status). The interpreter is
//! found in the guest's file view and loaded by umon; `ld.so` loads the libraries itself. A test
//! whose program the host lacks is skipped, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{built, c_app, native, run, s, umon_run_cmd, Link};
use common::{stderr, stdout};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The environment of both runs.
const ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("TZ", "UTC")];

/// glibc's and musl's interpreters, as their PT_INTERP names them.
const GLIBC_LDSO: &str = "/lib64/ld-linux-x86-64.so.2";
const MUSL_LDSO: &str = "/lib/ld-musl-x86_64.so.1";

/// The mtime given to every file the tests list: 2021-02-03 04:05:06 UTC.
const MTIME: i64 = 1_612_325_106;

/// `path` if the host has it; otherwise None, after saying the test is skipped.
fn host_program(path: &str) -> Option<PathBuf> {
    if Path::new(path).exists() {
        Some(PathBuf::from(path))
    } else {
        eprintln!("skipping: this host has no {path}");
        None
    }
}

/// A fresh scratch directory for `case`, at the same host path in every run.
fn scratch(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("dynamic")
        .join(case);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn set_mtime(path: &Path) {
    use rustix::fs::{utimensat, AtFlags, Timestamps, CWD};
    let t = rustix::fs::Timespec {
        tv_sec: MTIME,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// `program args` under `umon run --root /` with each of `dirs` also granted as a writable
/// volume at its own host path (so paths are the same in both runs, even under the private
/// `/tmp`), with `env` and `stdin`.
fn under_umon(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
    dirs: &[&Path],
) -> Output {
    let mut opts: Vec<String> = vec![
        "--root".into(),
        "/".into(),
        "--timeout".into(),
        "60s".into(),
    ];
    for d in dirs {
        opts.push("-v".into());
        opts.push(format!("{}:{}:rw", s(d), s(d)));
    }
    for (k, v) in env {
        opts.push("-e".into());
        opts.push(format!("{k}={v}"));
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    run(&mut umon_run_cmd(&opts, program, args), stdin)
}

/// Run `program args` natively and under umon and require the same stdout, stderr and exit
/// status; returns the native run.
fn same(
    what: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
    dirs: &[&Path],
) -> Output {
    let linux = native(program, args, env, stdin);
    let umon = under_umon(program, args, env, stdin, dirs);
    assert_eq!(
        stderr(&umon),
        stderr(&linux),
        "{what}: stderr differs (stdout under umon: {:?})",
        stdout(&umon)
    );
    assert_eq!(umon.stdout, linux.stdout, "{what}: stdout differs");
    assert_eq!(
        umon.status.code(),
        linux.status.code(),
        "{what}: exit status"
    );
    linux
}

/// The directory the test apps are built in (granted to the guest at the same path).
fn apps_dir(app: &Path) -> PathBuf {
    app.parent().unwrap().to_owned()
}

#[test]
fn c_hello_dynamic_runs_and_is_listed_as_natively() {
    if !common::require_kvm() || host_program(GLIBC_LDSO).is_none() {
        return;
    }
    let app = c_app("hello", Link::Dynamic);
    let out = same(
        "dynamic hello",
        &app,
        &["one", "two words"],
        ENV,
        b"",
        &[&apps_dir(&app)],
    );
    assert!(stdout(&out).contains("argv[2]=two words"), "{out:?}");
    // glibc's ld.so run as the program lists what hello needs (ldd), at umon's addresses.
    let text = same_listing(Path::new(GLIBC_LDSO), &app);
    assert!(text.contains("libc.so.6 => "), "{text}");
}

#[test]
fn musl_hello_dynamic_runs_as_natively() {
    if !common::require_kvm() || host_program(MUSL_LDSO).is_none() {
        return;
    }
    if host_program("/usr/bin/musl-gcc").is_none() {
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/hello.c");
    let app = built("hello-musl-dynamic", |out| {
        let mut cmd = std::process::Command::new("musl-gcc");
        cmd.args(["-O2", "-o"]).arg(out).arg(&src);
        cmd
    });
    let out = same(
        "musl dynamic hello",
        &app,
        &["x"],
        ENV,
        b"",
        &[&apps_dir(&app)],
    );
    assert!(stdout(&out).contains("argv[1]=x"), "{out:?}");
    // musl's ld.so lists what the program needs, at umon's addresses: the same names.
    let ldd = same_listing(Path::new(MUSL_LDSO), &app);
    assert!(ldd.contains("libc.so => /lib/ld-musl-x86_64.so.1"), "{ldd}");
}

/// Without `--root`: the interpreter and libc come from volumes, found where PT_INTERP and
/// ld.so's default search path name them in the guest's view.
#[test]
fn interpreter_and_libc_from_volumes_without_a_root() {
    if !common::require_kvm() || host_program(GLIBC_LDSO).is_none() {
        return;
    }
    let app = c_app("hello", Link::Dynamic);
    // The host's real library directory (through the /lib64 symlinks), granted at the guest
    // path of PT_INTERP's directory and at its own path, which is on ld.so's default search
    // path (/usr/lib/x86_64-linux-gnu on Debian, /usr/lib64 on Fedora).
    let libdir = std::fs::canonicalize(GLIBC_LDSO)
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let interp_dir = Path::new(GLIBC_LDSO).parent().unwrap();
    let apps = apps_dir(&app);
    let vols = [
        format!("{}:{}", s(&libdir), s(interp_dir)),
        format!("{}:{}", s(&libdir), s(&libdir)),
        format!("{}:{}", s(&apps), s(&apps)),
    ];
    let mut opts = Vec::new();
    for v in &vols {
        opts.extend(["-v", v.as_str()]);
    }
    let args = ["from", "volumes"];
    let umon = run(&mut umon_run_cmd(&opts, &app, &args), b"");
    let linux = native(&app, &args, &[], b"");
    assert_eq!(stderr(&umon), stderr(&linux), "stderr");
    assert_eq!(stdout(&umon), stdout(&linux), "stdout");
    assert_eq!(umon.status.code(), linux.status.code(), "exit status");
}

/// `ldso --list app` natively and under umon: the same text once the load addresses (ASLR
/// natively, umon's namespaces under umon) are blanked; returns it.
fn same_listing(ldso: &Path, app: &Path) -> String {
    let blank = |text: &str| {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("(0x") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find(')').map_or(rest.len(), |e| i + e + 1);
            out.push_str("(ADDR)");
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    let args = ["--list", s(app)];
    let linux = native(ldso, &args, ENV, b"");
    let umon = under_umon(ldso, &args, ENV, b"", &[&apps_dir(app)]);
    assert_eq!(stderr(&umon), stderr(&linux), "ld.so --list: stderr");
    assert_eq!(
        umon.status.code(),
        linux.status.code(),
        "ld.so --list: status"
    );
    assert_eq!(
        blank(&stdout(&umon)),
        blank(&stdout(&linux)),
        "ld.so --list: stdout"
    );
    stdout(&linux)
}

/// dyn_main, its library libdyn_greet.so (no rpath: only LD_LIBRARY_PATH finds it) and
/// libdyn_preload.so, built in one directory; returns (dyn_main, the directory).
fn greet_apps() -> (PathBuf, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps");
    let lib = |name: &'static str| {
        let src = src.join(format!("{name}.c"));
        built(&format!("lib{name}.so"), move |out| {
            let mut cmd = std::process::Command::new("gcc");
            cmd.args(["-O2", "-shared", "-fPIC", "-o"])
                .arg(out)
                .arg(src);
            cmd
        })
    };
    let greet = lib("dyn_greet");
    lib("dyn_preload");
    let dir = apps_dir(&greet);
    let main_src = src.join("dyn_main.c");
    let main = built("dyn_main", |out| {
        let mut cmd = std::process::Command::new("gcc");
        cmd.args(["-O2", "-fno-builtin-strlen", "-o"])
            .arg(out)
            .arg(&main_src)
            .arg("-L")
            .arg(&dir)
            .arg("-ldyn_greet");
        cmd
    });
    (main, dir)
}

#[test]
fn ld_library_path_and_ld_preload_behave_as_on_linux() {
    if !common::require_kvm() || host_program(GLIBC_LDSO).is_none() {
        return;
    }
    let (main, dir) = greet_apps();
    let lib_path = s(&dir).to_owned();
    let preload = format!("{lib_path}/libdyn_preload.so");
    // Without LD_LIBRARY_PATH the library is not found: ld.so's message, exit 127.
    let missing = same("no LD_LIBRARY_PATH", &main, &[], ENV, b"", &[&dir]);
    assert_eq!(missing.status.code(), Some(127), "{missing:?}");
    let mut env = ENV.to_vec();
    env.push(("LD_LIBRARY_PATH", &lib_path));
    let found = same("LD_LIBRARY_PATH", &main, &["a"], &env, b"", &[&dir]);
    assert_eq!(
        stdout(&found),
        "hello from libdyn_greet (23 bytes)\narg a\n"
    );
    env.push(("LD_PRELOAD", &preload));
    let preloaded = same("LD_PRELOAD", &main, &[], &env, b"", &[&dir]);
    assert_eq!(
        stdout(&preloaded),
        "hello from the preloaded library (42 bytes)\n"
    );
}

#[test]
fn ls_la_of_a_volume_lists_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let Some(ls) = host_program("/usr/bin/ls") else {
        return;
    };
    let dir = scratch("ls");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub/inner")).unwrap();
    std::fs::write(data.join("sub/file"), b"12345").unwrap();
    std::fs::write(data.join("sub/empty"), b"").unwrap();
    std::fs::set_permissions(
        data.join("sub/file"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("file", data.join("sub/link")).unwrap();
    for rel in ["sub/file", "sub/empty", "sub/link", "sub/inner", "sub", ""] {
        set_mtime(&data.join(rel));
    }
    let sub = data.join("sub");
    let out = same("ls -la", &ls, &["-la", s(&sub)], ENV, b"", &[&data]);
    assert!(stdout(&out).contains("link -> file"), "{out:?}");
}

#[test]
fn python_runs_json_hashlib_re_and_lists_a_volume() {
    if !common::require_kvm() {
        return;
    }
    let Some(python) = host_program("/usr/bin/python3.11") else {
        return;
    };
    let dir = scratch("python");
    for name in ["b.txt", "a.txt", "c"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let script = format!(
        "import json, hashlib, re, os, sys\n\
         print(json.dumps({{'k': [1, 2.5, None, 'v']}}, sort_keys=True))\n\
         print(hashlib.sha256(b'umon').hexdigest(), hashlib.md5(b'x').hexdigest())\n\
         print(re.sub(r'(\\w+)@(\\w+)', r'\\2 at \\1', 'me@host you@there'))\n\
         print(sorted(os.listdir({:?})))\n\
         print(os.readlink('/proc/self/exe'), sys.executable)\n",
        s(&dir)
    );
    let out = same("python3 -c", &python, &["-c", &script], ENV, b"", &[&dir]);
    assert!(stdout(&out).contains("['a.txt', 'b.txt', 'c']"), "{out:?}");
    assert!(
        stdout(&out).contains("/usr/bin/python3.11 /usr/bin/python3.11"),
        "/proc/self/exe is the program, not its interpreter: {out:?}"
    );
}

#[test]
fn python_json_tool_formats_stdin() {
    if !common::require_kvm() {
        return;
    }
    let Some(python) = host_program("/usr/bin/python3.11") else {
        return;
    };
    let input = br#"{"b": [1, 2, {"c": null}], "a": "\u00e9"}"#;
    let out = same(
        "python3 -m json.tool",
        &python,
        &["-m", "json.tool", "--sort-keys"],
        ENV,
        input,
        &[],
    );
    assert!(stdout(&out).contains("\"a\": \"\\u00e9\""), "{out:?}");
    // Invalid input: the error message and status 1, as natively.
    same(
        "python3 -m json.tool, bad input",
        &python,
        &["-m", "json.tool"],
        ENV,
        b"{bad",
        &[],
    );
}

#[test]
fn perl_sqlite3_and_git_run_as_natively() {
    if !common::require_kvm() {
        return;
    }
    if let Some(perl) = host_program("/usr/bin/perl") {
        same(
            "perl -e",
            &perl,
            &[
                "-e",
                "my %h = (b => 2, a => 1); print join(',', map { \"$_=$h{$_}\" } sort keys %h), \"\\n\"; printf(\"%.3f %s\\n\", atan2(1, 1) * 4, uc 'x'); exit 3",
            ],
            ENV,
            b"",
            &[],
        );
    }
    if let Some(sqlite3) = host_program("/usr/bin/sqlite3") {
        let out = same(
            "sqlite3 :memory:",
            &sqlite3,
            &[
                ":memory:",
                "create table t(a, b); insert into t values (1, 'x'), (2, 'y'), (3, 'x'); \
                 select b, count(*), sum(a) from t group by b order by b; select sqlite_version() is not null;",
            ],
            ENV,
            b"",
            &[],
        );
        assert_eq!(stdout(&out), "x|2|4\ny|1|2\n1\n");
    }
    if let Some(git) = host_program("/usr/bin/git") {
        let out = same("git --version", &git, &["--version"], ENV, b"", &[]);
        assert!(stdout(&out).starts_with("git version "), "{out:?}");
    }
}

#[test]
fn text_tools_run_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let dir = scratch("text");
    let text = b"pear 3\napple 10\nfig 7\napple 2\n";
    let file = dir.join("fruit.txt");
    std::fs::write(&file, text).unwrap();
    if let Some(awk) = host_program("/usr/bin/awk") {
        same(
            "awk",
            &awk,
            &[
                "{ n[$1] += $2 } END { for (k in n) s += n[k]; print NR, s, length(n) }",
                s(&file),
            ],
            ENV,
            b"",
            &[&dir],
        );
    }
    if let Some(sed) = host_program("/usr/bin/sed") {
        same(
            "sed",
            &sed,
            &["-e", "s/\\([a-z]*\\) \\([0-9]*\\)/\\2:\\1/", "-e", "2d"],
            ENV,
            text,
            &[],
        );
    }
    if let Some(sort) = host_program("/usr/bin/sort") {
        let out = same("sort", &sort, &["-k2,2n", s(&file)], ENV, b"", &[&dir]);
        assert_eq!(stdout(&out), "apple 2\npear 3\nfig 7\napple 10\n");
    }
    if let Some(gzip) = host_program("/usr/bin/gzip") {
        let out = same("gzip -cn", &gzip, &["-cn", s(&file)], ENV, b"", &[&dir]);
        assert_eq!(&out.stdout[..2], b"\x1f\x8b", "gzip magic");
    }
    if let Some(tar) = host_program("/usr/bin/tar") {
        let archive = dir.join("a.tar");
        let made = std::process::Command::new(&tar)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir)
            .arg("fruit.txt")
            .status()
            .unwrap();
        assert!(made.success());
        let out = same("tar -tf", &tar, &["-tf", s(&archive)], ENV, b"", &[&dir]);
        assert_eq!(stdout(&out), "fruit.txt\n");
    }
}

/// An interpreter that is missing from the guest's view, not executable or no ELF file is
/// refused before anything runs: exit 126, one line naming it.
#[test]
fn an_unusable_interpreter_is_refused_with_one_line() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("hello", Link::Dynamic);
    let root = scratch("fake-root");
    let refused = |what: &str, opts: &[&str]| -> String {
        let out = run(&mut umon_run_cmd(opts, &app, &[] as &[&str]), b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(126), "{what}: {err}");
        assert_eq!(stdout(&out), "", "{what}");
        assert!(
            err.lines().count() == 1 && err.starts_with("umon: "),
            "{what}: {err:?}"
        );
        err
    };
    let opts = ["--root", s(&root)];
    let err = refused("empty root", &opts);
    assert!(
        err.contains(&format!(
            "its interpreter {GLIBC_LDSO} is not in the guest's file view"
        )),
        "{err}"
    );
    let ldso = root.join(GLIBC_LDSO.trim_start_matches('/'));
    std::fs::create_dir_all(ldso.parent().unwrap()).unwrap();
    std::fs::write(&ldso, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&ldso, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = refused("text interpreter", &opts);
    assert!(
        err.contains(&format!(
            "its interpreter {GLIBC_LDSO}: not an ELF executable"
        )),
        "{err}"
    );
    std::fs::set_permissions(&ldso, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused("interpreter without x bit", &opts);
    assert!(err.contains("Permission denied"), "{err}");
}

/// socket(2): Linux's argument checks in its order (compared with the native run), then a
/// socket for AF_UNIX and (an INET one reaching nothing under `--net none`, see tests/net.rs)
/// AF_INET, with no note on stderr (glibc's nscd client asks for an AF_UNIX socket in every
/// getpwuid).
#[test]
fn socket_checks_arguments_in_linuxs_order() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("dyn_socket", Link::StaticPie);
    // (family, type, protocol): bad flag bits, family out of range, type out of range.
    let checks = [
        "1", "0x40001", "0", "46", "1", "0", "-1", "1", "0", "1", "11", "0",
    ];
    let linux = native(&app, &checks, &[], b"");
    let umon = common::apps::umon_run(&[], &app, &checks, b"");
    assert_eq!(stdout(&umon), stdout(&linux), "argument checks");
    assert_eq!(
        stdout(&linux),
        "1 0x40001 0: EINVAL\n46 1 0: EAFNOSUPPORT\n-1 1 0: EAFNOSUPPORT\n1 11 0: EINVAL\n"
    );
    let unix = ["1", "0x80001", "0", "2", "2", "0"];
    let out = common::apps::umon_run(&[], &app, &unix, b"");
    assert_eq!(stderr(&out), "", "no unsupported-syscall note");
    assert_eq!(stdout(&out), "1 0x80001 0: a socket\n2 2 0: a socket\n");
}

/// close_range(2) (OpenSSH's closefrom, Python's subprocess) as natively: ranges, the
/// close-on-exec form, the argument checks.
#[test]
fn close_range_closes_as_natively() {
    if !common::require_kvm() {
        return;
    }
    let app = c_app("dyn_close_range", Link::StaticPie);
    let linux = native(&app, &[] as &[&str], &[], b"");
    let umon = common::apps::umon_run(&[], &app, &[] as &[&str], b"");
    assert_eq!(stderr(&umon), stderr(&linux), "stderr");
    assert_eq!(stdout(&umon), stdout(&linux), "stdout");
    assert_eq!(umon.status.code(), linux.status.code(), "exit status");
    assert!(stdout(&linux).contains("7e 8e"), "{}", stdout(&linux));
}

/// ld.so's mappings of libc are private views of the file (issue 14: /proc/self/maps names
/// the libraries): each line that names a library reads as natively (permissions, offset,
/// device, inode, path), through ld.so's reservation, its MAP_FIXED segments and the holes it
/// makes PROT_NONE.
#[test]
fn proc_self_maps_names_the_libraries_as_natively() {
    if !common::require_kvm() || host_program(GLIBC_LDSO).is_none() {
        return;
    }
    let app = c_app("dyn_maps", Link::Dynamic);
    let out = same("maps", &app, &[], ENV, b"", &[&apps_dir(&app)]);
    assert!(stdout(&out).contains("libc.so.6"), "{out:?}");
}

/// The program's own lines and its interpreter's in /proc/self/maps, as Linux's ELF loader
/// maps them: one line per segment with its file offset (the RELRO part of the data segment a
/// line of its own once ld.so protected it), device, inode and path (the interpreter's with
/// its symlinks resolved), and the zeroed data past the file's last page an anonymous line;
/// then the `[heap]` lines (anonymous memory over the break's range, however it was made).
/// Addresses differ; sizes, permissions, offsets, devices, inodes, paths and order must not.
#[test]
fn proc_self_maps_shows_the_program_and_its_interpreter_as_natively() {
    if !common::require_kvm() || host_program(GLIBC_LDSO).is_none() {
        return;
    }
    let app = c_app("dyn_maps", Link::Dynamic);
    let out = same("images", &app, &["images"], ENV, b"", &[&apps_dir(&app)]);
    let text = stdout(&out);
    let real = std::fs::canonicalize(GLIBC_LDSO).unwrap();
    assert!(text.contains(&format!(" {}\n", s(&real))), "{text}");
    let exe = std::fs::canonicalize(&app).unwrap();
    assert!(text.contains(&format!(" {}\n", s(&exe))), "{text}");
    assert!(
        text.contains(" 00:00 0 \n"),
        "no line past the file: {text}"
    );
    assert!(text.contains(" [heap]\n"), "no heap: {text}");
}

/// The same for a musl program: musl's interpreter is its libc.so, named by its real path;
/// its malloc makes the first page of the break PROT_NONE, still `[heap]`.
#[test]
fn proc_self_maps_shows_a_musl_program_and_its_interpreter_as_natively() {
    if !common::require_kvm() || host_program(MUSL_LDSO).is_none() {
        return;
    }
    if host_program("/usr/bin/musl-gcc").is_none() {
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/dyn_maps.c");
    let app = built("dyn_maps-musl-dynamic", |out| {
        let mut cmd = std::process::Command::new("musl-gcc");
        cmd.args(["-O2", "-o"]).arg(out).arg(&src);
        cmd
    });
    let out = same(
        "musl images",
        &app,
        &["images"],
        ENV,
        b"",
        &[&apps_dir(&app)],
    );
    let text = stdout(&out);
    let real = std::fs::canonicalize(MUSL_LDSO).unwrap();
    assert!(text.contains(&format!(" {}\n", s(&real))), "{text}");
}

/// A static and a static-pie program: their own segments' lines, as Linux shows them.
#[test]
fn proc_self_maps_shows_static_programs_as_natively() {
    if !common::require_kvm() {
        return;
    }
    for link in Link::RUNNABLE {
        let app = c_app("dyn_maps", link);
        let out = same(
            "static images",
            &app,
            &["images"],
            ENV,
            b"",
            &[&apps_dir(&app)],
        );
        let text = stdout(&out);
        let exe = std::fs::canonicalize(&app).unwrap();
        assert!(text.contains(&format!(" {}\n", s(&exe))), "{text}");
        assert!(
            text.contains(" 00:00 0 \n"),
            "no line past the file: {text}"
        );
    }
}
