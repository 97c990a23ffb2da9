/* Redis Cluster routing over blocking hiredis connections (redis_cluster.h,
 * docs/scaleout.md "Redis Cluster"). The map is an array of 16384 node indexes; nodes are
 * added as CLUSTER SLOTS or a MOVED/ASK names them and are never removed (a dead master keeps
 * its index, owns no slot after the refresh that follows its failover, and is only connected
 * to again when a slot points at it). */
#include "net/storage/redis_cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_NODE     0xffffu
#define REFRESH_GAP 100000000ll /* ns between two refreshes that are not forced */
#define RC__STR_(x) #x
#define RC__STR(x)  RC__STR_(x)
#define TRIES       4 /* per routed command: the first, then redirects or retries */

typedef struct {
    rc_config_redis_addr_t addr;
    char name[RC_CONFIG_REDIS_HOST_MAX + 16];
    redisContext *c; /* NULL: not connected */
} node_t;

struct rc_redis_cluster {
    rc_config_redis_addr_t seeds[RC_CONFIG_REDIS_ADDRESSES];
    uint32_t nseeds;
    char password[RC_CONFIG_REDIS_PASSWORD_MAX + 1];
    char client_name[2 * RC_CONFIG_NAME_MAX + 32];
    int connect_timeout_ms, timeout_ms;
    int enabled;
    node_t nodes[RC_REDIS_CLUSTER_NODES_MAX];
    uint32_t nnodes;
    int stale;
    int64_t refreshed_ns;
    rc_redis_cluster_stats_t stats;
    char err[512];
    uint16_t slots[RC_REDIS_CLUSTER_SLOTS]; /* node index, NO_NODE when unknown */
};

/* ---- the key slot ------------------------------------------------------------------------ */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0, no reflection), as Redis Cluster. */
static uint16_t crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t rc_redis_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        /* An empty tag "{}" does not count: the whole key is hashed. */
        if (close != NULL && close > key + from)
            return crc16(key + from, (size_t)(close - (key + from))) & 16383;
    }
    return crc16(key, len) & 16383;
}

/* ---- nodes and connections ------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void seterr(rc_redis_cluster_t *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seterr(rc_redis_cluster_t *cl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cl->err, sizeof(cl->err), fmt, ap);
    va_end(ap);
}

/* The index of the node at host:port, added when new; -1 when the set is full. */
static int node_add(rc_redis_cluster_t *cl, const char *host, size_t hlen, int port)
{
    if (hlen == 0 || hlen > RC_CONFIG_REDIS_HOST_MAX)
        return -1;
    for (uint32_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].addr.port == port && strlen(cl->nodes[i].addr.host) == hlen &&
            memcmp(cl->nodes[i].addr.host, host, hlen) == 0)
            return (int)i;
    if (cl->nnodes == RC_REDIS_CLUSTER_NODES_MAX)
        return -1;
    node_t *n = &cl->nodes[cl->nnodes];
    memset(n, 0, sizeof(*n));
    memcpy(n->addr.host, host, hlen);
    n->addr.host[hlen] = '\0';
    n->addr.port = port;
    snprintf(n->name, sizeof(n->name), strchr(n->addr.host, ':') ? "[%s]:%d" : "%s:%d",
             n->addr.host, port);
    return (int)cl->nnodes++;
}

