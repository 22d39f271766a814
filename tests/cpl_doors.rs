//! The application must never reach the guest's CPL0: `tests/apps/cpl_doors.c` (an ET_EXEC, so
//! its code also runs in a 32-bit segment) tries every door: far jumps, calls, returns and
//! `iretq` to the 32-bit code selector and to every other GDT/LDT selector, a compatibility-mode
//! `syscall` (which entered the core at MSR_CSTAR on the app's own stack), `sysenter`,
//! `int $0x80` and `int N`, with rsp pointing at the core's own exception vectors through the
//! Main window (where a CPL0 exception frame without a stack switch would land). Each ends with
//! the signal Linux sends, exit 128 + signal and one line; never a core crash (exit 125).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
mod common;

use common::apps::{c_app, native, s, umon_run, Link};
use common::{stderr, stdout};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Output;
use umon_abi::layout::{selector, KERNEL_BASE, PHYS_MEM};

fn doors() -> PathBuf {
    c_app("cpl_doors", Link::Static)
}

/// rsp for the attacks: the core's exception vectors, seen through the Main window.
fn core_through_main() -> String {
    format!("{:x}", PHYS_MEM + KERNEL_BASE)
}

/// `umon run cpl_doors ARGS`: no panic, no core crash, and if the app was killed, one line.
fn under_umon(args: &[&str]) -> Output {
    let out = umon_run(&[], doors(), args, b"");
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(125),
        "cpl_doors {args:?} broke the monitor or the core: {:?} {err}",
        out.status
    );
    if out.status.code().unwrap_or(0) > 128 {
        assert!(
            err.starts_with("umon: app killed by SIG") && err.lines().count() == 1,
            "cpl_doors {args:?}: want one line naming the signal, got {err:?}"
        );
    }
    out
}

/// The signal a status of 128 + N means, with its name as umon prints it.
fn killed_by(o: &Output) -> Option<(i32, &'static str)> {
    [
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGSEGV, "SIGSEGV"),
    ]
    .into_iter()
    .find(|(sig, _)| o.status.code() == Some(128 + sig))
}

/// Dies of `signal` under umon (one line naming it), and natively too when `linux` says so.
fn assert_killed(args: &[&str], signal: i32, linux: bool) {
    let umon = under_umon(args);
    let (got, name) = killed_by(&umon).unwrap_or_else(|| {
        panic!(
            "cpl_doors {args:?}: {:?} {} {}",
            umon.status,
            stdout(&umon),
            stderr(&umon)
        )
    });
    assert_eq!(got, signal, "cpl_doors {args:?}: killed by {name}");
    assert!(stdout(&umon).starts_with(&format!("door: {}\n", args.join(" "))));
    if linux {
        let l = native(doors(), args, &[], b"");
        assert_eq!(
            l.status.signal(),
            Some(signal),
            "cpl_doors {args:?} natively"
        );
        assert_eq!(stdout(&l), stdout(&umon), "cpl_doors {args:?}");
    }
}

#[test]
fn the_32_bit_code_selector_is_a_fault_from_every_far_transfer() {
    if !common::require_kvm() {
        return;
    }
    // The 32-bit selector STAR names (and its RPL 0 spelling) is no code segment: on Linux it is
    // the kernel's data segment, a #GP, and so it must be here, whatever the 32-bit code does.
    let user32 = format!("{:x}", selector::USER32_CS);
    let user32_rpl0 = format!("{:x}", selector::USER32_CS & !3);
    let rsp = core_through_main();
    for sel in [&user32, &user32_rpl0] {
        for kind in ["syscall", "int80", "sysenter", "ud2"] {
            for how in ["far", "lcall", "lret", "iret"] {
                assert_killed(&[how, sel, kind], libc::SIGSEGV, true);
            }
        }
        // The reported attack: compat `syscall` with rsp on the core's page-fault vector.
        assert_killed(&["far", sel, "syscall", &rsp], libc::SIGSEGV, true);
    }
}

#[test]
fn no_selector_reaches_compatibility_mode_or_cpl0() {
    if !common::require_kvm() {
        return;
    }
    // Every selector of the 8-slot GDT with each RPL, LDT selectors, and some far past the end.
    let sels: Vec<u16> = (0..0x80).chain([0xfff8, 0xfffb, 0xfffc, 0xffff]).collect();
    for how in ["far", "iret", "lret"] {
        for sel in &sels {
            let sel = format!("{sel:x}");
            let sel = sel.as_str();
            let args = [how, sel, "mode"];
            let out = under_umon(&args);
            let text = stdout(&out);
            let compat_end = text
                .lines()
                .find_map(|l| l.strip_prefix("door: compat mode would end at "))
                .unwrap_or_else(|| panic!("{args:?}: no address line in {text:?}"))
                .to_owned();
            let err = stderr(&out);
            // A far transfer ends in a fault (SIGSEGV; SIGILL where PVM's instruction emulator
            // gives up on a descriptor), or lands in 64-bit user code (SIGTRAP from the int3
            // there: our user selector, and under PVM the host's user selector, which PVM lets
            // through). Never in 32-bit code.
            assert!(
                matches!(
                    killed_by(&out),
                    Some((libc::SIGSEGV | libc::SIGILL | libc::SIGTRAP, _))
                ),
                "{args:?}: {:?} {err}",
                out.status
            );
            // PVM runs CPL3 on the host's GDT, whose 32-bit user selector (0x23, RPL 3) an
            // `iretq` reaches without asking the guest: that one is PVM's, out of umon's hands
            // (see the compat-syscall test for what it can do there).
            let compat = err.contains(&format!("SIGILL: rip {compat_end}"));
            assert!(
                !compat || (pvm() && how == "iret" && sel == PVM_HOST_USER32_CS),
                "{args:?} reached compatibility mode: {err}"
            );
        }
    }
}

