/* The URIs ringcast sends events to (a Trigger's spec.subscriber.uri, a deadLetterSink.uri):
 *
 *   http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]
 *
 * HOST is a name, an IPv4 literal or a bracketed IPv6 literal; PORT is 1-65535 (80 when left
 * out). User information (`user:password@`) is refused: ringcast sends no credentials, and a URI
 * that carries a password would put it in logs and in the knativeerrordest extension of
 * dead-lettered events. This is the one grammar for those URIs: the config loader refuses a URI
 * it does not accept (at load, with file and line) and the HTTP client (net/http/http_url.c)
 * parses with it before it resolves the host, so a URI that loads is one the client can send to.
 * Pure string work: no name lookups, no allocation. */
#ifndef RC_CORE_CONFIG_URI_H
#define RC_CORE_CONFIG_URI_H

#include <stddef.h>
#include <stdint.h>

/** Longest host name (DNS: 253 characters, without a trailing dot). */
#define RC_CONFIG_URI_HOST_MAX 253

typedef enum {
    RC_CONFIG_HOST_NAME = 0, /**< looked up by the caller (getaddrinfo) */
    RC_CONFIG_HOST_IPV4 = 4, /**< dotted-quad literal: no lookup */
    RC_CONFIG_HOST_IPV6 = 6, /**< bracketed literal: no lookup */
} rc_config_host_kind_t;

/** A URI split into its parts. Offsets are into the parsed string, which the caller keeps. */
typedef struct {
    char host[RC_CONFIG_URI_HOST_MAX + 1]; /**< without brackets, NUL-terminated */
    rc_config_host_kind_t host_kind;
    uint16_t port;        /**< 80 when the URI has none */
    size_t authority_off; /**< HOST[:PORT] as written (the Host header) */
    size_t authority_len;
    size_t target_off; /**< path and query, fragment dropped; length 0 means "/" */
    size_t target_len;
} rc_config_uri_t;

/** Splits `uri` (NUL-terminated). The scheme is compared case-insensitively; a name host is
 *  checked for its characters only (letters, digits, '-', '_', '.'), not looked up.
 *  @param why if not NULL, receives what is wrong on failure, as a phrase to put after the
 *         field's name ("empty port after ':' ..."); it never quotes user information
 *  @return 0 and `*out`, or RC_ECONFIG. Any thread. */
int rc_config_uri_parse(const char *uri, rc_config_uri_t *out, char *why, size_t why_len);

/** Copies `uri` into `out` (truncated to fit, always NUL-terminated when out_len > 0) with any
 *  user information replaced by "***", so that messages and logs can show a URI safely: the
 *  part of the authority (after "://", or from the start when there is no "://", up to the
 *  first '/', '?' or '#') before its last '@'. Returns `out`. Any thread. */
const char *rc_config_uri_redact(const char *uri, char *out, size_t out_len);

#endif
