/* The shared-memory ring back end: a broker's events in a POSIX shm object (shm/ring.h), cursors
 * as manual-ack lossless readers (shm/reader.h). Claims, cursors and acknowledgements pass
 * straight through; the ring already has the semantics the interface promises. What this file
 * adds is the broker's claim on its ring: the broker lock for its life (one broker per ring),
 * a ring it cannot trust refused rather than attached or replaced, the slots of dead readers
 * reclaimed at once (the lock guarantees no previous broker process still uses them), and a
 * SIGBUS guard that reports a ring truncated under the broker in words. It also applies the
 * lag limit of the ring's consumer groups (shm/group.h). The file back end (storage_file.c)
 * keeps the same ring in a file: the operations that do not depend on where the ring lives
 * are shared with it (rc__ring_*, storage_internal.h). */
#include "net/storage/storage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "core/validate.h"
#include "net/storage/timeindex.h"
#include "shm/group.h"
#include "shm/ring_name.h"
#include "shm/reader.h"
#include "shm/ring.h"

/* The interface's record and the ring's are one layout, so a batch is claimed in place. */
_Static_assert(sizeof(rc_storage_rec_t) == sizeof(rc_ring_rec_t), "record layout");
_Static_assert(offsetof(rc_storage_rec_t, len) == offsetof(rc_ring_rec_t, len), "len");
_Static_assert(offsetof(rc_storage_rec_t, type_) == offsetof(rc_ring_rec_t, type), "type");
_Static_assert(offsetof(rc_storage_rec_t, flags_) == offsetof(rc_ring_rec_t, flags), "flags");
_Static_assert(offsetof(rc_storage_rec_t, pos) == offsetof(rc_ring_rec_t, pos), "pos");
_Static_assert(offsetof(rc_storage_rec_t, data) == offsetof(rc_ring_rec_t, data), "data");
_Static_assert(sizeof(rc_ring_claim_t) <= sizeof(((rc_storage_claim_t *)0)->priv_), "claim");
_Static_assert(RC_EVENT_RECORD_TYPE == RC_REC_TYPE_USER, "event records are the first user type");

/* How long a broker waits for the workers of a broker that died to exit and release the ring
 * (the kernel sends them SIGTERM; they drain for at most spec.shutdownTimeout, 5 s by
 * default). A live broker holding the ring is refused at once. */
#define LOCK_WAIT_NS (10ull * 1000000000ull)
/* Attempts when the ring is replaced or created by another process while we open it. */
#define OPEN_ATTEMPTS 3
/* At most one look per second for dead readers and a shrunk ring, from the stats path. */
#define LOOK_EVERY_NS 1000000000ull

typedef struct {
    rc__ring_store_t r; /* first: the operations both ring back ends share take it */
    char name[RC_RING_NAME_MAX + 1];
} shm_store_t;

static const rc__storage_ops_t shm_ops;
static void shm_timeindex_start(shm_store_t *st);

static rc_ring_t *ring_of(rc_storage_t *s)
{
    return ((rc__ring_store_t *)s)->ring;
}

static rc_reader_t *reader_of(const rc_storage_reader_t *r)
{
    return ((const rc__ring_reader_t *)r)->reader;
}

static shm_store_t *store_new(const char *name)
{
    shm_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->r.base.ops = &shm_ops;
    snprintf(st->name, sizeof(st->name), "%s", name);
    return st;
}

/* Creates the broker's ring, locked, replacing (under its lock) whatever unusable object has
 * its name. */
static int create_locked(const rc_storage_config_t *cfg, const char *name, rc_ring_t **out,
                         char *err, size_t errlen)
{
    rc_ring_config_t rcfg;
    rc_ring_config_init(&rcfg);
    rcfg.capacity = cfg->capacity;
    if (cfg->readers > rcfg.reader_slots)
        rcfg.reader_slots = cfg->readers;
    rcfg.flags = RC_RING_F_REPLACE | RC_RING_F_LOCK;
    int rc = rc_ring_create(name, &rcfg, out, err, errlen);
    if (rc == 0)
        rc_log_info("serve", "broker %s/%s: created ring '%s' (%llu bytes)", cfg->ns, cfg->broker,
                    name, (unsigned long long)cfg->capacity);
    return rc;
}

/* One attempt: attach to the ring when one of the configured size exists (its events and
 * cursors survive a restart), create it otherwise. Either way the ring ends up locked for this
 * broker, or is left alone: a ring another live broker holds, or one another user could have
 * made or read, is never attached nor replaced. */
