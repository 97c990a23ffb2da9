/* Who may use a ring, and what happens when someone else tampers with it.
 *
 * - Owner check: every open refuses an object that the effective uid does not own, or whose mode
 *   lets group or other users in. Whoever can open a ring can read every event and inject
 *   events that subscribers receive, and can truncate it; a name in /dev/shm can be taken by any
 *   local user first (after a reboot, say), so the check runs before anything is read, for root
 *   too (root's DAC override would otherwise attach it to anyone's object).
 * - Broker lock: an exclusive flock(2) on the object, taken by the broker for its life. flock
 *   locks belong to the open file description, so the delivery workers forked by the broker
 *   share it: it is released when the last of them exits, not when the broker alone dies. That
 *   is wanted, since until then those workers still deliver from the ring and acknowledge in its
 *   reader slots, and a second broker must neither deliver the same events nor hand those slots
 *   to new readers. The holder writes its pid in the header so a refused broker can name it.
 * - Replacing a ring removes the old object only under its lock, after checking that the name
 *   still names it: two processes replacing one broken ring cannot remove each other's new one.
 * - SIGBUS guard: a ring truncated under a process makes the next access to a lost page fault.
 *   A handler looks the address up in a table of this process's ring mappings and ends the
 *   process with a sentence instead of a crash; other faults keep their old disposition.
 *   rc_ring_check is the same finding without a fault, for a periodic look. */
#include "shm/ring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/proc.h"

#define LOCK_POLL_NS 20000000L /* how often a waiting broker tries the lock again */
#define GUARD_SLOTS  64        /* ring mappings one process can have guarded at once */

/* ---- owner check ---------------------------------------------------------------------------- */

static const char *user_name(uid_t uid, char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res != NULL)
        snprintf(buf, len, "%s", res->pw_name);
    else
        snprintf(buf, len, "no name");
    return buf;
}

int rc__ring_check_owner(const struct stat *st, const char *path, char *err, size_t errlen)
{
    uid_t me = geteuid();
    char owner[64], self[64];
    if (st->st_uid != me) {
        rc__set_err(err, errlen,
                    "ring %s belongs to uid %u (%s), not to uid %u (%s) running this: refused, "
                    "its owner could read and inject events. Run as its owner, or check who "
                    "made it and remove it (rm %s)",
                    path, (unsigned)st->st_uid, user_name(st->st_uid, owner, sizeof(owner)),
                    (unsigned)me, user_name(me, self, sizeof(self)), path);
        return -EPERM;
    }
    if ((st->st_mode & 077) != 0) {
        rc__set_err(err, errlen,
                    "ring %s has mode %04o: other users could read or inject its events, so it "
                    "is refused. Remove it (rm %s) for the broker to recreate it, or chmod 600 "
                    "%s if nobody else used it",
                    path, (unsigned)(st->st_mode & 07777), path, path);
        return -EPERM;
    }
    return 0;
}

/* ---- broker lock ---------------------------------------------------------------------------- */

/* 0 when `path` still names the object `fd` refers to, else -ESTALE. */
static int same_object(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0)
        return -ESTALE;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -ESTALE;
}

/* Who holds the lock on `fd`: the pid the holder wrote in the header (with its start time, so a
 * reused pid is not taken for it), else the one /proc/locks shows. Returns 1 when that process
 * is alive (or unknown: then nobody can say it is gone), 0 when it is gone. */
static int lock_holder(int fd, pid_t *pid)
{
    uint64_t magic = 0;
    uint32_t hpid = 0;
    uint64_t hstart = 0;
    /* pread, not the mapping: the object may be short or not a ring at all. */
    if (pread(fd, &magic, sizeof(magic), offsetof(rc__ring_hdr_t, magic)) == sizeof(magic) &&
        magic == RC__RING_MAGIC &&
        pread(fd, &hpid, sizeof(hpid), offsetof(rc__ring_hdr_t, lock_pid)) == sizeof(hpid) &&
        pread(fd, &hstart, sizeof(hstart), offsetof(rc__ring_hdr_t, lock_start)) ==
            sizeof(hstart) &&
        hpid != 0) {
        *pid = (pid_t)hpid;
        return rc_proc_alive(*pid, hstart);
    }
    *pid = rc_proc_lock_holder(fd);
    if (*pid <= 0)
        return 1;
    return kill(*pid, 0) == 0 || errno == EPERM;
}

