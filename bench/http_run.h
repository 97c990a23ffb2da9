/* One measured run of ringcast's HTTP push path: HTTP publish -> `ringcast serve` -> N Triggers
 * -> N counting HTTP sinks (bench/sink_server.h), or the baseline: the load generator posting
 * straight to the same N sinks ("sinks-direct"). The sinks read the `ce-rcbts` / `ce-rcbseq`
 * stamps of every delivery, so the row has publish-to-delivery percentiles, lost and duplicated
 * events per sink, and the broker's CPU and RSS (supervisor + worker processes). A third kind,
 * "nginx-proxy", puts nginx as a reverse proxy between the load generator and the same sinks. */
#ifndef RC_BENCH_HTTP_RUN_H
#define RC_BENCH_HTTP_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "bench/loadgen.h"
#include "bench/report.h"

#define RC_HTTP_RUN_MAX_SINKS 256

/** Writes the YAML documents (each starting with "---") that follow the Broker `default/default`
 *  in the broker's config, for the sinks listening on `ports[0..n)`. Returns 0 or -errno. */
typedef int (*rc_http_config_fn)(FILE *f, const int *ports, int n, void *arg);

typedef struct {
    int direct;          /* 1: loadgen -> sinks (connection i to sink i mod N), no broker */
    int proxy;           /* 1: loadgen -> nginx reverse proxy -> sinks (round-robin, keep-alive
                          * upstream), no broker; counted as direct */
    int triggers;        /* matching triggers, one sink each (1..RC_HTTP_RUN_MAX_SINKS); with
                          * `config`: the number of sinks */
    int decoys;          /* extra exact-type triggers whose type the load never sends */
    int workers;         /* ringcast spec.workers (0: ringcast's default) */
    rc_lg_opts_t load;   /* port and types are set by the run; direct: rate is per sink */
    double drain_s;      /* longest wait without progress for the sinks to catch up */
    uint64_t ring_bytes; /* ringcast ring size */
    const char *label;   /* system name; NULL: "ringcast-http", "sinks-direct", "nginx-proxy" */

    /* The broker's documents after its Broker: NULL, the triggers (and decoys); else what
     * `config` writes (a Dapr app with a replica per sink, ...). */
    rc_http_config_fn config;
    void *config_arg;
    /* The sinks share the events, each to exactly one of them (a Dapr app's replicas): lost =
     * acknowledged events no sink got, dups = events more than one got. */
    int compete;
} rc_http_run_opts_t;

/** Defaults: broker, 1 trigger, no decoys, loadgen defaults, 2 s drain, 64 MiB ring. */
void rc_http_run_opts_init(rc_http_run_opts_t *o);

/** Performs the run and fills `row`: throughput = events/s the slowest sink received (direct:
 *  requests/s per sink, total / N; compete: all sinks' distinct events/s), lost = acknowledged
 *  events a sink that should have it never got (direct, compete: that no sink got), summed over
 *  sinks. `*deliveries_s` (may be NULL) gets all sinks' distinct deliveries per second. Returns
 *  0 or a negative code (row->note says why). */
int rc_bench_http_run(const char *scenario, const char *params, const rc_http_run_opts_t *o,
                      rc_row_t *row, double *deliveries_s);

/** rc_bench_http_run `runs` times; the row and deliveries/s of the run with the median
 *  throughput (open loop: with the median p99), and the median p99 over the runs in
 *  `*p99_med_us` (may be NULL). */
int rc_bench_http_run_median(const char *scenario, const char *params, const rc_http_run_opts_t *o,
                             int runs, rc_row_t *row, double *deliveries_s, double *p99_med_us);

#endif
