/* bulkSubscribe for Dapr subscriptions (CONTRACTS.md, "Delivery to an app", last paragraph):
 * the events of a subscription's trigger go to the app in batches, one POST of
 * `{"id","type":"com.dapr.event.sent.bulk","topic","pubsubname","metadata","entries":[...]}` per
 * batch, each entry `{"entryId","event","contentType","metadata"}` with the whole structured
 * event, and the app answers per entry.
 *
 * No batch is kept from one turn to the next. Each turn (rc__bulk_run, in place of the
 * per-event sends of run_timers) gathers the window's ready events (waiting, due, routed and
 * not expired: rc__dapr_admit) by path, in ring order, and a path's events go in batches of up
 * to maxMessagesCount when there are that many, when the oldest has waited maxAwaitDurationMs
 * since it was first ready, or at once when one of them was sent before (a retry that is due,
 * or a batch whose replica refused the connection): a retry is delayed by its backoff, never by
 * the await too. Events whose routing rules give different paths never share a batch. Each
 * batch goes to one replica (the least busy, replica.c), where it counts as one request in
 * flight against maxConcurrency.
 *
 * Each event keeps its window entry the whole time: in flight (RC__E_SENDING) while its batch
 * is, then moved on by its own outcome exactly as after a single attempt (rc__dapr_apply:
 * delivered, retried after its own backoff, or dead-lettered/dropped), so the trigger's cursor
 * and the feed's acknowledgement pass only finished events, a worker killed with batches in
 * flight leaves every unfinished event to the next one (at least once), and an event given up
 * for lag while its batch is out is released when the batch's answer comes (ABANDONED).
 *
 * The entryId of an event is its ring sequence number in decimal: unique in the broker, so in
 * every batch, and the same on every attempt. docs/delivery.md, "Dapr subscriptions". */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"

#define ID_LEN         20 /* decimal digits of a uint64_t */
#define BATCHES_AHEAD  2  /* batches per replica the window holds */
#define WINDOW_MAX     16384u
#define BODY_LIMIT_DEF (16u << 20) /* a batch's body stops growing past it (one event at least) */
#define NOMEM_RETRY_NS (10 * 1000000ll)
#define LOG_WINDOW_NS  (1000000000ll)
#define LOG_LINES      5 /* answers logged one by one per trigger and window */
#define BULK_CT_LINE   "Content-Type: application/json\r\n"
#define ENTRY_EVENT    "\",\"event\":"
#define ENTRY_TAIL     ",\"contentType\":\"application/cloudevents+json\",\"metadata\":{}}"

/* One POST: its events (window entries, in ring order), their entryIds and the body. */
typedef struct batch_s {
    rc__wtrig_t *t;
    rc__replica_t *rep; /* while in flight */
    uint32_t n;
    rc__wentry_t **e;          /* `max` of them */
    char (*idbuf)[ID_LEN + 1]; /* entryIds */
    rc_str_t *ids;             /* into idbuf, parallel to e */
    rc_dapr_status_t *st;      /* the answer per entry */
    char *body;
    size_t body_len, body_cap;
    struct iovec iov;
    struct batch_s *next_free;
    struct batch_s *next_all;
} batch_t;

struct rc__bulk_s {
    uint32_t max;     /* maxMessagesCount */
    int64_t await_ns; /* maxAwaitDurationMs */
    size_t npaths;
    size_t body_limit;
    uint32_t *count, *start, *fill; /* per path, for one turn's gathering */
    rc__wentry_t **ready;           /* the turn's ready events, in window order (max_win) */
    rc__wentry_t **by_path;         /* the same, grouped by path (max_win) */
    char *head; /* the body after the id: type, topic, pubsubname, metadata, "entries":[ */
    size_t head_len;
    batch_t *free, *all;
    int64_t log_since; /* the current window of answer logs */
    uint32_t log_lines, log_folded;
};

/* ---- setup ------------------------------------------------------------------------------------
 */

/* `n` bytes of `s` as the contents of a JSON string: quote, backslash and control characters
 * escaped. `out` needs 6 * n bytes. Returns the length written. */
