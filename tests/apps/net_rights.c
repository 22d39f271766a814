/* SCM_RIGHTS of every kind of file, compared with Linux line by line (tests/net.rs). The
 * working directory is a volume under umon. Modes:
 *   local   one process passes a pipe's two ends, a file, an eventfd, a memfd, a timerfd, an
 *           epoll fd, a signalfd, a /proc file and directories (O_PATH too) to itself over a
 *           socketpair; each received fd is the same open file: shared offset and status flags,
 *           the same pipe, counter, memory, timer, items, lookups relative to it; bad fds in
 *           the array (EBADF); a control buffer too small for all of them (MSG_CTRUNC)
 *   fork    a forked child opens a file, makes a pipe and an eventfd after the fork and passes
 *           them to its parent, which reads what the child left: the file's offset, the pipe's
 *           bytes and end, the counter
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include "say.h"

static const char *e(long r) {
    return r < 0 ? strerrorname_np(errno) : "ok";
}

/* Send `n` fds in one message with one data byte. */
static void send_fds(int sock, const int *fds, int n) {
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 16)];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    long r = sendmsg(sock, &m, 0);
    say("sendmsg %d fds = %s", n, r < 0 ? strerrorname_np(errno) : "1");
}

/* Receive up to `room` fds; returns how many came, with MSG_CTRUNC reported. */
static int recv_fds(int sock, int *fds, int room, int flags) {
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 16)];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)room);
    long r = recvmsg(sock, &m, flags);
    if (r < 0) {
        say("recvmsg = %s", strerrorname_np(errno));
        return 0;
    }
    int n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)n);
        }
    say("recvmsg = %ld byte %c, %d fds:%s%s", r, byte, n, n > 0 ? "" : " none",
        m.msg_flags & MSG_CTRUNC ? " MSG_CTRUNC" : "");
    for (int i = 0; i < n; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        say("  fd %d, FD_CLOEXEC %d", fds[i], fl >= 0 && (fl & FD_CLOEXEC) != 0);
    }
    return n;
}

/* What /proc/self/fd/N reads as, without inode numbers (and a volume file's directory). */
static void link_of(int fd, char *l, size_t size) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, size - 1);
    if (n < 0) {
        snprintf(l, size, "(%s)", strerrorname_np(errno));
        return;
    }
    l[n] = 0;
    char *b = strchr(l, '[');
    if (b && strncmp(l, "anon_inode", 10) != 0)
        strcpy(b, "[N]");
    char *slash = strrchr(l, '/');
    if (slash && l[0] == '/' && strncmp(l, "/memfd:", 7) != 0)
        memmove(l, slash + 1, strlen(slash + 1) + 1);
}

/* The kind of a received file (its link text, unless `quiet`: umon names a signalfd
 * "pipe:[0]"), its mode and status flags (less O_NOFOLLOW, which umon's F_GETFL shows for
 * every volume file), and whether both agree with the sent fd's. */
static void kind(const char *what, int fd, int sent, int quiet) {
    char l[256], ls[256];
    link_of(fd, l, sizeof l);
    link_of(sent, ls, sizeof ls);
    struct stat st;
    fstat(fd, &st);
    int fl = fcntl(fd, F_GETFL), fs = fcntl(sent, F_GETFL);
    say("%s: %s, mode %o, flags %#x; link and flags as the sent fd's: %d %d", what,
        quiet ? "-" : l, st.st_mode, fl & ~O_NOFOLLOW, !strcmp(l, ls), fl == fs);
}

