/* Hostile signal calls: every line is a call and what it returned, compared with Linux.
 * `sig_hostile MODE`:
 *   calls    rt_sigqueueinfo / rt_tgsigqueueinfo with bad pointers, si_code >= 0 and SI_TKILL
 *            to another thread, bad tid/tgid, bad signal numbers; rt_sigtimedwait with bad
 *            set/info/timeout pointers, bad timeouts, bad sizes; rt_sigsuspend bad size and
 *            pointer; kill/tgkill bad arguments.
 *   exiting  100 threads each woken from pause() by tgkill, then signalled while they end
 *            and after they are gone (0 or ESRCH, never anything else).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "say.h"

static long raw(long n, long a, long b, long c, long d) {
    long r = syscall(n, a, b, c, d);
    return r < 0 ? -errno : r;
}

static const char *err(long r) {
    static char buf[32];
    switch (r) {
    case 0: return "0";
    case -EFAULT: return "EFAULT";
    case -EINVAL: return "EINVAL";
    case -EPERM: return "EPERM";
    case -ESRCH: return "ESRCH";
    case -EAGAIN: return "EAGAIN";
    case -EINTR: return "EINTR";
    default:
        snprintf(buf, sizeof buf, "%ld", r);
        return buf;
    }
}

#define CALL(what, expr) say("%s = %s", what, err(expr))

static volatile int handled;
static void on_sig(int s) {
    (void)s;
    handled++;
}

static long other_tid;
static volatile int stop_other;
static void *idle(void *a) {
    (void)a;
    other_tid = syscall(SYS_gettid);
    while (!stop_other)
        usleep(1000);
    return NULL;
}

static void calls(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
    sigset_t blk;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    sigaddset(&blk, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    while (!other_tid)
        usleep(1000);
    void *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);
    long pid = getpid(), me = syscall(SYS_gettid);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_QUEUE;
    si.si_signo = SIGUSR1;

    CALL("sigqueueinfo(self, USR1, NULL)", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, 0, 0));
    CALL("sigqueueinfo(self, USR1, unmapped)", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, (long)unmapped, 0));
    CALL("sigqueueinfo(self, USR1, kernel address)", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, (long)0xffff800000000000ul, 0));
    CALL("sigqueueinfo(self, 65, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, pid, 65, (long)&si, 0));
    CALL("sigqueueinfo(self, -1, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, pid, -1, (long)&si, 0));
    CALL("sigqueueinfo(self, 0, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, pid, 0, (long)&si, 0));
    CALL("sigqueueinfo(12345, USR1, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, 12345, SIGUSR1, (long)&si, 0));
    CALL("sigqueueinfo(0, USR1, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, 0, SIGUSR1, (long)&si, 0));
    CALL("sigqueueinfo(-1, USR1, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, -1, SIGUSR1, (long)&si, 0));
    CALL("sigqueueinfo(self, USR1, SI_QUEUE)", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, (long)&si, 0));
    si.si_code = SI_USER;
    CALL("sigqueueinfo(self, USR1, SI_USER) from main", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, (long)&si, 0));
    si.si_code = SI_KERNEL;
    CALL("sigqueueinfo(self, USR1, SI_KERNEL) from main", raw(SYS_rt_sigqueueinfo, pid, SIGUSR1, (long)&si, 0));
    si.si_code = SI_TKILL;
    CALL("tgsigqueueinfo(self, other, USR1, SI_TKILL)", raw(SYS_rt_tgsigqueueinfo, pid, other_tid, SIGUSR1, (long)&si));
    CALL("tgsigqueueinfo(self, me, USR1, SI_TKILL)", raw(SYS_rt_tgsigqueueinfo, pid, me, SIGUSR1, (long)&si));
    si.si_code = 5;
    CALL("tgsigqueueinfo(self, other, USR1, code 5)", raw(SYS_rt_tgsigqueueinfo, pid, other_tid, SIGUSR1, (long)&si));
    si.si_code = SI_QUEUE;
    CALL("tgsigqueueinfo(self, other, USR1, NULL)", raw(SYS_rt_tgsigqueueinfo, pid, other_tid, SIGUSR1, 0));
    CALL("tgsigqueueinfo(self, 0, USR1)", raw(SYS_rt_tgsigqueueinfo, pid, 0, SIGUSR1, (long)&si));
    CALL("tgsigqueueinfo(0, me, USR1)", raw(SYS_rt_tgsigqueueinfo, 0, me, SIGUSR1, (long)&si));
    CALL("tgsigqueueinfo(self, 99999, USR1)", raw(SYS_rt_tgsigqueueinfo, pid, 99999, SIGUSR1, (long)&si));
    CALL("tgsigqueueinfo(777, me, USR1)", raw(SYS_rt_tgsigqueueinfo, 777, me, SIGUSR1, (long)&si));
    CALL("tgsigqueueinfo(self, me, 99)", raw(SYS_rt_tgsigqueueinfo, pid, me, 99, (long)&si));
    CALL("tgsigqueueinfo(self, other, RTMIN)", raw(SYS_rt_tgsigqueueinfo, pid, other_tid, SIGRTMIN, (long)&si));

    CALL("tgkill(self, 0, USR1)", raw(SYS_tgkill, pid, 0, SIGUSR1, 0));
    CALL("tgkill(-5, me, USR1)", raw(SYS_tgkill, -5, me, SIGUSR1, 0));
    CALL("tgkill(self, 99999, 0)", raw(SYS_tgkill, pid, 99999, 0, 0));
    CALL("tgkill(self, 99999, 99)", raw(SYS_tgkill, pid, 99999, 99, 0));
    CALL("tgkill(self, me, 99)", raw(SYS_tgkill, pid, me, 99, 0));
    CALL("tkill(other, 0)", raw(SYS_tkill, other_tid, 0, 0, 0));
    CALL("tkill(-1, USR1)", raw(SYS_tkill, -1, SIGUSR1, 0, 0));
    CALL("kill(self, 65)", raw(SYS_kill, pid, 65, 0, 0));
    CALL("kill(4242, 65)", raw(SYS_kill, 4242, 65, 0, 0));
    CALL("kill(0, 0)", raw(SYS_kill, 0, 0, 0, 0));

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec zero = {0, 0}, bad_ns = {0, 1000000000}, neg = {-1, 0};
    CALL("sigtimedwait(NULL set)", raw(SYS_rt_sigtimedwait, 0, 0, (long)&zero, 8));
    CALL("sigtimedwait(unmapped set)", raw(SYS_rt_sigtimedwait, (long)unmapped, 0, (long)&zero, 8));
    CALL("sigtimedwait(size 4)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)&zero, 4));
    CALL("sigtimedwait(size 1<<40)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)&zero, 1l << 40));
    CALL("sigtimedwait(unmapped timeout)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)unmapped, 8));
    CALL("sigtimedwait(nsec 1e9)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)&bad_ns, 8));
    CALL("sigtimedwait(sec -1)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)&neg, 8));
    /* Two USR1 are pending (coalesced to one); taking it with a bad info pointer: EFAULT,
     * and the signal is gone (Linux dequeues before it copies). */
    CALL("sigtimedwait(USR1 pending, unmapped info)", raw(SYS_rt_sigtimedwait, (long)&set, (long)unmapped, (long)&zero, 8));
    CALL("sigtimedwait(USR1 again, zero timeout)", raw(SYS_rt_sigtimedwait, (long)&set, 0, (long)&zero, 8));
    CALL("sigsuspend(size 16)", raw(SYS_rt_sigsuspend, (long)&set, 16, 0, 0));
    CALL("sigsuspend(unmapped)", raw(SYS_rt_sigsuspend, (long)unmapped, 8, 0, 0));
    CALL("sigpending(size 9)", raw(SYS_rt_sigpending, (long)&set, 9, 0, 0));
    CALL("sigpending(unmapped)", raw(SYS_rt_sigpending, (long)unmapped, 8, 0, 0));
    stop_other = 1;
    pthread_join(t, NULL);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    say("SIGRTMIN pending for main after it went to the other thread: %d",
        (int)raw(SYS_rt_sigtimedwait, (long)&rt, 0, (long)&zero, 8) == SIGRTMIN);
    say("handled while blocked: %d", handled);
}

