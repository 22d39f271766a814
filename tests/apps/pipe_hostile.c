/* Hostile arguments to the pipe calls, compared with Linux line by line (tests/pipes_hostile.rs).
 * Modes:
 *   fdarray  pipe/pipe2 with bad fd-array pointers (EFAULT, no fd left open), EMFILE
 *   flags    pipe2 with every single flag bit
 *   rw       read/write/readv/writev/ioctl on pipes with bad buffers, counts and iovecs
 *   sizes    F_SETPIPE_SZ with huge and odd sizes that every caller gets EINVAL/EBADF for
 *   perm     F_SETPIPE_SZ past /proc/sys/fs/pipe-max-size (run unprivileged natively)
 *   splice   splice/tee with bad fds, offsets, lengths and flags
 *   vmsplice vmsplice with bad iovecs, counts and flags
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "say.h"

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif

static long sys(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}
#define S1(nr, a) sys(nr, (long)(a), 0, 0, 0, 0, 0)
#define S2(nr, a, b) sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(nr, a, b, c) sys(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(nr, a, b, c, d) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S6(nr, a, b, c, d, e, f) \
    sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#define KADDR 0xffff800000000000UL
#define NONCANON 0x0000900000000000UL

static int next_fd(void) {
    int fd = (int)S1(SYS_dup, 0);
    S1(SYS_close, fd);
    return fd;
}

static void mkpipe(int p[2], int flags) {
    if (S2(SYS_pipe2, p, flags) < 0) {
        say("FAIL pipe2");
        exit(1);
    }
}

/* One mapped page followed by an unmapped one; a read-only page. */
static char *edge, *ro;

