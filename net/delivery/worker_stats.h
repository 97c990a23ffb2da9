/* Per-trigger delivery metrics in shared memory: one anonymous MAP_SHARED segment created by the
 * supervisor before it forks workers, so the admin /metrics reads the workers' counters without
 * asking them. Each trigger has a slot; the worker that owns the trigger is the only writer of
 * its counters (relaxed load + store), the supervisor reads them with relaxed loads. A trigger
 * keeps its slot across worker restarts and reloads (its counters keep growing); the counters
 * start again with each broker process, as Prometheus counters may. The cursors, which must
 * outlive the broker process, are in the store's cursor table (net/delivery/cursor.h). */
#ifndef RC_NET_WORKER_STATS_H
#define RC_NET_WORKER_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/** Upper bounds (seconds) of the delivery latency histogram; +Inf is implied. */
#define RC_DELIVERY_BUCKETS 16
/** Upper bounds (seconds) of the end-to-end latency histogram (longer: retries count). */
#define RC_E2E_BUCKETS 16
/** Upper bounds (seconds) of the queue wait histogram (queued on the trigger to first attempt). */
#define RC_WAIT_BUCKETS 16

/** Delivery outcomes kept per trigger (the latest ones), and the bytes of an event id kept. */
#define RC_OUTCOMES       16
#define RC_OUTCOME_ID_MAX 48

/** One attempt to the subscriber, in a trigger's ring of recent outcomes. A seqlock: `seq` is
 *  odd while the owning worker writes the entry, so a reader (the admin) that sees it change or
 *  odd skips the entry rather than mix two attempts. Every field is an atomic word, so there is
 *  no data race, only a possibly torn entry, which the seq check discards. */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t outcome;                   /* rc_worker_stats_outcome: result and time */
    _Atomic uint64_t dur_ns;                    /* the attempt's duration */
    _Atomic uint64_t id[RC_OUTCOME_ID_MAX / 8]; /* the event id, NUL-padded, cut at 48 bytes */
} rc_outcome_slot_t;

/** Dead letters kept per trigger (the latest ones), for a replay (docs/dashboard.md). */
#define RC_DEAD_LETTERS 8

/** One event the dead-letter sink accepted, where it was in the ring. A seqlock as
 *  rc_outcome_slot_t. */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint64_t pos;    /* its position in the broker's ring */
    _Atomic uint64_t evseq;  /* its sequence number there */
    _Atomic uint64_t ms;     /* wall clock when the sink accepted it */
    _Atomic uint64_t result; /* the subscriber's last result (rc_worker_stats_outcome packing) */
    _Atomic uint64_t id[RC_OUTCOME_ID_MAX / 8];
} rc_dead_letter_slot_t;

/** A dead letter as a reader gets it. */
typedef struct {
    uint64_t pos, seq;
    int64_t ms;
    int result; /* the subscriber's last answer before the sink: an HTTP status or a code */
    char id[RC_OUTCOME_ID_MAX + 1];
} rc_dead_letter_t;

/** The recent window of the delivery latency: two halves of RC_LATENCY_HALF_S seconds of the
 *  monotonic clock each; the quantile over the current and the previous half covers the last
 *  RC_LATENCY_HALF_S to 2 * RC_LATENCY_HALF_S seconds. */
#define RC_LATENCY_HALF_S 30

/** An outcome as a reader gets it. */
typedef struct {
    int result; /* an HTTP status, or a negative code (rc_strerror) */
    int64_t ms; /* wall clock when it ended */
    uint64_t dur_ns;
    char id[RC_OUTCOME_ID_MAX + 1];
} rc_outcome_t;

