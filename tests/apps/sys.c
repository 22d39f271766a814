// sys: exercises the system calls umon implements and prints one deterministic line per check.
//
//   sys native       the checks whose result is the same on Linux and under umon
//   sys umon         the same lines, plus checks of umon-only behaviour, each on a line of its
//                    own marked below "umon only": getcwd is "/", openat of any path fails with
//                    ENOENT, kexec_load (an unsupported syscall) fails with ENOSYS
//   sys unsupported  calls kexec_load (246) twice and mount (165) twice, raw, and prints each
//                    result; only meant for umon (natively root could load a kernel)
//
// Expects stdin to be a pipe carrying "hello from stdin\n" and stderr to be a pipe; stdout may
// be a pipe or a terminal. Every printed value is one the tests can predict for that setup
// (no pids, no times, no sizes that vary), so they compare the output exactly. A failed check
// prints "FAIL <what>: <detail>" instead of its line; the exit status is 0 either way unless
// the program cannot go on.
//
// Each line is its own write(2) (no stdio buffering) so output order is the order of the checks,
// even around the lines written through dup'ed descriptors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

static int failures;


#define CHECK(cond, ok_line, ...)                                                              \
    do {                                                                                       \
        if (cond) {                                                                            \
            say("%s", ok_line);                                                                \
        } else {                                                                               \
            failures++;                                                                        \
            say("FAIL " ok_line ": " __VA_ARGS__);                                             \
        }                                                                                      \
    } while (0)

