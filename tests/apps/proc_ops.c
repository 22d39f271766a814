/* Processes compared with Linux line by line (tests/processes.rs). argv[0] must be a path
 * this program can execve itself through (the test mounts its directory at the same path in
 * the guest). No pid is ever printed: only relations between pids. Modes:
 *   fork_wait    fork + waitpid: exit status, copy-on-write memory, getppid, SIGKILL, abort,
 *                WNOHANG, ECHILD, 50 forks one after another and 20 at once
 *   vfork_exec   vfork + execve of this program ("child_hello", exits 3); a failed execve in
 *                a vfork child (_exit 127); the vfork child's store seen by the parent
 *   posix_spawn  posix_spawn of this program with file actions (stdout into a pipe), an
 *                environment and a signal mask; posix_spawn of a missing path (ENOENT)
 *   popen        popen/pclose both ways, system() statuses (needs /bin/sh and /bin/cat)
 *   exec_keep    execve keeps the pid, fds without FD_CLOEXEC, ignored signals, the mask and
 *                the cwd; closes FD_CLOEXEC fds and resets handled signals (checked by the
 *                exec'd "exec_check" mode)
 *   sigchld      SIGCHLD with SA_SIGINFO: si_code/si_status/si_pid; waitid with WNOWAIT,
 *                WNOHANG, P_ALL; CLD_KILLED; SIGCHLD ignored reaps children (ECHILD)
 *   script DIR   writes #! scripts into DIR and execve's them (interpreter /bin/sh), a missing
 *                interpreter (ENOENT), a file without #! (ENOEXEC), a file without x (EACCES)
 *   pgrp         process groups and sessions: setpgid/getpgid/getpgrp, waitid P_PGID, kill of a
 *                group, setsid/getsid, kill(pid, 0), PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG
 *   nproc        RLIMIT_NPROC 20, then fork until EAGAIN (at most 1000); every child reaped
 * Benchmark modes (benches/process.rs), each printing "ns_per_iter N" on stdout:
 *   bench_fork N          N times fork + _exit + waitpid
 *   bench_spawn N PATH    N times posix_spawn PATH + waitpid (PATH: a static hello)
 *   bench_pipe MIB        MIB MiB from a child to its parent through a pipe in 64 KiB writes
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

static const char *self;

static const char *yes(int c) { return c ? "yes" : "no"; }

static void die(const char *what) {
    say("FAIL %s: %s", what, strerror(errno));
    exit(1);
}

/* Waits for `pid` and describes how it ended. */
static void report(const char *what, pid_t pid) {
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    if (r != pid) {
        say("FAIL %s: waitpid returned %s (%s)", what, r == -1 ? "-1" : "another pid",
            strerror(errno));
        return;
    }
    if (WIFEXITED(st))
        say("%s: exited %d", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        say("%s: killed by signal %d", what, WTERMSIG(st));
    else
        say("%s: status %#x", what, st);
}

static ssize_t read_all(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    return (ssize_t)n;
}

/* ---- fork_wait ---- */
#define COW_BYTES (8u << 20)

static void mode_fork_wait(void) {
    pid_t me = getpid();
    int shared = 1;
    unsigned char *big = malloc(COW_BYTES);
    if (!big)
        die("malloc");
    for (unsigned i = 0; i < COW_BYTES; i++)
        big[i] = (unsigned char)(i * 13);
    int p[2];
    if (pipe(p))
        die("pipe");
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        close(p[0]);
        int saw = shared == 1 && big[12345] == (unsigned char)(12345 * 13);
        shared = 2;
        for (unsigned i = 0; i < COW_BYTES; i += 4096)
            big[i] = 0xee;
        int own = big[4096] == 0xee;
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "child: getppid matches parent: %s, sees parent's data: %s, "
                         "sees own writes: %s",
                         yes(getppid() == me), yes(saw), yes(own));
        /* The child's pid goes through the pipe as binary after the text. */
        pid_t mine = getpid();
        if (write(p[1], &mine, sizeof mine) != sizeof mine || write(p[1], msg, (size_t)n) != n)
            _exit(100);
        exit(7);
    }
    close(p[1]);
    char buf[512];
    ssize_t n = read_all(p[0], buf, sizeof buf - 1);
    close(p[0]);
    if (n < (ssize_t)sizeof(pid_t)) {
        say("FAIL short read from the child: %zd", n);
    } else {
        pid_t theirs;
        memcpy(&theirs, buf, sizeof theirs);
        buf[n] = 0;
        say("%s", buf + sizeof(pid_t));
        say("child's getpid is fork's return: %s", yes(theirs == c));
    }
    report("child 1", c);
    int unchanged = shared == 1;
    for (unsigned i = 0; i < COW_BYTES; i += 4096)
        unchanged &= big[i] == (unsigned char)(i * 13);
    say("parent: child's writes invisible (copy-on-write): %s", yes(unchanged));
    say("parent: fork returned a positive pid other than mine: %s", yes(c > 0 && c != me));

    /* A child that never ends on its own: WNOHANG sees it running, SIGKILL ends it. */
    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        for (;;)
            pause();
    }
    int st = 0;
    say("waitpid WNOHANG on a running child: %d", (int)waitpid(c, &st, WNOHANG));
    say("kill SIGKILL: %d", kill(c, SIGKILL));
    report("child 2", c);

    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0)
        abort();
    report("child 3 (abort)", c);

    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        raise(SIGTERM);
        _exit(99);
    }
    report("child 4 (raise SIGTERM)", c);

    errno = 0;
    pid_t r = waitpid(-1, &st, 0);
    say("wait with no children: %d %s", (int)r, strerror(errno));
    errno = 0;
    r = waitpid(me + 1000, &st, WNOHANG);
    say("waitpid of a pid that is not a child: %d %s", (int)r, strerror(errno));

    int sum = 0, ok = 1;
    for (int i = 0; i < 50; i++) {
        c = fork();
        if (c < 0)
            die("fork in the loop");
        if (c == 0)
            _exit(i);
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st))
            ok = 0;
        else
            sum += WEXITSTATUS(st);
    }
    say("50 forks one after another: all reaped %s, statuses sum %d", yes(ok), sum);

    pid_t kids[20];
    for (int i = 0; i < 20; i++) {
        kids[i] = fork();
        if (kids[i] < 0)
            die("fork of 20");
        if (kids[i] == 0)
            _exit(100 + i);
    }
    int seen = 0, distinct = 1;
    sum = 0;
    for (;;) {
        r = wait(&st);
        if (r < 0)
            break;
        int idx = -1;
        for (int i = 0; i < 20; i++)
            if (kids[i] == r)
                idx = i;
        if (idx < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 100 + idx)
            distinct = 0;
        else
            kids[idx] = 0;
        seen++;
        sum += WEXITSTATUS(st);
    }
    say("20 forks at once: %d reaped by wait(), each its own status: %s, sum %d, then %s", seen,
        yes(distinct), sum, strerror(errno));
    free(big);
}

