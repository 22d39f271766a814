// Robust futexes: a thread that dies holding a robust mutex hands the next locker EOWNERDEAD
// (whether that locker was already blocked or comes later); without pthread_mutex_consistent the
// mutex becomes ENOTRECOVERABLE. Then the kernel side alone: a raw thread registers its own
// robust list and exits holding a futex word; the kernel marks it FUTEX_OWNER_DIED. Also
// get_robust_list / set_robust_list answers.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "say.h"
#include "thr.h"

static pthread_mutex_t m;

static void init_robust(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
}

static void *die_holding(void *p) {
    (void)p;
    pthread_mutex_lock(&m);
    return NULL; // exits with the mutex held
}

static volatile int holder_ready, holder_may_die;
static void *hold_then_die(void *p) {
    (void)p;
    pthread_mutex_lock(&m);
    holder_ready = 1;
    while (!holder_may_die)
        sched_yield();
    pthread_exit(NULL);
}

static void *blocked_locker(void *p) {
    int rc = pthread_mutex_lock(&m);
    *(int *)p = rc;
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(&m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void library(void) {
    init_robust();
    pthread_t t;
    thr_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int rc = pthread_mutex_lock(&m);
    say("lock after the owner died: %s", ename(-rc));
    say("consistent: %s", ename(-pthread_mutex_consistent(&m)));
    say("unlock: %s", ename(-pthread_mutex_unlock(&m)));
    say("lock again: %s", ename(-pthread_mutex_lock(&m)));
    pthread_mutex_unlock(&m);

    // A waiter already blocked in lock when the owner dies.
    holder_ready = holder_may_die = 0;
    pthread_t h, w;
    int wrc = -1;
    thr_create(&h, NULL, hold_then_die, NULL);
    while (!holder_ready)
        sched_yield();
    thr_create(&w, NULL, blocked_locker, &wrc);
    holder_may_die = 1;
    pthread_join(h, NULL);
    pthread_join(w, NULL);
    say("blocked waiter when the owner died: %s", ename(-wrc));

    // Not made consistent: unusable for everyone after.
    thr_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    say("lock after the owner died again: %s", ename(-pthread_mutex_lock(&m)));
    say("unlock without consistent: %s", ename(-pthread_mutex_unlock(&m)));
    say("lock now: %s", ename(-pthread_mutex_lock(&m)));
}

// The kernel's ABI (struct robust_list_head in <linux/futex.h>).
struct robust_list {
    struct robust_list *next;
};
struct robust_list_head {
    struct robust_list list;
    long futex_offset;
    struct robust_list *list_op_pending;
};
struct robust_lock {
    struct robust_list link;
    int word;
};

static struct robust_list_head head;
static struct robust_lock locks[3];
static long set_result;

static int register_and_die(void *p) {
    (void)p;
    int tid = (int)rsys(SYS_gettid, 0, 0, 0, 0, 0, 0);
    head.list.next = &locks[0].link;
    locks[0].link.next = &locks[1].link;
    locks[1].link.next = &head.list;
    head.futex_offset = (long)offsetof(struct robust_lock, word);
    // Pending: being taken when the thread died; the kernel handles it too.
    head.list_op_pending = &locks[2].link;
    locks[0].word = tid;
    locks[1].word = tid | 0x80000000; // FUTEX_WAITERS
    locks[2].word = tid;
    set_result = rsys(SYS_set_robust_list, &head, sizeof head, 0, 0, 0, 0);
    return 0;
}

static void kernel(void) {
    size_t sz = 64 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static int ctid;
    ctid = 1;
    long tid = raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID, stack + sz, NULL, &ctid, 0,
                         register_and_die, NULL);
    if (tid < 0) {
        say("clone: %s", ename(tid));
        return;
    }
    while (__atomic_load_n(&ctid, __ATOMIC_SEQ_CST) != 0)
        futex6(&ctid, FUTEX_WAIT, 1, NULL, NULL, 0);
    say("raw thread: set_robust_list %s", ename(set_result));
    say("raw thread: words after its death: %#x %#x %#x", (unsigned)locks[0].word,
        (unsigned)locks[1].word, (unsigned)locks[2].word);
    munmap(stack, sz);

    struct robust_list_head *got = NULL;
    size_t len = 0;
    long r = rsys(SYS_get_robust_list, 0, &got, &len, 0, 0, 0);
    say("get_robust_list self: %s, len %zu, head set by the C library: %s", ename(r), len,
        got ? "yes" : "no");
    r = rsys(SYS_get_robust_list, 0x3fffffff, &got, &len, 0, 0, 0);
    say("get_robust_list unknown tid: %s", ename(r));
    r = rsys(SYS_get_robust_list, 0, 8, &len, 0, 0, 0);
    say("get_robust_list bad head pointer: %s", ename(r));
    say("set_robust_list wrong size: %s", ename(rsys(SYS_set_robust_list, got, 8, 0, 0, 0, 0)));
}

int main(void) {
    library();
    kernel();
    say("done");
    return 0;
}
