/* Synchronous faults delivered to handlers, as Linux delivers them: `sig_fault MODE`. Each mode
 * prints deterministic lines (addresses only relative to labels in the code) for comparison
 * with the native run. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "say.h"

/* Faults on purpose: the overflow and the wild stores are the point. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"
#pragma GCC diagnostic ignored "-Warray-bounds"

static sigjmp_buf env;
static volatile long count;
static char *alt_lo, *alt_hi;

/* Code labels the handlers compare rip and si_addr with. */
extern char int3_after[], ud2_at[], ud2_after[], div_at[], div_after[], regs_at[];

static void on(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        say("FAIL sigaction %d", sig);
        _exit(2);
    }
}

static void frame(const char *what, int sig, siginfo_t *si, ucontext_t *uc) {
    greg_t *g = uc->uc_mcontext.gregs;
    unsigned long long cr2 = (unsigned long long)g[REG_CR2];
    /* A page fault's address is only comparable below the first page; else relative. */
    char where[64];
    if (cr2 < 4096)
        snprintf(where, sizeof where, "cr2=%#llx", cr2);
    else
        snprintf(where, sizeof where, "cr2==si_addr %d", cr2 == (unsigned long long)si->si_addr);
    say("%s: sig=%d si_signo=%d si_code=%d si_errno=%d trapno=%lld err=%lld %s", what, sig,
        si->si_signo, si->si_code, si->si_errno, (long long)g[REG_TRAPNO], (long long)g[REG_ERR],
        where);
}

/* null: a write to address 0, caught and left with siglongjmp, 1000 times. */
static void null_handler(int sig, siginfo_t *si, void *uc) {
    if (count == 0) {
        frame("null", sig, si, uc);
        say("si_addr=%p", si->si_addr);
    }
    count++;
    siglongjmp(env, 1);
}

static void mode_null(void) {
    on(SIGSEGV, null_handler, 0);
    for (int i = 0; i < 1000; i++) {
        if (sigsetjmp(env, 1) == 0) {
            *(volatile int *)(uintptr_t)0 = i;
            say("FAIL no fault");
        }
    }
    say("caught %ld faults", count);
}

/* prot: a write to a page mprotect made read-only. */
static char *prot_page;
static void prot_handler(int sig, siginfo_t *si, void *uc) {
    frame("prot", sig, si, uc);
    say("si_addr is the page: %d", (char *)si->si_addr == prot_page);
    siglongjmp(env, 1);
}

static void mode_prot(void) {
    prot_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (prot_page == MAP_FAILED || mprotect(prot_page, 4096, PROT_READ) != 0) {
        say("FAIL mmap/mprotect");
        return;
    }
    on(SIGSEGV, prot_handler, 0);
    if (sigsetjmp(env, 1) == 0) {
        *(volatile char *)prot_page = 1;
        say("wrote to a read-only page without a fault");
    }
    say("done");
}

/* int3: SIGTRAP with rip just after the int3; returning resumes there. */
static void trap_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    frame("int3", sig, si, uc);
    say("si_addr=%p rip-int3_after=%lld", si->si_addr,
        (long long)(uc->uc_mcontext.gregs[REG_RIP] - (greg_t)int3_after));
}

static void mode_int3(void) {
    on(SIGTRAP, trap_handler, 0);
    __asm__ volatile("int3\n.globl int3_after\nint3_after:" ::: "memory");
    say("continued after int3");
}

/* ud2: SIGILL ILL_ILLOPN at the instruction; the handler moves rip past it. */
static void ill_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    frame("ud2", sig, si, uc);
    say("si_addr==ud2_at %d rip==ud2_at %d", si->si_addr == (void *)ud2_at,
        uc->uc_mcontext.gregs[REG_RIP] == (greg_t)ud2_at);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ud2_after;
}

static void mode_ud2(void) {
    on(SIGILL, ill_handler, 0);
    __asm__ volatile(".globl ud2_at\nud2_at: ud2\n.globl ud2_after\nud2_after:" ::: "memory");
    say("continued after ud2");
}

/* div: SIGFPE FPE_INTDIV; the handler skips the idiv. */
static void fpe_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    frame("div", sig, si, uc);
    say("si_addr==div_at %d rip==div_at %d", si->si_addr == (void *)div_at,
        uc->uc_mcontext.gregs[REG_RIP] == (greg_t)div_at);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)div_after;
}

static void mode_div(void) {
    on(SIGFPE, fpe_handler, 0);
    long q;
    __asm__ volatile("xor %%ecx, %%ecx\n mov $7, %%eax\n cqo\n"
                     ".globl div_at\ndiv_at: idiv %%rcx\n.globl div_after\ndiv_after:"
                     : "=a"(q)
                     :
                     : "rcx", "rdx", "memory");
    say("continued after idiv, rax=%ld", q);
}

/* sse, x87: floating-point divide by zero with the exception unmasked (MXCSR, FCW): SIGFPE
 * FPE_FLTDIV at the instruction; the handler's FPU state is fresh, and siglongjmp leaves it. */
