/* The ring file back end (docs/durability.md): a broker's ring in a file of its storage
 * directory, `<directory>/<ns>.<broker>.ring`, mapped whole with the layout, claims and readers
 * of the shm ring (shm/ring.h), and its saved cursors beside it in `<ns>.<broker>.cursors`.
 * Events and cursors thus outlive the broker and /dev/shm (a reboot empties it) alike; with
 * durability none the kernel writes them back from the page cache when it likes, so a crash of
 * the process loses nothing and a crash of the machine what was not written back yet.
 *
 * What this file adds to the shm back end, whose operations it shares (rc__ring_*):
 * - each record carries a CRC32C of its sequence number and bytes in an 8-byte trailer,
 *   computed at commit (RC_STORAGE_REC_F_CRC, storage.h), checked at start and by readers
 *   that ask (RC_STORAGE_READER_F_VERIFY), which then see the record without its trailer;
 * - recovery at start (shm/ring_recover.h): every record from the oldest held to the head is
 *   checked, what is damaged is padded over and reported, a torn tail is cut;
 * - a file store is never replaced: a file of another size, another format or a damaged header
 *   is refused with what to do, since replacing it would throw its events away; only a file
 *   that its creator never finished is made again, and a file cut short is extended (the lost
 *   bytes read as zeros and recovery reports what they held). */
#include "net/storage/storage_internal.h"
#include "net/storage/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crc32c.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "shm/reader.h"
#include "shm/ring.h"
#include "shm/ring_recover.h"

/* As storage_shm.c: how long to wait for the workers of a broker that died to let the ring
 * go, and attempts when another process creates the file while we open it. */
#define LOCK_WAIT_NS  (10ull * 1000000000ull)
#define OPEN_ATTEMPTS 3
#define PATH_BYTES    1280 /* a directory of up to 1023 bytes, '/', "<ns>.<name>.timeindex" */
/* The sync journal (net/storage/journal.h): a quarter of the ring, within these bounds; a
 * checkpoint (fdatasync of the ring file) once a quarter of it is used, or every second, or
 * for the cursors at most every CURSOR_CKPT_NS. */
#define JOURNAL_MIN    (1ull << 20)
#define JOURNAL_MAX    (32ull << 20)
#define CKPT_EVERY_NS  1000000000ull
#define CURSOR_CKPT_NS 100000000ull

/* The flusher of a batch or sync store (the process that opened it; a worker's attached handle
 * has none). Commits are counted in `committed` under `mu`, so a flush knows exactly which
 * commits it covers: those counted before it started (the ring's head could include a claim
 * not yet committed, whose bytes may land after the fdatasync began). */
typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* sync: a commit waits to be flushed; stop */
    pthread_cond_t done; /* sync: a flush finished */
    int fd;              /* the ring file, for fdatasync */
    _Atomic int cursors_fd; /* the cursor table, once opened (-1 before): flushed when readers
                             * moved (durability.md, "Cursors") */
    pid_t pid;           /* the process that runs the thread */
    int err;             /* the first fdatasync failure, sticky (-errno) */
    uint32_t interval_ms;
    int stop, running;
    uint64_t committed, durable;   /* commits counted, and covered by a finished flush */
    rc_storage_durable_t *waiters; /* deferred answers (rc_storage_durable_wait) */
    rc_ring_reader_info_t *slots;  /* the flusher thread's buffer for readers_moved */
    uint32_t nslots;
    uint64_t readers_sig;          /* readers' positions at the last cursor flush */
    uint64_t start_head;           /* the head when the store opened (nothing to flush) */
    _Atomic uint64_t fsyncs, fsync_ns, durable_seq;
    /* Sync with a journal: the writer thread, its wake-up, the ranges committed since its last
     * frame (pend, swapped with spare when it takes them), and whether one could not be kept
     * (then the next flush is an fdatasync of the ring file). */
    rc_journal_t *journal;
    pthread_t jthread; /* runs whenever `journal` is set */
    pthread_cond_t jwork;
    struct jrange {
        uint64_t pos;
        uint32_t len;
    } *pend, *spare;
    uint32_t npend, cappend, capspare;
    int pend_lost;
    uint64_t last_ckpt_ns;
} flusher_t;

/* Counters that the forked workers add to and the broker's /metrics reads: in a shared
 * anonymous page made at open (the workers inherit it; an attached handle points at its
 * opener's). */
typedef struct {
    _Atomic uint64_t corrupt;          /* corrupt records: recovery, verifying readers (feeds) */
    _Atomic uint64_t fsyncs, fsync_ns; /* the workers' fdatasyncs (rc_storage_sync) */
} file_shared_t;

typedef struct {
    rc__ring_store_t r; /* first: the shared ring operations take it */
    file_shared_t *shared;
    pid_t shared_owner; /* the process that made the page and unmaps it (0: not this handle) */
    /* An attached handle of a sync store (a worker's, no flusher): its commits since its last
     * rc_storage_sync, the descriptor for it (+1: 0 is none yet) and its sticky failure. */
    uint64_t unsynced;
    int sync_fd1, sync_err;
    rc_storage_durability_t durability;
    flusher_t *flusher;
    char ns[64], broker[64];
    char path[PATH_BYTES];      /* the ring file */
    char cursors[PATH_BYTES];   /* its cursor table */
    char timeindex[PATH_BYTES]; /* its time index (net/storage/timeindex.h) */
    char journal[PATH_BYTES];   /* its sync journal (net/storage/journal.h) */
    rc_journal_t *jr;           /* the journal between open and flusher_start */
} file_store_t;

typedef struct {
    rc__ring_reader_t r; /* first: the shared reader operations take it */
    file_store_t *store;
    int verify;
} file_reader_t;

/* A claim: the ring's, and the records to checksum at commit. */
typedef struct {
    rc_ring_claim_t ring; /* first: rc__ring_commit finds it there */
    rc_storage_rec_t *recs;
} file_claim_t;
_Static_assert(sizeof(file_claim_t) <= sizeof(((rc_storage_claim_t *)0)->priv_), "claim fits");

static const rc__storage_ops_t file_ops;

static rc_ring_t *ring_of(rc_storage_t *s)
{
    return ((rc__ring_store_t *)s)->ring;
}

/* ---- the checksum ------------------------------------------------------------------------- */

static uint32_t record_crc(uint64_t seq, const void *data, uint32_t len)
{
    return rc_crc32c(rc_crc32c(0, &seq, sizeof(seq)), data, len);
}

