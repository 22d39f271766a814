/* epoll of files umon serves without a host fd, compared with Linux line by line
 * (tests/events.rs). Modes:
 *   sigfd   a signalfd in an epoll set: level, edge and one-shot re-armed with MOD; with a pipe
 *           in the same set; maxevents 1; a blocking wait another thread's kill ends; the item
 *           gone with the signalfd's last fd; epoll_ctl's errors for it
 *   proc    /proc files: a process's own (EPERM) but its mounts, the global ones and /proc/sys
 *           (always readable)
 *   efault  an events array the kernel cannot write (wholly, or after one event): EFAULT or
 *           a short count, and the edge-triggered and one-shot events not taken stay queued
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
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

/* errno's name (musl has no strerrorname_np). */
static const char *errname(int n) {
    static char buf[16];
    switch (n) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EINTR: return "EINTR";
    case EFAULT: return "EFAULT";
    }
    snprintf(buf, sizeof buf, "errno %d", n);
    return buf;
}

static const char *e(long r) {
    return r < 0 ? errname(errno) : "ok";
}

static int by_data(const void *a, const void *b) {
    uint64_t x = ((const struct epoll_event *)a)->data.u64;
    uint64_t y = ((const struct epoll_event *)b)->data.u64;
    return x < y ? -1 : x > y;
}

/* One wait; the events sorted by their data. */
static void waitp(const char *what, int ep, int max, int ms) {
    struct epoll_event ev[16];
    int n = epoll_wait(ep, ev, max, ms);
    if (n < 0) {
        say("%s: %s", what, errname(errno));
        return;
    }
    qsort(ev, (size_t)n, sizeof ev[0], by_data);
    char line[512];
    int k = snprintf(line, sizeof line, "%s: %d", what, n);
    for (int i = 0; i < n && k < (int)sizeof line - 40; i++)
        k += snprintf(line + k, sizeof line - (size_t)k, " {%#x, %llu}", ev[i].events,
                      (unsigned long long)ev[i].data.u64);
    say("%s", line);
}

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, op, fd, &ev);
}

static void drain(int sf) {
    struct signalfd_siginfo si;
    while (read(sf, &si, sizeof si) > 0)
        ;
}

static void *killer(void *arg) {
    (void)arg;
    struct timespec t = {0, 50 * 1000 * 1000};
    nanosleep(&t, NULL);
    kill(getpid(), SIGUSR2);
    return NULL;
}

