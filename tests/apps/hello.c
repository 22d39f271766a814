// hello: prints its argument vector and its environment, one item per line, then exits 0.
//
// Output format (the tests build the same text in Rust and compare byte for byte):
//   argc=N
//   argv[0]=...
//   ...
//   env[0]=KEY=VALUE
//   ...
// umon starts an app with an empty environment unless `-e` is given, so with no `-e` the
// output has no `env[` lines at all.
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    for (int i = 0; environ != NULL && environ[i] != NULL; i++)
        printf("env[%d]=%s\n", i, environ[i]);
    // stdout is a pipe in the tests, so this is one fully buffered write at exit; check that
    // it went out rather than returning 0 regardless.
    return fflush(stdout) == 0 ? 0 : 1;
}
