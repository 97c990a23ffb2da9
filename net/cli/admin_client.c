/* A small blocking HTTP/1.1 client for the admin API: enough for one request and its answer,
 * read until the broker closes the connection (the request says Connection: close). */
#include "net/cli/admin_client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/config.h"

/* Connects to the admin address "host:port". Returns the socket, or -1 with `err` set. */
static int connect_admin(const char *admin, int timeout_s, char *err, size_t errlen)
{
    char host[RC_CONFIG_ADDR_MAX], port[8];
    int p;
    if (rc_config_parse_addr(admin, host, sizeof(host), &p) != 0 || p <= 0 || p > 65535) {
        snprintf(err, errlen, "the admin address must be HOST:PORT, not '%s'", admin);
        return -1;
    }
    snprintf(port, sizeof(port), "%d", p);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve the admin host '%s': %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect too */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen,
                 "cannot reach the broker's admin API at %s: %s (is `ringcast serve` running? "
                 "give its admin address with --admin HOST:PORT or RINGCAST_ADMIN; it is "
                 "spec.admin in its config, %s by default)",
                 admin, strerror(e), DEFAULT_ADMIN);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rc__cli_admin_call(const char *admin, const char *method, const char *path, const char *token,
                       const char *body, size_t len, int timeout_s, int *status, char **resp,
                       char *err, size_t errlen)
{
    int fd = connect_admin(admin, timeout_s, err, errlen);
    if (fd < 0)
        return -1;
    char req[2048], auth[400] = "", clen[96] = "";
    if (token != NULL)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %.300s\r\n", token);
    if (body != NULL)
        snprintf(clen, sizeof(clen), "Content-Type: application/yaml\r\nContent-Length: %zu\r\n",
                 len);
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n%s%s"
                     "Connection: close\r\n\r\n",
                     method, path, admin, auth, clen);
    size_t cap = 16384, got = 0;
    char *buf = malloc(cap);
    int rc = -1;
    if (buf == NULL || n <= 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n) != 0 ||
        (body != NULL && send_all(fd, body, len) != 0)) {
        /* A broker that refuses a body (413) may close before reading all of it: its answer
         * is still worth reading. */
        if (buf == NULL || n <= 0 || (size_t)n >= sizeof(req) || errno != EPIPE) {
            snprintf(err, errlen, "cannot send the request to %s: %s", admin, strerror(errno));
            goto out;
        }
    }
    for (;;) {
        if (got + 1 >= cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                snprintf(err, errlen, "the answer of %s is too large", admin);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET && got > 0)
            break;
        if (r < 0) {
            snprintf(err, errlen, "reading the answer of %s: %s", admin,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    char *head_end = strstr(buf, "\r\n\r\n");
    if (head_end == NULL || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        snprintf(err, errlen, "%s did not answer HTTP", admin);
        goto out;
    }
    head_end += 4;
    memmove(buf, head_end, got - (size_t)(head_end - buf) + 1);
    *resp = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
