/* The HTTP/1.x server: one listener, its connections and one sweep timer on a libuv loop.
 *
 * Each connection owns an llhttp parser. Bytes are parsed straight out of one read buffer per
 * server; header names and values are copied into a small per-connection buffer (bounded by
 * max_header_bytes), and a body is borrowed from the read buffer when it arrives whole in one
 * read, copied otherwise. Requests are handled synchronously as soon as they complete, so
 * pipelined responses are produced in order; all responses produced by one read are written
 * with one write. Deadlines (header, body, idle, linger, drain) are checked by a sweep timer
 * rather than one timer per connection. This is the only file that includes llhttp.h for the
 * server side. */
#include "net/http/http_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "core/clock.h"

enum { ST_IDLE, ST_HEADERS, ST_BODY, ST_LINGER };

#define RC_HTTP_LINGER_MS 2000
#define RC_HTTP_READ_BUF  (64 * 1024)
#define RC_HTTP_KEEP_BODY (64 * 1024) /* body buffer a connection keeps between requests */

typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} hdr_ref_t;

typedef struct conn_s conn_t;
struct conn_s {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    llhttp_t parser;
    rc_http_server_t *srv;
    conn_t *prev, *next;
    int state;
    uint64_t deadline; /* uv_now() milliseconds */

    char *hbuf; /* url, then header names and values */
    uint32_t hlen, hcap;
    hdr_ref_t *hdrs;
    uint32_t nhdrs;
    uint32_t url_len;
    int last_was_value;

    const char *body_borrowed; /* points into the server's read buffer, valid during one read */
    uint64_t max_body;         /* limit of the current request's body */
    const void *ctx;           /* the handler's context for the current request (on_headers) */
    uint32_t ctx_tag;
    uint64_t expected_body;    /* its Content-Length, 0 when chunked */
    char *body;
    size_t blen, bcap;

    uint64_t start_ns;
    size_t pending_out; /* bytes handed to uv_write and not yet written */
    unsigned writes_in_flight;

    unsigned stop : 1;        /* parsing stopped on purpose; a response was already queued */
    unsigned close_after : 1; /* close once the queued output is written */
    unsigned skip_body : 1;   /* answered at the headers; discard the body */
    unsigned expect_continue : 1;
    unsigned after_drain : 1; /* request began after the server started draining */
    unsigned reading : 1;
    unsigned closing : 1;
    unsigned shutting_down : 1;
    unsigned counted : 1; /* reported to on_connection */
    /* Close with a TCP reset once the queued output is written (response field `reset`). */
    unsigned reset_after : 1;
    /* A request is held (response field `hold`) until rc_http_server_respond. */
    unsigned held : 1;
    unsigned held_head : 1;
    unsigned held_keep : 1;
    int held_minor;
    uint64_t id; /* rc_http_server_request_t.conn_id */
    char *pend;  /* bytes read behind a held request, parsed once it is answered */
    size_t pend_len;
};

struct rc_http_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    rc_http_limits_t lim;
    rc_http_handler_t h;
    llhttp_settings_t settings;
    int port;
    atomic_uint *shared_conns;

    conn_t *conns;
    size_t nconns;

    int draining;
    uint64_t drain_deadline;
    void (*drain_done)(rc_http_server_t *s, void *arg);
    void *drain_arg;

    int closing;
    int listener_open;
    int open_handles;
    void (*close_cb)(void *arg);
    void *close_arg;

    char *out; /* responses produced by the current read, written in one go */
    size_t olen, ocap;
    int out_failed;

    uint64_t date_sec;
    char date_line[64]; /* "Date: ...\r\n" */

    rc_http_header_t *req_headers;
    uint64_t next_conn_id;
    char readbuf[RC_HTTP_READ_BUF];
};

