/* Pipes within one process, compared with Linux line by line (tests/pipes.rs). Modes:
 *   stream    producer and consumer threads, 64 KiB writes, 16 MiB, checksums on both sides
 *   eof       EOF once every write end is closed (dup'ed ends too), reads of what is left
 *   epipe     SIGPIPE ignored, then handled: the write fails with EPIPE (the handler runs)
 *   sigpipe   SIGPIPE default: the write kills the process (141)
 *   nonblock  O_NONBLOCK: EAGAIN both ways, F_GETFL/F_SETFL, FIONBIO
 *   capacity  fill until EAGAIN (1-byte and 4 KiB writes), F_GETPIPE_SZ/F_SETPIPE_SZ rounding,
 *             EBUSY when shrinking below the content, EINVAL, FIONREAD
 *   packet    O_DIRECT: one packet per write (and per writev), a short read drops the rest
 *   poll      readiness of both ends: empty, data, full, no writer (POLLHUP), no reader
 *   splice    splice file <-> pipe <-> pipe, tee, vmsplice both ways, their errors
 *   intr      a blocked pipe read cut short by a handled signal (EINTR), restarted with
 *             SA_RESTART; a blocked write too
 *   misc      fstat, pipe2 flags and FD_CLOEXEC, dup/dup2/dup3, lseek/pread ESPIPE
 *   select    select/pselect6 on pipe ends: readiness, timeouts, EBADF, EINVAL, sigmask
 *   block     a read nobody will ever satisfy (ended by --timeout)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif

/* Raw calls: the same errno convention in glibc and musl, no wrapper retries. */
static long sys(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}
#define S0(nr) sys(nr, 0, 0, 0, 0, 0, 0)
#define S1(nr, a) sys(nr, (long)(a), 0, 0, 0, 0, 0)
#define S2(nr, a, b) sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(nr, a, b, c) sys(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(nr, a, b, c, d) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S6(nr, a, b, c, d, e, f) \
    sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static void mkpipe(int p[2], int flags) {
    long r = S2(SYS_pipe2, p, flags);
    if (r < 0) {
        say("FAIL pipe2: %ld", r);
        exit(1);
    }
}

static uint64_t mix(uint64_t h, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ---- stream ---- */
#define CHUNK 65536
#define TOTAL (16u << 20)
static int sp[2];
static uint64_t produced;

static void *producer(void *arg) {
    (void)arg;
    unsigned char *buf = malloc(CHUNK);
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned off = 0; off < TOTAL; off += CHUNK) {
        for (int i = 0; i < CHUNK; i++)
            buf[i] = (unsigned char)((off + i) * 7 + (off >> 16));
        h = mix(h, buf, CHUNK);
        long w = S3(SYS_write, sp[1], buf, CHUNK);
        if (w != CHUNK) {
            say("FAIL write %ld", w);
            exit(1);
        }
    }
    produced = h;
    S1(SYS_close, sp[1]);
    free(buf);
    return 0;
}

