/* Sockets compared with Linux line by line (tests/net.rs). Modes:
 *   unix      AF_UNIX stream echo over a socket file "sock" in the working directory (a
 *             volume under umon), a datagram exchange over "dgram", an abstract name;
 *             getsockname/getpeername, EADDRINUSE, ECONNREFUSED after close, ENOENT
 *   pair      socketpair stream/dgram/seqpacket: echo, readv/writev, sendmsg/recvmsg with
 *             iovecs, MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, shutdown, poll, fstat, options
 *   udp       UDP round trip on 127.0.0.1 (needs --net host)
 *   tcp       TCP echo on 127.0.0.1 between two threads, 4 MiB with a checksum (--net host)
 *   none      what an empty network namespace answers (umon --net none; natively in one)
 *   hostile   bad addresses, lengths, flags and options: Linux's errors
 *   rights    SCM_RIGHTS: a socket passed over a socketpair works on the receiving fd;
 *             SCM_CREDENTIALS with the sender's own pid; bad control messages
 *   fork      after fork, the child listens on an abstract name and a socket file, the parent
 *             connects to both (host sockets are shared across fork as on Linux)
 *   mmsg      sendmmsg/recvmmsg over a datagram socketpair: counts, msg_len, MSG_WAITFORONE,
 *             a bad header after a good one, the timeout, errors
 *   serve P   TCP echo server on the wildcard address, port P: one connection, then exit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "say.h"

static long sys(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}
#define S2(nr, a, b) sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(nr, a, b, c) sys(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(nr, a, b, c, d) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S5(nr, a, b, c, d, e) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define S6(nr, a, b, c, d, e, f) \
    sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#define CHECK(what, expr)                                  \
    do {                                                   \
        long r_ = (expr);                                  \
        say("%s = %s", what, r_ < 0 ? strerror(-r_) : "ok"); \
    } while (0)

static void die(const char *what, long r) {
    say("FAIL %s: %ld", what, r);
    exit(1);
}

static struct sockaddr_un un(const char *path, socklen_t *len) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (path[0] == '@') {
        memcpy(a.sun_path + 1, path + 1, strlen(path) - 1);
        *len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
    } else {
        strcpy(a.sun_path, path);
        *len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
    }
    return a;
}

static void show_name(const char *what, int fd, int peer) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    long r = peer ? S3(SYS_getpeername, fd, &ss, &len) : S3(SYS_getsockname, fd, &ss, &len);
    if (r < 0) {
        say("%s: %s", what, strerror(-r));
        return;
    }
    if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *u = (void *)&ss;
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (n > 0 && u->sun_path[0] == 0)
            say("%s: len %u abstract '%.*s'", what, len, (int)n - 1, u->sun_path + 1);
        else
            say("%s: len %u path '%.*s'", what, len, (int)n, u->sun_path);
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *i = (void *)&ss;
        say("%s: len %u inet %s port %s", what, len, inet_ntoa(i->sin_addr),
            ntohs(i->sin_port) ? "set" : "0");
    } else {
        say("%s: len %u family %d", what, len, ss.ss_family);
    }
}

static int accepted = -1;
static void *echo_once(void *arg) {
    int l = (int)(long)arg;
    int c = (int)S4(SYS_accept4, l, 0, 0, SOCK_CLOEXEC);
    if (c < 0)
        die("accept4", c);
    accepted = c;
    char buf[4096];
    long n;
    while ((n = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, n) != n)
            die("echo write", -errno);
    return 0;
}

/* The accepted connection's names, shown once the server thread is done. */
static void show_accepted(void) {
    show_name("accepted peer", accepted, 1);
    show_name("accepted local", accepted, 0);
    close(accepted);
}

static void echo_client(int fd, const char *msg) {
    char buf[256];
    if (write(fd, msg, strlen(msg)) != (long)strlen(msg))
        die("write", -errno);
    long n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        die("read", -errno);
    buf[n] = 0;
    say("echoed '%s'", buf);
}

