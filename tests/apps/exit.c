// exit: exits with the status given as argv[1] (default 0).
//
//   exit N        returns N from main: libc's exit() and then the exit_group syscall
//   exit N raw    calls the bare `exit` syscall (60), which ends this single-threaded
//                 process just the same, without running libc's exit handlers
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2 && strcmp(argv[2], "raw") == 0)
        syscall(SYS_exit, code);
    return code;
}
