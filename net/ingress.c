/* The ingress request path. Routing, method and size checks happen when the headers are
 * complete, so a request that will be refused never has its body read (and a client sending
 * `Expect: 100-continue` gets its final status instead of 100). The route and the content
 * type found then travel to on_request in the request's context (req->ctx: the broker;
 * req->ctx_tag: the mode, and whether Content-Type came twice), so each is worked out once. */
#include "net/ingress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/codec_http.h"
#include "core/errors.h"
#include "core/validate.h"
#include "core/clock.h"
#include "net/dapr.h"
#include "net/dedup.h"
#include "net/held.h"
#include "net/http/http_status.h"
#include "net/storage/publish.h"

#define ALLOW_LINE "Allow: POST, OPTIONS\r\n"

static const rc_ingress_broker_t *route(rc_ingress_t *ig, const rc_http_server_request_t *req,
                                        int *bad)
{
    const char *p = req->path;
    size_t n = req->path_len;
    *bad = 1;
    if (n < 4 || p[0] != '/')
        return NULL;
    const char *slash = memchr(p + 1, '/', n - 1);
    if (slash == NULL || slash == p + 1 || slash == p + n - 1)
        return NULL;
    const char *name = slash + 1;
    size_t name_len = (size_t)(p + n - name);
    if (memchr(name, '/', name_len) != NULL)
        return NULL;
    *bad = 0;
    size_t ns_len = (size_t)(slash - (p + 1));
    for (size_t i = 0; i < ig->broker_count; i++) {
        const rc_ingress_broker_t *b = &ig->brokers[i];
        if (strlen(b->ns) == ns_len && memcmp(b->ns, p + 1, ns_len) == 0 &&
            strlen(b->name) == name_len && memcmp(b->name, name, name_len) == 0)
            return b;
    }
    return NULL;
}

/* ctx_tag: the request's rc_ce_mode_t, plus this bit when Content-Type came more than once. */
#define TAG_DUP_CT 0x100u

static uint32_t classify(const rc_http_server_request_t *req)
{
    rc_ce_mode_t mode;
    int rc = rc_ce_request_mode(req->headers, req->header_count, &mode, NULL);
    return (uint32_t)mode | (rc != 0 ? TAG_DUP_CT : 0);
}

static uint64_t body_limit(const rc_ingress_t *ig, uint32_t tag)
{
    return (tag & 0xff) == RC_CE_MODE_BATCH ? ig->limits.max_batch_bytes
                                            : ig->limits.max_event_bytes;
}

static void refuse(rc_ingress_t *ig, rc_http_server_response_t *res, int status, const char *msg)
{
    rc_http_response_error(res, status, msg);
    rc_metric_add(&ig->metrics.rejected[rc_metrics_reason_for_status(status, 0)], 1);
}

static void on_headers(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    rc_ingress_t *ig = data;
    if (ig->dapr != NULL && rc_dapr_owns_path(req->path, req->path_len)) {
        rc_dapr_on_headers(ig->dapr, req, res);
        return;
    }
    int bad;
    const rc_ingress_broker_t *b = route(ig, req, &bad);
    rc_metric_add(&ig->metrics.requests, 1);
    if (b == NULL) {
        char msg[200];
        if (bad)
            snprintf(msg, sizeof(msg), "path must be /{namespace}/{broker}");
        else
            snprintf(msg, sizeof(msg), "no broker '%.*s'",
                     (int)(req->path_len > 150 ? 150 : req->path_len - 1), req->path + 1);
        refuse(ig, res, 404, msg);
        return;
    }
    if (req->method == RC_HTTP_OPTIONS) {
        res->status = 200;
        res->headers = ALLOW_LINE "WebHook-Allowed-Origin: *\r\nWebHook-Allowed-Rate: *\r\n";
        res->headers_len = strlen(res->headers);
        return;
    }
    if (req->method != RC_HTTP_POST) {
        char msg[96];
        snprintf(msg, sizeof(msg), "method %s not allowed; use POST", req->method_name);
        refuse(ig, res, 405, msg);
        res->headers = ALLOW_LINE;
        res->headers_len = strlen(ALLOW_LINE);
        return;
    }
    uint32_t tag = classify(req);
    res->ctx = b;
    res->ctx_tag = tag;
    if ((tag & 0xff) == RC_CE_MODE_UNSUPPORTED) {
        refuse(ig, res, 415,
               "structured mode supports only the JSON event format "
               "(application/cloudevents+json)");
        return;
    }
    uint64_t max = body_limit(ig, tag);
    res->max_body = max;
    if (req->content_length != UINT64_MAX && req->content_length > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "body of %llu bytes exceeds the maximum of %llu bytes",
                 (unsigned long long)req->content_length, (unsigned long long)max);
        refuse(ig, res, 413, msg);
    }
}

