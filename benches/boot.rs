//! Start-to-exit cost, all measured in the same run: `boot/floor` is a bare KVM VM (one page,
//! real mode, `out` + `hlt`), `boot/umon_core` is umon's VM with the core booting and exiting,
//! `native/true` is fork+exec of /bin/true. The ratios go in the README.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use criterion::{criterion_group, criterion_main, Criterion};
mod common;

use kvm_ioctls::Kvm;
use std::time::Duration;

fn boot(c: &mut Criterion) {
    let kvm = Kvm::new().expect("/dev/kvm");
    let mut g = c.benchmark_group("boot");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("floor", |b| b.iter(|| common::floor(&kvm, 1)));
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
