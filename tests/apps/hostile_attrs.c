// Hostile arguments to the xattr and chown families (tests/hostile_longtail2.rs), the parts
// whose answers do not depend on attributes existing (umon's files have none) or on the
// caller's privileges: bad pointers for paths and names, bad sizes and flags, fds of the wrong
// kind, and chown to the caller's own ids (-1: unchanged).
//   hostile_attrs calls DIR
#include "hostile_common.h"
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>

static char path[4096];
static const char *in(const char *dir, const char *leaf) {
    snprintf(path, sizeof path, "%s/%s", dir, leaf);
    return path;
}

int main(int argc, char **argv) {
    bad_addresses();
    if (argc < 3 || strcmp(argv[1], "calls")) return 2;
    const char *dir = argv[2];
    char f[4096];
    snprintf(f, sizeof f, "%s", in(dir, "file"));
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    int pathfd = open(f, O_PATH);
    int memfd = (int)SYS(SYS_memfd_create, "m", 0);
    char buf[256];
    for (int i = 0; i < N_BAD; i++) {
        say("%s: getxattr path %ld name %ld lgetxattr name %ld fgetxattr name %ld", bad_name[i],
            SYS(SYS_getxattr, bad_ptr(i), "user.a", buf, sizeof buf),
            SYS(SYS_getxattr, f, bad_ptr(i), buf, sizeof buf),
            SYS(SYS_lgetxattr, f, bad_ptr(i), buf, sizeof buf),
            SYS(SYS_fgetxattr, fd, bad_ptr(i), buf, sizeof buf));
        if (i == 4) continue; // "user.ro": a name Linux would set (umon's files take none)
        say("%s: setxattr name %ld lsetxattr path %ld fsetxattr value(size 4) %ld", bad_name[i],
            SYS(SYS_setxattr, f, bad_ptr(i), "v", 1, 0), SYS(SYS_lsetxattr, bad_ptr(i), "user.a", "v", 1, 0),
            SYS(SYS_fsetxattr, fd, "user.a", bad_ptr(i), 4, XATTR_CREATE | XATTR_REPLACE));
        say("%s: removexattr path %ld name %ld fremovexattr name %ld listxattr path %ld", bad_name[i],
            SYS(SYS_removexattr, bad_ptr(i), "user.a"), SYS(SYS_removexattr, f, bad_ptr(i)),
            SYS(SYS_fremovexattr, fd, bad_ptr(i)), SYS(SYS_llistxattr, bad_ptr(i), buf, sizeof buf));
    }
    long sizes[] = {-1, 65537, 1l << 32, LONG_MIN};
    for (int i = 0; i < 4; i++)
        say("setxattr size %#lx flags 3 = %ld, flags 8 = %ld", sizes[i],
            SYS(SYS_setxattr, f, "user.a", buf, sizes[i], 3), SYS(SYS_fsetxattr, fd, "user.a", buf, sizes[i], 8));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    memcpy(longname, "user.", 5);
    longname[255] = 0;
    SHOW("getxattr name of 255", SYS(SYS_getxattr, f, longname, buf, sizeof buf) == -ENAMETOOLONG);
    longname[255] = 'a';
    longname[256] = 0;
    SHOW("lremovexattr name of 256", SYS(SYS_lremovexattr, f, longname));
    SHOW("fremovexattr empty name", SYS(SYS_fremovexattr, fd, ""));
    SHOW("removexattr on a missing file", SYS(SYS_removexattr, in(dir, "missing"), "user.a"));
    SHOW("listxattr on a missing file", SYS(SYS_listxattr, in(dir, "missing"), buf, sizeof buf));
    int kinds[] = {pathfd, 999, -1};
    const char *kind[] = {"O_PATH", "closed", "-1"};
    for (int i = 0; i < 3; i++)
        say("on %s: fgetxattr %ld fsetxattr %ld flistxattr %ld fremovexattr %ld", kind[i],
            SYS(SYS_fgetxattr, kinds[i], "user.a", buf, sizeof buf),
            SYS(SYS_fsetxattr, kinds[i], "user.a", "v", 1, 0), SYS(SYS_flistxattr, kinds[i], buf, sizeof buf),
            SYS(SYS_fremovexattr, kinds[i], "user.a"));
    // chown to -1, -1: no change, only the lookups and flags are checked.
    for (int i = 0; i < N_BAD - 1; i++)
        say("%s: chown %ld lchown %ld fchownat %ld", bad_name[i], SYS(SYS_chown, bad_ptr(i), -1, -1),
            SYS(SYS_lchown, bad_ptr(i), -1, -1), SYS(SYS_fchownat, AT_FDCWD, bad_ptr(i), -1, -1, 0));
    SHOW("fchownat bad flags, own ids", SYS(SYS_fchownat, AT_FDCWD, f, -1, -1, 0x4));
    SHOW("fchownat bad flags, other ids", SYS(SYS_fchownat, AT_FDCWD, f, 4321, 4321, 0x8000));
    SHOW("fchownat empty path without AT_EMPTY_PATH", SYS(SYS_fchownat, fd, "", -1, -1, 0));
    SHOW("fchownat empty path, AT_EMPTY_PATH", SYS(SYS_fchownat, fd, "", -1, -1, AT_EMPTY_PATH));
    SHOW("fchownat O_PATH fd, AT_EMPTY_PATH", SYS(SYS_fchownat, pathfd, "", -1, -1, AT_EMPTY_PATH));
    SHOW("fchownat a closed dirfd", SYS(SYS_fchownat, 999, "x", -1, -1, 0));
    SHOW("fchownat a file as dirfd", SYS(SYS_fchownat, fd, "x", -1, -1, 0));
    SHOW("chown a missing file", SYS(SYS_chown, in(dir, "missing"), -1, -1));
    SHOW("chown through a file", SYS(SYS_chown, in(dir, "file/x"), -1, -1));
    SHOW("chown own ids (high bits)", SYS(SYS_chown, f, (long)getuid() | (1l << 32), -1));
    SHOW("fchown own", SYS(SYS_fchown, fd, -1, -1));
    SHOW("fchown O_PATH", SYS(SYS_fchown, pathfd, -1, -1));
    SHOW("fchown O_PATH, other ids", SYS(SYS_fchown, pathfd, 4321, 4321));
    SHOW("fchown closed", SYS(SYS_fchown, 999, -1, -1));
    SHOW("fchown closed, other ids", SYS(SYS_fchown, 999, 4321, -1));
    SHOW("fchown fd -1", SYS(SYS_fchown, -1, -1, -1));
    (void)memfd;
    struct stat st;
    fstat(fd, &st);
    say("still mine %d mode %o", st.st_uid == getuid(), st.st_mode & 07777);
    return 0;
}
