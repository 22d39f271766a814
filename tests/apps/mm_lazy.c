// mm_lazy: memory mapped lazily (issue 13 steps 7-9). Each mode prints what it saw, so the
// output can be compared with the native run where Linux's answer does not depend on the
// host's RAM:
//   reserve  - a 4 GiB PROT_NONE reservation, a piece of it made writable and used
//   go       - what Go >= 1.20 does at start: 1.2 GiB PROT_NONE, then MAP_FIXED read-write
//              64 MiB pieces in it, touched throughout
//   touch MiB- mmap MiB read-write in 64 MiB pieces and touch every page (more than -m: killed)
//   big MiB  - mmap MiB private read-write (ENOMEM above -m), MAP_NORESERVE, PROT_NONE
//   dontneed - MADV_DONTNEED and munmap+mmap read zeros afterwards; mincore follows
//   cycles N MiB - N times: mmap MiB (64 by default), touch every page, munmap
//   read     - read(2) of stdin into a fresh lazy mapping (the monitor populates it)
//   cost     - prints what a first touch costs (not compared: a measurement)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MB (1ul << 20)
#define PAGE 4096ul

static unsigned long touch(unsigned char *p, unsigned long len, unsigned char seed) {
  unsigned long sum = 0;
  for (unsigned long i = 0; i < len; i += PAGE) p[i] = (unsigned char)(seed + i / PAGE);
  for (unsigned long i = 0; i < len; i += PAGE) sum += p[i];
  return sum;
}

static const char *err(void *p) {
  if (p != MAP_FAILED) return "ok";
  return errno == ENOMEM ? "ENOMEM" : strerror(errno);
}

