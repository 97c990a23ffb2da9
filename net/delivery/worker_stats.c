/* The shared per-trigger metrics segment and its Prometheus rendering. */
#include "net/delivery/worker_stats.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/metric.h"

/* Bucket bounds in nanoseconds: an observation compares integers (it runs once per event and
 * histogram); rendering divides by 1e9, which gives the same doubles as decimal literals. */
#define MS 1000000ull
#define S  1000000000ull

static const uint64_t bounds_ns[RC_DELIVERY_BUCKETS] = {
    MS / 10, MS / 4,   MS / 2,   MS,       5 * MS / 2, 5 * MS,    10 * MS, 25 * MS,
    50 * MS, 100 * MS, 250 * MS, 500 * MS, S,          5 * S / 2, 5 * S,   10 * S};

static const uint64_t e2e_bounds_ns[RC_E2E_BUCKETS] = {
    MS,       5 * MS / 2, 5 * MS,    10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS,
    500 * MS, S,          5 * S / 2, 5 * S,   10 * S,  30 * S,  60 * S,   300 * S};

static const uint64_t wait_bounds_ns[RC_WAIT_BUCKETS] = {
    MS / 10,  MS / 2,   MS, 5 * MS,    10 * MS, 25 * MS, 50 * MS, 100 * MS,
    250 * MS, 500 * MS, S,  5 * S / 2, 5 * S,   10 * S,  30 * S,  60 * S};

_Static_assert(sizeof(rc_trigger_stats_t) % 64 == 0, "trigger slots fill cache lines");

static size_t seg_bytes(uint32_t slots)
{
    return sizeof(rc_worker_stats_t) + (size_t)slots * sizeof(rc_trigger_stats_t) +
           (size_t)slots * RC_STATS_REPLICAS * sizeof(rc_replica_stats_t);
}

/* The replica blocks start right after the last trigger slot. */
static const rc_replica_stats_t *replicas_of(const rc_worker_stats_t *s, uint32_t slot)
{
    const rc_replica_stats_t *base = (const rc_replica_stats_t *)(const void *)&s->t[s->slots];
    return &base[(size_t)slot * RC_STATS_REPLICAS];
}

rc_replica_stats_t *rc_worker_stats_replicas(rc_worker_stats_t *s, uint32_t slot)
{
    return (rc_replica_stats_t *)replicas_of(s, slot);
}

