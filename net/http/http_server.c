/* The HTTP/1.x server: one listener, its connections and one sweep timer on a libuv loop. This
 * file holds the server itself: options and limits, the listening socket, the sweep timer,
 * drain and close. Connections (reading and parsing) are in http_server_conn.c, responses in
 * http_server_output.c; what they share is in http_server_internal.h. Deadlines (header, body,
 * idle, linger, drain) are checked by the sweep timer rather than one timer per connection. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http/http_server.h"
#include "net/http/http_server_internal.h"

void rc_http_limits_default(rc_http_limits_t *l)
{
    l->max_body_bytes = 1024 * 1024;
    l->max_header_bytes = 16 * 1024;
    l->max_headers = 100;
    l->max_connections = 10000;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->drain_timeout_ms = 5000;
    l->max_pending_out = 1024 * 1024;
    l->max_body_memory = 256u * 1024 * 1024;
    l->fd_reserve = 32;
    l->retry_after_s = 1;
}

int rc__http_server_refused(rc_http_server_t *s, rc_http_refusals_t *r, uint64_t *since)
{
    /* Relaxed throughout: counts and a time stamp that order nothing else. The exchange on
     * log_ms makes one server of those sharing `r` the one that logs. */
    uint64_t total = atomic_fetch_add_explicit(&r->total, 1, memory_order_relaxed) + 1;
    uint64_t now = uv_now(s->loop);
    uint64_t last = atomic_load_explicit(&r->log_ms, memory_order_relaxed);
    if (last != 0 && now < last + RC__HTTP_SERVER_REPORT_MS)
        return 0;
    if (!atomic_compare_exchange_strong_explicit(&r->log_ms, &last, now ? now : 1,
                                                 memory_order_relaxed, memory_order_relaxed))
        return 0;
    *since = total - atomic_exchange_explicit(&r->logged, total, memory_order_relaxed);
    return 1;
}

/* The soft RLIMIT_NOFILE; descriptors at or above it cannot exist. */
static uint64_t fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)rl.rlim_cur;
}

void rc__http_server_check_done(rc_http_server_t *s)
{
    if (s->draining && s->nconns == 0 && s->drain_done != NULL) {
        void (*done)(rc_http_server_t *, void *) = s->drain_done;
        s->drain_done = NULL;
        done(s, s->drain_arg);
    }
    if (s->closing && s->nconns == 0 && s->open_handles == 0) {
        void (*cb)(void *) = s->close_cb;
        void *arg = s->close_arg;
        free(s->out);
        free(s->req_headers);
        free(s);
        if (cb != NULL)
            cb(arg);
    }
}

static void on_srv_handle_closed(uv_handle_t *h)
{
    rc_http_server_t *s = h->data;
    s->open_handles--;
    rc__http_server_check_done(s);
}

static void on_sweep(uv_timer_t *t)
{
    rc_http_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    int force = s->draining && now >= s->drain_deadline;
    s->fd_limit = fd_limit(); /* an operator may change it at run time (prlimit) */
    for (rc__http_server_conn_t *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (force) {
            rc__http_server_conn_close(c);
            continue;
        }
        if (now < c->deadline || c->closing)
            continue;
        if (!c->reading && c->state != RC__HTTP_SERVER_LINGER) {
            rc__http_server_conn_close(c); /* paused for a client that did not read its answers */
            continue;
        }
        if (c->state == RC__HTTP_SERVER_HEADERS || c->state == RC__HTTP_SERVER_BODY) {
            if (c->stop || c->writes_in_flight > 0) {
                rc__http_server_conn_close(c); /* the client does not read what we answered */
                continue;
            }
            rc__http_server_reject(c, 408,
                                   c->state == RC__HTTP_SERVER_HEADERS
                                       ? "timed out reading request headers"
                                       : "timed out reading request body");
            rc__http_server_conn_flush(c);
        } else {
            rc__http_server_conn_close(c); /* idle keep-alive, or a lingering close that ran out */
        }
    }
}

static int make_listen_socket(const char *host, int port, int reuseport, int join, int *out_fd)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in6);
    } else {
        return -EINVAL;
    }
    int one = 1;
    int rc = 0;
    if (reuseport && !join && port != 0) {
        /* SO_REUSEPORT would let us share a port another process (same user) listens on and
         * split its traffic; a plain bind first proves the port is free. */
        int probe = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(probe, (struct sockaddr *)&ss, sl) != 0) {
            rc = -errno;
            close(probe);
            return rc;
        }
        close(probe);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *out_fd = fd;
    return 0;
}

