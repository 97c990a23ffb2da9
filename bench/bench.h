/* ringcast-bench scenarios. A scenario takes (argc, argv) with argv[0] its name and returns the
 * exit code (0 ok, 1 failure, 2 bad usage). */
#ifndef RC_BENCH_BENCH_H
#define RC_BENCH_BENCH_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} rc_bench_scenario_t;

/** Decode + validate + record-encode cost per event, no network (bench_codec.c). */
int rc_bench_codec(int argc, char **argv);
/** CESQL filter evaluations/s over ring records vs a hand-written C filter (bench_cesql.c). */
int rc_bench_cesql(int argc, char **argv);
/** Delivery HTTP client requests/s against a local 202 sink (bench_client.c). */
int rc_bench_client(int argc, char **argv);

/* One entry per scenario, each line ending with a comma; defined in bench/bench_<name>.c. */
#define RC_BENCH_SCENARIOS                                                                         \
    {"codec", "decode+validate+record-encode cost per event (no network)", rc_bench_codec},       \
    {"cesql", "CESQL filter evaluations/s vs a hand-written C filter", rc_bench_cesql},           \
    {"client", "delivery HTTP client: requests/s against a local 202 sink", rc_bench_client},

#endif
