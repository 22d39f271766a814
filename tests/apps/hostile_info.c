// Hostile arguments to the process-information calls (tests/hostile_longtail2.rs): sched_*,
// getpriority/setpriority, ioprio_*, prctl, personality, getrusage, times, sysinfo, membarrier,
// and flock / fcntl record locks, with bad pointers, ids, policies, classes, commands and
// flags; only answers that do not depend on the caller's privileges.
//   hostile_info calls DIR
#include "hostile_common.h"
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define IOPRIO_PRIO_VALUE(class, data) (((class) << 13) | (data))

int main(int argc, char **argv) {
    bad_addresses();
    if (argc < 3 || strcmp(argv[1], "calls")) return 2;
    const char *dir = argv[2];
    struct sched_param sp = {0};
    for (int i = 0; i < N_BAD; i++)
        say("%s: getparam %ld setparam %ld setscheduler %ld getaffinity %ld", bad_name[i],
            SYS(SYS_sched_getparam, 0, bad_ptr(i)), SYS(SYS_sched_setparam, 0, bad_ptr(i)),
            SYS(SYS_sched_setscheduler, 0, SCHED_OTHER, bad_ptr(i)), SYS(SYS_sched_getaffinity, 0, 128, bad_ptr(i)));
    long pids[] = {-1, INT32_MIN, 1l << 32, 0x7fffffff};
    for (int i = 0; i < 4; i++)
        say("pid %#lx: getscheduler %ld getparam %ld setparam %ld setscheduler %ld", pids[i],
            SYS(SYS_sched_getscheduler, pids[i]), SYS(SYS_sched_getparam, pids[i], &sp),
            SYS(SYS_sched_setparam, pids[i], &sp), SYS(SYS_sched_setscheduler, pids[i], SCHED_OTHER, &sp));
    // SCHED_RESET_ON_FORK last: clearing it again needs CAP_SYS_NICE (root natively).
    long policies[] = {-1, 4, 7, 8, 1l << 32, 0x40000000, 0x40000003};
    for (int i = 0; i < 7; i++)
        say("policy %#lx: setscheduler %ld max %ld min %ld", policies[i],
            SYS(SYS_sched_setscheduler, 0, policies[i], &sp), SYS(SYS_sched_get_priority_max, policies[i]),
            SYS(SYS_sched_get_priority_min, policies[i]));
    struct sched_param one = {1};
    SHOW("setscheduler OTHER priority 1", SYS(SYS_sched_setscheduler, 0, SCHED_OTHER, &one));
    struct sched_param neg = {-1};
    SHOW("setscheduler FIFO priority -1", SYS(SYS_sched_setscheduler, 0, SCHED_FIFO, &neg));
    struct sched_param big = {100};
    SHOW("setscheduler RR priority 100", SYS(SYS_sched_setscheduler, 0, SCHED_RR, &big));
    SHOW("setscheduler BATCH priority 1", SYS(SYS_sched_setscheduler, 0, SCHED_BATCH, &one));
    SHOW("getaffinity size 0", SYS(SYS_sched_getaffinity, 0, 0, &sp));
    SHOW("getaffinity size 7", SYS(SYS_sched_getaffinity, 0, 7, &sp));
    SHOW("setaffinity empty", SYS(SYS_sched_setaffinity, 0, 8, "\0\0\0\0\0\0\0\0"));
    SHOW("setaffinity bad ptr", SYS(SYS_sched_setaffinity, 0, 8, KERNEL));
    long which[] = {-1, 3, 1l << 32};
    for (int i = 0; i < 3; i++)
        say("which %#lx: getpriority %ld setpriority %ld ioprio_get %ld ioprio_set %ld", which[i],
            SYS(SYS_getpriority, which[i], 0), SYS(SYS_setpriority, which[i], 0, 5),
            SYS(SYS_ioprio_get, which[i] == 3 ? 4 : which[i], 0),
            SYS(SYS_ioprio_set, which[i] == 3 ? 4 : which[i], 0, IOPRIO_PRIO_VALUE(2, 4)));
    say("who 0x7fffffff: getpriority %ld setpriority %ld ioprio_get %ld ioprio_set %ld",
        SYS(SYS_getpriority, PRIO_PROCESS, 0x7fffffff), SYS(SYS_setpriority, PRIO_PROCESS, 0x7fffffff, 5),
        SYS(SYS_ioprio_get, 1, 0x7fffffff), SYS(SYS_ioprio_set, 1, 0x7fffffff, IOPRIO_PRIO_VALUE(2, 4)));
    SHOW("setpriority nice 1000 (clamped to 19)", SYS(SYS_setpriority, PRIO_PROCESS, 0, 1000));
    SHOW("getpriority (20 - nice)", SYS(SYS_getpriority, PRIO_PROCESS, 0));
    long prios[] = {IOPRIO_PRIO_VALUE(0, 7), IOPRIO_PRIO_VALUE(2, 8), IOPRIO_PRIO_VALUE(3, 1),
                    IOPRIO_PRIO_VALUE(4, 0), IOPRIO_PRIO_VALUE(7, 0), -1, 1l << 32};
    for (int i = 0; i < 7; i++) say("ioprio_set %#lx = %ld", prios[i], SYS(SYS_ioprio_set, 1, 0, prios[i]));
    SHOW("ioprio_get", SYS(SYS_ioprio_get, 1, 0));
    long options[] = {-1, 0, 1000, PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_READ,
                      PR_SET_THP_DISABLE, 1l << 32 | PR_SET_DUMPABLE};
    for (int i = 0; i < 9; i++)
        say("prctl %ld (99, 5, 5, 5) = %ld", options[i], SYS(SYS_prctl, options[i], 99, 5, 5, 5));
    for (int i = 0; i < N_BAD; i++)
        say("%s: prctl set name %ld get name %ld get pdeathsig %ld get tid address %ld", bad_name[i],
            SYS(SYS_prctl, PR_SET_NAME, bad_ptr(i)), i == 4 ? 0 : SYS(SYS_prctl, PR_GET_NAME, bad_ptr(i)),
            SYS(SYS_prctl, PR_GET_PDEATHSIG, bad_ptr(i)), SYS(SYS_prctl, PR_GET_TID_ADDRESS, bad_ptr(i)));
    SHOW("prctl get dumpable", SYS(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
    SHOW("prctl set dumpable 2", SYS(SYS_prctl, PR_SET_DUMPABLE, 2, 0, 0, 0));
    SHOW("prctl get no_new_privs with args", SYS(SYS_prctl, PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));
    SHOW("personality query", SYS(SYS_personality, 0xffffffff));
    SHOW("personality 0xffffffff00000000 (0)", SYS(SYS_personality, 0xffffffff00000000l));
    SHOW("personality back", SYS(SYS_personality, 0xffffffff));
    long who[] = {-2, 2, 5, -3, 1l << 32};
    struct rusage ru;
    for (int i = 0; i < 5; i++) say("getrusage who %#lx = %ld", who[i], SYS(SYS_getrusage, who[i], &ru));
    for (int i = 0; i < N_BAD; i++)
        say("%s: getrusage thread %ld children %ld sysinfo %ld times %ld", bad_name[i],
            SYS(SYS_getrusage, 1, bad_ptr(i)), SYS(SYS_getrusage, -1, bad_ptr(i)), SYS(SYS_sysinfo, bad_ptr(i)),
            i == 0 ? 0 : SYS(SYS_times, bad_ptr(i)));
    // umon has no rseq, so its query answer lacks the two rseq commands (128, 256).
    long cmds[] = {-1, 3, 1 << 9, 1 << 30, 1l << 32};
    for (int i = 0; i < 5; i++) {
        long r = SYS(SYS_membarrier, cmds[i], 0, 0);
        say("membarrier cmd %#lx = %ld", cmds[i], r > 0 ? r & ~0x180l : r);
    }
    SHOW("membarrier query with flags", SYS(SYS_membarrier, 0, 1, 0));
    long q = SYS(SYS_membarrier, 0, 0, 5);
    SHOW("membarrier query with cpu", q > 0 ? q & ~0x180l : q);
    SHOW("membarrier global with flags", SYS(SYS_membarrier, 1, 2, 0));
    SHOW("membarrier private expedited unregistered", SYS(SYS_membarrier, 8, 0, 0));
    SHOW("membarrier register private expedited", SYS(SYS_membarrier, 16, 0, 0));
    SHOW("membarrier private expedited", SYS(SYS_membarrier, 8, 0, 0));
    SHOW("membarrier private expedited cpu flag bad cpu", SYS(SYS_membarrier, 8, 1, 100000));
    // flock and record locks.
    char f[4096];
    snprintf(f, sizeof f, "%s/locks", dir);
    int fd = open(f, O_RDWR | O_CREAT, 0644), rd = open(f, O_RDONLY), wr = open(f, O_WRONLY);
    int pathfd = open(f, O_PATH);
    long ops[] = {LOCK_SH | LOCK_EX, LOCK_UN | LOCK_EX, 8, 32, 64, 128, LOCK_NB, -1, 1l << 32 | LOCK_SH};
    for (int i = 0; i < 9; i++) say("flock op %#lx = %ld", ops[i], SYS(SYS_flock, fd, ops[i]));
    SHOW("flock O_PATH", SYS(SYS_flock, pathfd, LOCK_SH));
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    SHOW("setlk write lock on a read-only fd", SYS(SYS_fcntl, rd, F_SETLK, &l));
    l.l_type = F_RDLCK;
    SHOW("setlk read lock on a write-only fd", SYS(SYS_fcntl, wr, F_SETLK, &l));
    for (int i = 0; i < N_BAD; i++)
        say("%s: setlk %ld getlk %ld ofd setlk %ld ofd getlk %ld", bad_name[i],
            SYS(SYS_fcntl, fd, F_SETLK, bad_ptr(i)), SYS(SYS_fcntl, fd, F_GETLK, bad_ptr(i)),
            SYS(SYS_fcntl, fd, F_OFD_SETLK, bad_ptr(i)), SYS(SYS_fcntl, fd, F_OFD_GETLK, bad_ptr(i)));
    long starts[][3] = {{SEEK_SET, LONG_MAX, 1}, {SEEK_SET, 0, LONG_MIN}, {SEEK_SET, 5, -6}, {SEEK_SET, 5, -5},
                        {SEEK_CUR, LONG_MAX, 0}, {SEEK_END, -1, 0}, {SEEK_SET, LONG_MAX - 1, 2}, {3, 0, 0}};
    for (int i = 0; i < 8; i++) {
        struct flock m = {.l_type = F_RDLCK, .l_whence = (short)starts[i][0], .l_start = starts[i][1],
                          .l_len = starts[i][2]};
        struct flock g = m;
        g.l_type = F_WRLCK;
        say("lock whence %ld start %#lx len %ld: setlk %ld ofd setlk %ld getlk %ld", starts[i][0], starts[i][1],
            starts[i][2], SYS(SYS_fcntl, fd, F_SETLK, &m), SYS(SYS_fcntl, fd, F_OFD_SETLK, &m),
            SYS(SYS_fcntl, fd, F_GETLK, &g));
    }
    struct flock u = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    SHOW("getlk with F_UNLCK", SYS(SYS_fcntl, fd, F_GETLK, &u));
    SHOW("fcntl cmd 9999", SYS(SYS_fcntl, fd, 9999, 0));
    SHOW("fcntl cmd with high bits", SYS(SYS_fcntl, fd, (1l << 32) | F_GETFD, 0));
    return 0;
}
