/* Inside net/storage/: the back-end table every store implements, like the HTTP client's
 * (net/http/http_client_internal.h). storage.c checks arguments and dispatches; a back end only
 * moves records. Each handle starts with the generic part, so a back end's own struct embeds
 * rc_storage_t (or rc_storage_reader_t) as its first member. */
#ifndef RC_NET_STORAGE_INTERNAL_H
#define RC_NET_STORAGE_INTERNAL_H

#include <stdatomic.h>

#include "net/storage/storage.h"

typedef struct rc__storage_ops_s rc__storage_ops_t;

struct rc_storage_s {
    const rc__storage_ops_t *ops;
};

struct rc_storage_reader_s {
    const rc__storage_ops_t *ops;
};

struct rc__storage_ops_s {
    int (*attach)(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen);
    void (*close)(rc_storage_t *s);
    int (*claim)(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n, rc_storage_claim_t *c);
    int (*commit)(rc_storage_t *s, rc_storage_claim_t *c);
    void (*wake_sleepers)(rc_storage_t *s); /* NULL: no local readers (rc_storage_wake) */
    int (*durable_wait)(rc_storage_t *s, rc_storage_durable_t *w); /* NULL: never waits */
    int (*sync)(rc_storage_t *s); /* NULL: nothing of its own to flush (rc_storage_sync) */
    void (*abort)(rc_storage_t *s, rc_storage_claim_t *c);
    int (*reader_open)(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                       rc_storage_reader_t **out);
    void (*reader_close)(rc_storage_reader_t *r, int keep_cursor);
    int (*poll)(rc_storage_reader_t *r, rc_storage_view_t *v);
    int (*wait)(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns);
    /* NULL when the store has no futex word to sleep on (owners then use a watch). */
    int (*prepare_sleep)(rc_storage_reader_t *r, const uint32_t **word, uint32_t *val);
    /* The watch's thread (storage_watch.c), while the owner may poll `r`: sleeps until a poll
     * at `pos` would return an event, up to timeout_ns; 0, RC_ERING_EMPTY (look again), or
     * -EINTR. Early returns are allowed, missed events are not. */
    int (*wait_past)(rc_storage_reader_t *r, uint64_t pos, int64_t timeout_ns);
    /* Any thread: makes a wait_past in progress on `r` return soon. */
    void (*wake)(rc_storage_reader_t *r);
    int (*ack)(rc_storage_reader_t *r, uint64_t pos);
    uint64_t (*position)(const rc_storage_reader_t *r);
    uint64_t (*acked)(const rc_storage_reader_t *r);
    int (*resume)(rc_storage_reader_t *r);
    int (*find_cursor)(rc_storage_t *s, const char *name, uint64_t *pos);
    int (*reclaim)(rc_storage_t *s);
    void (*stats)(rc_storage_t *s, rc_storage_stats_t *st);
    int (*cursors_open)(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out, int *adopted,
                        char *err, size_t errlen);
    int (*holder)(rc_storage_t *s, rc_storage_holder_t *out);
    int (*groups)(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                  rc_storage_group_t *out, size_t max);
    int (*readers)(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max);
    int (*seek_time)(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out);
    /* NULL: -ENOTSUP */
    int (*scan)(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb, void *arg,
                rc_storage_scan_t *out);
    int (*read_at)(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap, size_t *len);
    /* NULL: the store keeps no consumer groups (rc_storage_group_open says -ENOTSUP). */
    int (*group_open)(rc_storage_t *s, const rc_storage_group_opts_t *o, rc_storage_reader_t **out,
                      char *err, size_t errlen);
    /* A reader's: NULL but for group readers. */
    int (*group_stats)(const rc_storage_reader_t *r, rc_storage_group_stats_t *st);
};

/** Maps the cursor table kept in `fd` (a shared-memory object or file the back end opened
 *  read-write; the caller closes it after) for the store whose identity is `store_id` (a
 *  number that changes when the store is replaced), `what` naming it in messages. Refuses
 *  (-EPERM, `err` says why and what to do) an object this user does not own or that others
 *  may open; creates the table in an empty object, resets one of another store, size or
 *  format (*adopted = 0), keeps a matching one (*adopted = 1). */
int rc__cursors_map(int fd, const char *what, uint64_t store_id, uint32_t slots,
                    rc_storage_cursors_t **out, int *adopted, char *err, size_t errlen);

/** Empties the table, keeping its store, and logs `why`. */
void rc__cursors_reset(rc_storage_cursors_t *t, const char *why);

/** The shared-memory ring back end (storage_shm.c). */
int rc__storage_shm_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                         size_t errlen);

/** The ring file back end (storage_file.c). */
int rc__storage_file_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                          size_t errlen);

