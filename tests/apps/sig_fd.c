/* signalfd, as Linux serves it: `sig_fd MODE`, each mode printing deterministic lines for
 * comparison with the native run (pids and uids only as "is mine").
 *   read      SIGUSR1 and SIGRTMIN blocked and taken through a nonblocking signalfd: several
 *             records in one read (order, ssi_int, ssi_ptr, ssi_code), coalescing, EAGAIN,
 *             a signal outside the mask stays pending, a buffer < 128 bytes is EINVAL, a bad
 *             buffer is EFAULT (the signal is gone), the fd's flags and fstat.
 *   poll      poll/ppoll readiness: not ready, ready after raise, POLLOUT never.
 *   mask      signalfd(fd, new mask) changes what the fd takes; the errors of both calls
 *             (flags, sizemask, fd kinds, bad mask pointer).
 *   thread    a thread blocked in read() of a blocking signalfd (and one in poll()) wakes when
 *             another thread sends the signal (kill, sigqueue, tgkill).
 *   intr      a blocked signalfd read cut short by another signal with a handler: EINTR
 *             without SA_RESTART, read on with it.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

/* The kernel's struct signalfd_siginfo (musl and glibc spell the padding differently). */
struct ssi {
    uint32_t signo;
    int32_t err;
    int32_t code;
    uint32_t pid;
    uint32_t uid;
    int32_t fd;
    uint32_t tid;
    uint32_t band;
    uint32_t overrun;
    uint32_t trapno;
    int32_t status;
    int32_t intv;
    uint64_t ptr;
    uint64_t utime;
    uint64_t stime;
    uint64_t addr;
    uint16_t addr_lsb;
    uint16_t pad2;
    int32_t syscall;
    uint64_t call_addr;
    uint32_t arch;
    uint8_t pad[28];
};
_Static_assert(sizeof(struct ssi) == 128, "signalfd_siginfo is 128 bytes");

#define SFD_NONBLOCK_ O_NONBLOCK
#define SFD_CLOEXEC_ O_CLOEXEC

static long sfd4(long fd, const void *mask, long size, long flags) {
    long r = syscall(SYS_signalfd4, fd, mask, size, flags);
    return r < 0 ? -errno : r;
}

static long sfd3(long fd, const void *mask, long size) {
    long r = syscall(SYS_signalfd, fd, mask, size);
    return r < 0 ? -errno : r;
}

static long rd(int fd, void *buf, size_t n) {
    long r = read(fd, buf, n);
    return r < 0 ? -errno : r;
}

static uint64_t bit(int sig) { return 1ull << (sig - 1); }

static void block(uint64_t m) {
    sigset_t s;
    sigemptyset(&s);
    for (int i = 1; i <= 64; i++)
        if (m & bit(i))
            sigaddset(&s, i);
    if (sigprocmask(SIG_BLOCK, &s, 0))
        say("FAIL sigprocmask");
}

static void queue(int sig, int v) {
    union sigval val = {.sival_int = v};
    if (sigqueue(getpid(), sig, val))
        say("FAIL sigqueue %d: %s", sig, strerror(errno));
}

static void show(const struct ssi *s, long n) {
    for (long i = 0; i < n / 128; i++)
        say("  signo=%u code=%d int=%d ptr=%#llx errno=%d pid_mine=%d uid_mine=%d addr=%#llx", s[i].signo,
            s[i].code, s[i].intv, (unsigned long long)s[i].ptr, s[i].err, s[i].pid == (uint32_t)getpid(),
            s[i].uid == (uint32_t)getuid(), (unsigned long long)s[i].addr);
}

static int rtmin(int k) { return SIGRTMIN + k; }

