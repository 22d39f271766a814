//! The application's file descriptor table: guest fd numbers are the guest's own, mapped to
//! what they refer to on the monitor's side.
use syscalls::Errno;

/// What an fd refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenFile {
    /// The application's stdin.
    Stdin,
    /// The application's stdout.
    Stdout,
    /// The application's stderr.
    Stderr,
}

impl OpenFile {
    /// Which standard stream (0, 1, 2).
    pub fn stream(self) -> u8 {
        match self {
            OpenFile::Stdin => 0,
            OpenFile::Stdout => 1,
            OpenFile::Stderr => 2,
        }
    }
}

/// One slot of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd {
    /// The open file.
    pub file: OpenFile,
    /// FD_CLOEXEC (recorded; there is no exec).
    pub cloexec: bool,
}

/// Default RLIMIT_NOFILE.
pub const DEFAULT_MAX_FDS: u64 = 1024;
/// The most fds an application may raise its limit to.
pub const HARD_MAX_FDS: u64 = 4096;

/// fd number -> open file.
#[derive(Debug)]
pub struct FdTable {
    slots: Vec<Option<Fd>>,
    /// Current RLIMIT_NOFILE.
    pub limit: u64,
}

impl Default for FdTable {
    fn default() -> Self {
        let std = |file| {
            Some(Fd {
                file,
                cloexec: false,
            })
        };
        FdTable {
            slots: vec![
                std(OpenFile::Stdin),
                std(OpenFile::Stdout),
                std(OpenFile::Stderr),
            ],
            limit: DEFAULT_MAX_FDS,
        }
    }
}

impl FdTable {
    /// The open file behind `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i).copied().flatten())
            .ok_or(Errno::EBADF)
    }

    /// Mutable slot of an open `fd`.
    pub fn get_mut(&mut self, fd: u64) -> Result<&mut Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.as_mut())
            .ok_or(Errno::EBADF)
    }

    /// Install `entry` at the lowest free number >= `min`.
    pub fn alloc(&mut self, min: u64, entry: Fd) -> Result<u64, Errno> {
        if min >= self.limit {
            return Err(Errno::EINVAL);
        }
        let min = min as usize;
        let free =
            (min..self.limit as usize).find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()));
        let i = free.ok_or(Errno::EMFILE)?;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(entry);
        Ok(i as u64)
    }

    /// Install `entry` at exactly `fd`, closing what was there.
    pub fn set(&mut self, fd: u64, entry: Fd) -> Result<(), Errno> {
        if fd >= self.limit {
            return Err(Errno::EBADF);
        }
        let i = fd as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(entry);
        Ok(())
    }

    /// Close `fd`.
    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        self.get(fd)?;
        self.slots[fd as usize] = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_and_limits() {
        let mut t = FdTable::default();
        let e = t.get(1).unwrap();
        assert_eq!(t.alloc(0, e), Ok(3));
        t.close(0).unwrap();
        assert_eq!(t.alloc(0, e), Ok(0));
        assert_eq!(t.close(0), Ok(()));
        assert_eq!(t.close(0), Err(Errno::EBADF));
        assert_eq!(t.get(u64::MAX), Err(Errno::EBADF));
        t.limit = 5;
        assert_eq!(t.alloc(4, e), Ok(4));
        assert_eq!(t.alloc(4, e), Err(Errno::EMFILE));
        assert_eq!(t.alloc(9, e), Err(Errno::EINVAL));
        assert_eq!(t.set(7, e), Err(Errno::EBADF));
    }
}
