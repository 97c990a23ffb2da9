/* The Dapr publish envelope (../shared/CONTRACTS.md, "Dapr", Publish; docs/dapr.md): how a body
 * posted to `/v1.0/publish/{pubsub}/{topic}` becomes the rc_event_t that rc_publish stores, the
 * `metadata.*` parameters that change it, and the Dapr error kinds with their statuses and
 * errorCode names. Pure functions over an arena, no sockets: net/dapr.c is the HTTP side and
 * net/dapr_bulk.c the bulk body. One rc_dapr_gen_t per loop; nothing here is shared. */
#ifndef RC_NET_DAPR_ENVELOPE_H
#define RC_NET_DAPR_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/event.h"
#include "core/str.h"

/* ---- errors ---------------------------------------------------------------------------------- */

/** What went wrong, as Dapr names it: each kind has one status and one errorCode. */
typedef enum {
    RC_DAPR_E_NONE = 0,
    RC_DAPR_E_NOT_CONFIGURED, /* 400 ERR_PUBSUB_NOT_CONFIGURED: no pubsub components at all */
    RC_DAPR_E_PUBSUB_EMPTY,   /* 404 ERR_PUBSUB_EMPTY */
    RC_DAPR_E_PUBSUB_UNKNOWN, /* 404 ERR_PUBSUB_NOT_FOUND */
    RC_DAPR_E_TOPIC_EMPTY,    /* 404 ERR_TOPIC_NAME_EMPTY */
    RC_DAPR_E_METADATA,       /* 400 ERR_PUBSUB_REQUEST_METADATA: a bad metadata.* value */
    RC_DAPR_E_CLOUD_EVENT,    /* 500 ERR_PUBSUB_CLOUD_EVENTS_SER: not a valid CloudEvent */
    RC_DAPR_E_EVENTS_SER,     /* 400 ERR_PUBSUB_EVENTS_SER: a bad bulk body or entry */
    RC_DAPR_E_PUBLISH,        /* 500 ERR_PUBSUB_PUBLISH_MESSAGE: the store failed (the status
                                 follows the store's code: 429 ring full, 503, ...) */
    RC_DAPR_E_MALFORMED,      /* 400 ERR_MALFORMED_REQUEST: path, header (ringcast's) */
    RC_DAPR_E_TOO_LARGE,      /* 413 ERR_BODY_TOO_LARGE (ringcast's) */
    RC_DAPR_E_NOT_FOUND,      /* 404 ERR_NOT_FOUND: no such Dapr API path (ringcast's) */
    RC_DAPR_E_METHOD,         /* 405 ERR_METHOD_NOT_ALLOWED (ringcast's) */
    RC_DAPR_E_NOMEM,          /* 503 ERR_OUT_OF_MEMORY: the request's arena ran out */
} rc_dapr_code_t;

#define RC_DAPR_MSG_MAX 480

/** An error for the client: its kind, its HTTP status and a message naming the problem. */
typedef struct {
    rc_dapr_code_t code;
    int status;
    char msg[RC_DAPR_MSG_MAX];
} rc_dapr_error_t;

/** The errorCode string of `code` ("ERR_PUBSUB_NOT_FOUND"); "" for RC_DAPR_E_NONE. */
const char *rc_dapr_code_name(rc_dapr_code_t code);

