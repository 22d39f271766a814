//! The guest core: validated with goblin, placed by linux-loader at its physical addresses
//! (VA = PA), described for the page-table builder and the vCPU setup.
use crate::machine::memory::GuestMem;
use crate::machine::paging::PAGE_4K;
use goblin::elf::{program_header::PT_LOAD, Elf};
use linux_loader::loader::{elf::Elf as ElfLoader, KernelLoader};
use umon_abi::layout::{CORE_IMAGE_END, KERNEL_BASE};
use umon_abi::Gva;
use vm_memory::GuestAddress;

/// The built-in core, built from `guest/core` by build.rs.
pub static BUILTIN_CORE: &[u8] = include_bytes!(env!("UMON_CORE_ELF"));

/// One loadable segment of the core, page-rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreSegment {
    /// First byte (page-aligned).
    pub start: u64,
    /// End (page-aligned, exclusive).
    pub end: u64,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

/// Where the core went and the addresses the monitor needs from it.
#[derive(Clone, Debug)]
pub struct CoreImage {
    /// Entry point.
    pub entry: Gva,
    /// The 32 exception stubs, 16 bytes apart.
    pub vectors: Gva,
    /// The syscall entry stub (MSR_LSTAR).
    pub syscall_entry: Gva,
    /// The page range `[start, end)` mapped user-visible (the syscall stub page).
    pub user_text: (u64, u64),
    /// The exit-less stub page and its sites, when the core has one (a `--kernel` core may
    /// not: its vCPUs then enter `syscall_entry` only).
    pub exitless: Option<crate::machine::exitless::StubLayout>,
    /// Loadable segments.
    pub segments: Vec<CoreSegment>,
    /// End of the image (page-aligned).
    pub end: u64,
    /// The built-in core, whose boot only checks the boot info and asks to enter the
    /// application: the monitor enters an application directly instead. A core given with
    /// `--kernel` always boots.
    pub builtin: bool,
}

/// Why the guest core could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The core ELF is unusable.
    #[error("guest core {what}: {reason}")]
    Core {
        /// Which core (built-in or a path).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The core ELF could not be read.
    #[error("cannot read guest core {path}")]
    CoreRead {
        /// The path given with --kernel.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn bad(what: &str, reason: impl Into<String>) -> CoreError {
    CoreError::Core {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// Load the built-in core, or the one at `path` (`--kernel`).
pub fn load(mem: &GuestMem, path: Option<&std::path::Path>) -> Result<CoreImage, CoreError> {
    match path {
        None => Ok(CoreImage {
            builtin: true,
            ..load_core(mem, BUILTIN_CORE, "(built-in)")?
        }),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| CoreError::CoreRead {
                path: path.display().to_string(),
                source,
            })?;
            load_core(mem, &bytes, &path.display().to_string())
        }
    }
}

/// Check `bytes` as a umon core, place it in `mem` and describe it. `what` names it in errors.
pub fn load_core(mem: &GuestMem, bytes: &[u8], what: &str) -> Result<CoreImage, CoreError> {
    let elf = Elf::parse(bytes).map_err(|e| bad(what, format!("not a valid ELF file ({e})")))?;
    if !elf.is_64 || elf.header.e_machine != goblin::elf::header::EM_X86_64 {
        return Err(bad(what, "not an x86-64 ELF64 file"));
    }
    let mut segments = Vec::new();
    let mut end = 0u64;
    for ph in elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD) {
        let start = ph.p_vaddr & !(PAGE_4K - 1);
        let seg_end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .and_then(|e| e.checked_add(PAGE_4K - 1))
            .ok_or_else(|| bad(what, "segment size overflows"))?
            & !(PAGE_4K - 1);
        if ph.p_vaddr != ph.p_paddr {
            return Err(bad(what, "segments must be linked with VA = PA"));
        }
        if start < KERNEL_BASE || seg_end > CORE_IMAGE_END {
            return Err(bad(
                what,
                format!(
                    "segment {:#x}..{:#x} is outside {:#x}..{:#x} (the core must end below {:#x})",
                    ph.p_vaddr, seg_end, KERNEL_BASE, CORE_IMAGE_END, CORE_IMAGE_END
                ),
            ));
        }
        segments.push(CoreSegment {
            start,
            end: seg_end,
            write: ph.is_write(),
            exec: ph.is_executable(),
        });
        end = end.max(seg_end);
    }
    if segments.is_empty() {
        return Err(bad(what, "no loadable segments"));
    }
    let symbol = |name: &str| -> Result<u64, CoreError> {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
            .ok_or_else(|| bad(what, format!("missing symbol {name}")))
    };
    let vectors = symbol("umon_vectors")?;
    let syscall_entry = symbol("umon_syscall_entry")?;
    let user_text = (
        symbol("umon_user_text_start")?,
        symbol("umon_user_text_end")?,
    );
    pt_routine_layout(vectors, &symbol).map_err(|reason| bad(what, reason))?;
    let in_core = |a: u64| (KERNEL_BASE..end).contains(&a);
    if !in_core(elf.entry) || !in_core(vectors) || !in_core(syscall_entry) {
        return Err(bad(what, "entry or stub symbols outside the image"));
    }
    if user_text.0 % PAGE_4K != 0
        || user_text.1 % PAGE_4K != 0
        || !(user_text.0..user_text.1).contains(&syscall_entry)
    {
        return Err(bad(
            what,
            "the syscall stub must sit in its own page-aligned .user_text",
        ));
    }

    let exitless = crate::machine::exitless::StubLayout::from_symbols(|name| symbol(name).ok())
        .filter(|l| {
            in_core(l.page)
                && l.page % PAGE_4K == 0
                && !(user_text.0..user_text.1).contains(&l.page)
        });

    let mut image = std::io::Cursor::new(bytes);
    ElfLoader::load(
        mem.mmap(),
        None,
        &mut image,
        Some(GuestAddress(KERNEL_BASE)),
    )
    .map_err(|e| bad(what, format!("cannot place it ({e})")))?;

    Ok(CoreImage {
        entry: Gva(elf.entry),
        vectors: Gva(vectors),
        syscall_entry: Gva(syscall_entry),
        user_text,
        exitless,
        segments,
        end,
        builtin: false,
    })
}

