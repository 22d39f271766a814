// say(): one line on stdout with a single write(2), so the test apps' lines reach the test
// whole and in order, stdio buffering or not. Exits 3 if the line cannot be written.
#ifndef UMON_TEST_SAY_H
#define UMON_TEST_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

#endif
