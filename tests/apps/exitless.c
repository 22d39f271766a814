/* Exit-less syscalls (tests/exitless.rs): calls the server answers, mixed with calls it must
 * give back, from one thread and from several, with signals arriving meanwhile. Every line
 * printed is what Linux gives, so the native run, umon with --exitless on and off all print
 * the same.
 *   mix N          one thread: N rounds of identity, clock, stat-like and file calls
 *   threads T N    T threads doing `mix` at once, each on its own file
 *   signals N      a 200 us interval timer while one thread loops on getppid/write; the
 *                  handler makes calls too
 *   fallback N     calls the server never takes (pipe I/O, nanosleep, mmap) between
 *                  served ones
 *   nonblock N     N rounds over non-blocking sockets, pipes and an eventfd: transfers,
 *                  EAGAIN on empty, epoll_ctl, socket queries, MSG_DONTWAIT, and EPIPE with a
 *                  SIGPIPE handler
 *   mutex T N      T threads each take a pthread mutex N times around a shared counter, and
 *                  two threads pass a token N times through a condition variable: futex
 *                  wakes the server answers, waits it gives back
 *   masks N        N rounds of rt_sigprocmask: block, a signal sent meanwhile stays pending,
 *                  unblocking runs its handler before the call returns; SIG_SETMASK, oldset,
 *                  SIGKILL/SIGSTOP never blocked, bad pointers, sizes and `how`; a thread
 *                  that blocks a process-directed signal leaves it to one that does not
 *   opens N        N rounds of opens the server answers (a file, O_CREAT|O_EXCL, a
 *                  directory, a missing name, /dev/null, bad pointers and flags), and opens of
 *                  a FIFO it must give back: one waits for a writer thread, as on Linux
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct sigaction (what rt_sigaction takes): handler, flags, restorer, mask. */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* A served rt_sigaction: SIG_IGN and SIG_DFL in turn for SIGUSR2 (never delivered: no
 * handler runs), the old action as set the round before, bad pointers, sizes and signals. */
static unsigned long dispositions(long i) {
    unsigned long bad = 0;
    struct ksigaction act = {.handler = (i & 1) ? SIG_IGN : SIG_DFL, .mask = (uint64_t)i << 1};
    struct ksigaction old;
    memset(&old, 0x5a, sizeof old);
    if (syscall(SYS_rt_sigaction, SIGUSR2, &act, &old, 8) != 0)
        bad += 1000000;
    if (i > 0 && old.handler != ((i & 1) ? SIG_DFL : SIG_IGN))
        bad += 1000000;
    if (syscall(SYS_rt_sigaction, SIGUSR2, (void *)8, NULL, 8) != -1 || errno != EFAULT)
        bad += 1000000;
    if (syscall(SYS_rt_sigaction, SIGUSR2, NULL, (void *)8, 8) != -1 || errno != EFAULT)
        bad += 1000000;
    if (syscall(SYS_rt_sigaction, SIGUSR2, &act, NULL, 4) != -1 || errno != EINVAL)
        bad += 1000000;
    if (syscall(SYS_rt_sigaction, SIGKILL, &act, NULL, 8) != -1 || errno != EINVAL)
        bad += 1000000;
    if (syscall(SYS_rt_sigaction, 65, NULL, &old, 8) != -1 || errno != EINVAL)
        bad += 1000000;
    return bad;
}

/* A pending, blocked SIGUSR2 that becomes ignored is dropped (Linux's do_sigaction), by
 * whoever answers the sigaction. */
static int ignoring_drops_a_pending_signal(void) {
    sigset_t usr2, pending;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
    sigaction(SIGUSR2, &dfl, NULL);
    raise(SIGUSR2);
    sigpending(&pending);
    int was = sigismember(&pending, SIGUSR2);
    sigaction(SIGUSR2, &ign, NULL);
    sigpending(&pending);
    int now = sigismember(&pending, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &usr2, NULL);
    sigaction(SIGUSR2, &dfl, NULL);
    return was == 1 && now == 0;
}

