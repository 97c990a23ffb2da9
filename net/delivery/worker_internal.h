/* Inside a worker process (net/delivery/worker.c, worker_attempt.c): a trigger's queue of matched
 * events, its in-flight window entries, the feeds. One thread; nothing here is shared. */
#ifndef RC_NET_WORKER_INTERNAL_H
#define RC_NET_WORKER_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/clock.h"
#include "core/delivery_policy.h"
#include "core/log.h"
#include "core/record.h"
#include "core/route.h"
#include "net/delivery/ordering.h"
#include "net/delivery/reply.h"
#include "net/delivery/worker.h"
#include "net/http/http_client.h"

/* RC__E_ABANDONED: given up for lag while its request was in flight; the client still borrows its
 * buffers and the shared event, so it is freed only when the callback runs. RC__E_HELD: ordered
 * triggers only, waiting for an earlier event of its partition key (ordering.c). */
enum { RC__E_SENDING = 1, RC__E_WAITING = 2, RC__E_DONE = 3, RC__E_ABANDONED = 4, RC__E_HELD = 5 };

typedef struct rc__wtrig_s rc__wtrig_t;
typedef struct rc__dapr_s rc__dapr_t; /* a Dapr subscription's delivery state (dapr_deliver.c) */
typedef struct rc__bulk_s rc__bulk_t; /* its bulkSubscribe batching (dapr_bulk_deliver.c) */

/* The first of a trigger's own header lines; dead-letter requests leave it out. */
#define RC__PREFER_LINE "Prefer: reply\r\n"

/* The header block of a structured-mode request. */
#define RC__JSON_CT_LINE "Content-Type: application/cloudevents+json\r\n"

/* The monotonic clock as the worker's timers keep it (signed: deadlines are compared). */
static inline int64_t rc__now_ns(void)
{
    return (int64_t)rc_now_ns();
}

/** A positive integer from environment variable `name`, or `def` when it is unset (a value that
 *  is not one is logged and `def` used). */
uint64_t rc__env_u64(const char *name, uint64_t def);

/* ---- replies that found the ring full (reply.c) ---------------------------------------------- */

typedef struct rc__reply_s rc__reply_t;

/* Reasons a reply is given up (reply.c): queue_full, timeout, stopping, too_large, error. */
#define RC__REPLY_REASONS 5

/* One broker's replies waiting for ring space, oldest first. */
typedef struct {
    rc__reply_t *head, *tail;
    int64_t next_try_ns; /* when the head is tried again, unless an acknowledgement comes first */
    uint32_t backoff;    /* failed tries of the head in a row */
} rc__reply_fifo_t;

/* A worker's replies that could not be stored at once: per broker a FIFO waiting for ring
 * space, and a list of those given up on their way to a dead-letter sink. Each part holds at
 * most `cap` bytes of replies. docs/delivery.md, "Replies". */
typedef struct {
    rc_http_client_t *client;
    rc__reply_fifo_t *fifo; /* per broker */
    size_t nbrokers;
    rc__reply_t *dlq; /* with the dead-letter sink (waiting for an attempt, or sent) */
    size_t waiting_bytes, dlq_bytes, cap;
    uint32_t held;       /* replies in all lists */
    int64_t max_wait_ns; /* longest wait for ring space */
    int64_t give_up_ns;  /* stopping: from then on waiting replies are given up (0: never) */
    int closing;         /* rc__replies_close: nothing goes to a sink any more */
} rc__replies_t;

/* One routed event, shared by every trigger of the feed that matched it: the record is decoded
 * once when it is routed, and what goes on the wire is built once, on the first attempt that
 * needs it (the binary-mode `ce-*` header block, or the structured-mode body), then reused by
 * every trigger and every retry. Dead-letter attempts add extensions and build their own. It
 * lives until the last trigger holding it is done (refs), then goes back to the worker's free
 * list with its buffers. */
