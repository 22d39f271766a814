// rev_calls EXE DIR: the review findings of 1dbdd53, one line each, to compare with the native
// run. EXE is this program's own path (its running executable), DIR a writable directory.
//
//   txtbsy   the running executable opened for writing, with O_TRUNC, and truncate(2):
//            ETXTBSY, the file untouched
//   mremap   mremap to the same (page-rounded) size keeps the address
//   fsize    RLIMIT_FSIZE (SIGXFSZ ignored) cuts sendfile / copy_file_range at the limit, then
//            EFBIG; truncate and ftruncate past it are EFBIG
//   futimens utimensat(fd, NULL, times, AT_SYMLINK_NOFOLLOW) is EINVAL
//   readlink readlinkat(AT_FDCWD, "") is ENOENT
//   ints     int arguments with garbage in the upper half of the register (lseek whence,
//            fcntl cmd, madvise advice, fadvise advice, faccessat2 flags, statx flags)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

#define HI (1UL << 32)

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static long size_of(const char *p) {
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_size;
}

static void txtbsy(const char *exe) {
    long before = size_of(exe);
    int fd = open(exe, O_RDWR);
    say("open O_RDWR: %s", err(fd));
    fd = open(exe, O_WRONLY | O_TRUNC);
    say("open O_TRUNC: %s", err(fd));
    say("truncate: %s", err(truncate(exe, 0)));
    say("size unchanged: %d", size_of(exe) == before);
    fd = open(exe, O_RDONLY);
    say("open O_RDONLY: %s", err(fd));
}

static void remap(void) {
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *q = mremap(p, 8192, 8192, 0);
    say("same size: %s", q == MAP_FAILED ? strerrorname_np(errno) : q == p ? "same" : "moved");
    q = mremap(p, 8192, 8000, 0);
    say("same pages: %s", q == MAP_FAILED ? strerrorname_np(errno) : q == p ? "same" : "moved");
}

static void fsize(const char *dir) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/fsize-src", dir);
    int in = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
    static char buf[10000];
    memset(buf, 'x', sizeof buf);
    if (write(in, buf, sizeof buf) != sizeof buf)
        _exit(4);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &rl);
    const char *names[] = {"sendfile", "copy_file_range"};
    for (int k = 0; k < 2; k++) {
        snprintf(dst, sizeof dst, "%s/fsize-%s", dir, names[k]);
        int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
        for (int round = 0; round < 2; round++) {
            loff_t off = 0;
            long n = k == 0 ? sendfile(out, in, &off, sizeof buf)
                            : copy_file_range(in, &off, out, NULL, sizeof buf, 0);
            say("%s %d: %ld %s", names[k], round, n, err(n));
        }
        say("%s size: %ld", names[k], size_of(dst));
        say("ftruncate past: %s", err(ftruncate(out, 8192)));
        say("ftruncate at: %s", err(ftruncate(out, 4096)));
        say("truncate past: %s", err(truncate(dst, 8192)));
        close(out);
    }
    rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &rl);
}

static void futimens_flags(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/fsize-src", dir);
    int fd = open(p, O_RDONLY);
    say("utimensat(fd, NULL, NOFOLLOW): %s",
        err(syscall(SYS_utimensat, fd, NULL, NULL, AT_SYMLINK_NOFOLLOW)));
    say("utimensat(fd, NULL, 0): %s", err(syscall(SYS_utimensat, fd, NULL, NULL, 0)));
    close(fd);
}

static void readlink_empty(void) {
    char b[64];
    say("readlinkat(AT_FDCWD, \"\"): %s", err(readlinkat(AT_FDCWD, "", b, sizeof b)));
}

static void ints(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/fsize-src", dir);
    int fd = open(p, O_RDONLY);
    lseek(fd, 5, SEEK_SET);
    long r = syscall(SYS_lseek, fd, 0L, HI | SEEK_CUR);
    say("lseek whence: %ld %s", r, err(r));
    r = syscall(SYS_fcntl, fd, HI | F_GETFD, 0L);
    say("fcntl cmd: %ld %s", r, err(r));
    void *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r = syscall(SYS_madvise, m, 4096L, HI | MADV_NORMAL);
    say("madvise advice: %s", err(r));
    r = syscall(SYS_fadvise64, fd, 0L, 0L, HI | POSIX_FADV_NORMAL);
    say("fadvise advice: %s", err(r));
    r = syscall(SYS_faccessat2, AT_FDCWD, p, HI | R_OK, HI);
    say("faccessat2 flags: %s", err(r));
    struct statx stx;
    r = syscall(SYS_statx, AT_FDCWD, p, HI, HI | STATX_SIZE, &stx);
    say("statx flags: %s %lld", err(r), r ? -1LL : (long long)stx.stx_size);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    txtbsy(argv[1]);
    remap();
    fsize(argv[2]);
    futimens_flags(argv[2]);
    readlink_empty();
    ints(argv[2]);
    return 0;
}
