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
    const int *ports;
} yaml_arg_t;

/* Lag policy block: a closed loop outruns delivery, and the runs measure lossless push, so a
 * trigger that falls behind holds the ring (the ingress answers 429) instead of giving up its
 * oldest events past the lag limit (the default policy, dead-letter, drops them without a
 * dead-letter sink: they would show as lost). */
static void trigger_yaml(FILE *f, const char *name, const char *type, int port)
{
    fprintf(f,
            "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
            "  namespace: default\n  annotations:\n    ringcast.dev/lag-policy: block\n"
            "spec:\n  broker: default\n  filter:\n    attributes:\n"
            "      type: %s\n  subscriber:\n    uri: http://127.0.0.1:%d/\n",
            name, type, port);
}

static int write_triggers(FILE *f, const char *dir, void *arg)
{
    (void)dir;
    const yaml_arg_t *a = arg;
    if (a->o->config != NULL)
        return a->o->config(f, a->ports, a->o->triggers, a->o->config_arg);
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

/* The sum of `metric` over `pid` and its direct children (ringcast's delivery workers): CPU
 * seconds, or peak RSS (ring pages count in each process that touched them). */
static double tree_sum(pid_t pid, double (*metric)(pid_t))
{
    pid_t kids[MAX_PROCS];
    int n = rc_bench_child_pids(pid, kids, MAX_PROCS);
    double sum = metric(pid);
    for (int i = 0; i < n; i++) {
        double k = metric(kids[i]);
        sum += k > 0 ? k : 0;
    }
    return sum;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* The distinct events the sinks received so far: the fewest of one sink, and all together. */
static void sink_counts(const rc_bench_csink_t *sinks, int n, uint64_t *least, uint64_t *total)
{
    *least = UINT64_MAX;
    *total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t u = atomic_load_explicit(&sinks[i].stats->unique, memory_order_relaxed);
        *total += u;
        *least = u < *least ? u : *least;
    }
}

/* Waits while the sinks make progress until each has `target` events (shared: all together). */
static void drain(const rc_bench_csink_t *sinks, int n, int shared, uint64_t target, double limit)
{
    double idle = 0;
    uint64_t prev = 0;
    while (idle < limit) {
        uint64_t least, total;
        sink_counts(sinks, n, &least, &total);
        if ((shared ? total : least) >= target)
            return;
        idle = total == prev ? idle + 0.02 : 0;
        prev = total;
        nap(0.02);
    }
}

/* One HTTP run's state. Two kinds of row share it: through the broker (every sink should get
 * every event: a sink's miss is lost) and direct (the load spread over the sinks: an event no
 * sink got is lost). */
typedef struct {
    const rc_http_run_opts_t *o;
    const char *scenario, *params, *sysname;
    rc_row_t *row;
    int n; /* sinks = matching triggers */
    rc_bench_csink_t *sinks;
    int *ports;
    int started; /* sinks running */
    rc_peer_t peer;
    rc_lg_opts_t lo;
    rc_lg_result_t lr;
} hrun_t;

/* Options the run cannot take. Returns 0 or -EINVAL (row->note says why). */
static int hrun_check(const hrun_t *h)
{
    const rc_http_run_opts_t *o = h->o;
    if (h->n < 1 || h->n > RC_HTTP_RUN_MAX_SINKS || o->decoys < 0) {
        snprintf(h->row->note, sizeof(h->row->note), "triggers 1-%d, decoys >= 0",
                 RC_HTTP_RUN_MAX_SINKS);
        return -EINVAL;
    }
    if (o->load.size > 32768) {
        snprintf(h->row->note, sizeof(h->row->note),
                 "the bench sinks take events up to 32 KiB, not %zu", o->load.size);
        fprintf(stderr, "bench %s %s: %s\n", h->scenario, h->sysname, h->row->note);
        return -EINVAL;
    }
    return 0;
}

static int sinks_start(hrun_t *h)
{
    h->sinks = calloc((size_t)h->n, sizeof(*h->sinks));
    h->ports = calloc((size_t)h->n, sizeof(*h->ports));
    if (h->sinks == NULL || h->ports == NULL) {
        snprintf(h->row->note, sizeof(h->row->note), "out of memory");
        return -ENOMEM;
    }
    for (; h->started < h->n; h->started++) {
        int rc = rc_bench_csink_start(&h->sinks[h->started], MAX_SEQ);
        if (rc < 0) {
            snprintf(h->row->note, sizeof(h->row->note), "sink %d did not start: %s", h->started,
                     strerror(-rc));
            return rc;
        }
        h->ports[h->started] = h->sinks[h->started].port;
    }
    return 0;
}

/* Aims the load at the sinks (direct), or starts nginx as a proxy to them (proxy), or the broker
 * with a trigger per sink and aims it there. Returns 0 or a negative code (row->note says why). */
static int target_start(hrun_t *h)
{
    const rc_http_run_opts_t *o = h->o;
    h->lo = o->load;
    h->lo.types = 1;
    if (o->direct || o->proxy) {
        h->lo.rate *= h->n; /* open loop: each sink gets `rate` requests/s, as behind the broker */
        h->lo.proto = RC_LG_HTTP_BINARY; /* what the broker pushes; the sinks read ce- headers */
    }
    if (o->proxy) {
        int rc = rc_bench_nginx_proxy_start(h->ports, h->n, &h->peer, h->row->note,
                                            sizeof(h->row->note));
        if (rc < 0) {
            fprintf(stderr, "bench %s %s (%s): %s\n", h->scenario, h->sysname, h->params,
                    h->row->note);
            return rc;
        }
        h->lo.port = h->peer.port;
        fprintf(stderr, "bench %s %s (%s): server pid %d port %d, proxy to %d sinks\n", h->scenario,
                h->sysname, h->params, (int)h->peer.pid, h->peer.port, h->n);
        return 0;
    }
    if (o->direct) {
        h->lo.ports = h->ports;
        h->lo.nports = h->n;
        if (h->lo.conns < h->n)
            h->lo.conns = h->n; /* every sink gets at least one connection */
        fprintf(stderr, "bench %s %s (%s): %d sinks, first on port %d\n", h->scenario, h->sysname,
                h->params, h->n, h->ports[0]);
        return 0;
    }
    yaml_arg_t ya = {o, h->sinks, h->ports};
    int rc = rc_bench_ringcast_start(o->ring_bytes, o->workers, write_triggers, &ya, &h->peer,
                                     h->row->note, sizeof(h->row->note));
    if (rc < 0) {
        fprintf(stderr, "bench %s %s (%s): %s\n", h->scenario, h->sysname, h->params, h->row->note);
        return rc;
    }
    h->lo.port = h->peer.port;
    if (o->config != NULL)
        fprintf(stderr, "bench %s %s (%s): server pid %d port %d, %d sinks\n", h->scenario,
                h->sysname, h->params, (int)h->peer.pid, h->peer.port, h->n);
    else
        fprintf(stderr,
                "bench %s %s (%s): server pid %d port %d, %d trigger(s) + %d decoy(s), %d sinks\n",
                h->scenario, h->sysname, h->params, (int)h->peer.pid, h->peer.port, h->n, o->decoys,
                h->n);
    return 0;
}

/* Publishes, waits for the sinks, and takes the servers' usage: the broker's process tree, or
 * the sinks when they are the servers under test (direct), or nginx's (proxy). Stops the broker
 * (or nginx) and the sinks. */
static int hrun_measure(hrun_t *h)
{
    const rc_http_run_opts_t *o = h->o;
    rc_row_t *row = h->row;
    double cpu0 = o->direct ? 0 : tree_sum(h->peer.pid, rc_bench_cpu_s);
    double serve_cpu0 = o->direct ? 0 : rc_bench_cpu_s(h->peer.pid);
    double sink_cpu0 = 0, t0 = rc_bench_now_s(), busy0 = -1, total0 = -1;
    rc_bench_machine_ticks(&busy0, &total0);
    for (int i = 0; i < h->n; i++)
        sink_cpu0 += rc_bench_cpu_s(h->sinks[i].pid);
    int rc = rc_bench_publish(h->scenario, h->sysname, &h->lo, &h->lr, row);
    if (rc < 0)
        return rc;
    drain(h->sinks, h->n, o->direct || o->proxy || o->compete, h->lr.events_acked, o->drain_s);
    row->wall_s = rc_bench_now_s() - t0;
    row->machine_busy_pct = rc_bench_busy_pct(busy0, total0);
    double sink_cpu = -sink_cpu0;
    double sink_rss = 0;
    for (int i = 0; i < h->n; i++) {
        sink_cpu += rc_bench_cpu_s(h->sinks[i].pid);
        sink_rss += rc_bench_rss_mib(h->sinks[i].pid);
    }
    if (o->direct) {
        row->cpu_s = sink_cpu;
        row->rss_mib = sink_rss;
        row->rss_shm_mib = 0;
    } else if (o->proxy) {
        rc_bench_peer_usage(&h->peer, &row->cpu_s, &row->rss_mib, &row->rss_shm_mib);
        rc_bench_peer_stop(&h->peer);
    } else {
        row->cpu_s = tree_sum(h->peer.pid, rc_bench_cpu_s) - cpu0;
        row->worker_cpu_s = row->cpu_s - (rc_bench_cpu_s(h->peer.pid) - serve_cpu0);
        row->rss_mib = tree_sum(h->peer.pid, rc_bench_rss_mib);
        row->rss_shm_mib = rc_bench_shm_mib(h->peer.pid);
        rc_bench_peer_stop(&h->peer);
    }
    row->consumer_cpu_s = sink_cpu;
    row->client_cpu_s = h->lr.cpu_s;
    row->events = h->lr.events_acked;
    row->errors = h->lr.errors;
    for (int i = 0; i < h->n; i++)
        rc_bench_csink_stop(&h->sinks[i]);
    return 0;
}

/* Acknowledged events lost: through triggers, each sink's misses count; direct and competing,
 * the events no sink got. `*extra` gets the copies beyond the first of events more than one
 * sink got (duplicates when the sinks compete; never, direct). */
static uint64_t count_lost(const hrun_t *h, uint64_t *extra)
{
    int one_of = h->o->direct || h->o->proxy || h->o->compete;
    uint64_t lost = 0;
    for (uint64_t s = 0; s < h->lr.seq_count; s++) {
        if (!h->lr.acked[s])
            continue;
        int got = 0;
        for (int i = 0; i < h->n; i++)
            got += rc_bench_csink_seen(&h->sinks[i], s);
        lost += one_of ? got == 0 : (uint64_t)(h->n - got);
        *extra += one_of && got > 1 ? (uint64_t)(got - 1) : 0;
    }
    return lost;
}

/* The sinks' results into the row (read once they are stopped): latency, duplicates, lost,
 * throughput (the slowest sink's events; direct: requests per sink; compete: distinct events
 * over all sinks) over first publish to last delivery, and the note; `*deliveries_s` gets all
 * sinks' distinct deliveries per second. */
static void hrun_results(hrun_t *h, double *deliveries_s)
{
    rc_row_t *row = h->row;
    rc_hist_t lat;
    rc_hist_init(&lat);
    uint64_t least, total, last = h->lr.start_ns, bad = 0;
    sink_counts(h->sinks, h->n, &least, &total);
    for (int i = 0; i < h->n; i++) {
        const rc_sink_stats_t *st = h->sinks[i].stats;
        rc_hist_merge(&lat, &st->lat);
        uint64_t l = atomic_load(&st->last_rx_ns);
        last = l > last ? l : last;
        row->dups += st->dups;
        bad += st->bad;
    }
    uint64_t extra = 0;
    row->lost = count_lost(h, &extra);
    row->dups += extra;
    if (bad > 0)
        fprintf(stderr, "bench %s %s: %llu deliveries without readable stamps\n", h->scenario,
                h->sysname, (unsigned long long)bad);
    double span = (double)(last - h->lr.start_ns) / 1e9;
    double dps = span > 0 ? (double)total / span : 0;
    row->throughput = span <= 0                     ? 0
                      : h->o->direct || h->o->proxy ? (double)total / span / h->n
                      : h->o->compete               ? (double)(total - extra) / span
                                                    : (double)least / span;
    if (deliveries_s != NULL)
        *deliveries_s = dps;
    char status[120];
    rc_bench_status_note(&h->lr, status, sizeof(status));
    snprintf(row->note, sizeof(row->note), "%.0f deliveries/s to %d sink%s%s%s", dps, h->n,
             h->n == 1 ? "" : "s", status[0] ? "; " : "", status);
    rc_bench_row_latency(row, &lat);
    fprintf(stderr,
            "bench %s %s (%s): %.0f events/s%s, %.0f deliveries/s, p50 %.1f µs, "
            "p99 %.1f µs, lost %llu, dups %llu, errors %llu, cpu %.2f s, rss %.1f MiB%s%s\n",
            h->scenario, h->sysname, h->params, row->throughput,
            h->o->compete ? " (all sinks)" : " per sink", dps, row->p50_us, row->p99_us,
            (unsigned long long)row->lost, (unsigned long long)row->dups,
            (unsigned long long)row->errors, row->cpu_s, row->rss_mib, row->note[0] ? "; " : "",
            row->note);
}

static void hrun_close(hrun_t *h)
{
    rc_bench_peer_stop(&h->peer);
    for (int i = 0; i < h->started; i++)
        rc_bench_csink_free(&h->sinks[i]);
    free(h->sinks);
    free(h->ports);
    free(h->lr.acked);
}

int rc_bench_http_run(const char *scenario, const char *params, const rc_http_run_opts_t *o,
                      rc_row_t *row, double *deliveries_s)
{
    hrun_t h = {.o = o, .scenario = scenario, .params = params, .row = row, .n = o->triggers};
    h.sysname = o->label    ? o->label
                : o->proxy  ? "nginx-proxy"
                : o->direct ? "sinks-direct"
                            : "ringcast-http";
    rc_bench_row_init(row, scenario, params, h.sysname);
    row->consumers = h.n;
    row->rate = o->load.rate;
    if (deliveries_s != NULL)
        *deliveries_s = 0;
    int rc = hrun_check(&h);
    if (rc < 0)
        return rc;
    char why[200];
    rc_peer_kind_t need = o->proxy ? RC_PEER_NGINX : RC_PEER_RINGCAST;
    if (!o->direct && !rc_bench_peer_available(need, why, sizeof(why))) {
        rc_bench_skip_row(row, scenario, params, h.sysname, why);
        return 0;
    }
    rc = sinks_start(&h);
    if (rc == 0)
        rc = target_start(&h);
    if (rc == 0)
        rc = hrun_measure(&h);
    if (rc == 0)
        hrun_results(&h, deliveries_s);
    hrun_close(&h);
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
