/* A hostile guest against umon's exit-less channel (tests/exitless.rs; umon only: the channel
 * page exists only in umon's address space, at umon_abi::exitless::channel_va(0) for the
 * first thread).
 *   bitmap     claim every call is served and keep the server awake; then calls that block
 *              or change the vCPU (pipe read, nanosleep, mmap, arch_prctl) must still work
 *   spin0      make the stub give up at once: every call falls back, results unchanged
 *   forge      publish made-up requests (bad numbers, bad pointers, states) while no call is
 *              in flight, then make real calls
 *   scribble   a second thread writes random words over the first thread's channel while the
 *              first makes calls: the app may get wrong answers, umon must neither hang nor
 *              crash (the test only looks at how umon ends)
 *   jump       enter the stub with a made-up return address: the app dies of SIGSEGV
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL 0x100200201000UL /* channel_va(0) */
#define STUB 0x100200200000UL    /* stub_page(0): the entry is at offset 0 */
#define CH_STATE 0x00
#define CH_AWAKE 0x04
#define CH_NR 0x08
#define CH_ARGS 0x10
#define CH_SPIN 0x60
#define CH_BITMAP 0x80

static volatile uint32_t *u32at(unsigned long off) { return (volatile uint32_t *)(CHANNEL + off); }
static volatile uint64_t *u64at(unsigned long off) { return (volatile uint64_t *)(CHANNEL + off); }

static long check_calls(long rounds) {
    long bad = 0;
    int p[2];
    if (pipe(p) != 0)
        return 1000;
    for (long i = 0; i < rounds; i++) {
        char c = 'q', d = 0;
        if (syscall(SYS_getpid) != 1 || write(p[1], &c, 1) != 1 || read(p[0], &d, 1) != 1 || d != c)
            bad++;
        struct timespec ts = {0, 1000};
        if (nanosleep(&ts, NULL) != 0)
            bad++;
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            bad++;
        else {
            ((volatile char *)m)[0] = 1;
            munmap(m, 4096);
        }
        unsigned long fs = 0;
        if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) != 0 || fs == 0)
            bad++;
    }
    close(p[0]);
    close(p[1]);
    return bad;
}

static volatile int stop;

static void *scribbler(void *arg) {
    (void)arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    while (!stop) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned long off = (x >> 8) % 0x68 & ~7UL;
        *u64at(off) = x;
        if ((x & 0xff) < 32)
            *u32at(CH_STATE) = (uint32_t)(x >> 32) % 8;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "bitmap";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "bitmap") == 0) {
        for (int i = 0; i < 64; i++)
            *(volatile uint8_t *)(CHANNEL + CH_BITMAP + i) = 0xff;
        *u32at(CH_AWAKE) = 1;
        printf("bitmap: bad %ld\n", check_calls(300));
    } else if (strcmp(mode, "spin0") == 0) {
        *u32at(CH_SPIN) = 0;
        *u32at(CH_AWAKE) = 1;
        printf("spin0: bad %ld\n", check_calls(300));
    } else if (strcmp(mode, "forge") == 0) {
        long bad = 0;
        for (int i = 0; i < 2000; i++) {
            *u64at(CH_NR) = (i % 3 == 0) ? 0xffffffffUL : (i % 3 == 1) ? SYS_write : SYS_fstat;
            *u64at(CH_ARGS) = 1;
            *u64at(CH_ARGS + 8) = (i % 2) ? 0xffff800000000000UL : 8;
            *u64at(CH_ARGS + 16) = 1UL << 40;
            *u32at(CH_STATE) = (uint32_t)(1 + i % 5);
            if (syscall(SYS_getpid) != 1)
                bad++;
        }
        printf("forge: bad %ld, then %ld\n", bad, check_calls(100));
    } else if (strcmp(mode, "scribble") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, scribbler, NULL);
        long odd = 0;
        for (long i = 0; i < 20000; i++)
            if (syscall(SYS_getppid) != 0)
                odd++;
        stop = 1;
        pthread_join(t, NULL);
        printf("scribble: done\n");
    } else if (strcmp(mode, "jump") == 0) {
        /* As if a `syscall` returned to address 16: rcx = 16, r11 = flags, rax = getpid. */
        __asm__ volatile("mov $16, %%rcx\n\tpushfq\n\tpop %%r11\n\tmov $39, %%eax\n\tjmp *%0"
                         :
                         : "r"(STUB)
                         : "rcx", "r11", "rax", "memory");
        printf("jump: came back\n");
    } else {
        return 2;
    }
    return 0;
}
