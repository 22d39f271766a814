/* Hostile arguments to the process calls, compared with Linux line by line
 * (tests/processes_hostile.rs). Modes:
 *   wait     wait4/waitid with bad pointers, options, id types and pids; ECHILD; WNOHANG
 *   exec     execve/execveat with bad paths, arrays, strings, sizes, flags and files: every
 *            errno Linux gives before the point of no return (scripts in a mkdtemp dir)
 *   kill     kill of bad pids, a zombie, a child, a group; bad signal numbers in Linux's order
 *   groups   setpgid/getpgid/getsid/setsid on the caller, a child, a zombie, nonsense
 *   clone    clone/clone3 process requests with bad flags, TLS and stacks
 *   race     fork while other threads write memory, mmap and munmap: every child sees a
 *            whole snapshot (each page of the shared pattern consistent), and exits cleanly
 *   child    (used by exec) print argv and selected fd flags, exit 9
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "say.h"

static long sys(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}
#define S0(nr) sys(nr, 0, 0, 0, 0, 0, 0)
#define S1(nr, a) sys(nr, (long)(a), 0, 0, 0, 0, 0)
#define S2(nr, a, b) sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define S3(nr, a, b, c) sys(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define S4(nr, a, b, c, d) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define S5(nr, a, b, c, d, e) sys(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* The errno's name (musl has no strerrorname_np). */
static const char *err(long r) {
    static const struct { int e; const char *n; } names[] = {
        {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"},
        {E2BIG, "E2BIG"}, {ENOEXEC, "ENOEXEC"}, {EBADF, "EBADF"}, {ECHILD, "ECHILD"},
        {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"}, {EACCES, "EACCES"}, {EFAULT, "EFAULT"},
        {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"}, {ENAMETOOLONG, "ENAMETOOLONG"},
        {ENOSYS, "ENOSYS"}, {ELOOP, "ELOOP"}, {ETXTBSY, "ETXTBSY"},
    };
    static char buf[64];
    if (r >= 0) {
        snprintf(buf, sizeof buf, "%ld", r);
        return buf;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].e == -r) {
            snprintf(buf, sizeof buf, "-%s", names[i].n);
            return buf;
        }
    snprintf(buf, sizeof buf, "-errno%ld", -r);
    return buf;
}

#define KERNEL ((void *)0xffff800000000000UL)
#define BAD ((void *)8)

/* A child that exits with `code` at once; returns its pid. */
static pid_t quick_child(int code) {
    pid_t p = fork();
    if (p == 0)
        _exit(code);
    return p;
}

/* A child that sleeps until killed. */
static pid_t sleeper(void) {
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    return p;
}

/* Wait until `p` is a zombie without reaping it. */
static void until_zombie(pid_t p) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PID, (id_t)p, &si, WEXITED | WNOWAIT);
}

