/* CloudEvents HTTP protocol binding (1.0.2): content-mode classification, binary-mode decoding
 * from a request's headers and body, binary-mode writing of an event as header lines, the
 * percent-encoding of ce-* header values (binding 3.1.3.2), and one entry point that decodes any
 * request (binary, structured, batch) the ingress receives. */
#ifndef RC_CORE_CODEC_HTTP_H
#define RC_CORE_CODEC_HTTP_H

#include "core/arena.h"
#include "core/event.h"
#include "core/str.h"

#include <stddef.h>

/** One request header as the HTTP parser saw it. Names are matched case-insensitively. */
typedef struct {
    rc_str_t name;
    rc_str_t value;
} rc_http_header_t;

/** How a request carries its event(s), decided by Content-Type alone. */
typedef enum {
    RC_CE_MODE_BINARY = 0,     /* anything not application/cloudevents...; also no Content-Type */
    RC_CE_MODE_STRUCTURED = 1, /* application/cloudevents+json */
    RC_CE_MODE_BATCH = 2,      /* application/cloudevents-batch+json */
    RC_CE_MODE_UNSUPPORTED = 3 /* another cloudevents format (xml, avro, ...): answer 415 */
} rc_ce_mode_t;

/** Flags of the writers (here and in core/codec_json.h). */
enum {
    /** Leave out knativebrokerttl (Knative does not send it to subscribers). */
    RC_CE_WRITE_NO_TTL = 1u << 0,
};

/** Classifies a Content-Type value (parameters ignored, case-insensitive, surrounding blanks
 *  allowed). An absent or empty value is binary mode. Thread-safe. */
rc_ce_mode_t rc_ce_classify(rc_str_t content_type);

/** Decodes a binary-mode request: every `ce-` header (case-insensitive) is an attribute whose
 *  name is the lower-cased rest of the header name and whose value is percent-decoded; unknown
 *  ones become String extensions; Content-Type becomes datacontenttype; a non-empty body is
 *  the data. Other headers are ignored. Then validates the event (rc_event_validate).
 *
 *  Views in `ev` borrow `headers`' bytes and `body`; only values that needed decoding or
 *  lower-casing and the extension table are placed in `arena` (so a request without '%' and
 *  with an arena initial buffer performs no malloc). Returns 0; RC_EINVALID_EVENT with `err`
 *  filled (bad percent-encoding, duplicate ce- header, invalid attribute); -ENOMEM when the arena
 *  is exhausted. */
int rc_ce_decode_binary(const rc_http_header_t *headers, size_t count, rc_str_t body,
                        rc_arena_t *arena, rc_event_t *ev, rc_ce_error_t *err);

/** The mode of a request from its Content-Type header (the first one when there are several).
 *  Returns 0, or RC_EINVALID_EVENT with `err` filled when the request has more than one
 *  Content-Type (`*mode` is still set, from the first). Thread-safe. */
int rc_ce_request_mode(const rc_http_header_t *headers, size_t count, rc_ce_mode_t *mode,
                       rc_ce_error_t *err);

/** Decodes a request whose mode is already known (rc_ce_request_mode), as
 *  rc_ce_decode_request does after classifying. RC_EUNSUPPORTED_MEDIA for
 *  RC_CE_MODE_UNSUPPORTED. */
int rc_ce_decode_as(rc_ce_mode_t mode, const rc_http_header_t *headers, size_t count,
                    rc_str_t body, rc_arena_t *arena, size_t max_events, rc_event_t **events,
                    size_t *nevents, rc_ce_error_t *err);

/** Decodes any ingress request: classifies `Content-Type` (found in `headers`), then decodes
 *  binary, structured or batch mode. `*events` is set to an array of `*count` validated events
 *  in `arena` (one for binary and structured mode; 0..max_events for a batch). All-or-nothing:
 *  on any error no event is returned. Returns 0; RC_EUNSUPPORTED_MEDIA (415) for a cloudevents
 *  format other than JSON; RC_EINVALID_EVENT (400) with `err` (err->index set for batches);
 *  RC_ETOO_LARGE when a batch holds more than `max_events` events; -ENOMEM. */
int rc_ce_decode_request(const rc_http_header_t *headers, size_t count, rc_str_t body,
                         rc_arena_t *arena, size_t max_events, rc_event_t **events,
                         size_t *nevents, rc_ce_error_t *err);

/** Writes `ev` as binary-mode header lines ("ce-id: 42\r\n" ... values percent-encoded, then
 *  "Content-Type: <datacontenttype>\r\n" when present); the body to send is `ev->data`. Writes
 *  into `buf` (`cap` bytes, no NUL) and sets `*len` to the length the block needs. Returns 0,
 *  -ENOBUFS when `cap < *len` (call again with a larger buffer), -EINVAL (`*len` 0) when an
 *  extension name is not [a-z0-9]{1,20} or datacontenttype is not a media type (either could
 *  inject header lines; a validated event never fails). `flags`: RC_CE_WRITE_*. Thread-safe. */
int rc_ce_write_binary(const rc_event_t *ev, unsigned flags, char *buf, size_t cap, size_t *len);

/** Percent-decodes a header value (%XX, hex case-insensitive). Without '%' `*out` is `in`
 *  itself; otherwise the decoded bytes go to `arena`. Returns 0, -EINVAL for a malformed escape,
 *  -ENOMEM. (UTF-8 validity is checked by validation, not here.) */
int rc_ce_percent_decode(rc_str_t in, rc_arena_t *arena, rc_str_t *out);

/** Percent-encodes per binding 3.1.3.2: space, '"', '%' and every byte outside 0x21-0x7E become
 *  %XX (upper-case hex). Writes at most `cap` bytes and returns the encoded length. */
size_t rc_ce_percent_encode(rc_str_t in, char *buf, size_t cap);

#endif