static void sigfd(void) {
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGUSR2);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sf = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    say("add signalfd: %s", e(ctl(ep, EPOLL_CTL_ADD, sf, EPOLLIN, 1)));
    say("add it again: %s", e(ctl(ep, EPOLL_CTL_ADD, sf, EPOLLIN, 1)));
    waitp("nothing pending", ep, 8, 0);
    raise(SIGUSR1);
    waitp("SIGUSR1 pending", ep, 8, 0);
    waitp("still pending (level)", ep, 8, 0);
    drain(sf);
    waitp("read", ep, 8, 0);

    say("mod EPOLLET: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN | EPOLLET, 2)));
    raise(SIGUSR1);
    waitp("edge", ep, 8, 0);
    waitp("edge again", ep, 8, 0);
    drain(sf);
    waitp("edge after read", ep, 8, 0);

    say("mod EPOLLONESHOT: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN | EPOLLONESHOT, 3)));
    raise(SIGUSR1);
    waitp("one-shot", ep, 8, 0);
    waitp("one-shot again", ep, 8, 0);
    say("mod re-arms: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN, 4)));
    waitp("re-armed", ep, 8, 0);
    say("mod EPOLLOUT only: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLOUT, 5)));
    waitp("EPOLLOUT only", ep, 8, 0);
    say("mod back: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN, 6)));

    /* With a readable pipe in the same set; maxevents 1. */
    int p[2];
    pipe2(p, O_CLOEXEC);
    write(p[1], "x", 1);
    say("add pipe: %s", e(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 7)));
    waitp("pipe and signalfd", ep, 8, 0);
    struct epoll_event one[2];
    say("maxevents 1: %d", epoll_wait(ep, one, 1, 0));
    drain(sf);
    char c;
    read(p[0], &c, 1);
    waitp("both drained", ep, 8, 0);

    /* A blocking wait another thread's kill ends. */
    pthread_t t;
    pthread_create(&t, NULL, killer, NULL);
    waitp("blocked until SIGUSR2", ep, 8, 5000);
    pthread_join(t, NULL);
    struct signalfd_siginfo si;
    ssize_t got = read(sf, &si, sizeof si);
    say("read: %zd signo %u", got, si.ssi_signo);

    /* The errors. */
    say("del: %s", e(epoll_ctl(ep, EPOLL_CTL_DEL, sf, NULL)));
    say("del again: %s", e(epoll_ctl(ep, EPOLL_CTL_DEL, sf, NULL)));
    say("mod absent: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN, 8)));
    say("add EPOLLEXCLUSIVE|EPOLLONESHOT: %s",
        e(ctl(ep, EPOLL_CTL_ADD, sf, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 8)));
    say("add EPOLLEXCLUSIVE: %s", e(ctl(ep, EPOLL_CTL_ADD, sf, EPOLLIN | EPOLLEXCLUSIVE, 9)));
    say("mod it: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN, 10)));
    say("mod with EPOLLEXCLUSIVE: %s", e(ctl(ep, EPOLL_CTL_MOD, sf, EPOLLIN | EPOLLEXCLUSIVE, 10)));
    say("op 9: %s", e(ctl(ep, 9, sf, EPOLLIN, 10)));

    /* Gone with its last fd. */
    int dupd = dup(sf);
    close(sf);
    raise(SIGUSR1);
    waitp("after closing one of two fds", ep, 8, 0);
    close(dupd);
    waitp("after closing the last", ep, 8, 0);
}

static void proc_files(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    const char *paths[] = {"/proc/self/stat",   "/proc/self/status",      "/proc/self/maps",
                           "/proc/self/mounts", "/proc/uptime",           "/proc/meminfo",
                           "/proc/cpuinfo",     "/proc/sys/kernel/ostype", "/proc/self/cmdline"};
    for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            say("%s: open %s", paths[i], errname(errno));
            continue;
        }
        say("%s: add %s", paths[i], e(ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, i)));
    }
    waitp("ready", ep, 16, 0);
    int d = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    say("/proc itself: add %s", e(ctl(ep, EPOLL_CTL_ADD, d, EPOLLIN, 99)));
}

/* epoll_wait without the wrapper's array-size attribute (the arrays here are bad on purpose). */
static int raw_wait(int ep, void *events, int max, int ms) {
    return (int)syscall(SYS_epoll_wait, ep, events, max, ms);
}

/* An events array the kernel cannot write: the events stay queued. */
static void efault(void) {
    int a[2], b[2];
    pipe2(a, O_CLOEXEC);
    pipe2(b, O_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ctl(ep, EPOLL_CTL_ADD, a[0], EPOLLIN | EPOLLET, 1);
    ctl(ep, EPOLL_CTL_ADD, b[0], EPOLLIN | EPOLLONESHOT, 2);
    say("nothing ready, bad array: %s", e(raw_wait(ep, (void *)16, 4, 0)));
    write(a[1], "x", 1);
    write(b[1], "x", 1);
    say("bad array: %s", e(raw_wait(ep, (void *)16, 4, 0)));
    say("bad array, waiting: %s", e(raw_wait(ep, (void *)16, 4, 1000)));
    waitp("still queued (edge and one-shot)", ep, 8, 0);
    waitp("then gone", ep, 8, 0);

    /* An array with room for one event before an inaccessible page. */
    long pg = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + pg, (size_t)pg, PROT_NONE);
    struct epoll_event *last = (struct epoll_event *)(two + pg - sizeof(struct epoll_event));
    int c[2];
    pipe2(c, O_CLOEXEC);
    ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLIN | EPOLLET, 3);
    ctl(ep, EPOLL_CTL_MOD, b[0], EPOLLIN | EPOLLET, 2);
    write(a[1], "x", 1);
    write(b[1], "x", 1);
    write(c[1], "x", 1);
    int n = raw_wait(ep, last, 4, 0);
    say("room for one: %d", n);
    waitp("the other two", ep, 8, 0);
    waitp("none left", ep, 8, 0);
    /* A signalfd item with a bad array. */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sf = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    ctl(ep, EPOLL_CTL_ADD, sf, EPOLLIN | EPOLLONESHOT, 4);
    raise(SIGUSR1);
    say("signalfd, bad array: %s", e(raw_wait(ep, (void *)16, 4, 0)));
    waitp("signalfd still reported", ep, 8, 0);
    waitp("one-shot done", ep, 8, 0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "sigfd";
    if (!strcmp(mode, "sigfd"))
        sigfd();
    else if (!strcmp(mode, "proc"))
        proc_files();
    else if (!strcmp(mode, "efault"))
        efault();
    else
        return 2;
    return 0;
}
