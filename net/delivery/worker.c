/* The worker loop. One thread. Per broker a feed (a manual-ack lossless reader) and one route
 * program over the filters of this worker's triggers on that broker; per trigger a queue of the
 * events it matched, in ring order (references into the ring, no copies): the first
 * max-inflight of them form the window (sent, or waiting for a retry), the rest wait for room.
 * A feed acknowledges the oldest unfinished event over its triggers, or its read position when
 * they are all idle, so every queued record stays in the ring until its trigger is done.
 *
 * Each turn: due attempts of the active triggers (those with a non-empty queue) go out (a Dapr
 * bulkSubscribe trigger's in batches, dapr_bulk_deliver.c), each
 * feed is polled and every event is routed once and queued on the triggers it matches, the
 * HTTP client submits and reaps, finished events leave the queue fronts (pending ones move into
 * the window), the feeds acknowledge, and replies that found the ring full are tried again
 * (reply.c) right after those acknowledgements released space. When a turn moved nothing, it
 * sleeps in one place, the HTTP client's wait (io_uring or epoll), until a response or an
 * attempt deadline, the next retry timer or periodic job, or an event in any feed: the
 * client's io_uring also waits on each feed's ring futex, or, where it cannot, a watch thread
 * sleeps on the ring and wakes the client (arm_feed). Nothing polls while it sleeps. Work per
 * turn follows the active triggers, not the configured ones.
 *
 * On SIGTERM it stops reading, finishes what is in flight and stores or dead-letters its queued
 * replies, for up to the drain time (replies give up on ring space half way through it). */
#include "net/delivery/worker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/metric.h"
#include "core/record.h"
#include "core/clock.h"
#include "net/delivery/cursor.h"

#define IDLE_SPINS    2 /* empty turns before it sleeps (each one an io_uring_enter) */
#define MAX_SLEEP_MS  50
#define PPID_CHECK_NS (10 * 1000000ll)  /* how often it asks whether the supervisor is gone */
#define INTAKE_BATCH  256               /* events a feed routes per turn */
#define CESQL_SYNC_NS (100 * 1000000ll) /* how often CESQL error counts reach the stats slots */

volatile sig_atomic_t rc__worker_stop;

/* How a feed ends the worker's sleep when an event arrives (arm_feed). */
typedef struct {
    rc_storage_watch_t *watch; /* NULL while the client waits on the ring's futex itself */
    int lost;                  /* neither way works: sleeps are cut to 1 ms */
} feed_wake_t;

typedef struct {
    const rc_worker_plan_t *plan;
    rc_http_client_t *client;
    rc__wtrig_t *t;
    size_t nt;
    rc__wfeed_t *f;
    size_t nf;
    rc__wtrig_t **active; /* triggers whose queue is not empty (room for all nt) */
    size_t nactive;
    rc__wtrig_t **lagging; /* triggers with lagged events for their sink (room for all nt) */
    size_t nlagging;
    rc_storage_t **prod;   /* per broker, opened on demand */
    int *sync_failed;      /* per broker: rc_storage_sync failed, its events stay unfinished */
    rc__replies_t replies; /* replies waiting for ring space or for a dead-letter sink */
    feed_wake_t *wake;     /* per feed: how it ends the worker's sleep (sleep_until_work) */
    int fatal;             /* an event could not be queued: stop without acknowledging it */
} worker_t;

static void on_term(int sig)
{
    (void)sig;
    rc__worker_stop = 1;
}

static rc__wref_t *ref_at(const rc__wtrig_t *t, uint32_t i)
{
    return rc__wref_at(t, i);
}

/* ---- saved cursors (net/delivery/cursor.h) ------------------------------------------------- */

/* The trigger has unfinished events; the oldest is (seq, pos). */
static void publish_busy(rc__wtrig_t *t, uint64_t seq, uint64_t pos)
{
    rc_cursor_store(t->wt->cursor, seq, pos, 0);
}

/* The trigger has nothing unfinished up to (seq, pos) and follows its feed from there. */
static void publish_idle(rc__wtrig_t *t, uint64_t seq, uint64_t pos)
{
    rc_cursor_store(t->wt->cursor, seq, pos, t->feed->wf->link);
}

/* Every event below seq + 1 was routed. Called after the event was queued on its triggers, so
 * a trigger that follows the feed never passes an event it still has to deliver. */
static void publish_read(rc__wfeed_t *f, const rc_storage_view_t *v)
{
    f->read_seq = v->seq + 1;
    f->read_pos = v->next;
    rc_cursor_store_read(f->wf->cursor, v->seq + 1, v->next);
}

/* ---- a trigger's queue ---------------------------------------------------------------------- */

static int grow(rc__wtrig_t *t)
{
    uint32_t cap = t->qcap ? t->qcap * 2 : 8;
    rc__wref_t *q = malloc((size_t)cap * sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->qlen; i++)
        q[i] = *ref_at(t, i);
    free(t->q);
    t->q = q;
    t->qcap = cap;
    t->qhead = 0;
    return 0;
}