int rc_storage_record_check(const void *data, uint32_t len, uint16_t flags, uint64_t seq,
                            uint32_t *rec_len)
{
    if ((flags & RC_STORAGE_REC_F_CRC) == 0) {
        if (rec_len != NULL)
            *rec_len = len;
        return 1;
    }
    if (len < RC_STORAGE_CRC_TRAILER)
        return RC_EBAD_RECORD;
    uint32_t n = len - RC_STORAGE_CRC_TRAILER, crc, stored;
    memcpy(&crc, (const unsigned char *)data + n, sizeof(crc));
    memcpy(&stored, (const unsigned char *)data + n + sizeof(crc), sizeof(stored));
    if (stored != n || crc != record_crc(seq, data, n))
        return RC_EBAD_RECORD;
    if (rec_len != NULL)
        *rec_len = n;
    return 0;
}

/* ---- opening: the directory, the file, the lock, recovery -------------------------------- */

static int check_directory(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            snprintf(err, errlen,
                     "storage directory %s does not exist: create it (mkdir -p %s) for the user "
                     "that runs ringcast (uid %u)",
                     dir, dir, (unsigned)geteuid());
        else
            snprintf(err, errlen, "storage directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "storage directory %s is not a directory", dir);
        return -ENOTDIR;
    }
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        snprintf(err, errlen,
                 "storage directory %s is not writable by uid %u (owner uid %u, mode %04o): the "
                 "broker keeps its ring and cursor files there",
                 dir, (unsigned)geteuid(), (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return -e;
    }
    return 0;
}

static int set_paths(file_store_t *fs, const rc_storage_config_t *cfg, char *err, size_t errlen)
{
    const char *dir = cfg->directory;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--; /* "/var/lib/rc/" names the same directory; no "//" in messages */
    snprintf(fs->ns, sizeof(fs->ns), "%s", cfg->ns);
    snprintf(fs->broker, sizeof(fs->broker), "%s", cfg->broker);
    int a =
        snprintf(fs->path, sizeof(fs->path), "%.*s/%s.%s.ring", (int)n, dir, cfg->ns, cfg->broker);
    int b = snprintf(fs->cursors, sizeof(fs->cursors), "%.*s/%s.%s.cursors", (int)n, dir, cfg->ns,
                     cfg->broker);
    int c = snprintf(fs->timeindex, sizeof(fs->timeindex), "%.*s/%s.%s.timeindex", (int)n, dir,
                     cfg->ns, cfg->broker);
    int d = snprintf(fs->journal, sizeof(fs->journal), "%.*s/%s.%s.journal", (int)n, dir, cfg->ns,
                     cfg->broker);
    if (a < 0 || b < 0 || c < 0 || d < 0 || (size_t)a >= sizeof(fs->path) ||
        (size_t)b >= sizeof(fs->cursors) || (size_t)c >= sizeof(fs->timeindex) ||
        (size_t)d >= sizeof(fs->journal)) {
        snprintf(err, errlen, "storage directory %s is too long", dir);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Creates the ring file, locked. `replace`: a file its creator never finished is in the way. */
static int create_locked(file_store_t *fs, const rc_storage_config_t *cfg, int replace, char *err,
                         size_t errlen)
{
    rc_ring_config_t rcfg;
    rc_ring_config_init(&rcfg);
    rcfg.capacity = cfg->capacity;
    if (cfg->readers > rcfg.reader_slots)
        rcfg.reader_slots = cfg->readers;
    rcfg.flags = RC_RING_F_LOCK | (replace ? RC_RING_F_REPLACE : 0);
    int rc = rc_ring_create_file(fs->path, &rcfg, &fs->r.ring, err, errlen);
    if (rc == 0)
        rc_log_info("storage", "broker %s/%s: created ring file %s (%llu bytes of events)", fs->ns,
                    fs->broker, fs->path, (unsigned long long)cfg->capacity);
    return rc;
}

static int extend(file_store_t *fs, char *err, size_t errlen)
{
    uint64_t was = 0, now = 0;
    int rc = rc_ring_extend_file(fs->path, &was, &now, err, errlen);
    if (rc == 0 && was < now)
        rc_log_warn("storage",
                    "broker %s/%s: ring file %s has %llu bytes, its header says %llu (a copy cut "
                    "short, or a file system that lost its end): extended with zeros; recovery "
                    "reports what the lost bytes held",
                    fs->ns, fs->broker, fs->path, (unsigned long long)was, (unsigned long long)now);
    return rc;
}

static int lock(file_store_t *fs, rc_ring_t *ring, char *err, size_t errlen)
{
    int rc = rc_ring_lock(ring, 0, err, errlen);
    if (rc == -EAGAIN) {
        rc_log_warn("storage", "broker %s/%s: %s; waiting up to %llu s for them to exit", fs->ns,
                    fs->broker, err, LOCK_WAIT_NS / 1000000000ull);
        rc = rc_ring_lock(ring, LOCK_WAIT_NS, err, errlen);
    }
    return rc;
}

/* One attempt: attach to the file (locked) when it is there and fits the config, create it
 * when there is none. Returns 1 after creating it (nothing to recover). */
static int open_once(file_store_t *fs, const rc_storage_config_t *cfg, char *err, size_t errlen)
{
    rc_ring_t *ring = NULL;
    int rc = rc_ring_open_file(fs->path, &ring, err, errlen);
    if (rc == RC_ERING_TRUNCATED && (rc = extend(fs, err, errlen)) == 0)
        rc = rc_ring_open_file(fs->path, &ring, err, errlen);
    if (rc == -ENOENT || rc == RC_ERING_NOT_READY) {
        if (rc == RC_ERING_NOT_READY)
            rc_log_warn("storage", "broker %s/%s: %s: making it again", fs->ns, fs->broker, err);
        rc = create_locked(fs, cfg, rc == RC_ERING_NOT_READY, err, errlen);
        return rc == 0 ? 1 : rc;
    }
    if (rc == RC_ERING_BAD_MAGIC || rc == RC_ERING_BAD_VERSION || rc == RC_ERING_CORRUPT) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 "; a file store is never replaced by the broker (its events would be lost): "
                 "move the file aside to start an empty one");
    }
    if (rc == 0)
        rc = lock(fs, ring, err, errlen);
    if (rc == 0 && rc_ring_capacity(ring) != cfg->capacity) {
        snprintf(err, errlen,
                 "ring file %s holds %llu bytes of events and spec.ring.size is %llu: a file "
                 "store is not resized (its events would be lost); set spec.ring.size back to "
                 "%llu, or move the file aside to start an empty one",
                 fs->path, (unsigned long long)rc_ring_capacity(ring),
                 (unsigned long long)cfg->capacity, (unsigned long long)rc_ring_capacity(ring));
        rc = -EINVAL;
    }
    if (rc != 0) {
        rc_ring_close(ring);
        return rc;
    }
    fs->r.ring = ring;
    return 0;
}

static int recover_verify(void *arg, const rc_ring_view_t *v)
{
    (void)arg;
    int rc = rc_storage_record_check(v->data, v->len, v->flags, v->seq, NULL);
    return rc < 0 ? -1 : rc;
}

static void recover_report(void *arg, uint64_t pos, uint64_t len, const char *why)
{
    file_store_t *fs = arg;
    rc_log_warn("storage",
                "broker %s/%s: ring file %s: corrupt record at position %llu (%llu bytes): %s; "
                "padded over, readers skip it",
                fs->ns, fs->broker, fs->path, (unsigned long long)pos, (unsigned long long)len,
                why);
}

/* ---- the sync journal at start ------------------------------------------------------------ */

typedef struct {
    file_store_t *fs;
    uint64_t end;             /* pass 0: the furthest position a range reaches */
    uint64_t ranges, bytes;   /* pass 1: put back */
    uint64_t stale, refused;  /* pass 1: older than the ring's window, or refused */
} replay_t;

/* Pass 0 finds the furthest position a range reaches; pass 1 puts the ranges back, but not one
 * older than the ring's window (that position less the capacity): later records, which the
 * journal or the file hold, overwrote it. */
static void replay_range(void *arg, int pass, uint64_t pos, const void *bytes, uint32_t len)
{
    replay_t *r = arg;
    uint64_t cap = rc_ring_capacity(r->fs->r.ring);
    if (pass == 0) {
        if (pos + len > r->end)
            r->end = pos + len;
    } else if (r->end > cap && pos < r->end - cap) {
        r->stale++;
    } else if (rc_ring_restore(r->fs->r.ring, pos, bytes, len) != 0) {
        r->refused++;
    } else {
        r->ranges++;
        r->bytes += len;
    }
}

static uint64_t journal_size(uint64_t capacity)
{
    uint64_t n = capacity / 4;
    return n < JOURNAL_MIN ? JOURNAL_MIN : n > JOURNAL_MAX ? JOURNAL_MAX : n;
}

/* Opens the journal of a sync store, or of a store that has one left from a sync run, and puts
 * back into the ring what it holds (`existing`: the ring file was there; a new one has nothing
 * to take). Before recovery, which then checks every record as usual. The journal stays open
 * (fs->jr) for flusher_start, or is removed once the ring file is flushed (journal_settle). */
static int journal_open(file_store_t *fs, const rc_storage_config_t *cfg, int existing, char *err,
                        size_t errlen)
{
    if (fs->durability != RC_STORAGE_DURABILITY_SYNC && access(fs->journal, F_OK) != 0)
        return 0;
    int direct = 0;
    int rc = rc_journal_open(fs->journal, rc_ring_id(fs->r.ring), journal_size(cfg->capacity),
                             &fs->jr, &direct, err, errlen);
    if (rc != 0)
        return rc;
    if (!direct)
        rc_log_info("storage",
                    "broker %s/%s: journal %s: the file system takes no O_DIRECT (tmpfs?): "
                    "buffered O_DSYNC writes",
                    fs->ns, fs->broker, fs->journal);
    if (!existing)
        return 0;
    uint64_t t0 = rc_now_ns();
    rc_ring_stats_t rs;
    rc_ring_stats(fs->r.ring, &rs);
    replay_t r = {.fs = fs, .end = rs.head};
    long frames = rc_journal_replay(fs->jr, 2, replay_range, &r);
    if (frames < 0) {
        snprintf(err, errlen, "journal %s: cannot read it: %s", fs->journal,
                 strerror((int)-frames));
        return (int)frames;
    }
    rc_ring_stats(fs->r.ring, &rs);
    if (frames > 0)
        rc_log(r.refused ? RC_LOG_WARN : RC_LOG_INFO, "storage",
           "broker %s/%s: journal %s: %ld frames, %llu ranges (%llu bytes) put back into the ring "
           "in %.1f ms, %llu older than the ring's window skipped, %llu refused; head now %llu",
           fs->ns, fs->broker, fs->journal, frames, (unsigned long long)r.ranges,
           (unsigned long long)r.bytes, (double)(rc_now_ns() - t0) / 1e6,
           (unsigned long long)r.stale, (unsigned long long)r.refused,
           (unsigned long long)rs.head);
    return 0;
}

/* A store that is not sync (any more) and had a journal: once the ring file is on disk with
 * what the journal gave back, the journal goes. */
static void journal_settle(file_store_t *fs)
{
    if (fs->jr == NULL || fs->durability == RC_STORAGE_DURABILITY_SYNC)
        return;
    int fd = open(fs->path, O_RDWR | O_CLOEXEC);
    if (fd >= 0 && fdatasync(fd) == 0 && unlink(fs->journal) == 0)
        rc_log_info("storage", "broker %s/%s: durability is not sync: journal %s removed",
                    fs->ns, fs->broker, fs->journal);
    else
        rc_log_warn("storage", "broker %s/%s: journal %s kept: %s", fs->ns, fs->broker,
                    fs->journal, strerror(errno));
    if (fd >= 0)
        close(fd);
    rc_journal_close(fs->jr);
    fs->jr = NULL;
}

static int recover(file_store_t *fs, char *err, size_t errlen)
{
    uint64_t t0 = rc_now_ns();
    rc_ring_recovery_t rec;
    int rc = rc_ring_recover(fs->r.ring, recover_verify, recover_report, fs, &rec);
    if (rc != 0) {
        snprintf(err, errlen, "ring file %s: recovery failed: %s", fs->path, rc_strerror(rc));
        return rc;
    }
    double ms = (double)(rc_now_ns() - t0) / 1e6;
    atomic_store_explicit(&fs->shared->corrupt, rec.corrupt, memory_order_relaxed);
    int damaged = rec.corrupt != 0 || rec.head != rec.head_before;
    char kept[96] = "";
    if (rec.events > 0)
        snprintf(kept, sizeof(kept), " (oldest seq %llu, newest seq %llu)",
                 (unsigned long long)rec.oldest_seq, (unsigned long long)rec.newest_seq);
    rc_log(damaged ? RC_LOG_WARN : RC_LOG_INFO, "storage",
           "broker %s/%s: recovered %llu events%s from %s in %.1f ms; stopped at %s", fs->ns,
           fs->broker, (unsigned long long)rec.events, kept, fs->path, ms, rec.stop);
    if (damaged || rec.swept != 0 || rec.unchecked != 0)
        rc_log_warn("storage",
                    "broker %s/%s: recovery of %s: %llu corrupt records or stretches padded over "
                    "(readers skip them), %llu claims of producers that died padded over, %llu "
                    "records without a checksum, %llu reader slots and %llu consumer groups moved back "
                    "to the head",
                    fs->ns, fs->broker, fs->path, (unsigned long long)rec.corrupt,
                    (unsigned long long)rec.swept, (unsigned long long)rec.unchecked,
                    (unsigned long long)rec.clamped, (unsigned long long)rec.groups_clamped);
    return 0;
}

/* ---- the flusher: durability batch and sync ------------------------------------------------ */

/* Records a failure of the flusher (-errno): from then on commits are refused. Returns whether
 * it is the first, which the caller logs. */
static int fail(flusher_t *f, int rc)
{
    pthread_mutex_lock(&f->mu);
    int first = f->err == 0;
    f->err = rc;
    pthread_mutex_unlock(&f->mu);
    return first;
}

/* fdatasync on the file, not msync of the mapping: on Linux a MAP_SHARED mapping's pages are the
 * file's page cache pages, so fdatasync writes back the dirty ones however they were dirtied
 * (docs/durability.md, "Why fdatasync"). Its first failure sticks: after an error the kernel may
 * have marked the pages clean without writing them, and a later success would lie. */
static void flush_once(file_store_t *fs, flusher_t *f)
{
    rc_ring_stats_t rs;
    rc_ring_stats(fs->r.ring, &rs);
    uint64_t t0 = rc_now_ns();
    int rc = fdatasync(f->fd) == 0 ? 0 : -errno;
    uint64_t dt = rc_now_ns() - t0;
    atomic_fetch_add_explicit(&f->fsyncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->fsync_ns, dt, memory_order_relaxed);
    if (rc == 0) {
        atomic_store_explicit(&f->durable_seq, rs.head_seq, memory_order_relaxed);
        return;
    }
    if (fail(f, rc))
        rc_log_error("storage",
                     "broker %s/%s: fdatasync of ring file %s failed: %s; events from now on are "
                     "refused in durability sync and not known on disk in batch",
                     fs->ns, fs->broker, fs->path, strerror(-rc));
}

/* Waits (mu held) until there is something to flush or stop is asked: sync wakes on a commit,
 * batch every interval. Returns 0 to stop. */
static int flusher_next(file_store_t *fs, flusher_t *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)f->interval_ms * 1000000ull;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    if (fs->durability == RC_STORAGE_DURABILITY_SYNC && f->journal == NULL) {
        /* A commit, or the interval's tick (the cursors' flush). */
        while (!f->stop && f->committed == f->durable &&
               pthread_cond_timedwait(&f->work, &f->mu, &ts) != ETIMEDOUT)
            ;
        return !f->stop;
    }
    while (!f->stop && pthread_cond_timedwait(&f->work, &f->mu, &ts) != ETIMEDOUT)
        ;
    return !f->stop;
}

