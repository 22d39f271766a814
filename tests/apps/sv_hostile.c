// Hostile uses of the synthetic /proc and /dev files: bad buffers, tiny getdents buffers,
// writes, odd names. One line per case, errno names only, so the native run (Linux) and the
// umon run compare line by line; `refused` holds what only an unprivileged user sees
// (never run natively: as root Linux lets it open /proc files for writing).
#define _GNU_SOURCE
#include "say.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// errno's name (musl has no strerrorname_np), for the errnos these cases can give.
static const char *ename(int e) {
    static const struct {
        int e;
        const char *name;
    } names[] = {{EFAULT, "EFAULT"}, {EINVAL, "EINVAL"},   {EBADF, "EBADF"},   {EISDIR, "EISDIR"},
                 {ENOTDIR, "ENOTDIR"}, {ENOENT, "ENOENT"}, {ESPIPE, "ESPIPE"}, {EACCES, "EACCES"},
                 {ENXIO, "ENXIO"},   {EEXIST, "EEXIST"},   {EPERM, "EPERM"},   {EIO, "EIO"}};
    static char other[32];
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].e == e)
            return names[i].name;
    snprintf(other, sizeof other, "errno %d", e);
    return other;
}

static const char *res(long r) { return r < 0 ? ename(errno) : "ok"; }

#define KERNEL_PTR ((void *)0xffff800000001000UL)

static void reads(void) {
    const char *files[] = {"/proc/self/status", "/proc/self/auxv", "/proc/self/limits",
                           "/proc/self/fdinfo/0", "/proc/self/stat"};
    for (int i = 0; i < 5; i++) {
        int fd = open(files[i], O_RDONLY);
        errno = 0;
        long a = syscall(SYS_read, fd, NULL, 100);
        say("%s read NULL %ld %s", files[i], a, res(a));
        errno = 0;
        long b = syscall(SYS_read, fd, KERNEL_PTR, 100);
        say("%s read kernel %ld %s", files[i], b, res(b));
        char buf[8];
        errno = 0;
        long c = syscall(SYS_read, fd, buf, 0);
        say("%s read 0 bytes %ld %s", files[i], c, res(c));
        errno = 0;
        long d = syscall(SYS_pread64, fd, buf, sizeof buf, -1L);
        say("%s pread -1 %ld %s", files[i], d, res(d));
        struct iovec iov[2] = {{buf, 4}, {NULL, 100}};
        errno = 0;
        long e = syscall(SYS_readv, fd, iov, 2);
        say("%s readv bad second %ld", files[i], e);
        errno = 0;
        long f = syscall(SYS_readv, fd, KERNEL_PTR, 2);
        say("%s readv bad iovec %ld %s", files[i], f, res(f));
        close(fd);
    }
    // A buffer whose end lies in a page without access: Linux copies what fits before it.
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(m + 4096, 4096, PROT_NONE);
    int fd = open("/proc/self/limits", O_RDONLY);
    errno = 0;
    long n = syscall(SYS_read, fd, m + 4096 - 16, 100);
    say("limits read into a hole %ld %s", n, res(n));
    close(fd);
    fd = open("/proc", O_RDONLY | O_DIRECTORY);
    char buf[8];
    errno = 0;
    long r = read(fd, buf, sizeof buf);
    say("read /proc dir %ld %s", r, res(r));
    close(fd);
}

static void writes(void) {
    int fd = open("/proc/self/status", O_RDONLY);
    errno = 0;
    long a = write(fd, "x", 1);
    say("write read-only status %ld %s", a, res(a));
    errno = 0;
    long b = pwrite(fd, "x", 1, 0);
    say("pwrite read-only status %ld %s", b, res(b));
    close(fd);
    fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    errno = 0;
    long c = write(fd, "x", 1);
    say("write /proc/self dir %ld %s", c, res(c));
    errno = 0;
    long d = ftruncate(fd, 0);
    say("ftruncate dir %ld %s", d, res(d));
    close(fd);
    const char *dirs[] = {"/proc/self/fdinfo", "/proc/self/task", "/proc"};
    for (int i = 0; i < 3; i++) {
        errno = 0;
        long e = open(dirs[i], O_WRONLY);
        say("open %s write-only %s", dirs[i], res(e));
    }
    fd = open("/proc/self/fdinfo/0", O_PATH);
    errno = 0;
    char buf[8];
    long f = read(fd, buf, sizeof buf);
    say("read O_PATH fdinfo %ld %s", f, res(f));
}

static unsigned short max_reclen;

