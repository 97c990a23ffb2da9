/* One delivery attempt of a worker: the request built from the ring record (binary or
 * structured, dead-letter extensions), its outcome (success, retry after backoff, dead-letter
 * sink, drop) and the counters it moves. A reply in a successful response goes to reply.c,
 * which stores or queues it; it never changes the outcome of the delivery. */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"
#include "core/record.h"
#include "core/validate.h"

#define MAX_RESP_HEADERS 128

/* ---- building one attempt ---------------------------------------------------------------- */

static int ensure(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *nb = realloc(*buf, n);
    if (nb == NULL)
        return -ENOMEM;
    *buf = nb;
    *cap = n;
    return 0;
}

int rc__write_event(const rc_event_t *ev, int json, char **buf, size_t *cap, size_t *len)
{
    /* Most events fit in the first buffer, so a new one is written once, not sized first. */
    if (*cap == 0 && ensure(buf, cap, 1024) != 0)
        return -ENOMEM;
    int rc = json ? rc_ce_write_structured(ev, RC_CE_WRITE_NO_TTL, *buf, *cap, len)
                  : rc_ce_write_binary(ev, RC_CE_WRITE_NO_TTL, *buf, *cap, len);
    if (rc != -ENOBUFS)
        return rc;
    if (ensure(buf, cap, *len + 256) != 0)
        return -ENOMEM;
    return json ? rc_ce_write_structured(ev, RC_CE_WRITE_NO_TTL, *buf, *cap, len)
                : rc_ce_write_binary(ev, RC_CE_WRITE_NO_TTL, *buf, *cap, len);
}

int rc__event_build(rc__wevent_t *ev, int json)
{
    unsigned bit = json ? RC__EV_JSON : RC__EV_BIN;
    if (ev->built & bit)
        return 0;
    rc_ce_ext_t ext[RC_CE_EXT_MAX];
    rc_event_t ce;
    int rc = rc_record_to_event(&ev->rv, &ce, ext, RC_CE_EXT_MAX);
    if (rc != 0)
        return rc;
    rc = json ? rc__write_event(&ce, 1, &ev->json, &ev->json_cap, &ev->json_len)
              : rc__write_event(&ce, 0, &ev->bin, &ev->bin_cap, &ev->bin_len);
    if (rc != 0)
        return rc;
    ev->data = ce.data.ptr;
    ev->data_len = ce.data.ptr ? ce.data.len : 0;
    ev->built |= bit;
    return 0;
}

/* A dead-letter attempt: the event plus the knativeerror* extensions, built for this entry. */
static int build_dead_letter(rc__wentry_t *e, int json)
{
    rc__wtrig_t *t = e->t;
    rc_ce_ext_t ext[RC_CE_EXT_MAX + 3];
    rc_event_t ev;
    int rc = rc_record_to_event(&e->ev->rv, &ev, ext, RC_CE_EXT_MAX);
    if (rc != 0)
        return rc;
    char code[16];
    /* ev.ext points at `ext`, which has room for three more. */
    if (e->lagged)
        snprintf(code, sizeof(code), "lagged"); /* no answer was waited for */
    else
        snprintf(code, sizeof(code), "%d", rc_dead_letter_code(e->last_result));
    ext[ev.ext_count++] =
        (rc_ce_ext_t){{"knativeerrordest", 16}, {t->uri, strlen(t->uri)}, RC_CE_STRING};
    ext[ev.ext_count++] =
        (rc_ce_ext_t){{"knativeerrorcode", 16}, {code, strlen(code)}, RC_CE_STRING};
    if (e->errdata != NULL && e->errdata[0] != '\0')
        ext[ev.ext_count++] =
            (rc_ce_ext_t){{"knativeerrordata", 16}, {e->errdata, strlen(e->errdata)}, RC_CE_STRING};
    ev.ext_cap = ev.ext_count;
    size_t need = 0;
    if (json) {
        rc = rc__write_event(&ev, 1, &e->body, &e->body_cap, &need);
        e->iov = (struct iovec){e->body, need};
    } else {
        rc = rc__write_event(&ev, 0, &e->hdr, &e->hdr_cap, &need);
        e->hdr_len = need;
        e->iov = (struct iovec){(void *)ev.data.ptr, ev.data.ptr ? ev.data.len : 0};
    }
    return rc;
}