static void mode_stream(void) {
    mkpipe(sp, 0);
    pthread_t t;
    pthread_create(&t, 0, producer, 0);
    unsigned char *buf = malloc(CHUNK);
    uint64_t h = 0xcbf29ce484222325ull, total = 0;
    for (;;) {
        long n = S3(SYS_read, sp[0], buf, CHUNK);
        if (n < 0) {
            say("FAIL read %ld", n);
            exit(1);
        }
        if (n == 0)
            break;
        h = mix(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    pthread_join(t, 0);
    say("stream total=%llu same=%d checksum=%016llx", (unsigned long long)total,
        h == produced, (unsigned long long)h);
}

/* ---- eof ---- */
static void mode_eof(void) {
    int p[2];
    char buf[64];
    mkpipe(p, 0);
    int d = (int)S1(SYS_dup, p[1]);
    say("write=%ld", S3(SYS_write, p[1], "hello", 5));
    say("close original=%ld", S1(SYS_close, p[1]));
    say("write through dup=%ld", S3(SYS_write, d, "world", 5));
    say("read=%ld", S3(SYS_read, p[0], buf, 3));
    say("close dup=%ld", S1(SYS_close, d));
    long n = S3(SYS_read, p[0], buf, sizeof buf);
    say("read rest=%ld '%.*s'", n, (int)(n > 0 ? n : 0), buf);
    say("read at eof=%ld", S3(SYS_read, p[0], buf, sizeof buf));
    struct iovec v[2] = {{buf, 4}, {buf + 4, 4}};
    say("readv at eof=%ld", S3(SYS_readv, p[0], v, 2));
    say("read 0 bytes=%ld", S3(SYS_read, p[0], buf, 0));
    say("write on read end=%ld", S3(SYS_write, p[0], "x", 1));
    mkpipe(p, 0);
    say("read on write end=%ld", S3(SYS_read, p[1], buf, 1));
    struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
    say("writev=%ld", S3(SYS_writev, p[1], w, 3));
    struct iovec r[3] = {{buf, 1}, {buf + 1, 2}, {buf + 3, 10}};
    n = S3(SYS_readv, p[0], r, 3);
    say("readv=%ld '%.*s'", n, (int)(n > 0 ? n : 0), buf);
}

/* ---- epipe / sigpipe ---- */
static volatile sig_atomic_t got;
static void on_sig(int s) { got = s; }

static void mode_epipe(void) {
    int p[2];
    mkpipe(p, 0);
    S1(SYS_close, p[0]);
    signal(SIGPIPE, SIG_IGN);
    say("ignored: write=%ld", S3(SYS_write, p[1], "x", 1));
    struct iovec v[2] = {{"ab", 2}, {"cd", 2}};
    say("ignored: writev=%ld", S3(SYS_writev, p[1], v, 2));
    say("ignored: write 0=%ld", S3(SYS_write, p[1], "x", 0));
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGPIPE, &sa, 0);
    long r = S3(SYS_write, p[1], "x", 1);
    say("handled: write=%ld handler=%d", r, (int)got);
    got = 0;
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGPIPE);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_BLOCK, &m, 0);
    r = S3(SYS_write, p[1], "x", 1);
    sigset_t pend;
    sigpending(&pend);
    say("blocked default: write=%ld pending=%d", r, sigismember(&pend, SIGPIPE));
    sigaction(SIGPIPE, &sa, 0);
    sigprocmask(SIG_UNBLOCK, &m, 0);
    say("unblocked: handler=%d", (int)got);
}

static void mode_sigpipe(void) {
    int p[2];
    mkpipe(p, 0);
    S1(SYS_close, p[0]);
    say("before");
    long r = S3(SYS_write, p[1], "x", 1);
    say("FAIL still alive: %ld", r);
}

/* ---- nonblock ---- */
static void mode_nonblock(void) {
    int p[2];
    char buf[8];
    mkpipe(p, O_NONBLOCK);
    long fr = S2(SYS_fcntl, p[0], F_GETFL);
    say("getfl read=%lo write=%lo", fr, S2(SYS_fcntl, p[1], F_GETFL));
    say("read empty=%ld", S3(SYS_read, p[0], buf, sizeof buf));
    say("setfl=%ld", S3(SYS_fcntl, p[0], F_SETFL, 0));
    say("getfl read=%lo", S2(SYS_fcntl, p[0], F_GETFL));
    int on = 1;
    say("fionbio=%ld", S3(SYS_ioctl, p[0], FIONBIO, &on));
    say("getfl read=%lo", S2(SYS_fcntl, p[0], F_GETFL));
    say("read empty=%ld", S3(SYS_read, p[0], buf, sizeof buf));
    static char big[1 << 20];
    long w = S3(SYS_write, p[1], big, sizeof big);
    say("big write=%ld", w);
    say("write full=%ld", S3(SYS_write, p[1], big, 1));
    S1(SYS_close, p[1]);
    long total = 0, n;
    while ((n = S3(SYS_read, p[0], big, sizeof big)) > 0)
        total += n;
    say("drained=%ld then=%ld", total, n);
}

/* ---- capacity ---- */
static long fill(int fd, long each) {
    static char b[4096];
    long total = 0, w;
    while ((w = S3(SYS_write, fd, b, each)) > 0)
        total += w;
    if (w != -EAGAIN)
        say("FAIL fill ended with %ld", w);
    return total;
}

static void drain(int fd) {
    static char b[65536];
    while (S3(SYS_read, fd, b, sizeof b) > 0) {
    }
}

