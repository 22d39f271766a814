//! Builds the guest core (`guest/core`) with the stock toolchain for the host target and hands
//! its path to the crate as `UMON_CORE_ELF`.
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
}
