/* Subscriber URLs: `http://host[:port][/path][?query]` parsed into a socket address, the Host
 * header value and the request target. */
#ifndef RC_NET_HTTP_URL_H
#define RC_NET_HTTP_URL_H

#include <stddef.h>
#include <sys/socket.h>

#define RC_HTTP_AUTHORITY_MAX 300

typedef struct {
    struct sockaddr_storage addr; /**< IPv4 or IPv6, port set */
    socklen_t addrlen;
    char authority[RC_HTTP_AUTHORITY_MAX]; /**< host[:port] as written: the Host header */
    const char *target; /**< path and query, borrowed from the URL ("/" when empty: then it
                             points at a static string) */
    size_t target_len;
} rc_http_url_t;

/** Parses `url`. The scheme must be http (case-insensitive); the host is an IPv4 literal, a
 *  bracketed IPv6 literal, or a name resolved with getaddrinfo (blocking; first address).
 *  Userinfo, spaces and control characters are rejected; a fragment is dropped.
 *  @param err if not NULL, receives a message naming the problem on failure
 *  @return 0 or RC_EHTTP_BAD_URL */
int rc_http_url_parse(const char *url, rc_http_url_t *out, char *err, size_t errlen);

#endif
