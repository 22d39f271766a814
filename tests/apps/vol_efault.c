// vol_efault DIR: every path-taking call given a path pointer into memory the process does
// not have (an unmapped page) fails with EFAULT, as on Linux; and getdents64 into a buffer it
// cannot write fails with EFAULT without losing the entries: a retried call returns them all.
// DIR is a writable directory holding the files e1, e2 and e3.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

static void result(const char *what, long r) {
    if (r >= 0)
        say("%s: ok", what);
    else
        say("%s: %s", what, errno == EFAULT ? "EFAULT" : strerror(errno));
}

static const char *ok;
static char okbuf[512];

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    snprintf(okbuf, sizeof okbuf, "%s/e1", argv[1]);
    ok = okbuf;
    char *bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bad == MAP_FAILED || munmap(bad, 4096) < 0)
        return 4;
    char sbuf[256];
    result("open", syscall(SYS_open, bad, O_RDONLY));
    result("openat", syscall(SYS_openat, AT_FDCWD, bad, O_RDONLY));
    result("creat", syscall(SYS_creat, bad, 0644));
    result("stat", syscall(SYS_stat, bad, sbuf));
    result("lstat", syscall(SYS_lstat, bad, sbuf));
    result("newfstatat", syscall(SYS_newfstatat, AT_FDCWD, bad, sbuf, 0));
    result("statx", syscall(SYS_statx, AT_FDCWD, bad, 0, 0x7ff, sbuf));
    result("statfs", syscall(SYS_statfs, bad, sbuf));
    result("access", syscall(SYS_access, bad, F_OK));
    result("faccessat", syscall(SYS_faccessat, AT_FDCWD, bad, F_OK));
    result("faccessat2", syscall(439, AT_FDCWD, bad, F_OK, 0));
    result("mkdir", syscall(SYS_mkdir, bad, 0755));
    result("mkdirat", syscall(SYS_mkdirat, AT_FDCWD, bad, 0755));
    result("mknod", syscall(SYS_mknod, bad, S_IFIFO | 0644, 0));
    result("mknodat", syscall(SYS_mknodat, AT_FDCWD, bad, S_IFIFO | 0644, 0));
    result("unlink", syscall(SYS_unlink, bad));
    result("unlinkat", syscall(SYS_unlinkat, AT_FDCWD, bad, 0));
    result("rmdir", syscall(SYS_rmdir, bad));
    result("rename old", syscall(SYS_rename, bad, ok));
    result("rename new", syscall(SYS_rename, ok, bad));
    result("renameat2 new", syscall(SYS_renameat2, AT_FDCWD, ok, AT_FDCWD, bad, 0));
    result("link old", syscall(SYS_link, bad, ok));
    result("link new", syscall(SYS_link, ok, bad));
    result("linkat new", syscall(SYS_linkat, AT_FDCWD, ok, AT_FDCWD, bad, 0));
    result("symlink target", syscall(SYS_symlink, bad, ok));
    result("symlink path", syscall(SYS_symlink, "x", bad));
    result("readlink", syscall(SYS_readlink, bad, sbuf, sizeof sbuf));
    result("readlinkat", syscall(SYS_readlinkat, AT_FDCWD, bad, sbuf, sizeof sbuf));
    result("chmod", syscall(SYS_chmod, bad, 0644));
    result("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, bad, 0644));
    result("utimensat", syscall(SYS_utimensat, AT_FDCWD, bad, NULL, 0));
    result("truncate", syscall(SYS_truncate, bad, 0));
    result("chdir", syscall(SYS_chdir, bad));
    // A path that starts in good memory and runs into the unmapped page.
    char *edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (edge == MAP_FAILED || munmap(edge + 4096, 4096) < 0)
        return 4;
    memset(edge, 'a', 4096);
    result("open of a path running into an unmapped page", syscall(SYS_open, edge + 4000, O_RDONLY));

    // getdents64: a read-only buffer (this program's own code) first, then a good one.
    int fd = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return 4;
    result("getdents64 into read-only memory", syscall(SYS_getdents64, fd, (void *)main, 4096));
    result("getdents64 into an unmapped page", syscall(SYS_getdents64, fd, bad, 4096));
    char dbuf[4096];
    int names = 0;
    long n;
    while ((n = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < n;) {
            unsigned short reclen;
            memcpy(&reclen, dbuf + off + 16, sizeof reclen);
            const char *name = dbuf + off + 19;
            if (name[0] == 'e')
                names++;
            off += reclen;
        }
    }
    say("getdents64 retried: %d of 3 entries", names);
    return 0;
}
