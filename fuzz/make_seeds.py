#!/usr/bin/env python3
"""Writes the committed seed corpus: fuzz/corpus/<target>/seed-*.

Every seed is made here from hand-written bytes (no compiler output), so the corpus is small,
reviewable and reproducible: `python3 fuzz/make_seeds.py` rewrites the same files. The
syscall and hypercall encodings mirror fuzz/src/machine.rs; keep the two in step.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


# ---- ELF files ---------------------------------------------------------------------------------

PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
R, W, X = 4, 2, 1
EXIT_42 = bytes([0xBF, 0x2A, 0, 0, 0, 0xB8, 0xE7, 0, 0, 0, 0x0F, 0x05])


def ehdr(e_type, entry, phnum, shoff=0, shnum=0, shstrndx=0, machine=62, cls=2, data=1):
    ident = b"\x7fELF" + bytes([cls, data, 1, 0]) + bytes(8)
    return ident + struct.pack(
        "<HHIQQQIHHHHHH", e_type, machine, 1, entry, 64, shoff, 0, 64, 56, phnum, 64, shnum,
        shstrndx)


def phdr(p_type, flags, offset, vaddr, filesz, memsz, align=0x1000):
    return struct.pack("<IIQQQQQQ", p_type, flags, offset, vaddr, vaddr, filesz, memsz, align)


def static_exit42(segs=None, e_type=2, base=0x400000, extra=()):
    """ET_EXEC (or ET_DYN with base 0): headers, then EXIT_42; one R+X segment over the file."""
    n = 1 + len(extra)
    code = 64 + 56 * n
    size = code + len(EXIT_42)
    hs = [phdr(PT_LOAD, R | X, 0, base, size, size)] if segs is None else segs
    body = ehdr(e_type, base + code, len(hs) + len(extra)) + b"".join(hs) + b"".join(extra)
    return body + EXIT_42


def pie_two_segments():
    """A static-pie shape: PT_PHDR, R+X text, R+W data with bss, PT_GNU_STACK."""
    n = 4
    code = 64 + 56 * n
    hs = [
        phdr(PT_PHDR, R, 64, 64, 56 * n, 56 * n, 8),
        phdr(PT_LOAD, R | X, 0, 0, 0x1000, 0x1000),
        phdr(PT_LOAD, R | W, 0x1000, 0x1000, 0x10, 0x3000),
        phdr(PT_GNU_STACK, R | W, 0, 0, 0, 0, 16),
    ]
    b = ehdr(3, code, n) + b"".join(hs) + EXIT_42
    return b + bytes(0x1010 - len(b))


def with_symbols():
    """ET_EXEC with a section table: .symtab (one FUNC symbol `main`), .strtab, .shstrtab."""
    code = 64 + 56
    strtab = b"\0main\0"
    shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0"
    sym0 = bytes(24)
    sym1 = struct.pack("<IBBHQQ", 1, 0x12, 0, 1, 0x400000 + code, len(EXIT_42))
    symtab = sym0 + sym1
    body_end = code + len(EXIT_42)
    off_sym = (body_end + 7) & ~7
    off_str = off_sym + len(symtab)
    off_shs = off_str + len(strtab)
    shoff = (off_shs + len(shstrtab) + 7) & ~7

    def shdr(name, typ, off, size, link=0, info=0, entsize=0):
        return struct.pack("<IIQQQQIIQQ", name, typ, 0, 0, off, size, link, info, 8, entsize)

    shdrs = (shdr(0, 0, 0, 0) + shdr(1, 2, off_sym, len(symtab), 2, 1, 24)
             + shdr(9, 3, off_str, len(strtab)) + shdr(17, 3, off_shs, len(shstrtab)))
    size = shoff + len(shdrs)
    b = ehdr(2, 0x400000 + code, 1, shoff, 4, 3) + phdr(PT_LOAD, R | X, 0, 0x400000, size, size)
    b += EXIT_42
    b += bytes(off_sym - len(b)) + symtab + strtab + shstrtab
    b += bytes(shoff - len(b)) + shdrs
    return b


def with_interp():
    interp = b"/lib64/ld-linux-x86-64.so.2\0"
    n = 2
    off = 64 + 56 * n
    hs = [phdr(PT_INTERP, R, off, 0x400000 + off, len(interp), len(interp), 1),
          phdr(PT_LOAD, R | X, 0, 0x400000, 0x1000, 0x1000)]
    b = ehdr(2, 0x400000 + off, n) + b"".join(hs) + interp
    return b + bytes(0x1000 - len(b))


out("elf_plan", "static-exit42", static_exit42())
out("elf_plan", "static-pie", pie_two_segments())
out("elf_plan", "symbols", with_symbols())
out("elf_plan", "interp", with_interp())
out("elf_plan", "overlap", static_exit42(
    [phdr(PT_LOAD, R | X, 0, 0x400000, 0x80, 0x2000), phdr(PT_LOAD, R | W, 0, 0x401000, 0, 16)]))
out("elf_plan", "filesz-over-memsz", static_exit42([phdr(PT_LOAD, R | X, 0, 0x400000, 0x80, 0x40)]))
out("elf_plan", "phoff-past-eof", ehdr(2, 0x400078, 1)[:32] + struct.pack("<Q", 1 << 40)
    + ehdr(2, 0x400078, 1)[40:] + phdr(PT_LOAD, R | X, 0, 0x400000, 0x80, 0x80))
out("elf_plan", "truncated", static_exit42()[:40])


# ---- syscall programs (fuzz/src/machine.rs: `syscall`) ------------------------------------------

TEXT, DATA, STACK, ARENA = 0, 1, 2, 3


def poke(area, offset, data):
    assert len(data) < 256
    return bytes([0xC0 | area]) + struct.pack("<IB", offset, len(data)) + bytes(data)


def arg(a):
    """A tagged argument: an int is a raw u64; otherwise (kind, value)."""
    if isinstance(a, int):
        return bytes([0]) + struct.pack("<Q", a & (2**64 - 1))
    kind, v = a if isinstance(a, tuple) else (a, 0)
    table = {"text": (1, "<H"), "data": (2, "<H"), "stack": (3, "<H"), "arena": (4, "<I"),
             "arena_end": (5, "<H"), "small": (6, "<B"), "neg": (7, "<B"), "edge": (8, "<B"),
             "data_end": (9, "<B"), "pow": (10, "<B"), "pow1": (11, "<B"), "fd": (12, "<B"),
             "last": (13, ""), "last+": (14, "<H"), "u32": (15, "<I"), "path": (16, "<B"),
             "file": (17, "<B")}
    tag, fmt = table[kind]
    return bytes([tag]) + (struct.pack(fmt, v) if fmt else b"")


def call(nr, *args, op=0):
    args = list(args) + [("small", 0)] * (6 - len(args))
    return bytes([op]) + struct.pack("<H", nr) + b"".join(arg(a) for a in args)


ECHO = 0xFF00  # selector of SYS_UMON_ECHO
# Indices into machine::EDGES.
E_MAX, E_SIGN, E_NONCANON, E_KERNEL, E_RAM_END, E_ARENA_END = 2, 4, 5, 7, 16, 22


def prog(flags, *steps):
    return bytes([flags]) + b"".join(steps)


def u64s(*vs):
    return struct.pack("<%dQ" % len(vs), *vs)


NS = 0x1000_0000_0000 + 2 * (8 << 30)
DATA_VA = NS + (64 << 10)
ARENA_VA = NS + (1 << 30)

out("syscall", "hello", prog(0, poke(DATA, 0, b"hello\n"), call(1, ("fd", 1), "data", ("small", 6)),
                            call(231, ("small", 0))))
out("syscall", "mm", prog(
    0,
    call(9, 0, ("pow", 13), ("small", 3), ("small", 0x22), ("neg", 1), 0),
    call(11, "last", ("pow", 13)),
    call(9, ("arena", 0x100000), ("pow", 12), ("small", 3), ("small", 0x32), ("neg", 1), 0),
    call(25, "last", ("pow", 12), ("pow", 14), ("small", 1)),
    call(28, "last", ("pow", 12), ("small", 4)),
    call(10, "last", ("pow", 12), ("small", 1)),
    call(12, 0),
    call(12, ("last+", 0x1000)),
    call(9, ("arena", 0x200000), ("pow", 12), ("small", 3), ("u32", 0x100022), ("neg", 1), 0),
    call(9, 0, ("pow", 63), ("small", 3), ("small", 0x22), ("neg", 1), 0),
    call(11, ("arena", 0), ("edge", E_MAX)),
))
out("syscall", "vectored", prog(
    0,
    poke(DATA, 0x100, b"abcde"), poke(DATA, 0x200, b"xyz"),
    poke(DATA, 0, u64s(DATA_VA + 0x100, 5, DATA_VA + 0x200, 3)),
    call(20, ("fd", 1), "data", ("small", 2)),
    call(19, ("fd", 0), "data", ("small", 2)),
    call(20, ("fd", 2), ("data", 0), ("u32", 1025)),
    call(296, ("fd", 1), "data", ("small", 2), 0),
))
out("syscall", "signals", prog(
    0,
    poke(DATA, 0, u64s(1, 0x04000000, 0, 0)),
    call(13, ("small", 13), "data", ("data", 0x40), ("small", 8)),
    call(13, ("small", 9), "data", 0, ("small", 8)),
    poke(DATA, 0x80, u64s(1 << 12)),
    call(14, ("small", 0), ("data", 0x80), ("data", 0x88), ("small", 8)),
    poke(DATA, 0x100, u64s(DATA_VA + 0x1000, 0, 0x4000)),
    call(131, ("data", 0x100), ("data", 0x120)),
))
out("syscall", "info", prog(
    0,
    call(63, "data"),
    call(318, ("arena", 0), ("small", 64), 0),
    call(228, ("small", 1), "data"),
    call(229, ("small", 0), "data"),
    call(96, "data", ("data", 16)),
    call(201, "data"),
    call(79, "data", ("small", 100)),
    call(204, 0, ("small", 128), "data"),
    call(302, 0, ("small", 7), 0, "data"),
    call(97, ("small", 3), "data"),
    poke(DATA, 0x40, u64s(256, 4096)),
    call(160, ("small", 7), ("data", 0x40)),
    poke(TEXT, 0, b"/proc/self/exe\0"),
    call(89, "text", "data", ("small", 100)),
    call(267, ("neg", 100), "text", "data", ("small", 100)),
    call(262, ("neg", 100), ("text", 0x20), "data", ("u32", 0x1000)),
    call(262, ("fd", 1), ("text", 0x20), "data", ("u32", 0x1000)),
    call(332, ("fd", 1), ("text", 0x20), ("u32", 0x1000), ("u32", 0xfff), "data"),
    call(5, ("fd", 1), "data"),
    call(16, ("fd", 1), ("u32", 0x5401), "data"),
    call(16, ("fd", 1), ("u32", 0x5421), "data"),
    call(72, ("fd", 1), ("small", 1)),
    call(72, ("fd", 1), ("u32", 1030), ("small", 5)),
    call(32, ("fd", 1)),
    call(33, ("fd", 1), ("small", 10)),
    call(292, ("fd", 1), ("small", 11), ("u32", 0x80000)),
    call(3, ("small", 10)),
    call(8, ("fd", 1), 0, 0),
    call(17, ("fd", 1), "data", ("small", 8), 0),
    call(2, "text", 0, 0),
    call(257, ("neg", 100), "text", 0, 0),
    call(21, "text", 0),
))
out("syscall", "waits", prog(
    0,
    poke(DATA, 0, struct.pack("<ihh", 1, 4, 0)),
    call(7, "data", ("small", 1), ("small", 0)),
    poke(DATA, 0x40, u64s(0, 1000)),
    call(271, "data", ("small", 1), ("data", 0x40), 0, ("small", 8)),
    call(35, ("data", 0x40), 0),
    call(230, ("small", 1), 0, ("data", 0x40), 0),
    call(230, ("small", 1), ("small", 1), ("data", 0x40), 0),
    call(202, ("data", 0x80), ("small", 0), ("small", 0), ("data", 0x40)),
    call(202, ("data", 0x80), ("small", 9), ("small", 0), ("data", 0x40), 0, ("neg", 1)),
    call(202, ("data", 0x80), ("small", 1), ("small", 1)),
    call(24),
    call(202, ("data", 0x80), ("small", 0), ("small", 0), 0),
))
out("syscall", "hostile", prog(
    0,
    call(1, ("fd", 1), ("edge", E_KERNEL), ("small", 10)),
    call(1, ("fd", 1), ("edge", E_NONCANON), ("small", 10)),
    call(1, ("fd", 1), ("edge", E_RAM_END), ("small", 10)),
    call(0, ("fd", 0), "text", ("small", 10)),
    call(1, ("fd", 1), ("data_end", 4), ("small", 100)),
    call(1, ("fd", 1), "data", ("edge", E_SIGN)),
    call(1, ("fd", 1), ("edge", E_MAX), ("small", 2)),
    call(318, ("arena_end", 8), ("small", 64), 0),
    call(318, ("arena", 0), ("edge", E_MAX), 0),
    call(9, 0, ("edge", E_MAX), ("small", 3), ("small", 0x22), ("neg", 1), 0),
    call(11, ("edge", E_ARENA_END), ("pow", 12)),
    call(25, ("arena", 0), ("pow", 12), ("edge", E_MAX), ("small", 1)),
    call(7, ("edge", E_KERNEL), ("u32", 5000), ("small", 0)),
    call(20, ("fd", 1), ("edge", E_KERNEL), ("small", 3)),
    call(14, ("small", 2), ("edge", E_NONCANON), ("edge", E_KERNEL), ("small", 8)),
))
A = 0x300000  # an arena offset for fixed mappings
out("syscall", "findings", prog(
    0,
    # Protections are honoured by every checked access (issue 10).
    call(9, ("arena", A), ("pow", 14), ("small", 3), ("small", 0x32), ("neg", 1), 0),
    call(10, ("arena", A), ("pow", 12), ("small", 0)),
    call(10, ("arena", A + 0x1000), ("pow", 12), ("small", 1)),
    call(1, ("fd", 1), ("arena", A), ("small", 4)),
    call(0, ("fd", 0), ("arena", A + 0x1000), ("small", 4)),
    call(63, ("arena", A)),
    # writev: a good iovec, then one in the PROT_NONE page.
    poke(DATA, 0x100, u64s(DATA_VA, 3, ARENA_VA + A, 1)),
    call(20, ("fd", 1), ("data", 0x100), ("small", 2)),
    call(202, ("arena", A), ("small", 4), ("small", 1), ("small", 1), "data", 0),
    call(202, "data", ("small", 0x84), ("neg", 1), ("small", 1), ("data", 0x40), 0),
    call(202, "data", ("small", 0x84), ("small", 1), ("small", 1), ("data", 0x42), 0),
    call(204, 0, 1 << 32, "data"),
    call(28, ("arena", A), ("pow", 12), ("small", 5)),
    call(28, ("arena", A), ("neg", 1), ("small", 0)),
    call(10, ("arena", A + 1), ("pow", 12), ("small", 1)),
    call(10, ("arena", A), ("pow", 12), ("u32", 0x3000001)),
    call(9, 0, ("pow", 12), ("small", 3), ("small", 0x20), ("neg", 1), 0),
    call(9, 0, ("pow", 12), ("small", 3), ("small", 0x22), ("neg", 1), ("small", 1)),
    call(25, ("arena", A), ("pow", 13), ("pow", 13), ("small", 3), ("arena", A + 0x10000)),
    call(25, ("arena", A + 0x10000), ("pow", 12), ("pow", 12), ("small", 2), ("arena", A)),
    call(25, ("arena", A + 0x10000), ("pow", 12), ("pow", 12), ("small", 5), 0),
    # Signals: held while blocked, pending, tkill(0), kill(-1).
    poke(DATA, 0x200, u64s(1 << 9)),
    call(14, ("small", 0), ("data", 0x200), 0, ("small", 8)),
    call(62, ("small", 1), ("small", 10)),
    call(127, ("data", 0x208), ("small", 8)),
    call(200, 0, 0),
    call(62, ("neg", 1), ("small", 0)),
    call(13, ("small", 10), ("data", 0x300), 0, ("small", 8)),
    # RLIMIT_NOFILE, poll on nothing.
    poke(DATA, 0x400, u64s(42, 42)),
    call(160, ("small", 7), ("data", 0x400)),
    call(97, ("small", 7), ("data", 0x410)),
    call(7, 0, 0, ("neg", 1)),
))
out("syscall", "process", prog(
    1,
    call(158, ("u32", 0x1002), "data"),
    call(158, ("u32", 0x1003), ("data", 8)),
    call(158, ("u32", 0x1002), ("edge", E_NONCANON)),
    call(218, "data"),
    call(273, "data", ("small", 24)),
    call(334, "data", ("small", 32), 0, 0),
    call(39), call(110), call(102), call(104),
    call(57),
    call(60, ("small", 3)),
))
out("syscall", "echo-pvm", prog(
    4 | 8,
    call(ECHO, ("u32", 0x1234)),
    call(1, ("fd", 1), ("text", 0), ("small", 1)),
    call(0xFF01, 0),
    call(0xFF03, 0),
    call(231, ("small", 7)),
))
out("syscall", "summary", prog(
    2,
    call(39), call(1, ("fd", 3), "data", ("small", 1)), call(12, 0), call(231, 0),
))


# Indices into machine::PATHS.
P = {name: i for i, name in enumerate([
    "/data/file", "/data/dir", "/data/dir/inner", "/data/new", "/data/dir/new", "/data/link-out",
    "/data/abs-out", "/data/dir/up/..", "/data/../outside/secret", "/data/dir/../../outside",
    "/ro/file", "/ro/dir/inner", "/ro/link-out", "/ro/new", "/ro", "/data", "/", ".", "..",
    "file", "dir/../file", "", "/proc/self/exe", "/etc/passwd"])}


def path(name):
    return ("path", P[name])


FD3 = ("file", 0)
AT_FDCWD = ("neg", 100)
O_RDWR, O_CREAT, O_DIRECTORY, O_TRUNC = 2, 0o100, 0o200000, 0o1000

out("syscall", "volume-read", prog(
    0,
    call(2, path("/data/file"), 0),
    call(0, FD3, "data", ("small", 100)),
    call(1, ("fd", 1), "data", "last"),
    call(8, FD3, 0, 0),
    call(5, FD3, ("data", 0x200)),
    call(17, FD3, ("data", 0x300), ("small", 5), ("small", 6)),
    call(3, FD3),
))
out("syscall", "volume-write", prog(
    0,
    poke(DATA, 0, b"new contents"),
    call(257, AT_FDCWD, path("file"), ("u32", O_RDWR | O_TRUNC)),
    call(1, FD3, "data", ("small", 12)),
    call(18, FD3, "data", ("small", 4), ("small", 100)),
    call(77, FD3, ("small", 7)),
    call(74, FD3),
    call(85, path("/data/new"), ("u32", 0o644)),
    call(40, ("file", 1), FD3, 0, ("small", 64)),
    call(326, FD3, 0, ("file", 1), 0, ("small", 64), 0),
    call(76, path("/data/dir/inner"), ("small", 1)),
))
out("syscall", "volume-locks", prog(
    0,
    call(2, path("/data/file"), ("u32", O_RDWR)),
    call(2, path("/data/file"), ("u32", O_RDWR)),
    poke(DATA, 0, struct.pack("<hhIqqiI", 1, 0, 0, 0, 10, 0, 0)),
    call(72, FD3, ("small", 6), "data"),
    call(72, ("file", 1), ("small", 37), "data"),
    call(72, ("file", 1), ("small", 38), "data"),
    call(72, ("file", 1), ("small", 5), "data"),
    call(72, FD3, ("small", 7), "data"),
    call(73, FD3, ("small", 2)),
    call(73, ("file", 1), ("small", 2)),
    call(73, FD3, ("small", 3)),
    call(18, FD3, "data", ("small", 1), 1 << 62),
    call(17, FD3, "data", ("small", 1), 1 << 62),
    call(326, FD3, ("data", 0x100), FD3, ("data", 0x108), ("small", 10), 0),
    call(2, path("/data/new"), ("u32", 0o2101)),
    call(40, ("file", 2), FD3, 0, ("small", 4)),
))
out("syscall", "volume-tree", prog(
    1,
    call(83, path("/data/new"), ("u32", 0o755)),
    call(82, path("/data/new"), path("/data/dir/new")),
    call(84, path("/data/dir/new")),
    call(87, path("/data/dir/inner")),
    call(88, path("/etc/passwd"), path("/data/new")),
    call(89, path("/data/new"), "data", ("small", 100)),
    call(86, path("/data/file"), path("/data/dir/new")),
    call(265, AT_FDCWD, path("/data/link-out"), AT_FDCWD, path("/data/dir/new"), ("u32", 0x400)),
    call(2, path("/data/dir"), ("u32", O_DIRECTORY)),
    call(217, FD3, ("arena", 0), ("u32", 4096)),
    call(80, path("/data/dir")),
    call(79, "data", ("small", 200)),
    call(81, FD3),
    call(90, path("/data/file"), ("small", 0)),
    call(91, FD3, ("u32", 0o700)),
    call(280, AT_FDCWD, path("/data/file"), 0, 0),
    call(137, path("/data"), "data"),
    call(138, FD3, "data"),
    call(21, path("/ro/file"), ("small", 2)),
    call(95, ("small", 0o77)),
    call(221, FD3, 0, 0, ("small", 4)),
))
out("syscall", "volume-escape", prog(
    0,
    call(2, path("/data/link-out"), 0),
    call(2, path("/data/abs-out"), ("u32", O_RDWR)),
    call(2, path("/data/../outside/secret"), 0),
    call(2, path("/data/dir/up/.."), ("u32", O_DIRECTORY)),
    call(90, path("/data/link-out"), ("small", 0)),
    call(76, path("/data/abs-out"), ("small", 0)),
    call(280, AT_FDCWD, path("/data/link-out"), 0, 0),
    call(82, path("/data/link-out"), path("/ro/new")),
    call(88, path("/etc/passwd"), path("/data/new")),
    call(2, path("/data/new"), ("u32", O_RDWR | O_TRUNC)),
    call(87, path("/ro/file")),
    call(2, path("/ro/link-out"), 0),
    call(2, path("/ro/new"), ("u32", O_CREAT | O_RDWR), ("u32", 0o644)),
    call(80, path("/data/dir/../../outside")),
    call(2, path("/etc/passwd"), 0),
    call(263, AT_FDCWD, path("/data/dir"), ("u32", 0x200)),
    call(316, AT_FDCWD, path("/data/file"), AT_FDCWD, path("/data/link-out"), ("small", 2)),
))


# ---- signal ops (fuzz/src/signals.rs: an op byte 0xb0 | k, then what call k reads) -----------

SIGUSR1_B, SIGSEGV_B, SIGUSR2_B = 9, 10, 11  # sig() maps byte b < 200 to b % 64 + 1
HANDLER, RESTORER = 0x1000, 0x1100  # text offsets
SCRATCH_PTR = 2  # ptr(): any selector 2..7 is the scratch structure
SA_SIGINFO_BIT, SA_RESTART_BIT, SA_ONSTACK_BIT = 1, 2, 4  # sig_action's flag bits (SA_RESTORER unless 0x20)


def sig_action(sig_b, bits=SA_SIGINFO_BIT, mask=0, handler=HANDLER):
    """rt_sigaction(sig, &act, &old, 8): handler and restorer in the text."""
    return (bytes([0xB0, 2]) + struct.pack("<H", handler) + bytes([bits, 0]) +
            struct.pack("<H", RESTORER) + struct.pack("<Q", mask) +
            bytes([SCRATCH_PTR, SCRATCH_PTR, sig_b]))


def sig_procmask(how, mask):
    return bytes([0xB1]) + struct.pack("<Q", mask) + bytes([how, SCRATCH_PTR, SCRATCH_PTR])


def sig_altstack(stack_offset, size_div4):
    """sigaltstack with ss_sp in the stack region (place() selector 3)."""
    return bytes([0xB3, 0, 3]) + struct.pack("<H", stack_offset) + struct.pack("<H", size_div4) + \
        bytes([SCRATCH_PTR, SCRATCH_PTR])


def sig_kill(sig_b):
    return bytes([0xB4, 0, sig_b])


def sig_tgkill(sig_b):
    return bytes([0xB5, 1, sig_b])


def sig_queue(sig_b, value, code_choice=0):
    """rt_sigqueueinfo(1, sig, &info) with si_code -1 (SI_QUEUE) and si_value = value."""
    return bytes([0xB6, sig_b, code_choice]) + struct.pack("<QQ", 1, value) + bytes([SCRATCH_PTR])


def sig_return():
    """rt_sigreturn as the handler's ret into its restorer makes it."""
    return bytes([0xB8])


