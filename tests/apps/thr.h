// Shared by the thread test apps (tests/apps/thr_*.c): raw syscalls that never touch errno and a
// raw clone whose child runs fn(arg) on its own stack and then exits the thread, so a test can
// create threads without a C library (no TLS set up unless it asks for CLONE_SETTLS).
#ifndef UMON_TEST_THR_H
#define UMON_TEST_THR_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

// musl's headers have no <linux/futex.h>; the values are the kernel ABI.
#ifndef FUTEX_WAIT
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_FD 2
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_LOCK_PI 6
#define FUTEX_UNLOCK_PI 7
#define FUTEX_TRYLOCK_PI 8
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY 0xffffffff
#define FUTEX_OP_SET 0
#define FUTEX_OP_ADD 1
#define FUTEX_OP_OR 2
#define FUTEX_OP_ANDN 3
#define FUTEX_OP_XOR 4
#define FUTEX_OP_OPARG_SHIFT 8
#define FUTEX_OP_CMP_EQ 0
#define FUTEX_OP_CMP_NE 1
#define FUTEX_OP_CMP_LT 2
#define FUTEX_OP_CMP_LE 3
#define FUTEX_OP_CMP_GT 4
#define FUTEX_OP_CMP_GE 5
#define FUTEX_OP(op, oparg, cmp, cmparg) \
    ((((op) & 0xf) << 28) | (((cmp) & 0xf) << 24) | (((oparg) & 0xfff) << 12) | ((cmparg) & 0xfff))
#endif


static inline long rsys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define rsys(n, a, b, c, d, e, f) \
    rsys6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static inline long futex6(void *uaddr, long op, long val, const void *t, void *uaddr2, long val3) {
    return rsys(SYS_futex, uaddr, op, val, t, uaddr2, val3);
}

// clone(flags, stack, ptid, ctid, tls); in the child: when fn is set, fn(arg) on `stack` and then
// exit(its return value); when fn is NULL, exit(0) at once without touching the stack (for flag
// sets that might create a process or share the caller's stack). Returns what clone returned in
// the parent (a tid or -errno).
long raw_clone(unsigned long flags, void *stack, int *ptid, int *ctid, unsigned long tls,
               int (*fn)(void *), void *arg);
__asm__(".text\n"
        ".globl raw_clone\n"
        ".type raw_clone,@function\n"
        "raw_clone:\n"
        "    push %r12\n"
        "    push %r13\n"
        "    mov %r9, %r12\n"          // fn
        "    mov 24(%rsp), %r13\n"     // arg (7th argument, above the two pushes and the return)
        "    mov %rcx, %r10\n"         // ctid
        "    mov $56, %eax\n"          // SYS_clone
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    pop %r13\n"
        "    pop %r12\n"
        "    ret\n"
        "1:  test %r12, %r12\n"
        "    jz 2f\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    mov %r13, %rdi\n"
        "    call *%r12\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n"          // SYS_exit: this thread only
        "    syscall\n"
        "    hlt\n"
        "2:  xor %edi, %edi\n"
        "    mov $60, %eax\n"
        "    syscall\n"
        "    hlt\n"
        ".size raw_clone, .-raw_clone\n");

// clone3(args, size); a child (if any is created) exits(0) at once without touching its stack.
long raw_clone3(void *args, unsigned long size);
__asm__(".text\n"
        ".globl raw_clone3\n"
        ".type raw_clone3,@function\n"
        "raw_clone3:\n"
        "    mov $435, %eax\n"         // SYS_clone3
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n"
        "1:  xor %edi, %edi\n"
        "    mov $60, %eax\n"
        "    syscall\n"
        "    hlt\n"
        ".size raw_clone3, .-raw_clone3\n");

// The flags glibc's pthread_create passes, minus TLS and the tid pointers.
#define THREAD_FLAGS                                                                     \
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

// A name for -errno, so lines compare the same on every libc.
__attribute__((unused)) static const char *ename(long r) {
    switch (-r) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EDEADLK: return "EDEADLK";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EACCES: return "EACCES";
    case E2BIG: return "E2BIG";
    case EEXIST: return "EEXIST";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return r >= 0 ? "ok" : "E?";
    }
}

// pthread_create or, when it fails, a line on stderr and exit 1 (not a hang on a thread that
// never ran).
__attribute__((unused)) static void thr_create(pthread_t *t, const pthread_attr_t *a,
                                               void *(*fn)(void *), void *arg) {
    int rc = pthread_create(t, a, fn, arg);
    if (rc != 0) {
        char line[64];
        int n = snprintf(line, sizeof line, "FAIL pthread_create: %s\n", ename(-rc));
        if (write(2, line, (size_t)n) < 0)
            _exit(1);
        exit(1);
    }
}

#endif
