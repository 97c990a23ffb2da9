/* ringcast-bench ingest: publish rate and latency, the same load against ringcast (events
 * stored in its ring before the 202: the memory ring, or a file store with durability none,
 * batch or sync), nginx answering `return 202` (the HTTP ceiling of this machine: parsing and
 * answering, nothing stored) and Redis XADD (appends to a stream, the store Dapr's default
 * pub/sub uses: in memory, or with an append-only file fsynced every second or on every write).
 * Closed loop: every connection keeps `depth` requests in flight. Latency is request to answer.
 *
 * With --runs N the runs are interleaved (run 1 of every system, then run 2, ...), so that a
 * stretch of load from elsewhere on a shared machine spreads over all systems instead of
 * falling on one; each row keeps its median. The ratio lines compare rows of the same
 * invocation: issue 13's targets (sync >= 1.0x Redis appendfsync always, batch >= 0.8x the
 * memory ring) and two informative ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/procs.h"
#include "bench/run.h"
#include "bench/scenarios.h"

/* Issue 13's targets. */
#define SYNC_VS_REDIS_ALWAYS_LIMIT 1.0
#define BATCH_VS_MEMORY_LIMIT      0.8

typedef struct {
    const char *name;
    rc_peer_kind_t kind;
    const char *store; /* rc_run_opts_t.store */
} ingest_system_t;

static const ingest_system_t systems[] = {
    {"ringcast", RC_PEER_RINGCAST, NULL},
    {"ringcast-file-none", RC_PEER_RINGCAST, "none"},
    {"ringcast-file-batch", RC_PEER_RINGCAST, "batch"},
    {"ringcast-file-sync", RC_PEER_RINGCAST, "sync"},
    {"nginx", RC_PEER_NGINX, NULL},
    {"redis", RC_PEER_REDIS, NULL},
    {"redis-aof-everysec", RC_PEER_REDIS, "everysec"},
    {"redis-aof-always", RC_PEER_REDIS, "always"},
};
#define NSYSTEMS (sizeof(systems) / sizeof(systems[0]))
#define DEFAULT_SYSTEMS                                                                            \
    "ringcast,ringcast-file-none,ringcast-file-batch,ringcast-file-sync,nginx,redis,"              \
    "redis-aof-everysec,redis-aof-always"

/* Each system's throughput in each run of the last rc__bench_ingest_rows (0: no such run), for
 * the paired ratios: runs i of two systems ran back to back, so their ratio is less exposed to
 * load from elsewhere than the ratio of the two medians. */
#define MAX_RUNS 99
static double run_eps[NSYSTEMS][MAX_RUNS];

void rc__bench_scenario_setup(void)
{
    rc_bench_procs_install();
}

static void ingest_opts(const rc_bench_opts_t *o, const ingest_system_t *s, rc_run_opts_t *ro)
{
    rc_bench_run_opts(o, s->kind, ro);
    ro->label = s->name;
    ro->store = s->store;
    /* Redis has no batch request: the same events per round trip as pipelined XADDs. */
    if (s->kind == RC_PEER_REDIS && o->mode == RC_LG_HTTP_BATCH)
        ro->load.depth = o->depth * o->batch > 1024 ? 1024 : o->depth * o->batch;
}

/* Per system: its runs' rows so far, and the row that ended it early (skipped or failed). */
typedef struct {
    rc_row_t *runs;
    int n;
    int ended; /* 1: `last` is the row to report (skipped, or a failed run) */
    rc_row_t last;
} ingest_state_t;

int rc__bench_ingest_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    char params[48];
    const char *mode = rc_lg_proto_name((rc_lg_proto_t)o->mode) + 5;
    snprintf(params, sizeof(params), "%s conns=%d depth=%d", mode, o->conns, o->depth);
    ingest_state_t st[NSYSTEMS];
    memset(st, 0, sizeof(st));
    memset(run_eps, 0, sizeof(run_eps));
    int failed = 0;
    for (size_t i = 0; i < NSYSTEMS; i++) {
        st[i].ended = !rc_bench_list_has(o->systems, DEFAULT_SYSTEMS, systems[i].name);
        st[i].runs = st[i].ended ? NULL : calloc((size_t)o->runs, sizeof(rc_row_t));
        if (!st[i].ended && st[i].runs == NULL) {
            fprintf(stderr, "bench ingest: out of memory\n");
            return (int)NSYSTEMS;
        }
    }
    for (int run = 0; run < o->runs && !rc_bench_stop_flag; run++) {
        for (size_t i = 0; i < NSYSTEMS && !rc_bench_stop_flag; i++) {
            if (st[i].ended)
                continue;
            rc_run_opts_t ro;
            ingest_opts(o, &systems[i], &ro);
            rc_row_t *row = &st[i].runs[st[i].n];
            int rc = rc_bench_run("ingest", params, &ro, row);
            if (rc < 0 || row->skipped) {
                st[i].last = *row;
                st[i].ended = 2;
                failed += rc < 0;
            } else {
                run_eps[i][run] = row->throughput;
                st[i].n++;
            }
        }
    }
    for (size_t i = 0; i < NSYSTEMS; i++) {
        rc_row_t row;
        if (st[i].ended == 2) {
            rc_report_add(rep, &st[i].last);
        } else if (st[i].n > 0) {
            if (st[i].n == 1)
                row = st[i].runs[0];
            else
                rc_bench_pick_median(st[i].runs, st[i].n, 0, &row);
            rc_report_add(rep, &row);
        }
        free(st[i].runs);
    }
    return failed;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t system_index(const char *name)
{
    for (size_t i = 0; i < NSYSTEMS; i++) {
        if (strcmp(systems[i].name, name) == 0)
            return i;
    }
    return NSYSTEMS;
}

