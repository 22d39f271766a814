// Many threads over time, few at once: 1000 pthreads created and joined in batches of 64 (so at
// most 65 are alive), each computing a value from its index; then 1000 detached-then-waited
// threads through a counter. Thread stacks are reused by the C library, tids are not.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "say.h"

#define TOTAL 1000
#define BATCH 64

static void *work(void *p) {
    uintptr_t i = (uintptr_t)p;
    uintptr_t h = i * 2654435761u;
    for (int k = 0; k < 100; k++)
        h = h * 6364136223846793005u + 1442695040888963407u;
    return (void *)(h >> 40);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int live, finished;

static void *detached(void *p) {
    (void)p;
    pthread_mutex_lock(&lock);
    live--;
    finished++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    unsigned long sum = 0;
    int created = 0;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    for (int base = 0; base < TOTAL; base += BATCH) {
        pthread_t t[BATCH];
        int n = TOTAL - base < BATCH ? TOTAL - base : BATCH;
        for (int i = 0; i < n; i++) {
            int rc = pthread_create(&t[i], &a, work, (void *)(uintptr_t)(base + i));
            if (rc) {
                say("FAIL pthread_create %d: %d", base + i, rc);
                return 1;
            }
            created++;
        }
        for (int i = 0; i < n; i++) {
            void *r;
            pthread_join(t[i], &r);
            sum += (uintptr_t)r;
        }
    }
    say("joined: %d threads, checksum %lu", created, sum);

    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < TOTAL; i++) {
        pthread_mutex_lock(&lock);
        while (live >= BATCH)
            pthread_cond_wait(&cond, &lock);
        live++;
        pthread_mutex_unlock(&lock);
        pthread_t t;
        int rc = pthread_create(&t, &a, detached, NULL);
        if (rc) {
            say("FAIL detached pthread_create %d: %d", i, rc);
            return 1;
        }
    }
    pthread_mutex_lock(&lock);
    while (finished < TOTAL)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    say("detached: %d threads finished", finished);
    pthread_attr_destroy(&a);
    return 0;
}
