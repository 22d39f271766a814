// Hostile thread and futex calls, one mode per run (argv[1]); each prints Linux's answers so the
// test can compare them with umon's:
//   storm [N]  N (default 100000) raw clone calls for threads that exit at once, at most 64
//              alive, each joined through CLONE_CHILD_CLEARTID before its stack is reused.
//   flags      clone/clone3 flag sets and arguments Linux refuses (EINVAL, EPERM, EFAULT, E2BIG)
//              before creating anything; a child, if one were made anyway, exits at once.
//   forklike   flag sets that make a process, not a thread (fork, vfork, CLONE_VM without
//              CLONE_THREAD), and a thread with a pidfd: "created" natively; umon may say ENOSYS
//              (or EINVAL) until it has processes and pidfds.
//   futex      futex calls on NULL, unmapped, kernel, unaligned, read-only and PROT_NONE
//              addresses, bad timeout pointers, bad second addresses.
//   badstack   a thread whose stack is unmapped: its first push faults and SIGSEGV ends the
//              process (natively a signal; umon exits 139).
//   mmap       8 threads mapping, writing, protecting, checking and unmapping at once.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "say.h"
#include "thr.h"

#define PRIV FUTEX_PRIVATE_FLAG

// Newer than some C libraries' headers; the kernel ABI values.
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ull
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ull
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif

#define SLOTS 64
#define SLOT_STACK (16 * 1024)
static char stacks[SLOTS][SLOT_STACK] __attribute__((aligned(64)));
static int ctids[SLOTS];

static int nothing(void *p) {
    (void)p;
    return 0;
}

static void wait_cleared(int *ctid) {
    for (;;) {
        int v = __atomic_load_n(ctid, __ATOMIC_SEQ_CST);
        if (v == 0)
            return;
        futex6(ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    }
}

static void storm(long n) {
    long created = 0, eagain_waits = 0;
    for (long i = 0; i < n; i++) {
        int s = (int)(i % SLOTS);
        wait_cleared(&ctids[s]);
        for (;;) {
            ctids[s] = -1;
            long tid = raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID, stacks[s] + SLOT_STACK, NULL,
                                 &ctids[s], 0, nothing, NULL);
            if (tid > 0)
                break;
            ctids[s] = 0;
            if (tid != -EAGAIN) {
                say("storm: clone %ld: %s", i, ename(tid));
                return;
            }
            // Out of threads for now: wait for every one alive, then try again.
            eagain_waits++;
            for (int k = 0; k < SLOTS; k++)
                wait_cleared(&ctids[k]);
        }
        created++;
    }
    for (int k = 0; k < SLOTS; k++)
        wait_cleared(&ctids[k]);
    (void)eagain_waits;
    say("storm: %ld threads created and joined", created);
}

static void clone_case(const char *what, unsigned long flags, void *stack, unsigned long tls) {
    static int ptid, ctid;
    long r = raw_clone(flags, stack, &ptid, &ctid, tls, NULL, NULL);
    // A child, if made, exits at once on its own.
    say("%s: %s", what, r > 0 ? "created" : ename(r));
}

struct clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

static void clone3_case(const char *what, void *a, unsigned long size) {
    long r = raw_clone3(a, size);
    say("%s: %s", what, r > 0 ? "created" : ename(r));
}

