/* ringcast-bench groups: competing consumers (each event to exactly one of N). Its ringcast
 * side needs consumer groups, which have not landed; until then the scenario reports itself as
 * skipped rather than measuring only the peer. */
#include <stdio.h>

#include "bench/bench.h"
#include "bench/run.h"
#include "bench/scenarios.h"

int rc__bench_groups_rows(const rc_bench_opts_t *o, rc_report_t *rep)
{
    (void)o;
    rc_row_t row;
    rc_bench_skip_row(&row, "groups", "consumers=N", "ringcast",
                      "needs consumer groups (not landed yet); Redis one group with N "
                      "consumers will run beside it then");
    rc_report_add(rep, &row);
    return 0;
}

int rc_bench_groups(int argc, char **argv)
{
    rc_bench_opts_t o;
    int rc = rc_bench_opts_parse("groups",
                                 "Competing consumers: ringcast consumer groups vs Redis "
                                 "Streams one group with N consumers (skipped until ringcast "
                                 "consumer groups land).",
                                 argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc_report_t rep = {0};
    rc__bench_groups_rows(&o, &rep);
    rc = rc_bench_finish("groups", &rep, &o, 0);
    rc_report_free(&rep);
    return rc;
}
