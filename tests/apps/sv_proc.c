// /proc files whose content the program can check against its own syscalls: each group
// rebuilds what Linux prints (the kernel's own format strings) from getauxval, getrlimit,
// lseek, fcntl, fstat, gettid, and says whether the file holds exactly that. Run natively the
// app proves its oracle is Linux's format; under umon, that umon's files are. Lines carry
// only values that are the same on both (no pids, inodes or addresses).
#define _GNU_SOURCE
#include "say.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

// The whole of `path` (NUL-terminated), read `chunk` bytes at a time; NULL if it cannot be
// opened. *len gets the byte count.
static char *slurp(const char *path, size_t chunk, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, used = 0;
    char *out = malloc(cap + 1);
    for (;;) {
        if (used + chunk > cap) {
            cap = 2 * (used + chunk);
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

// /proc/self/auxv: native-endian (key, value) pairs up to AT_NULL, each as getauxval says;
// the same bytes whatever the read size.
static void auxv(void) {
    size_t len, len1;
    uint64_t *a = (uint64_t *)slurp("/proc/self/auxv", 4096, &len);
    char *one = slurp("/proc/self/auxv", 1, &len1);
    size_t n = len / 16;
    int same = len % 16 == 0 && n > 4, keys = 0;
    for (size_t i = 0; same && i + 1 < n; i++) {
        uint64_t k = a[2 * i], v = a[2 * i + 1];
        // glibc's x86-64 getauxval gives its own HWCAP values, not the auxv's.
        if (k != AT_HWCAP && k != AT_HWCAP2 && getauxval(k) != v) {
            fprintf(stderr, "auxv key %lu: %#lx, getauxval %#lx\n", (unsigned long)k,
                    (unsigned long)v, getauxval(k));
            same = 0;
        }
        same &= k != AT_NULL;
        keys += k == AT_PHDR || k == AT_ENTRY || k == AT_PAGESZ || k == AT_RANDOM;
    }
    int null = n > 0 && a[2 * n - 2] == AT_NULL && a[2 * n - 1] == 0;
    say("auxv as getauxval %d ends with AT_NULL %d phdr/entry/pagesz/random %d", same, null, keys);
    say("auxv byte reads same %d", len1 == len && memcmp(one, a, len) == 0);
}

static const char *const NAMES[][2] = {
    {"Max cpu time", "seconds"},      {"Max file size", "bytes"},
    {"Max data size", "bytes"},       {"Max stack size", "bytes"},
    {"Max core file size", "bytes"},  {"Max resident set", "bytes"},
    {"Max processes", "processes"},   {"Max open files", "files"},
    {"Max locked memory", "bytes"},   {"Max address space", "bytes"},
    {"Max file locks", "locks"},      {"Max pending signals", "signals"},
    {"Max msgqueue size", "bytes"},   {"Max nice priority", NULL},
    {"Max realtime priority", NULL}, {"Max realtime timeout", "us"},
};

// /proc/self/limits: proc_pid_limits's table, from getrlimit, after the app changed some.
static void limits(void) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = 100;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = 1 << 20;
    setrlimit(RLIMIT_FSIZE, &r);
    getrlimit(RLIMIT_CORE, &r);
    r.rlim_max = r.rlim_cur;
    setrlimit(RLIMIT_CORE, &r);
    char want[4096];
    int w = snprintf(want, sizeof want, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit",
                     "Hard Limit", "Units");
    for (int i = 0; i < 16; i++) {
        getrlimit(i, &r);
        char cur[32], max[32];
        snprintf(cur, sizeof cur, "%lu", (unsigned long)r.rlim_cur);
        snprintf(max, sizeof max, "%lu", (unsigned long)r.rlim_max);
        w += snprintf(want + w, sizeof want - w, "%-25s %-20s %-20s ", NAMES[i][0],
                      r.rlim_cur == RLIM_INFINITY ? "unlimited" : cur,
                      r.rlim_max == RLIM_INFINITY ? "unlimited" : max);
        if (NAMES[i][1])
            w += snprintf(want + w, sizeof want - w, "%-10s\n", NAMES[i][1]);
        else
            w += snprintf(want + w, sizeof want - w, "\n");
    }
    char *got = slurp("/proc/self/limits", 4096, NULL);
    int same = got && strcmp(got, want) == 0;
    if (!same)
        fprintf(stderr, "want:\n%sgot:\n%s", want, got ? got : "(none)");
    say("limits as getrlimit %d", same);
    char *nofile = got ? strstr(got, "Max open files") : NULL;
    say("limits nofile line %.46s", nofile ? nofile : "");
}

// The first four lines of fdinfo/N checked against lseek, fcntl and fstat; the flags and the
// lines after them printed (they are the same on Linux and under umon).
static void fdinfo_of(const char *what, int fd, int show_flags) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    char *t = slurp(path, 7, NULL);
    if (!t) {
        say("%s fdinfo %s", what, strerror(errno));
        return;
    }
    long long pos;
    unsigned flags;
    int mnt;
    unsigned long ino;
    int used = 0;
    int got = sscanf(t, "pos:\t%lld\nflags:\t0%o\nmnt_id:\t%d\nino:\t%lu\n%n", &pos, &flags,
                     &mnt, &ino, &used);
    struct stat st;
    fstat(fd, &st);
    off_t at = lseek(fd, 0, SEEK_CUR);
    unsigned want = (unsigned)fcntl(fd, F_GETFL) | (fcntl(fd, F_GETFD) & FD_CLOEXEC ? O_CLOEXEC : 0);
    (void)at;
    if (show_flags)
        say("%s fields %d pos %lld flags 0%o as F_GETFL %d ino as fstat %d rest [%s]", what, got,
            pos, flags, flags == want, ino == st.st_ino, got == 4 ? t + used : "");
    else
        say("%s fields %d pos %lld flags as F_GETFL %d ino as fstat %d rest [%s]", what, got, pos,
            flags == want, ino == st.st_ino, got == 4 ? t + used : "");
}

static void fdinfo(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fdinfo-file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (write(fd, "hello", 5) != 5)
        say("write failed");
    lseek(fd, 3, SEEK_SET);
    // umon opens volume files O_NOFOLLOW on the host, and F_GETFL says so: flags not shown.
    fdinfo_of("volume file", fd, 0);
    int ro = open(path, O_RDONLY | O_NONBLOCK);
    fdinfo_of("read-only file", ro, 1);
    close(ro);
    int st = open("/proc/self/status", O_RDONLY);
    char buf[10];
    if (read(st, buf, sizeof buf) != sizeof buf)
        say("read failed");
    fdinfo_of("proc status", st, 1);
    int d = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fdinfo_of("proc dir", d, 1);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGRTMIN + 2);
    int sfd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
    fdinfo_of("signalfd", sfd, 1);
    close(fd);
    errno = 0;
    say("closed fd %s", slurp("/proc/self/fdinfo/9999", 64, NULL) ? "there" : strerror(errno));
    DIR *dd = opendir("/proc/self/fdinfo");
    struct dirent *e;
    int entries = 0, has_sfd = 0;
    while ((e = readdir(dd))) {
        entries += e->d_name[0] != '.';
        has_sfd |= atoi(e->d_name) == sfd && e->d_type == DT_REG;
    }
    say("fdinfo dir lists the signalfd %d", has_sfd && entries >= 4);
    closedir(dd);
}

