/* libdyn_preload.so: LD_PRELOAD'ed, its definitions win over libdyn_greet's and libc's. */
#include <stddef.h>

const char *greeting(void) { return "hello from the preloaded library"; }

size_t strlen(const char *s) {
    (void)s;
    return 42;
}
