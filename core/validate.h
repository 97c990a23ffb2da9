/* CloudEvents 1.0.2 validation (see ../shared/CONTRACTS.md, Ingress): the rules each attribute
 * must satisfy and the small parsers behind them (RFC 3339 timestamps, RFC 3986 URIs, RFC 2046
 * media types, UTF-8). Every rejection names the attribute and the rule in an rc_ce_error_t;
 * nothing here allocates or formats on the success path. */
#ifndef RC_CORE_VALIDATE_H
#define RC_CORE_VALIDATE_H

#include "core/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Checks `ev` against the spec: specversion "1.0"; id, source, type present and non-empty;
 *  source a URI-reference; dataschema an absolute URI; time RFC 3339; datacontenttype an
 *  RFC 2046 media type; subject non-empty when present; every string a valid UTF-8 sequence of
 *  allowed characters; extension names 1-20 chars of [a-z0-9], unique, not a core name nor
 *  "data"/"data_base64"; extension values valid for their type. Returns 0 or
 *  RC_EINVALID_EVENT with `err` (may be NULL) naming the attribute (err->index is left as is).
 *  Thread-safe, no allocation. */
int rc_event_validate(const rc_event_t *ev, rc_ce_error_t *err);

/** Checks that `value` is a valid canonical form of `type` (see rc_ce_type_t). Returns NULL
 *  when valid, otherwise the static rule text ("must be an RFC 3339 timestamp", ...). */
const char *rc_ce_check_value(rc_ce_type_t type, rc_str_t value);

/** Parses an RFC 3339 date-time ("2018-04-05T17:31:00Z", fractional seconds optional, offset
 *  'Z' or +hh:mm/-hh:mm; 'T'/'Z' case-insensitive) into seconds since the epoch (UTC) and
 *  nanoseconds (digits past 9 are ignored). Returns 0 or -EINVAL. */
int rc_ce_time_parse(rc_str_t s, int64_t *sec, uint32_t *nsec);

/** RFC 3986 absolute URI (scheme ":" hier-part, no fragment requirement). */
bool rc_ce_is_uri(rc_str_t s);

/** RFC 3986 URI-reference (absolute or relative; empty is not accepted here). */
bool rc_ce_is_uri_ref(rc_str_t s);

/** RFC 2046 media type: type "/" subtype (RFC 7230 tokens) with optional parameters
 *  (; name=token or quoted-string). */
bool rc_ce_is_media_type(rc_str_t s);

/** Whether a media type (datacontenttype) denotes JSON: application/json, text/json or any
 *  +json suffix, parameters ignored, case-insensitive. */
bool rc_ce_is_json_media_type(rc_str_t s);

/** Whether a media type is application/octet-stream (parameters allowed, case-insensitive): data
 *  of that type goes out as data_base64 in structured mode even when its bytes are UTF-8, as
 *  Dapr and the CloudEvents SDKs expect of binary data. */
bool rc_ce_is_binary_media_type(rc_str_t s);

/** Extension attribute name: 1-20 characters of [a-z0-9]. */
bool rc_ce_is_ext_name(rc_str_t s);

/** Valid UTF-8 (no overlongs, no surrogates) without control characters U+0000-U+001F,
 *  U+007F-U+009F: what the spec allows in a String. */
bool rc_ce_is_valid_string(rc_str_t s);

/** Valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF); controls allowed. */
bool rc_ce_is_utf8(rc_str_t s);

/** Renders `err` as "event 3: source: must be a non-empty URI-reference" (the "event N: "
 *  part only when index >= 0, the "field: " part only when field is non-empty; non-printable
 *  bytes of the field are shown as '?'). Writes at most `cap` bytes including the NUL and
 *  returns the length the full message needs (snprintf-like). */
size_t rc_ce_error_format(const rc_ce_error_t *err, char *buf, size_t cap);

#endif