// Names of the entries of `path` read by getdents64 `count` bytes at a time, joined; an
// error ends the list in brackets. Sets max_reclen.
static char *dents(const char *path, size_t count, int *calls) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    static char out[1 << 16];
    size_t used = 0;
    char *buf = malloc(count < 64 ? 64 : count);
    *calls = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, count);
        if (n <= 0) {
            if (n < 0)
                used += snprintf(out + used, sizeof out - used, "[%s]", ename(errno));
            break;
        }
        (*calls)++;
        for (long o = 0; o < n;) {
            unsigned short reclen = *(unsigned short *)(buf + o + 16);
            if (reclen > max_reclen)
                max_reclen = reclen;
            used += snprintf(out + used, sizeof out - used, "%s/", buf + o + 19);
            o += reclen;
        }
    }
    close(fd);
    free(buf);
    return strdup(out);
}

static void dents_cases(void) {
    const char *dirs[] = {"/proc/self", "/proc/self/fdinfo", "/proc/self/task", "/dev"};
    for (int i = 0; i < 4; i++) {
        int calls;
        max_reclen = 0;
        char *all = dents(dirs[i], 1 << 16, &calls);
        unsigned short longest = max_reclen;
        // Each call returns the records that fit; one that does not fit at all is EINVAL.
        int same = 1, one_each = 1;
        for (size_t c = 32; c <= 64; c += 8) {
            int k;
            char *part = dents(dirs[i], c, &k);
            if (c >= longest) {
                same &= strcmp(part, all) == 0;
            } else {
                char *end = strstr(part, "[EINVAL]");
                same &= end && end[8] == 0 && strncmp(part, all, end - part) == 0;
            }
            one_each &= c != 32 || k > 2;
            free(part);
        }
        say("%s tiny buffers same %d one record a call %d", dirs[i], same, one_each);
        free(all);
    }
    int fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    char buf[4096];
    errno = 0;
    long a = syscall(SYS_getdents64, fd, buf, 0);
    say("getdents 0 bytes %ld %s", a, res(a));
    errno = 0;
    long b = syscall(SYS_getdents64, fd, NULL, 4096);
    say("getdents NULL %ld %s", b, res(b));
    errno = 0;
    long c = syscall(SYS_getdents64, fd, KERNEL_PTR, 4096);
    say("getdents kernel %ld %s", c, res(c));
    long d = syscall(SYS_getdents64, fd, buf, sizeof buf);
    say("getdents after faults starts at . %d", d > 0 && strcmp(buf + 19, ".") == 0);
    close(fd);
    fd = open("/proc/self/status", O_RDONLY);
    errno = 0;
    long e = syscall(SYS_getdents64, fd, buf, sizeof buf);
    say("getdents file %ld %s", e, res(e));
    close(fd);
    fd = open("/proc/self", O_PATH);
    errno = 0;
    long f = syscall(SYS_getdents64, fd, buf, sizeof buf);
    say("getdents O_PATH %ld %s", f, res(f));
}

static void names(void) {
    const char *paths[] = {
        "/proc/self/fdinfo/99999999999999999999", "/proc/self/fdinfo/-1",
        "/proc/self/fdinfo/0/x",                  "/proc/self/fdinfo/00",
        "/proc/self/task/0",                      "/proc/self/task/1x",
        "/proc/2147483647",                       "/proc/self/auxv/",
        "/proc/self/fd/+1",                       "/proc/thread-self/task",
        "/dev/tty/",                              "/proc/self/fd/../fdinfo/1",
        "/proc/self/fd/00",                       "/proc/01/status",
    };
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        errno = 0;
        struct stat st;
        long r = stat(paths[i], &st);
        say("stat %s %s", paths[i], res(r));
    }
    char c[4] = "...";
    long n = readlink("/proc/thread-self", c, 1);
    say("readlink 1 byte %ld %d", n, c[1] == '.');
    errno = 0;
    long z = readlink("/proc/thread-self", c, 0);
    say("readlink 0 bytes %ld %s", z, res(z));
}

static void refused(void) {
    const char *files[] = {"/proc/self/auxv", "/proc/self/limits", "/proc/self/fdinfo/0",
                           "/proc/self/task/1/stat", "/proc/sys/kernel/pid_max"};
    for (int i = 0; i < 5; i++) {
        errno = 0;
        long r = open(files[i], O_RDWR);
        say("open %s read-write %s", files[i], res(r));
    }
    errno = 0;
    long t = open("/dev/tty", O_RDWR | O_CREAT, 0600);
    say("create /dev/tty %s", res(t));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "reads"))
            reads();
        else if (!strcmp(argv[i], "writes"))
            writes();
        else if (!strcmp(argv[i], "getdents"))
            dents_cases();
        else if (!strcmp(argv[i], "names"))
            names();
        else if (!strcmp(argv[i], "refused"))
            refused();
    }
    return 0;
}
