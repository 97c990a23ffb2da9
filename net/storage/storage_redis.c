/* The Redis Streams back end (docs/scaleout.md, first increment). A broker's events are
 * XADDed to its partition streams "ringcast:{<ns>/<broker>/<p>}" (one hash tag per partition,
 * so each stream is one cluster slot and partitions spread over slots), each entry one field
 * "r" holding the ring record (core/record.h bytes) that every reader already decodes. Readers
 * do not read Redis: the mirror (storage_redis_mirror.c) copies the streams into the broker's
 * shm ring, the same ring a memory store would have, and every reading operation of this table
 * is that ring's; the triggers' consumer groups are the exception (group_open,
 * storage_redis_group.c).
 *
 * Appends in the broker process: claim hands out room in a staging buffer, commit queues it
 * for the writer thread, which owns a hiredis async connection on its own libuv loop and sends
 * every XADD queued since its last turn in one go (pipelined: hiredis writes them together),
 * then WAIT when replicas are asked for. Replies come back in order, so tickets complete in
 * order; a commit with RC_STORAGE_COMMIT_F_NOWAIT returns its ticket at once and the ingress
 * holds its answer (net/held.c) until rc_storage_durable_wait reports Redis' answer: 0, or
 * RC_ESTORE_UNAVAILABLE (connection down or an error reply) / RC_ESTORE_UNREPLICATED (WAIT
 * counted fewer replicas), which the ingress answers 503. A commit without the flag waits for
 * the same answer. A lost connection fails every XADD in flight (hiredis calls their callbacks
 * without a reply); some of those may have been stored: a client's retry then stores them
 * twice (at least once, never an acknowledged loss).
 *
 * Appends in a worker process (replies): rc_storage_attach gives a handle with its own
 * blocking connection, made at its first commit; commit sends the XADDs pipelined and waits.
 *
 * On a Redis Cluster (the first seed says cluster_enabled:1 at open) the writer thread keeps
 * its libuv loop and queue but talks through blocking connections, one per master
 * (redis_cluster.c): each turn sends every queued XADD to its stream's master, pipelined per
 * master (storage_redis_xadd.c), and completes the batches when all answered. A worker's
 * handle does the same on its own connections. docs/scaleout.md "Redis Cluster". */
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "net/storage/redis_cluster.h"
#include "net/storage/storage_redis_internal.h"

#define RESULTS         65536u /* tickets whose answer is kept for a late durable_wait */
#define REPLY_TIMEOUT   5000u  /* ms without Redis' answer before the connection is dropped */
#define TICK_MS         100u
#define CONNECT_TIMEOUT 1000u /* ms for a connect to complete */

/* One commit: its records (a copy in one buffer) and, once Redis answered, its result. */
typedef struct batch_s {
    uint64_t ticket;
    uint32_t n, pending;
    int rc;
    int done, blocking; /* blocking: a caller waits on the store's cond for `done` */
    int64_t sent_ns;
    uint32_t *lens;
    uint8_t *part; /* partition of each record */
    uint8_t *buf;  /* the records, each at an 8-aligned offset */
    struct batch_s *next;
} batch_t;

typedef struct {
    rc_storage_t base;
    rc_storage_t *ring; /* the mirror's ring: every read goes there */
    rc__redis_conf_t conf;
    int attached; /* a worker's handle: commits go through `sync` */
    redisContext *sync;
    rc_redis_cluster_t *cl; /* a Redis Cluster: the writer's (or a worker's) connections */
    _Atomic uint64_t rr;    /* round robin over partitions */
    /* The broker process: the writer thread and its state, under mu. */
    pthread_t thread;
    int started;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    redisAsyncContext *ac; /* NULL while down */
    int connected, stopping, down_logged;
    int64_t connect_ns; /* when the connection in progress was started */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *queue, *queue_tail;       /* committed, not sent */
    batch_t *flight, *flight_tail;     /* sent, not answered (writer thread only) */
    uint64_t next_ticket, done_ticket; /* every ticket <= done_ticket is answered */
    struct {
        uint64_t ticket;
        int rc;
    } * results; /* [ticket % RESULTS] */
    rc_storage_durable_t *waits;
    rc__redis_mirror_t mirror;
    _Atomic uint64_t xadds, failed;
    atomic_int down; /* the connection is down or the last batch was refused (stats) */
} redis_store_t;

static const rc__storage_ops_t redis_ops;