static unsigned long mix(int id, long n, const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/exitless-%d.dat", dir, id);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    int null = open("/dev/null", O_WRONLY);
    unsigned long sum = 0;
    pid_t pid = getpid();
    for (long i = 0; i < n; i++) {
        if (syscall(SYS_getpid) != pid || syscall(SYS_getppid) < 0 || syscall(SYS_getuid) < 0)
            sum += 1000000;
        struct utsname u;
        if (syscall(SYS_uname, &u) != 0 || strcmp(u.sysname, "Linux") != 0)
            sum += 1000000;
        char rec[32];
        int len = snprintf(rec, sizeof rec, "%d:%ld\n", id, i);
        if (syscall(SYS_write, fd, rec, len) != len)
            sum += 1000000;
        if (syscall(SYS_write, null, rec, len) != len)
            sum += 1000000;
        struct stat st;
        if (syscall(SYS_fstat, fd, &st) != 0)
            sum += 1000000;
        sum += st.st_size;
        char back[32];
        off_t at = st.st_size - len;
        if (syscall(SYS_pread64, fd, back, len, at) != len || memcmp(back, rec, len) != 0)
            sum += 1000000;
        if (syscall(SYS_lseek, fd, 0, SEEK_CUR) != st.st_size)
            sum += 1000000;
        struct timespec ts;
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0)
            sum += 1000000;
        /* Bad pointers and fds: the same errors whoever answers. */
        if (syscall(SYS_fstat, fd, (void *)8) != -1 || errno != EFAULT)
            sum += 1000000;
        if (syscall(SYS_write, 9999, rec, 1) != -1 || errno != EBADF)
            sum += 1000000;
        if (syscall(SYS_uname, (void *)-1L) != -1 || errno != EFAULT)
            sum += 1000000;
        if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) != 0 || st.st_size == 0)
            sum += 1000000;
        if (syscall(SYS_access, "/nonexistent-exitless", F_OK) != -1 || errno != ENOENT)
            sum += 1000000;
        /* Process-wide: threads of `threads` race on it, so only the first does it. */
        if (id == 0)
            sum += dispositions(i);
    }
    if (id == 0 && !ignoring_drops_a_pending_signal())
        sum += 1000000;
    close(null);
    close(fd);
    unlink(path);
    return sum;
}

struct job {
    int id;
    long n;
    const char *dir;
    unsigned long sum;
    pid_t tid;
};

