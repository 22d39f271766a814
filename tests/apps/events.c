/* Event loops compared with Linux line by line (tests/events.rs). Modes:
 *   level     level vs edge triggering on a pipe, EPOLLONESHOT re-armed with MOD, DEL
 *   hup       EPOLLHUP on the read end when the writer closes, EPOLLERR on the write end
 *             when the reader closes; an fd closed is removed from the set
 *   many      300 pipes in one set, every other one ready
 *   nested    an epoll fd in another epoll set, ELOOP for a cycle, EPOLLEXCLUSIVE rules
 *   ctlerr    epoll_ctl's errors in Linux's order; epoll_create/create1 flags
 *   waiterr   epoll_wait/pwait/pwait2 with bad maxevents, pointers, sigset sizes, timeouts
 *   eventfd   counter and semaphore modes, EAGAIN, overflow, short buffers, poll, select,
 *             fcntl, fstat, /proc/self/fd and fdinfo
 *   timerfd   create errors, one-shot and periodic expirations, abstime, gettime, settime's
 *             old value, a blocking read, epoll readiness
 *   intr      a blocked epoll_wait cut short by a handled signal (EINTR, with SA_RESTART
 *             too); epoll_pwait with the signal blocked is not
 *   fork      an epoll fd inherited by a forked child works there
 *   block     an epoll_wait nobody will ever satisfy (ended by --timeout)
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

/* Raw calls: the same errno convention in glibc and musl, no wrapper retries. */
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

static void mkpipe(int p[2], int flags) {
    if (S2(SYS_pipe2, p, flags) < 0) {
        say("FAIL pipe2");
        exit(1);
    }
}

static int epfd(void) {
    long e = S1(SYS_epoll_create1, 0);
    if (e < 0) {
        say("FAIL epoll_create1: %ld", e);
        exit(1);
    }
    return (int)e;
}

static long ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return S4(SYS_epoll_ctl, ep, op, fd, &ev);
}

/* One wait of up to 16 events: the count, then each event's mask and data. */
static void waitsay(const char *what, int ep, int ms) {
    struct epoll_event evs[16];
    long n = S4(SYS_epoll_wait, ep, evs, 16, ms);
    char line[512];
    int at = snprintf(line, sizeof line, "%s: n=%ld", what, n);
    for (long i = 0; i < n && at < (int)sizeof line - 40; i++)
        at += snprintf(line + at, sizeof line - at, " [%#x %llu]", evs[i].events,
                       (unsigned long long)evs[i].data.u64);
    say("%s", line);
}

static void nap(int ms) {
    struct timespec ts = {0, ms * 1000L * 1000L};
    nanosleep(&ts, 0);
}

/* ---- level ---- */
static void mode_level(void) {
    int p[2];
    mkpipe(p, O_NONBLOCK);
    int ep = epfd();
    say("add lt=%ld", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 7));
    waitsay("empty", ep, 0);
    S3(SYS_write, p[1], "ab", 2);
    waitsay("lt data", ep, 0);
    waitsay("lt again", ep, 0);
    say("mod et=%ld", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 8));
    waitsay("et after mod", ep, 0);
    waitsay("et again", ep, 0);
    S3(SYS_write, p[1], "c", 1);
    waitsay("et new data", ep, 0);
    waitsay("et nothing new", ep, 0);
    char b[8];
    say("drain=%ld", S3(SYS_read, p[0], b, sizeof b));
    say("mod oneshot=%ld", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 9));
    S3(SYS_write, p[1], "d", 1);
    waitsay("oneshot", ep, 0);
    waitsay("oneshot disarmed", ep, 0);
    S3(SYS_write, p[1], "e", 1);
    waitsay("oneshot still disarmed", ep, 0);
    say("rearm=%ld", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 10));
    waitsay("rearmed", ep, 0);
    say("add write end=%ld", ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT, 11));
    waitsay("both", ep, 0);
    say("del=%ld", ctl(ep, EPOLL_CTL_DEL, p[1], 0, 0));
    say("del again=%ld", ctl(ep, EPOLL_CTL_DEL, p[1], 0, 0));
    say("rearm=%ld", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN, 12));
    waitsay("after del", ep, 0);
    /* A blocking wait woken by a write from another process's worth of time later. */
    say("drain=%ld", S3(SYS_read, p[0], b, sizeof b));
    struct epoll_event one;
    say("timed out=%ld", S4(SYS_epoll_wait, ep, &one, 1, 30));
}

