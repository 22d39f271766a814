/* Signal handlers as Linux runs them: `sig_handlers MODE`, each mode printing deterministic
 * lines (no addresses) for comparison with the native run. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile int depth, max_depth, calls;
static volatile uint64_t seen_mask;
static char *alt_lo, *alt_hi;
static volatile int on_alt;

static void say(const char *s) { fputs(s, stdout); fflush(stdout); }

static uint64_t cur_mask(void) {
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    uint64_t m = 0;
    for (int i = 1; i < 64; i++)
        if (sigismember(&s, i)) m |= 1ull << (i - 1);
    return m;
}

static void info_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    printf("sig=%d si_signo=%d si_code=%d si_pid_is_self=%d si_uid_is_self=%d\n", sig,
           si->si_signo, si->si_code, si->si_pid == getpid(), si->si_uid == getuid());
    printf("uc_sigmask has SIGUSR2=%d, mask now has SIGUSR1=%d SIGUSR2=%d\n",
           sigismember(&uc->uc_sigmask, SIGUSR2), (cur_mask() >> (SIGUSR1 - 1)) & 1,
           (cur_mask() >> (SIGUSR2 - 1)) & 1);
    printf("rsp%%16=%d fpregs_set=%d\n", (int)((uintptr_t)__builtin_frame_address(0) % 16),
           uc->uc_mcontext.fpregs != NULL);
    calls++;
}

static void plain_handler(int sig) {
    calls++;
    printf("handler %d call %d\n", sig, calls);
    fflush(stdout);
}

static void nest_handler(int sig) {
    depth++;
    if (depth > max_depth) max_depth = depth;
    if (++calls < 3) raise(sig);
    depth--;
}

static void mask_handler(int sig) {
    seen_mask = cur_mask();
    (void)sig;
}

static void xmm_handler(int sig) {
    (void)sig;
    __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpcmpeqd %%xmm1, %%xmm1\n\tpcmpeqd %%xmm7, %%xmm7"
                     ::: "xmm0", "xmm1", "xmm7");
    calls++;
}

static void alt_handler(int sig) {
    char here;
    (void)sig;
    on_alt = &here >= alt_lo && &here < alt_hi;
}

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static void stack_report(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    stack_t o;
    (void)sig;
    (void)si;
    sigaltstack(NULL, &o);
    printf("uc_stack flags %#x size %zu; sigaltstack in the handler: flags %#x size %zu\n",
           (unsigned)uc->uc_stack.ss_flags, uc->uc_stack.ss_size, (unsigned)o.ss_flags,
           o.ss_size);
}

static void landing(void) {
    say("landed where the handler pointed uc_mcontext's rip\n");
    _exit(0);
}

static void redirect(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig;
    (void)si;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)landing;
    /* A call leaves rsp % 16 == 8 at a function's entry. */
    uc->uc_mcontext.gregs[REG_RSP] = (uc->uc_mcontext.gregs[REG_RSP] & ~15) - 8;
}

static void segv_handler(int sig) {
    (void)sig;
    say("SIGSEGV handler ran\n");
    _exit(3);
}

static void set(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, NULL) != 0) { perror("sigaction"); exit(1); }
}

static unsigned mxcsr_at_entry;
static unsigned get_mxcsr(void) {
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}
static void mxcsr_handler(int sig) {
    (void)sig;
    mxcsr_at_entry = get_mxcsr();
    unsigned m = 0x7f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(m));
}

/* A handler that writes Linux's user code selector (0x33) into the context, as code that
 * builds a context from Linux's constants does; sigreturn must accept it. */