static const char *errname(int e) {
    switch (e) {
    case ENOTTY: return "ENOTTY";
    case ESPIPE: return "ESPIPE";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case EAGAIN: return "EAGAIN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

// Prints "what=R" for a result R >= 0, or "what=-1 ENAME" for a failure.
static void result(const char *what, long r) {
    if (r < 0)
        say("%s=%ld %s", what, r, errname(errno));
    else
        say("%s=%ld", what, r);
}

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static struct timespec mono(void) {
    struct timespec t = {0, 0};
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    return t;
}

// --- stdio: write, writev, ioctl (TCGETS through isatty, TIOCGWINSZ), poll, readv, ... ------

static void check_stdio(void) {
    const char w[] = "write ok\n";
    if (write(1, w, sizeof w - 1) != (ssize_t)sizeof w - 1)
        _exit(3);

    struct iovec iov[2] = {{(void *)"writev ", 7}, {(void *)"ok\n", 3}};
    if (writev(1, iov, 2) != 10)
        _exit(3);

    for (int fd = 0; fd <= 2; fd++) {
        errno = 0;
        int t = isatty(fd);
        if (t)
            say("isatty(%d)=1", fd);
        else
            say("isatty(%d)=0 %s", fd, errname(errno));
    }

    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    int r = ioctl(1, TIOCGWINSZ, &ws);
    if (r == 0)
        say("TIOCGWINSZ(1) rows=%d cols=%d", ws.ws_row, ws.ws_col);
    else
        say("TIOCGWINSZ(1)=%d %s", r, errname(errno));

    // Wait (up to 10 s) until the test has written stdin.
    struct pollfd in = {0, POLLIN, 0};
    r = poll(&in, 1, 10000);
    CHECK(r == 1 && (in.revents & POLLIN), "poll(0) POLLIN", "r=%d revents=%#x", r, in.revents);
    struct pollfd out = {1, POLLOUT, 0};
    r = poll(&out, 1, 10000);
    CHECK(r == 1 && (out.revents & POLLOUT), "poll(1) POLLOUT", "r=%d revents=%#x", r,
          out.revents);
    struct timespec zero = {0, 0};
    out.revents = 0;
    r = ppoll(&out, 1, &zero, NULL);
    CHECK(r == 1 && (out.revents & POLLOUT), "ppoll(1) POLLOUT", "r=%d revents=%#x", r,
          out.revents);
    struct timespec ms = {0, 1000000};
    r = ppoll(NULL, 0, &ms, NULL);
    CHECK(r == 0, "ppoll no fds, 1 ms timeout: 0", "r=%d %s", r, errname(errno));

    // All of stdin, through readv into two buffers, to end of file.
    char text[4096];
    size_t got = 0;
    for (;;) {
        char a[5], b[2048];
        struct iovec v[2] = {{a, sizeof a}, {b, sizeof b}};
        ssize_t n = readv(0, v, 2);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n && got < sizeof text - 1; k++)
            text[got++] = k < (ssize_t)sizeof a ? a[k] : b[k - (ssize_t)sizeof a];
    }
    text[got] = 0;
    if (got > 0 && text[got - 1] == '\n')
        text[got - 1] = 0;
    say("readv(0) %zu bytes: %s", got, text);
    char one;
    ssize_t n = read(0, &one, 1);
    CHECK(n == 0, "read(0) at end of input: 0", "n=%zd %s", n, errname(errno));

    // Pipes and terminals are not seekable.
    char c;
    n = pread(0, &c, 1, 0);
    result("pread64(0)", n);
    result("pwrite64(1)", pwrite(1, "x", 1, 0));
    result("lseek(1)", lseek(1, 0, SEEK_CUR));

    // The three stat calls agree about stdout.
    struct stat st1, st2;
    struct statx stx;
    memset(&st1, 0, sizeof st1);
    memset(&st2, 0, sizeof st2);
    memset(&stx, 0, sizeof stx);
    long r1 = syscall(SYS_fstat, 1, &st1);
    long r2 = syscall(SYS_newfstatat, 1, "", &st2, AT_EMPTY_PATH);
    long r3 = syscall(SYS_statx, 1, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx);
    CHECK(r1 == 0 && r2 == 0 && r3 == 0, "fstat newfstatat statx (1) ok", "%ld %ld %ld %s", r1, r2,
          r3, errname(errno));
    CHECK(st1.st_mode == st2.st_mode && (st1.st_mode & S_IFMT) == (stx.stx_mode & S_IFMT) &&
              (st1.st_mode & S_IFMT) != 0,
          "st_mode agrees", "%#o %#o %#o", st1.st_mode, st2.st_mode, stx.stx_mode);

    r = fcntl(1, F_GETFD);
    CHECK(r >= 0, "fcntl(1, F_GETFD) ok", "%d %s", r, errname(errno));
    r = fcntl(1, F_GETFL);
    CHECK(r >= 0, "fcntl(1, F_GETFL) ok", "%d %s", r, errname(errno));
}

// --- dup, dup2, dup3, close -------------------------------------------------------------------

static void check_dup(void) {
    int fd = dup(1);
    if (fd >= 3) {
        (void)!write(fd, "dup ok\n", 7);
    } else {
        failures++;
        say("FAIL dup(1)=%d %s", fd, errname(errno));
    }
    CHECK(close(fd) == 0, "close ok", "%s", errname(errno));
    int r = close(fd);
    CHECK(r == -1 && errno == EBADF, "close again EBADF", "%d %s", r, errname(errno));

    r = dup2(1, 100);
    if (r == 100)
        (void)!write(100, "dup2 ok\n", 8);
    else
        say("FAIL dup2(1, 100)=%d %s", r, errname(errno));
    r = dup3(1, 101, O_CLOEXEC);
    if (r == 101)
        (void)!write(101, "dup3 ok\n", 8);
    else
        say("FAIL dup3(1, 101)=%d %s", r, errname(errno));
    r = fcntl(101, F_GETFD);
    CHECK(r == FD_CLOEXEC, "dup3 O_CLOEXEC gives FD_CLOEXEC", "%d", r);
    CHECK(close(100) == 0 && close(101) == 0, "close dups ok", "%s", errname(errno));
}

// --- memory: brk, mmap, mprotect, mremap, madvise, munmap -------------------------------------

static void check_memory(void) {
    const long mib = 1024 * 1024;
    long cur = syscall(SYS_brk, 0);
    long grown = syscall(SYS_brk, cur + mib);
    int ok = cur > 0 && grown == cur + mib;
    if (ok) {
        for (long a = cur; a < grown; a += 4096)
            *(volatile char *)a = (char)a;
        for (long a = cur; a < grown; a += 4096)
            ok &= *(volatile char *)a == (char)a;
    }
    long back = syscall(SYS_brk, cur);
    CHECK(ok && back == cur, "brk grow, touch, shrink ok", "cur=%#lx grown=%#lx back=%#lx", cur,
          grown, back);

    size_t len = 4 * (size_t)mib;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap 4 MiB ok", "%s", errname(errno));
    if (p == MAP_FAILED)
        return;
    ok = 1;
    for (size_t k = 0; k < len; k += 4096)
        ok &= p[k] == 0; // fresh anonymous memory is zero
    for (size_t k = 0; k < len; k += 4096)
        p[k] = (unsigned char)(k >> 12);
    CHECK(ok, "mmap memory is zeroed", "");
    CHECK(mprotect(p, len, PROT_READ) == 0 && p[4096] == 1 &&
              mprotect(p, len, PROT_READ | PROT_WRITE) == 0,
          "mprotect ok", "%s", errname(errno));
    p[0] = 0xaa;
    unsigned char *q = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
    ok = q != MAP_FAILED;
    if (ok) {
        ok &= q[0] == 0xaa;
        for (size_t k = 4096; k < len; k += 4096)
            ok &= q[k] == (unsigned char)(k >> 12);
        for (size_t k = len; k < 2 * len; k += 4096)
            q[k] = 1;
        p = q;
        len *= 2;
    }
    CHECK(ok, "mremap grow keeps contents", "%s", errname(errno));
    CHECK(madvise(p, len, MADV_DONTNEED) == 0, "madvise ok", "%s", errname(errno));
    CHECK(munmap(p, len) == 0, "munmap ok", "%s", errname(errno));
}

// --- process and thread state -----------------------------------------------------------------

static struct {
    void *next;
    long futex_offset;
    void *pending;
} robust_head = {&robust_head, 0, NULL};

static int clear_tid;
static char altstack[64 * 1024];

static void on_usr1(int sig) { (void)sig; }

static void check_process(const char *argv0) {
    pid_t pid = getpid();
    long tid = syscall(SYS_gettid);
    CHECK(pid > 0, "getpid ok", "%d", pid);
    CHECK(tid == pid, "gettid == getpid", "%ld %d", tid, pid);
    CHECK(getppid() >= 0, "getppid ok", "");
    CHECK((int)getuid() >= 0 && (int)geteuid() >= 0 && (int)getgid() >= 0 && (int)getegid() >= 0,
          "getuid geteuid getgid getegid ok", "%d %d %d %d", (int)getuid(), (int)geteuid(),
          (int)getgid(), (int)getegid());
    long r = syscall(SYS_set_tid_address, &clear_tid);
    CHECK(r == tid, "set_tid_address returns the tid", "%ld", r);
    r = syscall(SYS_set_robust_list, &robust_head, sizeof robust_head);
    CHECK(r == 0, "set_robust_list ok", "%ld %s", r, errname(errno));

    unsigned long fs = 0, self;
    r = syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
    __asm__("mov %%fs:0, %0" : "=r"(self)); // glibc's thread pointer points to itself
    CHECK(r == 0 && fs == self && fs != 0, "arch_prctl(ARCH_GET_FS) ok", "%ld %#lx %#lx", r, fs,
          self);

    struct utsname u;
    CHECK(uname(&u) == 0, "uname ok", "%s", errname(errno));
    say("uname sysname=%s machine=%s", u.sysname, u.machine);

    struct rlimit rl;
    r = syscall(SYS_getrlimit, RLIMIT_STACK, &rl);
    CHECK(r == 0, "getrlimit(RLIMIT_STACK) ok", "%ld %s", r, errname(errno));
    r = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl);
    CHECK(r == 0 && rl.rlim_cur <= rl.rlim_max, "prlimit64(RLIMIT_NOFILE) ok", "%ld %s", r,
          errname(errno));

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGUSR1, NULL, &old) == 0,
          "rt_sigaction ok", "%s", errname(errno));
    sigset_t set, was;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, &was) == 0 && sigprocmask(SIG_SETMASK, &was, NULL) == 0,
          "rt_sigprocmask ok", "%s", errname(errno));
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0}, oss;
    CHECK(sigaltstack(&ss, &oss) == 0, "sigaltstack ok", "%s", errname(errno));

    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    r = syscall(SYS_sched_getaffinity, 0, sizeof cpus, &cpus);
    CHECK(r > 0 && CPU_COUNT(&cpus) >= 1, "sched_getaffinity ok", "%ld %s", r, errname(errno));
    CHECK(sched_yield() == 0, "sched_yield ok", "%s", errname(errno));

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        const char *a = strrchr(exe, '/'), *b = strrchr(argv0, '/');
        a = a ? a + 1 : exe;
        b = b ? b + 1 : argv0;
        CHECK(strcmp(a, b) == 0, "readlink /proc/self/exe names this program", "%s vs %s", exe,
              argv0);
    } else {
        failures++;
        say("FAIL readlink /proc/self/exe: %zd %s", n, errname(errno));
    }
}

