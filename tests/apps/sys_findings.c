// sys_findings: the answers of the syscalls umon serves where they once differed from Linux's
// (issue 10, items 10 and 11), through raw syscall(2) calls.
//
//   sys_findings checks DIR   one line "NAME: RESULT" per call (a number, or the errno's name),
//                             the same natively and under umon. DIR is a writable directory
//                             (a volume under umon). Expects stdin to be a pipe with data.
//   sys_findings term         blocks SIGTERM, sends it to itself, prints what is pending,
//                             unblocks it: killed by SIGTERM (143) there, as on Linux.
//   sys_findings sigkill      kill(self, SIGKILL): killed (137).
//   sys_findings poll-forever poll(NULL, 0, -1): never returns (prints if it does).
//   sys_findings stop         kill(self, SIGSTOP): stopped, never continues (prints if it does).
//   sys_findings fsize DIR    RLIMIT_FSIZE: writes cut at the limit, EFBIG past it with SIGXFSZ
//                             ignored, then killed by SIGXFSZ (153).
//   sys_findings umon-only    calls only umon can answer safely: kill(-1, ...) natively would
//                             signal every process of the user.
//   sys_findings hold FILE    takes a POSIX write lock and a flock on FILE, prints "held",
//                             keeps them until stdin ends.
//   sys_findings locked FILE  what another process sees while `hold` runs (one line each).
//   sys_findings lockw FILE | flockw FILE
//                             waits for the lock `hold` holds (F_SETLKW / flock LOCK_EX):
//                             never returns while it is held (prints if it does).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#define PG 4096L

static void show(const char *name, long r) {
    if (r < 0) {
        const char *e = strerrorname_np(errno);
        say("%s: %s", name, e ? e : "?");
    } else {
        say("%s: %ld", name, r);
    }
}

static void show_ok(const char *name, long r) {
    if (r < 0)
        show(name, r);
    else
        say("%s: ok", name);
}

static char *map(long len, int prot) {
    char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        say("mmap failed");
        exit(2);
    }
    return p;
}

/// A struct flock as the kernel takes it.
static long lk(int fd, int cmd, short type, long start, long len, struct flock *out) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    long r = syscall(SYS_fcntl, fd, cmd, &fl);
    if (out)
        *out = fl;
    return r;
}

