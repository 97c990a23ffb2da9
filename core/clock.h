/* Clocks, header-only so that every layer (shm/ included) reads time the same way. */
#ifndef RC_CORE_CLOCK_H
#define RC_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Monotonic clock in nanoseconds (CLOCK_MONOTONIC: comparable across processes of one boot,
 *  the time base of heartbeats, deadlines and latencies). Any thread. */
static inline uint64_t rc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Wall-clock time in nanoseconds since the Unix epoch (CLOCK_REALTIME: arrival times,
 *  Retry-After dates). Any thread. */
static inline int64_t rc_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#ifdef __cplusplus
}
#endif

#endif