static int open_once(const rc_storage_config_t *cfg, const char *name, rc_ring_t **out, char *err,
                     size_t errlen)
{
    char why[512];
    rc_ring_t *ring = NULL;
    int rc = rc_ring_open(name, &ring, why, sizeof(why));
    if (rc == -ENOENT)
        return create_locked(cfg, name, out, err, errlen);
    if (rc == -EPERM || rc == -EACCES) {
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    if (rc != 0) {
        rc_log_warn("serve", "broker %s/%s: replacing unusable ring: %s", cfg->ns, cfg->broker,
                    why);
        return create_locked(cfg, name, out, err, errlen);
    }
    rc = rc_ring_lock(ring, 0, why, sizeof(why));
    if (rc == -EAGAIN) {
        rc_log_warn("serve", "broker %s/%s: %s; waiting up to %llu s for them to exit", cfg->ns,
                    cfg->broker, why, LOCK_WAIT_NS / 1000000000ull);
        rc = rc_ring_lock(ring, LOCK_WAIT_NS, why, sizeof(why));
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", why);
        rc_ring_close(ring);
        return rc;
    }
    if (rc_ring_capacity(ring) == cfg->capacity) {
        rc_ring_stats_t rs;
        rc_ring_stats(ring, &rs);
        rc_log_info("serve", "broker %s/%s: attached to ring '%s' (%llu bytes, next event %llu)",
                    cfg->ns, cfg->broker, name, (unsigned long long)rs.capacity,
                    (unsigned long long)rs.head_seq);
        *out = ring;
        return 0;
    }
    /* No broker uses it (we held its lock), so it may go; closing releases the lock, and the
     * replacement takes it again before removing the old object. */
    rc_log_warn("serve", "broker %s/%s: ring '%s' has %llu bytes, configured %llu: replacing it",
                cfg->ns, cfg->broker, name, (unsigned long long)rc_ring_capacity(ring),
                (unsigned long long)cfg->capacity);
    rc_ring_close(ring);
    return create_locked(cfg, name, out, err, errlen);
}

int rc__storage_shm_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                         size_t errlen)
{
    char name[RC_RING_NAME_MAX + 1];
    if (rc_ring_name_for(cfg->prefix, cfg->ns, cfg->broker, name, sizeof(name)) != 0) {
        snprintf(err, errlen, "ring prefix '%s' is too long", cfg->prefix);
        return -EINVAL;
    }
    shm_store_t *st = store_new(name);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* Before the first mapping is touched; the workers forked later inherit it. */
    int rc = rc_ring_guard_sigbus();
    if (rc != 0)
        rc_log_warn("serve", "cannot install the SIGBUS guard: %s", rc_strerror(rc));
    /* -ESTALE and -EEXIST: another process replaced or created the ring between our steps;
     * the next attempt finds it as it is now. */
    rc = -ESTALE;
    for (int i = 0; i < OPEN_ATTEMPTS && (rc == -ESTALE || rc == -EEXIST); i++)
        rc = open_once(cfg, name, &st->r.ring, err, errlen);
    if (rc == -EBUSY || rc == -EAGAIN) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 ", or give this broker its own ring prefix (--ring-prefix, "
                 "spec.ring.namePrefix)");
    }
    if (rc != 0) {
        free(st);
        return rc;
    }
    st->r.broker = 1;
    shm_timeindex_start(st);
    *out = &st->r.base;
    return 0;
}

static int shm_attach(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen)
{
    const shm_store_t *from = (const shm_store_t *)s;
    shm_store_t *st = store_new(from->name);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = rc_ring_open(from->name, &st->r.ring, err, errlen);
    if (rc != 0) {
        free(st);
        return rc;
    }
    *out = &st->r.base;
    return 0;
}

static void sampler_stop(rc__ring_store_t *st);

void rc__ring_close(rc_storage_t *s)
{
    rc__ring_store_t *st = (rc__ring_store_t *)s;
    sampler_stop(st);
    rc_timeindex_close(st->tix);
    rc_ring_close(st->ring);
    free(s);
}

static int shm_claim(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n, rc_storage_claim_t *c)
{
    rc_ring_claim_t *rcl = (rc_ring_claim_t *)c->priv_;
    int rc;
    for (uint32_t i = 0; i < n; i++) {
        recs[i].type_ = RC_EVENT_RECORD_TYPE;
        recs[i].flags_ = 0;
    }
    if (n == 1) {
        rc = rc_ring_claim(ring_of(s), recs[0].len, RC_EVENT_RECORD_TYPE, 0, rcl);
        if (rc == 0) {
            recs[0].pos = rcl->pos;
            recs[0].data = rcl->data;
        }
    } else {
        rc = rc_ring_claim_batch(ring_of(s), (rc_ring_rec_t *)recs, n, rcl);
    }
    if (rc == 0) {
        c->pos = rcl->pos;
        c->seq = rcl->seq;
        c->count = rcl->count;
    }
    return rc;
}

