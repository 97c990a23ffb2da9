/* The delivery latency quantiles of the admin API's trigger status (net/delivery/worker_stats.c,
 * rc_worker_stats_latency_quantile): an empty histogram, interpolation inside a bucket, the
 * first bucket (from 0), ranks that cross buckets, and latencies past the last bound. The ring of
 * recent outcomes (rc_worker_stats_record/_outcomes): newest first, the 16 latest, ids cut at 48
 * bytes, transport errors; and a reader racing a writer never gets a mixed entry. The ring of
 * recent dead letters (rc_worker_stats_dead_letter/_dead_letters): newest first, the 8 latest,
 * with their position, sequence number and last result. The recent latency window
 * (rc_worker_stats_observe_at, _recent_quantile): the current and the previous half count, an
 * older half does not, a half reused later starts empty. */
#include "net/delivery/worker_stats.h"
#include "tests/test.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define MS 1000000ull

static void near(double got, double want, const char *what)
{
    if (fabs(got - want) > 1e-12)
        RC_TEST_FAIL("%s: %.12g, want %.12g", what, got, want);
}

static rc_trigger_stats_t slot; /* zeroed, aligned as the segment's slots are */

static void reset(void)
{
    memset(&slot, 0, sizeof(slot));
}

static void test_empty(void)
{
    reset();
    uint64_t n = 99;
    near(rc_worker_stats_latency_quantile(&slot, 0.5, &n), -1.0, "empty");
    ASSERT_EQ(n, 0);
}

static void test_one_bucket(void)
{
    reset();
    for (int i = 0; i < 10; i++)
        rc_worker_stats_observe(&slot, 30 * MS); /* (25 ms, 50 ms] */
    uint64_t n;
    /* rank 5 of 10 in a bucket from 0.025 to 0.05: halfway */
    near(rc_worker_stats_latency_quantile(&slot, 0.5, &n), 0.0375, "p50");
    ASSERT_EQ(n, 10);
    near(rc_worker_stats_latency_quantile(&slot, 0.99, &n), 0.025 + 0.025 * 9.9 / 10, "p99");
    near(rc_worker_stats_latency_quantile(&slot, 1.0, &n), 0.05, "p100: the bucket's bound");
}

static void test_across_buckets(void)
{
    reset();
    rc_worker_stats_observe(&slot, 50000);  /* 50 us: the first bucket, [0, 100 us] */
    rc_worker_stats_observe(&slot, 3 * MS); /* (2.5 ms, 5 ms] */
    uint64_t n;
    near(rc_worker_stats_latency_quantile(&slot, 0.5, &n), 0.0001, "p50 (from 0)");
    near(rc_worker_stats_latency_quantile(&slot, 0.25, &n), 0.00005, "p25");
    near(rc_worker_stats_latency_quantile(&slot, 0.99, &n), 0.0025 + 0.0025 * 0.98, "p99");
    ASSERT_EQ(n, 2);
}

static void test_past_the_last_bound(void)
{
    reset();
    rc_worker_stats_observe(&slot, 20000 * MS); /* 20 s: +Inf */
    uint64_t n;
    near(rc_worker_stats_latency_quantile(&slot, 0.5, &n), 10.0, "the highest finite bound");
    ASSERT_EQ(n, 1);
    for (int i = 0; i < 99; i++)
        rc_worker_stats_observe(&slot, 900000); /* 0.9 ms: (0.5 ms, 1 ms] */
    near(rc_worker_stats_latency_quantile(&slot, 0.5, &n), 0.0005 + 0.0005 * 50 / 99, "p50");
    near(rc_worker_stats_latency_quantile(&slot, 0.995, &n), 10.0, "p99.5 in +Inf");
    ASSERT_EQ(n, 100);
}

static void test_outcomes(void)
{
    reset();
    rc_outcome_t out[RC_OUTCOMES + 4];
    ASSERT_EQ(rc_worker_stats_outcomes(&slot, out, RC_OUTCOMES), 0);
    rc_worker_stats_record(&slot, 500, 1700000000123000000, 2500000, "first", 5);
    ASSERT_EQ(rc_worker_stats_outcomes(&slot, out, RC_OUTCOMES), 1);
    ASSERT_EQ(out[0].result, 500);
    ASSERT_EQ(out[0].ms, 1700000000123);
    ASSERT_EQ(out[0].dur_ns, 2500000);
    ASSERT(strcmp(out[0].id, "first") == 0);
    char id[32];
    for (int k = 0; k < 20; k++) {
        int n = snprintf(id, sizeof(id), "e%d", k);
        rc_worker_stats_record(&slot, k == 19 ? -111 : 200, 1700000000000000000, (uint64_t)k, id,
                               (size_t)n);
    }
    ASSERT_EQ(rc_worker_stats_outcomes(&slot, out, RC_OUTCOMES + 4), RC_OUTCOMES);
    ASSERT(strcmp(out[0].id, "e19") == 0 && out[0].result == -111); /* newest first */
    ASSERT(strcmp(out[RC_OUTCOMES - 1].id, "e4") == 0);             /* the 16 latest */
    ASSERT_EQ(rc_worker_stats_outcomes(&slot, out, 3), 3);          /* cap */
    char longid[100];
    memset(longid, 'x', sizeof(longid));
    rc_worker_stats_record(&slot, 204, 1700000000000000000, 1, longid, sizeof(longid));
    rc_worker_stats_outcomes(&slot, out, 1);
    ASSERT_EQ(strlen(out[0].id), RC_OUTCOME_ID_MAX);
}