static void conf_keys(rc__redis_conf_t *c)
{
    for (uint32_t p = 0; p < c->partitions; p++)
        snprintf(c->keys[p], sizeof(c->keys[p]), "ringcast:{%s/%s/%u}", c->ns, c->broker, p);
}

/* ---- claim: a staging buffer ------------------------------------------------------------- */

static int redis_claim(rc_storage_t *s, rc_storage_rec_t *recs, uint32_t n, rc_storage_claim_t *c)
{
    (void)s;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += ((size_t)recs[i].len + 7) & ~(size_t)7;
    batch_t *b = calloc(1, sizeof(*b));
    if (b != NULL) {
        b->lens = calloc(n, sizeof(*b->lens));
        b->part = calloc(n, 1);
        b->buf = aligned_alloc(8, total > 0 ? total : 8);
    }
    if (b == NULL || b->lens == NULL || b->part == NULL || b->buf == NULL) {
        if (b != NULL) {
            free(b->lens);
            free(b->part);
            free(b->buf);
        }
        free(b);
        return -ENOMEM;
    }
    b->n = n;
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        b->lens[i] = recs[i].len;
        recs[i].data = b->buf + off;
        recs[i].pos = 0;
        off += ((size_t)recs[i].len + 7) & ~(size_t)7;
    }
    memset(c, 0, sizeof(*c));
    c->count = n;
    memcpy(c->priv_, &b, sizeof(b));
    return 0;
}

static batch_t *batch_of(const rc_storage_claim_t *c)
{
    batch_t *b;
    memcpy(&b, c->priv_, sizeof(b));
    return b;
}

static void batch_free(batch_t *b)
{
    free(b->lens);
    free(b->part);
    free(b->buf);
    free(b);
}

static void redis_abort(rc_storage_t *s, rc_storage_claim_t *c)
{
    (void)s;
    batch_free(batch_of(c));
}

/* FNV-1a of the partitionkey extension, or the next partition in turn when there is none. */
static void partition(redis_store_t *st, batch_t *b)
{
    uint32_t np = st->conf.partitions;
    size_t off = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t p = 0;
        if (np > 1) {
            rc_record_view_t v;
            rc_ce_value_t key;
            if (rc_record_decode(b->buf + off, b->lens[i], &v) == 0 &&
                rc_record_get(&v, (rc_str_t){"partitionkey", 12}, &key) == 0) {
                uint32_t h = 2166136261u;
                for (size_t k = 0; k < key.value.len; k++)
                    h = (h ^ (uint8_t)key.value.ptr[k]) * 16777619u;
                p = h % np;
            } else {
                p = (uint32_t)(atomic_fetch_add(&st->rr, 1) % np);
            }
        }
        b->part[i] = (uint8_t)p;
        off += ((size_t)b->lens[i] + 7) & ~(size_t)7;
    }
}

/* ---- the writer thread ----------------------------------------------------------------- */

/* Records the answer of the oldest batch in flight and fires the waits it ends. Writer. */
static void complete(redis_store_t *st, batch_t *b)
{
    if (b->rc != 0)
        atomic_fetch_add(&st->failed, b->n);
    else
        atomic_fetch_add(&st->xadds, b->n);
    atomic_store_explicit(&st->down, b->rc != 0, memory_order_relaxed);
    pthread_mutex_lock(&st->mu);
    st->results[b->ticket % RESULTS].ticket = b->ticket;
    st->results[b->ticket % RESULTS].rc = b->rc;
    st->done_ticket = b->ticket;
    rc_storage_durable_t *fire = NULL, **pp = &st->waits;
    while (*pp != NULL) {
        rc_storage_durable_t *w = *pp;
        if (w->ticket <= st->done_ticket) {
            *pp = w->next;
            w->next = fire;
            fire = w;
        } else {
            pp = &w->next;
        }
    }
    int blocking = b->blocking;
    b->done = 1;
    if (blocking)
        pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    while (fire != NULL) {
        rc_storage_durable_t *w = fire;
        fire = w->next;
        int rc = st->results[w->ticket % RESULTS].ticket == w->ticket
                     ? st->results[w->ticket % RESULTS].rc
                     : RC_ESTORE_UNAVAILABLE; /* too old to know: never a false 202 */
        w->done(w, rc);
    }
    if (!blocking)
        batch_free(b); /* a blocking caller frees its own */
}

/* Completes the batches at the front that have every answer, in ticket order. Writer. */
static void drain(redis_store_t *st)
{
    while (st->flight != NULL && st->flight->pending == 0) {
        batch_t *b = st->flight;
        st->flight = b->next;
        if (st->flight == NULL)
            st->flight_tail = NULL;
        complete(st, b);
    }
}

