/* The grammar of subscriber and dead-letter URIs (config_uri.h). Every rejection is a phrase
 * that names the part that is wrong; none quotes the URI itself, so a caller decides how much of
 * it to show and shows it through rc_config_uri_redact. */
#include "core/config_uri.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"

/* Longest HOST[:PORT]: the longest name plus ":65535", with room for brackets. */
#define AUTHORITY_MAX (RC_CONFIG_URI_HOST_MAX + 8)

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t why_len, const char *fmt,
                                                     ...)
{
    if (why != NULL && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return RC_ECONFIG;
}

/* A name as DNS and /etc/hosts know it: labels of letters, digits, '-' and '_' (service
 * records and some internal names use it) separated by single dots, one trailing dot allowed.
 * Anything else (percent-escapes, non-ASCII) would be looked up as something other than what
 * was written, so it is refused here rather than failing at the first delivery. */
static int valid_name(const char *h)
{
    size_t label = 0;
    for (const char *p = h; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        if (++label > 63)
            return 0;
    }
    return h[0] != '\0';
}

/* The port after ':' (`s`, `len` bytes): 1-65535, at most five digits so that the Host header
 * stays as short as the port it names. */
static int parse_port(const char *s, size_t len, uint16_t *out, char *why, size_t why_len)
{
    if (len == 0)
        return bad(why, why_len,
                   "empty port after ':' (write a port, or leave out the ':' for 80)");
    unsigned port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return bad(why, why_len, "the port must be a number");
        if (i >= 5)
            return bad(why, why_len, "the port must be 1-65535");
        port = port * 10 + (unsigned)(s[i] - '0');
    }
    if (port == 0 || port > 65535)
        return bad(why, why_len, "the port must be 1-65535");
    *out = (uint16_t)port;
    return 0;
}

/* HOST[:PORT] at `auth` (`len` bytes, no '@'). */
static int parse_authority(const char *auth, size_t len, rc_config_uri_t *out, char *why,
                           size_t why_len)
{
    const char *end = auth + len, *port = NULL;
    const char *host = auth;
    size_t host_len;
    if (len == 0)
        return bad(why, why_len, "missing host");
    if (len > AUTHORITY_MAX)
        return bad(why, why_len, "host and port longer than %d characters", AUTHORITY_MAX);
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', len);
        if (close == NULL)
            return bad(why, why_len, "unterminated '[' in the IPv6 address");
        host = auth + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < end && close[1] != ':')
            return bad(why, why_len, "unexpected '%c' after the IPv6 address", close[1]);
        if (close + 1 < end)
            port = close + 2;
        out->host_kind = RC_CONFIG_HOST_IPV6;
    } else {
        const char *colon = memchr(auth, ':', len);
        host_len = colon != NULL ? (size_t)(colon - auth) : len;
        if (colon != NULL)
            port = colon + 1;
        out->host_kind = RC_CONFIG_HOST_NAME;
    }
    if (host_len == 0)
        return bad(why, why_len, "missing host");
    if (host_len > RC_CONFIG_URI_HOST_MAX)
        return bad(why, why_len, "the host is longer than %d characters", RC_CONFIG_URI_HOST_MAX);
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = 80;
    if (port != NULL && parse_port(port, (size_t)(end - port), &out->port, why, why_len) != 0)
        return RC_ECONFIG;

    unsigned char addr[sizeof(struct in6_addr)];
    if (out->host_kind == RC_CONFIG_HOST_IPV6) {
        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return bad(why, why_len, "\"%s\" is not an IPv6 address", out->host);
    } else if (inet_pton(AF_INET, out->host, addr) == 1) {
        out->host_kind = RC_CONFIG_HOST_IPV4;
    } else if (!valid_name(out->host)) {
        return bad(why, why_len,
                   "\"%s\" is neither an IP address nor a host name (letters, digits, '-', '_' "
                   "and dots)",
                   out->host);
    }
    return 0;
}

int rc_config_uri_parse(const char *uri, rc_config_uri_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (uri == NULL || uri[0] == '\0')
        return bad(why, why_len, "empty");
    for (const char *p = uri; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return bad(why, why_len, "contains a space or control character at offset %zu",
                       (size_t)(p - uri));
    }
    if (strncasecmp(uri, "https://", 8) == 0)
        return bad(why, why_len, "https is not supported (use http://)");
    if (strncasecmp(uri, "http://", 7) != 0)
        return bad(why, why_len,
                   "the scheme must be http:// (an absolute URI such as "
                   "http://127.0.0.1:8080/events)");

    const char *auth = uri + 7;
    size_t auth_len = strcspn(auth, "/?#");
    /* Checked before anything else of the authority so that no later message can quote a
     * password as part of a host or a port. */
    if (memchr(auth, '@', auth_len) != NULL)
        return bad(why, why_len,
                   "user information (user:password@) is not supported: ringcast sends no "
                   "credentials (use an address that needs none, or a local proxy that adds "
                   "them)");
    int rc = parse_authority(auth, auth_len, out, why, why_len);
    if (rc != 0)
        return rc;
    out->authority_off = 7;
    out->authority_len = auth_len;

    const char *target = auth + auth_len;
    size_t target_len = strcspn(target, "#");
    if (target_len > 0 && target[0] == '?')
        /* "http://h?x" has an empty path; HTTP needs "/?x", which the client cannot borrow. */
        return bad(why, why_len, "a query needs a path (write /?...)");
    out->target_off = (size_t)(target - uri);
    out->target_len = target_len;
    return 0;
}

const char *rc_config_uri_redact(const char *uri, char *out, size_t out_len)
{
    if (out_len == 0)
        return out;
    const char *sep = strstr(uri, "://");
    const char *auth = sep != NULL ? sep + 3 : uri;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++) {
        if (*p == '@')
            at = p;
    }
    if (at == NULL)
        snprintf(out, out_len, "%s", uri);
    else
        snprintf(out, out_len, "%.*s***%s", (int)(auth - uri), uri, at);
    return out;
}