/** Fills `e` with `code`, its status and the formatted message; returns -1 (for `return`). */
int rc_dapr_fail(rc_dapr_error_t *e, rc_dapr_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- random ids ------------------------------------------------------------------------------ */

/** xoshiro256** state: event ids and trace ids without a system call per event. */
typedef struct {
    uint64_t s[4];
} rc_dapr_rng_t;

/** Seeds `r` from getrandom (the clock and the address of `r` mixed in should it fail). */
void rc_dapr_rng_seed(rc_dapr_rng_t *r);

/** The next 64 random bits. */
uint64_t rc_dapr_rng_next(rc_dapr_rng_t *r);

#define RC_DAPR_UUID_LEN        36 /* 8-4-4-4-12 hex digits */
#define RC_DAPR_TRACEPARENT_LEN 55 /* 00-<32 hex>-<16 hex>-01 */

/** Writes a random UUID (version 4, RFC 9562 variant), lower-case, no NUL. */
void rc_dapr_uuid4(rc_dapr_rng_t *r, char out[RC_DAPR_UUID_LEN]);

/** Writes a new W3C traceparent "00-<trace id>-<span id>-01" (non-zero ids), no NUL. */
void rc_dapr_traceparent(rc_dapr_rng_t *r, char out[RC_DAPR_TRACEPARENT_LEN]);

/** Whether `s` is a W3C traceparent: 2 hex version (not ff), 32 hex trace id (not all zero),
 *  16 hex span id (not all zero), 2 hex flags, separated by '-'; lower-case hex. Version 00
 *  has exactly these 55 characters; later versions may append "-..." fields. */
bool rc_dapr_traceparent_valid(rc_str_t s);

/* ---- metadata.* ------------------------------------------------------------------------------ */

/** The metadata keys the publish API reads (Dapr's names, case-sensitive). Others are ignored:
 *  Dapr hands them to its component, and ringcast's component has no use for them. */
typedef enum {
    RC_DAPR_META_RAW_PAYLOAD = 0, /* rawPayload */
    RC_DAPR_META_TTL,             /* ttlInSeconds */
    RC_DAPR_META_CE_ID,           /* cloudevent.id */
    RC_DAPR_META_CE_SOURCE,       /* cloudevent.source */
    RC_DAPR_META_CE_TYPE,         /* cloudevent.type */
    RC_DAPR_META_CE_SUBJECT,      /* cloudevent.subject */
    RC_DAPR_META_CE_TRACEID,      /* cloudevent.traceid */
    RC_DAPR_META_CE_TRACEPARENT,  /* cloudevent.traceparent */
    RC_DAPR_META_CE_TRACESTATE,   /* cloudevent.tracestate */
    RC_DAPR_META_PARTITION_KEY,   /* partitionKey */
    RC_DAPR_META_COUNT
} rc_dapr_meta_key_t;

/** Metadata values as given (absent: ptr NULL), and where they came from for messages. */
typedef struct {
    rc_str_t v[RC_DAPR_META_COUNT];
    uint32_t from_entry; /* bit k: v[k] is a bulk entry's (named "k"), else the query's
                            (named "metadata.k") */
} rc_dapr_meta_t;

/** The Dapr name of `k` ("ttlInSeconds"). */
const char *rc_dapr_meta_name(rc_dapr_meta_key_t k);

/** The key called `name` (without the "metadata." prefix), or -1 when ringcast ignores it. */
int rc_dapr_meta_lookup(rc_str_t name);

/** Reads the `metadata.<key>=<value>` parameters of a query string (after '?'; NULL/0 for
 *  none) into `m` (zeroed by the caller): the prefix is case-insensitive as in Dapr, names and
 *  values are URL-decoded ('+' is a space), the first of a repeated key wins, other parameters
 *  are ignored. Decoded bytes live in `arena`. Returns 0, or -1 with `e` (400 ERR_MALFORMED_
 *  REQUEST for a bad %-escape, 503 out of memory). */
int rc_dapr_meta_query(const char *query, size_t len, rc_arena_t *arena, rc_dapr_meta_t *m,
                       rc_dapr_error_t *e);

/* ---- envelope -------------------------------------------------------------------------------- */

/** Per-loop state of the envelope builder: the random source and the current second's time
 *  string (most publishes of a second share it). */
typedef struct {
    rc_dapr_rng_t rng;
    int64_t time_sec;
    size_t time_len;
    char time[24]; /* "2026-01-02T03:04:05Z" for time_sec */
} rc_dapr_gen_t;

/** Seeds the random source. */
void rc_dapr_gen_init(rc_dapr_gen_t *g);

/** What one publish is about, besides its body (views borrowed for the call). */
typedef struct {
    rc_str_t pubsub, topic;
    rc_str_t app_id;       /* `dapr-app-id` header, or "ringcast" */
    rc_str_t content_type; /* the body's Content-Type; absent: text/plain (rawPayload:
                              application/octet-stream) */
    rc_str_t traceparent;  /* request headers; absent when not sent */
    rc_str_t tracestate;
    int64_t now_ns;   /* wall clock (time, expiration) */
    rc_str_t entry;   /* bulk: the entryId, to name in messages; absent for a single event */
    int body_is_json; /* the body is known to be one JSON value, UTF-8, without surrounding
                         whitespace (a bulk entry's event): not scanned again */
} rc_dapr_publish_t;

/** Extension slots an envelope's table starts with: topic, pubsubname, traceid, traceparent,
 *  tracestate, expiration, partitionkey, rawpayload, and the two that rc_publish stamps. */
#define RC_DAPR_EXT_SLOTS 10

/** Checks what a request gives every event of it: the topic (a valid string) and the app id
 *  (a URI-reference, it becomes `source`); drops trace headers that cannot be used (a
 *  traceparent that is none, a tracestate no attribute can hold: tracers drop them too). Call
 *  once per request, before rc_dapr_envelope. Returns 0, or -1 with `e` (RC_DAPR_E_MALFORMED). */
int rc_dapr_request_check(rc_dapr_publish_t *p, rc_dapr_error_t *e);

/** Builds the event Dapr would publish for `body` (borrowed: `ev` may point into it) under the
 *  metadata `m` into `ev`, its extension table and every new byte in `arena`:
 *  - rawPayload=true: the body is the data, byte for byte, under the envelope attributes;
 *  - Content-Type application/cloudevents+json: the body is the CloudEvent (defaults added);
 *  - otherwise: the Dapr envelope, data by the content type's rule (docs/dapr.md).
 *  Then the metadata overrides. Returns 0, or -1 with `e`: RC_DAPR_E_METADATA,
 *  RC_DAPR_E_CLOUD_EVENT, RC_DAPR_E_MALFORMED (a Content-Type that is no media type),
 *  RC_DAPR_E_NOMEM. `p` must have passed rc_dapr_request_check. The event is valid
 *  (rc_event_validate) on success: every value is checked as it is set, so the whole event is
 *  not checked again. */
int rc_dapr_envelope(rc_dapr_gen_t *g, const rc_dapr_publish_t *p, const rc_dapr_meta_t *m,
                     rc_str_t body, rc_arena_t *arena, rc_event_t *ev, rc_dapr_error_t *e);

#endif