typedef struct {
    uv_write_t req;
    conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static void conn_hard_close(conn_t *c);
static void conn_reset(conn_t *c);
static void conn_flush(conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

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
}

const char *rc_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void rc_http_response_error(rc_http_server_response_t *res, int status, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    char *p = res->scratch, *end = res->scratch + sizeof(res->scratch) - 4;
    p += snprintf(p, 16, "{\"error\": \"");
    for (const unsigned char *m = (const unsigned char *)msg; *m != '\0' && p + 8 < end; m++) {
        if (*m == '"' || *m == '\\') {
            *p++ = '\\';
            *p++ = (char)*m;
        } else if (*m < 0x20) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[*m >> 4];
            *p++ = hex[*m & 15];
        } else {
            *p++ = (char)*m;
        }
    }
    *p++ = '"';
    *p++ = '}';
    *p++ = '\n';
    res->status = status;
    res->content_type = "application/json";
    res->body = res->scratch;
    res->body_len = (size_t)(p - res->scratch);
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

/* ---- output ---------------------------------------------------------------------------- */

static int out_reserve(rc_http_server_t *s, size_t more)
{
    if (s->olen + more <= s->ocap)
        return 0;
    size_t cap = s->ocap ? s->ocap : 4096;
    while (cap < s->olen + more)
        cap *= 2;
    char *p = realloc(s->out, cap);
    if (p == NULL) {
        s->out_failed = 1;
        return -ENOMEM;
    }
    s->out = p;
    s->ocap = cap;
    return 0;
}

static void out_append(rc_http_server_t *s, const char *p, size_t n)
{
    if (n == 0 || out_reserve(s, n) != 0)
        return;
    memcpy(s->out + s->olen, p, n);
    s->olen += n;
}

static void refresh_date(rc_http_server_t *s)
{
    uint64_t sec = (uint64_t)time(NULL);
    if (sec == s->date_sec)
        return;
    s->date_sec = sec;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s->date_line, sizeof(s->date_line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static void out_cstr(rc_http_server_t *s, const char *p)
{
    out_append(s, p, strlen(p));
}

static void out_uint(rc_http_server_t *s, uint64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    out_append(s, d + i, sizeof(d) - i);
}

/* Serialises one response into the server's output buffer (no printf: this runs for every
 * request). */
static void queue_response(conn_t *c, const rc_http_server_response_t *res, int head_only,
                           int minor)
{
    rc_http_server_t *s = c->srv;
    refresh_date(s);
    out_append(s, "HTTP/1.1 ", 9);
    out_uint(s, (uint64_t)res->status);
    out_append(s, " ", 1);
    out_cstr(s, rc_http_reason(res->status));
    out_append(s, "\r\n", 2);
    out_cstr(s, s->date_line);
    /* RFC 9110 8.6, 15.3.5, 15.4.5: no Content-Length and no content in 1xx, 204 and 304. */
    int bodyless = res->status < 200 || res->status == 204 || res->status == 304;
    if (!bodyless) {
        out_append(s, "Content-Length: ", 16);
        out_uint(s, res->body_len);
        out_append(s, "\r\n", 2);
    }
    if (res->content_type != NULL) {
        out_append(s, "Content-Type: ", 14);
        out_cstr(s, res->content_type);
        out_append(s, "\r\n", 2);
    }
    out_append(s, res->headers, res->headers_len);
    if (c->close_after)
        out_append(s, "Connection: close\r\n", 19);
    else if (minor == 0)
        out_append(s, "Connection: keep-alive\r\n", 24);
    out_append(s, "\r\n", 2);
    if (!head_only && !bodyless)
        out_append(s, res->body, res->body_len);
}

/* Answers a request the server rejects by itself, and stops parsing the connection. */
static void reject(conn_t *c, int status, const char *reason)
{
    rc_http_server_response_t res;
    memset(&res, 0, offsetof(rc_http_server_response_t, scratch));
    rc_http_response_error(&res, status, reason);
    c->stop = 1;
    c->close_after = 1;
    queue_response(c, &res, 0, 1);
    if (c->srv->h.on_rejected != NULL)
        c->srv->h.on_rejected(c->srv->h.data, status, reason);
}

/* Reading paused because the client did not read its answers (see on_read) resumes once half
 * of the queued output is gone. The request timers restart then: the pause was ours. */
static void conn_maybe_resume(conn_t *c)
{
    rc_http_server_t *s = c->srv;
    if (c->closing || c->reading || c->stop || c->state == ST_LINGER ||
        c->pending_out > s->lim.max_pending_out / 2)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        return;
    c->reading = 1;
    uint64_t now = uv_now(s->loop);
    c->deadline = now + (c->state == ST_HEADERS ? s->lim.header_timeout_ms
                         : c->state == ST_BODY  ? s->lim.body_timeout_ms
                                                : s->lim.idle_timeout_ms);
    if (s->draining && c->deadline > s->drain_deadline)
        c->deadline = s->drain_deadline;
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    conn_t *c = w->conn;
    c->pending_out -= w->len;
    c->writes_in_flight--;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_hard_close(c);
        return;
    }
    if (c->state == ST_IDLE || !c->reading) {
        /* Answers still flowing out mean the connection is not idle: a client is dropped only
         * after making no progress reading for the idle timeout. */
        rc_http_server_t *s = c->srv;
        c->deadline = uv_now(s->loop) + s->lim.idle_timeout_ms;
        if (s->draining && c->deadline > s->drain_deadline)
            c->deadline = s->drain_deadline;
    }
    conn_flush(c); /* starts the close once the last write is out */
    conn_maybe_resume(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 && !c->closing)
        conn_hard_close(c);
}

static void start_linger(conn_t *c)
{
    /* Closing a socket with unread input makes the kernel send RST, which can destroy the
     * response before the client reads it. Send FIN instead and drain input for a while. */
    c->state = ST_LINGER;
    c->deadline = uv_now(c->srv->loop) + RC_HTTP_LINGER_MS;
    c->shutting_down = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_hard_close(c);
}

/* Writes whatever the server's output buffer holds for `c`: directly when the socket takes
 * it, through a uv_write otherwise. Then starts the close when one was asked for. */
static void conn_flush(conn_t *c)
{
    rc_http_server_t *s = c->srv;
    if (s->out_failed) {
        s->olen = 0;
        s->out_failed = 0;
        conn_hard_close(c);
        return;
    }
    size_t off = 0;
    if (s->olen > 0 && c->writes_in_flight == 0) {
        uv_buf_t b = uv_buf_init(s->out, (unsigned)s->olen);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            s->olen = 0;
            conn_hard_close(c);
            return;
        }
        off = n > 0 ? (size_t)n : 0;
    }
    if (off < s->olen) {
        size_t len = s->olen - off;
        write_req_t *w = malloc(sizeof(*w) + len);
        if (w == NULL) {
            s->olen = 0;
            conn_hard_close(c);
            return;
        }
        memcpy(w->data, s->out + off, len);
        w->conn = c;
        w->len = len;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            free(w);
            s->olen = 0;
            conn_hard_close(c);
            return;
        }
        c->pending_out += len;
        c->writes_in_flight++;
    }
    s->olen = 0;
    if (c->reset_after && c->writes_in_flight == 0) {
        conn_reset(c);
        return;
    }
    if (c->close_after && c->writes_in_flight == 0 && !c->shutting_down)
        start_linger(c);
}

