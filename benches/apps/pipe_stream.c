// pipe_stream MIB: MIB MiB from one thread to another through a pipe in 64 KiB writes and
// reads; exits 0 when every byte arrived in order (a running sum of positions), else 1.
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define CHUNK 65536
static int p[2];
static long total;

static void *producer(void *arg) {
    static unsigned char buf[CHUNK];
    for (long off = 0; off < total; off += CHUNK) {
        for (int i = 0; i < CHUNK; i += 4096)
            buf[i] = (unsigned char)((off + i) >> 12);
        if (write(p[1], buf, CHUNK) != CHUNK)
            exit(1);
    }
    close(p[1]);
    return arg;
}

int main(int argc, char **argv) {
    total = (argc > 1 ? atol(argv[1]) : 256) << 20;
    if (pipe(p) != 0)
        return 1;
    pthread_t t;
    if (pthread_create(&t, NULL, producer, NULL) != 0)
        return 1;
    static unsigned char buf[CHUNK];
    long got = 0, n;
    while ((n = read(p[0], buf, CHUNK)) > 0) {
        for (long i = 0; i < n; i++) {
            long at = got + i;
            if (at % 4096 == 0 && buf[i] != (unsigned char)(at >> 12))
                return 1;
        }
        got += n;
    }
    pthread_join(t, NULL);
    return got == total ? 0 : 1;
}
