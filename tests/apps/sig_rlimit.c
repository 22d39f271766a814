// sig_rlimit: prints the soft and hard RLIMIT_NICE and RLIMIT_RTPRIO (the limits priority
// changes are checked against).
#include <stdio.h>
#include <sys/resource.h>

int main(void) {
    int res[2] = {RLIMIT_NICE, RLIMIT_RTPRIO};
    for (int i = 0; i < 2; i++) {
        struct rlimit r;
        if (getrlimit(res[i], &r) != 0) return 1;
        printf("%d %llu %llu\n", res[i], (unsigned long long)r.rlim_cur,
               (unsigned long long)r.rlim_max);
    }
    return 0;
}