static void mode_read(void) {
    uint64_t m = bit(SIGUSR1) | bit(rtmin(0));
    block(m | bit(rtmin(1)));
    int fd = (int)sfd4(-1, &m, 8, SFD_NONBLOCK_ | SFD_CLOEXEC_);
    say("signalfd4 ok=%d", fd >= 3);
    say("F_GETFD=%d F_GETFL=%#o", fcntl(fd, F_GETFD), fcntl(fd, F_GETFL) & ~0100000);
    struct stat st;
    int sr = fstat(fd, &st);
    say("fstat=%d mode=%o size=%lld nlink=%d uid_mine=%d", sr, st.st_mode, (long long)st.st_size,
        (int)st.st_nlink, st.st_uid == getuid());
    struct ssi buf[8];
    say("empty read=%ld", rd(fd, buf, sizeof buf));
    raise(SIGUSR1);
    raise(SIGUSR1);
    queue(rtmin(0), 7);
    queue(rtmin(1), 9);
    queue(rtmin(0), 8);
    say("short read=%ld", rd(fd, buf, 127));
    long n = rd(fd, buf, sizeof buf);
    say("read=%ld", n);
    show(buf, n);
    say("again=%ld", rd(fd, buf, sizeof buf));
    sigset_t p;
    sigpending(&p);
    say("still pending rtmin+1=%d usr1=%d", sigismember(&p, rtmin(1)), sigismember(&p, SIGUSR1));
    queue(rtmin(0), 10);
    queue(rtmin(0), 11);
    n = rd(fd, buf, 128 + 127);
    say("one-record read=%ld", n);
    show(buf, n);
    say("efault read=%ld", rd(fd, 0, 128));
    say("after efault=%ld", rd(fd, buf, 128));
    say("write=%ld", (long)write(fd, buf, 128) < 0 ? -errno : 0L);
    say("lseek=%ld", (long)lseek(fd, 0, SEEK_SET) < 0 ? -errno : 0L);
    /* fcntl F_SETFL clears O_NONBLOCK: then a read waits; set it again. */
    say("setfl=%d getfl=%#o", fcntl(fd, F_SETFL, 0), fcntl(fd, F_GETFL) & ~0100000);
    say("setfl=%d getfl=%#o", fcntl(fd, F_SETFL, O_NONBLOCK), fcntl(fd, F_GETFL) & ~0100000);
    say("close=%d", close(fd));
}

static void mode_poll(void) {
    uint64_t m = bit(SIGUSR2);
    block(m);
    int fd = (int)sfd4(-1, &m, 8, SFD_NONBLOCK_);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r = poll(&pf, 1, 0);
    say("before: poll=%d revents=%#x", r, pf.revents);
    r = poll(&pf, 1, 20);
    say("timed out: poll=%d revents=%#x", r, pf.revents);
    raise(SIGUSR2);
    r = poll(&pf, 1, 0);
    say("after raise: poll=%d revents=%#x", r, pf.revents);
    pf.events = POLLOUT;
    r = poll(&pf, 1, 0);
    say("pollout: poll=%d revents=%#x", r, pf.revents);
    struct pollfd two[2] = {{.fd = fd, .events = POLLIN}, {.fd = 1, .events = POLLOUT}};
    r = poll(two, 2, -1);
    say("with stdout: poll=%d revents=%#x,%#x", r, two[0].revents, two[1].revents);
    struct timespec ts = {0, 0};
    pf.events = POLLIN | POLLOUT;
    r = ppoll(&pf, 1, &ts, 0);
    say("ppoll: %d revents=%#x", r, pf.revents);
    struct ssi s;
    say("read=%ld", rd(fd, &s, sizeof s));
    pf.events = POLLIN;
    r = poll(&pf, 1, 0);
    say("drained: poll=%d revents=%#x", r, pf.revents);
}

static void mode_mask(void) {
    uint64_t m = bit(SIGUSR1), m2 = bit(SIGUSR2), all = ~0ull;
    block(m | m2);
    int fd = (int)sfd4(-1, &m, 8, SFD_NONBLOCK_);
    raise(SIGUSR2);
    struct ssi s;
    say("usr2 not taken=%ld", rd(fd, &s, sizeof s));
    say("update=%d", sfd4(fd, &m2, 8, 0) == fd);
    long n = rd(fd, &s, sizeof s);
    say("read=%ld signo=%u", n, s.signo);
    say("signalfd update=%d", sfd3(fd, &all, 8) == fd);
    raise(SIGUSR1);
    n = rd(fd, &s, sizeof s);
    say("read=%ld signo=%u", n, s.signo);
    say("bad flags=%ld", sfd4(-1, &m, 8, 1));
    say("bad flags=%ld", sfd4(-1, &m, 8, SFD_CLOEXEC_ | 2));
    say("bad size=%ld", sfd4(-1, &m, 4, 0));
    say("bad size=%ld", sfd3(-1, &m, 16));
    say("bad mask=%ld", sfd4(-1, (void *)8, 8, 0));
    say("bad mask, bad flags=%ld", sfd4(-1, (void *)8, 8, 1));
    say("bad size, bad mask=%ld", sfd4(-1, (void *)8, 7, 0));
    say("not a signalfd=%ld", sfd4(0, &m, 8, 0));
    say("closed fd=%ld", sfd4(999, &m, 8, 0));
    say("fd -2=%ld", sfd4(-2, &m, 8, 0));
    say("fd 2^32-1=%d", sfd4(0xffffffffl, &m, 8, 0) >= 3);
    long plain = sfd3(-1, &m, 8);
    say("signalfd(-1)=%d getfl=%#o getfd=%d", plain >= 3, fcntl((int)plain, F_GETFL) & ~0100000,
        fcntl((int)plain, F_GETFD));
}

