/* The broker's lag watch, on the serve main loop: every 10 ms it applies the consumer groups'
 * lag limits in each broker's store (spec.lag is their default), and while a ring is over 90%
 * full or its producers are refused (RC_ERING_FULL) it logs, at most once per 10 s, what holds
 * the ring back: a worker's feed with the trigger whose cursor is oldest, a consumer group, or a
 * local reader. It keeps the groups as the last tick saw them for /metrics. docs/config.md,
 * "Lag limits". */
#ifndef RC_NET_LAG_WATCH_H
#define RC_NET_LAG_WATCH_H

#include <stddef.h>

#include <uv.h>

#include "core/config.h"
#include "net/storage/storage.h"

typedef struct rc_lag_watch_s rc_lag_watch_t;

/** Names what is behind `reader`, a worker's feed ("feed~w<N>") on broker `broker` (an index
 *  of cfg->brokers): writes its oldest trigger ("namespace/name") into `out` and the worker's
 *  pid into `*pid`, and returns 0; or returns -ENOENT. Called on the loop's thread. */
typedef int (*rc_lag_namer_t)(void *arg, size_t broker, const char *reader, char *out, size_t cap,
                              int *pid);

/** The holder of broker `broker`'s ring as /metrics and the log show it. */
typedef struct {
    rc_storage_holder_t h; /* name "" when no reader holds the ring; for a feed, h.pid is the
                            * worker's that reads it */
    char trigger[2 * RC_CONFIG_NAME_MAX + 2]; /* for a feed: its oldest trigger, else "" */
} rc_lag_holder_t;

/** Starts the watch on `loop` over `stores[i]`, the store of cfg->brokers[i] (both borrowed
 *  until the close callback ran). `namer(arg, ...)` names the triggers behind feeds; it may be
 *  NULL. Returns 0 and sets *out, or a negative code. Main thread. */
int rc_lag_watch_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                       rc_lag_namer_t namer, void *arg, rc_lag_watch_t **out);

/** Stops the timer; `w` is freed by its close callback on the loop. NULL is a no-op. */
void rc_lag_watch_close(rc_lag_watch_t *w);

/** The consumer groups of broker `broker` as the last tick saw them (`limit` made effective:
 *  the group's own or spec.lag's, 0 for block); `*n` of them. Main thread. */
const rc_storage_group_t *rc_lag_watch_groups(const rc_lag_watch_t *w, size_t broker, size_t *n);

/** Fills `out` with what holds broker `broker`'s ring back now. Returns 0, or -ENOENT when no
 *  reader does (`out->h.refused` is set either way). Main thread. */
int rc_lag_watch_holder(const rc_lag_watch_t *w, size_t broker, rc_lag_holder_t *out);

#endif
