/* The Dapr API's request path. As in net/ingress.c, everything that needs only the request line
 * and headers is decided in on_headers (route, method, pubsub, topic, declared size), so a
 * refused publish never has its body read; on_request gets the pubsub back in req->ctx and the
 * route in req->ctx_tag, re-reads the two path segments (cheap, and no state is kept between the
 * two calls: other requests of the loop may run in between) and publishes. */
#include "net/dapr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/codec_http.h"
#include "core/errors.h"
#include "net/dapr_bulk.h"
#include "net/held.h"
#include "net/http/http_status.h"
#include "net/storage/publish.h"

#ifndef RC_PROJECT_VERSION
#define RC_PROJECT_VERSION "0"
#endif

typedef enum {
    R_UNKNOWN = 0,
    R_PUBLISH,
    R_BULK,
    R_HEALTHZ,
    R_OUTBOUND,
    R_METADATA,
} route_t;

#define ALLOW_PUBLISH "Allow: POST, PUT\r\n"
#define ALLOW_GET     "Allow: GET, HEAD\r\n"

static int has_prefix(const char *p, size_t n, const char *pre, size_t plen)
{
    return n >= plen && memcmp(p, pre, plen) == 0;
}

int rc_dapr_owns_path(const char *path, size_t len)
{
    static const char v1[] = "/v1.0", alpha[] = "/v1.0-alpha1";
    for (int i = 0; i < 2; i++) {
        const char *pre = i ? alpha : v1;
        size_t plen = i ? sizeof(alpha) - 1 : sizeof(v1) - 1;
        if (has_prefix(path, len, pre, plen) && (len == plen || path[plen] == '/'))
            return 1;
    }
    return 0;
}

/* The route of a path and, for publish routes, the rest after the route's prefix
 * ("{pubsub}/{topic}"). */
static route_t route(const char *p, size_t n, rc_str_t *rest)
{
    static const struct {
        const char *prefix;
        route_t r;
        int exact;
    } table[] = {
        // clang-format off
        {"/v1.0/healthz", R_HEALTHZ, 1},
        {"/v1.0/healthz/outbound", R_OUTBOUND, 1},
        {"/v1.0/metadata", R_METADATA, 1},
        {"/v1.0/publish/bulk", R_BULK, 0},
        {"/v1.0-alpha1/publish/bulk", R_BULK, 0},
        {"/v1.0/publish", R_PUBLISH, 0},
        // clang-format on
    };
    *rest = RC_STR("");
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t plen = strlen(table[i].prefix);
        if (!has_prefix(p, n, table[i].prefix, plen))
            continue;
        if (n == plen)
            return table[i].r;
        if (table[i].exact || p[plen] != '/')
            continue;
        *rest = (rc_str_t){p + plen + 1, n - plen - 1};
        return table[i].r;
    }
    return R_UNKNOWN;
}

