// sig_host: an app that waits for signals from outside (sent to umon, or to it natively), in
// the way argv[1] says. Every mode prints "ready" once its handlers are in place, so the test
// knows a signal sent from then on meets them.
//   term PATH          SA_SIGINFO SIGTERM handler writes "signo=15 code=C pid=P uid=U" to PATH
//                      and exits 0
//   default            no handler at all: waits in pause() for ever
//   count SIG N CODE   a handler for SIG prints "got K" each time; exits CODE after N
//   ignored            SIGUSR1 handler prints "usr1" and the app exits 0; SIGWINCH and SIGCONT
//                      keep their default (ignore)
//   storm              counting SIGUSR1 handler (SA_RESTART); reads stdin to EOF, then prints
//                      "handled N" and exits 0 (a read that fails exits 1)
//   order N            counting SIGUSR1 handler (SA_RESTART); N times: read one line of stdin
//                      (sent after a SIGUSR1), say "late K" (and exit 1) unless the handler
//                      ran since the line before, else "ok K"; then "in order" and exit 0
//   read restart|intr  SIGUSR1 handler (with or without SA_RESTART) prints "handled"; one
//                      read(2) of stdin, then its result and errno
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t count;
static const char *path;

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

// Async-signal-safe decimal of v at the end of buf; returns its start.
static char *dec(char *end, long v) {
    int neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    *--end = 0;
    do {
        *--end = '0' + u % 10;
        u /= 10;
    } while (u);
    if (neg) *--end = '-';
    return end;
}

static void on_term(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char line[160] = "", num[24];
    strcat(line, "signo=");
    strcat(line, dec(num + sizeof num, sig));
    strcat(line, " code=");
    strcat(line, dec(num + sizeof num, si->si_code));
    strcat(line, " pid=");
    strcat(line, dec(num + sizeof num, si->si_pid));
    strcat(line, " uid=");
    strcat(line, dec(num + sizeof num, si->si_uid));
    strcat(line, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(2);
    (void)!write(fd, line, strlen(line));
    close(fd);
    _exit(0);
}

static void on_count(int sig) {
    (void)sig;
    char num[24];
    count++;
    say("got ");
    say(dec(num + sizeof num, count));
    say("\n");
}

static void on_usr1(int sig) {
    (void)sig;
    count++;
    say("usr1\n");
}

static void on_storm(int sig) {
    (void)sig;
    count++;
}

static void on_read(int sig) {
    (void)sig;
    count++;
    say("handled\n");
}

// Block `sig` for the caller, and return the mask from before: waiting with sigsuspend on it
// cannot miss a signal that lands between the check of `count` and the wait (pause() can).
static sigset_t blocking(int sig) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, &old);
    return old;
}

static void handle(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, 0)) {
        perror("sigaction");
        exit(3);
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "default";
    if (!strcmp(mode, "term") && argc > 2) {
        path = argv[2];
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_term;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGTERM, &sa, 0);
        say("ready\n");
        for (;;) pause();
    }
    if (!strcmp(mode, "default")) {
        say("ready\n");
        for (;;) pause();
    }
    if (!strcmp(mode, "count") && argc > 4) {
        int n = atoi(argv[3]);
        sigset_t old = blocking(atoi(argv[2]));
        handle(atoi(argv[2]), on_count, 0);
        say("ready\n");
        while (count < n) sigsuspend(&old);
        return atoi(argv[4]);
    }
    if (!strcmp(mode, "ignored")) {
        sigset_t old = blocking(SIGUSR1);
        handle(SIGUSR1, on_usr1, 0);
        say("ready\n");
        while (!count) sigsuspend(&old);
        return 0;
    }
    if (!strcmp(mode, "storm")) {
        handle(SIGUSR1, on_storm, SA_RESTART);
        say("ready\n");
        char buf[64];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0) {
        }
        if (n < 0) {
            printf("read failed: %s\n", strerror(errno));
            return 1;
        }
        printf("handled %d\n", count > 0);
        return 0;
    }
    if (!strcmp(mode, "order") && argc > 2) {
        handle(SIGUSR1, on_storm, SA_RESTART);
        int n = atoi(argv[2]);
        // Each count is taken before the line that lets the sender go on.
        int before = count;
        say("ready\n");
        for (int k = 0; k < n; k++) {
            char c = 0;
            while (c != '\n') {
                if (read(0, &c, 1) != 1) {
                    say("read failed\n");
                    return 1;
                }
            }
            int late = count == before;
            before = count;
            char num[24];
            say(late ? "late " : "ok ");
            say(dec(num + sizeof num, k));
            say("\n");
            if (late) return 1;
        }
        say("in order\n");
        return 0;
    }
    if (!strcmp(mode, "read") && argc > 2) {
        handle(SIGUSR1, on_read, !strcmp(argv[2], "restart") ? SA_RESTART : 0);
        say("ready\n");
        char buf[64];
        ssize_t n = read(0, buf, sizeof buf);
        int e = errno;
        printf("read=%zd errno=%s handled=%d\n", n, n < 0 ? strerror(e) : "-", (int)count);
        return 0;
    }
    fprintf(stderr, "usage: sig_host MODE ...\n");
    return 2;
}
