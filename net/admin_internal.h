/* What net/admin.c shares with the other handlers of the admin listener (net/dashboard.c). */
#ifndef RC_NET_ADMIN_INTERNAL_H
#define RC_NET_ADMIN_INTERNAL_H

#include <cjson/cJSON.h>

#include "net/admin.h"

/** Appends every Broker, Trigger and Dapr Subscription object of view `v`, as the status API
 *  serves them (every namespace, config order), to the three arrays. The admin's loop only. */
void rc__admin_collect_all(const rc_admin_t *a, const rc_admin_view_t *v, cJSON *brokers,
                           cJSON *triggers, cJSON *subscriptions);

#endif