/* One reply (NULL: the connection is gone) for the front batch in flight: hiredis answers
 * commands in the order they were sent, and a batch's commands were sent together. */
static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redis_store_t *st = priv;
    redisReply *reply = r;
    batch_t *b = st->flight;
    if (b == NULL)
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (b->rc == 0 && reply != NULL && !st->down_logged++)
            rc_log_warn("serve", "broker %s/%s: Redis refused an XADD: %s", st->conf.ns,
                        st->conf.broker, reply->str);
        b->rc = RC_ESTORE_UNAVAILABLE;
    } else if (reply->type == REDIS_REPLY_INTEGER && st->conf.replicas > 0 && b->pending == 1 &&
               reply->integer < (long long)st->conf.replicas && b->rc == 0) {
        b->rc = RC_ESTORE_UNREPLICATED; /* the WAIT that ends the batch */
    }
    (void)ac;
    b->pending--;
    drain(st);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_store_t *st = ac->data;
    if (status == REDIS_OK) {
        st->connected = 1;
        atomic_store_explicit(&st->down, 0, memory_order_relaxed);
        rc_log_info("serve", "broker %s/%s: connected to Redis %s:%d for appends", st->conf.ns,
                    st->conf.broker, st->conf.host, st->conf.port);
        st->down_logged = 0;
        return;
    }
    if (!st->down_logged++)
        rc_log_warn("serve",
                    "broker %s/%s: cannot connect to Redis %s:%d: %s; events are "
                    "refused (503) until it answers",
                    st->conf.ns, st->conf.broker, st->conf.host, st->conf.port, ac->errstr);
    st->ac = NULL; /* hiredis frees it */
    st->connected = 0;
    atomic_store_explicit(&st->down, 1, memory_order_relaxed);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_store_t *st = ac->data;
    if (status != REDIS_OK && !st->down_logged++)
        rc_log_warn("serve",
                    "broker %s/%s: lost Redis %s:%d: %s; events are refused (503) "
                    "until it answers",
                    st->conf.ns, st->conf.broker, st->conf.host, st->conf.port, ac->errstr);
    st->ac = NULL;
    st->connected = 0;
    atomic_store_explicit(&st->down, 1, memory_order_relaxed);
}

/* hiredis' event hooks on a uv_poll_t. Debian's hiredis 0.14 ships adapters/libuv.h, but it
 * drops the callbacks libuv makes with an error status: libuv stops a poll on POLLERR (a
 * refused connect, a reset) and reports it that way, so that adapter's context never learns
 * its socket failed and stays "connecting" forever. Here an error status makes hiredis read,
 * which finds the error and fails the connection (and its commands) as it should. */
typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} uvev_t;

static void ev_poll(uv_poll_t *h, int status, int events)
{
    uvev_t *e = h->data;
    if (status < 0) {
        if (e->ac != NULL)
            redisAsyncHandleRead(e->ac);
        return;
    }
    if (e->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
    if (e->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
}

static void ev_update(uvev_t *e, int add, int events)
{
    e->events = add ? e->events | events : e->events & ~events;
    if (e->events != 0)
        uv_poll_start(&e->poll, e->events, ev_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p)
{
    ev_update(p, 1, UV_READABLE);
}

static void ev_del_read(void *p)
{
    ev_update(p, 0, UV_READABLE);
}

static void ev_add_write(void *p)
{
    ev_update(p, 1, UV_WRITABLE);
}

static void ev_del_write(void *p)
{
    ev_update(p, 0, UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    uvev_t *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uvev_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return REDIS_ERR;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return REDIS_ERR;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return REDIS_OK;
}

static void connect_async(redis_store_t *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->conf.host, st->conf.port);
    if (ac == NULL)
        return;
    if (ac->err || ev_attach(ac, &st->loop) != REDIS_OK) {
        if (!st->down_logged++)
            rc_log_warn("serve", "broker %s/%s: cannot connect to Redis %s:%d: %s", st->conf.ns,
                        st->conf.broker, st->conf.host, st->conf.port, ac->errstr);
        redisAsyncFree(ac);
        return;
    }
    ac->data = st;
    st->connect_ns = rc_now_ns();
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (st->conf.password[0] != '\0')
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", st->conf.password);
    st->ac = ac;
}

/* Sends one batch: its XADDs, and WAIT when replicas are asked for. Writer. */
static void send_batch(redis_store_t *st, batch_t *b)
{
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)st->conf.max_len);
    b->pending = b->n + (st->conf.replicas > 0);
    b->sent_ns = rc_now_ns();
    b->next = NULL;
    if (st->flight_tail != NULL)
        st->flight_tail->next = b;
    else
        st->flight = b;
    st->flight_tail = b;
    /* hiredis refuses a command (no callback, ever) on a connection it is closing: such a
     * command counts as answered with an error at once. */
    size_t off = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const char *key = st->conf.keys[b->part[i]];
        int sent = st->conf.max_len > 0
                       ? redisAsyncCommand(st->ac, on_reply, st,
                                           "XADD %s MAXLEN ~ %s * " RC__REDIS_FIELD " %b", key,
                                           maxlen, b->buf + off, (size_t)b->lens[i])
                       : redisAsyncCommand(st->ac, on_reply, st, "XADD %s * " RC__REDIS_FIELD " %b",
                                           key, b->buf + off, (size_t)b->lens[i]);
        if (sent != REDIS_OK) {
            b->rc = RC_ESTORE_UNAVAILABLE;
            b->pending--;
        }
        off += ((size_t)b->lens[i] + 7) & ~(size_t)7;
    }
    if (st->conf.replicas > 0 &&
        redisAsyncCommand(st->ac, on_reply, st, "WAIT %u %u", st->conf.replicas,
                          st->conf.wait_timeout_ms) != REDIS_OK) {
        b->rc = RC_ESTORE_UNAVAILABLE;
        b->pending--;
    }
    drain(st);
}