/// The monitor enters the page-table routine by offset (umon_abi::pt): a core that has one
/// (`umon_pt_apply`) must have its sections there, the routine itself in the slot after the
/// compat stub (`setup::pt_apply_entry`). A `--kernel` core without one loads (it never gets
/// to run an application whose page tables change).
fn pt_routine_layout(
    vectors: u64,
    symbol: &dyn Fn(&str) -> Result<u64, CoreError>,
) -> Result<(), String> {
    use umon_abi::pt::{PT_FLUSH, PT_INVLPGS_END, PT_NOTIFY_AT, PT_RETURN, PT_STORES_END};
    let missing = |name: &str| format!("missing symbol {name}");
    let Ok(routine) = symbol("umon_pt_apply") else {
        return Ok(());
    };
    let slot = crate::machine::vcpu::setup::EXCEPTION_VECTORS + 1;
    let mut want = vec![("umon_pt_apply", vectors + 16 * slot)];
    for (name, off) in [
        ("umon_pt_stores_end", PT_STORES_END),
        ("umon_pt_invlpgs_end", PT_INVLPGS_END),
        ("umon_pt_flush", PT_FLUSH),
        ("umon_pt_notify", PT_NOTIFY_AT),
        ("umon_pt_return", PT_RETURN),
    ] {
        want.push((name, routine + off));
    }
    for (name, at) in want {
        let found = symbol(name).map_err(|_| missing(name))?;
        if found != at {
            return Err(format!(
                "{name} is at {found:#x}, not {at:#x} as guest ABI {} has it",
                umon_abi::ABI_VERSION
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pt_routine_off_the_abi_offsets_is_refused() {
        use umon_abi::pt::{PT_FLUSH, PT_INVLPGS_END, PT_NOTIFY_AT, PT_RETURN, PT_STORES_END};
        let vectors = 0x20_0010;
        let routine = vectors + 16 * 33;
        let good = |shift: u64| {
            move |name: &str| -> Result<u64, CoreError> {
                Ok(match name {
                    "umon_pt_apply" => routine,
                    "umon_pt_stores_end" => routine + PT_STORES_END,
                    "umon_pt_invlpgs_end" => routine + PT_INVLPGS_END,
                    "umon_pt_flush" => routine + PT_FLUSH,
                    "umon_pt_notify" => routine + PT_NOTIFY_AT + shift,
                    _ => routine + PT_RETURN,
                })
            }
        };
        assert!(pt_routine_layout(vectors, &good(0)).is_ok());
        let err = pt_routine_layout(vectors, &good(1)).unwrap_err();
        assert!(err.starts_with("umon_pt_notify is at"), "{err}");
        // A core without the routine loads.
        let none = |name: &str| Err(bad("test", format!("missing symbol {name}")));
        assert!(pt_routine_layout(vectors, &none).is_ok());
    }

    #[test]
    fn builtin_core_loads_below_the_limit() {
        let mem = GuestMem::new(64 << 20).unwrap();
        let core = load_core(&mem, BUILTIN_CORE, "built-in").unwrap();
        assert_eq!(core.entry, Gva(KERNEL_BASE));
        assert!(core.end <= CORE_IMAGE_END);
        assert!(
            core.segments.iter().all(|s| !(s.write && s.exec)),
            "core segments are W^X"
        );
    }

    #[test]
    fn corrupt_core_is_an_error_not_a_panic() {
        let mem = GuestMem::new(64 << 20).unwrap();
        for len in [0, 4, 16, 64, 100, 500, BUILTIN_CORE.len() / 2] {
            let r = load_core(&mem, &BUILTIN_CORE[..len], "truncated");
            assert!(r.is_err(), "truncated at {len} must fail");
        }
        assert!(load_core(&mem, b"#!/bin/sh\necho hi\n", "script").is_err());
    }

    /// PVM cannot run SSE, x87 or XSAVE at CPL0: the core must contain none of them.
    #[test]
    fn core_has_no_simd_or_x87_instructions() {
        let out = std::process::Command::new("objdump")
            .args(["-d", "--no-show-raw-insn", env!("UMON_CORE_ELF")])
            .output()
            .expect("objdump (binutils) is needed for this test");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("umon_vectors"), "disassembly looks empty");
        let banned = [
            "xmm",
            "ymm",
            "zmm",
            "xsave",
            "xrstor",
            "fxsave",
            "fxrstor",
            "fld",
            "fst",
            "fninit",
            "ldmxcsr",
            "stmxcsr",
            "xgetbv",
            "cmpxchg16b",
            "emms",
        ];
        for line in text.lines() {
            let insn = line.split('\t').nth(1).unwrap_or("");
            for b in banned {
                assert!(
                    !insn.contains(b),
                    "core contains a forbidden instruction: {line}"
                );
            }
        }
    }
}
