//! The vCPU's initial state: long mode, GDT/IDT/TSS, syscall MSRs and CPUID, all set by the
//! monitor so that the core runs as few (emulated, on PVM) instructions as possible.
use super::VcpuError;
use crate::machine::core::CoreImage;
use crate::machine::kvm::Platform;
use crate::machine::memory::GuestMem;
use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_segment, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd};
use umon_abi::hypercall::Hypercall;
use umon_abi::layout::{
    selector, BOOT_GDT, BOOT_IDT, BOOT_INFO, BOOT_TSS, CORE_EXCEPTION_STACK_TOP, CORE_STACK_TOP,
    PHYS_MEM,
};
use umon_abi::Gpa;

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_EFER: u32 = 0xc000_0080;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;

/// RFLAGS bits cleared on `syscall`: TF, IF, DF, IOPL, NT, AC.
pub const SYSCALL_RFLAGS_MASK: u64 = 0x4_7700;

/// Offset of the I/O permission bitmap in the TSS.
const TSS_IOPB: u64 = 0x68;
/// Offset of IST1 (the exception stack every IDT gate names) in the TSS.
const TSS_IST1: usize = 0x24;
/// The IST slot every gate uses.
const EXCEPTION_IST: u64 = 1;
/// TSS size: the 64-bit TSS, a bitmap for ports 0..=0xff, and the terminating 0xff byte.
pub const TSS_BYTES: u64 = TSS_IOPB + 32 + 1;

/// Number of exception vectors the core handles.
pub const EXCEPTION_VECTORS: u64 = 32;

/// Vectors the application may raise with `int N` (IDT gate DPL 3), as on Linux: `int3` (#BP,
/// SIGTRAP) and `int $4` (#OF, SIGSEGV). Every other `int N` is a #GP (SIGSEGV); vector 0x80
/// is past the IDT's limit, as on a kernel without IA32 emulation. (PVM does neither: there an
/// `int N` for any other N does nothing at all, measured; it never reaches the core.)
const USER_VECTORS: [u64; 2] = [3, 4];

/// Where `syscall` from compatibility mode enters (MSR_CSTAR, at CPL0 on the application's
/// stack): the slot after the 32 exception vectors, a stub that has the monitor end the
/// application (SIGILL) without touching the stack. umon's GDT has no 32-bit user code segment
/// (see [`write_tables`]), but PVM runs CPL3 on the host's GDT, and an `iretq` to the host's
/// 32-bit user selector (0x23) does give the application compatibility mode there (measured).
pub fn compat_syscall_entry(core: &CoreImage) -> u64 {
    core.vectors.0 + 16 * EXCEPTION_VECTORS
}