/* ---- vfork_exec ---- */
static void mode_child_hello(int argc, char **argv) {
    const char *g = getenv("GREETING");
    say("child_hello: argc %d argv[1] %s argv[2] %s GREETING %s", argc, argv[1],
        argc > 2 ? argv[2] : "(none)", g ? g : "(unset)");
    exit(3);
}

static void mode_vfork_exec(void) {
    char *args[] = {(char *)self, "child_hello", "two words", 0};
    char *env[] = {"GREETING=hi there", 0};
    pid_t c = vfork();
    if (c < 0)
        die("vfork");
    if (c == 0) {
        execve(self, args, env);
        _exit(126);
    }
    report("vfork+execve child", c);

    volatile int err = 0;
    c = vfork();
    if (c < 0)
        die("vfork");
    if (c == 0) {
        char *none[] = {"/nonexistent/prog", 0};
        execve("/nonexistent/prog", none, env);
        err = errno;
        _exit(127);
    }
    report("vfork+execve of a missing path", c);
    say("the vfork child's errno seen by the parent: %s", strerror(err));
}

/* ---- posix_spawn ---- */
static void mode_child_args(int argc, char **argv) {
    char line[512];
    int n = snprintf(line, sizeof line, "child_args: argc %d", argc);
    for (int i = 1; i < argc; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " [%s]", argv[i]);
    const char *s = getenv("SPAWNED");
    sigset_t m;
    sigprocmask(SIG_BLOCK, 0, &m);
    say("%s SPAWNED=%s SIGUSR2 blocked: %s SIGUSR1 blocked: %s", line, s ? s : "(unset)",
        yes(sigismember(&m, SIGUSR2)), yes(sigismember(&m, SIGUSR1)));
    exit(0);
}

