/* A log-linear latency histogram (HdrHistogram-like): values in nanoseconds are counted in
 * buckets whose width is 1/64 of their power of two, so any percentile is exact to within
 * 1.6%. Fixed size, no allocation; two histograms merge by adding buckets (one per thread or
 * consumer, merged for the report). */
#ifndef RC_BENCH_HIST_H
#define RC_BENCH_HIST_H

#include <stdint.h>

#define RC_HIST_SUB_BITS 6                      /* 64 linear sub-buckets per power of two */
#define RC_HIST_SUB (1u << RC_HIST_SUB_BITS)
#define RC_HIST_BUCKETS ((64 - RC_HIST_SUB_BITS + 1) * RC_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    double sum;
    uint64_t b[RC_HIST_BUCKETS];
} rc_hist_t;

/** Empties `h`. */
void rc_hist_init(rc_hist_t *h);

/** Counts one value (ns). One writer at a time. */
void rc_hist_add(rc_hist_t *h, uint64_t v);

/** Adds every bucket of `src` to `dst`. */
void rc_hist_merge(rc_hist_t *dst, const rc_hist_t *src);

/** Value at percentile `p` (0-100]: the upper edge of the bucket that holds it, capped at the
 *  maximum seen. 0 when empty. */
uint64_t rc_hist_pct(const rc_hist_t *h, double p);

/** Mean in ns (0 when empty). */
double rc_hist_mean(const rc_hist_t *h);

#endif