/* Splits "{pubsub}/{topic}" and URL-decodes both (the topic keeps its '/'). */
static int split(rc_dapr_t *d, rc_str_t rest, rc_str_t *pubsub, rc_str_t *topic, rc_dapr_error_t *e)
{
    const char *slash = memchr(rest.ptr, '/', rest.len);
    rc_str_t ps = {rest.ptr, slash ? (size_t)(slash - rest.ptr) : rest.len};
    rc_str_t tp = slash ? (rc_str_t){slash + 1, rest.len - ps.len - 1} : RC_STR("");
    int rc = rc_ce_percent_decode(ps, &d->arena, pubsub);
    if (rc == 0)
        rc = rc_ce_percent_decode(tp, &d->arena, topic);
    if (rc == -ENOMEM)
        return rc_dapr_fail(e, RC_DAPR_E_NOMEM, "out of memory for this request; retry later");
    if (rc != 0)
        return rc_dapr_fail(e, RC_DAPR_E_MALFORMED, "path '%.*s' has a malformed %%-escape",
                            (int)(rest.len > 200 ? 200 : rest.len), rest.ptr);
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------- */

/* A growing output buffer (a loop's d->out, or a listing entry's): appends never fail,
 * `failed` says whether one did. */
typedef struct {
    char **buf;
    size_t *cap;
    size_t len;
    int failed;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > *o->cap) {
        size_t cap = *o->cap ? *o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        char *nb = realloc(*o->buf, cap);
        if (nb == NULL) {
            o->failed = 1;
            return;
        }
        *o->buf = nb;
        *o->cap = cap;
    }
    memcpy(*o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A JSON string literal of `s` (bytes that are not UTF-8 pass as they are: every string written
 * here was checked or comes from the config). */
static void put_json(out_t *o, rc_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s.ptr + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        put(o, esc, c < 0x20 ? 6 : 2);
    }
    put(o, s.ptr + run, s.len - run);
    put(o, "\"", 1);
}

static void count_reject(rc_dapr_t *d, int status)
{
    rc_metric_add(&d->metrics->rejected[rc_metrics_reason_for_status(status, 0)], 1);
}

/* `{"errorCode": ..., "message": ...}` in the response's scratch (the message truncated to fit). */
static void respond_error(rc_dapr_t *d, rc_http_server_response_t *res, const rc_dapr_error_t *e)
{
    const char *code = rc_dapr_code_name(e->code);
    char *p = res->scratch, *end = res->scratch + sizeof(res->scratch) - 8;
    p += snprintf(p, (size_t)(end - p), "{\"errorCode\":\"%s\",\"message\":\"", code);
    for (const unsigned char *m = (const unsigned char *)e->msg; *m != '\0' && p + 8 < end; m++) {
        if (*m == '"' || *m == '\\') {
            *p++ = '\\';
            *p++ = (char)*m;
        } else if (*m < 0x20) {
            p += snprintf(p, 7, "\\u%04x", *m);
        } else {
            *p++ = (char)*m;
        }
    }
    memcpy(p, "\"}", 2);
    p += 2;
    res->status = e->status;
    res->content_type = "application/json";
    res->body = res->scratch;
    res->body_len = (size_t)(p - res->scratch);
    if (e->status == 429 || e->status == 503) { /* 503: a redis store refused */
        res->headers = d->retry_after_line;
        res->headers_len = strlen(d->retry_after_line);
    }
    count_reject(d, e->status);
}

static void respond_method(rc_dapr_t *d, rc_http_server_response_t *res, const char *allow,
                           const rc_dapr_error_t *e)
{
    respond_error(d, res, e);
    res->headers = allow;
    res->headers_len = strlen(allow);
}

/* ---- probes and metadata --------------------------------------------------------------------- */

static rc_str_t header(const rc_http_server_request_t *req, const char *name)
{
    const rc_http_header_t *h = rc_http_find_header(req, name);
    return h != NULL ? h->value : RC_STR_NULL;
}

static void put_subscription(out_t *o, const rc_config_dapr_sub_t *s, int *first)
{
    puts_(o, *first ? "{\"pubsubname\":" : ",{\"pubsubname\":");
    *first = 0;
    put_json(o, rc_str(s->pubsub));
    puts_(o, ",\"topic\":");
    put_json(o, rc_str(s->topic));
    puts_(o, ",\"metadata\":{");
    if (s->raw_payload)
        puts_(o, "\"rawPayload\":\"true\"");
    puts_(o, "},\"rules\":{\"rules\":[");
    for (size_t r = 0; r < s->rule_count; r++) {
        puts_(o, r ? ",{\"match\":" : "{\"match\":");
        put_json(o, rc_str(s->rules[r].match));
        puts_(o, ",\"path\":");
        put_json(o, rc_str(s->rules[r].path));
        puts_(o, "}");
    }
    if (s->default_path != NULL) {
        /* Dapr lists the default route as the last rule, with an empty match. */
        puts_(o, s->rule_count ? ",{\"match\":\"\",\"path\":" : "{\"match\":\"\",\"path\":");
        put_json(o, rc_str(s->default_path));
        puts_(o, "}");
    }
    puts_(o, "]},\"deadLetterTopic\":");
    put_json(o, s->dead_letter_topic ? rc_str(s->dead_letter_topic) : RC_STR(""));
    puts_(o, s->programmatic ? ",\"type\":\"PROGRAMMATIC\"" : ",\"type\":\"DECLARATIVE\"");
    puts_(o, ",\"appID\":");
    put_json(o, s->app != NULL ? rc_str(s->app->name) : RC_STR(""));
    puts_(o, "}");
}

int rc_dapr_listing_init(rc_dapr_listing_t *l)
{
    memset(l, 0, sizeof(*l));
    return uv_mutex_init(&l->lock);
}

static void listing_free(rc_dapr_listing_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].json);
    free(v);
}

