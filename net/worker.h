/* A delivery worker process: forked by the supervisor (net/supervisor.h), it owns a share of the
 * triggers, reads each one's events from the broker ring through that trigger's manual-ack
 * lossless reader (the slot belongs to the supervisor, so it survives the worker), filters them
 * with the trigger's compiled route program and pushes them to the subscriber with the io_uring
 * HTTP client: bounded in-flight window, retries with backoff, dead-letter sink, replies written
 * back into the ring, per-trigger counters in the shared stats segment. docs/delivery.md. */
#ifndef RC_NET_WORKER_H
#define RC_NET_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/delivery_policy.h"
#include "net/worker_stats.h"
#include "shm/reader.h"
#include "shm/ring.h"

/** One trigger as the supervisor set it up. */
typedef struct {
    const rc_config_trigger_t *cfg; /* names, subscriber URI, filter, max_inflight */
    rc_delivery_t delivery;         /* effective block (trigger's, else broker's, else defaults) */
    uint32_t broker_idx;
    rc_reader_t *reader;       /* manual-ack lossless reader named after the trigger */
    rc_trigger_stats_t *stats; /* its slot in the shared segment */
    uint32_t stats_slot;
    int worker; /* index of the worker that delivers it */
} rc_worker_trigger_t;

/** One broker: its ring (the supervisor's handle, which readers borrow) and shm name (a worker
 *  opens its own handle to write replies, so a worker dying mid-write is swept). */
typedef struct {
    const char *ns;
    const char *name;
    char ring_name[96];
    rc_ring_t *ring;
} rc_worker_broker_t;

typedef struct {
    int index; /* this worker's number */
    const rc_worker_trigger_t *triggers;
    size_t ntriggers; /* all triggers; the worker delivers those with .worker == index */
    const rc_worker_broker_t *brokers;
    size_t nbrokers;
    uint32_t drain_ms; /* on SIGTERM: longest wait for deliveries in flight */
} rc_worker_plan_t;

/** Runs the worker in a freshly forked child until SIGTERM (then finishes what is in flight,
 *  up to plan->drain_ms) or until the parent dies. Resets the signal dispositions it inherited
 *  and closes inherited descriptors first. Returns the process exit code. */
int rc_worker_run(const rc_worker_plan_t *plan);

#endif