static void mode_capacity(void) {
    int p[2];
    mkpipe(p, O_NONBLOCK);
    say("size=%ld", S2(SYS_fcntl, p[1], F_GETPIPE_SZ));
    say("size read end=%ld", S2(SYS_fcntl, p[0], F_GETPIPE_SZ));
    say("fill 1-byte=%ld", fill(p[1], 1));
    int n = -1;
    long fi = S3(SYS_ioctl, p[0], FIONREAD, &n);
    say("fionread=%ld n=%d", fi, n);
    say("shrink below content=%ld", S3(SYS_fcntl, p[1], F_SETPIPE_SZ, 4096));
    drain(p[0]);
    say("fill 4096=%ld", fill(p[1], 4096));
    drain(p[0]);
    say("fill 1000=%ld", fill(p[1], 1000));
    drain(p[0]);
    long sizes[] = {0, 1, 4095, 4096, 4097, 12288, 65537, 262144, 1 << 20, (1L << 32) + 8192};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        long r = S3(SYS_fcntl, p[1], F_SETPIPE_SZ, sizes[i]);
        long g = S2(SYS_fcntl, p[0], F_GETPIPE_SZ);
        say("set %ld=%ld get=%ld fill=%ld", sizes[i], r, g, fill(p[1], 4096));
        drain(p[0]);
    }
    say("set 2^31+1=%ld", S3(SYS_fcntl, p[1], F_SETPIPE_SZ, (1UL << 31) + 1));
    say("set -1=%ld", S3(SYS_fcntl, p[1], F_SETPIPE_SZ, -1L));
    int fd = (int)S2(SYS_memfd_create, "f", 0);
    say("getpipe on a file=%ld", S2(SYS_fcntl, fd, F_GETPIPE_SZ));
    say("setpipe on a file=%ld", S3(SYS_fcntl, fd, F_SETPIPE_SZ, 4096));
    say("fionread write end=%ld", S3(SYS_ioctl, p[1], FIONREAD, &n));
    say("tcgets=%ld", S3(SYS_ioctl, p[0], TCGETS, &n));
}

/* ---- packet ---- */
static void mode_packet(void) {
    int p[2];
    char buf[100];
    mkpipe(p, O_DIRECT);
    say("getfl=%lo", S2(SYS_fcntl, p[1], F_GETFL));
    long w1 = S3(SYS_write, p[1], "0123456789", 10);
    long w2 = S3(SYS_write, p[1], "abcdefghijklmnopqrst", 20);
    say("w=%ld w=%ld w=%ld", w1, w2, S3(SYS_write, p[1], "XYZ", 3));
    long n = S3(SYS_read, p[0], buf, sizeof buf);
    say("read=%ld '%.*s'", n, (int)n, buf);
    n = S3(SYS_read, p[0], buf, 5);
    say("short read=%ld '%.*s'", n, (int)n, buf);
    n = S3(SYS_read, p[0], buf, sizeof buf);
    say("next=%ld '%.*s'", n, (int)n, buf);
    struct iovec v[3] = {{"one", 3}, {"two", 3}, {"three", 5}};
    say("writev=%ld", S3(SYS_writev, p[1], v, 3));
    say("write=%ld", S3(SYS_write, p[1], "four", 4));
    struct iovec r[2] = {{buf, 4}, {buf + 4, 50}};
    n = S3(SYS_readv, p[0], r, 2);
    say("readv=%ld '%.*s'", n, (int)n, buf);
    n = S3(SYS_read, p[0], buf, sizeof buf);
    say("read=%ld '%.*s'", n, (int)n, buf);
    static char big[10000];
    memset(big, 'q', sizeof big);
    say("big write=%ld", S3(SYS_write, p[1], big, sizeof big));
    for (int i = 0; i < 3; i++)
        say("read=%ld", S3(SYS_read, p[0], big, sizeof big));
    long sf = S3(SYS_fcntl, p[1], F_SETFL, 0);
    say("setfl off=%ld getfl=%lo", sf, S2(SYS_fcntl, p[1], F_GETFL));
}