static size_t json_escape(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* The part of every body of `sub` that follows the batch's id, written once. */
static int make_head(rc__bulk_t *b, const rc_config_dapr_sub_t *sub)
{
    static const char type[] = "\",\"type\":\"com.dapr.event.sent.bulk\",\"topic\":\"";
    static const char ps[] = "\",\"pubsubname\":\"";
    static const char tail[] = "\",\"metadata\":{},\"entries\":[";
    size_t tl = strlen(sub->topic), pl = strlen(sub->pubsub);
    b->head = malloc(sizeof(type) + sizeof(ps) + sizeof(tail) + 6 * (tl + pl));
    if (b->head == NULL)
        return -ENOMEM;
    char *at = b->head;
    memcpy(at, type, sizeof(type) - 1);
    at += sizeof(type) - 1;
    at += json_escape(sub->topic, tl, at);
    memcpy(at, ps, sizeof(ps) - 1);
    at += sizeof(ps) - 1;
    at += json_escape(sub->pubsub, pl, at);
    memcpy(at, tail, sizeof(tail) - 1);
    at += sizeof(tail) - 1;
    b->head_len = (size_t)(at - b->head);
    return 0;
}

int rc__bulk_setup(rc__wtrig_t *t, size_t npaths)
{
    const rc_config_dapr_sub_t *sub = t->wt->cfg->dapr;
    rc__bulk_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    t->bulk = b;
    b->max = sub->bulk_max_messages ? sub->bulk_max_messages : 1;
    b->await_ns = (int64_t)sub->bulk_max_await_ms * 1000000;
    b->npaths = npaths;
    b->body_limit = (size_t)rc__env_u64("RINGCAST_BULK_MAX_BYTES", BODY_LIMIT_DEF);
    /* The window holds the batches: two per replica (one in flight, one gathering), or as many
     * as maxConcurrency allows when it is 1, and never less than the trigger's own. */
    uint32_t cap = t->nrep > 0 ? t->rep[0].cap : 0;
    uint64_t per_rep = cap == 1 ? 1 : BATCHES_AHEAD;
    uint64_t win = (uint64_t)b->max * per_rep * (t->nrep ? t->nrep : 1);
    if (win > WINDOW_MAX)
        win = WINDOW_MAX > b->max ? WINDOW_MAX : b->max;
    if (win > t->max_win)
        t->max_win = (uint32_t)win;
    size_t np = npaths ? npaths : 1;
    b->count = calloc(np, sizeof(*b->count));
    b->start = calloc(np, sizeof(*b->start));
    b->fill = calloc(np, sizeof(*b->fill));
    b->ready = calloc(t->max_win, sizeof(*b->ready));
    b->by_path = calloc(t->max_win, sizeof(*b->by_path));
    if (b->count == NULL || b->start == NULL || b->fill == NULL || b->ready == NULL ||
        b->by_path == NULL)
        return -ENOMEM;
    int rc = make_head(b, sub);
    if (rc == 0)
        rc_log_info("worker",
                    "trigger %s/%s: bulkSubscribe: batches of up to %u events, sent after %u ms "
                    "at most",
                    t->wt->cfg->ns, t->wt->cfg->name, b->max, sub->bulk_max_await_ms);
    return rc;
}

void rc__bulk_close(rc__wtrig_t *t)
{
    rc__bulk_t *b = t->bulk;
    if (b == NULL)
        return;
    while (b->all != NULL) {
        batch_t *q = b->all;
        b->all = q->next_all;
        free(q->e);
        free(q->idbuf);
        free(q->ids);
        free(q->st);
        free(q->body);
        free(q);
    }
    free(b->count);
    free(b->start);
    free(b->fill);
    free(b->ready);
    free(b->by_path);
    free(b->head);
    free(b);
    t->bulk = NULL;
}

static batch_t *batch_get(rc__wtrig_t *t)
{
    rc__bulk_t *b = t->bulk;
    batch_t *q = b->free;
    if (q != NULL) {
        b->free = q->next_free;
        return q;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->e = calloc(b->max, sizeof(*q->e));
    q->idbuf = calloc(b->max, sizeof(*q->idbuf));
    q->ids = calloc(b->max, sizeof(*q->ids));
    q->st = calloc(b->max, sizeof(*q->st));
    if (q->e == NULL || q->idbuf == NULL || q->ids == NULL || q->st == NULL) {
        free(q->e);
        free(q->idbuf);
        free(q->ids);
        free(q->st);
        free(q);
        return NULL;
    }
    q->t = t;
    q->next_all = b->all;
    b->all = q;
    return q;
}

static void batch_put(batch_t *q)
{
    rc__bulk_t *b = q->t->bulk;
    q->n = 0;
    q->rep = NULL;
    q->next_free = b->free;
    b->free = q;
}

/* ---- logs -------------------------------------------------------------------------------------
 */

static void log_roll(rc__wtrig_t *t, int64_t now, int force)
{
    rc__bulk_t *b = t->bulk;
    if (b == NULL || (!force && now - b->log_since < LOG_WINDOW_NS))
        return;
    if (b->log_folded > 0)
        rc_log_warn("worker",
                    "trigger %s/%s: %u more bulk answer%s in the last %.1f s left events without a "
                    "status (they were retried; not logged one by one)",
                    t->wt->cfg->ns, t->wt->cfg->name, b->log_folded, b->log_folded == 1 ? "" : "s",
                    (double)(now - b->log_since) / 1e9);
    b->log_folded = 0;
    b->log_lines = 0;
    b->log_since = now;
}

void rc__bulk_log_flush(rc__wtrig_t *t, int64_t now, int force)
{
    log_roll(t, now, force);
}

/* An answer that left `n` of its events without a status (all of them when the body could not
 * be decoded): a few lines a second per trigger, the rest folded into a summary. These are
 * apps that do not answer as Dapr's protocol says, so they are worth a line; a RETRY is not. */
static void log_answer(rc__wtrig_t *t, const rc__replica_t *rep, int undecodable, uint32_t n,
                       uint32_t of)
{
    rc__bulk_t *b = t->bulk;
    log_roll(t, rc__now_ns(), 0);
    if (b->log_lines >= LOG_LINES) {
        b->log_folded++;
        return;
    }
    b->log_lines++;
    if (undecodable)
        rc_log_warn("worker",
                    "trigger %s/%s: replica %s: the bulk answer is not a JSON object with a "
                    "\"statuses\" list of {\"entryId\",\"status\"} strings; its %u event%s %s "
                    "retried",
                    t->wt->cfg->ns, t->wt->cfg->name, rep != NULL ? rep->base : "?", of,
                    of == 1 ? "" : "s", of == 1 ? "is" : "are");
    else
        rc_log_warn("worker",
                    "trigger %s/%s: replica %s: the bulk answer has no status for %u of its %u "
                    "events; they are retried",
                    t->wt->cfg->ns, t->wt->cfg->name, rep != NULL ? rep->base : "?", n, of);
}

/* ---- answers ----------------------------------------------------------------------------------
 */

/* Moves each event of `q` on by what the answer says of it: per entry (a 2xx Dapr can decode),
 * or the same for all (404: not found; anything else: retried). */
static void outcome(batch_t *q, int result, const rc_http_response_t *resp, rc__replica_t *rep)
{
    rc__wtrig_t *t = q->t;
    int64_t now = rc__now_ns();
    int refused = rc__replica_refusal(result);
    rc_worker_stats_attempt(t->st, result, rc_wall_ns());
    if (rep != NULL && refused) {
        rc__replica_count_n(rep, 0, q->n);
        /* Another replica is up: the batch's events go there at once, and it is no retry. */
        if (rc__replica_refused(t, rep, now, result)) {
            for (uint32_t i = 0; i < q->n; i++) {
                q->e[i]->state = RC__E_WAITING;
                q->e[i]->due_ns = 0;
                q->e[i]->flush_ns = 0;
            }
            return;
        }
    } else if (rep != NULL && result > 0) {
        rc__replica_answered(t, rep);
    }
    int per_entry = 0;
    rc_dapr_outcome_t all = RC_DAPR_RETRY;
    if (result == 404) {
        all = RC_DAPR_NOT_FOUND;
    } else if (result >= 200 && result <= 299) {
        int rc = rc_dapr_bulk_statuses(resp->body, resp->body_len, resp->body_truncated, q->ids,
                                       q->n, q->st);
        per_entry = rc == 0;
        if (rc == RC_EPARSE)
            log_answer(t, rep, 1, q->n, q->n);
    }
    uint32_t ok = 0, missing = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        rc__wentry_t *e = q->e[i];
        rc_dapr_outcome_t o = per_entry ? rc_dapr_bulk_outcome(q->st[i]) : all;
        ok += o == RC_DAPR_SUCCESS;
        missing += per_entry && q->st[i] == RC_DAPR_STATUS_MISSING;
        rc__dapr_apply(e, o, result, resp, rep, now);
        if (e->state == RC__E_WAITING)
            e->flush_ns = e->due_ns; /* a retry goes when due, without another await */
    }
    if (missing > 0)
        log_answer(t, rep, 0, missing, q->n);
    if (rep != NULL && !refused) {
        rc__replica_count_n(rep, 1, ok);
        rc__replica_count_n(rep, 0, q->n - ok);
    }
}

/* The HTTP client's callback of a batch. */
static void on_batch_response(int result, const rc_http_response_t *resp, void *arg)
{
    batch_t *q = arg;
    rc__wtrig_t *t = q->t;
    rc__replica_t *rep = q->rep;
    q->rep = NULL;
    if (rep != NULL)
        rc__replica_hold(rep, -1);
    int stopping = result == -ECANCELED && rc__worker_stop;
    uint32_t live = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        rc__wentry_t *e = q->e[i];
        if (e->state == RC__E_ABANDONED) {
            rc__entry_abandoned_done(e); /* given up for lag while the batch was out */
            continue;
        }
        t->sending--;
        if (stopping) {
            /* Shutting down: the cursor stays before it; the next worker sends it again. */
            e->state = RC__E_WAITING;
            e->due_ns = INT64_MAX;
            continue;
        }
        q->e[live] = e;
        q->ids[live] = q->ids[i];
        live++;
    }
    q->n = live;
    if (live > 0)
        outcome(q, result, resp, rep);
    batch_put(q);
}

