/* CPU-bound work with no syscalls in the loop: argv[1] rounds of an LCG mixed with xorshift.
 * Prints the result so the loop cannot be optimised away. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 100000000UL;
    unsigned long x = 88172645463325252UL;
    for (unsigned long i = 0; i < rounds; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        x ^= x >> 29;
    }
    printf("%lu\n", x);
    return 0;
}