static void memory(void) {
    char *p = map(4 * PG, PROT_READ | PROT_WRITE);
    show("mprotect page 1 PROT_NONE", syscall(SYS_mprotect, p + PG, PG, PROT_NONE));
    show("mprotect page 2 PROT_READ", syscall(SYS_mprotect, p + 2 * PG, PG, PROT_READ));
    char *none = p + PG, *ro = p + 2 * PG;
    show("read into PROT_NONE", syscall(SYS_read, 0, none, 1));
    show("read into read-only", syscall(SYS_read, 0, ro, 1));
    show("read into read-write then PROT_NONE", syscall(SYS_read, 0, none - 1, 2));
    show("write from PROT_NONE", syscall(SYS_write, 1, none, 1));
    show("write 0 bytes from PROT_NONE", syscall(SYS_write, 1, none, 0));
    struct iovec iov[3] = {{"wv1\n", 4}, {none, 1}, {"wv3\n", 4}};
    show("writev stops at a PROT_NONE iovec", syscall(SYS_writev, 1, iov, 3));
    iov[0].iov_base = none;
    iov[0].iov_len = 1;
    show("writev first iovec PROT_NONE", syscall(SYS_writev, 1, iov, 3));
    struct iovec riov[2] = {{ro, 1}, {p, 1}};
    show("readv into read-only", syscall(SYS_readv, 0, riov, 2));
    show("uname into PROT_NONE", syscall(SYS_uname, none));
    show("uname into read-only", syscall(SYS_uname, ro));
    show("uname into read-write", syscall(SYS_uname, p));
    show("getrandom into read-only", syscall(SYS_getrandom, ro, 8, 0));
    show("getrandom across into PROT_NONE", syscall(SYS_getrandom, none - 3, 8, 0));
    struct timespec ts = {0, 1000};
    show("clock_gettime into PROT_NONE", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, none));
    show("nanosleep from PROT_NONE", syscall(SYS_nanosleep, none, NULL));
    show("nanosleep from read-only", syscall(SYS_nanosleep, ro, NULL));

    // Memory that was mapped and is not any more.
    char *q = map(2 * PG, PROT_READ | PROT_WRITE);
    munmap(q, 2 * PG);
    show("read into unmapped", syscall(SYS_read, 0, q, 1));
    show("write from unmapped", syscall(SYS_write, 1, q, 1));
    show("uname into unmapped", syscall(SYS_uname, q));
    show("futex wait unmapped private", syscall(SYS_futex, q, FUTEX_WAIT_PRIVATE, 0, &ts, 0, 0));
    show("futex wait unmapped shared", syscall(SYS_futex, q, FUTEX_WAIT, 0, &ts, 0, 0));
    show("futex wait PROT_NONE", syscall(SYS_futex, none, FUTEX_WAIT, 0, &ts, 0, 0));
    // (A shared wait on a never-touched read-only page is EFAULT on Linux: the zero page has
    // no futex key. Private keys are plain addresses.)
    show("futex wait read-only, other value",
         syscall(SYS_futex, ro, FUTEX_WAIT_PRIVATE, 1, &ts, 0, 0));
    show("futex wake unmapped private", syscall(SYS_futex, q, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0));
    show("futex wake unmapped shared", syscall(SYS_futex, q, FUTEX_WAKE, 1, 0, 0, 0));
    show("futex wake PROT_NONE shared", syscall(SYS_futex, none, FUTEX_WAKE, 1, 0, 0, 0));
    int *w = (int *)p;
    *w = 7;
    int *w2 = (int *)(p + 64);
    show("futex cmp_requeue unmapped",
         syscall(SYS_futex, q, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, w2, 0));
    show("futex cmp_requeue PROT_NONE",
         syscall(SYS_futex, none, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, w2, 0));
    show("futex cmp_requeue PROT_NONE shared",
         syscall(SYS_futex, none, FUTEX_CMP_REQUEUE, 1, 1, w2, 0));
    show("futex cmp_requeue uaddr2 unmapped private",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, q, 7));
    show("futex cmp_requeue uaddr2 unmapped shared",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE, 1, 1, q, 7));
    show("futex cmp_requeue val3 differs",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, w2, 8));
    show("futex cmp_requeue nr_wake -1",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, -1, 1, w2, 7));
    show("futex cmp_requeue nr_requeue -1",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)-1L, w2, 7));
    show("futex cmp_requeue uaddr2 unaligned",
         syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, p + 66, 7));
    show("futex cmp_requeue", syscall(SYS_futex, w, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, w2, 7));
    show("futex requeue unmapped private",
         syscall(SYS_futex, q, FUTEX_REQUEUE_PRIVATE, 1, 1, w2, 0));
    *w2 = 5;
    show("futex wake_op add 3",
         syscall(SYS_futex, w, FUTEX_WAKE_OP_PRIVATE, 1, 1, w2,
                 FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_EQ, 0)));
    say("futex wake_op result: %d", *w2);
    show("futex wake_op read-only uaddr2",
         syscall(SYS_futex, w, FUTEX_WAKE_OP_PRIVATE, 1, 1, ro,
                 FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_EQ, 0)));
    show("futex wait_bitset bitset 0",
         syscall(SYS_futex, w, FUTEX_WAIT_BITSET_PRIVATE, 7, NULL, 0, 0));
    show("futex wake clock_realtime", syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1,
                                             0, 0, 0));
    show("futex wait clock_realtime, other value",
         syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 8, &ts, 0, 0));

    unsigned long mask[16];
    show("sched_getaffinity len 0", syscall(SYS_sched_getaffinity, 0, 0, mask));
    show("sched_getaffinity len 4", syscall(SYS_sched_getaffinity, 0, 4, mask));
    show("sched_getaffinity len 12", syscall(SYS_sched_getaffinity, 0, 12, mask));
    show("sched_getaffinity len 2^32", syscall(SYS_sched_getaffinity, 0, 1L << 32, mask));
    show("sched_getaffinity len 2^29", syscall(SYS_sched_getaffinity, 0, 1L << 29, mask));
    show_ok("sched_getaffinity len 2^32+128",
            syscall(SYS_sched_getaffinity, 0, (1L << 32) + 128, mask));
    show("sched_getaffinity into PROT_NONE", syscall(SYS_sched_getaffinity, 0, 128, none));

    show("mprotect unaligned", syscall(SYS_mprotect, p + 1, PG, PROT_READ));
    show("mprotect unknown prot", syscall(SYS_mprotect, p, PG, 0x10));
    show("mprotect growsdown|growsup", syscall(SYS_mprotect, p, PG, PROT_READ | 0x03000000));
    show("mprotect growsup", syscall(SYS_mprotect, p, PG, PROT_READ | PROT_GROWSUP));
    show("mprotect len 0, unknown prot", syscall(SYS_mprotect, p, 0, 0x10));
    show("mprotect len wraps", syscall(SYS_mprotect, p, -1L, PROT_READ));
    show("mprotect unmapped", syscall(SYS_mprotect, q, PG, PROT_READ));
    show("madvise unaligned", syscall(SYS_madvise, p + 1, PG, MADV_NORMAL));
    show("madvise advice 5", syscall(SYS_madvise, p, PG, 5));
    show("madvise advice 999", syscall(SYS_madvise, p, PG, 999));
    show("madvise len wraps", syscall(SYS_madvise, p, -1L, MADV_NORMAL));
    show("madvise len 0", syscall(SYS_madvise, p, 0, MADV_NORMAL));
    show("madvise unmapped", syscall(SYS_madvise, q, PG, MADV_NORMAL));
    show("madvise unmapped, unknown advice", syscall(SYS_madvise, q, PG, 7));
    p[3 * PG] = 'x';
    show("madvise DONTNEED", syscall(SYS_madvise, p + 3 * PG, PG, MADV_DONTNEED));
    say("after DONTNEED: %d", p[3 * PG]);
    show("madvise WILLNEED PROT_NONE", syscall(SYS_madvise, none, PG, MADV_WILLNEED));

    // A hole in the middle of three pages.
    char *h = map(3 * PG, PROT_READ | PROT_WRITE);
    munmap(h + PG, PG);
    show("madvise over a hole", syscall(SYS_madvise, h, 3 * PG, MADV_NORMAL));
    show("mprotect over a hole", syscall(SYS_mprotect, h, 3 * PG, PROT_NONE));
    show("uname into the page before the hole", syscall(SYS_uname, h));
    show("uname into the page after the hole", syscall(SYS_uname, h + 2 * PG));

    const int anon = MAP_ANONYMOUS;
    show("mmap no type", syscall(SYS_mmap, 0, PG, PROT_READ, anon, -1, 0));
    show("mmap shared_validate anonymous", syscall(SYS_mmap, 0, PG, PROT_READ, anon | 3, -1, 0));
    show("mmap type 0xf", syscall(SYS_mmap, 0, PG, PROT_READ, anon | 0xf, -1, 0));
    show("mmap len 0", syscall(SYS_mmap, 0, 0, PROT_READ, anon | MAP_PRIVATE, -1, 0));
    show("mmap unaligned offset", syscall(SYS_mmap, 0, PG, PROT_READ, anon | MAP_PRIVATE, -1, 1));
    show("mmap fixed unaligned",
         syscall(SYS_mmap, p + 1, PG, PROT_READ, anon | MAP_PRIVATE | MAP_FIXED, -1, 0));
    char *n = map(PG, PROT_NONE);
    show("read into a PROT_NONE mapping", syscall(SYS_read, 0, n, 1));
    show("mprotect it read-write", syscall(SYS_mprotect, n, PG, PROT_READ | PROT_WRITE));
    show("uname into it", syscall(SYS_uname, n));
    char *r = map(PG, PROT_READ);
    show("uname into a PROT_READ mapping", syscall(SYS_uname, r));
    show("write from a PROT_READ mapping", syscall(SYS_write, 1, r, 0));

    char *a = map(2 * PG, PROT_READ | PROT_WRITE);
    strcpy(a, "xyz");
    syscall(SYS_mprotect, a + PG, PG, PROT_READ);
    char *b = map(2 * PG, PROT_READ | PROT_WRITE);
    munmap(b, 2 * PG);
    long m = syscall(SYS_mremap, a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, b);
    show("mremap maymove|fixed to a free address", m == (long)b ? 0 : m);
    if (m == (long)b)
        say("moved contents: %s", b);
    show("uname into the moved read-only page", syscall(SYS_uname, b + PG));
    show("uname into the old address", syscall(SYS_uname, a));
    long k = syscall(SYS_mremap, b, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    show("mremap dontunmap", k < 0 ? k : 0);
    if (k >= 0) {
        int was = b[0];
        say("dontunmap: new %s, old %d", (char *)k, was);
        show("uname into the old range", syscall(SYS_uname, b));
    }
    show("mremap dontunmap resizing",
         syscall(SYS_mremap, b + PG, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0));
    show("mremap dontunmap without maymove",
         syscall(SYS_mremap, b + PG, PG, PG, MREMAP_DONTUNMAP, 0));
    show("mremap fixed without maymove",
         syscall(SYS_mremap, b, PG, PG, MREMAP_FIXED, a));
    show("mremap fixed onto itself",
         syscall(SYS_mremap, b, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, b + PG));
    show("mremap fixed unaligned",
         syscall(SYS_mremap, b, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 1));
}