static void same_inode(const char *what, int a, int b) {
    struct stat x, y;
    fstat(a, &x);
    fstat(b, &y);
    say("%s: same inode %d", what, x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

static void local(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        say("socketpair %s", strerrorname_np(errno));
        exit(1);
    }
    int p[2];
    pipe2(p, O_CLOEXEC);
    int f = open("rights.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ev = eventfd(0, EFD_CLOEXEC);
    int mf = memfd_create("rights", MFD_CLOEXEC);
    int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sf = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
    int pf = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    say("made: pipe %d %d, file %d, eventfd %d, memfd %d, timerfd %d, epoll %d, signalfd %d, "
        "proc %d",
        p[0], p[1], f, ev, mf, tf, ep, sf, pf);

    int out[16] = {p[0], p[1], f, ev, mf, tf, ep, sf, pf};
    int in[16];
    send_fds(sv[0], out, 9);
    int n = recv_fds(sv[1], in, 9, MSG_CMSG_CLOEXEC);
    if (n != 9)
        exit(1);
    const char *names[] = {"pipe r", "pipe w", "file", "eventfd", "memfd", "timerfd", "epoll",
                           "signalfd", "proc"};
    for (int i = 0; i < 9; i++) {
        kind(names[i], in[i], out[i], i == 7);
        same_inode(names[i], out[i], in[i]);
    }

    /* The pipe: written through the received write end, read through the sent read end;
     * with every write end closed, end of file on the received read end. */
    say("write pipe: %zd", write(in[1], "ping", 4));
    char buf[64] = {0};
    say("read pipe: %zd %.4s", read(p[0], buf, sizeof buf), buf);
    close(p[1]);
    close(in[1]);
    say("read pipe after both writers closed: %zd", read(in[0], buf, sizeof buf));

    /* The file: one offset, one set of status flags. */
    say("write file: %zd", write(f, "abcdef", 6));
    say("offset via received: %ld", (long)lseek(in[2], 0, SEEK_CUR));
    say("lseek received to 2: %ld", (long)lseek(in[2], 2, SEEK_SET));
    say("read via sent: %zd %.4s", read(f, buf, 4), buf);
    say("F_SETFL O_APPEND via received: %s", e(fcntl(in[2], F_SETFL, O_APPEND)));
    say("flags via sent: append %d", (fcntl(f, F_GETFL) & O_APPEND) != 0);

    /* The eventfd: one counter. */
    uint64_t v = 5;
    say("eventfd write via received: %zd", write(in[3], &v, 8));
    v = 0;
    ssize_t got8 = read(ev, &v, 8);
    say("eventfd read via sent: %zd %llu", got8, (unsigned long long)v);

    /* The memfd: one file. */
    say("memfd write via sent: %zd", write(mf, "memory", 6));
    memset(buf, 0, sizeof buf);
    say("memfd pread via received: %zd %s", pread(in[4], buf, 6, 0), buf);
    say("memfd offset via received: %ld", (long)lseek(in[4], 0, SEEK_CUR));

    /* The timerfd: one timer. */
    struct itimerspec its = {{0, 0}, {100, 0}}, got;
    say("timerfd settime via sent: %s", e(timerfd_settime(tf, 0, &its, NULL)));
    const char *gt = e(timerfd_gettime(in[5], &got));
    say("timerfd gettime via received: %s, armed %d", gt, got.it_value.tv_sec > 90);

    /* The epoll fd: one set of items. */
    int q[2];
    pipe2(q, O_CLOEXEC);
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = 77};
    say("epoll_ctl via sent: %s", e(epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ee)));
    write(q[1], "x", 1);
    memset(&ee, 0, sizeof ee);
    int w = epoll_wait(in[6], &ee, 1, 0);
    say("epoll_wait via received: %d, data %llu", w, (unsigned long long)ee.data.u64);

    /* The signalfd: the same one. */
    raise(SIGUSR1);
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof si);
    ssize_t sr = read(in[7], &si, sizeof si);
    say("signalfd read via received: %zd signo %u", sr, si.ssi_signo);
    say("signalfd read via sent: %s", e(read(sf, &si, sizeof si)));

    /* The /proc file: readable. */
    memset(buf, 0, sizeof buf);
    say("proc read via received: %d", read(in[8], buf, 8) > 0);

    /* A directory, opened for reading and O_PATH: lookups relative to the received fds. */
    int d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dp = open(".", O_PATH | O_CLOEXEC);
    int dirs[2] = {d, dp};
    send_fds(sv[0], dirs, 2);
    if (recv_fds(sv[1], in, 2, 0) == 2) {
        kind("dir", in[0], d, 1);
        kind("O_PATH dir", in[1], dp, 1);
        say("openat(received dir, rights.txt): %s", e(openat(in[0], "rights.txt", O_RDONLY)));
        say("openat(received O_PATH dir, rights.txt): %s",
            e(openat(in[1], "rights.txt", O_RDONLY)));
        say("read(received O_PATH dir): %s", e(read(in[1], buf, 1)));
        say("fchdir(received dir): %s", e(fchdir(in[0])));
        say("open(rights.txt) after it: %s", e(open("rights.txt", O_RDONLY)));
    }

    /* Bad fds in the array: EBADF, nothing sent. */
    int bad[2] = {f, 999};
    send_fds(sv[0], bad, 2);
    int neg[1] = {-1};
    send_fds(sv[0], neg, 1);
    say("nothing queued: %s", e(recv(sv[1], buf, 1, MSG_DONTWAIT)));

    /* Three fds, room for two: MSG_CTRUNC, the third not installed. */
    int three[3] = {f, ev, mf};
    send_fds(sv[0], three, 3);
    int lowest = dup(0);
    close(lowest);
    int m2 = recv_fds(sv[1], in, 2, 0);
    int next = dup(0);
    say("after a truncated receive: %d fds, next free fd is %s", m2,
        next == lowest + m2 ? "right after them" : "elsewhere");
    close(next);
    for (int i = 0; i < m2; i++)
        same_inode("truncated", three[i], in[i]);
}