/* The XADDs of `n` batches to a Redis Cluster (storage_redis_xadd.c), one pipeline per master;
 * each batch's answer is the worst of its records'. Blocks this thread meanwhile: the batches
 * committed in that time go together in the next turn. Writer, or a worker's commit. */
static void cluster_send(redis_store_t *st, batch_t **bs, size_t n)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += bs[k]->n;
    rc__redis_xadd_t *it = calloc(total > 0 ? total : 1, sizeof(*it));
    if (it == NULL) {
        for (size_t k = 0; k < n; k++)
            bs[k]->rc = RC_ESTORE_UNAVAILABLE;
        return;
    }
    size_t j = 0;
    for (size_t k = 0; k < n; k++) {
        size_t off = 0;
        for (uint32_t i = 0; i < bs[k]->n; i++, j++) {
            it[j] = (rc__redis_xadd_t){.key = st->conf.keys[bs[k]->part[i]],
                                       .data = bs[k]->buf + off,
                                       .len = bs[k]->lens[i]};
            off += ((size_t)bs[k]->lens[i] + 7) & ~(size_t)7;
        }
    }
    char err[600];
    rc__redis_cluster_xadd(st->cl, &st->conf, it, total, err, sizeof(err));
    j = 0;
    for (size_t k = 0; k < n; k++) {
        bs[k]->rc = 0;
        for (uint32_t i = 0; i < bs[k]->n; i++, j++)
            if (it[j].rc != 0 && bs[k]->rc != RC_ESTORE_UNAVAILABLE)
                bs[k]->rc = it[j].rc;
    }
    free(it);
    if (err[0] != '\0' && !st->down_logged++)
        rc_log_warn("serve",
                    "broker %s/%s: Redis Cluster: %s; events are refused (503) until it "
                    "answers (logged once until it does)",
                    st->conf.ns, st->conf.broker, err);
    else if (err[0] == '\0' && st->down_logged && total > 0) {
        rc_log_info("serve", "broker %s/%s: Redis Cluster answers again", st->conf.ns,
                    st->conf.broker);
        st->down_logged = 0;
    }
}

/* The writer's turn in a Redis Cluster: every batch queued, in one go, then their answers in
 * ticket order. */
static void cluster_turn(redis_store_t *st, batch_t *list, int stopping)
{
    size_t n = 0;
    for (batch_t *b = list; b != NULL; b = b->next)
        n++;
    batch_t **bs = calloc(n > 0 ? n : 1, sizeof(*bs));
    n = 0;
    for (batch_t *b = list; b != NULL; b = b->next)
        if (bs != NULL)
            bs[n++] = b;
    if (bs != NULL && !stopping)
        cluster_send(st, bs, n);
    while (list != NULL) {
        batch_t *b = list;
        list = b->next;
        if (bs == NULL || stopping)
            b->rc = RC_ESTORE_UNAVAILABLE; /* nothing sent: nothing stored */
        complete(st, b);
    }
    free(bs);
}

