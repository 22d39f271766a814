// files: exercises the file-system syscalls on a directory and prints one deterministic line per
// step, so a test can compare the output with the expected text and with a native run.
//
//   files rw DIR [umon]   create, write, read back, rename, list, link, chmod, mmap and delete in
//                         the empty directory DIR; leaves keep.txt, sub/ and a file with a
//                         non-UTF-8 name behind for the test to check from the host. With "umon",
//                         also prints the lines that differ from Linux by design.
//   files ro DIR          every change to DIR (a read-only volume holding file.txt, dir/ and
//                         link -> file.txt) fails, mostly with EROFS; reads work
//   files escape DIR      attempts to reach files outside DIR (the test sets up the symlinks);
//                         every one must fail
//   files magic DIR       DIR is /proc/self granted as a volume: magic links must not resolve
//   files nested DIR      DIR is read-write with a read-only volume at DIR/ro inside it
//   files root ""         a volume mounted at /: absolute symlinks stay inside it
//   files race DIR N      opens DIR/swap N times while the host swaps that symlink between
//                         inside.txt and a path outside; prints how many opens leaked
//   files fdlimit DIR     opens DIR/f until EMFILE under a lowered RLIMIT_NOFILE
//   files statloop DIR N  N rounds of open/fstat/close of DIR/small.txt (benchmark)
//
// Exit status 0 unless the program cannot go on; a failed expectation prints "FAIL ...".
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "say.h"


static const char *errname(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EROFS: return "EROFS";
    case ELOOP: return "ELOOP";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EXDEV: return "EXDEV";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case EMFILE: return "EMFILE";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESPIPE: return "ESPIPE";
    case EFAULT: return "EFAULT";
    case ERANGE: return "ERANGE";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

// "what: ok" for r >= 0, "what: ENAME" otherwise.
static long check(const char *what, long r) {
    if (r < 0)
        say("%s: %s", what, errname(errno));
    else
        say("%s: ok", what);
    return r;
}

// "what: ENAME" when the call failed, "what: SUCCEEDED" when it should not have.
static void must_fail(const char *what, long r) {
    if (r < 0)
        say("%s: %s", what, errname(errno));
    else
        say("%s: SUCCEEDED", what);
}

static char dir[PATH_MAX];

static const char *at(const char *name) {
    static char bufs[4][PATH_MAX * 2];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, PATH_MAX * 2, "%s/%s", dir, name);
    return b;
}

static void die(const char *what) {
    say("FAIL %s: %s", what, errname(errno));
    exit(1);
}

// Reads all of fd into buf (NUL-terminated); returns the byte count.
static long slurp(int fd, char *buf, size_t size) {
    size_t got = 0;
    while (got < size - 1) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    return (long)got;
}

// "what: <contents>" of a file, or "what: ENAME".
static void show_file(const char *what, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say("%s: %s", what, errname(errno));
        return;
    }
    char buf[256];
    long n = slurp(fd, buf, sizeof buf);
    close(fd);
    for (long i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = i == n - 1 ? 0 : '|';
    say("%s: %s", what, n < 0 ? errname(errno) : buf);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The entries of a directory fd, read with raw getdents64 into a small buffer (several calls),
// sorted, each as "name/type" with non-printable bytes as \xNN.
static void list(const char *what, int fd) {
    char *names[64];
    int count = 0;
    char buf[200]; // small on purpose: several getdents64 calls per directory
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            say("%s: getdents64 %s", what, errname(errno));
            return;
        }
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            if (d->reclen % 8 != 0 || d->reclen < 24) {
                say("FAIL %s: bad d_reclen %u", what, d->reclen);
                return;
            }
            char t = d->type == DT_DIR ? 'd' : d->type == DT_REG ? 'f' : d->type == DT_LNK ? 'l' : '?';
            char shown[300];
            size_t k = 0;
            for (const unsigned char *c = (const unsigned char *)d->name; *c && k < 280; c++) {
                if (*c >= 0x20 && *c < 0x7f)
                    shown[k++] = (char)*c;
                else
                    k += (size_t)snprintf(shown + k, 5, "\\x%02x", *c);
            }
            shown[k++] = '/';
            shown[k++] = t;
            shown[k] = 0;
            if (count < 64)
                names[count++] = strdup(shown);
            off += d->reclen;
        }
    }
    qsort(names, (size_t)count, sizeof names[0], cmp);
    char line[1024] = "";
    for (int i = 0; i < count; i++) {
        strncat(line, " ", sizeof line - strlen(line) - 1);
        strncat(line, names[i], sizeof line - strlen(line) - 1);
        free(names[i]);
    }
    say("%s:%s", what, line);
}

