/* The ingress request path. Routing, method and size checks happen when the headers are
 * complete, so a request that will be refused never has its body read (and a client sending
 * `Expect: 100-continue` gets its final status instead of 100). */
#include "net/ingress.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/codec_http.h"
#include "core/errors.h"
#include "core/record.h"
#include "core/validate.h"
#include "net/http/http_status.h"
#include "core/clock.h"

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

static rc_ce_mode_t mode_of(const rc_http_server_request_t *req)
{
    const rc_http_header_t *ct = rc_http_find_header(req, "content-type");
    return rc_ce_classify(ct ? ct->value : RC_STR_NULL);
}

static uint64_t body_limit(const rc_ingress_t *ig, const rc_http_server_request_t *req)
{
    return mode_of(req) == RC_CE_MODE_BATCH ? ig->limits.max_batch_bytes
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
    if (mode_of(req) == RC_CE_MODE_UNSUPPORTED) {
        refuse(ig, res, 415,
               "structured mode supports only the JSON event format "
               "(application/cloudevents+json)");
        return;
    }
    uint64_t max = body_limit(ig, req);
    res->max_body = max;
    if (req->content_length != UINT64_MAX && req->content_length > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "body of %llu bytes exceeds the maximum of %llu bytes",
                 (unsigned long long)req->content_length, (unsigned long long)max);
        refuse(ig, res, 413, msg);
    }
}

/* Decodes the request into events, stamps them, and stores them in the broker's ring in one
 * claim: all of a batch or nothing. Returns 0 with *stored set, or a code for
 * rc_http_status_for with `msg` filled. */
static int ingest(rc_ingress_t *ig, const rc_ingress_broker_t *b,
                  const rc_http_server_request_t *req, size_t *stored, char *msg, size_t msg_len)
{
    rc_arena_reset(&ig->arena);
    rc_event_t *events = NULL;
    size_t n = 0;
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    cerr.index = -1;
    rc_str_t body = {req->body ? req->body : "", req->body_len};
    int rc = rc_ce_decode_request(req->headers, req->header_count, body, &ig->arena,
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
    *stored = 0;
    int batch = mode_of(req) == RC_CE_MODE_BATCH;
    if (n == 0)
        return 0; /* an empty batch stores nothing and is accepted */

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    rc_ring_rec_t one, *recs = &one;
    if (n > 1) {
        recs = rc_arena_alloc(&ig->arena, n * sizeof(*recs), 8);
        if (recs == NULL) {
            snprintf(msg, msg_len, "out of memory");
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rc_event_t *ev = &events[i];
        cerr.index = batch ? (int32_t)i : -1;
        rc = rc_event_ttl_ingress(ev, &ig->arena, &cerr);
        if (rc == 0)
            rc = rc_event_stamp_arrival(ev, &ig->arena, now);
        if (rc == RC_EINVALID_EVENT || rc == RC_ETTL_EXPIRED) {
            rc_ce_error_format(&cerr, msg, msg_len);
            return rc;
        }
        if (rc != 0) {
            snprintf(msg, msg_len, "out of memory");
            return rc;
        }
        size_t size = rc_record_size(ev);
        if (size == 0 || size > UINT32_MAX) {
            snprintf(msg, msg_len, "event %zu cannot be stored (an attribute is too long)", i);
            return RC_ETOO_LARGE;
        }
        /* One event of a batch may not be larger than it could be on its own: data within
         * maxEventBytes and attributes within maxHeaderBytes. */
        if (batch && size > ig->limits.max_event_bytes + ig->limits.max_header_bytes) {
            snprintf(msg, msg_len, "event %zu: larger than the maximum event size", i);
            return RC_ETOO_LARGE;
        }
        recs[i].len = (uint32_t)size;
        recs[i].type = RC_EVENT_RECORD_TYPE;
        recs[i].flags = 0;
    }
    rc_ring_claim_t claim;
    rc = n == 1 ? rc_ring_claim(b->ring, recs[0].len, recs[0].type, 0, &claim)
                : rc_ring_claim_batch(b->ring, recs, (uint32_t)n, &claim);
    if (rc == RC_ERING_FULL) {
        snprintf(msg, msg_len, "broker %s/%s is full; retry later", b->ns, b->name);
        return rc;
    }
    if (rc == RC_ERING_TOO_BIG) {
        snprintf(msg, msg_len, "%s larger than the ring can hold", n == 1 ? "event" : "batch");
        return rc;
    }
    if (rc != 0) {
        snprintf(msg, msg_len, "cannot store the event: %s", rc_strerror(rc));
        return rc;
    }
    if (n == 1)
        recs[0].data = claim.data;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        rc = rc_record_encode(&events[i], recs[i].data, recs[i].len, &len);
        if (rc != 0) {
            rc_ring_abort(&claim);
            snprintf(msg, msg_len, "cannot encode event %zu: %s", i, rc_strerror(rc));
            return rc == -EINVAL ? RC_EINVALID_EVENT : rc;
        }
    }
    rc = rc_ring_commit(&claim);
    if (rc != 0) {
        snprintf(msg, msg_len, "the event was not stored: %s", rc_strerror(rc));
        return rc;
    }
    *stored = n;
    return 0;
}

static void on_request(void *data, const rc_http_server_request_t *req,
                       rc_http_server_response_t *res)
{
    rc_ingress_t *ig = data;
    int bad;
    const rc_ingress_broker_t *b = route(ig, req, &bad);
    uint64_t max = body_limit(ig, req);
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
        int rc = ingest(ig, b, req, &stored, msg, sizeof(msg));
        if (rc == 0) {
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

void rc_ingress_close(rc_ingress_t *ig)
{
    rc_arena_close(&ig->arena);
}