static int enqueue(worker_t *w, rc__wtrig_t *t, const rc_storage_view_t *v, rc__wevent_t *ev)
{
    if (t->qlen == t->qcap && grow(t) != 0)
        return -ENOMEM;
    *ref_at(t, t->qlen) = (rc__wref_t){v->pos, v->seq, ev, NULL};
    ev->refs++;
    t->qlen++;
    t->dirty = 1;
    if (!t->active) {
        t->active = 1;
        w->active[w->nactive++] = t;
        publish_busy(t, v->seq, v->pos);
    }
    return 0;
}

/* Moves pending events into the window while it has room. */
static void fill_window(rc__wtrig_t *t)
{
    /* Requests given up for lag still take room: a hung subscriber never has more than its
     * window of requests outstanding, however many events the trigger gives up. */
    while (t->nwin < t->qlen && t->nwin + t->abandoned < t->max_win) {
        rc__wentry_t *e = t->free_e;
        if (e != NULL)
            t->free_e = e->next_free;
        else if ((e = calloc(1, sizeof(*e))) == NULL)
            return; /* stays pending; the next turn tries again */
        rc__wref_t *r = ref_at(t, t->nwin);
        e->t = t;
        e->pos = r->pos;
        e->seq = r->seq;
        e->ev = r->ev;
        e->to_dlq = 0;
        e->lagged = 0;
        e->retries = 0;
        e->last_result = 0;
        e->prepared = 0;
        e->started = 0;
        e->state = RC__E_WAITING;
        e->due_ns = 0; /* at once */
        if (t->order != NULL)
            rc__order_admit(t, e); /* held behind an earlier event of its key */
        r->e = e;
        t->nwin++;
    }
}

/* Pops finished events off the front, refills the window and publishes the cursor. Returns 0
 * when the queue is empty (the trigger leaves the active list). */
static int advance(rc__wtrig_t *t)
{
    if (!t->dirty)
        return 1;
    t->dirty = 0;
    int popped = 0;
    while (t->nwin > 0 && ref_at(t, 0)->e->state == RC__E_DONE) {
        rc__wentry_t *e = ref_at(t, 0)->e;
        e->next_free = t->free_e;
        t->free_e = e;
        rc__wevent_release(e->ev, &t->feed->free_ev);
        t->qhead = (t->qhead + 1) & (t->qcap - 1);
        t->qlen--;
        t->nwin--;
        popped = 1;
    }
    fill_window(t);
    if (t->nwin < t->qlen && t->nwin + t->abandoned < t->max_win)
        t->dirty = 1; /* an entry could not be allocated */
    /* Sent or waiting for a retry: an ordered trigger's held entries were never sent. */
    atomic_store_explicit(&t->st->inflight, t->nwin - (t->order != NULL ? rc__order_held(t) : 0),
                          memory_order_relaxed);
    if (t->qlen == 0) {
        publish_idle(t, t->feed->read_seq, t->feed->read_pos);
        return 0;
    }
    if (popped)
        publish_busy(t, ref_at(t, 0)->seq, ref_at(t, 0)->pos);
    return 1;
}

/* The lag limit (policy dead-letter): while the queue front is more than the limit behind the
 * feed's read position, the trigger gives up its oldest event: finished for the trigger (the
 * cursor and the feed's acknowledgement move past it), counted lagged, and copied out of the ring
 * for the dead-letter sink (rc__lag_keep). A request in flight for it is abandoned, not freed:
 * the client borrows its buffers until the callback. Returns how many events were given up. */
static int shed(rc__wtrig_t *t, int64_t now)
{
    if (t->lag_limit == 0 || t->qlen == 0)
        return 0;
    uint64_t head = t->feed->read_pos;
    if (head - ref_at(t, 0)->pos <= t->lag_limit)
        return 0;
    int n = 0;
    uint64_t behind = head - ref_at(t, 0)->pos;
    while (t->qlen > 0 && head - ref_at(t, 0)->pos > t->lag_limit) {
        rc__wref_t *r = ref_at(t, 0);
        rc__wentry_t *e = t->nwin > 0 ? r->e : NULL;
        if (e != NULL && e->okey != NULL && e->state != RC__E_SENDING)
            rc__order_release(e); /* its key goes on; an abandoned one's after its request */
        if (e == NULL || e->state != RC__E_DONE) {
            rc_metric_add(&t->st->lagged, 1);
            rc__lag_keep(t, r->ev, r->pos, r->seq);
            n++;
        }
        if (e != NULL && e->state == RC__E_SENDING) {
            e->state = RC__E_ABANDONED; /* on_response frees it and releases the event */
            t->sending--;
            t->abandoned++;
        } else {
            if (e != NULL) {
                e->next_free = t->free_e;
                t->free_e = e;
            }
            rc__wevent_release(r->ev, &t->feed->free_ev);
        }
        if (e != NULL)
            t->nwin--;
        t->qhead = (t->qhead + 1) & (t->qcap - 1);
        t->qlen--;
    }
    t->lag_log_n += (uint64_t)n;
    rc__lag_log(t, now, behind, 0);
    t->dirty = 1; /* advance refills the window and publishes the cursor */
    if (t->qlen > 0)
        publish_busy(t, ref_at(t, 0)->seq, ref_at(t, 0)->pos);
    return n;
}

