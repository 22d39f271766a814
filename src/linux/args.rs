//! A syscall's six argument registers (rdi, rsi, rdx, r10, r8, r9), read through accessors
//! that say what each one is, with the kernel's types: an `int` is the low 32 bits, a dirfd is
//! AT_FDCWD whatever the upper half holds. Handlers never index the registers.
use super::abi::at::AT_FDCWD;

/// The six argument registers.
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 6]);

impl Args {
    /// Argument `i` as it arrived (a value with no better name here).
    pub fn raw(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// A file descriptor (the fd table checks it).
    pub fn fd(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// A user pointer (checked against the address space when used).
    pub fn ptr(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// A byte count or length.
    pub fn len(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// Flag bits.
    pub fn flags(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// A file offset.
    pub fn off(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// A C `int`: the low 32 bits, signed.
    pub fn int(&self, i: usize) -> i32 {
        self.0[i] as i32
    }

    /// A C `unsigned int`: the low 32 bits.
    pub fn uint(&self, i: usize) -> u32 {
        self.0[i] as u32
    }

    /// The dirfd of an `*at` call: [`AT_FDCWD`] when its `int` is -100, else the register.
    pub fn dirfd(&self, i: usize) -> u64 {
        if self.int(i) == AT_FDCWD as i32 {
            AT_FDCWD
        } else {
            self.0[i]
        }
    }
}
