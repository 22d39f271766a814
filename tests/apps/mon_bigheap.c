// mon_bigheap: reserves more than 8 GiB of anonymous memory (one namespace's worth) without
// touching it, then touches a few pages at both ends of the reservation and grows the break
// past the same size. Prints "mapped N MiB" and "brk N MiB" and exits 0; any failure exits 1
// with what failed. argv[1]: the reservation in MiB.
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "say.h"

static void touch(volatile char *p, size_t len) {
    for (size_t off = 0; off < len; off += 4096)
        p[off] = (char)(off >> 12);
    for (size_t off = 0; off < len; off += 4096)
        if (p[off] != (char)(off >> 12)) {
            say("memory at %p does not keep what was written", (void *)(p + off));
            exit(1);
        }
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoull(argv[1], 0, 10) : 9 * 1024;
    size_t len = mib << 20;
    char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        say("mmap of %zu MiB failed: %s", mib, strerror(errno));
        return 1;
    }
    touch(p, 1 << 16);
    touch(p + len - (1 << 16), 1 << 16);
    say("mapped %zu MiB", mib);
    if (munmap(p, len) != 0) {
        say("munmap failed: %s", strerror(errno));
        return 1;
    }
    char *base = sbrk(0);
    if (sbrk((intptr_t)len) == (void *)-1) {
        say("sbrk of %zu MiB failed: %s", mib, strerror(errno));
        return 1;
    }
    touch(base + len - (1 << 16), 1 << 16);
    say("brk %zu MiB", mib);
    return 0;
}
