// simd: checks that the vector registers survive system calls, as they do on Linux.
//
// One asm block loads a distinct pattern into xmm0-xmm15 (or, when the CPU and OS have AVX,
// into the full 256-bit ymm0-ymm15), executes several raw `syscall` instructions while those
// registers are live, and stores all registers back. The syscalls are made with the
// instruction itself, not through libc's syscall() wrapper: a C call may legally clobber every
// vector register, so only a syscall inside the asm block proves anything. The syscalls:
//   getpid (39), write(1, buf, 0) (1), clock_gettime(CLOCK_MONOTONIC) (228),
//   sched_yield (24), nanosleep(10 us) (35).
// The round is repeated with different patterns.
//
// Output: "avx=1" or "avx=0" (whether the 256-bit registers were checked), then "simd ok" and
// exit 0; or one line naming the first register that differs (or a syscall that returned a
// wrong value) and exit 1.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NREGS 16
#define ROUNDS 64

struct results {
    int64_t getpid, write, clock_gettime, sched_yield, nanosleep;
};

// in/out hold NREGS registers of `width` bytes each (16 for xmm, 32 for ymm).
static void round_trip(int avx, const unsigned char *in, unsigned char *out, struct results *res) {
    struct timespec ts;
    struct timespec req = {0, 10 * 1000};
#define SYSCALLS                                                                               \
    "mov $39, %%eax\n\t"                                                                       \
    "syscall\n\t"                                                                              \
    "mov %%rax, 0(%[res])\n\t"                                                                 \
    "mov $1, %%eax\n\t"                                                                        \
    "mov $1, %%edi\n\t"                                                                        \
    "mov %[in], %%rsi\n\t"                                                                     \
    "xor %%edx, %%edx\n\t"                                                                     \
    "syscall\n\t"                                                                              \
    "mov %%rax, 8(%[res])\n\t"                                                                 \
    "mov $228, %%eax\n\t"                                                                      \
    "mov $1, %%edi\n\t"                                                                        \
    "mov %[ts], %%rsi\n\t"                                                                     \
    "syscall\n\t"                                                                              \
    "mov %%rax, 16(%[res])\n\t"                                                                \
    "mov $24, %%eax\n\t"                                                                       \
    "syscall\n\t"                                                                              \
    "mov %%rax, 24(%[res])\n\t"                                                                \
    "mov $35, %%eax\n\t"                                                                       \
    "mov %[req], %%rdi\n\t"                                                                    \
    "xor %%esi, %%esi\n\t"                                                                     \
    "syscall\n\t"                                                                              \
    "mov %%rax, 32(%[res])\n\t"
    if (avx) {
        __asm__ volatile(
            "vmovdqu 0*32(%[in]), %%ymm0\n\t"
            "vmovdqu 1*32(%[in]), %%ymm1\n\t"
            "vmovdqu 2*32(%[in]), %%ymm2\n\t"
            "vmovdqu 3*32(%[in]), %%ymm3\n\t"
            "vmovdqu 4*32(%[in]), %%ymm4\n\t"
            "vmovdqu 5*32(%[in]), %%ymm5\n\t"
            "vmovdqu 6*32(%[in]), %%ymm6\n\t"
            "vmovdqu 7*32(%[in]), %%ymm7\n\t"
            "vmovdqu 8*32(%[in]), %%ymm8\n\t"
            "vmovdqu 9*32(%[in]), %%ymm9\n\t"
            "vmovdqu 10*32(%[in]), %%ymm10\n\t"
            "vmovdqu 11*32(%[in]), %%ymm11\n\t"
            "vmovdqu 12*32(%[in]), %%ymm12\n\t"
            "vmovdqu 13*32(%[in]), %%ymm13\n\t"
            "vmovdqu 14*32(%[in]), %%ymm14\n\t"
            "vmovdqu 15*32(%[in]), %%ymm15\n\t"
            SYSCALLS
            "vmovdqu %%ymm0, 0*32(%[out])\n\t"
            "vmovdqu %%ymm1, 1*32(%[out])\n\t"
            "vmovdqu %%ymm2, 2*32(%[out])\n\t"
            "vmovdqu %%ymm3, 3*32(%[out])\n\t"
            "vmovdqu %%ymm4, 4*32(%[out])\n\t"
            "vmovdqu %%ymm5, 5*32(%[out])\n\t"
            "vmovdqu %%ymm6, 6*32(%[out])\n\t"
            "vmovdqu %%ymm7, 7*32(%[out])\n\t"
            "vmovdqu %%ymm8, 8*32(%[out])\n\t"
            "vmovdqu %%ymm9, 9*32(%[out])\n\t"
            "vmovdqu %%ymm10, 10*32(%[out])\n\t"
            "vmovdqu %%ymm11, 11*32(%[out])\n\t"
            "vmovdqu %%ymm12, 12*32(%[out])\n\t"
            "vmovdqu %%ymm13, 13*32(%[out])\n\t"
            "vmovdqu %%ymm14, 14*32(%[out])\n\t"
            "vmovdqu %%ymm15, 15*32(%[out])\n\t"
            "vzeroupper\n\t"
            :
            : [in] "r"(in), [out] "r"(out), [res] "r"(res), [ts] "r"(&ts), [req] "r"(&req)
            : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3",
              "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
              "xmm14", "xmm15");
    } else {
        __asm__ volatile(
            "movdqu 0*16(%[in]), %%xmm0\n\t"
            "movdqu 1*16(%[in]), %%xmm1\n\t"
            "movdqu 2*16(%[in]), %%xmm2\n\t"
            "movdqu 3*16(%[in]), %%xmm3\n\t"
            "movdqu 4*16(%[in]), %%xmm4\n\t"
            "movdqu 5*16(%[in]), %%xmm5\n\t"
            "movdqu 6*16(%[in]), %%xmm6\n\t"
            "movdqu 7*16(%[in]), %%xmm7\n\t"
            "movdqu 8*16(%[in]), %%xmm8\n\t"
            "movdqu 9*16(%[in]), %%xmm9\n\t"
            "movdqu 10*16(%[in]), %%xmm10\n\t"
            "movdqu 11*16(%[in]), %%xmm11\n\t"
            "movdqu 12*16(%[in]), %%xmm12\n\t"
            "movdqu 13*16(%[in]), %%xmm13\n\t"
            "movdqu 14*16(%[in]), %%xmm14\n\t"
            "movdqu 15*16(%[in]), %%xmm15\n\t"
            SYSCALLS
            "movdqu %%xmm0, 0*16(%[out])\n\t"
            "movdqu %%xmm1, 1*16(%[out])\n\t"
            "movdqu %%xmm2, 2*16(%[out])\n\t"
            "movdqu %%xmm3, 3*16(%[out])\n\t"
            "movdqu %%xmm4, 4*16(%[out])\n\t"
            "movdqu %%xmm5, 5*16(%[out])\n\t"
            "movdqu %%xmm6, 6*16(%[out])\n\t"
            "movdqu %%xmm7, 7*16(%[out])\n\t"
            "movdqu %%xmm8, 8*16(%[out])\n\t"
            "movdqu %%xmm9, 9*16(%[out])\n\t"
            "movdqu %%xmm10, 10*16(%[out])\n\t"
            "movdqu %%xmm11, 11*16(%[out])\n\t"
            "movdqu %%xmm12, 12*16(%[out])\n\t"
            "movdqu %%xmm13, 13*16(%[out])\n\t"
            "movdqu %%xmm14, 14*16(%[out])\n\t"
            "movdqu %%xmm15, 15*16(%[out])\n\t"
            :
            : [in] "r"(in), [out] "r"(out), [res] "r"(res), [ts] "r"(&ts), [req] "r"(&req)
            : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3",
              "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
              "xmm14", "xmm15");
    }
#undef SYSCALLS
}

