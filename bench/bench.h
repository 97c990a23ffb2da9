/* ringcast-bench scenarios. A scenario takes (argc, argv) with argv[0] its name and returns the
 * exit code (0 ok, 1 failure, 2 bad usage). */
#ifndef RC_BENCH_BENCH_H
#define RC_BENCH_BENCH_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} rc_bench_scenario_t;

/* One entry per scenario, each line ending with a comma; defined in bench/bench_<name>.c. */
#define RC_BENCH_SCENARIOS                                                                         \
    {"ring", "shared-memory ring: copy baseline, throughput, hand-off latency", rc_bench_ring},

int rc_bench_ring(int argc, char **argv);

#endif
