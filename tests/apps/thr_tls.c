// Thread-local storage: __thread variables (initialised and zeroed) are per thread, and
// pthread_key_create destructors run at thread exit with each thread's own value, repeatedly
// while values remain (up to PTHREAD_DESTRUCTOR_ITERATIONS), and not for the main thread's exit
// path through return from main.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "say.h"

#define N 6

static __thread long tls_init = 1000;
static __thread long tls_zero;
static __thread char tls_buf[256];

static pthread_key_t key, key2;
static long destructed[N + 1];
static int reinstalls, second;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void destructor(void *v) {
    uintptr_t i = (uintptr_t)v;
    pthread_mutex_lock(&lock);
    destructed[i - 1]++;
    pthread_mutex_unlock(&lock);
}

// Sets its key again once, so destructors run a second round for this key.
static void destructor2(void *v) {
    pthread_mutex_lock(&lock);
    if ((uintptr_t)v == 1) {
        reinstalls++;
        pthread_mutex_unlock(&lock);
        pthread_setspecific(key2, (void *)2);
        return;
    }
    second++;
    pthread_mutex_unlock(&lock);
}

static void *worker(void *p) {
    uintptr_t i = (uintptr_t)p;
    long bad = 0;
    bad += tls_init != 1000;
    bad += tls_zero != 0;
    for (size_t j = 0; j < sizeof tls_buf; j++)
        bad += tls_buf[j] != 0;
    // Different values in every thread, checked after every thread has written its own.
    tls_init += (long)i;
    tls_zero = (long)i * 7;
    snprintf(tls_buf, sizeof tls_buf, "thread %lu", (unsigned long)i);
    pthread_setspecific(key, (void *)(i + 1));
    pthread_setspecific(key2, (void *)1);
    for (int k = 0; k < 1000; k++)
        sched_yield();
    char want[256];
    snprintf(want, sizeof want, "thread %lu", (unsigned long)i);
    bad += tls_init != 1000 + (long)i;
    bad += tls_zero != (long)i * 7;
    bad += strcmp(tls_buf, want) != 0;
    bad += (uintptr_t)pthread_getspecific(key) != i + 1;
    return (void *)bad;
}

int main(void) {
    if (pthread_key_create(&key, destructor) || pthread_key_create(&key2, destructor2)) {
        say("FAIL pthread_key_create");
        return 1;
    }
    tls_init = 5;
    tls_zero = 6;
    strcpy(tls_buf, "main");
    pthread_t t[N];
    for (uintptr_t i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) {
            say("FAIL pthread_create");
            return 1;
        }
    long bad = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)(uintptr_t)r;
    }
    say("tls: %d threads, wrong values seen %ld", N, bad);
    say("tls: main still has %ld %ld %s", tls_init, tls_zero, tls_buf);
    long d = 0, once = 0;
    for (int i = 0; i < N; i++) {
        d += destructed[i];
        once += destructed[i] == 1;
    }
    say("keys: destructor calls %ld, threads with exactly one %ld", d, once);
    say("keys: destructor re-set its key in %d threads, second round ran in %d", reinstalls, second);
    say("keys: main's value %lu", (unsigned long)(uintptr_t)pthread_getspecific(key));
    pthread_key_delete(key);
    pthread_key_delete(key2);
    say("done");
    return 0;
}
