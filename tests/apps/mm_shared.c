/* MAP_SHARED memory compared with Linux line by line (tests/mm_shared.rs): `mm_shared MODE
 * [DIR]`. Only the first process prints; children report through exit statuses and through the
 * shared memory itself, so the output is the same however the processes are scheduled. No
 * address, pid or time is printed. A wait that never ends (memory that is not really shared, a
 * wake that never arrives) gives up after a few seconds, says so and ends the children, so a
 * broken run is bounded and shows where it stopped. Modes:
 *   anon          MAP_SHARED|MAP_ANONYMOUS across fork: the child's stores seen after waitpid
 *                 and while both run, grandchildren, atomic counters from two processes, a
 *                 MAP_PRIVATE page next to it staying private, a child's munmap/mprotect/new
 *                 mapping staying its own
 *   anon_edges    madvise DONTNEED/REMOVE/DONTFORK/WIPEONFORK on shared anonymous memory,
 *                 mremap of it (moved in a child, grown past its object: SIGBUS, an alias made
 *                 with old_size 0), flag errors (MAP_SHARED_VALIDATE, GROWSDOWN, offsets)
 *   devzero       MAP_SHARED of /dev/zero (shared anonymous memory) and MAP_PRIVATE of it
 *   memfd         MAP_SHARED of a memfd: two mappings, across fork, ftruncate, write seals
 *   sem           sem_init(pshared=1): 1000 ping-pongs between parent and child, 3 waiters
 *   mutex         PTHREAD_PROCESS_SHARED mutex (10000 increments from 2 processes) and
 *                 condition variable (200 turns each way)
 *   robust        a robust process-shared mutex whose owner dies, with and without a waiter
 *   futex         raw FUTEX_WAIT/FUTEX_WAKE/FUTEX_CMP_REQUEUE between processes; private
 *                 futexes and futexes on MAP_PRIVATE memory do not cross processes
 *   requeue_late  6 waiters (3 processes, 2 threads each, timed and untimed) moved from f to
 *                 g with FUTEX_CMP_REQUEUE, left asleep 1.6 s, then woken on g; the same with
 *                 a process-shared condition variable's broadcast; requeued
 *                 waiters never woken time out on time (relative and absolute deadlines);
 *                 FUTEX_WAKE_BITSET wakes only waiters whose bitset it meets
 *   stops         a shared futex wait cut short: a signal to the process and to one thread
 *                 (a handler: EINTR), SIGSTOP and SIGCONT with two threads waiting (restarted,
 *                 woken after), exit_group from another thread (the waiter ends with it)
 *   wait_forever  two threads of the process and two of a child wait on a shared futex word
 *                 nobody wakes; prints "waiting" once they are in the kernel (for the test to
 *                 end it from outside: --timeout, SIGTERM)
 *   robust_threads  a robust process-shared mutex held by a second thread of a child: the
 *                 child's exit_group from its main thread (a waiter in the kernel, and a lock
 *                 after the child ended) and the holder's own SYS_exit make it EOWNERDEAD
 *   file DIR      a file mapping against read/write/pread/pwrite, two mappings, msync, a file
 *                 grown with ftruncate before mapping; the file stays for the test to compare
 *   file_fork DIR an inherited file mapping (its fd closed at once) written by a child and a
 *                 grandchild, a child's own mapping at another address, a futex in the file
 *   file_layout DIR  nonzero offsets, mprotect/munmap of a part, mremap grow/move/shrink/alias,
 *                 MAP_SHARED_VALIDATE, MAP_FIXED over another mapping, MAP_POPULATE
 *   file_eof DIR  the page past end of file (SIGBUS), the tail of the last page, the file grown
 *                 and shrunk while mapped, I/O from a page past the end (EFAULT)
 *   errors DIR    EACCES for O_RDONLY/O_WRONLY fds, ENODEV for a pipe, socket, eventfd,
 *                 directory and /dev/null, EBADF; a read-only shared mapping sees later writes
 *   hostile DIR   length 0, huge lengths, unaligned offsets and addresses, MAP_FIXED out of
 *                 range, MAP_FIXED_NOREPLACE, msync errors, EFAULT through shared mappings,
 *                 an unlinked mapped file, MADV_DONTNEED/MADV_REMOVE on a file mapping
 *   ro_volume DIR DIR/ro.txt (the test's, in a read-only volume under umon) opened O_RDONLY
 *   msync_hold DIR  writes DIR/held.dat through a mapping, msync(MS_SYNC), prints "synced" and
 *                 waits for end of file on stdin before unmapping: the test reads the host file
 *                 meanwhile
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#define PG 4096L

/* Not from <linux/futex.h>: musl-gcc has no kernel headers. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY (-1)
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_WRITE 0x0008
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2U
#endif

static const char *errname(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EISDIR: return "EISDIR";
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case ENXIO: return "ENXIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EOVERFLOW: return "EOVERFLOW";
    case EOWNERDEAD: return "EOWNERDEAD";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ETXTBSY: return "ETXTBSY";
    default: {
        static char buf[4][32];
        static int next;
        char *b = buf[next++ % 4];
        snprintf(b, sizeof buf[0], "errno %d", e);
        return b;
    }
    }
}

/* A pthread-style result: "0" or the error's name. */
static const char *rc(int r) { return r == 0 ? "0" : errname(r); }

/* "ok" for a call that returned r >= 0, else the errno's name. */
static const char *en(long r) { return r < 0 ? errname(errno) : "ok"; }

/* An mmap result: "ok" or the errno's name; unmaps a success of `len` bytes when `drop`. */
static const char *mres(void *p, size_t len, int drop) {
    if (p == MAP_FAILED)
        return errname(errno);
    if (drop)
        munmap(p, len);
    return "ok";
}

static void die(const char *what) {
    say("FAIL %s: %s", what, errname(errno));
    exit(1);
}

static void *map(size_t len, int prot, int flags, int fd, off_t off) {
    void *p = mmap(NULL, len, prot, flags, fd, off);
    if (p == MAP_FAILED)
        die("mmap");
    return p;
}

