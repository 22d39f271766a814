/* A hello with a 100 MiB initialised read-only array and 8 MiB of initialised data: an image of
 * over 100 MB (issue 13: start-up must not grow with the image size). Touches one byte of
 * each, as a program touches a little of a large binary. */
#include <stdio.h>

static const unsigned char big[100 << 20] = {1, 2, 3};
unsigned char data[8 << 20] = {4, 5, 6};

int main(int argc, char **argv) {
    (void)argv;
    printf("%d %d\n", big[argc], data[argc]);
    return 0;
}