static void *worker(void *arg) {
    struct job *j = arg;
    j->sum = mix(j->id, j->n, j->dir);
    j->tid = (pid_t)syscall(SYS_gettid);
    return NULL;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cv = PTHREAD_COND_INITIALIZER;
static long counter, turn_token;

static void *adder(void *arg) {
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Thread `me` (0 or 1) waits for the token to be even/odd, then passes it on. */
struct pass {
    int me;
    long n;
};

static void *passer(void *arg) {
    struct pass *p = arg;
    for (long i = 0; i < p->n; i++) {
        pthread_mutex_lock(&lock);
        while (turn_token % 2 != p->me)
            pthread_cond_wait(&turn_cv, &lock);
        turn_token++;
        pthread_cond_broadcast(&turn_cv);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static volatile sig_atomic_t ticks;
static volatile sig_atomic_t handler_bad;
static volatile sig_atomic_t pipes;

static void on_pipe(int sig) {
    (void)sig;
    pipes++;
}

/* A pointer the compiler cannot see through (it would warn about the bad access). */
static void *volatile bad_pointer = (void *)8;

static long nonblock(long n) {
    long bad = 0;
    int sv[2], dg[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) != 0 || pipe2(p, O_NONBLOCK) != 0)
        return -1;
    int ev = eventfd(0, EFD_NONBLOCK);
    int ep = epoll_create1(0);
    char buf[256];
    for (long i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "round %ld", i);
        if (write(sv[0], buf, len) != len || read(sv[1], buf, sizeof buf) != len)
            bad++;
        if (read(sv[1], buf, sizeof buf) != -1 || errno != EAGAIN)
            bad++;
        if (send(dg[0], buf, len, MSG_DONTWAIT) != len ||
            recv(dg[1], buf, sizeof buf, MSG_DONTWAIT) != len)
            bad++;
        if (recv(dg[1], buf, sizeof buf, MSG_DONTWAIT) != -1 || errno != EAGAIN)
            bad++;
        struct iovec iov = {buf, (size_t)len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (sendmsg(sv[1], &mh, 0) != len || recvmsg(sv[0], &mh, 0) != len)
            bad++;
        if (write(p[1], buf, len) != len || read(p[0], buf, sizeof buf) != len ||
            read(p[0], buf, 1) != -1 || errno != EAGAIN)
            bad++;
        uint64_t one = 1, got = 0, got2 = 0;
        if (write(ev, &one, 8) != 8 || read(ev, &got, 8) != 8 || got != 1)
            bad++;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockname(sv[0], (struct sockaddr *)&ss, &sl) != 0 ||
            getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
            bad++;
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0)
            bad++;
        /* Looks that do not wait: nothing ready, then the eventfd's event with its data. */
        struct epoll_event evs[4];
        if (epoll_wait(ep, evs, 4, 0) != 0)
            bad++;
        if (write(ev, &one, 8) != 8 || epoll_pwait(ep, evs, 4, 0, NULL) != 1 ||
            evs[0].data.u64 != (uint64_t)i || !(evs[0].events & EPOLLIN) || read(ev, &got2, 8) != 8)
            bad++;
        if (epoll_wait(ep, bad_pointer, 4, 0) != 0 || epoll_wait(ep, evs, 0, 0) != -1 || errno != EINVAL)
            bad++;
        if (epoll_ctl(ep, EPOLL_CTL_DEL, ev, NULL) != 0)
            bad++;
        if (epoll_ctl(ep, EPOLL_CTL_DEL, ev, NULL) != -1 || errno != ENOENT)
            bad++;
        /* Bad buffers on a non-blocking socket: Linux's answers either way. */
        if (write(sv[0], bad_pointer, 4) != -1 || errno != EFAULT)
            bad++;
    }
    /* EPIPE with SIGPIPE handled, on a pipe and a stream socket. */
    struct sigaction sa = {.sa_handler = on_pipe};
    sigaction(SIGPIPE, &sa, NULL);
    close(p[0]);
    if (write(p[1], "x", 1) != -1 || errno != EPIPE)
        bad++;
    close(sv[1]);
    if (send(sv[0], "x", 1, 0) != -1 || errno != EPIPE)
        bad++;
    printf("nonblock: sigpipes %d\n", (int)pipes);
    return bad;
}

static volatile sig_atomic_t usr1s;

static void on_usr1(int sig) {
    (void)sig;
    usr1s++;
}

static long sys_mask(int how, const uint64_t *set, uint64_t *old, long size) {
    long r = syscall(SYS_rt_sigprocmask, how, set, old, size);
    return r < 0 ? -errno : r;
}

static volatile int helper_go, helper_done;
static volatile sig_atomic_t helper_usr2;
static pthread_t main_thread;

static void on_usr2(int sig) {
    (void)sig;
    if (pthread_equal(pthread_self(), main_thread))
        helper_usr2 = -1000;
    else
        helper_usr2++;
}

/* Unblocks SIGUSR2 and spins on served calls until the main thread is done. */
static void *mask_helper(void *arg) {
    (void)arg;
    uint64_t none = 0;
    sys_mask(SIG_SETMASK, &none, NULL, 8);
    helper_go = 1;
    while (!helper_done)
        syscall(SYS_getppid);
    return NULL;
}

static long masks(long n) {
    long bad = 0;
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    uint64_t usr1 = 1ULL << (SIGUSR1 - 1), old = 0, cur = 0;
    for (long i = 0; i < n; i++) {
        long before = usr1s;
        if (sys_mask(SIG_BLOCK, &usr1, &old, 8) != 0 || (old & usr1))
            bad++;
        kill(getpid(), SIGUSR1);
        /* Served calls while it is pending and blocked: no handler runs. */
        for (int k = 0; k < 5; k++)
            syscall(SYS_getppid);
        sigset_t pend;
        sigpending(&pend);
        if (usr1s != before || !sigismember(&pend, SIGUSR1))
            bad++;
        /* Unblocking delivers before the call returns. */
        if (sys_mask(SIG_UNBLOCK, &usr1, &old, 8) != 0 || !(old & usr1) || usr1s != before + 1)
            bad++;
        /* SIG_SETMASK round trip, as glibc does around a critical section. */
        uint64_t all = ~0ULL;
        if (sys_mask(SIG_SETMASK, &all, &old, 8) != 0 || sys_mask(SIG_SETMASK, &old, &cur, 8) != 0)
            bad++;
        /* SIGKILL and SIGSTOP are never blocked. */
        if (cur & ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))))
            bad++;
        if (sys_mask(SIG_BLOCK, NULL, &cur, 8) != 0 || cur != old)
            bad++;
    }
    printf("masks: handler ran %ld times\n", (long)usr1s);
    printf("masks: bad size %ld, bad how %ld, bad set %ld, bad oldset %ld, null both %ld\n",
           sys_mask(SIG_BLOCK, &usr1, NULL, 4), sys_mask(7, &usr1, NULL, 8),
           sys_mask(SIG_BLOCK, bad_pointer, NULL, 8), sys_mask(SIG_BLOCK, &usr1, bad_pointer, 8),
           sys_mask(9, NULL, NULL, 8));
    /* A process-directed SIGUSR2 while this thread blocks it goes to the helper, which does
     * not: served masks decide which thread takes it. */
    main_thread = pthread_self();
    struct sigaction sb = {.sa_handler = on_usr2};
    sigaction(SIGUSR2, &sb, NULL);
    uint64_t usr2 = 1ULL << (SIGUSR2 - 1);
    sys_mask(SIG_BLOCK, &usr2, NULL, 8);
    pthread_t t;
    pthread_create(&t, NULL, mask_helper, NULL);
    while (!helper_go)
        syscall(SYS_getppid);
    for (int k = 0; k < 5; k++) {
        kill(getpid(), SIGUSR2);
        /* Until the helper took it (a test's --timeout ends a wait that never ends). */
        while (helper_usr2 <= k)
            syscall(SYS_getppid);
    }
    helper_done = 1;
    pthread_join(t, NULL);
    printf("masks: the helper took %d of 5\n", (int)helper_usr2);
    sys_mask(SIG_UNBLOCK, &usr2, NULL, 8);
    return bad;
}

