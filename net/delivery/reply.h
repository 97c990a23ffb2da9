/* Replies: a subscriber's 2xx response (not 202) that carries a CloudEvent, binary or structured,
 * written back into the broker's ring with its TTL decremented (CONTRACTS.md, "Delivery to a
 * subscriber"), through the one publish path (net/storage/publish.h). */
#ifndef RC_NET_REPLY_H
#define RC_NET_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "net/storage/storage.h"

/** What rc_reply_store did. */
typedef enum {
    RC_REPLY_NONE = 0,    /* no CloudEvent in the response (empty, or not an event: ignored) */
    RC_REPLY_STORED = 1,  /* written into the ring */
    RC_REPLY_EXPIRED = 2, /* its TTL reached 0: dropped */
} rc_reply_outcome_t;

/** Decodes the response (`n` headers as name/value pairs, `body`) as a CloudEvent; when it is
 *  one, gives it TTL `parent_ttl - 1` and a knativearrivaltime and publishes it into `store`.
 *  Returns 0 with `*out` set; RC_ERING_FULL or another ring error when it could not be stored
 *  (the caller may try again), -ENOMEM. `why` (if not NULL) receives why a non-empty body was
 *  not an event, for the log. Any thread that owns `store` for producing. */
int rc_reply_store(rc_storage_t *store, const rc_str_t *names, const rc_str_t *values, size_t n,
                   rc_str_t body, int32_t parent_ttl, rc_reply_outcome_t *out, char *why,
                   size_t why_len);

#endif
