/* Replies: decoding one with the ingress codecs and publishing it as ingress does, and the
 * worker's reply queue.
 *
 * A reply never holds back the event it answers: that event is finished (delivered, its ring
 * space released) whatever becomes of the reply. A reply that finds the ring full waits here,
 * copied, oldest first per broker. It is tried again right after the worker's own
 * acknowledgements released space (the likeliest moment to find room: the events it answers
 * have just been let go), else after a short backoff. Past the limits (the queue is full, it
 * waited max_wait, the worker is stopping) it is given up: sent to the trigger's dead-letter sink
 * with knativeerrorcode and the reason, or dropped without one. Every reply given up is counted
 * (replies_failed = replies_dead_lettered + replies_dropped) and logged with the trigger, its id
 * and the id of the event it answers; past ten lines a second per trigger the log folds them
 * into one summary line with the count, so the log always adds up to the counters.
 *
 * A Dapr dead letter (rc_reply_t.dead_letter: an event republished on its subscription's
 * dead-letter topic, net/delivery/dapr_deliver.c) takes the same way into the ring and the same
 * queue, so it survives a full ring as a reply does; it is counted as the trigger's
 * dead_lettered when stored and dropped when given up (a Dapr trigger has no dead-letter sink). */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/codec_http.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"
#include "core/validate.h"
#include "net/http/http_status.h"
#include "net/storage/publish.h"

#define MAX_REPLY_HEADERS   128
#define ID_MAX              64 /* ids in logs are cut to this (NUL included) */
#define DEFAULT_CAP         (8u * 1024 * 1024)
#define DEFAULT_MAX_WAIT_MS 30000
#define BACKOFF_MIN_NS      1000000ll   /* 1 ms, doubling ... */
#define BACKOFF_MAX_NS      100000000ll /* ... up to 100 ms */
#define RLOG_WINDOW_NS      1000000000ll
#define RLOG_LINES          10 /* failures logged one by one per trigger and window */

/* ---- one reply ------------------------------------------------------------------------------- */

int rc_reply_decode(const rc_reply_t *r, rc_arena_t *arena, rc_event_t *ev, char *why,
                    size_t why_len)
{
    if (why_len > 0)
        why[0] = '\0';
    rc_http_header_t hdrs[MAX_REPLY_HEADERS];
    size_t nh = 0;
    int has_ce = 0;
    for (size_t i = 0; i < r->n && nh < MAX_REPLY_HEADERS; i++) {
        hdrs[nh].name = r->names[i];
        hdrs[nh].value = r->values[i];
        if (r->names[i].len > 3 && strncasecmp(r->names[i].ptr, "ce-", 3) == 0)
            has_ce = 1;
        nh++;
    }
    /* No ce- header and no body: an answer without a reply, not worth a log line. */
    if (!has_ce && r->body.len == 0)
        return RC_EINVALID_EVENT;
    rc_event_t *evs = NULL;
    size_t nev = 0;
    rc_ce_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    int rc = rc_ce_decode_request(hdrs, nh, r->body, arena, 1, &evs, &nev, &cerr);
    if (rc == 0 && nev != 1)
        rc = RC_EINVALID_EVENT;
    if (rc == 0) {
        *ev = evs[0];
    } else if (why_len > 0 && rc != -ENOMEM) {
        if (rc == RC_EINVALID_EVENT && cerr.rule != NULL)
            rc_ce_error_format(&cerr, why, why_len);
        else
            snprintf(why, why_len, "%s",
                     nev != 1 && rc == RC_EINVALID_EVENT ? "not one event" : rc_strerror(rc));
    }
    return rc;
}

/* Copies `s` for a log line: cut to fit, bytes that are not printable ASCII become '?', so an id
 * a subscriber chose cannot forge log lines. */
