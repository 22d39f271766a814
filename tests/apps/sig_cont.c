// sig_cont [N]: stops itself with kill(getpid(), SIGSTOP) N times (1 if not given) once it said
// "ready"; whoever continues it (SIGCONT from outside) runs its SIGCONT handler before kill
// returns (Linux runs the handler as the process goes on; a SIGCONT sent before the stop was
// made either ran it already or was discarded by the stop, and the next one resumes it). It
// prints "resumed cont=1" if the handler ran in every round (cont=0 if one round missed it),
// and exits 0.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t conts;

static void on_cont(int sig) {
    (void)sig;
    conts = 1;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    if (sigaction(SIGCONT, &sa, NULL) != 0) return 2;
    printf("ready\n");
    fflush(stdout);
    int every = 1;
    for (int i = 0; i < rounds; i++) {
        conts = 0;
        if (kill(getpid(), SIGSTOP) != 0) return 3;
        if (!conts) every = 0;
    }
    printf("resumed cont=%d\n", every);
    return 0;
}
