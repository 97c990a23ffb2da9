/* A trigger's reader of a redis broker (docs/scaleout.md, "Once per trigger across nodes"):
 * one Redis consumer group per trigger on each partition stream, named "<ns>/<trigger>", and
 * every node reads it with XREADGROUP as its own consumer, so each event reaches each trigger
 * once across the nodes that share the broker's streams, and the work spreads over them.
 *
 * The reader is an rc_storage_reader_t like a ring cursor, so the worker's code is the same:
 * poll hands out entries with positions, ack(pos) XACKs every entry before pos (delivered,
 * dead-lettered, dropped or not matched). Positions are this node's own count, not places in
 * a stream: entries of several partitions, the consumer's own pending entries read again and
 * entries taken over from a dead node all come in one increasing order. The count lives in
 * memory shared with the processes forked after the open, so a restarted worker goes on from
 * where the dead one was (its triggers' saved sequence numbers stay below the new ones).
 *
 * The reader is opened in the broker process, before the workers are forked, and connects in
 * the process that polls it: a hiredis connection cannot be shared across a fork. A worker
 * (re)started resumes it, and it first reads its consumer's pending entries (XREADGROUP ...
 * 0): what this node read and never acknowledged, before a restart or a worker crash, is
 * delivered again (at least once).
 *
 * When to ask Redis: every event in the streams is also copied into the node's ring by the
 * mirror (storage_redis_mirror.c), so the ring's head moving says "there may be something to
 * read". A poll reads Redis only when the head moved since the last read that found nothing,
 * or a maintenance pass is due (claimIdle / 2, at most every second): XAUTOCLAIM of entries
 * other consumers left idle longer than claimIdle (a dead node's), XCLAIM JUSTID of the
 * entries this reader still holds (so a slow delivery is not taken over as a dead one), and
 * XPENDING for the pending gauge. The worker sleeps elsewhere (its HTTP client); a watch
 * thread waits in wait_past on the ring's futex until the head moves or the next pass is due,
 * never on Redis.
 *
 * On a Redis Cluster (conf.cluster) each partition stream is its own slot, so the reader keeps a
 * cluster connection set (redis_cluster.c) instead of one connection and sends every command
 * per partition key: XGROUP CREATE, XREADGROUP (one per key, in turn), XACK, XCLAIM,
 * XAUTOCLAIM and XPENDING; MOVED, ASK and a dead node's refusals are the set's to follow. A
 * command that gets no answer (a master died) pauses the reader for RECONNECT_NS and then, as
 * after a reconnect, its consumer's pending entries are read again from every stream, so the
 * entries a promoted replica knows as this node's are delivered (at least once); those this
 * process read and delivered before, which the replica hands out again, are acknowledged and
 * not delivered twice (read_before). */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/record.h"
#include "net/storage/redis_cluster.h"
#include "net/storage/storage_redis_internal.h"

#define READ_COUNT     128  /* entries per XREADGROUP and partition */
#define HOLD_MAX       1024 /* read and not acknowledged: no further reads past it */
#define CLAIM_COUNT    100  /* entries per XAUTOCLAIM and partition */
#define TOUCH_MAX      512  /* held entries whose idle time one pass resets, per partition */
#define REFRESH_NS     1000000000ll
#define MIN_PASS_NS    50000000ll
#define RECONNECT_NS   250000000ll
#define GROUP_NAME_MAX (2 * RC_CONFIG_NAME_MAX + 2)
#define CONSUMER_MAX   128
#define SEEN_SLOTS     16384 /* entries remembered after their read, on a cluster (lossy) */
#define SEEN_WAYS      4     /* slots per bucket: the oldest in the bucket is overwritten */

/* Counters every process with the reader sees: the opener's /metrics, its workers; and the
 * reader's positions (bytes of the records it read, so that a trigger's lag limit in bytes
 * means what it means on a ring), which a restarted worker continues. */
typedef struct {
    _Atomic uint64_t pending, claimed, acked, read;
    _Atomic uint64_t pos;
} shared_stats_t;

/* The node's sequence numbers over all group readers and worker processes: a worker's feeds
 * share one saved read cursor per broker (net/delivery/cursor.h), so a trigger's saved number
 * must be comparable with any of its worker's group readers'. */
typedef struct {
    _Atomic uint64_t seq;
} shared_count_t;

static shared_count_t *count_page; /* mapped once by the first open, inherited by forks */

/* A reply whose strings entries point into: freed when its last entry is acknowledged. */
typedef struct {
    redisReply *r;
    uint32_t refs;
} rref_t;

typedef struct {
    uint64_t pos, seq;
    rc__redis_id_t id;
    const uint8_t *data; /* NULL: no ringcast record (acknowledged, never returned) */
    uint32_t len;
    uint32_t part;
    rref_t *rr;
} held_t;

/* An entry this process read: a 64-bit hash of its partition, ID and record (16 bytes a slot,
 * so that 16384 fit in 256 KiB: a false match, which would skip an entry, is a 2^-62 chance). */
typedef struct {
    uint64_t sum;
    uint32_t seq;   /* the ID's sequence, low bits: one more check */
    uint32_t stamp; /* when it was written (the reader's count): the oldest goes first */
} seen_t;