static void copy_id(char *dst, size_t cap, rc_str_t s)
{
    size_t n = 0;
    if (s.ptr == NULL)
        s = RC_STR("-");
    for (; n < s.len && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)s.ptr[n];
        dst[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
}

int rc_reply_store(rc_storage_t *store, const rc_reply_t *r, rc_reply_outcome_t *out, char *id,
                   size_t id_len, char *why, size_t why_len)
{
    *out = RC_REPLY_NONE;
    if (id_len > 0)
        id[0] = '\0';
    char scratch[4096];
    rc_arena_t arena;
    rc_arena_init(&arena, scratch, sizeof(scratch), 4u * 1024 * 1024);
    rc_event_t ev;
    int rc = rc_reply_decode(r, &arena, &ev, why, why_len);
    if (rc != 0) {
        if (rc != -ENOMEM)
            rc = 0; /* not a CloudEvent: ignored */
        goto out;
    }
    if (id_len > 0)
        copy_id(id, id_len, ev.id);
    rc_publish_opts_t o = {.ttl = RC_PUBLISH_TTL_REPLY,
                           .parent_ttl = r->parent_ttl,
                           .arrival_ns = r->arrival_ns,
                           .broker = ""};
    char msg[160];
    rc = rc_publish(store, &ev, 1, &arena, &o, msg, sizeof(msg));
    if (rc == RC_ETTL_EXPIRED) {
        *out = RC_REPLY_EXPIRED;
        rc = 0;
    } else if (rc == 0) {
        *out = RC_REPLY_STORED;
    }
out:
    rc_arena_close(&arena);
    return rc;
}

/* ---- the queue's entries --------------------------------------------------------------------- */

enum { R_WAITING = 0, R_DLQ_WAITING = 1, R_DLQ_SENDING = 2 };

/* Why a reply was given up: the value of ringcastreplyerror and of the log lines. */
enum { R_QUEUE_FULL, R_TIMEOUT, R_STOPPING, R_TOO_LARGE, R_ERROR };
static const char *const reason_names[RC__REPLY_REASONS] = {"queue_full", "timeout", "stopping",
                                                            "too_large", "error"};

/* A reply the worker holds: a copy of the response (headers and body, after the struct) and
 * of the answered event's id, then, once given up, its dead-letter request. */
struct rc__reply_s {
    struct rc__reply_s *next, *prev; /* prev: only in the dead-letter list */
    rc__wtrig_t *t;
    rc_reply_t r;      /* views into the bytes after the struct */
    rc_str_t event_id; /* likewise */
    size_t bytes;      /* counted against the queue's budget */
    int state;
    int built;
    int err;          /* why the last store failed (knativeerrorcode) */
    int reason;       /* why it was given up (R_*) */
    uint32_t retries; /* dead-letter retries done */
    int64_t queued_ns, due_ns;
    char id[ID_MAX], eid[ID_MAX]; /* for logs */
    char *hdr;                    /* dead-letter request: binary-mode header lines */
    size_t hdr_len, hdr_cap;
    char *body; /* its body: the data, or the structured event */
    size_t body_len, body_cap;
    struct iovec iov;
};

static size_t copy_size(const rc_reply_t *r, rc_str_t event_id)
{
    size_t n = sizeof(rc__reply_t) + 2 * r->n * sizeof(rc_str_t) + r->body.len + event_id.len;
    for (size_t i = 0; i < r->n; i++)
        n += r->names[i].len + r->values[i].len;
    return n;
}

static rc_str_t put(char **at, rc_str_t s)
{
    if (s.ptr == NULL)
        return s;
    rc_str_t o = {*at, s.len};
    memcpy(*at, s.ptr, s.len);
    *at += s.len;
    return o;
}

/* A copy of the reply that outlives the response, held by the queue (counted in the gauge). */
static rc__reply_t *hold(rc__wtrig_t *t, const rc_reply_t *r, rc_str_t event_id, const char *id)
{
    size_t size = copy_size(r, event_id);
    rc__reply_t *p = malloc(size);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    rc_str_t *names = (rc_str_t *)(p + 1);
    rc_str_t *values = names + r->n;
    char *at = (char *)(values + r->n);
    for (size_t i = 0; i < r->n; i++) {
        names[i] = put(&at, r->names[i]);
        values[i] = put(&at, r->values[i]);
    }
    p->r = *r;
    p->r.names = names;
    p->r.values = values;
    p->r.body = put(&at, r->body);
    p->event_id = put(&at, event_id);
    p->t = t;
    p->bytes = size;
    snprintf(p->id, sizeof(p->id), "%s", id);
    copy_id(p->eid, sizeof(p->eid), event_id);
    t->replies->held++;
    atomic_store_explicit(&t->st->replies_queued, ++t->replies_held, memory_order_relaxed);
    return p;
}

static void dlq_unlink(rc__replies_t *q, rc__reply_t *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        q->dlq = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
}

/* Frees `p`, which is in no list any more. */
static void release(rc__replies_t *q, rc__reply_t *p)
{
    if (p->state == R_WAITING)
        q->waiting_bytes -= p->bytes;
    else
        q->dlq_bytes -= p->bytes;
    q->held--;
    atomic_store_explicit(&p->t->st->replies_queued, --p->t->replies_held, memory_order_relaxed);
    free(p->hdr);
    free(p->body);
    free(p);
}

/* ---- logs ------------------------------------------------------------------------------------ */

/* Ends the trigger's log window when it is over (or `force`): the failures it only counted get
 * their summary lines. */
static void rlog_roll(rc__wtrig_t *t, int64_t now, int force)
{
    if (!force && now - t->rlog_since < RLOG_WINDOW_NS)
        return;
    double s = (double)(now - t->rlog_since) / 1e9;
    uint32_t folded = 0;
    char by[160];
    size_t n = 0;
    by[0] = '\0';
    for (int i = 0; i < RC__REPLY_REASONS; i++) {
        if (t->rlog_folded[i] == 0)
            continue;
        folded += t->rlog_folded[i];
        int k = snprintf(by + n, sizeof(by) - n, "%s%s %u", n > 0 ? ", " : "", reason_names[i],
                         t->rlog_folded[i]);
        if (k > 0 && (size_t)k < sizeof(by) - n)
            n += (size_t)k;
        t->rlog_folded[i] = 0;
    }
    if (folded > 0)
        rc_log_warn("worker",
                    "trigger %s/%s: %u more repl%s not stored in the last %.1f s (%s; not logged "
                    "one by one)",
                    t->wt->cfg->ns, t->wt->cfg->name, folded, folded == 1 ? "y" : "ies", s, by);
    if (t->rlog_sink_folded > 0)
        rc_log_warn("worker",
                    "trigger %s/%s: %u more repl%s not dead-lettered and dropped in the last "
                    "%.1f s",
                    t->wt->cfg->ns, t->wt->cfg->name, t->rlog_sink_folded,
                    t->rlog_sink_folded == 1 ? "y" : "ies", s);
    t->rlog_sink_folded = 0;
    t->rlog_lines = 0;
    t->rlog_since = now;
}

void rc__reply_log_flush(rc__wtrig_t *t, int64_t now, int force)
{
    int folded = t->rlog_sink_folded > 0;
    for (int i = 0; i < RC__REPLY_REASONS; i++)
        folded |= t->rlog_folded[i] > 0;
    if (folded)
        rlog_roll(t, now, force);
}

/* Whether a failure may have its own line now; if not, the caller folds it into the summary. */
static int rlog_allow(rc__wtrig_t *t, int64_t now)
{
    rlog_roll(t, now, 0);
    if (t->rlog_lines >= RLOG_LINES)
        return 0;
    t->rlog_lines++;
    return 1;
}

static const char *reason_text(const rc__replies_t *q, int reason, int err, char *buf, size_t len)
{
    if (reason == R_QUEUE_FULL)
        snprintf(buf, len, "the ring is full and so is the reply queue (%zu bytes)", q->cap);
    else if (reason == R_TIMEOUT)
        snprintf(buf, len, "no room in the ring for %lld ms",
                 (long long)(q->max_wait_ns / 1000000));
    else if (reason == R_STOPPING)
        snprintf(buf, len, "no room in the ring before the worker stopped");
    else if (err == -EMSGSIZE)
        snprintf(buf, len, "its body is over the HTTP client's response limit");
    else if (err == RC_ERING_TOO_BIG)
        snprintf(buf, len, "larger than the ring can hold");
    else
        snprintf(buf, len, "%s", rc_strerror(err));
    return buf;
}

/* ---- giving up ------------------------------------------------------------------------------- */

/* A reply that will not be stored: counted and logged; to the dead-letter sink when the trigger
 * has one, `may_sink` allows and the sink part of the queue has room, else dropped. `p` is its
 * queued copy, out of the FIFO, or NULL (then `r` and `event_id` are copied when it goes to the
 * sink). */
static void give_up(rc__replies_t *q, rc__wtrig_t *t, rc__reply_t *p, const rc_reply_t *r,
                    rc_str_t event_id, const char *id, int reason, int err, int may_sink,
                    int64_t now)
{
    int dl = p != NULL ? p->r.dead_letter : r->dead_letter;
    rc_metric_add(dl ? &t->st->dropped : &t->st->replies_failed, 1);
    int has_sink = t->d->dead_letter_uri[0] != '\0' && !dl;
    int to_sink = has_sink && may_sink && !q->closing;
    int fresh = p == NULL;
    if (to_sink) {
        size_t size = p != NULL ? p->bytes : copy_size(r, event_id);
        if (q->dlq_bytes + size > q->cap)
            to_sink = 0;
        else if (p == NULL && (p = hold(t, r, event_id, id)) == NULL)
            to_sink = 0;
    }
    if (rlog_allow(t, now)) {
        char eid[ID_MAX], why[160], trig[2 * RC_CONFIG_NAME_MAX + 2];
        if (p == NULL)
            copy_id(eid, sizeof(eid), event_id);
        snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
        const char *what = dl ? "dead letter" : "reply";
        const char *rid = p != NULL ? p->id : id, *evid = p != NULL ? p->eid : eid;
        const char *text = reason_text(q, reason, err, why, sizeof(why));
        rc_log_field_t f[] = {
            RC_LOG_STR("trigger", trig),
            RC_LOG_STR("kind", dl ? "dead_letter" : "reply"),
            RC_LOG_STR("reply_id", rid),
            RC_LOG_STR("event_id", evid),
            RC_LOG_STR("outcome", to_sink ? "dead-lettering" : "dropped"),
            RC_LOG_STR("reason", reason_names[reason]),
            RC_LOG_STR("error", text),
        };
        rc_log_fields(RC_LOG_WARN, "worker", f, sizeof(f) / sizeof(f[0]),
                      "trigger %s: %s %s to event %s not stored (%s: %s): %s", trig, what, rid,
                      evid, reason_names[reason], text,
                      to_sink     ? "dead-lettering it"
                      : !has_sink ? "dropped (no dead-letter sink)"
                      : !may_sink ? "dropped"
                                  : "dropped (no room to hold it for the dead-letter sink)");
    } else {
        t->rlog_folded[reason]++;
    }
    if (!to_sink) {
        if (!dl)
            rc_metric_add(&t->st->replies_dropped, 1);
        if (p != NULL)
            release(q, p);
        return;
    }
    if (!fresh)
        q->waiting_bytes -= p->bytes;
    q->dlq_bytes += p->bytes;
    p->state = R_DLQ_WAITING;
    p->reason = reason;
    p->err = err;
    p->due_ns = 0; /* at once */
    p->retries = 0;
    p->prev = NULL;
    p->next = q->dlq;
    if (q->dlq != NULL)
        q->dlq->prev = p;
    q->dlq = p;
}

/* Errors after which the same reply may fit later. */
static int transient(int rc)
{
    return rc == RC_ERING_FULL || rc == RC_ERING_NO_SLOT || rc == RC_ERING_SWEPT || rc == -EAGAIN;
}

static int reason_for(int rc)
{
    return rc == RC_ERING_TOO_BIG || rc == RC_ETOO_LARGE ? R_TOO_LARGE : R_ERROR;
}

static void count_stored(rc__wtrig_t *t, rc_reply_outcome_t out, const char *why)
{
    if (out == RC_REPLY_STORED)
        rc_metric_add(&t->st->replies, 1);
    else if (out == RC_REPLY_EXPIRED)
        rc_metric_add(&t->st->replies_expired, 1);
    else if (why != NULL && why[0] != '\0')
        rc_log_debug("worker", "trigger %s/%s: response body is not a CloudEvent (%s); ignored",
                     t->wt->cfg->ns, t->wt->cfg->name, why);
}

/* A dead letter, stored or not (an expired one went round a loop of dead-letter topics). */
static void count_dead_letter(rc__wtrig_t *t, rc_reply_outcome_t out, const char *why)
{
    if (out == RC_REPLY_EXPIRED)
        rc_log_warn("worker",
                    "trigger %s/%s: a dead letter was dropped: its knativebrokerttl ran out "
                    "(a loop of dead-letter topics?)",
                    t->wt->cfg->ns, t->wt->cfg->name);
    else if (out == RC_REPLY_NONE)
        rc_log_warn("worker", "trigger %s/%s: a dead letter was dropped: not an event (%s)",
                    t->wt->cfg->ns, t->wt->cfg->name, why != NULL ? why : "-");
    rc_metric_add(out == RC_REPLY_STORED ? &t->st->dead_lettered : &t->st->dropped, 1);
}

void rc__reply_take(rc__wtrig_t *t, const rc_reply_t *r, rc_str_t event_id)
{
    rc__replies_t *q = t->replies;
    char id[ID_MAX], why[160];
    rc_reply_outcome_t out;
    int rc = rc_reply_store(t->prod, r, &out, id, sizeof(id), why, sizeof(why));
    if (rc == 0) {
        if (r->dead_letter)
            count_dead_letter(t, out, why);
        else
            count_stored(t, out, why);
        return;
    }
    int64_t now = rc__now_ns();
    if (!transient(rc)) {
        give_up(q, t, NULL, r, event_id, id[0] != '\0' ? id : "-", reason_for(rc), rc, 1, now);
        return;
    }
    int stopping = q->give_up_ns != 0 && now >= q->give_up_ns;
    rc__reply_t *p = NULL;
    if (!stopping && q->waiting_bytes + copy_size(r, event_id) <= q->cap)
        p = hold(t, r, event_id, id);
    if (p == NULL) {
        give_up(q, t, NULL, r, event_id, id, stopping ? R_STOPPING : R_QUEUE_FULL, rc, 1, now);
        return;
    }
    if (!r->dead_letter)
        rc_metric_add(&t->st->replies_delayed, 1);
    p->state = R_WAITING;
    p->err = rc;
    p->queued_ns = now;
    q->waiting_bytes += p->bytes;
    rc__reply_fifo_t *f = &q->fifo[t->wt->broker_idx];
    if (f->tail != NULL) {
        f->tail->next = p;
    } else {
        f->head = p;
        f->next_try_ns = now + BACKOFF_MIN_NS;
        f->backoff = 0;
    }
    f->tail = p;
}

void rc__reply_lost(rc__wtrig_t *t, const rc_reply_t *r, rc_str_t event_id)
{
    char id[ID_MAX] = "-";
    for (size_t i = 0; i < r->n; i++) {
        if (r->names[i].len == 5 && strncasecmp(r->names[i].ptr, "ce-id", 5) == 0)
            copy_id(id, sizeof(id), r->values[i]);
    }
    /* Only part of the body was kept: nothing of it can be sent on. */
    give_up(t->replies, t, NULL, r, event_id, id, R_TOO_LARGE, -EMSGSIZE, 0, rc__now_ns());
}

/* ---- dead letters ---------------------------------------------------------------------------- */

/* The reply as a dead letter: its own attributes and data, plus why it is one. */
static int build_dead_letter(rc__replies_t *q, rc__reply_t *p)
{
    rc__wtrig_t *t = p->t;
    char scratch[4096];
    rc_arena_t arena;
    rc_arena_init(&arena, scratch, sizeof(scratch), 4u * 1024 * 1024);
    rc_event_t ev;
    int rc = rc_reply_decode(&p->r, &arena, &ev, NULL, 0);
    char code[16], dest[2 * RC_CONFIG_NAME_MAX + 4];
    snprintf(code, sizeof(code), "%d", rc_http_status_for(p->err));
    snprintf(dest, sizeof(dest), "/%s/%s", t->st->ns, t->st->broker);
    const struct {
        rc_str_t name, value;
    } ext[] = {
        {RC_STR("knativeerrordest"), rc_str(dest)},
        {RC_STR("knativeerrorcode"), rc_str(code)},
        {RC_STR("ringcastreplyerror"), rc_str(reason_names[p->reason])},
        {RC_STR("ringcastreplyto"), p->event_id.ptr != NULL ? p->event_id : RC_STR("")},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(ext) / sizeof(ext[0]); i++)
        rc = rc_event_set_ext(&ev, &arena, ext[i].name, ext[i].value, RC_CE_STRING);
    if (rc != 0)
        goto out;
    size_t before = p->hdr_cap + p->body_cap;
    if (t->d->format == RC_DELIVERY_FORMAT_JSON) {
        rc = rc__write_event(&ev, 1, &p->body, &p->body_cap, &p->body_len);
    } else {
        rc = rc__write_event(&ev, 0, &p->hdr, &p->hdr_cap, &p->hdr_len);
        /* The data may sit in the arena (a structured reply's data_base64): keep a copy. */
        p->body_len = ev.data.ptr != NULL ? ev.data.len : 0;
        if (rc == 0 && p->body_len > 0) {
            p->body = malloc(p->body_len);
            p->body_cap = p->body != NULL ? p->body_len : 0;
            if (p->body == NULL)
                rc = -ENOMEM;
            else
                memcpy(p->body, ev.data.ptr, p->body_len);
        }
    }
    size_t grown = p->hdr_cap + p->body_cap - before;
    p->bytes += grown;
    q->dlq_bytes += grown;
    p->iov = (struct iovec){p->body, p->body_len};
    p->built = rc == 0;
out:
    rc_arena_close(&arena);
    return rc;
}

/* A reply given up that does not reach the sink either (`what` says why): dropped. */
static void drop_dead_letter(rc__replies_t *q, rc__reply_t *p, const char *what)
{
    rc__wtrig_t *t = p->t;
    rc_metric_add(&t->st->replies_dropped, 1);
    if (rlog_allow(t, rc__now_ns())) {
        char trig[2 * RC_CONFIG_NAME_MAX + 2];
        snprintf(trig, sizeof(trig), "%s/%s", t->wt->cfg->ns, t->wt->cfg->name);
        rc_log_field_t f[] = {
            RC_LOG_STR("trigger", trig),      RC_LOG_STR("kind", "reply"),
            RC_LOG_STR("reply_id", p->id),    RC_LOG_STR("event_id", p->eid),
            RC_LOG_STR("outcome", "dropped"), RC_LOG_STR("error", what),
        };
        rc_log_fields(RC_LOG_WARN, "worker", f, sizeof(f) / sizeof(f[0]),
                      "trigger %s: reply %s to event %s not dead-lettered (%s); dropped", trig,
                      p->id, p->eid, what);
    } else
        t->rlog_sink_folded++;
    dlq_unlink(q, p);
    release(q, p);
}

static void on_dead_letter(int result, const rc_http_response_t *resp, void *arg)
{
    rc__reply_t *p = arg;
    rc__wtrig_t *t = p->t;
    rc__replies_t *q = t->replies;
    p->state = R_DLQ_WAITING;
    rc_delivery_class_t cls = rc_delivery_classify(result);
    if (result == -ECANCELED && rc__worker_stop) {
        drop_dead_letter(q, p, "the worker stopped before the sink answered");
        return;
    }
    if (cls == RC_DELIVERY_SUCCESS) {
        rc_metric_add(&t->st->replies_dead_lettered, 1);
        dlq_unlink(q, p);
        release(q, p);
        return;
    }
    if (cls == RC_DELIVERY_RETRY && rc_delivery_may_retry(t->d, p->retries)) {
        p->due_ns = rc__now_ns() + rc__retry_wait_ns(t->d, p->retries, result, resp);
        p->retries++;
        return;
    }
    char what[96];
    if (result > 0)
        snprintf(what, sizeof(what), "the sink answered %d", result);
    else
        snprintf(what, sizeof(what), "the sink failed: %s", rc_strerror(result));
    drop_dead_letter(q, p, what);
}

static void send_dead_letter(rc__replies_t *q, rc__reply_t *p)
{
    rc__wtrig_t *t = p->t;
    int rc = p->built ? 0 : build_dead_letter(q, p);
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof(what), "it cannot be written as a dead letter: %s", rc_strerror(rc));
        drop_dead_letter(q, p, what);
        return;
    }
    if (t->dlq == NULL) {
        on_dead_letter(-EHOSTUNREACH, NULL, p); /* unresolved: a transport error */
        return;
    }
    int json = t->d->format == RC_DELIVERY_FORMAT_JSON;
    rc_http_request_t req = {
        .endpoint = t->dlq,
        .timeout_ms = (uint32_t)((t->d->timeout_ns + 999999) / 1000000),
        .headers = json ? RC__JSON_CT_LINE : p->hdr,
        .headers_len = json ? sizeof(RC__JSON_CT_LINE) - 1 : p->hdr_len,
        .body = &p->iov,
        .body_iovcnt = 1,
    };
    rc__trigger_lines(t, 1, &req);
    p->state = R_DLQ_SENDING;
    rc = rc_http_client_request(q->client, &req, on_dead_letter, p);
    if (rc != 0)
        on_dead_letter(rc, NULL, p);
}