void rc_dapr_listing_destroy(rc_dapr_listing_t *l)
{
    listing_free(l->v, l->n);
    uv_mutex_destroy(&l->lock);
}

int rc_dapr_listing_set(rc_dapr_listing_t *l, const rc_config_t *c)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < c->dapr_sub_count; i++)
        n += c->dapr_subs[i]->programmatic;
    rc_dapr_listing_entry_t *v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < c->dapr_sub_count; i++) {
        const rc_config_dapr_sub_t *s = c->dapr_subs[i];
        if (!s->programmatic)
            continue;
        size_t cap = 0;
        out_t o = {.buf = &v[k].json, .cap = &cap};
        int first = 1;
        put_subscription(&o, s, &first);
        put(&o, "", 1); /* NUL */
        snprintf(v[k].app, sizeof(v[k].app), "%s", s->app != NULL ? s->app->name : "");
        k++;
        if (o.failed) {
            listing_free(v, k);
            return -ENOMEM;
        }
    }
    uv_mutex_lock(&l->lock);
    rc_dapr_listing_entry_t *old = l->v;
    size_t old_n = l->n;
    l->v = v;
    l->n = n;
    uv_mutex_unlock(&l->lock);
    listing_free(old, old_n);
    return 0;
}

/* GET /v1.0/metadata. A sidecar shows its own app's subscriptions: with a dapr-app-id header only
 * that app's are listed, without one every app's. */
