/* The redis store's appends to a Redis Cluster (docs/scaleout.md "Redis Cluster"): every XADD
 * goes to the master of its partition stream's slot, pipelined per node (each node's commands
 * are written before any reply is read, so the nodes work at the same time), then WAIT on each
 * node written to when replicas are asked for (WAIT counts the replicas that have every write
 * made on that connection so far). A MOVED or ASK reply means the XADD did not run: it is sent
 * again to the node named (after ASKING for an ASK), up to ROUNDS times in all. A connection
 * that fails fails the XADDs sent on it (they may have run: the client's retry can store one
 * twice, never an acknowledged loss) and marks the map stale, so the next turn asks any node
 * that answers for the slot map: after a failover, the promoted replica. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "net/storage/redis_cluster.h"
#include "net/storage/storage_redis_internal.h"

#define ROUNDS 3

enum { TODO, SENT, DONE };

/* Appends one round's commands: the items still to do, each to its node. Returns how many
 * commands each node got in `used`. */
static void append_round(rc_redis_cluster_t *cl, const rc__redis_conf_t *conf, rc__redis_xadd_t *it,
                         size_t n, uint32_t *used, char *err, size_t errlen)
{
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)conf->max_len);
    /* Every owner first: a refresh of the map (which talks to connected nodes) must not
     * happen between the appends of a pipeline and its replies. */
    for (size_t i = 0; i < n; i++)
        if (it[i].state_ == TODO && !it[i].ask_)
            it[i].node_ = rc_redis_cluster_node_of(cl, it[i].key);
    uint8_t unreachable[RC_REDIS_CLUSTER_NODES_MAX] = {0}; /* one connect per node and round */
    for (size_t i = 0; i < n; i++) {
        rc__redis_xadd_t *x = &it[i];
        if (x->state_ != TODO)
            continue;
        redisContext *c =
            x->node_ >= 0 && !unreachable[x->node_] ? rc_redis_cluster_conn(cl, x->node_) : NULL;
        if (c == NULL && x->node_ >= 0)
            unreachable[x->node_] = 1;
        if (c == NULL) {
            if (err[0] == '\0')
                snprintf(err, errlen, "%s", rc_redis_cluster_error(cl));
            x->rc = RC_ESTORE_UNAVAILABLE;
            x->state_ = DONE;
            continue;
        }
        if (x->ask_)
            redisAppendCommand(c, "ASKING");
        if (conf->max_len > 0)
            redisAppendCommand(c, "XADD %s MAXLEN ~ %s * " RC__REDIS_FIELD " %b", x->key, maxlen,
                               x->data, (size_t)x->len);
        else /* no trimming: MAXLEN 0 would mean an empty stream */
            redisAppendCommand(c, "XADD %s * " RC__REDIS_FIELD " %b", x->key, x->data,
                               (size_t)x->len);
        x->state_ = SENT;
        used[x->node_]++;
    }
    for (int nd = 0; nd < RC_REDIS_CLUSTER_NODES_MAX; nd++) {
        if (used[nd] == 0)
            continue;
        redisContext *c = rc_redis_cluster_conn(cl, nd);
        if (conf->replicas > 0)
            redisAppendCommand(c, "WAIT %u %u", conf->replicas, conf->wait_timeout_ms);
        int done = 0; /* blocking sockets: a write returns when all is written, or fails */
        while (!done)
            if (redisBufferWrite(c, &done) != REDIS_OK)
                break;
    }
}

/* Fails the SENT items of node `nd` from index `from` on, after its connection failed. */
static void fail_rest(rc__redis_xadd_t *it, size_t n, size_t from, int nd)
{
    for (size_t i = from; i < n; i++)
        if (it[i].state_ == SENT && it[i].node_ == nd) {
            it[i].rc = RC_ESTORE_UNAVAILABLE;
            it[i].state_ = DONE;
        }
}

