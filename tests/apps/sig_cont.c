// sig_cont: stops itself with kill(getpid(), SIGSTOP) once it said "ready"; whoever continues
// it (SIGCONT from outside) lets it print "resumed cont=N", N the runs of its SIGCONT handler
// by then (Linux runs the handler as the process goes on, before kill returns), and exit 0.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t conts;

static void on_cont(int sig) {
    (void)sig;
    conts = 1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    if (sigaction(SIGCONT, &sa, NULL) != 0) return 2;
    printf("ready\n");
    fflush(stdout);
    if (kill(getpid(), SIGSTOP) != 0) return 3;
    printf("resumed cont=%d\n", (int)conts);
    return 0;
}