def sig_return_at(stack_offset):
    """rt_sigreturn with rsp in the stack region (a forged frame poked there)."""
    return bytes([0xB9, 0]) + struct.pack("<H", stack_offset)


def sig_signalfd(mask, flags_choice=1):
    """signalfd4(-1, &mask, 8, SFD_NONBLOCK)."""
    return bytes([0xBC]) + struct.pack("<Q", mask) + bytes([flags_choice, 0, SCRATCH_PTR])


def sig_read(length, fd=3):
    return bytes([0xBD, fd - 2]) + struct.pack("<H", length) + bytes([SCRATCH_PTR])


def sig_poll(fd=3):
    return bytes([0xBE, fd - 2, SCRATCH_PTR])


def bit(sig):
    return 1 << (sig - 1)


PVM = 8
out("syscall", "sig-handler", prog(PVM, sig_action(SIGUSR1_B), sig_tgkill(SIGUSR1_B)))
out("syscall", "sig-handler-return", prog(
    PVM, sig_action(SIGUSR1_B, SA_SIGINFO_BIT | SA_RESTART_BIT, mask=bit(12)),
    sig_tgkill(SIGUSR1_B), sig_return(), call(39)))
out("syscall", "sig-handler-hardware", prog(
    0, sig_action(SIGUSR1_B), sig_kill(SIGUSR1_B), sig_return(), call(39)))
