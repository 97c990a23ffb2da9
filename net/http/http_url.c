#include "net/http/http_url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"

__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen, const char *url,
                                                     const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        char why[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        size_t n = strlen(url);
        snprintf(err, errlen, "invalid URL \"%.*s%s\": %s", n > 80 ? 80 : (int)n, url,
                 n > 80 ? "..." : "", why);
    }
    return RC_EHTTP_BAD_URL;
}

int rc_http_url_parse(const char *url, rc_http_url_t *out, char *err, size_t errlen)
{
    if (url == NULL)
        return bad(err, errlen, "", "empty");
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return bad(err, errlen, url, "contains a space or control character at offset %zu",
                       (size_t)(p - url));
    }
    if (strncasecmp(url, "https://", 8) == 0)
        return bad(err, errlen, url, "https is not supported (use http)");
    if (strncasecmp(url, "http://", 7) != 0)
        return bad(err, errlen, url, "the scheme must be http://");

    const char *auth = url + 7;
    const char *auth_end = auth + strcspn(auth, "/?#");
    size_t auth_len = (size_t)(auth_end - auth);
    if (memchr(auth, '@', auth_len) != NULL)
        return bad(err, errlen, url, "user information (user@host) is not supported");
    if (auth_len == 0)
        return bad(err, errlen, url, "missing host");
    if (auth_len >= RC_HTTP_AUTHORITY_MAX)
        return bad(err, errlen, url, "host and port longer than %d characters",
                   RC_HTTP_AUTHORITY_MAX - 1);

    char host[RC_HTTP_AUTHORITY_MAX];
    const char *port_str = NULL;
    size_t port_len = 0;
    int v6 = 0;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', auth_len);
        if (close == NULL)
            return bad(err, errlen, url, "unterminated '[' in the IPv6 address");
        size_t hl = (size_t)(close - auth - 1);
        memcpy(host, auth + 1, hl);
        host[hl] = '\0';
        v6 = 1;
        const char *after = close + 1;
        if (after < auth_end) {
            if (*after != ':')
                return bad(err, errlen, url, "unexpected '%c' after the IPv6 address", *after);
            port_str = after + 1;
            port_len = (size_t)(auth_end - port_str);
        }
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        size_t hl = colon != NULL ? (size_t)(colon - auth) : auth_len;
        memcpy(host, auth, hl);
        host[hl] = '\0';
        if (colon != NULL) {
            port_str = colon + 1;
            port_len = (size_t)(auth_end - port_str);
        }
    }
    if (host[0] == '\0')
        return bad(err, errlen, url, "missing host");

    unsigned port = 80;
    if (port_str != NULL) {
        if (port_len == 0)
            return bad(err, errlen, url, "empty port after ':'");
        port = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port_str[i] < '0' || port_str[i] > '9')
                return bad(err, errlen, url, "the port must be a number");
            port = port * 10 + (unsigned)(port_str[i] - '0');
            if (port > 65535)
                return bad(err, errlen, url, "the port must be 1-65535");
        }
        if (port == 0)
            return bad(err, errlen, url, "the port must be 1-65535");
    }

    memset(&out->addr, 0, sizeof(out->addr));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
    if (v6) {
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return bad(err, errlen, url, "\"%s\" is not an IPv6 address", host);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->addrlen = sizeof(*sin6);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->addrlen = sizeof(*sin);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, NULL, &hints, &res);
        if (gai != 0 || res == NULL)
            return bad(err, errlen, url, "cannot resolve host \"%s\": %s", host,
                       gai != 0 ? gai_strerror(gai) : "no address");
        memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
        out->addrlen = res->ai_addrlen;
        if (res->ai_family == AF_INET6)
            sin6->sin6_port = htons((uint16_t)port);
        else
            sin->sin_port = htons((uint16_t)port);
        freeaddrinfo(res);
    }

    memcpy(out->authority, auth, auth_len);
    out->authority[auth_len] = '\0';
    const char *target = auth_end;
    size_t target_len = strcspn(target, "#");
    if (target_len == 0) {
        out->target = "/";
        out->target_len = 1;
    } else if (target[0] == '?') {
        /* "http://h?x" has an empty path; HTTP needs "/?x", which the caller cannot borrow. */
        return bad(err, errlen, url, "a query needs a path (write /?...)");
    } else {
        out->target = target;
        out->target_len = target_len;
    }
    return 0;
}