/* Fills the request of the entry's current attempt: the event's shared block (or the
 * dead-letter one), then the trigger's own lines (Prefer: reply only towards the
 * subscriber). */
static int build(rc__wentry_t *e, rc_http_request_t *req)
{
    rc__wtrig_t *t = e->t;
    int json = t->d->format == RC_DELIVERY_FORMAT_JSON;
    int rc;
    if (e->to_dlq) {
        rc = build_dead_letter(e, json);
        req->headers = json ? RC__JSON_CT_LINE : e->hdr;
        req->headers_len = json ? sizeof(RC__JSON_CT_LINE) - 1 : e->hdr_len;
    } else {
        rc = rc__event_build(e->ev, json);
        req->headers = json ? RC__JSON_CT_LINE : e->ev->bin;
        req->headers_len = json ? sizeof(RC__JSON_CT_LINE) - 1 : e->ev->bin_len;
        e->iov = json ? (struct iovec){e->ev->json, e->ev->json_len}
                      : (struct iovec){(void *)e->ev->data, e->ev->data_len};
    }
    rc__trigger_lines(t, e->to_dlq, req);
    req->body = &e->iov;
    req->body_iovcnt = 1;
    return rc;
}

int rc__worker_send(rc_http_client_t *client, rc__wentry_t *e)
{
    rc__wtrig_t *t = e->t;
    if (t->dapr != NULL)
        return rc__dapr_send(client, e);
    rc_http_endpoint_t *ep = e->to_dlq ? t->dlq : t->ep;
    rc__replica_t *r = NULL;
    if (t->nrep > 0 && !e->to_dlq) {
        /* HTTP replicas: the least busy one that is up; none now: wait (rep_wake_ns). */
        if ((r = rc__replica_pick(t, rc__now_ns())) == NULL)
            return 0;
        ep = r->ep[0];
    }
    rc_http_request_t req = {
        .endpoint = ep,
        .timeout_ms = (uint32_t)((t->d->timeout_ns + 999999) / 1000000),
    };
    int rc = build(e, &req);
    if (rc != 0) {
        char why[96];
        snprintf(why, sizeof(why), "it cannot be encoded (%s)", rc_strerror(rc));
        rc__drop_log(t, &e->ev->rv, 0, why, e->to_dlq ? e->last_result : 0,
                     e->to_dlq ? e->last_retries : e->retries, 0);
        rc_metric_add(e->lagged ? &t->st->lagged_dropped : &t->st->dropped, 1);
        rc__entry_finish(e);
        return 1;
    }
    if (r != NULL)
        rc__replica_start(e, r);
    e->sent_ns = rc_now_ns();
    if (ep == NULL) {
        /* The URL could not be resolved: a transport error, retried like one. */
        rc__on_response(-EHOSTUNREACH, NULL, e);
        return 1;
    }
    rc = rc_http_client_request(client, &req, rc__on_response, e);
    if (rc != 0) {
        rc__on_response(rc, NULL, e);
        return 1;
    }
    e->state = RC__E_SENDING;
    t->sending++;
    return 1;
}

/* ---- outcomes ------------------------------------------------------------------------------ */

static int32_t parent_ttl(const rc__wentry_t *e)
{
    rc_ce_value_t v;
    int32_t ttl = RC_CE_TTL_DEFAULT;
    if (rc_record_get(&e->ev->rv, (rc_str_t){"knativebrokerttl", 16}, &v) == 0)
        (void)rc_ce_int_parse(v.value, &ttl);
    return ttl;
}

/* A 2xx other than 202: a CloudEvent in it is a reply, for reply.c to store or queue. The
 * delivery succeeded whatever becomes of the reply: holding the event back until its reply fits
 * would keep the ring full that the reply is waiting for. */