static void test_dead_letters(void)
{
    reset();
    rc_dead_letter_t dl[RC_DEAD_LETTERS + 2];
    ASSERT_EQ(rc_worker_stats_dead_letters(&slot, dl, RC_DEAD_LETTERS), 0);
    for (int i = 0; i < RC_DEAD_LETTERS + 3; i++) {
        char id[16];
        int n = snprintf(id, sizeof(id), "d%d", i);
        rc_worker_stats_dead_letter(&slot, id, (size_t)n, 1000u * (uint64_t)i, (uint64_t)i,
                                    i % 2 ? 500 : -111, 1700000000000000000 + i * 1000000ll);
    }
    ASSERT_EQ(rc_worker_stats_dead_letters(&slot, dl, RC_DEAD_LETTERS + 2), RC_DEAD_LETTERS);
    ASSERT(strcmp(dl[0].id, "d10") == 0); /* newest first */
    ASSERT_EQ(dl[0].pos, 10000);
    ASSERT_EQ(dl[0].seq, 10);
    ASSERT_EQ(dl[0].result, -111);
    ASSERT_EQ(dl[0].ms, 1700000000010);
    ASSERT_EQ(dl[1].result, 500);
    ASSERT(strcmp(dl[RC_DEAD_LETTERS - 1].id, "d3") == 0); /* the 8 latest */
    ASSERT_EQ(rc_worker_stats_dead_letters(&slot, dl, 2), 2); /* cap */
}

#define S 1000000000ull

static void test_recent_window(void)
{
    reset();
    uint64_t half = RC_LATENCY_HALF_S * S, t0 = 1000 * half; /* the start of a half */
    uint64_t n;
    near(rc_worker_stats_recent_quantile(&slot, 0.5, t0, &n), -1.0, "empty");
    ASSERT_EQ(n, 0);
    for (int i = 0; i < 4; i++)
        rc_worker_stats_observe_at(&slot, 30 * MS, t0 + 1 * S); /* (25 ms, 50 ms] */
    for (int i = 0; i < 4; i++)
        rc_worker_stats_observe_at(&slot, 3 * MS, t0 + half + 1 * S); /* (2.5 ms, 5 ms] */
    /* in the second half both count: 8, the p50 at the top of the lower bucket */
    near(rc_worker_stats_recent_quantile(&slot, 0.5, t0 + half + 2 * S, &n), 0.005, "both");
    ASSERT_EQ(n, 8);
    /* a half later the first is stale: only the 4 at 3 ms */
    rc_worker_stats_recent_quantile(&slot, 0.5, t0 + 2 * half + 1 * S, &n);
    ASSERT_EQ(n, 4);
    /* two halves later nothing is recent; since start still holds all 8 */
    rc_worker_stats_recent_quantile(&slot, 0.5, t0 + 3 * half + 1 * S, &n);
    ASSERT_EQ(n, 0);
    rc_worker_stats_latency_quantile(&slot, 0.5, &n);
    ASSERT_EQ(n, 8);
    /* the first half's slot, reused two halves on, starts empty */
    rc_worker_stats_observe_at(&slot, 30 * MS, t0 + 2 * half + 5 * S);
    near(rc_worker_stats_recent_quantile(&slot, 1.0, t0 + 2 * half + 6 * S, &n), 0.05, "reused");
    ASSERT_EQ(n, 5); /* 1 new + the 4 of the previous half */
}

static atomic_int writing;

static void *writer(void *arg)
{
    (void)arg;
    char id[32];
    for (int k = 0; k < 300000; k++) {
        int n = snprintf(id, sizeof(id), "ev-%d", k);
        rc_worker_stats_record(&slot, 200 + k % 300, 1700000000000000000, (uint64_t)k, id,
                               (size_t)n);
    }
    atomic_store(&writing, 0);
    return NULL;
}

static void test_outcomes_race(void)
{
    reset();
    atomic_store(&writing, 1);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, writer, NULL), 0);
    rc_outcome_t out[RC_OUTCOMES];
    uint64_t seen = 0;
    while (atomic_load(&writing)) {
        size_t n = rc_worker_stats_outcomes(&slot, out, RC_OUTCOMES);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "ev-%" PRIu64, out[i].dur_ns);
            if (strcmp(out[i].id, want) != 0 || out[i].result != 200 + (int)(out[i].dur_ns % 300))
                RC_TEST_FAIL("a mixed entry: id %s, duration %" PRIu64 ", result %d", out[i].id,
                             out[i].dur_ns, out[i].result);
            seen++;
        }
    }
    pthread_join(th, NULL);
    ASSERT_GT(seen, 0);
}

int main(void)
{
    test_outcomes();
    test_outcomes_race();
    test_dead_letters();
    test_recent_window();
    test_empty();
    test_one_bucket();
    test_across_buckets();
    test_past_the_last_bound();
    printf("ok\n");
    return 0;
}