out("syscall", "sig-altstack-queue", prog(
    PVM, sig_altstack(0x8000, 0x1000), sig_action(SIGUSR2_B, SA_SIGINFO_BIT | SA_ONSTACK_BIT),
    sig_procmask(0, bit(12)), sig_queue(SIGUSR2_B, 7), sig_queue(SIGUSR2_B, 8),
    sig_procmask(1, bit(12)), sig_return(), call(39)))
def forged(rip, rsp, eflags, csgsfs, fpstate, mask=0):
    """A ucontext (the frame after pretcode): flags, link, stack, then the sigcontext."""
    regs = list(range(8, 24))
    regs[15] = rsp
    return (u64s(0, 0, 0, 0, 0) + u64s(*regs) +
            u64s(rip, eflags, csgsfs, 0, 0, 0, 0, fpstate) + u64s(*([0] * 8)) + u64s(mask))


SAFE_RSP, TEXT_RIP = DATA_VA + 0x8000, NS + 0x200
FORGED = [
    # IOPL 3, VM and AC asked for: only the flags a user may change are taken (CS: umon's own
    # user selector, 0x2b: umon's rt_sigreturn refuses Linux's 0x33)
    forged(TEXT_RIP, SAFE_RSP, 0x23202 | 0x40000, 0x2B, 0),
    # a kernel CS: the return faults (SIGSEGV)
    forged(TEXT_RIP, SAFE_RSP, 0x202, 0x10, 0),
    # fpstate in the kernel half: badframe, SIGSEGV to the handler
    forged(TEXT_RIP, SAFE_RSP, 0x202, 0x33, 0xFFFF_8000_0000_0000),
    # fpstate in the text, whose bytes are no valid fxsave image (MXCSR reserved bits)
    forged(TEXT_RIP, SAFE_RSP, 0x202, 0x33, NS + 0x40),
    # a non-canonical rip, accepted (the return faults in user mode)
    forged(0x8000_0000_0000_0000, SAFE_RSP, 0x202, 0x33, 0),
    bytes(255),
    bytes([0xFF]) * 255,
]
steps = [poke(TEXT, 0x40, bytes([0xFF]) * 64), sig_action(SIGSEGV_B)]
for n, frame in enumerate(FORGED):
    at = 0x1000 * (n + 1)
    steps += [poke(STACK, at + i, frame[i:i + 200]) for i in range(0, len(frame), 200)]
    steps.append(sig_return_at(at))