static void mode_posix_spawn(void) {
    int p[2];
    if (pipe(p))
        die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    posix_spawnattr_setsigmask(&at, &m);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    char *args[] = {(char *)self, "child_args", "x", "y z", 0};
    char *env[] = {"SPAWNED=1", 0};
    pid_t c = 0;
    int r = posix_spawn(&c, self, &fa, &at, args, env);
    say("posix_spawn: %s", strerror(r));
    close(p[1]);
    char buf[512];
    ssize_t n = read_all(p[0], buf, sizeof buf - 1);
    close(p[0]);
    buf[n < 0 ? 0 : n] = 0;
    say("parent read through the pipe: %s", buf);
    if (r == 0)
        report("spawned child", c);

    /* Without file actions: the child writes to our stdout directly. */
    r = posix_spawn(&c, self, 0, 0, args, env);
    if (r == 0)
        report("spawned child 2", c); /* first: the child writes to our stdout */
    say("posix_spawn without file actions: %s", strerror(r));

    char *none[] = {"/nonexistent/prog", 0};
    c = 0;
    r = posix_spawn(&c, "/nonexistent/prog", 0, 0, none, env);
    say("posix_spawn of a missing path: %s", strerror(r));
    if (r == 0)
        report("spawned missing program", c); /* where an implementation reports 127 */
    errno = 0;
    r = (int)waitpid(-1, 0, WNOHANG);
    say("then no child is left: %d %s", r, strerror(errno));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
}

/* ---- popen ---- */
static void mode_popen(void) {
    FILE *f = popen("echo hi; echo there; exit 3", "r");
    if (!f)
        die("popen r");
    char line[128];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        say("popen read: %s", line);
    }
    int st = pclose(f);
    say("pclose: exited %s, status %d", yes(WIFEXITED(st)), WEXITSTATUS(st));

    f = popen("cat", "w");
    if (!f)
        die("popen w");
    fputs("written into popen(cat)\n", f);
    st = pclose(f);
    say("pclose of cat: exited %s, status %d", yes(WIFEXITED(st)), WEXITSTATUS(st));

    say("system(NULL) finds a shell: %s", yes(system(0) != 0));
    st = system("exit 5");
    say("system(exit 5): %d, exited %s, status %d", st, yes(WIFEXITED(st)), WEXITSTATUS(st));
    st = system("echo from system");
    say("system(echo): %d", st);
    st = system("kill -9 $$");
    say("system(kill -9 $$): signaled %s, signal %d", yes(WIFSIGNALED(st)), WTERMSIG(st));
}

/* ---- exec_keep ---- */
static void on_term(int sig) { (void)sig; }

static const char *disposition(int sig) {
    struct sigaction sa;
    if (sigaction(sig, 0, &sa))
        return "error";
    if (sa.sa_handler == SIG_DFL)
        return "default";
    if (sa.sa_handler == SIG_IGN)
        return "ignored";
    return "handled";
}