static void on_async(uv_async_t *a)
{
    redis_store_t *st = a->data;
    pthread_mutex_lock(&st->mu);
    batch_t *list = st->queue;
    st->queue = st->queue_tail = NULL;
    int stopping = st->stopping;
    pthread_mutex_unlock(&st->mu);
    if (st->cl != NULL) {
        cluster_turn(st, list, stopping);
        list = NULL;
    }
    while (list != NULL) {
        batch_t *b = list;
        list = b->next;
        /* A connection in progress takes commands (hiredis sends them once connected, or
         * fails them when the connect fails or times out): no 503 while it is being made. */
        if (st->ac == NULL || stopping) {
            b->rc = RC_ESTORE_UNAVAILABLE; /* nothing sent: nothing stored */
            complete(st, b);
        } else {
            send_batch(st, b);
        }
    }
    if (stopping) {
        if (st->ac != NULL)
            redisAsyncFree(st->ac); /* fails what is in flight */
        st->ac = NULL;
        uv_close((uv_handle_t *)&st->async, NULL);
        uv_close((uv_handle_t *)&st->timer, NULL);
    }
}

/* Reconnects when down; drops a connection whose oldest XADD waits too long (a hung server:
 * its answers are failed, so the held requests get 503 instead of waiting forever). */
static void on_tick(uv_timer_t *t)
{
    redis_store_t *st = t->data;
    if (st->cl != NULL)
        return; /* a Redis Cluster's connections are made as writes need them */
    if (st->ac == NULL) {
        connect_async(st);
        return;
    }
    if (!st->connected) {
        if (rc_now_ns() - st->connect_ns > (int64_t)CONNECT_TIMEOUT * 1000000) {
            redisAsyncContext *ac = st->ac; /* an address that does not answer at all */
            st->ac = NULL;
            redisAsyncFree(ac);
        }
        return;
    }
    uint64_t limit = (uint64_t)(REPLY_TIMEOUT + st->conf.wait_timeout_ms) * 1000000ull;
    if (st->flight != NULL && (uint64_t)(rc_now_ns() - st->flight->sent_ns) > limit) {
        rc_log_warn("serve", "broker %s/%s: Redis %s:%d did not answer for %u ms; reconnecting",
                    st->conf.ns, st->conf.broker, st->conf.host, st->conf.port, REPLY_TIMEOUT);
        redisAsyncContext *ac = st->ac;
        st->ac = NULL;
        redisAsyncFree(ac);
    }
}

static void *writer_main(void *arg)
{
    redis_store_t *st = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uv_run(&st->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- commit and waiting ---------------------------------------------------------------------- */

/* A worker's commit: XADDs pipelined on its own blocking connection. */
static int commit_sync(redis_store_t *st, batch_t *b)
{
    char err[600];
    if (st->conf.cluster) {
        if (st->cl == NULL &&
            rc__redis_cluster_open(&st->conf, 2000 + (int)st->conf.wait_timeout_ms, NULL, &st->cl,
                                   err, sizeof(err)) != 0) {
            rc_log_warn("serve", "broker %s/%s: %s", st->conf.ns, st->conf.broker, err);
            return RC_ESTORE_UNAVAILABLE;
        }
        cluster_send(st, &b, 1);
        return b->rc;
    }
    if (st->sync == NULL &&
        (st->sync = rc__redis_connect(&st->conf, 2000, err, sizeof(err))) == NULL) {
        rc_log_warn("serve", "broker %s/%s: %s", st->conf.ns, st->conf.broker, err);
        return RC_ESTORE_UNAVAILABLE;
    }
    /* WAIT may take its whole timeout: the socket's must be longer. */
    int64_t ms = 2000 + (int64_t)st->conf.wait_timeout_ms;
    redisSetTimeout(st->sync, (struct timeval){ms / 1000, (ms % 1000) * 1000});
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)st->conf.max_len);
    size_t off = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const char *key = st->conf.keys[b->part[i]];
        if (st->conf.max_len > 0)
            redisAppendCommand(st->sync, "XADD %s MAXLEN ~ %s * " RC__REDIS_FIELD " %b", key,
                               maxlen, b->buf + off, (size_t)b->lens[i]);
        else /* no trimming: MAXLEN 0 would mean an empty stream */
            redisAppendCommand(st->sync, "XADD %s * " RC__REDIS_FIELD " %b", key, b->buf + off,
                               (size_t)b->lens[i]);
        off += ((size_t)b->lens[i] + 7) & ~(size_t)7;
    }
    if (st->conf.replicas > 0)
        redisAppendCommand(st->sync, "WAIT %u %u", st->conf.replicas, st->conf.wait_timeout_ms);
    int rc = 0;
    for (uint32_t i = 0; i < b->n + (st->conf.replicas > 0); i++) {
        redisReply *r = NULL;
        if (redisGetReply(st->sync, (void **)&r) != REDIS_OK) {
            redisFree(st->sync);
            st->sync = NULL;
            return RC_ESTORE_UNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR)
            rc = RC_ESTORE_UNAVAILABLE;
        else if (i == b->n && r->type == REDIS_REPLY_INTEGER &&
                 r->integer < (long long)st->conf.replicas && rc == 0)
            rc = RC_ESTORE_UNREPLICATED;
        freeReplyObject(r);
    }
    return rc;
}