static const char *kind(mode_t m) {
    return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
}

// --- rw -----------------------------------------------------------------------------------------

static void rw(int umon) {
    struct stat st;
    char buf[256];

    int fd = (int)check("create a.txt O_EXCL", open(at("a.txt"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd < 0)
        die("create");
    must_fail("create a.txt O_EXCL again", open(at("a.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    say("write: %ld", (long)write(fd, "hello world\n", 12));
    check("fsync", fsync(fd));
    check("fdatasync", fdatasync(fd));
    say("fcntl F_GETFD: %d", fcntl(fd, F_GETFD));
    check("close", close(fd));

    fd = (int)check("open a.txt O_RDONLY", open(at("a.txt"), O_RDONLY));
    char a[6] = {0}, b[4] = {0};
    struct iovec iov[2] = {{a, 5}, {b, 3}};
    say("readv: %ld '%s' '%s'", (long)readv(fd, iov, 2), a, b);
    memset(buf, 0, sizeof buf);
    say("pread 6@6: %ld '%.5s'", (long)pread(fd, buf, 6, 6), buf);
    say("lseek SEEK_CUR after pread: %ld", (long)lseek(fd, 0, SEEK_CUR));
    int d = dup(fd);
    say("read 2 via dup: %ld", (long)read(d, buf, 2));
    say("offset shared with the dup: %ld", (long)lseek(fd, 0, SEEK_CUR));
    close(d);
    say("lseek SEEK_END: %ld", (long)lseek(fd, 0, SEEK_END));
    say("read at end: %ld", (long)read(fd, buf, sizeof buf));
    check("fstat", fstat(fd, &st));
    say("fstat: %s size %ld", kind(st.st_mode), (long)st.st_size);
    must_fail("write to O_RDONLY fd", write(fd, "x", 1));
    close(fd);

    fd = (int)check("open O_WRONLY|O_APPEND", open(at("a.txt"), O_WRONLY | O_APPEND));
    say("write appended: %ld", (long)write(fd, "appended\n", 9));
    say("F_GETFL has O_APPEND: %d", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    close(fd);
    fd = open(at("a.txt"), O_RDWR);
    say("pwrite 5@0: %ld", (long)pwrite(fd, "HELLO", 5, 0));
    say("offset after pwrite: %ld", (long)lseek(fd, 0, SEEK_CUR));
    close(fd);
    show_file("a.txt", at("a.txt"));

    fd = open(at("b.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    say("write b.txt: %ld", (long)write(fd, "0123456789", 10));
    close(fd);
    fd = (int)check("open b.txt O_TRUNC", open(at("b.txt"), O_RDWR | O_TRUNC));
    fstat(fd, &st);
    say("size after O_TRUNC: %ld", (long)st.st_size);
    check("ftruncate 100", ftruncate(fd, 100));
    fstat(fd, &st);
    say("size after ftruncate: %ld", (long)st.st_size);
    check("truncate 3", truncate(at("b.txt"), 3));
    fstat(fd, &st);
    say("size after truncate: %ld", (long)st.st_size);
    close(fd);

    check("mkdir sub", mkdir(at("sub"), 0755));
    must_fail("mkdir sub again", mkdir(at("sub"), 0755));
    check("rename a.txt sub/renamed.txt", rename(at("a.txt"), at("sub/renamed.txt")));
    must_fail("stat a.txt after rename", stat(at("a.txt"), &st));
    stat(at("sub/renamed.txt"), &st);
    say("stat sub/renamed.txt: %s size %ld", kind(st.st_mode), (long)st.st_size);
    must_fail("renameat2 RENAME_NOREPLACE onto b.txt",
              syscall(SYS_renameat2, AT_FDCWD, at("sub/renamed.txt"), AT_FDCWD, at("b.txt"), 1));
    must_fail("rename into a missing directory", rename(at("b.txt"), at("nodir/b.txt")));

    check("symlink sub/link -> renamed.txt", symlink("renamed.txt", at("sub/link")));
    memset(buf, 0, sizeof buf);
    say("readlink sub/link: %ld '%s'", (long)readlink(at("sub/link"), buf, sizeof buf - 1), buf);
    stat(at("sub/link"), &st);
    say("stat through the link: %s size %ld", kind(st.st_mode), (long)st.st_size);
    lstat(at("sub/link"), &st);
    say("lstat sub/link: %s", kind(st.st_mode));
    must_fail("open sub/link O_NOFOLLOW", open(at("sub/link"), O_RDONLY | O_NOFOLLOW));
    must_fail("readlink of a regular file", readlink(at("b.txt"), buf, sizeof buf));
    check("link sub/renamed.txt sub/hard", link(at("sub/renamed.txt"), at("sub/hard")));
    stat(at("sub/renamed.txt"), &st);
    say("nlink after link: %ld", (long)st.st_nlink);
    must_fail("open a file with O_DIRECTORY", open(at("b.txt"), O_RDONLY | O_DIRECTORY));
    must_fail("open a file with a trailing slash", open(at("b.txt/"), O_RDONLY));
    must_fail("open a directory for writing", open(at("sub"), O_WRONLY));

    int dfd = (int)check("open sub O_DIRECTORY", open(at("sub"), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    list("list sub", dfd);
    check("lseek sub to 0", lseek(dfd, 0, SEEK_SET));
    list("list sub again", dfd);
    fd = (int)check("openat(sub, renamed.txt)", openat(dfd, "renamed.txt", O_RDONLY));
    say("read via openat: %ld", (long)read(fd, buf, 5));
    close(fd);
    check("fstatat(sub, link, AT_SYMLINK_NOFOLLOW)", fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW));
    say("fstatat: %s", kind(st.st_mode));
    check("unlinkat(sub, hard)", unlinkat(dfd, "hard", 0));
    fstatat(dfd, "renamed.txt", &st, 0);
    say("nlink after unlinkat: %ld", (long)st.st_nlink);
    check("mkdirat(sub, deep)", mkdirat(dfd, "deep", 0755));
    must_fail("rmdir sub (not empty)", rmdir(at("sub")));
    must_fail("unlink a directory", unlinkat(dfd, "deep", 0));
    check("unlinkat(sub, deep, AT_REMOVEDIR)", unlinkat(dfd, "deep", AT_REMOVEDIR));
    must_fail("rmdir sub/. ", rmdir(at("sub/.")));

    check("chmod 0640", chmod(at("sub/renamed.txt"), 0640));
    stat(at("sub/renamed.txt"), &st);
    say("mode: %o", st.st_mode & 07777);
    fd = open(at("sub/renamed.txt"), O_RDONLY);
    check("fchmod 0600", fchmod(fd, 0600));
    fstat(fd, &st);
    say("mode: %o", st.st_mode & 07777);
    struct timespec ts[2] = {{1000000000, 250000000}, {1000000000, 500000000}};
    check("utimensat", utimensat(AT_FDCWD, at("sub/renamed.txt"), ts, 0));
    fstat(fd, &st);
    say("mtime: %ld.%09ld", (long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    ts[1].tv_sec = 1100000000;
    ts[0].tv_nsec = UTIME_OMIT;
    check("futimens", futimens(fd, ts));
    fstat(fd, &st);
    say("mtime: %ld.%09ld atime: %ld", (long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
        (long)st.st_atim.tv_sec);
    check("access R_OK|W_OK", access(at("sub/renamed.txt"), R_OK | W_OK));
    must_fail("access X_OK on a 0600 file", access(at("sub/renamed.txt"), X_OK));
    must_fail("access missing", access(at("missing"), F_OK));
    check("faccessat2 AT_SYMLINK_NOFOLLOW",
          syscall(SYS_faccessat2, dfd, "link", R_OK, AT_SYMLINK_NOFOLLOW));

    char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        say("mmap MAP_PRIVATE: %s", errname(errno));
    } else {
        // Past the end of file within its last page: zeros (a page past it would be SIGBUS).
        say("mmap MAP_PRIVATE: '%.5s' then zeros: %d", map, map[21] == 0 && map[4095] == 0);
        map[0] = 'J';
        munmap(map, 8192);
        memset(buf, 0, sizeof buf);
        pread(fd, buf, 5, 0);
        say("file after writing the private mapping: '%s'", buf);
    }
    must_fail("mmap at an unaligned offset", (long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100));
    close(fd);

    char cwd[PATH_MAX], want[PATH_MAX + 8];
    check("chdir sub", chdir(at("sub")));
    snprintf(want, sizeof want, "%s/sub", dir);
    say("getcwd is DIR/sub: %d", getcwd(cwd, sizeof cwd) && strcmp(cwd, want) == 0);
    show_file("open renamed.txt relative to cwd", "renamed.txt");
    check("chdir ..", chdir(".."));
    say("getcwd is DIR: %d", getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0);
    check("fchdir sub", fchdir(dfd));
    check("stat link relative after fchdir", stat("link", &st));
    must_fail("getcwd into a 2-byte buffer", syscall(SYS_getcwd, cwd, 2));
    check("chdir back", chdir(dir));
    close(dfd);

    struct statfs sfs;
    check("statfs", statfs(dir, &sfs));
    say("statfs read-only: %d", (sfs.f_flags & ST_RDONLY) != 0);

    check("unlink b.txt", unlink(at("b.txt")));
    must_fail("unlink b.txt again", unlink(at("b.txt")));
    const char odd[] = "\xff\xfe-odd.bin";
    fd = (int)check("create a non-UTF-8 name", open(at(odd), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    say("write: %ld", (long)write(fd, "bytes\n", 6));
    close(fd);
    fd = open(at("keep.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    say("write keep.txt: %ld", (long)write(fd, "kept\n", 5));
    close(fd);
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    list("list DIR", dfd);
    close(dfd);

    (void)umon;
    /* A shared mapping is the file: a store through it is in the file. */
    fd = open(at("keep.txt"), O_RDWR);
    char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    say("mmap MAP_SHARED|PROT_WRITE: %s", w == MAP_FAILED ? errname(errno) : "ok");
    if (w != MAP_FAILED) {
        memcpy(w, "KEPT", 4);
        say("msync: %s", msync(w, 4096, MS_SYNC) == 0 ? "ok" : errname(errno));
        munmap(w, 4096);
    }
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    say("mmap MAP_SHARED read-only: %.4s", ro == MAP_FAILED ? errname(errno) : ro);
    close(fd);
}

// --- ro -----------------------------------------------------------------------------------------

static void ro(void) {
    struct stat st;
    char buf[64];
    show_file("read file.txt", at("file.txt"));
    show_file("read through link", at("link"));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    list("list", dfd);
    must_fail("open O_WRONLY", open(at("file.txt"), O_WRONLY));
    must_fail("open O_RDWR", open(at("file.txt"), O_RDWR));
    must_fail("open O_CREAT new", open(at("new.txt"), O_WRONLY | O_CREAT, 0644));
    must_fail("open O_CREAT|O_RDONLY new", open(at("new.txt"), O_RDONLY | O_CREAT, 0644));
    must_fail("open O_TRUNC", open(at("file.txt"), O_RDONLY | O_TRUNC));
    must_fail("open O_APPEND", open(at("file.txt"), O_WRONLY | O_APPEND));
    must_fail("open O_CREAT|O_EXCL existing", open(at("file.txt"), O_RDONLY | O_CREAT | O_EXCL, 0644));
    must_fail("open O_WRONLY missing", open(at("missing.txt"), O_WRONLY));
    int fd = (int)check("open O_CREAT|O_RDONLY existing", open(at("file.txt"), O_RDONLY | O_CREAT, 0644));
    close(fd);
    must_fail("openat O_CREAT", openat(dfd, "new2.txt", O_RDWR | O_CREAT, 0644));
    must_fail("creat", creat(at("new.txt"), 0644));
    must_fail("mkdir new", mkdir(at("newdir"), 0755));
    must_fail("mkdir existing", mkdir(at("dir"), 0755));
    must_fail("mkdirat", mkdirat(dfd, "newdir", 0755));
    must_fail("rmdir", rmdir(at("dir")));
    must_fail("unlink", unlink(at("file.txt")));
    must_fail("unlinkat", unlinkat(dfd, "link", 0));
    must_fail("unlink missing", unlink(at("missing.txt")));
    must_fail("rename", rename(at("file.txt"), at("moved.txt")));
    must_fail("renameat2 RENAME_EXCHANGE",
              syscall(SYS_renameat2, dfd, "file.txt", dfd, "dir", 2));
    must_fail("symlink", symlink("file.txt", at("newlink")));
    must_fail("link", link(at("file.txt"), at("hard")));
    must_fail("chmod", chmod(at("file.txt"), 0777));
    must_fail("fchmodat", fchmodat(dfd, "dir", 0777, 0));
    must_fail("utimensat", utimensat(AT_FDCWD, at("file.txt"), NULL, 0));
    must_fail("truncate", truncate(at("file.txt"), 0));
    must_fail("access W_OK", access(at("file.txt"), W_OK));
    check("access R_OK", access(at("file.txt"), R_OK));
    fd = open(at("file.txt"), O_RDONLY);
    must_fail("write to the O_RDONLY fd", write(fd, "x", 1));
    must_fail("pwrite", pwrite(fd, "x", 1, 0));
    must_fail("fchmod", fchmod(fd, 0777));
    must_fail("futimens", futimens(fd, NULL));
    must_fail("ftruncate", ftruncate(fd, 0));
    must_fail("mmap MAP_SHARED|PROT_WRITE", (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
        p[0] = 'R';
        say("private writable mapping: %.9s", p);
    } else {
        say("private writable mapping: %s", errname(errno));
    }
    memset(buf, 0, sizeof buf);
    say("pread: %ld '%.9s'", (long)pread(fd, buf, 9, 0), buf);
    fstat(fd, &st);
    say("fstat: %s size %ld", kind(st.st_mode), (long)st.st_size);
    struct statfs sfs;
    fstatfs(fd, &sfs);
    say("fstatfs read-only: %d", (sfs.f_flags & ST_RDONLY) != 0);
    close(fd);
    close(dfd);
}

// --- escape -------------------------------------------------------------------------------------

static void escape(void) {
    char buf[8200];
    struct stat st;
    must_fail("open DIR/../outside/secret.txt", open(at("../outside/secret.txt"), O_RDONLY));
    must_fail("open DIR/../../../../../../etc/shadow", open(at("../../../../../../etc/shadow"), O_RDONLY));
    must_fail("open /etc/shadow", open("/etc/shadow", O_RDONLY));
    must_fail("open /proc/self/root/etc/passwd", open("/proc/self/root/etc/passwd", O_RDONLY));
    must_fail("open abs -> /etc/passwd", open(at("abs"), O_RDONLY));
    must_fail("open abs-secret -> absolute host path", open(at("abs-secret"), O_RDONLY));
    must_fail("open rel -> ../outside/secret.txt", open(at("rel"), O_RDONLY));
    must_fail("open updir/outside/secret.txt", open(at("updir/outside/secret.txt"), O_RDONLY));
    must_fail("open sub/deeper -> ../../outside", open(at("sub/deeper/secret.txt"), O_RDONLY));
    must_fail("open proc -> /proc/self/root", open(at("proc/etc/passwd"), O_RDONLY));
    must_fail("open loop", open(at("loop"), O_RDONLY));
    must_fail("stat abs", stat(at("abs"), &st));
    check("lstat abs (the link itself)", lstat(at("abs"), &st));
    must_fail("stat rel", stat(at("rel"), &st));
    must_fail("access rel", access(at("rel"), F_OK));
    must_fail("chmod rel", chmod(at("rel"), 0777));
    must_fail("utimensat rel", utimensat(AT_FDCWD, at("rel"), NULL, 0));
    must_fail("truncate rel", truncate(at("rel"), 0));
    must_fail("chdir updir", chdir(at("updir")));
    must_fail("opendir updir", open(at("updir"), O_RDONLY | O_DIRECTORY));
    must_fail("create through absdir", open(at("absdir/created.txt"), O_WRONLY | O_CREAT, 0644));
    must_fail("create through reldir", open(at("reldir/created.txt"), O_WRONLY | O_CREAT, 0644));
    must_fail("create through a dangling escaping link", open(at("dangling"), O_WRONLY | O_CREAT, 0644));
    must_fail("mkdir through reldir", mkdir(at("reldir/newdir"), 0755));
    must_fail("symlink through reldir", symlink("x", at("reldir/made")));
    must_fail("rename into reldir", rename(at("keep.txt"), at("reldir/stolen.txt")));
    must_fail("rename out of reldir", rename(at("reldir/secret.txt"), at("stolen.txt")));
    must_fail("link into reldir", link(at("keep.txt"), at("reldir/hl")));
    must_fail("link out of reldir", link(at("reldir/secret.txt"), at("hl")));
    must_fail("link -L of rel", linkat(AT_FDCWD, at("rel"), AT_FDCWD, at("hl"), AT_SYMLINK_FOLLOW));
    must_fail("unlink through reldir", unlink(at("reldir/secret.txt")));
    must_fail("rmdir through updir", rmdir(at("updir/outside")));
    int dfd = open(at("sub"), O_RDONLY | O_DIRECTORY);
    must_fail("openat(sub, ../../outside/secret.txt)", openat(dfd, "../../outside/secret.txt", O_RDONLY));
    must_fail("openat(sub, /etc/shadow)", openat(dfd, "/etc/shadow", O_RDONLY));
    close(dfd);
    show_file("read hard (a hard link made on the host)", at("hard"));
    show_file("read through a NUL", at("keep.txt\0/../../outside/secret.txt"));

    // PATH_MAX: 4095 bytes and a NUL fit, 4096 do not.
    char *p = buf;
    p += sprintf(p, "%s/", dir);
    while (p - buf < 4095 - 2)
        p += sprintf(p, "./");
    while (p - buf < 4095)
        *p++ = 'x';
    *p = 0;
    must_fail("open a 4095-byte path", open(buf, O_RDONLY));
    *p++ = 'x';
    *p = 0;
    must_fail("open a 4096-byte path", open(buf, O_RDONLY));
    must_fail("mkdir a 4096-byte path", mkdir(buf, 0755));
    memset(buf, 'n', 300);
    buf[300] = 0;
    must_fail("open a 300-byte name", open(at(buf), O_RDONLY | O_CREAT, 0644));
    must_fail("open a bad pointer", (long)syscall(SYS_openat, AT_FDCWD, (void *)8, O_RDONLY));
    must_fail("stat into a bad buffer", (long)syscall(SYS_newfstatat, AT_FDCWD, at("keep.txt"), (void *)8, 0));
    must_fail("getdents64 into a bad buffer", (long)syscall(SYS_getdents64, open(dir, O_RDONLY | O_DIRECTORY), (void *)8, 4096));
    const char odd[] = "\xc3\x28-invalid";
    int fd = (int)check("create a non-UTF-8 name", open(at(odd), O_WRONLY | O_CREAT, 0644));
    close(fd);
}

// --- magic --------------------------------------------------------------------------------------

static void magic(void) {
    struct stat st;
    char buf[64];
    must_fail("open root/etc/passwd", open(at("root/etc/passwd"), O_RDONLY));
    must_fail("open cwd", open(at("cwd"), O_RDONLY | O_DIRECTORY));
    must_fail("open exe", open(at("exe"), O_RDONLY));
    must_fail("open fd/1", open(at("fd/1"), O_WRONLY));
    must_fail("stat root", stat(at("root"), &st));
    check("lstat root (the link itself)", lstat(at("root"), &st));
    int fd = (int)check("open stat (a plain /proc file)", open(at("stat"), O_RDONLY));
    say("it reads: %d", read(fd, buf, sizeof buf) > 0);
    close(fd);
}

// --- nested, root -----------------------------------------------------------------------------

// DIR is a read-write volume and DIR/ro a read-only one (holding file.txt) mounted inside it.
static void nested(void) {
    int fd = (int)check("create DIR/x", open(at("x"), O_WRONLY | O_CREAT, 0644));
    close(fd);
    must_fail("create DIR/ro/x", open(at("ro/x"), O_WRONLY | O_CREAT, 0644));
    show_file("read DIR/ro/file.txt", at("ro/file.txt"));
    show_file("read DIR/ro/../x", at("ro/../x"));
    must_fail("rename DIR/x DIR/ro/x", rename(at("x"), at("ro/x")));
    must_fail("rename DIR/ro/file.txt DIR/y", rename(at("ro/file.txt"), at("y")));
    must_fail("link DIR/ro/file.txt DIR/y", link(at("ro/file.txt"), at("y")));
    must_fail("rmdir DIR/ro", rmdir(at("ro")));
    must_fail("rename DIR/ro DIR/y", rename(at("ro"), at("y")));
    must_fail("mkdir DIR/ro", mkdir(at("ro"), 0755));
    check("chdir DIR/ro", chdir(at("ro")));
    show_file("read file.txt relative", "file.txt");
    show_file("read ../x relative", "../x");
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    list("list .", dfd);
    close(dfd);
}

// The volume is mounted at /: absolute symlinks and .. stay inside it.
static void root(void) {
    char cwd[PATH_MAX];
    say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : errname(errno));
    show_file("read /file.txt", "/file.txt");
    show_file("read /abs -> /file.txt", "/abs");
    show_file("read /climb -> ../../../../file.txt", "/climb");
    show_file("read /../../file.txt", "/../../file.txt");
    show_file("read /etc/passwd (the volume's own)", "/etc/passwd");
    check("chdir /dir", chdir("/dir"));
    show_file("read ../file.txt", "../file.txt");
    int dfd = open("/", O_RDONLY | O_DIRECTORY);
    list("list /", dfd);
    close(dfd);
}

// --- race ---------------------------------------------------------------------------------------

static void race(long n) {
    long inside = 0, missing = 0, leaks = 0, other = 0;
    char buf[64];
    for (long i = 0; i < n; i++) {
        int fd = open(at("swap"), O_RDONLY);
        if (fd < 0) {
            if (errno == ENOENT)
                missing++;
            else
                other++;
            continue;
        }
        long got = slurp(fd, buf, sizeof buf);
        close(fd);
        if (got > 0 && strncmp(buf, "inside", 6) == 0)
            inside++;
        else if (got > 0 && strstr(buf, "SECRET"))
            leaks++;
        else
            other++;
    }
    say("race: %ld opens, %ld leaked, %ld neither inside nor ENOENT", n, leaks, other);
    fprintf(stderr, "race: %ld read inside.txt, %ld ENOENT\n", inside, missing);
}

// --- fdlimit ------------------------------------------------------------------------------------

static void fdlimit(void) {
    struct rlimit rl = {16, 16};
    check("setrlimit RLIMIT_NOFILE 16", setrlimit(RLIMIT_NOFILE, &rl));
    int count = 0, fd;
    while ((fd = open(at("f"), O_RDONLY | O_CREAT, 0644)) >= 0)
        count++;
    say("opened %d, then: %s", count, errname(errno));
    must_fail("dup at the limit", dup(0));
    for (int i = 3; i < 16; i++)
        close(i);
    check("open after closing", open(at("f"), O_RDONLY));
}

// --- statloop -----------------------------------------------------------------------------------

static void statloop(long n) {
    const char *path = at("small.txt");
    struct stat st;
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            die("open/fstat");
        close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        say("usage: files rw|ro|escape|magic|nested|root|race|fdlimit|statloop DIR [N|umon]");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[2]);
    const char *mode = argv[1];
    long n = argc > 3 ? atol(argv[3]) : 0;
    if (strcmp(mode, "rw") == 0)
        rw(argc > 3 && strcmp(argv[3], "umon") == 0);
    else if (strcmp(mode, "ro") == 0)
        ro();
    else if (strcmp(mode, "escape") == 0)
        escape();
    else if (strcmp(mode, "magic") == 0)
        magic();
    else if (strcmp(mode, "nested") == 0)
        nested();
    else if (strcmp(mode, "root") == 0)
        root();
    else if (strcmp(mode, "race") == 0)
        race(n);
    else if (strcmp(mode, "fdlimit") == 0)
        fdlimit();
    else if (strcmp(mode, "statloop") == 0)
        statloop(n);
    else
        return 2;
    return 0;
}
