/* Connections of the HTTP/1.x server (http_server_internal.h): accept, read, parse, held
 * requests, close.
 *
 * Each connection owns an llhttp parser. Bytes are parsed straight out of one read buffer per
 * server; header names and values are copied into a small per-connection buffer (bounded by
 * max_header_bytes), and a body is borrowed from the read buffer when it arrives whole in one
 * read, copied otherwise. Requests are handled synchronously as soon as they complete, so
 * pipelined responses are produced in order (http_server_output.c writes them). This is the
 * only file that includes llhttp.h for the server side.
 *
 * Memory a client can make the server hold is bounded: headers by max_header_bytes, bodies by
 * one budget over all connections (max_body_memory, body_mem in each connection). A declared
 * body is reserved whole when the headers are complete, so a request that cannot fit is
 * answered 503 before its body is read; a chunked body is reserved as its buffer grows. The
 * reservation is given back when the request is answered or the connection closes.
 *
 * Descriptors are bounded too: a connection accepted onto one of the last fd_reserve
 * descriptors is answered 503 and closed at once. Descriptors are allocated lowest first, so
 * the connections this server keeps never hold one of the reserve, which stays for the rest of
 * the process (another listener, a log, a worker's pipe). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <llhttp.h>

#include "core/clock.h"
#include "core/log.h"
#include "net/http/http_server.h"
#include "net/http/http_server_internal.h"

/* A connection and its parser, allocated together. The parser stays out of
 * rc__http_server_conn_t so that no other file needs llhttp.h; the connection comes first, so a
 * connection pointer is a pointer to this and freeing it frees both. */
typedef struct {
    rc__http_server_conn_t conn;
    llhttp_t parser;
} conn_parser_t;

static llhttp_t *parser_of(rc__http_server_conn_t *c)
{
    return &((conn_parser_t *)c)->parser;
}

const rc_http_header_t *rc_http_find_header(const rc_http_server_request_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const rc_http_header_t *h = &req->headers[i];
        if (h->name.len == n && strncasecmp(h->name.ptr, name, n) == 0)
            return h;
    }
    return NULL;
}

/* ---- the body budget ---------------------------------------------------------------------- */

#define BODY_MEMORY_REASON "request bodies in memory at the server's limit; retry later"

/* Sets what `c` holds of the shared body budget to `want` bytes. Growing fails with -ENOBUFS,
 * changing nothing, when the sum over the servers sharing it would pass max_body_memory. */
static int body_budget_set(rc__http_server_conn_t *c, uint64_t want)
{
    rc_http_server_t *s = c->srv;
    _Atomic uint64_t *used = &s->sh->body_memory;
    if (want == c->body_mem)
        return 0; /* most requests: nothing kept, or the kept buffer stays */
    /* Relaxed: the sum is a bound, not a hand-off; no memory is published through it. */
    if (want < c->body_mem) {
        atomic_fetch_sub_explicit(used, c->body_mem - want, memory_order_relaxed);
        c->body_mem = want;
        return 0;
    }
    uint64_t more = want - c->body_mem, limit = s->lim.max_body_memory;
    uint64_t cur = atomic_load_explicit(used, memory_order_relaxed);
    do {
        if (more > limit || cur > limit - more)
            return -ENOBUFS;
    } while (!atomic_compare_exchange_weak_explicit(used, &cur, cur + more, memory_order_relaxed,
                                                    memory_order_relaxed));
    c->body_mem = want;
    return 0;
}

void rc__http_server_conn_drop_body(rc__http_server_conn_t *c)
{
    free(c->body);
    c->body = NULL;
    c->bcap = 0;
    c->blen = 0;
    c->body_borrowed = NULL;
    body_budget_set(c, 0);
}

/* The request is answered and its body no longer needed. A small buffer stays for the next
 * request, still counted, unless the budget is more than half used: idle keep-alive
 * connections should not sit on it while others are refused. */