/* ---- the queue ------------------------------------------------------------------------------- */

uint64_t rc__env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0) {
        rc_log_warn("worker", "%s=%s is not a positive integer; using %llu", name, s,
                    (unsigned long long)def);
        return def;
    }
    return v;
}

int rc__replies_init(rc__replies_t *q, size_t nbrokers, rc_http_client_t *client)
{
    memset(q, 0, sizeof(*q));
    q->fifo = calloc(nbrokers ? nbrokers : 1, sizeof(*q->fifo));
    if (q->fifo == NULL)
        return -ENOMEM;
    q->nbrokers = nbrokers;
    q->client = client;
    q->cap = (size_t)rc__env_u64("RINGCAST_REPLY_QUEUE_BYTES", DEFAULT_CAP);
    q->max_wait_ns =
        (int64_t)rc__env_u64("RINGCAST_REPLY_MAX_WAIT_MS", DEFAULT_MAX_WAIT_MS) * 1000000;
    return 0;
}

void rc__replies_stop(rc__replies_t *q, int64_t give_up_ns)
{
    q->give_up_ns = give_up_ns > 0 ? give_up_ns : 1;
}

/* Gives up the FIFO's replies past their limits, then stores what fits, oldest first. */
static int run_fifo(rc__replies_t *q, rc__reply_fifo_t *f, int64_t now, int freed,
                    int64_t *next_due)
{
    int moved = 0;
    int stopping = q->give_up_ns != 0 && now >= q->give_up_ns;
    while (f->head != NULL && (stopping || now - f->head->queued_ns >= q->max_wait_ns)) {
        rc__reply_t *p = f->head;
        f->head = p->next;
        p->next = NULL;
        give_up(q, p->t, p, NULL, RC_STR_NULL, NULL, stopping ? R_STOPPING : R_TIMEOUT, p->err, 1,
                now);
        moved++;
    }
    if (f->head != NULL && (freed || now >= f->next_try_ns)) {
        while (f->head != NULL) {
            rc__reply_t *p = f->head;
            rc_reply_outcome_t out;
            int rc = rc_reply_store(p->t->prod, &p->r, &out, NULL, 0, NULL, 0);
            if (transient(rc)) {
                p->err = rc;
                int64_t wait = BACKOFF_MIN_NS << (f->backoff < 7 ? f->backoff : 7);
                f->next_try_ns = now + (wait < BACKOFF_MAX_NS ? wait : BACKOFF_MAX_NS);
                f->backoff++;
                break;
            }
            f->head = p->next;
            p->next = NULL;
            f->backoff = 0;
            moved++;
            if (rc != 0) {
                give_up(q, p->t, p, NULL, RC_STR_NULL, NULL, reason_for(rc), rc, 1, now);
            } else {
                if (p->r.dead_letter)
                    count_dead_letter(p->t, out, NULL);
                else
                    count_stored(p->t, out, NULL);
                release(q, p);
            }
        }
    }
    if (f->head == NULL) {
        f->tail = NULL;
        return moved;
    }
    int64_t due = f->next_try_ns;
    if (f->head->queued_ns + q->max_wait_ns < due)
        due = f->head->queued_ns + q->max_wait_ns;
    if (q->give_up_ns != 0 && q->give_up_ns < due)
        due = q->give_up_ns;
    if (due < *next_due)
        *next_due = due;
    return moved;
}

