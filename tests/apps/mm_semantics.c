// Linux mmap semantics, one section per argument; prints only deterministic facts (results
// relative to the addresses involved, errno names), so the native run and umon's must match
// byte for byte. tests/mm_semantics.rs runs each section natively and under umon.
#define _GNU_SOURCE
#include "say.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static const char *en(long r) {
    if (r != -1)
        return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    default: return "other";
    }
}

static const char *mres(void *p) { return p == MAP_FAILED ? en(-1) : "ok"; }

static char *map(size_t len, int prot) {
    char *p = mmap(0, len, prot, ANON, -1, 0);
    if (p == MAP_FAILED) {
        say("mmap %zu: %s", len, en(-1));
        _exit(2);
    }
    return p;
}

// A page no mapping holds (mapped and unmapped at once).
static char *hole(void) {
    char *h = map(PG, PROT_READ);
    munmap(h, PG);
    return h;
}

// Whether the kernel (or the monitor) may write to `p`: EFAULT from a syscall's copy-out.
static const char *writable(void *p) {
    return syscall(SYS_clock_gettime, 1, p) == 0 ? "writable" : en(-1);
}

// Raw brk: glibc's sbrk caches the break.
static uintptr_t brk_(uintptr_t to) { return (uintptr_t)syscall(SYS_brk, to); }

static void fixed_over_brk(void) {
    uintptr_t b = brk_(0);
    uintptr_t base = (b + PG - 1) & ~(PG - 1);
    uintptr_t top = base + 4 * PG;
    say("brk grow: %s", brk_(top) == top ? "ok" : "failed");
    memset((void *)base, 7, 4 * PG);
    // What musl's malloc does for its guard page: MAP_FIXED over memory brk handed out.
    void *g = mmap((void *)(base + PG), PG, PROT_NONE, ANON | MAP_FIXED, -1, 0);
    say("fixed PROT_NONE over brk: %s %s", mres(g), g == (void *)(base + PG) ? "at" : "elsewhere");
    void *w = mmap((void *)(base + 2 * PG), PG, PROT_READ | PROT_WRITE, ANON | MAP_FIXED, -1, 0);
    say("fixed RW over brk: %s, reads %d, neighbour %d", mres(w), *(char *)(base + 2 * PG),
        *(char *)(base + 3 * PG));
    say("noreplace over brk: %s",
        mres(mmap((void *)base, PG, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0)));
    say("brk grows on: %s", brk_(top + 2 * PG) == top + 2 * PG ? "ok" : "failed");
    *(char *)(top + PG) = 1;
    say("brk shrinks: %s", brk_(base + PG) == base + PG ? "ok" : "failed");
    say("brk back: %s", brk_(top) == top ? "ok" : "failed");
    say("grown brk reads %d", *(char *)(top - 1));
}

static void hint(void) {
    char *a = map(16 * PG, PROT_READ | PROT_WRITE);
    munmap(a, 16 * PG);
    char *h = mmap(a + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE, ANON, -1, 0);
    say("aligned hint: %s", h == a + 4 * PG ? "honoured" : "ignored");
    char *u = mmap(a + 9 * PG + 100, 2 * PG, PROT_READ | PROT_WRITE, ANON, -1, 0);
    // x86-64 rounds a hint down to its page.
    say("unaligned hint: %s", u == a + 9 * PG ? "rounded down" : "ignored");
    char *t = mmap(a + 3 * PG, 2 * PG, PROT_READ | PROT_WRITE, ANON, -1, 0);
    say("taken hint: %s", t == a + 3 * PG ? "honoured" : "moved");
}