// --- time -------------------------------------------------------------------------------------

static void check_time(void) {
    int mono_ok = 1;
    struct timespec prev = mono();
    for (int i = 0; i < 20; i++) {
        struct timespec t = mono();
        mono_ok &= ns_of(t) >= ns_of(prev) && t.tv_nsec >= 0 && t.tv_nsec < 1000000000;
        prev = t;
    }
    CHECK(mono_ok && ns_of(prev) > 0, "clock_gettime(CLOCK_MONOTONIC) never goes back", "");

    struct timespec res = {0, 0};
    long r = syscall(SYS_clock_getres, CLOCK_MONOTONIC, &res);
    CHECK(r == 0 && ns_of(res) > 0 && ns_of(res) <= 10000000, "clock_getres ok",
          "%ld %lld", r, (long long)ns_of(res));

    struct timespec t0 = mono(), two_ms = {0, 2000000};
    r = syscall(SYS_nanosleep, &two_ms, NULL);
    struct timespec t1 = mono();
    CHECK(r == 0 && ns_of(t1) - ns_of(t0) >= 2000000, "nanosleep 2 ms ok", "%ld slept %lld ns",
          r, (long long)(ns_of(t1) - ns_of(t0)));
    r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &two_ms, NULL);
    struct timespec t2 = mono();
    CHECK(r == 0 && ns_of(t2) - ns_of(t1) >= 2000000, "clock_nanosleep 2 ms ok",
          "%ld slept %lld ns", r, (long long)(ns_of(t2) - ns_of(t1)));
    struct timespec deadline = t2;
    deadline.tv_nsec += 2000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
    struct timespec t3 = mono();
    CHECK(r == 0 && ns_of(t3) >= ns_of(deadline), "clock_nanosleep TIMER_ABSTIME ok", "%ld", r);

    struct timespec real = {0, 0};
    r = syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
    CHECK(r == 0 && real.tv_sec > 1600000000, "clock_gettime(CLOCK_REALTIME) is after 2020",
          "%ld %lld", r, (long long)real.tv_sec);
    struct timeval tv = {0, 0};
    r = syscall(SYS_gettimeofday, &tv, NULL);
    CHECK(r == 0 && llabs((long long)tv.tv_sec - (long long)real.tv_sec) <= 5,
          "gettimeofday agrees with CLOCK_REALTIME", "%ld %lld", r, (long long)tv.tv_sec);
    long now = syscall(SYS_time, NULL);
    CHECK(llabs((long long)now - (long long)real.tv_sec) <= 5, "time agrees with CLOCK_REALTIME",
          "%ld", now);
}