static void flags(void) {
    char *stack = stacks[0] + SLOT_STACK;
    clone_case("THREAD without SIGHAND", CLONE_VM | CLONE_THREAD, stack, 0);
    clone_case("SIGHAND without VM", CLONE_SIGHAND, stack, 0);
    clone_case("THREAD|SIGHAND without VM", CLONE_THREAD | CLONE_SIGHAND, stack, 0);
    clone_case("FS with NEWNS", CLONE_VM | CLONE_FS | CLONE_NEWNS, stack, 0);
    clone_case("FS with NEWUSER", CLONE_VM | CLONE_FS | CLONE_NEWUSER, stack, 0);
    clone_case("THREAD with NEWUSER", THREAD_FLAGS | CLONE_NEWUSER, stack, 0);
    clone_case("THREAD with NEWPID", THREAD_FLAGS | CLONE_NEWPID, stack, 0);
    clone_case("PIDFD with PARENT_SETTID", THREAD_FLAGS | CLONE_PIDFD | CLONE_PARENT_SETTID, stack, 0);
    clone_case("PIDFD with DETACHED", THREAD_FLAGS | CLONE_PIDFD | CLONE_DETACHED, stack, 0);
    clone_case("THREAD with exit signal", THREAD_FLAGS | SIGCHLD, stack, 0);
    clone_case("SETTLS kernel address", THREAD_FLAGS | CLONE_SETTLS, stack, 0xffff800000000000ul);
    clone_case("SETTLS non-canonical", THREAD_FLAGS | CLONE_SETTLS, stack, 0x0000900000000000ul);

    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = THREAD_FLAGS;
    a.stack = (uint64_t)(uintptr_t)stacks[0];
    a.stack_size = SLOT_STACK;
    clone3_case("clone3 size 0", &a, 0);
    clone3_case("clone3 size 63", &a, 63);
    clone3_case("clone3 NULL args", NULL, sizeof a);
    clone3_case("clone3 unmapped args", (void *)0x1000, sizeof a);
    clone3_case("clone3 kernel args", (void *)0xffff800000000000ul, sizeof a);
    // A larger struct whose tail is not zero: E2BIG.
    static uint64_t big[512];
    memcpy(big, &a, sizeof a);
    big[200] = 1;
    clone3_case("clone3 bigger struct, nonzero tail", big, sizeof big);
    clone3_case("clone3 size beyond a page", big, 8192);
    struct clone_args b = a;
    b.exit_signal = SIGCHLD;
    clone3_case("clone3 THREAD with exit_signal", &b, sizeof b);
    b = a;
    b.stack_size = 0;
    clone3_case("clone3 stack without size", &b, sizeof b);
    b = a;
    b.stack = 0;
    clone3_case("clone3 size without stack", &b, sizeof b);
    b = a;
    b.exit_signal = 65;
    b.flags = CLONE_VM;
    clone3_case("clone3 exit_signal 65", &b, sizeof b);
    b = a;
    b.flags = THREAD_FLAGS | CLONE_CLEAR_SIGHAND;
    clone3_case("clone3 CLEAR_SIGHAND with SIGHAND", &b, sizeof b);
    b = a;
    b.flags = THREAD_FLAGS | CLONE_INTO_CGROUP;
    b.cgroup = (uint64_t)-1;
    clone3_case("clone3 INTO_CGROUP bad fd", &b, sizeof b);
    b = a;
    b.set_tid_size = 1;
    b.set_tid = 0;
    clone3_case("clone3 set_tid NULL with size 1", &b, sizeof b);
    b = a;
    b.flags = 1ull << 40;
    clone3_case("clone3 unknown flag bit 40", &b, sizeof b);
}

static void forklike(void) {
    clone_case("fork (SIGCHLD)", SIGCHLD, NULL, 0);
    clone_case("fork without exit signal", 0, NULL, 0);
    clone_case("vfork (VM|VFORK|SIGCHLD)", CLONE_VM | CLONE_VFORK | SIGCHLD, NULL, 0);
    clone_case("VM without THREAD", CLONE_VM | CLONE_FS | CLONE_FILES | SIGCHLD, stacks[1] + SLOT_STACK, 0);
    clone_case("VM|SIGHAND without THREAD", CLONE_VM | CLONE_SIGHAND | SIGCHLD, stacks[2] + SLOT_STACK, 0);
    // Legacy clone does not check the exit signal: a process, natively.
    clone_case("exit signal 127", CLONE_VM | 0x7f, stacks[3] + SLOT_STACK, 0);
    // A thread with a pidfd: Linux makes it; umon may have no pidfds.
    clone_case("PIDFD with THREAD", THREAD_FLAGS | CLONE_PIDFD, stacks[4] + SLOT_STACK, 0);
    // Reap whatever was made, quietly (a process exits 0 at once).
    while (rsys(SYS_wait4, -1, NULL, __WALL, NULL, 0, 0) > 0) {
    }
}

