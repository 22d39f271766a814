//! Real programs nobody here wrote (Debian's busybox-static and bash-static), run natively and
//! under `umon run` in the same directory layout, so their outputs can be compared byte for byte.
//!
//! Every run gets a freshly made fixture directory at one fixed absolute path. Natively the
//! program runs with that directory as cwd; under umon the same path is the guest path of a
//! read-write volume (`-v DIR:DIR:rw -w DIR`), so every path the program prints is the same in
//! both runs. `/etc` is lent read-only to the guest so user and group names resolve as on the
//! host. Fixture files and directories get one fixed mtime, so `ls -l` and `stat` agree too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::apps::{run, umon_run_cmd};
use goblin::elf::{program_header::PT_INTERP, Elf};
use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The environment of both runs (umon's guest environment is empty unless `-e` sets it).
pub const ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("TZ", "UTC")];

/// The mtime of every fixture entry: 2021-02-03 04:05:06 UTC.
const FIXTURE_MTIME: i64 = 1_612_325_106;

/// The program at `path` if it is there and statically linked. When it is not: a panic if
/// `UMON_REQUIRE_KVM=1` (CI installs it, see .ci/run), else `None` after saying why the
/// test is skipped.
pub fn program(path: &str, package: &str) -> Option<PathBuf> {
    let problem = match std::fs::read(path) {
        Err(e) => format!("{path} is missing ({e})"),
        Ok(bytes) => match Elf::parse(&bytes) {
            Err(e) => format!("{path} is not an ELF file ({e})"),
            Ok(elf) if elf.program_headers.iter().any(|p| p.p_type == PT_INTERP) => {
                format!("{path} is dynamically linked")
            }
            Ok(_) => return Some(PathBuf::from(path)),
        },
    };
    if std::env::var("UMON_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("UMON_REQUIRE_KVM=1 but {problem}: apt-get install -y {package} (.ci/run does)");
    }
    eprintln!("skipping: {problem}; apt-get install -y {package}, or set UMON_REQUIRE_KVM=1 to fail instead");
    None
}

/// The fixture directory for `case`: always the same path within one test process.
pub fn fixture_path(case: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("real")
        .join(format!("{case}-{}", std::process::id()))
}

/// Text files, a binary file, a small tree with a symlink and a script, all with
/// [`FIXTURE_MTIME`]; whatever was at `dir` before is removed.
pub fn make_fixture(dir: &Path) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir.join("d/sub")).unwrap();
    let files: &[(&str, &[u8], u32)] = &[
        ("words.txt", b"pear\napple\nfig\napple\nbanana\npear\npear\nkiwi\n", 0o644),
        (
            "table.txt",
            b"alice\t30\tparis\nbob\t25\tlondon\ncarol\t35\tberlin\ndave\t25\trome\n",
            0o644,
        ),
        ("nums.txt", b"10\n3\n250\n-7\n42\n3\n", 0o644),
        (
            "csv.txt",
            b"id,name,qty\n1,bolt,100\n2,nut,250\n3,washer,75\n",
            0o600,
        ),
        ("empty", b"", 0o644),
        ("noeol.txt", b"first\nsecond without newline", 0o644),
        ("d/a", b"aaa\n", 0o644),
        ("d/b.txt", b"bee\nbee\n", 0o640),
        ("d/sub/c", b"deep file\n", 0o755),
        (
            "script.sh",
            b"# run as: bash script.sh ARGS\nn=0\nfor a in \"$@\"; do n=$((n + ${#a})); echo \"arg: $a\"; done\necho \"total length $n\"\nexit $(( n % 7 ))\n",
            0o755,
        ),
    ];
    for (name, data, mode) in files {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let bin: Vec<u8> = (0..=255u8).chain((0..64).map(|i| i * 3)).collect();
    std::fs::write(dir.join("bin.dat"), bin).unwrap();
    symlink("a", dir.join("d/link")).unwrap();
    // Children first: giving a directory its time after filling it keeps that time.
    for rel in [
        "words.txt",
        "table.txt",
        "nums.txt",
        "csv.txt",
        "empty",
        "noeol.txt",
        "bin.dat",
        "script.sh",
        "d/a",
        "d/b.txt",
        "d/link",
        "d/sub/c",
        "d/sub",
        "d",
        "",
    ] {
        set_mtime(&dir.join(rel));
    }
}

