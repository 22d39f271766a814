// The long tail of syscalls distribution programs make (tests/longtail.rs).
//   longtail_calls compare DIR   values comparable with a native run, byte for byte
//   longtail_calls guest DIR     the answers of an unprivileged process (umon's), whatever the host
//   longtail_calls hostile DIR   bad pointers, sizes, flags: errnos as Linux's
//   longtail_calls inotifywait DIR       a blocking inotify read cut short by signals
//   longtail_calls lockwait FILE [signal]  F_SETLKW on a byte another open file description
//                                          holds: cut short by signals, else waits forever
// DIR is a writable directory (a volume under umon, the same path natively).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <time.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BAD ((void *)8)
static long r(long v) { return v < 0 ? -errno : v; }
#define SHOW(label, call) do { errno = 0; long v_ = (call); printf("%s = %ld\n", label, v_ < 0 ? -errno : v_); } while (0)
static long sys(long n, long a, long b, long c, long d, long e) {
    long v = syscall(n, a, b, c, d, e);
    return v < 0 ? -errno : v;
}

static char path[4096];
static const char *in(const char *dir, const char *leaf) {
    snprintf(path, sizeof path, "%s/%s", dir, leaf);
    return path;
}

static void locks(const char *dir) {
    const char *f = in(dir, "locks.db");
    int a = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644), b = open(f, O_RDWR);
    if (a < 0 || b < 0) { printf("FAIL open %d\n", errno); return; }
    if (write(a, "0123456789abcdefghijklmnopqrstuvwxyz", 36) != 36) printf("FAIL write\n");
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    SHOW("setlk posix wr 0..10", r(fcntl(a, F_SETLK, &l)));
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
    SHOW("getlk posix own process", r(fcntl(b, F_GETLK, &q)));
    printf("  type unlocked %d\n", q.l_type == F_UNLCK);
    struct flock o = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
    SHOW("ofd getlk vs posix", r(fcntl(b, F_OFD_GETLK, &o)));
    printf("  type wr %d start %ld len %ld pid is mine %d\n", o.l_type == F_WRLCK, (long)o.l_start,
           (long)o.l_len, o.l_pid == getpid());
    o = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 3};
    SHOW("ofd setlk conflicting", r(fcntl(b, F_OFD_SETLK, &o)));
    o = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5};
    SHOW("ofd setlk 20..25", r(fcntl(b, F_OFD_SETLK, &o)));
    q = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    SHOW("posix getlk whole vs ofd", r(fcntl(a, F_GETLK, &q)));
    printf("  type wr %d start %ld len %ld pid %d\n", q.l_type == F_WRLCK, (long)q.l_start,
           (long)q.l_len, q.l_pid);
    o = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 21, .l_len = 1};
    int c = open(f, O_RDWR);
    SHOW("ofd getlk other ofd", r(fcntl(c, F_OFD_GETLK, &o)));
    printf("  type wr %d start %ld len %ld pid %d\n", o.l_type == F_WRLCK, (long)o.l_start,
           (long)o.l_len, o.l_pid);
    o.l_pid = 7;
    SHOW("ofd setlk with l_pid", r(fcntl(c, F_OFD_SETLK, &o)));
    l.l_type = F_UNLCK;
    SHOW("posix unlock", r(fcntl(a, F_SETLK, &l)));
    o = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 3};
    SHOW("ofd setlk after unlock", r(fcntl(b, F_OFD_SETLK, &o)));
    SHOW("flock ex a", r(flock(a, LOCK_EX)));
    SHOW("flock ex|nb b", r(flock(b, LOCK_EX | LOCK_NB)));
    SHOW("flock un a", r(flock(a, LOCK_UN)));
    SHOW("flock sh|nb b", r(flock(b, LOCK_SH | LOCK_NB)));
    close(a); close(b); close(c);
}

static void ids(void) {
    int n = getgroups(0, NULL);
    gid_t g[256];
    int m = getgroups(256, g);
    printf("getgroups %d %d", n, m);
    for (int i = 0; i < m; i++) printf(" %u", g[i]);
    printf("\n");
    if (n > 0) SHOW("getgroups too small", r(getgroups(n - 1, g)));
}

