/* Ingress metrics and the per-broker ring gauges (fill, readers, who holds the ring back,
 * consumer groups), in the Prometheus text format. */
#include "net/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

#ifndef RC_PROJECT_VERSION
#define RC_PROJECT_VERSION "0"
#endif

static const double bucket_le[RC_LATENCY_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    1.0,
};

static const char *const reason_names[RC_REJ_COUNT] = {
    "invalid_event",
    "malformed_http",
    "not_found",
    "method_not_allowed",
    "timeout",
    "too_large",
    "headers_too_large",
    "unsupported_media_type",
    "expectation_failed",
    "ring_full",
    "unavailable",
    "internal",
};

void rc_metrics_observe_latency(rc_ingress_metrics_t *m, uint64_t ns)
{
    size_t i = 0;
    while (i < RC_LATENCY_BUCKETS && (double)ns > bucket_le[i] * 1e9)
        i++;
    rc_metric_add(&m->latency_bucket[i], 1);
    rc_metric_add(&m->latency_sum_ns, ns);
    rc_metric_add(&m->latency_count, 1);
}

rc_reject_reason_t rc_metrics_reason_for_status(int status, int parser_error)
{
    switch (status) {
    case 400:
        return parser_error ? RC_REJ_MALFORMED_HTTP : RC_REJ_INVALID_EVENT;
    case 404:
        return RC_REJ_NOT_FOUND;
    case 405:
        return RC_REJ_METHOD;
    case 408:
        return RC_REJ_TIMEOUT;
    case 413:
        return RC_REJ_TOO_LARGE;
    case 414:
    case 431:
        return RC_REJ_HEADERS_TOO_LARGE;
    case 415:
        return RC_REJ_MEDIA_TYPE;
    case 417:
        return RC_REJ_EXPECTATION;
    case 429:
        return RC_REJ_RING_FULL;
    case 503:
        return RC_REJ_UNAVAILABLE;
    default:
        return RC_REJ_INTERNAL;
    }
}

const char *rc_metrics_reason_name(rc_reject_reason_t r)
{
    return r < RC_REJ_COUNT ? reason_names[r] : "unknown";
}

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped
 * (reader names are whatever a local reader chose). */
static const char *label(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            buf[o++] = '\\';
        buf[o++] = *s == '\n' ? 'n' : *s;
    }
    buf[o] = '\0';
    return buf;
}

