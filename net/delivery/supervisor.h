/* The delivery supervisor inside `ringcast serve`: owns one manual-ack lossless reader per
 * trigger (its slot, named after the trigger, lives as long as the supervisor, so a trigger's
 * cursor survives its worker), the shared per-trigger stats segment, and K forked worker
 * processes (net/delivery/worker.h) among which the triggers are shared. It restarts a worker that
 * dies and applies a new config on SIGHUP. Runs on the serve main loop (libuv). */
#ifndef RC_NET_SUPERVISOR_H
#define RC_NET_SUPERVISOR_H

#include <stddef.h>

#include <uv.h>

#include "core/config.h"
#include "net/storage/storage.h"

typedef struct rc_supervisor_s rc_supervisor_t;

/** Sets up cursors for `cfg`'s triggers in `stores` (one per cfg->brokers[i], already open,
 *  borrowed until the stop), forks the workers and starts watching them on `loop`
 *  (a timer; SIGHUP reloads cfg->source). `cfg` is borrowed until rc_supervisor_stop.
 *  Returns 0 or a negative code (logged). Main thread. */
int rc_supervisor_start(uv_loop_t *loop, const rc_config_t *cfg, rc_storage_t *const *stores,
                        rc_supervisor_t **out);

/** Re-reads the config file and applies its triggers (what SIGHUP does). Returns 0, or the
 *  loader's error (the running config stays; the reason is logged). Main thread. */
int rc_supervisor_reload(rc_supervisor_t *s);

/** Stops the workers (SIGTERM; they finish deliveries in flight for up to `drain_ms`, then
 *  SIGKILL), closes the libuv handles and frees everything. The readers' slots are left in the
 *  ring: the next `ringcast serve` on the same ring resumes each trigger from its cursor.
 *  NULL is a no-op. Main thread; runs the loop's close callbacks itself is not needed. */
void rc_supervisor_stop(rc_supervisor_t *s, unsigned drain_ms);

/** Appends the per-trigger metrics (Prometheus text) to `buf`; snprintf-like. Main thread. */
size_t rc_supervisor_metrics(rc_supervisor_t *s, char *buf, size_t cap);

#endif