typedef struct rc__wevent_s {
    uint32_t refs;
    uint32_t built;      /* RC__EV_* */
    rc_record_view_t rv; /* into the mapping: valid until the feed acknowledges past it */
    const char *data;    /* its data bytes (set with the first build) */
    size_t data_len;
    char *bin; /* binary mode: the ce-* header lines and Content-Type */
    size_t bin_len, bin_cap;
    char *json; /* structured mode: the body */
    size_t json_len, json_cap;
    int64_t queued_ns; /* when it was routed, queued on its triggers (rc__now_ns of the intake) */
    struct rc__wevent_s *next_free;
} rc__wevent_t;

enum { RC__EV_BIN = 1, RC__EV_JSON = 2 };

/* One replica of a trigger's subscriber: a Dapr app's endpoint (or, later, one of a Knative
 * trigger's HTTP replicas). The replicas of a trigger are competing consumers: each attempt goes
 * to one of them (replica.c, rc__replica_pick). */
typedef struct {
    const char *base;        /* its base URL, for logs */
    rc_http_endpoint_t **ep; /* one per path of the trigger (NULL: unresolvable URL) */
    uint32_t inflight;       /* attempts sent to it and not answered */
    uint32_t cap;            /* most in flight at once; 0: no limit of its own */
    int64_t down_until;      /* skipped until then: it refused a connection; 0: up */
    int64_t backoff_ns;      /* the skip after its next refusal (1 s doubling to 30 s); 0: up */
    rc_replica_stats_t *st;  /* its counters in the stats segment (NULL past RC_STATS_REPLICAS) */
} rc__replica_t;

/* An event in a trigger's in-flight window: the current attempt and its buffers. Entries are
 * allocated when the window first grows that far and reused after (a free list per trigger). */
typedef struct rc__wentry_s {
    rc__wtrig_t *t;
    uint64_t pos, seq;
    rc__wevent_t *ev; /* the event, shared with the other triggers that matched it */
    int state;
    int to_dlq;       /* attempts now go to the dead-letter sink */
    uint32_t retries; /* retries done towards the current destination */
    int64_t due_ns;   /* RC__E_WAITING: when the next attempt goes */
    uint64_t sent_ns; /* start of the current attempt */
    int last_result;  /* of the subscriber, for knativeerrorcode */
    char *errdata;    /* knativeerrordata (base64 of the subscriber's last body) */
    char *hdr;        /* dead-letter attempts only: their own headers or body (Dapr: the dead
                       * letter's JSON) */
    size_t hdr_len, hdr_cap;
    char *body; /* Dapr rawPayload: the synthesised request body, built once per entry */
    size_t body_cap;
    rc__replica_t *rep; /* the replica of the attempt in flight (triggers with replicas) */
    int prepared;       /* Dapr: routed and its expiration read (fill_window clears it) */
    int32_t path;       /* Dapr: the index of its path in the trigger's paths */
    int64_t expires_ns; /* Dapr: its `expiration` (wall clock, ns); 0: none */
    int64_t flush_ns;   /* Dapr bulk: once ready, it goes by then even in a batch not full */
    struct iovec iov;
    int lagged; /* given up for lag, on its way to the dead-letter sink: `ev` is `own` */
    int replay; /* a replayed dead letter (replay.c), on its way to the subscriber: `ev` is
                 * `own`; its end-to-end latency is not observed (it arrived long ago) */
    void *rec;  /* lagged: its copy of the record (`own.rv` points into it) */
    size_t rec_cap;
    rc__wevent_t own; /* lagged: the event decoded from `rec`, held by this entry alone */
    int started;      /* its first attempt went (its queue wait was observed) */
    struct rc__wentry_s *next_free;
    uint32_t last_retries;      /* the subscriber's retries before the dead-letter sink (log) */
    rc__okey_t *okey;           /* ordered triggers: its partition key's chain, else NULL */
    struct rc__wentry_s *onext; /* the next event of that key in the window */
} rc__wentry_t;

/* A matched event in a trigger's queue. The queue is in ring order; its first `nwin` events are
 * the window (each with an entry), the rest wait for room (pending, no copy of the record). */
