/* Results of the comparison scenarios: one row per (scenario, parameters, system), printed as a
 * markdown table (ratio to ringcast last), written as report.json and drawn as one SVG per
 * scenario (throughput, p50 and p99 per parameter value and system). */
#ifndef RC_BENCH_REPORT_H
#define RC_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    char scenario[24];
    char system[32];
    char params[48]; /* e.g. "conns=16 depth=1", "rate=10000", "consumers=4" */
    char note[200];  /* skip reason, or errors by status */
    int skipped;
    double throughput; /* events/s (delivered per consumer where there are consumers) */
    double p50_us, p90_us, p99_us, p999_us, max_us;
    uint64_t events; /* acknowledged by the server */
    uint64_t lost, dups, errors;
    double cpu_s;            /* CPU of the server process under test during the run */
    double rss_mib;          /* its peak RSS (VmHWM) */
    double rss_shm_mib;      /* shared memory in its RSS at the end (ringcast: ring pages) */
    double client_cpu_s;     /* the load generator's thread */
    double consumer_cpu_s;   /* all consumer threads together (HTTP push: the sink processes) */
    double worker_cpu_s;     /* the part of cpu_s in ringcast's delivery workers (HTTP push) */
    double wall_s;           /* the measured interval (publishing, then the drain): the CPU
                              * columns are shares of it */
    double machine_busy_pct; /* all cores busy over that interval, every process (0-100; -1:
                              * unknown): what the neighbours took shows here */
    int consumers;
    double rate; /* offered events/s, 0 = closed loop */
    /* A ringcast file store with a flusher (durability batch, sync), from its /metrics during
     * the publishing time: */
    int has_fsyncs;
    double fsyncs_per_s;     /* fdatasyncs per second */
    double events_per_fsync; /* durable events gained per fdatasync */
    double fsync_mean_us;    /* mean fdatasync time */
    double durable_events;   /* ringcast_storage_durable_events gained */
} rc_row_t;

typedef struct {
    rc_row_t *rows;
    int count, cap;
} rc_report_t;

/** CPU use over the row's interval in percent of one core: the load generator, the server
 *  under test (ringcast: serve + workers), its workers alone, the consumers (or sinks). All -1
 *  when the row has no interval. */
void rc_report_cpu_pct(const rc_row_t *x, double *load, double *server, double *workers,
                       double *consumers);

/** Which side saturated: "loadgen", "server" or "consumers" when it used >= 90% of a core
 *  (the first in that order), "cpus" when the run's processes together used >= 90% of every
 *  core, "machine" when the machine was >= 90% busy (other processes included), else "none";
 *  "-" without an interval. */
const char *rc_report_saturated(const rc_row_t *x);

/** Appends a copy of `row`. Returns 0 or -ENOMEM. */
int rc_report_add(rc_report_t *r, const rc_row_t *row);

/** Prints the rows of `scenario` as a markdown table (all rows when NULL). */
void rc_report_table(const rc_report_t *r, const char *scenario, FILE *out);

/** Writes {"rows": [...]} with every row. Returns 0 or -errno. */
int rc_report_json(const rc_report_t *r, const char *path);

/** Draws the rows of `scenario` into an SVG file. Returns 0 or -errno. */
int rc_report_svg(const rc_report_t *r, const char *scenario, const char *path);

/** Writes the tables, the JSON and one SVG per scenario into `dir` (created if missing):
 *  report.md, report.json, <scenario>.svg. Returns 0 or -errno (message on stderr). */
int rc_report_write_dir(const rc_report_t *r, const char *dir);

/** Frees the rows. */
void rc_report_free(rc_report_t *r);

#endif
