/* Interface queries (SIOCGIFCONF, SIOCGIFNAME, SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMTU,
 * SIOCGIFHWADDR, SIOCGIFADDR) compared with Linux line by line (tests/net.rs): natively, and
 * under umon --net host, the host's interfaces; natively in an empty network namespace and
 * under umon --net none, a lone lo that is down. Every struct ifreq starts filled with a
 * pattern and is printed whole after the call, so bytes the kernel leaves alone show too.
 * Then hostile arguments: bad and half-mapped pointers, unknown, unterminated and alias names,
 * negative lengths, other fd kinds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "say.h"

static long ioc(int fd, unsigned long req, void *arg) {
    long r = syscall(SYS_ioctl, fd, req, arg);
    return r < 0 ? -errno : r;
}

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) {
        snprintf(buf, sizeof buf, "%ld", r);
        return buf;
    }
    return strerrorname_np((int)-r);
}

static void hex(const char *what, const void *p, size_t n) {
    char line[256];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < sizeof line; i++)
        k += (size_t)snprintf(line + k, sizeof line - k, "%02x", ((const unsigned char *)p)[i]);
    line[k] = 0;
    say("  %s %s", what, line);
}

static void fill(struct ifreq *r, const char *name) {
    memset(r, 0xa5, sizeof *r);
    if (name)
        memcpy(r->ifr_name, name, strlen(name) + 1);
}

static const struct {
    unsigned long req;
    const char *name;
} QUERIES[] = {
    {SIOCGIFINDEX, "SIOCGIFINDEX"}, {SIOCGIFFLAGS, "SIOCGIFFLAGS"},
    {SIOCGIFMTU, "SIOCGIFMTU"},     {SIOCGIFHWADDR, "SIOCGIFHWADDR"},
    {SIOCGIFADDR, "SIOCGIFADDR"},
};

/* Every query on interface `name` through socket `fd`. */
static void queries(int fd, const char *tag, const char *name) {
    for (size_t q = 0; q < sizeof QUERIES / sizeof QUERIES[0]; q++) {
        struct ifreq r;
        fill(&r, name);
        long ret = ioc(fd, QUERIES[q].req, &r);
        say("%s %s(%s) = %s", tag, QUERIES[q].name, name, err(ret));
        hex("ifreq", &r, sizeof r);
    }
}

static void ifconf(int fd, const char *tag, void *buf, int len) {
    struct ifconf c;
    c.ifc_len = len;
    c.ifc_buf = buf;
    if (buf)
        memset(buf, 0x5a, len > 0 ? (size_t)len : 0);
    long ret = ioc(fd, SIOCGIFCONF, &c);
    say("%s SIOCGIFCONF(len %d%s) = %s, ifc_len %d, same buf %d", tag, len, buf ? "" : ", NULL",
        err(ret), c.ifc_len, c.ifc_buf == buf);
    if (buf && ret == 0) {
        for (int off = 0; off + (int)sizeof(struct ifreq) <= c.ifc_len;
             off += (int)sizeof(struct ifreq))
            hex("entry", (char *)buf + off, sizeof(struct ifreq));
        if (len > c.ifc_len)
            hex("after", (char *)buf + c.ifc_len, (size_t)(len - c.ifc_len) < 8 ? (size_t)(len - c.ifc_len) : 8);
    }
}