static void forked(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
        say("socketpair %s", strerrorname_np(errno));
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        int f = open("child.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        write(f, "from the child", 14);
        lseek(f, 5, SEEK_SET);
        int p[2];
        pipe2(p, O_CLOEXEC);
        write(p[1], "child bytes", 11);
        int ev = eventfd(42, EFD_CLOEXEC);
        int mf = memfd_create("child", MFD_CLOEXEC);
        write(mf, "child memfd", 11);
        int fds[4] = {f, p[0], ev, mf};
        send_fds(sv[1], fds, 4);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    say("child exited %d", WEXITSTATUS(st));
    int in[16];
    int n = recv_fds(sv[0], in, 4, 0);
    if (n != 4)
        exit(1);
    kind("file", in[0], in[0], 0);
    kind("pipe", in[1], in[1], 0);
    kind("eventfd", in[2], in[2], 0);
    kind("memfd", in[3], in[3], 0);
    char buf[64] = {0};
    say("file offset: %ld", (long)lseek(in[0], 0, SEEK_CUR));
    say("file read: %zd %s", read(in[0], buf, sizeof buf - 1), buf);
    memset(buf, 0, sizeof buf);
    say("pipe read: %zd %s", read(in[1], buf, sizeof buf - 1), buf);
    say("pipe read at the end: %zd", read(in[1], buf, sizeof buf - 1));
    uint64_t v = 0;
    ssize_t got8 = read(in[2], &v, 8);
    say("eventfd read: %zd %llu", got8, (unsigned long long)v);
    memset(buf, 0, sizeof buf);
    long off = (long)lseek(in[3], 0, SEEK_CUR);
    ssize_t pr = pread(in[3], buf, sizeof buf - 1, 0);
    say("memfd offset %ld, pread %zd %s", off, pr, buf);
    struct stat s1, s2;
    stat("child.txt", &s1);
    fstat(in[0], &s2);
    say("file is child.txt: %d", s1.st_ino == s2.st_ino);
}

int main(int argc, char **argv) {
    /* Fd numbers are compared: none inherited from the test harness. */
    close_range(3, ~0U, 0);
    const char *mode = argc > 1 ? argv[1] : "local";
    if (!strcmp(mode, "local"))
        local();
    else if (!strcmp(mode, "fork"))
        forked();
    else
        return 2;
    return 0;
}