typedef struct {
    rc_storage_reader_t base;
    rc__redis_conf_t conf;
    rc_storage_t *ring; /* borrowed: the mirror's, whose head says when to read */
    char group[GROUP_NAME_MAX + 1];
    char consumer[CONSUMER_MAX + 1];
    uint32_t claim_idle_ms;
    shared_stats_t *sh;
    /* The polling process's own state. */
    pid_t pid; /* whose connection `c` (or set `cl`) is */
    redisContext *c;
    rc_redis_cluster_t *cl;     /* a Redis Cluster: the set, kept across failures */
    int cl_paused;              /* a cluster command failed: none until retry_ns */
    seen_t *seen;               /* on a cluster: SEEN_SLOTS entries read here, by (part, id) */
    pid_t seen_pid;             /* whose table `seen` is */
    uint64_t again, again_told; /* of them, read again (after a failover), not delivered */
    uint32_t seen_stamp;
    int64_t retry_ns;
    int down;
    int lost;            /* the connection was lost: read the pending list again once back */
    int pending_phase;   /* reading its consumer's pending entries again (after resume) */
    uint64_t pend_total; /* of them, read so far */
    rc__redis_id_t pend_from[RC_CONFIG_REDIS_PARTITIONS], claim_from[RC_CONFIG_REDIS_PARTITIONS];
    held_t *h; /* ring of entries read and not acknowledged, in position order */
    uint32_t hcap, hhead, hlen, hret; /* hret: of them, handed out by poll */
    uint64_t acked;
    int64_t pass_ns;    /* next maintenance pass */
    int64_t refresh_ns; /* Redis is read by then even when the ring stood still */
    uint64_t seen_head; /* the ring's head before the last read that found nothing */
    /* For the watch thread (wait_past): the head it waits to move, when a pass is due. */
    _Atomic uint64_t idle_head;
    _Atomic int64_t due_ns;
    _Atomic int woken;
} group_reader_t;

static const rc__storage_ops_t group_ops;

static held_t *held_at(group_reader_t *g, uint32_t i)
{
    return &g->h[(g->hhead + i) & (g->hcap - 1)];
}

static int parse_id(const char *s, rc__redis_id_t *id)
{
    char *end = NULL;
    errno = 0;
    id->ms = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '-')
        return -EINVAL;
    const char *q = end + 1;
    id->seq = strtoull(q, &end, 10);
    return errno != 0 || end == q || *end != '\0' ? -EINVAL : 0;
}

