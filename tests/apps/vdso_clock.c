// The vDSO and the legacy vsyscall page, as a program sees them (tests/vdso.rs).
//   loop N       N rounds of clock_gettime (MONOTONIC, REALTIME), gettimeofday and time through
//                libc; each clock never goes back, gettimeofday and time lie between two
//                realtime readings, and the syscall reads between two libc readings (1 ms of
//                slack). Prints the number of clock syscalls it made itself.
//   symbols      getauxval(AT_SYSINFO_EHDR), then the ELF there parsed as musl does (DT_HASH or
//                DT_GNU_HASH, DT_VERSYM/DT_VERDEF): each LINUX_2.6 symbol found, and the
//                found __vdso_clock_gettime / __vdso_clock_getres called and checked.
//   threads N    4 threads read CLOCK_MONOTONIC under one lock N times each: never backwards.
//   vsyscall     call the legacy page's time, gettimeofday and getcpu entries.
//   write-vvar   write to the page below the vDSO's header (the time page): SIGSEGV.
//   write-vdso   write to the vDSO's header: SIGSEGV.
//   sys-vvar     let the kernel write into the time page and the vDSO (clock_gettime's result):
//                EFAULT.
//   fixed        mmap MAP_FIXED over the vDSO: whatever it answers, clock_gettime still works.
//   getcpu       the vDSO's getcpu answers as the getcpu syscall does (a CPU, or the same error).
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t sys_ns(clockid_t c) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0) { perror("clock_gettime syscall"); exit(2); }
    return ns(t);
}

static int64_t libc_ns(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t) != 0) { perror("clock_gettime"); exit(2); }
    return ns(t);
}

static int fail(const char *what, long long a, long long b) {
    printf("FAIL %s: %lld then %lld\n", what, a, b);
    return 1;
}

// The syscall must read between two libc readings, each allowed `slack` ns of disagreement.
static int bracket(clockid_t c, const char *name) {
    const int64_t slack = 1000000;
    int64_t a = libc_ns(c), s = sys_ns(c), b = libc_ns(c);
    if (s < a - slack || s > b + slack) return fail(name, a - s, b - s);
    return 0;
}

static int do_loop(long n) {
    int bad = 0, syscalls = 0;
    bad |= bracket(CLOCK_MONOTONIC, "monotonic vs syscall");
    bad |= bracket(CLOCK_REALTIME, "realtime vs syscall");
    bad |= bracket(CLOCK_BOOTTIME, "boottime vs syscall");
    syscalls += 3;
    int64_t lm = 0, lr = 0, lt = 0, lb = 0;
    for (long i = 0; i < n && !bad; i++) {
        // Ordered readings of one clock source: each must lie between its neighbours (the
        // thread may be preempted anywhere, so no distance between them is asserted).
        int64_t m = libc_ns(CLOCK_MONOTONIC), r = libc_ns(CLOCK_REALTIME);
        struct timeval tv;
        gettimeofday(&tv, NULL);
        int64_t t = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
        time_t sec = time(NULL);
        int64_t r2 = libc_ns(CLOCK_REALTIME);
        if (m < lm) bad |= fail("monotonic went back", lm, m);
        if (r < lr) bad |= fail("realtime went back", lr, r);
        if (t < lt) bad |= fail("gettimeofday went back", lt, t);
        if (sec < lb) bad |= fail("time went back", lb, sec);
        if (t < r / 1000 || t > r2 / 1000) bad |= fail("gettimeofday outside realtime", r, t);
        // Linux's time() is the coarse clock: up to a tick behind, so a second behind at most.
        if (sec < r / 1000000000 - 1 || sec > r2 / 1000000000) bad |= fail("time outside realtime", r, sec);
        lm = m, lr = r2, lt = t, lb = sec;
    }
    bad |= bracket(CLOCK_MONOTONIC, "monotonic vs syscall after the loop");
    bad |= bracket(CLOCK_REALTIME, "realtime vs syscall after the loop");
    syscalls += 2;
    syscalls += 2; // the CPU-time and the invalid clock below go to the syscall from the vDSO
    struct timespec res;
    if (clock_getres(CLOCK_MONOTONIC, &res) != 0 || res.tv_sec != 0 || res.tv_nsec <= 0)
        bad |= fail("clock_getres", res.tv_sec, res.tv_nsec);
    // CPU-time clocks are not the page's: they must still answer (through the syscall).
    struct timespec cpu;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) != 0) bad |= fail("cputime", errno, 0);
    if (clock_gettime(12345, &cpu) != -1 || errno != EINVAL) bad |= fail("bad clock id", errno, 0);
    printf("loop %ld: %s; %d clock syscalls made directly\n", n, bad ? "FAILED" : "ok", syscalls);
    return bad;
}