fn set_mtime(path: &Path) {
    let t = Timespec {
        tv_sec: FIXTURE_MTIME,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// A directory tree as text: for each entry (relative path) its type, mode, link count and
/// contents or link target. Times are left out: a program that writes runs at another moment
/// natively than under umon.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel =
                String::from_utf8_lossy(path.strip_prefix(root).unwrap().as_os_str().as_bytes())
                    .into_owned();
            let what = if meta.file_type().is_symlink() {
                format!("link -> {:?}", std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                walk(root, &path, out);
                "dir".to_owned()
            } else if meta.is_file() {
                let data = std::fs::read(&path).unwrap();
                format!("file {:?}", String::from_utf8_lossy(&data))
            } else {
                // A fifo or device node: opening it could block.
                format!("special {:?}", meta.file_type())
            };
            let facts = format!(
                "{what} mode {:o} nlink {}",
                meta.mode() & 0o7777,
                meta.nlink()
            );
            out.insert(rel, facts);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// What one run of a program did.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// The program's stderr; under umon without umon's own `unsupported syscall` notes.
    pub stderr: Vec<u8>,
    /// The exit code, or 128+N for signal N (what umon reports).
    pub status: i32,
    /// The fixture directory afterwards.
    pub tree: BTreeMap<String, String>,
}

/// `PROGRAM ARGS...` natively in a fresh fixture at `fixture_path(case)`, cwd there.
pub fn native(case: &str, program: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let dir = fixture_path(case);
    make_fixture(&dir);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(ENV.iter().copied())
        .current_dir(&dir);
    let out = run(&mut cmd, stdin);
    finish(out, None, &dir)
}

/// `umon run` of the same, the fixture as a read-write volume at its own path and the
/// working directory; also returns umon's notes (`umon: unsupported syscall N (name)` lines).
pub fn under_umon(
    case: &str,
    program: &Path,
    args: &[&str],
    stdin: &[u8],
) -> (Outcome, Vec<String>) {
    let dir = fixture_path(case);
    make_fixture(&dir);
    let d = dir.to_str().expect("test paths are UTF-8");
    let volume = format!("{d}:{d}:rw");
    let mut opts = vec!["-v", &volume, "-v", "/etc:/etc:ro", "-w", d];
    let env: Vec<String> = ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for e in &env {
        opts.extend(["-e", e.as_str()]);
    }
    let out = run(&mut umon_run_cmd(&opts, program, args), stdin);
    let (stderr, notes) = split_notes(&out.stderr);
    (finish(out, Some(stderr), &dir), notes)
}

fn finish(out: Output, stderr: Option<Vec<u8>>, dir: &Path) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => unreachable!("a finished process has a code or a signal"),
    };
    let outcome = Outcome {
        stdout: out.stdout,
        stderr: stderr.unwrap_or(out.stderr),
        status,
        tree: tree(dir),
    };
    std::fs::remove_dir_all(dir).ok();
    outcome
}

/// umon writes a note into the app's stderr the first time the app makes a syscall umon does
/// not serve (`umon: unsupported syscall 246 (kexec_load)` and a newline, possibly in the middle of
/// a line the app is writing); those bytes are umon's, not the program's. Returns the stderr
/// without them, and the syscall names (or numbers, when umon knows no name) they name.
pub fn split_notes(stderr: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut rest = Vec::with_capacity(stderr.len());
    let mut notes = Vec::new();
    let mut i = 0;
    while i < stderr.len() {
        if let Some(body_at) = note_body(&stderr[i..]) {
            if let Some(nl) = stderr[i..].iter().position(|&b| b == b'\n') {
                let body = String::from_utf8_lossy(&stderr[i + body_at..i + nl]);
                let name = body
                    .split_once(" (")
                    .map(|(_, n)| n.trim_end_matches(')').to_owned())
                    .unwrap_or_else(|| body.into_owned());
                notes.push(name);
                i += nl + 1;
                continue;
            }
        }
        rest.push(stderr[i]);
        i += 1;
    }
    (rest, notes)
}

/// Where the body (`246 (kexec_load)`) of a note at the start of `s` begins: after
/// `umon: unsupported syscall `, or a child process's `umon: pid N: unsupported syscall `.
fn note_body(s: &[u8]) -> Option<usize> {
    const UMON: &[u8] = b"umon: ";
    const NOTE: &[u8] = b"unsupported syscall ";
    let after = s.strip_prefix(UMON)?;
    if after.starts_with(NOTE) {
        return Some(UMON.len() + NOTE.len());
    }
    let pid = after.strip_prefix(b"pid ")?;
    let digits = pid.iter().take_while(|b| b.is_ascii_digit()).count();
    let tail = pid[digits..].strip_prefix(b": ")?;
    (digits > 0 && tail.starts_with(NOTE)).then(|| s.len() - tail.len() + NOTE.len())
}
