/* ringcast-bench cesql: evaluations per second of typical CESQL filters over real ring records
 * (core/record.h), next to a hand-written C filter doing the same equality in the same run.
 *
 * The records are built once (varied types, sources, extensions), encoded and decoded into
 * views; every scenario then walks the same views round-robin, so all of them read the same
 * bytes. Each scenario runs a few rounds and keeps the best (least disturbed) one. */
#include "bench/bench.h"
#include "core/cesql.h"
#include "core/cesql_record.h"
#include "core/event.h"
#include "core/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NRECORDS 1024

static const char *const types[] = {
    "com.example.order.created",      "com.example.order.updated",
    "com.example.order.cancelled",    "com.example.payment.authorized",
    "com.example.payment.failed",     "com.example.user.signup",
    "com.example.user.login",         "com.example.shipment.sent",
    "com.example.shipment.delivered", "com.example.inventory.low",
    "com.example.audit.event",        "org.other.thing.happened",
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static const char *const sources[] = {
    "https://shop.example.com/orders", "https://shop.example.com/payments",
    "https://api.example.org/users",   "/internal/batch/7",
    "urn:example:inventory",
};
static const char *const regions[] = {"eu-west", "us-east", "ap-south", "eu-central"};

typedef struct {
    const char *name;
    const char *expr;
} scenario_t;

static const scenario_t scenarios[] = {
    {"eq", "type = 'com.example.order.created'"},
    {"like", "source LIKE 'https://shop.example.com/%'"},
    {"in10", "type IN ('com.example.order.created', 'com.example.order.updated', "
             "'com.example.order.cancelled', 'com.example.payment.authorized', "
             "'com.example.payment.failed', 'com.example.user.signup', 'com.example.user.login', "
             "'com.example.shipment.sent', 'com.example.shipment.delivered', "
             "'com.example.inventory.low')"},
    {"and5", "type = 'com.example.order.created' AND (region = 'eu-west' OR region = 'us-east') "
             "AND priority > 2 AND LENGTH(subject) < 64"},
};
#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Builds NRECORDS records into one 8-aligned buffer and decodes a view of each. */
static int build_records(rc_record_view_t *views, void **mem)
{
    size_t cap = (size_t)NRECORDS * 1024, used = 0;
    char *buf = aligned_alloc(8, cap);
    if (buf == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < NRECORDS; i++) {
        rc_ce_ext_t ext[8];
        rc_event_t ev;
        rc_event_init(&ev, ext, 8);
        char id[32], subject[48], prio[12];
        snprintf(id, sizeof(id), "evt-%08u", i * 2654435761u);
        snprintf(subject, sizeof(subject), "orders/%u/items/%u", i % 97, i % 13);
        ev.specversion = RC_STR("1.0");
        ev.id = rc_str(id);
        ev.type = rc_str(types[(i * 7) % NTYPES]);
        ev.source = rc_str(sources[i % 5]);
        ev.subject = rc_str(subject);
        ev.time = RC_STR("2026-11-23T08:00:00Z");
        ev.datacontenttype = RC_STR("application/json");
        size_t plen = rc_ce_int_format((int32_t)(i % 5), prio);
        if (rc_event_set_ext(&ev, NULL, RC_STR("region"), rc_str(regions[i % 4]), RC_CE_STRING) ||
            rc_event_set_ext(&ev, NULL, RC_STR("priority"), (rc_str_t){prio, plen},
                             RC_CE_INTEGER) ||
            rc_event_set_ext(&ev, NULL, RC_STR("tenant"), RC_STR("acme"), RC_CE_STRING))
            return -EINVAL;
        ev.data = RC_STR("{\"amount\": 10}");
        size_t len;
        int rc = rc_record_encode(&ev, buf + used, cap - used, &len);
        if (rc != 0)
            return rc;
        if ((rc = rc_record_decode(buf + used, len, &views[i])) != 0)
            return rc;
        used += len;
    }
    *mem = buf;
    return 0;
}

/* The hand-written filter: the record's type span against a constant (length, then bytes). */
static inline bool strcmp_filter(const rc_record_view_t *v)
{
    static const char want[] = "com.example.order.created";
    rc_str_t t = rc_record_attr(v, RC_CE_ATTR_TYPE);
    return t.len == sizeof(want) - 1 && memcmp(t.ptr, want, sizeof(want) - 1) == 0;
}

/* Keeps the compiler from dropping the loops. */
static volatile uint64_t sink;

static double run_strcmp(const rc_record_view_t *views, uint64_t iters, uint64_t *matches)
{
    uint64_t m = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        m += strcmp_filter(&views[i & (NRECORDS - 1)]);
    double dt = now_ns() - t0;
    sink += m;
    *matches = m;
    return dt / (double)iters;
}

static double run_cesql(const rc_cesql_program_t *p, const rc_record_view_t *views, uint64_t iters,
                        uint64_t *matches, uint64_t *errors)
{
    uint64_t m = 0, e = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        rc_cesql_errkind_t k;
        m += rc_cesql_match_record(p, &views[i & (NRECORDS - 1)], &k);
        e += k != RC_CESQL_OK;
    }
    double dt = now_ns() - t0;
    sink += m;
    *matches = m;
    *errors = e;
    return dt / (double)iters;
}