static void mode_exec_keep(void) {
    int keep = open("/dev/null", O_WRONLY);
    int gone = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int p[2];
    if (keep < 0 || gone < 0 || pipe(p))
        die("open");
    int moved = fcntl(gone, F_DUPFD, 50); /* a dup does not inherit FD_CLOEXEC */
    int moved_ce = fcntl(keep, F_DUPFD_CLOEXEC, 60);
    if (write(p[1], "left in the pipe", 16) != 16)
        die("write");
    signal(SIGUSR1, SIG_IGN);
    signal(SIGTERM, on_term);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, 0);
    if (chdir("/dev"))
        die("chdir");
    char a[7][16];
    snprintf(a[0], 16, "%d", keep);
    snprintf(a[1], 16, "%d", gone);
    snprintf(a[2], 16, "%d", moved);
    snprintf(a[3], 16, "%d", moved_ce);
    snprintf(a[4], 16, "%d", p[0]);
    snprintf(a[5], 16, "%d", (int)getpid());
    snprintf(a[6], 16, "%d", (int)getppid());
    char *args[] = {(char *)self, "exec_check", a[0], a[1], a[2], a[3], a[4], a[5], a[6], 0};
    char *env[] = {"AFTER_EXEC=1", 0};
    execve(self, args, env);
    die("execve");
}

static void mode_exec_check(char **argv) {
    const char *names[] = {"plain fd", "O_CLOEXEC fd", "dup of the O_CLOEXEC fd",
                           "F_DUPFD_CLOEXEC fd", "pipe read end"};
    for (int i = 0; i < 5; i++) {
        int fd = atoi(argv[2 + i]);
        int fl = fcntl(fd, F_GETFD);
        say("after exec, %s: %s", names[i], fl < 0 ? strerror(errno) : "open");
    }
    char buf[32] = {0};
    ssize_t n = read(atoi(argv[6]), buf, sizeof buf - 1);
    say("read from the inherited pipe: %zd [%s]", n, n > 0 ? buf : "");
    say("same pid after exec: %s", yes(getpid() == atoi(argv[7])));
    say("same parent after exec: %s", yes(getppid() == atoi(argv[8])));
    say("SIGUSR1 (was ignored): %s", disposition(SIGUSR1));
    say("SIGTERM (was handled): %s", disposition(SIGTERM));
    sigset_t m;
    sigprocmask(SIG_BLOCK, 0, &m);
    say("SIGUSR2 still blocked: %s", yes(sigismember(&m, SIGUSR2)));
    char cwd[256];
    say("cwd: %s", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
    const char *e = getenv("AFTER_EXEC");
    say("environment replaced: AFTER_EXEC=%s", e ? e : "(unset)");
    exit(0);
}

/* ---- sigchld ---- */
static volatile sig_atomic_t got, got_code, got_status, got_signo;
static volatile pid_t got_pid;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_signo = sig;
    got_code = si->si_code;
    got_status = si->si_status;
    got_pid = si->si_pid;
    got = 1;
}

static const char *code_name(int code) {
    switch (code) {
    case CLD_EXITED:
        return "CLD_EXITED";
    case CLD_KILLED:
        return "CLD_KILLED";
    case CLD_DUMPED:
        return "CLD_DUMPED";
    case CLD_STOPPED:
        return "CLD_STOPPED";
    case CLD_CONTINUED:
        return "CLD_CONTINUED";
    default:
        return "other";
    }
}

