/* ringcast-bench ingest: publish rate and latency, the same load against ringcast (events
 * stored in its ring before the 202), nginx answering `return 202` (the HTTP ceiling of this
 * machine: parsing and answering, nothing stored) and Redis XADD (appends to a stream, the
 * store Dapr's default pub/sub uses). Closed loop: every connection keeps `depth` requests in
 * flight. Latency is request to answer. */
#include <stdio.h>

#include "bench/bench.h"
#include "bench/procs.h"
#include "bench/run.h"
#include "bench/scenarios.h"

void rc__bench_scenario_setup(void)
{
    rc_bench_procs_install();
}

int rc__bench_ingest_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    static const rc_peer_kind_t systems[] = {RC_PEER_RINGCAST, RC_PEER_NGINX, RC_PEER_REDIS};
    char params[48];
    const char *mode = rc_lg_proto_name((rc_lg_proto_t)o->mode) + 5;
    snprintf(params, sizeof(params), "%s conns=%d depth=%d", mode, o->conns, o->depth);
    int failed = 0;
    for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]) && !rc_bench_stop_flag; i++) {
        if (!rc_bench_list_has(o->systems, "ringcast,nginx,redis", rc_bench_peer_name(systems[i])))
            continue;
        rc_run_opts_t ro;
        rc_bench_run_opts(o, systems[i], &ro);
        /* Redis has no batch request: the same events per round trip as pipelined XADDs. */
        if (systems[i] == RC_PEER_REDIS && o->mode == RC_LG_HTTP_BATCH)
            ro.load.depth = o->depth * o->batch > 1024 ? 1024 : o->depth * o->batch;
        rc_row_t row;
        if (rc_bench_run_median("ingest", params, &ro, o->runs, &row) < 0)
            failed++;
        rc_report_add(rep, &row);
    }
    return failed;
}

int rc_bench_ingest(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("ingest",
                                 "Publish rate and latency: ringcast vs nginx `return "
                                 "202` vs Redis XADD, closed loop.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_ingest_rows(&o, &rep);
    rc = rc_bench_finish("ingest", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
