/* The worker loop. One thread; per trigger a window of in-flight entries in ring order (the
 * cursor acknowledged to the ring is the oldest unfinished entry, or the read position when the
 * window is empty), an endpoint for the subscriber and one for the dead-letter sink. Each turn:
 * due retries go out, each trigger with room in its window polls its reader, the HTTP client
 * submits and reaps, finished entries leave the window front and the cursor moves. When nothing
 * moved, it sleeps on the client (requests in flight) or on a ring's futex (nothing in flight),
 * never longer than the next retry timer. */
#include "net/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "core/codec_http.h"
#include "core/codec_json.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "core/route.h"
#include "net/http_client.h"
#include "net/metrics.h"
#include "net/reply.h"
#include "shm/proc.h"

#define MAX_RESP_HEADERS 128
#define IDLE_SPINS 64
#define MAX_SLEEP_MS 50

enum { E_SENDING = 1, E_WAITING = 2, E_DONE = 3 };

struct wtrig;

typedef struct {
    struct wtrig *t;
    uint64_t pos, next, seq;
    const uint8_t *rec; /* the record in the mapping: stays valid while the window holds it */
    uint32_t rec_len;
    int state;
    int to_dlq;        /* attempts now go to the dead-letter sink */
    uint32_t retries;  /* retries done towards the current destination */
    int64_t due_ns;    /* E_WAITING: when the next attempt goes */
    uint64_t sent_ns;  /* start of the current attempt */
    int last_result;   /* of the subscriber, for knativeerrorcode */
    char *errdata;     /* knativeerrordata (base64 of the subscriber's last body) */
    char *hdr;
    size_t hdr_len, hdr_cap;
    char *body;
    size_t body_cap;
    struct iovec iov;
} wentry_t;

typedef struct wtrig {
    const rc_worker_trigger_t *wt;
    const rc_delivery_t *d;
    rc_reader_t *reader;
    rc_route_t *route;
    rc_ring_t *prod; /* this worker's handle of the broker ring, for replies */
    rc_trigger_stats_t *st;
    rc_http_endpoint_t *ep, *dlq;
    const char *uri;
    wentry_t *win;
    uint32_t cap, head, count;
    uint32_t sending; /* entries with a request outstanding */
    uint64_t last_seq; /* seq of the last record polled + 1 (0 = none yet) */
    int dirty;         /* window front may have finished: recompute the ack */
} wtrig_t;

typedef struct {
    const rc_worker_plan_t *plan;
    rc_http_client_t *client;
    wtrig_t *t;
    size_t nt;
    rc_ring_t **prod; /* per broker, opened on demand */
    uint32_t match[1];
} worker_t;

static volatile sig_atomic_t g_stop;

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

static wentry_t *at(wtrig_t *t, uint32_t i)
{
    return &t->win[(t->head + i) % t->cap];
}

static int64_t now_ns(void)
{
    return (int64_t)rc_now_ns();
}

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

static int append(wentry_t *e, const char *s, size_t n)
{
    if (ensure(&e->hdr, &e->hdr_cap, e->hdr_len + n) != 0)
        return -ENOMEM;
    memcpy(e->hdr + e->hdr_len, s, n);
    e->hdr_len += n;
    return 0;
}

