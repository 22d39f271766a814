/* socket(2) with the arguments argv gives (domain type protocol, decimal or 0x hex): prints the
 * fd's existence or the errno name. glibc's nscd client calls socket(AF_UNIX, ...) in every
 * getpwuid, which ls -l and id do. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i + 2 < argc; i += 3) {
        int fd = socket((int)strtol(argv[i], 0, 0), (int)strtol(argv[i + 1], 0, 0),
                        (int)strtol(argv[i + 2], 0, 0));
        if (fd >= 0) {
            printf("%s %s %s: a socket\n", argv[i], argv[i + 1], argv[i + 2]);
            close(fd);
        } else {
            printf("%s %s %s: %s\n", argv[i], argv[i + 1], argv[i + 2], strerrorname_np(errno));
        }
    }
    return 0;
}
