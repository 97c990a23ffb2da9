/* The broker process: rings for the configured brokers, N ingress loops (one thread each,
 * sharing the ingress port with SO_REUSEPORT), the admin listener and signal handling on the
 * main loop, and the graceful stop on SIGTERM/SIGINT. */
#ifndef RC_NET_SERVE_H
#define RC_NET_SERVE_H

#include <stdio.h>

#include "core/config.h"

/** Runs the broker described by `cfg` until SIGTERM or SIGINT, then stops gracefully: the
 *  listeners close, requests in flight finish, new requests get 503, and the rings are closed.
 *  Prints one line "listening ingress=HOST:PORT admin=HOST:PORT" to `ready_out` (flushed) once
 *  both listeners accept. Startup is all-or-nothing: any failure undoes what was set up.
 *  Returns 0 after a clean stop, or a negative code with a message logged. Main thread only. */
int rc_serve_run(const rc_config_t *cfg, FILE *ready_out);

#endif