/* Connects, authenticates and pings; NULL with cl->err saying what failed. */
static redisContext *dial(rc_redis_cluster_t *cl, const rc_config_redis_addr_t *a, const char *name)
{
    int ms = cl->connect_timeout_ms;
    redisContext *c =
        redisConnectWithTimeout(a->host, a->port, (struct timeval){ms / 1000, (ms % 1000) * 1000});
    if (c == NULL || c->err) {
        seterr(cl, "cannot connect to Redis at %s: %s", name,
               c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    ms = cl->timeout_ms;
    redisSetTimeout(c, (struct timeval){ms / 1000, (ms % 1000) * 1000});
    redisReply *r = NULL;
    if (cl->password[0] != '\0') {
        r = redisCommand(c, "AUTH %s", cl->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            seterr(cl, "Redis at %s refused the password (spec.redis.password): %s", name,
                   r != NULL ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        int noauth = r != NULL && strncmp(r->str, "NOAUTH", 6) == 0;
        seterr(cl, "Redis at %s: %s%s", name, r != NULL ? r->str : c->errstr,
               noauth ? " (give spec.redis.password or passwordFile)" : "");
        goto fail;
    }
    freeReplyObject(r);
    if (cl->client_name[0] != '\0')
        freeReplyObject(redisCommand(c, "CLIENT SETNAME %s", cl->client_name));
    return c;
fail:
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

redisContext *rc_redis_cluster_conn(rc_redis_cluster_t *cl, int node)
{
    if (node < 0 || (uint32_t)node >= cl->nnodes)
        return NULL;
    node_t *n = &cl->nodes[node];
    if (n->c == NULL && (n->c = dial(cl, &n->addr, n->name)) == NULL) {
        cl->stale = 1;
        cl->stats.conn_errors++;
    }
    return n->c;
}

void rc_redis_cluster_drop(rc_redis_cluster_t *cl, int node)
{
    if (node < 0 || (uint32_t)node >= cl->nnodes)
        return;
    node_t *n = &cl->nodes[node];
    if (n->c != NULL) {
        seterr(cl, "lost Redis at %s: %s", n->name, n->c->errstr);
        redisFree(n->c);
    }
    n->c = NULL;
    cl->stale = 1;
    cl->stats.conn_errors++;
}

const char *rc_redis_cluster_node_name(const rc_redis_cluster_t *cl, int node)
{
    return node >= 0 && (uint32_t)node < cl->nnodes ? cl->nodes[node].name : "(no node)";
}

/* ---- the slot map ---------------------------------------------------------------------- */

/* CLUSTER SLOTS: [[start, end, [host, port, id...], replicas...]...]. Only masters are used:
 * every write and read of the store goes to the slot's master. A host that is "" or "?" (a
 * node that does not know its own address, as a one-node cluster) is the node asked's. */
static int load_slots(rc_redis_cluster_t *cl, const redisReply *r, const char *asked_host)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    uint16_t map[RC_REDIS_CLUSTER_SLOTS];
    memset(map, 0xff, sizeof(map));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            (e->element[2]->element[0]->type != REDIS_REPLY_STRING &&
             e->element[2]->element[0]->type != REDIS_REPLY_NIL) ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            return -EPROTO;
        long long from = e->element[0]->integer, to = e->element[1]->integer;
        const redisReply *m = e->element[2];
        if (from < 0 || to >= RC_REDIS_CLUSTER_SLOTS || from > to)
            return -EPROTO;
        const char *host = m->element[0]->str;
        size_t hlen = m->element[0]->type == REDIS_REPLY_STRING ? m->element[0]->len : 0;
        if (hlen == 0 || strcmp(host, "?") == 0) {
            host = asked_host;
            hlen = strlen(host);
        }
        int node = node_add(cl, host, hlen, (int)m->element[1]->integer);
        if (node < 0)
            return -ENOSPC;
        for (long long s = from; s <= to; s++)
            map[s] = (uint16_t)node;
    }
    memcpy(cl->slots, map, sizeof(map));
    cl->stale = 0;
    cl->stats.refreshes++;
    return 0;
}

/* CLUSTER SLOTS on node `node`'s connection `c`. */
static int slots_from(rc_redis_cluster_t *cl, redisContext *c, int node)
{
    char host[RC_CONFIG_REDIS_HOST_MAX + 1], name[sizeof(cl->nodes[0].name)];
    memcpy(host, cl->nodes[node].addr.host, sizeof(host));
    memcpy(name, cl->nodes[node].name, sizeof(name));
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    if (r == NULL) {
        seterr(cl, "Redis at %s: CLUSTER SLOTS: %s", name, c->errstr);
        return -EIO;
    }
    int rc = r->type == REDIS_REPLY_ERROR ? -EPROTO : load_slots(cl, r, host);
    if (rc != 0)
        seterr(cl, "Redis at %s: CLUSTER SLOTS: %s", name,
               r->type == REDIS_REPLY_ERROR ? r->str
               : rc == -ENOSPC              ? "more masters than " RC__STR(
                                                  RC_REDIS_CLUSTER_NODES_MAX) " (this version's limit)"
                               : "an answer this version cannot read");
    freeReplyObject(r);
    return rc;
}

int rc_redis_cluster_refresh(rc_redis_cluster_t *cl, int force)
{
    if (!cl->enabled)
        return 0;
    int64_t now = now_ns();
    if (!force && now - cl->refreshed_ns < REFRESH_GAP)
        return -EAGAIN;
    cl->refreshed_ns = now;
    /* The known nodes that are connected first (no connect needed), then the others. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < cl->nnodes; i++) {
            if ((pass == 0) != (cl->nodes[i].c != NULL))
                continue;
            redisContext *c = rc_redis_cluster_conn(cl, (int)i);
            if (c == NULL)
                continue;
            int rc = slots_from(cl, c, (int)i);
            if (rc == 0)
                return 0;
            if (rc == -EIO)
                rc_redis_cluster_drop(cl, (int)i);
        }
    for (uint32_t i = 0; i < cl->nseeds; i++) {
        int node = node_add(cl, cl->seeds[i].host, strlen(cl->seeds[i].host), cl->seeds[i].port);
        redisContext *c = rc_redis_cluster_conn(cl, node);
        if (c != NULL && slots_from(cl, c, node) == 0)
            return 0;
    }
    cl->stale = 1;
    return -EIO;
}

int rc_redis_cluster_node_of(rc_redis_cluster_t *cl, const char *key)
{
    if (!cl->enabled)
        return 0;
    if (cl->stale)
        (void)rc_redis_cluster_refresh(cl, 0);
    uint16_t n = cl->slots[rc_redis_keyslot(key, strlen(key))];
    if (n == NO_NODE)
        seterr(cl, "no Redis Cluster node serves the slot of '%s' (the cluster is down?)", key);
    return n == NO_NODE ? -1 : (int)n;
}

int rc_redis_parse_redirect(const char *msg, int *slot, char *host, size_t hostlen, int *port)
{
    int kind = strncmp(msg, "MOVED ", 6) == 0 ? 1 : strncmp(msg, "ASK ", 4) == 0 ? 2 : 0;
    if (kind == 0)
        return 0;
    const char *p = msg + (kind == 1 ? 6 : 4);
    char *end = NULL;
    if (*p < '0' || *p > '9')
        return 0;
    long s = strtol(p, &end, 10);
    if (*end != ' ' || s < 0 || s >= RC_REDIS_CLUSTER_SLOTS)
        return 0;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] < '0' || colon[1] > '9')
        return 0;
    long pt = strtol(colon + 1, &end, 10);
    if (*end != '\0' || pt < 1 || pt > 65535)
        return 0;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostlen || memchr(h, ' ', hl) != NULL)
        return 0;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *slot = (int)s;
    *port = (int)pt;
    return kind;
}

int rc_redis_cluster_redirect(rc_redis_cluster_t *cl, const redisReply *r, int from, int *node)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return 0;
    char host[RC_CONFIG_REDIS_HOST_MAX + 1];
    int slot = 0, port = 0;
    int kind = rc_redis_parse_redirect(r->str, &slot, host, sizeof(host), &port);
    if (kind == 0)
        return 0;
    /* An empty host (a node that does not know its address) is the answering node's. */
    if (host[0] == '\0' && from >= 0 && (uint32_t)from < cl->nnodes)
        memcpy(host, cl->nodes[from].addr.host, sizeof(host));
    int n = node_add(cl, host, strlen(host), port);
    if (n < 0)
        return -1;
    *node = n;
    if (kind == 1) {
        /* The slot moved for good: point it there now, and reload the rest soon (a reshard
         * moves many slots; a failover all of a master's). */
        cl->slots[slot] = (uint16_t)n;
        cl->stale = 1;
        cl->stats.moved++;
    } else {
        cl->stats.asked++;
    }
    return kind;
}

/* ---- routed commands ----------------------------------------------------------------- */

/* Sends `cmd` (ASKING first when `ask`) on node's connection and reads its reply. NULL when
 * the connection failed (`*sent` says whether the command may have reached the node). */
static redisReply *send_one(rc_redis_cluster_t *cl, int node, int ask, const char *cmd, size_t len,
                            int *sent)
{
    *sent = 0;
    redisContext *c = rc_redis_cluster_conn(cl, node);
    if (c == NULL)
        return NULL;
    if (ask)
        redisAppendCommand(c, "ASKING");
    redisAppendFormattedCommand(c, cmd, len);
    redisReply *r = NULL;
    *sent = 1;
    if (ask) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            goto io;
        freeReplyObject(r);
        r = NULL;
    }
    if (redisGetReply(c, (void **)&r) != REDIS_OK)
        goto io;
    return r;
io:
    rc_redis_cluster_drop(cl, node);
    return NULL;
}

redisReply *rc_redis_cluster_formatted(rc_redis_cluster_t *cl, const char *key, const char *cmd,
                                       size_t len)
{
    int node = -1, ask = 0;
    cl->err[0] = '\0';
    for (int t = 0; t < TRIES; t++) {
        if (!ask && (node = rc_redis_cluster_node_of(cl, key)) < 0)
            return NULL;
        int sent = 0;
        redisReply *r = send_one(cl, node, ask, cmd, len, &sent);
        ask = 0;
        if (r == NULL) {
            if (sent)
                return NULL; /* it may have run: the caller decides whether to repeat it */
            (void)rc_redis_cluster_refresh(cl, 1);
            continue;
        }
        int to = -1, kind = rc_redis_cluster_redirect(cl, r, node, &to);
        if (kind <= 0)
            return r;
        freeReplyObject(r);
        if (kind == 2) {
            node = to;
            ask = 1;
        }
    }
    if (cl->err[0] == '\0')
        seterr(cl, "'%s': still redirected after %d tries", key, TRIES);
    return NULL;
}

redisReply *rc_redis_cluster_argv(rc_redis_cluster_t *cl, const char *key, int argc,
                                  const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        seterr(cl, "out of memory");
        return NULL;
    }
    redisReply *r = rc_redis_cluster_formatted(cl, key, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *rc_redis_cluster_command(rc_redis_cluster_t *cl, const char *key, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        seterr(cl, "cannot format the command '%s'", fmt);
        return NULL;
    }
    redisReply *r = rc_redis_cluster_formatted(cl, key, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

int rc_redis_cluster_masters(const rc_redis_cluster_t *cl)
{
    uint8_t seen[RC_REDIS_CLUSTER_NODES_MAX] = {0};
    int n = 0;
    for (uint32_t s = 0; s < RC_REDIS_CLUSTER_SLOTS; s++)
        if (cl->slots[s] != NO_NODE && !seen[cl->slots[s]]) {
            seen[cl->slots[s]] = 1;
            n++;
        }
    return n;
}

const char *rc_redis_cluster_error(const rc_redis_cluster_t *cl)
{
    return cl->err;
}

int rc_redis_cluster_enabled(const rc_redis_cluster_t *cl)
{
    return cl->enabled;
}

void rc_redis_cluster_stats(const rc_redis_cluster_t *cl, rc_redis_cluster_stats_t *out)
{
    *out = cl->stats;
}

/* ---- open and close ------------------------------------------------------------------- */

/* INFO cluster on a fresh connection: 1 cluster_enabled:1, 0 standalone, <0 no answer. */
static int cluster_enabled(rc_redis_cluster_t *cl, redisContext *c, const char *name)
{
    redisReply *r = redisCommand(c, "INFO cluster");
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        seterr(cl, "Redis at %s: INFO cluster: %s", name,
               r == NULL                      ? c->errstr
               : r->type == REDIS_REPLY_ERROR ? r->str
                                              : "no text");
        freeReplyObject(r);
        return -EPROTO;
    }
    int on = strstr(r->str, "cluster_enabled:1") != NULL;
    freeReplyObject(r);
    return on;
}

/* The first seed that answers becomes node 0; in a cluster, its CLUSTER SLOTS is the map. */
static int first_seed(rc_redis_cluster_t *cl)
{
    int rc = -EIO;
    for (uint32_t i = 0; i < cl->nseeds; i++) {
        const rc_config_redis_addr_t *s = &cl->seeds[i];
        int node = node_add(cl, s->host, strlen(s->host), s->port);
        redisContext *c = dial(cl, s, cl->nodes[node].name);
        if (c == NULL) {
            /* A wrong password is the same everywhere: say so rather than try the rest. */
            if (strstr(cl->err, "password") != NULL)
                return -EACCES;
            continue;
        }
        cl->nodes[node].c = c;
        int on = cluster_enabled(cl, c, cl->nodes[node].name);
        if (on < 0) {
            rc = on;
            continue;
        }
        cl->enabled = on;
        if (!on) {
            if (cl->nseeds > 1) {
                seterr(cl,
                       "spec.redis.addresses lists %u addresses, but Redis at %s is not a "
                       "Redis Cluster (cluster_enabled:0); give one address for a standalone "
                       "server",
                       cl->nseeds, cl->nodes[node].name);
                return -EINVAL;
            }
            memset(cl->slots, 0, sizeof(cl->slots)); /* one node (0) owns every slot */
            return 0;
        }
        cl->refreshed_ns = now_ns();
        if ((rc = slots_from(cl, c, node)) == 0)
            return 0;
    }
    return rc;
}

int rc_redis_cluster_open(const rc_redis_cluster_conf_t *conf, rc_redis_cluster_t **out, char *err,
                          size_t errlen)
{
    if (conf->nseeds == 0 || conf->nseeds > RC_CONFIG_REDIS_ADDRESSES) {
        snprintf(err, errlen, "Redis: 1 to %d addresses are needed, not %u",
                 RC_CONFIG_REDIS_ADDRESSES, conf->nseeds);
        return -EINVAL;
    }
    rc_redis_cluster_t *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(cl->seeds, conf->seeds, conf->nseeds * sizeof(*conf->seeds));
    cl->nseeds = conf->nseeds;
    snprintf(cl->password, sizeof(cl->password), "%s", conf->password ? conf->password : "");
    snprintf(cl->client_name, sizeof(cl->client_name), "%s",
             conf->client_name ? conf->client_name : "");
    cl->connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 1000;
    cl->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 2000;
    memset(cl->slots, 0xff, sizeof(cl->slots));
    int rc = first_seed(cl);
    if (rc == -EIO && cl->nseeds > 1) {
        snprintf(err, errlen, "none of the %u Redis addresses answered; the last: %s", cl->nseeds,
                 cl->err);
        rc_redis_cluster_close(cl);
        return rc;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", cl->err);
        rc_redis_cluster_close(cl);
        return rc;
    }
    cl->err[0] = '\0';
    *out = cl;
    return 0;
}

void rc_redis_cluster_close(rc_redis_cluster_t *cl)
{
    if (cl == NULL)
        return;
    for (uint32_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].c != NULL)
            redisFree(cl->nodes[i].c);
    free(cl);
}
