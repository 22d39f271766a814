//! Decoding syscall arguments for `--trace`: paths and buffers read from guest memory (never
//! trusted: an unreadable pointer prints as hex), flags as names, fds and sizes as numbers.
use super::{Call, Outcome};
use crate::linux::abi::arch::{ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS};
use crate::linux::abi::at::AT_FDCWD;
use crate::linux::abi::{mman, oflag};
use crate::linux::mm::space::AddrSpace;
use crate::machine::memory::GuestMem;
use syscalls::Sysno;

/// How `--trace` shows one argument (the syscall table's rows say it for each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Signed decimal (fds, counts, codes).
    Int,
    /// Unsigned decimal (sizes).
    Size,
    /// Hex (pointers, opaque values).
    Hex,
    /// Octal (modes).
    Oct,
    /// A NUL-terminated string (paths).
    Path,
    /// Data whose length is argument N; for reads, the returned count after the call.
    Out(usize),
    /// Data written by the app, length in argument N.
    In(usize),
    /// dirfd of *at calls (AT_FDCWD by name).
    DirFd,
    /// open(2) flags.
    OpenFlags,
    /// mmap protection.
    Prot,
    /// mmap flags.
    MapFlags,
    /// arch_prctl code.
    ArchCode,
    /// pipe/pipe2's `int[2]`, shown as `[3, 4]` once the call filled it.
    FdPair,
    /// pipe2's flags (`O_NONBLOCK|O_CLOEXEC`, 0 for none).
    PipeFlags,
    /// A socket address the app passes, its length in argument N (strace's
    /// `{sa_family=AF_INET, sin_port=htons(80), …}`).
    SockAddr(usize),
    /// A socket address the call fills, its length in the socklen_t argument N points at;
    /// shown once the call succeeded.
    SockAddrOut(usize),
    /// rt_sigreturn's restored mask (`{mask=[USR1]}`; the caller puts the mask in the
    /// argument).
    SigMask,
}

use Kind::*;

/// The call's argument kinds, from its row in the syscall table; none for a call umon does
/// not serve (all six registers in hex), except those strace shows without arguments.
fn signature(nr: u64) -> Option<&'static [Kind]> {
    if let Some(row) = crate::linux::table::row(nr) {
        return Some(row.args);
    }
    let s = Sysno::new(usize::try_from(nr).ok()?)?;
    crate::linux::table::NO_ARGS_UNSERVED
        .contains(&s)
        .then_some(&[])
}

/// A socket address in the app's memory, as strace shows it.
fn sockaddr(v: u64, len: u64, mem: &GuestMem, space: &AddrSpace) -> String {
    let len = len.min(crate::linux::net::addr::SOCKADDR_MAX as u64) as usize;
    let mut buf = vec![0u8; len];
    match space.read(mem, v, &mut buf) {
        Ok(()) => crate::linux::net::addr::strace(&buf),
        Err(_) => format!("{v:#x}"),
    }
}

/// Bytes of data shown before "...".
const SHOW: usize = 32;

/// The arguments as strace would print them.
pub fn decode(call: &Call, mem: &GuestMem, space: &AddrSpace) -> Vec<String> {
    let Some(sig) = signature(call.nr) else {
        return call
            .args
            .iter()
            .take(6)
            .map(|a| format!("{a:#x}"))
            .collect();
    };
    sig.iter()
        .enumerate()
        .map(|(i, kind)| one(*kind, i, call, mem, space))
        .collect()
}