static void flt_handler(int sig, siginfo_t *si, void *uc) {
    frame("flt", sig, si, uc);
    siglongjmp(env, 1);
}

static void mode_sse(void) {
    on(SIGFPE, flt_handler, 0);
    if (sigsetjmp(env, 1) == 0) {
        unsigned mx = 0x1f80 & ~0x200; /* unmask ZE */
        float a = 1.0f, z = 0.0f;
        __asm__ volatile("ldmxcsr %1\n divss %2, %0" : "+x"(a) : "m"(mx), "x"(z) : "memory");
        say("FAIL no fault (%f)", a);
    }
    say("done");
}

static void mode_x87(void) {
    on(SIGFPE, flt_handler, 0);
    if (sigsetjmp(env, 1) == 0) {
        unsigned short cw = 0x37f & ~0x4; /* unmask ZE */
        __asm__ volatile("fldcw %0\n fld1\n fldz\n fdivrp\n fwait\n fstp %%st(0)" ::"m"(cw)
                         : "memory");
        say("FAIL no fault");
    }
    say("done");
}

/* nested: a fault inside the SIGSEGV handler, SIGSEGV blocked there: killed. */
static void nested_handler(int sig, siginfo_t *si, void *uc) {
    frame("outer", sig, si, uc);
    *(volatile int *)(uintptr_t)8 = 1;
    say("FAIL survived a fault in the handler");
}

static void mode_nested(void) {
    on(SIGSEGV, nested_handler, 0);
    *(volatile int *)(uintptr_t)0 = 1;
    say("FAIL returned");
}

/* ignored: after one fault caught, SIGSEGV ignored does not stop a fault's signal. */
static void catch_one(void) {
    on(SIGSEGV, null_handler, 0);
    if (sigsetjmp(env, 1) == 0)
        *(volatile int *)(uintptr_t)0 = 1;
    say("caught %ld", count);
}

static void mode_ignored(void) {
    catch_one();
    signal(SIGSEGV, SIG_IGN);
    say("ignoring SIGSEGV");
    *(volatile int *)(uintptr_t)0 = 1;
    say("FAIL survived");
}

/* blocked: after one fault caught, SIGSEGV blocked with sigprocmask does not stop it. */
static void mode_blocked(void) {
    catch_one();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigprocmask(SIG_BLOCK, &s, NULL);
    say("blocking SIGSEGV");
    *(volatile int *)(uintptr_t)0 = 1;
    say("FAIL survived");
}

/* regs: every general register holds a pattern at the fault; the handler prints them. */
static void regs_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    frame("regs", sig, si, uc);
    static const struct {
        const char *name;
        int at;
    } r[] = {{"rax", REG_RAX}, {"rbx", REG_RBX}, {"rcx", REG_RCX}, {"rdx", REG_RDX},
             {"rsi", REG_RSI}, {"rdi", REG_RDI}, {"rbp", REG_RBP}, {"r8", REG_R8},
             {"r9", REG_R9},   {"r10", REG_R10}, {"r11", REG_R11}, {"r12", REG_R12},
             {"r13", REG_R13}, {"r14", REG_R14}, {"r15", REG_R15}};
    for (unsigned i = 0; i < sizeof r / sizeof r[0]; i++)
        say("%s=%#llx", r[i].name, (unsigned long long)g[r[i].at]);
    say("rip==regs_at %d eflags&0xcd5=%#llx", g[REG_RIP] == (greg_t)regs_at,
        (unsigned long long)(g[REG_EFL] & 0xcd5));
    siglongjmp(env, 1);
}

static void mode_regs(void) {
    on(SIGSEGV, regs_handler, 0);
    if (sigsetjmp(env, 1) == 0) {
        __asm__ volatile("push %%rbp\n"
                         "movabs $0x1111111111111111, %%rax\n"
                         "movabs $0x2222222222222222, %%rbx\n"
                         "movabs $0x3333333333333333, %%rcx\n"
                         "movabs $0x4444444444444444, %%rdx\n"
                         "movabs $0x5555555555555555, %%rsi\n"
                         "movabs $0x6666666666666666, %%rdi\n"
                         "movabs $0x7777777777777777, %%rbp\n"
                         "movabs $0x8888888888888888, %%r8\n"
                         "movabs $0x9999999999999999, %%r9\n"
                         "movabs $0xaaaaaaaaaaaaaaaa, %%r10\n"
                         "movabs $0xbbbbbbbbbbbbbbbb, %%r11\n"
                         "movabs $0xcccccccccccccccc, %%r12\n"
                         "movabs $0xdddddddddddddddd, %%r13\n"
                         "movabs $0xeeeeeeeeeeeeeeee, %%r14\n"
                         "movabs $0xffffffffffffffff, %%r15\n"
                         "xor %%r15, %%r15\n" /* flags: ZF|PF set, CF clear */
                         "movabs $0xf0f0f0f0f0f0f0f0, %%r15\n"
                         ".globl regs_at\nregs_at: movl $1, 0x10\n"
                         "pop %%rbp\n"
                         :
                         :
                         : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                           "r12", "r13", "r14", "r15", "memory", "cc");
        say("FAIL no fault");
    }
    say("done");
}

