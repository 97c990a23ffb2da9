/* The dashboard: the page's files from the table compiled in (net/dashboard_assets.h) and the
 * Overview object it polls. The files are fixed for the life of the binary, so each carries
 * an ETag made at build time and `Cache-Control: no-cache`: a reload costs a 304, and a new
 * binary's page is never mixed with an old one's script. The Overview is never cached. */
#include "net/dashboard.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "net/admin_internal.h"
#include "net/dashboard_assets.h"

/* The page loads only its own files and fetches only the admin API, and may not be framed:
 * anything else is refused by the browser (and shows in its console), so an injected script or
 * a third-party request cannot happen unnoticed. No inline script or style either. */
#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "                    \
    "frame-ancestors 'none'\r\n"                                                                   \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"

#define path_is rc__admin_path_is

static const rc_dashboard_asset_t *find_asset(const rc_http_server_request_t *req)
{
    for (size_t i = 0; i < rc_dashboard_asset_count; i++) {
        if (path_is(req, rc_dashboard_assets[i].path))
            return &rc_dashboard_assets[i];
    }
    return NULL;
}

/* If-None-Match names `etag` (or is `*`). A list or a weak tag (W/"...") still contains it. */
static int not_modified(const rc_http_server_request_t *req, const char *etag)
{
    size_t n = strlen(etag);
    for (size_t i = 0; i < req->header_count; i++) {
        const rc_http_header_t *h = &req->headers[i];
        if (h->name.len != 13 || strncasecmp(h->name.ptr, "if-none-match", 13) != 0)
            continue;
        if (h->value.len == 1 && h->value.ptr[0] == '*')
            return 1;
        for (size_t j = 0; j + n <= h->value.len; j++) {
            if (memcmp(h->value.ptr + j, etag, n) == 0)
                return 1;
        }
    }
    return 0;
}

static void serve_asset(const rc_http_server_request_t *req, rc_http_server_response_t *res)
{
    const rc_dashboard_asset_t *f = find_asset(req);
    if (f == NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "no dashboard file at %.*s (the dashboard is at /)",
                 (int)(req->path_len < 80 ? req->path_len : 80), req->path);
        rc_http_response_error(res, 404, msg);
        return;
    }
    int n = snprintf(res->scratch, sizeof(res->scratch),
                     SECURITY_HEADERS "Cache-Control: no-cache\r\nETag: %s\r\n", f->etag);
    res->headers = res->scratch;
    res->headers_len = (size_t)n;
    if (not_modified(req, f->etag)) {
        res->status = 304;
        return;
    }
    res->status = 200;
    res->content_type = f->content_type;
    res->body = (const char *)f->data;
    res->body_len = f->len;
}

/* The Overview: one view of the serve process, so the brokers' and the triggers' numbers are of
 * the same moment, and that moment on the monotonic clock (sampleSeconds) for the rates. */
static cJSON *overview(rc_admin_t *a, const rc_http_server_request_t *req)
{
    rc_admin_view_t v;
    memset(&v, 0, sizeof(v));
    a->view(a->arg, &v);
    uint64_t mono = rc_now_ns();
    int64_t wall = rc_wall_ns();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "ringcast.dev/v1alpha1");
    cJSON_AddStringToObject(o, "kind", "Overview");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddNumberToObject(o, "timeMs", (double)(wall / 1000000));
    cJSON_AddNumberToObject(o, "sampleSeconds", (double)mono / 1e9);
    cJSON_AddNumberToObject(o, "startedMs", (double)v.started_ms);
    /* What the page may offer (pause/resume): writes as net/admin.c authorises them. With a
     * token the page asks for it; without one a browser may not write (rc__admin_loopback_trusted):
     * the page is read-only. */
    int token = a->token != NULL, writable = !token && rc__admin_loopback_trusted(req);
    cJSON_AddBoolToObject(o, "readOnly", !token && !writable);
    cJSON_AddBoolToObject(o, "writable", writable);
    cJSON_AddBoolToObject(o, "tokenRequired", token);
    cJSON *b = cJSON_AddArrayToObject(o, "brokers");
    cJSON *t = cJSON_AddArrayToObject(o, "triggers");
    cJSON *s = cJSON_AddArrayToObject(o, "subscriptions");
    rc__admin_collect_all(a, &v, b, t, s);
    return o;
}

static void serve_overview(rc_admin_t *a, const rc_http_server_request_t *req,
                           rc_http_server_response_t *res)
{
    rc__admin_answer_json(a, res, 200, overview(a, req), 503, "out of memory");
    if (res->status != 200)
        return; /* the error answer */
    res->headers = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
    res->headers_len = strlen(res->headers);
}

int rc_dashboard_route(rc_admin_t *a, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    int is_overview = path_is(req, RC_DASHBOARD_OVERVIEW_PATH);
    int is_file = path_is(req, "/") || (req->path_len >= 4 && memcmp(req->path, "/ui/", 4) == 0);
    if (!is_overview && !is_file)
        return 0;
    if (req->method != RC_HTTP_GET && req->method != RC_HTTP_HEAD) {
        rc_http_response_error(res, 405, "the dashboard is read-only: GET only");
        res->headers = "Allow: GET, HEAD\r\n";
        res->headers_len = strlen(res->headers);
    } else if (is_file) {
        serve_asset(req, res);
    } else if (a->view == NULL) {
        rc_http_response_error(res, 404, "this admin listener has no status API");
    } else {
        serve_overview(a, req, res);
    }
    return 1;
}