static int the_fd;
static volatile int child_tid, stage;

static void *reader(void *arg) {
    (void)arg;
    __atomic_store_n(&child_tid, (int)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    struct ssi s[4];
    for (int i = 0; i < 3; i++) {
        long n = rd(the_fd, s, sizeof s);
        say("thread read=%ld", n);
        show(s, n);
        __atomic_store_n(&stage, i + 1, __ATOMIC_SEQ_CST);
    }
    struct pollfd pf = {.fd = the_fd, .events = POLLIN};
    int r = poll(&pf, 1, -1);
    say("thread poll=%d revents=%#x", r, pf.revents);
    say("thread read=%ld", rd(the_fd, s, sizeof s));
    __atomic_store_n(&stage, 4, __ATOMIC_SEQ_CST);
    /* With a file that never becomes ready (stdout, no events asked for) in the same poll. */
    struct pollfd two[2] = {{.fd = 1, .events = 0}, {.fd = the_fd, .events = POLLIN}};
    r = poll(two, 2, -1);
    say("thread poll with stdout=%d revents=%#x,%#x", r, two[0].revents, two[1].revents);
    say("thread read=%ld", rd(the_fd, s, sizeof s));
    return 0;
}

static void nap(void) {
    struct timespec t = {0, 30 * 1000 * 1000};
    nanosleep(&t, 0);
}

/* Wait for the reader to finish read number `n`, then give it time to block in the next. */
static void until(int n) {
    while (__atomic_load_n(&stage, __ATOMIC_SEQ_CST) < n)
        nap();
    nap();
}

static void mode_thread(void) {
    uint64_t m = bit(SIGUSR1) | bit(rtmin(2));
    block(m);
    the_fd = (int)sfd4(-1, &m, 8, 0);
    pthread_t t;
    pthread_create(&t, 0, reader, 0);
    until(0);
    kill(getpid(), SIGUSR1);
    until(1);
    queue(rtmin(2), 5);
    until(2);
    int tid = __atomic_load_n(&child_tid, __ATOMIC_SEQ_CST);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = rtmin(2);
    si.si_code = SI_QUEUE;
    si.si_value.sival_int = 6;
    si.si_pid = getpid();
    si.si_uid = getuid();
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, rtmin(2), &si))
        say("FAIL tgsigqueueinfo %s", strerror(errno));
    until(3);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
    until(4);
    kill(getpid(), SIGUSR1);
    pthread_join(t, 0);
    say("joined");
}

static volatile sig_atomic_t handled;
static void on_usr2(int sig) { handled = sig; }

static void *intr_reader(void *arg) {
    (void)arg;
    __atomic_store_n(&child_tid, (int)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    struct ssi s;
    long n = rd(the_fd, &s, sizeof s);
    say("first read=%ld handled=%d", n, handled);
    handled = 0;
    struct sigaction sa = {.sa_handler = on_usr2, .sa_flags = SA_RESTART};
    sigaction(SIGUSR2, &sa, 0);
    __atomic_store_n(&child_tid, -1, __ATOMIC_SEQ_CST);
    n = rd(the_fd, &s, sizeof s);
    say("restarted read=%ld signo=%u handled=%d", n, s.signo, handled);
    return 0;
}

static void mode_intr(void) {
    uint64_t m = bit(SIGUSR1);
    block(m);
    struct sigaction sa = {.sa_handler = on_usr2};
    sigaction(SIGUSR2, &sa, 0);
    the_fd = (int)sfd4(-1, &m, 8, 0);
    pthread_t t;
    pthread_create(&t, 0, intr_reader, 0);
    int tid;
    while (!(tid = __atomic_load_n(&child_tid, __ATOMIC_SEQ_CST)))
        nap();
    /* Until the first read ends: a signal before the read began only runs the handler. */
    while (__atomic_load_n(&child_tid, __ATOMIC_SEQ_CST) != -1) {
        nap();
        syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
    }
    nap();
    syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
    nap();
    kill(getpid(), SIGUSR1);
    pthread_join(t, 0);
    say("joined");
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "read"))
        mode_read();
    else if (!strcmp(m, "poll"))
        mode_poll();
    else if (!strcmp(m, "mask"))
        mode_mask();
    else if (!strcmp(m, "thread"))
        mode_thread();
    else if (!strcmp(m, "intr"))
        mode_intr();
    else {
        say("unknown mode");
        return 2;
    }
    return 0;
}
