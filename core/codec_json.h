/* CloudEvents JSON event format (1.0.2): structured mode (application/cloudevents+json) and
 * batch mode (application/cloudevents-batch+json), decoding with cJSON, and writing an event as
 * structured JSON.
 *
 * Data mapping. Decoding: `data_base64` gives the decoded bytes; `data` gives its JSON text,
 * exactly as written in the input, when datacontenttype is absent or JSON (application/json,
 * text/json, +json), and the string's contents when datacontenttype is something else and
 * `data` is a JSON string. Writing is the inverse: JSON content (absent or JSON datacontenttype)
 * that is valid JSON goes to `data` verbatim, other UTF-8 text to `data` as a string, anything
 * else to `data_base64`. Extensions: JSON strings decode as String, integral numbers as Integer
 * (32-bit), booleans as Boolean; writing emits Integer and Boolean as JSON numbers/booleans and
 * everything else as strings. `null` members count as absent. */
#ifndef RC_CORE_CODEC_JSON_H
#define RC_CORE_CODEC_JSON_H

#include "core/arena.h"
#include "core/event.h"
#include "core/str.h"

#include <stddef.h>

/** Decodes and validates one structured-mode event. Attribute strings are copied into `arena`;
 *  JSON `data` text borrows `body` (it is the exact input slice). Returns 0;
 *  RC_EINVALID_EVENT with `err` (malformed JSON, not an object, duplicate member, wrong member
 *  type, both data and data_base64, invalid attribute); -ENOMEM. */
int rc_ce_decode_structured(rc_str_t body, rc_arena_t *arena, rc_event_t *ev, rc_ce_error_t *err);

/** Decodes and validates a batch (a JSON array of structured events). All-or-nothing: returns 0
 *  with `*events` an array of `*count` events in `arena` (an empty array gives 0 events), or an
 *  error and no events: RC_EINVALID_EVENT with `err` (err->index = offending element, -1 when the
 *  body is not a JSON array); RC_ETOO_LARGE when it holds more than `max_events`; -ENOMEM. Views
 *  borrow `body` and `arena`. */
int rc_ce_decode_batch(rc_str_t body, rc_arena_t *arena, size_t max_events, rc_event_t **events,
                       size_t *count, rc_ce_error_t *err);

/** Writes `ev` as one compact structured-mode JSON object (no newline) into `buf` (`cap`
 *  bytes, no NUL) and sets `*len` to the length it needs. Returns 0, -ENOBUFS when
 *  `cap < *len`, -EINVAL (`*len` 0) when an attribute string is not UTF-8 or an Integer/Boolean
 *  extension does not hold a canonical value (a validated event never fails). `flags`:
 *  RC_CE_WRITE_* from core/codec_http.h. Thread-safe. */
int rc_ce_write_structured(const rc_event_t *ev, unsigned flags, char *buf, size_t cap,
                           size_t *len);

/* Scanning JSON text that is not an event (the Dapr bulk publish body, a CloudEvent that needs
 * defaults before it can be decoded), with the same strict parser: values keep their exact
 * text, so numbers and nesting pass through unchanged. */

/** Skips the whitespace at s.ptr[*pos], scans one JSON value (RFC 8259; nesting up to 256) and
 *  the whitespace after it. Sets `*value` to the value's exact text and advances `*pos` past the
 *  whitespace. Returns 0, or RC_EPARSE (malformed, or nothing but whitespace left). UTF-8 is not
 *  checked (rc_ce_is_utf8 on the whole text does it once). No allocation; thread-safe. */
int rc_json_scan(rc_str_t s, size_t *pos, rc_str_t *value);

/** The contents of string literal `lit` (quotes included, as rc_json_scan returns it): a view
 *  into `lit` when it has no escapes, else unescaped into `arena`. Returns 0, RC_EPARSE (not a
 *  string literal, or a lone surrogate escape), -ENOMEM. */
int rc_json_string(rc_str_t lit, rc_arena_t *arena, rc_str_t *out);

#endif
