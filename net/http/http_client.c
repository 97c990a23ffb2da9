/* The delivery client's state machine: endpoints and pools, request dispatch, connection
 * lifecycles, keep-alive reuse and the retry of a request that met a stale keep-alive
 * connection. Bytes move in the back-ends (http_client_uring.c, http_client_epoll.c). */
#include "net/http/http_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "net/http/http_client_internal.h"
#include "net/http/http_url.h"

int64_t rc__http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rc_http_client_opts_init(rc_http_client_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->backend = RC_HTTP_BACKEND_AUTO;
    opts->max_conns_per_host = 64;
    opts->ring_entries = 256;
    opts->timeout_ms = 30000;
    opts->idle_timeout_ms = 4000;
    opts->max_body = 1024 * 1024;
    opts->max_header_bytes = 16 * 1024;
}

/* --- creation ---------------------------------------------------------------------------- */

static int start_backend(rc_http_client_t *c, rc_http_backend_t kind)
{
    c->kind = kind;
    c->be = kind == RC_HTTP_BACKEND_URING ? &rc__http_uring_ops : &rc__http_epoll_ops;
    return c->be->init(c);
}

int rc_http_client_create(const rc_http_client_opts_t *opts, rc_http_client_t **out)
{
    rc_http_client_opts_t defaults;
    if (opts == NULL) {
        rc_http_client_opts_init(&defaults);
        opts = &defaults;
    }
    if (opts->max_conns_per_host == 0 || opts->ring_entries < 8 || opts->timeout_ms == 0 ||
        opts->max_header_bytes < 64 || opts->max_header_bytes > UINT32_MAX ||
        opts->max_body > SIZE_MAX / 2)
        return -EINVAL;

    rc_http_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->opts = *opts;
    c->fd = -1;
    c->wake_fd = -1;

    rc_http_backend_t kind = opts->backend;
    if (kind == RC_HTTP_BACKEND_AUTO) {
        const char *env = getenv(RC_HTTP_BACKEND_ENV);
        if (env != NULL && strcmp(env, "epoll") == 0)
            kind = RC_HTTP_BACKEND_EPOLL;
        else if (env != NULL && strcmp(env, "uring") == 0)
            kind = RC_HTTP_BACKEND_URING;
    }
    int rc;
    if (kind == RC_HTTP_BACKEND_AUTO) {
        rc = start_backend(c, RC_HTTP_BACKEND_URING);
        if (rc < 0) {
            /* Reported once per process: a worker restarts many clients over its life. */
            static int reported;
            if (!reported) {
                reported = 1;
                rc_log_warn("http", "io_uring unavailable (%s); delivery uses the epoll fallback",
                            rc_strerror(rc));
            }
            rc = start_backend(c, RC_HTTP_BACKEND_EPOLL);
        }
    } else {
        rc = start_backend(c, kind);
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

rc_http_backend_t rc_http_client_backend(const rc_http_client_t *client)
{
    return client->kind;
}

int rc_http_client_fd(const rc_http_client_t *client)
{
    return client->fd;
}

int rc_http_client_wake(rc_http_client_t *client)
{
    uint64_t one = 1;
    if (client->wake_fd < 0)
        return -EBADF;
    /* An eventfd adds up what is written; the reader's one read resets it. */
    if (write(client->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        return -errno;
    return 0;
}

int rc_http_client_wake_on_futex(rc_http_client_t *client, const uint32_t *word, uint32_t val)
{
    if (client->destroying)
        return -ECANCELED;
    if (client->be->wait_futex == NULL)
        return -ENOTSUP;
    return client->be->wait_futex(client, word, val);
}

size_t rc_http_client_pending(const rc_http_client_t *client)
{
    return client->pending;
}

/* --- endpoints and pools ----------------------------------------------------------------- */

static int same_addr(const rc__http_pool_t *p, const rc_http_url_t *u)
{
    return p->addrlen == u->addrlen && memcmp(&p->addr, &u->addr, u->addrlen) == 0;
}

int rc_http_client_endpoint(rc_http_client_t *c, const char *url, rc_http_endpoint_t **out,
                            char *err, size_t errlen)
{
    for (rc_http_endpoint_t *ep = c->endpoints; ep != NULL; ep = ep->next) {
        if (strcmp(ep->url, url) == 0) {
            *out = ep;
            return 0;
        }
    }
    rc_http_url_t u;
    int rc = rc_http_url_parse(url, &u, err, errlen);
    if (rc < 0)
        return rc;

    rc__http_pool_t *pool = c->pools;
    while (pool != NULL && !same_addr(pool, &u))
        pool = pool->next;
    int new_pool = pool == NULL;
    if (new_pool) {
        pool = calloc(1, sizeof(*pool));
        if (pool == NULL)
            goto nomem;
        memcpy(&pool->addr, &u.addr, u.addrlen);
        pool->addrlen = u.addrlen;
    }
    rc_http_endpoint_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        goto nomem_pool;
    ep->url = strdup(url);
    size_t cap = u.target_len + strlen(u.authority) + 32;
    ep->line_rest = malloc(cap);
    if (ep->url == NULL || ep->line_rest == NULL)
        goto nomem_ep;
    ep->line_rest_len = (size_t)snprintf(ep->line_rest, cap, " %.*s HTTP/1.1\r\nHost: %s\r\n",
                                         (int)u.target_len, u.target, u.authority);
    ep->pool = pool;
    if (new_pool) {
        pool->next = c->pools;
        c->pools = pool;
    }
    ep->next = c->endpoints;
    c->endpoints = ep;
    *out = ep;
    return 0;

nomem_ep:
    free(ep->url);
    free(ep->line_rest);
    free(ep);
nomem_pool:
    if (new_pool)
        free(pool);
nomem:
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/* --- requests ---------------------------------------------------------------------------- */

static void finish_req(rc_http_client_t *c, rc__http_req_t *req, int result,
                       const rc_http_response_t *resp)
{
    rc_http_cb cb = req->cb;
    void *ud = req->userdata;
    req->next = c->free_reqs;
    c->free_reqs = req;
    c->pending--;
    c->callbacks++;
    cb(result, resp, ud);
}

static void queue_push(rc__http_pool_t *pool, rc__http_req_t *req, int front)
{
    if (front) {
        req->next = pool->qhead;
        pool->qhead = req;
        if (pool->qtail == NULL)
            pool->qtail = req;
    } else {
        req->next = NULL;
        if (pool->qtail != NULL)
            pool->qtail->next = req;
        else
            pool->qhead = req;
        pool->qtail = req;
    }
}

static rc__http_req_t *queue_pop(rc__http_pool_t *pool)
{
    rc__http_req_t *req = pool->qhead;
    if (req != NULL) {
        pool->qhead = req->next;
        if (pool->qhead == NULL)
            pool->qtail = NULL;
        req->next = NULL;
    }
    return req;
}

/* Puts `req` on `conn` and starts sending it together with a receive for the response, so
 * that both go to the kernel in the same submission. */
static void start_exchange(rc_http_client_t *c, rc__http_conn_t *conn, rc__http_req_t *req)
{
    conn->req = req;
    conn->state = RC__CONN_ACTIVE;
    conn->deadline_ns = req->deadline_ns;
    conn->received = 0;
    conn->send_done = 0;
    conn->resp_done = 0;
    conn->reusable = 0;
    conn->retry_req = 0;
    conn->fail_err = 0;
    rc__http_parser_reset(conn->parser, req->head);
    conn->send_pending = 1;
    c->be->send(c, conn);
    conn->recv_pending = 1;
    c->be->recv(c, conn);
}

static void conn_unlink(rc_http_client_t *c, rc__http_conn_t *conn)
{
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->next = c->graveyard;
    conn->prev = NULL;
    c->graveyard = conn;
}

static void conn_free(rc__http_conn_t *conn)
{
    rc__http_parser_destroy(conn->parser);
    free(conn->rbuf);
    free(conn);
}

static int open_conn(rc_http_client_t *c, rc__http_pool_t *pool, rc__http_req_t *req)
{
    rc__http_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return -ENOMEM;
    conn->rbuf = malloc(RC__HTTP_RBUF_SIZE);
    int rc = rc__http_parser_create(c->opts.max_body, c->opts.max_header_bytes, &conn->parser);
    if (conn->rbuf == NULL || rc < 0) {
        conn_free(conn);
        return -ENOMEM;
    }
    conn->fd = socket(pool->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0) {
        rc = -errno;
        conn_free(conn);
        return rc;
    }
    int one = 1;
    /* Requests are written in one piece; Nagle would only delay the next one on the connection. */
    (void)setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn->client = c;
    conn->pool = pool;
    conn->state = RC__CONN_CONNECTING;
    conn->req = req;
    conn->deadline_ns = req->deadline_ns;
    conn->next = c->conns;
    if (c->conns != NULL)
        c->conns->prev = conn;
    c->conns = conn;
    pool->nconns++;
    conn->connect_pending = 1;
    c->be->connect(c, conn);
    return 0;
}

static void close_idle(rc_http_client_t *c, rc__http_conn_t *conn)
{
    c->be->close(c, conn);
    conn->pool->nconns--;
    conn_unlink(c, conn);
}

/* Starts `req` on an idle connection, a new one, or queues it. Returns an error only when a
 * connection could not even be created (the caller then owns the failure). */
static int dispatch(rc_http_client_t *c, rc__http_req_t *req, int front)
{
    rc__http_pool_t *pool = req->pool;
    int64_t now = rc__http_now_ns();
    int64_t max_idle = (int64_t)c->opts.idle_timeout_ms * 1000000;
    while (pool->idle != NULL && !req->retried) {
        rc__http_conn_t *conn = pool->idle;
        pool->idle = conn->idle_next;
        conn->idle_next = NULL;
        if (now - conn->idle_since_ns > max_idle) {
            /* Servers close idle connections on their own schedule; do not race them. */
            close_idle(c, conn);
            continue;
        }
        start_exchange(c, conn, req);
        return 0;
    }
    if (pool->nconns < c->opts.max_conns_per_host)
        return open_conn(c, pool, req);
    if (req->retried && pool->idle != NULL) {
        /* A retry wants a fresh connection: make room by closing an idle one. */
        rc__http_conn_t *conn = pool->idle;
        pool->idle = conn->idle_next;
        close_idle(c, conn);
        return open_conn(c, pool, req);
    }
    queue_push(pool, req, front);
    return 0;
}

/* Starts queued requests while the pool has room. Runs inside rc_http_client_run only. */
static void pump(rc_http_client_t *c, rc__http_pool_t *pool)
{
    while (pool->qhead != NULL &&
           (pool->idle != NULL || pool->nconns < c->opts.max_conns_per_host)) {
        rc__http_req_t *req = queue_pop(pool);
        int rc = dispatch(c, req, 1);
        if (rc < 0)
            finish_req(c, req, rc, NULL);
    }
}

int rc_http_client_request(rc_http_client_t *c, const rc_http_request_t *r, rc_http_cb cb,
                           void *userdata)
{
    if (c->destroying)
        return -ECANCELED;
    if (r == NULL || r->endpoint == NULL || cb == NULL || r->body_iovcnt < 0 ||
        r->body_iovcnt > RC_HTTP_MAX_BODY_IOV || (r->body_iovcnt > 0 && r->body == NULL) ||
        (r->headers_len > 0 && r->headers == NULL) ||
        (r->more_headers_len > 0 && r->more_headers == NULL))
        return -EINVAL;
    /* The method goes verbatim into the request line: a token, nothing that could split it. */
    if (r->method != NULL) {
        size_t n = strlen(r->method);
        if (n == 0 || n > 16 || strspn(r->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n)
            return -EINVAL;
    }
    rc__http_req_t *req = c->free_reqs;
    if (req != NULL)
        c->free_reqs = req->next;
    else if ((req = malloc(sizeof(*req))) == NULL)
        return -ENOMEM;
    memset(req, 0, offsetof(rc__http_req_t, content_length));

    const char *method = r->method != NULL ? r->method : "POST";
    size_t body_len = 0;
    for (int i = 0; i < r->body_iovcnt; i++)
        body_len += r->body[i].iov_len;
    req->pool = r->endpoint->pool;
    req->cb = cb;
    req->userdata = userdata;
    req->head = strcmp(method, "HEAD") == 0;
    uint32_t tmo = r->timeout_ms != 0 ? r->timeout_ms : c->opts.timeout_ms;
    req->deadline_ns = rc__http_now_ns() + (int64_t)tmo * 1000000;

    int n = 0;
    req->iov[n++] = (struct iovec){(void *)method, strlen(method)};
    req->iov[n++] = (struct iovec){r->endpoint->line_rest, r->endpoint->line_rest_len};
    int cl = snprintf(req->content_length, sizeof(req->content_length), "Content-Length: %zu\r\n",
                      body_len);
    req->iov[n++] = (struct iovec){req->content_length, (size_t)cl};
    if (r->headers_len > 0)
        req->iov[n++] = (struct iovec){(void *)r->headers, r->headers_len};
    if (r->more_headers_len > 0)
        req->iov[n++] = (struct iovec){(void *)r->more_headers, r->more_headers_len};
    req->iov[n++] = (struct iovec){(void *)"\r\n", 2};
    for (int i = 0; i < r->body_iovcnt; i++) {
        if (r->body[i].iov_len > 0)
            req->iov[n++] = r->body[i];
    }
    req->iovcnt = n;
    req->total = 0;
    for (int i = 0; i < n; i++)
        req->total += req->iov[i].iov_len;

    c->pending++;
    int rc = dispatch(c, req, 0);
    if (rc < 0) {
        c->pending--;
        req->next = c->free_reqs;
        c->free_reqs = req;
    }
    return rc;
}

/* --- connection events ------------------------------------------------------------------- */

/* Called when a closing connection may have drained its last operation. */
static void maybe_finalize(rc_http_client_t *c, rc__http_conn_t *conn)
{
    if (conn->state != RC__CONN_CLOSING || conn->connect_pending || conn->send_pending ||
        conn->recv_pending)
        return;
    rc__http_req_t *req = conn->req;
    rc__http_pool_t *pool = conn->pool;
    conn->req = NULL;
    c->be->close(c, conn);
    pool->nconns--;
    conn_unlink(c, conn);
    if (req != NULL) {
        if (conn->retry_req && !c->destroying) {
            req->retried = 1;
            int rc = dispatch(c, req, 1);
            if (rc < 0)
                finish_req(c, req, rc, NULL);
        } else {
            finish_req(c, req, conn->fail_err, NULL);
        }
    }
    pump(c, pool);
}

static int stale_connection_error(int err)
{
    return err == -ECONNRESET || err == -EPIPE || err == RC_EHTTP_CLOSED;
}

static void conn_fail(rc_http_client_t *c, rc__http_conn_t *conn, int err)
{
    if (conn->state == RC__CONN_CLOSING)
        return;
    rc__http_req_t *req = conn->req;
    /* A keep-alive connection the server closed while idle fails before any response byte;
     * the request never reached the application, so send it once more on a new connection. */
    conn->retry_req = req != NULL && conn->served > 0 && conn->received == 0 && !req->retried &&
                      stale_connection_error(err);
    conn->fail_err = err;
    conn->state = RC__CONN_CLOSING;
    if (conn->connect_pending || conn->send_pending || conn->recv_pending)
        c->be->abort(c, conn);
    maybe_finalize(c, conn);
}

/* Both halves of the exchange are done: hand the response over, then reuse or close. */
static void complete_ok(rc_http_client_t *c, rc__http_conn_t *conn)
{
    rc__http_req_t *req = conn->req;
    const rc_http_response_t *resp = rc__http_parser_response(conn->parser);
    conn->served++;
    conn->state = RC__CONN_CLOSING; /* nothing may start on it during the callback */
    conn->req = NULL;
    finish_req(c, req, resp->status, resp);
    if (conn->reusable) {
        rc__http_pool_t *pool = conn->pool;
        rc__http_req_t *next = queue_pop(pool);
        if (next != NULL) {
            start_exchange(c, conn, next);
        } else {
            conn->state = RC__CONN_IDLE;
            conn->idle_since_ns = rc__http_now_ns();
            conn->idle_next = pool->idle;
            pool->idle = conn;
        }
    } else {
        maybe_finalize(c, conn);
    }
}

void rc__http_on_connect(rc_http_client_t *c, rc__http_conn_t *conn, int res)
{
    conn->connect_pending = 0;
    if (conn->state == RC__CONN_CLOSING) {
        maybe_finalize(c, conn);
        return;
    }
    if (res < 0) {
        conn_fail(c, conn, res);
        return;
    }
    start_exchange(c, conn, conn->req);
}

void rc__http_on_send(rc_http_client_t *c, rc__http_conn_t *conn, int res)
{
    conn->send_pending = 0;
    if (conn->state == RC__CONN_CLOSING) {
        maybe_finalize(c, conn);
        return;
    }
    if (res < 0 && !conn->resp_done) {
        conn_fail(c, conn, res);
        return;
    }
    conn->send_done = 1;
    if (res < 0)
        conn->reusable = 0; /* the server answered before reading everything, then left */
    if (conn->resp_done)
        complete_ok(c, conn);
}

void rc__http_on_recv(rc_http_client_t *c, rc__http_conn_t *conn, int res)
{
    conn->recv_pending = 0;
    if (conn->state == RC__CONN_CLOSING) {
        maybe_finalize(c, conn);
        return;
    }
    int rc;
    size_t consumed = 0;
    if (res < 0) {
        conn_fail(c, conn, res);
        return;
    }
    if (res == 0) {
        rc = rc__http_parser_eof(conn->parser);
        if (rc < 0) {
            conn_fail(c, conn, rc);
            return;
        }
        conn->reusable = 0;
    } else {
        conn->received += (size_t)res;
        rc = rc__http_parser_feed(conn->parser, conn->rbuf, (size_t)res, &consumed);
        if (rc < 0) {
            conn_fail(c, conn, rc);
            return;
        }
        if (rc == 0) {
            conn->recv_pending = 1;
            c->be->recv(c, conn);
            return;
        }
        /* Bytes after the response mean the server lied about its length: never reuse. */
        conn->reusable = rc__http_parser_keep_alive(conn->parser) && consumed == (size_t)res;
    }
    conn->resp_done = 1;
    if (conn->send_done) {
        complete_ok(c, conn);
    } else {
        /* The server answered before taking the whole request. Stop sending: the send then
         * completes at once (with an error, ignored) instead of waiting for a reader that
         * may never come, and the connection is not reused. */
        conn->reusable = 0;
        shutdown(conn->fd, SHUT_RDWR);
    }
}

/* --- running ----------------------------------------------------------------------------- */

static int64_t earliest_queued_deadline(rc_http_client_t *c)
{
    int64_t best = INT64_MAX;
    for (rc__http_pool_t *p = c->pools; p != NULL; p = p->next) {
        for (rc__http_req_t *r = p->qhead; r != NULL; r = r->next) {
            if (r->deadline_ns < best)
                best = r->deadline_ns;
        }
    }
    return best;
}

int rc_http_client_next_timeout_ms(rc_http_client_t *c)
{
    int64_t d = earliest_queued_deadline(c);
    if (d == INT64_MAX)
        return -1;
    int64_t ms = (d - rc__http_now_ns() + 999999) / 1000000;
    return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Fails queued requests whose attempt deadline passed before a connection freed up. */
static void expire_queued(rc_http_client_t *c)
{
    int64_t now = rc__http_now_ns();
    for (rc__http_pool_t *p = c->pools; p != NULL; p = p->next) {
        rc__http_req_t **link = &p->qhead;
        rc__http_req_t *prev = NULL;
        while (*link != NULL) {
            rc__http_req_t *r = *link;
            if (r->deadline_ns <= now) {
                *link = r->next;
                if (p->qtail == r)
                    p->qtail = prev;
                finish_req(c, r, -ETIMEDOUT, NULL);
            } else {
                prev = r;
                link = &r->next;
            }
        }
    }
}

static void bury(rc_http_client_t *c)
{
    while (c->graveyard != NULL) {
        rc__http_conn_t *conn = c->graveyard;
        c->graveyard = conn->next;
        conn_free(conn);
    }
}

int rc_http_client_run(rc_http_client_t *c, int timeout_ms)
{
    c->callbacks = 0;
    if (c->pending == 0 && timeout_ms < 0)
        timeout_ms = 0; /* nothing could ever complete */
    int next = rc_http_client_next_timeout_ms(c);
    if (next >= 0 && (timeout_ms < 0 || next < timeout_ms))
        timeout_ms = next;
    int rc = c->be->wait(c, timeout_ms);
    expire_queued(c);
    bury(c);
    return rc < 0 ? rc : c->callbacks;
}

void rc_http_client_destroy(rc_http_client_t *c)
{
    if (c == NULL)
        return;
    c->destroying = 1;
    /* Queued requests first, so that failing connections do not start them. */
    for (rc__http_pool_t *p = c->pools; p != NULL; p = p->next) {
        rc__http_req_t *r;
        while ((r = queue_pop(p)) != NULL)
            finish_req(c, r, -ECANCELED, NULL);
        while (p->idle != NULL) {
            rc__http_conn_t *conn = p->idle;
            p->idle = conn->idle_next;
            close_idle(c, conn);
        }
    }
    for (rc__http_conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        if (conn->req != NULL)
            conn->req->retried = 1; /* no retry while shutting down */
    }
    rc__http_conn_t *conn = c->conns;
    while (conn != NULL) {
        rc__http_conn_t *next = conn->next;
        conn_fail(c, conn, -ECANCELED);
        conn = next;
    }
    /* io_uring operations complete asynchronously; the back-end was told to cancel them. */
    for (int i = 0; i < 1000 && c->conns != NULL; i++)
        c->be->wait(c, 10);
    bury(c);
    c->be->fini(c);
    while (c->endpoints != NULL) {
        rc_http_endpoint_t *ep = c->endpoints;
        c->endpoints = ep->next;
        free(ep->url);
        free(ep->line_rest);
        free(ep);
    }
    while (c->pools != NULL) {
        rc__http_pool_t *p = c->pools;
        c->pools = p->next;
        free(p);
    }
    while (c->free_reqs != NULL) {
        rc__http_req_t *r = c->free_reqs;
        c->free_reqs = r->next;
        free(r);
    }
    free(c);
}