out("syscall", "sig-forged-frames", prog(PVM, *steps))
out("syscall", "sig-signalfd", prog(
    PVM, sig_procmask(0, bit(10) | bit(12)), sig_signalfd(bit(10) | bit(12)), sig_poll(),
    sig_kill(SIGUSR1_B), sig_queue(SIGUSR2_B, 5), sig_poll(), sig_read(3 * 128), sig_read(127),
    sig_read(128)))


# ---- long-tail ops (fuzz/src/longtail.rs: an op byte 0x90 | k, then what call k reads) --------

LT_SCRATCH = 4  # longtail ptr(): selectors 4..9 are the op's scratch structure
SIGWINCH_B = 27  # 27 % 64 + 1: ignored by default, so a timer's signal ends nothing


def lt_timer_create(clock_sel=1, notify_sel=0, signo_b=SIGWINCH_B, value=0):
    """timer_create(clock, &sev, &id): clock_sel 1 is CLOCK_MONOTONIC, notify 0 SIGEV_SIGNAL."""
    return (bytes([0x90, clock_sel, notify_sel, signo_b, 0]) + struct.pack("<Q", value) +
            bytes([LT_SCRATCH, LT_SCRATCH]))


def lt_time(ns):
    """time_pair(): selector 1 is {0, ns} (ns < 65536)."""
    return bytes([1]) + struct.pack("<H", ns)


