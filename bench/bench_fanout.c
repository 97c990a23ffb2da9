/* ringcast-bench fanout: every event to each of N consumers, publisher in closed loop.
 * ringcast: N lossless shm readers on the broker's ring; Redis Streams: N consumer groups
 * (XREADGROUP ... NOACK); NATS: N subscribers. Throughput is the rate at which the slowest
 * consumer received every event (first publish to its last delivery). ringcast HTTP push to
 * N sinks needs the delivery workers. */
#include <stdio.h>

#include "bench/bench.h"
#include "bench/run.h"
#include "bench/scenarios.h"

int rc__bench_fanout_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    static const rc_peer_kind_t systems[] = {RC_PEER_RINGCAST, RC_PEER_REDIS, RC_PEER_NATS};
    double counts[16];
    const char *list = o->consumers ? o->consumers : o->quick ? "1,4" : "1,4,16";
    int n = rc_bench_list_nums(list, counts, 16);
    if (n < 0) {
        fprintf(stderr, "ringcast-bench fanout: --consumers needs positive numbers: '%s'\n", list);
        return 1;
    }
    int failed = 0;
    for (int k = 0; k < n && !rc_bench_stop_flag; k++) {
        int consumers = (int)counts[k];
        if (consumers < 1 || consumers > 256) {
            fprintf(stderr, "ringcast-bench fanout: consumers 1-256, not %d\n", consumers);
            return failed + 1;
        }
        char params[48];
        snprintf(params, sizeof(params), "consumers=%d", consumers);
        for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
            const char *name = rc_bench_peer_name(systems[i]);
            if (!rc_bench_list_has(o->systems, "ringcast,redis,nats,ringcast-http", name))
                continue;
            rc_run_opts_t ro;
            rc_bench_run_opts(o, systems[i], &ro);
            ro.label = systems[i] == RC_PEER_RINGCAST ? "ringcast-shm" : NULL;
            ro.consumers = consumers;
            if (o->reader_linger_us == RC_BENCH_LINGER_UNSET)
                ro.reader_linger_us = RC_BENCH_FANOUT_LINGER_US; /* throughput, not latency */
            rc_row_t row;
            if (rc_bench_run_median("fanout", params, &ro, o->runs, &row) < 0)
                failed++;
            rc_report_add(rep, &row);
        }
        if (rc_bench_list_has(o->systems, "ringcast,redis,nats,ringcast-http", "ringcast-http")) {
            rc_row_t row;
            rc_bench_skip_row(&row, "fanout", params, "ringcast-http",
                              "needs delivery workers (issue 4)");
            rc_report_add(rep, &row);
        }
    }
    return failed;
}

int rc_bench_fanout(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("fanout",
                                 "One event to each of N consumers: ringcast shm readers vs "
                                 "Redis Streams consumer groups vs NATS subscribers.",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc__bench_scenario_setup();
    rc_report_t rep = {0};
    int failed = rc__bench_fanout_rows(&o, &rep);
    rc = rc_bench_finish("fanout", &rep, &o, failed);
    rc_report_free(&rep);
    return rc;
}
