// vol_modes: the modes of files the application creates or changes in DIR (a writable volume
// or, natively, a scratch directory), each printed as "NAME: 0MODE" or "NAME: ERRNO".
//
//   vol_modes umask DIR    umask(0) then creat(0777) and friends: the guest's umask alone
//                          applies, whatever umon's own is; then umask(022).
//   vol_modes setid DIR    set-uid/set-gid bits asked for by every create and mode change
//   vol_modes nodes DIR    mknod/mknodat of FIFOs, sockets, regular files, devices;
//                          renameat2(RENAME_WHITEOUT)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "say.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

static const char *errname(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EROFS: return "EROFS";
    default: return "other";
    }
}

static const char *dir;
static char pb[4][512];
static int pn;
static const char *at(const char *name) {
    char *b = pb[pn++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static const char *kind(mode_t m) {
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "dir";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    if (S_ISCHR(m)) return "chardev";
    if (S_ISBLK(m)) return "blockdev";
    if (S_ISLNK(m)) return "symlink";
    return "?";
}

// The result of a call that made or changed NAME: its type and mode, or the call's errno.
static void mode_of(const char *what, long r, const char *name) {
    struct stat st;
    if (r < 0) {
        say("%s: %s", what, errname(errno));
        return;
    }
    if (lstat(at(name), &st) < 0) {
        say("%s: stat %s", what, errname(errno));
        return;
    }
    say("%s: %s %04o", what, kind(st.st_mode), st.st_mode & 07777);
}

static long closed(long fd) {
    if (fd >= 0)
        close((int)fd);
    return fd;
}

static void umask_case(void) {
    umask(0);
    mode_of("creat 0777", closed(creat(at("c"), 0777)), "c");
    mode_of("open O_CREAT 0666", closed(open(at("o"), O_WRONLY | O_CREAT, 0666)), "o");
    mode_of("mkdir 0777", mkdir(at("d"), 0777), "d");
    mode_of("mkfifo 0666", mkfifo(at("f"), 0666), "f");
    umask(022);
    mode_of("umask 022 creat 0777", closed(creat(at("c2"), 0777)), "c2");
    mode_of("umask 022 mkdir 0777", mkdir(at("d2"), 0777), "d2");
    umask(077);
    mode_of("umask 077 open O_CREAT 0666", closed(open(at("o2"), O_RDWR | O_CREAT, 0666)), "o2");
    // An existing file keeps its mode when opened with O_CREAT.
    mode_of("O_CREAT on existing keeps 0777", closed(open(at("c"), O_WRONLY | O_CREAT, 0600)), "c");
}

static void setid_case(void) {
    umask(0);
    mode_of("open O_CREAT 06777", closed(open(at("a"), O_WRONLY | O_CREAT, 06777)), "a");
    mode_of("open O_CREAT|O_EXCL 04700", closed(open(at("b"), O_WRONLY | O_CREAT | O_EXCL, 04700)), "b");
    mode_of("creat 02755", closed(creat(at("c"), 02755)), "c");
    mode_of("openat O_CREAT 06755",
            closed(syscall(SYS_openat, AT_FDCWD, at("e"), O_RDWR | O_CREAT, 06755)), "e");
    mode_of("mkdir 07777", mkdir(at("d"), 07777), "d");
    mode_of("mknod S_IFREG 06777", mknod(at("n"), S_IFREG | 06777, 0), "n");
    mode_of("mknod S_IFIFO 04666", mknod(at("p"), S_IFIFO | 04666, 0), "p");
    mode_of("chmod 04755", chmod(at("a"), 04755), "a");
    mode_of("chmod 01777 (sticky kept)", chmod(at("d"), 01777), "d");
    int fd = open(at("b"), O_RDONLY);
    mode_of("fchmod 02755", fchmod(fd, 02755), "b");
    close(fd);
    mode_of("fchmodat 06711", syscall(SYS_fchmodat, AT_FDCWD, at("c"), 06711), "c");
    fd = open(at("e"), O_PATH);
    mode_of("fchmodat2 AT_EMPTY_PATH 04777",
            syscall(452 /* fchmodat2 */, fd, "", 04777, AT_EMPTY_PATH), "e");
    close(fd);
    int tmp = open(dir, O_TMPFILE | O_RDWR, 06777);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", tmp);
    struct stat st;
    if (tmp >= 0 && fstat(tmp, &st) == 0)
        say("O_TMPFILE 06777: %s %04o", kind(st.st_mode), st.st_mode & 07777);
    else
        say("O_TMPFILE 06777: %s", errname(errno));
    close(tmp);
}

static void nodes_case(void) {
    umask(022);
    mode_of("mknod S_IFIFO 0666", mknod(at("fifo"), S_IFIFO | 0666, 0), "fifo");
    mode_of("mkfifo 0640", mkfifo(at("fifo2"), 0640), "fifo2");
    mode_of("mknodat S_IFSOCK 0777", mknodat(AT_FDCWD, at("sock"), S_IFSOCK | 0777, 0), "sock");
    mode_of("mknod S_IFREG 0644", mknod(at("reg"), S_IFREG | 0644, 0), "reg");
    mode_of("mknod type 0 0600", mknod(at("reg0"), 0600, 0), "reg0");
    mode_of("mknod existing", mknod(at("fifo"), S_IFIFO | 0666, 0), "fifo");
    mode_of("mknod S_IFCHR 1:3", mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)), "null");
    mode_of("mknod S_IFCHR 0:0 (whiteout)", mknod(at("wh"), S_IFCHR | 0666, 0), "wh");
    mode_of("mknod S_IFBLK 7:0", mknod(at("loop"), S_IFBLK | 0666, makedev(7, 0)), "loop");
    mode_of("mknod S_IFDIR", mknod(at("dir"), S_IFDIR | 0755, 0), "dir");
    mode_of("mknod bad type", mknod(at("bad"), 0170000 | 0644, 0), "bad");
    mode_of("mknod in missing dir", mknod(at("no/x"), S_IFIFO | 0644, 0), "no/x");
    if (closed(creat(at("w"), 0644)) < 0)
        say("creat w failed");
    long r = syscall(SYS_renameat2, AT_FDCWD, at("w"), AT_FDCWD, at("w2"), RENAME_WHITEOUT);
    mode_of("renameat2 RENAME_WHITEOUT", r, "w2");
    mode_of("the old name after it", 0, "w");
    r = syscall(SYS_renameat2, AT_FDCWD, at("w"), AT_FDCWD, at("reg"),
                RENAME_WHITEOUT | RENAME_EXCHANGE);
    mode_of("renameat2 RENAME_WHITEOUT|RENAME_EXCHANGE", r, "w");
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    dir = argv[2];
    if (!strcmp(argv[1], "umask"))
        umask_case();
    else if (!strcmp(argv[1], "setid"))
        setid_case();
    else if (!strcmp(argv[1], "nodes"))
        nodes_case();
    else
        return 2;
    return 0;
}
