//! The vCPU's initial state: long mode, GDT/IDT/TSS, syscall MSRs and CPUID, all set by the
//! monitor so that the core runs as few (emulated, on PVM) instructions as possible.
//!
//! vCPU 0 boots the core with the boot GDT/TSS ([`write_tables`], [`configure`]). Every further
//! vCPU `i` (a thread) gets its own GDT, TSS and exception stack from the per-vCPU region
//! (`umon_abi::layout::PERCPU_TABLES`, [`write_percpu`]) and starts directly at CPL3
//! ([`configure_secondary`]): the IDT, page tables, MSRs and CPUID are the same on every vCPU.
use super::VcpuError;
use crate::machine::core::CoreImage;
use crate::machine::exitless::{Exitless, StubLayout};
use crate::machine::kvm::Platform;
use crate::machine::memory::GuestMem;
use kvm_bindings::{
    kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuFd};
use umon_abi::hypercall::Hypercall;
use umon_abi::layout::{
    percpu_gdt, percpu_stack_top, percpu_tss, selector, BOOT_GDT, BOOT_IDT, BOOT_INFO, BOOT_TSS,
    CORE_EXCEPTION_STACK_TOP, CORE_STACK_TOP, MAX_VCPUS, PERCPU_TABLES, PERCPU_TABLE_BYTES,
    PERCPU_TSS_OFFSET, PHYS_MEM,
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
const MSR_TSC_AUX: u32 = 0xc000_0103;

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

const _: () = assert!(PERCPU_TSS_OFFSET + TSS_BYTES <= PERCPU_TABLE_BYTES);

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

/// `umon_pt_apply`, the core's page-table edit routine (`umon_abi::pt`): in the slot after
/// the compatibility-mode stub, as that one follows the vectors.
pub fn pt_apply_entry(core: &CoreImage) -> u64 {
    core.vectors.0 + 16 * (EXCEPTION_VECTORS + 1)
}

/// The GDT every vCPU has (the boot one and each per-vCPU copy): the same segments and
/// selectors, with the TSS descriptor naming `tss_base` (a virtual address in the Main window).
fn gdt(tss_base: u64) -> [u64; selector::GDT_ENTRIES] {
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
    let tss_limit = TSS_BYTES - 1;
    let t = (selector::TSS >> 3) as usize;
    gdt[t] = tss_limit
        | ((tss_base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((tss_base >> 24) & 0xff) << 56);
    gdt[t + 1] = tss_base >> 32;
    gdt
}

/// A 64-bit TSS whose RSP0 and IST1 are `stack_top` (a virtual address in the Main window), with
/// the I/O permission bitmap for ports 0..=0xff that `platform` needs.
fn tss(stack_top: u64, platform: Platform) -> [u8; TSS_BYTES as usize] {
    // RSP0 at offset 4, IST1, then the bitmap. Every gate switches to IST1 (the same stack as
    // RSP0), so an exception taken at CPL0 never pushes its frame where the application pointed
    // rsp (hardware `syscall` enters CPL0 on the application's stack).
    let mut tss = [0u8; TSS_BYTES as usize];
    let stack = stack_top.to_le_bytes();
    tss[4..12].copy_from_slice(&stack);
    tss[TSS_IST1..TSS_IST1 + 8].copy_from_slice(&stack);
    tss[0x66..0x68].copy_from_slice(&(TSS_IOPB as u16).to_le_bytes());
    tss[TSS_IOPB as usize..].fill(0xff);
    if platform == Platform::Pvm {
        // PVM enters the syscall stub at CPL3 (with IOPL 0), so the stub's port must be open to
        // CPL3 in the bitmap. Only that one port: the core's other hypercalls run at CPL0. On
        // hardware the stub runs at CPL0 and the application gets no port at all.
        let port = usize::from(Hypercall::Syscall.port());
        tss[TSS_IOPB as usize + port / 8] &= !(1 << (port % 8));
    }
    tss
}

/// Write GDT, TSS and IDT into guest memory (physical addresses from the layout; the CPU sees
/// them through the Main window).
pub fn write_tables(mem: &GuestMem, core: &CoreImage, platform: Platform) -> Result<(), VcpuError> {
    mem.write(Gpa(BOOT_GDT), &gdt(PHYS_MEM + BOOT_TSS))?;
    mem.write(
        Gpa(BOOT_TSS),
        &tss(PHYS_MEM + CORE_EXCEPTION_STACK_TOP, platform),
    )?;

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

/// Why a further vCPU could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PerCpuError {
    /// Past the blocks the layout reserves (KVM's vCPU limit).
    #[error("vCPU index {index} is past the {MAX_VCPUS} vCPUs umon reserves room for")]
    Index {
        /// The index asked for.
        index: u32,
    },
    /// A custom core so large that it overlaps the per-vCPU tables.
    #[error("the guest core ends at {end:#x}, over the per-vCPU tables at {PERCPU_TABLES:#x}")]
    CoreOverlap {
        /// End of the core image.
        end: u64,
    },
    /// Writing the tables or a KVM ioctl failed.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
}

/// Write vCPU `index`'s own GDT and TSS into its block of the per-vCPU region (see
/// `umon_abi::layout::PERCPU_TABLES`), its RSP0 and IST1 at the top of its own exception stack,
/// its I/O bitmap as the boot TSS's. Host stores only: the region is mapped through the linear
/// windows (read-only for the tables) before the first instruction, so a vCPU added while others
/// run needs no page-table edit. Call before that vCPU first runs; rewriting the block of a
/// vCPU that is not running (an exited thread's, reused) is harmless.
pub fn write_percpu(mem: &GuestMem, index: u32, platform: Platform) -> Result<(), PerCpuError> {
    if index >= MAX_VCPUS {
        return Err(PerCpuError::Index { index });
    }
    let gdt = gdt(PHYS_MEM + percpu_tss(index));
    let tss = tss(PHYS_MEM + percpu_stack_top(index), platform);
    mem.write(Gpa(percpu_gdt(index)), &gdt)
        .map_err(VcpuError::from)?;
    mem.write(Gpa(percpu_tss(index)), &tss)
        .map_err(VcpuError::from)?;
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

/// Load the user code and data segments (CS; SS, DS, ES) whole, descriptor attributes
/// included: after an exception from CPL3 the CPU left SS a null selector, which a bare
/// selector change would not make usable again.
pub fn user_segments(sregs: &mut kvm_sregs) {
    sregs.cs = segment(selector::USER_CS, true, 3);
    let user = segment(selector::USER_DS, false, 3);
    (sregs.ds, sregs.es, sregs.ss) = (user, user, user);
}

/// CPL0 code and stack selectors (the core's), for entering a core routine from CPL3.
pub fn kernel_segments(sregs: &mut kvm_sregs) {
    sregs.cs = segment(selector::KERNEL_CS, true, 0);
    sregs.ss = segment(selector::KERNEL_DS, false, 0);
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
    // KVM's answer does not change while the host runs: asked once per monitor process (about
    // 0.15 ms on PVM), not again for every exec's and fork's VM.
    static SUPPORTED: std::sync::OnceLock<CpuId> = std::sync::OnceLock::new();
    let mut cpuid = match SUPPORTED.get() {
        Some(c) => c.clone(),
        None => {
            let c = kvm
                .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map_err(|source| VcpuError::Setup {
                    what: "KVM_GET_SUPPORTED_CPUID",
                    source,
                })?;
            SUPPORTED.get_or_init(|| c).clone()
        }
    };
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

fn setup_err(what: &'static str) -> impl Fn(kvm_ioctls::Error) -> VcpuError {
    move |source| VcpuError::Setup { what, source }
}

/// Long mode with umon's page tables, IDT and CR/EFER bits, the GDT at `gdt` and TR naming the
/// TSS at `tss` (virtual addresses in the Main window); segments are the caller's.
fn long_mode(sregs: &mut kvm_sregs, gdt: u64, tss: u64, root: Gpa, features: CpuFeatures) {
    sregs.gdt.base = gdt;
    sregs.gdt.limit = (selector::GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = PHYS_MEM + BOOT_IDT;
    sregs.idt.limit = (EXCEPTION_VECTORS * 16 - 1) as u16;
    sregs.tr = kvm_segment {
        base: tss,
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
    sregs.cr3 = root.0;
    sregs.cr4 =
        CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | if features.xsave { CR4_OSXSAVE } else { 0 };
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
}

/// The syscall MSRs (STAR with umon's own selectors, never KVM's defaults: see
/// `selector`; LSTAR and CSTAR the two entries given), EFER, and MSR_TSC_AUX when `tsc_aux` is
/// given; then the FPU and XCR0.
fn msrs_and_fpu(
    vcpu: &VcpuFd,
    cpuid: &CpuId,
    features: CpuFeatures,
    (syscall_entry, compat_entry): (u64, u64),
    efer: u64,
    tsc_aux: Option<u32>,
    fpu: &kvm_fpu,
) -> Result<(), VcpuError> {
    let star = (u64::from(selector::USER32_CS) << 48) | (u64::from(selector::KERNEL_CS) << 32);
    let mut entries = vec![
        (MSR_STAR, star),
        (MSR_LSTAR, syscall_entry),
        (MSR_CSTAR, compat_entry),
        // As Linux without IA32 emulation: a null SYSENTER_CS makes `sysenter` a #GP (on AMD it
        // is #UD in long mode anyway).
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_SFMASK, SYSCALL_RFLAGS_MASK),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_EFER, efer),
    ];
    if let Some(aux) = tsc_aux {
        entries.push((MSR_TSC_AUX, u64::from(aux)));
    }
    let entries: Vec<kvm_msr_entry> = entries
        .into_iter()
        .map(|(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries).map_err(|_| VcpuError::Msrs)?;
    let written = vcpu.set_msrs(&msrs).map_err(setup_err("KVM_SET_MSRS"))?;
    if written != entries.len() {
        return Err(VcpuError::Msrs);
    }

    vcpu.set_fpu(fpu).map_err(setup_err("KVM_SET_FPU"))?;
    if features.xsave {
        let mut xcrs = vcpu.get_xcrs().map_err(setup_err("KVM_GET_XCRS"))?;
        // x87 | SSE | AVX, where the CPUID we pass on allows them.
        let xcr0 = supported_xcr0(cpuid);
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = xcr0;
        vcpu.set_xcrs(&xcrs).map_err(setup_err("KVM_SET_XCRS"))?;
    }
    Ok(())
}

/// The FPU/SSE state an application starts with, as Linux leaves it: FCW 0x37f, MXCSR 0x1f80.
pub fn initial_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

/// Put the vCPU in 64-bit mode at the core's entry, CPL0, with the core stack and boot info;
/// or, with `user`, straight in the application at CPL3 with these registers (IOPL cleared,
/// bit 1 set), where the core's boot would have left it (`Cpu::enter_user`): the user code
/// and data segments on the boot GDT and TSS. That saves the boot's emulated instructions
/// and its exit; a further vCPU starts at CPL3 the same way ([`configure_secondary`]), on
/// hardware KVM too. Returns the registers set.
pub fn configure(
    vcpu: &VcpuFd,
    cpuid: &CpuId,
    features: CpuFeatures,
    core: &CoreImage,
    page_table_root: Gpa,
    user: Option<kvm_regs>,
) -> Result<(kvm_regs, kvm_sregs), VcpuError> {
    vcpu.set_cpuid2(cpuid)
        .map_err(setup_err("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(setup_err("KVM_GET_SREGS"))?;
    sregs.cs = segment(selector::KERNEL_CS, true, 0);
    let data = segment(selector::KERNEL_DS, false, 0);
    (sregs.ds, sregs.es, sregs.ss, sregs.fs, sregs.gs) = (data, data, data, data, data);
    long_mode(
        &mut sregs,
        PHYS_MEM + BOOT_GDT,
        PHYS_MEM + BOOT_TSS,
        page_table_root,
        features,
    );
    if user.is_some() {
        user_segments(&mut sregs);
    }
    vcpu.set_sregs(&sregs).map_err(setup_err("KVM_SET_SREGS"))?;

    msrs_and_fpu(
        vcpu,
        cpuid,
        features,
        (
            Exitless::syscall_entry(core.exitless, 0, core.syscall_entry.0),
            compat_syscall_entry(core),
        ),
        sregs.efer,
        None,
        &initial_fpu(),
    )?;

    let regs = match user {
        Some(mut regs) => {
            regs.rflags = (regs.rflags & !0x3000) | 0x2;
            regs
        }
        None => kvm_regs {
            rip: core.entry.0,
            rsp: PHYS_MEM + CORE_STACK_TOP,
            rdi: PHYS_MEM + BOOT_INFO,
            rflags: 2,
            ..Default::default()
        },
    };
    vcpu.set_regs(&regs).map_err(setup_err("KVM_SET_REGS"))?;
    Ok((regs, sregs))
}

/// What every vCPU of one VM shares, kept from VM creation so that a vCPU added later (a thread)
/// is set up the way vCPU 0 was, without asking vCPU 0 (busy in its own thread).
#[derive(Clone, Debug)]
pub struct VcpuTemplate {
    /// The CPUID from [`guest_cpuid`].
    pub cpuid: CpuId,
    /// What [`guest_cpuid`] found.
    pub features: CpuFeatures,
    /// MSR_LSTAR: the core's syscall stub (of a vCPU without an exit-less channel).
    pub syscall_entry: u64,
    /// The exit-less stub, when this VM uses it: MSR_LSTAR is then each vCPU's own copy.
    pub exitless: Option<StubLayout>,
    /// MSR_CSTAR: see [`compat_syscall_entry`].
    pub compat_entry: u64,
    /// End of the core image (it must not reach the per-vCPU tables).
    pub core_end: u64,
    /// CR3: the one set of page tables all vCPUs share.
    pub page_table_root: Gpa,
    /// Decides the TSS I/O bitmap.
    pub platform: Platform,
}

impl VcpuTemplate {
    /// The template of a VM whose vCPU 0 was set up with these arguments ([`configure`]).
    pub fn new(
        cpuid: &CpuId,
        features: CpuFeatures,
        core: &CoreImage,
        page_table_root: Gpa,
        platform: Platform,
    ) -> VcpuTemplate {
        VcpuTemplate {
            cpuid: cpuid.clone(),
            features,
            syscall_entry: core.syscall_entry.0,
            exitless: core.exitless,
            compat_entry: compat_syscall_entry(core),
            core_end: core.end,
            page_table_root,
            platform,
        }
    }
}

/// Where a new vCPU starts: at CPL3, in the application (a thread's first instruction).
#[derive(Clone, Debug, Default)]
pub struct UserStart {
    /// General registers, rip and rsp. IOPL is cleared and bit 1 set in rflags whatever is given
    /// (IOPL 3 would open every hypercall port to the application).
    pub regs: kvm_regs,
    /// FS base (the thread pointer).
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// The FPU/SSE/AVX state as an XSAVE image (Linux's clone copies the creator's:
    /// `fpu_clone`); `None` for the initial state ([`initial_fpu`]).
    pub xstate: Option<Box<[u8; super::cpu::XSAVE_IMAGE]>>,
}

/// Set up a further vCPU fd (`index` >= 1, as passed to KVM_CREATE_VCPU, below
/// `umon_abi::layout::MAX_VCPUS`) of a VM whose tables were written by [`write_tables`] (the IDT
/// is shared) and whose vCPU 0 was set up with [`configure`]: write its per-vCPU GDT/TSS ([`write_percpu`]), then CPUID,
/// long mode with the shared CR3 and IDT but its own GDT and TR, the same MSRs as vCPU 0 plus
/// MSR_TSC_AUX = `index` (so `rdtscp`/`rdpid` at CPL3 give the CPU number as on Linux; only
/// where the CPUID offers RDTSCP or RDPID), FPU and XCR0, and `start` at CPL3 with the user
/// code and data selectors. The vCPU never runs core code except the exception vectors and the
/// syscall stub, so it needs no core stack. The caller enables sync regs as `Vcpu::new` does.
pub fn configure_secondary(
    vcpu: &VcpuFd,
    mem: &GuestMem,
    index: u32,
    template: &VcpuTemplate,
    start: &UserStart,
) -> Result<(), PerCpuError> {
    if template.core_end > PERCPU_TABLES {
        return Err(PerCpuError::CoreOverlap {
            end: template.core_end,
        });
    }
    write_percpu(mem, index, template.platform)?;
    vcpu.set_cpuid2(&template.cpuid)
        .map_err(setup_err("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(setup_err("KVM_GET_SREGS"))?;
    // As `Cpu::enter_user` leaves vCPU 0: user CS/SS/DS/ES, FS/GS kernel data with their bases.
    user_segments(&mut sregs);
    let data = segment(selector::KERNEL_DS, false, 0);
    (sregs.fs, sregs.gs) = (data, data);
    sregs.fs.base = start.fs_base;
    sregs.gs.base = start.gs_base;
    long_mode(
        &mut sregs,
        PHYS_MEM + percpu_gdt(index),
        PHYS_MEM + percpu_tss(index),
        template.page_table_root,
        template.features,
    );
    vcpu.set_sregs(&sregs).map_err(setup_err("KVM_SET_SREGS"))?;

    let tsc_aux = has_tsc_aux(&template.cpuid).then_some(index);
    msrs_and_fpu(
        vcpu,
        &template.cpuid,
        template.features,
        (
            Exitless::syscall_entry(template.exitless, index, template.syscall_entry),
            template.compat_entry,
        ),
        sregs.efer,
        tsc_aux,
        &initial_fpu(),
    )?;

    let mut regs = start.regs;
    regs.rflags = (regs.rflags & !0x3000) | 0x2;
    vcpu.set_regs(&regs).map_err(setup_err("KVM_SET_REGS"))?;
    Ok(())
}

/// Whether the guest's CPUID offers RDTSCP (0x8000_0001 EDX bit 27) or RDPID (7.0 ECX bit 22),
/// the instructions that read MSR_TSC_AUX (KVM refuses the MSR without either).
pub fn has_tsc_aux(cpuid: &CpuId) -> bool {
    cpuid.as_slice().iter().any(|e| {
        (e.function == 0x8000_0001 && e.edx & (1 << 27) != 0)
            || (e.function == 7 && e.index == 0 && e.ecx & (1 << 22) != 0)
    })
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
    use crate::machine::memslots::MemSlots;
    use crate::machine::paging::{self, PageTables, NO_EXECUTE, PAGE_2M, PAGE_4K, USER, WRITABLE};
    use kvm_ioctls::{VcpuExit, VmFd};
    use std::sync::Arc;
    use umon_abi::hypercall::{FaultReport, ECHO_XOR, SYS_UMON_ECHO};
    use umon_abi::layout::{Area, APP_PHYS_BASE, PERCPU_STACKS, PERCPU_STACK_BYTES, PROGRAM_BASE};
    use umon_abi::Gva;

    #[test]
    fn pt_apply_routine_is_where_the_monitor_enters_it() {
        let elf = goblin::elf::Elf::parse(BUILTIN_CORE).unwrap();
        let sym = |name: &str| {
            elf.syms
                .iter()
                .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
                .map(|s| s.st_value)
                .unwrap()
        };
        let mem = GuestMem::new(64 << 20).unwrap();
        let core = core::load(&mem, None).unwrap();
        assert_eq!(pt_apply_entry(&core), sym("umon_pt_apply"));
    }

    #[test]
    fn cstar_is_the_cores_compat_syscall_stub() {
        let mem = GuestMem::new(64 << 20).unwrap();
        let core = core::load_core(&mem, BUILTIN_CORE, "(built-in)").unwrap();
        assert_eq!(
            core_symbol("umon_compat_syscall_entry"),
            compat_syscall_entry(&core)
        );
    }

    fn core_symbol(name: &str) -> u64 {
        let elf = goblin::elf::Elf::parse(BUILTIN_CORE).unwrap();
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
            .unwrap()
    }

    #[test]
    fn percpu_blocks_name_their_own_tss_and_stack() {
        let mem = GuestMem::new(16 << 20).unwrap();
        for platform in [Platform::Hardware, Platform::Pvm] {
            for index in [0, 1, 7, MAX_VCPUS - 1] {
                write_percpu(&mem, index, platform).unwrap();
                let gdt: [u64; selector::GDT_ENTRIES] = mem.read(Gpa(percpu_gdt(index))).unwrap();
                let t = (selector::TSS >> 3) as usize;
                let tss_base = ((gdt[t] >> 16) & 0xff_ffff)
                    | (((gdt[t] >> 56) & 0xff) << 24)
                    | (gdt[t + 1] << 32);
                assert_eq!(tss_base, PHYS_MEM + percpu_tss(index));
                let tss: [u8; TSS_BYTES as usize] = mem.read(Gpa(percpu_tss(index))).unwrap();
                let word = |at: usize| u64::from_le_bytes(tss[at..at + 8].try_into().unwrap());
                assert_eq!(word(4), PHYS_MEM + percpu_stack_top(index), "RSP0");
                assert_eq!(word(TSS_IST1), PHYS_MEM + percpu_stack_top(index), "IST1");
                let port = usize::from(Hypercall::Syscall.port());
                let open = tss[TSS_IOPB as usize + port / 8] & (1 << (port % 8)) == 0;
                assert_eq!(open, platform == Platform::Pvm);
                // Everything else in the bitmap stays closed.
                let closed = tss[TSS_IOPB as usize..]
                    .iter()
                    .map(|b| b.count_ones())
                    .sum::<u32>();
                assert_eq!(closed, 33 * 8 - u32::from(open));
            }
        }
        assert!(matches!(
            write_percpu(&mem, MAX_VCPUS, Platform::Pvm),
            Err(PerCpuError::Index { index: MAX_VCPUS })
        ));
    }

    /// The per-vCPU GDTs and TSSs are read-only through every window, the exception stacks
    /// writable, neither reachable from CPL3.
    #[test]
    fn percpu_tables_are_read_only_and_stacks_writable_in_every_window() {
        let mem = GuestMem::new(64 << 20).unwrap();
        let mut pt = PageTables::new(&mem).unwrap();
        paging::map_windows(&mut pt, &mem, PAGE_2M).unwrap();
        pt.write(&mem).unwrap();
        for area in Area::LINEAR {
            for index in [0, 1, MAX_VCPUS - 1] {
                let flags = |pa: u64| {
                    paging::translate(&mem, pt.root(), Gva(area.base() + pa))
                        .unwrap()
                        .unwrap()
                        .flags
                };
                for pa in [percpu_gdt(index), percpu_tss(index) + TSS_BYTES - 1] {
                    assert_eq!(flags(pa) & (WRITABLE | USER), 0, "{pa:#x}");
                }
                for pa in [
                    percpu_stack_top(index) - 8,
                    percpu_stack_top(index) - PERCPU_STACK_BYTES,
                ] {
                    assert_eq!(flags(pa) & (WRITABLE | USER), WRITABLE, "{pa:#x}");
                }
            }
        }
    }

    // ---- several vCPUs of one real KVM VM ----------------------------------------------------

    /// Where the test's CPL3 code lives (virtual; physical APP_PHYS_BASE).
    const CODE: u64 = PROGRAM_BASE;
    /// Per vCPU `i`, a copy of [`USER_CODE`] at `CODE + i * SLOT`.
    const SLOT: u64 = 0x40;
    /// `nop; ud2` (#UD at +1), `mov byte ptr [rdi], 0` (#PF at +3, cr2 = rdi),
    /// `rdtscp; mov rdi, rcx; mov eax, 1000; syscall; ud2` (from +6).
    const USER_CODE: [u8; 25] = [
        0x90, 0x0f, 0x0b, // nop; ud2
        0xc6, 0x07, 0x00, // mov byte ptr [rdi], 0
        0x0f, 0x01, 0xf9, // rdtscp
        0x48, 0x89, 0xcf, // mov rdi, rcx
        0xb8, 0xe8, 0x03, 0x00, 0x00, // mov eax, 1000
        0x0f, 0x05, // syscall
        0x0f, 0x0b, // ud2
        0x90, 0x90, 0x90, 0x90,
    ];
    const UD2_AT: u64 = 1;
    const PF_AT: u64 = 3;
    const RDTSCP_AT: u64 = 6;
    const RDTSCP_NR: u64 = 1000;

    struct TestVm {
        vm: Arc<VmFd>,
        mem: GuestMem,
        template: VcpuTemplate,
        core: CoreImage,
        _slots: MemSlots,
    }

    /// A VM built from the machine-layer pieces as `Vm::build` builds one, with user code at
    /// [`CODE`]; `None` (skipped) without KVM unless UMON_REQUIRE_KVM=1.
    fn test_vm() -> Option<TestVm> {
        let kvm = match crate::machine::kvm::open() {
            Ok(kvm) => kvm,
            Err(e) if std::env::var("UMON_REQUIRE_KVM").as_deref() == Ok("1") => {
                panic!("UMON_REQUIRE_KVM=1 but KVM is unusable: {e}")
            }
            Err(e) => {
                eprintln!("skipping: {e}");
                return None;
            }
        };
        let platform = Platform::detect();
        let vm = Arc::new(kvm.create_vm().unwrap());
        let mem = GuestMem::new(32 << 20).unwrap();
        let mut slots = MemSlots::new(vm.clone(), &mem, kvm.get_nr_memslots() as u32).unwrap();
        slots.ensure(0, mem.bytes()).unwrap();
        let mut core = core::load_core(&mem, BUILTIN_CORE, "(built-in)").unwrap();
        // These tables map the plain stub only: no exit-less window.
        core.exitless = None;
        let (cpuid, features) = guest_cpuid(&kvm, platform).unwrap();
        let mut pt = PageTables::new(&mem).unwrap();
        for seg in &core.segments {
            for page in (seg.start..seg.end).step_by(PAGE_4K as usize) {
                let mut flags = if seg.write { WRITABLE } else { 0 };
                flags |= if seg.exec { 0 } else { NO_EXECUTE };
                if (core.user_text.0..core.user_text.1).contains(&page) {
                    flags |= USER;
                }
                pt.map(&mem, Gva(page), Gpa(page), PAGE_4K, PAGE_4K, flags)
                    .unwrap();
            }
        }
        paging::map_windows(&mut pt, &mem, PAGE_2M).unwrap();
        pt.map(&mem, Gva(CODE), Gpa(APP_PHYS_BASE), PAGE_4K, PAGE_4K, USER)
            .unwrap();
        pt.write(&mem).unwrap();
        for i in 0..PAGE_4K / SLOT {
            mem.write(Gpa(APP_PHYS_BASE + i * SLOT), &USER_CODE)
                .unwrap();
        }
        write_tables(&mem, &core, platform).unwrap();
        let template = VcpuTemplate::new(&cpuid, features, &core, pt.root(), platform);
        Some(TestVm {
            vm,
            mem,
            template,
            core,
            _slots: slots,
        })
    }

    /// Create vCPU `index` at CPL3 at `rip`: vCPU 0 as `Vm::build` does for an application
    /// (boot tables, entered at CPL3 directly), every other one with [`configure_secondary`].
    fn vcpu(t: &TestVm, index: u32, rip: u64, rdi: u64) -> VcpuFd {
        let fd = t.vm.create_vcpu(u64::from(index)).unwrap();
        let regs = kvm_regs {
            rip,
            rdi,
            rsp: CODE + PAGE_4K,
            rflags: 0x202,
            ..Default::default()
        };
        if index == 0 {
            let c = &t.template;
            configure(
                &fd,
                &c.cpuid,
                c.features,
                &t.core,
                c.page_table_root,
                Some(regs),
            )
            .unwrap();
        } else {
            let start = UserStart {
                regs,
                ..Default::default()
            };
            configure_secondary(&fd, &t.mem, index, &t.template, &start).unwrap();
        }
        fd
    }

    /// What `Cpu::enter_user` does to the segments.
    fn to_user(fd: &VcpuFd) {
        let mut s = fd.get_sregs().unwrap();
        s.cs = segment(selector::USER_CS, true, 3);
        let user = segment(selector::USER_DS, false, 3);
        (s.ss, s.ds, s.es) = (user, user, user);
        fd.set_sregs(&s).unwrap();
    }

    fn restart(fd: &VcpuFd, rip: u64, rdi: u64) {
        let regs = kvm_regs {
            rip,
            rdi,
            rsp: CODE + PAGE_4K,
            rflags: 0x202,
            ..Default::default()
        };
        fd.set_regs(&regs).unwrap();
        to_user(fd);
    }

    #[derive(Debug)]
    enum Stop {
        /// The core's UserFault hypercall: the exception frame it left (guest-physical), as a
        /// report with CR2.
        Fault(u64, FaultReport),
        /// A syscall through the stub: rax, rdi.
        Syscall(u64, u64),
    }

    fn run_to_stop(fd: &mut VcpuFd, mem: &GuestMem) -> Stop {
        let port = match fd.run() {
            Ok(VcpuExit::IoOut(port, _)) => port,
            other => panic!("unexpected exit {other:?}"),
        };
        let regs = fd.get_regs().unwrap();
        if port == Hypercall::UserFault.port() {
            let gpa = regs.rsp - PHYS_MEM;
            let w: [u64; 7] = mem.read(Gpa(gpa)).unwrap();
            let r = FaultReport {
                vector: w[0],
                error_code: w[1],
                rip: w[2],
                cs: w[3],
                rflags: w[4],
                rsp: w[5],
                ss: w[6],
                cr2: fd.get_sregs().unwrap().cr2,
            };
            Stop::Fault(gpa, r)
        } else if port == Hypercall::Syscall.port() {
            Stop::Syscall(regs.rax, regs.rdi)
        } else {
            panic!("unexpected port {port:#x} at {:#x}", regs.rip)
        }
    }

    /// Return `ret` from the syscall that stopped `fd`: on PVM it stopped at CPL3 in the stub
    /// and the monitor returns for it (as `Cpu::complete_syscall`); on hardware `sysretq` does.
    fn complete_syscall(fd: &VcpuFd, ret: u64) {
        let mut regs = fd.get_regs().unwrap();
        regs.rax = ret;
        if fd.get_sregs().unwrap().cs.selector & 3 == 3 {
            regs.rip = regs.rcx;
            regs.rflags = (regs.r11 & !0x3000) | 0x2;
        }
        fd.set_regs(&regs).unwrap();
    }

    /// The stack range vCPU `index`'s fault report must lie in.
    fn own_stack(index: u32) -> std::ops::Range<u64> {
        if index == 0 {
            CORE_STACK_TOP..CORE_EXCEPTION_STACK_TOP
        } else {
            percpu_stack_top(index) - PERCPU_STACK_BYTES..percpu_stack_top(index)
        }
    }

    /// vCPUs fault one after another, each left stopped in the core's fault path with its
    /// report unread; then every report still says its own vCPU's rip. A shared report slot or a
    /// shared exception stack would leave every report saying the last vCPU's.
    #[test]
    fn fault_reports_of_stopped_vcpus_stay_apart() {
        let Some(t) = test_vm() else { return };
        let n = 4u32;
        let mut fds: Vec<VcpuFd> = (0..n)
            .map(|i| vcpu(&t, i, CODE + u64::from(i) * SLOT, 0))
            .collect();
        let stops: Vec<(u64, FaultReport)> = fds
            .iter_mut()
            .map(|fd| match run_to_stop(fd, &t.mem) {
                Stop::Fault(gpa, r) => (gpa, r),
                other => panic!("{other:?}"),
            })
            .collect();
        for (i, (gpa, r)) in stops.into_iter().enumerate() {
            let i = i as u32;
            assert_eq!(r.vector, 6, "vCPU {i}: {r:x?}");
            assert_eq!(r.rip, CODE + u64::from(i) * SLOT + UD2_AT, "vCPU {i}");
            assert_eq!(r.cs & 3, 3, "vCPU {i}");
            assert!(own_stack(i).contains(&gpa), "vCPU {i}: report at {gpa:#x}");
        }
    }

    /// Several vCPUs on their own host threads fault (#UD and #PF, each at its own rip and
    /// address) and make syscalls through the stub at the same time, many times over: every
    /// report is its own vCPU's, every syscall comes back.
    /// Records what the run loop shows it before the first entry, then ends the run there.
    #[derive(Default)]
    struct FirstLook {
        looks: Vec<Option<(u64, u8)>>,
        exits: usize,
    }

    impl crate::machine::vcpu::ExitHandler for FirstLook {
        fn syscall(
            &mut self,
            _: &mut crate::machine::vcpu::cpu::Cpu<'_>,
            _: &GuestMem,
        ) -> Result<crate::machine::vcpu::cpu::Flow, crate::machine::hypercall::HypercallError>
        {
            self.exits += 1;
            Ok(crate::machine::vcpu::cpu::Flow::EndProcess(
                crate::exit::ExitStatus::Exited(1),
            ))
        }
        fn app_fault(
            &mut self,
            _: &mut crate::machine::vcpu::cpu::Cpu<'_>,
            _: crate::machine::vcpu::AppFault,
        ) -> crate::machine::vcpu::cpu::Flow {
            self.exits += 1;
            crate::machine::vcpu::cpu::Flow::EndProcess(crate::exit::ExitStatus::Exited(1))
        }
        fn console(&mut self, _: u32, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn before_run(
            &mut self,
            cpu: Option<&mut crate::machine::vcpu::cpu::Cpu<'_>>,
        ) -> Option<crate::machine::vcpu::cpu::Flow> {
            self.looks.push(cpu.map(|c| (c.regs.rip, c.sregs.cs.dpl)));
            let end =
                crate::machine::vcpu::cpu::Flow::EndProcess(crate::exit::ExitStatus::Exited(0));
            self.looks.last().copied().flatten().map(|_| end)
        }
    }

    /// vCPU 0 entered at CPL3 directly: before its first entry the handler sees the
    /// application's registers (where a signal sent before start is delivered), not only a
    /// look without registers that lets the application run first.
    #[test]
    fn a_directly_entered_vcpu_shows_its_registers_before_the_first_entry() {
        let Some(t) = test_vm() else { return };
        let fd = t.vm.create_vcpu(0).unwrap();
        let regs = kvm_regs {
            rip: CODE,
            rsp: CODE + PAGE_4K,
            rflags: 0x202,
            ..Default::default()
        };
        let c = &t.template;
        let (regs, sregs) = configure(
            &fd,
            &c.cpuid,
            c.features,
            &t.core,
            c.page_table_root,
            Some(regs),
        )
        .unwrap();
        assert_eq!((regs.rip, sregs.cs.dpl), (CODE, 3));
        let mut vcpu = crate::machine::vcpu::Vcpu::new(fd, 0, c.features.xsave, false);
        vcpu.prime(regs, sregs);
        let mut look = FirstLook::default();
        vcpu.run(&t.mem, &mut look).unwrap();
        assert_eq!(look.looks, [None, Some((CODE, 3))]);
        assert_eq!(look.exits, 0, "the application ran before the look");
    }

    #[test]
    fn vcpus_fault_and_syscall_concurrently() {
        let Some(t) = test_vm() else { return };
        let n = 4u32;
        let rounds = 150;
        let echo = core_symbol("umon_echo_loop");
        let fds: Vec<VcpuFd> = (0..n)
            .map(|i| vcpu(&t, i, CODE + u64::from(i) * SLOT, 0))
            .collect();
        std::thread::scope(|scope| {
            for (i, mut fd) in fds.into_iter().enumerate() {
                let t = &t;
                scope.spawn(move || {
                    let i = i as u32;
                    let base = CODE + u64::from(i) * SLOT;
                    // Unmapped, distinct per vCPU: below PROGRAM_BASE's first mapping.
                    let bad = 0x7000_0000 + u64::from(i) * PAGE_4K;
                    for round in 0..rounds {
                        let (rip, expect_rip, cr2) = match round % 2 {
                            0 => (base, base + UD2_AT, None),
                            _ => (base + PF_AT, base + PF_AT, Some(bad)),
                        };
                        restart(&fd, rip, bad);
                        let Stop::Fault(gpa, r) = run_to_stop(&mut fd, &t.mem) else {
                            panic!("vCPU {i}: no fault")
                        };
                        assert!(own_stack(i).contains(&gpa), "vCPU {i}: report at {gpa:#x}");
                        assert_eq!(r.rip, expect_rip, "vCPU {i} round {round}: {r:x?}");
                        if let Some(cr2) = cr2 {
                            assert_eq!((r.vector, r.cr2), (14, cr2), "vCPU {i}: {r:x?}");
                        }
                        // The core's CPL3 echo loop: 20 syscalls through the stub, then exit.
                        restart(&fd, echo, 20);
                        loop {
                            match run_to_stop(&mut fd, &t.mem) {
                                Stop::Syscall(nr, arg) if nr == SYS_UMON_ECHO => {
                                    complete_syscall(&fd, arg ^ ECHO_XOR)
                                }
                                Stop::Syscall(231, code) => {
                                    assert_eq!(code, 0, "vCPU {i}: echo loop saw a wrong result");
                                    break;
                                }
                                other => panic!("vCPU {i}: {other:?}"),
                            }
                        }
                    }
                });
            }
        });
    }

    /// `rdtscp` at CPL3 gives each vCPU its own index in ecx, as Linux gives the CPU number.
    #[test]
    fn rdtscp_at_cpl3_reads_the_vcpu_index() {
        let Some(t) = test_vm() else { return };
        if !has_tsc_aux(&t.template.cpuid) {
            eprintln!("skipping: the guest CPUID offers neither RDTSCP nor RDPID");
            return;
        }
        for i in [1u32, 2, 5, 3] {
            let mut fd = vcpu(&t, i, CODE + RDTSCP_AT, 0);
            match run_to_stop(&mut fd, &t.mem) {
                Stop::Syscall(RDTSCP_NR, aux) => assert_eq!(aux, u64::from(i)),
                other => panic!("vCPU {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_core_over_the_percpu_tables_is_refused() {
        let Some(t) = test_vm() else { return };
        let mut template = t.template.clone();
        template.core_end = PERCPU_STACKS;
        let fd = t.vm.create_vcpu(1).unwrap();
        let r = configure_secondary(&fd, &t.mem, 1, &template, &UserStart::default());
        assert!(matches!(r, Err(PerCpuError::CoreOverlap { .. })), "{r:?}");
    }
}
