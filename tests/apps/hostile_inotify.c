// Hostile arguments to inotify (tests/hostile_longtail2.rs): bad masks, paths, fds of the wrong
// kind (O_PATH, memfd, another instance's watch), reads with bad buffers and sizes, and threads
// that close an instance another thread is reading or changing.
//   hostile_inotify calls DIR | race DIR    (DIR: a writable directory, a volume under umon)
#include "hostile_common.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static char path[4096];
static const char *in(const char *dir, const char *leaf) {
    snprintf(path, sizeof path, "%s/%s", dir, leaf);
    return path;
}

static void touch(const char *dir, const char *leaf) {
    int fd = open(in(dir, leaf), O_RDWR | O_CREAT, 0644);
    if (fd < 0) say("FAIL create %s", leaf);
    close(fd);
}

static void calls(const char *dir) {
    touch(dir, "file");
    symlink("file", in(dir, "link"));
    int ifd = (int)SYS(SYS_inotify_init1, IN_NONBLOCK);
    unsigned masks[] = {IN_ONLYDIR, IN_DONT_FOLLOW, IN_ONESHOT, IN_MASK_ADD, IN_EXCL_UNLINK,
                        0x1000, 0x4000, 0x8000, 0x00800000, 0x40000000, 0xffffffff, IN_ALL_EVENTS | 0x4000};
    for (unsigned i = 0; i < sizeof masks / sizeof masks[0]; i++)
        say("add mask %#x = %ld", masks[i], SYS(SYS_inotify_add_watch, ifd, dir, masks[i]));
    SHOW("add IN_ONLYDIR on a file", SYS(SYS_inotify_add_watch, ifd, in(dir, "file"), IN_CREATE | IN_ONLYDIR));
    SHOW("add on a dangling-free symlink, no follow", SYS(SYS_inotify_add_watch, ifd, in(dir, "link"), IN_MODIFY | IN_DONT_FOLLOW) > 0);
    SHOW("add on a missing path", SYS(SYS_inotify_add_watch, ifd, in(dir, "missing"), IN_MODIFY));
    SHOW("add on an empty path", SYS(SYS_inotify_add_watch, ifd, "", IN_MODIFY));
    for (int i = 0; i < N_BAD - 1; i++) {
        char l[64];
        snprintf(l, sizeof l, "add path %s", bad_name[i]);
        SHOW(l, SYS(SYS_inotify_add_watch, ifd, bad_ptr(i), IN_MODIFY));
    }
    long wd = SYS(SYS_inotify_add_watch, ifd, dir, IN_CREATE);
    SHOW("add again with IN_MASK_CREATE", SYS(SYS_inotify_add_watch, ifd, dir, IN_CREATE | IN_MASK_CREATE));
    SHOW("add again with IN_MASK_ADD same wd", SYS(SYS_inotify_add_watch, ifd, dir, IN_DELETE | IN_MASK_ADD) == wd);
    int other = (int)SYS(SYS_inotify_init1, IN_NONBLOCK);
    SHOW("rm another instance's wd", SYS(SYS_inotify_rm_watch, other, wd));
    long odd[] = {0, -1, INT32_MAX, INT32_MIN, 1l << 32, (1l << 32) | wd};
    for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++)
        say("rm wd %#lx = %ld", odd[i], SYS(SYS_inotify_rm_watch, ifd, odd[i]));
    int pathfd = open(in(dir, "file"), O_PATH);
    int memfd = (int)SYS(SYS_memfd_create, "m", 0);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    int kinds[] = {pathfd, memfd, dirfd, 1, 999, -1};
    const char *kind[] = {"O_PATH", "memfd", "directory", "stdout", "closed", "-1"};
    for (int i = 0; i < 6; i++)
        say("on %s: add %ld rm %ld", kind[i], SYS(SYS_inotify_add_watch, kinds[i], dir, IN_CREATE),
            SYS(SYS_inotify_rm_watch, kinds[i], 1));
    char buf[4096];
    SHOW("rm twice: first", SYS(SYS_inotify_rm_watch, ifd, wd));
    SHOW("rm twice: second", SYS(SYS_inotify_rm_watch, ifd, wd));
    SHOW("read IN_IGNORED", SYS(SYS_read, ifd, buf, sizeof buf) > 0);
    wd = SYS(SYS_inotify_add_watch, ifd, dir, IN_CREATE);
    touch(dir, "a");
    // Not compared (umon differs, see tests/hostile_longtail2.rs): a read of 0 bytes (EINVAL
    // on Linux, 0 under umon) and reads into NULL or user pages without access (Linux takes
    // the event off the queue and answers EFAULT, or EAGAIN with none queued).
    SHOW("read len 1", SYS(SYS_read, ifd, buf, 1));
    SHOW("read len 16 (header only)", SYS(SYS_read, ifd, buf, 16));
    for (int i = 1; i < 3; i++) {
        char l[64];
        snprintf(l, sizeof l, "read into %s", bad_name[i]);
        SHOW(l, SYS(SYS_read, ifd, bad_ptr(i), 4096));
    }
    SHOW("read len -1", SYS(SYS_read, ifd, buf, -1l));
    // Whole events into a buffer that starts 8 bytes before a page boundary.
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    two[4096] = 1;
    two[0] = 1;
    touch(dir, "across-a-page-boundary");
    long across = SYS(SYS_read, ifd, two + 4088, 4096);
    say("read across a page boundary = %ld name %s", across,
        across > 0 ? ((struct inotify_event *)(two + 4088))->name : "-");
    long n = SYS(SYS_read, ifd, buf, sizeof buf);
    say("read after the bad ones = %ld", n);
    SHOW("pread", SYS(SYS_pread64, ifd, buf, sizeof buf, 0));
    SHOW("write", SYS(SYS_write, ifd, "x", 1));
    SHOW("lseek", SYS(SYS_lseek, ifd, 0, SEEK_SET));
    SHOW("ftruncate", SYS(SYS_ftruncate, ifd, 0));
    SHOW("fsync", SYS(SYS_fsync, ifd));
    touch(dir, "b");
    SHOW("ioctl TCGETS", SYS(SYS_ioctl, ifd, 0x5401, buf));
    SHOW("getfl nonblock", (SYS(SYS_fcntl, ifd, F_GETFL) & O_NONBLOCK) != 0);
    SHOW("setfl blocking", SYS(SYS_fcntl, ifd, F_SETFL, 0));
    struct pollfd p = {.fd = ifd, .events = POLLIN};
    SHOW("poll ready", SYS(SYS_poll, &p, 1, 0));
    say("  revents %#x", p.revents);
    SHOW("read all", SYS(SYS_read, ifd, buf, sizeof buf) > 0);
    SHOW("init1 all flags", SYS(SYS_inotify_init1, -1));
    SHOW("init1 IN_CLOEXEC|1", SYS(SYS_inotify_init1, IN_CLOEXEC | 1));
    close(ifd);
    close(other);
    SHOW("add on a closed instance", SYS(SYS_inotify_add_watch, ifd, dir, IN_CREATE));
}

