/* Page protections as the application's own loads, stores and calls meet them: `mm_prot MODE`.
 * Each mode prints deterministic lines (addresses only relative to the mapping) for comparison
 * with the native run. Faults are caught with a SIGSEGV handler and left with siglongjmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <unistd.h>

#include "say.h"

/* Per thread: a fault is taken on the thread that made it. */
static __thread sigjmp_buf env;
static __thread volatile int last_code;
static __thread char *volatile last_addr;
static __thread volatile long faults;

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last_code = si->si_code;
    last_addr = si->si_addr;
    faults++;
    siglongjmp(env, 1);
}

static void catch_segv(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) {
        say("FAIL sigaction");
        _exit(2);
    }
}

static const char *code_name(int c) {
    return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

/* Read (or write) `p`; 1 if it faulted. The fault's code and address are in last_*. */
__attribute__((noinline)) static int try_access(char *p, int write) {
    if (sigsetjmp(env, 1) == 0) {
        if (write)
            *(volatile char *)p = 7;
        else
            (void)*(volatile char *)p;
        return 0;
    }
    return 1;
}

static void report(const char *what, char *base, char *p, int write) {
    if (try_access(p, write))
        say("%s: %s %s at base+%ld", what, write ? "write" : "read", code_name(last_code),
            (long)(last_addr - base));
    else
        say("%s: %s ok", what, write ? "write" : "read");
}

static char *map(size_t len, int prot) {
    char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        say("FAIL mmap");
        _exit(2);
    }
    return p;
}

static void must(int ok, const char *what) {
    if (!ok) {
        say("FAIL %s (errno %d)", what, errno);
        _exit(2);
    }
}