static void id_text(rc__redis_id_t id, char out[48])
{
    snprintf(out, 48, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
}

/* ---- the connection ------------------------------------------------------------------------ */

/* Whether commands can be sent now. */
static int live(const group_reader_t *g)
{
    return g->conf.cluster ? g->cl != NULL && !g->cl_paused : g->c != NULL;
}

/* One command about `key`: on the cluster node owning it, or on the one connection. */
static redisReply *send_argv(redisContext *c, rc_redis_cluster_t *cl, const char *key, int argc,
                             const char **argv)
{
    return cl != NULL ? rc_redis_cluster_argv(cl, key, argc, argv, NULL)
                      : redisCommandArgv(c, argc, argv, NULL);
}

static const char *send_error(redisContext *c, rc_redis_cluster_t *cl)
{
    const char *e = cl != NULL ? rc_redis_cluster_error(cl) : c != NULL ? c->errstr : "";
    return e[0] ? e : "no answer";
}

static void drop_conn(group_reader_t *g, const char *what)
{
    if (!g->down++)
        rc_log_warn("worker",
                    "trigger group %s: lost Redis %s:%d%s (%s: %s); reading again once "
                    "it answers",
                    g->group, g->conf.host, g->conf.port, g->conf.cluster ? " (cluster)" : "", what,
                    send_error(g->c, g->cl));
    /* A cluster set keeps its map and nodes: it finds the promoted replica itself. */
    if (g->conf.cluster)
        g->cl_paused = 1;
    redisFree(g->c);
    g->c = NULL;
    g->retry_ns = (int64_t)rc_now_ns() + RECONNECT_NS;
    g->lost = 1;
}

/* A command about `key` on the polling process's connection (or set). */
static redisReply *run(group_reader_t *g, const char *key, int argc, const char **argv)
{
    redisReply *r = send_argv(g->c, g->cl, key, argc, argv);
    if (r != NULL && g->conf.cluster && g->down && r->type != REDIS_REPLY_ERROR) {
        rc_log_info("worker", "trigger group %s: the Redis Cluster answers again", g->group);
        g->down = 0;
    }
    return r;
}

/* After a lost connection (or a cluster command without an answer): a read whose answer was
 * swallowed made entries this consumer's pending ones without handing them to us, and a
 * promoted replica knows the entries this node held as pending: read the pending list again
 * (what is held here is skipped), instead of waiting claimIdle for them. */
static void after_loss(group_reader_t *g)
{
    if (!g->lost)
        return;
    g->lost = 0;
    g->pending_phase = 1;
    g->pend_total = 0;
    memset(g->pend_from, 0, sizeof(g->pend_from));
}

/* The cluster set of the polling process, opened on first use; 1 when commands can go. */
static int cluster_conn(group_reader_t *g)
{
    if ((int64_t)rc_now_ns() < g->retry_ns)
        return 0;
    if (g->cl == NULL) {
        char err[256];
        if (rc__redis_cluster_open(&g->conf, 2000, NULL, &g->cl, err, sizeof(err)) != 0) {
            g->cl = NULL;
            if (!g->down++)
                rc_log_warn("worker", "trigger group %s: %s; retrying", g->group, err);
            g->retry_ns = (int64_t)rc_now_ns() + RECONNECT_NS;
            return 0;
        }
    }
    g->cl_paused = 0;
    after_loss(g);
    return 1;
}

/* The polling process's connection, made on first use (the opener's never crosses a fork). */
static int conn(group_reader_t *g)
{
    if (g->pid != getpid()) {
        g->pid = getpid();
        g->c = NULL; /* another process's, if any: not ours to use or free */
        g->cl = NULL;
    }
    if (g->conf.cluster)
        return g->cl != NULL && !g->cl_paused ? 1 : cluster_conn(g);
    if (g->c != NULL)
        return 1;
    if ((int64_t)rc_now_ns() < g->retry_ns)
        return 0;
    char err[256];
    g->c = rc__redis_connect(&g->conf, 1000, err, sizeof(err));
    if (g->c == NULL) {
        if (!g->down++)
            rc_log_warn("worker", "trigger group %s: %s; retrying", g->group, err);
        g->retry_ns = (int64_t)rc_now_ns() + RECONNECT_NS;
        return 0;
    }
    redisSetTimeout(g->c, (struct timeval){2, 0});
    if (g->down)
        rc_log_info("worker", "trigger group %s: connected to Redis %s:%d again", g->group,
                    g->conf.host, g->conf.port);
    g->down = 0;
    after_loss(g);
    return 1;
}

/* XGROUP CREATE on every partition (each on its own node in a cluster); an existing group is
 * kept as it is. */
static int create_groups(const rc__redis_conf_t *cf, redisContext *c, rc_redis_cluster_t *cl,
                         const char *group, const char *start, char *err, size_t errlen)
{
    for (uint32_t p = 0; p < cf->partitions; p++) {
        const char *argv[] = {"XGROUP", "CREATE", cf->keys[p], group, start, "MKSTREAM"};
        redisReply *r = send_argv(c, cl, cf->keys[p], 6, argv);
        if (r == NULL) {
            snprintf(err, errlen, "Redis at %s:%d: XGROUP CREATE %s: %s", cf->host, cf->port,
                     cf->keys[p], send_error(c, cl));
            return RC_ESTORE_UNAVAILABLE;
        }
        int rc = 0;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
            int wrong = strncmp(r->str, "WRONGTYPE", 9) == 0;
            if (wrong)
                snprintf(err, errlen,
                         "Redis key '%s' is not a stream, so it cannot hold the consumer group "
                         "'%s' of broker %s/%s (rename or delete the key)",
                         cf->keys[p], group, cf->ns, cf->broker);
            else
                snprintf(err, errlen, "Redis at %s:%d: XGROUP CREATE %s %s: %s", cf->host, cf->port,
                         cf->keys[p], group, r->str);
            rc = wrong ? -EEXIST : RC_ESTORE_UNAVAILABLE;
        }
        freeReplyObject(r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* An error reply: NOGROUP means the stream was deleted (and the group with it) and is made
 * again from its start, so that nothing added since is missed. */
static void on_error_reply(group_reader_t *g, const redisReply *r, const char *what)
{
    if (strncmp(r->str, "NOGROUP", 7) == 0) {
        char err[256];
        rc_log_warn("worker",
                    "trigger group %s: the group is gone from Redis (a stream was "
                    "deleted?); making it again from the streams' oldest entries",
                    g->group);
        if (create_groups(&g->conf, g->c, g->cl, g->group, "0", err, sizeof(err)) != 0)
            rc_log_error("worker", "trigger group %s: %s", g->group, err);
        return;
    }
    if (!g->down++)
        rc_log_error("worker", "trigger group %s: %s: %s", g->group, what, r->str);
}

/* ---- the entries held ---------------------------------------------------------------------- */

static int hold_room(group_reader_t *g, uint32_t more)
{
    if (g->hlen + more <= g->hcap)
        return 0;
    uint32_t cap = g->hcap ? g->hcap : 256;
    while (cap < g->hlen + more)
        cap *= 2;
    held_t *h = malloc((size_t)cap * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < g->hlen; i++)
        h[i] = *held_at(g, i);
    free(g->h);
    g->h = h;
    g->hcap = cap;
    g->hhead = 0;
    return 0;
}

static int is_held(group_reader_t *g, uint32_t part, rc__redis_id_t id)
{
    for (uint32_t i = 0; i < g->hlen; i++) {
        const held_t *e = held_at(g, i);
        if (e->part == part && e->id.ms == id.ms && e->id.seq == id.seq)
            return 1;
    }
    return 0;
}

/* After a failover the promoted replica may lack the last reads and acknowledgements that its
 * master had not passed on yet: entries this node read come again (XREADGROUP >, or its own
 * pending list). An entry this process read and no longer holds was acknowledged after its
 * delivery (the reader lets go of entries only then, or in a new process, which starts with
 * no memory of them), so one that comes again with the same partition, ID and record is
 * acknowledged, not delivered again. The memory is a lossy table (buckets of SEEN_WAYS
 * slots, the oldest overwritten; about the last SEEN_SLOTS reads): a forgotten entry is
 * delivered again. Another node's reads are not known here: those entries may still come
 * twice (at least once). */
static seen_t *seen_bucket(group_reader_t *g, uint32_t p, rc__redis_id_t id)
{
    uint64_t h = (id.ms * 0x9E3779B97F4A7C15ull) ^ (id.seq * 0xC2B2AE3D27D4EB4Full) ^ p;
    return &g->seen[((h ^ (h >> 29)) & (SEEN_SLOTS / SEEN_WAYS - 1)) * SEEN_WAYS];
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *d = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ d[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t entry_sum(uint32_t p, rc__redis_id_t id, const uint8_t *d, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    h = fnv(h, &p, sizeof(p));
    h = fnv(h, &id.ms, sizeof(id.ms));
    h = fnv(h, &id.seq, sizeof(id.seq));
    h = fnv(h, d, len);
    h ^= h >> 33; /* FNV's high bits mix poorly: fold them */
    return h | 1; /* never 0: an empty slot's */
}

/* 1 when the entry was read here before (and so delivered or held); remembers it otherwise. */
static int read_before(group_reader_t *g, uint32_t p, rc__redis_id_t id, const uint8_t *d,
                       uint32_t len)
{
    if (!g->conf.cluster || d == NULL)
        return 0;
    if (g->seen != NULL && g->seen_pid != getpid())
        g->seen = NULL; /* the opener's, inherited: not this process's reads */
    if (g->seen == NULL) {
        if ((g->seen = calloc(SEEN_SLOTS, sizeof(*g->seen))) == NULL)
            return 0;
        g->seen_pid = getpid();
    }
    seen_t *b = seen_bucket(g, p, id), *old = b;
    uint64_t sum = entry_sum(p, id, d, len);
    for (int w = 0; w < SEEN_WAYS; w++) {
        seen_t *s = &b[w];
        if (s->sum == sum && s->seq == (uint32_t)id.seq)
            return 1;
        /* Unsigned difference: the oldest also across the stamp's wrap. */
        if (g->seen_stamp - s->stamp > g->seen_stamp - old->stamp)
            old = s;
    }
    *old = (seen_t){.sum = sum, .seq = (uint32_t)id.seq, .stamp = ++g->seen_stamp};
    return 0;
}

/* One entry [id, [field, value...] | nil] of partition p: held with the next position (one
 * read here before is held without its record: acknowledged with the rest, not delivered). */
static void take_entry(group_reader_t *g, uint32_t p, const redisReply *e, rref_t *rr)
{
    rc__redis_id_t id;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || parse_id(e->element[0]->str, &id) != 0)
        return;
    held_t *h = held_at(g, g->hlen);
    *h = (held_t){.id = id, .part = p, .rr = rr};
    const redisReply *f = e->element[1];
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        rc_record_view_t view;
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, RC__REDIS_FIELD) == 0 &&
            v->type == REDIS_REPLY_STRING && rc_record_decode(v->str, v->len, &view) == 0) {
            h->data = (const uint8_t *)v->str;
            h->len = (uint32_t)v->len;
        }
    }
    if (read_before(g, p, id, h->data, h->len)) {
        h->data = NULL;
        h->len = 0;
        g->again++;
    }
    /* Relaxed: the count only needs to be unique and increasing; no data is published. */
    h->seq = atomic_fetch_add_explicit(&count_page->seq, 1, memory_order_relaxed);
    h->pos = atomic_fetch_add_explicit(&g->sh->pos, h->len ? h->len : 1, memory_order_relaxed);
    rr->refs++;
    g->hlen++;
    atomic_fetch_add_explicit(&g->sh->read, 1, memory_order_relaxed);
}

static void release(rref_t *rr)
{
    if (--rr->refs == 0) {
        freeReplyObject(rr->r);
        free(rr);
    }
}

/* Keeps reply `r` while entries point into it (takes it; freed at once when none do). */
static rref_t *rref_new(redisReply *r)
{
    rref_t *rr = calloc(1, sizeof(*rr));
    if (rr == NULL)
        freeReplyObject(r);
    else
        rr->r = r;
    return rr;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* XREADGROUP of partitions [p0, p1) from `ids` (NULL: ">", new entries); returns how many
 * entries came back, or a negative code. Reading this consumer's pending entries (`ids`) moves
 * pend_from past what came back and takes only those not held here already (after a
 * reconnect, most are). */
static int read_keys(group_reader_t *g, const rc__redis_id_t *ids, uint32_t p0, uint32_t p1)
{
    const rc__redis_conf_t *cf = &g->conf;
    const char *argv[7 + 2 * RC_CONFIG_REDIS_PARTITIONS];
    char idt[RC_CONFIG_REDIS_PARTITIONS][48], count[16];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = g->group;
    argv[argc++] = g->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    argv[argc++] = "STREAMS";
    for (uint32_t p = p0; p < p1; p++)
        argv[argc++] = cf->keys[p];
    for (uint32_t p = p0; p < p1; p++) {
        if (ids != NULL)
            id_text(ids[p], idt[p]);
        argv[argc++] = ids != NULL ? idt[p] : ">";
    }
    if (hold_room(g, READ_COUNT * (p1 - p0)) != 0)
        return -ENOMEM;
    redisReply *r = run(g, cf->keys[p0], argc, argv);
    if (r == NULL) {
        drop_conn(g, "XREADGROUP");
        return RC_ESTORE_UNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        on_error_reply(g, r, "XREADGROUP");
        freeReplyObject(r);
        return RC_ESTORE_UNAVAILABLE;
    }
    rref_t *rr = rref_new(r);
    if (rr == NULL)
        return -ENOMEM;
    rr->refs = 1; /* ours while we walk it */
    int n = 0;
    for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[0]->type != REDIS_REPLY_STRING || st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        int p = rc__redis_partition_of(cf, st->element[0]->str);
        const redisReply *es = st->element[1];
        for (size_t i = 0; p >= 0 && i < es->elements && i < READ_COUNT; i++) {
            const redisReply *e = es->element[i];
            rc__redis_id_t id;
            if (ids != NULL && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                e->element[0]->type == REDIS_REPLY_STRING &&
                parse_id(e->element[0]->str, &id) == 0) {
                n++; /* a pending entry: seen, and taken unless it is held here already */
                g->pend_from[p] = id;
                if (!is_held(g, (uint32_t)p, id))
                    take_entry(g, (uint32_t)p, e, rr);
                continue;
            }
            uint32_t before = g->hlen;
            take_entry(g, (uint32_t)p, e, rr);
            n += (int)(g->hlen - before);
        }
    }
    release(rr);
    return n;
}

/* XREADGROUP of every partition: one command naming them all on a standalone server; on a
 * cluster one per partition key (each its own slot, perhaps its own master), in turn. A key
 * whose node answers an error is skipped this time; no answer stops the round (the reader
 * pauses, see drop_conn). */
static int read_group(group_reader_t *g, const rc__redis_id_t *ids)
{
    if (!g->conf.cluster)
        return read_keys(g, ids, 0, g->conf.partitions);
    int n = 0, failed = 0;
    for (uint32_t p = 0; p < g->conf.partitions && live(g); p++) {
        int k = read_keys(g, ids, p, p + 1);
        if (k < 0)
            failed = k;
        else
            n += k;
    }
    return n > 0 || failed == 0 ? n : failed;
}

/* XAUTOCLAIM: entries of other consumers idle longer than claimIdle become this node's, one
 * batch per partition and pass (the scan goes on from where the last pass ended). */
static int claim(group_reader_t *g)
{
    const rc__redis_conf_t *cf = &g->conf;
    char idle[24], from[48], count[16];
    snprintf(idle, sizeof(idle), "%u", g->claim_idle_ms);
    snprintf(count, sizeof(count), "%d", CLAIM_COUNT);
    int n = 0;
    for (uint32_t p = 0; p < cf->partitions && live(g); p++) {
        if (hold_room(g, CLAIM_COUNT) != 0)
            return -ENOMEM;
        id_text(g->claim_from[p], from);
        const char *argv[] = {"XAUTOCLAIM", cf->keys[p], g->group, g->consumer,
                              idle,         from,        "COUNT",  count};
        redisReply *r = run(g, cf->keys[p], 8, argv);
        if (r == NULL) {
            drop_conn(g, "XAUTOCLAIM");
            return RC_ESTORE_UNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            on_error_reply(g, r, "XAUTOCLAIM");
            freeReplyObject(r);
            continue;
        }
        rref_t *rr = rref_new(r);
        if (rr == NULL)
            return -ENOMEM;
        rr->refs = 1;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            parse_id(r->element[0]->str, &g->claim_from[p]) == 0 &&
            r->element[1]->type == REDIS_REPLY_ARRAY) {
            const redisReply *es = r->element[1];
            for (size_t i = 0; i < es->elements && i < CLAIM_COUNT; i++) {
                rc__redis_id_t id;
                const redisReply *e = es->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                    e->element[0]->type != REDIS_REPLY_STRING ||
                    parse_id(e->element[0]->str, &id) != 0 || is_held(g, p, id))
                    continue; /* held here already: its idle time was just reset, no more */
                uint32_t before = g->hlen;
                take_entry(g, p, e, rr);
                n += (int)(g->hlen - before);
            }
        }
        release(rr);
    }
    if (n > 0) {
        atomic_fetch_add_explicit(&g->sh->claimed, (uint64_t)n, memory_order_relaxed);
        rc_log_info("worker",
                    "trigger group %s: took over %d entries another consumer left "
                    "idle for more than %u ms",
                    g->group, n, g->claim_idle_ms);
    }
    return n;
}