/* ---- poll ---- */
static void show(const char *what, int rfd, int wfd) {
    struct pollfd f[2] = {{rfd, POLLIN | POLLOUT, 0}, {wfd, POLLIN | POLLOUT, 0}};
    long r = S3(SYS_poll, f, 2, 0);
    say("%s: poll=%ld read=%x write=%x", what, r, f[0].revents, f[1].revents);
}

static void *late_writer(void *arg) {
    int fd = *(int *)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, 0);
    S3(SYS_write, fd, "z", 1);
    return 0;
}

static void mode_poll(void) {
    int p[2];
    char b[8];
    mkpipe(p, O_NONBLOCK);
    show("empty", p[0], p[1]);
    S3(SYS_write, p[1], "x", 1);
    show("data", p[0], p[1]);
    fill(p[1], 4096);
    show("full", p[0], p[1]);
    drain(p[0]);
    show("drained", p[0], p[1]);
    pthread_t t;
    pthread_create(&t, 0, late_writer, &p[1]);
    struct pollfd f = {p[0], POLLIN, 0};
    long r = S3(SYS_poll, &f, 1, -1);
    say("waited: poll=%ld revents=%x", r, f.revents);
    pthread_join(t, 0);
    struct timespec ts = {0, 0};
    r = S6(SYS_ppoll, &f, 1, &ts, 0, 8, 0);
    say("ppoll: %ld revents=%x", r, f.revents);
    S3(SYS_read, p[0], b, sizeof b);
    int d = (int)S1(SYS_dup, p[1]);
    S1(SYS_close, p[1]);
    show("one writer left", p[0], d);
    S3(SYS_write, d, "y", 1);
    S1(SYS_close, d);
    show("no writer, data", p[0], -1);
    S3(SYS_read, p[0], b, sizeof b);
    show("no writer", p[0], -1);
    mkpipe(p, 0);
    S1(SYS_close, p[0]);
    show("no reader", -1, p[1]);
}