int rc_worker_stats_create(uint32_t slots, rc_worker_stats_t **out)
{
    /* NORESERVE: the replica blocks of triggers without replicas are never touched. */
    void *p = mmap(NULL, seg_bytes(slots), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    rc_worker_stats_t *s = p;
    s->slots = slots;
    *out = s;
    return 0;
}

void rc_worker_stats_destroy(rc_worker_stats_t *s)
{
    if (s != NULL)
        munmap(s, seg_bytes(s->slots));
}

static void observe(_Atomic uint64_t *buckets, const uint64_t *bounds, size_t nb,
                    _Atomic uint64_t *sum, _Atomic uint64_t *count, uint64_t ns)
{
    size_t b = nb;
    for (size_t i = 0; i < nb; i++) {
        if (ns <= bounds[i]) {
            b = i;
            break;
        }
    }
    rc_metric_add(&buckets[b], 1);
    rc_metric_add(sum, ns);
    rc_metric_add(count, 1);
}

/* The id's bytes as NUL-padded words (cut at RC_OUTCOME_ID_MAX). */
static void store_id(_Atomic uint64_t *words, const char *id, size_t len)
{
    if (len > RC_OUTCOME_ID_MAX)
        len = RC_OUTCOME_ID_MAX;
    for (size_t w = 0; w < RC_OUTCOME_ID_MAX / 8; w++) {
        unsigned char b[8] = {0};
        for (size_t k = 0; k < 8 && w * 8 + k < len; k++)
            b[k] = (unsigned char)id[w * 8 + k];
        uint64_t v;
        memcpy(&v, b, 8);
        atomic_store_explicit(&words[w], v, memory_order_relaxed);
    }
}

void rc_worker_stats_record(rc_trigger_stats_t *t, int result, int64_t wall_ns, uint64_t dur_ns,
                            const char *id, size_t len)
{
    uint64_t n = atomic_load_explicit(&t->outcomes_n, memory_order_relaxed);
    rc_outcome_slot_t *o = &t->outcomes[n % RC_OUTCOMES];
    uint64_t seq = atomic_load_explicit(&o->seq, memory_order_relaxed);
    atomic_store_explicit(&o->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd before any field changes */
    atomic_store_explicit(&o->outcome, rc_worker_stats_outcome(result, wall_ns),
                          memory_order_relaxed);
    atomic_store_explicit(&o->dur_ns, dur_ns, memory_order_relaxed);
    store_id(o->id, id, len);
    atomic_store_explicit(&o->seq, seq + 2, memory_order_release);
    atomic_store_explicit(&t->outcomes_n, n + 1, memory_order_release);
}

size_t rc_worker_stats_outcomes(const rc_trigger_stats_t *t, rc_outcome_t *out, size_t cap)
{
    uint64_t n = atomic_load_explicit(&t->outcomes_n, memory_order_acquire);
    size_t got = 0;
    for (uint64_t k = 0; k < RC_OUTCOMES && k < n && got < cap; k++) {
        const rc_outcome_slot_t *o = &t->outcomes[(n - 1 - k) % RC_OUTCOMES];
        uint64_t s1 = atomic_load_explicit(&o->seq, memory_order_acquire);
        uint64_t packed = atomic_load_explicit(&o->outcome, memory_order_relaxed);
        uint64_t dur = atomic_load_explicit(&o->dur_ns, memory_order_relaxed);
        uint64_t id[RC_OUTCOME_ID_MAX / 8];
        for (size_t w = 0; w < RC_OUTCOME_ID_MAX / 8; w++)
            id[w] = atomic_load_explicit(&o->id[w], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire); /* the fields before the second look */
        if ((s1 & 1) != 0 || s1 != atomic_load_explicit(&o->seq, memory_order_relaxed) ||
            packed == 0)
            continue; /* being rewritten: left out rather than mixed */
        rc_outcome_t *r = &out[got++];
        rc_worker_stats_unpack(packed, &r->result, &r->ms);
        r->dur_ns = dur;
        memcpy(r->id, id, RC_OUTCOME_ID_MAX);
        r->id[RC_OUTCOME_ID_MAX] = '\0';
    }
    return got;
}

void rc_worker_stats_dead_letter(rc_trigger_stats_t *t, const char *id, size_t len, uint64_t pos,
                                 uint64_t seq, int result, int64_t wall_ns)
{
    uint64_t n = atomic_load_explicit(&t->dead_n, memory_order_relaxed);
    rc_dead_letter_slot_t *d = &t->dead[n % RC_DEAD_LETTERS];
    uint64_t s = atomic_load_explicit(&d->seq, memory_order_relaxed);
    atomic_store_explicit(&d->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd before any field changes */
    atomic_store_explicit(&d->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&d->evseq, seq, memory_order_relaxed);
    atomic_store_explicit(&d->ms, wall_ns > 0 ? (uint64_t)wall_ns / 1000000u : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&d->result, rc_worker_stats_outcome(result, wall_ns),
                          memory_order_relaxed);
    store_id(d->id, id, len);
    atomic_store_explicit(&d->seq, s + 2, memory_order_release);
    atomic_store_explicit(&t->dead_n, n + 1, memory_order_release);
}

size_t rc_worker_stats_dead_letters(const rc_trigger_stats_t *t, rc_dead_letter_t *out, size_t cap)
{
    uint64_t n = atomic_load_explicit(&t->dead_n, memory_order_acquire);
    size_t got = 0;
    for (uint64_t k = 0; k < RC_DEAD_LETTERS && k < n && got < cap; k++) {
        const rc_dead_letter_slot_t *d = &t->dead[(n - 1 - k) % RC_DEAD_LETTERS];
        uint64_t s1 = atomic_load_explicit(&d->seq, memory_order_acquire);
        uint64_t pos = atomic_load_explicit(&d->pos, memory_order_relaxed);
        uint64_t seq = atomic_load_explicit(&d->evseq, memory_order_relaxed);
        uint64_t ms = atomic_load_explicit(&d->ms, memory_order_relaxed);
        uint64_t res = atomic_load_explicit(&d->result, memory_order_relaxed);
        uint64_t id[RC_OUTCOME_ID_MAX / 8];
        for (size_t w = 0; w < RC_OUTCOME_ID_MAX / 8; w++)
            id[w] = atomic_load_explicit(&d->id[w], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if ((s1 & 1) != 0 || s1 != atomic_load_explicit(&d->seq, memory_order_relaxed) || res == 0)
            continue; /* being rewritten: left out rather than mixed */
        rc_dead_letter_t *r = &out[got++];
        int64_t at;
        rc_worker_stats_unpack(res, &r->result, &at);
        r->pos = pos;
        r->seq = seq;
        r->ms = (int64_t)ms;
        memcpy(r->id, id, RC_OUTCOME_ID_MAX);
        r->id[RC_OUTCOME_ID_MAX] = '\0';
    }
    return got;
}

void rc_worker_stats_observe(rc_trigger_stats_t *t, uint64_t ns)
{
    observe(t->latency_bucket, bounds_ns, RC_DELIVERY_BUCKETS, &t->latency_sum_ns,
            &t->latency_count, ns);
}

void rc_worker_stats_observe_e2e(rc_trigger_stats_t *t, int64_t arrival_ns, int64_t now_ns)
{
    uint64_t ns = now_ns > arrival_ns ? (uint64_t)(now_ns - arrival_ns) : 0;
    observe(t->e2e_bucket, e2e_bounds_ns, RC_E2E_BUCKETS, &t->e2e_sum_ns, &t->e2e_count, ns);
}

void rc_worker_stats_observe_wait(rc_trigger_stats_t *t, int64_t ns)
{
    observe(t->wait_bucket, wait_bounds_ns, RC_WAIT_BUCKETS, &t->wait_sum_ns, &t->wait_count,
            ns > 0 ? (uint64_t)ns : 0);
}

typedef struct {
    char *buf;
    size_t cap, n;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k =
        vsnprintf(o->n < o->cap ? o->buf + o->n : NULL, o->n < o->cap ? o->cap - o->n : 0, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->n += (size_t)k;
}

static uint64_t ld(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

#define LABELS "namespace=\"%s\",trigger=\"%s\",broker=\"%s\""

static const struct {
    const char *name, *help;
    size_t off;
} counters[] = {
    {"ringcast_trigger_delivered_total", "Events the subscriber accepted (2xx).",
     offsetof(rc_trigger_stats_t, delivered)},
    {"ringcast_trigger_failed_total", "Events whose delivery to the subscriber failed.",
     offsetof(rc_trigger_stats_t, failed)},
    {"ringcast_trigger_retried_total", "Retry attempts.", offsetof(rc_trigger_stats_t, retried)},
    {"ringcast_trigger_dead_lettered_total", "Events the dead-letter sink accepted.",
     offsetof(rc_trigger_stats_t, dead_lettered)},
    {"ringcast_trigger_dropped_total",
     "Failed events dropped (no dead-letter sink, or it failed too).",
     offsetof(rc_trigger_stats_t, dropped)},
    {"ringcast_trigger_replies_total", "Reply events written into the broker.",
     offsetof(rc_trigger_stats_t, replies)},
    {"ringcast_trigger_replies_expired_total", "Replies dropped: TTL exhausted.",
     offsetof(rc_trigger_stats_t, replies_expired)},
    {"ringcast_trigger_replies_delayed_total",
     "Replies that found the ring full and waited in the worker's reply queue.",
     offsetof(rc_trigger_stats_t, replies_delayed)},
    {"ringcast_trigger_replies_failed_total",
     "Replies given up, never stored in the broker (dead-lettered or dropped).",
     offsetof(rc_trigger_stats_t, replies_failed)},
    {"ringcast_trigger_replies_dead_lettered_total",
     "Replies not stored that the dead-letter sink accepted.",
     offsetof(rc_trigger_stats_t, replies_dead_lettered)},
    {"ringcast_trigger_replies_dropped_total",
     "Replies not stored and lost (no dead-letter sink, or it failed too).",
     offsetof(rc_trigger_stats_t, replies_dropped)},
    {"ringcast_trigger_cesql_errors_total",
     "CESQL evaluation errors in the trigger's filter (the event did not match).",
     offsetof(rc_trigger_stats_t, cesql_errors)},
    {"ringcast_trigger_lagged_total",
     "Events given up because the trigger fell past its lag limit (to the dead-letter sink, "
     "or dropped).",
     offsetof(rc_trigger_stats_t, lagged)},
    {"ringcast_trigger_lagged_dropped_total",
     "Events given up for lag and lost (no dead-letter sink, copy budget, sink failed).",
     offsetof(rc_trigger_stats_t, lagged_dropped)},
    {"ringcast_trigger_dapr_drop_total",
     "Events a Dapr app answered with status DROP (then dead-lettered or dropped).",
     offsetof(rc_trigger_stats_t, dapr_drop)},
    {"ringcast_trigger_dapr_not_found_total",
     "Events a Dapr app answered with 404 (then dead-lettered or dropped).",
     offsetof(rc_trigger_stats_t, dapr_not_found)},
    {"ringcast_trigger_dapr_unrouted_total",
     "Events of a Dapr subscription no routing rule nor default path took (then dead-lettered "
     "or dropped).",
     offsetof(rc_trigger_stats_t, dapr_unrouted)},
    {"ringcast_trigger_expired_total",
     "Events past their expiration when they were to be sent, not delivered (then "
     "dead-lettered or dropped).",
     offsetof(rc_trigger_stats_t, expired)},
    {"ringcast_trigger_dapr_bulk_requests_total",
     "Requests of a bulkSubscribe Dapr subscription, each carrying a batch of events.",
     offsetof(rc_trigger_stats_t, dapr_bulk_requests)},
    {"ringcast_trigger_replays_total",
     "Dead letters replayed to the trigger's subscriber (the admin API's replay), each queued "
     "once by its worker.",
     offsetof(rc_trigger_stats_t, replayed)},
};

/* What holds a trigger back (docs/delivery.md): its window, its rate limit and the time that
 * limit held it. */
static void render_backpressure(out_t *o, const rc_worker_stats_t *s)
{
    put(o, "# HELP ringcast_trigger_paused 1 while the trigger is paused (the admin API's "
           ".../pause): it sends nothing new, its events wait in the ring.\n"
           "# TYPE ringcast_trigger_paused gauge\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        if (s->t[i].used)
            put(o, "ringcast_trigger_paused{" LABELS "} %d\n", s->t[i].ns, s->t[i].name,
                s->t[i].broker, rc_worker_stats_paused(&s->t[i]));
    }
    put(o, "# HELP ringcast_trigger_max_inflight The trigger's window: most events in flight "
           "(ringcast.dev/max-inflight).\n# TYPE ringcast_trigger_max_inflight gauge\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        if (s->t[i].used)
            put(o, "ringcast_trigger_max_inflight{" LABELS "} %" PRIu64 "\n", s->t[i].ns,
                s->t[i].name, s->t[i].broker, ld(&s->t[i].max_inflight));
    }
    /* Only the triggers that have one: 0 would read as "nothing may go". */
    put(o, "# HELP ringcast_trigger_rate_limit The trigger's rate limit in events per second "
           "(ringcast.dev/rate-limit; triggers without one have no sample).\n"
           "# TYPE ringcast_trigger_rate_limit gauge\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        uint64_t milli = ld(&s->t[i].rate_limit_milli);
        if (s->t[i].used && milli != 0)
            put(o, "ringcast_trigger_rate_limit{" LABELS "} %" PRIu64 ".%03u\n", s->t[i].ns,
                s->t[i].name, s->t[i].broker, milli / 1000u, (unsigned)(milli % 1000u));
    }
    put(o, "# HELP ringcast_trigger_throttled_seconds_total Time an attempt of the trigger was "
           "due and held back by its rate limit.\n"
           "# TYPE ringcast_trigger_throttled_seconds_total counter\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        if (s->t[i].used)
            put(o, "ringcast_trigger_throttled_seconds_total{" LABELS "} %.9f\n", s->t[i].ns,
                s->t[i].name, s->t[i].broker, (double)ld(&s->t[i].throttled_ns) / 1e9);
    }
}

/* Gauges per trigger: in flight, replies queued, and (with `lag`) its lag. */
static void render_gauges(out_t *o, const rc_worker_stats_t *s, const rc_trigger_lag_t *lag)
{
    put(o, "# HELP ringcast_trigger_inflight Events in flight (taken, not finished).\n"
           "# TYPE ringcast_trigger_inflight gauge\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        if (s->t[i].used)
            put(o, "ringcast_trigger_inflight{" LABELS "} %" PRIu64 "\n", s->t[i].ns, s->t[i].name,
                s->t[i].broker, ld(&s->t[i].inflight));
    }
    put(o, "# HELP ringcast_trigger_replies_queued Replies waiting in the worker for ring space "
           "or for the dead-letter sink.\n# TYPE ringcast_trigger_replies_queued gauge\n");
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        if (s->t[i].used)
            put(o, "ringcast_trigger_replies_queued{" LABELS "} %" PRIu64 "\n", s->t[i].ns,
                s->t[i].name, s->t[i].broker, ld(&s->t[i].replies_queued));
    }
    if (lag != NULL) {
        put(o, "# HELP ringcast_trigger_lag_events Events between the trigger's cursor and the "
               "ring's head.\n# TYPE ringcast_trigger_lag_events gauge\n");
        for (uint32_t i = 0; i < s->slots_hi; i++) {
            const rc_trigger_stats_t *t = &s->t[i];
            if (t->used)
                put(o, "ringcast_trigger_lag_events{" LABELS "} %" PRIu64 "\n", t->ns, t->name,
                    t->broker, lag[i].events);
        }
        put(o, "# HELP ringcast_trigger_lag_bytes Ring bytes between the trigger's cursor and "
               "the ring's head.\n# TYPE ringcast_trigger_lag_bytes gauge\n");
        for (uint32_t i = 0; i < s->slots_hi; i++) {
            if (s->t[i].used)
                put(o, "ringcast_trigger_lag_bytes{" LABELS "} %" PRIu64 "\n", s->t[i].ns,
                    s->t[i].name, s->t[i].broker, lag[i].bytes);
        }
    }
}

/* One histogram family over the used triggers; `off_*` locate its fields in a slot. */
static void render_histogram(out_t *o, const rc_worker_stats_t *s, const char *name,
                             const char *help, const uint64_t *bounds, size_t nb,
                             size_t off_buckets, size_t off_sum, size_t off_count)
{
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (uint32_t i = 0; i < s->slots_hi; i++) {
        const rc_trigger_stats_t *t = &s->t[i];
        if (!t->used)
            continue;
        const char *base = (const char *)t;
        const _Atomic uint64_t *buckets =
            (const _Atomic uint64_t *)(const void *)(base + off_buckets);
        uint64_t cum = 0;
        for (size_t b = 0; b < nb; b++) {
            cum += ld(&buckets[b]);
            put(o, "%s_bucket{" LABELS ",le=\"%g\"} %" PRIu64 "\n", name, t->ns, t->name, t->broker,
                (double)bounds[b] / 1e9, cum);
        }
        cum += ld(&buckets[nb]);
        put(o, "%s_bucket{" LABELS ",le=\"+Inf\"} %" PRIu64 "\n", name, t->ns, t->name, t->broker,
            cum);
        put(o, "%s_sum{" LABELS "} %.9f\n", name, t->ns, t->name, t->broker,
            (double)ld((const _Atomic uint64_t *)(const void *)(base + off_sum)) / 1e9);
        put(o, "%s_count{" LABELS "} %" PRIu64 "\n", name, t->ns, t->name, t->broker,
            ld((const _Atomic uint64_t *)(const void *)(base + off_count)));
    }
}

/* The latency histograms per trigger: of the attempt that succeeded, and end to end. */
static void render_histograms(out_t *o, const rc_worker_stats_t *s)
{
    render_histogram(
        o, s, "ringcast_trigger_delivery_seconds", "Latency of successful delivery attempts.",
        bounds_ns, RC_DELIVERY_BUCKETS, offsetof(rc_trigger_stats_t, latency_bucket),
        offsetof(rc_trigger_stats_t, latency_sum_ns), offsetof(rc_trigger_stats_t, latency_count));
    render_histogram(o, s, "ringcast_trigger_e2e_latency_seconds",
                     "Time from an event's arrival in the ring (knativearrivaltime) to the 2xx "
                     "of its delivery, retries included.",
                     e2e_bounds_ns, RC_E2E_BUCKETS, offsetof(rc_trigger_stats_t, e2e_bucket),
                     offsetof(rc_trigger_stats_t, e2e_sum_ns),
                     offsetof(rc_trigger_stats_t, e2e_count));
    render_histogram(o, s, "ringcast_trigger_queue_wait_seconds",
                     "Time from an event's queueing on the trigger to its first attempt (the "
                     "window full, the rate limit).",
                     wait_bounds_ns, RC_WAIT_BUCKETS, offsetof(rc_trigger_stats_t, wait_bucket),
                     offsetof(rc_trigger_stats_t, wait_sum_ns),
                     offsetof(rc_trigger_stats_t, wait_count));
}

double rc_worker_stats_quantile_of(const uint64_t *b, double q, uint64_t *count)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= RC_DELIVERY_BUCKETS; i++)
        total += b[i];
    *count = total;
    if (total == 0)
        return -1.0;
    /* As Prometheus' histogram_quantile: the rank's bucket, linear inside it (from 0 for the
     * first), and the highest finite bound when the rank falls in +Inf. */
    double rank = q * (double)total, cum = 0;
    for (size_t i = 0; i < RC_DELIVERY_BUCKETS; i++) {
        if (b[i] > 0 && cum + (double)b[i] >= rank) {
            double lo = i > 0 ? (double)bounds_ns[i - 1] / 1e9 : 0.0;
            return lo + ((double)bounds_ns[i] / 1e9 - lo) * (rank - cum) / (double)b[i];
        }
        cum += (double)b[i];
    }
    return (double)bounds_ns[RC_DELIVERY_BUCKETS - 1] / 1e9;
}

double rc_worker_stats_latency_quantile(const rc_trigger_stats_t *t, double q, uint64_t *count)
{
    uint64_t b[RC_DELIVERY_BUCKETS + 1];
    for (size_t i = 0; i <= RC_DELIVERY_BUCKETS; i++)
        b[i] = ld(&t->latency_bucket[i]);
    return rc_worker_stats_quantile_of(b, q, count);
}

double rc_worker_stats_recent_quantile(const rc_trigger_stats_t *t, double q, uint64_t now_ns,
                                       uint64_t *count)
{
    uint64_t b[RC_DELIVERY_BUCKETS + 1] = {0};
    uint64_t cur = now_ns / 1000000000u / RC_LATENCY_HALF_S;
    for (int h = 0; h < 2; h++) {
        /* A half last written before the previous one is stale: the worker had nothing to
         * observe since, and left it as it was. */
        uint64_t e = ld(&t->win_epoch[h]);
        if (e != cur && e + 1 != cur)
            continue;
        for (size_t i = 0; i <= RC_DELIVERY_BUCKETS; i++)
            b[i] += ld(&t->win_bucket[h][i]);
    }
    return rc_worker_stats_quantile_of(b, q, count);
}

void rc_worker_stats_observe_at(rc_trigger_stats_t *t, uint64_t ns, uint64_t now_ns)
{
    rc_worker_stats_observe(t, ns);
    uint64_t e = now_ns / 1000000000u / RC_LATENCY_HALF_S;
    size_t h = (size_t)(e & 1u);
    if (atomic_load_explicit(&t->win_epoch[h], memory_order_relaxed) != e) {
        /* A new half: it starts empty. A reader meanwhile may see a half being cleared: off by
         * what it held, for one look. */
        for (size_t i = 0; i <= RC_DELIVERY_BUCKETS; i++)
            atomic_store_explicit(&t->win_bucket[h][i], 0, memory_order_relaxed);
        atomic_store_explicit(&t->win_epoch[h], e, memory_order_relaxed);
    }
    size_t b = RC_DELIVERY_BUCKETS;
    for (size_t i = 0; i < RC_DELIVERY_BUCKETS; i++) {
        if (ns <= bounds_ns[i]) {
            b = i;
            break;
        }
    }
    rc_metric_add(&t->win_bucket[h][b], 1);
}

size_t rc_worker_stats_render(const rc_worker_stats_t *s, const rc_trigger_lag_t *lag, char *buf,
                              size_t cap)
{
    out_t o = {buf, cap, 0};
    put(&o,
        "# HELP ringcast_worker_restarts_total Worker processes restarted after dying.\n"
        "# TYPE ringcast_worker_restarts_total counter\n"
        "ringcast_worker_restarts_total %" PRIu64 "\n",
        ld(&s->worker_restarts));
    put(&o,
        "# HELP ringcast_config_reloads_total SIGHUP reloads applied.\n"
        "# TYPE ringcast_config_reloads_total counter\n"
        "ringcast_config_reloads_total %" PRIu64 "\n"
        "# HELP ringcast_config_reload_errors_total SIGHUP reloads rejected.\n"
        "# TYPE ringcast_config_reload_errors_total counter\n"
        "ringcast_config_reload_errors_total %" PRIu64 "\n",
        ld(&s->reloads), ld(&s->reload_errors));
    for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
        put(&o, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help,
            counters[c].name);
        for (uint32_t i = 0; i < s->slots_hi; i++) {
            const rc_trigger_stats_t *t = &s->t[i];
            if (!t->used)
                continue;
            put(&o, "%s{" LABELS "} %" PRIu64 "\n", counters[c].name, t->ns, t->name, t->broker,
                ld((const _Atomic uint64_t *)((const char *)t + counters[c].off)));
        }
    }
    render_gauges(&o, s, lag);
    render_backpressure(&o, s);
    render_histograms(&o, s);
    return o.n;
}

size_t rc_worker_stats_render_replicas(const rc_worker_stats_t *s, const rc_replica_labels_t *list,
                                       size_t n, char *buf, size_t cap)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } m[] = {
        {"ringcast_trigger_replica_delivered_total", "counter", "Events the replica accepted.",
         offsetof(rc_replica_stats_t, delivered)},
        {"ringcast_trigger_replica_failed_total", "counter",
         "Attempts that failed at the replica (refused, error answer, timeout).",
         offsetof(rc_replica_stats_t, failed)},
        {"ringcast_trigger_replica_inflight", "gauge", "Attempts sent to the replica, unanswered.",
         offsetof(rc_replica_stats_t, inflight)},
    };
    out_t o = {buf, cap, 0};
    for (size_t k = 0; n > 0 && k < sizeof(m) / sizeof(m[0]); k++) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
        for (size_t i = 0; i < n; i++) {
            const rc_trigger_stats_t *t = &s->t[list[i].slot];
            const rc_replica_stats_t *r = replicas_of(s, list[i].slot);
            for (size_t j = 0; j < list[i].n && j < RC_STATS_REPLICAS; j++)
                put(&o, "%s{" LABELS ",replica=\"%s\"} %" PRIu64 "\n", m[k].name, t->ns, t->name,
                    t->broker, list[i].urls[j],
                    ld((const _Atomic uint64_t *)((const char *)&r[j] + m[k].off)));
        }
    }
    return o.n;
}
