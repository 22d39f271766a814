// block: never ends by itself, in the way argv[1] says, so that only umon can end it:
//   spin   a CPL3 loop without syscalls
//   sleep  nanosleep for 1000 s
//   read   read(2) from stdin, which the test keeps open and silent
// It prints "started" first so the test knows the guest is running.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "spin";
    printf("started\n");
    fflush(stdout);
    if (!strcmp(mode, "sleep")) {
        sleep(1000);
    } else if (!strcmp(mode, "read")) {
        char buf[16];
        return (int)read(0, buf, sizeof buf);
    } else {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    return 0;
}