/* Whether this commit to broker `b` may leave readers asleep for the end of the turn: not the
 * turn's first (it wakes at once: at a low rate every commit is a turn's first, and nothing
 * waits), and only while the turn's list of brokers owed a wake has room. */
static int quiet_commit(rc_ingress_t *ig, const rc_ingress_broker_t *b)
{
    if (!ig->turn_on || ig->turn_commits++ == 0)
        return 0;
    uint32_t idx = (uint32_t)(b - ig->brokers);
    for (uint32_t i = 0; i < ig->nowed; i++)
        if (ig->owed[i] == idx)
            return 1;
    if (ig->nowed == RC_INGRESS_OWED)
        return 0;
    ig->owed[ig->nowed++] = idx;
    return 1;
}

/* The end of a loop turn: one wake for each broker its quiet commits went to. */
static void turn_end(rc_ingress_t *ig)
{
    for (uint32_t i = 0; i < ig->nowed; i++)
        rc_storage_wake(ig->brokers[ig->owed[i]].store);
    ig->nowed = 0;
    ig->turn_commits = 0;
}

static void on_turn_check(uv_check_t *h)
{
    turn_end(h->data);
}

static void on_turn_prepare(uv_prepare_t *h)
{
    turn_end(h->data);
}

/* Deduplication (net/dedup.h): events whose (source, id) the broker accepted within its window,
 * or that came earlier in the same batch, are left out, the others published, and their keys
 * remembered once stored. A request of duplicates only is accepted without storing anything;
 * in durability sync its answer waits for the flush of the copies it repeats (the latest
 * ticket among them), so a 202 still means "on disk". Two copies racing on two loops may both
 * be stored: the table is checked before the publish and filled after it, so that a refused
 * publish (429) never leaves a key behind that would make its retry look like a duplicate. */
static int publish_once(rc_ingress_t *ig, const rc_ingress_broker_t *b, rc_event_t *events,
                        size_t n, rc_publish_opts_t *o, size_t *stored, uint64_t *ticket,
                        char *msg, size_t msg_len)
{
    int64_t now = rc_wall_ns();
    rc_dedup_key_t *keys = rc_arena_alloc(&ig->arena, n * sizeof(*keys), 8);
    if (keys == NULL) {
        snprintf(msg, msg_len, "out of memory");
        return -ENOMEM;
    }
    uint64_t repeat_ticket = 0;
    size_t kept = 0, again = 0;
    for (size_t i = 0; i < n; i++) {
        rc_dedup_key_t k = rc_dedup_key(b->dedup, events[i].attr[RC_CE_ATTR_SOURCE],
                                        events[i].attr[RC_CE_ATTR_ID]);
        uint64_t t = 0;
        if (rc_dedup_seen(b->dedup, k, now, &t)) { /* counted by the table */
            repeat_ticket = t > repeat_ticket ? t : repeat_ticket;
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < kept && !dup; j++)
            dup = keys[j].a == k.a && keys[j].b == k.b;
        if (dup) {
            again++; /* its first copy is in this batch: stored with it */
            continue;
        }
        keys[kept] = k;
        events[kept++] = events[i];
    }
    rc_dedup_add_duplicates(b->dedup, again);
    *stored = 0;
    int rc = 0;
    if (kept > 0) {
        o->arrival_ns = now; /* the window counts from the arrival the record carries */
        rc = rc_publish(b->store, events, kept, &ig->arena, o, msg, msg_len);
    }
    if (rc != 0)
        return rc;
    uint64_t mine = o->ticket != NULL ? *o->ticket : 0;
    for (size_t i = 0; i < kept; i++)
        rc_dedup_remember(b->dedup, keys[i], now, mine);
    *stored = kept;
    if (o->ticket != NULL && repeat_ticket > mine)
        *ticket = repeat_ticket; /* tickets are flushed in order: the later covers both */
    return 0;
}

/* Decodes the request into events and publishes them into the broker's store, all of a batch
 * or nothing. Returns 0 with *stored set, or a code for rc_http_status_for with `msg` filled. */
