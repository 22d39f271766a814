// hostile: a program that attacks its kernel through raw `syscall` instructions (no libc
// wrappers, no vDSO) and checks every answer against what Linux answers.
//
//   hostile checks [umon]     bad pointers (NULL, page 1, the core's pages, the kernel half,
//                             non-canonical, read-only text and rodata), lengths that wrap,
//                             2^63 sizes, bad iovecs, bad timespecs, bad numbers. One line per
//                             check, "ok NAME" or "FAIL NAME: got X, want Y", then
//                             "checks: N run, M failed"; exit 1 if any failed. The same lines
//                             natively and under umon; "umon" adds the umon-only lines (marked
//                             below) for documented differences.
//   hostile divergent         checks where umon is known to answer differently from Linux
//                             (umon bugs, reported); same format.
//   hostile exhaust [umon]    mmap (halving the size on ENOMEM) until even 4 KiB fails, check
//                             brk cannot grow either, unmap everything, map and use memory again.
//                             "umon" adds the total mapped in MiB.
//   hostile random N SEED
//                             (with paths into volumes at /data and /ro among the arguments)
//                             N syscalls with random numbers and arguments (only under umon:
//                             natively it would run them on the host). Skips what would end the
//                             process, block or sleep, or pull the rug from under the program
//                             itself (exit, futex, sleeps, polls, brk, arch_prctl SET_FS,
//                             madvise DONTNEED, munmap/mremap/MAP_FIXED over its own image,
//                             stack or heap, reads of stdin, signals to itself and timers that
//                             would send one, rt_sigreturn).
//                             Every result must be a value or -4095..-1; memory the calls were
//                             not given must be unchanged. Prints "random: N calls, all results
//                             valid" to a duplicate of stdout kept at fd 900 (0, 1, 2 are closed
//                             first so random writes cannot reach the output).
//   hostile bug NAME          one call that made the monitor panic (a umon bug, fixed);
//                             prints "bug NAME: RESULT", which must be Linux's result
//   hostile probe read|write|exec ADDR
//                             touches ADDR (hex, or "text" / "rodata" for the program's own);
//                             expected to die of SIGSEGV. Prints "probe: survived" and exits 0
//                             if it does not.
//   hostile probe out|in PORT an I/O port write or read from CPL3 (SIGSEGV)
//   hostile probe insn NAME   hlt, cli, rdmsr, sysret, kernel-ds (load a kernel selector):
//                             SIGSEGV; int3 and tf-syscall (a syscall with the trap flag set):
//                             SIGTRAP; ud2: SIGILL
//
// Expects stdin to be a pipe carrying at least one byte (the read checks use it).
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa))

// ---- raw system calls ---------------------------------------------------------------------

