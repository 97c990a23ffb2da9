/* ringcast-bench: reproducible performance scenarios. Each scenario is a sub-command that prints
 * human-readable progress on stderr and, last on stdout, one machine-readable line of key=value
 * pairs. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

static const rc_bench_scenario_t scenarios[] = {
#define RC_BENCH_ENTRY(name, summary) {#name, summary, rc_bench_##name},
    RC_BENCH_SCENARIOS(RC_BENCH_ENTRY){NULL, NULL, NULL},
#undef RC_BENCH_ENTRY
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ringcast-bench <scenario> [options]\n\nscenarios:\n");
    for (size_t i = 0; scenarios[i].name != NULL; i++)
        fprintf(out, "  %-8s %s\n", scenarios[i].name, scenarios[i].summary);
    fprintf(out, "\nRun 'ringcast-bench <scenario> --help' for its options.\n");
}

int main(int argc, char **argv)
{
    /* Whole lines on stdout: its result lines and stderr's progress lines often go to one file,
     * and a block-buffered stdout wrote a result line into the middle of a progress line there
     * (a `grep ^target=` then missed it). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; scenarios[i].name != NULL; i++) {
        if (strcmp(argv[1], scenarios[i].name) == 0)
            return scenarios[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ringcast-bench: unknown scenario '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
