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
 * loop's arena, random source and output buffer. */
#ifndef RC_NET_DAPR_H
#define RC_NET_DAPR_H

#include <stddef.h>
#include <stdint.h>

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

typedef struct rc_dapr_s {
    const rc_config_t *cfg;        /* borrowed while serving: pubsubs, subscriptions, limits */
    rc_dapr_pubsub_t *pubsubs;     /* one per cfg->pubsubs entry, same order */
    rc_ingress_metrics_t *metrics; /* where requests are counted (borrowed) */
    char retry_after_line[40];
    rc_dapr_gen_t gen;
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

/** Fills `h` with a handler serving the Dapr API alone (any other path: 404), for a listener of
 *  its own. `d` is borrowed until the server is closed. */
void rc_dapr_handler(rc_dapr_t *d, rc_http_handler_t *h);

#endif
