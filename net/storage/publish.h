/* The one way events get into a broker's store: stamp them (TTL, arrival time), size them,
 * claim room for all of them at once, encode each as a core/record.h record in place, commit,
 * and say what went wrong in words a client can act on. The HTTP ingress (net/ingress.c),
 * replies (net/delivery/reply.c) and batches use it; the Dapr publish API will too. */
#ifndef RC_NET_PUBLISH_H
#define RC_NET_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/event.h"
#include "net/storage/storage.h"

/** How the events' TTL (knativebrokerttl) is set. */
typedef enum {
    RC_PUBLISH_TTL_INGRESS = 0, /**< a producer's event: validated, default when absent */
    RC_PUBLISH_TTL_REPLY = 1,   /**< a reply: the parent's TTL minus one (parent_ttl) */
} rc_publish_ttl_t;

typedef struct {
    rc_publish_ttl_t ttl;
    int32_t parent_ttl; /**< RC_PUBLISH_TTL_REPLY: the TTL of the event replied to */
    int batch;          /**< the events came as a batch: errors name the event's index */
    uint64_t max_event; /**< batch: the largest record one event may take (0: no limit) */
    int64_t arrival_ns; /**< knativearrivaltime, Unix ns (0: now) */
    const char *broker; /**< "ns/name", for messages */
    uint64_t *ticket;   /**< NULL: a store in durability sync returns once the events are
                         *   on disk. Else it returns at once and sets *ticket for
                         *   rc_storage_durable_wait (0: nothing to wait for). */
    int quiet;          /**< leave sleeping readers asleep: the caller calls rc_storage_wake
                         *   at the end of its loop turn (RC_STORAGE_COMMIT_F_QUIET) */
} rc_publish_opts_t;

/** Stores `events[0..n)` in `s`, all or none. `arena` holds what stamping adds (it must outlive
 *  the call only). Returns 0 (stored), or a code with `msg` filled: RC_EINVALID_EVENT and
 *  RC_ETTL_EXPIRED (the event is wrong; for a reply, RC_ETTL_EXPIRED means it is dropped on
 *  purpose), RC_ETOO_LARGE, RC_ERING_FULL (retry later), RC_ERING_TOO_BIG, -ENOMEM, or the
 *  store's error. rc_http_status_for maps each to a status. Any thread that owns `s` and
 *  `arena`. n == 0 stores nothing and returns 0. */
int rc_publish(rc_storage_t *s, rc_event_t *events, size_t n, rc_arena_t *arena,
               const rc_publish_opts_t *o, char *msg, size_t msg_len);

#endif
