// vol_ro: every write-type call on a read-only volume's host directory, reached through a
// writable volume by another path, must fail as on Linux with bind mounts (EROFS; EXDEV for a
// link or rename across the two). One line per call: "NAME: ok" or "NAME: ERRNO".
//
//   vol_ro ROUTE ROOT
//
// ROOT is the writable volume's guest path ("" for a volume at /). The read-only volume's host
// directory holds file, f_ren, f_mv, f_unl and dir/. ROUTE says how to reach it:
//   symlink   ROOT/r2 -> ref (made here)            P = ROOT/r2
//   dotdot    ROOT/dd -> sub/.. (made here)          P = ROOT/dd/ref
//   renamed   ROOT/a (holding ref) renamed ROOT/b   P = ROOT/b/ref
//   abs       ROOT/r3 -> /ref, absolute (made here) P = ROOT/r3
//   cwd       chdir(ROOT/r2 -> ref)                 P = .
//   control   a writable directory with the same files, where every call works: P = ROOT/ctl
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "say.h"

static const char *errname(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EROFS: return "EROFS";
    case EXDEV: return "EXDEV";
    case EBUSY: return "EBUSY";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case ELOOP: return "ELOOP";
    case EBADF: return "EBADF";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "other";
    }
}

static void report(const char *name, long r) {
    if (r < 0)
        say("%s: %s", name, errname(errno));
    else
        say("%s: ok", name);
}

static char pbuf[8][512];
static int pnext;
static const char *at(const char *dir, const char *name) {
    char *b = pbuf[pnext++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static long closed(long fd) {
    if (fd >= 0)
        close((int)fd);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    const char *route = argv[1], *root = argv[2];
    char p[512];
    int roots = 0;
    if (!strcmp(route, "symlink")) {
        if (symlink("ref", at(root, "r2")) < 0)
            return 4;
        snprintf(p, sizeof p, "%s/r2", root);
    } else if (!strcmp(route, "dotdot")) {
        if (mkdir(at(root, "sub"), 0755) < 0 || symlink("sub/..", at(root, "dd")) < 0)
            return 4;
        snprintf(p, sizeof p, "%s/dd/ref", root);
        roots = 1;
    } else if (!strcmp(route, "renamed")) {
        if (rename(at(root, "a"), at(root, "b")) < 0)
            return 4;
        snprintf(p, sizeof p, "%s/b/ref", root);
        roots = 1;
    } else if (!strcmp(route, "abs")) {
        if (symlink("/ref", at(root, "r3")) < 0)
            return 4;
        snprintf(p, sizeof p, "%s/r3", root);
    } else if (!strcmp(route, "cwd")) {
        if (symlink("ref", at(root, "r2")) < 0 || chdir(at(root, "r2")) < 0)
            return 4;
        snprintf(p, sizeof p, ".");
    } else if (!strcmp(route, "control")) {
        snprintf(p, sizeof p, "%s/ctl", root);
    } else {
        return 2;
    }
    if (closed(creat(at(root, "own"), 0644)) < 0)
        return 4;

    report("open_wronly", closed(open(at(p, "file"), O_WRONLY)));
    report("open_rdwr", closed(open(at(p, "file"), O_RDWR)));
    report("open_trunc", closed(open(at(p, "file"), O_RDONLY | O_TRUNC)));
    report("open_creat", closed(open(at(p, "new1"), O_WRONLY | O_CREAT, 0644)));
    report("open_creat_excl", closed(open(at(p, "new2"), O_WRONLY | O_CREAT | O_EXCL, 0644)));
    report("creat", closed(creat(at(p, "new3"), 0644)));
    report("openat_creat", closed(syscall(SYS_openat, AT_FDCWD, at(p, "new4"), O_RDWR | O_CREAT, 0644)));
    report("tmpfile", closed(open(p, O_TMPFILE | O_RDWR, 0600)));
    report("truncate", truncate(at(p, "file"), 0));
    report("chmod", chmod(at(p, "file"), 0600));
    report("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, at(p, "file"), 0600));
    report("utimensat", utimensat(AT_FDCWD, at(p, "file"), NULL, 0));
    report("access_w", access(at(p, "file"), W_OK));
    int fd = open(at(p, "file"), O_RDONLY);
    report("fchmod", fchmod(fd, 0600));
    report("futimens", futimens(fd, NULL));
    close(fd);
    int dfd = open(p, O_RDONLY | O_DIRECTORY);
    report("fchmod_dir", fchmod(dfd, 0700));
    report("mkdirat_fd", mkdirat(dfd, "newdir2", 0755));
    report("unlinkat_missing", unlinkat(dfd, "missing", 0));
    close(dfd);
    report("mkdir", mkdir(at(p, "newdir"), 0755));
    report("mknod_fifo", mknod(at(p, "fifo"), S_IFIFO | 0644, 0));
    report("symlink", symlink("file", at(p, "sl")));
    report("link_out", link(at(p, "file"), at(root, "hl1")));
    report("link_in", link(at(root, "own"), at(p, "hl2")));
    report("rename_in", rename(at(p, "f_ren"), at(p, "f_ren2")));
    report("rename_out", rename(at(p, "f_mv"), at(root, "moved")));
    report("rename_into", rename(at(root, "own"), at(p, "own")));
    report("unlink", unlink(at(p, "f_unl")));
    report("rmdir", rmdir(at(p, "dir")));
    report("chmod_root", chmod(p, 0700));
    if (roots) {
        report("rmdir_root", rmdir(p));
        report("rename_root", rename(p, at(root, "stolen")));
    }
    return 0;
}