/* Who holds each ring back, and the consumer groups (docs/config.md, "Lag limits"). */
static void put_lag(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    static const char *const kinds[2] = {"bytes", "events"};
    put(o, "# HELP ringcast_ring_refused_total Appends refused because the ring was full.\n"
           "# TYPE ringcast_ring_refused_total counter\n");
    for (size_t i = 0; i < nrings; i++)
        put(o, "ringcast_ring_refused_total{namespace=\"%s\",broker=\"%s\"} %llu\n", rings[i].ns,
            rings[i].name, (unsigned long long)rings[i].refused);
    for (int k = 0; k < 2; k++) {
        put(o,
            "# HELP ringcast_ring_slowest_reader_lag_%s The lossless reader that holds producers "
            "back (the ring's tail): %s between its position and the head.\n"
            "# TYPE ringcast_ring_slowest_reader_lag_%s gauge\n",
            kinds[k], kinds[k], kinds[k]);
        for (size_t i = 0; i < nrings; i++) {
            const rc_ring_gauge_t *r = &rings[i];
            char name[3 * 24 + 1];
            if (r->holder == NULL)
                continue;
            put(o,
                "ringcast_ring_slowest_reader_lag_%s{namespace=\"%s\",broker=\"%s\",reader=\"%s\","
                "pid=\"%u\",trigger=\"%s\"} %llu\n",
                kinds[k], r->ns, r->name, label(r->holder, name, sizeof(name)), r->holder_pid,
                r->holder_trigger ? r->holder_trigger : "",
                (unsigned long long)(k == 0 ? r->holder_lag_bytes : r->holder_lag_events));
        }
    }
    size_t nreaders = 0;
    for (size_t i = 0; i < nrings; i++)
        nreaders += rings[i].nreaders;
    for (int k = 0; k < 2 && nreaders > 0; k++) {
        put(o,
            "# HELP ringcast_reader_lag_%s A local reader of the ring (ringcast tail, an SDK "
            "consumer; not a worker's feed or a group): %s between its position and the head.\n"
            "# TYPE ringcast_reader_lag_%s gauge\n",
            kinds[k], kinds[k], kinds[k]);
        for (size_t i = 0; i < nrings; i++) {
            for (size_t j = 0; j < rings[i].nreaders; j++) {
                const rc_storage_local_reader_t *r = &rings[i].readers_list[j];
                char name[3 * 24 + 1];
                put(o,
                    "ringcast_reader_lag_%s{namespace=\"%s\",broker=\"%s\",reader=\"%s\","
                    "slot=\"%u\",pid=\"%u\",mode=\"%s\"} %llu\n",
                    kinds[k], rings[i].ns, rings[i].name, label(r->name, name, sizeof(name)),
                    r->slot, r->pid, r->lossless ? "lossless" : "lossy",
                    (unsigned long long)(k == 0 ? r->lag_bytes : r->lag_events));
            }
        }
    }
    static const struct {
        const char *name, *type, *help;
    } gm[] = {
        {"ringcast_group_members", "gauge", "Members of the consumer group."},
        {"ringcast_group_lag_bytes", "gauge", "Bytes between the group's position and the head."},
        {"ringcast_group_lag_limit_bytes", "gauge",
         "The group's lag limit (0: policy block, never skipped)."},
        {"ringcast_group_lagged_total", "counter",
         "Events the group skipped (dropped) because it fell past its lag limit."},
    };
    for (size_t m = 0; m < sizeof(gm) / sizeof(gm[0]); m++) {
        put(o, "# HELP %s %s\n# TYPE %s %s\n", gm[m].name, gm[m].help, gm[m].name, gm[m].type);
        for (size_t i = 0; i < nrings; i++) {
            for (size_t j = 0; j < rings[i].ngroups; j++) {
                const rc_storage_group_t *g = &rings[i].groups[j];
                uint64_t v = m == 0   ? g->members
                             : m == 1 ? g->lag_bytes
                             : m == 2 ? g->limit
                                      : g->lagged;
                put(o, "%s{namespace=\"%s\",broker=\"%s\",group=\"%s\"} %llu\n", gm[m].name,
                    rings[i].ns, rings[i].name, g->name, (unsigned long long)v);
            }
        }
    }
}

static uint64_t sum(const rc_ingress_metrics_t *loops, size_t n, size_t off)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        const _Atomic uint64_t *c = (const _Atomic uint64_t *)((const char *)&loops[i] + off);
        s += atomic_load_explicit(c, memory_order_relaxed);
    }
    return s;
}

#define SUM(field) sum(loops, n, offsetof(rc_ingress_metrics_t, field))

/* Durability batch and sync (docs/durability.md, "Visibility"): events per fdatasync is the
 * rate of ringcast_storage_durable_events over that of ringcast_storage_fsyncs_total. */
static int flushes(const rc_ring_gauge_t *g)
{
    return g->durability != NULL && strcmp(g->durability, "none") != 0;
}

