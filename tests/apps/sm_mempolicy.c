/* The NUMA memory-policy calls on a one-node machine (the host these tests run on natively
 * has one node): get_mempolicy, set_mempolicy, mbind, migrate_pages. Argument `hostile` adds
 * bad pointers and sizes. Memory is read back through masks filled with 0xa5 first, so what
 * the kernel writes (and does not) shows. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_RELATIVE_NODES (1 << 14)
#define MPOL_F_NUMA_BALANCING (1 << 13)
#define MPOL_F_NODE 1
#define MPOL_F_ADDR 2
#define MPOL_F_MEMS_ALLOWED 4
#define MPOL_MF_STRICT 1
#define MPOL_MF_MOVE 2

static void res(const char *what, long r) {
    printf("%s: %ld errno %d\n", what, r < 0 ? -1L : r, r < 0 ? errno : 0);
    errno = 0;
}

static unsigned long mask[600];
static int mode;

static long get(unsigned long maxnode, void *addr, unsigned long flags) {
    memset(mask, 0xa5, sizeof mask);
    mode = 0x5a5a;
    return syscall(SYS_get_mempolicy, &mode, mask, maxnode, addr, flags);
}

static void got(const char *what, long r) {
    res(what, r);
    printf("  mode %#x mask %lx %lx %lx\n", mode, mask[0], mask[1], mask[2]);
}

static long set(int m, unsigned long nodes, unsigned long maxnode) {
    unsigned long n[2] = {nodes, 0};
    return syscall(SYS_set_mempolicy, m, n, maxnode);
}

static long bind(void *p, unsigned long len, int m, unsigned long nodes, unsigned flags) {
    unsigned long n[2] = {nodes, 0};
    return syscall(SYS_mbind, p, len, m, n, 64, flags);
}

int main(int argc, char **argv) {
    char *mem = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mem[0] = 1;
    char *hole = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 4096);

    got("get default, maxnode 64", get(64, NULL, 0));
    got("get maxnode 1", get(1, NULL, 0));
    got("get maxnode 2", get(2, NULL, 0));
    got("get maxnode 200", get(200, NULL, 0));
    got("get maxnode 0", get(0, NULL, 0));
    got("get maxnode 32769", get(32769, NULL, 0));
    got("get maxnode 32770", get(32770, NULL, 0));
    got("get mems allowed", get(64, NULL, MPOL_F_MEMS_ALLOWED));
    got("get mems allowed|node", get(64, NULL, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE));
    got("get flag 8", get(64, NULL, 8));
    got("get addr without F_ADDR", get(64, mem, 0));
    got("get F_ADDR", get(64, mem, MPOL_F_ADDR));
    got("get F_ADDR mid-page", get(64, mem + 4097, MPOL_F_ADDR));
    got("get F_ADDR unmapped", get(64, hole, MPOL_F_ADDR));
    got("get F_NODE (default policy)", get(64, NULL, MPOL_F_NODE));
    got("get F_NODE|F_ADDR", get(64, mem, MPOL_F_NODE | MPOL_F_ADDR));
    res("get NULL mode and mask", syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0));

    res("set bind node 0", set(MPOL_BIND, 1, 2));
    got("  get", get(64, NULL, 0));
    got("  get F_ADDR", get(64, mem, MPOL_F_ADDR));
    res("set bind node 1", set(MPOL_BIND, 2, 3));
    res("set bind no nodes", set(MPOL_BIND, 0, 64));
    res("set bind node 1 past maxnode", set(MPOL_BIND, 3, 2));
    res("set interleave nodes 0,1", set(MPOL_INTERLEAVE, 3, 64));
    got("  get", get(64, NULL, 0));
    got("  get F_NODE", get(64, NULL, MPOL_F_NODE));
    res("set preferred, no nodes", syscall(SYS_set_mempolicy, MPOL_PREFERRED, NULL, 0));
    got("  get", get(64, NULL, 0));
    res("set preferred|static, no nodes", set(MPOL_PREFERRED | MPOL_F_STATIC_NODES, 0, 64));
    res("set local with a node", set(MPOL_LOCAL, 1, 64));
    res("set local", set(MPOL_LOCAL, 0, 64));
    got("  get", get(64, NULL, 0));
    res("set mode 7", set(7, 1, 64));
    res("set mode -1", set(-1, 1, 64));
    res("set static|relative", set(MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, 1, 64));
    res("set bind|static nodes 0,1", set(MPOL_BIND | MPOL_F_STATIC_NODES, 3, 64));
    got("  get", get(64, NULL, 0));
    res("set bind|static node 5", set(MPOL_BIND | MPOL_F_STATIC_NODES, 1 << 5, 64));
    res("set bind|relative node 5", set(MPOL_BIND | MPOL_F_RELATIVE_NODES, 1 << 5, 64));
    got("  get", get(64, NULL, 0));
    res("set default|balancing", set(MPOL_DEFAULT | MPOL_F_NUMA_BALANCING, 0, 64));
    res("set bind|balancing", set(MPOL_BIND | MPOL_F_NUMA_BALANCING, 1, 64));
    got("  get", get(64, NULL, 0));
    res("set default with a node", set(MPOL_DEFAULT, 1, 64));
    res("set default", set(MPOL_DEFAULT, 0, 64));
    got("  get", get(64, NULL, 0));
    {
        static unsigned long big[40];
        big[1023 / 64] = 1UL << (1023 % 64);
        big[0] = 1;
        res("set bind nodes 0,1023", syscall(SYS_set_mempolicy, MPOL_BIND, big, 1025));
        big[1024 / 64] = 1;
        res("set bind node 1024", syscall(SYS_set_mempolicy, MPOL_BIND, big, 1100));
        res("set bind node 1024 past maxnode", syscall(SYS_set_mempolicy, MPOL_BIND, big, 1025));
        res("set default maxnode 32769", syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 32769));
        res("set default", set(MPOL_DEFAULT, 0, 64));
    }

    res("mbind bind node 0", bind(mem, 4 * 4096, MPOL_BIND, 1, 0));
    res("mbind strict|move", bind(mem, 4096, MPOL_BIND, 1, MPOL_MF_STRICT | MPOL_MF_MOVE));
    res("mbind unaligned", bind(mem + 1, 4096, MPOL_BIND, 1, 0));
    res("mbind length 0", bind(mem, 0, MPOL_BIND, 1, 0));
    res("mbind length 0, bad mode", bind(mem, 0, 9, 1, 0));
    res("mbind length 0, no nodes", bind(mem, 0, MPOL_BIND, 0, 0));
    res("mbind flag 8", bind(mem, 4096, MPOL_BIND, 1, 8));
    res("mbind node 1", bind(mem, 4096, MPOL_BIND, 2, 0));
    res("mbind default with a node", bind(mem, 4096, MPOL_DEFAULT, 1, 0));
    res("mbind default", bind(mem, 4096, MPOL_DEFAULT, 0, 0));
    res("mbind unmapped", bind(hole, 4096, MPOL_BIND, 1, 0));
    res("mbind wraps", bind((void *)-4096L, 8192, MPOL_BIND, 1, 0));
    res("mbind preferred no nodes", bind(mem, 4096, MPOL_PREFERRED, 0, 0));

    unsigned long one[2] = {1, 0};
    res("migrate_pages self 0->0", syscall(SYS_migrate_pages, 0, 64, one, one));
    res("migrate_pages own pid", syscall(SYS_migrate_pages, getpid(), 64, one, one));
    res("migrate_pages no such pid", syscall(SYS_migrate_pages, 0x3ffffe, 64, one, one));
    res("migrate_pages no new nodes", syscall(SYS_migrate_pages, 0, 64, one, NULL));

    if (argc > 1 && strcmp(argv[1], "hostile") == 0) {
        res("get bad mode pointer", syscall(SYS_get_mempolicy, hole, mask, 64, NULL, 0));
        res("get bad mask pointer", syscall(SYS_get_mempolicy, &mode, hole, 64, NULL, 0));
        res("get bad mask pointer, maxnode 1",
            syscall(SYS_get_mempolicy, &mode, hole, 1, NULL, 0));
        /* A page followed by an unmapped one. */
        char *guard = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(guard + 4096, 4096);
        unsigned long *end = (unsigned long *)(guard + 4096 - 8);
        res("get mask past the mapping's end",
            syscall(SYS_get_mempolicy, &mode, end, 200, NULL, 0));
        *end = 1;
        res("set mask past the mapping", syscall(SYS_set_mempolicy, MPOL_BIND, end, 200));
        res("set mask past the mapping, bits over 1024",
            syscall(SYS_set_mempolicy, MPOL_BIND, end, 2000));
        res("get huge maxnode", syscall(SYS_get_mempolicy, &mode, mask, ~0UL, NULL, 0));
        res("get F_ADDR at -1", syscall(SYS_get_mempolicy, &mode, NULL, 0, (void *)-1L, MPOL_F_ADDR));
        res("set bad mask", syscall(SYS_set_mempolicy, MPOL_BIND, hole, 64));
        res("set huge maxnode", syscall(SYS_set_mempolicy, MPOL_BIND, mask, ~0UL));
        res("set maxnode 0", syscall(SYS_set_mempolicy, MPOL_BIND, mask, 0));
        res("mbind bad mask", syscall(SYS_mbind, mem, 4096, MPOL_BIND, hole, 64, 0));
        res("mbind huge len", syscall(SYS_mbind, mem, ~0UL, MPOL_BIND, one, 64, 0));
        res("mbind huge maxnode", syscall(SYS_mbind, mem, 4096, MPOL_BIND, one, ~0UL, 0));
        res("mbind mode high bits", syscall(SYS_mbind, mem, 4096, 0x100000002UL, one, 64, 0));
        res("migrate_pages bad old", syscall(SYS_migrate_pages, 0, 64, hole, one));
        res("migrate_pages bad new", syscall(SYS_migrate_pages, 0, 64, one, hole));
        res("migrate_pages huge maxnode", syscall(SYS_migrate_pages, 0, ~0UL, one, one));
    }
    return 0;
}
