/* Option parsing and the common end of the comparison scenarios. */
#include "bench/options.h"

#include <stddef.h>
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
            "         [--triggers LIST] [--decoys N] [--workers N] [--rate R] [--targets]\n"
            "         [--bulk LIST] [--store-dir DIR] [--nodes LIST]\n\n%s\n\n"
            "  --seconds S      publishing time per run (default 3, quick 0.5)\n"
            "  --conns N        publisher connections (default 16)\n"
            "  --depth N        requests in flight per connection: 1 = keep-alive request/\n"
            "                   response, more = pipelined (default 1)\n"
            "  --size BYTES     data bytes per event (default 128)\n"
            "  --mode M         HTTP CloudEvents mode for ringcast/nginx (default binary)\n"
            "  --batch N        events per batch request (default 100)\n"
            "  --types N        distinct event types, round-robin (default 4)\n"
            "  --runs N         repeat each run, report the median throughput (default 1)\n"
            "  --systems LIST   e.g. ringcast,nginx,redis,nats (default: all of the scenario);\n"
            "                   ingest also: ringcast-file-none, ringcast-file-batch,\n"
            "                   ringcast-file-sync (a file store), redis-aof-everysec,\n"
            "                   redis-aof-always (appendonly yes)\n"
            "  --store-dir DIR  ingest: where the file stores' and Redis AOFs' temporary\n"
            "                   directories go, i.e. the disk measured (default $TMPDIR or /tmp)\n"
            "  --rates LIST     latency: offered events/s (default 1000,10000,50000);\n"
            "                   dapr: publish and end-to-end rates (default 1000,10000)\n"
            "  --consumers LIST fanout, groups: consumer counts (default 1,4,16; quick 1,4;\n"
            "                   groups quick 4); dapr: app replicas (default 2)\n"
            "  --bulk LIST      dapr: entries per bulk publish request (default 10,100)\n"
            "  --triggers LIST  fanout: ringcast-http / sinks-direct rows with N triggers, each\n"
            "                   to its own HTTP sink (default: the --consumers list; quick 1)\n"
            "  --decoys N       fanout: add N exact-type triggers the load never matches\n"
            "  --workers N      fanout: ringcast delivery worker processes (default: its own)\n"
            "  --rate R         fanout, groups, scaleout: open loop at R events/s instead of closed\n"
            "                   loop\n"
            "  --nodes LIST     scaleout: ringcast nodes sharing one broker over Redis\n"
            "                   (default 1,2,3; at most 8)\n"
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

/* The defaults before the command line is read; --seconds and --drain stay negative ("not
 * given") until the end, where --quick decides them. */
static void opts_defaults(rc_bench_opts_t *o)
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
}

typedef enum { OPT_DOUBLE, OPT_INT, OPT_SIZE, OPT_U32, OPT_U64, OPT_TEXT } opt_kind_t;

/* An option that takes a value: its name, the C type of its field (the kind must match the
 * field's declaration in bench/options.h) and where that field is. */
typedef struct {
    const char *name;
    opt_kind_t kind;
    size_t offset; /* in rc_bench_opts_t */
} opt_t;

static const opt_t value_opts[] = {
    {"--seconds", OPT_DOUBLE, offsetof(rc_bench_opts_t, seconds)},
    {"--conns", OPT_INT, offsetof(rc_bench_opts_t, conns)},
    {"--depth", OPT_INT, offsetof(rc_bench_opts_t, depth)},
    {"--size", OPT_SIZE, offsetof(rc_bench_opts_t, size)},
    {"--batch", OPT_INT, offsetof(rc_bench_opts_t, batch)},
    {"--types", OPT_INT, offsetof(rc_bench_opts_t, types)},
    {"--runs", OPT_INT, offsetof(rc_bench_opts_t, runs)},
    {"--drain", OPT_DOUBLE, offsetof(rc_bench_opts_t, drain_s)},
    {"--reader-spin", OPT_U32, offsetof(rc_bench_opts_t, reader_spin)},
    {"--reader-linger-us", OPT_U32, offsetof(rc_bench_opts_t, reader_linger_us)},
    {"--ring-size", OPT_U64, offsetof(rc_bench_opts_t, ring_bytes)},
    {"--systems", OPT_TEXT, offsetof(rc_bench_opts_t, systems)},
    {"--rates", OPT_TEXT, offsetof(rc_bench_opts_t, rates)},
    {"--consumers", OPT_TEXT, offsetof(rc_bench_opts_t, consumers)},
    {"--triggers", OPT_TEXT, offsetof(rc_bench_opts_t, triggers)},
    {"--bulk", OPT_TEXT, offsetof(rc_bench_opts_t, bulk)},
    {"--decoys", OPT_INT, offsetof(rc_bench_opts_t, decoys)},
    {"--workers", OPT_INT, offsetof(rc_bench_opts_t, workers)},
    {"--rate", OPT_DOUBLE, offsetof(rc_bench_opts_t, rate)},
    {"--out", OPT_TEXT, offsetof(rc_bench_opts_t, out)},
    {"--store-dir", OPT_TEXT, offsetof(rc_bench_opts_t, store_dir)},
    {"--nodes", OPT_TEXT, offsetof(rc_bench_opts_t, nodes)},
};

