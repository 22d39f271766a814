/* Signals between threads, as Linux delivers them: `sig_threads MODE`, each mode printing
 * deterministic lines for comparison with the native run.
 *   target    kill(getpid()) while the main thread blocks the signal: the one thread that does
 *             not block it runs the handler.
 *   spin      tgkill to a thread spinning in a pure CPU loop: its handler runs (the kick).
 *   read      a thread blocked in read() of stdin (held open, never written), signalled: EINTR
 *             without SA_RESTART; with SA_RESTART the read goes on (still blocked).
 *   futex     the same for an untimed FUTEX_WAIT; with SA_RESTART it returns 0 after a wake.
 *   sleep     nanosleep cut short: EINTR and the remaining time; an ignored signal does not
 *             cut it short.
 *   rtorder   queued real-time signals come out lowest number first, in order within one;
 *             a standard signal coalesces.
 *   suspend   a sigsuspend ping-pong between two threads; pause() returns EINTR.
 *   ppoll     ppoll on stdin (held open) with a mask that lets SIGUSR1 through, which the
 *             thread otherwise blocks: a signal from another thread ends it with EINTR, the
 *             handler runs, the mask is back after; one pending before the call ends it at once.
 *   storm     20k kill(self) while blocked: one pending; sigqueue past RLIMIT_SIGPENDING
 *             (lowered to 1000): EAGAIN; 20k deliveries counted exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "say.h"

#ifndef FUTEX_WAIT
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#endif

static volatile sig_atomic_t handled, handler_tid, spin_flag;
static volatile long counted;
static volatile int ready;

static long gettid_(void) { return syscall(SYS_gettid); }

static void on_usr1(int sig) {
    (void)sig;
    handled++;
    handler_tid = (sig_atomic_t)gettid_();
    spin_flag = 1;
}

static void count(int sig) {
    (void)sig;
    counted++;
}

static void set_handler(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void block(int sig, int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(how, &s, NULL);
}

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    default: return strerror(e);
    }
}

/* ---- target ---- */
static volatile long worker_tid;
static void *target_worker(void *arg) {
    (void)arg;
    block(SIGUSR1, SIG_UNBLOCK);
    worker_tid = gettid_();
    ready = 1;
    while (!handled)
        msleep(5);
    return NULL;
}

static void mode_target(void) {
    set_handler(SIGUSR1, on_usr1, 0);
    block(SIGUSR1, SIG_BLOCK);
    pthread_t t;
    pthread_create(&t, NULL, target_worker, NULL);
    while (!ready)
        msleep(1);
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    say("target: handled %d time(s), on the worker: %s, on main: %s", (int)handled,
        handler_tid == worker_tid ? "yes" : "no", handler_tid == getpid() ? "yes" : "no");
}

/* ---- spin ---- */
static void *spinner(void *arg) {
    (void)arg;
    worker_tid = gettid_();
    ready = 1;
    while (!spin_flag) {
    }
    return NULL;
}

static void mode_spin(void) {
    set_handler(SIGUSR1, on_usr1, 0);
    pthread_t t;
    pthread_create(&t, NULL, spinner, NULL);
    while (!ready)
        msleep(1);
    syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
    pthread_join(t, NULL);
    say("spin: the spinning thread ran its handler: %s", handler_tid == worker_tid ? "yes" : "no");
}

/* ---- read / futex ---- */
static volatile int call_done, call_ret, call_errno;
static volatile uint32_t word;

static void *reader(void *arg) {
    (void)arg;
    char c;
    ready = 1;
    long r = read(0, &c, 1);
    call_errno = r < 0 ? errno : 0;
    call_ret = (int)r;
    call_done = 1;
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    ready = 1;
    long r = syscall(SYS_futex, &word, FUTEX_WAIT | 128, 0, NULL, NULL, 0);
    call_errno = r < 0 ? errno : 0;
    call_ret = (int)r;
    call_done = 1;
    return NULL;
}

