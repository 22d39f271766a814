// bigout: writes N bytes (argv[1]) of a deterministic pattern to stdout, then one line
// "bigout: wrote N bytes" to stderr, and exits 0.
//
// Byte i of the output is the top byte of i * 0x9E3779B97F4A7C15 (a multiplicative hash), so
// a lost, repeated or reordered chunk shows up anywhere in the stream. The tests compute the
// same function. Output goes out in 1 MiB write(2) calls to keep the syscall count low.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)
static unsigned char buf[CHUNK];

static unsigned char pattern(uint64_t i) {
    return (unsigned char)((i * 0x9E3779B97F4A7C15ULL) >> 56);
}

int main(int argc, char **argv) {
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    uint64_t pos = 0;
    while (pos < total) {
        size_t len = total - pos < CHUNK ? (size_t)(total - pos) : CHUNK;
        for (size_t k = 0; k < len; k++)
            buf[k] = pattern(pos + k);
        for (size_t done = 0; done < len;) {
            ssize_t w = write(1, buf + done, len - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                perror("bigout: write");
                return 1;
            }
            done += (size_t)w;
        }
        pos += len;
    }
    fprintf(stderr, "bigout: wrote %llu bytes\n", (unsigned long long)total);
    return 0;
}
