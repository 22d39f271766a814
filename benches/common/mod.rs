//! Shared by the benchmarks: the bare-KVM floor VM and building the benchmark apps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};
use std::path::{Path, PathBuf};
use std::process::Command;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// A bare VM: one page of RAM, real mode, `exits` times `out`, then `hlt`. With `exits` = 1 it
/// is the floor of start-to-exit; with many it measures the raw cost of an exit.
pub fn floor(kvm: &Kvm, exits: u16) {
    let vm = kvm.create_vm().unwrap();
    let mem: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    // mov cx, exits; 1: out 0x10, al; loop 1b; hlt
    let [lo, hi] = exits.to_le_bytes();
    mem.write_slice(
        &[0xb9, lo, hi, 0xe6, 0x10, 0xe2, 0xfc, 0xf4],
        GuestAddress(0),
    )
    .unwrap();
    let host = mem.iter().next().unwrap().as_ptr() as u64;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: 0x1000,
        userspace_addr: host,
    };
    // SAFETY: `mem` outlives the VM fd (dropped at the end of this function, after `vm`).
    unsafe { vm.set_user_memory_region(region) }.unwrap();
    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut sregs = vcpu.get_sregs().unwrap();
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).unwrap();
    let regs = kvm_bindings::kvm_regs {
        rip: 0,
        rflags: 2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).unwrap();
    let mut seen = 0u32;
    loop {
        match vcpu.run().unwrap() {
            VcpuExit::IoOut(..) => seen += 1,
            VcpuExit::Hlt => break,
            other => panic!("floor VM: unexpected exit {other:?}"),
        }
    }
    assert_eq!(seen, u32::from(exits));
}

/// Build `benches/apps/NAME.c` (or `tests/apps/NAME.c`) with `gcc -O2 -static-pie` once.
pub fn c_app(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = [root.join("benches/apps"), root.join("tests/apps")]
        .iter()
        .map(|d| d.join(format!("{name}.c")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no source for bench app {name}"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{name}"));
    let ok = Command::new("gcc")
        .args(["-O2", "-static-pie", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run gcc")
        .success();
    assert!(ok, "gcc failed for {}", src.display());
    out
}

/// Run `app args` in a umon VM with output to /dev/null; returns the exit code.
pub fn umon_run(app: &Path, args: &[&str]) -> i32 {
    umon_run_with_volumes(app, args, Vec::new())
}

/// [`umon_run`] with exit-less syscalls `mode`; returns the exit code and how many calls
/// the server answered.
pub fn umon_run_exitless(app: &Path, args: &[&str], mode: umon::Exitless) -> (i32, u64) {
    let report = umon_report(app, args, Vec::new(), mode);
    (report.status.code(), report.exitless_served)
}

/// Run `app args` natively with output to /dev/null; returns the exit code.
pub fn native_run(app: &Path, args: &[&str]) -> i32 {
    Command::new(app)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap()
}

/// Run `cmd` to its end; returns its exit code and its own peak RSS in KiB (wait4's rusage,
/// so nothing else this process ran counts).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std cannot do
pub fn run_peak_rss_kib(cmd: &mut Command) -> (i32, i64) {
    let child = cmd.spawn().unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: waiting for our own child (std's handle is never waited on after this); status
    // and usage are ours to fill.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(r, child.id() as i32);
    // SAFETY: wait4 succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Run `app args` in a umon VM with `volumes` granted and output to /dev/null; returns the exit
/// code.
pub fn umon_run_with_volumes(
    app: &Path,
    args: &[&str],
    volumes: Vec<umon::linux::fs::volume::VolumeSpec>,
) -> i32 {
    umon_report(app, args, volumes, umon::Exitless::default())
        .status
        .code()
}

fn umon_report(
    app: &Path,
    args: &[&str],
    volumes: Vec<umon::linux::fs::volume::VolumeSpec>,
    exitless: umon::Exitless,
) -> umon::RunReport {
    let mut argv = vec![app.as_os_str().to_owned()];
    argv.extend(args.iter().map(|a| a.into()));
    let config = umon::Config {
        app: Some(umon::config::AppConfig {
            path: app.to_owned(),
            args: argv,
            volumes,
            ..Default::default()
        }),
        exitless,
        ..Default::default()
    };
    let null = || std::fs::File::create("/dev/null").unwrap();
    let stdio = umon::linux::stdio::Stdio {
        stdin: umon::linux::stdio::Source::reader(Box::new(std::io::empty())),
        stdout: umon::linux::stdio::Sink::Fd(null()),
        stderr: umon::linux::stdio::Sink::Fd(null()),
        quiet: Default::default(),
    };
    umon::Vm::with_stdio(&config, stdio).unwrap().run().unwrap()
}