static int reserve(void) {
  unsigned long len = 4096 * MB;
  unsigned char *r = mmap(0, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("reserve 4G PROT_NONE: %s\n", err(r));
  if (r == MAP_FAILED) return 1;
  unsigned char *piece = r + 2048 * MB;
  void *q = mmap(piece, 16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  printf("fixed 16M rw inside: %s\n", q == piece ? "ok" : err(q));
  printf("sum %lu\n", touch(piece, 16 * MB, 7));
  printf("munmap: %d\n", munmap(r, len));
  return 0;
}

static int go_start(void) {
  unsigned long len = 1229 * MB;
  unsigned char *r = mmap(0, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("reserve 1.2G PROT_NONE: %s\n", err(r));
  if (r == MAP_FAILED) return 1;
  unsigned long sum = 0;
  for (int i = 0; i < 3; i++) {
    unsigned char *at = r + (unsigned long)i * 64 * MB;
    void *q = mmap(at, 64 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("piece %d: %s\n", i, q == at ? "ok" : err(q));
    if (q != at) return 1;
    sum += touch(at, 64 * MB, (unsigned char)i);
  }
  printf("sum %lu\n", sum);
  return 0;
}

static int touch_mib(unsigned long mib) {
  unsigned long sum = 0;
  for (unsigned long done = 0; done < mib; done += 64) {
    unsigned char *p = mmap(0, 64 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      printf("mmap after %lu MiB: %s\n", done, err(p));
      return 1;
    }
    sum += touch(p, 64 * MB, 1);
  }
  printf("touched %lu MiB, sum %lu\n", mib, sum);
  return 0;
}

static int big(unsigned long mib) {
  void *p = mmap(0, mib * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("rw private: %s\n", err(p));
  void *q = mmap(0, mib * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  printf("rw noreserve: %s\n", err(q));
  void *n = mmap(0, mib * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("none: %s\n", err(n));
  return 0;
}

static void residency(const char *what, unsigned char *p, unsigned long len) {
  unsigned char v[len / PAGE];
  if (mincore(p, len, v) != 0) {
    printf("%s: mincore %s\n", what, strerror(errno));
    return;
  }
  unsigned long n = 0;
  for (unsigned long i = 0; i < len / PAGE; i++) n += v[i] & 1;
  printf("%s: %lu of %lu pages resident\n", what, n, len / PAGE);
}

static int dontneed(void) {
  unsigned long len = 8 * MB;
  unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  memset(p, 0x5a, len);
  residency("after memset", p, len);
  // Across a 2 MiB boundary and not aligned to one: 1 MiB .. 5 MiB.
  printf("madvise: %d\n", madvise(p + MB, 4 * MB, MADV_DONTNEED));
  residency("after DONTNEED", p + MB, 4 * MB);
  residency("the rest", p, MB);
  residency("the rest", p + 5 * MB, 3 * MB);
  unsigned long zeros = 0, kept = 0;
  for (unsigned long i = 0; i < len; i++) {
    if (i >= MB && i < 5 * MB) zeros += p[i] == 0;
    else kept += p[i] == 0x5a;
  }
  printf("zeros %lu kept %lu\n", zeros, kept);
  memset(p + MB, 0x33, PAGE);
  printf("rewritten %x\n", p[MB]);
  munmap(p, len);
  unsigned char *again = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  unsigned long nonzero = 0;
  for (unsigned long i = 0; i < len; i++) nonzero += again[i] != 0;
  printf("remapped: %s, nonzero %lu\n", again == p ? "same place" : "elsewhere", nonzero);
  return 0;
}

static int cycles(int n, unsigned long mib) {
  unsigned long sum = 0;
  for (int i = 0; i < n; i++) {
    unsigned char *p = mmap(0, mib * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      printf("cycle %d: %s\n", i, err(p));
      return 1;
    }
    sum += touch(p, mib * MB, (unsigned char)i);
    if (munmap(p, mib * MB) != 0) {
      printf("cycle %d: munmap %s\n", i, strerror(errno));
      return 1;
    }
  }
  printf("%d cycles, sum %lu\n", n, sum);
  return 0;
}

static int read_into(void) {
  unsigned char *p = mmap(0, 32 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  char *at = (char *)p + 17 * MB + 100;
  ssize_t n = read(0, at, 64);
  printf("read %zd: %.*s\n", n, (int)(n > 0 ? n : 0), at);
  n = write(1, p + 20 * MB, 0);
  printf("write from untouched: %zd\n", n);
  return 0;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* One byte per 2 MiB of a big mapping (2 MiB faults), then one per 64 KiB of a mapping split
   by a read-only page in every 2 MiB (4 KiB faults with fault-around), then a second pass. */
static int cost(void) {
  unsigned long len = 128 * MB;
  unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *q = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || q == MAP_FAILED) return 1;
  for (unsigned long o = MB; o < len; o += 2 * MB) mprotect(q + o, PAGE, PROT_READ);
  double t0 = now_us();
  for (unsigned long o = 0; o < len; o += 2 * MB) p[o] = 1;
  double t1 = now_us();
  unsigned long n4 = 0;
  for (unsigned long o = 0; o < len; o += 64 * 1024)
    if ((o % (2 * MB)) != MB) { q[o] = 1; n4++; }
  double t2 = now_us();
  for (unsigned long o = 0; o < len; o += PAGE) p[o] = 2;
  double t3 = now_us();
  fprintf(stderr, "2 MiB fault: %.1f us each (%lu)\n", (t1 - t0) / (len / (2 * MB)), len / (2 * MB));
  fprintf(stderr, "4 KiB fault + 7 around: %.1f us each (%lu)\n", (t2 - t1) / n4, n4);
  fprintf(stderr, "first write per 4 KiB page after its 2 MiB fault: %.2f us\n", (t3 - t2) / (len / PAGE));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IONBF, 0);
  const char *mode = argc > 1 ? argv[1] : "";
  unsigned long arg = argc > 2 ? strtoul(argv[2], 0, 0) : 0;
  if (!strcmp(mode, "reserve")) return reserve();
  if (!strcmp(mode, "go")) return go_start();
  if (!strcmp(mode, "touch")) return touch_mib(arg);
  if (!strcmp(mode, "big")) return big(arg);
  if (!strcmp(mode, "dontneed")) return dontneed();
  if (!strcmp(mode, "cycles")) return cycles((int)arg, argc > 3 ? strtoul(argv[3], 0, 0) : 64);
  if (!strcmp(mode, "read")) return read_into();
  if (!strcmp(mode, "cost")) return cost();
  fprintf(stderr, "unknown mode\n");
  return 2;
}
