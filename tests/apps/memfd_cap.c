/* Fills a memfd until a write is cut short, then probes every way of writing at that limit:
 * write, pwrite, writev, fallocate, copy_file_range, sendfile, splice. Prints the limit found
 * (or "no limit" after 128 MiB, as natively) and what each call returned. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHUNK (1L << 20)
#define TRY (128L << 20)

static char buf[CHUNK];

static void say(const char *what, long r) {
    if (r >= 0)
        printf("%s: %ld\n", what, r);
    else if (errno == ENOSPC)
        printf("%s: ENOSPC\n", what);
    else
        printf("%s: errno %d\n", what, errno);
}

int main(void) {
    memset(buf, 'x', sizeof buf);
    int fd = memfd_create("cap", 0);
    if (fd < 0) {
        perror("memfd_create");
        return 1;
    }
    long total = 0, r = 0;
    while (total < TRY) {
        r = write(fd, buf, CHUNK);
        if (r <= 0)
            break;
        total += r;
        if (r < CHUNK)
            break;
    }
    if (total >= TRY) {
        puts("no limit");
        return 0;
    }
    long t = total;
    printf("limit %ld\n", t);
    say("write at the limit", write(fd, buf, 1));
    say("empty write at the limit", write(fd, buf, 0));
    struct stat st;
    fstat(fd, &st);
    printf("size is the limit: %d\n", st.st_size == t);

    say("pwrite across", pwrite(fd, buf, 2, t - 1));
    say("pwrite at", pwrite(fd, buf, 1, t));
    say("pwrite past", pwrite(fd, buf, 1, t + 4096));
    say("pwrite below", pwrite(fd, buf, 4096, t - 8192));

    lseek(fd, t - 10, SEEK_SET);
    struct iovec iov[2] = {{buf, 8}, {buf, 8}};
    say("writev across", writev(fd, iov, 2));
    say("writev at", writev(fd, iov, 2));
    say("pwritev across", pwritev(fd, iov, 2, t - 12));

    say("fallocate to", fallocate(fd, 0, 0, t));
    say("fallocate past", fallocate(fd, 0, t - 4096, 4097));

    int src = memfd_create("src", 0);
    say("source", write(src, buf, 4096));
    loff_t in = 0, out = t - 100;
    say("copy_file_range across", copy_file_range(src, &in, fd, &out, 4096, 0));
    in = 0, out = t;
    say("copy_file_range at", copy_file_range(src, &in, fd, &out, 4096, 0));

    off_t off = 0;
    lseek(fd, t - 50, SEEK_SET);
    say("sendfile across", sendfile(fd, src, &off, 4096));
    off = 0;
    say("sendfile at", sendfile(fd, src, &off, 4096));

    int p[2];
    if (pipe(p) < 0 || write(p[1], buf, 64) != 64) {
        perror("pipe");
        return 1;
    }
    loff_t at = t - 30;
    say("splice across", splice(p[0], NULL, fd, &at, 64, 0));
    say("splice at", splice(p[0], NULL, fd, &at, 64, 0));

    fstat(fd, &st);
    printf("size is still the limit: %d\n", st.st_size == t);
    say("ftruncate to half", ftruncate(fd, t / 2));
    say("write after truncation", pwrite(fd, buf, CHUNK, t / 2));
    return 0;
}
