/* Process group and session calls, printed as relations (pids differ between runs): run
 * natively as a session leader (under setsid), under umon as the app is. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void res(const char *what, long r) {
    printf("%s: %ld errno %d\n", what, r < 0 ? -1L : r, r < 0 ? errno : 0);
    errno = 0;
}

static pid_t tid;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done;

static void *thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    tid = (pid_t)syscall(SYS_gettid);
    pthread_cond_signal(&cond);
    while (!done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    pid_t pid = getpid();
    printf("getsid(0)==getpid(): %d\n", getsid(0) == pid);
    printf("getpgid(0)==getpid(): %d\n", getpgid(0) == pid);
    printf("getpgrp()==getpid(): %d\n", getpgrp() == pid);
    printf("getsid(pid)==getpid(): %d\n", getsid(pid) == pid);
    res("getsid(no such pid)", getsid(0x3ffffe));
    res("getpgid(-1)", getpgid(-1));
    res("setsid()", setsid());
    res("setpgid(0, 0)", setpgid(0, 0));
    res("setpgid(pid, pid)", setpgid(pid, pid));
    res("setpgid(0, -1)", setpgid(0, -1));
    res("setpgid(no such pid, 0)", setpgid(0x3ffffe, 0));
    res("setpgid(-3, 0)", setpgid(-3, 0));
    res("setpgid(0, no such group)", setpgid(0, 0x3ffffe));

    pthread_t t;
    pthread_mutex_lock(&lock);
    pthread_create(&t, NULL, thread, NULL);
    while (!tid)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    printf("getsid(tid)==getpid(): %d\n", getsid(tid) == pid);
    printf("getpgid(tid)==getpid(): %d\n", getpgid(tid) == pid);
    res("setpgid(tid, 0)", setpgid(tid, 0));
    res("setpgid(tid, -1)", setpgid(tid, -1));
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    printf("after: getsid(0)==getpid(): %d, getpgrp()==getpid(): %d\n", getsid(0) == pid,
           getpgrp() == pid);
    return 0;
}