int rc__ring_commit(rc_storage_t *s, rc_storage_claim_t *c)
{
    (void)s;
    rc_ring_claim_t *rc = (rc_ring_claim_t *)(void *)c->priv_;
    return (c->flags & RC_STORAGE_COMMIT_F_QUIET) ? rc_ring_commit_quiet(rc) : rc_ring_commit(rc);
}

void rc__ring_wake_sleepers(rc_storage_t *s)
{
    rc_ring_wake_sleepers(ring_of(s));
}

void rc__ring_abort(rc_storage_t *s, rc_storage_claim_t *c)
{
    (void)s;
    (void)rc_ring_abort((rc_ring_claim_t *)c->priv_);
}

int rc__ring_reader_init(rc_storage_t *s, const rc_storage_reader_opts_t *o, rc__ring_reader_t *r)
{
    static const rc_reader_start_t starts[] = {
        [RC_STORAGE_FROM_LATEST] = RC_START_LATEST,
        [RC_STORAGE_FROM_OLDEST] = RC_START_OLDEST,
        [RC_STORAGE_FROM_AT] = RC_START_AT,
    };
    if ((unsigned)o->start > RC_STORAGE_FROM_AT || (o->flags & ~RC_STORAGE_READER_F_VERIFY) != 0)
        return -EINVAL;
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSLESS,
                           .start = starts[o->start],
                           .position = o->position,
                           .name = o->name,
                           .flags = RC_READER_F_MANUAL_ACK};
    return rc_reader_open(ring_of(s), &ro, &r->reader);
}