static void futexes(void) {
    int ok = 0;
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    void *kernel = (void *)0xffffffff81000000ul;
    void *noncanon = (void *)0x0000800000000000ul;
    struct timespec zero = {0, 0};
    struct {
        const char *name;
        void *p;
    } addrs[] = {
        {"NULL", NULL},       {"unmapped", gone},       {"kernel", kernel},
        {"non-canonical", noncanon}, {"read-only", ro},  {"PROT_NONE", none},
        {"unaligned", (char *)&ok + 1},
    };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        void *p = addrs[i].p;
        const char *n = addrs[i].name;
        say("futex %s: wait %s, wait private %s, wait_bitset %s", n,
            ename(futex6(p, FUTEX_WAIT, 0, &zero, NULL, 0)),
            ename(futex6(p, FUTEX_WAIT | PRIV, 0, &zero, NULL, 0)),
            ename(futex6(p, FUTEX_WAIT_BITSET | PRIV, 0, &zero, NULL, FUTEX_BITSET_MATCH_ANY)));
        say("futex %s: wake %s, wake private %s, wake_bitset %s", n,
            ename(futex6(p, FUTEX_WAKE, 1, NULL, NULL, 0)),
            ename(futex6(p, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0)),
            ename(futex6(p, FUTEX_WAKE_BITSET | PRIV, 1, NULL, NULL, 1)));
        int good = 0;
        say("futex %s: wake_op (as 1st) %s, wake_op (as 2nd) %s", n,
            ename(futex6(p, FUTEX_WAKE_OP | PRIV, 1, (void *)1, &good,
                         FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0))),
            ename(futex6(&good, FUTEX_WAKE_OP | PRIV, 1, (void *)1, p,
                         FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0))));
        say("futex %s: cmp_requeue from %s, cmp_requeue to %s, requeue to %s", n,
            ename(rsys(SYS_futex, p, FUTEX_CMP_REQUEUE | PRIV, 1, 1, &good, 0)),
            ename(rsys(SYS_futex, &good, FUTEX_CMP_REQUEUE | PRIV, 1, 1, p, good)),
            ename(rsys(SYS_futex, &good, FUTEX_REQUEUE | PRIV, 1, 1, p, 0)));
        say("futex %s: trylock_pi %s, unlock_pi %s", n,
            ename(futex6(p, FUTEX_TRYLOCK_PI | PRIV, 0, NULL, NULL, 0)),
            ename(futex6(p, FUTEX_UNLOCK_PI | PRIV, 0, NULL, NULL, 0)));
    }
    int w = 0;
    say("futex bad timeout pointer: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 0, (void *)8, NULL, 0)));
    say("futex kernel timeout pointer: %s", ename(futex6(&w, FUTEX_WAIT | PRIV, 0, kernel, NULL, 0)));
    say("futex timeout pointer, value differs: %s",
        ename(futex6(&w, FUTEX_WAIT | PRIV, 1, (void *)8, NULL, 0)));
    say("futex huge timeout, value differs: %s",
        ename(futex6(&w, FUTEX_WAIT | PRIV, 1, &(struct timespec){LONG_MAX, 999999999}, NULL, 0)));
    // Not the PI requeue ops (11, 12) and LOCK_PI2 (13): the C libraries do not use them.
    static const int ops[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15};
    say("futex op numbers with a bad address:");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int op = ops[i];
        // For the requeue ops the 4th argument is nr_requeue, an int from the pointer's low
        // half: a stack address would make the answer depend on ASLR (bit 31), so give 1.
        void *arg4 = (op == FUTEX_REQUEUE || op == FUTEX_CMP_REQUEUE) ? (void *)1 : (void *)&zero;
        long r = rsys(SYS_futex, 8, op | PRIV, 0, arg4, 16, 0);
        say("  op %d: %s", op, ename(r));
    }
    say("futex op with high bits: %s", ename(futex6(&w, FUTEX_WAKE | 0x40000000, 1, NULL, NULL, 0)));
}

static void badstack(void) {
    say("badstack: a thread on an unmapped stack");
    static int ctid = 1;
    long tid = raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID, (void *)0x10000, NULL, &ctid, 0,
                         nothing, NULL);
    if (tid < 0) {
        say("badstack: clone %s", ename(tid));
        return;
    }
    // The fault ends the whole process: this wait never returns.
    wait_cleared(&ctid);
    say("FAIL badstack: the thread exited");
}

#define MAPPERS 8
/* Each cycle is four to six page-table batches that several vCPUs apply in turn (a few
 * hundred microseconds each on PVM with the debug monitor): 600 keep the run well inside the
 * test's limit while the eight threads still overlap throughout. */
#define MAPS 600

static void *mapper(void *p) {
    uintptr_t id = (uintptr_t)p;
    long bad = 0;
    uint64_t x = id + 1;
    for (int i = 0; i < MAPS; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        size_t pages = 1 + (x >> 60);
        size_t len = pages * 4096;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            bad++;
            continue;
        }
        for (size_t k = 0; k < pages; k++)
            bad += m[k * 4096] != 0;
        for (size_t k = 0; k < len; k += 512)
            m[k] = (unsigned char)(id + k + i);
        if (pages > 1) {
            // Drop the middle, keep the ends, protect the first page.
            munmap(m + 4096, (pages - 2) * 4096);
            mprotect(m, 4096, PROT_READ);
            bad += m[0] != (unsigned char)(id + i);
            bad += m[len - 512] != (unsigned char)(id + len - 512 + i);
            munmap(m, 4096);
            munmap(m + len - 4096, 4096);
        } else {
            bad += m[512] != (unsigned char)(id + 512 + i);
            munmap(m, len);
        }
    }
    return (void *)bad;
}

static void mmaps(void) {
    pthread_t t[MAPPERS];
    for (uintptr_t i = 0; i < MAPPERS; i++)
        thr_create(&t[i], NULL, mapper, (void *)i);
    long bad = 0;
    for (int i = 0; i < MAPPERS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)(uintptr_t)r;
    }
    say("mmap: %d threads x %d mappings, wrong bytes or failures %ld", MAPPERS, MAPS, bad);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "storm"))
        storm(argc > 2 ? atol(argv[2]) : 100000);
    else if (!strcmp(mode, "flags"))
        flags();
    else if (!strcmp(mode, "forklike"))
        forklike();
    else if (!strcmp(mode, "futex"))
        futexes();
    else if (!strcmp(mode, "badstack"))
        badstack();
    else if (!strcmp(mode, "mmap"))
        mmaps();
    else {
        say("usage: thr_hostile storm [N]|flags|forklike|futex|badstack|mmap");
        return 2;
    }
    return 0;
}
