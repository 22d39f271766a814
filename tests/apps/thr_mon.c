// What the monitor does around threads (tests/threads_monitor.rs):
//   cpus     the CPUs the app is told it has: sched_getaffinity's count and
//            sysconf(_SC_NPROCESSORS_ONLN), on the main thread and on a second one.
//   trace    a second thread calls getppid(); under --trace its line carries strace -f's
//            "[pid  N] " prefix.
//   hang     three threads wait forever (futex, nanosleep, read on stdin) and main joins them:
//            only umon's --timeout or a signal to umon ends it.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void cpus_line(const char *who) {
    cpu_set_t set;
    CPU_ZERO(&set);
    long r = sched_getaffinity(0, sizeof set, &set);
    printf("%s: sched_getaffinity %ld, %d cpus, nprocessors_onln %ld\n", who, r, CPU_COUNT(&set),
           sysconf(_SC_NPROCESSORS_ONLN));
}

static void *cpus_thread(void *p) {
    (void)p;
    cpus_line("thread");
    return NULL;
}

static void *traced(void *p) {
    (void)p;
    syscall(SYS_getppid);
    return NULL;
}

static int never;
static void *wait_futex(void *p) {
    (void)p;
    syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}
static void *wait_sleep(void *p) {
    (void)p;
    struct timespec t = {100000, 0};
    nanosleep(&t, NULL);
    return NULL;
}
static void *wait_read(void *p) {
    (void)p;
    char c;
    (void)read(0, &c, 1);
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    pthread_t t[3];
    if (!strcmp(mode, "cpus")) {
        cpus_line("main");
        pthread_create(&t[0], NULL, cpus_thread, NULL);
        pthread_join(t[0], NULL);
    } else if (!strcmp(mode, "trace")) {
        pthread_create(&t[0], NULL, traced, NULL);
        pthread_join(t[0], NULL);
    } else if (!strcmp(mode, "hang")) {
        void *(*fns[3])(void *) = {wait_futex, wait_sleep, wait_read};
        for (int i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, fns[i], NULL);
        printf("waiting\n");
        fflush(stdout);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
    } else {
        printf("usage: thr_mon cpus|trace|hang\n");
        return 2;
    }
    return 0;
}
