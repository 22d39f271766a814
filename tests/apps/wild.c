// wild: touches heap memory far above the break, which it never asked for. On Linux that page
// is unmapped (SIGSEGV); umon must say the same, not crash or hand out memory. With an argument
// the touch is a memset (vector stores), without it one plain byte store.
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
int main(int c, char **v) {
  char *p = sbrk(0);
  p += 512ul << 20;            /* far above the break: never handed out */
  printf("poking %p\n", p); fflush(stdout);
  if (c > 1) memset(p, 1, 4096); else *(volatile char *)p = 1;
  puts("survived");
  return 0;
}
