// cat: copies stdin to stdout byte for byte with read(2)/write(2) and a 64 KiB buffer.
//
// Large buffers keep the number of syscalls (each one a VM exit under umon) small. Short
// writes are completed and EINTR is retried. Exits 0 at end of input, 1 on an I/O error
// (with a message on stderr).
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static char buf[64 * 1024];

int main(void) {
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("cat: read");
            return 1;
        }
        // write(2) may take fewer bytes than asked (a pipe with little room): finish the chunk.
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(1, buf + done, (size_t)(n - done));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                perror("cat: write");
                return 1;
            }
            done += w;
        }
    }
}