/* in: port input at CPL3 is a #GP: SIGSEGV SI_KERNEL; the handler skips the 2-byte `in`. */
static void in_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    frame("in", sig, si, uc);
    say("si_addr=%p", si->si_addr);
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void mode_in(void) {
    on(SIGSEGV, in_handler, 0);
    unsigned char v = 0;
    __asm__ volatile("in $0x80, %%al" : "+a"(v)::"memory");
    say("continued after in");
}

/* wild: a store, then a load, far above the break, where nothing was ever mapped:
 * SEGV_MAPERR there. */
static char *wild;
static void wild_handler(int sig, siginfo_t *si, void *uc) {
    frame("wild", sig, si, uc);
    say("si_addr-wild=%ld", (long)((char *)si->si_addr - wild));
    siglongjmp(env, 1);
}

static void mode_wild(void) {
    wild = (char *)sbrk(0) + (512ul << 20);
    on(SIGSEGV, wild_handler, 0);
    if (sigsetjmp(env, 1) == 0) {
        *(volatile char *)wild = 1;
        say("FAIL survived");
    }
    if (sigsetjmp(env, 1) == 0) {
        say("FAIL survived a load of %d", *(volatile char *)(wild + 4096));
    }
    say("done");
}

/* altstack: infinite recursion overflows the stack; the handler runs on the alternate stack. */
static void overflow_handler(int sig, siginfo_t *si, void *uc) {
    char here;
    (void)si;
    (void)uc;
    say("overflow: sig=%d on the alternate stack: %d", sig, &here >= alt_lo && &here < alt_hi);
    _exit(0);
}

static int recurse(volatile char *p) {
    volatile char buf[512];
    buf[0] = p ? p[0] + 1 : 0;
    return recurse(buf) + buf[1];
}

static void mode_altstack(void) {
    stack_t ss;
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    alt_lo = ss.ss_sp;
    alt_hi = alt_lo + ss.ss_size;
    if (sigaltstack(&ss, NULL) != 0) {
        say("FAIL sigaltstack");
        return;
    }
    on(SIGSEGV, overflow_handler, SA_ONSTACK);
    say("recursing");
    recurse(NULL);
    say("FAIL returned");
}

/* badstack / kstack: the fault's frame cannot be written: killed by SIGSEGV. */
static void never_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
    say("FAIL handler ran");
    _exit(1);
}

static void fault_on_stack(uint64_t sp) {
    on(SIGSEGV, never_handler, 0);
    say("faulting with rsp=%#llx", (unsigned long long)sp);
    __asm__ volatile("mov %0, %%rsp\n movl $1, 0\n" ::"r"(sp) : "memory");
    say("FAIL returned");
}

/* badhandler: a handler address that is not canonical: killed by SIGSEGV. */
static void mode_badhandler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = (void (*)(int))0x8000000000000000ull;
    if (sigaction(SIGSEGV, &sa, NULL) != 0) {
        say("FAIL sigaction");
        return;
    }
    say("faulting");
    *(volatile int *)(uintptr_t)0 = 1;
    say("FAIL returned");
}

/* storm: N faults, each handled and skipped. */
static void storm_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig;
    (void)si;
    count++;
    uc->uc_mcontext.gregs[REG_RIP] += 2; /* past the ud2 */
}

static void mode_storm(long n) {
    on(SIGILL, storm_handler, 0);
    for (long i = 0; i < n; i++)
        __asm__ volatile("ud2" ::: "memory");
    say("handled %ld faults", count);
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "null"))
        mode_null();
    else if (!strcmp(m, "prot"))
        mode_prot();
    else if (!strcmp(m, "int3"))
        mode_int3();
    else if (!strcmp(m, "ud2"))
        mode_ud2();
    else if (!strcmp(m, "div"))
        mode_div();
    else if (!strcmp(m, "sse"))
        mode_sse();
    else if (!strcmp(m, "x87"))
        mode_x87();
    else if (!strcmp(m, "nested"))
        mode_nested();
    else if (!strcmp(m, "ignored"))
        mode_ignored();
    else if (!strcmp(m, "blocked"))
        mode_blocked();
    else if (!strcmp(m, "regs"))
        mode_regs();
    else if (!strcmp(m, "in"))
        mode_in();
    else if (!strcmp(m, "wild"))
        mode_wild();
    else if (!strcmp(m, "altstack"))
        mode_altstack();
    else if (!strcmp(m, "badstack"))
        fault_on_stack(0x10);
    else if (!strcmp(m, "kstack"))
        fault_on_stack(0xffff800000001000ull);
    else if (!strcmp(m, "badhandler"))
        mode_badhandler();
    else if (!strcmp(m, "storm"))
        mode_storm(argc > 2 ? atol(argv[2]) : 100000);
    else {
        say("usage: sig_fault MODE");
        return 2;
    }
    return 0;
}
