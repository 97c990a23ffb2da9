/* A delivery worker process: forked by the supervisor (net/delivery/supervisor.h), it owns a share
 * of the triggers. Per broker it reads the ring through one manual-ack lossless reader, its *feed*
 * (the slot belongs to the supervisor, so it survives the worker), routes each event once with one
 * route program compiled over the filters of its triggers on that broker, queues the event on
 * every matching trigger and pushes it to the subscriber with the io_uring HTTP client: bounded
 * in-flight window per trigger, retries with backoff, dead-letter sink, replies written back into
 * the ring, per-trigger counters in the shared stats segment, cursors saved in the store's
 * cursor table. docs/delivery.md. */
#ifndef RC_NET_WORKER_H
#define RC_NET_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/delivery_policy.h"
#include "net/delivery/worker_stats.h"
#include "net/storage/storage.h"

/** One trigger as the supervisor set it up. */
typedef struct {
    const rc_config_trigger_t *cfg; /* names, subscriber URI, filter, max_inflight */
    rc_delivery_t delivery;         /* effective block (trigger's, else broker's, else defaults) */
    uint32_t broker_idx;
    rc_trigger_stats_t *stats; /* its slot in the shared segment (counters) */
    uint32_t stats_slot;
    rc_replica_stats_t *stats_replicas; /* its slot's replica counters (RC_STATS_REPLICAS) */
    rc_storage_cursor_t *cursor; /* its saved cursor (net/delivery/cursor.h) */
    int worker;    /* index of the worker that delivers it */
    uint32_t feed; /* index of its feed in rc_worker_plan_t.feeds */
    uint64_t lag_bytes;         /* its lag limit (rc_config_lag_limit) */
    rc_lag_policy_t lag_policy; /* RC_LAG_DEAD_LETTER, RC_LAG_BLOCK (0: block, never sheds) */
} rc_worker_trigger_t;

/** The reader one worker routes one broker's events from. */
typedef struct {
    rc_storage_reader_t *reader; /* a cursor; acknowledged up to the oldest unfinished event
                          * over the feed's triggers */
    rc_storage_cursor_t *cursor; /* its read cursor, saved (net/delivery/cursor.h) */
    uint32_t link;               /* what an idle trigger of the feed stores as its link */
    uint32_t broker_idx;
    int worker;
} rc_worker_feed_t;

/** One broker: its store (the supervisor's handle, which the feeds borrow; a worker attaches
 *  its own handle to write replies, so a worker dying mid-write is cleaned up after). */
typedef struct {
    const char *ns;
    const char *name;
    rc_storage_t *store;
} rc_worker_broker_t;

typedef struct {
    int index; /* this worker's number */
    const rc_worker_trigger_t *triggers;
    size_t ntriggers; /* all triggers; the worker delivers those with .worker == index */
    const rc_worker_feed_t *feeds;
    size_t nfeeds; /* all feeds; the worker reads those with .worker == index */
    const rc_worker_broker_t *brokers;
    size_t nbrokers;
    uint32_t drain_ms; /* on SIGTERM: longest wait for deliveries in flight */
    pid_t supervisor;  /* the worker dies with it (SIGKILL) */
    _Atomic uint64_t *heartbeat; /* its slot in the stats segment, for the watchdog */
} rc_worker_plan_t;

/** Runs the worker in a freshly forked child until SIGTERM (then finishes what is in flight,
 *  up to plan->drain_ms). It dies with the supervisor (SIGKILL, as it dies: the next broker
 *  process takes over from the saved cursors, and nothing of this one may move them after).
 *  Resets the signal dispositions it inherited and closes inherited descriptors first. Returns
 *  the process exit code. */
int rc_worker_run(const rc_worker_plan_t *plan);

#endif