static void interrupt(const char *what, void *(*fn)(void *), int flags) {
    handled = 0;
    ready = 0;
    call_done = 0;
    word = 0;
    set_handler(SIGUSR1, on_usr1, flags);
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    while (!ready)
        msleep(1);
    msleep(100);
    /* Until the handler ran at least once (a signal before the call began only runs it). */
    while (!handled) {
        pthread_kill(t, SIGUSR1);
        msleep(20);
    }
    if (!(flags & SA_RESTART)) {
        while (!call_done) {
            pthread_kill(t, SIGUSR1);
            msleep(20);
        }
        say("%s without SA_RESTART: returned %d %s", what, call_ret, ename(call_errno));
    } else {
        msleep(200);
        say("%s with SA_RESTART: still blocked after the handler: %s", what,
            call_done ? "no" : "yes");
        if (fn == waiter) {
            word = 1;
            while (!call_done) {
                syscall(SYS_futex, &word, FUTEX_WAKE | 128, 1, NULL, NULL, 0);
                msleep(5);
            }
            say("%s with SA_RESTART: after the wake returned %d %s", what, call_ret,
                ename(call_errno));
        }
    }
    if (call_done)
        pthread_join(t, NULL);
    else
        pthread_detach(t);
}

/* ---- sleep ---- */
static struct timespec rem;
static void *sleeper(void *arg) {
    long secs = (long)arg;
    struct timespec t = {secs, 0};
    rem.tv_sec = rem.tv_nsec = -1;
    ready = 1;
    int r = nanosleep(&t, &rem);
    call_errno = r < 0 ? errno : 0;
    call_ret = r;
    call_done = 1;
    return NULL;
}

static void mode_sleep(void) {
    set_handler(SIGUSR1, on_usr1, 0);
    pthread_t t;
    pthread_create(&t, NULL, sleeper, (void *)10L);
    while (!ready)
        msleep(1);
    msleep(200);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    say("sleep 10s: returned %d %s, rem %s", call_ret, ename(call_errno),
        rem.tv_sec >= 7 && rem.tv_sec <= 9 ? "between 7 and 10 s" : "wrong");
    /* Ignored: the sleep is not cut short. */
    set_handler(SIGUSR1, SIG_IGN, 0);
    ready = call_done = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_create(&t, NULL, sleeper, (void *)1L);
    while (!ready)
        msleep(1);
    for (int i = 0; i < 5; i++) {
        pthread_kill(t, SIGUSR1);
        kill(getpid(), SIGUSR1);
        msleep(20);
    }
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    say("sleep 1s, SIG_IGN'd signals sent: returned %d %s, slept the whole second: %s", call_ret,
        ename(call_errno), ms >= 990 ? "yes" : "no");
}

/* ---- rtorder ---- */
static void mode_rtorder(void) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < 4; i++)
        sigaddset(&set, SIGRTMIN + i);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int order[][2] = {{2, 1}, {0, 2}, {2, 3}, {1, 4}, {3, 5}, {0, 6}, {1, 7}};
    for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++) {
        union sigval v = {.sival_int = order[i][1]};
        if (sigqueue(getpid(), SIGRTMIN + order[i][0], v) != 0)
            say("sigqueue: %s", ename(errno));
    }
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    union sigval v = {.sival_int = 9};
    sigqueue(getpid(), SIGUSR1, v);
    sigset_t pending;
    sigpending(&pending);
    say("pending: USR1 %d RTMIN %d RTMIN+1 %d RTMIN+2 %d RTMIN+3 %d", sigismember(&pending, SIGUSR1),
        sigismember(&pending, SIGRTMIN), sigismember(&pending, SIGRTMIN + 1),
        sigismember(&pending, SIGRTMIN + 2), sigismember(&pending, SIGRTMIN + 3));
    struct timespec zero = {0, 0};
    for (;;) {
        siginfo_t si;
        int s = sigtimedwait(&set, &si, &zero);
        if (s < 0) {
            say("sigtimedwait: %s", ename(errno));
            break;
        }
        if (s == SIGUSR1)
            say("SIGUSR1 si_code %s", si.si_code == SI_USER ? "SI_USER" : "other");
        else
            say("SIGRTMIN+%d value %d si_code %s", s - SIGRTMIN, si.si_value.sival_int,
                si.si_code == SI_QUEUE ? "SI_QUEUE" : "other");
    }
    /* A timeout that passes: EAGAIN; a bad one: EINVAL. */
    struct timespec short_wait = {0, 20000000};
    errno = 0;
    int s = sigtimedwait(&set, NULL, &short_wait);
    say("sigtimedwait 20ms: %d %s", s, ename(errno));
}

