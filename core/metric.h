/* Counters for metrics: one writer per counter (a loop or a worker), readers anywhere. */
#ifndef RC_CORE_METRIC_H
#define RC_CORE_METRIC_H

#include <stdatomic.h>
#include <stdint.h>

/** Adds `n` to a counter whose only writer is the calling thread. Readers use relaxed loads. */
static inline void rc_metric_add(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed load + store, no locked instruction: readers only need an eventually
     * consistent, untorn value, and nobody else writes the counter. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

#endif
