/* argv[1] getppid calls (the cheapest forwarded syscall), then an optional sleep of argv[2]
 * milliseconds: the cost of a call with no work behind it, and an idle guest after a burst. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    long ms = argc > 2 ? atol(argv[2]) : 0;
    for (long i = 0; i < n; i++)
        if (syscall(SYS_getppid) < 0)
            return 1;
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}