static int redis_commit(rc_storage_t *s, rc_storage_claim_t *c)
{
    redis_store_t *st = (redis_store_t *)s;
    batch_t *b = batch_of(c);
    partition(st, b);
    if (st->attached) {
        int rc = commit_sync(st, b);
        batch_free(b);
        return rc;
    }
    int nowait = (c->flags & RC_STORAGE_COMMIT_F_NOWAIT) != 0;
    pthread_mutex_lock(&st->mu);
    b->ticket = ++st->next_ticket;
    b->blocking = !nowait;
    if (st->queue_tail != NULL)
        st->queue_tail->next = b;
    else
        st->queue = b;
    st->queue_tail = b;
    uv_async_send(&st->async);
    if (nowait) {
        c->ticket = b->ticket;
        pthread_mutex_unlock(&st->mu);
        return 0;
    }
    while (!b->done)
        pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
    int rc = b->rc;
    batch_free(b);
    return rc;
}

static int redis_durable_wait(rc_storage_t *s, rc_storage_durable_t *w)
{
    redis_store_t *st = (redis_store_t *)s;
    if (st->attached)
        return 1;
    pthread_mutex_lock(&st->mu);
    if (w->ticket > st->done_ticket) {
        w->next = st->waits;
        st->waits = w;
        pthread_mutex_unlock(&st->mu);
        return 0;
    }
    int rc = st->results[w->ticket % RESULTS].ticket == w->ticket
                 ? st->results[w->ticket % RESULTS].rc
                 : RC_ESTORE_UNAVAILABLE;
    pthread_mutex_unlock(&st->mu);
    return rc == 0 ? 1 : rc;
}

/* ---- reads: the mirror's ring ------------------------------------------------------------- */

static rc_storage_t *ring(rc_storage_t *s)
{
    return ((redis_store_t *)s)->ring;
}

static int redis_reader_open(rc_storage_t *s, const rc_storage_reader_opts_t *o,
                             rc_storage_reader_t **out)
{
    return rc_storage_reader_open(ring(s), o, out);
}

/* The admin's lossy looks read the mirror's ring, as every reader does. */
static int redis_scan(rc_storage_t *s, int64_t since_ns, uint64_t max, rc_storage_scan_cb cb,
                      void *arg, rc_storage_scan_t *out)
{
    return rc_storage_scan(ring(s), since_ns, max, cb, arg, out);
}

static int redis_read_at(rc_storage_t *s, uint64_t pos, uint64_t seq, void *buf, size_t cap,
                         size_t *len)
{
    return rc_storage_read_at(ring(s), pos, seq, buf, cap, len);
}

static int redis_find_cursor(rc_storage_t *s, const char *name, uint64_t *pos)
{
    return rc_storage_find_cursor(ring(s), name, pos);
}

static int redis_reclaim(rc_storage_t *s)
{
    return rc_storage_reclaim(ring(s));
}

static void redis_stats(rc_storage_t *s, rc_storage_stats_t *st)
{
    redis_store_t *rs = (redis_store_t *)s;
    rc_storage_stats(ring(s), st);
    st->kind = "redis";
    st->durability = "redis";
    st->redis_acked = atomic_load_explicit(&rs->xadds, memory_order_relaxed);
    st->redis_refused = atomic_load_explicit(&rs->failed, memory_order_relaxed);
    st->redis_down = atomic_load_explicit(&rs->down, memory_order_relaxed);
    st->mirrored = atomic_load_explicit(&rs->mirror.copied, memory_order_relaxed);
    st->mirror_skipped = atomic_load_explicit(&rs->mirror.skipped, memory_order_relaxed);
    st->mirror_lag_entries = atomic_load_explicit(&rs->mirror.lag_entries, memory_order_relaxed);
    st->mirror_lag_ms = atomic_load_explicit(&rs->mirror.lag_ms, memory_order_relaxed);
    st->mirror_trimmed = atomic_load_explicit(&rs->mirror.trimmed, memory_order_relaxed);
    st->redis_aged = atomic_load_explicit(&rs->mirror.aged, memory_order_relaxed);
}