static char *shared_anon(size_t len) {
    return map(len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static char dir[PATH_MAX];

static const char *at(const char *name) {
    static char bufs[4][PATH_MAX + 64];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* A fresh file DIR/NAME holding `len` bytes of a pattern (byte i is 'a' + i % 23). */
static int pattern_file(const char *name, size_t len) {
    int fd = open(at(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create a file");
    char buf[PG];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof buf ? len - done : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)('a' + (done + i) % 23);
        if (pwrite(fd, buf, n, (off_t)done) != (ssize_t)n)
            die("write the pattern");
        done += n;
    }
    return fd;
}

/* `n` bytes at file offset `off` as text (non-printing bytes as '.'). */
static const char *file_text(int fd, off_t off, size_t n) {
    static char bufs[4][128];
    static int next;
    char *b = bufs[next++ % 4];
    char raw[128];
    if (n > sizeof raw - 1)
        n = sizeof raw - 1;
    ssize_t r = pread(fd, raw, n, off);
    if (r < 0) {
        snprintf(b, sizeof bufs[0], "<%s>", errname(errno));
        return b;
    }
    for (ssize_t i = 0; i < r; i++)
        b[i] = raw[i] >= 32 && raw[i] < 127 ? raw[i] : '.';
    b[r] = 0;
    return b;
}

/* `n` bytes of memory as text (non-printing bytes as '.'). */
static const char *mem_text(const char *p, size_t n) {
    static char bufs[4][128];
    static int next;
    char *b = bufs[next++ % 4];
    if (n > sizeof bufs[0] - 1)
        n = sizeof bufs[0] - 1;
    for (size_t i = 0; i < n; i++)
        b[i] = p[i] >= 32 && p[i] < 127 ? p[i] : '.';
    b[n] = 0;
    return b;
}

static long file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

static int all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static const char *yes(int c) { return c ? "yes" : "no"; }

/* ---- faults ---------------------------------------------------------------------------- */

static sigjmp_buf fault_env;
static volatile int fault_sig, fault_code;

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_sig = sig;
    fault_code = si->si_code;
    siglongjmp(fault_env, 1);
}

static void catch_faults(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
        die("sigaction");
}

/* Reads (write = 0) or stores `v` at `p`: "ok" (reads show the byte) or the fault. */
static const char *probe(char *p, int write, char v) {
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    if (sigsetjmp(fault_env, 1) == 0) {
        if (write) {
            *(volatile char *)p = v;
            snprintf(b, sizeof bufs[0], "ok");
        } else {
            char c = *(volatile char *)p;
            snprintf(b, sizeof bufs[0], "ok '%c'", c >= 32 && c < 127 ? c : '.');
        }
        return b;
    }
    const char *code = fault_sig == SIGBUS
                           ? (fault_code == BUS_ADRERR ? "BUS_ADRERR" : "other code")
                           : (fault_code == SEGV_MAPERR   ? "SEGV_MAPERR"
                              : fault_code == SEGV_ACCERR ? "SEGV_ACCERR"
                                                          : "other code");
    snprintf(b, sizeof bufs[0], "%s %s", fault_sig == SIGBUS ? "SIGBUS" : "SIGSEGV", code);
    return b;
}

/* ---- processes and bounded waits --------------------------------------------------------- */

#define WAIT_SECONDS 5

/* Set once a wait has given up: later waits give up at once, so a broken run stays short. */
static int gave_up;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until *p == want: 1, or 0 after giving up. */
static int spin_until(volatile int *p, int want) {
    double end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want) {
        if (now() > end) {
            gave_up = 1;
            return 0;
        }
        sched_yield();
    }
    return 1;
}

/* In a child: waits like spin_until, exiting 99 after giving up. */
static void child_spin(volatile int *p, int want) {
    if (!spin_until(p, want))
        _exit(99);
}

static void store(volatile int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* fork(); the child dies with its parent and never runs the parent's atexit handlers. */
static pid_t child(void) {
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    return pid;
}

/* How `pid` ended, as text. Once a wait has given up, a child still running after another
 * second is killed. */
static const char *reap(pid_t pid) {
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    int st = 0;
    pid_t r = 0;
    if (gave_up) {
        double end = now() + 1;
        while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now() < end)
            usleep(10 * 1000);
        if (r == 0)
            kill(pid, SIGKILL);
    }
    if (r == 0)
        r = waitpid(pid, &st, 0);
    if (r != pid)
        snprintf(b, sizeof bufs[0], "waitpid %s", errname(errno));
    else if (WIFEXITED(st))
        snprintf(b, sizeof bufs[0], "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(b, sizeof bufs[0], "killed by signal %d", WTERMSIG(st));
    else
        snprintf(b, sizeof bufs[0], "status %#x", st);
    return b;
}

static struct timespec in_seconds(int s) {
    struct timespec ts = {s, 0};
    return ts;
}

static struct timespec realtime_deadline(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += gave_up ? 0 : WAIT_SECONDS;
    return ts;
}

static long futex(int *uaddr, int op, int val, const struct timespec *ts, int *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

/* ---- anon ---------------------------------------------------------------------------------- */

static void anon(void) {
    catch_faults();
    char *sh = shared_anon(4 * PG);
    char *pv = map(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile int *flag = (volatile int *)(sh + 3 * PG);
    say("fresh shared memory reads zero: %s", yes(all_zero(sh, 4 * PG)));
    strcpy(sh, "parent before fork");
    strcpy(pv, "parent private");

    pid_t pid = child();
    if (pid == 0) {
        int ok = strcmp(sh, "parent before fork") == 0 && strcmp(pv, "parent private") == 0;
        strcpy(sh, "child after fork");
        strcpy(sh + PG + 7, "second page");
        strcpy(pv, "child private");
        _exit(ok ? 0 : 1);
    }
    say("child (saw the parent's bytes): %s", reap(pid));
    say("shared page after waitpid: %s", sh);
    say("shared second page after waitpid: %s", sh + PG + 7);
    say("private page after waitpid: %s", pv);

    /* Both running: each store is seen by the other while it spins. */
    pid = child();
    if (pid == 0) {
        store(flag, 1);
        child_spin(flag, 2);
        strcpy(sh + 100, "child saw 2");
        store(flag, 3);
        _exit(0);
    }
    int seen1 = spin_until(flag, 1);
    if (seen1)
        store(flag, 2);
    int seen3 = seen1 && spin_until(flag, 3);
    say("handshake while both run: saw 1 %s, saw 3 %s, then %s", yes(seen1), yes(seen3),
        seen3 ? sh + 100 : "-");
    say("handshake child: %s", reap(pid));

    /* A grandchild's stores reach the first process too. */
    pid = child();
    if (pid == 0) {
        pid_t g = child();
        if (g == 0) {
            strcpy(sh + 200, "grandchild was here");
            _exit(0);
        }
        int st = 0;
        waitpid(g, &st, 0);
        int ok = strcmp(sh + 200, "grandchild was here") == 0;
        strcpy(sh + 300, ok ? "child saw the grandchild" : "child did not see it");
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 && ok ? 0 : 1);
    }
    say("grandchild's child: %s", reap(pid));
    say("grandchild's store: %s", sh + 200);
    say("child about grandchild: %s", sh + 300);

    /* Atomic increments from two children and the parent at the same time. */
    long *counter = (long *)(sh + 2 * PG);
    *counter = 0;
    store(flag, 0);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = child();
        if (kids[i] == 0) {
            __atomic_fetch_add(flag, 1, __ATOMIC_ACQ_REL);
            for (int j = 0; j < 100000; j++)
                __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
            _exit(0);
        }
    }
    for (int j = 0; j < 100000; j++)
        __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    const char *s0 = reap(kids[0]), *s1 = reap(kids[1]);
    say("counter from three processes: %ld (children %s, %s; started %d)", *counter, s0, s1,
        *flag);

    /* What a child does to its own view stays its own. */
    pid = child();
    if (pid == 0) {
        mprotect(sh + PG, PG, PROT_READ);
        munmap(sh + 2 * PG, PG);
        char *mine = shared_anon(PG);
        strcpy(mine, "child's own");
        strcpy(sh + 400, "child unmapped a page");
        _exit(0);
    }
    say("child with its own changes: %s", reap(pid));
    say("after it: %s; page 1 writable %s; page 2 %s", sh + 400, probe(sh + PG, 1, 'w'),
        probe(sh + 2 * PG, 0, 0));
    say("private page still: %s", pv);

    /* The parent unmaps its view: a child that still has it keeps the memory. */
    store(flag, 0);
    pid = child();
    if (pid == 0) {
        child_spin(flag, 5);
        strcpy(sh + 500, "after the parent's munmap");
        store(flag, 6);
        _exit(0);
    }
    char *alias = mremap(sh, 0, 4 * PG, MREMAP_MAYMOVE);
    say("alias with old_size 0: %s", mres(alias, 0, 0));
    if (alias != MAP_FAILED) {
        store(flag, 5);
        munmap(sh, 4 * PG);
        volatile int *aflag = (volatile int *)(alias + 3 * PG);
        int seen = spin_until(aflag, 6);
        say("through the alias after munmap: saw 6 %s, %s", yes(seen), seen ? alias + 500 : "-");
    } else {
        gave_up = 1;
    }
    say("child of the unmapped parent: %s", reap(pid));
}

/* ---- anon_edges ---------------------------------------------------------------------------- */

static void anon_edges(void) {
    catch_faults();
    char *sh = shared_anon(2 * PG);
    strcpy(sh, "kept");
    strcpy(sh + PG, "removed");

    /* DONTNEED in a child drops its page table entries only; REMOVE frees the pages. */
    pid_t pid = child();
    if (pid == 0) {
        int r = madvise(sh, PG, MADV_DONTNEED);
        int kept = r == 0 && strcmp(sh, "kept") == 0;
        r = madvise(sh + PG, PG, MADV_REMOVE);
        _exit(kept && r == 0 && all_zero(sh + PG, PG) ? 0 : 1);
    }
    say("child madvise: %s", reap(pid));
    say("after MADV_DONTNEED in the child: %s", sh);
    say("after MADV_REMOVE in the child, zero: %s", yes(all_zero(sh + PG, PG)));
    say("MADV_WIPEONFORK on shared memory: %s", en(madvise(sh, PG, MADV_WIPEONFORK)));

    /* MADV_DONTFORK: the child has no such page. */
    char *df = shared_anon(PG);
    strcpy(df, "not forked");
    say("MADV_DONTFORK: %s", en(madvise(df, PG, MADV_DONTFORK)));
    pid = child();
    if (pid == 0) {
        const char *r = probe(df, 0, 0);
        _exit(strncmp(r, "SIGSEGV SEGV_MAPERR", 19) == 0 ? 7 : 1);
    }
    say("child reading a DONTFORK page: %s", reap(pid));
    say("MADV_DOFORK: %s", en(madvise(df, PG, MADV_DOFORK)));
    pid = child();
    if (pid == 0) {
        strcpy(df, "forked again");
        _exit(0);
    }
    say("child writing it after DOFORK: %s; parent reads %s", reap(pid), df);

    /* A child moves its view with mremap: still the same memory. */
    pid = child();
    if (pid == 0) {
        char *moved = mremap(sh, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                             mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (moved == MAP_FAILED)
            _exit(2);
        strcpy(moved + 10, "moved by the child");
        _exit(0);
    }
    say("child moving its view: %s; parent reads %s", reap(pid), sh + 10);

    /* Grown past the size of its object: the new pages are not backed (SIGBUS). */
    char *g = mremap(sh, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    say("mremap grow of shared anonymous memory: %s", mres(g, 0, 0));
    if (g != MAP_FAILED) {
        say("old pages: %s, %s; page 2 read %s; page 3 write %s", probe(g + 10, 0, 0),
            g + 10, probe(g + 2 * PG, 0, 0), probe(g + 3 * PG, 1, 'x'));
        pid = child();
        if (pid == 0) {
            strcpy(g + 30, "after grow");
            _exit(0);
        }
        say("child after the grow: %s; parent reads %s", reap(pid), g + 30);
        char *s = mremap(g, 4 * PG, PG, 0);
        say("mremap shrink: %s, reads %s", mres(s, 0, 0), s == MAP_FAILED ? "-" : s + 30);
    }

    /* An alias made with old_size 0 is the same memory. */
    char *a = shared_anon(PG);
    char *b = mremap(a, 0, PG, MREMAP_MAYMOVE);
    say("alias with old_size 0: %s", mres(b, 0, 0));
    if (b != MAP_FAILED) {
        strcpy(a, "through a");
        say("alias reads %s, different address %s", b, yes(a != b));
    }
    char *pa = map(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    say("alias of private memory with old_size 0: %s",
        mres(mremap(pa, 0, PG, MREMAP_MAYMOVE), PG, 1));

    /* Flags. */
    int rw = PROT_READ | PROT_WRITE;
    say("MAP_SHARED_VALIDATE|MAP_ANONYMOUS: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0), PG, 1));
    say("MAP_SHARED|MAP_ANONYMOUS|MAP_GROWSDOWN: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0), PG, 1));
    say("MAP_SHARED|MAP_ANONYMOUS offset 1 page: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED | MAP_ANONYMOUS, -1, PG), PG, 1));
    say("MAP_SHARED|MAP_ANONYMOUS offset 1 byte: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 1), PG, 1));
    say("no mapping type: %s", mres(mmap(NULL, PG, rw, MAP_ANONYMOUS, -1, 0), PG, 1));
    say("mapping type 0xf: %s", mres(mmap(NULL, PG, rw, 0xf | MAP_ANONYMOUS, -1, 0), PG, 1));
    char *pop = mmap(NULL, 4 * PG, rw, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    say("MAP_POPULATE: %s, zero %s", mres(pop, 0, 0), yes(pop != MAP_FAILED && all_zero(pop, 4 * PG)));
    char *ro = mmap(NULL, PG, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    say("read-only shared: %s", mres(ro, 0, 0));
    if (ro != MAP_FAILED) {
        const char *before = probe(ro, 1, 'r');
        const char *prot = en(mprotect(ro, PG, rw));
        say("write %s, mprotect RW %s, write %s", before, prot, probe(ro, 1, 'r'));
    }
}

/* ---- devzero ------------------------------------------------------------------------------- */

static void devzero(void) {
    int fd = open("/dev/zero", O_RDWR);
    say("open /dev/zero: %s", en(fd));
    if (fd < 0)
        return;
    char *sh = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *pv = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    say("MAP_SHARED: %s; MAP_PRIVATE: %s", mres(sh, 0, 0), mres(pv, 0, 0));
    close(fd);
    if (sh == MAP_FAILED || pv == MAP_FAILED)
        return;
    say("zero: %s", yes(all_zero(sh, 2 * PG) && all_zero(pv, PG)));
    pid_t pid = child();
    if (pid == 0) {
        strcpy(sh + PG, "child through /dev/zero");
        strcpy(pv, "child private");
        _exit(0);
    }
    say("child: %s", reap(pid));
    say("shared: %s; private zero %s", sh + PG, yes(all_zero(pv, PG)));
    int z = open("/dev/zero", O_RDONLY);
    say("read from /dev/zero into the mapping: %ld", (long)read(z, sh + PG, 5));
    say("after it: %s", mem_text(sh + PG, 12));
    close(z);
}

/* ---- memfd --------------------------------------------------------------------------------- */

static void memfd(void) {
    int fd = (int)syscall(SYS_memfd_create, "mm_shared", MFD_ALLOW_SEALING);
    say("memfd_create: %s", en(fd));
    if (fd < 0)
        return;
    say("ftruncate 2 pages: %s", en(ftruncate(fd, 2 * PG)));
    char *a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *b = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG);
    say("two mappings: %s, %s", mres(a, 0, 0), mres(b, 0, 0));
    if (a == MAP_FAILED || b == MAP_FAILED)
        return;
    strcpy(a + PG, "through a");
    say("b reads %s", b);
    long n = (long)pwrite(fd, "pwritten", 8, 100);
    say("pwrite: %ld; a reads %s", n, mem_text(a + 100, 8));
    strcpy(a + 200, "stored");
    say("pread: %s", file_text(fd, 200, 6));
    pid_t pid = child();
    if (pid == 0) {
        strcpy(b + 50, "child via b");
        _exit(0);
    }
    say("child: %s; a reads %s", reap(pid), a + PG + 50);
    say("ftruncate 3 pages while mapped: %s", en(ftruncate(fd, 3 * PG)));
    char *c = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    say("third page: %s, zero %s", mres(c, 0, 0), yes(c != MAP_FAILED && all_zero(c + 2 * PG, PG)));
    munmap(a, 2 * PG);
    munmap(b, PG);
    if (c != MAP_FAILED)
        munmap(c, 3 * PG);
    say("F_SEAL_WRITE with no shared writable mapping: %s", en(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    say("shared writable mapping of the sealed memfd: %s",
        mres(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), PG, 1));
    char *r = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    say("shared read-only mapping of it: %s, reads %s", mres(r, 0, 0),
        r == MAP_FAILED ? "-" : r + 200);
    if (r != MAP_FAILED)
        say("mprotect it writable: %s", en(mprotect(r, PG, PROT_READ | PROT_WRITE)));
    say("private writable mapping of it: %s",
        mres(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), PG, 1));

    int fd2 = (int)syscall(SYS_memfd_create, "busy", MFD_ALLOW_SEALING);
    ftruncate(fd2, PG);
    char *w = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
    say("F_SEAL_WRITE while a shared writable mapping exists: %s",
        w == MAP_FAILED ? "no mapping" : en(fcntl(fd2, F_ADD_SEALS, F_SEAL_WRITE)));
}

/* ---- sem ----------------------------------------------------------------------------------- */

struct sems {
    sem_t ping, pong, many;
    int count, bad;
    int ready;
};

static int twait(sem_t *s) {
    struct timespec ts = realtime_deadline();
    int r;
    while ((r = sem_timedwait(s, &ts)) != 0 && errno == EINTR)
        ;
    if (r != 0)
        gave_up = 1;
    return r;
}

static void sem(void) {
    struct sems *s = (struct sems *)shared_anon(PG);
    say("sem_init pshared: %s %s %s", en(sem_init(&s->ping, 1, 0)), en(sem_init(&s->pong, 1, 0)),
        en(sem_init(&s->many, 1, 0)));
    pid_t pid = child();
    if (pid == 0) {
        for (int i = 0; i < 1000; i++) {
            if (twait(&s->ping) != 0)
                _exit(99);
            if (s->count != 2 * i + 1)
                s->bad++;
            s->count++;
            sem_post(&s->pong);
        }
        _exit(0);
    }
    int rounds = 0;
    for (; rounds < 1000; rounds++) {
        s->count++;
        sem_post(&s->ping);
        if (twait(&s->pong) != 0)
            break;
        if (s->count != 2 * rounds + 2)
            s->bad++;
    }
    say("ping-pong: %d rounds, count %d, out of turn %d", rounds, s->count, s->bad);
    say("ping-pong child: %s", reap(pid));
    int v = -1;
    sem_getvalue(&s->ping, &v);
    say("sem_getvalue: %d; sem_trywait: %s", v, en(sem_trywait(&s->ping)));

    /* Three children wait on one semaphore; three posts let each through. */
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = child();
        if (kids[i] == 0) {
            __atomic_fetch_add(&s->ready, 1, __ATOMIC_ACQ_REL);
            _exit(twait(&s->many) == 0 ? 0 : 99);
        }
    }
    spin_until(&s->ready, 3);
    for (int i = 0; i < 3; i++)
        sem_post(&s->many);
    for (int i = 0; i < 3; i++)
        say("waiter %d: %s", i, reap(kids[i]));
    sem_getvalue(&s->many, &v);
    say("left on the semaphore: %d", v);
}

/* ---- mutex --------------------------------------------------------------------------------- */

struct locked {
    pthread_mutex_t m;
    pthread_cond_t c;
    long counter;
    int turn, turns, timeouts, started;
};

/* Takes 200 turns: waits until `turn` is `me`, hands it over. */
static void take_turns(struct locked *l, int me) {
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&l->m);
        struct timespec ts = realtime_deadline();
        while (l->turn != me) {
            if (pthread_cond_timedwait(&l->c, &l->m, &ts) == ETIMEDOUT) {
                l->timeouts++;
                gave_up = 1;
                pthread_mutex_unlock(&l->m);
                return;
            }
        }
        l->turns++;
        l->turn = !me;
        pthread_cond_broadcast(&l->c);
        pthread_mutex_unlock(&l->m);
    }
}

static void mutex(void) {
    struct locked *l = (struct locked *)shared_anon(PG);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_condattr_init(&ca);
    say("setpshared: %d %d", pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED),
        pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED));
    say("init: %d %d", pthread_mutex_init(&l->m, &ma), pthread_cond_init(&l->c, &ca));
    pid_t pid = child();
    if (pid == 0) {
        __atomic_store_n(&l->started, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < 5000; i++) {
            pthread_mutex_lock(&l->m);
            long v = l->counter;
            if (i % 64 == 0)
                sched_yield();
            l->counter = v + 1;
            pthread_mutex_unlock(&l->m);
        }
        _exit(0);
    }
    spin_until(&l->started, 1);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&l->m);
        long v = l->counter;
        if (i % 64 == 0)
            sched_yield();
        l->counter = v + 1;
        pthread_mutex_unlock(&l->m);
    }
    say("incrementer: %s", reap(pid));
    say("counter: %ld", l->counter);

    l->turn = 0;
    pid = child();
    if (pid == 0) {
        take_turns(l, 1);
        _exit(l->timeouts ? 99 : 0);
    }
    take_turns(l, 0);
    say("turn taker: %s", reap(pid));
    say("turns: %d, timeouts %d", l->turns, l->timeouts);
    say("trylock: %s", rc(pthread_mutex_trylock(&l->m)));
    pid = child();
    if (pid == 0)
        _exit(pthread_mutex_trylock(&l->m) == EBUSY ? 0 : 1);
    say("child's trylock of the held mutex is EBUSY: %s", reap(pid));
    pthread_mutex_unlock(&l->m);
}

/* ---- robust -------------------------------------------------------------------------------- */

static void robust(void) {
    struct locked *l = (struct locked *)shared_anon(PG);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    say("init: %d", pthread_mutex_init(&l->m, &ma));

    /* The owner dies while nobody waits. */
    pid_t pid = child();
    if (pid == 0) {
        pthread_mutex_lock(&l->m);
        l->counter = 1;
        _exit(0);
    }
    say("owner: %s", reap(pid));
    struct timespec ts = realtime_deadline();
    int r = pthread_mutex_timedlock(&l->m, &ts);
    say("lock after the owner died: %s", rc(r));
    if (r == EOWNERDEAD)
        say("consistent: %d", pthread_mutex_consistent(&l->m));
    if (r == 0 || r == EOWNERDEAD)
        say("unlock: %d", pthread_mutex_unlock(&l->m));
    else
        gave_up = 1;

    /* The owner dies while the parent waits in the kernel. */
    store(&l->started, 0);
    pid = child();
    if (pid == 0) {
        if (pthread_mutex_lock(&l->m) != 0)
            _exit(2);
        store(&l->started, 1);
        usleep(100 * 1000);
        _exit(0);
    }
    spin_until(&l->started, 1);
    ts = realtime_deadline();
    r = pthread_mutex_timedlock(&l->m, &ts);
    say("waiting lock when the owner died: %s", rc(r));
    if (r == EOWNERDEAD)
        say("consistent: %d", pthread_mutex_consistent(&l->m));
    if (r == 0 || r == EOWNERDEAD)
        say("unlock: %d", pthread_mutex_unlock(&l->m));
    say("owner: %s", reap(pid));
}

/* ---- futex --------------------------------------------------------------------------------- */

struct words {
    int f, g, ready, result[3];
};

/* In a child: says it is ready, waits on `word` (value 0) with `op`; result[i] = 0 or errno. */
static void waiter(struct words *w, int *word, int op, int i, int seconds) {
    __atomic_fetch_add(&w->ready, 1, __ATOMIC_ACQ_REL);
    struct timespec ts = in_seconds(seconds);
    long r = futex(word, op, 0, &ts, NULL, 0);
    w->result[i] = r == 0 ? 0 : errno;
    _exit(0);
}

/* Wakes `word` with `op` until `want` waiters have been woken or the wait gives up. */
static int wake_until(int *word, int op, int want) {
    int woken = 0;
    double end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (woken < want) {
        long n = futex(word, op, INT_MAX, NULL, NULL, 0);
        if (n > 0)
            woken += (int)n;
        if (woken >= want)
            break;
        if (now() > end) {
            gave_up = 1;
            break;
        }
        usleep(1000);
    }
    return woken;
}

static void futexes(void) {
    struct words *w = (struct words *)shared_anon(PG);

    pid_t pid = child();
    if (pid == 0)
        waiter(w, &w->f, FUTEX_WAIT, 0, WAIT_SECONDS);
    spin_until(&w->ready, 1);
    say("FUTEX_WAKE from the parent woke %d", wake_until(&w->f, FUTEX_WAKE, 1));
    const char *st = reap(pid);
    say("waiter: %s, its FUTEX_WAIT: %s", st, rc(w->result[0]));
    say("FUTEX_WAIT with another value: %s", en(futex(&w->f, FUTEX_WAIT, 1, NULL, NULL, 0)));

    /* The other way round: the parent waits, a child wakes it. */
    store(&w->ready, 0);
    pid = child();
    if (pid == 0) {
        child_spin(&w->ready, 1);
        usleep(20 * 1000);
        int n = wake_until(&w->g, FUTEX_WAKE, 1);
        _exit(n);
    }
    store(&w->ready, 1);
    struct timespec ts = in_seconds(gave_up ? 0 : WAIT_SECONDS);
    long r = futex(&w->g, FUTEX_WAIT, 0, &ts, NULL, 0);
    say("the parent's FUTEX_WAIT: %s", r == 0 ? "woken" : errname(errno));
    say("waker (exit = woken): %s", reap(pid));

    /* Three waiters, woken together. */
    memset(w, 0, sizeof *w);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = child();
        if (kids[i] == 0)
            waiter(w, &w->f, FUTEX_WAIT, i, WAIT_SECONDS);
    }
    spin_until(&w->ready, 3);
    say("FUTEX_WAKE INT_MAX woke %d in all", wake_until(&w->f, FUTEX_WAKE, 3));
    for (int i = 0; i < 3; i++) {
        st = reap(kids[i]);
        say("waiter %d: %s, %s", i, st, rc(w->result[i]));
    }

    /* Requeued from f to g, then woken on g. */
    memset(w, 0, sizeof *w);
    pid = child();
    if (pid == 0)
        waiter(w, &w->f, FUTEX_WAIT, 0, WAIT_SECONDS);
    spin_until(&w->ready, 1);
    int moved = 0;
    double end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (moved == 0) {
        long n = futex(&w->f, FUTEX_CMP_REQUEUE, 0, (struct timespec *)(long)INT_MAX, &w->g, 0);
        if (n > 0)
            moved = (int)n;
        else if (now() > end) {
            gave_up = 1;
            break;
        } else
            usleep(1000);
    }
    say("FUTEX_CMP_REQUEUE moved %d", moved);
    say("FUTEX_WAKE on f then: %ld", futex(&w->f, FUTEX_WAKE, 1, NULL, NULL, 0));
    say("FUTEX_WAKE on g: %d", moved ? wake_until(&w->g, FUTEX_WAKE, 1) : 0);
    st = reap(pid);
    say("requeued waiter: %s, %s", st, rc(w->result[0]));

    /* A private futex names the word in one process only. */
    memset(w, 0, sizeof *w);
    pid = child();
    if (pid == 0)
        waiter(w, &w->f, FUTEX_WAIT_PRIVATE, 0, 1);
    spin_until(&w->ready, 1);
    long woken = 0;
    for (int i = 0; i < 20; i++) {
        long n = futex(&w->f, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        woken += n > 0 ? n : 0;
        usleep(5 * 1000);
    }
    say("FUTEX_WAKE_PRIVATE from the parent woke %ld", woken);
    st = reap(pid);
    say("private waiter: %s, %s", st, rc(w->result[0]));

    /* A shared futex on MAP_PRIVATE memory: after fork each process has its own word. */
    int *pw = map(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(w, 0, sizeof *w);
    pid = child();
    if (pid == 0)
        waiter(w, pw, FUTEX_WAIT, 0, 1);
    spin_until(&w->ready, 1);
    woken = 0;
    for (int i = 0; i < 20; i++) {
        long n = futex(pw, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        woken += n > 0 ? n : 0;
        usleep(5 * 1000);
    }
    say("FUTEX_WAKE on MAP_PRIVATE memory from the parent woke %ld", woken);
    st = reap(pid);
    say("its waiter: %s, %s", st, rc(w->result[0]));
}

/* ---- requeue_late -------------------------------------------------------------------------- */

#define LATE_PROCS 3
#define LATE_N (LATE_PROCS * 2)

struct late {
    int f, g, ready, done;
    int result[LATE_N];
    int timely[2];
};

struct late_arg {
    struct late *l;
    int i;
};

struct late_cv {
    pthread_mutex_t m;
    pthread_cond_t c;
    int go, ready, woken, timeouts;
};

/* Waits on the condition variable until `go` (giving up after 8 s). */
static void *late_cv_wait(void *p) {
    struct late_cv *v = p;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 8;
    pthread_mutex_lock(&v->m);
    v->ready++;
    while (!v->go) {
        if (pthread_cond_timedwait(&v->c, &v->m, &ts) == ETIMEDOUT) {
            v->timeouts++;
            break;
        }
    }
    if (v->go)
        v->woken++;
    pthread_mutex_unlock(&v->m);
    return NULL;
}

/* Waits on f (value 0): even waiters without a timeout, odd ones for at most 8 s. result[i] is
 * 0 or the errno. */
static void *late_wait(void *p) {
    struct late_arg *a = p;
    struct timespec ts = in_seconds(8);
    __atomic_fetch_add(&a->l->ready, 1, __ATOMIC_ACQ_REL);
    long r = futex(&a->l->f, FUTEX_WAIT, 0, a->i % 2 ? &ts : NULL, NULL, 0);
    store(&a->l->result[a->i], r == 0 ? 0 : errno);
    __atomic_fetch_add(&a->l->done, 1, __ATOMIC_ACQ_REL);
    return NULL;
}

/* Requeues waiters from f to g (none woken) until `want` have moved or the wait gives up. */
static int requeue_all(int *f, int *g, int want) {
    int moved = 0;
    double end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (moved < want) {
        long n = futex(f, FUTEX_CMP_REQUEUE, 0, (struct timespec *)(long)INT_MAX, g, 0);
        if (n > 0)
            moved += (int)n;
        if (moved >= want)
            break;
        if (now() > end) {
            gave_up = 1;
            break;
        }
        usleep(1000);
    }
    return moved;
}

/* A requeued waiter nobody wakes: i 0 waits 2 s (FUTEX_WAIT, relative), i 1 until 2 s from now
 * on CLOCK_REALTIME (FUTEX_WAIT_BITSET). timely[i]: it ended after 1.9 s and before 4 s. */
static void *late_timed(void *p) {
    struct late_arg *a = p;
    struct timespec ts = in_seconds(2);
    int op = FUTEX_WAIT;
    if (a->i == 1) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        op = FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME;
    }
    double t0 = now();
    __atomic_fetch_add(&a->l->ready, 1, __ATOMIC_ACQ_REL);
    long r = futex(&a->l->f, op, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
    double took = now() - t0;
    store(&a->l->result[a->i], r == 0 ? 0 : errno);
    store(&a->l->timely[a->i], took > 1.9 && took < 4);
    return NULL;
}

static const char *late_result(int r) { return r < 0 ? "still waiting" : rc(r); }

static void requeue_late(void) {
    struct late *l = (struct late *)shared_anon(PG);
    for (int i = 0; i < LATE_N; i++)
        l->result[i] = -1;
    pid_t kids[LATE_PROCS];
    for (int p = 0; p < LATE_PROCS; p++) {
        kids[p] = child();
        if (kids[p] == 0) {
            struct late_arg a[2] = {{l, 2 * p}, {l, 2 * p + 1}};
            pthread_t t;
            if (pthread_create(&t, NULL, late_wait, &a[1]) != 0)
                _exit(2);
            late_wait(&a[0]);
            pthread_join(t, NULL);
            _exit(0);
        }
    }
    spin_until(&l->ready, LATE_N);
    say("FUTEX_CMP_REQUEUE moved %d of %d waiters from f to g", requeue_all(&l->f, &l->g, LATE_N),
        LATE_N);
    /* Longer than a second asleep on g: no waiter may have gone back to f meanwhile. */
    usleep(1600 * 1000);
    say("1.6 s later, FUTEX_WAKE on f woke %ld", futex(&l->f, FUTEX_WAKE, INT_MAX, NULL, NULL, 0));
    say("FUTEX_WAKE on g woke %d", wake_until(&l->g, FUTEX_WAKE, LATE_N));
    if (!spin_until(&l->done, LATE_N))
        say("a wake on f frees %ld more", futex(&l->f, FUTEX_WAKE, INT_MAX, NULL, NULL, 0));
    for (int p = 0; p < LATE_PROCS; p++)
        say("waiter process %d: %s", p, reap(kids[p]));
    for (int i = 0; i < LATE_N; i++)
        say("waiter %d (%s): %s", i, i % 2 ? "timed" : "untimed", late_result(l->result[i]));

    /* A process-shared condition variable: 6 waiters in 3 processes asleep 1.6 s, then one
     * broadcast. */
    struct late_cv *v = (struct late_cv *)(l + 1);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_mutex_init(&v->m, &ma);
    pthread_cond_init(&v->c, &ca);
    for (int p = 0; p < LATE_PROCS; p++) {
        kids[p] = child();
        if (kids[p] == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, late_cv_wait, v) != 0)
                _exit(2);
            late_cv_wait(v);
            pthread_join(t, NULL);
            _exit(0);
        }
    }
    int ready = 0;
    double end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (ready < LATE_N && now() < end) {
        pthread_mutex_lock(&v->m);
        ready = v->ready;
        pthread_mutex_unlock(&v->m);
        usleep(1000);
    }
    usleep(1600 * 1000);
    pthread_mutex_lock(&v->m);
    v->go = 1;
    pthread_cond_broadcast(&v->c);
    pthread_mutex_unlock(&v->m);
    for (int p = 0; p < LATE_PROCS; p++)
        say("condition variable waiter process %d: %s", p, reap(kids[p]));
    say("pthread_cond_broadcast 1.6 s after %d waiters slept: %d woken, %d timed out", ready,
        v->woken, v->timeouts);

    /* Requeued and never woken: the deadline still ends the wait. */
    memset(l, 0, sizeof *l);
    l->result[0] = l->result[1] = -1;
    pid_t pid = child();
    if (pid == 0) {
        struct late_arg a[2] = {{l, 0}, {l, 1}};
        pthread_t t;
        if (pthread_create(&t, NULL, late_timed, &a[1]) != 0)
            _exit(2);
        late_timed(&a[0]);
        pthread_join(t, NULL);
        _exit(0);
    }
    spin_until(&l->ready, 2);
    say("FUTEX_CMP_REQUEUE moved %d timed waiters", requeue_all(&l->f, &l->g, 2));
    say("timed waiters: %s", reap(pid));
    for (int i = 0; i < 2; i++)
        say("requeued %s waiter: %s, on time: %s", i ? "FUTEX_WAIT_BITSET realtime" : "FUTEX_WAIT",
            late_result(l->result[i]), yes(l->timely[i]));

    /* FUTEX_WAKE_BITSET wakes a shared waiter only if the bitsets meet. */
    memset(l, 0, sizeof *l);
    l->result[0] = -1;
    pid = child();
    if (pid == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += WAIT_SECONDS;
        __atomic_fetch_add(&l->ready, 1, __ATOMIC_ACQ_REL);
        long r = futex(&l->f, FUTEX_WAIT_BITSET, 0, &ts, NULL, 1);
        store(&l->result[0], r == 0 ? 0 : errno);
        _exit(0);
    }
    spin_until(&l->ready, 1);
    long other = 0;
    for (int i = 0; i < 40; i++) {
        long n = futex(&l->f, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, 2);
        other += n > 0 ? n : 0;
        usleep(5 * 1000);
    }
    say("FUTEX_WAKE_BITSET 2 woke %ld waiters of bitset 1", other);
    int woken = 0;
    end = now() + (gave_up ? 0 : WAIT_SECONDS);
    while (!woken && now() < end) {
        long n = futex(&l->f, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, 3);
        woken = n > 0 ? (int)n : 0;
        if (!woken)
            usleep(1000);
    }
    say("FUTEX_WAKE_BITSET 3 woke %d", woken);
    const char *st = reap(pid);
    say("bitset waiter: %s, %s", st, late_result(l->result[0]));
}

/* ---- stops --------------------------------------------------------------------------------- */

struct stops {
    int f, ready, done, result[2];
};

static void on_usr1(int sig) { (void)sig; }

/* Waits on f (value 0) without a timeout; result[i] = 0 or the errno. */
static void stop_wait(struct stops *st, int i) {
    __atomic_fetch_add(&st->ready, 1, __ATOMIC_ACQ_REL);
    long r = futex(&st->f, FUTEX_WAIT, 0, NULL, NULL, 0);
    store(&st->result[i], r == 0 ? 0 : errno);
    __atomic_fetch_add(&st->done, 1, __ATOMIC_ACQ_REL);
}

static void *stop_thread(void *p) {
    stop_wait(p, 1);
    return NULL;
}

static void *stop_thread_forever(void *p) {
    struct stops *st = p;
    __atomic_fetch_add(&st->ready, 1, __ATOMIC_ACQ_REL);
    futex(&st->f, FUTEX_WAIT, 0, NULL, NULL, 0);
    _exit(7); /* never woken: the process ends first */
}

static void stop_reset(struct stops *st) {
    memset(st, 0, sizeof *st);
    st->result[0] = st->result[1] = -1;
}

/* Until the waiters have been in the kernel a while (as sure as can be without a syscall to
 * ask: 200 ms after they said so). */
static void settle(struct stops *st, int n) {
    spin_until(&st->ready, n);
    usleep(200 * 1000);
}

static void stops(void) {
    struct stops *st = (struct stops *)shared_anon(PG);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: the wait ends with EINTR */
    sigaction(SIGUSR1, &sa, NULL);

    /* kill(2) to a process whose only thread waits. */
    stop_reset(st);
    pid_t pid = child();
    if (pid == 0) {
        stop_wait(st, 0);
        _exit(0);
    }
    settle(st, 1);
    kill(pid, SIGUSR1);
    spin_until(&st->done, 1);
    const char *how = reap(pid);
    say("SIGUSR1 to the waiting process: %s, its wait: %s", how, late_result(st->result[0]));

    /* pthread_kill to the second thread of a process, while its main thread waits too. */
    stop_reset(st);
    pid = child();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, stop_thread, st) != 0)
            _exit(2);
        child_spin(&st->ready, 1);
        usleep(200 * 1000);
        pthread_kill(t, SIGUSR1);
        child_spin(&st->done, 1);
        stop_wait(st, 0);
        pthread_join(t, NULL);
        _exit(0);
    }
    spin_until(&st->done, 1);
    settle(st, 2);
    say("FUTEX_WAKE then woke %d", wake_until(&st->f, FUTEX_WAKE, 1));
    how = reap(pid);
    say("pthread_kill SIGUSR1: %s, the thread's wait: %s, the main thread's: %s", how,
        late_result(st->result[1]), late_result(st->result[0]));

    /* SIGSTOP and SIGCONT while two threads wait: no handler, so both waits go on. */
    stop_reset(st);
    pid = child();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, stop_thread, st) != 0)
            _exit(2);
        stop_wait(st, 0);
        pthread_join(t, NULL);
        _exit(0);
    }
    settle(st, 2);
    kill(pid, SIGSTOP);
    usleep(300 * 1000);
    say("while stopped, the waits ended: %d", __atomic_load_n(&st->done, __ATOMIC_ACQUIRE));
    kill(pid, SIGCONT);
    usleep(300 * 1000);
    say("after SIGCONT, FUTEX_WAKE woke %d", wake_until(&st->f, FUTEX_WAKE, 2));
    how = reap(pid);
    say("stopped and continued: %s, waits: %s, %s", how, late_result(st->result[0]),
        late_result(st->result[1]));

    /* exit_group from the main thread while a second thread waits. */
    stop_reset(st);
    pid = child();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, stop_thread_forever, st) != 0)
            _exit(2);
        child_spin(&st->ready, 1);
        usleep(200 * 1000);
        _exit(5);
    }
    say("exit_group while another thread waits: %s", reap(pid));
}