static void noreplace(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    munmap(a + 2 * PG, 2 * PG);
    say("over a mapping: %s", mres(mmap(a + PG, 2 * PG, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0)));
    say("unaligned: %s", mres(mmap(a + 1, PG, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0)));
    void *f = mmap(a + 2 * PG, PG, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0);
    say("free: %s %s", mres(f), f == a + 2 * PG ? "at" : "elsewhere");
    say("with MAP_FIXED too: %s",
        mres(mmap(a, PG, PROT_READ, ANON | MAP_FIXED | MAP_FIXED_NOREPLACE, -1, 0)));
    say("first page kept: %s", mmap(a, PG, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? "yes" : "no");
}

static void split(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    say("mprotect middle: %s", en(mprotect(a + PG, PG, PROT_READ)));
    // mremap cannot cross a mapping's end: the split made three.
    say("middle page: %s, first: %s", writable(a + PG), writable(a));
    a[0] = 'x';
    say("mremap across split: %s", mres(mremap(a, 4 * PG, 8 * PG, MREMAP_MAYMOVE)));
    say("mremap first piece in place: %s",
        mres(mremap(a, PG, PG, 0)));
    say("mprotect back: %s", en(mprotect(a + PG, PG, PROT_READ | PROT_WRITE)));
    char *m = mremap(a, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
    say("mremap merged: %s, reads %c", mres(m), m == MAP_FAILED ? '?' : m[0]);
    char *b = map(4 * PG, PROT_READ | PROT_WRITE);
    say("munmap middle: %s", en(munmap(b + PG, PG)));
    say("mremap over hole: %s", mres(mremap(b, 2 * PG, 3 * PG, 0)));
    say("mprotect over hole: %s", en(mprotect(b, 4 * PG, PROT_READ)));
    say("first page changed before the hole: %s", writable(b));
    // A same-size move to a fixed address takes every mapping along, gaps kept (Linux 6.17
    // on), as long as the first starts at the old address.
    char *c = map(4 * PG, PROT_READ | PROT_WRITE);
    c[0] = 'c';
    c[3 * PG] = 'd';
    munmap(c + PG, PG);
    mprotect(c + 2 * PG, PG, PROT_READ);
    char *to4 = map(8 * PG, PROT_READ);
    munmap(to4, 8 * PG);
    char *mv = mremap(c, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to4);
    say("fixed move of several: %s", mv == to4 ? "at" : mres(mv));
    if (mv == to4)
        say("moved: %c %c, gap %s, read-only %s, old %s", to4[0], to4[3 * PG],
            writable(to4 + PG), writable(to4 + 2 * PG), writable(c + 3 * PG));
    say("fixed move starting in a hole: %s",
        mres(mremap(to4 + PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, c)));
    char *g = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, ANON | MAP_GROWSDOWN, -1, 0);
    say("growsdown map: %s", mres(g));
    say("PROT_GROWSDOWN on growsdown: %s", en(mprotect(g + 2 * PG, PG, PROT_READ | PROT_GROWSDOWN)));
    say("PROT_GROWSDOWN on plain: %s", en(mprotect(b + 2 * PG, PG, PROT_READ | PROT_GROWSDOWN)));
}

static char image_pages[3 * 4096] __attribute__((aligned(4096)));

static void remap(void) {
    char *a = map(3 * PG, PROT_READ | PROT_WRITE);
    munmap(a + 2 * PG, PG);
    memset(a, 'a', 2 * PG);
    char *g = mremap(a, 2 * PG, 3 * PG, 0);
    say("grow in place: %s", g == a ? "same" : mres(g));
    char *s = mremap(a, 3 * PG, PG, 0);
    say("shrink: %s, reads %c", s == a ? "same" : mres(s), a[PG - 1]);
    mmap(a + PG, PG, PROT_READ, ANON | MAP_FIXED, -1, 0);
    say("blocked grow: %s", mres(mremap(a, PG, 2 * PG, 0)));
    char *m = mremap(a, PG, 4 * PG, MREMAP_MAYMOVE);
    say("move: %s, reads %c %d", m != a && m != MAP_FAILED ? "moved" : mres(m), m[0], m[3 * PG]);
    // Two pages of its own: the move's target may not overlap its source.
    char *d = map(4 * PG, PROT_READ);
    munmap(d + 2 * PG, 2 * PG);
    char *f = mremap(m, 4 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
    say("fixed over a mapping: %s, reads %c", f == d ? "at" : mres(f), f == d ? d[PG - 1] : '?');
    char *k = mremap(d, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    say("dontunmap: %s, new reads %c, old reads %d", mres(k), k[0], d[0]);
    say("bad flags: %s", mres(mremap(d, PG, PG, 8)));
    say("fixed without maymove: %s", mres(mremap(d, PG, PG, MREMAP_FIXED, a)));
    say("unaligned: %s", mres(mremap(d + 1, PG, PG, 0)));
    say("zero new length: %s", mres(mremap(d, PG, 0, 0)));
    say("unmapped: %s", mres(mremap(hole(), PG, 2 * PG, MREMAP_MAYMOVE)));
    say("shrink unmapped: %s", mres(mremap(hole(), 2 * PG, PG, 0)));
    char *sh = map(4 * PG, PROT_READ | PROT_WRITE);
    munmap(sh + PG, PG);
    say("shrink across a hole: %s", mremap(sh, 4 * PG, PG, 0) == sh ? "same" : "moved");
    say("shrink starting in the hole: %s", mres(mremap(sh + PG, 2 * PG, PG, 0)));
    // A page of the image (a page-aligned global) moves too.
    memset(image_pages, 'i', sizeof image_pages);
    char *im = mremap(image_pages + PG, PG, 2 * PG, MREMAP_MAYMOVE);
    say("image page: %s, reads %c %d", im != MAP_FAILED ? "moved" : mres(im),
        im != MAP_FAILED ? im[0] : '?', im != MAP_FAILED ? im[PG] : -1);
}

static void dontneed(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    memset(a, 5, 4 * PG);
    const char *r = en(madvise(a + PG, 2 * PG, MADV_DONTNEED));
    say("dontneed: %s, reads %d %d", r, a[PG], a[0]);
    r = en(madvise(a, PG, MADV_FREE));
    say("free: %s, reads %d", r, a[3 * PG]);
    say("willneed: %s", en(madvise(a, 4 * PG, MADV_WILLNEED)));
    say("unknown: %s", en(madvise(a, PG, 12345)));
    say("unaligned: %s", en(madvise(a + 1, PG, MADV_DONTNEED)));
    munmap(a + PG, PG);
    r = en(madvise(a, 4 * PG, MADV_DONTNEED));
    say("over a hole: %s, after it reads %d", r, a[2 * PG]);
    say("remove on private: %s", en(madvise(a, PG, MADV_REMOVE)));
    char *sh = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[0] = 9;
    r = en(madvise(sh, PG, MADV_REMOVE));
    say("remove on shared: %s, reads %d", r, sh[0]);
    // Anonymous memory of the main stack is zeroed too.
    volatile char frame[8 * 4096];
    memset((char *)frame, 3, sizeof frame);
    char *page = (char *)(((uintptr_t)frame + PG - 1) & ~(PG - 1));
    r = en(madvise(page, PG, MADV_DONTNEED));
    say("stack dontneed: %s, reads %d", r, ((volatile char *)page)[10]);
}

static void core(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    memset(a, 1, 4 * PG);
    unsigned char v[8];
    memset(v, 9, sizeof v);
    const char *r = en(mincore(a, 4 * PG, v));
    say("mincore: %s %d%d%d%d%d", r, v[0], v[1], v[2], v[3], v[4]);
    memset(v, 9, sizeof v);
    r = en(mincore(a, PG + 1, v));
    say("mincore partial page length: %s %d%d", r, v[1], v[2]);
    say("mincore unaligned: %s", en(mincore(a + 1, PG, v)));
    say("mincore bad vector: %s", en(mincore(a, PG, (unsigned char *)8)));
    say("mincore zero length: %s", en(mincore(a, 0, v)));
    munmap(a + 2 * PG, PG);
    memset(v, 9, sizeof v);
    r = en(mincore(a, 4 * PG, v));
    say("mincore over hole: %s %d%d%d", r, v[0], v[1], v[2]);
    say("mincore unmapped: %s", en(mincore(a + 2 * PG, PG, v)));
    say("mincore huge: %s", en(mincore(a, (size_t)-1 - PG, v)));
}

static void sync_(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    say("msync: %s", en(msync(a, 4 * PG, MS_SYNC)));
    say("msync async: %s", en(msync(a, 4 * PG, MS_ASYNC)));
    say("msync both: %s", en(msync(a, PG, MS_SYNC | MS_ASYNC)));
    say("msync bad flag: %s", en(msync(a, PG, 8)));
    say("msync unaligned: %s", en(msync(a + 1, PG, MS_SYNC)));
    say("msync empty: %s", en(msync(a, 0, MS_SYNC)));
    munmap(a + PG, PG);
    say("msync hole: %s", en(msync(a, 4 * PG, MS_SYNC)));
    say("msync hole async: %s", en(msync(a, 4 * PG, MS_ASYNC)));
    say("msync unmapped: %s", en(msync(a + PG, PG, MS_INVALIDATE)));
    say("msync wrap: %s", en(msync(a, (size_t)-1 - PG, MS_SYNC)));
}

static void lock(void) {
    char *a = map(4 * PG, PROT_READ | PROT_WRITE);
    say("mlock unaligned start: %s", en(mlock(a + 10, PG)));
    say("dontneed locked: %s", en(madvise(a, PG, MADV_DONTNEED)));
    say("dontneed unlocked part: %s", en(madvise(a + 2 * PG, PG, MADV_DONTNEED)));
    say("invalidate locked: %s", en(msync(a, PG, MS_INVALIDATE)));
    say("munlock: %s", en(munlock(a, 4 * PG)));
    say("dontneed after munlock: %s", en(madvise(a, PG, MADV_DONTNEED)));
    say("mlock2 onfault: %s", en(syscall(SYS_mlock2, a, PG, 1)));
    say("mlock2 bad flag: %s", en(syscall(SYS_mlock2, a, PG, 2)));
    munmap(a + PG, PG);
    say("mlock hole: %s", en(mlock(a, 4 * PG)));
    say("munlock hole: %s", en(munlock(a, 4 * PG)));
    say("mlockall 0: %s", en(mlockall(0)));
    say("mlockall onfault alone: %s", en(mlockall(MCL_ONFAULT)));
    say("mlockall bad: %s", en(mlockall(64)));
    say("mlockall future: %s", en(mlockall(MCL_FUTURE)));
    char *b = map(PG, PROT_READ | PROT_WRITE);
    say("new mapping locked: %s", en(madvise(b, PG, MADV_DONTNEED)));
    say("munlockall: %s", en(munlockall()));
    char *c = map(PG, PROT_READ | PROT_WRITE);
    say("after munlockall: %s %s", en(madvise(b, PG, MADV_DONTNEED)), en(madvise(c, PG, MADV_DONTNEED)));
    char *l = mmap(0, PG, PROT_READ | PROT_WRITE, ANON | MAP_LOCKED, -1, 0);
    say("MAP_LOCKED: %s", en(madvise(l, PG, MADV_DONTNEED)));
}

static char data_page[3 * 4096] __attribute__((aligned(4096))) = {1};

static void errors(void) {
    char *a = map(2 * PG, PROT_READ | PROT_WRITE);
    say("munmap unaligned: %s", en(munmap(a + 1, PG)));
    say("munmap zero: %s", en(munmap(a, 0)));
    say("munmap huge: %s", en(munmap(a, (size_t)-1 - PG)));
    say("munmap unmapped: %s", en(munmap(hole(), PG)));
    say("mmap zero: %s", mres(mmap(0, 0, PROT_READ, ANON, -1, 0)));
    say("mmap no type: %s", mres(mmap(0, PG, PROT_READ, MAP_ANONYMOUS, -1, 0)));
    say("mmap huge: %s", mres(mmap(0, (size_t)-1 - PG, PROT_READ, ANON, -1, 0)));
    say("mmap 2^47: %s", mres(mmap(0, 1UL << 47, PROT_READ, ANON, -1, 0)));
    say("mmap fixed unaligned: %s", mres(mmap(a + 1, PG, PROT_READ, ANON | MAP_FIXED, -1, 0)));
    say("mmap fixed wrap: %s", mres(mmap((void *)-PG, 2 * PG, PROT_READ, ANON | MAP_FIXED, -1, 0)));
    say("mmap bad offset: %s", mres(mmap(0, PG, PROT_READ, ANON, -1, 1)));
    say("mprotect unaligned: %s", en(mprotect(a + 1, PG, PROT_READ)));
    say("mprotect bad prot: %s", en(mprotect(a, PG, 0x40)));
    say("mprotect unmapped: %s", en(mprotect(hole(), PG, PROT_READ)));
    say("mprotect wrap: %s", en(mprotect(a, (size_t)-1 - PG, PROT_READ)));
    say("mprotect both grows: %s", en(mprotect(a, PG, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)));
    say("mprotect growsup: %s", en(mprotect(a, PG, PROT_READ | PROT_GROWSUP)));
    say("mprotect zero: %s", en(mprotect(hole(), 0, PROT_READ)));
    // The image's initialised data is a file mapping: MADV_FREE is for anonymous memory.
    say("madvise free on data: %s", en(madvise(data_page + PG, PG, MADV_FREE)));
    char *sh = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    say("madvise wipeonfork on shared: %s", en(madvise(sh, PG, MADV_WIPEONFORK)));
    say("madvise wipeonfork on private: %s", en(madvise(a, PG, MADV_WIPEONFORK)));
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } sections[] = {
        {"fixed_over_brk", fixed_over_brk}, {"hint", hint}, {"noreplace", noreplace},
        {"split", split}, {"remap", remap}, {"dontneed", dontneed}, {"mincore", core},
        {"msync", sync_}, {"mlock", lock}, {"errors", errors},
    };
    for (int i = 1; i < argc; i++)
        for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
            if (!strcmp(argv[i], sections[j].name)) {
                say("== %s", argv[i]);
                sections[j].run();
            }
    return 0;
}