static int redis_cursors_open(rc_storage_t *s, uint32_t slots, rc_storage_cursors_t **out,
                              int *adopted, char *err, size_t errlen)
{
    return rc_storage_cursors_open(ring(s), slots, out, adopted, err, errlen);
}

static int redis_holder(rc_storage_t *s, rc_storage_holder_t *out)
{
    return rc_storage_holder(ring(s), out);
}

static int redis_groups(rc_storage_t *s, uint64_t default_limit, uint64_t *skipped,
                        rc_storage_group_t *out, size_t max)
{
    return rc_storage_groups(ring(s), default_limit, skipped, out, max);
}

static int redis_readers(rc_storage_t *s, rc_storage_local_reader_t *out, size_t max)
{
    return rc_storage_readers(ring(s), out, max);
}

static int redis_seek_time(rc_storage_t *s, int64_t t_ns, rc_storage_seek_t *out)
{
    return rc_storage_seek_time(ring(s), t_ns, out);
}

static int redis_group_open(rc_storage_t *s, const rc_storage_group_opts_t *o,
                            rc_storage_reader_t **out, char *err, size_t errlen)
{
    redis_store_t *st = (redis_store_t *)s;
    /* On a Redis Cluster the reader routes each command by its partition key. */
    return rc__redis_group_open(&st->conf, st->ring, o, out, err, errlen);
}

/* ---- open, attach, close ------------------------------------------------------------------ */

static redis_store_t *store_new(void)
{
    redis_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->base.ops = &redis_ops;
    st->mirror.fd = -1;
    return st;
}

static int writer_start(redis_store_t *st)
{
    st->results = calloc(RESULTS, sizeof(*st->results));
    if (st->results == NULL)
        return -ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    int rc = uv_loop_init(&st->loop);
    if (rc != 0)
        return rc;
    uv_async_init(&st->loop, &st->async, on_async);
    st->async.data = st;
    uv_timer_init(&st->loop, &st->timer);
    st->timer.data = st;
    uv_timer_start(&st->timer, on_tick, TICK_MS, TICK_MS);
    if (st->cl == NULL)
        connect_async(st);
    rc = pthread_create(&st->thread, NULL, writer_main, st);
    if (rc != 0)
        return -rc;
    st->started = 1;
    return 0;
}

static void redis_close(rc_storage_t *s)
{
    redis_store_t *st = (redis_store_t *)s;
    if (st->started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = 1;
        uv_async_send(&st->async);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        uv_loop_close(&st->loop);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
    }
    rc__redis_mirror_stop(&st->mirror);
    if (st->sync != NULL)
        redisFree(st->sync);
    rc_redis_cluster_close(st->cl);
    free(st->results);
    rc_storage_close(st->ring);
    free(st);
}

