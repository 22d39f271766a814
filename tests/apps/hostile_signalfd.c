// Hostile use of signalfd (tests/hostile_longtail2.rs): reads with bad buffers and sizes while
// a signal is pending (and whether it is still pending after), the calls a signalfd has no use
// for, signalfd4 on fds of the wrong kind, and threads that read a signalfd another thread
// closes or changes the mask of.
#include "hostile_common.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>

struct ssi { uint32_t signo; int32_t err, code; uint32_t pid, uid; int32_t fd; uint32_t tid, band,
             overrun, trapno; int32_t status, int_; uint64_t ptr, utime, stime, addr; uint16_t lsb;
             uint8_t pad[46]; };

#define SFD_NONBLOCK O_NONBLOCK
// 0 for an fd (its number may differ), else the error.
static long ok0(long r) { return r >= 0 ? 0 : r; }
static long sfd4(long fd, void *mask, long size, long flags) { return SYS(SYS_signalfd4, fd, mask, size, flags); }

// Whether SIGUSR1 is still pending for the thread after a failed read.
static int pending_usr1(void) {
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, SIGUSR1);
}

static void calls(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int fd = (int)sfd4(-1, &m, 8, SFD_NONBLOCK);
    struct ssi s;
    // The kernel half fails access_ok (the signal stays queued); a user address that cannot
    // be written loses the signal, dequeued before the copy.
    for (int i = 0; i < N_BAD; i++) {
        raise(SIGUSR1);
        char l[64];
        snprintf(l, sizeof l, "read into %s", bad_name[i]);
        SHOW(l, SYS(SYS_read, fd, bad_ptr(i), sizeof s));
        say("  still pending %d", pending_usr1());
        SYS(SYS_read, fd, &s, sizeof s);
    }
    raise(SIGUSR1);
    SHOW("read len 127", SYS(SYS_read, fd, &s, 127));
    SHOW("read len 0", SYS(SYS_read, fd, &s, 0));
    // Not compared: a length past the user half (access_ok, EFAULT on Linux; umon clamps the
    // length first).
    say("  still pending %d", pending_usr1());
    SHOW("read", SYS(SYS_read, fd, &s, sizeof s));
    SHOW("read none pending", SYS(SYS_read, fd, &s, sizeof s));
    SHOW("pread", SYS(SYS_pread64, fd, &s, sizeof s, 0));
    SHOW("write", SYS(SYS_write, fd, &s, sizeof s));
    SHOW("lseek", SYS(SYS_lseek, fd, 0, SEEK_SET));
    SHOW("ftruncate", SYS(SYS_ftruncate, fd, 0));
    SHOW("fsync", SYS(SYS_fsync, fd));
    SHOW("ioctl TCGETS", SYS(SYS_ioctl, fd, 0x5401, &s));
    SHOW("getdents64", SYS(SYS_getdents64, fd, &s, sizeof s));
    SHOW("mmap", mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ? -errno : 0);
    int pathfd = open("/", O_PATH);
    int ifd = (int)SYS(SYS_inotify_init1, 0);
    int memfd = (int)SYS(SYS_memfd_create, "m", 0);
    int kinds[] = {pathfd, ifd, memfd, 1, 999, -2, INT32_MIN};
    const char *kind[] = {"O_PATH", "inotify", "memfd", "stdout", "closed", "-2", "INT_MIN"};
    for (int i = 0; i < 7; i++)
        say("signalfd4 on %s = %ld", kind[i], sfd4(kinds[i], &m, 8, 0));
    for (int i = 0; i < N_BAD; i++) {
        char l[64];
        snprintf(l, sizeof l, "update mask %s", bad_name[i]);
        SHOW(l, ok0(sfd4(fd, bad_ptr(i), 8, 0)));
    }
    long sizes[] = {0, 4, 16, 128, -8, 1l << 32 | 8};
    for (int i = 0; i < 6; i++) say("size %ld = %ld", sizes[i], ok0(sfd4(-1, &m, sizes[i], 0)));
    long flags[] = {O_RDONLY | 1, O_APPEND, 0x80000000l, 1l << 32, -1};
    for (int i = 0; i < 5; i++) say("flags %#lx = %ld", flags[i], ok0(sfd4(-1, &m, 8, flags[i])));
    // SIGKILL and SIGSTOP are dropped from a mask, silently.
    sigset_t all;
    sigfillset(&all);
    int every = (int)sfd4(-1, &all, 8, SFD_NONBLOCK);
    SHOW("a mask with every signal", every >= 0);
    struct pollfd p = {.fd = every, .events = POLLIN | POLLOUT};
    SHOW("poll nothing pending", SYS(SYS_poll, &p, 1, 0));
    say("  revents %#x", p.revents);
}

static int rfd;
static volatile int stage, stop;
static long odd;

static void *reader(void *arg) {
    (void)arg;
    struct ssi s;
    __atomic_store_n(&stage, 1, __ATOMIC_SEQ_CST);
    long n = SYS(SYS_read, rfd, &s, sizeof s);
    say("reader: read %ld signo %u", n, n > 0 ? s.signo : 0);
    return NULL;
}

static void *poller(void *arg) {
    (void)arg;
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    struct ssi s[4];
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        long n = SYS(SYS_read, rfd, s, sizeof s);
        if (n != -EAGAIN && n != -EBADF && (n <= 0 || n % sizeof s[0]))
            __atomic_add_fetch(&odd, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void race(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    // A blocking read of a signalfd the main thread closes: the read holds the file and still
    // takes the signal sent after the close.
    rfd = (int)sfd4(-1, &m, 8, 0);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    while (!__atomic_load_n(&stage, __ATOMIC_SEQ_CST)) sched_yield();
    usleep(50000);
    SHOW("close while read", close(rfd));
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    // Threads read non-blocking while the main thread changes the mask, sends itself signals,
    // closes and re-makes the fd.
    rfd = (int)sfd4(-1, &m, 8, SFD_NONBLOCK);
    pthread_t w[2];
    for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, poller, NULL);
    long bad = 0;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    for (int i = 0; i < 2000; i++) {
        if (sfd4(rfd, i % 2 ? &m : &one, 8, 0) != rfd) bad++;
        kill(getpid(), i % 2 ? SIGUSR1 : SIGUSR2);
        if (i % 100 == 99) {
            int fd = rfd;
            close(fd);
            if (sfd4(-1, &m, 8, SFD_NONBLOCK) != fd) bad++;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    SHOW("race: failed updates", bad);
    SHOW("race: reads other than records, EAGAIN, EBADF", odd);
}

int main(int argc, char **argv) {
    bad_addresses();
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "calls")) calls();
    else if (!strcmp(mode, "race")) race();
    else return 2;
    return 0;
}
