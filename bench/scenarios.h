/* The comparison scenarios' bodies, callable on their own (ringcast-bench <name>) or from
 * `all` with one shared report. Each appends its rows to `rep` and returns how many runs
 * failed (a skipped peer is not a failure). */
#ifndef RC_BENCH_SCENARIOS_H
#define RC_BENCH_SCENARIOS_H

#include "bench/options.h"
#include "bench/report.h"

int rc__bench_ingest_rows(const rc_bench_opts_t *o, rc_report_t *rep);
int rc__bench_latency_rows(const rc_bench_opts_t *o, rc_report_t *rep);
int rc__bench_fanout_rows(const rc_bench_opts_t *o, rc_report_t *rep);
int rc__bench_groups_rows(const rc_bench_opts_t *o, rc_report_t *rep);
int rc__bench_dapr_rows(const rc_bench_opts_t *o, rc_report_t *rep);
int rc__bench_scaleout_rows(const rc_bench_opts_t *o, rc_report_t *rep);

/** Prints ingest's `target=...` ratio lines (issue 13: file store vs memory and Redis AOF) for
 *  the rows of `rep` that ran. */
void rc__bench_ingest_targets(const rc_bench_opts_t *o, const rc_report_t *rep);

/** Prints dapr's `target=...` lines for the rows of `rep` that cover issue 12's targets. */
void rc__bench_dapr_targets(const rc_bench_opts_t *o, const rc_report_t *rep);

/** Shared setup of every comparison scenario: installs the child-process cleanup. */
void rc__bench_scenario_setup(void);

#endif
