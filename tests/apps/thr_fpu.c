/* A new thread starts with its creator's FPU control state (Linux's clone copies the FPU
 * registers): MXCSR (SSE rounding, exception masks) and the x87 control word, also on a vCPU
 * (host thread) that ran an earlier thread with other values. */
#include <pthread.h>
#include <stdio.h>

static unsigned get_mxcsr(void) {
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}
static void set_mxcsr(unsigned m) { __asm__ volatile("ldmxcsr %0" ::"m"(m)); }
static unsigned short get_fcw(void) {
    unsigned short w;
    __asm__ volatile("fnstcw %0" : "=m"(w));
    return w;
}
static void set_fcw(unsigned short w) { __asm__ volatile("fldcw %0" ::"m"(w)); }

static void *report(void *arg) {
    printf("%s: thread mxcsr %#x fcw %#x\n", (const char *)arg, get_mxcsr(), get_fcw());
    /* Leave something else behind on this vCPU for the next thread. */
    set_mxcsr(0x7f80);
    set_fcw(0x7f);
    return NULL;
}

static void run(const char *what, unsigned mxcsr, unsigned short fcw) {
    set_mxcsr(mxcsr);
    set_fcw(fcw);
    pthread_t t;
    pthread_create(&t, NULL, report, (void *)what);
    pthread_join(t, NULL);
    printf("%s: creator mxcsr %#x fcw %#x\n", what, get_mxcsr(), get_fcw());
}

int main(void) {
    run("first", 0x5f80, 0x27f);
    run("reused", 0x3f80, 0x37f);
    run("initial", 0x1f80, 0x37f);
    return 0;
}
