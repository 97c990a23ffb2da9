/* A minimal HTTP/1.1 sink for benchmarks: a forked child process on loopback, one epoll loop,
 * answering every request with a fixed status and an empty body, keep-alive. It stands in for
 * a subscriber when nginx is not installed. */
#ifndef RC_BENCH_SINK_SERVER_H
#define RC_BENCH_SINK_SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/hist.h"

/** Starts the sink on 127.0.0.1 with a free port, answering `status` to every request.
 *  @return 0 with the port and child pid, or -errno */
int rc_bench_sink_start(int status, int *port, pid_t *pid);

/** Stops a sink started by rc_bench_sink_start (SIGTERM to that pid, then waits for it). */
void rc_bench_sink_stop(pid_t pid);

/* What a counting sink saw, in a shared mapping the sink process writes and the harness reads.
 * Only the sink writes. The three atomics are progress counters the harness polls while the
 * sink runs (relaxed: nothing else is read on their strength); every other field is read only
 * after rc_bench_csink_stop has reaped the sink (waitpid orders its writes before the reads). */
typedef struct {
    _Atomic uint64_t unique;   /* distinct rcbseq numbers received */
    _Atomic uint64_t received; /* requests received, duplicates and unstamped ones included */
    _Atomic uint64_t last_rx_ns;
    uint64_t dups;
    uint64_t bad;      /* requests without readable ce-rcbts/ce-rcbseq headers (or seq too big) */
    uint64_t seen_cap; /* sequence numbers the bitmap holds */
    rc_hist_t lat;     /* now - rcbts at receipt, ns */
    uint8_t seen[];    /* bit per sequence number */
} rc_sink_stats_t;

typedef struct {
    int port;
    pid_t pid;
    rc_sink_stats_t *stats;
    size_t map_bytes;
} rc_bench_csink_t;

/** Starts a counting sink: like rc_bench_sink_start (answers 202), and for every request reads
 *  the `ce-rcbts` and `ce-rcbseq` headers the load generator stamps (without them: the members
 *  `"rcbts"` and `"rcbseq"` of a JSON body, a structured CloudEvent or a Dapr delivery),
 *  records the latency and marks the sequence number (up to `max_seq` of them). As a Dapr app
 *  replica it answers `GET /dapr/subscribe` with `[]` (no programmatic subscriptions) and other
 *  `GET /dapr/...` with 404, uncounted. The child is registered with bench/procs.c. Returns 0 or
 *  -errno. Call before starting threads. */
int rc_bench_csink_start(rc_bench_csink_t *s, uint64_t max_seq);

/** 1 when the sink received `seq`. */
int rc_bench_csink_seen(const rc_bench_csink_t *s, uint64_t seq);

/** Stops the sink process (its stats stay readable until rc_bench_csink_free). */
void rc_bench_csink_stop(rc_bench_csink_t *s);

/** Stops it if needed and unmaps the stats. */
void rc_bench_csink_free(rc_bench_csink_t *s);

#endif