int main(void) {
    __builtin_cpu_init();
    // True only when the CPU has AVX *and* the OS enabled the YMM state in XCR0.
    int avx = __builtin_cpu_supports("avx") != 0;
    size_t width = avx ? 32 : 16;
    unsigned char in[NREGS * 32], out[NREGS * 32];
    printf("avx=%d\n", avx);
    fflush(stdout);

    uint64_t seed = 0x243f6a8885a308d3ULL;
    for (int round = 0; round < ROUNDS; round++) {
        // A fresh pseudo-random pattern each round: every byte of every register differs
        // between rounds, so a register restored from an older save is caught too.
        for (size_t k = 0; k < NREGS * width; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            in[k] = (unsigned char)(seed >> 56);
        }
        memset(out, 0, sizeof out);
        struct results res;
        memset(&res, 0x7f, sizeof res);
        round_trip(avx, in, out, &res);

        if (res.getpid <= 0 || res.write != 0 || res.clock_gettime != 0 || res.sched_yield != 0 ||
            res.nanosleep != 0) {
            printf("round %d: syscall results wrong: getpid=%lld write=%lld clock_gettime=%lld "
                   "sched_yield=%lld nanosleep=%lld\n",
                   round, (long long)res.getpid, (long long)res.write,
                   (long long)res.clock_gettime, (long long)res.sched_yield,
                   (long long)res.nanosleep);
            return 1;
        }
        for (int r = 0; r < NREGS; r++) {
            const unsigned char *a = in + r * width, *b = out + r * width;
            if (memcmp(a, b, 16) != 0) {
                printf("round %d: xmm%d differs after syscalls\n", round, r);
                return 1;
            }
            if (avx && memcmp(a + 16, b + 16, 16) != 0) {
                printf("round %d: ymm%d upper half differs after syscalls\n", round, r);
                return 1;
            }
        }
    }
    printf("simd ok\n");
    return 0;
}