/* Calls done for the deferred waits the last flush covered (mu held; released around the
 * calls, which take the waiter's own locks). */
static void complete_waiters(flusher_t *f)
{
    rc_storage_durable_t *ready = NULL, **p = &f->waiters;
    while (*p != NULL) {
        rc_storage_durable_t *w = *p;
        if (w->ticket <= f->durable || f->err != 0) {
            *p = w->next;
            w->next = ready;
            ready = w;
        } else {
            p = &w->next;
        }
    }
    if (ready == NULL)
        return;
    int err = f->err;
    pthread_mutex_unlock(&f->mu);
    while (ready != NULL) {
        rc_storage_durable_t *w = ready;
        ready = w->next;
        w->done(w, err);
    }
    pthread_mutex_lock(&f->mu);
}

/* A digest of every attached reader's position: it changes when a feed acknowledges, which is
 * when the workers save their triggers' cursors too. Reader positions live in the ring file
 * (flushed with it); the cursor table is a file of its own. */
static uint64_t readers_sig(file_store_t *fs, flusher_t *f)
{
    int n = rc_ring_readers(fs->r.ring, f->slots, f->nslots);
    if (n < 0 || (uint32_t)n > f->nslots) {
        uint32_t want = (uint32_t)(n < 0 ? 0 : n) + 64;
        rc_ring_reader_info_t *b = realloc(f->slots, want * sizeof(*b));
        if (b == NULL)
            return f->readers_sig + 1; /* unknown: flush */
        f->slots = b;
        f->nslots = want;
        n = rc_ring_readers(fs->r.ring, f->slots, f->nslots);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n && (uint32_t)i < f->nslots; i++)
        h = (h ^ (f->slots[i].position + f->slots[i].slot)) * 0x100000001b3ull;
    return h;
}