static void handle_reply(rc__wentry_t *e, const rc_http_response_t *resp)
{
    rc__wtrig_t *t = e->t;
    if (resp->status == 202 || (resp->body_len == 0 && resp->header_count == 0))
        return;
    rc_str_t names[MAX_RESP_HEADERS], values[MAX_RESP_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < resp->header_count && n < MAX_RESP_HEADERS; i++, n++) {
        names[n] = (rc_str_t){resp->headers[i].name, resp->headers[i].name_len};
        values[n] = (rc_str_t){resp->headers[i].value, resp->headers[i].value_len};
    }
    rc_reply_t r = {
        .names = names,
        .values = values,
        .n = n,
        .body = {resp->body, resp->body_len},
        .parent_ttl = parent_ttl(e),
        .arrival_ns = rc_wall_ns(),
    };
    rc_str_t event_id = rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID);
    if (resp->body_truncated) {
        /* Only the first max_body bytes were kept: storing them would route a cut event on,
         * and a retry would be cut the same way. */
        rc__reply_lost(t, &r, event_id);
        return;
    }
    rc__reply_take(t, &r, event_id);
}

/* ---- log lines of events not delivered --------------------------------------------------- */

#define LAG_REASON "past the trigger's lag limit"

/* Why the subscriber got no more attempts after `result`. */
static const char *fail_reason(int result)
{
    if (rc_delivery_classify(result) != RC_DELIVERY_FAIL)
        return "retries exhausted";
    return result >= 400 && result < 500 ? "4xx not retried" : "answer not retried";
}

/* An attribute for a log line, cut to fit; control characters become '?' so that a client's
 * id cannot start a line of its own in the text format. */