static void unix_mode(void) {
    unlink("sock");
    unlink("dgram");
    socklen_t len;
    struct sockaddr_un a = un("sock", &len);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("bind sock", S3(SYS_bind, l, &a, len));
    CHECK("bind sock again (new socket)", S3(SYS_bind, socket(AF_UNIX, SOCK_STREAM, 0), &a, len));
    CHECK("listen", S2(SYS_listen, l, 4));
    show_name("listener", l, 0);
    struct stat st;
    CHECK("stat sock", stat("sock", &st));
    say("sock is a socket: %d", S_ISSOCK(st.st_mode));
    pthread_t t;
    pthread_create(&t, 0, echo_once, (void *)(long)l);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("connect sock", S3(SYS_connect, c, &a, len));
    show_name("client peer", c, 1);
    show_name("client local", c, 0);
    echo_client(c, "hello over a socket file");
    close(c);
    pthread_join(t, 0);
    show_accepted();
    close(l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("connect after the listener closed", S3(SYS_connect, c, &a, len));
    struct sockaddr_un missing = un("no-such-socket", &len);
    CHECK("connect missing", S3(SYS_connect, c, &missing, len));
    struct sockaddr_un nodir = un("no-dir/sock", &len);
    CHECK("bind in a missing directory", S3(SYS_bind, c, &nodir, len));
    close(c);

    /* datagrams between two named sockets */
    int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un da = un("dgram", &len);
    CHECK("bind dgram", S3(SYS_bind, d1, &da, len));
    CHECK("sendto dgram", S6(SYS_sendto, d2, "datagram one", 12, 0, &da, len));
    char buf[64] = {0};
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    long n = S6(SYS_recvfrom, d1, buf, sizeof buf, 0, &from, &flen);
    say("recvfrom %ld '%s' from len %u", n, buf, flen);
    unlink("dgram");

    /* abstract names */
    struct sockaddr_un ab = un("@umon-net-test-abstract", &len);
    int al = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("bind abstract", S3(SYS_bind, al, &ab, len));
    CHECK("listen abstract", S2(SYS_listen, al, 1));
    show_name("abstract listener", al, 0);
    pthread_create(&t, 0, echo_once, (void *)(long)al);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("connect abstract", S3(SYS_connect, c, &ab, len));
    show_name("abstract peer", c, 1);
    echo_client(c, "hello over an abstract name");
    close(c);
    pthread_join(t, 0);
    show_accepted();
    close(al);
    /* autobind */
    int auto_s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam = {.sun_family = AF_UNIX};
    CHECK("autobind", S3(SYS_bind, auto_s, &fam, offsetof(struct sockaddr_un, sun_path)));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(auto_s, (void *)&ss, &sl);
    say("autobind name length %u", sl);
    unlink("sock");
}

static void pair_mode(void) {
    int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    const char *names[] = {"stream", "dgram", "seqpacket"};
    for (int i = 0; i < 3; i++) {
        int sv[2];
        CHECK(names[i], S4(SYS_socketpair, AF_UNIX, types[i] | SOCK_CLOEXEC, 0, sv));
        say("fds %d %d cloexec %d", sv[0], sv[1], fcntl(sv[0], F_GETFD));
        struct iovec out[3] = {{"ab", 2}, {"cde", 3}, {"fghi", 4}};
        struct msghdr m = {.msg_iov = out, .msg_iovlen = 3};
        say("sendmsg %ld", S3(SYS_sendmsg, sv[0], &m, 0));
        say("writev %ld", (long)writev(sv[0], out, 2));
        int unread = -1;
        CHECK("FIONREAD", ioctl(sv[1], FIONREAD, &unread) < 0 ? -errno : 0);
        say("unread %d", unread);
        char a[4] = {0}, b[16] = {0};
        struct iovec in[2] = {{a, 3}, {b, 15}};
        struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
        long n = S3(SYS_recvmsg, sv[1], &r, MSG_PEEK);
        say("peek %ld '%s' '%s' flags %x", n, a, b, r.msg_flags);
        memset(a, 0, 4);
        memset(b, 0, 16);
        struct iovec small[1] = {{a, 3}};
        struct msghdr r2 = {.msg_iov = small, .msg_iovlen = 1};
        n = S3(SYS_recvmsg, sv[1], &r2, 0);
        say("recvmsg %ld '%s' flags %x namelen %u ctl %zu", n, a, r2.msg_flags, r2.msg_namelen,
            r2.msg_controllen);
        n = S6(SYS_recvfrom, sv[1], b, 15, MSG_DONTWAIT, 0, 0);
        say("recvfrom %ld '%s'", n, b);
        n = S6(SYS_recvfrom, sv[1], b, 15, MSG_DONTWAIT, 0, 0);
        say("recvfrom again %ld", n);
        if (types[i] != SOCK_STREAM) {
            char big[100];
            memset(big, 'x', sizeof big);
            S6(SYS_sendto, sv[0], big, sizeof big, 0, 0, 0);
            say("trunc recv %ld", S6(SYS_recvfrom, sv[1], b, 10, MSG_TRUNC, 0, 0));
        }
        struct pollfd p[2] = {{sv[0], POLLIN | POLLOUT, 0}, {sv[1], POLLIN | POLLOUT, 0}};
        poll(p, 2, 0);
        say("poll %x %x", p[0].revents, p[1].revents);
        struct stat st;
        fstat(sv[0], &st);
        say("fstat socket %d", S_ISSOCK(st.st_mode));
        int v = 0;
        socklen_t vl = sizeof v;
        CHECK("SO_TYPE", S5(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
        say("type %d len %u", v, vl);
        vl = sizeof v;
        S5(SYS_getsockopt, sv[0], SOL_SOCKET, SO_DOMAIN, &v, &vl);
        say("domain %d", v);
        struct ucred cr;
        vl = sizeof cr;
        CHECK("SO_PEERCRED", S5(SYS_getsockopt, sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &vl));
        say("peer is me %d uid ok %d", cr.pid == getpid(), cr.uid == getuid());
        v = 65536;
        CHECK("SO_SNDBUF set", S5(SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
        CHECK("shutdown WR", S2(SYS_shutdown, sv[0], SHUT_WR));
        if (types[i] == SOCK_STREAM) {
            say("read after peer shutdown %ld", (long)read(sv[1], b, 4));
            signal(SIGPIPE, SIG_IGN);
            long w = write(sv[0], "x", 1);
            say("write after shutdown %ld %s", w, strerror(errno));
            CHECK("send after shutdown", S6(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, 0, 0));
        }
        show_name("pair name", sv[0], 0);
        show_name("pair peer", sv[0], 1);
        close(sv[0]);
        close(sv[1]);
    }
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    say("nonblock flag %d", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
    char c;
    long rr = read(sv[0], &c, 1);
    say("nonblock read %ld %s", rr, strerror(errno));
}

static int inet_sock(int type, struct sockaddr_in *a) {
    int s = socket(AF_INET, type, 0);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = 0;
    long r = S3(SYS_bind, s, a, sizeof *a);
    if (r < 0)
        die("bind loopback", r);
    socklen_t l = sizeof *a;
    getsockname(s, (void *)a, &l);
    return s;
}

static void udp_mode(void) {
    struct sockaddr_in a1, a2;
    int s1 = inet_sock(SOCK_DGRAM, &a1), s2 = inet_sock(SOCK_DGRAM, &a2);
    show_name("udp", s1, 0);
    for (int i = 0; i < 3; i++) {
        char msg[32], buf[64] = {0};
        snprintf(msg, sizeof msg, "ping %d", i);
        say("sendto %ld", S6(SYS_sendto, s1, msg, strlen(msg), 0, &a2, sizeof a2));
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        long n = S6(SYS_recvfrom, s2, buf, sizeof buf, 0, &from, &fl);
        say("got %ld '%s' from the sender %d", n, buf, from.sin_port == a1.sin_port);
        S6(SYS_sendto, s2, buf, n, 0, &from, fl);
        n = S6(SYS_recvfrom, s1, buf, sizeof buf, 0, 0, 0);
        say("reply %ld", n);
    }
    CHECK("connect udp", S3(SYS_connect, s1, &a2, sizeof a2));
    show_name("udp peer", s1, 1);
    say("send connected %ld", S6(SYS_sendto, s1, "x", 1, 0, 0, 0));
}

static uint64_t sum;
static void *tcp_sink(void *arg) {
    int c = (int)S4(SYS_accept4, (int)(long)arg, 0, 0, 0);
    char buf[65536];
    long n, total = 0;
    while ((n = read(c, buf, sizeof buf)) > 0) {
        for (long i = 0; i < n; i++)
            sum = sum * 31 + (unsigned char)buf[i];
        total += n;
    }
    say("sink got %ld", total);
    close(c);
    return 0;
}

static void tcp_mode(void) {
    struct sockaddr_in a;
    int l = inet_sock(SOCK_STREAM, &a);
    int one = 1;
    CHECK("SO_REUSEADDR", S5(SYS_setsockopt, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    CHECK("listen", S2(SYS_listen, l, 8));
    pthread_t t;
    pthread_create(&t, 0, tcp_sink, (void *)(long)l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("connect", S3(SYS_connect, c, &a, sizeof a));
    CHECK("TCP_NODELAY", S5(SYS_setsockopt, c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    show_name("tcp peer", c, 1);
    static char buf[1 << 16];
    uint64_t mine = 0;
    for (int i = 0; i < 64; i++) {
        for (int j = 0; j < (int)sizeof buf; j++) {
            buf[j] = (char)(i * 7 + j * 13);
            mine = mine * 31 + (unsigned char)buf[j];
        }
        for (long off = 0; off < (long)sizeof buf;) {
            long w = i % 2 ? S6(SYS_sendto, c, buf + off, sizeof buf - off, 0, 0, 0)
                           : write(c, buf + off, sizeof buf - off);
            if (w <= 0)
                die("tcp write", w);
            off += w;
        }
    }
    close(c);
    pthread_join(t, 0);
    say("checksums match %d", mine == sum);
}

static void none_mode(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    say("socket inet %s", s < 0 ? strerror(errno) : "ok");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK("bind 127.0.0.1", S3(SYS_bind, s, &a, sizeof a));
    CHECK("connect 127.0.0.1", S3(SYS_connect, s, &a, sizeof a));
    a.sin_addr.s_addr = htonl(0x01020304);
    CHECK("connect 1.2.3.4", S3(SYS_connect, s, &a, sizeof a));
    a.sin_addr.s_addr = 0;
    CHECK("bind any:80", S3(SYS_bind, s, &a, sizeof a));
    show_name("bound", s, 0);
    CHECK("listen", S2(SYS_listen, s, 1));
    fcntl(s, F_SETFL, O_NONBLOCK);
    CHECK("accept", S4(SYS_accept4, s, 0, 0, 0));
    CHECK("getpeername", S3(SYS_getpeername, s, &a, &(socklen_t){sizeof a}));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK("udp sendto 127.0.0.1", S6(SYS_sendto, u, "x", 1, 0, &a, sizeof a));
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    a6.sin6_addr = in6addr_loopback;
    CHECK("connect ::1", S3(SYS_connect, s6, &a6, sizeof a6));
    CHECK("bind ::1", S3(SYS_bind, s6, &a6, sizeof a6));
    int l2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("listen unbound", S2(SYS_listen, l2, 1));
    show_name("listen unbound", l2, 0);
}

static void hostile_mode(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
    int p[2];
    pipe(p);
    char junk[200];
    memset(junk, 0, sizeof junk);
    CHECK("socket family 46", S3(SYS_socket, 46, SOCK_STREAM, 0));
    CHECK("socket family -1", S3(SYS_socket, -1, SOCK_STREAM, 0));
    CHECK("socket type 11", S3(SYS_socket, AF_UNIX, 11, 0));
    CHECK("socket bad flag", S3(SYS_socket, AF_UNIX, SOCK_STREAM | 0x10000, 0));
    CHECK("socket unix proto 7", S3(SYS_socket, AF_UNIX, SOCK_STREAM, 7));
    CHECK("socketpair inet", S4(SYS_socketpair, AF_INET, SOCK_STREAM, 0, p));
    CHECK("socketpair bad array", S4(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 8));
    CHECK("bind ebadf", S3(SYS_bind, 999, junk, 16));
    CHECK("bind a pipe", S3(SYS_bind, p[0], junk, 16));
    CHECK("bind len -1", S3(SYS_bind, s, junk, -1));
    CHECK("bind len 129", S3(SYS_bind, s, junk, 129));
    CHECK("bind bad pointer", S3(SYS_bind, s, 8, 16));
    CHECK("bind unix len 1", S3(SYS_bind, s, junk, 1));
    CHECK("bind unix family 0", S3(SYS_bind, s, junk, 16));
    CHECK("bind unix len 111", S3(SYS_bind, s, junk, 111));
    CHECK("bind inet short", S3(SYS_bind, t, junk, 8));
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    CHECK("bind inet family inet6", S3(SYS_bind, t, &six, sizeof six));
    CHECK("connect unix family inet6", S3(SYS_connect, s, &six, sizeof six));
    CHECK("connect inet short", S3(SYS_connect, t, junk, 1));
    CHECK("listen a pipe", S2(SYS_listen, p[0], 1));
    CHECK("accept4 bad flags", S4(SYS_accept4, s, 0, 0, 1));
    CHECK("accept unbound", S4(SYS_accept4, s, 0, 0, 0));
    CHECK("getsockname bad len ptr", S3(SYS_getsockname, s, junk, 8));
    int neg = -1;
    CHECK("getsockname len -1", S3(SYS_getsockname, s, junk, &neg));
    CHECK("getpeername unconnected", S3(SYS_getpeername, s, junk, &(socklen_t){16}));
    CHECK("getsockopt unknown", S5(SYS_getsockopt, s, SOL_SOCKET, 9999, junk, &(socklen_t){4}));
    CHECK("getsockopt level 9999", S5(SYS_getsockopt, t, 9999, 1, junk, &(socklen_t){4}));
    CHECK("getsockopt len -1", S5(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, junk, &neg));
    CHECK("getsockopt bad len ptr", S5(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, junk, 8));
    socklen_t two = 2;
    CHECK("getsockopt SO_TYPE len 2", S5(SYS_getsockopt, s, SOL_SOCKET, SO_TYPE, junk, &two));
    say("len now %u", two);
    CHECK("setsockopt short", S5(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, junk, 2));
    CHECK("setsockopt len -1", S5(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, junk, -1));
    CHECK("setsockopt bad ptr", S5(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, 8, 4));
    CHECK("setsockopt tcp on unix", S5(SYS_setsockopt, s, IPPROTO_TCP, TCP_NODELAY, junk, 4));
    CHECK("shutdown how 7", S2(SYS_shutdown, s, 7));
    CHECK("shutdown unconnected", S2(SYS_shutdown, s, SHUT_RD));
    struct msghdr m = {0};
    m.msg_iovlen = 1025;
    CHECK("sendmsg 1025 iovecs", S3(SYS_sendmsg, s, &m, 0));
    CHECK("recvmsg bad msghdr", S3(SYS_recvmsg, s, 8, 0));
    CHECK("sendto unconnected", S6(SYS_sendto, s, "x", 1, MSG_NOSIGNAL, 0, 0));
    CHECK("recvfrom a pipe", S6(SYS_recvfrom, p[0], junk, 1, 0, 0, 0));
    CHECK("recvfrom bad buffer", S6(SYS_recvfrom, s, 8, 1, MSG_DONTWAIT, 0, 0));
}

static void rights_mode(void) {
    int carrier[2], inner[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, carrier);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, inner);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {"F", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &inner[0], sizeof(int));
    say("sendmsg rights %ld", S3(SYS_sendmsg, carrier[0], &m, 0));
    close(inner[0]);
    char got[4] = {0};
    struct iovec in = {got, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } r;
    memset(&r, 0, sizeof r);
    struct msghdr rm = {.msg_iov = &in, .msg_iovlen = 1, .msg_control = r.buf,
                        .msg_controllen = sizeof r.buf};
    long n = S3(SYS_recvmsg, carrier[1], &rm, MSG_CMSG_CLOEXEC);
    say("recvmsg %ld '%s' controllen %zu flags %x", n, got, rm.msg_controllen, rm.msg_flags);
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    if (rc && rc->cmsg_type == SCM_RIGHTS) {
        int fd;
        memcpy(&fd, CMSG_DATA(rc), sizeof fd);
        say("cmsg len %zu level %d type %d cloexec %d", rc->cmsg_len, rc->cmsg_level,
            rc->cmsg_type, fcntl(fd, F_GETFD));
        say("send on the passed fd %ld", (long)write(fd, "through", 7));
        char b[16] = {0};
        say("peer got %ld '%s'", (long)read(inner[1], b, sizeof b), b);
        int ty = 0;
        socklen_t tl = sizeof ty;
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &ty, &tl);
        say("passed type %d", ty);
    }
    /* credentials of the sender itself */
    int one = 1;
    setsockopt(carrier[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    struct ucred cr = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    memset(&u, 0, sizeof u);
    m.msg_controllen = CMSG_SPACE(sizeof cr);
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof cr);
    memcpy(CMSG_DATA(c), &cr, sizeof cr);
    say("sendmsg creds %ld", S3(SYS_sendmsg, carrier[0], &m, 0));
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } cu;
    struct msghdr cm = {.msg_iov = &in, .msg_iovlen = 1, .msg_control = cu.buf,
                        .msg_controllen = sizeof cu.buf};
    n = S3(SYS_recvmsg, carrier[1], &cm, 0);
    struct cmsghdr *cc = CMSG_FIRSTHDR(&cm);
    if (cc && cc->cmsg_type == SCM_CREDENTIALS) {
        struct ucred rcr;
        memcpy(&rcr, CMSG_DATA(cc), sizeof rcr);
        say("creds %ld: pid is mine %d uid ok %d", n, rcr.pid == getpid(), rcr.uid == getuid());
    }
    /* bad control: a length below the header, a type nobody knows, a closed fd */
    memset(&u, 0, sizeof u);
    m.msg_controllen = CMSG_SPACE(sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = 8;
    CHECK("cmsg_len 8", S3(SYS_sendmsg, carrier[0], &m, 0));
    c->cmsg_len = CMSG_LEN(sizeof(int));
    c->cmsg_type = 77;
    CHECK("cmsg type 77", S3(SYS_sendmsg, carrier[0], &m, 0));
    c->cmsg_type = SCM_RIGHTS;
    int bad = 999;
    memcpy(CMSG_DATA(c), &bad, sizeof bad);
    CHECK("rights of a closed fd", S3(SYS_sendmsg, carrier[0], &m, 0));
}

/* sendmmsg/recvmmsg over a datagram socketpair: counts and msg_len, MSG_WAITFORONE, a bad
 * header after a good one (the count so far), the timeout looked at after each message, and
 * the errors. */
static void mmsg_mode(void) {
    int sv[2];
    CHECK("dgram pair", S4(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, sv));
    const char *txt[3] = {"one", "three!", "x"};
    struct iovec oi[3];
    struct mmsghdr out[3];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) {
        oi[i].iov_base = (void *)txt[i];
        oi[i].iov_len = strlen(txt[i]);
        out[i].msg_hdr.msg_iov = &oi[i];
        out[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_len = 99;
    }
    say("sendmmsg %ld", S4(SYS_sendmmsg, sv[0], out, 3, 0));
    for (int i = 0; i < 3; i++)
        say("sent msg_len[%d] %u", i, out[i].msg_len);
    char bufs[4][16];
    struct iovec ii[4];
    struct mmsghdr in[4];
    memset(in, 0, sizeof in);
    memset(bufs, 0, sizeof bufs);
    for (int i = 0; i < 4; i++) {
        ii[i].iov_base = bufs[i];
        ii[i].iov_len = 15;
        in[i].msg_hdr.msg_iov = &ii[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    say("recvmmsg WAITFORONE %ld", S5(SYS_recvmmsg, sv[1], in, 4, MSG_WAITFORONE, 0));
    for (int i = 0; i < 3; i++)
        say("got[%d] %u '%s' flags %x", i, in[i].msg_len, bufs[i], in[i].msg_hdr.msg_flags);
    say("recvmmsg DONTWAIT empty %ld", S5(SYS_recvmmsg, sv[1], in, 4, MSG_DONTWAIT, 0));
    say("sendmmsg vlen 0 %ld", S4(SYS_sendmmsg, sv[0], out, 0, 0));
    say("recvmmsg vlen 0 %ld", S5(SYS_recvmmsg, sv[1], in, 0, 0, 0));
    say("sendmmsg bad vector %ld", S4(SYS_sendmmsg, sv[0], 8, 2, 0));
    say("recvmmsg bad vector %ld", S5(SYS_recvmmsg, sv[1], 8, 2, MSG_DONTWAIT, 0));
    struct mmsghdr two[2];
    memset(two, 0, sizeof two);
    two[0] = out[0];
    two[1].msg_hdr.msg_iov = (struct iovec *)8;
    two[1].msg_hdr.msg_iovlen = 1;
    say("sendmmsg second bad %ld", S4(SYS_sendmmsg, sv[0], two, 2, 0));
    say("drain %ld", S5(SYS_recvmmsg, sv[1], in, 4, MSG_DONTWAIT, 0));
    say("sendmmsg two %ld", S4(SYS_sendmmsg, sv[0], out, 2, 0));
    struct timespec zero = {0, 0}, bad = {0, 2000000000};
    say("recvmmsg timeout 0 %ld", S5(SYS_recvmmsg, sv[1], in, 4, 0, &zero));
    say("recvmmsg rest %ld", S5(SYS_recvmmsg, sv[1], in, 4, MSG_DONTWAIT, 0));
    say("recvmmsg bad timeout %ld", S5(SYS_recvmmsg, sv[1], in, 4, 0, &bad));
    say("recvmmsg timeout pointer bad %ld", S5(SYS_recvmmsg, sv[1], in, 4, 0, 8));
    int p[2];
    if (pipe(p) == 0) {
        say("sendmmsg on a pipe %ld", S4(SYS_sendmmsg, p[1], out, 1, 0));
        say("recvmmsg on a pipe %ld", S5(SYS_recvmmsg, p[0], in, 1, 0, 0));
    }
    say("sendmmsg bad fd %ld", S4(SYS_sendmmsg, -1, out, 1, 0));
    /* A vector in read-only memory: the message goes out, then msg_len cannot be written:
     * EFAULT for the first message, though it was sent. */
    struct mmsghdr *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro != MAP_FAILED) {
        ro[0] = out[0];
        mprotect(ro, 4096, PROT_READ);
        say("sendmmsg read-only vector %ld", S4(SYS_sendmmsg, sv[0], ro, 1, 0));
        say("drain after it %ld", S5(SYS_recvmmsg, sv[1], in, 4, MSG_DONTWAIT, 0));
    }
    /* A header whose name pointer is bad and whose iovec count is too large: the name is
     * read first (EFAULT), as Linux's copy_msghdr_from_user. */
    struct mmsghdr odd;
    memset(&odd, 0, sizeof odd);
    odd.msg_hdr.msg_name = (void *)8;
    odd.msg_hdr.msg_namelen = 16;
    odd.msg_hdr.msg_iov = oi;
    odd.msg_hdr.msg_iovlen = 5000;
    say("sendmmsg bad name and iovlen %ld", S4(SYS_sendmmsg, sv[0], &odd, 1, 0));
}

static void fork_mode(void) {
    int ready[2];
    pipe(ready);
    unlink("forked");
    pid_t pid = fork();
    if (pid == 0) {
        socklen_t len, flen;
        struct sockaddr_un a = un("@umon-net-test-forked", &len);
        struct sockaddr_un f = un("forked", &flen);
        int l = socket(AF_UNIX, SOCK_STREAM, 0), lf = socket(AF_UNIX, SOCK_STREAM, 0);
        if (bind(l, (void *)&a, len) < 0 || listen(l, 1) < 0 || bind(lf, (void *)&f, flen) < 0 ||
            listen(lf, 1) < 0)
            _exit(1);
        write(ready[1], "r", 1);
        for (int i = 0; i < 2; i++) {
            int c = accept(i ? lf : l, 0, 0);
            write(c, i ? "hello from the file" : "hello from the abstract", i ? 19 : 23);
            close(c);
        }
        _exit(0);
    }
    char r;
    read(ready[0], &r, 1);
    for (int i = 0; i < 2; i++) {
        socklen_t len;
        struct sockaddr_un a = un(i ? "forked" : "@umon-net-test-forked", &len);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK("connect to the child's socket", S3(SYS_connect, c, &a, len));
        char buf[64] = {0};
        long n = read(c, buf, sizeof buf - 1);
        say("got %ld '%s'", n, buf);
        close(c);
    }
    int st;
    waitpid(pid, &st, 0);
    say("child exited %d", WEXITSTATUS(st));
    unlink("forked");
}

static void serve_mode(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    long r = S3(SYS_bind, l, &a, sizeof a);
    if (r < 0)
        die("bind", r);
    if (listen(l, 4) < 0)
        die("listen", -errno);
    socklen_t al = sizeof a;
    getsockname(l, (void *)&a, &al);
    say("listening on %d", ntohs(a.sin_port));
    echo_once((void *)(long)l);
    show_accepted();
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *m = argv[1];
    if (!strcmp(m, "unix"))
        unix_mode();
    else if (!strcmp(m, "pair"))
        pair_mode();
    else if (!strcmp(m, "udp"))
        udp_mode();
    else if (!strcmp(m, "tcp"))
        tcp_mode();
    else if (!strcmp(m, "none"))
        none_mode();
    else if (!strcmp(m, "mmsg"))
        mmsg_mode();
    else if (!strcmp(m, "fork"))
        fork_mode();
    else if (!strcmp(m, "rights"))
        rights_mode();
    else if (!strcmp(m, "hostile"))
        hostile_mode();
    else if (!strcmp(m, "serve") && argc > 2)
        serve_mode(atoi(argv[2]));
    else
        return 2;
    return 0;
}
