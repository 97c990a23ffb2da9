/* ringcast-bench scaleout: N `ringcast serve` nodes sharing one broker over Redis Streams
 * (docs/scaleout.md; issue 16), one trigger (one Redis consumer group across the nodes) to one
 * counting HTTP sink, the load generator's connections spread over the nodes. Each row gives
 * accepted events/s, publish-to-sink percentiles, duplicates and losses (each accepted event
 * exactly once at the sink), and events per CPU-second of the broker nodes plus Redis and of
 * the whole machine. In the same run: the single-node memory (shm) broker pushing to the same
 * kind of sink, and Dapr's Redis pattern (XADD per message, one consumer group read with
 * XREADGROUP + XACK). All nodes share this machine's cores: the rows measure efficiency, not
 * scaling. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/http_run.h"
#include "bench/peers.h"
#include "bench/procs.h"
#include "bench/run.h"
#include "bench/scenarios.h"
#include "bench/sink_server.h"

#define MAX_NODES  RC_BENCH_MAX_NODES
#define MAX_SEQ    (1ull << 25) /* sequence numbers the sink marks (a 4 MiB bitmap) */
#define PARTITIONS 2            /* spec.redis.partitions of the shared broker */
#define MAX_RUNS   16

/* A row and what the report needs beyond it: the CPU of the broker side apart from Redis's
 * (ringcast-redis: the nodes and their workers; ringcast-shm: serve and its workers, no Redis;
 * redis-dapr: the consumer thread standing for the sidecar, and Redis). */
typedef struct {
    rc_row_t row;
    double nodes_cpu_s, redis_cpu_s;
} srow_t;

/* One run's servers. */
typedef struct {
    const rc_bench_opts_t *o;
    int n;
    rc_peer_t redis;
    rc_peer_t node[MAX_NODES];
    int ports[MAX_NODES];
    rc_bench_csink_t sink;
    int sink_up;
    rc_lg_result_t lr;
} srun_t;

/* The one trigger, `arg` pointing at the sink's port. */
static int trigger_yaml(FILE *f, const char *dir, void *arg)
{
    (void)dir;
    int sink_port = *(const int *)arg;
    fprintf(f,
            "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t0\n"
            "  namespace: default\nspec:\n  broker: default\n  subscriber:\n"
            "    uri: http://127.0.0.1:%d/\n",
            sink_port);
    return ferror(f) ? -EIO : 0;
}

/* CPU seconds of `pid` and its direct children (a node's delivery workers). */
static double tree_cpu(pid_t pid)
{
    pid_t kids[64];
    int n = rc_bench_child_pids(pid, kids, 64);
    double sum = rc_bench_cpu_s(pid);
    for (int i = 0; i < n; i++) {
        double k = rc_bench_cpu_s(kids[i]);
        sum += k > 0 ? k : 0;
    }
    return sum;
}

/* CPU seconds of the nodes with their workers; `*serve` (may be NULL) the serve processes'. */
static double nodes_cpu(const srun_t *s, double *serve)
{
    double sum = 0, own = 0;
    for (int i = 0; i < s->n; i++) {
        sum += tree_cpu(s->node[i].pid);
        own += rc_bench_cpu_s(s->node[i].pid);
    }
    if (serve != NULL)
        *serve = own;
    return sum;
}

