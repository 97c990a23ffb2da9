/* The dashboard on the admin listener (docs/dashboard.md): GET `/` is a page (HTML, CSS and JS
 * compiled into the binary, served from `/ui/...`) that polls GET
 * /apis/ringcast.dev/v1alpha1/overview every second, an Overview object with every Broker,
 * Trigger and Dapr Subscription of the status API in one answer and the time it was taken, so
 * the page computes rates from one consistent sample. Read-only; the page makes no request
 * outside the admin listener (its Content-Security-Policy forbids them). */
#ifndef RC_NET_DASHBOARD_H
#define RC_NET_DASHBOARD_H

#include "net/admin.h"
#include "net/http/http_server.h"

/** The path of the Overview object. */
#define RC_DASHBOARD_OVERVIEW_PATH "/apis/ringcast.dev/v1alpha1/overview"

/** Answers `req` when its path is the dashboard's (`/`, anything under `/ui/`, the overview):
 *  the file or the Overview (GET and HEAD; 304 for a matching If-None-Match), 404 for an
 *  unknown `/ui/` file or an admin without a status view, 405 for other methods. Returns 1 when
 *  it answered, 0 when the path is not the dashboard's (`res` untouched). Uses `a`'s buffer
 *  for the Overview. The admin's loop only. */
int rc_dashboard_route(rc_admin_t *a, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res);

#endif
