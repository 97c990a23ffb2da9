/* ringcast-bench latency: publish-to-delivery percentiles at fixed offered rates (open loop:
 * each event's latency counts from its due time). ringcast: HTTP ingest, a lossless shm reader
 * receives; Redis: XADD, one consumer group reading with XREADGROUP BLOCK; NATS: PUB, one
 * subscriber; ringcast-http: HTTP ingest, a delivery worker pushes to one HTTP sink. */
#include <stdio.h>

#include "bench/bench.h"
#include "bench/http_run.h"
#include "bench/run.h"
#include "bench/scenarios.h"

int rc__bench_latency_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    static const rc_peer_kind_t systems[] = {RC_PEER_RINGCAST, RC_PEER_REDIS, RC_PEER_NATS};
    double rates[16];
    const char *list = o->rates ? o->rates : o->quick ? "1000,10000" : "1000,10000,50000";
    int nrates = rc_bench_list_nums(list, rates, 16);
    if (nrates < 0) {
        fprintf(stderr, "ringcast-bench latency: --rates needs positive numbers: '%s'\n", list);
        return 1;
    }
    int failed = 0;
    for (int r = 0; r < nrates && !rc_bench_stop_flag; r++) {
        char params[48];
        snprintf(params, sizeof(params), "rate=%.0f", rates[r]);
        for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
            const char *name = rc_bench_peer_name(systems[i]);
            if (!rc_bench_list_has(o->systems, "ringcast,redis,nats,ringcast-http", name))
                continue;
            rc_run_opts_t ro;
            rc_bench_run_opts(o, systems[i], &ro);
            ro.label = systems[i] == RC_PEER_RINGCAST ? "ringcast-shm" : NULL;
            ro.consumers = 1;
            ro.load.rate = rates[r];
            rc_row_t row;
            if (rc_bench_run_median("latency", params, &ro, o->runs, &row) < 0)
                failed++;
            rc_report_add(rep, &row);
        }
        if (rc_bench_list_has(o->systems, "ringcast,redis,nats,ringcast-http", "ringcast-http")) {
            /* HTTP publish -> ringcast serve -> one trigger -> one HTTP sink. */
            rc_http_run_opts_t h;
            rc_bench_http_opts(o, rates[r], &h);
            rc_row_t row;
            if (rc_bench_http_run_median("latency", params, &h, o->runs, &row, NULL, NULL) < 0)
                failed++;
            rc_report_add(rep, &row);
        }
    }
    return failed;
}

int rc_bench_latency(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("latency",
                                 "Publish-to-delivery latency percentiles at fixed offered "
                                 "rates (open loop): ringcast shm reader vs Redis Streams vs NATS.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_latency_rows(&o, &rep);
    rc = rc_bench_finish("latency", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
