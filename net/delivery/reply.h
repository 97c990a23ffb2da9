/* Replies: a subscriber's 2xx response (not 202) that carries a CloudEvent, binary or structured,
 * written back into the broker's ring with its TTL decremented (CONTRACTS.md, "Delivery to a
 * subscriber"), through the one publish path (net/storage/publish.h). A reply that finds the
 * ring full waits in its worker's reply queue (net/delivery/worker_internal.h, rc__reply_*),
 * never in the way of the event it answers: docs/delivery.md, "Replies". */
#ifndef RC_NET_REPLY_H
#define RC_NET_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/event.h"
#include "core/str.h"
#include "net/storage/storage.h"

/** What rc_reply_store did. */
typedef enum {
    RC_REPLY_NONE = 0,    /* no CloudEvent in the response (empty, or not an event: ignored) */
    RC_REPLY_STORED = 1,  /* written into the ring */
    RC_REPLY_EXPIRED = 2, /* its TTL reached 0: dropped */
} rc_reply_outcome_t;

/** A response as a subscriber sent it: `n` headers as name/value pairs and the body, all
 *  borrowed; and what storing it takes from the event it answers. */
typedef struct {
    const rc_str_t *names;
    const rc_str_t *values;
    size_t n;
    rc_str_t body;
    int32_t parent_ttl; /* knativebrokerttl of the event answered */
    int64_t arrival_ns; /* knativearrivaltime to give the reply, Unix ns (0: now) */
    int dead_letter;    /* not a reply but a Dapr dead letter (net/delivery/dapr_deliver.c): the
                         * event itself for its subscription's dead-letter topic, stored and
                         * queued the same way, counted as dead_lettered or dropped */
} rc_reply_t;

/** Decodes `r` with the ingress codecs into `*ev` (views into `r` and `arena`). Returns 0, or
 *  -ENOMEM, or another code when the response is not exactly one CloudEvent (then `why`, if
 *  `why_len` > 0, says why, for the log). Any thread. */
int rc_reply_decode(const rc_reply_t *r, rc_arena_t *arena, rc_event_t *ev, char *why,
                    size_t why_len);

/** Decodes `r` as a CloudEvent; when it is one, gives it TTL `parent_ttl - 1` and a
 *  knativearrivaltime and publishes it into `store`. Returns 0 with `*out` set; RC_ERING_FULL or
 *  another ring error when it could not be stored (the caller may try again later), -ENOMEM,
 *  RC_ETOO_LARGE or RC_ERING_TOO_BIG (it never fits). `id` (`id_len` > 0) receives the reply's
 *  id when it is an event (cut to fit, for logs); `why` (`why_len` > 0) why a non-empty body was
 *  not an event. The same `r` gives the same outcome except for ring space, so a caller may
 *  keep a copy and call again. Any thread that owns `store` for producing. */
int rc_reply_store(rc_storage_t *store, const rc_reply_t *r, rc_reply_outcome_t *out, char *id,
                   size_t id_len, char *why, size_t why_len);

#endif