int rc__storage_redis_open(const rc_storage_config_t *cfg, rc_storage_t **out, char *err,
                           size_t errlen)
{
    if (cfg->redis_host == NULL || cfg->redis_partitions == 0 ||
        cfg->redis_partitions > RC_CONFIG_REDIS_PARTITIONS) {
        snprintf(err, errlen, "a redis store needs a host and 1 to %d partitions",
                 RC_CONFIG_REDIS_PARTITIONS);
        return -EINVAL;
    }
    redis_store_t *st = store_new();
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc__redis_conf_t *c = &st->conf;
    snprintf(c->host, sizeof(c->host), "%s", cfg->redis_host);
    c->port = cfg->redis_port;
    if (cfg->redis_n_addresses > 0 && cfg->redis_n_addresses <= RC_CONFIG_REDIS_ADDRESSES) {
        c->n_addresses = cfg->redis_n_addresses;
        memcpy(c->addresses, cfg->redis_addresses, c->n_addresses * sizeof(c->addresses[0]));
    } else {
        c->n_addresses = 1;
        memcpy(c->addresses[0].host, c->host, sizeof(c->host));
        c->addresses[0].port = c->port;
    }
    snprintf(c->password, sizeof(c->password), "%s",
             cfg->redis_password != NULL ? cfg->redis_password : "");
    c->partitions = cfg->redis_partitions;
    c->max_len = cfg->redis_max_len;
    c->max_age_ms = cfg->redis_max_age_ms;
    c->replicas = cfg->redis_replicas;
    c->wait_timeout_ms = cfg->redis_wait_timeout_ms;
    snprintf(c->ns, sizeof(c->ns), "%s", cfg->ns);
    snprintf(c->broker, sizeof(c->broker), "%s", cfg->broker);
    conf_keys(c);
    /* Redis first: a wrong address, password or key fails the start before a ring is made.
     * The first seed that answers says whether it is a Redis Cluster; a standalone server
     * keeps the single-connection path (the async writer, one XREAD). */
    char name[2 * RC_CONFIG_NAME_MAX + 32];
    rc__redis_mirror_name(c, name, sizeof(name));
    int rc = rc__redis_cluster_open(c, 2000 + (int)c->wait_timeout_ms, NULL, &st->cl, err, errlen);
    if (rc != 0) {
        free(st);
        return rc == -EINVAL ? rc : RC_ESTORE_UNAVAILABLE;
    }
    c->cluster = rc_redis_cluster_enabled(st->cl);
    if (c->cluster) {
        int masters = rc_redis_cluster_masters(st->cl);
        rc_log_info("serve",
                    "broker %s/%s: Redis at %s:%d is a Redis Cluster of %d master%s: appends "
                    "the mirror and the triggers' groups follow its slot map (docs/scaleout.md)",
                    c->ns, c->broker, c->host, c->port, masters, masters == 1 ? "" : "s");
    }
    redisContext *rc_ctx = NULL;
    if (!c->cluster) {
        rc_redis_cluster_close(st->cl);
        st->cl = NULL;
        if ((rc_ctx = rc__redis_connect(c, 2000, err, errlen)) == NULL) {
            free(st);
            return RC_ESTORE_UNAVAILABLE;
        }
    } else if ((rc = rc__redis_cluster_open(c, RC__REDIS_MIRROR_TIMEOUT, name, &st->mirror.cl, err,
                                            errlen)) != 0) {
        rc_redis_cluster_close(st->cl);
        free(st);
        return RC_ESTORE_UNAVAILABLE;
    }
    rc_storage_config_t rcfg = *cfg;
    rcfg.kind = RC_STORAGE_SHM;
    rc = rc_storage_open(&rcfg, &st->ring, err, errlen);
    if (rc != 0) {
        if (rc_ctx != NULL)
            redisFree(rc_ctx);
        rc_redis_cluster_close(st->cl);
        rc_redis_cluster_close(st->mirror.cl);
        free(st);
        return rc;
    }
    st->mirror.ring = st->ring;
    st->mirror.conf = &st->conf;
    rc = rc__redis_mirror_open(&st->mirror, rc_ctx, err, errlen);
    if (rc != 0) {
        if (rc_ctx != NULL)
            redisFree(rc_ctx);
        redis_close(&st->base);
        return rc;
    }
    if ((rc = writer_start(st)) != 0 || (rc = rc__redis_mirror_start(&st->mirror)) != 0) {
        snprintf(err, errlen, "cannot start the Redis threads: %s", rc_strerror(rc));
        redis_close(&st->base);
        return rc;
    }
    *out = &st->base;
    return 0;
}

static int redis_attach(const rc_storage_t *s, rc_storage_t **out, char *err, size_t errlen)
{
    const redis_store_t *from = (const redis_store_t *)s;
    redis_store_t *st = store_new();
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->conf = from->conf;
    st->attached = 1;
    int rc = rc_storage_attach(from->ring, &st->ring, err, errlen);
    if (rc != 0) {
        free(st);
        return rc;
    }
    *out = &st->base;
    return 0;
}

static const rc__storage_ops_t redis_ops = {
    .attach = redis_attach,
    .close = redis_close,
    .claim = redis_claim,
    .commit = redis_commit,
    .durable_wait = redis_durable_wait,
    .abort = redis_abort,
    .reader_open = redis_reader_open,
    .find_cursor = redis_find_cursor,
    .reclaim = redis_reclaim,
    .stats = redis_stats,
    .cursors_open = redis_cursors_open,
    .holder = redis_holder,
    .groups = redis_groups,
    .readers = redis_readers,
    .scan = redis_scan,
    .read_at = redis_read_at,
    .group_open = redis_group_open,
    .seek_time = redis_seek_time,
};