/* Sends the command `head` (its name, then after the key `nhead - 1` arguments), the IDs of
 * the first `upto` held entries of the partition (at most `limit`) and `tail` (NULL: none), to
 * each partition that has such entries. Returns the replies' integers (or array lengths)
 * summed, or -1 when the connection failed. */
static long long per_partition(group_reader_t *g, const char *const *head, int nhead,
                               const char *tail, uint32_t limit, uint32_t upto)
{
    const rc__redis_conf_t *cf = &g->conf;
    const char **argv = malloc((size_t)(nhead + 2 + (int)upto) * sizeof(*argv));
    char(*ids)[48] = malloc((size_t)(upto + 1) * 48);
    long long sum = argv != NULL && ids != NULL ? 0 : -1;
    for (uint32_t p = 0; sum >= 0 && p < cf->partitions; p++) {
        int argc = 0;
        argv[argc++] = head[0];
        argv[argc++] = cf->keys[p];
        for (int k = 1; k < nhead; k++)
            argv[argc++] = head[k];
        uint32_t n = 0;
        for (uint32_t i = 0; i < upto && n < limit; i++) {
            const held_t *e = held_at(g, i);
            if (e->part != p)
                continue;
            id_text(e->id, ids[n]);
            argv[argc++] = ids[n++];
        }
        if (n == 0)
            continue;
        if (tail != NULL)
            argv[argc++] = tail;
        redisReply *r = run(g, cf->keys[p], argc, argv);
        if (r == NULL) {
            sum = -1;
            break;
        }
        if (r->type == REDIS_REPLY_INTEGER)
            sum += r->integer;
        else if (r->type == REDIS_REPLY_ARRAY)
            sum += (long long)r->elements;
        else if (r->type == REDIS_REPLY_ERROR)
            on_error_reply(g, r, head[0]);
        /* A cluster node that refuses (CLUSTERDOWN while a replica is promoted, TRYAGAIN):
         * the command did not run; the caller tries again later (an XACK keeps its entries). */
        int refused =
            g->conf.cluster && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) != 0;
        freeReplyObject(r);
        if (refused) {
            sum = -1;
            break;
        }
    }
    free(argv);
    free(ids);
    return sum;
}