static void signals(void) {
    pid_t me = getpid();
    show("tkill 0", syscall(SYS_tkill, 0, 0));
    show("tkill -1", syscall(SYS_tkill, -1, SIGUSR1));
    show("tgkill tid 0", syscall(SYS_tgkill, me, 0, 0));
    show("tgkill tgid 0", syscall(SYS_tgkill, 0, me, 0));
    show("tkill self 0", syscall(SYS_tkill, me, 0));
    show("kill self signal 65", syscall(SYS_kill, me, 65));
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } act = {SIG_IGN, 0, 0, 0}, old;
    show("rt_sigaction SIGKILL", syscall(SYS_rt_sigaction, SIGKILL, &act, NULL, 8));
    show("rt_sigaction SIGSTOP", syscall(SYS_rt_sigaction, SIGSTOP, &act, NULL, 8));
    show("rt_sigaction SIGKILL query", syscall(SYS_rt_sigaction, SIGKILL, NULL, &old, 8));
    unsigned long set = 1UL << (SIGUSR1 - 1), pending = 0;
    show("block SIGUSR1", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8));
    show("kill self SIGUSR1 (blocked)", syscall(SYS_kill, me, SIGUSR1));
    show("tgkill self SIGUSR1 (blocked)", syscall(SYS_tgkill, me, me, SIGUSR1));
    show("rt_sigpending", syscall(SYS_rt_sigpending, &pending, 8));
    say("pending: %#lx", pending);
    show("rt_sigpending size 9", syscall(SYS_rt_sigpending, &pending, 9));
    show("ignore SIGUSR1", syscall(SYS_rt_sigaction, SIGUSR1, &act, NULL, 8));
    syscall(SYS_rt_sigpending, &pending, 8);
    say("pending after SIG_IGN: %#lx", pending);
    show("unblock SIGUSR1", syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8));
    // Blocked, ignored by default: pending until unblocked, then nothing.
    set = 1UL << (SIGCHLD - 1);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8);
    show("kill self SIGCHLD (blocked)", syscall(SYS_kill, me, SIGCHLD));
    syscall(SYS_rt_sigpending, &pending, 8);
    say("pending: %#lx", pending);
    show("unblock SIGCHLD", syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8));
    syscall(SYS_rt_sigpending, &pending, 8);
    say("pending: %#lx", pending);
}