def lt_timer_settime(interval_ns, value_ns, flags_sel=0):
    """timer_settime(the id timer_create wrote, flags, &new, &old)."""
    return (bytes([0x91, 0, flags_sel]) + lt_time(interval_ns) + lt_time(value_ns) +
            bytes([LT_SCRATCH, LT_SCRATCH]))


def lt_timer(which):
    """0: timer_gettime(id, &out), 1: timer_getoverrun(id), 2: timer_delete(id)."""
    return bytes([0x92, which, 0]) + (bytes([LT_SCRATCH]) if which == 0 else b"")


def lt_setitimer(which, interval_ns, value_ns):
    return (bytes([0x93, 0, which]) + lt_time(interval_ns) + lt_time(value_ns) +
            bytes([LT_SCRATCH, LT_SCRATCH]))


def lt_getitimer(which):
    return bytes([0x93, 1, which, LT_SCRATCH])


def lt_fd(fd):
    """fd(): a byte b >= 1 (below 254) is fd b % 16 + 2."""
    return bytes([fd - 2])


def lt_path(name):
    return bytes([P[name]])


out("syscall", "lt-timers", prog(
    PVM,
    lt_timer_create(), lt_timer_settime(1000, 1000), lt_timer(0), lt_timer(1),
    lt_timer_create(notify_sel=2), lt_timer_settime(0, 0), lt_timer(0),
    lt_timer(2), lt_timer_settime(1, 1), lt_timer(2),
    lt_setitimer(0, 0, 5000), lt_getitimer(0), lt_setitimer(1, 3000, 0), lt_getitimer(1),
    bytes([0x94, 0]),
))
# A periodic SIGHUP timer (1 us, re-armed every 10 us at most) still firing after the input's
# end: a nanosleep is cut short, the delivery kills the process, and the timer fires again
# before the machine goes. The kick of that last signal is never acknowledged; its kicker must
# end with the machine (it once ran for ever, 64 of them stalling a fuzz run).
SIGHUP_B = 0
out("syscall", "lt-timer-after-end", prog(
    PVM,
    lt_timer_create(signo_b=SIGHUP_B), lt_timer_settime(1000, 1000),
    poke(DATA, 0x40, u64s(0, 900_000)), *[call(35, ("data", 0x40), 0)] * 8,
))
out("syscall", "lt-memfd-inotify", prog(
    0,
    # memfd_create("seal-me", MFD_CLOEXEC | MFD_ALLOW_SEALING) = 3, write, seal, write again
    bytes([0x95, 7]) + b"seal-me" + bytes([1, LT_SCRATCH]),
    poke(DATA, 0, b"data"), call(1, FD3, "data", ("small", 4)),
    bytes([0x96]) + lt_fd(3) + bytes([0, 8]),  # F_ADD_SEALS, F_SEAL_WRITE
    call(1, FD3, "data", ("small", 4)),
    bytes([0x96]) + lt_fd(3) + bytes([1, 0]),  # F_GET_SEALS
    # inotify_init1(IN_NONBLOCK) = 4, a watch on /data/dir, an event, reads
    bytes([0x97, 0]),
    bytes([0x98]) + lt_fd(4) + lt_path("/data/dir") + bytes([0]),
    call(2, path("/data/dir/new"), ("u32", O_RDWR | O_CREAT), ("u32", 0o644)),
    call(0, ("file", 1), "data", ("small", 200)),
    call(0, ("file", 1), "data", ("small", 200)),
    bytes([0x98]) + lt_fd(4) + lt_path("/data/dir") + bytes([4]),  # IN_DONT_FOLLOW alone
    bytes([0x99]) + lt_fd(4) + bytes([0]),
    bytes([0x99]) + lt_fd(4) + bytes([0]),
))
out("syscall", "lt-attrs-info-locks", prog(
    0,
    # getxattr("/data/file", "user.a", out, 4), lsetxattr on a symlink out, flistxattr(-1)
    bytes([0x9A, 3]) + lt_path("/data/file") + bytes([0, LT_SCRATCH, LT_SCRATCH, 1, 0]),
    bytes([0x9A, 1]) + lt_path("/data/link-out") + bytes([0, LT_SCRATCH, LT_SCRATCH, 1, 1]),
    bytes([0x9A, 8, 254, 0, LT_SCRATCH, LT_SCRATCH, 2, 0]),  # on fd -1
    # chown("/data/file", -1, -1), fchownat(AT_FDCWD, "/ro/file", nobody, -1, 0)
    bytes([0x9B, 0]) + lt_path("/data/file") + bytes([0, 0]),
    bytes([0x9B, 3, 0]) + lt_path("/ro/file") + bytes([0, 3, 0]),
    # sched_setscheduler(0, SCHED_BATCH, {0}), getpriority(PRIO_PROCESS, 0)
    bytes([0x9C, 0, 3, LT_SCRATCH, 2, 0]),
    bytes([0x9C, 0, 0, LT_SCRATCH, 6, 0, 0]),
    # prctl(PR_GET_NAME, out), prctl(PR_GET_TID_ADDRESS, out), personality(0xffffffff)
    bytes([0x9D, 1, 16, 0, LT_SCRATCH]) + arg(0) + arg(0) + arg(0),
    bytes([0x9D, 1, 40, 0, LT_SCRATCH]) + arg(0) + arg(0) + arg(0),
    bytes([0x9D, 0, 0]),
    # getrusage(RUSAGE_THREAD, out), sysinfo(out), membarrier(MEMBARRIER_CMD_QUERY, 0, 0)
    bytes([0x9E, 0, 1, LT_SCRATCH]), bytes([0x9E, 2, LT_SCRATCH]), bytes([0x9E, 3, 0, 0]) + arg(0),
    # open /data/file = 3; F_SETLK write lock [0, 10); F_OFD_GETLK; flock(LOCK_EX)
    call(2, path("/data/file"), ("u32", O_RDWR)),
    bytes([0x9F]) + lt_fd(3) + bytes([1, 1, 0, 0, 1]) + struct.pack("<H", 10) + bytes([0, 1, LT_SCRATCH]),
    bytes([0x9F]) + lt_fd(3) + bytes([1, 0, 0, 0, 1]) + struct.pack("<H", 10) + bytes([0, 3, LT_SCRATCH]),
    bytes([0x9F]) + lt_fd(3) + bytes([0, 2]),
))