// --- getrandom, futex ---------------------------------------------------------------------------

static void check_misc(void) {
    unsigned char a[16], b[16];
    long ra = syscall(SYS_getrandom, a, sizeof a, 0);
    long rb = syscall(SYS_getrandom, b, sizeof b, 0);
    CHECK(ra == 16 && rb == 16, "getrandom returns 16 bytes", "%ld %ld", ra, rb);
    CHECK(memcmp(a, b, sizeof a) != 0, "getrandom: two calls differ", "");

    static int word = 7;
    long r = syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    CHECK(r == 0, "futex wake, nobody waiting: 0", "%ld %s", r, errname(errno));
    r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0);
    CHECK(r == -1 && errno == EAGAIN, "futex wait, value differs: EAGAIN", "%ld %s", r,
          errname(errno));
    struct timespec ms = {0, 1000000};
    r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 7, &ms, NULL, 0);
    CHECK(r == -1 && errno == ETIMEDOUT, "futex wait 1 ms: ETIMEDOUT", "%ld %s", r,
          errname(errno));

    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd ok", "%s", errname(errno));
}

// --- umon only ----------------------------------------------------------------------------------

static void check_umon_only(void) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != NULL)
        say("getcwd=%s", cwd);
    result("openat /etc/passwd", openat(AT_FDCWD, "/etc/passwd", O_RDONLY));
    result("openat relative.txt", openat(AT_FDCWD, "relative.txt", O_RDONLY));
    result("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
}

static void unsupported(void) {
    for (int i = 0; i < 2; i++)
        result("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    for (int i = 0; i < 2; i++)
        result("mount", syscall(SYS_mount, NULL, NULL, NULL, 0, NULL));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "native";
    if (strcmp(mode, "unsupported") == 0) {
        unsupported();
        return 0;
    }
    if (strcmp(mode, "native") != 0 && strcmp(mode, "umon") != 0) {
        say("usage: sys native|umon|unsupported");
        return 2;
    }
    check_stdio();
    check_dup();
    check_memory();
    check_process(argv[0]);
    check_time();
    check_misc();
    if (strcmp(mode, "umon") == 0)
        check_umon_only();
    say("%d failures", failures);
    return 0;
}