/* ---- parser callbacks ------------------------------------------------------------------ */

static int hbuf_append(conn_t *c, const char *at, size_t len)
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
    conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    c->state = ST_HEADERS;
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
    conn_t *c = p->data;
    if (c->hlen + len > c->srv->lim.max_header_bytes) {
        reject(c, 414, "request target too long");
        return HPE_USER;
    }
    if (hbuf_append(c, at, len) != 0) {
        reject(c, 503, "out of memory");
        return HPE_USER;
    }
    c->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    if (c->state == ST_BODY)
        return 0; /* trailer fields are accepted and ignored */
    if (c->hlen + len > s->lim.max_header_bytes) {
        reject(c, 431, "request headers too large");
        return HPE_USER;
    }
    if (c->nhdrs == 0 || c->last_was_value) {
        if (c->nhdrs >= s->lim.max_headers) {
            reject(c, 431, "too many request headers");
            return HPE_USER;
        }
        hdr_ref_t *h = &c->hdrs[c->nhdrs++];
        h->name_off = c->hlen;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->last_was_value = 0;
    }
    if (hbuf_append(c, at, len) != 0) {
        reject(c, 503, "out of memory");
        return HPE_USER;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->state == ST_BODY || c->nhdrs == 0)
        return 0;
    if (c->hlen + len > c->srv->lim.max_header_bytes) {
        reject(c, 431, "request headers too large");
        return HPE_USER;
    }
    hdr_ref_t *h = &c->hdrs[c->nhdrs - 1];
    if (!c->last_was_value) {
        h->value_off = c->hlen;
        c->last_was_value = 1;
    }
    if (hbuf_append(c, at, len) != 0) {
        reject(c, 503, "out of memory");
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

static void build_request(conn_t *c, rc_http_server_request_t *req)
{
    rc_http_server_t *s = c->srv;
    memset(req, 0, sizeof(*req));
    req->method = method_of(llhttp_get_method(&c->parser));
    req->method_name = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
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
    req->content_length =
        (c->parser.flags & F_CONTENT_LENGTH) ? c->parser.content_length : UINT64_MAX;
    if (!(c->parser.flags & (F_CONTENT_LENGTH | F_CHUNKED)))
        req->content_length = 0; /* a request without either has no body */
    req->http_minor = llhttp_get_http_minor(&c->parser);
    req->start_ns = c->start_ns;
    req->conn_id = c->id;
}

static int on_headers_complete(llhttp_t *p)
{
    conn_t *c = p->data;
    rc_http_server_t *s = c->srv;
    c->state = ST_BODY;
    c->deadline = uv_now(s->loop) + s->lim.body_timeout_ms;
    if (c->after_drain) {
        reject(c, 503, "server is shutting down");
        return HPE_PAUSED;
    }
    rc_http_server_request_t req;
    build_request(c, &req);
    int has_body = req.content_length != 0;
    if (req.content_length != UINT64_MAX && req.content_length > s->lim.max_body_bytes) {
        reject(c, 413, "request body larger than the configured maximum");
        return HPE_PAUSED;
    }
    const rc_http_header_t *ex = rc_http_find_header(&req, "expect");
    if (ex != NULL) {
        if (ex->value.len != 12 || strncasecmp(ex->value.ptr, "100-continue", 12) != 0) {
            reject(c, 417, "unsupported Expect header");
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
        if (res.status != 0) {
            /* A body we will not read is discarded when its length is known and allowed;
             * otherwise (chunked, or a client waiting for 100) the connection closes. */
            int keep = llhttp_should_keep_alive(p) && !res.close && !s->draining &&
                       (!has_body || (req.content_length != UINT64_MAX && !c->expect_continue));
            c->close_after = !keep;
            queue_response(c, &res, req.method == RC_HTTP_HEAD, req.http_minor);
            if (!keep) {
                c->stop = 1;
                return HPE_PAUSED;
            }
            c->skip_body = 1;
            return 0;
        }
    }
    if (c->expect_continue)
        out_append(s, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    /* Known length: a body that needs copying gets one buffer of exactly that size. */
    c->expected_body = req.content_length != UINT64_MAX ? req.content_length : 0;
    return 0;
}

static int body_own(conn_t *c, size_t extra)
{
    size_t need = c->blen + extra;
    if (need > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 4096;
        while (cap < need)
            cap *= 2;
        if (c->expected_body >= need && c->expected_body < cap)
            cap = c->expected_body;
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

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->skip_body)
        return 0;
    if (c->blen + len > c->max_body) {
        reject(c, 413, "request body larger than the configured maximum");
        return HPE_USER;
    }
    if (c->blen == 0) {
        c->body_borrowed = at;
        c->blen = len;
        return 0;
    }
    if (body_own(c, len) != 0) {
        reject(c, 503, "out of memory");
        return HPE_USER;
    }
    memcpy(c->body + c->blen, at, len);
    c->blen += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn_t *c = p->data;
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
            c->state = ST_IDLE;
            c->deadline = s->draining ? s->drain_deadline : UINT64_MAX;
            c->body_borrowed = NULL;
            c->blen = 0;
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
            c->state = ST_IDLE;
            c->deadline = uv_now(s->loop) + RC_HTTP_LINGER_MS;
            c->body_borrowed = NULL;
            c->blen = 0;
            if (res.raw)
                out_append(s, res.body, res.body_len);
            return HPE_PAUSED;
        }
        if (res.status == 0)
            rc_http_response_error(&res, 500, "handler produced no response");
        if (res.close)
            keep = 0;
        c->close_after = !keep;
        queue_response(c, &res, req.method == RC_HTTP_HEAD, req.http_minor);
    } else if (!keep) {
        c->close_after = 1; /* the early response went out without "close"; the FIN tells */
    }
    c->state = ST_IDLE;
    c->body_borrowed = NULL;
    c->blen = 0;
    if (c->bcap > RC_HTTP_KEEP_BODY) {
        /* One large request must not pin megabytes for the rest of a keep-alive connection. */
        free(c->body);
        c->body = NULL;
        c->bcap = 0;
    }
    uint64_t now = uv_now(s->loop);
    c->deadline = now + s->lim.idle_timeout_ms;
    if (s->draining && c->deadline > s->drain_deadline)
        c->deadline = s->drain_deadline;
    if (!keep) {
        c->stop = 1;
        return HPE_PAUSED;
    }
    return 0;
}

/* ---- connections ----------------------------------------------------------------------- */

static void srv_check_done(rc_http_server_t *s)
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

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    rc_http_server_t *s = c->srv;
    if (c->counted && s->h.on_connection != NULL)
        s->h.on_connection(s->h.data, -1);
    if (s->shared_conns != NULL) /* relaxed: a count, ordering nothing */
        atomic_fetch_sub_explicit(s->shared_conns, 1, memory_order_relaxed);
    free(c->pend);
    free(c->hbuf);
    free(c->hdrs);
    free(c->body);
    free(c);
    s->nconns--;
    srv_check_done(s);
}