struct vdso {
    uintptr_t base;
    const Elf64_Sym *syms;
    const char *strs;
    const uint32_t *hash, *ghash;
    const uint16_t *versym;
    const Elf64_Verdef *verdef;
};

static int vdso_open(struct vdso *v) {
    memset(v, 0, sizeof *v);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
    if (!eh) return -1;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return -2;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    uintptr_t base = (uintptr_t)-1;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && base == (uintptr_t)-1)
            base = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
        else if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)((const char *)eh + ph[i].p_offset);
    }
    if (!dyn || base == (uintptr_t)-1) return -3;
    v->base = base;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        void *p = (void *)(base + dyn->d_un.d_ptr);
        switch (dyn->d_tag) {
        case DT_SYMTAB: v->syms = p; break;
        case DT_STRTAB: v->strs = p; break;
        case DT_HASH: v->hash = p; break;
        case DT_GNU_HASH: v->ghash = p; break;
        case DT_VERSYM: v->versym = p; break;
        case DT_VERDEF: v->verdef = p; break;
        }
    }
    if (!v->syms || !v->strs || (!v->hash && !v->ghash)) return -4;
    return 0;
}

static size_t vdso_nsyms(const struct vdso *v) {
    if (v->hash) return v->hash[1];
    // GNU hash: the highest symbol index in the buckets, then walk its chain to the end.
    const uint32_t *h = v->ghash, nbuckets = h[0], symoffset = h[1], bloom = h[2];
    const uint32_t *buckets = h + 4 + bloom * 2, *chain = buckets + nbuckets;
    uint32_t max = 0;
    for (uint32_t i = 0; i < nbuckets; i++) if (buckets[i] > max) max = buckets[i];
    if (max < symoffset) return symoffset;
    while (!(chain[max - symoffset] & 1)) max++;
    return max + 1;
}

static int version_is(const struct vdso *v, size_t i, const char *name) {
    if (!v->versym) return 1;
    uint16_t want = v->versym[i] & 0x7fff;
    for (const Elf64_Verdef *d = v->verdef; d; d = d->vd_next ? (const void *)((const char *)d + d->vd_next) : NULL) {
        if (!(d->vd_flags & VER_FLG_BASE) && (d->vd_ndx & 0x7fff) == want) {
            const Elf64_Verdaux *aux = (const void *)((const char *)d + d->vd_aux);
            return strcmp(name, v->strs + aux->vda_name) == 0;
        }
    }
    return 0;
}

static void *vdso_sym(const struct vdso *v, const char *name) {
    size_t n = vdso_nsyms(v);
    for (size_t i = 0; i < n; i++) {
        const Elf64_Sym *s = &v->syms[i];
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC) continue;
        if (ELF64_ST_BIND(s->st_info) != STB_GLOBAL && ELF64_ST_BIND(s->st_info) != STB_WEAK) continue;
        if (s->st_shndx == SHN_UNDEF || strcmp(name, v->strs + s->st_name) != 0) continue;
        if (!version_is(v, i, "LINUX_2.6")) continue;
        return (void *)(v->base + s->st_value);
    }
    return NULL;
}

static int do_symbols(void) {
    struct vdso v;
    int r = vdso_open(&v);
    if (r != 0) { printf("no usable vDSO (%d)\n", r); return 1; }
    printf("AT_SYSINFO_EHDR: an ELF, %s\n", v.hash && v.ghash ? "both hashes" : v.ghash ? "GNU hash" : "SysV hash");
    const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
                           "__vdso_clock_getres", "__vdso_getcpu", "clock_gettime",
                           "gettimeofday", "time", "getcpu"};
    int bad = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        void *p = vdso_sym(&v, names[i]);
        printf("%s@LINUX_2.6: %s\n", names[i], p ? "found" : "missing");
        bad |= !p;
    }
    int (*cgt)(clockid_t, struct timespec *) = vdso_sym(&v, "__vdso_clock_gettime");
    int (*cgr)(clockid_t, struct timespec *) = vdso_sym(&v, "__vdso_clock_getres");
    if (cgt && cgr) {
        struct timespec a, res;
        int64_t s0 = sys_ns(CLOCK_MONOTONIC);
        int rc = cgt(CLOCK_MONOTONIC, &a);
        int64_t s1 = sys_ns(CLOCK_MONOTONIC);
        int ok = rc == 0 && ns(a) >= s0 - 1000000 && ns(a) <= s1 + 1000000;
        printf("__vdso_clock_gettime(MONOTONIC) between two syscalls: %s\n", ok ? "yes" : "no");
        rc = cgr(CLOCK_REALTIME, &res);
        printf("__vdso_clock_getres(REALTIME): %d, %s\n", rc, rc == 0 && res.tv_sec == 0 && res.tv_nsec > 0 ? "positive" : "wrong");
        bad |= !ok;
    }
    return bad;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last;
