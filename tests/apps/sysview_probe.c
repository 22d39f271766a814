// The guest's view of a system (/dev, /proc, /sys, /tmp, /dev/shm, the root): one check
// group per argument, one line per fact, so tests compare with the native run where Linux's
// answer is the same everywhere and assert the guest's own values elsewhere.
#define _GNU_SOURCE
#include "say.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *err(long r) { return r < 0 ? strerror(errno) : "ok"; }

// /dev/null, zero, full, urandom: what Linux does with them, comparable with native.
static void dev(void) {
    char buf[64];
    int fd = open("/dev/null", O_RDWR);
    say("null open %s", err(fd));
    say("null write %zd", write(fd, "hello", 5));
    say("null read %zd", read(fd, buf, sizeof buf));
    close(fd);
    struct stat st;
    const char *devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
    for (unsigned i = 0; i < sizeof devs / sizeof *devs; i++) {
        int r = stat(devs[i], &st);
        say("stat %s %s chr %d %u:%u", devs[i], err(r), S_ISCHR(st.st_mode), major(st.st_rdev),
            minor(st.st_rdev));
    }
    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 7, sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    int zeros = 1;
    for (int i = 0; i < n; i++)
        zeros &= buf[i] == 0;
    say("zero read %zd zeros %d", n, zeros);
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    errno = 0;
    n = write(fd, "x", 1);
    say("full write %zd %s", n, strerror(errno));
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    say("urandom read %zd", read(fd, buf, 16));
    close(fd);
    errno = 0;
    say("null O_DIRECTORY %s", err(open("/dev/null", O_RDONLY | O_DIRECTORY)));
    errno = 0;
    say("null via stdin link %s", err(open("/dev/fd/1", O_WRONLY)));
    errno = 0;
    say("/proc/self/status as dir %s", err(open("/proc/self/status/", O_RDONLY)));
    say("proc self is link %d", readlink("/proc/self", buf, sizeof buf) > 0);
}

// Changes in the synthetic trees: what Linux says to a user without privileges there (never
// run natively: as root they would change the host's /dev).
static void refused(void) {
    errno = 0;
    say("create in /proc %s", err(open("/proc/umon-nope", O_CREAT | O_WRONLY, 0600)));
    errno = 0;
    say("write /proc/self/status %s", err(open("/proc/self/status", O_WRONLY)));
    errno = 0;
    say("unlink /dev/null %s", err(unlink("/dev/null")));
    errno = 0;
    say("mkdir /dev/x %s", err(mkdir("/dev/x", 0700)));
}