/* ---- hup ---- */
static void mode_hup(void) {
    int p[2];
    mkpipe(p, 0);
    int ep = epfd();
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLRDHUP, 1);
    S3(SYS_write, p[1], "x", 1);
    S1(SYS_close, p[1]);
    waitsay("writer closed", ep, 0);
    char b[4];
    S3(SYS_read, p[0], b, sizeof b);
    waitsay("drained", ep, 0);
    int q[2];
    mkpipe(q, 0);
    ctl(ep, EPOLL_CTL_ADD, q[1], EPOLLOUT, 2);
    S1(SYS_close, q[0]);
    /* Asked for nothing: EPOLLERR and EPOLLHUP are always reported. */
    say("mod none=%ld", ctl(ep, EPOLL_CTL_MOD, q[1], 0, 3));
    waitsay("reader closed", ep, 0);
    S1(SYS_close, q[1]);
    S1(SYS_close, p[0]);
    waitsay("all closed", ep, 0);
    say("del closed=%ld", ctl(ep, EPOLL_CTL_DEL, p[0], 0, 0));
    /* A dup keeps the item: closing one of two fds of a file removes nothing. */
    int r[2];
    mkpipe(r, 0);
    int d = (int)S1(SYS_dup, r[0]);
    ctl(ep, EPOLL_CTL_ADD, r[0], EPOLLIN, 4);
    S1(SYS_close, r[0]);
    S3(SYS_write, r[1], "y", 1);
    waitsay("via dup", ep, 0);
    S1(SYS_close, d);
    waitsay("dup closed", ep, 0);
}

/* ---- many ---- */
static void mode_many(void) {
    int ep = epfd();
    enum { N = 300 };
    static int ps[N][2];
    for (int i = 0; i < N; i++) {
        mkpipe(ps[i], 0);
        if (ctl(ep, EPOLL_CTL_ADD, ps[i][0], EPOLLIN, (uint64_t)i) != 0)
            say("FAIL add %d", i);
    }
    for (int i = 0; i < N; i += 2)
        S3(SYS_write, ps[i][1], "m", 1);
    static struct epoll_event evs[N];
    long n = S4(SYS_epoll_wait, ep, evs, N, 0);
    uint64_t sum = 0;
    int odd = 0;
    for (long i = 0; i < n; i++) {
        sum += evs[i].data.u64;
        odd += (int)(evs[i].data.u64 & 1);
    }
    say("ready=%ld sum=%llu odd=%d", n, (unsigned long long)sum, odd);
    n = S4(SYS_epoll_wait, ep, evs, 7, 0);
    say("capped=%ld", n);
    for (int i = 0; i < N; i++) {
        S1(SYS_close, ps[i][0]);
        S1(SYS_close, ps[i][1]);
    }
    say("after close=%ld", S4(SYS_epoll_wait, ep, evs, N, 0));
}

