/* The CloudEvent model (CloudEvents 1.0.2). An event is a set of views (core/str.h): decoders
 * point them into the request buffer when the bytes can be used as they are, and into a
 * per-request arena (core/arena.h) when decoding had to produce new bytes (percent-decoding,
 * JSON unescaping, base64). Extensions carry a type and their canonical string form, which is
 * what filters compare and what binary mode sends.
 *
 * Validation lives in core/validate.h, wire codecs in core/codec_http.h and core/codec_json.h,
 * the ring record format in core/record.h. */
#ifndef RC_CORE_EVENT_H
#define RC_CORE_EVENT_H

#include "core/arena.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** CloudEvents attribute types. Values are the canonical string forms of the spec: integers in
 *  decimal without leading zeros or '+', booleans "true"/"false", binary as base64 (RFC 4648,
 *  padded), timestamps as RFC 3339, URIs and URI-references as written. */
typedef enum {
    RC_CE_STRING = 0,
    RC_CE_INTEGER = 1,
    RC_CE_BOOLEAN = 2,
    RC_CE_BINARY = 3,
    RC_CE_URI = 4,
    RC_CE_URI_REF = 5,
    RC_CE_TIMESTAMP = 6,
} rc_ce_type_t;

#define RC_CE_TYPE_COUNT 7

/** The core (non-extension) context attributes; they sit at fixed slots of an event and of a
 *  record. The first four are required. */
typedef enum {
    RC_CE_ATTR_SPECVERSION = 0,
    RC_CE_ATTR_ID = 1,
    RC_CE_ATTR_SOURCE = 2,
    RC_CE_ATTR_TYPE = 3,
    RC_CE_ATTR_DATACONTENTTYPE = 4,
    RC_CE_ATTR_DATASCHEMA = 5,
    RC_CE_ATTR_SUBJECT = 6,
    RC_CE_ATTR_TIME = 7,
} rc_ce_attr_t;

#define RC_CE_ATTR_CORE_COUNT 8
/** Longest extension name the spec allows. */
#define RC_CE_EXT_NAME_MAX 20
/** Most extensions one event may carry (a decoder rejects more). */
#define RC_CE_EXT_MAX 128
/** Buffer size that holds any timestamp rc_ce_time_format writes, with its NUL. */
#define RC_CE_TIME_BUF 40
/** knativebrokerttl given to events that arrive without one. */
#define RC_CE_TTL_DEFAULT 255

/** One extension attribute. `name` and `value` are borrowed views. */
typedef struct {
    rc_str_t name;  /* 1-20 chars of [a-z0-9] once validated */
    rc_str_t value; /* canonical string form of `type` */
    rc_ce_type_t type;
} rc_ce_ext_t;

/** An attribute value as lookups return it. */
typedef struct {
    rc_str_t value; /* canonical string form */
    rc_ce_type_t type;
} rc_ce_value_t;

/** A CloudEvent. A plain value: the caller owns the struct, the views borrow request, arena or
 *  record bytes. Absent optional attributes have `ptr == NULL`. `data.ptr == NULL` means the
 *  event has no data; otherwise `data` holds the bytes exactly as a binary-mode body would
 *  (for JSON data: its JSON text). */
typedef struct rc_event_s {
    union {
        rc_str_t attr[RC_CE_ATTR_CORE_COUNT]; /* indexed by rc_ce_attr_t */
        struct {
            rc_str_t specversion, id, source, type;
            rc_str_t datacontenttype, dataschema, subject, time;
        };
    };
    rc_ce_ext_t *ext;   /* extensions in arrival order */
    uint32_t ext_count; /* used entries of ext */
    uint32_t ext_cap;   /* capacity of ext */
    rc_str_t data;
} rc_event_t;

/** Why an event was rejected: enough to build the 400 message without formatting on the hot
 *  path. Decoders and rc_event_validate fill it; rc_ce_error_format renders it as
 *  "event 3: source: must be a non-empty URI-reference". */
typedef struct {
    int32_t index;    /* position in a batch, -1 for a single event */
    rc_str_t field;   /* attribute (or header/member) concerned; may be empty. Borrows the input
                         or the arena: valid as long as they are */
    const char *rule; /* static text describing the rule broken; NULL when no error */
} rc_ce_error_t;

/** A precomputed attribute name for repeated lookups (filters, CESQL): compile once with
 *  rc_ce_key_init, then rc_event_get_key / rc_record_get_key cost one slot read for core
 *  attributes and a hash probe for extensions. `name` is borrowed. */
typedef struct {
    rc_str_t name;
    int32_t core;  /* rc_ce_attr_t slot, or -1 for an extension */
    uint32_t hash; /* rc_ce_name_hash(name) */
} rc_ce_key_t;

/** Resets `ev` to an empty event whose extension table is `ext` (capacity `cap`; may be NULL/0,
 *  the table then grows in an arena on first use). Never fails. */
void rc_event_init(rc_event_t *ev, rc_ce_ext_t *ext, uint32_t cap);