/// Write GDT, TSS and IDT into guest memory (physical addresses from the layout; the CPU sees
/// them through the Main window).
pub fn write_tables(mem: &GuestMem, core: &CoreImage, platform: Platform) -> Result<(), VcpuError> {
    let mut gdt = [0u64; selector::GDT_ENTRIES];
    gdt[(selector::KERNEL_CS >> 3) as usize] = 0x00af_9b00_0000_ffff;
    gdt[(selector::KERNEL_DS >> 3) as usize] = 0x00cf_9300_0000_ffff;
    // No 32-bit user code segment: the USER32_CS slot (STAR's base) holds a DPL 0 data
    // segment, so a far jump/call/return or iretq to it is a #GP (SIGSEGV), and on hardware the
    // application has no compatibility mode at all (on PVM see `compat_syscall_entry`). Not an
    // empty slot: PVM's emulator answers a far jump to one with #UD, not #GP.
    gdt[(selector::USER32_CS >> 3) as usize] = 0x00cf_9300_0000_ffff;
    gdt[(selector::USER_DS >> 3) as usize] = 0x00cf_f300_0000_ffff;
    gdt[(selector::USER_CS >> 3) as usize] = 0x00af_fb00_0000_ffff;
    let tss_base = PHYS_MEM + BOOT_TSS;
    let tss_limit = TSS_BYTES - 1;
    let t = (selector::TSS >> 3) as usize;
    gdt[t] = tss_limit
        | ((tss_base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((tss_base >> 24) & 0xff) << 56);
    gdt[t + 1] = tss_base >> 32;
    mem.write(Gpa(BOOT_GDT), &gdt)?;

    // 64-bit TSS: RSP0 at offset 4, IST1, then the I/O permission bitmap for ports 0..=0xff.
    // Every gate switches to IST1 (the same stack as RSP0), so an exception taken at CPL0
    // never pushes its frame where the application pointed rsp (hardware `syscall` enters CPL0
    // on the application's stack).
    let mut tss = [0u8; TSS_BYTES as usize];
    let exception_stack = (PHYS_MEM + CORE_EXCEPTION_STACK_TOP).to_le_bytes();
    tss[4..12].copy_from_slice(&exception_stack);
    tss[TSS_IST1..TSS_IST1 + 8].copy_from_slice(&exception_stack);
    tss[0x66..0x68].copy_from_slice(&(TSS_IOPB as u16).to_le_bytes());
    tss[TSS_IOPB as usize..].fill(0xff);
    if platform == Platform::Pvm {
        // PVM enters the syscall stub at CPL3 (with IOPL 0), so the stub's port must be open to
        // CPL3 in the bitmap. Only that one port: the core's other hypercalls run at CPL0. On
        // hardware the stub runs at CPL0 and the application gets no port at all.
        let port = usize::from(Hypercall::Syscall.port());
        tss[TSS_IOPB as usize + port / 8] &= !(1 << (port % 8));
    }
    mem.write(Gpa(BOOT_TSS), &tss)?;

    let mut idt = [0u64; 2 * EXCEPTION_VECTORS as usize];
    for v in 0..EXCEPTION_VECTORS {
        let handler = core.vectors.0 + 16 * v;
        // Interrupt gate (type 0xE), present, IST 1; DPL 3 only where Linux allows `int N`.
        let dpl = if USER_VECTORS.contains(&v) { 3 } else { 0 };
        idt[2 * v as usize] = (handler & 0xffff)
            | (u64::from(selector::KERNEL_CS) << 16)
            | (EXCEPTION_IST << 32)
            | ((0x8e | (dpl << 5)) << 40)
            | (((handler >> 16) & 0xffff) << 48);
        idt[2 * v as usize + 1] = handler >> 32;
    }
    mem.write(Gpa(BOOT_IDT), &idt)?;
    Ok(())
}

fn segment(sel: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: sel,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// What the monitor found out about the CPU while setting it up.
#[derive(Clone, Copy, Debug)]
pub struct CpuFeatures {
    /// 1 GiB pages work for the guest.
    pub gib_pages: bool,
    /// XSAVE is available (AVX state for the application).
    pub xsave: bool,
}

/// The CPUID the guest sees: what KVM supports, minus what the platform cannot do.
pub fn guest_cpuid(kvm: &Kvm, platform: Platform) -> Result<(CpuId, CpuFeatures), VcpuError> {
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|source| VcpuError::Setup {
            what: "KVM_GET_SUPPORTED_CPUID",
            source,
        })?;
    let mut features = CpuFeatures {
        gib_pages: false,
        xsave: false,
    };
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => features.xsave = e.ecx & (1 << 26) != 0,
            0x8000_0001 => {
                // PVM advertises 1 GiB pages, but its shadow MMU faults on them (measured):
                // hide them so the guest and our own tables use 2 MiB pages there.
                if platform == Platform::Pvm {
                    e.edx &= !(1 << 26);
                }
                features.gib_pages = e.edx & (1 << 26) != 0;
            }
            _ => {}
        }
    }
    Ok((cpuid, features))
}