static long sc(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define SC0(n) sc(n, 0, 0, 0, 0, 0, 0)
#define SC1(n, a) sc(n, (long)(a), 0, 0, 0, 0, 0)
#define SC2(n, a, b) sc(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define SC3(n, a, b, c) sc(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SC4(n, a, b, c, d) sc(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define SC5(n, a, b, c, d, e) sc(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define SC6(n, a, b, c, d, e, f)                                                               \
    sc(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

enum {
    NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_stat = 4, NR_fstat = 5,
    NR_poll = 7, NR_lseek = 8, NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_brk = 12,
    NR_rt_sigaction = 13, NR_rt_sigprocmask = 14, NR_ioctl = 16, NR_pread64 = 17,
    NR_readv = 19, NR_writev = 20, NR_access = 21, NR_mremap = 25, NR_madvise = 28,
    NR_dup = 32, NR_dup2 = 33, NR_nanosleep = 35, NR_getpid = 39, NR_exit = 60,
    NR_fcntl = 72, NR_getcwd = 79, NR_readlink = 89, NR_gettimeofday = 96,
    NR_getrlimit = 97, NR_sigaltstack = 131, NR_arch_prctl = 158, NR_setrlimit = 160,
    NR_time = 201, NR_futex = 202, NR_sched_getaffinity = 204, NR_clock_gettime = 228,
    NR_clock_getres = 229, NR_clock_nanosleep = 230, NR_exit_group = 231, NR_openat = 257,
    NR_newfstatat = 262, NR_ppoll = 271, NR_set_robust_list = 273, NR_dup3 = 292,
    NR_prlimit64 = 302, NR_getrandom = 318, NR_statx = 332,
};

// ---- output ------------------------------------------------------------------------------

static int out_fd = 1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (SC3(NR_write, out_fd, line, n) != n)
        SC1(NR_exit_group, 3);
}

static const char *res(long r) {
    static char buf[4][48];
    static int next;
    char *b = buf[next++ % 4];
    switch (-r) {
    case EPERM: return "-EPERM";
    case ENOENT: return "-ENOENT";
    case ESRCH: return "-ESRCH";
    case EBADF: return "-EBADF";
    case EAGAIN: return "-EAGAIN";
    case ENOMEM: return "-ENOMEM";
    case EFAULT: return "-EFAULT";
    case EEXIST: return "-EEXIST";
    case ENODEV: return "-ENODEV";
    case EINVAL: return "-EINVAL";
    case ENOTTY: return "-ENOTTY";
    case ESPIPE: return "-ESPIPE";
    case ERANGE: return "-ERANGE";
    case ENAMETOOLONG: return "-ENAMETOOLONG";
    case ENOSYS: return "-ENOSYS";
    case ETIMEDOUT: return "-ETIMEDOUT";
    case EOPNOTSUPP: return "-EOPNOTSUPP";
    default: snprintf(b, 48, "%ld", r); return b;
    }
}

static int checks, failed;

// The call returned exactly `want`.
static void expect(const char *name, long got, long want) {
    checks++;
    if (got == want) {
        say("ok %s", name);
    } else {
        failed++;
        say("FAIL %s: got %s, want %s", name, res(got), res(want));
    }
}

// The call succeeded (returned >= 0).
static void expect_ok(const char *name, long got) {
    checks++;
    if (got >= 0) {
        say("ok %s", name);
    } else {
        failed++;
        say("FAIL %s: got %s, want success", name, res(got));
    }
}

// ---- addresses ---------------------------------------------------------------------------

#define KERNEL 0xffff800000000000UL      // the kernel half (umon: the Main window over all RAM)
#define KERNEL_TOP 0xfffffffffffff000UL
#define NONCANON 0x0000800000000000UL    // first non-canonical address
#define SIGN 0x8000000000000000UL
#define CORE 0x200000UL                  // umon's core image; nothing natively
#define PAGE1 0x1000UL
#define TWO63 (1UL << 63)

static const char rodata[] = "read-only data";

NOIPA static void text_function(void) {}

static char buf[8192];

// ---- checks ------------------------------------------------------------------------------

struct iovec_raw {
    uint64_t base, len;
};
struct timespec_raw {
    int64_t sec, nsec;
};

static void check_pointers(void) {
    void *text = (void *)text_function;
    expect("write NULL", SC3(NR_write, 1, 0, 8), -EFAULT);
    expect("write page 1", SC3(NR_write, 1, PAGE1, 8), -EFAULT);
    expect("write core image", SC3(NR_write, 1, CORE, 8), -EFAULT);
    expect("write kernel half", SC3(NR_write, 1, KERNEL, 8), -EFAULT);
    expect("write top page", SC3(NR_write, 1, KERNEL_TOP, 8), -EFAULT);
    expect("write non-canonical", SC3(NR_write, 1, NONCANON, 8), -EFAULT);
    expect("write sign bit", SC3(NR_write, 1, SIGN, 8), -EFAULT);
    expect("write just below non-canonical", SC3(NR_write, 1, NONCANON - 4, 8), -EFAULT);
    expect("write NULL length 0", SC3(NR_write, 1, 0, 0), 0);

    // Reads into memory the program may not write. stdin holds data, so Linux gets as far as
    // copying and faults; nothing is consumed.
    expect("read into NULL", SC3(NR_read, 0, 0, 1), -EFAULT);
    expect("read into kernel half", SC3(NR_read, 0, KERNEL, 1), -EFAULT);
    expect("read into text", SC3(NR_read, 0, text, 1), -EFAULT);
    expect("read into rodata", SC3(NR_read, 0, rodata, 1), -EFAULT);
    expect("read after the faults still gets data", SC3(NR_read, 0, buf, 1), 1);

    expect("clock_gettime NULL", SC2(NR_clock_gettime, 1, 0), -EFAULT);
    expect("clock_gettime kernel", SC2(NR_clock_gettime, 1, KERNEL), -EFAULT);
    expect("clock_gettime text", SC2(NR_clock_gettime, 1, text), -EFAULT);
    expect("clock_gettime rodata", SC2(NR_clock_gettime, 1, rodata), -EFAULT);
    expect("clock_gettime bad clock", SC2(NR_clock_gettime, 9999, buf), -EINVAL);
    expect("clock_getres NULL is allowed", SC2(NR_clock_getres, 1, 0), 0);
    expect("gettimeofday kernel", SC2(NR_gettimeofday, KERNEL, 0), -EFAULT);
    expect("time kernel", SC1(NR_time, KERNEL), -EFAULT);
    expect("uname NULL", SC1(63, 0), -EFAULT);
    expect("uname text", SC1(63, text), -EFAULT);
    expect("getrandom NULL", SC3(NR_getrandom, 0, 16, 0), -EFAULT);
    expect("getrandom kernel", SC3(NR_getrandom, KERNEL, 16, 0), -EFAULT);
    expect("getrandom NULL 2^63 bytes", SC3(NR_getrandom, 0, TWO63, 0), -EFAULT);
    expect("getrandom bad flags", SC3(NR_getrandom, buf, 16, 0xff), -EINVAL);
    expect("getcwd NULL", SC2(NR_getcwd, 0, 4096), -EFAULT);
    expect("getcwd size 1", SC2(NR_getcwd, buf, 1), -ERANGE);
    expect("readlink into NULL", SC3(NR_readlink, "/proc/self/exe", 0, 100), -EFAULT);
    expect("readlink NULL path", SC3(NR_readlink, 0, buf, 100), -EFAULT);
    expect("readlink size 0", SC3(NR_readlink, "/proc/self/exe", buf, 0), -EINVAL);
    expect("open NULL", SC2(NR_open, 0, 0), -EFAULT);
    expect("open kernel", SC2(NR_open, KERNEL, 0), -EFAULT);
    expect("openat non-canonical", SC3(NR_openat, -100, NONCANON, 0), -EFAULT);
    expect("stat NULL", SC2(NR_stat, 0, buf), -EFAULT);
    expect("access kernel", SC2(NR_access, KERNEL, 0), -EFAULT);
    expect("fstat NULL", SC2(NR_fstat, 1, 0), -EFAULT);
    expect("fstat kernel", SC2(NR_fstat, 1, KERNEL), -EFAULT);
    expect("fstat text", SC2(NR_fstat, 1, text), -EFAULT);
    expect("fstat bad fd", SC2(NR_fstat, 99, buf), -EBADF);
    expect("newfstatat empty path", SC4(NR_newfstatat, -100, "", buf, 0), -ENOENT);
    expect("newfstatat AT_EMPTY_PATH into NULL", SC4(NR_newfstatat, 1, "", 0, 0x1000), -EFAULT);
    expect("statx into NULL", SC5(NR_statx, 1, "", 0x1000, 0xfff, 0), -EFAULT);
    expect("sched_getaffinity NULL", SC3(NR_sched_getaffinity, 0, 128, 0), -EFAULT);
    expect("sched_getaffinity length 3", SC3(NR_sched_getaffinity, 0, 3, buf), -EINVAL);
    expect("getrlimit NULL", SC2(NR_getrlimit, 3, 0), -EFAULT);
    expect("setrlimit kernel", SC2(NR_setrlimit, 7, KERNEL), -EFAULT);
    expect("prlimit64 old into kernel", SC4(NR_prlimit64, 0, 7, 0, KERNEL), -EFAULT);
    expect("prlimit64 bad resource", SC4(NR_prlimit64, 0, 99, 0, buf), -EINVAL);
    expect("arch_prctl SET_FS non-canonical", SC2(NR_arch_prctl, 0x1002, NONCANON), -EPERM);
    expect("arch_prctl GET_FS into NULL", SC2(NR_arch_prctl, 0x1003, 0), -EFAULT);
    expect("arch_prctl GET_FS into kernel", SC2(NR_arch_prctl, 0x1003, KERNEL), -EFAULT);
    expect("arch_prctl bad code", SC2(NR_arch_prctl, 0x9999, buf), -EINVAL);
    expect("set_robust_list bad size", SC2(NR_set_robust_list, buf, 23), -EINVAL);
    expect("ioctl TCGETS on a pipe", SC3(NR_ioctl, 1, 0x5401, 0), -ENOTTY);
    expect("ioctl FIONBIO NULL", SC3(NR_ioctl, 1, 0x5421, 0), -EFAULT);
    expect("ioctl bad fd", SC3(NR_ioctl, 99, 0x5401, buf), -EBADF);
}

static void check_lengths(void) {
    // Lengths that wrap around the address space, and 2^63 / 2^64-1 sizes.
    expect("write wrapping buffer", SC3(NR_write, 1, -16L, 32), -EFAULT);
    expect("write length wraps past the top", SC3(NR_write, 1, buf, -(long)buf), -EFAULT);
    expect("write 2^63 bytes", SC3(NR_write, 1, buf, TWO63), -EFAULT);
    expect("write 2^64-1 bytes", SC3(NR_write, 1, buf, -1L), -EFAULT);
    expect("read 2^63 bytes", SC3(NR_read, 0, buf, TWO63), -EFAULT);
    expect("read wrapping buffer", SC3(NR_read, 0, -16L, 32), -EFAULT);

    struct iovec_raw iov[2];
    expect("writev NULL", SC3(NR_writev, 1, 0, 1), -EFAULT);
    expect("writev kernel", SC3(NR_writev, 1, KERNEL, 1), -EFAULT);
    expect("writev 1025 iovecs", SC3(NR_writev, 1, iov, 1025), -EINVAL);
    expect("writev -1 iovecs", SC3(NR_writev, 1, iov, -1L), -EINVAL);
    expect("readv 1025 iovecs", SC3(NR_readv, 0, iov, 1025), -EINVAL);
    iov[0] = (struct iovec_raw){(uint64_t)buf, (uint64_t)-1};
    expect("writev iov_len 2^64-1", SC3(NR_writev, 1, iov, 1), -EINVAL);
    iov[0] = (struct iovec_raw){(uint64_t)buf, TWO63};
    expect("writev iov_len 2^63", SC3(NR_writev, 1, iov, 1), -EINVAL);
    iov[0] = (struct iovec_raw){0, 5};
    expect("writev base NULL", SC3(NR_writev, 1, iov, 1), -EFAULT);
    iov[0] = (struct iovec_raw){KERNEL, 5};
    expect("writev base kernel", SC3(NR_writev, 1, iov, 1), -EFAULT);
    expect("readv base kernel", SC3(NR_readv, 0, iov, 1), -EFAULT);
    iov[0] = (struct iovec_raw){(uint64_t)rodata, 5};
    expect("readv into rodata", SC3(NR_readv, 0, iov, 1), -EFAULT);
    expect("writev 0 iovecs", SC3(NR_writev, 1, 0, 0), 0);

    // Timespecs.
    struct timespec_raw ts = {0, 2000000000};
    expect("nanosleep NULL", SC2(NR_nanosleep, 0, 0), -EFAULT);
    expect("nanosleep kernel", SC2(NR_nanosleep, KERNEL, 0), -EFAULT);
    expect("nanosleep nsec 2e9", SC2(NR_nanosleep, &ts, 0), -EINVAL);
    ts = (struct timespec_raw){-1, 0};
    expect("nanosleep negative", SC2(NR_nanosleep, &ts, 0), -EINVAL);
    expect("clock_nanosleep NULL", SC4(NR_clock_nanosleep, 1, 0, 0, 0), -EFAULT);
    ts = (struct timespec_raw){0, -1};
    expect("clock_nanosleep nsec -1", SC4(NR_clock_nanosleep, 1, 0, &ts, 0), -EINVAL);
    short pfd[4] = {1, 4, 0, 0}; // {fd 1, POLLOUT}
    expect("poll NULL", SC3(NR_poll, 0, 1, 0), -EFAULT);
    expect("poll kernel", SC3(NR_poll, KERNEL, 1, 0), -EFAULT);
    expect("poll NULL 0 fds", SC3(NR_poll, 0, 0, 0), 0);
    expect("poll 2^20 fds", SC3(NR_poll, pfd, 1 << 20, 0), -EINVAL);
    expect("ppoll timeout kernel", SC5(NR_ppoll, pfd, 1, KERNEL, 0, 8), -EFAULT);
    ts = (struct timespec_raw){0, 2000000000};
    expect("ppoll nsec 2e9", SC5(NR_ppoll, pfd, 1, &ts, 0, 8), -EINVAL);
    ts = (struct timespec_raw){0, 1000};
    expect("ppoll ready", SC5(NR_ppoll, pfd, 1, &ts, 0, 8), 1);

    // futex.
    static uint32_t word = 1;
    expect("futex wait NULL", SC4(NR_futex, 0, 0, 0, 0), -EFAULT);
    expect("futex wait kernel", SC4(NR_futex, KERNEL, 0, 1, 0), -EFAULT);
    expect("futex wait unaligned", SC4(NR_futex, (char *)&word + 1, 0, 1, 0), -EINVAL);
    expect("futex wait other value", SC4(NR_futex, &word, 128, 0, 0), -EAGAIN);
    expect("futex wait timeout kernel", SC4(NR_futex, &word, 128, 1, KERNEL), -EFAULT);
    ts = (struct timespec_raw){0, 1000};
    expect("futex wait times out", SC4(NR_futex, &word, 128, 1, &ts), -ETIMEDOUT);
    expect("futex bad op", SC4(NR_futex, &word, 99, 1, 0), -ENOSYS);

    // Signal bookkeeping.
    expect("rt_sigaction act kernel", SC4(NR_rt_sigaction, 10, KERNEL, 0, 8), -EFAULT);
    expect("rt_sigaction oldact kernel", SC4(NR_rt_sigaction, 10, 0, KERNEL, 8), -EFAULT);
    expect("rt_sigaction sigsetsize 4", SC4(NR_rt_sigaction, 10, 0, buf, 4), -EINVAL);
    expect("rt_sigaction signal 0", SC4(NR_rt_sigaction, 0, 0, buf, 8), -EINVAL);
    expect("rt_sigaction signal 65", SC4(NR_rt_sigaction, 65, 0, buf, 8), -EINVAL);
    memset(buf, 0, 64);
    expect("rt_sigaction SIGKILL", SC4(NR_rt_sigaction, 9, buf, 0, 8), -EINVAL);
    expect("rt_sigprocmask set kernel", SC4(NR_rt_sigprocmask, 0, KERNEL, 0, 8), -EFAULT);
    expect("rt_sigprocmask bad how", SC4(NR_rt_sigprocmask, 7, buf, 0, 8), -EINVAL);
    expect("sigaltstack new kernel", SC2(NR_sigaltstack, KERNEL, 0), -EFAULT);
    expect("sigaltstack old kernel", SC2(NR_sigaltstack, 0, KERNEL), -EFAULT);
    uint64_t ss[3] = {(uint64_t)buf, 0, 100};
    expect("sigaltstack too small", SC2(NR_sigaltstack, ss, 0), -ENOMEM);

    // Paths.
    static char longpath[4097];
    memset(longpath, 'a', 4096);
    expect("open 4096-byte path without NUL", SC2(NR_open, longpath, 0), -ENAMETOOLONG);

    // File descriptors.
    expect("close 99", SC1(NR_close, 99), -EBADF);
    expect("close -1", SC1(NR_close, -1L), -EBADF);
    expect("dup -1", SC1(NR_dup, -1L), -EBADF);
    expect("dup2 to -1", SC2(NR_dup2, 1, -1L), -EBADF);
    expect("dup2 to 2^20", SC2(NR_dup2, 1, 1 << 20), -EBADF);
    expect("dup3 same fd", SC3(NR_dup3, 1, 1, 0), -EINVAL);
    expect("dup3 bad flags", SC3(NR_dup3, 1, 5, 0xff), -EINVAL);
    expect("fcntl bad command", SC3(NR_fcntl, 1, 9999, 0), -EINVAL);
    expect("fcntl F_DUPFD 2^20", SC3(NR_fcntl, 1, 0, 1 << 20), -EINVAL);
    expect("lseek on a pipe", SC3(NR_lseek, 1, 0, 1), -ESPIPE);
    expect("pread64 on a pipe", SC4(NR_pread64, 0, buf, 1, 0), -ESPIPE);

    // Numbers.
    expect("syscall 500", SC0(500), -ENOSYS);
    expect("syscall 2^64-1", SC0(-1L), -ENOSYS);
    expect("syscall 0x40000000 (x32)", SC0(0x40000000), -ENOSYS);
}

static void check_memory(int umon) {
    const long RW = 3, PRIV_ANON = 0x22, FIXED = 0x10, NOREPLACE = 0x100000, MAYMOVE = 1;
    expect("mmap length 0", SC6(NR_mmap, 0, 0, RW, PRIV_ANON, -1, 0), -EINVAL);
    expect("mmap 2^63 bytes", SC6(NR_mmap, 0, TWO63, RW, PRIV_ANON, -1, 0), -ENOMEM);
    expect("mmap 2^64-1 bytes", SC6(NR_mmap, 0, -1L, RW, PRIV_ANON, -1, 0), -ENOMEM);
    expect("mmap 2^47 bytes", SC6(NR_mmap, 0, 1UL << 47, RW, PRIV_ANON, -1, 0), -ENOMEM);
    expect("mmap fixed in the kernel half",
           SC6(NR_mmap, KERNEL, 4096, RW, PRIV_ANON | FIXED, -1, 0), -ENOMEM);
    expect("mmap fixed non-canonical",
           SC6(NR_mmap, NONCANON, 4096, RW, PRIV_ANON | FIXED, -1, 0), -ENOMEM);
    expect("mmap fixed unaligned", SC6(NR_mmap, 0x10001, 4096, RW, PRIV_ANON | FIXED, -1, 0),
           -EINVAL);
    expect("mmap file from a bad fd", SC6(NR_mmap, 0, 4096, 1, 2, 99, 0), -EBADF);
    expect("mmap file from a pipe", SC6(NR_mmap, 0, 4096, 1, 2, 0, 0), -ENODEV);

    long p = SC6(NR_mmap, 0, 8192, RW, PRIV_ANON, -1, 0);
    expect_ok("mmap 8 KiB", p);
    if (p < 0)
        return;
    ((char *)p)[0] = 1;
    expect("mmap fixed-noreplace over a mapping",
           SC6(NR_mmap, p, 4096, RW, PRIV_ANON | NOREPLACE, -1, 0), -EEXIST);
    expect("munmap unaligned", SC2(NR_munmap, p + 1, 4096), -EINVAL);
    expect("munmap length 0", SC2(NR_munmap, p, 0), -EINVAL);
    expect("munmap 2^64-1 bytes", SC2(NR_munmap, p, -1L), -EINVAL);
    expect("mprotect unaligned", SC3(NR_mprotect, p + 1, 4096, 1), -EINVAL);
    expect("mprotect kernel half", SC3(NR_mprotect, KERNEL, 4096, 1), -ENOMEM);
    expect("mprotect 2^64-1 bytes", SC3(NR_mprotect, p, -1L, 1), -ENOMEM);
    expect("mremap to length 0", SC4(NR_mremap, p, 4096, 0, 0), -EINVAL);
    expect("mremap unaligned", SC4(NR_mremap, p + 1, 4096, 8192, MAYMOVE), -EINVAL);
    expect("mremap bad flags", SC4(NR_mremap, p, 4096, 8192, 0xff), -EINVAL);
    expect("mremap kernel half", SC4(NR_mremap, KERNEL, 4096, 8192, MAYMOVE), -EFAULT);
    expect("madvise unaligned", SC3(NR_madvise, p + 1, 4096, 4), -EINVAL);
    long b = SC1(NR_brk, 0);
    expect("brk into the kernel half is refused", SC1(NR_brk, KERNEL), b);
    expect("brk to 2^64-1 is refused", SC1(NR_brk, -1L), b);
    expect("munmap 8 KiB", SC2(NR_munmap, p, 8192), 0);
    (void)umon;
}

static int run_checks(int umon) {
    check_pointers();
    check_lengths();
    check_memory(umon);
    say("checks: %d run, %d failed", checks, failed);
    return failed ? 1 : 0;
}

// Where umon answers differently from Linux: reported as umon bugs. Kept apart so the main
// checks stay green; each line says what Linux answers.
static int run_divergent(void) {
    expect("write kernel length 0", SC3(NR_write, 1, KERNEL, 0), -EFAULT);
    expect("munmap in the kernel half", SC2(NR_munmap, KERNEL, 4096), -EINVAL);
    expect("madvise DONTNEED in the kernel half", SC3(NR_madvise, KERNEL, 4096, 4), -ENOMEM);
    expect("futex wake kernel", SC3(NR_futex, KERNEL, 129, 1), -EFAULT);
    expect("futex wake unaligned", SC3(NR_futex, buf + 1, 129, 1), -EINVAL);
    struct iovec_raw iov[2] = {{(uint64_t)buf, 1UL << 62}, {(uint64_t)buf, 1UL << 62}};
    expect("writev two 2^62 lengths", SC3(NR_writev, 1, iov, 2), -EFAULT);
    static char path[300];
    path[0] = '/';
    memset(path + 1, 'a', 298);
    expect("open with a 298-byte name", SC2(NR_open, path, 0), -ENAMETOOLONG);
    // nfds is an unsigned int: the high bits are ignored.
    short pfd[4] = {1, 4, 0, 0};
    expect("poll 2^32+1 fds (nfds is 32 bits)", SC3(NR_poll, pfd, (1UL << 32) | 1, 0), 1);
    // Linux takes the syscall number from eax, sign-extended.
    expect("getpid with high bits in rax", SC0((1L << 32) | NR_getpid), SC0(NR_getpid));
    say("checks: %d run, %d failed", checks, failed);
    return failed ? 1 : 0;
}

// Fixed umon bugs: each call below made the monitor panic (see tests/hostile.rs). Prints
// "bug NAME: RESULT" with the call's result, which must be Linux's.
static int run_bug(const char *name) {
    long p = SC6(NR_mmap, 0, 4096, 3, 0x22, -1, 0);
    struct timespec_raw ts = {0, 1000};
    long r;
    if (strcmp(name, "mremap-old-len-max") == 0)
        r = SC4(NR_mremap, p, -1L, 4096, 0);
    else if (strcmp(name, "mremap-old-len-0") == 0)
        // Zero bytes of the program's own text (below the heap arena), to be moved.
        r = SC4(NR_mremap, (uintptr_t)text_function & ~4095UL, 0, 4095, 1);
    else if (strcmp(name, "mmap-noreplace-near-top") == 0)
        r = SC6(NR_mmap, -0x2000L, 0x1800, 3, 0x100022, -1, 0);
    else if (strcmp(name, "clock-gettime-alarm") == 0)
        r = SC2(NR_clock_gettime, 8, buf);
    else if (strcmp(name, "clock-getres-alarm") == 0) {
        memset(buf, 0x5a, 16);
        r = SC2(NR_clock_getres, 9, buf);
    }
    else if (strcmp(name, "clock-nanosleep-alarm") == 0)
        r = SC4(NR_clock_nanosleep, 8, 1, &ts, 0);
    else if (strcmp(name, "clock-tai") == 0)
        r = SC2(NR_clock_gettime, 11, buf);
    else
        return 2;
    // Alarm clocks work on a host with an RTC alarm and fail on one without (EINVAL, and
    // EOPNOTSUPP for clock_nanosleep): either answer is Linux's somewhere.
    if (strcmp(name, "clock-getres-alarm") == 0 && r == 0) {
        // A resolution, not whatever was on the monitor's stack.
        const struct timespec_raw *res_ts = (const struct timespec_raw *)buf;
        if (res_ts->sec > 1 || res_ts->nsec < 0 || res_ts->nsec >= 1000000000) {
            say("bug %s: 0 with resolution %#lx s %#lx ns", name, (unsigned long)res_ts->sec,
                (unsigned long)res_ts->nsec);
            return 0;
        }
    }
    if (strstr(name, "-alarm") && (r == 0 || r == -EINVAL || r == -EOPNOTSUPP))
        say("bug %s: 0, -EINVAL or -EOPNOTSUPP", name);
    else
        say("bug %s: %s", name, res(r));
    return 0;
}

// ---- exhaustion --------------------------------------------------------------------------

#define MAX_MAPS 300000
static struct {
    uint64_t at, len;
} maps[MAX_MAPS];

static int run_exhaust(int umon) {
    const long RW = 3, FLAGS = 0x22 | 0x4000; // MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
    uint64_t size = 1UL << 30, total = 0;
    int n = 0;
    while (size >= 4096) {
        long p = SC6(NR_mmap, 0, size, RW, FLAGS, -1, 0);
        if (p == -ENOMEM) {
            size /= 2;
            continue;
        }
        if (p < 0) {
            say("FAIL exhaust: mmap %lu bytes: %s", (unsigned long)size, res(p));
            return 1;
        }
        if (n == MAX_MAPS) {
            say("FAIL exhaust: %d mappings and still no ENOMEM", n);
            return 1;
        }
        if (n < 64) {
            ((volatile char *)p)[0] = 1;
            ((volatile char *)p)[size - 1] = 2;
        }
        maps[n].at = (uint64_t)p;
        maps[n].len = size;
        total += size;
        n++;
    }
    say("exhaust: mmap failed with ENOMEM down to 4 KiB");
    long b = SC1(NR_brk, 0);
    long grown = SC1(NR_brk, b + (64L << 20));
    if (grown != b && grown >= b + (64L << 20)) {
        say("FAIL exhaust: brk grew by 64 MiB while memory is full");
        return 1;
    }
    say("exhaust: brk cannot grow by 64 MiB either");
    if (umon)
        say("exhaust: umon mapped %lu MiB", (unsigned long)(total >> 20));
    for (int i = 0; i < n; i++) {
        long r = SC2(NR_munmap, maps[i].at, maps[i].len);
        if (r != 0) {
            say("FAIL exhaust: munmap: %s", res(r));
            return 1;
        }
    }
    say("exhaust: unmapped %s", n > 0 ? "everything" : "nothing?");
    long p = SC6(NR_mmap, 0, 16L << 20, RW, 0x22, -1, 0);
    if (p < 0) {
        say("FAIL exhaust: mmap after freeing: %s", res(p));
        return 1;
    }
    volatile unsigned char *q = (volatile unsigned char *)p;
    for (long i = 0; i < (16L << 20); i += 4096) {
        if (q[i] != 0) {
            say("FAIL exhaust: fresh memory not zero at +%ld", i);
            return 1;
        }
        q[i] = (unsigned char)i;
    }
    say("exhaust: 16 MiB mapped, zeroed and written after freeing");
    return 0;
}

// ---- random syscalls ---------------------------------------------------------------------

static uint64_t rng;

static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

// The memory random pointers point into: an anonymous mapping, which under umon is the top of
// the heap arena, so a call that writes past a pointer (getrandom of 2^63 bytes) can reach
// nothing but this mapping before it faults.
static char *scratch;
#define SCRATCH_BYTES (1UL << 20)
// Memory no call is ever pointed at: it must stay as it is.
static unsigned char untouched[4096];

static uint64_t random_arg(void) {
    static const uint64_t edges[] = {0, 1, -1UL, TWO63, KERNEL, KERNEL_TOP, NONCANON,
                                     NONCANON - 8, CORE, PAGE1, 4096, 4095, 1UL << 32,
                                     0x7ffff000, (uint64_t)rodata, (uint64_t)text_function};
    // Under `-v VOL:/data:rw -v RO:/ro -w /data` (tests/hostile.rs) these name real files,
    // symlinks out of the volumes and `..` games; otherwise they do not exist.
    static const char *const paths[] = {
        "/data/file", "/data/dir", "/data/dir/inner", "/data/new", "/data/dir/new",
        "/data/link-out", "/data/abs-out", "/data/../outside/secret", "/data/dir/up/..",
        "/data", "/ro/file", "/ro/new", "/ro/link-out", "/ro", "/", ".", "..", "file", "new",
        "dir/../file", ""};
    uint64_t r = next();
    switch (r % 9) {
    case 8: return (uint64_t)paths[(r >> 8) % (sizeof paths / sizeof paths[0])];
    case 0: return (r >> 8) % 16;
    case 1: return (uint64_t)scratch + (r >> 8) % (SCRATCH_BYTES - 4096);
    case 2: return edges[(r >> 8) % (sizeof edges / sizeof edges[0])];
    case 3: return next();
    case 4: return -((r >> 8) % 16 + 1);
    case 5: return 1UL << ((r >> 8) % 64);
    case 6: return (r >> 8) & 0xffffffff;
    default: return (uint64_t)scratch + SCRATCH_BYTES - (r >> 8) % 64;
    }
}

// The program's own image and (roughly) stack and heap (its TLS and malloc state): unmapping
// or replacing them kills it on Linux, so the random run leaves such calls out.
extern char __executable_start[], _end[];
static uintptr_t stack_near, heap_top;

static int hits_own(uint64_t at, uint64_t len) {
    uint64_t end = at + len < at ? -1UL : at + len;
    uintptr_t lo = (uintptr_t)__executable_start, hi = (uintptr_t)_end;
    return (at < hi && end > lo) ||
           (at < stack_near + (1UL << 20) && end > stack_near - (8UL << 20)) ||
           (at < heap_top + (1UL << 20) && end > heap_top - (16UL << 20));
}

// Calls the random run leaves out (see the header).
static int skipped(uint64_t nr, const uint64_t *a) {
    switch (nr) {
    case NR_exit: case NR_exit_group: case NR_futex: case NR_nanosleep:
    case NR_clock_nanosleep: case NR_poll: case NR_ppoll: case 23: /* select */
    case 270: /* pselect6 */ case NR_brk: case 34: /* pause */ case 130: /* rt_sigsuspend */
    case 15: /* rt_sigreturn */ case 62: /* kill */ case 200: /* tkill */ case 234: /* tgkill */
    case 129: /* rt_sigqueueinfo */ case 297: /* rt_tgsigqueueinfo */ case 424: /* pidfd_send_signal */
    case 128: /* rt_sigtimedwait */ case 37: /* alarm */ case 38: /* setitimer */
    case 222: /* timer_create */ case 223: /* timer_settime */
    /* fds whose reads wait for events that never come, on Linux too */
    case 253: /* inotify_init */ case 294: /* inotify_init1 */
    case 282: /* signalfd */ case 289: /* signalfd4 */
    case 22: /* pipe */ case 293: /* pipe2 */
    case 284: /* eventfd */ case 290: /* eventfd2 */ case 283: /* timerfd_create */
    /* epoll waits sleep until their timeout, which may be never */
    case 213: /* epoll_create */ case 291: /* epoll_create1 */
    /* would close the program's own output fd, which no random fd number reaches otherwise */
    case 436: /* close_range */
    /* new processes: a random run in each child too, exec of random files, waits for them
       (tests/processes_hostile.rs has their bad-argument cases) */
    case 56: /* clone */ case 57: /* fork */ case 58: /* vfork */ case 435: /* clone3 */
    case 59: /* execve */ case 322: /* execveat */ case 61: /* wait4 */ case 247: /* waitid */
        return 1;
    case NR_arch_prctl:
        return a[0] == 0x1002; // ARCH_SET_FS: the program's own TLS
    case NR_madvise:
        // MADV_DONTNEED (and _LOCKED) over the heap or stack would zero the program's own
        // TLS, malloc arena and frames, as on Linux.
        return (uint32_t)a[2] == 4 || (uint32_t)a[2] == 24;
    case NR_munmap:
        return hits_own(a[0], a[1]);
    case NR_mremap:
        return hits_own(a[0], a[1]) || ((a[3] & 2) && hits_own(a[4], a[2]));
    case NR_mmap:
        return (a[3] & 0x10) && hits_own(a[0], a[1]);
    case NR_read: case NR_readv: case NR_pread64: case 295: /* preadv */
        return a[0] == 0;
    }
    return 0;
}

static int run_random(long n, uint64_t seed) {
    rng = seed ? seed : 1;
    stack_near = (uintptr_t)&seed;
    heap_top = (uintptr_t)SC1(NR_brk, 0);
    long m = SC6(NR_mmap, 0, SCRATCH_BYTES, 3, 0x22, -1, 0);
    if (m < 0)
        return 3;
    scratch = (char *)m;
    for (size_t i = 0; i < sizeof untouched; i++)
        untouched[i] = (unsigned char)(i * 7 + 1);
    // Keep the output out of reach: random fds are small, 900 is not.
    if (SC2(NR_dup2, 1, 900) != 900)
        return 3;
    out_fd = 900;
    SC1(NR_close, 0);
    SC1(NR_close, 1);
    SC1(NR_close, 2);
    long done = 0, ok = 0;
    while (done < n) {
        uint64_t r = next();
        uint64_t nr = r % 16 == 0 ? random_arg() : (r >> 8) % 460;
        uint64_t a[6];
        for (int i = 0; i < 6; i++)
            a[i] = random_arg();
        if (skipped(nr, a))
            continue;
        long ret = sc((long)nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (ret < -4095) {
            say("FAIL random: syscall %lu(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx) returned %#lx",
                (unsigned long)nr, a[0], a[1], a[2], a[3], a[4], a[5], ret);
            return 1;
        }
        ok += ret >= 0;
        done++;
    }
    for (size_t i = 0; i < sizeof untouched; i++) {
        if (untouched[i] != (unsigned char)(i * 7 + 1)) {
            say("FAIL random: memory no call was given changed at +%zu", i);
            return 1;
        }
    }
    say("random: %ld calls, all results valid", done);
    (void)ok;
    return 0;
}

// ---- probes ------------------------------------------------------------------------------

static int run_probe(const char *kind, const char *arg) {
    uintptr_t a = strcmp(arg, "text") == 0     ? (uintptr_t)text_function
                  : strcmp(arg, "rodata") == 0 ? (uintptr_t)rodata
                                               : (uintptr_t)strtoull(arg, 0, 16);
    say("probe: %s %s", kind, arg);
    if (strcmp(kind, "read") == 0) {
        volatile char v = *(volatile char *)a;
        (void)v;
    } else if (strcmp(kind, "write") == 0) {
        *(volatile char *)a = 0;
    } else if (strcmp(kind, "exec") == 0) {
        ((void (*)(void))a)();
    } else if (strcmp(kind, "out") == 0) {
        // An I/O port write from CPL3 (the hypercall ports are 0xe0..0xe7). rax/rdi ask for
        // exit(0) in case the port reached the syscall path; rcx/r11 would return here.
        __asm__ volatile("lea 1f(%%rip), %%rcx\n\tpushfq\n\tpop %%r11\n\t"
                         "mov %0, %%edx\n\tout %%al, %%dx\n1:"
                         :
                         : "r"((unsigned)a), "a"(NR_exit_group), "D"(0)
                         : "rcx", "r11", "rdx", "memory");
    } else if (strcmp(kind, "in") == 0) {
        unsigned char v;
        __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"((unsigned short)a) : "memory");
        (void)v;
    } else if (strcmp(kind, "insn") == 0) {
        if (strcmp(arg, "hlt") == 0)
            __asm__ volatile("hlt");
        else if (strcmp(arg, "cli") == 0)
            __asm__ volatile("cli");
        else if (strcmp(arg, "rdmsr") == 0)
            __asm__ volatile("xor %%ecx, %%ecx\n\trdmsr" ::: "rax", "rcx", "rdx");
        else if (strcmp(arg, "sysret") == 0)
            __asm__ volatile("lea 1f(%%rip), %%rcx\n\tmov $0x202, %%r11\n\tsysretq\n1:" :::
                                 "rcx", "r11");
        else if (strcmp(arg, "kernel-ds") == 0)
            __asm__ volatile("mov $0x10, %%eax\n\tmov %%eax, %%ds" ::: "rax");
        else if (strcmp(arg, "int3") == 0)
            __asm__ volatile("int3");
        else if (strcmp(arg, "ud2") == 0)
            __asm__ volatile("ud2");
        else if (strcmp(arg, "tf-syscall") == 0)
            // Set the trap flag, then make a syscall (getpid): the single-step trap is taken
            // after the syscall instruction, in user mode, never inside the kernel.
            __asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\t"
                             "mov %0, %%eax\n\tsyscall\n\tnop"
                             :
                             : "i"(NR_getpid)
                             : "rax", "rcx", "r11", "memory");
        else
            return 2;
    } else {
        return 2;
    }
    say("probe: survived");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "checks";
    int umon = argc > 2 && strcmp(argv[argc - 1], "umon") == 0;
    if (strcmp(mode, "checks") == 0)
        return run_checks(umon);
    if (strcmp(mode, "divergent") == 0)
        return run_divergent();
    if (strcmp(mode, "exhaust") == 0)
        return run_exhaust(umon);
    if (strcmp(mode, "random") == 0 && argc >= 4)
        return run_random(atol(argv[2]), strtoull(argv[3], 0, 0));
    if (strcmp(mode, "bug") == 0 && argc == 3)
        return run_bug(argv[2]);
    if (strcmp(mode, "probe") == 0 && argc == 4)
        return run_probe(argv[2], argv[3]);
    say("usage: hostile checks|divergent|exhaust|random N SEED|bug NAME|probe KIND ARG");
    return 2;
}