int rc__replies_run(rc__replies_t *q, int64_t now, int freed, int64_t *next_due)
{
    if (q->held == 0)
        return 0;
    int moved = 0;
    for (size_t b = 0; b < q->nbrokers; b++)
        moved += run_fifo(q, &q->fifo[b], now, freed, next_due);
    for (rc__reply_t *p = q->dlq, *next; p != NULL; p = next) {
        next = p->next; /* sending may finish `p` at once, never another entry */
        if (p->state != R_DLQ_WAITING)
            continue;
        if (p->due_ns <= now) {
            send_dead_letter(q, p);
            moved++;
        } else if (p->due_ns < *next_due) {
            *next_due = p->due_ns;
        }
    }
    return moved;
}

void rc__replies_close(rc__replies_t *q)
{
    if (q->fifo == NULL)
        return;
    q->closing = 1;
    int64_t now = rc__now_ns();
    for (size_t b = 0; b < q->nbrokers; b++) {
        rc__reply_fifo_t *f = &q->fifo[b];
        while (f->head != NULL) {
            rc__reply_t *p = f->head;
            f->head = p->next;
            give_up(q, p->t, p, NULL, RC_STR_NULL, NULL, R_STOPPING, p->err, 0, now);
        }
        f->tail = NULL;
    }
    while (q->dlq != NULL)
        drop_dead_letter(q, q->dlq, "the worker stopped before it was sent");
    free(q->fifo);
    q->fifo = NULL;
}