static void prctls(void) {
    char name[32] = {0};
    SHOW("set name", r(prctl(PR_SET_NAME, "longtail-name-too-long")));
    SHOW("get name", r(prctl(PR_GET_NAME, name)));
    printf("  name %s\n", name);
    int v = -1;
    SHOW("set pdeathsig", r(prctl(PR_SET_PDEATHSIG, SIGUSR1)));
    SHOW("get pdeathsig", r(prctl(PR_GET_PDEATHSIG, &v)));
    printf("  pdeathsig %d\n", v);
    SHOW("set pdeathsig 65", r(prctl(PR_SET_PDEATHSIG, 65)));
    SHOW("get dumpable", r(prctl(PR_GET_DUMPABLE)));
    SHOW("set dumpable 0", r(prctl(PR_SET_DUMPABLE, 0)));
    SHOW("get dumpable", r(prctl(PR_GET_DUMPABLE)));
    SHOW("set dumpable 2", r(prctl(PR_SET_DUMPABLE, 2)));
    SHOW("set subreaper", r(prctl(PR_SET_CHILD_SUBREAPER, 1)));
    v = -1;
    SHOW("get subreaper", r(prctl(PR_GET_CHILD_SUBREAPER, &v)));
    printf("  subreaper %d\n", v);
    SHOW("get no_new_privs", r(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
    SHOW("set no_new_privs", r(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
    SHOW("get no_new_privs", r(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
    SHOW("capbset_read chown", r(prctl(PR_CAPBSET_READ, 0)));
    SHOW("capbset_read 999", r(prctl(PR_CAPBSET_READ, 999)));
    SHOW("get seccomp", r(prctl(PR_GET_SECCOMP)));
    SHOW("unknown option", r(prctl(0x7fff0000)));
}

static void barriers(void) {
    long q = sys(SYS_membarrier, 0, 0, 0, 0, 0);
    // umon has no rseq, so it leaves out the rseq commands, as a kernel without CONFIG_RSEQ.
    printf("membarrier query %ld\n", q < 0 ? q : (q & ~0x180L));
    printf("membarrier private unregistered %ld\n", sys(SYS_membarrier, 8, 0, 0, 0, 0));
    printf("membarrier register private %ld\n", sys(SYS_membarrier, 16, 0, 0, 0, 0));
    printf("membarrier private %ld\n", sys(SYS_membarrier, 8, 0, 0, 0, 0));
    printf("membarrier sync_core unregistered %ld\n", sys(SYS_membarrier, 32, 0, 0, 0, 0));
    printf("membarrier register sync_core %ld\n", sys(SYS_membarrier, 64, 0, 0, 0, 0));
    printf("membarrier sync_core %ld\n", sys(SYS_membarrier, 32, 0, 0, 0, 0));
    printf("membarrier global expedited %ld\n", sys(SYS_membarrier, 2, 0, 0, 0, 0));
    printf("membarrier registrations %ld\n", sys(SYS_membarrier, 512, 0, 0, 0, 0));
    printf("membarrier flags %ld\n", sys(SYS_membarrier, 8, 1, 0, 0, 0));
    printf("membarrier two commands %ld\n", sys(SYS_membarrier, 24, 0, 0, 0, 0));
    printf("membarrier unknown %ld\n", sys(SYS_membarrier, 1 << 20, 0, 0, 0, 0));
}

static void priorities(void) {
    printf("getpriority raw %ld\n", sys(SYS_getpriority, PRIO_PROCESS, 0, 0, 0, 0));
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    SHOW("setpriority +3", r(setpriority(PRIO_PROCESS, 0, base + 3)));
    errno = 0;
    printf("nice now base+%d\n", getpriority(PRIO_PROCESS, 0) - base);
    // The process group and the user have other processes natively (the shell, the test).
    printf("getpriority tid raw %ld\n", sys(SYS_getpriority, PRIO_PROCESS, syscall(SYS_gettid), 0, 0, 0));
    printf("getpriority bad which %ld\n", sys(SYS_getpriority, 7, 0, 0, 0, 0));
    printf("getpriority no such pid %ld\n", sys(SYS_getpriority, PRIO_PROCESS, 0x3ffffff0, 0, 0, 0));
    printf("setpriority clamp %ld\n", sys(SYS_setpriority, PRIO_PROCESS, 0, 100, 0, 0));
    printf("getpriority raw after clamp %ld\n", sys(SYS_getpriority, PRIO_PROCESS, 0, 0, 0, 0));
    struct sched_param p = {0};
    SHOW("getscheduler", sys(SYS_sched_getscheduler, 0, 0, 0, 0, 0));
    SHOW("getscheduler -1", sys(SYS_sched_getscheduler, -1, 0, 0, 0, 0));
    SHOW("getscheduler no such pid", sys(SYS_sched_getscheduler, 0x3ffffff0, 0, 0, 0, 0));
    p.sched_priority = 42;
    SHOW("getparam", sys(SYS_sched_getparam, 0, (long)&p, 0, 0, 0));
    printf("  priority %d\n", p.sched_priority);
    SHOW("getparam NULL", sys(SYS_sched_getparam, 0, 0, 0, 0, 0));
    SHOW("getparam bad", sys(SYS_sched_getparam, 0, 8, 0, 0, 0));
    p.sched_priority = 0;
    SHOW("setscheduler batch", sys(SYS_sched_setscheduler, 0, SCHED_BATCH, (long)&p, 0, 0));
    SHOW("getscheduler", sys(SYS_sched_getscheduler, 0, 0, 0, 0, 0));
    SHOW("setscheduler other reset_on_fork", sys(SYS_sched_setscheduler, 0, SCHED_OTHER | SCHED_RESET_ON_FORK, (long)&p, 0, 0));
    SHOW("getscheduler", sys(SYS_sched_getscheduler, 0, 0, 0, 0, 0));
    SHOW("setparam 0", sys(SYS_sched_setparam, 0, (long)&p, 0, 0, 0));
    SHOW("getscheduler", sys(SYS_sched_getscheduler, 0, 0, 0, 0, 0));
    p.sched_priority = 5;
    SHOW("setscheduler other prio 5", sys(SYS_sched_setscheduler, 0, SCHED_OTHER, (long)&p, 0, 0));
    SHOW("setparam 5", sys(SYS_sched_setparam, 0, (long)&p, 0, 0, 0));
    p.sched_priority = 0;
    SHOW("setscheduler fifo prio 0", sys(SYS_sched_setscheduler, 0, SCHED_FIFO, (long)&p, 0, 0));
    SHOW("setscheduler 42", sys(SYS_sched_setscheduler, 0, 42, (long)&p, 0, 0));
    SHOW("setscheduler deadline", sys(SYS_sched_setscheduler, 0, SCHED_DEADLINE, (long)&p, 0, 0));
    SHOW("setscheduler NULL", sys(SYS_sched_setscheduler, 0, 0, 0, 0, 0));
    SHOW("setscheduler bad param", sys(SYS_sched_setscheduler, 0, 0, 8, 0, 0));
    int pol[] = {SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE, 4, 42, -1};
    for (unsigned i = 0; i < sizeof pol / sizeof *pol; i++)
        printf("policy %d max %ld min %ld\n", pol[i], sys(SYS_sched_get_priority_max, pol[i], 0, 0, 0, 0),
               sys(SYS_sched_get_priority_min, pol[i], 0, 0, 0, 0));
    printf("ioprio get %ld\n", sys(SYS_ioprio_get, 1, 0, 0, 0, 0));
    printf("ioprio set idle %ld\n", sys(SYS_ioprio_set, 1, 0, 3 << 13, 0, 0));
    printf("ioprio get %ld\n", sys(SYS_ioprio_get, 1, 0, 0, 0, 0));
    printf("ioprio set be 4 %ld\n", sys(SYS_ioprio_set, 1, 0, (2 << 13) | 4, 0, 0));
    printf("ioprio get pgrp %ld\n", sys(SYS_ioprio_get, 2, 0, 0, 0, 0));
    printf("ioprio set be 9 %ld\n", sys(SYS_ioprio_set, 1, 0, (2 << 13) | 9, 0, 0));
    printf("ioprio set none 1 %ld\n", sys(SYS_ioprio_set, 1, 0, 1, 0, 0));
    printf("ioprio set class 5 %ld\n", sys(SYS_ioprio_set, 1, 0, 5 << 13, 0, 0));
    printf("ioprio bad which %ld\n", sys(SYS_ioprio_get, 9, 0, 0, 0, 0));
    printf("ioprio no such pid %ld\n", sys(SYS_ioprio_get, 1, 0x3ffffff0, 0, 0, 0));
    printf("personality %ld\n", sys(SYS_personality, 0xffffffff, 0, 0, 0, 0));
}

static void memfds(void) {
    int fd = memfd_create("longtail", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("memfd ok %d cloexec %d\n", fd >= 0, fcntl(fd, F_GETFD));
    SHOW("write", r(write(fd, "hello memfd", 11)));
    SHOW("lseek", r(lseek(fd, 0, SEEK_SET)));
    char buf[32] = {0};
    SHOW("read", r(read(fd, buf, sizeof buf)));
    printf("  %s\n", buf);
    struct stat st;
    SHOW("fstat", r(fstat(fd, &st)));
    printf("  size %ld regular %d mode %o\n", (long)st.st_size, S_ISREG(st.st_mode), st.st_mode & 0777);
    SHOW("ftruncate", r(ftruncate(fd, 8192)));
    fstat(fd, &st);
    printf("  size %ld\n", (long)st.st_size);
    char *m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mmap %s\n", m == MAP_FAILED ? "failed" : m);
    if (m != MAP_FAILED) munmap(m, 8192);
    SHOW("get seals", r(fcntl(fd, F_GET_SEALS)));
    SHOW("add seal write", r(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK)));
    SHOW("get seals", r(fcntl(fd, F_GET_SEALS)));
    SHOW("write sealed", r(write(fd, "x", 1)));
    SHOW("shrink sealed", r(ftruncate(fd, 10)));
    SHOW("grow sealed", r(ftruncate(fd, 9000)));
    SHOW("add seal seal", r(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL)));
    SHOW("add seal after seal", r(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW)));
    close(fd);
    fd = memfd_create("plain", 0);
    printf("plain cloexec %d\n", fcntl(fd, F_GETFD));
    SHOW("plain get seals", r(fcntl(fd, F_GET_SEALS)));
    SHOW("plain add seals", r(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    SHOW("stdout get seals", r(fcntl(1, F_GET_SEALS)));
    close(fd);
}

static void xattrs(const char *dir) {
    const char *f = in(dir, "attrs");
    close(open(f, O_RDWR | O_CREAT, 0644));
    char buf[256];
    SHOW("getxattr user", r(getxattr(f, "user.longtail", buf, sizeof buf)));
    SHOW("lgetxattr user", r(lgetxattr(f, "user.longtail", buf, sizeof buf)));
    SHOW("getxattr unknown namespace", r(getxattr(f, "longtail.x", buf, sizeof buf)));
    SHOW("getxattr missing file", r(getxattr(in(dir, "missing"), "user.x", buf, sizeof buf)));
    int fd = open(in(dir, "attrs"), O_RDONLY);
    SHOW("fgetxattr user", r(fgetxattr(fd, "user.longtail", buf, sizeof buf)));
    close(fd);
}

static void fs_values(const char *dir) {
    struct statfs a, b;
    SHOW("statfs", r(statfs(dir, &a)));
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("fstatfs", r(fstatfs(fd, &b)));
    close(fd);
    printf("  type %lx bsize %ld namelen %ld blocks %ld same %d\n", (long)a.f_type, (long)a.f_bsize,
           (long)a.f_namelen, (long)a.f_blocks, a.f_blocks == b.f_blocks && a.f_type == b.f_type);
    SHOW("chown own ids", r(chown(in(dir, "attrs"), getuid(), getgid())));
    SHOW("chown unchanged", r(chown(in(dir, "attrs"), -1, -1)));
    SHOW("lchown own", r(lchown(in(dir, "attrs"), getuid(), -1)));
    SHOW("fchownat own", r(fchownat(AT_FDCWD, in(dir, "attrs"), -1, getgid(), 0)));
    SHOW("chown missing", r(chown(in(dir, "missing"), getuid(), getgid())));
    SHOW("fchownat bad flags", r(fchownat(AT_FDCWD, in(dir, "attrs"), -1, -1, 0x4)));
}

static void inotify(const char *dir) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    printf("inotify ok %d cloexec %d\n", fd >= 0, fcntl(fd, F_GETFD));
    SHOW("add watch", r(inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO)));
    SHOW("add same watch", r(inotify_add_watch(fd, dir, IN_CREATE | IN_MASK_ADD)));
    char buf[4096] __attribute__((aligned(8)));
    SHOW("empty read", r(read(fd, buf, sizeof buf)));
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/watched.txt", dir);
    snprintf(b, sizeof b, "%s/renamed.txt", dir);
    int f = open(a, O_WRONLY | O_CREAT, 0644);
    if (write(f, "x", 1) != 1) printf("FAIL write\n");
    close(f);
    rename(a, b);
    unlink(b);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    SHOW("poll", r(poll(&pf, 1, 10000)));
    printf("  revents %x\n", pf.revents);
    SHOW("small read", r(read(fd, buf, 4)));
    long n = r(read(fd, buf, sizeof buf));
    printf("read %ld\n", n);
    for (char *q = buf; n > 0 && q < buf + n;) {
        struct inotify_event *e = (void *)q;
        printf("  wd %d mask %x cookie set %d len %u name %s\n", e->wd, e->mask, e->cookie != 0, e->len,
               e->len ? e->name : "");
        q += sizeof *e + e->len;
    }
    int file_wd = inotify_add_watch(fd, in(dir, "attrs"), IN_ATTRIB | IN_DONT_FOLLOW);
    printf("file watch %d\n", file_wd);
    SHOW("onlydir on a file", r(inotify_add_watch(fd, in(dir, "attrs"), IN_ATTRIB | IN_ONLYDIR)));
    SHOW("missing", r(inotify_add_watch(fd, in(dir, "missing"), IN_ATTRIB)));
    SHOW("rm watch", r(inotify_rm_watch(fd, 1)));
    n = r(read(fd, buf, sizeof buf));
    printf("after rm %ld mask %x\n", n, n > 0 ? ((struct inotify_event *)buf)->mask : 0);
    SHOW("rm again", r(inotify_rm_watch(fd, 1)));
    SHOW("write", r(write(fd, "x", 1)));
    SHOW("lseek", r(lseek(fd, 0, SEEK_SET)));
    SHOW("pread", r(pread(fd, buf, sizeof buf, 0)));
    close(fd);
}

static void usage(void) {
    struct rusage a, b, t;
    getrusage(RUSAGE_SELF, &a);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 300000000UL; i++) x += i;
    getrusage(RUSAGE_SELF, &b);
    long ua = a.ru_utime.tv_sec * 1000000L + a.ru_utime.tv_usec + a.ru_stime.tv_sec * 1000000L + a.ru_stime.tv_usec;
    long ub = b.ru_utime.tv_sec * 1000000L + b.ru_utime.tv_usec + b.ru_stime.tv_sec * 1000000L + b.ru_stime.tv_usec;
    printf("rusage self grows %d\n", ub > ua);
    SHOW("rusage thread", r(getrusage(RUSAGE_THREAD, &t)));
    printf("  thread time > 0 %d\n", t.ru_utime.tv_sec + t.ru_utime.tv_usec + t.ru_stime.tv_sec + t.ru_stime.tv_usec > 0);
    SHOW("rusage children", r(getrusage(RUSAGE_CHILDREN, &t)));
    printf("  children %ld\n", (long)(t.ru_utime.tv_sec + t.ru_utime.tv_usec));
    SHOW("rusage bad who", sys(SYS_getrusage, 5, (long)&t, 0, 0, 0));
    struct tms tm;
    clock_t c = times(&tm);
    printf("times positive %d cpu ticks > 0 %d children %ld\n", c > 0, tm.tms_utime + tm.tms_stime > 0,
           (long)(tm.tms_cutime + tm.tms_cstime));
    printf("times NULL positive %d\n", sys(SYS_times, 0, 0, 0, 0, 0) > 0);
}

static void guest(const char *dir) {
    gid_t g = 0;
    SHOW("setgroups", r(setgroups(0, NULL)));
    SHOW("setgroups one", r(setgroups(1, &g)));
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    SHOW("setpriority +2", r(setpriority(PRIO_PROCESS, 0, base + 2)));
    printf("pgrp and user see only the app %d\n",
           sys(SYS_getpriority, PRIO_PGRP, 0, 0, 0, 0) == sys(SYS_getpriority, PRIO_PROCESS, 0, 0, 0, 0) &&
               sys(SYS_getpriority, PRIO_USER, 0, 0, 0, 0) == sys(SYS_getpriority, PRIO_PROCESS, 0, 0, 0, 0));
    SHOW("setpriority lower", r(setpriority(PRIO_PROCESS, 0, base)));
    struct sched_param p = {.sched_priority = 10};
    // musl's sched_setscheduler is ENOSYS by design: the raw call.
    SHOW("setscheduler fifo", sys(SYS_sched_setscheduler, 0, SCHED_FIFO, (long)&p, 0, 0));
    SHOW("setscheduler rr", sys(SYS_sched_setscheduler, 0, SCHED_RR, (long)&p, 0, 0));
    printf("ioprio set rt %ld\n", sys(SYS_ioprio_set, 1, 0, (1 << 13) | 4, 0, 0));
    const char *f = in(dir, "owned");
    close(open(f, O_RDWR | O_CREAT, 0644));
    SHOW("chown other uid", r(chown(f, getuid() + 4242, -1)));
    SHOW("chown other gid", r(chown(f, -1, 4242)));
    int fd = open(f, O_RDONLY);
    SHOW("fchown other uid", r(fchown(fd, getuid() + 4242, -1)));
    SHOW("fchown own", r(fchown(fd, getuid(), getgid())));
    SHOW("setxattr", r(setxattr(f, "user.a", "v", 1, 0)));
    SHOW("lsetxattr", r(lsetxattr(f, "user.a", "v", 1, 0)));
    SHOW("fsetxattr", r(fsetxattr(fd, "user.a", "v", 1, 0)));
    SHOW("removexattr", r(removexattr(f, "user.a")));
    SHOW("fremovexattr", r(fremovexattr(fd, "user.a")));
    char list[64];
    SHOW("listxattr", r(listxattr(f, list, sizeof list)));
    SHOW("llistxattr", r(llistxattr(f, list, sizeof list)));
    SHOW("flistxattr", r(flistxattr(fd, list, sizeof list)));
    SHOW("listxattr size 0", r(listxattr(f, NULL, 0)));
    SHOW("getxattr security", r(getxattr(f, "security.selinux", list, sizeof list)));
    close(fd);
    struct sysinfo si;
    SHOW("sysinfo", r(sysinfo(&si)));
    printf("  totalram %lu unit %u procs %u free<=total %d uptime<=600 %d\n", si.totalram, si.mem_unit,
           si.procs, si.freeram <= si.totalram, si.uptime >= 0 && si.uptime <= 600);
}

static void hostile(const char *dir) {
    const char *f = in(dir, "hostile");
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    SHOW("setlk bad ptr", r(fcntl(fd, F_SETLK, BAD)));
    SHOW("getlk bad ptr", r(fcntl(fd, F_GETLK, BAD)));
    SHOW("ofd getlk bad ptr", r(fcntl(fd, F_OFD_GETLK, BAD)));
    struct flock l = {.l_type = 9, .l_whence = SEEK_SET};
    SHOW("setlk bad type", r(fcntl(fd, F_SETLK, &l)));
    l = (struct flock){.l_type = F_RDLCK, .l_whence = 7};
    SHOW("setlk bad whence", r(fcntl(fd, F_SETLK, &l)));
    l = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = -5};
    SHOW("setlk negative start", r(fcntl(fd, F_SETLK, &l)));
    l = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 3};
    SHOW("ofd setlk with l_pid", r(fcntl(fd, F_OFD_SETLK, &l)));
    SHOW("setlk bad fd", r(fcntl(999, F_SETLK, &l)));
    SHOW("flock bad op", r(flock(fd, 0)));
    SHOW("flock bad op 3", r(flock(fd, 3)));
    SHOW("flock bad fd", r(flock(999, LOCK_EX)));
    int pathfd = open(f, O_PATH);
    SHOW("flock O_PATH", r(flock(pathfd, LOCK_EX)));
    SHOW("setlk O_PATH", r(fcntl(pathfd, F_SETLK, &l)));
    SHOW("fgetxattr O_PATH", r(fgetxattr(pathfd, "user.a", NULL, 0)));
    SHOW("getgroups negative", sys(SYS_getgroups, -1, 0, 0, 0, 0));
    SHOW("getgroups bad ptr", sys(SYS_getgroups, 64, 8, 0, 0, 0));
    SHOW("sysinfo bad ptr", sys(SYS_sysinfo, 8, 0, 0, 0, 0));
    SHOW("getrusage bad ptr", sys(SYS_getrusage, 0, 8, 0, 0, 0));
    SHOW("times bad ptr", sys(SYS_times, 8, 0, 0, 0, 0));
    SHOW("prctl set name bad", r(prctl(PR_SET_NAME, BAD)));
    SHOW("prctl get name bad", r(prctl(PR_GET_NAME, BAD)));
    SHOW("prctl get pdeathsig bad", r(prctl(PR_GET_PDEATHSIG, BAD)));
    SHOW("prctl get subreaper bad", r(prctl(PR_GET_CHILD_SUBREAPER, BAD)));
    SHOW("sched getparam bad", sys(SYS_sched_getparam, 0, 8, 0, 0, 0));
    SHOW("sched setparam bad", sys(SYS_sched_setparam, 0, 8, 0, 0, 0));
    SHOW("sched setparam -1", sys(SYS_sched_setparam, -1, 8, 0, 0, 0));
    SHOW("memfd bad name", sys(SYS_memfd_create, 8, 0, 0, 0, 0));
    SHOW("memfd bad flags", sys(SYS_memfd_create, (long)"x", 0x100, 0, 0, 0));
    SHOW("memfd exec+noexec", sys(SYS_memfd_create, (long)"x", 0x18, 0, 0, 0));
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    SHOW("memfd long name", sys(SYS_memfd_create, (long)longname, 0, 0, 0, 0));
    longname[249] = 0;
    long m = sys(SYS_memfd_create, (long)longname, 0, 0, 0, 0);
    printf("memfd name 249 ok %d\n", m >= 0);
    SHOW("getxattr bad name ptr", r(getxattr(f, BAD, NULL, 0)));
    SHOW("getxattr empty name", r(getxattr(f, "", NULL, 0)));
    memset(longname, 'a', sizeof longname - 1);
    memcpy(longname, "user.", 5);
    SHOW("getxattr long name", r(getxattr(f, longname, NULL, 0)));
    SHOW("getxattr bad path", r(getxattr(BAD, "user.a", NULL, 0)));
    SHOW("listxattr bad path", r(listxattr(BAD, NULL, 0)));
    SHOW("setxattr bad flags", r(setxattr(f, "user.a", "v", 1, 4)));
    SHOW("setxattr too big", sys(SYS_setxattr, (long)f, (long)"user.a", (long)"v", 65537, 0));
    SHOW("setxattr bad value", sys(SYS_setxattr, (long)f, (long)"user.a", 8, 4, 0));
    SHOW("fgetxattr bad fd", r(fgetxattr(999, "user.a", NULL, 0)));
    int ifd = inotify_init1(IN_NONBLOCK);
    SHOW("inotify_init1 bad flags", sys(SYS_inotify_init1, 1, 0, 0, 0, 0));
    SHOW("inotify add mask 0", r(inotify_add_watch(ifd, dir, 0)));
    SHOW("inotify add mask_add|mask_create", r(inotify_add_watch(ifd, dir, IN_CREATE | IN_MASK_ADD | IN_MASK_CREATE)));
    SHOW("inotify add bad path", sys(SYS_inotify_add_watch, ifd, 8, IN_CREATE, 0, 0));
    SHOW("inotify add bad fd", r(inotify_add_watch(999, dir, IN_CREATE)));
    SHOW("inotify add on a file fd", r(inotify_add_watch(fd, dir, IN_CREATE)));
    SHOW("inotify add on stdout", r(inotify_add_watch(1, dir, IN_CREATE)));
    SHOW("inotify rm bad wd", r(inotify_rm_watch(ifd, 12345)));
    SHOW("inotify rm on a file fd", r(inotify_rm_watch(fd, 1)));
    close(ifd);
    SHOW("membarrier bad cmd", sys(SYS_membarrier, -1, 0, 0, 0, 0));
    SHOW("statfs bad ptr", sys(SYS_statfs, (long)dir, 8, 0, 0, 0));
    SHOW("statfs bad path", sys(SYS_statfs, 8, (long)path, 0, 0, 0));
    SHOW("getpriority bad which", sys(SYS_getpriority, -1, 0, 0, 0, 0));
    SHOW("ioprio_set bad which", sys(SYS_ioprio_set, 0, 0, 0, 0, 0));
    close(fd);
    close(pathfd);
}

static void on_signal(int s) { (void)s; }

static volatile int waited;
static pthread_t waiter;

// Signals the waiting thread every 50 ms until its wait has ended: one that comes before the
// wait started only runs the handler, a later one cuts the wait short.
static void *nudger(void *arg) {
    (void)arg;
    while (!waited) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
        if (!waited) pthread_kill(waiter, SIGUSR1);
    }
    return NULL;
}

