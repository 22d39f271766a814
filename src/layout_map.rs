//! The guest memory map as text, for `umon layout`.
use crate::config::format_size;
use std::fmt::Write;
use umon_abi::layout::*;

/// The map for a VM with `ram_bytes` of RAM, one range per line.
pub fn render(ram_bytes: u64) -> String {
    let mut s = String::new();
    let row = |s: &mut String, start: u64, end: u64, what: &str| {
        let _ = writeln!(s, "{start:#018x} .. {end:#018x}  {what}");
    };
    let _ = writeln!(
        s,
        "guest virtual memory map ({} of RAM)",
        format_size(ram_bytes)
    );
    row(&mut s, 0, KERNEL_BASE, "reserved, unmapped (NULL guard)");
    row(
        &mut s,
        KERNEL_BASE,
        CORE_IMAGE_END,
        "core image, VA = PA (kernel_base)",
    );
    row(
        &mut s,
        CORE_IMAGE_END,
        LZKERNEL_BASE,
        "core reservation; ET_EXEC apps load here, ld.so maps them here (lzkernel_base)",
    );
    row(
        &mut s,
        PROGRAM_BASE,
        PROGRAM_BASE + NAMESPACE_BYTES,
        "s_program (program_base)",
    );
    row(
        &mut s,
        namespace_base(FIRST_APP_NAMESPACE),
        namespace_base(FIRST_APP_NAMESPACE) + NAMESPACE_BYTES,
        "ELF namespace 1: the application (static-pie image, stack)",
    );
    row(
        &mut s,
        namespace_base(2),
        PROGRAM_END,
        &format!("ELF namespaces 2..{} (8G each, unused)", MAX_NAMESPACES),
    );
    row(
        &mut s,
        MMAP_BASE,
        MMAP_BASE + ram_bytes.saturating_sub(APP_PHYS_BASE),
        "heap arena (mmap area): brk and mmap, at most the RAM left by image and stack",
    );
    for area in Area::LINEAR {
        row(
            &mut s,
            area.base(),
            area.base() + ram_bytes,
            &format!("{} area: all RAM, linear, supervisor-only, NX", area.name()),
        );
    }
    row(
        &mut s,
        Area::Debug.base(),
        u64::MAX,
        "Debug area: reserved, unmapped",
    );
    let _ = writeln!(s, "\nguest physical memory");
    row(&mut s, 0, BOOT_GDT, "unused");
    row(
        &mut s,
        BOOT_GDT,
        PAGE_TABLES_BASE,
        "GDT, IDT, TSS, boot info, core stacks",
    );
    row(&mut s, PAGE_TABLES_BASE, PAGE_TABLES_END, "page tables");
    row(&mut s, KERNEL_BASE, CORE_IMAGE_END, "core image");
    row(&mut s, APP_PHYS_BASE, ram_bytes, "application memory");
    s
}
