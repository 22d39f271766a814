/* catfile PATH [BUFSIZE]: copies the file at PATH to stdout with read(2)/write(2) through one
 * buffer of BUFSIZE bytes (default 128 KiB, as coreutils cat uses): the cost of file I/O. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 128 * 1024;
    char *buf = malloc(size);
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (!buf || fd < 0)
        return 1;
    for (;;) {
        ssize_t n = read(fd, buf, size);
        if (n == 0)
            return 0;
        if (n < 0)
            return 1;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(1, buf + done, (size_t)(n - done));
            if (w <= 0)
                return 1;
            done += w;
        }
    }
}
