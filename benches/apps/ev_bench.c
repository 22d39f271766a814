/* epoll_wait wake-up latency (benches/events.rs): `ev_bench pingpong N`: two threads, each
 * blocked in epoll_wait on its own eventfd, wake each other N times by writing the other's
 * eventfd. Each round is two wake-ups. Exits 0 when every round went through. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int efd[2], ep[2];
static long rounds;

static int take(int side) {
    struct epoll_event ev;
    if (epoll_wait(ep[side], &ev, 1, -1) != 1)
        return -1;
    uint64_t v;
    return read(efd[side], &v, 8) == 8 ? 0 : -1;
}

static int give(int side) {
    uint64_t v = 1;
    return write(efd[side], &v, 8) == 8 ? 0 : -1;
}

static void *partner(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++)
        if (take(1) || give(0))
            exit(2);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "pingpong"))
        return 1;
    rounds = atol(argv[2]);
    for (int s = 0; s < 2; s++) {
        efd[s] = eventfd(0, 0);
        ep[s] = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN};
        if (efd[s] < 0 || ep[s] < 0 || epoll_ctl(ep[s], EPOLL_CTL_ADD, efd[s], &ev))
            return 3;
    }
    pthread_t t;
    pthread_create(&t, 0, partner, 0);
    for (long i = 0; i < rounds; i++)
        if (give(1) || take(0))
            return 2;
    pthread_join(t, 0);
    return 0;
}
