/* Per-trigger delivery metrics in shared memory: one anonymous MAP_SHARED segment created by the
 * supervisor before it forks workers, so the admin /metrics reads the workers' counters without
 * asking them. Each trigger has a slot; the worker that owns the trigger is the only writer of
 * its counters (relaxed load + store), the supervisor reads them with relaxed loads. A trigger
 * keeps its slot across worker restarts and reloads (its counters keep growing). */
#ifndef RC_NET_WORKER_STATS_H
#define RC_NET_WORKER_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/** Upper bounds (seconds) of the delivery latency histogram; +Inf is implied. */
#define RC_DELIVERY_BUCKETS 16

typedef struct {
    /* Identity: written by the supervisor before any worker uses the slot. */
    uint32_t used;
    uint32_t broker_idx;
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    char broker[RC_CONFIG_NAME_MAX + 1];
    /* Written by the owning worker. */
    _Atomic uint64_t delivered;      /* events the subscriber accepted (2xx) */
    _Atomic uint64_t failed;         /* events whose delivery failed for good (before DLQ) */
    _Atomic uint64_t retried;        /* retry attempts (to the subscriber or the DLQ) */
    _Atomic uint64_t dead_lettered;  /* events the dead-letter sink accepted */
    _Atomic uint64_t dropped;        /* failed events lost: no sink, or the sink failed too */
    _Atomic uint64_t replies;        /* reply events written into the ring */
    _Atomic uint64_t replies_expired; /* replies dropped because their TTL reached 0 */
    _Atomic uint64_t replies_failed; /* replies that could not be stored (ring full) */
    _Atomic uint64_t cesql_errors;   /* CESQL evaluation errors of the trigger's filter */
    _Atomic uint64_t inflight;       /* gauge: events in the window (sent or waiting for a retry) */
    /* The trigger's cursor: every event with a lower sequence number is finished for it. While
     * `follows_feed` is 1 the trigger has nothing unfinished and its cursor is the later of this
     * one and its feed's read cursor (rc_feed_stats_t). */
    _Atomic uint64_t cursor_seq;
    _Atomic uint64_t cursor_pos; /* position of the event at cursor_seq */
    _Atomic uint32_t follows_feed;
    uint32_t reserved;
    _Atomic uint64_t latency_bucket[RC_DELIVERY_BUCKETS + 1]; /* not cumulative; last = +Inf */
    _Atomic uint64_t latency_sum_ns;
    _Atomic uint64_t latency_count;
} __attribute__((aligned(64))) rc_trigger_stats_t;

/** The read cursor of one feed (the reader a worker routes one broker's events from): every
 *  event below `read_seq` has been routed to the feed's triggers by the worker process that
 *  reads the feed now (a new worker starts it again at 0). Written by that worker only. */
typedef struct {
    _Atomic uint64_t read_seq;
    _Atomic uint64_t read_pos; /* position of the event at read_seq */
    /* rc_now_ns() of the reading worker's latest loop turn, 0 before its first one (the
     * supervisor clears it when it forks the worker); its watchdog reads it. */
    _Atomic uint64_t heartbeat;
} __attribute__((aligned(64))) rc_feed_stats_t;

/** The worker reading feed `f` is alive at `now_ns` (rc_now_ns()). A relaxed store, once per
 *  loop turn, to a line the worker writes anyway (read_seq): the watchdog only compares times.
 *  NULL is a no-op. The reading worker only. */
static inline void rc_worker_stats_beat(rc_feed_stats_t *f, uint64_t now_ns)
{
    if (f != NULL)
        atomic_store_explicit(&f->heartbeat, now_ns, memory_order_relaxed);
}

typedef struct {
    _Atomic uint64_t worker_restarts; /* written by the supervisor */
    _Atomic uint64_t reloads;         /* successful SIGHUP reloads */
    _Atomic uint64_t reload_errors;   /* rejected reloads */
    uint32_t slots;
    uint32_t feed_slots;    /* rc_feed_stats_t entries after the trigger slots */
    uint32_t slots_hi;      /* slots handed out so far (supervisor): rendering stops there, so
                             * the pages of slots never used are never touched */
    uint32_t reserved;
    rc_trigger_stats_t t[]; /* `slots` entries */
} rc_worker_stats_t;

/** Feed slot `i` (< s->feed_slots). */
rc_feed_stats_t *rc_worker_stats_feed(const rc_worker_stats_t *s, uint32_t i);

/** Maps a zeroed shared anonymous segment with `slots` trigger slots and `feed_slots` feed
 *  slots. Returns 0 or -errno. */
int rc_worker_stats_create(uint32_t slots, uint32_t feed_slots, rc_worker_stats_t **out);

/** Unmaps it. NULL is a no-op. */
void rc_worker_stats_destroy(rc_worker_stats_t *s);

/** Records one delivery latency (the owning worker only). */
void rc_worker_stats_observe(rc_trigger_stats_t *t, uint64_t ns);

/** A trigger's cursor as its slot and the slot of the feed it is routed by say (see
 *  rc_trigger_stats_t): every event below `*seq` (at `*pos`) is finished for the trigger. Any
 *  process. */
void rc_worker_stats_cursor(const rc_trigger_stats_t *t, const rc_feed_stats_t *feed,
                            uint64_t *seq, uint64_t *pos);

/** Lag input for rendering: events and ring bytes between the trigger's cursor and the head. */
typedef struct {
    uint64_t events;
    uint64_t bytes;
} rc_trigger_lag_t;

/** Renders the used slots in the Prometheus text format, `lag[i]` for slot i (NULL: no lag
 *  lines). Returns the length written or needed (snprintf-like). Any thread. */
size_t rc_worker_stats_render(const rc_worker_stats_t *s, const rc_trigger_lag_t *lag, char *buf,
                              size_t cap);

#endif