/* The cursor table follows the readers: when a reader moved since the last time, it is flushed
 * (the ring file too: the feeds' positions are in it), so a restart after a crash of the
 * machine resumes each trigger at most one interval behind where it acknowledged. */
static void flush_cursors(file_store_t *fs, flusher_t *f, int ring_flushed)
{
    int fd = atomic_load_explicit(&f->cursors_fd, memory_order_acquire);
    uint64_t sig = readers_sig(fs, f);
    if (fd < 0 || sig == f->readers_sig)
        return;
    if (!ring_flushed)
        flush_once(fs, f);
    if (fdatasync(fd) != 0)
        rc_log_warn("storage", "broker %s/%s: fdatasync of cursor table %s: %s", fs->ns,
                    fs->broker, fs->cursors, strerror(errno));
    f->readers_sig = sig;
}

/* ---- the sync journal: one direct synchronous write per flush -------------------------------- */

/* An fdatasync of the ring file, after which every journal frame written before it started is
 * redundant (its records are in the file). Any thread. */
static void checkpoint(file_store_t *fs, flusher_t *f)
{
    uint64_t mark = rc_journal_mark(f->journal);
    flush_once(fs, f);
    pthread_mutex_lock(&f->mu);
    int ok = f->err == 0;
    pthread_mutex_unlock(&f->mu);
    if (ok)
        rc_journal_checkpointed(f->journal, mark);
}

/* The flusher thread's tick in journal mode: a checkpoint when a quarter of the journal is
 * used, or a second passed with frames written, or the readers moved (the cursors follow,
 * at most every CURSOR_CKPT_NS). */
