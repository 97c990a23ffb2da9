/* Subscriber URLs: `http://host[:port][/path][?query]` parsed into a socket address, the Host
 * header value and the request target (the grammar is core/config_uri.h, shared with the config
 * loader), and the check that a config's host names resolve. */
#ifndef RC_NET_HTTP_URL_H
#define RC_NET_HTTP_URL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

#define RC_HTTP_AUTHORITY_MAX 300

typedef struct {
    struct sockaddr_storage addr; /**< IPv4 or IPv6, port set */
    socklen_t addrlen;
    char authority[RC_HTTP_AUTHORITY_MAX]; /**< host[:port] as written: the Host header */
    const char *target; /**< path and query, borrowed from the URL ("/" when empty: then it
                             points at a static string) */
    size_t target_len;
} rc_http_url_t;

/** Parses `url` (rc_config_uri_parse). The scheme must be http (case-insensitive); the host is
 *  an IPv4 literal, a bracketed IPv6 literal, or a name resolved with getaddrinfo (blocking;
 *  first address). Userinfo, spaces and control characters are rejected; a fragment is dropped.
 *  @param err if not NULL, receives a message naming the problem on failure; it shows the URL
 *         with any user information masked (rc_config_uri_redact)
 *  @return 0 or RC_EHTTP_BAD_URL */
int rc_http_url_parse(const char *url, rc_http_url_t *out, char *err, size_t errlen);

/** How long `ringcast serve` and a SIGHUP reload wait for the host names of a config. */
#define RC_HTTP_RESOLVE_TIMEOUT_MS 5000u

/** Checks that the host of every subscriber and dead-letter URI of `cfg` resolves: each
 *  distinct name is looked up once (getaddrinfo, the worker's own question), on up to 8 threads
 *  at a time, and the caller waits for all of them together at most `timeout_ms`; IP literals
 *  need no lookup (a config with only those returns at once, starting no thread). A lookup still
 *  running when the time is up finishes on its detached thread, which then frees what it used.
 *  @param err receives, for the URI that comes first in the file among those that fail,
 *         "FILE:LINE: Trigger NS/NAME: host \"HOST\" in 'spec.subscriber.uri' does not resolve
 *         (REASON)" or "... did not resolve within N ms"
 *  @return 0, RC_ECONFIG, -EAGAIN (the lookups could not be started) or -ENOMEM, each with a
 *          message in `err`. Blocks; setup and reload paths only, any thread. */
int rc_http_url_check_hosts(const rc_config_t *cfg, uint32_t timeout_ms, char *err, size_t errlen);

#endif
