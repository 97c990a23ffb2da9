/* ringcast-bench fanout: every event to each of N consumers.
 * ringcast: N lossless shm readers on the broker's ring; Redis Streams: N consumer groups
 * (XREADGROUP ... NOACK); NATS: N subscribers; ringcast-http: HTTP publish -> `ringcast serve`
 * -> N exact-type Triggers -> N HTTP sinks (the Knative push path), next to sinks-direct, the
 * load generator posting straight to the same N sinks (what they accept without the broker), and
 * nginx-proxy, nginx as a keep-alive reverse proxy in front of the same N sinks (what a proxy
 * moves per second on this machine; ringcast-http's deliveries/s over its requests/s is a ratio
 * in the report, against the 1.5x target).
 * Throughput is the rate at which the slowest consumer received every event (first publish to
 * its last delivery); closed loop unless --rate. --targets runs the three target checks of the
 * delivery issue and prints one `target=...` line for each. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/http_run.h"
#include "bench/run.h"
#include "bench/scenarios.h"

#define SYSTEMS "ringcast,redis,nats,ringcast-http,sinks-direct,nginx-proxy"

/* Push delivery against nginx as a reverse proxy to the same sinks: the issue 17 target. */
#define PROXY_TARGET 1.5

/* Counts a --consumers or --triggers list holds at most (rc_bench_opts_parse checks it). */
#define MAX_COUNTS 16

static void http_opts(const rc_bench_opts_t *o, int direct, int triggers, int decoys, double rate,
                      rc_http_run_opts_t *h)
{
    rc_bench_http_opts(o, rate, h);
    h->direct = direct;
    h->triggers = triggers;
    h->decoys = decoys;
}

/* A kind of fanout row: the runs for one consumer count, each added to `rep` (params
 * "consumers=N[ rate=R]"). Returns how many failed. */
typedef int (*count_rows_fn)(const rc_bench_opts_t *o, int count, const char *params,
                             rc_report_t *rep);

/* Runs `rows` for each count of `list` (the first `limit` of them), in order. A count outside
 * 1..max ends the rows there with a message (the rows already run stay). Returns how many runs
 * failed, plus one for a bad list or count. */
static int each_count(const rc_bench_opts_t *o, const char *list, const char *what, int max,
                      int limit, count_rows_fn rows, rc_report_t *rep)
{
    double counts[MAX_COUNTS];
    int n = rc_bench_list_nums(list, counts, MAX_COUNTS);
    if (n < 0) {
        fprintf(stderr, "ringcast-bench fanout: --%s needs positive numbers: '%s'\n", what, list);
        return 1;
    }
    if (n > limit)
        n = limit;
    int failed = 0;
    for (int k = 0; k < n && !rc_bench_stop_flag; k++) {
        int count = (int)counts[k];
        if (count < 1 || count > max) {
            fprintf(stderr, "ringcast-bench fanout: %s 1-%d, not %d\n", what, max, count);
            return failed + 1;
        }
        char params[48];
        int used = snprintf(params, sizeof(params), "consumers=%d", count);
        if (o->rate > 0)
            snprintf(params + used, sizeof(params) - (size_t)used, " rate=%.0f", o->rate);
        failed += rows(o, count, params, rep);
    }
    return failed;
}

/* ringcast shm readers, Redis groups and NATS subscribers, `consumers` of each. */
static int shm_count_rows(const rc_bench_opts_t *o, int consumers, const char *params,
                          rc_report_t *rep)
{
    static const rc_peer_kind_t systems[] = {RC_PEER_RINGCAST, RC_PEER_REDIS, RC_PEER_NATS};
    int failed = 0;
    for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
        const char *name = rc_bench_peer_name(systems[i]);
        if (!rc_bench_list_has(o->systems, SYSTEMS, name))
            continue;
        rc_run_opts_t ro;
        rc_bench_run_opts(o, systems[i], &ro);
        ro.label = systems[i] == RC_PEER_RINGCAST ? "ringcast-shm" : NULL;
        ro.consumers = consumers;
        ro.load.rate = o->rate;
        if (o->reader_linger_us == RC_BENCH_LINGER_UNSET && o->rate <= 0)
            ro.reader_linger_us = RC_BENCH_FANOUT_LINGER_US; /* throughput, not latency */
        rc_row_t row;
        if (rc_bench_run_median("fanout", params, &ro, o->runs, &row) < 0)
            failed++;
        rc_report_add(rep, &row);
    }
    return failed;
}

