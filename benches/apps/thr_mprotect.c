// thr_mprotect N T: N mprotect round trips (PROT_NONE, then read-write, with a store after
// each) on one touched page, while T-1 other threads spin in guest code on their own memory
// (each takeaway then has to reach their vCPUs: a TLB shootdown under umon, IPIs on Linux).
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

static volatile int stop;

static void *spinner(void *p) {
    volatile long x = 0;
    while (!stop)
        x++;
    return p;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t t[64];
    for (int i = 1; i < threads && i < 64; i++)
        if (pthread_create(&t[i], NULL, spinner, NULL) != 0)
            return 1;
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    p[0] = 1;
    for (long i = 0; i < n; i++) {
        if (mprotect(p, 4096, PROT_NONE) != 0 || mprotect(p, 4096, PROT_READ | PROT_WRITE) != 0)
            return 1;
        p[0] = (char)i;
    }
    stop = 1;
    for (int i = 1; i < threads && i < 64; i++)
        pthread_join(t[i], NULL);
    return 0;
}