/* The held entries stay this node's: XCLAIM ... 0 <ids> JUSTID resets their idle time, so a
 * delivery that takes long (retries) is not taken over by another node as a dead one's. */
static void touch(group_reader_t *g)
{
    const char *head[] = {"XCLAIM", g->group, g->consumer, "0"};
    if (g->hlen > 0 && per_partition(g, head, 4, "JUSTID", TOUCH_MAX, g->hlen) < 0)
        drop_conn(g, "XCLAIM");
}

/* XPENDING summary of every partition: the group's pending gauge. */
static void pending_gauge(group_reader_t *g)
{
    uint64_t sum = 0;
    for (uint32_t p = 0; p < g->conf.partitions && live(g); p++) {
        const char *argv[] = {"XPENDING", g->conf.keys[p], g->group};
        redisReply *r = run(g, g->conf.keys[p], 3, argv);
        if (r == NULL) {
            drop_conn(g, "XPENDING");
            return;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
            r->element[0]->type == REDIS_REPLY_INTEGER)
            sum += (uint64_t)r->element[0]->integer;
        freeReplyObject(r);
    }
    atomic_store_explicit(&g->sh->pending, sum, memory_order_relaxed);
}

/* The pass: what it holds stays its own (touch), other consumers' idle entries become its own
 * when it has room for them (claim), and the pending gauge. */
