// How threads end, one mode per run (argv[1]); the test compares stdout and the exit status with
// Linux:
//   thread-exit  a thread's exit(2) syscall ends only that thread; the process goes on (exit 0).
//   leader-exit  the main thread's exit(2) while a worker runs: the worker goes on, prints, and
//                exits 9; the process's status is the last thread's (9), as Linux reports it.
//   main-pthread-exit  main calls pthread_exit; the last thread's return ends the process (0).
//   exit-group   a worker calls exit_group(4) while main is blocked in pthread_join and others
//                wait on a futex: every thread ends, status 4, nothing printed after.
//   blocked      threads blocked in read() on stdin (kept open, never written), futex wait,
//                nanosleep and poll; another thread's exit_group(6) ends them all.
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "say.h"
#include "thr.h"

static void sys_exit(int code) {
    for (;;)
        rsys(SYS_exit, code, 0, 0, 0, 0, 0);
}

static void sys_exit_group(int code) {
    for (;;)
        rsys(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

// A raw thread, not a pthread: the C libraries' pthread_join does not all survive a thread that
// skips pthread_exit (musl waits for a word only its own exit path clears).
static int exits_3(void *p) {
    static const char line[] = "worker: exit(3) ends only me\n";
    (void)p;
    rsys(SYS_write, 1, line, sizeof line - 1, 0, 0, 0);
    sys_exit(3);
    return 0;
}

static void thread_exit(void) {
    static char stack[64 * 1024] __attribute__((aligned(16)));
    static int ctid = 1;
    long tid = raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID, stack + sizeof stack, NULL, &ctid, 0,
                         exits_3, NULL);
    if (tid < 0) {
        say("clone: %s", ename(tid));
        return;
    }
    while (__atomic_load_n(&ctid, __ATOMIC_SEQ_CST) != 0)
        futex6(&ctid, FUTEX_WAIT, 1, NULL, NULL, 0);
    say("main: still here after the worker's exit(3)");
}

static volatile int leader_gone;
static void *outlives_leader(void *p) {
    (void)p;
    // The leader cannot be joined: give it time to be gone, then show the process goes on.
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    say("worker: the main thread is gone, I still run");
    sys_exit(9);
    return NULL;
}

static void leader_exit(void) {
    pthread_t t;
    thr_create(&t, NULL, outlives_leader, NULL);
    say("main: exit(5) ends only the main thread");
    sys_exit(5);
}

static void *last_one(void *p) {
    (void)p;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    say("worker: main called pthread_exit; returning ends the process");
    return NULL;
}

static void main_pthread_exit(void) {
    pthread_t t;
    thr_create(&t, NULL, last_one, NULL);
    say("main: pthread_exit");
    pthread_exit(NULL);
}

static int never;
static void *waits_forever(void *p) {
    (void)p;
    for (;;)
        futex6(&never, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0);
    return NULL;
}

static void *group_exits(void *p) {
    (void)p;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    say("worker: exit_group(4)");
    sys_exit_group(4);
    return NULL;
}

static void exit_group(void) {
    pthread_t a, b, c;
    thr_create(&a, NULL, waits_forever, NULL);
    thr_create(&b, NULL, waits_forever, NULL);
    thr_create(&c, NULL, group_exits, NULL);
    pthread_join(a, NULL);
    say("FAIL main: pthread_join returned");
}

static volatile int announced;
static void announce(int i, const char *what) {
    say("blocker %d: %s", i, what);
    __atomic_store_n(&announced, i + 1, __ATOMIC_SEQ_CST);
}

static void *blocker(void *p) {
    int i = (int)(uintptr_t)p;
    long r;
    switch (i) {
    case 0: {
        char buf[16];
        announce(i, "read(0)");
        r = read(0, buf, sizeof buf);
        say("FAIL read(0) returned %ld", r);
        break;
    }
    case 1:
        announce(i, "futex wait");
        waits_forever(NULL);
        break;
    case 2: {
        struct timespec ts = {1000, 0};
        announce(i, "nanosleep 1000 s");
        nanosleep(&ts, NULL);
        say("FAIL nanosleep returned");
        break;
    }
    case 3: {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        announce(i, "poll(stdin, no timeout)");
        r = poll(&pfd, 1, -1);
        say("FAIL poll returned %ld", r);
        break;
    }
    }
    return NULL;
}

static void *ender(void *p) {
    (void)p;
    // No way to see that the others are asleep in the kernel: give them time to get there.
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    say("ender: exit_group(6)");
    sys_exit_group(6);
    return NULL;
}

static void blocked(void) {
    pthread_t t[4], e;
    for (int i = 0; i < 4; i++) {
        thr_create(&t[i], NULL, blocker, (void *)(uintptr_t)i);
        while (__atomic_load_n(&announced, __ATOMIC_SEQ_CST) != i + 1)
            sched_yield();
    }
    thr_create(&e, NULL, ender, NULL);
    pthread_join(e, NULL);
    say("FAIL main: ender returned");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "thread-exit"))
        thread_exit();
    else if (!strcmp(mode, "leader-exit"))
        leader_exit();
    else if (!strcmp(mode, "main-pthread-exit"))
        main_pthread_exit();
    else if (!strcmp(mode, "exit-group"))
        exit_group();
    else if (!strcmp(mode, "blocked"))
        blocked();
    else {
        say("usage: thr_exit thread-exit|leader-exit|main-pthread-exit|exit-group|blocked");
        return 2;
    }
    return 0;
}