static void mode_sigchld(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0)
        _exit(4);
    while (!got)
        sigsuspend(&old);
    say("SIGCHLD handler: signo %d, %s, si_status %d, si_pid is the child: %s", (int)got_signo,
        code_name(got_code), (int)got_status, yes(got_pid == c));
    report("child", c);
    sigprocmask(SIG_SETMASK, &old, 0);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigaction(SIGCHLD, &sa, 0);

    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0)
        _exit(9);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT);
    say("waitid WNOWAIT: %d, signo %d, %s, status %d, pid is the child: %s", r, si.si_signo,
        code_name(si.si_code), si.si_status, yes(si.si_pid == c));
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, (id_t)c, &si, WEXITED);
    say("waitid again: %d, %s, status %d, pid is the child: %s", r, code_name(si.si_code),
        si.si_status, yes(si.si_pid == c));
    errno = 0;
    r = waitid(P_PID, (id_t)c, &si, WEXITED);
    say("waitid a third time: %d %s", r, strerror(errno));

    int p[2];
    if (pipe(p))
        die("pipe");
    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        char b;
        close(p[1]);
        (void)!read(p[0], &b, 1);
        _exit(0);
    }
    close(p[0]);
    memset(&si, 0xff, sizeof si);
    si.si_pid = 12345;
    r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
    say("waitid P_ALL WNOHANG on a running child: %d, si_pid %d", r, (int)si.si_pid);
    kill(c, SIGKILL);
    memset(&si, 0, sizeof si);
    r = waitid(P_ALL, 0, &si, WEXITED);
    say("waitid P_ALL after SIGKILL: %d, %s, status %d, pid is the child: %s", r,
        code_name(si.si_code), si.si_status, yes(si.si_pid == c));
    close(p[1]);

    /* SIGCHLD ignored: children are reaped by the kernel, wait() ends with ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0)
        _exit(1);
    errno = 0;
    int st;
    r = wait(&st);
    say("SIGCHLD ignored, wait(): %d %s", r, strerror(errno));
}

/* ---- script ---- */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode,
                       char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        die(path);
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        die("write script");
    close(fd);
    chmod(path, mode);
}

static void run_path(const char *what, const char *path, char *const args[]) {
    char *env[] = {"PATH=/bin", 0};
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        execve(path, args, env);
        say("%s: execve failed: %s", what, strerror(errno));
        _exit(127);
    }
    report(what, c);
}

static void mode_script(const char *dir) {
    char ok[512], dash_e[512], missing[512], plain[512], noexec[512];
    write_file(dir, "ok.sh",
               "#!/bin/sh\necho \"script: $# args, first [$1], second [$2]\"\nexit 6\n", 0755,
               ok, sizeof ok);
    write_file(dir, "e.sh", "#!/bin/sh -e\necho before\nfalse\necho not reached\n", 0755,
               dash_e, sizeof dash_e);
    write_file(dir, "missing.sh", "#!/nonexistent/interp\necho no\n", 0755, missing,
               sizeof missing);
    write_file(dir, "plain.txt", "echo no hashbang\n", 0755, plain, sizeof plain);
    write_file(dir, "noexec.sh", "#!/bin/sh\necho not executable\n", 0644, noexec,
               sizeof noexec);
    char *a1[] = {ok, "one", "two words", 0};
    run_path("#!/bin/sh script", ok, a1);
    char *a2[] = {dash_e, 0};
    run_path("#!/bin/sh -e script", dash_e, a2);
    char *env[] = {0};
    char *a3[] = {missing, 0};
    errno = 0;
    execve(missing, a3, env);
    say("execve of a script with a missing interpreter: %s", strerror(errno));
    char *a4[] = {plain, 0};
    errno = 0;
    execve(plain, a4, env);
    say("execve of a text file without #!: %s", strerror(errno));
    char *a5[] = {noexec, 0};
    errno = 0;
    execve(noexec, a5, env);
    say("execve of a script without x permission: %s", strerror(errno));
    errno = 0;
    execve(dir, a5, env);
    say("execve of a directory: %s", strerror(errno));
}

/* ---- pgrp ---- */
static pid_t forked_in_group(pid_t group) {
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        setpgid(0, group);
        for (;;)
            pause();
    }
    /* Both sides set it, so it is in place whichever runs first. */
    if (setpgid(c, group ? group : c))
        die("setpgid");
    return c;
}