static void *fifo_writer(void *arg) {
    const char *fifo = arg;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int w = open(fifo, O_WRONLY);
    if (w >= 0) {
        if (write(w, "through the fifo", 16) != 16)
            w = -1;
        close(w);
    }
    return NULL;
}

static long opens(long n, const char *dir) {
    long bad = 0;
    char file[512], made[512], fifo[512];
    snprintf(file, sizeof file, "%s/opens-file", dir);
    snprintf(fifo, sizeof fifo, "%s/opens-fifo", dir);
    int f = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || write(f, "0123456789", 10) != 10)
        bad += 1000;
    close(f);
    for (long i = 0; i < n; i++) {
        struct stat st;
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size != 10 || close(fd) != 0)
            bad++;
        snprintf(made, sizeof made, "%s/opens-%ld", dir, i);
        fd = openat(AT_FDCWD, made, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0)
            bad++;
        if (open(made, O_RDWR | O_CREAT | O_EXCL, 0600) != -1 || errno != EEXIST)
            bad++;
        if (unlink(made) != 0)
            bad++;
        fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || close(fd) != 0)
            bad++;
        if (open(file, O_RDONLY | O_DIRECTORY) != -1 || errno != ENOTDIR)
            bad++;
        if (open("/no/such/dir/x", O_RDONLY) != -1 || errno != ENOENT)
            bad++;
        fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0)
            bad++;
        if (syscall(SYS_openat, AT_FDCWD, bad_pointer, O_RDONLY) != -1 || errno != EFAULT)
            bad++;
        if (syscall(SYS_openat, 9999, "rel", O_RDONLY) != -1 || errno != EBADF)
            bad++;
    }
    /* A FIFO: a reader's open waits for a writer (given back by the server, served on the
     * exit path); O_NONBLOCK opens of one do not wait (read: at once; write: ENXIO). */
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0)
        return bad + 1000000;
    for (int k = 0; k < 20; k++)
        syscall(SYS_getppid);
    int nb = open(fifo, O_WRONLY | O_NONBLOCK);
    printf("opens: fifo nonblocking write without a reader: %s\n",
           nb == -1 && errno == ENXIO ? "ENXIO" : "other");
    nb = open(fifo, O_RDONLY | O_NONBLOCK);
    printf("opens: fifo nonblocking read: %s\n", nb >= 0 ? "opened" : "failed");
    close(nb);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        pthread_create(&t, NULL, fifo_writer, fifo);
        /* Calls in a row keep the server polling, so it is the server that meets the FIFO. */
        for (int k = 0; k < 20; k++)
            syscall(SYS_getppid);
        int r = open(fifo, O_RDONLY);
        char buf[32] = {0};
        long got = r >= 0 ? read(r, buf, sizeof buf - 1) : -1;
        pthread_join(t, NULL);
        printf("opens: fifo round %d: %ld %s\n", round, got, buf);
        close(r);
    }
    unlink(fifo);
    unlink(file);
    return bad;
}

