// Shared by the hostile long-tail apps (tests/apps/hostile_*.c, tests/hostile_longtail2.rs):
// raw syscalls that return -errno, the bad addresses every app passes, and a line printer.
#ifndef UMON_TEST_HOSTILE_COMMON_H
#define UMON_TEST_HOSTILE_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "say.h"

// The raw call, -errno on failure (never the C library's wrapper: its checks are not the kernel's).
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    long v = syscall(n, a, b, c, d, e, f);
    return v < 0 ? -errno : v;
}
#define SYS(n, ...) sys6_(n, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define sys6_(n, a, b, c, d, e, f, ...) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define SHOW(label, v) say("%s = %ld", label, (long)(v))

// NULL, the kernel half, non-canonical, a page without access, a read-only page (holding a string).
#define KERNEL ((void *)0xffffffff81000000ul)
#define NONCANON ((void *)0x0000800000000000ul)
static void *unmapped, *rdonly;

static void bad_addresses(void) {
    // Two pages: the first read-only, the second without access (an unmapped page could be
    // mapped again by a later mmap).
    rdonly = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unmapped = (char *)rdonly + 4096;
    mprotect(unmapped, 4096, PROT_NONE);
    strcpy(rdonly, "user.ro");
    mprotect(rdonly, 4096, PROT_READ);
}

// The pointers an output or input argument gets, with their names.
#define N_BAD 5
static const char *const bad_name[N_BAD] = {"null", "kernel", "noncanon", "noaccess", "rdonly"};
static void *bad_ptr(int i) {
    switch (i) {
    case 0: return NULL;
    case 1: return KERNEL;
    case 2: return NONCANON;
    case 3: return unmapped;
    default: return rdonly;
    }
}

#endif