/* The median of the per-run ratios a/b over the runs both measured, and their range; 0 when
 * there is none. */
static int paired_ratio(const char *sys_a, const char *sys_b, double *med, double *lo, double *hi)
{
    size_t a = system_index(sys_a), b = system_index(sys_b);
    double r[MAX_RUNS];
    int n = 0;
    for (int i = 0; a < NSYSTEMS && b < NSYSTEMS && i < MAX_RUNS; i++) {
        if (run_eps[a][i] > 0 && run_eps[b][i] > 0)
            r[n++] = run_eps[a][i] / run_eps[b][i];
    }
    if (n == 0)
        return 0;
    qsort(r, (size_t)n, sizeof(r[0]), by_value);
    *med = n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
    *lo = r[0];
    *hi = r[n - 1];
    return n;
}

static const rc_row_t *ingest_row(const rc_report_t *rep, const char *system)
{
    for (int i = 0; i < rep->count; i++) {
        const rc_row_t *x = &rep->rows[i];
        if (strcmp(x->scenario, "ingest") == 0 && strcmp(x->system, system) == 0)
            return x;
    }
    return NULL;
}

/* `target=NAME ok=0 error=<system>:_<its note, spaces as _>` when `x` was skipped or failed.
 * Returns 1 when it printed that line. */
static int ratio_failed(const char *name, const rc_row_t *x)
{
    if (!x->skipped && x->events > 0 && x->throughput > 0)
        return 0;
    char why[sizeof(x->note) + sizeof(x->system) + 2];
    snprintf(why, sizeof(why), "%s: %s", x->system, x->note[0] ? x->note : "run failed");
    for (char *c = why; *c; c++) {
        if (*c == ' ' || *c == '=')
            *c = '_';
    }
    printf("target=%s ok=0 error=%s\n", name, why);
    return 1;
}

/* One ratio line: `a` over `b` (their median rows), with `limit` > 0 a target (limit= and ok=
 * fields, ok on the ratio of the medians), else informative; with several runs also the median
 * and range of the per-run ratios (paired_*). The fdatasync figures are `a`'s (a ringcast file
 * store with a flusher). */
static void ratio_line(const char *name, const char *sys_a, const char *sys_b, double limit,
                       int runs, const rc_report_t *rep)
{
    const rc_row_t *a = ingest_row(rep, sys_a), *b = ingest_row(rep, sys_b);
    if (a == NULL || b == NULL || ratio_failed(name, a) || ratio_failed(name, b))
        return;
    double ratio = a->throughput / b->throughput;
    char ka[40], kb[40];
    snprintf(ka, sizeof(ka), "%s", a->system);
    snprintf(kb, sizeof(kb), "%s", b->system);
    for (char *c = ka; *c; c++)
        *c = *c == '-' ? '_' : *c;
    for (char *c = kb; *c; c++)
        *c = *c == '-' ? '_' : *c;
    printf("target=%s ratio=%.3f", name, ratio);
    if (limit > 0)
        printf(" limit=%.1f", limit);
    printf(" %s_eps=%.0f %s_eps=%.0f", ka, a->throughput, kb, b->throughput);
    if (a->has_fsyncs)
        printf(" fsyncs_s=%.0f events_per_fsync=%.2f fsync_mean_us=%.0f", a->fsyncs_per_s,
               a->events_per_fsync, a->fsync_mean_us);
    double med, lo, hi;
    int n = paired_ratio(sys_a, sys_b, &med, &lo, &hi);
    if (n > 1)
        printf(" paired_ratio=%.3f paired_min=%.3f paired_max=%.3f", med, lo, hi);
    printf(" runs=%d", runs);
    if (limit > 0)
        printf(" ok=%d", ratio >= limit);
    printf("\n");
}

void rc__bench_ingest_targets(const rc_bench_opts_t *o, const rc_report_t *rep)
{
    ratio_line("sync_vs_redis_always", "ringcast-file-sync", "redis-aof-always",
               SYNC_VS_REDIS_ALWAYS_LIMIT, o->runs, rep);
    ratio_line("batch_vs_memory", "ringcast-file-batch", "ringcast", BATCH_VS_MEMORY_LIMIT, o->runs,
               rep);
    ratio_line("none_vs_memory", "ringcast-file-none", "ringcast", 0, o->runs, rep);
    ratio_line("batch_vs_redis_everysec", "ringcast-file-batch", "redis-aof-everysec", 0, o->runs,
               rep);
}

int rc_bench_ingest(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("ingest",
                                 "Publish rate and latency: ringcast (memory ring; file store "
                                 "with durability none, batch, sync) vs nginx `return 202` vs "
                                 "Redis XADD (in memory; AOF appendfsync everysec, always), "
                                 "closed loop. Prints target=... ratio lines for issue 13.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_ingest_rows(&o, &rep);
    rc__bench_ingest_targets(&o, &rep);
    rc = rc_bench_finish("ingest", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