/* Reads node `nd`'s replies for this round, in the order its commands were appended. */
static void read_node(rc_redis_cluster_t *cl, const rc__redis_conf_t *conf, rc__redis_xadd_t *it,
                      size_t n, int nd, char *err, size_t errlen)
{
    redisContext *c = rc_redis_cluster_conn(cl, nd);
    redisReply *r = NULL;
    size_t first_ok = n;
    for (size_t i = 0; i < n; i++) {
        rc__redis_xadd_t *x = &it[i];
        if (x->state_ != SENT || x->node_ != nd)
            continue;
        int ask = x->ask_;
        x->ask_ = 0;
        if (c == NULL || (ask && redisGetReply(c, (void **)&r) != REDIS_OK)) /* ASKING's OK */
            goto io;
        freeReplyObject(r);
        r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            goto io;
        int to = -1, kind = rc_redis_cluster_redirect(cl, r, nd, &to);
        if (kind > 0) { /* not run: again, next round */
            x->state_ = TODO;
            x->node_ = to;
            x->ask_ = kind == 2;
        } else if (r->type == REDIS_REPLY_ERROR) {
            if (err[0] == '\0') /* CLUSTERDOWN, TRYAGAIN, OOM ...: nothing stored */
                snprintf(err, errlen, "Redis at %s refused an XADD: %s",
                         rc_redis_cluster_node_name(cl, nd), r->str);
            x->rc = RC_ESTORE_UNAVAILABLE;
            x->state_ = DONE;
        } else {
            x->rc = 0;
            x->state_ = DONE;
            x->wait_node_ = nd;
            if (first_ok == n)
                first_ok = i;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (conf->replicas == 0)
        return;
    if (redisGetReply(c, (void **)&r) != REDIS_OK) {
        snprintf(err, errlen, "lost Redis at %s during WAIT: %s",
                 rc_redis_cluster_node_name(cl, nd), c->errstr);
        rc_redis_cluster_drop(cl, nd);
        r = NULL; /* the XADDs ran, their replication is unknown: not acknowledged */
    }
    int enough = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= conf->replicas;
    for (size_t i = first_ok; i < n && !enough; i++)
        if (it[i].wait_node_ == nd && it[i].rc == 0)
            it[i].rc = r != NULL && r->type == REDIS_REPLY_INTEGER ? RC_ESTORE_UNREPLICATED
                                                                   : RC_ESTORE_UNAVAILABLE;
    freeReplyObject(r);
    return;
io:
    if (err[0] == '\0')
        snprintf(err, errlen, "lost Redis at %s: %s", rc_redis_cluster_node_name(cl, nd),
                 c != NULL ? c->errstr : rc_redis_cluster_error(cl));
    rc_redis_cluster_drop(cl, nd);
    fail_rest(it, n, 0, nd);
}

void rc__redis_cluster_xadd(rc_redis_cluster_t *cl, const rc__redis_conf_t *conf,
                            rc__redis_xadd_t *it, size_t n, char *err, size_t errlen)
{
    err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        it[i].rc = RC_ESTORE_UNAVAILABLE;
        it[i].state_ = TODO;
        it[i].ask_ = 0;
        it[i].node_ = -1;
        it[i].wait_node_ = -1;
    }
    for (int round = 0; round < ROUNDS; round++) {
        uint32_t used[RC_REDIS_CLUSTER_NODES_MAX] = {0};
        append_round(cl, conf, it, n, used, err, errlen);
        int any = 0;
        for (int nd = 0; nd < RC_REDIS_CLUSTER_NODES_MAX; nd++)
            if (used[nd] > 0) {
                read_node(cl, conf, it, n, nd, err, errlen);
                any = 1;
            }
        if (!any)
            break;
    }
    for (size_t i = 0; i < n; i++)
        if (it[i].state_ != DONE) {
            if (err[0] == '\0')
                snprintf(err, errlen, "an XADD to '%s' was still redirected after %d tries",
                         it[i].key, ROUNDS);
            it[i].rc = RC_ESTORE_UNAVAILABLE;
        }
}

int rc__redis_cluster_open(const rc__redis_conf_t *conf, int timeout_ms, const char *name,
                           rc_redis_cluster_t **out, char *err, size_t errlen)
{
    rc_redis_cluster_conf_t cc = {
        .seeds = conf->addresses,
        .nseeds = conf->n_addresses,
        .password = conf->password,
        /* A dead master refuses at once on most networks; one that does not answer must not
         * hold the other masters' writes for long. */
        .connect_timeout_ms = 500,
        .timeout_ms = timeout_ms,
        .client_name = name,
    };
    return rc_redis_cluster_open(&cc, out, err, errlen);
}
