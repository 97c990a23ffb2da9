/* The delivery supervisor inside `ringcast serve`: owns the feeds (one manual-ack lossless
 * reader per worker and broker, slot `feed~w<N>`; they live as long as the supervisor, so a
 * trigger's position survives its worker), the stores' cursor tables (each trigger's saved
 * cursor, net/delivery/cursor.h), the shared per-trigger stats segment, and K forked
 * worker processes (net/delivery/worker.h) among which the triggers are shared. It restarts a
 * worker that dies and applies a new config on SIGHUP. Runs on the serve main loop (libuv) and
 * never blocks it: stopping workers (for a reload or for good) goes on from the loop's timer and
 * SIGCHLD watcher while the loop serves everything else. */
#ifndef RC_NET_SUPERVISOR_H
#define RC_NET_SUPERVISOR_H

#include <stddef.h>

#include <uv.h>

#include "core/config.h"
#include "core/delivery_policy.h"
#include "net/delivery/worker_stats.h"
#include "net/storage/storage.h"

typedef struct rc_supervisor_s rc_supervisor_t;

/** Sets up cursors for `cfg`'s triggers in `stores` (one per cfg->brokers[i], already open,
 *  borrowed until the stop's callback ran): each trigger resumes from the cursor saved in its
 *  store's cursor table by an earlier broker process, if any (a store whose table is refused
 *  fails the start). Then forks the workers and starts watching them on `loop`
 *  (a timer, a SIGCHLD watcher; SIGHUP reloads cfg->source). `cfg` is borrowed until
 *  rc_supervisor_stop's callback ran. Returns 0 and sets *out, or a negative code (logged):
 *  then no worker runs and *out is untouched; handles already made on `loop` are closed and
 *  their memory goes when the loop runs their close callbacks. Main thread. */
int rc_supervisor_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                        rc_supervisor_t **out);

/** Re-reads the config file (and the state file after it, rc_config_load_with_state) and
 *  applies its triggers (what SIGHUP and `ringcast apply` do). The file is loaded and
 *  checked now: a file that does not load, or changes the set of brokers, returns its error at
 *  once and the running config stays (the reason is logged, reload_errors counted). Otherwise
 *  the workers are asked to stop (SIGTERM; SIGKILL after the drain time + 1 s) and 0 is
 *  returned: the loop goes on, and once they are all gone the new trigger table is applied and
 *  new workers forked (logged as `reloaded FILE: ...`, reloads counted). Called while a reload
 *  is in progress it returns 0 and the file is read again once that reload is done (several
 *  such calls make one more reload). Returns -ECANCELED while stopping. Main thread. */
int rc_supervisor_reload(rc_supervisor_t *s);

/** Reloads ended since the start: *applied (the new table runs) and *rejected. Returns 1 while
 *  a reload is in progress (another rc_supervisor_reload then ends after it), else 0. Main
 *  thread. */
int rc_supervisor_reload_state(rc_supervisor_t *s, uint64_t *applied, uint64_t *rejected);

/** What a reload checks of a loaded config `nc` beyond the loader: its subscribers' host names
 *  resolve, and its set of brokers is the running one's (a broker added or removed needs a
 *  restart). Returns 0, or an error with a message in `err`. Main thread. */
int rc_supervisor_check(rc_supervisor_t *s, const rc_config_t *nc, char *err, size_t err_len);

/** Sets `hook`, run on every config a reload loads (SIGHUP or rc_supervisor_reload), right after
 *  the file loaded and before it is checked and applied: it may add to `nc` what does not come
 *  from the file (the apps' programmatic Dapr subscriptions, net/dapr_subscribe.h). A non-zero
 *  return rejects the reload. NULL removes it. Main thread. */
void rc_supervisor_set_config_hook(rc_supervisor_t *s, int (*hook)(void *arg, rc_config_t *nc),
                                   void *arg);

/** Stops the workers (SIGTERM; they finish deliveries in flight for up to `drain_ms`, then
 *  SIGKILL), closes the libuv handles and frees everything, without blocking: `done(arg)` runs
 *  exactly once, from the loop, when every worker was reaped and `s` is freed. A reload in
 *  progress is abandoned: the new file is not applied, and its workers, already stopping, keep
 *  their deadline (`drain_ms` is not used then). The readers' slots are left in the
 *  ring: the next `ringcast serve` on the same ring resumes each trigger from its cursor.
 *  Until `done` runs, rc_supervisor_metrics still answers. Returns 0, or -EALREADY when a stop
 *  is already in progress (`done` will not run). Main thread. */
int rc_supervisor_stop(rc_supervisor_t *s, unsigned drain_ms, void (*done)(void *arg), void *arg);

/** Appends the per-trigger metrics (Prometheus text) to `buf`; snprintf-like. During a reload
 *  they are the running table's (the old triggers, counters as the old workers left them) until
 *  the new table is applied. Main thread. */
size_t rc_supervisor_metrics(rc_supervisor_t *s, char *buf, size_t cap);

/** One trigger of the running table, as the admin API shows it (net/admin.c). */
typedef struct {
    const rc_config_trigger_t *cfg;  /* names, subscriber, filter, Dapr subscription */
    rc_trigger_stats_t *stats;       /* its counters, last attempt and error, added_ms;
                                      * the admin writes `paused_ms` only */
    const rc_delivery_t *delivery;   /* the effective delivery policy */
    rc_trigger_lag_t lag;            /* behind its ring's head now (as /metrics shows it) */
    int worker_pid;                  /* the worker that delivers it; 0 while that worker is
                                      * being restarted, or the workers stop (reload, stop) */
} rc_supervisor_trigger_t;

/** Fills `out[0..min(n, cap))` with the running table's triggers (pointers borrowed until the
 *  caller returns to the loop: a reload replaces the table only from it) and returns n, their
 *  number. Main thread. */
size_t rc_supervisor_triggers(rc_supervisor_t *s, rc_supervisor_trigger_t *out, size_t cap);

/** Names what is behind `reader`, a feed's slot name ("feed~w<N>") on broker `broker_idx` (an
 *  index of cfg->brokers): of the triggers that feed routes, the one whose cursor is oldest,
 *  which is what holds the feed, and so the ring, back, as "namespace/name" in `out`; and in
 *  `*pid` the worker process that reads the feed (0 while it is being restarted; the slot
 *  itself is the supervisor's). Returns 0, or -ENOENT (not a feed of the running table). Main
 *  thread. */
int rc_supervisor_feed_holder(rc_supervisor_t *s, size_t broker_idx, const char *reader, char *out,
                              size_t cap, int *pid);

#endif
