// Calls real programs make that umon lacked until session 11 (tests/more_calls.rs): the user
// and group id family, getcpu, utime/utimes/futimesat, sync/syncfs/sync_file_range,
// readahead, preadv2/pwritev2, the old getdents, and the protection-key calls.
//   more_calls compare DIR   answers comparable with a native run (any user), byte for byte
//   more_calls guest DIR     what umon answers as an unprivileged process without OSPKE
// DIR is a writable directory (a volume under umon, the same path natively). Every call goes
// through syscall(2), so glibc and musl builds make the same calls.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BAD 8L
#define SHOW(label, v) printf("%s = %ld\n", label, (long)(v))

static long sys(long n, long a, long b, long c, long d, long e, long f) {
    long v = syscall(n, a, b, c, d, e, f);
    return v < 0 ? -errno : v;
}
#define S0(n) sys(n, 0, 0, 0, 0, 0, 0)
#define S1(n, a) sys(n, (long)(a), 0, 0, 0, 0, 0)
#define S2(n, a, b) sys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(n, a, b, c) sys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(n, a, b, c, d) sys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S6(n, a, b, c, d, e, f) sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static char path[4096];
static const char *in(const char *dir, const char *leaf) {
    snprintf(path, sizeof path, "%s/%s", dir, leaf);
    return path;
}

static void ids(void) {
    long uid = S0(SYS_getuid), gid = S0(SYS_getgid);
    unsigned r = 1, e = 1, s = 1;
    SHOW("getresuid", S3(SYS_getresuid, &r, &e, &s));
    printf("  all getuid %d\n", r == uid && e == uid && s == uid);
    r = e = s = 1;
    SHOW("getresgid", S3(SYS_getresgid, &r, &e, &s));
    printf("  all getgid %d\n", r == gid && e == gid && s == gid);
    SHOW("getresuid bad first", S3(SYS_getresuid, BAD, &e, &s));
    r = 12345;
    SHOW("getresuid bad last", S3(SYS_getresuid, &r, &e, BAD));
    printf("  first written %d\n", r == uid);
    SHOW("getresgid null", S3(SYS_getresgid, 0, 0, 0));
    SHOW("setuid own", S1(SYS_setuid, uid));
    SHOW("setgid own", S1(SYS_setgid, gid));
    SHOW("setuid -1", S1(SYS_setuid, -1));
    SHOW("setgid -1", S1(SYS_setgid, -1));
    SHOW("setreuid -1 -1", S2(SYS_setreuid, -1, -1));
    SHOW("setreuid own own", S2(SYS_setreuid, uid, uid));
    SHOW("setregid -1 own", S2(SYS_setregid, -1, gid));
    SHOW("setresuid -1 own -1", S3(SYS_setresuid, -1, uid, -1));
    SHOW("setresuid own own own", S3(SYS_setresuid, uid, uid, uid));
    SHOW("setresgid own -1 own", S3(SYS_setresgid, gid, -1, gid));
    printf("setfsuid own is old %d\n", S1(SYS_setfsuid, uid) == uid);
    printf("setfsuid -1 is old %d\n", S1(SYS_setfsuid, -1) == uid);
    printf("setfsgid own is old %d\n", S1(SYS_setfsgid, gid) == gid);
    // The ids are unchanged after all of that.
    printf("ids unchanged %d\n", S0(SYS_geteuid) == uid && S0(SYS_getegid) == gid);
}

static void cpu(void) {
    unsigned c = 999, n = 999;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    SHOW("getcpu", S3(SYS_getcpu, &c, &n, 0));
    printf("  cpu in range %d node 0 %d\n", (long)c < cpus, n == 0);
    SHOW("getcpu nulls", S3(SYS_getcpu, 0, 0, 0));
    SHOW("getcpu bad cpu", S3(SYS_getcpu, BAD, &n, 0));
    SHOW("getcpu bad node", S3(SYS_getcpu, &c, BAD, 0));
    SHOW("getcpu bad cache", S3(SYS_getcpu, &c, &n, BAD));
}

