// thr_spin THREADS ROUNDS: ROUNDS iterations of a CPU-bound loop split over THREADS threads, no
// syscalls while they run; exits 0 (the sum goes nowhere but is kept alive).
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static long per_thread;
static volatile uint64_t sink;

static void *spin(void *p) {
    uint64_t x = (uintptr_t)p + 1;
    for (long i = 0; i < per_thread; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    sink += x;
    return NULL;
}

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 1;
    long rounds = argc > 2 ? atol(argv[2]) : 100000000;
    if (threads < 1 || threads > 1024)
        return 2;
    per_thread = rounds / threads;
    pthread_t t[1024];
    for (long i = 1; i < threads; i++)
        if (pthread_create(&t[i], NULL, spin, (void *)(uintptr_t)i) != 0)
            return 1;
    spin(NULL);
    for (long i = 1; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
