/* The HTTP push run. The sinks start first (free loopback ports), then `ringcast serve` with a
 * config naming them (its trigger readers are opened before it listens, so every event
 * acknowledged afterwards must reach each matching trigger's sink); the run then publishes,
 * waits for the sinks to catch up, reads CPU and RSS, and stops everything by pid. */
#include "bench/http_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/peers.h"
#include "bench/procs.h"
#include "bench/run.h"
#include "bench/sink_server.h"

/* Sequence numbers a sink can mark: 32 Mi events (a 4 MiB bitmap per sink, touched lazily). */
#define MAX_SEQ (1ull << 25)

/* The one event type the load sends (rc_lg_opts_t.types = 1). */
#define MATCH_TYPE "com.example.bench.t0"

#define MAX_PROCS 80

void rc_http_run_opts_init(rc_http_run_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->triggers = 1;
    rc_lg_opts_init(&o->load);
    o->drain_s = 2.0;
    o->ring_bytes = 64ull << 20;
}

typedef struct {
    const rc_http_run_opts_t *o;
    const rc_bench_csink_t *sinks;
} yaml_arg_t;

static void trigger_yaml(FILE *f, const char *name, const char *type, int port)
{
    fprintf(f,
            "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
            "  namespace: default\nspec:\n  broker: default\n  filter:\n    attributes:\n"
            "      type: %s\n  subscriber:\n    uri: http://127.0.0.1:%d/\n",
            name, type, port);
}

static int write_triggers(FILE *f, const char *dir, void *arg)
{
    (void)dir;
    const yaml_arg_t *a = arg;
    char name[32], type[64];
    for (int i = 0; i < a->o->triggers; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        trigger_yaml(f, name, MATCH_TYPE, a->sinks[i].port);
    }
    for (int j = 0; j < a->o->decoys; j++) {
        snprintf(name, sizeof(name), "d%d", j);
        snprintf(type, sizeof(type), "com.example.bench.decoy%d", j);
        trigger_yaml(f, name, type, a->sinks[j % a->o->triggers].port);
    }
    return ferror(f) ? -EIO : 0;
}

/* CPU seconds of `pid` and its direct children (ringcast's delivery workers) now. */
static double tree_cpu_s(pid_t pid)
{
    pid_t kids[MAX_PROCS];
    int n = rc_bench_child_pids(pid, kids, MAX_PROCS);
    double c = rc_bench_cpu_s(pid);
    for (int i = 0; i < n; i++) {
        double k = rc_bench_cpu_s(kids[i]);
        c += k > 0 ? k : 0;
    }
    return c;
}

/* Sum of the peak RSS of `pid` and its direct children (ring pages count in each process that
 * touched them). */
