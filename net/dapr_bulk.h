/* The body of a Dapr bulk publish (`/v1.0/publish/bulk/{pubsub}/{topic}`, ../shared/
 * CONTRACTS.md "Dapr"): a JSON array of {"entryId", "event", "contentType", "metadata"}, read
 * into one body and content type per entry, ready for rc_dapr_envelope. */
#ifndef RC_NET_DAPR_BULK_H
#define RC_NET_DAPR_BULK_H

#include <stddef.h>

#include "core/arena.h"
#include "core/str.h"
#include "net/dapr_envelope.h"

/** One entry, its views borrowing the request body or the arena. */
typedef struct {
    rc_str_t entry_id;          /* non-empty, unique in the request */
    rc_str_t content_type;      /* as given; absent: text/plain for a string event, else
                                   application/json */
    rc_str_t body;              /* the bytes to publish (see rc_dapr_bulk_parse) */
    int body_is_json;           /* `body` is the exact text of a JSON value (JSON content types) */
    const rc_dapr_meta_t *meta; /* the request's metadata (borrowed), or a copy in the arena
                                   with the entry's over it */
} rc_dapr_bulk_entry_t;

/** Reads a bulk body. Each entry's body is, by its content type: JSON types and
 *  application/cloudevents+json: the exact text of `event`; application/octet-stream: `event`
 *  must be a base64 string, decoded (as Dapr does); any other type: `event` must be a string, its
 *  contents. `request_meta` must outlive the entries. Entry metadata values must be strings; keys
 * are Dapr's names without the "metadata." prefix; unknown keys and members are ignored. Returns 0
 * with `*entries` (in `arena`) and `*count` (0 for "[]"), or -1 with `e`: RC_DAPR_E_EVENTS_SER (not
 * a JSON array of objects, entryId missing, empty or repeated, event missing or not what its
 * content type needs, metadata not an object of strings), RC_DAPR_E_TOO_LARGE (more than
 * `max_entries`), RC_DAPR_E_NOMEM. */
int rc_dapr_bulk_parse(rc_str_t body, const rc_dapr_meta_t *request_meta, size_t max_entries,
                       rc_arena_t *arena, rc_dapr_bulk_entry_t **entries, size_t *count,
                       rc_dapr_error_t *e);

#endif