static void maintain(group_reader_t *g, int64_t now, int room)
{
    int64_t every = g->claim_idle_ms > 0 ? (int64_t)g->claim_idle_ms * 500000ll : REFRESH_NS;
    if (every > REFRESH_NS)
        every = REFRESH_NS;
    if (every < MIN_PASS_NS)
        every = MIN_PASS_NS;
    g->pass_ns = now + every;
    if (g->claim_idle_ms > 0) {
        touch(g);
        if (room && live(g))
            (void)claim(g);
    }
    if (live(g))
        pending_gauge(g);
}

/* Reads more entries when there may be some. Owner's thread. */
static void fetch(group_reader_t *g)
{
    if (!conn(g))
        return;
    int64_t now = (int64_t)rc_now_ns();
    int room = g->hlen < HOLD_MAX;
    if (room && g->pending_phase) {
        uint32_t before = g->hlen;
        int n = read_group(g, g->pend_from);
        g->pend_total += g->hlen - before;
        if (n > 0)
            return;
        if (n == 0) {
            g->pending_phase = 0;
            if (g->pend_total > 0)
                rc_log_info("worker",
                            "trigger group %s: %llu entries this node read before and did "
                            "not acknowledge are delivered again",
                            g->group, (unsigned long long)g->pend_total);
        }
        if (!live(g))
            return;
    }
    if (now >= g->pass_ns) {
        uint32_t before = g->hlen;
        maintain(g, now, room);
        if (g->hlen > before || !live(g))
            return;
    }
    if (!room)
        return;
    /* The head before the read: an event the mirror copies after it moves the head again. */
    uint64_t head = rc__storage_shm_head_seq(g->ring);
    if (head == g->seen_head && now < g->refresh_ns)
        return;
    int n = read_group(g, NULL);
    if (n == 0) {
        g->seen_head = head;
        g->refresh_ns = now + REFRESH_NS;
    }
}

/* ---- the reader operations ----------------------------------------------------------------- */

