// Thread identity and the kernel side of threads: gettid is distinct per thread (and the main
// thread's is the pid), tgkill/tkill to a live thread with a signal whose default action is to
// ignore it (SIGCHLD, SIGURG) succeeds and changes nothing, tgkill to a gone thread or the wrong
// group is ESRCH, sched_getaffinity reports the same CPU count in every thread, and a raw
// clone's CLONE_PARENT_SETTID / CLONE_CHILD_CLEARTID store the tid and clear it with a futex
// wake at exit (what pthread_join relies on).
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "say.h"
#include "thr.h"

#define N 16

static int tids[N];
static int cpus[N];
static pthread_barrier_t all_alive;

static int cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    long r = rsys(SYS_sched_getaffinity, 0, sizeof set, &set, 0, 0, 0);
    if (r < 0)
        return (int)r;
    return CPU_COUNT(&set);
}

static void *worker(void *p) {
    uintptr_t i = (uintptr_t)p;
    tids[i] = (int)rsys(SYS_gettid, 0, 0, 0, 0, 0, 0);
    cpus[i] = cpu_count();
    // Every thread alive at once, so no tid can have been reused.
    pthread_barrier_wait(&all_alive);
    return NULL;
}

static void distinct_tids(void) {
    long pid = rsys(SYS_getpid, 0, 0, 0, 0, 0, 0);
    long main_tid = rsys(SYS_gettid, 0, 0, 0, 0, 0, 0);
    say("main: gettid == getpid: %s", pid == main_tid ? "yes" : "no");
    pthread_barrier_init(&all_alive, NULL, N);
    pthread_t t[N];
    for (uintptr_t i = 0; i < N; i++)
        thr_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int dup = 0, is_pid = 0, positive = 0, same_cpus = 0;
    int mine = cpu_count();
    for (int i = 0; i < N; i++) {
        positive += tids[i] > 0;
        is_pid += tids[i] == pid;
        same_cpus += cpus[i] == mine;
        for (int j = 0; j < i; j++)
            dup += tids[i] == tids[j];
    }
    say("threads: %d tids, positive %d, equal to the pid %d, duplicates %d", N, positive, is_pid,
        dup);
    say("affinity: threads that see the main thread's CPU count: %d of %d", same_cpus, N);
    // The count itself: the host's CPUs natively, --cpus (default: the host's) under umon.
    say("affinity: %d CPUs", mine);
    cpu_set_t small;
    say("affinity: a 1-byte mask: %s", ename(rsys(SYS_sched_getaffinity, 0, 1, &small, 0, 0, 0)));
    long r = rsys(SYS_sched_getaffinity, 0, sizeof small, &small, 0, 0, 0);
    say("affinity: returns the mask size in bytes, a multiple of 8: %s",
        r > 0 && r % 8 == 0 ? "yes" : ename(r));
}

static volatile int stop_spinning;
static volatile int spinner_tid;
static void *spinner(void *p) {
    (void)p;
    spinner_tid = (int)rsys(SYS_gettid, 0, 0, 0, 0, 0, 0);
    while (!stop_spinning)
        sched_yield();
    return (void *)7;
}

static void signals(void) {
    long pid = rsys(SYS_getpid, 0, 0, 0, 0, 0, 0);
    pthread_t t;
    thr_create(&t, NULL, spinner, NULL);
    while (!spinner_tid)
        sched_yield();
    int tid = spinner_tid;
    say("tgkill SIGURG to a live thread: %s", ename(rsys(SYS_tgkill, pid, tid, SIGURG, 0, 0, 0)));
    say("tgkill SIGCHLD to a live thread: %s", ename(rsys(SYS_tgkill, pid, tid, SIGCHLD, 0, 0, 0)));
    say("tgkill 0 (probe) to a live thread: %s", ename(rsys(SYS_tgkill, pid, tid, 0, 0, 0, 0)));
    say("tkill SIGURG to a live thread: %s", ename(rsys(SYS_tkill, tid, SIGURG, 0, 0, 0, 0)));
    say("tgkill SIGURG to myself: %s",
        ename(rsys(SYS_tgkill, pid, rsys(SYS_gettid, 0, 0, 0, 0, 0, 0), SIGURG, 0, 0, 0)));
    say("tgkill with the wrong tgid: %s", ename(rsys(SYS_tgkill, pid + 1000000, tid, SIGURG, 0, 0, 0)));
    say("tgkill signal 65: %s", ename(rsys(SYS_tgkill, pid, tid, 65, 0, 0, 0)));
    say("tgkill tid 0: %s", ename(rsys(SYS_tgkill, pid, 0, SIGURG, 0, 0, 0)));
    say("tgkill tid -1: %s", ename(rsys(SYS_tgkill, pid, -1, SIGURG, 0, 0, 0)));
    stop_spinning = 1;
    void *r;
    pthread_join(t, &r);
    say("the signalled thread went on and returned %lu", (unsigned long)(uintptr_t)r);
}

static int shared_word;
static int child_fn(void *arg) {
    shared_word = (int)(uintptr_t)arg;
    return 0;
}

static long futex(int *uaddr, int op, int val, const struct timespec *t, int *uaddr2, int val3) {
    return rsys(SYS_futex, uaddr, op, val, t, uaddr2, val3);
}

static void cleartid(void) {
    size_t sz = 64 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static int ptid, ctid;
    for (int round = 0; round < 3; round++) {
        ptid = 0;
        ctid = -1;
        shared_word = 0;
        long tid = raw_clone(THREAD_FLAGS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID,
                             stack + sz, &ptid, &ctid, 0, child_fn, (void *)(uintptr_t)(42 + round));
        if (tid <= 0) {
            say("clone: %s", ename(tid));
            return;
        }
        // CLONE_CHILD_SETTID stores the tid in the child before it runs; CLONE_CHILD_CLEARTID
        // zeroes it at exit and wakes one waiter: wait for exactly that.
        for (;;) {
            int v = __atomic_load_n(&ctid, __ATOMIC_SEQ_CST);
            if (v == 0)
                break;
            long r = futex(&ctid, FUTEX_WAIT, v, NULL, NULL, 0);
            if (r < 0 && r != -EAGAIN && r != -EINTR) {
                say("futex wait on ctid: %s", ename(r));
                return;
            }
        }
        say("raw clone %d: ptid == returned tid: %s, child wrote %d, ctid cleared", round,
            ptid == tid ? "yes" : "no", shared_word);
    }
    // Without CLONE_CHILD_CLEARTID nobody clears it: set_tid_address does the same for self.
    static int mine = 5;
    long r = rsys(SYS_set_tid_address, &mine, 0, 0, 0, 0, 0);
    say("set_tid_address returns the caller's tid: %s",
        r == rsys(SYS_gettid, 0, 0, 0, 0, 0, 0) ? "yes" : "no");
    munmap(stack, sz);
}

int main(void) {
    distinct_tids();
    signals();
    cleartid();
    say("done");
    return 0;
}
