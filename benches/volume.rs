//! Files in a volume, umon against native, all in the same run (ratios in docs/volumes.md):
//! - `volume_copy_1GiB/*`: `catfile` (benches/apps/catfile.c) copies a 1 GiB file to /dev/null
//!   with read/write through a 128 KiB buffer (coreutils cat's size) and a 1 MiB one, the file
//!   in a read-only volume under umon and the same file natively. The file is written once into
//!   CARGO_TARGET_TMPDIR (real data, not sparse) and is in the page cache after the first run.
//! - `volume_small_files/*`: 1000 rounds of open/fstat/close of a small file (`files statloop`,
//!   tests/apps/files.c).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{c_app, native_run, umon_run_with_volumes};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIG_BYTES: u64 = 1 << 30;
const ROUNDS: &str = "1000";

/// The directory holding the benchmark files, with big.bin (1 GiB) and small.txt.
fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-volume");
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(BIG_BYTES) {
        let tmp = dir.join("big.bin.tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
        let block: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for _ in 0..BIG_BYTES >> 20 {
            f.write_all(&block).unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
        std::fs::rename(&tmp, &big).unwrap();
    }
    std::fs::write(dir.join("small.txt"), "small\n").unwrap();
    dir
}

fn volume(dir: &Path) -> Vec<umon::linux::fs::volume::VolumeSpec> {
    vec![umon::linux::fs::volume::VolumeSpec {
        host: dir.to_owned(),
        guest: "/data".into(),
        writable: false,
    }]
}

fn copy(c: &mut Criterion) {
    let dir = data_dir();
    let cat = c_app("catfile");
    let host_big = dir.join("big.bin");
    let host_big = host_big.to_str().unwrap();
    // Warm the page cache so the first sample does not pay for the disk.
    assert_eq!(native_run(&cat, &[host_big, "1048576"]), 0);
    let mut g = c.benchmark_group("volume_copy_1GiB");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Bytes(BIG_BYTES));
    for (name, size) in [("128k", "131072"), ("1m", "1048576")] {
        g.bench_function(format!("umon_{name}"), |b| {
            b.iter(|| {
                let code = umon_run_with_volumes(&cat, &["/data/big.bin", size], volume(&dir));
                assert_eq!(code, 0);
            })
        });
        g.bench_function(format!("native_{name}"), |b| {
            b.iter(|| assert_eq!(native_run(&cat, &[host_big, size]), 0))
        });
    }
    g.finish();
}

fn small_files(c: &mut Criterion) {
    let dir = data_dir();
    let files = c_app("files");
    let mut g = c.benchmark_group("volume_small_files");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("umon_open_fstat_close_x1000", |b| {
        b.iter(|| {
            let code = umon_run_with_volumes(&files, &["statloop", "/data", ROUNDS], volume(&dir));
            assert_eq!(code, 0);
        })
    });
    g.bench_function("native_open_fstat_close_x1000", |b| {
        b.iter(|| {
            assert_eq!(
                native_run(&files, &["statloop", dir.to_str().unwrap(), ROUNDS]),
                0
            )
        })
    });
    g.finish();
}

criterion_group!(benches, copy, small_files);
criterion_main!(benches);