/* A shm store keeps no checksums: RC_STORAGE_READER_F_VERIFY has nothing to check. */
static int shm_reader_open(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                           rc_storage_reader_t **out)
{
    rc__ring_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->base.ops = &shm_ops;
    int rc = rc__ring_reader_init(s, o, r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    *out = &r->base;
    return 0;
}

void rc__ring_reader_close(rc_storage_reader_t *r, int keep_cursor)
{
    if (keep_cursor)
        rc_reader_forget(reader_of(r));
    else
        rc_reader_close(reader_of(r));
    free(r);
}

static void view_of(const rc_ring_view_t *rv, rc_storage_view_t *v)
{
    v->pos = rv->pos;
    v->next = rv->next;
    v->seq = rv->seq;
    v->data = rv->data;
    v->len = rv->len;
}

static int shm_poll(rc_storage_reader_t *r, rc_storage_view_t *v)
{
    rc_ring_view_t rv;
    int rc = rc_reader_poll(reader_of(r), &rv);
    if (rc == 0)
        view_of(&rv, v);
    return rc;
}

static int shm_wait(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns)
{
    rc_ring_view_t rv;
    int rc = rc_reader_wait(reader_of(r), &rv, timeout_ns);
    if (rc == 0)
        view_of(&rv, v);
    return rc;
}

int rc__ring_prepare_sleep(rc_storage_reader_t *r, const uint32_t **word, uint32_t *val)
{
    return rc_reader_prepare_sleep(reader_of(r), word, val);
}

int rc__ring_wait_past(rc_storage_reader_t *r, uint64_t pos, int64_t timeout_ns)
{
    return rc_reader_wait_past(reader_of(r), pos, timeout_ns);
}

void rc__ring_wake(rc_storage_reader_t *r)
{
    rc_reader_wake(reader_of(r));
}

int rc__ring_ack(rc_storage_reader_t *r, uint64_t pos)
{
    return rc_reader_ack(reader_of(r), pos);
}

uint64_t rc__ring_position(const rc_storage_reader_t *r)
{
    return rc_reader_position(reader_of(r));
}

uint64_t rc__ring_acked(const rc_storage_reader_t *r)
{
    return rc_reader_acked(reader_of(r));
}

int rc__ring_resume(rc_storage_reader_t *r)
{
    return rc_reader_resume(reader_of(r));
}

int rc__ring_find_cursor(rc_storage_t *s, const char *name, uint64_t *pos)
{
    return rc_reader_find_orphan(ring_of(s), name, pos);
}

/* The broker's handle holds the lock, so no process of a previous broker still uses a dead
 * slot: those go at once, not after the heartbeat timeout (a restart within it otherwise found
 * the previous broker's feeds still holding the ring, and answered 429 until they timed out). */
int rc__ring_reclaim(rc_storage_t *s)
{
    rc__ring_store_t *st = (rc__ring_store_t *)s;
    atomic_store_explicit(&st->adopted, 1, memory_order_relaxed);
    return st->broker ? rc_ring_reclaim_dead(st->ring) : rc_ring_reclaim(st->ring);
}

/* Called from the stats path (every metrics scrape), at most once a second: a dead reader stops
 * being counted (and holding the ring) at the first scrape after the heartbeat timeout, and a
 * ring truncated or overwritten under the broker is logged in words once, before the SIGBUS
 * guard ends the broker at its next access to a lost page. The timeout is kept here: a local
 * consumer that left its cursor behind (rc_reader_forget) gets that long to come back for it,
 * as before, rather than having it taken by every scrape. */
static void look(rc__ring_store_t *st)
{
    uint64_t now = rc_now_ns();
    uint64_t last = atomic_load_explicit(&st->last_look, memory_order_relaxed);
    if (now - last < LOOK_EVERY_NS ||
        !atomic_compare_exchange_strong_explicit(&st->last_look, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    char why[512];
    if (rc_ring_check(st->ring, why, sizeof(why)) != 0) {
        if (!atomic_exchange_explicit(&st->reported, 1, memory_order_relaxed))
            rc_log_error("serve", "%s", why);
        return; /* the slots may be gone with the pages */
    }
    /* Not before the supervisor has looked for the feeds a previous broker left (they are dead
     * slots too, and reclaiming them first would lose their positions). */
    if (atomic_load_explicit(&st->adopted, memory_order_relaxed))
        rc_ring_reclaim(st->ring);
}

void rc__ring_stats(rc_storage_t *s, rc_storage_stats_t *st)
{
    look((rc__ring_store_t *)s);
    rc_ring_stats_t rs;
    rc_ring_stats(ring_of(s), &rs);
    st->capacity = rs.capacity;
    st->head = rs.head;
    st->head_seq = rs.head_seq;
    st->used = rs.fill;
    st->readers = rs.readers;
    st->lossless = rs.lossless;
}

static void shm_stats(rc_storage_t *s, rc_storage_stats_t *st)
{
    rc__ring_stats(s, st);
    st->kind = "memory";
    st->durability = "none";
}

/* A ring's saved cursors live in a shm object of their own beside it, "<ring name>.cursors",
 * owner-only like the ring. The ring's identity is kept in it, so the cursors of a ring that
 * was replaced never apply to its successor, whose sequence numbers start again at 0. */
/* The time index of a memory ring: a shm object beside it, "<ring name>.timeindex". */
static void shm_timeindex_start(shm_store_t *st)
{
    char name[RC_RING_NAME_MAX + 16], what[128];
    snprintf(name, sizeof(name), "/%s.timeindex", st->name);
    snprintf(what, sizeof(what), "time index /dev/shm%s", name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc_log_warn("storage", "%s: %s; replays scan from the oldest event", what, strerror(errno));
        return;
    }
    rc__ring_timeindex_start(&st->r, fd, what);
    close(fd);
}

static int shm_cursors_open(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out,
                            int *adopted, char *err, size_t errlen)
{
    shm_store_t *st = (shm_store_t *)s;
    char name[RC_RING_NAME_MAX + 16], what[128];
    snprintf(name, sizeof(name), "/%s.cursors", st->name);
    snprintf(what, sizeof(what), "cursor table /dev/shm%s", name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", what, strerror(e));
        return -e;
    }
    int rc = rc__cursors_map(fd, what, rc_ring_id(st->r.ring), slots, out, adopted, err, errlen);
    close(fd);
    return rc;
}

int rc__ring_holder(rc_storage_t *s, rc_storage_holder_t *out)
{
    rc_ring_stats_t rs;
    rc_ring_slowest_t sl;
    rc_ring_stats(ring_of(s), &rs);
    int rc = rc_ring_slowest(ring_of(s), &sl);
    memset(out, 0, sizeof(*out));
    out->refused = rs.full;
    if (rc != 0)
        return rc;
    memcpy(out->name, sl.name, sizeof(out->name));
    out->pid = sl.pid;
    out->lag_bytes = sl.lag_bytes;
    out->lag_events = sl.lag_events;
    return 0;
}

int rc__ring_groups(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                    rc_storage_group_t *out, size_t max)
{
    rc_group_info_t gi[RC_GROUP_MAX];
    int rc = rc_group_enforce_lag(ring_of(s), default_limit, skipped);
    int n = rc == 0 ? rc_group_list(ring_of(s), gi, RC_GROUP_MAX) : rc;
    uint64_t head = rc_ring_head(ring_of(s));
    for (int i = 0; i < n && (size_t)i < max && i < (int)RC_GROUP_MAX; i++) {
        _Static_assert(sizeof(out[i].name) == sizeof(gi[i].name), "group names fit");
        memcpy(out[i].name, gi[i].name, sizeof(out[i].name));
        out[i].members = gi[i].members;
        out[i].lag_bytes = head > gi[i].position ? head - gi[i].position : 0;
        out[i].limit = gi[i].lag_limit;
        out[i].lagged = gi[i].lagged;
    }
    return n;
}

/* Local readers: every attached slot but the broker's own feeds ("feed~w<N>", named by the
 * supervisor) and consumer groups ("g:<name>", listed by rc__ring_groups). */
int rc__ring_readers(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max)
{
    /* Slots may be taken between the count and the copy: a few spare entries, and what does
     * not fit waits for the next scrape. */
    uint32_t cap = (uint32_t)rc_ring_readers(ring_of(s), NULL, 0) + 16;
    rc_ring_reader_info_t *ri = malloc(cap * sizeof(*ri));
    if (ri == NULL)
        return -ENOMEM;
    int n = rc_ring_readers(ring_of(s), ri, cap);
    int k = 0;
    for (int i = 0; i < n && (uint32_t)i < cap; i++) {
        if (strncmp(ri[i].name, "feed~", 5) == 0 || strncmp(ri[i].name, "g:", 2) == 0)
            continue;
        if ((size_t)k < max) {
            rc_storage_local_reader_t *o = &out[k];
            _Static_assert(sizeof(o->name) == sizeof(ri[i].name), "reader names fit");
            memcpy(o->name, ri[i].name, sizeof(o->name));
            o->pid = ri[i].pid;
            o->slot = ri[i].slot;
            o->lossless = ri[i].lossless;
            o->lag_bytes = ri[i].lag_bytes;
            o->lag_events = ri[i].lag_events;
        }
        k++;
    }
    free(ri);
    return k;
}

static const rc__storage_ops_t shm_ops = {
    .attach = shm_attach,
    .close = rc__ring_close,
    .claim = shm_claim,
    .commit = rc__ring_commit,
    .wake_sleepers = rc__ring_wake_sleepers,
    .abort = rc__ring_abort,
    .reader_open = shm_reader_open,
    .reader_close = rc__ring_reader_close,
    .poll = shm_poll,
    .wait = shm_wait,
    .prepare_sleep = rc__ring_prepare_sleep,
    .wait_past = rc__ring_wait_past,
    .wake = rc__ring_wake,
    .ack = rc__ring_ack,
    .position = rc__ring_position,
    .acked = rc__ring_acked,
    .resume = rc__ring_resume,
    .find_cursor = rc__ring_find_cursor,
    .reclaim = rc__ring_reclaim,
    .stats = shm_stats,
    .cursors_open = shm_cursors_open,
    .holder = rc__ring_holder,
    .groups = rc__ring_groups,
    .readers = rc__ring_readers,
    .seek_time = rc__ring_seek_time,
    .scan = rc__ring_scan,
    .read_at = rc__ring_read_at,
};

/* ---- the time index: sampling and seeking (net/storage/timeindex.h) -------------------------- */

struct rc__sampler_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop */
    int stop;
    pid_t pid; /* the process that runs the thread (forked workers do not) */
    rc__ring_store_t *st;
    uint64_t step; /* a sample only once the head moved this far: the table spans the ring */
};

/* One look at the head: a sample when it moved at least `step` bytes since the last one. The
 * head is read before the clock, so every event claimed after the sample's time was claimed
 * after the head was read and has a sequence number >= the sample's. */
static void sample(struct rc__sampler_s *sp)
{
    uint64_t pos, seq;
    rc_ring_head_load(sp->st->ring, &pos, &seq);
    int64_t now = rc_wall_ns();
    rc_timeindex_entry_t last;
    if (rc_timeindex_newest(sp->st->tix, &last) == 0 && pos - last.pos < sp->step)
        return;
    (void)rc_timeindex_add(sp->st->tix, now, pos, seq);
}

static void *sampler_main(void *arg)
{
    struct rc__sampler_s *sp = arg;
    pthread_mutex_lock(&sp->mu);
    while (!sp->stop) {
        sample(sp);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)RC_TIMEINDEX_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!sp->stop && pthread_cond_timedwait(&sp->cv, &sp->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

static void sampler_stop(rc__ring_store_t *st)
{
    struct rc__sampler_s *sp = st->sampler;
    if (sp == NULL || sp->pid != getpid())
        return;
    pthread_mutex_lock(&sp->mu);
    sp->stop = 1;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    pthread_join(sp->thread, NULL);
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->cv);
    free(sp);
    st->sampler = NULL;
}

/* Samples past the ring's head point at events the ring no longer has (recovery cut a torn
 * tail, or the table outlived a ring that was emptied): they go. */
static void drop_future(rc__ring_store_t *st, const char *what)
{
    rc_timeindex_entry_t last;
    uint64_t pos, seq;
    rc_ring_head_load(st->ring, &pos, &seq);
    if (rc_timeindex_newest(st->tix, &last) == 0 && (last.pos > pos || last.seq > seq)) {
        rc_log_info("storage", "%s: samples past the ring's head (%llu) dropped", what,
                    (unsigned long long)pos);
        rc_timeindex_clear(st->tix);
    }
}

void rc__ring_timeindex_start(rc__ring_store_t *st, int fd, const char *what)
{
    char why[256];
    int reset = 0;
    int rc = rc_timeindex_map(fd, rc_ring_id(st->ring), 0, 1, &st->tix, &reset, why, sizeof(why));
    if (rc != 0) {
        rc_log_warn("storage", "%s: %s; replays scan from the oldest event", what, why);
        return;
    }
    if (reset)
        rc_log_info("storage", "%s made anew: %s", what, why);
    drop_future(st, what);
    struct rc__sampler_s *sp = calloc(1, sizeof(*sp));
    pthread_condattr_t ca;
    if (sp == NULL || pthread_condattr_init(&ca) != 0) {
        free(sp);
        rc_log_warn("storage", "%s: out of memory; not sampled", what);
        return;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&sp->mu, NULL);
    sp->st = st;
    sp->pid = getpid();
    sp->step = rc_ring_capacity(st->ring) / RC_TIMEINDEX_ENTRIES;
    if (sp->step == 0)
        sp->step = 1;
    /* The thread takes no signal: the broker's loop handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&sp->thread, NULL, sampler_main, sp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        rc_log_warn("storage", "%s: cannot start the sampler: %s", what, strerror(rc));
        pthread_mutex_destroy(&sp->mu);
        pthread_cond_destroy(&sp->cv);
        free(sp);
        return;
    }
    st->sampler = sp;
}

int rc_storage_record_arrival(const void *data, uint32_t len, uint16_t flags, int64_t *t_ns)
{
    static const char name[] = "knativearrivaltime";
    if (flags & RC_STORAGE_REC_F_CRC) {
        if (len < RC_STORAGE_CRC_TRAILER)
            return -ENOENT;
        len -= RC_STORAGE_CRC_TRAILER;
    }
    rc_record_view_t rv;
    rc_ce_value_t v;
    int64_t sec;
    uint32_t nsec;
    if (len % 8 != 0 || rc_record_decode(data, len, &rv) != 0 ||
        rc_record_get(&rv, (rc_str_t){name, sizeof(name) - 1}, &v) != 0 ||
        rc_ce_time_parse(v.value, &sec, &nsec) != 0 || sec < 0 || sec >= INT64_MAX / 1000000000 - 1)
        return -ENOENT;
    *t_ns = sec * 1000000000 + (int64_t)nsec;
    return 0;
}

/* Scans from `start` (RC_START_AT: sample `e`) with a lossy reader, which never holds
 * producers back, to the first event whose arrival is at or after `t_ns`. Returns 0,
 * RC_ERING_BAD_POS (the sample's position is no longer held), or a reader error; `*damaged`
 * when the record at the sample's position is older than the sample says. */
static int seek_scan(rc_ring_t *ring, rc_reader_start_t start, const rc_timeindex_entry_t *e,
                     int64_t t_ns, rc_storage_seek_t *out, int *damaged)
{
    uint64_t head, hseq;
    rc_ring_head_load(ring, &head, &hseq);
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSY,
                           .start = start,
                           .position = start == RC_START_AT ? e->pos : 0,
                           .name = "ringcast-seek"};
    rc_reader_t *r = NULL;
    int rc = rc_reader_open(ring, &ro, &r);
    if (rc != 0)
        return rc;
    uint64_t next_seq = start == RC_START_AT ? e->seq : hseq;
    for (;;) {
        rc_ring_view_t v;
        rc = rc_reader_poll(r, &v);
        if (rc != 0)
            break;
        if (v.type < RC_REC_TYPE_USER)
            continue;
        if (out->scanned == 0 && start == RC_START_AT && v.seq < e->seq) {
            *damaged = 1;
            break;
        }
        if (out->scanned++ == 0 && start == RC_START_OLDEST)
            out->oldest_seq = v.seq;
        next_seq = v.seq + 1;
        int64_t a;
        if (rc_storage_record_arrival(v.data, v.len, v.flags, &a) != 0 || a < t_ns)
            continue;
        out->found = 1;
        out->pos = v.pos;
        out->seq = v.seq;
        out->arrival_ns = a;
        out->before_oldest = start == RC_START_OLDEST && out->scanned == 1;
        break;
    }
    if (!out->found) {
        out->pos = rc_reader_position(r);
        out->seq = next_seq;
    }
    rc_reader_close(r);
    return rc == RC_ERING_EMPTY ? 0 : rc;
}

/* The seek over any ring: the sample at or before t_ns - slack when the index has one that
 * the ring still holds, else the oldest record. */
static int seek_ring(rc_ring_t *ring, rc_timeindex_t *ix, const char *what, int log_missing,
                     int64_t t_ns, rc_storage_seek_t *out)
{
    memset(out, 0, sizeof(*out));
    rc_timeindex_entry_t e;
    int use = 0;
    if (t_ns != INT64_MIN && ix == NULL) {
        if (log_missing)
            rc_log_warn("storage", "%s: none; scanning from the oldest event", what);
    } else if (t_ns != INT64_MIN) {
        uint64_t head, hseq;
        rc_ring_head_load(ring, &head, &hseq);
        int64_t at =
            t_ns > INT64_MIN + RC_TIMEINDEX_SLACK_NS ? t_ns - RC_TIMEINDEX_SLACK_NS : INT64_MIN;
        int rc = rc_timeindex_lookup(ix, at, &e);
        if (rc == 0 && (e.pos > head || e.seq > hseq))
            rc = -EBADMSG;
        if (rc == -EBADMSG)
            rc_log_warn("storage",
                        "%s is damaged (samples out of order or past the ring's "
                        "head); scanning from the oldest event",
                        what);
        use = rc == 0;
    }
    int damaged = 0, rc = 0;
    if (use) {
        rc = seek_scan(ring, RC_START_AT, &e, t_ns, out, &damaged);
        if (damaged)
            rc_log_warn("storage",
                        "%s is damaged (its sample at %llu names seq %llu, the ring "
                        "holds an older one); scanning from the oldest event",
                        what, (unsigned long long)e.pos, (unsigned long long)e.seq);
        /* A sample the ring no longer holds (overwritten since) is ignored. */
        if (damaged || rc == RC_ERING_BAD_POS) {
            memset(out, 0, sizeof(*out));
            use = 0;
            rc = 0;
        }
    }
    if (!use)
        rc = seek_scan(ring, RC_START_OLDEST, NULL, t_ns, out, &damaged);
    out->indexed = use;
    return rc;
}

int rc__ring_seek_time(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out)
{
    rc__ring_store_t *st = (rc__ring_store_t *)s;
    return seek_ring(st->ring, st->tix, "the ring's time index", 1, t_ns, out);
}

int rc_storage_ring_seek_time(struct rc_ring_s *ring, const char *index, int index_is_file,
                              int64_t t_ns, rc_storage_seek_t *out)
{
    rc_timeindex_t *ix = NULL;
    char what[4200];
    snprintf(what, sizeof(what), "time index %s%s", index_is_file ? "" : "/dev/shm",
             index ? index : "(none)");
    if (index != NULL && t_ns != INT64_MIN) {
        int fd = index_is_file ? open(index, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                               : shm_open(index, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
        char why[256];
        int rc = fd < 0 ? -errno
                        : rc_timeindex_map(fd, rc_ring_id(ring), 0, 0, &ix, NULL, why, sizeof(why));
        if (fd < 0)
            snprintf(why, sizeof(why), "%s", strerror(-rc));
        if (fd >= 0)
            close(fd);
        if (rc != 0) {
            rc_log_warn("storage", "%s: %s; scanning from the oldest event", what, why);
            ix = NULL;
        }
    }
    int rc = seek_ring(ring, ix, what, index == NULL, t_ns, out);
    rc_timeindex_close(ix);
    return rc;
}

/* ---- lossy looks: a sample of recent events, one event by position (storage.h) ------------- */

/* The record of ring view `rv` as a storage view: its checksum (file stores) checked and its
 * trailer left out. Returns 0, or RC_EBAD_RECORD. */
static int lossy_view(const rc_ring_view_t *rv, rc_storage_view_t *v)
{
    uint32_t len;
    if (rc_storage_record_check(rv->data, rv->len, rv->flags, rv->seq, &len) < 0)
        return RC_EBAD_RECORD;
    v->pos = rv->pos;
    v->next = rv->next;
    v->seq = rv->seq;
    v->data = rv->data;
    v->len = len;
    return 0;
}

/* Scans `ring` from the sample of `ix` at or before since_ns (else the oldest event) to the
 * head it had at the start, with a lossy reader (rc_storage_scan). */
static int ring_scan(rc_ring_t *ring, rc_timeindex_t *ix, int64_t since_ns, uint64_t max,
                     rc_storage_scan_cb cb, void *arg, rc_storage_scan_t *out)
{
    uint64_t head, hseq;
    rc_ring_head_load(ring, &head, &hseq);
    out->head_seq = hseq;
    rc_timeindex_entry_t e;
    int use = since_ns != INT64_MIN && ix != NULL && rc_timeindex_lookup(ix, since_ns, &e) == 0 &&
              e.pos <= head && e.seq <= hseq;
    rc_reader_opts_t ro = {.mode = RC_READER_LOSSY,
                           .start = use ? RC_START_AT : RC_START_OLDEST,
                           .position = use ? e.pos : 0,
                           .name = "ringcast-sample"};
    rc_reader_t *r = NULL;
    int rc = rc_reader_open(ring, &ro, &r);
    if (rc == RC_ERING_BAD_POS && use) { /* the sample's event was overwritten since */
        use = 0;
        ro.start = RC_START_OLDEST;
        ro.position = 0;
        rc = rc_reader_open(ring, &ro, &r);
    }
    if (rc != 0)
        return rc;
    out->from_oldest = !use;
    while (out->scanned < max) {
        rc_ring_view_t rv;
        rc_storage_view_t v;
        if ((rc = rc_reader_poll(r, &rv)) != 0)
            break;
        out->lost += rv.lost;
        if (rv.seq >= hseq)
            break; /* appended after the scan started: a busy ring is not chased */
        if (rv.type < RC_REC_TYPE_USER)
            continue;
        if (lossy_view(&rv, &v) != 0) {
            out->corrupt++;
            continue;
        }
        out->scanned++;
        if (cb(arg, &v) != 0)
            break;
    }
    rc_reader_close(r);
    return rc == RC_ERING_EMPTY ? 0 : rc;
}

int rc__ring_scan(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb, void *arg,
                  rc_storage_scan_t *out)
{
    rc__ring_store_t *st = (rc__ring_store_t *)s;
    return ring_scan(st->ring, st->tix, since_ns, max, cb, arg, out);
}

int rc__ring_read_at(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap,
                     size_t *len)
{
    rc__ring_store_t *st = (rc__ring_store_t *)s;
    rc_reader_opts_t ro = {
        .mode = RC_READER_LOSSY, .start = RC_START_AT, .position = pos, .name = "ringcast-read"};
    rc_reader_t *r = NULL;
    int rc = rc_reader_open(st->ring, &ro, &r);
    if (rc == RC_ERING_BAD_POS)
        return -ENOENT; /* overwritten, or never a record start */
    if (rc != 0)
        return rc;
    rc_ring_view_t rv;
    rc_storage_view_t v;
    rc = rc_reader_poll(r, &rv);
    if (rc == 0 && (rv.pos != pos || rv.seq != seq || rv.lost != 0 || rv.type < RC_REC_TYPE_USER))
        rc = -ENOENT; /* lapped meanwhile: the reader skipped to a later record */
    else if (rc == 0)
        rc = lossy_view(&rv, &v);
    else if (rc == RC_ERING_EMPTY)
        rc = -ENOENT;
    if (rc == 0) {
        *len = v.len;
        if (v.len > cap)
            rc = -ENOBUFS;
        else
            memcpy(buf, v.data, v.len);
    }
    rc_reader_close(r);
    return rc;
}

int rc__storage_shm_identity(rc_storage_t *s, char *name, size_t name_len, uint64_t *id)
{
    if (s->ops != &shm_ops)
        return -EINVAL;
    shm_store_t *st = (shm_store_t *)s;
    snprintf(name, name_len, "%s", st->name);
    *id = rc_ring_id(st->r.ring);
    return 0;
}

uint64_t rc__storage_shm_head_seq(rc_storage_t *s)
{
    if (s->ops != &shm_ops)
        return 0;
    uint64_t pos, seq;
    rc_ring_head_load(((shm_store_t *)s)->r.ring, &pos, &seq);
    return seq;
}

int rc__storage_shm_wait_head(rc_storage_t *s, uint64_t seq, int64_t timeout_ns)
{
    if (s->ops != &shm_ops)
        return -EINVAL;
    return rc_ring_wait_head(((shm_store_t *)s)->r.ring, seq, timeout_ns);
}