typedef struct {
    uint64_t pos, seq;
    rc__wevent_t *ev;
    rc__wentry_t *e;
} rc__wref_t;

typedef struct rc__wfeed_s rc__wfeed_t;

struct rc__wtrig_s {
    const rc_worker_trigger_t *wt;
    const rc_delivery_t *d;
    rc__wfeed_t *feed;
    rc_storage_t *prod; /* this worker's handle of the broker store, for replies */
    rc_trigger_stats_t *st;
    rc_http_endpoint_t *ep, *dlq;
    const char *uri;
    rc__replica_t *rep; /* its replicas; nrep 0: every attempt goes to `ep` */
    uint32_t nrep;
    uint32_t rr;         /* where the next search for the least busy replica starts */
    int64_t rep_wake_ns; /* no replica could take an attempt: when a skipped one may again */
    rc__dapr_t *dapr;    /* a Dapr subscription's trigger (cfg->dapr), else NULL */
    rc__bulk_t *bulk;    /* its batches when it has bulkSubscribe enabled, else NULL */
    rc__order_t *order;  /* ringcast.dev/ordering: partitionkey, else NULL (ordering.c) */
    char lines[RC_CONFIG_NAME_MAX + 48]; /* its own header lines: Prefer, Kn-Namespace */
    size_t lines_len;
    rc__wref_t *q;
    uint32_t qcap, qhead, qlen; /* power-of-two ring of refs, grown on demand */
    uint32_t nwin, max_win;
    rc__wentry_t *free_e;
    uint32_t sending;       /* entries with a request outstanding */
    uint64_t skip_seq;      /* events below it were finished by an earlier worker */
    uint64_t cesql_base;    /* the slot's cesql_errors when this worker started */
    uint32_t route_idx;     /* its index in the feed's route program */
    int dirty;              /* the window front may have finished */
    int active;             /* in the worker's active list (queue not empty) */
    rc__replies_t *replies; /* the worker's reply queue */
    uint32_t replies_held;  /* this trigger's replies in it (the replies_queued gauge) */
    int64_t rlog_since;     /* start of the current window of reply-failure logs */
    uint32_t rlog_lines;    /* failures logged one by one in it */
    uint32_t rlog_folded[RC__REPLY_REASONS]; /* further replies not stored, for the summary */
    uint32_t rlog_sink_folded; /* further replies the dead-letter sink failed, likewise */
    uint64_t lag_limit;        /* bytes its queue front may be behind the feed (policy not block) */
    uint32_t abandoned;        /* entries given up for lag whose request is still in flight */
    rc__wentry_t *lag_head, *lag_tail; /* lagged events on their way to the dead-letter sink */
    uint32_t lag_n;
    int in_lagging;        /* in the worker's list of triggers with lagged events */
    int64_t lag_log_ns;    /* when the last lag line was written */
    uint64_t lag_log_n;    /* events given up since then */
    uint64_t lag_log_drop; /* of them, dropped (no sink, over the copy budget) */
    /* The rate limit of its lines about events dropped or dead-lettered (rc__drop_log). */
    rc_log_limit_t drop_log;
    /* ringcast.dev/rate-limit, a token bucket kept as its theoretical arrival time (GCRA):
     * an attempt to the subscriber may go at `now` when rl_tat - rl_tau_ns <= now, and moves
     * rl_tat to max(rl_tat, now) + rl_interval_ns. rl_tau_ns is (burst - 1) intervals. */
    int64_t rl_interval_ns; /* 0: no rate limit */
    int64_t rl_tau_ns;
    int64_t rl_tat;
    int64_t rl_since; /* throttled since that loop turn (0: not throttled) */
};

struct rc__wfeed_s {
    const rc_worker_feed_t *wf;
    rc_storage_reader_t *reader;
    rc_route_t *route;
    rc__wtrig_t **trig; /* route program index -> trigger */
    uint32_t ntrig;
    uint32_t *match;             /* ntrig entries */
    uint64_t read_seq, read_pos; /* after the last event routed (published in wf->stats) */
    rc__wevent_t *free_ev;       /* events no trigger holds any more, for reuse */
    uint64_t acked, ack_to;
};

