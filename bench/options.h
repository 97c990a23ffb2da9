/* Options shared by the comparison scenarios (ingest, latency, fanout, groups, dapr, all). */
#ifndef RC_BENCH_OPTIONS_H
#define RC_BENCH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "bench/http_run.h"
#include "bench/report.h"
#include "bench/run.h"

typedef struct {
    double seconds; /* per run */
    int conns, depth;
    size_t size; /* data bytes per event */
    int mode;    /* rc_lg_proto_t: HTTP binary, structured or batch */
    int batch, types;
    int runs; /* repeat each run, keep the median throughput */
    double drain_s;
    uint64_t ring_bytes;
    uint32_t reader_spin; /* ringcast shm readers' spin before sleeping */
    uint32_t reader_linger_us; /* ringcast shm readers' linger after a wake */
#define RC_BENCH_LINGER_UNSET UINT32_MAX /* not given: 0, fanout RC_BENCH_FANOUT_LINGER_US */
#define RC_BENCH_FANOUT_LINGER_US 100
    int quick;
    const char *systems;   /* comma list; NULL = the scenario's default */
    const char *rates;     /* latency: comma list of events/s */
    const char *consumers; /* fanout: comma list */
    const char *triggers;  /* fanout: HTTP rows' trigger (= sink) counts, comma list */
    const char *bulk;      /* dapr: entries per bulk publish request, comma list */
    int decoys;            /* fanout: extra non-matching exact-type triggers */
    int workers;           /* ringcast spec.workers for HTTP rows (0: its default) */
    double rate;           /* fanout: open loop at this many events/s (0: closed loop) */
    int targets;           /* fanout: run the three target checks */
    const char *out;       /* directory for report.md/json and SVGs; NULL = none */
    const char *store_dir; /* ingest: parent of the file stores' / AOFs' temp directories */
    const char *nodes;     /* scaleout: ringcast node counts, comma list */
#define RC_BENCH_MAX_NODES 8
} rc_bench_opts_t;

/** Parses `argv` (argv[0] the scenario) into `o` after setting defaults (`--quick` shortens
 *  them). Returns 0, 1 when --help was printed (exit 0), or 2 on bad usage (message printed). */
int rc_bench_opts_parse(const char *scenario, const char *summary, int argc, char **argv,
                        rc_bench_opts_t *o);

/** Sets `ro` to the run of `system` under the command-line options `o` (load, mode, ring, reader
 *  spin, drain); the scenario then sets what is its own (consumers, rate, label). */
void rc_bench_run_opts(const rc_bench_opts_t *o, rc_peer_kind_t system, rc_run_opts_t *ro);

/** Sets `h` to an HTTP push run (bench/http_run.h) under the command-line options `o` (load,
 *  mode, workers, ring, drain), offering `rate` events/s (0: closed loop); the scenario then sets
 *  what is its own (sinks, triggers, label). */
void rc_bench_http_opts(const rc_bench_opts_t *o, double rate, rc_http_run_opts_t *h);

/** 1 when `name` is in the comma list `list` (NULL list: `dflt`). */
int rc_bench_list_has(const char *list, const char *dflt, const char *name);

/** Parses a comma list of positive numbers into `out` (at most `max`). Returns the count or -1. */
int rc_bench_list_nums(const char *list, double *out, int max);

/** Ends a scenario: prints the markdown table of `scenario` on stdout, writes the report files
 *  when `o->out` is set, and prints the key=value result line last. Returns the exit code. */
int rc_bench_finish(const char *scenario, const rc_report_t *rep, const rc_bench_opts_t *o,
                    int failed);

#endif
