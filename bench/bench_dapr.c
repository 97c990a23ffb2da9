/* ringcast-bench dapr: ringcast as a Dapr pub/sub sidecar (issue 12), in three parts.
 *  - publish: open loop at each --rates value (default 1k and 10k/s), one event per
 *    `POST /v1.0/publish/pubsub/orders` (JSON data; the broker wraps it in a CloudEvent and
 *    answers 204). Latency from each request's due time to its answer, so a stall shows; the
 *    broker's CPU seconds. No subscriber: the API and the store alone.
 *  - bulk: closed loop, `POST /v1.0-alpha1/publish/bulk/pubsub/orders` with --bulk entries per
 *    request (default 10 and 100) on the one ingress loop of the bench's broker; events/s and
 *    the broker's events per CPU-second.
 *  - e2e: open loop at each --rates value through the publish API to a DaprApp whose
 *    --consumers replicas (default 2) are bench sinks, with a declarative Subscription on the
 *    topic: every event to exactly one replica. Latency from the publish due time to arrival at
 *    a replica; lost = acknowledged events no replica got, dups = events more than one got.
 * Afterwards one `target=...` line for each of the targets the runs covered (publish p99
 * at 1k/s <= 500 µs, bulk-100 >= 1M events/s, end-to-end p99 at 10k/s with 2 replicas < 1 ms),
 * then the table and the result line like every scenario. No Dapr sidecar runs here: Dapr's own
 * figures are quoted in docs/bench.md, never printed as measurements. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/http_run.h"
#include "bench/run.h"
#include "bench/scenarios.h"
#include "core/config.h"

#define PUBSUB       "pubsub"
#define TOPIC        "orders"
#define APP          "benchapp"
#define PUBLISH_PATH "/v1.0/publish/" PUBSUB "/" TOPIC
#define BULK_PATH    "/v1.0-alpha1/publish/bulk/" PUBSUB "/" TOPIC

/* Counts a --rates, --bulk or --consumers list holds at most (rc_bench_opts_parse checks it). */
#define MAX_COUNTS 16

/* The targets. */
#define PUBLISH_P99_LIMIT_US 500.0
#define BULK100_LIMIT_EPS    1e6
#define E2E_P99_LIMIT_US     1000.0

/* The pubsub component `pubsub` on the Broker default/default. */
static int write_component(FILE *f)
{
    fprintf(f, "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n"
               "  name: " PUBSUB "\n  namespace: default\nspec:\n  type: pubsub.ringcast\n"
               "  version: v1\n  metadata:\n  - name: broker\n    value: default\n");
    return ferror(f) ? -EIO : 0;
}

static int publish_config(FILE *f, const char *dir, void *arg)
{
    (void)dir;
    (void)arg;
    return write_component(f);
}

/* The component, the app `benchapp` with one replica per sink, and its subscription. */
static int e2e_config(FILE *f, const int *ports, int n, void *arg)
{
    (void)arg;
    write_component(f);
    fprintf(f, "---\napiVersion: ringcast.dev/v1alpha1\nkind: DaprApp\nmetadata:\n"
               "  name: " APP "\n  namespace: default\nspec:\n  endpoints:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  - http://127.0.0.1:%d\n", ports[i]);
    fprintf(f, "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n"
               "  name: " TOPIC "\n  namespace: default\nspec:\n  pubsubname: " PUBSUB "\n"
               "  topic: " TOPIC "\n  routes:\n    default: /" TOPIC "\nscopes:\n- " APP "\n");
    return ferror(f) ? -EIO : 0;
}

/* Parses `list` (what the option gave, else `dflt`) into counts within 1..max. Returns how many,
 * or -1 with a message naming the option. */
static int counts(const char *list, const char *dflt, const char *what, int max, double *out)
{
    const char *l = list ? list : dflt;
    int n = rc_bench_list_nums(l, out, MAX_COUNTS);
    for (int i = 0; i < n; i++) {
        if (out[i] > max || out[i] != (double)(int)out[i])
            n = -1;
    }
    if (n < 0)
        fprintf(stderr, "ringcast-bench dapr: --%s takes whole numbers 1-%d: '%s'\n", what, max, l);
    return n;
}

/* What the options ask for, read before the first run so that a bad list runs nothing. */
typedef struct {
    double rates[MAX_COUNTS], bulk[MAX_COUNTS], replicas[MAX_COUNTS];
    int nrates, nbulk, nreplicas;
} plan_t;

static int plan_read(const rc_bench_opts_t *o, plan_t *p)
{
    p->nrates = rc_bench_list_nums(o->rates ? o->rates : "1000,10000", p->rates, MAX_COUNTS);
    if (p->nrates < 0)
        fprintf(stderr, "ringcast-bench dapr: --rates needs positive numbers: '%s'\n", o->rates);
    p->nbulk = counts(o->bulk, "10,100", "bulk", 1000, p->bulk);
    p->nreplicas =
        counts(o->consumers, "2", "consumers", (int)RC_CONFIG_DAPR_REPLICAS_MAX, p->replicas);
    return p->nrates < 0 || p->nbulk < 0 || p->nreplicas < 0 ? -1 : 0;
}

/* The broker alone with the pubsub component, a row per value: open loop at v[i] events/s
 * through the publish API, or (bulk) closed loop with v[i] entries per bulk request. */