fn one(kind: Kind, i: usize, call: &Call, mem: &GuestMem, space: &AddrSpace) -> String {
    let v = call.args[i];
    match kind {
        Int => (v as i32 as i64).to_string(),
        Size => v.to_string(),
        SigMask => format!("{{mask={}}}", sigset(v)),
        Hex if v == 0 => "NULL".into(),
        Hex => format!("{v:#x}"),
        Oct => format!("{v:#o}"),
        DirFd if v as i32 == AT_FDCWD as i32 => "AT_FDCWD".into(),
        DirFd => (v as i32).to_string(),
        Path => match space.read_cstr(mem, v, 4095) {
            Ok(p) => quote(&p, usize::MAX),
            Err(_) => format!("{v:#x}"),
        },
        In(len_arg) => data(v, call.args[len_arg], mem, space),
        Out(len_arg) => match call.result {
            Outcome::Returned(n) if n >= 0 => {
                data(v, (n as u64).min(call.args[len_arg]), mem, space)
            }
            _ => format!("{v:#x}"),
        },
        OpenFlags => open_flags(v),
        SockAddr(_) | SockAddrOut(_) if v == 0 => "NULL".into(),
        SockAddr(len_arg) => sockaddr(v, call.args[len_arg], mem, space),
        SockAddrOut(len_arg) => match (call.result, space.read_val::<u32>(mem, call.args[len_arg]))
        {
            (Outcome::Returned(n), Ok(len)) if n >= 0 => sockaddr(v, u64::from(len), mem, space),
            _ => format!("{v:#x}"),
        },
        FdPair => match (call.result, space.read_val::<[i32; 2]>(mem, v)) {
            (Outcome::Returned(0), Ok([r, w])) => format!("[{r}, {w}]"),
            _ => format!("{v:#x}"),
        },
        PipeFlags => flags(
            v,
            &[
                (oflag::NONBLOCK, "O_NONBLOCK"),
                (oflag::DIRECT, "O_DIRECT"),
                (oflag::CLOEXEC, "O_CLOEXEC"),
            ],
            "0",
        ),
        Prot => flags(
            v,
            &[
                (mman::PROT_READ.into(), "PROT_READ"),
                (mman::PROT_WRITE.into(), "PROT_WRITE"),
                (mman::PROT_EXEC.into(), "PROT_EXEC"),
            ],
            "PROT_NONE",
        ),
        MapFlags => flags(
            v,
            &[
                (mman::MAP_SHARED, "MAP_SHARED"),
                (mman::MAP_PRIVATE, "MAP_PRIVATE"),
                (mman::MAP_FIXED, "MAP_FIXED"),
                (mman::MAP_ANONYMOUS, "MAP_ANONYMOUS"),
                (mman::MAP_GROWSDOWN, "MAP_GROWSDOWN"),
                (mman::MAP_NORESERVE, "MAP_NORESERVE"),
                (mman::MAP_POPULATE, "MAP_POPULATE"),
                (mman::MAP_STACK, "MAP_STACK"),
                (mman::MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
            ],
            "0",
        ),
        ArchCode => match v {
            ARCH_SET_GS => "ARCH_SET_GS".into(),
            ARCH_SET_FS => "ARCH_SET_FS".into(),
            ARCH_GET_FS => "ARCH_GET_FS".into(),
            ARCH_GET_GS => "ARCH_GET_GS".into(),
            _ => format!("{v:#x}"),
        },
    }
}

fn data(at: u64, len: u64, mem: &GuestMem, space: &AddrSpace) -> String {
    let n = len.min(SHOW as u64) as usize;
    let mut buf = vec![0u8; n];
    match space.read(mem, at, &mut buf) {
        Ok(()) => {
            let mut s = quote(&buf, n);
            if len > n as u64 {
                s.push_str("...");
            }
            s
        }
        Err(_) => format!("{at:#x}"),
    }
}

/// C-style quoting: printable ASCII as is, the usual escapes, the rest as \ooo... like strace.
fn quote(bytes: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:o}")),
        }
    }
    s.push('"');
    s
}

fn flags(v: u64, names: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rest = v;
    for &(bit, name) in names {
        if v & bit == bit && bit != 0 {
            parts.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

fn open_flags(v: u64) -> String {
    let access = match v & oflag::ACCMODE {
        oflag::RDONLY => "O_RDONLY",
        oflag::WRONLY => "O_WRONLY",
        oflag::RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = flags(
        v & !oflag::ACCMODE,
        &[
            (oflag::CREAT, "O_CREAT"),
            (oflag::EXCL, "O_EXCL"),
            (oflag::NOCTTY, "O_NOCTTY"),
            (oflag::TRUNC, "O_TRUNC"),
            (oflag::APPEND, "O_APPEND"),
            (oflag::NONBLOCK, "O_NONBLOCK"),
            (oflag::TMPFILE, "O_TMPFILE"),
            (oflag::DIRECTORY, "O_DIRECTORY"),
            (oflag::NOFOLLOW, "O_NOFOLLOW"),
            (oflag::CLOEXEC, "O_CLOEXEC"),
            (oflag::PATH, "O_PATH"),
        ],
        "",
    );
    if rest.is_empty() {
        access.into()
    } else {
        format!("{access}|{rest}")
    }
}

/// The return value as strace shows it: addresses in hex, the rest decimal.
pub fn ret(nr: u64, r: i64) -> String {
    let hex = matches!(
        usize::try_from(nr).ok().and_then(Sysno::new),
        Some(Sysno::mmap | Sysno::brk | Sysno::mremap)
    );
    if hex {
        format!("{r:#x}")
    } else {
        r.to_string()
    }
}

/// A signal set as strace prints it: `[USR1 RT_2]`.
pub fn sigset(mask: u64) -> String {
    let names: Vec<String> = (1..=64)
        .filter(|s| mask & (1u64 << (s - 1)) != 0)
        .map(|s| {
            let n = crate::linux::signal::signal_name(s);
            n.strip_prefix("SIG").map(str::to_string).unwrap_or(n)
        })
        .collect();
    format!("[{}]", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_quotes() {
        assert_eq!(
            open_flags(0o2000000 | 0o100 | 1),
            "O_WRONLY|O_CREAT|O_CLOEXEC"
        );
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(quote(b"a\"b\n\x01", 10), "\"a\\\"b\\n\\1\"");
        assert_eq!(flags(3, &[(1, "A"), (2, "B")], "0"), "A|B");
        assert_eq!(flags(0x11, &[(1, "A")], "0"), "A|0x10");
    }
}