static double tree_rss_mib(pid_t pid)
{
    pid_t kids[MAX_PROCS];
    int n = rc_bench_child_pids(pid, kids, MAX_PROCS);
    double r = rc_bench_rss_mib(pid);
    for (int i = 0; i < n; i++) {
        double k = rc_bench_rss_mib(kids[i]);
        r += k > 0 ? k : 0;
    }
    return r;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static uint64_t unique_of(const rc_bench_csink_t *s)
{
    return atomic_load_explicit(&s->stats->unique, memory_order_relaxed);
}

/* Waits while the sinks make progress until each has `target` events (direct: all together). */
static void drain(const rc_bench_csink_t *sinks, int n, int direct, uint64_t target, double limit)
{
    double idle = 0;
    uint64_t prev = 0;
    while (idle < limit) {
        uint64_t least = UINT64_MAX, total = 0;
        for (int i = 0; i < n; i++) {
            uint64_t u = unique_of(&sinks[i]);
            total += u;
            least = u < least ? u : least;
        }
        if ((direct ? total : least) >= target)
            return;
        idle = total == prev ? idle + 0.02 : 0;
        prev = total;
        nap(0.02);
    }
}

int rc_bench_http_run(const char *scenario, const char *params, const rc_http_run_opts_t *o,
                      rc_row_t *row, double *deliveries_s)
{
    const char *sysname = o->label ? o->label : o->direct ? "sinks-direct" : "ringcast-http";
    int n = o->triggers;
    memset(row, 0, sizeof(*row));
    snprintf(row->scenario, sizeof(row->scenario), "%s", scenario);
    snprintf(row->params, sizeof(row->params), "%s", params);
    snprintf(row->system, sizeof(row->system), "%s", sysname);
    row->consumers = n;
    row->rate = o->load.rate;
    if (deliveries_s != NULL)
        *deliveries_s = 0;
    if (n < 1 || n > RC_HTTP_RUN_MAX_SINKS || o->decoys < 0) {
        snprintf(row->note, sizeof(row->note), "triggers 1-%d, decoys >= 0", RC_HTTP_RUN_MAX_SINKS);
        return -EINVAL;
    }
    if (o->load.size > 32768) {
        snprintf(row->note, sizeof(row->note), "the bench sinks take events up to 32 KiB, not %zu",
                 o->load.size);
        fprintf(stderr, "bench %s %s: %s\n", scenario, sysname, row->note);
        return -EINVAL;
    }
    char why[200];
    if (!o->direct && !rc_bench_peer_available(RC_PEER_RINGCAST, why, sizeof(why))) {
        rc_bench_skip_row(row, scenario, params, sysname, why);
        return 0;
    }
    rc_bench_csink_t *sinks = calloc((size_t)n, sizeof(*sinks));
    int *ports = calloc((size_t)n, sizeof(*ports));
    rc_peer_t peer = {0};
    rc_lg_result_t lr = {0};
    int started = 0, rc = 0;
    if (sinks == NULL || ports == NULL) {
        rc = -ENOMEM;
        snprintf(row->note, sizeof(row->note), "out of memory");
        goto out;
    }
    for (; started < n; started++) {
        rc = rc_bench_csink_start(&sinks[started], MAX_SEQ);
        if (rc < 0) {
            snprintf(row->note, sizeof(row->note), "sink %d did not start: %s", started,
                     strerror(-rc));
            goto out;
        }
        ports[started] = sinks[started].port;
    }
    rc_lg_opts_t lo = o->load;
    lo.types = 1;
    if (o->direct) {
        lo.ports = ports;
        lo.nports = n;
        if (lo.conns < n)
            lo.conns = n; /* every sink gets at least one connection */
        lo.rate *= n;     /* open loop: each sink gets `rate` requests/s, as behind the broker */
        lo.proto = RC_LG_HTTP_BINARY; /* what the broker pushes; the sinks read ce- headers */
        fprintf(stderr, "bench %s %s (%s): %d sinks, first on port %d\n", scenario, sysname, params,
                n, ports[0]);
    } else {
        yaml_arg_t ya = {o, sinks};
        rc = rc_bench_ringcast_start(o->ring_bytes, o->workers, write_triggers, &ya, &peer,
                                     row->note, sizeof(row->note));
        if (rc < 0) {
            fprintf(stderr, "bench %s %s (%s): %s\n", scenario, sysname, params, row->note);
            goto out;
        }
        lo.port = peer.port;
        lo.path = "/default/default";
        fprintf(stderr,
                "bench %s %s (%s): server pid %d port %d, %d trigger(s) + %d decoy(s), %d sinks\n",
                scenario, sysname, params, (int)peer.pid, peer.port, n, o->decoys, n);
    }
    double cpu0 = o->direct ? 0 : tree_cpu_s(peer.pid);
    double sink_cpu0 = 0;
    for (int i = 0; i < n; i++)
        sink_cpu0 += rc_bench_cpu_s(sinks[i].pid);
    rc = rc_bench_publish(scenario, sysname, &lo, &lr, row);
    if (rc < 0)
        goto out;
    drain(sinks, n, o->direct, lr.events_acked, o->drain_s);
    double sink_cpu = -sink_cpu0;
    double sink_rss = 0;
    for (int i = 0; i < n; i++) {
        sink_cpu += rc_bench_cpu_s(sinks[i].pid);
        sink_rss += rc_bench_rss_mib(sinks[i].pid);
    }
    if (o->direct) {
        /* The sinks are the servers under test here. */
        row->cpu_s = sink_cpu;
        row->rss_mib = sink_rss;
        row->rss_shm_mib = 0;
    } else {
        row->cpu_s = tree_cpu_s(peer.pid) - cpu0;
        row->rss_mib = tree_rss_mib(peer.pid);
        row->rss_shm_mib = rc_bench_shm_mib(peer.pid);
        rc_bench_peer_stop(&peer);
    }
    row->consumer_cpu_s = sink_cpu;
    row->client_cpu_s = lr.cpu_s;
    row->events = lr.events_acked;
    row->errors = lr.errors;
    for (int i = 0; i < n; i++)
        rc_bench_csink_stop(&sinks[i]);

    rc_hist_t lat;
    rc_hist_init(&lat);
    uint64_t least = UINT64_MAX, total = 0, last = lr.start_ns, bad = 0;
    for (int i = 0; i < n; i++) {
        const rc_sink_stats_t *st = sinks[i].stats;
        rc_hist_merge(&lat, &st->lat);
        uint64_t u = unique_of(&sinks[i]);
        total += u;
        least = u < least ? u : least;
        uint64_t l = atomic_load(&st->last_rx_ns);
        last = l > last ? l : last;
        row->dups += st->dups;
        bad += st->bad;
    }
    for (uint64_t s = 0; s < lr.seq_count; s++) {
        if (!lr.acked[s])
            continue;
        int any = 0;
        for (int i = 0; i < n; i++) {
            int seen = rc_bench_csink_seen(&sinks[i], s);
            any |= seen;
            if (!o->direct && !seen)
                row->lost++;
        }
        if (o->direct && !any)
            row->lost++;
    }
    if (bad > 0)
        fprintf(stderr, "bench %s %s: %llu deliveries without readable stamps\n", scenario, sysname,
                (unsigned long long)bad);
    double span = (double)(last - lr.start_ns) / 1e9;
    row->throughput = span <= 0 ? 0 : o->direct ? (double)total / span / n : (double)least / span;
    if (deliveries_s != NULL)
        *deliveries_s = span > 0 ? (double)total / span : 0;
    char status[120];
    rc_bench_status_note(&lr, status, sizeof(status));
    snprintf(row->note, sizeof(row->note), "%.0f deliveries/s to %d sink%s%s%s",
             span > 0 ? (double)total / span : 0, n, n == 1 ? "" : "s", status[0] ? "; " : "",
             status);
    row->p50_us = (double)rc_hist_pct(&lat, 50) / 1e3;
    row->p90_us = (double)rc_hist_pct(&lat, 90) / 1e3;
    row->p99_us = (double)rc_hist_pct(&lat, 99) / 1e3;
    row->p999_us = (double)rc_hist_pct(&lat, 99.9) / 1e3;
    row->max_us = (double)lat.max / 1e3;
    fprintf(stderr,
            "bench %s %s (%s): %.0f events/s per sink, %.0f deliveries/s, p50 %.1f µs, "
            "p99 %.1f µs, lost %llu, dups %llu, errors %llu, cpu %.2f s, rss %.1f MiB%s%s\n",
            scenario, sysname, params, row->throughput, span > 0 ? (double)total / span : 0,
            row->p50_us, row->p99_us, (unsigned long long)row->lost, (unsigned long long)row->dups,
            (unsigned long long)row->errors, row->cpu_s, row->rss_mib, row->note[0] ? "; " : "",
            row->note);
out:
    rc_bench_peer_stop(&peer);
    for (int i = 0; i < started; i++)
        rc_bench_csink_free(&sinks[i]);
    free(sinks);
    free(ports);
    free(lr.acked);
    return rc;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int rc_bench_http_run_median(const char *scenario, const char *params, const rc_http_run_opts_t *o,
                             int runs, rc_row_t *row, double *deliveries_s, double *p99_med_us)
{
    if (runs < 1)
        runs = 1;
    rc_row_t *all = calloc((size_t)runs, sizeof(*all));
    double *dps = calloc((size_t)runs, sizeof(*dps));
    double *p99 = calloc((size_t)runs, sizeof(*p99));
    double *tp = calloc((size_t)runs, sizeof(*tp));
    int rc = 0, n = 0;
    if (all == NULL || dps == NULL || p99 == NULL || tp == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < runs && !rc_bench_stop_flag; i++) {
        rc = rc_bench_http_run(scenario, params, o, &all[n], &dps[n]);
        if (rc < 0 || all[n].skipped) {
            *row = all[n];
            if (deliveries_s != NULL)
                *deliveries_s = dps[n];
            if (p99_med_us != NULL)
                *p99_med_us = all[n].p99_us;
            goto out;
        }
        p99[n] = all[n].p99_us;
        tp[n] = all[n].throughput;
        n++;
    }
    qsort(p99, (size_t)n, sizeof(*p99), by_double);
    qsort(tp, (size_t)n, sizeof(*tp), by_double);
    /* The run with the median throughput (closed loop) or the median p99 (open loop, where
     * every run delivers the offered rate). */
    int pick = 0;
    for (int i = 0; i < n; i++) {
        if (o->load.rate > 0 ? all[i].p99_us == p99[n / 2] : all[i].throughput == tp[n / 2])
            pick = i;
    }
    *row = all[pick];
    if (deliveries_s != NULL)
        *deliveries_s = dps[pick];
    if (p99_med_us != NULL)
        *p99_med_us = p99[n / 2];
    if (n > 1) {
        size_t len = strlen(row->note);
        snprintf(row->note + len, sizeof(row->note) - len,
                 "%smedian of %d runs: %.0f-%.0f events/s, p99 %.0f-%.0f µs", len ? "; " : "", n,
                 tp[0], tp[n - 1], p99[0], p99[n - 1]);
        for (int i = 0; i < n; i++) /* loss anywhere counts */
            row->lost = all[i].lost > row->lost ? all[i].lost : row->lost;
    }
out:
    free(tp);
    free(p99);
    free(dps);
    free(all);
    return rc;
}