static void body_done(rc__http_server_conn_t *c)
{
    rc_http_server_t *s = c->srv;
    c->body_borrowed = NULL;
    c->blen = 0;
    if (c->bcap > RC__HTTP_SERVER_KEEP_BODY ||
        atomic_load_explicit(&s->sh->body_memory, memory_order_relaxed) >
            s->lim.max_body_memory / 2) {
        free(c->body);
        c->body = NULL;
        c->bcap = 0;
    }
    body_budget_set(c, c->bcap);
}

/* Reserves a declared body whole before any of it is read. A kept buffer too small for it is
 * given back first (it would be replaced anyway). */
static int body_reserve(rc__http_server_conn_t *c, uint64_t len)
{
    if (len <= c->bcap)
        return 0; /* the kept buffer holds it, and is counted already */
    free(c->body);
    c->body = NULL;
    c->bcap = 0;
    return body_budget_set(c, len);
}

/* Counts a request refused for want of body memory and logs it now and then. */
static void note_body_refusal(rc_http_server_t *s)
{
    uint64_t since;
    if (rc__http_server_refused(s, &s->sh->body_refused, &since))
        rc_log_warn(s->name,
                    "503 for %llu request(s) since the last report: request bodies held in memory "
                    "reached the limit of %llu bytes (maxBodyMemory)",
                    (unsigned long long)since, (unsigned long long)s->lim.max_body_memory);
}

/* ---- parsing: llhttp's callbacks ----------------------------------------------------------- */