static int group_poll(rc_storage_reader_t *r, rc_storage_view_t *v)
{
    group_reader_t *g = (group_reader_t *)r;
    for (int round = 0; round < 2; round++) {
        while (g->hret < g->hlen) {
            held_t *e = held_at(g, g->hret++);
            if (e->data == NULL)
                continue; /* not a record: acknowledged with the rest, never delivered */
            *v = (rc_storage_view_t){e->pos, e->pos + e->len, e->seq, e->data, e->len};
            return 0;
        }
        if (round == 0)
            fetch(g);
        if (g->again > g->again_told) {
            rc_log_info("worker",
                        "trigger group %s: %llu entries read again (after a failover) were "
                        "delivered here before: acknowledged, not delivered again",
                        g->group, (unsigned long long)(g->again - g->again_told));
            g->again_told = g->again;
        }
    }
    /* Nothing: the watch waits for the head to move past what was seen, or the next pass. */
    uint64_t head =
        g->hlen >= HOLD_MAX || !live(g) ? rc__storage_shm_head_seq(g->ring) : g->seen_head;
    int64_t due = g->refresh_ns < g->pass_ns ? g->refresh_ns : g->pass_ns;
    if (!live(g) && g->retry_ns > due)
        due = g->retry_ns;
    /* Holding its most, the reader reads again once the worker acknowledges, which its own
     * responses wake it for: the watch must not fire now for a pass that is overdue. */
    if (g->hlen >= HOLD_MAX && live(g)) {
        int64_t later = (int64_t)rc_now_ns() + REFRESH_NS;
        due = g->pass_ns < later ? g->pass_ns : later; /* the pass that touches what it holds */
    }
    /* Release: pairs with the acquire loads in group_wait_past. */
    atomic_store_explicit(&g->due_ns, due, memory_order_release);
    atomic_store_explicit(&g->idle_head, head, memory_order_release);
    return RC_ERING_EMPTY;
}

static int group_wait_past(rc_storage_reader_t *r, uint64_t pos, int64_t timeout_ns);

static int group_wait(rc_storage_reader_t *r, rc_storage_view_t *v, int64_t timeout_ns)
{
    int64_t end = (int64_t)rc_now_ns() + timeout_ns;
    for (;;) {
        int rc = group_poll(r, v);
        int64_t left = end - (int64_t)rc_now_ns();
        if (rc != RC_ERING_EMPTY || left <= 0)
            return rc;
        if (group_wait_past(r, 0, left) == -EINTR)
            return -EINTR;
    }
}

static int group_wait_past(rc_storage_reader_t *r, uint64_t pos, int64_t timeout_ns)
{
    group_reader_t *g = (group_reader_t *)r;
    (void)pos;
    int64_t end = (int64_t)rc_now_ns() + timeout_ns;
    if (atomic_exchange_explicit(&g->woken, 0, memory_order_acq_rel))
        return -EINTR;
    /* Acquire: pairs with the release stores at the end of group_poll. */
    int64_t due = atomic_load_explicit(&g->due_ns, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&g->idle_head, memory_order_acquire);
    int64_t now = (int64_t)rc_now_ns();
    if (now >= due)
        return 0; /* a pass or a read is due: the owner polls */
    int64_t until = due < end ? due : end;
    if (until <= now)
        return RC_ERING_EMPTY;
    /* The ring's futex, as its readers sleep: the mirror's next commit ends the sleep. */
    int rc = rc__storage_shm_wait_head(g->ring, head, until - now);
    if (rc == 0 || (int64_t)rc_now_ns() >= due)
        return 0;
    return rc == -EINTR ? -EINTR : RC_ERING_EMPTY;
}

static void group_wake(rc_storage_reader_t *r)
{
    atomic_store_explicit(&((group_reader_t *)r)->woken, 1, memory_order_release);
}

/* XACKs every entry before `pos` that poll handed out (and the non-records among them). When
 * Redis cannot be told, they stay held and the ack fails: the worker acknowledges again on a
 * later turn (XACK of an entry already acknowledged is a no-op), so an entry delivered while
 * Redis was away is not delivered again once it is back. */