/* Acknowledges, for each feed, the oldest event still queued on one of its triggers. Returns
 * how many feeds moved on (ring space may have been released). */
static int ack_feeds(worker_t *w)
{
    int moved = 0;
    for (size_t i = 0; i < w->nf; i++)
        w->f[i].ack_to = rc_storage_position(w->f[i].reader);
    for (size_t i = 0; i < w->nactive; i++) {
        rc__wtrig_t *t = w->active[i];
        if (t->qlen > 0 && ref_at(t, 0)->pos < t->feed->ack_to)
            t->feed->ack_to = ref_at(t, 0)->pos;
    }
    for (size_t i = 0; i < w->nf; i++) {
        rc__wfeed_t *f = &w->f[i];
        if (f->ack_to != f->acked && rc_storage_ack(f->reader, f->ack_to) == 0) {
            f->acked = f->ack_to;
            moved++;
        }
    }
    return moved;
}

/* Replies and dead letters stored in a durability-sync file store are on disk before the
 * events they answer are finished for the cursors and the feeds (advance_all, ack_feeds): one
 * fdatasync per store per loop turn covers all stored since the last, and costs nothing when
 * none was (or the store is not one that needs it). After a failed one the store's triggers
 * finish nothing more: their events are delivered again after a restart rather than
 * acknowledged with their replies maybe lost (docs/durability.md, "Replies under sync"). */
static void sync_replies(worker_t *w)
{
    for (size_t b = 0; b < w->plan->nbrokers; b++) {
        if (w->prod[b] != NULL && !w->sync_failed[b] && rc_storage_sync(w->prod[b]) != 0)
            w->sync_failed[b] = 1;
    }
}

/* ---- routing -------------------------------------------------------------------------------- */

/* An event for the triggers that matched it, with its record already decoded. */
static rc__wevent_t *event_get(rc__wfeed_t *f, const rc_record_view_t *rv, int64_t now)
{
    rc__wevent_t *ev = f->free_ev;
    if (ev != NULL)
        f->free_ev = ev->next_free;
    else if ((ev = calloc(1, sizeof(*ev))) == NULL)
        return NULL;
    ev->refs = 0;
    ev->built = 0;
    ev->rv = *rv;
    ev->queued_ns = now;
    ev->next_free = NULL;
    return ev;
}

static void event_free_all(rc__wevent_t *ev)
{
    while (ev != NULL) {
        rc__wevent_t *next = ev->next_free;
        free(ev->bin);
        free(ev->json);
        free(ev);
        ev = next;
    }
}

/* Decodes the event once and queues it on every trigger it matches (at `now`: the clock of the
 * intake, read once per batch, is the start of its queue wait). */
static void route(worker_t *w, rc__wfeed_t *f, const rc_storage_view_t *v, int64_t now)
{
    rc_record_view_t rv;
    if (rc_record_decode(v->data, v->len, &rv) != 0) {
        rc_log_warn("worker", "worker %d: malformed record at %llu skipped", w->plan->index,
                    (unsigned long long)v->pos);
        publish_read(f, v);
        return;
    }
    int n = rc_route_match(f->route, &rv, f->match, f->ntrig);
    rc__wevent_t *ev = NULL;
    for (int i = 0; i < n; i++) {
        rc__wtrig_t *t = f->trig[f->match[i]];
        if (v->seq < t->skip_seq)
            continue; /* finished by an earlier worker, or older than the trigger */
        if (ev == NULL)
            ev = event_get(f, &rv, now);
        if (ev == NULL || enqueue(w, t, v, ev) != 0) {
            rc_log_error("worker",
                         "trigger %s/%s: out of memory queueing the event at %llu; restarting",
                         t->wt->cfg->ns, t->wt->cfg->name, (unsigned long long)v->pos);
            if (ev != NULL && ev->refs == 0) {
                ev->next_free = f->free_ev;
                f->free_ev = ev;
            }
            w->fatal = 1;
            return;
        }
    }
    publish_read(f, v);
}

static int intake(worker_t *w, rc__wfeed_t *f)
{
    int n = 0;
    rc_storage_view_t v;
    int64_t now = 0;
    while (n < INTAKE_BATCH && !w->fatal && rc_storage_poll(f->reader, &v) == 0) {
        if (n == 0)
            now = rc__now_ns();
        route(w, f, &v, now);
        n++;
    }
    return n;
}