static void mode_wait(void) {
    int st = 0;
    say("wait4 no children: %s", err(S4(SYS_wait4, -1, &st, 0, 0)));
    say("wait4 INT_MIN: %s", err(S4(SYS_wait4, (long)INT32_MIN, &st, 0, 0)));
    say("wait4 bad options: %s", err(S4(SYS_wait4, -1, &st, 0x10, 0)));
    say("waitid bad idtype: %s", err(S5(SYS_waitid, 7, 0, NULL, WEXITED, 0)));
    say("waitid no options: %s", err(S5(SYS_waitid, P_ALL, 0, NULL, 0, 0)));
    say("waitid P_PID 0: %s", err(S5(SYS_waitid, P_PID, 0, NULL, WEXITED, 0)));
    say("waitid P_PGID -1: %s", err(S5(SYS_waitid, P_PGID, -1, NULL, WEXITED, 0)));
    say("waitid bad options bit: %s", err(S5(SYS_waitid, P_ALL, 0, NULL, WEXITED | 0x40, 0)));

    pid_t a = quick_child(5);
    until_zombie(a);
    /* The zombie is reaped even though the status cannot be written (Linux: EFAULT). */
    say("wait4 bad status: %s", err(S4(SYS_wait4, a, KERNEL, 0, 0)));
    say("wait4 again: %s", err(S4(SYS_wait4, a, &st, 0, 0)));

    pid_t b = quick_child(6);
    until_zombie(b);
    say("wait4 bad rusage: %s", err(S4(SYS_wait4, b, &st, 0, BAD)) == 0 ? "0" : "error");
    say("wait4 after bad rusage: %s", err(S4(SYS_wait4, b, &st, 0, 0)));

    pid_t c = quick_child(7);
    until_zombie(c);
    say("waitid bad infop: %s", err(S5(SYS_waitid, P_PID, c, KERNEL, WEXITED, 0)));
    say("waitid after bad infop: %s", err(S5(SYS_waitid, P_PID, c, NULL, WEXITED | WNOHANG, 0)));

    pid_t d = sleeper();
    siginfo_t si;
    memset(&si, 0x55, sizeof si);
    long r = S5(SYS_waitid, P_PID, d, &si, WEXITED | WNOHANG, 0);
    say("waitid WNOHANG running: %s signo=%d pid_zero=%d", err(r), si.si_signo, si.si_pid == 0);
    say("wait4 WNOHANG running: %s", err(S4(SYS_wait4, d, &st, WNOHANG, 0)));
    say("wait4 other pid: %s", err(S4(SYS_wait4, d + 1000, &st, 0, 0)));
    kill(d, SIGTERM);
    r = S4(SYS_wait4, d, &st, 0, 0);
    say("wait4 killed: same=%d signaled=%d sig=%d", r == d, WIFSIGNALED(st), WTERMSIG(st));
    pid_t e = quick_child(0);
    memset(&si, 0, sizeof si);
    r = S5(SYS_waitid, P_ALL, 0, &si, WEXITED, 0);
    say("waitid P_ALL: %s signo=%d code=%d status=%d pid_ok=%d", err(r), si.si_signo, si.si_code,
        si.si_status, si.si_pid == e);
}

static char dir[64];

static void write_file(const char *name, const char *text, int mode) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        say("cannot write %s: %s", path, strerror(errno));
        exit(2);
    }
    close(fd);
    chmod(path, mode);
}

static const char *in_dir(const char *name) {
    static char path[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof path[i], "%s/%s", dir, name);
    return path[i];
}

