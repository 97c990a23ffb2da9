/* ringcast-bench stalls: how long this machine takes a running thread away from it. One thread
 * per CPU of the process, each pinned to its CPU, reads the monotonic clock in a loop for
 * --seconds and counts the gaps between two reads: an interrupt, another task, or on a VM the
 * host running something else on that vCPU. Nothing else of the bench runs meanwhile, so the
 * gaps are the machine's own. A latency percentile cannot be lower than what such gaps do to
 * the events they delay: 1% of the time lost in gaps of 1-5 ms puts up to 1% of events behind
 * by that much, whatever the broker does (the p99 of every system on this machine). */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/clock.h"

#define MAX_CPUS 64

typedef struct {
    pthread_t th;
    int cpu;
    double seconds;
    uint64_t gaps_20us, gaps_100us, gaps_1ms, gaps_5ms, max_ns, lost_ns, reads;
} probe_t;

static void *probe_main(void *arg)
{
    probe_t *p = arg;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(p->cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
    uint64_t last = rc_now_ns(), end = last + (uint64_t)(p->seconds * 1e9);
    for (;;) {
        uint64_t t = rc_now_ns(), d = t - last;
        last = t;
        p->reads++;
        if (d > 20000) {
            p->gaps_20us++;
            p->lost_ns += d;
            p->gaps_100us += d > 100000;
            p->gaps_1ms += d > 1000000;
            p->gaps_5ms += d > 5000000;
            if (d > p->max_ns)
                p->max_ns = d;
        }
        if (t >= end)
            break;
    }
    return NULL;
}

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: ringcast-bench stalls [--seconds S]\n\n"
            "One thread per CPU, pinned, reads the clock in a loop for S seconds (default 2,\n"
            "at most 60) and counts the gaps between reads (> 20 us, > 100 us, > 1 ms, > 5 ms),\n"
            "the longest, and the share of time lost in gaps over 20 us: the machine's own\n"
            "stalls, a floor under every latency percentile measured on it. Run it alone.\n"
            "Prints one line per CPU, then one line of key=value last.\n");
    return code;
}

int rc_bench_stalls(int argc, char **argv)
{
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout, 0);
        char *end = NULL;
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], &end);
        if (end == NULL || *end != '\0' || !(seconds > 0 && seconds <= 60))
            return usage(stderr, 2);
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    sched_getaffinity(0, sizeof(cpus), &cpus);
    static probe_t probes[MAX_CPUS];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < MAX_CPUS; c++) {
        if (CPU_ISSET(c, &cpus))
            probes[n++] = (probe_t){.cpu = c, .seconds = seconds};
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&probes[i].th, NULL, probe_main, &probes[i]) != 0) {
            fprintf(stderr, "ringcast-bench stalls: cannot start a thread\n");
            return 1;
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(probes[i].th, NULL);
    uint64_t worst = 0;
    double worst_lost = 0;
    char kv[4096];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const probe_t *p = &probes[i];
        double lost = 100.0 * (double)p->lost_ns / (seconds * 1e9);
        fprintf(stderr,
                "cpu %d: %llu clock reads, gaps > 20 us %llu, > 100 us %llu, > 1 ms %llu, "
                "> 5 ms %llu; longest %.0f us; %.2f%% of the time lost in gaps\n",
                p->cpu, (unsigned long long)p->reads, (unsigned long long)p->gaps_20us,
                (unsigned long long)p->gaps_100us, (unsigned long long)p->gaps_1ms,
                (unsigned long long)p->gaps_5ms, p->max_ns / 1e3, lost);
        if (len < sizeof(kv))
            len += (size_t)snprintf(kv + len, sizeof(kv) - len,
                                    " cpu%d_gaps_100us=%llu cpu%d_gaps_1ms=%llu cpu%d_max_us=%.0f "
                                    "cpu%d_lost_pct=%.3f",
                                    p->cpu, (unsigned long long)p->gaps_100us, p->cpu,
                                    (unsigned long long)p->gaps_1ms, p->cpu, p->max_ns / 1e3,
                                    p->cpu, lost);
        if (p->max_ns > worst)
            worst = p->max_ns;
        if (lost > worst_lost)
            worst_lost = lost;
    }
    printf("scenario=stalls seconds=%.1f cpus=%d max_us=%.0f lost_pct_max=%.3f%s\n", seconds, n,
           worst / 1e3, worst_lost, len < sizeof(kv) ? kv : "");
    return 0;
}