static void times_(const char *dir) {
    const char *f = in(dir, "times");
    close(open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    struct stat st;
    long ub[2] = {1000000000L, 1100000000L};
    SHOW("utime", S2(SYS_utime, f, ub));
    stat(f, &st);
    printf("  atime %ld.%09ld mtime %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timeval tv[2] = {{1200000000L, 250000}, {1300000000L, 999999}};
    SHOW("utimes", S2(SYS_utimes, f, tv));
    stat(f, &st);
    printf("  atime %ld.%09ld mtime %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    tv[1].tv_sec = 1400000000L;
    SHOW("futimesat dirfd", S3(SYS_futimesat, d, "times", tv));
    stat(f, &st);
    printf("  mtime %ld\n", (long)st.st_mtim.tv_sec);
    int fd = open(f, O_RDWR);
    tv[1].tv_sec = 1500000000L;
    SHOW("futimesat fd null path", S3(SYS_futimesat, fd, 0, tv));
    stat(f, &st);
    printf("  mtime %ld\n", (long)st.st_mtim.tv_sec);
    SHOW("futimesat cwd null path", S3(SYS_futimesat, AT_FDCWD, 0, tv));
    SHOW("utimes null path", S2(SYS_utimes, 0, tv));
    SHOW("utime now", S2(SYS_utime, f, 0));
    stat(f, &st);
    printf("  mtime recent %d\n", labs((long)st.st_mtim.tv_sec - (long)time(0)) < 100);
    SHOW("utimes now", S2(SYS_utimes, f, 0));
    struct timeval badu[2] = {{1, 1000000}, {1, 0}};
    SHOW("utimes usec 1e6", S2(SYS_utimes, f, badu));
    badu[0].tv_usec = -1;
    SHOW("utimes usec -1", S2(SYS_utimes, f, badu));
    badu[0].tv_usec = 0;
    badu[1].tv_usec = 1000000;
    SHOW("futimesat usec 1e6", S3(SYS_futimesat, d, "times", badu));
    SHOW("utime bad times", S2(SYS_utime, f, BAD));
    SHOW("utimes bad times", S2(SYS_utimes, f, BAD));
    SHOW("utime bad path", S2(SYS_utime, BAD, ub));
    SHOW("utime missing", S2(SYS_utime, in(dir, "nope"), ub));
    SHOW("futimesat bad dirfd", S3(SYS_futimesat, 999, "times", tv));
    close(fd);
    close(d);
}

static void syncs(const char *dir) {
    const char *f = in(dir, "sync");
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (write(fd, "data", 4) != 4) printf("FAIL write\n");
    SHOW("sync", S0(SYS_sync));
    SHOW("syncfs", S1(SYS_syncfs, fd));
    SHOW("syncfs bad fd", S1(SYS_syncfs, 999));
    int p[2];
    if (pipe(p)) printf("FAIL pipe\n");
    SHOW("syncfs pipe", S1(SYS_syncfs, p[0]));
    int op = open(f, O_PATH);
    SHOW("syncfs O_PATH", S1(SYS_syncfs, op));
    SHOW("sync_file_range write", S4(SYS_sync_file_range, fd, 0, 0, 2));
    SHOW("sync_file_range all flags", S4(SYS_sync_file_range, fd, 0, 4, 7));
    SHOW("sync_file_range none", S4(SYS_sync_file_range, fd, 1, 2, 0));
    SHOW("sync_file_range bad flag", S4(SYS_sync_file_range, fd, 0, 0, 8));
    SHOW("sync_file_range offset -1", S4(SYS_sync_file_range, fd, -1, 0, 2));
    SHOW("sync_file_range nbytes -1", S4(SYS_sync_file_range, fd, 0, -1, 2));
    SHOW("sync_file_range overflow", S4(SYS_sync_file_range, fd, 0x7fffffffffffffffL, 1, 2));
    SHOW("sync_file_range pipe", S4(SYS_sync_file_range, p[0], 0, 0, 2));
    SHOW("sync_file_range bad fd", S4(SYS_sync_file_range, 999, 0, 0, 2));
    SHOW("sync_file_range O_PATH", S4(SYS_sync_file_range, op, 0, 0, 2));
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("sync_file_range dir", S4(SYS_sync_file_range, d, 0, 0, 2));
    SHOW("readahead", S3(SYS_readahead, fd, 0, 4096));
    SHOW("readahead huge", S3(SYS_readahead, fd, 1L << 40, 1L << 40));
    SHOW("readahead dir", S3(SYS_readahead, d, 0, 4096));
    SHOW("readahead pipe", S3(SYS_readahead, p[0], 0, 4096));
    SHOW("readahead bad fd", S3(SYS_readahead, 999, 0, 4096));
    int wo = open(f, O_WRONLY);
    SHOW("readahead write-only", S3(SYS_readahead, wo, 0, 4096));
    SHOW("readahead O_PATH", S3(SYS_readahead, op, 0, 4096));
    close(wo);
    close(op);
    close(d);
    close(p[0]);
    close(p[1]);
    close(fd);
}

/* The memory devices as Linux's mem driver: null and zero take any write whole without
 * reading the buffer, full refuses every write, urandom reads the buffer. */
static void devs(void) {
    int n = open("/dev/null", O_WRONLY), z = open("/dev/zero", O_RDWR);
    int f = open("/dev/full", O_WRONLY), u = open("/dev/urandom", O_WRONLY);
    int ro = open("/dev/null", O_RDONLY);
    struct iovec v[2] = {{(void *)BAD, 5}, {(void *)(BAD + 64), 7}};
    SHOW("write null bad buffer", S3(SYS_write, n, BAD, 10));
    SHOW("write zero bad buffer", S3(SYS_write, z, BAD, 10));
    SHOW("write full bad buffer", S3(SYS_write, f, BAD, 10));
    SHOW("write full empty", S3(SYS_write, f, "x", 0));
    SHOW("write full", S3(SYS_write, f, "x", 1));
    SHOW("write urandom bad buffer", S3(SYS_write, u, BAD, 10));
    SHOW("write null read-only", S3(SYS_write, ro, "x", 1));
    SHOW("writev null bad buffers", S3(SYS_writev, n, v, 2));
    SHOW("writev null bad iov", S3(SYS_writev, n, BAD, 2));
    SHOW("writev null read-only", S3(SYS_writev, ro, v, 2));
    SHOW("writev null read-only bad iov", S3(SYS_writev, ro, BAD, 2));
    SHOW("writev full bad buffers", S3(SYS_writev, f, v, 2));
    struct iovec empty[2] = {{(void *)BAD, 0}, {(void *)BAD, 0}};
    SHOW("writev full empty", S3(SYS_writev, f, empty, 2));
    SHOW("writev full bad iov", S3(SYS_writev, f, BAD, 2));
    SHOW("pwrite null bad buffer", S4(SYS_pwrite64, n, BAD, 10, 0));
    SHOW("write null past the user half", S3(SYS_write, n, 0x7ffffffff000L, 0x2000));
    SHOW("read null bad buffer", S3(SYS_read, n, BAD, 10));
    close(n);
    close(z);
    close(f);
    close(u);
    close(ro);
}

/* A /proc file is generated when read from its start, not when opened (seq_file). */
static void proc_reads(void) {
    static char buf[1 << 16];
    int fd = open("/proc/self/maps", O_RDONLY);
    char *p = mmap((void *)0x7e1230000000L, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p != (void *)0x7e1230000000L)
        printf("FAIL mmap at the fixed address\n");
    long n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("maps opened before the mmap shows it: %d\n", strstr(buf, "7e1230000000-") != 0);
    munmap(p, 4096);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("after munmap, rewound: %d\n", strstr(buf, "7e1230000000-") != 0);
    n = pread(fd, buf, 64, 0);
    printf("pread at 0: %d\n", n > 0);
    close(fd);
}

static void rw2(const char *dir) {
    const char *f = in(dir, "rw2");
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char a[] = "hello ", b[] = "world";
    struct iovec w[2] = {{a, 6}, {b, 5}};
    SHOW("pwritev2 at 0", S6(SYS_pwritev2, fd, w, 2, 0, 0, 0));
    SHOW("position after", lseek(fd, 0, SEEK_CUR));
    char x[4] = {0}, y[8] = {0};
    struct iovec r[2] = {{x, 3}, {y, 7}};
    SHOW("preadv2 at 2", S6(SYS_preadv2, fd, r, 2, 2, 0, 0));
    printf("  %s|%s\n", x, y);
    SHOW("pwritev2 at -1 (position)", S6(SYS_pwritev2, fd, w, 1, -1, 0, 0));
    SHOW("position after", lseek(fd, 0, SEEK_CUR));
    lseek(fd, 0, SEEK_SET);
    memset(y, 0, sizeof y);
    struct iovec r1 = {y, 7};
    SHOW("preadv2 at -1 (position)", S6(SYS_preadv2, fd, &r1, 1, -1, 0, 0));
    printf("  %s position %ld\n", y, (long)lseek(fd, 0, SEEK_CUR));
    SHOW("preadv2 hipri", S6(SYS_preadv2, fd, &r1, 1, 0, 0, 1));
    SHOW("pwritev2 dsync", S6(SYS_pwritev2, fd, w, 1, 20, 0, 2));
    SHOW("pwritev2 sync", S6(SYS_pwritev2, fd, w, 1, 30, 0, 4));
    SHOW("preadv2 dsync|sync", S6(SYS_preadv2, fd, &r1, 1, 0, 0, 6));
    SHOW("preadv2 unknown flag", S6(SYS_preadv2, fd, &r1, 1, 0, 0, 0x10000));
    SHOW("pwritev2 unknown flag", S6(SYS_pwritev2, fd, w, 1, 0, 0, 0x10000));
    SHOW("preadv2 at -2", S6(SYS_preadv2, fd, &r1, 1, -2, 0, 0));
    SHOW("preadv2 bad fd", S6(SYS_preadv2, 999, &r1, 1, 0, 0, 0));
    SHOW("preadv2 bad iov", S6(SYS_preadv2, fd, BAD, 1, 0, 0, 0));
    struct iovec rb = {(void *)BAD, 4};
    SHOW("preadv2 bad buffer", S6(SYS_preadv2, fd, &rb, 1, 0, 0, 0));
    SHOW("preadv2 iovcnt 1025", S6(SYS_preadv2, fd, &r1, 1025, 0, 0, 0));
    int p[2];
    if (pipe(p)) printf("FAIL pipe\n");
    if (write(p[1], "pipe", 4) != 4) printf("FAIL write\n");
    SHOW("preadv2 pipe at 0", S6(SYS_preadv2, p[0], &r1, 1, 0, 0, 0));
    memset(y, 0, sizeof y);
    SHOW("preadv2 pipe at -1", S6(SYS_preadv2, p[0], &r1, 1, -1, 0, 0));
    printf("  %s\n", y);
    SHOW("pwritev2 read-only pipe end", S6(SYS_pwritev2, p[0], w, 1, -1, 0, 0));
    close(p[0]);
    close(p[1]);
    struct stat st;
    fstat(fd, &st);
    SHOW("size", st.st_size);
    close(fd);
}

struct old_dirent {
    unsigned long d_ino;
    unsigned long d_off;
    unsigned short d_reclen;
    char d_name[];
};

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void dents(const char *dir) {
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/dents", dir);
    mkdir(sub, 0755);
    const char *names[] = {"a", "bb", "ccc", "a-rather-long-name-for-an-entry.txt", "dddddddd"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", sub, names[i]);
        close(open(p, O_WRONLY | O_CREAT, 0644));
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/subdir", sub);
    mkdir(p, 0755);
    int d = open(sub, O_RDONLY | O_DIRECTORY);
    char *seen[32];
    int n = 0, calls = 0;
    static char buf[80]; // small: several calls
    for (;;) {
        long got = S3(SYS_getdents, d, buf, sizeof buf);
        calls++;
        if (got <= 0) {
            SHOW("getdents last", got);
            break;
        }
        for (long at = 0; at < got;) {
            struct old_dirent *e = (void *)(buf + at);
            char type = buf[at + e->d_reclen - 1];
            char line[300];
            snprintf(line, sizeof line, "%s type %d reclen ok %d", e->d_name, type,
                     e->d_reclen == ((18 + strlen(e->d_name) + 2 + 7) & ~7UL));
            if (n < 32) seen[n++] = strdup(line);
            at += e->d_reclen;
        }
    }
    qsort(seen, n, sizeof *seen, cmp);
    for (int i = 0; i < n; i++) printf("  %s\n", seen[i]);
    printf("  several calls %d\n", calls > 2);
    lseek(d, 0, SEEK_SET);
    SHOW("getdents count 1", S3(SYS_getdents, d, buf, 1));
    SHOW("getdents bad buffer", S3(SYS_getdents, d, BAD, sizeof buf));
    SHOW("getdents bad fd", S3(SYS_getdents, 999, buf, sizeof buf));
    int f = open(in(dir, "times"), O_RDONLY | O_CREAT, 0644);
    SHOW("getdents file", S3(SYS_getdents, f, buf, sizeof buf));
    close(f);
    close(d);
}

static void guest(void) {
    long uid = S0(SYS_getuid), gid = S0(SYS_getgid);
    SHOW("setuid other", S1(SYS_setuid, uid + 1));
    SHOW("setgid other", S1(SYS_setgid, gid + 1));
    SHOW("setreuid other", S2(SYS_setreuid, -1, uid + 1));
    SHOW("setresuid other saved", S3(SYS_setresuid, -1, -1, uid + 1));
    SHOW("setresgid other real", S3(SYS_setresgid, gid + 1, -1, -1));
    printf("setfsuid other is old %d\n", S1(SYS_setfsuid, uid + 1) == uid);
    printf("fsuid unchanged %d\n", S1(SYS_setfsuid, -1) == uid);
    SHOW("pkey_alloc", S2(SYS_pkey_alloc, 0, 0));
    SHOW("pkey_alloc disable write", S2(SYS_pkey_alloc, 0, 2));
    SHOW("pkey_alloc bad flags", S2(SYS_pkey_alloc, 1, 0));
    SHOW("pkey_alloc bad rights", S2(SYS_pkey_alloc, 0, 4));
    SHOW("pkey_free 0", S1(SYS_pkey_free, 0));
    SHOW("pkey_free 1", S1(SYS_pkey_free, 1));
    char *m = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SHOW("pkey_mprotect -1", S4(SYS_pkey_mprotect, m, 4096, PROT_READ, -1));
    SHOW("pkey_mprotect 0", S4(SYS_pkey_mprotect, m, 4096, PROT_READ, 0));
    SHOW("pkey_mprotect 1", S4(SYS_pkey_mprotect, m, 4096, PROT_READ, 1));
    SHOW("pkey_mprotect len 0 key 5", S4(SYS_pkey_mprotect, m, 0, PROT_READ, 5));
    SHOW("pkey_mprotect unaligned", S4(SYS_pkey_mprotect, m + 1, 4096, PROT_READ, -1));
    SHOW("pkey_mprotect bad prot", S4(SYS_pkey_mprotect, m, 4096, 0x100, -1));
    // The page is read-only now (key -1 worked): writing it is the signal's business; reading
    // is fine.
    printf("readable %d\n", m[0] == 0);
    struct iovec r1 = {m + 4096, 4};
    SHOW("preadv2 nowait", S6(SYS_preadv2, 0, &r1, 1, -1, 0, 8));
    SHOW("pwritev2 append", S6(SYS_pwritev2, 1, &r1, 1, -1, 0, 0x10));
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (!strcmp(argv[1], "compare")) {
        ids();
        cpu();
        times_(argv[2]);
        syncs(argv[2]);
        rw2(argv[2]);
        dents(argv[2]);
        devs();
        proc_reads();
    } else if (!strcmp(argv[1], "guest")) {
        guest();
    } else {
        return 2;
    }
    return 0;
}