static long rounds;
static int backwards;

static void *reader(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&lock);
        int64_t t = libc_ns(CLOCK_MONOTONIC);
        if (t < last) backwards++;
        last = t;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int do_threads(long n) {
    rounds = n;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("threads: %ld readings each, %d backwards\n", n, backwards);
    return backwards != 0;
}

static int do_vsyscall(void) {
    time_t (*vtime)(time_t *) = (time_t (*)(time_t *))0xffffffffff600400;
    int (*vgtod)(struct timeval *, void *) = (int (*)(struct timeval *, void *))0xffffffffff600000;
    long (*vgetcpu)(unsigned *, unsigned *, void *) = (long (*)(unsigned *, unsigned *, void *))0xffffffffff600800;
    time_t before = time(NULL), stored = 0;
    time_t t = vtime(&stored);
    time_t after = time(NULL);
    printf("vsyscall time: %s\n", t >= before && t <= after && stored == t ? "ok" : "wrong");
    struct timeval tv;
    int rc = vgtod(&tv, NULL);
    printf("vsyscall gettimeofday: %s\n", rc == 0 && tv.tv_sec >= before && tv.tv_sec <= time(NULL) ? "ok" : "wrong");
    unsigned cpu = 99;
    long r = vgetcpu(&cpu, NULL, NULL);
    printf("vsyscall getcpu: returned\n");
    (void)r;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "loop";
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    if (!strcmp(mode, "loop")) return do_loop(n);
    if (!strcmp(mode, "symbols")) return do_symbols();
    if (!strcmp(mode, "threads")) return do_threads(n);
    if (!strcmp(mode, "vsyscall")) return do_vsyscall();
    char *eh = (char *)getauxval(AT_SYSINFO_EHDR);
    if (!eh) {
        printf("no vDSO\n");
        return 1;
    }
    if (!strcmp(mode, "getcpu")) {
        struct vdso v;
        long (*gc)(unsigned *, unsigned *, void *) = vdso_open(&v) == 0 ? vdso_sym(&v, "__vdso_getcpu") : NULL;
        if (!gc) {
            printf("no __vdso_getcpu\n");
            return 1;
        }
        unsigned cpu = 12345, node = 12345;
        long rv = gc(&cpu, &node, NULL);
        long rs = syscall(SYS_getcpu, &cpu, &node, NULL);
        if (rs == -1) rs = -errno;
        printf("getcpu: vDSO and syscall %s\n", rv == rs ? "agree" : "differ");
        return rv != rs;
    }
    if (!strcmp(mode, "write-vvar")) {
        fprintf(stderr, "target %p\n", (void *)(eh - 4096));
        printf("writing below the vDSO\n");
        *(volatile char *)(eh - 4096) = 1;
        printf("wrote\n");
        return 0;
    }
    if (!strcmp(mode, "sys-vvar")) {
        char *targets[] = {eh - 4096, eh};
        for (int i = 0; i < 2; i++) {
            long r = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, targets[i]);
            printf("clock_gettime into the %s: %s\n", i ? "vDSO" : "time page", r == 0 ? "written" : strerror(errno));
        }
        return 0;
    }
    if (!strcmp(mode, "write-vdso")) {
        fprintf(stderr, "target %p\n", (void *)eh);
        printf("writing the vDSO\n");
        *(volatile char *)eh = 1;
        printf("wrote\n");
        return 0;
    }
    if (!strcmp(mode, "fixed")) {
        void *p = mmap(eh, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        printf("mmap MAP_FIXED over the vDSO: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
        // glibc resolved the vDSO at start; natively the mapping above replaced it, so only
        // the syscall is safe to ask here.
        printf("clock after: %s\n", sys_ns(CLOCK_MONOTONIC) > 0 ? "ok" : "wrong");
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
