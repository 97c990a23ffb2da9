/* What net/admin.c shares with the other handlers of the admin listener (net/dashboard.c). */
#ifndef RC_NET_ADMIN_INTERNAL_H
#define RC_NET_ADMIN_INTERNAL_H

#include <cjson/cJSON.h>

#include "net/admin.h"
#include "net/http/http_server.h"

/** Whether the request's path is exactly `p`. */
int rc__admin_path_is(const rc_http_server_request_t *req, const char *p);

/** Answers `status` with `o` (deleted here; NULL counts as a failure) printed as the JSON body,
 *  kept in the admin's buffer, which the response borrows until the callback returns; when it
 *  cannot be printed or kept, answers `fail_status` with `fail_msg` instead. */
void rc__admin_answer_json(rc_admin_t *a, rc_http_server_response_t *res, int status, cJSON *o,
                           int fail_status, const char *fail_msg);

/** Appends every Broker, Trigger and Dapr Subscription object of view `v`, as the status API
 *  serves them (every namespace, config order), to the three arrays. The admin's loop only. */
void rc__admin_collect_all(const rc_admin_t *a, const rc_admin_view_t *v, cJSON *brokers,
                           cJSON *triggers, cJSON *subscriptions);

/** Answers `status` with a Kubernetes Status body (`reason`, `msg`: what the CLI prints). */
void rc__admin_status_answer(rc_admin_t *a, rc_http_server_response_t *res, int status,
                             const char *reason, const char *msg);

/** Whether the request may write: 0, or the refusal is set in `res`. With a token: 401 without
 *  an Authorization header or with one that is not `Bearer <token>`, 403 with another token.
 *  Without one: 403 unless rc__admin_loopback_trusted. */
int rc__admin_authorized(rc_admin_t *a, const rc_http_server_request_t *req,
                         rc_http_server_response_t *res);

/** Takes the next path segment of [*p, end) into `out` (cap bytes with the NUL) and moves *p
 *  past it and its '/'. Returns its length, or -1 when it is empty or too long. */
int rc__admin_segment(const char **p, const char *end, char *out, size_t cap);

/** Whether the request may see events' data (the sample of recent events): with a token, when
 *  it carries `Authorization: Bearer <token>`; without one, when rc__admin_loopback_trusted. The
 *  rule of writes, without an answer. */
int rc__admin_may_read_data(const rc_admin_t *a, const rc_http_server_request_t *req);

/** Whether a request without a token has the rights of the machine's operator: from loopback,
 *  and not sent by a browser (no Origin, no Sec-Fetch-Site): without spec.admin.token the
 *  dashboard is read-only, and no web page the operator's browser opens can write through it. */
int rc__admin_loopback_trusted(const rc_http_server_request_t *req);

/** The sample of recent events, a trigger's replay and a Dapr subscription's pause
 *  (net/admin_events.c): answers and returns 1 when `req`'s path is one of theirs under
 *  /apis/ringcast.dev/v1alpha1/namespaces/, else 0 (`res` untouched). The admin's loop only. */
int rc__admin_events_route(rc_admin_t *a, const rc_http_server_request_t *req,
                           rc_http_server_response_t *res);

#endif