/** Sets extension `name` (replacing an existing one of that name) to `value` of `type`. The
 *  views are borrowed, not copied. When the table is full it grows in `arena` (NULL: no
 *  growth). Returns 0, -ENOMEM (arena exhausted or no arena), -E2BIG (RC_CE_EXT_MAX reached). */
int rc_event_set_ext(rc_event_t *ev, rc_arena_t *arena, rc_str_t name, rc_str_t value,
                     rc_ce_type_t type);

/** Returns the extension called `name`, or NULL. */
const rc_ce_ext_t *rc_event_find_ext(const rc_event_t *ev, rc_str_t name);

/** Removes extension `name` (keeping the order of the others). Returns true if it existed. */
bool rc_event_remove_ext(rc_event_t *ev, rc_str_t name);

/** Looks up any attribute (core or extension) by name. Returns 0 and fills `out`, or -ENOENT
 *  when absent. */
int rc_event_get(const rc_event_t *ev, rc_str_t name, rc_ce_value_t *out);

/** As rc_event_get with a precomputed key. */
int rc_event_get_key(const rc_event_t *ev, const rc_ce_key_t *key, rc_ce_value_t *out);

/** Compares two events attribute by attribute, extensions in order, data byte-wise. */
bool rc_event_equal(const rc_event_t *a, const rc_event_t *b);

/** Copies every view of `src` into `arena` so `dst` no longer borrows the input. Returns 0 or
 *  -ENOMEM. `dst` may be `src`. */
int rc_event_copy(rc_event_t *dst, const rc_event_t *src, rc_arena_t *arena);

/** Compiles `name` into `key` (borrowing `name`). */
void rc_ce_key_init(rc_ce_key_t *key, rc_str_t name);

/** FNV-1a 32-bit hash of an attribute name; records store it for extension lookups. */
static inline uint32_t rc_ce_name_hash(rc_str_t name)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < name.len; i++)
        h = (h ^ (uint8_t)name.ptr[i]) * 16777619u;
    return h;
}

/** Core attribute slot of `name`, or -1 if `name` is not a core attribute. */
int rc_ce_attr_index(rc_str_t name);

/** Name of core attribute `attr` ("specversion", ...). */
const char *rc_ce_attr_name(rc_ce_attr_t attr);

/** Type of core attribute `attr` (source: URI-reference, dataschema: URI, time: timestamp,
 *  others string). */
rc_ce_type_t rc_ce_attr_type(rc_ce_attr_t attr);

/** Spec name of a type: "String", "Integer", "Boolean", "Binary", "URI", "URI-reference",
 *  "Timestamp"; "unknown" otherwise. */
const char *rc_ce_type_name(rc_ce_type_t type);

/** Parses a canonical CloudEvents Integer (optional '-', decimal, no leading zeros, 32-bit
 *  signed range). Returns 0 or -EINVAL. */
int rc_ce_int_parse(rc_str_t s, int32_t *out);

/** Writes the canonical form of `v` into `buf` (at least 12 bytes) with a NUL; returns its
 *  length. */
size_t rc_ce_int_format(int32_t v, char *buf);

/** Writes `unix_ns` (nanoseconds since the epoch, UTC) as RFC 3339 with nanoseconds and 'Z'
 *  ("2026-11-23T08:38:35.123456789Z") into `buf` (RC_CE_TIME_BUF bytes); returns the length. */
size_t rc_ce_time_format(int64_t unix_ns, char *buf);

/** knativebrokerttl of `ev`: 0 and `*ttl` set, -ENOENT when absent, RC_EINVALID_EVENT when it
 *  is not an integer. */
int rc_event_ttl_get(const rc_event_t *ev, int32_t *ttl);

/** Ingress step for an event from a producer: sets knativebrokerttl to RC_CE_TTL_DEFAULT
 *  (type Integer) when absent; keeps a present positive value (re-typed Integer). Returns 0,
 *  RC_ETTL_EXPIRED when it is 0 or negative, RC_EINVALID_EVENT (with `err`) when it is not an
 *  integer, -ENOMEM. The canonical string lives in `arena` when it had to be written. */
int rc_event_ttl_ingress(rc_event_t *ev, rc_arena_t *arena, rc_ce_error_t *err);

/** Reply step: a reply to an event whose TTL was `parent_ttl` gets `parent_ttl - 1`. Returns 0,
 *  RC_ETTL_EXPIRED when that is 0 or less (the reply must be dropped/rejected), -ENOMEM. */
int rc_event_ttl_reply(rc_event_t *reply, rc_arena_t *arena, int32_t parent_ttl);

/** Stamps knativearrivaltime (type Timestamp, RFC 3339 UTC, nanoseconds) with `unix_ns`,
 *  replacing any value the producer sent. The string is written into `arena`. Returns 0 or
 *  -ENOMEM. */
int rc_event_stamp_arrival(rc_event_t *ev, rc_arena_t *arena, int64_t unix_ns);

#ifdef __cplusplus
}
#endif

#endif