static int build(wentry_t *e)
{
    wtrig_t *t = e->t;
    rc_record_view_t rv;
    int rc = rc_record_decode(e->rec, e->rec_len, &rv);
    if (rc != 0)
        return rc;
    rc_ce_ext_t ext[RC_CE_EXT_MAX + 3];
    rc_event_t ev;
    rc = rc_record_to_event(&rv, &ev, ext, RC_CE_EXT_MAX);
    if (rc != 0)
        return rc;
    char code[16];
    if (e->to_dlq) {
        /* ev.ext points at `ext`, which has room for three more. */
        snprintf(code, sizeof(code), "%d", rc_dead_letter_code(e->last_result));
        ext[ev.ext_count++] = (rc_ce_ext_t){{"knativeerrordest", 16},
                                            {t->uri, strlen(t->uri)}, RC_CE_STRING};
        ext[ev.ext_count++] = (rc_ce_ext_t){{"knativeerrorcode", 16}, {code, strlen(code)},
                                            RC_CE_STRING};
        if (e->errdata != NULL && e->errdata[0] != '\0')
            ext[ev.ext_count++] = (rc_ce_ext_t){{"knativeerrordata", 16},
                                                {e->errdata, strlen(e->errdata)}, RC_CE_STRING};
        ev.ext_cap = ev.ext_count;
    }
    e->hdr_len = 0;
    size_t need = 0;
    if (t->d->format == RC_DELIVERY_FORMAT_JSON) {
        rc = rc_ce_write_structured(&ev, RC_CE_WRITE_NO_TTL, e->body, e->body_cap, &need);
        if (rc == -ENOBUFS) {
            if (ensure(&e->body, &e->body_cap, need) != 0)
                return -ENOMEM;
            rc = rc_ce_write_structured(&ev, RC_CE_WRITE_NO_TTL, e->body, e->body_cap, &need);
        }
        if (rc != 0)
            return rc;
        static const char ct[] = "Content-Type: application/cloudevents+json\r\n";
        if (append(e, ct, sizeof(ct) - 1) != 0)
            return -ENOMEM;
        e->iov.iov_base = e->body;
        e->iov.iov_len = need;
    } else {
        rc = rc_ce_write_binary(&ev, RC_CE_WRITE_NO_TTL, e->hdr, e->hdr_cap, &need);
        if (rc == -ENOBUFS) {
            if (ensure(&e->hdr, &e->hdr_cap, need + 256) != 0)
                return -ENOMEM;
            rc = rc_ce_write_binary(&ev, RC_CE_WRITE_NO_TTL, e->hdr, e->hdr_cap, &need);
        }
        if (rc != 0)
            return rc;
        e->hdr_len = need;
        e->iov.iov_base = (void *)ev.data.ptr;
        e->iov.iov_len = ev.data.ptr ? ev.data.len : 0;
    }
    char line[RC_CONFIG_NAME_MAX + 64];
    int n = snprintf(line, sizeof(line), "%sKn-Namespace: %s\r\n",
                     e->to_dlq ? "" : "Prefer: reply\r\n", t->wt->cfg->ns);
    return append(e, line, (size_t)n);
}

static void on_response(int result, const rc_http_response_t *resp, void *arg);

static void finish(wentry_t *e)
{
    e->state = E_DONE;
    e->t->dirty = 1;
}

/* Starts the current attempt of `e`; a failure to start is handled like a failed attempt. */
static void send_entry(worker_t *w, wentry_t *e)
{
    wtrig_t *t = e->t;
    rc_http_endpoint_t *ep = e->to_dlq ? t->dlq : t->ep;
    int rc = build(e);
    if (rc != 0) {
        rc_log_error("worker", "trigger %s/%s: event at %llu cannot be sent (%s); skipped",
                     t->wt->cfg->ns, t->wt->cfg->name, (unsigned long long)e->pos,
                     rc_strerror(rc));
        rc_metric_add(&t->st->dropped, 1);
        finish(e);
        return;
    }
    e->sent_ns = rc_now_ns();
    if (ep == NULL) {
        /* The URL could not be resolved: a transport error, retried like one. */
        on_response(-EHOSTUNREACH, NULL, e);
        return;
    }
    rc_http_request_t req = {
        .endpoint = ep,
        .headers = e->hdr,
        .headers_len = e->hdr_len,
        .body = &e->iov,
        .body_iovcnt = 1,
        .timeout_ms = (uint32_t)((t->d->timeout_ns + 999999) / 1000000),
    };
    rc = rc_http_client_request(w->client, &req, on_response, e);
    if (rc != 0) {
        on_response(rc, NULL, e);
        return;
    }
    e->state = E_SENDING;
    t->sending++;
}

