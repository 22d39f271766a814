/* Prints lines of /proc/self/maps without their addresses.
 *
 * No argument: the lines that name a shared library (not the program, not the interpreter):
 * permissions, offset, device, inode and path, as ld.so mapped them.
 *
 * "images": the lines of the program itself (the file /proc/self/exe names) and of the
 * interpreter (the file mapped at AT_BASE), as the kernel's ELF loader mapped them, each with
 * its size, and the anonymous line right after a file's last line (its zeroed part past the
 * file); then the [heap] lines (anonymous memory over the break's range, however made), each
 * with its size. */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

/* Zeroed data well past the file's last page: an anonymous line after the program's. */
static char zeroed[300000];

/* Whether `path` (up to its newline) is `name`, or `name (deleted)`. */
static int names(const char *path, const char *name) {
    size_t n = strlen(name);
    return n && strncmp(path, name, n) == 0 && (path[n] == '\n' || path[n] == ' ');
}

/* The name of the file mapped at `base` (its path up to the newline), or "". */
static void name_at(unsigned long base, char *name, size_t size) {
    name[0] = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start;
        char *path = strchr(line, '/');
        if (base && sscanf(line, "%lx-", &start) == 1 && start == base && path) {
            snprintf(name, size, "%.*s", (int)strcspn(path, "\n"), path);
            break;
        }
    }
    if (f)
        fclose(f);
}

int main(int argc, char **argv) {
    int images = argc > 1 && strcmp(argv[1], "images") == 0;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0) {
        perror("exe");
        return 1;
    }
    exe[len] = 0;
    char interp[4096];
    name_at(getauxval(AT_BASE), interp, sizeof interp);
    zeroed[sizeof zeroed - 1] = (char)argc;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) {
        perror("maps");
        return 1;
    }
    char line[4096];
    static char heap[16384];
    size_t heap_at = 0;
    int n = 0;
    unsigned long last_end = 0; /* end of the last image file line printed, 0 if not the last */
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx", &start, &end) != 2) {
            fputs("bad line\n", stdout);
            return 1;
        }
        char *rest = strchr(line, ' ');
        char *path = strchr(line, '/');
        if (!rest)
            continue;
        if (!images) {
            if (!path || strstr(path, "ld-linux") || strstr(path, argv[0]))
                continue;
            fputs(rest + 1, stdout), n++;
            continue;
        }
        int anon = !path && !strchr(line, '[');
        if (strstr(line, " [heap]\n")) {
            /* Printed last, without the padding (whose width follows the addresses'). */
            char perms[8], offset[32], dev[32], ino[32];
            if (sscanf(rest + 1, "%7s %31s %31s %31s", perms, offset, dev, ino) == 4)
                heap_at += snprintf(heap + heap_at, sizeof heap - heap_at, "%#lx %s %s %s %s [heap]\n",
                                    end - start, perms, offset, dev, ino);
            n++;
            last_end = 0;
        } else if (path && (names(path, exe) || names(path, interp))) {
            printf("%#lx %s", end - start, rest + 1), n++;
            last_end = end;
        } else if (anon && last_end == start) {
            printf("%#lx %s", end - start, rest + 1), n++;
            last_end = 0;
        } else {
            last_end = 0;
        }
    }
    fclose(f);
    fputs(heap, stdout);
    printf("%d %s mappings\n", n, images ? "image" : "library");
    return zeroed[sizeof zeroed - 1] == 0;
}
