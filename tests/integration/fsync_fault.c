/* An LD_PRELOAD shim for the durability tests (test_durable.py): the broker's fdatasync, made
 * slow or failing on demand, since this machine has no device-mapper to slow or break a disk.
 *
 *   RC_FSYNC_DELAY_FILE  a file holding a number of milliseconds: while it exists, each
 *                        fdatasync sleeps that long first (a slow disk)
 *   RC_FSYNC_FAIL_FILE   while this file exists, fdatasync fails with EIO (a disk error)
 *   RC_FSYNC_FORKED_ONLY set (any value): both apply only in processes forked from the one that
 *                        loaded the shim (the broker's delivery workers), not in the broker
 *
 * Files, not plain variables, so a test switches the fault on and off while the broker runs.
 * Built without the project's sanitizer flags: it is loaded before everything else. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int (*fdatasync_fn)(int);

static pid_t loader; /* the process that loaded the shim (serve) */

__attribute__((constructor)) static void remember_loader(void)
{
    loader = getpid();
}

/* Whether the faults apply in this process (RC_FSYNC_FORKED_ONLY: in forked children only). */
static int faulty(void)
{
    return getenv("RC_FSYNC_FORKED_ONLY") == NULL || getpid() != loader;
}

static long delay_ms(void)
{
    const char *path = getenv("RC_FSYNC_DELAY_FILE");
    if (path == NULL)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long ms = 0;
    if (fscanf(f, "%ld", &ms) != 1)
        ms = 0;
    fclose(f);
    return ms > 0 && ms < 60000 ? ms : 0;
}

int fdatasync(int fd)
{
    fdatasync_fn real = (fdatasync_fn)dlsym(RTLD_NEXT, "fdatasync");
    int on = faulty();
    long ms = on ? delay_ms() : 0;
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    const char *fail = getenv("RC_FSYNC_FAIL_FILE");
    if (on && fail != NULL && access(fail, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd);
}
