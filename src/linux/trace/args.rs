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
    /// epoll_create1's flags (`EPOLL_CLOEXEC`, 0 for none).
    EpollFlags,
    /// epoll_ctl's op (`EPOLL_CTL_ADD`, …).
    EpollOp,
    /// epoll_ctl's `struct epoll_event` (`{events=EPOLLIN|EPOLLET, data={u32=4, u64=4}}`),
    /// an address for the op in argument N being EPOLL_CTL_DEL, as strace.
    EpollEvent(usize),
    /// epoll_wait's array of ready events, as many as the call returned (`[]` for none), an
    /// address when it failed.
    EpollEvents,
    /// A `struct timespec` the call reads, shown once it succeeded (strace decodes it at the
    /// call's end: an address when it failed).
    TimespecIn,
    /// A sigset the call reads, its size in argument N; shown once the call succeeded.
    SigSetIn(usize),
    /// rt_sigreturn's restored mask (`{mask=[USR1]}`; the caller puts the mask in the
    /// argument).
    SigMask,
}

use Kind::*;

/// The call's argument kinds, from its row in the syscall table; none for a call umon does
/// not serve (all six registers in hex), except those strace shows without arguments.
fn signature(nr: u64) -> Option<&'static [Kind]> {
    if let Some(sig) = decoded_here(nr) {
        return Some(sig);
    }
    if let Some(row) = crate::linux::table::row(nr) {
        return Some(row.args);
    }
    let s = Sysno::new(usize::try_from(nr).ok()?)?;
    crate::linux::table::NO_ARGS_UNSERVED
        .contains(&s)
        .then_some(&[])
}

/// The epoll calls, whose structures strace decodes (their table rows say Hex).
fn decoded_here(nr: u64) -> Option<&'static [Kind]> {
    Some(match Sysno::new(usize::try_from(nr).ok()?)? {
        Sysno::epoll_create1 => &[EpollFlags],
        Sysno::epoll_ctl => &[Int, EpollOp, Int, EpollEvent(1)],
        Sysno::epoll_wait => &[Int, EpollEvents, Int, Int],
        Sysno::epoll_pwait => &[Int, EpollEvents, Int, Int, SigSetIn(5), Size],
        Sysno::epoll_pwait2 => &[Int, EpollEvents, Int, TimespecIn, SigSetIn(5), Size],
        _ => return None,
    })
}

/// EPOLL_CTL_DEL.
const EPOLL_CTL_DEL: u64 = 2;

/// The epoll event bits in strace's order.
const EPOLL_EVENTS: &[(u64, &str)] = &[
    (0x1, "EPOLLIN"),
    (0x2, "EPOLLPRI"),
    (0x4, "EPOLLOUT"),
    (0x8, "EPOLLERR"),
    (0x10, "EPOLLHUP"),
    (0x20, "EPOLLNVAL"),
    (0x40, "EPOLLRDNORM"),
    (0x80, "EPOLLRDBAND"),
    (0x100, "EPOLLWRNORM"),
    (0x200, "EPOLLWRBAND"),
    (0x400, "EPOLLMSG"),
    (0x2000, "EPOLLRDHUP"),
    (1 << 27, "EPOLL_URING_WAKE"),
    (1 << 28, "EPOLLEXCLUSIVE"),
    (1 << 29, "EPOLLWAKEUP"),
    (1 << 30, "EPOLLONESHOT"),
    (1 << 31, "EPOLLET"),
];

/// One `struct epoll_event` (packed on x86-64: events at 0, data at 4) as strace prints it.
fn epoll_event(e: [u8; 12]) -> String {
    let events = u32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
    let data = u64::from_ne_bytes([e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11]]);
    format!(
        "{{events={}, data={{u32={}, u64={data}}}}}",
        flags(u64::from(events), EPOLL_EVENTS, "0"),
        data as u32
    )
}

/// `n` epoll events at `at`, an address if any is unreadable.
fn epoll_events(at: u64, n: u64, mem: &GuestMem, space: &AddrSpace) -> String {
    let mut out = Vec::new();
    for i in 0..n {
        match space.read_val::<[u8; 12]>(mem, at.wrapping_add(i * 12)) {
            Ok(e) => out.push(epoll_event(e)),
            Err(_) => return format!("{at:#x}"),
        }
    }
    format!("[{}]", out.join(", "))
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
        EpollFlags if v != 0 && v & oflag::CLOEXEC == 0 => format!("{v:#x} /* EPOLL_??? */"),
        EpollFlags => flags(v, &[(oflag::CLOEXEC, "EPOLL_CLOEXEC")], "0"),
        EpollOp => match v as u32 {
            0 => "0 /* EPOLL_CTL_??? */".into(),
            1 => "EPOLL_CTL_ADD".into(),
            2 => "EPOLL_CTL_DEL".into(),
            3 => "EPOLL_CTL_MOD".into(),
            o => format!("{o:#x} /* EPOLL_CTL_??? */"),
        },
        EpollEvent(_) if v == 0 => "NULL".into(),
        EpollEvent(op) if call.args[op] as u32 as u64 == EPOLL_CTL_DEL => format!("{v:#x}"),
        EpollEvent(_) => match space.read_val::<[u8; 12]>(mem, v) {
            Ok(e) => epoll_event(e),
            Err(_) => format!("{v:#x}"),
        },
        EpollEvents => match call.result {
            Outcome::Returned(n) if n >= 0 => epoll_events(v, n as u64, mem, space),
            _ if v == 0 => "NULL".into(),
            _ => format!("{v:#x}"),
        },
        TimespecIn | SigSetIn(_) if v == 0 => "NULL".into(),
        TimespecIn => match (call.result, space.read_val::<[i64; 2]>(mem, v)) {
            (Outcome::Returned(n), Ok([sec, nsec])) if n >= 0 => {
                format!("{{tv_sec={sec}, tv_nsec={nsec}}}")
            }
            _ => format!("{v:#x}"),
        },
        SigSetIn(size) => match (call.result, space.read_val::<u64>(mem, v)) {
            (Outcome::Returned(n), Ok(mask)) if n >= 0 && call.args[size] == 8 => sigset(mask),
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

    #[test]
    fn epoll_events_as_strace() {
        let mut e = [0u8; 12];
        e[..4].copy_from_slice(&(0x8000_0001u32 | 0x1000).to_ne_bytes());
        e[4..].copy_from_slice(&0x1_0000_0007u64.to_ne_bytes());
        assert_eq!(
            epoll_event(e),
            "{events=EPOLLIN|EPOLLET|0x1000, data={u32=7, u64=4294967303}}"
        );
        assert_eq!(epoll_event([0; 12]), "{events=0, data={u32=0, u64=0}}");
    }
}