static void checkpoint_tick(file_store_t *fs, flusher_t *f)
{
    uint64_t now = rc_now_ns(), used = rc_journal_used(f->journal);
    uint64_t since = now - f->last_ckpt_ns;
    int moved = atomic_load_explicit(&f->cursors_fd, memory_order_acquire) >= 0 &&
                since >= CURSOR_CKPT_NS && readers_sig(fs, f) != f->readers_sig;
    if (used > rc_journal_capacity(f->journal) / 4 || (used > 0 && since >= CKPT_EVERY_NS) ||
        moved) {
        checkpoint(fs, f);
        f->last_ckpt_ns = now;
        flush_cursors(fs, f, 1);
    }
}

/* Writes one frame with the records of `n` commits' ranges, copied from the mapping (they are
 * committed: their bytes no longer change). When the frame cannot be written (too big for the
 * journal, out of memory), an fdatasync of the ring file covers them instead. */
static int journal_flush(file_store_t *fs, flusher_t *f, const struct jrange *r, uint32_t n,
                         int lost)
{
    rc_journal_t *j = f->journal;
    int rc = lost ? -ENOMEM : 0;
    if (rc == 0) {
        rc_journal_frame_begin(j);
        for (uint32_t i = 0; i < n && rc == 0; i++)
            rc = rc_journal_frame_add(j, r[i].pos, rc_ring_area_at(fs->r.ring, r[i].pos),
                                      r[i].len);
    }
    if (rc == 0) {
        uint64_t t0 = rc_now_ns();
        rc = rc_journal_frame_write(j);
        if (rc == -ENOSPC) { /* the checkpointer fell behind: take its turn */
            checkpoint(fs, f);
            rc = rc_journal_frame_write(j);
        }
        atomic_fetch_add_explicit(&f->fsyncs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->fsync_ns, rc_now_ns() - t0, memory_order_relaxed);
    }
    if (rc == -EFBIG || rc == -ENOMEM || rc == -ENOSPC) {
        checkpoint(fs, f);
        return 0; /* flush_once keeps its own failure */
    }
    if (rc != 0 && fail(f, rc))
        rc_log_error("storage",
                     "broker %s/%s: write of journal %s failed: %s; events from now on are "
                     "refused in durability sync",
                     fs->ns, fs->broker, fs->journal, strerror(-rc));
    return rc;
}

/* Takes the ranges of every commit counted since its last frame and writes them as one frame:
 * commits counted while it writes wait for the next (group commit, as flusher_main without a
 * journal). */
static void *journal_main(void *arg)
{
    file_store_t *fs = arg;
    flusher_t *f = fs->flusher;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stop && f->committed == f->durable)
            pthread_cond_wait(&f->jwork, &f->mu);
        if (f->stop)
            break;
        uint64_t target = f->committed;
        struct jrange *r = f->pend;
        uint32_t n = f->npend, cap = f->cappend;
        int lost = f->pend_lost;
        f->pend = f->spare;
        f->cappend = f->capspare;
        f->spare = r;
        f->capspare = cap;
        f->npend = 0;
        f->pend_lost = 0;
        pthread_mutex_unlock(&f->mu);
        rc_ring_stats_t rs;
        rc_ring_stats(fs->r.ring, &rs);
        if (journal_flush(fs, f, r, n, lost) == 0)
            atomic_store_explicit(&f->durable_seq, rs.head_seq, memory_order_relaxed);
        pthread_mutex_lock(&f->mu);
        f->durable = target;
        pthread_cond_broadcast(&f->done);
        complete_waiters(f);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* A commit's ranges for the journal (mu held): the padding it placed at the end of the area,
 * then its records. Out of memory: the next flush is an fdatasync of the ring file. */
static void pend_add(flusher_t *f, uint64_t pos, uint32_t len)
{
    if (f->npend == f->cappend) {
        uint32_t nc = f->cappend ? 2 * f->cappend : 64;
        struct jrange *b = realloc(f->pend, nc * sizeof(*b));
        if (b == NULL) {
            f->pend_lost = 1;
            return;
        }
        f->pend = b;
        f->cappend = nc;
    }
    f->pend[f->npend++] = (struct jrange){pos, len};
}

/* One flush covers every commit counted before it starts; commits counted while it runs wait
 * for the next (group commit). Batch has no counting on the commit path: it flushes when the
 * ring's head moved since the last flush. Both flush the cursors when readers moved. */
