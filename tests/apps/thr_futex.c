// Raw futex syscalls between threads: a WAIT/WAKE ping-pong (shared and PRIVATE), EAGAIN on a
// value mismatch, relative timeouts, WAIT_BITSET with absolute CLOCK_MONOTONIC and
// CLOCK_REALTIME deadlines, WAKE_BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP, and the PI operations
// (raw and through a PTHREAD_PRIO_INHERIT mutex). Waiters are counted with REQUEUE (it returns
// how many it moved), so every count printed is exact, not a matter of timing.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "say.h"
#include "thr.h"

#define PRIV FUTEX_PRIVATE_FLAG
/* Kept small: on a loaded 2-core host even the native run's ping-pong and PI contention have
 * taken over the test's 120 s (seen twice), each round needing both threads scheduled. */
#define ROUNDS 2000

static int word;

struct pp {
    int *w;
    int priv;
};

static void *pong(void *p) {
    struct pp *a = p;
    for (int i = 0; i < ROUNDS; i++) {
        while (__atomic_load_n(a->w, __ATOMIC_ACQUIRE) == 0)
            futex6(a->w, FUTEX_WAIT | a->priv, 0, NULL, NULL, 0);
        __atomic_store_n(a->w, 0, __ATOMIC_RELEASE);
        futex6(a->w, FUTEX_WAKE | a->priv, 1, NULL, NULL, 0);
    }
    return NULL;
}

static void ping_pong(int priv) {
    struct pp a = {&word, priv};
    word = 0;
    pthread_t t;
    thr_create(&t, NULL, pong, &a);
    int rounds = 0;
    for (int i = 0; i < ROUNDS; i++) {
        __atomic_store_n(&word, 1, __ATOMIC_RELEASE);
        futex6(&word, FUTEX_WAKE | priv, 1, NULL, NULL, 0);
        while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 1)
            futex6(&word, FUTEX_WAIT | priv, 1, NULL, NULL, 0);
        rounds++;
    }
    pthread_join(t, NULL);
    say("ping-pong%s: %d round trips", priv ? " (private)" : "", rounds);
}

static long ns_since(const struct timespec *a, clockid_t c) {
    struct timespec b;
    clock_gettime(c, &b);
    return (b.tv_sec - a->tv_sec) * 1000000000L + (b.tv_nsec - a->tv_nsec);
}

