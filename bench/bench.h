/* ringcast-bench scenarios. A scenario is a function `int rc_bench_<name>(int argc, char
 * **argv)` with argv[0] its name, returning the exit code (0 ok, 1 failure, 2 bad usage),
 * defined in bench/bench_<name>.c. It prints one machine-readable key=value line last. */
#ifndef RC_BENCH_BENCH_H
#define RC_BENCH_BENCH_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} rc_bench_scenario_t;

/* X(name, summary): one line per scenario. Every line ends with a backslash; the list ends with
 * the comment line (so that lines added on two branches merge as a union, see .gitattributes). */
#define RC_BENCH_SCENARIOS(X)                                                                      \
    X(codec, "decode+validate+record-encode cost per event (no network)")                          \
    X(cesql, "CESQL filter evaluations/s vs a hand-written C filter")                              \
    X(client, "delivery HTTP client: requests/s against a local 202 sink")                         \
    X(ring, "shared-memory ring: copy baseline, throughput, hand-off latency")                     \
    X(stalls, "the machine's own stalls: gaps a spinning thread sees on each CPU")                 \
    X(route, "trigger routing: 1 vs 10,000 exact-type triggers, and a mixed set")                  \
    X(ingest, "publish rate and latency: ringcast vs nginx return 202 vs Redis XADD")              \
    X(latency, "publish-to-delivery percentiles at fixed rates (shm reader, Redis, NATS)")         \
    X(fanout, "one event to N consumers: shm readers, Redis groups, NATS subscribers")             \
    X(groups, "competing consumers: ringcast consumer group vs Redis one group, N consumers")      \
    X(dapr, "Dapr publish API: latency at fixed rates, bulk publish, publish-to-app replicas")     \
    X(scaleout, "N ringcast nodes on one Redis vs one shm node vs Dapr's Redis pattern")         \
    X(all, "every scenario into one report (--quick: under 2 minutes)")                            \
    /* end of RC_BENCH_SCENARIOS */

#define RC_BENCH_DECLARE(name, summary) int rc_bench_##name(int argc, char **argv);
RC_BENCH_SCENARIOS(RC_BENCH_DECLARE)
#undef RC_BENCH_DECLARE

#endif