/* Marks the connection closing and takes it off the server's list. Returns 0 when it already
 * was closing (nothing to do). */
static int conn_unlink(conn_t *c)
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

static void conn_hard_close(conn_t *c)
{
    if (conn_unlink(c))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Like conn_hard_close, but the peer gets a TCP reset (SO_LINGER 0) instead of a FIN. */
static void conn_reset(conn_t *c)
{
    if (!conn_unlink(c))
        return;
    if (uv_tcp_close_reset(&c->tcp, on_conn_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

/* Keeps the bytes of `data` that follow a held request (pipelined input) for later. */
static int conn_keep_rest(conn_t *c, const char *data, size_t len)
{
    const char *pos = llhttp_get_error_pos(&c->parser);
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
    conn_t *c = st->data;
    rc_http_server_t *s = c->srv;
    if (nread < 0) {
        conn_hard_close(c); /* EOF or error: nothing more can be answered */
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->stop || c->state == ST_LINGER)
        return; /* input after a final response is discarded */
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (c->held && e == HPE_PAUSED && conn_keep_rest(c, buf->base, (size_t)nread) != 0)
        conn_hard_close(c);
    if (e != HPE_OK && !c->stop) {
        const char *why = llhttp_get_error_reason(&c->parser);
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s", why ? why : llhttp_errno_name(e));
        reject(c, 400, msg);
    } else if (c->body_borrowed != NULL) {
        /* The body is incomplete and lives in the read buffer, which the next read reuses. */
        if (body_own(c, 0) != 0) {
            reject(c, 503, "out of memory");
        }
    }
    conn_flush(c);
    if (!c->closing && c->reading && c->pending_out > s->lim.max_pending_out) {
        /* A pipelining client that does not read its responses stops being read. */
        uv_read_stop(st);
        c->reading = 0;
        /* From now on the client's own pace is the problem: it has the idle timeout to read. */
        c->deadline = uv_now(s->loop) + s->lim.idle_timeout_ms;
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    rc_http_server_t *s = l->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->hdrs = calloc(s->lim.max_headers, sizeof(hdr_ref_t));
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
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_hard_close(c);
        return;
    }
    if (s->h.on_connection != NULL) {
        c->counted = 1;
        s->h.on_connection(s->h.data, 1);
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    c->state = ST_IDLE;
    c->deadline = uv_now(s->loop) + s->lim.header_timeout_ms;
    size_t nopen = s->nconns;
    if (s->shared_conns != NULL)
        nopen = atomic_fetch_add_explicit(s->shared_conns, 1, memory_order_relaxed) + 1;
    if (nopen > s->lim.max_connections) {
        reject(c, 503, "too many connections");
        conn_flush(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_hard_close(c);
        return;
    }
    c->reading = 1;
}

static void on_sweep(uv_timer_t *t)
{
    rc_http_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    int force = s->draining && now >= s->drain_deadline;
    for (conn_t *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (force) {
            conn_hard_close(c);
            continue;
        }
        if (now < c->deadline || c->closing)
            continue;
        if (!c->reading && c->state != ST_LINGER) {
            conn_hard_close(c); /* paused for a client that did not read its answers */
            continue;
        }
        if (c->state == ST_HEADERS || c->state == ST_BODY) {
            if (c->stop || c->writes_in_flight > 0) {
                conn_hard_close(c); /* the client does not read what we answered */
                continue;
            }
            reject(c, 408,
                   c->state == ST_HEADERS ? "timed out reading request headers"
                                          : "timed out reading request body");
            conn_flush(c);
        } else {
            conn_hard_close(c); /* idle keep-alive, or a lingering close that ran out */
        }
    }
}

/* ---- server ------------------------------------------------------------------------------ */

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

static void on_srv_handle_closed(uv_handle_t *h)
{
    rc_http_server_t *s = h->data;
    s->open_handles--;
    srv_check_done(s);
}

int rc_http_server_create(uv_loop_t *loop, const rc_http_server_options_t *opt,
                          rc_http_server_t **out)
{
    if (opt->handler.on_request == NULL || opt->host == NULL)
        return -EINVAL;
    rc_http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    rc_http_limits_t def;
    rc_http_limits_default(&def);
    s->lim = opt->limits;
#define RC_DEFAULT(f)                                                                              \
    if (s->lim.f == 0)                                                                             \
        s->lim.f = def.f;
    RC_DEFAULT(max_body_bytes)
    RC_DEFAULT(max_header_bytes)
    RC_DEFAULT(max_headers)
    RC_DEFAULT(max_connections)
    RC_DEFAULT(header_timeout_ms)
    RC_DEFAULT(body_timeout_ms)
    RC_DEFAULT(idle_timeout_ms)
    RC_DEFAULT(drain_timeout_ms)
    RC_DEFAULT(max_pending_out)
#undef RC_DEFAULT
    s->h = opt->handler;
    s->loop = loop;
    s->shared_conns = opt->shared_connections;
    s->req_headers = calloc(s->lim.max_headers, sizeof(rc_http_header_t));
    if (s->req_headers == NULL) {
        free(s);
        return -ENOMEM;
    }
    int fd = -1;
    int rc = make_listen_socket(opt->host, opt->port, opt->reuseport, opt->join, &fd);
    if (rc != 0) {
        free(s->req_headers);
        free(s);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);

    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->open_handles = 2;
    s->listener_open = 1;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        if (uv_fileno((uv_handle_t *)&s->listener, &(uv_os_fd_t){0}) != 0)
            close(fd);
        rc_http_server_close(s, NULL, NULL); /* freed once the loop runs the close callbacks */
        return rc;
    }
    uint32_t m = s->lim.header_timeout_ms;
    if (s->lim.body_timeout_ms < m)
        m = s->lim.body_timeout_ms;
    if (s->lim.idle_timeout_ms < m)
        m = s->lim.idle_timeout_ms;
    uint64_t tick = m / 4;
    tick = tick < 5 ? 5 : tick > 1000 ? 1000 : tick;
    uv_timer_start(&s->sweep, on_sweep, tick, tick);
    *out = s;
    return 0;
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
    for (conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->deadline > s->drain_deadline)
            c->deadline = s->drain_deadline;
    }
    srv_check_done(s);
}

int rc_http_server_respond(rc_http_server_t *s, uint64_t conn_id, const rc_http_server_response_t *res)
{
    conn_t *c = s->conns;
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
    queue_response(c, res, c->held_head, c->held_minor);
    c->deadline = uv_now(s->loop) + s->lim.idle_timeout_ms;
    if (s->draining && c->deadline > s->drain_deadline)
        c->deadline = s->drain_deadline;
    conn_flush(c);
    char *pend = c->pend;
    size_t n = c->pend_len;
    c->pend = NULL;
    c->pend_len = 0;
    if (keep && !c->closing) {
        c->stop = 0;
        llhttp_resume(&c->parser);
        if (n > 0) {
            uv_buf_t b = uv_buf_init(pend, (unsigned)n);
            on_read((uv_stream_t *)&c->tcp, (ssize_t)n, &b); /* the pipelined rest */
        }
        conn_maybe_resume(c);
    }
    free(pend);
    return 0;
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
    for (conn_t *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_hard_close(c);
    }
}