static struct timespec plus_ms(clockid_t c, long ms) {
    struct timespec t;
    clock_gettime(c, &t);
    t.tv_nsec += ms * 1000000L;
    while (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static void timeouts(void) {
    int w = 3;
    say("wait, value differs: %s", ename(futex6(&w, FUTEX_WAIT, 4, NULL, NULL, 0)));
    say("wait private, value differs: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 4, NULL, NULL, 0)));
    say("wake, nobody waiting: %s", ename(futex6(&w, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0)));
    say("wake 0: %s", ename(futex6(&w, FUTEX_WAKE | PRIV, 0, NULL, NULL, 0)));

    struct timespec rel = {0, 20 * 1000 * 1000}, start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long r = futex6(&w, FUTEX_WAIT | PRIV, 3, &rel, NULL, 0);
    say("wait 20 ms relative: %s, not before the timeout: %s", ename(r),
        ns_since(&start, CLOCK_MONOTONIC) >= 20000000L ? "yes" : "no");
    struct timespec zero = {0, 0};
    say("wait zero timeout: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 3, &zero, NULL, 0)));
    struct timespec bad = {0, 1000000000L};
    say("wait tv_nsec 1e9: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 3, &bad, NULL, 0)));
    struct timespec neg = {-1, 0};
    say("wait negative timeout: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 3, &neg, NULL, 0)));
    // Linux refuses CLOCK_REALTIME with plain WAIT (ENOSYS): only the bitset and PI waits take it.
    say("wait CLOCK_REALTIME: %s",
        ename(futex6(&w, FUTEX_WAIT | PRIV | FUTEX_CLOCK_REALTIME, 3, &rel, NULL, 0)));

    struct timespec dl = plus_ms(CLOCK_MONOTONIC, 20);
    r = futex6(&w, FUTEX_WAIT_BITSET | PRIV, 3, &dl, NULL, FUTEX_BITSET_MATCH_ANY);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    say("wait_bitset absolute monotonic +20 ms: %s, not before the deadline: %s", ename(r),
        now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec) ? "yes"
                                                                                         : "no");
    dl = plus_ms(CLOCK_REALTIME, 20);
    r = futex6(&w, FUTEX_WAIT_BITSET | PRIV | FUTEX_CLOCK_REALTIME, 3, &dl, NULL,
               FUTEX_BITSET_MATCH_ANY);
    clock_gettime(CLOCK_REALTIME, &now);
    say("wait_bitset absolute realtime +20 ms: %s, not before the deadline: %s", ename(r),
        now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec) ? "yes"
                                                                                         : "no");
    struct timespec past = {1, 0};
    say("wait_bitset absolute deadline in the past: %s",
        ename(futex6(&w, FUTEX_WAIT_BITSET | PRIV, 3, &past, NULL, FUTEX_BITSET_MATCH_ANY)));
    say("wait_bitset, value differs: %s",
        ename(futex6(&w, FUTEX_WAIT_BITSET | PRIV, 9, &past, NULL, FUTEX_BITSET_MATCH_ANY)));
    say("wait_bitset bitset 0: %s", ename(futex6(&w, FUTEX_WAIT_BITSET | PRIV, 3, &past, NULL, 0)));
    say("wake_bitset bitset 0: %s", ename(futex6(&w, FUTEX_WAKE_BITSET | PRIV, 1, NULL, NULL, 0)));
    say("unknown op 99: %s", ename(futex6(&w, 99 | PRIV, 0, NULL, NULL, 0)));
}

// Waiters for the requeue/wake_op section: wait on *w (value 0) until woken for real.
static int qa, qb, qc, qd, woken;
struct waiter {
    int *w;
    unsigned bits;
};

static void *waiter(void *p) {
    struct waiter *a = p;
    for (;;) {
        long r = futex6(a->w, FUTEX_WAIT_BITSET | PRIV, 0, NULL, NULL, a->bits);
        if (r == 0)
            break;
        if (r != -EAGAIN && r != -EINTR) {
            say("FAIL waiter: %s", ename(r));
            exit(1);
        }
    }
    __atomic_fetch_add(&woken, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

// Moves every waiter from `from` to `to` until `n` have been moved: then all n are asleep on `to`.
static void gather(int *from, int *to, int n) {
    int moved = 0;
    while (moved < n) {
        // FUTEX_REQUEUE takes the requeue count in the timeout slot.
        long r = rsys(SYS_futex, from, FUTEX_REQUEUE | PRIV, 0, INT_MAX, to, 0);
        if (r < 0) {
            say("FAIL requeue: %s", ename(r));
            exit(1);
        }
        moved += (int)r;
        if (moved < n)
            sched_yield();
    }
}

static void requeue(void) {
    enum { N = 8 };
    pthread_t t[N];
    struct waiter a = {&qa, FUTEX_BITSET_MATCH_ANY};
    for (int i = 0; i < N; i++)
        thr_create(&t[i], NULL, waiter, &a);
    gather(&qa, &qb, N);
    say("requeue: %d waiters moved from a to b", N);
    say("wake b 1: %ld", futex6(&qb, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0));
    say("wake b 2: %ld", futex6(&qb, FUTEX_WAKE | PRIV, 2, NULL, NULL, 0));
    say("cmp_requeue b->c, wrong value: %s",
        ename(rsys(SYS_futex, &qb, FUTEX_CMP_REQUEUE | PRIV, 1, 2, &qc, 1)));
    say("cmp_requeue b->c wake 1 move 2: %ld",
        rsys(SYS_futex, &qb, FUTEX_CMP_REQUEUE | PRIV, 1, 2, &qc, 0));
    say("cmp_requeue negative count: %s",
        ename(rsys(SYS_futex, &qb, FUTEX_CMP_REQUEUE | PRIV, -1, 2, &qc, 0)));
    // WAKE_OP: d = 1 (was 0, so the comparison holds), wake 1 on b and 1 on d (nobody there).
    long r = futex6(&qb, FUTEX_WAKE_OP | PRIV, 1, (void *)1, &qd,
                    FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0));
    say("wake_op b, set d=1 if d==0: woke %ld, d=%d", r, qd);
    r = futex6(&qb, FUTEX_WAKE_OP | PRIV, 0, (void *)1, &qd,
               FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_GT, 3));
    // nr_wake 0 still wakes one on Linux (the loop counts before it compares).
    say("wake_op add 5 to d: woke %ld, d=%d", r, qd);
    r = futex6(&qb, FUTEX_WAKE_OP | PRIV, 0, (void *)1, &qd,
               FUTEX_OP(FUTEX_OP_ANDN | 8, 2, FUTEX_OP_CMP_EQ, 64));
    say("wake_op andn 1<<2 (oparg shift): woke %ld, d=%d", r, qd);
    say("wake_op bad op: %s",
        ename(futex6(&qb, FUTEX_WAKE_OP | PRIV, 0, (void *)1, &qd, FUTEX_OP(7, 0, 0, 0))));
    say("wake c all: %ld", futex6(&qc, FUTEX_WAKE | PRIV, INT_MAX, NULL, NULL, 0));
    say("wake b all: %ld", futex6(&qb, FUTEX_WAKE | PRIV, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    say("requeue: %d of %d waiters woke", woken, N);

    // Bitsets: a waiter on bit 0 is not woken by bit 1.
    woken = 0;
    qa = 0;
    struct waiter b = {&qa, 1};
    pthread_t bt;
    thr_create(&bt, NULL, waiter, &b);
    gather(&qa, &qa, 1);
    say("wake_bitset other bit: %ld", futex6(&qa, FUTEX_WAKE_BITSET | PRIV, 1, NULL, NULL, 2));
    say("wake_bitset same bit: %ld", futex6(&qa, FUTEX_WAKE_BITSET | PRIV, 1, NULL, NULL, 1));
    pthread_join(bt, NULL);
    say("bitset waiter woke: %d", woken);
}

static void pi(void) {
    int tid = (int)rsys(SYS_gettid, 0, 0, 0, 0, 0, 0);
    int w = 0;
    long r = futex6(&w, FUTEX_TRYLOCK_PI | PRIV, 0, NULL, NULL, 0);
    say("trylock_pi free: %s, owner is me: %s", ename(r), (w & 0x3fffffff) == tid ? "yes" : "no");
    say("trylock_pi mine: %s", ename(futex6(&w, FUTEX_TRYLOCK_PI | PRIV, 0, NULL, NULL, 0)));
    say("lock_pi mine: %s", ename(futex6(&w, FUTEX_LOCK_PI | PRIV, 0, NULL, NULL, 0)));
    r = futex6(&w, FUTEX_UNLOCK_PI | PRIV, 0, NULL, NULL, 0);
    say("unlock_pi: %s, word %d", ename(r), w);
    say("unlock_pi not mine: %s", ename(futex6(&w, FUTEX_UNLOCK_PI | PRIV, 0, NULL, NULL, 0)));
}

static pthread_mutex_t pim;
static long pi_counter;
static void *pi_add(void *p) {
    (void)p;
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&pim);
        pi_counter++;
        pthread_mutex_unlock(&pim);
    }
    return NULL;
}

static void pi_mutex(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int rc = pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pim, &a);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        thr_create(&t[i], NULL, pi_add, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    say("prio-inherit mutex (setprotocol %s): counter %ld", ename(-rc), pi_counter);
}

int main(void) {
    ping_pong(0);
    ping_pong(PRIV);
    timeouts();
    requeue();
    pi();
    pi_mutex();
    say("done");
    return 0;
}
