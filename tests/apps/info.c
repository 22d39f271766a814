// Process-information calls programs make at start-up, each answer printed so the run under
// umon can be compared with the native one: supplementary groups, resource usage, process
// group and session, prctl, sysinfo, socket calls on files, chown in a writable directory
// (argv[1]), with bad pointers and arguments where Linux answers EFAULT/EINVAL.
#include "say.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define BAD ((void *)8)

static void res(const char *what, long r) {
    if (r < 0)
        say("%s = -1 errno %d", what, errno);
    else
        say("%s = %ld", what, r);
}

int main(int argc, char **argv) {
    gid_t groups[256];
    int n = getgroups(0, NULL);
    say("getgroups(0) matches the full list: %d", n == getgroups(256, groups));
    if (n > 0) {
        res("getgroups(too small)", getgroups(n - 1, groups));
        res("getgroups(bad pointer)", syscall(SYS_getgroups, n, BAD));
    }
    res("getgroups(-1)", syscall(SYS_getgroups, -1, groups));

    struct rusage ru;
    res("getrusage(SELF)", getrusage(RUSAGE_SELF, &ru));
    res("getrusage(CHILDREN)", getrusage(RUSAGE_CHILDREN, &ru));
    say("children used no time: %d", ru.ru_utime.tv_sec == 0 && ru.ru_utime.tv_usec == 0);
    res("getrusage(7)", syscall(SYS_getrusage, 7, &ru));
    res("getrusage(bad pointer)", syscall(SYS_getrusage, RUSAGE_SELF, BAD));

    pid_t pid = getpid();
    say("getpgrp is getpgid(0): %d", getpgrp() == getpgid(0));
    say("getpgid(self) is getpgid(0): %d", getpgid(pid) == getpgid(0));
    say("getsid(self) is getsid(0): %d", getsid(pid) == getsid(0));
    res("getpgid(-5)", getpgid(-5));
    res("getsid(no such pid)", getsid(0x3fffff));

    char name[16] = {0};
    res("PR_SET_NAME", prctl(PR_SET_NAME, "a-rather-long-thread-name"));
    res("PR_GET_NAME", prctl(PR_GET_NAME, name));
    say("name: %s", name);
    res("PR_GET_NAME(bad pointer)", prctl(PR_GET_NAME, BAD));
    res("PR_SET_PDEATHSIG(9)", prctl(PR_SET_PDEATHSIG, 9));
    int sig = 0;
    res("PR_GET_PDEATHSIG", prctl(PR_GET_PDEATHSIG, &sig));
    say("pdeathsig: %d", sig);
    res("PR_SET_PDEATHSIG(99)", prctl(PR_SET_PDEATHSIG, 99));
    res("PR_GET_DUMPABLE", prctl(PR_GET_DUMPABLE));
    res("PR_SET_DUMPABLE(2)", prctl(PR_SET_DUMPABLE, 2));
    res("PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    res("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    res("prctl(unknown option)", prctl(0x7fff1234, 0));

    struct sysinfo si;
    res("sysinfo", sysinfo(&si));
    say("sysinfo: %d process(es) at least, free <= total: %d, unit %u", si.procs >= 1,
        si.freeram <= si.totalram, si.mem_unit);
    res("sysinfo(bad pointer)", syscall(SYS_sysinfo, BAD));

    struct sockaddr sa;
    socklen_t len = sizeof sa;
    res("getpeername(stdin file)", getpeername(0, &sa, &len));
    res("getsockname(stdin file)", getsockname(0, &sa, &len));
    res("shutdown(stdin file)", shutdown(0, SHUT_RDWR));
    res("getpeername(bad fd)", getpeername(77, &sa, &len));

    if (argc > 1) {
        if (chdir(argv[1]) != 0)
            return 2;
        int fd = open("owned", O_CREAT | O_WRONLY, 06755);
        res("fchmod 06755", fchmod(fd, 06755));
        struct stat st;
        stat("owned", &st);
        res("chown(same owner)", chown("owned", st.st_uid, st.st_gid));
        res("chown(-1, -1)", chown("owned", -1, -1));
        res("fchown(same owner)", fchown(fd, st.st_uid, -1));
        res("lchown(missing)", lchown("missing", 0, 0));
        res("fchownat(bad flags)", fchownat(AT_FDCWD, "owned", 0, 0, 0x4000));
        res("chown(bad pointer)", syscall(SYS_chown, BAD, 0, 0));
        res("fchown(bad fd)", fchown(99, 0, 0));
        symlink("owned", "link");
        res("lchown(link)", lchown("link", st.st_uid, st.st_gid));
        close(fd);
        unlink("link");
        unlink("owned");
    }
    return 0;
}
