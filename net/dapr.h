/* The Dapr sidecar HTTP API on the broker (issue 12; ../shared/CONTRACTS.md "Dapr"; docs/dapr.md):
 *
 *   POST|PUT /v1.0/publish/{pubsub}/{topic}            one event (topic may contain '/')
 *   POST|PUT /v1.0/publish/bulk/{pubsub}/{topic}       a JSON array of entries, all or nothing
 *   POST|PUT /v1.0-alpha1/publish/bulk/{pubsub}/{topic}
 *   GET      /v1.0/healthz, /v1.0/healthz/outbound     204
 *   GET      /v1.0/metadata                            id, components, subscriptions
 *
 * A pubsub is a Dapr Component of the config (rc_config_find_pubsub); its events go to its
 * broker's store through rc_publish, with the envelope of net/dapr_envelope.h. Errors are Dapr's
 * JSON {"errorCode", "message"} with Dapr's statuses.
 *
 * The API is served two ways: on the ingress listener, where net/ingress.c hands every path that
 * rc_dapr_owns_path accepts to rc_dapr_on_headers / rc_dapr_on_request ('.' is in no Knative
 * namespace, so /v1.0/... never names a broker), and on a listener of its own
 * (RingcastConfig spec.dapr.listen) with rc_dapr_handler. One rc_dapr_t per loop: it holds that
 * loop's arena, random source and output buffer. A publish to a store in durability sync is
 * answered once the store's flush covers it, without blocking the loop (net/held.h:
 * rc_ingress_attach on the ingress listener, rc_dapr_attach on a listener of its own). */
#ifndef RC_NET_DAPR_H
#define RC_NET_DAPR_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/arena.h"
#include "core/config.h"
#include "net/dapr_envelope.h"
#include "net/http/http_server.h"
#include "net/ingress.h"
#include "net/metrics.h"

/** A pubsub component as the API uses it: the store of its broker. */
typedef struct {
    rc_storage_t *store; /* NULL when the component names no configured broker */
    const char *broker;  /* "ns/name", for messages */
} rc_dapr_pubsub_t;

/** One programmatic subscription as GET /v1.0/metadata lists it. */
typedef struct {
    char app[RC_CONFIG_NAME_MAX + 1];
    char *json; /* its JSON object, NUL-terminated */
} rc_dapr_listing_entry_t;

/** The subscriptions apps declared through GET /dapr/subscribe (net/dapr_subscribe.h), as
 *  /v1.0/metadata lists them after the config's own: replaced by the main loop on each reload,
 *  read by every loop that serves the API. */
typedef struct {
    uv_mutex_t lock;
    rc_dapr_listing_entry_t *v;
    size_t n;
} rc_dapr_listing_t;

/** Sets up an empty listing. Returns 0 or a libuv error. */
int rc_dapr_listing_init(rc_dapr_listing_t *l);

/** Frees what the listing holds (no loop may read it any more). */
void rc_dapr_listing_destroy(rc_dapr_listing_t *l);

/** Makes the listing the programmatic subscriptions of `c` (a config about to be applied).
 *  Returns 0 or -ENOMEM (then the listing is unchanged). Main thread. */
int rc_dapr_listing_set(rc_dapr_listing_t *l, const rc_config_t *c);

typedef struct rc_dapr_s {
    const rc_config_t *cfg;        /* borrowed while serving: pubsubs, subscriptions, limits */
    rc_dapr_listing_t *listing;    /* programmatic subscriptions (borrowed; NULL: none) */
    rc_dapr_pubsub_t *pubsubs;     /* one per cfg->pubsubs entry, same order */
    rc_ingress_metrics_t *metrics; /* where requests are counted (borrowed) */
    char retry_after_line[40];
    rc_dapr_gen_t gen;
    struct rc_held_s *held; /* durability sync: answers held for the flush (net/held.h), or
                             * NULL: no pubsub's store is in sync */
    int own_held;           /* `held` is this object's (rc_dapr_attach), not the ingress's */
    char *out; /* response bodies larger than the response's scratch */
    size_t out_cap;
    rc_arena_t arena;           /* per request */
    char arena_buf[128 * 1024]; /* the arena's first block: most requests never malloc */
} rc_dapr_t;

/** Prepares `d` for one loop: `brokers` (borrowed, as the ingress has them) give each pubsub's
 *  store; `metrics` (borrowed) counts the requests. Returns 0 or -ENOMEM. */
int rc_dapr_init(rc_dapr_t *d, const rc_config_t *cfg, const rc_ingress_broker_t *brokers,
                 size_t broker_count, rc_ingress_metrics_t *metrics);

/** Releases what rc_dapr_init and the requests allocated. NULL is a no-op. */
void rc_dapr_close(rc_dapr_t *d);

/** Whether the request path belongs to the Dapr API: "/v1.0" or "/v1.0-alpha1", alone or
 *  followed by '/'. */
int rc_dapr_owns_path(const char *path, size_t len);

/** The handler's two steps, for a server whose handler is another's (net/ingress.c): call them
 *  for each request whose path rc_dapr_owns_path accepts. They use res->ctx and res->ctx_tag. */
void rc_dapr_on_headers(rc_dapr_t *d, const rc_http_server_request_t *req,
                        rc_http_server_response_t *res);
void rc_dapr_on_request(rc_dapr_t *d, const rc_http_server_request_t *req,
                        rc_http_server_response_t *res);

/** Durability sync on a listener of its own: when a pubsub's store is in durability sync, a
 *  publish to it is answered (204) once the store's flush covers it, the loop going on
 *  meanwhile (net/held.h), instead of blocking the loop in the commit. Without such a store
 *  it does nothing. Returns 0 or -ENOMEM. Loop thread, before it runs. */
int rc_dapr_attach(rc_dapr_t *d, uv_loop_t *loop, rc_http_server_t *srv);

/** Undoes rc_dapr_attach once its server is closed (held answers that finish later are
 *  dropped). Loop thread. */
void rc_dapr_detach(rc_dapr_t *d);

/** The same on the ingress listener: `held` is the ingress loop's holder (borrowed; NULL
 *  detaches). Called by rc_ingress_attach and rc_ingress_detach. */
void rc_dapr_attach_held(rc_dapr_t *d, struct rc_held_s *held);

/** Fills `h` with a handler serving the Dapr API alone (any other path: 404), for a listener of
 *  its own. `d` is borrowed until the server is closed. */
void rc_dapr_handler(rc_dapr_t *d, rc_http_handler_t *h);

#endif