// The whole content of `path`, read in `chunk`-byte reads (NUL-terminated; bytes counted).
static char *slurp(const char *path, size_t chunk, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, used = 0;
    char *out = malloc(cap + 1);
    for (;;) {
        if (used + chunk > cap) {
            cap = (used + chunk) * 2;
            out = realloc(out, cap + 1);
        }
        ssize_t n = read(fd, out + used, chunk);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    out[used] = 0;
    if (len)
        *len = used;
    return out;
}

static long field(const char *text, const char *key) {
    const char *p = text ? strstr(text, key) : NULL;
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

// The guest's own values.
static void proc(int argc, char **argv) {
    char *status = slurp("/proc/self/status", 4096, NULL);
    say("status pid %ld getpid %d", field(status, "\nPid:\t"), getpid());
    char *mem = slurp("/proc/meminfo", 4096, NULL);
    say("memtotal kb %ld", field(mem, "MemTotal:"));
    char *cpu = slurp("/proc/cpuinfo", 4096, NULL);
    int procs = 0;
    for (char *p = cpu; p && (p = strstr(p, "processor\t:")); p++)
        procs++;
    say("cpuinfo processors %d", procs);
    char *online = slurp("/sys/devices/system/cpu/online", 4096, NULL);
    say("online %s", online ? strtok(online, "\n") : "(none)");
    say("nprocs_conf %ld", sysconf(_SC_NPROCESSORS_CONF));
    char link[256];
    ssize_t n = readlink("/proc/self", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    say("self link %s", link);
    n = readlink("/proc/self/exe", link, sizeof link - 1);
    say("exe link ok %d", n > 0);
    n = readlink("/proc/self/fd/0", link, sizeof link - 1);
    say("fd0 link ok %d", n > 0);
    int fd = open("/dev/null", O_RDONLY);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    say("fd devnull link %s", link);
    size_t len;
    char *cmd = slurp("/proc/self/cmdline", 1, &len);
    size_t want = 0;
    for (int i = 0; i < argc; i++)
        want += strlen(argv[i]) + 1;
    say("cmdline len ok %d first %s", len == want, cmd ? cmd : "");
    char *env = slurp("/proc/self/environ", 7, &len);
    int found = 0;
    for (size_t i = 0; env && i < len; i += strlen(env + i) + 1)
        found |= strcmp(env + i, "SYSVIEW_MARK=42") == 0;
    say("environ mark %d", found);
    char *maps = slurp("/proc/self/maps", 3, NULL);
    unsigned long main_at = (unsigned long)&proc, stack_at = (unsigned long)&found;
    int code = 0, stack = 0;
    for (char *line = maps ? strtok(maps, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        unsigned long s, e;
        char perm[5];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, perm) != 3)
            continue;
        code |= s <= main_at && main_at < e && perm[2] == 'x';
        stack |= s <= stack_at && stack_at < e && perm[1] == 'w';
    }
    say("maps code %d stack %d", code, stack);
    char *stat = slurp("/proc/self/stat", 4096, NULL);
    say("stat pid %ld", stat ? strtol(stat, NULL, 10) : -1);
    char *up = slurp("/proc/uptime", 4096, NULL);
    say("uptime ok %d", up && strtod(up, NULL) >= 0.0);
}

static void tmp(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/%s", name);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    say("tmp create %s", err(fd));
    say("tmp write %zd", write(fd, "private", 7));
    char buf[16] = {0};
    say("tmp pread %zd %s", pread(fd, buf, sizeof buf - 1, 0), buf);
    close(fd);
    struct stat st;
    int r = stat("/tmp", &st);
    say("tmp stat %s dir %d", err(r), S_ISDIR(st.st_mode));
    fd = open("/dev/shm/umon-sysview", O_CREAT | O_RDWR, 0600);
    say("shm create %s", err(fd));
    close(fd);
    say("shm unlink %s", err(unlink("/dev/shm/umon-sysview")));
    sem_t *sem = sem_open("/umon-sysview", O_CREAT, 0600, 1);
    say("sem_open %s", sem == SEM_FAILED ? strerror(errno) : "ok");
    if (sem != SEM_FAILED) {
        say("sem_wait %s", err(sem_wait(sem)));
        say("sem_post %s", err(sem_post(sem)));
        say("sem_unlink %s", err(sem_unlink("/umon-sysview")));
    }
}

static void root(void) {
    struct stat st;
    int r = stat(".", &st);
    say("stat . %s dir %d", err(r), S_ISDIR(st.st_mode));
    struct statvfs vfs;
    say("statvfs / %s", err(statvfs("/", &vfs)));
    DIR *d = opendir("/");
    int dev = 0, proc = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        dev |= strcmp(e->d_name, "dev") == 0;
        proc |= strcmp(e->d_name, "proc") == 0;
    }
    say("ls / dev %d proc %d", dev, proc);
}

// Path tricks and tiny buffers: never the host, never a hang.
static void hostile(void) {
    const char *paths[] = {"/proc/self/root/../etc/passwd", "/proc/self/fd/1/../../etc/passwd",
                           "/dev/../etc/shadow", "/proc/self/cwd/etc/passwd",
                           "/proc/1/root/etc/passwd", "/sys/../etc/hostname"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        errno = 0;
        int fd = open(paths[i], O_RDONLY);
        say("open %s %s", paths[i], err(fd));
    }
    // getdents64 of /proc/self with a buffer that holds one record at a time.
    int fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    char small[32] __attribute__((aligned(8)));
    int entries = 0, calls = 0;
    long n;
    while ((n = syscall(SYS_getdents64, fd, small, sizeof small)) > 0 && calls < 1000) {
        calls++;
        for (long at = 0; at < n; at += *(unsigned short *)(small + at + 16))
            entries++;
    }
    say("tiny getdents end %ld entries>2 %d", n, entries > 2);
    close(fd);
    fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
    errno = 0;
    say("getdents 8 bytes %s", err(syscall(SYS_getdents64, fd, small, 8)));
    close(fd);
    size_t len;
    char *maps = slurp("/proc/self/maps", 1 << 20, &len);
    say("huge read maps %d", maps && len > 0);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "dev"))
            dev();
        else if (!strcmp(argv[i], "proc"))
            proc(argc, argv);
        else if (!strncmp(argv[i], "tmp=", 4))
            tmp(argv[i] + 4);
        else if (!strcmp(argv[i], "root"))
            root();
        else if (!strcmp(argv[i], "hang"))
            for (;;)
                pause();
        else if (!strcmp(argv[i], "refused"))
            refused();
        else if (!strcmp(argv[i], "hostile"))
            hostile();
    }
    return 0;
}