/* ---- suspend ---- */
#define ROUNDS 200
static volatile long main_tid, usr1s, usr2s;
static void on_ping(int sig) {
    if (sig == SIGUSR1)
        usr1s++;
    else
        usr2s++;
}

static void *ponger(void *arg) {
    (void)arg;
    sigset_t wait_mask;
    pthread_sigmask(SIG_BLOCK, NULL, &wait_mask);
    sigdelset(&wait_mask, SIGUSR1);
    worker_tid = gettid_();
    ready = 1;
    int eintr = 0;
    for (int i = 0; i < ROUNDS; i++) {
        if (sigsuspend(&wait_mask) == -1 && errno == EINTR)
            eintr++;
        syscall(SYS_tgkill, getpid(), main_tid, SIGUSR2);
    }
    say("ponger: %d sigsuspend returned EINTR", eintr);
    return NULL;
}

static void *pauser(void *arg) {
    (void)arg;
    ready = 1;
    int r = pause();
    call_errno = errno;
    call_ret = r;
    call_done = 1;
    return NULL;
}

static void mode_suspend(void) {
    set_handler(SIGUSR1, on_ping, 0);
    set_handler(SIGUSR2, on_ping, 0);
    sigset_t both, wait_mask;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &both, &wait_mask);
    sigdelset(&wait_mask, SIGUSR2);
    main_tid = gettid_();
    pthread_t t;
    pthread_create(&t, NULL, ponger, NULL);
    while (!ready)
        msleep(1);
    for (int i = 0; i < ROUNDS; i++) {
        syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
        sigsuspend(&wait_mask);
    }
    pthread_join(t, NULL);
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    say("suspend: %ld pings, %ld pongs, mask restored: %s", (long)usr1s, (long)usr2s,
        sigismember(&now, SIGUSR2) ? "yes" : "no");
    pthread_sigmask(SIG_UNBLOCK, &both, NULL);
    set_handler(SIGUSR1, on_usr1, 0);
    ready = call_done = 0;
    handled = 0;
    pthread_create(&t, NULL, pauser, NULL);
    while (!ready)
        msleep(1);
    while (!call_done) {
        pthread_kill(t, SIGUSR1);
        msleep(20);
    }
    pthread_join(t, NULL);
    say("pause: returned %d %s", call_ret, ename(call_errno));
}

/* ---- ppoll ---- */
static void *ppoller(void *arg) {
    (void)arg;
    sigset_t blocked, during;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &blocked, &during);
    sigdelset(&during, SIGUSR1);
    struct pollfd p = {.fd = 0, .events = POLLIN};
    worker_tid = gettid_();
    ready = 1;
    int r = ppoll(&p, 1, NULL, &during);
    call_errno = r < 0 ? errno : 0;
    call_ret = r;
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    say("ppoll: returned %d %s, handler ran %d, SIGUSR1 blocked again: %s", call_ret,
        ename(call_errno), (int)handled, sigismember(&now, SIGUSR1) ? "yes" : "no");
    /* Pending before the call: ends it at once. */
    raise(SIGUSR1);
    r = ppoll(&p, 1, NULL, &during);
    say("ppoll with SIGUSR1 already pending: returned %d %s, handler ran %d", r,
        ename(r < 0 ? errno : 0), (int)handled);
    call_done = 1;
    return NULL;
}

