// pthreads, the C library's way: create/join with return values, detached threads, a mutex
// counter, a condvar producer/consumer queue, an rwlock, a barrier, semaphores. Every line is
// deterministic (joins order the output), so stdout compares byte for byte with Linux.
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "say.h"
#include "thr.h"

#define N 8
#define ROUNDS 20000

static void check(int rc, const char *what) {
    if (rc != 0) {
        say("FAIL %s: %d", what, rc);
        exit(1);
    }
}

static void *square(void *p) {
    uintptr_t v = (uintptr_t)p;
    return (void *)(v * v);
}

static void create_join(void) {
    pthread_t t[N];
    for (uintptr_t i = 0; i < N; i++)
        check(pthread_create(&t[i], NULL, square, (void *)i), "pthread_create");
    uintptr_t sum = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        check(pthread_join(t[i], &r), "pthread_join");
        sum += (uintptr_t)r;
    }
    say("create/join: %d threads, sum of squares %lu", N, (unsigned long)sum);
    // Attributes: a small explicit stack and a thread that returns through pthread_exit.
    pthread_attr_t a;
    check(pthread_attr_init(&a), "attr_init");
    check(pthread_attr_setstacksize(&a, 64 * 1024), "setstacksize");
    pthread_t s;
    check(pthread_create(&s, &a, square, (void *)12), "create small stack");
    void *r;
    check(pthread_join(s, &r), "join small stack");
    pthread_attr_destroy(&a);
    say("small stack: %lu", (unsigned long)(uintptr_t)r);
}

static sem_t detached_done;
static int detached_seen[N];

static void *detached(void *p) {
    detached_seen[(uintptr_t)p] = 1;
    sem_post(&detached_done);
    return NULL;
}

static void detach(void) {
    check(sem_init(&detached_done, 0, 0), "sem_init");
    for (uintptr_t i = 0; i < N; i++) {
        pthread_t t;
        check(pthread_create(&t, NULL, detached, (void *)i), "create detached");
        check(pthread_detach(t), "pthread_detach");
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    check(pthread_create(&t, &a, detached, (void *)0), "create with detached attr");
    pthread_attr_destroy(&a);
    for (int i = 0; i < N + 1; i++)
        while (sem_wait(&detached_done) != 0) {
        }
    int seen = 0;
    for (int i = 0; i < N; i++)
        seen += detached_seen[i];
    say("detach: %d of %d detached threads ran", seen, N);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *add(void *p) {
    (void)p;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void mutex(void) {
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        check(pthread_create(&t[i], NULL, add, NULL), "create adder");
    for (int i = 0; i < N; i++)
        check(pthread_join(t[i], NULL), "join adder");
    say("mutex: counter %ld (expected %d)", counter, N * ROUNDS);
    pthread_mutex_lock(&lock);
    say("mutex: trylock while held: %s", ename(-pthread_mutex_trylock(&lock)));
    pthread_mutex_unlock(&lock);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    pthread_mutex_init(&ec, &ma);
    pthread_mutex_lock(&ec);
    say("mutex: errorcheck relock: %s", ename(-pthread_mutex_lock(&ec)));
    pthread_mutex_unlock(&ec);
    say("mutex: errorcheck unlock unowned: %s", ename(-pthread_mutex_unlock(&ec)));
}

#define QCAP 4
#define ITEMS 5000
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static int queue[QCAP], qhead, qlen;

static void *producer(void *p) {
    int base = (int)(uintptr_t)p * ITEMS;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&qlock);
        while (qlen == QCAP)
            pthread_cond_wait(&not_full, &qlock);
        queue[(qhead + qlen++) % QCAP] = base + i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qlock);
    }
    return NULL;
}

static void *consumer(void *p) {
    long sum = 0;
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&qlock);
        while (qlen == 0)
            pthread_cond_wait(&not_empty, &qlock);
        sum += queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qlock);
    }
    *(long *)p = sum;
    return NULL;
}

static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static pthread_cond_t bcast = PTHREAD_COND_INITIALIZER;
static int go_flag, waiting, woke;

static void *waiter(void *p) {
    (void)p;
    pthread_mutex_lock(&qlock);
    waiting++;
    pthread_cond_signal(&all_waiting);
    while (!go_flag)
        pthread_cond_wait(&bcast, &qlock);
    woke++;
    pthread_mutex_unlock(&qlock);
    return NULL;
}