static int hbuf_append(rc__http_server_conn_t *c, const char *at, size_t len)
{
    if (c->hlen + len > c->hcap) {
        uint32_t cap = c->hcap ? c->hcap : 1024;
        while (cap < c->hlen + len)
            cap *= 2;
        char *p = realloc(c->hbuf, cap);
        if (p == NULL)
            return -ENOMEM;
        c->hbuf = p;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, at, len);
    c->hlen += (uint32_t)len;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    rc__http_server_conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    c->state = RC__HTTP_SERVER_HEADERS;
    c->deadline = uv_now(s->loop) + s->lim.header_timeout_ms;
    c->hlen = 0;
    c->nhdrs = 0;
    c->url_len = 0;
    c->last_was_value = 0;
    c->blen = 0;
    c->body_borrowed = NULL;
    c->skip_body = 0;
    c->expect_continue = 0;
    c->max_body = s->lim.max_body_bytes;
    c->ctx = NULL;
    c->ctx_tag = 0;
    c->after_drain = s->draining ? 1 : 0;
    c->start_ns = rc_now_ns();
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    rc__http_server_conn_t *c = p->data;
    if (c->hlen + len > c->srv->lim.max_header_bytes) {
        rc__http_server_reject(c, 414, "request target too long");
        return HPE_USER;
    }
    if (hbuf_append(c, at, len) != 0) {
        rc__http_server_reject(c, 503, "out of memory");
        return HPE_USER;
    }
    c->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    rc__http_server_conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    if (c->state == RC__HTTP_SERVER_BODY)
        return 0; /* trailer fields are accepted and ignored */
    if (c->hlen + len > s->lim.max_header_bytes) {
        rc__http_server_reject(c, 431, "request headers too large");
        return HPE_USER;
    }
    if (c->nhdrs == 0 || c->last_was_value) {
        if (c->nhdrs >= s->lim.max_headers) {
            rc__http_server_reject(c, 431, "too many request headers");
            return HPE_USER;
        }
        rc__http_server_hdr_t *h = &c->hdrs[c->nhdrs++];
        h->name_off = c->hlen;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->last_was_value = 0;
    }
    if (hbuf_append(c, at, len) != 0) {
        rc__http_server_reject(c, 503, "out of memory");
        return HPE_USER;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    rc__http_server_conn_t *c = p->data;
    if (c->state == RC__HTTP_SERVER_BODY || c->nhdrs == 0)
        return 0;
    if (c->hlen + len > c->srv->lim.max_header_bytes) {
        rc__http_server_reject(c, 431, "request headers too large");
        return HPE_USER;
    }
    rc__http_server_hdr_t *h = &c->hdrs[c->nhdrs - 1];
    if (!c->last_was_value) {
        h->value_off = c->hlen;
        c->last_was_value = 1;
    }
    if (hbuf_append(c, at, len) != 0) {
        rc__http_server_reject(c, 503, "out of memory");
        return HPE_USER;
    }
    h->value_len += (uint32_t)len;
    return 0;
}

static rc_http_method_t method_of(uint8_t m)
{
    switch (m) {
    case HTTP_GET:
        return RC_HTTP_GET;
    case HTTP_HEAD:
        return RC_HTTP_HEAD;
    case HTTP_POST:
        return RC_HTTP_POST;
    case HTTP_PUT:
        return RC_HTTP_PUT;
    case HTTP_DELETE:
        return RC_HTTP_DELETE;
    case HTTP_OPTIONS:
        return RC_HTTP_OPTIONS;
    default:
        return RC_HTTP_OTHER;
    }
}

static void build_request(rc__http_server_conn_t *c, rc_http_server_request_t *req)
{
    rc_http_server_t *s = c->srv;
    memset(req, 0, sizeof(*req));
    llhttp_t *p = parser_of(c);
    req->method = method_of(llhttp_get_method(p));
    req->method_name = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    const char *url = c->hbuf;
    const char *q = c->url_len ? memchr(url, '?', c->url_len) : NULL;
    req->path = url ? url : "";
    req->path_len = q ? (size_t)(q - url) : c->url_len;
    if (q != NULL) {
        req->query = q + 1;
        req->query_len = c->url_len - req->path_len - 1;
    }
    for (uint32_t i = 0; i < c->nhdrs; i++) {
        s->req_headers[i].name.ptr = c->hbuf + c->hdrs[i].name_off;
        s->req_headers[i].name.len = c->hdrs[i].name_len;
        s->req_headers[i].value.ptr = c->hdrs[i].value_len ? c->hbuf + c->hdrs[i].value_off : "";
        s->req_headers[i].value.len = c->hdrs[i].value_len;
    }
    req->headers = s->req_headers;
    req->header_count = c->nhdrs;
    req->content_length = (p->flags & F_CONTENT_LENGTH) ? p->content_length : UINT64_MAX;
    if (!(p->flags & (F_CONTENT_LENGTH | F_CHUNKED)))
        req->content_length = 0; /* a request without either has no body */
    req->http_minor = llhttp_get_http_minor(p);
    req->start_ns = c->start_ns;
    req->conn_id = c->id;
    req->peer_loopback = c->peer_loopback;
}

/* RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host, an HTTP/1.0 request at most one.
 * Returns what is wrong, or NULL. */
static const char *host_problem(const rc_http_server_request_t *req)
{
    size_t n = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        const rc_http_header_t *h = &req->headers[i];
        if (h->name.len == 4 && strncasecmp(h->name.ptr, "host", 4) == 0)
            n++;
    }
    if (n > 1)
        return "malformed HTTP request: more than one Host header";
    if (n == 0 && req->http_minor >= 1)
        return "malformed HTTP request: HTTP/1.1 request without a Host header";
    return NULL;
}

/* Answers the request now, before its body: `res` came from on_headers or is the server's own
 * refusal. A body of known length that the client sends anyway is skipped and the connection
 * kept; otherwise (chunked, or a client waiting for 100 Continue) the connection closes. */
static int answer_at_headers(rc__http_server_conn_t *c, const rc_http_server_request_t *req,
                             const rc_http_server_response_t *res)
{
    rc_http_server_t *s = c->srv;
    int has_body = req->content_length != 0;
    int keep = llhttp_should_keep_alive(parser_of(c)) && !res->close && !s->draining &&
               (!has_body || (req->content_length != UINT64_MAX && !c->expect_continue));
    c->close_after = !keep;
    rc__http_server_queue_response(c, res, req->method == RC_HTTP_HEAD, req->http_minor);
    if (!keep) {
        c->stop = 1;
        return HPE_PAUSED;
    }
    c->skip_body = 1;
    return 0;
}