static void files(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sysf", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int ro = open(path, O_RDONLY);
    snprintf(path, sizeof path, "%s/sysf-append", dir);
    int ap = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    snprintf(path, sizeof path, "%s/sysf-wo", dir);
    int wo = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || ro < 0 || ap < 0 || wo < 0) {
        say("cannot open the files in %s", dir);
        exit(2);
    }
    show("write", syscall(SYS_write, f, "0123456789", 10));
    loff_t in = 0, out = 5;
    show("copy_file_range overlapping", syscall(SYS_copy_file_range, f, &in, f, &out, 10, 0));
    in = 0, out = 3;
    show("copy_file_range adjacent", syscall(SYS_copy_file_range, f, &in, f, &out, 3, 0));
    in = 0, out = 10;
    show("copy_file_range after", syscall(SYS_copy_file_range, f, &in, f, &out, 5, 0));
    in = 8, out = 4;
    show("copy_file_range overlapping at EOF", syscall(SYS_copy_file_range, f, &in, f, &out, 100, 0));
    in = 0;
    show("copy_file_range to O_APPEND", syscall(SYS_copy_file_range, f, &in, ap, NULL, 3, 0));
    show("copy_file_range to O_RDONLY", syscall(SYS_copy_file_range, f, &in, ro, NULL, 3, 0));
    loff_t off = 0;
    show("sendfile to O_APPEND", syscall(SYS_sendfile, ap, f, &off, 3));
    show("sendfile to O_RDONLY", syscall(SYS_sendfile, ro, f, &off, 3));
    show("sendfile from O_WRONLY", syscall(SYS_sendfile, f, wo, &off, 3));
    char *p = map(2 * PG, PROT_READ | PROT_WRITE);
    syscall(SYS_mprotect, p + PG, PG, PROT_NONE);
    show("sendfile offset in PROT_NONE", syscall(SYS_sendfile, wo, ro, p + PG, 3));
    show("sendfile", syscall(SYS_sendfile, wo, ro, &off, 3));
    say("sendfile offset: %ld", (long)off);
    show("pwrite past the maximum file size", syscall(SYS_pwrite64, f, "x", 1, 1L << 62));
    show("pwrite end past 2^63", syscall(SYS_pwrite64, f, "xy", 2, 0x7fffffffffffffffL));
    show("pwrite negative offset", syscall(SYS_pwrite64, f, "x", 1, -1L));
    show("pwrite from PROT_NONE", syscall(SYS_pwrite64, f, p + PG, 1, 0));
    char buf[8];
    show("pread past the maximum file size", syscall(SYS_pread64, f, buf, 1, 1L << 62));
    show("pread into PROT_NONE", syscall(SYS_pread64, f, p + PG, 1, 0));
    show("read into PROT_NONE (file)", syscall(SYS_read, ro, p + PG, 1));
    show("read across into PROT_NONE (file)", syscall(SYS_read, ro, p + PG - 2, 4));
    show("pread at EOF into PROT_NONE", syscall(SYS_pread64, f, p + PG, 1, 1000));
    lseek(ro, 0, SEEK_END);
    show("read at EOF into PROT_NONE", syscall(SYS_read, ro, p + PG, 1));
    lseek(f, 0, SEEK_SET);
    show("write across from PROT_NONE (file)", syscall(SYS_write, f, p + PG - 3, 6));

    struct flock fl;
    show("F_SETLK write lock", lk(f, F_SETLK, F_WRLCK, 0, 10, NULL));
    show("F_GETLK (own lock)", lk(f, F_GETLK, F_WRLCK, 0, 10, &fl));
    say("F_GETLK type: %d", fl.l_type);
    show("F_SETLK read lock on O_WRONLY", lk(wo, F_SETLK, F_RDLCK, 0, 1, NULL));
    show("F_SETLK write lock on O_RDONLY", lk(ro, F_SETLK, F_WRLCK, 0, 1, NULL));
    show("F_SETLK bad type", lk(f, F_SETLK, 9, 0, 1, NULL));
    show("F_OFD_SETLK (conflicts with own POSIX lock)", lk(f, F_OFD_SETLK, F_WRLCK, 0, 10, NULL));
    show("F_SETLK unlock", lk(f, F_SETLK, F_UNLCK, 0, 0, NULL));
    show("F_OFD_SETLK", lk(f, F_OFD_SETLK, F_WRLCK, 0, 10, NULL));
    show("F_OFD_GETLK (other open file)", lk(ro, F_OFD_GETLK, F_RDLCK, 0, 10, &fl));
    say("F_OFD_GETLK type %d pid %d", fl.l_type, fl.l_pid);
    show("F_GETLK (held by an OFD lock)", lk(ro, F_GETLK, F_RDLCK, 0, 10, &fl));
    say("F_GETLK type %d pid %d", fl.l_type, fl.l_pid);
    struct flock pidset = {.l_type = F_RDLCK, .l_pid = 1};
    show("F_OFD_SETLK with l_pid", syscall(SYS_fcntl, ro, F_OFD_SETLK, &pidset));
    show("F_SETLK lock in PROT_NONE", syscall(SYS_fcntl, f, F_SETLK, p + PG));
    show("flock LOCK_EX", syscall(SYS_flock, f, LOCK_EX));
    show("flock LOCK_EX|LOCK_NB other open file", syscall(SYS_flock, ro, LOCK_EX | LOCK_NB));
    show("flock bad operation", syscall(SYS_flock, f, 3));
    show("flock bad fd", syscall(SYS_flock, 999, LOCK_EX));
    show("flock LOCK_UN", syscall(SYS_flock, f, LOCK_UN));
    show("flock LOCK_SH other open file", syscall(SYS_flock, ro, LOCK_SH | LOCK_NB));
    close(f);
    close(ro);
    close(ap);
    close(wo);
}