/* execve in a child so a success does not end the test; the child reports the errno. */
static void try_exec(const char *what, long path, long argv, long envp) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        exit(2);
    pid_t p = fork();
    if (p == 0) {
        long r = S3(SYS_execve, path, argv, envp);
        if (write(fds[1], &r, sizeof r) != sizeof r)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    long r = 0;
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int st = 0;
    waitpid(p, &st, 0);
    if (n == sizeof r)
        say("%s: %s", what, err(r));
    else
        say("%s: exec'd, exit %d", what, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static void mode_exec(void) {
    strcpy(dir, "/tmp/prochXXXXXX");
    if (!mkdtemp(dir)) {
        say("mkdtemp: %s", strerror(errno));
        exit(2);
    }
    char *argv[] = {"child", "one", NULL};
    char *envp[] = {"A=1", NULL};
    write_file("plain", "just text\n", 0755);
    write_file("noexec", "#!/proc/self/exe\n", 0644);
    write_file("empty-shebang", "#!\n", 0755);
    write_file("blank-shebang", "#!   \t \n", 0755);
    write_file("missing-interp", "#!/nonexistent/interp -x\n", 0755);
    write_file("loop", "", 0755);
    {
        char text[160];
        snprintf(text, sizeof text, "#!%s\n", in_dir("loop"));
        write_file("loop", text, 0755);
    }
    write_file("badelf", "\177ELF\2\1\1\0garbage garbage garbage garbage garbage\n", 0755);
    write_file("script", "#!/proc/self/exe child\n", 0755);
    mkdir(in_dir("adir"), 0755);

    try_exec("NULL path", 0, (long)argv, (long)envp);
    try_exec("kernel path", (long)KERNEL, (long)argv, (long)envp);
    try_exec("empty path", (long)"", (long)argv, (long)envp);
    try_exec("missing file", (long)in_dir("nope"), (long)argv, (long)envp);
    try_exec("directory", (long)in_dir("adir"), (long)argv, (long)envp);
    try_exec("not executable", (long)in_dir("noexec"), (long)argv, (long)envp);
    try_exec("plain text", (long)in_dir("plain"), (long)argv, (long)envp);
    try_exec("#! alone", (long)in_dir("empty-shebang"), (long)argv, (long)envp);
    try_exec("#! blanks", (long)in_dir("blank-shebang"), (long)argv, (long)envp);
    try_exec("missing interpreter", (long)in_dir("missing-interp"), (long)argv, (long)envp);
    try_exec("script loop", (long)in_dir("loop"), (long)argv, (long)envp);
    try_exec("bad ELF", (long)in_dir("badelf"), (long)argv, (long)envp);
    try_exec("trailing slash", (long)"/proc/self/exe/", (long)argv, (long)envp);
    try_exec("bad argv", (long)"/proc/self/exe", (long)KERNEL, (long)envp);
    char *bad_elem[] = {"child", (char *)KERNEL, NULL};
    try_exec("bad argv element", (long)"/proc/self/exe", (long)bad_elem, (long)envp);
    try_exec("bad envp", (long)"/proc/self/exe", (long)argv, (long)BAD);
    /* One argument of 200 KiB: past MAX_ARG_STRLEN (128 KiB). */
    char *big = malloc(200 << 10);
    memset(big, 'x', (200 << 10) - 1);
    big[(200 << 10) - 1] = 0;
    char *big_argv[] = {"child", big, NULL};
    try_exec("argument too long", (long)"/proc/self/exe", (long)big_argv, (long)envp);
    /* 40 arguments of 100 KiB: 4 MiB in all, past the stack's quarter. */
    char *many[42];
    many[0] = "child";
    big[(100 << 10)] = 0;
    for (int i = 1; i <= 40; i++)
        many[i] = big;
    many[41] = NULL;
    try_exec("arguments too big", (long)"/proc/self/exe", (long)many, (long)envp);
    free(big);
    try_exec("script", (long)in_dir("script"), (long)argv, (long)envp);
    try_exec("self", (long)"/proc/self/exe", (long)argv, (long)envp);
    try_exec("NULL argv", (long)"/proc/self/exe", 0, 0);

    say("execveat bad flags: %s",
        err(sys(SYS_execveat, AT_FDCWD, (long)"/proc/self/exe", (long)argv, (long)envp, 0x2, 0)));
    say("execveat bad dirfd: %s",
        err(sys(SYS_execveat, 999, (long)"relative", (long)argv, (long)envp, 0, 0)));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            exit(2);
        pid_t p = fork();
        if (p == 0) {
            long r = sys(SYS_execveat, dfd, (long)"script", (long)argv, (long)envp, 0, 0);
            if (write(fds[1], &r, sizeof r) != sizeof r)
                _exit(3);
            _exit(0);
        }
        close(fds[1]);
        long r = 0;
        ssize_t n = read(fds[0], &r, sizeof r);
        int st = 0;
        waitpid(p, &st, 0);
        say("execveat relative to a dirfd: %s", n == sizeof r ? err(r) : "exec'd");
        close(fds[0]);
    }
    close(dfd);
    const char *names[] = {"plain", "noexec", "empty-shebang", "blank-shebang", "missing-interp",
                           "loop", "badelf", "script"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(in_dir(names[i]));
    rmdir(in_dir("adir"));
    rmdir(dir);
}

static void mode_kill(void) {
    say("kill INT_MIN: %s", err(S2(SYS_kill, (long)INT32_MIN, 0)));
    say("kill nonexistent: %s", err(S2(SYS_kill, 3999, SIGTERM)));
    say("kill self 65: %s", err(S2(SYS_kill, getpid(), 65)));
    say("kill self -1: %s", err(S2(SYS_kill, getpid(), -1)));
    pid_t z = quick_child(0);
    until_zombie(z);
    say("kill zombie 0: %s", err(S2(SYS_kill, z, 0)));
    say("kill zombie TERM: %s", err(S2(SYS_kill, z, SIGTERM)));
    say("kill zombie 65: %s", err(S2(SYS_kill, z, 65)));
    waitpid(z, NULL, 0);
    say("kill reaped: %s", err(S2(SYS_kill, z, 0)));
    pid_t s = sleeper();
    say("kill child 65: %s", err(S2(SYS_kill, s, 65)));
    say("kill child 0: %s", err(S2(SYS_kill, s, 0)));
    say("kill child USR1: %s", err(S2(SYS_kill, s, SIGUSR1)));
    int st = 0;
    waitpid(s, &st, 0);
    say("child took USR1: %d", WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1);
    say("kill own group 0: %s", err(S2(SYS_kill, 0, 0)));
    say("kill absent group: %s", err(S2(SYS_kill, -3999, SIGTERM)));
    say("tgkill child: %s", err(S3(SYS_tgkill, 3999, 3999, 0)));
}

static void mode_groups(void) {
    pid_t me = getpid();
    say("getpgid(0)==getpgrp: %d", S1(SYS_getpgid, 0) == getpgrp());
    say("getpgid nonexistent: %s", err(S1(SYS_getpgid, 3999)));
    say("getpgid -1: %s", err(S1(SYS_getpgid, -1)));
    say("getsid nonexistent: %s", err(S1(SYS_getsid, 3999)));
    say("setpgid negative pgid: %s", err(S2(SYS_setpgid, 0, -1)));
    say("setpgid negative pid: %s", err(S2(SYS_setpgid, -5, 0)));
    say("setpgid nonexistent: %s", err(S2(SYS_setpgid, 3999, 0)));
    pid_t s = sleeper();
    say("child in parent's group: %d", S1(SYS_getpgid, s) == getpgrp());
    say("child in parent's session: %d", S1(SYS_getsid, s) == getsid(0));
    say("setpgid child own group: %s", err(S2(SYS_setpgid, s, s)));
    say("child now leads: %d", S1(SYS_getpgid, s) == s);
    say("setpgid child absent group: %s", err(S2(SYS_setpgid, s, 3999)));
    say("setpgid child back: %s", err(S2(SYS_setpgid, s, getpgrp())));
    kill(s, SIGKILL);
    waitpid(s, NULL, 0);
    /* A child that makes its own session: it leads group and session; then setpgid fails. */
    int fds[2];
    if (pipe(fds) != 0)
        exit(2);
    pid_t c = fork();
    if (c == 0) {
        long a = S0(SYS_setsid);
        long b = S0(SYS_setsid);
        long g = S2(SYS_setpgid, 0, 0);
        long out[3] = {a == getpid(), b, g};
        if (write(fds[1], out, sizeof out) != sizeof out)
            _exit(3);
        _exit(0);
    }
    long out[3] = {0, 0, 0};
    if (read(fds[0], out, sizeof out) != sizeof out)
        exit(2);
    say("setsid in child: leads=%ld again=%s", out[0], err(out[1]));
    say("setpgid as session leader: %s", err(out[2]));
    waitpid(c, NULL, 0);
    (void)me;
}

static void mode_clone(void) {
    /* CLONE_SETTLS with a kernel address: EPERM before anything is created. */
    say("clone bad tls: %s", err(sys(SYS_clone, SIGCHLD | CLONE_SETTLS, 0, 0, 0, (long)KERNEL, 0)));
    say("clone SIGHAND without VM: %s", err(sys(SYS_clone, SIGCHLD | CLONE_SIGHAND, 0, 0, 0, 0, 0)));
    say("clone THREAD without SIGHAND: %s", err(sys(SYS_clone, CLONE_THREAD, 0, 0, 0, 0, 0)));
    say("clone3 tiny: %s", err(S2(SYS_clone3, 0, 8)));
    uint64_t args[11];
    memset(args, 0, sizeof args);
    args[4] = 65; /* exit_signal past _NSIG */
    say("clone3 bad exit signal: %s", err(S2(SYS_clone3, args, 88)));
    memset(args, 0, sizeof args);
    args[4] = SIGCHLD;
    args[5] = 0;
    args[6] = 4096; /* stack size without a stack */
    say("clone3 size without stack: %s", err(S2(SYS_clone3, args, 88)));
    say("clone3 bad pointer: %s", err(S2(SYS_clone3, KERNEL, 88)));
    /* A plain clone3 fork: the child gets 0, the parent its pid. */
    memset(args, 0, sizeof args);
    args[4] = SIGCHLD;
    long r = S2(SYS_clone3, args, 88);
    if (r == 0)
        _exit(4);
    int st = 0;
    say("clone3 fork: %s", r > 0 && waitpid((pid_t)r, &st, 0) == r && WEXITSTATUS(st) == 4 ? "ok" : err(r));
    /* vfork: the parent runs again only once the child has exited. */
    pid_t v = vfork();
    if (v == 0)
        _exit(6);
    waitpid(v, &st, 0);
    say("vfork child exit: %d", WEXITSTATUS(st));
}

/* ---- race ---------------------------------------------------------------------------------- */

#define PAGES 64
static unsigned char *area;
static volatile int stop_threads;

static void *writer(void *arg) {
    long id = (long)arg;
    unsigned v = 0;
    while (!stop_threads) {
        v++;
        for (int p = (int)id; p < PAGES; p += 4)
            memset(area + (size_t)p * 4096, (int)(v & 0xff), 4096);
        void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            memset(m, 1, 4096);
            munmap(m, 1 << 20);
        }
    }
    return NULL;
}

static void mode_race(void) {
    area = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        exit(2);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, (void *)i);
    int bad = 0, ok = 0;
    for (int i = 0; i < 40; i++) {
        pid_t p = fork();
        if (p == 0) {
            /* A page may be torn only by the memset in flight at the fork, which copies
               whole pages front to back: its bytes are one value, then the next. */
            int torn = 0;
            for (int pg = 0; pg < PAGES; pg++) {
                unsigned char *q = area + (size_t)pg * 4096;
                int changes = 0;
                for (int b = 1; b < 4096; b++)
                    changes += q[b] != q[b - 1];
                torn += changes > 1;
            }
            _exit(torn > 4 ? 1 : 0);
        }
        int st = 0;
        if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        else
            ok++;
    }
    stop_threads = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    say("race: %d children whole, %d not", ok, bad);
}

static void mode_child(int argc, char **argv) {
    printf("child argc=%d", argc);
    for (int i = 1; i < argc; i++) {
        /* The mkdtemp directory's name differs from run to run. */
        const char *base = strrchr(argv[i], '/');
        if (strncmp(argv[i], "/tmp/proch", 10) == 0 && base)
            printf(" [<dir>%.20s]", base);
        else
            printf(" [%.20s]", argv[i]);
    }
    printf("\n");
    fflush(stdout);
    _exit(9);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (argc > 0 && strcmp(argv[0], "child") == 0)
        mode_child(argc, argv);
    if (strcmp(mode, "child") == 0)
        mode_child(argc, argv);
    if (strcmp(mode, "wait") == 0)
        mode_wait();
    else if (strcmp(mode, "exec") == 0)
        mode_exec();
    else if (strcmp(mode, "kill") == 0)
        mode_kill();
    else if (strcmp(mode, "groups") == 0)
        mode_groups();
    else if (strcmp(mode, "clone") == 0)
        mode_clone();
    else if (strcmp(mode, "race") == 0)
        mode_race();
    else {
        say("unknown mode %s", mode);
        return 2;
    }
    return 0;
}