static int broker_rows(const rc_bench_opts_t *o, int bulk, const double *v, int n, rc_report_t *rep)
{
    int failed = 0;
    for (int i = 0; i < n && !rc_bench_stop_flag; i++) {
        char params[48];
        rc_run_opts_t ro;
        rc_bench_run_opts(o, RC_PEER_RINGCAST, &ro);
        ro.config = publish_config;
        if (bulk) {
            snprintf(params, sizeof(params), "bulk=%.0f", v[i]);
            ro.http_mode = RC_LG_DAPR_BULK;
            ro.load.path = BULK_PATH;
            ro.load.batch = (int)v[i];
        } else {
            snprintf(params, sizeof(params), "publish rate=%.0f", v[i]);
            ro.http_mode = RC_LG_DAPR_PUBLISH;
            ro.load.path = PUBLISH_PATH;
            ro.load.rate = v[i];
        }
        rc_row_t row;
        if (rc_bench_run_median("dapr", params, &ro, o->runs, &row) < 0)
            failed++;
        rc_report_add(rep, &row);
    }
    return failed;
}

static int e2e_rows(const rc_bench_opts_t *o, const plan_t *p, rc_report_t *rep)
{
    int failed = 0;
    for (int k = 0; k < p->nreplicas && !rc_bench_stop_flag; k++) {
        for (int r = 0; r < p->nrates && !rc_bench_stop_flag; r++) {
            char params[48];
            snprintf(params, sizeof(params), "e2e replicas=%.0f rate=%.0f", p->replicas[k],
                     p->rates[r]);
            rc_http_run_opts_t h;
            rc_bench_http_opts(o, p->rates[r], &h);
            h.triggers = (int)p->replicas[k];
            h.config = e2e_config;
            h.compete = 1;
            h.label = "ringcast";
            h.load.proto = RC_LG_DAPR_PUBLISH;
            h.load.path = PUBLISH_PATH;
            rc_row_t row;
            if (rc_bench_http_run_median("dapr", params, &h, o->runs, &row, NULL, NULL) < 0)
                failed++;
            rc_report_add(rep, &row);
        }
    }
    return failed;
}

int rc__bench_dapr_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    plan_t p;
    if (plan_read(o, &p) < 0)
        return 1;
    int failed = broker_rows(o, 0, p.rates, p.nrates, rep);
    if (!rc_bench_stop_flag)
        failed += broker_rows(o, 1, p.bulk, p.nbulk, rep);
    if (!rc_bench_stop_flag)
        failed += e2e_rows(o, &p, rep);
    return failed;
}

/* The measured row of the dapr scenario with `params`, or NULL when it did not run. */
static const rc_row_t *find_row(const rc_report_t *rep, const char *params)
{
    for (int i = 0; i < rep->count; i++) {
        if (strcmp(rep->rows[i].scenario, "dapr") == 0 && strcmp(rep->rows[i].params, params) == 0)
            return &rep->rows[i];
    }
    return NULL;
}

/* A target whose run failed: `target=NAME ok=0 error=<the row's note, spaces as _>`. Returns 1
 * when it printed that line. */
static int target_failed(const char *name, const rc_row_t *row)
{
    if (!row->skipped && row->events > 0)
        return 0;
    char why[sizeof(row->note)];
    snprintf(why, sizeof(why), "%s", row->note[0] ? row->note : "run failed");
    for (char *c = why; *c; c++) {
        if (*c == ' ' || *c == '=')
            *c = '_';
    }
    printf("target=%s ok=0 error=%s\n", name, why);
    return 1;
}

/* One line per target the runs covered, before the table (the result line stays last). */
void rc__bench_dapr_targets(const rc_bench_opts_t *o, const rc_report_t *rep)
{
    const rc_row_t *x = find_row(rep, "publish rate=1000");
    if (x != NULL && !target_failed("publish_p99_1k", x))
        printf("target=publish_p99_1k value_us=%.1f limit_us=%.0f errors=%llu runs=%d ok=%d\n",
               x->p99_us, PUBLISH_P99_LIMIT_US, (unsigned long long)x->errors, o->runs,
               x->p99_us <= PUBLISH_P99_LIMIT_US && x->errors == 0);
    x = find_row(rep, "bulk=100");
    if (x != NULL && !target_failed("bulk100_eps", x))
        printf("target=bulk100_eps value_eps=%.0f limit_eps=%.0f events_per_cpu_s=%.0f "
               "errors=%llu runs=%d ok=%d\n",
               x->throughput, BULK100_LIMIT_EPS, x->cpu_s > 0 ? (double)x->events / x->cpu_s : 0,
               (unsigned long long)x->errors, o->runs,
               x->throughput >= BULK100_LIMIT_EPS && x->errors == 0);
    x = find_row(rep, "e2e replicas=2 rate=10000");
    if (x != NULL && !target_failed("e2e_p99_10k", x))
        printf("target=e2e_p99_10k value_us=%.1f limit_us=%.0f replicas=2 lost=%llu dups=%llu "
               "runs=%d ok=%d\n",
               x->p99_us, E2E_P99_LIMIT_US, (unsigned long long)x->lost,
               (unsigned long long)x->dups, o->runs,
               x->p99_us < E2E_P99_LIMIT_US && x->lost == 0 && x->dups == 0);
}

int rc_bench_dapr(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("dapr",
                                 "ringcast as a Dapr pub/sub sidecar: publish API latency at "
                                 "fixed rates (open loop), bulk publish throughput, and publish "
                                 "to app end to end with the events shared by the app's "
                                 "replicas. Prints target=... lines for the issue's targets.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_dapr_rows(&o, &rep);
    rc__bench_dapr_targets(&o, &rep);
    rc = rc_bench_finish("dapr", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