typedef struct {
    /* Identity: written by the supervisor before any worker uses the slot. */
    uint32_t used;
    uint32_t broker_idx;
    char ns[RC_CONFIG_NAME_MAX + 1];
    char name[RC_CONFIG_NAME_MAX + 1];
    char broker[RC_CONFIG_NAME_MAX + 1];
    /* Written by the owning worker. */
    _Atomic uint64_t delivered;       /* events the subscriber accepted (2xx) */
    _Atomic uint64_t failed;          /* events whose delivery failed for good (before DLQ) */
    _Atomic uint64_t retried;         /* retry attempts (to the subscriber or the DLQ) */
    _Atomic uint64_t dead_lettered;   /* events the dead-letter sink accepted */
    _Atomic uint64_t dropped;         /* failed events lost: no sink, or the sink failed too */
    _Atomic uint64_t replies;         /* reply events written into the ring */
    _Atomic uint64_t replies_expired; /* replies dropped because their TTL reached 0 */
    _Atomic uint64_t replies_delayed; /* replies that found the ring full and waited in the
                                       * worker's reply queue (most are stored later) */
    _Atomic uint64_t replies_failed;  /* replies given up: never to be stored in the ring
                                       * (= replies_dead_lettered + replies_dropped) */
    _Atomic uint64_t replies_dead_lettered; /* of those, accepted by the dead-letter sink */
    _Atomic uint64_t replies_dropped;       /* of those, lost: no sink, or the sink failed */
    _Atomic uint64_t cesql_errors;          /* CESQL evaluation errors of the trigger's filter */
    _Atomic uint64_t lagged;                /* events given up because the trigger fell past its lag
                                             * limit (dead-letter policy); each counted once */
    _Atomic uint64_t lagged_dropped; /* of those, lost: no sink, over the copy budget, the sink
                                      * failed, or the worker stopped first */
    /* Dapr subscriptions' own outcomes (docs/delivery.md, "Dapr subscriptions"); each such
     * event is then dead_lettered (stored on the dead-letter topic) or dropped. */
    _Atomic uint64_t dapr_drop;      /* the app answered {"status":"DROP"} */
    _Atomic uint64_t dapr_not_found; /* the app answered 404 */
    _Atomic uint64_t dapr_unrouted;  /* no routing rule matched and there is no default path */
    _Atomic uint64_t expired;        /* past its `expiration` when it was to be sent */
    /* bulkSubscribe: requests, each a batch (its events count one by one in the others) */
    _Atomic uint64_t dapr_bulk_requests;
    _Atomic uint64_t inflight;       /* gauge: events in the window (sent or waiting for a retry) */
    _Atomic uint64_t replies_queued; /* gauge: replies the worker holds, waiting for ring space
                                      * or on their way to the dead-letter sink */
    _Atomic uint64_t latency_bucket[RC_DELIVERY_BUCKETS + 1]; /* not cumulative; last = +Inf */
    _Atomic uint64_t latency_sum_ns;
    _Atomic uint64_t latency_count;
    /* End to end: the event's arrival in the ring (knativearrivaltime) to its 2xx. */
    _Atomic uint64_t e2e_bucket[RC_E2E_BUCKETS + 1]; /* not cumulative; last = +Inf */
    _Atomic uint64_t e2e_sum_ns;
    _Atomic uint64_t e2e_count;
    /* Back-pressure (docs/delivery.md, "Which control holds a trigger back"): the time from an
     * event's queueing on the trigger to its first attempt (window full, rate limit), and the
     * time the rate limit held an attempt that was due. */
    _Atomic uint64_t wait_bucket[RC_WAIT_BUCKETS + 1]; /* not cumulative; last = +Inf */
    _Atomic uint64_t wait_sum_ns;
    _Atomic uint64_t wait_count;
    _Atomic uint64_t throttled_ns;     /* counter: time throttled by ringcast.dev/rate-limit */
    _Atomic uint64_t rate_limit_milli; /* its rate limit in 1/1000 events/s (0: none) */
    _Atomic uint64_t max_inflight;     /* its window (ringcast.dev/max-inflight) */
    /* For the admin API's status (net/admin.c): the latest attempt to the subscriber
     * (not the dead-letter sink) and the latest that failed, as rc_worker_stats_outcome packs
     * them, 0 before any (rc_worker_stats_attempt, the owning worker). */
    _Atomic uint64_t last_attempt;
    _Atomic uint64_t last_error;
    /* Paused by an operator (the admin API's .../pause): the wall-clock milliseconds of the
     * pause, 0 when not paused. Written by the supervisor's process (the admin), read by the
     * owning worker before it sends (net/delivery/worker.c, run_timers): no reload needed. It
     * is kept with the slot across reloads and worker restarts, not across broker restarts. */
    _Atomic uint64_t paused_ms;
    /* The latest RC_OUTCOMES attempts to the subscriber (not the dead-letter sink): entry
     * n % RC_OUTCOMES holds the n-th; `outcomes_n` counts them (the owning worker writes). */
    _Atomic uint64_t outcomes_n;
    rc_outcome_slot_t outcomes[RC_OUTCOMES];
    /* The latest RC_DEAD_LETTERS events its dead-letter sink accepted (the owning worker
     * writes), as the outcomes: `dead_n` counts them. */
    _Atomic uint64_t dead_n;
    rc_dead_letter_slot_t dead[RC_DEAD_LETTERS];
    /* A replay request (the admin API's .../replay, docs/dashboard.md): the admin writes the
     * event's position and sequence number, then moves replay_req on (release); the owning
     * worker, seeing replay_req != replay_done, reads the event at that position again, queues
     * it for this trigger alone, sets replay_result (0, or a negative code: no longer in the
     * ring) and then replay_done = replay_req (release). One at a time. */
    _Atomic uint64_t replay_pos, replay_seq;
    _Atomic uint64_t replay_req, replay_done;
    _Atomic int64_t replay_result;
    _Atomic uint64_t replayed; /* counter: replays queued by the worker */
    /* The recent latency window: half h holds the latencies observed while the monotonic
     * clock's second / RC_LATENCY_HALF_S was win_epoch[h] (the owning worker writes). */
    _Atomic uint64_t win_epoch[2];
    _Atomic uint64_t win_bucket[2][RC_DELIVERY_BUCKETS + 1];
    int64_t added_ms; /* wall clock when the supervisor gave the slot to its trigger */
} __attribute__((aligned(64))) rc_trigger_stats_t;

