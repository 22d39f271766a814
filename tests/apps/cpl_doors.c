// cpl_doors: tries every door from CPL3 to the guest's CPL0 (built -static: ET_EXEC, below
// 4 GiB, so its code can also run in a 32-bit code segment).
//
//   cpl_doors far SEL KIND [RSP]   far jump (ljmp through memory) to SEL:code, where code is the
//                                  32-bit (or, for KIND "ret64", 64-bit) snippet KIND:
//                                    syscall   `syscall` in compatibility mode (eax = 1, ebx = 42:
//                                              i386 exit(42))
//                                    sysenter  `sysenter`
//                                    int80     `int $0x80` (eax = 1, ebx = 42)
//                                    ud2       `ud2` (SIGILL if the jump landed)
//                                    mode      SIGILL if it landed in 32-bit code, SIGTRAP in
//                                              64-bit code; prints "door: compat mode would end
//                                              at ADDR" (the ud2) first
//                                    ret64     64-bit code that says "landed" and exits 0
//                                  RSP (hex), if given, is loaded into rsp just before the jump:
//                                  where a CPL0 exception frame would land if the snippet
//                                  reached CPL0 without a stack switch.
//   cpl_doors lcall SEL KIND       the same with a far call
//   cpl_doors lret SEL KIND        the same with a far return (lretq)
//   cpl_doors iret SEL KIND [RSP]  the same with iretq (SS = the current SS; rsp = RSP if given)
//   cpl_doors sysenter [RSP]       `sysenter` in 64-bit mode
//   cpl_doors int N [RSP]          `int $N` (N decimal, 0..255) in 64-bit mode
//
// Each prints "door: ARGS" first; if the program is still alive afterwards it prints
// "door: survived" and exits 0 (only "ret64" is meant to get there: "door: landed").
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "say.h"

// The snippets. 32-bit ones first: they run in a compatibility-mode code segment.
__asm__(".text\n"
        ".code32\n"
        "c32_syscall: mov $1, %eax\n mov $42, %ebx\n syscall\n ud2\n"
        "c32_sysenter: mov $1, %eax\n mov $42, %ebx\n sysenter\n ud2\n"
        "c32_int80: mov $1, %eax\n mov $42, %ebx\n int $0x80\n ud2\n"
        "c32_ud2: ud2\n"
        // Mode-dependent: 48 is `dec eax` in 32-bit code and a REX prefix in 64-bit code, so
        // compatibility mode ends in ud2 (SIGILL) and 64-bit mode in int3 (SIGTRAP).
        "c32_mode: xor %eax, %eax\n .byte 0x48, 0x90\n test %eax, %eax\n jnz c32_mode_compat\n"
        " int3\n"
        "c32_mode_compat: ud2\n"
        ".code64\n"
        // 256 stubs of 4 bytes: `int $N; ud2`.
        ".balign 16\n"
        "int_table:\n"
        ".set n, 0\n"
        ".rept 256\n"
        ".byte 0xcd, n\n"
        "ud2\n"
        ".set n, n + 1\n"
        ".endr\n");

extern char c32_syscall[], c32_sysenter[], c32_int80[], c32_ud2[], c32_mode[], c32_mode_compat[],
    int_table[];

// The far pointer the jumps use: static, so loading rsp cannot move it.
struct {
    uint32_t off;
    uint16_t sel;
} __attribute__((packed)) far_ptr;
static uint64_t new_rsp;

__attribute__((noreturn, used)) static void landed(void) {
    // Back in 64-bit code on some CS: rsp may be anything, so take a fresh stack.
    say("door: landed");
    _exit(0);
}

__attribute__((used)) char landing_stack[65536] __attribute__((aligned(16)));

__asm__(".text\n"
        "ret64:\n"
        " lea landing_stack+65536(%rip), %rsp\n"
        " call landed\n"
        " ud2\n");
extern char ret64[];

static void *snippet(const char *kind) {
    if (strcmp(kind, "syscall") == 0)
        return c32_syscall;
    if (strcmp(kind, "sysenter") == 0)
        return c32_sysenter;
    if (strcmp(kind, "int80") == 0)
        return c32_int80;
    if (strcmp(kind, "ud2") == 0)
        return c32_ud2;
    if (strcmp(kind, "mode") == 0)
        return c32_mode;
    if (strcmp(kind, "ret64") == 0)
        return ret64;
    return 0;
}

static int run(int argc, char **argv) {
    const char *how = argv[1];
    if (strcmp(how, "sysenter") == 0 || strcmp(how, "int") == 0) {
        void *code = strcmp(how, "int") == 0 ? int_table + 4 * (atoi(argv[2]) & 0xff) : 0;
        int rsp_arg = strcmp(how, "int") == 0 ? 3 : 2;
        new_rsp = argc > rsp_arg ? strtoull(argv[rsp_arg], 0, 16) : 0;
        if (code == 0)
            __asm__ volatile("test %0, %0\n jz 1f\n mov %0, %%rsp\n1: mov $1, %%eax\n"
                             " mov $42, %%ebx\n sysenter\n ud2" ::"r"(new_rsp)
                             : "rax", "rbx", "memory");
        else
            __asm__ volatile("test %0, %0\n jz 1f\n mov %0, %%rsp\n1: jmp *%1" ::"r"(new_rsp),
                             "r"(code)
                             : "memory");
        return 0;
    }
    if (argc < 4)
        return 2;
    uint16_t sel = (uint16_t)strtoul(argv[2], 0, 16);
    void *code = snippet(argv[3]);
    if (code == 0)
        return 2;
    if (code == c32_mode)
        say("door: compat mode would end at %p", (void *)c32_mode_compat);
    far_ptr.off = (uint32_t)(uintptr_t)code;
    far_ptr.sel = sel;
    new_rsp = argc > 4 ? strtoull(argv[4], 0, 16) : 0;
    if (strcmp(how, "far") == 0) {
        __asm__ volatile("test %0, %0\n jz 1f\n mov %0, %%rsp\n1: ljmpl *far_ptr(%%rip)" ::"r"(
                             new_rsp)
                         : "memory");
    } else if (strcmp(how, "lcall") == 0) {
        __asm__ volatile("lcalll *far_ptr(%%rip)" ::: "memory");
    } else if (strcmp(how, "lret") == 0) {
        __asm__ volatile("pushq %0\n pushq %1\n lretq" ::"r"((uint64_t)sel),
                         "r"((uint64_t)(uintptr_t)code)
                         : "memory");
    } else if (strcmp(how, "iret") == 0) {
        // The frame's rsp is RSP if given (the new stack in the target code), else this one.
        __asm__ volatile("mov %%ss, %%eax\n pushq %%rax\n pushq %%rsp\n addq $8, (%%rsp)\n"
                         " test %2, %2\n jz 1f\n mov %2, (%%rsp)\n"
                         "1: pushfq\n pushq %0\n pushq %1\n iretq" ::"r"((uint64_t)sel),
                         "r"((uint64_t)(uintptr_t)code), "r"(new_rsp)
                         : "rax", "memory");
    } else {
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        say("usage: cpl_doors far|lcall|lret|iret SEL KIND [RSP] | sysenter [RSP] | int N [RSP]");
        return 2;
    }
    char line[256] = "door:";
    for (int i = 1; i < argc; i++) {
        strncat(line, " ", sizeof line - strlen(line) - 1);
        strncat(line, argv[i], sizeof line - strlen(line) - 1);
    }
    say("%s", line);
    int r = run(argc, argv);
    if (r == 2) {
        say("door: bad arguments");
        return 2;
    }
    say("door: survived");
    return 0;
}
