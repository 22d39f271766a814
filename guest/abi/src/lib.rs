//! The guest/host contract of umon, defined once and shared by the monitor (`umon`) and the guest
//! core (`umon-core`).
//!
//! # Hypercall convention
//! The guest issues `out dx, al` (or `out imm8, al`) to port [`HYPERCALL_PORT`]` + nr`, where `nr`
//! is a [`Hypercall`] number. For calls that take an argument struct, `rdi` holds the guest
//! *physical* address ([`Gpa`]) of that struct; the monitor reads `rdi` from KVM's synced
//! registers, copies the struct in once, validates it and writes results back in place. A failure
//! the guest can handle comes back as a negative errno in `rax`; a protocol violation (unknown
//! number, struct out of range) ends the VM.
//!
//! [`Hypercall::Syscall`] is special: it is issued by the syscall entry stub, and the arguments are
//! the application's registers, following the Linux x86-64 syscall ABI.
//!
//! # Versioning
//! [`ABI_VERSION`] is bumped on any change to this crate. [`boot::BootInfo`] starts with a magic
//! and the version; the core checks them first and aborts on a mismatch.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot;
pub mod exitless;
pub mod hypercall;
pub mod layout;
pub mod pt;

pub use hypercall::{Hypercall, HYPERCALL_PORT};

/// Version of this contract; bumped on every change to this crate.
pub const ABI_VERSION: u32 = 7;

/// A guest physical address.
#[repr(transparent)]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct Gpa(pub u64);

/// A guest virtual address.
#[repr(transparent)]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct Gva(pub u64);

impl Gpa {
    /// The address `bytes` further on, or `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<Gpa> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Gpa(v)),
            None => None,
        }
    }
}

impl Gva {
    /// The address `bytes` further on, or `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<Gva> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Gva(v)),
            None => None,
        }
    }
}