static int rfd;
static const char *rdir;
static volatile int stage;

static void *reader(void *arg) {
    (void)arg;
    char buf[4096] __attribute__((aligned(8)));
    __atomic_store_n(&stage, 1, __ATOMIC_SEQ_CST);
    long n = SYS(SYS_read, rfd, buf, sizeof buf);
    struct inotify_event *e = (struct inotify_event *)buf;
    say("reader: read %d mask %#x name %s", n > 0, n > 0 ? e->mask : 0, n > 0 && e->len ? e->name : "-");
    return NULL;
}

static long odd_adds;
static volatile int stop;
static void *watcher(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        long w = SYS(SYS_inotify_add_watch, rfd, rdir, IN_CREATE | IN_DELETE);
        long r = w > 0 ? SYS(SYS_inotify_rm_watch, rfd, w) : 0;
        if ((w < 0 && w != -EBADF && w != -EINVAL) || (r < 0 && r != -EINVAL && r != -EBADF))
            __atomic_add_fetch(&odd_adds, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void race(const char *dir) {
    rdir = dir;
    // A blocking read of an instance the main thread closes: the read holds the file, so the
    // event made after the close still reaches it.
    rfd = (int)SYS(SYS_inotify_init1, 0);
    SYS(SYS_inotify_add_watch, rfd, dir, IN_CREATE);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    while (!__atomic_load_n(&stage, __ATOMIC_SEQ_CST)) sched_yield();
    usleep(50000);
    SHOW("close while read", close(rfd));
    touch(dir, "after-close");
    pthread_join(t, NULL);
    // Threads add and remove watches while the main thread closes and re-makes the instance.
    rfd = (int)SYS(SYS_inotify_init1, IN_NONBLOCK);
    pthread_t w[2];
    for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, watcher, NULL);
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        int fd = rfd;
        if (close(fd) != 0) bad++;
        // The same number again (the lowest free fd), now maybe another instance.
        if (SYS(SYS_inotify_init1, IN_NONBLOCK) != fd) bad++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    SHOW("race: failed closes or inits", bad);
    SHOW("race: answers other than a wd, EBADF, EINVAL", odd_adds);
}

int main(int argc, char **argv) {
    bad_addresses();
    if (argc < 3) return 2;
    if (!strcmp(argv[1], "calls")) calls(argv[2]);
    else if (!strcmp(argv[1], "race")) race(argv[2]);
    else return 2;
    return 0;
}
