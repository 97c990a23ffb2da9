/* One measured run of a comparison scenario: start the system's server, attach its consumers,
 * drive the load, wait for the consumers to drain, read the server's CPU time and peak RSS,
 * stop everything, and fill one report row. */
#ifndef RC_BENCH_RUN_H
#define RC_BENCH_RUN_H

#include <stdint.h>

#include "bench/hist.h"
#include "bench/loadgen.h"
#include "bench/peers.h"
#include "bench/report.h"

typedef struct {
    rc_peer_kind_t system;
    rc_lg_opts_t load;         /* port and protocol are set by rc_bench_run from the system */
    int http_mode;             /* for ringcast/nginx: RC_LG_HTTP_BINARY, _STRUCTURED or _BATCH */
    int consumers;             /* 0: publish only (latency = request -> answer) */
    int compete;               /* consumers share one group (each event to one of them): a ringcast
                                * consumer group, one Redis group; throughput counts their union */
    double drain_s;            /* longest wait without progress for consumers to catch up (2) */
    uint64_t ring_bytes;       /* ringcast ring size (64 MiB) */
    uint32_t reader_spin;      /* ringcast shm readers: polls before sleeping (0: reader default) */
    uint32_t reader_linger_us; /* ringcast shm readers: linger after a wake (0: none) */
    const char *label;         /* system name in the report; NULL: the peer's name */
    rc_bench_yaml_fn config;   /* ringcast: documents after the Broker (Dapr kinds, ...); NULL:
                                * none */
    void *config_arg;
    const char *store;        /* ringcast: a file store with this durability (none, batch, sync);
                               * redis: an AOF with this appendfsync (always, everysec); NULL: the
                               * memory ring / no persistence */
    const char *store_parent; /* where the store's temporary directory goes (NULL: $TMPDIR or
                               * /tmp) */
} rc_run_opts_t;

/** Defaults: ringcast, loadgen defaults, binary, no consumers, 2 s drain, 64 MiB ring. */
void rc_run_opts_init(rc_run_opts_t *o);

/** Performs the run and fills `row` (scenario and params copied in). A system that is not
 *  installed gives a skipped row with the reason. Returns 0 (row filled, possibly skipped) or a
 *  negative code when the run failed (row->note says why). Main thread. */
int rc_bench_run(const char *scenario, const char *params, const rc_run_opts_t *o, rc_row_t *row);

/** Clears `row` and names it: `scenario`, `params` and `system` copied in. */
void rc_bench_row_init(rc_row_t *row, const char *scenario, const char *params, const char *system);

/** Sets the row's p50, p90, p99, p99.9 and max (µs) from `lat` (ns). */
void rc_bench_row_latency(rc_row_t *row, const rc_hist_t *lat);

/** Fills a skipped row. */
void rc_bench_skip_row(rc_row_t *row, const char *scenario, const char *params, const char *system,
                       const char *why);

/** Runs the load `lo` into `lr` (stops early on rc_bench_stop_flag). Returns 0, or a negative
 *  error with the reason in row->note and on stderr: the load generator failed, or no event
 *  was acknowledged (-EIO). */
int rc_bench_publish(const char *scenario, const char *sysname, const rc_lg_opts_t *lo,
                     rc_lg_result_t *lr, rc_row_t *row);

/** "errors HTTP 429: 12, connection lost: 3" from a load result's failed statuses ("" when
 *  there were none). */
void rc_bench_status_note(const rc_lg_result_t *lr, char *buf, size_t cap);

/** Set non-zero to end the current run's publishing early and skip the remaining runs (the
 *  load generator polls it). SIGINT/SIGTERM do not use it: their handler stops the servers and
 *  exits at once (bench/procs.c). */
extern volatile int rc_bench_stop_flag;

/** Keeps in `row` the median of `n` runs' rows `all` (sorted in place): by throughput, or in
 *  open loop by p99; notes the range and takes the largest loss of any run. */
void rc_bench_pick_median(rc_row_t *all, int n, int open_loop, rc_row_t *row);

/** rc_bench_run `runs` times; keeps the row with the median throughput, or in open loop
 *  (o->load.rate > 0, where every run offers the same rate) the one with the median p99 (its
 *  note says so). Returns the first failure's code, else 0. */
int rc_bench_run_median(const char *scenario, const char *params, const rc_run_opts_t *o, int runs,
                        rc_row_t *row);

#endif