static void maps(void) {
    edge = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(edge + 4096, 4096);
    ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void mode_fdarray(void) {
    int before = next_fd();
    say("pipe NULL=%ld", S1(SYS_pipe, 0));
    say("pipe2 NULL=%ld", S2(SYS_pipe2, 0, 0));
    say("pipe 1=%ld", S1(SYS_pipe, 1));
    say("pipe kernel=%ld", S1(SYS_pipe, KADDR));
    say("pipe noncanonical=%ld", S1(SYS_pipe, NONCANON));
    say("pipe read-only=%ld", S1(SYS_pipe, ro));
    say("pipe across the edge=%ld", S1(SYS_pipe, edge + 4092));
    say("pipe2 NULL bad flags=%ld", S2(SYS_pipe2, 0, 0x1));
    say("pipe -1=%ld", S1(SYS_pipe, -1L));
    say("no fd left open=%d", next_fd() == before);
    int *fds = (int *)(edge + 4088);
    say("pipe at the edge=%ld", S1(SYS_pipe, fds));
    say("numbers=%d", fds[0] == before && fds[1] == before + 1);
    S1(SYS_close, fds[0]);
    S1(SYS_close, fds[1]);
    struct rlimit rl = {(rlim_t)before + 1, 1024};
    setrlimit(RLIMIT_NOFILE, &rl);
    int p[2] = {-7, -7};
    say("one fd free=%ld p=%d,%d", S1(SYS_pipe, p), p[0], p[1]);
    say("still free=%d", next_fd() == before);
    rl.rlim_cur = (rlim_t)before;
    setrlimit(RLIMIT_NOFILE, &rl);
    say("none free=%ld", S1(SYS_pipe, p));
}

static void mode_flags(void) {
    for (int bit = 0; bit < 32; bit++) {
        if (bit == 7) /* O_NOTIFICATION_PIPE: depends on CONFIG_WATCH_QUEUE */
            continue;
        int p[2];
        long r = S2(SYS_pipe2, p, 1UL << bit);
        say("bit %d=%ld", bit, r);
        if (r == 0) {
            S1(SYS_close, p[0]);
            S1(SYS_close, p[1]);
        }
    }
    int p[2];
    say("all good flags=%ld", S2(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK | O_DIRECT));
    say("high bits=%ld", S2(SYS_pipe2, p, 0xffffffff00000000UL));
}

static void mode_rw(void) {
    int p[2], n = 0;
    char buf[16];
    mkpipe(p, O_NONBLOCK);
    S3(SYS_write, p[1], "data", 4);
    say("read NULL=%ld", S3(SYS_read, p[0], 0, 10));
    say("read kernel=%ld", S3(SYS_read, p[0], KADDR, 10));
    say("read kernel 0=%ld", S3(SYS_read, p[0], KADDR, 0));
    say("read NULL 0=%ld", S3(SYS_read, p[0], 0, 0));
    say("read read-only=%ld", S3(SYS_read, p[0], ro, 10));
    say("read huge len=%ld", S3(SYS_read, p[0], buf, -1L));
    S3(SYS_ioctl, p[0], FIONREAD, &n);
    say("still there=%d", n);
    say("write NULL=%ld", S3(SYS_write, p[1], 0, 10));
    say("write kernel=%ld", S3(SYS_write, p[1], KADDR, 1));
    say("write NULL 0=%ld", S3(SYS_write, p[1], 0, 0));
    say("write huge len=%ld", S3(SYS_write, p[1], buf, -1L));
    say("write noncanonical=%ld", S3(SYS_write, p[1], NONCANON, 8));
    struct iovec bad[2] = {{buf, 2}, {0, 5}};
    say("readv bad iov=%ld", S3(SYS_readv, p[0], bad, 2));
    say("writev bad iov=%ld", S3(SYS_writev, p[1], bad, 2));
    say("readv NULL array=%ld", S3(SYS_readv, p[0], 0, 2));
    say("readv 1025=%ld", S3(SYS_readv, p[0], buf, 1025));
    say("readv -1=%ld", S3(SYS_readv, p[0], buf, -1));
    struct iovec neg[1] = {{buf, (size_t)-1}};
    say("writev negative=%ld", S3(SYS_writev, p[1], neg, 1));
    say("readv negative=%ld", S3(SYS_readv, p[0], neg, 1));
    S3(SYS_ioctl, p[0], FIONREAD, &n);
    say("still there=%d", n);
    say("fionread NULL=%ld", S3(SYS_ioctl, p[0], FIONREAD, 0));
    say("fionread read-only=%ld", S3(SYS_ioctl, p[0], FIONREAD, ro));
    say("fionread kernel=%ld", S3(SYS_ioctl, p[0], FIONREAD, KADDR));
    long r = S3(SYS_read, p[0], buf, sizeof buf);
    say("read=%ld '%.*s'", r, (int)(r > 0 ? r : 0), buf);
    say("fstat NULL=%ld", S2(SYS_fstat, p[0], 0));
    say("closed fd=%ld", S3(SYS_read, 555, buf, 1));
    say("read write end, bad buffer=%ld", S3(SYS_read, p[1], 0, 1));
    say("write read end, bad buffer=%ld", S3(SYS_write, p[0], 0, 1));
    say("readv write end, bad iovecs=%ld", S3(SYS_readv, p[1], 0, 1));
    say("writev read end, 5000 iovecs=%ld", S3(SYS_writev, p[0], buf, 5000));
}

static void mode_sizes(void) {
    int p[2];
    mkpipe(p, 0);
    unsigned long sizes[] = {(1UL << 31) + 1, 0xffffffffUL, 0xfffffffffffff000UL, (1UL << 63)};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++)
        say("set %#lx=%ld", sizes[i], S3(SYS_fcntl, p[1], F_SETPIPE_SZ, sizes[i]));
    say("get=%ld", S2(SYS_fcntl, p[0], F_GETPIPE_SZ));
    say("closed fd=%ld", S3(SYS_fcntl, 555, F_SETPIPE_SZ, 4096));
    say("stdin-less fd=%ld", S3(SYS_fcntl, -1, F_GETPIPE_SZ, 0));
}

static void mode_perm(void) {
    int p[2];
    mkpipe(p, 0);
    unsigned long sizes[] = {(1UL << 20) + 1, 1UL << 21, 1UL << 31, 65536, 1UL << 20};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        long r = S3(SYS_fcntl, p[1], F_SETPIPE_SZ, sizes[i]);
        say("set %#lx=%ld get=%ld", sizes[i], r, S2(SYS_fcntl, p[0], F_GETPIPE_SZ));
    }
    say("at max, above=%ld", S3(SYS_fcntl, p[1], F_SETPIPE_SZ, 1UL << 21));
}