static int ingest(rc_ingress_t *ig, const rc_ingress_broker_t *b,
                  const rc_http_server_request_t *req, size_t *stored, uint64_t *ticket, char *msg,
                  size_t msg_len)
{
    rc_arena_reset(&ig->arena);
    rc_event_t *events = NULL;
    size_t n = 0;
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    cerr.index = -1;
    rc_str_t body = {req->body ? req->body : "", req->body_len};
    rc_ce_mode_t mode = (rc_ce_mode_t)(req->ctx_tag & 0xff);
    int rc = req->ctx_tag & TAG_DUP_CT
                 ? rc_ce_decode_request(req->headers, req->header_count, body, &ig->arena,
                                        ig->limits.max_batch_events, &events, &n, &cerr)
                 : rc_ce_decode_as(mode, req->headers, req->header_count, body, &ig->arena,
                                   ig->limits.max_batch_events, &events, &n, &cerr);
    if (rc == RC_EINVALID_EVENT) {
        rc_ce_error_format(&cerr, msg, msg_len);
        return rc;
    }
    if (rc == RC_EUNSUPPORTED_MEDIA) {
        snprintf(msg, msg_len,
                 "structured mode supports only the JSON event format "
                 "(application/cloudevents+json)");
        return rc;
    }
    if (rc == RC_ETOO_LARGE) {
        snprintf(msg, msg_len, "batch holds more than %u events", ig->limits.max_batch_events);
        return rc;
    }
    if (rc != 0) {
        snprintf(msg, msg_len, "cannot decode the request: %s", rc_strerror(rc));
        return rc;
    }
    rc_publish_opts_t o = {
        .ttl = RC_PUBLISH_TTL_INGRESS,
        .batch = mode == RC_CE_MODE_BATCH,
        .max_event = ig->limits.max_event_bytes + ig->limits.max_header_bytes,
        .broker = b->label,
        .ticket = ig->held != NULL ? ticket : NULL,
        .quiet = quiet_commit(ig, b),
    };
    if (b->dedup != NULL)
        return publish_once(ig, b, events, n, &o, stored, ticket, msg, msg_len);
    rc = rc_publish(b->store, events, n, &ig->arena, &o, msg, msg_len);
    *stored = rc == 0 ? n : 0;
    return rc;
}

/* ---- durability sync: answers held until the flush (net/held.h) ------------------------- */

typedef struct {
    rc_held_wait_t hw; /* first: net/held.c frees it */
    rc_ingress_t *ig;
    uint64_t start_ns, body_len;
    size_t stored;
} held_t;

/* A redis store refused the commit (net/storage/storage_redis.c): nothing, or not enough, was
 * stored, so the client retries: 503 with Retry-After. Returns 1 when `rc` was that. */
static int store_refused(rc_ingress_t *ig, rc_http_server_response_t *res, int rc)
{
    if (rc != RC_ESTORE_UNAVAILABLE && rc != RC_ESTORE_UNREPLICATED)
        return 0;
    refuse(ig, res, 503,
           rc == RC_ESTORE_UNAVAILABLE
               ? "the broker's Redis is unreachable: the event was not stored; retry later"
               : "the event reached the Redis primary but not enough replicas acknowledged it "
                 "(spec.redis.replicas); retry later");
    res->headers = ig->retry_after_line;
    res->headers_len = strlen(ig->retry_after_line);
    return 1;
}

static void answer(rc_held_wait_t *w, int rc, rc_http_server_response_t *res)
{
    held_t *h = (held_t *)w;
    rc_ingress_t *ig = h->ig;
    if (store_refused(ig, res, rc)) {
        /* counted by refuse */
    } else if (rc == 0) {
        res->status = 202;
        rc_metric_add(&ig->metrics.events_accepted, h->stored);
        rc_metric_add(&ig->metrics.bytes_accepted, h->body_len);
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "the event was stored but cannot be made durable: %s",
                 rc_strerror(rc));
        refuse(ig, res, 500, msg);
    }
    rc_metrics_observe_latency(&ig->metrics, rc_now_ns() - h->start_ns);
}

/* Holds the request's answer until the commit `ticket` is on disk. Returns 1 (held), 0 (it
 * already is: answer now), or the store's fdatasync failure. */
static int hold(rc_ingress_t *ig, const rc_ingress_broker_t *b, const rc_http_server_request_t *req,
                size_t stored, uint64_t ticket)
{
    held_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->hw.answer = answer;
    h->hw.conn_id = req->conn_id;
    h->ig = ig;
    h->start_ns = req->start_ns;
    h->body_len = req->body_len;
    h->stored = stored;
    int rc = rc_held_wait(ig->held, b->store, ticket, &h->hw);
    if (rc != 1)
        free(h);
    return rc;
}