/* ---- wait_forever -------------------------------------------------------------------------- */

static void *forever(void *p) {
    struct stops *st = p;
    __atomic_fetch_add(&st->ready, 1, __ATOMIC_ACQ_REL);
    for (;;)
        futex(&st->f, FUTEX_WAIT, 0, NULL, NULL, 0);
    return NULL;
}

static void wait_forever(void) {
    struct stops *st = (struct stops *)shared_anon(PG);
    pthread_t t;
    if (child() == 0) {
        if (pthread_create(&t, NULL, forever, st) != 0)
            _exit(2);
        forever(st);
    }
    if (pthread_create(&t, NULL, forever, st) != 0)
        die("pthread_create");
    settle(st, 3);
    say("waiting");
    forever(st);
}

/* ---- robust_threads ------------------------------------------------------------------------ */

struct held {
    pthread_mutex_t m;
    int started, seen, how;
};

/* The second thread of a child: takes the mutex and keeps it. how 0: sleeps until the main
 * thread ends the process; how 1: ends itself with SYS_exit (no unlock, no glibc teardown). */
static void *holder(void *p) {
    struct held *h = p;
    if (pthread_mutex_lock(&h->m) != 0)
        _exit(2);
    store(&h->started, 1);
    if (h->how == 1) {
        usleep(100 * 1000);
        syscall(SYS_exit, 0);
    }
    for (;;)
        pause();
    return NULL;
}

