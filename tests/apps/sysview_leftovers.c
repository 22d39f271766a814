/* Leftovers of issue 14, each compared with the native run (tests/sysview_leftovers.rs):
 *   getfl DIR   F_GETFL of files opened in DIR with various flags, in octal
 *   anon        what /proc/self/fd/N reads for each anonymous-inode kind and a memfd
 *   fill DIR    fill DIR (a tmpfs) and print what a full tmpfs answers
 *   fillfork DIR  fill DIR from two processes at once; print what they wrote together
 *   fillmap DIR   fill DIR through MAP_SHARED windows of a sparse file, 1 MiB at a time
 *                 (each unmapped before the next): the pages written before SIGBUS
 *   cat FILE    FILE's bytes (read with read(2), as e2fsck reads /proc/swaps)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

static void getfl(const char *dir, const char *name, int flags, const char *label) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        printf("%s open %s\n", label, strerror(errno));
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    printf("%s %o\n", label, fl);
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
        printf("%s +nonblock %o\n", label, fcntl(fd, F_GETFL));
    close(fd);
}

static int cmd_getfl(const char *dir) {
    getfl(dir, "f", O_RDWR | O_CREAT | O_TRUNC, "rdwr|creat|trunc");
    getfl(dir, "f", O_RDWR | O_APPEND, "rdwr|append");
    getfl(dir, "f", O_WRONLY, "wronly");
    getfl(dir, "f", O_WRONLY | O_NOFOLLOW, "wronly|nofollow");
    getfl(dir, "f", O_RDONLY, "rdonly");
    getfl(dir, "f", O_RDONLY | O_NOFOLLOW, "rdonly|nofollow");
    getfl(dir, "f", O_RDWR | O_SYNC | O_CLOEXEC, "rdwr|sync|cloexec");
    getfl(dir, "g", O_WRONLY | O_CREAT | O_EXCL, "wronly|creat|excl");
    getfl(dir, "h", O_RDWR | O_CREAT | O_NOFOLLOW, "rdwr|creat|nofollow");
    getfl(dir, ".", O_RDONLY | O_DIRECTORY, "directory");
    getfl(dir, "f", O_PATH, "path");
    char link[4096];
    snprintf(link, sizeof link, "%s/l", dir);
    if (symlink("f", link) != 0)
        printf("symlink %s\n", strerror(errno));
    getfl(dir, "l", O_WRONLY, "wronly via symlink");
    getfl(dir, "l", O_WRONLY | O_NOFOLLOW, "wronly|nofollow on symlink");
    getfl(dir, "l", O_RDWR | O_CREAT, "rdwr|creat via symlink");
    getfl(dir, "l", O_PATH | O_NOFOLLOW, "path|nofollow on symlink");
    return 0;
}

static void link_of(const char *what, int fd) {
    char p[64], buf[256];
    if (fd < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s: readlink %s\n", what, strerror(errno));
        return;
    }
    buf[n] = 0;
    /* Inode numbers differ between runs and systems: keep the text up to a '[' digit. */
    char *br = strchr(buf, '[');
    if (br && br[1] >= '0' && br[1] <= '9')
        strcpy(br + 1, "N]");
    printf("%s: %s flags %o\n", what, buf, fcntl(fd, F_GETFL));
}