static void *flusher_main(void *arg)
{
    file_store_t *fs = arg;
    flusher_t *f = fs->flusher;
    rc_ring_stats_t rs;
    /* What was on disk when the store opened (flusher_start, before any commit): read here, a
     * thread that starts late would take commits it never flushed for durable. */
    uint64_t flushed_head = f->start_head;
    pthread_mutex_lock(&f->mu);
    while (flusher_next(fs, f)) {
        if (f->journal != NULL) {
            pthread_mutex_unlock(&f->mu);
            checkpoint_tick(fs, f);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        uint64_t target = f->committed;
        int commits = target != f->durable;
        pthread_mutex_unlock(&f->mu);
        rc_ring_stats(fs->r.ring, &rs);
        int flushed = 0;
        if (fs->durability == RC_STORAGE_DURABILITY_SYNC ? commits : rs.head != flushed_head) {
            flush_once(fs, f);
            flushed_head = rs.head;
            flushed = 1;
        }
        flush_cursors(fs, f, flushed);
        pthread_mutex_lock(&f->mu);
        f->durable = target;
        pthread_cond_broadcast(&f->done);
        complete_waiters(f);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static int file_durable_wait(rc_storage_t *s, rc_storage_durable_t *w)
{
    flusher_t *f = ((file_store_t *)s)->flusher;
    if (f == NULL || w->ticket == 0)
        return 1;
    pthread_mutex_lock(&f->mu);
    int rc = f->err != 0 ? f->err : f->durable >= w->ticket ? 1 : 0;
    if (rc == 0) {
        w->next = f->waiters;
        f->waiters = w;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Sync: counts the commit just made and, unless the caller waits on its own (NOWAIT, with the
 * ticket), waits for a flush that started after it. */
static int wait_durable(flusher_t *f, rc_storage_claim_t *c, const rc_ring_claim_t *rc_)
{
    pthread_mutex_lock(&f->mu);
    uint64_t mine = ++f->committed;
    if (f->journal != NULL) {
        if (rc_->pad_ >= RC_RING_RECORD_SIZE(0))
            pend_add(f, rc_->pos - rc_->pad_, rc_->pad_);
        pend_add(f, rc_->pos, rc_->bytes_);
        pthread_cond_signal(&f->jwork);
    } else {
        pthread_cond_signal(&f->work);
    }
    if (c->flags & RC_STORAGE_COMMIT_F_NOWAIT) {
        c->ticket = mine;
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    while (f->durable < mine && f->err == 0)
        pthread_cond_wait(&f->done, &f->mu);
    int rc = f->err;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int flusher_start(file_store_t *fs, const rc_storage_config_t *cfg, char *err, size_t errlen)
{
    flusher_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    f->interval_ms = cfg->flush_interval_ms != 0 ? cfg->flush_interval_ms : 10;
    f->pid = getpid();
    atomic_init(&f->cursors_fd, -1);
    f->fd = open(fs->path, O_RDWR | O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "ring file %s: cannot open it to flush: %s", fs->path, strerror(e));
        free(f);
        return -e;
    }
    /* Nothing is committed yet: what the last run left in the page cache, and what recovery
     * rewrote, go to disk now, so the durable position starts true at the recovered head. */
    rc_ring_stats_t rs;
    rc_ring_stats(fs->r.ring, &rs);
    f->start_head = rs.head;
    int synced = fdatasync(f->fd) == 0;
    if (!synced)
        rc_log_warn("storage", "broker %s/%s: fdatasync of %s at start: %s", fs->ns, fs->broker,
                    fs->path, strerror(errno));
    /* The journal's frames are in the ring file now: a new epoch, unless the file could not be
     * flushed (then they stay for the next start). */
    f->journal = fs->jr;
    fs->jr = NULL;
    int jrc = f->journal != NULL && synced ? rc_journal_reset(f->journal) : 0;
    if (jrc != 0)
        rc_log_warn("storage", "broker %s/%s: journal %s: cannot start a new epoch: %s",
                    fs->ns, fs->broker, fs->journal, strerror(-jrc));
    f->last_ckpt_ns = rc_now_ns();
    atomic_init(&f->durable_seq, rs.head_seq);
    f->readers_sig = readers_sig(fs, f);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->work, &ca);
    pthread_cond_init(&f->done, NULL);
    pthread_cond_init(&f->jwork, NULL);
    pthread_condattr_destroy(&ca);
    fs->flusher = f;
    int rc = pthread_create(&f->thread, NULL, flusher_main, fs);
    if (rc == 0 && f->journal != NULL) {
        rc = pthread_create(&f->jthread, NULL, journal_main, fs);
        if (rc != 0) {
            pthread_mutex_lock(&f->mu);
            f->stop = 1;
            pthread_cond_signal(&f->work);
            pthread_mutex_unlock(&f->mu);
            pthread_join(f->thread, NULL);
        }
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the flusher thread: %s", strerror(rc));
        fs->flusher = NULL;
        close(f->fd);
        rc_journal_close(f->journal);
        free(f->slots);
        free(f);
        return -rc;
    }
    return 0;
}

/* A forked worker inherits the opener's handle but not its thread: only the opener stops it. */
static void file_close(rc_storage_t *s)
{
    file_store_t *fs = (file_store_t *)s;
    flusher_t *f = fs->flusher;
    if (f != NULL && f->pid == getpid()) {
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        pthread_cond_signal(&f->work);
        pthread_cond_signal(&f->jwork);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        if (f->journal != NULL)
            pthread_join(f->jthread, NULL);
        /* What was committed since the last flush goes to disk before the broker stops; then
         * the journal holds nothing the file lacks. */
        if (fdatasync(f->fd) != 0)
            rc_log_warn("storage", "broker %s/%s: fdatasync of %s at close: %s", fs->ns, fs->broker,
                        fs->path, strerror(errno));
        else if (f->journal != NULL && rc_journal_reset(f->journal) != 0)
            rc_log_warn("storage", "broker %s/%s: journal %s: cannot start a new epoch at close",
                        fs->ns, fs->broker, fs->journal);
        rc_journal_close(f->journal);
        free(f->pend);
        free(f->spare);
        pthread_cond_destroy(&f->jwork);
        close(f->fd);
        int cfd = atomic_load_explicit(&f->cursors_fd, memory_order_relaxed);
        if (cfd >= 0) {
            if (fdatasync(cfd) != 0)
                rc_log_warn("storage", "broker %s/%s: fdatasync of %s at close: %s", fs->ns,
                            fs->broker, fs->cursors, strerror(errno));
            close(cfd);
        }
        free(f->slots);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->work);
        pthread_cond_destroy(&f->done);
        free(f);
    }
    if (fs->sync_fd1 > 0)
        close(fs->sync_fd1 - 1);
    if (fs->shared_owner == getpid())
        munmap(fs->shared, sizeof(*fs->shared));
    rc__ring_close(s);
}

/* The time index beside the ring file, "<ns>.<broker>.timeindex": after recovery, so samples
 * past a cut head are dropped. It is not flushed: a sample lost in a crash only lengthens a
 * replay's scan, and one that survives its events is dropped as past the head. */
static void timeindex_start(file_store_t *fs)
{
    char what[PATH_BYTES + 16];
    snprintf(what, sizeof(what), "time index %s", fs->timeindex);
    int fd = open(fs->timeindex, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc_log_warn("storage", "%s: %s; replays scan from the oldest event", what, strerror(errno));
        return;
    }
    rc__ring_timeindex_start(&fs->r, fd, what);
    close(fd);
}

int rc__storage_file_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                          size_t errlen)
{
    if (cfg->directory == NULL || cfg->durability > RC_STORAGE_DURABILITY_SYNC) {
        snprintf(err, errlen, "a file store needs a directory and a known durability");
        return -EINVAL;
    }
    file_store_t *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fs->r.base.ops = &file_ops;
    fs->durability = cfg->durability;
    void *page =
        mmap(NULL, sizeof(*fs->shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        int e = errno;
        snprintf(err, errlen, "cannot map the store's counters: %s", strerror(e));
        free(fs);
        return -e;
    }
    fs->shared = page;
    fs->shared_owner = getpid();
    int rc = check_directory(cfg->directory, err, errlen);
    if (rc == 0)
        rc = set_paths(fs, cfg, err, errlen);
    if (rc != 0)
        goto fail;
    /* Before the first mapping is touched; the workers forked later inherit it. */
    if ((rc = rc_ring_guard_sigbus()) != 0)
        rc_log_warn("storage", "cannot install the SIGBUS guard: %s", rc_strerror(rc));
    rc = -ESTALE;
    for (int i = 0; i < OPEN_ATTEMPTS && (rc == -ESTALE || rc == -EEXIST); i++)
        rc = open_once(fs, cfg, err, errlen);
    if (rc == -EBUSY || rc == -EAGAIN) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 ", or give this broker its own storage directory (spec.storage.directory, "
                 "annotation ringcast.dev/storage-directory)");
    }
    if (rc < 0)
        goto fail;
    fs->r.broker = 1;
    int existing = rc == 0;
    if ((rc = journal_open(fs, cfg, existing, err, errlen)) != 0 ||
        (existing && (rc = recover(fs, err, errlen)) != 0)) {
        rc_journal_close(fs->jr);
        rc_ring_close(fs->r.ring);
        goto fail;
    }
    journal_settle(fs);
    if (fs->durability != RC_STORAGE_DURABILITY_NONE &&
        (rc = flusher_start(fs, cfg, err, errlen)) != 0) {
        rc_journal_close(fs->jr);
        rc_ring_close(fs->r.ring);
        goto fail;
    }
    timeindex_start(fs);
    *out = &fs->r.base;
    return 0;
fail:
    munmap(fs->shared, sizeof(*fs->shared));
    free(fs);
    return rc;
}

static int file_attach(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen)
{
    const file_store_t *from = (const file_store_t *)s;
    file_store_t *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fs->r.base.ops = &file_ops;
    fs->durability = from->durability;
    fs->shared = from->shared;
    memcpy(fs->ns, from->ns, sizeof(fs->ns));
    memcpy(fs->broker, from->broker, sizeof(fs->broker));
    memcpy(fs->path, from->path, sizeof(fs->path));
    memcpy(fs->cursors, from->cursors, sizeof(fs->cursors));
    memcpy(fs->timeindex, from->timeindex, sizeof(fs->timeindex));
    int rc = rc_ring_open_file(fs->path, &fs->r.ring, err, errlen);
    if (rc != 0) {
        free(fs);
        return rc;
    }
    *out = &fs->r.base;
    return 0;
}

/* ---- appending: records with their checksum -------------------------------------------------- */

/* The ring claims each record with room for its trailer; the caller still sees `len` bytes. */
static int file_claim(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n, rc_storage_claim_t *c)
{
    file_claim_t *fc = (file_claim_t *)(void *)c->priv_;
    for (uint32_t i = 0; i < n; i++) {
        if (recs[i].len > UINT32_MAX - RC_STORAGE_CRC_TRAILER)
            return RC_ERING_TOO_BIG;
    }
    for (uint32_t i = 0; i < n; i++) {
        recs[i].type_ = RC_EVENT_RECORD_TYPE;
        recs[i].flags_ = RC_STORAGE_REC_F_CRC;
        recs[i].len += RC_STORAGE_CRC_TRAILER;
    }
    int rc;
    if (n == 1) {
        rc = rc_ring_claim(ring_of(s), recs[0].len, RC_EVENT_RECORD_TYPE, RC_STORAGE_REC_F_CRC,
                           &fc->ring);
        if (rc == 0) {
            recs[0].pos = fc->ring.pos;
            recs[0].data = fc->ring.data;
        }
    } else {
        /* The layouts agree (storage_shm.c checks it). */
        rc = rc_ring_claim_batch(ring_of(s), (rc_ring_rec_t *)(void *)recs, n, &fc->ring);
    }
    for (uint32_t i = 0; i < n; i++)
        recs[i].len -= RC_STORAGE_CRC_TRAILER;
    if (rc == 0) {
        fc->recs = recs;
        c->flags = 0;
        c->ticket = 0;
        c->pos = fc->ring.pos;
        c->seq = fc->ring.seq;
        c->count = fc->ring.count;
    }
    return rc;
}

/* The checksums go in last, over the bytes the caller wrote, then the ring publishes them. */
static int file_commit(rc_storage_t *s, rc_storage_claim_t *c)
{
    file_store_t *fs = (file_store_t *)s;
    file_claim_t *fc = (file_claim_t *)(void *)c->priv_;
    for (uint32_t i = 0; i < c->count; i++) {
        unsigned char *d = fc->recs[i].data;
        uint32_t len = fc->recs[i].len;
        uint32_t crc = record_crc(c->seq + i, d, len);
        memcpy(d + len, &crc, sizeof(crc));
        memcpy(d + len + sizeof(crc), &len, sizeof(len));
    }
    int rc = rc__ring_commit(s, c); /* fc->ring, first in priv_ */
    if (rc == 0 && fs->durability == RC_STORAGE_DURABILITY_SYNC) {
        if (fs->flusher != NULL)
            rc = wait_durable(fs->flusher, c, &fc->ring);
        else
            fs->unsynced++; /* a worker's handle: its rc_storage_sync covers it */
    }
    return rc;
}

/* A worker's handle of a sync store: one fdatasync covers every commit it made since the last
 * (replies and dead letters of one loop turn, net/delivery/worker.c), before the worker
 * finishes the events they answer. Its own descriptor: the worker closed the inherited ones. */
static int file_sync(rc_storage_t *s)
{
    file_store_t *fs = (file_store_t *)s;
    if (fs->sync_err != 0 || fs->unsynced == 0)
        return fs->sync_err;
    int rc = 0;
    if (fs->sync_fd1 == 0) {
        int fd = open(fs->path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            rc = -errno;
        else
            fs->sync_fd1 = fd + 1;
    }
    if (rc == 0) {
        uint64_t t0 = rc_now_ns();
        rc = fdatasync(fs->sync_fd1 - 1) == 0 ? 0 : -errno;
        atomic_fetch_add_explicit(&fs->shared->fsyncs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&fs->shared->fsync_ns, rc_now_ns() - t0, memory_order_relaxed);
    }
    if (rc != 0) {
        fs->sync_err = rc;
        rc_log_error("storage",
                     "broker %s/%s: fdatasync of ring file %s for %llu replies or dead letters "
                     "failed: %s; their events stay unfinished (delivered again after a restart)",
                     fs->ns, fs->broker, fs->path, (unsigned long long)fs->unsynced, strerror(-rc));
        return rc;
    }
    fs->unsynced = 0;
    return 0;
}

/* ---- reading: without the trailer, checked when asked ------------------------------------- */

static int file_reader_open(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                            rc_storage_reader_t **out)
{
    file_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->r.base.ops = &file_ops;
    r->store = (file_store_t *)s;
    r->verify = (o->flags & RC_STORAGE_READER_F_VERIFY) != 0;
    int rc = rc__ring_reader_init(s, o, &r->r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    *out = &r->r.base;
    return 0;
}

/* Fills `v` from the ring's view. Returns 0, or RC_EBAD_RECORD for a record whose checksum a
 * verifying reader found wrong (reported and counted: the caller reads on past it). */
static int file_view(file_reader_t *r, const rc_ring_view_t *rv, rc_storage_view_t *v)
{
    uint32_t len = rv->len;
    if (r->verify) {
        if (rc_storage_record_check(rv->data, rv->len, rv->flags, rv->seq, &len) < 0) {
            atomic_fetch_add_explicit(&r->store->shared->corrupt, 1, memory_order_relaxed);
            rc_log_warn("storage",
                        "broker %s/%s: ring file %s: the record at position %llu (seq %llu) "
                        "fails its checksum: skipped",
                        r->store->ns, r->store->broker, r->store->path, (unsigned long long)rv->pos,
                        (unsigned long long)rv->seq);
            return RC_EBAD_RECORD;
        }
    } else if ((rv->flags & RC_STORAGE_REC_F_CRC) != 0 && len >= RC_STORAGE_CRC_TRAILER) {
        len -= RC_STORAGE_CRC_TRAILER;
    }
    v->pos = rv->pos;
    v->next = rv->next;
    v->seq = rv->seq;
    v->data = rv->data;
    v->len = len;
    return 0;
}

static int file_poll(rc_storage_reader_t *r, rc_storage_view_t *v)
{
    file_reader_t *fr = (file_reader_t *)r;
    rc_ring_view_t rv;
    int rc;
    while ((rc = rc_reader_poll(fr->r.reader, &rv)) == 0 && file_view(fr, &rv, v) != 0)
        ;
    return rc;
}

static int file_wait(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns)
{
    file_reader_t *fr = (file_reader_t *)r;
    rc_ring_view_t rv;
    int rc = rc_reader_wait(fr->r.reader, &rv, timeout_ns);
    while (rc == 0 && file_view(fr, &rv, v) != 0) {
        rc = rc_reader_poll(fr->r.reader, &rv);
        if (rc == RC_ERING_EMPTY)
            rc = rc_reader_wait(fr->r.reader, &rv, timeout_ns);
    }
    return rc;
}

/* ---- state and saved cursors ---------------------------------------------------------------- */

static void file_stats(rc_storage_t *s, rc_storage_stats_t *st)
{
    file_store_t *fs = (file_store_t *)s;
    rc__ring_stats(s, st);
    st->kind = "file";
    st->durability = fs->durability == RC_STORAGE_DURABILITY_SYNC    ? "sync"
                     : fs->durability == RC_STORAGE_DURABILITY_BATCH ? "batch"
                                                                     : "none";
    if (fs->flusher != NULL) {
        st->fsyncs = atomic_load_explicit(&fs->flusher->fsyncs, memory_order_relaxed);
        st->fsync_ns = atomic_load_explicit(&fs->flusher->fsync_ns, memory_order_relaxed);
        st->durable_seq = atomic_load_explicit(&fs->flusher->durable_seq, memory_order_relaxed);
        st->fsyncs += atomic_load_explicit(&fs->shared->fsyncs, memory_order_relaxed);
        st->fsync_ns += atomic_load_explicit(&fs->shared->fsync_ns, memory_order_relaxed);
    }
    struct stat sb;
    st->file_bytes = stat(fs->path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    st->corrupt = atomic_load_explicit(&fs->shared->corrupt, memory_order_relaxed);
}

/* Cursors saved past the newest event recovered (a torn tail was cut under them) resume at it:
 * the events they acknowledged there are gone, and a cursor past the head would make its
 * trigger skip the next ones. */
static void clamp_cursors(file_store_t *fs, rc_storage_cursors_t *t)
{
    rc_ring_stats_t rs;
    rc_ring_stats(fs->r.ring, &rs);
    uint32_t n = 0;
    for (rc_storage_cursor_t *c = rc_storage_cursor_next(t, NULL); c != NULL;
         c = rc_storage_cursor_next(t, c)) {
        if (atomic_load_explicit(&c->pos, memory_order_relaxed) <= rs.head &&
            atomic_load_explicit(&c->seq, memory_order_relaxed) <= rs.head_seq)
            continue;
        atomic_store_explicit(&c->seq, rs.head_seq, memory_order_relaxed);
        atomic_store_explicit(&c->pos, rs.head, memory_order_relaxed);
        n++;
    }
    if (n > 0)
        rc_log_warn("storage",
                    "broker %s/%s: %u saved cursors were past the newest event recovered; they "
                    "resume at it (seq %llu)",
                    fs->ns, fs->broker, n, (unsigned long long)rs.head_seq);
}

/* The table lives beside the ring file, owner-only like it, and names the ring's identity, so
 * the cursors of a ring file that was moved aside never apply to the one made after it. */
static int file_cursors_open(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out,
                             int *adopted, char *err, size_t errlen)
{
    file_store_t *fs = (file_store_t *)s;
    char what[PATH_BYTES + 16];
    snprintf(what, sizeof(what), "cursor table %s", fs->cursors);
    int fd = open(fs->cursors, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", what, strerror(e));
        return -e;
    }
    int rc = rc__cursors_map(fd, what, rc_ring_id(fs->r.ring), slots, out, adopted, err, errlen);
    /* The flusher keeps the first descriptor (the path never changes) for its fdatasyncs. */
    int none = -1;
    flusher_t *f = fs->flusher;
    if (rc != 0 || f == NULL || f->pid != getpid() ||
        !atomic_compare_exchange_strong_explicit(&f->cursors_fd, &none, fd, memory_order_release,
                                                 memory_order_relaxed))
        close(fd);
    if (rc == 0 && *adopted)
        clamp_cursors(fs, *out);
    return rc;
}

static const rc__storage_ops_t file_ops = {
    .attach = file_attach,
    .close = file_close,
    .claim = file_claim,
    .commit = file_commit,
    .wake_sleepers = rc__ring_wake_sleepers,
    .durable_wait = file_durable_wait,
    .sync = file_sync,
    .abort = rc__ring_abort,
    .reader_open = file_reader_open,
    .reader_close = rc__ring_reader_close,
    .poll = file_poll,
    .wait = file_wait,
    .prepare_sleep = rc__ring_prepare_sleep,
    .wait_past = rc__ring_wait_past,
    .wake = rc__ring_wake,
    .ack = rc__ring_ack,
    .position = rc__ring_position,
    .acked = rc__ring_acked,
    .resume = rc__ring_resume,
    .find_cursor = rc__ring_find_cursor,
    .reclaim = rc__ring_reclaim,
    .stats = file_stats,
    .cursors_open = file_cursors_open,
    .seek_time = rc__ring_seek_time,
    .scan = rc__ring_scan,
    .read_at = rc__ring_read_at,
    .holder = rc__ring_holder,
    .groups = rc__ring_groups,
    .readers = rc__ring_readers,
};