/** Most replicas a trigger has counters for (a Dapr app's endpoints). */
#define RC_STATS_REPLICAS RC_CONFIG_DAPR_REPLICAS_MAX

/** One replica of a trigger with replicas (net/delivery/replica.c): written by the worker that
 *  delivers the trigger, rendered by the supervisor, which knows the replicas' URLs. Each
 *  trigger slot has a block of RC_STATS_REPLICAS of them in a region after the trigger slots;
 *  only the blocks of triggers with replicas are ever touched (their pages alone are backed). */
typedef struct {
    _Atomic uint64_t delivered; /* events it accepted */
    _Atomic uint64_t failed;    /* attempts that failed there (refused, error status, timeout) */
    _Atomic uint64_t inflight;  /* gauge: attempts sent to it and not answered */
} rc_replica_stats_t;

typedef struct {
    _Atomic uint64_t worker_restarts; /* written by the supervisor */
    _Atomic uint64_t reloads;         /* successful SIGHUP reloads */
    _Atomic uint64_t reload_errors;   /* rejected reloads */
    /* rc_now_ns() of each worker's latest loop turn, 0 before its first one (the supervisor
     * clears it when it forks the worker); written by that worker, read by the watchdog. */
    _Atomic uint64_t heartbeat[RC_CONFIG_WORKERS_MAX];
    uint32_t slots;
    uint32_t slots_hi;      /* slots handed out so far (supervisor): rendering stops there, so
                             * the pages of slots never used are never touched */
    rc_trigger_stats_t t[]; /* `slots` entries */
} rc_worker_stats_t;

/** Worker `idx` is alive at `now_ns` (rc_now_ns()): a relaxed store once per loop turn (the
 *  watchdog only compares times). NULL is a no-op. That worker only. */
static inline void rc_worker_stats_beat(_Atomic uint64_t *heartbeat, uint64_t now_ns)
{
    if (heartbeat != NULL)
        atomic_store_explicit(heartbeat, now_ns, memory_order_relaxed);
}

/** An attempt's outcome and wall-clock time in one word, so that a reader never pairs one
 *  attempt's outcome with another's time: milliseconds since the epoch in the high 42 bits
 *  (until 2109), `result` (an HTTP status or a negative code, rc_strerror) offset by 2^21 in the
 *  low 22. Never 0. */
static inline uint64_t rc_worker_stats_outcome(int result, int64_t wall_ns)
{
    uint64_t ms = wall_ns > 0 ? (uint64_t)wall_ns / 1000000u : 0;
    return ms << 22 | ((uint64_t)((int64_t)result + (1 << 21)) & ((1u << 22) - 1));
}

/** The result and the wall-clock milliseconds of an outcome packed by rc_worker_stats_outcome. */
static inline void rc_worker_stats_unpack(uint64_t o, int *result, int64_t *ms)
{
    *result = (int)((int64_t)(o & ((1u << 22) - 1)) - (1 << 21));
    *ms = (int64_t)(o >> 22);
}

/** Records an attempt to the subscriber that ended with `result` (an HTTP status, or a negative
 *  code: no answer): the latest attempt, and the latest error when it is not a 2xx. Relaxed
 *  stores: the admin reads whole words. The owning worker only. */
static inline void rc_worker_stats_attempt(rc_trigger_stats_t *t, int result, int64_t wall_ns)
{
    uint64_t o = rc_worker_stats_outcome(result, wall_ns);
    atomic_store_explicit(&t->last_attempt, o, memory_order_relaxed);
    if (result < 200 || result > 299)
        atomic_store_explicit(&t->last_error, o, memory_order_relaxed);
}

/** Whether trigger `t` is paused (a relaxed load: the worker checks it every loop turn). */
static inline int rc_worker_stats_paused(const rc_trigger_stats_t *t)
{
    return atomic_load_explicit(&t->paused_ms, memory_order_relaxed) != 0;
}