/** The `i`th event of `t`'s queue (the first `nwin` are the window). */
static inline rc__wref_t *rc__wref_at(const rc__wtrig_t *t, uint32_t i)
{
    return &t->q[(t->qhead + i) & (t->qcap - 1)];
}

/** Set by SIGTERM: the worker drains and stops. */
extern volatile sig_atomic_t rc__worker_stop;

/** Gives up one trigger's hold on `ev`; the last one returns it to the free list `*free_list`. */
static inline void rc__wevent_release(rc__wevent_t *ev, rc__wevent_t **free_list)
{
    if (--ev->refs == 0) {
        ev->next_free = *free_list;
        *free_list = ev;
    }
}

/** How long to wait before retry number `retries` + 1 after `result` (`resp` when there was
 *  one: its Retry-After counts). */
int64_t rc__retry_wait_ns(const rc_delivery_t *d, uint32_t retries, int result,
                          const rc_http_response_t *resp);

/** Sets the trigger's own header lines as `req`'s second header block: all of them towards the
 *  subscriber, all but Prefer towards a dead-letter sink (`to_sink`). */
static inline void rc__trigger_lines(const rc__wtrig_t *t, int to_sink, rc_http_request_t *req)
{
    size_t skip =
        to_sink && t->lines_len >= sizeof(RC__PREFER_LINE) - 1 ? sizeof(RC__PREFER_LINE) - 1 : 0;
    req->more_headers = t->lines + skip;
    req->more_headers_len = t->lines_len - skip;
}

/** Starts the current attempt of `e` (its state must be RC__E_WAITING); a failure to start is
 *  handled like a failed attempt. The outcome moves `e` to RC__E_WAITING (retry) or RC__E_DONE
 *  (and sets e->t->dirty). Returns 1, or 0 when the trigger has replicas and none can take the
 *  attempt now (`e` is unchanged; e->t->rep_wake_ns says when a skipped replica may again, and
 *  a response frees room before that). */
int rc__worker_send(rc_http_client_t *c, rc__wentry_t *e);

/** The HTTP client's callback of every attempt (`arg` is the entry). */
void rc__on_response(int result, const rc_http_response_t *resp, void *arg);

/** The event is finished for its trigger (RC__E_DONE): it leaves the queue front when its turn
 *  comes (worker.c, advance). */
/* An event delivered (2xx): its end-to-end latency, from the knativearrivaltime the broker
 * stamped when it stored the event (an event without a readable one is not counted). */
void rc__observe_e2e(rc__wentry_t *e);

static inline void rc__entry_finish(rc__wentry_t *e)
{
    e->state = RC__E_DONE;
    e->t->dirty = 1;
    if (e->okey != NULL)
        rc__order_release(e); /* the next event of its key may go */
}

/** The request of `e`, given up for lag while it was in flight (RC__E_ABANDONED, worker.c shed),
 *  is over: the room it took in the window and its hold on the shared event go back. */
static inline void rc__entry_abandoned_done(rc__wentry_t *e)
{
    rc__wtrig_t *t = e->t;
    if (e->okey != NULL)
        rc__order_release(e); /* its key was held until the request was over */
    t->abandoned--;
    rc__wevent_release(e->ev, &t->feed->free_ev);
    e->next_free = t->free_e;
    t->free_e = e;
    t->dirty = 1;
}

/** Builds what every trigger sends for `ev` in binary (json 0) or structured (json 1) mode, once
 *  (RC__EV_BIN, RC__EV_JSON). Returns 0 or the writer's code. */
int rc__event_build(rc__wevent_t *ev, int json);

/* ---- replicas (replica.c) ---------------------------------------------------------------------
 */

/** Gives `t` `n` replicas at the base URLs `bases` (borrowed for the worker's life), each with
 *  an endpoint per path (`paths`, `npaths`; a path "" is the base URL itself) and at most `cap`
 *  attempts in flight (0: no limit of its own). An URL that cannot be resolved is logged and
 *  its attempts fail as a transport error. Returns 0 or -ENOMEM. */
