/* A dynamically linked program whose greeting comes from a shared library of its own
 * (libdyn_greet.so, found through LD_LIBRARY_PATH) and whose `strlen` call goes through the
 * PLT, so an LD_PRELOAD'ed library can replace either. */
#include <stdio.h>
#include <string.h>

const char *greeting(void);

int main(int argc, char **argv) {
    const char *g = greeting();
    printf("%s (%zu bytes)\n", g, strlen(g));
    for (int i = 1; i < argc; i++)
        printf("arg %s\n", argv[i]);
    return 0;
}