/* ---- splice ---- */
static void mode_splice(void) {
    int p[2], q[2];
    char buf[64];
    mkpipe(p, 0);
    mkpipe(q, 0);
    int fd = (int)S2(SYS_memfd_create, "src", 0);
    S3(SYS_write, fd, "the quick brown fox jumps", 25);
    long long off = 4;
    long r = S6(SYS_splice, fd, &off, p[1], 0, 11, 0);
    say("file->pipe=%ld off=%lld pos=%ld", r, off, S3(SYS_lseek, fd, 0, SEEK_CUR));
    S3(SYS_lseek, fd, 1, SEEK_SET);
    r = S6(SYS_splice, fd, 0, p[1], 0, 3, 0);
    say("file->pipe at pos=%ld pos=%ld", r, S3(SYS_lseek, fd, 0, SEEK_CUR));
    say("tee=%ld", S4(SYS_tee, p[0], q[1], 100, 0));
    say("pipe->same pipe=%ld", S6(SYS_splice, q[0], 0, q[1], 0, 5, 0));
    int out = (int)S2(SYS_memfd_create, "dst", 0);
    off = 2;
    r = S6(SYS_splice, p[0], 0, out, &off, 100, 0);
    say("pipe->file=%ld off=%lld", r, off);
    long n = S4(SYS_pread64, out, buf, sizeof buf, 0);
    say("file now=%ld '%.*s'", n, (int)n, buf + 2);
    int z[2];
    mkpipe(z, 0);
    say("pipe->pipe=%ld", S6(SYS_splice, q[0], 0, z[1], 0, 6, 0));
    n = S3(SYS_read, z[0], buf, sizeof buf);
    say("moved '%.*s'", (int)n, buf);
    n = S3(SYS_read, q[0], buf, sizeof buf);
    say("left '%.*s'", (int)n, buf);
    /* errors */
    off = 0;
    say("offset on pipe in=%ld", S6(SYS_splice, p[0], &off, out, 0, 1, 0));
    say("offset on pipe out=%ld", S6(SYS_splice, fd, 0, p[1], &off, 1, 0));
    say("no pipe=%ld", S6(SYS_splice, fd, 0, out, 0, 1, 0));
    say("bad flags=%ld", S6(SYS_splice, p[0], 0, q[1], 0, 1, 0x100));
    say("len 0 bad fd=%ld", S6(SYS_splice, 999, 0, 998, 0, 0, 0));
    say("bad fd=%ld", S6(SYS_splice, 999, 0, p[1], 0, 1, 0));
    say("from write end=%ld", S6(SYS_splice, p[1], 0, q[1], 0, 1, 0));
    say("to read end=%ld", S6(SYS_splice, fd, 0, p[0], 0, 1, 0));
    off = -1;
    say("negative offset=%ld", S6(SYS_splice, fd, &off, p[1], 0, 1, 0));
    say("nonblock empty=%ld", S6(SYS_splice, p[0], 0, out, 0, 1, SPLICE_F_NONBLOCK));
    say("tee same pipe=%ld", S4(SYS_tee, p[0], p[1], 1, 0));
    say("tee file=%ld", S4(SYS_tee, fd, p[1], 1, 0));
    say("tee bad flags=%ld", S4(SYS_tee, p[0], q[1], 1, 0x100));
    say("tee len 0=%ld", S4(SYS_tee, 999, 998, 0, 0));
    say("tee nonblock empty=%ld", S4(SYS_tee, p[0], q[1], 1, SPLICE_F_NONBLOCK));
    /* vmsplice */
    struct iovec v[2] = {{"vm", 2}, {"splice", 6}};
    say("vmsplice to pipe=%ld", S4(SYS_vmsplice, p[1], v, 2, 0));
    char a[3] = {0}, b[10] = {0};
    struct iovec r2[2] = {{a, 3}, {b, 10}};
    n = S4(SYS_vmsplice, p[0], r2, 2, 0);
    say("vmsplice from pipe=%ld '%.3s' '%s'", n, a, b);
    say("vmsplice nonblock empty=%ld", S4(SYS_vmsplice, p[0], r2, 2, SPLICE_F_NONBLOCK));
    say("vmsplice file=%ld", S4(SYS_vmsplice, fd, v, 2, 0));
    say("vmsplice bad flags=%ld", S4(SYS_vmsplice, p[1], v, 2, 0x100));
    say("vmsplice empty=%ld", S4(SYS_vmsplice, p[1], v, 0, 0));
    S1(SYS_close, p[1]);
    say("vmsplice at eof=%ld", S4(SYS_vmsplice, p[0], r2, 2, 0));
    say("vmsplice nonblock at eof=%ld", S4(SYS_vmsplice, p[0], r2, 2, SPLICE_F_NONBLOCK));
    signal(SIGPIPE, SIG_IGN);
    S1(SYS_close, z[0]);
    say("vmsplice no reader=%ld", S4(SYS_vmsplice, z[1], v, 2, 0));
    off = 0;
    say("splice no reader=%ld", S6(SYS_splice, fd, &off, z[1], 0, 1, 0));
}

/* ---- intr ---- */
static int ip[2];
static volatile int reader_done;
static long reader_result;
static char reader_byte;

static void *blocked_reader(void *arg) {
    (void)arg;
    reader_result = S3(SYS_read, ip[0], &reader_byte, 1);
    __atomic_store_n(&reader_done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void nap(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, 0);
}

static void interrupt(int restart) {
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = restart ? SA_RESTART : 0};
    sigaction(SIGUSR1, &sa, 0);
    mkpipe(ip, 0);
    reader_done = 0;
    got = 0;
    pthread_t t;
    pthread_create(&t, 0, blocked_reader, 0);
    /* Until the reader has been interrupted in its read (a signal that lands before it
     * blocks only runs the handler). */
    for (int i = 0; i < 10 && !__atomic_load_n(&reader_done, __ATOMIC_SEQ_CST); i++) {
        nap();
        pthread_kill(t, SIGUSR1);
    }
    nap();
    if (restart)
        S3(SYS_write, ip[1], "r", 1);
    pthread_join(t, 0);
    say("%s: read=%ld byte=%c handler=%d", restart ? "SA_RESTART" : "no SA_RESTART",
        reader_result, reader_result == 1 ? reader_byte : '-', got == SIGUSR1);
    S1(SYS_close, ip[0]);
    S1(SYS_close, ip[1]);
}

