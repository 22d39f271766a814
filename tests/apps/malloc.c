// malloc: allocates argv[1] MiB (default 512) with malloc, writes a pattern into every 4 KiB
// page, reads it all back, frees the block, and does the same a second time (so freed memory
// is really returned and reusable). Prints "ok" and exits 0.
//
// If malloc fails it prints "ENOMEM" and exits 12 (the value of ENOMEM). A wrong value read
// back prints "mismatch at ..." and exits 1.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096

// Fills one word at the start and one at the end of every page: every page is touched (and
// so must be backed by guest memory), without spending time on a full memset.
static int fill_and_check(size_t mib, uint64_t salt) {
    size_t size = mib * 1024 * 1024;
    volatile uint64_t *p = malloc(size);
    if (p == NULL) {
        printf("ENOMEM\n");
        return 12;
    }
    size_t words_per_page = PAGE / sizeof(uint64_t);
    size_t pages = size / PAGE;
    for (size_t i = 0; i < pages; i++) {
        p[i * words_per_page] = i ^ salt;
        p[i * words_per_page + words_per_page - 1] = ~i ^ salt;
    }
    for (size_t i = 0; i < pages; i++) {
        uint64_t first = p[i * words_per_page];
        uint64_t last = p[i * words_per_page + words_per_page - 1];
        if (first != (i ^ salt) || last != (~i ^ salt)) {
            printf("mismatch at page %zu: %#llx %#llx\n", i, (unsigned long long)first,
                   (unsigned long long)last);
            return 1;
        }
    }
    free((void *)p);
    return 0;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
    int rc = fill_and_check(mib, 0x5555aaaa5555aaaaULL);
    if (rc == 0)
        rc = fill_and_check(mib, 0x0123456789abcdefULL);
    if (rc == 0)
        printf("ok\n");
    return rc;
}