static void condvar(void) {
    pthread_t prod[2], cons[2];
    long sums[2];
    for (int i = 0; i < 2; i++) {
        check(pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)i), "create producer");
        check(pthread_create(&cons[i], NULL, consumer, &sums[i]), "create consumer");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(prod[i], NULL);
        pthread_join(cons[i], NULL);
    }
    say("condvar: consumed total %ld", sums[0] + sums[1]);

    // Broadcast: every waiter, all of them asleep on the condvar first, wakes.
    pthread_t w[N];
    for (int i = 0; i < N; i++)
        check(pthread_create(&w[i], NULL, waiter, NULL), "create waiter");
    pthread_mutex_lock(&qlock);
    while (waiting < N)
        pthread_cond_wait(&all_waiting, &qlock);
    go_flag = 1;
    pthread_cond_broadcast(&bcast);
    pthread_mutex_unlock(&qlock);
    for (int i = 0; i < N; i++)
        pthread_join(w[i], NULL);
    say("condvar: broadcast woke %d of %d waiters", woke, N);

    // A timed wait with nothing to wait for times out.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&qlock);
    int rc = pthread_cond_timedwait(&not_full, &qlock, &ts);
    pthread_mutex_unlock(&qlock);
    say("condvar: timedwait with no signal: %s", ename(-rc));
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long table[16];

static void *rw_writer(void *p) {
    (void)p;
    for (int i = 0; i < ROUNDS / 10; i++) {
        pthread_rwlock_wrlock(&rw);
        for (int j = 0; j < 16; j++)
            table[j]++;
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static void *rw_reader(void *p) {
    long torn = 0;
    for (int i = 0; i < ROUNDS / 10; i++) {
        pthread_rwlock_rdlock(&rw);
        for (int j = 1; j < 16; j++)
            torn += table[j] != table[0];
        pthread_rwlock_unlock(&rw);
    }
    *(long *)p = torn;
    return NULL;
}

static void rwlock(void) {
    pthread_t wr[2], rd[4];
    long torn[4];
    for (int i = 0; i < 2; i++)
        check(pthread_create(&wr[i], NULL, rw_writer, NULL), "create writer");
    for (int i = 0; i < 4; i++)
        check(pthread_create(&rd[i], NULL, rw_reader, &torn[i]), "create reader");
    long t = 0;
    for (int i = 0; i < 2; i++)
        pthread_join(wr[i], NULL);
    for (int i = 0; i < 4; i++) {
        pthread_join(rd[i], NULL);
        t += torn[i];
    }
    say("rwlock: table[0]=%ld table[15]=%ld, torn reads %ld", table[0], table[15], t);
    pthread_rwlock_rdlock(&rw);
    say("rwlock: tryrdlock under a reader: %s", ename(-pthread_rwlock_tryrdlock(&rw)));
    pthread_rwlock_unlock(&rw);
    say("rwlock: trywrlock under a reader: %s", ename(-pthread_rwlock_trywrlock(&rw)));
    pthread_rwlock_unlock(&rw);
}

static pthread_barrier_t bar;
static int phase_count[3];

static void *barrier_worker(void *p) {
    long serial = 0;
    for (int ph = 0; ph < 3; ph++) {
        __atomic_fetch_add(&phase_count[ph], 1, __ATOMIC_SEQ_CST);
        int rc = pthread_barrier_wait(&bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            serial++;
        // Everyone passed the barrier: the phase is complete for all.
        if (__atomic_load_n(&phase_count[ph], __ATOMIC_SEQ_CST) != N)
            serial += 1000;
    }
    *(long *)p = serial;
    return NULL;
}

static void barrier(void) {
    check(pthread_barrier_init(&bar, NULL, N), "barrier_init");
    pthread_t t[N];
    long serial[N];
    for (int i = 0; i < N; i++)
        check(pthread_create(&t[i], NULL, barrier_worker, &serial[i]), "create barrier worker");
    long s = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        s += serial[i];
    }
    pthread_barrier_destroy(&bar);
    say("barrier: 3 phases of %d threads, serial threads %ld (expected 3)", N, s);
}

static sem_t ping, pong;
static void *ponger(void *p) {
    (void)p;
    for (int i = 0; i < 1000; i++) {
        sem_wait(&ping);
        sem_post(&pong);
    }
    return NULL;
}

static void semaphores(void) {
    sem_init(&ping, 0, 0);
    sem_init(&pong, 0, 0);
    pthread_t t;
    check(pthread_create(&t, NULL, ponger, NULL), "create ponger");
    for (int i = 0; i < 1000; i++) {
        sem_post(&ping);
        sem_wait(&pong);
    }
    pthread_join(t, NULL);
    int v;
    sem_getvalue(&pong, &v);
    say("semaphore: 1000 round trips, value %d, trywait %s", v,
        sem_trywait(&pong) == -1 ? "fails" : "?");
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void once_fn(void) { once_runs++; }
static void *call_once(void *p) {
    (void)p;
    pthread_once(&once, once_fn);
    return NULL;
}

static void once_test(void) {
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, call_once, NULL);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    say("once: ran %d time(s)", once_runs);
}

int main(void) {
    create_join();
    detach();
    mutex();
    condvar();
    rwlock();
    barrier();
    semaphores();
    once_test();
    say("done");
    return 0;
}