/* ---- exiting ---- */
static volatile long brief_tid;
static volatile int brief_done;
static __thread volatile int woken;
static void wake_brief(int s) {
    (void)s;
    woken = 1;
}

/* Waits in pause() until its own handler ran, then ends. */
static void *brief(void *a) {
    (void)a;
    brief_tid = syscall(SYS_gettid);
    while (!woken)
        pause();
    brief_done = 1;
    return NULL;
}

static void exiting(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_brief;
    sigaction(SIGUSR1, &sa, NULL);
    long pid = getpid();
    int other = 0, rounds = 0;
    for (int i = 0; i < 100; i++) {
        brief_tid = 0;
        brief_done = 0;
        pthread_t t;
        pthread_create(&t, NULL, brief, NULL);
        while (!brief_tid)
            usleep(100);
        /* Until it has woken, and then while it ends and after it is gone. */
        for (int k = 0; !brief_done || k < 20; k++) {
            long r = raw(SYS_tgkill, pid, brief_tid, SIGUSR1, 0);
            if (r != 0 && r != -ESRCH)
                other++;
            if (!brief_done)
                usleep(200);
        }
        pthread_join(t, NULL);
        long r = raw(SYS_tgkill, pid, brief_tid, SIGUSR1, 0);
        if (r != -ESRCH && r != 0)
            other++;
        rounds++;
    }
    say("exiting: %d threads woken from pause by tgkill, signalled while ending and after; "
        "every tgkill 0 or ESRCH: %s", rounds, other == 0 ? "yes" : "no");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "calls"))
        calls();
    else if (!strcmp(mode, "exiting"))
        exiting();
    else {
        say("unknown mode");
        return 2;
    }
    return 0;
}