static void limits(void) {
    show("poll NULL 0 10ms", syscall(SYS_poll, NULL, 0, 10));
    struct rlimit rl = {42, 42};
    show("setrlimit NOFILE 42", syscall(SYS_setrlimit, RLIMIT_NOFILE, &rl));
    struct rlimit got = {0, 0};
    show("getrlimit NOFILE", syscall(SYS_getrlimit, RLIMIT_NOFILE, &got));
    say("NOFILE: %lu %lu", (unsigned long)got.rlim_cur, (unsigned long)got.rlim_max);
    struct rlimit more = {43, 42};
    show("setrlimit NOFILE cur above max", syscall(SYS_setrlimit, RLIMIT_NOFILE, &more));
    long last = -1, r;
    while ((r = syscall(SYS_dup, 0)) >= 0)
        last = r;
    show("dup until it fails", r);
    say("last fd: %ld", last);
    show("F_DUPFD 42", syscall(SYS_fcntl, 0, F_DUPFD, 42));
    show("dup2 to 42", syscall(SYS_dup2, 0, 42));
    for (int fd = 3; fd <= last; fd++)
        close(fd);
    struct rlimit zero = {0, 42};
    show("setrlimit NOFILE 0", syscall(SYS_setrlimit, RLIMIT_NOFILE, &zero));
    show("dup with NOFILE 0", syscall(SYS_dup, 0));
    show("F_DUPFD 0 with NOFILE 0", syscall(SYS_fcntl, 0, F_DUPFD, 0));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "checks") == 0 && argc > 2) {
        memory();
        signals();
        files(argv[2]);
        limits();
        return 0;
    }
    if (strcmp(mode, "term") == 0) {
        unsigned long set = 1UL << (SIGTERM - 1), pending = 0;
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8);
        show("kill self SIGTERM (blocked)", syscall(SYS_kill, getpid(), SIGTERM));
        syscall(SYS_rt_sigpending, &pending, 8);
        say("pending: %#lx", pending);
        syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
        say("survived SIGTERM");
        return 0;
    }
    if (strcmp(mode, "sigkill") == 0) {
        unsigned long set = ~0UL;
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8);
        syscall(SYS_kill, getpid(), SIGKILL);
        say("survived SIGKILL");
        return 0;
    }
    if (strcmp(mode, "poll-forever") == 0) {
        show("poll returned", syscall(SYS_poll, NULL, 0, -1));
        return 0;
    }
    if (strcmp(mode, "stop") == 0) {
        show("continued after SIGSTOP", syscall(SYS_kill, getpid(), SIGSTOP));
        return 0;
    }
    if (argc > 2 && strcmp(mode, "fsize") == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fsize", argv[2]);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        static char buf[300];
        struct rlimit rl = {100, RLIM_INFINITY};
        show("setrlimit FSIZE 100", syscall(SYS_setrlimit, RLIMIT_FSIZE, &rl));
        show("write 150 bytes", syscall(SYS_write, fd, buf, 150));
        show("write 0 bytes at the limit", syscall(SYS_write, fd, buf, 0));
        show("pwrite 10 bytes at 95", syscall(SYS_pwrite64, fd, buf, 10, 95));
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            unsigned long mask;
        } act = {SIG_IGN, 0, 0, 0};
        syscall(SYS_rt_sigaction, SIGXFSZ, &act, NULL, 8);
        show("write at the limit, SIGXFSZ ignored", syscall(SYS_write, fd, buf, 1));
        show("pwrite past the limit, SIGXFSZ ignored", syscall(SYS_pwrite64, fd, buf, 1, 200));
        act.handler = SIG_DFL;
        syscall(SYS_rt_sigaction, SIGXFSZ, &act, NULL, 8);
        unsigned long set = 1UL << (SIGXFSZ - 1), pending = 0;
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8);
        show("write at the limit, SIGXFSZ blocked", syscall(SYS_write, fd, buf, 1));
        syscall(SYS_rt_sigpending, &pending, 8);
        say("pending: %#lx", pending);
        syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
        say("survived SIGXFSZ");
        return 0;
    }
    if (strcmp(mode, "umon-only") == 0) {
        show("kill -1 0", syscall(SYS_kill, -1, 0));
        show("kill -1 SIGTERM", syscall(SYS_kill, -1, SIGTERM));
        show("kill -1 signal 65", syscall(SYS_kill, -1, 65));
        show("kill -7 0", syscall(SYS_kill, -7, 0));
        show("kill 0 0", syscall(SYS_kill, 0, 0));
        show("kill 2 0", syscall(SYS_kill, 2, 0));
        return 0;
    }
    if (argc > 2 && strcmp(mode, "hold") == 0) {
        int fd = open(argv[2], O_RDWR | O_CREAT, 0644);
        if (fd < 0 || lk(fd, F_SETLK, F_WRLCK, 0, 0, NULL) < 0 || flock(fd, LOCK_EX) < 0) {
            say("cannot lock %s", argv[2]);
            return 2;
        }
        say("held");
        char c;
        while (read(0, &c, 1) > 0) {
        }
        return 0;
    }
    if (argc > 2 && strcmp(mode, "locked") == 0) {
        int fd = open(argv[2], O_RDWR);
        struct flock fl;
        show("F_GETLK", lk(fd, F_GETLK, F_RDLCK, 0, 0, &fl));
        say("F_GETLK type %d pid %s", fl.l_type, fl.l_pid == 0 ? "0" : "another");
        show("F_SETLK", lk(fd, F_SETLK, F_RDLCK, 0, 0, NULL));
        show("F_OFD_SETLK", lk(fd, F_OFD_SETLK, F_RDLCK, 0, 0, NULL));
        show("flock LOCK_SH|LOCK_NB", syscall(SYS_flock, fd, LOCK_SH | LOCK_NB));
        return 0;
    }
    if (argc > 2 && strcmp(mode, "lockw") == 0) {
        int fd = open(argv[2], O_RDWR);
        show("F_SETLKW returned", lk(fd, F_SETLKW, F_WRLCK, 0, 0, NULL));
        return 0;
    }
    if (argc > 2 && strcmp(mode, "flockw") == 0) {
        int fd = open(argv[2], O_RDWR);
        show("flock LOCK_EX returned", syscall(SYS_flock, fd, LOCK_EX));
        return 0;
    }
    say("usage: sys_findings checks DIR | term | sigkill | poll-forever | stop | umon-only | "
        "hold|locked|lockw|flockw FILE");
    return 2;
}
