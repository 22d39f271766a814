//! The harnesses behind umon's fuzz targets (`fuzz_targets/*.rs` are one-line wrappers around
//! these), kept in a library so the seed corpus can also be replayed by `cargo test` on a stable
//! toolchain. Every harness panics only when umon misbehaves: a panic in umon itself, or a
//! broken invariant the harness checks (documented at each check).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod elf;
pub mod input;
pub mod machine;
pub mod volume;

pub use elf::elf_plan;
pub use machine::{hypercall, syscall};

#[cfg(test)]
mod seeds {
    //! The committed seeds do what their names say (so the corpus reaches deep code), and every
    //! file in each corpus directory, seeds and anything the fuzzer added, replays cleanly.
    use crate::machine::{run_hypercall, run_syscall, Ended};
    use std::path::{Path, PathBuf};
    use umon::image::elf::{plan, symbols, AppError, AppKind};
    use umon::ExitStatus;

    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect()
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        corpus(target)
            .into_iter()
            .find(|(n, _)| n == &format!("seed-{name}"))
            .unwrap_or_else(|| panic!("no seed {target}/{name}: run python3 fuzz/make_seeds.py"))
            .1
    }

    #[test]
    fn every_corpus_file_replays() {
        for (name, data) in corpus("elf_plan") {
            eprintln!("elf_plan/{name}");
            crate::elf_plan(&data);
        }
        for (name, data) in corpus("syscall") {
            eprintln!("syscall/{name}");
            crate::syscall(&data);
        }
        for (name, data) in corpus("hypercall") {
            eprintln!("hypercall/{name}");
            crate::hypercall(&data);
        }
    }

    #[test]
    fn elf_seeds_plan_or_fail_as_named() {
        let base = crate::elf::PIE_BASE;
        let ok = |n: &str| {
            let b = seed("elf_plan", n);
            plan(&b, b.len() as u64, base).unwrap_or_else(|e| panic!("{n}: {e}"))
        };
        assert_eq!(ok("static-exit42").kind, AppKind::Static);
        assert_eq!(ok("static-pie").kind, AppKind::StaticPie);
        let sym = ok("symbols");
        let names: Vec<String> = symbols(&seed("elf_plan", "symbols"), sym.bias)
            .into_iter()
            .map(|s| s.2)
            .collect();
        assert_eq!(names, ["main"]);
        let err = |n: &str| {
            let b = seed("elf_plan", n);
            plan(&b, b.len() as u64, base).expect_err(n)
        };
        assert!(matches!(err("interp"), AppError::Dynamic(i) if i.contains("ld-linux")));
        assert!(matches!(err("overlap"), AppError::Overlap(_)));
        assert!(matches!(
            err("filesz-over-memsz"),
            AppError::FileszOverMemsz { .. }
        ));
        assert!(matches!(err("phoff-past-eof"), AppError::Truncated(_)));
        assert!(matches!(err("truncated"), AppError::Truncated(_)));
    }

    fn stdout(m: &crate::machine::Machine) -> String {
        String::from_utf8_lossy(&m.stdout.lock().unwrap()).into_owned()
    }

    #[test]
    fn syscall_seeds_run_as_named() {
        let m = run_syscall(&seed("syscall", "hello"));
        assert_eq!(stdout(&m), "hello\n");
        assert_eq!(m.ended, Some(Ended::Status(ExitStatus::Exited(0))));

        let m = run_syscall(&seed("syscall", "vectored"));
        assert!(stdout(&m).starts_with("abcdexyz"), "{:?}", stdout(&m));
        assert_eq!(m.ended, None);

        let m = run_syscall(&seed("syscall", "waits"));
        assert!(
            matches!(&m.ended, Some(Ended::Error(e)) if e.contains("blocked forever")),
            "{:?}",
            m.ended
        );
        let m = run_syscall(&seed("syscall", "process"));
        assert_eq!(m.ended, Some(Ended::Status(ExitStatus::Exited(3))));
        let m = run_syscall(&seed("syscall", "echo-pvm"));
        assert_eq!(m.ended, Some(Ended::Status(ExitStatus::Exited(7))));
        let m = run_syscall(&seed("syscall", "volume-read"));
        assert_eq!(stdout(&m), "hello volume\n");
        let m = run_syscall(&seed("syscall", "volume-tree"));
        let trace = String::from_utf8_lossy(&m.stderr.lock().unwrap()).into_owned();
        for line in [
            "mkdir(\"/data/new\", 0o755) = 0",
            "rename(\"/data/new\", \"/data/dir/new\") = 0",
            "getdents64(3, ",
        ] {
            assert!(trace.contains(line), "no {line:?} in the trace:\n{trace}");
        }
        for name in [
            "mm",
            "signals",
            "info",
            "hostile",
            "summary",
            "volume-write",
            "volume-tree",
            "volume-escape",
        ] {
            let m = run_syscall(&seed("syscall", name));
            assert!(
                !matches!(m.ended, Some(Ended::Error(_))),
                "{name}: {:?}",
                m.ended
            );
        }
    }

    #[test]
    fn hypercall_seeds_run_as_named() {
        let m = run_hypercall(&seed("hypercall", "console"));
        assert_eq!(stdout(&m), "hello\n");
        assert_eq!(m.ended, Some(Ended::Status(ExitStatus::Exited(255))));
        let m = run_hypercall(&seed("hypercall", "console-past-ram"));
        assert!(
            matches!(&m.ended, Some(Ended::Error(e)) if e.contains("ConsoleWrite with bad argument")),
            "{:?}",
            m.ended
        );
        let m = run_hypercall(&seed("hypercall", "abort"));
        assert_eq!(
            m.ended,
            Some(Ended::Error("guest core aborted: bad things".into()))
        );
        let m = run_hypercall(&seed("hypercall", "fault"));
        assert!(
            matches!(&m.ended, Some(Ended::Status(ExitStatus::Signaled { signal: 11, report }))
                if report.contains("fault address 0x0")),
            "{:?}",
            m.ended
        );
        let m = run_hypercall(&seed("hypercall", "core-fault"));
        assert!(
            matches!(&m.ended, Some(Ended::Error(e)) if e.contains("guest core crashed")),
            "{:?}",
            m.ended
        );
        let m = run_hypercall(&seed("hypercall", "selftest-enter"));
        assert_eq!(m.selftest.map(|r| r.checks), Some(8));
        assert!(
            matches!(&m.ended, Some(Ended::Error(e)) if e.contains("unknown hypercall 0")),
            "{:?}",
            m.ended
        );
    }
}