static void copy_attr(char *dst, size_t cap, rc_str_t s)
{
    size_t n = 0;
    for (; s.ptr != NULL && n < s.len && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)s.ptr[n];
        dst[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[n] = '\0';
}

/* " (HTTP 500 after 3 retries; dead-letter sink: Connection refused)" */
static void describe(char *buf, size_t cap, int result, uint32_t retries, int sink_result)
{
    int n = 0;
    if (result > 0)
        n = snprintf(buf, cap, " (HTTP %d after %u retr%s", result, retries,
                     retries == 1 ? "y" : "ies");
    else if (result < 0)
        n = snprintf(buf, cap, " (%s after %u retr%s", rc_strerror(result), retries,
                     retries == 1 ? "y" : "ies");
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    if (sink_result > 0)
        n += snprintf(buf + n, cap - (size_t)n, "%sdead-letter sink: HTTP %d", n ? "; " : " (",
                      sink_result);
    else if (sink_result < 0)
        n += snprintf(buf + n, cap - (size_t)n, "%sdead-letter sink: %s", n ? "; " : " (",
                      rc_strerror(sink_result));
    if (n > 0 && (size_t)n < cap - 1)
        snprintf(buf + n, cap - (size_t)n, ")");
    else if (n == 0)
        buf[0] = '\0';
}

void rc__drop_log(rc__wtrig_t *t, const rc_record_view_t *rv, int dead_lettered, const char *reason,
                  int result, uint32_t retries, int sink_result)
{
    rc_log_level_t level = RC_LOG_WARN;
    if (!rc_log_enabled(level))
        return;
    uint64_t held = 0;
    int64_t since = t->drop_log.since_ns, now = rc__now_ns();
    int take = rc_log_limit_take(&t->drop_log, now, RC__DROP_LOG_LINES, &held);
    if (held > 0)
        rc__drop_log_flush_held(t, held, now - since);
    if (!take)
        return;
    char trig[2 * RC_CONFIG_NAME_MAX + 2], id[256], source[256], type[256], what[160];
    snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
    copy_attr(id, sizeof(id), rc_record_attr(rv, RC_CE_ATTR_ID));
    copy_attr(source, sizeof(source), rc_record_attr(rv, RC_CE_ATTR_SOURCE));
    copy_attr(type, sizeof(type), rc_record_attr(rv, RC_CE_ATTR_TYPE));
    describe(what, sizeof(what), result, retries, sink_result);
    const char *outcome = dead_lettered ? "dead-lettered" : "dropped";
    rc_log_field_t f[10];
    size_t n = 0;
    f[n++] = RC_LOG_STR("trigger", trig);
    f[n++] = RC_LOG_STR("event_id", id);
    f[n++] = RC_LOG_STR("source", source);
    f[n++] = RC_LOG_STR("type", type);
    f[n++] = RC_LOG_STR("outcome", outcome);
    f[n++] = RC_LOG_STR("reason", reason);
    if (result > 0)
        f[n++] = RC_LOG_INT("status", result);
    else if (result < 0)
        f[n++] = RC_LOG_STR("error", rc_strerror(result));
    f[n++] = RC_LOG_INT("retries", retries);
    if (sink_result > 0)
        f[n++] = RC_LOG_INT("dead_letter_status", sink_result);
    else if (sink_result < 0)
        f[n++] = RC_LOG_STR("dead_letter_error", rc_strerror(sink_result));
    rc_log_fields(level, "worker", f, n, "trigger %s: event %s %s: %s%s", trig, id, outcome, reason,
                  what);
}

void rc__drop_log_flush_held(rc__wtrig_t *t, uint64_t held, int64_t window_ns)
{
    char trig[2 * RC_CONFIG_NAME_MAX + 2];
    snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
    rc_log_field_t f[] = {RC_LOG_STR("trigger", trig), RC_LOG_INT("suppressed", held)};
    rc_log_fields(RC_LOG_WARN, "worker", f, 2,
                  "trigger %s: suppressed %llu similar line%s in the last %.1f s (events dropped "
                  "or dead-lettered; at most %d lines a second per trigger, the metrics count "
                  "every one)",
                  trig, (unsigned long long)held, held == 1 ? "" : "s", (double)window_ns / 1e9,
                  RC__DROP_LOG_LINES);
}

void rc__drop_log_flush(rc__wtrig_t *t, int64_t now, int force)
{
    int64_t since = t->drop_log.since_ns;
    uint64_t held = rc_log_limit_flush(&t->drop_log, now, force);
    if (held > 0)
        rc__drop_log_flush_held(t, held, now - since);
}

int64_t rc__retry_wait_ns(const rc_delivery_t *d, uint32_t retries, int result,
                          const rc_http_response_t *resp)
{
    int64_t ra = -1;
    const rc_http_client_header_t *h =
        resp != NULL ? rc_http_response_header(resp, "Retry-After") : NULL;
    if (h != NULL && rc_retry_after_parse(h->value, h->value_len, rc_wall_ns(), &ra) != 0)
        ra = -1;
    return rc_delivery_wait_ns(d, retries, result, ra);
}

void rc__on_response(int result, const rc_http_response_t *resp, void *arg)
{
    rc__wentry_t *e = arg;
    rc__wtrig_t *t = e->t;
    rc__replica_t *rep = e->rep != NULL ? rc__replica_release(e) : NULL;
    if (e->state == RC__E_ABANDONED) {
        /* Given up for lag while in flight (worker.c, shed): counted then; only the room it
         * took in the window and its hold on the shared event are left to give back. */
        rc__entry_abandoned_done(e);
        return;
    }
    if (e->state == RC__E_SENDING)
        t->sending--;
    if (result == -ECANCELED && rc__worker_stop) {
        /* Shutting down: the cursor stays before it; the next worker sends it again. */
        e->state = RC__E_WAITING;
        e->due_ns = INT64_MAX;
        return;
    }
    if (!e->to_dlq) {
        int64_t wall = rc_wall_ns();
        rc_str_t id = rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID);
        rc_worker_stats_attempt(t->st, result, wall);
        rc_worker_stats_record(t->st, result, wall, rc_now_ns() - e->sent_ns, id.ptr, id.len);
    }
    if (t->dapr != NULL) {
        rc__dapr_outcome(e, result, resp, rep);
        return;
    }
    if (rep != NULL && rc__replica_refusal(result)) {
        rc__replica_count(rep, 0);
        /* Another replica is up: the event goes there at once, and it is no retry. */
        if (rc__replica_refused(t, rep, rc__now_ns(), result)) {
            e->state = RC__E_WAITING;
            e->due_ns = 0;
            return;
        }
        rep = NULL; /* counted */
    } else if (rep != NULL && result > 0) {
        rc__replica_answered(t, rep);
    }
    rc_delivery_class_t cls = rc_delivery_classify(result);
    if (rep != NULL)
        rc__replica_count(rep, cls == RC_DELIVERY_SUCCESS);
    if (cls == RC_DELIVERY_SUCCESS && !e->to_dlq && resp != NULL)
        handle_reply(e, resp);
    if (cls == RC_DELIVERY_SUCCESS) {
        if (e->to_dlq) {
            rc_metric_add(&t->st->dead_lettered, 1);
            rc_str_t id = rc_record_attr(&e->ev->rv, RC_CE_ATTR_ID);
            rc_worker_stats_dead_letter(t->st, id.ptr, id.len, e->pos, e->seq, e->last_result,
                                        rc_wall_ns());
            rc__drop_log(t, &e->ev->rv, 1, e->lagged ? LAG_REASON : fail_reason(e->last_result),
                         e->last_result, e->last_retries, result);
        } else {
            rc_metric_add(&t->st->delivered, 1);
            uint64_t now = rc_now_ns();
            rc_worker_stats_observe_at(t->st, now - e->sent_ns, now);
            if (!e->replay)
                rc__observe_e2e(e);
        }
        rc__entry_finish(e);
        return;
    }
    if (cls == RC_DELIVERY_RETRY && rc_delivery_may_retry(t->d, e->retries)) {
        e->due_ns = rc__now_ns() + rc__retry_wait_ns(t->d, e->retries, result, resp);
        e->retries++;
        e->state = RC__E_WAITING;
        rc_metric_add(&t->st->retried, 1);
        return;
    }
    if (e->lagged) {
        /* Counted and folded into the lag line: a failing sink must not log once per event. */
        rc_metric_add(&t->st->lagged_dropped, 1);
        t->lag_log_drop++;
        rc__drop_log(t, &e->ev->rv, 0, LAG_REASON "; the dead-letter sink failed too", 0, 0,
                     result);
        rc__entry_finish(e);
        return;
    }
    if (e->to_dlq) {
        char why[96];
        snprintf(why, sizeof(why), "%s; the dead-letter sink failed too",
                 fail_reason(e->last_result));
        rc__drop_log(t, &e->ev->rv, 0, why, e->last_result, e->last_retries, result);
        rc_metric_add(&t->st->dropped, 1);
        rc__entry_finish(e);
        return;
    }
    rc_metric_add(&t->st->failed, 1);
    if (t->d->dead_letter_uri[0] == '\0') {
        rc__drop_log(t, &e->ev->rv, 0, fail_reason(result), result, e->retries, 0);
        rc_metric_add(&t->st->dropped, 1);
        rc__entry_finish(e);
        return;
    }
    e->last_result = result;
    e->last_retries = e->retries;
    if (e->errdata == NULL)
        e->errdata = malloc(RC_DEAD_LETTER_DATA_MAX + 1);
    if (e->errdata != NULL) {
        if (resp != NULL)
            rc_dead_letter_data(resp->body, resp->body_len, e->errdata,
                                RC_DEAD_LETTER_DATA_MAX + 1);
        else
            e->errdata[0] = '\0';
    }
    e->to_dlq = 1;
    e->retries = 0;
    e->state = RC__E_WAITING;
    e->due_ns = 0; /* at once */
}

