/* The bench harness' log-linear histogram: exact small values, percentiles within the bucket
 * precision (1/64), merging, empty histograms. */
#include <math.h>
#include <stdint.h>

#include "bench/hist.h"
#include "tests/test.h"

static double rel(uint64_t got, uint64_t want)
{
    return fabs((double)got - (double)want) / (double)want;
}

int main(void)
{
    static rc_hist_t h, a, b;
    rc_hist_init(&h);
    ASSERT_U64_EQ(rc_hist_pct(&h, 50), 0);
    ASSERT(rc_hist_mean(&h) == 0.0);

    /* Values below 64 are exact. */
    for (uint64_t v = 1; v <= 50; v++)
        rc_hist_add(&h, v);
    ASSERT_U64_EQ(rc_hist_pct(&h, 50), 25);
    ASSERT_U64_EQ(rc_hist_pct(&h, 100), 50);
    ASSERT_U64_EQ(rc_hist_pct(&h, 0.1), 1);
    ASSERT_U64_EQ(h.min, 1);
    ASSERT_U64_EQ(h.max, 50);

    /* 1..1,000,000 ns uniformly: percentiles within 1/64 of the true value. */
    rc_hist_init(&h);
    for (uint64_t v = 1; v <= 1000000; v++)
        rc_hist_add(&h, v);
    ASSERT(rel(rc_hist_pct(&h, 50), 500000) < 1.0 / 64);
    ASSERT(rel(rc_hist_pct(&h, 90), 900000) < 1.0 / 64);
    ASSERT(rel(rc_hist_pct(&h, 99), 990000) < 1.0 / 64);
    ASSERT(rel(rc_hist_pct(&h, 99.9), 999000) < 1.0 / 64);
    ASSERT_U64_EQ(rc_hist_pct(&h, 100), 1000000); /* capped at the max seen */
    ASSERT(fabs(rc_hist_mean(&h) - 500000.5) < 1.0);

    /* Huge values (hours in ns, and the top of the range) land in a bucket. */
    rc_hist_init(&h);
    rc_hist_add(&h, UINT64_MAX);
    rc_hist_add(&h, 3600ull * 1000000000ull);
    ASSERT_U64_EQ(rc_hist_pct(&h, 100), UINT64_MAX);
    ASSERT(rel(rc_hist_pct(&h, 50), 3600ull * 1000000000ull) < 1.0 / 64);

    /* Merging two halves equals adding everything to one. */
    rc_hist_init(&a);
    rc_hist_init(&b);
    rc_hist_init(&h);
    for (uint64_t v = 0; v < 20000; v++) {
        rc_hist_add(v % 2 ? &a : &b, v * 37);
        rc_hist_add(&h, v * 37);
    }
    rc_hist_merge(&a, &b);
    ASSERT_U64_EQ(a.count, h.count);
    ASSERT_U64_EQ(a.max, h.max);
    ASSERT_U64_EQ(a.min, 0);
    ASSERT_U64_EQ(rc_hist_pct(&a, 50), rc_hist_pct(&h, 50));
    ASSERT_U64_EQ(rc_hist_pct(&a, 99), rc_hist_pct(&h, 99));
    /* A stall hides nowhere: one slow value out of 1000 sets p99.9 and the max. */
    rc_hist_init(&h);
    for (int i = 0; i < 999; i++)
        rc_hist_add(&h, 100000);
    rc_hist_add(&h, 50000000);
    ASSERT(rel(rc_hist_pct(&h, 99), 100000) < 1.0 / 64);
    ASSERT_U64_EQ(rc_hist_pct(&h, 100), 50000000);
    ASSERT(rel(rc_hist_pct(&h, 99.95), 50000000) < 1.0 / 64);
    return 0;
}
