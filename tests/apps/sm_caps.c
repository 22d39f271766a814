/* capget/capset: the sets are first dropped to nothing (which Linux allows anyone), so the
 * native run and umon's capability-less app answer alike. Argument `hostile` adds bad
 * pointers. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void res(const char *what, long r) {
    printf("%s: %ld errno %d\n", what, r < 0 ? -1L : r, r < 0 ? errno : 0);
    errno = 0;
}

static long capget_(void *h, void *d) { return syscall(SYS_capget, h, d); }
static long capset_(void *h, void *d) { return syscall(SYS_capset, h, d); }

static void show(const char *what, struct __user_cap_data_struct *d, int n) {
    printf("%s:", what);
    for (int i = 0; i < n; i++)
        printf(" [%x %x %x]", d[i].effective, d[i].permitted, d[i].inheritable);
    printf("\n");
}

int main(int argc, char **argv) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[3];
    memset(d, 0, sizeof d);
    res("capset drop all (v3)", capset_(&h, d));

    memset(d, 0xa5, sizeof d);
    res("capget v3", capget_(&h, d));
    show("v3 sets", d, 3);
    memset(d, 0xa5, sizeof d);
    h.version = _LINUX_CAPABILITY_VERSION_2;
    res("capget v2", capget_(&h, d));
    show("v2 sets", d, 3);
    memset(d, 0xa5, sizeof d);
    h.version = _LINUX_CAPABILITY_VERSION_1;
    res("capget v1", capget_(&h, d));
    show("v1 sets", d, 3);

    h.version = 0x12345678;
    res("capget unknown version, NULL data", capget_(&h, NULL));
    printf("version written back: %#x\n", h.version);
    h.version = 0;
    res("capget version 0, data", capget_(&h, d));
    printf("version written back: %#x\n", h.version);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    res("capget v3, NULL data", capget_(&h, NULL));
    h.pid = -1;
    res("capget pid -1", capget_(&h, d));
    h.pid = 0x3ffffe;
    res("capget no such pid", capget_(&h, d));
    h.pid = getpid();
    res("capget own pid", capget_(&h, d));
    h.pid = 0;

    memset(d, 0, sizeof d);
    d[0].effective = 1;
    res("capset raise effective CAP_CHOWN", capset_(&h, d));
    memset(d, 0, sizeof d);
    d[0].permitted = 1 << 21;
    res("capset raise permitted", capset_(&h, d));
    memset(d, 0, sizeof d);
    d[1].inheritable = 1;
    res("capset raise inheritable cap 32", capset_(&h, d));
    memset(d, 0, sizeof d);
    d[1].effective = d[1].permitted = d[1].inheritable = 0x80000000u;
    res("capset unknown cap 63 only", capset_(&h, d));
    memset(d, 0, sizeof d);
    h.pid = 0x3ffffe;
    res("capset other pid", capset_(&h, d));
    h.pid = getpid();
    res("capset own pid", capset_(&h, d));
    h.pid = 0;
    h.version = _LINUX_CAPABILITY_VERSION_1;
    d[1].effective = 1; /* v1 reads one struct only */
    res("capset v1 (second struct ignored)", capset_(&h, d));
    h.version = 7;
    res("capset unknown version", capset_(&h, d));
    printf("version written back: %#x\n", h.version);
    h.version = _LINUX_CAPABILITY_VERSION_3;

    if (argc > 1 && strcmp(argv[1], "hostile") == 0) {
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(page, 4096);
        res("capget bad header", capget_(page, d));
        res("capget bad data", capget_(&h, page));
        res("capset bad header", capset_(page, d));
        res("capset bad data", capset_(&h, page));
        /* A header whose pid lies on an unmapped page. */
        char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(two + 4096, 4096);
        unsigned *edge = (unsigned *)(two + 4092);
        *edge = _LINUX_CAPABILITY_VERSION_3;
        res("capget pid unreadable", capget_(edge, d));
        res("capset pid unreadable", capset_(edge, d));
        *edge = 1;
        res("capget unknown version, pid unreadable", capget_(edge, d));
        printf("version written back: %#x\n", *edge);
        /* Data that ends past the mapping: v3 needs 24 bytes, 12 are there. */
        struct __user_cap_data_struct *tail = (void *)(two + 4096 - 12);
        memset(tail, 0, 12);
        res("capget data half mapped", capget_(&h, tail));
        res("capset data half mapped", capset_(&h, tail));
        h.version = _LINUX_CAPABILITY_VERSION_1;
        res("capget v1 data of 12 bytes", capget_(&h, tail));
        res("capset v1 data of 12 bytes", capset_(&h, tail));
        /* A read-only header with an unknown version: the write-back faults. */
        unsigned *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ro[0] = 3;
        ro[1] = 0;
        mprotect(ro, 4096, PROT_READ);
        res("capget unknown version, read-only header", capget_(ro, NULL));
        res("capset unknown version, read-only header", capset_(ro, d));
    }
    return 0;
}
