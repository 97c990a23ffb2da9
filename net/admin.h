/* The admin listener's request handler: GET /healthz (the process answers), GET /readyz (200
 * while accepting events, 503 while starting or shutting down) and GET /metrics (Prometheus
 * text format). It runs on the main loop, apart from the ingress loops. */
#ifndef RC_NET_ADMIN_H
#define RC_NET_ADMIN_H

#include <stddef.h>

#include "net/http/http_server.h"

typedef struct {
    /** Returns 1 when the broker accepts events. */
    int (*ready)(void *arg);
    /** Renders the metrics text into buf (snprintf-like return). */
    size_t (*metrics)(void *arg, char *buf, size_t cap);
    void *arg;
    char *buf; /* grows to fit the metrics text */
    size_t cap;
} rc_admin_t;

/** Fills `h` with the admin handler for `a` (borrowed until the server is closed). */
void rc_admin_handler(rc_admin_t *a, rc_http_handler_t *h);

/** Releases the admin's buffer. */
void rc_admin_close(rc_admin_t *a);

#endif