static void on_alarm(int sig) {
    (void)sig;
    if (syscall(SYS_getppid) < 0 || syscall(SYS_getpid) != getpid())
        handler_bad = 1;
    ticks++;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "mix";
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "mix") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 1000;
        printf("mix: %lu\n", mix(0, n, dir));
    } else if (strcmp(mode, "threads") == 0) {
        int t = argc > 2 ? atoi(argv[2]) : 4;
        long n = argc > 3 ? atol(argv[3]) : 1000;
        struct job jobs[16];
        pthread_t th[16];
        if (t > 16)
            t = 16;
        for (int i = 0; i < t; i++) {
            jobs[i] = (struct job){.id = i + 1, .n = n, .dir = dir};
            pthread_create(&th[i], NULL, worker, &jobs[i]);
        }
        int distinct = 1;
        for (int i = 0; i < t; i++) {
            pthread_join(th[i], NULL);
            printf("thread %d: %lu\n", i + 1, jobs[i].sum);
            for (int k = 0; k < i; k++)
                if (jobs[k].tid == jobs[i].tid)
                    distinct = 0;
        }
        printf("tids distinct: %d\n", distinct);
    } else if (strcmp(mode, "signals") == 0) {
        long want = argc > 2 ? atol(argv[2]) : 200;
        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 200}, {0, 200}};
        setitimer(ITIMER_REAL, &it, NULL);
        int null = open("/dev/null", O_WRONLY);
        long calls = 0, bad = 0;
        while (ticks < want) {
            if (syscall(SYS_getppid) < 0)
                bad++;
            if (syscall(SYS_write, null, "x", 1) != 1 && errno != EINTR)
                bad++;
            calls++;
        }
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        printf("signals: ticks >= %ld, bad %ld, handler bad %d, calls > 0: %d\n", want, bad,
               (int)handler_bad, calls > 0);
    } else if (strcmp(mode, "fallback") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 200;
        int p[2];
        if (pipe(p) != 0)
            return 1;
        long bad = 0;
        for (long i = 0; i < n; i++) {
            char c = (char)('a' + i % 26), d = 0;
            if (syscall(SYS_getppid) < 0 || write(p[1], &c, 1) != 1 || read(p[0], &d, 1) != 1 ||
                d != c)
                bad++;
            if (i % 50 == 0) {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
                void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
                if (m == MAP_FAILED)
                    bad++;
                else {
                    /* A read of a fresh page by the monitor on the server: its page tables
                     * follow before the app touches it. */
                    int z = open("/dev/zero", O_RDONLY);
                    if (read(z, m, 8192) != 8192 || ((char *)m)[4096] != 0)
                        bad++;
                    ((char *)m)[4097] = 1;
                    close(z);
                    munmap(m, 8192);
                }
            }
        }
        printf("fallback: bad %ld\n", bad);
    } else if (strcmp(mode, "nonblock") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 300;
        printf("nonblock: bad %ld\n", nonblock(n));
    } else if (strcmp(mode, "mutex") == 0) {
        int t = argc > 2 ? atoi(argv[2]) : 4;
        long n = argc > 3 ? atol(argv[3]) : 10000;
        pthread_t th[16];
        if (t > 16)
            t = 16;
        for (int i = 0; i < t; i++)
            pthread_create(&th[i], NULL, adder, &n);
        for (int i = 0; i < t; i++)
            pthread_join(th[i], NULL);
        printf("mutex: counter %ld of %ld\n", counter, (long)t * n);
        struct pass a = {0, n / 10}, b = {1, n / 10};
        pthread_create(&th[0], NULL, passer, &a);
        pthread_create(&th[1], NULL, passer, &b);
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
        printf("condvar: token %ld of %ld\n", turn_token, 2 * (n / 10));
    } else if (strcmp(mode, "masks") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 200;
        printf("masks: bad %ld\n", masks(n));
    } else if (strcmp(mode, "opens") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 300;
        printf("opens: bad %ld\n", opens(n, dir));
    } else {
        fprintf(stderr, "usage: exitless mix|threads|signals|fallback|nonblock|mutex|masks|opens\n");
        return 2;
    }
    return 0;
}