/* Zero fields of the options' limits take the defaults. */
static void limits_with_defaults(rc_http_limits_t *lim, const rc_http_limits_t *given)
{
    rc_http_limits_t def;
    rc_http_limits_default(&def);
    *lim = *given;
#define RC_DEFAULT(f)                                                                              \
    if (lim->f == 0)                                                                               \
        lim->f = def.f;
    RC_DEFAULT(max_body_bytes)
    RC_DEFAULT(max_header_bytes)
    RC_DEFAULT(max_headers)
    RC_DEFAULT(max_connections)
    RC_DEFAULT(header_timeout_ms)
    RC_DEFAULT(body_timeout_ms)
    RC_DEFAULT(idle_timeout_ms)
    RC_DEFAULT(drain_timeout_ms)
    RC_DEFAULT(max_pending_out)
    RC_DEFAULT(max_body_memory)
    RC_DEFAULT(fd_reserve)
    RC_DEFAULT(retry_after_s)
#undef RC_DEFAULT
}

/* A quarter of the shortest request timeout, within 5 ms and 1 s: a deadline is noticed at
 * most that late, and a server with long timeouts does not wake up for nothing. */
static uint64_t sweep_interval_ms(const rc_http_limits_t *lim)
{
    uint32_t m = lim->header_timeout_ms;
    if (lim->body_timeout_ms < m)
        m = lim->body_timeout_ms;
    if (lim->idle_timeout_ms < m)
        m = lim->idle_timeout_ms;
    uint64_t tick = m / 4;
    return tick < 5 ? 5 : tick > 1000 ? 1000 : tick;
}

int rc_http_server_create(uv_loop_t *loop, const rc_http_server_options_t *opt,
                          rc_http_server_t **out)
{
    rc_http_server_t *s = NULL;
    int fd = -1;
    int rc = -EINVAL;
    if (opt->handler.on_request == NULL || opt->host == NULL)
        goto fail;
    rc = -ENOMEM;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail;
    limits_with_defaults(&s->lim, &opt->limits);
    s->h = opt->handler;
    s->loop = loop;
    s->name = opt->name != NULL ? opt->name : "http";
    s->sh = opt->shared != NULL ? opt->shared : &s->own_shared;
    s->fd_limit = fd_limit();
    snprintf(s->retry_after_line, sizeof(s->retry_after_line), "Retry-After: %u\r\n",
             s->lim.retry_after_s);
    s->req_headers = calloc(s->lim.max_headers, sizeof(rc_http_header_t));
    if (s->req_headers == NULL)
        goto fail;
    rc = make_listen_socket(opt->host, opt->port, opt->reuseport, opt->join, &fd);
    if (rc != 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->open_handles = 2;
    s->listener_open = 1;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, rc__http_server_accept);
    if (rc != 0) {
        if (uv_fileno((uv_handle_t *)&s->listener, &(uv_os_fd_t){0}) != 0)
            close(fd);
        /* The handles are registered now: the server is freed once the loop runs their close
         * callbacks, not here. */
        rc_http_server_close(s, NULL, NULL);
        s = NULL;
        goto fail;
    }
    uint64_t tick = sweep_interval_ms(&s->lim);
    uv_timer_start(&s->sweep, on_sweep, tick, tick);
    *out = s;
    return 0;

fail:
    if (s != NULL)
        free(s->req_headers);
    free(s);
    return rc;
}

int rc_http_server_port(const rc_http_server_t *s)
{
    return s->port;
}

size_t rc_http_server_connections(const rc_http_server_t *s)
{
    return s->nconns;
}

void rc_http_server_drain(rc_http_server_t *s, void (*done)(rc_http_server_t *s, void *arg),
                          void *arg)
{
    if (s->draining || s->closing)
        return;
    s->draining = 1;
    s->drain_deadline = uv_now(s->loop) + s->lim.drain_timeout_ms;
    s->drain_done = done;
    s->drain_arg = arg;
    if (s->listener_open) {
        s->listener_open = 0;
        uv_close((uv_handle_t *)&s->listener, on_srv_handle_closed);
    }
    for (rc__http_server_conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->deadline > s->drain_deadline)
            c->deadline = s->drain_deadline;
    }
    rc__http_server_check_done(s);
}

void rc_http_server_close(rc_http_server_t *s, void (*cb)(void *arg), void *arg)
{
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_arg = arg;
    s->drain_done = NULL;
    if (s->listener_open) {
        s->listener_open = 0;
        uv_close((uv_handle_t *)&s->listener, on_srv_handle_closed);
    }
    uv_close((uv_handle_t *)&s->sweep, on_srv_handle_closed);
    for (rc__http_server_conn_t *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        rc__http_server_conn_close(c);
    }
}
