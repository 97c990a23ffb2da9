/* Option parsing and the common end of the comparison scenarios. */
#include "bench/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen.h"
#include "bench/procs.h"

static void usage(const char *scenario, const char *summary, FILE *out)
{
    fprintf(out,
            "usage: ringcast-bench %s [--seconds S] [--conns N] [--depth N] [--size BYTES]\n"
            "         [--mode binary|structured|batch] [--batch N] [--types N] [--runs N]\n"
            "         [--systems LIST] [--rates LIST] [--consumers LIST] [--ring-size BYTES]\n"
            "         [--reader-spin N] [--drain S] [--quick] [--out DIR]\n"
            "         [--triggers LIST] [--decoys N] [--workers N] [--rate R] [--targets]\n\n%s\n\n"
            "  --seconds S      publishing time per run (default 3, quick 0.5)\n"
            "  --conns N        publisher connections (default 16)\n"
            "  --depth N        requests in flight per connection: 1 = keep-alive request/\n"
            "                   response, more = pipelined (default 1)\n"
            "  --size BYTES     data bytes per event (default 128)\n"
            "  --mode M         HTTP CloudEvents mode for ringcast/nginx (default binary)\n"
            "  --batch N        events per batch request (default 100)\n"
            "  --types N        distinct event types, round-robin (default 4)\n"
            "  --runs N         repeat each run, report the median throughput (default 1)\n"
            "  --systems LIST   e.g. ringcast,nginx,redis,nats (default: all of the scenario)\n"
            "  --rates LIST     latency: offered events/s (default 1000,10000,50000)\n"
            "  --consumers LIST fanout, groups: consumer counts (default 1,4,16; quick 1,4;\n"
            "                   groups quick 4)\n"
            "  --triggers LIST  fanout: ringcast-http / sinks-direct rows with N triggers, each\n"
            "                   to its own HTTP sink (default: the --consumers list; quick 1)\n"
            "  --decoys N       fanout: add N exact-type triggers the load never matches\n"
            "  --workers N      fanout: ringcast delivery worker processes (default: its own)\n"
            "  --rate R         fanout: open loop at R events/s instead of closed loop\n"
            "  --targets        fanout: the three target checks (p99 at 10k/s with 1 trigger,\n"
            "                   8 triggers vs sinks-direct, 10,000 triggers vs 1), one\n"
            "                   target=... line each\n"
            "  --ring-size B    ringcast ring bytes, power of two (default 64Mi = 67108864)\n"
            "  --reader-spin N  polls a ringcast shm reader spins before it sleeps on the\n"
            "                   ring's futex (default 100; 0 = the reader's own default,\n"
            "                   which spins long enough to starve a 2-core machine)\n"
            "  --reader-linger-us N  after a futex wake, a ringcast shm reader waits this\n"
            "                   long and then reads what arrived in one batch (default:\n"
            "                   100 in fanout, where throughput is measured; 0 elsewhere)\n"
            "  --drain S        wait this long without progress for consumers (default 2)\n"
            "  --quick          short runs (the smoke test and `all --quick`)\n"
            "  --out DIR        write report.md, report.json and <scenario>.svg into DIR\n\n"
            "Servers run on free loopback ports from private temp directories and are stopped\n"
            "by pid. A peer that is not installed is skipped with a message. The last stdout\n"
            "line is key=value.\n",
            scenario, summary);
}

