// fault: dies the way argv[1] says, in a function of its own (so a symbolised report names it):
//
//   null   fault_null       writes through a NULL pointer            #PF -> SIGSEGV (139)
//   gp     fault_gp         reads through 0x8000000000000000, a
//                           non-canonical address                    #GP -> SIGSEGV (139)
//   ud     fault_ud         __builtin_trap(), i.e. ud2               #UD -> SIGILL  (132)
//   de     fault_de         integer division by zero                 #DE -> SIGFPE  (136)
//   stack  recurse_forever  unbounded recursion, 1 KiB frames        stack overflow -> SIGSEGV
//
// Before faulting it writes "fault: KIND" to stdout with write(2), so the tests also see that
// output made before a crash is not lost. An unknown kind exits 2.
//
// The pointers and operands live in volatile variables and the functions are noipa, so gcc can
// neither prove the fault (and replace it with a trap of its own choosing) nor inline, clone,
// or turn the recursion into a loop.
#include <string.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa))

NOIPA int fault_null(void) {
    volatile int *volatile p = 0;
    *p = 42;
    return 0;
}

NOIPA long fault_gp(void) {
    volatile long *volatile p = (volatile long *)0x8000000000000000UL;
    return *p;
}

NOIPA int fault_ud(void) {
    __builtin_trap();
}

NOIPA int fault_de(void) {
    volatile int a = 1, b = 0;
    return a / b;
}

// The recursion is infinite on purpose.
#pragma GCC diagnostic ignored "-Winfinite-recursion"
NOIPA int recurse_forever(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    // Using the callee's result and the array after the call keeps this a real call, never a
    // tail call or a loop.
    int r = recurse_forever(depth + 1);
    frame[1] = (char)r;
    return frame[0] + frame[1];
}

static void say(const char *kind) {
    char line[64] = "fault: ";
    strncat(line, kind, sizeof line - strlen(line) - 2);
    strcat(line, "\n");
    (void)!write(1, line, strlen(line));
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "";
    say(kind);
    if (strcmp(kind, "null") == 0)
        return fault_null();
    if (strcmp(kind, "gp") == 0)
        return (int)fault_gp();
    if (strcmp(kind, "ud") == 0)
        return fault_ud();
    if (strcmp(kind, "de") == 0)
        return fault_de();
    if (strcmp(kind, "stack") == 0)
        return recurse_forever(0);
    return 2;
}
