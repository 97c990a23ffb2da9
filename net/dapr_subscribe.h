/* Programmatic Dapr subscriptions, on the serve main loop: for each DaprApp of the config it asks
 * the app's replicas `GET /dapr/subscribe` (one replica after the other), again with back-off
 * (100 ms doubling to 10 s) until one answers, since apps may start after the broker, and again
 * on every reload. An answer that differs from the app's last one makes the owner reload
 * (`changed`); each reload's config then gets the answers as programmatic subscriptions
 * (rc_dapr_subs_apply, merged after the declarative ones, which win). A bad answer (not JSON,
 * not an array, an entry without pubsubname or topic, a rule whose CEL does not compile, an
 * unknown pubsub) marks that app's programmatic subscriptions not ready: logged, counted, shown
 * in /metrics, and the broker goes on. docs/dapr.md, "Subscriptions". */
#ifndef RC_NET_DAPR_SUBSCRIBE_H
#define RC_NET_DAPR_SUBSCRIBE_H

#include <stddef.h>

#include <uv.h>

#include "core/config.h"

typedef struct rc_dapr_subs_s rc_dapr_subs_t;

/** Starts asking the DaprApps of `cfg` (borrowed for the call) on `loop`. `changed(arg)` runs on
 *  the loop when an app's answer changed what it subscribes to. With no DaprApp in `cfg` it does
 *  nothing until a reload brings one (*out is set all the same). Returns 0 or -ENOMEM, or the
 *  HTTP client's error. Main thread. */
int rc_dapr_subs_start(uv_loop_t *loop, const rc_config_t *cfg, void (*changed)(void *arg),
                       void *arg, rc_dapr_subs_t **out);

/** Adds every app's last good answer to `nc`, a config just loaded for a reload (before anyone
 *  else sees it), and asks every app of `nc` again (apps added by the reload included; those it
 *  removed are forgotten). Entries refused by `nc` are logged once per answer. Returns 0 or
 *  -ENOMEM. Main thread. */
int rc_dapr_subs_apply(rc_dapr_subs_t *d, rc_config_t *nc);

/** Appends the apps' subscription state as Prometheus text (snprintf-like). Main thread. */
size_t rc_dapr_subs_metrics(rc_dapr_subs_t *d, char *buf, size_t cap);

/** Stops asking (requests in flight are abandoned) and frees `d` from its handles' close
 *  callbacks. NULL is a no-op. Main thread. */
void rc_dapr_subs_close(rc_dapr_subs_t *d);

#endif