/* The declared body does not fit in the budget: 503 with Retry-After, before it is read. */
static int refuse_body_at_headers(rc__http_server_conn_t *c, const rc_http_server_request_t *req)
{
    rc_http_server_t *s = c->srv;
    note_body_refusal(s);
    rc_http_server_response_t res;
    memset(&res, 0, offsetof(rc_http_server_response_t, scratch));
    rc_http_response_error(&res, 503, BODY_MEMORY_REASON);
    res.headers = s->retry_after_line;
    res.headers_len = strlen(s->retry_after_line);
    if (s->h.on_rejected != NULL)
        s->h.on_rejected(s->h.data, 503, BODY_MEMORY_REASON);
    return answer_at_headers(c, req, &res);
}

static int on_headers_complete(llhttp_t *p)
{
    rc__http_server_conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    c->state = RC__HTTP_SERVER_BODY;
    c->deadline = uv_now(s->loop) + s->lim.body_timeout_ms;
    if (c->after_drain) {
        rc__http_server_reject(c, 503, "server is shutting down");
        return HPE_PAUSED;
    }
    rc_http_server_request_t req;
    build_request(c, &req);
    const char *bad_host = host_problem(&req);
    if (bad_host != NULL) {
        rc__http_server_reject(c, 400, bad_host);
        return HPE_PAUSED;
    }
    int has_body = req.content_length != 0;
    if (req.content_length != UINT64_MAX && req.content_length > s->lim.max_body_bytes) {
        rc__http_server_reject(c, 413, "request body larger than the configured maximum");
        return HPE_PAUSED;
    }
    const rc_http_header_t *ex = rc_http_find_header(&req, "expect");
    if (ex != NULL) {
        if (ex->value.len != 12 || strncasecmp(ex->value.ptr, "100-continue", 12) != 0) {
            rc__http_server_reject(c, 417, "unsupported Expect header");
            return HPE_PAUSED;
        }
        c->expect_continue = req.http_minor >= 1 && has_body;
    }
    if (s->h.on_headers != NULL) {
        rc_http_server_response_t res;
        memset(&res, 0, offsetof(rc_http_server_response_t, scratch));
        s->h.on_headers(s->h.data, &req, &res);
        c->ctx = res.ctx;
        c->ctx_tag = res.ctx_tag;
        if (res.max_body != 0 && res.max_body < c->max_body)
            c->max_body = res.max_body;
        if (res.status != 0)
            return answer_at_headers(c, &req, &res);
    }
    if (has_body && req.content_length != UINT64_MAX && body_reserve(c, req.content_length) != 0)
        return refuse_body_at_headers(c, &req);
    if (c->expect_continue)
        rc__http_server_queue_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    /* Known length: a body that needs copying gets one buffer of exactly that size. */
    c->expected_body = req.content_length != UINT64_MAX ? req.content_length : 0;
    return 0;
}

static int body_own(rc__http_server_conn_t *c, size_t extra)
{
    size_t need = c->blen + extra;
    if (need > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 4096;
        while (cap < need)
            cap *= 2;
        if (c->expected_body >= need && c->expected_body < cap)
            cap = c->expected_body;
        /* A declared body was reserved whole at the headers; a chunked one grows here. */
        if (cap > c->body_mem && body_budget_set(c, cap) != 0)
            return -ENOBUFS;
        char *nb = realloc(c->body, cap);
        if (nb == NULL)
            return -ENOMEM;
        c->body = nb;
        c->bcap = cap;
    }
    if (c->body_borrowed != NULL) {
        memcpy(c->body, c->body_borrowed, c->blen);
        c->body_borrowed = NULL;
    }
    return 0;
}

