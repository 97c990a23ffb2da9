/* An HTTP/1.x response as the delivery client hands it to its callbacks, and the parser that
 * produces it: llhttp in response mode, collecting the status, the headers and a bounded body of
 * one response at a time. The response types and rc_http_response_header are public (callers of
 * net/http/http_client.h see them through it); the rc__http_parser_* functions are
 * folder-internal (net/http/). The types live here, with their producer, so that the client
 * includes the parser and never the other way round. http_response.c is the only client-side
 * file that includes llhttp.h. */
#ifndef RC_NET_HTTP_RESPONSE_H
#define RC_NET_HTTP_RESPONSE_H

#include <stddef.h>

/** One response header, borrowed: valid only during the callback. Not NUL-terminated. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rc_http_client_header_t;

/** A complete response, borrowed: valid only during the callback. */
typedef struct {
    int status;                             /**< 100..999 */
    const rc_http_client_header_t *headers; /**< in arrival order */
    size_t header_count;
    const char *body; /**< de-chunked; NUL-terminated for convenience (not counted) */
    size_t body_len;
    int body_truncated; /**< 1 when the body exceeded max_body (only the first bytes kept) */
} rc_http_response_t;

/** Case-insensitive lookup of a response header; NULL when absent. */
const rc_http_client_header_t *rc_http_response_header(const rc_http_response_t *resp,
                                                       const char *name);

typedef struct rc__http_parser_s rc__http_parser_t;

/** Allocates a parser that keeps at most `max_body` body bytes (more are counted and dropped)
 *  and fails responses whose status line and headers exceed `max_header_bytes`.
 *  @return 0 or -ENOMEM */
int rc__http_parser_create(size_t max_body, size_t max_header_bytes, rc__http_parser_t **out);

/** Frees a parser; NULL is a no-op. */
void rc__http_parser_destroy(rc__http_parser_t *p);

/** Prepares for the response to a new request (`head`: the request was HEAD, so no body). */
void rc__http_parser_reset(rc__http_parser_t *p, int head);

/** Feeds received bytes.
 *  @param consumed set to the bytes used when the response completes
 *  @return 0 need more, 1 complete, or RC_EHTTP_MALFORMED, RC_EHTTP_HEADERS_TOO_LARGE, -ENOMEM */
int rc__http_parser_feed(rc__http_parser_t *p, const char *data, size_t len, size_t *consumed);

/** Tells the parser the peer closed the connection.
 *  @return 1 when that completes the response (a body delimited by the close), RC_EHTTP_CLOSED
 *  when the response is incomplete, or an error */
int rc__http_parser_eof(rc__http_parser_t *p);

/** The parsed response after feed/eof returned 1; valid until the next reset. */
const rc_http_response_t *rc__http_parser_response(rc__http_parser_t *p);

/** After completion: whether the connection may carry another request. */
int rc__http_parser_keep_alive(const rc__http_parser_t *p);

#endif