/** The Redis Streams back end (storage_redis.c). */
int rc__storage_redis_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                           size_t errlen);

/** The next event sequence number of a shm store's ring (its head), or 0 for another store:
 *  what a redis group reader watches to learn that the mirror copied something. Any thread. */
uint64_t rc__storage_shm_head_seq(rc_storage_t *s);

/** Sleeps until the head of a shm store's ring is past sequence number `seq`, up to
 *  `timeout_ns` (rc_ring_wait_head): 0, RC_ERING_EMPTY (look again), -EINTR, or -EINVAL for
 *  another store. Any thread. */
int rc__storage_shm_wait_head(rc_storage_t *s, uint64_t seq, int64_t timeout_ns);

/** A shm store's ring name and identity (a number that changes when the ring is replaced):
 *  what the redis back end keys its mirror position by. 0, or -EINVAL for another store. */
int rc__storage_shm_identity(rc_storage_t *s, char *name, size_t name_len, uint64_t *id);

/* ---- the two ring back ends ------------------------------------------------------------------
 * storage_shm.c and storage_file.c keep the same ring (shm/ring.h), one in /dev/shm, one in a
 * file: a store and a reader of either start with these, and every operation that does not
 * depend on where the ring lives is storage_shm.c's (rc__ring_*), which both tables use. */

struct rc_ring_s;
struct rc_reader_s;
struct rc_timeindex_s;
struct rc__sampler_s;

typedef struct {
    rc_storage_t base;
    struct rc_ring_s *ring;
    struct rc_timeindex_s *tix;    /* the time index, when it could be mapped (else NULL) */
    struct rc__sampler_s *sampler; /* the broker's thread that fills it (the opener's) */
    int broker;                    /* opened by the back end's open: holds the broker lock */
    _Atomic uint64_t last_look;    /* rc_now_ns() of the last look (rc__ring_stats) */
    _Atomic int reported;          /* a damaged ring was logged once */
    _Atomic int adopted;           /* rc_storage_reclaim ran: the cursors a previous broker left
                                    * were taken over, so looks may reclaim dead slots */
} rc__ring_store_t;

typedef struct {
    rc_storage_reader_t base;
    struct rc_reader_s *reader;
} rc__ring_reader_t;

/** Opens a manual-ack lossless reader into `r` (allocated by the caller, `r->base.ops` set):
 *  0 or the codes of rc_storage_reader_open. */
int rc__ring_reader_init(rc_storage_t *s, const rc_storage_reader_opts_t *o, rc__ring_reader_t *r);

void rc__ring_close(rc_storage_t *s); /* closes the ring and frees the store */
/* Maps the time index kept in `fd` (the back end opened it; closed by the caller) for the
 * broker's handle and starts the sampler thread; `what` names it in messages. A failure is
 * logged and leaves the store without an index (seeks scan), never fails the open. */
void rc__ring_timeindex_start(rc__ring_store_t *st, int fd, const char *what);
int rc__ring_seek_time(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out);
int rc__ring_scan(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb, void *arg,
                  rc_storage_scan_t *out);
int rc__ring_read_at(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap,
                     size_t *len);
void rc__ring_abort(rc_storage_t *s, rc_storage_claim_t *c);
/** Commits the ring claim at the start of c->priv_ (both ring back ends put it there), quietly
 *  with RC_STORAGE_COMMIT_F_QUIET in c->flags. */
int rc__ring_commit(rc_storage_t *s, rc_storage_claim_t *c);
void rc__ring_wake_sleepers(rc_storage_t *s);
void rc__ring_reader_close(rc_storage_reader_t *r, int keep_cursor);
int rc__ring_prepare_sleep(rc_storage_reader_t *r, const uint32_t **word, uint32_t *val);
int rc__ring_wait_past(rc_storage_reader_t *r, uint64_t pos, int64_t timeout_ns);
void rc__ring_wake(rc_storage_reader_t *r);
int rc__ring_ack(rc_storage_reader_t *r, uint64_t pos);
uint64_t rc__ring_position(const rc_storage_reader_t *r);
uint64_t rc__ring_acked(const rc_storage_reader_t *r);
int rc__ring_resume(rc_storage_reader_t *r);
int rc__ring_find_cursor(rc_storage_t *s, const char *name, uint64_t *pos);
int rc__ring_reclaim(rc_storage_t *s);
void rc__ring_stats(rc_storage_t *s, rc_storage_stats_t *st); /* the ring's part */
int rc__ring_holder(rc_storage_t *s, rc_storage_holder_t *out);
int rc__ring_groups(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                    rc_storage_group_t *out, size_t max);
int rc__ring_readers(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max);

#endif
