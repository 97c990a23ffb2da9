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

#endif