/* Push delivery / nginx-proxy (deliveries per second, same sinks), into the ringcast-http row's
 * note and as a target line. */
static void proxy_ratio(rc_report_t *rep, int push_row, double push_dps, double proxy_dps,
                        int triggers)
{
    double r = proxy_dps > 0 ? push_dps / proxy_dps : 0;
    printf("target=push_vs_nginx_proxy consumers=%d ratio=%.3f limit=%.1f "
           "push_deliveries_s=%.0f proxy_requests_s=%.0f met=%d\n",
           triggers, r, PROXY_TARGET, push_dps, proxy_dps, r >= PROXY_TARGET);
    rc_row_t *x = &rep->rows[push_row];
    size_t len = strlen(x->note);
    snprintf(x->note + len, sizeof(x->note) - len, "%spush / nginx-proxy %.2fx (target %.1fx: %s)",
             len ? "; " : "", r, PROXY_TARGET, r >= PROXY_TARGET ? "met" : "not met");
}

/* ringcast-http with `triggers` matching triggers (plus the decoys, which params then count),
 * sinks-direct with as many sinks, and nginx-proxy in front of as many sinks. */
static int http_count_rows(const rc_bench_opts_t *o, int triggers, const char *params,
                           rc_report_t *rep)
{
    static const char *const names[] = {"ringcast-http", "sinks-direct", "nginx-proxy"};
    int failed = 0, push_row = -1;
    double dps[3] = {0};
    for (int kind = 0; kind < 3; kind++) {
        if (!rc_bench_list_has(o->systems, SYSTEMS, names[kind]))
            continue;
        char p[48];
        int used = snprintf(p, sizeof(p), "%s", params);
        if (kind == 0 && o->decoys > 0)
            snprintf(p + used, sizeof(p) - (size_t)used, " triggers=%d", triggers + o->decoys);
        rc_http_run_opts_t h;
        http_opts(o, kind == 1, triggers, kind == 0 ? o->decoys : 0, o->rate, &h);
        h.proxy = kind == 2;
        rc_row_t row;
        if (rc_bench_http_run_median("fanout", p, &h, o->runs, &row, &dps[kind], NULL) < 0)
            failed++;
        else if (kind == 0 && !row.skipped)
            push_row = rep->count;
        if (row.skipped)
            dps[kind] = 0;
        rc_report_add(rep, &row);
    }
    if (push_row >= 0 && push_row < rep->count && dps[2] > 0)
        proxy_ratio(rep, push_row, dps[0], dps[2], triggers);
    return failed;
}

static int shm_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    const char *list = o->consumers ? o->consumers : o->quick ? "1,4" : "1,4,16";
    return each_count(o, list, "consumers", 256, MAX_COUNTS, shm_count_rows, rep);
}

static int http_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    if (!rc_bench_list_has(o->systems, SYSTEMS, "ringcast-http") &&
        !rc_bench_list_has(o->systems, SYSTEMS, "sinks-direct") &&
        !rc_bench_list_has(o->systems, SYSTEMS, "nginx-proxy"))
        return 0;
    const char *list = o->triggers    ? o->triggers
                       : o->consumers ? o->consumers
                       : o->quick     ? "1"
                                      : "1,4,16";
    /* `all --quick`: one short HTTP row */
    int limit = o->quick && o->triggers == NULL ? 1 : MAX_COUNTS;
    return each_count(o, list, "triggers", RC_HTTP_RUN_MAX_SINKS, limit, http_count_rows, rep);
}

int rc__bench_fanout_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    int failed = shm_rows(o, rep);
    if (!rc_bench_stop_flag)
        failed += http_rows(o, rep);
    return failed;
}

