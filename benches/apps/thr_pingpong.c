// thr_pingpong N: N round trips between two threads through raw private futex WAIT/WAKE.
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int word;
static long rounds;

static void futex(int op, int val) { syscall(SYS_futex, &word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0); }

static void *pong(void *p) {
    for (long i = 0; i < rounds; i++) {
        while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
            futex(FUTEX_WAIT, 0);
        __atomic_store_n(&word, 0, __ATOMIC_RELEASE);
        futex(FUTEX_WAKE, 1);
    }
    return p;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 10000;
    pthread_t t;
    if (pthread_create(&t, NULL, pong, NULL) != 0)
        return 1;
    for (long i = 0; i < rounds; i++) {
        __atomic_store_n(&word, 1, __ATOMIC_RELEASE);
        futex(FUTEX_WAKE, 1);
        while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 1)
            futex(FUTEX_WAIT, 1);
    }
    pthread_join(t, NULL);
    return 0;
}