/* ---- sending ----------------------------------------------------------------------------------
 */

static int body_room(batch_t *q, size_t more)
{
    size_t need = q->body_len + more;
    if (need <= q->body_cap)
        return 0;
    size_t cap = q->body_cap ? q->body_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *nb = realloc(q->body, cap);
    if (nb == NULL)
        return -ENOMEM;
    q->body = nb;
    q->body_cap = cap;
    return 0;
}

static void body_put(batch_t *q, const void *p, size_t n)
{
    memcpy(q->body + q->body_len, p, n);
    q->body_len += n;
}

/* A random (version 4) UUID for the batch's `id`. */
static void batch_uuid(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* Unique enough for an id no one looks up: the clock and the pid. */
        uint64_t x = rc_now_ns() ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)(x >> (i % 8 * 8) ^ i * 37);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

/* Writes the body of a batch of the first of the `n` events of `list` (as many as fit the byte
 * limit, one at least). An event whose body cannot be built is finished (dropped) and left out.
 * Returns how many of `list` it consumed, or -ENOMEM (nothing consumed, none finished). */
static int fill_batch(batch_t *q, rc__wentry_t **list, uint32_t n)
{
    rc__bulk_t *b = q->t->bulk;
    char id[37];
    batch_uuid(id);
    q->body_len = 0;
    q->n = 0;
    if (body_room(q, 8 + 36 + b->head_len + 2) != 0)
        return -ENOMEM;
    body_put(q, "{\"id\":\"", 7);
    body_put(q, id, 36);
    body_put(q, b->head, b->head_len);
    uint32_t k = 0;
    for (; k < n; k++) {
        rc__wentry_t *e = list[k];
        struct iovec ev;
        if (q->n > 0 && q->body_len >= b->body_limit)
            break;
        if (rc__dapr_body(e, &ev) != 0)
            continue; /* finished, dropped and logged */
        char *idb = q->idbuf[q->n];
        int il = snprintf(idb, ID_LEN + 1, "%" PRIu64, e->seq);
        size_t more =
            1 + 12 + (size_t)il + sizeof(ENTRY_EVENT) - 1 + ev.iov_len + sizeof(ENTRY_TAIL) - 1 + 2;
        if (body_room(q, more) != 0) {
            if (q->n == 0)
                return -ENOMEM;
            break; /* what is there goes; the rest waits for the next batch */
        }
        if (q->n > 0)
            body_put(q, ",", 1);
        body_put(q, "{\"entryId\":\"", 12);
        body_put(q, idb, (size_t)il);
        body_put(q, ENTRY_EVENT, sizeof(ENTRY_EVENT) - 1);
        body_put(q, ev.iov_base, ev.iov_len);
        body_put(q, ENTRY_TAIL, sizeof(ENTRY_TAIL) - 1);
        q->ids[q->n] = (rc_str_t){idb, (size_t)il};
        q->e[q->n++] = e;
    }
    body_put(q, "]}", 2); /* room was kept with every entry */
    return (int)k;
}