static pthread_barrier_t ready, done;
static pid_t other;

static void *thread(void *arg) {
    (void)arg;
    other = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&done);
    return NULL;
}

// Field `n` (1-based) of /proc/<path>/stat as a number; the comm (in parentheses) is field 2.
static unsigned long stat_field(const char *path, int n) {
    char *t = slurp(path, 4096, NULL);
    if (!t)
        return -1;
    char *p = strrchr(t, ')');
    if (!p)
        return -1;
    if (n == 1)
        return strtoul(t, NULL, 10);
    p += 2;
    for (int i = 3; i < n && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoul(p, NULL, 10) : (unsigned long)-1;
}

// /proc/<pid>/task, /proc/<tid>, /proc/thread-self for a second thread.
static void task(void) {
    pthread_t t;
    pthread_barrier_init(&ready, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_create(&t, NULL, thread, NULL);
    pthread_barrier_wait(&ready);
    pid_t pid = getpid();
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0, has_main = 0, has_other = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        has_main |= atoi(e->d_name) == pid && e->d_type == DT_DIR;
        has_other |= atoi(e->d_name) == other && e->d_type == DT_DIR;
    }
    closedir(d);
    say("task entries %d main %d other %d", n, has_main, has_other);
    char path[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", other);
    say("task stat pid is tid %d threads %ld", stat_field(path, 1) == other, stat_field(path, 20));
    snprintf(path, sizeof path, "/proc/%d/status", other);
    char *s = slurp(path, 4096, NULL);
    char want[64];
    snprintf(want, sizeof want, "\nPid:\t%d\n", other);
    char tgid[64];
    snprintf(tgid, sizeof tgid, "\nTgid:\t%d\n", pid);
    say("proc tid status pid %d tgid %d", s && strstr(s, want) != NULL,
        s && strstr(s, tgid) != NULL);
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", other);
    say("proc tid is dir %d", stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    // Not listed in /proc (only thread-group leaders are).
    d = opendir("/proc");
    int listed = 0;
    while ((e = readdir(d)))
        listed |= atoi(e->d_name) == other;
    closedir(d);
    say("proc lists tid %d", listed);
    char link[64];
    ssize_t l = readlink("/proc/thread-self", link, sizeof link - 1);
    link[l < 0 ? 0 : l] = 0;
    snprintf(want, sizeof want, "%d/task/%d", pid, pid);
    say("thread-self %d", strcmp(link, want) == 0);
    snprintf(path, sizeof path, "/proc/self/task/%d/task", other);
    errno = 0;
    say("task in task %s", stat(path, &st) == 0 ? "there" : strerror(errno));
    pthread_barrier_wait(&done);
    pthread_join(t, NULL);
    // The join returns once the thread cleared its tid word, a little before Linux (and umon)
    // forget the thread: its directory goes soon after, not at once.
    snprintf(path, sizeof path, "/proc/%d", other);
    int gone = 0;
    for (int i = 0; i < 10000 && !gone; i++) {
        errno = 0;
        gone = stat(path, &st) != 0;
        if (!gone)
            usleep(1000);
    }
    say("ended thread %s", gone ? strerror(errno) : "there");
}

// /proc/self/stat, statm, comm: shapes and the values the app knows.
static void stat_(void) {
    prctl(PR_SET_NAME, "sv-renamed");
    char *t = slurp("/proc/self/stat", 4096, NULL);
    char *p = strrchr(t, ')');
    int fields = 2;
    for (char *q = p + 1; *q; q++)
        fields += *q == ' ';
    say("stat fields %d pid same %d comm %.13s state %c threads %lu", fields,
        atol(t) == getpid(), strchr(t, '('), p[2], stat_field("/proc/self/stat", 20));
    unsigned long rsslim = stat_field("/proc/self/stat", 25);
    struct rlimit r;
    getrlimit(RLIMIT_RSS, &r);
    say("stat rsslim as getrlimit %d", rsslim == r.rlim_cur);
    unsigned long size, res, shared, text, lib, data, dt;
    char *m = slurp("/proc/self/statm", 4096, NULL);
    int n = sscanf(m, "%lu %lu %lu %lu %lu %lu %lu", &size, &res, &shared, &text, &lib, &data, &dt);
    say("statm fields %d ordered %d", n, n == 7 && res <= size && text > 0 && data > 0 && data <= size);
    say("comm %s", slurp("/proc/self/comm", 4096, NULL));
    char *s = slurp("/proc/self/status", 4096, NULL);
    say("status name %d", strstr(s, "Name:\tsv-renamed\n") == s);
}

// /dev links, /dev/tty without a controlling terminal, statfs and getdents of /proc.
static void dev(void) {
    setsid();
    const char *links[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd"};
    for (int i = 0; i < 4; i++) {
        char buf[64];
        ssize_t n = readlink(links[i], buf, sizeof buf - 1);
        buf[n < 0 ? 0 : n] = 0;
        say("%s -> %s", links[i], buf);
    }
    struct stat st;
    int r = stat("/dev/tty", &st);
    say("stat /dev/tty %d chr %d %u:%u mode %o", r, S_ISCHR(st.st_mode), major(st.st_rdev),
        minor(st.st_rdev), st.st_mode & 07777);
    errno = 0;
    say("open /dev/tty %s", open("/dev/tty", O_RDWR) < 0 ? strerror(errno) : "ok");
    int p = open("/dev/tty", O_PATH);
    struct stat ps;
    int pr = fstat(p, &ps);
    say("O_PATH /dev/tty fstat %d chr %d %u:%u", pr, S_ISCHR(ps.st_mode), major(ps.st_rdev),
        minor(ps.st_rdev));
    close(p);
    // /dev is devtmpfs (or a tmpfs in a container): TMPFS_MAGIC either way.
    const char *dirs[] = {"/proc", "/sys", "/proc/self", "/proc/sys/kernel", "/dev"};
    for (int i = 0; i < 5; i++) {
        struct statfs f, ff;
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY);
        int a = statfs(dirs[i], &f), b = fstatfs(fd, &ff);
        say("statfs %s %d type %lx fstatfs same %d dir %d", dirs[i], a, (unsigned long)f.f_type,
            b == 0 && ff.f_type == f.f_type, stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode));
        close(fd);
    }
    DIR *d = opendir("/proc");
    struct dirent *e;
    int self = 0, pid = 0;
    while ((e = readdir(d))) {
        self |= strcmp(e->d_name, "self") == 0 && e->d_type == DT_LNK;
        pid |= atoi(e->d_name) == getpid() && e->d_type == DT_DIR;
    }
    closedir(d);
    say("getdents /proc self %d pid %d", self, pid);
    char *a = slurp("/proc/mounts", 4096, NULL), *b = slurp("/proc/self/mounts", 4096, NULL);
    int six = 1, proc = 0;
    for (char *l = a; l && *l;) {
        char f[6][256];
        int n = sscanf(l, "%255s %255s %255s %255s %255s %255s", f[0], f[1], f[2], f[3], f[4], f[5]);
        six &= n == 6;
        proc |= n == 6 && !strcmp(f[1], "/proc") && !strcmp(f[2], "proc");
        l = strchr(l, '\n');
        l = l ? l + 1 : NULL;
    }
    say("mounts same %d six fields %d proc %d", a && b && !strcmp(a, b), six, proc);
    char *c = slurp("/proc/self/cgroup", 4096, NULL);
    say("cgroup %s", c ? c : strerror(errno));
}

// /dev/tty when stdin is a terminal: that terminal, read-write.
static void tty(void) {
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0) {
        say("open /dev/tty %s", strerror(errno));
        return;
    }
    struct termios t;
    struct stat st;
    fstat(fd, &st);
    say("tty isatty %d tcgetattr %d chr %d %u:%u", isatty(fd), tcgetattr(fd, &t),
        S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev));
    say("tty write %zd", write(fd, "via /dev/tty\n", 13));
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t l = readlink(path, link, sizeof link - 1);
    link[l < 0 ? 0 : l] = 0;
    say("tty fd link %s", link);
    int ro = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    say("tty write-only flags 0%o", fcntl(ro, F_GETFL));
    errno = 0;
    char c;
    ssize_t n = read(ro, &c, 1);
    say("tty write-only read %zd %s", n, strerror(errno));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "auxv"))
            auxv();
        else if (!strcmp(argv[i], "limits"))
            limits();
        else if (!strncmp(argv[i], "fdinfo=", 7))
            fdinfo(argv[i] + 7);
        else if (!strcmp(argv[i], "task"))
            task();
        else if (!strcmp(argv[i], "stat"))
            stat_();
        else if (!strcmp(argv[i], "dev"))
            dev();
        else if (!strcmp(argv[i], "tty"))
            tty();
    }
    return 0;
}
