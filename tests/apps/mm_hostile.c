// Hostile address-space use: huge and wrapping lengths, 30k map/unmap cycles, and a
// fragmentation storm up to vm.max_map_count. Prints only facts that hold natively and under
// umon alike; tests/mm_hostile.rs compares the two.
#define _GNU_SOURCE
#include "say.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static const char *en(long r) {
    if (r != -1)
        return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    default: return "other";
    }
}

static const char *mres(void *p) { return p == MAP_FAILED ? en(-1) : "ok"; }

static void huge(void) {
    size_t sizes[] = {(size_t)-1, (size_t)-PG, (size_t)-PG - 1, 1UL << 62, 1UL << 47};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *a = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, ANON, -1, 0);
        unsigned char vec[4];
        say("len #%zu: mmap %s", i, mres(mmap(0, n, PROT_READ, ANON, -1, 0)));
        say("len #%zu: fixed %s", i, mres(mmap(a, n, PROT_READ, ANON | MAP_FIXED, -1, 0)));
        say("len #%zu: munmap %s", i, en(munmap(a + 2 * PG, n)));
        say("len #%zu: mremap %s", i, mres(mremap(a, PG, n, MREMAP_MAYMOVE)));
        say("len #%zu: madvise %s", i, en(madvise(a, n, MADV_WILLNEED)));
        say("len #%zu: mincore %s", i, en(mincore(a, n, vec)));
        say("len #%zu: msync %s", i, en(msync(a, n, MS_SYNC)));
        say("len #%zu: mlock %s", i, en(mlock(a, n)));
        say("len #%zu: munlock %s", i, en(munlock(a, n)));
        // Lengths that do not wrap walk every mapping above: the answer depends on the layout.
        if (a + n < a)
            say("len #%zu: mprotect %s", i, en(mprotect(a, n, PROT_READ | PROT_WRITE)));
        munmap(a, 2 * PG);
    }
    // Addresses past the user half.
    char *top = (char *)(1UL << 47);
    say("top: munmap %s, mprotect %s, fixed %s", en(munmap(top, PG)),
        en(mprotect(top, PG, PROT_READ)), mres(mmap(top, PG, PROT_READ, ANON | MAP_FIXED, -1, 0)));
}

/* 30k cycles (about 70k exits): 100k took 38-68 s of a 60 s limit on a loaded 2-core PVM
   machine. Frames freed by munmap are checked by tests/mm_lazy.rs. */
#define CYCLES 30000

static void cycles(void) {
    long bad = 0;
    for (int i = 0; i < CYCLES; i++) {
        size_t n = PG * (1 + i % 7);
        char *p = mmap(0, n, PROT_READ | PROT_WRITE, ANON, -1, 0);
        if (p == MAP_FAILED) {
            bad++;
            continue;
        }
        if (i % 3 == 0)
            mprotect(p, PG, PROT_READ);
        if (munmap(p, n))
            bad++;
    }
    say("%d map/unmap cycles, %ld failures", CYCLES, bad);
}

static void storm(void) {
    // One mapping split page by page by alternating protections until the count limit.
    size_t pages = 140000;
    char *a = mmap(0, pages * PG, PROT_READ | PROT_WRITE, ANON | MAP_NORESERVE, -1, 0);
    say("reserve: %s", mres(a));
    size_t i;
    int err = 0;
    for (i = 1; i < pages; i += 2)
        if (mprotect(a + i * PG, PG, PROT_READ)) {
            err = errno;
            break;
        }
    say("storm stopped by %s, within the limit: %s", err == ENOMEM ? "ENOMEM" : "nothing",
        i / 2 > 30000 && i / 2 < 65530 ? "yes" : "no");
    // At the limit: splitting more fails, unmapping whole pieces works.
    say("split at the limit: mprotect %s, munmap %s", en(mprotect(a + (i + 1) * PG, PG, PROT_READ)),
        en(munmap(a + (i + 3) * PG, PG)));
    say("unmap all: %s", en(munmap(a, pages * PG)));
    char *b = mmap(0, PG, PROT_READ | PROT_WRITE, ANON, -1, 0);
    say("map after: %s", mres(b));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "huge"))
            huge();
        if (!strcmp(argv[i], "cycles"))
            cycles();
        if (!strcmp(argv[i], "storm"))
            storm();
    }
    return 0;
}
