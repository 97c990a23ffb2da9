/* The admin listener's request handler: GET /healthz (the process answers), GET /readyz (200
 * while accepting events, 503 while starting or shutting down), GET /metrics (Prometheus text
 * format) and the status API (GET only, JSON): Knative-shaped Broker and Trigger objects at
 * /apis/eventing.knative.dev/v1[/namespaces/{ns}]/{brokers|triggers}[/{name}] and Dapr
 * Subscriptions at /apis/dapr.io/v2alpha1[/namespaces/{ns}]/subscriptions[/{name}], each with
 * status.conditions (type Ready) and what `ringcast get` shows (docs/operations.md, "Status").
 * Writes: POST /apis/ringcast.dev/v1alpha1/apply and .../delete with a YAML body of manifests
 * (net/apply.h; docs/operations.md, "Runtime changes"), from loopback only unless a bearer
 * token is set. It runs on the main loop, apart from the ingress loops. */
#ifndef RC_NET_ADMIN_H
#define RC_NET_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "net/apply.h"
#include "net/delivery/supervisor.h"
#include "net/http/http_server.h"
#include "net/metrics.h"

/** What the status API's objects are made of, as the serve process has it now. */
typedef struct {
    const rc_ring_gauge_t *brokers; /* one per broker: the gauges /metrics renders */
    size_t nbrokers;
    const char *ingress;  /* "host:port" the ingress listens on (a broker's URL) */
    int64_t started_ms;   /* wall clock when serve started: a broker's age */
    rc_supervisor_t *sup; /* the triggers; NULL once the workers have stopped */
    rc_storage_t *const *stores; /* one per broker, as `brokers`: the sample of recent events
                                  * and replays read them (NULL: those answer 503) */
} rc_admin_view_t;

typedef struct {
    /** Returns 1 when the broker accepts events. */
    int (*ready)(void *arg);
    /** Renders the metrics text into buf (snprintf-like return). */
    size_t (*metrics)(void *arg, char *buf, size_t cap);
    /** Fills `v` for one status request (its pointers are borrowed until the request's
     *  callback returns). */
    void (*view)(void *arg, rc_admin_view_t *v);
    /** Runs an apply or delete (net/apply.h) of `body` and reloads when it changed something:
     *  returns the HTTP status and sets *json (malloc'd), or returns 0 when it answers later,
     *  once the reload is done, with rc_http_server_respond(conn_id). NULL: the write API
     *  answers 404. */
    int (*write)(void *arg, rc_apply_op_t op, const char *body, size_t len, uint64_t conn_id,
                 char **json);
    void *arg;
    /* spec.admin.token (borrowed): writes need `Authorization: Bearer <token>` from any
     * address; NULL: writes are accepted from loopback peers only, without a token. */
    const char *token;
    char *buf; /* grows to fit the metrics text or the status JSON */
    size_t cap;
} rc_admin_t;

/** Fills `h` with the admin handler for `a` (borrowed until the server is closed). */
void rc_admin_handler(rc_admin_t *a, rc_http_handler_t *h);

/** Releases the admin's buffer. */
void rc_admin_close(rc_admin_t *a);

#endif
