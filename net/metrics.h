/* Ingress metrics. Each ingress loop owns one rc_ingress_metrics_t and is its only writer
 * (plain relaxed load + store, no locked instruction on the request path); the admin thread
 * reads all of them with relaxed loads and renders the Prometheus text format. */
#ifndef RC_NET_METRICS_H
#define RC_NET_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metric.h"
#include "net/dedup.h"
#include "net/storage/storage.h"

/** Why a request was refused; each is a `reason` label of ringcast_ingress_rejected_total. */
typedef enum {
    RC_REJ_INVALID_EVENT = 0, /* 400 from CloudEvents decoding/validation */
    RC_REJ_MALFORMED_HTTP,    /* 400 from the HTTP parser */
    RC_REJ_NOT_FOUND,         /* 404 */
    RC_REJ_METHOD,            /* 405 */
    RC_REJ_TIMEOUT,           /* 408 */
    RC_REJ_TOO_LARGE,         /* 413 */
    RC_REJ_HEADERS_TOO_LARGE, /* 414, 431 */
    RC_REJ_MEDIA_TYPE,        /* 415 */
    RC_REJ_EXPECTATION,       /* 417 */
    RC_REJ_RING_FULL,         /* 429 */
    RC_REJ_UNAVAILABLE,       /* 503: shutting down, connection limit, out of memory */
    RC_REJ_INTERNAL,          /* 500 */
    RC_REJ_COUNT
} rc_reject_reason_t;

/** Upper bounds (seconds) of the ingest latency histogram buckets; +Inf is implied. */
#define RC_LATENCY_BUCKETS 14

typedef struct {
    _Atomic uint64_t requests;        /* ingress requests answered (any status) */
    _Atomic uint64_t events_accepted; /* events stored (a batch counts each event) */
    _Atomic uint64_t bytes_accepted;  /* request body bytes of accepted requests */
    _Atomic uint64_t rejected[RC_REJ_COUNT];
    _Atomic uint64_t connections_opened;
    _Atomic uint64_t connections_closed;
    _Atomic uint64_t latency_bucket[RC_LATENCY_BUCKETS + 1]; /* not cumulative; last = +Inf */
    _Atomic uint64_t latency_sum_ns;
    _Atomic uint64_t latency_count;
} __attribute__((aligned(64))) rc_ingress_metrics_t;

/** Copies `from` into `to` counter by counter (relaxed atomic loads and stores: the loops keep
 *  counting meanwhile). */
void rc_metrics_copy(rc_ingress_metrics_t *to, const rc_ingress_metrics_t *from);

/** Records one ingest latency in nanoseconds. */
void rc_metrics_observe_latency(rc_ingress_metrics_t *m, uint64_t ns);

/** Maps an HTTP status the server or ingress answered with to a reject reason; `parser_error`
 *  tells a malformed request (400 from the HTTP layer) from an invalid event. */
rc_reject_reason_t rc_metrics_reason_for_status(int status, int parser_error);

/** Label value of a reason ("invalid_event", "ring_full", ...). */
const char *rc_metrics_reason_name(rc_reject_reason_t r);

/** Local readers shown per broker (/metrics, the status API). */
#define RC_METRICS_READERS_MAX 64

/** Per-broker ring gauges for rendering. */
typedef struct {
    const char *ns;
    const char *name;
    uint64_t used_bytes;
    uint64_t capacity_bytes;
    uint64_t events;   /* events ever committed (the ring's next sequence number) */
    uint32_t readers;  /* attached readers */
    uint32_t lossless; /* of which lossless */
    uint64_t refused;  /* appends refused because the ring was full (ingress and replies) */
    /* The lossless reader that holds producers back (its tail); holder NULL: none. */
    const char *holder;         /* its name ("feed~w0", "g:billing", a local reader's) */
    const char *holder_trigger; /* for a worker's feed: its oldest trigger "ns/name", else "" */
    uint32_t holder_pid;
    uint64_t holder_lag_bytes;
    uint64_t holder_lag_events;
    /* Local readers attached to the ring (not feeds or groups): at most
     * RC_METRICS_READERS_MAX of them are shown. */
    const rc_storage_local_reader_t *readers_list;
    size_t nreaders;
    /* Consumer groups (`limit` effective: 0 = block). */
    const rc_storage_group_t *groups;
    size_t ngroups;
    /* Where the events are kept (rc_storage_stats_t): "memory" or "file", its durability, the
     * ring file's size (0: none) and the corrupt records found in it. */
    const char *storage;
    const char *durability;
    uint64_t file_bytes;
    uint64_t corrupt;
    /* Durability batch and sync (docs/durability.md): fdatasyncs, their time, events on disk. */
    uint64_t fsyncs, fsync_ns, durable_events;
    /* Redis stores (docs/scaleout.md): appends acknowledged and refused, mirror copies and
     * skipped entries. */
    uint64_t redis_acked, redis_refused, mirrored, mirror_skipped;
    uint64_t mirror_lag_entries, mirror_lag_ms, mirror_trimmed, redis_aged; /* the mirror's lag */
    int redis_down; /* its Redis does not answer or refuses appends */
    /* Deduplication (ringcast.dev/dedup-window): dedup 0 when off. */
    int dedup;
    rc_dedup_stats_t dedup_st;
} rc_ring_gauge_t;

/** Renders the Prometheus text format (version 0.0.4) of `n` loops' metrics and `nrings` ring
 *  gauges into `buf`. Returns the length written, or the length needed when it exceeds `cap`
 *  (snprintf-like; the output is then truncated). Any thread. */
size_t rc_metrics_render(const rc_ingress_metrics_t *loops, size_t n, const rc_ring_gauge_t *rings,
                         size_t nrings, char *buf, size_t cap);

/** Renders ringcast_build_info and the Prometheus clients' process_* metrics of the calling
 *  process (CPU, memory, start time, read from /proc now; the descriptor ones
 *  are serve.c's). Same return as
 *  rc_metrics_render. */
size_t rc_metrics_process(char *buf, size_t cap);

#endif
