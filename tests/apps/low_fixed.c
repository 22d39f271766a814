/* MAP_FIXED in the low user range, where ET_EXEC programs are linked (0x400000 up): what
 * glibc's ld.so does to a non-PIE program when it is run as `ld.so ./prog`. Built as a
 * static-pie, so nothing of the program lies there natively either.
 *
 * No argument: prints one line per step (results, errnos, the /proc/self/maps lines of the
 * range), then touches the unmapped range and prints the SIGSEGV's si_code and address from
 * its handler, and exits 0 there. The file argument, if any, is mapped from the low range
 * too (its first page must begin with the ELF magic).
 *
 * "core": MAP_FIXED at 0x200000 (below 0x400000) and prints the errno; natively this is
 * free memory, under umon the core's, which no mapping may take. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOW ((char *)0x1000000)
#define LOW_LEN (4UL << 20)

/* Print the /proc/self/maps lines that begin in [lo, hi). */
static void maps(unsigned long lo, unsigned long hi) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start = strtoul(line, NULL, 16);
        if (start >= lo && start < hi)
            printf("maps: %s", line);
    }
    if (f)
        fclose(f);
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    printf("signal %d code %d addr %p\n", sig, si->si_code, si->si_addr);
    fflush(stdout);
    _exit(0);
}

static void result(const char *what, void *p) {
    if (p == MAP_FAILED)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: %p\n", what, p);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "core") == 0) {
        void *p = mmap((void *)0x200000, 4096, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        result("core", p);
        return 0;
    }
    /* Anonymous, fixed: 4 MiB, 2 MiB aligned (demand paging may bind 2 MiB frames). */
    char *p = mmap(LOW, LOW_LEN, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    result("fixed", p);
    if (p == MAP_FAILED)
        return 1;
    unsigned long sum = 0;
    for (unsigned long i = 0; i < LOW_LEN; i += 4096)
        p[i] = (char)(i >> 12);
    for (unsigned long i = 0; i < LOW_LEN; i += 4096)
        sum += (unsigned char)p[i];
    printf("sum %lu, untouched byte %d\n", sum, p[4097]);
    /* NOREPLACE over it: EEXIST; next to it: fine. */
    result("noreplace over", mmap(LOW + 4096, 4096, PROT_READ,
                                  MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    result("noreplace after", mmap(LOW + LOW_LEN, 8192, PROT_READ,
                                   MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    /* A free hint there is honoured. */
    result("hint", mmap((void *)0x3000000, 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    /* MAP_FIXED over part of it reads zeros; mprotect splits it. */
    result("fixed over", mmap(LOW + 8192, 4096, PROT_READ | PROT_WRITE,
                              MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    printf("over reads %d, next keeps %d\n", p[8192], p[12288]);
    printf("mprotect %d\n", mprotect(LOW + 2 * 4096, 4096, PROT_READ));
    if (argc > 1) {
        int fd = open(argv[1], O_RDONLY);
        char *f = mmap((void *)0x2000000, 8192, PROT_READ, MAP_FIXED | MAP_PRIVATE, fd, 0);
        result("file", f);
        if (f != MAP_FAILED)
            printf("file starts %s\n", memcmp(f, "\177ELF", 4) == 0 ? "ELF" : "other");
        close(fd);
    }
    maps(0x400000, 0x10000000);
    printf("munmap %d\n", munmap(LOW, LOW_LEN));
    maps(0x400000, 0x10000000);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    *(volatile char *)(LOW + 4096) = 1;
    printf("no fault\n");
    return 1;
}
