// The AVX state across a signal handler, on a CPU with AVX: ymm0 holds a pattern in both
// halves across a `syscall` that sends this thread SIGUSR1; the handler finds the upper half
// in its frame's XSAVE area, rewrites it there, and clobbers ymm0 itself; after sigreturn
// ymm0 must hold the frame's (rewritten) upper half and the untouched lower half, as on
// Linux. Prints what it saw; the exit status is 0 either way (the test compares with Linux).
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define PATTERN 0x1122334455667788ull
#define REWRITTEN 0x99aabbccddeeff00ull
// The YMM_Hi128 component's offset in the standard-format XSAVE area (CPUID 0xd.2 EBX).
static unsigned ymm_hi_offset;
static int frame_has_avx;
static uint64_t frame_upper;

static void handler(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    // The software-reserved bytes of the fxsave area: magic1, extended size, xfeatures.
    uint32_t magic1;
    uint64_t xfeatures;
    memcpy(&magic1, fp + 464, 4);
    memcpy(&xfeatures, fp + 472, 8);
    frame_has_avx = magic1 == 0x46505853u && (xfeatures & 4) != 0;
    if (frame_has_avx) {
        memcpy(&frame_upper, fp + ymm_hi_offset, 8);
        uint64_t v = REWRITTEN;
        memcpy(fp + ymm_hi_offset, &v, 8);
    }
    static const uint64_t clobber = 0x5555555555555555ull;
    __asm__ volatile("vbroadcastsd (%0), %%ymm0" : : "r"(&clobber) : "xmm0");
}

int main(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27)) || !(c & (1u << 28))) {
        printf("no AVX\n");
        return 0;
    }
    __cpuid_count(0xd, 2, a, b, c, d);
    ymm_hi_offset = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    long pid = getpid(), tid = syscall(SYS_gettid);
    uint64_t pattern = PATTERN, out[4];
    long ret;
    __asm__ volatile("vbroadcastsd (%[p]), %%ymm0\n"
                     "syscall\n"
                     "vmovdqu %%ymm0, (%[o])\n"
                     : "=a"(ret)
                     : "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR1),
                       [p] "r"(&pattern), [o] "r"(out)
                     : "rcx", "r11", "xmm0", "memory");
    printf("tgkill: %ld\n", ret);
    printf("frame has the AVX state: %s\n", frame_has_avx ? "yes" : "no");
    printf("upper half in the frame: %s\n", frame_upper == PATTERN ? "the pattern" : "other");
    printf("lower half after sigreturn: %s\n",
           out[0] == PATTERN && out[1] == PATTERN ? "kept" : "lost");
    printf("upper half after sigreturn: %s\n",
           out[2] == REWRITTEN ? "the frame's"
           : out[2] == PATTERN ? "the old one, the frame ignored"
           : out[2] == 0       ? "zero"
                               : "other");
    return 0;
}