/* ---- outcomes ------------------------------------------------------------------------------ */

static int32_t parent_ttl(const wentry_t *e)
{
    rc_record_view_t rv;
    rc_ce_value_t v;
    int32_t ttl = RC_CE_TTL_DEFAULT;
    if (rc_record_decode(e->rec, e->rec_len, &rv) == 0 &&
        rc_record_get(&rv, (rc_str_t){"knativebrokerttl", 16}, &v) == 0)
        (void)rc_ce_int_parse(v.value, &ttl);
    return ttl;
}

/* A 2xx other than 202: a CloudEvent in it is a reply. Returns 0, or an error that makes the
 * attempt count as failed (the reply could not be stored). */
static int handle_reply(wentry_t *e, const rc_http_response_t *resp)
{
    wtrig_t *t = e->t;
    if (resp->status == 202 || (resp->body_len == 0 && resp->header_count == 0))
        return 0;
    rc_str_t names[MAX_RESP_HEADERS], values[MAX_RESP_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < resp->header_count && n < MAX_RESP_HEADERS; i++, n++) {
        names[n] = (rc_str_t){resp->headers[i].name, resp->headers[i].name_len};
        values[n] = (rc_str_t){resp->headers[i].value, resp->headers[i].value_len};
    }
    rc_reply_outcome_t out;
    char why[160];
    int rc = rc_reply_store(t->prod, names, values, n, (rc_str_t){resp->body, resp->body_len},
                            parent_ttl(e), &out, why, sizeof(why));
    if (rc != 0) {
        rc_metric_add(&t->st->replies_failed, 1);
        rc_log_warn("worker", "trigger %s/%s: reply not stored: %s", t->wt->cfg->ns,
                    t->wt->cfg->name, rc_strerror(rc));
        return rc;
    }
    if (out == RC_REPLY_STORED)
        rc_metric_add(&t->st->replies, 1);
    else if (out == RC_REPLY_EXPIRED)
        rc_metric_add(&t->st->replies_expired, 1);
    else if (why[0] != '\0')
        rc_log_debug("worker", "trigger %s/%s: response body is not a CloudEvent (%s); ignored",
                     t->wt->cfg->ns, t->wt->cfg->name, why);
    return 0;
}