/* Sends the first of the `n` events of `list` (one path's, ready) to replica `r` as one batch.
 * Returns how many of them it consumed (sent, or finished unsent), or -ENOMEM. */
static int send_batch(rc_http_client_t *c, rc__wtrig_t *t, rc__replica_t *r, int32_t path,
                      rc__wentry_t **list, uint32_t n)
{
    batch_t *q = batch_get(t);
    if (q == NULL)
        return -ENOMEM;
    int k = fill_batch(q, list, n);
    if (k <= 0 || q->n == 0) {
        batch_put(q);
        return k;
    }
    uint64_t sent = rc_now_ns();
    for (uint32_t i = 0; i < q->n; i++) {
        q->e[i]->state = RC__E_SENDING;
        q->e[i]->sent_ns = sent;
    }
    t->sending += q->n;
    q->rep = r;
    rc__replica_hold(r, 1);
    rc_metric_add(&t->st->dapr_bulk_requests, 1);
    q->iov = (struct iovec){q->body, q->body_len};
    rc_http_request_t req = {
        .endpoint = r->ep[path],
        .timeout_ms = (uint32_t)((t->d->timeout_ns + 999999) / 1000000),
        .headers = BULK_CT_LINE,
        .headers_len = sizeof(BULK_CT_LINE) - 1,
        .body = &q->iov,
        .body_iovcnt = 1,
    };
    int rc = req.endpoint != NULL ? rc_http_client_request(c, &req, on_batch_response, q)
                                  : -EHOSTUNREACH; /* an URL that did not resolve */
    if (rc != 0)
        on_batch_response(rc, NULL, q);
    return k;
}