int rc__replicas_init(rc__wtrig_t *t, rc_http_client_t *c, const char *const *bases, size_t n,
                      uint32_t cap, const char *const *paths, size_t npaths);

/** Frees `t`'s replicas (none: a no-op). */
void rc__replicas_close(rc__wtrig_t *t);

/** The replica for `t`'s next attempt at `now`: among those up with room, the one with the
 *  fewest in flight (ties: round robin); when every replica is skipped, the one whose skip ends
 *  first (its refusal then counts as an ordinary failed attempt). NULL when the replicas that
 *  are up are all full (t->rep_wake_ns: when a skipped one with room comes back). */
rc__replica_t *rc__replica_pick(rc__wtrig_t *t, int64_t now);

/** One more request (`delta` 1) or one less (-1) in flight at `r`, with its gauge. */
void rc__replica_hold(rc__replica_t *r, int delta);

/** Attempt `e` goes to replica `r`: counted in flight there until rc__replica_release. */
void rc__replica_start(rc__wentry_t *e, rc__replica_t *r);

/** The attempt of `e` is over (answered, failed or cancelled): its replica, if it had one, has
 *  one less in flight. Returns that replica (NULL: none). */
rc__replica_t *rc__replica_release(rc__wentry_t *e);

/** Counts `n` events that `r` accepted (`ok`) or whose attempt failed there. */
void rc__replica_count_n(rc__replica_t *r, int ok, uint64_t n);

/** Counts an attempt that `r` answered with success (`ok`) or that failed there. */
static inline void rc__replica_count(rc__replica_t *r, int ok)
{
    rc__replica_count_n(r, ok, 1);
}

/** Whether `result` says the replica refused the connection (it is skipped for a while). */
int rc__replica_refusal(int result);

/** Replica `r` of `t` refused a connection at `now`: skipped for its back-off (1 s, doubling to
 *  30 s) unless it already is. Returns 1 when another replica is up, so the attempt may go
 *  there at once without counting as a retry. */
int rc__replica_refused(rc__wtrig_t *t, rc__replica_t *r, int64_t now, int result);

/** Replica `r` answered: it is up again (its back-off starts over). */
void rc__replica_answered(rc__wtrig_t *t, rc__replica_t *r);

/* ---- Dapr subscriptions (dapr_deliver.c) ------------------------------------------------------
 */

/** Sets up `t`, the trigger of Dapr subscription t->wt->cfg->dapr: its replicas (the app's
 *  endpoints, maxConcurrency each) with one endpoint per routing path, and its delivery block
 *  (the trigger's effective one, without a dead-letter sink: Dapr dead letters go to a topic).
 *  Returns 0 or -ENOMEM. */
int rc__dapr_setup(rc__wtrig_t *t, rc_http_client_t *c);

/** Frees what rc__dapr_setup made (nothing: a no-op). */
void rc__dapr_close(rc__wtrig_t *t);

/** rc__worker_send for a Dapr trigger: on the first attempt the event is routed and its
 *  expiration read; an unrouted or expired event is finished (dead-lettered or dropped) without
 *  a request; else a POST of the structured event to the chosen replica's path. Returns as
 *  rc__worker_send. */
int rc__dapr_send(rc_http_client_t *c, rc__wentry_t *e);

/** The outcome of a Dapr attempt (`rep`: the replica it went to, already released):
 *  CONTRACTS.md "Delivery to an app". */
void rc__dapr_outcome(rc__wentry_t *e, int result, const rc_http_response_t *resp,
                      rc__replica_t *rep);

/** Before each attempt of a Dapr event: routes it and reads its expiration the first time, then
 *  finishes it without a request when it is expired or has no path (dead-lettered or dropped,
 *  counted). Returns 1 when it was finished, 0 when it is to be sent (e->path is set). */
int rc__dapr_admit(rc__wentry_t *e);

