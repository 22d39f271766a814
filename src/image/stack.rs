//! The initial process stack of the SysV x86-64 ABI, built on the host: argc, argv, envp, the
//! auxiliary vector and the strings they point to, laid out below a given top address.

/// auxv keys (include/uapi/linux/auxvec.h).
pub mod at {
    /// End of vector.
    pub const NULL: u64 = 0;
    /// Program headers.
    pub const PHDR: u64 = 3;
    /// Size of one program header.
    pub const PHENT: u64 = 4;
    /// Number of program headers.
    pub const PHNUM: u64 = 5;
    /// Page size.
    pub const PAGESZ: u64 = 6;
    /// Interpreter base.
    pub const BASE: u64 = 7;
    /// Flags.
    pub const FLAGS: u64 = 8;
    /// Program entry.
    pub const ENTRY: u64 = 9;
    /// Real uid.
    pub const UID: u64 = 11;
    /// Effective uid.
    pub const EUID: u64 = 12;
    /// Real gid.
    pub const GID: u64 = 13;
    /// Effective gid.
    pub const EGID: u64 = 14;
    /// Platform string.
    pub const PLATFORM: u64 = 15;
    /// CPUID(1).EDX.
    pub const HWCAP: u64 = 16;
    /// Clock ticks per second.
    pub const CLKTCK: u64 = 17;
    /// Secure mode.
    pub const SECURE: u64 = 23;
    /// 16 random bytes.
    pub const RANDOM: u64 = 25;
    /// More hardware capabilities.
    pub const HWCAP2: u64 = 26;
    /// File name of the program.
    pub const EXECFN: u64 = 31;
    /// The vDSO's ELF header.
    pub const SYSINFO_EHDR: u64 = 33;
}

/// What goes on the initial stack.
pub struct StackSpec<'a> {
    /// argv, `argv[0]` first.
    pub args: &'a [Vec<u8>],
    /// "KEY=VALUE" entries.
    pub env: &'a [Vec<u8>],
    /// AT_EXECFN string.
    pub execfn: &'a [u8],
    /// AT_RANDOM bytes.
    pub random: [u8; 16],
    /// Auxiliary vector entries except those pointing at strings (EXECFN, PLATFORM, RANDOM)
    /// and AT_NULL, which are added here.
    pub auxv: &'a [(u64, u64)],
}

/// The built stack: write `bytes` at `rsp`, start the program with that rsp.
pub struct InitialStack {
    /// Initial stack pointer (16-byte aligned, pointing at argc).
    pub rsp: u64,
    /// Contents from rsp up to the top.
    pub bytes: Vec<u8>,
}

/// Lay `spec` out below `top`. Fails (None) if it would need more than `max` bytes.
pub fn build(spec: &StackSpec<'_>, top: u64, max: u64) -> Option<InitialStack> {
    // Strings first, from the top down: 16 spare bytes, then each string NUL-terminated.
    let mut strings: Vec<u8> = Vec::new();
    let mut put = |s: &[u8]| -> u64 {
        let off = strings.len() as u64;
        strings.extend_from_slice(s);
        strings.push(0);
        off
    };
    let execfn = put(spec.execfn);
    let args: Vec<u64> = spec.args.iter().map(|a| put(a)).collect();
    let env: Vec<u64> = spec.env.iter().map(|e| put(e)).collect();
    let platform = put(b"x86_64");
    let random = strings.len() as u64;
    strings.extend_from_slice(&spec.random);
    let strings_len = (strings.len() as u64).next_multiple_of(16) + 16;
    let strings_base = top.checked_sub(strings_len)?;
    let at = |off: u64| strings_base + off;

    let mut words: Vec<u64> = Vec::new();
    words.push(spec.args.len() as u64);
    words.extend(args.iter().map(|&o| at(o)));
    words.push(0);
    words.extend(env.iter().map(|&o| at(o)));
    words.push(0);
    for &(k, v) in spec.auxv {
        words.extend([k, v]);
    }
    words.extend([at::EXECFN, at(execfn), at::PLATFORM, at(platform)]);
    words.extend([at::RANDOM, at(random), at::NULL, 0]);

    let rsp = (strings_base.checked_sub(words.len() as u64 * 8)?) & !15;
    if top - rsp > max {
        return None;
    }
    let mut bytes = vec![0u8; (top - rsp) as usize];
    for (i, w) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    let s = (strings_base - rsp) as usize;
    bytes[s..s + strings.len()].copy_from_slice(&strings);
    Some(InitialStack { rsp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(st: &InitialStack, va: u64) -> u64 {
        let o = (va - st.rsp) as usize;
        u64::from_le_bytes(st.bytes[o..o + 8].try_into().unwrap())
    }

    fn cstr(st: &InitialStack, va: u64) -> Vec<u8> {
        let o = (va - st.rsp) as usize;
        let n = st.bytes[o..].iter().position(|&b| b == 0).unwrap();
        st.bytes[o..o + n].to_vec()
    }

    #[test]
    fn layout_follows_sysv() {
        let args = [b"/bin/app".to_vec(), b"-x".to_vec()];
        let env = [b"A=1".to_vec()];
        let spec = StackSpec {
            args: &args,
            env: &env,
            execfn: b"/bin/app",
            random: [7; 16],
            auxv: &[(at::PAGESZ, 4096), (at::ENTRY, 0x401000)],
        };
        let top = 0x7000_0000;
        let st = build(&spec, top, 1 << 20).unwrap();
        assert_eq!(st.rsp % 16, 0);
        assert_eq!(st.rsp + st.bytes.len() as u64, top);
        assert_eq!(word(&st, st.rsp), 2);
        assert_eq!(cstr(&st, word(&st, st.rsp + 8)), b"/bin/app");
        assert_eq!(cstr(&st, word(&st, st.rsp + 16)), b"-x");
        assert_eq!(word(&st, st.rsp + 24), 0);
        assert_eq!(cstr(&st, word(&st, st.rsp + 32)), b"A=1");
        assert_eq!(word(&st, st.rsp + 40), 0);
        let mut aux = Vec::new();
        let mut p = st.rsp + 48;
        loop {
            let (k, v) = (word(&st, p), word(&st, p + 8));
            aux.push((k, v));
            p += 16;
            if k == at::NULL {
                break;
            }
        }
        assert_eq!(aux[0], (at::PAGESZ, 4096));
        let random = aux.iter().find(|a| a.0 == at::RANDOM).unwrap().1;
        let o = (random - st.rsp) as usize;
        assert_eq!(st.bytes[o..o + 16], [7; 16]);
        let plat = aux.iter().find(|a| a.0 == at::PLATFORM).unwrap().1;
        assert_eq!(cstr(&st, plat), b"x86_64");
        assert!(build(&spec, top, 64).is_none());
    }
}