int main(void) {
    int fds[3];
    const char *tags[3] = {"inet", "inet6", "unix"};
    fds[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    fds[1] = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    fds[2] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (int i = 0; i < 3; i++)
        if (fds[i] < 0) {
            say("socket %s: %s", tags[i], strerrorname_np(errno));
            return 1;
        }

    /* The interfaces by index, as SIOCGIFNAME names them. */
    char names[64][IFNAMSIZ];
    int n = 0;
    for (int idx = -1; idx < 64; idx++) {
        struct ifreq r;
        fill(&r, "lo");
        r.ifr_ifindex = idx;
        long ret = ioc(fds[0], SIOCGIFNAME, &r);
        if (ret < 0) {
            if (idx <= 1)
                say("SIOCGIFNAME(%d) = %s", idx, err(ret));
            continue;
        }
        say("SIOCGIFNAME(%d) = %s", idx, err(ret));
        hex("ifreq", &r, sizeof r);
        if (n < 64)
            snprintf(names[n++], IFNAMSIZ, "%s", r.ifr_name);
    }
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 3; s++)
            queries(fds[s], tags[s], names[i]);

    /* SIOCGIFCONF: the size, all of it, one entry, less than one, none, negative. */
    static char big[4096];
    for (int s = 0; s < 3; s++) {
        ifconf(fds[s], tags[s], NULL, 0);
        ifconf(fds[s], tags[s], NULL, 12345);
        ifconf(fds[s], tags[s], big, sizeof big);
    }
    ifconf(fds[0], "inet", big, 40);
    ifconf(fds[0], "inet", big, 79);
    ifconf(fds[0], "inet", big, 39);
    ifconf(fds[0], "inet", big, 0);
    ifconf(fds[0], "inet", big, -40);

    /* An address asked for with AF_INET and an address set: the entry with that address. */
    {
        struct ifreq r;
        fill(&r, "lo");
        struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(0x7f000001);
        long ret = ioc(fds[0], SIOCGIFADDR, &r);
        say("SIOCGIFADDR(lo, 127.0.0.1) = %s", err(ret));
        hex("ifreq", &r, sizeof r);
    }

    /* Hostile names: unknown, empty, unterminated, an alias label, bytes after the NUL. */
    const char *odd[] = {"nosuch0", "", "lo:0", "lo:", ":lo"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        queries(fds[0], "odd", odd[i]);
    {
        struct ifreq r;
        memset(&r, 'x', sizeof r);
        long ret = ioc(fds[0], SIOCGIFINDEX, &r);
        say("unterminated SIOCGIFINDEX = %s", err(ret));
        hex("ifreq", &r, sizeof r);
        memset(&r, 'x', sizeof r);
        memcpy(r.ifr_name, "lo", 3);
        for (size_t q = 0; q < sizeof QUERIES / sizeof QUERIES[0]; q++) {
            memset(&r, 'x', sizeof r);
            memcpy(r.ifr_name, "lo", 3);
            ret = ioc(fds[0], QUERIES[q].req, &r);
            say("junk after lo %s = %s", QUERIES[q].name, err(ret));
            hex("ifreq", &r, sizeof r);
        }
        memset(&r, 'x', sizeof r);
        memcpy(r.ifr_name, "lo", 3);
        r.ifr_ifindex = 1;
        ret = ioc(fds[0], SIOCGIFNAME, &r);
        say("junk SIOCGIFNAME(1) = %s", err(ret));
        hex("ifreq", &r, sizeof r);
    }

    /* Bad pointers: NULL, unmapped, a struct that runs into an unmapped page. */
    long pg = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    mprotect(two + pg, (size_t)pg, PROT_NONE);
    char *end = two + pg;
    char *ro = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned long reqs[] = {SIOCGIFNAME, SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMTU,
                            SIOCGIFHWADDR, SIOCGIFADDR, SIOCGIFCONF};
    for (size_t q = 0; q < sizeof reqs / sizeof reqs[0]; q++) {
        for (int s = 0; s < 3; s++) {
            long a = ioc(fds[s], reqs[q], NULL);
            long b = ioc(fds[s], reqs[q], (void *)16);
            long c = ioc(fds[s], reqs[q], end - 20);
            /* A read-only ifreq naming lo: read works, the answer cannot be written. */
            memset(ro, 0, (size_t)pg);
            memcpy(ro, "lo", 3);
            ((struct ifreq *)ro)->ifr_ifindex = 1;
            mprotect(ro, (size_t)pg, PROT_READ);
            long d = ioc(fds[s], reqs[q], ro);
            mprotect(ro, (size_t)pg, PROT_READ | PROT_WRITE);
            say("%s %#lx: NULL %s, 16 %s, half-mapped %s, read-only %s", tags[s], reqs[q],
                err(a), err(b), err(c), err(d));
        }
    }
    /* ifconf whose buffer runs into the unmapped page; a read-only ifconf. */
    {
        struct ifconf c;
        c.ifc_len = 200;
        c.ifc_buf = end - 60;
        long ret = ioc(fds[0], SIOCGIFCONF, &c);
        say("SIOCGIFCONF(buf runs out) = %s, ifc_len %d", err(ret), c.ifc_len);
        c.ifc_len = 200;
        c.ifc_buf = (void *)16;
        ret = ioc(fds[0], SIOCGIFCONF, &c);
        say("SIOCGIFCONF(buf 16) = %s, ifc_len %d", err(ret), c.ifc_len);
        c.ifc_len = 0;
        ret = ioc(fds[0], SIOCGIFCONF, &c);
        say("SIOCGIFCONF(buf 16, len 0) = %s, ifc_len %d", err(ret), c.ifc_len);
        memset(ro, 0, (size_t)pg);
        ((struct ifconf *)ro)->ifc_len = 0;
        mprotect(ro, (size_t)pg, PROT_READ);
        ret = ioc(fds[0], SIOCGIFCONF, ro);
        say("SIOCGIFCONF(read-only ifconf, NULL buf) = %s", err(ret));
        mprotect(ro, (size_t)pg, PROT_READ | PROT_WRITE);
        struct ifconf *half = (struct ifconf *)(end - 8);
        ret = ioc(fds[0], SIOCGIFCONF, half);
        say("SIOCGIFCONF(half-mapped ifconf) = %s", err(ret));
    }

    /* Other fd kinds: a pipe, a file, a bad fd. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
        struct ifreq r;
        fill(&r, "lo");
        say("pipe SIOCGIFINDEX = %s", err(ioc(p[0], SIOCGIFINDEX, &r)));
        struct ifconf c = {.ifc_len = 0, .ifc_buf = NULL};
        say("pipe SIOCGIFCONF = %s", err(ioc(p[0], SIOCGIFCONF, &c)));
    }
    int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (f >= 0) {
        struct ifreq r;
        fill(&r, "lo");
        say("/dev/null SIOCGIFFLAGS = %s", err(ioc(f, SIOCGIFFLAGS, &r)));
    }
    {
        struct ifreq r;
        fill(&r, "lo");
        say("bad fd SIOCGIFFLAGS = %s", err(ioc(999, SIOCGIFFLAGS, &r)));
    }
    return 0;
}
