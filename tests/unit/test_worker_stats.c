/* The delivery latency quantiles of the admin API's trigger status (net/delivery/worker_stats.c,
 * rc_worker_stats_latency_quantile): an empty histogram, interpolation inside a bucket, the
 * first bucket (from 0), ranks that cross buckets, and latencies past the last bound. */
#include "net/delivery/worker_stats.h"
#include "tests/test.h"

#include <math.h>
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

int main(void)
{
    test_empty();
    test_one_bucket();
    test_across_buckets();
    test_past_the_last_bound();
    printf("ok\n");
    return 0;
}