/* ---- events given up for lag (worker.c, shed) ------------------------------------------------ */

#define LAG_LOG_NS         (10 * 1000000000ll)
#define LAG_BUDGET_DEFAULT (16u << 20)

/* Bytes of lagged records this worker holds for dead-letter sinks, over all its triggers, and
 * the most it may (one thread per process: plain variables). */
static size_t lag_budget_used, lag_budget_cap;

static size_t lag_budget(void)
{
    if (lag_budget_cap == 0)
        lag_budget_cap = (size_t)rc__env_u64("RINGCAST_LAG_DLQ_BYTES", LAG_BUDGET_DEFAULT);
    return lag_budget_cap;
}

static void lag_drop(rc__wtrig_t *t, const rc__wevent_t *ev, const char *why)
{
    rc_metric_add(&t->st->lagged_dropped, 1);
    t->lag_log_drop++;
    rc__drop_log(t, &ev->rv, 0, why, 0, 0, 0);
}

/* An entry of `t` holding its own copy of record rec[0..size) (at `pos`, `seq`), appended to
 * t's list of entries outside the queue (rc__lag_run sends them), counted in the budget. Returns
 * it, or NULL with `*why` (over the budget, out of memory, not a record). */
static rc__wentry_t *own_entry(rc__wtrig_t *t, const void *rec, size_t size, uint64_t pos,
                               uint64_t seq, const char **why)
{
    if (lag_budget_used + size > lag_budget()) {
        *why = "no room to hold it for the dead-letter sink";
        return NULL;
    }
    rc__wentry_t *e = t->free_e;
    if (e != NULL)
        t->free_e = e->next_free;
    else if ((e = calloc(1, sizeof(*e))) == NULL) {
        *why = "out of memory to hold it";
        return NULL;
    }
    if (e->rec_cap < size) {
        void *nb = realloc(e->rec, size); /* malloc's alignment is enough for a record */
        if (nb == NULL) {
            e->next_free = t->free_e;
            t->free_e = e;
            *why = "out of memory to hold it";
            return NULL;
        }
        e->rec = nb;
        e->rec_cap = size;
    }
    memcpy(e->rec, rec, size);
    if (rc_record_decode(e->rec, size, &e->own.rv) != 0) {
        e->next_free = t->free_e;
        t->free_e = e;
        *why = "its record does not decode";
        return NULL;
    }
    e->own.refs = 1;
    e->own.built = 0;
    e->own.queued_ns = rc__now_ns();
    e->t = t;
    e->pos = pos;
    e->seq = seq;
    e->ev = &e->own;
    e->retries = 0;
    e->last_result = 0;
    e->last_retries = 0;
    e->started = 1; /* no queue wait to observe */
    if (e->errdata != NULL)
        e->errdata[0] = '\0';
    e->state = RC__E_WAITING;
    e->due_ns = 0;
    e->next_free = NULL;
    if (t->lag_tail != NULL)
        t->lag_tail->next_free = e;
    else
        t->lag_head = e;
    t->lag_tail = e;
    t->lag_n++;
    lag_budget_used += size;
    return e;
}