/* The body cannot be kept: over the budget (body_own gave -ENOBUFS) or out of memory. */
static void refuse_body(rc__http_server_conn_t *c, int rc)
{
    if (rc == -ENOBUFS) {
        note_body_refusal(c->srv);
        rc__http_server_reject_busy(c, BODY_MEMORY_REASON);
    } else {
        rc__http_server_reject(c, 503, "out of memory");
    }
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    rc__http_server_conn_t *c = p->data;
    if (c->skip_body)
        return 0;
    if (c->blen + len > c->max_body) {
        rc__http_server_reject(c, 413, "request body larger than the configured maximum");
        return HPE_USER;
    }
    if (c->blen == 0) {
        c->body_borrowed = at;
        c->blen = len;
        return 0;
    }
    int rc = body_own(c, len);
    if (rc != 0) {
        refuse_body(c, rc);
        return HPE_USER;
    }
    memcpy(c->body + c->blen, at, len);
    c->blen += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    rc__http_server_conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    int keep = llhttp_should_keep_alive(p) && !s->draining;
    if (!c->skip_body) {
        rc_http_server_request_t req;
        build_request(c, &req);
        req.body = c->body_borrowed ? c->body_borrowed : c->body;
        req.body_len = c->blen;
        req.ctx = c->ctx;
        req.ctx_tag = c->ctx_tag;
        rc_http_server_response_t res;
        memset(&res, 0, offsetof(rc_http_server_response_t, scratch));
        s->h.on_request(s->h.data, &req, &res);
        if (res.hold) {
            /* Not read until answered: bytes already read behind it go to c->pend (on_read). */
            c->held = 1;
            c->held_head = req.method == RC_HTTP_HEAD;
            c->held_minor = req.http_minor;
            c->held_keep = keep && !res.close;
            c->stop = 1;
            c->state = RC__HTTP_SERVER_IDLE;
            c->deadline = s->draining ? s->drain_deadline : UINT64_MAX;
            body_done(c);
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = 0;
            }
            return HPE_PAUSED;
        }
        if (res.raw || res.reset) {
            c->stop = 1;
            c->close_after = 1;
            c->reset_after = res.reset ? 1 : 0;
            c->state = RC__HTTP_SERVER_IDLE;
            c->deadline = uv_now(s->loop) + RC__HTTP_SERVER_LINGER_MS;
            if (res.raw)
                rc__http_server_queue_bytes(c, res.body, res.body_len);
            body_done(c); /* after the copy: a raw body may point into the request's */
            return HPE_PAUSED;
        }
        if (res.status == 0)
            rc_http_response_error(&res, 500, "handler produced no response");
        if (res.close)
            keep = 0;
        c->close_after = !keep;
        rc__http_server_queue_response(c, &res, req.method == RC_HTTP_HEAD, req.http_minor);
    } else if (!keep) {
        c->close_after = 1; /* the early response went out without "close"; the FIN tells */
    }
    c->state = RC__HTTP_SERVER_IDLE;
    body_done(c);
    rc__http_server_conn_deadline(c, s->lim.idle_timeout_ms);
    if (!keep) {
        c->stop = 1;
        return HPE_PAUSED;
    }
    return 0;
}

/* The same callbacks serve every server: the connection comes from the parser's data. */
static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ------------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    rc__http_server_conn_t *c = h->data;
    rc_http_server_t *s = c->srv;
    if (c->counted && s->h.on_connection != NULL)
        s->h.on_connection(s->h.data, -1);
    atomic_fetch_sub_explicit(&s->sh->connections, 1, memory_order_relaxed); /* a count */
    body_budget_set(c, 0);
    free(c->pend);
    free(c->hbuf);
    free(c->hdrs);
    free(c->body);
    free(c);
    s->nconns--;
    rc__http_server_check_done(s);
}

/* Marks the connection closing and takes it off the server's list. Returns 0 when it already
 * was closing (nothing to do). */
static int conn_unlink(rc__http_server_conn_t *c)
{
    if (c->closing)
        return 0;
    c->closing = 1;
    rc_http_server_t *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    return 1;
}