static void mode_ppoll(void) {
    set_handler(SIGUSR1, on_usr1, 0);
    pthread_t t;
    pthread_create(&t, NULL, ppoller, NULL);
    while (!ready)
        msleep(1);
    msleep(100);
    syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
    pthread_join(t, NULL);
}

/* ---- storm ---- */
/* Counts kept small enough for umon on PVM, where a syscall costs tens of microseconds. */
#define STORM_KILLS 20000
#define STORM_QUEUE_LIMIT 1000
static void mode_storm(void) {
    set_handler(SIGUSR1, count, 0);
    block(SIGUSR1, SIG_BLOCK);
    pid_t me = getpid();
    for (long i = 0; i < STORM_KILLS; i++)
        kill(me, SIGUSR1);
    block(SIGUSR1, SIG_UNBLOCK);
    say("storm: %d blocked kills delivered %ld time(s)", STORM_KILLS, (long)counted);

    counted = 0;
    set_handler(SIGRTMIN, count, 0);
    block(SIGRTMIN, SIG_BLOCK);
    struct rlimit lim;
    getrlimit(RLIMIT_SIGPENDING, &lim);
    lim.rlim_cur = STORM_QUEUE_LIMIT;
    if (setrlimit(RLIMIT_SIGPENDING, &lim) != 0)
        say("setrlimit: %s", ename(errno));
    long ok = 0, again = 0, other = 0;
    for (long i = 0; i < 2 * STORM_QUEUE_LIMIT; i++) {
        union sigval v = {.sival_int = (int)i};
        if (sigqueue(me, SIGRTMIN, v) == 0)
            ok++;
        else if (errno == EAGAIN)
            again++;
        else
            other++;
    }
    /* The limit is the user's: other processes of the user may hold a few. */
    int near = ok <= STORM_QUEUE_LIMIT && ok >= STORM_QUEUE_LIMIT - 64;
    if (getenv("SIG_DEBUG"))
        say("ok %ld again %ld", ok, again);
    say("storm: sigqueue past RLIMIT_SIGPENDING: queued up to the limit: %s, EAGAIN for the "
        "rest: %s, other errors %ld",
        near ? "yes" : "no", again == 2 * STORM_QUEUE_LIMIT - ok ? "yes" : "no", other);
    /* kill() of a real-time signal past the limit is not refused. */
    say("storm: kill of SIGRTMIN past the limit: %d", kill(me, SIGRTMIN));
    block(SIGRTMIN, SIG_UNBLOCK);
    say("storm: queued ones delivered: %s", counted == ok ? "all, the kill adding none" : "not all");

    counted = 0;
    for (long i = 0; i < STORM_KILLS; i++)
        kill(me, SIGUSR1);
    say("storm: %d unblocked kills, handler ran %ld times", STORM_KILLS, (long)counted);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "target"))
        mode_target();
    else if (!strcmp(mode, "spin"))
        mode_spin();
    else if (!strcmp(mode, "read")) {
        interrupt("read", reader, 0);
        interrupt("read", reader, SA_RESTART);
    } else if (!strcmp(mode, "futex")) {
        interrupt("futex", waiter, 0);
        interrupt("futex", waiter, SA_RESTART);
    } else if (!strcmp(mode, "sleep"))
        mode_sleep();
    else if (!strcmp(mode, "rtorder"))
        mode_rtorder();
    else if (!strcmp(mode, "suspend"))
        mode_suspend();
    else if (!strcmp(mode, "ppoll"))
        mode_ppoll();
    else if (!strcmp(mode, "storm"))
        mode_storm();
    else {
        say("unknown mode %s", mode);
        return 2;
    }
    /* Threads left blocked (read with SA_RESTART) end with the process. */
    exit(0);
}
