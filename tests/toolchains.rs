//! Toolchains nobody here wrote, run with `--root /` and compared with their native runs byte
//! for byte (stdout, stderr, exit status, every file they write): gcc compiling and linking
//! (cc1, as, collect2 and ld as child processes), make -j2 (a jobserver pipe, parallel
//! children), javac and a threaded Java program (the JVM: dozens of threads, JIT code made
//! executable with mprotect, signals), node (V8's JIT, libuv's threads, a child process) and
//! qemu-img.
//! A test whose program the host lacks is skipped, saying so (under `UMON_REQUIRE_KVM=1`, as in
//! CI, it fails: .ci/run installs what a fresh machine lacks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{native, run, s, umon_run_cmd};
use common::{stderr, stdout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The environment of both runs (the working directory's path is the same in both).
const ENV: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin"), ("LC_ALL", "C"), ("TZ", "UTC")];

/// `path` if the host has it; else None after saying so, or a failure under CI.
fn host_program(path: &str, package: &str) -> Option<PathBuf> {
    if Path::new(path).exists() {
        return Some(PathBuf::from(path));
    }
    if std::env::var("UMON_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("{path} is missing (Debian package {package}; .ci/run installs it)");
    }
    eprintln!("skipping: this host has no {path}");
    None
}

/// A fresh directory for `case` holding `files`, at the same host path in every run.
fn workdir(case: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("toolchains")
        .join(case);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Every file under `dir` (relative name -> bytes).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Run `program args` in a fresh `case` directory with `files`, natively and then under
/// umon (the directory a writable volume at its own path and the working directory), and
/// require the same stdout, stderr, exit status and files; returns the native run.
fn same(case: &str, files: &[(&str, &[u8])], program: &Path, args: &[&str]) -> Output {
    let dir = workdir(case, files);
    let mut env: Vec<(&str, &str)> = ENV.to_vec();
    let home = s(&dir).to_string();
    env.push(("HOME", &home));
    let linux = {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(&dir);
        run(&mut cmd, b"")
    };
    let native_files = contents(&dir);
    let dir = workdir(case, files);
    let volume = format!("{}:{}:rw", s(&dir), s(&dir));
    let mut opts: Vec<String> = ["--root", "/", "--timeout", "120s", "-v", &volume, "-w"]
        .map(String::from)
        .to_vec();
    opts.push(s(&dir).to_string());
    for (k, v) in &env {
        opts.push("-e".into());
        opts.push(format!("{k}={v}"));
    }
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let umon = run(&mut umon_run_cmd(&opts, program, args), b"");
    assert_eq!(
        stderr(&umon),
        stderr(&linux),
        "{case}: stderr differs (stdout under umon: {:?})",
        stdout(&umon)
    );
    assert_eq!(stdout(&umon), stdout(&linux), "{case}: stdout differs");
    assert_eq!(
        umon.status.code(),
        linux.status.code(),
        "{case}: exit status"
    );
    let umon_files = contents(&dir);
    assert_eq!(
        umon_files.keys().collect::<Vec<_>>(),
        native_files.keys().collect::<Vec<_>>(),
        "{case}: the files written"
    );
    for (name, bytes) in &native_files {
        assert!(umon_files[name] == *bytes, "{case}: {name} differs");
    }
    linux
}

const HELLO_C: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from gcc\"); return 0; }\n";

#[test]
fn gcc_compiles_and_links_a_program_as_natively() {
    let Some(gcc) = host_program("/usr/bin/gcc", "gcc") else {
        return;
    };
    if !common::require_kvm() {
        return;
    }
    let out = same(
        "gcc",
        &[("hello.c", HELLO_C.as_bytes())],
        &gcc,
        &["-O2", "-Wall", "-o", "hello", "hello.c"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // What umon built runs (the byte comparison above says it is what Linux built).
    let built = Path::new(env!("CARGO_TARGET_TMPDIR")).join("toolchains/gcc/hello");
    let ran = native(&built, &[] as &[&str], &[], b"");
    assert_eq!(stdout(&ran), "hello from gcc\n");
}

#[test]
fn make_runs_two_compilers_in_parallel_as_natively() {
    let (Some(make), Some(_)) = (
        host_program("/usr/bin/make", "make"),
        host_program("/usr/bin/gcc", "gcc"),
    ) else {
        return;
    };
    if !common::require_kvm() {
        return;
    }
    let makefile = "all: a b\n\
                    a: hello.c\n\tgcc -O2 -o a hello.c\n\
                    b: hello.c\n\tgcc -O0 -o b hello.c\n\t@echo built b\n\
                    fail:\n\tfalse\n";
    let files = [
        ("hello.c", HELLO_C.as_bytes()),
        ("Makefile", makefile.as_bytes()),
    ];
    let out = same("make", &files, &make, &["-j2"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("built b"), "{out:?}");
    // A failing recipe: make's own error line and status 2.
    let out = same("make-fail", &files, &make, &["fail"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

const THREADS_JAVA: &str = r#"public class T {
    public static void main(String[] args) throws Exception {
        Thread[] ts = new Thread[4];
        final long[] r = new long[4];
        for (int i = 0; i < 4; i++) {
            final int k = i;
            ts[i] = new Thread(() -> {
                long s = 0;
                for (int j = 0; j < 2000000; j++) s += j % (k + 3);
                r[k] = s;
            });
            ts[i].start();
        }
        for (Thread t : ts) t.join();
        System.out.println(java.util.Arrays.toString(r));
        java.nio.file.Files.writeString(java.nio.file.Path.of("out.txt"), "written\n");
        System.err.println("done");
        System.exit(3);
    }
}
"#;

#[test]
fn javac_and_a_threaded_java_program_run_as_natively() {
    let (Some(javac), Some(java)) = (
        host_program("/usr/bin/javac", "default-jdk-headless"),
        host_program("/usr/bin/java", "default-jdk-headless"),
    ) else {
        return;
    };
    if !common::require_kvm() {
        return;
    }
    let source = [("T.java", THREADS_JAVA.as_bytes())];
    let out = same("javac", &source, &javac, &["T.java"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The class javac wrote (identical to the native one, checked above) run by the JVM.
    let class =
        std::fs::read(Path::new(env!("CARGO_TARGET_TMPDIR")).join("toolchains/javac/T.class"))
            .unwrap();
    let out = same("java", &[("T.class", &class)], &java, &["-cp", ".", "T"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stderr(&out), "done\n");
}

const NODE_JS: &str = r#"const fs = require('fs');
const cp = require('child_process');
fs.writeFileSync('out.txt', 'hello\n');
console.log(fs.readFileSync('out.txt', 'utf8').trim());
console.log(cp.execSync('echo from a child').toString().trim());
setTimeout(() => { console.log('timer'); process.exitCode = 4; }, 20);
Promise.resolve(1).then(v => console.log('promise', v));
let s = 0; for (let i = 0; i < 3e6; i++) s += i % 7; console.log('jit', s);
"#;

#[test]
fn node_runs_a_script_with_a_child_and_timers_as_natively() {
    let Some(node) = host_program("/usr/bin/node", "nodejs") else {
        return;
    };
    if !common::require_kvm() {
        return;
    }
    let out = same("node", &[("t.js", NODE_JS.as_bytes())], &node, &["t.js"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stdout(&out).contains("from a child\n"), "{out:?}");
}

#[test]
fn qemu_img_makes_an_image_as_natively() {
    let Some(qemu_img) = host_program("/usr/bin/qemu-img", "qemu-utils") else {
        return;
    };
    if !common::require_kvm() {
        return;
    }
    // It tries io_uring first (ENOSYS under umon, as a kernel without it) and falls back.
    let out = same(
        "qemu-img",
        &[],
        &qemu_img,
        &["create", "-f", "qcow2", "disk.qcow2", "64M"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("Formatting 'disk.qcow2'"), "{out:?}");
}