static void mode_pgrp(void) {
    say("getpgrp is getpgid(0): %s", yes(getpgrp() == getpgid(0)));
    pid_t a = forked_in_group(0);
    pid_t b = forked_in_group(a);
    say("first child leads its own group: %s", yes(getpgid(a) == a));
    say("second child joined it: %s", yes(getpgid(b) == a));
    say("our group is unchanged: %s", yes(getpgrp() != a));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PGID, (id_t)a, &si, WEXITED | WNOHANG);
    say("waitid P_PGID WNOHANG while both run: %d, si_pid %d", r, (int)si.si_pid);
    say("kill(pid, 0) of a live child: %d", kill(b, 0));
    say("kill of the group: %d", kill(-a, SIGTERM));
    int both = 1;
    for (int i = 0; i < 2; i++) {
        memset(&si, 0, sizeof si);
        r = waitid(P_PGID, (id_t)a, &si, WEXITED);
        both &= r == 0 && si.si_code == CLD_KILLED && si.si_status == SIGTERM &&
                (si.si_pid == a || si.si_pid == b);
    }
    say("waitid P_PGID reaped both, killed by SIGTERM: %s", yes(both));
    errno = 0;
    r = (int)waitpid(-a, 0, 0);
    say("waitpid of the empty group: %d %s", r, strerror(errno));
    errno = 0;
    r = kill(b, 0);
    say("kill(pid, 0) of a reaped child: %d %s", r, strerror(errno));
    errno = 0;
    r = setpgid(getpid() + 1000, 0);
    say("setpgid of a pid that is not a child: %d %s", r, strerror(errno));

    int p[2];
    if (pipe(p))
        die("pipe");
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        close(p[0]);
        pid_t sid = setsid();
        int ok = sid == getpid() && getsid(0) == sid && getpgrp() == sid;
        errno = 0;
        int again = setsid() == -1 && errno == EPERM;
        char m[2] = {ok ? 'y' : 'n', again ? 'y' : 'n'};
        if (write(p[1], m, 2) != 2)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    char m[2] = {0};
    if (read_all(p[0], m, 2) != 2)
        say("FAIL no answer from the setsid child");
    close(p[0]);
    say("setsid in a child: new session and group led by it: %s, again EPERM: %s",
        yes(m[0] == 'y'), yes(m[1] == 'y'));
    report("setsid child", c);

    /* A subreaper inherits its orphaned grandchildren; one with PR_SET_PDEATHSIG dies with
     * its parent. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
        die("PR_SET_CHILD_SUBREAPER");
    int q[2];
    if (pipe(q))
        die("pipe");
    pid_t me = getpid();
    c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        close(q[0]);
        pid_t middle = getpid();
        pid_t orphan = fork();
        if (orphan == 0) {
            while (getppid() == middle)
                usleep(1000);
            char r = getppid() == me ? 'y' : 'n';
            if (write(q[1], &r, 1) != 1)
                _exit(1);
            _exit(5);
        }
        int ready[2];
        if (orphan < 0 || pipe(ready))
            _exit(1);
        pid_t doomed = fork();
        if (doomed == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            char r = 'r';
            if (write(ready[1], &r, 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
        char r;
        if (doomed < 0 || read(ready[0], &r, 1) != 1)
            _exit(1);
        _exit(0);
    }
    close(q[1]);
    report("middle child", c);
    char answer = 0;
    if (read_all(q[0], &answer, 1) != 1)
        say("FAIL no answer from the orphan");
    close(q[0]);
    say("the orphan's new parent is the subreaper: %s", yes(answer == 'y'));
    int exited5 = 0, killed9 = 0, n = 0, st;
    while (wait(&st) > 0) {
        n++;
        exited5 += WIFEXITED(st) && WEXITSTATUS(st) == 5;
        killed9 += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    }
    say("the subreaper reaped %d grandchildren: one exited 5: %s, one killed by its parent's "
        "death: %s",
        n, yes(exited5 == 1), yes(killed9 == 1));
}

/* ---- nproc ---- */
#define NPROC_LIMIT 20
static void mode_nproc(void) {
    struct rlimit rl = {NPROC_LIMIT, NPROC_LIMIT};
    if (setrlimit(RLIMIT_NPROC, &rl))
        die("setrlimit");
    int p[2];
    if (pipe(p))
        die("pipe");
    int forked = 0, eagain = 0, other = 0;
    while (forked < 1000) {
        pid_t c = fork();
        if (c < 0) {
            if (errno == EAGAIN)
                eagain = 1;
            else
                other = errno;
            break;
        }
        if (c == 0) {
            char b;
            close(p[1]);
            (void)!read(p[0], &b, 1); /* until the parent closes the write end */
            _exit(0);
        }
        forked++;
    }
    close(p[1]);
    int reaped = 0, st;
    while (wait(&st) > 0)
        reaped++;
    say("eagain seen: %s", yes(eagain));
    if (other)
        say("FAIL fork failed with %s", strerror(other));
    say("at most %d children before it: %s", NPROC_LIMIT, yes(forked < NPROC_LIMIT));
    say("every child reaped: %s", yes(reaped == forked));
}