static int group_ack(rc_storage_reader_t *r, uint64_t pos)
{
    group_reader_t *g = (group_reader_t *)r;
    uint32_t n = 0;
    while (n < g->hret && held_at(g, n)->pos < pos)
        n++;
    if (n == 0)
        return 0;
    if (!conn(g))
        return RC_ESTORE_UNAVAILABLE;
    const char *head[] = {"XACK", g->group};
    long long k = per_partition(g, head, 2, NULL, UINT32_MAX, n);
    if (k < 0) {
        drop_conn(g, "XACK");
        return RC_ESTORE_UNAVAILABLE;
    }
    atomic_fetch_add_explicit(&g->sh->acked, (uint64_t)k, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        release(held_at(g, i)->rr);
    g->hhead = (g->hhead + n) & (g->hcap - 1);
    g->hlen -= n;
    g->hret -= n;
    g->acked = pos;
    return 0;
}

static uint64_t group_position(const rc_storage_reader_t *r)
{
    group_reader_t *g = (group_reader_t *)r;
    if (g->hret < g->hlen)
        return held_at(g, g->hret)->pos;
    return atomic_load_explicit(&g->sh->pos, memory_order_relaxed);
}

static uint64_t group_acked(const rc_storage_reader_t *r)
{
    return ((const group_reader_t *)r)->acked;
}

static void drop_held(group_reader_t *g)
{
    for (uint32_t i = 0; i < g->hlen; i++)
        release(held_at(g, i)->rr);
    g->hlen = g->hret = g->hhead = 0;
}

/* A new process takes the reader over: what it holds is forgotten here (those entries are
 * this consumer's pending ones in Redis) and read again from the group's pending list. */
static int group_resume(rc_storage_reader_t *r)
{
    group_reader_t *g = (group_reader_t *)r;
    drop_held(g);
    /* What it held is read again and delivered: forget it was read. */
    if (g->seen != NULL && g->seen_pid == getpid())
        memset(g->seen, 0, SEEN_SLOTS * sizeof(*g->seen));
    else
        g->seen = NULL;
    g->pending_phase = 1;
    g->pend_total = 0;
    memset(g->pend_from, 0, sizeof(g->pend_from));
    memset(g->claim_from, 0, sizeof(g->claim_from));
    g->acked = group_position(r);
    g->pass_ns = 0;
    g->seen_head = 0;
    g->refresh_ns = 0;
    return 0;
}

static void group_close(rc_storage_reader_t *r, int keep_cursor)
{
    group_reader_t *g = (group_reader_t *)r;
    (void)keep_cursor; /* the group's position is Redis' in either case */
    if (g->pid == getpid() && g->c != NULL)
        redisFree(g->c);
    if (g->pid == getpid() && g->cl != NULL)
        rc_redis_cluster_close(g->cl);
    drop_held(g);
    if (g->seen_pid == getpid())
        free(g->seen);
    free(g->h);
    munmap(g->sh, sizeof(*g->sh));
    free(g);
}

static int group_stats(const rc_storage_reader_t *r, rc_storage_group_stats_t *st)
{
    const group_reader_t *g = (const group_reader_t *)r;
    st->pending = atomic_load_explicit(&g->sh->pending, memory_order_relaxed);
    st->claimed = atomic_load_explicit(&g->sh->claimed, memory_order_relaxed);
    st->acked = atomic_load_explicit(&g->sh->acked, memory_order_relaxed);
    st->read = atomic_load_explicit(&g->sh->read, memory_order_relaxed);
    return 0;
}

static void *map_shared(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Where a group made now starts: "$", "0", or the last ID before start_ms. */
static void start_id(const rc_storage_group_opts_t *o, char out[48])
{
    if (o->start == RC_STORAGE_FROM_OLDEST)
        snprintf(out, 48, "0");
    else if (o->start == RC_STORAGE_FROM_AT && o->start_ms > 0)
        snprintf(out, 48, "%lld-%llu", (long long)o->start_ms - 1, (unsigned long long)UINT64_MAX);
    else
        snprintf(out, 48, "$");
}

int rc__redis_group_open(const rc__redis_conf_t *conf, rc_storage_t *ring,
                         const rc_storage_group_opts_t *o, rc_storage_reader_t **out, char *err,
                         size_t errlen)
{
    if (o->group == NULL || o->group[0] == '\0' || strlen(o->group) > GROUP_NAME_MAX ||
        o->consumer == NULL || o->consumer[0] == '\0' || strlen(o->consumer) > CONSUMER_MAX) {
        snprintf(err, errlen,
                 "a consumer group needs a name of 1 to %d bytes and a consumer "
                 "of 1 to %d",
                 GROUP_NAME_MAX, CONSUMER_MAX);
        return -EINVAL;
    }
    if (count_page == NULL && (count_page = map_shared(sizeof(*count_page))) != NULL)
        atomic_store(&count_page->seq, 1);
    group_reader_t *g = calloc(1, sizeof(*g));
    if (count_page == NULL || g == NULL || (g->sh = map_shared(sizeof(*g->sh))) == NULL) {
        free(g);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_store(&g->sh->pos, 1);
    g->base.ops = &group_ops;
    g->conf = *conf;
    g->ring = ring;
    snprintf(g->group, sizeof(g->group), "%s", o->group);
    snprintf(g->consumer, sizeof(g->consumer), "%s", o->consumer);
    g->claim_idle_ms = o->claim_idle_ms;
    /* The opener's connection (or cluster set) is used once here: the polling process makes
     * its own. */
    redisContext *c = NULL;
    rc_redis_cluster_t *cl = NULL;
    if (conf->cluster ? rc__redis_cluster_open(conf, 2000, NULL, &cl, err, errlen) != 0
                      : (c = rc__redis_connect(conf, 2000, err, errlen)) == NULL) {
        group_close(&g->base, 0);
        return RC_ESTORE_UNAVAILABLE;
    }
    char start[48];
    start_id(o, start);
    int rc = create_groups(conf, c, cl, g->group, start, err, errlen);
    redisFree(c);
    rc_redis_cluster_close(cl);
    if (rc != 0) {
        group_close(&g->base, 0);
        return rc;
    }
    g->pid = getpid();
    group_resume(&g->base);
    *out = &g->base;
    return 0;
}

static const rc__storage_ops_t group_ops = {
    .reader_close = group_close,
    .poll = group_poll,
    .wait = group_wait,
    .wait_past = group_wait_past,
    .wake = group_wake,
    .ack = group_ack,
    .position = group_position,
    .acked = group_acked,
    .resume = group_resume,
    .group_stats = group_stats,
};
