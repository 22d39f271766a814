/* Linux conformance of the read/write/lseek dispatch, compared with the native run line by
 * line (tests/io_conformance.rs). Modes:
 *   synth   pread/pwrite/lseek on the synthetic /proc and /dev files
 *   count   read/write/pread/pwrite/readv: the whole count is address-checked (EFAULT)
 *           before it is cut to MAX_RW_COUNT
 *   access  access(2) on the /dev nodes, /dev/tty among them
 *   pgrp    TIOCGPGRP/TIOCSPGRP/TIOCGSID on the terminal (run on a pty) and on non-terminals
 *   falloc DIR   fallocate's modes on a file of DIR and its errors on other objects
 *   rr      sched_rr_get_interval of a SCHED_OTHER thread, its errors
 *   pipes   pipe/pipe2 calls for --trace to show (strace's fd array)
 *   inotify DIR  zero-length reads (EAGAIN empty, EINVAL with an event) and FIONREAD
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sched.h>
#include <time.h>
#include <termios.h>
#include <sys/uio.h>
#include <unistd.h>
#include "say.h"

static void show(const char *what, long r) {
    if (r < 0)
        say("%s = -1 %s", what, strerrorname_np(errno));
    else
        say("%s = %ld", what, r);
}

/* Raw syscalls: libc wrappers must not check or clamp anything. */
static long sys_pread(int fd, void *b, size_t n, long off) { return syscall(SYS_pread64, fd, b, n, off); }
static long sys_pwrite(int fd, const void *b, size_t n, long off) { return syscall(SYS_pwrite64, fd, b, n, off); }
static long sys_lseek(int fd, long off, int wh) { return syscall(SYS_lseek, fd, off, wh); }
static long sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static long sys_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }

static void synth(void) {
    char a[64], b[64];
    int fd = open("/proc/self/status", O_RDONLY);
    show("open status", fd < 0 ? -1 : 0);
    show("pread status 10 at 0", sys_pread(fd, a, 10, 0));
    show("pread status at 2^62", sys_pread(fd, a, 10, 1L << 62));
    show("pread status at -1", sys_pread(fd, a, 10, -1));
    show("pread status end overflow", sys_pread(fd, a, 10, INT64_MAX - 5));
    show("lseek status cur after pread", sys_lseek(fd, 0, SEEK_CUR));
    show("read status 10", sys_read(fd, b, 10));
    say("pread == read: %s", memcmp(a, b, 10) == 0 ? "yes" : "no");
    show("pread status 6 at 4", sys_pread(fd, a, 6, 4));
    show("lseek status set 4", sys_lseek(fd, 4, SEEK_SET));
    show("read status 6", sys_read(fd, b, 6));
    say("pread == read after lseek: %s", memcmp(a, b, 6) == 0 ? "yes" : "no");
    show("lseek status cur +3", sys_lseek(fd, 3, SEEK_CUR));
    show("lseek status cur -100", sys_lseek(fd, -100, SEEK_CUR));
    show("lseek status set -1", sys_lseek(fd, -1, SEEK_SET));
    show("lseek status end 0", sys_lseek(fd, 0, SEEK_END));
    show("lseek status data 0", sys_lseek(fd, 0, SEEK_DATA));
    show("lseek status whence 9", sys_lseek(fd, 0, 9));
    show("lseek status set 2^40", sys_lseek(fd, 1L << 40, SEEK_SET));
    show("read status past end", sys_read(fd, b, 10));
    show("pwrite status", sys_pwrite(fd, "x", 1, 0));
    close(fd);

    fd = open("/proc/self/cmdline", O_RDONLY);
    show("lseek cmdline end 0", sys_lseek(fd, 0, SEEK_END));
    show("lseek cmdline end -1", sys_lseek(fd, -1, SEEK_END));
    show("pread cmdline 1 at 0", sys_pread(fd, a, 1, 0));
    close(fd);

    fd = open("/proc", O_RDONLY | O_DIRECTORY);
    show("pread /proc", sys_pread(fd, a, 10, 0));
    close(fd);

    const char *devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"};
    for (int i = 0; i < 4; i++) {
        char what[96];
        fd = open(devs[i], O_RDWR);
        memset(a, 7, sizeof a);
        snprintf(what, sizeof what, "pread %s 10 at 5", devs[i]);
        show(what, sys_pread(fd, a, 10, 5));
        if (i == 1)
            say("zeroes: %s", a[0] == 0 && a[9] == 0 && a[10] == 7 ? "yes" : "no");
        snprintf(what, sizeof what, "pwrite %s 5 at 3", devs[i]);
        show(what, sys_pwrite(fd, "hello", 5, 3));
        snprintf(what, sizeof what, "lseek %s set 100", devs[i]);
        show(what, sys_lseek(fd, 100, SEEK_SET));
        snprintf(what, sizeof what, "lseek %s end -5", devs[i]);
        show(what, sys_lseek(fd, -5, SEEK_END));
        snprintf(what, sizeof what, "lseek %s cur 7", devs[i]);
        show(what, sys_lseek(fd, 7, SEEK_CUR));
        snprintf(what, sizeof what, "lseek %s whence 5", devs[i]);
        show(what, sys_lseek(fd, 0, 5));
        snprintf(what, sizeof what, "pread %s at -1", devs[i]);
        show(what, sys_pread(fd, a, 1, -1));
        close(fd);
    }
}

