// thr_create N: creates and joins N threads one after another (each returns at once).
#include <pthread.h>
#include <stdlib.h>

static void *nothing(void *p) { return p; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) != 0)
            return 1;
        pthread_join(t, NULL);
    }
    return 0;
}
