#include "net/admin.h"

#include <stdlib.h>
#include <string.h>

static int path_is(const rc_http_request_t *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static void on_request(void *data, const rc_http_request_t *req, rc_http_response_t *res)
{
    rc_admin_t *a = data;
    int known = path_is(req, "/healthz") || path_is(req, "/readyz") || path_is(req, "/metrics");
    if (!known) {
        rc_http_response_error(res, 404, "unknown admin path (try /healthz, /readyz, /metrics)");
        return;
    }
    if (req->method != RC_HTTP_GET && req->method != RC_HTTP_HEAD) {
        rc_http_response_error(res, 405, "admin endpoints answer GET only");
        res->headers = "Allow: GET, HEAD\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    if (path_is(req, "/healthz")) {
        res->status = 200;
        res->content_type = "text/plain";
        res->body = "ok\n";
        res->body_len = 3;
    } else if (path_is(req, "/readyz")) {
        if (a->ready(a->arg)) {
            res->status = 200;
            res->content_type = "text/plain";
            res->body = "ready\n";
            res->body_len = 6;
        } else {
            rc_http_response_error(res, 503, "not ready: shutting down");
        }
    } else {
        size_t need = a->metrics(a->arg, a->buf, a->cap);
        if (need >= a->cap) {
            size_t cap = need + 4096;
            char *nb = realloc(a->buf, cap);
            if (nb == NULL) {
                rc_http_response_error(res, 503, "out of memory");
                return;
            }
            a->buf = nb;
            a->cap = cap;
            need = a->metrics(a->arg, a->buf, a->cap);
        }
        res->status = 200;
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
        res->body = a->buf;
        res->body_len = need < a->cap ? need : a->cap;
    }
}

void rc_admin_handler(rc_admin_t *a, rc_http_handler_t *h)
{
    memset(h, 0, sizeof(*h));
    h->on_request = on_request;
    h->data = a;
}

void rc_admin_close(rc_admin_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
}