# The calls session 11 added (tests/more_calls.rs has their answers): the id family, getcpu,
# the pkey calls, utime/utimes/futimesat, sync/syncfs/sync_file_range, readahead,
# preadv2/pwritev2 and the old getdents, with good and bad pointers, fds and flags; then
# opens and a signal mask the exit-less server could serve.
# A write to a pipe whose read end is closed: the monitor's host write must fail with EPIPE,
# never raise SIGPIPE in the fuzzer (whose C++ main keeps SIGPIPE's default action: it died
# silently with status 141 in session 11's CI).
out("syscall", "broken-pipe", prog(
    0,
    call(22, "data"),
    call(3, ("u32", 3)),
    call(1, ("u32", 4), "data", ("small", 4)),
    call(1, ("u32", 5), "data", ("small", 4)),
))
out("syscall", "session11-calls", prog(
    0,
    call(118, "data", ("data", 8), ("data", 16)),      # getresuid
    call(120, ("edge", E_KERNEL), "data", "data"),      # getresgid, bad first
    call(117, ("neg", 1), ("neg", 1), ("neg", 1)),      # setresuid -1 -1 -1
    call(105, ("u32", 12345)),                          # setuid other
    call(122, ("u32", 0)),                              # setfsuid
    call(309, "data", ("data", 4), 0),                  # getcpu
    call(309, ("text", 0), 0, 0),                       # getcpu, read-only cpu
    call(330, 0, ("small", 2)),                         # pkey_alloc
    call(329, ("arena", 0), ("small", 1), ("small", 1), ("neg", 1)),  # pkey_mprotect -1
    call(331, ("small", 0)),                            # pkey_free
    poke(DATA, 0x100, u64s(1000000000, 1100000000)),
    call(132, path("/data/file"), ("data", 0x100)),     # utime
    poke(DATA, 0x140, u64s(1200000000, 250000, 1300000000, 1000000)),
    call(235, path("/data/file"), ("data", 0x140)),     # utimes, usec 1e6
    call(261, AT_FDCWD, path("/data/dir"), 0),          # futimesat now
    call(261, FD3, 0, ("data", 0x140)),                 # futimesat on an fd
    call(162),                                          # sync
    call(306, FD3),                                     # syncfs
    call(277, FD3, 0, 0, ("small", 2)),                 # sync_file_range
    call(277, FD3, ("neg", 1), 0, ("small", 9)),        # bad flags and offset
    call(187, FD3, 0, ("small", 100)),                  # readahead
    poke(DATA, 0x200, u64s(DATA_VA + 0x300, 16, DATA_VA + 0x400, 8)),
    call(327, FD3, ("data", 0x200), ("small", 2), 0, 0, 0),          # preadv2
    call(328, FD3, ("data", 0x200), ("small", 2), ("neg", 1), 0, ("small", 4)),  # pwritev2 SYNC
    call(327, FD3, ("data", 0x200), ("small", 1), 0, 0, ("small", 8)),  # NOWAIT: EOPNOTSUPP
    call(2, path("/data/dir"), ("u32", O_DIRECTORY)),
    call(78, ("last", 0), "data", ("small", 200)),      # getdents of it
    call(78, ("last", 0), ("edge", E_MAX), ("small", 200)),
    call(257, AT_FDCWD, path("/data/new"), ("u32", O_RDWR | O_CREAT), ("u32", 0o600)),
    poke(DATA, 0x500, u64s(0xffffffffffffffff)),
    call(14, ("small", 2), ("data", 0x500), ("data", 0x508), ("small", 8)),  # rt_sigprocmask
    call(14, ("small", 2), ("data", 0x508), 0, ("small", 8)),
    call(231, ("small", 0)),
))