static void busy_message(const char *path, pid_t pid, int alive, double waited, char *err,
                         size_t errlen)
{
    if (pid <= 0)
        rc__set_err(err, errlen,
                    "ring %s is locked by another process (pid unknown): another broker is "
                    "using or creating it; one broker per ring (see 'fuser -v %s')",
                    path, path);
    else if (alive)
        rc__set_err(err, errlen,
                    "ring %s is in use by another broker (pid %d): one broker per ring; stop "
                    "that broker first",
                    path, (int)pid);
    else
        rc__set_err(err, errlen,
                    "ring %s is still held, %.1f s after its broker (pid %d) ended, by "
                    "processes that broker started (its delivery workers); find them with "
                    "'fuser -v %s' and stop them",
                    path, waited, (int)pid, path);
}

static void record_holder(rc_ring_t *r)
{
    /* Start time first: a reader that sees our pid with the previous holder's start time only
     * misjudges the holder as gone for a moment and re-reads (see rc_ring_lock's loop). */
    atomic_store_explicit(&r->hdr->lock_start, rc_proc_start_time(getpid()), memory_order_relaxed);
    atomic_store_explicit(&r->hdr->lock_pid, (uint32_t)getpid(), memory_order_relaxed);
    r->locked = 1;
}

int rc_ring_lock(rc_ring_t *ring, uint64_t wait_ns, char *err, size_t errlen)
{
    if (ring->locked)
        return 0;
    uint64_t start = rc_now_ns();
    for (;;) {
        if (flock(ring->fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            int rc = -errno;
            rc__set_err(err, errlen, "ring %s: cannot lock it: %s", ring->path, strerror(errno));
            return rc;
        }
        pid_t pid;
        int alive = lock_holder(ring->fd, &pid);
        uint64_t waited = rc_now_ns() - start;
        if (alive || waited >= wait_ns) {
            busy_message(ring->path, pid, alive, (double)waited / 1e9, err, errlen);
            return alive ? -EBUSY : -EAGAIN;
        }
        struct timespec ts = {0, LOCK_POLL_NS};
        nanosleep(&ts, NULL);
    }
    /* The previous holder may have replaced the object after we opened it (a broker that
     * changed the ring size): then the lock we hold is on a ring nobody else will find. */
    if (same_object(ring->fd, ring->path) != 0) {
        flock(ring->fd, LOCK_UN); /* nobody else shares this descriptor yet */
        rc__set_err(err, errlen, "ring %s was replaced while this process opened it", ring->path);
        return -ESTALE;
    }
    record_holder(ring);
    return 0;
}

int rc__ring_lock_new(int fd, const char *path, char *err, size_t errlen)
{
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        pid_t pid;
        int alive = lock_holder(fd, &pid);
        busy_message(path, pid, alive, 0.0, err, errlen);
        return -EBUSY;
    }
    if (same_object(fd, path) != 0) {
        rc__set_err(err, errlen, "ring %s was replaced while this process created it", path);
        return -ESTALE;
    }
    return 0;
}

int rc__ring_remove_for_replace(const char *nm, const char *path, char *err, size_t errlen)
{
    char shm_path[sizeof(RC__SHM_DIR) + 64];
    if (nm != NULL) {
        snprintf(shm_path, sizeof(shm_path), "%s%s", RC__SHM_DIR, nm);
        path = shm_path;
    }
    int fd = nm != NULL ? shm_open(nm, O_RDWR | O_CLOEXEC, 0) : open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        rc__set_err(err, errlen, "ring %s: cannot open it to replace it: %s", path,
                    strerror(errno));
        return rc;
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc != 0)
        rc__set_err(err, errlen, "ring %s: fstat failed: %s", path, strerror(-rc));
    if (rc == 0)
        rc = rc__ring_check_owner(&st, path, err, errlen);
    if (rc == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        pid_t pid;
        int alive = lock_holder(fd, &pid);
        busy_message(path, pid, alive, 0.0, err, errlen);
        rc = -EBUSY;
    }
    if (rc == 0 && same_object(fd, path) != 0) {
        rc__set_err(err, errlen, "ring %s was replaced by another process meanwhile", path);
        rc = -ESTALE;
    }
    /* Unlinked while locked, so whoever locks this object after us finds its name gone. */
    if (rc == 0 && (nm != NULL ? shm_unlink(nm) : unlink(path)) != 0 && errno != ENOENT) {
        rc = -errno;
        rc__set_err(err, errlen, "ring %s: cannot remove it: %s", path, strerror(errno));
    }
    close(fd);
    return rc;
}