static void on_response(int result, const rc_http_response_t *resp, void *arg)
{
    wentry_t *e = arg;
    wtrig_t *t = e->t;
    if (e->state == E_SENDING)
        t->sending--;
    if (result == -ECANCELED && g_stop) {
        /* Shutting down: the cursor stays before it; the next worker sends it again. */
        e->state = E_WAITING;
        e->due_ns = INT64_MAX;
        return;
    }
    rc_delivery_class_t cls = rc_delivery_classify(result);
    if (cls == RC_DELIVERY_SUCCESS && !e->to_dlq && resp != NULL) {
        int rrc = handle_reply(e, resp);
        if (rrc != 0) {
            result = rrc;
            cls = RC_DELIVERY_RETRY;
        }
    }
    if (cls == RC_DELIVERY_SUCCESS) {
        if (e->to_dlq) {
            rc_metric_add(&t->st->dead_lettered, 1);
        } else {
            rc_metric_add(&t->st->delivered, 1);
            rc_worker_stats_observe(t->st, rc_now_ns() - e->sent_ns);
        }
        finish(e);
        return;
    }
    if (cls == RC_DELIVERY_RETRY && rc_delivery_may_retry(t->d, e->retries)) {
        int64_t ra = -1;
        if (resp != NULL) {
            const rc_http_client_header_t *h = rc_http_response_header(resp, "Retry-After");
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (h != NULL &&
                rc_retry_after_parse(h->value, h->value_len,
                                     (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, &ra) != 0)
                ra = -1;
        }
        e->due_ns = now_ns() + rc_delivery_wait_ns(t->d, e->retries, result, ra);
        e->retries++;
        e->state = E_WAITING;
        rc_metric_add(&t->st->retried, 1);
        return;
    }
    if (e->to_dlq) {
        rc_log_warn("worker", "trigger %s/%s: dead-letter sink failed (%d); event dropped",
                    t->wt->cfg->ns, t->wt->cfg->name, result);
        rc_metric_add(&t->st->dropped, 1);
        finish(e);
        return;
    }
    rc_metric_add(&t->st->failed, 1);
    if (t->d->dead_letter_uri[0] == '\0') {
        rc_metric_add(&t->st->dropped, 1);
        finish(e);
        return;
    }
    e->last_result = result;
    if (e->errdata == NULL)
        e->errdata = malloc(RC_DEAD_LETTER_DATA_MAX + 1);
    if (e->errdata != NULL) {
        if (resp != NULL)
            rc_dead_letter_data(resp->body, resp->body_len, e->errdata, RC_DEAD_LETTER_DATA_MAX + 1);
        else
            e->errdata[0] = '\0';
    }
    e->to_dlq = 1;
    e->retries = 0;
    e->state = E_WAITING;
    e->due_ns = 0; /* at once */
}

/* ---- the window ---------------------------------------------------------------------------- */

static void take(worker_t *w, wtrig_t *t, const rc_ring_view_t *v)
{
    (void)w;
    t->last_seq = v->seq + 1;
    rc_record_view_t rv;
    if (rc_record_decode(v->data, v->len, &rv) != 0) {
        rc_log_warn("worker", "trigger %s/%s: malformed record at %llu skipped", t->wt->cfg->ns,
                    t->wt->cfg->name, (unsigned long long)v->pos);
        t->dirty = 1;
        return;
    }
    if (rc_route_match(t->route, &rv, w->match, 1) != 1) {
        t->dirty = 1; /* not for this trigger: the cursor may pass it */
        return;
    }
    wentry_t *e = at(t, t->count);
    t->count++;
    e->t = t;
    e->pos = v->pos;
    e->next = v->next;
    e->seq = v->seq;
    e->rec = v->data;
    e->rec_len = v->len;
    e->to_dlq = 0;
    e->retries = 0;
    e->last_result = 0;
    e->state = E_WAITING;
    e->due_ns = 0;
    atomic_store_explicit(&t->st->inflight, t->count, memory_order_relaxed);
}

/* Pops finished entries off the front and acknowledges the oldest unfinished position. */
static void advance(wtrig_t *t)
{
    if (!t->dirty)
        return;
    t->dirty = 0;
    while (t->count > 0 && at(t, 0)->state == E_DONE) {
        t->head = (t->head + 1) % t->cap;
        t->count--;
        atomic_store_explicit(&t->st->inflight, t->count, memory_order_relaxed);
    }
    uint64_t pos = t->count > 0 ? at(t, 0)->pos : rc_reader_position(t->reader);
    uint64_t seq = t->count > 0 ? at(t, 0)->seq + 1 : t->last_seq;
    (void)rc_reader_ack(t->reader, pos);
    if (seq != 0)
        atomic_store_explicit(&t->st->cursor_seq, seq, memory_order_relaxed);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static void child_hygiene(void)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL); /* the supervisor stops us on Ctrl-C, after the ingress */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Listening sockets, libuv's descriptors, ring fds: none is ours to hold. The mappings
     * (rings, stats) stay. */
    if (close_range(3, ~0u, 0) != 0) {
        long maxfd = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (maxfd > 0 && maxfd < 65536 ? maxfd : 65536); fd++)
            (void)close(fd);
    }
}