/** Records an attempt to the subscriber in the trigger's ring of recent outcomes: `result` as
 *  rc_worker_stats_attempt takes it, ended at `wall_ns`, lasting `dur_ns`, for the event
 *  id[0..len) (cut at RC_OUTCOME_ID_MAX bytes). The owning worker only. */
void rc_worker_stats_record(rc_trigger_stats_t *t, int result, int64_t wall_ns, uint64_t dur_ns,
                            const char *id, size_t len);

/** Copies up to `cap` of the trigger's recent outcomes into `out`, newest first, and returns
 *  how many. An entry the worker is rewriting at that moment is left out. Any thread. */
size_t rc_worker_stats_outcomes(const rc_trigger_stats_t *t, rc_outcome_t *out, size_t cap);

/** Records that the dead-letter sink accepted the event id[0..len) at ring position `pos`,
 *  sequence number `seq`, whose last attempt to the subscriber ended with `result`. The owning
 *  worker only. */
void rc_worker_stats_dead_letter(rc_trigger_stats_t *t, const char *id, size_t len, uint64_t pos,
                                 uint64_t seq, int result, int64_t wall_ns);

/** Copies up to `cap` of the trigger's recent dead letters into `out`, newest first; returns
 *  how many. Any thread. */
size_t rc_worker_stats_dead_letters(const rc_trigger_stats_t *t, rc_dead_letter_t *out, size_t cap);

/** Maps a zeroed shared anonymous segment with `slots` trigger slots (and their replica blocks).
 *  Returns 0 or -errno. */
int rc_worker_stats_create(uint32_t slots, rc_worker_stats_t **out);

/** The block of RC_STATS_REPLICAS replica counters of trigger slot `slot`. */
rc_replica_stats_t *rc_worker_stats_replicas(rc_worker_stats_t *s, uint32_t slot);

/** The replicas of one trigger, for rc_worker_stats_render_replicas: its slot and the replicas'
 *  URLs (borrowed), in the order the worker numbers them. */
typedef struct {
    uint32_t slot;
    const char *const *urls;
    size_t n; /* at most RC_STATS_REPLICAS are rendered */
} rc_replica_labels_t;

/** Renders the replica counters of the `n` triggers in `list` (ringcast_trigger_replica_*, with
 *  the trigger's labels and replica="URL") in the Prometheus text format; nothing when n is 0.
 *  Returns the length written or needed (snprintf-like). Any thread. */
size_t rc_worker_stats_render_replicas(const rc_worker_stats_t *s, const rc_replica_labels_t *list,
                                       size_t n, char *buf, size_t cap);

/** Unmaps it. NULL is a no-op. */
void rc_worker_stats_destroy(rc_worker_stats_t *s);

/** The q-quantile (0 < q <= 1) in seconds of trigger `t`'s delivery latency histogram since its
 *  slot was given (the buckets of ringcast_trigger_delivery_seconds, interpolated as
 *  Prometheus' histogram_quantile does), and in `count` the latencies it holds; -1 when it holds
 *  none. Relaxed loads: a histogram being written may be off by the observations under way.
 *  Any thread. */
double rc_worker_stats_latency_quantile(const rc_trigger_stats_t *t, double q, uint64_t *count);

/** The same over the recent window (RC_LATENCY_HALF_S), at monotonic time `now_ns`. */
double rc_worker_stats_recent_quantile(const rc_trigger_stats_t *t, double q, uint64_t now_ns,
                                       uint64_t *count);

/** The q-quantile of a histogram `b` of RC_DELIVERY_BUCKETS + 1 counts over the delivery
 *  latency bounds (as rc_worker_stats_latency_quantile); -1 when empty. For tests. */
double rc_worker_stats_quantile_of(const uint64_t *b, double q, uint64_t *count);

/** Records one delivery latency, also in the recent window at monotonic time `now_ns` (the
 *  owning worker only). */
void rc_worker_stats_observe_at(rc_trigger_stats_t *t, uint64_t ns, uint64_t now_ns);

/** Records one delivery latency (the owning worker only). */
void rc_worker_stats_observe(rc_trigger_stats_t *t, uint64_t ns);

/** Records one queue wait of `ns` (negative counts as 0). The owning worker only. */
void rc_worker_stats_observe_wait(rc_trigger_stats_t *t, int64_t ns);

/** Records one end-to-end latency: `now_ns` minus `arrival_ns` (both Unix ns; a negative
 *  difference, a clock stepped back, counts as 0). The owning worker only. */
void rc_worker_stats_observe_e2e(rc_trigger_stats_t *t, int64_t arrival_ns, int64_t now_ns);

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