static void put_fsyncs(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    size_t any = 0;
    for (size_t i = 0; i < nrings; i++)
        any += flushes(&rings[i]) != 0;
    if (any == 0)
        return; /* families without samples are noise (and promtool's lint flags them) */
    put(o, "# HELP ringcast_storage_fsyncs_total fdatasyncs of the broker's ring file (durability "
           "batch and sync).\n# TYPE ringcast_storage_fsyncs_total counter\n");
    for (size_t i = 0; i < nrings; i++)
        if (flushes(&rings[i]))
            put(o, "ringcast_storage_fsyncs_total{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)rings[i].fsyncs);
    put(o, "# HELP ringcast_storage_fsync_seconds Time spent in fdatasync of the broker's ring "
           "file.\n# TYPE ringcast_storage_fsync_seconds summary\n");
    for (size_t i = 0; i < nrings; i++)
        if (flushes(&rings[i]))
            put(o,
                "ringcast_storage_fsync_seconds_sum{namespace=\"%s\",broker=\"%s\"} %.9f\n"
                "ringcast_storage_fsync_seconds_count{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (double)rings[i].fsync_ns / 1e9, rings[i].ns,
                rings[i].name, (unsigned long long)rings[i].fsyncs);
    put(o, "# HELP ringcast_storage_durable_events Events of the broker known to be on disk (the "
           "head when the last fdatasync began).\n# TYPE ringcast_storage_durable_events gauge\n");
    for (size_t i = 0; i < nrings; i++)
        if (flushes(&rings[i]))
            put(o, "ringcast_storage_durable_events{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)rings[i].durable_events);
}

/* Where each broker keeps its events (docs/durability.md, "Visibility"). */
/* Brokers with ringcast.dev/dedup-window (net/dedup.h); the families only when there is one. */
static void put_dedup(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    static const struct {
        const char *name, *type, *help;
    } f[] = {
        {"ringcast_ingress_duplicates_total", "counter",
         "Events answered 202 without being stored again: their (source, id) was accepted "
         "within the deduplication window."},
        {"ringcast_dedup_keys", "gauge", "Keys the deduplication table holds."},
        {"ringcast_dedup_capacity_keys", "gauge", "Keys the deduplication table can hold."},
        {"ringcast_dedup_evicted_total", "counter",
         "Keys dropped before their window ended because the table was full."},
        {"ringcast_dedup_window_seconds", "gauge", "The configured deduplication window."},
        {"ringcast_dedup_oldest_key_age_seconds", "gauge",
         "Age of the oldest key held: the window that holds now (shorter than the configured "
         "one once the table fills)."},
    };
    int any = 0;
    for (size_t i = 0; i < nrings; i++)
        any |= rings[i].dedup;
    int64_t now = rc_wall_ns();
    for (size_t m = 0; any && m < sizeof(f) / sizeof(f[0]); m++) {
        put(o, "# HELP %s %s\n# TYPE %s %s\n", f[m].name, f[m].help, f[m].name, f[m].type);
        for (size_t i = 0; i < nrings; i++) {
            const rc_dedup_stats_t *d = &rings[i].dedup_st;
            if (!rings[i].dedup)
                continue;
            put(o, "%s{namespace=\"%s\",broker=\"%s\"} ", f[m].name, rings[i].ns, rings[i].name);
            if (m < 4)
                put(o, "%llu\n",
                    (unsigned long long)(m == 0   ? d->duplicates
                                         : m == 1 ? d->keys
                                         : m == 2 ? d->capacity
                                                  : d->evicted));
            else if (m == 4)
                put(o, "%.3f\n", (double)d->window_ns / 1e9);
            else
                put(o, "%.3f\n",
                    d->oldest_ns > 0 && now > d->oldest_ns ? (double)(now - d->oldest_ns) / 1e9
                                                           : 0.0);
        }
    }
}

/* One counter or gauge per redis store: `field` picks the value. */
static void put_redis_family(out_t *o, const rc_ring_gauge_t *rings, size_t nrings,
                             const char *name, const char *type, const char *help,
                             uint64_t (*field)(const rc_ring_gauge_t *))
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < nrings; i++)
        if (rings[i].storage != NULL && strcmp(rings[i].storage, "redis") == 0)
            put(o, "%s{namespace=\"%s\",broker=\"%s\"} %llu\n", name, rings[i].ns, rings[i].name,
                (unsigned long long)field(&rings[i]));
}

static uint64_t lag_entries(const rc_ring_gauge_t *g)
{
    return g->mirror_lag_entries;
}

static uint64_t lag_ms(const rc_ring_gauge_t *g)
{
    return g->mirror_lag_ms;
}

static uint64_t trimmed(const rc_ring_gauge_t *g)
{
    return g->mirror_trimmed;
}

static uint64_t aged(const rc_ring_gauge_t *g)
{
    return g->redis_aged;
}

/* The mirror's lag behind the streams and what Redis trimmed before it copied it. */
static void put_redis_lag(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    put_redis_family(o, rings, nrings, "ringcast_storage_redis_mirror_lag_entries", "gauge",
                     "Entries of the broker's Redis streams the mirror has not copied into "
                     "this node's ring yet (sampled every 0.5 s).",
                     lag_entries);
    /* Milliseconds as the gauge's unit would read as seconds in dashboards: seconds, with
     * millisecond resolution. */
    put(o, "# HELP ringcast_storage_redis_mirror_lag_seconds How long the oldest entry the "
           "mirror has not copied has waited (0 when none; Redis' entry ID time against the "
           "node's clock).\n# TYPE ringcast_storage_redis_mirror_lag_seconds gauge\n");
    for (size_t i = 0; i < nrings; i++)
        if (rings[i].storage != NULL && strcmp(rings[i].storage, "redis") == 0)
            put(o,
                "ringcast_storage_redis_mirror_lag_seconds{namespace=\"%s\",broker=\"%s\"} "
                "%llu.%03llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)(lag_ms(&rings[i]) / 1000),
                (unsigned long long)(lag_ms(&rings[i]) % 1000));
    put_redis_family(o, rings, nrings, "ringcast_storage_redis_mirror_trimmed_total", "counter",
                     "Entries Redis trimmed (maxLen, maxAge) before the mirror copied them: "
                     "never in this node's ring.",
                     trimmed);
    put_redis_family(o, rings, nrings, "ringcast_storage_redis_max_age_trimmed_total", "counter",
                     "Entries older than spec.redis.maxAge this node trimmed (XTRIM MINID).", aged);
}

