// vol_dirs ROOT: directory fds and the working directory follow their directory when it (or a
// directory above it) is renamed, as on Linux: lookups relative to them keep working and land
// in the moved directory, and getcwd reports where the directory is now, or the directory's
// own path after chdir through a symlink. ROOT is an empty writable directory (a volume under
// umon); paths are printed relative to it, so the output is the same natively and in umon.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "say.h"

static const char *root;
static char pb[4][512];
static int pn;
static const char *at(const char *name) {
    char *b = pb[pn++ % 4];
    snprintf(b, 512, "%s/%s", root, name);
    return b;
}

static const char *errname(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EEXIST: return "EEXIST";
    default: return "other";
    }
}

static void result(const char *what, long r) {
    if (r < 0)
        say("%s: %s", what, errname(errno));
    else
        say("%s: ok", what);
}

// Whether ROOT/name exists.
static void exists(const char *name) {
    struct stat st;
    say("  %s %s", name, lstat(at(name), &st) == 0 ? "exists" : "missing");
}

static void cwd(const char *what) {
    char buf[512];
    if (!getcwd(buf, sizeof buf)) {
        say("%s: getcwd %s", what, errname(errno));
        return;
    }
    size_t n = strlen(root);
    if (strncmp(buf, root, n) == 0 && (buf[n] == '/' || buf[n] == 0))
        say("%s: getcwd ROOT%s", what, buf + n);
    else
        say("%s: getcwd outside ROOT", what);
}

static long closed(long fd) {
    if (fd >= 0)
        close((int)fd);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    root = argv[1];
    if (mkdir(at("a"), 0755) < 0 || mkdir(at("a/sub"), 0755) < 0)
        return 4;
    int dfd = open(at("a"), O_RDONLY | O_DIRECTORY);
    int pfd = open(at("a/sub"), O_PATH | O_DIRECTORY);
    if (dfd < 0 || pfd < 0 || chdir(at("a")) < 0)
        return 4;
    cwd("start");

    result("rename a -> b", rename(at("a"), at("b")));
    cwd("after rename");
    result("openat(dirfd, x, O_CREAT)", closed(openat(dfd, "x", O_WRONLY | O_CREAT, 0644)));
    exists("b/x");
    result("creat(y) in the cwd", closed(creat("y", 0644)));
    exists("b/y");
    result("mkdirat(O_PATH dirfd, m)", mkdirat(pfd, "m", 0755));
    exists("b/sub/m");
    result("openat(dirfd, ../up, O_CREAT)", closed(openat(dfd, "../up", O_WRONLY | O_CREAT, 0644)));
    exists("up");

    // A new directory takes the old name: lookups still go to the moved one.
    result("mkdir a again", mkdir(at("a"), 0755));
    result("openat(dirfd, z, O_CREAT)", closed(openat(dfd, "z", O_WRONLY | O_CREAT, 0644)));
    exists("b/z");
    exists("a/z");
    result("creat(w) in the cwd", closed(creat("w", 0644)));
    exists("b/w");
    exists("a/w");

    // A parent renamed: the cwd (b/sub/m) and its ".." follow.
    result("chdir sub/m", chdir("sub/m"));
    result("rename b -> c", rename(at("b"), at("c")));
    cwd("after parent rename");
    result("creat(../../p)", closed(creat("../../p", 0644)));
    exists("c/p");
    result("fchdir(dirfd)", fchdir(dfd));
    cwd("after fchdir");
    result("fchdir(O_PATH fd)", fchdir(pfd));
    cwd("after fchdir O_PATH");

    // chdir through a symlink: the directory's own path.
    result("symlink l -> c/sub", symlink("c/sub", at("l")));
    result("chdir l", chdir(at("l")));
    cwd("after chdir through symlink");
    result("creat(../q)", closed(creat("../q", 0644)));
    exists("c/q");
    exists("q");

    // The cwd removed: getcwd and relative creates say ENOENT.
    result("mkdir gone", mkdir(at("gone"), 0755));
    result("chdir gone", chdir(at("gone")));
    result("rmdir gone", rmdir(at("gone")));
    cwd("after rmdir");
    result("creat(r) in a removed cwd", closed(creat("r", 0644)));
    result("chdir ROOT", chdir(root));
    cwd("back");
    return 0;
}