/* ---- nested ---- */
static void mode_nested(void) {
    int p[2];
    mkpipe(p, 0);
    int inner = epfd(), outer = epfd();
    ctl(inner, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
    say("add inner=%ld", ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN, 2));
    waitsay("outer empty", outer, 0);
    S3(SYS_write, p[1], "n", 1);
    waitsay("outer ready", outer, 0);
    waitsay("inner ready", inner, 0);
    say("cycle=%ld", ctl(inner, EPOLL_CTL_ADD, outer, EPOLLIN, 3));
    int third = epfd();
    ctl(third, EPOLL_CTL_ADD, outer, EPOLLIN, 4);
    say("longer cycle=%ld", ctl(inner, EPOLL_CTL_ADD, third, EPOLLIN, 5));
    say("self=%ld", ctl(inner, EPOLL_CTL_ADD, inner, EPOLLIN, 6));
    int q[2];
    mkpipe(q, 0);
    say("exclusive add=%ld", ctl(inner, EPOLL_CTL_ADD, q[0], EPOLLIN | EPOLLEXCLUSIVE, 7));
    say("exclusive mod=%ld", ctl(inner, EPOLL_CTL_MOD, q[0], EPOLLIN | EPOLLEXCLUSIVE, 7));
    say("mod of exclusive=%ld", ctl(inner, EPOLL_CTL_MOD, q[0], EPOLLIN, 7));
    say("exclusive oneshot=%ld",
        ctl(inner, EPOLL_CTL_ADD, q[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 8));
    int fourth = epfd();
    say("exclusive epoll=%ld", ctl(fourth, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLEXCLUSIVE, 9));
    say("wakeup=%ld", ctl(fourth, EPOLL_CTL_ADD, q[1], EPOLLOUT | EPOLLWAKEUP, 10));
    waitsay("wakeup dropped", fourth, 0);
    struct pollfd pf = {.fd = outer, .events = POLLIN};
    long pr = S3(SYS_poll, &pf, 1, 0);
    say("poll outer=%ld revents=%#x", pr, pf.revents);
}

/* ---- ctlerr ---- */
static void mode_ctlerr(void) {
    int ep = epfd();
    int p[2];
    mkpipe(p, 0);
    int mfd = (int)S2(SYS_memfd_create, "f", 0);
    struct epoll_event ev = {.events = EPOLLIN};
    void *bad = (void *)16;
    say("efault first=%ld", S4(SYS_epoll_ctl, 999, EPOLL_CTL_ADD, 998, bad));
    say("del ignores event=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], bad));
    say("bad epfd=%ld", S4(SYS_epoll_ctl, 999, EPOLL_CTL_ADD, p[0], &ev));
    say("bad fd=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, 999, &ev));
    say("regular file=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, mfd, &ev));
    say("regular, not epoll=%ld", S4(SYS_epoll_ctl, p[0], EPOLL_CTL_ADD, mfd, &ev));
    say("not epoll=%ld", S4(SYS_epoll_ctl, p[0], EPOLL_CTL_ADD, p[1], &ev));
    say("add=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
    say("exists=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
    say("mod absent=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, p[1], &ev));
    say("del absent=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[1], &ev));
    say("bad op=%ld", S4(SYS_epoll_ctl, ep, 7, p[0], &ev));
    say("bad op absent=%ld", S4(SYS_epoll_ctl, ep, 0, p[1], &ev));
    say("negative fd=%ld", S4(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, -1, &ev));
    say("create 0=%ld -1=%ld", S1(SYS_epoll_create, 0), S1(SYS_epoll_create, -1));
    long c = S1(SYS_epoll_create, 1);
    say("create 1 ok=%d", c >= 0);
    say("create1 bad=%ld %ld", S1(SYS_epoll_create1, 1), S1(SYS_epoll_create1, O_NONBLOCK));
    long cl = S1(SYS_epoll_create1, EPOLL_CLOEXEC);
    say("cloexec getfd=%ld getfl=%#lo", S2(SYS_fcntl, cl, F_GETFD), S2(SYS_fcntl, cl, F_GETFL));
    struct stat st;
    long fr = S2(SYS_fstat, cl, &st);
    say("fstat=%ld mode=%o size=%ld", fr, st.st_mode, (long)st.st_size);
    char b[16];
    say("read=%ld", S3(SYS_read, cl, b, sizeof b));
    say("write=%ld", S3(SYS_write, cl, b, 8));
    say("lseek=%ld", S3(SYS_lseek, cl, 0, SEEK_SET));
    char link[64] = {0}, at[40];
    snprintf(at, sizeof at, "/proc/self/fd/%ld", cl);
    long n = S3(SYS_readlink, at, link, sizeof link - 1);
    say("link=%ld %s", n, link);
    say("mod through a dup=%ld", ctl((int)S1(SYS_dup, ep), EPOLL_CTL_MOD, p[0], EPOLLOUT, 5));
    /* fdinfo: one tfd line per item (the first two fields: the fd and its events). */
    snprintf(at, sizeof at, "/proc/self/fdinfo/%d", ep);
    int fi = open(at, O_RDONLY);
    char text[2048] = {0};
    if (fi >= 0) {
        long got = read(fi, text, sizeof text - 1);
        (void)got;
        close(fi);
    }
    char *t = strstr(text, "tfd:");
    int tfd = -1;
    unsigned evs = 0;
    if (t)
        sscanf(t, "tfd: %d events: %x", &tfd, &evs);
    say("fdinfo tfd=%d (pipe %d) events=%#x", tfd, p[0], evs);
}

/* ---- waiterr ---- */
static void mode_waiterr(void) {
    int ep = epfd();
    int p[2];
    mkpipe(p, 0);
    struct epoll_event evs[4];
    say("max 0=%ld", S4(SYS_epoll_wait, ep, evs, 0, 0));
    say("max -1=%ld", S4(SYS_epoll_wait, ep, evs, -1, 0));
    say("max huge=%ld", S4(SYS_epoll_wait, ep, evs, 0x7fffffff / 12 + 1, 0));
    say("max huge bad fd=%ld", S4(SYS_epoll_wait, 999, evs, 0x7fffffff, 0));
    say("kernel pointer=%ld", S4(SYS_epoll_wait, ep, (void *)0xffff800000000000UL, 1, 0));
    say("bad fd=%ld", S4(SYS_epoll_wait, 999, evs, 4, 0));
    say("not epoll=%ld", S4(SYS_epoll_wait, p[0], evs, 4, 0));
    say("nothing ready, bad pointer=%ld", S4(SYS_epoll_wait, ep, (void *)16, 4, 0));
    ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT, 1);
    say("ready, bad pointer=%ld", S4(SYS_epoll_wait, ep, (void *)16, 4, 0));
    /* The second record reaches past the mapping: the first is returned. */
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 2);
    S3(SYS_write, p[1], "w", 1);
    char *page = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(page + 4096, 4096);
    long n = S4(SYS_epoll_wait, ep, page + 4096 - 12, 4, 0);
    say("second record unmapped=%ld", n);
    uint64_t mask = 0;
    say("pwait sigsetsize 4=%ld", S6(SYS_epoll_pwait, ep, evs, 4, 0, &mask, 4));
    say("pwait bad sigset=%ld", S6(SYS_epoll_pwait, ep, evs, 4, 0, (void *)16, 8));
    say("pwait sigset first=%ld", S6(SYS_epoll_pwait, ep, evs, 0, 0, &mask, 4));
    say("pwait null sigset any size=%ld", S6(SYS_epoll_pwait, ep, evs, 4, 0, 0, 3));
    struct timespec ts = {0, 1000000000};
    say("pwait2 bad nsec=%ld", S6(SYS_epoll_pwait2, ep, evs, 4, &ts, 0, 8));
    ts.tv_sec = -1;
    ts.tv_nsec = 0;
    say("pwait2 negative=%ld", S6(SYS_epoll_pwait2, ep, evs, 4, &ts, 0, 8));
    say("pwait2 bad pointer=%ld", S6(SYS_epoll_pwait2, ep, evs, 4, (void *)16, 0, 8));
    ts.tv_sec = 0;
    ts.tv_nsec = 1000;
    say("pwait2 ready=%ld", S6(SYS_epoll_pwait2, ep, evs, 4, &ts, &mask, 8));
    say("pwait2 null timeout ready=%ld", S6(SYS_epoll_pwait2, ep, evs, 4, 0, 0, 8));
}

/* ---- eventfd ---- */
static void mode_eventfd(void) {
    long e = S2(SYS_eventfd2, 3, EFD_NONBLOCK);
    uint64_t v = 0;
    long r = S3(SYS_read, e, &v, 8);
    say("read=%ld v=%llu", r, (unsigned long long)v);
    say("empty=%ld", S3(SYS_read, e, &v, 8));
    v = 5;
    say("write=%ld", S3(SYS_write, e, &v, 8));
    v = 2;
    say("write=%ld", S3(SYS_write, e, &v, 8));
    say("short read=%ld short write=%ld", S3(SYS_read, e, &v, 4), S3(SYS_write, e, &v, 7));
    char big[16];
    say("big read=%ld", S3(SYS_read, e, big, sizeof big));
    v = 0xffffffffffffffffULL;
    say("max write=%ld", S3(SYS_write, e, &v, 8));
    v = 0xfffffffffffffffeULL;
    say("near max=%ld", S3(SYS_write, e, &v, 8));
    v = 1;
    say("overflow nonblock=%ld", S3(SYS_write, e, &v, 8));
    r = S3(SYS_read, e, &v, 8);
    say("read back=%ld v=%llx", r, (unsigned long long)v);
    long s = S2(SYS_eventfd2, 2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
    for (int i = 0; i < 3; i++) {
        v = 99;
        r = S3(SYS_read, s, &v, 8);
        say("sem read=%ld v=%llu", r, (unsigned long long)v);
    }
    say("bad flags=%ld %ld", S2(SYS_eventfd2, 0, 2), S2(SYS_eventfd2, 0, O_RDWR));
    long plain = S1(SYS_eventfd, 1);
    say("eventfd getfl=%#lo getfd=%ld sem getfl=%#lo getfd=%ld", S2(SYS_fcntl, plain, F_GETFL),
        S2(SYS_fcntl, plain, F_GETFD), S2(SYS_fcntl, s, F_GETFL), S2(SYS_fcntl, s, F_GETFD));
    struct pollfd pf[2] = {{.fd = (int)e, .events = POLLIN | POLLOUT},
                           {.fd = (int)plain, .events = POLLIN | POLLOUT}};
    r = S3(SYS_poll, pf, 2, 0);
    say("poll=%ld %#x %#x", r, pf[0].revents, pf[1].revents);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET((int)e, &rd);
    FD_SET((int)plain, &rd);
    struct timeval tv = {0, 0};
    long sel = S6(SYS_select, plain + 1, &rd, 0, 0, &tv, 0);
    say("select=%ld e=%d plain=%d", sel, FD_ISSET((int)e, &rd), FD_ISSET((int)plain, &rd));
    S3(SYS_fcntl, plain, F_SETFL, O_NONBLOCK);
    say("setfl=%#lo", S2(SYS_fcntl, plain, F_GETFL));
    say("read=%ld", S3(SYS_read, plain, &v, 8));
    say("again=%ld", S3(SYS_read, plain, &v, 8));
    struct stat st;
    r = S2(SYS_fstat, e, &st);
    say("fstat=%ld mode=%o size=%ld", r, st.st_mode, (long)st.st_size);
    say("pread=%ld lseek=%ld", S4(SYS_pread64, e, &v, 8, 0), S3(SYS_lseek, e, 0, SEEK_SET));
    char link[64] = {0}, at[40];
    snprintf(at, sizeof at, "/proc/self/fd/%ld", e);
    say("link=%ld %s", S3(SYS_readlink, at, link, sizeof link - 1), link);
    v = 42;
    S3(SYS_write, e, &v, 8);
    snprintf(at, sizeof at, "/proc/self/fdinfo/%ld", e);
    int fi = open(at, O_RDONLY);
    char text[1024] = {0};
    if (fi >= 0) {
        long got = read(fi, text, sizeof text - 1);
        (void)got;
        close(fi);
    }
    char *c = strstr(text, "eventfd-count:");
    say("fdinfo %.*s", c ? (int)strcspn(c, "\n") : 4, c ? c : "none");
    int mfd = (int)S2(SYS_memfd_create, "v", 0);
    S3(SYS_write, mfd, &v, 8);
    long off = 0;
    say("sendfile into it=%ld", S4(SYS_sendfile, e, mfd, &off, 8));
    int ep = epfd();
    ctl(ep, EPOLL_CTL_ADD, (int)e, EPOLLIN | EPOLLOUT | EPOLLET, 77);
    waitsay("epoll eventfd", ep, 0);
    waitsay("epoll eventfd et", ep, 0);
    v = 1;
    S3(SYS_write, e, &v, 8);
    waitsay("epoll eventfd written", ep, 0);
}

/* ---- timerfd ---- */
static void mode_timerfd(void) {
    say("bad clock=%ld", S2(SYS_timerfd_create, 12345, 0));
    say("cputime clock=%ld", S2(SYS_timerfd_create, CLOCK_PROCESS_CPUTIME_ID, 0));
    say("bad flags=%ld", S2(SYS_timerfd_create, CLOCK_MONOTONIC, 1));
    long t = S2(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK);
    long r = S2(SYS_timerfd_create, CLOCK_REALTIME, TFD_CLOEXEC);
    long b = S2(SYS_timerfd_create, CLOCK_BOOTTIME, 0);
    say("created=%d getfl=%#lo getfd=%ld", t >= 0 && r >= 0 && b >= 0,
        S2(SYS_fcntl, t, F_GETFL), S2(SYS_fcntl, r, F_GETFD));
    uint64_t n = 0;
    say("unarmed read=%ld", S3(SYS_read, t, &n, 8));
    struct itimerspec its = {{0, 0}, {0, 0}}, old;
    long g = S2(SYS_timerfd_gettime, t, &its);
    say("gettime unarmed=%ld value=%ld.%09ld", g, (long)its.it_value.tv_sec,
        its.it_value.tv_nsec);
    struct itimerspec set = {{0, 5000000}, {0, 5000000}};
    say("settime=%ld", S4(SYS_timerfd_settime, t, 0, &set, 0));
    nap(60);
    g = S3(SYS_read, t, &n, 8);
    say("periodic read=%ld several=%d", g, n >= 5);
    say("short read=%ld", S3(SYS_read, t, &n, 4));
    S2(SYS_timerfd_gettime, t, &its);
    say("gettime interval=%ld.%09ld value<=5ms=%d", (long)its.it_interval.tv_sec,
        its.it_interval.tv_nsec, its.it_value.tv_sec == 0 && its.it_value.tv_nsec <= 5000000);
    struct itimerspec off = {{0, 0}, {0, 0}};
    g = S4(SYS_timerfd_settime, t, 0, &off, &old);
    say("disarm=%ld old interval=%ld", g, old.it_interval.tv_nsec);
    S2(SYS_timerfd_gettime, t, &its);
    say("disarmed value=%ld.%09ld", (long)its.it_value.tv_sec, its.it_value.tv_nsec);
    /* Absolute, 30 ms from now on the monotonic clock: a blocking read waits for it. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {{0, 0}, {now.tv_sec, now.tv_nsec + 30000000}};
    if (abs.it_value.tv_nsec >= 1000000000) {
        abs.it_value.tv_sec++;
        abs.it_value.tv_nsec -= 1000000000;
    }
    say("boottime disarm=%ld", S4(SYS_timerfd_settime, b, 0, &off, 0));
    long m = S2(SYS_timerfd_create, CLOCK_MONOTONIC, 0);
    say("abs settime=%ld", S4(SYS_timerfd_settime, m, TFD_TIMER_ABSTIME, &abs, 0));
    int ep = epfd();
    ctl(ep, EPOLL_CTL_ADD, (int)m, EPOLLIN, 5);
    waitsay("not yet", ep, 0);
    waitsay("expired", ep, 5000);
    g = S3(SYS_read, m, &n, 8);
    say("blocking read=%ld n=%llu", g, (unsigned long long)n);
    /* In the past: expired at once. */
    abs.it_value.tv_sec = 1;
    S4(SYS_timerfd_settime, m, TFD_TIMER_ABSTIME, &abs, 0);
    g = S3(SYS_read, m, &n, 8);
    say("past read=%ld n=%llu", g, (unsigned long long)n);
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec cancel = {{0, 0}, {now.tv_sec + 1000, 0}};
    say("cancel on set=%ld", S4(SYS_timerfd_settime, r, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                                  &cancel, 0));
    say("cancel on set relative=%ld", S4(SYS_timerfd_settime, r, TFD_TIMER_CANCEL_ON_SET, &cancel, 0));
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    say("bad nsec=%ld", S4(SYS_timerfd_settime, m, 0, &bad, 0));
    bad.it_value.tv_nsec = 0;
    bad.it_interval.tv_sec = -1;
    say("bad interval=%ld", S4(SYS_timerfd_settime, m, 0, &bad, 0));
    say("bad flags=%ld", S4(SYS_timerfd_settime, m, 4, &off, 0));
    say("bad flags and fd=%ld", S4(SYS_timerfd_settime, 999, 4, &off, 0));
    say("bad fd=%ld", S4(SYS_timerfd_settime, 999, 0, &off, 0));
    say("not timerfd=%ld", S4(SYS_timerfd_settime, ep, 0, &off, 0));
    say("new efault=%ld", S4(SYS_timerfd_settime, m, 0, (void *)16, 0));
    say("old efault=%ld", S4(SYS_timerfd_settime, m, 0, &set, (void *)16));
    S2(SYS_timerfd_gettime, m, &its);
    say("set despite efault: interval=%ld", its.it_interval.tv_nsec);
    say("gettime efault=%ld not timerfd=%ld bad fd=%ld", S2(SYS_timerfd_gettime, m, (void *)16),
        S2(SYS_timerfd_gettime, ep, &its), S2(SYS_timerfd_gettime, 999, &its));
    say("write=%ld", S3(SYS_write, m, &n, 8));
    struct stat st;
    g = S2(SYS_fstat, m, &st);
    say("fstat=%ld mode=%o", g, st.st_mode);
    char link[64] = {0}, at[40];
    snprintf(at, sizeof at, "/proc/self/fd/%ld", m);
    say("link=%ld %s", S3(SYS_readlink, at, link, sizeof link - 1), link);
    /* fdinfo: the clock and the settime flags (the times move). */
    S4(SYS_timerfd_settime, r, TFD_TIMER_ABSTIME, &cancel, 0);
    snprintf(at, sizeof at, "/proc/self/fdinfo/%ld", r);
    int fi = open(at, O_RDONLY);
    char text[1024] = {0};
    if (fi >= 0) {
        long got = read(fi, text, sizeof text - 1);
        (void)got;
        close(fi);
    }
    for (const char *key = "clockid:"; key; key = key[0] == 'c' ? "settime flags:" : 0) {
        char *c = strstr(text, key);
        say("fdinfo %.*s", c ? (int)strcspn(c, "\n") : 4, c ? c : "none");
    }
}

/* ---- intr ---- */
static int ip[2], iep;
static volatile int done, got;
static long result;
static void on_sig(int s) { got = s; }

static void *blocked_waiter(void *arg) {
    struct epoll_event ev;
    if (arg) {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        result = S6(SYS_epoll_pwait, iep, &ev, 1, -1, &m, 8);
    } else {
        result = S4(SYS_epoll_wait, iep, &ev, 1, -1);
    }
    __atomic_store_n(&done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void interrupt(int restart, int masked) {
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = restart ? SA_RESTART : 0};
    sigaction(SIGUSR1, &sa, 0);
    mkpipe(ip, 0);
    iep = epfd();
    ctl(iep, EPOLL_CTL_ADD, ip[0], EPOLLIN, 1);
    done = 0;
    got = 0;
    pthread_t t;
    pthread_create(&t, 0, blocked_waiter, masked ? (void *)1 : 0);
    for (int i = 0; i < 10 && !__atomic_load_n(&done, __ATOMIC_SEQ_CST); i++) {
        nap(20);
        pthread_kill(t, SIGUSR1);
    }
    nap(20);
    int was_done = __atomic_load_n(&done, __ATOMIC_SEQ_CST);
    S3(SYS_write, ip[1], "i", 1);
    pthread_join(t, 0);
    say("%s%s: done before write=%d wait=%ld handler=%d", restart ? "SA_RESTART" : "plain",
        masked ? " pwait masked" : "", was_done, result, got == SIGUSR1);
    S1(SYS_close, ip[0]);
    S1(SYS_close, ip[1]);
    S1(SYS_close, iep);
}

/* A read of a blocking eventfd: EINTR after a handler, restarted with SA_RESTART. */
static int ev_fd;
static uint64_t ev_val;
static void *blocked_reader(void *arg) {
    (void)arg;
    result = S3(SYS_read, ev_fd, &ev_val, 8);
    __atomic_store_n(&done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void interrupt_read(int restart) {
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = restart ? SA_RESTART : 0};
    sigaction(SIGUSR1, &sa, 0);
    ev_fd = (int)S2(SYS_eventfd2, 0, 0);
    done = 0;
    got = 0;
    ev_val = 0;
    pthread_t t;
    pthread_create(&t, 0, blocked_reader, 0);
    for (int i = 0; i < 10 && !__atomic_load_n(&done, __ATOMIC_SEQ_CST); i++) {
        nap(20);
        pthread_kill(t, SIGUSR1);
    }
    nap(20);
    int was_done = __atomic_load_n(&done, __ATOMIC_SEQ_CST);
    uint64_t v = 5;
    S3(SYS_write, ev_fd, &v, 8);
    pthread_join(t, 0);
    say("eventfd read%s: done before write=%d read=%ld value=%llu handler=%d",
        restart ? " SA_RESTART" : "", was_done, result, (unsigned long long)ev_val,
        got == SIGUSR1);
    S1(SYS_close, ev_fd);
}

static void mode_intr(void) {
    interrupt(0, 0);
    interrupt(1, 0);
    interrupt(0, 1);
    interrupt_read(0);
    interrupt_read(1);
}

/* ---- fork ---- */
static void mode_fork(void) {
    int p[2], back[2];
    mkpipe(p, 0);
    mkpipe(back, 0);
    int ep = epfd();
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1234);
    pid_t pid = fork();
    if (pid == 0) {
        struct epoll_event ev;
        long n = S4(SYS_epoll_wait, ep, &ev, 1, 10000);
        char line[64];
        int len = snprintf(line, sizeof line, "child: n=%ld data=%llu", n,
                           (unsigned long long)ev.data.u64);
        S3(SYS_write, back[1], line, len);
        /* The child's add is seen by the parent: the instance is shared. */
        ctl(ep, EPOLL_CTL_ADD, back[0], EPOLLIN, 99);
        _exit(0);
    }
    nap(30);
    S3(SYS_write, p[1], "f", 1);
    int status;
    waitpid(pid, &status, 0);
    char line[64] = {0};
    long n = S3(SYS_read, back[0], line, sizeof line - 1);
    say("%.*s", (int)(n > 0 ? n : 0), line);
    char b;
    S3(SYS_read, p[0], &b, 1);
    S3(SYS_write, back[1], "z", 1);
    waitsay("parent sees the child's add", ep, 0);
    say("child status=%d", WEXITSTATUS(status));
}

static void mode_block(void) {
    int ep = epfd();
    struct epoll_event ev;
    say("blocking");
    S4(SYS_epoll_wait, ep, &ev, 1, -1);
    say("FAIL woke");
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    struct {
        const char *name;
        void (*fn)(void);
    } modes[] = {{"level", mode_level},     {"hup", mode_hup},         {"many", mode_many},
                 {"nested", mode_nested},   {"ctlerr", mode_ctlerr},   {"waiterr", mode_waiterr},
                 {"eventfd", mode_eventfd}, {"timerfd", mode_timerfd}, {"intr", mode_intr},
                 {"fork", mode_fork},       {"block", mode_block}};
    for (unsigned i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(m, modes[i].name)) {
            modes[i].fn();
            return 0;
        }
    say("FAIL unknown mode %s", m);
    return 2;
}