/* The ready events of `list` (one path's, `n`, in ring order) go in full batches, and the rest
 * in one more when the oldest has waited long enough (flush_ns). Returns how many moved; sets
 * *full when no replica could take a batch (then the turn ends there). */
static int run_path(rc_http_client_t *c, rc__wtrig_t *t, int32_t path, rc__wentry_t **list,
                    uint32_t n, int64_t now, int64_t *next_due, int *full)
{
    rc__bulk_t *b = t->bulk;
    int moved = 0;
    uint32_t k = 0;
    while (k < n) {
        if (n - k < b->max) {
            int64_t flush = INT64_MAX;
            for (uint32_t j = k; j < n; j++)
                flush = list[j]->flush_ns < flush ? list[j]->flush_ns : flush;
            if (flush > now) {
                if (flush < *next_due)
                    *next_due = flush;
                return moved;
            }
        }
        rc__replica_t *r = rc__replica_pick(t, now);
        if (r == NULL) {
            if (t->rep_wake_ns < *next_due)
                *next_due = t->rep_wake_ns;
            *full = 1;
            return moved;
        }
        int sent = send_batch(c, t, r, path, list + k, n - k < b->max ? n - k : b->max);
        if (sent <= 0) {
            /* Out of memory: they stay ready and are tried again shortly. */
            if (now + NOMEM_RETRY_NS < *next_due)
                *next_due = now + NOMEM_RETRY_NS;
            return moved;
        }
        k += (uint32_t)sent;
        moved += sent;
    }
    return moved;
}

int rc__bulk_run(rc_http_client_t *c, rc__wtrig_t *t, int64_t now, int64_t *next_due)
{
    rc__bulk_t *b = t->bulk;
    int moved = 0;
    uint32_t nready = 0;
    memset(b->count, 0, (b->npaths ? b->npaths : 1) * sizeof(*b->count));
    for (uint32_t i = 0; i < t->nwin; i++) {
        rc__wentry_t *e = rc__wref_at(t, i)->e;
        if (e->state != RC__E_WAITING)
            continue;
        if (e->due_ns > now) {
            if (e->due_ns < *next_due)
                *next_due = e->due_ns;
            continue;
        }
        if (!e->prepared)
            e->flush_ns = now + b->await_ns; /* first ready now: its await starts */
        if (rc__dapr_admit(e)) {
            moved++; /* expired or unrouted: finished without a request */
            continue;
        }
        b->ready[nready++] = e;
        b->count[e->path]++;
    }
    if (nready == 0)
        return moved;
    /* Grouped by path, each group in ring order (a counting sort). */
    uint32_t off = 0;
    for (size_t p = 0; p < b->npaths; p++) {
        b->start[p] = b->fill[p] = off;
        off += b->count[p];
    }
    for (uint32_t i = 0; i < nready; i++)
        b->by_path[b->fill[b->ready[i]->path]++] = b->ready[i];
    int full = 0;
    for (size_t p = 0; p < b->npaths && !full; p++) {
        if (b->count[p] > 0)
            moved += run_path(c, t, (int32_t)p, b->by_path + b->start[p], b->count[p], now,
                              next_due, &full);
    }
    return moved;
}