int rc_bench_opts_parse(const char *scenario, const char *summary, int argc, char **argv,
                        rc_bench_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->seconds = -1;
    o->conns = 16;
    o->depth = 1;
    o->size = 128;
    o->mode = RC_LG_HTTP_BINARY;
    o->batch = 100;
    o->types = 4;
    o->runs = 1;
    o->drain_s = -1;
    o->ring_bytes = 64ull << 20;
    o->reader_spin = 100;
    o->reader_linger_us = RC_BENCH_LINGER_UNSET;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(scenario, summary, stdout);
            return 1;
        }
        if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
            continue;
        }
        if (strcmp(a, "--targets") == 0) {
            o->targets = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "ringcast-bench %s: unknown option or missing value: '%s'\n", scenario,
                    a);
            usage(scenario, summary, stderr);
            return 2;
        }
        char *end = NULL;
        i++;
        if (strcmp(a, "--seconds") == 0)
            o->seconds = strtod(v, &end);
        else if (strcmp(a, "--conns") == 0)
            o->conns = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--depth") == 0)
            o->depth = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--size") == 0)
            o->size = (size_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--batch") == 0)
            o->batch = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--types") == 0)
            o->types = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--runs") == 0)
            o->runs = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--drain") == 0)
            o->drain_s = strtod(v, &end);
        else if (strcmp(a, "--reader-spin") == 0)
            o->reader_spin = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--reader-linger-us") == 0)
            o->reader_linger_us = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--ring-size") == 0)
            o->ring_bytes = strtoull(v, &end, 10);
        else if (strcmp(a, "--systems") == 0)
            o->systems = v;
        else if (strcmp(a, "--rates") == 0)
            o->rates = v;
        else if (strcmp(a, "--consumers") == 0)
            o->consumers = v;
        else if (strcmp(a, "--triggers") == 0)
            o->triggers = v;
        else if (strcmp(a, "--decoys") == 0)
            o->decoys = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--workers") == 0)
            o->workers = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--rate") == 0)
            o->rate = strtod(v, &end);
        else if (strcmp(a, "--out") == 0)
            o->out = v;
        else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "binary") == 0)
                o->mode = RC_LG_HTTP_BINARY;
            else if (strcmp(v, "structured") == 0)
                o->mode = RC_LG_HTTP_STRUCTURED;
            else if (strcmp(v, "batch") == 0)
                o->mode = RC_LG_HTTP_BATCH;
            else {
                fprintf(stderr, "ringcast-bench %s: --mode binary, structured or batch\n",
                        scenario);
                return 2;
            }
        } else {
            fprintf(stderr, "ringcast-bench %s: unknown option '%s'\n", scenario, a);
            usage(scenario, summary, stderr);
            return 2;
        }
        if (end != NULL && (*end != 0 || end == v)) {
            fprintf(stderr, "ringcast-bench %s: %s needs a number, not '%s'\n", scenario, a, v);
            return 2;
        }
    }
    double nums[16];
    if ((o->rates && rc_bench_list_nums(o->rates, nums, 16) < 0) ||
        (o->consumers && rc_bench_list_nums(o->consumers, nums, 16) < 0) ||
        (o->triggers && rc_bench_list_nums(o->triggers, nums, 16) < 0)) {
        fprintf(stderr,
                "ringcast-bench %s: --rates, --consumers and --triggers take up to 16 positive "
                "numbers separated by commas\n",
                scenario);
        return 2;
    }
    static const char *const known[] = {"ringcast", "nginx",         "redis",
                                        "nats",     "ringcast-http", "sinks-direct"};
    for (const char *p = o->systems; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int ok = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= strlen(known[k]) == len && strncmp(known[k], p, len) == 0;
        if (!ok) {
            fprintf(stderr,
                    "ringcast-bench %s: unknown system '%.*s' in --systems (known: "
                    "ringcast, nginx, redis, nats, ringcast-http, sinks-direct)\n",
                    scenario, (int)len, p);
            return 2;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (o->reader_linger_us != RC_BENCH_LINGER_UNSET && o->reader_linger_us > 100000) {
        fprintf(stderr, "ringcast-bench %s: --reader-linger-us is at most 100000, not %u\n",
                scenario, o->reader_linger_us);
        return 2;
    }
    if (o->seconds < 0)
        o->seconds = o->quick ? 0.5 : 3.0;
    if (o->drain_s < 0)
        o->drain_s = o->quick ? 1.0 : 2.0;
    if (o->seconds <= 0 || o->seconds > 600 || o->conns < 1 || o->conns > 1024 || o->depth < 1 ||
        o->depth > 1024 || o->size < 16 || o->size > (1 << 20) || o->batch < 1 || o->batch > 1000 ||
        o->types < 1 || o->types > 1000 || o->runs < 1 || o->runs > 99 || o->drain_s <= 0 ||
        o->drain_s > 60 || o->ring_bytes < (64u << 10) || o->decoys < 0 || o->decoys > 100000 ||
        o->workers < 0 || o->workers > 64 || o->rate < 0 ||
        (o->ring_bytes & (o->ring_bytes - 1)) != 0) {
        fprintf(stderr,
                "ringcast-bench %s: out of range: --seconds 0-600, --conns/--depth 1-1024, "
                "--size 16-1048576, --batch/--types 1-1000, --runs 1-99, --drain 0-60, "
                "--ring-size a power of two >= 65536, --decoys 0-100000, --workers 0-64, "
                "--rate >= 0\n",
                scenario);
        return 2;
    }
    return 0;
}

int rc_bench_list_has(const char *list, const char *dflt, const char *name)
{
    const char *l = list ? list : dflt;
    size_t n = strlen(name);
    for (const char *p = l; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

int rc_bench_list_nums(const char *list, double *out, int max)
{
    int n = 0;
    for (const char *p = list; p && *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v <= 0 || n == max || (*end != ',' && *end != 0))
            return -1;
        out[n++] = v;
        p = *end == ',' ? end + 1 : NULL;
    }
    return n;
}

int rc_bench_finish(const char *scenario, const rc_report_t *rep, const rc_bench_opts_t *o,
                    int failed)
{
    rc_report_table(rep, scenario, stdout);
    if (o->out != NULL && rc_report_write_dir(rep, o->out) < 0)
        failed++;
    /* The result line: throughput, p99 and loss per system and parameter set. */
    printf("scenario=%s", scenario);
    uint64_t lost = 0;
    int rows = 0, skipped = 0;
    for (int i = 0; i < rep->count; i++) {
        const rc_row_t *x = &rep->rows[i];
        if (strcmp(x->scenario, scenario) != 0)
            continue;
        if (x->skipped) {
            skipped++;
            continue;
        }
        rows++;
        lost += x->lost;
        char key[96];
        snprintf(key, sizeof(key), "%s_%s", x->system, x->params);
        for (char *k = key; *k; k++) {
            if (*k == ' ' || *k == '=' || *k == ',' || *k == '-')
                *k = '_';
        }
        printf(" %s_eps=%.0f %s_p99_us=%.1f", key, x->throughput, key, x->p99_us);
    }
    printf(" rows=%d skipped=%d lost=%llu failed=%d\n", rows, skipped, (unsigned long long)lost,
           failed);
    return failed ? 1 : 0;
}

void rc_bench_run_opts(const rc_bench_opts_t *o, rc_peer_kind_t system, rc_run_opts_t *ro)
{
    rc_run_opts_init(ro);
    ro->system = system;
    ro->http_mode = o->mode;
    ro->ring_bytes = o->ring_bytes;
    ro->reader_spin = o->reader_spin; /* used only by runs with consumers */
    ro->reader_linger_us = o->reader_linger_us == RC_BENCH_LINGER_UNSET ? 0 : o->reader_linger_us;
    ro->drain_s = o->drain_s;         /* likewise */
    ro->load.conns = o->conns;
    ro->load.depth = o->depth;
    ro->load.seconds = o->seconds;
    ro->load.size = o->size;
    ro->load.batch = o->batch;
    ro->load.types = o->types;
}