/* ---- truncation ----------------------------------------------------------------------------- */

int rc_ring_check(rc_ring_t *ring, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(ring->fd, &st) != 0) {
        int rc = -errno;
        rc__set_err(err, errlen, "ring %s: fstat failed: %s", ring->path, strerror(errno));
        return rc;
    }
    if ((uint64_t)st.st_size < ring->map_size) {
        rc__set_err(err, errlen,
                    "ring %s was truncated under this process: it has %lld bytes, this "
                    "process maps %zu; its events are lost, restart the broker to recreate it",
                    ring->path, (long long)st.st_size, ring->map_size);
        return RC_ERING_TRUNCATED;
    }
    /* The size is intact, so the header page can be read without a fault. */
    if (atomic_load_explicit(&ring->hdr->magic, memory_order_relaxed) != RC__RING_MAGIC ||
        ring->hdr->key != ring->key) {
        rc__set_err(err, errlen, "ring %s was overwritten under this process", ring->path);
        return RC_ERING_CORRUPT;
    }
    return 0;
}

/* One mapping the SIGBUS handler knows. `base` is stored last (release) and cleared first, so
 * the handler, which acquires it, only reads entries that are whole. */
typedef struct {
    _Atomic uintptr_t base;
    _Atomic int taken;
    size_t size;
    int fd;
    const char *path;
} guard_entry_t;

static guard_entry_t guard_table[GUARD_SLOTS];
static struct sigaction guard_prev;
static _Atomic int guard_installed;

void rc__guard_add(rc_ring_t *r)
{
    for (int i = 0; i < GUARD_SLOTS; i++) {
        int expect = 0;
        if (!atomic_compare_exchange_strong_explicit(&guard_table[i].taken, &expect, 1,
                                                     memory_order_acquire, memory_order_relaxed))
            continue;
        guard_table[i].size = r->map_size;
        guard_table[i].fd = r->fd;
        guard_table[i].path = r->path;
        atomic_store_explicit(&guard_table[i].base, (uintptr_t)r->base, memory_order_release);
        r->guard = i + 1;
        return;
    }
    /* Table full: this mapping faults as any other would. */
}

void rc__guard_remove(rc_ring_t *r)
{
    if (r->guard == 0)
        return;
    guard_entry_t *g = &guard_table[r->guard - 1];
    atomic_store_explicit(&g->base, 0, memory_order_release);
    atomic_store_explicit(&g->taken, 0, memory_order_release);
    r->guard = 0;
}

/* Async-signal-safe line building for the handler (no stdio). */
typedef struct {
    char b[768];
    size_t n;
} line_t;

static void put_s(line_t *l, const char *s)
{
    while (*s != '\0' && l->n < sizeof(l->b) - 1)
        l->b[l->n++] = *s++;
}

static void put_u(line_t *l, unsigned long long v)
{
    char d[24];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0 && l->n < sizeof(l->b) - 1)
        l->b[l->n++] = d[--k];
}

