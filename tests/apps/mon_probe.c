// mon_probe: programs that push on the monitor itself rather than on Linux semantics. argv[1]:
//
//   wait PATH      say "started", read a line from stdin, then fault in mon_fault_here (the test
//                  swaps the executable on the host in between)
//   zero PATH      replace the file at PATH (the app's own executable, in a writable volume) with
//                  a symlink to /dev/zero, then fault
//   sparse PATH    replace it with a 1 TiB sparse file, then fault
//   grow PATH      grow the file itself to 1 TiB (same inode), then fault
//   sendfile PATH  sendfile PATH to stdout over and over, forever
//   syscalls       getppid forever (a syscall per iteration, for --trace)
//   unknown N      syscall numbers 1000 .. 1000+N (none exists), then exit 0
//   closed         report what write(1) and fcntl(1, F_GETFD) give, on stderr; exit 0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "say.h"

__attribute__((noipa)) int mon_fault_here(void) {
    volatile int *volatile p = 0;
    *p = 1;
    return 0;
}

static void must(int ok, const char *what) {
    if (!ok) {
        say("%s failed: %s", what, strerror(errno));
        exit(1);
    }
}

static const char *errname(int e) {
    return e == EBADF ? "EBADF" : strerror(e);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *path = argc > 2 ? argv[2] : "";
    if (!strcmp(mode, "wait")) {
        say("started");
        char line[16];
        must(read(0, line, sizeof line) >= 0, "read");
    } else if (!strcmp(mode, "zero")) {
        must(unlink(path) == 0, "unlink");
        must(symlink("/dev/zero", path) == 0, "symlink");
    } else if (!strcmp(mode, "sparse")) {
        must(unlink(path) == 0, "unlink");
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0755);
        must(fd >= 0, "open");
        must(ftruncate(fd, 1LL << 40) == 0, "ftruncate");
        close(fd);
    } else if (!strcmp(mode, "grow")) {
        must(truncate(path, 1LL << 40) == 0, "truncate");
    } else if (!strcmp(mode, "sendfile")) {
        int fd = open(path, O_RDONLY);
        must(fd >= 0, "open");
        for (;;) {
            off_t off = 0;
            sendfile(1, fd, &off, 1 << 20);
        }
    } else if (!strcmp(mode, "syscalls")) {
        for (;;)
            getppid();
    } else if (!strcmp(mode, "unknown")) {
        long n = strtol(path, 0, 10);
        for (long i = 0; i < n; i++)
            syscall(1000 + i);
        return 0;
    } else if (!strcmp(mode, "closed")) {
        char line[128];
        long w = write(1, "x", 1);
        int we = errno;
        int f = fcntl(1, F_GETFD);
        int fe = errno;
        int n = snprintf(line, sizeof line, "write(1) = %ld %s, fcntl(1) = %d %s\n", w,
                         w < 0 ? errname(we) : "", f, f < 0 ? errname(fe) : "");
        write(2, line, (size_t)n);
        return 0;
    } else {
        return 2;
    }
    say("swapped");
    mon_fault_here();
    return 0;
}