# ---- pipe ops (fuzz/src/pipes.rs: an op byte 0xa0 | k, then what call k reads) ---------------

def h16(v):
    return struct.pack("<H", v)


P_READ, P_WRITE = 0, 3  # fd(): selectors for the last pipe2's read and write ends
out("syscall", "pipe", prog(
    PVM | 1, poke(DATA, 0, b"pipe!\n"),
    bytes([0xA0, 1, 0]),                                              # pipe2(scratch, 0)
    bytes([0xA1, P_WRITE, 1]) + h16(0) + bytes([7]) + h16(6) + bytes([0]),    # write 6
    bytes([0xA2, P_READ, 1]) + h16(0x100) + bytes([7]) + h16(6) + bytes([0]),  # read 6
    call(1, ("fd", 1), ("data", 0x100), ("small", 6)),
    bytes([0xA2, P_READ, 1]) + h16(0x200) + bytes([2, 0]),           # would block: skipped
    bytes([0xA5, P_WRITE, 1, 1]) + h16(0) + bytes([7]) + h16(3) + bytes([1, 0]),  # vmsplice 3
    bytes([0xA3, P_READ, 7, 1, 0, 0, 0, 1]),                          # splice to stdout
    bytes([0xA6, P_WRITE, 1, 2]),                                     # F_SETPIPE_SZ 1 MiB + 1
    bytes([0xA6, P_READ, 0]),                                         # F_GETPIPE_SZ
    bytes([0xA2, P_READ, 1]) + h16(0x300) + bytes([7]) + h16(3) + bytes([0]),  # read 3
    call(1, ("fd", 1), ("data", 0x300), ("small", 3)),
    bytes([0xA7, P_WRITE, 0]),                                        # close the write end
    bytes([0xA2, P_READ, 1]) + h16(0x200) + bytes([2, 0]),           # EOF: runs
))