static int wp[2];
static void *blocked_writer(void *arg) {
    (void)arg;
    static char big[1 << 17];
    reader_result = S3(SYS_write, wp[1], big, sizeof big);
    __atomic_store_n(&reader_done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void mode_intr(void) {
    interrupt(0);
    interrupt(1);
    /* A write blocked on a full pipe: a handled signal ends it with what it wrote. */
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGUSR1, &sa, 0);
    mkpipe(wp, 0);
    reader_done = 0;
    pthread_t t;
    pthread_create(&t, 0, blocked_writer, 0);
    for (int i = 0; i < 10 && !__atomic_load_n(&reader_done, __ATOMIC_SEQ_CST); i++) {
        nap();
        pthread_kill(t, SIGUSR1);
    }
    pthread_join(t, 0);
    say("blocked write=%ld", reader_result);
}

/* ---- misc ---- */
static void mode_misc(void) {
    int p[2];
    mkpipe(p, 0);
    struct stat st;
    long fs = S2(SYS_fstat, p[0], &st);
    say("fstat=%ld fifo=%d mode=%o blksize=%ld size=%ld nlink=%ld", fs,
        S_ISFIFO(st.st_mode), st.st_mode & 07777, (long)st.st_blksize, (long)st.st_size,
        (long)st.st_nlink);
    struct stat st2;
    S2(SYS_fstat, p[1], &st2);
    say("same inode both ends=%d", st.st_ino == st2.st_ino);
    char link[64], want[64], at[32];
    snprintf(want, sizeof want, "pipe:[%lu]", (unsigned long)st.st_ino);
    snprintf(at, sizeof at, "/proc/self/fd/%d", p[1]);
    long ln = S3(SYS_readlink, at, link, sizeof link);
    say("/proc/self/fd link=%ld is pipe:[st_ino]=%d", ln,
        ln == (long)strlen(want) && !memcmp(link, want, (size_t)ln));
    say("getfd=%ld", S2(SYS_fcntl, p[0], F_GETFD));
    int c[2];
    mkpipe(c, O_CLOEXEC);
    long g0 = S2(SYS_fcntl, c[0], F_GETFD);
    say("cloexec getfd=%ld %ld", g0, S2(SYS_fcntl, c[1], F_GETFD));
    say("numbers follow=%d", c[1] == c[0] + 1);
    int flags[] = {O_EXCL << 1, O_RDWR, O_APPEND, O_TRUNC, O_CREAT, 1 << 30};
    for (unsigned i = 0; i < sizeof flags / sizeof *flags; i++)
        say("pipe2 %#x=%ld", flags[i], S2(SYS_pipe2, c, flags[i]));
    say("lseek=%ld", S3(SYS_lseek, p[0], 0, SEEK_CUR));
    char b[4];
    say("pread=%ld", S4(SYS_pread64, p[0], b, 1, 0));
    say("pwrite=%ld", S4(SYS_pwrite64, p[1], b, 1, 0));
    say("dup2=%ld", S2(SYS_dup2, p[1], 20));
    long d3 = S3(SYS_dup3, p[1], 21, O_CLOEXEC);
    say("dup3 cloexec=%ld getfd=%ld", d3, S2(SYS_fcntl, 21, F_GETFD));
    S1(SYS_close, p[1]);
    S1(SYS_close, 20);
    say("write via 21=%ld", S3(SYS_write, 21, "k", 1));
    S1(SYS_close, 21);
    say("read=%ld", S3(SYS_read, p[0], b, 4));
    say("eof=%ld", S3(SYS_read, p[0], b, 4));
    say("pipe=%ld", S1(SYS_pipe, c));
    long wr = S3(SYS_write, c[1], "ok", 2);
    say("write=%ld read=%ld", wr, S3(SYS_read, c[0], b, 4));
    say("ftruncate=%ld", S2(SYS_ftruncate, c[1], 0));
    say("fsync=%ld", S1(SYS_fsync, c[1]));
    void *m = mmap(0, 4096, PROT_READ, MAP_PRIVATE, c[0], 0);
    say("mmap=%d", m == MAP_FAILED ? -errno : 0);
}

static void sel(const char *what, int nfds, int rfd, int wfd, long usec) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    if (rfd >= 0)
        FD_SET(rfd, &r);
    if (wfd >= 0)
        FD_SET(wfd, &w);
    struct timeval tv = {0, usec};
    long n = S6(SYS_select, nfds, &r, &w, 0, usec < 0 ? 0 : &tv, 0);
    say("%s: select=%ld read=%d write=%d tv=%ld.%06ld", what, n, rfd >= 0 && FD_ISSET(rfd, &r),
        wfd >= 0 && FD_ISSET(wfd, &w), (long)tv.tv_sec, (long)tv.tv_usec);
}