/** The request body of Dapr event `e` into *iov: the structured event every trigger shares, or
 *  the rawPayload event built into e->body. On failure the event is finished, dropped, counted
 *  and logged; returns 1 then, else 0. */
int rc__dapr_body(rc__wentry_t *e, struct iovec *iov);

/** Applies outcome `o` of an attempt of `e` at `now` (`result` and `resp` as the client gave
 *  them, `rep` the replica it went to or NULL; replica counters are the caller's): delivered,
 *  retried after its backoff (RC__E_WAITING, e->due_ns), or finished undelivered (failed after
 *  the last retry, DROP, 404) to the dead-letter topic or dropped. */
void rc__dapr_apply(rc__wentry_t *e, rc_dapr_outcome_t o, int result,
                    const rc_http_response_t *resp, const rc__replica_t *rep, int64_t now);

/* ---- bulkSubscribe (dapr_bulk_deliver.c) ------------------------------------------------------
 */

/** Sets up the batching of `t`, a Dapr trigger whose subscription has bulkSubscribe enabled
 *  (after its replicas; `npaths` routing paths): t->bulk, and a window (t->max_win) of at
 *  least two batches per replica. Returns 0 or -ENOMEM. */
int rc__bulk_setup(rc__wtrig_t *t, size_t npaths);

/** Writes `t`'s summary of rate-limited bulk answer logs once its window is over (`force`:
 *  now). Not a bulk trigger: nothing. */
void rc__bulk_log_flush(rc__wtrig_t *t, int64_t now, int force);

/** Frees t->bulk (NULL: a no-op). Call after the client was destroyed (its callbacks ran). */
void rc__bulk_close(rc__wtrig_t *t);

/** run_timers for a bulk trigger at `now`: gathers the window's ready events per path and sends
 *  each batch that is full, or whose oldest event waited maxAwaitDurationMs, or that holds a
 *  retry that is due, to the least busy replica; lowers *next_due to when the next batch or
 *  retry is due (or a skipped replica comes back). Returns how many events moved. */
int rc__bulk_run(rc_http_client_t *c, rc__wtrig_t *t, int64_t now, int64_t *next_due);

/** Writes `t`'s summary of rate-limited Dapr outcome logs once its window is over (`force`:
 *  now). Not a Dapr trigger: nothing. */
void rc__dapr_log_flush(rc__wtrig_t *t, int64_t now, int force);

/** Writes `ev` into *buf (grown with realloc as needed, `*cap` bytes): binary-mode header lines
 *  (json 0) or a structured body (json 1), without knativebrokerttl; `*len` gets the length.
 *  Returns 0, -ENOMEM, -EINVAL (the writers' codes). */
int rc__write_event(const rc_event_t *ev, int json, char **buf, size_t *cap, size_t *len);

/** Sets up an empty reply queue for `nbrokers` brokers whose dead letters go through `client`.
 *  Limits: RINGCAST_REPLY_QUEUE_BYTES (default 8 MiB per part) and RINGCAST_REPLY_MAX_WAIT_MS
 *  (default 30000) from the environment. Returns 0 or -ENOMEM. */
int rc__replies_init(rc__replies_t *q, size_t nbrokers, rc_http_client_t *client);

/** Gives up every reply still held: each waiting one is counted failed and dropped, each on its
 *  way to a sink dropped, all logged. Call after the client was destroyed (its callbacks ran).
 *  A zeroed `q` is a no-op. */
void rc__replies_close(rc__replies_t *q);

/** A reply of `t`'s subscriber to the event `event_id` (borrowed for the call): stored at once,
 *  or queued when the ring is full, or given up (dead-letter sink or dropped), counted and
 *  logged. The delivery it came with succeeded whatever happens to it. */
void rc__reply_take(rc__wtrig_t *t, const rc_reply_t *r, rc_str_t event_id);

/** A reply that cannot be stored nor dead-lettered at all (its body was cut at the response
 *  limit): counted failed and dropped, logged (reason too_large). */
void rc__reply_lost(rc__wtrig_t *t, const rc_reply_t *r, rc_str_t event_id);