/* The same programs through the generic entry point (accessor called through a pointer, no
 * fast path): what an embedder with its own event representation gets. */
static double run_generic(const rc_cesql_program_t *p, const rc_record_view_t *views,
                          uint64_t iters, uint64_t *matches)
{
    uint64_t m = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        m += rc_cesql_match(p, rc_cesql_get_record, &views[i & (NRECORDS - 1)], NULL);
    double dt = now_ns() - t0;
    sink += m;
    *matches = m;
    return dt / (double)iters;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringcast-bench cesql [--iters N] [--rounds R]\n\n"
            "Evaluations/s of CESQL filters (eq, like, in10, and5) over %d ring records, and\n"
            "of a hand-written C equality filter over the same records. Targets: eq at least\n"
            "0.5 x the C filter's rate, every expression under 100 ns per evaluation.\n"
            "Each round times every filter over --iters evaluations; the best round counts.\n"
            "Defaults: --iters 1000000 --rounds 9.\n",
            NRECORDS);
}

int rc_bench_cesql(int argc, char **argv)
{
    uint64_t iters = 1000000;
    int rounds = 9;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (iters == 0 || rounds <= 0) {
        usage(stderr);
        return 2;
    }

    static rc_record_view_t views[NRECORDS];
    void *mem = NULL;
    rc_cesql_program_t *progs[NSCEN] = {0};
    int rc = build_records(views, &mem);
    if (rc != 0) {
        fprintf(stderr, "cesql: building records failed (%d)\n", rc);
        goto out;
    }
    for (size_t s = 0; s < NSCEN; s++) {
        rc_cesql_error_t err;
        if (rc_cesql_compile(scenarios[s].expr, strlen(scenarios[s].expr), &progs[s], &err)) {
            fprintf(stderr, "cesql: %s does not compile: %s\n", scenarios[s].name, err.msg);
            rc = 1;
            goto out;
        }
    }

    double best_c = 1e18, best_generic = 1e18, best[NSCEN];
    uint64_t generic_matches = 0;
    uint64_t c_matches = 0, matches[NSCEN] = {0}, errors[NSCEN] = {0};
    for (size_t s = 0; s < NSCEN; s++)
        best[s] = 1e18;
    for (int r = 0; r < rounds; r++) {
        double t = run_strcmp(views, iters, &c_matches);
        best_c = t < best_c ? t : best_c;
        t = run_generic(progs[0], views, iters, &generic_matches);
        best_generic = t < best_generic ? t : best_generic;
        for (size_t s = 0; s < NSCEN; s++) {
            t = run_cesql(progs[s], views, iters, &matches[s], &errors[s]);
            best[s] = t < best[s] ? t : best[s];
        }
    }
    /* The CESQL equality and the C filter must agree on every record. */
    if (matches[0] != c_matches || generic_matches != c_matches) {
        fprintf(stderr, "cesql: eq matched %llu records, the C filter %llu\n",
                (unsigned long long)matches[0], (unsigned long long)c_matches);
        rc = 1;
        goto out;
    }

    double max_ns = 0;
    fprintf(stderr, "%-8s %10s %14s %10s  %s\n", "filter", "ns/eval", "evals/s", "matched",
            "expression");
    fprintf(stderr, "%-8s %10.1f %14.0f %9.1f%%  %s\n", "c-eq", best_c, 1e9 / best_c,
            100.0 * (double)c_matches / (double)iters, "hand-written: type length + memcmp");
    fprintf(stderr, "%-8s %10.1f %14.0f %9.1f%%  %s\n", "eq-vm", best_generic, 1e9 / best_generic,
            100.0 * (double)generic_matches / (double)iters,
            "eq through rc_cesql_match + accessor pointer (no fast path)");
    for (size_t s = 0; s < NSCEN; s++) {
        fprintf(stderr, "%-8s %10.1f %14.0f %9.1f%%  %s%s\n", scenarios[s].name, best[s],
                1e9 / best[s], 100.0 * (double)matches[s] / (double)iters, scenarios[s].expr,
                errors[s] ? "  (errors!)" : "");
        max_ns = best[s] > max_ns ? best[s] : max_ns;
    }
    double ratio = best_c / best[0];
    bool pass = ratio >= 0.5 && max_ns < 100.0;
    for (size_t s = 0; s < NSCEN; s++)
        pass = pass && errors[s] == 0;
    fprintf(stderr,
            "eq rate / C filter rate = %.2f (target >= 0.5); slowest %.1f ns (target < 100)\n",
            ratio, max_ns);
    printf("scenario=cesql records=%d iters=%llu rounds=%d c_eq_ns=%.1f eq_ns=%.1f eq_vm_ns=%.1f "
           "like_ns=%.1f in10_ns=%.1f and5_ns=%.1f eq_vs_c=%.2f max_ns=%.1f pass=%d\n",
           NRECORDS, (unsigned long long)iters, rounds, best_c, best[0], best_generic, best[1],
           best[2], best[3], ratio, max_ns, pass ? 1 : 0);
    rc = 0;
out:
    for (size_t s = 0; s < NSCEN; s++)
        rc_cesql_destroy(progs[s]);
    free(mem);
    return rc;
}
