/* ringcast-bench codec: the CPU cost of the ingress event path without the network: decode +
 * validate + TTL/arrival stamps + encode into a ring record, per event, for a 256-byte event in
 * binary mode, in structured mode and inside a batch of 100; plus attribute lookups straight
 * from a record (what filters do per event). Single-threaded, one core. Times are the thread's
 * CPU time (CLOCK_THREAD_CPUTIME_ID), which stays meaningful on a machine shared with other
 * jobs; wall-clock time would count the time slices other processes get. */
#include "bench/bench.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/record.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 100

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    rc_arena_t arena;
    uint64_t *rec;
    size_t rec_cap;
    size_t rec_bytes;
    int64_t clock;
} ctx_t;

/* What the ingress does after decoding: stamps, then the record straight into ring memory. */
static int finish(ctx_t *c, rc_event_t *ev)
{
    if (rc_event_ttl_ingress(ev, &c->arena, NULL) != 0)
        return -1;
    if (rc_event_stamp_arrival(ev, &c->arena, c->clock++) != 0)
        return -1;
    size_t len;
    if (rc_record_encode(ev, c->rec, c->rec_cap, &len) != 0)
        return -1;
    c->rec_bytes = len;
    return 0;
}

/* 100 bytes of JSON data and attributes that bring the request to ~256 bytes. */
static const char data100[] = "{\"orderId\":\"8d2f6a1e-4c1b-4f7e-9a53-3c2b1d0e9f87\",\"amount\":"
                              "1234.50,\"currency\":\"EUR\",\"items\":3}";

static int run_binary(ctx_t *c, uint64_t n)
{
    rc_http_header_t h[] = {
        { RC_STR("ce-specversion"), RC_STR("1.0") },
        { RC_STR("ce-id"), RC_STR("5f1c9a7e-2b64-4d1f-8e3a-9c0b7d6e5a41") },
        { RC_STR("ce-source"), RC_STR("/shop/orders") },
        { RC_STR("ce-type"), RC_STR("com.example.order.created") },
        { RC_STR("ce-time"), RC_STR("2026-11-23T08:38:35.123Z") },
        { RC_STR("Content-Type"), RC_STR("application/json") },
    };
    rc_str_t body = { data100, sizeof(data100) - 1 };
    for (uint64_t i = 0; i < n; i++) {
        rc_event_t ev;
        rc_arena_reset(&c->arena);
        if (rc_ce_decode_binary(h, 6, body, &c->arena, &ev, NULL) != 0 || finish(c, &ev) != 0)
            return -1;
    }
    return c->arena.heap == 0 ? 0 : 1;
}

static char structured[1024];
static size_t structured_len;
static char batch[1024 * BATCH + 16];
static size_t batch_len;

static void build_bodies(void)
{
    structured_len = (size_t)snprintf(
        structured, sizeof(structured),
        "{\"specversion\":\"1.0\",\"id\":\"5f1c9a7e-2b64-4d1f-8e3a-9c0b7d6e5a41\","
        "\"source\":\"/shop/orders\",\"type\":\"com.example.order.created\","
        "\"time\":\"2026-11-23T08:38:35.123Z\",\"datacontenttype\":\"application/json\","
        "\"data\":%s}",
        data100);
    batch_len = 0;
    batch[batch_len++] = '[';
    for (int i = 0; i < BATCH; i++) {
        if (i)
            batch[batch_len++] = ',';
        memcpy(batch + batch_len, structured, structured_len);
        batch_len += structured_len;
    }
    batch[batch_len++] = ']';
}

static int run_structured(ctx_t *c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        rc_event_t ev;
        rc_arena_reset(&c->arena);
        if (rc_ce_decode_structured((rc_str_t){ structured, structured_len }, &c->arena, &ev,
                                    NULL) != 0 ||
            finish(c, &ev) != 0)
            return -1;
    }
    return 0;
}

static int run_batch(ctx_t *c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i += BATCH) {
        rc_event_t *evs;
        size_t count;
        rc_arena_reset(&c->arena);
        if (rc_ce_decode_batch((rc_str_t){ batch, batch_len }, &c->arena, BATCH, &evs, &count,
                               NULL) != 0)
            return -1;
        for (size_t k = 0; k < count; k++)
            if (finish(c, &evs[k]) != 0)
                return -1;
    }
    return 0;
}