/* none: PROT_NONE faults (ACCERR, si_addr the byte), RW works again, the data survived. */
static void mode_none(void) {
    char *p = map(3 * 4096, PROT_READ | PROT_WRITE);
    p[4096 + 5] = 42;
    must(mprotect(p + 4096, 4096, PROT_NONE) == 0, "mprotect none");
    report("none", p, p + 4096 + 100, 0);
    report("none", p, p + 4096 + 200, 1);
    report("neighbour below", p, p + 10, 1);
    report("neighbour above", p, p + 2 * 4096, 1);
    must(mprotect(p + 4096, 4096, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    report("rw again", p, p + 4096 + 100, 1);
    say("kept: %d", p[4096 + 5]);
}

/* jit: write code into RW memory, make it RX, call it; a store then faults; RW again. */
static void mode_jit(void) {
    static const unsigned char code[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */
    unsigned char *p = (unsigned char *)map(4096, PROT_READ | PROT_WRITE);
    memcpy(p, code, sizeof code);
    must(mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0, "mprotect rx");
    int (*fn)(void) = (int (*)(void))p;
    say("jit returned %d", fn());
    report("rx", (char *)p, (char *)p + 1, 1);
    must(mprotect(p, 4096, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    p[1] = 43;
    must(mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0, "mprotect rx 2");
    say("jit returned %d", fn());
    /* Executable from the start: mmap with PROT_EXEC. */
    unsigned char *q = (unsigned char *)map(4096, PROT_READ | PROT_WRITE | PROT_EXEC);
    memcpy(q, code, sizeof code);
    q[1] = 44;
    say("rwx returned %d", ((int (*)(void))q)());
}

/* unmap: an access to an unmapped page is MAPERR; the pages around it stay. */
static void mode_unmap(void) {
    char *p = map(3 * 4096, PROT_READ | PROT_WRITE);
    must(munmap(p + 4096, 4096) == 0, "munmap");
    report("unmapped", p, p + 4096 + 8, 0);
    report("unmapped", p, p + 4096 + 16, 1);
    report("below", p, p, 1);
    report("above", p, p + 2 * 4096, 1);
    /* Mapped again with MAP_FIXED: present again, zeroed. */
    char *q = mmap(p + 4096, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    must(q == p + 4096, "mmap fixed");
    report("mapped read-only", p, q + 8, 0);
    report("mapped read-only", p, q + 8, 1);
    say("zero: %d", q[8]);
}

/* ro: PROT_READ on touched memory: reads work, a write is ACCERR. */
static void mode_ro(void) {
    char *p = map(4096, PROT_READ | PROT_WRITE);
    p[0] = 9;
    must(mprotect(p, 4096, PROT_READ) == 0, "mprotect ro");
    report("ro", p, p + 64, 0);
    report("ro", p, p + 64, 1);
    say("value: %d", p[0]);
}

/* stress N: N cycles of mprotect over a few pages with an access after each, counting faults
 * by kind; also mmap/munmap cycles. */
static void mode_stress(long n) {
    char *p = map(4 * 4096, PROT_READ | PROT_WRITE);
    static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_EXEC,
                                PROT_WRITE};
    long accerr = 0, maperr = 0, ok = 0;
    for (long i = 0; i < n; i++) {
        int page = (int)(i % 4);
        int prot = prots[(i / 4) % 5];
        must(mprotect(p + page * 4096, 4096, prot) == 0, "mprotect");
        int write = (int)(i / 20) % 2;
        /* PROT_EXEC-only memory depends on the host: Linux on a CPU with protection keys
         * makes it execute-only (any access faults with SEGV_PKUERR), elsewhere it reads
         * (ACCERR for writes). umon gives no execute-only memory, so it is not touched. */
        if (prot != PROT_EXEC) {
            if (try_access(p + page * 4096 + (i % 4000), write)) {
                must(last_addr == p + page * 4096 + (i % 4000), "si_addr");
                if (last_code == SEGV_ACCERR)
                    accerr++;
                else
                    maperr++;
            } else {
                ok++;
            }
        }
        if (i % 10 == 9) {
            /* Unmap and map back one page: MAPERR while it is gone. */
            char *u = p + ((i / 10) % 4) * 4096;
            must(munmap(u, 4096) == 0, "munmap");
            if (try_access(u, 0))
                maperr += last_code == SEGV_MAPERR;
            char *m = mmap(u, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                           -1, 0);
            must(m == u, "mmap fixed");
        }
    }
    say("stress %ld: ok %ld accerr %ld maperr %ld faults %ld", n, ok, accerr, maperr, faults);
}

/* The size of the mapping holding `p`, from /proc/self/maps (0 if none). */
static long mapping_size(char *p) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[512];
    long size = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= (unsigned long)p &&
            (unsigned long)p < b) {
            size = (long)(b - a);
            break;
        }
    }
    fclose(f);
    return size;
}

/* grows: a MAP_GROWSDOWN mapping grows down to a fault below it, keeps its guard gap from an
 * accessible mapping below (a PROT_NONE one is no obstacle), stops at RLIMIT_STACK; new
 * mappings keep out of its gap; a syscall's access below it grows it too (Linux's uaccess
 * faults grow it; only GUP does not), within the same limits. */
static void mode_grows(void) {
    const long pg = 4096;
    char *top = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
                     -1, 0);
    must(top != MAP_FAILED, "mmap growsdown");
    top[0] = 1;
    say("start: %ld pages", mapping_size(top) / pg);
    report("one page below", top, top - pg + 8, 1);
    say("after: %ld pages", mapping_size(top) / pg);
    report("64 pages below", top, top - 64 * pg, 0);
    say("after: %ld pages", mapping_size(top) / pg);
    char *start = top - 64 * pg;
    /* A new mapping keeps out of the guard gap. */
    char *n = map(pg, PROT_READ | PROT_WRITE);
    say("new mapping clear of the gap: %d", n + pg <= start - 256 * pg || n >= top + pg);
    munmap(n, pg);
    /* An accessible page 512 pages below: growth stops 256 pages above its end. */
    char *m = mmap(start - 512 * pg, pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    must(m == start - 512 * pg, "mmap below");
    report("200 pages below", start, start - 200 * pg, 1);
    say("after: %ld pages", mapping_size(top) / pg);
    report("300 pages below", start, start - 300 * pg, 1);
    say("after: %ld pages", mapping_size(top) / pg);
    /* PROT_NONE there is no obstacle. */
    must(mprotect(m, pg, PROT_NONE) == 0, "mprotect none");
    report("300 pages below, PROT_NONE under it", start, start - 300 * pg, 1);
    say("after: %ld pages", mapping_size(top) / pg);
    /* RLIMIT_STACK bounds a fresh one. */
    struct rlimit rl;
    must(getrlimit(RLIMIT_STACK, &rl) == 0, "getrlimit");
    rl.rlim_cur = 1 << 20;
    must(setrlimit(RLIMIT_STACK, &rl) == 0, "setrlimit");
    char *t2 = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
                    -1, 0);
    must(t2 != MAP_FAILED, "mmap growsdown 2");
    report("past RLIMIT_STACK", t2, t2 + pg - (1 << 20) - pg, 0);
    say("after: %ld pages", mapping_size(t2) / pg);
    report("at RLIMIT_STACK", t2, t2 + pg - (1 << 20), 0);
    say("after: %ld pages", mapping_size(t2) / pg);
    /* Syscalls reading into and writing from below a fresh one. */
    /* Room below it: a 4 MiB hole, the mapping at its top. */
    char *hole = mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    must(hole != MAP_FAILED && munmap(hole, 4 << 20) == 0, "hole");
    char *t3 = mmap(hole + (4 << 20) - pg, pg, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
    must(t3 == hole + (4 << 20) - pg, "mmap growsdown 3");
    /* (A pipe's write reads the buffer; /dev/null's would not touch it at all.) */
    int z = open("/dev/zero", O_RDONLY), p[2];
    must(z >= 0 && pipe(p) == 0, "open /dev/zero, pipe");
    say("read into 3 pages below: %ld", (long)read(z, t3 - 3 * pg, 100));
    say("after: %ld pages", mapping_size(t3) / pg);
    say("write from 40 pages below: %ld", (long)write(p[1], t3 - 40 * pg + 16, 10));
    say("after: %ld pages", mapping_size(t3) / pg);
    long far = (long)write(p[1], t3 + pg - (1 << 20) - pg, 10);
    say("write from past RLIMIT_STACK: %ld %s", far, far < 0 ? strerror(errno) : "");
    say("after: %ld pages", mapping_size(t3) / pg);
    close(z);
    close(p[0]);
    close(p[1]);
}

/* threads N: the same rules with several threads (vCPUs) changing mappings at once. */
struct own {
    char *p;
    long n, ok, accerr, maperr, faults;
};

static void *own_stress(void *arg) {
    struct own *o = arg;
    char *p = o->p;
    static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE};
    for (long i = 0; i < o->n; i++) {
        int page = (int)(i % 4);
        must(mprotect(p + page * 4096, 4096, prots[(i / 4) % 4]) == 0, "mprotect");
        char *at = p + page * 4096 + (i % 4000);
        if (try_access(at, (int)(i / 20) % 2)) {
            must(last_addr == at, "si_addr");
            if (last_code == SEGV_ACCERR)
                o->accerr++;
            else
                o->maperr++;
        } else {
            o->ok++;
        }
        if (i % 10 == 9) {
            char *u = p + ((i / 10) % 4) * 4096;
            must(munmap(u, 4096) == 0, "munmap");
            if (try_access(u, 0))
                o->maperr += last_code == SEGV_MAPERR;
            must(mmap(u, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                      0) == u,
                 "mmap fixed");
        }
    }
    o->faults = faults;
    return NULL;
}

/* One thread changes a page, another touches it after each change (barriers in between). */
static pthread_barrier_t bar;
static char *volatile shared_page;
static long cross_rounds;
static long cross_seen[4][3]; /* [change][ok, accerr, maperr] */

static void *cross_toucher(void *arg) {
    (void)arg;
    for (long r = 0; r < cross_rounds; r++) {
        pthread_barrier_wait(&bar);
        char *at = shared_page + (r * 64) % 4096;
        int kind = 0;
        if (try_access(at, (int)(r / 4) % 2))
            kind = last_code == SEGV_ACCERR ? 1 : 2;
        cross_seen[r % 4][kind]++;
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

static void cross(long rounds) {
    cross_rounds = rounds;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    must(pthread_create(&t, NULL, cross_toucher, NULL) == 0, "pthread_create");
    for (long r = 0; r < rounds; r++) {
        switch (r % 4) {
        case 0: must(mprotect(shared_page, 4096, PROT_NONE) == 0, "mprotect none"); break;
        case 1: must(mprotect(shared_page, 4096, PROT_READ) == 0, "mprotect ro"); break;
        case 2: must(munmap(shared_page, 4096) == 0, "munmap"); break;
        case 3:
            must(mmap(shared_page, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == shared_page,
                 "mmap back");
            break;
        }
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
    }
    pthread_join(t, NULL);
    static const char *names[] = {"PROT_NONE", "PROT_READ", "munmap", "mapped rw"};
    for (int c = 0; c < 4; c++)
        say("after %s: ok %ld accerr %ld maperr %ld", names[c], cross_seen[c][0], cross_seen[c][1],
            cross_seen[c][2]);
}

/* Threads on stacks the main thread maps and unmaps each time (often at the same place). */
static void *stack_user(void *arg) {
    volatile char buf[32768];
    for (size_t i = 0; i < sizeof buf; i += 512)
        buf[i] = (char)(i / 512);
    long sum = 0;
    for (size_t i = 0; i < sizeof buf; i += 512)
        sum += buf[i];
    return (void *)(sum + (long)arg);
}

static void stacks(long n) {
    long good = 0;
    for (long i = 0; i < n; i++) {
        size_t len = 256 * 1024;
        char *st = map(len, PROT_READ | PROT_WRITE);
        /* Old contents must never show through: every new stack reads zeros. */
        must(st[len - 4096] == 0 && st[0] == 0, "fresh stack zeroed");
        memset(st + len - 8192, 0x5a, 8192);
        pthread_attr_t a;
        pthread_attr_init(&a);
        must(pthread_attr_setstack(&a, st, len) == 0, "setstack");
        pthread_t t;
        must(pthread_create(&t, &a, stack_user, (void *)i) == 0, "pthread_create");
        void *r;
        pthread_join(t, &r);
        pthread_attr_destroy(&a);
        good += (long)r == 2016 + i;
        must(munmap(st, len) == 0, "munmap stack");
        if (try_access(st + len - 64, 0) && last_code == SEGV_MAPERR)
            good++;
    }
    say("stacks %ld: good %ld", n, good);
}

static void mode_threads(long n) {
    enum { T = 3 };
    struct own o[T];
    pthread_t t[T];
    /* Every page the threads unmap for a while lies between pages that stay mapped (a
     * PROT_NONE page at each end), so no mmap elsewhere (a thread's stack) can take it. */
    char *all = map((T * 4 + 3) * 4096, PROT_READ | PROT_WRITE);
    must(mprotect(all, 4096, PROT_NONE) == 0 &&
             mprotect(all + (T * 4 + 2) * 4096, 4096, PROT_NONE) == 0,
         "guards");
    shared_page = all + 4096;
    for (int i = 0; i < T; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].p = all + (2 + 4 * i) * 4096;
        o[i].n = n;
        must(pthread_create(&t[i], NULL, own_stress, &o[i]) == 0, "pthread_create");
    }
    cross(n / 5);
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        say("thread %d: ok %ld accerr %ld maperr %ld faults %ld", i, o[i].ok, o[i].accerr,
            o[i].maperr, o[i].faults);
    }
    stacks(n / 20);
}

int main(int argc, char **argv) {
    catch_segv();
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "none"))
        mode_none();
    else if (!strcmp(m, "jit"))
        mode_jit();
    else if (!strcmp(m, "unmap"))
        mode_unmap();
    else if (!strcmp(m, "ro"))
        mode_ro();
    else if (!strcmp(m, "stress"))
        mode_stress(argc > 2 ? atol(argv[2]) : 1000);
    else if (!strcmp(m, "grows"))
        mode_grows();
    else if (!strcmp(m, "threads"))
        mode_threads(argc > 2 ? atol(argv[2]) : 1000);
    else {
        say("usage: mm_prot none|jit|unmap|ro|stress|threads [N]|grows");
        return 2;
    }
    say("done");
    return 0;
}
