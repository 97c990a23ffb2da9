/* The delivery client's response parser: llhttp in response mode, collecting the status, the
 * headers and a bounded body of one response at a time. Folder-internal (net/). This file and
 * its .c are the only client-side users of llhttp.h. */
#ifndef RC_NET_HTTP_RESPONSE_H
#define RC_NET_HTTP_RESPONSE_H

#include <stddef.h>

#include "net/http/http_client.h"

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
