//! Builds the guest core (`guest/core`) and the vDSO (`guest/vdso`) with the stock toolchain for
//! the host target and hands their paths to the crate as `UMON_CORE_ELF` and `UMON_VDSO`.
//!
//! The core has its own target directory under OUT_DIR: sharing ours would deadlock on cargo's
//! build lock (cargo#6412). Inherited RUSTFLAGS are cleared because they are meant for the host
//! crate, not for a freestanding kernel. SSE/x87 are switched off because PVM cannot run them at
//! CPL0; rustc warns that this is an ABI change, which is exactly what a soft-float kernel wants.
#![allow(clippy::expect_used, clippy::panic)] // a build script reports failure by panicking
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let core_dir = manifest_dir.join("guest/core");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let target = std::env::var("TARGET").expect("cargo sets it");
    let target_dir = out_dir.join("core-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    println!("cargo:rerun-if-changed=guest/core/src");
    println!("cargo:rerun-if-changed=guest/core/Cargo.toml");
    println!("cargo:rerun-if-changed=guest/core/link.ld");
    println!("cargo:rerun-if-changed=guest/abi/src");
    println!("cargo:rerun-if-changed=guest/abi/Cargo.toml");

    let flags = [
        "-Ctarget-feature=-mmx,-sse,-sse2,-sse3,-ssse3,-sse4.1,-sse4.2,-avx,-avx2,-fma,-f16c,-avx512f,+soft-float",
        "-Crelocation-model=static",
        "-Cno-redzone=yes",
        "-Cpanic=abort",
        "-Clink-arg=-nostartfiles",
        "-Clink-arg=-static",
        "-Clink-arg=-no-pie",
        "-Clink-arg=-Wl,--build-id=none",
        &format!("-Clink-arg=-T{}", core_dir.join("link.ld").display()),
    ]
    .join("\x1f");

    let status = Command::new(cargo)
        .current_dir(&core_dir)
        .args(["build", "--release", "--quiet", "--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .status()
        .expect("run cargo to build the guest core");
    if !status.success() {
        panic!("building the guest core (guest/core) failed");
    }
    let elf = target_dir.join(&target).join("release/umon-core");
    println!("cargo:rustc-env=UMON_CORE_ELF={}", elf.display());

    let vdso = build_vdso(&manifest_dir, &out_dir, &target);
    println!("cargo:rustc-env=UMON_VDSO={}", vdso.display());
}

/// The vDSO: its crate built as a position-independent static archive (it runs at CPL3, so
/// SSE is allowed, but it must run wherever it is mapped), then linked into a shared object
/// with Linux's vDSO layout (`vdso.ld`), the `LINUX_2.6` version node (`vdso.map`), both hash
/// styles (glibc and musl read DT_GNU_HASH or DT_HASH, Go either) and no relocations.
fn build_vdso(manifest_dir: &std::path::Path, out_dir: &std::path::Path, target: &str) -> PathBuf {
    let dir = manifest_dir.join("guest/vdso");
    println!("cargo:rerun-if-changed=guest/vdso/src");
    println!("cargo:rerun-if-changed=guest/vdso/Cargo.toml");
    println!("cargo:rerun-if-changed=guest/vdso/vdso.ld");
    println!("cargo:rerun-if-changed=guest/vdso/vdso.map");
    let target_dir = out_dir.join("vdso-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let flags = ["-Crelocation-model=pic", "-Cpanic=abort"].join("\x1f");
    let status = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--quiet", "--target", target])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .status()
        .expect("run cargo to build the vDSO");
    if !status.success() {
        panic!("building the vDSO (guest/vdso) failed");
    }
    let archive = target_dir.join(target).join("release/libumon_vdso.a");
    let so = out_dir.join("umon-vdso.so");
    let mut link = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    link.args([
        "-nostdlib",
        "-shared",
        "-Wl,-soname=linux-vdso.so.1",
        "-Wl,--hash-style=both",
        "-Wl,--build-id=none",
        "-Wl,-Bsymbolic",
        "-Wl,--no-undefined",
        "-Wl,--gc-sections",
        "-Wl,-z,max-page-size=4096",
        "-Wl,-z,noexecstack",
    ]);
    for sym in [
        "clock_gettime",
        "gettimeofday",
        "time",
        "clock_getres",
        "getcpu",
    ] {
        link.arg(format!("-Wl,--undefined=__vdso_{sym}"));
    }
    link.arg(format!("-Wl,-T,{}", dir.join("vdso.ld").display()))
        .arg(format!(
            "-Wl,--version-script={}",
            dir.join("vdso.map").display()
        ))
        .arg("-o")
        .arg(&so)
        .arg(&archive);
    let status = link.status().expect("run cc to link the vDSO");
    if !status.success() {
        panic!("linking the vDSO failed");
    }
    so
}