/* Redis stores (docs/scaleout.md): their appends by answer, and the mirror's copies. */
static void put_redis(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    size_t any = 0;
    for (size_t i = 0; i < nrings; i++)
        any += rings[i].storage != NULL && strcmp(rings[i].storage, "redis") == 0;
    if (any == 0)
        return; /* a family without a sample is not written */
    put(o, "# HELP ringcast_storage_redis_appends_total Events a redis store sent to Redis, by "
           "answer: acknowledged (202) or refused (503: Redis down, an error, too few "
           "replicas).\n# TYPE ringcast_storage_redis_appends_total counter\n");
    for (size_t i = 0; i < nrings; i++) {
        if (rings[i].storage == NULL || strcmp(rings[i].storage, "redis") != 0)
            continue;
        put(o,
            "ringcast_storage_redis_appends_total{namespace=\"%s\",broker=\"%s\","
            "result=\"acknowledged\"} %llu\n"
            "ringcast_storage_redis_appends_total{namespace=\"%s\",broker=\"%s\","
            "result=\"refused\"} %llu\n",
            rings[i].ns, rings[i].name, (unsigned long long)rings[i].redis_acked, rings[i].ns,
            rings[i].name, (unsigned long long)rings[i].redis_refused);
    }
    put(o, "# HELP ringcast_storage_redis_up 1 while a redis store's appends succeed; 0 while "
           "its connection is down or its last append was refused (the ingress answers 503, "
           "/readyz too).\n# TYPE ringcast_storage_redis_up gauge\n");
    for (size_t i = 0; i < nrings; i++) {
        if (rings[i].storage != NULL && strcmp(rings[i].storage, "redis") == 0)
            put(o, "ringcast_storage_redis_up{namespace=\"%s\",broker=\"%s\"} %d\n", rings[i].ns,
                rings[i].name, !rings[i].redis_down);
    }
    put(o, "# HELP ringcast_storage_redis_mirrored_total Redis stream entries the mirror copied "
           "into the broker's ring, or skipped (not a ringcast record, larger than the ring).\n"
           "# TYPE ringcast_storage_redis_mirrored_total counter\n");
    for (size_t i = 0; i < nrings; i++) {
        if (rings[i].storage == NULL || strcmp(rings[i].storage, "redis") != 0)
            continue;
        put(o,
            "ringcast_storage_redis_mirrored_total{namespace=\"%s\",broker=\"%s\","
            "result=\"copied\"} %llu\n"
            "ringcast_storage_redis_mirrored_total{namespace=\"%s\",broker=\"%s\","
            "result=\"skipped\"} %llu\n",
            rings[i].ns, rings[i].name, (unsigned long long)rings[i].mirrored, rings[i].ns,
            rings[i].name, (unsigned long long)rings[i].mirror_skipped);
    }
    put_redis_lag(o, rings, nrings);
}