static void count(void) {
    char b[16];
    const size_t huge = 1UL << 47, all = (size_t)-1;
    int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_WRONLY);
    show("read zero 2^47", sys_read(z, b, huge));
    show("read zero -1", sys_read(z, b, all));
    show("read zero 16", sys_read(z, b, 16));
    show("write null 2^47", sys_write(n, b, huge));
    show("write null -1", sys_write(n, b, all));
    show("read write-only 2^47", sys_read(n, b, huge));
    show("write read-only 2^47", sys_write(z, b, huge));

    char path[] = "/tmp/io_conf_XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    show("write file 16", sys_write(f, "0123456789abcdef", 16));
    show("pread file 2^47", sys_pread(f, b, huge, 0));
    show("pread file 16", sys_pread(f, b, 16, 0));
    show("pwrite file 2^47", sys_pwrite(f, b, huge, 0));
    show("pread file -1 count", sys_pread(f, b, all, 0));
    show("read file at eof 2^47", sys_read(f, b, huge));
    close(f);

    int p[2];
    if (pipe(p) != 0)
        exit(2);
    show("write pipe 2^47", sys_write(p[1], "ab", huge));
    show("write pipe 2", sys_write(p[1], "ab", 2));
    show("read pipe 2^47", sys_read(p[0], b, huge));
    show("read pipe 16", sys_read(p[0], b, 16));
}

static void inotify(const char *dir) {
    char b[4096], path[4096];
    int ifd = inotify_init1(IN_NONBLOCK), queued = -1;
    show("read 0 empty", sys_read(ifd, b, 0));
    show("FIONREAD empty", ioctl(ifd, FIONREAD, &queued));
    say("queued %d", queued);
    show("add watch", inotify_add_watch(ifd, dir, IN_CREATE) > 0);
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    show("FIONREAD one event", ioctl(ifd, FIONREAD, &queued));
    say("queued %d", queued);
    show("read 0 with an event", sys_read(ifd, b, 0));
    show("read 16 with an event", sys_read(ifd, b, 16));
    show("read all", sys_read(ifd, b, sizeof b));
    show("FIONREAD drained", ioctl(ifd, FIONREAD, &queued));
    say("queued %d", queued);
    show("FIONREAD bad pointer", ioctl(ifd, FIONREAD, (int *)8));
    unlink(path);
    int n = open("/dev/null", O_RDONLY);
    show("FIONREAD /dev/null", ioctl(n, FIONREAD, &queued));
}

static void access_modes(void) {
    const char *nodes[] = {"/dev/tty", "/dev/null", "/dev/zero"};
    const int modes[] = {F_OK, R_OK, W_OK, R_OK | W_OK, X_OK};
    for (int i = 0; i < 3; i++)
        for (int m = 0; m < 5; m++) {
            char what[64];
            snprintf(what, sizeof what, "access %s %d", nodes[i], modes[m]);
            show(what, access(nodes[i], modes[m]));
            snprintf(what, sizeof what, "faccessat2 %s %d eaccess", nodes[i], modes[m]);
            show(what, syscall(SYS_faccessat2, AT_FDCWD, nodes[i], modes[m], AT_EACCESS));
        }
}

static void pgrp(void) {
    pid_t own = getpgrp(), got = -7;
    show("TIOCGPGRP", ioctl(0, TIOCGPGRP, &got));
    say("foreground group is own: %s", got == own ? "yes" : "no");
    got = -7;
    show("TIOCGSID", ioctl(0, TIOCGSID, &got));
    say("session is own: %s", got == getsid(0) ? "yes" : "no");
    show("tcsetpgrp own", tcsetpgrp(0, own));
    show("tcsetpgrp -1", tcsetpgrp(0, -1));
    show("tcsetpgrp none", tcsetpgrp(0, 0x3fffffff));
    show("TIOCGPGRP bad pointer", ioctl(0, TIOCGPGRP, (pid_t *)8));
    show("TIOCSPGRP bad pointer", ioctl(0, TIOCSPGRP, (pid_t *)8));
    show("TIOCGSID bad pointer", ioctl(0, TIOCGSID, (pid_t *)8));
    show("tcgetpgrp after", tcgetpgrp(0) == own);
    int n = open("/dev/null", O_RDWR), p[2];
    if (pipe(p) != 0)
        exit(2);
    show("TIOCGPGRP /dev/null", ioctl(n, TIOCGPGRP, &got));
    show("TIOCSPGRP /dev/null", ioctl(n, TIOCSPGRP, &own));
    show("TIOCGSID pipe", ioctl(p[0], TIOCGSID, &got));
}

