/* An LD_PRELOAD shim for the durability tests (test_durable.py): the broker's fdatasync, and its
 * writes to a sync journal (`*.journal`, O_DSYNC: each one waits for the disk as an fdatasync
 * does), made slow or failing on demand, since this machine has no device-mapper to slow or
 * break a disk.
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
#include <string.h>
#include <sys/types.h>
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

/* The fault for one synchronous operation: 0 to go on, -1 with errno set to fail it. */
static int fault(void)
{
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
    return 0;
}

int fdatasync(int fd)
{
    fdatasync_fn real = (fdatasync_fn)dlsym(RTLD_NEXT, "fdatasync");
    if (fault() != 0)
        return -1;
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd);
}

/* Whether `fd` is a sync journal: its path ends in ".journal". */
static int is_journal(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 8)
        return 0;
    path[n] = '\0';
    return strcmp(path + n - 8, ".journal") == 0;
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static ssize_t journal_pwrite(const char *name, int fd, const void *buf, size_t n, off_t off)
{
    pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, name);
    int saved = errno;
    if (is_journal(fd) && fault() != 0)
        return -1;
    errno = saved;
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return journal_pwrite("pwrite", fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return journal_pwrite("pwrite64", fd, buf, n, off);
}