static void mode_select(void) {
    int p[2];
    char b[8];
    mkpipe(p, O_NONBLOCK);
    int top = p[1] + 1;
    sel("empty", top, p[0], p[1], 0);
    sel("empty, read only, 10 ms", top, p[0], -1, 10000);
    S3(SYS_write, p[1], "x", 1);
    sel("data", top, p[0], p[1], 0);
    fill(p[1], 4096);
    sel("full", top, p[0], p[1], 0);
    drain(p[0]);
    pthread_t t;
    pthread_create(&t, 0, late_writer, &p[1]);
    sel("waited", top, p[0], -1, -1);
    pthread_join(t, 0);
    S3(SYS_read, p[0], b, sizeof b);
    sel("nfds below the fd", p[0], p[0], -1, 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    say("negative nfds=%ld", S6(SYS_select, -1, &r, 0, 0, 0, 0));
    FD_SET(40, &r);
    struct timeval tv = {0, 0};
    say("closed fd in set=%ld", S6(SYS_select, 41, &r, 0, 0, &tv, 0));
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    say("bad set pointer=%ld", S6(SYS_select, top, 8, 0, 0, &tv, 0));
    tv.tv_usec = -1;
    say("negative usec=%ld", S6(SYS_select, top, &r, 0, 0, &tv, 0));
    tv.tv_usec = 1500000;
    FD_SET(p[1], &r);
    S3(SYS_write, p[1], "y", 1);
    long n = S6(SYS_select, top, &r, 0, 0, &tv, 0);
    say("usec past a second, write end in read set=%ld isset=%d,%d tv.sec=%ld", n,
        FD_ISSET(p[0], &r), FD_ISSET(p[1], &r), (long)tv.tv_sec);
    S3(SYS_read, p[0], b, sizeof b);
    S1(SYS_close, p[1]);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    say("no writer=%ld isset=%d", S6(SYS_select, top, &r, 0, 0, &tv, 0), FD_ISSET(p[0], &r));
    struct timespec ts = {0, 0};
    sigset_t m;
    sigemptyset(&m);
    struct {
        sigset_t *ss;
        size_t len;
    } arg = {&m, 8};
    FD_SET(p[0], &r);
    say("pselect6=%ld", S6(SYS_pselect6, top, &r, 0, 0, &ts, &arg));
    arg.len = 4;
    say("pselect6 bad size=%ld", S6(SYS_pselect6, top, &r, 0, 0, &ts, &arg));
    ts.tv_nsec = 1000000000;
    say("pselect6 bad ts=%ld", S6(SYS_pselect6, top, &r, 0, 0, &ts, 0));
}

static void mode_block(void) {
    int p[2];
    char b;
    mkpipe(p, 0);
    say("blocking");
    long r = S3(SYS_read, p[0], &b, 1);
    say("FAIL read returned %ld", r);
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "stream"))
        mode_stream();
    else if (!strcmp(m, "eof"))
        mode_eof();
    else if (!strcmp(m, "epipe"))
        mode_epipe();
    else if (!strcmp(m, "sigpipe"))
        mode_sigpipe();
    else if (!strcmp(m, "nonblock"))
        mode_nonblock();
    else if (!strcmp(m, "capacity"))
        mode_capacity();
    else if (!strcmp(m, "packet"))
        mode_packet();
    else if (!strcmp(m, "poll"))
        mode_poll();
    else if (!strcmp(m, "splice"))
        mode_splice();
    else if (!strcmp(m, "intr"))
        mode_intr();
    else if (!strcmp(m, "misc"))
        mode_misc();
    else if (!strcmp(m, "select"))
        mode_select();
    else if (!strcmp(m, "block"))
        mode_block();
    else {
        say("FAIL unknown mode '%s'", m);
        return 2;
    }
    return 0;
}