# ---- hypercall programs (fuzz/src/machine.rs: `hypercall`) --------------------------------------

SCRATCH = 0x5000


def gpa_scratch(i):
    return bytes([2, i])


def gpa_raw(v):
    return bytes([0]) + struct.pack("<Q", v & (2**64 - 1))


def hpoke(gpa_bytes, data):
    return bytes([0xC0]) + gpa_bytes + bytes([len(data)]) + bytes(data)


def hcall(nr, rdi=None, sys=0, args=()):
    """Hypercall `nr` (< 10 by the op byte, else by a u16); rdi is a gpa unless nr is Syscall."""
    op = bytes([nr]) if nr < 10 else bytes([0xA0]) + struct.pack("<H", nr)
    args = list(args) + [("small", 0)] * (6 - len(args))
    b = op + struct.pack("<H", sys) + b"".join(arg(a) for a in args)
    if nr != 6:
        b += rdi if rdi is not None else gpa_scratch(0)
    return b


console = struct.pack("<IIQQq", 1, 0, SCRATCH + 0x100, 6, 0)
out("hypercall", "console", prog(
    0, hpoke(gpa_scratch(0x20), b"hello\n"), hpoke(gpa_scratch(0), console), hcall(1),
    hpoke(gpa_scratch(0), struct.pack("<IIQQq", 7, 0, SCRATCH, 1, 0)), hcall(1),
    hcall(2, gpa_raw(0x1ff)),
))
out("hypercall", "console-past-ram", prog(
    0, hpoke(gpa_scratch(0), struct.pack("<IIQQq", 2, 0, (24 << 20) - 2, 6, 0)), hcall(1),
))
out("hypercall", "abort", prog(
    0, hpoke(gpa_scratch(0x20), b"bad things"),
    hpoke(gpa_scratch(0), struct.pack("<QQ", SCRATCH + 0x100, 10)), hcall(3),
))
out("hypercall", "selftest-enter", prog(
    0, hpoke(gpa_scratch(0), u64s(8, 0, 6)), hcall(4),
    hpoke(gpa_scratch(4), u64s(NS + 0x100, NS + (8 << 30) - 64, 1)), hcall(7, gpa_scratch(4)),
    hcall(6, sys=1, args=[("fd", 1), ("text", 0), ("small", 4)]),
    hcall(6, sys=ECHO, args=[0x55]),
    hcall(0), hcall(8), hcall(0xFFFF),
))
out("hypercall", "fault", prog(
    0, hpoke(gpa_scratch(0), u64s(14, 4, NS + 0x10, 0x23, 0x202, NS, 0x1b, 0)), hcall(5),
))
out("hypercall", "core-fault", prog(
    0, hpoke(gpa_scratch(0), u64s(13, 0, 0x200010, 0x8, 0x2, 0xA000, 0x10, 0)), hcall(5),
))
out("hypercall", "syscalls", prog(
    8,
    hcall(6, sys=9, args=[0, ("pow", 13), ("small", 3), ("small", 0x22), ("neg", 1), 0]),
    hcall(6, sys=1, args=[("fd", 1), "last", ("small", 8)]),
    hcall(1, gpa_raw(2**64 - 8)),
    hcall(5, bytes([4, 3])),
))


# ---- the exit-less channel (fuzz/src/machine.rs: `exitless_step`, ops 0x90..0x9f) ------------

CHANNEL0 = 0x1_0000  # umon_abi::exitless::channel_phys(0)


def request(nr, args, state=1, awake=1):
    """Channel 0 as the stub leaves it after the publish: state, awake, nr, args, rcx, r11, rsp."""
    args = list(args) + [0] * (6 - len(args))
    return struct.pack("<IIQ6QQQQ", state, awake, nr, *args, NS + 0x100, 0x202, NS + (8 << 30) - 64)


def settle(off, cpl3=True, at_out=False):
    return bytes([0x90, off, (1 if cpl3 else 0) | (2 if at_out else 0)])


SERVE = bytes([0x98])
out("hypercall", "exitless", prog(
    8,
    hpoke(gpa_raw(CHANNEL0), request(110, [])), SERVE,          # getppid, served
    settle(0x80),                                                # the stub mid-spin: completed
    hpoke(gpa_raw(CHANNEL0), request(1, [1, NS, 4])), SERVE,     # write to a caller's writer:
                                                                 # given back (may block)
    hpoke(gpa_raw(CHANNEL0), request(202, [NS, 0, 0])), SERVE,   # futex: given back
    settle(0xdb, at_out=True),                                   # the fallback `out`
    hpoke(gpa_raw(CHANNEL0), request(39, [])),                   # getpid, published, unserved
    settle(0x80),                                                # claimed by the vCPU: rewound
    settle(0x10),                                                # before the publish: rewound
    hpoke(gpa_raw(CHANNEL0), request(63, [8])), SERVE,           # uname(bad pointer): EFAULT
    hpoke(gpa_raw(CHANNEL0), request(2, [0, 0], state=2)), SERVE,  # forged claim: untouched
    settle(0x80, cpl3=False),
))

