//! Start-to-exit cost, all measured in the same run: `boot/floor` is a bare KVM VM (one page,
//! real mode, `out` + `hlt`), `boot/umon_core` is umon's VM with the core booting and exiting,
//! `native/true` is fork+exec of /bin/true. The ratios go in the README.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use criterion::{criterion_group, criterion_main, Criterion};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

fn floor(kvm: &Kvm) {
    let vm = kvm.create_vm().unwrap();
    let mem: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    // mov al, 1; out 0x10, al; hlt
    mem.write_slice(&[0xb0, 0x01, 0xe6, 0x10, 0xf4], GuestAddress(0))
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
    loop {
        match vcpu.run().unwrap() {
            VcpuExit::IoOut(..) => {}
            VcpuExit::Hlt => break,
            other => panic!("floor VM: unexpected exit {other:?}"),
        }
    }
    drop(vcpu);
    drop(vm);
}

fn boot(c: &mut Criterion) {
    let kvm = Kvm::new().expect("/dev/kvm");
    let mut g = c.benchmark_group("boot");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("floor", |b| b.iter(|| floor(&kvm)));
    g.bench_function("umon_core", |b| {
        b.iter(|| {
            let config = umon::Config {
                mode: umon::Mode::BootOnly,
                ..Default::default()
            };
            let report = umon::Vm::new(&config).unwrap().run().unwrap();
            assert_eq!(report.status, umon::ExitStatus::Exited(0));
        })
    });
    g.finish();
    let mut n = c.benchmark_group("native");
    n.sample_size(20).measurement_time(Duration::from_secs(5));
    n.bench_function("true", |b| {
        b.iter(|| {
            assert!(std::process::Command::new("/bin/true")
                .status()
                .unwrap()
                .success())
        })
    });
    n.finish();
}

criterion_group!(benches, boot);
criterion_main!(benches);