/* Stores `v` in the option's field. Returns 0, or -1 when a number is not the whole of `v`
 * (range checks come later, once every option is known). */
static int set_value(rc_bench_opts_t *o, const opt_t *opt, const char *v)
{
    char *field = (char *)o + opt->offset;
    char *end = NULL;
    switch (opt->kind) {
    case OPT_DOUBLE:
        *(double *)field = strtod(v, &end);
        break;
    case OPT_INT:
        *(int *)field = (int)strtol(v, &end, 10);
        break;
    case OPT_SIZE:
        *(size_t *)field = (size_t)strtoul(v, &end, 10);
        break;
    case OPT_U32:
        *(uint32_t *)field = (uint32_t)strtoul(v, &end, 10);
        break;
    case OPT_U64:
        *(uint64_t *)field = strtoull(v, &end, 10);
        break;
    case OPT_TEXT:
        *(const char **)field = v;
        break;
    }
    return end != NULL && (*end != 0 || end == v) ? -1 : 0;
}

static int parse_mode(const char *v, int *mode)
{
    if (strcmp(v, "binary") == 0)
        *mode = RC_LG_HTTP_BINARY;
    else if (strcmp(v, "structured") == 0)
        *mode = RC_LG_HTTP_STRUCTURED;
    else if (strcmp(v, "batch") == 0)
        *mode = RC_LG_HTTP_BATCH;
    else
        return -1;
    return 0;
}