void rc__lag_keep(rc__wtrig_t *t, const rc__wevent_t *ev, uint64_t pos, uint64_t seq)
{
    if (t->d->dead_letter_uri[0] == '\0') {
        lag_drop(t, ev, LAG_REASON "; no dead-letter sink");
        return;
    }
    const char *why = NULL;
    rc__wentry_t *e = own_entry(t, ev->rv.base, ev->rv.size, pos, seq, &why);
    if (e == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), LAG_REASON "; %s", why);
        lag_drop(t, ev, msg);
        return;
    }
    e->lagged = 1;
    e->to_dlq = 1;
}

int rc__replay_keep(rc__wtrig_t *t, const void *rec, size_t size, uint64_t pos, uint64_t seq,
                    const char **why)
{
    rc__wentry_t *e = own_entry(t, rec, size, pos, seq, why);
    if (e == NULL)
        return -ENOMEM;
    e->lagged = 0; /* to the subscriber, with the trigger's retries and dead-letter sink */
    e->to_dlq = 0;
    e->replay = 1;
    return 0;
}

/* Takes the lagged entry after `prev` (NULL: the head) off the list, back to the free list. */
static rc__wentry_t *lag_unlink(rc__wtrig_t *t, rc__wentry_t *prev, rc__wentry_t *e)
{
    rc__wentry_t *next = e->next_free;
    if (prev != NULL)
        prev->next_free = next;
    else
        t->lag_head = next;
    if (t->lag_tail == e)
        t->lag_tail = prev;
    t->lag_n--;
    lag_budget_used -= e->own.rv.size;
    e->lagged = 0;
    e->replay = 0;
    e->next_free = t->free_e;
    t->free_e = e;
    return next;
}