/* A child whose second thread holds the mutex; its main thread exit_groups once `seen` is set
 * (how 1) or 100 ms after the lock was taken (how 0). */
static pid_t held_child(struct held *h, int how) {
    store(&h->started, 0);
    store(&h->seen, 0);
    h->how = how;
    pid_t pid = child();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, holder, h) != 0)
            _exit(2);
        child_spin(&h->started, 1);
        if (how == 1)
            child_spin(&h->seen, 1);
        else
            usleep(100 * 1000);
        _exit(0);
    }
    spin_until(&h->started, 1);
    return pid;
}

/* Locks the mutex (giving up after a few seconds) and says how it went. */
static void lock_held(struct held *h, const char *what) {
    struct timespec ts = realtime_deadline();
    int r = pthread_mutex_timedlock(&h->m, &ts);
    say("%s: %s", what, rc(r));
    if (r == EOWNERDEAD)
        say("consistent: %d", pthread_mutex_consistent(&h->m));
    if (r == 0 || r == EOWNERDEAD)
        say("unlock: %d", pthread_mutex_unlock(&h->m));
    else
        gave_up = 1;
}

static void robust_threads(void) {
    struct held *h = (struct held *)shared_anon(PG);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    say("init: %d", pthread_mutex_init(&h->m, &ma));

    pid_t pid = held_child(h, 0);
    lock_held(h, "waiting while the main thread's exit_group ends the holder");
    say("child: %s", reap(pid));

    pid = held_child(h, 0);
    say("child: %s", reap(pid));
    lock_held(h, "lock after the child ended with the second thread holding it");

    pid = held_child(h, 1);
    lock_held(h, "waiting while the holder ends itself with SYS_exit");
    store(&h->seen, 1);
    say("child: %s", reap(pid));
}