void rc__http_server_conn_close(rc__http_server_conn_t *c)
{
    if (conn_unlink(c))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void rc__http_server_conn_reset(rc__http_server_conn_t *c)
{
    if (!conn_unlink(c))
        return;
    if (uv_tcp_close_reset(&c->tcp, on_conn_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    rc__http_server_conn_t *c = h->data;
    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

/* Keeps the bytes of `data` that follow a held request (pipelined input) for later. */
static int conn_keep_rest(rc__http_server_conn_t *c, const char *data, size_t len)
{
    const char *pos = llhttp_get_error_pos(parser_of(c));
    if (pos == NULL || pos < data || pos >= data + len)
        return 0;
    size_t n = (size_t)(data + len - pos);
    char *p = malloc(n);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, pos, n);
    free(c->pend);
    c->pend = p;
    c->pend_len = n;
    return 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    rc__http_server_conn_t *c = st->data;
    rc_http_server_t *s = c->srv;
    if (nread < 0) {
        rc__http_server_conn_close(c); /* EOF or error: nothing more can be answered */
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->stop || c->state == RC__HTTP_SERVER_LINGER)
        return; /* input after a final response is discarded */
    llhttp_errno_t e = llhttp_execute(parser_of(c), buf->base, (size_t)nread);
    if (c->held && e == HPE_PAUSED && conn_keep_rest(c, buf->base, (size_t)nread) != 0)
        rc__http_server_conn_close(c);
    if (e != HPE_OK && !c->stop) {
        const char *why = llhttp_get_error_reason(parser_of(c));
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s", why ? why : llhttp_errno_name(e));
        rc__http_server_reject(c, 400, msg);
    } else if (c->body_borrowed != NULL) {
        /* The body is incomplete and lives in the read buffer, which the next read reuses. */
        int rc = body_own(c, 0);
        if (rc != 0)
            refuse_body(c, rc);
    }
    rc__http_server_conn_flush(c);
    if (!c->closing && c->reading && c->pending_out > s->lim.max_pending_out) {
        /* A pipelining client that does not read its responses stops being read. */
        uv_read_stop(st);
        c->reading = 0;
        /* From now on the client's own pace is the problem: it has the idle timeout to read. */
        c->deadline = uv_now(s->loop) + s->lim.idle_timeout_ms;
    }
}

/* Reading paused because the client did not read its answers (see on_read) resumes once half
 * of the queued output is gone. The request timers restart then: the pause was ours. */
void rc__http_server_conn_maybe_resume(rc__http_server_conn_t *c)
{
    rc_http_server_t *s = c->srv;
    if (c->closing || c->reading || c->stop || c->state == RC__HTTP_SERVER_LINGER ||
        c->pending_out > s->lim.max_pending_out / 2)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        return;
    c->reading = 1;
    uint64_t ms = c->state == RC__HTTP_SERVER_HEADERS ? s->lim.header_timeout_ms
                  : c->state == RC__HTTP_SERVER_BODY  ? s->lim.body_timeout_ms
                                                      : s->lim.idle_timeout_ms;
    rc__http_server_conn_deadline(c, ms);
}

/* The connection took one of the descriptors kept in reserve: answer 503 and close at once, so
 * that the reserve is free again and the client learns why instead of seeing a reset. */
static void refuse_fd(rc__http_server_conn_t *c, int fd)
{
    rc_http_server_t *s = c->srv;
    uint64_t since;
    if (rc__http_server_refused(s, &s->sh->fd_refused, &since))
        rc_log_warn(s->name,
                    "503 for %llu connection(s) since the last report: file descriptors are "
                    "running out (accepted descriptor %d, limit %llu, the last %u kept in "
                    "reserve); raise the open-files limit (ulimit -n, LimitNOFILE=) or lower "
                    "maxConnections",
                    (unsigned long long)since, fd, (unsigned long long)s->fd_limit,
                    s->lim.fd_reserve);
    /* What the client sent already is read (and dropped) now: closing a socket with unread
     * input answers with a reset instead of a FIN. Nothing there yet is fine. */
    (void)recv(fd, s->readbuf, sizeof(s->readbuf), MSG_DONTWAIT);
    c->no_linger = 1;
    rc__http_server_reject_busy(c, "out of file descriptors");
    rc__http_server_conn_flush(c);
}

/* Over max_connections: 503, then the usual lingering close. */
static void refuse_connection(rc__http_server_conn_t *c)
{
    rc_http_server_t *s = c->srv;
    uint64_t since;
    if (rc__http_server_refused(s, &s->sh->conns_refused, &since))
        rc_log_warn(s->name,
                    "503 for %llu connection(s) since the last report: %u connections are open "
                    "(maxConnections)",
                    (unsigned long long)since, s->lim.max_connections);
    rc__http_server_reject_busy(c, "too many connections");
    rc__http_server_conn_flush(c);
}

void rc__http_server_accept(uv_stream_t *l, int status)
{
    rc_http_server_t *s = l->data;
    if (status < 0)
        return;
    rc__http_server_conn_t *c = calloc(1, sizeof(conn_parser_t)); /* with its parser */
    if (c != NULL)
        c->hdrs = calloc(s->lim.max_headers, sizeof(rc__http_server_hdr_t));
    if (c == NULL || c->hdrs == NULL) {
        /* Without memory the connection cannot even be accepted; the kernel keeps it queued. */
        free(c);
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    s->nconns++;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    /* Counted from here on, whichever way it closes: on_conn_closed takes it off. */
    size_t nopen = atomic_fetch_add_explicit(&s->sh->connections, 1, memory_order_relaxed) + 1;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        rc__http_server_conn_close(c);
        return;
    }
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    c->peer_loopback = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0 &&
                       rc_http_addr_is_loopback((struct sockaddr *)&peer);
    if (s->h.on_connection != NULL) {
        c->counted = 1;
        s->h.on_connection(s->h.data, 1);
    }
    llhttp_init(parser_of(c), HTTP_REQUEST, &parser_settings);
    parser_of(c)->data = c;
    c->state = RC__HTTP_SERVER_IDLE;
    c->deadline = uv_now(s->loop) + s->lim.header_timeout_ms;
    uv_os_fd_t fd = -1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
        (uint64_t)fd + s->lim.fd_reserve >= s->fd_limit) {
        refuse_fd(c, fd);
        return;
    }
    if (nopen > s->lim.max_connections) {
        refuse_connection(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        rc__http_server_conn_close(c);
        return;
    }
    c->reading = 1;
}

int rc_http_server_respond(rc_http_server_t *s, uint64_t conn_id,
                           const rc_http_server_response_t *res)
{
    rc__http_server_conn_t *c = s->conns;
    while (c != NULL && c->id != conn_id)
        c = c->next;
    if (c == NULL || !c->held || c->closing)
        return -ENOENT;
    rc_http_server_response_t err;
    if (res->status == 0) {
        memset(&err, 0, offsetof(rc_http_server_response_t, scratch));
        rc_http_response_error(&err, 500, "handler produced no response");
        res = &err;
    }
    c->held = 0;
    int keep = c->held_keep && !res->close && !s->draining;
    c->close_after = !keep;
    if (!keep && !c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
        /* Holding stopped reading. The linger after this last answer waits for the client's
         * FIN, which only a read sees (its input is discarded: c->stop); without it every
         * answer held across a drain kept its connection, and the drain, for the linger time. */
        c->reading = 1;
    }
    rc__http_server_queue_response(c, res, c->held_head, c->held_minor);
    rc__http_server_conn_deadline(c, s->lim.idle_timeout_ms);
    rc__http_server_conn_flush(c);
    char *pend = c->pend;
    size_t n = c->pend_len;
    c->pend = NULL;
    c->pend_len = 0;
    if (keep && !c->closing) {
        c->stop = 0;
        llhttp_resume(parser_of(c));
        if (n > 0) {
            uv_buf_t b = uv_buf_init(pend, (unsigned)n);
            on_read((uv_stream_t *)&c->tcp, (ssize_t)n, &b); /* the pipelined rest */
        }
        rc__http_server_conn_maybe_resume(c);
    }
    free(pend);
    return 0;
}

int rc_http_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}
