/* One run. The consumers attach before the first event is published (a lossless ringcast
 * reader starting at "latest", a Redis group created at "$", a NATS subscription confirmed by
 * PING/PONG), so every acknowledged event must reach each of them: anything missing is lost. */
#include "bench/run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/consumers.h"
#include "bench/procs.h"

volatile int rc_bench_stop_flag;

void rc_run_opts_init(rc_run_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->system = RC_PEER_RINGCAST;
    rc_lg_opts_init(&o->load);
    o->http_mode = RC_LG_HTTP_BINARY;
    o->drain_s = 2.0;
    o->ring_bytes = 64ull << 20;
}

void rc_bench_row_init(rc_row_t *row, const char *scenario, const char *params, const char *system)
{
    memset(row, 0, sizeof(*row));
    snprintf(row->scenario, sizeof(row->scenario), "%s", scenario);
    snprintf(row->params, sizeof(row->params), "%s", params);
    snprintf(row->system, sizeof(row->system), "%s", system);
}

void rc_bench_row_latency(rc_row_t *row, const rc_hist_t *lat)
{
    row->p50_us = (double)rc_hist_pct(lat, 50) / 1e3;
    row->p90_us = (double)rc_hist_pct(lat, 90) / 1e3;
    row->p99_us = (double)rc_hist_pct(lat, 99) / 1e3;
    row->p999_us = (double)rc_hist_pct(lat, 99.9) / 1e3;
    row->max_us = (double)lat->max / 1e3;
}

