/* Responses of the HTTP/1.x server (http_server_internal.h): serialised without printf into one
 * output buffer per server, so that all responses produced by one read leave with one write
 * (directly when the socket takes them, through uv_write otherwise); then the close, reset or
 * lingering close a connection asked for. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/http/http_server.h"
#include "net/http/http_server_internal.h"

/* Output the socket did not take at once, copied so the output buffer serves the next read. */
typedef struct {
    uv_write_t req;
    rc__http_server_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

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

void rc__http_server_queue_bytes(rc__http_server_conn_t *c, const char *p, size_t n)
{
    out_append(c->srv, p, n);
}

/* No printf here: this runs for every request. */
void rc__http_server_queue_response(rc__http_server_conn_t *c, const rc_http_server_response_t *res,
                                    int head_only, int minor)
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

static void reject(rc__http_server_conn_t *c, int status, const char *reason, const char *headers)
{
    rc_http_server_response_t res;
    memset(&res, 0, offsetof(rc_http_server_response_t, scratch));
    rc_http_response_error(&res, status, reason);
    if (headers != NULL) {
        res.headers = headers;
        res.headers_len = strlen(headers);
    }
    c->stop = 1;
    c->close_after = 1;
    rc__http_server_conn_drop_body(c);
    rc__http_server_queue_response(c, &res, 0, 1);
    if (c->srv->h.on_rejected != NULL)
        c->srv->h.on_rejected(c->srv->h.data, status, reason);
}

void rc__http_server_reject(rc__http_server_conn_t *c, int status, const char *reason)
{
    reject(c, status, reason, NULL);
}

void rc__http_server_reject_busy(rc__http_server_conn_t *c, const char *reason)
{
    reject(c, 503, reason, c->srv->retry_after_line);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    rc__http_server_conn_t *c = w->conn;
    c->pending_out -= w->len;
    c->writes_in_flight--;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        rc__http_server_conn_close(c);
        return;
    }
    if (c->state == RC__HTTP_SERVER_IDLE || !c->reading) {
        /* Answers still flowing out mean the connection is not idle: a client is dropped only
         * after making no progress reading for the idle timeout. */
        rc__http_server_conn_deadline(c, c->srv->lim.idle_timeout_ms);
    }
    rc__http_server_conn_flush(c); /* starts the close once the last write is out */
    rc__http_server_conn_maybe_resume(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    rc__http_server_conn_t *c = req->data;
    if (status < 0 && !c->closing)
        rc__http_server_conn_close(c);
}

static void start_linger(rc__http_server_conn_t *c)
{
    /* Closing a socket with unread input makes the kernel send RST, which can destroy the
     * response before the client reads it. Send FIN instead and drain input for a while. */
    c->state = RC__HTTP_SERVER_LINGER;
    c->deadline = uv_now(c->srv->loop) + RC__HTTP_SERVER_LINGER_MS;
    c->shutting_down = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        rc__http_server_conn_close(c);
}

void rc__http_server_conn_flush(rc__http_server_conn_t *c)
{
    rc_http_server_t *s = c->srv;
    if (s->out_failed) {
        s->olen = 0;
        s->out_failed = 0;
        rc__http_server_conn_close(c);
        return;
    }
    size_t off = 0;
    if (s->olen > 0 && c->writes_in_flight == 0) {
        uv_buf_t b = uv_buf_init(s->out, (unsigned)s->olen);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            s->olen = 0;
            rc__http_server_conn_close(c);
            return;
        }
        off = n > 0 ? (size_t)n : 0;
    }
    if (off < s->olen) {
        size_t len = s->olen - off;
        write_req_t *w = malloc(sizeof(*w) + len);
        if (w == NULL) {
            s->olen = 0;
            rc__http_server_conn_close(c);
            return;
        }
        memcpy(w->data, s->out + off, len);
        w->conn = c;
        w->len = len;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            free(w);
            s->olen = 0;
            rc__http_server_conn_close(c);
            return;
        }
        c->pending_out += len;
        c->writes_in_flight++;
    }
    s->olen = 0;
    if (c->reset_after && c->writes_in_flight == 0) {
        rc__http_server_conn_reset(c);
        return;
    }
    if (c->close_after && c->writes_in_flight == 0 && !c->shutting_down) {
        if (c->no_linger)
            rc__http_server_conn_close(c);
        else
            start_linger(c);
    }
}
