/* The publisher of the bench harness: one thread, epoll, N keep-alive TCP connections to one
 * server, each with up to `depth` requests in flight (1 = request/response; more = pipelined).
 *  - closed loop (rate 0): every connection is kept full; maximum throughput.
 *  - open loop (rate R events/s): request i is due at start + i/R whatever happened before;
 *    when no connection is free it waits, and its latency still counts from its due time, so a
 *    server stall shows in the percentiles (no coordinated omission).
 * Every event carries the extensions `rcbts` (CLOCK_MONOTONIC ns of its due/send time) and
 * `rcbseq` (0, 1, 2, ... per run) so consumers can measure publish-to-delivery latency and check
 * that every acknowledged event arrived. Protocols: HTTP/1.1 CloudEvents in binary, structured
 * or batch mode; Redis RESP `XADD`; NATS `PUB` followed by `PING` (the `PONG` acknowledges); the
 * Dapr publish API, one event per request or a bulk of `batch` entries, whose JSON data carries
 * the stamps as members `rcbts` and `rcbseq` (the broker wraps it in a CloudEvent envelope, so
 * they reach a subscriber inside `data`). */
#ifndef RC_BENCH_LOADGEN_H
#define RC_BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "bench/hist.h"

typedef enum {
    RC_LG_HTTP_BINARY = 0,
    RC_LG_HTTP_STRUCTURED,
    RC_LG_HTTP_BATCH,
    RC_LG_RESP_XADD,
    RC_LG_NATS_PUB,
    RC_LG_DAPR_PUBLISH, /* POST {path} (/v1.0/publish/{pubsub}/{topic}), application/json data */
    RC_LG_DAPR_BULK,    /* POST {path} (/v1.0-alpha1/publish/bulk/...), `batch` entries */
} rc_lg_proto_t;

typedef struct {
    rc_lg_proto_t proto;
    int port;         /* on 127.0.0.1 */
    const int *ports; /* when nports > 0: connection i goes to ports[i % nports] instead */
    int nports;
    const char *path;  /* HTTP request target; default "/default/default" */
    const char *topic; /* Redis stream key / NATS subject prefix; default "bench" */
    int conns;         /* connections (1-1024) */
    int depth;         /* requests in flight per connection (1-1024) */
    double rate;       /* open loop: events/s; 0 = closed loop */
    double seconds;    /* publishing time */
    size_t size;       /* data bytes per event (>= 16) */
    int batch;         /* events per request in HTTP batch mode and Dapr bulk (1-1000) */
    int types;         /* distinct event types, used round-robin (1-1000) */
    uint64_t maxlen;   /* Redis: XADD MAXLEN ~ this (0: no trimming) */
} rc_lg_opts_t;

#define RC_LG_MAX_STATUS 16

typedef struct {
    uint64_t requests;     /* answered */
    uint64_t events_sent;  /* events in requests written */
    uint64_t events_acked; /* events in requests answered with success */
    uint64_t errors;       /* requests answered with a failure, or lost with their connection */
    int status[RC_LG_MAX_STATUS]; /* HTTP status, 0 = non-HTTP success, 1 = error reply,
                                     -1 = connection lost */
    uint64_t status_count[RC_LG_MAX_STATUS];
    int nstatus;
    rc_hist_t lat;      /* request -> answer (open loop: from the due time), ns */
    double elapsed_s;   /* first due time to the last answer */
    double publish_s;   /* the publishing window */
    double cpu_s;       /* this thread's CPU time */
    uint8_t *acked;     /* acked[seq] = 1 when the event with that seq was acknowledged */
    uint64_t seq_count; /* entries of acked (= events_sent) */
    uint64_t start_ns;  /* CLOCK_MONOTONIC of the first due time */
} rc_lg_result_t;

/** Fills `o` with defaults (binary HTTP, 16 connections, depth 1, closed loop, 1 s, 128 bytes,
 *  batch 100, 4 types, maxlen 0). */
void rc_lg_opts_init(rc_lg_opts_t *o);

/** Runs the load until `seconds` passed (or `*stop` becomes non-zero), then waits up to 5 s for
 *  the answers in flight. Fills `res` (caller frees res->acked with free()). Returns 0, or a
 *  negative code with a message in `err` when it could not connect or every connection was lost.
 *  Any one thread. */
int rc_lg_run(const rc_lg_opts_t *o, volatile int *stop, rc_lg_result_t *res, char *err,
              size_t errlen);

/** Name of a protocol for messages ("http-binary", ...). */
const char *rc_lg_proto_name(rc_lg_proto_t p);

/** Monotonic nanoseconds (the clock of the `rcbts` stamps). */
uint64_t rc_lg_now_ns(void);

#endif