/// The host's 32-bit user code selector (Linux's `__USER32_CS`), which PVM's CPL3 uses.
const PVM_HOST_USER32_CS: &str = "23";

#[test]
fn a_compat_mode_syscall_ends_the_app_and_never_enters_cpl0() {
    if !common::require_kvm() {
        return;
    }
    // Where compatibility mode is reachable at all (PVM: `iretq` to the host's 32-bit
    // selector), `syscall` there enters the core at MSR_CSTAR at CPL0 on the app's rsp: umon
    // has no 32-bit ABI, so the stub there ends the app with SIGILL before touching anything.
    // On hardware the selector is umon's user data segment: SIGSEGV at the iretq. With rsp on
    // the core's vectors through the Main window, the old CSTAR (0) pushed a CPL0 #PF frame
    // there, and the monitor reported a core crash.
    let rsp = core_through_main();
    for extra in [None, Some(rsp.as_str())] {
        let owned: Vec<String> = ["iret", PVM_HOST_USER32_CS, "syscall"]
            .into_iter()
            .chain(extra)
            .map(String::from)
            .collect();
        let args = refs(&owned);
        let out = under_umon(&args);
        let err = stderr(&out);
        let ok = match killed_by(&out) {
            Some((libc::SIGILL, _)) => err.contains("syscall from 32-bit code"),
            Some((libc::SIGSEGV, _)) => !pvm(),
            _ => false,
        };
        assert!(ok, "{args:?}: {:?} {err}", out.status);
        // `int $0x80` and `sysenter` from 32-bit code: faults, or (PVM) no effect at all.
        for kind in ["int80", "sysenter"] {
            let out = under_umon(&["iret", PVM_HOST_USER32_CS, kind]);
            assert!(
                matches!(killed_by(&out), Some((libc::SIGSEGV | libc::SIGILL, _))),
                "{kind}: {:?} {}",
                out.status,
                stderr(&out)
            );
        }
    }
}

/// Whether this machine's KVM is PVM.
fn pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

#[test]
fn int_n_from_user_mode_is_a_fault_except_int3_and_int4() {
    if !common::require_kvm() {
        return;
    }
    let rsp = core_through_main();
    for extra in [None, Some(rsp.as_str())] {
        let with = |n: &str| -> Vec<String> {
            ["int", n]
                .into_iter()
                .chain(extra)
                .map(String::from)
                .collect()
        };
        // As on Linux: int3 is SIGTRAP, `int $4` (#OF, DPL 3) is SIGSEGV.
        let int3 = with("3");
        assert_killed(&refs(&int3), libc::SIGTRAP, true);
        let int4 = with("4");
        assert_killed(&refs(&int4), libc::SIGSEGV, true);
        // Everything else is a #GP: SIGSEGV (0x80 too: umon has no IA32 emulation, so only umon
        // is asked). PVM does not deliver a software interrupt through a DPL 0 gate at all: the
        // instruction does nothing there and the ud2 after it ends the program (SIGILL at
        // int N + 2). Either way, never the core.
        for n in [0u32, 1, 2, 5, 6, 8, 13, 14, 17, 18, 31, 32, 0x80, 200, 255] {
            let owned = with(&n.to_string());
            let args = refs(&owned);
            if !pvm() {
                assert_killed(&args, libc::SIGSEGV, n != 0x80);
                continue;
            }
            let out = under_umon(&args);
            let err = stderr(&out);
            let ok = match killed_by(&out) {
                Some((libc::SIGSEGV, _)) => true,
                Some((libc::SIGILL, _)) => err.lines().count() == 1,
                _ => false,
            };
            assert!(ok, "{args:?}: {:?} {err}", out.status);
        }
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn sysenter_is_a_fault() {
    if !common::require_kvm() {
        return;
    }
    // SYSENTER_CS is 0: #GP (SIGSEGV) on Intel; AMD has no sysenter in long mode (#UD, SIGILL).
    for args in [vec!["sysenter"], vec!["sysenter", &core_through_main()]] {
        let out = under_umon(&args);
        assert!(
            matches!(killed_by(&out), Some((libc::SIGSEGV | libc::SIGILL, _))),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
    }
}

#[test]
fn the_door_program_itself_runs_natively() {
    // The program's own expectations, without KVM: far transfers to the user code selector
    // Linux gives 64-bit code land, and the usage line for nonsense.
    let out = native(doors(), &["far", "33", "ret64"], &[], b"");
    assert_eq!(stdout(&out), "door: far 33 ret64\ndoor: landed\n");
    let out = native(doors(), &["bogus"], &[], b"");
    assert_eq!(out.status.code(), Some(2), "{}", s(&doors()));
}