static int cmd_anon(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    link_of("signalfd", signalfd(-1, &set, 0));
    link_of("signalfd nonblock", signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    link_of("eventfd", eventfd(0, 0));
    link_of("eventfd semaphore", eventfd(1, EFD_SEMAPHORE | EFD_NONBLOCK));
    link_of("timerfd monotonic", timerfd_create(CLOCK_MONOTONIC, 0));
    link_of("timerfd realtime", timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK));
    link_of("epoll", epoll_create1(0));
    link_of("inotify", inotify_init1(0));
    link_of("memfd", memfd_create("umon-probe", 0));
    link_of("memfd sealing", memfd_create("sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC));
    link_of("memfd empty name", memfd_create("", 0));
    int p[2];
    if (pipe(p) == 0) {
        link_of("pipe read", p[0]);
        link_of("pipe write", p[1]);
    }
    return 0;
}

static void show_statfs(const char *dir, const char *when) {
    struct statfs st;
    if (statfs(dir, &st) != 0) {
        printf("statfs %s: %s\n", when, strerror(errno));
        return;
    }
    printf("statfs %s: type %lx bsize %ld blocks %llu bfree %llu bavail %llu flags %lx\n", when,
           (unsigned long)st.f_type, (long)st.f_bsize, (unsigned long long)st.f_blocks,
           (unsigned long long)st.f_bfree, (unsigned long long)st.f_bavail,
           (unsigned long)st.f_flags);
}

static void outcome(const char *what, long long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: %lld\n", what, r);
}

/* Fill DIR (a tmpfs natively, the private /tmp or /dev/shm under umon) until it is full, then
 * the calls a full tmpfs still serves or refuses. */
static int cmd_fill(const char *dir) {
    char path[4096], other[4096];
    snprintf(path, sizeof path, "%s/fill", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    show_statfs(dir, "empty");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        printf("open %s\n", strerror(errno));
        return 1;
    }
    static char block[65536];
    memset(block, 'x', sizeof block);
    long long total = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof block);
        if (n < 0) {
            printf("full after %lld bytes: %s\n", total, strerror(errno));
            break;
        }
        if (n < (ssize_t)sizeof block)
            printf("short write of %zd after %lld\n", n, total);
        total += n;
        if (total > (1LL << 32)) {
            printf("no limit after %lld bytes\n", total);
            return 1;
        }
    }
    show_statfs(dir, "full");
    outcome("write 1 more", write(fd, block, 1));
    outcome("overwrite at 0", pwrite(fd, block, 4096, 0));
    outcome("overwrite across the end", pwrite(fd, block, 8192, total - 4096));
    outcome("fallocate past the end", fallocate(fd, 0, total, 4096));
    outcome("fallocate inside", fallocate(fd, 0, 0, 4096));
    int o = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    outcome("open another", o < 0 ? -1 : 0);
    if (o >= 0) {
        outcome("write another", write(o, block, 100));
        close(o);
    }
    /* Three pages free again: a write of 64 KiB is cut to them. */
    outcome("ftruncate", ftruncate(fd, total - 3 * 4096));
    outcome("lseek", lseek(fd, 0, SEEK_END));
    outcome("write into three free pages", write(fd, block, sizeof block));
    outcome("write when full again", write(fd, block, sizeof block));
    /* Half the file goes: a sparse write far out allocates only its own page. */
    outcome("ftruncate to half", ftruncate(fd, total / 2));
    outcome("pwrite far out", pwrite(fd, block, 100, total - 4096));
    show_statfs(dir, "half");
    close(fd);
    outcome("unlink", unlink(path));
    outcome("unlink another", unlink(other));
    show_statfs(dir, "emptied");
    return 0;
}

/* Write 64 KiB blocks to PATH until the file system is full: the bytes written. */
static long long fill_file(const char *path) {
    static char block[65536];
    memset(block, 'y', sizeof block);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    long long total = 0;
    ssize_t n;
    while ((n = write(fd, block, sizeof block)) > 0 && total < (1LL << 32))
        total += n;
    close(fd);
    return total;
}

static int cmd_fillfork(const char *dir) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        long long t = fill_file(a);
        write(p[1], &t, sizeof t);
        _exit(0);
    }
    long long mine = fill_file(b), theirs = -1;
    read(p[0], &theirs, sizeof theirs);
    int status;
    waitpid(child, &status, 0);
    printf("together: %lld\n", mine + theirs);
    show_statfs(dir, "full");
    unlink(a);
    unlink(b);
    show_statfs(dir, "emptied");
    return 0;
}

static sigjmp_buf bus_jump;

static void on_bus(int sig) {
    (void)sig;
    siglongjmp(bus_jump, 1);
}

static int cmd_fillmap(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mapped", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct statfs sf;
    if (fd < 0 || statfs(dir, &sf) != 0)
        return 1;
    const long long window = 1 << 20;
    long long size = (long long)sf.f_blocks * sf.f_bsize, end = size + 16 * window;
    if (ftruncate(fd, end) != 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, NULL);
    volatile long long pages = 0;
    char *volatile map = NULL;
    if (sigsetjmp(bus_jump, 1) == 0) {
        for (long long at = 0; at < end; at += window) {
            map = mmap(NULL, window, PROT_READ | PROT_WRITE, MAP_SHARED, fd, at);
            if (map == MAP_FAILED)
                return 1;
            for (long long off = 0; off < window; off += 4096) {
                map[off] = 'm';
                pages++;
            }
            munmap(map, window);
        }
        printf("no SIGBUS after %lld pages\n", (long long)pages);
    } else {
        munmap(map, window);
        printf("SIGBUS after %lld pages of %lld\n", (long long)pages, size / 4096);
    }
    show_statfs(dir, "full");
    close(fd);
    unlink(path);
    show_statfs(dir, "emptied");
    return 0;
}

static int cmd_cat(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char buf[1024];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, n, stdout);
    close(fd);
    return n < 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && strcmp(argv[1], "getfl") == 0)
        return cmd_getfl(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "anon") == 0)
        return cmd_anon();
    if (argc >= 3 && strcmp(argv[1], "fill") == 0)
        return cmd_fill(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "fillfork") == 0)
        return cmd_fillfork(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "fillmap") == 0)
        return cmd_fillmap(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "cat") == 0)
        return cmd_cat(argv[2]);
    fprintf(stderr, "usage: %s getfl DIR | anon | fill DIR | fillfork DIR | cat FILE\n", argv[0]);
    return 2;
}