static void sync_cesql_errors(worker_t *w)
{
    for (size_t i = 0; i < w->nt; i++) {
        rc__wtrig_t *t = &w->t[i];
        uint64_t n = rc_route_cesql_errors(t->feed->route, t->route_idx);
        atomic_store_explicit(&t->st->cesql_errors, t->cesql_base + n, memory_order_relaxed);
    }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static void child_hygiene(const rc_worker_plan_t *plan)
{
    /* SIGKILL, not SIGTERM: a worker that outlived its broker would go on finishing events and
     * moving their cursors and acknowledgements while the next broker process takes them over.
     * The next broker sends what was in flight again instead. The check after it covers a
     * broker that died before the prctl. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != plan->supervisor)
        _exit(1);
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

/* Compiles the feed's route program over its triggers and resumes it where the acknowledgements
 * of the previous worker ended. Each trigger skips what it had finished already. */
static int setup_feed(worker_t *w, rc__wfeed_t *f)
{
    const rc_filter_t **filters = calloc(f->ntrig ? f->ntrig : 1, sizeof(*filters));
    f->match = calloc(f->ntrig ? f->ntrig : 1, sizeof(*f->match));
    if (filters == NULL || f->match == NULL) {
        free(filters);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < f->ntrig; i++)
        filters[i] = f->trig[i]->wt->cfg->filter;
    int rc = rc_route_compile(filters, f->ntrig, 0, &f->route);
    free(filters);
    if (rc != 0) {
        rc_log_error("worker", "worker %d: cannot compile the routes of %u triggers: %s",
                     w->plan->index, f->ntrig, rc_strerror(rc));
        return rc;
    }
    rc_storage_resume(f->reader);
    f->acked = rc_storage_acked(f->reader);
    /* Each trigger's cursor as the last worker left it, held by the trigger itself; then the
     * feed's read cursor starts again (this worker re-reads from the acknowledged position)
     * and the triggers follow it from their own cursors. In this order a worker killed at any
     * step leaves every cursor where it was. */
    uint64_t *pos = calloc(f->ntrig ? f->ntrig : 1, sizeof(*pos));
    if (pos == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < f->ntrig; i++) {
        rc__wtrig_t *t = f->trig[i];
        rc_cursor_load(t->wt->cursor, f->wf->cursor, &t->skip_seq, &pos[i]);
        publish_busy(t, t->skip_seq, pos[i]);
    }
    rc_cursor_store_read(f->wf->cursor, 0, 0);
    for (uint32_t i = 0; i < f->ntrig; i++)
        publish_idle(f->trig[i], f->trig[i]->skip_seq, pos[i]);
    free(pos);
    return 0;
}

/* ringcast.dev/rate-limit of `milli` thousandths of an event per second (0: none): one token
 * every 1e12 / milli ns, a burst of max(1, rate / 10) tokens (a tenth of a second's worth). The
 * bucket starts full. */
static void rate_setup(rc__wtrig_t *t, uint64_t milli)
{
    atomic_store_explicit(&t->st->rate_limit_milli, milli, memory_order_relaxed);
    if (milli == 0)
        return;
    t->rl_interval_ns = (int64_t)(1000000000000ull / milli);
    if (t->rl_interval_ns < 1)
        t->rl_interval_ns = 1;
    int64_t burst = (int64_t)(milli / 10000u);
    t->rl_tau_ns = (burst > 1 ? burst - 1 : 0) * t->rl_interval_ns;
    t->rl_tat = 0;
}

static int setup_trigger(worker_t *w, rc__wtrig_t *t, const rc_worker_trigger_t *wt)
{
    const rc_worker_plan_t *plan = w->plan;
    t->wt = wt;
    t->d = &wt->delivery;
    t->st = wt->stats;
    t->uri = wt->cfg->subscriber_uri;
    t->rep_wake_ns = INT64_MAX;
    int n =
        snprintf(t->lines, sizeof(t->lines), RC__PREFER_LINE "Kn-Namespace: %s\r\n", wt->cfg->ns);
    t->lines_len = n > 0 && (size_t)n < sizeof(t->lines) ? (size_t)n : 0;
    t->max_win = wt->cfg->max_inflight ? wt->cfg->max_inflight : 1;
    rate_setup(t, wt->cfg->rate_milli);
    atomic_store_explicit(&t->st->max_inflight, t->max_win, memory_order_relaxed);
    if (rc__order_setup(t) != 0)
        return -ENOMEM;
    t->lag_limit = wt->lag_policy == RC_LAG_DEAD_LETTER ? wt->lag_bytes : 0;
    t->cesql_base = atomic_load_explicit(&t->st->cesql_errors, memory_order_relaxed);
    atomic_store_explicit(&t->st->inflight, 0, memory_order_relaxed);
    atomic_store_explicit(&t->st->replies_queued, 0, memory_order_relaxed);
    t->replies = &w->replies;
    uint32_t b = wt->broker_idx;
    if (w->prod[b] == NULL) {
        char err[256];
        int rc = rc_storage_attach(plan->brokers[b].store, &w->prod[b], err, sizeof(err));
        if (rc != 0) {
            rc_log_error("worker", "worker %d: %s", plan->index, err);
            return rc;
        }
    }
    t->prod = w->prod[b];
    if (wt->cfg->dapr != NULL) {
        int rc = rc__dapr_setup(t, w->client);
        if (rc != 0)
            rc_log_error("worker", "trigger %s/%s: %s", wt->cfg->ns, wt->cfg->name,
                         rc_strerror(rc));
        return rc;
    }
    char err[256];
    if (wt->cfg->endpoint_count > 0) {
        /* The Service's replicas (docs/delivery.md, "HTTP replicas"): each gets the path of the
         * subscriber's URL ("http://127.0.0.1:PORT/path?query"). */
        const char *path = strchr(t->uri + sizeof("http://") - 1, '/');
        const char *paths[1] = {path != NULL ? path : "/"};
        int rc = rc__replicas_init(t, w->client, (const char *const *)wt->cfg->endpoints,
                                   wt->cfg->endpoint_count, 0, paths, 1);
        if (rc != 0)
            return rc;
    } else if (rc_http_client_endpoint(w->client, t->uri, &t->ep, err, sizeof(err)) != 0) {
        rc_log_error("worker", "trigger %s/%s: subscriber %s: %s (attempts fail)", wt->cfg->ns,
                     wt->cfg->name, t->uri, err);
    }
    if (t->d->dead_letter_uri[0] != '\0' &&
        rc_http_client_endpoint(w->client, t->d->dead_letter_uri, &t->dlq, err, sizeof(err)) != 0)
        rc_log_error("worker", "trigger %s/%s: dead-letter sink %s: %s", wt->cfg->ns, wt->cfg->name,
                     t->d->dead_letter_uri, err);
    return 0;
}

static int setup(worker_t *w, const rc_worker_plan_t *plan)
{
    w->plan = plan;
    size_t nt = 0, nf = 0;
    for (size_t i = 0; i < plan->ntriggers; i++)
        nt += plan->triggers[i].worker == plan->index;
    for (size_t i = 0; i < plan->nfeeds; i++)
        nf += plan->feeds[i].worker == plan->index;
    w->prod = calloc(plan->nbrokers ? plan->nbrokers : 1, sizeof(*w->prod));
    w->sync_failed = calloc(plan->nbrokers ? plan->nbrokers : 1, sizeof(*w->sync_failed));
    w->t = calloc(nt ? nt : 1, sizeof(*w->t));
    w->active = calloc(nt ? nt : 1, sizeof(*w->active));
    w->lagging = calloc(nt ? nt : 1, sizeof(*w->lagging));
    w->f = calloc(nf ? nf : 1, sizeof(*w->f));
    rc__wfeed_t **fmap = calloc(plan->nfeeds ? plan->nfeeds : 1, sizeof(*fmap));
    int rc = -ENOMEM;
    if (w->prod == NULL || w->sync_failed == NULL || w->t == NULL || w->active == NULL ||
        w->lagging == NULL || w->f == NULL || fmap == NULL)
        goto out;
    for (size_t i = 0; i < plan->nfeeds; i++) {
        if (plan->feeds[i].worker != plan->index)
            continue;
        rc__wfeed_t *f = &w->f[w->nf++];
        f->wf = &plan->feeds[i];
        f->reader = plan->feeds[i].reader;
        fmap[i] = f;
    }
    rc = rc_http_client_create(NULL, &w->client);
    if (rc != 0) {
        rc_log_error("worker", "worker %d: cannot create the HTTP client: %s", plan->index,
                     rc_strerror(rc));
        goto out;
    }
    rc = rc__replies_init(&w->replies, plan->nbrokers, w->client);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < plan->ntriggers; i++) {
        const rc_worker_trigger_t *wt = &plan->triggers[i];
        if (wt->worker != plan->index)
            continue;
        rc__wtrig_t *t = &w->t[w->nt++];
        t->feed = wt->feed < plan->nfeeds ? fmap[wt->feed] : NULL;
        if (t->feed == NULL) {
            rc_log_error("worker", "worker %d: trigger %s/%s has no feed", plan->index, wt->cfg->ns,
                         wt->cfg->name);
            rc = -EINVAL;
            goto out;
        }
        t->route_idx = t->feed->ntrig++;
        rc = setup_trigger(w, t, wt);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < w->nf; i++) {
        rc__wfeed_t *f = &w->f[i];
        f->trig = calloc(f->ntrig ? f->ntrig : 1, sizeof(*f->trig));
        if (f->trig == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < w->nt; i++)
        w->t[i].feed->trig[w->t[i].route_idx] = &w->t[i];
    for (size_t i = 0; i < w->nf; i++) {
        rc = setup_feed(w, &w->f[i]);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    free(fmap);
    return rc;
}

static void teardown(worker_t *w)
{
    rc_http_client_destroy(w->client); /* cancels what is left; callbacks see rc__worker_stop */
    /* Replies still queued are lost with this process: counted and logged. */
    rc__replies_close(&w->replies);
    for (size_t i = 0; w->t != NULL && i < w->nt; i++)
        rc__reply_log_flush(&w->t[i], rc__now_ns(), 1);
    if (!w->fatal && w->sync_failed != NULL) {
        sync_replies(w);
        for (size_t i = 0; i < w->nactive; i++) {
            if (!w->sync_failed[w->active[i]->wt->broker_idx])
                advance(w->active[i]);
        }
        ack_feeds(w);
        sync_cesql_errors(w);
    }
    for (size_t i = 0; w->t != NULL && i < w->nt; i++) {
        rc__wtrig_t *t = &w->t[i];
        rc__lag_log(t, rc__now_ns(), 0, 1);
        rc__lag_close(t);
        rc__drop_log_flush(t, rc__now_ns(), 1);
        rc__dapr_log_flush(t, rc__now_ns(), 1);
        rc__dapr_close(t);
        rc__order_close(t);
        for (uint32_t j = 0; j < t->qlen; j++)
            rc__wevent_release(ref_at(t, j)->ev, &t->feed->free_ev);
        for (uint32_t j = 0; j < t->nwin; j++) {
            rc__wentry_t *e = ref_at(t, j)->e;
            e->next_free = t->free_e;
            t->free_e = e;
        }
        while (t->free_e != NULL) {
            rc__wentry_t *e = t->free_e;
            t->free_e = e->next_free;
            free(e->hdr);
            free(e->body);
            free(e->errdata);
            free(e->rec);
            free(e->own.bin);
            free(e->own.json);
            free(e);
        }
        free(t->q);
    }
    for (size_t i = 0; w->f != NULL && i < w->nf; i++) {
        rc_route_destroy(w->f[i].route);
        event_free_all(w->f[i].free_ev);
        free(w->f[i].trig);
        free(w->f[i].match);
    }
    for (size_t b = 0; w->prod != NULL && b < w->plan->nbrokers; b++)
        rc_storage_close(w->prod[b]);
    free(w->prod);
    free(w->sync_failed);
    free(w->t);
    free(w->f);
    free(w->active);
    free(w->lagging);
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* The rate limit (docs/delivery.md, "Rate limit"): whether an attempt to the subscriber may go
 * at `now`. When it may not, *next_due is lowered to when it may (the loop sleeps until then). */
static int rate_allows(const rc__wtrig_t *t, int64_t now, int64_t *next_due)
{
    int64_t at = t->rl_tat - t->rl_tau_ns;
    if (at <= now)
        return 1;
    if (at < *next_due)
        *next_due = at;
    return 0;
}

/* An attempt to the subscriber went at `now`: it took a token. */
static void rate_take(rc__wtrig_t *t, int64_t now)
{
    t->rl_tat = (t->rl_tat > now ? t->rl_tat : now) + t->rl_interval_ns;
}

/* Counts the time `t` was throttled up to this turn (`now`), and whether it is from now on. */
static void rate_account(rc__wtrig_t *t, int64_t now, int throttled)
{
    if (t->rl_since != 0 && now > t->rl_since)
        rc_metric_add(&t->st->throttled_ns, (uint64_t)(now - t->rl_since));
    t->rl_since = throttled ? now : 0;
}

/* Sends due attempts; returns how many went and lowers *next_due to the earliest pending. When
 * no replica of the trigger can take one, nothing more of it can go before a response (which
 * wakes the loop) or the end of a replica's skip (rep_wake_ns), so the scan stops there. With a
 * rate limit, an attempt to the subscriber (first or retry) takes a token; once they are out,
 * the rest of the window's attempts to the subscriber wait for the next one (dead-letter
 * attempts do not count). An event's first attempt ends its queue wait (observed). */
static int run_timers(worker_t *w, rc__wtrig_t *t, int64_t now, int64_t *next_due)
{
    /* Paused by an operator: nothing new is sent (retries and dead-letter attempts wait too);
     * attempts under way finish, events wait in the window and the ring. The loop's longest
     * sleep (MAX_SLEEP_MS) bounds how late a resume is seen. */
    if (rc_worker_stats_paused(t->st))
        return 0;
    if (t->bulk != NULL)
        return rc__bulk_run(w->client, t, now, next_due); /* its events go in batches */
    int n = 0, throttled = 0;
    for (uint32_t i = 0; i < t->nwin; i++) {
        /* Ordered: the window is wider than max-inflight (held keys wait in it); once that
         * many are out, a response wakes the loop. */
        if (t->order != NULL && !rc__order_may_send(t))
            break;
        rc__wentry_t *e = ref_at(t, i)->e;
        if (e->state != RC__E_WAITING)
            continue;
        if (e->due_ns <= now) {
            int limited = t->rl_interval_ns != 0 && !e->to_dlq;
            if (limited && (throttled || !rate_allows(t, now, next_due))) {
                throttled = 1;
                continue; /* dead-letter attempts behind it may still go */
            }
            if (rc__worker_send(w->client, e)) {
                if (limited)
                    rate_take(t, now);
                if (!e->started) {
                    e->started = 1;
                    rc_worker_stats_observe_wait(t->st, now - e->ev->queued_ns);
                }
                n++;
                continue;
            }
            if (t->rep_wake_ns < *next_due)
                *next_due = t->rep_wake_ns;
            break;
        } else if (e->due_ns < *next_due) {
            *next_due = e->due_ns;
        }
    }
    if (t->rl_interval_ns != 0)
        rate_account(t, now, throttled);
    return n;
}

/* Finished events leave the queues, triggers past their lag limit give up their oldest ones
 * (shed), lagged events go on to their dead-letter sinks; triggers whose queue emptied leave the
 * active list. */
static void advance_all(worker_t *w)
{
    sync_replies(w);
    int64_t now = rc__now_ns();
    for (size_t i = 0; i < w->nlagging;) {
        rc__wtrig_t *t = w->lagging[i];
        rc__lag_run(w->client, t, now);
        if (t->lag_n > 0) {
            i++;
            continue;
        }
        t->in_lagging = 0;
        w->lagging[i] = w->lagging[--w->nlagging];
    }
    for (size_t i = 0; i < w->nactive;) {
        rc__wtrig_t *t = w->active[i];
        if (w->sync_failed[t->wt->broker_idx]) {
            i++;
            continue;
        }
        if (shed(t, now) > 0 && t->lag_n > 0 && !t->in_lagging) {
            t->in_lagging = 1;
            w->lagging[w->nlagging++] = t;
        }
        if (advance(t)) {
            i++;
            continue;
        }
        t->active = 0;
        t->rl_since = 0; /* nothing left to throttle (shed gave it all up) */
        w->active[i] = w->active[--w->nactive];
    }
}

/* Replay requests of the admin API (replay.c): a replayed event joins the list the lagged
 * events take (advance_all sends it). Dapr subscriptions have none (the API refuses them). */
static void take_replays(worker_t *w)
{
    /* A stopping worker leaves a request in the slot: the next worker takes it. */
    for (size_t i = 0; i < w->nt && !rc__worker_stop; i++) {
        rc__wtrig_t *t = &w->t[i];
        if (t->dapr == NULL && rc__replay_poll(t) && !t->in_lagging) {
            t->in_lagging = 1;
            w->lagging[w->nlagging++] = t;
        }
    }
}

/* ---- sleeping -------------------------------------------------------------------------------- */

static void wake_client(void *client)
{
    (void)rc_http_client_wake(client);
}

/* Arms feed i to end the coming sleep when an event arrives. The client's own wait sleeps on
 * the ring's futex word where it can (io_uring on Linux 6.7 and later); otherwise (epoll, older
 * kernels, a store without such a word) the feed gets a watch, a thread that sleeps on the ring
 * and wakes the client, for the rest of the worker's life. Returns 1 when an event is there
 * already (do not sleep), 0 when the feed is armed, -1 when it cannot be this time (then the
 * sleep is cut to 1 ms, the way the loop once always polled). */
static int arm_feed(worker_t *w, size_t i)
{
    feed_wake_t *fw = &w->wake[i];
    if (fw->watch == NULL && !fw->lost) {
        const uint32_t *word;
        uint32_t val;
        int rc = rc_storage_prepare_sleep(w->f[i].reader, &word, &val);
        if (rc == 1)
            return 1;
        if (rc == 0)
            rc = rc_http_client_wake_on_futex(w->client, word, val);
        if (rc == 0)
            return 0;
        if (rc == -EAGAIN)
            return -1; /* no submission entry free: the next sleep tries again */
        rc = rc_storage_watch_start(w->f[i].reader, wake_client, w->client, &fw->watch);
        if (rc != 0) {
            fw->lost = 1;
            rc_log_warn("worker", "worker %d: cannot watch a feed (%s): looking every 1 ms",
                        w->plan->index, rc_strerror(rc));
            return -1;
        }
    }
    if (fw->lost)
        return -1;
    rc_storage_watch_arm(fw->watch);
    return 0;
}

/* Before the client goes: a watch fires into it. */
static void stop_watches(worker_t *w)
{
    for (size_t i = 0; w->wake != NULL && i < w->nf; i++)
        rc_storage_watch_stop(w->wake[i].watch);
    free(w->wake);
    w->wake = NULL;
}

/* Nothing moved: sleeps in the client for up to wait_ns. Responses, attempt deadlines and
 * signals end it there, and so does an event in any feed (each armed at the position where it
 * was just found empty). A stopping worker reads nothing new, so it arms none. */
static void sleep_until_work(worker_t *w, int64_t wait_ns)
{
    int64_t ms = (wait_ns + 999999) / 1000000; /* a retry a little late, not a spin before it */
    for (size_t i = 0; !rc__worker_stop && i < w->nf; i++) {
        int rc = arm_feed(w, i);
        if (rc > 0)
            return;
        if (rc < 0 && ms > 1)
            ms = 1;
    }
    rc_http_client_run(w->client, (int)ms);
}

int rc_worker_run(const rc_worker_plan_t *plan)
{
    child_hygiene(plan);
    worker_t w;
    memset(&w, 0, sizeof(w));
    int rc = setup(&w, plan);
    if (rc != 0) {
        w.fatal = 1; /* nothing was set up far enough to acknowledge */
        teardown(&w);
        return 1;
    }
    rc_log_info("worker", "worker %d (pid %d): %zu trigger%s on %zu feed%s, %s", plan->index,
                (int)getpid(), w.nt, w.nt == 1 ? "" : "s", w.nf, w.nf == 1 ? "" : "s",
                rc_http_client_backend(w.client) == RC_HTTP_BACKEND_URING ? "io_uring" : "epoll");
    w.wake = calloc(w.nf ? w.nf : 1, sizeof(*w.wake));
    if (w.wake == NULL) {
        teardown(&w);
        return 1;
    }
    int idle = 0;
    uint64_t drain_until = 0;
    int64_t next_sync = rc__now_ns() + CESQL_SYNC_NS;
    int64_t next_parent_check = 0;
    while (!w.fatal) {
        if (rc__worker_stop && drain_until == 0) {
            drain_until = rc_now_ns() + (uint64_t)plan->drain_ms * 1000000u;
            rc__replies_stop(&w.replies, rc__now_ns() + (int64_t)plan->drain_ms * 500000);
        }
        int64_t now = rc__now_ns();
        rc_worker_stats_beat(plan->heartbeat, (uint64_t)now); /* the watchdog's */
        int64_t next_due = INT64_MAX;
        int progress = 0;
        for (size_t i = 0; i < w.nactive; i++)
            progress += run_timers(&w, w.active[i], now, &next_due);
        for (size_t i = 0; i < w.nf && !rc__worker_stop; i++)
            progress += intake(&w, &w.f[i]);
        int got = rc_http_client_run(w.client, 0);
        if (got > 0)
            progress += got;
        advance_all(&w);
        if (w.fatal)
            break;
        int freed = ack_feeds(&w);
        progress += rc__replies_run(&w.replies, rc__now_ns(), freed, &next_due);
        if (now >= next_sync) {
            sync_cesql_errors(&w);
            take_replays(&w);
            for (size_t i = 0; i < w.nt; i++) {
                rc__reply_log_flush(&w.t[i], now, 0);
                rc__dapr_log_flush(&w.t[i], now, 0);
                rc__drop_log_flush(&w.t[i], now, 0);
            }
            next_sync = now + CESQL_SYNC_NS;
        }
        uint32_t sending = 0;
        for (size_t i = 0; i < w.nactive; i++)
            sending += w.active[i]->sending;
        if (rc__worker_stop &&
            ((sending == 0 && w.replies.held == 0) || rc_now_ns() >= drain_until))
            break;
        if (now >= next_parent_check) {
            /* PR_SET_PDEATHSIG kills us with the supervisor; this catches one that died before
             * we set it. Once it is gone nothing may move a cursor or an acknowledgement any
             * more (the next broker process takes them over as they are). */
            if (getppid() != plan->supervisor) {
                w.fatal = 1;
                break;
            }
            next_parent_check = now + PPID_CHECK_NS;
        }
        if (progress > 0) {
            idle = 0;
            continue;
        }
        if (++idle < IDLE_SPINS)
            continue;
        /* Until the next retry, periodic job or the end of the drain, whichever comes first. */
        int64_t until = next_due < next_sync ? next_due : next_sync;
        if (drain_until != 0 && (int64_t)drain_until < until)
            until = (int64_t)drain_until;
        int64_t wait_ns = until - rc__now_ns();
        if (wait_ns > (int64_t)MAX_SLEEP_MS * 1000000)
            wait_ns = (int64_t)MAX_SLEEP_MS * 1000000;
        sleep_until_work(&w, wait_ns > 0 ? wait_ns : 0);
    }
    int code = w.fatal ? 1 : 0;
    /* Requests the teardown cancels stay unfinished (the next worker sends them). */
    rc__worker_stop = 1;
    stop_watches(&w);
    teardown(&w);
    rc_log_info("worker", "worker %d (pid %d): stopped", plan->index, (int)getpid());
    return code;
}
