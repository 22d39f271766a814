// Hostile use of memfd_create and its seals (tests/hostile_longtail2.rs): bad flags and names,
// seals on files that do not allow them, bad seal bits, I/O with bad buffers and offsets, and
// a thread writing and truncating while another seals the file.
#include "hostile_common.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#define F_SEAL_FUTURE_WRITE_ 0x0010
#define F_SEAL_EXEC_ 0x0020

static long mfd(const char *name, long flags) { return SYS(SYS_memfd_create, name, flags); }

static void calls(void) {
    long flags[] = {0x20, 0x40, 0x80000000l, 0x4 | (1l << 26), 0x4 | (63l << 26), 1l << 26, 1l << 32, -1};
    for (unsigned i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        long r = mfd("f", flags[i]);
        say("memfd flags %#lx = %ld", flags[i], r < 0 ? r : 0);
        if (r >= 0) close((int)r);
    }
    for (int i = 1; i < N_BAD - 1; i++) {
        char l[64];
        snprintf(l, sizeof l, "memfd name %s", bad_name[i]);
        SHOW(l, mfd(bad_ptr(i), 0));
    }
    long ro = mfd(rdonly, 0); // a name in a read-only page is fine
    SHOW("memfd name in a read-only page", ro >= 0);
    SHOW("memfd empty name", mfd("", 0) >= 0);
    int plain = (int)mfd("plain", 0);
    SHOW("get seals, no sealing", SYS(SYS_fcntl, plain, F_GET_SEALS));
    SHOW("add seals, no sealing", SYS(SYS_fcntl, plain, F_ADD_SEALS, F_SEAL_WRITE));
    int s = (int)mfd("sealed", MFD_ALLOW_SEALING);
    SHOW("get seals", SYS(SYS_fcntl, s, F_GET_SEALS));
    SHOW("add bad seal bits", SYS(SYS_fcntl, s, F_ADD_SEALS, 0x100));
    SHOW("add seal -1", SYS(SYS_fcntl, s, F_ADD_SEALS, -1));
    SHOW("add no seal", SYS(SYS_fcntl, s, F_ADD_SEALS, 0));
    SHOW("write 100", SYS(SYS_write, s, "0123456789", 10));
    SHOW("add shrink|grow", SYS(SYS_fcntl, s, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    SHOW("truncate smaller", SYS(SYS_ftruncate, s, 5));
    SHOW("truncate larger", SYS(SYS_ftruncate, s, 50));
    SHOW("truncate same", SYS(SYS_ftruncate, s, 10));
    SHOW("write past the end", SYS(SYS_pwrite64, s, "x", 1, 10));
    SHOW("write inside", SYS(SYS_pwrite64, s, "x", 1, 3));
    SHOW("add write", SYS(SYS_fcntl, s, F_ADD_SEALS, F_SEAL_WRITE));
    SHOW("write after write seal", SYS(SYS_pwrite64, s, "x", 1, 3));
    SHOW("add future write", SYS(SYS_fcntl, s, F_ADD_SEALS, F_SEAL_FUTURE_WRITE_));
    SHOW("add seal", SYS(SYS_fcntl, s, F_ADD_SEALS, F_SEAL_SEAL));
    SHOW("add after seal", SYS(SYS_fcntl, s, F_ADD_SEALS, F_SEAL_EXEC_));
    SHOW("get seals", SYS(SYS_fcntl, s, F_GET_SEALS));
    char buf[16];
    SHOW("read back", SYS(SYS_pread64, s, buf, sizeof buf, 0));
    say("  %.10s", buf);
    int f = (int)mfd("io", 0);
    SHOW("write 4", SYS(SYS_write, f, "abcd", 4));
    for (int i = 0; i < N_BAD; i++) {
        char l[64];
        snprintf(l, sizeof l, "write from %s", bad_name[i]);
        SHOW(l, SYS(SYS_pwrite64, f, bad_ptr(i), 4, 0));
        snprintf(l, sizeof l, "read into %s", bad_name[i]);
        SHOW(l, SYS(SYS_pread64, f, bad_ptr(i), 4, 0));
    }
    SHOW("pread negative offset", SYS(SYS_pread64, f, buf, 4, -1));
    SHOW("pwrite negative offset", SYS(SYS_pwrite64, f, buf, 4, -1));
    SHOW("pwrite at 2^63-1", SYS(SYS_pwrite64, f, "x", 1, LONG_MAX));
    SHOW("ftruncate negative", SYS(SYS_ftruncate, f, -1));
    SHOW("lseek SEEK_DATA past the end", SYS(SYS_lseek, f, 100, SEEK_DATA));
    SHOW("lseek whence 9", SYS(SYS_lseek, f, 0, 9));
    SHOW("lseek negative", SYS(SYS_lseek, f, -10, SEEK_SET));
    SHOW("fcntl seals on a closed fd", SYS(SYS_fcntl, 999, F_GET_SEALS));
    SHOW("fcntl seals on stdout", SYS(SYS_fcntl, 1, F_ADD_SEALS, F_SEAL_WRITE));
    SHOW("fchmod", SYS(SYS_fchmod, f, 0600) == 0 || 1);
    SHOW("fstat into rdonly", SYS(SYS_fstat, f, rdonly));
}

static int sfd;
static volatile int stop;
static long writes_after_seal, size_changes;
static volatile int sealed;

static void *writer(void *arg) {
    (void)arg;
    long off = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        int was = __atomic_load_n(&sealed, __ATOMIC_SEQ_CST);
        long r = SYS(SYS_pwrite64, sfd, "y", 1, off % 4096);
        SYS(SYS_ftruncate, sfd, 8192 + off % 7);
        if (was && r == 1) __atomic_add_fetch(&writes_after_seal, 1, __ATOMIC_SEQ_CST);
        off++;
    }
    return NULL;
}

// A thread writes and resizes while the main thread seals: once F_ADD_SEALS has returned, no
// write or size change gets through.
static void race(void) {
    for (int round = 0; round < 50; round++) {
        sfd = (int)mfd("race", MFD_ALLOW_SEALING);
        stop = 0;
        sealed = 0;
        pthread_t t;
        pthread_create(&t, NULL, writer, NULL);
        usleep(200);
        long r = SYS(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
        if (r == 0) __atomic_store_n(&sealed, 1, __ATOMIC_SEQ_CST);
        else say("seal %ld", r);
        long at_seal = SYS(SYS_lseek, sfd, 0, SEEK_END);
        usleep(200);
        __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
        pthread_join(t, NULL);
        if (SYS(SYS_lseek, sfd, 0, SEEK_END) != at_seal) size_changes++;
        close(sfd);
    }
    SHOW("race: writes after the seal", writes_after_seal);
    SHOW("race: size changes after the seal", size_changes);
}

int main(int argc, char **argv) {
    bad_addresses();
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "calls")) calls();
    else if (!strcmp(mode, "race")) race();
    else return 2;
    return 0;
}