static void put_storage(out_t *o, const rc_ring_gauge_t *rings, size_t nrings)
{
    put(o, "# HELP ringcast_storage_info Where the broker keeps its events: type memory (a shm "
           "ring), file or redis (Redis Streams), and its durability.\n"
           "# TYPE ringcast_storage_info gauge\n");
    for (size_t i = 0; i < nrings; i++)
        put(o,
            "ringcast_storage_info{namespace=\"%s\",broker=\"%s\",type=\"%s\","
            "durability=\"%s\"} 1\n",
            rings[i].ns, rings[i].name, rings[i].storage ? rings[i].storage : "memory",
            rings[i].durability ? rings[i].durability : "none");
    put(o, "# HELP ringcast_storage_file_bytes Size of the broker's ring file (file stores).\n"
           "# TYPE ringcast_storage_file_bytes gauge\n");
    for (size_t i = 0; i < nrings; i++) {
        if (rings[i].storage != NULL && strcmp(rings[i].storage, "file") == 0)
            put(o, "ringcast_storage_file_bytes{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)rings[i].file_bytes);
    }
    put(o, "# HELP ringcast_storage_corrupt_records_total Corrupt records found in the broker's "
           "store (at start, and by readers that check), padded over or skipped.\n"
           "# TYPE ringcast_storage_corrupt_records_total counter\n");
    for (size_t i = 0; i < nrings; i++)
        put(o, "ringcast_storage_corrupt_records_total{namespace=\"%s\",broker=\"%s\"} %llu\n",
            rings[i].ns, rings[i].name, (unsigned long long)rings[i].corrupt);
    put_fsyncs(o, rings, nrings);
    put_dedup(o, rings, nrings);
    put_redis(o, rings, nrings);
}

size_t rc_metrics_render(const rc_ingress_metrics_t *loops, size_t n, const rc_ring_gauge_t *rings,
                         size_t nrings, char *buf, size_t cap)
{
    out_t o = {buf, cap, 0};
    put(&o,
        "# HELP ringcast_ingress_requests_total Ingress requests whose headers were read and "
        "routed.\n"
        "# TYPE ringcast_ingress_requests_total counter\n"
        "ringcast_ingress_requests_total %llu\n",
        (unsigned long long)SUM(requests));
    put(&o,
        "# HELP ringcast_ingress_events_accepted_total Events stored in a ring.\n"
        "# TYPE ringcast_ingress_events_accepted_total counter\n"
        "ringcast_ingress_events_accepted_total %llu\n",
        (unsigned long long)SUM(events_accepted));
    put(&o,
        "# HELP ringcast_ingress_bytes_accepted_total Body bytes of accepted requests.\n"
        "# TYPE ringcast_ingress_bytes_accepted_total counter\n"
        "ringcast_ingress_bytes_accepted_total %llu\n",
        (unsigned long long)SUM(bytes_accepted));
    put(&o, "# HELP ringcast_ingress_rejected_total Requests refused, by reason.\n"
            "# TYPE ringcast_ingress_rejected_total counter\n");
    for (int r = 0; r < RC_REJ_COUNT; r++)
        put(&o, "ringcast_ingress_rejected_total{reason=\"%s\"} %llu\n", reason_names[r],
            (unsigned long long)SUM(rejected[r]));
    uint64_t opened = SUM(connections_opened), closed = SUM(connections_closed);
    put(&o,
        /* Not ringcast_ingress_connections: under OpenMetrics a gauge X and a counter
         * X_total are one family named X, and the two would collide. */
        "# HELP ringcast_ingress_open_connections Open ingress connections.\n"
        "# TYPE ringcast_ingress_open_connections gauge\n"
        "ringcast_ingress_open_connections %llu\n"
        "# HELP ringcast_ingress_connections_total Ingress connections accepted.\n"
        "# TYPE ringcast_ingress_connections_total counter\n"
        "ringcast_ingress_connections_total %llu\n",
        (unsigned long long)(opened >= closed ? opened - closed : 0), (unsigned long long)opened);
    put(&o, "# HELP ringcast_ingest_latency_seconds Time from a request's first byte to its "
            "response.\n# TYPE ringcast_ingest_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < RC_LATENCY_BUCKETS; b++) {
        cum += SUM(latency_bucket[b]);
        put(&o, "ringcast_ingest_latency_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[b],
            (unsigned long long)cum);
    }
    cum += SUM(latency_bucket[RC_LATENCY_BUCKETS]);
    put(&o,
        "ringcast_ingest_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
        "ringcast_ingest_latency_seconds_sum %.9f\n"
        "ringcast_ingest_latency_seconds_count %llu\n",
        (unsigned long long)cum, (double)SUM(latency_sum_ns) / 1e9,
        (unsigned long long)SUM(latency_count));
    if (nrings > 0) {
        put(&o, "# HELP ringcast_ring_used_bytes Bytes of the ring not yet released by its "
                "slowest lossless reader.\n# TYPE ringcast_ring_used_bytes gauge\n");
        for (size_t i = 0; i < nrings; i++)
            put(&o, "ringcast_ring_used_bytes{namespace=\"%s\",broker=\"%s\"} %llu\n", rings[i].ns,
                rings[i].name, (unsigned long long)rings[i].used_bytes);
        put(&o, "# HELP ringcast_ring_capacity_bytes Capacity of the ring.\n"
                "# TYPE ringcast_ring_capacity_bytes gauge\n");
        for (size_t i = 0; i < nrings; i++)
            put(&o, "ringcast_ring_capacity_bytes{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)rings[i].capacity_bytes);
        put(&o, "# HELP ringcast_ring_events_total Events committed to the ring since it was "
                "created.\n# TYPE ringcast_ring_events_total counter\n");
        for (size_t i = 0; i < nrings; i++)
            put(&o, "ringcast_ring_events_total{namespace=\"%s\",broker=\"%s\"} %llu\n",
                rings[i].ns, rings[i].name, (unsigned long long)rings[i].events);
        put(&o, "# HELP ringcast_ring_readers Readers attached to the ring, by mode.\n"
                "# TYPE ringcast_ring_readers gauge\n");
        for (size_t i = 0; i < nrings; i++)
            put(&o,
                "ringcast_ring_readers{namespace=\"%s\",broker=\"%s\",mode=\"lossless\"} %u\n"
                "ringcast_ring_readers{namespace=\"%s\",broker=\"%s\",mode=\"lossy\"} %u\n",
                rings[i].ns, rings[i].name, rings[i].lossless, rings[i].ns, rings[i].name,
                rings[i].readers - rings[i].lossless);
        put_lag(&o, rings, nrings);
        put_storage(&o, rings, nrings);
    }
    return o.len;
}

/* /proc/self/stat after the command name (which may hold spaces and parentheses): fields 14
 * utime, 15 stime, 22 starttime (clock ticks), 23 vsize (bytes), 24 rss (pages). */
static int read_self_stat(unsigned long long *ticks, unsigned long long *start,
                          unsigned long long *vsize, long long *rss)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* After ")": field 3 (state) on; skip 4..13, read 14, 15, skip 16..21, read 22, 23, 24. */
    if (p == NULL ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
               "%*d %*d %llu %llu %lld",
               &ut, &st, start, vsize, rss) != 5)
        return -1;
    *ticks = ut + st;
    return 0;
}