/* One option `a` with its value `v`. Returns 0 or 2 (bad usage, message printed). */
static int parse_value(const char *scenario, const char *summary, const char *a, const char *v,
                       rc_bench_opts_t *o)
{
    if (strcmp(a, "--mode") == 0) {
        if (parse_mode(v, &o->mode) < 0) {
            fprintf(stderr, "ringcast-bench %s: --mode binary, structured or batch\n", scenario);
            return 2;
        }
        return 0;
    }
    for (size_t k = 0; k < sizeof(value_opts) / sizeof(value_opts[0]); k++) {
        if (strcmp(a, value_opts[k].name) != 0)
            continue;
        if (set_value(o, &value_opts[k], v) < 0) {
            fprintf(stderr, "ringcast-bench %s: %s needs a number, not '%s'\n", scenario, a, v);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "ringcast-bench %s: unknown option '%s'\n", scenario, a);
    usage(scenario, summary, stderr);
    return 2;
}

/* Reads argv into `o`. Returns 0, 1 (--help printed) or 2 (bad usage, message printed). */
static int parse_args(const char *scenario, const char *summary, int argc, char **argv,
                      rc_bench_opts_t *o)
{
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
        i++;
        int rc = parse_value(scenario, summary, a, v, o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Every name in --systems must be one some scenario knows: a typo would otherwise run nothing
 * and look like a skipped peer. Returns 0 or 2 (message printed). */
static int check_systems(const char *scenario, const char *systems)
{
    static const char *const known[] = {"ringcast",
                                        "nginx",
                                        "redis",
                                        "nats",
                                        "ringcast-http",
                                        "sinks-direct",
                                        "nginx-proxy",
                                        "ringcast-file-none",
                                        "ringcast-file-batch",
                                        "ringcast-file-sync",
                                        "redis-aof-always",
                                        "redis-aof-everysec"};
    for (const char *p = systems; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int ok = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= strlen(known[k]) == len && strncmp(known[k], p, len) == 0;
        if (!ok) {
            fprintf(stderr,
                    "ringcast-bench %s: unknown system '%.*s' in --systems (known: "
                    "ringcast, nginx, redis, nats, ringcast-http, sinks-direct, nginx-proxy, "
                    "ringcast-file-none, ringcast-file-batch, ringcast-file-sync, "
                    "redis-aof-always, redis-aof-everysec)\n",
                    scenario, (int)len, p);
            return 2;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* --nodes (scaleout): up to 8 whole node counts, each 1-8 (each node is a `ringcast serve` with
 * its workers on this machine). Returns 0 or 2 (message printed). */
static int check_nodes(const char *scenario, const char *list)
{
    double nums[RC_BENCH_MAX_NODES];
    int n = rc_bench_list_nums(list, nums, RC_BENCH_MAX_NODES);
    for (int i = 0; i < n; i++) {
        if (nums[i] < 1 || nums[i] > RC_BENCH_MAX_NODES || nums[i] != (double)(int)nums[i])
            n = -1;
    }
    if (n < 0) {
        fprintf(stderr,
                "ringcast-bench %s: --nodes takes up to %d whole numbers 1-%d separated by "
                "commas, not '%s'\n",
                scenario, RC_BENCH_MAX_NODES, RC_BENCH_MAX_NODES, list);
        return 2;
    }
    return 0;
}

/* The checks that need every option read, and the --quick defaults. Returns 0 or 2 (message
 * printed). */
static int check_opts(const char *scenario, rc_bench_opts_t *o)
{
    double nums[16];
    if ((o->rates && rc_bench_list_nums(o->rates, nums, 16) < 0) ||
        (o->consumers && rc_bench_list_nums(o->consumers, nums, 16) < 0) ||
        (o->triggers && rc_bench_list_nums(o->triggers, nums, 16) < 0) ||
        (o->bulk && rc_bench_list_nums(o->bulk, nums, 16) < 0)) {
        fprintf(stderr,
                "ringcast-bench %s: --rates, --consumers, --triggers and --bulk take up to 16 "
                "positive numbers separated by commas\n",
                scenario);
        return 2;
    }
    if (check_systems(scenario, o->systems) != 0)
        return 2;
    if (o->nodes != NULL && check_nodes(scenario, o->nodes) != 0)
        return 2;
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

int rc_bench_opts_parse(const char *scenario, const char *summary, int argc, char **argv,
                        rc_bench_opts_t *o)
{
    opts_defaults(o);
    int rc = parse_args(scenario, summary, argc, argv, o);
    if (rc == 0)
        rc = check_opts(scenario, o);
    return rc;
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
        /* Which side saturated: each process's CPU over the run, in percent of one core. */
        double load, server, workers, cons;
        rc_report_cpu_pct(x, &load, &server, &workers, &cons);
        printf(" %s_load_cpu_pct=%.0f %s_server_cpu_pct=%.0f %s_workers_cpu_pct=%.0f "
               "%s_consumers_cpu_pct=%.0f %s_machine_busy_pct=%.0f %s_saturated=%s",
               key, load, key, server, key, workers, key, cons, key, x->machine_busy_pct, key,
               rc_report_saturated(x));
        if (x->has_fsyncs)
            printf(" %s_fsyncs_s=%.0f %s_events_per_fsync=%.2f", key, x->fsyncs_per_s, key,
                   x->events_per_fsync);
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
    ro->drain_s = o->drain_s; /* likewise */
    ro->load.conns = o->conns;
    ro->load.depth = o->depth;
    ro->load.seconds = o->seconds;
    ro->load.size = o->size;
    ro->load.batch = o->batch;
    ro->load.types = o->types;
    ro->store_parent = o->store_dir;
}

void rc_bench_http_opts(const rc_bench_opts_t *o, double rate, rc_http_run_opts_t *h)
{
    rc_http_run_opts_init(h);
    h->workers = o->workers;
    h->drain_s = o->drain_s;
    h->ring_bytes = o->ring_bytes;
    h->load.conns = o->conns;
    h->load.depth = o->depth;
    h->load.seconds = o->seconds;
    h->load.size = o->size;
    h->load.proto = (rc_lg_proto_t)o->mode;
    h->load.batch = o->batch;
    h->load.rate = rate;
}
