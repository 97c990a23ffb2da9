/* ringcast-bench groups: competing consumers, each event to exactly one of N. ringcast: N
 * members of one consumer group (shm/group.h) on the broker's ring, one thread each, reading in
 * place and acknowledging; Redis Streams: one consumer group with N consumers (XREADGROUP, then
 * an XACK of each reply, as Dapr's Redis Streams component does). The publisher runs in closed
 * loop through each system's own ingest (HTTP for ringcast, XADD for Redis), or in open loop at
 * --rate events/s (both systems offered the same load, so their latencies compare at equal
 * throughput); latency is publish to delivery (the loadgen's timestamp), throughput the rate at
 * which the group as a whole received every event, lost what no member received. */
#include <stdio.h>

#include "bench/bench.h"
#include "bench/run.h"
#include "bench/scenarios.h"

int rc__bench_groups_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    static const rc_peer_kind_t systems[] = {RC_PEER_RINGCAST, RC_PEER_REDIS};
    double counts[16];
    const char *list = o->consumers ? o->consumers : o->quick ? "4" : "1,4,16";
    int n = rc_bench_list_nums(list, counts, 16);
    if (n < 0) {
        fprintf(stderr, "ringcast-bench groups: --consumers needs positive numbers: '%s'\n", list);
        return 1;
    }
    int failed = 0;
    for (int k = 0; k < n && !rc_bench_stop_flag; k++) {
        int consumers = (int)counts[k];
        if (consumers < 1 || consumers > 30) {
            fprintf(stderr,
                    "ringcast-bench groups: consumers 1-30 (a group's member limit), "
                    "not %d\n",
                    consumers);
            return failed + 1;
        }
        char params[64];
        int used = snprintf(params, sizeof(params), "consumers=%d", consumers);
        if (o->rate > 0)
            snprintf(params + used, sizeof(params) - (size_t)used, " rate=%.0f", o->rate);
        for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
            const char *name = rc_bench_peer_name(systems[i]);
            if (!rc_bench_list_has(o->systems, "ringcast,redis", name))
                continue;
            rc_run_opts_t ro;
            rc_bench_run_opts(o, systems[i], &ro);
            ro.label = systems[i] == RC_PEER_RINGCAST ? "ringcast-group" : "redis-group";
            ro.consumers = consumers;
            ro.compete = 1;
            ro.load.rate = o->rate;
            rc_row_t row;
            if (rc_bench_run_median("groups", params, &ro, o->runs, &row) < 0)
                failed++;
            rc_report_add(rep, &row);
        }
    }
    return failed;
}

int rc_bench_groups(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("groups",
                                 "Competing consumers, each event to one of N: ringcast "
                                 "consumer group members (shm, zero copy) vs Redis Streams one "
                                 "group with N consumers.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_groups_rows(&o, &rep);
    rc = rc_bench_finish("groups", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