void rc_bench_skip_row(rc_row_t *row, const char *scenario, const char *params, const char *system,
                       const char *why)
{
    rc_bench_row_init(row, scenario, params, system);
    snprintf(row->note, sizeof(row->note), "%s", why);
    row->skipped = 1;
    fprintf(stderr, "bench %s %s (%s): skipped: %s\n", scenario, system, params, why);
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int rc_bench_publish(const char *scenario, const char *sysname, const rc_lg_opts_t *lo,
                     rc_lg_result_t *lr, rc_row_t *row)
{
    char err[200];
    int rc = rc_lg_run(lo, &rc_bench_stop_flag, lr, err, sizeof(err));
    if (rc < 0) {
        snprintf(row->note, sizeof(row->note), "%s", err);
        fprintf(stderr, "bench %s %s: %s\n", scenario, sysname, err);
        return rc;
    }
    if (lr->events_acked == 0) {
        rc_bench_status_note(lr, row->note, sizeof(row->note));
        fprintf(stderr, "bench %s %s: no event was acknowledged (%s)\n", scenario, sysname,
                row->note);
        return -EIO;
    }
    return 0;
}

void rc_bench_status_note(const rc_lg_result_t *lr, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < lr->nstatus && used < cap; i++) {
        int s = lr->status[i];
        if (s == 0 || (s >= 200 && s < 300))
            continue;
        const char *name = s == -1 ? "connection lost" : s == 1 ? "error reply" : NULL;
        int n = name ? snprintf(buf + used, cap - used, "%s%s: %llu", used ? ", " : "errors ", name,
                                (unsigned long long)lr->status_count[i])
                     : snprintf(buf + used, cap - used, "%sHTTP %d: %llu", used ? ", " : "errors ",
                                s, (unsigned long long)lr->status_count[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* One run's state, from the server's start to its stop. */
typedef struct {
    const rc_run_opts_t *o;
    const char *scenario, *params, *sysname;
    rc_row_t *row;
    rc_peer_t peer;
    rc_lg_opts_t lo;
    rc_consumer_t *cons; /* o->consumers of them */
    int started;         /* consumers running */
    rc_lg_result_t lr;
    double t0;            /* start of the measured interval (rc_bench_now_s) */
    double busy0, total0; /* the machine's CPU ticks then */
} run_t;

static rc_lg_proto_t load_proto(const rc_run_opts_t *o)
{
    switch (o->system) {
    case RC_PEER_REDIS:
        return RC_LG_RESP_XADD;
    case RC_PEER_NATS:
        return RC_LG_NATS_PUB;
    case RC_PEER_RINGCAST:
    case RC_PEER_NGINX:
        break;
    }
    return (rc_lg_proto_t)o->http_mode;
}

/* Consumer i of the run: a ringcast reader or group member on the peer's ring, a Redis group
 * (its own, or the shared "bench" one), or a NATS subscriber. */
static void consumer_setup(const run_t *r, int i, rc_consumer_t *c)
{
    const rc_run_opts_t *o = r->o;
    rc_cons_kind_t shm = o->compete ? RC_CONS_SHM_GROUP : RC_CONS_SHM;
    c->kind = o->system == RC_PEER_RINGCAST ? shm
              : o->system == RC_PEER_REDIS  ? RC_CONS_REDIS
                                            : RC_CONS_NATS;
    c->ring = r->peer.ring;
    c->spin = o->reader_spin;
    c->ack = o->compete; /* a shared group acknowledges, as Dapr's component does */
    c->linger_us = o->reader_linger_us;
    c->port = r->peer.port;
    c->topic = r->lo.topic;
    if (o->compete)
        snprintf(c->group, sizeof(c->group), "bench");
    else
        snprintf(c->group, sizeof(c->group), "g%d", i);
    snprintf(c->name, sizeof(c->name), "bench-c%d", i);
}

/* Attaches every consumer before the first event is published. Returns 0 or a negative code
 * (row->note says which consumer failed). */
static int consumers_start(run_t *r)
{
    if (r->o->consumers <= 0)
        return 0;
    r->cons = calloc((size_t)r->o->consumers, sizeof(*r->cons));
    if (r->cons == NULL)
        return -ENOMEM;
    for (int i = 0; i < r->o->consumers; i++) {
        rc_consumer_t *c = &r->cons[i];
        consumer_setup(r, i, c);
        int rc = rc_consumer_start(c);
        if (rc < 0) {
            snprintf(r->row->note, sizeof(r->row->note), "consumer %d: %s", i, c->err);
            fprintf(stderr, "bench %s %s: %s\n", r->scenario, r->sysname, r->row->note);
            return rc;
        }
        r->started++;
    }
    return 0;
}

/* Waits while the consumers make progress, until each has every acknowledged event (competing:
 * until they have them together), or o->drain_s passed without progress. */
static void consumers_drain(const run_t *r)
{
    uint64_t target = r->lr.events_acked;
    double idle = 0;
    while (r->started > 0 && idle < r->o->drain_s) {
        uint64_t least = UINT64_MAX, total = 0;
        for (int i = 0; i < r->started; i++) {
            uint64_t u = atomic_load_explicit(&r->cons[i].unique, memory_order_relaxed);
            total += u;
            if (u < least)
                least = u;
        }
        if (r->o->compete ? total >= target : least >= target)
            break;
        nap(0.02);
        uint64_t after = 0;
        for (int i = 0; i < r->started; i++)
            after += atomic_load_explicit(&r->cons[i].unique, memory_order_relaxed);
        idle = after == total ? idle + 0.02 : 0;
    }
}

/* Stops the consumers and takes their results into the row: latency into `lat`, lost and
 * duplicated events, their CPU, and the throughput (the slowest consumer's events, or all
 * competing consumers' together, over first publish to last delivery). */
static void consumers_collect(run_t *r, rc_hist_t *lat)
{
    const rc_run_opts_t *o = r->o;
    rc_row_t *row = r->row;
    const rc_lg_result_t *lr = &r->lr;
    rc_hist_init(lat);
    double least = -1;
    uint64_t last = lr->start_ns;
    for (int i = 0; i < r->started; i++) {
        rc_consumer_t *c = &r->cons[i];
        rc_consumer_stop(c);
        rc_hist_merge(lat, &c->lat);
        if (!o->compete) {
            row->lost += rc_consumer_lost(c, lr->acked, lr->seq_count);
            row->dups += c->dups;
        }
        row->consumer_cpu_s += c->cpu_s;
        uint64_t u = atomic_load(&c->unique);
        if (least < 0 || (double)u < least)
            least = (double)u;
        if (c->last_rx_ns > last)
            last = c->last_rx_ns;
        if (c->error < 0 && row->note[0] == 0)
            snprintf(row->note, sizeof(row->note), "consumer %d: %s", i, c->err);
        if (c->bad > 0)
            fprintf(stderr, "bench: consumer %d: %llu events without stamps\n", i,
                    (unsigned long long)c->bad);
    }
    double got = least;
    if (o->compete) {
        row->lost =
            rc_consumers_lost_any(r->cons, r->started, lr->acked, lr->seq_count, &row->dups);
        got = (double)(lr->events_acked - (row->lost < lr->events_acked ? row->lost : 0));
    }
    r->started = 0;
    double span = (double)(last - lr->start_ns) / 1e9;
    row->throughput = span > 0 ? got / span : 0;
}

/* After publishing: the server's usage, the load's counts, and the consumers' results (without
 * consumers, latency and throughput are the publisher's: request -> answer). */
static void run_results(run_t *r)
{
    rc_row_t *row = r->row;
    rc_bench_peer_usage(&r->peer, &row->cpu_s, &row->rss_mib, &row->rss_shm_mib);
    row->wall_s = rc_bench_now_s() - r->t0;
    row->machine_busy_pct = rc_bench_busy_pct(r->busy0, r->total0);
    row->client_cpu_s = r->lr.cpu_s;
    row->events = r->lr.events_acked;
    row->errors = r->lr.errors;
    rc_bench_status_note(&r->lr, row->note, sizeof(row->note));
    rc_hist_t lat;
    if (r->started > 0) {
        consumers_collect(r, &lat);
    } else {
        lat = r->lr.lat;
        row->throughput = r->lr.publish_s > 0 ? (double)r->lr.events_acked / r->lr.publish_s : 0;
    }
    rc_bench_row_latency(row, &lat);
    fprintf(stderr,
            "bench %s %s (%s): %.0f events/s, p50 %.1f µs, p99 %.1f µs, lost %llu, dups %llu, "
            "errors %llu, server cpu %.2f s, rss %.1f MiB%s%s\n",
            r->scenario, r->sysname, r->params, row->throughput, row->p50_us, row->p99_us,
            (unsigned long long)row->lost, (unsigned long long)row->dups,
            (unsigned long long)row->errors, row->cpu_s, row->rss_mib, row->note[0] ? "; " : "",
            row->note);
}

/* The file store's fdatasyncs during the publishing time, from its /metrics read before (f[0])
 * and right after (f[1]) publishing (frc: how each read went), into the row. Returns 0 or the
 * error (row->note says it). */
static int fsync_results(run_t *r, const int frc[2], const rc_bench_fsyncs_t f[2])
{
    for (int i = 0; i < 2; i++) {
        if (frc[i] < 0) {
            snprintf(r->row->note, sizeof(r->row->note),
                     "cannot read ringcast_storage_fsyncs_total from /metrics %s the run: %s",
                     i ? "after" : "before", strerror(-frc[i]));
            fprintf(stderr, "bench %s %s: %s\n", r->scenario, r->sysname, r->row->note);
            return frc[i];
        }
    }
    const rc_bench_fsyncs_t *f0 = &f[0], *f1 = &f[1];
    double n = f1->fsyncs - f0->fsyncs;
    rc_row_t *row = r->row;
    row->has_fsyncs = 1;
    row->durable_events = f1->durable - f0->durable;
    row->fsyncs_per_s = r->lr.publish_s > 0 ? n / r->lr.publish_s : 0;
    row->events_per_fsync = n > 0 ? row->durable_events / n : 0;
    row->fsync_mean_us = n > 0 ? (f1->fsync_s - f0->fsync_s) / n * 1e6 : 0;
    return 0;
}

/* Appends to the note of a run on a store what it did: a file store's fdatasyncs, or Redis' AOF
 * (checked to be on: a Redis that ignored --appendonly would measure memory). Returns 0, or
 * -EIO when Redis says its AOF is off or failing. */
static int store_note(run_t *r)
{
    rc_row_t *row = r->row;
    size_t len = strlen(row->note);
    char *at = row->note + len;
    size_t cap = sizeof(row->note) - len;
    const char *sep = len ? "; " : "";
    if (row->has_fsyncs) {
        snprintf(at, cap, "%s%.0f fsyncs/s, %.1f events/fsync, fdatasync %.0f µs mean", sep,
                 row->fsyncs_per_s, row->events_per_fsync, row->fsync_mean_us);
        return 0;
    }
    if (r->o->system != RC_PEER_REDIS) {
        snprintf(at, cap, "%sno fsyncs (durability %s)", sep, r->o->store);
        return 0;
    }
    char on[16] = "?", status[16] = "?", size[32] = "?";
    rc_bench_redis_info(&r->peer, "persistence", "aof_enabled", on, sizeof(on));
    rc_bench_redis_info(&r->peer, "persistence", "aof_last_write_status", status, sizeof(status));
    rc_bench_redis_info(&r->peer, "persistence", "aof_current_size", size, sizeof(size));
    if (strcmp(on, "1") != 0 || strcmp(status, "ok") != 0) {
        snprintf(at, cap,
                 "%sRedis INFO persistence: aof_enabled:%s aof_last_write_status:%s "
                 "(want 1 and ok)",
                 sep, on, status);
        fprintf(stderr, "bench %s %s: %s\n", r->scenario, r->sysname, row->note);
        return -EIO;
    }
    snprintf(at, cap, "%sAOF %.1f MiB; Redis reports no fsync count", sep,
             strtod(size, NULL) / (1 << 20));
    return 0;
}

static void run_close(run_t *r)
{
    for (int i = 0; i < r->started; i++)
        rc_consumer_stop(&r->cons[i]);
    if (r->cons != NULL) {
        for (int i = 0; i < r->o->consumers; i++)
            rc_consumer_free(&r->cons[i]);
    }
    free(r->cons);
    free(r->lr.acked);
    rc_bench_peer_stop(&r->peer);
}

int rc_bench_run(const char *scenario, const char *params, const rc_run_opts_t *o, rc_row_t *row)
{
    run_t r = {.o = o, .scenario = scenario, .params = params, .row = row};
    r.sysname = o->label ? o->label : rc_bench_peer_name(o->system);
    char why[200];
    if (!rc_bench_peer_available(o->system, why, sizeof(why))) {
        rc_bench_skip_row(row, scenario, params, r.sysname, why);
        return 0;
    }
    rc_bench_row_init(row, scenario, params, r.sysname);
    row->consumers = o->consumers;
    row->rate = o->load.rate;
    int rc;
    if (o->store != NULL)
        rc = rc_bench_peer_start_store(o->system, o->ring_bytes, o->store, o->store_parent, &r.peer,
                                       row->note, sizeof(row->note));
    else if (o->config != NULL && o->system == RC_PEER_RINGCAST)
        rc = rc_bench_ringcast_start(o->ring_bytes, 0, o->config, o->config_arg, &r.peer, row->note,
                                     sizeof(row->note));
    else
        rc = rc_bench_peer_start(o->system, o->ring_bytes, &r.peer, row->note, sizeof(row->note));
    if (rc < 0) {
        fprintf(stderr, "bench %s %s: %s\n", scenario, r.sysname, row->note);
        return rc;
    }
    fprintf(stderr, "bench %s %s (%s): server pid %d port %d\n", scenario, r.sysname, params,
            (int)r.peer.pid, r.peer.port);
    r.lo = o->load;
    r.lo.port = r.peer.port;
    r.lo.proto = load_proto(o);
    rc = consumers_start(&r);
    if (rc < 0)
        goto out;
    /* A file store with a flusher: its counters before and right after publishing. */
    int flushes = o->system == RC_PEER_RINGCAST && o->store != NULL && strcmp(o->store, "none");
    rc_bench_fsyncs_t f[2];
    int frc[2] = {flushes ? rc_bench_peer_fsyncs(&r.peer, &f[0]) : 0, 0};
    rc_bench_peer_mark(&r.peer);
    r.t0 = rc_bench_now_s();
    r.busy0 = r.total0 = -1;
    rc_bench_machine_ticks(&r.busy0, &r.total0);
    rc = rc_bench_publish(scenario, r.sysname, &r.lo, &r.lr, row);
    if (rc < 0)
        goto out;
    if (flushes)
        frc[1] = rc_bench_peer_fsyncs(&r.peer, &f[1]);
    consumers_drain(&r);
    run_results(&r);
    if (flushes)
        rc = fsync_results(&r, frc, f);
    if (rc == 0 && o->store != NULL)
        rc = store_note(&r);
out:
    run_close(&r);
    return rc;
}

static int by_throughput(const void *a, const void *b)
{
    double x = ((const rc_row_t *)a)->throughput, y = ((const rc_row_t *)b)->throughput;
    return x < y ? -1 : x > y;
}

static int by_p99(const void *a, const void *b)
{
    double x = ((const rc_row_t *)a)->p99_us, y = ((const rc_row_t *)b)->p99_us;
    return x < y ? -1 : x > y;
}

int rc_bench_run_median(const char *scenario, const char *params, const rc_run_opts_t *o, int runs,
                        rc_row_t *row)
{
    if (runs <= 1)
        return rc_bench_run(scenario, params, o, row);
    rc_row_t *all = calloc((size_t)runs, sizeof(*all));
    if (all == NULL)
        return -ENOMEM;
    int rc = 0, n = 0;
    for (int i = 0; i < runs && !rc_bench_stop_flag; i++) {
        rc = rc_bench_run(scenario, params, o, &all[n]);
        if (rc < 0 || all[n].skipped) {
            *row = all[n];
            free(all);
            return rc;
        }
        n++;
    }
    rc_bench_pick_median(all, n, o->load.rate > 0, row);
    free(all);
    return rc;
}

void rc_bench_pick_median(rc_row_t *all, int n, int open_loop, rc_row_t *row)
{
    qsort(all, (size_t)n, sizeof(*all), open_loop ? by_p99 : by_throughput);
    *row = all[n / 2];
    size_t len = strlen(row->note);
    if (open_loop)
        snprintf(row->note + len, sizeof(row->note) - len, "%smedian p99 of %d runs: %.0f-%.0f µs",
                 len ? "; " : "", n, all[0].p99_us, all[n - 1].p99_us);
    else
        snprintf(row->note + len, sizeof(row->note) - len,
                 "%smedian of %d runs: %.0f-%.0f events/s", len ? "; " : "", n, all[0].throughput,
                 all[n - 1].throughput);
    /* Loss anywhere counts, not only in the median run. */
    for (int i = 0; i < n; i++) {
        if (all[i].lost > row->lost)
            row->lost = all[i].lost;
    }
}