static void on_request(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    rc_ingress_t *ig = data;
    if (ig->dapr != NULL && rc_dapr_owns_path(req->path, req->path_len)) {
        rc_dapr_on_request(ig->dapr, req, res);
        return;
    }
    const rc_ingress_broker_t *b = req->ctx;
    uint64_t max = body_limit(ig, req->ctx_tag);
    if (b == NULL || req->method != RC_HTTP_POST) {
        refuse(ig, res, 500, "request reached the ingress without a route");
    } else if (req->body_len > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "body of %zu bytes exceeds the maximum of %llu bytes",
                 req->body_len, (unsigned long long)max);
        refuse(ig, res, 413, msg);
    } else {
        char msg[RC_HTTP_RESPONSE_SCRATCH - 32];
        size_t stored = 0;
        uint64_t ticket = 0;
        int rc = ingest(ig, b, req, &stored, &ticket, msg, sizeof(msg));
        if (rc == 0 && ticket != 0 && (rc = hold(ig, b, req, stored, ticket)) == 1) {
            res->hold = 1; /* answered when the flush covers it (on_durable) */
            return;
        }
        if (rc < 0 && ticket != 0 && rc != RC_ESTORE_UNAVAILABLE && rc != RC_ESTORE_UNREPLICATED)
            snprintf(msg, sizeof(msg), "the event was stored but cannot be made durable: %s",
                     rc_strerror(rc));
        if (store_refused(ig, res, rc)) {
            /* 503 + Retry-After */
        } else if (rc == 0) {
            res->status = 202;
            rc_metric_add(&ig->metrics.events_accepted, stored);
            rc_metric_add(&ig->metrics.bytes_accepted, req->body_len);
        } else {
            refuse(ig, res, rc_http_status_for(rc), msg);
            if (rc == RC_ERING_FULL) {
                res->headers = ig->retry_after_line;
                res->headers_len = strlen(ig->retry_after_line);
            }
        }
    }
    rc_metrics_observe_latency(&ig->metrics, rc_now_ns() - req->start_ns);
}

static void on_rejected(void *data, int status, const char *reason)
{
    rc_ingress_t *ig = data;
    rc_metric_add(&ig->metrics.rejected[rc_metrics_reason_for_status(status, 1)], 1);
}

static void on_connection(void *data, int delta)
{
    rc_ingress_t *ig = data;
    rc_metric_add(delta > 0 ? &ig->metrics.connections_opened : &ig->metrics.connections_closed, 1);
}

int rc_ingress_init(rc_ingress_t *ig, const rc_ingress_broker_t *brokers, size_t count,
                    const rc_config_limits_t *limits, uint32_t retry_after_s)
{
    memset(ig, 0, sizeof(*ig));
    ig->brokers = brokers;
    ig->broker_count = count;
    ig->limits = *limits;
    ig->retry_after_s = retry_after_s;
    snprintf(ig->retry_after_line, sizeof(ig->retry_after_line), "Retry-After: %u\r\n",
             retry_after_s);
    /* Decoding a batch needs a few times its size (event array, unescaped strings); the cap
     * turns a hostile request into a 503 instead of unbounded memory. */
    rc_arena_init(&ig->arena, ig->arena_buf, sizeof(ig->arena_buf),
                  4 * limits->max_batch_bytes + (1u << 20));
    return 0;
}

void rc_ingress_handler(rc_ingress_t *ig, rc_http_handler_t *h)
{
    memset(h, 0, sizeof(*h));
    h->on_headers = on_headers;
    h->on_request = on_request;
    h->on_rejected = on_rejected;
    h->on_connection = on_connection;
    h->data = ig;
}

int rc_ingress_attach(rc_ingress_t *ig, uv_loop_t *loop, rc_http_server_t *srv)
{
    /* Unreferenced: they run every turn but never keep the loop alive. */
    uv_check_init(loop, &ig->turn_check);
    uv_prepare_init(loop, &ig->turn_prepare);
    ig->turn_check.data = ig->turn_prepare.data = ig;
    uv_check_start(&ig->turn_check, on_turn_check);
    uv_prepare_start(&ig->turn_prepare, on_turn_prepare);
    uv_unref((uv_handle_t *)&ig->turn_check);
    uv_unref((uv_handle_t *)&ig->turn_prepare);
    ig->turn_on = 1;
    int any = 0;
    for (size_t i = 0; i < ig->broker_count && !any; i++)
        any = rc_held_store_syncs(ig->brokers[i].store);
    if (!any)
        return 0;
    int rc = rc_held_attach(loop, srv, &ig->held);
    if (rc == 0 && ig->dapr != NULL)
        rc_dapr_attach_held(ig->dapr, ig->held);
    return rc;
}

void rc_ingress_detach(rc_ingress_t *ig)
{
    if (ig->turn_on) {
        turn_end(ig);
        ig->turn_on = 0;
        uv_close((uv_handle_t *)&ig->turn_check, NULL);
        uv_close((uv_handle_t *)&ig->turn_prepare, NULL);
    }
    if (ig->dapr != NULL)
        rc_dapr_attach_held(ig->dapr, NULL);
    rc_held_detach(ig->held);
    ig->held = NULL;
}

void rc_ingress_close(rc_ingress_t *ig)
{
    rc_arena_close(&ig->arena);
}