static void report_truncated(const guard_entry_t *g)
{
    struct stat st;
    line_t l = {.n = 0};
    put_s(&l, "ringcast: ring ");
    put_s(&l, g->path);
    put_s(&l, " was truncated under this process (pid ");
    put_u(&l, (unsigned long long)getpid());
    put_s(&l, "): it maps ");
    put_u(&l, g->size);
    put_s(&l, " bytes");
    if (fstat(g->fd, &st) == 0) {
        put_s(&l, ", the object has ");
        put_u(&l, (unsigned long long)st.st_size);
        put_s(&l, " now");
    }
    put_s(&l, ". Its events are lost; stopping (exit 1). Find out who shrank it (its owner "
              "or root) and start the broker again to recreate it.\n");
    ssize_t w = write(STDERR_FILENO, l.b, l.n);
    (void)w;
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (si->si_code > 0) { /* a fault, not a kill(2) */
        uintptr_t a = (uintptr_t)si->si_addr;
        for (int i = 0; i < GUARD_SLOTS; i++) {
            /* Acquire: pairs with the release store in rc__guard_add. */
            uintptr_t base = atomic_load_explicit(&guard_table[i].base, memory_order_acquire);
            if (base != 0 && a >= base && a - base < guard_table[i].size) {
                report_truncated(&guard_table[i]);
                _exit(1);
            }
        }
    }
    /* Not a ring's page: the previous disposition takes the fault when the instruction runs
     * again, or the signal once it is raised again (it stays blocked until we return). */
    sigaction(SIGBUS, &guard_prev, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

int rc_ring_guard_sigbus(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong_explicit(&guard_installed, &expect, 1, memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &guard_prev) != 0) {
        int rc = -errno;
        atomic_store_explicit(&guard_installed, 0, memory_order_release);
        return rc;
    }
    return 0;
}

/* ---- inspecting and removing (ringcast rings) ---------------------------------------------- */

void rc_ring_inspect(rc_ring_t *ring, rc_ring_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->durable = (ring->hdr->flags & RC_RING_F_DURABLE) != 0;
    pid_t pid = 0;
    /* The header names the holder with its start time (a reused pid is not taken for it); a
     * holder that is gone may have left the lock to its workers, which /proc/locks shows. */
    uint32_t hpid = atomic_load_explicit(&ring->hdr->lock_pid, memory_order_relaxed);
    uint64_t hstart = atomic_load_explicit(&ring->hdr->lock_start, memory_order_relaxed);
    if (hpid != 0 && rc_proc_alive((pid_t)hpid, hstart) && rc_proc_lock_holder(ring->fd) != 0)
        pid = (pid_t)hpid;
    else if ((pid = rc_proc_lock_holder(ring->fd)) > 0 && kill(pid, 0) != 0 && errno != EPERM)
        pid = 0;
    info->owner = pid > 0 ? pid : 0;

    uint64_t head, head_seq;
    rc__head_load(ring, &head, &head_seq);
    if (head_seq == 0)
        return;
    info->events = 1;
    info->newest_seq = head_seq - 1;
    /* Everything from head - capacity on is still held; the checkpoints give a record start
     * there whose stamp proves it is of this lap. A padding record carries the next seq. */
    uint64_t lo = head > ring->capacity ? head - ring->capacity : 0;
    uint64_t p = rc__oldest_hint(ring, lo, head);
    if (p >= head) {
        info->oldest_seq = info->newest_seq;
        return;
    }
    uint64_t seq = atomic_load_explicit(&rc__rec(ring, p)->seq, memory_order_relaxed);
    /* A record overwritten meanwhile has another stamp: then the hint is stale, say newest. */
    if (rc__load_racy(&rc__rec(ring, p)->stamp) != (p ^ ring->key) || seq > info->newest_seq)
        seq = info->newest_seq;
    info->oldest_seq = seq;
}

int rc_ring_remove(const char *name, char *err, size_t errlen)
{
    const char *n = name != NULL && name[0] == '/' ? name + 1 : name;
    if (n == NULL || n[0] == '\0' || strlen(n) > 62 || strchr(n, '/') != NULL ||
        strcmp(n, ".") == 0 || strcmp(n, "..") == 0) {
        rc__set_err(err, errlen, "ring name '%s' is not a valid shm name (1-62 chars, no '/')",
                    name ? name : "(null)");
        return -EINVAL;
    }
    char nm[64];
    snprintf(nm, sizeof(nm), "/%s", n);
    int fd = shm_open(nm, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        rc__set_err(err, errlen, "ring %s%s: %s", RC__SHM_DIR, nm, strerror(errno));
        return rc;
    }
    close(fd);
    return rc__ring_remove_for_replace(nm, NULL, err, errlen);
}
