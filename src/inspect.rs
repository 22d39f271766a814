//! `umon inspect APP`: where an application would go and how it would start, without a VM.
use crate::config::format_size;
use crate::image::elf::{AppKind, LoadPlan};
use crate::image::place::{Layout, STACK_BYTES, STACK_GUARD_BYTES};
use std::fmt::Write;

/// The report, one fact per line.
pub fn render(path: &str, plan: &LoadPlan, lay: &Layout, ram: u64) -> String {
    let mut s = String::new();
    let kind = match plan.kind {
        AppKind::StaticPie => "static-pie (ET_DYN, no interpreter): placed in a program namespace",
        AppKind::Static => "static (ET_EXEC): loaded at its link address",
    };
    let ns = umon_abi::layout::namespace_base(lay.namespace);
    let _ = writeln!(s, "app:          {path}");
    let _ = writeln!(s, "kind:         {kind}");
    let _ = writeln!(s, "interpreter:  none");
    let _ = writeln!(
        s,
        "namespace:    {} at {:#x}..{:#x}",
        lay.namespace,
        ns,
        ns + umon_abi::layout::NAMESPACE_BYTES
    );
    if plan.bias != 0 {
        let _ = writeln!(s, "load bias:    {:#x}", plan.bias);
    }
    let _ = writeln!(s, "entry:        {:#x}", plan.entry);
    let _ = writeln!(
        s,
        "image:        {:#x}..{:#x} ({}), guest physical {:#x}",
        plan.start,
        plan.end,
        format_size(plan.end - plan.start),
        lay.pa_image
    );
    let _ = writeln!(s, "segments:");
    for seg in &plan.segments {
        let perms = format!(
            "{}{}{}",
            if seg.read { 'r' } else { '-' },
            if seg.write { 'w' } else { '-' },
            if seg.exec { 'x' } else { '-' }
        );
        let _ = writeln!(
            s,
            "  {:#x}..{:#x} {perms}  file {:#x}+{:#x}, zeroed {:#x}",
            seg.vaddr,
            seg.vaddr + seg.memsz,
            seg.offset,
            seg.filesz,
            seg.memsz - seg.filesz
        );
    }
    let _ = writeln!(
        s,
        "program headers (AT_PHDR): {:#x}, {} of {} bytes",
        plan.phdr, plan.phnum, plan.phent
    );
    let _ = writeln!(
        s,
        "stack:        {:#x}..{:#x} ({}), unmapped guard of {} below",
        lay.stack_bottom,
        lay.stack_top,
        format_size(STACK_BYTES),
        format_size(STACK_GUARD_BYTES)
    );
    let _ = writeln!(
        s,
        "heap arena:   {:#x}..{:#x} ({} of {} guest RAM): brk grows up, mmap comes down",
        lay.arena_start,
        lay.arena_start + lay.arena_len,
        format_size(lay.arena_len),
        format_size(ram)
    );
    s
}