/* ---- file ---------------------------------------------------------------------------------- */

static void file(void) {
    int fd = open(at("shared.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create shared.dat");
    const char *r = en(ftruncate(fd, 3 * PG));
    say("ftruncate to 3 pages before mapping: %s, size %ld", r, file_size(fd));
    char *p = map(3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    say("fresh mapping reads zero: %s", yes(all_zero(p, 3 * PG)));
    strcpy(p, "stored through the mapping");
    say("pread: %s", file_text(fd, 0, 26));
    char buf[64] = "";
    lseek(fd, 7, SEEK_SET);
    long n = (long)read(fd, buf, 6);
    say("read: %ld %s", n, mem_text(buf, 6));
    n = (long)pwrite(fd, "PWRITTEN", 8, PG + 10);
    say("pwrite: %ld; mapping reads %s", n, mem_text(p + PG + 10, 8));
    lseek(fd, 2 * PG - 3, SEEK_SET);
    n = (long)write(fd, "ACROSS", 6);
    say("write across a page boundary: %ld; mapping reads %s", n, mem_text(p + 2 * PG - 3, 6));

    int fd2 = open(at("shared.dat"), O_RDWR);
    char *q = map(PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, PG);
    strcpy(q + 100, "second mapping");
    say("first mapping reads %s", mem_text(p + PG + 100, 14));
    strcpy(p + PG + 200, "first mapping");
    say("second mapping reads %s", mem_text(q + 200, 13));
    say("the second fd reads %s", file_text(fd2, PG + 200, 13));

    strcpy(p + 2 * PG + 50, "synced");
    say("msync MS_SYNC: %s", en(msync(p, 3 * PG, MS_SYNC)));
    say("msync MS_ASYNC: %s", en(msync(p, PG, MS_ASYNC)));
    say("msync MS_INVALIDATE: %s", en(msync(p, PG, MS_INVALIDATE)));
    say("msync of part: %s", en(msync(p + PG, PG, MS_SYNC)));

    /* I/O whose buffer is the mapping itself. */
    int other = open(at("copy.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    say("write from the mapping to another file: %ld", (long)write(other, p, 26));
    n = (long)pread(fd, p + 2 * PG + 100, 8, 0);
    say("pread from the file into its own mapping: %ld; reads %s", n,
        mem_text(p + 2 * PG + 100, 8));
    n = (long)pwrite(fd, p + PG + 10, 8, 2 * PG + 120);
    say("pwrite from the mapping into its own file: %ld; reads %s", n,
        mem_text(p + 2 * PG + 120, 8));
    say("size: %ld", file_size(fd));

    /* Stores left in the mappings at exit, never unmapped or synced, must reach the file. */
    strcpy(p + 2 * PG + 200, "left at exit");
    strcpy(q + 300, "left at exit too");
    close(fd);
    close(fd2);
    close(other);
}

/* ---- file_fork ----------------------------------------------------------------------------- */

static void file_fork(void) {
    int fd = open(at("forked.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create forked.dat");
    ftruncate(fd, 2 * PG);
    char *p = map(2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    say("close the fd right after mmap: %s", en(close(fd)));
    volatile int *flag = (volatile int *)(p + PG);
    strcpy(p, "parent");

    pid_t pid = child();
    if (pid == 0) {
        int ok = strcmp(p, "parent") == 0;
        strcpy(p + 10, "child");
        store(flag, 1);
        child_spin(flag, 2);
        strcpy(p + 20, ok ? "child saw 2" : "child missed the parent");
        pid_t g = child();
        if (g == 0) {
            strcpy(p + 40, "grandchild");
            _exit(0);
        }
        int st;
        waitpid(g, &st, 0);
        store(flag, 3);
        _exit(0);
    }
    int seen1 = spin_until(flag, 1);
    say("child's store while both run: %s, %s", yes(seen1), seen1 ? p + 10 : "-");
    store(flag, 2);
    int seen3 = spin_until(flag, 3);
    say("then: %s, %s, %s", yes(seen3), seen3 ? p + 20 : "-", seen3 ? p + 40 : "-");
    say("child: %s", reap(pid));

    /* A child maps the file again (another address); the parent writes the file with write(). */
    store(flag, 0);
    pid = child();
    if (pid == 0) {
        int cfd = open(at("forked.dat"), O_RDWR);
        char *c = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (c == MAP_FAILED)
            _exit(2);
        volatile int *cflag = (volatile int *)(c + PG);
        store(cflag, 1);
        child_spin(cflag, 2);
        int ok = memcmp(c + 100, "by write()", 10) == 0;
        strcpy(c + 200, "child's own mapping");
        store(cflag, 3);
        _exit(ok ? 0 : 1);
    }
    int rfd = open(at("forked.dat"), O_RDWR);
    seen1 = spin_until(flag, 1);
    pwrite(rfd, "by write()", 10, 100);
    store(flag, 2);
    seen3 = seen1 && spin_until(flag, 3);
    say("child's own mapping: %s %s, %s", yes(seen1), yes(seen3), seen3 ? p + 200 : "-");
    say("child (saw the parent's write()): %s", reap(pid));

    /* A futex word in the file: the child waits through its own mapping of it. */
    int *word = (int *)(p + PG + 64);
    *word = 0;
    store(flag, 0);
    pid = child();
    if (pid == 0) {
        char *c = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
        if (c == MAP_FAILED)
            _exit(2);
        store((volatile int *)(c + PG), 1);
        struct timespec ts = in_seconds(WAIT_SECONDS);
        long r = futex((int *)(c + PG + 64), FUTEX_WAIT, 0, &ts, NULL, 0);
        _exit(r == 0 ? 0 : errno == ETIMEDOUT ? 98 : 97);
    }
    spin_until(flag, 1);
    say("FUTEX_WAKE through the parent's mapping woke %d", wake_until(word, FUTEX_WAKE, 1));
    say("file futex waiter: %s", reap(pid));
    close(rfd);
    munmap(p, 2 * PG);
}

/* ---- file_layout --------------------------------------------------------------------------- */

static void file_layout(void) {
    catch_faults();
    int fd = pattern_file("layout.dat", 8 * PG);
    int rw = PROT_READ | PROT_WRITE;

    /* Three pages from file offset 2 pages. */
    char *p = map(3 * PG, rw, MAP_SHARED, fd, 2 * PG);
    say("offset 2 pages: first bytes %s, file there %s", mem_text(p, 5), file_text(fd, 2 * PG, 5));
    memcpy(p + 1, "OFF2", 4);
    memcpy(p + 2 * PG + 1, "OFF4", 4);
    say("stores reach the file at 2 and 4 pages: %s %s", file_text(fd, 2 * PG, 6),
        file_text(fd, 4 * PG, 6));

    say("mprotect the middle page read-only: %s", en(mprotect(p + PG, PG, PROT_READ)));
    const char *rd = probe(p + PG, 0, 0), *wr = probe(p + PG, 1, 'X');
    say("middle: read %s, write %s; last page write %s", rd, wr, probe(p + 2 * PG + 10, 1, 'L'));
    say("file at 3 pages: %s; at 4 pages + 10: %s", file_text(fd, 3 * PG, 3),
        file_text(fd, 4 * PG + 10, 1));
    const char *back = en(mprotect(p + PG, PG, rw));
    wr = probe(p + PG, 1, 'Y');
    say("mprotect it back: %s, write %s, file %s", back, wr, file_text(fd, 3 * PG, 3));

    say("munmap the middle page: %s", en(munmap(p + PG, PG)));
    rd = probe(p + PG, 0, 0);
    wr = probe(p + 5, 1, '5');
    say("middle %s; first page write %s; last page write %s", rd, wr, probe(p + 2 * PG + 5, 1, '6'));
    say("file: %s / %s", file_text(fd, 2 * PG, 8), file_text(fd, 4 * PG, 8));
    munmap(p, PG);
    munmap(p + 2 * PG, PG);

    /* mremap: grown in place or moved, shrunk, moved to a fixed address: still the file. */
    char *m = map(2 * PG, rw, MAP_SHARED, fd, 0);
    char *grown = mremap(m, 2 * PG, 5 * PG, MREMAP_MAYMOVE);
    say("mremap grow to 5 pages: %s", mres(grown, 0, 0));
    if (grown != MAP_FAILED) {
        memcpy(grown + 4 * PG + 7, "GROWN", 5);
        pwrite(fd, "PW", 2, 3 * PG + 7);
        say("store in the new part: file %s; pwrite seen: %s", file_text(fd, 4 * PG + 7, 5),
            mem_text(grown + 3 * PG + 7, 2));
        char *spot = mmap(NULL, 5 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *moved = mremap(grown, 5 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
        say("mremap to a fixed address: %s, at it %s", mres(moved, 0, 0),
            yes(moved == spot));
        if (moved != MAP_FAILED) {
            memcpy(moved + PG + 1, "MOVED", 5);
            say("store after the move: file %s; old address %s", file_text(fd, PG + 1, 5),
                probe(grown, 0, 0));
            char *shrunk = mremap(moved, 5 * PG, PG, 0);
            say("mremap shrink: %s; second page now %s", mres(shrunk, 0, 0),
                probe(moved + PG, 0, 0));
            char *alias = mremap(moved, 0, PG, MREMAP_MAYMOVE);
            say("alias with old_size 0: %s", mres(alias, 0, 0));
            if (alias != MAP_FAILED) {
                memcpy(moved + 20, "ALIASED", 7);
                say("alias reads %s; file %s", mem_text(alias + 20, 7), file_text(fd, 20, 7));
            }
        }
    }
    char *two = map(2 * PG, rw, MAP_SHARED, fd, 0);
    munmap(two + PG, PG);
    mmap(two + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    say("mremap without MAYMOVE into an occupied range: %s",
        mres(mremap(two, PG, 2 * PG, 0), 0, 0));

    /* MAP_SHARED_VALIDATE. */
    char *v = mmap(NULL, PG, rw, MAP_SHARED_VALIDATE, fd, 5 * PG);
    say("MAP_SHARED_VALIDATE: %s", mres(v, 0, 0));
    if (v != MAP_FAILED) {
        memcpy(v, "VALID", 5);
        say("file: %s", file_text(fd, 5 * PG, 5));
    }
    say("MAP_SHARED_VALIDATE|MAP_SYNC: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0), PG, 1));
    say("MAP_SHARED_VALIDATE|unknown bit: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED_VALIDATE | 0x400000, fd, 0), PG, 1));
    say("MAP_SHARED|MAP_SYNC: %s", mres(mmap(NULL, PG, rw, MAP_SHARED | MAP_SYNC, fd, 0), PG, 1));
    say("MAP_SHARED|unknown bit: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED | 0x400000, fd, 0), PG, 1));

    /* MAP_FIXED over private memory, MAP_POPULATE, PROT_WRITE alone. */
    char *anon = map(2 * PG, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(anon, 'z', 2 * PG);
    char *fx = mmap(anon + PG, PG, rw, MAP_SHARED | MAP_FIXED, fd, 6 * PG);
    say("MAP_FIXED over private memory: %s, same address %s, reads %s, private page %s",
        mres(fx, 0, 0), yes(fx == anon + PG), mem_text(anon + PG, 3), mem_text(anon, 3));
    if (fx != MAP_FAILED) {
        memcpy(fx, "FIXED", 5);
        say("file: %s", file_text(fd, 6 * PG, 5));
    }
    char *pop = mmap(NULL, 2 * PG, rw, MAP_SHARED | MAP_POPULATE, fd, 0);
    say("MAP_POPULATE: %s, reads %s", mres(pop, 0, 0), pop == MAP_FAILED ? "-" : mem_text(pop + 20, 7));
    char *wo = mmap(NULL, PG, PROT_WRITE, MAP_SHARED, fd, 7 * PG);
    say("PROT_WRITE alone: %s", mres(wo, 0, 0));
    if (wo != MAP_FAILED) {
        memcpy(wo + 9, "WONLY", 5);
        say("file: %s", file_text(fd, 7 * PG + 9, 5));
    }
    char *none = mmap(NULL, PG, PROT_NONE, MAP_SHARED, fd, 0);
    say("PROT_NONE: %s", mres(none, 0, 0));
    if (none != MAP_FAILED) {
        rd = probe(none, 0, 0);
        back = en(mprotect(none, PG, PROT_READ));
        say("read %s, then PROT_READ %s, read %s", rd, back, probe(none + 20, 0, 0));
    }
    say("size: %ld", file_size(fd));
    close(fd);
}

/* ---- file_eof ------------------------------------------------------------------------------ */

static void file_eof(void) {
    catch_faults();
    int fd = pattern_file("eof.dat", PG + 904);
    int rw = PROT_READ | PROT_WRITE;
    char *p = map(4 * PG, rw, MAP_SHARED, fd, 0);
    say("last byte: %s; past the end in the last page: %s, zero %s", probe(p + PG + 903, 0, 0),
        probe(p + PG + 904, 0, 0), yes(all_zero(p + PG + 904, PG - 904)));
    say("a page past the end: read %s, write %s", probe(p + 2 * PG, 0, 0),
        probe(p + 3 * PG, 1, 'x'));
    int out = open(at("out.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    say("write() from a page past the end: %s", en(write(out, p + 2 * PG, 10)));
    say("write() from the last page across the end: %ld", (long)write(out, p + PG + 900, 10));

    say("ftruncate to 3 pages while mapped: %s", en(ftruncate(fd, 3 * PG)));
    say("the page that was past the end: read %s, zero %s", probe(p + 2 * PG, 0, 0),
        yes(all_zero(p + 2 * PG, PG)));
    memcpy(p + 2 * PG + 4, "GREW", 4);
    say("store in it reaches the file: %s; page 3: %s", file_text(fd, 2 * PG + 4, 4),
        probe(p + 3 * PG, 0, 0));

    say("ftruncate to 1 page while mapped: %s", en(ftruncate(fd, PG)));
    const char *rd = probe(p + PG, 0, 0), *wr = probe(p + PG, 1, 'y');
    say("page 1 now: read %s, write %s; page 0 %s", rd, wr, probe(p + 5, 0, 0));
    say("size: %ld", file_size(fd));

    char *beyond = mmap(NULL, PG, rw, MAP_SHARED, fd, 16 * PG);
    say("mapping at offset 16 pages of a 1-page file: %s, read %s", mres(beyond, 0, 0),
        beyond == MAP_FAILED ? "-" : probe(beyond, 0, 0));
    int empty = open(at("empty.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    char *e = mmap(NULL, PG, rw, MAP_SHARED, empty, 0);
    say("mapping of an empty file: %s, read %s", mres(e, 0, 0),
        e == MAP_FAILED ? "-" : probe(e, 0, 0));
    long n = (long)pwrite(empty, "now", 3, 0);
    say("grown with pwrite: %ld, then read %s", n, e == MAP_FAILED ? "-" : probe(e + 1, 0, 0));

    /* A store in the tail of the last page is not part of the file (never grown after). */
    int tfd = pattern_file("tail.dat", 100);
    char *t = map(PG, rw, MAP_SHARED, tfd, 0);
    wr = probe(t + 1000, 1, 'T');
    rd = probe(t + 1000, 0, 0);
    say("store in the tail of the last page: %s; reads back %s; size %ld", wr, rd, file_size(tfd));
    const char *sync = en(msync(t, PG, MS_SYNC));
    say("msync: %s; size %ld; file %s", sync, file_size(tfd), file_text(tfd, 95, 10));
    close(tfd);
    close(fd);
    close(out);
    close(empty);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void errors(void) {
    catch_faults();
    int rw = PROT_READ | PROT_WRITE;
    int w = pattern_file("data.dat", 2 * PG);
    int ro = open(at("data.dat"), O_RDONLY);
    int wo = open(at("data.dat"), O_WRONLY);
    int ap = open(at("data.dat"), O_RDWR | O_APPEND);

    say("O_RDONLY, PROT_WRITE MAP_SHARED: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, ro, 0), PG, 1));
    say("O_RDONLY, PROT_WRITE MAP_SHARED_VALIDATE: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED_VALIDATE, ro, 0), PG, 1));
    char *r = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, ro, 0);
    say("O_RDONLY, PROT_READ MAP_SHARED: %s", mres(r, 0, 0));
    if (r != MAP_FAILED) {
        const char *text = mem_text(r, 4);
        say("reads %s; write %s", text, probe(r, 1, 'q'));
        say("mprotect PROT_WRITE: %s; PROT_READ|PROT_WRITE of part: %s",
            en(mprotect(r, PG, PROT_WRITE)), en(mprotect(r + PG, PG, rw)));
        pwrite(w, "LATER", 5, 10);
        say("a later pwrite through another fd is seen: %s", mem_text(r + 10, 5));
        char *wm = map(PG, rw, MAP_SHARED, w, PG);
        memcpy(wm + 20, "OTHERMAP", 8);
        say("a store through a writable mapping is seen: %s", mem_text(r + PG + 20, 8));
        pid_t pid = child();
        if (pid == 0) {
            memcpy(wm + 40, "CHILD", 5);
            _exit(0);
        }
        const char *st = reap(pid);
        say("and a child's: %s, %s", st, mem_text(r + PG + 40, 5));
        munmap(wm, PG);
        munmap(r, 2 * PG);
    }
    char *pv = mmap(NULL, PG, rw, MAP_PRIVATE, ro, 0);
    say("O_RDONLY, PROT_WRITE MAP_PRIVATE: %s", mres(pv, 0, 0));
    if (pv != MAP_FAILED) {
        memcpy(pv, "PRIV", 4);
        say("store stays private: %s, file %s", mem_text(pv, 4), file_text(w, 0, 4));
    }
    char *pr = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, ro, 0);
    say("O_RDONLY MAP_PRIVATE read-only, mprotect PROT_WRITE: %s",
        pr == MAP_FAILED ? "no mapping" : en(mprotect(pr, PG, rw)));
    say("O_WRONLY, PROT_READ MAP_SHARED: %s", mres(mmap(NULL, PG, PROT_READ, MAP_SHARED, wo, 0), PG, 1));
    say("O_WRONLY, PROT_WRITE MAP_SHARED: %s", mres(mmap(NULL, PG, PROT_WRITE, MAP_SHARED, wo, 0), PG, 1));
    say("O_WRONLY, PROT_NONE MAP_SHARED: %s", mres(mmap(NULL, PG, PROT_NONE, MAP_SHARED, wo, 0), PG, 1));
    char *am = mmap(NULL, PG, rw, MAP_SHARED, ap, 0);
    say("O_RDWR|O_APPEND, PROT_WRITE MAP_SHARED: %s", mres(am, 0, 0));
    if (am != MAP_FAILED) {
        memcpy(am + 30, "APPENDFD", 8);
        say("file: %s", file_text(w, 30, 8));
    }

    int pipefd[2];
    pipe(pipefd);
    say("pipe MAP_SHARED: %s", mres(mmap(NULL, PG, PROT_READ, MAP_SHARED, pipefd[0], 0), PG, 1));
    say("pipe MAP_SHARED writable end: %s",
        mres(mmap(NULL, PG, PROT_WRITE, MAP_SHARED, pipefd[1], 0), PG, 1));
    say("pipe MAP_PRIVATE: %s", mres(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, pipefd[0], 0), PG, 1));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    say("socket MAP_SHARED: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, sv[0], 0), PG, 1));
    int ev = eventfd(0, 0);
    say("eventfd MAP_SHARED: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, ev, 0), PG, 1));
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    say("directory MAP_SHARED: %s", mres(mmap(NULL, PG, PROT_READ, MAP_SHARED, d, 0), PG, 1));
    int dn = open("/dev/null", O_RDWR);
    say("/dev/null MAP_SHARED: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, dn, 0), PG, 1));
    say("fd -1 without MAP_ANONYMOUS: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, -1, 0), PG, 1));
    say("fd 999: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, 999, 0), PG, 1));
    int gone = dup(w);
    close(gone);
    say("a closed fd: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, gone, 0), PG, 1));
    int path = open(at("data.dat"), O_PATH);
    say("an O_PATH fd: %s", mres(mmap(NULL, PG, PROT_READ, MAP_SHARED, path, 0), PG, 1));
    say("file: %s", file_text(w, 0, 40));
}

/* ---- hostile ------------------------------------------------------------------------------- */

static void hostile(void) {
    catch_faults();
    int rw = PROT_READ | PROT_WRITE;
    int fd = pattern_file("hostile.dat", 4 * PG);
    int anon = MAP_SHARED | MAP_ANONYMOUS;

    say("length 0, file: %s", mres(mmap(NULL, 0, rw, MAP_SHARED, fd, 0), 0, 0));
    say("length 0, anonymous: %s", mres(mmap(NULL, 0, rw, anon, -1, 0), 0, 0));
    say("length -1, file: %s", mres(mmap(NULL, (size_t)-1, rw, MAP_SHARED, fd, 0), 0, 0));
    say("length -1, anonymous: %s", mres(mmap(NULL, (size_t)-1, rw, anon, -1, 0), 0, 0));
    say("length 2^47, file: %s", mres(mmap(NULL, 1UL << 47, rw, MAP_SHARED, fd, 0), 1UL << 47, 1));
    say("length 2^47, anonymous: %s", mres(mmap(NULL, 1UL << 47, rw, anon, -1, 0), 1UL << 47, 1));
    say("length -4096 page, file: %s", mres(mmap(NULL, (size_t)-PG, rw, MAP_SHARED, fd, 0), 0, 0));
    say("offset 1: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, fd, 1), PG, 1));
    say("offset 2048: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, fd, 2048), PG, 1));
    say("offset -4096: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, fd, -PG), PG, 1));
    say("offset 2^62: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, fd, 1L << 62), PG, 1));
    say("offset so that offset+length wraps: %s",
        mres(mmap(NULL, 2 * PG, rw, MAP_SHARED, fd, (off_t)(0x7fffffffffffffffL & ~(PG - 1))), 2 * PG, 1));
    char *base = map(4 * PG, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    say("MAP_FIXED unaligned address: %s", mres(mmap(base + 1, PG, rw, MAP_SHARED | MAP_FIXED, fd, 0), 0, 0));
    say("unaligned hint without MAP_FIXED: %s", mres(mmap(base + 1, PG, rw, MAP_SHARED, fd, 0), PG, 1));
    say("MAP_FIXED at the top of user space: %s",
        mres(mmap((void *)0x7ffffffff000UL, PG, rw, MAP_SHARED | MAP_FIXED, fd, 0), 0, 0));
    say("MAP_FIXED past user space: %s",
        mres(mmap((void *)0x800000000000UL, PG, rw, MAP_SHARED | MAP_FIXED, fd, 0), 0, 0));
    say("MAP_FIXED in kernel space: %s",
        mres(mmap((void *)0xffff800000000000UL, PG, rw, MAP_SHARED | MAP_FIXED, fd, 0), 0, 0));
    say("kernel-space hint without MAP_FIXED: %s",
        mres(mmap((void *)0xffff800000000000UL, PG, rw, MAP_SHARED, fd, 0), PG, 1));
    say("MAP_FIXED_NOREPLACE over a mapping: %s",
        mres(mmap(base, PG, rw, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0), 0, 0));
    munmap(base + 3 * PG, PG);
    char *nr = mmap(base + 3 * PG, PG, rw, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    say("MAP_FIXED_NOREPLACE in a hole: %s, there %s, reads %s", mres(nr, 0, 0),
        yes(nr == base + 3 * PG), nr == MAP_FAILED ? "-" : mem_text(nr, 3));

    char *p = map(2 * PG, rw, MAP_SHARED, fd, 0);
    say("msync unaligned: %s", en(msync(p + 1, PG, MS_SYNC)));
    say("msync MS_SYNC|MS_ASYNC: %s", en(msync(p, PG, MS_SYNC | MS_ASYNC)));
    say("msync unknown flag: %s", en(msync(p, PG, 0x100)));
    say("msync length 0: %s", en(msync(p, 0, MS_SYNC)));
    say("msync unmapped: %s", en(msync((void *)0x100000000000UL, PG, MS_SYNC)));
    say("msync huge length: %s", en(msync(p, (size_t)-PG, MS_SYNC)));

    char *r = map(PG, PROT_READ, MAP_SHARED, fd, 0);
    say("read() into a read-only shared mapping: %s", en(pread(fd, r, 10, PG)));
    say("read() into an unmapped address: %s", en(pread(fd, (void *)0x100000000000UL, 10, 0)));
    say("write() from a kernel address: %s", en(pwrite(fd, (void *)0xffff800000000000UL, 10, 0)));
    long n = (long)pread(fd, p + 3, 10, 2 * PG);
    say("read() of the file into its own mapping: %ld; reads %s", n, mem_text(p, 13));

    /* MADV_DONTNEED on a file mapping drops nothing that was stored. */
    memcpy(p + PG, "KEEPME", 6);
    const char *r1 = en(madvise(p + PG, PG, MADV_DONTNEED));
    say("MADV_DONTNEED: %s, reads %s", r1, mem_text(p + PG, 6));
    r1 = en(madvise(p + PG, PG, MADV_REMOVE));
    say("MADV_REMOVE: %s, reads zero %s, file zero %s", r1, yes(all_zero(p + PG, PG)),
        yes(strcmp(file_text(fd, PG, 6), "......") == 0));

    /* An unlinked file stays mapped; closing every fd changes nothing. */
    int u = open(at("unlinked.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(u, PG);
    char *um = map(PG, rw, MAP_SHARED, u, 0);
    close(u);
    say("unlink while mapped: %s", en(unlink(at("unlinked.dat"))));
    strcpy(um, "still here");
    pid_t pid = child();
    if (pid == 0) {
        _exit(strcmp(um, "still here") == 0 ? 0 : 1);
    }
    say("child sees it: %s; parent reads %s", reap(pid), um);
    int again = open(at("unlinked.dat"), O_RDWR | O_CREAT, 0644);
    say("a new file of that name is empty: %ld", file_size(again));
    close(again);
    unlink(at("unlinked.dat"));

    /* munmap edge cases on shared mappings. */
    char *s = map(3 * PG, rw, MAP_SHARED, fd, 0);
    say("munmap unaligned: %s", en(munmap(s + 1, PG)));
    say("munmap length 0: %s", en(munmap(s, 0)));
    r1 = en(munmap(s + PG, PG));
    say("munmap part of it: %s, rest %s, %s", r1, probe(s, 0, 0), probe(s + 2 * PG, 0, 0));
    say("msync across the hole: %s", en(msync(s, 3 * PG, MS_SYNC)));
    say("mprotect across the hole: %s", en(mprotect(s, 3 * PG, PROT_READ)));
    say("mprotect unknown bits: %s", en(mprotect(s, PG, 0x100)));
    say("file: %s", file_text(fd, 0, 16));
    close(fd);
}

/* ---- ro_volume ----------------------------------------------------------------------------- */

static void ro_volume(void) {
    catch_faults();
    int rw = PROT_READ | PROT_WRITE;
    int fd = open(at("ro.txt"), O_RDONLY);
    say("open O_RDONLY: %s", en(fd));
    if (fd < 0)
        return;
    say("PROT_WRITE MAP_SHARED: %s", mres(mmap(NULL, PG, rw, MAP_SHARED, fd, 0), PG, 1));
    say("PROT_WRITE MAP_SHARED_VALIDATE: %s",
        mres(mmap(NULL, PG, rw, MAP_SHARED_VALIDATE, fd, 0), PG, 1));
    char *r = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    say("PROT_READ MAP_SHARED: %s, reads %s", mres(r, 0, 0),
        r == MAP_FAILED ? "-" : mem_text(r, 20));
    if (r != MAP_FAILED) {
        const char *wr = probe(r, 1, 'w');
        say("write %s; mprotect PROT_WRITE %s", wr, en(mprotect(r, PG, rw)));
    }
    char *p = mmap(NULL, PG, rw, MAP_PRIVATE, fd, 0);
    say("PROT_WRITE MAP_PRIVATE: %s", mres(p, 0, 0));
    if (p != MAP_FAILED) {
        memcpy(p, "PRIVATE", 7);
        say("private store: %s; file %s", mem_text(p, 7), file_text(fd, 0, 7));
    }
    close(fd);
}

/* ---- large --------------------------------------------------------------------------------- */

/* A 4 GiB sparse file mapped shared and privately, a page touched every 256 MiB: the mappings
 * cost what is touched (umon's default -m is 1 GiB), as on Linux. The file is removed after. */
static void large(void) {
    const long size = 4L << 30;
    int fd = open(at("large.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create large.dat");
    say("ftruncate 4 GiB: %s", en(ftruncate(fd, size)));
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    say("mmap 4 GiB shared: %s", m == MAP_FAILED ? en(-1) : "ok");
    if (m != MAP_FAILED) {
        for (long i = 0; i < size; i += 256L << 20)
            m[i] = (char)('a' + (i >> 28));
        char c = 0;
        say("pread at 3 GiB: %ld '%c'", (long)pread(fd, &c, 1, 3L << 30), c);
        char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        say("mmap 4 GiB private: %s", p == MAP_FAILED ? en(-1) : "ok");
        if (p != MAP_FAILED) {
            say("private view: %c %c %d", p[0], p[1L << 30], p[5]);
            munmap(p, size);
        }
        say("msync a touched page: %s", en(msync(m + (2L << 30), PG, MS_SYNC)));
        munmap(m, size);
    }
    close(fd);
    unlink(at("large.dat"));
}

/* ---- msync_hold ---------------------------------------------------------------------------- */

static void msync_hold(void) {
    int fd = open(at("held.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create held.dat");
    ftruncate(fd, 2 * PG);
    char *p = map(2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (long i = 0; i < 2 * PG; i++)
        p[i] = (char)('A' + i % 26);
    strcpy(p + PG + 5, "held through msync");
    say("msync: %s", en(msync(p, 2 * PG, MS_SYNC)));
    say("synced");
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    strcpy(p + 100, "after the hold");
    munmap(p, 2 * PG);
    close(fd);
    say("done");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        say("usage: mm_shared MODE [DIR]");
        return 2;
    }
    const char *m = argv[1];
    if (argc > 2)
        snprintf(dir, sizeof dir, "%s", argv[2]);
    if (!strcmp(m, "anon"))
        anon();
    else if (!strcmp(m, "anon_edges"))
        anon_edges();
    else if (!strcmp(m, "devzero"))
        devzero();
    else if (!strcmp(m, "memfd"))
        memfd();
    else if (!strcmp(m, "sem"))
        sem();
    else if (!strcmp(m, "mutex"))
        mutex();
    else if (!strcmp(m, "robust"))
        robust();
    else if (!strcmp(m, "futex"))
        futexes();
    else if (!strcmp(m, "requeue_late"))
        requeue_late();
    else if (!strcmp(m, "robust_threads"))
        robust_threads();
    else if (!strcmp(m, "stops"))
        stops();
    else if (!strcmp(m, "wait_forever"))
        wait_forever();
    else if (!strcmp(m, "file"))
        file();
    else if (!strcmp(m, "file_fork"))
        file_fork();
    else if (!strcmp(m, "file_layout"))
        file_layout();
    else if (!strcmp(m, "file_eof"))
        file_eof();
    else if (!strcmp(m, "errors"))
        errors();
    else if (!strcmp(m, "hostile"))
        hostile();
    else if (!strcmp(m, "ro_volume"))
        ro_volume();
    else if (!strcmp(m, "large"))
        large();
    else if (!strcmp(m, "msync_hold"))
        msync_hold();
    else {
        say("unknown mode %s", m);
        return 2;
    }
    return 0;
}