static void metadata(rc_dapr_t *d, const rc_http_server_request_t *req,
                     rc_http_server_response_t *res)
{
    const rc_config_t *cfg = d->cfg;
    rc_str_t app = header(req, "dapr-app-id");
    out_t o = {.buf = &d->out, .cap = &d->out_cap};
    puts_(&o, "{\"id\":");
    put_json(&o, app.ptr != NULL && app.len > 0 ? app : RC_STR("ringcast"));
    puts_(&o, ",\"runtimeVersion\":\"ringcast-" RC_PROJECT_VERSION "\",\"enabledFeatures\":[],"
              "\"actors\":[],\"components\":[");
    for (size_t i = 0; i < cfg->pubsub_count; i++) {
        puts_(&o, i ? ",{\"name\":" : "{\"name\":");
        put_json(&o, rc_str(cfg->pubsubs[i].name));
        puts_(&o, ",\"type\":\"pubsub.ringcast\",\"version\":\"v1\",\"capabilities\":"
                  "[\"BULK_PUBLISH\"]}");
    }
    puts_(&o, "],\"httpEndpoints\":[],\"subscriptions\":[");
    int first = 1;
    for (size_t i = 0; i < cfg->dapr_sub_count; i++) {
        const rc_config_dapr_sub_t *s = cfg->dapr_subs[i];
        if (app.ptr != NULL && app.len > 0 &&
            (s->app == NULL || !rc_str_eq_cstr(app, s->app->name)))
            continue;
        put_subscription(&o, s, &first);
    }
    if (d->listing != NULL) {
        uv_mutex_lock(&d->listing->lock);
        for (size_t i = 0; i < d->listing->n; i++) {
            if (app.ptr != NULL && app.len > 0 && !rc_str_eq_cstr(app, d->listing->v[i].app))
                continue;
            if (!first)
                puts_(&o, ",");
            puts_(&o, d->listing->v[i].json);
            first = 0;
        }
        uv_mutex_unlock(&d->listing->lock);
    }
    puts_(&o, "],\"extended\":{}}");
    if (o.failed) {
        rc_dapr_error_t e;
        rc_dapr_fail(&e, RC_DAPR_E_NOMEM, "out of memory for the metadata");
        respond_error(d, res, &e);
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    res->body = d->out;
    res->body_len = o.len;
}

/* ---- publish --------------------------------------------------------------------------------- */

static uint64_t body_limit(const rc_dapr_t *d, route_t r)
{
    return r == R_BULK ? d->cfg->limits.max_batch_bytes : d->cfg->limits.max_event_bytes;
}

/* The checks of a publish request that need no body, in Dapr's order. */
static int check_publish(rc_dapr_t *d, const rc_http_server_request_t *req, route_t r,
                         rc_str_t rest, const rc_dapr_pubsub_t **ps, rc_dapr_error_t *e)
{
    const rc_config_t *cfg = d->cfg;
    if (req->method != RC_HTTP_POST && req->method != RC_HTTP_PUT)
        return rc_dapr_fail(e, RC_DAPR_E_METHOD, "POST or PUT only, not %s", req->method_name);
    if (cfg->pubsub_count == 0)
        return rc_dapr_fail(e, RC_DAPR_E_NOT_CONFIGURED,
                            "no pubsub is configured (add a Component of type pubsub.ringcast)");
    rc_str_t pubsub, topic;
    if (split(d, rest, &pubsub, &topic, e) != 0)
        return -1;
    if (pubsub.len == 0)
        return rc_dapr_fail(e, RC_DAPR_E_PUBSUB_EMPTY, "pubsub name is empty");
    const rc_config_pubsub_t *p = rc_config_find_pubsub(cfg, pubsub.ptr, pubsub.len);
    if (p == NULL)
        return rc_dapr_fail(e, RC_DAPR_E_PUBSUB_UNKNOWN, "pubsub '%.*s' not found",
                            (int)(pubsub.len > 100 ? 100 : pubsub.len), pubsub.ptr);
    *ps = &d->pubsubs[p - cfg->pubsubs];
    if ((*ps)->store == NULL)
        return rc_dapr_fail(e, RC_DAPR_E_PUBSUB_UNKNOWN,
                            "pubsub '%s' names broker %s/%s, which is not configured", p->name,
                            p->ns, p->broker);
    if (topic.len == 0)
        return rc_dapr_fail(e, RC_DAPR_E_TOPIC_EMPTY, "topic is empty in pubsub '%s'", p->name);
    uint64_t max = body_limit(d, r);
    if (req->content_length != UINT64_MAX && req->content_length > max)
        return rc_dapr_fail(e, RC_DAPR_E_TOO_LARGE,
                            "body of %llu bytes exceeds the maximum of %llu bytes",
                            (unsigned long long)req->content_length, (unsigned long long)max);
    return 0;
}

void rc_dapr_on_headers(rc_dapr_t *d, const rc_http_server_request_t *req,
                        rc_http_server_response_t *res)
{
    rc_arena_reset(&d->arena);
    rc_metric_add(&d->metrics->requests, 1);
    rc_str_t rest;
    route_t r = route(req->path, req->path_len, &rest);
    rc_dapr_error_t e;
    if (r == R_UNKNOWN) {
        rc_dapr_fail(&e, RC_DAPR_E_NOT_FOUND,
                     "no Dapr API at '%.*s' (ringcast serves publish, publish/bulk, healthz and "
                     "metadata)",
                     (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
        respond_error(d, res, &e);
        return;
    }
    if (r == R_HEALTHZ || r == R_OUTBOUND || r == R_METADATA) {
        if (req->method != RC_HTTP_GET && req->method != RC_HTTP_HEAD) {
            rc_dapr_fail(&e, RC_DAPR_E_METHOD, "GET only, not %s", req->method_name);
            respond_method(d, res, ALLOW_GET, &e);
        } else if (r == R_METADATA) {
            metadata(d, req, res);
        } else {
            res->status = 204;
        }
        return;
    }
    const rc_dapr_pubsub_t *ps = NULL;
    if (check_publish(d, req, r, rest, &ps, &e) != 0) {
        if (e.code == RC_DAPR_E_METHOD)
            respond_method(d, res, ALLOW_PUBLISH, &e);
        else
            respond_error(d, res, &e);
        return;
    }
    res->ctx = ps;
    res->ctx_tag = (uint32_t)r;
    res->max_body = body_limit(d, r);
}

/* The store's refusal as a Dapr error: 429 (ring full) and 413 keep their status. */
static void publish_error(int rc, const char *msg, rc_dapr_error_t *e)
{
    rc_dapr_code_t code = RC_DAPR_E_PUBLISH;
    if (rc == RC_EINVALID_EVENT || rc == RC_ETTL_EXPIRED)
        code = RC_DAPR_E_CLOUD_EVENT;
    else if (rc == RC_ETOO_LARGE || rc == RC_ERING_TOO_BIG)
        code = RC_DAPR_E_TOO_LARGE;
    rc_dapr_fail(e, code, "%s", msg);
    if (code == RC_DAPR_E_PUBLISH && rc != 0)
        e->status = rc == RC_ERING_FULL ? 429 : rc_http_status_for(rc) == 503 ? 503 : 500;
}

/* Everything the envelope needs from the request besides the body. */
static int describe(rc_dapr_t *d, const rc_http_server_request_t *req, rc_dapr_publish_t *p,
                    rc_dapr_meta_t *m, rc_dapr_error_t *e)
{
    memset(p, 0, sizeof(*p));
    memset(m, 0, sizeof(*m));
    rc_str_t rest;
    route(req->path, req->path_len, &rest);
    if (split(d, rest, &p->pubsub, &p->topic, e) != 0 ||
        rc_dapr_meta_query(req->query, req->query_len, &d->arena, m, e) != 0)
        return -1;
    p->app_id = header(req, "dapr-app-id");
    if (p->app_id.ptr == NULL || p->app_id.len == 0)
        p->app_id = RC_STR("ringcast");
    p->content_type = header(req, "content-type");
    if (p->content_type.ptr != NULL && p->content_type.len == 0)
        p->content_type = RC_STR_NULL;
    p->traceparent = header(req, "traceparent");
    p->tracestate = header(req, "tracestate");
    p->now_ns = rc_wall_ns();
    return rc_dapr_request_check(p, e);
}

static rc_publish_opts_t publish_opts(const rc_dapr_t *d, const rc_dapr_pubsub_t *ps, int batch,
                                      int64_t now_ns)
{
    rc_publish_opts_t o = {
        .ttl = RC_PUBLISH_TTL_INGRESS,
        .batch = batch,
        .max_event = d->cfg->limits.max_event_bytes + d->cfg->limits.max_header_bytes,
        .arrival_ns = now_ns,
        .broker = ps->broker,
    };
    return o;
}

/* What a stored publish leaves for its answer: the durability ticket (0: nothing to wait for)
 * and, for a bulk publish, its entries (in the request's arena). */
typedef struct {
    uint64_t ticket;
    size_t n;
    const rc_dapr_bulk_entry_t *en;
} stored_t;

static int publish_one(rc_dapr_t *d, const rc_dapr_pubsub_t *ps,
                       const rc_http_server_request_t *req, stored_t *st, rc_dapr_error_t *e)
{
    rc_dapr_publish_t p;
    rc_dapr_meta_t m;
    rc_event_t ev;
    if (describe(d, req, &p, &m, e) != 0 ||
        rc_dapr_envelope(&d->gen, &p, &m, (rc_str_t){req->body ? req->body : "", req->body_len},
                         &d->arena, &ev, e) != 0)
        return -1;
    rc_publish_opts_t o = publish_opts(d, ps, 0, p.now_ns);
    o.ticket = d->held != NULL ? &st->ticket : NULL;
    char msg[RC_DAPR_MSG_MAX - 32];
    int rc = rc_publish(ps->store, &ev, 1, &d->arena, &o, msg, sizeof(msg));
    if (rc != 0) {
        publish_error(rc, msg, e);
        return -1;
    }
    st->n = 1;
    return 0;
}

/* Each entry id as a JSON string literal followed by '\n' (a literal holds no raw newline), in
 * a malloc'd buffer (*len bytes): what a failure answer lists, kept past the request when the
 * answer is held. NULL when out of memory. */
static char *entry_ids(const rc_dapr_bulk_entry_t *en, size_t n, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0;
    out_t o = {.buf = &buf, .cap = &cap};
    for (size_t i = 0; i < n; i++) {
        put_json(&o, en[i].entry_id);
        put(&o, "\n", 1);
    }
    if (o.failed || buf == NULL) {
        free(buf);
        return NULL;
    }
    *len = o.len;
    return buf;
}

/* 500 (429 when the ring is full, 413 when an entry is too large) with every entry failed:
 * the entries are stored all together or not at all. `ids` as entry_ids makes them (NULL: out
 * of memory, answered without the list). */
static void respond_failed_entries(rc_dapr_t *d, rc_http_server_response_t *res, const char *ids,
                                   size_t ids_len, const rc_dapr_error_t *e)
{
    if (ids == NULL) {
        respond_error(d, res, e);
        return;
    }
    out_t o = {.buf = &d->out, .cap = &d->out_cap};
    puts_(&o, "{\"failedEntries\":[");
    for (const char *p = ids, *end = ids + ids_len, *nl; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        puts_(&o, p == ids ? "{\"entryId\":" : ",{\"entryId\":");
        put(&o, p, (size_t)(nl - p));
        puts_(&o, ",\"error\":");
        put_json(&o, rc_str(e->msg));
        puts_(&o, "}");
    }
    puts_(&o, "],\"errorCode\":\"ERR_PUBSUB_PUBLISH_MESSAGE\",\"message\":");
    put_json(&o, rc_str(e->msg));
    puts_(&o, "}");
    if (o.failed) {
        respond_error(d, res, e);
        return;
    }
    res->status = e->status;
    res->content_type = "application/json";
    res->body = d->out;
    res->body_len = o.len;
    if (e->status == 429 || e->status == 503) { /* 503: a redis store refused */
        res->headers = d->retry_after_line;
        res->headers_len = strlen(d->retry_after_line);
    }
    count_reject(d, e->status);
}

static void respond_bulk_failed(rc_dapr_t *d, rc_http_server_response_t *res,
                                const rc_dapr_bulk_entry_t *en, size_t n, const rc_dapr_error_t *e)
{
    size_t len = 0;
    char *ids = entry_ids(en, n, &len);
    respond_failed_entries(d, res, ids, len, e);
    free(ids);
}

/* Returns 0 (stored), -1 with `e` (answer it), or 1 when the response is already filled. */
static int publish_bulk(rc_dapr_t *d, const rc_dapr_pubsub_t *ps,
                        const rc_http_server_request_t *req, rc_http_server_response_t *res,
                        stored_t *st, rc_dapr_error_t *e)
{
    rc_dapr_publish_t p;
    rc_dapr_meta_t m;
    rc_dapr_bulk_entry_t *en;
    size_t n;
    if (describe(d, req, &p, &m, e) != 0 ||
        rc_dapr_bulk_parse((rc_str_t){req->body ? req->body : "", req->body_len}, &m,
                           d->cfg->limits.max_batch_events, &d->arena, &en, &n, e) != 0)
        return -1;
    if (n == 0)
        return 0;
    rc_event_t *events = rc_arena_alloc(&d->arena, n * sizeof(*events), 8);
    char *tp = rc_arena_alloc(&d->arena, RC_DAPR_TRACEPARENT_LEN, 1);
    if (events == NULL || tp == NULL)
        return rc_dapr_fail(e, RC_DAPR_E_NOMEM, "out of memory for this request; retry later");
    /* One request, one trace context: the entries share it, as in Dapr (one span per bulk
     * publish). */
    if (p.traceparent.ptr == NULL) {
        rc_dapr_traceparent(&d->gen.rng, tp);
        p.traceparent = (rc_str_t){tp, RC_DAPR_TRACEPARENT_LEN};
    }
    for (size_t i = 0; i < n; i++) {
        p.entry = en[i].entry_id;
        p.content_type = en[i].content_type;
        p.body_is_json = en[i].body_is_json;
        if (rc_dapr_envelope(&d->gen, &p, en[i].meta, en[i].body, &d->arena, &events[i], e) != 0)
            return -1;
    }
    rc_publish_opts_t o = publish_opts(d, ps, 1, p.now_ns);
    o.ticket = d->held != NULL ? &st->ticket : NULL; /* the batch is one write: one ticket */
    char msg[RC_DAPR_MSG_MAX - 32];
    int rc = rc_publish(ps->store, events, n, &d->arena, &o, msg, sizeof(msg));
    if (rc != 0) {
        publish_error(rc, msg, e);
        if (e->code == RC_DAPR_E_PUBLISH || e->code == RC_DAPR_E_TOO_LARGE) {
            respond_bulk_failed(d, res, en, n, e);
            return 1;
        }
        return -1;
    }
    st->n = n;
    st->en = en;
    return 0;
}

/* ---- durability sync: answers held until the flush (net/held.h) ---------------------------- */

typedef struct {
    rc_held_wait_t hw; /* first: net/held.c frees it */
    rc_dapr_t *d;
    uint64_t start_ns, body_len;
    size_t stored;
    int bulk;
    size_t ids_len;
    char ids[]; /* bulk: entry_ids, for a failure answer */
} held_t;

/* A stored publish whose flush failed: the ingress's 500, in Dapr's shape (a bulk publish
 * lists every entry failed: the flush covers all of them or none). */
static void durable_error(int rc, rc_dapr_error_t *e)
{
    if (rc == RC_ESTORE_UNAVAILABLE || rc == RC_ESTORE_UNREPLICATED) {
        /* a redis store refused the XADD: nothing (or not enough) stored, the app retries */
        rc_dapr_fail(e, RC_DAPR_E_PUBLISH, "%s; retry later",
                     rc == RC_ESTORE_UNAVAILABLE
                         ? "the broker's Redis is unreachable: the event was not stored"
                         : "not enough Redis replicas acknowledged the event");
        e->status = 503;
        return;
    }
    rc_dapr_fail(e, RC_DAPR_E_PUBLISH, "the event was stored but cannot be made durable: %s",
                 rc_strerror(rc));
    e->status = 500;
}

static void accept_publish(rc_dapr_t *d, size_t stored, uint64_t body_len,
                           rc_http_server_response_t *res)
{
    res->status = 204;
    rc_metric_add(&d->metrics->events_accepted, stored);
    rc_metric_add(&d->metrics->bytes_accepted, body_len);
}

static void answer(rc_held_wait_t *w, int rc, rc_http_server_response_t *res)
{
    held_t *h = (held_t *)w;
    rc_dapr_t *d = h->d;
    if (rc == 0) {
        accept_publish(d, h->stored, h->body_len, res);
    } else {
        rc_dapr_error_t e;
        durable_error(rc, &e);
        if (h->bulk)
            respond_failed_entries(d, res, h->ids, h->ids_len, &e);
        else
            respond_error(d, res, &e);
    }
    rc_metrics_observe_latency(d->metrics, rc_now_ns() - h->start_ns);
}

/* Holds the answer until the commit is on disk. Returns 1 (held), 0 (it already is: answer
 * now), or an error (the store's fdatasync failure, -ENOMEM). */
static int hold(rc_dapr_t *d, const rc_dapr_pubsub_t *ps, const rc_http_server_request_t *req,
                int bulk, const stored_t *st)
{
    size_t ids_len = 0;
    char *ids = bulk ? entry_ids(st->en, st->n, &ids_len) : NULL;
    if (bulk && ids == NULL)
        return -ENOMEM;
    held_t *h = calloc(1, sizeof(*h) + ids_len);
    if (h == NULL) {
        free(ids);
        return -ENOMEM;
    }
    h->hw.answer = answer;
    h->hw.conn_id = req->conn_id;
    h->d = d;
    h->start_ns = req->start_ns;
    h->body_len = req->body_len;
    h->stored = st->n;
    h->bulk = bulk;
    h->ids_len = ids_len;
    if (ids_len > 0)
        memcpy(h->ids, ids, ids_len);
    free(ids);
    int rc = rc_held_wait(d->held, ps->store, st->ticket, &h->hw);
    if (rc != 1)
        free(h);
    return rc;
}

void rc_dapr_on_request(rc_dapr_t *d, const rc_http_server_request_t *req,
                        rc_http_server_response_t *res)
{
    rc_arena_reset(&d->arena);
    const rc_dapr_pubsub_t *ps = req->ctx;
    route_t r = (route_t)req->ctx_tag;
    rc_dapr_error_t e;
    stored_t st = {0, 0, NULL};
    int rc;
    if (ps == NULL || (r != R_PUBLISH && r != R_BULK)) {
        rc = rc_dapr_fail(&e, RC_DAPR_E_PUBLISH, "request reached the Dapr API without a route");
        e.status = 500;
    } else if (req->body_len > body_limit(d, r)) {
        rc = rc_dapr_fail(&e, RC_DAPR_E_TOO_LARGE,
                          "body of %zu bytes exceeds the maximum of %llu "
                          "bytes",
                          req->body_len, (unsigned long long)body_limit(d, r));
    } else {
        rc =
            r == R_BULK ? publish_bulk(d, ps, req, res, &st, &e) : publish_one(d, ps, req, &st, &e);
    }
    if (rc == 0 && st.ticket != 0) {
        int hr = hold(d, ps, req, r == R_BULK, &st);
        if (hr == 1) {
            res->hold = 1; /* answered when the flush covers it (answer) */
            return;
        }
        if (hr < 0) {
            durable_error(hr, &e);
            if (r == R_BULK) {
                respond_bulk_failed(d, res, st.en, st.n, &e);
                rc = 1;
            } else {
                rc = -1;
            }
        }
    }
    if (rc == 0)
        accept_publish(d, st.n, req->body_len, res);
    else if (rc < 0)
        respond_error(d, res, &e);
    rc_metrics_observe_latency(d->metrics, rc_now_ns() - req->start_ns);
}

int rc_dapr_attach(rc_dapr_t *d, uv_loop_t *loop, rc_http_server_t *srv)
{
    int any = 0;
    for (size_t i = 0; i < d->cfg->pubsub_count && !any; i++)
        any = d->pubsubs[i].store != NULL && rc_held_store_syncs(d->pubsubs[i].store);
    if (!any)
        return 0;
    int rc = rc_held_attach(loop, srv, &d->held);
    d->own_held = rc == 0;
    return rc;
}

void rc_dapr_detach(rc_dapr_t *d)
{
    if (d->own_held)
        rc_held_detach(d->held);
    d->held = NULL;
    d->own_held = 0;
}

void rc_dapr_attach_held(rc_dapr_t *d, struct rc_held_s *held)
{
    d->held = held;
    d->own_held = 0;
}

/* ---- the listener of its own ----------------------------------------------------------------- */

static void own_on_headers(void *data, const rc_http_server_request_t *req,
                           rc_http_server_response_t *res)
{
    rc_dapr_t *d = data;
    if (rc_dapr_owns_path(req->path, req->path_len)) {
        rc_dapr_on_headers(d, req, res);
        return;
    }
    rc_dapr_error_t e;
    rc_dapr_fail(&e, RC_DAPR_E_NOT_FOUND, "this listener serves the Dapr API only (/v1.0/...)");
    rc_metric_add(&d->metrics->requests, 1);
    respond_error(d, res, &e);
}

static void own_on_request(void *data, const rc_http_server_request_t *req,
                           rc_http_server_response_t *res)
{
    rc_dapr_on_request(data, req, res);
}

static void own_on_rejected(void *data, int status, const char *reason)
{
    rc_dapr_t *d = data;
    (void)reason;
    rc_metric_add(&d->metrics->rejected[rc_metrics_reason_for_status(status, 1)], 1);
}

static void own_on_connection(void *data, int delta)
{
    rc_dapr_t *d = data;
    rc_metric_add(delta > 0 ? &d->metrics->connections_opened : &d->metrics->connections_closed, 1);
}

void rc_dapr_handler(rc_dapr_t *d, rc_http_handler_t *h)
{
    memset(h, 0, sizeof(*h));
    h->on_headers = own_on_headers;
    h->on_request = own_on_request;
    h->on_rejected = own_on_rejected;
    h->on_connection = own_on_connection;
    h->data = d;
}

int rc_dapr_init(rc_dapr_t *d, const rc_config_t *cfg, const rc_ingress_broker_t *brokers,
                 size_t broker_count, rc_ingress_metrics_t *metrics)
{
    memset(d, 0, offsetof(rc_dapr_t, arena_buf));
    d->cfg = cfg;
    d->metrics = metrics;
    snprintf(d->retry_after_line, sizeof(d->retry_after_line), "Retry-After: %u\r\n",
             cfg->retry_after_s);
    rc_dapr_gen_init(&d->gen);
    /* A bulk request decodes into a few times its size (entries, events, extension tables);
     * the cap turns a hostile one into a 503 instead of unbounded memory, as at the ingress. */
    rc_arena_init(&d->arena, d->arena_buf, sizeof(d->arena_buf),
                  4 * cfg->limits.max_batch_bytes + (1u << 20));
    d->pubsubs = calloc(cfg->pubsub_count ? cfg->pubsub_count : 1, sizeof(*d->pubsubs));
    if (d->pubsubs == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->pubsub_count; i++) {
        const rc_config_pubsub_t *p = &cfg->pubsubs[i];
        for (size_t b = 0; b < broker_count; b++) {
            if (strcmp(brokers[b].ns, p->ns) == 0 && strcmp(brokers[b].name, p->broker) == 0) {
                d->pubsubs[i].store = brokers[b].store;
                d->pubsubs[i].broker = brokers[b].label;
            }
        }
    }
    return 0;
}

void rc_dapr_close(rc_dapr_t *d)
{
    if (d == NULL)
        return;
    rc_arena_close(&d->arena);
    free(d->pubsubs);
    free(d->out);
    d->pubsubs = NULL;
    d->out = NULL;
    d->out_cap = 0;
}