/* Starts the sink, Redis and the nodes. Returns 0 or a negative code (row->note says why). */
static int srun_start(srun_t *s, rc_row_t *row)
{
    int rc = rc_bench_csink_start(&s->sink, MAX_SEQ);
    if (rc < 0) {
        snprintf(row->note, sizeof(row->note), "sink did not start: %s", strerror(-rc));
        return rc;
    }
    s->sink_up = 1;
    rc = rc_bench_peer_start(RC_PEER_REDIS, 0, &s->redis, row->note, sizeof(row->note));
    for (int i = 0; i < s->n && rc == 0; i++) {
        char id[16];
        snprintf(id, sizeof(id), "node-%d", i);
        rc_bench_redis_node_t rn = {s->redis.port, PARTITIONS, id};
        rc =
            rc_bench_ringcast_start_redis(&rn, s->o->ring_bytes, s->o->workers, trigger_yaml,
                                          &s->sink.port, &s->node[i], row->note, sizeof(row->note));
        s->ports[i] = s->node[i].port;
    }
    return rc;
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits while the sink makes progress until it has `target` distinct events. */
static void drain(const rc_bench_csink_t *sink, uint64_t target, double limit)
{
    uint64_t prev = 0;
    for (double idle = 0; idle < limit; nap_ms(20)) {
        uint64_t u = atomic_load_explicit(&sink->stats->unique, memory_order_relaxed);
        if (u >= target)
            return;
        idle = u == prev ? idle + 0.02 : 0;
        prev = u;
    }
}

/* Publishes over the nodes, waits for the sink, takes the CPU of nodes and Redis. */
static int srun_measure(srun_t *s, srow_t *sr)
{
    rc_row_t *row = &sr->row;
    rc_lg_opts_t lo;
    rc_lg_opts_init(&lo);
    lo.proto = (rc_lg_proto_t)s->o->mode;
    lo.conns = s->o->conns < s->n ? s->n : s->o->conns; /* connection i to node i mod N */
    lo.depth = s->o->depth;
    lo.seconds = s->o->seconds;
    lo.size = s->o->size;
    lo.batch = s->o->batch;
    lo.types = 1;
    lo.rate = s->o->rate;
    lo.ports = s->ports;
    lo.nports = s->n;
    double serve0, serve1, ncpu0 = nodes_cpu(s, &serve0), rcpu0 = rc_bench_cpu_s(s->redis.pid);
    double scpu0 = rc_bench_cpu_s(s->sink.pid), t0 = rc_bench_now_s(), busy0 = -1, total0 = -1;
    rc_bench_machine_ticks(&busy0, &total0);
    int rc = rc_bench_publish("scaleout", row->system, &lo, &s->lr, row);
    if (rc < 0)
        return rc;
    drain(&s->sink, s->lr.events_acked, s->o->drain_s);
    row->wall_s = rc_bench_now_s() - t0;
    row->machine_busy_pct = rc_bench_busy_pct(busy0, total0);
    sr->nodes_cpu_s = nodes_cpu(s, &serve1) - ncpu0;
    row->worker_cpu_s = sr->nodes_cpu_s - (serve1 - serve0);
    sr->redis_cpu_s = rc_bench_cpu_s(s->redis.pid) - rcpu0;
    row->cpu_s = sr->nodes_cpu_s + sr->redis_cpu_s;
    for (int i = 0; i < s->n; i++)
        row->rss_mib += rc_bench_rss_mib(s->node[i].pid);
    row->consumer_cpu_s = rc_bench_cpu_s(s->sink.pid) - scpu0;
    row->client_cpu_s = s->lr.cpu_s;
    row->events = s->lr.events_acked;
    row->errors = s->lr.errors;
    return 0;
}

/* The sink's results into the row, once it is stopped: each accepted event exactly once. */
static void srun_results(srun_t *s, srow_t *sr)
{
    rc_row_t *row = &sr->row;
    const rc_sink_stats_t *st = s->sink.stats;
    for (uint64_t q = 0; q < s->lr.seq_count; q++)
        row->lost += s->lr.acked[q] && !rc_bench_csink_seen(&s->sink, q);
    row->dups = st->dups;
    uint64_t unique = atomic_load(&st->unique), last = atomic_load(&st->last_rx_ns);
    double span = last > s->lr.start_ns ? (double)(last - s->lr.start_ns) / 1e9 : 0;
    row->throughput = span > 0 ? (double)unique / span : 0;
    rc_bench_row_latency(row, &st->lat);
    char status[120];
    rc_bench_status_note(&s->lr, status, sizeof(status));
    snprintf(row->note, sizeof(row->note),
             "%d node%s + redis (nodes %.2f s, redis %.2f s CPU)%s%s%s", s->n, s->n == 1 ? "" : "s",
             sr->nodes_cpu_s, sr->redis_cpu_s, st->bad ? "; deliveries without stamps" : "",
             status[0] ? "; " : "", status);
}

static void srun_stop(srun_t *s)
{
    for (int i = 0; i < s->n; i++)
        rc_bench_peer_stop(&s->node[i]);
    rc_bench_peer_stop(&s->redis);
    if (s->sink_up)
        rc_bench_csink_stop(&s->sink);
}

/* One run of N nodes on one Redis. Returns 0 (row filled or skipped) or a negative code. */
static int scaleout_run(const rc_bench_opts_t *o, int n, const char *params, srow_t *sr)
{
    memset(sr, 0, sizeof(*sr));
    rc_row_t *row = &sr->row;
    rc_bench_row_init(row, "scaleout", params, "ringcast-redis");
    row->consumers = 1;
    row->rate = o->rate;
    char why[200];
    if (!rc_bench_peer_available(RC_PEER_RINGCAST, why, sizeof(why)) ||
        !rc_bench_peer_available(RC_PEER_REDIS, why, sizeof(why))) {
        rc_bench_skip_row(row, "scaleout", params, "ringcast-redis", why);
        return 0;
    }
    srun_t s = {.o = o, .n = n};
    int rc = srun_start(&s, row);
    if (rc == 0) {
        fprintf(stderr, "bench scaleout ringcast-redis (%s): redis pid %d port %d, %d node(s)\n",
                params, (int)s.redis.pid, s.redis.port, n);
        rc = srun_measure(&s, sr);
    }
    srun_stop(&s);
    if (rc == 0)
        srun_results(&s, sr);
    else
        fprintf(stderr, "bench scaleout ringcast-redis (%s): %s\n", params, row->note);
    if (s.sink_up)
        rc_bench_csink_free(&s.sink);
    free(s.lr.acked);
    return rc;
}

static int open_loop; /* for by_key: order by p99 (open loop) or throughput */

static int by_key(const void *a, const void *b)
{
    const rc_row_t *x = &((const srow_t *)a)->row, *y = &((const srow_t *)b)->row;
    double kx = open_loop ? x->p99_us : x->throughput, ky = open_loop ? y->p99_us : y->throughput;
    return kx < ky ? -1 : kx > ky;
}

/* `runs` runs of N nodes; keeps the median (throughput, open loop p99) and the worst loss. */
static int scaleout_median(const rc_bench_opts_t *o, int n, const char *params, srow_t *out)
{
    srow_t all[MAX_RUNS];
    int runs = o->runs < 1 ? 1 : o->runs > MAX_RUNS ? MAX_RUNS : o->runs, k = 0, rc = 0;
    for (; k < runs && !rc_bench_stop_flag; k++) {
        rc = scaleout_run(o, n, params, &all[k]);
        if (rc < 0 || all[k].row.skipped) {
            *out = all[k];
            return rc;
        }
    }
    open_loop = o->rate > 0;
    qsort(all, (size_t)k, sizeof(all[0]), by_key);
    *out = all[k / 2];
    for (int i = 0; i < k; i++) { /* loss or a duplicate in any run counts */
        out->row.lost = all[i].row.lost > out->row.lost ? all[i].row.lost : out->row.lost;
        out->row.dups = all[i].row.dups > out->row.dups ? all[i].row.dups : out->row.dups;
    }
    if (k > 1) { /* the range of both keys over the runs */
        double tmin = all[0].row.throughput, tmax = tmin, pmin = all[0].row.p99_us, pmax = pmin;
        for (int i = 1; i < k; i++) {
            tmin = all[i].row.throughput < tmin ? all[i].row.throughput : tmin;
            tmax = all[i].row.throughput > tmax ? all[i].row.throughput : tmax;
            pmin = all[i].row.p99_us < pmin ? all[i].row.p99_us : pmin;
            pmax = all[i].row.p99_us > pmax ? all[i].row.p99_us : pmax;
        }
        size_t len = strlen(out->row.note);
        snprintf(out->row.note + len, sizeof(out->row.note) - len,
                 "; median %s of %d runs: %.0f-%.0f events/s, p99 %.0f-%.0f µs",
                 open_loop ? "p99" : "throughput", k, tmin, tmax, pmin, pmax);
    }
    return 0;
}

/* The machine-readable line of one row: efficiency and exactly-once. */
static void print_row_line(const srow_t *sr, int nodes)
{
    const rc_row_t *x = &sr->row;
    if (x->skipped) {
        printf("scaleout_row system=%s nodes=%d skipped=1\n", x->system, nodes);
        return;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double machine_cpu_s = x->machine_busy_pct >= 0 && ncpu > 0
                               ? x->machine_busy_pct / 100.0 * (double)ncpu * x->wall_s
                               : -1;
    double ev = (double)x->events, server = sr->nodes_cpu_s + sr->redis_cpu_s;
    printf("scaleout_row system=%s nodes=%d cores=%ld eps=%.0f p50_us=%.1f p99_us=%.1f "
           "events=%llu lost=%llu dups=%llu errors=%llu exactly_once=%d server_cpu_s=%.3f "
           "nodes_cpu_s=%.3f redis_cpu_s=%.3f events_per_server_cpu_s=%.0f "
           "machine_busy_pct=%.0f events_per_machine_cpu_s=%.0f wall_s=%.2f\n",
           x->system, nodes, ncpu, x->throughput, x->p50_us, x->p99_us,
           (unsigned long long)x->events, (unsigned long long)x->lost, (unsigned long long)x->dups,
           (unsigned long long)x->errors, x->lost == 0 && x->dups == 0, server, sr->nodes_cpu_s,
           sr->redis_cpu_s, server > 0 ? ev / server : 0, x->machine_busy_pct,
           machine_cpu_s > 0 ? ev / machine_cpu_s : 0, x->wall_s);
}

/* The two comparison rows: the single-node memory broker pushing to one sink, and Dapr's
 * Redis pattern (XADD per message; one consumer group, XREADGROUP + XACK, in a bench thread
 * standing for the sidecar: its CPU is counted with Redis's). */
static int baseline_rows(const rc_bench_opts_t *o, srow_t *shm, srow_t *dapr)
{
    int failed = 0;
    rc_http_run_opts_t h;
    rc_bench_http_opts(o, o->rate, &h);
    h.label = "ringcast-shm";
    h.triggers = 1;
    memset(shm, 0, sizeof(*shm));
    if (rc_bench_http_run_median("scaleout", "nodes=1", &h, o->runs, &shm->row, NULL, NULL) < 0)
        failed++;
    shm->nodes_cpu_s = shm->row.cpu_s;
    shm->redis_cpu_s = 0;
    rc_run_opts_t ro;
    rc_bench_run_opts(o, RC_PEER_REDIS, &ro);
    ro.label = "redis-dapr";
    ro.consumers = 1;
    ro.compete = 1;
    ro.load.rate = o->rate;
    memset(dapr, 0, sizeof(*dapr));
    if (rc_bench_run_median("scaleout", "nodes=1", &ro, o->runs, &dapr->row) < 0)
        failed++;
    dapr->redis_cpu_s = dapr->row.cpu_s;
    dapr->nodes_cpu_s = dapr->row.consumer_cpu_s; /* the sidecar's consumer */
    return failed;
}

int rc__bench_scaleout_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    double counts[MAX_NODES];
    const char *list = o->nodes ? o->nodes : "1,2,3";
    int n = rc_bench_list_nums(list, counts, MAX_NODES); /* checked by the option parser */
    if (n < 0)
        return 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srow_t rows[MAX_NODES + 2];
    int failed = 0, k = 0;
    for (int i = 0; i < n && !rc_bench_stop_flag; i++, k++) {
        char params[48];
        snprintf(params, sizeof(params), "nodes=%d", (int)counts[i]);
        if (scaleout_median(o, (int)counts[i], params, &rows[k]) < 0)
            failed++;
    }
    failed += baseline_rows(o, &rows[k], &rows[k + 1]);
    k += 2;
    printf("note: the %s nodes, Redis, the sink and the load generator share this machine's "
           "%ld cores: the rows compare efficiency (events per CPU-second), not scaling\n",
           list, ncpu);
    for (int i = 0; i < k; i++) {
        rc_report_add(rep, &rows[i].row);
        print_row_line(&rows[i], i < n ? (int)counts[i] : 1);
    }
    return failed;
}

int rc_bench_scaleout(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("scaleout",
                                 "N ringcast nodes sharing one broker over Redis Streams (one "
                                 "trigger = one consumer group across the nodes) to one counting "
                                 "sink, the load spread over the nodes; next to the single-node "
                                 "memory (shm) broker and Dapr's Redis pattern (XADD, "
                                 "XREADGROUP + XACK). The nodes share this machine's cores: "
                                 "efficiency, not scaling.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_scaleout_rows(&o, &rep);
    rc = rc_bench_finish("scaleout", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