/* ---- benchmarks ---- */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void bench_fork(long n) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0)
            die("fork");
        if (c == 0)
            _exit(0);
        int st;
        if (waitpid(c, &st, 0) != c || st != 0)
            die("waitpid");
    }
    say("ns_per_iter %.0f", (now() - t0) / n);
}

static void bench_spawn(long n, const char *path) {
    char *args[] = {(char *)path, 0};
    char *env[] = {0};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        pid_t c;
        int r = posix_spawn(&c, path, &fa, 0, args, env);
        if (r) {
            errno = r;
            die("posix_spawn");
        }
        int st;
        if (waitpid(c, &st, 0) != c || st != 0)
            die("waitpid");
    }
    say("ns_per_iter %.0f", (now() - t0) / n);
}

#define CHUNK 65536
static void bench_pipe(long mib) {
    int p[2];
    if (pipe(p))
        die("pipe");
    long total = mib << 20;
    static unsigned char buf[CHUNK];
    double t0 = now();
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        close(p[0]);
        for (long off = 0; off < total; off += CHUNK) {
            buf[0] = (unsigned char)(off >> 16);
            if (write(p[1], buf, CHUNK) != CHUNK)
                _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    long got_bytes = 0;
    for (;;) {
        ssize_t r = read(p[0], buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got_bytes += r;
    }
    int st;
    if (waitpid(c, &st, 0) != c || st != 0 || got_bytes != total) {
        say("FAIL pipe: %ld of %ld bytes, status %#x", got_bytes, total, st);
        exit(1);
    }
    say("ns_per_iter %.0f", (now() - t0) / (double)(total / CHUNK));
}

int main(int argc, char **argv) {
    self = argv[0];
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "fork_wait"))
        mode_fork_wait();
    else if (!strcmp(m, "vfork_exec"))
        mode_vfork_exec();
    else if (!strcmp(m, "child_hello"))
        mode_child_hello(argc, argv);
    else if (!strcmp(m, "posix_spawn"))
        mode_posix_spawn();
    else if (!strcmp(m, "child_args"))
        mode_child_args(argc, argv);
    else if (!strcmp(m, "popen"))
        mode_popen();
    else if (!strcmp(m, "exec_keep"))
        mode_exec_keep();
    else if (!strcmp(m, "exec_check") && argc == 9)
        mode_exec_check(argv);
    else if (!strcmp(m, "sigchld"))
        mode_sigchld();
    else if (!strcmp(m, "script") && argc == 3)
        mode_script(argv[2]);
    else if (!strcmp(m, "pgrp"))
        mode_pgrp();
    else if (!strcmp(m, "nproc"))
        mode_nproc();
    else if (!strcmp(m, "bench_fork") && argc == 3)
        bench_fork(atol(argv[2]));
    else if (!strcmp(m, "bench_spawn") && argc == 4)
        bench_spawn(atol(argv[2]), argv[3]);
    else if (!strcmp(m, "bench_pipe") && argc == 3)
        bench_pipe(atol(argv[2]));
    else {
        say("FAIL unknown mode %s", m);
        return 2;
    }
    return 0;
}