static void mode_splice(void) {
    int p[2], q[2];
    mkpipe(p, 0);
    mkpipe(q, 0);
    int fd = (int)S2(SYS_memfd_create, "f", 0);
    S3(SYS_write, fd, "0123456789abcdef", 16);
    long long off = 0;
    say("bad in fd=%ld", S6(SYS_splice, -1, 0, p[1], 0, 1, 0));
    say("bad out fd=%ld", S6(SYS_splice, fd, &off, 1000, 0, 1, 0));
    say("off_in NULL-ish=%ld", S6(SYS_splice, fd, 1, p[1], 0, 1, 0));
    say("off_in kernel=%ld", S6(SYS_splice, fd, KADDR, p[1], 0, 1, 0));
    say("off on pipe bad ptr=%ld", S6(SYS_splice, fd, &off, p[1], KADDR, 1, 0));
    off = LLONG_MAX;
    say("offset LLONG_MAX=%ld", S6(SYS_splice, fd, &off, p[1], 0, 1, 0));
    off = LLONG_MAX - 2;
    say("offset near max=%ld", S6(SYS_splice, fd, &off, p[1], 0, 100, 0));
    off = 3;
    say("huge len=%ld off=%lld", S6(SYS_splice, fd, &off, p[1], 0, -1L, 0), off);
    off = 0;
    long long *rooff = (long long *)ro;
    say("off_in read-only=%ld", S6(SYS_splice, fd, rooff, p[1], 0, 2, 0));
    int n = 0;
    S3(SYS_ioctl, p[0], FIONREAD, &n);
    say("in pipe=%d", n);
    say("all flags=%ld", S6(SYS_splice, p[0], 0, q[1], 0, 1, 0xf));
    say("flag 0x10=%ld", S6(SYS_splice, p[0], 0, q[1], 0, 1, 0x10));
    say("flags high=%ld", S6(SYS_splice, p[0], 0, q[1], 0, 1, 0xffffffff00000000UL));
    say("to closed=%ld", S6(SYS_splice, p[0], 0, 777, 0, 1, 0));
    say("pipe to itself=%ld", S6(SYS_splice, p[0], 0, p[1], 0, 1, 0));
    say("to stdin=%d", S6(SYS_splice, p[0], 0, 0, 0, 1, SPLICE_F_NONBLOCK) < 0);
    say("tee bad fds=%ld", S4(SYS_tee, -1, -1, 1, 0));
    S3(SYS_write, p[1], "more", 4);
    say("tee huge=%ld", S4(SYS_tee, p[0], q[1], -1L, SPLICE_F_NONBLOCK));
    say("tee flags=%ld", S4(SYS_tee, p[0], q[1], 1, 0x10));
    say("tee to read end=%ld", S4(SYS_tee, p[0], q[0], 1, 0));
}

static void mode_vmsplice(void) {
    int p[2];
    char buf[16];
    mkpipe(p, O_NONBLOCK);
    struct iovec ok[1] = {{"abc", 3}};
    say("NULL iov=%ld", S4(SYS_vmsplice, p[1], 0, 1, 0));
    say("kernel iov=%ld", S4(SYS_vmsplice, p[1], KADDR, 1, 0));
    say("1025 segs=%ld", S4(SYS_vmsplice, p[1], ok, 1025, 0));
    say("huge segs=%ld", S4(SYS_vmsplice, p[1], ok, 1UL << 62, 0));
    struct iovec nul[1] = {{0, 3}};
    say("NULL base=%ld", S4(SYS_vmsplice, p[1], nul, 1, 0));
    struct iovec kb[1] = {{(void *)KADDR, 3}};
    say("kernel base=%ld", S4(SYS_vmsplice, p[1], kb, 1, 0));
    struct iovec neg[1] = {{buf, (size_t)-1}};
    say("negative len=%ld", S4(SYS_vmsplice, p[1], neg, 1, 0));
    say("bad flags=%ld", S4(SYS_vmsplice, p[1], ok, 1, 0x10));
    say("bad fd=%ld", S4(SYS_vmsplice, 999, ok, 1, 0));
    say("ok=%ld", S4(SYS_vmsplice, p[1], ok, 1, 0));
    struct iovec into_ro[1] = {{ro, 3}};
    say("into read-only=%ld", S4(SYS_vmsplice, p[0], into_ro, 1, 0));
    struct iovec into_null[1] = {{0, 3}};
    say("into NULL=%ld", S4(SYS_vmsplice, p[0], into_null, 1, 0));
    struct iovec r[1] = {{buf, sizeof buf}};
    long n = S4(SYS_vmsplice, p[0], r, 1, 0);
    say("read back=%ld '%.*s'", n, (int)(n > 0 ? n : 0), buf);
    int fd = (int)S2(SYS_memfd_create, "f", 0);
    say("memfd=%ld", S4(SYS_vmsplice, fd, ok, 1, 0));
    int path = (int)S2(SYS_open, "/", O_PATH);
    say("O_PATH=%ld", S4(SYS_vmsplice, path, ok, 1, 0));
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    maps();
    if (!strcmp(m, "fdarray"))
        mode_fdarray();
    else if (!strcmp(m, "flags"))
        mode_flags();
    else if (!strcmp(m, "rw"))
        mode_rw();
    else if (!strcmp(m, "sizes"))
        mode_sizes();
    else if (!strcmp(m, "perm"))
        mode_perm();
    else if (!strcmp(m, "splice"))
        mode_splice();
    else if (!strcmp(m, "vmsplice"))
        mode_vmsplice();
    else {
        say("FAIL unknown mode '%s'", m);
        return 2;
    }
    return 0;
}