/** One pass over the queue at `now`: gives up replies past the limits, tries to store waiting
 *  ones oldest first (at once when `freed`: an acknowledgement just released ring space, else
 *  after their backoff), sends due dead-letter attempts. Lowers *next_due to the next time
 *  something is due. Returns how many replies moved. */
int rc__replies_run(rc__replies_t *q, int64_t now, int freed, int64_t *next_due);

/** The worker is stopping: waiting replies keep trying for ring space until `give_up_ns`, then
 *  go to their dead-letter sinks (reason `stopping`). */
void rc__replies_stop(rc__replies_t *q, int64_t give_up_ns);

/** `ev`, just given up for lag by `t` (counted lagged by the caller): copied out of the ring into
 *  a new entry for the dead-letter sink (knativeerrorcode `lagged`), or, without a sink, past the
 *  worker's copy budget (RINGCAST_LAG_DLQ_BYTES, default 16 MiB) or out of memory, dropped and
 *  counted (lagged_dropped). Does not touch `ev`'s references. */
void rc__lag_keep(rc__wtrig_t *t, const rc__wevent_t *ev, uint64_t pos, uint64_t seq);

/** A replay (the admin API's .../replay): record rec[0..size) (at `pos`, `seq`; copied) goes
 *  to `t`'s subscriber again, alone, with the trigger's retries and dead-letter sink, through
 *  the same list as the lagged events (rc__lag_run), within the same copy budget. Returns 0,
 *  or -ENOMEM with `*why`. */
int rc__replay_keep(rc__wtrig_t *t, const void *rec, size_t size, uint64_t pos, uint64_t seq,
                    const char **why);

/** Takes `t`'s replay request from its stats slot, if there is one: reads the event at the
 *  requested position again (lossy: it may have been overwritten), queues it with
 *  rc__replay_keep and answers the request. Returns 1 when an event was queued (the caller
 *  makes sure rc__lag_run runs for `t`), else 0. replay.c. */
int rc__replay_poll(rc__wtrig_t *t);

/** Sends the due dead-letter attempts of `t`'s lagged events (at most its max-inflight at once)
 *  and frees the finished ones. Returns how many moved. */
int rc__lag_run(rc_http_client_t *c, rc__wtrig_t *t, int64_t now);

/** Writes `t`'s lag line (events given up since the last one) once per 10 s (`force`: now). */
void rc__lag_log(rc__wtrig_t *t, int64_t now, uint64_t behind, int force);

/** Logs one line for an event of `t` that was dropped (`dead_lettered` 0) or handed to the
 *  dead-letter sink (1): its id, source and type from `rv`, `reason`, the subscriber's last
 *  `result` (HTTP status, negative error, 0: none) after `retries` retries, and the dead-letter
 *  sink's last `sink_result` (0: no attempt there). At most RC__DROP_LOG_LINES a second per
 *  trigger; the rest are counted for one summary line (rc__drop_log_flush). */
void rc__drop_log(rc__wtrig_t *t, const rc_record_view_t *rv, int dead_lettered, const char *reason,
                  int result, uint32_t retries, int sink_result);

#define RC__DROP_LOG_LINES 10

/** Writes `t`'s summary line of `held` rc__drop_log lines held back over `window_ns`. */
void rc__drop_log_flush_held(rc__wtrig_t *t, uint64_t held, int64_t window_ns);

/** Writes `t`'s "suppressed" summary line once the window of rc__drop_log is over (`force`:
 *  now), when lines were held back in it. */
void rc__drop_log_flush(rc__wtrig_t *t, int64_t now, int force);

/** Frees `t`'s lagged events still held (the worker stops: each unfinished one is counted
 *  lagged_dropped). Call after the client was destroyed. */
void rc__lag_close(rc__wtrig_t *t);

/** Writes `t`'s summary lines of rate-limited reply-failure logs, if it has any, once its window
 *  is over (`force`: now). */
void rc__reply_log_flush(rc__wtrig_t *t, int64_t now, int force);

#endif