// Holds byte 0 through one open file description (OFD lock), then waits for it through
// another with F_SETLKW: only a signal (EINTR, the handler has no SA_RESTART) or the end of
// the run ends the wait.
static void lockwait(const char *f, int with_signal) {
    int a = open(f, O_RDWR | O_CREAT, 0644), b = open(f, O_RDWR);
    struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (fcntl(a, F_OFD_SETLK, &o) != 0) { printf("FAIL hold %d\n", errno); return; }
    printf("waiting\n");
    if (!with_signal) {
        struct flock w = o;
        SHOW("setlkw", r(fcntl(b, F_OFD_SETLKW, &w)));
        return;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    waiter = pthread_self();
    pthread_t t;
    for (int posix = 0; posix < 2; posix++) {
        waited = 0;
        pthread_create(&t, NULL, nudger, NULL);
        struct flock w = o;
        if (posix)
            SHOW("posix setlkw vs ofd", r(fcntl(b, F_SETLKW, &w)));
        else
            SHOW("ofd setlkw", r(fcntl(b, F_OFD_SETLKW, &w)));
        waited = 1;
        pthread_join(t, NULL);
    }
    o.l_type = F_UNLCK;
    SHOW("release", r(fcntl(a, F_OFD_SETLK, &o)));
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    SHOW("setlkw free", r(fcntl(b, F_OFD_SETLKW, &w)));
}

// A blocking read of an inotify instance with nothing to report, cut short by signals (EINTR).
static void inotifywait(const char *dir) {
    int fd = inotify_init1(0);
    SHOW("add watch", r(inotify_add_watch(fd, dir, IN_CREATE)));
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    waiter = pthread_self();
    waited = 0;
    pthread_t t;
    pthread_create(&t, NULL, nudger, NULL);
    char buf[4096];
    SHOW("blocking read", r(read(fd, buf, sizeof buf)));
    waited = 1;
    pthread_join(t, NULL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) return 2;
    const char *mode = argv[1], *dir = argv[2];
    if (!strcmp(mode, "compare")) {
        locks(dir); ids(); prctls(); barriers(); priorities(); memfds(); xattrs(dir); fs_values(dir); inotify(dir); usage();
    } else if (!strcmp(mode, "guest")) {
        guest(dir);
    } else if (!strcmp(mode, "hostile")) {
        hostile(dir);
    } else if (!strcmp(mode, "inotifywait")) {
        inotifywait(dir);
    } else if (!strcmp(mode, "lockwait")) {
        lockwait(dir, argc > 3);
    } else {
        return 2;
    }
    return 0;
}