static void set_linux_cs(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    /* gregs[REG_CSGSFS] packs cs, gs, fs and ss, 16 bits each. */
    uc->uc_mcontext.gregs[REG_CSGSFS] = (uc->uc_mcontext.gregs[REG_CSGSFS] & ~0xffffLL) | 0x33;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "info")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = info_handler;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGUSR2);
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        kill(getpid(), SIGUSR1);
        syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
        printf("calls=%d mask after has SIGUSR1=%d SIGUSR2=%d\n", calls,
               (cur_mask() >> (SIGUSR1 - 1)) & 1, (cur_mask() >> (SIGUSR2 - 1)) & 1);
        /* Blocked, then unblocked by sigprocmask: runs on the way out of that call. */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        sigprocmask(SIG_BLOCK, &s, NULL);
        raise(SIGUSR1);
        printf("blocked: calls=%d\n", calls);
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        printf("unblocked: calls=%d\n", calls);
    } else if (!strcmp(mode, "resethand")) {
        set(SIGUSR1, plain_handler, SA_RESETHAND);
        raise(SIGUSR1);
        say("after the first raise\n");
        raise(SIGUSR1);
        say("not reached\n");
    } else if (!strcmp(mode, "nodefer")) {
        set(SIGUSR1, nest_handler, SA_NODEFER);
        raise(SIGUSR1);
        printf("nodefer max depth %d\n", max_depth);
        max_depth = 0;
        calls = 0;
        set(SIGUSR1, nest_handler, 0);
        raise(SIGUSR1);
        printf("deferred max depth %d\n", max_depth);
    } else if (!strcmp(mode, "mask")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = mask_handler;
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGTERM);
        sigaction(SIGUSR2, &sa, NULL);
        uint64_t before = cur_mask();
        raise(SIGUSR2);
        printf("in handler: SIGUSR2=%d SIGTERM=%d SIGINT=%d\n",
               (int)(seen_mask >> (SIGUSR2 - 1)) & 1, (int)(seen_mask >> (SIGTERM - 1)) & 1,
               (int)(seen_mask >> (SIGINT - 1)) & 1);
        printf("restored: %d\n", cur_mask() == before);
    } else if (!strcmp(mode, "xmm")) {
        set(SIGUSR1, xmm_handler, 0);
        uint64_t a = 0x1122334455667788ull, b = 0x99aabbccddeeff00ull, c = 0x0123456789abcdefull;
        uint64_t ra, rb, rc;
        __asm__ volatile(
            "movq %[a], %%xmm0\n\tmovq %[b], %%xmm1\n\tmovq %[c], %%xmm7\n\t"
            "mov %[nr], %%eax\n\tmov %[pid], %%edi\n\tmov %[tid], %%esi\n\tmov %[sig], %%edx\n\t"
            "syscall\n\t"
            "movq %%xmm0, %[ra]\n\tmovq %%xmm1, %[rb]\n\tmovq %%xmm7, %[rc]"
            : [ra] "=r"(ra), [rb] "=r"(rb), [rc] "=r"(rc)
            : [a] "r"(a), [b] "r"(b), [c] "r"(c), [nr] "i"(SYS_tgkill), [pid] "r"(getpid()),
              [tid] "r"(gettid()), [sig] "i"(SIGUSR1)
            : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "xmm0", "xmm1", "xmm7", "memory");
        printf("handler calls %d; xmm0 %s xmm1 %s xmm7 %s\n", calls, ra == a ? "kept" : "LOST",
               rb == b ? "kept" : "LOST", rc == c ? "kept" : "LOST");
    } else if (!strcmp(mode, "mxcsr")) {
        /* A handler starts with MXCSR at its reset value whatever the app set, and the app's
         * MXCSR comes back after sigreturn even if the handler changed it. */
        set(SIGUSR1, mxcsr_handler, 0);
        unsigned m = 0x5f80;
        __asm__ volatile("ldmxcsr %0" ::"m"(m));
        raise(SIGUSR1);
        printf("handler entry %#x, after return %#x\n", mxcsr_at_entry, get_mxcsr());
    } else if (!strcmp(mode, "altstack")) {
        static char stack[65536];
        stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
        alt_lo = stack;
        alt_hi = stack + sizeof stack;
        sigaltstack(&ss, NULL);
        set(SIGUSR1, alt_handler, SA_ONSTACK);
        raise(SIGUSR1);
        printf("SA_ONSTACK: on the alternate stack %d\n", on_alt);
        set(SIGUSR1, alt_handler, 0);
        raise(SIGUSR1);
        printf("without SA_ONSTACK: on the alternate stack %d\n", on_alt);
    } else if (!strcmp(mode, "altstack-flags")) {
        /* What uc_stack and sigaltstack report: none, flags 0, SS_AUTODISARM (disarmed in the
         * handler, re-armed by sigreturn), SS_ONSTACK as given, then disabled. */
        static char st[65536];
        struct sigaction sa;
        stack_t o;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = stack_report;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        stack_t ss = {.ss_sp = st, .ss_size = sizeof st, .ss_flags = 0};
        sigaltstack(&ss, NULL);
        raise(SIGUSR1);
        ss.ss_flags = SS_AUTODISARM;
        sigaltstack(&ss, NULL);
        raise(SIGUSR1);
        sigaltstack(NULL, &o);
        printf("after the handler: flags %#x\n", (unsigned)o.ss_flags);
        ss.ss_flags = SS_ONSTACK;
        sigaltstack(&ss, NULL);
        raise(SIGUSR1);
        ss.ss_flags = SS_DISABLE;
        ss.ss_size = 5;
        sigaltstack(&ss, NULL);
        sigaltstack(NULL, &o);
        printf("disabled: flags %#x size %zu\n", (unsigned)o.ss_flags, o.ss_size);
    } else if (!strcmp(mode, "mcontext-rip")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = redirect;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        say("not reached\n");
    } else if (!strcmp(mode, "linux-cs")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = set_linux_cs;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        printf("returned from a frame with cs 0x33\n");
    } else if (!strcmp(mode, "badhandler")) {
        set(SIGUSR1, (void (*)(int))0x8000000000001000ull, 0);
        say("raise with a handler at a non-canonical address\n");
        raise(SIGUSR1);
        say("not reached\n");
    } else if (!strcmp(mode, "badframe") || !strcmp(mode, "badframe-handled")) {
        if (!strcmp(mode, "badframe-handled")) set(SIGSEGV, segv_handler, 0);
        say("sigreturn with a garbage frame\n");
        static uint64_t junk[128];
        for (int i = 0; i < 128; i++) junk[i] = 0xdeadbeefdeadbeefull;
        __asm__ volatile("mov %0, %%rsp\n\tmov %1, %%eax\n\tsyscall" ::"r"(junk + 64),
                         "i"(SYS_rt_sigreturn)
                         : "memory");
        say("not reached\n");
    } else {
        fprintf(stderr, "unknown mode\n");
        return 2;
    }
    return 0;
}
