/* Log-linear histogram: values below RC_HIST_SUB sit in exact buckets; above, a value with
 * its highest set bit at position e lands in group (e - SUB_BITS + 1), sub-bucket given by the
 * SUB_BITS bits below the highest one. */
#include "bench/hist.h"

#include <string.h>

void rc_hist_init(rc_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < RC_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
    unsigned shift = e - RC_HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) & (RC_HIST_SUB - 1);
    return (shift + 1) * RC_HIST_SUB + sub;
}

/* Largest value that falls into bucket `i`. */
static uint64_t bucket_top(unsigned i)
{
    if (i < RC_HIST_SUB)
        return i;
    unsigned shift = i / RC_HIST_SUB - 1;
    uint64_t sub = i % RC_HIST_SUB;
    uint64_t lo = (RC_HIST_SUB + sub) << shift;
    return lo + ((uint64_t)1 << shift) - 1;
}

void rc_hist_add(rc_hist_t *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

void rc_hist_merge(rc_hist_t *dst, const rc_hist_t *src)
{
    for (unsigned i = 0; i < RC_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min < dst->min)
        dst->min = src->min;
}

uint64_t rc_hist_pct(const rc_hist_t *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < RC_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}

double rc_hist_mean(const rc_hist_t *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