/* The boot time (seconds since the epoch) from /proc/stat's btime line. */
static long long boot_time(void)
{
    char line[256];
    long long bt = -1;
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

size_t rc_metrics_process(char *buf, size_t cap)
{
    out_t o = {buf, cap, 0};
    put(&o,
        "# HELP ringcast_build_info The broker's version (always 1).\n"
        "# TYPE ringcast_build_info gauge\n"
        "ringcast_build_info{version=\"%s\"} 1\n",
        RC_PROJECT_VERSION);
    /* Read at scrape time from /proc (a few small reads): the names and meanings are the
     * Prometheus clients' process collector's, so the usual dashboards work unchanged. A file
     * that cannot be read leaves its metrics out rather than reporting a made-up 0.
     * process_open_fds and process_max_fds are serve.c's (http_metrics: they go with its descriptor
     * limits). */
    unsigned long long ticks, start, vsize;
    long long rss;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (hz > 0 && page > 0 && read_self_stat(&ticks, &start, &vsize, &rss) == 0) {
        put(&o,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total %.2f\n"
            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
            "# TYPE process_virtual_memory_bytes gauge\n"
            "process_virtual_memory_bytes %llu\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %lld\n",
            (double)ticks / (double)hz, vsize, rss * (long long)page);
        long long bt = boot_time();
        if (bt > 0)
            put(&o,
                "# HELP process_start_time_seconds Start time of the process since unix epoch in "
                "seconds.\n"
                "# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %.2f\n",
                (double)bt + (double)start / (double)hz);
    }
    return o.len;
}

void rc_metrics_copy(rc_ingress_metrics_t *to, const rc_ingress_metrics_t *from)
{
    /* Every member is an _Atomic uint64_t (an array of them, in effect). */
    _Static_assert(sizeof(rc_ingress_metrics_t) % sizeof(_Atomic uint64_t) == 0, "counters only");
    const _Atomic uint64_t *src = (const _Atomic uint64_t *)(const void *)from;
    _Atomic uint64_t *dst = (_Atomic uint64_t *)(void *)to;
    for (size_t i = 0; i < sizeof(*from) / sizeof(*src); i++)
        atomic_store_explicit(&dst[i], atomic_load_explicit(&src[i], memory_order_relaxed),
                              memory_order_relaxed);
}
