// sig_bench MODE N: signal round trips for benches/signal.rs; exits 1 if a count is wrong.
//   raise     N times tgkill(self, SIGUSR1) -> handler -> rt_sigreturn (raise() without glibc's
//             extra mask calls, so each round is the signal path alone: 2 syscalls + a frame).
//   pingpong  N round trips between two threads: main tgkills the other thread (SIGUSR1), which
//             takes it with sigwaitinfo and tgkills main back (SIGUSR2), taken the same way.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile long count;
static long rounds;
static pid_t pid, main_tid;
static volatile pid_t other_tid;

static void on_usr1(int sig) {
    (void)sig;
    count++;
}

static void send(pid_t tid, int sig) { syscall(SYS_tgkill, pid, tid, sig); }

static void *pong(void *p) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    __atomic_store_n(&other_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    for (long i = 0; i < rounds; i++) {
        if (sigwaitinfo(&s, 0) != SIGUSR1)
            exit(1);
        send(main_tid, SIGUSR2);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    rounds = atol(argv[2]);
    pid = getpid();
    main_tid = (pid_t)syscall(SYS_gettid);
    if (!strcmp(argv[1], "raise")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, 0);
        for (long i = 0; i < rounds; i++)
            send(main_tid, SIGUSR1);
        return count == rounds ? 0 : 1;
    }
    if (!strcmp(argv[1], "pingpong")) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        sigaddset(&s, SIGUSR2);
        sigprocmask(SIG_BLOCK, &s, 0);
        sigdelset(&s, SIGUSR1);
        pthread_t t;
        if (pthread_create(&t, 0, pong, 0))
            return 1;
        while (!__atomic_load_n(&other_tid, __ATOMIC_SEQ_CST))
            sched_yield();
        for (long i = 0; i < rounds; i++) {
            send(other_tid, SIGUSR1);
            if (sigwaitinfo(&s, 0) != SIGUSR2)
                return 1;
        }
        pthread_join(t, 0);
        return 0;
    }
    return 2;
}