int rc__lag_run(rc_http_client_t *c, rc__wtrig_t *t, int64_t now)
{
    int n = 0;
    uint32_t seen = 0;
    rc__wentry_t *prev = NULL, *e = t->lag_head;
    uint32_t cap = t->order != NULL ? rc__order_max_send(t) : t->max_win;
    /* Only the oldest max-inflight unfinished ones can be in flight: the rest were never sent,
     * so the walk stops there and costs the window, not the backlog. */
    while (e != NULL && seen < cap) {
        if (e->state == RC__E_DONE) {
            e = lag_unlink(t, prev, e);
            n++;
            continue;
        }
        seen++;
        /* A replay goes to the subscriber: it waits while the trigger is paused, as the
         * window's events do (lagged events still go to the sink). */
        int held = !e->lagged && rc_worker_stats_paused(t->st);
        if (e->state == RC__E_WAITING && e->due_ns <= now && !held) {
            rc__worker_send(c, e);
            n++;
            if (e->state == RC__E_DONE)
                continue; /* failed at once: reaped on this pass */
        }
        prev = e;
        e = e->next_free;
    }
    return n;
}

void rc__lag_log(rc__wtrig_t *t, int64_t now, uint64_t behind, int force)
{
    if (t->lag_log_n == 0 && t->lag_log_drop == 0)
        return;
    if (!force && t->lag_log_ns != 0 && now - t->lag_log_ns < LAG_LOG_NS)
        return;
    char at[96] = "";
    if (behind > 0)
        snprintf(at, sizeof(at), "; it was %llu bytes behind the ring's head",
                 (unsigned long long)behind);
    rc_log_warn("worker",
                "trigger %s/%s: %llu event%s given up past its lag limit of %llu bytes (%s)%s; "
                "%llu lagged event%s dropped",
                t->wt->cfg->ns, t->wt->cfg->name, (unsigned long long)t->lag_log_n,
                t->lag_log_n == 1 ? "" : "s", (unsigned long long)t->lag_limit,
                t->d->dead_letter_uri[0] != '\0' ? "to the dead-letter sink"
                                                 : "no dead-letter sink",
                at, (unsigned long long)t->lag_log_drop, t->lag_log_drop == 1 ? "" : "s");
    t->lag_log_n = 0;
    t->lag_log_drop = 0;
    t->lag_log_ns = now;
}

void rc__lag_close(rc__wtrig_t *t)
{
    while (t->lag_head != NULL) {
        if (t->lag_head->state != RC__E_DONE && t->lag_head->replay) {
            rc__drop_log(t, &t->lag_head->own.rv, 0,
                         "replayed; the worker stopped before it was delivered", 0, 0, 0);
        } else if (t->lag_head->state != RC__E_DONE) {
            rc_metric_add(&t->st->lagged_dropped, 1);
            rc__drop_log(t, &t->lag_head->own.rv, 0,
                         LAG_REASON "; the worker stopped before the dead-letter sink took it", 0,
                         0, 0);
        }
        lag_unlink(t, NULL, t->lag_head);
    }
}

void rc__observe_e2e(rc__wentry_t *e)
{
    rc_ce_value_t v;
    int64_t sec;
    uint32_t nsec;
    if (rc_record_get(&e->ev->rv, RC_STR("knativearrivaltime"), &v) == 0 &&
        rc_ce_time_parse(v.value, &sec, &nsec) == 0 && sec >= 0 && sec < INT64_MAX / 1000000000 - 1)
        rc_worker_stats_observe_e2e(e->t->st, sec * 1000000000 + nsec, rc_wall_ns());
}