/* One target run into the report; returns 0 or 1 (failed). */
static int target_run(const rc_bench_opts_t *o, const char *params, int direct, int triggers,
                      int decoys, double rate, rc_report_t *rep, rc_row_t *row, double *dps,
                      double *p99)
{
    rc_http_run_opts_t h;
    http_opts(o, direct, triggers, decoys, rate, &h);
    int rc = rc_bench_http_run_median("fanout", params, &h, o->runs, row, dps, p99);
    rc_report_add(rep, row);
    return rc < 0 || row->skipped;
}

static void target_failed(const char *name, const rc_row_t *row)
{
    char why[sizeof(row->note)];
    snprintf(why, sizeof(why), "%s", row->note[0] ? row->note : "run failed");
    for (char *c = why; *c; c++) {
        if (*c == ' ' || *c == '=')
            *c = '_';
    }
    printf("target=%s ok=0 error=%s\n", name, why);
}

static int targets(const rc_bench_opts_t *o, rc_report_t *rep)
{
    int failed = 0;
    rc_row_t a, b;
    double dps_a, dps_b, p99;
    /* 1. Publish-to-delivery p99 at 10k events/s offered, one trigger: under 1 ms. */
    if (target_run(o, "target=p99 consumers=1 rate=10000", 0, 1, 0, 10000, rep, &a, &dps_a, &p99)) {
        target_failed("e2e_p99_10k", &a);
        failed++;
    } else {
        printf("target=e2e_p99_10k value_us=%.1f limit_us=1000 runs=%d lost=%llu ok=%d\n", p99,
               o->runs, (unsigned long long)a.lost, p99 < 1000 && a.lost == 0);
    }
    /* 2. Deliveries/s with 8 triggers >= 0.8 x the same 8 sinks driven directly. */
    int f2 = target_run(o, "target=fanout8 consumers=8", 0, 8, 0, 0, rep, &a, &dps_a, NULL);
    int f2d = target_run(o, "target=fanout8 consumers=8", 1, 8, 0, 0, rep, &b, &dps_b, NULL);
    if (f2 || f2d) {
        target_failed("fanout8_vs_direct", f2 ? &a : &b);
        failed++;
    } else {
        double r = dps_b > 0 ? dps_a / dps_b : 0;
        printf("target=fanout8_vs_direct ratio=%.3f limit=0.8 broker_deliveries_s=%.0f "
               "direct_deliveries_s=%.0f lost=%llu ok=%d\n",
               r, dps_a, dps_b, (unsigned long long)a.lost, r >= 0.8 && a.lost == 0);
    }
    /* 3. 10,000 exact-type triggers, one matching: >= 0.9 x the single-trigger throughput. */
    int f3 = target_run(o, "target=triggers10k consumers=1 triggers=1", 0, 1, 0, 0, rep, &a, &dps_a,
                        NULL);
    int f3t = target_run(o, "target=triggers10k consumers=1 triggers=10000", 0, 1, 9999, 0, rep, &b,
                         &dps_b, NULL);
    if (f3 || f3t) {
        target_failed("triggers10k_vs_1", f3 ? &a : &b);
        failed++;
    } else {
        double r = dps_a > 0 ? dps_b / dps_a : 0;
        printf("target=triggers10k_vs_1 ratio=%.3f limit=0.9 one_trigger_eps=%.0f "
               "triggers10k_eps=%.0f lost=%llu ok=%d\n",
               r, dps_a, dps_b, (unsigned long long)b.lost, r >= 0.9 && b.lost == 0);
    }
    return failed;
}

int rc_bench_fanout(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("fanout",
                                 "One event to each of N consumers: ringcast shm readers vs "
                                 "Redis Streams consumer groups vs NATS subscribers vs ringcast "
                                 "HTTP push (N triggers -> N sinks) vs the sinks driven directly "
                                 "vs nginx as a reverse proxy to the same sinks.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = o.targets ? targets(&o, &rep) : rc__bench_fanout_rows(&o, &rep);
    rc = rc_bench_finish("fanout", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