/// Put the vCPU in 64-bit mode at the core's entry, CPL0, with the core stack and boot info.
pub fn configure(
    vcpu: &VcpuFd,
    cpuid: &CpuId,
    features: CpuFeatures,
    core: &CoreImage,
    page_table_root: Gpa,
) -> Result<(), VcpuError> {
    let setup = |what: &'static str| move |source| VcpuError::Setup { what, source };
    vcpu.set_cpuid2(cpuid).map_err(setup("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(setup("KVM_GET_SREGS"))?;
    sregs.cs = segment(selector::KERNEL_CS, true, 0);
    let data = segment(selector::KERNEL_DS, false, 0);
    (sregs.ds, sregs.es, sregs.ss, sregs.fs, sregs.gs) = (data, data, data, data, data);
    sregs.gdt.base = PHYS_MEM + BOOT_GDT;
    sregs.gdt.limit = (selector::GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = PHYS_MEM + BOOT_IDT;
    sregs.idt.limit = (EXCEPTION_VECTORS * 16 - 1) as u16;
    sregs.tr = kvm_segment {
        base: PHYS_MEM + BOOT_TSS,
        limit: (TSS_BYTES - 1) as u32,
        selector: selector::TSS,
        type_: 0xb,
        present: 1,
        ..Default::default()
    };
    sregs.ldt = kvm_segment {
        unusable: 1,
        ..Default::default()
    };
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = page_table_root.0;
    sregs.cr4 =
        CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | if features.xsave { CR4_OSXSAVE } else { 0 };
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&sregs).map_err(setup("KVM_SET_SREGS"))?;

    let star = (u64::from(selector::USER32_CS) << 48) | (u64::from(selector::KERNEL_CS) << 32);
    let entries = [
        (MSR_STAR, star),
        (MSR_LSTAR, core.syscall_entry.0),
        (MSR_CSTAR, compat_syscall_entry(core)),
        // As Linux without IA32 emulation: a null SYSENTER_CS makes `sysenter` a #GP (on AMD it
        // is #UD in long mode anyway).
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_SFMASK, SYSCALL_RFLAGS_MASK),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_EFER, sregs.efer),
    ]
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    });
    let msrs = Msrs::from_entries(&entries).map_err(|_| VcpuError::Msrs)?;
    let written = vcpu.set_msrs(&msrs).map_err(setup("KVM_SET_MSRS"))?;
    if written != entries.len() {
        return Err(VcpuError::Msrs);
    }

    // The application's FPU/SSE state starts as Linux leaves it: FCW 0x37f, MXCSR 0x1f80.
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(setup("KVM_SET_FPU"))?;
    if features.xsave {
        let mut xcrs = vcpu.get_xcrs().map_err(setup("KVM_GET_XCRS"))?;
        // x87 | SSE | AVX, where the CPUID we pass on allows them.
        let xcr0 = supported_xcr0(cpuid);
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = xcr0;
        vcpu.set_xcrs(&xcrs).map_err(setup("KVM_SET_XCRS"))?;
    }

    let regs = kvm_bindings::kvm_regs {
        rip: core.entry.0,
        rsp: PHYS_MEM + CORE_STACK_TOP,
        rdi: PHYS_MEM + BOOT_INFO,
        rflags: 2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(setup("KVM_SET_REGS"))?;
    Ok(())
}

fn supported_xcr0(cpuid: &CpuId) -> u64 {
    let leaf_d = cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0xd && e.index == 0);
    let hw = leaf_d
        .map(|e| u64::from(e.eax) | (u64::from(e.edx) << 32))
        .unwrap_or(3);
    // x87, SSE, AVX, and the AVX-512 trio together or not at all.
    let mut xcr0 = hw & 0x7;
    if hw & 0xe0 == 0xe0 {
        xcr0 |= 0xe0;
    }
    xcr0 | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::core::{self, BUILTIN_CORE};

    #[test]
    fn cstar_is_the_cores_compat_syscall_stub() {
        let mem = GuestMem::new(64 << 20).unwrap();
        let core = core::load_core(&mem, BUILTIN_CORE, "(built-in)").unwrap();
        let elf = goblin::elf::Elf::parse(BUILTIN_CORE).unwrap();
        let stub = elf
            .syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some("umon_compat_syscall_entry"))
            .map(|s| s.st_value);
        assert_eq!(stub, Some(compat_syscall_entry(&core)));
    }
}