/* Lookups a filter makes per event: type (core slot), an extension, a missing attribute. */
static int run_lookup(ctx_t *c, uint64_t n, uint64_t *sink)
{
    rc_record_view_t v;
    if (rc_record_decode(c->rec, c->rec_bytes, &v) != 0)
        return -1;
    rc_ce_key_t k_type, k_ttl, k_missing;
    rc_ce_key_init(&k_type, RC_STR("type"));
    rc_ce_key_init(&k_ttl, RC_STR("knativebrokerttl"));
    rc_ce_key_init(&k_missing, RC_STR("tenant"));
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) {
        rc_ce_value_t val;
        s += rc_record_get_key(&v, &k_type, &val) == 0 ? val.value.len : 0;
        s += rc_record_get_key(&v, &k_ttl, &val) == 0 ? val.value.len : 0;
        s += rc_record_get_key(&v, &k_missing, &val) == 0 ? 1 : 0;
    }
    *sink = s;
    return 0;
}

typedef int (*mode_fn)(ctx_t *, uint64_t);

/* Runs `fn` in growing rounds until `seconds` have passed; returns ns per event. */
static double measure(ctx_t *c, mode_fn fn, double seconds, const char *name)
{
    uint64_t n = 1000, total = 0, spent = 0;
    if (fn(c, BATCH) != 0) /* warm-up and sanity */
        return -1;
    while (spent < (uint64_t)(seconds * 1e9)) {
        uint64_t t0 = now_ns();
        if (fn(c, n) != 0)
            return -1;
        spent += now_ns() - t0;
        total += n;
        if (n < 1000000)
            n *= 2;
    }
    double ns = (double)spent / (double)total;
    fprintf(stderr, "codec %-10s %8.1f cpu ns/event  %10.0f events/cpu-s  (%llu events)\n", name, ns,
            1e9 / ns, (unsigned long long)total);
    return ns;
}

int rc_bench_codec(int argc, char **argv)
{
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: ringcast-bench codec [--seconds S]\n\n"
                   "Decode + validate + stamp + record-encode cost per 256-byte event, for binary\n"
                   "mode, structured mode and batches of %d; record attribute lookups.\n"
                   "Runs each mode for S seconds (default 1) on one core.\n",
                   BATCH);
            return 0;
        }
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
            if (seconds <= 0 || seconds > 60) {
                fprintf(stderr, "codec: --seconds must be in (0, 60]\n");
                return 2;
            }
            continue;
        }
        fprintf(stderr, "codec: unknown option '%s' (see --help)\n", argv[i]);
        return 2;
    }
    ctx_t c;
    static char scratch[64 * 1024];
    rc_arena_init(&c.arena, scratch, sizeof(scratch), 64u << 20);
    c.rec_cap = 4096;
    c.rec = aligned_alloc(8, c.rec_cap);
    c.clock = 1763886000000000000LL;
    if (c.rec == NULL)
        return 1;
    build_bodies();
    int rc = 1;
    double bin = measure(&c, run_binary, seconds, "binary");
    size_t rec_bytes = c.rec_bytes;
    double st = measure(&c, run_structured, seconds, "structured");
    double bt = measure(&c, run_batch, seconds, "batch100");
    uint64_t sink = 0;
    uint64_t t0 = now_ns(), n = 10000000;
    if (run_lookup(&c, n, &sink) != 0)
        goto out;
    double lk = (double)(now_ns() - t0) / (double)n / 3.0;
    fprintf(stderr, "codec lookup     %8.1f ns/lookup (sink %llu)\n", lk, (unsigned long long)sink);
    if (bin < 0 || st < 0 || bt < 0) {
        fprintf(stderr, "codec: a mode failed (decode error or arena heap use in binary mode)\n");
        goto out;
    }
    printf("scenario=codec event_bytes=%zu record_bytes=%zu binary_ns=%.1f binary_eps=%.0f "
           "structured_ns=%.1f structured_eps=%.0f batch_ns=%.1f batch_eps=%.0f "
           "lookup_ns=%.1f\n",
           structured_len, rec_bytes, bin, 1e9 / bin, st, 1e9 / st, bt, 1e9 / bt, lk);
    rc = 0;
out:
    free(c.rec);
    rc_arena_close(&c.arena);
    return rc;
}
