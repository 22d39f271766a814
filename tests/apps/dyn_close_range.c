/* close_range(2), which OpenSSH's closefrom and Python's subprocess call: prints which of fds
 * 0..12 are open (and close-on-exec) after each call, and each call's result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%-28s = %ld %s:", what, r, r < 0 ? strerrorname_np(errno) : "");
    for (int fd = 0; fd <= 12; fd++) {
        int f = fcntl(fd, F_GETFD);
        if (f >= 0)
            printf(" %d%s", fd, (f & FD_CLOEXEC) ? "e" : "");
    }
    printf("\n");
}

int main(void) {
    for (int fd = 3; fd <= 11; fd++)
        dup2(1, fd);
    show("start", 0);
    show("close_range(5, 6, 0)", syscall(SYS_close_range, 5, 6, 0));
    show("close_range(7, 8, CLOEXEC)", syscall(SYS_close_range, 7, 8, 4));
    show("close_range(9, 8, 0)", syscall(SYS_close_range, 9, 8, 0));
    show("close_range(3, 4, 8)", syscall(SYS_close_range, 3, 4, 8));
    show("close_range(3, 3, UNSHARE)", syscall(SYS_close_range, 3, 3, 2));
    show("close_range(10, ~0, 0)", syscall(SYS_close_range, 10, ~0U, 0));
    show("close_range(100, 200, 0)", syscall(SYS_close_range, 100, 200, 0));
    return 0;
}