static int setup(worker_t *w, const rc_worker_plan_t *plan)
{
    w->plan = plan;
    w->prod = calloc(plan->nbrokers ? plan->nbrokers : 1, sizeof(*w->prod));
    w->t = calloc(plan->ntriggers ? plan->ntriggers : 1, sizeof(*w->t));
    if (w->prod == NULL || w->t == NULL)
        return -ENOMEM;
    int rc = rc_http_client_create(NULL, &w->client);
    if (rc != 0) {
        rc_log_error("worker", "worker %d: cannot create the HTTP client: %s", plan->index,
                     rc_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < plan->ntriggers; i++) {
        const rc_worker_trigger_t *wt = &plan->triggers[i];
        if (wt->worker != plan->index)
            continue;
        wtrig_t *t = &w->t[w->nt++];
        t->wt = wt;
        t->d = &wt->delivery;
        t->reader = wt->reader;
        t->st = wt->stats;
        t->uri = wt->cfg->subscriber_uri;
        t->cap = wt->cfg->max_inflight;
        t->win = calloc(t->cap, sizeof(*t->win));
        if (t->win == NULL)
            return -ENOMEM;
        const rc_filter_t *f = wt->cfg->filter;
        rc = rc_route_compile(&f, 1, 0, &t->route);
        if (rc != 0)
            return rc;
        uint32_t b = wt->broker_idx;
        if (w->prod[b] == NULL) {
            char err[256];
            rc = rc_ring_open(plan->brokers[b].ring_name, &w->prod[b], err, sizeof(err));
            if (rc != 0) {
                rc_log_error("worker", "worker %d: %s", plan->index, err);
                return rc;
            }
        }
        t->prod = w->prod[b];
        char err[256];
        if (rc_http_client_endpoint(w->client, t->uri, &t->ep, err, sizeof(err)) != 0)
            rc_log_error("worker", "trigger %s/%s: subscriber %s: %s (attempts fail)",
                         wt->cfg->ns, wt->cfg->name, t->uri, err);
        if (t->d->dead_letter_uri[0] != '\0' &&
            rc_http_client_endpoint(w->client, t->d->dead_letter_uri, &t->dlq, err,
                                    sizeof(err)) != 0)
            rc_log_error("worker", "trigger %s/%s: dead-letter sink %s: %s", wt->cfg->ns,
                         wt->cfg->name, t->d->dead_letter_uri, err);
        /* Resume where the acknowledgements of the previous worker ended. */
        rc_reader_resume(t->reader);
        uint64_t cur = atomic_load_explicit(&t->st->cursor_seq, memory_order_relaxed);
        t->last_seq = cur;
        atomic_store_explicit(&t->st->inflight, 0, memory_order_relaxed);
    }
    return 0;
}

static void teardown(worker_t *w)
{
    rc_http_client_destroy(w->client); /* cancels what is left; callbacks see g_stop */
    for (size_t i = 0; i < w->nt; i++) {
        wtrig_t *t = &w->t[i];
        advance(t);
        for (uint32_t j = 0; j < t->cap; j++) {
            free(t->win[j].hdr);
            free(t->win[j].body);
            free(t->win[j].errdata);
        }
        free(t->win);
        rc_route_destroy(t->route);
    }
    for (size_t b = 0; b < w->plan->nbrokers; b++)
        rc_ring_close(w->prod[b]);
    free(w->prod);
    free(w->t);
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* Sends due attempts; returns how many went and lowers *next_due to the earliest pending. */
static int run_timers(worker_t *w, wtrig_t *t, int64_t now, int64_t *next_due)
{
    int n = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        wentry_t *e = at(t, i);
        if (e->state != E_WAITING)
            continue;
        if (e->due_ns <= now) {
            send_entry(w, e);
            n++;
        } else if (e->due_ns < *next_due) {
            *next_due = e->due_ns;
        }
    }
    return n;
}

static int intake(worker_t *w, wtrig_t *t)
{
    int n = 0;
    rc_ring_view_t v;
    while (t->count < t->cap && n < 256) {
        int rc = rc_reader_poll(t->reader, &v);
        if (rc != 0)
            break;
        take(w, t, &v);
        n++;
    }
    if (n > 0)
        t->dirty = 1;
    return n;
}

int rc_worker_run(const rc_worker_plan_t *plan)
{
    child_hygiene();
    worker_t w;
    memset(&w, 0, sizeof(w));
    int rc = setup(&w, plan);
    if (rc != 0) {
        teardown(&w);
        return 1;
    }
    rc_log_info("worker", "worker %d (pid %d): %zu trigger%s, %s", plan->index, (int)getpid(),
                w.nt, w.nt == 1 ? "" : "s",
                rc_http_client_backend(w.client) == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll");
    int idle = 0;
    uint64_t drain_until = 0;
    for (;;) {
        if (g_stop && drain_until == 0)
            drain_until = rc_now_ns() + (uint64_t)plan->drain_ms * 1000000u;
        int64_t now = now_ns();
        int64_t next_due = INT64_MAX;
        int progress = 0;
        int busy = 0;
        for (size_t i = 0; i < w.nt; i++) {
            wtrig_t *t = &w.t[i];
            progress += run_timers(&w, t, now, &next_due);
            if (!g_stop)
                progress += intake(&w, t);
        }
        int got = rc_http_client_run(w.client, 0);
        if (got > 0)
            progress += got;
        for (size_t i = 0; i < w.nt; i++) {
            advance(&w.t[i]);
            busy += w.t[i].sending > 0;
        }
        if (g_stop) {
            size_t left = 0;
            for (size_t i = 0; i < w.nt; i++)
                left += w.t[i].sending;
            if (left == 0 || rc_now_ns() >= drain_until)
                break;
        }
        if (getppid() == 1)
            break; /* the supervisor is gone */
        if (progress > 0) {
            idle = 0;
            continue;
        }
        if (++idle < IDLE_SPINS)
            continue;
        int64_t wait_ns = next_due == INT64_MAX ? (int64_t)MAX_SLEEP_MS * 1000000
                                                : next_due - now_ns();
        if (wait_ns < 0)
            wait_ns = 0;
        if (wait_ns > (int64_t)MAX_SLEEP_MS * 1000000)
            wait_ns = (int64_t)MAX_SLEEP_MS * 1000000;
        if (busy || rc_http_client_pending(w.client) > 0) {
            /* Responses wake us; new events are seen within 1 ms. */
            int ms = (int)(wait_ns / 1000000);
            rc_http_client_run(w.client, ms > 1 ? 1 : ms);
            continue;
        }
        /* Nothing in flight: sleep on the ring of a trigger with room. Every reader of one ring
         * shares its futex, so any commit wakes us; with several rings, wake often. */
        wtrig_t *sleeper = NULL;
        int rings = 0;
        rc_ring_t *seen = NULL;
        for (size_t i = 0; i < w.nt; i++) {
            if (w.t[i].prod != seen) {
                seen = w.t[i].prod;
                rings++;
            }
            if (sleeper == NULL && w.t[i].count < w.t[i].cap)
                sleeper = &w.t[i];
        }
        if (rings > 1 && wait_ns > 2000000)
            wait_ns = 2000000;
        if (sleeper == NULL || g_stop) {
            struct timespec ts = {0, wait_ns > 1000000 ? 1000000 : wait_ns};
            nanosleep(&ts, NULL);
            continue;
        }
        rc_ring_view_t v;
        rc = rc_reader_wait(sleeper->reader, &v, wait_ns);
        if (rc == 0) {
            take(&w, sleeper, &v);
            sleeper->dirty = 1;
            idle = 0;
        }
    }
    teardown(&w);
    rc_log_info("worker", "worker %d (pid %d): stopped", plan->index, (int)getpid());
    return 0;
}
