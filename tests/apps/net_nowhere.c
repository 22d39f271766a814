/* INET sockets in an empty network namespace (umon --net none; natively under unshare -n),
 * as poll, select and epoll see them (tests/net.rs): a listener nobody can reach polls as
 * nothing ready; an unconnected TCP socket as POLLOUT|POLLHUP; a bound UDP socket as
 * writable; accept on the non-blocking listener EAGAIN. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include "say.h"

static void show(const char *what, int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLPRI | POLLRDHUP};
    int n = poll(&p, 1, 0);
    fd_set r, w, x;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    FD_SET(fd, &r);
    FD_SET(fd, &w);
    FD_SET(fd, &x);
    struct timeval tv = {0, 0};
    int s = select(fd + 1, &r, &w, &x, &tv);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = 1};
    int add = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    struct epoll_event out;
    memset(&out, 0, sizeof out);
    int m = epoll_wait(ep, &out, 1, 0);
    close(ep);
    say("%s: poll %d revents %#x; select %d r%d w%d x%d; epoll add %d wait %d events %#x", what,
        n, p.revents, s, FD_ISSET(fd, &r) != 0, FD_ISSET(fd, &w) != 0, FD_ISSET(fd, &x) != 0,
        add, m, out.events);
}

int main(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(5555)};
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    show("tcp unbound", l);
    say("bind: %d", bind(l, (struct sockaddr *)&a, sizeof a));
    show("tcp bound", l);
    say("listen: %d", listen(l, 8));
    say("O_NONBLOCK: %d", fcntl(l, F_SETFL, O_NONBLOCK));
    show("tcp listening", l);
    int n = accept4(l, NULL, NULL, 0);
    say("accept4: %d %s", n, n < 0 ? strerrorname_np(errno) : "");
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    show("udp unbound", u);
    a.sin_port = htons(5556);
    say("bind udp: %d", bind(u, (struct sockaddr *)&a, sizeof a));
    show("udp bound", u);
    int l6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    say("listen v6 without bind: %d", listen(l6, 1));
    show("tcp6 listening", l6);
    return 0;
}