static long sys_fallocate(int fd, int mode, long off, long len) {
    return syscall(SYS_fallocate, fd, mode, off, len);
}

static void falloc(const char *dir) {
    char path[4096], c = 9;
    struct stat st;
    snprintf(path, sizeof path, "%s/f", dir);
    int f = open(path, O_CREAT | O_RDWR, 0600);
    show("write 8 KiB", sys_write(f, memset((char[8192]){0}, 'x', 8192), 8192));
    show("mode 0 grows", sys_fallocate(f, 0, 0, 12288));
    fstat(f, &st);
    say("size %ld", (long)st.st_size);
    show("KEEP_SIZE", sys_fallocate(f, FALLOC_FL_KEEP_SIZE, 12288, 4096));
    fstat(f, &st);
    say("size %ld", (long)st.st_size);
    show("PUNCH_HOLE|KEEP_SIZE", sys_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    show("pread punched", sys_pread(f, &c, 1, 100));
    say("punched byte %d", c);
    show("pread kept", sys_pread(f, &c, 1, 5000));
    say("kept byte %c", c);
    show("PUNCH_HOLE alone", sys_fallocate(f, FALLOC_FL_PUNCH_HOLE, 0, 4096));
    show("NO_HIDE_STALE", sys_fallocate(f, 4, 0, 4096));
    show("unknown bit", sys_fallocate(f, 0x100, 0, 4096));
    show("INSERT|KEEP_SIZE", sys_fallocate(f, 0x20 | 1, 0, 4096));
    show("len 0", sys_fallocate(f, 0, 0, 0));
    show("len -1", sys_fallocate(f, 0, 0, -1));
    show("offset -1", sys_fallocate(f, 0, -1, 10));
    show("past 2^63", sys_fallocate(f, 0, INT64_MAX - 1, 10));
    int r = open(path, O_RDONLY);
    show("read-only fd", sys_fallocate(r, 0, 0, 10));
    show("read-only fd, bad mode", sys_fallocate(r, 4, 0, 10));
    show("bad fd", sys_fallocate(999, 0, 0, 10));
    int p[2];
    if (pipe(p) != 0)
        exit(2);
    show("pipe write end", sys_fallocate(p[1], 0, 0, 10));
    show("pipe read end", sys_fallocate(p[0], 0, 0, 10));
    int n = open("/dev/null", O_RDWR);
    show("/dev/null", sys_fallocate(n, 0, 0, 10));
    int s = open("/proc/self/status", O_RDONLY);
    show("/proc/self/status", sys_fallocate(s, 0, 0, 10));
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    show("directory", sys_fallocate(d, 0, 0, 10));
    unlink(path);
}

static void rr(void) {
    struct timespec ts = {-1, -1};
    show("self", syscall(SYS_sched_rr_get_interval, 0, &ts));
    say("interval %ld s %ld ns", (long)ts.tv_sec, ts.tv_nsec);
    ts.tv_sec = -1;
    show("own pid", syscall(SYS_sched_rr_get_interval, getpid(), &ts));
    say("written: %s", ts.tv_sec == 0 ? "yes" : "no");
    show("pid -1", syscall(SYS_sched_rr_get_interval, -1, &ts));
    show("no such pid", syscall(SYS_sched_rr_get_interval, 0x3fffffff, &ts));
    show("bad pointer", syscall(SYS_sched_rr_get_interval, 0, (void *)8));
    show("no such pid, bad pointer", syscall(SYS_sched_rr_get_interval, 0x3fffffff, (void *)8));
}

static void pipes(void) {
    int p[2];
    /* The same fd numbers natively and under umon, whatever the native run inherited. */
    syscall(SYS_close_range, 3, ~0U, 0);
    show("pipe2 O_CLOEXEC", syscall(SYS_pipe2, p, O_CLOEXEC));
    show("pipe", syscall(SYS_pipe, p));
    close(p[0]);
    show("pipe2 0", syscall(SYS_pipe2, p, 0));
    show("pipe2 O_NONBLOCK|O_CLOEXEC|O_DIRECT", syscall(SYS_pipe2, p, O_NONBLOCK | O_CLOEXEC | O_DIRECT));
    show("pipe2 bad pointer", syscall(SYS_pipe2, (int *)8, 0));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "synth"))
        synth();
    else if (!strcmp(argv[1], "count"))
        count();
    else if (!strcmp(argv[1], "pipes"))
        pipes();
    else if (!strcmp(argv[1], "rr"))
        rr();
    else if (!strcmp(argv[1], "pgrp"))
        pgrp();
    else if (!strcmp(argv[1], "access"))
        access_modes();
    else if (!strcmp(argv[1], "falloc") && argc > 2)
        falloc(argv[2]);
    else if (!strcmp(argv[1], "inotify") && argc > 2)
        inotify(argv[2]);
    else
        return 2;
    return 0;
}
